//===- Cuda.h - photon-compile's CUDA target: stages -> host object + fatbins -===//
//
// `photon-compile --target cuda:sm_80,sm_90`: after convert-photon-to-linalg and the stage
// wrappers, the module goes through the GPU lowering of lib/Codegen/CUDA (kernels compiled by the
// toolkit's ptxas, one fatbin per kernel holding a cubin per architecture), the host code
// is emitted like the CPU target's (same `photon_<stage>(void **)` entry points) and linked
// into model.so against libphoton_cuda.so (the mgpu* functions the host code calls), which
// is copied into the artifact and found through RUNPATH $ORIGIN. See docs/cuda.md.
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_TARGET_CUDA_H
#define PHOTON_TARGET_CUDA_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LLVM.h"

#include <string>
#include <vector>

namespace mlir {
namespace photon {

/// Registers what the CUDA target needs in a context: the NVVM target attribute's
/// serialization (ptxas) and the dialects of the GPU lowering.
void registerCudaTarget(DialectRegistry &registry);

/// True when `target` names the CUDA target ("cuda", "cuda:sm_80", "cuda:sm_80,sm_90").
bool isCudaTarget(const std::string &target);

/// Parses "cuda:sm_80,sm_90" into chip names. Chips are sm_XY with XY >= 75 (what CUDA 13's
/// ptxas builds); duplicates are dropped. On failure returns false with a diagnostic.
bool parseCudaTarget(const std::string &target, std::vector<std::string> &chips,
                     std::string &error);

struct CudaCompileOptions {
  std::vector<std::string> chips;
  bool tensorCores = true;
  bool allowTf32 = false;
  unsigned deviceOptLevel = 3;
  std::string toolkit; ///< empty: $CUDA_HOME, $CUDA_PATH, /usr/local/cuda
};

/// Runs lib/Codegen/CUDA's photon-gpu-lowering on a module of linalg stage functions (the output
/// of addStageWrappers): kernels become gpu.binary fatbins, host code the LLVM dialect.
LogicalResult lowerStagesForCuda(ModuleOp module, const CudaCompileOptions &options);

/// libphoton_cuda.so to link model.so against: `explicitPath` if not empty, else
/// $PHOTON_CUDA_RUNTIME, else ../lib/libphoton_cuda.so beside the photon-compile
/// executable (`argv0`), else the library of the build tree photon-compile came from.
/// Empty when none exists.
std::string findCudaRuntimeLibrary(const std::string &explicitPath, const char *argv0);

/// Copies `runtimeLib` into the artifact directory of `soPath` and links `objPath` into
/// `soPath` with DT_NEEDED libphoton_cuda.so and RUNPATH $ORIGIN, so that the artifact
/// carries the mgpu* functions its host code calls.
bool linkCudaSharedLibrary(const std::string &objPath, const std::string &soPath,
                           const std::string &runtimeLib, std::string &error);

} // namespace photon
} // namespace mlir

#endif // PHOTON_TARGET_CUDA_H
