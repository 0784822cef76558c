//===- TensorLowering.cpp - photon ops on tensors to linalg/tensor -------===//
//
// The `Lowering` builders (Lowering.h) of convert-photon-to-linalg for the photon ops on
// tensors: matmuls (x * W^T, with reduced-precision weights widened in the matmul's body),
// norms, embeddings, RoPE, attention without a cache, SwiGLU, GELU, chunk and shift, as
// linalg generics and tensor reshapes.
//
//===----------------------------------------------------------------------===//

#include "Lowering.h"

#include <cmath>
#include <limits>

namespace mlir {
namespace photon {
namespace conversion {

/// A q4 weight (docs/artifact.md, "Weight formats") from its byte `p` (i8), scale `d` (f16)
/// and k index `k`: (nibble - 8) * d, the high nibble for k mod 32 >= 16. photon-matmul-kernels
/// matches exactly this sequence (MatmulMatch.h, matchDequantMatmulT).
Value dequantQ4(OpBuilder &b, Location l, Value p, Value d, Value k) {
  auto cIdx = [&](int64_t v) { return arith::ConstantIndexOp::create(b, l, v); };
  auto cI8 = [&](int64_t v) { return arith::ConstantOp::create(b, l, b.getI8IntegerAttr(v)); };
  Value r = arith::RemUIOp::create(b, l, k, cIdx(32));
  Value hi = arith::CmpIOp::create(b, l, arith::CmpIPredicate::uge, r, cIdx(16));
  Value lo = arith::AndIOp::create(b, l, p, cI8(15));
  Value sh = arith::ShRUIOp::create(b, l, p, cI8(4));
  Value nib = arith::SelectOp::create(b, l, hi, sh, lo);
  Value q = arith::SubIOp::create(b, l, nib, cI8(8));
  Value qf = arith::SIToFPOp::create(b, l, b.getF32Type(), q);
  return arith::MulFOp::create(b, l, qf, arith::ExtFOp::create(b, l, b.getF32Type(), d));
}

/// [d0, ..., dn-2, K] -> [d0*...*dn-2, K]
Value Lowering::collapseTo2D(Value x) {
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
Value Lowering::expandFrom2D(Value y, Value like, RankedTensorType resultType) {
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

RankedTensorType Lowering::with2D(RankedTensorType like, int64_t n) {
  return RankedTensorType::get({ShapedType::kDynamic, n}, like.getElementType());
}

std::optional<Lowering::Dequant> Lowering::matchDequant(Value w) {
  auto g = w.getDefiningOp<linalg::GenericOp>();
  if (!g || g.getNumDpsInits() != 1 || g.getNumLoops() != 2 || !g.getDpsInits()[0].getDefiningOp<tensor::EmptyOp>())
    return std::nullopt;
  Block &body = g.getRegion().front();
  auto y = cast<linalg::YieldOp>(body.getTerminator());
  Value v = y.getOperand(0);
  unsigned nIn = g.getNumDpsInputs();
  auto isArgIn = [&](Value a, unsigned i) { return a == body.getArgument(i); };
  bool half = nIn == 1 && body.getOperations().size() == 2 && v.getDefiningOp<arith::ExtFOp>() &&
              isArgIn(v.getDefiningOp<arith::ExtFOp>().getIn(), 0);
  bool q8 = false;
  if (nIn == 2 && body.getOperations().size() == 4)
    if (auto m = v.getDefiningOp<arith::MulFOp>()) {
      auto q = m.getLhs().getDefiningOp<arith::SIToFPOp>();
      auto d = m.getRhs().getDefiningOp<arith::ExtFOp>();
      q8 = q && d && isArgIn(q.getIn(), 0) && isArgIn(d.getIn(), 1);
    }
  auto maps = g.getIndexingMapsArray();
  // q4: WeightOpLowering's generic, the packed bytes read through (n, k / 32 * 16 + k % 16)
  bool q4 = nIn == 2 && maps[0] != idMap(2) && g.getDpsInputs()[0].getDefiningOp<bufferization::ToTensorOp>() &&
            cast<RankedTensorType>(g.getDpsInputs()[0].getType()).getElementType().isInteger(8) &&
            v.getDefiningOp<arith::MulFOp>();
  if (!half && !q8 && !q4) return std::nullopt;
  if ((!q4 && maps[0] != idMap(2)) || maps.back() != idMap(2)) return std::nullopt;
  Dequant dq;
  dq.q4 = q4;
  // (n, k) -> (m, n, k): d0 -> d1, d1 -> d2
  AffineMap shift = AffineMap::get(3, 0, {b.getAffineDimExpr(1), b.getAffineDimExpr(2)}, b.getContext());
  for (unsigned i = 0; i < nIn; ++i) {
    dq.ins.push_back(g.getDpsInputs()[i]);
    dq.maps.push_back(maps[i].compose(shift));
  }
  return dq;
}

/// y[m, n] = sum_k x[m, k] * w[n, k] (+ bias[n])
Value Lowering::matmulT(Value x2, Value w, Value bias) {
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
  if (std::optional<Dequant> dq = matchDequant(w)) {
    // the weight widened in the matmul's body: y += x * extf(w) or x * (sitofp(q) * extf(d))
    SmallVector<Value> ins{x2};
    ins.append(dq->ins);
    SmallVector<AffineMap> maps{map(3, {0, 2})};
    maps.append(dq->maps);
    maps.push_back(map(3, {0, 1}));
    bool q8 = dq->ins.size() == 2, q4 = dq->q4;
    return generic(init, ins, maps, iters(3, {2}), [q8, q4](OpBuilder &nb, Location l, ValueRange a) {
      Type f32 = nb.getF32Type();
      Value wv;
      if (q4)
        wv = dequantQ4(nb, l, a[1], a[2], linalg::IndexOp::create(nb, l, 2));
      else if (q8)
        wv = arith::MulFOp::create(nb, l, arith::SIToFPOp::create(nb, l, f32, a[1]),
                                   arith::ExtFOp::create(nb, l, f32, a[2]));
      else
        wv = arith::ExtFOp::create(nb, l, f32, a[1]);
      Value p = arith::MulFOp::create(nb, l, a[0], wv, kFM);
      Value s = arith::AddFOp::create(nb, l, a.back(), p, kFM);
      linalg::YieldOp::create(nb, l, s);
    });
  }
  return generic(init, ValueRange{x2, w}, {map(3, {0, 2}), map(3, {1, 2}), map(3, {0, 1})},
                 iters(3, {2}), [](OpBuilder &nb, Location l, ValueRange a) {
                   Value p = arith::MulFOp::create(nb, l, a[0], a[1], kFM);
                   Value s = arith::AddFOp::create(nb, l, a[2], p, kFM);
                   linalg::YieldOp::create(nb, l, s);
                 });
}

Value Lowering::linear(Value x, Value w, Value bias, RankedTensorType resultType) {
  Value y = matmulT(collapseTo2D(x), w, bias);
  return expandFrom2D(y, x, resultType);
}

/// x * rsqrt(mean(x^2) + eps) * w over the last dim.
Value Lowering::rmsNorm(Value x, Value w, double eps, RankedTensorType resultType) {
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

Value Lowering::embedding(Value table, Value ids, RankedTensorType resultType) {
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
Value Lowering::rope(Value x, Value offsets, double theta) {
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
Value Lowering::causalAttention(Value q, Value k, Value v, double scale, RankedTensorType resultType) {
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

Value Lowering::swiglu(Value x, Value wg, Value wu, Value wd, RankedTensorType resultType) {
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

/// (x - mean) * rsqrt(mean((x - mean)^2) + eps) * w + bias over the last dim.
Value Lowering::layerNorm(Value x, Value w, Value bias, double eps, RankedTensorType resultType) {
  Value x2 = collapseTo2D(x);
  int64_t d = rtt(x2).getDimSize(1);
  float invD = 1.0f / static_cast<float>(d);
  auto rowSum = [&](ValueRange ins, ArrayRef<AffineMap> inMaps,
                    function_ref<Value(OpBuilder &, Location, ValueRange)> term) {
    Value acc = fill(empty({dim(x2, 0)}, b.getF32Type()), 0.0);
    SmallVector<AffineMap> maps(inMaps.begin(), inMaps.end());
    maps.push_back(map(2, {0}));
    return generic(acc, ins, maps, iters(2, {1}),
                   [&](OpBuilder &nb, Location l, ValueRange a) {
                     Value t = term(nb, l, a.drop_back());
                     linalg::YieldOp::create(
                         nb, l, ValueRange{arith::AddFOp::create(nb, l, a.back(), t, kFM)});
                   });
  };
  Value sum = rowSum(ValueRange{x2}, {idMap(2)},
                     [](OpBuilder &, Location, ValueRange a) { return a[0]; });
  auto centred = [invD](OpBuilder &nb, Location l, Value v, Value rowSum) {
    Value cInv = arith::ConstantOp::create(nb, l, nb.getF32FloatAttr(invD));
    return arith::SubFOp::create(nb, l, v, arith::MulFOp::create(nb, l, rowSum, cInv))
        .getResult();
  };
  Value ss = rowSum(ValueRange{x2, sum}, {idMap(2), map(2, {0})},
                    [&](OpBuilder &nb, Location l, ValueRange a) {
                      Value c = centred(nb, l, a[0], a[1]);
                      return arith::MulFOp::create(nb, l, c, c, kFM).getResult();
                    });
  Value init = empty({dim(x2, 0), dim(x2, 1)}, b.getF32Type());
  float epsF = static_cast<float>(eps);
  Value y = generic(
      init, ValueRange{x2, sum, ss, w, bias},
      {idMap(2), map(2, {0}), map(2, {0}), map(2, {1}), map(2, {1}), idMap(2)}, iters(2),
      [&](OpBuilder &nb, Location l, ValueRange a) {
        Value cInv = arith::ConstantOp::create(nb, l, nb.getF32FloatAttr(invD));
        Value cEps = arith::ConstantOp::create(nb, l, nb.getF32FloatAttr(epsF));
        Value var = arith::MulFOp::create(nb, l, a[2], cInv);
        Value r = math::RsqrtOp::create(nb, l, arith::AddFOp::create(nb, l, var, cEps));
        Value n = arith::MulFOp::create(nb, l, centred(nb, l, a[0], a[1]), r);
        Value v = arith::AddFOp::create(nb, l, arith::MulFOp::create(nb, l, n, a[3]), a[4]);
        linalg::YieldOp::create(nb, l, v);
      });
  return expandFrom2D(y, x, resultType);
}

/// 0.5 x (1 + erf(x / sqrt 2)), or with `tanhForm` 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
Value Lowering::gelu(Value x, bool tanhForm) {
  auto t = rtt(x);
  int64_t r = t.getRank();
  SmallVector<OpFoldResult> sizes;
  for (int64_t i = 0; i < r; ++i) sizes.push_back(dim(x, i));
  Value init = empty(sizes, t.getElementType());
  return generic(init, ValueRange{x}, {idMap(r), idMap(r)}, iters(r),
                 [&](OpBuilder &nb, Location l, ValueRange a) {
                   auto c = [&](double v) {
                     return arith::ConstantOp::create(nb, l,
                                                      nb.getF32FloatAttr(static_cast<float>(v)))
                         .getResult();
                   };
                   Value v = a[0], inner;
                   if (tanhForm) {
                     Value v3 = arith::MulFOp::create(
                         nb, l, arith::MulFOp::create(nb, l, v, v), v);
                     Value s = arith::AddFOp::create(
                         nb, l, v, arith::MulFOp::create(nb, l, v3, c(0.044715)));
                     inner = math::TanhOp::create(
                         nb, l, arith::MulFOp::create(nb, l, s, c(std::sqrt(2.0 / M_PI))));
                   } else {
                     // erf(z), z = x / sqrt 2, as Abramowitz & Stegun 7.1.26 (absolute
                     // error <= 1.5e-7; the CPU pipeline's math-to-llvm has no erf):
                     // sign(z) (1 - t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) e^(-z^2)),
                     // t = 1 / (1 + p |z|).
                     Value z = arith::MulFOp::create(nb, l, v, c(1.0 / std::sqrt(2.0)));
                     Value az = math::AbsFOp::create(nb, l, z);
                     Value t = arith::DivFOp::create(
                         nb, l, c(1.0),
                         arith::AddFOp::create(nb, l, c(1.0),
                                               arith::MulFOp::create(nb, l, az, c(0.3275911))));
                     Value poly = c(1.061405429);
                     for (double a : {-1.453152027, 1.421413741, -0.284496736, 0.254829592})
                       poly = arith::AddFOp::create(nb, l, arith::MulFOp::create(nb, l, poly, t),
                                                    c(a));
                     poly = arith::MulFOp::create(nb, l, poly, t);
                     Value e = math::ExpOp::create(
                         nb, l, arith::NegFOp::create(nb, l, arith::MulFOp::create(nb, l, az, az)));
                     Value y = arith::SubFOp::create(nb, l, c(1.0),
                                                     arith::MulFOp::create(nb, l, poly, e));
                     inner = math::CopySignOp::create(nb, l, y, z);
                   }
                   Value h = arith::MulFOp::create(nb, l, v, c(0.5));
                   Value y = arith::MulFOp::create(nb, l, h,
                                                   arith::AddFOp::create(nb, l, inner, c(1.0)));
                   linalg::YieldOp::create(nb, l, ValueRange{y});
                 });
}

/// out[b, m, :] = x[b, m, :] + table[min(offsets[b] + m, P - 1), :]
Value Lowering::positionEmbedding(Value x, Value table, Value offsets) {
  auto t = rtt(x);
  int64_t P = rtt(table).getDimSize(0);
  SmallVector<OpFoldResult> sizes{dim(x, 0), dim(x, 1), dim(x, 2)};
  Value init = empty(sizes, t.getElementType());
  SmallVector<Value> ins{x};
  SmallVector<AffineMap> maps{idMap(3)};
  if (offsets) {
    ins.push_back(offsets);
    maps.push_back(map(3, {0}));
  }
  maps.push_back(idMap(3));
  return generic(init, ins, maps, iters(3), [&](OpBuilder &nb, Location l, ValueRange a) {
    Value pos = linalg::IndexOp::create(nb, l, 1);
    if (offsets) {
      Value off = arith::IndexCastOp::create(nb, l, nb.getIndexType(), a[1]);
      pos = arith::AddIOp::create(nb, l, pos, off);
    }
    Value last = arith::ConstantIndexOp::create(nb, l, P - 1);
    pos = arith::MinUIOp::create(nb, l, pos, last);
    Value e = linalg::IndexOp::create(nb, l, 2);
    Value row = tensor::ExtractOp::create(nb, l, table, ValueRange{pos, e});
    linalg::YieldOp::create(nb, l, ValueRange{arith::AddFOp::create(nb, l, a[0], row)});
  });
}

/// [B, M, d] -> [B, M/size, size*d]
Value Lowering::chunk(Value x, int64_t size) {
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
Value Lowering::shift(Value x, Value start) {
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

} // namespace conversion
} // namespace photon
} // namespace mlir
