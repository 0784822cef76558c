//===- Passes.h - importer passes -------------------------------*- C++ -*-===//
//
// photon-raise-local and photon-raise-structure (generated from Passes.td): the importer's
// raising patterns, run on graphs whose structure its first stage did not recognize. populatePhotonRaiseLocalPatterns adds
// the patterns to a set, for drivers that combine them with others.
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_IMPORT_PASSES_H
#define PHOTON_IMPORT_PASSES_H

#include "photon/Dialect/PhotonDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Pass/Pass.h"

namespace mlir {
namespace photon {

#define GEN_PASS_DECL
#include "photon/Import/Passes.h.inc"

/// The local raising patterns (Linear, Linear bias, RMSNorm, LayerNorm, GELU, SwiGLU).
void populatePhotonRaiseLocalPatterns(RewritePatternSet &patterns);

#define GEN_PASS_REGISTRATION
#include "photon/Import/Passes.h.inc"

} // namespace photon
} // namespace mlir

#endif // PHOTON_IMPORT_PASSES_H
