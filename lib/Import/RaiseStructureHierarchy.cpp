//===- RaiseStructureHierarchy.cpp - photon-raise-structure: PHOTON, Block ===//
//
// A PHOTON model (shared/docs/photon-model.md, any L; the Block Transformer is L = 1) as
// a rewrite pattern over the typed ops photon-raise-local leaves, read from the LM head
// down (N_l = B * M_l, M_l = T / (C_1 .. C_l), W = R + C_1 - 1, "view" a row-major
// reshape):
//
//   H   = view(slice(dec, rows R-1 .. R+C_1-2))               [B, T, D]
//   dec = norm(blocks(win))                                   token decoder over [N_1, W, D]
//   win = concat_1(conv_1 rows [N_1, R, D],
//                  slice(view(embedding(tokens)) [N_1, C_1, D], rows 0 .. C_1-2))
//   conv_l rows = view(linear(prev_l, W, b) [B, M_l, R*D])    the converter
//   prev_l = concat_1(broadcast(start_l) [B, 1, D], X_l[:, :-1])   the shift
//   X_l (l < L) = view(concat_1(y_0 .. y_(C-1)))              latent decoder of level l+1,
//       y_j = last row of stack_j(win_j), win_0 = conv_(l+1) rows,    exported unrolled
//       win_(j+1) = concat_1(win_j, y_j)
//   X_L = enc_L = norm(blocks(x_L))                           encoders
//   x_l (l >= 2) = linear(rmsnorm(view(enc_(l-1)) [B, M_l, C_l*D]), W, b)  compressor
//   x_1 = view(e) [B, M_1, D], e [B, T, D/C_1] computed row-wise from the tokens
//
// becomes the stage form: photon.chunk, photon.chunk_compress, one encoder function per
// level (role encoder), photon.shift with each level's start latent, photon.expand (the
// converters), one decoder function per unrolled latent-decoder step (role decoder, the
// level above's) and the token decoder (role decoder, level 1), their attentions
// photon.bounded_attention, and `#photon.hierarchy<family = "photon">` (`"block"` for
// L = 1).
//
// The reshapes' meaning depends on the sizes the graph computes for them, so every size
// is evaluated for two samples of the dynamic batch and sequence sizes (SizeSample) and
// must come out as the structure says for both. Every op on the tokens' data must be a
// part of the structure, so that the stages photon-derive-stages cuts out of @forward
// (encode_l, latent_l, token_step) compute what the graph computes.
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

using Shape = SmallVector<int64_t>;

constexpr const int64_t *kB = SizeSample::kBatch, *kT = SizeSample::kSequence;

/// Matches the parts of a PHOTON / Block model over one graph function; the ops of the
/// parts go to `part`, a failure's reason to `why`.
struct HierarchyMatcher {
  func::FuncOp f;
  llvm::DenseSet<Value> data;
  SizeSample s0, s1;
  llvm::SetVector<Operation *> part;
  std::string why;

  explicit HierarchyMatcher(func::FuncOp f)
      : f(f), data(tokenData(f)), s0(f, 0), s1(f, 1) {}

  /// v's sizes are want(B, T) for both samples.
  template <typename F> bool shapeIs(Value v, F want) {
    SizeSample *s[2] = {&s0, &s1};
    for (int k = 0; k < 2; ++k) {
      auto sh = s[k]->shape(v);
      if (!sh || *sh != want(kB[k], kT[k])) return false;
    }
    return true;
  }
  /// [B, T / div + extra, D].
  bool unitsIs(Value v, int64_t div, int64_t D, int64_t extra = 0) {
    return shapeIs(v, [&](int64_t B, int64_t T) { return Shape{B, T / div + extra, D}; });
  }
  /// [B * T / div, rows, D].
  bool windowIs(Value v, int64_t div, int64_t rows, int64_t D) {
    return shapeIs(v, [&](int64_t B, int64_t T) { return Shape{B * (T / div), rows, D}; });
  }

  /// The rows (first, count) a slice takes along axis 1 of a rank-3 tensor, whole along
  /// axes 0 and 2 with unit strides, the same for both samples (the count may differ
  /// when not `sameCount`; the first sample's is returned).
  std::optional<std::pair<int64_t, int64_t>> rowsOf(tensor::ExtractSliceOp s,
                                                    bool sameCount = true) {
    if (s.getSourceType().getRank() != 3 || s.getResultType().getRank() != 3) return std::nullopt;
    std::optional<std::pair<int64_t, int64_t>> r;
    for (SizeSample *x : {&s0, &s1}) {
      auto src = x->shape(s.getSource());
      if (!src) return std::nullopt;
      int64_t v[3][3];
      for (int i = 0; i < 3; ++i) {
        auto o = x->size(s.getMixedOffsets()[i]), z = x->size(s.getMixedSizes()[i]),
             st = x->size(s.getMixedStrides()[i]);
        if (!o || !z || !st) return std::nullopt;
        v[0][i] = *o, v[1][i] = *z, v[2][i] = *st;
      }
      if (v[0][0] != 0 || v[0][2] != 0 || v[1][0] != (*src)[0] || v[1][2] != (*src)[2] ||
          v[2][0] != 1 || v[2][1] != 1 || v[2][2] != 1 ||
          (r && (r->first != v[0][1] || (sameCount && r->second != v[1][1]))))
        return std::nullopt;
      if (!r) r = std::make_pair(v[0][1], v[1][1]);
    }
    return r;
  }

  bool fail(const std::string &w) {
    why = w;
    return false;
  }

  struct Shift {
    tensor::ConcatOp concat;
    WeightOp start;
    tensor::ExtractSliceOp units; // the previous units: all but the last
  };
  /// prev [B, T/div, D] = concat_1(start broadcast [B, 1, D], X[:, :-1]).
  std::optional<Shift> shift(Value prev, int64_t div, int64_t D) {
    Shift s;
    s.concat = throughCasts(prev, part).getDefiningOp<tensor::ConcatOp>();
    if (!s.concat || s.concat.getDim() != 1 || s.concat.getInputs().size() != 2 ||
        !unitsIs(s.concat, div, D))
      return fail("the converter's input is not [start latent; previous units] joined along "
                  "the unit axis (the shift)"), std::nullopt;
    part.insert(s.concat);
    s.start = startLatent(s.concat.getInputs()[0], D, part);
    if (!s.start ||
        !shapeIs(s.concat.getInputs()[0], [&](int64_t B, int64_t) { return Shape{B, 1, D}; }))
      return fail("the shift's first unit is not a learned start latent of " + std::to_string(D) +
                  " values broadcast over the batch"), std::nullopt;
    s.units = throughCasts(s.concat.getInputs()[1], part).getDefiningOp<tensor::ExtractSliceOp>();
    if (!s.units || !unitsIs(s.units, div, D, -1) || !unitsIs(s.units.getSource(), div, D))
      return fail("the shift's other units are not the stream's units but the last"), std::nullopt;
    auto rows = rowsOf(s.units, /*sameCount=*/false);
    if (!rows || rows->first != 0)
      return fail("the shift drops other units than the last (" + nodeOf(s.units) + ")"),
             std::nullopt;
    part.insert(s.units);
    return s;
  }

  struct Converter {
    LinearOp linear;
    Value rows; // [N, R, D], as the window reads it
  };
  /// rows [N, R, D] = view(linear(prev, W, b) [B, T/div, R*D]).
  std::optional<Converter> converter(Value rows, int64_t div, int64_t R, int64_t D) {
    Converter c;
    c.rows = throughCasts(rows, part);
    c.linear = throughViews(c.rows, data, part).getDefiningOp<LinearOp>();
    if (!c.linear || !c.linear.getB() || !windowIs(c.rows, div, R, D) ||
        !unitsIs(c.linear, div, R * D))
      return fail("the window's first " + std::to_string(R) +
                  " rows are not a linear with bias [B, M, R*D] viewed as [B*M, R, D] (the "
                  "converter)"), std::nullopt;
    part.insert(c.linear);
    return c;
  }

  struct Rollout {
    int64_t C = 0;
    SmallVector<FoundStack> steps;
    Converter conv;
    Shift shift;
  };
  /// A latent decoder exported as C unrolled steps: latent [B, T/div, D] = view(concat_1(
  /// y_0 .. y_(C-1))), y_j the last row of stack_j(win_j), win_0 the converter's R rows,
  /// win_(j+1) = concat_1(win_j, y_j). Not a rollout (no reason given) when latent is no
  /// view of a concat of rows.
  std::optional<Rollout> rollout(Value latent, int64_t div, int64_t R, int64_t D) {
    llvm::SetVector<Operation *> ops;
    auto cat = throughViews(latent, data, ops).getDefiningOp<tensor::ConcatOp>();
    if (!cat || cat.getDim() != 1 || cat.getInputs().size() < 2) return std::nullopt;
    Rollout r;
    r.C = cat.getInputs().size();
    int64_t up = div * r.C; // T / units of the level above
    if (!unitsIs(latent, div, D) || !windowIs(cat, up, r.C, D))
      return fail("the latent stream is not C = " + std::to_string(r.C) + " decoded rows per "
                  "unit of the level above, viewed as [B, M, D] (" + nodeOf(cat) + ")"),
             std::nullopt;
    part.insert(ops.begin(), ops.end());
    part.insert(cat);
    Value prevWin, prevY;
    for (int64_t j = 0; j < r.C; ++j) {
      Value y = throughCasts(cat.getInputs()[j], part);
      auto ys = y.getDefiningOp<tensor::ExtractSliceOp>();
      auto rows = ys ? rowsOf(ys) : std::nullopt;
      if (!rows || *rows != std::make_pair(R + j - 1, int64_t(1)) ||
          !windowIs(ys.getSource(), up, R + j, D))
        return fail("step " + std::to_string(j) + " of the latent decoder (" + nodeOf(cat) +
                    ") is not the last row of a stack over a window of R + " + std::to_string(j) +
                    " rows"), std::nullopt;
      part.insert(ys);
      FoundStack st;
      if (std::string bad = findStack(ys.getSource().getDefiningOp(), data, st); !bad.empty())
        return fail("step " + std::to_string(j) + " of the latent decoder: " + bad), std::nullopt;
      Value win = throughCasts(st.input, part);
      if (j == 0) {
        auto c = converter(win, up, R, D);
        if (!c) return std::nullopt;
        r.conv = *c;
      } else {
        auto wc = win.getDefiningOp<tensor::ConcatOp>();
        if (!wc || wc.getDim() != 1 || wc.getInputs().size() != 2 ||
            throughCasts(wc.getInputs()[0], part) != prevWin ||
            throughCasts(wc.getInputs()[1], part) != prevY)
          return fail("the window of step " + std::to_string(j) + " of the latent decoder is "
                      "not the previous window with the previous step's row appended"),
                 std::nullopt;
        part.insert(wc);
      }
      prevWin = win;
      prevY = y;
      r.steps.push_back(std::move(st));
    }
    auto s = shift(r.conv.linear.getX(), up, D);
    if (!s) return std::nullopt;
    r.shift = *s;
    return r;
  }

  struct Compress {
    Operation *view = nullptr; // the view that reads the level below's stream
    RMSNormOp norm;
    LinearOp linear;
  };
  /// x0 [B, T/div, D] = linear(rmsnorm(view(X [B, T/(div/C), D]) [B, T/div, C*D]), W, b).
  std::optional<Compress> compress(Value x0, int64_t div, int64_t C, int64_t D) {
    Compress c;
    c.linear = throughCasts(x0, part).getDefiningOp<LinearOp>();
    c.norm = c.linear ? c.linear.getX().getDefiningOp<RMSNormOp>() : RMSNormOp();
    if (!c.linear || !c.linear.getB() || !c.norm || !unitsIs(c.linear, div, D) ||
        !unitsIs(c.norm, div, C * D))
      return fail("the level's encoder input is not Linear(RMSNorm(C = " + std::to_string(C) +
                  " units of the level below joined)) with a bias (the chunk compressor)"),
             std::nullopt;
    llvm::SetVector<Operation *> ops;
    Value base = throughViews(c.norm.getX(), data, ops);
    if (ops.empty() || !unitsIs(base, div / C, D))
      return fail("the chunk compressor's input is not C = " + std::to_string(C) +
                  " consecutive units of the level below (" + nodeOf(c.norm) + ")"),
             std::nullopt;
    c.view = ops.back();
    part.insert(ops.begin(), ops.end());
    part.insert(c.norm);
    part.insert(c.linear);
    return c;
  }
};

/// The pattern: see the file comment.
struct OutlineHierarchy : OpRewritePattern<LMHeadOp> {
  OutlineHierarchy(MLIRContext *ctx, std::string *why, HierarchyFound *found)
      : OpRewritePattern(ctx), why(why), found(found) {}
  std::string *why;
  HierarchyFound *found;

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
    HierarchyMatcher m(f);
    auto &part = m.part;
    auto &data = m.data;

    // The tail: rows R-1 .. R+C-2 of the token decoder's windows, viewed as [B, T, D].
    // Not a hierarchical model at all (no reason given: the decoder-only pattern's counts)
    // unless the LM head reads a slice of a norm's result.
    Value H = head.getX();
    auto hT = cast<RankedTensorType>(H.getType());
    int64_t D = hT.getShape().back();
    int64_t V = cast<RankedTensorType>(head.getType()).getShape().back();
    if (hT.getRank() != 3 || ShapedType::isDynamic(D) || ShapedType::isDynamic(V))
      return failure();
    auto ts = throughViews(H, data, part).getDefiningOp<tensor::ExtractSliceOp>();
    if (!ts || !isa_and_nonnull<RMSNormOp, LayerNormOp>(ts.getSource().getDefiningOp()))
      return failure();
    part.insert(ts);
    Value decOut = ts.getSource();
    auto decT = cast<RankedTensorType>(decOut.getType());
    if (decT.getRank() != 3 || decT.isDynamicDim(1) || decT.getShape().back() != D)
      return fail(rewriter, head, "the decoder's windows are not [N, W, D] with a static W");
    int64_t W = decT.getDimSize(1);
    auto rows = m.rowsOf(ts);
    if (!rows)
      return fail(rewriter, head, "the LM head does not read whole rows of the decoder's "
                                  "windows at fixed positions (" + nodeOf(ts) + ")");
    int64_t R = rows->first + 1, C1 = rows->second;
    if (R < 1 || C1 < 2 || rows->first + rows->second != W)
      return fail(rewriter, head, "the LM head reads window rows " + std::to_string(rows->first) +
                                      " .. " + std::to_string(rows->first + rows->second - 1) +
                                      " of " + std::to_string(W) +
                                      ", not the last C >= 2 of them");
    if (!m.shapeIs(H, [&](int64_t B, int64_t T) { return Shape{B, T, D}; }))
      return fail(rewriter, head, "the decoder's rows are not viewed as [batch, sequence, " +
                                      std::to_string(D) + "] at the LM head");

    // The token decoder over windows [converter rows; the chunk's first C-1 tokens].
    FoundStack dec;
    if (std::string bad = findStack(decOut.getDefiningOp(), data, dec); !bad.empty())
      return fail(rewriter, head, "the token decoder: " + bad);
    auto win = throughCasts(dec.input, part).getDefiningOp<tensor::ConcatOp>();
    if (!win || win.getDim() != 1 || win.getInputs().size() != 2 || !m.windowIs(win, C1, W, D))
      return fail(rewriter, head, "the token decoder's input is not [prefix rows; token rows] "
                                  "joined along the window axis");
    part.insert(win);
    auto conv1 = m.converter(win.getInputs()[0], C1, R, D);
    if (!conv1) return fail(rewriter, head, m.why);
    Value E = throughCasts(win.getInputs()[1], part);
    auto es = E.getDefiningOp<tensor::ExtractSliceOp>();
    auto esRows = es ? m.rowsOf(es) : std::nullopt;
    if (!es || !esRows || *esRows != std::make_pair(int64_t(0), C1 - 1) ||
        !m.windowIs(es.getSource(), C1, C1, D))
      return fail(rewriter, head, "the window's token rows are not the first C-1 rows of "
                                  "[B*M, C, D] token embeddings");
    part.insert(es);
    auto temb = throughViews(es.getSource(), data, part).getDefiningOp<EmbeddingOp>();
    if (!temb || temb.getIds() != tokens ||
        !m.shapeIs(temb, [&](int64_t B, int64_t T) { return Shape{B, T, D}; }))
      return fail(rewriter, head, "the window's token rows are not an embedding of the tokens "
                                  "viewed as [B*M, C, D]");
    part.insert(temb);
    auto shift1 = m.shift(conv1->linear.getX(), C1, D);
    if (!shift1) return fail(rewriter, head, m.why);

    // Latent decoders, top-down from the level above the tokens' chunks.
    SmallVector<int64_t> Cs{C1};
    SmallVector<HierarchyMatcher::Rollout> rolls; // levels 2, 3, ..
    int64_t div = C1;
    Value X = shift1->units.getSource();
    while (true) {
      m.why.clear();
      auto r = m.rollout(X, div, R, D);
      if (!r) {
        if (!m.why.empty()) return fail(rewriter, head, m.why);
        break;
      }
      Cs.push_back(r->C);
      div *= r->C;
      X = r->shift.units.getSource();
      rolls.push_back(std::move(*r));
    }
    int64_t L = Cs.size();

    // Encoders, top-down: the top one's output feeds the top shift; below each, a chunk
    // compressor of the level below, and a chunk of token rows below the first.
    SmallVector<FoundStack> encs(L);
    SmallVector<HierarchyMatcher::Compress> compressors(L); // [l - 1] for levels >= 2
    Value e;
    for (int64_t l = L; l >= 1; --l) {
      std::string bad = findStack(X.getDefiningOp(), data, encs[l - 1]);
      if (!bad.empty()) return fail(rewriter, head, "the level-" + std::to_string(l) + " encoder: " + bad);
      Value x0 = encs[l - 1].input;
      if (l >= 2) {
        auto c = m.compress(x0, div, Cs[l - 1], D);
        if (!c) return fail(rewriter, head, m.why);
        compressors[l - 1] = *c;
        div /= Cs[l - 1];
        X = c->view->getOperand(0);
        continue;
      }
      e = throughViews(x0, data, part);
      auto eT = dyn_cast<RankedTensorType>(e.getType());
      if (e == x0 || !eT || eT.getRank() != 3 || eT.isDynamicDim(2) ||
          eT.getDimSize(2) * C1 != D || !m.unitsIs(x0, C1, D) ||
          !m.shapeIs(e, [&](int64_t B, int64_t T) { return Shape{B, T, D / C1}; }))
        return fail(rewriter, head, "the encoder's input is not C = " + std::to_string(C1) +
                                        " consecutive token rows of [B, T, D/C] joined (a chunk)");
    }
    // Below the chunk: row-wise from the tokens.
    llvm::DenseSet<Operation *> pre;
    SmallVector<Value> work{e};
    while (!work.empty()) {
      Operation *d = work.pop_back_val().getDefiningOp();
      if (!d || !pre.insert(d).second) continue;
      for (Value in : dataInputs(d, data)) work.push_back(in);
    }
    if (std::string rw = rowWise(f, data, &pre, {}, &m.s0, &m.s1); !rw.empty())
      return fail(rewriter, head, "below the chunk: " + rw);

    // Every op on the tokens' data is a part of the structure.
    SmallVector<const FoundStack *> stacks{&dec};
    for (const FoundStack &s : encs) stacks.push_back(&s);
    for (const auto &r : rolls)
      for (const FoundStack &s : r.steps) stacks.push_back(&s);
    for (Operation &op : *entry) {
      if (isa<func::ReturnOp, tensor::DimOp>(op) || &op == head.getOperation()) continue;
      if (dataInputs(&op, data).empty() || part.contains(&op) || pre.contains(&op) ||
          llvm::any_of(stacks, [&](const FoundStack *s) { return s->ops.contains(&op); }))
        continue;
      bool sizesOnly = llvm::all_of(op.getUsers(), [&](Operation *u) {
        return isa<tensor::DimOp>(topLevel(u, entry));
      });
      if (sizesOnly) continue;
      return fail(rewriter, head, nodeOf(&op) + " reads the tokens' data outside the "
                                                "hierarchy found (encoders, chunk compressors, "
                                                "shifts, converters, latent decoders, token "
                                                "windows, token decoder, LM head)");
    }
    for (const FoundStack *s : stacks)
      if (std::string bad = attentionRowsMatch(*s, m.s0, m.s1); !bad.empty())
        return fail(rewriter, head, bad);
    // The encoders run as steps over their caches: row-wise but for attention and RoPE
    // (position tables read by the sequence length would restart at 0 in each step). The
    // decoders always run over whole windows from their first position.
    for (auto [l, s] : llvm::enumerate(encs)) {
      llvm::DenseSet<Operation *> ops(s.ops.begin(), s.ops.end());
      if (std::string rw = rowWise(f, data, &ops, {s.input}, &m.s0, &m.s1); !rw.empty())
        return fail(rewriter, head, "the level-" + std::to_string(l + 1) + " encoder: " + rw);
    }

    // The stacks, outlined; the decoders' attentions bounded to their windows.
    std::string whyNot;
    auto outline = [&](const FoundStack &s, const std::string &name, StringRef role,
                       int64_t level, int64_t chunk) -> bool {
      func::CallOp call = outlineStack(rewriter, f, s, data, name, role, level,
                                       /*sizesOfTokens=*/false, whyNot);
      if (!call) return false;
      if (role != "decoder") return true;
      auto fn = module.lookupSymbol<func::FuncOp>(call.getCallee());
      SmallVector<CausalAttentionOp> attns;
      fn.walk([&](CausalAttentionOp a) { attns.push_back(a); });
      for (CausalAttentionOp a : attns) {
        rewriter.setInsertionPoint(a);
        rewriter.replaceOpWithNewOp<BoundedAttentionOp>(a, a.getQ(), a.getK(), a.getV(), R,
                                                        chunk, a.getScale().convertToFloat());
      }
      return true;
    };
    for (int64_t l = 1; l <= L; ++l)
      if (!outline(encs[l - 1], L == 1 ? "encoder" : "encoder_" + std::to_string(l), "encoder", l,
                   0))
        return fail(rewriter, head, "the level-" + std::to_string(l) + " encoder: " + whyNot);
    for (auto [i, r] : llvm::enumerate(rolls))
      for (auto [j, s] : llvm::enumerate(r.steps))
        if (!outline(s, "latent_decoder_" + std::to_string(i + 2) + "_step" + std::to_string(j),
                     "decoder", i + 2, r.C))
          return fail(rewriter, head, "the level-" + std::to_string(i + 2) +
                                          " latent decoder: " + whyNot);
    if (!outline(dec, "token_decoder", "decoder", 1, C1))
      return fail(rewriter, head, "the token decoder: " + whyNot);

    // photon.chunk in place of the token rows' view; photon.chunk_compress in place of
    // each compressor's view, norm and linear.
    rewriter.setInsertionPointAfterValue(e);
    Value chunk = ChunkOp::create(rewriter, e.getLoc(), e, C1);
    Value x0 = encs[0].input;
    if (chunk.getType() != x0.getType())
      chunk = tensor::CastOp::create(rewriter, e.getLoc(), x0.getType(), chunk);
    rewriter.replaceAllUsesWith(x0, chunk);
    for (int64_t l = 2; l <= L; ++l) {
      auto &c = compressors[l - 1];
      rewriter.setInsertionPoint(c.linear);
      Value cc = ChunkCompressOp::create(rewriter, c.linear.getLoc(), c.linear.getType(),
                                         c.view->getOperand(0), c.norm.getW(), c.linear.getW(),
                                         c.linear.getB(), rewriter.getI64IntegerAttr(Cs[l - 1]),
                                         c.norm.getEpsAttr());
      rewriter.replaceAllUsesWith(c.linear.getResult(), cc);
    }

    // Each level's shift and converter: photon.shift of the stream with its start latent
    // ([D]), photon.expand viewed as the window's [N, R, D] prefix rows.
    auto shiftAndConvert = [&](HierarchyMatcher::Shift s,
                               HierarchyMatcher::Converter c) {
      tensor::ConcatOp concat = s.concat;
      rewriter.setInsertionPoint(concat);
      Value startVec = s.start.getResult();
      auto startT = cast<RankedTensorType>(startVec.getType());
      if (startT.getRank() != 1) {
        ReassociationIndices all;
        for (int64_t i = 0; i < startT.getRank(); ++i) all.push_back(i);
        startVec = tensor::CollapseShapeOp::create(rewriter, concat.getLoc(), startVec,
                                                   ArrayRef<ReassociationIndices>{all});
      }
      Value prev = ShiftOp::create(rewriter, concat.getLoc(), s.units.getSource(), startVec);
      if (prev.getType() != concat.getType())
        prev = tensor::CastOp::create(rewriter, concat.getLoc(), concat.getType(), prev);
      rewriter.replaceAllUsesWith(concat.getResult(), prev);
      LinearOp lin = c.linear;
      rewriter.setInsertionPointAfter(lin);
      Location loc = lin.getLoc();
      auto prevT = cast<RankedTensorType>(lin.getX().getType());
      auto exT = RankedTensorType::get({prevT.getDimSize(0), prevT.getDimSize(1), R, D},
                                       prevT.getElementType());
      Value ex = ExpandOp::create(rewriter, loc, exT, lin.getX(), lin.getW(), lin.getB(),
                                  rewriter.getI64IntegerAttr(R));
      Value rowsP = tensor::CollapseShapeOp::create(
          rewriter, loc, ex, ArrayRef<ReassociationIndices>{{0, 1}, {2}, {3}});
      if (rowsP.getType() != c.rows.getType())
        rowsP = tensor::CastOp::create(rewriter, loc, c.rows.getType(), rowsP);
      rewriter.replaceAllUsesWith(c.rows, rowsP);
    };
    for (auto &r : llvm::reverse(rolls)) shiftAndConvert(r.shift, r.conv);
    shiftAndConvert(*shift1, *conv1);

    auto h = HierarchyAttr::getChecked([&] { return module.emitError(); }, getContext(),
                                       StringRef(L == 1 ? "block" : "photon"), L,
                                       ArrayRef<int64_t>(Cs), R, D, V);
    if (!h) return failure();
    found->forward = f;
    found->hierarchy = h;
    if (why) why->clear();
    return success();
  }
};

} // namespace

void addHierarchyPattern(RewritePatternSet &patterns, std::string *why, HierarchyFound *found) {
  patterns.add<OutlineHierarchy>(patterns.getContext(), why, found);
}

} // namespace raise_structure
} // namespace photon
} // namespace mlir
