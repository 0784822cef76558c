//===- GpuLaunchToLoops.cpp - gpu.launch as host loops (testing) ---------------------===//
//
// For checking kernel rewrites on a machine without a GPU: each gpu.launch becomes the
// loop nest it stands for (blocks z, y, x, then threads z, y, x, outermost first) with the
// body inlined, gpu.alloc / gpu.dealloc become memref.alloc / memref.dealloc and gpu.wait
// goes, so the function runs on the CPU (mlir-runner) and its results can be compared
// with the unrewritten kernel's. Only kernels whose threads do not communicate can run
// this way: a launch with a barrier, shared memory or other gpu ops inside is refused.
// Not part of any pipeline (test/Cuda/split-k-attention-numeric.mlir).
//
//===----------------------------------------------------------------------===//
#include "photon/Codegen/CUDA/CudaPipeline.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/PatternMatch.h"

using namespace mlir;

namespace photon::cuda {
#define GEN_PASS_DEF_PHOTONGPULAUNCHTOLOOPS
#include "photon/Codegen/CUDA/Passes.h.inc"

namespace {

struct GpuLaunchToLoopsPass : public impl::PhotonGpuLaunchToLoopsBase<GpuLaunchToLoopsPass> {
  using Base::Base;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    IRRewriter rw(func.getContext());
    SmallVector<gpu::LaunchOp> launches;
    func.walk([&](gpu::LaunchOp l) { launches.push_back(l); });
    for (gpu::LaunchOp l : launches) {
      if (l.getAsyncToken() || !l.getAsyncDependencies().empty() ||
          l.getNumWorkgroupAttributions() || l.getNumPrivateAttributions() ||
          l.hasClusterSize() || !l.getBody().hasOneBlock()) {
        l.emitError("photon-gpu-launch-to-loops: only synchronous launches without "
                    "attributions or clusters can run as loops");
        return signalPassFailure();
      }
      WalkResult r = l.getBody().walk([&](Operation *op) {
        if (op->getDialect() == l->getDialect() && !isa<gpu::TerminatorOp>(op))
          return WalkResult::interrupt();
        return WalkResult::advance();
      });
      if (r.wasInterrupted()) {
        l.emitError("photon-gpu-launch-to-loops: a kernel with gpu ops inside (barriers, "
                    "ids read by op, shuffles) cannot run as loops");
        return signalPassFailure();
      }
      Location loc = l.getLoc();
      rw.setInsertionPoint(l);
      Value c0 = arith::ConstantIndexOp::create(rw, loc, 0);
      Value c1 = arith::ConstantIndexOp::create(rw, loc, 1);
      gpu::KernelDim3 g = l.getGridSizeOperandValues(), b = l.getBlockSizeOperandValues();
      // Outermost first: blocks z, y, x, threads z, y, x.
      Value ubs[6] = {g.z, g.y, g.x, b.z, b.y, b.x};
      Value ivs[6];
      for (int i = 0; i < 6; ++i) {
        auto f = scf::ForOp::create(rw, loc, c0, ubs[i], c1);
        ivs[i] = f.getInductionVar();
        rw.setInsertionPoint(f.getBody()->getTerminator());
      }
      Block &body = l.getBody().front();
      rw.eraseOp(body.getTerminator());
      // Block arguments: block ids, thread ids, grid size, block size (x, y, z each).
      SmallVector<Value> args = {ivs[2], ivs[1], ivs[0], ivs[5], ivs[4], ivs[3],
                                 g.x,    g.y,    g.z,    b.x,    b.y,    b.z};
      rw.inlineBlockBefore(&body, rw.getInsertionBlock(), rw.getInsertionPoint(), args);
      rw.eraseOp(l);
    }
    // Device memory as host memory; the waits go.
    SmallVector<Operation *> ops;
    func.walk([&](Operation *op) {
      if (isa<gpu::AllocOp, gpu::DeallocOp, gpu::WaitOp>(op))
        ops.push_back(op);
    });
    for (Operation *op : ops) {
      rw.setInsertionPoint(op);
      if (auto a = dyn_cast<gpu::AllocOp>(op)) {
        if (a.getHostShared() || !a.getSymbolOperands().empty()) {
          a.emitError("photon-gpu-launch-to-loops: unsupported gpu.alloc");
          return signalPassFailure();
        }
        Value m = memref::AllocOp::create(rw, a.getLoc(), a.getMemref().getType(), a.getDynamicSizes());
        a.getMemref().replaceAllUsesWith(m);
      } else if (auto d = dyn_cast<gpu::DeallocOp>(op)) {
        memref::DeallocOp::create(rw, d.getLoc(), d.getMemref());
      }
    }
    // Tokens only feed other async ops and waits, all of which go: drop operands first.
    for (Operation *op : ops)
      op->dropAllUses();
    for (Operation *op : ops)
      op->dropAllReferences();
    for (Operation *op : ops)
      rw.eraseOp(op);
  }
};

} // namespace

} // namespace photon::cuda
