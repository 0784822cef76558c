//===- GpuSplitKAttention.cpp - split-K (flash-decoding) cached attention -----------===//
//
// After photon-gpu-host-loops-to-kernels the cached attention over the paged pool is one
// kernel: grid (B, n), one thread per head, and each thread runs the online softmax over
// every key of its sequence as written by the conversion:
//
//   acc = 0 (private row of hd floats)
//   m, l = scf.for j = lb to ub step st iter_args(m = -inf, l = 0):
//     s = score(j); mNew = max(m, s); corr = exp(m - mNew); p = exp(s - mNew)
//     acc[d] = acc[d] * corr + p * v_j[d]        (for every d)
//     yield mNew, l * corr + p
//   out[...] = f(acc, l)                          (the loops after the key loop)
//
// At decode (n = 1, small B) that is B blocks of H threads, each walking the whole cache:
// a few warps on a GPU with a hundred SMs. This pass splits the keys of each (sequence,
// query, head) across `splits` thread blocks (grid z; flash-decoding): block z runs the same
// loop over keys lb + z*st, lb + (z+splits)*st, ... and writes its partial (m_z, l_z, acc_z)
// to a device buffer; a second kernel (grid (B, n), the same threads) combines them,
//   M = max_z m_z, l = sum_z l_z exp(m_z - M), acc[d] = sum_z acc_z[d] exp(m_z - M),
// and runs the loops that followed the key loop on the combined values. A split without
// keys has m_z = -inf, l_z = 0, acc_z = 0 and contributes nothing.
//
// The launch is rewritten only when it has exactly this structure (checked op by op: the
// iter_args' initial values, the max / exp / update chain, every store inside the key loop
// an `acc * corr + p * x` update of a private row zeroed before the loop, nothing after the
// loop but code that reads the rows and l); anything else is left as it is.
//
//===----------------------------------------------------------------------===//
#include "photon/Codegen/CUDA/CudaPipeline.h"

#include "DeviceAlloc.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include <limits>

using namespace mlir;

namespace photon::cuda {
#define GEN_PASS_DEF_PHOTONGPUSPLITKATTENTION
#include "photon/Codegen/CUDA/Passes.h.inc"

namespace {

bool isFloatConstant(Value v, double x) {
  auto c = v.getDefiningOp<arith::ConstantOp>();
  if (!c)
    return false;
  auto f = dyn_cast<FloatAttr>(c.getValue());
  return f && f.getValueAsDouble() == x;
}

/// `v` = OpTy(a, other) or OpTy(other, a) (OpTy commutative); sets `other`.
template <typename OpTy> bool matchCommutative(Value v, Value a, Value &other) {
  auto op = v.getDefiningOp<OpTy>();
  if (!op)
    return false;
  if (op.getLhs() == a) {
    other = op.getRhs();
    return true;
  }
  if (op.getRhs() == a) {
    other = op.getLhs();
    return true;
  }
  return false;
}

/// `v` = exp(a - b).
bool isExpOfDifference(Value v, Value a, Value b) {
  auto e = v.getDefiningOp<math::ExpOp>();
  if (!e)
    return false;
  auto sub = e.getOperand().getDefiningOp<arith::SubFOp>();
  return sub && sub.getLhs() == a && sub.getRhs() == b;
}

/// The online-softmax key loop of a cached-attention kernel and the buffers it updates.
struct Candidate {
  gpu::LaunchOp launch;
  scf::ForOp keys;
  Value corr, p;                          // exp(m - mNew), exp(s - mNew)
  SmallVector<memref::AllocaOp> rows;     // private accumulator rows memref<hd x f32>
  SmallVector<Operation *> after;         // the ops after the key loop (to the combine)
  SmallVector<Operation *> needed;        // ops before the key loop whose values they read
};

/// Checks the key loop's softmax recurrence; sets corr and p.
bool matchRecurrence(Candidate &c) {
  scf::ForOp k = c.keys;
  if (k.getNumResults() != 2 || !k.getResult(0).getType().isF32() ||
      !k.getResult(1).getType().isF32())
    return false;
  if (!isFloatConstant(k.getInitArgs()[0], -std::numeric_limits<double>::infinity()) ||
      !isFloatConstant(k.getInitArgs()[1], 0.0))
    return false;
  Value m = k.getRegionIterArgs()[0], l = k.getRegionIterArgs()[1];
  auto yield = cast<scf::YieldOp>(k.getBody()->getTerminator());
  Value mNew = yield.getOperand(0), lNew = yield.getOperand(1);
  Value s;
  if (!matchCommutative<arith::MaximumFOp>(mNew, m, s))
    return false;
  // lNew = l * corr + p with corr = exp(m - mNew), p = exp(s - mNew).
  auto add = lNew.getDefiningOp<arith::AddFOp>();
  if (!add)
    return false;
  for (auto [x, y] : {std::pair(add.getLhs(), add.getRhs()), std::pair(add.getRhs(), add.getLhs())}) {
    Value corr;
    if (matchCommutative<arith::MulFOp>(x, l, corr) && isExpOfDifference(corr, m, mNew) &&
        isExpOfDifference(y, s, mNew)) {
      c.corr = corr;
      c.p = y;
      return true;
    }
  }
  return false;
}

/// A private row of the launch: memref.alloca of a static rank-1 f32 memref in its body.
memref::AllocaOp privateRow(Value mem, gpu::LaunchOp launch) {
  auto a = mem.getDefiningOp<memref::AllocaOp>();
  if (!a || a->getParentOp() != launch.getOperation())
    return {};
  auto t = a.getType();
  if (t.getRank() != 1 || !t.hasStaticShape() || !t.getElementType().isF32() ||
      !t.getLayout().isIdentity())
    return {};
  return a;
}

/// Every write inside the key loop is `row[i] = row[i] * corr + p * x` into a private row,
/// and the rows are read there only by these updates.
bool matchUpdates(Candidate &c) {
  bool ok = true;
  DenseSet<Operation *> updateLoads;
  c.keys.getBody()->walk([&](Operation *op) {
    if (!ok)
      return;
    if (auto st = dyn_cast<memref::StoreOp>(op)) {
      memref::AllocaOp row = privateRow(st.getMemRef(), c.launch);
      if (!row) {
        ok = false;
        return;
      }
      auto add = st.getValueToStore().getDefiningOp<arith::AddFOp>();
      if (!add) {
        ok = false;
        return;
      }
      bool matched = false;
      for (auto [x, y] : {std::pair(add.getLhs(), add.getRhs()), std::pair(add.getRhs(), add.getLhs())}) {
        Value old, other;
        if (!matchCommutative<arith::MulFOp>(x, c.corr, old) ||
            !matchCommutative<arith::MulFOp>(y, c.p, other))
          continue;
        auto ld = old.getDefiningOp<memref::LoadOp>();
        if (!ld || ld.getMemRef() != st.getMemRef() || ld.getIndices() != st.getIndices())
          continue;
        updateLoads.insert(ld);
        matched = true;
        break;
      }
      if (!matched) {
        ok = false;
        return;
      }
      if (!llvm::is_contained(c.rows, row))
        c.rows.push_back(row);
      return;
    }
    if (isa<memref::LoadOp>(op))
      return;
    if (!isMemoryEffectFree(op) && !isa<scf::ForOp, scf::YieldOp>(op))
      ok = false;
  });
  if (!ok || c.rows.empty())
    return false;
  // No other read of a row inside the key loop (it would see a partial sum).
  WalkResult r = c.keys.getBody()->walk([&](memref::LoadOp ld) {
    if (privateRow(ld.getMemRef(), c.launch) && !updateLoads.contains(ld))
      return WalkResult::interrupt();
    return WalkResult::advance();
  });
  return !r.wasInterrupted();
}

/// The row is set to 0 before the key loop by a loop `for i in [0, size): row[i] = 0`, and
/// not written anywhere else outside the key loop before it.
bool zeroedBefore(memref::AllocaOp row, Candidate &c) {
  bool zeroed = false;
  for (Operation *user : row->getUsers()) {
    auto st = dyn_cast<memref::StoreOp>(user);
    if (!st || c.keys->isAncestor(st))
      continue;
    auto loop = dyn_cast<scf::ForOp>(st->getParentOp());
    if (!loop || loop->getParentOp() != c.launch.getOperation() || !loop->isBeforeInBlock(c.keys) ||
        !isFloatConstant(st.getValueToStore(), 0.0) || st.getIndices().size() != 1 ||
        st.getIndices()[0] != loop.getInductionVar() || !isConstantIntValue(loop.getLowerBound(), 0) ||
        !isConstantIntValue(loop.getStep(), 1) ||
        !isConstantIntValue(loop.getUpperBound(), row.getType().getDimSize(0)))
      return false;
    zeroed = true;
  }
  return zeroed;
}

/// The ops after the key loop may only be moved to the combine kernel: they read the key
/// loop's sum and the rows and whatever the first part of the kernel computed without
/// writing memory.
bool matchAfter(Candidate &c) {
  Block &body = c.launch.getBody().front();
  for (Operation *op = c.keys->getNextNode(); op && op != body.getTerminator(); op = op->getNextNode())
    c.after.push_back(op);
  if (c.after.empty() || !c.keys.getResult(0).use_empty())
    return false;
  for (Operation *user : c.keys.getResult(1).getUsers())
    if (!llvm::any_of(c.after, [&](Operation *a) { return a->isAncestor(user); }))
      return false;
  for (Operation *a : c.after)
    if (isa<gpu::BarrierOp>(a) || a->walk([](gpu::BarrierOp) { return WalkResult::interrupt(); })
                                      .wasInterrupted())
      return false;
  // What the moved ops read from the part before the key loop is recomputed in the combine
  // kernel: pure ops, reads of buffers other than the rows (the first kernel writes only
  // the rows and its partials), and private scratch of the moved ops alone.
  Block *top = &body;
  SetVector<Operation *> needed;
  bool ok = true;
  std::function<void(Value)> need = [&](Value v) {
    Operation *def = v.getDefiningOp();
    if (!ok || !def || def->getBlock() != top || def == c.keys.getOperation() ||
        llvm::is_contained(c.after, def) || needed.contains(def))
      return;
    if (auto a = dyn_cast<memref::AllocaOp>(def)) {
      if (llvm::is_contained(c.rows, a))
        return; // replaced by the combined row
      ok = llvm::all_of(a->getUsers(), [&](Operation *u) {
        return llvm::any_of(c.after, [&](Operation *x) { return x->isAncestor(u); });
      });
    } else if (auto ld = dyn_cast<memref::LoadOp>(def)) {
      ok = !privateRow(ld.getMemRef(), c.launch);
    } else {
      ok = def->getNumRegions() == 0 && isMemoryEffectFree(def);
    }
    if (!ok)
      return;
    for (Value o : def->getOperands())
      need(o);
    needed.insert(def);
  };
  for (Operation *a : c.after)
    a->walk([&](Operation *inner) {
      for (Value o : inner->getOperands())
        need(o);
    });
  if (!ok)
    return false;
  c.needed.assign(needed.begin(), needed.end());
  llvm::sort(c.needed, [](Operation *x, Operation *y) { return x->isBeforeInBlock(y); });
  // Before the key loop: private rows, pure ops, reads, and the rows' zeroing loops.
  for (Operation *op = &body.front(); op != c.keys.getOperation(); op = op->getNextNode()) {
    if (isa<memref::AllocaOp, memref::LoadOp>(op) || isMemoryEffectFree(op))
      continue;
    auto loop = dyn_cast<scf::ForOp>(op);
    bool zeroing = loop && llvm::all_of(loop.getBody()->without_terminator(), [&](Operation &i) {
                     auto st = dyn_cast<memref::StoreOp>(&i);
                     return st && privateRow(st.getMemRef(), c.launch);
                   });
    if (!zeroing)
      return false;
  }
  return true;
}

std::optional<Candidate> match(gpu::LaunchOp launch) {
  if (launch->hasAttr(kSerialLaunchAttrName) || launch.getAsyncToken() ||
      !launch.getAsyncDependencies().empty() || launch.getNumWorkgroupAttributions() ||
      launch.getNumPrivateAttributions() || launch.hasClusterSize() ||
      launch.getDynamicSharedMemorySize() || !launch.getBody().hasOneBlock())
    return std::nullopt;
  if (!isConstantIntValue(launch.getGridSizeZ(), 1) || !isConstantIntValue(launch.getBlockSizeY(), 1) ||
      !isConstantIntValue(launch.getBlockSizeZ(), 1))
    return std::nullopt;
  Candidate c;
  c.launch = launch;
  for (Operation &op : launch.getBody().front()) {
    auto f = dyn_cast<scf::ForOp>(&op);
    if (!f || f.getNumResults() != 2)
      continue;
    if (c.keys)
      return std::nullopt; // two key loops: not the shape this pass knows
    c.keys = f;
  }
  if (!c.keys || !matchRecurrence(c) || !matchUpdates(c) || !matchAfter(c))
    return std::nullopt;
  for (memref::AllocaOp row : c.rows)
    if (!zeroedBefore(row, c))
      return std::nullopt;
  return c;
}

/// photon-gpu-split-k-attention (Passes.td).
struct GpuSplitKAttentionPass
    : public impl::PhotonGpuSplitKAttentionBase<GpuSplitKAttentionPass> {
  using Base::Base;

  void runOnOperation() override {
    if (splits <= 1)
      return;
    SmallVector<Candidate> found;
    getOperation().walk([&](gpu::LaunchOp launch) {
      if (std::optional<Candidate> c = match(launch))
        found.push_back(*c);
    });
    for (Candidate &c : found)
      rewrite(c);
  }

  void rewrite(Candidate &c) {
    gpu::LaunchOp l1 = c.launch;
    MLIRContext *ctx = l1.getContext();
    IRRewriter rw(ctx);
    Location loc = l1.getLoc();
    Type f32 = Float32Type::get(ctx);
    const int64_t S = splits;
    // Partials per (block x, block y, split, thread x): m, l, then each row.
    int64_t width = 2;
    SmallVector<int64_t> rowOffset;
    for (memref::AllocaOp row : c.rows) {
      rowOffset.push_back(width);
      width += row.getType().getDimSize(0);
    }
    // Host: the number of splits, enough for about `targetBlocks` blocks in all (none
    // beyond one when the grid already has that many: prefill of long prompts, large
    // batches; this also bounds the partials buffer), at most `splits`:
    //   S = min(splits, max(1, ceil(targetBlocks / (grid x * grid y))))
    rw.setInsertionPoint(l1);
    Value gx = l1.getGridSizeX(), gy = l1.getGridSizeY(), tx = l1.getBlockSizeX();
    Value blocks = rw.createOrFold<arith::MaxUIOp>(
        loc, rw.createOrFold<arith::MulIOp>(loc, gx, gy), arith::ConstantIndexOp::create(rw, loc, 1));
    Value want = rw.createOrFold<arith::CeilDivUIOp>(
        loc, arith::ConstantIndexOp::create(rw, loc, std::max<int64_t>(targetBlocks, 1)), blocks);
    Value cS = rw.createOrFold<arith::MinUIOp>(
        loc, rw.createOrFold<arith::MaxUIOp>(loc, want, arith::ConstantIndexOp::create(rw, loc, 1)),
        arith::ConstantIndexOp::create(rw, loc, S));
    // The partials buffer (device memory), freed after the combine kernel; extents the
    // host knows as constants are static.
    SmallVector<int64_t> shape;
    SmallVector<Value> dynSizes;
    for (Value v : {gx, gy, cS, tx}) {
      std::optional<int64_t> k = getConstantIntValue(v);
      shape.push_back(k ? *k : ShapedType::kDynamic);
      if (!k)
        dynSizes.push_back(v);
    }
    shape.push_back(width);
    auto partT = MemRefType::get(shape, f32);
    auto tokTy = gpu::AsyncTokenType::get(ctx);
    Value t0 = gpu::WaitOp::create(rw, loc, tokTy, ValueRange{}).getAsyncToken();
    auto alloc = gpu::AllocOp::create(rw, loc, partT, tokTy, ValueRange{t0}, dynSizes,
                                      ValueRange{}, /*hostShared=*/false);
    gpu::WaitOp::create(rw, loc, Type(), ValueRange{alloc.getAsyncToken()});
    Value part = alloc.getMemref();

    // Kernel 1: grid z = the split; the key loop takes every S-th key from lb + z * step.
    gpu::KernelDim3 bid = l1.getBlockIds(), tid = l1.getThreadIds();
    Block &body1 = l1.getBody().front();
    rw.setInsertionPointToStart(&body1);
    Value zero = arith::ConstantIndexOp::create(rw, loc, 0);
    // The grid had one block in z: what read the block id z read 0 (in the combine kernel,
    // whose grid z is 1 again, the moved ops read its block id z, also 0).
    rw.replaceUsesWithIf(bid.z, zero, [&](OpOperand &use) {
      return !llvm::any_of(c.after, [&](Operation *a) { return a->isAncestor(use.getOwner()); });
    });
    l1.getGridSizeZMutable().assign(cS);
    scf::ForOp keys = c.keys;
    rw.setInsertionPoint(keys);
    Value st = keys.getStep();
    Value lb = arith::AddIOp::create(rw, loc, keys.getLowerBound(), arith::MulIOp::create(rw, loc, bid.z, st));
    Value step = arith::MulIOp::create(rw, loc, st, cS);
    rw.modifyOpInPlace(keys, [&] {
      keys.getLowerBoundMutable().assign(lb);
      keys.getStepMutable().assign(step);
    });

    // Kernel 2, after kernel 1: same grid x/y and threads, combines and runs the rest.
    rw.setInsertionPointAfter(l1);
    Value one = arith::ConstantIndexOp::create(rw, loc, 1);
    auto l2 = gpu::LaunchOp::create(rw, loc, gx, gy, one, tx, one, one);
    Block &body2 = l2.getBody().front();
    rw.setInsertionPointToEnd(&body2);
    auto term2 = gpu::TerminatorOp::create(rw, loc);
    rw.setInsertionPoint(term2);
    gpu::KernelDim3 bid2 = l2.getBlockIds(), tid2 = l2.getThreadIds();
    IRMapping map;
    auto mapDims = [&](gpu::KernelDim3 a, gpu::KernelDim3 b) {
      map.map(a.x, b.x);
      map.map(a.y, b.y);
      map.map(a.z, b.z);
    };
    mapDims(bid, bid2);
    mapDims(tid, tid2);
    mapDims(l1.getGridSize(), l2.getGridSize());
    mapDims(l1.getBlockSize(), l2.getBlockSize());
    map.map(zero, bid2.z); // a recomputed value that read block id z (now `zero`)

    Value c0 = arith::ConstantIndexOp::create(rw, loc, 0);
    Value c1 = arith::ConstantIndexOp::create(rw, loc, 1);
    Value cS2 = cS;
    auto at = [&](OpBuilder &b, Location lc, Value z, int64_t col) {
      return memref::LoadOp::create(b, lc, part,
                                    ValueRange{bid2.x, bid2.y, z, tid2.x,
                                               arith::ConstantIndexOp::create(b, lc, col)});
    };
    Value ninf = arith::ConstantOp::create(
        rw, loc, rw.getF32FloatAttr(-std::numeric_limits<float>::infinity()));
    Value fzero = arith::ConstantOp::create(rw, loc, rw.getF32FloatAttr(0.0f));
    auto maxLoop = scf::ForOp::create(rw, loc, c0, cS2, c1, ValueRange{ninf},
                                      [&](OpBuilder &b, Location lc, Value z, ValueRange it) {
                                        Value mz = at(b, lc, z, 0);
                                        scf::YieldOp::create(
                                            b, lc, ValueRange{arith::MaximumFOp::create(b, lc, it[0], mz)});
                                      });
    Value M = maxLoop.getResult(0);
    // exp(m_z - M) of split z (0 for a split without keys).
    auto weight = [&](OpBuilder &b, Location lc, Value z) -> Value {
      return math::ExpOp::create(b, lc, arith::SubFOp::create(b, lc, at(b, lc, z, 0), M));
    };
    auto sumLoop = scf::ForOp::create(
        rw, loc, c0, cS2, c1, ValueRange{fzero}, [&](OpBuilder &b, Location lc, Value z, ValueRange it) {
          Value v = arith::MulFOp::create(b, lc, at(b, lc, z, 1), weight(b, lc, z));
          scf::YieldOp::create(b, lc, ValueRange{arith::AddFOp::create(b, lc, it[0], v)});
        });
    map.map(keys.getResult(0), M);
    map.map(keys.getResult(1), sumLoop.getResult(0));
    for (size_t r = 0; r < c.rows.size(); ++r) {
      memref::AllocaOp row = c.rows[r];
      int64_t n = row.getType().getDimSize(0), off = rowOffset[r];
      rw.setInsertionPointToStart(&body2);
      auto row2 = memref::AllocaOp::create(rw, row.getLoc(), row.getType());
      map.map(row.getResult(), row2.getResult());
      rw.setInsertionPoint(term2);
      scf::ForOp::create(
          rw, loc, c0, arith::ConstantIndexOp::create(rw, loc, n), c1, ValueRange{},
          [&](OpBuilder &b, Location lc, Value d, ValueRange) {
            auto inner = scf::ForOp::create(
                b, lc, c0, cS2, c1, ValueRange{fzero}, [&](OpBuilder &ib, Location il, Value z, ValueRange it) {
                  Value col = arith::AddIOp::create(ib, il, d, arith::ConstantIndexOp::create(ib, il, off));
                  Value x = memref::LoadOp::create(ib, il, part, ValueRange{bid2.x, bid2.y, z, tid2.x, col});
                  Value v = arith::MulFOp::create(ib, il, x, weight(ib, il, z));
                  scf::YieldOp::create(ib, il, ValueRange{arith::AddFOp::create(ib, il, it[0], v)});
                });
            memref::StoreOp::create(b, lc, inner.getResult(0), row2, ValueRange{d});
            scf::YieldOp::create(b, lc);
          });
    }
    // Values of kernel 1 the moved ops read, recomputed (matchAfter), then the moved ops.
    for (Operation *op : c.needed)
      rw.clone(*op, map);
    for (Operation *a : c.after)
      rw.clone(*a, map);

    // Kernel 1 ends by writing its partials; the moved ops go.
    for (Operation *a : llvm::reverse(c.after))
      rw.eraseOp(a);
    rw.setInsertionPointAfter(keys);
    auto put = [&](Value v, Value col) {
      memref::StoreOp::create(rw, loc, v, part, ValueRange{bid.x, bid.y, bid.z, tid.x, col});
    };
    put(keys.getResult(0), arith::ConstantIndexOp::create(rw, loc, 0));
    put(keys.getResult(1), arith::ConstantIndexOp::create(rw, loc, 1));
    for (size_t r = 0; r < c.rows.size(); ++r) {
      memref::AllocaOp row = c.rows[r];
      int64_t n = row.getType().getDimSize(0), off = rowOffset[r];
      Value lo = arith::ConstantIndexOp::create(rw, loc, 0);
      Value hi = arith::ConstantIndexOp::create(rw, loc, n);
      Value inc = arith::ConstantIndexOp::create(rw, loc, 1);
      scf::ForOp::create(rw, loc, lo, hi, inc, ValueRange{},
                         [&](OpBuilder &b, Location lc, Value d, ValueRange) {
                           Value x = memref::LoadOp::create(b, lc, row, ValueRange{d});
                           Value col = arith::AddIOp::create(b, lc, d, arith::ConstantIndexOp::create(b, lc, off));
                           memref::StoreOp::create(b, lc, x, part, ValueRange{bid.x, bid.y, bid.z, tid.x, col});
                           scf::YieldOp::create(b, lc);
                         });
    }
    rw.setInsertionPointAfter(l2);
    createDeviceDealloc(rw, loc, part);
  }
};

} // namespace

} // namespace photon::cuda
