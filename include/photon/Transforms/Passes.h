//===- Passes.h - photon dialect transformations ----------------*- C++ -*-===//
//
// Target-neutral passes on the photon dialect (generated from Passes.td): derive the
// generation stages, plan the KV caches, and the memref fix-up both code generators use.
// photon/InitAllPasses.h registers every group of photon passes at once.
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_TRANSFORMS_PASSES_H
#define PHOTON_TRANSFORMS_PASSES_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir {
namespace photon {

#define GEN_PASS_DECL
#include "photon/Transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "photon/Transforms/Passes.h.inc"

} // namespace photon
} // namespace mlir

#endif // PHOTON_TRANSFORMS_PASSES_H
