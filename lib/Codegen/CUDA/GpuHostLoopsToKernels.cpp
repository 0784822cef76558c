//===- GpuHostLoopsToKernels.cpp - host-side loops over device memory -> gpu.launch -===//
//
// The compiler leaves a few loops outside linalg: the scf.for nests of kv_append that
// store new K/V rows into the cache pool (indices read from the block table and the
// sequence lengths), and the cached-attention loop over the pool. After bufferization
// and photon-gpu-map-to-launch every buffer those loops read or write is device memory,
// so they cannot run on the host: this pass moves each such nest into a gpu.launch.
//
// Mapping: the chain of perfectly nested scf.for loops at the top of the nest (no
// iter_args; only side-effect-free ops besides the inner loop) whose bounds the host can
// compute goes onto the grid (x, y, z: outermost first), and the innermost loop of the
// chain onto the threads of a block when its trip count is static and <= 1024. The rest
// of the nest runs in each thread as written. This is only done when the nest is
// parallel in the sense the compiler's loops are: no iter_args on the mapped loops, and
// no buffer that the nest both reads and writes (other than host scratch buffers,
// memref.alloca used only inside the nest, which become per-thread private memory).
// Otherwise the whole nest runs in one thread of a one-block kernel (correct, slow).
//
//===----------------------------------------------------------------------===//
#include "photon/Codegen/CUDA/CudaPipeline.h"

#include "DeviceAlloc.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

using namespace mlir;

namespace photon::cuda {
#define GEN_PASS_DEF_PHOTONGPUHOSTLOOPSTOKERNELS
#include "photon/Codegen/CUDA/Passes.h.inc"

namespace {

/// The buffer a memref value views (through subview / cast / reshape / view ops).
Value rootBuffer(Value v) {
  while (Operation *def = v.getDefiningOp()) {
    if (auto view = dyn_cast<ViewLikeOpInterface>(def)) {
      v = view.getViewSource();
      continue;
    }
    break;
  }
  return v;
}

/// True when the op reads or writes memory through a memref operand.
bool touchesMemory(Operation *op) {
  if (isa<memref::LoadOp, memref::StoreOp, memref::CopyOp, linalg::LinalgOp>(op))
    return true;
  auto mem = dyn_cast<MemoryEffectOpInterface>(op);
  if (!mem)
    return false;
  SmallVector<MemoryEffects::EffectInstance> effects;
  mem.getEffects(effects);
  for (auto &e : effects)
    if (e.getValue() && isa<MemRefType>(e.getValue().getType()) &&
        (isa<MemoryEffects::Read>(e.getEffect()) || isa<MemoryEffects::Write>(e.getEffect())))
      return true;
  return false;
}

bool definedOutside(Value v, Operation *nest) {
  if (Operation *def = v.getDefiningOp())
    return !nest->isAncestor(def);
  return !nest->isAncestor(cast<BlockArgument>(v).getOwner()->getParentOp());
}

/// A bound usable outside the nest: a constant, or a value defined outside it.
std::optional<OpFoldResult> hostBound(Value v, Operation *nest) {
  if (std::optional<int64_t> c = getConstantIntValue(v))
    return OpFoldResult(IntegerAttr::get(IndexType::get(v.getContext()), *c));
  if (definedOutside(v, nest))
    return OpFoldResult(v);
  return std::nullopt;
}

/// photon-gpu-host-loops-to-kernels (Passes.td).
struct GpuHostLoopsToKernelsPass
    : public impl::PhotonGpuHostLoopsToKernelsBase<GpuHostLoopsToKernelsPass> {
  using Base::Base;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func.isExternal())
      return;
    SmallVector<scf::ForOp> nests;
    for (Operation &op : func.getBody().getOps()) {
      auto loop = dyn_cast<scf::ForOp>(&op);
      if (!loop)
        continue;
      bool mem = false;
      loop->walk<WalkOrder::PreOrder>([&](Operation *inner) {
        if (isa<gpu::LaunchOp>(inner))
          return WalkResult::skip();
        if (touchesMemory(inner)) {
          mem = true;
          return WalkResult::interrupt();
        }
        return WalkResult::advance();
      });
      if (mem)
        nests.push_back(loop);
    }
    // Host stack buffers that are not scratch of one nest (filled on the host side and
    // passed to callees that use them in kernels, e.g. the block table of a decoder
    // window's cache) become device buffers, freed before the function returns.
    IRRewriter rewriter(func.getContext());
    SmallVector<memref::AllocaOp> toDevice;
    for (auto a : func.getBody().getOps<memref::AllocaOp>()) {
      if (a->use_empty())
        continue;
      bool scratch = llvm::any_of(nests, [&](scf::ForOp n) {
        return llvm::all_of(a->getUsers(), [&](Operation *u) { return n->isAncestor(u); });
      });
      if (!scratch)
        toDevice.push_back(a);
    }
    SmallVector<func::ReturnOp> returns;
    func.walk([&](func::ReturnOp r) { returns.push_back(r); });
    for (memref::AllocaOp a : toDevice) {
      Location loc = a.getLoc();
      Value mem = replaceWithDeviceAlloc(rewriter, a);
      for (func::ReturnOp r : returns) {
        rewriter.setInsertionPoint(r);
        createDeviceDealloc(rewriter, loc, mem);
      }
    }
    for (scf::ForOp nest : nests)
      if (failed(wrap(nest)))
        return signalPassFailure();
  }

  LogicalResult wrap(scf::ForOp nest) {
    if (nest.getNumResults() != 0)
      return nest->emitError("photon-gpu-host-loops-to-kernels: a host loop over device "
                             "buffers that yields values to the host is not supported");
    bool nestedLaunch = false;
    nest->walk([&](gpu::LaunchOp) { nestedLaunch = true; });
    if (nestedLaunch)
      return nest->emitError("photon-gpu-host-loops-to-kernels: a host loop that launches "
                             "kernels and also touches device buffers is not supported");
    func::FuncOp func = nest->getParentOfType<func::FuncOp>();

    // Host scratch buffers used only inside the nest become per-thread private memory.
    SmallVector<memref::AllocaOp> scratch;
    for (auto a : func.getBody().getOps<memref::AllocaOp>()) {
      bool inside = !a->use_empty() && llvm::all_of(a->getUsers(), [&](Operation *u) {
        return nest->isAncestor(u);
      });
      if (inside)
        scratch.push_back(a);
    }
    for (auto a : func.getBody().getOps<memref::AllocaOp>()) {
      bool used = llvm::any_of(a->getUsers(), [&](Operation *u) { return nest->isAncestor(u); });
      if (used && !llvm::is_contained(scratch, a))
        return a->emitError("photon-gpu-host-loops-to-kernels: a host stack buffer used both "
                            "inside and outside a host loop over device buffers");
    }
    DenseSet<Value> privateBufs;
    for (memref::AllocaOp a : scratch)
      privateBufs.insert(a.getResult());

    // Parallel when no shared buffer is both read and written by the nest.
    DenseSet<Value> reads, writes;
    nest->walk([&](Operation *op) {
      if (auto l = dyn_cast<memref::LoadOp>(op)) {
        reads.insert(rootBuffer(l.getMemRef()));
      } else if (auto s = dyn_cast<memref::StoreOp>(op)) {
        writes.insert(rootBuffer(s.getMemRef()));
      } else if (auto mem = dyn_cast<MemoryEffectOpInterface>(op)) {
        SmallVector<MemoryEffects::EffectInstance> effects;
        mem.getEffects(effects);
        for (auto &e : effects) {
          if (!e.getValue() || !isa<MemRefType>(e.getValue().getType()))
            continue;
          if (isa<MemoryEffects::Read>(e.getEffect()))
            reads.insert(rootBuffer(e.getValue()));
          if (isa<MemoryEffects::Write>(e.getEffect()))
            writes.insert(rootBuffer(e.getValue()));
        }
      }
    });
    bool parallel = true;
    for (Value w : writes)
      if (!privateBufs.contains(w) && reads.contains(w))
        parallel = false;

    // The chain of perfectly nested loops with host-computable bounds.
    SmallVector<scf::ForOp> chain;
    if (parallel) {
      scf::ForOp cur = nest;
      while (cur) {
        if (cur.getNumRegionIterArgs() != 0)
          break;
        auto lb = hostBound(cur.getLowerBound(), nest);
        auto ub = hostBound(cur.getUpperBound(), nest);
        std::optional<int64_t> step = getConstantIntValue(cur.getStep());
        if (!lb || !ub || !step || *step <= 0)
          break;
        chain.push_back(cur);
        scf::ForOp next;
        bool perfect = true;
        for (Operation &op : cur.getBody()->without_terminator()) {
          if (auto f = dyn_cast<scf::ForOp>(&op)) {
            if (next) {
              perfect = false;
              break;
            }
            next = f;
            continue;
          }
          if (!isMemoryEffectFree(&op) || op.getNumRegions() != 0) {
            perfect = false;
            break;
          }
        }
        cur = perfect ? next : scf::ForOp();
      }
    }

    // Grid: up to three loops, outermost first; threads: the innermost loop of the chain
    // when its trip count is static and fits a block (and the chain has more than one
    // loop, so that the grid still carries the outer, usually dynamic, extents).
    IRRewriter rewriter(nest.getContext());
    Location loc = nest.getLoc();
    rewriter.setInsertionPoint(nest);
    MLIRContext *ctx = nest.getContext();
    AffineExpr l, u;
    bindSymbols(ctx, l, u);
    auto tripCount = [&](scf::ForOp f) -> OpFoldResult {
      int64_t s = *getConstantIntValue(f.getStep());
      return affine::makeComposedFoldedAffineApply(
          rewriter, loc, (u - l).ceilDiv(s),
          {*hostBound(f.getLowerBound(), nest), *hostBound(f.getUpperBound(), nest)});
    };
    scf::ForOp threadLoop;
    int64_t threads = 1;
    if (chain.size() >= 2) {
      OpFoldResult n = tripCount(chain.back());
      if (std::optional<int64_t> c = getConstantIntValue(n); c && *c >= 1 && *c <= 1024) {
        threadLoop = chain.back();
        threads = *c;
      }
    }
    SmallVector<scf::ForOp> gridLoops;
    for (scf::ForOp f : chain) {
      if (f == threadLoop || gridLoops.size() == 3)
        break;
      gridLoops.push_back(f);
    }
    Value one = arith::ConstantIndexOp::create(rewriter, loc, 1);
    SmallVector<Value> grid = {one, one, one};
    for (auto [i, f] : llvm::enumerate(gridLoops))
      grid[i] = getValueOrCreateConstantIndexOp(rewriter, loc, tripCount(f));
    Value blockX = arith::ConstantIndexOp::create(rewriter, loc, threads);
    auto launch =
        gpu::LaunchOp::create(rewriter, loc, grid[0], grid[1], grid[2], blockX, one, one);
    Block &body = launch.getBody().front();
    rewriter.setInsertionPointToEnd(&body);
    auto term = gpu::TerminatorOp::create(rewriter, loc);
    rewriter.moveOpBefore(nest, term);
    for (memref::AllocaOp a : scratch)
      rewriter.moveOpBefore(a, &body, body.begin());

    // Replace each mapped loop by its body with iv = lb + id * step.
    gpu::KernelDim3 bids = launch.getBlockIds();
    Value ids[3] = {bids.x, bids.y, bids.z};
    auto mapLoop = [&](scf::ForOp f, Value id) {
      rewriter.setInsertionPoint(f);
      OpFoldResult lb = getAsOpFoldResult(f.getLowerBound()); // constant or host value
      int64_t step = *getConstantIntValue(f.getStep());
      AffineExpr s0, d0;
      bindSymbols(ctx, s0);
      bindDims(ctx, d0);
      Value iv = getValueOrCreateConstantIndexOp(
          rewriter, f.getLoc(),
          affine::makeComposedFoldedAffineApply(rewriter, f.getLoc(), s0 + d0 * step,
                                                {lb, OpFoldResult(id)}));
      Block *b = f.getBody();
      rewriter.eraseOp(b->getTerminator());
      rewriter.inlineBlockBefore(b, f, ValueRange{iv});
      rewriter.eraseOp(f);
    };
    for (auto [i, f] : llvm::enumerate(gridLoops))
      mapLoop(f, ids[i]);
    if (threadLoop)
      mapLoop(threadLoop, launch.getThreadIds().x);
    if (!parallel)
      launch->setAttr(kSerialLaunchAttrName, UnitAttr::get(ctx));
    return success();
  }
};

} // namespace

} // namespace photon::cuda
