//===- OpHelpers.cpp - Converter factories shared by the Ops*.cpp files ---===//

#include "OpHelpers.h"

#include "mlir/IR/Matchers.h"

namespace photon {
namespace import {
using namespace mlir;

ConvertFn unaryFloat(std::function<Value(OpBuilder &, Location, Value)> fn) {
  return [fn](NodeContext &ctx) -> LogicalResult {
    if (failed(ctx.requireInputs(1))) return failure();
    Type et = ctx.type(0).getElementType();
    if (!isFloatTy(et))
      return ctx.unsupported("only floating-point inputs are supported");
    auto r = elementwise(ctx, {ctx.in(0)}, et,
                         [&](OpBuilder &b, Location l, ValueRange a) { return fn(b, l, a[0]); });
    if (failed(r)) return failure();
    ctx.setResult(0, *r);
    return success();
  };
}

std::optional<KnownInts> foldKnown(ArrayRef<const KnownInts *> ins, IntFold fn) {
  size_t n = 1;
  SmallVector<int64_t, 1> shape;
  for (const KnownInts *k : ins) {
    if (!k || k->rank() > 1) return std::nullopt;
    if (k->vals.size() != 1) {
      if (n != 1 && n != k->vals.size()) return std::nullopt;
      n = k->vals.size();
    }
    if (k->rank() > (int64_t)shape.size()) shape.assign(k->shape.begin(), k->shape.end());
  }
  KnownInts out;
  out.shape = shape;
  if (shape.empty() && n != 1) return std::nullopt;
  for (size_t i = 0; i < n; ++i) {
    const auto &a = ins[0]->vals[ins[0]->vals.size() == 1 ? 0 : i];
    const auto &c = ins.size() > 1 ? ins[1]->vals[ins[1]->vals.size() == 1 ? 0 : i] : a;
    if (a && c) out.vals.push_back(fn(*a, *c));
    else out.vals.push_back(std::nullopt);
  }
  return out;
}

ConvertFn binaryOp(FloatBody floatFn, FloatBody intFn, IntFold fold,
                                   bool boolResult) {
  return [=](NodeContext &ctx) -> LogicalResult {
    if (failed(ctx.requireInputs(2))) return failure();
    if (failed(requireSameElem(ctx, {ctx.in(0), ctx.in(1)}))) return failure();
    Type et = ctx.type(0).getElementType();
    bool isF = isFloatTy(et);
    const FloatBody &fn = isF ? floatFn : intFn;
    if (!fn)
      return ctx.unsupported(Twine("element type ") + (isF ? "float" : "integer") +
                             " is not supported by this op");
    Type out = boolResult ? ctx.b.getI1Type() : et;
    auto r = elementwise(ctx, {ctx.in(0), ctx.in(1)}, out,
                         [&](OpBuilder &b, Location l, ValueRange a) { return fn(b, l, a); });
    if (failed(r)) return failure();
    std::optional<KnownInts> k;
    if (fold && !isF) k = foldKnown({ctx.knownIn(0), ctx.knownIn(1)}, fold);
    ctx.setResult(0, *r, k);
    return success();
  };
}

FailureOr<std::optional<SmallVector<int64_t>>>
readAxes(NodeContext &ctx, StringRef name, int64_t inputSince, size_t inputIdx) {
  if (ctx.opset < inputSince) {
    return ctx.getInts(name);
  }
  if (!ctx.hasInput(inputIdx)) return std::optional<SmallVector<int64_t>>();
  auto v = ctx.constInts(inputIdx);
  if (!v) return ctx.unsupported("axes must be a constant (computed axes are not supported)");
  return std::optional<SmallVector<int64_t>>(*v);
}

static Value asVal(OpBuilder &b, Location loc, OpFoldResult r) { return foldToValue(b, loc, r); }

#define IDX_OP(NAME, OPTY, CFN)                                                                 \
  OpFoldResult NAME(OpBuilder &b, Location loc, OpFoldResult a, OpFoldResult c) { \
    auto ca = getConstantIntValue(a), cc = getConstantIntValue(c);                               \
    if (ca && cc) {                                                                             \
      int64_t x = *ca, y = *cc;                                                                  \
      (void)x;                                                                                  \
      (void)y;                                                                                  \
      return b.getIndexAttr(CFN);                                                               \
    }                                                                                           \
    return OPTY::create(b, loc, asVal(b, loc, a), asVal(b, loc, c)).getResult();                \
  }
IDX_OP(idxAdd, arith::AddIOp, x + y)
IDX_OP(idxSub, arith::SubIOp, x - y)
IDX_OP(idxMul, arith::MulIOp, x * y)
IDX_OP(idxDiv, arith::DivSIOp, y == 0 ? 0 : x / y)
IDX_OP(idxMax, arith::MaxSIOp, std::max(x, y))
IDX_OP(idxMin, arith::MinSIOp, std::min(x, y))
#undef IDX_OP

SmallVector<int64_t> staticShapeOf(ArrayRef<OpFoldResult> sizes) {
  SmallVector<int64_t> s;
  for (OpFoldResult r : sizes) {
    auto c = getConstantIntValue(r);
    s.push_back(c ? *c : ShapedType::kDynamic);
  }
  return s;
}

std::optional<double> constScalar(Value v) {
  DenseElementsAttr attr;
  if (!v || !matchPattern(v, m_Constant(&attr))) return std::nullopt;
  if (attr.getNumElements() != 1) return std::nullopt;
  Type et = attr.getElementType();
  if (isa<FloatType>(et)) return (*attr.getValues<APFloat>().begin()).convertToDouble();
  if (et.isInteger(1)) return (double)(*attr.getValues<APInt>().begin()).getZExtValue();
  return (double)(*attr.getValues<APInt>().begin()).getSExtValue();
}

FailureOr<SmallVector<OpFoldResult>> shapeOperand(NodeContext &ctx) {
  if (failed(ctx.requireInputs(2))) return failure();
  auto st = ctx.type(1);
  if (st.getRank() != 1 || st.isDynamicDim(0))
    return ctx.unsupported("the shape input must be 1-D with a static length");
  return intsAsFoldResults(ctx.b, ctx.loc, ctx.in(1), ctx.knownIn(1));
}

} // namespace import
} // namespace photon
