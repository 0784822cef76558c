//===- MatmulKernelsGemv.cpp - split-K GEMV of photon-matmul-kernels -----===//
//
// The decode path of photon-matmul-kernels (MatmulKernelEmit.h; the algorithm is described
// at the top of MatmulKernels.cpp): split-K register tiles over R weight rows and the rows
// of x with next-block prefetch, their blocks and the parallel loop over a group's
// weights, and the RMSNorm-fused GEMV; with them the weight reads (widened f16 / bf16,
// q8 / q4 times the group's scale) and the loops the packed GEMM uses too.
//
//===----------------------------------------------------------------------===//

#include "MatmulKernelEmit.h"

#include <algorithm>

namespace mlir {
namespace photon {
namespace matmul_kernels {

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

namespace {

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

} // namespace

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
                Value d, int64_t group) {
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

} // namespace matmul_kernels
} // namespace photon
} // namespace mlir
