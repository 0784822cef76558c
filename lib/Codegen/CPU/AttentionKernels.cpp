//===- AttentionKernels.cpp - fused, vectorized attention ----------------===//
//
// The fused attention kernels of convert-photon-to-linalg (option `fused-attention`,
// default on). One loop nest serves causal_attention, bounded_attention (causal inside
// each window row) and cached_attention (keys and values from the paged block pool);
// only where key row j lives and how far each query may look differ:
//
//   for b in 0..B, kh in 0..Hkv  (scf.parallel with >= 64 queries per row: prefill)
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
// No [M, M] scores tensor exists; the scratch is R x KB scores and R x hd accumulators
// (on the stack, or one heap slot per (b, kh) when the pairs run as an scf.parallel, which
// --openmp turns into an OpenMP loop; a decode step's attention stays sequential).
// Everything is explicit scf loops and vector ops on memrefs (q/k/v through read-only
// bufferization.to_buffer, the result a fresh buffer), lowered by the existing
// photon-lower-to-llvm pipeline. Each kernel is a private function per kind and operand
// types (`photon.attention_kernel`), called with `no_inline` by every layer and stage, so
// LLVM compiles one copy per attention shape. exp is a Cephes-style polynomial on vectors (relative
// error ~1e-7, exactly 0 below -88), so no libm call per score.
//
//===----------------------------------------------------------------------===//

#include "AttentionKernelBody.h"
#include "AttentionKernels.h"
#include "photon/Codegen/CPU/Passes.h"
#include "photon/Dialect/PhotonDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/raw_ostream.h"

#include <functional>
#include <limits>

using namespace mlir;

using namespace mlir::photon::attention_detail;

namespace {

/// A read-only view of a rank-4 tensor as a memref with unit innermost stride.
Value readOnlyBuffer(OpBuilder &b, Location loc, Value t) {
  auto tt = cast<RankedTensorType>(t.getType());
  SmallVector<int64_t> strides(tt.getRank(), ShapedType::kDynamic);
  strides.back() = 1;
  auto layout = StridedLayoutAttr::get(b.getContext(), ShapedType::kDynamic, strides);
  auto mt = MemRefType::get(tt.getShape(), tt.getElementType(), layout);
  return bufferization::ToBufferOp::create(b, loc, mt, t, /*read_only=*/true);
}

/// The result buffer [B, N, H, hd] shaped like q.
Value allocOut(OpBuilder &b, Location loc, Value q) {
  auto qt = cast<RankedTensorType>(q.getType());
  auto outT = MemRefType::get(qt.getShape(), b.getF32Type());
  SmallVector<Value> dyn;
  if (outT.isDynamicDim(0)) dyn.push_back(tensor::DimOp::create(b, loc, q, 0));
  if (outT.isDynamicDim(1)) dyn.push_back(tensor::DimOp::create(b, loc, q, 1));
  return memref::AllocOp::create(b, loc, outT, dyn);
}

/// The kernel's common fields inside a kernel function (Q and O are arguments).
AttentionKernel makeKernel(OpBuilder &b, Location loc, Value Q, Value O, int64_t Hkv,
                           Value scale) {
  auto qt = cast<MemRefType>(Q.getType());
  AttentionKernel k;
  k.H = qt.getDimSize(2);
  k.hd = qt.getDimSize(3);
  k.Hkv = Hkv;
  k.G = k.H / Hkv;
  k.L = mlir::photon::attentionLanes(k.hd);
  k.scale = scale;
  k.B = memref::DimOp::create(b, loc, Q, 0);
  k.N = memref::DimOp::create(b, loc, Q, 1);
  k.Q = Q;
  k.O = O;
  return k;
}

/// The kernels are functions, one per kind and operand types, shared by every layer and
/// stage (the call is not inlined), so LLVM compiles each shape once.
func::FuncOp getOrCreateKernel(OpBuilder &b, Location loc, StringRef kind, TypeRange args,
                               function_ref<void(OpBuilder &, Location, ValueRange)> body) {
  Operation *parent = b.getInsertionBlock()->getParentOp();
  auto module = isa<ModuleOp>(parent) ? cast<ModuleOp>(parent) : parent->getParentOfType<ModuleOp>();
  std::string sig;
  llvm::raw_string_ostream os(sig);
  os << kind;
  for (Type t : args) os << " " << t;
  auto kernelAttr = mlir::photon::getPhotonDialect(b.getContext())->getAttentionKernelAttrHelper();
  int64_t count = 0;
  for (auto f : module.getOps<func::FuncOp>()) {
    auto a = kernelAttr.getAttr(f);
    if (!a) continue;
    if (a.getValue() == sig) return f;
    ++count;
  }
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToEnd(module.getBody());
  auto ft = b.getFunctionType(args, {});
  auto f = func::FuncOp::create(b, loc, ("photon_attention_" + kind + "_" + Twine(count)).str(), ft);
  f.setPrivate();
  kernelAttr.setAttr(f, b.getStringAttr(sig));
  Block *entry = f.addEntryBlock();
  b.setInsertionPointToStart(entry);
  body(b, loc, entry->getArguments());
  func::ReturnOp::create(b, loc);
  return f;
}

Value callKernel(OpBuilder &b, Location loc, func::FuncOp f, ValueRange args, Value out) {
  auto call = func::CallOp::create(b, loc, f, args);
  call.setNoInline(true);
  auto mt = cast<MemRefType>(out.getType());
  auto tt = RankedTensorType::get(mt.getShape(), mt.getElementType());
  return bufferization::ToTensorOp::create(b, loc, tt, out, /*restrict=*/true, /*writable=*/true)
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
  Value Q = readOnlyBuffer(b, loc, q), K = readOnlyBuffer(b, loc, k), V = readOnlyBuffer(b, loc, v);
  Value O = allocOut(b, loc, q);
  Value sc = arith::ConstantOp::create(b, loc, b.getF32FloatAttr(static_cast<float>(scale)));
  SmallVector<Value> args{Q, K, V, O, sc};
  auto f = getOrCreateKernel(
      b, loc, "causal", ValueRange(args).getTypes(),
      [&](OpBuilder &b, Location loc, ValueRange a) {
        AttentionKernel ker = makeKernel(b, loc, a[0], a[3], Hkv, a[4]);
        Value K = a[1], V = a[2];
        ker.keys.block = kKeyBlock;
        ker.keys.base = [](OpBuilder &b, Location loc, Value) { return cIdx(b, loc, 0); };
        ker.keys.blockSetup = [](OpBuilder &, Location, Value, Value) {
          return SmallVector<Value>{};
        };
        ker.keys.row = [K, V](OpBuilder &b, Location loc, int which, Value bI, Value kh, Value j0,
                              Value jj, ArrayRef<Value>) {
          Value j = arith::AddIOp::create(b, loc, j0, jj);
          return std::make_pair(which == 0 ? K : V, SmallVector<Value>{bI, j, kh});
        };
        ker.emit(b, loc);
      });
  return callKernel(b, loc, f, args, O);
}

FailureOr<Value> mlir::photon::emitFusedCachedAttention(OpBuilder &b, Location loc,
                                                        const PagedCache &c, Value q,
                                                        int64_t layer, double scale,
                                                        int64_t parallelMinKeys) {
  auto qt = dyn_cast<RankedTensorType>(q.getType());
  auto pt = dyn_cast<MemRefType>(c.pool.getType());
  if (!qt || !pt || pt.getRank() != 6 || !cacheElementSupported(pt.getElementType()) ||
      !qt.getElementType().isF32() || c.blockSize <= 0)
    return failure();
  int64_t Hkv = pt.getDimSize(4);
  if (!supported(qt, Hkv) || pt.getDimSize(5) != qt.getDimSize(3)) return failure();
  // vector.load needs a unit innermost stride.
  if (!pt.isLastDimUnitStride()) return failure();
  int64_t bs = c.blockSize;
  Value Q = readOnlyBuffer(b, loc, q);
  Value O = allocOut(b, loc, q);
  Value sc = arith::ConstantOp::create(b, loc, b.getF32FloatAttr(static_cast<float>(scale)));
  SmallVector<Value> args{Q, c.pool, c.table, c.lens, O, cIdx(b, loc, layer), sc};
  std::string kind = ("cached" + Twine(bs)).str();
  if (parallelMinKeys > 0) kind += "_par" + std::to_string(parallelMinKeys);
  auto f = getOrCreateKernel(
      b, loc, kind, ValueRange(args).getTypes(),
      [&](OpBuilder &b, Location loc, ValueRange a) {
        AttentionKernel ker = makeKernel(b, loc, a[0], a[4], Hkv, a[6]);
        Value pool = a[1], table = a[2], lens = a[3], cLayer = a[5];
        ker.parallelMinKeys = parallelMinKeys;
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
        ker.keys.row = [pool, cLayer](OpBuilder &b, Location loc, int which, Value, Value kh,
                                      Value, Value jj, ArrayRef<Value> blk) {
          return std::make_pair(pool,
                                SmallVector<Value>{blk[0], cLayer, cIdx(b, loc, which), jj, kh});
        };
        ker.emit(b, loc);
      });
  return callKernel(b, loc, f, args, O);
}

LogicalResult mlir::photon::emitVectorKvAppend(OpBuilder &b, Location loc, const PagedCache &c,
                                               Value k, Value v, int64_t layer) {
  auto kt = dyn_cast<RankedTensorType>(k.getType());
  auto vt = dyn_cast<RankedTensorType>(v.getType());
  auto pt = dyn_cast<MemRefType>(c.pool.getType());
  if (!kt || !vt || !pt || kt.getRank() != 4 || kt != vt || pt.getRank() != 6 ||
      !kt.getElementType().isF32() || !cacheElementSupported(pt.getElementType()) ||
      !pt.isLastDimUnitStride())
    return failure();
  int64_t Hkv = kt.getDimSize(2), hd = kt.getDimSize(3);
  int64_t L = attentionLanes(hd);
  if (ShapedType::isDynamic(Hkv) || ShapedType::isDynamic(hd) || L == 0 ||
      pt.getDimSize(4) != Hkv || pt.getDimSize(5) != hd || c.blockSize <= 0)
    return failure();
  auto vec = VectorType::get({L}, b.getF32Type());
  // An f16 pool stores every row narrowed (arith.truncf, round to nearest even: vcvtps2ph).
  auto poolVec = VectorType::get({L}, pt.getElementType());
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
            if (poolVec != vec) x = arith::TruncFOp::create(b, loc, poolVec, x);
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

namespace {
/// The fused kernels as convert-photon-to-linalg's AttentionKernelProvider.
class CPUAttentionKernels final : public mlir::photon::AttentionKernelProvider {
public:
  FailureOr<Value> causal(OpBuilder &b, Location loc, Value q, Value k, Value v, double scale,
                          RankedTensorType resultType) const override {
    return mlir::photon::emitFusedCausalAttention(b, loc, q, k, v, scale, resultType);
  }
  FailureOr<Value> cached(OpBuilder &b, Location loc, const mlir::photon::PagedCache &cache,
                          Value q, int64_t layer, double scale,
                          int64_t parallelMinKeys) const override {
    return mlir::photon::emitFusedCachedAttention(b, loc, cache, q, layer, scale,
                                                  parallelMinKeys);
  }
  LogicalResult kvAppend(OpBuilder &b, Location loc, const mlir::photon::PagedCache &cache,
                         Value k, Value v, int64_t layer) const override {
    return mlir::photon::emitVectorKvAppend(b, loc, cache, k, v, layer);
  }
};
} // namespace

const mlir::photon::AttentionKernelProvider &mlir::photon::cpuAttentionKernels() {
  static const CPUAttentionKernels kernels;
  return kernels;
}
