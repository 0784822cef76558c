//===- Lowering.h - the builders of convert-photon-to-linalg -----*- C++ -*-===//
//
// The upstream IR that convert-photon-to-linalg emits for each photon op, as builders its
// OpConversionPatterns (ConvertPhotonToLinalg.cpp) call on the adaptor's converted
// operands: `Lowering` for the ops on tensors (linalg generics, tensor reshapes;
// TensorLowering.cpp) and the cache ops' memref loops over the paged block pool
// (CacheLowering.cpp). Internal to lib/Conversion.
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_LIB_CONVERSION_LOWERING_H
#define PHOTON_LIB_CONVERSION_LOWERING_H

#include "photon/Conversion/Passes.h"
#include "photon/Dialect/PhotonOps.h"

#include "mlir/Dialect/Utils/StructuredOpsUtils.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/Transforms/DialectConversion.h"

#include <optional>

namespace mlir {
namespace photon {
namespace conversion {

using IT = utils::IteratorType;

/// Contractions may be reassociated (vectorized reductions) and fused into FMAs; the
/// result stays within the 1e-4 relative error the end-to-end tests bound.
inline constexpr arith::FastMathFlags kFM =
    arith::FastMathFlags::reassoc | arith::FastMathFlags::contract;

/// A q4 weight (docs/artifact.md, "Weight formats") from its byte `p` (i8), scale `d` (f16)
/// and k index `k`: (nibble - 8) * d, the high nibble for k mod 32 >= 16. photon-matmul-kernels
/// matches exactly this sequence (MatmulMatch.h, matchDequantMatmulT).
Value dequantQ4(OpBuilder &b, Location l, Value p, Value d, Value k);

/// Builders of the tensor-level lowerings at one location.
struct Lowering {
  OpBuilder &b;
  Location loc;

  Value cIdx(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }
  Value cF32(double v) {
    return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(static_cast<float>(v)));
  }
  OpFoldResult dim(Value t, int64_t i) { return tensor::getMixedSize(b, loc, t, i); }
  Value dimV(Value t, int64_t i) {
    return getValueOrCreateConstantIndexOp(b, loc, dim(t, i));
  }
  RankedTensorType rtt(Value v) { return cast<RankedTensorType>(v.getType()); }

  /// tensor.empty of `shape` (static entries from `type`, dynamic ones from `sizes`).
  Value empty(ArrayRef<OpFoldResult> sizes, Type elt) {
    return tensor::EmptyOp::create(b, loc, sizes, elt);
  }
  Value fill(Value init, double v) {
    Value c = cF32(v);
    return linalg::FillOp::create(b, loc, c, init).getResult(0);
  }
  AffineMap idMap(unsigned n) { return b.getMultiDimIdentityMap(n); }
  AffineMap map(unsigned n, ArrayRef<unsigned> dims) {
    SmallVector<AffineExpr> e;
    for (unsigned d : dims) e.push_back(b.getAffineDimExpr(d));
    return AffineMap::get(n, 0, e, b.getContext());
  }
  SmallVector<IT> iters(unsigned n, ArrayRef<unsigned> reductions = {}) {
    SmallVector<IT> it(n, IT::parallel);
    for (unsigned r : reductions) it[r] = IT::reduction;
    return it;
  }
  Value generic(Value init, ValueRange ins, ArrayRef<AffineMap> maps, ArrayRef<IT> its,
                function_ref<void(OpBuilder &, Location, ValueRange)> body) {
    auto g = linalg::GenericOp::create(b, loc, TypeRange{init.getType()}, ins, ValueRange{init},
                                       maps, its, body);
    return g.getResult(0);
  }


  /// [d0, ..., dn-2, K] -> [d0*...*dn-2, K]
  Value collapseTo2D(Value x);
  /// Inverse of collapseTo2D: y [M, N] back to like's leading dims + [N].
  Value expandFrom2D(Value y, Value like, RankedTensorType resultType);
  RankedTensorType with2D(RankedTensorType like, int64_t n);
  //===--------------------------------------------------------------------===//
  // Op lowerings (x [M, K] forms)
  //===--------------------------------------------------------------------===//
  /// If `w` is the widening generic WeightOpLowering emits for a reduced-precision weight
  /// (f16 / bf16: `extf`; q8: `sitofp(q) * extf(d[n, k floordiv 32])`), its inputs and
  /// maps (as (m, n, k) maps of a matmul) and the widening body.
  struct Dequant {
    SmallVector<Value> ins;
    SmallVector<AffineMap> maps;
    bool q4 = false;
  };
  std::optional<Dequant> matchDequant(Value w);
  /// y[m, n] = sum_k x[m, k] * w[n, k] (+ bias[n])
  Value matmulT(Value x2, Value w, Value bias);
  Value linear(Value x, Value w, Value bias, RankedTensorType resultType);
  /// x * rsqrt(mean(x^2) + eps) * w over the last dim.
  Value rmsNorm(Value x, Value w, double eps, RankedTensorType resultType);
  Value embedding(Value table, Value ids, RankedTensorType resultType);
  /// Rotate-half RoPE over x [B, M, H, hd]; position = offsets[b] + m.
  Value rope(Value x, Value offsets, double theta);
  /// Causal attention per batch row: q [B, M, H, hd], k/v [B, M, Hkv, hd].
  Value causalAttention(Value q, Value k, Value v, double scale, RankedTensorType resultType);
  Value swiglu(Value x, Value wg, Value wu, Value wd, RankedTensorType resultType);
  /// (x - mean) * rsqrt(mean((x - mean)^2) + eps) * w + bias over the last dim.
  Value layerNorm(Value x, Value w, Value bias, double eps, RankedTensorType resultType);
  /// 0.5 x (1 + erf(x / sqrt 2)), or with `tanhForm` 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
  Value gelu(Value x, bool tanhForm);
  /// out[b, m, :] = x[b, m, :] + table[min(offsets[b] + m, P - 1), :]
  Value positionEmbedding(Value x, Value table, Value offsets);
  /// [B, M, d] -> [B, M/size, size*d]
  Value chunk(Value x, int64_t size);
  /// out[b, m, :] = m == 0 ? start : x[b, m-1, :]
  Value shift(Value x, Value start);
};

//===----------------------------------------------------------------------===//
// Cache ops (CacheLowering.cpp)
//===----------------------------------------------------------------------===//

/// The buffers a `photon.cache_bind` bound a cache handle to (converted values).
struct CacheOperands {
  Value pool, table, lens;
  int64_t blockSize = 0;
};

/// The pool, table and lens that `cache` was bound to. The cache_bind itself is erased by
/// its pattern (it comes first in the block); this reads the original op, whose operands
/// are remapped through `rewriter` to their converted values.
FailureOr<CacheOperands> getCache(Operation *user, Value cache,
                                  ConversionPatternRewriter &rewriter);

/// kv_append of the (converted) `k` and `v` into the cache `c`.
LogicalResult lowerKvAppend(KvAppendOp op, Value k, Value v, FailureOr<CacheOperands> c,
                            OpBuilder &b, bool fused);

/// Streaming (online-softmax) attention of q [B, n, H, hd] over cache positions
/// 0 .. lens[b] + t: the target's kernel (AttentionLowering.h) when `fused` (and it
/// accepts the shapes), else one scalar loop nest per query row and head.
FailureOr<Value> lowerCachedAttention(CachedAttentionOp op, Value q,
                                      FailureOr<CacheOperands> c, OpBuilder &b, bool fused,
                                      int64_t parallelMinKeys);

} // namespace conversion
} // namespace photon
} // namespace mlir

#endif // PHOTON_LIB_CONVERSION_LOWERING_H
