//===- ConvertPhotonToLinalg.cpp - photon ops to linalg/tensor/scf -------===//
//
// Lowers the photon ops of docs/ir-contract.md to upstream dialects on tensors, reading
// each op through its generated accessors and adaptor. See Passes.td for the op-by-op
// description. Structure (as mlir/examples/toy/Ch7's LowerToAffineLoops.cpp): the
// `Lowering` builders below emit the upstream IR; one OpConversionPattern per photon op
// calls them on the adaptor's (converted) operands; the pass adds the weights blob
// argument, then runs a partial conversion with the photon dialect illegal and
// PhotonTypeConverter for the photon types.
//
//===----------------------------------------------------------------------===//

#include "photon/Conversion/AttentionLowering.h"
#include "photon/Dialect/PhotonOps.h"
#include "photon/Conversion/Passes.h"
#include "photon/weights_format.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Utils/StructuredOpsUtils.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
#include "mlir/Transforms/DialectConversion.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cmath>

namespace mlir {
namespace photon {
#define GEN_PASS_DEF_CONVERTPHOTONTOLINALG
#include "photon/Conversion/Passes.h.inc"
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

  /// If `w` is the widening generic WeightOpLowering emits for a reduced-precision weight
  /// (f16 / bf16: `extf`; q8: `sitofp(q) * extf(d[n, k floordiv 32])`), its inputs and
  /// maps (as (m, n, k) maps of a matmul) and the widening body.
  struct Dequant {
    SmallVector<Value> ins;
    SmallVector<AffineMap> maps;
    bool q4 = false;
  };
  std::optional<Dequant> matchDequant(Value w) {
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

  /// (x - mean) * rsqrt(mean((x - mean)^2) + eps) * w + bias over the last dim.
  Value layerNorm(Value x, Value w, Value bias, double eps, RankedTensorType resultType) {
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
  Value gelu(Value x, bool tanhForm) {
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
  Value positionEmbedding(Value x, Value table, Value offsets) {
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

/// The pool, table and lens that `cache` was bound to. The cache_bind itself is erased by
/// its pattern (it comes first in the block); this reads the original op, whose operands
/// are remapped through `rewriter` to their converted values.
FailureOr<CacheOperands> getCache(Operation *user, Value cache,
                                  ConversionPatternRewriter &rewriter) {
  auto bind = cache.getDefiningOp<CacheBindOp>();
  if (!bind)
    return user->emitOpError("expects its cache operand to come from photon.cache_bind "
                             "(pool, table, lens); bind the cache in the same function"),
           failure();
  CacheOperands c{rewriter.getRemappedValue(bind.getPool()),
                  rewriter.getRemappedValue(bind.getTable()),
                  rewriter.getRemappedValue(bind.getLens())};
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

/// `x` converted to float type `to` (truncf / extf; the same value when equal): cache
/// writes narrow to the pool's element type, cache reads widen to the compute type.
Value convertFloat(OpBuilder &b, Location loc, Value x, Type to) {
  Type from = x.getType();
  if (from == to) return x;
  if (cast<FloatType>(from).getWidth() > cast<FloatType>(to).getWidth())
    return arith::TruncFOp::create(b, loc, to, x);
  return arith::ExtFOp::create(b, loc, to, x);
}

/// kv_append of the (converted) `k` and `v` into the cache `c`.
LogicalResult lowerKvAppend(KvAppendOp op, Value k, Value v, FailureOr<CacheOperands> c,
                            OpBuilder &b, bool fused) {
  Location loc = op.getLoc();
  if (failed(c)) return failure();
  int64_t layerIndex = op.getLayer();
  if (const AttentionKernelProvider *kernels = fused ? getAttentionKernelProvider() : nullptr) {
    PagedCache pc{c->pool, c->table, c->lens, c->blockSize};
    if (succeeded(kernels->kvAppend(b, loc, pc, k, v, layerIndex))) return success();
  }
  Lowering L{b, loc};
  Type poolElt = cast<MemRefType>(c->pool.getType()).getElementType();
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
    Value kv = convertFloat(
        nb, l, tensor::ExtractOp::create(nb, l, k, ValueRange{iv[0], iv[1], iv[2], iv[3]}),
        poolElt);
    Value vv = convertFloat(
        nb, l, tensor::ExtractOp::create(nb, l, v, ValueRange{iv[0], iv[1], iv[2], iv[3]}),
        poolElt);
    memref::StoreOp::create(nb, l, kv, c->pool, ValueRange{blk, layer, c0, off, iv[2], iv[3]});
    memref::StoreOp::create(nb, l, vv, c->pool, ValueRange{blk, layer, c1, off, iv[2], iv[3]});
  });
  return success();
}

/// Streaming (online-softmax) attention of q [B, n, H, hd] over cache positions
/// 0 .. lens[b] + t: the target's kernel (AttentionLowering.h) when `fused` (and it
/// accepts the shapes), else one scalar loop nest per query row and head.
FailureOr<Value> lowerCachedAttention(CachedAttentionOp op, Value q,
                                      FailureOr<CacheOperands> c, OpBuilder &b, bool fused,
                                      int64_t parallelMinKeys) {
  Location loc = op.getLoc();
  if (failed(c)) return failure();
  int64_t layerIndex = op.getLayer();
  double scaleValue = op.getScaleAttr().getValueAsDouble();
  auto qt = cast<RankedTensorType>(q.getType());
  auto pt = cast<MemRefType>(c->pool.getType());
  int64_t H = qt.getDimSize(2), hd = qt.getDimSize(3), Hkv = pt.getDimSize(4);
  if (ShapedType::isDynamic(H) || ShapedType::isDynamic(hd) || Hkv <= 0 || H % Hkv != 0)
    return op.emitOpError("expects static heads divisible by the cache's kv heads (")
               << (ShapedType::isDynamic(H) ? std::string("?") : std::to_string(H)) << " vs "
               << Hkv << ")",
           failure();
  if (const AttentionKernelProvider *kernels = fused ? getAttentionKernelProvider() : nullptr) {
    PagedCache pc{c->pool, c->table, c->lens, c->blockSize};
    auto r = kernels->cached(b, loc, pc, q, layerIndex, scaleValue, parallelMinKeys);
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
                Value kv = convertFloat(
                    db, dl, memref::LoadOp::create(db, dl, c->pool, ValueRange{blk, layer, c0, off, kh, d}),
                    f32);
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
                               Value vv = convertFloat(
                                   db, dl,
                                   memref::LoadOp::create(db, dl, c->pool, ValueRange{blk, layer, c1, off, kh, d}),
                                   f32);
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
// Types: the photon types' lowering
//===----------------------------------------------------------------------===//

/// The photon dialect's types after lowering: tensors lose their `#photon.stream`
/// encoding (any encoding: upstream ops take plain tensors); every other type, the
/// weights blob memref and `!photon.kv_cache` included, is kept. A cache handle has no
/// value of its own after lowering: `photon.cache_bind` is erased and `kv_append` /
/// `cached_attention` read the pool, table and lens it was bound to.
struct PhotonTypeConverter : TypeConverter {
  PhotonTypeConverter() {
    addConversion([](Type t) { return t; });
    addConversion([](RankedTensorType t) -> Type {
      if (!t.getEncoding()) return t;
      return RankedTensorType::get(t.getShape(), t.getElementType());
    });
  }

  /// No encoded tensor among the op's operands, results and block arguments (a
  /// function's signature included).
  bool isLegalOp(Operation *op) const {
    if (auto f = dyn_cast<FunctionOpInterface>(op))
      if (!isLegal(f.getArgumentTypes()) || !isLegal(f.getResultTypes())) return false;
    if (!isLegal(op)) return false;
    for (Region &r : op->getRegions())
      if (!isLegal(&r)) return false;
    return true;
  }
};

//===----------------------------------------------------------------------===//
// Patterns: one per photon op
//===----------------------------------------------------------------------===//

/// What the patterns share with the pass: its options and the weights blob's index.
struct LoweringContext {
  bool fusedAttention = true;
  int64_t parallelDecodeMinKeys = 0;
  bool haveWeightsFile = false;
  llvm::StringMap<::photon::weights::TensorInfo> index;
  /// Set when a pattern has reported why its op cannot be lowered (the conversion then
  /// fails; the driver's generic "failed to legalize" adds nothing).
  bool reported = false;
};

template <typename OpT>
struct PhotonOpLowering : OpConversionPattern<OpT> {
  using Adaptor = typename OpConversionPattern<OpT>::OpAdaptor;
  PhotonOpLowering(const TypeConverter &tc, MLIRContext *ctx, LoweringContext &lc)
      : OpConversionPattern<OpT>(tc, ctx), lc(lc) {}

  /// The converted type of result `i`.
  RankedTensorType resultType(OpT op, unsigned i = 0) const {
    return cast<RankedTensorType>(this->getTypeConverter()->convertType(op->getResult(i).getType()));
  }
  /// Replaces the op's result by `r` (cast to the converted result type when the lowering
  /// computed a more static one).
  LogicalResult replace(OpT op, Value r, ConversionPatternRewriter &rewriter) const {
    Type want = resultType(op);
    if (r.getType() != want) r = tensor::CastOp::create(rewriter, op.getLoc(), want, r);
    rewriter.replaceOp(op, r);
    return success();
  }
  /// The op cannot be lowered; the diagnostic has been emitted.
  LogicalResult reported() const {
    lc.reported = true;
    return failure();
  }

  LoweringContext &lc;
};

#define PHOTON_LOWERING(OpT)                                                               \
  struct OpT##Lowering : PhotonOpLowering<OpT> {                                           \
    using PhotonOpLowering<OpT>::PhotonOpLowering;                                         \
    LogicalResult matchAndRewrite(OpT op, OpAdaptor a,                                     \
                                  ConversionPatternRewriter &rewriter) const override;     \
  };
PHOTON_LOWERING(WeightOp)
PHOTON_LOWERING(EmbeddingOp)
PHOTON_LOWERING(RMSNormOp)
PHOTON_LOWERING(LinearOp)
PHOTON_LOWERING(LayerNormOp)
PHOTON_LOWERING(GeluOp)
PHOTON_LOWERING(PositionEmbeddingOp)
PHOTON_LOWERING(LMHeadOp)
PHOTON_LOWERING(RoPEOp)
PHOTON_LOWERING(CausalAttentionOp)
PHOTON_LOWERING(BoundedAttentionOp)
PHOTON_LOWERING(SwiGLUOp)
PHOTON_LOWERING(ChunkOp)
PHOTON_LOWERING(ChunkCompressOp)
PHOTON_LOWERING(ExpandOp)
PHOTON_LOWERING(ShiftOp)
PHOTON_LOWERING(CacheBindOp)
PHOTON_LOWERING(KvAppendOp)
PHOTON_LOWERING(CachedAttentionOp)
#undef PHOTON_LOWERING

/// `photon.weight` -> memref.view of the blob (the function's argument 0) at the tensor's
/// byte offset, as a read-only tensor.
LogicalResult WeightOpLowering::matchAndRewrite(WeightOp op, OpAdaptor,
                                                ConversionPatternRewriter &rewriter) const {
  StringRef name = op.getName();
  RankedTensorType rt = resultType(op);
  if (!rt.hasStaticShape())
    return op.emitOpError("must produce a statically shaped tensor"), reported();
  int64_t offset = -1;
  if (std::optional<uint64_t> off = op.getOffset()) offset = static_cast<int64_t>(*off);
  auto it = lc.index.find(name);
  // q4 stores two 4-bit weights per byte: [N, K / 2] (docs/artifact.md, "Weight formats")
  auto q4Scales = lc.index.find((name + ::photon::weights::kQ4ScalesSuffix).str());
  bool q4 = q4Scales != lc.index.end() && rt.getRank() == 2;
  if (it != lc.index.end()) {
    const auto &info = it->second;
    std::vector<int64_t> stored(rt.getShape().begin(), rt.getShape().end());
    if (q4) stored[1] /= 2;
    if (info.shape != stored)
      return op.emitOpError("weight '") << name << "' has another shape in the weights blob ("
                                         << info.shape.size() << "-d) than in the IR (" << rt
                                         << "); re-import the model",
             reported();
    offset = static_cast<int64_t>(info.offset);
  } else if (offset < 0) {
    return op.emitOpError("weight '")
               << name << "' is not in the weights blob"
               << (lc.haveWeightsFile ? "" : " (no weights file given: pass --weights)") << "",
           reported();
  }
  auto f = op->getParentOfType<func::FuncOp>();
  Value blob = rewriter.getRemappedValue(f.getArgument(0));
  Location loc = op.getLoc();
  // A tensor of the blob at byte offset `o` as `shape` x `elt`.
  auto viewAt = [&](int64_t o, ArrayRef<int64_t> shape, Type elt) -> Value {
    Value off = arith::ConstantIndexOp::create(rewriter, loc, o);
    auto mt = MemRefType::get(shape, elt);
    Value view = memref::ViewOp::create(rewriter, loc, mt, blob, off, ValueRange{});
    return bufferization::ToTensorOp::create(rewriter, loc, RankedTensorType::get(shape, elt), view,
                                             /*restrict=*/true, /*writable=*/false);
  };
  using ::photon::weights::DType;
  DType dt = it != lc.index.end() ? it->second.dtype : DType::F32;
  if (dt == DType::F32 || !rt.getElementType().isF32() || rt.getRank() != 2)
    return replace(op, viewAt(offset, rt.getShape(), rt.getElementType()), rewriter);
  // A reduced-precision matmul weight (photon-compile --weights, docs/artifact.md): widened
  // by an elementwise generic that matmulT folds into the matmul's body.
  Lowering L{rewriter, loc};
  Value init = tensor::EmptyOp::create(rewriter, loc, rt.getShape(), rewriter.getF32Type());
  if (dt == DType::F16 || dt == DType::BF16) {
    Type elt = dt == DType::F16 ? Type(rewriter.getF16Type()) : Type(rewriter.getBF16Type());
    Value q = viewAt(offset, rt.getShape(), elt);
    return replace(op,
                   L.generic(init, ValueRange{q}, {L.idMap(2), L.idMap(2)}, L.iters(2),
                             [](OpBuilder &nb, Location l, ValueRange a) {
                               linalg::YieldOp::create(
                                   nb, l, ValueRange{arith::ExtFOp::create(nb, l, nb.getF32Type(), a[0])});
                             }),
                   rewriter);
  }
  int64_t N = rt.getDimSize(0), K = rt.getDimSize(1), G = ::photon::weights::kQ8Group;
  if (q4) {
    const auto &si = q4Scales->second;
    if (dt != DType::I8 || K % G != 0 || si.dtype != DType::F16 ||
        si.shape != std::vector<int64_t>{N, K / G})
      return op.emitOpError("weight '")
                 << name << "' has q4 scales but is not a q4 weight (i8 [N, K / 2] with f16 "
                    "scales [N, K / 32]); re-run photon-compile from the f32 weights",
             reported();
    Value p = viewAt(offset, {N, K / 2}, rewriter.getI8Type());
    Value d = viewAt(static_cast<int64_t>(si.offset), {N, K / G}, rewriter.getF16Type());
    AffineExpr n = rewriter.getAffineDimExpr(0), k = rewriter.getAffineDimExpr(1);
    AffineMap pMap = AffineMap::get(2, 0, {n, k.floorDiv(G) * (G / 2) + k % (G / 2)}, rewriter.getContext());
    AffineMap dMap = AffineMap::get(2, 0, {n, k.floorDiv(G)}, rewriter.getContext());
    return replace(op,
                   L.generic(init, ValueRange{p, d}, {pMap, dMap, L.idMap(2)}, L.iters(2),
                             [](OpBuilder &nb, Location l, ValueRange a) {
                               Value kk = linalg::IndexOp::create(nb, l, 1);
                               linalg::YieldOp::create(nb, l, ValueRange{dequantQ4(nb, l, a[0], a[1], kk)});
                             }),
                   rewriter);
  }
  auto sc = lc.index.find((name + ::photon::weights::kQ8ScalesSuffix).str());
  if (dt != DType::I8 || K % G != 0 || sc == lc.index.end() || sc->second.dtype != DType::F16 ||
      sc->second.shape != std::vector<int64_t>{N, K / G})
    return op.emitOpError("weight '")
               << name << "' is stored as " << ::photon::weights::dtypeName(dt)
               << " in the weights blob, which is not an f32 / f16 / bf16 / q8 matmul weight "
                  "(q8: i8 [N, K] with f16 scales '"
               << name << ::photon::weights::kQ8ScalesSuffix
               << "' [N, K / 32]); re-run photon-compile from the f32 weights",
           reported();
  Value q = viewAt(offset, rt.getShape(), rewriter.getI8Type());
  Value d = viewAt(static_cast<int64_t>(sc->second.offset), {N, K / G}, rewriter.getF16Type());
  AffineMap dMap = AffineMap::get(2, 0, {rewriter.getAffineDimExpr(0), rewriter.getAffineDimExpr(1).floorDiv(G)},
                                  rewriter.getContext());
  return replace(op,
                 L.generic(init, ValueRange{q, d}, {L.idMap(2), dMap, L.idMap(2)}, L.iters(2),
                           [](OpBuilder &nb, Location l, ValueRange a) {
                             Value qf = arith::SIToFPOp::create(nb, l, nb.getF32Type(), a[0]);
                             Value df = arith::ExtFOp::create(nb, l, nb.getF32Type(), a[1]);
                             linalg::YieldOp::create(nb, l, ValueRange{arith::MulFOp::create(nb, l, qf, df)});
                           }),
                 rewriter);
}

LogicalResult EmbeddingOpLowering::matchAndRewrite(EmbeddingOp op, OpAdaptor a,
                                                   ConversionPatternRewriter &rewriter) const {
  Lowering L{rewriter, op.getLoc()};
  return replace(op, L.embedding(a.getTable(), a.getIds(), resultType(op)), rewriter);
}

LogicalResult RMSNormOpLowering::matchAndRewrite(RMSNormOp op, OpAdaptor a,
                                                 ConversionPatternRewriter &rewriter) const {
  Lowering L{rewriter, op.getLoc()};
  return replace(op, L.rmsNorm(a.getX(), a.getW(), op.getEpsAttr().getValueAsDouble(),
                               resultType(op)),
                 rewriter);
}

LogicalResult LinearOpLowering::matchAndRewrite(LinearOp op, OpAdaptor a,
                                                ConversionPatternRewriter &rewriter) const {
  Lowering L{rewriter, op.getLoc()};
  return replace(op, L.linear(a.getX(), a.getW(), a.getB(), resultType(op)), rewriter);
}

/// Two row reductions (sum, then the centred sum of squares) and the normalization.
LogicalResult LayerNormOpLowering::matchAndRewrite(LayerNormOp op, OpAdaptor a,
                                                   ConversionPatternRewriter &rewriter) const {
  Lowering L{rewriter, op.getLoc()};
  return replace(op, L.layerNorm(a.getX(), a.getW(), a.getB(),
                                 op.getEpsAttr().getValueAsDouble(), resultType(op)),
                 rewriter);
}

LogicalResult GeluOpLowering::matchAndRewrite(GeluOp op, OpAdaptor a,
                                              ConversionPatternRewriter &rewriter) const {
  Lowering L{rewriter, op.getLoc()};
  return replace(op, L.gelu(a.getX(), op.getTanh()), rewriter);
}

LogicalResult
PositionEmbeddingOpLowering::matchAndRewrite(PositionEmbeddingOp op, OpAdaptor a,
                                             ConversionPatternRewriter &rewriter) const {
  Lowering L{rewriter, op.getLoc()};
  return replace(op, L.positionEmbedding(a.getX(), a.getTable(), a.getOffsets()), rewriter);
}

LogicalResult LMHeadOpLowering::matchAndRewrite(LMHeadOp op, OpAdaptor a,
                                                ConversionPatternRewriter &rewriter) const {
  Lowering L{rewriter, op.getLoc()};
  return replace(op, L.linear(a.getX(), a.getW(), Value(), resultType(op)), rewriter);
}

LogicalResult RoPEOpLowering::matchAndRewrite(RoPEOp op, OpAdaptor a,
                                              ConversionPatternRewriter &rewriter) const {
  Lowering L{rewriter, op.getLoc()};
  return replace(op, L.rope(a.getX(), a.getOffsets(), op.getThetaAttr().getValueAsDouble()),
                 rewriter);
}

/// Causal and bounded attention (a bounded attention's windows are its batch rows) lower
/// the same way: the fused kernel when enabled and the shapes allow it, else the
/// score / masked-softmax / value generics.
template <typename AttnOp, typename AdaptorT>
Value lowerAttention(AttnOp op, AdaptorT a, RankedTensorType resultType, OpBuilder &b,
                     bool fusedAttention) {
  Location loc = op.getLoc();
  double scale = op.getScaleAttr().getValueAsDouble();
  FailureOr<Value> fused = failure();
  if (const AttentionKernelProvider *kernels =
          fusedAttention ? getAttentionKernelProvider() : nullptr)
    fused = kernels->causal(b, loc, a.getQ(), a.getK(), a.getV(), scale, resultType);
  if (succeeded(fused)) return *fused;
  Lowering L{b, loc};
  return L.causalAttention(a.getQ(), a.getK(), a.getV(), scale, resultType);
}

LogicalResult
CausalAttentionOpLowering::matchAndRewrite(CausalAttentionOp op, OpAdaptor a,
                                           ConversionPatternRewriter &rewriter) const {
  return replace(op, lowerAttention(op, a, resultType(op), rewriter, lc.fusedAttention),
                 rewriter);
}

LogicalResult
BoundedAttentionOpLowering::matchAndRewrite(BoundedAttentionOp op, OpAdaptor a,
                                            ConversionPatternRewriter &rewriter) const {
  return replace(op, lowerAttention(op, a, resultType(op), rewriter, lc.fusedAttention),
                 rewriter);
}

LogicalResult SwiGLUOpLowering::matchAndRewrite(SwiGLUOp op, OpAdaptor a,
                                                ConversionPatternRewriter &rewriter) const {
  Lowering L{rewriter, op.getLoc()};
  return replace(op, L.swiglu(a.getX(), a.getWGate(), a.getWUp(), a.getWDown(), resultType(op)),
                 rewriter);
}

LogicalResult ChunkOpLowering::matchAndRewrite(ChunkOp op, OpAdaptor a,
                                               ConversionPatternRewriter &rewriter) const {
  Lowering L{rewriter, op.getLoc()};
  return replace(op, L.chunk(a.getX(), op.getSize()), rewriter);
}

/// chunk, then RMSNorm, then the linear projection.
LogicalResult
ChunkCompressOpLowering::matchAndRewrite(ChunkCompressOp op, OpAdaptor a,
                                         ConversionPatternRewriter &rewriter) const {
  Lowering L{rewriter, op.getLoc()};
  Value ch = L.chunk(a.getX(), op.getSize());
  Value n = L.rmsNorm(ch, a.getNormW(), op.getEpsAttr().getValueAsDouble(),
                      cast<RankedTensorType>(ch.getType()));
  return replace(op, L.linear(n, a.getW(), a.getB(), resultType(op)), rewriter);
}

/// The linear projection to R * D, then [.., R * D] -> [.., R, D].
LogicalResult ExpandOpLowering::matchAndRewrite(ExpandOp op, OpAdaptor a,
                                                ConversionPatternRewriter &rewriter) const {
  Location loc = op.getLoc();
  Lowering L{rewriter, loc};
  int64_t R = op.getR();
  auto xt = L.rtt(a.getX());
  int64_t D = xt.getDimSize(2);
  auto linT =
      RankedTensorType::get({xt.getDimSize(0), xt.getDimSize(1), R * D}, xt.getElementType());
  Value y = L.linear(a.getX(), a.getW(), a.getB(), linT);
  Value r = tensor::ExpandShapeOp::create(
      rewriter, loc, resultType(op), y, ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3}},
      ArrayRef<OpFoldResult>{L.dim(y, 0), L.dim(y, 1), rewriter.getIndexAttr(R),
                             rewriter.getIndexAttr(D)});
  return replace(op, r, rewriter);
}

LogicalResult ShiftOpLowering::matchAndRewrite(ShiftOp op, OpAdaptor a,
                                               ConversionPatternRewriter &rewriter) const {
  Lowering L{rewriter, op.getLoc()};
  return replace(op, L.shift(a.getX(), a.getStart()), rewriter);
}

/// The cache handle has no lowered value: erased, its users read the bound buffers
/// (getCache). Only kv_append and cached_attention may use it.
LogicalResult CacheBindOpLowering::matchAndRewrite(CacheBindOp op, OpAdaptor,
                                                   ConversionPatternRewriter &rewriter) const {
  if (!llvm::all_of(op->getUsers(),
                    [](Operation *u) { return isa<KvAppendOp, CachedAttentionOp>(u); }))
    return op.emitOpError("result is still used after lowering (only kv_append and "
                          "cached_attention may use a cache)"),
           reported();
  rewriter.eraseOp(op);
  return success();
}

LogicalResult KvAppendOpLowering::matchAndRewrite(KvAppendOp op, OpAdaptor a,
                                                  ConversionPatternRewriter &rewriter) const {
  if (failed(lowerKvAppend(op, a.getK(), a.getV(), getCache(op, op.getCache(), rewriter),
                           rewriter, lc.fusedAttention)))
    return reported();
  rewriter.eraseOp(op);
  return success();
}

LogicalResult
CachedAttentionOpLowering::matchAndRewrite(CachedAttentionOp op, OpAdaptor a,
                                           ConversionPatternRewriter &rewriter) const {
  FailureOr<Value> r =
      lowerCachedAttention(op, a.getQ(), getCache(op, op.getCache(), rewriter), rewriter,
                           lc.fusedAttention, lc.parallelDecodeMinKeys);
  if (failed(r)) return reported();
  return replace(op, *r, rewriter);
}

/// Any other op whose operands, results or block arguments carry encoded tensors is
/// rebuilt with the converted types (func.call, func.return, tensor reshapes, scf, ...).
struct DropTensorEncodings : ConversionPattern {
  DropTensorEncodings(const TypeConverter &tc, MLIRContext *ctx)
      : ConversionPattern(tc, MatchAnyOpTypeTag(), /*benefit=*/1, ctx) {}
  LogicalResult matchAndRewrite(Operation *op, ArrayRef<Value> operands,
                                ConversionPatternRewriter &rewriter) const override {
    if (isa<FunctionOpInterface>(op) || isa_and_nonnull<PhotonDialect>(op->getDialect()))
      return failure();
    SmallVector<Type> types;
    if (failed(getTypeConverter()->convertTypes(op->getResultTypes(), types))) return failure();
    Operation *n = Operation::create(op->getLoc(), op->getName(), types, operands,
                                     op->getAttrDictionary(), op->getPropertiesStorage(),
                                     op->getSuccessors(), op->getNumRegions());
    for (auto [from, to] : llvm::zip(op->getRegions(), n->getRegions())) {
      rewriter.inlineRegionBefore(from, to, to.end());
      if (failed(rewriter.convertRegionTypes(&to, *getTypeConverter()))) return failure();
    }
    rewriter.insert(n);
    rewriter.replaceOp(op, n->getResults());
    return success();
  }
};

//===----------------------------------------------------------------------===//
// The pass
//===----------------------------------------------------------------------===//

struct ConvertPhotonToLinalgPass
    : public mlir::photon::impl::ConvertPhotonToLinalgBase<ConvertPhotonToLinalgPass> {
  using Base::Base;

  void getDependentDialects(DialectRegistry &registry) const override {
    Base::getDependentDialects(registry);
    registry.insert<vector::VectorDialect>(); // the fused attention kernels
  }

  LogicalResult loadIndex(ModuleOp m, llvm::StringMap<::photon::weights::TensorInfo> &index) {
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

  /// The weights blob becomes argument 0 of every function with a body (the ABI's
  /// argument 0, marked photon.weights_arg), and every call of one passes it on. This is
  /// an ABI change, not a type conversion, so it is done before the conversion.
  LogicalResult addWeightsArgument(ModuleOp m) {
    MLIRContext *ctx = &getContext();
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
        return failure();
      weightsArg.setAttr(f, UnitAttr::get(ctx));
      blobOf[f] = f.getArgument(0);
    }
    m.walk([&](func::CallOp call) {
      auto callee = m.lookupSymbol<func::FuncOp>(call.getCallee());
      if (!callee || callee.isExternal() || !blobOf.count(callee)) return;
      auto caller = call->getParentOfType<func::FuncOp>();
      if (call.getNumOperands() == callee.getNumArguments()) return;
      SmallVector<Value> args{blobOf[caller]};
      args.append(call.getOperands().begin(), call.getOperands().end());
      call->setOperands(args);
    });
    return success();
  }

  void runOnOperation() override {
    ModuleOp m = getOperation();
    MLIRContext *ctx = &getContext();
    LoweringContext lc;
    lc.fusedAttention = fusedAttention;
    lc.parallelDecodeMinKeys = parallelDecodeMinKeys;
    lc.haveWeightsFile = !weightsFile.empty();
    if (failed(loadIndex(m, lc.index))) return signalPassFailure();
    if (failed(addWeightsArgument(m))) return signalPassFailure();

    PhotonTypeConverter typeConverter;
    ConversionTarget target(*ctx);
    target.addIllegalDialect<PhotonDialect>();
    target.markUnknownOpDynamicallyLegal(
        [&](Operation *op) { return typeConverter.isLegalOp(op); });

    RewritePatternSet patterns(ctx);
    patterns.add<LayerNormOpLowering, GeluOpLowering, PositionEmbeddingOpLowering>(
        typeConverter, ctx, lc);
    patterns.add<WeightOpLowering, EmbeddingOpLowering, RMSNormOpLowering, LinearOpLowering,
                 LMHeadOpLowering, RoPEOpLowering, CausalAttentionOpLowering,
                 BoundedAttentionOpLowering, SwiGLUOpLowering, ChunkOpLowering,
                 ChunkCompressOpLowering, ExpandOpLowering, ShiftOpLowering,
                 CacheBindOpLowering, KvAppendOpLowering, CachedAttentionOpLowering>(
        typeConverter, ctx, lc);
    patterns.add<DropTensorEncodings>(typeConverter, ctx);
    populateFunctionOpInterfaceTypeConversionPattern<func::FuncOp>(patterns, typeConverter);

    // The lowered IR is exactly the patterns' output: no folding of the photon ops
    // (photon.chunk folds) before they are lowered.
    ConversionConfig config;
    config.foldingMode = DialectConversionFoldingMode::Never;
    // A pattern that cannot lower its op says why; the driver's "failed to legalize
    // operation" that follows adds nothing.
    ScopedDiagnosticHandler quiet(ctx, [&](Diagnostic &d) {
      return success(lc.reported && d.getSeverity() == DiagnosticSeverity::Error &&
                     StringRef(d.str()).starts_with("failed to legalize operation"));
    });
    if (failed(applyPartialConversion(m, target, std::move(patterns), config)))
      signalPassFailure();
  }
};

} // namespace
