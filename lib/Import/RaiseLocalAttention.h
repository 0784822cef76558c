//===- RaiseLocalAttention.h - photon-raise-local: attention, RoPE -*- C++ -*-===//
//
// The attention and RoPE patterns of photon-raise-local (RaiseLocalAttention.cpp,
// RaiseLocalRoPE.cpp), added to the pass's pattern set by
// populatePhotonRaiseLocalPatterns (RaiseLocal.cpp).
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_IMPORT_RAISELOCALATTENTION_H
#define PHOTON_IMPORT_RAISELOCALATTENTION_H

#include "mlir/IR/PatternMatch.h"

namespace mlir {
namespace photon {

/// Causal self-attention (softmax(scale * q k^T + causal mask) v) ->
/// photon.causal_attention; keys / values repeated over query-head groups ->
/// the grouped (GQA) form; then the RoPE patterns
/// (populateRaiseLocalRoPEPatterns).
void populateRaiseLocalAttentionPatterns(RewritePatternSet &patterns);

/// x * cos + rot(x) * sin (rotate-half or interleaved) -> photon.rope; a
/// transpose of a transpose -> one transpose, or none.
void populateRaiseLocalRoPEPatterns(RewritePatternSet &patterns);

} // namespace photon
} // namespace mlir

#endif // PHOTON_IMPORT_RAISELOCALATTENTION_H
