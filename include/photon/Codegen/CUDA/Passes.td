//===- Passes.td - photon's CUDA codegen passes ------------*- tablegen -*-===//
//
// The passes of photon's GPU lowering (lib/Codegen/CUDA): linalg on tensors -> scf.forall tiles
// -> gpu.launch (+ nvgpu.mma.sync) -> NVVM -> fatbin. The pipelines `photon-gpu-kernels`
// and `photon-gpu-lowering` (CudaPipeline.h) chain them with upstream passes; each pass
// takes the target options it reads (chips, tensor cores, tf32, toolkit) as its own pass
// options.
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_CODEGEN_CUDA_PASSES
#define PHOTON_CODEGEN_CUDA_PASSES

include "mlir/Pass/PassBase.td"

def PhotonGpuTileAndFuse : Pass<"photon-gpu-tile-and-fuse", "::mlir::func::FuncOp"> {
  let summary = "Tile every root linalg op on tensors to scf.forall loops over thread blocks "
                "and threads (warps for tensor-core matmuls), fusing its producers";
  let description = [{
    Every root linalg op (one whose result leaves the function, or that no fused
    consumer absorbed) becomes one kernel: it is tiled to an `scf.forall` over thread
    blocks (`#gpu.block<x/y/z>`) and all its producers are fused into the tile, so
    RMSNorm / scale / mask / softmax chains end up in their consumer's kernel. Aggregate
    ops (`linalg.softmax`) are first decomposed into generics.

    - A `linalg.matmul` (plain or with the transposed-B indexing maps; the matmul generic
      convert-photon-to-linalg emits for `photon.linear`, lm_head and SwiGLU, a contraction
      upstream recognizes, is taken as the latter) with 16/8-divisible static shapes on a
      chip with tensor cores (`tensor-cores`, every chip of `chips` sm_80 or newer; f16
      inputs, or f32 with `allow-tf32`) is tiled to block tiles and then to one warp per
      16x8 output tile (`#gpu.warp<...>`), marked `photon.mma_k` (the mma K step) for
      photon-gpu-mma-sync.
    - Everything else is tiled once more to threads (`#gpu.thread<...>`); dimensions a
      contraction does not share with its first input stay a per-thread loop.

    ```mlir
    // before
    %y = linalg.matmul ins(%a, %b : tensor<64x64xf16>, tensor<64x64xf16>) outs(%c ...)
    // after
    %y = scf.forall (%i, %j) in (1, 1) shared_outs(...) {
      %t = scf.forall (%wi, %wj) in (4, 8) shared_outs(...) {
        linalg.matmul {photon.mma_k = 16 : i64} ins(... tensor<16x64xf16> ...) ...
      } {mapping = [#gpu.warp<linear_dim_1>, #gpu.warp<linear_dim_0>]}
    } {mapping = [#gpu.block<y>, #gpu.block<x>]}
    ```
  }];
  let options = [
    ListOption<"chips", "chips", "std::string",
               "CUDA architectures the kernels are built for (sm_XY); tensor cores are used "
               "only when every one is sm_80 or newer">,
    Option<"tensorCores", "tensor-cores", "bool", /*default=*/"true",
           "Tile eligible matmuls to warps for nvgpu.mma.sync (sm_80+)">,
    Option<"allowTf32", "allow-tf32", "bool", /*default=*/"false",
           "Let f32 matmuls use tf32 tensor cores (10-bit mantissa inputs, fp32 "
           "accumulation)">,
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::gpu::GPUDialect",
    "::mlir::linalg::LinalgDialect", "::mlir::scf::SCFDialect",
    "::mlir::tensor::TensorDialect"
  ];
}

def PhotonGpuInsertDealloc : Pass<"photon-gpu-insert-dealloc", "::mlir::ModuleOp"> {
  let summary = "Free host-side buffers (device memory after map-to-launch) after their "
                "last use";
  let description = [{
    Every host `memref.alloc` (one that is not inside a kernel's `scf.forall`) and every
    fresh buffer a callee returns that does not leave its function gets a
    `memref.dealloc` after its last use, which photon-gpu-map-to-launch turns into
    `gpu.dealloc` with the `gpu.alloc`. Upstream ownership-based deallocation is not used:
    where it cannot decide aliasing statically it emits a host-side helper reading
    i1/index buffers, which would live in device memory here. The analysis is
    conservative instead: a buffer that may be returned (through views, casts, region
    results or a callee returning its argument) or that reaches an op it does not
    understand is not freed.
  }];
  let dependentDialects = ["::mlir::memref::MemRefDialect"];
}

def PhotonGpuMapToLaunch : Pass<"photon-gpu-map-to-launch", "::mlir::func::FuncOp"> {
  let summary = "Turn bufferized scf.forall loops mapped to GPU blocks into gpu.launch";
  let description = [{
    Each bufferized `scf.forall` mapped to `#gpu.block<...>` becomes a `gpu.launch`: the
    grid from its trip counts, the block size from the nested thread / warp foralls (a
    warp is 32 threads along x), which are mapped to thread ids. Host `memref.alloc` /
    `memref.dealloc` become `gpu.alloc` / `gpu.dealloc`; buffers allocated inside a kernel
    (fused producers' tiles) move to private memory, so their size must have a constant
    upper bound.
  }];
  let dependentDialects = [
    "::mlir::affine::AffineDialect", "::mlir::arith::ArithDialect",
    "::mlir::gpu::GPUDialect", "::mlir::memref::MemRefDialect",
    "::mlir::scf::SCFDialect"
  ];
}

def PhotonGpuMmaSync : Pass<"photon-gpu-mma-sync", "::mlir::func::FuncOp"> {
  let summary = "Rewrite warp-level 16x8xK linalg.matmul tiles inside gpu.launch into a K "
                "loop of nvgpu.mma.sync with the accumulator in registers";
  let description = [{
    Every bufferized `linalg.matmul` inside a `gpu.launch` that photon-gpu-tile-and-fuse
    marked with `photon.mma_k` (a 16x8 warp tile) becomes a loop over K in steps of
    `photon.mma_k` of `nvgpu.mma.sync` (m16n8k16 for f16 inputs, m16n8k4 tf32 for f32
    inputs), loading each lane's A/B fragments with `memref.load` and keeping the
    accumulator fragment in registers; the result is stored once after the loop.
  }];
  let dependentDialects = [
    "::mlir::affine::AffineDialect", "::mlir::arith::ArithDialect",
    "::mlir::gpu::GPUDialect", "::mlir::memref::MemRefDialect",
    "::mlir::nvgpu::NVGPUDialect", "::mlir::scf::SCFDialect",
    "::mlir::vector::VectorDialect"
  ];
}

def PhotonGpuHostLoopsToKernels
    : Pass<"photon-gpu-host-loops-to-kernels", "::mlir::func::FuncOp"> {
  let summary = "Move host-side scf.for nests that read or write (device) buffers into "
                "gpu.launch";
  let description = [{
    Loops still on the host after photon-gpu-map-to-launch - kv_append's stores into the
    cache pool, the cached-attention loop, host-side linalg just lowered to loops - touch
    device buffers. Each such outermost `scf.for` nest becomes a `gpu.launch`: perfectly
    nested parallel loops (no loop-carried values, no stores that alias across
    iterations) go onto the grid and the threads, the rest stays serial per thread; a
    nest that is not parallel runs in one thread of a one-block kernel (marked
    `photon.serial`). Host stack buffers (`memref.alloca`) used only inside the nest move
    into the kernel.
  }];
  let dependentDialects = [
    "::mlir::affine::AffineDialect", "::mlir::arith::ArithDialect",
    "::mlir::gpu::GPUDialect", "::mlir::memref::MemRefDialect",
    "::mlir::scf::SCFDialect"
  ];
}

def PhotonGpuSplitKAttention
    : Pass<"photon-gpu-split-k-attention", "::mlir::func::FuncOp"> {
  let summary = "Split the keys of the cached-attention kernel across thread blocks "
                "(flash-decoding) and combine the partial softmaxes in a second kernel";
  let description = [{
    After `photon-gpu-host-loops-to-kernels` the cached attention over the paged pool is a
    `gpu.launch` with grid (B, n) and one thread per head, each running the online
    softmax over all keys of its sequence: an `scf.for` over keys with iter_args
    (m = -inf, l = 0), `mNew = max(m, s)`, `l * exp(m - mNew) + exp(s - mNew)`, and private
    rows (`memref.alloca`, zeroed before the loop) updated as
    `row[d] = row[d] * exp(m - mNew) + exp(s - mNew) * v[d]`. Such a launch becomes two:
    the first runs on grid (B, n, S), block z taking keys z, z + S, ... and storing its
    partial (m, l, rows) into a device buffer [B, n, S, threads, 2 + row sizes]; the
    second (grid (B, n), the same threads) combines them (M = max m_z,
    l = sum l_z exp(m_z - M), row = sum row_z exp(m_z - M)) and runs what followed the key
    loop. S = min(`splits`, max(1, ceil(`target-blocks` / (B * n)))), computed on the host:
    decode steps of small batches get the splits, a grid that is already large (prefill,
    large batches) gets one. Launches of any other shape are left alone.
  }];
  let options = [
    Option<"splits", "splits", "int64_t", /*default=*/"16",
           "Most thread blocks sharing the keys of one (sequence, query, head); <= 1 "
           "disables the pass">,
    Option<"targetBlocks", "target-blocks", "int64_t", /*default=*/"256",
           "Blocks the split kernel aims for in all (fewer splits on larger grids)">,
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::gpu::GPUDialect",
    "::mlir::math::MathDialect", "::mlir::memref::MemRefDialect",
    "::mlir::scf::SCFDialect"
  ];
}

def PhotonGpuLaunchToLoops : Pass<"photon-gpu-launch-to-loops", "::mlir::func::FuncOp"> {
  let summary = "(Testing) run each gpu.launch as host loops, device memory as host "
                "memory, to check kernel rewrites on a CPU";
  let description = [{
    Not part of any pipeline: for tests on machines without a GPU. Each `gpu.launch`
    becomes the loop nest over blocks (z, y, x) and threads (z, y, x) it stands for, with
    the body inlined and the launch's block arguments replaced by the loop indices and
    sizes; `gpu.alloc` / `gpu.dealloc` become `memref.alloc` / `memref.dealloc` and
    `gpu.wait` goes. The function then runs with mlir-runner, and a rewritten kernel's
    results can be compared with the original's
    (`test/Cuda/split-k-attention-numeric.mlir`). Kernels whose threads communicate
    (barriers, shared memory) or that use gpu ops in their body are refused.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::memref::MemRefDialect",
    "::mlir::scf::SCFDialect"
  ];
}

def PhotonGpuMergeFatbin : Pass<"photon-gpu-merge-fatbin", "::mlir::ModuleOp"> {
  let summary = "Merge the per-architecture cubins of each gpu.binary into one fatbin";
  let description = [{
    After `gpu-module-to-binary format=bin` with one NVVM target per chip, each
    `gpu.binary` holds one cubin per architecture. They are merged with the toolkit's
    `fatbinary` into one fatbin object (its properties list the chips under
    `photon.chips`), so that the host object embeds one image the driver picks the right
    cubin from.
  }];
  let options = [
    Option<"toolkit", "toolkit", "std::string", /*default=*/"\"\"",
           "CUDA toolkit root holding bin/fatbinary; empty: $CUDA_HOME, $CUDA_PATH, "
           "$CUDA_ROOT, then /usr/local/cuda">,
  ];
}

#endif // PHOTON_CODEGEN_CUDA_PASSES
