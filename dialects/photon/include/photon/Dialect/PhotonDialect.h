//===- PhotonDialect.h - PHOTON dialect -------------------------*- C++ -*-===//
//
// The `photon` dialect (namespace mlir::photon). Include PhotonOps.h for the ops,
// PhotonAttrs.h / PhotonTypes.h for #photon.stream, #photon.hierarchy and
// !photon.kv_cache.
//
// The discardable `photon.*` attributes (PhotonBase.td's discardableAttrs) are read and
// written through the dialect's helpers:
//
//   auto *photon = ctx->getLoadedDialect<PhotonDialect>();
//   photon->getStageAttrHelper().setAttr(func, StringAttr::get(ctx, "forward"));
//   PhotonDialect::StageAttrHelper::getNameStr()   // "photon.stage"
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_DIALECT_PHOTONDIALECT_H
#define PHOTON_DIALECT_PHOTONDIALECT_H

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Dialect.h"

// The attribute helpers of the dialect class name HierarchyAttr.
#include "photon/Dialect/PhotonAttrs.h"

#include "photon/Dialect/PhotonDialect.h.inc"

namespace mlir::photon {
/// Name of the module attribute that carries the #photon.hierarchy.
constexpr llvm::StringLiteral kHierarchyAttrName =
    PhotonDialect::HierarchyAttrHelper::getNameStr();

/// The photon dialect of `ctx` (loaded if it is not yet), for its attribute helpers.
inline PhotonDialect *getPhotonDialect(MLIRContext *ctx) {
  return ctx->getOrLoadDialect<PhotonDialect>();
}
} // namespace mlir::photon

#endif // PHOTON_DIALECT_PHOTONDIALECT_H
