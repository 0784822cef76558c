//===- FuseNormMatmul.cpp - RMSNorm folded into the next x * W^T ---------===//
//
// photon-fuse-norm-matmul: convert-photon-to-linalg lowers photon.rms_norm to a row sum of
// squares ss[m] and the elementwise normalize generic
//   n[m, k] = (x[m, k] * R(ss[m])) * g[k]        R(s) = rsqrt(s / D + eps)
// and every x * W^T to y[m, n] += n[m, k] * w[n, k]. For each such matmul whose x operand is
// n (directly, or through a collapse_shape of an expand_shape that restores n's type, the
// reshapes linear() puts around a 3-D activation), this pass makes the matmul read x, the
// per-row scale r[m] = R(ss[m]) and the gain g[k] instead:
//   r = generic {r[m] = R(ss[m])}                        (once per normalize generic)
//   y[m, n] += ((x[m, k] * r[m]) * g[k]) * w[n, k]
// The normalized activations are then no longer materialized (the normalize generic is
// erased once nothing else uses it; if another op uses n, it stays for that op). The fused
// generic is an ordinary linalg.generic, so every later path computes it correctly;
// photon-matmul-kernels recognizes it and applies r * g while packing x (GEMM) or once at
// kernel entry (GEMV).
//
//===----------------------------------------------------------------------===//

#include "photon/Codegen/CPU/Passes.h"

#include "MatmulMatch.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/AffineMap.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Pass/Pass.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/SetVector.h"

namespace mlir {
namespace photon {
#define GEN_PASS_DEF_PHOTONFUSENORMMATMUL
#include "photon/Codegen/CPU/Passes.h.inc"

namespace {

/// A normalize generic n[m, k] = (x[m, k] * R) * g[k] where R is computed in the body
/// from ss[m] (block argument 1) and values defined outside the generic only.
struct NormMatch {
  linalg::GenericOp op;
  Value x, ss, g;
  SmallVector<Operation *> rSlice; // body ops computing R, in order
  Value r;                         // R in the body
};

bool isF32(Value v) {
  auto t = dyn_cast<ShapedType>(v.getType());
  return t && t.getElementType().isF32();
}

/// The other operand of a binary op `bin` if one of its operands is `v`.
Value otherOperand(Operation *bin, Value v) {
  if (bin->getOperand(0) == v) return bin->getOperand(1);
  if (bin->getOperand(1) == v) return bin->getOperand(0);
  return {};
}

/// Collects the body ops `v` depends on; fails if any of them reads a block argument other
/// than `allowed` or is not a pure arith/math op (e.g. linalg.index).
bool collectSlice(Value v, Block &body, Value allowed, llvm::SetVector<Operation *> &slice) {
  if (auto arg = dyn_cast<BlockArgument>(v)) return arg == allowed;
  Operation *def = v.getDefiningOp();
  if (!def || def->getBlock() != &body) return true; // defined outside the generic
  if (slice.contains(def)) return true;
  if (def->getNumRegions() != 0 || def->getNumResults() != 1 || !isPure(def)) return false;
  if (isa<linalg::IndexOp>(def)) return false;
  for (Value o : def->getOperands())
    if (!collectSlice(o, body, allowed, slice)) return false;
  slice.insert(def);
  return true;
}

std::optional<NormMatch> matchNorm(linalg::GenericOp op) {
  if (!op.hasPureTensorSemantics() || op.getNumDpsInputs() != 3 || op.getNumDpsInits() != 1 ||
      op.getNumResults() != 1 || op.getNumLoops() != 2)
    return std::nullopt;
  if (op.getNumReductionLoops() != 0) return std::nullopt;
  MLIRContext *ctx = op.getContext();
  auto d = [&](unsigned i) { return getAffineDimExpr(i, ctx); };
  auto maps = op.getIndexingMapsArray();
  if (maps[0] != AffineMap::get(2, 0, {d(0), d(1)}, ctx) ||
      maps[1] != AffineMap::get(2, 0, {d(0)}, ctx) ||
      maps[2] != AffineMap::get(2, 0, {d(1)}, ctx) ||
      maps[3] != AffineMap::get(2, 0, {d(0), d(1)}, ctx))
    return std::nullopt;
  NormMatch m;
  m.op = op;
  m.x = op.getDpsInputs()[0];
  m.ss = op.getDpsInputs()[1];
  m.g = op.getDpsInputs()[2];
  if (!isF32(m.x) || !isF32(m.ss) || !isF32(m.g) || !isF32(op.getResult(0)))
    return std::nullopt;
  Block &body = op.getRegion().front();
  Value ax = body.getArgument(0), as = body.getArgument(1), ag = body.getArgument(2);
  auto yield = cast<linalg::YieldOp>(body.getTerminator());
  // yield (x * R) * g, either operand order in both products
  auto outer = yield.getOperand(0).getDefiningOp<arith::MulFOp>();
  if (!outer || outer->getBlock() != &body) return std::nullopt;
  Value xr = otherOperand(outer, ag);
  auto inner = xr ? xr.getDefiningOp<arith::MulFOp>() : arith::MulFOp();
  if (!inner || inner->getBlock() != &body || !xr.hasOneUse()) return std::nullopt;
  m.r = otherOperand(inner, ax);
  if (!m.r || m.r == ax || m.r == ag) return std::nullopt;
  llvm::SetVector<Operation *> slice;
  if (!collectSlice(m.r, body, as, slice)) return std::nullopt;
  for (Operation &op : body) // in body order
    if (slice.contains(&op)) m.rSlice.push_back(&op);
  return m;
}

/// True if `op` is y[m, n] += x[m, k] * w[n, k] on tensors (f32).
bool isTensorMatmulT(linalg::GenericOp op) {
  return op.hasPureTensorSemantics() && isMatmulTStructure(op) && isF32(op.getDpsInputs()[0]) &&
         isF32(op.getDpsInputs()[1]) && isF32(op.getDpsInits()[0]);
}

/// The value `v` is a copy of: v itself, or the source of expand_shape when `v` is
/// collapse_shape(expand_shape(s)) with the same reassociation and s's type.
Value lookThroughReshapes(Value v) {
  auto col = v.getDefiningOp<tensor::CollapseShapeOp>();
  if (!col) return v;
  auto exp = col.getSrc().getDefiningOp<tensor::ExpandShapeOp>();
  if (!exp || exp.getSrc().getType() != col.getResultType() ||
      exp.getReassociationIndices() != col.getReassociationIndices())
    return v;
  return exp.getSrc();
}

struct FuseNormMatmulPass : public impl::PhotonFuseNormMatmulBase<FuseNormMatmulPass> {

  void runOnOperation() override {
    // matmuls grouped by the normalize generic whose result they read
    llvm::MapVector<Operation *, SmallVector<linalg::GenericOp>> groups;
    getOperation().walk([&](linalg::GenericOp op) {
      if (!isTensorMatmulT(op)) return;
      Value x = lookThroughReshapes(op.getDpsInputs()[0]);
      auto norm = x.getDefiningOp<linalg::GenericOp>();
      if (!norm || !matchNorm(norm)) return;
      groups[norm].push_back(op);
    });
    for (auto &[normOp, matmuls] : groups) {
      NormMatch nm = *matchNorm(cast<linalg::GenericOp>(normOp));
      Value r = buildScale(nm);
      for (linalg::GenericOp mm : matmuls) fuse(mm, nm, r);
      eraseIfDead(nm.op);
    }
  }

  /// r[m] = R(ss[m]): the body slice of the normalize generic, cloned.
  Value buildScale(NormMatch &nm) {
    OpBuilder b(nm.op);
    b.setInsertionPointAfter(nm.op);
    Location loc = nm.op.getLoc();
    Value init = tensor::EmptyOp::create(b, loc, ArrayRef<OpFoldResult>{tensor::getMixedSize(b, loc, nm.ss, 0)},
                                         b.getF32Type());
    AffineMap id = b.getMultiDimIdentityMap(1);
    Block &body = nm.op.getRegion().front();
    auto g = linalg::GenericOp::create(
        b, loc, TypeRange{init.getType()}, ValueRange{nm.ss}, ValueRange{init},
        ArrayRef<AffineMap>{id, id}, ArrayRef<utils::IteratorType>{utils::IteratorType::parallel},
        [&](OpBuilder &nb, Location l, ValueRange a) {
          IRMapping map;
          map.map(body.getArgument(1), a[0]);
          for (Operation *op : nm.rSlice) nb.clone(*op, map);
          linalg::YieldOp::create(nb, l, ValueRange{map.lookupOrDefault(nm.r)});
        });
    return g.getResult(0);
  }

  /// y[m, n] += ((x[m, k] * r[m]) * g[k]) * w[n, k], replacing `mm`.
  void fuse(linalg::GenericOp mm, NormMatch &nm, Value r) {
    OpBuilder b(mm);
    Location loc = mm.getLoc();
    MLIRContext *ctx = mm.getContext();
    auto d = [&](unsigned i) { return getAffineDimExpr(i, ctx); };
    SmallVector<AffineMap> maps{AffineMap::get(3, 0, {d(0), d(2)}, ctx),
                                AffineMap::get(3, 0, {d(0)}, ctx),
                                AffineMap::get(3, 0, {d(2)}, ctx),
                                AffineMap::get(3, 0, {d(1), d(2)}, ctx),
                                AffineMap::get(3, 0, {d(0), d(1)}, ctx)};
    // the products of the matmul keep its fastmath flags (reassociation of the sum)
    Block &mmBody = mm.getRegion().front();
    auto mmMul = cast<arith::MulFOp>(&mmBody.front());
    auto mmAdd = cast<arith::AddFOp>(mmMul->getNextNode());
    auto mulFM = mmMul.getFastmath(), addFM = mmAdd.getFastmath();
    auto fused = linalg::GenericOp::create(
        b, loc, mm.getResultTypes(), ValueRange{nm.x, r, nm.g, mm.getDpsInputs()[1]},
        mm.getDpsInits(), maps, mm.getIteratorTypesArray(),
        [&](OpBuilder &nb, Location l, ValueRange a) {
          Value xr = arith::MulFOp::create(nb, l, a[0], a[1]);
          Value xn = arith::MulFOp::create(nb, l, xr, a[2]);
          Value p = arith::MulFOp::create(nb, l, xn, a[3], mulFM);
          Value s = arith::AddFOp::create(nb, l, a[4], p, addFM);
          linalg::YieldOp::create(nb, l, ValueRange{s});
        });
    Value oldX = mm.getDpsInputs()[0];
    mm.getResult(0).replaceAllUsesWith(fused.getResult(0));
    mm.erase();
    // the collapse_shape(expand_shape(n)) the matmul read, if now unused
    if (auto col = oldX.getDefiningOp<tensor::CollapseShapeOp>()) {
      auto exp = col.getSrc().getDefiningOp<tensor::ExpandShapeOp>();
      if (col->use_empty()) col.erase();
      if (exp && exp->use_empty()) exp.erase();
    }
  }

  /// Erases the normalize generic if nothing reads its values any more: tensor.dim ops
  /// of an expand_shape of it (linear() reshapes the norm's result to 3-D and reads its
  /// sizes) are replaced by the expand's output sizes first.
  void eraseIfDead(linalg::GenericOp op) {
    for (Operation *user : llvm::make_early_inc_range(op->getUsers())) {
      auto exp = dyn_cast<tensor::ExpandShapeOp>(user);
      if (!exp) continue;
      SmallVector<OpFoldResult> sizes = exp.getMixedOutputShape();
      for (Operation *u : llvm::make_early_inc_range(exp->getUsers())) {
        auto dimOp = dyn_cast<tensor::DimOp>(u);
        if (!dimOp) continue;
        std::optional<int64_t> i = dimOp.getConstantIndex();
        if (!i || *i < 0 || *i >= (int64_t)sizes.size()) continue;
        OpBuilder b(dimOp);
        dimOp.replaceAllUsesWith(getValueOrCreateConstantIndexOp(b, dimOp.getLoc(), sizes[*i]));
        dimOp.erase();
      }
      if (exp->use_empty()) exp.erase();
    }
    if (op->use_empty()) op.erase();
  }
};
} // namespace

} // namespace photon
} // namespace mlir
