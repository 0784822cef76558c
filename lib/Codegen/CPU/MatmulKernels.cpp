//===- MatmulKernels.cpp - register-blocked kernels for x * W^T ----------===//
//
// photon-matmul-kernels: rewrites the bufferized `y[m, n] += sum_k x[m, k] * w[n, k]`
// linalg.generic that convert-photon-to-linalg emits for photon.linear, lm_head and the
// SwiGLU projections into a call of a kernel function, one per distinct operand type, so
// that the same shape (every layer, every stage) is compiled once (docs/compiler.md,
// "Matmul kernels"). The kernel picks one of two paths by the number of rows M of x:
//
// M < gemm-min-rows (decode): split-K GEMV, weights streamed once
//   for n in 0..N step R          (R weight rows; scf.parallel with `parallel`)
//     for m in 0..M               (every row of x reuses the R weight rows from L1)
//       acc[0..R) = 0 : vector<L x f32>
//       for k in 0..K step L: acc[i] = fma(x[m, k:k+L], w[n+i, k:k+L], acc[i])
//       y[m, n+i] += reduce_add(acc[i]) + scalar K tail
//
// M >= gemm-min-rows (prefill): packed GEMM. x is packed once per call into panels
// xp[p][k][0..PW) = x[p*PW + j, k] (PW = P*L rows of x, zero padded); weights keep the
// blob's [N, K] layout. The register tile is R weight rows x PW rows of x:
//   for n0 in 0..N step MC        (scf.parallel with `parallel`; MC x KC of W in L2)
//     for k0 in 0..K step KC
//       for p in panels           (KC x PW of xp in L1)
//         for n in n0..n0+MC step R
//           acc[i][q] = 0 : vector<L x f32>        (R*P accumulators in registers)
//           for k in k0..k0+KC: xv[q] = xp[p][k][qL..]; acc[i][q] += bcast(w[n+i, k]) * xv[q]
//           y[p*PW + j, n+i] += acc[i][j]         (transposed store, once per KC)
//
// A last panel of at most L rows runs a narrow tile of 2R weight rows x 1 vector (the wide
// tile would spend half or more of its FMAs on the zero padding).
//
// The generic's accumulator (zero fill or bias) stays in y, so the rewrite keeps the op's
// semantics up to the order of the floating-point additions.
//
// Groups: matmuls with the same operand types on the same x (q, k, v; gate, up), whose
// buffers no op between them touches (canRunAtLast), become one call at the last of them of
// `__photon_matmul..._<N>x<K>_x<G>(x, w_1..w_G, y_1..y_G[, r, g])`: x is packed or
// norm-scaled once, and the loops over (weight, row block) are one scf.parallel, i.e. one
// OpenMP region per group instead of a fork/join per matmul.
//
// Reduced-precision weights (photon-compile --weights, docs/compiler.md "Weight formats"):
// the generic reads w as f16 / bf16 (`arith.extf` in its body) or as q8 (i8 q and f16
// scales d per group of 32 along k, `sitofp(q) * extf(d)`). The kernels
// `__photon_matmul_{f16,bf16,q8}_<N>x<K>(x, w, y[, d])` keep both paths and widen in the
// dot product: the GEMV loads vector<L x f16|bf16|i8> and converts it to vector<L x f32>
// (vcvtph2ps with F16C; a shift for bf16; vpmovsxbd + vcvtdq2ps for i8); q8 sums one
// group's products in its own accumulator and adds it times the group's scale
// (acc = fma(sum_g x * q, d, acc)), one scale per 32 weights. The GEMM widens each
// broadcast weight scalar.
//
// The RMSNorm-fused form of photon-fuse-norm-matmul, y[m, n] += ((x[m, k] * r[m]) * g[k]) *
// w[n, k], gets kernels `__photon_matmul_rmsnorm_<N>x<K>(x, w, y, r, g)` with the same two
// paths: the GEMM applies r[m] * g[k] while packing x (the panels hold the normalized rows),
// the GEMV scales the M rows once into an [M, K] buffer and runs the unchanged split-K on it.
//
//===----------------------------------------------------------------------===//

#include "photon/Codegen/CPU/Passes.h"

#include "MatmulMatch.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/AffineMap.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/ViewLikeInterface.h"
#include "llvm/ADT/DenseSet.h"
#include "mlir/Pass/Pass.h"

#include <map>
#include <numeric>

namespace mlir {
namespace photon {
#define GEN_PASS_DEF_PHOTONMATMULKERNELS
#include "photon/Codegen/CPU/Passes.h.inc"

namespace {

/// True if `op` is y[m, n] += x[m, k] * w[n, k] on memrefs with f32 elements, a static
/// [N, K] weight and unit-stride rows of x and w.
bool isMatmulTranspose(linalg::GenericOp op) {
  if (!op.hasPureBufferSemantics() || !isMatmulTStructure(op)) return false;
  auto x = dyn_cast<MemRefType>(op.getDpsInputs()[0].getType());
  auto w = dyn_cast<MemRefType>(op.getDpsInputs()[1].getType());
  auto y = dyn_cast<MemRefType>(op.getDpsInits()[0].getType());
  if (!x || !w || !y) return false;
  if (!x.getElementType().isF32() || !w.getElementType().isF32() || !y.getElementType().isF32())
    return false;
  return w.hasStaticShape() && x.isLastDimUnitStride() && w.isLastDimUnitStride();
}

/// True if `op` is the RMSNorm-fused form photon-fuse-norm-matmul writes,
/// y[m, n] += ((x[m, k] * r[m]) * g[k]) * w[n, k], on memrefs with f32 elements, a static
/// [N, K] weight and unit-stride rows of x and w (inputs x, r, g, w; init y).
bool isNormMatmulTranspose(linalg::GenericOp op) {
  if (!op.hasPureBufferSemantics() || !isNormMatmulTStructure(op)) return false;
  for (Value v : op->getOperands()) {
    auto t = dyn_cast<MemRefType>(v.getType());
    if (!t || !t.getElementType().isF32()) return false;
  }
  auto x = cast<MemRefType>(op.getDpsInputs()[0].getType());
  auto w = cast<MemRefType>(op.getDpsInputs()[3].getType());
  return w.hasStaticShape() && x.isLastDimUnitStride() && w.isLastDimUnitStride();
}

Value cidx(OpBuilder &b, Location loc, int64_t v) {
  return arith::ConstantIndexOp::create(b, loc, v);
}

/// True if `op` is y[m, n] += x[m, k] * W(n, k) with a reduced-precision weight
/// (matchDequantMatmulT) on memrefs: x, y f32; w f16 / bf16 (half) or i8 with f16 scales
/// d [N, K / group] (q8, K a multiple of group); static [N, K] weight, unit-stride rows.
bool isDequantMatmulTranspose(linalg::GenericOp op) {
  if (!op.hasPureBufferSemantics()) return false;
  int64_t group = 0;
  std::optional<WeightForm> form = matchDequantMatmulT(op, group);
  if (!form) return false;
  auto x = dyn_cast<MemRefType>(op.getDpsInputs()[0].getType());
  auto w = dyn_cast<MemRefType>(op.getDpsInputs()[1].getType());
  auto y = dyn_cast<MemRefType>(op.getDpsInits()[0].getType());
  if (!x || !w || !y || !x.getElementType().isF32() || !y.getElementType().isF32() ||
      !w.hasStaticShape() || !x.isLastDimUnitStride() || !w.isLastDimUnitStride())
    return false;
  Type we = w.getElementType();
  if (*form == WeightForm::Half) return we.isF16() || we.isBF16();
  auto d = dyn_cast<MemRefType>(op.getDpsInputs()[2].getType());
  int64_t N = w.getDimSize(0), K = w.getDimSize(1);
  if (*form == WeightForm::Q4) K *= 2; // two weights per byte
  return we.isInteger(8) && d && d.getElementType().isF16() && K % group == 0 &&
         d.hasStaticShape() && d.getDimSize(0) == N && d.getDimSize(1) == K / group &&
         d.isLastDimUnitStride();
}

/// vector<lanes x f32> of w[row, k .. k + lanes): loaded in w's element type and widened
/// (extf for f16 / bf16, sitofp for i8).
Value loadWeightVector(OpBuilder &b, Location loc, Value w, Value row, Value k, int64_t lanes) {
  auto vt = VectorType::get({lanes}, b.getF32Type());
  Type et = cast<MemRefType>(w.getType()).getElementType();
  if (et.isF32()) return vector::LoadOp::create(b, loc, vt, w, ValueRange{row, k});
  Value raw = vector::LoadOp::create(b, loc, VectorType::get({lanes}, et), w, ValueRange{row, k});
  if (et.isInteger(8)) return arith::SIToFPOp::create(b, loc, vt, raw);
  return arith::ExtFOp::create(b, loc, vt, raw);
}

/// True if the scales `d` belong to a q4 weight `w` (two weights per byte: w [N, K / 2] and
/// d [N, K / 32]) rather than a q8 one (w [N, K]).
bool isQ4(Value w, Value d) {
  return d && cast<MemRefType>(w.getType()).getDimSize(1) == 16 * cast<MemRefType>(d.getType()).getDimSize(1);
}

Value splatI8(OpBuilder &b, Location loc, VectorType t, int8_t v) {
  return arith::ConstantOp::create(b, loc, t, DenseElementsAttr::get(t, ArrayRef<int8_t>{v}));
}

/// w[row, k] as f32: widened, and for q8 / q4 (`d` given) times the group's scale.
Value loadWeightScalar(OpBuilder &b, Location loc, Value w, Value d, int64_t group, Value row,
                       Value k) {
  Type f32 = b.getF32Type();
  if (isQ4(w, d)) {
    // byte 16 g + k % 16 of group g = k / 32; the high nibble for k % 32 >= 16
    Value gi = arith::DivUIOp::create(b, loc, k, cidx(b, loc, 32));
    Value r = arith::RemUIOp::create(b, loc, k, cidx(b, loc, 32));
    Value col = arith::AddIOp::create(b, loc, arith::MulIOp::create(b, loc, gi, cidx(b, loc, 16)),
                                      arith::RemUIOp::create(b, loc, k, cidx(b, loc, 16)));
    Value byte = memref::LoadOp::create(b, loc, w, ValueRange{row, col});
    Value hi = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::uge, r, cidx(b, loc, 16));
    auto c8 = [&](int64_t v) { return arith::ConstantOp::create(b, loc, b.getI8IntegerAttr(v)); };
    Value nib = arith::SelectOp::create(b, loc, hi, arith::ShRUIOp::create(b, loc, byte, c8(4)),
                                        arith::AndIOp::create(b, loc, byte, c8(15)));
    Value q = arith::SIToFPOp::create(b, loc, f32, arith::SubIOp::create(b, loc, nib, c8(8)));
    Value ds = memref::LoadOp::create(b, loc, d, ValueRange{row, gi});
    return arith::MulFOp::create(b, loc, q, arith::ExtFOp::create(b, loc, f32, ds));
  }
  Value v = memref::LoadOp::create(b, loc, w, ValueRange{row, k});
  if (v.getType().isF32()) return v;
  if (v.getType().isInteger(8)) {
    Value q = arith::SIToFPOp::create(b, loc, f32, v);
    Value gi = arith::DivUIOp::create(b, loc, k, cidx(b, loc, group));
    Value ds = memref::LoadOp::create(b, loc, d, ValueRange{row, gi});
    Value sc = arith::ExtFOp::create(b, loc, f32, ds);
    return arith::MulFOp::create(b, loc, q, sc);
  }
  return arith::ExtFOp::create(b, loc, f32, v);
}

/// One split-K register tile: weight rows `rowIdx` x rows `ms` of x, one vector
/// accumulator per (weight row, x row); every weight vector loaded feeds all rows of x.
/// With prefetch rows `pfIdx`, the k loop also prefetches (into L2) the same columns of
/// those rows: the next block's, whose short streams (K floats each) the hardware
/// prefetchers do not ramp up on (docs/compiler.md, "Matmul kernels").
void emitSplitKTile(OpBuilder &b, Location loc, Value x, Value w, Value y, ArrayRef<Value> rowIdx,
                    ArrayRef<Value> ms, ArrayRef<Value> pfIdx, int64_t K, int64_t lanes,
                    Value d = {}, int64_t group = 0) {
  auto vt = VectorType::get({lanes}, b.getF32Type());
  int64_t kv = K - K % lanes;
  // q8: k steps by whole groups (K is a multiple of group, group of lanes)
  int64_t kStep = d ? group : lanes;
  constexpr uint32_t kPrefetchL2 = 2; // llvm.prefetch locality 2: keep in L2, not in L1
  const size_t R = rowIdx.size(), MB = ms.size();
  Value c1 = cidx(b, loc, 1);
  auto reassoc = arith::FastMathFlags::reassoc | arith::FastMathFlags::contract;
  SmallVector<Value> sums; // [i * MB + j]
  if (kv > 0) {
    Value zero = arith::ConstantOp::create(b, loc, vt, DenseElementsAttr::get(vt, 0.0f));
    SmallVector<Value> init(R * MB, zero);
    auto kLoop = scf::ForOp::create(
        b, loc, cidx(b, loc, 0), cidx(b, loc, kv), cidx(b, loc, kStep), init,
        [&](OpBuilder &b, Location loc, Value k, ValueRange acc) {
          auto prefetch = [&] {
            Value kw = pfIdx.empty() || !isQ4(w, d) ? k : arith::DivUIOp::create(b, loc, k, cidx(b, loc, 2));
            for (Value r : pfIdx)
              memref::PrefetchOp::create(b, loc, w, ValueRange{r, kw}, /*isWrite=*/false,
                                         kPrefetchL2, /*isDataCache=*/true);
          };
          SmallVector<Value> next;
          if (!d) {
            SmallVector<Value> xv;
            for (Value m : ms) xv.push_back(vector::LoadOp::create(b, loc, vt, x, ValueRange{m, k}));
            prefetch();
            for (size_t i = 0; i < R; ++i) {
              Value wv = loadWeightVector(b, loc, w, rowIdx[i], k, lanes);
              for (size_t j = 0; j < MB; ++j)
                next.push_back(vector::FMAOp::create(b, loc, xv[j], wv, acc[i * MB + j]));
            }
            scf::YieldOp::create(b, loc, next);
            return;
          }
          // q8: one group of `group` k per step; xv[j][g] = x[m_j, k + g * lanes ..]
          prefetch();
          int64_t G = group / lanes;
          SmallVector<SmallVector<Value>> xv(MB);
          SmallVector<Value> kg;
          for (int64_t g = 0; g < G; ++g)
            kg.push_back(g == 0 ? k : arith::AddIOp::create(b, loc, k, cidx(b, loc, g * lanes)));
          for (size_t j = 0; j < MB; ++j)
            for (int64_t g = 0; g < G; ++g)
              xv[j].push_back(vector::LoadOp::create(b, loc, vt, x, ValueRange{ms[j], kg[g]}));
          Value gi = arith::DivUIOp::create(b, loc, k, cidx(b, loc, group));
          for (size_t i = 0; i < R; ++i) {
            Value ds = memref::LoadOp::create(b, loc, d, ValueRange{rowIdx[i], gi});
            Value sc = arith::ExtFOp::create(b, loc, b.getF32Type(), ds);
            Value scv = vector::BroadcastOp::create(b, loc, vt, sc);
            SmallVector<Value> part(MB), qvs;
            if (isQ4(w, d)) {
              // the group's 16 bytes: low nibbles k 0..15, high nibbles k 16..31, minus 8
              auto v16 = VectorType::get({16}, b.getI8Type());
              Value kb = arith::DivUIOp::create(b, loc, k, cidx(b, loc, 2));
              Value raw = vector::LoadOp::create(b, loc, v16, w, ValueRange{rowIdx[i], kb});
              Value c8 = splatI8(b, loc, v16, 8);
              Value lo = arith::SubIOp::create(
                  b, loc, arith::AndIOp::create(b, loc, raw, splatI8(b, loc, v16, 15)), c8);
              Value hi = arith::SubIOp::create(
                  b, loc, arith::ShRUIOp::create(b, loc, raw, splatI8(b, loc, v16, 4)), c8);
              for (int64_t g = 0; g < G; ++g) {
                int64_t off = g * lanes;
                Value src = off < 16 ? lo : hi;
                if (lanes != 16)
                  src = vector::ExtractStridedSliceOp::create(b, loc, src, ArrayRef<int64_t>{off % 16},
                                                              ArrayRef<int64_t>{lanes},
                                                              ArrayRef<int64_t>{1});
                qvs.push_back(arith::SIToFPOp::create(b, loc, vt, src));
              }
            }
            for (int64_t g = 0; g < G; ++g) {
              Value qv = qvs.empty() ? loadWeightVector(b, loc, w, rowIdx[i], kg[g], lanes) : qvs[g];
              for (size_t j = 0; j < MB; ++j)
                part[j] = g == 0 ? arith::MulFOp::create(b, loc, xv[j][g], qv, reassoc).getResult()
                                 : vector::FMAOp::create(b, loc, xv[j][g], qv, part[j]).getResult();
            }
            for (size_t j = 0; j < MB; ++j)
              next.push_back(vector::FMAOp::create(b, loc, part[j], scv, acc[i * MB + j]));
          }
          scf::YieldOp::create(b, loc, next);
        });
    for (size_t i = 0; i < R * MB; ++i)
      sums.push_back(vector::ReductionOp::create(b, loc, vector::CombiningKind::ADD,
                                                 kLoop.getResult(i), reassoc));
  } else {
    sums.assign(R * MB, arith::ConstantOp::create(b, loc, b.getF32FloatAttr(0.0f)));
  }
  if (kv < K) {
    auto tail = scf::ForOp::create(
        b, loc, cidx(b, loc, kv), cidx(b, loc, K), c1, sums,
        [&](OpBuilder &b, Location loc, Value k, ValueRange acc) {
          SmallVector<Value> xs;
          for (Value m : ms) xs.push_back(memref::LoadOp::create(b, loc, x, ValueRange{m, k}));
          SmallVector<Value> next;
          for (size_t i = 0; i < R; ++i) {
            Value ws = loadWeightScalar(b, loc, w, d, group, rowIdx[i], k);
            for (size_t j = 0; j < MB; ++j)
              next.push_back(math::FmaOp::create(b, loc, xs[j], ws, acc[i * MB + j]));
          }
          scf::YieldOp::create(b, loc, next);
        });
    sums.assign(tail.getResults().begin(), tail.getResults().end());
  }
  for (size_t i = 0; i < R; ++i)
    for (size_t j = 0; j < MB; ++j) {
      Value old = memref::LoadOp::create(b, loc, y, ValueRange{ms[j], rowIdx[i]});
      Value s = arith::AddFOp::create(b, loc, old, sums[i * MB + j]);
      memref::StoreOp::create(b, loc, s, y, ValueRange{ms[j], rowIdx[i]});
    }
}

/// Split-K GEMV block: weight rows [n, n + rows) and every row of x. From M >= 2 * mRows
/// on, rows of x go in groups of `mRows` (the weight vectors loaded once feed mRows
/// accumulators each; the block's weight rows then go `16 / mRows` at a time to stay within
/// the registers), the remaining rows one at a time with all the block's weight rows. With `pfRows`
/// > 0 the rows pfRows further on are prefetched (clamped to the last row).
void emitSplitKBlock(OpBuilder &b, Location loc, Value x, Value w, Value y, Value n,
                     int64_t rows, int64_t K, int64_t lanes, int64_t pfRows, int64_t mRows,
                     Value d = {}, int64_t group = 0) {
  int64_t N = cast<MemRefType>(w.getType()).getDimSize(0);
  Value c0 = cidx(b, loc, 0);
  Value c1 = cidx(b, loc, 1);
  Value M = memref::DimOp::create(b, loc, x, 0);
  SmallVector<Value> rowIdx, pfIdx;
  for (int64_t i = 0; i < rows; ++i)
    rowIdx.push_back(i == 0 ? n : arith::AddIOp::create(b, loc, n, cidx(b, loc, i)));
  if (pfRows > 0)
    for (int64_t i = 0; i < rows; ++i)
      pfIdx.push_back(arith::MinSIOp::create(
          b, loc, arith::AddIOp::create(b, loc, rowIdx[i], cidx(b, loc, pfRows)),
          cidx(b, loc, N - 1)));
  Value mFull = c0;
  if (mRows > 1) {
    Value cMB = cidx(b, loc, mRows);
    // Only from 2 * mRows rows of x on: with fewer, the one-row passes (the second and later
    // ones read the block from L1) measured faster (gemv_bench, M = 2 vs 4).
    Value full = arith::SubIOp::create(b, loc, M, arith::RemUIOp::create(b, loc, M, cMB));
    Value enough = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::uge, M, cidx(b, loc, 2 * mRows));
    mFull = arith::SelectOp::create(b, loc, enough, full, c0);
    int64_t rowGroup = std::max<int64_t>(1, std::min<int64_t>(rows, 16 / mRows));
    scf::ForOp::create(
        b, loc, c0, mFull, cMB, ValueRange{}, [&](OpBuilder &b, Location loc, Value m0, ValueRange) {
          SmallVector<Value> ms = {m0};
          for (int64_t j = 1; j < mRows; ++j) ms.push_back(arith::AddIOp::create(b, loc, m0, cidx(b, loc, j)));
          for (int64_t g = 0; g < rows; g += rowGroup) {
            int64_t cnt = std::min(rowGroup, rows - g);
            ArrayRef<Value> pf = pfIdx.empty() ? ArrayRef<Value>() : ArrayRef<Value>(pfIdx).slice(g, cnt);
            emitSplitKTile(b, loc, x, w, y, ArrayRef<Value>(rowIdx).slice(g, cnt), ms, pf, K, lanes,
                           d, group);
          }
          scf::YieldOp::create(b, loc);
        });
  }
  scf::ForOp::create(b, loc, mFull, M, c1, ValueRange{}, [&](OpBuilder &b, Location loc, Value m,
                                                              ValueRange) {
    Value one[] = {m};
    emitSplitKTile(b, loc, x, w, y, rowIdx, one, pfIdx, K, lanes, d, group);
    scf::YieldOp::create(b, loc);
  });
}

/// A loop over [lo, hi) step `step`: scf.parallel if `par`, else scf.for.
void emitLoop(OpBuilder &b, Location loc, Value lo, Value hi, Value step, bool par,
              function_ref<void(OpBuilder &, Location, Value)> body) {
  if (par) {
    scf::ParallelOp::create(b, loc, ValueRange{lo}, ValueRange{hi}, ValueRange{step},
                            [&](OpBuilder &b, Location loc, ValueRange iv) { body(b, loc, iv[0]); });
  } else {
    scf::ForOp::create(b, loc, lo, hi, step, ValueRange{},
                       [&](OpBuilder &b, Location loc, Value iv, ValueRange) {
                         body(b, loc, iv);
                         scf::YieldOp::create(b, loc);
                       });
  }
}

/// vals[g] for an index g < vals.size(): a chain of selects (one value: itself).
Value pick(OpBuilder &b, Location loc, Value g, ArrayRef<Value> vals) {
  Value v = vals[0];
  for (size_t i = 1; i < vals.size(); ++i) {
    Value is = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, g,
                                     cidx(b, loc, static_cast<int64_t>(i)));
    v = arith::SelectOp::create(b, loc, is, vals[i], v);
  }
  return v;
}

/// A loop over the G matmuls of a group and [lo, hi) step `step` of each: with `par` one
/// two-dimensional scf.parallel (a single OpenMP region and work-sharing loop for the
/// whole group), else scf.for over g and the range. One matmul: emitLoop with g = 0.
void emitGroupLoop(OpBuilder &b, Location loc, int64_t G, Value lo, Value hi, Value step,
                   bool par, function_ref<void(OpBuilder &, Location, Value, Value)> body) {
  if (G == 1) {
    emitLoop(b, loc, lo, hi, step, par,
             [&](OpBuilder &b, Location loc, Value iv) { body(b, loc, cidx(b, loc, 0), iv); });
    return;
  }
  Value c0 = cidx(b, loc, 0), c1 = cidx(b, loc, 1), cG = cidx(b, loc, G);
  if (par) {
    scf::ParallelOp::create(b, loc, ValueRange{c0, lo}, ValueRange{cG, hi}, ValueRange{c1, step},
                            [&](OpBuilder &b, Location loc, ValueRange iv) { body(b, loc, iv[0], iv[1]); });
    return;
  }
  emitLoop(b, loc, c0, cG, c1, false, [&](OpBuilder &b, Location loc, Value g) {
    emitLoop(b, loc, lo, hi, step, false,
             [&](OpBuilder &b, Location loc, Value iv) { body(b, loc, g, iv); });
  });
}

/// The split-K GEMV of y_g += x * w_g^T for every weight of the group (same x, same types).
void emitSplitK(OpBuilder &b, Location loc, Value x, ArrayRef<Value> ws, ArrayRef<Value> ys,
                int64_t N, int64_t K, const PhotonMatmulKernelsOptions &o, bool par,
                Value d = {}, int64_t group = 0) {
  int64_t R = o.rows, G = ws.size();
  int64_t nr = N - N % R;
  if (nr > 0 && par) {
    // chunks of rows as the parallel work units (dynamic schedule: a descheduled thread
    // holds up at most one chunk)
    int64_t blocks = nr / R;
    int64_t chunk = R * std::max<int64_t>(1, (blocks + o.parallelChunks - 1) / o.parallelChunks);
    emitGroupLoop(b, loc, G, cidx(b, loc, 0), cidx(b, loc, nr), cidx(b, loc, chunk), true,
                  [&](OpBuilder &b, Location loc, Value gi, Value n0) {
                    Value w = pick(b, loc, gi, ws), y = pick(b, loc, gi, ys);
                    Value n1 = arith::MinSIOp::create(
                        b, loc, arith::AddIOp::create(b, loc, n0, cidx(b, loc, chunk)), cidx(b, loc, nr));
                    emitLoop(b, loc, n0, n1, cidx(b, loc, R), false,
                             [&](OpBuilder &b, Location loc, Value n) {
                               emitSplitKBlock(b, loc, x, w, y, n, R, K, o.lanes, o.prefetchRows,
                                               o.gemvMRows, d, group);
                             });
                  });
  } else if (nr > 0) {
    emitGroupLoop(b, loc, G, cidx(b, loc, 0), cidx(b, loc, nr), cidx(b, loc, R), false,
                  [&](OpBuilder &b, Location loc, Value gi, Value n) {
                    emitSplitKBlock(b, loc, x, pick(b, loc, gi, ws), pick(b, loc, gi, ys), n, R, K,
                                    o.lanes, o.prefetchRows, o.gemvMRows, d, group);
                  });
  }
  if (nr < N)
    emitGroupLoop(b, loc, G, cidx(b, loc, nr), cidx(b, loc, N), cidx(b, loc, 1), false,
                  [&](OpBuilder &b, Location loc, Value gi, Value n) {
                    emitSplitKBlock(b, loc, x, pick(b, loc, gi, ws), pick(b, loc, gi, ys), n, 1, K,
                                    o.lanes, 0, o.gemvMRows, d, group);
                  });
}

/// wblk[n - n0, k - k0] = w[n, k] as f32 (widened; times the group's scale for q8 / q4) for
/// n in [n0, n1), k in [k0, k1). Whole vectors where the block allows (f16 / bf16 / q8 with
/// k0 and the block's width multiples of the vector, and for q8 of a group within one
/// vector's reach); q4 and the rest element by element.
void emitWidenBlock(OpBuilder &b, Location loc, Value w, Value d, int64_t group, Value wblk,
                    Value n0, Value n1, Value k0, Value k1, int64_t lanes) {
  Value c1 = cidx(b, loc, 1);
  const bool q4 = isQ4(w, d);
  const bool vec = !q4 && (!d || group % lanes == 0);
  auto vt = VectorType::get({lanes}, b.getF32Type());
  scf::ForOp::create(b, loc, n0, n1, c1, ValueRange{}, [&](OpBuilder &b, Location loc, Value n, ValueRange) {
    Value bn = arith::SubIOp::create(b, loc, n, n0);
    Value kv = k0;
    if (vec) {
      // k0 .. k0 + lanes * floor((k1 - k0) / lanes) in vectors
      Value span = arith::SubIOp::create(b, loc, k1, k0);
      kv = arith::AddIOp::create(b, loc, k0,
                                 arith::SubIOp::create(b, loc, span,
                                                       arith::RemUIOp::create(b, loc, span, cidx(b, loc, lanes))));
      scf::ForOp::create(b, loc, k0, kv, cidx(b, loc, lanes), ValueRange{},
                         [&](OpBuilder &b, Location loc, Value k, ValueRange) {
                           Value v = loadWeightVector(b, loc, w, n, k, lanes);
                           if (d) {
                             Value gi = arith::DivUIOp::create(b, loc, k, cidx(b, loc, group));
                             Value ds = memref::LoadOp::create(b, loc, d, ValueRange{n, gi});
                             Value sc = arith::ExtFOp::create(b, loc, b.getF32Type(), ds);
                             v = arith::MulFOp::create(b, loc, v, vector::BroadcastOp::create(b, loc, vt, sc));
                           }
                           vector::StoreOp::create(b, loc, v, wblk,
                                                   ValueRange{bn, arith::SubIOp::create(b, loc, k, k0)});
                           scf::YieldOp::create(b, loc);
                         });
    }
    scf::ForOp::create(b, loc, kv, k1, c1, ValueRange{}, [&](OpBuilder &b, Location loc, Value k, ValueRange) {
      memref::StoreOp::create(b, loc, loadWeightScalar(b, loc, w, d, group, n, k), wblk,
                              ValueRange{bn, arith::SubIOp::create(b, loc, k, k0)});
      scf::YieldOp::create(b, loc);
    });
    scf::YieldOp::create(b, loc);
  });
}

/// One R x (P * L) register tile of the packed GEMM: weight rows [n, n + R), the first
/// P vectors of panel p of xp (panels are PW = gemm-vecs * L rows wide; P < gemm-vecs for
/// the narrow tile of a last panel with few rows), k in [k0, k1); adds the tile into y
/// (transposed), `valid` rows of the panel.
void emitGemmTile(OpBuilder &b, Location loc, Value xp, Value w, Value y, Value n, Value p,
                  Value k0, Value k1, Value valid, int64_t R, int64_t P, int64_t K,
                  const PhotonMatmulKernelsOptions &o, Value d = {}, int64_t group = 0,
                  Value wn0 = {}, Value wk0 = {}) {
  int64_t L = o.lanes, PW = L * o.gemmVecs;
  auto vt = VectorType::get({L}, b.getF32Type());
  Value zero = arith::ConstantOp::create(b, loc, vt, DenseElementsAttr::get(vt, 0.0f));
  SmallVector<Value> init(R * P, zero);
  SmallVector<Value> rowIdx, wRowIdx;
  for (int64_t i = 0; i < R; ++i)
    rowIdx.push_back(i == 0 ? n : arith::AddIOp::create(b, loc, n, cidx(b, loc, i)));
  // w may be a dequantized block of the weight: rows from wn0, k from wk0
  for (int64_t i = 0; i < R; ++i)
    wRowIdx.push_back(wn0 ? arith::SubIOp::create(b, loc, rowIdx[i], wn0).getResult() : rowIdx[i]);
  Value panelBase = arith::MulIOp::create(b, loc, p, cidx(b, loc, K * PW));
  auto kLoop = scf::ForOp::create(
      b, loc, k0, k1, cidx(b, loc, 1), init,
      [&](OpBuilder &b, Location loc, Value k, ValueRange acc) {
        Value off = arith::AddIOp::create(
            b, loc, panelBase, arith::MulIOp::create(b, loc, k, cidx(b, loc, PW)));
        SmallVector<Value> xv;
        for (int64_t q = 0; q < P; ++q) {
          Value o2 = q == 0 ? off : arith::AddIOp::create(b, loc, off, cidx(b, loc, q * L));
          xv.push_back(vector::LoadOp::create(b, loc, vt, xp, ValueRange{o2}));
        }
        SmallVector<Value> next(R * P);
        Value wk = wk0 ? arith::SubIOp::create(b, loc, k, wk0).getResult() : k;
        for (int64_t i = 0; i < R; ++i) {
          Value ws = loadWeightScalar(b, loc, w, d, group, wRowIdx[i], wk);
          Value wb = vector::BroadcastOp::create(b, loc, vt, ws);
          for (int64_t q = 0; q < P; ++q)
            next[i * P + q] = vector::FMAOp::create(b, loc, wb, xv[q], acc[i * P + q]);
        }
        scf::YieldOp::create(b, loc, next);
      });
  Value mBase = arith::MulIOp::create(b, loc, p, cidx(b, loc, PW));
  auto addInto = [&](OpBuilder &b, Location loc, Value m, Value e, int64_t i) {
    Value old = memref::LoadOp::create(b, loc, y, ValueRange{m, rowIdx[i]});
    memref::StoreOp::create(b, loc, arith::AddFOp::create(b, loc, old, e), y,
                            ValueRange{m, rowIdx[i]});
  };
  Value full = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge, valid, cidx(b, loc, P * L));
  scf::IfOp::create(
      b, loc, full,
      [&](OpBuilder &b, Location loc) {
        // full panel: static extracts, rows of y written R contiguous floats at a time
        for (int64_t q = 0; q < P; ++q)
          for (int64_t j = 0; j < L; ++j) {
            Value m = arith::AddIOp::create(b, loc, mBase, cidx(b, loc, q * L + j));
            for (int64_t i = 0; i < R; ++i)
              addInto(b, loc, m, vector::ExtractOp::create(b, loc, kLoop.getResult(i * P + q), j), i);
          }
        scf::YieldOp::create(b, loc);
      },
      [&](OpBuilder &b, Location loc) {
        // last panel: `valid` rows
        for (int64_t q = 0; q < P; ++q) {
          Value rest = arith::SubIOp::create(b, loc, valid, cidx(b, loc, q * L));
          Value hi = arith::MaxSIOp::create(
              b, loc, cidx(b, loc, 0), arith::MinSIOp::create(b, loc, rest, cidx(b, loc, L)));
          scf::ForOp::create(
              b, loc, cidx(b, loc, 0), hi, cidx(b, loc, 1), ValueRange{},
              [&](OpBuilder &b, Location loc, Value j, ValueRange) {
                Value m = arith::AddIOp::create(
                    b, loc, mBase, arith::AddIOp::create(b, loc, j, cidx(b, loc, q * L)));
                for (int64_t i = 0; i < R; ++i)
                  addInto(b, loc, m,
                          vector::ExtractOp::create(b, loc, kLoop.getResult(i * P + q),
                                                    OpFoldResult(j)),
                          i);
                scf::YieldOp::create(b, loc);
              });
        }
        scf::YieldOp::create(b, loc);
      });
}

/// `r`, `g` (both or neither): the RMSNorm-fused form, x[m, k] is packed as
/// (x[m, k] * r[m]) * g[k].
/// Every weight of the group: x is packed once, the n blocks of all weights share one
/// parallel loop.
void emitGemm(OpBuilder &b, Location loc, Value x, ArrayRef<Value> ws, ArrayRef<Value> ys,
              int64_t N, int64_t K, const PhotonMatmulKernelsOptions &o, bool par,
              Value r = {}, Value g = {}, Value d = {}, int64_t group = 0) {
  int64_t L = o.lanes, PW = L * o.gemmVecs, R = o.gemmRows, G = ws.size();
  Value c0 = cidx(b, loc, 0), c1 = cidx(b, loc, 1);
  Value M = memref::DimOp::create(b, loc, x, 0);
  Value cpw = cidx(b, loc, PW);
  Value np = arith::DivUIOp::create(b, loc, arith::AddIOp::create(b, loc, M, cidx(b, loc, PW - 1)),
                                    cpw);
  Value size = arith::MulIOp::create(b, loc, np, cidx(b, loc, K * PW));
  auto xpT = MemRefType::get({ShapedType::kDynamic}, b.getF32Type());
  Value xp = memref::AllocOp::create(b, loc, xpT, ValueRange{size}, b.getI64IntegerAttr(64));
  // pack: xp[(p*K + k)*PW + j] = x[p*PW + j, k], zero for rows >= M
  Value zf = arith::ConstantOp::create(b, loc, b.getF32FloatAttr(0.0f));
  Value mp = arith::MulIOp::create(b, loc, np, cpw);
  scf::ForOp::create(b, loc, c0, mp, c1, ValueRange{}, [&](OpBuilder &b, Location loc, Value m,
                                                            ValueRange) {
    Value p = arith::DivUIOp::create(b, loc, m, cpw);
    Value j = arith::RemUIOp::create(b, loc, m, cpw);
    Value base = arith::AddIOp::create(b, loc, arith::MulIOp::create(b, loc, p, cidx(b, loc, K * PW)), j);
    Value in = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, m, M);
    // the row's norm scale, read once per row (row 0's for the padding rows)
    Value rm = r ? memref::LoadOp::create(b, loc, r, ValueRange{arith::SelectOp::create(b, loc, in, m, c0)})
                 : Value();
    // one branch per row, not per element: a row of x (scaled for the norm form) or zeros
    auto packRow = [&](OpBuilder &b, Location loc, bool valid) {
      scf::ForOp::create(b, loc, c0, cidx(b, loc, K), c1, ValueRange{},
                         [&](OpBuilder &b, Location loc, Value k, ValueRange) {
                           Value v = zf;
                           if (valid) {
                             v = memref::LoadOp::create(b, loc, x, ValueRange{m, k});
                             if (r)
                               v = arith::MulFOp::create(
                                   b, loc, arith::MulFOp::create(b, loc, v, rm),
                                   memref::LoadOp::create(b, loc, g, ValueRange{k}));
                           }
                           Value idx = arith::AddIOp::create(b, loc, base, arith::MulIOp::create(b, loc, k, cpw));
                           memref::StoreOp::create(b, loc, v, xp, ValueRange{idx});
                           scf::YieldOp::create(b, loc);
                         });
      scf::YieldOp::create(b, loc);
    };
    scf::IfOp::create(
        b, loc, in, [&](OpBuilder &b, Location loc) { packRow(b, loc, true); },
        [&](OpBuilder &b, Location loc) { packRow(b, loc, false); });
    scf::YieldOp::create(b, loc);
  });
  int64_t KC = std::min(K, o.gemmKC);
  // Reduced-precision weights (f16, bf16, q8, q4): every tile would widen (and scale) each
  // weight it broadcasts, once per panel of x. Instead the (n-block x k-block) of the weight
  // is widened once into an f32 block that all panels' tiles read: the conversion is paid
  // once per MC x KC weights, not once per 32 rows of x.
  const bool widen = cast<MemRefType>(ws[0].getType()).getElementType() != b.getF32Type();
  int64_t MCb = std::max<int64_t>(R, o.gemmMC - o.gemmMC % R);
  auto kBlocks = [&](OpBuilder &b, Location loc, Value w, Value y, Value n0, Value n1,
                     int64_t rows) {
    Value wblk;
    if (widen)
      wblk = memref::AllocOp::create(b, loc, MemRefType::get({MCb, KC}, b.getF32Type()),
                                     b.getI64IntegerAttr(64));
    scf::ForOp::create(
        b, loc, c0, cidx(b, loc, K), cidx(b, loc, KC), ValueRange{},
        [&](OpBuilder &b, Location loc, Value k0, ValueRange) {
          Value k1 = arith::MinSIOp::create(b, loc, arith::AddIOp::create(b, loc, k0, cidx(b, loc, KC)),
                                            cidx(b, loc, K));
          Value tw = w, td = d, tn0, tk0;
          if (widen) {
            emitWidenBlock(b, loc, w, d, group, wblk, n0, n1, k0, k1, o.lanes);
            tw = wblk, td = Value(), tn0 = n0, tk0 = k0;
          }
          scf::ForOp::create(
              b, loc, c0, np, c1, ValueRange{}, [&](OpBuilder &b, Location loc, Value p, ValueRange) {
                Value rest = arith::SubIOp::create(b, loc, M, arith::MulIOp::create(b, loc, p, cpw));
                Value valid = arith::MinSIOp::create(b, loc, rest, cpw);
                auto tiles = [&](OpBuilder &b, Location loc, Value lo, Value hi, int64_t tr,
                                 int64_t tp) {
                  scf::ForOp::create(b, loc, lo, hi, cidx(b, loc, tr), ValueRange{},
                                     [&](OpBuilder &b, Location loc, Value n, ValueRange) {
                                       emitGemmTile(b, loc, xp, tw, y, n, p, k0, k1, valid, tr, tp,
                                                    K, o, td, group, tn0, tk0);
                                       scf::YieldOp::create(b, loc);
                                     });
                };
                int64_t P = o.gemmVecs;
                if (P == 1 || rows == 1) {
                  tiles(b, loc, n0, n1, rows, P);
                  scf::YieldOp::create(b, loc);
                  return;
                }
                // A last panel of at most L rows (M = 16 with 32-row panels, the 16 rows
                // left of M = 48) in a narrow tile of rows * P weight rows x 1 vector:
                // as many accumulators as the full tile, no FMAs on zero padding.
                Value narrow = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sle, valid,
                                                     cidx(b, loc, o.lanes));
                scf::IfOp::create(
                    b, loc, narrow,
                    [&](OpBuilder &b, Location loc) {
                      int64_t wide = rows * P;
                      Value span = arith::SubIOp::create(b, loc, n1, n0);
                      Value nw = arith::AddIOp::create(
                          b, loc, n0,
                          arith::SubIOp::create(b, loc, span,
                                                arith::RemUIOp::create(b, loc, span, cidx(b, loc, wide))));
                      tiles(b, loc, n0, nw, wide, 1);
                      tiles(b, loc, nw, n1, rows, 1);
                      scf::YieldOp::create(b, loc);
                    },
                    [&](OpBuilder &b, Location loc) {
                      tiles(b, loc, n0, n1, rows, P);
                      scf::YieldOp::create(b, loc);
                    });
                scf::YieldOp::create(b, loc);
              });
          scf::YieldOp::create(b, loc);
        });
    if (wblk) memref::DeallocOp::create(b, loc, wblk);
  };
  int64_t nr = N - N % R;
  if (nr > 0) {
    int64_t MC = MCb;
    emitGroupLoop(b, loc, G, c0, cidx(b, loc, nr), cidx(b, loc, MC), par,
                  [&](OpBuilder &b, Location loc, Value gi, Value n0) {
                    Value n1 = arith::MinSIOp::create(
                        b, loc, arith::AddIOp::create(b, loc, n0, cidx(b, loc, MC)), cidx(b, loc, nr));
                    kBlocks(b, loc, pick(b, loc, gi, ws), pick(b, loc, gi, ys), n0, n1, R);
                  });
  }
  if (nr < N)
    for (int64_t i = 0; i < G; ++i) kBlocks(b, loc, ws[i], ys[i], cidx(b, loc, nr), cidx(b, loc, N), 1);
  memref::DeallocOp::create(b, loc, xp);
}

/// The RMSNorm-fused GEMV: the M rows of x scaled once into xs[m, k] =
/// (x[m, k] * r[m]) * g[k] (a fresh [M, K] buffer), then the unchanged split-K on xs.
void emitNormSplitK(OpBuilder &b, Location loc, Value x, Value r, Value g, ArrayRef<Value> ws,
                    ArrayRef<Value> ys, int64_t N, int64_t K, const PhotonMatmulKernelsOptions &o,
                    bool par) {
  Value c0 = cidx(b, loc, 0), c1 = cidx(b, loc, 1);
  Value M = memref::DimOp::create(b, loc, x, 0);
  auto xsT = MemRefType::get({ShapedType::kDynamic, K}, b.getF32Type());
  Value xs = memref::AllocOp::create(b, loc, xsT, ValueRange{M}, b.getI64IntegerAttr(64));
  scf::ForOp::create(b, loc, c0, M, c1, ValueRange{}, [&](OpBuilder &b, Location loc, Value m,
                                                          ValueRange) {
    Value rm = memref::LoadOp::create(b, loc, r, ValueRange{m});
    scf::ForOp::create(b, loc, c0, cidx(b, loc, K), c1, ValueRange{},
                       [&](OpBuilder &b, Location loc, Value k, ValueRange) {
                         Value xv = memref::LoadOp::create(b, loc, x, ValueRange{m, k});
                         Value gv = memref::LoadOp::create(b, loc, g, ValueRange{k});
                         Value v = arith::MulFOp::create(
                             b, loc, arith::MulFOp::create(b, loc, xv, rm), gv);
                         memref::StoreOp::create(b, loc, v, xs, ValueRange{m, k});
                         scf::YieldOp::create(b, loc);
                       });
    scf::YieldOp::create(b, loc);
  });
  emitSplitK(b, loc, xs, ws, ys, N, K, o, par);
  memref::DeallocOp::create(b, loc, xs);
}

/// The kernel arguments of a matched generic: x, w, y (+ d for q8 / q4, + r, g for the
/// RMSNorm-fused form).
SmallVector<Value> kernelArgs(linalg::GenericOp op) {
  if (op.getNumDpsInputs() == 3)
    return {op.getDpsInputs()[0], op.getDpsInputs()[1], op.getDpsInits()[0], op.getDpsInputs()[2]};
  if (op.getNumDpsInputs() == 4)
    return {op.getDpsInputs()[0], op.getDpsInputs()[3], op.getDpsInits()[0], op.getDpsInputs()[1],
            op.getDpsInputs()[2]};
  return {op.getDpsInputs()[0], op.getDpsInputs()[1], op.getDpsInits()[0]};
}

/// The buffer a memref view is taken of (through view-like ops).
Value rootOf(Value v) {
  while (auto view = v.getDefiningOp<ViewLikeOpInterface>()) v = view.getViewSource();
  return v;
}

/// Whether roots `a` and `b` may be the same memory: equal, or both function arguments.
bool mayAlias(Value a, Value b) {
  return a == b || (isa<BlockArgument>(a) && isa<BlockArgument>(b));
}

/// Whether the matmuls `members` (in block order; the last one is where the fused call
/// goes) may run together at the last one's place: no op between the first and the last
/// is another matched matmul or writes or frees the group's x (r, g), and no op between
/// member i and the last reads or writes y_i or writes or frees w_i; ops whose effects are
/// unknown (calls) stop the group. The outputs must be distinct buffers.
bool canRunAtLast(ArrayRef<linalg::GenericOp> members, const llvm::DenseSet<Operation *> &matched) {
  Operation *last = members.back();
  llvm::SmallPtrSet<Operation *, 4> memberOps;
  for (linalg::GenericOp m : members) memberOps.insert(m);
  auto aliasesAny = [](ArrayRef<Value> roots, Value v) {
    Value r = rootOf(v);
    return llvm::any_of(roots, [&](Value x) { return mayAlias(x, r); });
  };
  // roots the op `it` must not read (yRoots) or write (yRoots, inRoots)
  auto conflicts = [&](Operation *it, ArrayRef<Value> yRoots, ArrayRef<Value> inRoots) {
    return it->walk([&](Operation *op) {
               if (isMemoryEffectFree(op)) return WalkResult::advance();
               auto iface = dyn_cast<MemoryEffectOpInterface>(op);
               if (!iface)
                 return op->hasTrait<OpTrait::HasRecursiveMemoryEffects>() ? WalkResult::advance()
                                                                           : WalkResult::interrupt();
               SmallVector<MemoryEffects::EffectInstance> effects;
               iface.getEffects(effects);
               for (auto &e : effects) {
                 if (isa<MemoryEffects::Allocate>(e.getEffect())) continue;
                 Value v = e.getValue();
                 if (!v || aliasesAny(yRoots, v)) return WalkResult::interrupt();
                 if (!isa<MemoryEffects::Read>(e.getEffect()) && aliasesAny(inRoots, v))
                   return WalkResult::interrupt();
               }
               return WalkResult::advance();
             })
        .wasInterrupted();
  };
  SmallVector<Value> shared; // x (r, g): the same values in every member
  SmallVector<Value> a0 = kernelArgs(members.front());
  shared.push_back(rootOf(a0[0]));
  for (size_t a = 3; a < a0.size(); ++a) shared.push_back(rootOf(a0[a]));
  for (size_t i = 0; i + 1 < members.size(); ++i) {
    SmallVector<Value> ai = kernelArgs(members[i]);
    SmallVector<Value> yRoots = {rootOf(ai[2])};
    SmallVector<Value> inRoots = shared;
    inRoots.push_back(rootOf(ai[1]));
    for (Operation *it = members[i]->getNextNode(); it && it != last; it = it->getNextNode()) {
      if (memberOps.contains(it)) continue;
      if (matched.contains(it) || conflicts(it, yRoots, inRoots)) return false;
    }
  }
  for (size_t i = 0; i < members.size(); ++i)
    for (size_t j = i + 1; j < members.size(); ++j)
      if (mayAlias(rootOf(kernelArgs(members[i])[2]), rootOf(kernelArgs(members[j])[2])))
        return false;
  return true;
}

struct MatmulKernelsPass : public impl::PhotonMatmulKernelsBase<MatmulKernelsPass> {
  using Base::Base;
  /// The pass's options as the generated struct the kernel builders take.
  PhotonMatmulKernelsOptions options() const {
    PhotonMatmulKernelsOptions o;
    o.parallel = parallel;
    o.lanes = lanes;
    o.rows = rows;
    o.gemmMinRows = gemmMinRows;
    o.gemmRows = gemmRows;
    o.gemmVecs = gemmVecs;
    o.gemmKC = gemmKC;
    o.gemmMC = gemmMC;
    o.parallelMinWeights = parallelMinWeights;
    o.parallelChunks = parallelChunks;
    o.prefetchRows = prefetchRows;
    o.gemvMRows = gemvMRows;
    return o;
  }
  void runOnOperation() override {
    ModuleOp module = getOperation();
    PhotonMatmulKernelsOptions o = options();
    if (o.lanes < 1 || o.rows < 1 || o.gemmRows < 1 || o.gemmVecs < 1 || o.gemmKC < 1 ||
        o.gemmMC < 1 || o.parallelChunks < 1 || o.prefetchRows < 0 ||
        o.gemvMRows < 1) {
      module.emitError("photon-matmul-kernels: sizes must be positive");
      return signalPassFailure();
    }
    SmallVector<linalg::GenericOp> ops;
    module.walk([&](linalg::GenericOp op) {
      if (isMatmulTranspose(op) || isNormMatmulTranspose(op) || isDequantMatmulTranspose(op))
        ops.push_back(op);
    });
    // Matmuls of the same types on the same x (q, k, v; gate, up) form a group: one
    // kernel call for all of them, so x is packed (or norm-scaled) once and their rows
    // share one parallel loop (one OpenMP region instead of one per matmul).
    llvm::DenseSet<Operation *> matched(ops.begin(), ops.end());
    llvm::DenseSet<Operation *> grouped;
    SmallVector<SmallVector<linalg::GenericOp>> groups;
    auto typesOf = [](ArrayRef<Value> args) {
      SmallVector<Type> types;
      for (Value v : args) types.push_back(v.getType());
      return types;
    };
    for (size_t i = 0; i < ops.size(); ++i) {
      if (grouped.contains(ops[i])) continue;
      SmallVector<linalg::GenericOp> group = {ops[i]};
      grouped.insert(ops[i]);
      SmallVector<Value> a0 = kernelArgs(ops[i]);
      // q8 / q4 (x, w, y, d) stay one matmul per call
      bool groupable = a0.size() != 4;
      for (size_t j = i + 1; groupable && j < ops.size(); ++j) {
        if (ops[j]->getBlock() != ops[i]->getBlock()) break;
        SmallVector<Value> aj = kernelArgs(ops[j]);
        if (typesOf(aj) != typesOf(a0) || aj[0] != a0[0] ||
            (a0.size() == 5 && (aj[3] != a0[3] || aj[4] != a0[4])))
          break;
        group.push_back(ops[j]);
        if (!canRunAtLast(group, matched)) {
          group.pop_back();
          break;
        }
        grouped.insert(ops[j]);
      }
      groups.push_back(group);
    }
    SymbolTable symbols(module);
    std::map<std::string, func::FuncOp> kernels;
    for (auto &group : groups) {
      // kernel arguments: x, w_1..w_G, y_1..y_G (+ d for q8 / q4, + r, g for the
      // RMSNorm-fused form)
      SmallVector<Value> first = kernelArgs(group.front());
      SmallVector<Value> args = {first[0]};
      for (auto op : group) args.push_back(kernelArgs(op)[1]);
      for (auto op : group) args.push_back(kernelArgs(op)[2]);
      args.append(first.begin() + 3, first.end());
      SmallVector<Type> types = typesOf(first);
      std::string key;
      llvm::raw_string_ostream ks(key);
      for (Type t : types) ks << t << ";";
      ks << group.size();
      func::FuncOp &fn = kernels[key];
      if (!fn) fn = buildKernel(module, symbols, group.front().getLoc(), types, group.size(), o);
      OpBuilder b(group.back());
      func::CallOp::create(b, group.back().getLoc(), fn, args);
      for (auto op : group) op.erase();
    }
  }
  /// `types`: one matmul's operand types (x, w, y[, d | r, g]); the kernel takes G
  /// weights and G outputs of those types.
  func::FuncOp buildKernel(ModuleOp module, SymbolTable &symbols, Location loc,
                           ArrayRef<Type> types, int64_t G, const PhotonMatmulKernelsOptions &o) {
    auto wt = cast<MemRefType>(types[1]);
    // q4 (x, w, y, d with d [N, K / 32] and w [N, K / 2]): two weights per byte
    bool q4 = types.size() == 4 &&
              wt.getDimSize(1) == 16 * cast<MemRefType>(types[3]).getDimSize(1);
    int64_t N = wt.getDimSize(0), K = wt.getDimSize(1) * (q4 ? 2 : 1);
    OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
    bool norm = types.size() == 5; // RMSNorm-fused: x, w, y, r, g
    bool q8 = types.size() == 4;   // x, w (i8), y, d
    Type we = wt.getElementType();
    std::string prefix = norm ? "__photon_matmul_rmsnorm_"
                         : q4 ? "__photon_matmul_q4_"
                         : q8 ? "__photon_matmul_q8_"
                         : we.isF16() ? "__photon_matmul_f16_"
                         : we.isBF16() ? "__photon_matmul_bf16_"
                                       : "__photon_matmul_";
    SmallVector<Type> argTypes = {types[0]};
    argTypes.append(G, types[1]);
    argTypes.append(G, types[2]);
    argTypes.append(types.begin() + 3, types.end());
    std::string name = prefix + std::to_string(N) + "x" + std::to_string(K);
    if (G > 1) name += "_x" + std::to_string(G);
    auto fn = func::FuncOp::create(b, loc, name, FunctionType::get(b.getContext(), argTypes, {}));
    symbols.insert(fn); // renames on a clash
    fn.setPrivate();
    // one copy per shape: keep LLVM from inlining it back into every caller
    fn->setAttr("passthrough", b.getArrayAttr({b.getStringAttr("noinline")}));
    Block *entry = fn.addEntryBlock();
    b.setInsertionPointToStart(entry);
    Value x = entry->getArgument(0);
    SmallVector<Value> ws, ys;
    for (int64_t i = 0; i < G; ++i) {
      ws.push_back(entry->getArgument(1 + i));
      ys.push_back(entry->getArgument(1 + G + i));
    }
    Value r = norm ? entry->getArgument(1 + 2 * G) : Value(),
          g = norm ? entry->getArgument(2 + 2 * G) : Value();
    Value d = q8 ? entry->getArgument(3) : Value();
    int64_t group = q8 ? K / cast<MemRefType>(types[3]).getDimSize(1) : 0;
    // the q8 GEMV steps k by whole groups of whole vectors; otherwise its k loop by lanes
    PhotonMatmulKernelsOptions ko = o;
    if (q8 && group % ko.lanes != 0) ko.lanes = std::gcd(group, ko.lanes);
    if (q4) ko.lanes = std::gcd<int64_t>(16, ko.lanes); // a vector within one nibble half
    bool par = o.parallel && G * N * K >= o.parallelMinWeights;
    auto gemv = [&](OpBuilder &b, Location loc) {
      if (norm) emitNormSplitK(b, loc, x, r, g, ws, ys, N, K, o, par);
      else emitSplitK(b, loc, x, ws, ys, N, K, ko, par, d, group);
    };
    if (o.gemmMinRows > 0) {
      Value M = memref::DimOp::create(b, loc, x, 0);
      Value big = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge, M,
                                        cidx(b, loc, o.gemmMinRows));
      scf::IfOp::create(
          b, loc, big,
          [&](OpBuilder &b, Location loc) {
            emitGemm(b, loc, x, ws, ys, N, K, o, par, r, g, d, group);
            scf::YieldOp::create(b, loc);
          },
          [&](OpBuilder &b, Location loc) {
            gemv(b, loc);
            scf::YieldOp::create(b, loc);
          });
    } else {
      gemv(b, loc);
    }
    func::ReturnOp::create(b, loc);
    return fn;
  }
};

} // namespace

} // namespace photon
} // namespace mlir
