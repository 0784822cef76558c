//===- CacheLowering.cpp - kv_append / cached_attention over the pool ----===//
//
// convert-photon-to-linalg's lowering of the cache ops (Lowering.h): kv_append as row
// copies into the paged block pool and cached_attention as a streaming (online-softmax)
// scalar loop nest over it, each unless the target's attention kernels
// (AttentionLowering.h) take the op.
//
//===----------------------------------------------------------------------===//

#include "Lowering.h"

#include "photon/Conversion/AttentionLowering.h"

#include <functional>
#include <limits>
#include <string>

namespace mlir {
namespace photon {
namespace conversion {

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

namespace {

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

} // namespace

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

} // namespace conversion
} // namespace photon
} // namespace mlir
