//===- CopyToLinalg.cpp - memref.copy as linalg.copy ----------------------===//
//
// photon-copy-to-linalg: memref.copy -> linalg.copy, so convert-linalg-to-loops turns every
// copy into loops and the artifact needs no `memrefCopy` from MLIR's runner utils.
//
//===----------------------------------------------------------------------===//

#include "photon/Codegen/CPU/Passes.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/Builders.h"

namespace mlir {
namespace photon {
#define GEN_PASS_DEF_PHOTONCOPYTOLINALG
#include "photon/Codegen/CPU/Passes.h.inc"

namespace {
struct CopyToLinalgPass : public impl::PhotonCopyToLinalgBase<CopyToLinalgPass> {
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
} // namespace

} // namespace photon
} // namespace mlir
