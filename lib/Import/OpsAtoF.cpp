//===- OpsAtoF.cpp - ONNX ops A..F -> upstream MLIR ----------------------===//
//
// Abs Add And Cast Ceil Concat Constant ConstantOfShape Cos CumSum Div Dropout Equal Erf
// Exp Expand Flatten Floor

#include "OpHelpers.h"

namespace photon {
namespace import {
using namespace mlir;

static LogicalResult convertCast(NodeContext &ctx) {
  if (failed(ctx.requireInputs(1))) return failure();
  int64_t to = ctx.getInt("to", 0);
  Type et = onnxElemType(ctx.context(), (int32_t)to);
  if (!et)
    return ctx.unsupported(Twine("cast to ") + onnxTypeName((int32_t)to) + " is not supported");
  Value r = castTensor(ctx.b, ctx.loc, ctx.in(0), et);
  std::optional<KnownInts> k;
  if (isIntTy(et) && ctx.knownIn(0) && isIntTy(ctx.type(0).getElementType())) {
    k = *ctx.knownIn(0);
    if (et.isInteger(1))
      for (auto &v : k->vals)
        if (v) v = *v != 0;
  }
  ctx.setResult(0, r, k);
  return success();
}

static LogicalResult convertConcat(NodeContext &ctx) {
  SmallVector<Value> ins;
  for (size_t i = 0; i < ctx.numInputs(); ++i)
    if (ctx.hasInput(i)) ins.push_back(ctx.in(i));
  if (ins.empty()) return ctx.error("Concat needs at least one input");
  if (failed(requireSameElem(ctx, ins))) return failure();
  int64_t rank = cast<RankedTensorType>(ins[0].getType()).getRank();
  if (!ctx.hasAttr("axis")) return ctx.error("missing required attribute 'axis'");
  int64_t axis = ctx.getInt("axis", 0);
  if (failed(ctx.normAxis(axis, rank))) return failure();
  for (Value v : ins) {
    auto t = cast<RankedTensorType>(v.getType());
    if (t.getRank() != rank)
      return ctx.error("shape mismatch: inputs have ranks " + Twine(rank) + " and " +
                       Twine(t.getRank()));
    for (int64_t d = 0; d < rank; ++d) {
      if (d == axis) continue;
      int64_t a = cast<RankedTensorType>(ins[0].getType()).getDimSize(d), c = t.getDimSize(d);
      if (!ShapedType::isDynamic(a) && !ShapedType::isDynamic(c) && a != c)
        return ctx.error("shape mismatch: dimension " + Twine(d) + " is " + Twine(a) +
                         " in one input and " + Twine(c) + " in another");
    }
  }
  Value r = ins.size() == 1 ? ins[0] : tensor::ConcatOp::create(ctx.b, ctx.loc, axis, ins).getResult();
  std::optional<KnownInts> k;
  if (rank == 1 && isIntTy(cast<RankedTensorType>(r.getType()).getElementType()) &&
      !cast<RankedTensorType>(r.getType()).isDynamicDim(0) &&
      cast<RankedTensorType>(r.getType()).getDimSize(0) <= 64) {
    KnownInts out;
    out.shape = {cast<RankedTensorType>(r.getType()).getDimSize(0)};
    size_t j = 0;
    for (size_t i = 0; i < ctx.numInputs(); ++i) {
      if (!ctx.hasInput(i)) continue;
      const KnownInts *ki = ctx.knownIn(i);
      int64_t len = ctx.type(i).getDimSize(0);
      for (int64_t e = 0; e < len; ++e, ++j)
        out.vals.push_back(ki && e < (int64_t)ki->vals.size() ? ki->vals[e] : std::nullopt);
    }
    k = out;
  }
  ctx.setResult(0, r, k);
  return success();
}

static LogicalResult convertConstant(NodeContext &ctx) {
  const std::string &name = ctx.node.output(0);
  onnx::TensorProto tmp;
  const onnx::TensorProto *t = nullptr;
  if (const auto *a = ctx.attr("value")) {
    t = &a->t();
  } else if (const auto *a = ctx.attr("value_float")) {
    tmp.set_data_type(onnx::TensorProto::FLOAT);
    tmp.add_float_data(a->f());
    t = &tmp;
  } else if (const auto *a = ctx.attr("value_floats")) {
    tmp.set_data_type(onnx::TensorProto::FLOAT);
    tmp.add_dims(a->floats_size());
    for (float f : a->floats()) tmp.add_float_data(f);
    t = &tmp;
  } else if (const auto *a = ctx.attr("value_int")) {
    tmp.set_data_type(onnx::TensorProto::INT64);
    tmp.add_int64_data(a->i());
    t = &tmp;
  } else if (const auto *a = ctx.attr("value_ints")) {
    tmp.set_data_type(onnx::TensorProto::INT64);
    tmp.add_dims(a->ints_size());
    for (int64_t v : a->ints()) tmp.add_int64_data(v);
    t = &tmp;
  } else if (ctx.hasAttr("sparse_value")) {
    return ctx.unsupported("sparse constants are not supported");
  } else if (ctx.hasAttr("value_string") || ctx.hasAttr("value_strings")) {
    return ctx.unsupported("string constants are not supported");
  } else {
    return ctx.error("Constant has no value attribute");
  }
  if (t == &tmp) tmp.set_name(name);
  KnownInts k;
  auto v = ctx.gi.tensorValue(ctx.b, ctx.loc, *t, name, /*isInitializer=*/false, &k);
  if (failed(v)) return failure();
  std::optional<KnownInts> ko;
  if (!k.vals.empty() || k.shape.size() == 1) ko = k;
  ctx.setResult(0, *v, ko);
  return success();
}

static LogicalResult convertConstantOfShape(NodeContext &ctx) {
  if (failed(ctx.requireInputs(1))) return failure();
  auto st = ctx.type(0);
  if (st.getRank() != 1 || st.isDynamicDim(0))
    return ctx.unsupported("the shape input must be 1-D with a static length");
  Type et = ctx.b.getF32Type();
  double value = 0;
  if (const auto *a = ctx.attr("value")) {
    et = onnxElemType(ctx.context(), a->t().data_type());
    if (!et) return ctx.unsupported("value of an unsupported type");
    KnownInts k;
    OpBuilder::InsertionGuard g(ctx.b);
    auto v = ctx.gi.tensorValue(ctx.b, ctx.loc, a->t(), ctx.node.output(0) + ".value", false, &k);
    if (failed(v)) return failure();
    auto c = constScalar(*v);
    if (!c) return ctx.error("the value attribute must hold exactly one element");
    value = *c;
  }
  SmallVector<OpFoldResult> sizes = intsAsFoldResults(ctx.b, ctx.loc, ctx.in(0), ctx.knownIn(0));
  for (OpFoldResult s : sizes)
    if (auto c = getConstantIntValue(s); c && *c < 0)
      return ctx.error("negative dimension " + Twine(*c) + " in the shape input");
  Value init = emptyTensor(ctx.b, ctx.loc, sizes, et);
  Value r = fill(ctx.b, ctx.loc, init, scalarConst(ctx.b, ctx.loc, et, value));
  std::optional<KnownInts> k;
  auto shape = staticShapeOf(sizes);
  if (isIntTy(et) && shape.size() <= 1 && !ShapedType::isDynamicShape(shape)) {
    int64_t n = shape.empty() ? 1 : shape[0];
    if (n <= 64) {
      KnownInts ki;
      ki.shape.assign(shape.begin(), shape.end());
      ki.vals.assign(n, (int64_t)value);
      k = ki;
    }
  }
  ctx.setResult(0, r, k);
  return success();
}

static LogicalResult convertCumSum(NodeContext &ctx) {
  if (failed(ctx.requireInputs(2))) return failure();
  auto axisV = ctx.constInts(1);
  if (!axisV || axisV->size() != 1) return ctx.unsupported("axis must be a constant scalar");
  Value x = ctx.in(0);
  auto ty = ctx.type(0);
  int64_t rank = ty.getRank(), axis = (*axisV)[0];
  if (failed(ctx.normAxis(axis, rank))) return failure();
  bool exclusive = ctx.getInt("exclusive", 0), reverse = ctx.getInt("reverse", 0);
  Type et = ty.getElementType();
  bool isF = isFloatTy(et);
  OpBuilder &b = ctx.b;
  MLIRContext *m = ctx.context();
  Value init = fill(b, ctx.loc, emptyTensor(b, ctx.loc, mixedSizes(b, ctx.loc, x), et),
                    scalarConst(b, ctx.loc, et, 0));
  // Loops: rank output dims + j (reduction over the axis).
  SmallVector<AffineExpr> inE;
  for (int64_t i = 0; i < rank; ++i)
    inE.push_back(getAffineDimExpr(i == axis ? rank : i, m));
  SmallVector<AffineMap> maps = {AffineMap::get(rank + 1, 0, inE, m),
                                 AffineMap::getMultiDimIdentityMap(rank + 1, m).getMajorSubMap(rank)};
  SmallVector<utils::IteratorType> iters(rank + 1, utils::IteratorType::parallel);
  iters[rank] = utils::IteratorType::reduction;
  arith::CmpIPredicate pred = reverse ? (exclusive ? arith::CmpIPredicate::sgt : arith::CmpIPredicate::sge)
                                      : (exclusive ? arith::CmpIPredicate::slt : arith::CmpIPredicate::sle);
  Value r = linalg::GenericOp::create(
                b, ctx.loc, TypeRange{init.getType()}, ValueRange{x}, ValueRange{init}, maps, iters,
                [&](OpBuilder &nb, Location l, ValueRange a) {
                  Value i = linalg::IndexOp::create(nb, l, axis);
                  Value j = linalg::IndexOp::create(nb, l, rank);
                  Value c = arith::CmpIOp::create(nb, l, pred, j, i);
                  Value z = scalarConst(nb, l, et, 0);
                  Value v = arith::SelectOp::create(nb, l, c, a[0], z);
                  Value s = isF ? (Value)arith::AddFOp::create(nb, l, a[1], v)
                                : (Value)arith::AddIOp::create(nb, l, a[1], v);
                  linalg::YieldOp::create(nb, l, s);
                })
                .getResult(0);
  ctx.setResult(0, r);
  return success();
}

static LogicalResult convertDropout(NodeContext &ctx) {
  if (failed(ctx.requireInputs(1))) return failure();
  if (ctx.hasInput(2)) {
    auto t = ctx.constInts(2);
    if (!t || (*t)[0] != 0) return ctx.unsupported("training_mode must be a constant false");
  }
  if (ctx.getInt("is_test", 1) == 0 && ctx.opset < 7)
    return ctx.unsupported("training-mode dropout");
  ctx.setResult(0, ctx.in(0), ctx.knownIn(0) ? std::optional<KnownInts>(*ctx.knownIn(0)) : std::nullopt);
  if (ctx.node.output_size() > 1 && !ctx.node.output(1).empty()) {
    Value init = emptyTensor(ctx.b, ctx.loc, mixedSizes(ctx.b, ctx.loc, ctx.in(0)), ctx.b.getI1Type());
    ctx.setResult(1, fill(ctx.b, ctx.loc, init, scalarConst(ctx.b, ctx.loc, ctx.b.getI1Type(), 1)));
  }
  return success();
}

static LogicalResult convertExpand(NodeContext &ctx) {
  auto shapeIn = shapeOperand(ctx);
  if (failed(shapeIn)) return failure();
  OpBuilder &b = ctx.b;
  Location loc = ctx.loc;
  Value x = ctx.in(0);
  auto xt = ctx.type(0);
  SmallVector<OpFoldResult> s = std::move(*shapeIn);
  int64_t rank = std::max<int64_t>(xt.getRank(), s.size());
  SmallVector<OpFoldResult> out(rank);
  SmallVector<OpFoldResult> xs = mixedSizes(b, loc, x);
  for (int64_t i = 0; i < rank; ++i) {
    int64_t si = i - (rank - (int64_t)s.size()), xi = i - (rank - xt.getRank());
    OpFoldResult a = si >= 0 ? s[si] : b.getIndexAttr(1);
    OpFoldResult c = xi >= 0 ? xs[xi] : b.getIndexAttr(1);
    auto ca = getConstantIntValue(a), cc = getConstantIntValue(c);
    if (ca && *ca == 1) out[i] = c;
    else if (cc && *cc == 1) out[i] = a;
    else if (ca && cc && *ca != *cc)
      return ctx.error("shape mismatch: cannot expand dimension of size " + Twine(*cc) + " to " +
                       Twine(*ca));
    else if (cc) out[i] = c;
    else if (ca) out[i] = a;
    else out[i] = idxMax(b, loc, a, c);
  }
  auto shape = staticShapeOf(out);
  MLIRContext *m = ctx.context();
  SmallVector<AffineExpr> e;
  for (int64_t j = 0; j < xt.getRank(); ++j) {
    int64_t i = j + (rank - xt.getRank());
    e.push_back(xt.getDimSize(j) == 1 && shape[i] != 1 ? getAffineConstantExpr(0, m)
                                                       : getAffineDimExpr(i, m));
  }
  Value init = emptyTensor(b, loc, out, xt.getElementType());
  SmallVector<AffineMap> maps = {AffineMap::get(rank, 0, e, m),
                                 AffineMap::getMultiDimIdentityMap(rank, m)};
  Value r = linalg::GenericOp::create(
                b, loc, TypeRange{init.getType()}, ValueRange{x}, ValueRange{init}, maps,
                SmallVector<utils::IteratorType>(rank, utils::IteratorType::parallel),
                [&](OpBuilder &nb, Location l, ValueRange a) { linalg::YieldOp::create(nb, l, a[0]); })
                .getResult(0);
  ctx.setResult(0, r);
  return success();
}

static LogicalResult convertFlatten(NodeContext &ctx) {
  if (failed(ctx.requireInputs(1))) return failure();
  auto ty = ctx.type(0);
  int64_t rank = ty.getRank(), axis = ctx.getInt("axis", 1);
  if (axis < -rank || axis > rank)
    return ctx.error("axis " + Twine(axis) + " is out of range for rank " + Twine(rank));
  if (axis < 0) axis += rank;
  Value x = ctx.in(0);
  if (rank == 0) {
    ctx.setResult(0, insertUnitDims(ctx.b, ctx.loc, x, {0, 1}));
    return success();
  }
  SmallVector<ReassociationIndices> groups;
  ReassociationIndices g0, g1;
  for (int64_t i = 0; i < rank; ++i) (i < axis ? g0 : g1).push_back(i);
  Value r;
  if (g0.empty() || g1.empty()) {
    ReassociationIndices all;
    for (int64_t i = 0; i < rank; ++i) all.push_back(i);
    Value flat = tensor::CollapseShapeOp::create(ctx.b, ctx.loc, x, ArrayRef<ReassociationIndices>{all});
    r = insertUnitDims(ctx.b, ctx.loc, flat, {g0.empty() ? 0 : 1});
  } else {
    r = tensor::CollapseShapeOp::create(ctx.b, ctx.loc, x, ArrayRef<ReassociationIndices>{g0, g1});
  }
  ctx.setResult(0, r);
  return success();
}

void registerOpsAtoF(OpRegistry &r) {
  auto fAdd = [](OpBuilder &b, Location l, ValueRange a) -> Value { return arith::AddFOp::create(b, l, a[0], a[1]); };
  auto iAdd = [](OpBuilder &b, Location l, ValueRange a) -> Value { return arith::AddIOp::create(b, l, a[0], a[1]); };
  auto fDiv = [](OpBuilder &b, Location l, ValueRange a) -> Value { return arith::DivFOp::create(b, l, a[0], a[1]); };
  auto iDiv = [](OpBuilder &b, Location l, ValueRange a) -> Value { return arith::DivSIOp::create(b, l, a[0], a[1]); };
  auto iAnd = [](OpBuilder &b, Location l, ValueRange a) -> Value { return arith::AndIOp::create(b, l, a[0], a[1]); };
  auto fEq = [](OpBuilder &b, Location l, ValueRange a) -> Value { return arith::CmpFOp::create(b, l, arith::CmpFPredicate::OEQ, a[0], a[1]); };
  auto iEq = [](OpBuilder &b, Location l, ValueRange a) -> Value { return arith::CmpIOp::create(b, l, arith::CmpIPredicate::eq, a[0], a[1]); };

  r.onOp("Abs", 6, [](NodeContext &ctx) -> LogicalResult {
    if (failed(ctx.requireInputs(1))) return failure();
    Type et = ctx.type(0).getElementType();
    auto v = elementwise(ctx, {ctx.in(0)}, et, [&](OpBuilder &b, Location l, ValueRange a) -> Value {
      if (isFloatTy(et)) return math::AbsFOp::create(b, l, a[0]);
      return math::AbsIOp::create(b, l, a[0]);
    });
    if (failed(v)) return failure();
    ctx.setResult(0, *v);
    return success();
  });
  r.onOp("Add", 7, binaryOp(fAdd, iAdd, [](int64_t a, int64_t b) -> std::optional<int64_t> { return a + b; }));
  r.onOp("And", 7, binaryOp(nullptr, iAnd, [](int64_t a, int64_t b) -> std::optional<int64_t> { return a && b; }));
  r.onOp("Cast", 6, convertCast);
  r.onOp("Ceil", 6, unaryFloat([](OpBuilder &b, Location l, Value x) -> Value { return math::CeilOp::create(b, l, x); }));
  r.onOp("Concat", 4, convertConcat);
  r.onOp("Constant", 1, convertConstant);
  r.onOp("ConstantOfShape", 9, convertConstantOfShape);
  r.onOp("Cos", 7, unaryFloat([](OpBuilder &b, Location l, Value x) -> Value { return math::CosOp::create(b, l, x); }));
  r.onOp("CumSum", 11, convertCumSum);
  r.onOp("Div", 7, binaryOp(fDiv, iDiv, [](int64_t a, int64_t b) -> std::optional<int64_t> {
    if (b == 0) return std::nullopt;
    return a / b;
  }));
  r.onOp("Dropout", 1, convertDropout);
  r.onOp("Equal", 7, binaryOp(fEq, iEq, [](int64_t a, int64_t b) -> std::optional<int64_t> { return a == b; }, true));
  r.onOp("Erf", 9, unaryFloat([](OpBuilder &b, Location l, Value x) -> Value { return math::ErfOp::create(b, l, x); }));
  r.onOp("Exp", 6, unaryFloat([](OpBuilder &b, Location l, Value x) -> Value { return math::ExpOp::create(b, l, x); }));
  r.onOp("Expand", 8, convertExpand);
  r.onOp("Flatten", 1, convertFlatten);
  r.onOp("Floor", 6, unaryFloat([](OpBuilder &b, Location l, Value x) -> Value { return math::FloorOp::create(b, l, x); }));
}

} // namespace import
} // namespace photon
