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

/// Options of photon-matmul-kernels (lib/Transforms/MatmulKernels.cpp).
struct MatmulKernelOptions {
  bool parallel = false;       // row-block loops as scf.parallel (OpenMP)
  int64_t lanes = 8;           // f32 lanes per vector: 8 (AVX2), 16 (AVX-512)
  int64_t rows = 8;            // weight rows per split-K (GEMV) block
  int64_t gemmMinRows = 16;    // rows of x from which the packed GEMM runs (0: never)
  int64_t gemmRows = 4;        // weight rows of the GEMM register tile
  int64_t gemmVecs = 2;        // vectors of x rows in the GEMM register tile
  int64_t gemmKC = 640;        // K block of the GEMM
  int64_t gemmMC = 64;         // weight rows per GEMM cache block (unit of parallel work)
  int64_t parallelMinWeights = 65536; // N*K from which a matmul runs in parallel
  int64_t parallelChunks = 16; // split-K work units per matmul (OpenMP dynamic schedule)
  int64_t prefetchRows = 8;    // GEMV: weight rows prefetched ahead into L2 (0: off)
  int64_t gemvMRows = 2;       // GEMV: rows of x sharing each weight vector load (M >= 2x)
  bool fuseNorm = true;        // run photon-fuse-norm-matmul first (with the kernels only)
  bool mathTables = true;      // run photon-hoist-math-tables (with or without the kernels)
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

/// photon-expand-shape-to-reinterpret-cast: memref.expand_shape as a reinterpret_cast of
/// the source's base buffer (MLIR 22's expand-strided-metadata crashes on a group with
/// several dynamic sizes); the CPU and CUDA pipelines run it before that pass.
std::unique_ptr<Pass> createExpandShapeToReinterpretCastPass();

/// photon-fuse-norm-matmul (lib/Transforms/FuseNormMatmul.cpp): on tensors, every
/// y += n * W^T whose n is an RMSNorm's normalize generic reads the norm's input, the
/// per-row rsqrt scale and the gain instead, so n is not materialized for it.
std::unique_ptr<Pass> createFuseNormMatmulPass();
/// photon-hoist-math-tables (same file): the math sub-expressions of an elementwise tensor
/// generic that do not depend on every loop (RoPE's cos/sin: not on the head) are computed
/// once per the loops they depend on, into table generics the generic then reads.
std::unique_ptr<Pass> createHoistMathTablesPass();
/// Registers photon-fuse-norm-matmul and photon-hoist-math-tables.
void registerFuseNormMatmulPass();

/// photon-matmul-kernels.
std::unique_ptr<Pass> createMatmulKernelsPass(const MatmulKernelOptions &options = {});
void registerMatmulKernelsPass();

} // namespace photon
} // namespace mlir

#endif // PHOTON_TRANSFORMS_PASSES_H
