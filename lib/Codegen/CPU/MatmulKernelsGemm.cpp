//===- MatmulKernelsGemm.cpp - packed GEMM of photon-matmul-kernels ------===//
//
// The prefill path of photon-matmul-kernels (MatmulKernelEmit.h; the algorithm is
// described at the top of MatmulKernels.cpp): x packed once into panels (normalized while
// packing for the RMSNorm-fused form), weight blocks widened for reduced-precision
// weights, R x (P * L) register tiles and the narrow tile of a last panel, over MC x KC
// blocks of W in one parallel loop for a group's weights.
//
//===----------------------------------------------------------------------===//

#include "MatmulKernelEmit.h"

#include <algorithm>

namespace mlir {
namespace photon {
namespace matmul_kernels {

namespace {

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


} // namespace

/// `r`, `g` (both or neither): the RMSNorm-fused form, x[m, k] is packed as
/// (x[m, k] * r[m]) * g[k].
/// Every weight of the group: x is packed once, the n blocks of all weights share one
/// parallel loop.
void emitGemm(OpBuilder &b, Location loc, Value x, ArrayRef<Value> ws, ArrayRef<Value> ys,
              int64_t N, int64_t K, const PhotonMatmulKernelsOptions &o, bool par,
              Value r, Value g, Value d, int64_t group) {
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

} // namespace matmul_kernels
} // namespace photon
} // namespace mlir
