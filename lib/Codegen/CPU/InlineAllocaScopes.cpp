//===- InlineAllocaScopes.cpp - memref.alloca_scope bodies inlined --------===//
//
// photon-inline-alloca-scopes: convert-scf-to-openmp wraps every parallel body in a
// memref.alloca_scope; convert-scf-to-cf would then give it several blocks, which its
// verifier rejects. The kernels allocate no stack memory inside parallel loops, so the
// scopes are not needed: their bodies are spliced into the parent block.
//
//===----------------------------------------------------------------------===//

#include "photon/Codegen/CPU/Passes.h"

#include "mlir/Dialect/MemRef/IR/MemRef.h"

namespace mlir {
namespace photon {
#define GEN_PASS_DEF_PHOTONINLINEALLOCASCOPES
#include "photon/Codegen/CPU/Passes.h.inc"

namespace {
struct InlineAllocaScopesPass
    : public impl::PhotonInlineAllocaScopesBase<InlineAllocaScopesPass> {
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
} // namespace

} // namespace photon
} // namespace mlir
