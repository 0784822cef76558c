//===- Passes.td - photon's CPU code generation -*- tablegen -*-===//
//
// The CPU lowering after convert-photon-to-linalg: micro-kernel passes (matmul kernels,
// norm fusion, math tables) and the fix-ups of the upstream lowering. The pipeline
// `photon-cpu-pipeline` (also registered as `photon-lower-to-llvm`) chains them with
// upstream passes down to the LLVM dialect.
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_CODEGEN_CPU_PASSES
#define PHOTON_CODEGEN_CPU_PASSES

include "mlir/Pass/PassBase.td"

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
    A last GEMM panel of at most `lanes` rows runs a narrow tile (2 x the weight rows, one
    vector). Matmuls with the same operand types on the same x (q, k, v; gate, up) whose
    buffers no op between them touches become one call of
    `__photon_matmul[_rmsnorm]_<N>x<K>_x<G>(x, w_1..w_G, y_1..y_G[, r, g])` at the last of
    them: x is packed or norm-scaled once, and one scf.parallel covers (weight, row block).

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

def PhotonFreeAtLastUse : Pass<"photon-free-at-last-use", "::mlir::ModuleOp"> {
  let summary = "Free each intermediate buffer right after its last use";
  let description = [{
    buffer-deallocation-pipeline places the deallocations of a block at its end, so the
    intermediates of a stage call (its layers inlined in one block) all stay allocated until
    the call returns and its heap peak is their sum. Each unconditional `memref.dealloc` of a
    `memref.alloc` of the same block moves to just after the last operation of the block
    that uses the buffer or a memref derived from it (views, casts, reshapes, transitively;
    uses in nested regions count at their ancestor in the block). Buffers used by the
    terminator or outside the block keep their deallocation. Same buffers, same mallocs:
    only the peak of live bytes changes.
  }];
  let dependentDialects = ["::mlir::memref::MemRefDialect"];
}

def PhotonPlanWorkspace : Pass<"photon-plan-workspace", "::mlir::ModuleOp"> {
  let summary = "Place stage intermediates at planned offsets of one per-thread workspace";
  let description = [{
    Runs after photon-free-at-last-use. Every `memref.alloc` of a stage function (public,
    `llvm.emit_c_interface`) or of a kernel called only from stages that lies outside loops,
    has an identity layout and its deallocation in its own block gets an offset in one
    workspace buffer. Its live interval is [alloc, dealloc] in the function's pre-order. Its
    size is bounded as `a + b x rows`: each dynamic size is solved in the function's argument
    dimensions by the upstream ValueBoundsConstraintSet, else through the index arithmetic
    the lowering emits (products, divisions and remainders by constants, reshapes); the rows
    are a product of argument dimensions named by the stage's `photon.arg_shapes` (`S`, `B`,
    `n`): for a stage the atoms covering most bytes, for a kernel all of its atoms. Offsets
    `p + o x rows` are assigned greedily (largest first, first fit among buffers live at the
    same time, disjoint in both coordinates, so valid for every row count), 64-byte aligned.
    Each buffer becomes a `memref.view` of the workspace and its deallocation goes; the rest
    (sizes with no bound, allocations in loops, other rows) stay heap allocations, counted
    with their reason.

    The workspace is per thread: model.so gets thread-local globals and exports
    `void photon_workspace_set(void *ptr, int64_t bytes)`, which the runtime calls once per
    engine thread with a buffer sized from the manifest. A function needing more than the
    workspace holds (or called with none set) allocates its need once and frees it at
    return. Kernels place their scratch after the calling stage's own bytes.

    The plan is recorded in the module attribute `photon.workspace_plan` (per function:
    `fixed_bytes`, `row_bytes`, `rows` (the atoms' names; `a<arg>.<dim>` where no symbol
    names them), `planned`, `heap`, `heap_reasons`; per stage the `kernels` it calls with
    their scratch bounded in the stage's atoms at each call site), which photon-compile
    writes into the manifest and `--report`.

    ```mlir
    %a = memref.alloc(%s) {alignment = 64 : i64} : memref<?x32xf32>
    ...
    memref.dealloc %a : memref<?x32xf32>
    // becomes
    %a = memref.view %ws[%off][%s] : memref<?xi8> to memref<?x32xf32>
    ```
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::LLVM::LLVMDialect",
    "::mlir::memref::MemRefDialect", "::mlir::scf::SCFDialect", "::mlir::photon::PhotonDialect"
  ];
}

def PhotonOmpDynamicSchedule : Pass<"photon-omp-dynamic-schedule", "::mlir::ModuleOp"> {
  let summary = "Set schedule(dynamic) on every omp.wsloop";
  let description = [{
    The matmul kernels' parallel loops have a few coarse iterations (16 chunks of weight
    rows); with a static schedule a thread that the OS has descheduled holds up the join
    for its whole half of the work. Every `omp.wsloop` gets `schedule(dynamic)` (chunk 1).
  }];
}

#endif // PHOTON_CODEGEN_CPU_PASSES
