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

#include "llvm/ADT/StringSet.h"

namespace mlir {
namespace photon {

/// Whether `use` is the weight operand W of a photon op whose lowering is the matmul x * W^T
/// (linear, lm_head, swiglu, chunk_compress, expand): an operand the matmul kernels may read
/// in a reduced-precision format (photon-compile --weights, half-precision initializers).
bool isMatmulWeightOperand(OpOperand &use);

/// Names of the photon.weight tensors under `root` that every photon.weight of that name
/// reads as a rank-2 tensor used only as matmul weights (isMatmulWeightOperand).
llvm::StringSet<> matmulOnlyWeightNames(Operation *root);

} // namespace photon
} // namespace mlir

#endif // PHOTON_DIALECT_PHOTONOPS_H
