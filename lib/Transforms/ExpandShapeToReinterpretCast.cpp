//===- ExpandShapeToReinterpretCast.cpp - memref.expand_shape as a cast ---===//
//
// photon-expand-shape-to-reinterpret-cast: memref.expand_shape -> memref.reinterpret_cast
// of the source's base buffer with the strides spelled out. MLIR 22's
// expand-strided-metadata crashes on an expand_shape with more than one dynamic size in
// one reassociation group ([?, D] into [?, ?, D]), which reshapes of [B*M, ...] streams
// produce; the CPU and CUDA pipelines run this rewrite right before it.
//
//===----------------------------------------------------------------------===//

#include "photon/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/Builders.h"

namespace mlir {
namespace photon {
#define GEN_PASS_DEF_PHOTONEXPANDSHAPETOREINTERPRETCAST
#include "photon/Transforms/Passes.h.inc"

namespace {
struct ExpandShapeToReinterpretCastPass
    : public impl::PhotonExpandShapeToReinterpretCastBase<ExpandShapeToReinterpretCastPass> {
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
} // namespace

} // namespace photon
} // namespace mlir
