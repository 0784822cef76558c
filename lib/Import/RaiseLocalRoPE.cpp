//===- RaiseLocalRoPE.cpp - photon-raise-local: RoPE ----------------------===//
//
// The RoPE patterns of the importer's second stage (docs/importer.md, "Two
// stages"), over the upstream ops the ONNX converters write:
//
//   - RaiseRoPE: x * cos + rot(x) * sin, rot the rotate-half or interleaved rotation,
//     the tables evaluated against cos / sin(m theta^(-2j/hd)) -> photon.rope. The
//     rotation is proven by following sample elements of rot back to x through the
//     data-movement ops and negations (RaiseLocalEval.cpp).
//   - RaiseRoPEHalves: the same rotation written on the two halves of the last axis,
//     concat(x1 * cos - x2 * sin, x2 * cos + x1 * sin) -> photon.rope.
//   - FoldTransposePair: the transposes left between the raised ops' layouts (the
//     attention patterns' of RaiseLocalAttention.cpp and RaiseRoPE's) compose.
//
//===----------------------------------------------------------------------===//

#include "RaiseLocalAttention.h"
#include "RaiseLocalEval.h"

#include "photon/Dialect/PhotonOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/TypeUtilities.h"

#include <cmath>
#include <optional>

namespace mlir {
namespace photon {
namespace {

using namespace raise_local;


/// The operand of a binary elementwise generic that is the identity read of a tensor,
/// and the other operand; both orders.
SmallVector<std::pair<Read, Read>, 2> readPairs(linalg::GenericOp g, Operation *op) {
  Read a = readOf(g, op->getOperand(0)), b = readOf(g, op->getOperand(1));
  return {{a, b}, {b, a}};
}

/// Which RoPE layout `rot` is the rotation of x in: element i of the last axis is
/// -x[i + hd/2] (i < hd/2) or x[i - hd/2] (rotate-half, NeoX / HF), or -x[i + 1] (i even)
/// or x[i - 1] (interleaved, GPT-J). Sample elements are followed back through the
/// data-movement ops and negations (elementwise `negf` generics) to x.
std::optional<bool> rotationLayout(Value rot, Value x, int64_t hd) {
  auto t = tensorTy(x), rt = tensorTy(rot);
  if (!t || !rt || rt.getRank() != t.getRank() || failed(verifyCompatibleShape(rt, t)))
    return std::nullopt;
  int64_t r = t.getRank();
  Elements el;
  // The element of x (and its sign) element idx of rot is.
  auto from = [&](Idx idx) -> std::optional<std::pair<Idx, int>> {
    Value v = rot;
    int sign = 1;
    for (int steps = 0; steps < 64 && v != x; ++steps) {
      if (linalg::GenericOp g = elementwise(v)) {
        auto ops = bodyOps(g);
        if (ops.size() == 1 && isa<arith::NegFOp>(ops[0]) && yielded(g) == ops[0]->getResult(0)) {
          Read in = readOf(g, ops[0]->getOperand(0));
          if (!identityRead(in))
            return std::nullopt;
          v = in.tensor;
          sign = -sign;
          continue;
        }
      }
      auto m = el.moveBack(v, idx);
      if (!m || !el.inBounds(m->first, m->second))
        return std::nullopt;
      v = m->first;
      idx = m->second;
    }
    if (v != x)
      return std::nullopt;
    return std::make_pair(idx, sign);
  };
  for (bool interleaved : {false, true}) {
    bool ok = true;
    for (int64_t other : {0, 1}) {
      for (int64_t i = 0; i < hd && ok; ++i) {
        Idx idx(r, other);
        for (int64_t a = 0; a + 1 < r; ++a)
          if (!t.isDynamicDim(a) && idx[a] >= t.getDimSize(a))
            idx[a] = 0;
        idx[r - 1] = i;
        int64_t partner =
            interleaved ? (i % 2 ? i - 1 : i + 1) : (i < hd / 2 ? i + hd / 2 : i - hd / 2);
        int sign = (interleaved ? i % 2 == 0 : i < hd / 2) ? -1 : 1;
        Idx want = idx;
        want[r - 1] = partner;
        auto f = from(idx);
        ok = f && f->first == want && f->second == sign;
      }
    }
    if (ok)
      return interleaved;
  }
  return std::nullopt;
}

/// x * cos + rot(x) * sin, rot the rotate-half (NeoX / HF) or interleaved (GPT-J)
/// rotation, x of rank 3 ([B * H, M, hd]), 4 or 5 with the tables read through broadcasting maps
/// over (position, last axis) -> photon.rope(x, theta) in x's layout: x transposed to
/// [.., M, .., hd] with the other axes as batch and heads (two head axes merged), an
/// interleaved hd axis de-interleaved, and back. The tables are evaluated: cos / sin of
/// position * theta^(-2j/hd), j = i mod hd/2 (rotate-half) or i / 2 (interleaved),
/// positions from 0, theta from the first frequency (an integer when it is one within
/// 1e-4 relative), every value at positions 0-100 checked against it (0-11 at least,
/// for tables of constants that end earlier).
struct RaiseRoPE : OpRewritePattern<linalg::GenericOp> {
  using OpRewritePattern::OpRewritePattern;

  /// The table's position loop, if it reads (position loop, last loop) and nothing else.
  static std::optional<int64_t> positionLoop(const Read &t, int64_t r) {
    if (!t.tensor || !t.map || t.map.getNumDims() != r)
      return std::nullopt;
    std::optional<int64_t> pos;
    bool last = false;
    for (AffineExpr e : t.map.getResults()) {
      if (auto c = dyn_cast<AffineConstantExpr>(e)) {
        if (c.getValue() != 0)
          return std::nullopt;
        continue;
      }
      auto d = dyn_cast<AffineDimExpr>(e);
      if (!d)
        return std::nullopt;
      if (d.getPosition() == (unsigned)r - 1) {
        last = true;
      } else {
        if (pos)
          return std::nullopt;
        pos = d.getPosition();
      }
    }
    return last ? pos : std::nullopt;
  }

  /// The last axis of x [.., hd] permuted: de-interleaved ([x0, x2, .., x1, x3, ..]) or,
  /// with `inverse`, interleaved back.
  static Value interleave(PatternRewriter &rw, Location loc, Value x, bool inverse) {
    auto t = tensorTy(x);
    int64_t r = t.getRank(), hd = t.getDimSize(r - 1);
    SmallVector<int64_t> shape(t.getShape());
    shape.back() = inverse ? 2 : hd / 2;
    shape.push_back(inverse ? hd / 2 : 2);
    SmallVector<ReassociationIndices> groups;
    for (int64_t i = 0; i + 1 < r; ++i)
      groups.push_back({i});
    groups.push_back({r - 1, r});
    Value e = tensor::ExpandShapeOp::create(
        rw, loc, RankedTensorType::get(shape, t.getElementType()), x, groups);
    SmallVector<int64_t> perm;
    for (int64_t i = 0; i <= r; ++i)
      perm.push_back(i == r - 1 ? r : (i == r ? r - 1 : i));
    Value tr = transposed(rw, loc, e, perm);
    return tensor::CollapseShapeOp::create(rw, loc, tr, groups);
  }

  /// photon.rope(x, theta) in x's layout (x [.., hd], positions along axis s): x
  /// transposed to [.., M, .., hd] with the other axes as batch and heads (two head axes
  /// merged), an interleaved hd axis de-interleaved, and back. Null when x has two head
  /// axes not both static.
  static Value buildRoPE(PatternRewriter &rw, Location loc, Value x, int64_t s, double theta,
                         bool interleaved) {
    auto rt = tensorTy(x);
    int64_t r = rt.getRank(), hd = rt.getDimSize(r - 1);
    SmallVector<int64_t> perm;
    for (int64_t l = 0; l + 1 < r; ++l)
      if (l != s)
        perm.push_back(l);
    perm.insert(perm.begin() + 1, s);
    perm.push_back(r - 1);
    if (r == 5 && (rt.isDynamicDim(perm[2]) || rt.isDynamicDim(perm[3])))
      return nullptr;
    SmallVector<int64_t> inv(r);
    for (int64_t i = 0; i < r; ++i)
      inv[perm[i]] = i;
    Value xt = transposed(rw, loc, x, perm);
    auto xtt = tensorTy(xt);
    if (r == 5)
      xt = tensor::CollapseShapeOp::create(
          rw, loc, xt, SmallVector<ReassociationIndices>{{0}, {1}, {2, 3}, {4}});
    if (r == 3) // [B * H, M, hd]: one head
      xt = tensor::ExpandShapeOp::create(
          rw, loc,
          RankedTensorType::get({xtt.getDimSize(0), xtt.getDimSize(1), 1, hd},
                                xtt.getElementType()),
          xt, SmallVector<ReassociationIndices>{{0}, {1, 2}, {3}});
    if (interleaved)
      xt = interleave(rw, loc, xt, false);
    Value y = RoPEOp::create(rw, loc, xt, Value(), (float)theta).getResult();
    if (interleaved)
      y = interleave(rw, loc, y, true);
    if (r == 5)
      y = tensor::ExpandShapeOp::create(rw, loc, xtt, y,
                                        SmallVector<ReassociationIndices>{{0}, {1}, {2, 3}, {4}});
    if (r == 3)
      y = tensor::CollapseShapeOp::create(rw, loc, y,
                                          SmallVector<ReassociationIndices>{{0}, {1, 2}, {3}});
    return transposed(rw, loc, y, inv);
  }

  LogicalResult matchAndRewrite(linalg::GenericOp g, PatternRewriter &rw) const override {
    linalg::GenericOp add = elementwise(g->getNumResults() == 1 ? g->getResult(0) : Value());
    auto ops = add ? bodyOps(add) : SmallVector<Operation *>();
    if (ops.size() != 1 || !isa<arith::AddFOp>(ops[0]) || yielded(add) != ops[0]->getResult(0))
      return failure();
    auto rt = tensorTy(g->getResult(0));
    int64_t r = rt.getRank();
    if (r < 3 || r > 5 || rt.isDynamicDim(r - 1) || rt.getDimSize(r - 1) % 2)
      return failure();
    int64_t hd = rt.getDimSize(r - 1);
    // x * cos and rot(x) * sin, in either order.
    auto product = [&](Value v, Value &x, Read &table) {
      linalg::GenericOp m = elementwise(v);
      auto mops = m ? bodyOps(m) : SmallVector<Operation *>();
      if (mops.size() != 1 || !isa<arith::MulFOp>(mops[0]) || yielded(m) != mops[0]->getResult(0))
        return false;
      for (auto [a, t] : readPairs(m, mops[0]))
        if (identityRead(a) && positionLoop(t, r)) {
          x = a.tensor;
          table = t;
          return true;
        }
      return false;
    };
    for (auto [p0, p1] : readPairs(add, ops[0])) {
      if (!identityRead(p0) || !identityRead(p1))
        continue;
      Value x, rot;
      Read cosT, sinT;
      if (!product(p0.tensor, x, cosT) || !product(p1.tensor, rot, sinT) || x.getType() != rt)
        continue;
      int64_t s = *positionLoop(cosT, r);
      if (positionLoop(sinT, r) != s)
        continue;
      auto interleaved = rotationLayout(rot, x, hd);
      if (!interleaved)
        continue;
      auto theta = thetaOf(cosT, sinT, r, s, hd, *interleaved);
      if (!theta)
        continue;
      Value y = buildRoPE(rw, g.getLoc(), x, s, *theta, *interleaved);
      if (!y)
        continue;
      rw.replaceOp(g, y);
      return success();
    }
    return failure();
  }

  /// theta, if cos / sin read at (position m, column i) are cos / sin(m theta^(-2j/hd)),
  /// j = i / 2 (interleaved) or i mod hd/2.
  static std::optional<double> thetaOf(const Read &cosT, const Read &sinT, int64_t r, int64_t s,
                                       int64_t hd, bool interleaved, int64_t cols = 0) {
    if (cols == 0)
      cols = hd;
    Elements ev;
    auto at = [&](const Read &t, int64_t m, int64_t i) -> std::optional<double> {
      SmallVector<int64_t> loops(r, 0);
      loops[s] = m;
      loops[r - 1] = i;
      SmallVector<int64_t> idx = t.map.compose(loops);
      ev.budget = 20000;
      return ev.at(t.tensor, Idx(idx.begin(), idx.end()));
    };
    if (hd < 4)
      return std::nullopt;
    int64_t col1 = interleaved ? 2 : 1; // the column of frequency 1
    auto c1 = at(cosT, 1, col1), s1 = at(sinT, 1, col1);
    if (!c1 || !s1)
      return std::nullopt;
    double f1 = std::atan2(*s1, *c1);
    if (!(f1 > 0 && f1 < 1))
      return std::nullopt;
    double theta = std::pow(f1, -(double)hd / 2);
    if (std::fabs(theta - std::round(theta)) <= 1e-4 * theta)
      theta = std::round(theta);
    // Positions 0 .. 11 must evaluate; a table of constants (an initializer) may end
    // before the later ones (a model of at most that many positions per stream).
    for (int64_t m : {0, 1, 2, 3, 7, 11, 31, 50, 100}) {
      if (m > 11 && (!at(cosT, m, 0) || !at(sinT, m, 0)))
        break;
      for (int64_t i = 0; i < cols; ++i) {
        int64_t j = interleaved ? i / 2 : i % (hd / 2);
        double f = std::pow(theta, -2.0 * (double)j / (double)hd);
        auto c = at(cosT, m, i), sn = at(sinT, m, i);
        if (!c || !sn || std::fabs(*c - std::cos(m * f)) > 1e-4 ||
            std::fabs(*sn - std::sin(m * f)) > 1e-4)
          return std::nullopt;
      }
    }
    return theta;
  }
};

/// Part `first .. first + count` of the last axis of a tensor, every other axis whole
/// (a static size or `tensor.dim` of the source): the source, or null.
Value lastAxisPart(Value v, int64_t first, int64_t count) {
  auto sl = v.getDefiningOp<tensor::ExtractSliceOp>();
  if (!sl || sl.getSourceType().getRank() != sl.getResultType().getRank())
    return nullptr;
  RankedTensorType st = sl.getSourceType();
  int64_t r = st.getRank();
  auto offs = sl.getMixedOffsets(), sizes = sl.getMixedSizes(), strides = sl.getMixedStrides();
  for (int64_t i = 0; i < r; ++i) {
    bool last = i == r - 1;
    if (!isConstantIntValue(strides[i], 1) || !isConstantIntValue(offs[i], last ? first : 0))
      return nullptr;
    if (last) {
      if (!isConstantIntValue(sizes[i], count))
        return nullptr;
      continue;
    }
    if (auto c = getConstantIntValue(sizes[i])) {
      if (st.isDynamicDim(i) || *c != st.getDimSize(i))
        return nullptr;
      continue;
    }
    auto d = cast<Value>(sizes[i]).getDefiningOp<tensor::DimOp>();
    if (!d || d.getSource() != sl.getSource() || d.getConstantIndex() != i)
      return nullptr;
  }
  return sl.getSource();
}

/// The rotate-half rotation written on the two halves of x's last axis (as our reference
/// and others write it): concat_last(x1 * cos - x2 * sin, x2 * cos + x1 * sin), cos / sin
/// tables of hd/2 columns read at (position, column) -> photon.rope(x, theta), the tables
/// evaluated as RaiseRoPE does (cos / sin of m theta^(-2j/hd)).
struct RaiseRoPEHalves : OpRewritePattern<tensor::ConcatOp> {
  using OpRewritePattern::OpRewritePattern;

  /// v = a (op) b, an elementwise generic of identity reads: (a, b).
  template <typename OpT> static std::optional<std::pair<Value, Value>> binary(Value v) {
    linalg::GenericOp g = elementwise(v);
    auto ops = g ? bodyOps(g) : SmallVector<Operation *>();
    if (ops.size() != 1 || !isa<OpT>(ops[0]) || yielded(g) != ops[0]->getResult(0))
      return std::nullopt;
    Read a = readOf(g, ops[0]->getOperand(0)), b = readOf(g, ops[0]->getOperand(1));
    if (!identityRead(a) || !identityRead(b))
      return std::nullopt;
    return std::make_pair(a.tensor, b.tensor);
  }

  /// v = part * table (either order): the part and the table's read.
  static std::optional<std::pair<Value, Read>> product(Value v, int64_t r) {
    linalg::GenericOp m = elementwise(v);
    auto ops = m ? bodyOps(m) : SmallVector<Operation *>();
    if (ops.size() != 1 || !isa<arith::MulFOp>(ops[0]) || yielded(m) != ops[0]->getResult(0))
      return std::nullopt;
    Read a = readOf(m, ops[0]->getOperand(0)), b = readOf(m, ops[0]->getOperand(1));
    for (auto [x, t] : {std::make_pair(a, b), std::make_pair(b, a)})
      if (identityRead(x) && RaiseRoPE::positionLoop(t, r))
        return std::make_pair(x.tensor, t);
    return std::nullopt;
  }

  static bool sameRead(const Read &a, const Read &b) {
    return a.tensor == b.tensor && a.map == b.map;
  }

  LogicalResult matchAndRewrite(tensor::ConcatOp c, PatternRewriter &rw) const override {
    auto rt = cast<RankedTensorType>(c.getType());
    int64_t r = rt.getRank();
    if (r < 3 || r > 5 || (int64_t)c.getDim() != r - 1 || c.getInputs().size() != 2 ||
        rt.isDynamicDim(r - 1) || rt.getDimSize(r - 1) % 2)
      return failure();
    int64_t hd = rt.getDimSize(r - 1), half = hd / 2;
    auto lo = binary<arith::SubFOp>(c.getInputs()[0]);
    auto hi = binary<arith::AddFOp>(c.getInputs()[1]);
    if (!lo || !hi)
      return failure();
    auto p = product(lo->first, r), q = product(lo->second, r); // x1 cos, x2 sin
    auto u = product(hi->first, r), v = product(hi->second, r); // x2 cos, x1 sin (any order)
    if (!p || !q || !u || !v)
      return failure();
    if (u->first != q->first)
      std::swap(u, v);
    Value x1 = p->first, x2 = q->first;
    if (x1 == x2 || u->first != x2 || v->first != x1 || !sameRead(p->second, u->second) ||
        !sameRead(q->second, v->second))
      return failure();
    Value x = lastAxisPart(x1, 0, half);
    if (!x || lastAxisPart(x2, half, half) != x || x.getType() != c.getType())
      return failure();
    int64_t sPos = *RaiseRoPE::positionLoop(p->second, r);
    if (RaiseRoPE::positionLoop(q->second, r) != sPos)
      return failure();
    auto theta = RaiseRoPE::thetaOf(p->second, q->second, r, sPos, hd, /*interleaved=*/false,
                                    /*cols=*/half);
    if (!theta)
      return failure();
    Value y = RaiseRoPE::buildRoPE(rw, c.getLoc(), x, sPos, *theta, /*interleaved=*/false);
    if (!y)
      return failure();
    rw.replaceOp(c, y);
    return success();
  }
};

/// linalg.transpose of a linalg.transpose: one transpose, or none (the attention
/// patterns and RaiseRoPE leave such pairs between the layouts of the ops they raise).
struct FoldTransposePair : OpRewritePattern<linalg::TransposeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(linalg::TransposeOp t, PatternRewriter &rw) const override {
    auto inner = t.getInput().getDefiningOp<linalg::TransposeOp>();
    if (!inner || t->getNumResults() != 1)
      return failure();
    rw.replaceOp(t, transposed(rw, t.getLoc(), t.getInput(), t.getPermutation()));
    return success();
  }
};

} // namespace

void populateRaiseLocalRoPEPatterns(RewritePatternSet &patterns) {
  patterns.add<RaiseRoPE, RaiseRoPEHalves, FoldTransposePair>(patterns.getContext());
}

} // namespace photon
} // namespace mlir
