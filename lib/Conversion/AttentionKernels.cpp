//===- AttentionKernels.cpp - fused, vectorized attention ----------------===//
//
// The fused attention kernels of convert-photon-to-linalg (option `fused-attention`,
// default on). One loop nest serves causal_attention, bounded_attention (causal inside
// each window row) and cached_attention (keys and values from the paged block pool);
// only where key row j lives and how far each query may look differ:
//
//   for b in 0..B, kh in 0..Hkv
//     rows = (query t, head g of kv head kh), r = t * G + g, in tiles of R = 4 rows
//     (then single rows for the remainder): the tile's rows share every K/V row load
//     for each tile: acc[R][hd] = 0 (stack scratch), m[R] = -inf, l[R] = 0 (loop-carried)
//       for j0 in 0 .. last key of the tile step KB (KB = 16, or one cache block)
//         s[r][jj] = scale * <q_r, k_(j0+jj)>  vector<L> FMAs over hd + one reduction,
//                    -inf where j0 + jj > base + t_r (causal mask; base = lens[b] or 0)
//         m' = max(m, max_jj s), p = exp(s - m') (vector exp), corr = exp(m - m'),
//         l = l * corr + sum p
//         acc[r][:] = acc[r][:] * corr + sum_jj p[r][jj] * v_(j0+jj)[:]   (R x 2L register
//                    tile per step over jj, V row chunks loaded once for all R rows)
//       out[b, t_r, kh * G + g_r, :] = acc[r] / l[r]
//
// No [M, M] scores tensor exists; the scratch is R x KB scores and R x hd accumulators.
// Everything is explicit scf loops and vector ops on memrefs (q/k/v through read-only
// bufferization.to_buffer, the result a fresh buffer), lowered by the existing
// photon-lower-to-llvm pipeline. exp is a Cephes-style polynomial on vectors (relative
// error ~1e-7, exactly 0 below -88), so no libm call per score.
//
//===----------------------------------------------------------------------===//

#include "AttentionKernels.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <functional>
#include <limits>

using namespace mlir;

namespace {

constexpr arith::FastMathFlags kFM =
    arith::FastMathFlags::reassoc | arith::FastMathFlags::contract;

/// Rows of query positions x heads per register tile.
constexpr int64_t kTileRows = 4;
/// Key block of causal / bounded attention (cached attention uses the cache block).
constexpr int64_t kKeyBlock = 16;

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

/// Where the keys and values come from.
struct KeySource {
  /// Key block size (positions per block; a multiple of nothing in particular).
  int64_t block = kKeyBlock;
  /// Called once per key block j0 of batch row bI; returns values `row` may use.
  std::function<SmallVector<Value>(OpBuilder &, Location, Value bI, Value j0)> blockSetup;
  /// The memref and the leading indices (all but hd) of the K (which = 0) or V (which = 1)
  /// row j0 + jj of kv head kh.
  std::function<std::pair<Value, SmallVector<Value>>(OpBuilder &, Location, int which,
                                                      Value bI, Value kh, Value j0, Value jj,
                                                      ArrayRef<Value> blk)>
      row;
  /// Query t of batch row bI sees keys 0 .. base(bI) + t.
  std::function<Value(OpBuilder &, Location, Value bI)> base;
};

struct AttentionKernel {
  Value Q, O;           // memrefs [B, N, H, hd] (unit innermost stride)
  Value B, N;           // index
  int64_t H, Hkv, G, hd, L;
  float scale;
  KeySource keys;

  int64_t KB = 0, KBp = 0; // key block and its padding to a multiple of L
  Value S, Acc;            // scratch [kTileRows, KBp], [kTileRows, hd]

  VectorType vt(OpBuilder &b) const { return VectorType::get({L}, b.getF32Type()); }

  void emit(OpBuilder &b, Location loc) {
    KB = keys.block;
    KBp = (KB + L - 1) / L * L;
    Type f32 = b.getF32Type();
    S = memref::AllocaOp::create(b, loc, MemRefType::get({kTileRows, KBp}, f32));
    Acc = memref::AllocaOp::create(b, loc, MemRefType::get({kTileRows, hd}, f32));
    Value c0 = cIdx(b, loc, 0), c1 = cIdx(b, loc, 1);
    scf::ForOp::create(b, loc, c0, B, c1, ValueRange{}, [&](OpBuilder &b, Location loc, Value bI,
                                                             ValueRange) {
      Value base = keys.base(b, loc, bI);
      Value cHkv = cIdx(b, loc, Hkv);
      scf::ForOp::create(b, loc, cIdx(b, loc, 0), cHkv, cIdx(b, loc, 1), ValueRange{},
                         [&](OpBuilder &b, Location loc, Value kh, ValueRange) {
                           Value nr = arith::MulIOp::create(b, loc, N, cIdx(b, loc, G));
                           Value cR = cIdx(b, loc, kTileRows);
                           Value nMain = arith::MulIOp::create(
                               b, loc, arith::DivUIOp::create(b, loc, nr, cR), cR);
                           scf::ForOp::create(b, loc, cIdx(b, loc, 0), nMain, cR, ValueRange{},
                                              [&](OpBuilder &b, Location loc, Value r0, ValueRange) {
                                                tile(b, loc, kTileRows, bI, kh, base, r0);
                                                scf::YieldOp::create(b, loc);
                                              });
                           scf::ForOp::create(b, loc, nMain, nr, cIdx(b, loc, 1), ValueRange{},
                                              [&](OpBuilder &b, Location loc, Value r0, ValueRange) {
                                                tile(b, loc, 1, bI, kh, base, r0);
                                                scf::YieldOp::create(b, loc);
                                              });
                           scf::YieldOp::create(b, loc);
                         });
      scf::YieldOp::create(b, loc);
    });
  }

  /// Rows r0 .. r0 + R - 1 of kv head kh (all valid).
  void tile(OpBuilder &b, Location loc, int64_t R, Value bI, Value kh, Value base, Value r0) {
    VectorType v = vt(b);
    Type f32 = b.getF32Type();
    Value cG = cIdx(b, loc, G);
    SmallVector<Value> t(R), h(R), lim(R), rIdx(R);
    for (int64_t r = 0; r < R; ++r) {
      Value rg = r == 0 ? r0 : arith::AddIOp::create(b, loc, r0, cIdx(b, loc, r)).getResult();
      t[r] = arith::DivUIOp::create(b, loc, rg, cG);
      Value g = arith::RemUIOp::create(b, loc, rg, cG);
      h[r] = arith::AddIOp::create(b, loc, arith::MulIOp::create(b, loc, kh, cG), g);
      lim[r] = arith::AddIOp::create(b, loc, base, t[r]);
      rIdx[r] = cIdx(b, loc, r);
    }
    Value c0 = cIdx(b, loc, 0), c1 = cIdx(b, loc, 1);
    Value jend = arith::AddIOp::create(b, loc, lim[R - 1], c1);
    Value zeroV = splatF(b, loc, v, 0.0f);
    Value ninfV = splatF(b, loc, v, -std::numeric_limits<float>::infinity());
    Value ninf = splatF(b, loc, f32, -std::numeric_limits<float>::infinity());
    Value zero = splatF(b, loc, f32, 0.0f);
    for (int64_t r = 0; r < R; ++r)
      for (int64_t d = 0; d < hd; d += L)
        vector::StoreOp::create(b, loc, zeroV, Acc, ValueRange{rIdx[r], cIdx(b, loc, d)});
    SmallVector<Value> init(R, ninf);
    init.append(R, zero);
    auto blockLoop = scf::ForOp::create(
        b, loc, c0, jend, cIdx(b, loc, KB), init,
        [&](OpBuilder &b, Location loc, Value j0, ValueRange it) {
          SmallVector<Value> blk = keys.blockSetup(b, loc, bI, j0);
          Value jn = arith::MinUIOp::create(b, loc, arith::SubIOp::create(b, loc, jend, j0),
                                            cIdx(b, loc, KB));
          for (int64_t r = 0; r < R; ++r)
            for (int64_t c = 0; c < KBp; c += L)
              vector::StoreOp::create(b, loc, ninfV, S, ValueRange{rIdx[r], cIdx(b, loc, c)});
          // Scores of the block.
          scf::ForOp::create(
              b, loc, cIdx(b, loc, 0), jn, cIdx(b, loc, 1), ValueRange{},
              [&](OpBuilder &b, Location loc, Value jj, ValueRange) {
                auto [km, kidx] = keys.row(b, loc, 0, bI, kh, j0, jj, blk);
                SmallVector<Value> acc(R, zeroV);
                for (int64_t d = 0; d < hd; d += L) {
                  Value cd = cIdx(b, loc, d);
                  SmallVector<Value> ki(kidx);
                  ki.push_back(cd);
                  Value kv = vector::LoadOp::create(b, loc, v, km, ki);
                  for (int64_t r = 0; r < R; ++r) {
                    Value qv = vector::LoadOp::create(b, loc, v, Q, ValueRange{bI, t[r], h[r], cd});
                    acc[r] = vector::FMAOp::create(b, loc, qv, kv, acc[r]);
                  }
                }
                Value j = arith::AddIOp::create(b, loc, j0, jj);
                Value sc = splatF(b, loc, f32, scale);
                for (int64_t r = 0; r < R; ++r) {
                  Value s = vector::ReductionOp::create(b, loc, vector::CombiningKind::ADD, acc[r],
                                                        kFM);
                  s = arith::MulFOp::create(b, loc, s, sc);
                  Value ok = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ule, j, lim[r]);
                  s = arith::SelectOp::create(b, loc, ok, s, ninf);
                  memref::StoreOp::create(b, loc, s, S, ValueRange{rIdx[r], jj});
                }
                scf::YieldOp::create(b, loc);
              });
          // Online softmax update; S becomes p.
          SmallVector<Value> mNew(R), lNew(R), corr(R);
          for (int64_t r = 0; r < R; ++r) {
            SmallVector<Value> sv;
            for (int64_t c = 0; c < KBp; c += L)
              sv.push_back(vector::LoadOp::create(b, loc, v, S, ValueRange{rIdx[r], cIdx(b, loc, c)}));
            Value mx = sv[0];
            for (size_t c = 1; c < sv.size(); ++c) mx = arith::MaximumFOp::create(b, loc, mx, sv[c]);
            Value mt = vector::ReductionOp::create(b, loc, vector::CombiningKind::MAXIMUMF, mx);
            mNew[r] = arith::MaximumFOp::create(b, loc, it[r], mt);
            corr[r] = emitExp(b, loc, arith::SubFOp::create(b, loc, it[r], mNew[r]));
            Value mb = vector::BroadcastOp::create(b, loc, v, mNew[r]);
            Value sum = zeroV;
            for (size_t c = 0; c < sv.size(); ++c) {
              Value p = emitExp(b, loc, arith::SubFOp::create(b, loc, sv[c], mb));
              vector::StoreOp::create(b, loc, p, S, ValueRange{rIdx[r], cIdx(b, loc, c * L)});
              sum = arith::AddFOp::create(b, loc, sum, p, kFM);
            }
            Value ls = vector::ReductionOp::create(b, loc, vector::CombiningKind::ADD, sum, kFM);
            lNew[r] = arith::AddFOp::create(
                b, loc, arith::MulFOp::create(b, loc, it[R + r], corr[r], kFM), ls, kFM);
          }
          // acc = acc * corr + p V, in chunks of U vectors of hd.
          int64_t U = hd % (2 * L) == 0 ? 2 : 1;
          scf::ForOp::create(
              b, loc, cIdx(b, loc, 0), cIdx(b, loc, hd), cIdx(b, loc, U * L), ValueRange{},
              [&](OpBuilder &b, Location loc, Value dc, ValueRange) {
                SmallVector<Value> dIdx;
                for (int64_t u = 0; u < U; ++u)
                  dIdx.push_back(u == 0 ? dc
                                        : arith::AddIOp::create(b, loc, dc, cIdx(b, loc, u * L))
                                              .getResult());
                SmallVector<Value> a;
                for (int64_t r = 0; r < R; ++r) {
                  Value cb = vector::BroadcastOp::create(b, loc, v, corr[r]);
                  for (int64_t u = 0; u < U; ++u)
                    a.push_back(arith::MulFOp::create(
                        b, loc, vector::LoadOp::create(b, loc, v, Acc, ValueRange{rIdx[r], dIdx[u]}),
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
                        vv.push_back(vector::LoadOp::create(b, loc, v, vm, vi));
                      }
                      SmallVector<Value> next;
                      for (int64_t r = 0; r < R; ++r) {
                        Value ps = memref::LoadOp::create(b, loc, S, ValueRange{rIdx[r], jj});
                        Value pb = vector::BroadcastOp::create(b, loc, v, ps);
                        for (int64_t u = 0; u < U; ++u)
                          next.push_back(vector::FMAOp::create(b, loc, pb, vv[u], acc[r * U + u]));
                      }
                      scf::YieldOp::create(b, loc, next);
                    });
                for (int64_t r = 0; r < R; ++r)
                  for (int64_t u = 0; u < U; ++u)
                    vector::StoreOp::create(b, loc, pv.getResult(r * U + u), Acc,
                                            ValueRange{rIdx[r], dIdx[u]});
                scf::YieldOp::create(b, loc);
              });
          SmallVector<Value> next(mNew);
          next.append(lNew);
          scf::YieldOp::create(b, loc, next);
        });
    // out = acc / l
    Value one = splatF(b, loc, f32, 1.0f);
    for (int64_t r = 0; r < R; ++r) {
      Value inv = arith::DivFOp::create(b, loc, one, blockLoop.getResult(R + r));
      Value ib = vector::BroadcastOp::create(b, loc, v, inv);
      for (int64_t d = 0; d < hd; d += L) {
        Value cd = cIdx(b, loc, d);
        Value a = vector::LoadOp::create(b, loc, v, Acc, ValueRange{rIdx[r], cd});
        vector::StoreOp::create(b, loc, arith::MulFOp::create(b, loc, a, ib), O,
                                ValueRange{bI, t[r], h[r], cd});
      }
    }
  }
};

/// A read-only view of a rank-4 tensor as a memref with unit innermost stride.
Value readOnlyBuffer(OpBuilder &b, Location loc, Value t) {
  auto tt = cast<RankedTensorType>(t.getType());
  SmallVector<int64_t> strides(tt.getRank(), ShapedType::kDynamic);
  strides.back() = 1;
  auto layout = StridedLayoutAttr::get(b.getContext(), ShapedType::kDynamic, strides);
  auto mt = MemRefType::get(tt.getShape(), tt.getElementType(), layout);
  return bufferization::ToBufferOp::create(b, loc, mt, t, /*read_only=*/true);
}

/// The result buffer [B, N, H, hd] shaped like q, and the kernel's common fields.
AttentionKernel makeKernel(OpBuilder &b, Location loc, Value q, int64_t Hkv, int64_t L,
                           double scale) {
  auto qt = cast<RankedTensorType>(q.getType());
  AttentionKernel k;
  k.H = qt.getDimSize(2);
  k.hd = qt.getDimSize(3);
  k.Hkv = Hkv;
  k.G = k.H / Hkv;
  k.L = L;
  k.scale = static_cast<float>(scale);
  k.B = tensor::DimOp::create(b, loc, q, 0);
  k.N = tensor::DimOp::create(b, loc, q, 1);
  k.Q = readOnlyBuffer(b, loc, q);
  auto outT = MemRefType::get(qt.getShape(), b.getF32Type());
  SmallVector<Value> dyn;
  if (outT.isDynamicDim(0)) dyn.push_back(k.B);
  if (outT.isDynamicDim(1)) dyn.push_back(k.N);
  k.O = memref::AllocOp::create(b, loc, outT, dyn);
  return k;
}

Value finish(OpBuilder &b, Location loc, AttentionKernel &k) {
  auto mt = cast<MemRefType>(k.O.getType());
  auto tt = RankedTensorType::get(mt.getShape(), mt.getElementType());
  return bufferization::ToTensorOp::create(b, loc, tt, k.O, /*restrict=*/true, /*writable=*/true)
      .getResult();
}

bool supported(RankedTensorType qt, int64_t Hkv) {
  if (!qt || qt.getRank() != 4 || !qt.getElementType().isF32()) return false;
  int64_t H = qt.getDimSize(2), hd = qt.getDimSize(3);
  if (ShapedType::isDynamic(H) || ShapedType::isDynamic(hd) || Hkv <= 0 ||
      ShapedType::isDynamic(Hkv) || H % Hkv != 0)
    return false;
  return mlir::photon::attentionLanes(hd) != 0;
}

} // namespace

int64_t mlir::photon::attentionLanes(int64_t hd) {
  if (hd > 0 && hd % 8 == 0) return 8;
  if (hd > 0 && hd % 4 == 0) return 4;
  return 0;
}

FailureOr<Value> mlir::photon::emitFusedCausalAttention(OpBuilder &b, Location loc, Value q,
                                                        Value k, Value v, double scale,
                                                        RankedTensorType resultType) {
  auto qt = dyn_cast<RankedTensorType>(q.getType());
  auto kt = dyn_cast<RankedTensorType>(k.getType());
  auto vt = dyn_cast<RankedTensorType>(v.getType());
  if (!qt || !kt || !vt || kt.getRank() != 4 || vt.getRank() != 4 ||
      !kt.getElementType().isF32() || !vt.getElementType().isF32())
    return failure();
  int64_t Hkv = kt.getDimSize(2);
  if (!supported(qt, Hkv) || kt.getDimSize(3) != qt.getDimSize(3) || vt.getDimSize(2) != Hkv ||
      vt.getDimSize(3) != qt.getDimSize(3) || resultType.getShape() != qt.getShape())
    return failure();
  AttentionKernel ker = makeKernel(b, loc, q, Hkv, attentionLanes(qt.getDimSize(3)), scale);
  Value K = readOnlyBuffer(b, loc, k), V = readOnlyBuffer(b, loc, v);
  ker.keys.block = kKeyBlock;
  ker.keys.base = [](OpBuilder &b, Location loc, Value) { return cIdx(b, loc, 0); };
  ker.keys.blockSetup = [](OpBuilder &, Location, Value, Value) { return SmallVector<Value>{}; };
  ker.keys.row = [K, V](OpBuilder &b, Location loc, int which, Value bI, Value kh, Value j0,
                        Value jj, ArrayRef<Value>) {
    Value j = arith::AddIOp::create(b, loc, j0, jj);
    return std::make_pair(which == 0 ? K : V, SmallVector<Value>{bI, j, kh});
  };
  ker.emit(b, loc);
  return finish(b, loc, ker);
}

FailureOr<Value> mlir::photon::emitFusedCachedAttention(OpBuilder &b, Location loc,
                                                        const PagedCache &c, Value q,
                                                        int64_t layer, double scale) {
  auto qt = dyn_cast<RankedTensorType>(q.getType());
  auto pt = dyn_cast<MemRefType>(c.pool.getType());
  if (!qt || !pt || pt.getRank() != 6 || !pt.getElementType().isF32() || c.blockSize <= 0)
    return failure();
  int64_t Hkv = pt.getDimSize(4);
  if (!supported(qt, Hkv) || pt.getDimSize(5) != qt.getDimSize(3)) return failure();
  // vector.load needs a unit innermost stride.
  if (!pt.isLastDimUnitStride()) return failure();
  AttentionKernel ker = makeKernel(b, loc, q, Hkv, attentionLanes(qt.getDimSize(3)), scale);
  Value pool = c.pool, table = c.table, lens = c.lens;
  int64_t bs = c.blockSize;
  Value cLayer = cIdx(b, loc, layer);
  ker.keys.block = bs;
  ker.keys.base = [lens](OpBuilder &b, Location loc, Value bI) {
    Value len = memref::LoadOp::create(b, loc, lens, ValueRange{bI});
    return arith::IndexCastOp::create(b, loc, b.getIndexType(), len).getResult();
  };
  ker.keys.blockSetup = [table, bs](OpBuilder &b, Location loc, Value bI, Value j0) {
    Value bi = arith::DivUIOp::create(b, loc, j0, cIdx(b, loc, bs));
    Value blk = memref::LoadOp::create(b, loc, table, ValueRange{bI, bi});
    return SmallVector<Value>{arith::IndexCastOp::create(b, loc, b.getIndexType(), blk)};
  };
  ker.keys.row = [pool, cLayer](OpBuilder &b, Location loc, int which, Value, Value kh, Value,
                                Value jj, ArrayRef<Value> blk) {
    return std::make_pair(pool, SmallVector<Value>{blk[0], cLayer, cIdx(b, loc, which), jj, kh});
  };
  ker.emit(b, loc);
  return finish(b, loc, ker);
}

LogicalResult mlir::photon::emitVectorKvAppend(OpBuilder &b, Location loc, const PagedCache &c,
                                               Value k, Value v, int64_t layer) {
  auto kt = dyn_cast<RankedTensorType>(k.getType());
  auto vt = dyn_cast<RankedTensorType>(v.getType());
  auto pt = dyn_cast<MemRefType>(c.pool.getType());
  if (!kt || !vt || !pt || kt.getRank() != 4 || kt != vt || pt.getRank() != 6 ||
      !kt.getElementType().isF32() || !pt.getElementType().isF32() || !pt.isLastDimUnitStride())
    return failure();
  int64_t Hkv = kt.getDimSize(2), hd = kt.getDimSize(3);
  int64_t L = attentionLanes(hd);
  if (ShapedType::isDynamic(Hkv) || ShapedType::isDynamic(hd) || L == 0 ||
      pt.getDimSize(4) != Hkv || pt.getDimSize(5) != hd || c.blockSize <= 0)
    return failure();
  auto vec = VectorType::get({L}, b.getF32Type());
  Value K = readOnlyBuffer(b, loc, k), V = readOnlyBuffer(b, loc, v);
  Value B = tensor::DimOp::create(b, loc, k, 0), N = tensor::DimOp::create(b, loc, k, 1);
  Value c0 = cIdx(b, loc, 0), c1 = cIdx(b, loc, 1), cLayer = cIdx(b, loc, layer);
  Value bs = cIdx(b, loc, c.blockSize), cHkv = cIdx(b, loc, Hkv);
  scf::ForOp::create(b, loc, c0, B, c1, ValueRange{}, [&](OpBuilder &b, Location loc, Value bI,
                                                           ValueRange) {
    Value len = arith::IndexCastOp::create(
        b, loc, b.getIndexType(), memref::LoadOp::create(b, loc, c.lens, ValueRange{bI}));
    scf::ForOp::create(b, loc, c0, N, c1, ValueRange{}, [&](OpBuilder &b, Location loc, Value t,
                                                             ValueRange) {
      Value pos = arith::AddIOp::create(b, loc, len, t);
      Value blk = arith::IndexCastOp::create(
          b, loc, b.getIndexType(),
          memref::LoadOp::create(b, loc, c.table,
                                 ValueRange{bI, arith::DivUIOp::create(b, loc, pos, bs)}));
      Value off = arith::RemUIOp::create(b, loc, pos, bs);
      scf::ForOp::create(b, loc, c0, cHkv, c1, ValueRange{}, [&](OpBuilder &b, Location loc,
                                                                 Value kh, ValueRange) {
        for (int64_t d = 0; d < hd; d += L) {
          Value cd = cIdx(b, loc, d);
          for (int which = 0; which < 2; ++which) {
            Value x = vector::LoadOp::create(b, loc, vec, which == 0 ? K : V,
                                             ValueRange{bI, t, kh, cd});
            vector::StoreOp::create(b, loc, x, c.pool,
                                    ValueRange{blk, cLayer, cIdx(b, loc, which), off, kh, cd});
          }
        }
        scf::YieldOp::create(b, loc);
      });
      scf::YieldOp::create(b, loc);
    });
    scf::YieldOp::create(b, loc);
  });
  return success();
}
