//===- PhotonTypes.h - PHOTON types -----------------------------*- C++ -*-===//
//
// mlir::photon::KvCacheType  !photon.kv_cache<level, layers, kv_heads, head_dim,
//                                             block_size, element>
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_DIALECT_PHOTONTYPES_H
#define PHOTON_DIALECT_PHOTONTYPES_H

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/IR/Types.h"
#include "llvm/ADT/SmallVector.h"

#include "photon/Dialect/PhotonDialect.h"

#define GET_TYPEDEF_CLASSES
#include "photon/Dialect/PhotonTypes.h.inc"

#endif // PHOTON_DIALECT_PHOTONTYPES_H
