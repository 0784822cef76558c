//===- Passes.h - photon compiler passes ------------------------*- C++ -*-===//
//
// Pass declarations (generated from Passes.td) and registration for photon-opt and
// photon-compile.
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_TRANSFORMS_PASSES_H
#define PHOTON_TRANSFORMS_PASSES_H

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
#include "photon/Transforms/Passes.h.inc"

/// Registers every photon pass and the `photon-lower-to-llvm` pipeline (the upstream
/// passes photon-compile runs after convert-photon-to-linalg).
void registerPhotonPasses();

/// Adds the upstream lowering from the output of convert-photon-to-linalg (tensors,
/// linalg, scf, memref) down to the LLVM dialect. With `openmp`, the parallel dimensions
/// of every linalg op become an OpenMP work-sharing loop (the library then needs libomp).
/// `matmulKernels` runs photon-matmul-kernels (split-K vector kernels for y += x * W^T)
/// after bufferization; without it LLVM vectorizes the generic's scalar loops.
void buildPhotonLowerToLLVMPipeline(OpPassManager &pm, bool openmp = false,
                                    bool matmulKernels = true);

/// photon-matmul-kernels (lib/Transforms/MatmulKernels.cpp). With `parallel`, the loop over
/// blocks of 4 weight rows is an scf.parallel.
std::unique_ptr<Pass> createMatmulKernelsPass(bool parallel = false);
void registerMatmulKernelsPass();

} // namespace photon
} // namespace mlir

#endif // PHOTON_TRANSFORMS_PASSES_H
