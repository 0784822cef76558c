//===- RaiseLocalAttention.h - photon-raise-local: attention patterns -*- C++
//-*-===//
//
// The attention patterns of photon-raise-local (RaiseLocalAttention.cpp), added
// to the pass's pattern set by populatePhotonRaiseLocalPatterns
// (RaiseLocal.cpp).
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_IMPORT_RAISELOCALATTENTION_H
#define PHOTON_IMPORT_RAISELOCALATTENTION_H

#include "mlir/IR/PatternMatch.h"

namespace mlir {
namespace photon {

/// Causal self-attention (softmax(scale * q k^T + causal mask) v) ->
/// photon.causal_attention; keys / values repeated over query-head groups ->
/// the grouped (GQA) form.
void populateRaiseLocalAttentionPatterns(RewritePatternSet &patterns);

} // namespace photon
} // namespace mlir

#endif // PHOTON_IMPORT_RAISELOCALATTENTION_H
