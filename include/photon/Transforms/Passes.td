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

//===----------------------------------------------------------------------===//
// The CPU lowering after convert-photon-to-linalg (photon-lower-to-llvm)
//===----------------------------------------------------------------------===//

def PhotonFuseNormMatmul : Pass<"photon-fuse-norm-matmul", "::mlir::ModuleOp"> {
  let summary = "Fold the RMSNorm normalize generic into the x * W^T generics that consume "
                "it: they read x, the per-row rsqrt scale and the gain (tensors)";
  let description = [{
    convert-photon-to-linalg lowers `photon.rms_norm` to a row sum of squares `ss[m]` and
    the elementwise normalize generic `n[m, k] = (x[m, k] * R(ss[m])) * g[k]` with
    `R(s) = rsqrt(s / D + eps)`, and every x * W^T to `y[m, n] += n[m, k] * w[n, k]`. For
    each such matmul whose x operand is `n` (directly, or through the collapse_shape of an
    expand_shape that restores n's type), the matmul reads x, the per-row scale
    `r[m] = R(ss[m])` (one generic per normalize generic) and the gain instead:

    ```mlir
    // before
    %n = linalg.generic {...} ins(%x, %ss, %g ...) outs(...)    // (x * R(ss)) * g
    %y = linalg.generic {...} ins(%n, %w ...) outs(%acc ...)     // y += n * w^T
    // after
    %r = linalg.generic {...} ins(%ss ...) outs(...)             // R(ss)
    %y = linalg.generic {...} ins(%x, %r, %g, %w ...) outs(%acc ...)
        // y += ((x * r) * g) * w^T
    ```

    The normalize generic is erased once nothing else uses it. photon-matmul-kernels
    recognizes the fused form and applies `r * g` while packing x.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::linalg::LinalgDialect",
    "::mlir::tensor::TensorDialect"
  ];
}

def PhotonHoistMathTables : Pass<"photon-hoist-math-tables", "::mlir::ModuleOp"> {
  let summary = "Compute the math sub-expressions of elementwise tensor generics that do not "
                "depend on every loop once per the loops they do depend on, into table "
                "generics (RoPE: cos/sin per position and frequency instead of per head, the "
                "frequencies once)";
  let description = [{
    In an all-parallel tensor `linalg.generic`, a float value computed with a math op
    (exp, cos, sin, ...) from values that depend on only some of the loops is moved into a
    table generic over those loops (one table generic per set of loops, one result per
    value); the generic then reads the table. RoPE's angle depends on the position and the
    frequency but not on the batch row or the head:

    ```mlir
    // before: cos/sin computed B * M * H * hd times
    %o = linalg.generic {iterator_types = [4 x "parallel"]} ... {
      %f = math.exp ...  %c = math.cos ...  %s = math.sin ...
    }
    // after: a table [M, hd] of cos and sin, read by the rotation
    %t:2 = linalg.generic {iterator_types = [2 x "parallel"]} ... { ... math.cos ... }
    %o = linalg.generic {...} ins(..., %t#0, %t#1 ...) ...
    ```
  }];
  let dependentDialects = [
    "::mlir::linalg::LinalgDialect", "::mlir::tensor::TensorDialect"
  ];
}

def PhotonMatmulKernels : Pass<"photon-matmul-kernels", "::mlir::ModuleOp"> {
  let summary = "Rewrite bufferized y += x * W^T generics as calls of split-K (GEMV) / packed "
                "GEMM vector kernels, one kernel function per operand types";
  let description = [{
    The bufferized `y[m, n] += sum_k x[m, k] * w[n, k]` linalg.generic that
    convert-photon-to-linalg emits for `photon.linear`, `lm_head` and the SwiGLU
    projections (and its RMSNorm-fused form from photon-fuse-norm-matmul) becomes a call of
    a private kernel function, one per distinct operand types (`__photon_matmul_<N>x<K>`,
    `__photon_matmul_rmsnorm_<N>x<K>`). The kernel picks by the rows M of x: below
    `gemm-min-rows` a split-K GEMV that streams the weights once (`rows` weight rows per
    block, `lanes`-wide FMAs); from it a packed GEMM (x packed into panels, a register tile
    of `gemm-rows` weight rows x `gemm-vecs` vectors of x rows, `gemm-kc` x `gemm-mc`
    cache blocks). With `parallel`, the loop over weight-row blocks of a matmul with at
    least `parallel-min-weights` weights is an scf.parallel (OpenMP after
    convert-scf-to-openmp). The generic's accumulator (zero fill or bias) stays in y.

    ```mlir
    // before
    linalg.generic {...} ins(%x, %w : memref<?x128xf32>, memref<256x128xf32>)
                         outs(%y : memref<?x256xf32>) { ... mulf, addf ... }
    // after
    call @__photon_matmul_256x128(%x, %w, %y)
        : (memref<?x128xf32>, memref<256x128xf32>, memref<?x256xf32>) -> ()
    ```
  }];
  let options = [
    Option<"parallel", "parallel", "bool", /*default=*/"false",
           "Make the loop over weight-row blocks an scf.parallel (OpenMP work sharing after "
           "convert-scf-to-openmp)">,
    Option<"lanes", "lanes", "int64_t", /*default=*/"8",
           "f32 lanes per vector (8: AVX2, 16: AVX-512)">,
    Option<"rows", "rows", "int64_t", /*default=*/"8", "weight rows per split-K block">,
    Option<"gemmMinRows", "gemm-min-rows", "int64_t", /*default=*/"16",
           "rows of x from which the packed GEMM runs (0: never)">,
    Option<"gemmRows", "gemm-rows", "int64_t", /*default=*/"4",
           "weight rows of the GEMM register tile">,
    Option<"gemmVecs", "gemm-vecs", "int64_t", /*default=*/"2",
           "vectors of x rows in the GEMM register tile">,
    Option<"gemmKC", "gemm-kc", "int64_t", /*default=*/"640", "K block of the GEMM">,
    Option<"gemmMC", "gemm-mc", "int64_t", /*default=*/"64",
           "weight rows per GEMM cache block">,
    Option<"parallelMinWeights", "parallel-min-weights", "int64_t", /*default=*/"65536",
           "with `parallel`, weights (N*K) from which a matmul runs in parallel">,
    Option<"parallelChunks", "parallel-chunks", "int64_t", /*default=*/"16",
           "with `parallel`, split-K work units per matmul">,
    Option<"prefetchRows", "prefetch-rows", "int64_t", /*default=*/"8",
           "GEMV: prefetch the weight rows this far ahead into L2 (0: off)">,
    Option<"gemvMRows", "gemv-mrows", "int64_t", /*default=*/"2",
           "GEMV: rows of x that share each weight vector load (1: one at a time)">,
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::func::FuncDialect",
    "::mlir::math::MathDialect", "::mlir::memref::MemRefDialect",
    "::mlir::scf::SCFDialect", "::mlir::vector::VectorDialect"
  ];
}

def PhotonCopyToLinalg : Pass<"photon-copy-to-linalg", "::mlir::ModuleOp"> {
  let summary = "Rewrite memref.copy as linalg.copy (lowered to loops, no runtime call)";
  let description = [{
    Every `memref.copy` becomes a `linalg.copy`, so convert-linalg-to-loops turns it into
    loops and the artifact needs no `memrefCopy` from MLIR's runner utils.

    ```mlir
    memref.copy %a, %b : memref<4x8xf32> to memref<4x8xf32>
    // becomes
    linalg.copy ins(%a : memref<4x8xf32>) outs(%b : memref<4x8xf32>)
    ```
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect"];
}

def PhotonInlineAllocaScopes : Pass<"photon-inline-alloca-scopes", "::mlir::ModuleOp"> {
  let summary = "Inline memref.alloca_scope bodies (after convert-scf-to-openmp)";
  let description = [{
    convert-scf-to-openmp wraps every parallel body in a `memref.alloca_scope`;
    convert-scf-to-cf would then give it several blocks, which its verifier rejects. The
    kernels allocate no stack memory inside parallel loops, so the scopes are not needed:
    their bodies are spliced into the parent block and their results replaced by the
    values the body returns.
  }];
}

def PhotonOmpDynamicSchedule : Pass<"photon-omp-dynamic-schedule", "::mlir::ModuleOp"> {
  let summary = "Set schedule(dynamic) on every omp.wsloop";
  let description = [{
    The matmul kernels' parallel loops have a few coarse iterations (16 chunks of weight
    rows); with a static schedule a thread that the OS has descheduled holds up the join
    for its whole half of the work. Every `omp.wsloop` gets `schedule(dynamic)` (chunk 1).
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
