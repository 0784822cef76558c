//===- Passes.td - photon compiler passes ------------------*- tablegen -*-===//
//
// The passes of photon-compile: derive the generation stages from the forward graph, plan
// the KV caches, and lower the photon dialect to upstream MLIR (linalg/tensor/scf/memref).
// They work on the registered photon dialect: ops through their generated classes and
// accessors, the discardable `photon.*` attributes through the dialect's helpers.
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_TRANSFORMS_PASSES
#define PHOTON_TRANSFORMS_PASSES

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
    - `embedding`, `rms_norm`, `linear`, `lm_head`, `rope`, `swiglu`, `chunk`,
      `chunk_compress`, `expand`, `shift` become `linalg.generic` ops (plus reshapes).
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
    - Tensor encodings (`#photon.stream`) are dropped.

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
           "Fused cached attention: a decode over at least this many cached keys runs its "
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

def PhotonDeriveStages : Pass<"photon-derive-stages", "::mlir::ModuleOp"> {
  let summary = "Build the generation stages of docs/artifact.md from the forward graph";
  let description = [{
    From `@forward` and the stack functions (`photon.role` = "encoder" / "decoder",
    `photon.level`), adds the stage functions of docs/artifact.md, each marked
    `photon.stage`:

    - vanilla: `lm_step(tokens i32[B, n], pool, table, lens) -> logits [B, n, V]`;
    - photon / block: `encode_l` for every level, `latent_l` for l >= 2 and
      `token_step`.

    Encoder stacks are cloned into `<name>_step` functions that take the level's cache
    (`pool`, `table`, `lens` memrefs bound by `photon.cache_bind`): every
    `causal_attention` becomes `kv_append` (its layer is the index of the attention in the
    stack) followed by `cached_attention`, and every `rope` over the stream gets the
    offsets `lens`. Decoder stacks are reused as they are (bounded windows need no cache).
  }];
  let options = [
    Option<"blockSize", "block-size", "int64_t", /*default=*/"16",
           "KV cache block size (units per block) of every level's pool">,
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::func::FuncDialect",
    "::mlir::memref::MemRefDialect", "::mlir::photon::PhotonDialect",
    "::mlir::tensor::TensorDialect"
  ];
}

def PhotonTestCachePlan : Pass<"photon-test-cache-plan", "::mlir::ModuleOp"> {
  let summary = "Print the KV cache plan and the cost model of a module (for FileCheck)";
  let description = [{
    Runs the cache planner (photon/Transforms/CachePlan.h) on a module that carries
    `photon.hierarchy` and its stack functions, and prints, per level, the cache
    (layers, kv heads, head dim, element type, bytes per unit, tokens per unit) and the
    cost model: cache bytes per 1,000 tokens, weight bytes read per generated token,
    FLOPs per token, and the ratios to a vanilla model of the same width.
  }];
}

#endif // PHOTON_TRANSFORMS_PASSES
