//===- PhotonDialect.h - PHOTON dialect -------------------------*- C++ -*-===//
//
// The `photon` dialect (namespace mlir::photon). Include PhotonOps.h for the ops,
// PhotonAttrs.h / PhotonTypes.h for #photon.stream, #photon.hierarchy and
// !photon.kv_cache.
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_DIALECT_PHOTONDIALECT_H
#define PHOTON_DIALECT_PHOTONDIALECT_H

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Dialect.h"

#include "photon/Dialect/PhotonDialect.h.inc"

namespace mlir::photon {
/// Name of the module attribute that carries the #photon.hierarchy.
constexpr llvm::StringLiteral kHierarchyAttrName = "photon.hierarchy";
} // namespace mlir::photon

#endif // PHOTON_DIALECT_PHOTONDIALECT_H
