//===- RaiseLocalEval.cpp - photon-raise-local: element evaluation --------===//
//
// The helpers the attention and RoPE patterns of photon-raise-local share
// (RaiseLocalEval.h): Elements proves element positions through the data-movement
// ops (transpose, slices, concat, reshapes, copies) by following sample elements to
// their source, and evaluates masks, tables and dynamic sizes element by element
// (constants, linalg.generic bodies over loop indices, the shape arithmetic of
// Expand, Reshape and Concat); the views of the converters' generics and the
// transposes the patterns' layouts are built with.
//
//===----------------------------------------------------------------------===//

#include "RaiseLocalEval.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Matchers.h"

#include <cmath>
#include <limits>
#include <optional>

namespace mlir {
namespace photon {
namespace raise_local {

std::optional<double> floatConstant(Value v) {
  FloatAttr f;
  if (matchPattern(v, m_Constant(&f)))
    return f.getValueAsDouble();
  DenseFPElementsAttr d;
  if (matchPattern(v, m_Constant(&d)) && d.isSplat())
    return d.getSplatValue<APFloat>().convertToDouble();
  return std::nullopt;
}

RankedTensorType tensorTy(Value v) { return dyn_cast<RankedTensorType>(v.getType()); }

//===----------------------------------------------------------------------===//
// Following elements through data-movement ops
//===----------------------------------------------------------------------===//

namespace {

/// Row-major position of `idx` in `sizes` (the first size is not needed; a
/// dynamic size is only allowed where the index before it is 0).
std::optional<int64_t> linearize(ArrayRef<int64_t> idx, ArrayRef<int64_t> sizes) {
  int64_t lin = 0;
  for (size_t j = 0; j < idx.size(); ++j) {
    if (j > 0) {
      if (ShapedType::isDynamic(sizes[j])) {
        if (lin != 0)
          return std::nullopt;
      } else {
        lin *= sizes[j];
      }
    }
    lin += idx[j];
  }
  return lin;
}

/// The inverse of linearize into `sizes`: static sizes but the first, or one
/// dynamic size among unit sizes.
std::optional<Idx> delinearize(int64_t lin, ArrayRef<int64_t> sizes) {
  Idx out(sizes.size(), 0);
  int dyn = -1;
  for (size_t j = 0; j < sizes.size(); ++j)
    if (ShapedType::isDynamic(sizes[j]))
      dyn = j;
  if (dyn > 0) {
    for (size_t j = 0; j < sizes.size(); ++j)
      if ((int)j != dyn && sizes[j] != 1)
        return std::nullopt;
    out[dyn] = lin;
    return out;
  }
  for (int64_t j = sizes.size() - 1; j > 0; --j) {
    out[j] = lin % sizes[j];
    lin /= sizes[j];
  }
  if (!sizes.empty())
    out[0] = lin;
  return out;
}

/// Groups of a reshape between two shapes: runs of equal static products, a
/// dynamic size matched only by the dynamic size at the same place of the other
/// shape (torch's `Reshape(x, [B, M, ...])` keeps the dynamic batch and
/// sequence axes).
std::optional<SmallVector<std::pair<ReassociationIndices, ReassociationIndices>>>
reshapeGroups(ArrayRef<int64_t> src, ArrayRef<int64_t> dst) {
  SmallVector<std::pair<ReassociationIndices, ReassociationIndices>> groups;
  size_t i = 0, j = 0;
  while (i < src.size() && j < dst.size()) {
    ReassociationIndices gs{(int64_t)i}, gd{(int64_t)j};
    if (ShapedType::isDynamic(src[i]) || ShapedType::isDynamic(dst[j])) {
      if (!(ShapedType::isDynamic(src[i]) && ShapedType::isDynamic(dst[j])))
        return std::nullopt;
    } else {
      int64_t ps = src[i], pd = dst[j];
      while (ps != pd) {
        if (ps < pd) {
          if (++i >= src.size() || ShapedType::isDynamic(src[i]))
            return std::nullopt;
          ps *= src[i];
          gs.push_back(i);
        } else {
          if (++j >= dst.size() || ShapedType::isDynamic(dst[j]))
            return std::nullopt;
          pd *= dst[j];
          gd.push_back(j);
        }
      }
    }
    groups.push_back({gs, gd});
    ++i, ++j;
  }
  // Trailing unit sizes join the last group.
  for (; i < src.size(); ++i) {
    if (src[i] != 1 || groups.empty())
      return std::nullopt;
    groups.back().first.push_back(i);
  }
  for (; j < dst.size(); ++j) {
    if (dst[j] != 1 || groups.empty())
      return std::nullopt;
    groups.back().second.push_back(j);
  }
  return groups;
}

} // namespace

SmallVector<int64_t> Elements::shape(Value v) {
  if (auto it = shapes.find(v); it != shapes.end())
    return it->second;
  auto t = tensorTy(v);
  if (depth > kMaxDepth)
    return SmallVector<int64_t>(t.getShape());
  Nest nest(depth);
  SmallVector<int64_t> sh(t.getShape());
  shapes[v] = sh; // no recursion through cycles
  Operation *op = v.getDefiningOp();
  auto fromSizes = [&](ArrayRef<OpFoldResult> sizes) {
    for (size_t i = 0; i < sh.size() && i < sizes.size(); ++i) {
      if (!ShapedType::isDynamic(sh[i]))
        continue;
      if (auto c = getConstantIntValue(sizes[i]))
        sh[i] = *c;
      else if (auto e = size([&] { return value(cast<Value>(sizes[i])); }))
        sh[i] = *e;
    }
  };
  if (!op) {
  } else if (auto c = dyn_cast<tensor::CastOp>(op)) {
    auto s = shape(c.getSource());
    for (size_t i = 0; i < sh.size(); ++i)
      if (ShapedType::isDynamic(sh[i]))
        sh[i] = s[i];
  } else if (auto e = dyn_cast<tensor::EmptyOp>(op)) {
    fromSizes(e.getMixedSizes());
  } else if (auto d = dyn_cast<DestinationStyleOpInterface>(op)) {
    if (d.getNumDpsInits() == op->getNumResults())
      for (auto [i, r] : llvm::enumerate(op->getResults()))
        if (r == v) {
          auto s = shape(d.getDpsInits()[i]);
          for (size_t j = 0; j < sh.size(); ++j)
            if (ShapedType::isDynamic(sh[j]))
              sh[j] = s[j];
        }
  } else if (auto x = dyn_cast<tensor::ExtractSliceOp>(op)) {
    SmallVector<OpFoldResult> sizes;
    llvm::SmallBitVector dropped = x.getDroppedDims();
    for (auto [i, sz] : llvm::enumerate(x.getMixedSizes()))
      if (!dropped.test(i))
        sizes.push_back(sz);
    fromSizes(sizes);
  } else if (auto e = dyn_cast<tensor::ExpandShapeOp>(op)) {
    fromSizes(e.getMixedOutputShape());
  } else if (auto c = dyn_cast<tensor::ConcatOp>(op)) {
    int64_t d = c.getDim(), total = 0;
    for (Value in : c.getInputs()) {
      auto s = shape(in);
      for (size_t i = 0; i < sh.size(); ++i)
        if ((int64_t)i != d && ShapedType::isDynamic(sh[i]))
          sh[i] = s[i];
      total = ShapedType::isDynamic(s[d]) || ShapedType::isDynamic(total) ? ShapedType::kDynamic
                                                                          : total + s[d];
    }
    if (ShapedType::isDynamic(sh[d]))
      sh[d] = total;
  } else if (auto r = dyn_cast<tensor::ReshapeOp>(op)) {
    for (size_t i = 0; i < sh.size(); ++i)
      if (ShapedType::isDynamic(sh[i]))
        if (auto e = size([&] { return at(r.getShape(), Idx{(int64_t)i}); }))
          sh[i] = *e;
  }
  shapes[v] = sh;
  return sh;
}

bool Elements::inBounds(Value v, ArrayRef<int64_t> idx) {
  auto t = tensorTy(v);
  if (!t || t.getRank() != (int64_t)idx.size())
    return false;
  auto sh = shape(v);
  for (int64_t i = 0; i < t.getRank(); ++i)
    if (idx[i] < 0 || (!ShapedType::isDynamic(sh[i]) && idx[i] >= sh[i]))
      return false;
  return true;
}

std::optional<std::pair<Value, Idx>> Elements::moveBack(Value v, ArrayRef<int64_t> idx) {
  Operation *op = v.getDefiningOp();
  if (!op)
    return std::nullopt;
  if (auto c = dyn_cast<tensor::CastOp>(op))
    return std::make_pair(c.getSource(), Idx(idx));
  if (auto t = dyn_cast<linalg::TransposeOp>(op)) {
    ArrayRef<int64_t> perm = t.getPermutation();
    Idx src(idx.size());
    for (size_t i = 0; i < perm.size(); ++i)
      src[perm[i]] = idx[i];
    return std::make_pair(t.getInput(), src);
  }
  if (auto s = dyn_cast<tensor::ExtractSliceOp>(op)) {
    // Offsets and strides static, or evaluated like sizes (Slice starts from Shape).
    SmallVector<int64_t> offs, strides;
    for (auto [list, mixed] : {std::make_pair(&offs, s.getMixedOffsets()),
                               std::make_pair(&strides, s.getMixedStrides())})
      for (OpFoldResult f : mixed) {
        if (auto c = getConstantIntValue(f))
          list->push_back(*c);
        else if (auto e = size([&] { return value(cast<Value>(f)); }))
          list->push_back(*e);
        else
          return std::nullopt;
      }
    llvm::SmallBitVector dropped = s.getDroppedDims();
    Idx src;
    size_t k = 0;
    for (size_t d = 0; d < offs.size(); ++d) {
      if (dropped.test(d)) {
        src.push_back(offs[d]);
        continue;
      }
      if (k >= idx.size())
        return std::nullopt;
      src.push_back(offs[d] + idx[k++] * strides[d]);
    }
    return std::make_pair(s.getSource(), src);
  }
  if (auto c = dyn_cast<tensor::ConcatOp>(op)) {
    int64_t d = c.getDim(), at = idx[d];
    for (Value in : c.getInputs()) {
      int64_t n = shape(in)[d];
      if (ShapedType::isDynamic(n)) {
        if (in != c.getInputs().back())
          return std::nullopt;
        n = std::numeric_limits<int64_t>::max();
      }
      if (at < n) {
        Idx src(idx);
        src[d] = at;
        return std::make_pair(in, src);
      }
      at -= n;
    }
    return std::nullopt;
  }
  if (auto e = dyn_cast<tensor::ExpandShapeOp>(op)) {
    SmallVector<int64_t> sizes = shape(e.getResult());
    Idx src;
    for (const ReassociationIndices &g : e.getReassociationIndices()) {
      Idx part;
      SmallVector<int64_t> sz;
      for (int64_t j : g)
        part.push_back(idx[j]), sz.push_back(sizes[j]);
      auto lin = linearize(part, sz);
      if (!lin)
        return std::nullopt;
      src.push_back(*lin);
    }
    return std::make_pair(e.getSrc(), src);
  }
  if (auto c = dyn_cast<tensor::CollapseShapeOp>(op)) {
    SmallVector<int64_t> sizes = shape(c.getSrc());
    Idx src;
    auto groups = c.getReassociationIndices();
    for (size_t k = 0; k < groups.size(); ++k) {
      SmallVector<int64_t> sz;
      for (int64_t j : groups[k])
        sz.push_back(sizes[j]);
      auto part = delinearize(idx[k], sz);
      if (!part)
        return std::nullopt;
      src.append(part->begin(), part->end());
    }
    return std::make_pair(c.getSrc(), src);
  }
  if (auto r = dyn_cast<tensor::ReshapeOp>(op)) {
    SmallVector<int64_t> ss = shape(r.getSource()), ds = shape(r.getResult());
    auto groups = reshapeGroups(ss, ds);
    if (!groups)
      return std::nullopt;
    Idx src(ss.size(), 0);
    for (auto &[gs, gd] : *groups) {
      Idx part;
      SmallVector<int64_t> dsz, ssz;
      for (int64_t j : gd)
        part.push_back(idx[j]), dsz.push_back(ds[j]);
      for (int64_t j : gs)
        ssz.push_back(ss[j]);
      auto lin = linearize(part, dsz);
      auto out = lin ? delinearize(*lin, ssz) : std::nullopt;
      if (!out)
        return std::nullopt;
      for (size_t k = 0; k < gs.size(); ++k)
        src[gs[k]] = (*out)[k];
    }
    return std::make_pair(r.getSource(), src);
  }
  if (auto g = dyn_cast<linalg::GenericOp>(op)) {
    if (g->getNumResults() != 1 || g.getNumDpsInputs() != 1 || g.getNumReductionLoops() != 0)
      return std::nullopt;
    Block *b = g.getBody();
    if (b->getOperations().size() != 1 || b->getTerminator()->getOperand(0) != b->getArgument(0))
      return std::nullopt;
    AffineMap out = g.getIndexingMapsArray().back();
    if (!out.isIdentity())
      return std::nullopt;
    AffineMap in = g.getMatchingIndexingMap(g.getDpsInputOperand(0));
    SmallVector<int64_t> src = in.compose(SmallVector<int64_t>(idx.begin(), idx.end()));
    return std::make_pair(g.getDpsInputs()[0], Idx(src.begin(), src.end()));
  }
  return std::nullopt;
}

SmallVector<std::pair<Value, Idx>> Elements::chain(Value v, Idx idx) {
  SmallVector<std::pair<Value, Idx>> out{{v, idx}};
  for (int steps = 0; steps < 64; ++steps) {
    auto m = moveBack(v, idx);
    if (!m || !inBounds(m->first, m->second))
      break;
    v = m->first;
    idx = m->second;
    out.push_back({v, idx});
  }
  return out;
}

std::pair<Value, Idx> Elements::source(Value v, Idx idx) {
  for (int steps = 0; steps < 64; ++steps) {
    auto m = moveBack(v, idx);
    if (!m || !inBounds(m->first, m->second))
      break;
    v = m->first;
    idx = m->second;
  }
  return {v, idx};
}

std::optional<double> Elements::at(Value v, Idx idx) {
  if (--budget < 0 || depth > kMaxDepth || !inBounds(v, idx))
    return std::nullopt;
  Nest nest(depth);
  if (auto m = moveBack(v, idx))
    return at(m->first, m->second);
  DenseElementsAttr d;
  if (matchPattern(v, m_Constant(&d))) {
    auto t = tensorTy(v);
    int64_t lin = 0;
    if (!d.isSplat()) {
      for (int64_t i = 0; i < t.getRank(); ++i)
        lin = lin * t.getDimSize(i) + idx[i];
    }
    if (auto fd = dyn_cast<DenseFPElementsAttr>(d))
      return (fd.isSplat() ? fd.getSplatValue<APFloat>() : *(fd.value_begin<APFloat>() + lin))
          .convertToDouble();
    if (auto id = dyn_cast<DenseIntElementsAttr>(d)) {
      APInt a = id.isSplat() ? id.getSplatValue<APInt>() : *(id.value_begin<APInt>() + lin);
      return a.getBitWidth() == 1 ? (double)a.getZExtValue() : (double)a.getSExtValue();
    }
    return std::nullopt;
  }
  if (auto fe = v.getDefiningOp<tensor::FromElementsOp>()) {
    auto t = tensorTy(v);
    int64_t lin = 0;
    for (int64_t i = 0; i < t.getRank(); ++i)
      lin = lin * t.getDimSize(i) + idx[i];
    return value(fe.getElements()[lin]);
  }
  if (auto f = v.getDefiningOp<linalg::FillOp>())
    return scalar(f.getInputs()[0], llvm::DenseMap<Value, double>());
  auto g = v.getDefiningOp<linalg::GenericOp>();
  if (!g || g->getNumResults() != 1 || g.getNumReductionLoops() != 0)
    return std::nullopt;
  AffineMap out = g.getIndexingMapsArray().back();
  if (!out.isPermutation())
    return std::nullopt;
  SmallVector<int64_t> loops(idx.size());
  for (unsigned i = 0; i < out.getNumResults(); ++i)
    loops[out.getDimPosition(i)] = idx[i];
  llvm::DenseMap<Value, double> env;
  Block *b = g.getBody();
  for (OpOperand &o : g->getOpOperands()) {
    BlockArgument a = b->getArgument(o.getOperandNumber());
    if (a.use_empty())
      continue;
    AffineMap m = g.getMatchingIndexingMap(&o);
    SmallVector<int64_t> at = m.compose(loops);
    auto val = isa<RankedTensorType>(o.get().getType())
                   ? this->at(o.get(), Idx(at.begin(), at.end()))
                   : scalar(o.get(), llvm::DenseMap<Value, double>());
    if (!val)
      return std::nullopt;
    env[a] = *val;
  }
  return body(b, loops, env);
}

std::optional<double> Elements::value(Value v) {
  if (--budget < 0 || depth > kMaxDepth)
    return std::nullopt;
  Nest nest(depth);
  Attribute a;
  if (matchPattern(v, m_Constant(&a)))
    return scalar(v, llvm::DenseMap<Value, double>());
  Operation *op = v.getDefiningOp();
  if (auto d = dyn_cast_or_null<tensor::DimOp>(op)) {
    auto i = value(d.getIndex());
    auto sh = i ? shape(d.getSource()) : SmallVector<int64_t>();
    if (!i || *i < 0 || *i >= (double)sh.size())
      return std::nullopt;
    if (!ShapedType::isDynamic(sh[(size_t)*i]))
      return (double)sh[(size_t)*i];
    if (sampleSet == 0)
      return std::nullopt;
    if (auto v = graphSamples ? sampledDim(d, sampleSet) : std::nullopt)
      return (double)*v;
    return sampleSet == 1 ? 3 + 2 * *i : 7 + 4 * *i;
  }
  if (!op || op->getNumResults() != 1 || op->getNumRegions() != 0)
    return std::nullopt;
  SmallVector<double, 3> args;
  for (Value u : op->getOperands()) {
    if (isa<RankedTensorType>(u.getType())) {
      args.push_back(0);
      continue;
    }
    auto d = value(u);
    if (!d)
      return std::nullopt;
    args.push_back(*d);
  }
  return apply(*op, args);
}

std::optional<int64_t> Elements::sampledDim(tensor::DimOp d, int set) {
  auto f = d->getParentOfType<func::FuncOp>();
  auto i = d.getConstantIndex();
  if (!f || !i || f.getNumArguments() < 1)
    return std::nullopt;
  auto ids = dyn_cast<RankedTensorType>(f.getArgument(0).getType());
  if (!ids || ids.getRank() != 2 || !ids.getElementType().isSignlessInteger())
    return std::nullopt;
  if (samplesOf != f.getOperation()) {
    samples[0] = std::make_shared<raise_structure::SizeSample>(f, 0);
    samples[1] = std::make_shared<raise_structure::SizeSample>(f, 1);
    samplesOf = f.getOperation();
  }
  auto sh = samples[set - 1]->shape(d.getSource());
  if (!sh || *i < 0 || *i >= (int64_t)sh->size())
    return std::nullopt;
  return (*sh)[*i];
}

std::optional<double> Elements::scalar(Value v, const llvm::DenseMap<Value, double> &env) {
  if (auto it = env.find(v); it != env.end())
    return it->second;
  Attribute a;
  if (!matchPattern(v, m_Constant(&a)))
    return isa<BlockArgument>(v) ? std::nullopt : value(v);
  if (auto f = dyn_cast<FloatAttr>(a))
    return f.getValueAsDouble();
  if (auto i = dyn_cast<IntegerAttr>(a))
    return i.getType().isInteger(1) ? (double)i.getValue().getZExtValue()
                                    : (double)i.getValue().getSExtValue();
  return std::nullopt;
}

std::optional<double> Elements::body(Block *b, ArrayRef<int64_t> loops,
                                     llvm::DenseMap<Value, double> &env) {
  for (Operation &op : b->getOperations()) {
    if (auto y = dyn_cast<linalg::YieldOp>(op))
      return scalar(y->getOperand(0), env);
    if (auto ix = dyn_cast<linalg::IndexOp>(op)) {
      env[ix] = (double)loops[ix.getDim()];
      continue;
    }
    if (isa<arith::ConstantOp>(op)) {
      auto c = scalar(op.getResult(0), env);
      if (!c)
        return std::nullopt;
      env[op.getResult(0)] = *c;
      continue;
    }
    SmallVector<double, 3> a;
    for (Value u : op.getOperands()) {
      if (isa<RankedTensorType>(u.getType())) {
        a.push_back(0); // tensor.extract's source
        continue;
      }
      auto d = scalar(u, env);
      if (!d)
        return std::nullopt;
      a.push_back(*d);
    }
    std::optional<double> r = apply(op, a);
    if (!r)
      return std::nullopt;
    env[op.getResult(0)] = *r;
  }
  return std::nullopt;
}

std::optional<double> Elements::apply(Operation &op, ArrayRef<double> a) {
  auto i = [&](int k) { return (int64_t)a[k]; };
  if (isa<arith::AddFOp, arith::AddIOp>(op))
    return a[0] + a[1];
  if (isa<arith::SubFOp, arith::SubIOp>(op))
    return a[0] - a[1];
  if (isa<arith::MulFOp, arith::MulIOp>(op))
    return a[0] * a[1];
  if (isa<arith::DivFOp>(op))
    return a[0] / a[1];
  if (isa<arith::NegFOp>(op))
    return -a[0];
  if (isa<arith::MaximumFOp, arith::MaxNumFOp, arith::MaxSIOp>(op))
    return std::max(a[0], a[1]);
  if (isa<arith::MinimumFOp, arith::MinNumFOp, arith::MinSIOp>(op))
    return std::min(a[0], a[1]);
  if (isa<arith::DivSIOp>(op))
    return i(1) ? std::optional<double>(i(0) / i(1)) : std::nullopt;
  if (isa<arith::RemSIOp>(op))
    return i(1) ? std::optional<double>(i(0) % i(1)) : std::nullopt;
  if (isa<arith::AndIOp>(op))
    return (double)(i(0) & i(1));
  if (isa<arith::OrIOp>(op))
    return (double)(i(0) | i(1));
  if (isa<arith::XOrIOp>(op)) {
    int64_t r = i(0) ^ i(1);
    return op.getResult(0).getType().isInteger(1) ? (double)(r & 1) : (double)r;
  }
  if (auto s = dyn_cast<arith::SelectOp>(op))
    return a[0] != 0 ? a[1] : a[2];
  if (auto c = dyn_cast<arith::CmpIOp>(op)) {
    int64_t x = i(0), y = i(1);
    switch (c.getPredicate()) {
    case arith::CmpIPredicate::eq:
      return x == y;
    case arith::CmpIPredicate::ne:
      return x != y;
    case arith::CmpIPredicate::slt:
      return x < y;
    case arith::CmpIPredicate::sle:
      return x <= y;
    case arith::CmpIPredicate::sgt:
      return x > y;
    case arith::CmpIPredicate::sge:
      return x >= y;
    case arith::CmpIPredicate::ult:
      return (uint64_t)x < (uint64_t)y;
    case arith::CmpIPredicate::ule:
      return (uint64_t)x <= (uint64_t)y;
    case arith::CmpIPredicate::ugt:
      return (uint64_t)x > (uint64_t)y;
    case arith::CmpIPredicate::uge:
      return (uint64_t)x >= (uint64_t)y;
    }
  }
  if (auto c = dyn_cast<arith::CmpFOp>(op)) {
    double x = a[0], y = a[1];
    bool unord = std::isnan(x) || std::isnan(y);
    switch (c.getPredicate()) {
    case arith::CmpFPredicate::OEQ:
      return !unord && x == y;
    case arith::CmpFPredicate::ONE:
      return !unord && x != y;
    case arith::CmpFPredicate::OGT:
      return !unord && x > y;
    case arith::CmpFPredicate::OGE:
      return !unord && x >= y;
    case arith::CmpFPredicate::OLT:
      return !unord && x < y;
    case arith::CmpFPredicate::OLE:
      return !unord && x <= y;
    case arith::CmpFPredicate::UEQ:
      return unord || x == y;
    case arith::CmpFPredicate::UNE:
      return unord || x != y;
    case arith::CmpFPredicate::UGT:
      return unord || x > y;
    case arith::CmpFPredicate::UGE:
      return unord || x >= y;
    case arith::CmpFPredicate::ULT:
      return unord || x < y;
    case arith::CmpFPredicate::ULE:
      return unord || x <= y;
    default:
      return std::nullopt;
    }
  }
  if (isa<arith::IndexCastOp, arith::SIToFPOp, arith::FPToSIOp, arith::ExtSIOp, arith::ExtFOp>(
          op))
    return isa<arith::FPToSIOp>(op) ? std::trunc(a[0]) : a[0];
  if (isa<arith::UIToFPOp, arith::ExtUIOp, arith::IndexCastUIOp>(op))
    return a[0] < 0 ? std::nullopt : std::optional<double>(a[0]);
  if (isa<math::CosOp>(op))
    return std::cos(a[0]);
  if (isa<math::SinOp>(op))
    return std::sin(a[0]);
  if (isa<math::ExpOp>(op))
    return std::exp(a[0]);
  if (isa<math::PowFOp>(op))
    return std::pow(a[0], a[1]);
  if (isa<arith::TruncFOp>(op))
    return (double)(float)a[0];
  if (auto t = dyn_cast<arith::TruncIOp>(op)) {
    unsigned w = t.getType().getIntOrFloatBitWidth();
    return w == 1 ? (double)(i(0) & 1) : (w >= 32 ? a[0] : std::optional<double>());
  }
  if (auto e = dyn_cast<tensor::ExtractOp>(op)) {
    Idx at;
    for (size_t k = 1; k < a.size(); ++k)
      at.push_back(i(k));
    return this->at(e.getTensor(), at);
  }
  return std::nullopt;
}

//===----------------------------------------------------------------------===//
// Views of the converters' ops
//===----------------------------------------------------------------------===//

/// An elementwise linalg.generic: one result, all loops parallel, identity
/// output map.
linalg::GenericOp elementwise(Value v) {
  auto g = v ? v.getDefiningOp<linalg::GenericOp>() : linalg::GenericOp();
  if (!g || g->getNumResults() != 1 || g.getNumDpsInits() != 1 || g.getNumReductionLoops() != 0 ||
      !g.getIndexingMapsArray().back().isIdentity())
    return {};
  return g;
}

/// The body ops of a generic, without the terminator.
SmallVector<Operation *> bodyOps(linalg::GenericOp g) {
  SmallVector<Operation *> ops;
  for (Operation &op : g.getBody()->without_terminator())
    ops.push_back(&op);
  return ops;
}

Value yielded(linalg::GenericOp g) { return g.getBody()->getTerminator()->getOperand(0); }

Read readOf(linalg::GenericOp g, Value a) {
  Read r;
  auto arg = dyn_cast<BlockArgument>(a);
  if (!arg) {
    if (a.getParentBlock() != g.getBody())
      r.scalar = floatConstant(a);
    return r;
  }
  if (arg.getOwner() != g.getBody() || arg.getArgNumber() >= (unsigned)g.getNumDpsInputs())
    return r;
  OpOperand *in = g.getDpsInputOperand(arg.getArgNumber());
  r.tensor = in->get();
  r.map = g.getMatchingIndexingMap(in);
  auto t = tensorTy(r.tensor);
  if (!t || (t.hasStaticShape() && t.getNumElements() == 1) || r.map.getNumResults() == 0)
    r.scalar = floatConstant(r.tensor);
  return r;
}

bool identityRead(const Read &r) { return r.tensor && r.map && r.map.isIdentity(); }

//===----------------------------------------------------------------------===//
// Layouts
//===----------------------------------------------------------------------===//

/// x transposed by `perm` (result axis i = x axis perm[i]); a transpose of a
/// transpose is composed, and an identity is no op.
Value transposed(PatternRewriter &rw, Location loc, Value x, ArrayRef<int64_t> perm) {
  SmallVector<int64_t> p(perm);
  if (auto t = x.getDefiningOp<linalg::TransposeOp>()) {
    ArrayRef<int64_t> inner = t.getPermutation();
    for (auto &e : p)
      e = inner[e];
    x = t.getInput();
  }
  bool id = true;
  for (size_t i = 0; i < p.size(); ++i)
    id &= p[i] == (int64_t)i;
  if (id)
    return x;
  SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(rw, loc, x), out;
  for (int64_t i : p)
    out.push_back(sizes[i]);
  Value init = tensor::EmptyOp::create(rw, loc, out, tensorTy(x).getElementType());
  return linalg::TransposeOp::create(rw, loc, x, init, p)->getResult(0);
}

} // namespace raise_local
} // namespace photon
} // namespace mlir
