//===- Passes.td - photon to upstream MLIR -*- tablegen -*-===//
//
// The conversion of the photon dialect to upstream MLIR (linalg, tensor, arith, math, scf,
// memref), one conversion pattern per photon op. Target-neutral: the CPU's fused attention
// kernels are supplied by Codegen/CPU through photon/Conversion/AttentionLowering.h.
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_CONVERSION_PASSES
#define PHOTON_CONVERSION_PASSES

include "mlir/Pass/PassBase.td"

def ConvertPhotonToLinalg : Pass<"convert-photon-to-linalg", "::mlir::ModuleOp"> {
  let summary = "Lower every photon op to linalg, tensor, arith, math, scf and memref";
  let description = [{
    Rewrites the photon ops of docs/ir-contract.md into upstream dialects on tensors:

    - Every function with a body gets the weights blob as a new first argument
      (`memref<?xi8>`, the ABI's argument 0) and every call passes it on.
      `photon.weight` becomes a `memref.view` of the blob at the tensor's byte offset
      (from the blob's index, `weights-file`, or an `offset` attribute on the op) and a
      read-only `bufferization.to_tensor`.
    - `embedding`, `position_embedding` (positions past the table clamped to its last
      row), `rms_norm`, `layer_norm`, `linear`, `gelu`, `lm_head`, `rope`, `swiglu`,
      `chunk`, `chunk_compress`, `expand`, `shift` become `linalg.generic` ops (plus
      reshapes).
    - `causal_attention` and `bounded_attention` (causal inside each window) become a
      fused kernel (`fused-attention`, the default): scf loops over (batch row, kv head,
      tiles of 4 query rows of that kv head's G heads) and an online softmax over key
      blocks of 16, with vector FMAs over head_dim, no [M, M] scores tensor and each K/V
      row loaded once per tile. With `fused-attention=false` (the CUDA pipeline, which
      tiles and fuses linalg ops) they become score / masked-softmax / value
      linalg.generic contractions (GQA by grouping query heads).
    - `kv_append` becomes loops storing into the block pool bound by `cache_bind`;
      `cached_attention` becomes a streaming (online-softmax) loop over the cached
      positions 0 .. lens[b] + t of each query: the same fused kernel, one cache block
      per key block (scalar loops per query and head with `fused-attention=false`).
    - Tensor encodings (`#photon.stream`) are dropped, wherever they appear (signatures,
      block arguments, calls and upstream ops too).

    It is a dialect conversion in the shape of the Toy tutorial's lowering: one
    `OpConversionPattern` per photon op, a `ConversionTarget` that makes the photon
    dialect illegal (any other op is legal once its types are), and a `TypeConverter` for
    the photon types (tensors lose their encoding; a `!photon.kv_cache` has no lowered
    value: `cache_bind` is erased and its users read the bound pool, table and lens).
    Adding the weights blob argument is an ABI change done before the conversion.

    Before:
    ```mlir
    %w = "photon.weight"() {name = "enc1.l0.wq"} : () -> tensor<128x128xf32>
    %y = "photon.linear"(%x, %w) : (tensor<?x?x128xf32>, tensor<128x128xf32>) -> tensor<?x?x128xf32>
    ```
    After:
    ```mlir
    %v = memref.view %blob[%c4096][] : memref<?xi8> to memref<128x128xf32>
    %w = bufferization.to_tensor %v restrict : memref<128x128xf32> to tensor<128x128xf32>
    %y = linalg.generic {... (m, n, k) ...} ins(%x2, %w ...) outs(%acc ...)
    ```
  }];
  let options = [
    Option<"weightsFile", "weights-file", "std::string", /*default=*/"\"\"",
           "PHOTONW1 weights blob giving the byte offset of every photon.weight "
           "(not needed when the ops carry an `offset` attribute)">,
    Option<"fusedAttention", "fused-attention", "bool", /*default=*/"true",
           "Lower causal/bounded/cached attention to the fused, vectorized online-softmax "
           "kernel (scf + vector; head_dim a multiple of 4). false: the linalg.generic "
           "score/softmax/value form and the scalar cached loop (for the CUDA pipeline)">,
    Option<"parallelDecodeMinKeys", "parallel-decode-min-keys", "int64_t", /*default=*/"0",
           "Fused cached attention: a decode over at least this many cached keys (batch row "
           "0's times the batch) runs its "
           "(batch row, kv head) pairs as an scf.parallel (OpenMP with --openmp), as "
           "prefill does; 0 = never (photon-compile --openmp sets 256)">,
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::bufferization::BufferizationDialect",
    "::mlir::func::FuncDialect", "::mlir::linalg::LinalgDialect",
    "::mlir::math::MathDialect", "::mlir::memref::MemRefDialect",
    "::mlir::photon::PhotonDialect", "::mlir::scf::SCFDialect",
    "::mlir::tensor::TensorDialect"
  ];
}

#endif // PHOTON_CONVERSION_PASSES
