//===- PhotonOps.h - PHOTON operations --------------------------*- C++ -*-===//
//
// Op classes: WeightOp, EmbeddingOp, PositionEmbeddingOp, RMSNormOp, LayerNormOp, LinearOp,
// GeluOp, RoPEOp, CausalAttentionOp,
// BoundedAttentionOp, SwiGLUOp, ChunkOp, ChunkCompressOp, ExpandOp, ShiftOp, LMHeadOp,
// CacheBindOp, KvAppendOp, CachedAttentionOp (all in mlir::photon).
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_DIALECT_PHOTONOPS_H
#define PHOTON_DIALECT_PHOTONOPS_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "photon/Dialect/PhotonAttrs.h"
#include "photon/Dialect/PhotonDialect.h"
#include "photon/Dialect/PhotonTypes.h"

#define GET_OP_CLASSES
#include "photon/Dialect/PhotonOps.h.inc"

#endif // PHOTON_DIALECT_PHOTONOPS_H
