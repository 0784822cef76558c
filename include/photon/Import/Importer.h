//===- Importer.h - ONNX to MLIR (photon + upstream) importer ---*- C++ -*-===//
//
// The library entry point of photon-import. photon-compile calls importOnnxFile directly
// so that `photon-compile model.onnx` works in one step.
//
// Errors are reported through the MLIRContext's diagnostic engine (attach a
// ScopedDiagnosticHandler / SourceMgrDiagnosticHandler to capture or print them); a failed
// import returns nullptr and never aborts the process.
//
//===----------------------------------------------------------------------===//
#ifndef PHOTON_IMPORT_IMPORTER_H
#define PHOTON_IMPORT_IMPORTER_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <string>
#include <vector>

namespace mlir {
namespace photon {

/// What the importer produces.
enum class ImportEmit {
  /// Raise photon-convention functions to photon ops and stack functions (default).
  Photon,
  /// Inline every function and convert to upstream ops only (tensor/linalg/arith/math);
  /// weights are still referenced by `photon.weight`.
  Upstream,
};

struct ImportOptions {
  ImportEmit emit = ImportEmit::Photon;
  /// Where to write the weights blob (PHOTONW1, see docs/artifact.md). Empty: the blob is
  /// not written (the IR still names every weight).
  std::string weightsOut;
  /// Progress lines ("converted 120/480 nodes", "wrote 1.2 GiB of weights") go here when
  /// set; useful for big models.
  llvm::raw_ostream *progress = nullptr;
  /// Only check the model (load, validate, list unsupported ops); build no IR.
  bool checkOnly = false;
  /// Float initializers (and Constant tensors with more than this many elements) become
  /// `photon.weight`; smaller integer constants are inlined as attributes.
  int64_t maxInlineElements = 256;
  /// When set, the raiser writes what it found here: the hierarchy (from metadata or
  /// recognized from the graph's structure) and which node became which piece, or why the
  /// structure was not recognized (photon-import --explain).
  llvm::raw_ostream *explain = nullptr;
  /// When the structure is not recognized (no hierarchy; the graph is imported to upstream
  /// ops), run photon-raise-local: its patterns raise the local computations they can prove
  /// (RMSNorm, LayerNorm, GELU, SwiGLU, linears) to typed photon ops, as photon-compile's
  /// forward-only artifacts use them. photon-import turns it off unless --raise-local, so
  /// that its output shows what the converters wrote.
  bool raiseLocal = true;
  /// The first stage's structure recognizer (C++ over the ONNX graph) for graphs without
  /// photon.* metadata. false: such graphs go to upstream ops and only the rewrite
  /// patterns raise them (photon-raise-local, then photon-raise-structure for a
  /// decoder-only model; photon-import --structure=patterns).
  bool recognizeGraph = true;
};

/// One ONNX node the importer cannot convert.
struct UnsupportedOp {
  std::string opType;
  std::string domain;  ///< "" is the default ONNX domain
  int64_t opset = 0;   ///< the model's opset for that domain
  std::string nodeName;
  std::string where;   ///< "graph" or "function <domain>.<name>"
  std::string reason;  ///< e.g. "no converter", "converter starts at opset 13"
};

/// Registers every dialect the imported IR uses (func, arith, math, tensor, linalg, and the
/// photon dialect when it is built).
void registerImportDialects(DialectRegistry &registry);

/// Loads the dialects of registerImportDialects into `context`.
void loadImportDialects(MLIRContext &context);

/// Imports an ONNX file. Returns nullptr on failure after emitting diagnostics (one error
/// lists every unsupported op of the model). When options.weightsOut is set, the weights
/// blob is streamed there (external-data tensors are memory-mapped, never all in memory).
OwningOpRef<ModuleOp> importOnnxFile(MLIRContext &context, llvm::StringRef path,
                                     const ImportOptions &options = {});

/// Same as importOnnxFile, but from bytes in memory (external data is resolved relative to
/// `baseDir`; empty = no external data allowed). Used by the fuzzer.
OwningOpRef<ModuleOp> importOnnxBytes(MLIRContext &context, llvm::StringRef bytes,
                                      llvm::StringRef baseDir,
                                      const ImportOptions &options = {});

/// Loads and validates `path` and lists the nodes no converter handles. Returns false (after
/// emitting a diagnostic) if the file itself cannot be read or is invalid.
bool listUnsupportedOps(MLIRContext &context, llvm::StringRef path,
                        std::vector<UnsupportedOp> &out);

/// The ONNX op types (default domain) with a converter, with the opset each starts from.
std::vector<std::pair<std::string, int64_t>> supportedOnnxOps();

/// Highest ONNX IR version and default-domain opset the importer accepts.
constexpr int64_t kMaxIrVersion = 8;
constexpr int64_t kMaxOpset = 17;

} // namespace photon
} // namespace mlir

#endif // PHOTON_IMPORT_IMPORTER_H
