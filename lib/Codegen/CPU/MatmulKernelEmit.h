//===- MatmulKernelEmit.h - the loops of photon-matmul-kernels ---*- C++ -*-===//
//
// The code that photon-matmul-kernels (MatmulKernels.cpp: matching, grouping, one kernel
// function per operand types) emits into a kernel's body: the split-K GEMV for few rows of
// x, its RMSNorm-fused form, and the weight reads and loops both paths share
// (MatmulKernelsGemv.cpp); the packed GEMM (MatmulKernelsGemm.cpp). The algorithms are
// described at the top of MatmulKernels.cpp. Internal to lib/Codegen/CPU.
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_LIB_CODEGEN_CPU_MATMULKERNELEMIT_H
#define PHOTON_LIB_CODEGEN_CPU_MATMULKERNELEMIT_H

#include "photon/Codegen/CPU/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Builders.h"

namespace mlir {
namespace photon {
namespace matmul_kernels {

inline Value cidx(OpBuilder &b, Location loc, int64_t v) {
  return arith::ConstantIndexOp::create(b, loc, v);
}

/// vector<lanes x f32> of w[row, k .. k + lanes): loaded in w's element type and widened
/// (extf for f16 / bf16, sitofp for i8).
Value loadWeightVector(OpBuilder &b, Location loc, Value w, Value row, Value k, int64_t lanes);

/// True if the scales `d` belong to a q4 weight `w` (two weights per byte: w [N, K / 2] and
/// d [N, K / 32]) rather than a q8 one (w [N, K]).
bool isQ4(Value w, Value d);

Value splatI8(OpBuilder &b, Location loc, VectorType t, int8_t v);

/// w[row, k] as f32: widened, and for q8 / q4 (`d` given) times the group's scale.
Value loadWeightScalar(OpBuilder &b, Location loc, Value w, Value d, int64_t group, Value row,
                       Value k);

/// A loop over [lo, hi) step `step`: scf.parallel if `par`, else scf.for.
void emitLoop(OpBuilder &b, Location loc, Value lo, Value hi, Value step, bool par,
              function_ref<void(OpBuilder &, Location, Value)> body);

/// vals[g] for an index g < vals.size(): a chain of selects (one value: itself).
Value pick(OpBuilder &b, Location loc, Value g, ArrayRef<Value> vals);

/// A loop over the G matmuls of a group and [lo, hi) step `step` of each: with `par` one
/// two-dimensional scf.parallel (a single OpenMP region and work-sharing loop for the
/// whole group), else scf.for over g and the range. One matmul: emitLoop with g = 0.
void emitGroupLoop(OpBuilder &b, Location loc, int64_t G, Value lo, Value hi, Value step,
                   bool par, function_ref<void(OpBuilder &, Location, Value, Value)> body);

/// The split-K GEMV of y_g += x * w_g^T for every weight of the group (same x, same types);
/// `d`, `group`: the scales of a q8 / q4 weight.
void emitSplitK(OpBuilder &b, Location loc, Value x, ArrayRef<Value> ws, ArrayRef<Value> ys,
                int64_t N, int64_t K, const PhotonMatmulKernelsOptions &o, bool par,
                Value d = {}, int64_t group = 0);

/// The RMSNorm-fused GEMV: the M rows of x scaled once into xs[m, k] =
/// (x[m, k] * r[m]) * g[k] (a fresh [M, K] buffer), then the unchanged split-K on xs.
void emitNormSplitK(OpBuilder &b, Location loc, Value x, Value r, Value g, ArrayRef<Value> ws,
                    ArrayRef<Value> ys, int64_t N, int64_t K, const PhotonMatmulKernelsOptions &o,
                    bool par);

/// The packed GEMM of y_g += x * w_g^T for every weight of the group: x is packed once
/// (`r`, `g`, both or neither: the RMSNorm-fused form, x[m, k] packed as
/// (x[m, k] * r[m]) * g[k]); the n blocks of all weights share one parallel loop.
void emitGemm(OpBuilder &b, Location loc, Value x, ArrayRef<Value> ws, ArrayRef<Value> ys,
              int64_t N, int64_t K, const PhotonMatmulKernelsOptions &o, bool par,
              Value r = {}, Value g = {}, Value d = {}, int64_t group = 0);

} // namespace matmul_kernels
} // namespace photon
} // namespace mlir

#endif // PHOTON_LIB_CODEGEN_CPU_MATMULKERNELEMIT_H
