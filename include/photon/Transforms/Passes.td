//===- Passes.td - photon dialect transformations -*- tablegen -*-===//
//
// Passes on the photon dialect itself (target-neutral): derive the generation stages from
// the forward graph and plan the KV caches. They work on the registered photon dialect:
// ops through their generated classes and accessors, the discardable `photon.*`
// attributes through the dialect's helpers.
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_TRANSFORMS_PASSES
#define PHOTON_TRANSFORMS_PASSES

include "mlir/Pass/PassBase.td"

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

    `kv-type=f16` stores the caches (every level's pool and the token decoder's window)
    as f16: the pools and `!photon.kv_cache` types get that element type while the
    attention itself stays in the model's type.
  }];
  let options = [
    Option<"blockSize", "block-size", "int64_t", /*default=*/"16",
           "KV cache block size (units per block) of every level's pool">,
    Option<"kvType", "kv-type", "std::string", /*default=*/"\"\"",
           "Element type of every KV cache (each level's pool and the token decoder's "
           "window): f32 or f16; empty keeps the attention's element type. kv_append "
           "converts to it, cached_attention reads it and computes in f32">,
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

def PhotonExpandShapeToReinterpretCast
    : Pass<"photon-expand-shape-to-reinterpret-cast", "::mlir::ModuleOp"> {
  let summary = "Rewrite memref.expand_shape as memref.reinterpret_cast (works around an "
                "MLIR 22 expand-strided-metadata crash)";
  let description = [{
    MLIR 22's expand-strided-metadata crashes on a `memref.expand_shape` with more than one
    dynamic size in one reassociation group (`[?, D]` into `[?, ?, D]`), which reshapes of
    `[B*M, ...]` streams produce. Each expand_shape becomes a
    `memref.reinterpret_cast` of its source's base buffer (from
    `memref.extract_strided_metadata`) with the sizes and strides spelled out; the CPU and
    CUDA pipelines run it right before expand-strided-metadata.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect", "::mlir::memref::MemRefDialect"];
}

#endif // PHOTON_TRANSFORMS_PASSES
