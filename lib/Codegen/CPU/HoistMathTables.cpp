//===- HoistMathTables.cpp - loop-invariant math of generics into tables --===//
//
// photon-hoist-math-tables: the math sub-expressions of an elementwise tensor generic that
// do not depend on every loop (RoPE's cos/sin: not on the head) are computed once per the
// loops they depend on, into table generics the generic then reads.
//
//===----------------------------------------------------------------------===//

#include "photon/Codegen/CPU/Passes.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/AffineMap.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/SetVector.h"

namespace mlir {
namespace photon {
#define GEN_PASS_DEF_PHOTONHOISTMATHTABLES
#include "photon/Codegen/CPU/Passes.h.inc"

namespace {
/// Bit d set: the value depends on loop d of the generic.
using DimSet = uint64_t;

/// Loop dependences of every value of `op`'s body (values defined outside: none).
/// Results of ops that are not pure or have regions count as depending on every loop, so
/// they are never moved.
DenseMap<Value, DimSet> bodyDims(linalg::GenericOp op, DimSet full) {
  DenseMap<Value, DimSet> dims;
  Block &body = op.getRegion().front();
  auto maps = op.getIndexingMapsArray();
  for (OpOperand &opnd : op->getOpOperands()) {
    BlockArgument arg = op.getMatchingBlockArgument(&opnd);
    DimSet s = 0;
    if (op.isDpsInit(&opnd)) s = full;
    else
      for (unsigned d = 0; d < op.getNumLoops(); ++d)
        if (maps[opnd.getOperandNumber()].isFunctionOfDim(d)) s |= DimSet(1) << d;
    dims[arg] = s;
  }
  for (Operation &o : body.without_terminator()) {
    DimSet s = 0;
    if (auto idx = dyn_cast<linalg::IndexOp>(o)) {
      s = DimSet(1) << idx.getDim();
    } else if (o.getNumRegions() != 0 || !isPure(&o)) {
      s = full;
    } else {
      for (Value v : o.getOperands()) s |= dims.lookup(v);
    }
    for (Value r : o.getResults()) dims[r] = s;
  }
  return dims;
}

/// Body ops computing `v`, in body order; true if one of them is a math op.
bool sliceOf(Value v, Block &body, llvm::SetVector<Operation *> &slice) {
  SmallVector<Value> work{v};
  while (!work.empty()) {
    Operation *def = work.pop_back_val().getDefiningOp();
    if (!def || def->getBlock() != &body || slice.contains(def)) continue;
    slice.insert(def);
    for (Value o : def->getOperands()) work.push_back(o);
  }
  bool math = false;
  for (Operation *o : slice) math |= o->getDialect() && o->getDialect()->getNamespace() == "math";
  return math;
}

/// Moves the math sub-expressions of an all-parallel tensor generic that do not depend on
/// every loop into table generics over the loops they do depend on (one table generic per
/// set of loops, one result per value); the generic then reads the tables. Returns the new
/// table generics (empty if nothing was moved).
SmallVector<linalg::GenericOp> hoistTables(linalg::GenericOp op) {
  SmallVector<linalg::GenericOp> tables;
  unsigned n = op.getNumLoops();
  if (!op.hasPureTensorSemantics() || n < 2 || n > 63 || op.getNumReductionLoops() != 0 ||
      op.getNumDpsInits() < 1)
    return tables;
  for (OpOperand &out : op.getDpsInitsMutable())
    if (!op.getMatchingIndexingMap(&out).isIdentity()) return tables;
  Value init = op.getDpsInits()[0]; // its sizes are the loop sizes
  DimSet full = (DimSet(1) << n) - 1;
  Block &body = op.getRegion().front();
  DenseMap<Value, DimSet> dims = bodyDims(op, full);
  // values used by an op that depends on every loop (or yielded) but depending on fewer,
  // float-typed, computed with a math op: grouped by their loop set
  llvm::MapVector<DimSet, SmallVector<Value>> groups;
  for (Operation &o : body) {
    bool fullUser = isa<linalg::YieldOp>(o) ||
                    (o.getNumResults() > 0 && dims.lookup(o.getResult(0)) == full);
    if (!fullUser) continue;
    for (Value v : o.getOperands()) {
      auto def = v.getDefiningOp();
      if (!def || def->getBlock() != &body || !isa<FloatType>(v.getType())) continue;
      DimSet s = dims.lookup(v);
      if (s == 0 || s == full) continue;
      llvm::SetVector<Operation *> slice;
      if (!sliceOf(v, body, slice)) continue;
      auto &g = groups[s];
      if (!llvm::is_contained(g, v)) g.push_back(v);
    }
  }
  if (groups.empty()) return tables;

  OpBuilder b(op);
  Location loc = op.getLoc();
  MLIRContext *ctx = op.getContext();
  SmallVector<Value> newInputs(op.getDpsInputs());
  SmallVector<AffineMap> newMaps;
  for (OpOperand *in : op.getDpsInputOperands()) newMaps.push_back(op.getMatchingIndexingMap(in));
  SmallVector<Value> replaced; // body values now read from the tables, in input order
  auto oldMaps = op.getIndexingMapsArray();
  for (auto &group : groups) {
    // (not a structured binding: the table body's lambda captures `vals`)
    auto s = group.first;
    auto &vals = group.second;
    SmallVector<unsigned> loops; // the table's dims, in loop order
    SmallVector<int64_t> pos(n, -1);
    for (unsigned d = 0; d < n; ++d)
      if (s & (DimSet(1) << d)) {
        pos[d] = loops.size();
        loops.push_back(d);
      }
    unsigned tn = loops.size();
    SmallVector<OpFoldResult> sizes;
    for (unsigned d : loops) sizes.push_back(tensor::getMixedSize(b, loc, init, d));
    // the slice of every value of the group, in body order
    llvm::SetVector<Operation *> all;
    for (Value v : vals) sliceOf(v, body, all);
    SmallVector<Operation *> ordered;
    for (Operation &o : body)
      if (all.contains(&o)) ordered.push_back(&o);
    // inputs the slice reads, their maps on the table's dims
    SmallVector<Value> tIns;
    SmallVector<AffineMap> tMaps;
    SmallVector<BlockArgument> tArgs;
    SmallVector<AffineExpr> toTable(n, getAffineConstantExpr(0, ctx));
    for (unsigned d : loops) toTable[d] = getAffineDimExpr(pos[d], ctx);
    for (OpOperand *in : op.getDpsInputOperands()) {
      BlockArgument arg = op.getMatchingBlockArgument(in);
      bool used = llvm::any_of(arg.getUsers(), [&](Operation *u) { return all.contains(u); });
      if (!used) continue;
      tIns.push_back(in->get());
      tMaps.push_back(oldMaps[in->getOperandNumber()].replaceDimsAndSymbols(toTable, {}, tn, 0));
      tArgs.push_back(arg);
    }
    SmallVector<Value> tOuts;
    for (Value v : vals) {
      tOuts.push_back(tensor::EmptyOp::create(b, loc, sizes, v.getType()));
      tMaps.push_back(AffineMap::getMultiDimIdentityMap(tn, ctx));
    }
    SmallVector<Type> tTypes;
    for (Value t : tOuts) tTypes.push_back(t.getType());
    auto table = linalg::GenericOp::create(
        b, loc, tTypes, tIns, tOuts, tMaps,
        SmallVector<utils::IteratorType>(tn, utils::IteratorType::parallel),
        [&](OpBuilder &nb, Location l, ValueRange a) {
          IRMapping map;
          for (auto [i, arg] : llvm::enumerate(tArgs)) map.map(arg, a[i]);
          for (Operation *o : ordered) {
            if (auto idx = dyn_cast<linalg::IndexOp>(o)) {
              map.map(idx.getResult(),
                      linalg::IndexOp::create(nb, l, pos[idx.getDim()]).getResult());
              continue;
            }
            nb.clone(*o, map);
          }
          SmallVector<Value> ys;
          for (Value v : vals) ys.push_back(map.lookup(v));
          linalg::YieldOp::create(nb, l, ys);
        });
    tables.push_back(table);
    SmallVector<AffineExpr> tableDims;
    for (unsigned d : loops) tableDims.push_back(getAffineDimExpr(d, ctx));
    for (auto [i, v] : llvm::enumerate(vals)) {
      newInputs.push_back(table.getResult(i));
      newMaps.push_back(AffineMap::get(n, 0, tableDims, ctx));
      replaced.push_back(v);
    }
  }
  for (OpOperand &out : op.getDpsInitsMutable()) newMaps.push_back(op.getMatchingIndexingMap(&out));
  auto fused = linalg::GenericOp::create(b, loc, op.getResultTypes(), newInputs, op.getDpsInits(),
                                         newMaps, op.getIteratorTypesArray());
  fused.getRegion().takeBody(op.getRegion());
  Block &nbody = fused.getRegion().front();
  unsigned at = op.getNumDpsInputs();
  for (auto [i, v] : llvm::enumerate(replaced)) {
    BlockArgument arg = nbody.insertArgument(at + i, v.getType(), loc);
    v.replaceAllUsesWith(arg);
  }
  // the moved computations, now unused
  SmallVector<Operation *> bodyOps;
  for (Operation &o : nbody.without_terminator()) bodyOps.push_back(&o);
  for (Operation *o : llvm::reverse(bodyOps))
    if (o->use_empty() && isPure(o)) o->erase();
  op->replaceAllUsesWith(fused->getResults());
  op.erase();
  return tables;
}

struct HoistMathTablesPass : public impl::PhotonHoistMathTablesBase<HoistMathTablesPass> {
  void runOnOperation() override {
    SmallVector<linalg::GenericOp> work;
    getOperation().walk([&](linalg::GenericOp op) { work.push_back(op); });
    while (!work.empty()) {
      // tables have fewer loops than the generic they came from, so this terminates
      for (linalg::GenericOp t : hoistTables(work.pop_back_val())) work.push_back(t);
    }
  }
};
} // namespace

} // namespace photon
} // namespace mlir
