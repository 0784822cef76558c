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
//   - RaiseRoPE: x * cos + rot(x) * sin, rot the rotate-half or interleaved rotation,
//     the tables evaluated against cos / sin(m theta^(-2j/hd)) -> photon.rope.
//   - FoldTransposePair: the transposes left between the raised ops' layouts compose.
//
// They prove element positions through the data-movement ops (transpose, slices, concat,
// reshapes, copies) by following sample elements to their source, and evaluate masks and
// tables element by element.
//
//===----------------------------------------------------------------------===//

#include "RaiseLocalAttention.h"

#include "photon/Dialect/PhotonOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/TypeUtilities.h"

#include "llvm/ADT/DenseMap.h"

#include <array>
#include <cmath>
#include <limits>
#include <optional>

namespace mlir {
namespace photon {
namespace {

using Idx = SmallVector<int64_t, 6>;

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

/// Single elements of tensors: where a data-movement op copied them from
/// (tensor.cast, linalg.transpose, static tensor.extract_slice, tensor.concat,
/// expand_shape, collapse_shape, tensor.reshape, a linalg.generic yielding its
/// one input: Expand and broadcasts), and the values of those computed from
/// constants and loop indices (linalg.generic bodies with linalg.index, arith
/// ops, tensor.extract, fills, dense constants, tensor.from_elements). Dynamic
/// sizes are evaluated where they are computed from constants (the shape
/// arithmetic of Expand, Reshape, Concat). Integers and booleans are held as
/// doubles.
struct Elements {
  int budget = 50000;
  /// The nesting of shape / at / value, bounded: sizes and elements computed through more
  /// than kMaxDepth ops (e.g. along a whole model's residual stream) are not evaluated.
  static constexpr int kMaxDepth = 200;
  int depth = 0;
  struct Nest {
    int &d;
    explicit Nest(int &d) : d(d) { ++d; }
    ~Nest() { --d; }
  };
  llvm::DenseMap<Value, SmallVector<int64_t>> shapes;
  /// While evaluating a size: a dynamic `tensor.dim` reads a sample value (two
  /// sets); a size is only taken if it comes out the same for both, i.e. it
  /// does not depend on the dynamic (batch, sequence) sizes, as in torch's `B *
  /// M * H * hd / (B * M * hd)`.
  int sampleSet = 0;

  template <typename F> std::optional<int64_t> size(F f) {
    int saved = sampleSet;
    sampleSet = 1;
    auto a = f();
    sampleSet = 2;
    auto b = a ? f() : std::nullopt;
    sampleSet = saved;
    if (!a || !b || *a != *b || *a < 0 || *a != std::floor(*a))
      return std::nullopt;
    return (int64_t)*a;
  }

  /// v's shape, with the dynamic sizes that evaluate to constants filled in.
  SmallVector<int64_t> shape(Value v) {
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

  bool inBounds(Value v, ArrayRef<int64_t> idx) {
    auto t = tensorTy(v);
    if (!t || t.getRank() != (int64_t)idx.size())
      return false;
    auto sh = shape(v);
    for (int64_t i = 0; i < t.getRank(); ++i)
      if (idx[i] < 0 || (!ShapedType::isDynamic(sh[i]) && idx[i] >= sh[i]))
        return false;
    return true;
  }

  std::optional<std::pair<Value, Idx>> moveBack(Value v, ArrayRef<int64_t> idx) {
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

  /// The value element `idx` of `v` is a copy of, following data-movement ops
  /// back. The elements element `idx` of `v` is a copy of, v's first, following
  /// data-movement ops back.
  SmallVector<std::pair<Value, Idx>> chain(Value v, Idx idx) {
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

  std::pair<Value, Idx> source(Value v, Idx idx) {
    for (int steps = 0; steps < 64; ++steps) {
      auto m = moveBack(v, idx);
      if (!m || !inBounds(m->first, m->second))
        break;
      v = m->first;
      idx = m->second;
    }
    return {v, idx};
  }

  std::optional<double> at(Value v, Idx idx) {
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

  /// A scalar computed outside a body: constants, and arith ops and
  /// tensor.extract of them.
  std::optional<double> value(Value v) {
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

private:
  /// A scalar read by a body: a body value, a constant, or a value computed
  /// outside.
  std::optional<double> scalar(Value v, const llvm::DenseMap<Value, double> &env) {
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

  std::optional<double> body(Block *b, ArrayRef<int64_t> loops,
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

  std::optional<double> apply(Operation &op, ArrayRef<double> a) {
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
};

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

/// The generic's input read by body value `a` (a block argument of an input),
/// with its map.
struct Read {
  Value tensor;
  AffineMap map;
  std::optional<double> scalar; // a scalar constant (a splat, a one-element tensor, a scalar)
};

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
/// where the mask holds them; batch and head indices 0 and 1.
bool causalMasks(ArrayRef<MaskTerm> masks, RankedTensorType st) {
  if (masks.empty())
    return false;
  int64_t r = st.getRank();
  SmallVector<int64_t> pos;
  for (int64_t i = 0; i < 12; ++i)
    pos.push_back(i);
  for (int64_t c : {100, 3000})
    for (int64_t d = -1; d <= 1; ++d)
      pos.push_back(c + d);
  Elements ev;
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
/// 1e-4 relative), every value at positions 0-100 checked against it.
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
      // The heads (the axes after the first other one) static when merged.
      SmallVector<int64_t> perm;
      for (int64_t l = 0; l + 1 < r; ++l)
        if (l != s)
          perm.push_back(l);
      perm.insert(perm.begin() + 1, s);
      perm.push_back(r - 1);
      if (r == 5 && (rt.isDynamicDim(perm[2]) || rt.isDynamicDim(perm[3])))
        continue;
      SmallVector<int64_t> inv(r);
      for (int64_t i = 0; i < r; ++i)
        inv[perm[i]] = i;
      Location loc = g.getLoc();
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
      if (*interleaved)
        xt = interleave(rw, loc, xt, false);
      Value y = RoPEOp::create(rw, loc, xt, Value(), (float)*theta).getResult();
      if (*interleaved)
        y = interleave(rw, loc, y, true);
      if (r == 5)
        y = tensor::ExpandShapeOp::create(rw, loc, xtt, y,
                                          SmallVector<ReassociationIndices>{{0}, {1}, {2, 3}, {4}});
      if (r == 3)
        y = tensor::CollapseShapeOp::create(rw, loc, y,
                                            SmallVector<ReassociationIndices>{{0}, {1, 2}, {3}});
      rw.replaceOp(g, transposed(rw, loc, y, inv));
      return success();
    }
    return failure();
  }

  /// theta, if cos / sin read at (position m, column i) are cos / sin(m theta^(-2j/hd)),
  /// j = i / 2 (interleaved) or i mod hd/2.
  static std::optional<double> thetaOf(const Read &cosT, const Read &sinT, int64_t r, int64_t s,
                                       int64_t hd, bool interleaved) {
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
    for (int64_t m : {0, 1, 2, 3, 7, 11, 50, 100})
      for (int64_t i = 0; i < hd; ++i) {
        int64_t j = interleaved ? i / 2 : i % (hd / 2);
        double f = std::pow(theta, -2.0 * (double)j / (double)hd);
        auto c = at(cosT, m, i), sn = at(sinT, m, i);
        if (!c || !sn || std::fabs(*c - std::cos(m * f)) > 1e-4 ||
            std::fabs(*sn - std::sin(m * f)) > 1e-4)
          return std::nullopt;
      }
    return theta;
  }
};

/// linalg.transpose of a linalg.transpose: one transpose, or none (the patterns above
/// leave such pairs between the layouts of the ops they raise).
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

void populateRaiseLocalAttentionPatterns(RewritePatternSet &patterns) {
  patterns.add<RaiseCausalAttention, RaiseAttentionGQA, RaiseRoPE, FoldTransposePair>(
      patterns.getContext());
}

} // namespace photon
} // namespace mlir
