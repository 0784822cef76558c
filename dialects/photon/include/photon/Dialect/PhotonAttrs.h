//===- PhotonAttrs.h - PHOTON attributes ------------------------*- C++ -*-===//
//
// mlir::photon::StreamAttr     #photon.stream<level = L, rate = R>
// mlir::photon::HierarchyAttr  #photon.hierarchy<family = "...", levels = ..., ...>
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_DIALECT_PHOTONATTRS_H
#define PHOTON_DIALECT_PHOTONATTRS_H

#include "mlir/IR/Attributes.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/IR/TensorEncoding.h"
#include "llvm/ADT/SmallVector.h"

namespace mlir::photon {
/// `[a, b, ...]` (possibly `[]`), used by #photon.hierarchy's chunk_sizes.
FailureOr<SmallVector<int64_t>> parseI64List(AsmParser &parser);
void printI64List(AsmPrinter &printer, ArrayRef<int64_t> values);
} // namespace mlir::photon

#define GET_ATTRDEF_CLASSES
#include "photon/Dialect/PhotonAttrs.h.inc"

namespace mlir::photon {
/// The #photon.stream encoding of `type` if it is a ranked tensor carrying one.
StreamAttr getStreamEncoding(Type type);
} // namespace mlir::photon

#endif // PHOTON_DIALECT_PHOTONATTRS_H
