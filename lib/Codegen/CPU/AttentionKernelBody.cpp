//===- AttentionKernelBody.cpp - the fused attention loop nest ------------===//
//
// The member functions of AttentionKernel (AttentionKernelBody.h): the loop nest every
// fused attention kernel emits. Prefill (>= 64 queries of a batch row) runs the (batch row,
// kv head) pairs as an scf.parallel, transposes each pair's keys once (transposeKeys) and
// computes a key block's scores GEMM-like (scoresTransposed); decode walks the key blocks
// once for all kv heads with dot-product scores reduced 8 keys at a time (reduceLanes).
// Both then update the online softmax and accumulate p V (accumulatePV).
//
//===----------------------------------------------------------------------===//

#include "AttentionKernelBody.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include <functional>
#include <limits>

#include <algorithm>
#include <limits>

namespace mlir {
namespace photon {
namespace attention_detail {

Value cIdx(OpBuilder &b, Location loc, int64_t v) {
  return arith::ConstantIndexOp::create(b, loc, v);
}

/// f32 (or vector of f32 / i32) constant of type t.
Value splatF(OpBuilder &b, Location loc, Type t, float v) {
  if (auto vt = dyn_cast<VectorType>(t))
    return arith::ConstantOp::create(b, loc, vt, DenseElementsAttr::get(vt, v));
  return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(v));
}
Value splatI(OpBuilder &b, Location loc, Type t, int32_t v) {
  if (auto vt = dyn_cast<VectorType>(t))
    return arith::ConstantOp::create(b, loc, vt, DenseElementsAttr::get(vt, v));
  return arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(v));
}

/// exp(x) for f32 or vector<L x f32>: x = n ln2 + r, |r| <= ln2 / 2, a degree-6 polynomial
/// for exp(r) (Cephes expf) and 2^n through the exponent bits. Inputs below -88 give 0
/// (so exp(-inf) = 0 as the masking needs); the kernels never pass positive inputs.
Value emitExp(OpBuilder &b, Location loc, Value x) {
  Type t = x.getType();
  Type it = b.getI32Type();
  if (auto vt = dyn_cast<VectorType>(t)) it = VectorType::get(vt.getShape(), b.getI32Type());
  auto c = [&](float v) { return splatF(b, loc, t, v); };
  auto mul = [&](Value p, Value q) { return arith::MulFOp::create(b, loc, p, q, kFM).getResult(); };
  auto add = [&](Value p, Value q) { return arith::AddFOp::create(b, loc, p, q, kFM).getResult(); };
  Value xc = arith::MaximumFOp::create(
      b, loc, arith::MinimumFOp::create(b, loc, x, c(88.3762626647949f)), c(-88.0f));
  Value fx = math::FloorOp::create(b, loc, add(mul(xc, c(1.44269504088896341f)), c(0.5f)));
  Value r = arith::SubFOp::create(b, loc, xc, mul(fx, c(0.693359375f)));
  r = arith::SubFOp::create(b, loc, r, mul(fx, c(-2.12194440e-4f)));
  Value y = c(1.9875691500e-4f);
  for (float k : {1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f,
                  5.0000001201e-1f})
    y = add(mul(y, r), c(k));
  y = add(add(mul(y, mul(r, r)), r), c(1.0f));
  Value n = arith::FPToSIOp::create(b, loc, it, fx);
  Value e = arith::ShLIOp::create(b, loc, arith::AddIOp::create(b, loc, n, splatI(b, loc, it, 127)),
                                  splatI(b, loc, it, 23));
  Value pow2 = arith::BitcastOp::create(b, loc, t, e);
  Value res = mul(y, pow2);
  Value tiny = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OLT, x, c(-88.0f));
  return arith::SelectOp::create(b, loc, tiny, c(0.0f), res);
}

/// A vector of type `v` (f32 lanes) read from `m` at `idx`: a vector load of the memref's
/// element type, widened with arith.extf when it is narrower (an f16 cache: vcvtph2ps).
Value loadAsF32(OpBuilder &b, Location loc, VectorType v, Value m, ValueRange idx) {
  Type elt = cast<MemRefType>(m.getType()).getElementType();
  if (elt == v.getElementType()) return vector::LoadOp::create(b, loc, v, m, idx);
  Value x = vector::LoadOp::create(b, loc, VectorType::get(v.getShape(), elt), m, idx);
  return arith::ExtFOp::create(b, loc, v, x);
}

/// Whether `t` is an element type the cache kernels read and write (f32, or f16 converted
/// on the load and the store).
bool cacheElementSupported(Type t) { return t.isF32() || t.isF16(); }

void AttentionKernel::emit(OpBuilder &b, Location loc) {
  KB = keys.block;
  KBp = (KB + L - 1) / L * L;
  Type f32 = b.getF32Type();
  auto dyn3 = [&](int64_t last) {
    return MemRefType::get({ShapedType::kDynamic, kTileRows, last}, f32);
  };
  Value sStack = memref::AllocaOp::create(b, loc, MemRefType::get({1, kTileRows, KBp}, f32));
  Value pStack = memref::AllocaOp::create(b, loc, MemRefType::get({1, kTileRows, KBp, L}, f32));
  Value large = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::uge, N,
                                      cIdx(b, loc, kParallelMinQueries));
  if (parallelMinKeys > 0) {
    // A long cache: the key streams are the bulk of a decode step's memory traffic, and
    // the pairs split them between the threads (each pair streams its own keys).
    Value hasRows = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ugt, B, cIdx(b, loc, 0));
    auto keys0 = scf::IfOp::create(
        b, loc, hasRows,
        [&](OpBuilder &b, Location loc) {
          scf::YieldOp::create(b, loc, ValueRange{keys.base(b, loc, cIdx(b, loc, 0))});
        },
        [&](OpBuilder &b, Location loc) { scf::YieldOp::create(b, loc, ValueRange{cIdx(b, loc, 0)}); });
    // Batched decode counts every row's keys (row 0's times B): 64 sequences of 128 keys
    // split between the threads as well as one sequence of 8,192 does, where a bound on
    // row 0's alone left the other thread waiting in the runtime (26% of the cycles of a
    // B = 64 decode of vanilla-mid on 2 threads).
    Value allKeys = arith::MulIOp::create(b, loc, keys0.getResult(0), B);
    Value longCache = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::uge, allKeys,
                                            cIdx(b, loc, parallelMinKeys));
    large = arith::OrIOp::create(b, loc, large, longCache);
  }
  scf::IfOp::create(
      b, loc, large,
      [&](OpBuilder &b, Location loc) {
        // Prefill: (batch row, kv head) pairs as an scf.parallel (OpenMP with --openmp),
        // one scratch slot each; every tile streams over its keys alone.
        Value cHkv = cIdx(b, loc, Hkv);
        Value slots = arith::MulIOp::create(b, loc, B, cHkv);
        S = memref::AllocOp::create(b, loc, dyn3(KBp), ValueRange{slots});
        P = memref::AllocOp::create(
            b, loc, MemRefType::get({ShapedType::kDynamic, kTileRows, KBp, L}, f32), ValueRange{slots});
        Acc = memref::AllocOp::create(b, loc, dyn3(hd), ValueRange{slots});
        ML = memref::AllocOp::create(b, loc, dyn3(2), ValueRange{slots});
        Value c0 = cIdx(b, loc, 0), c1 = cIdx(b, loc, 1);
        scf::ParallelOp::create(
            b, loc, ValueRange{c0, c0}, ValueRange{B, cHkv}, ValueRange{c1, c1},
            [&](OpBuilder &b, Location loc, ValueRange iv) {
              Value bI = iv[0], kh = iv[1];
              Value sl = arith::AddIOp::create(b, loc, arith::MulIOp::create(b, loc, bI, cHkv), kh);
              sSlot = sl;
              Value base = keys.base(b, loc, bI);
              auto pairBody = [&](OpBuilder &b, Location loc) {
                forTiles(b, loc, kh, [&](OpBuilder &b, Location loc, int64_t R, Value r0, Value) {
                  slot = sl;
                  Rows rw = rows(b, loc, R, kh, base, r0);
                  init(b, loc, R, rw);
                  Value jend = arith::AddIOp::create(b, loc, rw.lim[R - 1], cIdx(b, loc, 1));
                  scf::ForOp::create(b, loc, cIdx(b, loc, 0), jend, cIdx(b, loc, KB), ValueRange{},
                                     [&](OpBuilder &b, Location loc, Value j0, ValueRange) {
                                       SmallVector<Value> blk = keys.blockSetup(b, loc, bI, j0);
                                       setPrefetchBlock(b, loc, bI, j0, jend);
                                       step(b, loc, R, bI, kh, rw, j0, jend, blk);
                                       scf::YieldOp::create(b, loc);
                                     });
                  finish(b, loc, R, bI, rw);
                });
              };
              if (KBp > kMaxTransposedBlock) {
                pairBody(b, loc);
                return;
              }
              // Prefill proper (many queries): the pair's keys once transposed into KT, so
              // that the score step is GEMM-like (below, scoresTransposed); a long-cache
              // decode (few queries) keeps the dot-product scores.
              Value prefill = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::uge, N,
                                                    cIdx(b, loc, kParallelMinQueries));
              scf::IfOp::create(
                  b, loc, prefill,
                  [&](OpBuilder &b, Location loc) {
                    KT = transposeKeys(b, loc, bI, kh, arith::AddIOp::create(b, loc, base, N));
                    pairBody(b, loc);
                    KT = Value();
                    scf::YieldOp::create(b, loc);
                  },
                  [&](OpBuilder &b, Location loc) {
                    pairBody(b, loc);
                    scf::YieldOp::create(b, loc);
                  });
            });
        scf::YieldOp::create(b, loc);
      },
      [&](OpBuilder &b, Location loc) {
        // Decode (few queries): one pass over the key blocks of a sequence serves every
        // kv head, so the cache is read in its memory order; every tile keeps its own
        // accumulators and (max, sum) across the blocks.
        S = sStack;
        P = pStack;
        sSlot = cIdx(b, loc, 0);
        Value nt = tilesPerHead(b, loc);
        Value slots = arith::MulIOp::create(b, loc, nt, cIdx(b, loc, Hkv));
        Acc = memref::AllocOp::create(b, loc, dyn3(hd), ValueRange{slots});
        ML = memref::AllocOp::create(b, loc, dyn3(2), ValueRange{slots});
        Value c0 = cIdx(b, loc, 0), c1 = cIdx(b, loc, 1);
        auto overTiles = [&](OpBuilder &b, Location loc, Value base,
                             function_ref<void(OpBuilder &, Location, int64_t, Value, Rows &)> fn) {
          scf::ForOp::create(b, loc, cIdx(b, loc, 0), cIdx(b, loc, Hkv), cIdx(b, loc, 1),
                             ValueRange{}, [&](OpBuilder &b, Location loc, Value kh, ValueRange) {
                               forTiles(b, loc, kh, [&](OpBuilder &b, Location loc, int64_t R,
                                                        Value r0, Value ti) {
                                 slot = arith::AddIOp::create(
                                     b, loc, arith::MulIOp::create(b, loc, kh, nt), ti);
                                 Rows rw = rows(b, loc, R, kh, base, r0);
                                 fn(b, loc, R, kh, rw);
                               });
                               scf::YieldOp::create(b, loc);
                             });
        };
        scf::ForOp::create(b, loc, c0, B, c1, ValueRange{}, [&](OpBuilder &b, Location loc,
                                                                 Value bI, ValueRange) {
          Value base = keys.base(b, loc, bI);
          overTiles(b, loc, base, [&](OpBuilder &b, Location loc, int64_t R, Value, Rows &rw) {
            init(b, loc, R, rw);
          });
          Value jend = arith::AddIOp::create(b, loc, base, N);
          scf::ForOp::create(b, loc, cIdx(b, loc, 0), jend, cIdx(b, loc, KB), ValueRange{},
                             [&](OpBuilder &b, Location loc, Value j0, ValueRange) {
                               SmallVector<Value> blk = keys.blockSetup(b, loc, bI, j0);
                               setPrefetchBlock(b, loc, bI, j0, jend);
                               overTiles(b, loc, base, [&](OpBuilder &b, Location loc, int64_t R,
                                                           Value kh, Rows &rw) {
                                 step(b, loc, R, bI, kh, rw, j0, jend, blk);
                               });
                               scf::YieldOp::create(b, loc);
                             });
          overTiles(b, loc, base, [&](OpBuilder &b, Location loc, int64_t R, Value, Rows &rw) {
            finish(b, loc, R, bI, rw);
          });
          scf::YieldOp::create(b, loc);
        });
        scf::YieldOp::create(b, loc);
      });
}

void AttentionKernel::setPrefetchBlock(OpBuilder &b, Location loc, Value bI, Value j0, Value jend) {
  Value jNext = arith::MinUIOp::create(
      b, loc, arith::AddIOp::create(b, loc, j0, cIdx(b, loc, KB)),
      arith::SubIOp::create(b, loc, jend, cIdx(b, loc, 1)));
  pfJ0 = arith::MulIOp::create(b, loc, arith::DivUIOp::create(b, loc, jNext, cIdx(b, loc, KB)),
                               cIdx(b, loc, KB));
  pfBlk = keys.blockSetup(b, loc, bI, pfJ0);
}

Value AttentionKernel::tilesPerHead(OpBuilder &b, Location loc) {
  Value nr = arith::MulIOp::create(b, loc, N, cIdx(b, loc, G));
  Value cR = cIdx(b, loc, kTileRows);
  Value q = arith::DivUIOp::create(b, loc, nr, cR);
  Value rem = arith::RemUIOp::create(b, loc, nr, cR);
  return arith::AddIOp::create(b, loc, q, rem);
}

void AttentionKernel::forTiles(OpBuilder &b, Location loc, Value kh,
              function_ref<void(OpBuilder &, Location, int64_t, Value, Value)> fn) {
  Value nr = arith::MulIOp::create(b, loc, N, cIdx(b, loc, G));
  Value cR = cIdx(b, loc, kTileRows);
  Value q = arith::DivUIOp::create(b, loc, nr, cR);
  Value nMain = arith::MulIOp::create(b, loc, q, cR);
  scf::ForOp::create(b, loc, cIdx(b, loc, 0), nMain, cR, ValueRange{},
                     [&](OpBuilder &b, Location loc, Value r0, ValueRange) {
                       fn(b, loc, kTileRows, r0, arith::DivUIOp::create(b, loc, r0, cR));
                       scf::YieldOp::create(b, loc);
                     });
  scf::ForOp::create(b, loc, nMain, nr, cIdx(b, loc, 1), ValueRange{},
                     [&](OpBuilder &b, Location loc, Value r0, ValueRange) {
                       fn(b, loc, 1, r0,
                          arith::AddIOp::create(b, loc, q, arith::SubIOp::create(b, loc, r0, nMain)));
                       scf::YieldOp::create(b, loc);
                     });
}

AttentionKernel::Rows AttentionKernel::rows(OpBuilder &b, Location loc, int64_t R, Value kh, Value base, Value r0) {
  Rows rw;
  Value cG = cIdx(b, loc, G);
  for (int64_t r = 0; r < R; ++r) {
    Value rg = r == 0 ? r0 : arith::AddIOp::create(b, loc, r0, cIdx(b, loc, r)).getResult();
    Value t = arith::DivUIOp::create(b, loc, rg, cG);
    Value g = arith::RemUIOp::create(b, loc, rg, cG);
    rw.t.push_back(t);
    rw.h.push_back(arith::AddIOp::create(b, loc, arith::MulIOp::create(b, loc, kh, cG), g));
    rw.lim.push_back(arith::AddIOp::create(b, loc, base, t));
    rw.r.push_back(cIdx(b, loc, r));
  }
  return rw;
}

void AttentionKernel::init(OpBuilder &b, Location loc, int64_t R, Rows &rw) {
  Type f32 = b.getF32Type();
  Value zeroV = splatF(b, loc, vt(b), 0.0f);
  Value ninf = splatF(b, loc, f32, -std::numeric_limits<float>::infinity());
  Value zero = splatF(b, loc, f32, 0.0f);
  for (int64_t r = 0; r < R; ++r) {
    for (int64_t d = 0; d < hd; d += L)
      vector::StoreOp::create(b, loc, zeroV, Acc, ValueRange{slot, rw.r[r], cIdx(b, loc, d)});
    memref::StoreOp::create(b, loc, ninf, ML, ValueRange{slot, rw.r[r], cIdx(b, loc, 0)});
    memref::StoreOp::create(b, loc, zero, ML, ValueRange{slot, rw.r[r], cIdx(b, loc, 1)});
  }
}

void AttentionKernel::step(OpBuilder &b, Location loc, int64_t R, Value bI, Value kh, Rows &rw, Value j0,
          Value jend, ArrayRef<Value> blk) {
  VectorType v = vt(b);
  Type f32 = b.getF32Type();
  Value zeroV = splatF(b, loc, v, 0.0f);
  Value ninfV = splatF(b, loc, v, -std::numeric_limits<float>::infinity());
  Value c0 = cIdx(b, loc, 0), c1 = cIdx(b, loc, 1);
  Value jn = arith::MinUIOp::create(b, loc, arith::SubIOp::create(b, loc, jend, j0),
                                    cIdx(b, loc, KB));
  if (KT) {
    // Prefill: scores and the softmax update on KBp-lane vectors in registers, then p V
    // on vectors of 16 lanes where hd allows (one zmm with AVX-512, two ymm with AVX2).
    SmallVector<Value> corr = scoresTransposed(b, loc, R, bI, rw, j0);
    int64_t pvLanes = hd % 16 == 0 ? 16 : L;
    accumulatePV(b, loc, R, bI, kh, rw, j0, jn, blk, corr,
                 VectorType::get({pvLanes}, f32), 1);
    return;
  }
  // Scores of the block: per key, each row's L-lane partial dot products go to P; then L
  // keys at a time are reduced together into a vector of L scores (reduceLanes), scaled
  // and masked.
  scf::ForOp::create(
      b, loc, c0, jn, c1, ValueRange{}, [&](OpBuilder &b, Location loc, Value jj, ValueRange) {
        auto [km, kidx] = keys.row(b, loc, 0, bI, kh, j0, jj, blk);
        // U independent accumulators per row (the head_dim chunks round robin), so that
        // a tile of one row is not one chain of hd / L dependent FMAs per key.
        int64_t U = std::max<int64_t>(1, std::min<int64_t>(4 / R, hd / L));
        SmallVector<Value> acc(R * U, zeroV);
        for (int64_t d = 0; d < hd; d += L) {
          Value cd = cIdx(b, loc, d);
          SmallVector<Value> ki(kidx);
          ki.push_back(cd);
          Value kv = loadAsF32(b, loc, v, km, ki);
          if (!pfBlk.empty() && d % 16 == 0) // one prefetch per 64-byte line
            for (int which = 0; which < 2; ++which) {
              auto [pm, pidx] = keys.row(b, loc, which, bI, kh, pfJ0, jj, pfBlk);
              SmallVector<Value> pi(pidx);
              pi.push_back(cd);
              memref::PrefetchOp::create(b, loc, pm, pi, /*isWrite=*/false, /*locality=*/2,
                                         /*isDataCache=*/true);
            }
          int64_t u = (d / L) % U;
          for (int64_t r = 0; r < R; ++r) {
            Value qv = vector::LoadOp::create(b, loc, v, Q, ValueRange{bI, rw.t[r], rw.h[r], cd});
            acc[r * U + u] = vector::FMAOp::create(b, loc, qv, kv, acc[r * U + u]);
          }
        }
        for (int64_t r = 0; r < R; ++r)
          for (int64_t u = 1; u < U; ++u)
            acc[r * U] = arith::AddFOp::create(b, loc, acc[r * U], acc[r * U + u], kFM);
        for (int64_t r = 0; r < R; ++r)
          vector::StoreOp::create(b, loc, acc[r * U], P, ValueRange{sSlot, rw.r[r], jj, c0});
        scf::YieldOp::create(b, loc);
      });
  {
    // Lanes of keys past jn hold stale partial sums: they are past every row's last visible
    // key (jend bounds the rows' keys), so the causal mask drops them; padding lanes past
    // KB (the next block's keys) are dropped explicitly.
    Type i32 = b.getI32Type();
    auto iv = VectorType::get({L}, i32);
    SmallVector<int32_t> lanes;
    for (int64_t l = 0; l < L; ++l) lanes.push_back(static_cast<int32_t>(l));
    Value iota = arith::ConstantOp::create(b, loc, DenseIntElementsAttr::get(iv, lanes));
    Value j0i = arith::IndexCastOp::create(b, loc, i32, j0);
    Value scaleV = vector::BroadcastOp::create(b, loc, v, scale);
    for (int64_t g = 0; g < KBp; g += L) {
      Value jv = arith::AddIOp::create(
          b, loc, vector::BroadcastOp::create(b, loc, iv, j0i),
          arith::AddIOp::create(b, loc, iota, splatI(b, loc, iv, static_cast<int32_t>(g))));
      Value inBlock;
      if (g + L > KB)
        inBlock = arith::CmpIOp::create(
            b, loc, arith::CmpIPredicate::ult, iota, splatI(b, loc, iv, static_cast<int32_t>(KB - g)));
      for (int64_t r = 0; r < R; ++r) {
        SmallVector<Value> parts;
        for (int64_t k = 0; k < L; ++k)
          parts.push_back(vector::LoadOp::create(b, loc, v, P,
                                                 ValueRange{sSlot, rw.r[r], cIdx(b, loc, g + k), c0}));
        Value sv = arith::MulFOp::create(b, loc, reduceLanes(b, loc, parts), scaleV);
        Value lim = vector::BroadcastOp::create(
            b, loc, iv, arith::IndexCastOp::create(b, loc, i32, rw.lim[r]));
        Value ok = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ule, jv, lim);
        if (inBlock) ok = arith::AndIOp::create(b, loc, ok, inBlock);
        sv = arith::SelectOp::create(b, loc, ok, sv, ninfV);
        vector::StoreOp::create(b, loc, sv, S, ValueRange{sSlot, rw.r[r], cIdx(b, loc, g)});
      }
    }
  }
  // Online softmax update; S becomes p.
  SmallVector<Value> corr(R);
  for (int64_t r = 0; r < R; ++r) {
    Value mOld = memref::LoadOp::create(b, loc, ML, ValueRange{slot, rw.r[r], c0});
    Value lOld = memref::LoadOp::create(b, loc, ML, ValueRange{slot, rw.r[r], c1});
    SmallVector<Value> sv;
    for (int64_t c = 0; c < KBp; c += L)
      sv.push_back(vector::LoadOp::create(b, loc, v, S, ValueRange{sSlot, rw.r[r], cIdx(b, loc, c)}));
    Value mx = sv[0];
    for (size_t c = 1; c < sv.size(); ++c) mx = arith::MaxNumFOp::create(b, loc, mx, sv[c]);
    Value mt = vector::ReductionOp::create(b, loc, vector::CombiningKind::MAXNUMF, mx);
    Value mNew = arith::MaxNumFOp::create(b, loc, mOld, mt);
    corr[r] = emitExp(b, loc, arith::SubFOp::create(b, loc, mOld, mNew));
    Value mb = vector::BroadcastOp::create(b, loc, v, mNew);
    Value sum = zeroV;
    for (size_t c = 0; c < sv.size(); ++c) {
      Value p = emitExp(b, loc, arith::SubFOp::create(b, loc, sv[c], mb));
      vector::StoreOp::create(b, loc, p, S, ValueRange{sSlot, rw.r[r], cIdx(b, loc, c * L)});
      sum = arith::AddFOp::create(b, loc, sum, p, kFM);
    }
    Value ls = vector::ReductionOp::create(b, loc, vector::CombiningKind::ADD, sum, kFM);
    Value lNew = arith::AddFOp::create(b, loc, arith::MulFOp::create(b, loc, lOld, corr[r], kFM),
                                       ls, kFM);
    memref::StoreOp::create(b, loc, mNew, ML, ValueRange{slot, rw.r[r], c0});
    memref::StoreOp::create(b, loc, lNew, ML, ValueRange{slot, rw.r[r], c1});
  }
  accumulatePV(b, loc, R, bI, kh, rw, j0, jn, blk, corr, v, hd % (2 * L) == 0 ? 2 : 1);
}

void AttentionKernel::accumulatePV(OpBuilder &b, Location loc, int64_t R, Value bI, Value kh, Rows &rw,
                  Value j0, Value jn, ArrayRef<Value> blk, ArrayRef<Value> corr, VectorType v,
                  int64_t U) {
  int64_t Lv = v.getNumElements();
  scf::ForOp::create(
      b, loc, cIdx(b, loc, 0), cIdx(b, loc, hd), cIdx(b, loc, U * Lv), ValueRange{},
      [&](OpBuilder &b, Location loc, Value dc, ValueRange) {
        SmallVector<Value> dIdx;
        for (int64_t u = 0; u < U; ++u)
          dIdx.push_back(u == 0 ? dc
                                : arith::AddIOp::create(b, loc, dc, cIdx(b, loc, u * Lv)).getResult());
        SmallVector<Value> a;
        for (int64_t r = 0; r < R; ++r) {
          Value cb = vector::BroadcastOp::create(b, loc, v, corr[r]);
          for (int64_t u = 0; u < U; ++u)
            a.push_back(arith::MulFOp::create(
                b, loc, vector::LoadOp::create(b, loc, v, Acc, ValueRange{slot, rw.r[r], dIdx[u]}),
                cb));
        }
        auto pv = scf::ForOp::create(
            b, loc, cIdx(b, loc, 0), jn, cIdx(b, loc, 1), a,
            [&](OpBuilder &b, Location loc, Value jj, ValueRange acc) {
              auto [vm, vidx] = keys.row(b, loc, 1, bI, kh, j0, jj, blk);
              SmallVector<Value> vv;
              for (int64_t u = 0; u < U; ++u) {
                SmallVector<Value> vi(vidx);
                vi.push_back(dIdx[u]);
                vv.push_back(loadAsF32(b, loc, v, vm, vi));
              }
              SmallVector<Value> next;
              for (int64_t r = 0; r < R; ++r) {
                Value ps = memref::LoadOp::create(b, loc, S, ValueRange{sSlot, rw.r[r], jj});
                Value pb = vector::BroadcastOp::create(b, loc, v, ps);
                for (int64_t u = 0; u < U; ++u)
                  next.push_back(vector::FMAOp::create(b, loc, pb, vv[u], acc[r * U + u]));
              }
              scf::YieldOp::create(b, loc, next);
            });
        for (int64_t r = 0; r < R; ++r)
          for (int64_t u = 0; u < U; ++u)
            vector::StoreOp::create(b, loc, pv.getResult(r * U + u), Acc,
                                    ValueRange{slot, rw.r[r], dIdx[u]});
        scf::YieldOp::create(b, loc);
      });
}

Value AttentionKernel::reduceLanes(OpBuilder &b, Location loc, SmallVector<Value> parts) {
  int64_t n = static_cast<int64_t>(parts.size());
  for (int64_t h = 1; h < n; h *= 2) {
    SmallVector<int64_t> mx, my;
    for (int64_t p = 0; p < n; ++p) {
      int64_t base = p / (2 * h) * (2 * h), within = p % (2 * h);
      if (within < h) {
        mx.push_back(base + within);
        my.push_back(base + h + within);
      } else {
        mx.push_back(n + base + within - h);
        my.push_back(n + base + within);
      }
    }
    SmallVector<Value> next;
    for (size_t i = 0; i + 1 < parts.size(); i += 2) {
      Value x = vector::ShuffleOp::create(b, loc, parts[i], parts[i + 1], mx);
      Value y = vector::ShuffleOp::create(b, loc, parts[i], parts[i + 1], my);
      next.push_back(arith::AddFOp::create(b, loc, x, y, kFM));
    }
    parts = std::move(next);
  }
  return parts[0];
}

Value AttentionKernel::transposeKeys(OpBuilder &b, Location loc, Value bI, Value kh, Value jAll) {
  Type f32 = b.getF32Type();
  Value cKB = cIdx(b, loc, KB);
  Value nBlk = arith::DivUIOp::create(
      b, loc, arith::AddIOp::create(b, loc, jAll, cIdx(b, loc, KB - 1)), cKB);
  Value kt = memref::AllocOp::create(
      b, loc, MemRefType::get({ShapedType::kDynamic, hd, KBp}, f32), ValueRange{nBlk},
      b.getI64IntegerAttr(64));
  VectorType v = vt(b);
  Value c0 = cIdx(b, loc, 0), c1 = cIdx(b, loc, 1);
  scf::ForOp::create(b, loc, c0, jAll, cKB, ValueRange{}, [&](OpBuilder &b, Location loc, Value j0,
                                                               ValueRange) {
    SmallVector<Value> blk = keys.blockSetup(b, loc, bI, j0);
    Value bi = arith::DivUIOp::create(b, loc, j0, cKB);
    Value jn = arith::MinUIOp::create(b, loc, arith::SubIOp::create(b, loc, jAll, j0), cKB);
    scf::ForOp::create(b, loc, c0, jn, c1, ValueRange{}, [&](OpBuilder &b, Location loc, Value jj,
                                                             ValueRange) {
      auto [km, kidx] = keys.row(b, loc, 0, bI, kh, j0, jj, blk);
      for (int64_t d = 0; d < hd; d += L) {
        SmallVector<Value> ki(kidx);
        ki.push_back(cIdx(b, loc, d));
        Value kv = loadAsF32(b, loc, v, km, ki);
        for (int64_t l = 0; l < L; ++l)
          memref::StoreOp::create(b, loc, vector::ExtractOp::create(b, loc, kv, l), kt,
                                  ValueRange{bi, cIdx(b, loc, d + l), jj});
      }
      scf::YieldOp::create(b, loc);
    });
    scf::YieldOp::create(b, loc);
  });
  return kt;
}

SmallVector<Value> AttentionKernel::scoresTransposed(OpBuilder &b, Location loc, int64_t R, Value bI, Rows &rw,
                                    Value j0) {
  Type f32 = b.getF32Type(), i32 = b.getI32Type();
  auto sv = VectorType::get({KBp}, f32);
  auto iv = VectorType::get({KBp}, i32);
  Value bi = arith::DivUIOp::create(b, loc, j0, cIdx(b, loc, KB));
  SmallVector<Value> init(R, splatF(b, loc, sv, 0.0f));
  constexpr int64_t kUnroll = 4;
  int64_t unroll = hd % kUnroll == 0 ? kUnroll : 1;
  auto loop = scf::ForOp::create(
      b, loc, cIdx(b, loc, 0), cIdx(b, loc, hd), cIdx(b, loc, unroll), init,
      [&](OpBuilder &b, Location loc, Value d0, ValueRange acc) {
        SmallVector<Value> a(acc.begin(), acc.end());
        for (int64_t u = 0; u < unroll; ++u) {
          Value d = u == 0 ? d0 : arith::AddIOp::create(b, loc, d0, cIdx(b, loc, u)).getResult();
          Value kv = vector::LoadOp::create(b, loc, sv, KT, ValueRange{bi, d, cIdx(b, loc, 0)});
          for (int64_t r = 0; r < R; ++r) {
            Value qs = memref::LoadOp::create(b, loc, Q, ValueRange{bI, rw.t[r], rw.h[r], d});
            Value qb = vector::BroadcastOp::create(b, loc, sv, qs);
            a[r] = vector::FMAOp::create(b, loc, qb, kv, a[r]);
          }
        }
        scf::YieldOp::create(b, loc, a);
      });
  SmallVector<int32_t> lanes;
  for (int64_t l = 0; l < KBp; ++l) lanes.push_back(static_cast<int32_t>(l));
  Value iota = arith::ConstantOp::create(b, loc, DenseIntElementsAttr::get(iv, lanes));
  Value j0i = arith::IndexCastOp::create(b, loc, i32, j0);
  Value jv = arith::AddIOp::create(b, loc, vector::BroadcastOp::create(b, loc, iv, j0i), iota);
  Value scaleV = vector::BroadcastOp::create(b, loc, sv, scale);
  Value ninfV = splatF(b, loc, sv, -std::numeric_limits<float>::infinity());
  Value inBlock;
  if (KBp != KB)
    inBlock = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, iota,
                                    splatI(b, loc, iv, static_cast<int32_t>(KB)));
  Value c0 = cIdx(b, loc, 0), c1 = cIdx(b, loc, 1);
  SmallVector<Value> corr(R);
  for (int64_t r = 0; r < R; ++r) {
    Value s = arith::MulFOp::create(b, loc, loop.getResult(r), scaleV);
    Value lim = vector::BroadcastOp::create(b, loc, iv, arith::IndexCastOp::create(b, loc, i32, rw.lim[r]));
    Value ok = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ule, jv, lim);
    if (KBp != KB) // the padding lanes past the block are the next block's keys
      ok = arith::AndIOp::create(b, loc, ok, inBlock);
    s = arith::SelectOp::create(b, loc, ok, s, ninfV);
    // Online softmax update on the row's vector; S receives p for the p V step.
    Value mOld = memref::LoadOp::create(b, loc, ML, ValueRange{slot, rw.r[r], c0});
    Value lOld = memref::LoadOp::create(b, loc, ML, ValueRange{slot, rw.r[r], c1});
    Value mt = vector::ReductionOp::create(b, loc, vector::CombiningKind::MAXNUMF, s);
    Value mNew = arith::MaxNumFOp::create(b, loc, mOld, mt);
    corr[r] = emitExp(b, loc, arith::SubFOp::create(b, loc, mOld, mNew));
    Value pv = emitExp(b, loc, arith::SubFOp::create(b, loc, s, vector::BroadcastOp::create(b, loc, sv, mNew)));
    vector::StoreOp::create(b, loc, pv, S, ValueRange{sSlot, rw.r[r], c0});
    Value ls = vector::ReductionOp::create(b, loc, vector::CombiningKind::ADD, pv, kFM);
    Value lNew = arith::AddFOp::create(b, loc, arith::MulFOp::create(b, loc, lOld, corr[r], kFM), ls, kFM);
    memref::StoreOp::create(b, loc, mNew, ML, ValueRange{slot, rw.r[r], c0});
    memref::StoreOp::create(b, loc, lNew, ML, ValueRange{slot, rw.r[r], c1});
  }
  return corr;
}

void AttentionKernel::finish(OpBuilder &b, Location loc, int64_t R, Value bI, Rows &rw) {
  VectorType v = vt(b);
  Value one = splatF(b, loc, b.getF32Type(), 1.0f);
  for (int64_t r = 0; r < R; ++r) {
    Value l = memref::LoadOp::create(b, loc, ML, ValueRange{slot, rw.r[r], cIdx(b, loc, 1)});
    Value ib = vector::BroadcastOp::create(b, loc, v, arith::DivFOp::create(b, loc, one, l));
    for (int64_t d = 0; d < hd; d += L) {
      Value cd = cIdx(b, loc, d);
      Value a = vector::LoadOp::create(b, loc, v, Acc, ValueRange{slot, rw.r[r], cd});
      vector::StoreOp::create(b, loc, arith::MulFOp::create(b, loc, a, ib), O,
                              ValueRange{bI, rw.t[r], rw.h[r], cd});
    }
  }
}
} // namespace attention_detail
} // namespace photon
} // namespace mlir
