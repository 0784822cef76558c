//===- RaiseLocalAttention.cpp - photon-raise-local: attention ------------===//
//
// The attention patterns of the importer's second stage (docs/importer.md, "Two
// stages"), over the upstream ops the ONNX converters write:
//
//   - RaiseCausalAttention: `softmax(scale * Q K^T + mask) V` as two batched matmul
//     contractions around a softmax over the key axis -> photon.causal_attention. The
//     layouts of q, k and v ([B, H, M, hd], [B, Hkv, G, M, hd], [B * H, M, hd], ...) are
//     read from the contractions' indexing maps; the scale from scalar Mul / Div before or
//     after Q K^T; the mask is proven causal by evaluating it at sample positions (0 where
//     the key is at or before the query, <= -1e7 after scaling where it is later),
//     whatever computes it (a constant, Trilu, Where over Range comparisons).
//   - RaiseAttentionGQA: a photon.causal_attention whose keys and values are copies of a
//     [B, M, Hkv, hd] tensor repeated over groups of query heads (Expand / Reshape,
//     repeat_interleave, or a Split + Concat of them) reads that tensor instead.
//
// The RoPE patterns are in RaiseLocalRoPE.cpp; the element following and evaluation
// both use (masks, copies through the data-movement ops) in RaiseLocalEval.cpp.
//
//===----------------------------------------------------------------------===//

#include "RaiseLocalAttention.h"
#include "RaiseLocalEval.h"

#include "photon/Dialect/PhotonOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include <array>
#include <cmath>
#include <optional>

namespace mlir {
namespace photon {
namespace {

using namespace raise_local;


//===----------------------------------------------------------------------===//
// Softmax, contractions and masks
//===----------------------------------------------------------------------===//

/// A read of [.., 1] broadcast along the last loop (a kept-dims reduction of
/// the rows).
bool rowRead(const Read &r, int64_t rank) {
  if (!r.tensor || !r.map || r.map.getNumResults() != rank || r.map.getNumDims() != rank)
    return false;
  for (int64_t i = 0; i + 1 < rank; ++i)
    if (r.map.getResult(i) != getAffineDimExpr(i, r.map.getContext()))
      return false;
  auto c = dyn_cast<AffineConstantExpr>(r.map.getResult(rank - 1));
  return c && c.getValue() == 0;
}

/// The source of `tensor.expand_shape` to `[.., 1]` (a reduction's keepdims).
Value keptDims(Value m) {
  auto ex = m.getDefiningOp<tensor::ExpandShapeOp>();
  if (!ex)
    return {};
  auto rt = cast<RankedTensorType>(ex.getType());
  int64_t r = rt.getRank();
  if (r < 2 || rt.getDimSize(r - 1) != 1)
    return {};
  auto re = ex.getReassociationIndices();
  if (re.size() != (size_t)r - 1 || re.back() != ReassociationIndices{r - 2, r - 1})
    return {};
  return ex.getSrc();
}

enum class Reduce { Max, Sum, SumExp };

/// x of the reduction `s = reduce(x)` over the last axis: a generic with
/// identity input map, the last loop its one reduction, `max(acc, x)`, `acc +
/// x` or `acc + exp(x)`; a sum starting from a linalg.fill 0.
Value reducedGeneric(Value s, Reduce kind) {
  auto g = s ? s.getDefiningOp<linalg::GenericOp>() : linalg::GenericOp();
  if (!g || g->getNumResults() != 1 || g.getNumDpsInputs() != 1 || g.getNumReductionLoops() != 1)
    return {};
  auto it = g.getIteratorTypesArray();
  int64_t r = it.size();
  if (r < 2 || it.back() != utils::IteratorType::reduction)
    return {};
  auto maps = g.getIndexingMapsArray();
  SmallVector<AffineExpr> rows;
  for (int64_t i = 0; i + 1 < r; ++i)
    rows.push_back(getAffineDimExpr(i, g.getContext()));
  if (!maps[0].isIdentity() || maps[1] != AffineMap::get(r, 0, rows, g.getContext()))
    return {};
  Block *b = g.getBody();
  Value x = b->getArgument(0), acc = b->getArgument(1);
  Operation *top = yielded(g).getDefiningOp();
  if (!top || top->getNumOperands() != 2 || top->getBlock() != b)
    return {};
  Value other = top->getOperand(0) == acc
                    ? top->getOperand(1)
                    : (top->getOperand(1) == acc ? top->getOperand(0) : Value());
  if (!other)
    return {};
  size_t n = b->getOperations().size();
  switch (kind) {
  case Reduce::Max:
    if (!isa<arith::MaximumFOp, arith::MaxNumFOp>(top) || other != x || n != 2)
      return {};
    break;
  case Reduce::Sum:
  case Reduce::SumExp: {
    if (!isa<arith::AddFOp>(top))
      return {};
    if (kind == Reduce::Sum ? (other != x || n != 2) : n != 3)
      return {};
    if (kind == Reduce::SumExp) {
      auto e = other.getDefiningOp<math::ExpOp>();
      if (!e || e.getOperand() != x)
        return {};
    }
    auto fill = g.getDpsInits()[0].getDefiningOp<linalg::FillOp>();
    auto z = fill ? floatConstant(fill.getInputs()[0]) : std::nullopt;
    if (!z || *z != 0.0)
      return {};
    break;
  }
  }
  return g.getDpsInputs()[0];
}

/// x of `m = reduce(x)` over the last axis, kept to [.., 1].
Value reducedLastAxis(Value m, Reduce kind) { return reducedGeneric(keptDims(m), kind); }

/// sh = s - max(s) over the last axis (returns s), or sh itself: softmax does
/// not change when a row's maximum is subtracted.
Value unshifted(Value sh) {
  linalg::GenericOp g = elementwise(sh);
  auto ops = g ? bodyOps(g) : SmallVector<Operation *>();
  if (ops.size() == 1 && isa<arith::SubFOp>(ops[0]) && yielded(g) == ops[0]->getResult(0)) {
    int64_t r = tensorTy(sh).getRank();
    Read x = readOf(g, ops[0]->getOperand(0)), m = readOf(g, ops[0]->getOperand(1));
    if (identityRead(x) && rowRead(m, r) && reducedLastAxis(m.tensor, Reduce::Max) == x.tensor)
      return x.tensor;
  }
  return sh;
}

/// s of p = softmax(s) over the last axis: the Softmax converter's
/// `exp(sh - log(sum(exp(sh))))`, or `exp(sh) / sum(exp(sh))`, sh = s or s -
/// max(s).
Value softmaxOf(Value p) {
  linalg::GenericOp g = elementwise(p);
  if (!g)
    return {};
  int64_t r = tensorTy(p).getRank();
  auto ops = bodyOps(g);
  if (ops.size() == 2 && isa<arith::SubFOp>(ops[0]) && isa<math::ExpOp>(ops[1]) &&
      ops[1]->getOperand(0) == ops[0]->getResult(0) && yielded(g) == ops[1]->getResult(0)) {
    Read sh = readOf(g, ops[0]->getOperand(0)), l = readOf(g, ops[0]->getOperand(1));
    if (!identityRead(sh) || !rowRead(l, r))
      return {};
    // l = log(sum(exp(sh))), the log elementwise over the kept sums.
    Value lg = keptDims(l.tensor);
    linalg::GenericOp lgen = lg ? elementwise(lg) : linalg::GenericOp();
    auto lops = lgen ? bodyOps(lgen) : SmallVector<Operation *>();
    if (lops.size() != 1 || !isa<math::LogOp>(lops[0]) || yielded(lgen) != lops[0]->getResult(0))
      return {};
    Read in = readOf(lgen, lops[0]->getOperand(0));
    if (!identityRead(in) || reducedGeneric(in.tensor, Reduce::SumExp) != sh.tensor)
      return {};
    return unshifted(sh.tensor);
  }
  if (ops.size() == 1 && isa<arith::DivFOp>(ops[0]) && yielded(g) == ops[0]->getResult(0)) {
    Read e = readOf(g, ops[0]->getOperand(0)), s = readOf(g, ops[0]->getOperand(1));
    if (!identityRead(e) || !rowRead(s, r))
      return {};
    linalg::GenericOp eg = elementwise(e.tensor);
    auto eops = eg ? bodyOps(eg) : SmallVector<Operation *>();
    if (eops.size() != 1 || !isa<math::ExpOp>(eops[0]) || yielded(eg) != eops[0]->getResult(0))
      return {};
    Read sh = readOf(eg, eops[0]->getOperand(0));
    if (!identityRead(sh) || reducedLastAxis(s.tensor, Reduce::Sum) != e.tensor)
      return {};
    return unshifted(sh.tensor);
  }
  return {};
}

/// A batched matmul contraction as the MatMul converter writes it: linalg.fill
/// 0, then a generic `out + a * b` whose output map is the identity over all
/// loops but the last, the last loop the one reduction.
struct Contraction {
  linalg::GenericOp g;
  Value a, b;
  AffineMap ma, mb;
  int64_t rank = 0; // the result's
};

std::optional<Contraction> contraction(Value v) {
  auto g = v ? v.getDefiningOp<linalg::GenericOp>() : linalg::GenericOp();
  if (!g || g->getNumResults() != 1 || g.getNumDpsInputs() != 2 || g.getNumDpsInits() != 1 ||
      g.getNumReductionLoops() != 1)
    return std::nullopt;
  auto it = g.getIteratorTypesArray();
  int64_t n = it.size();
  if (n < 3 || it.back() != utils::IteratorType::reduction)
    return std::nullopt;
  auto maps = g.getIndexingMapsArray();
  SmallVector<AffineExpr> os;
  for (int64_t i = 0; i + 1 < n; ++i)
    os.push_back(getAffineDimExpr(i, g.getContext()));
  if (maps[2] != AffineMap::get(n, 0, os, g.getContext()))
    return std::nullopt;
  Block *b = g.getBody();
  if (b->getOperations().size() != 3)
    return std::nullopt;
  auto mul = dyn_cast<arith::MulFOp>(b->front());
  auto add = dyn_cast<arith::AddFOp>(*std::next(b->begin()));
  if (!mul || !add || yielded(g) != add.getResult())
    return std::nullopt;
  Value x = b->getArgument(0), w = b->getArgument(1), acc = b->getArgument(2);
  if (!((mul.getLhs() == x && mul.getRhs() == w) || (mul.getLhs() == w && mul.getRhs() == x)))
    return std::nullopt;
  if (!((add.getLhs() == acc && add.getRhs() == mul) ||
        (add.getLhs() == mul && add.getRhs() == acc)))
    return std::nullopt;
  auto fill = g.getDpsInits()[0].getDefiningOp<linalg::FillOp>();
  auto z = fill ? floatConstant(fill.getInputs()[0]) : std::nullopt;
  if (!z || *z != 0.0)
    return std::nullopt;
  return Contraction{g, g.getDpsInputs()[0], g.getDpsInputs()[1], maps[0], maps[1], n - 1};
}

/// v = x * c or x / c (c a scalar constant, either operand order for the
/// product): x, and the factor.
std::optional<std::pair<Value, double>> scaledBy(Value v) {
  linalg::GenericOp g = elementwise(v);
  auto ops = g ? bodyOps(g) : SmallVector<Operation *>();
  if (ops.size() != 1 || !isa<arith::MulFOp, arith::DivFOp>(ops[0]) ||
      yielded(g) != ops[0]->getResult(0))
    return std::nullopt;
  Read a = readOf(g, ops[0]->getOperand(0)), c = readOf(g, ops[0]->getOperand(1));
  if (isa<arith::MulFOp>(ops[0]) && !identityRead(a))
    std::swap(a, c);
  if (!identityRead(a) || !c.scalar || *c.scalar == 0 || !std::isfinite(*c.scalar))
    return std::nullopt;
  return std::make_pair(a.tensor, isa<arith::DivFOp>(ops[0]) ? 1.0 / *c.scalar : *c.scalar);
}

/// An additive term of the scores: a tensor read through `map` (in the scores'
/// loops), times `factor` (the scales applied after it); or, for a masked_fill
/// (`select`), the condition under which `fill` replaces the scores.
struct MaskTerm {
  Value tensor;
  AffineMap map;
  double factor = 1;
  bool select = false, fillWhenTrue = true;
  double fill = 0;
};

/// The scores s = scale * (Q K^T) + masks, through elementwise generics: scalar
/// Mul / Div (on either side of the masks), Add of a mask, select(cond, fill,
/// s) masked fills.
struct Scores {
  Contraction qk;
  double scale = 1;
  SmallVector<MaskTerm> masks;
};

std::optional<Scores> scoresOf(Value s, double factor = 1, int depth = 0) {
  if (depth > 8)
    return std::nullopt;
  if (auto c = contraction(s)) {
    Scores r;
    r.qk = *c;
    r.scale = factor;
    return r;
  }
  if (auto sc = scaledBy(s)) {
    if (sc->second < 0)
      return std::nullopt; // the masks' sign must stay
    return scoresOf(sc->first, factor * sc->second, depth + 1);
  }
  linalg::GenericOp g = elementwise(s);
  auto ops = g ? bodyOps(g) : SmallVector<Operation *>();
  if (ops.size() != 1 || yielded(g) != ops[0]->getResult(0))
    return std::nullopt;
  if (isa<arith::AddFOp>(ops[0])) {
    for (int k = 0; k < 2; ++k) {
      Read x = readOf(g, ops[0]->getOperand(k)), m = readOf(g, ops[0]->getOperand(1 - k));
      if (!identityRead(x) || !m.tensor)
        continue;
      auto r = scoresOf(x.tensor, factor, depth + 1);
      if (!r)
        continue;
      r->masks.push_back({m.tensor, m.map, factor});
      return r;
    }
    return std::nullopt;
  }
  if (auto sel = dyn_cast<arith::SelectOp>(ops[0])) {
    Read c = readOf(g, sel.getCondition());
    for (int k = 0; k < 2; ++k) {
      Value xv = k == 0 ? sel.getFalseValue() : sel.getTrueValue();
      Value fv = k == 0 ? sel.getTrueValue() : sel.getFalseValue();
      Read x = readOf(g, xv), f = readOf(g, fv);
      if (!c.tensor || !identityRead(x) || !f.scalar)
        continue;
      auto r = scoresOf(x.tensor, factor, depth + 1);
      if (!r)
        continue;
      MaskTerm t{c.tensor, c.map, factor};
      t.select = true;
      t.fillWhenTrue = k == 0;
      t.fill = *f.scalar;
      r->masks.push_back(t);
      return r;
    }
  }
  return std::nullopt;
}

/// Is the sum of the masks causal over (query m, key n) = loops (r - 2, r - 1) of the
/// scores: 0 where n <= m, and at most -1e7 (after the scales) where n > m? The masks are
/// evaluated at sample positions: all pairs of the first 12, and pairs around 100 and 3000
/// where the mask holds them; batch and head indices 0 and 1; with the dynamic sizes the
/// mask reads taken from a sample set (Elements::sampleSet, 0: none).
bool causalMasksAt(ArrayRef<MaskTerm> masks, RankedTensorType st, int sampleSet);

bool causalMasks(ArrayRef<MaskTerm> masks, RankedTensorType st) {
  if (masks.empty())
    return false;
  // A mask computed from the dynamic sizes (a decoder-with-past export's offset by the
  // cache length): causal for both samples of them.
  return causalMasksAt(masks, st, 0) ||
         (causalMasksAt(masks, st, 1) && causalMasksAt(masks, st, 2));
}

bool causalMasksAt(ArrayRef<MaskTerm> masks, RankedTensorType st, int sampleSet) {
  int64_t r = st.getRank();
  SmallVector<int64_t> pos;
  for (int64_t i = 0; i < 12; ++i)
    pos.push_back(i);
  for (int64_t c : {100, 3000})
    for (int64_t d = -1; d <= 1; ++d)
      pos.push_back(c + d);
  Elements ev;
  ev.sampleSet = sampleSet;
  ev.graphSamples = sampleSet != 0;
  for (int64_t batch : {0, 1}) {
    for (int64_t m : pos) {
      for (int64_t n : pos) {
        if (std::abs(m - n) > 12 && m >= 12 && n >= 12)
          continue;
        SmallVector<int64_t> loops(r, batch);
        loops[r - 2] = m;
        loops[r - 1] = n;
        bool skip = false;
        for (int64_t i = 0; i < r; ++i)
          if (!st.isDynamicDim(i) && loops[i] >= st.getDimSize(i))
            skip = true;
        if (skip)
          continue;
        double total = 0;
        for (const MaskTerm &t : masks) {
          SmallVector<int64_t> at = t.map.compose(loops);
          ev.budget = 20000; // per element
          auto v = ev.at(t.tensor, Idx(at.begin(), at.end()));
          // A batch / head index, or a far position, beyond a static mask size (a
          // constant mask sliced to the sequence holds the positions it can hold).
          if (!v && (batch == 1 || m >= 12 || n >= 12)) {
            skip = true;
            break;
          }
          if (!v)
            return false;
          double add = t.select ? ((*v != 0) == t.fillWhenTrue ? t.fill : 0.0) : *v;
          // A masked fill replaces the scores: only -inf-like fills are
          // additive masks.
          if (t.select && add != 0 && add > -1e30)
            return false;
          total += add * t.factor;
        }
        if (skip)
          continue;
        if (n <= m ? total != 0 : !(total <= -1e7))
          return false;
      }
    }
  }
  return true;
}

//===----------------------------------------------------------------------===//
// Layouts
//===----------------------------------------------------------------------===//

/// What a loop of the attention contractions means.
enum Role { kBatch, kHead0, kHead1, kSeq, kDim, kOther };

/// The roles of the axes of x, an operand of an attention contraction read
/// through `map` whose loops have the roles `roles` (kOther for a broadcast
/// unit axis), if each of batch, sequence and dim is read once and the heads
/// read are none, head0, or both (with `allHeads`, every head loop of the
/// contraction).
std::optional<SmallVector<Role>> axisRoles(Value x, AffineMap map, ArrayRef<Role> roles, int nHeads,
                                           bool allHeads) {
  auto xt = tensorTy(x);
  if (!xt || map.getNumResults() != xt.getRank())
    return std::nullopt;
  SmallVector<Role> axis;
  for (int64_t a = 0; a < xt.getRank(); ++a) {
    AffineExpr e = map.getResult(a);
    if (auto c = dyn_cast<AffineConstantExpr>(e)) {
      if (c.getValue() != 0 || xt.getDimSize(a) != 1)
        return std::nullopt;
      axis.push_back(kOther);
      continue;
    }
    auto d = dyn_cast<AffineDimExpr>(e);
    if (!d || roles[d.getPosition()] == kOther || llvm::is_contained(axis, roles[d.getPosition()]))
      return std::nullopt;
    axis.push_back(roles[d.getPosition()]);
  }
  bool h0 = llvm::is_contained(axis, kHead0), h1 = llvm::is_contained(axis, kHead1);
  if (!llvm::is_contained(axis, kBatch) || !llvm::is_contained(axis, kSeq) ||
      !llvm::is_contained(axis, kDim) || (h1 && !h0) ||
      (allHeads && (h0 != (nHeads >= 1) || h1 != (nHeads >= 2))))
    return std::nullopt;
  return axis;
}

/// The [B, M, heads, hd] sizes asBMHD gives x (heads static: their product, or
/// 1). A dynamic head axis takes its size from `heads` (the query's, which the
/// contraction reads with the same loop).
std::optional<std::array<int64_t, 4>> bmhd(Value x, AffineMap map, ArrayRef<Role> roles, int nHeads,
                                           bool allHeads, std::array<int64_t, 2> heads = {0, 0}) {
  auto axis = axisRoles(x, map, roles, nHeads, allHeads);
  if (!axis)
    return std::nullopt;
  std::array<int64_t, 4> out{0, 0, 1, 0};
  auto xt = tensorTy(x);
  for (size_t a = 0; a < axis->size(); ++a) {
    int64_t n = xt.getDimSize(a);
    switch ((*axis)[a]) {
    case kBatch:
      out[0] = n;
      break;
    case kSeq:
      out[1] = n;
      break;
    case kDim:
      out[3] = n;
      break;
    case kHead0:
    case kHead1:
      if (ShapedType::isDynamic(n))
        n = heads[(*axis)[a] == kHead0 ? 0 : 1];
      if (ShapedType::isDynamic(n) || n <= 0)
        return std::nullopt;
      out[2] *= n;
      break;
    default:
      break;
    }
  }
  return out;
}

/// x (checked by bmhd) as [B, M, heads, hd]: broadcast unit axes dropped, axes
/// transposed to (batch, seq, head0, head1, dim), two head axes merged or a
/// unit one added; cast to the sizes bmhd found.
Value asBMHD(PatternRewriter &rw, Location loc, Value x, AffineMap map, ArrayRef<Role> roles,
             std::array<int64_t, 4> sizes, std::array<int64_t, 2> heads) {
  auto xt = tensorTy(x);
  SmallVector<Role> axisRole;
  SmallVector<int64_t> keep;
  for (int64_t a = 0; a < xt.getRank(); ++a)
    if (auto d = dyn_cast<AffineDimExpr>(map.getResult(a))) {
      axisRole.push_back(roles[d.getPosition()]);
      keep.push_back(a);
    }
  if ((int64_t)keep.size() != xt.getRank()) {
    SmallVector<ReassociationIndices> groups;
    ReassociationIndices pending;
    for (int64_t a = 0; a < xt.getRank(); ++a) {
      pending.push_back(a);
      if (llvm::is_contained(keep, a)) {
        groups.push_back(pending);
        pending.clear();
      }
    }
    for (int64_t a : pending)
      groups.back().push_back(a);
    x = tensor::CollapseShapeOp::create(rw, loc, x, groups);
  }
  SmallVector<int64_t> perm;
  for (Role r : {kBatch, kSeq, kHead0, kHead1, kDim})
    for (size_t i = 0; i < axisRole.size(); ++i)
      if (axisRole[i] == r)
        perm.push_back(i);
  x = transposed(rw, loc, x, perm);
  auto t = tensorTy(x);
  if (t.getRank() == 5) {
    if (t.isDynamicDim(2) || t.isDynamicDim(3)) {
      SmallVector<int64_t> shape(t.getShape());
      shape[2] = heads[0], shape[3] = heads[1];
      x = tensor::CastOp::create(rw, loc, RankedTensorType::get(shape, t.getElementType()), x);
    }
    x = tensor::CollapseShapeOp::create(rw, loc, x,
                                        SmallVector<ReassociationIndices>{{0}, {1}, {2, 3}, {4}});
  } else if (t.getRank() == 3) {
    SmallVector<int64_t> shape{t.getDimSize(0), t.getDimSize(1), 1, t.getDimSize(2)};
    x = tensor::ExpandShapeOp::create(rw, loc, RankedTensorType::get(shape, t.getElementType()), x,
                                      SmallVector<ReassociationIndices>{{0}, {1, 2}, {3}});
  }
  auto want = RankedTensorType::get(sizes, tensorTy(x).getElementType());
  if (want != x.getType())
    x = tensor::CastOp::create(rw, loc, want, x);
  return x;
}

//===----------------------------------------------------------------------===//
// The patterns
//===----------------------------------------------------------------------===//

/// O = softmax(scale * Q K^T + causal mask) V -> photon.causal_attention(q, k,
/// v, scale), rooted at the P V contraction. The scores' loops are (batch.., m,
/// n): rank 3
/// ([B * H, M, hd]), 4 ([B, H, M, hd]) or 5 ([B, Hkv, G, M, hd], keys and
/// values broadcast over G: grouped-query attention without a repeat).
struct RaiseCausalAttention : OpRewritePattern<linalg::GenericOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(linalg::GenericOp g, PatternRewriter &rw) const override {
    auto pv = contraction(g->getNumResults() == 1 ? g->getResult(0) : Value());
    if (!pv || pv->rank < 3 || pv->rank > 5)
      return failure();
    int64_t r = pv->rank;
    MLIRContext *ctx = getContext();
    // P is read as the scores' [batch.., m, n]: P V's loops (0 .. r-2) and its
    // reduction.
    SmallVector<AffineExpr> pexp;
    for (int64_t i = 0; i + 1 < r; ++i)
      pexp.push_back(getAffineDimExpr(i, ctx));
    pexp.push_back(getAffineDimExpr(r, ctx));
    if (pv->ma != AffineMap::get(r + 1, 0, pexp, ctx))
      return failure();
    Value s = softmaxOf(pv->a);
    if (!s)
      return failure();
    auto sc = scoresOf(s);
    if (!sc || sc->qk.rank != r)
      return failure();
    auto st = tensorTy(s);
    if (!causalMasks(sc->masks, st))
      return failure();
    // Roles: the batch loops, then m, n (the scores' axes), then the reduced
    // one.
    SmallVector<Role> qkRoles(r + 1, kOther), pvRoles(r + 1, kOther);
    int nHeads = r - 3;
    for (int64_t i = 0; i + 2 < r; ++i)
      qkRoles[i] = pvRoles[i] = i == 0 ? kBatch : (i == 1 ? kHead0 : kHead1);
    qkRoles[r - 2] = pvRoles[r - 2] = kSeq;
    pvRoles[r - 1] = kDim; // P V's: the value's head dim
    pvRoles[r] = kOther;   // P V's reduction: the keys (read as kSeq by V below)
    // Q (with n and k loops: m as its sequence), K (n as its sequence).
    SmallVector<Role> qRoles(qkRoles), kRoles(qkRoles), vRoles(pvRoles);
    qRoles[r - 1] = kOther;
    qRoles[r] = kDim;
    kRoles[r - 2] = kOther;
    kRoles[r - 1] = kSeq;
    kRoles[r] = kDim;
    vRoles[r - 2] = kOther;
    vRoles[r] = kSeq;
    // A scale on Q or K (before Q K^T) joins the scale.
    double scale = sc->scale;
    Value qv = sc->qk.a, kv = sc->qk.b;
    for (Value *t : {&qv, &kv})
      while (auto f = scaledBy(*t)) {
        if (f->second <= 0)
          return failure();
        scale *= f->second;
        *t = f->first;
      }
    Location loc = g.getLoc();
    // The layouts, checked before any op is created: each role read once, heads
    // static.
    auto qd = bmhd(qv, sc->qk.ma, qRoles, nHeads, true);
    std::array<int64_t, 2> qHeads{0, 0};
    if (qd) {
      auto qt = tensorTy(qv);
      for (int64_t a = 0; a < qt.getRank(); ++a)
        if (auto d = dyn_cast<AffineDimExpr>(sc->qk.ma.getResult(a))) {
          if (qRoles[d.getPosition()] == kHead0)
            qHeads[0] = qt.getDimSize(a);
          if (qRoles[d.getPosition()] == kHead1)
            qHeads[1] = qt.getDimSize(a);
        }
    }
    auto kd = bmhd(kv, sc->qk.mb, kRoles, nHeads, false, qHeads);
    auto vd = bmhd(pv->b, pv->mb, vRoles, nHeads, false, qHeads);
    if (!qd || !kd || !vd || ShapedType::isDynamic((*qd)[3]) || (*qd)[3] != (*kd)[3] ||
        (*vd)[3] != (*kd)[3] || (*vd)[2] != (*kd)[2] || (*qd)[2] % (*kd)[2] != 0)
      return failure();
    auto resT = tensorTy(g->getResult(0));
    Value q = asBMHD(rw, loc, qv, sc->qk.ma, qRoles, *qd, qHeads);
    Value k = asBMHD(rw, loc, kv, sc->qk.mb, kRoles, *kd, qHeads);
    Value v = asBMHD(rw, loc, pv->b, pv->mb, vRoles, *vd, qHeads);
    auto att = CausalAttentionOp::create(rw, loc, q, k, v, (float)scale);
    // Back to P V's layout: [B, M, H, hd] -> (batch.., m, hd).
    Value o = att.getResult();
    SmallVector<int64_t> perm;
    if (r == 3) {
      o = tensor::CollapseShapeOp::create(rw, loc, o,
                                          SmallVector<ReassociationIndices>{{0}, {1, 2}, {3}});
      perm = {0, 1, 2};
    } else if (r == 4) {
      perm = {0, 2, 1, 3};
    } else {
      int64_t g1 = resT.getDimSize(2), g0 = resT.getDimSize(1);
      auto ot = tensorTy(o);
      SmallVector<int64_t> shape{ot.getDimSize(0), ot.getDimSize(1), g0, g1, ot.getDimSize(3)};
      o = tensor::ExpandShapeOp::create(rw, loc, RankedTensorType::get(shape, ot.getElementType()),
                                        o,
                                        SmallVector<ReassociationIndices>{{0}, {1}, {2, 3}, {4}});
      perm = {0, 2, 3, 1, 4};
    }
    o = transposed(rw, loc, o, perm);
    if (o.getType() != resT)
      o = tensor::CastOp::create(rw, loc, resT, o);
    rw.replaceOp(g, o);
    return success();
  }
};

/// photon.causal_attention whose k and v are [B, M, H, hd] copies of [B, M,
/// Hkv, hd] tensors, head h a copy of head h / (H / Hkv) (K/V repeated for
/// grouped-query attention: Expand + Reshape, repeat_interleave, Split + Concat
/// of such copies) -> the same op over the unrepeated tensors. The copy is
/// proven by following sample elements through the data-movement ops to one
/// source tensor.
struct RaiseAttentionGQA : OpRewritePattern<CausalAttentionOp> {
  using OpRewritePattern::OpRewritePattern;

  /// x as a repeat of a 4-D source: the source, the permutation that puts its
  /// axes in [B, M, Hkv, hd] order, and Hkv < H.
  struct Repeat {
    Value src;
    SmallVector<int64_t> perm;
    int64_t hkv = 0;
  };

  static std::optional<Repeat> repeatOf(Value x) {
    auto xt = tensorTy(x);
    int64_t h = xt.getDimSize(2), hd = xt.getDimSize(3);
    if (ShapedType::isDynamic(h) || ShapedType::isDynamic(hd) || h < 2 || hd < 2)
      return std::nullopt;
    // The source: the deepest 4-D tensor element (0, 0, 0, 0) is a copy of.
    Elements el;
    Value src;
    for (auto &[v, i] : el.chain(x, Idx{0, 0, 0, 0}))
      if (v != x && tensorTy(v).getRank() == 4 && i == Idx{0, 0, 0, 0})
        src = v;
    if (!src)
      return std::nullopt;
    auto srcT = tensorTy(src);
    // Element p of x is element `.second` of src.
    auto from = [&](Idx p) -> std::optional<Idx> {
      for (auto &[v, i] : el.chain(x, p))
        if (v == src)
          return i;
      return std::nullopt;
    };
    // Which source axis each logical axis (b, m, head, d) moves: probe one at a
    // time.
    SmallVector<int64_t> axisOf(4, -1);
    for (int64_t l = 0; l < 4; ++l) {
      Idx p{0, 0, 0, 0};
      p[l] = l == 2 ? h - 1 : 1;
      auto s = from(p);
      if (!s)
        return std::nullopt;
      for (int64_t a = 0; a < 4; ++a)
        if ((*s)[a] != 0) {
          if (axisOf[l] != -1)
            return std::nullopt;
          axisOf[l] = a;
        }
      if (axisOf[l] == -1 || llvm::count(axisOf, axisOf[l]) != 1)
        return std::nullopt;
    }
    int64_t hkv = srcT.getDimSize(axisOf[2]);
    if (ShapedType::isDynamic(hkv) || hkv >= h || h % hkv != 0 || srcT.getDimSize(axisOf[3]) != hd)
      return std::nullopt;
    int64_t group = h / hkv;
    // Every head, a few positions and dims: element (b, m, head, d) is the
    // source's (b, m, head / group, d), in the source's axis order.
    for (int64_t b : {0, 1})
      for (int64_t m : {0, 1, 5})
        for (int64_t head = 0; head < h; ++head)
          for (int64_t d : {int64_t(0), int64_t(1), hd - 1}) {
            Idx want(4, 0);
            want[axisOf[0]] = b;
            want[axisOf[1]] = m;
            want[axisOf[2]] = head / group;
            want[axisOf[3]] = d;
            if (from(Idx{b, m, head, d}) != std::optional<Idx>(want))
              return std::nullopt;
          }
    return Repeat{src, SmallVector<int64_t>(axisOf.begin(), axisOf.end()), hkv};
  }

  LogicalResult matchAndRewrite(CausalAttentionOp op, PatternRewriter &rw) const override {
    auto kt = tensorTy(op.getK());
    if (kt.isDynamicDim(2) || kt.getDimSize(2) != tensorTy(op.getQ()).getDimSize(2))
      return failure();
    auto rk = repeatOf(op.getK()), rv = rk ? repeatOf(op.getV()) : std::nullopt;
    if (!rk || !rv || rk->hkv != rv->hkv)
      return failure();
    Value k = transposed(rw, op.getLoc(), rk->src, rk->perm);
    Value v = transposed(rw, op.getLoc(), rv->src, rv->perm);
    auto att =
        CausalAttentionOp::create(rw, op.getLoc(), op.getQ(), k, v, op.getScale().convertToFloat());
    rw.replaceOp(op, att.getResult());
    return success();
  }
};

} // namespace

void populateRaiseLocalAttentionPatterns(RewritePatternSet &patterns) {
  patterns.add<RaiseCausalAttention, RaiseAttentionGQA>(patterns.getContext());
  populateRaiseLocalRoPEPatterns(patterns);
}

} // namespace photon
} // namespace mlir
