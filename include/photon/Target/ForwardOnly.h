//===- ForwardOnly.h - a forward stage for an unrecognized graph -*- C++ -*-===//
//
// A model whose hierarchy the importer did not recognize is imported to upstream ops as one
// public function of the ONNX graph's inputs and outputs. makeForwardOnly wraps it into the
// ABI's `@forward(tokens: tensor<?x?xi32>) -> logits` stage: the artifact computes
// teacher-forced logits (photon-run --eval / --logits-out) but cannot generate. docs/importer.md
// ("Fallback") lists how the graph's other inputs are supplied.
//
//===----------------------------------------------------------------------===//
#ifndef PHOTON_TARGET_FORWARDONLY_H
#define PHOTON_TARGET_FORWARDONLY_H

#include "mlir/IR/BuiltinOps.h"

#include <string>
#include <vector>

namespace mlir {
namespace photon {

struct ForwardOnlyInfo {
  int64_t vocab = 0;
  std::string tokensInput;  // the ONNX input fed with the token ids
  std::string logitsOutput; // the ONNX output returned as logits
  /// One line per other graph input: its name and what the stage feeds it.
  std::vector<std::string> suppliedInputs;
};

/// Wraps the module's public graph function into `@forward` (photon.stage = "forward");
/// the graph function becomes private. Fails with a diagnostic naming the input or output
/// it cannot map (no integer [B, T] token input, no float [B, T, V] output, an input that
/// cannot be supplied).
FailureOr<ForwardOnlyInfo> makeForwardOnly(ModuleOp module);

} // namespace photon
} // namespace mlir

#endif
