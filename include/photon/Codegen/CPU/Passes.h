//===- Passes.h - photon's CPU code generation ------------------*- C++ -*-===//
//
// The CPU passes after convert-photon-to-linalg (generated from Passes.td) and the
// pipeline that chains them with upstream MLIR down to the LLVM dialect, registered as
// `photon-cpu-pipeline` (and under its older name `photon-lower-to-llvm`).
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_CODEGEN_CPU_PASSES_H
#define PHOTON_CODEGEN_CPU_PASSES_H

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
#include "photon/Conversion/AttentionLowering.h"

namespace mlir {
namespace photon {

#define GEN_PASS_DECL
#include "photon/Codegen/CPU/Passes.h.inc"

/// Registers the CPU passes, the `photon-cpu-pipeline` / `photon-lower-to-llvm` pipelines,
/// and the CPU's fused attention kernels as convert-photon-to-linalg's
/// AttentionKernelProvider (photon/Conversion/AttentionLowering.h).
void registerPhotonCPUCodegen();

/// The CPU's fused attention kernels (lib/Codegen/CPU/AttentionKernels.cpp).
const AttentionKernelProvider &cpuAttentionKernels();

/// Options of the CPU pipeline's kernels: photon-matmul-kernels' own options (the
/// generated PhotonMatmulKernelsOptions) and whether the pipeline runs the tensor-level
/// passes before it.
struct MatmulKernelOptions : PhotonMatmulKernelsOptions {
  bool fuseNorm = true;   // run photon-fuse-norm-matmul first (with the kernels only)
  bool mathTables = true; // run photon-hoist-math-tables (with or without the kernels)
};

/// Adds the upstream lowering from the output of convert-photon-to-linalg (tensors,
/// linalg, scf, memref) down to the LLVM dialect. With `openmp`, the weight-row blocks of
/// the matmul kernels become OpenMP work-sharing loops with a dynamic schedule (the library
/// then needs libomp); every other op stays sequential.
/// `matmulKernels` runs photon-matmul-kernels (split-K / packed GEMM vector kernels for
/// y += x * W^T) after bufferization; without it LLVM vectorizes the generic's scalar loops.
/// With the kernels and `kernels.fuseNorm`, photon-fuse-norm-matmul runs after inlining;
/// with `kernels.mathTables` (also without the kernels), photon-hoist-math-tables after it.
void buildPhotonLowerToLLVMPipeline(OpPassManager &pm, bool openmp = false,
                                    bool matmulKernels = true);
/// The same with explicit kernel options (`kernels.parallel` is set from `openmp`).
void buildPhotonLowerToLLVMPipeline(OpPassManager &pm, bool openmp, bool matmulKernels,
                                    MatmulKernelOptions kernels);

} // namespace photon
} // namespace mlir

#endif // PHOTON_CODEGEN_CPU_PASSES_H
