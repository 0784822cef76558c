//===- GpuTileAndFuse.cpp - linalg on tensors -> block/warp/thread scf.forall -----===//
//
// photon-gpu-tile-and-fuse: one kernel per root linalg op, producers fused in.
// See include/photon/Codegen/CUDA/CudaPipeline.h for the strategy.
//
//===----------------------------------------------------------------------------===//
#include "photon/Codegen/CUDA/CudaPipeline.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Transforms/TileUsingInterface.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Interfaces/TilingInterface.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"

using namespace mlir;

namespace photon::cuda {
#define GEN_PASS_DEF_PHOTONGPUTILEANDFUSE
#include "photon/Codegen/CUDA/Passes.h.inc"

namespace {

constexpr int64_t kMaxThreads = 256;

/// The tensor-core plan of a matmul (planMma): block tile and the mma.sync K step.
struct MmaPlan {
  int64_t bm = 0, bn = 0, kStep = 0;
};

bool isTransposedB(linalg::MatmulOp mm) {
  if (!mm.hasUserDefinedMaps())
    return false;
  MLIRContext *ctx = mm.getContext();
  AffineExpr m, n, k;
  bindDims(ctx, m, n, k);
  auto maps = mm.getIndexingMapsArray();
  return maps.size() == 3 && maps[0] == AffineMap::get(3, 0, {m, k}, ctx) &&
         maps[1] == AffineMap::get(3, 0, {n, k}, ctx) &&
         maps[2] == AffineMap::get(3, 0, {m, n}, ctx);
}

/// True if `g` is the matmul convert-photon-to-linalg emits for photon.linear, lm_head and
/// the SwiGLU projections, y[m, n] += x[m, k] * w[n, k] (w stored [N, K]): a contraction
/// upstream recognizes (linalg::isaContractionOpInterface, with m, n, k = d0, d1, d2:
/// test/unit/compiler/ContractionFormTest.cpp) whose maps are the transposed-B ones and
/// whose body is exactly `mulf` then `addf` on one element type, i.e. what a linalg.matmul
/// with the transposed-B indexing maps computes. The reduced-precision forms (the weight
/// widened in the body) are not.
bool isTransposedBContraction(linalg::GenericOp g) {
  if (!linalg::isaContractionOpInterface(g) || g.getNumDpsInputs() != 2 ||
      g.getNumDpsInits() != 1 || g.getNumLoops() != 3)
    return false;
  FailureOr<linalg::ContractionDimensions> dims = linalg::inferContractionDims(g);
  if (failed(dims) || !dims->batch.empty() || dims->m != SmallVector<unsigned>{0} ||
      dims->n != SmallVector<unsigned>{1} || dims->k != SmallVector<unsigned>{2})
    return false;
  MLIRContext *ctx = g.getContext();
  AffineExpr m, n, k;
  bindDims(ctx, m, n, k);
  if (g.getIndexingMapsArray() !=
      SmallVector<AffineMap>{AffineMap::get(3, 0, {m, k}, ctx), AffineMap::get(3, 0, {n, k}, ctx),
                             AffineMap::get(3, 0, {m, n}, ctx)})
    return false;
  Block &body = g.getRegion().front();
  Type e = body.getArgument(0).getType();
  if (body.getArgument(1).getType() != e || body.getArgument(2).getType() != e ||
      body.getOperations().size() != 3)
    return false;
  auto mul = dyn_cast<arith::MulFOp>(&body.front());
  auto add = dyn_cast_or_null<arith::AddFOp>(mul ? mul->getNextNode() : nullptr);
  auto yield = dyn_cast<linalg::YieldOp>(body.getTerminator());
  auto isPair = [](Operation *op, Value a, Value b) {
    return (op->getOperand(0) == a && op->getOperand(1) == b) ||
           (op->getOperand(0) == b && op->getOperand(1) == a);
  };
  return mul && add && yield && yield.getNumOperands() == 1 && yield.getOperand(0) == add &&
         isPair(mul, body.getArgument(0), body.getArgument(1)) &&
         isPair(add, body.getArgument(2), mul.getResult());
}

/// `g` (isTransposedBContraction) replaced by the linalg.matmul with the transposed-B
/// indexing maps that computes the same, the form tileMatmul and photon-gpu-mma-sync take.
linalg::MatmulOp toTransposedBMatmul(RewriterBase &rewriter, linalg::GenericOp g) {
  rewriter.setInsertionPoint(g);
  auto mm = linalg::MatmulOp::create(rewriter, g.getLoc(), g.getResultTypes(), g.getDpsInputs(),
                                     g.getDpsInits());
  mm.setIndexingMapsAttr(rewriter.getAffineMapArrayAttr(g.getIndexingMapsArray()));
  rewriter.replaceOp(g, mm->getResults());
  return mm;
}

/// What planMma reads of the pass options: `minChip` is the oldest requested chip's
/// sm number (80 when none is given: the default target).
struct MmaTarget {
  bool tensorCores = true, allowTf32 = false;
  unsigned minChip = 80;
};

/// The plan for the matmuls the tensor-core path handles: linalg.matmul, plain or with the
/// transposed-B maps, or the conversion's generic of that form (isTransposedBContraction),
/// with static shapes divisible by the mma tile and element types mma.sync supports.
std::optional<MmaPlan> planMma(Operation *op, const MmaTarget &options) {
  if (!options.tensorCores)
    return std::nullopt;
  // Every requested chip must have mma.sync m16n8k16 (sm_80+); sm_75 has only k8.
  if (options.minChip < 80)
    return std::nullopt;
  auto lin = dyn_cast<linalg::LinalgOp>(op);
  if (auto mm = dyn_cast<linalg::MatmulOp>(op)) {
    if (mm.hasUserDefinedMaps() && !isTransposedB(mm))
      return std::nullopt;
  } else if (auto g = dyn_cast<linalg::GenericOp>(op); !g || !isTransposedBContraction(g)) {
    return std::nullopt;
  }
  auto aTy = dyn_cast<RankedTensorType>(lin.getDpsInputOperand(0)->get().getType());
  auto bTy = dyn_cast<RankedTensorType>(lin.getDpsInputOperand(1)->get().getType());
  auto cTy = dyn_cast<RankedTensorType>(lin.getDpsInitOperand(0)->get().getType());
  if (!aTy || !bTy || !cTy || !aTy.hasStaticShape() || !bTy.hasStaticShape() ||
      !cTy.hasStaticShape())
    return std::nullopt;
  Type a = aTy.getElementType(), b = bTy.getElementType(), c = cTy.getElementType();
  MmaPlan plan;
  if (a.isF16() && b.isF16() && (c.isF32() || c.isF16()))
    plan.kStep = 16;
  else if (a.isF32() && b.isF32() && c.isF32() && options.allowTf32)
    plan.kStep = 4;
  else
    return std::nullopt;
  int64_t M = cTy.getDimSize(0), N = cTy.getDimSize(1), K = aTy.getDimSize(1);
  if (M % 16 || N % 8 || K % plan.kStep)
    return std::nullopt;
  plan.bm = M % 64 == 0 ? 64 : (M % 32 == 0 ? 32 : 16);
  plan.bn = N % 32 == 0 ? 32 : (N % 16 == 0 ? 16 : 8);
  return plan;
}

/// A root after some tiling: no user is an untiled linalg op outside the kernels.
bool isRootNow(linalg::LinalgOp op) {
  if (!op.hasPureTensorSemantics() || op->getNumResults() == 0)
    return false;
  for (Operation *user : op->getUsers())
    if ((isa<linalg::LinalgOp>(user) || isa<TilingInterface>(user)) &&
        !user->getParentOfType<scf::ForallOp>())
      return false;
  return true;
}

SmallVector<OpFoldResult> indexAttrs(MLIRContext *ctx, ArrayRef<int64_t> v) {
  return getAsIndexOpFoldResult(ctx, v);
}

/// Limits of one kernel's fusion group: a producer reached along more than kMaxPaths
/// use paths from the root would be recomputed that many times per element; more than
/// kMaxGroupOps op instances (after that duplication) make one kernel too big.
constexpr int64_t kMaxPaths = 4;
constexpr int64_t kMaxGroupOps = 48;

/// True for producers that are cheap to recompute wherever they are used: no tensor
/// inputs (linalg.fill of an accumulator, a constant broadcast).
bool isLeafProducer(Operation *op) {
  auto l = dyn_cast<linalg::LinalgOp>(op);
  return l && l.getNumDpsInputs() == 0;
}

/// The producers fused into `consumer`'s kernel: linalg ops in the same block whose
/// results are used only by the consumer or by other members, walked back from the
/// consumer. Fusion stops at every value with a user outside the group (the residual
/// stream, a value several roots read, a function result): such a value becomes a kernel
/// of its own and is read from device memory, instead of being recomputed inside every
/// consumer (each layer's kernel would otherwise fuse the whole upstream chain, twice per
/// residual connection: exponential in depth). Diamonds inside a group are allowed up to
/// kMaxPaths paths (softmax: the row max and the exponentials are read twice).
DenseSet<Operation *> fusionGroup(Operation *consumer) {
  DenseSet<Operation *> group = {consumer};
  DenseMap<Operation *, int64_t> paths = {{consumer, 1}};
  Block *block = consumer->getBlock();
  SmallVector<Operation *> cand;
  DenseSet<Operation *> seen;
  SmallVector<Operation *> work = {consumer};
  while (!work.empty()) {
    Operation *op = work.pop_back_val();
    for (Value v : op->getOperands()) {
      Operation *def = v.getDefiningOp();
      if (!def || def->getBlock() != block || !isa<TilingInterface>(def) ||
          !seen.insert(def).second)
        continue;
      cand.push_back(def);
      work.push_back(def);
    }
  }
  // Users come after their producers in the block: decide users first.
  llvm::sort(cand, [](Operation *a, Operation *b) { return b->isBeforeInBlock(a); });
  int64_t total = 1;
  for (Operation *p : cand) {
    int64_t n = 0;
    bool inside = true;
    for (OpOperand &use : p->getUses()) {
      auto it = paths.find(use.getOwner());
      if (it == paths.end()) {
        inside = false;
        break;
      }
      // An init the consumer only overwrites (elementwise ops made by
      // convert-elementwise-to-linalg write into their first input) is not recomputed.
      auto l = dyn_cast<linalg::LinalgOp>(use.getOwner());
      if (l && l.isDpsInit(&use) && !l.payloadUsesValueFromOperand(&use))
        continue;
      n += it->second;
    }
    if (isLeafProducer(p)) { // recomputed in every kernel that reads it
      group.insert(p);
      paths[p] = std::max<int64_t>(n, 1);
      continue;
    }
    if (!inside || n > kMaxPaths || total + n > kMaxGroupOps)
      continue;
    group.insert(p);
    paths[p] = n;
    total += n;
  }
  return group;
}

/// Tiles `op` to an scf.forall with `mapping` and fuses its fusion group in. Returns the
/// tiled consumer inside the loop.
FailureOr<Operation *> tileAndFuse(RewriterBase &rewriter, Operation *op,
                                   ArrayRef<int64_t> tileSizes, ArrayRef<int64_t> numThreads,
                                   ArrayRef<Attribute> mapping, bool fuse = true) {
  scf::SCFTilingOptions tiling;
  tiling.setLoopType(scf::SCFTilingOptions::LoopType::ForallOp);
  if (!numThreads.empty())
    tiling.setNumThreads(indexAttrs(op->getContext(), numThreads));
  else
    tiling.setTileSizes(indexAttrs(op->getContext(), tileSizes));
  tiling.setMapping(mapping);
  scf::SCFTileAndFuseOptions opts;
  opts.setTilingOptions(tiling);
  DenseSet<Operation *> group = fusionGroup(op);
  if (fuse)
    opts.setFusionControlFn([group](tensor::ExtractSliceOp, OpResult producer, bool)
                                -> std::optional<scf::SCFTileAndFuseOptions::ControlFnResult> {
      if (!group.contains(producer.getOwner()))
        return std::nullopt;
      return scf::SCFTileAndFuseOptions::ControlFnResult{};
    });
  else
    opts.setFusionControlFn([](tensor::ExtractSliceOp, OpResult, bool isDestination)
                                -> std::optional<scf::SCFTileAndFuseOptions::ControlFnResult> {
      // Only fills of the destination; producers stay kernels of their own.
      (void)isDestination;
      return std::nullopt;
    });
  rewriter.setInsertionPoint(op);
  FailureOr<scf::SCFTileAndFuseResult> res =
      scf::tileConsumerAndFuseProducersUsingSCF(rewriter, cast<TilingInterface>(op), opts);
  if (failed(res))
    return failure();
  for (OpResult r : op->getResults()) {
    auto it = res->replacements.find(r);
    if (it != res->replacements.end())
      rewriter.replaceAllUsesWith(r, it->second);
  }
  Operation *tiled = res->tiledAndFusedOps.front();
  if (op->use_empty())
    rewriter.eraseOp(op);
  return tiled;
}

Attribute blockDim(MLIRContext *ctx, int i) {
  return gpu::GPUBlockMappingAttr::get(ctx, static_cast<gpu::MappingId>(i));
}
Attribute threadDim(MLIRContext *ctx, int i) {
  return gpu::GPUThreadMappingAttr::get(ctx, static_cast<gpu::MappingId>(i));
}
Attribute warpDim(MLIRContext *ctx, int i) {
  return gpu::GPUWarpMappingAttr::get(ctx, static_cast<gpu::MappingId>(i));
}

/// Tensor-core matmul: blocks of BMxBN, one warp per 16x8 tile (warps laid out on
/// threadIdx.y/z so that threadIdx.x is the lane), whole K per warp.
LogicalResult tileMatmul(RewriterBase &rewriter, Operation *op, const MmaPlan &plan) {
  MLIRContext *ctx = op->getContext();
  // forall (i, j) mapped to (block y, block x): consecutive N tiles in consecutive blocks.
  FailureOr<Operation *> blockTiled =
      tileAndFuse(rewriter, op, {plan.bm, plan.bn, 0}, {}, {blockDim(ctx, 1), blockDim(ctx, 0)});
  if (failed(blockTiled))
    return op->emitError("photon-gpu-tile-and-fuse: cannot tile the matmul to thread blocks");
  FailureOr<Operation *> warpTiled = tileAndFuse(rewriter, *blockTiled, {16, 8, 0}, {},
                                                 {warpDim(ctx, 2), warpDim(ctx, 1)});
  if (failed(warpTiled))
    return op->emitError("photon-gpu-tile-and-fuse: cannot tile the matmul to warps");
  (*warpTiled)->setAttr(kMmaKAttrName, rewriter.getI64IntegerAttr(plan.kStep));
  return success();
}

/// True if `v` is computed (within `depth` linalg producers) by an op with reductions.
bool hasReductionProducer(Value v, int depth) {
  auto producer = v.getDefiningOp<linalg::LinalgOp>();
  if (!producer || depth == 0)
    return false;
  if (producer.getNumReductionLoops() > 0)
    return true;
  for (OpOperand *in : producer.getDpsInputOperands())
    if (hasReductionProducer(in->get(), depth - 1))
      return true;
  return false;
}

/// True if a linalg producer of `v` (within `depth` levels) reduces over a dynamic extent.
bool hasDynamicReductionProducer(Value v, int depth) {
  auto producer = v.getDefiningOp<linalg::LinalgOp>();
  if (!producer || depth == 0)
    return false;
  SmallVector<int64_t> ranges = producer.getStaticLoopRanges();
  SmallVector<utils::IteratorType> iters = producer.getIteratorTypesArray();
  for (auto [r, it] : llvm::zip(ranges, iters))
    if (it == utils::IteratorType::reduction && ShapedType::isDynamic(r))
      return true;
  for (OpOperand *in : producer.getDpsInputOperands())
    if (hasDynamicReductionProducer(in->get(), depth - 1))
      return true;
  return false;
}

/// SIMT strategy for everything else (elementwise, reductions, softmax chains, the
/// attention window).
LogicalResult tileSimt(RewriterBase &rewriter, linalg::LinalgOp op) {
  MLIRContext *ctx = op->getContext();
  SmallVector<int64_t> ranges = op.getStaticLoopRanges();
  SmallVector<utils::IteratorType> iters = op.getIteratorTypesArray();
  unsigned nLoops = ranges.size();

  // Dimensions that do not index the first input of a contraction-like root are kept
  // whole inside each thread: tiling them would recompute the fused producer chain.
  // Likewise for operands computed by a reduction (the row sum of an RMSNorm feeding
  // the scaling): a thread keeps the dims that operand is broadcast along.
  llvm::SmallBitVector keepWhole(nLoops, false);
  auto keepBroadcastDims = [&](OpOperand *operand) {
    AffineMap map = op.getMatchingIndexingMap(operand);
    for (unsigned d = 0; d < nLoops; ++d)
      if (iters[d] == utils::IteratorType::parallel && !map.isFunctionOfDim(d))
        keepWhole.set(d);
  };
  if (op.getNumDpsInputs() > 0 && op.getNumReductionLoops() > 0)
    keepBroadcastDims(op.getDpsInputOperand(0));
  for (OpOperand *operand : op.getDpsInputOperands())
    if (hasReductionProducer(operand->get(), 4))
      keepBroadcastDims(operand);
  // Fused producers get per-thread buffers sized by the dims a thread keeps whole and
  // by the reductions; if one of them is dynamic (a causal attention row over a
  // sequence of run-time length), do not fuse: the producers become kernels of their
  // own with their results in device memory.
  bool fuse = true;
  for (unsigned d = 0; d < nLoops; ++d)
    if ((keepWhole.test(d) || iters[d] != utils::IteratorType::parallel) &&
        ShapedType::isDynamic(ranges[d]))
      fuse = false;
  for (OpOperand *operand : op.getDpsInputOperands())
    if (hasDynamicReductionProducer(operand->get(), 6))
      fuse = false;
  SmallVector<unsigned> cand;
  for (unsigned d = 0; d < nLoops; ++d)
    if (iters[d] == utils::IteratorType::parallel && !keepWhole.test(d))
      cand.push_back(d);
  if (cand.empty())
    return op->emitError("photon-gpu-tile-and-fuse: op has no parallel dimension to map to "
                         "the GPU; a full reduction to a scalar is not supported yet");

  // Threads: the innermost candidate dims (at most 2) with at most kMaxThreads threads.
  SmallVector<unsigned> threadDims;
  int64_t threads = 1;
  for (auto it = cand.rbegin(); it != cand.rend() && threadDims.size() < 2; ++it) {
    int64_t e = ranges[*it];
    if (ShapedType::isDynamic(e))
      break;
    if (threads * std::min<int64_t>(e, kMaxThreads) > kMaxThreads && !threadDims.empty())
      break;
    threadDims.push_back(*it);
    threads *= std::min<int64_t>(e, kMaxThreads);
  }
  // Blocks: up to 3 of the remaining candidates (outermost last so that it maps to z),
  // tile size 1; a thread dim larger than kMaxThreads is split across blocks too.
  SmallVector<int64_t> blockTiles(nLoops, 0);
  SmallVector<unsigned> blockDims;
  for (unsigned d : llvm::reverse(cand)) {
    if (blockDims.size() == 3)
      break;
    bool isThread = llvm::is_contained(threadDims, d);
    if (isThread && ranges[d] <= kMaxThreads)
      continue;
    blockTiles[d] = isThread ? kMaxThreads : 1;
    blockDims.push_back(d);
  }
  if (blockDims.empty()) {
    // Everything fits one block: still launch through a (1-iteration) block loop.
    unsigned d = cand.front();
    blockTiles[d] = ranges[d] == ShapedType::kDynamic ? 1 : ranges[d];
    blockDims.push_back(d);
  }
  // scf.forall maps loops in loop order; give the innermost block dim block x.
  SmallVector<Attribute> blockMapping;
  {
    SmallVector<unsigned> sorted(blockDims.begin(), blockDims.end());
    llvm::sort(sorted);
    for (unsigned d : sorted)
      blockMapping.push_back(blockDim(
          ctx, static_cast<int>(blockDims.size() - 1 -
                                (llvm::find(sorted, d) - sorted.begin()))));
  }
  FailureOr<Operation *> blockTiled =
      tileAndFuse(rewriter, op, blockTiles, {}, blockMapping, fuse);
  if (failed(blockTiled))
    return op->emitError("photon-gpu-tile-and-fuse: cannot tile to thread blocks");

  // Threads inside the block: numThreads per thread dim (tiles of the block tile).
  auto tiled = cast<linalg::LinalgOp>(*blockTiled);
  SmallVector<int64_t> tileRanges = tiled.getStaticLoopRanges();
  SmallVector<int64_t> numThreads(nLoops, 0);
  SmallVector<unsigned> sortedThreads(threadDims.begin(), threadDims.end());
  llvm::sort(sortedThreads);
  SmallVector<Attribute> threadMapping;
  for (unsigned d : sortedThreads) {
    int64_t e = tileRanges[d];
    if (ShapedType::isDynamic(e))
      e = blockTiles[d] ? blockTiles[d] : kMaxThreads;
    numThreads[d] = std::min<int64_t>(e, kMaxThreads);
    threadMapping.push_back(threadDim(
        ctx, static_cast<int>(sortedThreads.size() - 1 -
                              (llvm::find(sortedThreads, d) - sortedThreads.begin()))));
  }
  if (threadMapping.empty())
    return success(); // one thread per block does the whole tile
  if (failed(tileAndFuse(rewriter, *blockTiled, {}, numThreads, threadMapping, fuse)))
    return op->emitError("photon-gpu-tile-and-fuse: cannot tile to threads");
  return success();
}

/// photon-gpu-tile-and-fuse (Passes.td); options chips, tensor-cores, allow-tf32.
struct GpuTileAndFusePass : public impl::PhotonGpuTileAndFuseBase<GpuTileAndFusePass> {
  using Base::Base;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    MmaTarget options;
    options.tensorCores = tensorCores;
    options.allowTf32 = allowTf32;
    if (!chips.empty()) {
      std::string text = llvm::join(chips, ","), error;
      std::vector<std::string> parsed;
      if (!parseChips(text, parsed, error)) {
        func->emitError("photon-gpu-tile-and-fuse: chips: ") << error;
        return signalPassFailure();
      }
      for (const std::string &chip : parsed)
        options.minChip = std::min<unsigned>(options.minChip, std::stoi(chip.substr(3)));
    }
    IRRewriter rewriter(func.getContext());
    // Aggregate ops (linalg.softmax) become generics that can be fused.
    SmallVector<linalg::AggregatedOpInterface> aggregates;
    func.walk([&](linalg::AggregatedOpInterface op) { aggregates.push_back(op); });
    for (linalg::AggregatedOpInterface op : aggregates) {
      // On buffers the decomposition writes nothing back (no results to replace): the op
      // would silently disappear. The pass runs before bufferization.
      auto dps = dyn_cast<DestinationStyleOpInterface>(op.getOperation());
      if (dps && !dps.hasPureTensorSemantics()) {
        op->emitError("photon-gpu-tile-and-fuse: expects linalg ops on tensors (the pass "
                      "runs before bufferization)");
        return signalPassFailure();
      }
      rewriter.setInsertionPoint(op);
      FailureOr<SmallVector<Value>> repl = op.decomposeOperation(rewriter);
      if (failed(repl)) {
        op->emitError("photon-gpu-tile-and-fuse: cannot decompose this op into generics");
        return signalPassFailure();
      }
      rewriter.replaceOp(op, *repl);
    }
    // Roots first; producers that were not fused become roots of the next round.
    DenseSet<Operation *> done;
    for (int round = 0; round < 64; ++round) {
      SmallVector<linalg::LinalgOp> roots;
      func.walk([&](linalg::LinalgOp op) {
        if (op->getParentOfType<scf::ForallOp>() || done.contains(op))
          return;
        if (isRootNow(op))
          roots.push_back(op);
      });
      if (roots.empty())
        break;
      for (linalg::LinalgOp root : llvm::reverse(roots)) {
        done.insert(root);
        if (root->use_empty())
          continue;
        LogicalResult ok = success();
        if (std::optional<MmaPlan> plan = planMma(root, options)) {
          Operation *mm = root;
          if (auto g = dyn_cast<linalg::GenericOp>(mm)) {
            mm = toTransposedBMatmul(rewriter, g);
            done.insert(mm);
          }
          ok = tileMatmul(rewriter, mm, *plan);
        } else {
          ok = tileSimt(rewriter, root);
        }
        if (failed(ok))
          return signalPassFailure();
      }
    }
    // The untiled originals are dead now.
    SmallVector<Operation *> dead;
    func.walk<WalkOrder::PostOrder>([&](Operation *op) {
      if (isa<linalg::LinalgOp, tensor::EmptyOp>(op) && op->getNumResults() &&
          !op->getParentOfType<scf::ForallOp>() && !isa<scf::ForallOp>(op->getParentOp()))
        dead.push_back(op);
    });
    bool changed = true;
    while (changed) {
      changed = false;
      for (Operation *&op : dead)
        if (op && op->use_empty()) {
          rewriter.eraseOp(op);
          op = nullptr;
          changed = true;
        }
    }
  }
};

} // namespace

} // namespace photon::cuda
