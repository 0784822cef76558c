//===- RaiseStructure.cpp - photon-raise-structure: decoder-only models ---===//
//
// The structure above the local ops, as rewrite patterns over typed photon ops
// (docs/importer.md, "Two stages"): after photon-raise-local, a graph function that is a
// decoder-only language model (token ids in, logits out) becomes the stage form the
// compiler derives KV-cached generation from: `photon.embedding`, one private stack
// function (`photon.role = "encoder"`, level 1) holding every block and the final norm,
// `photon.lm_head`, and the module's `#photon.hierarchy<family = "vanilla">`.
//
// What is proven before the stack is outlined:
//   - blocks: from the final norm down, residual adds `r = s + f(norm(s))` whose other
//     operand reads the stream only through one RMSNorm / LayerNorm, alternating an MLP
//     sublayer (no attention) with an attention sublayer (exactly one
//     photon.causal_attention); the stream below the first block is the stack's input;
//   - self-containment: the stack's ops read token data only from its input, and nothing
//     outside uses their results but the final norm's;
//   - row-wise: every op on the tokens' data in the function computes each token's row
//     from that token's row alone (axes tracked through transposes and reshapes), except
//     causal attention, RoPE and learned positions, whose incremental forms
//     photon-derive-stages builds. An op that would see other tokens (a reduction over
//     the sequence, a slice or shift along it, a position read by linalg.index) stops
//     the pattern: the step versions would compute something else.
//
//===----------------------------------------------------------------------===//

#include "photon/Import/Passes.h"

#include "RaiseStructure.h"

#include "photon/Dialect/PhotonAttrs.h"
#include "photon/Dialect/PhotonOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/DestinationStyleOpInterface.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "mlir/Transforms/RegionUtils.h"

#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/SetVector.h"

#include <optional>
#include <string>

namespace mlir {
namespace photon {

#define GEN_PASS_DEF_PHOTONRAISESTRUCTURE
#include "photon/Import/Passes.h.inc"

namespace raise_structure {

/// The ONNX node an op came from, for messages.
std::string nodeOf(Operation *op) {
  std::string what = "'" + op->getName().getStringRef().str() + "'";
  if (auto n = dyn_cast<NameLoc>(op->getLoc())) return what + " (node '" + n.getName().str() + "')";
  return what;
}

/// The op of `f`'s entry block that holds `op` (itself, or the op whose region it is in).
Operation *topLevel(Operation *op, Block *entry) {
  while (op && op->getBlock() != entry) op = op->getParentOp();
  return op;
}

/// The values of `f` computed from the data of its arguments (not just from their
/// shapes: tensor.dim results are shape values). A value captured by a region (a gather
/// reading a table) makes the op holding the region data-dependent.
llvm::DenseSet<Value> tokenData(func::FuncOp f) {
  llvm::DenseSet<Value> data;
  Block *entry = &f.getBody().front();
  SmallVector<Value> work(entry->getArguments().begin(), entry->getArguments().end());
  while (!work.empty()) {
    Value v = work.pop_back_val();
    if (!data.insert(v).second) continue;
    for (Operation *user : v.getUsers()) {
      if (isa<tensor::DimOp>(user)) continue;
      Operation *top = topLevel(user, entry);
      if (top && !isa<tensor::DimOp>(top))
        for (Value r : top->getResults()) work.push_back(r);
    }
  }
  return data;
}

/// The token-data values an op reads: operands and values captured by its regions.
SmallVector<Value> dataInputs(Operation *op, const llvm::DenseSet<Value> &data) {
  SmallVector<Value> in;
  for (Value v : op->getOperands())
    if (data.contains(v)) in.push_back(v);
  llvm::SetVector<Value> above;
  for (Region &r : op->getRegions()) getUsedValuesDefinedAbove(r, above);
  for (Value v : above)
    if (data.contains(v) && !llvm::is_contained(in, v)) in.push_back(v);
  return in;
}

//===----------------------------------------------------------------------===//
// Row-wise proof
//===----------------------------------------------------------------------===//

/// For each axis of a token-data tensor: true when it is a feature axis (its elements at
/// a fixed index of the other axes all belong to one token), false for an axis that
/// indexes tokens (batch, sequence, anything merged with them).
using Axes = SmallVector<bool, 4>;

class RowWise {
public:
  RowWise(const llvm::DenseSet<Value> &data, SizeSample *s0, SizeSample *s1)
      : data(data), s0(s0), s1(s1) {}

  /// Empty when every token-data op of `f` keeps each token's row to itself (causal
  /// attention, RoPE and learned positions excepted); otherwise why not.
  std::string check(func::FuncOp f, const llvm::DenseSet<Operation *> *only,
                    ArrayRef<Value> rowInputs) {
    Block *entry = &f.getBody().front();
    for (Value v : rowInputs) {
      Axes a(cast<RankedTensorType>(v.getType()).getRank(), false);
      a.back() = true;
      axes[v] = a;
    }
    for (BlockArgument a : entry->getArguments()) {
      auto t = dyn_cast<RankedTensorType>(a.getType());
      if (!t) return "argument #" + std::to_string(a.getArgNumber()) + " is not a ranked tensor";
      axes[a] = Axes(t.getRank(), false);
    }
    for (Operation &op : *entry) {
      if (isa<func::ReturnOp, tensor::DimOp>(op) || (only && !only->contains(&op))) continue;
      SmallVector<Value> in = dataInputs(&op, data);
      if (in.empty()) continue;
      for (Value v : in)
        if (!axes.count(v)) return "no axes for an input of " + nodeOf(&op);
      // A tensor sized by the batch or sequence that is not computed from the tokens' rows
      // (positions from Range over the sequence length, say) depends on where a token is,
      // which a KV-cached step does not reproduce. Inits of destination-style ops are only
      // their result's storage.
      auto dps = dyn_cast<DestinationStyleOpInterface>(op);
      llvm::SetVector<Value> read(op.getOperands().begin(), op.getOperands().end());
      for (Region &r : op.getRegions()) getUsedValuesDefinedAbove(r, read);
      for (Value v : read) {
        auto t = dyn_cast<RankedTensorType>(v.getType());
        if (!t || t.hasStaticShape() || data.contains(v)) continue;
        if (dps && llvm::any_of(dps.getDpsInits(), [&](Value i) { return i == v; })) continue;
        Operation *def = v.getDefiningOp();
        return "the tokens' data meets, at " + nodeOf(&op) +
               ", a tensor sized by the batch or sequence that is not computed from the "
               "tokens' rows" + (def ? " (from " + nodeOf(def) + ")" : std::string()) +
               ": a position-dependent value";
      }
      std::string why = visit(&op, in);
      if (!why.empty()) return why;
    }
    return "";
  }

private:
  const llvm::DenseSet<Value> &data;
  SizeSample *s0, *s1;
  llvm::DenseMap<Value, Axes> axes;

  /// Axis i's size: static in the type, or the same in both samples of the dynamic
  /// sizes (torch's flatten computes sizes that are constants); dynamic otherwise.
  int64_t sizeOf(Value v, unsigned i) {
    auto t = cast<RankedTensorType>(v.getType());
    if (!t.isDynamicDim(i) || !s0 || !s1) return t.getDimSize(i);
    auto a = s0->shape(v), b = s1->shape(v);
    if (a && b && (*a)[i] == (*b)[i]) return (*a)[i];
    return ShapedType::kDynamic;
  }

  static bool lastIsFeature(const Axes &a) { return !a.empty() && a.back(); }

  /// Rows first, then features: the layout the token-wise photon ops read.
  static bool rowsThenFeatures(const Axes &a, unsigned rows) {
    if (a.size() <= rows) return false;
    for (unsigned i = 0; i < a.size(); ++i)
      if (a[i] != (i >= rows)) return false;
    return true;
  }

  std::string setSameAs(Operation *op, Value like) {
    // A copy: inserting the results may move the map's entries.
    Axes a = axes[like];
    for (Value r : op->getResults()) axes[r] = a;
    return "";
  }

  /// out[d0, .., dk] over the first k+1 loops (the reduced ones after them).
  static bool writesInLoopOrder(AffineMap m) {
    if (!m.isProjectedPermutation()) return false;
    for (unsigned i = 0; i < m.getNumResults(); ++i)
      if (m.getDimPosition(i) != i) return false;
    return true;
  }

  /// A reduction is row-wise when it reduces over features only: one token-data input
  /// read through a projected permutation whose token axes are the output's same axes
  /// (parallel loops), every reduced loop at a feature axis of it (a MatMul by a weight
  /// the linear pattern did not take, its sizes computed by the graph).
  std::string reduction(linalg::GenericOp g, const std::string &bad) {
    std::string no = bad + "a reduction, which may combine tokens";
    llvm::SetVector<Value> above;
    getUsedValuesDefinedAbove(g.getRegion(), above);
    if (llvm::any_of(above, [&](Value v) { return data.contains(v); }) ||
        g->getNumResults() != 1 || !writesInLoopOrder(g.getIndexingMapsArray().back()) ||
        llvm::any_of(g.getDpsInitsMutable(), [&](OpOperand &o) { return data.contains(o.get()); }))
      return no;
    OpOperand *x = nullptr;
    for (OpOperand *o : g.getDpsInputOperands())
      if (data.contains(o->get())) {
        if (x) return no;
        x = o;
      }
    AffineMap m = x ? g.getMatchingIndexingMap(x) : AffineMap();
    if (!x || !m.isProjectedPermutation()) return no;
    auto iters = g.getIteratorTypesArray();
    const Axes &a = axes[x->get()];
    unsigned outRank = cast<RankedTensorType>(g->getResult(0).getType()).getRank();
    Axes r(outRank, true);
    for (unsigned i = 0; i < m.getNumResults(); ++i) {
      unsigned d = m.getDimPosition(i);
      if (iters[d] == utils::IteratorType::reduction) {
        if (!a[i]) return no;
        continue;
      }
      if (!a[i]) {
        if (d != i || d >= outRank) return no; // a token axis stays where it is
        r[d] = false;
      }
    }
    axes[g->getResult(0)] = r;
    return "";
  }

  std::string visit(Operation *op, ArrayRef<Value> in) {
    std::string bad = "the tokens' data reaches " + nodeOf(op) + ", ";
    if (auto e = dyn_cast<EmbeddingOp>(op)) {
      if (data.contains(e.getTable())) return bad + "whose table depends on the tokens";
      Axes a = axes[e.getIds()];
      a.push_back(true);
      axes[e.getResult()] = a;
      return "";
    }
    // Ops over the last axis of a token-wise x.
    Value x;
    if (auto o = dyn_cast<RMSNormOp>(op)) x = o.getX();
    else if (auto o = dyn_cast<LayerNormOp>(op)) x = o.getX();
    else if (auto o = dyn_cast<GeluOp>(op)) x = o->getOperand(0);
    else if (auto o = dyn_cast<LinearOp>(op)) x = o.getX();
    else if (auto o = dyn_cast<SwiGLUOp>(op)) x = o.getX();
    else if (auto o = dyn_cast<LMHeadOp>(op)) x = o.getX();
    if (x) {
      if (in.size() != 1 || in[0] != x)
        return bad + "which reads the tokens' data through an operand other than its input "
                     "(an activation used as a weight)";
      if (!lastIsFeature(axes[x]))
        return bad + "which reduces over an axis that indexes tokens";
      return setSameAs(op, x);
    }
    if (auto p = dyn_cast<PositionEmbeddingOp>(op)) {
      if (in.size() != 1 || in[0] != p.getX() || !rowsThenFeatures(axes[p.getX()], 2))
        return bad + "whose x is not [batch, sequence, features] or whose table depends on "
                     "the tokens";
      return setSameAs(op, p.getX());
    }
    if (auto r = dyn_cast<RoPEOp>(op)) {
      if (in.size() != 1 || !rowsThenFeatures(axes[r.getX()], 2))
        return bad + "whose x is not [batch, sequence, heads, head_dim]";
      return setSameAs(op, r.getX());
    }
    if (auto a = dyn_cast<CausalAttentionOp>(op)) {
      for (Value v : {a.getQ(), a.getK(), a.getV()})
        if (!data.contains(v) || !rowsThenFeatures(axes[v], 2))
          return bad + "whose q, k, v are not [batch, sequence, heads, head_dim] token data";
      return setSameAs(op, a.getQ());
    }
    if (auto t = dyn_cast<linalg::TransposeOp>(op)) {
      const Axes &a = axes[t.getInput()];
      Axes r;
      for (int64_t p : t.getPermutation()) r.push_back(a[p]);
      axes[t->getResult(0)] = r;
      return "";
    }
    if (auto c = dyn_cast<tensor::CollapseShapeOp>(op)) {
      const Axes &a = axes[c.getSrc()];
      Axes r;
      for (const auto &group : c.getReassociationIndices()) {
        bool feature = true;
        for (int64_t i : group) feature &= a[i];
        r.push_back(feature);
      }
      axes[c.getResult()] = r;
      return "";
    }
    if (auto e = dyn_cast<tensor::ExpandShapeOp>(op)) {
      const Axes &a = axes[e.getSrc()];
      Axes r;
      auto groups = e.getReassociationIndices();
      for (unsigned g = 0; g < groups.size(); ++g)
        for (size_t k = 0; k < groups[g].size(); ++k) r.push_back(a[g]);
      axes[e.getResult()] = r;
      return "";
    }
    if (auto rs = dyn_cast<tensor::ReshapeOp>(op)) {
      // Rows then static features, to rows then the same number of feature elements.
      if (!data.contains(rs.getSource()) || data.contains(rs.getShape()))
        return bad + "a reshape whose shape depends on the tokens' values";
      const Axes &a = axes[rs.getSource()];
      auto st = cast<RankedTensorType>(rs.getSource().getType());
      auto rt = cast<RankedTensorType>(rs.getResult().getType());
      unsigned rows = 0;
      while (rows < a.size() && !a[rows]) ++rows;
      int64_t features = 1;
      for (unsigned i = rows; i < a.size(); ++i) {
        int64_t n = sizeOf(rs.getSource(), i);
        if (!a[i] || ShapedType::isDynamic(n))
          return bad + "a reshape of rows interleaved with features";
        features *= n;
      }
      (void)st;
      int64_t p = 1;
      int64_t k = rt.getRank();
      while (p < features && k > 0 && !ShapedType::isDynamic(sizeOf(rs.getResult(), k - 1)))
        p *= sizeOf(rs.getResult(), --k);
      Axes r(rt.getRank(), false);
      if (p == features)
        for (int64_t i = k; i < rt.getRank(); ++i) r[i] = true;
      axes[rs.getResult()] = r;
      return "";
    }
    if (auto sl = dyn_cast<tensor::ExtractSliceOp>(op)) {
      // A part of the features (one of a fused projection's q, k, v), every token whole.
      if (in.size() != 1 || in[0] != sl.getSource())
        return bad + "a slice at offsets computed from the tokens";
      const Axes &a = axes[sl.getSource()];
      RankedTensorType st = sl.getSourceType();
      if (sl.getResultType().getRank() != st.getRank()) return bad + "a rank-reducing slice";
      auto offs = sl.getMixedOffsets(), sizes = sl.getMixedSizes(),
           strides = sl.getMixedStrides();
      for (int64_t i = 0; i < st.getRank(); ++i) {
        if (a[i]) continue;
        bool whole = isConstantIntValue(offs[i], 0) && isConstantIntValue(strides[i], 1);
        if (auto v = dyn_cast<Value>(sizes[i])) {
          auto d = v.getDefiningOp<tensor::DimOp>();
          std::optional<int64_t> di = d ? d.getConstantIndex() : std::nullopt;
          whole &= d && d.getSource() == sl.getSource() && di && *di == i;
        } else {
          whole &= !st.isDynamicDim(i) && isConstantIntValue(sizes[i], st.getDimSize(i));
        }
        if (!whole) return bad + "a slice along an axis that indexes tokens";
      }
      return setSameAs(op, sl.getSource());
    }
    if (isa<tensor::CastOp>(op)) return setSameAs(op, in[0]);
    if (auto call = dyn_cast<func::CallOp>(op)) {
      // A stack this pattern outlined: checked as it was built.
      if (call->getNumResults() == 1 && in.size() == 1) return setSameAs(op, in[0]);
      return bad + "a call";
    }
    if (auto g = dyn_cast<linalg::GenericOp>(op); g && g.getNumReductionLoops() != 0)
      return reduction(g, bad);
    if (auto g = dyn_cast<linalg::GenericOp>(op)) {
      bool readsIndex = false;
      g.getBody()->walk([&](linalg::IndexOp) { readsIndex = true; });
      if (readsIndex) return bad + "which reads its loop positions (a position-dependent value)";
      llvm::SetVector<Value> above;
      getUsedValuesDefinedAbove(g.getRegion(), above);
      for (Value v : above)
        if (data.contains(v)) return bad + "which reads token data by index";
      if (g->getNumResults() != 1 || !g.getIndexingMapsArray().back().isIdentity())
        return bad + "whose result is not written element by element";
      std::optional<Axes> r;
      for (OpOperand *o : g.getDpsInputOperands()) {
        if (!data.contains(o->get())) continue;
        if (!g.getMatchingIndexingMap(o).isIdentity())
          return bad + "which reads token data at other positions than it writes";
        const Axes &a = axes[o->get()];
        if (!r) r = a;
        else
          for (unsigned i = 0; i < r->size(); ++i) (*r)[i] = (*r)[i] && a[i];
      }
      for (OpOperand &o : g.getDpsInitsMutable())
        if (data.contains(o.get())) return bad + "which accumulates into token data";
      if (!r) return bad + "which reads no token data through its inputs";
      axes[g->getResult(0)] = *r;
      return "";
    }
    // Elementwise arith on tensors (stage 1's residual adds).
    if (op->getNumResults() == 1 && op->getDialect() &&
        op->getDialect()->getNamespace() == arith::ArithDialect::getDialectNamespace() &&
        isa<RankedTensorType>(op->getResult(0).getType())) {
      std::optional<Axes> r;
      for (Value v : in) {
        if (v.getType() != op->getResult(0).getType()) return bad + "a broadcast of token data";
        if (!r) r = axes[v];
        else
          for (unsigned i = 0; i < r->size(); ++i) (*r)[i] = (*r)[i] && axes[v][i];
      }
      axes[op->getResult(0)] = *r;
      return "";
    }
    return bad + "an op not known to keep each token's row to itself";
  }
};

std::string rowWise(func::FuncOp f, const llvm::DenseSet<Value> &data,
                    const llvm::DenseSet<Operation *> *only, ArrayRef<Value> rowInputs,
                    SizeSample *s0, SizeSample *s1) {
  return RowWise(data, s0, s1).check(f, only, rowInputs);
}

//===----------------------------------------------------------------------===//
// Patterns
//===----------------------------------------------------------------------===//

/// Embedding: a gather `out[i.., e] = table[ids[i..], e]` (with torch's negative-index
/// wrap-around `id < 0 ? id + V : id`, or without) from a 2-D `photon.weight` ->
/// `photon.embedding(table, ids)`. Reading the table transposed, at a shifted row, or
/// at a column other than the output's last index is no embedding.
struct RaiseEmbedding : OpRewritePattern<linalg::GenericOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(linalg::GenericOp g, PatternRewriter &rewriter) const override {
    if (g.getNumDpsInputs() != 1 || g.getNumDpsInits() != 1 || g->getNumResults() != 1 ||
        g.getNumReductionLoops() != 0)
      return failure();
    Value ids = g.getDpsInputOperand(0)->get();
    auto idsT = dyn_cast<RankedTensorType>(ids.getType());
    auto outT = dyn_cast<RankedTensorType>(g->getResult(0).getType());
    if (!idsT || !outT || !idsT.getElementType().isSignlessInteger() ||
        outT.getRank() != idsT.getRank() + 1 || !isa<FloatType>(outT.getElementType()))
      return failure();
    // (d0 .. dn) -> (d0 .. d(n-1)) for the ids: the id at the output's leading indices.
    auto maps = g.getIndexingMapsArray();
    if (!maps[1].isIdentity() || maps[0].getNumResults() != (unsigned)idsT.getRank())
      return failure();
    for (unsigned i = 0; i < maps[0].getNumResults(); ++i)
      if (maps[0].getResult(i) != getAffineDimExpr(i, getContext())) return failure();
    Block *body = g.getBody();
    auto yield = cast<linalg::YieldOp>(body->getTerminator());
    auto ex = yield->getOperand(0).getDefiningOp<tensor::ExtractOp>();
    if (!ex || ex.getIndices().size() != 2) return failure();
    auto table = ex.getTensor().getDefiningOp<WeightOp>();
    if (!table) return failure();
    auto tableT = cast<RankedTensorType>(table.getType());
    if (tableT.getElementType() != outT.getElementType() ||
        tableT.getDimSize(1) != outT.getDimSize(outT.getRank() - 1))
      return failure();
    // The column: linalg.index of the output's last axis.
    auto col = ex.getIndices()[1].getDefiningOp<linalg::IndexOp>();
    if (!col || col.getDim() != (uint64_t)outT.getRank() - 1) return failure();
    // The row: index_cast(id), or select(id < 0, id + V, id) over it.
    Value id = body->getArgument(0);
    auto isCast = [&](Value v) {
      auto c = v.getDefiningOp<arith::IndexCastOp>();
      return c && c.getIn() == id ? c.getResult() : Value();
    };
    Value row = ex.getIndices()[0];
    if (!isCast(row)) {
      auto sel = row.getDefiningOp<arith::SelectOp>();
      if (!sel) return failure();
      Value c = isCast(sel.getFalseValue());
      auto add = sel.getTrueValue().getDefiningOp<arith::AddIOp>();
      auto cmp = sel.getCondition().getDefiningOp<arith::CmpIOp>();
      APInt v, zero;
      if (!c || !add || !cmp || cmp.getPredicate() != arith::CmpIPredicate::slt ||
          cmp.getLhs() != c || !matchPattern(cmp.getRhs(), m_ConstantInt(&zero)) || !zero.isZero())
        return failure();
      Value other = add.getLhs() == c ? add.getRhs() : add.getRhs() == c ? add.getLhs() : Value();
      if (!other || !matchPattern(other, m_ConstantInt(&v)) ||
          v.getSExtValue() != tableT.getDimSize(0))
        return failure();
    }
    // Nothing else in the body may matter: every op feeds the extract.
    for (Operation &op : body->without_terminator())
      if (op.use_empty()) return failure();
    auto emb = EmbeddingOp::create(rewriter, g.getLoc(), table, ids);
    if (emb.getType() != outT) {
      rewriter.eraseOp(emb);
      return failure();
    }
    rewriter.replaceOp(g, emb.getResult());
    return success();
  }
};

/// Learned positions: `x + photon.embedding(table, positions)`, an elementwise add whose
/// second operand is broadcast over the batch (`[1, T, D]` or `[T, D]`), the positions
/// `0 .. T-1` (a 1-D generic yielding its own index, torch's Range(0, T), possibly
/// reshaped to `[1, T]`) -> `photon.position_embedding(x, table)`. The add's loops give
/// the positions the length of x's sequence axis. Positions from any other start or step,
/// or a table read per batch row, are not learned positions.
struct RaisePositionEmbedding : OpRewritePattern<linalg::GenericOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(linalg::GenericOp g, PatternRewriter &rewriter) const override {
    if (g.getNumDpsInputs() != 2 || g->getNumResults() != 1 || g.getNumReductionLoops() != 0 ||
        !g.getIndexingMapsArray().back().isIdentity())
      return failure();
    auto outT = dyn_cast<RankedTensorType>(g->getResult(0).getType());
    if (!outT || outT.getRank() != 3) return failure();
    Block *body = g.getBody();
    if (body->getOperations().size() != 2) return failure();
    auto add = dyn_cast<arith::AddFOp>(body->front());
    if (!add || body->getTerminator()->getOperand(0) != add.getResult()) return failure();
    for (unsigned xi = 0; xi < 2; ++xi) {
      OpOperand *xo = g.getDpsInputOperand(xi), *po = g.getDpsInputOperand(1 - xi);
      if (xo->get().getType() != outT || !g.getMatchingIndexingMap(xo).isIdentity()) continue;
      // The positions' map: (d0, d1, d2) -> (0, d1, d2) or (d1, d2).
      AffineMap pm = g.getMatchingIndexingMap(po);
      MLIRContext *ctx = getContext();
      AffineExpr d1 = getAffineDimExpr(1, ctx), d2 = getAffineDimExpr(2, ctx);
      bool bcast = (pm.getNumResults() == 3 && pm.getResult(0) == getAffineConstantExpr(0, ctx) &&
                    pm.getResult(1) == d1 && pm.getResult(2) == d2) ||
                   (pm.getNumResults() == 2 && pm.getResult(0) == d1 && pm.getResult(1) == d2);
      if (!bcast) continue;
      auto emb = po->get().getDefiningOp<EmbeddingOp>();
      if (!emb || !emb.getTable().getDefiningOp<WeightOp>()) continue;
      Value ids = emb.getIds();
      if (auto e = ids.getDefiningOp<tensor::ExpandShapeOp>()) ids = e.getSrc();
      auto range = ids.getDefiningOp<linalg::GenericOp>();
      auto idsT = dyn_cast<RankedTensorType>(ids.getType());
      if (!range || !idsT || idsT.getRank() != 1 || range.getNumDpsInputs() != 0 ||
          range->getNumResults() != 1)
        continue;
      Block *rb = range.getBody();
      auto cast = dyn_cast<arith::IndexCastOp>(rb->getTerminator()->getOperand(0).getDefiningOp());
      auto idx = cast ? cast.getIn().getDefiningOp<linalg::IndexOp>() : linalg::IndexOp();
      if (!idx || idx.getDim() != 0) continue;
      rewriter.replaceOpWithNewOp<PositionEmbeddingOp>(g, xo->get(), emb.getTable(), Value());
      return success();
    }
    return failure();
  }
};

/// The value a function returns `v` as: `v` itself or through a tensor.cast.
bool returned(Value v) {
  for (Operation *u : v.getUsers()) {
    if (isa<func::ReturnOp>(u)) continue;
    if (auto c = dyn_cast<tensor::CastOp>(u); c && llvm::all_of(c->getUsers(), [](Operation *w) {
          return isa<func::ReturnOp>(w);
        }))
      continue;
    return false;
  }
  return !v.use_empty();
}

/// LM head: the bias-free `photon.linear` whose result a graph function of token ids
/// (`[batch, sequence]` integers) returns (the logits, `[.., V]`) -> `photon.lm_head`. A linear with a bias, or one whose result is
/// used by anything but the return, is not the head.
struct RaiseLMHead : OpRewritePattern<LinearOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LinearOp op, PatternRewriter &rewriter) const override {
    if (op.getB() || !returned(op.getResult())) return failure();
    auto f = op->getParentOfType<func::FuncOp>();
    if (!f || f.isPrivate() || op->getBlock() != &f.getBody().front()) return failure();
    // A language model's graph: token ids in.
    if (f.getNumArguments() < 1) return failure();
    auto ids = dyn_cast<RankedTensorType>(f.getArgument(0).getType());
    if (!ids || ids.getRank() != 2 || !ids.getElementType().isSignlessInteger()) return failure();
    rewriter.replaceOpWithNewOp<LMHeadOp>(op, op.getX(), op.getW());
    return success();
  }
};

/// The two operands of a residual add of token data: an elementwise `linalg.generic`
/// whose body is one addf of its two inputs (identity maps, one type), or a tensor
/// `arith.addf`.
std::optional<std::pair<Value, Value>> residualAdd(Value v) {
  if (auto a = v.getDefiningOp<arith::AddFOp>())
    return std::make_pair(a.getLhs(), a.getRhs());
  auto g = v.getDefiningOp<linalg::GenericOp>();
  if (!g || g.getNumDpsInputs() != 2 || g->getNumResults() != 1 || g.getNumReductionLoops() != 0)
    return std::nullopt;
  for (AffineMap m : g.getIndexingMapsArray())
    if (!m.isIdentity()) return std::nullopt;
  Value a = g.getDpsInputOperand(0)->get(), b = g.getDpsInputOperand(1)->get();
  if (a.getType() != v.getType() || b.getType() != v.getType()) return std::nullopt;
  Block *body = g.getBody();
  if (body->getOperations().size() != 2) return std::nullopt;
  auto add = dyn_cast<arith::AddFOp>(body->front());
  auto y = cast<linalg::YieldOp>(body->getTerminator());
  if (!add || y->getOperand(0) != add.getResult()) return std::nullopt;
  Value x = body->getArgument(0), w = body->getArgument(1);
  if (!((add.getLhs() == x && add.getRhs() == w) || (add.getLhs() == w && add.getRhs() == x)))
    return std::nullopt;
  return std::make_pair(a, b);
}

bool isNorm(Operation *op, Value x) {
  if (auto n = dyn_cast<RMSNormOp>(op)) return n.getX() == x && n.getW() != x;
  if (auto n = dyn_cast<LayerNormOp>(op)) return n.getX() == x && n->getOperand(1) != x;
  return false;
}

/// The sublayer `u` of a residual add `s + u`: its token-data ops back to the stream `s`,
/// which they may read only as the x of one norm.
struct Sublayer {
  llvm::SetVector<Operation *> ops;
  int attentions = 0;
  std::string why;
};
Sublayer sublayer(Value u, Value s, const llvm::DenseSet<Value> &data) {
  Sublayer r;
  int norms = 0;
  SmallVector<Value> work{u};
  llvm::DenseSet<Value> seen;
  while (!work.empty()) {
    Value v = work.pop_back_val();
    if (v == s || !seen.insert(v).second) continue;
    Operation *def = v.getDefiningOp();
    if (!def) {
      r.why = "reads the token ids directly";
      return r;
    }
    if (!r.ops.insert(def)) continue;
    if (isa<CausalAttentionOp>(def)) ++r.attentions;
    for (Value in : dataInputs(def, data)) {
      if (in == s) {
        if (!isNorm(def, s)) {
          r.why = nodeOf(def) + " reads the residual stream other than through a norm";
          return r;
        }
        ++norms;
        continue;
      }
      work.push_back(in);
    }
  }
  if (norms != 1) r.why = "reads the residual stream through " + std::to_string(norms) + " norms";
  return r;
}
std::string findStack(Operation *finalNorm, const llvm::DenseSet<Value> &data, FoundStack &out) {
  if (!finalNorm || !isa<RMSNormOp, LayerNormOp>(finalNorm))
    return "no final RMSNorm or LayerNorm";
  out = FoundStack();
  out.finalNorm = finalNorm;
  Value v = finalNorm->getOperand(0);
  bool expectMlp = true;
  while (auto add = residualAdd(v)) {
    std::optional<Sublayer> found;
    Value stream;
    // Why neither operand is a sublayer of the other, for an attention left below.
    std::string why;
    for (auto [s, u] : {std::make_pair(add->first, add->second),
                        std::make_pair(add->second, add->first)}) {
      if (!data.contains(s) || !data.contains(u)) continue;
      Sublayer sl = sublayer(u, s, data);
      if (sl.why.empty()) {
        found = std::move(sl);
        stream = s;
        break;
      }
      if (why.empty() && (sl.attentions || sl.why.find("norm") != std::string::npos))
        why = sl.why;
    }
    if (!found) {
      out.breakWhy = "at " + nodeOf(v.getDefiningOp()) + ": " +
                     (why.empty() ? "neither operand is a sublayer of the other" : why);
      break;
    }
    bool attention = found->attentions > 0;
    if (found->attentions > 1)
      return "a sublayer holds " + std::to_string(found->attentions) + " attentions";
    if (attention == expectMlp)
      return std::string("the blocks do not alternate attention and MLP: found ") +
             (attention ? "an attention" : "an MLP") + " sublayer at " +
             nodeOf(v.getDefiningOp()) + " where " + (expectMlp ? "an MLP" : "an attention") +
             " one was expected";
    out.ops.insert(v.getDefiningOp());
    out.ops.insert(found->ops.begin(), found->ops.end());
    expectMlp = !expectMlp;
    if (attention) ++out.layers;
    v = stream;
  }
  if (out.layers == 0 || !expectMlp)
    return "no residual block (s + attention(norm(s)), then + mlp(norm(.))) ends at " +
           nodeOf(finalNorm);
  out.input = v;
  if (v.getType() != finalNorm->getResult(0).getType())
    return "the stack's input and output types differ";
  out.ops.insert(finalNorm);
  return "";
}

func::CallOp outlineStack(PatternRewriter &rewriter, func::FuncOp f, const FoundStack &found,
                          const llvm::DenseSet<Value> &data, StringRef baseName, StringRef role,
                          int64_t level, bool sizesOfTokens, std::string &why) {
  Block *entry = &f.getBody().front();
  auto module = f->getParentOfType<ModuleOp>();
  Operation *finalNorm = found.finalNorm;
  Value x0 = found.input;
  auto x0T = cast<RankedTensorType>(x0.getType());
  llvm::SetVector<Operation *> stackOps = found.ops;
  // Values of the stack read only for their sizes (a reshape whose shape another reshape
  // reads, as torch's Shape of a view): in the stack too.
  for (Operation &op : *entry) {
    SmallVector<Value> in = dataInputs(&op, data);
    if (in.empty() || stackOps.contains(&op) || op.use_empty()) continue;
    bool fromStack = llvm::all_of(in, [&](Value v) {
      return v == x0 || (v.getDefiningOp() && stackOps.contains(v.getDefiningOp()));
    });
    bool sizesOnly = llvm::all_of(op.getUsers(), [&](Operation *u) {
      return isa<tensor::DimOp>(topLevel(u, entry));
    });
    if (fromStack && sizesOnly && !isa<func::ReturnOp>(op)) stackOps.insert(&op);
  }
  // The shape values, weights and constants the stack reads: cloned into it. A
  // tensor.dim of token data outside the stack is a batch or sequence size: the same
  // axis of the stack's input.
  llvm::SetVector<Operation *> extra;
  llvm::DenseMap<Operation *, int64_t> dimOfInput;
  SmallVector<Value> work;
  for (Operation *op : stackOps) {
    for (Value in : op->getOperands()) work.push_back(in);
    llvm::SetVector<Value> above;
    for (Region &r : op->getRegions()) getUsedValuesDefinedAbove(r, above);
    work.append(above.begin(), above.end());
  }
  while (!work.empty()) {
    Value in = work.pop_back_val();
    if (in == x0) continue;
    Operation *def = in.getDefiningOp();
    if (!def) return why = "the stack reads the token ids directly", nullptr;
    if (stackOps.contains(def) || extra.contains(def) || dimOfInput.count(def)) continue;
    if (data.contains(in))
      return why = "the stack reads token data other than its input, from " + nodeOf(def),
             nullptr;
    if (auto d = dyn_cast<tensor::DimOp>(def); d && data.contains(d.getSource()) &&
                                                !stackOps.contains(d.getSource().getDefiningOp()) &&
                                                d.getSource() != x0) {
      std::optional<int64_t> i = d.getConstantIndex();
      bool batchSeq = sizesOfTokens && (d.getSource() == f.getArgument(0) ||
                                        d.getSource().getType() == x0T);
      if (!i || *i > 1 || !batchSeq)
        return why = "the stack reads a size of token data other than its input's, from " +
                     nodeOf(def),
               nullptr;
      dimOfInput[def] = *i;
      continue;
    }
    extra.insert(def);
    for (Value o : def->getOperands()) work.push_back(o);
    llvm::SetVector<Value> above;
    for (Region &r : def->getRegions()) getUsedValuesDefinedAbove(r, above);
    work.append(above.begin(), above.end());
  }

  // Self-contained: nothing outside uses a stack value but the final norm's users, and
  // a size of one (a tensor.dim that outlives the stack) must be a batch or sequence
  // size of a value typed like the stack's input: the same axis of the input.
  llvm::DenseSet<Operation *> usedOutside;
  {
    SmallVector<Operation *> ex(extra.begin(), extra.end());
    llvm::sort(ex, [](Operation *a, Operation *b) { return b->isBeforeInBlock(a); });
    for (Operation *e : ex)
      for (Operation *u : e->getUsers()) {
        Operation *top = topLevel(u, entry);
        if (!stackOps.contains(top) && (!extra.contains(top) || usedOutside.contains(top)))
          usedOutside.insert(e);
      }
  }
  for (Operation *op : stackOps)
    for (Value r : op->getResults())
      for (Operation *u : r.getUsers()) {
        Operation *top = topLevel(u, entry);
        if (stackOps.contains(top) || (op == finalNorm && !isa<tensor::DimOp>(top))) continue;
        if (auto d = dyn_cast<tensor::DimOp>(top)) {
          if (extra.contains(top) && !usedOutside.contains(top)) continue;
          std::optional<int64_t> i = d.getConstantIndex();
          if (i && *i <= 1 && r.getType() == x0T) continue;
        }
        // Name the op outside the stack that the use reaches.
        Operation *outside = top;
        SmallVector<Operation *> w;
        for (Operation *uu : top->getUsers()) w.push_back(topLevel(uu, entry));
        while (!w.empty()) {
          Operation *o = w.pop_back_val();
          if (!stackOps.contains(o) && !extra.contains(o) && !isa<tensor::DimOp>(o) &&
              !o->hasTrait<OpTrait::ConstantLike>()) {
            bool shape = !llvm::any_of(o->getResultTypes(), [](Type t) {
              auto r = dyn_cast<RankedTensorType>(t);
              return r && isa<FloatType>(r.getElementType());
            });
            outside = o;
            if (!shape || o->use_empty()) break;
          }
          for (Operation *uu : o->getUsers()) w.push_back(topLevel(uu, entry));
        }
        return why = "a value of the stack, from " + nodeOf(op) + ", is used outside it by " +
                     nodeOf(top) +
                     (outside != top ? ", which reaches " + nodeOf(outside) : std::string()),
               nullptr;
      }

  // The stack function.
  auto outT = cast<RankedTensorType>(finalNorm->getResult(0).getType());
  OpBuilder::InsertionGuard guard(rewriter);
  rewriter.setInsertionPointToEnd(module.getBody());
  auto fnType = rewriter.getFunctionType({x0T}, {outT});
  std::string name = baseName.str();
  for (int k = 1; module.lookupSymbol(name); ++k) name = baseName.str() + "_" + std::to_string(k);
  auto stack = func::FuncOp::create(rewriter, finalNorm->getLoc(), name, fnType);
  stack.setPrivate();
  PhotonDialect *dialect = getPhotonDialect(rewriter.getContext());
  dialect->getRoleAttrHelper().setAttr(stack, rewriter.getStringAttr(role));
  dialect->getLevelAttrHelper().setAttr(stack, rewriter.getI64IntegerAttr(level));
  Block *body = rewriter.createBlock(&stack.getBody(), {}, {x0T}, {finalNorm->getLoc()});
  IRMapping map;
  map.map(x0, body->getArgument(0));
  for (Operation &op : *entry) {
    if (auto it = dimOfInput.find(&op); it != dimOfInput.end()) {
      map.map(op.getResult(0),
              tensor::DimOp::create(rewriter, op.getLoc(), body->getArgument(0), it->second));
      continue;
    }
    if (stackOps.contains(&op) || extra.contains(&op)) rewriter.clone(op, map);
  }
  func::ReturnOp::create(rewriter, finalNorm->getLoc(), map.lookup(finalNorm->getResult(0)));

  // The call replaces the stack in the graph function.
  rewriter.setInsertionPoint(finalNorm);
  auto call = func::CallOp::create(rewriter, finalNorm->getLoc(), stack, ValueRange{x0});
  rewriter.replaceAllUsesWith(finalNorm->getResult(0), call.getResult(0));
  // Sizes of stack values read outside it become sizes of its input; then the stack's
  // ops (and the shape ops only they used) are dead.
  SmallVector<tensor::DimOp> dims;
  for (Operation *op : stackOps)
    for (Value r : op->getResults())
      for (Operation *u : r.getUsers())
        if (auto d = dyn_cast<tensor::DimOp>(u);
            d && !stackOps.contains(u) && (!extra.contains(u) || usedOutside.contains(u)))
          dims.push_back(d);
  for (tensor::DimOp d : dims)
    rewriter.modifyOpInPlace(d, [&] { d.getSourceMutable().assign(x0); });
  SmallVector<Operation *> dead(stackOps.begin(), stackOps.end());
  for (Operation *e : extra)
    if (!usedOutside.contains(e)) dead.push_back(e);
  llvm::sort(dead, [](Operation *a, Operation *b) { return b->isBeforeInBlock(a); });
  for (Operation *op : dead) {
    if (!op->use_empty()) {
      op->emitError("photon-raise-structure: an outlined op is still used");
      return nullptr;
    }
    rewriter.eraseOp(op);
  }
  return call;
}

LogicalResult finishForward(ModuleOp module, func::FuncOp f, HierarchyAttr h) {
  MLIRContext *ctx = module.getContext();
  OpBuilder b(ctx);
  PhotonDialect *dialect = getPhotonDialect(ctx);
  dialect->getHierarchyAttrHelper().setAttr(module, h);
  if (f.getSymName() != "forward") {
    if (auto other = module.lookupSymbol<func::FuncOp>("forward")) {
      if (failed(SymbolTable::replaceAllSymbolUses(other, StringAttr::get(ctx, "onnx_forward"),
                                                   module)))
        return failure();
      other.setSymName("onnx_forward");
    }
    f.setSymName("forward");
  }
  dialect->getStageAttrHelper().setAttr(f, StringAttr::get(ctx, "forward"));
  BlockArgument tok = f.getArgument(0);
  auto tokT = cast<RankedTensorType>(tok.getType());
  Type i32 = b.getI32Type();
  if (tokT.getElementType() != i32) {
    Type et = tokT.getElementType();
    auto newT = RankedTensorType::get(tokT.getShape(), i32);
    tok.setType(newT);
    f.setType(b.getFunctionType({newT}, f.getResultTypes()));
    b.setInsertionPointToStart(&f.getBody().front());
    Location loc = f.getLoc();
    SmallVector<Value> dyn;
    for (int64_t d = 0; d < tokT.getRank(); ++d)
      if (tokT.isDynamicDim(d)) dyn.push_back(tensor::DimOp::create(b, loc, tok, d));
    Value init = tensor::EmptyOp::create(b, loc, tokT.getShape(), et, dyn);
    auto id = b.getMultiDimIdentityMap(tokT.getRank());
    SmallVector<utils::IteratorType> it(tokT.getRank(), utils::IteratorType::parallel);
    auto g = linalg::GenericOp::create(
        b, loc, TypeRange{tokT}, ValueRange{tok}, ValueRange{init}, ArrayRef<AffineMap>{id, id}, it,
        [&](OpBuilder &nb, Location nl, ValueRange a) {
          Value w = cast<IntegerType>(et).getWidth() > 32
                        ? arith::ExtSIOp::create(nb, nl, et, a[0]).getResult()
                        : arith::TruncIOp::create(nb, nl, et, a[0]).getResult();
          linalg::YieldOp::create(nb, nl, w);
        });
    tok.replaceUsesWithIf(g->getResult(0), [&](OpOperand &o) {
      Operation *owner = o.getOwner();
      return owner != g && !isa<tensor::DimOp>(owner);
    });
  }
  return success();
}

/// Decoder stack: `lm_head(norm(r_N))` in a public graph function (token ids in), with
/// `r_i = h_i + mlp(norm(h_i))`, `h_i = r_(i-1) + attn(norm(r_(i-1)))` down to the stack's
/// input `r_0`: the blocks and the final norm become a private function `@stack`
/// (`photon.role = "encoder"`, `photon.level = 1`) called from the graph function.
/// `why`, when set, receives the reason the last match failed.
struct OutlineDecoderStack : OpRewritePattern<LMHeadOp> {
  OutlineDecoderStack(MLIRContext *ctx, std::string *why)
      : OpRewritePattern(ctx), why(why) {}
  std::string *why;

  LogicalResult fail(PatternRewriter &rewriter, LMHeadOp op, const std::string &w) const {
    if (why) *why = w;
    return rewriter.notifyMatchFailure(op, w);
  }

  LogicalResult matchAndRewrite(LMHeadOp head, PatternRewriter &rewriter) const override {
    auto f = head->getParentOfType<func::FuncOp>();
    auto module = f ? f->getParentOfType<ModuleOp>() : ModuleOp();
    if (!module || f.isPrivate() || head->getBlock() != &f.getBody().front()) return failure();
    if (module->hasAttr(PhotonDialect::HierarchyAttrHelper::getNameStr())) return failure();
    if (head.getX().getDefiningOp<func::CallOp>()) return failure(); // already outlined
    Block *entry = &f.getBody().front();
    if (f.getNumArguments() != 1 || f.getNumResults() != 1)
      return fail(rewriter, head, "the graph takes " + std::to_string(f.getNumArguments()) +
                                      " inputs and returns " + std::to_string(f.getNumResults()) +
                                      " outputs; a decoder-only model takes the token ids and "
                                      "returns the logits");
    auto tokT = dyn_cast<RankedTensorType>(f.getArgument(0).getType());
    if (!tokT || tokT.getRank() != 2 || !tokT.getElementType().isSignlessInteger())
      return fail(rewriter, head, "the graph's input is not [batch, sequence] token ids");

    llvm::DenseSet<Value> data = tokenData(f);
    SizeSample s0(f, 0), s1(f, 1);
    std::string rw = rowWise(f, data, nullptr, {}, &s0, &s1);
    if (!rw.empty()) return fail(rewriter, head, rw);

    // The final norm and the blocks below it.
    Operation *finalNorm = head.getX().getDefiningOp();
    if (!finalNorm || !isa<RMSNormOp, LayerNormOp>(finalNorm))
      return fail(rewriter, head, "the LM head does not read a final RMSNorm or LayerNorm");
    FoundStack stack;
    std::string bad = findStack(finalNorm, data, stack);
    if (!bad.empty()) return fail(rewriter, head, bad);
    auto x0T = dyn_cast<RankedTensorType>(stack.input.getType());
    if (!x0T || x0T.getRank() != 3 || !x0T.isDynamicDim(0) || !x0T.isDynamicDim(1) ||
        x0T.isDynamicDim(2) || !x0T.getElementType().isF32())
      return fail(rewriter, head, "the stack's input is not an f32 [batch, sequence, width] "
                                  "tensor with dynamic batch and sequence axes");
    // Attention and RoPE only inside the stack: photon-derive-stages gives only the
    // stack's ones a cache and positions.
    for (Operation &op : *entry)
      if (isa<CausalAttentionOp, RoPEOp>(op) && !stack.ops.contains(&op))
        return fail(rewriter, head,
                    nodeOf(&op) + " is below the residual blocks found from the final norm" +
                        (stack.breakWhy.empty() ? std::string()
                                                : " (they end " + stack.breakWhy + ")") +
                        "; attention and RoPE outside the blocks would have no KV cache or "
                        "positions in the stages");
    if (std::string rows = attentionRowsMatch(stack, s0, s1); !rows.empty())
      return fail(rewriter, head, rows);
    std::string whyNot;
    if (!outlineStack(rewriter, f, stack, data, "stack", "encoder", 1,
                      /*sizesOfTokens=*/true, whyNot))
      return fail(rewriter, head, whyNot);
    if (why) why->clear();
    return success();
  }
};

/// The vanilla hierarchy of a decoder-only model whose LM head reads `x`.
HierarchyAttr vanillaHierarchy(ModuleOp module, LMHeadOp head) {
  auto x = cast<RankedTensorType>(head.getX().getType());
  auto logits = cast<RankedTensorType>(head.getResult().getType());
  int64_t V = logits.getShape().back();
  if (ShapedType::isDynamic(V)) return nullptr;
  return HierarchyAttr::getChecked([&] { return module.emitError(); }, module.getContext(),
                                   StringRef("vanilla"), int64_t(0), ArrayRef<int64_t>{},
                                   int64_t(0), int64_t(x.getShape().back()), int64_t(V));
}

struct PhotonRaiseStructurePass : impl::PhotonRaiseStructureBase<PhotonRaiseStructurePass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (module->hasAttr(PhotonDialect::HierarchyAttrHelper::getNameStr())) return;
    MLIRContext *ctx = &getContext();
    // The model's ends first (embedding, LM head), then the stack between them.
    {
      RewritePatternSet patterns(ctx);
      patterns.add<RaiseEmbedding, RaisePositionEmbedding, RaiseLMHead>(ctx);
      addMergedHeadsPattern(patterns);
      (void)applyPatternsGreedily(module, std::move(patterns));
    }
    std::string why, hierWhy;
    HierarchyFound hier;
    {
      RewritePatternSet patterns(ctx);
      patterns.add<OutlineDecoderStack>(ctx, &why);
      addHierarchyPattern(patterns, &hierWhy, &hier);
      (void)applyPatternsGreedily(module, std::move(patterns));
    }
    if (hier.hierarchy) {
      if (failed(finishForward(module, hier.forward, hier.hierarchy))) signalPassFailure();
      // The graph's spellings the typed ops replaced (the shift's concat and broadcast,
      // the converter's linear and view) are dead.
      for (bool erased = true; erased;) {
        erased = false;
        for (Operation &op : llvm::make_early_inc_range(
                 llvm::reverse(hier.forward.getBody().front().getOperations())))
          if (isOpTriviallyDead(&op)) {
            op.erase();
            erased = true;
          }
      }
      return;
    }
    // Finish the one graph function whose LM head now reads an outlined stack.
    SmallVector<std::pair<func::FuncOp, LMHeadOp>> done;
    SmallVector<LMHeadOp> heads;
    module.walk([&](LMHeadOp h) {
      heads.push_back(h);
      if (auto c = h.getX().getDefiningOp<func::CallOp>())
        done.push_back({h->getParentOfType<func::FuncOp>(), h});
    });
    if (done.size() == 1) {
      HierarchyAttr h = vanillaHierarchy(module, done[0].second);
      if (!h || failed(finishForward(module, done[0].first, h))) signalPassFailure();
      return;
    }
    // A graph whose LM head reads rows of a stack's windows is reported as the PHOTON /
    // Block model it almost is.
    if (!heads.empty() && !hierWhy.empty())
      emitRemark(heads.front().getLoc())
          << "photon-raise-structure: no PHOTON / Block structure: " << hierWhy
          << (why.empty() ? std::string() : " (as a decoder-only model: " + why + ")");
    else if (!heads.empty() && !why.empty())
      emitRemark(heads.front().getLoc())
          << "photon-raise-structure: no decoder-only structure: " << why;
  }
};

} // namespace raise_structure

} // namespace photon
} // namespace mlir
