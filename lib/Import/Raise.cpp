//===- Raise.cpp - photon-convention functions -> photon ops -------------===//

#include "GraphImporter.h"

namespace photon {
namespace import {
using namespace mlir;

void installPhotonRaiser(GraphImporter &gi) {
  gi.finalizeHook = [&gi](ModuleOp module, func::FuncOp forward) -> LogicalResult {
    if (gi.model().metadata("photon.family").empty())
      emitRemark(module.getLoc()) << "no PHOTON hierarchy found in '" << gi.model().path()
                                  << "': imported to upstream ops only";
    (void)forward;
    return success();
  };
}

} // namespace import
} // namespace photon
