//===- GpuMapToLaunch.cpp - block forall -> gpu.launch (photon-gpu-map-to-launch) ----===//
#include "photon/Codegen/CUDA/CudaPipeline.h"

#include "DeviceAlloc.h"

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
#define GEN_PASS_DEF_PHOTONGPUMAPTOLAUNCH
#include "photon/Codegen/CUDA/Passes.h.inc"

namespace {

std::optional<int> mappingIndex(Attribute a, bool &isWarp, bool &isThread, bool &isBlock) {
  isWarp = isThread = isBlock = false;
  if (auto b = dyn_cast<gpu::GPUBlockMappingAttr>(a)) {
    isBlock = true;
    return static_cast<int>(b.getBlock());
  }
  if (auto t = dyn_cast<gpu::GPUThreadMappingAttr>(a)) {
    isThread = true;
    return static_cast<int>(t.getThread());
  }
  if (auto w = dyn_cast<gpu::GPUWarpMappingAttr>(a)) {
    isWarp = true;
    return static_cast<int>(w.getWarp());
  }
  return std::nullopt;
}

/// A constant upper bound (closed) of an index value. ValueBounds gives up on a whole
/// affine.min as soon as one of its expressions is not affine (thread tiling of a partial
/// block tile yields min(s0 - tid * ceildiv(s0, T), ceildiv(s0, T))); here every
/// expression of a min is bounded on its own and the smallest bound wins, the
/// expressions of a max are bounded the same way and the largest wins.
FailureOr<int64_t> constantUpperBound(Value v, int depth = 4) {
  FailureOr<int64_t> ub = ValueBoundsConstraintSet::computeConstantBound(
      presburger::BoundType::UB, ValueBoundsConstraintSet::Variable(v),
      /*stopCondition=*/nullptr, /*closedUB=*/true);
  if (succeeded(ub) || depth == 0)
    return ub;
  auto boundOf = [&](AffineMap map, unsigned i, ValueRange operands) -> FailureOr<int64_t> {
    AffineExpr e = map.getResult(i);
    if (auto c = dyn_cast<AffineConstantExpr>(e))
      return c.getValue();
    if (auto d = dyn_cast<AffineDimExpr>(e))
      return constantUpperBound(operands[d.getPosition()], depth - 1);
    if (auto sym = dyn_cast<AffineSymbolExpr>(e))
      return constantUpperBound(operands[map.getNumDims() + sym.getPosition()], depth - 1);
    return ValueBoundsConstraintSet::computeConstantBound(
        presburger::BoundType::UB,
        ValueBoundsConstraintSet::Variable(map.getSubMap({i}), operands),
        /*stopCondition=*/nullptr, /*closedUB=*/true);
  };
  if (auto mn = v.getDefiningOp<affine::AffineMinOp>()) {
    std::optional<int64_t> best;
    for (unsigned i = 0; i < mn.getMap().getNumResults(); ++i)
      if (FailureOr<int64_t> b = boundOf(mn.getMap(), i, mn.getOperands()); succeeded(b))
        best = best ? std::min(*best, *b) : *b;
    if (best)
      return *best;
  }
  if (auto mx = v.getDefiningOp<affine::AffineMaxOp>()) {
    std::optional<int64_t> best;
    for (unsigned i = 0; i < mx.getMap().getNumResults(); ++i) {
      FailureOr<int64_t> b = boundOf(mx.getMap(), i, mx.getOperands());
      if (failed(b))
        return failure();
      best = best ? std::max(*best, *b) : *b;
    }
    if (best)
      return *best;
  }
  return failure();
}

bool isBlockForall(scf::ForallOp forall) {
  std::optional<ArrayAttr> mapping = forall.getMapping();
  return mapping && !mapping->empty() && isa<gpu::GPUBlockMappingAttr>((*mapping)[0]);
}

/// Threads per block needed by the thread/warp foralls nested in `forall`.
FailureOr<SmallVector<int64_t>> blockSizeFor(scf::ForallOp forall) {
  SmallVector<int64_t> dims = {1, 1, 1};
  bool bad = false;
  forall.getBody()->walk([&](scf::ForallOp inner) {
    std::optional<ArrayAttr> mapping = inner.getMapping();
    if (!mapping)
      return;
    std::optional<SmallVector<int64_t>> counts = SmallVector<int64_t>();
    for (auto [lb, ub, st] : llvm::zip(inner.getMixedLowerBound(), inner.getMixedUpperBound(),
                                       inner.getMixedStep())) {
      std::optional<int64_t> l = getConstantIntValue(lb), u = getConstantIntValue(ub),
                             s = getConstantIntValue(st);
      if (!l || !u || !s || *s <= 0) {
        counts = std::nullopt;
        break;
      }
      counts->push_back(llvm::divideCeil(*u - *l, *s));
    }
    if (!counts) {
      inner->emitError("photon-gpu-map-to-launch: thread loop with a dynamic trip count");
      bad = true;
      return;
    }
    for (auto [attr, count] : llvm::zip(*mapping, *counts)) {
      bool w, t, b;
      std::optional<int> idx = mappingIndex(attr, w, t, b);
      if (!idx || *idx > 2)
        continue;
      int64_t need = (w && *idx == 0) ? count * 32 : count;
      if (w && *idx != 0)
        dims[0] = std::max<int64_t>(dims[0], 32);
      dims[*idx] = std::max(dims[*idx], need);
    }
  });
  if (bad)
    return failure();
  return dims;
}

/// photon-gpu-map-to-launch (Passes.td): block foralls -> gpu.launch, thread/warp
/// foralls -> thread ids, host allocs -> gpu.alloc, kernel-local allocs -> private memory.
struct GpuMapToLaunchPass : public impl::PhotonGpuMapToLaunchBase<GpuMapToLaunchPass> {
  using Base::Base;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    SmallVector<scf::ForallOp> foralls;
    func.walk([&](scf::ForallOp f) {
      if (isBlockForall(f) && !f->getParentOfType<gpu::LaunchOp>())
        foralls.push_back(f);
    });
    IRRewriter rewriter(func.getContext());
    for (scf::ForallOp forall : foralls) {
      if (forall.getNumResults() != 0) {
        forall->emitError("photon-gpu-map-to-launch: loop still on tensors; run "
                          "one-shot-bufferize first");
        return signalPassFailure();
      }
      FailureOr<SmallVector<int64_t>> block = blockSizeFor(forall);
      if (failed(block))
        return signalPassFailure();
      if ((*block)[0] * (*block)[1] * (*block)[2] > 1024) {
        forall->emitError("photon-gpu-map-to-launch: block of ")
            << (*block)[0] << "x" << (*block)[1] << "x" << (*block)[2]
            << " threads exceeds the 1024-thread limit";
        return signalPassFailure();
      }
      Location loc = forall.getLoc();
      rewriter.setInsertionPoint(forall);
      Value one = arith::ConstantIndexOp::create(rewriter, loc, 1);
      SmallVector<Value> grid = {one, one, one};
      SmallVector<OpFoldResult> lbs = forall.getMixedLowerBound();
      SmallVector<OpFoldResult> ubs = forall.getMixedUpperBound();
      SmallVector<OpFoldResult> steps = forall.getMixedStep();
      SmallVector<int> dimOf;
      AffineExpr l, u, s;
      bindSymbols(rewriter.getContext(), l, u, s);
      for (auto [i, attr] : llvm::enumerate(*forall.getMapping())) {
        bool w, t, b;
        std::optional<int> idx = mappingIndex(attr, w, t, b);
        if (!idx || *idx > 2) {
          forall->emitError("photon-gpu-map-to-launch: only block x/y/z mappings are supported");
          return signalPassFailure();
        }
        OpFoldResult count = affine::makeComposedFoldedAffineApply(
            rewriter, loc, (u - l).ceilDiv(s), {lbs[i], ubs[i], steps[i]});
        grid[*idx] = getValueOrCreateConstantIndexOp(rewriter, loc, count);
        dimOf.push_back(*idx);
      }
      SmallVector<Value> blk;
      for (int64_t b : *block)
        blk.push_back(arith::ConstantIndexOp::create(rewriter, loc, b));
      auto launch = gpu::LaunchOp::create(rewriter, loc, grid[0], grid[1], grid[2], blk[0],
                                          blk[1], blk[2]);
      Block &body = launch.getBody().front();
      rewriter.setInsertionPointToEnd(&body);
      auto term = gpu::TerminatorOp::create(rewriter, loc);
      rewriter.setInsertionPoint(term);
      SmallVector<Value> ivs;
      gpu::KernelDim3 ids = launch.getBlockIds();
      Value idVals[3] = {ids.x, ids.y, ids.z};
      for (auto [i, d] : llvm::enumerate(dimOf)) {
        OpFoldResult iv = affine::makeComposedFoldedAffineApply(
            rewriter, loc, l + u * s, {lbs[i], idVals[d], steps[i]});
        ivs.push_back(getValueOrCreateConstantIndexOp(rewriter, loc, iv));
      }
      Block *forallBody = forall.getBody();
      rewriter.eraseOp(forallBody->getTerminator());
      rewriter.inlineBlockBefore(forallBody, term, ivs);
      rewriter.eraseOp(forall);

      // Thread mapping wants normalized loops (lb 0, step 1) and no self-copies left
      // over from bufferizing the tiles in place.
      SmallVector<scf::ForallOp> inner;
      launch.walk([&](scf::ForallOp f) { inner.push_back(f); });
      for (scf::ForallOp f : inner) {
        if (f.isNormalized())
          continue;
        if (failed(mlir::normalizeForallOp(rewriter, f))) {
          f->emitError("photon-gpu-map-to-launch: cannot normalize the thread loop");
          return signalPassFailure();
        }
      }
      launch.walk([&](memref::CopyOp c) {
        if (c.getSource() == c.getTarget())
          rewriter.eraseOp(c);
      });
      DiagnosedSilenceableFailure mapped = transform::gpu::mapNestedForallToThreadsImpl(
          rewriter, std::nullopt, launch, *block, /*warpSize=*/32,
          /*syncAfterDistribute=*/true);
      if (!mapped.succeeded()) {
        launch->emitError("photon-gpu-map-to-launch: mapping loops to threads failed");
        return signalPassFailure();
      }

      // Kernel-local buffers (fused producers' tiles) live in registers/local memory.
      SmallVector<memref::AllocOp> allocs;
      launch.walk([&](memref::AllocOp a) { allocs.push_back(a); });
      for (memref::AllocOp a : allocs) {
        if (!a.getType().hasStaticShape()) {
          // A tile of dynamic size (a partial tile at the edge): allocate its upper bound
          // and view the part in use.
          MemRefType ty = a.getType();
          SmallVector<int64_t> bound(ty.getShape());
          unsigned dyn = 0;
          for (int64_t &d : bound) {
            if (!ShapedType::isDynamic(d))
              continue;
            FailureOr<int64_t> ub = constantUpperBound(a.getDynamicSizes()[dyn++]);
            if (failed(ub)) {
              a->emitError("photon-gpu-map-to-launch: buffer inside a kernel whose size has no "
                           "compile-time bound (a dimension the kernel keeps whole is "
                           "dynamic); give that dimension a static size");
              return signalPassFailure();
            }
            d = *ub;
          }
          rewriter.setInsertionPoint(a);
          auto full = memref::AllocaOp::create(
              rewriter, a.getLoc(), MemRefType::get(bound, ty.getElementType()));
          SmallVector<OpFoldResult> offsets(bound.size(), rewriter.getIndexAttr(0));
          SmallVector<OpFoldResult> strides(bound.size(), rewriter.getIndexAttr(1));
          SmallVector<OpFoldResult> sizes;
          dyn = 0;
          for (int64_t d : ty.getShape())
            sizes.push_back(ShapedType::isDynamic(d) ? OpFoldResult(a.getDynamicSizes()[dyn++])
                                                     : rewriter.getIndexAttr(d));
          Value view = memref::SubViewOp::create(rewriter, a.getLoc(), full, offsets, sizes,
                                                 strides);
          for (Operation *user : llvm::make_early_inc_range(a->getUsers()))
            if (isa<memref::DeallocOp>(user))
              rewriter.eraseOp(user);
          if (view.getType() != a.getType()) {
            // Users were typed for an identity layout: cast through the strided type.
            a.getResult().setType(cast<MemRefType>(view.getType()));
          }
          rewriter.replaceOp(a, view);
          continue;
        }
        for (Operation *user : llvm::make_early_inc_range(a->getUsers()))
          if (isa<memref::DeallocOp>(user))
            rewriter.eraseOp(user);
        rewriter.setInsertionPoint(a);
        rewriter.replaceOpWithNewOp<memref::AllocaOp>(a, a.getType(), a.getDynamicSizes(),
                                                      a.getSymbolOperands(),
                                                      a.getAlignmentAttr());
      }
    }
    // Also in functions without kernels of their own (the stage wrappers, which copy a
    // callee's result into the output argument): every buffer is device memory.
    // Copies inside kernels become loops (linalg.copy -> convert-linalg-to-loops).
    SmallVector<memref::CopyOp> copies;
    func.walk([&](memref::CopyOp c) { copies.push_back(c); });
    for (memref::CopyOp c : copies) {
      rewriter.setInsertionPoint(c);
      if (c->getParentOfType<gpu::LaunchOp>()) {
        rewriter.replaceOpWithNewOp<linalg::CopyOp>(c, c.getSource(), c.getTarget());
        continue;
      }
      // Host-side copies between device buffers: gpu.memcpy.
      auto srcTy = cast<MemRefType>(c.getSource().getType());
      auto dstTy = cast<MemRefType>(c.getTarget().getType());
      Location loc = c.getLoc();
      if (!srcTy.getLayout().isIdentity() || !dstTy.getLayout().isIdentity()) {
        // A strided copy between device buffers (concat, slices): one block per row of
        // the outermost dimension, the block's thread copies the row.
        Value one = arith::ConstantIndexOp::create(rewriter, loc, 1);
        Value rows = srcTy.getRank() == 0
                         ? one
                         : memref::DimOp::create(rewriter, loc, c.getSource(), 0).getResult();
        auto launch = gpu::LaunchOp::create(rewriter, loc, rows, one, one, one, one, one);
        Block &body = launch.getBody().front();
        rewriter.setInsertionPointToEnd(&body);
        auto term = gpu::TerminatorOp::create(rewriter, loc);
        rewriter.setInsertionPoint(term);
        Value src = c.getSource(), dst = c.getTarget();
        if (srcTy.getRank() > 0) {
          auto rowView = [&](Value m) -> Value {
            auto ty = cast<MemRefType>(m.getType());
            SmallVector<OpFoldResult> offs(ty.getRank(), rewriter.getIndexAttr(0));
            SmallVector<OpFoldResult> sizes = memref::getMixedSizes(rewriter, loc, m);
            SmallVector<OpFoldResult> strides(ty.getRank(), rewriter.getIndexAttr(1));
            offs[0] = launch.getBlockIds().x;
            sizes[0] = rewriter.getIndexAttr(1);
            return memref::SubViewOp::create(rewriter, loc, m, offs, sizes, strides);
          };
          src = rowView(src);
          dst = rowView(dst);
        }
        linalg::CopyOp::create(rewriter, loc, src, dst);
        rewriter.eraseOp(c);
        continue;
      }
      auto tokTy = gpu::AsyncTokenType::get(c.getContext());
      Value t0 = gpu::WaitOp::create(rewriter, loc, tokTy, ValueRange{}).getAsyncToken();
      Value t1 = gpu::MemcpyOp::create(rewriter, loc, tokTy, ValueRange{t0}, c.getTarget(),
                                       c.getSource())
                     .getAsyncToken();
      gpu::WaitOp::create(rewriter, loc, Type(), ValueRange{t1});
      rewriter.eraseOp(c);
    }
    // Host buffers that kernels read or write are device memory (gpu.alloc).
    SmallVector<memref::AllocOp> hostAllocs;
    func.walk([&](memref::AllocOp a) {
      if (!a->getParentOfType<gpu::LaunchOp>())
        hostAllocs.push_back(a);
    });
    for (memref::AllocOp a : hostAllocs) {
      Location loc = a.getLoc();
      for (Operation *user : llvm::make_early_inc_range(a->getUsers())) {
        if (!isa<memref::DeallocOp>(user))
          continue;
        rewriter.setInsertionPoint(user);
        createDeviceDealloc(rewriter, loc, a.getResult());
        rewriter.eraseOp(user);
      }
      replaceWithDeviceAlloc(rewriter, a);
    }
    // Other host frees (of a callee's result, photon-gpu-insert-dealloc) are of device
    // buffers too.
    SmallVector<memref::DeallocOp> hostFrees;
    func.walk([&](memref::DeallocOp d) {
      if (!d->getParentOfType<gpu::LaunchOp>())
        hostFrees.push_back(d);
    });
    for (memref::DeallocOp d : hostFrees) {
      Location loc = d.getLoc();
      auto tokTy = gpu::AsyncTokenType::get(d.getContext());
      rewriter.setInsertionPoint(d);
      Value t0 = gpu::WaitOp::create(rewriter, loc, tokTy, ValueRange{}).getAsyncToken();
      Value t1 = gpu::DeallocOp::create(rewriter, loc, tokTy, ValueRange{t0}, d.getMemref())
                     .getAsyncToken();
      gpu::WaitOp::create(rewriter, loc, Type(), ValueRange{t1});
      rewriter.eraseOp(d);
    }
  }
};

} // namespace
} // namespace photon::cuda
