//===- CudaPipeline.h - photon's GPU lowering: linalg -> gpu/nvgpu/NVVM -> fatbin -===//
//
// The CUDA target of photon-compile. Input: host functions whose bodies are linalg on
// tensors (what convert-photon-to-linalg produces: matmuls, generics, softmax,
// reductions) with static shapes. Output: the same functions calling kernels through
// gpu.launch_func, with the kernels compiled by the toolkit's ptxas into one gpu.binary
// (a fatbin holding a cubin per requested architecture), ready for
// `mlir-translate --mlir-to-llvmir` and the host's llc. The host code calls the mgpu*
// functions of runtime/src/cuda (libphoton_cuda).
//
// Strategy (docs/cuda.md):
//  * every root linalg op (one whose result leaves the function) becomes one kernel:
//    it is tiled to an scf.forall over thread blocks and all its producers are fused in
//    (so RMSNorm/scale/mask/softmax chains end up in their consumer's kernel);
//  * matmuls with 16/8-divisible static shapes on sm_80+ take the tensor-core path:
//    block tiles of BMxBN, one warp per 16x8 tile, a K loop of nvgpu.mma.sync
//    (m16n8k16 for f16 inputs with f32 or f16 accumulation, m16n8k4 tf32 for f32
//    inputs when allowed) with the accumulator in registers;
//  * everything else is tiled once more to threads; dimensions a contraction does not
//    share with its first input (the head dim of P.V in attention) stay a per-thread
//    loop so that the fused producer chain is computed once per thread, which makes
//    the bounded-attention window one kernel batched over (window, head) with one
//    thread per query row.
//
//===----------------------------------------------------------------------------===//
#ifndef PHOTON_CODEGEN_CUDA_CUDAPIPELINE_H
#define PHOTON_CODEGEN_CUDA_CUDAPIPELINE_H

#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/ADT/StringRef.h"

#include <memory>
#include <string>
#include <vector>

namespace photon::cuda {

/// Discardable attributes of the lowered IR (linalg, gpu), not of the photon dialect.
/// photon-gpu-tile-and-fuse marks each warp-tiled matmul with its mma K step (i64) for
/// photon-gpu-mma-sync.
constexpr llvm::StringLiteral kMmaKAttrName = "photon.mma_k";
/// photon-gpu-host-loops-to-kernels marks a gpu.launch of a loop nest that runs in one
/// thread of a one-block kernel (unit attribute).
constexpr llvm::StringLiteral kSerialLaunchAttrName = "photon.serial";
/// photon-gpu-merge-fatbin: the merged gpu.object's property listing its chips.
constexpr llvm::StringLiteral kChipsPropertyName = "photon.chips";

/// What to build for. `chips` are "sm_XY" names, XY >= 75 (CUDA 13's ptxas).
struct GpuTargetOptions {
  std::vector<std::string> chips = {"sm_80"};
  /// PTX ISA feature; +ptx80 is needed for sm_90 and accepted by every chip >= sm_75.
  std::string features = "+ptx80";
  /// "isa" (PTX text in the gpu.binary, for inspection), "bin" (one cubin) or "fatbin".
  /// With several chips the cubins are merged into one fatbin with the toolkit's
  /// `fatbinary` (format must then be "fatbin").
  std::string format = "fatbin";
  /// Use tensor cores (nvgpu.mma.sync) for matmuls where the chip has them (sm_80+).
  bool tensorCores = true;
  /// Let f32 matmuls use tf32 tensor cores (10-bit mantissa inputs, fp32 accumulation).
  bool allowTf32 = false;
  /// CUDA toolkit root; empty: $CUDA_HOME, $CUDA_PATH, then /usr/local/cuda.
  std::string toolkitPath;
  /// ptxas/LLVM optimisation level for the device code.
  unsigned optLevel = 3;
  /// Thread blocks that share the keys of one cached-attention row
  /// (photon-gpu-split-k-attention); <= 1 keeps one thread per (sequence, query, head).
  int64_t attentionSplits = 16;
  /// ELF section of the embedded fatbin in the host object (cuobjdump finds it there).
  std::string elfSection = ".nv_fatbin";
};

/// Parses "sm_80,sm_90" (or "cuda:sm_80"); returns false with `error` set when a name is
/// not sm_XY or is older than sm_75.
bool parseChips(const std::string &text, std::vector<std::string> &chips, std::string &error);

/// Tile + fuse + bufferize + map to gpu.launch + tensor cores (no NVVM yet): the part
/// that lit tests inspect as gpu / nvgpu IR.
void buildGpuKernelPipeline(mlir::OpPassManager &pm, const GpuTargetOptions &options);
/// The whole GPU lowering: buildGpuKernelPipeline, then NVVM, ptxas, fatbin and host
/// code lowered to the LLVM dialect.
void buildGpuLoweringPipeline(mlir::OpPassManager &pm, const GpuTargetOptions &options);

/// The root of the CUDA toolkit: `path` when given, else $CUDA_HOME, $CUDA_PATH,
/// $CUDA_ROOT, then /usr/local/cuda.
std::string toolkitRoot(llvm::StringRef path);

/// The passes of the GPU lowering, declared in include/photon/Codegen/CUDA/Passes.td (one
/// file each in lib/Codegen/CUDA): createPhotonGpuTileAndFuse(PhotonGpuTileAndFuseOptions),
/// createPhotonGpuInsertDealloc(), createPhotonGpuMapToLaunch(), createPhotonGpuMmaSync(),
/// createPhotonGpuHostLoopsToKernels(), createPhotonGpuSplitKAttention(
/// PhotonGpuSplitKAttentionOptions), createPhotonGpuMergeFatbin(PhotonGpuMergeFatbinOptions).
/// The pipelines fill their options from GpuTargetOptions. createPhotonGpuLaunchToLoops() is
/// for tests only (kernels run as host loops on a CPU).
#define GEN_PASS_DECL
#include "photon/Codegen/CUDA/Passes.h.inc"

/// Registers the passes above and the pipelines `photon-gpu-kernels` and
/// `photon-gpu-lowering` with options
/// chips=sm_80,sm_90 format=fatbin|bin|isa tensor-cores=1 allow-tf32=0 opt-level=3
/// toolkit=<path> attention-splits=16.
void registerCudaPasses();

/// Dialects the pipelines need loaded/registered in the context.
void registerCudaDialects(mlir::DialectRegistry &registry);

} // namespace photon::cuda

#endif // PHOTON_CODEGEN_CUDA_CUDAPIPELINE_H
