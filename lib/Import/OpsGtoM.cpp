//===- OpsGtoM.cpp - ONNX ops G..M -> upstream MLIR ----------------------===//
//
// Gather Gemm Greater GreaterOrEqual Identity LayerNormalization LeakyRelu Less LessOrEqual
// Log LogSoftmax MatMul Max Mean Min Mul

#include "OpHelpers.h"

namespace photon {
namespace import {
using namespace mlir;

static LogicalResult convertGather(NodeContext &ctx) {
  if (failed(ctx.requireInputs(2))) return failure();
  Value data = ctx.in(0), idx = ctx.in(1);
  auto dt = ctx.type(0), it = ctx.type(1);
  if (!isIntTy(it.getElementType()) || it.getElementType().isInteger(1))
    return ctx.error("indices must be int32 or int64");
  int64_t axis = ctx.getInt("axis", 0);
  if (failed(ctx.normAxis(axis, dt.getRank()))) return failure();
  OpBuilder &b = ctx.b;
  Location loc = ctx.loc;
  // Fold shape arithmetic: known data and known indices.
  std::optional<KnownInts> k;
  const KnownInts *kd = ctx.knownIn(0);
  auto ki = ctx.constInts(1);
  if (kd && kd->rank() == 1 && ki && it.getRank() <= 1) {
    KnownInts o;
    int64_t n = kd->vals.size();
    bool ok = true;
    for (int64_t i : *ki) {
      if (i < -n || i >= n) {
        ok = false;
        break;
      }
      o.vals.push_back(kd->vals[i < 0 ? i + n : i]);
    }
    if (ok) {
      if (it.getRank() == 1) o.shape = {(int64_t)ki->size()};
      k = o;
    }
  }
  // Static out-of-range indices are an error, not undefined behaviour.
  if (ki && !dt.isDynamicDim(axis)) {
    int64_t n = dt.getDimSize(axis);
    for (int64_t i : *ki)
      if (i < -n || i >= n)
        return ctx.error("index " + Twine(i) + " is out of range for dimension " + Twine(axis) +
                         " of size " + Twine(n));
  }
  SmallVector<OpFoldResult> ds = mixedSizes(b, loc, data), is = mixedSizes(b, loc, idx), os;
  for (int64_t i = 0; i < axis; ++i) os.push_back(ds[i]);
  os.append(is.begin(), is.end());
  for (int64_t i = axis + 1; i < dt.getRank(); ++i) os.push_back(ds[i]);
  int64_t orank = os.size(), irank = it.getRank();
  MLIRContext *m = ctx.context();
  Value init = emptyTensor(b, loc, os, dt.getElementType());
  SmallVector<AffineExpr> ie;
  for (int64_t i = 0; i < irank; ++i) ie.push_back(getAffineDimExpr(axis + i, m));
  SmallVector<AffineMap> maps = {AffineMap::get(orank, 0, ie, m),
                                 AffineMap::getMultiDimIdentityMap(orank, m)};
  Value axisDim = dimValue(b, loc, data, axis);
  Value r = linalg::GenericOp::create(
                b, loc, TypeRange{init.getType()}, ValueRange{idx}, ValueRange{init}, maps,
                SmallVector<utils::IteratorType>(orank, utils::IteratorType::parallel),
                [&](OpBuilder &nb, Location l, ValueRange a) {
                  Value i = arith::IndexCastOp::create(nb, l, nb.getIndexType(), a[0]);
                  Value zero = indexConst(nb, l, 0);
                  Value neg = arith::CmpIOp::create(nb, l, arith::CmpIPredicate::slt, i, zero);
                  Value wrapped = arith::AddIOp::create(nb, l, i, axisDim);
                  i = arith::SelectOp::create(nb, l, neg, wrapped, i);
                  SmallVector<Value> coords;
                  for (int64_t d = 0; d < dt.getRank(); ++d) {
                    if (d < axis) coords.push_back(linalg::IndexOp::create(nb, l, d));
                    else if (d == axis) coords.push_back(i);
                    else coords.push_back(linalg::IndexOp::create(nb, l, d - 1 + irank));
                  }
                  Value v = tensor::ExtractOp::create(nb, l, data, coords);
                  linalg::YieldOp::create(nb, l, v);
                })
                .getResult(0);
  ctx.setResult(0, r, k);
  return success();
}

static LogicalResult convertGemm(NodeContext &ctx) {
  if (failed(ctx.requireInputs(2))) return failure();
  Value a = ctx.in(0), bm = ctx.in(1);
  if (failed(requireSameElem(ctx, {a, bm, ctx.in(2)}))) return failure();
  auto at = ctx.type(0), bt = ctx.type(1);
  if (at.getRank() != 2 || bt.getRank() != 2) return ctx.error("A and B must be 2-D");
  bool tA = ctx.getInt("transA", 0), tB = ctx.getInt("transB", 0);
  float alpha = ctx.getFloat("alpha", 1.0f), beta = ctx.getFloat("beta", 1.0f);
  int64_t kA = at.getDimSize(tA ? 0 : 1), kB = bt.getDimSize(tB ? 1 : 0);
  if (!ShapedType::isDynamic(kA) && !ShapedType::isDynamic(kB) && kA != kB)
    return ctx.error("shape mismatch: Gemm contracts " + Twine(kA) + " with " + Twine(kB));
  OpBuilder &b = ctx.b;
  Location loc = ctx.loc;
  MLIRContext *m = ctx.context();
  Type et = at.getElementType();
  bool isF = isFloatTy(et);
  SmallVector<OpFoldResult> as = mixedSizes(b, loc, a), bs = mixedSizes(b, loc, bm);
  SmallVector<OpFoldResult> os = {as[tA ? 1 : 0], bs[tB ? 0 : 1]};
  Value init = fill(b, loc, emptyTensor(b, loc, os, et), scalarConst(b, loc, et, 0));
  AffineExpr d0 = getAffineDimExpr(0, m), d1 = getAffineDimExpr(1, m), d2 = getAffineDimExpr(2, m);
  SmallVector<AffineMap> maps = {
      AffineMap::get(3, 0, tA ? SmallVector<AffineExpr>{d2, d0} : SmallVector<AffineExpr>{d0, d2}, m),
      AffineMap::get(3, 0, tB ? SmallVector<AffineExpr>{d1, d2} : SmallVector<AffineExpr>{d2, d1}, m),
      AffineMap::get(3, 0, {d0, d1}, m)};
  SmallVector<utils::IteratorType> iters = {utils::IteratorType::parallel, utils::IteratorType::parallel,
                                            utils::IteratorType::reduction};
  Value y = linalg::GenericOp::create(
                b, loc, TypeRange{init.getType()}, ValueRange{a, bm}, ValueRange{init}, maps, iters,
                [&](OpBuilder &nb, Location l, ValueRange x) {
                  Value p = isF ? (Value)arith::MulFOp::create(nb, l, x[0], x[1])
                                : (Value)arith::MulIOp::create(nb, l, x[0], x[1]);
                  Value s = isF ? (Value)arith::AddFOp::create(nb, l, x[2], p)
                                : (Value)arith::AddIOp::create(nb, l, x[2], p);
                  linalg::YieldOp::create(nb, l, s);
                })
                .getResult(0);
  SmallVector<Value> ins = {y};
  bool hasC = ctx.hasInput(2) && beta != 0.0f;
  if (hasC) ins.push_back(ctx.in(2));
  if (alpha != 1.0f || hasC) {
    auto r = elementwise(ctx, ins, et, [&](OpBuilder &nb, Location l, ValueRange v) -> Value {
      Value acc = v[0];
      if (alpha != 1.0f) {
        Value al = scalarConst(nb, l, et, alpha);
        acc = isF ? (Value)arith::MulFOp::create(nb, l, acc, al) : (Value)arith::MulIOp::create(nb, l, acc, al);
      }
      if (v.size() > 1) {
        Value c = v[1];
        if (beta != 1.0f) {
          Value be = scalarConst(nb, l, et, beta);
          c = isF ? (Value)arith::MulFOp::create(nb, l, c, be) : (Value)arith::MulIOp::create(nb, l, c, be);
        }
        acc = isF ? (Value)arith::AddFOp::create(nb, l, acc, c) : (Value)arith::AddIOp::create(nb, l, acc, c);
      }
      return acc;
    });
    if (failed(r)) return failure();
    y = *r;
  }
  ctx.setResult(0, y);
  return success();
}

static LogicalResult convertLayerNorm(NodeContext &ctx) {
  if (failed(ctx.requireInputs(2))) return failure();
  Value x = ctx.in(0);
  auto xt = ctx.type(0);
  Type et = xt.getElementType();
  if (!isFloatTy(et)) return ctx.error("X must be floating point");
  if (failed(requireSameElem(ctx, {x, ctx.in(1), ctx.in(2)}))) return failure();
  int64_t rank = xt.getRank(), axis = ctx.getInt("axis", -1);
  if (failed(ctx.normAxis(axis, rank))) return failure();
  float eps = ctx.getFloat("epsilon", 1e-5f);
  OpBuilder &b = ctx.b;
  Location loc = ctx.loc;
  SmallVector<int64_t> dims;
  for (int64_t i = axis; i < rank; ++i) dims.push_back(i);
  Value mean = reduce(b, loc, x, dims, ReduceKind::Mean, true);
  auto sub = [](OpBuilder &nb, Location l, ValueRange a) -> Value { return arith::SubFOp::create(nb, l, a[0], a[1]); };
  auto d = elementwise(ctx, {x, mean}, et, sub);
  if (failed(d)) return failure();
  Value var = reduce(b, loc, *d, dims, ReduceKind::SumSquare, true);
  // var / n
  Value n = indexConst(b, loc, 1);
  for (int64_t i : dims) n = arith::MulIOp::create(b, loc, n, dimValue(b, loc, x, i));
  Value nf = castScalar(b, loc, arith::IndexCastOp::create(b, loc, b.getI64Type(), n), et);
  auto inv = elementwise(ctx, {var}, et, [&](OpBuilder &nb, Location l, ValueRange a) -> Value {
    Value v = arith::DivFOp::create(nb, l, a[0], nf);
    v = arith::AddFOp::create(nb, l, v, scalarConst(nb, l, et, eps));
    return math::RsqrtOp::create(nb, l, v);
  });
  if (failed(inv)) return failure();
  SmallVector<Value> ins = {*d, *inv, ctx.in(1)};
  if (ctx.hasInput(2)) ins.push_back(ctx.in(2));
  auto y = elementwise(ctx, ins, et, [&](OpBuilder &nb, Location l, ValueRange a) -> Value {
    Value v = arith::MulFOp::create(nb, l, a[0], a[1]);
    v = arith::MulFOp::create(nb, l, v, a[2]);
    if (a.size() > 3) v = arith::AddFOp::create(nb, l, v, a[3]);
    return v;
  });
  if (failed(y)) return failure();
  ctx.setResult(0, *y);
  if (ctx.node.output_size() > 1) ctx.setResult(1, mean);
  if (ctx.node.output_size() > 2) ctx.setResult(2, *inv);
  return success();
}

LogicalResult convertSoftmaxLike(NodeContext &ctx, bool log) {
  if (failed(ctx.requireInputs(1))) return failure();
  Value x = ctx.in(0);
  auto xt = ctx.type(0);
  Type et = xt.getElementType();
  if (!isFloatTy(et)) return ctx.error("input must be floating point");
  int64_t rank = xt.getRank();
  if (rank == 0) return ctx.error("input must have rank >= 1");
  int64_t axis = ctx.getInt("axis", ctx.opset >= 13 ? -1 : 1);
  if (failed(ctx.normAxis(axis, rank))) return failure();
  SmallVector<int64_t> dims;
  if (ctx.opset >= 13) dims.push_back(axis);
  else
    for (int64_t i = axis; i < rank; ++i) dims.push_back(i);
  OpBuilder &b = ctx.b;
  Location loc = ctx.loc;
  Value mx = reduce(b, loc, x, dims, ReduceKind::Max, true);
  auto sh = elementwise(ctx, {x, mx}, et, [](OpBuilder &nb, Location l, ValueRange a) -> Value {
    return arith::SubFOp::create(nb, l, a[0], a[1]);
  });
  if (failed(sh)) return failure();
  Value s = reduce(b, loc, *sh, dims, ReduceKind::LogSumExp, true); // log(sum(exp))
  FailureOr<Value> r;
  if (log) {
    r = elementwise(ctx, {*sh, s}, et, [](OpBuilder &nb, Location l, ValueRange a) -> Value {
      return arith::SubFOp::create(nb, l, a[0], a[1]);
    });
  } else {
    r = elementwise(ctx, {*sh, s}, et, [](OpBuilder &nb, Location l, ValueRange a) -> Value {
      return math::ExpOp::create(nb, l, arith::SubFOp::create(nb, l, a[0], a[1]));
    });
  }
  if (failed(r)) return failure();
  ctx.setResult(0, *r);
  return success();
}

static ConvertFn variadic(FloatBody f, FloatBody i, bool mean = false) {
  return [=](NodeContext &ctx) -> LogicalResult {
    SmallVector<Value> ins;
    for (size_t k = 0; k < ctx.numInputs(); ++k)
      if (ctx.hasInput(k)) ins.push_back(ctx.in(k));
    if (ins.empty()) return ctx.error("needs at least one input");
    if (failed(requireSameElem(ctx, ins))) return failure();
    Type et = cast<RankedTensorType>(ins[0].getType()).getElementType();
    bool isF = isFloatTy(et);
    if ((isF && !f) || (!isF && !i)) return ctx.unsupported("element type not supported");
    auto r = elementwise(ctx, ins, et, [&](OpBuilder &nb, Location l, ValueRange a) -> Value {
      Value acc = a[0];
      for (size_t k = 1; k < a.size(); ++k) acc = (isF ? f : i)(nb, l, ValueRange{acc, a[k]});
      if (mean) acc = arith::DivFOp::create(nb, l, acc, scalarConst(nb, l, et, (double)a.size()));
      return acc;
    });
    if (failed(r)) return failure();
    ctx.setResult(0, *r);
    return success();
  };
}

void registerOpsGtoM(OpRegistry &r) {
  auto cmpF = [](arith::CmpFPredicate p) {
    return [p](OpBuilder &b, Location l, ValueRange a) -> Value { return arith::CmpFOp::create(b, l, p, a[0], a[1]); };
  };
  auto cmpI = [](arith::CmpIPredicate p) {
    return [p](OpBuilder &b, Location l, ValueRange a) -> Value { return arith::CmpIOp::create(b, l, p, a[0], a[1]); };
  };
  r.onOp("Gather", 1, convertGather);
  r.onOp("Gemm", 7, convertGemm);
  r.onOp("Greater", 7, binaryOp(cmpF(arith::CmpFPredicate::OGT), cmpI(arith::CmpIPredicate::sgt),
                                [](int64_t a, int64_t b) -> std::optional<int64_t> { return a > b; }, true));
  r.onOp("GreaterOrEqual", 12, binaryOp(cmpF(arith::CmpFPredicate::OGE), cmpI(arith::CmpIPredicate::sge),
                                        [](int64_t a, int64_t b) -> std::optional<int64_t> { return a >= b; }, true));
  r.onOp("Identity", 1, [](NodeContext &ctx) -> LogicalResult {
    if (failed(ctx.requireInputs(1))) return failure();
    ctx.setResult(0, ctx.in(0), ctx.knownIn(0) ? std::optional<KnownInts>(*ctx.knownIn(0)) : std::nullopt);
    return success();
  });
  r.onOp("LayerNormalization", 17, convertLayerNorm);
  r.onOp("LeakyRelu", 6, [](NodeContext &ctx) -> LogicalResult {
    float alpha = ctx.getFloat("alpha", 0.01f);
    return unaryFloat([alpha](OpBuilder &b, Location l, Value x) -> Value {
      Value z = scalarConst(b, l, x.getType(), 0);
      Value neg = arith::CmpFOp::create(b, l, arith::CmpFPredicate::OLT, x, z);
      Value s = arith::MulFOp::create(b, l, x, scalarConst(b, l, x.getType(), alpha));
      return arith::SelectOp::create(b, l, neg, s, x);
    })(ctx);
  });
  r.onOp("Less", 7, binaryOp(cmpF(arith::CmpFPredicate::OLT), cmpI(arith::CmpIPredicate::slt),
                             [](int64_t a, int64_t b) -> std::optional<int64_t> { return a < b; }, true));
  r.onOp("LessOrEqual", 12, binaryOp(cmpF(arith::CmpFPredicate::OLE), cmpI(arith::CmpIPredicate::sle),
                                     [](int64_t a, int64_t b) -> std::optional<int64_t> { return a <= b; }, true));
  r.onOp("Log", 6, unaryFloat([](OpBuilder &b, Location l, Value x) -> Value { return math::LogOp::create(b, l, x); }));
  r.onOp("LogSoftmax", 1, [](NodeContext &ctx) { return convertSoftmaxLike(ctx, true); });
  r.onOp("MatMul", 1, [](NodeContext &ctx) -> LogicalResult {
    if (failed(ctx.requireInputs(2))) return failure();
    auto v = matmul(ctx, ctx.in(0), ctx.in(1));
    if (failed(v)) return failure();
    ctx.setResult(0, *v);
    return success();
  });
  r.onOp("Max", 8, variadic([](OpBuilder &b, Location l, ValueRange a) -> Value { return arith::MaximumFOp::create(b, l, a[0], a[1]); },
                            [](OpBuilder &b, Location l, ValueRange a) -> Value { return arith::MaxSIOp::create(b, l, a[0], a[1]); }));
  r.onOp("Mean", 8, variadic([](OpBuilder &b, Location l, ValueRange a) -> Value { return arith::AddFOp::create(b, l, a[0], a[1]); },
                             nullptr, true));
  r.onOp("Min", 8, variadic([](OpBuilder &b, Location l, ValueRange a) -> Value { return arith::MinimumFOp::create(b, l, a[0], a[1]); },
                            [](OpBuilder &b, Location l, ValueRange a) -> Value { return arith::MinSIOp::create(b, l, a[0], a[1]); }));
  r.onOp("Mul", 7, binaryOp([](OpBuilder &b, Location l, ValueRange a) -> Value { return arith::MulFOp::create(b, l, a[0], a[1]); },
                            [](OpBuilder &b, Location l, ValueRange a) -> Value { return arith::MulIOp::create(b, l, a[0], a[1]); },
                            [](int64_t a, int64_t b) -> std::optional<int64_t> { return a * b; }));
}

} // namespace import
} // namespace photon
