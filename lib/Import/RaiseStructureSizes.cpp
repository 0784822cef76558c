//===- RaiseStructureSizes.cpp - photon-raise-structure: sample sizes -----===//
//
// SizeSample (RaiseStructure.h): the sizes a graph computes for its tensors, evaluated on
// integers for one sample of its input's dynamic sizes, and the check that a stack's
// attentions keep the stack's batch and positions.
//
//===----------------------------------------------------------------------===//

#include "RaiseStructure.h"

#include "photon/Dialect/PhotonOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/Matchers.h"

namespace mlir {
namespace photon {
namespace raise_structure {

SizeSample::SizeSample(func::FuncOp f, ArrayRef<int64_t> argShape) {
  shapes[f.getArgument(0)] = SmallVector<int64_t>(argShape);
}

std::optional<SmallVector<int64_t>> SizeSample::shape(Value v) {
  if (auto it = shapes.find(v); it != shapes.end()) return it->second;
  auto t = dyn_cast<RankedTensorType>(v.getType());
  if (!t || --budget < 0) return std::nullopt;
  std::optional<SmallVector<int64_t>> r;
  if (t.hasStaticShape()) r = SmallVector<int64_t>(t.getShape());
  else r = computeShape(v, t);
  if (!r || (int64_t)r->size() != t.getRank()) return std::nullopt;
  for (int64_t i = 0; i < t.getRank(); ++i)
    if (!t.isDynamicDim(i) && (*r)[i] != t.getDimSize(i)) return std::nullopt;
  shapes[v] = *r;
  return r;
}

std::optional<int64_t> SizeSample::scalar(Value v) {
  if (auto it = scalars.find(v); it != scalars.end()) return it->second;
  if (--budget < 0) return std::nullopt;
  std::optional<int64_t> r = computeScalar(v);
  if (r) scalars[v] = *r;
  return r;
}

std::optional<int64_t> SizeSample::size(OpFoldResult s) {
  if (auto c = getConstantIntValue(s)) return *c;
  return scalar(cast<Value>(s));
}


std::optional<SmallVector<int64_t>> SizeSample::sizes(ArrayRef<OpFoldResult> s) {
  SmallVector<int64_t> r;
  for (OpFoldResult x : s) {
    auto v = size(x);
    if (!v) return std::nullopt;
    r.push_back(*v);
  }
  return r;
}

std::optional<SmallVector<int64_t>> SizeSample::computeShape(Value v, RankedTensorType t) {
  Operation *op = v.getDefiningOp();
  if (!op) return std::nullopt;
  if (auto c = dyn_cast<tensor::CastOp>(op)) return shape(c.getSource());
  if (auto e = dyn_cast<tensor::EmptyOp>(op)) return sizes(e.getMixedSizes());
  if (auto d = dyn_cast<DestinationStyleOpInterface>(op)) {
    if (d.getNumDpsInits() != op->getNumResults()) return std::nullopt;
    return shape(d.getDpsInits()[cast<OpResult>(v).getResultNumber()]);
  }
  if (auto x = dyn_cast<tensor::ExtractSliceOp>(op)) {
    if (x.getResultType().getRank() != x.getSourceType().getRank()) return std::nullopt;
    return sizes(x.getMixedSizes());
  }
  if (auto e = dyn_cast<tensor::ExpandShapeOp>(op)) return sizes(e.getMixedOutputShape());
  if (auto c = dyn_cast<tensor::CollapseShapeOp>(op)) {
    auto s = shape(c.getSrc());
    if (!s) return std::nullopt;
    SmallVector<int64_t> r;
    for (const auto &g : c.getReassociationIndices()) {
      int64_t p = 1;
      for (int64_t i : g) p *= (*s)[i];
      r.push_back(p);
    }
    return r;
  }
  if (auto c = dyn_cast<tensor::ConcatOp>(op)) {
    std::optional<SmallVector<int64_t>> r;
    for (Value in : c.getInputs()) {
      auto s = shape(in);
      if (!s) return std::nullopt;
      if (!r) r = *s;
      else (*r)[c.getDim()] += (*s)[c.getDim()];
    }
    return r;
  }
  if (auto rs = dyn_cast<tensor::ReshapeOp>(op)) {
    SmallVector<int64_t> r;
    for (int64_t i = 0; i < t.getRank(); ++i) {
      auto e = element(rs.getShape(), i);
      if (!e) return std::nullopt;
      r.push_back(*e);
    }
    return r;
  }
  if (auto e = dyn_cast<EmbeddingOp>(op)) {
    auto s = shape(e.getIds());
    if (!s) return std::nullopt;
    s->push_back(t.getShape().back());
    return s;
  }
  // The typed token-wise ops and elementwise arith: the shape of their first operand,
  // the last axis as typed.
  if (isa<LinearOp, LMHeadOp, RMSNormOp, LayerNormOp, GeluOp, SwiGLUOp, RoPEOp,
          CausalAttentionOp, PositionEmbeddingOp>(op) ||
      op->getDialect()->getNamespace() == arith::ArithDialect::getDialectNamespace()) {
    auto s = shape(op->getOperand(0));
    if (!s || (int64_t)s->size() != t.getRank()) return std::nullopt;
    if (!t.isDynamicDim(t.getRank() - 1)) s->back() = t.getShape().back();
    return s;
  }
  return std::nullopt;
}

/// Element `lin` (row-major) of an integer tensor of sizes.
std::optional<int64_t> SizeSample::element(Value t, int64_t lin) {
  if (--budget < 0) return std::nullopt;
  Operation *op = t.getDefiningOp();
  if (!op) return std::nullopt;
  DenseIntElementsAttr dense;
  if (matchPattern(t, m_Constant(&dense))) {
    if (dense.isSplat()) return dense.getSplatValue<APInt>().getSExtValue();
    if (lin < 0 || lin >= dense.getNumElements()) return std::nullopt;
    return (*(dense.value_begin<APInt>() + lin)).getSExtValue();
  }
  if (auto fe = dyn_cast<tensor::FromElementsOp>(op)) {
    if (lin < 0 || lin >= (int64_t)fe.getElements().size()) return std::nullopt;
    return scalar(fe.getElements()[lin]);
  }
  if (isa<tensor::CastOp, tensor::ExpandShapeOp, tensor::CollapseShapeOp>(op))
    return element(op->getOperand(0), lin);
  if (auto rs = dyn_cast<tensor::ReshapeOp>(op)) return element(rs.getSource(), lin);
  if (auto c = dyn_cast<tensor::ConcatOp>(op)) {
    if (cast<RankedTensorType>(c.getType()).getRank() != 1) return std::nullopt;
    for (Value in : c.getInputs()) {
      auto s = shape(in);
      if (!s) return std::nullopt;
      if (lin < (*s)[0]) return element(in, lin);
      lin -= (*s)[0];
    }
    return std::nullopt;
  }
  if (auto x = dyn_cast<tensor::ExtractSliceOp>(op)) {
    // A part of a shape vector (Shape's start / end).
    if (x.getSourceType().getRank() != 1 || x.getResultType().getRank() != 1)
      return std::nullopt;
    auto o = size(x.getMixedOffsets()[0]), st = size(x.getMixedStrides()[0]);
    if (!o || !st) return std::nullopt;
    return element(x.getSource(), *o + lin * *st);
  }
  if (auto f = dyn_cast<linalg::FillOp>(op)) return scalar(f.getInputs()[0]);
  if (auto g = dyn_cast<linalg::GenericOp>(op)) {
    if (g->getNumResults() != 1 || g.getNumReductionLoops() != 0) return std::nullopt;
    auto s = shape(g->getResult(0));
    AffineMap out = g.getIndexingMapsArray().back();
    if (!s || !out.isIdentity()) return std::nullopt;
    SmallVector<int64_t> loops(s->size());
    for (int64_t i = (int64_t)s->size() - 1; i >= 0; --i) {
      if ((*s)[i] <= 0) return std::nullopt;
      loops[i] = lin % (*s)[i];
      lin /= (*s)[i];
    }
    llvm::DenseMap<Value, int64_t> env;
    Block *b = g.getBody();
    for (OpOperand *o : g.getDpsInputOperands()) {
      BlockArgument a = b->getArgument(o->getOperandNumber());
      if (a.use_empty()) continue;
      auto is = shape(o->get());
      if (!is) return std::nullopt;
      SmallVector<int64_t> at = g.getMatchingIndexingMap(o).compose(loops);
      int64_t l = 0;
      for (size_t i = 0; i < at.size(); ++i) l = l * (*is)[i] + at[i];
      auto x = element(o->get(), l);
      if (!x) return std::nullopt;
      env[a] = *x;
    }
    for (Operation &bop : *b) {
      if (auto y = dyn_cast<linalg::YieldOp>(bop)) return lookup(y->getOperand(0), env);
      if (auto ix = dyn_cast<linalg::IndexOp>(bop)) {
        env[ix] = loops[ix.getDim()];
        continue;
      }
      if (auto ex = dyn_cast<tensor::ExtractOp>(bop)) {
        auto r = extract(ex, env);
        if (!r) return std::nullopt;
        env[ex] = *r;
        continue;
      }
      SmallVector<int64_t, 3> a;
      for (Value u : bop.getOperands()) {
        auto x = lookup(u, env);
        if (!x) return std::nullopt;
        a.push_back(*x);
      }
      auto r = apply(bop, a);
      if (!r || bop.getNumResults() != 1) return std::nullopt;
      env[bop.getResult(0)] = *r;
    }
  }
  return std::nullopt;
}

std::optional<int64_t> SizeSample::lookup(Value v, const llvm::DenseMap<Value, int64_t> &env) {
  if (auto it = env.find(v); it != env.end()) return it->second;
  if (isa<BlockArgument>(v)) return std::nullopt;
  return scalar(v);
}

std::optional<int64_t> SizeSample::extract(tensor::ExtractOp ex, const llvm::DenseMap<Value, int64_t> &env) {
  auto s = shape(ex.getTensor());
  if (!s) return std::nullopt;
  int64_t l = 0;
  for (auto [i, idx] : llvm::enumerate(ex.getIndices())) {
    auto x = lookup(idx, env);
    if (!x || *x < 0 || *x >= (*s)[i]) return std::nullopt;
    l = l * (*s)[i] + *x;
  }
  return element(ex.getTensor(), l);
}

std::optional<int64_t> SizeSample::computeScalar(Value v) {
  IntegerAttr ia;
  if (matchPattern(v, m_Constant(&ia))) return ia.getValue().getSExtValue();
  Operation *op = v.getDefiningOp();
  if (!op) return std::nullopt;
  if (auto d = dyn_cast<tensor::DimOp>(op)) {
    auto i = d.getConstantIndex();
    auto s = shape(d.getSource());
    if (!i || !s || *i < 0 || *i >= (int64_t)s->size()) return std::nullopt;
    return (*s)[*i];
  }
  if (auto ex = dyn_cast<tensor::ExtractOp>(op)) return extract(ex, llvm::DenseMap<Value, int64_t>());
  if (op->getNumResults() != 1 || op->getNumRegions() != 0) return std::nullopt;
  SmallVector<int64_t, 3> a;
  for (Value u : op->getOperands()) {
    auto x = scalar(u);
    if (!x) return std::nullopt;
    a.push_back(*x);
  }
  return apply(*op, a);
}

std::optional<int64_t> SizeSample::apply(Operation &op, ArrayRef<int64_t> a) {
  if (isa<arith::IndexCastOp, arith::IndexCastUIOp, arith::ExtSIOp, arith::ExtUIOp,
          arith::TruncIOp>(op))
    return a[0];
  if (isa<arith::AddIOp>(op)) return a[0] + a[1];
  if (isa<arith::SubIOp>(op)) return a[0] - a[1];
  if (isa<arith::MulIOp>(op)) return a[0] * a[1];
  if (isa<arith::DivSIOp, arith::DivUIOp, arith::FloorDivSIOp, arith::CeilDivSIOp,
          arith::RemSIOp>(op)) {
    if (a[1] == 0) return std::nullopt;
    if (isa<arith::RemSIOp>(op)) return a[0] % a[1];
    int64_t q = a[0] / a[1];
    bool exact = q * a[1] == a[0];
    if (isa<arith::FloorDivSIOp>(op) && !exact && ((a[0] < 0) != (a[1] < 0))) --q;
    if (isa<arith::CeilDivSIOp>(op) && !exact && ((a[0] < 0) == (a[1] < 0))) ++q;
    return q;
  }
  if (isa<arith::MinSIOp, arith::MinUIOp>(op)) return std::min(a[0], a[1]);
  if (isa<arith::MaxSIOp, arith::MaxUIOp>(op)) return std::max(a[0], a[1]);
  if (isa<arith::SelectOp>(op)) return a[0] ? a[1] : a[2];
  if (auto c = dyn_cast<arith::CmpIOp>(op)) {
    using P = arith::CmpIPredicate;
    switch (c.getPredicate()) {
    case P::eq: return a[0] == a[1];
    case P::ne: return a[0] != a[1];
    case P::slt: case P::ult: return a[0] < a[1];
    case P::sle: case P::ule: return a[0] <= a[1];
    case P::sgt: case P::ugt: return a[0] > a[1];
    case P::sge: case P::uge: return a[0] >= a[1];
    }
  }
  return std::nullopt;
}

std::string attentionRowsMatch(const FoundStack &stack, SizeSample &s0, SizeSample &s1) {
  for (Operation *op : stack.ops) {
    auto a = dyn_cast<CausalAttentionOp>(op);
    if (!a) continue;
    for (SizeSample *s : {&s0, &s1}) {
      auto in = s->shape(stack.input);
      for (Value x : {a.getQ(), a.getK(), a.getV()}) {
        auto q = s->shape(x);
        if (!in || !q || q->size() != 4 || (*q)[0] != (*in)[0] || (*q)[1] != (*in)[1])
          return nodeOf(op) + " does not attend over [batch, positions, heads, head_dim] of "
                              "the stack's input (heads merged into the batch axis?)";
      }
    }
  }
  return "";
}

} // namespace raise_structure
} // namespace photon
} // namespace mlir
