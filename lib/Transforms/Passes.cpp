//===- Passes.cpp - registration of the photon passes and pipelines ------===//

#include "photon/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/OpenMP/OpenMPDialect.h"
#include "mlir/IR/Builders.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir {
namespace photon {
namespace {
#define GEN_PASS_REGISTRATION
#include "photon/Transforms/Passes.h.inc"
} // namespace

namespace {
/// memref.expand_shape -> memref.reinterpret_cast of the source's base buffer with the
/// strides spelled out. MLIR 22's expand-strided-metadata crashes on an expand_shape with
/// more than one dynamic size in one reassociation group ([?, D] into [?, ?, D]), which
/// reshapes of [B*M, ...] streams produce; this rewrite runs right before it.
struct ExpandShapeToReinterpretCastPass
    : public PassWrapper<ExpandShapeToReinterpretCastPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(ExpandShapeToReinterpretCastPass)
  StringRef getArgument() const final { return "photon-expand-shape-to-reinterpret-cast"; }
  StringRef getDescription() const final {
    return "Rewrite memref.expand_shape as memref.reinterpret_cast (works around an MLIR 22 "
           "expand-strided-metadata crash)";
  }
  void runOnOperation() override {
    SmallVector<memref::ExpandShapeOp> ops;
    getOperation().walk([&](memref::ExpandShapeOp op) { ops.push_back(op); });
    for (auto op : ops) {
      OpBuilder b(op);
      Location loc = op.getLoc();
      auto resT = op.getResultType();
      SmallVector<int64_t> tStrides;
      int64_t tOffset;
      if (failed(resT.getStridesAndOffset(tStrides, tOffset))) continue;
      auto md = memref::ExtractStridedMetadataOp::create(b, loc, op.getSrc());
      SmallVector<OpFoldResult> sizes = op.getMixedOutputShape();
      SmallVector<OpFoldResult> strides(resT.getRank());
      auto reassoc = op.getReassociationIndices();
      for (auto [srcDim, group] : llvm::enumerate(reassoc)) {
        Value stride = md.getStrides()[srcDim];
        for (int64_t i = group.size() - 1; i >= 0; --i) {
          int64_t d = group[i];
          strides[d] = stride;
          if (i > 0) {
            Value sz = getValueOrCreateConstantIndexOp(b, loc, sizes[d]);
            stride = arith::MulIOp::create(b, loc, stride, sz);
          }
        }
      }
      for (int64_t d = 0; d < resT.getRank(); ++d) {
        if (!ShapedType::isDynamic(tStrides[d])) strides[d] = b.getIndexAttr(tStrides[d]);
        if (!resT.isDynamicDim(d)) sizes[d] = b.getIndexAttr(resT.getDimSize(d));
      }
      OpFoldResult offset = ShapedType::isDynamic(tOffset)
                                ? OpFoldResult(md.getOffset())
                                : OpFoldResult(b.getIndexAttr(tOffset));
      auto rc = memref::ReinterpretCastOp::create(b, loc, resT, md.getBaseBuffer(), offset,
                                                  sizes, strides);
      op.getResult().replaceAllUsesWith(rc.getResult());
      op.erase();
    }
  }
};
/// memref.copy -> linalg.copy, so convert-linalg-to-loops turns every copy into loops and
/// the artifact needs no `memrefCopy` from MLIR's runner utils.
struct CopyToLinalgPass : public PassWrapper<CopyToLinalgPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(CopyToLinalgPass)
  StringRef getArgument() const final { return "photon-copy-to-linalg"; }
  StringRef getDescription() const final {
    return "Rewrite memref.copy as linalg.copy (lowered to loops, no runtime call)";
  }
  void getDependentDialects(DialectRegistry &r) const override { r.insert<linalg::LinalgDialect>(); }
  void runOnOperation() override {
    SmallVector<memref::CopyOp> ops;
    getOperation().walk([&](memref::CopyOp op) { ops.push_back(op); });
    for (auto op : ops) {
      OpBuilder b(op);
      linalg::CopyOp::create(b, op.getLoc(), op.getSource(), op.getTarget());
      op.erase();
    }
  }
};
/// Inlines memref.alloca_scope regions (convert-scf-to-openmp wraps every parallel body in
/// one; convert-scf-to-cf would then give it several blocks, which its verifier rejects).
/// The kernels allocate no stack memory inside parallel loops, so the scopes are not needed.
struct InlineAllocaScopesPass
    : public PassWrapper<InlineAllocaScopesPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(InlineAllocaScopesPass)
  StringRef getArgument() const final { return "photon-inline-alloca-scopes"; }
  StringRef getDescription() const final {
    return "Inline memref.alloca_scope bodies (after convert-scf-to-openmp)";
  }
  void runOnOperation() override {
    SmallVector<memref::AllocaScopeOp> ops;
    getOperation().walk([&](memref::AllocaScopeOp op) { ops.push_back(op); });
    for (auto op : ops) {
      Block &body = op.getBodyRegion().front();
      Operation *ret = body.getTerminator();
      SmallVector<Value> results(ret->getOperands());
      op->getBlock()->getOperations().splice(Block::iterator(op), body.getOperations(),
                                             body.begin(), Block::iterator(ret));
      op->replaceAllUsesWith(results);
      op->erase();
    }
  }
};
/// Gives every omp.wsloop a dynamic schedule (chunk 1): the kernels' parallel loops have a
/// few coarse iterations (16 chunks of weight rows), and with a static schedule a thread
/// that the OS has descheduled holds up the join for its whole half of the work.
struct DynamicSchedulePass : public PassWrapper<DynamicSchedulePass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(DynamicSchedulePass)
  StringRef getArgument() const final { return "photon-omp-dynamic-schedule"; }
  StringRef getDescription() const final {
    return "Set schedule(dynamic) on every omp.wsloop";
  }
  void runOnOperation() override {
    getOperation().walk([](omp::WsloopOp op) { op.setScheduleKind(omp::ClauseScheduleKind::Dynamic); });
  }
};
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
  if (matmulKernels && kernels.fuseNorm) pm.addPass(createFuseNormMatmulPass());
  // RoPE's cos/sin once per position and frequency, not per head
  if (kernels.mathTables) pm.addPass(createHoistMathTablesPass());
  if (failed(parsePassPipeline(kLowerToLLVM, pm, os)))
    llvm::report_fatal_error(llvm::Twine("photon-lower-to-llvm pipeline: ") + err);
  if (matmulKernels) pm.addPass(createMatmulKernelsPass(kernels));
  pm.addPass(std::make_unique<CopyToLinalgPass>());
  if (failed(parsePassPipeline(openmp ? kLowerToLLVMParallelLoops : kLowerToLLVMLoops, pm, os)))
    llvm::report_fatal_error(llvm::Twine("photon-lower-to-llvm pipeline: ") + err);
  if (openmp) {
    pm.addPass(std::make_unique<InlineAllocaScopesPass>());
    pm.addPass(std::make_unique<DynamicSchedulePass>());
  }
  pm.addPass(std::make_unique<ExpandShapeToReinterpretCastPass>());
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

std::unique_ptr<Pass> createExpandShapeToReinterpretCastPass() {
  return std::make_unique<ExpandShapeToReinterpretCastPass>();
}

void registerPhotonPasses() {
  registerPhotonGenPasses();
  PassRegistration<CopyToLinalgPass>();
  PassRegistration<ExpandShapeToReinterpretCastPass>();
  PassRegistration<InlineAllocaScopesPass>();
  PassRegistration<DynamicSchedulePass>();
  registerMatmulKernelsPass();
  registerFuseNormMatmulPass();
  PassPipelineRegistration<LowerToLLVMPipelineOptions>(
      "photon-lower-to-llvm",
      "The upstream lowering photon-compile runs after convert-photon-to-linalg "
      "(inline, bufferize, loops, LLVM dialect)",
      [](OpPassManager &pm, const LowerToLLVMPipelineOptions &o) {
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
      });
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
