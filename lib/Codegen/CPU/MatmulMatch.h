//===- MatmulMatch.h - the x * W^T generic shapes the matmul passes match -===//
//
// photon-fuse-norm-matmul (on tensors) and photon-matmul-kernels (on memrefs) both look for
// the generic convert-photon-to-linalg emits for photon.linear / lm_head / SwiGLU,
// y[m, n] += x[m, k] * w[n, k], and for its RMSNorm-fused form; the structural part of
// that match (loops, indexing maps, body) lives here, the type checks stay with each pass.
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_LIB_TRANSFORMS_MATMULMATCH_H
#define PHOTON_LIB_TRANSFORMS_MATMULMATCH_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/IR/AffineMap.h"
#include "mlir/IR/Matchers.h"

#include <initializer_list>
#include <optional>

namespace mlir {
namespace photon {

/// Loops (m, n, k) = (parallel, parallel, reduction) and, per operand in order (inputs,
/// then the init), the loop dims its indexing map reads.
inline bool hasMatmulLoops(linalg::GenericOp op,
                           std::initializer_list<std::initializer_list<unsigned>> operandDims) {
  if (op.getNumLoops() != 3 || op.getNumDpsInits() != 1 ||
      op->getNumOperands() != static_cast<unsigned>(operandDims.size()))
    return false;
  auto it = op.getIteratorTypesArray();
  if (it[0] != utils::IteratorType::parallel || it[1] != utils::IteratorType::parallel ||
      it[2] != utils::IteratorType::reduction)
    return false;
  MLIRContext *ctx = op.getContext();
  auto maps = op.getIndexingMapsArray();
  size_t i = 0;
  for (auto dims : operandDims) {
    SmallVector<AffineExpr> exprs;
    for (unsigned d : dims) exprs.push_back(getAffineDimExpr(d, ctx));
    if (maps[i++] != AffineMap::get(3, 0, exprs, ctx)) return false;
  }
  return true;
}

/// True if the binary op's operands are {a, b} in either order.
inline bool usesPair(Operation *bin, Value a, Value b) {
  return bin->getNumOperands() == 2 &&
         ((bin->getOperand(0) == a && bin->getOperand(1) == b) ||
          (bin->getOperand(0) == b && bin->getOperand(1) == a));
}

/// y[m, n] += x[m, k] * w[n, k]: inputs x, w and init y with those maps, body
/// `%p = mulf x, w; %s = addf y, %p; yield %s` (either operand order). Types unchecked.
inline bool isMatmulTStructure(linalg::GenericOp op) {
  if (op.getNumDpsInputs() != 2 || !hasMatmulLoops(op, {{0, 2}, {1, 2}, {0, 1}})) return false;
  Block &body = op.getRegion().front();
  if (body.getOperations().size() != 3) return false;
  auto mul = dyn_cast<arith::MulFOp>(&body.front());
  auto add = dyn_cast_or_null<arith::AddFOp>(mul ? mul->getNextNode() : nullptr);
  auto yield = dyn_cast<linalg::YieldOp>(body.getTerminator());
  if (!mul || !add || !yield || yield.getNumOperands() != 1 || yield.getOperand(0) != add)
    return false;
  return usesPair(mul, body.getArgument(0), body.getArgument(1)) &&
         usesPair(add, body.getArgument(2), mul.getResult());
}

/// How the weight operand of a matmul generic is read (photon-compile --weights, the blob
/// formats of docs/artifact.md): f32 as is; f16 / bf16 widened by `arith.extf` in the body;
/// q8 as `sitofp(q[n, k]) * extf(d[n, k floordiv 32])` with a third input d.
enum class WeightForm { F32, Half, Q8, Q4 };

/// The q4 body's widening of byte `p` with scale `d` at k index `linalg.index 2`
/// (convert-photon-to-linalg's dequantQ4): (select(k % 32 >= 16, p >> 4, p & 15) - 8) * d.
inline bool isDequantQ4(Value wv, Value p, Value d) {
  auto cst = [](Value v, int64_t want) {
    APInt c;
    if (matchPattern(v, m_ConstantInt(&c))) return c.getSExtValue() == want;
    return false;
  };
  auto mul = wv.getDefiningOp<arith::MulFOp>();
  if (!mul) return false;
  auto qf = mul.getLhs().getDefiningOp<arith::SIToFPOp>();
  auto df = mul.getRhs().getDefiningOp<arith::ExtFOp>();
  if (!qf || !df || df.getIn() != d) return false;
  auto q = qf.getIn().getDefiningOp<arith::SubIOp>();
  if (!q || !cst(q.getRhs(), 8)) return false;
  auto sel = q.getLhs().getDefiningOp<arith::SelectOp>();
  if (!sel) return false;
  auto sh = sel.getTrueValue().getDefiningOp<arith::ShRUIOp>();
  auto lo = sel.getFalseValue().getDefiningOp<arith::AndIOp>();
  auto hi = sel.getCondition().getDefiningOp<arith::CmpIOp>();
  if (!sh || !lo || !hi || sh.getLhs() != p || !cst(sh.getRhs(), 4) || lo.getLhs() != p ||
      !cst(lo.getRhs(), 15) || hi.getPredicate() != arith::CmpIPredicate::uge ||
      !cst(hi.getRhs(), 16))
    return false;
  auto r = hi.getLhs().getDefiningOp<arith::RemUIOp>();
  auto k = r ? r.getLhs().getDefiningOp<linalg::IndexOp>() : linalg::IndexOp();
  return r && cst(r.getRhs(), 32) && k && k.getDim() == 2;
}

/// The matmul generic with a dequantized weight, y[m, n] += x[m, k] * W(n, k): inputs x, w
/// (f16 / bf16 / i8) [, d (f16 scales, q8 only)] and init y, maps (m, k), (n, k)
/// [, (n, k floordiv group)], (m, n), body
///   half: `%e = extf w; %p = mulf x, %e; %s = addf y, %p`
///   q8:   `%q = sitofp w; %d = extf d; %e = mulf %q, %d; %p = mulf x, %e; %s = addf y, %p`
/// (either operand order in mulf / addf). Returns the form and sets `group` (q8) or fails.
/// The plain f32 body is isMatmulTStructure's. Element types unchecked.
inline std::optional<WeightForm> matchDequantMatmulT(linalg::GenericOp op, int64_t &group) {
  unsigned nIn = op.getNumDpsInputs();
  if (nIn != 2 && nIn != 3) return std::nullopt;
  MLIRContext *ctx = op.getContext();
  bool q4Map = false;
  if (nIn == 2) {
    if (!hasMatmulLoops(op, {{0, 2}, {1, 2}, {0, 1}})) return std::nullopt;
  } else {
    if (op.getNumLoops() != 3 || op.getNumDpsInits() != 1) return std::nullopt;
    auto maps = op.getIndexingMapsArray();
    auto d = [&](unsigned i) { return getAffineDimExpr(i, ctx); };
    auto m2 = [&](AffineExpr a, AffineExpr b) { return AffineMap::get(3, 0, {a, b}, ctx); };
    if (maps[0] != m2(d(0), d(2)) || maps[3] != m2(d(0), d(1))) return std::nullopt;
    // q8 reads w at (n, k); q4 its packed bytes at (n, k floordiv 32 * 16 + k mod 16)
    q4Map = maps[1] == m2(d(1), d(2).floorDiv(32) * 16 + d(2) % 16);
    if (!q4Map && maps[1] != m2(d(1), d(2))) return std::nullopt;
    auto sm = maps[2];
    if (sm.getNumResults() != 2 || sm.getResult(0) != d(1)) return std::nullopt;
    auto bin = dyn_cast<AffineBinaryOpExpr>(sm.getResult(1));
    auto c = bin ? dyn_cast<AffineConstantExpr>(bin.getRHS()) : AffineConstantExpr();
    if (!bin || bin.getKind() != AffineExprKind::FloorDiv || bin.getLHS() != d(2) || !c ||
        c.getValue() < 1)
      return std::nullopt;
    group = c.getValue();
    if (q4Map && group != 32) return std::nullopt;
    auto it = op.getIteratorTypesArray();
    if (it[0] != utils::IteratorType::parallel || it[1] != utils::IteratorType::parallel ||
        it[2] != utils::IteratorType::reduction)
      return std::nullopt;
  }
  Block &body = op.getRegion().front();
  Value x = body.getArgument(0), w = body.getArgument(1), acc = body.getArgument(nIn);
  auto yield = dyn_cast<linalg::YieldOp>(body.getTerminator());
  if (!yield || yield.getNumOperands() != 1) return std::nullopt;
  auto add = yield.getOperand(0).getDefiningOp<arith::AddFOp>();
  if (!add) return std::nullopt;
  Value pv = add.getLhs() == acc ? add.getRhs() : add.getLhs();
  auto mul = pv.getDefiningOp<arith::MulFOp>();
  if (!mul || !usesPair(add, acc, mul.getResult())) return std::nullopt;
  Value wv = mul.getLhs() == x ? mul.getRhs() : mul.getLhs();
  if (!usesPair(mul, x, wv)) return std::nullopt;
  if (nIn == 2) {
    auto ext = wv.getDefiningOp<arith::ExtFOp>();
    if (!ext || ext.getIn() != w || body.getOperations().size() != 4) return std::nullopt;
    return WeightForm::Half;
  }
  auto dq = wv.getDefiningOp<arith::MulFOp>();
  if (q4Map) {
    if (!isDequantQ4(wv, w, body.getArgument(2))) return std::nullopt;
    return WeightForm::Q4;
  }
  if (!dq || body.getOperations().size() != 6) return std::nullopt;
  auto q = dq.getLhs().getDefiningOp<arith::SIToFPOp>();
  auto s = dq.getRhs().getDefiningOp<arith::ExtFOp>();
  if (!q) {
    q = dq.getRhs().getDefiningOp<arith::SIToFPOp>();
    s = dq.getLhs().getDefiningOp<arith::ExtFOp>();
  }
  if (!q || !s || q.getIn() != w || s.getIn() != body.getArgument(2)) return std::nullopt;
  return WeightForm::Q8;
}

/// The RMSNorm-fused form y[m, n] += ((x[m, k] * r[m]) * g[k]) * w[n, k]: inputs x, r, g,
/// w and init y, body of three mulf and an addf in that order (either operand order in
/// each). Types unchecked.
inline bool isNormMatmulTStructure(linalg::GenericOp op) {
  if (op.getNumDpsInputs() != 4 || !hasMatmulLoops(op, {{0, 2}, {0}, {2}, {1, 2}, {0, 1}}))
    return false;
  Block &body = op.getRegion().front();
  if (body.getOperations().size() != 5) return false;
  auto m1 = dyn_cast<arith::MulFOp>(&body.front());
  auto m2 = dyn_cast_or_null<arith::MulFOp>(m1 ? m1->getNextNode() : nullptr);
  auto m3 = dyn_cast_or_null<arith::MulFOp>(m2 ? m2->getNextNode() : nullptr);
  auto add = dyn_cast_or_null<arith::AddFOp>(m3 ? m3->getNextNode() : nullptr);
  auto yield = dyn_cast<linalg::YieldOp>(body.getTerminator());
  if (!m1 || !m2 || !m3 || !add || !yield || yield.getNumOperands() != 1 ||
      yield.getOperand(0) != add)
    return false;
  return usesPair(m1, body.getArgument(0), body.getArgument(1)) &&
         usesPair(m2, m1.getResult(), body.getArgument(2)) &&
         usesPair(m3, m2.getResult(), body.getArgument(3)) &&
         usesPair(add, body.getArgument(4), m3.getResult());
}

} // namespace photon
} // namespace mlir

#endif // PHOTON_LIB_TRANSFORMS_MATMULMATCH_H
