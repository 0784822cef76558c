//===- Pipeline.cpp - the CPU pipeline and the registration of the CPU passes ===//
//
// Every CPU pass is declared in include/photon/Codegen/CPU/Passes.td and defined in its
// own file; this file registers them, builds the CPU pipeline (photon-cpu-pipeline, also
// named photon-lower-to-llvm) and plugs the CPU's attention kernels into
// convert-photon-to-linalg.
//
//===----------------------------------------------------------------------===//

#include "photon/Codegen/CPU/Passes.h"
#include "photon/Transforms/Passes.h"

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir {
namespace photon {
namespace {
#define GEN_PASS_REGISTRATION
#include "photon/Codegen/CPU/Passes.h.inc"
} // namespace

/// The upstream lowering after convert-photon-to-linalg. Everything is inlined into the
/// stage entry points first, so bufferization sees one function per stage.
static const char *kLowerToLLVMInline = "inline,symbol-dce,convert-elementwise-to-linalg";
static const char *kLowerToLLVM =
    "canonicalize,cse,"
    "eliminate-empty-tensors,empty-tensor-to-alloc-tensor,"
    "one-shot-bufferize{bufferize-function-boundaries "
    "function-boundary-type-conversion=identity-layout-map},"
    "canonicalize,cse,buffer-deallocation-pipeline";
static const char *kLowerToLLVMLoops = "convert-linalg-to-loops,lower-affine,canonicalize,cse";
// With OpenMP only the matmul kernels' scf.parallel loops become work-sharing loops: the
// many small elementwise and attention ops of a decode step cost more in fork/join than
// they gain, and a join waits for the slower thread on a shared machine.
static const char *kLowerToLLVMParallelLoops =
    "convert-linalg-to-loops,lower-affine,canonicalize,cse,convert-scf-to-openmp";
static const char *kLowerToLLVM2 =
    "convert-scf-to-cf,convert-vector-to-llvm{reassociate-fp-reductions},expand-strided-metadata,lower-affine,finalize-memref-to-llvm,"
    "convert-math-to-llvm,convert-arith-to-llvm,convert-index-to-llvm,convert-cf-to-llvm,"
    "convert-func-to-llvm,convert-openmp-to-llvm,convert-ub-to-llvm,reconcile-unrealized-casts";

void buildPhotonLowerToLLVMPipeline(OpPassManager &pm, bool openmp, bool matmulKernels) {
  buildPhotonLowerToLLVMPipeline(pm, openmp, matmulKernels, MatmulKernelOptions{});
}

void buildPhotonLowerToLLVMPipeline(OpPassManager &pm, bool openmp, bool matmulKernels,
                                    MatmulKernelOptions kernels) {
  kernels.parallel = openmp;
  std::string err;
  llvm::raw_string_ostream os(err);
  if (failed(parsePassPipeline(kLowerToLLVMInline, pm, os)))
    llvm::report_fatal_error(llvm::Twine("photon-lower-to-llvm pipeline: ") + err);
  // RMSNorm into the next matmuls, on tensors (the kernels then scale x while packing it)
  if (matmulKernels && kernels.fuseNorm) pm.addPass(createPhotonFuseNormMatmul());
  // RoPE's cos/sin once per position and frequency, not per head
  if (kernels.mathTables) pm.addPass(createPhotonHoistMathTables());
  if (failed(parsePassPipeline(kLowerToLLVM, pm, os)))
    llvm::report_fatal_error(llvm::Twine("photon-lower-to-llvm pipeline: ") + err);
  if (matmulKernels) pm.addPass(createPhotonMatmulKernels(kernels));
  pm.addPass(createPhotonCopyToLinalg());
  // Intermediates freed after their last use, not at the end of the stage (the peak of a
  // stage call is then its largest live set, not the sum of its buffers).
  pm.addPass(createPhotonFreeAtLastUse());
  // Those intermediates at planned offsets of the per-thread workspace the runtime sets once
  // (no malloc per stage call).
  pm.addPass(createPhotonPlanWorkspace());
  if (failed(parsePassPipeline(openmp ? kLowerToLLVMParallelLoops : kLowerToLLVMLoops, pm, os)))
    llvm::report_fatal_error(llvm::Twine("photon-lower-to-llvm pipeline: ") + err);
  if (openmp) {
    pm.addPass(createPhotonInlineAllocaScopes());
    pm.addPass(createPhotonOmpDynamicSchedule());
  }
  pm.addPass(createPhotonExpandShapeToReinterpretCast());
  if (failed(parsePassPipeline(kLowerToLLVM2, pm, os)))
    llvm::report_fatal_error(llvm::Twine("photon-lower-to-llvm pipeline: ") + err);
}

namespace {
struct LowerToLLVMPipelineOptions : public PassPipelineOptions<LowerToLLVMPipelineOptions> {
  Option<bool> openmp{*this, "openmp", llvm::cl::desc("OpenMP parallel loops"),
                      llvm::cl::init(false)};
  Option<bool> matmulKernels{*this, "matmul-kernels", llvm::cl::desc("run photon-matmul-kernels"),
                             llvm::cl::init(true)};
  Option<int64_t> lanes{*this, "lanes", llvm::cl::desc("f32 lanes per vector"), llvm::cl::init(8)};
  Option<int64_t> rows{*this, "rows", llvm::cl::desc("split-K weight rows"),
                       llvm::cl::init(MatmulKernelOptions{}.rows)};
  Option<int64_t> gemmMinRows{*this, "gemm-min-rows", llvm::cl::desc("rows of x for the GEMM"),
                              llvm::cl::init(MatmulKernelOptions{}.gemmMinRows)};
  Option<int64_t> gemmRows{*this, "gemm-rows", llvm::cl::desc("GEMM tile weight rows"),
                           llvm::cl::init(MatmulKernelOptions{}.gemmRows)};
  Option<int64_t> gemmVecs{*this, "gemm-vecs", llvm::cl::desc("GEMM tile vectors of x rows"),
                           llvm::cl::init(MatmulKernelOptions{}.gemmVecs)};
  Option<int64_t> gemmKC{*this, "gemm-kc", llvm::cl::desc("GEMM K block"),
                         llvm::cl::init(MatmulKernelOptions{}.gemmKC)};
  Option<int64_t> gemmMC{*this, "gemm-mc", llvm::cl::desc("GEMM weight rows per cache block"),
                         llvm::cl::init(MatmulKernelOptions{}.gemmMC)};
  Option<int64_t> parallelChunks{*this, "parallel-chunks",
                                 llvm::cl::desc("split-K work units per matmul"),
                                 llvm::cl::init(MatmulKernelOptions{}.parallelChunks)};
  Option<int64_t> prefetchRows{*this, "prefetch-rows",
                               llvm::cl::desc("GEMV weight rows prefetched ahead (0: off)"),
                               llvm::cl::init(MatmulKernelOptions{}.prefetchRows)};
  Option<int64_t> gemvMRows{*this, "gemv-mrows",
                            llvm::cl::desc("GEMV rows of x per weight vector load"),
                            llvm::cl::init(MatmulKernelOptions{}.gemvMRows)};
  Option<bool> fuseNorm{*this, "fuse-norm", llvm::cl::desc("run photon-fuse-norm-matmul"),
                        llvm::cl::init(MatmulKernelOptions{}.fuseNorm)};
  Option<bool> mathTables{*this, "math-tables", llvm::cl::desc("run photon-hoist-math-tables"),
                          llvm::cl::init(MatmulKernelOptions{}.mathTables)};
};
} // namespace

static void buildFromOptions(OpPassManager &pm, const LowerToLLVMPipelineOptions &o) {
  MatmulKernelOptions k;
  k.lanes = o.lanes;
  k.rows = o.rows;
  k.gemmMinRows = o.gemmMinRows;
  k.gemmRows = o.gemmRows;
  k.gemmVecs = o.gemmVecs;
  k.gemmKC = o.gemmKC;
  k.gemmMC = o.gemmMC;
  k.parallelChunks = o.parallelChunks;
  k.prefetchRows = o.prefetchRows;
  k.gemvMRows = o.gemvMRows;
  k.fuseNorm = o.fuseNorm;
  k.mathTables = o.mathTables;
  buildPhotonLowerToLLVMPipeline(pm, o.openmp, o.matmulKernels, k);
}

void registerPhotonCPUCodegen() {
  registerPhotonCPUPasses();
  setAttentionKernelProvider(&cpuAttentionKernels());
  PassPipelineRegistration<LowerToLLVMPipelineOptions>(
      "photon-cpu-pipeline",
      "photon-compile's CPU code generation after convert-photon-to-linalg: inline, "
      "norm fusion and math tables, bufferize, matmul kernels, loops (OpenMP with "
      "`openmp`), LLVM dialect",
      buildFromOptions);
  PassPipelineRegistration<LowerToLLVMPipelineOptions>(
      "photon-lower-to-llvm", "photon-cpu-pipeline under its earlier name",
      buildFromOptions);
  PassPipelineRegistration<>(
      "photon-lower-to-llvm-generic",
      "photon-lower-to-llvm without photon-matmul-kernels (matmuls as LLVM-vectorized loops)",
      [](OpPassManager &pm) {
        buildPhotonLowerToLLVMPipeline(pm, /*openmp=*/false, /*matmulKernels=*/false);
      });
  PassPipelineRegistration<>(
      "photon-lower-to-llvm-openmp",
      "photon-lower-to-llvm with the parallel loops of linalg ops run by OpenMP",
      [](OpPassManager &pm) { buildPhotonLowerToLLVMPipeline(pm, /*openmp=*/true); });
}

} // namespace photon
} // namespace mlir
