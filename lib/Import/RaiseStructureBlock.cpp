//===- RaiseStructureBlock.cpp - photon-raise-structure: Block Transformer ===//
//
// The Block Transformer (shared/docs/photon-model.md, L = 1) as a rewrite pattern over
// the typed ops photon-raise-local leaves: a graph of token ids whose LM head reads
//
//   H  = view(slice(dec, rows R-1 .. R+C-2))                 [B, T, D]
//   dec = norm(blocks(win))                                  token decoder, windows [N, W, D]
//   win = concat_1(view(linear(prev, Wc, bc)) [N, R, D],    converter rows
//                  slice(view(embedding(Wt, tokens)) [N, C, D], rows 0 .. C-2))
//   prev = concat_1(broadcast(start) [B, 1, D], enc[:, :-1])  the shift
//   enc = norm(blocks(x0))                                   encoder over chunks [B, M, D]
//   x0 = view(e) [B, M, C*d], e [B, T, d] computed row-wise from the tokens
//
// (N = B*M, M = T/C, W = R + C - 1, "view" a row-major reshape) becomes the stage form:
// photon.chunk, the encoder stack (role encoder), photon.shift with the start latent,
// photon.expand (the converter), the decoder stack (role decoder) with
// photon.bounded_attention, and `#photon.hierarchy<family = "block">`.
//
// The reshapes' meaning depends on the sizes the graph computes for them, so every size
// is evaluated for two samples of the dynamic batch and sequence sizes (SizeSample) and
// must come out as the structure says for both. Every op on the tokens' data must be a
// part of the structure, so that the stages photon-derive-stages cuts out of @forward
// (encode: tokens -> encoder; token step: start latent and one chunk's tokens -> logits)
// compute what the graph computes.
//
//===----------------------------------------------------------------------===//

#include "RaiseStructure.h"

#include "photon/Dialect/PhotonAttrs.h"
#include "photon/Dialect/PhotonOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/Matchers.h"

#include <optional>

namespace mlir {
namespace photon {
namespace raise_structure {

namespace {

//===----------------------------------------------------------------------===//
// The pattern
//===----------------------------------------------------------------------===//

/// A row-major view of token data: a reshape whose sizes are not computed from the
/// tokens' values, an expand_shape, a collapse_shape, or a cast.
bool isView(Operation *op, const llvm::DenseSet<Value> &data) {
  if (auto r = dyn_cast<tensor::ReshapeOp>(op)) return !data.contains(r.getShape());
  return isa<tensor::ExpandShapeOp, tensor::CollapseShapeOp, tensor::CastOp>(op);
}

/// Follows `v` back through views of token data; the ops passed go to `ops`.
Value throughViews(Value v, const llvm::DenseSet<Value> &data, llvm::SetVector<Operation *> &ops) {
  while (Operation *d = v.getDefiningOp()) {
    if (!data.contains(v) || !isView(d, data)) break;
    ops.insert(d);
    v = d->getOperand(0);
  }
  return v;
}

Value throughCasts(Value v, llvm::SetVector<Operation *> &ops) {
  while (auto c = v.getDefiningOp<tensor::CastOp>()) {
    ops.insert(c);
    v = c.getSource();
  }
  return v;
}

/// The start latent broadcast to [B, 1, D]: a photon.weight of D elements, through
/// static views and linalg.generic copies that read every output element at the
/// weight's last index (Expand / Tile over the batch). The ops passed go to `ops`.
WeightOp startLatent(Value v, int64_t D, llvm::SetVector<Operation *> &ops) {
  while (Operation *d = v.getDefiningOp()) {
    if (auto w = dyn_cast<WeightOp>(d)) {
      auto t = cast<RankedTensorType>(w.getType());
      return t.hasStaticShape() && t.getNumElements() == D && t.getShape().back() == D ? w
                                                                                       : nullptr;
    }
    ops.insert(d);
    if (isa<tensor::CastOp, tensor::ExpandShapeOp, tensor::CollapseShapeOp, tensor::ReshapeOp>(d)) {
      auto s = cast<RankedTensorType>(d->getOperand(0).getType());
      if (!s.hasStaticShape() || s.getNumElements() != D || s.getShape().back() != D)
        return nullptr;
      v = d->getOperand(0);
      continue;
    }
    auto g = dyn_cast<linalg::GenericOp>(d);
    if (!g || g.getNumDpsInputs() != 1 || g->getNumResults() != 1 ||
        g.getNumReductionLoops() != 0 || !g.getIndexingMapsArray().back().isIdentity())
      return nullptr;
    Block *b = g.getBody();
    if (b->getOperations().size() != 1 || b->getTerminator()->getOperand(0) != b->getArgument(0))
      return nullptr;
    Value in = g.getDpsInputOperand(0)->get();
    auto it = dyn_cast<RankedTensorType>(in.getType());
    AffineMap m = g.getMatchingIndexingMap(g.getDpsInputOperand(0));
    unsigned n = g.getNumLoops();
    if (!it || !it.hasStaticShape() || it.getNumElements() != D || it.getShape().back() != D ||
        m.getNumResults() != (unsigned)it.getRank() ||
        m.getResults().back() != getAffineDimExpr(n - 1, g.getContext()))
      return nullptr;
    for (unsigned i = 0; i + 1 < m.getNumResults(); ++i) {
      AffineExpr e = m.getResult(i);
      auto c = dyn_cast<AffineConstantExpr>(e);
      if (!(c && c.getValue() == 0) && !(isa<AffineDimExpr>(e) && it.getDimSize(i) == 1))
        return nullptr;
    }
    v = in;
  }
  return nullptr;
}

struct OutlineBlockHierarchy : OpRewritePattern<LMHeadOp> {
  OutlineBlockHierarchy(MLIRContext *ctx, std::string *why, BlockFound *found)
      : OpRewritePattern(ctx), why(why), found(found) {}
  std::string *why;
  BlockFound *found;

  LogicalResult fail(PatternRewriter &rewriter, LMHeadOp op, const std::string &w) const {
    if (why) *why = w;
    return rewriter.notifyMatchFailure(op, w);
  }

  LogicalResult matchAndRewrite(LMHeadOp head, PatternRewriter &rewriter) const override {
    if (found->hierarchy) return failure();
    auto f = head->getParentOfType<func::FuncOp>();
    auto module = f ? f->getParentOfType<ModuleOp>() : ModuleOp();
    if (!module || f.isPrivate() || head->getBlock() != &f.getBody().front()) return failure();
    if (module->hasAttr(PhotonDialect::HierarchyAttrHelper::getNameStr())) return failure();
    Block *entry = &f.getBody().front();
    if (f.getNumArguments() != 1 || f.getNumResults() != 1) return failure();
    Value tokens = f.getArgument(0);
    auto tokT = dyn_cast<RankedTensorType>(tokens.getType());
    if (!tokT || tokT.getRank() != 2 || !tokT.getElementType().isSignlessInteger())
      return failure();
    llvm::DenseSet<Value> data = tokenData(f);
    // Two samples of (batch, sequence); the sequence a multiple of every chunk size up to
    // 64 but 11, 13, ...
    SizeSample s0(f, {2, 20160}), s1(f, {3, 40320});
    SizeSample *samples[2] = {&s0, &s1};
    const int64_t Bs[2] = {2, 3}, Ts[2] = {20160, 40320};
    auto shapeIs = [&](Value v, auto want) {
      for (int k = 0; k < 2; ++k) {
        auto s = samples[k]->shape(v);
        if (!s || *s != want(Bs[k], Ts[k])) return false;
      }
      return true;
    };
    using Shape = SmallVector<int64_t>;
    llvm::SetVector<Operation *> part; // the ops of the structure outside the stacks

    // The tail: rows R-1 .. R+C-2 of the decoder's windows, viewed as [B, T, D].
    Value H = head.getX();
    auto hT = cast<RankedTensorType>(H.getType());
    int64_t D = hT.getShape().back();
    int64_t V = cast<RankedTensorType>(head.getType()).getShape().back();
    // Not a Block Transformer at all (no reason given: the decoder-only pattern's counts).
    if (hT.getRank() != 3 || ShapedType::isDynamic(D) || ShapedType::isDynamic(V))
      return failure();
    auto ts = throughViews(H, data, part).getDefiningOp<tensor::ExtractSliceOp>();
    if (!ts || !isa_and_nonnull<RMSNormOp, LayerNormOp>(ts.getSource().getDefiningOp()))
      return failure();
    part.insert(ts);
    Value decOut = ts.getSource();
    auto decT = cast<RankedTensorType>(decOut.getType());
    if (decT.getRank() != 3 || ts.getResultType().getRank() != 3 || decT.isDynamicDim(1) ||
        decT.getShape().back() != D)
      return fail(rewriter, head, "the decoder's windows are not [N, W, D] with a static W");
    int64_t W = decT.getDimSize(1);
    int64_t first = -1, rows = -1;
    for (SizeSample *s : samples) {
      auto off = [&](int i) { return s->size(ts.getMixedOffsets()[i]); };
      auto sz = [&](int i) { return s->size(ts.getMixedSizes()[i]); };
      auto st = [&](int i) { return s->size(ts.getMixedStrides()[i]); };
      auto src = s->shape(decOut);
      if (!src || !off(0) || !off(1) || !off(2) || !sz(0) || !sz(1) || !sz(2) || *off(0) != 0 ||
          *off(2) != 0 || *sz(0) != (*src)[0] || *sz(2) != D || *st(0) != 1 || *st(1) != 1 ||
          *st(2) != 1 || (first >= 0 && (first != *off(1) || rows != *sz(1))))
        return fail(rewriter, head, "the LM head does not read whole rows of the decoder's "
                                    "windows at fixed positions (" + nodeOf(ts) + ")");
      first = *off(1);
      rows = *sz(1);
    }
    int64_t R = first + 1, C = rows;
    if (R < 1 || C < 2 || first + rows != W)
      return fail(rewriter, head, "the LM head reads window rows " + std::to_string(first) +
                                      " .. " + std::to_string(first + rows - 1) + " of " +
                                      std::to_string(W) + ", not the last C >= 2 of them");
    if (!shapeIs(H, [&](int64_t B, int64_t T) { return Shape{B, T, D}; }))
      return fail(rewriter, head, "the decoder's rows are not viewed as [batch, sequence, " +
                                      std::to_string(D) + "] at the LM head");

    // The token decoder: a residual stack over the windows.
    FoundStack dec;
    std::string bad = findStack(decOut.getDefiningOp(), data, dec);
    if (!bad.empty()) return fail(rewriter, head, "the token decoder: " + bad);
    auto winT = cast<RankedTensorType>(dec.input.getType());
    if (winT != decT) return fail(rewriter, head, "the token decoder's input is not its windows");
    auto NRD = [&](int64_t rowsPer) {
      return [=](int64_t B, int64_t T) { return Shape{B * (T / C), rowsPer, D}; };
    };

    // The windows: converter rows, then the embeddings of the chunk's first C-1 tokens.
    auto win = throughCasts(dec.input, part).getDefiningOp<tensor::ConcatOp>();
    if (!win || win.getDim() != 1 || win.getInputs().size() != 2 ||
        !shapeIs(win, NRD(W)))
      return fail(rewriter, head, "the token decoder's input is not [prefix rows; token rows] "
                                  "joined along the window axis");
    part.insert(win);
    Value P = throughCasts(win.getInputs()[0], part);
    Value E = throughCasts(win.getInputs()[1], part);
    auto conv = throughViews(P, data, part).getDefiningOp<LinearOp>();
    if (!conv || !conv.getB() || !shapeIs(P, NRD(R)) ||
        !shapeIs(conv, [&](int64_t B, int64_t T) { return Shape{B, T / C, R * D}; }))
      return fail(rewriter, head, "the window's first " + std::to_string(R) +
                                      " rows are not a linear with bias [B, M, R*D] viewed as "
                                      "[B*M, R, D] (the converter)");
    part.insert(conv);
    auto es = E.getDefiningOp<tensor::ExtractSliceOp>();
    if (!es || !shapeIs(E, NRD(C - 1)) || !shapeIs(es.getSource(), NRD(C)))
      return fail(rewriter, head, "the window's last rows are not the first C-1 rows of "
                                  "[B*M, C, D] token embeddings");
    for (SizeSample *s : samples)
      for (int i = 0; i < 3; ++i) {
        auto o = s->size(es.getMixedOffsets()[i]), st = s->size(es.getMixedStrides()[i]);
        if (!o || !st || *o != 0 || *st != 1)
          return fail(rewriter, head, "the window's token rows are not the chunk's first C-1 "
                                      "tokens (" + nodeOf(es) + ")");
      }
    part.insert(es);
    auto temb = throughViews(es.getSource(), data, part).getDefiningOp<EmbeddingOp>();
    if (!temb || temb.getIds() != tokens ||
        !shapeIs(temb, [&](int64_t B, int64_t T) { return Shape{B, T, D}; }))
      return fail(rewriter, head, "the window's token rows are not an embedding of the tokens "
                                  "viewed as [B*M, C, D]");
    part.insert(temb);

    // The shift: the start latent, then the encoder's units but the last.
    auto shift = throughCasts(conv.getX(), part).getDefiningOp<tensor::ConcatOp>();
    auto BMD = [&](int64_t units) {
      return [=](int64_t B, int64_t T) { return Shape{B, T / C + units, D}; };
    };
    if (!shift || shift.getDim() != 1 || shift.getInputs().size() != 2 || !shapeIs(shift, BMD(0)))
      return fail(rewriter, head, "the converter's input is not [start latent; previous "
                                  "units] joined along the unit axis (the shift)");
    part.insert(shift);
    WeightOp start = startLatent(shift.getInputs()[0], D, part);
    if (!start || !shapeIs(shift.getInputs()[0], [&](int64_t B, int64_t) { return Shape{B, 1, D}; }))
      return fail(rewriter, head, "the shift's first unit is not a learned start latent of " +
                                      std::to_string(D) + " values broadcast over the batch");
    auto ss = throughCasts(shift.getInputs()[1], part).getDefiningOp<tensor::ExtractSliceOp>();
    if (!ss || !shapeIs(ss, BMD(-1)) || !shapeIs(ss.getSource(), BMD(0)))
      return fail(rewriter, head, "the shift's other units are not the encoder's units but "
                                  "the last");
    for (SizeSample *s : samples)
      for (int i = 0; i < 3; ++i) {
        auto o = s->size(ss.getMixedOffsets()[i]), st = s->size(ss.getMixedStrides()[i]);
        if (!o || !st || *o != 0 || *st != 1)
          return fail(rewriter, head, "the shift drops other units than the last (" +
                                          nodeOf(ss) + ")");
      }
    part.insert(ss);

    // The encoder over chunks, and the chunking of the rows below it.
    FoundStack enc;
    bad = findStack(ss.getSource().getDefiningOp(), data, enc);
    if (!bad.empty()) return fail(rewriter, head, "the encoder: " + bad);
    Value e = throughViews(enc.input, data, part);
    auto eT = dyn_cast<RankedTensorType>(e.getType());
    if (e == enc.input || !eT || eT.getRank() != 3 || eT.isDynamicDim(2) ||
        eT.getDimSize(2) * C != D || !shapeIs(enc.input, BMD(0)) ||
        !shapeIs(e, [&](int64_t B, int64_t T) { return Shape{B, T, D / C}; }))
      return fail(rewriter, head, "the encoder's input is not C = " + std::to_string(C) +
                                      " consecutive token rows of [B, T, D/C] joined (a chunk)");
    // Below the chunk: row-wise from the tokens.
    llvm::DenseSet<Operation *> pre;
    SmallVector<Value> work{e};
    while (!work.empty()) {
      Operation *d = work.pop_back_val().getDefiningOp();
      if (!d || !pre.insert(d).second) continue;
      for (Value in : dataInputs(d, data)) work.push_back(in);
    }
    if (std::string rw = rowWise(f, data, &pre); !rw.empty())
      return fail(rewriter, head, "below the chunk: " + rw);

    // Every op on the tokens' data is a part of the structure.
    for (Operation &op : *entry) {
      if (isa<func::ReturnOp, tensor::DimOp>(op) || &op == head.getOperation()) continue;
      if (dataInputs(&op, data).empty() || part.contains(&op) || pre.contains(&op) ||
          dec.ops.contains(&op) || enc.ops.contains(&op))
        continue;
      bool sizesOnly = llvm::all_of(op.getUsers(), [&](Operation *u) {
        return isa<tensor::DimOp>(topLevel(u, entry));
      });
      if (sizesOnly) continue;
      return fail(rewriter, head, nodeOf(&op) + " reads the tokens' data outside the Block "
                                                "structure found (encoder, shift, converter, "
                                                "token windows, decoder, LM head)");
    }

    for (const FoundStack *st : {&enc, &dec})
      if (std::string rows = attentionRowsMatch(*st, s0, s1); !rows.empty())
        return fail(rewriter, head, rows);

    // The stacks, outlined.
    std::string whyNot;
    func::CallOp encCall = outlineStack(rewriter, f, enc, data, "encoder", "encoder", 1,
                                        /*sizesOfTokens=*/false, whyNot);
    if (!encCall) return fail(rewriter, head, "the encoder: " + whyNot);
    func::CallOp decCall = outlineStack(rewriter, f, dec, data, "token_decoder", "decoder", 1,
                                        /*sizesOfTokens=*/false, whyNot);
    if (!decCall) return fail(rewriter, head, "the token decoder: " + whyNot);
    auto decFn = module.lookupSymbol<func::FuncOp>(decCall.getCallee());
    SmallVector<CausalAttentionOp> attns;
    decFn.walk([&](CausalAttentionOp a) { attns.push_back(a); });
    for (CausalAttentionOp a : attns) {
      rewriter.setInsertionPoint(a);
      rewriter.replaceOpWithNewOp<BoundedAttentionOp>(a, a.getQ(), a.getK(), a.getV(), R, C,
                                                      a.getScale().convertToFloat());
    }

    // photon.chunk in place of the rows' view.
    rewriter.setInsertionPointAfterValue(e);
    Value chunk = ChunkOp::create(rewriter, e.getLoc(), e, C);
    if (chunk.getType() != enc.input.getType())
      chunk = tensor::CastOp::create(rewriter, e.getLoc(), enc.input.getType(), chunk);
    rewriter.replaceAllUsesWith(enc.input, chunk);

    // photon.shift of the encoder's output with the start latent ([D]).
    rewriter.setInsertionPoint(shift);
    Value startVec = start.getResult();
    auto startT = cast<RankedTensorType>(startVec.getType());
    if (startT.getRank() != 1) {
      ReassociationIndices all;
      for (int64_t i = 0; i < startT.getRank(); ++i) all.push_back(i);
      startVec = tensor::CollapseShapeOp::create(rewriter, shift.getLoc(), startVec,
                                                 ArrayRef<ReassociationIndices>{all});
    }
    Value prev = ShiftOp::create(rewriter, shift.getLoc(), encCall.getResult(0), startVec);
    if (prev.getType() != shift.getType())
      prev = tensor::CastOp::create(rewriter, shift.getLoc(), shift.getType(), prev);
    rewriter.replaceAllUsesWith(shift.getResult(), prev);

    // photon.expand (the converter), viewed as the window's [N, R, D] prefix rows.
    rewriter.setInsertionPoint(win);
    Location loc = conv.getLoc();
    auto prevT = cast<RankedTensorType>(conv.getX().getType());
    auto exT = RankedTensorType::get({prevT.getDimSize(0), prevT.getDimSize(1), R, D},
                                     prevT.getElementType());
    Value ex = ExpandOp::create(rewriter, loc, exT, conv.getX(), conv.getW(), conv.getB(),
                                rewriter.getI64IntegerAttr(R));
    Value rowsP = tensor::CollapseShapeOp::create(rewriter, loc, ex,
                                                  ArrayRef<ReassociationIndices>{{0, 1}, {2}, {3}});
    if (rowsP.getType() != P.getType())
      rowsP = tensor::CastOp::create(rewriter, loc, P.getType(), rowsP);
    rewriter.replaceAllUsesWith(P, rowsP);

    auto h = HierarchyAttr::getChecked([&] { return module.emitError(); }, getContext(),
                                       StringRef("block"), int64_t(1), ArrayRef<int64_t>{C}, R,
                                       D, V);
    if (!h) return failure();
    found->forward = f;
    found->hierarchy = h;
    if (why) why->clear();
    return success();
  }
};

} // namespace

void addBlockHierarchyPattern(RewritePatternSet &patterns, std::string *why, BlockFound *found) {
  patterns.add<OutlineBlockHierarchy>(patterns.getContext(), why, found);
}

} // namespace raise_structure
} // namespace photon
} // namespace mlir
