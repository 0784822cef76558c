//===- GpuMmaSync.cpp - warp-level matmul -> nvgpu.mma.sync (photon-gpu-mma-sync) ----===//
#include "photon/Codegen/CUDA/CudaPipeline.h"
#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/TransformOps/GPUTransformOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Utils/Utils.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Interfaces/ValueBoundsOpInterface.h"

using namespace mlir;

namespace photon::cuda {
#define GEN_PASS_DEF_PHOTONGPUMMASYNC
#include "photon/Codegen/CUDA/Passes.h.inc"

namespace {

//===----------------------------------------------------------------------===//
// Warp-level matmul -> nvgpu.mma.sync
//===----------------------------------------------------------------------===//

struct Frag {
  // (row, col) of each element of the fragment, in vector row-major order.
  SmallVector<std::pair<AffineExpr, AffineExpr>> idx;
  SmallVector<int64_t> shape;
};

/// photon-gpu-mma-sync (Passes.td).
struct GpuMmaSyncPass : public impl::PhotonGpuMmaSyncBase<GpuMmaSyncPass> {
  using Base::Base;

  void runOnOperation() override {
    SmallVector<linalg::MatmulOp> mms;
    getOperation().walk([&](linalg::MatmulOp mm) {
      if (mm->getParentOfType<gpu::LaunchOp>() && mm.hasPureBufferSemantics() &&
          mm->hasAttr(kMmaKAttrName))
        mms.push_back(mm);
    });
    for (linalg::MatmulOp mm : mms)
      if (failed(rewrite(mm)))
        return signalPassFailure();
  }

  LogicalResult rewrite(linalg::MatmulOp mm) {
    MLIRContext *ctx = mm.getContext();
    IRRewriter rewriter(ctx);
    Location loc = mm.getLoc();
    Value A = mm.getDpsInputOperand(0)->get(), B = mm.getDpsInputOperand(1)->get(),
          C = mm.getDpsInitOperand(0)->get();
    auto aTy = cast<MemRefType>(A.getType()),
         cTy = cast<MemRefType>(C.getType());
    bool transB = mm.hasUserDefinedMaps();
    int64_t M = cTy.getDimSize(0), N = cTy.getDimSize(1), K = aTy.getDimSize(1);
    int64_t kStep = cast<IntegerAttr>(mm->getAttr(kMmaKAttrName)).getInt();
    if (M != 16 || N != 8 || ShapedType::isDynamic(K) || K % kStep)
      return mm->emitError("photon-gpu-mma-sync: expected a 16x8xK warp tile with K a "
                           "multiple of ")
             << kStep << ", got " << M << "x" << N << "x" << K;
    Type aE = aTy.getElementType(), cE = cTy.getElementType();
    AffineExpr lane = getAffineDimExpr(0, ctx);
    AffineExpr g = lane.floorDiv(4), t = lane % 4;
    Frag fa, fb, fc;
    fc.idx = {{g, t * 2}, {g, t * 2 + 1}, {g + 8, t * 2}, {g + 8, t * 2 + 1}};
    fc.shape = {2, 2};
    if (kStep == 16) {
      fa.idx = {{g, t * 2},     {g, t * 2 + 1},     {g + 8, t * 2},     {g + 8, t * 2 + 1},
                {g, t * 2 + 8}, {g, t * 2 + 9},     {g + 8, t * 2 + 8}, {g + 8, t * 2 + 9}};
      fa.shape = {4, 2};
      // B as (k, n)
      fb.idx = {{t * 2, g}, {t * 2 + 1, g}, {t * 2 + 8, g}, {t * 2 + 9, g}};
      fb.shape = {2, 2};
    } else {
      fa.idx = {{g, t}, {g + 8, t}};
      fa.shape = {2, 1};
      fb.idx = {{t, g}};
      fb.shape = {1, 1};
    }

    rewriter.setInsertionPoint(mm);
    Value tid = gpu::ThreadIdOp::create(rewriter, loc, gpu::Dimension::x);
    Value laneV = affine::AffineApplyOp::create(
        rewriter, loc, AffineMap::get(1, 0, lane % 32, ctx), ValueRange{tid});
    auto at = [&](AffineExpr e, Value offset) -> Value {
      AffineExpr s0 = getAffineSymbolExpr(0, ctx);
      return affine::AffineApplyOp::create(rewriter, loc, AffineMap::get(1, 1, e + s0, ctx),
                                           ValueRange{laneV, offset});
    };
    Value zero = arith::ConstantIndexOp::create(rewriter, loc, 0);
    auto loadFrag = [&](Value mem, const Frag &f, Value rowOff, Value colOff, bool swap) {
      SmallVector<Value> elems;
      for (auto [r, c] : f.idx) {
        Value ri = at(r, rowOff), ci = at(c, colOff);
        elems.push_back(memref::LoadOp::create(rewriter, loc, mem,
                                               swap ? ValueRange{ci, ri} : ValueRange{ri, ci}));
      }
      auto vt = VectorType::get(f.shape, cast<MemRefType>(mem.getType()).getElementType());
      return vector::FromElementsOp::create(rewriter, loc, vt, elems).getResult();
    };

    // Initial accumulator: a fill of C right before folds into a splat.
    Value acc;
    linalg::FillOp fill;
    for (Operation *p = mm->getPrevNode(); p; p = p->getPrevNode())
      if (auto f = dyn_cast<linalg::FillOp>(p); f && f.getDpsInitOperand(0)->get() == C) {
        fill = f;
        break;
      }
    auto accTy = VectorType::get(fc.shape, cE);
    if (fill) {
      acc = vector::BroadcastOp::create(rewriter, loc, accTy, fill.getDpsInputOperand(0)->get());
      rewriter.eraseOp(fill);
    } else {
      acc = loadFrag(C, fc, zero, zero, false);
    }
    Value kUb = arith::ConstantIndexOp::create(rewriter, loc, K);
    Value kSt = arith::ConstantIndexOp::create(rewriter, loc, kStep);
    auto loop = scf::ForOp::create(rewriter, loc, zero, kUb, kSt, ValueRange{acc});
    {
      OpBuilder::InsertionGuard guard(rewriter);
      rewriter.setInsertionPointToStart(loop.getBody());
      Value k = loop.getInductionVar();
      Value a = loadFrag(A, fa, zero, k, false);
      // B fragment indices are (k, n); a transposed B is stored as [n, k].
      Value b = loadFrag(B, fb, k, zero, transB);
      Value c = loop.getRegionIterArgs()[0];
      Value r = nvgpu::MmaSyncOp::create(rewriter, loc, a, b, c,
                                         ArrayRef<int64_t>{16, 8, kStep},
                                         /*tf32Enabled=*/kStep == 4);
      scf::YieldOp::create(rewriter, loc, r);
    }
    Value res = loop.getResult(0);
    for (auto [i, rc] : llvm::enumerate(fc.idx)) {
      Value v = vector::ExtractOp::create(rewriter, loc, res,
                                          ArrayRef<int64_t>{int64_t(i) / 2, int64_t(i) % 2});
      memref::StoreOp::create(rewriter, loc, v, C,
                              ValueRange{at(rc.first, zero), at(rc.second, zero)});
    }
    (void)aE;
    rewriter.eraseOp(mm);
    return success();
  }
};

} // namespace
} // namespace photon::cuda
