//===- photon-opt.cpp - the photon optimizer driver ------------------------===//
//
// mlir-opt with the photon dialect, every upstream dialect, extension and pass, and the
// project's own passes and pipelines when the PhotonTransforms library is built
// (mlir::photon::registerPhotonPasses() in photon/InitAllPasses.h).
//
//===----------------------------------------------------------------------===//

#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/raw_ostream.h"

#include "photon/Dialect/PhotonDialect.h"

#ifdef PHOTON_HAS_TRANSFORMS
#include "photon/InitAllPasses.h"
#endif

#ifndef PHOTON_VERSION
#define PHOTON_VERSION "unknown"
#endif

int main(int argc, char **argv) {
  mlir::registerAllPasses();
#ifdef PHOTON_HAS_TRANSFORMS
  mlir::photon::registerPhotonPasses();
#endif

  mlir::DialectRegistry registry;
  registry.insert<mlir::photon::PhotonDialect>();
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);

  llvm::cl::AddExtraVersionPrinter([](llvm::raw_ostream &os) {
    os << "photon-opt " << PHOTON_VERSION << " (photon dialect"
#ifdef PHOTON_HAS_TRANSFORMS
       << " + photon passes"
#endif
       << ")\n";
  });

  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "photon optimizer driver: the photon dialect + upstream MLIR\n",
      registry));
}
