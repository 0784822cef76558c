//===- RaiseStructureHeads.cpp - photon-raise-structure: merged heads -----===//
//
// Attention written over heads merged into the batch axis (torch's baddbmm / bmm over
// [N*H, M, hd], as BLOOM- or Falcon-style exports write it), which photon-raise-local
// raises as a causal_attention of one head over a batch of N*H, becomes the attention of
// H heads over the batch of N it is: the stages bind one cache row per sequence, so an
// attention's batch must be the sequences'. The layout the graph reads afterwards is
// rebuilt from the new attention's result, so every other op is unchanged.
//
//===----------------------------------------------------------------------===//

#include "RaiseStructure.h"

#include "photon/Dialect/PhotonOps.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

namespace mlir {
namespace photon {
namespace raise_structure {

namespace {

/// One of q, k, v as `expand([N*H, M, hd] -> [N*H, M, 1, hd])` of the merge of
/// `transpose(x4 [N, M, H, hd], [0, 2, 1, 3])`, for q and k possibly under a RoPE.
struct Merged {
  Value x4;
  RoPEOp rope;
};

std::optional<Merged> merged(Value x, bool mayRotate, SizeSample &s0, SizeSample &s1) {
  Merged m;
  if (mayRotate)
    if ((m.rope = x.getDefiningOp<RoPEOp>())) {
      if (m.rope.getOffsets()) return std::nullopt;
      x = m.rope.getX();
    }
  auto e = x.getDefiningOp<tensor::ExpandShapeOp>();
  // The unit heads axis inserted after the positions (grouped with either neighbour).
  if (!e || e.getResultType().getRank() != 4 || e.getResultType().getDimSize(2) != 1 ||
      (e.getReassociationIndices() != SmallVector<ReassociationIndices>{{0}, {1}, {2, 3}} &&
       e.getReassociationIndices() != SmallVector<ReassociationIndices>{{0}, {1, 2}, {3}}))
    return std::nullopt;
  Value flat = e.getSrc();
  Value t;
  bool collapse = false;
  if (auto c = flat.getDefiningOp<tensor::CollapseShapeOp>()) {
    if (c.getReassociationIndices() != SmallVector<ReassociationIndices>{{0, 1}, {2}, {3}})
      return std::nullopt;
    t = c.getSrc();
    collapse = true;
  } else if (auto r = flat.getDefiningOp<tensor::ReshapeOp>()) {
    t = r.getSource();
  } else {
    return std::nullopt;
  }
  auto tr = t.getDefiningOp<linalg::TransposeOp>();
  if (!tr || tr.getPermutation() != ArrayRef<int64_t>{0, 2, 1, 3}) return std::nullopt;
  m.x4 = tr.getInput();
  auto x4T = cast<RankedTensorType>(m.x4.getType());
  if (x4T.isDynamicDim(2) || x4T.isDynamicDim(3)) return std::nullopt;
  int64_t H = x4T.getDimSize(2), hd = x4T.getDimSize(3);
  if (!collapse)
    for (SizeSample *s : {&s0, &s1}) {
      auto a = s->shape(m.x4), b = s->shape(flat);
      if (!a || !b || *b != SmallVector<int64_t>{(*a)[0] * H, (*a)[1], hd}) return std::nullopt;
    }
  return m;
}

/// The transpose that brings the attention's merged result back to [N, M, H, hd] when
/// that is all the graph does with it (through ops used once, but for their sizes):
/// collapse the unit heads
/// axis, view as [N, H, M, hd] (the sizes checked on both samples), transpose [0, 2, 1, 3].
linalg::TransposeOp unmerged(CausalAttentionOp a, Value x4, SizeSample &s0, SizeSample &s1) {
  // The one user that is not a size read.
  auto only = [](Value v) -> Operation * {
    Operation *user = nullptr;
    for (Operation *u : v.getUsers()) {
      if (isa<tensor::DimOp>(u)) continue;
      if (user) return nullptr;
      user = u;
    }
    return user;
  };
  auto c = dyn_cast_or_null<tensor::CollapseShapeOp>(only(a.getResult()));
  if (!c || c.getResultType().getRank() != 3) return nullptr;
  Operation *view = only(c.getResult());
  if (!view || !isa<tensor::ReshapeOp, tensor::ExpandShapeOp>(view)) return nullptr;
  auto t = dyn_cast_or_null<linalg::TransposeOp>(only(view->getResult(0)));
  if (!t || t.getPermutation() != ArrayRef<int64_t>{0, 2, 1, 3}) return nullptr;
  auto x4T = cast<RankedTensorType>(x4.getType());
  for (SizeSample *s : {&s0, &s1}) {
    auto a4 = s->shape(x4), v = s->shape(view->getResult(0));
    if (!a4 || !v ||
        *v != SmallVector<int64_t>{(*a4)[0], x4T.getDimSize(2), (*a4)[1], x4T.getDimSize(3)})
      return nullptr;
  }
  return t;
}

struct SplitMergedHeads : OpRewritePattern<CausalAttentionOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(CausalAttentionOp a, PatternRewriter &rewriter) const override {
    auto f = a->getParentOfType<func::FuncOp>();
    if (!f || f.getNumArguments() < 1 || a->getBlock() != &f.getBody().front()) return failure();
    auto argT = dyn_cast<RankedTensorType>(f.getArgument(0).getType());
    if (!argT || argT.getRank() != 2) return failure();
    if (cast<RankedTensorType>(a.getQ().getType()).getDimSize(2) != 1) return failure();
    SizeSample s0(f, 0), s1(f, 1);
    auto q = merged(a.getQ(), true, s0, s1), k = merged(a.getK(), true, s0, s1),
         v = merged(a.getV(), false, s0, s1);
    if (!q || !k || !v) return failure();
    auto qT = cast<RankedTensorType>(q->x4.getType());
    if (cast<RankedTensorType>(k->x4.getType()).getDimSize(2) != qT.getDimSize(2) ||
        cast<RankedTensorType>(v->x4.getType()).getDimSize(2) != qT.getDimSize(2))
      return failure();
    for (SizeSample *s : {&s0, &s1}) {
      auto qs = s->shape(q->x4), ks = s->shape(k->x4), vs = s->shape(v->x4);
      if (!qs || !ks || !vs || *qs != *ks || *qs != *vs) return failure();
    }
    // The graph's way back from the merged layout: [N*H, M, 1, hd] -> [N*H, M, hd] ->
    // [N, H, M, hd] -> transpose [N, M, H, hd], which is the new attention's result.
    linalg::TransposeOp back = unmerged(a, q->x4, s0, s1);
    Location loc = a.getLoc();
    auto rotated = [&](const Merged &m) -> Value {
      if (!m.rope) return m.x4;
      Operation *r = rewriter.clone(*m.rope);
      r->setOperand(0, m.x4);
      r->getResult(0).setType(m.x4.getType());
      return r->getResult(0);
    };
    Value q4 = rotated(*q), k4 = rotated(*k);
    Value a4 = CausalAttentionOp::create(rewriter, loc, q4, k4, v->x4,
                                         a.getScale().convertToFloat());
    if (back) {
      Value r = a4;
      if (r.getType() != back->getResult(0).getType())
        r = tensor::CastOp::create(rewriter, loc, back->getResult(0).getType(), r);
      rewriter.replaceOp(back, r);
      return success();
    }
    // Back to the merged layout the graph reads: [N, M, H, hd] -> [N, H, M, hd] ->
    // [N*H, M, hd] -> [N*H, M, 1, hd].
    int64_t H = qT.getDimSize(2), hd = qT.getDimSize(3);
    OpFoldResult n = tensor::getMixedSize(rewriter, loc, a4, 0);
    OpFoldResult m = tensor::getMixedSize(rewriter, loc, a4, 1);
    Value init = tensor::EmptyOp::create(
        rewriter, loc, ArrayRef<OpFoldResult>{n, rewriter.getIndexAttr(H), m, rewriter.getIndexAttr(hd)},
        qT.getElementType());
    Value t = linalg::TransposeOp::create(rewriter, loc, a4, init, ArrayRef<int64_t>{0, 2, 1, 3})
                  ->getResult(0);
    Value flat = tensor::CollapseShapeOp::create(
        rewriter, loc, t, ArrayRef<ReassociationIndices>{{0, 1}, {2}, {3}});
    auto flatT = cast<RankedTensorType>(flat.getType());
    OpFoldResult rows = tensor::getMixedSize(rewriter, loc, flat, 0);
    auto outT = RankedTensorType::get({flatT.getDimSize(0), flatT.getDimSize(1), 1, hd},
                                      qT.getElementType());
    Value out = tensor::ExpandShapeOp::create(
        rewriter, loc, outT, flat, ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3}},
        ArrayRef<OpFoldResult>{rows, m, rewriter.getIndexAttr(1), rewriter.getIndexAttr(hd)});
    if (out.getType() != a.getType()) out = tensor::CastOp::create(rewriter, loc, a.getType(), out);
    rewriter.replaceOp(a, out);
    return success();
  }
};

} // namespace

void addMergedHeadsPattern(RewritePatternSet &patterns) {
  patterns.add<SplitMergedHeads>(patterns.getContext());
}

} // namespace raise_structure
} // namespace photon
} // namespace mlir
