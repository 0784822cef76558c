//===- CudaBackend.cpp - the cuda TargetBackend ----------------------------===//
//
// `--target cuda:sm_80,sm_90`: lib/Codegen/CUDA's GPU lowering (kernels to fatbins, host code to the
// LLVM dialect), the CPU target's host code generation, and the link of model.so against
// libphoton_cuda.so (lib/Target/Cuda.cpp, docs/cuda.md).
//
//===----------------------------------------------------------------------===//

#include "photon/Target/Cuda.h"
#include "photon/Target/TargetBackend.h"

#include "llvm/ADT/StringExtras.h"

using namespace mlir;
using namespace mlir::photon;

namespace {
class CudaTargetBackend final : public TargetBackend {
public:
  llvm::StringRef getName() const override { return "cuda"; }
  llvm::StringRef getDescription() const override {
    return "NVIDIA GPUs sm_75 and newer (cuda:sm_80[,sm_90...]: one cubin per arch in each "
           "fatbin; model.so links libphoton_cuda.so)";
  }
  std::string getSyntax() const override { return "cuda:sm_XY[,sm_XY...]"; }
  bool matches(llvm::StringRef target) const override { return isCudaTarget(target.str()); }
  bool parseTarget(llvm::StringRef target, TargetSpec &spec,
                   std::string &error) const override {
    spec.text = target.str();
    spec.archs.clear();
    return parseCudaTarget(spec.text, spec.archs, error);
  }

  void registerDialects(DialectRegistry &registry) const override {
    registerCudaTarget(registry);
  }

  LogicalResult lowerToLLVM(ModuleOp module, const TargetSpec &spec, const TargetOptions &o,
                            ProgressFn progress, std::string &error) const override {
    CudaCompileOptions co;
    co.chips = spec.archs;
    co.tensorCores = o.cudaTensorCores;
    co.allowTf32 = o.cudaAllowTf32;
    co.toolkit = o.cudaToolkit;
    progress("lowering to GPU kernels for " + llvm::join(spec.archs, ",") +
             " (ptxas + fatbinary) and host code in the LLVM dialect");
    if (failed(lowerStagesForCuda(module, co))) {
      error = "the GPU lowering failed (see the errors above)";
      return failure();
    }
    return success();
  }

  bool link(const std::string &objPath, const std::string &soPath, const TargetSpec &,
            const TargetOptions &o, std::string &error) const override {
    std::string rt = findCudaRuntimeLibrary(o.cudaRuntime, o.argv0);
    if (rt.empty()) {
      error = "libphoton_cuda.so not found (model.so of a CUDA artifact links it): build "
              "the photon_cuda target or pass --cuda-runtime FILE";
      return false;
    }
    return linkCudaSharedLibrary(objPath, soPath, rt, error);
  }

  llvm::json::Object manifestTarget(const TargetSpec &spec, const TargetOptions &,
                                    const CodegenOptions &cg) const override {
    llvm::json::Array feats;
    for (auto &f : manifestFeatures(cg.cpu, cg.features, cg.triple)) feats.push_back(f);
    llvm::json::Array archs;
    for (auto &c : spec.archs) archs.push_back(c);
    // The host code (stage entry points calling the mgpu* functions) is x86 code for the
    // same triple/CPU as a CPU artifact's; the kernels are fatbins for `archs`.
    return llvm::json::Object{{"kind", "cuda"},
                              {"archs", std::move(archs)},
                              {"triple", cg.triple},
                              {"cpu", cg.cpu},
                              {"features", std::move(feats)},
                              {"runtime", "libphoton_cuda.so"}};
  }
};
} // namespace

std::unique_ptr<TargetBackend> mlir::photon::createCudaTargetBackend() {
  return std::make_unique<CudaTargetBackend>();
}
