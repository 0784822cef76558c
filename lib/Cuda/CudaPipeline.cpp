//===- CudaPipeline.cpp - the photon GPU lowering pipeline and fatbin merging ------===//
#include "photon/Target/Cuda/CudaPipeline.h"
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

static std::string toolkitRoot(const GpuTargetOptions &o) {
  if (!o.toolkitPath.empty())
    return o.toolkitPath;
  for (const char *env : {"CUDA_HOME", "CUDA_PATH", "CUDA_ROOT"})
    if (const char *v = std::getenv(env); v && *v)
      return v;
  return "/usr/local/cuda";
}

namespace {

/// Merges the per-chip cubins of each gpu.binary into one fatbin with `fatbinary`, so
/// that the host object embeds one image the driver picks the right cubin from.
struct GpuMergeFatbinPass
    : public PassWrapper<GpuMergeFatbinPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(GpuMergeFatbinPass)
  GpuMergeFatbinPass(const GpuTargetOptions &o) : options(o) {}
  StringRef getArgument() const override { return "photon-gpu-merge-fatbin"; }
  StringRef getDescription() const override {
    return "Merge the per-architecture cubins of each gpu.binary into one fatbin";
  }

  void runOnOperation() override {
    SmallVector<gpu::BinaryOp> binaries;
    getOperation().walk([&](gpu::BinaryOp b) { binaries.push_back(b); });
    for (gpu::BinaryOp bin : binaries)
      if (bin.getObjectsAttr().size() > 1 && failed(merge(bin)))
        return signalPassFailure();
  }

  LogicalResult merge(gpu::BinaryOp bin) {
    std::string root = toolkitRoot(options);
    llvm::ErrorOr<std::string> fatbinary =
        llvm::sys::findProgramByName("fatbinary", {root + "/bin"});
    if (!fatbinary)
      return bin->emitError("photon-gpu-merge-fatbin: `fatbinary` not found in ")
             << root << "/bin; install the CUDA toolkit or pass toolkit=<path>";
    SmallVector<std::string> files;
    SmallVector<std::string> args = {*fatbinary, "--64"};
    llvm::scope_exit cleanup([&] {
      for (const std::string &f : files)
        llvm::sys::fs::remove(f);
    });
    Attribute firstTarget;
    DictionaryAttr firstProps;
    for (Attribute a : bin.getObjectsAttr()) {
      auto obj = cast<gpu::ObjectAttr>(a);
      auto target = dyn_cast<NVVM::NVVMTargetAttr>(obj.getTarget());
      if (!target || obj.getFormat() != gpu::CompilationTarget::Binary)
        return bin->emitError("photon-gpu-merge-fatbin: expected NVVM cubin objects "
                              "(gpu-module-to-binary format=bin)");
      if (!firstTarget) {
        firstTarget = target;
        firstProps = obj.getProperties();
      }
      SmallString<128> path;
      int fd;
      if (llvm::sys::fs::createTemporaryFile("photon-" + target.getChip(), "cubin", fd, path))
        return bin->emitError("photon-gpu-merge-fatbin: cannot create a temporary file");
      files.push_back(path.str().str());
      {
        llvm::raw_fd_ostream os(fd, /*shouldClose=*/true);
        os << obj.getObject().getValue();
      }
      args.push_back("--image3=kind=elf,sm=" + target.getChip().drop_front(3).str() +
                     ",file=" + path.str().str());
    }
    SmallString<128> out;
    if (llvm::sys::fs::createTemporaryFile("photon-merged", "fatbin", out))
      return bin->emitError("photon-gpu-merge-fatbin: cannot create a temporary file");
    files.push_back(out.str().str());
    args.push_back("--create=" + out.str().str());
    SmallVector<StringRef> argRefs(args.begin(), args.end());
    std::string err;
    int rc = llvm::sys::ExecuteAndWait(*fatbinary, argRefs, std::nullopt, {}, 0, 0, &err);
    if (rc != 0)
      return bin->emitError("photon-gpu-merge-fatbin: fatbinary failed (exit ")
             << rc << ")" << (err.empty() ? "" : ": ") << err;
    auto buf = llvm::MemoryBuffer::getFile(out, /*IsText=*/false);
    if (!buf)
      return bin->emitError("photon-gpu-merge-fatbin: cannot read ") << out;
    MLIRContext *ctx = bin.getContext();
    NamedAttrList props;
    if (firstProps)
      props.append(firstProps.getValue());
    SmallVector<Attribute> chips;
    for (Attribute a : bin.getObjectsAttr())
      chips.push_back(StringAttr::get(
          ctx, cast<NVVM::NVVMTargetAttr>(cast<gpu::ObjectAttr>(a).getTarget()).getChip()));
    props.set(kChipsPropertyName, ArrayAttr::get(ctx, chips));
    auto merged = gpu::ObjectAttr::get(
        ctx, firstTarget, gpu::CompilationTarget::Fatbin,
        StringAttr::get(ctx, (*buf)->getBuffer()), props.getDictionary(ctx), nullptr);
    bin.setObjectsAttr(ArrayAttr::get(ctx, {merged}));
    return success();
  }

  GpuTargetOptions options;
};

/// Frees the device buffers of intermediates: every host `memref.alloc` (one that is not
/// inside a kernel's scf.forall) that does not leave its function gets a `memref.dealloc`
/// after its last use, which photon-gpu-map-to-launch turns into `gpu.dealloc` with the
/// `gpu.alloc`. Upstream ownership-based deallocation is not used: where it cannot decide
/// aliasing statically it emits a host-side helper reading i1/index buffers, which would
/// live in device memory here. The analysis is conservative instead: a buffer that may be
/// returned (through views, casts, region results or a callee returning its argument) or
/// that reaches an op it does not understand is not freed.
struct GpuInsertDeallocPass
    : public PassWrapper<GpuInsertDeallocPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(GpuInsertDeallocPass)
  StringRef getArgument() const override { return "photon-gpu-insert-dealloc"; }
  StringRef getDescription() const override {
    return "Free host-side buffers (device memory after map-to-launch) after their last use";
  }
  void getDependentDialects(DialectRegistry &registry) const override {
    registry.insert<memref::MemRefDialect>();
  }

  /// Per function: for each memref result, the argument numbers it may alias (-1: any).
  DenseMap<Operation *, SmallVector<SmallVector<int>>> returnsArg;

  static bool isView(Operation *op) {
    return isa<ViewLikeOpInterface, memref::CastOp, memref::ExpandShapeOp,
               memref::CollapseShapeOp, memref::ReinterpretCastOp>(op);
  }

  /// The values aliasing `root` (views of views...). Returns false if an alias escapes
  /// the function or reaches something not understood.
  bool collectAliases(Value root, SymbolTable &symbols, SmallVectorImpl<Value> &aliases,
                      bool &returned) {
    SmallVector<Value> work = {root};
    DenseSet<Value> seen;
    bool ok = true;
    while (!work.empty()) {
      Value v = work.pop_back_val();
      if (!seen.insert(v).second)
        continue;
      aliases.push_back(v);
      for (OpOperand &use : v.getUses()) {
        Operation *user = use.getOwner();
        if (isa<func::ReturnOp>(user)) {
          returned = true;
          continue;
        }
        if (isView(user)) {
          for (Value r : user->getResults())
            if (isa<BaseMemRefType>(r.getType()))
              work.push_back(r);
          continue;
        }
        if (auto call = dyn_cast<func::CallOp>(user)) {
          auto callee = symbols.lookup<func::FuncOp>(call.getCallee());
          auto it = callee ? returnsArg.find(callee) : returnsArg.end();
          for (auto [i, r] : llvm::enumerate(call.getResults())) {
            if (!isa<BaseMemRefType>(r.getType()))
              continue;
            if (it == returnsArg.end()) {
              ok = false; // unknown callee: may return its argument
              continue;
            }
            for (int a : it->second[i])
              if (a < 0 || a == static_cast<int>(use.getOperandNumber()))
                work.push_back(r);
          }
          continue;
        }
        if (isa<scf::YieldOp, scf::ForOp, scf::IfOp, scf::WhileOp, cf::BranchOp,
                cf::CondBranchOp>(user) &&
            !user->getParentOfType<scf::ForallOp>())
          ok = false; // flows into a region result / block argument: not tracked
        if (llvm::any_of(user->getResultTypes(),
                         [](Type t) { return isa<BaseMemRefType>(t); }))
          ok = false; // an op (not a known view) whose memref result may alias
        if (auto mem = dyn_cast<MemoryEffectOpInterface>(user))
          if (mem.getEffectOnValue<MemoryEffects::Free>(v))
            ok = false; // already freed
        // Everything else reads or writes through the buffer (copies, linalg, loads,
        // kernels' forall bodies) without keeping it.
      }
    }
    return ok;
  }

  void summarize(func::FuncOp f) {
    SmallVector<SmallVector<int>> res(f.getNumResults());
    f.walk([&](func::ReturnOp ret) {
      for (auto [i, v] : llvm::enumerate(ret.getOperands())) {
        if (!isa<BaseMemRefType>(v.getType()))
          continue;
        // Walk back through views to the root.
        Value cur = v;
        while (Operation *def = cur.getDefiningOp()) {
          if (!isView(def))
            break;
          cur = def->getOperand(0);
        }
        if (auto arg = dyn_cast<BlockArgument>(cur)) {
          if (arg.getOwner()->isEntryBlock() && arg.getOwner()->getParentOp() == f)
            res[i].push_back(arg.getArgNumber());
          else
            res[i].push_back(-1);
        } else if (!isa<memref::AllocOp>(cur.getDefiningOp())) {
          auto call = dyn_cast<func::CallOp>(cur.getDefiningOp());
          // A callee's result: fresh only if that callee returns fresh buffers.
          auto it = call ? returnsArg.find(SymbolTable::lookupNearestSymbolFrom(
                               f, call.getCalleeAttr()))
                         : returnsArg.end();
          if (it == returnsArg.end() ||
              !it->second[cast<OpResult>(cur).getResultNumber()].empty())
            res[i].push_back(-1);
        }
      }
    });
    returnsArg[f] = std::move(res);
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    // Callees before callers (the call graph of stage functions is acyclic); functions
    // in a cycle or declarations stay unknown.
    SmallVector<func::FuncOp> order;
    DenseSet<Operation *> visiting, visited;
    std::function<void(func::FuncOp)> visit = [&](func::FuncOp f) {
      if (visited.contains(f) || visiting.contains(f))
        return;
      visiting.insert(f);
      f.walk([&](func::CallOp c) {
        if (auto callee = symbols.lookup<func::FuncOp>(c.getCallee()))
          visit(callee);
      });
      visiting.erase(f);
      visited.insert(f);
      order.push_back(f);
    };
    for (auto f : module.getOps<func::FuncOp>())
      visit(f);
    for (func::FuncOp f : order) {
      if (!f.isExternal())
        summarize(f);
    }
    IRRewriter rewriter(&getContext());
    for (func::FuncOp f : order) {
      if (f.isExternal())
        continue;
      // Fresh buffers: host allocs and results of callees that return fresh buffers.
      SmallVector<Value> roots;
      f.walk([&](Operation *op) {
        if (op->getParentOfType<scf::ForallOp>() || op->getParentOfType<gpu::LaunchOp>())
          return;
        if (isa<memref::AllocOp>(op))
          roots.push_back(op->getResult(0));
        if (auto call = dyn_cast<func::CallOp>(op)) {
          auto callee = symbols.lookup<func::FuncOp>(call.getCallee());
          auto it = callee ? returnsArg.find(callee) : returnsArg.end();
          if (it == returnsArg.end())
            return;
          for (auto [i, r] : llvm::enumerate(call.getResults()))
            if (isa<MemRefType>(r.getType()) && it->second[i].empty())
              roots.push_back(r);
        }
      });
      for (Value root : roots) {
        SmallVector<Value> aliases;
        bool returned = false;
        if (!collectAliases(root, symbols, aliases, returned) || returned)
          continue;
        Block *block = root.getParentBlock();
        Operation *last = root.getDefiningOp();
        bool inBlock = true;
        for (Value a : aliases)
          for (Operation *user : a.getUsers()) {
            Operation *anc = block->findAncestorOpInBlock(*user);
            if (!anc) {
              inBlock = false;
              continue;
            }
            if (last->isBeforeInBlock(anc))
              last = anc;
          }
        if (!inBlock || last->hasTrait<OpTrait::IsTerminator>())
          continue;
        rewriter.setInsertionPointAfter(last);
        memref::DeallocOp::create(rewriter, root.getLoc(), root);
      }
    }
  }
};

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
  pm.addNestedPass<func::FuncOp>(createGpuTileAndFusePass(options));
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  bufferization::OneShotBufferizePassOptions buf;
  buf.bufferizeFunctionBoundaries = true;
  buf.functionBoundaryTypeConversion = bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(bufferization::createOneShotBufferizePass(buf));
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  // Intermediates are freed after their last use (gpu.dealloc after map-to-launch).
  pm.addPass(std::make_unique<GpuInsertDeallocPass>());
  pm.addNestedPass<func::FuncOp>(createGpuMapToLaunchPass());
  pm.addNestedPass<func::FuncOp>(createGpuMmaSyncPass(options));
  pm.addNestedPass<func::FuncOp>(createConvertLinalgToLoopsPass());
  // Loops still on the host (kv_append's pool stores, cached attention, host-side linalg
  // just turned into loops) touch device buffers: run them as kernels.
  pm.addNestedPass<func::FuncOp>(createGpuHostLoopsToKernelsPass());
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
  toBinary.toolkitPath = toolkitRoot(options);
  toBinary.elfSection = options.elfSection;
  pm.addPass(createGpuModuleToBinaryPass(toBinary));
  if (merge)
    pm.addPass(createGpuMergeFatbinPass(options));
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
}

std::unique_ptr<Pass> createGpuMergeFatbinPass(const GpuTargetOptions &options) {
  return std::make_unique<GpuMergeFatbinPass>(options);
}

void registerCudaPasses() {
  static bool done = false;
  if (done)
    return;
  done = true;
  PassRegistration<Pass>([] { return createGpuTileAndFusePass(GpuTargetOptions()); });
  PassRegistration<Pass>([] { return createGpuMapToLaunchPass(); });
  PassRegistration<Pass>([] { return createGpuMmaSyncPass(GpuTargetOptions()); });
  PassRegistration<Pass>([] { return createGpuMergeFatbinPass(GpuTargetOptions()); });
  PassRegistration<Pass>([] { return createGpuHostLoopsToKernelsPass(); });
  PassRegistration<GpuInsertDeallocPass>();
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
