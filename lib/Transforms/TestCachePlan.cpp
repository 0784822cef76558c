//===- TestCachePlan.cpp - print the cache plan of a module --------------===//
//
// photon-test-cache-plan: runs the cache planner (CachePlan.h) and prints its report, so
// that lit tests can FileCheck the plan and the cost model.
//
//===----------------------------------------------------------------------===//

#include "photon/Transforms/CachePlan.h"
#include "photon/Transforms/Passes.h"

namespace mlir {
namespace photon {
#define GEN_PASS_DEF_PHOTONTESTCACHEPLAN
#include "photon/Transforms/Passes.h.inc"

namespace {
struct PhotonTestCachePlanPass
    : public impl::PhotonTestCachePlanBase<PhotonTestCachePlanPass> {
  void runOnOperation() override {
    auto plan = planCaches(getOperation());
    if (failed(plan)) return signalPassFailure();
    printReport(*plan, llvm::outs());
  }
};
} // namespace

} // namespace photon
} // namespace mlir
