//===- Driver.h - photon-compile as a library call ----------------*- C++ -*-===//
//
// The whole of `photon-compile`: import (ONNX) or parse (photon IR), derive the stages,
// plan the caches, convert-photon-to-linalg, then the TargetBackend that --target names
// (TargetBackend.h): lowering, code generation, link, and the manifest. tools/photon-compile
// parses the command line into CompileOptions and calls compileModel; a program that
// registers its own backend calls it the same way (docs/adding-a-target.md).
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_TARGET_DRIVER_H
#define PHOTON_TARGET_DRIVER_H

#include "photon/Target/TargetBackend.h"

#include <cstdint>
#include <string>

namespace mlir {
namespace photon {

/// photon-compile's options (docs/compiler.md), with the defaults of its command line.
struct CompileOptions {
  std::string input;        ///< model.onnx or model.mlir
  std::string outputDir;    ///< -o (empty: <input stem>.photon)
  std::string weightsFile;  ///< --weights of a .mlir input
  std::string weightFormat = "f32"; ///< --weights f32|f16|bf16|q8 (WeightFormats.h)
  std::string weightsFor;   ///< --weights-for GLOB=FORMAT,... (per-tensor formats)
  std::string kvType = "f32"; ///< --kv f32|f16: element type of every KV cache
  std::string tokenizer;    ///< --tokenizer: byte (default), a SentencePiece model, a GPT-2 vocab.json (Tokenizer.h)
  std::string target = "cpu"; ///< --target, looked up in the TargetBackend registry
  TargetOptions targetOptions;
  std::string matmul = "vector"; ///< --matmul: vector or generic
  std::string saveTemps;    ///< --save-temps dir
  bool report = false;      ///< --report
  int64_t maxContext = 4096;
  int64_t blockSize = 16;
  int optLevel = 2;         ///< -O
  std::string emit = "artifact"; ///< photon, linalg, llvm, artifact
  bool noDerive = false;
  int64_t lengthMultiple = 1;
  bool quiet = false;       ///< -q
};

/// Registers the built-in backends, cpu then cuda (once; later calls do nothing).
void registerBuiltinTargetBackends();

/// Prints "<name>  <description>" for every registered backend (--list-targets).
void printTargetBackends(llvm::raw_ostream &os);

/// Compiles as photon-compile does, printing its progress lines and diagnostics to stderr
/// ("photon-compile: error: ...") and --report / --emit output to stdout. Returns the
/// process exit code (0 on success). Registers the built-in backends first.
int compileModel(const CompileOptions &options);

} // namespace photon
} // namespace mlir

#endif // PHOTON_TARGET_DRIVER_H
