//===- Passes.h - photon to upstream MLIR -----------------------*- C++ -*-===//
//
// convert-photon-to-linalg (generated from Passes.td): one OpConversionPattern per photon
// op, target-neutral. The fused attention kernels a target may supply are plugged in
// through AttentionLowering.h.
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_CONVERSION_PASSES_H
#define PHOTON_CONVERSION_PASSES_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir {
namespace photon {

#define GEN_PASS_DECL
#include "photon/Conversion/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "photon/Conversion/Passes.h.inc"

} // namespace photon
} // namespace mlir

#endif // PHOTON_CONVERSION_PASSES_H
