//===- CPUBackend.cpp - the cpu TargetBackend ------------------------------===//
//
// `--target cpu`: the bufferization + micro-kernel pipeline of lib/Transforms to the LLVM
// dialect, code generation for the host (or --cpu/--mattr) and the system linker
// (lib/Target/CPU.cpp).
//
//===----------------------------------------------------------------------===//

#include "photon/Target/CPU.h"
#include "photon/Target/TargetBackend.h"
#include "photon/Codegen/CPU/Passes.h"

#include "mlir/Pass/PassManager.h"

using namespace mlir;
using namespace mlir::photon;

namespace {
class CPUTargetBackend final : public TargetBackend {
public:
  llvm::StringRef getName() const override { return "cpu"; }
  llvm::StringRef getDescription() const override {
    return "x86-64 CPU (the host, or --cpu/--mattr): vector micro-kernels, --openmp threads";
  }
  bool supportsForwardOnly() const override { return true; }
  bool supportsOpenMP() const override { return true; }
  bool supportsFusedAttention() const override { return true; }

  LogicalResult lowerToLLVM(ModuleOp module, const TargetSpec &, const TargetOptions &o,
                            ProgressFn progress, std::string &error) const override {
    PassManager pm(module.getContext());
    MatmulKernelOptions kernels;
    kernels.lanes = f32VectorLanes(o.cpu, o.features);
    // The GEMM's register tile from the register file: 8 weight rows x 2 vectors of x rows
    // (16 of AVX-512's 32 zmm registers) or 6 x 2 (12 of AVX2's 16 ymm). Against the pass's
    // default 4 x 2, the CPU time of a vanilla-mid pp512 prefill on 1 thread (Zen 5, the
    // same weights, logits identical) fell 12% with AVX-512 and 10% with AVX2 (--cpu znver3).
    // 8 x 3 (48-row panels) measured the same on prefill but leaves M = 64 (batched decode
    // of 64 sequences) a 48-row panel and a narrow one: 8 x 2 ran those shapes 5-7% faster
    // in benchmarks/gemm/run.sh (M = 64, 1 thread, one process) and B = 64 decode 2-3%.
    kernels.gemmRows = kernels.lanes >= 16 ? 8 : 6;
    kernels.gemmVecs = 2;
    buildPhotonLowerToLLVMPipeline(pm, o.openmp, o.vectorMatmul, kernels);
    progress("bufferizing and lowering to the LLVM dialect");
    if (failed(pm.run(module))) {
      error = "lowering to the LLVM dialect failed";
      return failure();
    }
    return success();
  }

  bool link(const std::string &objPath, const std::string &soPath, const TargetSpec &,
            const TargetOptions &o, std::string &error) const override {
    return linkSharedLibrary(objPath, soPath, o.openmp, error);
  }

  llvm::json::Object manifestTarget(const TargetSpec &, const TargetOptions &o,
                                    const CodegenOptions &cg) const override {
    llvm::json::Array feats;
    // Everything the code may use, also for a --cpu other than the host's (issue 19: an
    // AVX-512 artifact must be refused on a CPU without it, not die with SIGILL).
    for (auto &f : manifestFeatures(cg.cpu, cg.features, cg.triple)) feats.push_back(f);
    return llvm::json::Object{{"kind", "cpu"},
                              {"triple", cg.triple},
                              {"cpu", cg.cpu},
                              {"features", std::move(feats)},
                              {"threads", o.openmp ? "openmp" : "none"}};
  }
};
} // namespace

std::unique_ptr<TargetBackend> mlir::photon::createCPUTargetBackend() {
  return std::make_unique<CPUTargetBackend>();
}
