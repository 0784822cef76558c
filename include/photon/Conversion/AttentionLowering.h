//===- AttentionLowering.h - target kernels for the attention ops -*- C++ -*-===//
//
// convert-photon-to-linalg is target-neutral: it lowers causal/bounded attention, the
// cached attention over the paged cache and kv_append to linalg generics and scalar loop
// nests that any code generator accepts. A target with better kernels for these ops (the
// CPU's fused, vectorized online-softmax kernels in lib/Codegen/CPU/AttentionKernels.cpp)
// registers an AttentionKernelProvider; the conversion then asks it first for each op
// (when its `fused-attention` option is on) and keeps the generic lowering wherever the
// provider declines (returns failure without emitting anything).
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_CONVERSION_ATTENTIONLOWERING_H
#define PHOTON_CONVERSION_ATTENTIONLOWERING_H

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/Support/LLVM.h"

namespace mlir {
namespace photon {

/// The paged cache of a `photon.cache_bind` as the lowering sees it: pool
/// [NB, layers, 2, bs, Hkv, hd], table i32 [B, MB], lens i32 [B].
struct PagedCache {
  Value pool, table, lens;
  int64_t blockSize = 0;
};

/// Kernels a target supplies for the attention ops. Each either emits the complete
/// lowering of its op at the builder's insertion point or returns failure having emitted
/// nothing.
class AttentionKernelProvider {
public:
  virtual ~AttentionKernelProvider();
  /// Causal attention (and bounded attention, causal inside each window row):
  /// q [B, M, H, hd], k/v [B, M, Hkv, hd] -> `resultType`.
  virtual FailureOr<Value> causal(OpBuilder &b, Location loc, Value q, Value k, Value v,
                                  double scale, RankedTensorType resultType) const = 0;
  /// Cached attention: query t of sequence b over cache positions 0 .. lens[b] + t of
  /// `layer`. `parallelMinKeys` > 0 asks for a parallel decode over at least that many keys.
  virtual FailureOr<Value> cached(OpBuilder &b, Location loc, const PagedCache &cache, Value q,
                                  int64_t layer, double scale,
                                  int64_t parallelMinKeys) const = 0;
  /// kv_append of k/v [B, n, Hkv, hd] at positions lens[b] + t of `layer`.
  virtual LogicalResult kvAppend(OpBuilder &b, Location loc, const PagedCache &cache, Value k,
                                 Value v, int64_t layer) const = 0;
};

/// Registers the provider convert-photon-to-linalg uses (nullptr: none, every op takes the
/// generic lowering). The provider must outlive every conversion run; registration is
/// process-wide, like pass registration (Codegen/CPU's registerPhotonCPUCodegen sets it).
void setAttentionKernelProvider(const AttentionKernelProvider *provider);
const AttentionKernelProvider *getAttentionKernelProvider();

} // namespace photon
} // namespace mlir

#endif // PHOTON_CONVERSION_ATTENTIONLOWERING_H
