//===- OpsStoZ.cpp - ONNX ops S..Z -> upstream MLIR ----------------------===//
//
// Shape Sigmoid Sin Slice Softmax Split Sqrt Squeeze Sub Sum Tanh Tile Transpose Trilu Unsqueeze
// Where Xor

#include "OpHelpers.h"

namespace photon {
namespace import {
using namespace mlir;

static LogicalResult convertShape(NodeContext &ctx) {
  if (failed(ctx.requireInputs(1))) return failure();
  OpBuilder &b = ctx.b;
  Location loc = ctx.loc;
  auto xt = ctx.type(0);
  int64_t rank = xt.getRank();
  int64_t start = ctx.opset >= 15 ? ctx.getInt("start", 0) : 0;
  int64_t end = ctx.opset >= 15 ? ctx.getInt("end", rank) : rank;
  if (start < 0) start += rank;
  if (end < 0) end += rank;
  start = std::clamp<int64_t>(start, 0, rank);
  end = std::clamp<int64_t>(end, 0, rank);
  SmallVector<Value> vals;
  KnownInts k;
  for (int64_t i = start; i < end; ++i) {
    Value d = dimValue(b, loc, ctx.in(0), i);
    vals.push_back(arith::IndexCastOp::create(b, loc, b.getI64Type(), d));
    k.vals.push_back(xt.isDynamicDim(i) ? std::nullopt : std::optional<int64_t>(xt.getDimSize(i)));
  }
  int64_t n = std::max<int64_t>(0, end - start);
  k.shape = {n};
  auto rt = RankedTensorType::get({n}, b.getI64Type());
  Value r;
  if (k.allKnown()) {
    SmallVector<int64_t> v;
    for (auto &e : k.vals) v.push_back(*e);
    r = constFromInts(b, loc, {n}, v, b.getI64Type());
  } else {
    r = tensor::FromElementsOp::create(b, loc, rt, vals);
  }
  ctx.setResult(0, r, k);
  return success();
}

static LogicalResult convertSlice(NodeContext &ctx) {
  if (failed(ctx.requireInputs(1))) return failure();
  OpBuilder &b = ctx.b;
  Location loc = ctx.loc;
  Value x = ctx.in(0);
  auto xt = ctx.type(0);
  int64_t rank = xt.getRank();
  SmallVector<OpFoldResult> starts, ends, axesF, steps;
  SmallVector<int64_t> axes;
  if (ctx.opset < 10) {
    auto s = ctx.getInts("starts"), e = ctx.getInts("ends");
    if (!s || !e) return ctx.error("missing starts/ends attributes");
    for (int64_t v : *s) starts.push_back(b.getIndexAttr(v));
    for (int64_t v : *e) ends.push_back(b.getIndexAttr(v));
    if (auto a = ctx.getInts("axes")) axes.assign(a->begin(), a->end());
  } else {
    if (failed(ctx.requireInputs(3))) return failure();
    for (int i = 1; i <= 2; ++i)
      if (ctx.type(i).getRank() != 1 || ctx.type(i).isDynamicDim(0))
        return ctx.unsupported("starts/ends must be 1-D with a static length");
    starts = intsAsFoldResults(b, loc, ctx.in(1), ctx.knownIn(1));
    ends = intsAsFoldResults(b, loc, ctx.in(2), ctx.knownIn(2));
    if (ctx.hasInput(3)) {
      auto a = ctx.constInts(3);
      if (!a) return ctx.unsupported("axes must be a constant");
      axes.assign(a->begin(), a->end());
    }
    if (ctx.hasInput(4)) {
      auto st = ctx.constInts(4);
      if (!st) return ctx.unsupported("steps must be a constant");
      for (int64_t v : *st) steps.push_back(b.getIndexAttr(v));
    }
  }
  if (starts.size() != ends.size())
    return ctx.error("starts and ends have different lengths");
  if (axes.empty())
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(i);
  if (axes.size() != starts.size() || (!steps.empty() && steps.size() != starts.size()))
    return ctx.error("starts, ends, axes and steps must have the same length");
  SmallVector<OpFoldResult> sizes = mixedSizes(b, loc, x);
  SmallVector<OpFoldResult> offs(rank, b.getIndexAttr(0)), outSizes(sizes),
      strides(rank, b.getIndexAttr(1));
  SmallVector<bool> seen(rank, false);
  bool negative = false;
  for (size_t i = 0; i < axes.size(); ++i) {
    int64_t a = axes[i];
    if (failed(ctx.normAxis(a, rank))) return failure();
    if (seen[a]) return ctx.error("axis " + Twine(a) + " is repeated");
    seen[a] = true;
    int64_t step = steps.empty() ? 1 : *getConstantIntValue(steps[i]);
    if (step == 0) return ctx.error("step must not be zero");
    OpFoldResult dim = sizes[a];
    auto norm = [&](OpFoldResult v, int64_t lo, OpFoldResult hi) -> OpFoldResult {
      // v < 0 ? v + dim : v, clamped to [lo, hi].
      OpFoldResult w;
      auto c = getConstantIntValue(v);
      if (c) {
        // Avoid overflow with INT64_MIN / INT64_MAX sentinels.
        int64_t cv = *c;
        auto cd = getConstantIntValue(dim);
        if (cv < 0) {
          if (cd) w = b.getIndexAttr(std::max<int64_t>(cv + *cd, INT64_MIN / 2));
          else w = idxAdd(b, loc, b.getIndexAttr(std::max<int64_t>(cv, INT64_MIN / 4)), dim);
        } else {
          w = b.getIndexAttr(std::min<int64_t>(cv, INT64_MAX / 4));
        }
      } else {
        Value vv = foldToValue(b, loc, v);
        Value zero = indexConst(b, loc, 0);
        Value isNeg = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, vv, zero);
        Value plus = arith::AddIOp::create(b, loc, vv, foldToValue(b, loc, dim));
        w = arith::SelectOp::create(b, loc, isNeg, plus, vv).getResult();
      }
      return idxMin(b, loc, idxMax(b, loc, w, b.getIndexAttr(lo)), hi);
    };
    OpFoldResult s, e, n;
    if (step > 0) {
      s = norm(starts[i], 0, dim);
      e = norm(ends[i], 0, dim);
      OpFoldResult diff = idxSub(b, loc, e, s);
      // ceil(diff / step) for diff >= 0; clamp at 0.
      n = idxDiv(b, loc, idxAdd(b, loc, diff, b.getIndexAttr(step - 1)), b.getIndexAttr(step));
      n = idxMax(b, loc, n, b.getIndexAttr(0));
    } else {
      negative = true;
      OpFoldResult dimM1 = idxSub(b, loc, dim, b.getIndexAttr(1));
      s = norm(starts[i], 0, dimM1);
      e = norm(ends[i], -1, dimM1);
      OpFoldResult diff = idxSub(b, loc, s, e);
      n = idxDiv(b, loc, idxAdd(b, loc, diff, b.getIndexAttr(-step - 1)), b.getIndexAttr(-step));
      n = idxMax(b, loc, n, b.getIndexAttr(0));
    }
    offs[a] = s;
    outSizes[a] = n;
    strides[a] = b.getIndexAttr(step);
  }
  Value r;
  auto shape = staticShapeOf(outSizes);
  if (!negative) {
    auto rt = RankedTensorType::get(shape, xt.getElementType());
    r = tensor::ExtractSliceOp::create(b, loc, rt, x, offs, outSizes, strides);
  } else {
    // Negative steps: gather with computed coordinates.
    Value init = emptyTensor(b, loc, outSizes, xt.getElementType());
    MLIRContext *m = ctx.context();
    SmallVector<Value> offV, stV;
    for (int64_t d = 0; d < rank; ++d) {
      offV.push_back(foldToValue(b, loc, offs[d]));
      stV.push_back(foldToValue(b, loc, strides[d]));
    }
    r = linalg::GenericOp::create(
            b, loc, TypeRange{init.getType()}, ValueRange{}, ValueRange{init},
            SmallVector<AffineMap>{AffineMap::getMultiDimIdentityMap(rank, m)},
            SmallVector<utils::IteratorType>(rank, utils::IteratorType::parallel),
            [&](OpBuilder &nb, Location l, ValueRange) {
              SmallVector<Value> c;
              for (int64_t d = 0; d < rank; ++d) {
                Value i = linalg::IndexOp::create(nb, l, d);
                c.push_back(arith::AddIOp::create(nb, l, offV[d], arith::MulIOp::create(nb, l, i, stV[d])));
              }
              linalg::YieldOp::create(nb, l, tensor::ExtractOp::create(nb, l, x, c).getResult());
            })
            .getResult(0);
  }
  std::optional<KnownInts> k;
  const KnownInts *kx = ctx.knownIn(0);
  if (kx && rank == 1 && !negative && !ShapedType::isDynamicShape(shape)) {
    auto o = getConstantIntValue(offs[0]);
    if (o) {
      KnownInts ko;
      ko.shape = {shape[0]};
      for (int64_t i = 0; i < shape[0]; ++i) {
        int64_t src = *o + i * *getConstantIntValue(strides[0]);
        ko.vals.push_back(src < (int64_t)kx->vals.size() ? kx->vals[src] : std::nullopt);
      }
      k = ko;
    }
  }
  ctx.setResult(0, r, k);
  return success();
}

static LogicalResult convertSplit(NodeContext &ctx) {
  if (failed(ctx.requireInputs(1))) return failure();
  OpBuilder &b = ctx.b;
  Location loc = ctx.loc;
  Value x = ctx.in(0);
  auto xt = ctx.type(0);
  int64_t rank = xt.getRank(), axis = ctx.getInt("axis", 0);
  if (failed(ctx.normAxis(axis, rank))) return failure();
  int64_t n = ctx.node.output_size();
  SmallVector<int64_t> split;
  if (ctx.opset < 13) {
    if (auto s = ctx.getInts("split")) split.assign(s->begin(), s->end());
  } else if (ctx.hasInput(1)) {
    auto s = ctx.constInts(1);
    if (!s) return ctx.unsupported("split must be a constant");
    split.assign(s->begin(), s->end());
  }
  SmallVector<OpFoldResult> sizes = mixedSizes(b, loc, x);
  SmallVector<OpFoldResult> parts;
  if (!split.empty()) {
    if ((int64_t)split.size() != n)
      return ctx.error("split has " + Twine(split.size()) + " entries for " + Twine(n) + " outputs");
    int64_t sum = 0;
    for (int64_t s : split) {
      if (s < 0) return ctx.error("negative split size");
      sum += s;
      parts.push_back(b.getIndexAttr(s));
    }
    if (!xt.isDynamicDim(axis) && sum != xt.getDimSize(axis))
      return ctx.error("shape mismatch: split sizes sum to " + Twine(sum) + " but dimension " +
                       Twine(axis) + " is " + Twine(xt.getDimSize(axis)));
  } else {
    if (!xt.isDynamicDim(axis) && xt.getDimSize(axis) % n != 0)
      return ctx.error("dimension " + Twine(axis) + " of size " + Twine(xt.getDimSize(axis)) +
                       " does not split evenly into " + Twine(n) + " outputs");
    OpFoldResult each = idxDiv(b, loc, sizes[axis], b.getIndexAttr(n));
    parts.assign(n, each);
  }
  OpFoldResult off = b.getIndexAttr(0);
  for (int64_t i = 0; i < n; ++i) {
    SmallVector<OpFoldResult> offs(rank, b.getIndexAttr(0)), sz(sizes), st(rank, b.getIndexAttr(1));
    offs[axis] = off;
    sz[axis] = parts[i];
    auto rt = RankedTensorType::get(staticShapeOf(sz), xt.getElementType());
    ctx.setResult(i, tensor::ExtractSliceOp::create(b, loc, rt, x, offs, sz, st));
    off = idxAdd(b, loc, off, parts[i]);
  }
  return success();
}

static LogicalResult convertSqueeze(NodeContext &ctx) {
  if (failed(ctx.requireInputs(1))) return failure();
  auto xt = ctx.type(0);
  int64_t rank = xt.getRank();
  auto axes = readAxes(ctx, "axes", 13, 1);
  if (failed(axes)) return failure();
  SmallVector<int64_t> dims;
  if (!*axes) {
    for (int64_t i = 0; i < rank; ++i)
      if (xt.getDimSize(i) == 1) dims.push_back(i);
    for (int64_t i = 0; i < rank; ++i)
      if (xt.isDynamicDim(i))
        return ctx.unsupported("squeeze without axes on a dynamic dimension");
  } else {
    for (int64_t a : **axes) {
      if (failed(ctx.normAxis(a, rank))) return failure();
      if (!xt.isDynamicDim(a) && xt.getDimSize(a) != 1)
        return ctx.error("cannot squeeze dimension " + Twine(a) + " of size " +
                         Twine(xt.getDimSize(a)));
      if (!llvm::is_contained(dims, a)) dims.push_back(a);
    }
  }
  llvm::sort(dims);
  Value r = dims.empty() ? ctx.in(0) : dropUnitDims(ctx.b, ctx.loc, ctx.in(0), dims);
  std::optional<KnownInts> k;
  if (ctx.knownIn(0)) {
    k = *ctx.knownIn(0);
    auto rt = cast<RankedTensorType>(r.getType());
    k->shape.assign(rt.getShape().begin(), rt.getShape().end());
  }
  ctx.setResult(0, r, k);
  return success();
}

static LogicalResult convertUnsqueeze(NodeContext &ctx) {
  if (failed(ctx.requireInputs(1))) return failure();
  auto xt = ctx.type(0);
  auto axes = readAxes(ctx, "axes", 13, 1);
  if (failed(axes)) return failure();
  if (!*axes) return ctx.error("missing axes");
  int64_t outRank = xt.getRank() + (*axes)->size();
  SmallVector<int64_t> pos;
  for (int64_t a : **axes) {
    if (failed(ctx.normAxis(a, outRank))) return failure();
    if (llvm::is_contained(pos, a)) return ctx.error("axis " + Twine(a) + " is repeated");
    pos.push_back(a);
  }
  llvm::sort(pos);
  Value r = insertUnitDims(ctx.b, ctx.loc, ctx.in(0), pos);
  std::optional<KnownInts> k;
  if (ctx.knownIn(0) && outRank <= 1) {
    k = *ctx.knownIn(0);
    k->shape = {1};
  }
  ctx.setResult(0, r, k);
  return success();
}

// Tile (opset 6, 13): out[i] = x[i mod size(x)] per axis, repeats a 1-D int64 input
// (constant, known from shape arithmetic, or a runtime value). Lowered without modulo: a
// linalg.generic broadcasts x to [r0, d0, r1, d1, ...] (only the pairs that need both; an
// axis whose x size is 1 or whose repeat is 1 keeps one dimension), then collapse_shape
// merges each (r, d) pair into r*d.
static LogicalResult convertTile(NodeContext &ctx) {
  if (failed(ctx.requireInputs(2))) return failure();
  OpBuilder &b = ctx.b;
  Location loc = ctx.loc;
  Value x = ctx.in(0);
  auto xt = ctx.type(0);
  auto rt = ctx.type(1);
  int64_t rank = xt.getRank();
  if (!isIntTy(rt.getElementType()) || rt.getRank() != 1 || rt.getDimSize(0) != rank)
    return ctx.error("repeats must be a 1-D integer tensor of length " + Twine(rank) +
                     " (the input's rank)");
  SmallVector<OpFoldResult> reps = intsAsFoldResults(b, loc, ctx.in(1), ctx.knownIn(1));
  for (int64_t i = 0; i < rank; ++i)
    if (auto c = getConstantIntValue(reps[i]); c && *c < 0)
      return ctx.error("repeats[" + Twine(i) + "] = " + Twine(*c) + " is negative");
  SmallVector<OpFoldResult> xs = mixedSizes(b, loc, x);
  MLIRContext *m = ctx.context();
  // Broadcast shape (wide), the input's map into it, and the collapse groups.
  SmallVector<OpFoldResult> wide;
  SmallVector<AffineExpr> e;
  SmallVector<ReassociationIndices> groups;
  bool paired = false;
  for (int64_t i = 0; i < rank; ++i) {
    auto r = getConstantIntValue(reps[i]);
    int64_t w = wide.size();
    if (r && *r == 1) {
      e.push_back(getAffineDimExpr(w, m));
      wide.push_back(xs[i]);
      groups.push_back({w});
    } else if (xt.getDimSize(i) == 1) {
      e.push_back(getAffineConstantExpr(0, m));
      wide.push_back(reps[i]);
      groups.push_back({w});
    } else {
      e.push_back(getAffineDimExpr(w + 1, m));
      wide.push_back(reps[i]);
      wide.push_back(xs[i]);
      groups.push_back({w, w + 1});
      paired = true;
    }
  }
  int64_t wr = wide.size();
  Value init = emptyTensor(b, loc, wide, xt.getElementType());
  SmallVector<AffineMap> maps = {AffineMap::get(wr, 0, e, m),
                                 AffineMap::getMultiDimIdentityMap(wr, m)};
  Value r = linalg::GenericOp::create(
                b, loc, TypeRange{init.getType()}, ValueRange{x}, ValueRange{init}, maps,
                SmallVector<utils::IteratorType>(wr, utils::IteratorType::parallel),
                [&](OpBuilder &nb, Location l, ValueRange a) { linalg::YieldOp::create(nb, l, a[0]); })
                .getResult(0);
  if (paired) r = tensor::CollapseShapeOp::create(b, loc, r, groups);
  ctx.setResult(0, r);
  return success();
}

static LogicalResult convertTranspose(NodeContext &ctx) {
  if (failed(ctx.requireInputs(1))) return failure();
  int64_t rank = ctx.type(0).getRank();
  SmallVector<int64_t> perm;
  if (auto p = ctx.getInts("perm")) perm.assign(p->begin(), p->end());
  else
    for (int64_t i = rank - 1; i >= 0; --i) perm.push_back(i);
  if ((int64_t)perm.size() != rank) return ctx.error("perm has the wrong length");
  SmallVector<bool> seen(rank, false);
  for (int64_t &p : perm) {
    if (failed(ctx.normAxis(p, rank, "perm entry"))) return failure();
    if (seen[p]) return ctx.error("perm is not a permutation");
    seen[p] = true;
  }
  ctx.setResult(0, rank == 0 ? ctx.in(0) : transpose(ctx.b, ctx.loc, ctx.in(0), perm));
  return success();
}

static LogicalResult convertTrilu(NodeContext &ctx) {
  if (failed(ctx.requireInputs(1))) return failure();
  auto xt = ctx.type(0);
  int64_t rank = xt.getRank();
  if (rank < 2) return ctx.error("input must have rank >= 2");
  // k: a constant, or a runtime scalar read once outside the loop nest.
  Value kval;
  if (ctx.hasInput(1)) {
    if (ctx.type(1).getNumElements() != 1) return ctx.error("k must be a scalar");
    if (auto kv = ctx.constInts(1)) {
      kval = indexConst(ctx.b, ctx.loc, (*kv)[0]);
    } else {
      SmallVector<Value> idx(ctx.type(1).getRank(), indexConst(ctx.b, ctx.loc, 0));
      Value e = tensor::ExtractOp::create(ctx.b, ctx.loc, ctx.in(1), idx);
      kval = arith::IndexCastOp::create(ctx.b, ctx.loc, ctx.b.getIndexType(), e);
    }
  } else {
    kval = indexConst(ctx.b, ctx.loc, 0);
  }
  bool upper = ctx.getInt("upper", 1);
  Type et = xt.getElementType();
  auto r = elementwise(ctx, {ctx.in(0)}, et, [&](OpBuilder &b, Location l, ValueRange a) -> Value {
    Value i = linalg::IndexOp::create(b, l, rank - 2), j = linalg::IndexOp::create(b, l, rank - 1);
    Value d = arith::SubIOp::create(b, l, j, i);
    Value keep = arith::CmpIOp::create(b, l, upper ? arith::CmpIPredicate::sge : arith::CmpIPredicate::sle, d, kval);
    return arith::SelectOp::create(b, l, keep, a[0], scalarConst(b, l, et, 0));
  });
  if (failed(r)) return failure();
  ctx.setResult(0, *r);
  return success();
}

static LogicalResult convertWhere(NodeContext &ctx) {
  if (failed(ctx.requireInputs(3))) return failure();
  if (!ctx.type(0).getElementType().isInteger(1)) return ctx.error("condition must be bool");
  if (failed(requireSameElem(ctx, {ctx.in(1), ctx.in(2)}))) return failure();
  auto r = elementwise(ctx, {ctx.in(0), ctx.in(1), ctx.in(2)}, ctx.type(1).getElementType(),
                       [](OpBuilder &b, Location l, ValueRange a) -> Value {
                         return arith::SelectOp::create(b, l, a[0], a[1], a[2]);
                       });
  if (failed(r)) return failure();
  std::optional<KnownInts> k;
  const KnownInts *c = ctx.knownIn(0), *x = ctx.knownIn(1), *y = ctx.knownIn(2);
  if (c && x && y && c->rank() <= 1 && x->rank() <= 1 && y->rank() <= 1) {
    size_t n = std::max({c->vals.size(), x->vals.size(), y->vals.size()});
    KnownInts o;
    o.shape = {(int64_t)n};
    bool ok = true;
    for (size_t i = 0; i < n && ok; ++i) {
      auto at = [&](const KnownInts *t) { return t->vals[t->vals.size() == 1 ? 0 : i]; };
      if ((c->vals.size() != 1 && c->vals.size() != n) || (x->vals.size() != 1 && x->vals.size() != n) ||
          (y->vals.size() != 1 && y->vals.size() != n)) {
        ok = false;
        break;
      }
      auto cv = at(c);
      o.vals.push_back(cv ? (*cv ? at(x) : at(y)) : std::nullopt);
    }
    if (ok && c->rank() == 0 && x->rank() == 0 && y->rank() == 0) o.shape.clear();
    if (ok) k = o;
  }
  ctx.setResult(0, *r, k);
  return success();
}

void registerOpsStoZ(OpRegistry &r) {
  r.onOp("Shape", 1, convertShape);
  r.onOp("Sigmoid", 6, unaryFloat([](OpBuilder &b, Location l, Value x) -> Value {
    Value one = scalarConst(b, l, x.getType(), 1.0);
    Value e = math::ExpOp::create(b, l, arith::NegFOp::create(b, l, x));
    return arith::DivFOp::create(b, l, one, arith::AddFOp::create(b, l, one, e));
  }));
  r.onOp("Sin", 7, unaryFloat([](OpBuilder &b, Location l, Value x) -> Value { return math::SinOp::create(b, l, x); }));
  r.onOp("Slice", 1, convertSlice);
  r.onOp("Softmax", 1, [](NodeContext &ctx) { return convertSoftmaxLike(ctx, false); });
  r.onOp("Split", 2, convertSplit);
  r.onOp("Sqrt", 6, unaryFloat([](OpBuilder &b, Location l, Value x) -> Value { return math::SqrtOp::create(b, l, x); }));
  r.onOp("Squeeze", 1, convertSqueeze);
  r.onOp("Sub", 7, binaryOp([](OpBuilder &b, Location l, ValueRange a) -> Value { return arith::SubFOp::create(b, l, a[0], a[1]); },
                            [](OpBuilder &b, Location l, ValueRange a) -> Value { return arith::SubIOp::create(b, l, a[0], a[1]); },
                            [](int64_t a, int64_t b) -> std::optional<int64_t> { return a - b; }));
  r.onOp("Sum", 8, [](NodeContext &ctx) -> LogicalResult {
    SmallVector<Value> ins;
    for (size_t k = 0; k < ctx.numInputs(); ++k)
      if (ctx.hasInput(k)) ins.push_back(ctx.in(k));
    if (ins.empty()) return ctx.error("needs at least one input");
    if (failed(requireSameElem(ctx, ins))) return failure();
    Type et = cast<RankedTensorType>(ins[0].getType()).getElementType();
    auto v = elementwise(ctx, ins, et, [&](OpBuilder &b, Location l, ValueRange a) -> Value {
      Value acc = a[0];
      for (size_t k = 1; k < a.size(); ++k)
        acc = isFloatTy(et) ? (Value)arith::AddFOp::create(b, l, acc, a[k]) : (Value)arith::AddIOp::create(b, l, acc, a[k]);
      return acc;
    });
    if (failed(v)) return failure();
    ctx.setResult(0, *v);
    return success();
  });
  r.onOp("Tanh", 6, unaryFloat([](OpBuilder &b, Location l, Value x) -> Value { return math::TanhOp::create(b, l, x); }));
  r.onOp("Tile", 6, convertTile);
  r.onOp("Transpose", 1, convertTranspose);
  r.onOp("Trilu", 14, convertTrilu);
  r.onOp("Unsqueeze", 1, convertUnsqueeze);
  r.onOp("Where", 9, convertWhere);
  r.onOp("Xor", 7, binaryOp(nullptr, [](OpBuilder &b, Location l, ValueRange a) -> Value { return arith::XOrIOp::create(b, l, a[0], a[1]); }));
}

} // namespace import
} // namespace photon
