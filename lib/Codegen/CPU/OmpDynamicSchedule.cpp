//===- OmpDynamicSchedule.cpp - schedule(dynamic) on every omp.wsloop -----===//
//
// photon-omp-dynamic-schedule: the matmul kernels' parallel loops have a few coarse
// iterations (16 chunks of weight rows), and with a static schedule a thread that the OS
// has descheduled holds up the join for its whole half of the work.
//
//===----------------------------------------------------------------------===//

#include "photon/Codegen/CPU/Passes.h"

#include "mlir/Dialect/OpenMP/OpenMPDialect.h"

namespace mlir {
namespace photon {
#define GEN_PASS_DEF_PHOTONOMPDYNAMICSCHEDULE
#include "photon/Codegen/CPU/Passes.h.inc"

namespace {
struct OmpDynamicSchedulePass
    : public impl::PhotonOmpDynamicScheduleBase<OmpDynamicSchedulePass> {
  void runOnOperation() override {
    getOperation().walk(
        [](omp::WsloopOp op) { op.setScheduleKind(omp::ClauseScheduleKind::Dynamic); });
  }
};
} // namespace

} // namespace photon
} // namespace mlir
