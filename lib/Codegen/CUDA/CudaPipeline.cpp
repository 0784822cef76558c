//===- CudaPipeline.cpp - the photon GPU lowering pipelines and pass registration --===//
#include "photon/Codegen/CUDA/CudaPipeline.h"
#include "photon/Transforms/Passes.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlowOps.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

#include "llvm/ADT/ScopeExit.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdlib>

using namespace mlir;

namespace photon::cuda {
#define GEN_PASS_REGISTRATION
#include "photon/Codegen/CUDA/Passes.h.inc"

bool parseChips(const std::string &text, std::vector<std::string> &chips, std::string &error) {
  chips.clear();
  llvm::StringRef rest(text);
  rest.consume_front("cuda:");
  while (!rest.empty()) {
    auto [head, tail] = rest.split(',');
    rest = tail;
    head = head.trim();
    head.consume_front("cuda:");
    unsigned sm = 0;
    if (!head.starts_with("sm_") || head.drop_front(3).getAsInteger(10, sm)) {
      error = "expected a CUDA architecture like sm_80, got '" + head.str() + "'";
      return false;
    }
    if (sm < 75) {
      error = "sm_" + std::to_string(sm) +
              " is not supported: the CUDA 13 toolkit builds for sm_75 and newer";
      return false;
    }
    chips.push_back(head.str());
  }
  if (chips.empty()) {
    error = "no CUDA architecture given (expected e.g. sm_80 or sm_80,sm_90)";
    return false;
  }
  return true;
}

std::string toolkitRoot(llvm::StringRef path) {
  if (!path.empty())
    return path.str();
  for (const char *env : {"CUDA_HOME", "CUDA_PATH", "CUDA_ROOT"})
    if (const char *v = std::getenv(env); v && *v)
      return v;
  return "/usr/local/cuda";
}

namespace {

/// Reports a bad pipeline option on the module and fails (instead of a later, more
/// confusing error from NVVM or ptxas).
struct OptionErrorPass : public PassWrapper<OptionErrorPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(OptionErrorPass)
  OptionErrorPass(std::string m) : message(std::move(m)) {}
  StringRef getArgument() const override { return "photon-gpu-option-error"; }
  void runOnOperation() override {
    getOperation()->emitError(message);
    signalPassFailure();
  }
  std::string message;
};

struct CudaPipelineOptions : public PassPipelineOptions<CudaPipelineOptions> {
  Option<std::string> chips{*this, "chips",
                            llvm::cl::desc("CUDA architectures, e.g. sm_80,sm_90 (sm_75+)"),
                            llvm::cl::init("sm_80")};
  Option<std::string> format{*this, "format",
                             llvm::cl::desc("isa (PTX), bin (cubin) or fatbin"),
                             llvm::cl::init("fatbin")};
  Option<std::string> features{*this, "features", llvm::cl::desc("PTX ISA feature"),
                               llvm::cl::init("+ptx80")};
  Option<bool> tensorCores{*this, "tensor-cores",
                           llvm::cl::desc("mma.sync for matmuls on sm_80+"), llvm::cl::init(true)};
  Option<bool> allowTf32{*this, "allow-tf32", llvm::cl::desc("tf32 tensor cores for f32 matmuls"),
                         llvm::cl::init(false)};
  Option<unsigned> optLevel{*this, "opt-level", llvm::cl::desc("device optimisation level"),
                            llvm::cl::init(3)};
  Option<std::string> toolkit{*this, "toolkit", llvm::cl::desc("CUDA toolkit root"),
                              llvm::cl::init("")};
  Option<int64_t> attentionSplits{
      *this, "attention-splits",
      llvm::cl::desc("thread blocks sharing the keys of one cached-attention row (<= 1: off)"),
      llvm::cl::init(16)};

  GpuTargetOptions toTarget(std::string &error) const {
    GpuTargetOptions o;
    if (!parseChips(chips, o.chips, error))
      o.chips.clear();
    if (format != "fatbin" && format != "bin" && format != "isa")
      error = "format must be fatbin, bin or isa, got '" + format.getValue() + "'";
    if (o.chips.size() > 1 && format != "fatbin")
      error = "several chips need format=fatbin (one image holding every cubin)";
    o.format = format;
    o.features = features;
    o.tensorCores = tensorCores;
    o.allowTf32 = allowTf32;
    o.optLevel = optLevel;
    o.attentionSplits = attentionSplits;
    o.toolkitPath = toolkit;
    return o;
  }
};

} // namespace

void registerCudaDialects(DialectRegistry &registry) {
  registry.insert<affine::AffineDialect, arith::ArithDialect, bufferization::BufferizationDialect,
                  func::FuncDialect, gpu::GPUDialect, linalg::LinalgDialect,
                  memref::MemRefDialect, NVVM::NVVMDialect, nvgpu::NVGPUDialect,
                  scf::SCFDialect, tensor::TensorDialect, vector::VectorDialect>();
}

void buildGpuKernelPipeline(OpPassManager &pm, const GpuTargetOptions &options) {
  // Elementwise arith/math on tensors (residual adds, ...) become linalg.generic first.
  pm.addPass(createConvertElementwiseToLinalgPass());
  PhotonGpuTileAndFuseOptions tile;
  tile.chips.assign(options.chips.begin(), options.chips.end());
  tile.tensorCores = options.tensorCores;
  tile.allowTf32 = options.allowTf32;
  pm.addNestedPass<func::FuncOp>(createPhotonGpuTileAndFuse(tile));
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  bufferization::OneShotBufferizePassOptions buf;
  buf.bufferizeFunctionBoundaries = true;
  buf.functionBoundaryTypeConversion = bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(bufferization::createOneShotBufferizePass(buf));
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  // Intermediates are freed after their last use (gpu.dealloc after map-to-launch).
  pm.addPass(createPhotonGpuInsertDealloc());
  pm.addNestedPass<func::FuncOp>(createPhotonGpuMapToLaunch());
  pm.addNestedPass<func::FuncOp>(createPhotonGpuMmaSync());
  pm.addNestedPass<func::FuncOp>(createConvertLinalgToLoopsPass());
  // Loops still on the host (kv_append's pool stores, cached attention, host-side linalg
  // just turned into loops) touch device buffers: run them as kernels.
  pm.addNestedPass<func::FuncOp>(createPhotonGpuHostLoopsToKernels());
  // The cached-attention kernel among them: keys split across blocks (flash-decoding).
  PhotonGpuSplitKAttentionOptions split;
  split.splits = options.attentionSplits;
  pm.addNestedPass<func::FuncOp>(createPhotonGpuSplitKAttention(split));
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  pm.addPass(memref::createFoldMemRefAliasOpsPass());
  pm.addPass(mlir::photon::createPhotonExpandShapeToReinterpretCast());
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
}

void buildGpuLoweringPipeline(OpPassManager &pm, const GpuTargetOptions &options) {
  buildGpuKernelPipeline(pm, options);
  pm.addPass(createConvertNVGPUToNVVMPass());
  pm.addPass(createGpuKernelOutliningPass());
  pm.addPass(createConvertVectorToSCFPass());
  pm.addPass(createSCFToControlFlowPass());
  pm.addPass(createConvertNVVMToLLVMPass());
  pm.addPass(createConvertFuncToLLVMPass());
  pm.addPass(mlir::photon::createPhotonExpandShapeToReinterpretCast());
  pm.addPass(memref::createExpandStridedMetadataPass());
  for (const std::string &chip : options.chips) {
    GpuNVVMAttachTargetOptions attach;
    attach.chip = chip;
    attach.features = options.features;
    attach.optLevel = options.optLevel;
    pm.addPass(createGpuNVVMAttachTarget(attach));
  }
  pm.addPass(createLowerAffinePass());
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createConvertIndexToLLVMPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  OpPassManager &gpuPm = pm.nest<gpu::GPUModuleOp>();
  gpuPm.addPass(createConvertGpuOpsToNVVMOps());
  gpuPm.addPass(createCanonicalizerPass());
  gpuPm.addPass(createCSEPass());
  gpuPm.addPass(createReconcileUnrealizedCastsPass());
  pm.addPass(createGpuToLLVMConversionPass());
  GpuModuleToBinaryPassOptions toBinary;
  bool merge = options.chips.size() > 1;
  toBinary.compilationTarget = merge ? "bin" : options.format;
  toBinary.toolkitPath = toolkitRoot(options.toolkitPath);
  toBinary.elfSection = options.elfSection;
  pm.addPass(createGpuModuleToBinaryPass(toBinary));
  if (merge)
    pm.addPass(createPhotonGpuMergeFatbin(PhotonGpuMergeFatbinOptions{options.toolkitPath}));
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
}

void registerCudaPasses() {
  static bool done = false;
  if (done)
    return;
  done = true;
  registerPhotonCudaPasses();
  PassPipelineRegistration<CudaPipelineOptions>(
      "photon-gpu-kernels",
      "photon GPU kernels: tile/fuse linalg on tensors, bufferize, map to gpu.launch, "
      "tensor cores (gpu/nvgpu IR, no NVVM)",
      [](OpPassManager &pm, const CudaPipelineOptions &o) {
        std::string error;
        GpuTargetOptions t = o.toTarget(error);
        if (!error.empty())
          pm.addPass(std::make_unique<OptionErrorPass>("photon-gpu-kernels: " + error));
        else
          buildGpuKernelPipeline(pm, t);
      });
  PassPipelineRegistration<CudaPipelineOptions>(
      "photon-gpu-lowering",
      "photon GPU lowering: linalg on tensors -> gpu/nvgpu -> NVVM -> fatbin (ptxas) with "
      "the host code in the LLVM dialect",
      [](OpPassManager &pm, const CudaPipelineOptions &o) {
        std::string error;
        GpuTargetOptions t = o.toTarget(error);
        if (!error.empty())
          pm.addPass(std::make_unique<OptionErrorPass>("photon-gpu-lowering: " + error));
        else
          buildGpuLoweringPipeline(pm, t);
      });
}

} // namespace photon::cuda
