//===- OpsNtoR.cpp - ONNX ops N..R -> upstream MLIR ----------------------===//
//
// Neg Not Or Pow Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax
// ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape

#include "OpHelpers.h"

#include "mlir/IR/Matchers.h"

#include <cmath>

namespace photon {
namespace import {
using namespace mlir;

static LogicalResult convertPow(NodeContext &ctx) {
  if (failed(ctx.requireInputs(2))) return failure();
  Type xt = ctx.type(0).getElementType(), yt = ctx.type(1).getElementType();
  if (!isFloatTy(xt)) return ctx.unsupported("integer bases are not supported");
  auto r = elementwise(ctx, {ctx.in(0), ctx.in(1)}, xt, [&](OpBuilder &b, Location l, ValueRange a) -> Value {
    Value y = castScalar(b, l, a[1], xt);
    return math::PowFOp::create(b, l, a[0], y);
  });
  (void)yt;
  if (failed(r)) return failure();
  ctx.setResult(0, *r);
  return success();
}

static LogicalResult convertRange(NodeContext &ctx) {
  if (failed(ctx.requireInputs(3))) return failure();
  if (failed(requireSameElem(ctx, {ctx.in(0), ctx.in(1), ctx.in(2)}))) return failure();
  for (int i = 0; i < 3; ++i)
    if (ctx.type(i).getRank() != 0 &&
        !(ctx.type(i).getRank() == 1 && ctx.type(i).getDimSize(0) == 1))
      return ctx.error("start, limit and delta must be scalars");
  Type et = ctx.type(0).getElementType();
  OpBuilder &b = ctx.b;
  Location loc = ctx.loc;
  auto cs = constScalar(ctx.in(0)), cl = constScalar(ctx.in(1)), cd = constScalar(ctx.in(2));
  auto scalarOf = [&](int i) -> Value {
    SmallVector<Value> idx(ctx.type(i).getRank(), indexConst(b, loc, 0));
    return tensor::ExtractOp::create(b, loc, ctx.in(i), idx);
  };
  Value start = scalarOf(0), delta = scalarOf(2);
  OpFoldResult n;
  if (cs && cl && cd) {
    if (*cd == 0) return ctx.error("delta must not be zero");
    double cnt = std::ceil((*cl - *cs) / *cd);
    n = b.getIndexAttr(std::max<int64_t>(0, (int64_t)cnt));
  } else {
    Value limit = scalarOf(1);
    Value nv;
    if (isFloatTy(et)) {
      Value d = arith::DivFOp::create(b, loc, arith::SubFOp::create(b, loc, limit, start), delta);
      d = math::CeilOp::create(b, loc, d);
      nv = arith::FPToSIOp::create(b, loc, b.getI64Type(), d);
    } else {
      Value d = arith::SubIOp::create(b, loc, limit, start);
      nv = arith::CeilDivSIOp::create(b, loc, d, delta);
      nv = castScalar(b, loc, nv, b.getI64Type());
    }
    nv = arith::IndexCastOp::create(b, loc, b.getIndexType(), nv);
    n = idxMax(b, loc, nv, b.getIndexAttr(0));
  }
  Value init = emptyTensor(b, loc, {n}, et);
  MLIRContext *m = ctx.context();
  Value r = linalg::GenericOp::create(
                b, loc, TypeRange{init.getType()}, ValueRange{}, ValueRange{init},
                SmallVector<AffineMap>{AffineMap::getMultiDimIdentityMap(1, m)},
                SmallVector<utils::IteratorType>{utils::IteratorType::parallel},
                [&](OpBuilder &nb, Location l, ValueRange) {
                  Value i = linalg::IndexOp::create(nb, l, 0);
                  Value iv = arith::IndexCastOp::create(nb, l, nb.getI64Type(), i);
                  iv = castScalar(nb, l, iv, et);
                  Value v = isFloatTy(et)
                                ? (Value)arith::AddFOp::create(nb, l, start, arith::MulFOp::create(nb, l, iv, delta))
                                : (Value)arith::AddIOp::create(nb, l, start, arith::MulIOp::create(nb, l, iv, delta));
                  linalg::YieldOp::create(nb, l, v);
                })
                .getResult(0);
  std::optional<KnownInts> k;
  if (isIntTy(et) && cs && cl && cd) {
    int64_t cnt = *getConstantIntValue(n);
    if (cnt <= 64) {
      KnownInts ki;
      ki.shape = {cnt};
      SmallVector<int64_t> v;
      for (int64_t i = 0; i < cnt; ++i) v.push_back((int64_t)*cs + i * (int64_t)*cd);
      for (int64_t x : v) ki.vals.push_back(x);
      k = ki;
      r = constFromInts(b, loc, {cnt}, v, et);
    }
  }
  ctx.setResult(0, r, k);
  return success();
}

static ConvertFn reduceOp(ReduceKind kind) {
  return [kind](NodeContext &ctx) -> LogicalResult {
    if (failed(ctx.requireInputs(1))) return failure();
    auto xt = ctx.type(0);
    int64_t rank = xt.getRank();
    // ReduceSum takes axes as an input from opset 13; the others from opset 18.
    int64_t inputSince = ctx.node.op_type() == "ReduceSum" ? 13 : 18;
    auto axes = readAxes(ctx, "axes", inputSince, 1);
    if (failed(axes)) return failure();
    bool keep = ctx.getInt("keepdims", 1);
    SmallVector<int64_t> dims;
    if (!*axes || (*axes)->empty()) {
      if (ctx.getInt("noop_with_empty_axes", 0)) {
        ctx.setResult(0, ctx.in(0));
        return success();
      }
      for (int64_t i = 0; i < rank; ++i) dims.push_back(i);
    } else {
      for (int64_t a : **axes) {
        if (failed(ctx.normAxis(a, rank))) return failure();
        if (llvm::is_contained(dims, a)) return ctx.error("axis " + Twine(a) + " is repeated");
        dims.push_back(a);
      }
    }
    Type et = xt.getElementType();
    if (!isFloatTy(et) && (kind == ReduceKind::Mean || kind == ReduceKind::L2 ||
                           kind == ReduceKind::LogSum || kind == ReduceKind::LogSumExp))
      return ctx.unsupported("integer inputs are not supported by this reduction");
    if (et.isInteger(1)) return ctx.unsupported("bool inputs are not supported");
    Value x = ctx.in(0);
    if (kind == ReduceKind::LogSumExp) {
      // Stable: max + log(sum(exp(x - max))).
      Value mx = reduce(ctx.b, ctx.loc, x, dims, ReduceKind::Max, true);
      auto sh = elementwise(ctx, {x, mx}, et, [](OpBuilder &b, Location l, ValueRange a) -> Value {
        return arith::SubFOp::create(b, l, a[0], a[1]);
      });
      if (failed(sh)) return failure();
      Value s = reduce(ctx.b, ctx.loc, *sh, dims, ReduceKind::LogSumExp, true);
      auto r = elementwise(ctx, {s, mx}, et, [](OpBuilder &b, Location l, ValueRange a) -> Value {
        return arith::AddFOp::create(b, l, a[0], a[1]);
      });
      if (failed(r)) return failure();
      Value out = *r;
      if (!keep) {
        SmallVector<int64_t> sorted(dims);
        llvm::sort(sorted);
        out = dropUnitDims(ctx.b, ctx.loc, out, sorted);
      }
      ctx.setResult(0, out);
      return success();
    }
    ReduceKind k = kind == ReduceKind::LogSum ? ReduceKind::LogSum : kind;
    ctx.setResult(0, reduce(ctx.b, ctx.loc, x, dims, k, keep));
    return success();
  };
}

static LogicalResult convertReshape(NodeContext &ctx) {
  auto shapeIn = shapeOperand(ctx);
  if (failed(shapeIn)) return failure();
  OpBuilder &b = ctx.b;
  Location loc = ctx.loc;
  Value x = ctx.in(0);
  auto xt = ctx.type(0);
  bool allowZero = ctx.opset >= 14 && ctx.getInt("allowzero", 0);
  SmallVector<OpFoldResult> s = std::move(*shapeIn);
  SmallVector<OpFoldResult> xs = mixedSizes(b, loc, x);
  bool anyUnknown = llvm::any_of(s, [](OpFoldResult r) { return !getConstantIntValue(r); });
  if (anyUnknown) {
    // Shape entries known only at run time: resolve 0 (copy the input dim unless
    // allowzero) and -1 (inferred from the element count) with selects.
    Value zero = indexConst(b, loc, 0), minus1 = indexConst(b, loc, -1),
          one = indexConst(b, loc, 1);
    Value total = one;
    for (OpFoldResult d : xs) total = arith::MulIOp::create(b, loc, total, foldToValue(b, loc, d));
    SmallVector<Value> ent;
    SmallVector<int64_t> shape;
    for (size_t i = 0; i < s.size(); ++i) {
      auto c = getConstantIntValue(s[i]);
      Value v = foldToValue(b, loc, s[i]);
      if (!allowZero && (int64_t)i < xt.getRank() && (!c || *c == 0)) {
        Value isZero = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, v, zero);
        v = arith::SelectOp::create(b, loc, isZero, foldToValue(b, loc, xs[i]), v);
      }
      ent.push_back(v);
      if (c && *c > 0) shape.push_back(*c);
      else if (c && *c == 0 && !allowZero && (int64_t)i < xt.getRank()) shape.push_back(xt.getDimSize(i));
      else shape.push_back(ShapedType::kDynamic);
    }
    Value rest = one;
    for (Value v : ent) {
      Value isNeg = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, v, minus1);
      rest = arith::MulIOp::create(b, loc, rest, arith::SelectOp::create(b, loc, isNeg, one, v));
    }
    Value inferred = arith::DivSIOp::create(b, loc, total, rest);
    for (Value &v : ent) {
      Value isNeg = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, v, minus1);
      v = arith::SelectOp::create(b, loc, isNeg, inferred, v);
    }
    Value shapeT = tensor::FromElementsOp::create(
        b, loc, RankedTensorType::get({(int64_t)ent.size()}, b.getIndexType()), ent);
    auto rt = RankedTensorType::get(shape, xt.getElementType());
    ctx.setResult(0, tensor::ReshapeOp::create(b, loc, rt, x, shapeT));
    return success();
  }
  int64_t inferAt = -1;
  SmallVector<OpFoldResult> out(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = getConstantIntValue(s[i]);
    if (!c) {
      out[i] = s[i];
      continue;
    }
    if (*c == -1) {
      if (inferAt >= 0) return ctx.error("more than one -1 in the shape");
      inferAt = i;
      continue;
    }
    if (*c == 0 && !allowZero) {
      if ((int64_t)i >= xt.getRank())
        return ctx.error("shape entry " + Twine(i) + " is 0 (copy) but the input has rank " +
                         Twine(xt.getRank()));
      out[i] = xs[i];
      continue;
    }
    if (*c < 0) return ctx.error("invalid shape entry " + Twine(*c));
    out[i] = s[i];
  }
  OpFoldResult total = b.getIndexAttr(1);
  for (OpFoldResult d : xs) total = idxMul(b, loc, total, d);
  if (inferAt >= 0) {
    OpFoldResult rest = b.getIndexAttr(1);
    for (size_t i = 0; i < out.size(); ++i)
      if ((int64_t)i != inferAt) rest = idxMul(b, loc, rest, out[i]);
    auto cr = getConstantIntValue(rest), ct = getConstantIntValue(total);
    if (cr && ct && (*cr == 0 || *ct % *cr != 0))
      return ctx.error("shape mismatch: cannot reshape " + Twine(*ct) + " elements with a -1 "
                       "dimension and " + Twine(*cr) + " other elements");
    out[inferAt] = idxDiv(b, loc, total, rest);
  } else {
    OpFoldResult prod = b.getIndexAttr(1);
    for (OpFoldResult d : out) prod = idxMul(b, loc, prod, d);
    auto cp = getConstantIntValue(prod), ct = getConstantIntValue(total);
    if (cp && ct && *cp != *ct)
      return ctx.error("shape mismatch: cannot reshape " + Twine(*ct) + " elements into " +
                       Twine(*cp));
  }
  auto shape = staticShapeOf(out);
  auto rt = RankedTensorType::get(shape, xt.getElementType());
  Value r;
  if (rt == xt) {
    r = x;
  } else {
    SmallVector<Value> vals;
    for (OpFoldResult o : out) vals.push_back(foldToValue(b, loc, o));
    Value shapeT = tensor::FromElementsOp::create(
        b, loc, RankedTensorType::get({(int64_t)vals.size()}, b.getIndexType()), vals);
    r = tensor::ReshapeOp::create(b, loc, rt, x, shapeT);
  }
  std::optional<KnownInts> k;
  if (ctx.knownIn(0) && !ShapedType::isDynamicShape(shape) && shape.size() <= 1) {
    k = *ctx.knownIn(0);
    k->shape.assign(shape.begin(), shape.end());
  }
  ctx.setResult(0, r, k);
  return success();
}

void registerOpsNtoR(OpRegistry &r) {
  r.onOp("Neg", 6, [](NodeContext &ctx) -> LogicalResult {
    if (failed(ctx.requireInputs(1))) return failure();
    Type et = ctx.type(0).getElementType();
    auto v = elementwise(ctx, {ctx.in(0)}, et, [&](OpBuilder &b, Location l, ValueRange a) -> Value {
      if (isFloatTy(et)) return arith::NegFOp::create(b, l, a[0]);
      return arith::SubIOp::create(b, l, scalarConst(b, l, et, 0), a[0]);
    });
    if (failed(v)) return failure();
    std::optional<KnownInts> k;
    if (!isFloatTy(et)) k = foldKnown({ctx.knownIn(0)}, [](int64_t a, int64_t) -> std::optional<int64_t> { return -a; });
    ctx.setResult(0, *v, k);
    return success();
  });
  r.onOp("Not", 1, [](NodeContext &ctx) -> LogicalResult {
    if (failed(ctx.requireInputs(1))) return failure();
    if (!ctx.type(0).getElementType().isInteger(1)) return ctx.error("input must be bool");
    auto v = elementwise(ctx, {ctx.in(0)}, ctx.b.getI1Type(), [](OpBuilder &b, Location l, ValueRange a) -> Value {
      return arith::XOrIOp::create(b, l, a[0], scalarConst(b, l, b.getI1Type(), 1));
    });
    if (failed(v)) return failure();
    ctx.setResult(0, *v);
    return success();
  });
  r.onOp("Or", 7, binaryOp(nullptr, [](OpBuilder &b, Location l, ValueRange a) -> Value { return arith::OrIOp::create(b, l, a[0], a[1]); },
                           [](int64_t a, int64_t b) -> std::optional<int64_t> { return a || b; }));
  r.onOp("Pow", 7, convertPow);
  r.onOp("Range", 11, convertRange);
  r.onOp("Reciprocal", 6, unaryFloat([](OpBuilder &b, Location l, Value x) -> Value {
    return arith::DivFOp::create(b, l, scalarConst(b, l, x.getType(), 1.0), x);
  }));
  r.onOp("ReduceL1", 1, reduceOp(ReduceKind::L1));
  r.onOp("ReduceL2", 1, reduceOp(ReduceKind::L2));
  r.onOp("ReduceLogSum", 1, reduceOp(ReduceKind::LogSum));
  r.onOp("ReduceLogSumExp", 1, reduceOp(ReduceKind::LogSumExp));
  r.onOp("ReduceMax", 1, reduceOp(ReduceKind::Max));
  r.onOp("ReduceMean", 1, reduceOp(ReduceKind::Mean));
  r.onOp("ReduceMin", 1, reduceOp(ReduceKind::Min));
  r.onOp("ReduceProd", 1, reduceOp(ReduceKind::Prod));
  r.onOp("ReduceSum", 1, reduceOp(ReduceKind::Sum));
  r.onOp("ReduceSumSquare", 1, reduceOp(ReduceKind::SumSquare));
  r.onOp("Relu", 6, [](NodeContext &ctx) -> LogicalResult {
    if (failed(ctx.requireInputs(1))) return failure();
    Type et = ctx.type(0).getElementType();
    auto v = elementwise(ctx, {ctx.in(0)}, et, [&](OpBuilder &b, Location l, ValueRange a) -> Value {
      if (isFloatTy(et)) return arith::MaximumFOp::create(b, l, a[0], scalarConst(b, l, et, 0));
      return arith::MaxSIOp::create(b, l, a[0], scalarConst(b, l, et, 0));
    });
    if (failed(v)) return failure();
    ctx.setResult(0, *v);
    return success();
  });
  r.onOp("Reshape", 5, convertReshape);
}

} // namespace import
} // namespace photon
