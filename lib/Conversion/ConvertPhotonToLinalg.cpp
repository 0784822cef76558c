//===- ConvertPhotonToLinalg.cpp - photon ops to linalg/tensor/scf -------===//
//
// Lowers the photon ops of docs/ir-contract.md to upstream dialects on tensors, reading
// each op through its generated accessors. See Passes.td for the op-by-op description.
//
//===----------------------------------------------------------------------===//

#include "AttentionKernels.h"
#include "photon/Dialect/PhotonOps.h"
#include "photon/Transforms/Passes.h"
#include "photon/weights_format.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Utils/StructuredOpsUtils.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cmath>

namespace mlir {
namespace photon {
#define GEN_PASS_DEF_CONVERTPHOTONTOLINALG
#include "photon/Transforms/Passes.h.inc"
} // namespace photon
} // namespace mlir

using namespace mlir;
using namespace mlir::photon;

namespace {

using IT = utils::IteratorType;

/// Contractions may be reassociated (vectorized reductions) and fused into FMAs; the
/// result stays within the 1e-4 relative error the end-to-end tests bound.
constexpr arith::FastMathFlags kFM = arith::FastMathFlags::reassoc | arith::FastMathFlags::contract;

//===----------------------------------------------------------------------===//
// Small builders
//===----------------------------------------------------------------------===//

struct Lowering {
  OpBuilder &b;
  Location loc;

  Value cIdx(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }
  Value cF32(double v) {
    return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(static_cast<float>(v)));
  }
  OpFoldResult dim(Value t, int64_t i) { return tensor::getMixedSize(b, loc, t, i); }
  Value dimV(Value t, int64_t i) {
    return getValueOrCreateConstantIndexOp(b, loc, dim(t, i));
  }
  RankedTensorType rtt(Value v) { return cast<RankedTensorType>(v.getType()); }

  /// tensor.empty of `shape` (static entries from `type`, dynamic ones from `sizes`).
  Value empty(ArrayRef<OpFoldResult> sizes, Type elt) {
    return tensor::EmptyOp::create(b, loc, sizes, elt);
  }
  Value fill(Value init, double v) {
    Value c = cF32(v);
    return linalg::FillOp::create(b, loc, c, init).getResult(0);
  }
  AffineMap idMap(unsigned n) { return b.getMultiDimIdentityMap(n); }
  AffineMap map(unsigned n, ArrayRef<unsigned> dims) {
    SmallVector<AffineExpr> e;
    for (unsigned d : dims) e.push_back(b.getAffineDimExpr(d));
    return AffineMap::get(n, 0, e, b.getContext());
  }
  SmallVector<IT> iters(unsigned n, ArrayRef<unsigned> reductions = {}) {
    SmallVector<IT> it(n, IT::parallel);
    for (unsigned r : reductions) it[r] = IT::reduction;
    return it;
  }
  Value generic(Value init, ValueRange ins, ArrayRef<AffineMap> maps, ArrayRef<IT> its,
                function_ref<void(OpBuilder &, Location, ValueRange)> body) {
    auto g = linalg::GenericOp::create(b, loc, TypeRange{init.getType()}, ins, ValueRange{init},
                                       maps, its, body);
    return g.getResult(0);
  }

  /// [d0, ..., dn-2, K] -> [d0*...*dn-2, K]
  Value collapseTo2D(Value x) {
    int64_t r = rtt(x).getRank();
    if (r == 2) return x;
    if (r == 1) {
      auto t = RankedTensorType::get({1, rtt(x).getDimSize(0)}, rtt(x).getElementType());
      return tensor::ExpandShapeOp::create(b, loc, t, x, ArrayRef<ReassociationIndices>{{0, 1}},
                                           ArrayRef<OpFoldResult>{b.getIndexAttr(1), dim(x, 0)});
    }
    ReassociationIndices lead;
    for (int64_t i = 0; i < r - 1; ++i) lead.push_back(i);
    return tensor::CollapseShapeOp::create(b, loc, x,
                                           ArrayRef<ReassociationIndices>{lead, {r - 1}});
  }
  /// Inverse of collapseTo2D: y [M, N] back to like's leading dims + [N].
  Value expandFrom2D(Value y, Value like, RankedTensorType resultType) {
    int64_t r = resultType.getRank();
    if (r == 2) return y;
    SmallVector<OpFoldResult> shape;
    if (r == 1) {
      return tensor::CollapseShapeOp::create(b, loc, resultType, y,
                                             ArrayRef<ReassociationIndices>{{0, 1}});
    }
    for (int64_t i = 0; i < r - 1; ++i) shape.push_back(dim(like, i));
    shape.push_back(dim(y, 1));
    ReassociationIndices lead;
    for (int64_t i = 0; i < r - 1; ++i) lead.push_back(i);
    return tensor::ExpandShapeOp::create(b, loc, resultType, y,
                                         ArrayRef<ReassociationIndices>{lead, {r - 1}}, shape);
  }
  RankedTensorType with2D(RankedTensorType like, int64_t n) {
    return RankedTensorType::get({ShapedType::kDynamic, n}, like.getElementType());
  }

  //===--------------------------------------------------------------------===//
  // Op lowerings (x [M, K] forms)
  //===--------------------------------------------------------------------===//

  /// y[m, n] = sum_k x[m, k] * w[n, k] (+ bias[n])
  Value matmulT(Value x2, Value w, Value bias) {
    int64_t n = rtt(w).getDimSize(0);
    Value init = empty({dim(x2, 0), dim(w, 0)}, b.getF32Type());
    if (bias) {
      init = generic(init, ValueRange{bias}, {map(2, {1}), idMap(2)}, iters(2),
                     [](OpBuilder &nb, Location l, ValueRange a) {
                       linalg::YieldOp::create(nb, l, a[0]);
                     });
    } else {
      init = fill(init, 0.0);
    }
    (void)n;
    return generic(init, ValueRange{x2, w}, {map(3, {0, 2}), map(3, {1, 2}), map(3, {0, 1})},
                   iters(3, {2}), [](OpBuilder &nb, Location l, ValueRange a) {
                     Value p = arith::MulFOp::create(nb, l, a[0], a[1], kFM);
                     Value s = arith::AddFOp::create(nb, l, a[2], p, kFM);
                     linalg::YieldOp::create(nb, l, s);
                   });
  }

  Value linear(Value x, Value w, Value bias, RankedTensorType resultType) {
    Value y = matmulT(collapseTo2D(x), w, bias);
    return expandFrom2D(y, x, resultType);
  }

  /// x * rsqrt(mean(x^2) + eps) * w over the last dim.
  Value rmsNorm(Value x, Value w, double eps, RankedTensorType resultType) {
    Value x2 = collapseTo2D(x);
    int64_t d = rtt(x2).getDimSize(1);
    Value ss = fill(empty({dim(x2, 0)}, b.getF32Type()), 0.0);
    ss = generic(ss, ValueRange{x2}, {idMap(2), map(2, {0})}, iters(2, {1}),
                 [](OpBuilder &nb, Location l, ValueRange a) {
                   Value p = arith::MulFOp::create(nb, l, a[0], a[0], kFM);
                   linalg::YieldOp::create(nb, l, ValueRange{arith::AddFOp::create(nb, l, a[1], p, kFM)});
                 });
    Value init = empty({dim(x2, 0), dim(x2, 1)}, b.getF32Type());
    float invD = 1.0f / static_cast<float>(d);
    float epsF = static_cast<float>(eps);
    Value y = generic(init, ValueRange{x2, ss, w}, {idMap(2), map(2, {0}), map(2, {1}), idMap(2)},
                      iters(2), [&](OpBuilder &nb, Location l, ValueRange a) {
                        Value cInv = arith::ConstantOp::create(nb, l, nb.getF32FloatAttr(invD));
                        Value cEps = arith::ConstantOp::create(nb, l, nb.getF32FloatAttr(epsF));
                        Value mean = arith::MulFOp::create(nb, l, a[1], cInv);
                        Value r = math::RsqrtOp::create(nb, l, arith::AddFOp::create(nb, l, mean, cEps));
                        Value v = arith::MulFOp::create(nb, l, arith::MulFOp::create(nb, l, a[0], r), a[2]);
                        linalg::YieldOp::create(nb, l, v);
                      });
    return expandFrom2D(y, x, resultType);
  }

  Value embedding(Value table, Value ids, RankedTensorType resultType) {
    int64_t r = resultType.getRank();
    SmallVector<OpFoldResult> sizes;
    for (int64_t i = 0; i < r - 1; ++i) sizes.push_back(dim(ids, i));
    sizes.push_back(dim(table, 1));
    Value init = empty(sizes, resultType.getElementType());
    SmallVector<unsigned> idDims;
    for (int64_t i = 0; i < r - 1; ++i) idDims.push_back(i);
    Value y = generic(init, ValueRange{ids}, {map(r, idDims), idMap(r)}, iters(r),
                      [&](OpBuilder &nb, Location l, ValueRange a) {
                        Value id = arith::IndexCastOp::create(nb, l, nb.getIndexType(), a[0]);
                        Value e = linalg::IndexOp::create(nb, l, r - 1);
                        Value v = tensor::ExtractOp::create(nb, l, table, ValueRange{id, e});
                        linalg::YieldOp::create(nb, l, v);
                      });
    return y;
  }

  /// Rotate-half RoPE over x [B, M, H, hd]; position = offsets[b] + m.
  Value rope(Value x, Value offsets, double theta) {
    auto t = rtt(x);
    int64_t hd = t.getDimSize(3);
    int64_t half = hd / 2;
    SmallVector<OpFoldResult> sizes;
    for (int i = 0; i < 4; ++i) sizes.push_back(dim(x, i));
    Value init = empty(sizes, t.getElementType());
    SmallVector<Value> ins;
    SmallVector<AffineMap> maps;
    if (offsets) {
      ins.push_back(offsets);
      maps.push_back(map(4, {0}));
    }
    maps.push_back(idMap(4));
    float lnTheta = static_cast<float>(std::log(theta));
    return generic(init, ins, maps, iters(4), [&](OpBuilder &nb, Location l, ValueRange a) {
      Value bI = linalg::IndexOp::create(nb, l, 0);
      Value mI = linalg::IndexOp::create(nb, l, 1);
      Value hI = linalg::IndexOp::create(nb, l, 2);
      Value iI = linalg::IndexOp::create(nb, l, 3);
      Value cHalf = arith::ConstantIndexOp::create(nb, l, half);
      Value lower = arith::CmpIOp::create(nb, l, arith::CmpIPredicate::ult, iI, cHalf);
      Value j = arith::RemUIOp::create(nb, l, iI, cHalf);
      Value partnerLo = arith::AddIOp::create(nb, l, iI, cHalf);
      Value partnerHi = arith::SubIOp::create(nb, l, iI, cHalf);
      Value partner = arith::SelectOp::create(nb, l, lower, partnerLo, partnerHi);
      Value pos = arith::IndexCastOp::create(nb, l, nb.getI64Type(), mI);
      if (offsets) {
        Value off = a[0];
        if (off.getType() != nb.getI64Type())
          off = arith::ExtSIOp::create(nb, l, nb.getI64Type(), off);
        pos = arith::AddIOp::create(nb, l, pos, off);
      }
      Value posF = arith::SIToFPOp::create(nb, l, nb.getF32Type(), pos);
      // freq = theta^(-2j/hd) = exp(-(2j/hd) * ln theta)
      Value jF = arith::SIToFPOp::create(
          nb, l, nb.getF32Type(), arith::IndexCastOp::create(nb, l, nb.getI64Type(), j));
      Value k = arith::ConstantOp::create(nb, l, nb.getF32FloatAttr(-2.0f * lnTheta / hd));
      Value freq = math::ExpOp::create(nb, l, arith::MulFOp::create(nb, l, jF, k));
      Value ang = arith::MulFOp::create(nb, l, posF, freq);
      Value c = math::CosOp::create(nb, l, ang);
      Value s = math::SinOp::create(nb, l, ang);
      Value xi = tensor::ExtractOp::create(nb, l, x, ValueRange{bI, mI, hI, iI});
      Value xp = tensor::ExtractOp::create(nb, l, x, ValueRange{bI, mI, hI, partner});
      Value xc = arith::MulFOp::create(nb, l, xi, c);
      Value ps = arith::MulFOp::create(nb, l, xp, s);
      Value lo = arith::SubFOp::create(nb, l, xc, ps);
      Value hi = arith::AddFOp::create(nb, l, xc, ps);
      linalg::YieldOp::create(nb, l, ValueRange{arith::SelectOp::create(nb, l, lower, lo, hi)});
    });
  }

  /// Causal attention per batch row: q [B, M, H, hd], k/v [B, M, Hkv, hd].
  Value causalAttention(Value q, Value k, Value v, double scale, RankedTensorType resultType) {
    auto qt = rtt(q), kt = rtt(k);
    int64_t H = qt.getDimSize(2), hd = qt.getDimSize(3), Hkv = kt.getDimSize(2);
    int64_t G = H / Hkv;
    Type f32 = b.getF32Type();
    // q5 [B, M, Hkv, G, hd]
    auto q5t = RankedTensorType::get({qt.getDimSize(0), qt.getDimSize(1), Hkv, G, hd}, f32);
    Value q5 = tensor::ExpandShapeOp::create(
        b, loc, q5t, q, ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3}, {4}},
        ArrayRef<OpFoldResult>{dim(q, 0), dim(q, 1), b.getIndexAttr(Hkv), b.getIndexAttr(G),
                               b.getIndexAttr(hd)});
    OpFoldResult B = dim(q, 0), M = dim(q, 1);
    // dims of the score space: (b, kh, g, i, j) [+ d]
    Value s = fill(empty({B, b.getIndexAttr(Hkv), b.getIndexAttr(G), M, M}, f32), 0.0);
    float sc = static_cast<float>(scale);
    s = generic(s, ValueRange{q5, k},
                {map(6, {0, 3, 1, 2, 5}), map(6, {0, 4, 1, 5}), map(6, {0, 1, 2, 3, 4})},
                iters(6, {5}), [](OpBuilder &nb, Location l, ValueRange a) {
                  Value p = arith::MulFOp::create(nb, l, a[0], a[1], kFM);
                  linalg::YieldOp::create(nb, l, ValueRange{arith::AddFOp::create(nb, l, a[2], p, kFM)});
                });
    // row max over allowed j <= i
    Value mx = fill(empty({B, b.getIndexAttr(Hkv), b.getIndexAttr(G), M}, f32),
                    -std::numeric_limits<float>::infinity());
    mx = generic(mx, ValueRange{s}, {idMap(5), map(5, {0, 1, 2, 3})}, iters(5, {4}),
                 [&](OpBuilder &nb, Location l, ValueRange a) {
                   Value i = linalg::IndexOp::create(nb, l, 3);
                   Value j = linalg::IndexOp::create(nb, l, 4);
                   Value ok = arith::CmpIOp::create(nb, l, arith::CmpIPredicate::ule, j, i);
                   Value cs = arith::ConstantOp::create(nb, l, nb.getF32FloatAttr(sc));
                   Value sv = arith::MulFOp::create(nb, l, a[0], cs);
                   Value m = arith::MaximumFOp::create(nb, l, a[1], sv);
                   linalg::YieldOp::create(nb, l, ValueRange{arith::SelectOp::create(nb, l, ok, m, a[1])});
                 });
    // p = exp(scale*s - max) masked; rows summed
    Value p = empty({B, b.getIndexAttr(Hkv), b.getIndexAttr(G), M, M}, f32);
    p = generic(p, ValueRange{s, mx}, {idMap(5), map(5, {0, 1, 2, 3}), idMap(5)}, iters(5),
                [&](OpBuilder &nb, Location l, ValueRange a) {
                  Value i = linalg::IndexOp::create(nb, l, 3);
                  Value j = linalg::IndexOp::create(nb, l, 4);
                  Value ok = arith::CmpIOp::create(nb, l, arith::CmpIPredicate::ule, j, i);
                  Value cs = arith::ConstantOp::create(nb, l, nb.getF32FloatAttr(sc));
                  Value sv = arith::MulFOp::create(nb, l, a[0], cs);
                  Value e = math::ExpOp::create(nb, l, arith::SubFOp::create(nb, l, sv, a[1]));
                  Value z = arith::ConstantOp::create(nb, l, nb.getF32FloatAttr(0.0f));
                  linalg::YieldOp::create(nb, l, ValueRange{arith::SelectOp::create(nb, l, ok, e, z)});
                });
    Value sum = fill(empty({B, b.getIndexAttr(Hkv), b.getIndexAttr(G), M}, f32), 0.0);
    sum = generic(sum, ValueRange{p}, {idMap(5), map(5, {0, 1, 2, 3})}, iters(5, {4}),
                  [](OpBuilder &nb, Location l, ValueRange a) {
                    linalg::YieldOp::create(nb, l, ValueRange{arith::AddFOp::create(nb, l, a[1], a[0])});
                  });
    // o5[b, i, kh, g, d] = sum_j p[b, kh, g, i, j] * v[b, j, kh, d] / sum
    Value o = fill(empty({B, M, b.getIndexAttr(Hkv), b.getIndexAttr(G), b.getIndexAttr(hd)}, f32), 0.0);
    // dims (b, i, kh, g, d, j)
    o = generic(o, ValueRange{p, v},
                {map(6, {0, 2, 3, 1, 5}), map(6, {0, 5, 2, 4}), map(6, {0, 1, 2, 3, 4})},
                iters(6, {5}), [](OpBuilder &nb, Location l, ValueRange a) {
                  Value pv = arith::MulFOp::create(nb, l, a[0], a[1], kFM);
                  linalg::YieldOp::create(nb, l, ValueRange{arith::AddFOp::create(nb, l, a[2], pv, kFM)});
                });
    Value on = empty({B, M, b.getIndexAttr(Hkv), b.getIndexAttr(G), b.getIndexAttr(hd)}, f32);
    on = generic(on, ValueRange{o, sum}, {idMap(5), map(5, {0, 2, 3, 1}), idMap(5)}, iters(5),
                 [](OpBuilder &nb, Location l, ValueRange a) {
                   linalg::YieldOp::create(nb, l, ValueRange{arith::DivFOp::create(nb, l, a[0], a[1])});
                 });
    return tensor::CollapseShapeOp::create(b, loc, resultType, on,
                                           ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3}, {4}});
  }

  Value swiglu(Value x, Value wg, Value wu, Value wd, RankedTensorType resultType) {
    Value x2 = collapseTo2D(x);
    Value g = matmulT(x2, wg, nullptr);
    Value u = matmulT(x2, wu, nullptr);
    Value h = empty({dim(g, 0), dim(g, 1)}, b.getF32Type());
    h = generic(h, ValueRange{g, u}, {idMap(2), idMap(2), idMap(2)}, iters(2),
                [](OpBuilder &nb, Location l, ValueRange a) {
                  // silu(g) * u = g / (1 + exp(-g)) * u
                  Value one = arith::ConstantOp::create(nb, l, nb.getF32FloatAttr(1.0f));
                  Value ng = arith::NegFOp::create(nb, l, a[0]);
                  Value den = arith::AddFOp::create(nb, l, one, math::ExpOp::create(nb, l, ng));
                  Value si = arith::DivFOp::create(nb, l, a[0], den);
                  linalg::YieldOp::create(nb, l, ValueRange{arith::MulFOp::create(nb, l, si, a[1])});
                });
    Value y = matmulT(h, wd, nullptr);
    return expandFrom2D(y, x, resultType);
  }

  /// [B, M, d] -> [B, M/size, size*d]
  Value chunk(Value x, int64_t size) {
    auto t = rtt(x);
    int64_t d = t.getDimSize(2);
    int64_t M = t.getDimSize(1);
    int64_t Mo = ShapedType::isDynamic(M) ? ShapedType::kDynamic : M / size;
    auto t4 = RankedTensorType::get({t.getDimSize(0), Mo, size, d}, t.getElementType());
    OpFoldResult mo;
    if (ShapedType::isDynamic(M)) {
      Value mv = dimV(x, 1);
      mo = arith::DivUIOp::create(b, loc, mv, cIdx(size)).getResult();
    } else {
      mo = b.getIndexAttr(Mo);
    }
    Value x4 = tensor::ExpandShapeOp::create(
        b, loc, t4, x, ArrayRef<ReassociationIndices>{{0}, {1, 2}, {3}},
        ArrayRef<OpFoldResult>{dim(x, 0), mo, b.getIndexAttr(size), b.getIndexAttr(d)});
    return tensor::CollapseShapeOp::create(b, loc, x4,
                                           ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3}});
  }

  /// out[b, m, :] = m == 0 ? start : x[b, m-1, :]
  Value shift(Value x, Value start) {
    auto t = rtt(x);
    Value init = empty({dim(x, 0), dim(x, 1), dim(x, 2)}, t.getElementType());
    return generic(init, ValueRange{}, {idMap(3)}, iters(3),
                   [&](OpBuilder &nb, Location l, ValueRange) {
                     Value bI = linalg::IndexOp::create(nb, l, 0);
                     Value mI = linalg::IndexOp::create(nb, l, 1);
                     Value dI = linalg::IndexOp::create(nb, l, 2);
                     Value zero = arith::ConstantIndexOp::create(nb, l, 0);
                     Value one = arith::ConstantIndexOp::create(nb, l, 1);
                     Value first = arith::CmpIOp::create(nb, l, arith::CmpIPredicate::eq, mI, zero);
                     Value prev = arith::SelectOp::create(nb, l, first, zero,
                                                          arith::SubIOp::create(nb, l, mI, one));
                     Value xv = tensor::ExtractOp::create(nb, l, x, ValueRange{bI, prev, dI});
                     Value sv = tensor::ExtractOp::create(nb, l, start, ValueRange{dI});
                     linalg::YieldOp::create(nb, l, ValueRange{arith::SelectOp::create(nb, l, first, sv, xv)});
                   });
  }
};

//===----------------------------------------------------------------------===//
// Cache ops (memref loops over the block pool)
//===----------------------------------------------------------------------===//

struct CacheOperands {
  Value pool, table, lens;
  int64_t blockSize = 0;
};

FailureOr<CacheOperands> getCache(Operation *user, Value cache) {
  auto bind = cache.getDefiningOp<CacheBindOp>();
  if (!bind)
    return user->emitOpError("expects its cache operand to come from photon.cache_bind "
                             "(pool, table, lens); bind the cache in the same function"),
           failure();
  CacheOperands c{bind.getPool(), bind.getTable(), bind.getLens()};
  auto pt = dyn_cast<MemRefType>(c.pool.getType());
  if (!pt || pt.getRank() != 6 || ShapedType::isDynamic(pt.getDimSize(3)))
    return user->emitOpError("expects the cache pool to be a memref "
                             "[NB, layers, 2, block_size, kv_heads, head_dim] with static "
                             "block_size, got ")
               << c.pool.getType(),
           failure();
  c.blockSize = pt.getDimSize(3);
  return c;
}

/// Emits nested scf.for loops 0..ubs and calls body with the induction variables.
void loopNest(OpBuilder &b, Location loc, ArrayRef<Value> ubs,
              function_ref<void(OpBuilder &, Location, ValueRange)> body) {
  SmallVector<Value> ivs;
  std::function<void(OpBuilder &, size_t)> rec = [&](OpBuilder &nb, size_t i) {
    if (i == ubs.size()) {
      body(nb, loc, ivs);
      return;
    }
    Value lb = arith::ConstantIndexOp::create(nb, loc, 0);
    Value st = arith::ConstantIndexOp::create(nb, loc, 1);
    scf::ForOp::create(nb, loc, lb, ubs[i], st, ValueRange{},
                       [&](OpBuilder &ib, Location, Value iv, ValueRange) {
                         ivs.push_back(iv);
                         rec(ib, i + 1);
                         ivs.pop_back();
                         scf::YieldOp::create(ib, loc);
                       });
  };
  rec(b, 0);
}

Value loadIndex(OpBuilder &b, Location loc, Value m, ValueRange idx) {
  Value v = memref::LoadOp::create(b, loc, m, idx);
  return arith::IndexCastOp::create(b, loc, b.getIndexType(), v);
}

LogicalResult lowerKvAppend(KvAppendOp op, OpBuilder &b, bool fused) {
  Location loc = op.getLoc();
  auto c = getCache(op, op.getCache());
  if (failed(c)) return failure();
  int64_t layerIndex = op.getLayer();
  Value k = op.getK(), v = op.getV();
  if (fused) {
    mlir::photon::PagedCache pc{c->pool, c->table, c->lens, c->blockSize};
    if (succeeded(mlir::photon::emitVectorKvAppend(b, loc, pc, k, v, layerIndex)))
      return success();
  }
  Lowering L{b, loc};
  Value layer = L.cIdx(layerIndex);
  Value bs = L.cIdx(c->blockSize);
  Value c0 = L.cIdx(0), c1 = L.cIdx(1);
  SmallVector<Value> ubs = {L.dimV(k, 0), L.dimV(k, 1), L.dimV(k, 2), L.dimV(k, 3)};
  loopNest(b, loc, ubs, [&](OpBuilder &nb, Location l, ValueRange iv) {
    Value len = loadIndex(nb, l, c->lens, ValueRange{iv[0]});
    Value pos = arith::AddIOp::create(nb, l, len, iv[1]);
    Value blkIdx = arith::DivUIOp::create(nb, l, pos, bs);
    Value off = arith::RemUIOp::create(nb, l, pos, bs);
    Value blk = loadIndex(nb, l, c->table, ValueRange{iv[0], blkIdx});
    Value kv = tensor::ExtractOp::create(nb, l, k, ValueRange{iv[0], iv[1], iv[2], iv[3]});
    Value vv = tensor::ExtractOp::create(nb, l, v, ValueRange{iv[0], iv[1], iv[2], iv[3]});
    memref::StoreOp::create(nb, l, kv, c->pool, ValueRange{blk, layer, c0, off, iv[2], iv[3]});
    memref::StoreOp::create(nb, l, vv, c->pool, ValueRange{blk, layer, c1, off, iv[2], iv[3]});
  });
  return success();
}

/// Streaming (online-softmax) attention of q [B, n, H, hd] over cache positions
/// 0 .. lens[b] + t: the fused kernel of AttentionKernels.cpp when `fused` (and the shapes
/// allow it), else one scalar loop nest per query row and head.
FailureOr<Value> lowerCachedAttention(CachedAttentionOp op, OpBuilder &b, bool fused,
                                      int64_t parallelMinKeys) {
  Location loc = op.getLoc();
  auto c = getCache(op, op.getCache());
  if (failed(c)) return failure();
  int64_t layerIndex = op.getLayer();
  double scaleValue = op.getScaleAttr().getValueAsDouble();
  Value q = op.getQ();
  auto qt = cast<RankedTensorType>(q.getType());
  auto pt = cast<MemRefType>(c->pool.getType());
  int64_t H = qt.getDimSize(2), hd = qt.getDimSize(3), Hkv = pt.getDimSize(4);
  if (ShapedType::isDynamic(H) || ShapedType::isDynamic(hd) || Hkv <= 0 || H % Hkv != 0)
    return op.emitOpError("expects static heads divisible by the cache's kv heads (")
               << (ShapedType::isDynamic(H) ? std::string("?") : std::to_string(H)) << " vs "
               << Hkv << ")",
           failure();
  if (fused) {
    mlir::photon::PagedCache pc{c->pool, c->table, c->lens, c->blockSize};
    auto r = mlir::photon::emitFusedCachedAttention(b, loc, pc, q, layerIndex, scaleValue,
                                                    parallelMinKeys);
    if (succeeded(r)) return *r;
  }
  Lowering L{b, loc};
  Type f32 = b.getF32Type();
  Value B = L.dimV(q, 0), N = L.dimV(q, 1);
  auto outT = MemRefType::get({qt.getDimSize(0), qt.getDimSize(1), H, hd}, f32);
  SmallVector<Value> dyn;
  if (outT.isDynamicDim(0)) dyn.push_back(B);
  if (outT.isDynamicDim(1)) dyn.push_back(N);
  Value out = memref::AllocOp::create(b, loc, outT, dyn);
  Value acc = memref::AllocaOp::create(b, loc, MemRefType::get({hd}, f32));
  Value layer = L.cIdx(layerIndex);
  Value bs = L.cIdx(c->blockSize);
  Value c0 = L.cIdx(0), c1 = L.cIdx(1), cHd = L.cIdx(hd), cG = L.cIdx(H / Hkv);
  float scale = static_cast<float>(scaleValue);
  SmallVector<Value> ubs = {B, N, L.cIdx(H)};
  loopNest(b, loc, ubs, [&](OpBuilder &nb, Location l, ValueRange iv) {
    Value bI = iv[0], tI = iv[1], hI = iv[2];
    Value kh = arith::DivUIOp::create(nb, l, hI, cG);
    Value zero = arith::ConstantOp::create(nb, l, nb.getF32FloatAttr(0.0f));
    Value ninf = arith::ConstantOp::create(
        nb, l, nb.getF32FloatAttr(-std::numeric_limits<float>::infinity()));
    Value cs = arith::ConstantOp::create(nb, l, nb.getF32FloatAttr(scale));
    scf::ForOp::create(nb, l, c0, cHd, c1, ValueRange{},
                       [&](OpBuilder &ib, Location il, Value d, ValueRange) {
                         memref::StoreOp::create(ib, il, zero, acc, ValueRange{d});
                         scf::YieldOp::create(ib, il);
                       });
    Value len = loadIndex(nb, l, c->lens, ValueRange{bI});
    Value ub = arith::AddIOp::create(nb, l, arith::AddIOp::create(nb, l, len, tI), c1);
    auto loop = scf::ForOp::create(
        nb, l, c0, ub, c1, ValueRange{ninf, zero},
        [&](OpBuilder &ib, Location il, Value j, ValueRange it) {
          Value m = it[0], sum = it[1];
          Value blk = loadIndex(ib, il, c->table, ValueRange{bI, arith::DivUIOp::create(ib, il, j, bs)});
          Value off = arith::RemUIOp::create(ib, il, j, bs);
          auto dot = scf::ForOp::create(
              ib, il, c0, cHd, c1, ValueRange{zero},
              [&](OpBuilder &db, Location dl, Value d, ValueRange dit) {
                Value qv = tensor::ExtractOp::create(db, dl, q, ValueRange{bI, tI, hI, d});
                Value kv = memref::LoadOp::create(db, dl, c->pool, ValueRange{blk, layer, c0, off, kh, d});
                Value s = arith::AddFOp::create(db, dl, dit[0], arith::MulFOp::create(db, dl, qv, kv, kFM), kFM);
                scf::YieldOp::create(db, dl, ValueRange{s});
              });
          Value s = arith::MulFOp::create(ib, il, dot.getResult(0), cs);
          Value mNew = arith::MaximumFOp::create(ib, il, m, s);
          Value corr = math::ExpOp::create(ib, il, arith::SubFOp::create(ib, il, m, mNew));
          Value p = math::ExpOp::create(ib, il, arith::SubFOp::create(ib, il, s, mNew));
          Value sumNew = arith::AddFOp::create(ib, il, arith::MulFOp::create(ib, il, sum, corr), p);
          scf::ForOp::create(ib, il, c0, cHd, c1, ValueRange{},
                             [&](OpBuilder &db, Location dl, Value d, ValueRange) {
                               Value a = memref::LoadOp::create(db, dl, acc, ValueRange{d});
                               Value vv = memref::LoadOp::create(db, dl, c->pool, ValueRange{blk, layer, c1, off, kh, d});
                               Value na = arith::AddFOp::create(db, dl, arith::MulFOp::create(db, dl, a, corr),
                                                                arith::MulFOp::create(db, dl, p, vv));
                               memref::StoreOp::create(db, dl, na, acc, ValueRange{d});
                               scf::YieldOp::create(db, dl);
                             });
          scf::YieldOp::create(ib, il, ValueRange{mNew, sumNew});
        });
    Value total = loop.getResult(1);
    scf::ForOp::create(nb, l, c0, cHd, c1, ValueRange{},
                       [&](OpBuilder &ib, Location il, Value d, ValueRange) {
                         Value a = memref::LoadOp::create(ib, il, acc, ValueRange{d});
                         memref::StoreOp::create(ib, il, arith::DivFOp::create(ib, il, a, total), out,
                                                 ValueRange{bI, tI, hI, d});
                         scf::YieldOp::create(ib, il);
                       });
  });
  auto tt = RankedTensorType::get(outT.getShape(), f32);
  return bufferization::ToTensorOp::create(b, loc, tt, out, /*restrict=*/true, /*writable=*/true)
      .getResult();
}

//===----------------------------------------------------------------------===//
// The pass
//===----------------------------------------------------------------------===//

Type stripEncoding(Type t) {
  if (auto r = dyn_cast<RankedTensorType>(t))
    if (r.getEncoding()) return RankedTensorType::get(r.getShape(), r.getElementType());
  return t;
}

struct ConvertPhotonToLinalgPass
    : public mlir::photon::impl::ConvertPhotonToLinalgBase<ConvertPhotonToLinalgPass> {
  using Base::Base;

  llvm::StringMap<::photon::weights::TensorInfo> index;

  void getDependentDialects(DialectRegistry &registry) const override {
    Base::getDependentDialects(registry);
    registry.insert<vector::VectorDialect>(); // the fused attention kernels
  }

  LogicalResult loadIndex(ModuleOp m) {
    if (weightsFile.empty()) return success();
    auto buf = llvm::MemoryBuffer::getFile(weightsFile, /*IsText=*/false,
                                           /*RequiresNullTerminator=*/false);
    if (!buf)
      return m.emitError("cannot read weights blob '") << weightsFile << "': "
                                                        << buf.getError().message();
    std::vector<::photon::weights::TensorInfo> infos;
    std::string err;
    if (!::photon::weights::parseIndex((*buf)->getBufferStart(), (*buf)->getBufferSize(), infos,
                                     err))
      return m.emitError("weights blob '") << weightsFile << "': " << err;
    for (auto &t : infos) index[t.name] = t;
    return success();
  }

  FailureOr<Value> lowerWeight(WeightOp op, OpBuilder &b, Value blob) {
    StringRef name = op.getName();
    auto rt = dyn_cast<RankedTensorType>(stripEncoding(op.getType()));
    if (!rt || !rt.hasStaticShape())
      return op.emitOpError("must produce a statically shaped tensor"), failure();
    int64_t offset = -1;
    if (std::optional<uint64_t> off = op.getOffset()) offset = static_cast<int64_t>(*off);
    auto it = index.find(name);
    if (it != index.end()) {
      const auto &info = it->second;
      if (info.shape != std::vector<int64_t>(rt.getShape().begin(), rt.getShape().end()))
        return op.emitOpError("weight '") << name
                                           << "' has another shape in the weights blob ("
                                           << info.shape.size() << "-d) than in the IR ("
                                           << rt << "); re-import the model",
               failure();
      offset = static_cast<int64_t>(info.offset);
    } else if (offset < 0) {
      return op.emitOpError("weight '")
                 << name
                 << "' is not in the weights blob"
                 << (weightsFile.empty() ? " (no weights file given: pass --weights)" : "")
                 << "",
             failure();
    }
    Location loc = op.getLoc();
    Value off = arith::ConstantIndexOp::create(b, loc, offset);
    auto mt = MemRefType::get(rt.getShape(), rt.getElementType());
    Value view = memref::ViewOp::create(b, loc, mt, blob, off, ValueRange{});
    return bufferization::ToTensorOp::create(b, loc, rt, view, /*restrict=*/true,
                                             /*writable=*/false)
        .getResult();
  }

  LogicalResult lowerOp(Operation *op, OpBuilder &b, Value blob) {
    Location loc = op->getLoc();
    b.setInsertionPoint(op);
    Lowering L{b, loc};
    auto resT = [&](unsigned i = 0) {
      return cast<RankedTensorType>(stripEncoding(op->getResult(i).getType()));
    };
    Value r;
    if (auto w = dyn_cast<WeightOp>(op)) {
      auto v = lowerWeight(w, b, blob);
      if (failed(v)) return failure();
      r = *v;
    } else if (auto emb = dyn_cast<EmbeddingOp>(op)) {
      r = L.embedding(emb.getTable(), emb.getIds(), resT());
    } else if (auto norm = dyn_cast<RMSNormOp>(op)) {
      r = L.rmsNorm(norm.getX(), norm.getW(), norm.getEpsAttr().getValueAsDouble(), resT());
    } else if (auto linear = dyn_cast<LinearOp>(op)) {
      r = L.linear(linear.getX(), linear.getW(), linear.getB(), resT());
    } else if (auto head = dyn_cast<LMHeadOp>(op)) {
      r = L.linear(head.getX(), head.getW(), Value(), resT());
    } else if (auto rope = dyn_cast<RoPEOp>(op)) {
      r = L.rope(rope.getX(), rope.getOffsets(), rope.getThetaAttr().getValueAsDouble());
    } else if (isa<CausalAttentionOp, BoundedAttentionOp>(op)) {
      // Both attend causally; a bounded attention's windows are its batch rows.
      auto attention = [&](auto attn) {
        double scale = attn.getScaleAttr().getValueAsDouble();
        FailureOr<Value> fused = failure();
        if (fusedAttention)
          fused = mlir::photon::emitFusedCausalAttention(b, loc, attn.getQ(), attn.getK(),
                                                         attn.getV(), scale, resT());
        return succeeded(fused) ? *fused
                                : L.causalAttention(attn.getQ(), attn.getK(), attn.getV(),
                                                    scale, resT());
      };
      if (auto causal = dyn_cast<CausalAttentionOp>(op)) r = attention(causal);
      else r = attention(cast<BoundedAttentionOp>(op));
    } else if (auto mlp = dyn_cast<SwiGLUOp>(op)) {
      r = L.swiglu(mlp.getX(), mlp.getWGate(), mlp.getWUp(), mlp.getWDown(), resT());
    } else if (auto chunk = dyn_cast<ChunkOp>(op)) {
      r = L.chunk(chunk.getX(), chunk.getSize());
    } else if (auto cc = dyn_cast<ChunkCompressOp>(op)) {
      Value ch = L.chunk(cc.getX(), cc.getSize());
      Value n = L.rmsNorm(ch, cc.getNormW(), cc.getEpsAttr().getValueAsDouble(),
                          cast<RankedTensorType>(ch.getType()));
      r = L.linear(n, cc.getW(), cc.getB(), resT());
    } else if (auto expand = dyn_cast<ExpandOp>(op)) {
      int64_t R = expand.getR();
      auto xt = L.rtt(expand.getX());
      int64_t D = xt.getDimSize(2);
      auto linT = RankedTensorType::get({xt.getDimSize(0), xt.getDimSize(1), R * D},
                                        xt.getElementType());
      Value y = L.linear(expand.getX(), expand.getW(), expand.getB(), linT);
      r = tensor::ExpandShapeOp::create(
          b, loc, resT(), y, ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3}},
          ArrayRef<OpFoldResult>{L.dim(y, 0), L.dim(y, 1), b.getIndexAttr(R),
                                 b.getIndexAttr(D)});
    } else if (auto shift = dyn_cast<ShiftOp>(op)) {
      r = L.shift(shift.getX(), shift.getStart());
    } else if (auto append = dyn_cast<KvAppendOp>(op)) {
      if (failed(lowerKvAppend(append, b, fusedAttention))) return failure();
      op->erase();
      return success();
    } else if (auto cached = dyn_cast<CachedAttentionOp>(op)) {
      auto v = lowerCachedAttention(cached, b, fusedAttention, parallelDecodeMinKeys);
      if (failed(v)) return failure();
      r = *v;
    } else if (isa<CacheBindOp>(op)) {
      return success(); // erased once its users are lowered
    } else {
      return op->emitOpError("has no lowering in convert-photon-to-linalg (supported: the ops "
                             "of docs/ir-contract.md)");
    }
    if (r.getType() != op->getResult(0).getType())
      r = tensor::CastOp::create(b, loc, op->getResult(0).getType(), r);
    op->getResult(0).replaceAllUsesWith(r);
    op->erase();
    return success();
  }

  void runOnOperation() override {
    ModuleOp m = getOperation();
    MLIRContext *ctx = &getContext();
    if (failed(loadIndex(m))) return signalPassFailure();

    // 1. Drop tensor encodings everywhere.
    m.walk([&](Operation *op) {
      for (Value r : op->getResults()) r.setType(stripEncoding(r.getType()));
      for (Region &reg : op->getRegions())
        for (Block &blk : reg)
          for (BlockArgument a : blk.getArguments()) a.setType(stripEncoding(a.getType()));
      if (auto f = dyn_cast<func::FuncOp>(op)) {
        auto ft = f.getFunctionType();
        SmallVector<Type> in, out;
        for (Type t : ft.getInputs()) in.push_back(stripEncoding(t));
        for (Type t : ft.getResults()) out.push_back(stripEncoding(t));
        f.setFunctionType(FunctionType::get(ctx, in, out));
      }
    });

    // 2. The weights blob becomes argument 0 of every function with a body.
    auto blobT = MemRefType::get({ShapedType::kDynamic}, IntegerType::get(ctx, 8));
    PhotonDialect *dialect = getPhotonDialect(ctx);
    auto weightsArg = dialect->getWeightsArgAttrHelper();
    // The blob argument's attribute: photon.arg = "weights".
    NamedAttribute blobArgAttr(dialect->getArgAttrHelper().getName(),
                               StringAttr::get(ctx, "weights"));
    llvm::DenseMap<func::FuncOp, Value> blobOf;
    for (auto f : m.getOps<func::FuncOp>()) {
      if (f.isExternal()) continue;
      if (f->hasAttr(weightsArg.getName())) {
        blobOf[f] = f.getArgument(0);
        continue;
      }
      if (failed(f.insertArgument(0, blobT, DictionaryAttr::get(ctx, {blobArgAttr}), f.getLoc())))
        return signalPassFailure();
      weightsArg.setAttr(f, UnitAttr::get(ctx));
      blobOf[f] = f.getArgument(0);
    }
    WalkResult wr = m.walk([&](func::CallOp call) {
      auto callee = m.lookupSymbol<func::FuncOp>(call.getCallee());
      if (!callee || callee.isExternal() || !blobOf.count(callee)) return WalkResult::advance();
      auto caller = call->getParentOfType<func::FuncOp>();
      if (call.getNumOperands() == callee.getNumArguments()) return WalkResult::advance();
      SmallVector<Value> args{blobOf[caller]};
      args.append(call.getOperands().begin(), call.getOperands().end());
      call->setOperands(args);
      return WalkResult::advance();
    });
    (void)wr;

    // 3. Lower the photon ops, in program order, function by function.
    OpBuilder b(ctx);
    for (auto f : m.getOps<func::FuncOp>()) {
      if (f.isExternal()) continue;
      SmallVector<Operation *> ops;
      f.walk([&](Operation *op) {
        if (isa_and_nonnull<PhotonDialect>(op->getDialect())) ops.push_back(op);
      });
      for (Operation *op : ops)
        if (failed(lowerOp(op, b, blobOf[f]))) return signalPassFailure();
      // cache_bind ops are left by lowerOp: erase them now that their users are lowered.
      SmallVector<CacheBindOp> binds;
      f.walk([&](CacheBindOp op) { binds.push_back(op); });
      for (CacheBindOp op : binds) {
        if (!op->use_empty()) {
          op.emitOpError("result is still used after lowering (only kv_append and "
                         "cached_attention may use a cache)");
          return signalPassFailure();
        }
        op->erase();
      }
    }
  }
};

} // namespace
