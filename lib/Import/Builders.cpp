//===- Builders.cpp - Shared IR building helpers of the converters --------===//

#include "Builders.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/ReshapeOpsUtils.h"
#include "mlir/IR/AffineMap.h"

#include <limits>

namespace photon {
namespace import {
using namespace mlir;
using onnx::TensorProto;

Type onnxElemType(MLIRContext *ctx, int32_t dt) {
  Builder b(ctx);
  switch (dt) {
  case TensorProto::FLOAT: return b.getF32Type();
  case TensorProto::DOUBLE: return b.getF64Type();
  // Half-precision exports compute in f32 here (docs/importer.md, "Half-precision
  // exports"): f16 / bf16 values, casts and constants are f32; 2-D f16 / bf16 matmul weights
  // keep their format in the weights blob and are widened inside the matmul kernels.
  case TensorProto::FLOAT16: return b.getF32Type();
  case TensorProto::BFLOAT16: return b.getF32Type();
  case TensorProto::INT8: return b.getIntegerType(8);
  case TensorProto::INT16: return b.getIntegerType(16);
  case TensorProto::INT32: return b.getIntegerType(32);
  case TensorProto::INT64: return b.getIntegerType(64);
  case TensorProto::BOOL: return b.getIntegerType(1);
  default: return {};
  }
}

bool isFloatTy(Type t) { return isa<FloatType>(t); }
bool isIntTy(Type t) { return isa<IntegerType>(t); }

Value indexConst(OpBuilder &b, Location loc, int64_t v) {
  return arith::ConstantIndexOp::create(b, loc, v);
}

Value dimValue(OpBuilder &b, Location loc, Value t, int64_t i) {
  auto ty = cast<RankedTensorType>(t.getType());
  if (!ty.isDynamicDim(i)) return indexConst(b, loc, ty.getDimSize(i));
  return tensor::DimOp::create(b, loc, t, i);
}

SmallVector<OpFoldResult> mixedSizes(OpBuilder &b, Location loc, Value t) {
  auto ty = cast<RankedTensorType>(t.getType());
  SmallVector<OpFoldResult> out;
  for (int64_t i = 0; i < ty.getRank(); ++i) {
    if (ty.isDynamicDim(i)) out.push_back(tensor::DimOp::create(b, loc, t, i).getResult());
    else out.push_back(b.getIndexAttr(ty.getDimSize(i)));
  }
  return out;
}

Value foldToValue(OpBuilder &b, Location loc, OpFoldResult r) {
  if (auto v = dyn_cast<Value>(r)) return v;
  return indexConst(b, loc, cast<IntegerAttr>(cast<Attribute>(r)).getInt());
}

Value emptyTensor(OpBuilder &b, Location loc, ArrayRef<int64_t> shape,
                                  Type elem, ValueRange dynSizes) {
  return tensor::EmptyOp::create(b, loc, shape, elem, dynSizes);
}

Value emptyTensor(OpBuilder &b, Location loc, ArrayRef<OpFoldResult> sizes,
                                  Type elem) {
  return tensor::EmptyOp::create(b, loc, sizes, elem);
}

Value scalarConst(OpBuilder &b, Location loc, Type t, double v) {
  if (auto ft = dyn_cast<FloatType>(t)) {
    APFloat f(v);
    bool lost = false;
    f.convert(ft.getFloatSemantics(), APFloat::rmNearestTiesToEven, &lost);
    return arith::ConstantFloatOp::create(b, loc, ft, f);
  }
  if (t.isIndex()) return indexConst(b, loc, static_cast<int64_t>(v));
  return arith::ConstantIntOp::create(b, loc, t, static_cast<int64_t>(v));
}

Value fill(OpBuilder &b, Location loc, Value init, Value scalar) {
  return linalg::FillOp::create(b, loc, ValueRange{scalar}, ValueRange{init}).getResult(0);
}

Value castScalar(OpBuilder &b, Location loc, Value v, Type to) {
  Type from = v.getType();
  if (from == to) return v;
  auto fromF = dyn_cast<FloatType>(from), toF = dyn_cast<FloatType>(to);
  auto fromI = dyn_cast<IntegerType>(from), toI = dyn_cast<IntegerType>(to);
  if (fromF && toF) {
    if (fromF.getWidth() < toF.getWidth()) return arith::ExtFOp::create(b, loc, to, v);
    if (fromF.getWidth() > toF.getWidth()) return arith::TruncFOp::create(b, loc, to, v);
    // f16 <-> bf16: go through f32.
    Value w = arith::ExtFOp::create(b, loc, b.getF32Type(), v);
    return arith::TruncFOp::create(b, loc, to, w);
  }
  if (fromI && toF) {
    if (fromI.getWidth() == 1) return arith::UIToFPOp::create(b, loc, to, v);
    return arith::SIToFPOp::create(b, loc, to, v);
  }
  if (fromF && toI) {
    if (toI.getWidth() == 1) {
      Value z = scalarConst(b, loc, from, 0.0);
      return arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UNE, v, z);
    }
    return arith::FPToSIOp::create(b, loc, to, v);
  }
  if (fromI && toI) {
    if (toI.getWidth() == 1) {
      Value z = arith::ConstantIntOp::create(b, loc, from, 0);
      return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne, v, z);
    }
    if (fromI.getWidth() == 1) return arith::ExtUIOp::create(b, loc, to, v);
    if (fromI.getWidth() < toI.getWidth()) return arith::ExtSIOp::create(b, loc, to, v);
    return arith::TruncIOp::create(b, loc, to, v);
  }
  if (from.isIndex() && toI) return arith::IndexCastOp::create(b, loc, to, v);
  if (fromI && to.isIndex()) return arith::IndexCastOp::create(b, loc, to, v);
  return v;
}

LogicalResult broadcastShape(ArrayRef<Value> ins, SmallVectorImpl<int64_t> &shape,
                                             std::string &err) {
  int64_t rank = 0;
  for (Value v : ins) rank = std::max(rank, cast<RankedTensorType>(v.getType()).getRank());
  shape.assign(rank, 1);
  SmallVector<bool> dyn(rank, false), fixed(rank, false);
  for (Value v : ins) {
    auto ty = cast<RankedTensorType>(v.getType());
    int64_t off = rank - ty.getRank();
    for (int64_t j = 0; j < ty.getRank(); ++j) {
      int64_t i = j + off, d = ty.getDimSize(j);
      if (ShapedType::isDynamic(d)) {
        dyn[i] = true;
        continue;
      }
      if (d == 1) continue;
      if (fixed[i] && shape[i] != d) {
        err = "shapes cannot be broadcast: dimension " + std::to_string(i) + " is " +
              std::to_string(shape[i]) + " in one input and " + std::to_string(d) +
              " in another";
        return failure();
      }
      fixed[i] = true;
      shape[i] = d;
    }
  }
  for (int64_t i = 0; i < rank; ++i)
    if (!fixed[i] && dyn[i]) shape[i] = ShapedType::kDynamic;
  return success();
}

LogicalResult requireSameElem(NodeContext &ctx, ArrayRef<Value> ins) {
  Type t;
  for (Value v : ins) {
    if (!v) continue;
    Type e = cast<RankedTensorType>(v.getType()).getElementType();
    if (!t) t = e;
    else if (t != e) {
      std::string a, c;
      llvm::raw_string_ostream sa(a), sc(c);
      sa << t;
      sc << e;
      return ctx.error("dtype mismatch: inputs have element types " + a + " and " + c);
    }
  }
  return success();
}

FailureOr<Value> elementwise(NodeContext &ctx, ArrayRef<Value> ins, Type outElem,
                                             ScalarFn body) {
  OpBuilder &b = ctx.b;
  Location loc = ctx.loc;
  SmallVector<int64_t> shape;
  std::string err;
  if (failed(broadcastShape(ins, shape, err))) return ctx.error(err);
  int64_t rank = shape.size();
  SmallVector<Value> dynSizes;
  for (int64_t i = 0; i < rank; ++i) {
    if (!ShapedType::isDynamic(shape[i])) continue;
    for (Value v : ins) {
      auto ty = cast<RankedTensorType>(v.getType());
      int64_t j = i - (rank - ty.getRank());
      if (j >= 0 && ty.isDynamicDim(j)) {
        dynSizes.push_back(tensor::DimOp::create(b, loc, v, j));
        break;
      }
    }
  }
  Value init = emptyTensor(b, loc, shape, outElem, dynSizes);
  SmallVector<AffineMap> maps;
  MLIRContext *mctx = b.getContext();
  for (Value v : ins) {
    auto ty = cast<RankedTensorType>(v.getType());
    SmallVector<AffineExpr> exprs;
    for (int64_t j = 0; j < ty.getRank(); ++j) {
      int64_t i = j + (rank - ty.getRank());
      if (ty.getDimSize(j) == 1 && shape[i] != 1) exprs.push_back(getAffineConstantExpr(0, mctx));
      else exprs.push_back(getAffineDimExpr(i, mctx));
    }
    maps.push_back(AffineMap::get(rank, 0, exprs, mctx));
  }
  maps.push_back(AffineMap::getMultiDimIdentityMap(rank, mctx));
  SmallVector<utils::IteratorType> iters(rank, utils::IteratorType::parallel);
  size_t n = ins.size();
  auto op = linalg::GenericOp::create(
      b, loc, TypeRange{init.getType()}, ins, ValueRange{init}, maps, iters,
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        Value r = body(nb, nl, args.take_front(n));
        linalg::YieldOp::create(nb, nl, r);
      });
  return op.getResult(0);
}

static Value reduceInit(OpBuilder &b, Location loc, Type t, ReduceKind kind) {
  switch (kind) {
  case ReduceKind::Max:
    if (auto ft = dyn_cast<FloatType>(t))
      return arith::ConstantFloatOp::create(b, loc, ft,
                                            APFloat::getInf(ft.getFloatSemantics(), true));
    return arith::ConstantIntOp::create(
        b, loc, t, APInt::getSignedMinValue(cast<IntegerType>(t).getWidth()));
  case ReduceKind::Min:
    if (auto ft = dyn_cast<FloatType>(t))
      return arith::ConstantFloatOp::create(b, loc, ft,
                                            APFloat::getInf(ft.getFloatSemantics(), false));
    return arith::ConstantIntOp::create(
        b, loc, t, APInt::getSignedMaxValue(cast<IntegerType>(t).getWidth()));
  case ReduceKind::Prod: return scalarConst(b, loc, t, 1.0);
  default: return scalarConst(b, loc, t, 0.0);
  }
}

/// An elementwise linalg.generic over x (same shape and element type) with body `fn`.
static Value mapElementwise(OpBuilder &b, Location loc, Value x,
                            function_ref<void(OpBuilder &, Location, ValueRange)> fn) {
  auto t = cast<RankedTensorType>(x.getType());
  Value init = emptyTensor(b, loc, mixedSizes(b, loc, x), t.getElementType());
  SmallVector<AffineMap> maps(2, AffineMap::getMultiDimIdentityMap(t.getRank(), b.getContext()));
  return linalg::GenericOp::create(
             b, loc, TypeRange{init.getType()}, ValueRange{x}, ValueRange{init}, maps,
             SmallVector<utils::IteratorType>(t.getRank(), utils::IteratorType::parallel), fn)
      .getResult(0);
}

Value reduce(OpBuilder &b, Location loc, Value x, ArrayRef<int64_t> dimsIn,
                             ReduceKind kind, bool keepdims) {
  auto ty = cast<RankedTensorType>(x.getType());
  Type et = ty.getElementType();
  bool isF = isFloatTy(et);
  int64_t rank = ty.getRank();
  SmallVector<bool> red(rank, false);
  for (int64_t d : dimsIn) red[d] = true;
  SmallVector<int64_t> outShape;
  SmallVector<Value> dyn;
  SmallVector<AffineExpr> outExprs;
  MLIRContext *mctx = b.getContext();
  SmallVector<utils::IteratorType> iters;
  for (int64_t i = 0; i < rank; ++i) {
    iters.push_back(red[i] ? utils::IteratorType::reduction : utils::IteratorType::parallel);
    if (red[i]) continue;
    outShape.push_back(ty.getDimSize(i));
    if (ty.isDynamicDim(i)) dyn.push_back(tensor::DimOp::create(b, loc, x, i));
    outExprs.push_back(getAffineDimExpr(i, mctx));
  }
  Value init = fill(b, loc, emptyTensor(b, loc, outShape, et, dyn), reduceInit(b, loc, et, kind));
  SmallVector<AffineMap> maps = {AffineMap::getMultiDimIdentityMap(rank, mctx),
                                 AffineMap::get(rank, 0, outExprs, mctx)};
  auto op = linalg::GenericOp::create(
      b, loc, TypeRange{init.getType()}, ValueRange{x}, ValueRange{init}, maps, iters,
      [&](OpBuilder &nb, Location nl, ValueRange a) {
        Value v = a[0], acc = a[1], r;
        switch (kind) {
        case ReduceKind::Max:
          r = isF ? (Value)arith::MaximumFOp::create(nb, nl, acc, v)
                  : (Value)arith::MaxSIOp::create(nb, nl, acc, v);
          break;
        case ReduceKind::Min:
          r = isF ? (Value)arith::MinimumFOp::create(nb, nl, acc, v)
                  : (Value)arith::MinSIOp::create(nb, nl, acc, v);
          break;
        case ReduceKind::Prod:
          r = isF ? (Value)arith::MulFOp::create(nb, nl, acc, v)
                  : (Value)arith::MulIOp::create(nb, nl, acc, v);
          break;
        case ReduceKind::SumSquare:
        case ReduceKind::L2:
          v = isF ? (Value)arith::MulFOp::create(nb, nl, v, v)
                  : (Value)arith::MulIOp::create(nb, nl, v, v);
          r = isF ? (Value)arith::AddFOp::create(nb, nl, acc, v)
                  : (Value)arith::AddIOp::create(nb, nl, acc, v);
          break;
        case ReduceKind::L1:
          v = isF ? (Value)math::AbsFOp::create(nb, nl, v) : (Value)math::AbsIOp::create(nb, nl, v);
          r = isF ? (Value)arith::AddFOp::create(nb, nl, acc, v)
                  : (Value)arith::AddIOp::create(nb, nl, acc, v);
          break;
        case ReduceKind::LogSumExp:
          v = math::ExpOp::create(nb, nl, v);
          r = arith::AddFOp::create(nb, nl, acc, v);
          break;
        default:
          r = isF ? (Value)arith::AddFOp::create(nb, nl, acc, v)
                  : (Value)arith::AddIOp::create(nb, nl, acc, v);
        }
        linalg::YieldOp::create(nb, nl, r);
      });
  Value res = op.getResult(0);
  if (kind == ReduceKind::Mean) {
    Value count = indexConst(b, loc, 1);
    for (int64_t d : dimsIn) count = arith::MulIOp::create(b, loc, count, dimValue(b, loc, x, d));
    Value cnt = arith::IndexCastOp::create(b, loc, b.getI64Type(), count);
    cnt = castScalar(b, loc, cnt, et);
    res = mapElementwise(b, loc, res, [&](OpBuilder &nb, Location nl, ValueRange a) {
      Value r = isF ? (Value)arith::DivFOp::create(nb, nl, a[0], cnt)
                    : (Value)arith::DivSIOp::create(nb, nl, a[0], cnt);
      linalg::YieldOp::create(nb, nl, r);
    });
  } else if (kind == ReduceKind::L2 || kind == ReduceKind::LogSum ||
             kind == ReduceKind::LogSumExp) {
    res = mapElementwise(b, loc, res, [&](OpBuilder &nb, Location nl, ValueRange a) {
      Value r = kind == ReduceKind::L2 ? (Value)math::SqrtOp::create(nb, nl, a[0])
                                       : (Value)math::LogOp::create(nb, nl, a[0]);
      linalg::YieldOp::create(nb, nl, r);
    });
  }
  if (!keepdims) return res;
  SmallVector<int64_t> pos(dimsIn.begin(), dimsIn.end());
  llvm::sort(pos);
  return insertUnitDims(b, loc, res, pos);
}

Value insertUnitDims(OpBuilder &b, Location loc, Value x,
                                     ArrayRef<int64_t> resultPositions) {
  auto ty = cast<RankedTensorType>(x.getType());
  int64_t outRank = ty.getRank() + resultPositions.size();
  SmallVector<bool> unit(outRank, false);
  for (int64_t p : resultPositions) unit[p] = true;
  SmallVector<int64_t> shape;
  SmallVector<OpFoldResult> outSizes;
  SmallVector<OpFoldResult> src = mixedSizes(b, loc, x);
  SmallVector<ReassociationIndices> groups;
  ReassociationIndices cur;
  int64_t s = 0;
  for (int64_t i = 0; i < outRank; ++i) {
    cur.push_back(i);
    if (unit[i]) {
      shape.push_back(1);
      outSizes.push_back(b.getIndexAttr(1));
    } else {
      shape.push_back(ty.getDimSize(s));
      outSizes.push_back(src[s]);
      ++s;
      groups.push_back(cur);
      cur.clear();
    }
  }
  if (!cur.empty() && !groups.empty()) groups.back().append(cur.begin(), cur.end());
  auto rt = RankedTensorType::get(shape, ty.getElementType());
  return tensor::ExpandShapeOp::create(b, loc, rt, x, groups, outSizes);
}

Value dropUnitDims(OpBuilder &b, Location loc, Value x, ArrayRef<int64_t> dims) {
  auto ty = cast<RankedTensorType>(x.getType());
  int64_t rank = ty.getRank();
  SmallVector<bool> drop(rank, false);
  for (int64_t d : dims) drop[d] = true;
  // Dynamic dims being dropped are asserted to be 1 by a cast first.
  SmallVector<int64_t> castShape(ty.getShape());
  bool needCast = false;
  for (int64_t i = 0; i < rank; ++i)
    if (drop[i] && ty.isDynamicDim(i)) {
      castShape[i] = 1;
      needCast = true;
    }
  if (needCast)
    x = tensor::CastOp::create(b, loc, RankedTensorType::get(castShape, ty.getElementType()), x);
  SmallVector<ReassociationIndices> groups;
  ReassociationIndices cur;
  bool hasKept = false;
  SmallVector<int64_t> shape;
  for (int64_t i = 0; i < rank; ++i) {
    if (!drop[i] && hasKept) {
      groups.push_back(cur);
      cur.clear();
      hasKept = false;
    }
    cur.push_back(i);
    if (!drop[i]) {
      hasKept = true;
      shape.push_back(castShape[i]);
    }
  }
  if (hasKept) groups.push_back(cur);
  else if (!groups.empty()) groups.back().append(cur.begin(), cur.end());
  auto rt = RankedTensorType::get(shape, ty.getElementType());
  return tensor::CollapseShapeOp::create(b, loc, rt, x, groups);
}

Value transpose(OpBuilder &b, Location loc, Value x, ArrayRef<int64_t> perm) {
  auto ty = cast<RankedTensorType>(x.getType());
  SmallVector<OpFoldResult> src = mixedSizes(b, loc, x), dst;
  for (int64_t p : perm) dst.push_back(src[p]);
  Value init = emptyTensor(b, loc, dst, ty.getElementType());
  return linalg::TransposeOp::create(b, loc, x, init, perm).getResult()[0];
}

Value castTensor(OpBuilder &b, Location loc, Value x, Type elem) {
  auto ty = cast<RankedTensorType>(x.getType());
  if (ty.getElementType() == elem) return x;
  Value init = emptyTensor(b, loc, mixedSizes(b, loc, x), elem);
  int64_t rank = ty.getRank();
  MLIRContext *mctx = b.getContext();
  SmallVector<AffineMap> maps(2, AffineMap::getMultiDimIdentityMap(rank, mctx));
  return linalg::GenericOp::create(
             b, loc, TypeRange{init.getType()}, ValueRange{x}, ValueRange{init}, maps,
             SmallVector<utils::IteratorType>(rank, utils::IteratorType::parallel),
             [&](OpBuilder &nb, Location nl, ValueRange a) {
               linalg::YieldOp::create(nb, nl, castScalar(nb, nl, a[0], elem));
             })
      .getResult(0);
}

Value constTensor(OpBuilder &b, Location loc, DenseElementsAttr a) {
  return arith::ConstantOp::create(b, loc, a);
}

Value constFromInts(OpBuilder &b, Location loc, ArrayRef<int64_t> shape,
                                    ArrayRef<int64_t> vals, Type elem) {
  auto ty = RankedTensorType::get(shape, elem);
  if (auto it = dyn_cast<IntegerType>(elem)) {
    SmallVector<APInt> v;
    for (int64_t x : vals) v.push_back(APInt(it.getWidth(), x, /*isSigned=*/true, true));
    return constTensor(b, loc, DenseElementsAttr::get(ty, v));
  }
  auto ft = cast<FloatType>(elem);
  SmallVector<APFloat> v;
  for (int64_t x : vals) {
    APFloat f(static_cast<double>(x));
    bool lost;
    f.convert(ft.getFloatSemantics(), APFloat::rmNearestTiesToEven, &lost);
    v.push_back(f);
  }
  return constTensor(b, loc, DenseElementsAttr::get(ty, v));
}

SmallVector<OpFoldResult> intsAsFoldResults(OpBuilder &b, Location loc, Value t,
                                                           const KnownInts *k) {
  auto ty = cast<RankedTensorType>(t.getType());
  int64_t n = ty.getRank() == 0 ? 1 : ty.getDimSize(0);
  SmallVector<OpFoldResult> out;
  for (int64_t i = 0; i < n; ++i) {
    if (k && i < (int64_t)k->vals.size() && k->vals[i]) {
      out.push_back(b.getIndexAttr(*k->vals[i]));
      continue;
    }
    SmallVector<Value> idx;
    if (ty.getRank() == 1) idx.push_back(indexConst(b, loc, i));
    Value e = tensor::ExtractOp::create(b, loc, t, idx);
    out.push_back(arith::IndexCastOp::create(b, loc, b.getIndexType(), e).getResult());
  }
  return out;
}

FailureOr<Value> matmul(NodeContext &ctx, Value a, Value bm) {
  OpBuilder &b = ctx.b;
  Location loc = ctx.loc;
  auto at = cast<RankedTensorType>(a.getType()), bt = cast<RankedTensorType>(bm.getType());
  if (at.getRank() == 0 || bt.getRank() == 0)
    return ctx.error("MatMul inputs must have rank >= 1");
  Type et = at.getElementType();
  if (et != bt.getElementType()) {
    if (failed(requireSameElem(ctx, {a, bm}))) return failure();
  }
  int64_t ra = at.getRank(), rb = bt.getRank();
  bool aVec = ra == 1, bVec = rb == 1;
  int64_t ba = aVec ? 0 : ra - 2, bb = bVec ? 0 : rb - 2;
  int64_t nb = std::max(ba, bb);
  int64_t kA = at.getDimSize(ra - 1), kB = bt.getDimSize(bVec ? 0 : rb - 2);
  if (!ShapedType::isDynamic(kA) && !ShapedType::isDynamic(kB) && kA != kB)
    return ctx.error("shape mismatch: MatMul contracts a dimension of " + std::to_string(kA) +
                     " with one of " + std::to_string(kB));
  // Loops: batch (nb), m (if !aVec), n (if !bVec), k.
  MLIRContext *mctx = b.getContext();
  int64_t nl = nb + (aVec ? 0 : 1) + (bVec ? 0 : 1) + 1;
  int64_t mPos = nb, nPos = nb + (aVec ? 0 : 1), kPos = nl - 1;
  SmallVector<int64_t> outShape;
  SmallVector<Value> dyn;
  SmallVector<AffineExpr> aE, bE, oE;
  for (int64_t i = 0; i < nb; ++i) {
    int64_t ia = i - (nb - ba), ib = i - (nb - bb);
    int64_t da = ia >= 0 ? at.getDimSize(ia) : 1, db = ib >= 0 ? bt.getDimSize(ib) : 1;
    int64_t d;
    if (da == 1) d = db;
    else if (db == 1) d = da;
    else if (ShapedType::isDynamic(da)) d = db;
    else if (ShapedType::isDynamic(db)) d = da;
    else if (da != db)
      return ctx.error("shape mismatch: MatMul batch dimensions " + std::to_string(da) +
                       " and " + std::to_string(db) + " cannot be broadcast");
    else d = da;
    outShape.push_back(d);
    if (ShapedType::isDynamic(d)) {
      if (ia >= 0 && at.isDynamicDim(ia)) dyn.push_back(tensor::DimOp::create(b, loc, a, ia));
      else dyn.push_back(tensor::DimOp::create(b, loc, bm, ib));
    }
    oE.push_back(getAffineDimExpr(i, mctx));
    if (ia >= 0)
      aE.push_back(da == 1 && d != 1 ? getAffineConstantExpr(0, mctx) : getAffineDimExpr(i, mctx));
    if (ib >= 0)
      bE.push_back(db == 1 && d != 1 ? getAffineConstantExpr(0, mctx) : getAffineDimExpr(i, mctx));
  }
  if (!aVec) {
    outShape.push_back(at.getDimSize(ra - 2));
    if (at.isDynamicDim(ra - 2)) dyn.push_back(tensor::DimOp::create(b, loc, a, ra - 2));
    aE.push_back(getAffineDimExpr(mPos, mctx));
    oE.push_back(getAffineDimExpr(mPos, mctx));
  }
  aE.push_back(getAffineDimExpr(kPos, mctx));
  bE.push_back(getAffineDimExpr(kPos, mctx));
  if (!bVec) {
    outShape.push_back(bt.getDimSize(rb - 1));
    if (bt.isDynamicDim(rb - 1)) dyn.push_back(tensor::DimOp::create(b, loc, bm, rb - 1));
    bE.push_back(getAffineDimExpr(nPos, mctx));
    oE.push_back(getAffineDimExpr(nPos, mctx));
  }
  Value init = fill(b, loc, emptyTensor(b, loc, outShape, et, dyn), scalarConst(b, loc, et, 0));
  SmallVector<AffineMap> maps = {AffineMap::get(nl, 0, aE, mctx), AffineMap::get(nl, 0, bE, mctx),
                                 AffineMap::get(nl, 0, oE, mctx)};
  SmallVector<utils::IteratorType> iters(nl, utils::IteratorType::parallel);
  iters[kPos] = utils::IteratorType::reduction;
  bool isF = isFloatTy(et);
  return linalg::GenericOp::create(
             b, loc, TypeRange{init.getType()}, ValueRange{a, bm}, ValueRange{init}, maps, iters,
             [&](OpBuilder &nb2, Location l, ValueRange x) {
               Value p = isF ? (Value)arith::MulFOp::create(nb2, l, x[0], x[1])
                             : (Value)arith::MulIOp::create(nb2, l, x[0], x[1]);
               Value s = isF ? (Value)arith::AddFOp::create(nb2, l, x[2], p)
                             : (Value)arith::AddIOp::create(nb2, l, x[2], p);
               linalg::YieldOp::create(nb2, l, s);
             })
      .getResult(0);
}

} // namespace import
} // namespace photon
