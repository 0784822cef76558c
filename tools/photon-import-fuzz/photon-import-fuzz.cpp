//===- photon-import-fuzz.cpp - libFuzzer target for photon-import -------===//
//
// Feeds arbitrary bytes to the importer as an ONNX model (no external data, no weights
// written). Any crash, sanitizer report, hang or leak is a bug: bad input must end in a
// diagnostic.
//
//===----------------------------------------------------------------------===//

#include "photon/Import/Importer.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"

#include <cstddef>
#include <cstdint>
#include <memory>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  // A context keeps every type and attribute it ever uniqued: start a fresh one now and
  // then so that a long run does not grow without bound.
  static std::unique_ptr<mlir::MLIRContext> ctx;
  static unsigned uses = 0;
  if (!ctx || ++uses % 512 == 0) {
    ctx = std::make_unique<mlir::MLIRContext>(mlir::MLIRContext::Threading::DISABLED);
    mlir::photon::loadImportDialects(*ctx);
  }
  mlir::ScopedDiagnosticHandler silence(ctx.get(), [](mlir::Diagnostic &) {
    return mlir::success();
  });
  mlir::photon::ImportOptions opts;
  auto module = mlir::photon::importOnnxBytes(
      *ctx, llvm::StringRef(reinterpret_cast<const char *>(data), size), /*baseDir=*/"", opts);
  (void)module;
  return 0;
}
