//===- AttentionKernels.h - fused attention kernels (internal) --*- C++ -*-===//
//
// Fused, vectorized attention for convert-photon-to-linalg on the CPU (AttentionKernels.cpp,
// supplied to the conversion as its AttentionKernelProvider): an
// online-softmax loop over key blocks with no [M, M] scores tensor, vectorized over the
// head dimension, the G query heads of a KV head (and several query positions) sharing
// each K/V row load.
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_LIB_CODEGEN_CPU_ATTENTIONKERNELS_H
#define PHOTON_LIB_CODEGEN_CPU_ATTENTIONKERNELS_H

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/Support/LLVM.h"
#include "photon/Conversion/AttentionLowering.h"

namespace mlir {
namespace photon {

/// The f32 lanes the kernels use for head dimension `hd` (8, else 4), or 0 when `hd` is
/// not a multiple of 4 (the caller then keeps the unfused lowering).
int64_t attentionLanes(int64_t hd);

/// Fused causal attention (`photon.causal_attention`, and `photon.bounded_attention`,
/// which is causal inside each window row): q [B, M, H, hd], k/v [B, M, Hkv, hd] ->
/// [B, M, H, hd]. Fails (emitting nothing) when the shapes are not supported: hd and the
/// head counts must be static, Hkv must divide H and attentionLanes(hd) must be nonzero.
FailureOr<Value> emitFusedCausalAttention(OpBuilder &b, Location loc, Value q, Value k,
                                          Value v, double scale,
                                          RankedTensorType resultType);


/// Fused `photon.cached_attention`: query t of sequence b attends cache positions
/// 0 .. lens[b] + t of layer `layer`, one cache block at a time. Same support conditions
/// as emitFusedCausalAttention. With `parallelMinKeys` > 0, a decode over at least that many
/// cached keys (batch row 0's) runs its (batch row, kv head) pairs as an scf.parallel, as
/// prefill does.
FailureOr<Value> emitFusedCachedAttention(OpBuilder &b, Location loc, const PagedCache &cache,
                                          Value q, int64_t layer, double scale,
                                          int64_t parallelMinKeys = 0);

/// `photon.kv_append` with one vector copy per (sequence, position, kv head) row: writes
/// k/v [B, n, Hkv, hd] at positions lens[b] + t of layer `layer`. Fails (emitting
/// nothing) unless hd is a multiple of attentionLanes(hd) != 0.
LogicalResult emitVectorKvAppend(OpBuilder &b, Location loc, const PagedCache &cache, Value k,
                                 Value v, int64_t layer);

} // namespace photon
} // namespace mlir

#endif // PHOTON_LIB_CODEGEN_CPU_ATTENTIONKERNELS_H
