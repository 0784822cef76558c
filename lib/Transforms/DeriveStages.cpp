//===- DeriveStages.cpp - generation stages from the forward graph -------===//
//
// Every op of the forward graph other than attention is position-wise, so a stage is a
// slice of @forward between two cut points, with the encoder stacks replaced by their
// step versions (causal_attention -> kv_append + cached_attention over a bound cache,
// rope offsets = lens; learned positions, in a stack or in the slice of @forward, get
// offsets = lens too). The cut points:
//
//   encode_1   tokens                      -> operand of call @<encoder level 1>
//   encode_l   result of call @<enc l-1>   -> operand of call @<encoder level l>
//   latent_l   result of shift_l (prev)    -> operand 0 of shift_(l-1)   (Xhat(l-1))
//   token_step result of shift_1 (prev), tokens -> logits, then logits[s, pos[s]]
//   lm_step    tokens                      -> logits (vanilla)
//
// shift_l is the shift whose start latent is s_l: shifts appear in @forward from the top
// level down (docs/ir-contract.md), so the i-th shift is level L - i.
//
//===----------------------------------------------------------------------===//

#include "photon/Transforms/CachePlan.h"
#include "photon/Transforms/Passes.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include "photon/Dialect/PhotonOps.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/AsmState.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Transforms/RegionUtils.h"

namespace mlir {
namespace photon {
#define GEN_PASS_DEF_PHOTONDERIVESTAGES
#include "photon/Transforms/Passes.h.inc"

namespace {

/// The operands and scale of a causal or bounded attention: the two ops whose step
/// versions are kv_append + cached_attention.
struct Attention {
  Value q, k, v;
  FloatAttr scale;
};
std::optional<Attention> asAttention(Operation *op) {
  if (auto a = dyn_cast<CausalAttentionOp>(op))
    return Attention{a.getQ(), a.getK(), a.getV(), a.getScaleAttr()};
  if (auto a = dyn_cast<BoundedAttentionOp>(op))
    return Attention{a.getQ(), a.getK(), a.getV(), a.getScaleAttr()};
  return std::nullopt;
}

struct StepStack {
  func::FuncOp step;
  int64_t level = 0;
  MemRefType poolType;
};

struct Deriver {
  ModuleOp module;
  Hierarchy h;
  int64_t blockSize;
  /// Element type of every cache pool (null: the attention's element type).
  Type kvElement;
  func::FuncOp forward;
  MLIRContext *ctx;
  PhotonDialect *dialect;
  llvm::DenseMap<StringRef, StepStack> steps; // encoder func name -> step version
  llvm::DenseMap<StringRef, int64_t> encoderLevel;
  std::string stageName;

  Type memrefI32(ArrayRef<int64_t> shape) {
    return MemRefType::get(shape, IntegerType::get(ctx, 32));
  }

  /// Clones a stack into <name><suffix>(x, pool, table, lens): every attention
  /// (causal_attention of an encoder, bounded_attention of a decoder over one window)
  /// becomes kv_append + cached_attention over a paged cache of block size `bs`.
  FailureOr<StepStack> makeStep(func::FuncOp f, int64_t level, int64_t bs,
                                StringRef suffix = "_step") {
    StepStack s;
    s.level = level;
    // Layer shapes from the attention ops.
    SmallVector<Operation *> attns;
    f.walk([&](Operation *op) {
      if (isa<CausalAttentionOp, BoundedAttentionOp>(op)) attns.push_back(op);
    });
    if (attns.empty())
      return f.emitError("stack has no photon.causal_attention: cannot derive its step"),
             failure();
    auto kt = cast<RankedTensorType>(asAttention(attns[0])->k.getType());
    int64_t hkv = kt.getDimSize(2), hd = kt.getDimSize(3);
    Type elt = kvElement ? kvElement : kt.getElementType();
    s.poolType = MemRefType::get({ShapedType::kDynamic, (int64_t)attns.size(), 2, bs, hkv, hd},
                                 elt);
    auto cacheT = KvCacheType::getChecked(
        [&] { return f.emitError("cannot build the stack's cache type: "); }, ctx, level,
        (int64_t)attns.size(), hkv, hd, bs, elt);
    if (!cacheT) return failure();

    OpBuilder b(ctx);
    b.setInsertionPointAfter(f);
    auto step = cast<func::FuncOp>(b.clone(*f));
    step.setSymName((f.getSymName() + suffix).str());
    step.setPrivate();
    dialect->getStepOfAttrHelper().setAttr(step, FlatSymbolRefAttr::get(f.getSymNameAttr()));
    Location loc = step.getLoc();
    unsigned n = step.getNumArguments();
    SmallVector<Type> extra{s.poolType, memrefI32({ShapedType::kDynamic, ShapedType::kDynamic}),
                            memrefI32({ShapedType::kDynamic})};
    for (Type t : extra)
      if (failed(step.insertArgument(step.getNumArguments(), t, DictionaryAttr(), loc)))
        return failure();
    Value pool = step.getArgument(n), table = step.getArgument(n + 1),
          lens = step.getArgument(n + 2);
    Block &entry = step.getBody().front();
    b.setInsertionPointToStart(&entry);
    Value cache = CacheBindOp::create(b, loc, cacheT, pool, table, lens);
    Value lensT = bufferization::ToTensorOp::create(
        b, loc, RankedTensorType::get({ShapedType::kDynamic}, IntegerType::get(ctx, 32)), lens,
        /*restrict=*/true, /*writable=*/false);

    SmallVector<Operation *> ops;
    step.walk([&](Operation *op) { ops.push_back(op); });
    int64_t layer = 0;
    for (Operation *op : ops) {
      if (auto rope = dyn_cast<RoPEOp>(op)) {
        if (!rope.getOffsets()) rope.getOffsetsMutable().assign(lensT);
      } else if (auto pe = dyn_cast<PositionEmbeddingOp>(op)) {
        if (!pe.getOffsets()) pe.getOffsetsMutable().assign(lensT);
      } else if (std::optional<Attention> attn = asAttention(op)) {
        b.setInsertionPoint(op);
        KvAppendOp::create(b, op->getLoc(), cache, attn->k, attn->v, layer);
        Value out = CachedAttentionOp::create(b, op->getLoc(), op->getResult(0).getType(), cache,
                                              attn->q, b.getI64IntegerAttr(layer), attn->scale);
        op->getResult(0).replaceAllUsesWith(out);
        op->erase();
        ++layer;
      }
    }
    s.step = step;
    return s;
  }

  /// Materializes `v` in the new function: values in `map` are given; everything else is
  /// cloned from its defining op in @forward. Calls to encoder stacks become calls to
  /// their step versions with `cacheArgs` (pool, table, lens) when provided.
  FailureOr<Value> materialize(OpBuilder &b, Value v, IRMapping &map, ValueRange cacheArgs) {
    if (Value m = map.lookupOrNull(v)) return m;
    Operation *def = v.getDefiningOp();
    if (!def)
      return forward.emitError("stage '")
                 << stageName << "': its slice of @forward reaches argument #"
                 << cast<BlockArgument>(v).getArgNumber()
                 << " of @forward, which the stage does not provide",
             failure();
    // The batch size read off an input the stage does not have (e.g. tensor.dim %tokens, 0
    // in the decoder part of @forward) is the batch size of the stage's first argument.
    if (auto dimOp = dyn_cast<tensor::DimOp>(def)) {
      auto idx = dimOp.getConstantIndex();
      if (isa<BlockArgument>(dimOp.getSource()) && !map.contains(dimOp.getSource()) && idx &&
          *idx == 0) {
        Value first = b.getInsertionBlock()->getArgument(0);
        Value d = tensor::DimOp::create(b, dimOp.getLoc(), first, 0);
        map.map(v, d);
        return d;
      }
    }
    // Operands first (and values captured by regions).
    SmallVector<Value> deps(def->getOperands().begin(), def->getOperands().end());
    llvm::SetVector<Value> above;
    for (Region &r : def->getRegions()) getUsedValuesDefinedAbove(r, above);
    deps.append(above.begin(), above.end());
    for (Value d : deps)
      if (failed(materialize(b, d, map, cacheArgs))) return failure();
    if (Value m = map.lookupOrNull(v)) return m; // materialized through a dependency
    if (auto call = dyn_cast<func::CallOp>(def)) {
      auto it = steps.find(call.getCallee());
      if (it != steps.end()) {
        if (cacheArgs.empty())
          return call.emitError("stage slice needs the cache of @")
                     << call.getCallee() << " but the stage binds none",
                 failure();
        SmallVector<Value> args;
        for (Value a : call.getOperands()) args.push_back(map.lookup(a));
        args.append(cacheArgs.begin(), cacheArgs.end());
        auto nc = func::CallOp::create(b, call.getLoc(), it->second.step, args);
        for (auto [o, n] : llvm::zip(call.getResults(), nc.getResults())) map.map(o, n);
        return map.lookup(v);
      }
    }
    Operation *clone = b.clone(*def, map);
    // Learned positions in a stage that binds a cache: the new units' positions start
    // at the cache's valid lengths (as rope's offsets inside the step stacks).
    if (auto pe = dyn_cast<PositionEmbeddingOp>(clone); pe && !pe.getOffsets()) {
      if (cacheArgs.size() != 3)
        return pe.emitError("stage '")
                   << stageName << "' has learned positions but binds no cache to count "
                   << "them from",
               failure();
      Value lensT = bufferization::ToTensorOp::create(
          b, pe.getLoc(), RankedTensorType::get({ShapedType::kDynamic}, IntegerType::get(ctx, 32)),
          cacheArgs[2], /*restrict=*/true, /*writable=*/false);
      pe.getOffsetsMutable().assign(lensT);
      // The to_tensor must dominate its use.
      lensT.getDefiningOp()->moveBefore(pe);
    }
    return map.lookup(v);
  }

  func::FuncOp newStage(StringRef name, ArrayRef<Type> ins, ArrayRef<Type> outs,
                        ArrayRef<StringRef> argNames, ArrayRef<StringRef> resNames,
                        ArrayRef<SmallVector<std::string>> shapes) {
    OpBuilder b(ctx);
    stageName = name.str();
    b.setInsertionPointToEnd(module.getBody());
    if (auto old = module.lookupSymbol<func::FuncOp>(name)) old.erase();
    auto f = func::FuncOp::create(b, forward.getLoc(), name, FunctionType::get(ctx, ins, outs));
    dialect->getStageAttrHelper().setAttr(f, StringAttr::get(ctx, name));
    SmallVector<Attribute> an, rn, sh;
    for (StringRef s : argNames) an.push_back(StringAttr::get(ctx, s));
    for (StringRef s : resNames) rn.push_back(StringAttr::get(ctx, s));
    for (auto &s : shapes) {
      SmallVector<Attribute> d;
      for (auto &x : s) d.push_back(StringAttr::get(ctx, x));
      sh.push_back(ArrayAttr::get(ctx, d));
    }
    dialect->getArgNamesAttrHelper().setAttr(f, ArrayAttr::get(ctx, an));
    dialect->getResultNamesAttrHelper().setAttr(f, ArrayAttr::get(ctx, rn));
    dialect->getArgShapesAttrHelper().setAttr(f, ArrayAttr::get(ctx, sh));
    f.addEntryBlock();
    return f;
  }

  SmallVector<std::string> poolShape(const StepStack &s) {
    auto sh = s.poolType.getShape();
    SmallVector<std::string> r{"NB"};
    for (size_t i = 1; i < sh.size(); ++i) r.push_back(std::to_string(sh[i]));
    return r;
  }

  static std::string num(int64_t v) { return std::to_string(v); }

  LogicalResult run() {
    forward = module.lookupSymbol<func::FuncOp>("forward");
    if (!forward || forward.isExternal())
      return module.emitError("no @forward function: photon-derive-stages derives the stages "
                              "from the teacher-forced forward graph the importer writes");
    if (!forward->hasAttr(dialect->getStageAttrHelper().getName()))
      dialect->getStageAttrHelper().setAttr(forward, StringAttr::get(ctx, "forward"));
    if (!forward->hasAttr(dialect->getArgNamesAttrHelper().getName())) {
      dialect->getArgNamesAttrHelper().setAttr(
          forward, ArrayAttr::get(ctx, {StringAttr::get(ctx, "tokens")}));
      dialect->getResultNamesAttrHelper().setAttr(
          forward, ArrayAttr::get(ctx, {StringAttr::get(ctx, "logits")}));
      auto sh = [&](ArrayRef<std::string> d) -> Attribute {
        SmallVector<Attribute> a;
        for (const std::string &s : d) a.push_back(StringAttr::get(ctx, s));
        return ArrayAttr::get(ctx, a);
      };
      dialect->getArgShapesAttrHelper().setAttr(
          forward, ArrayAttr::get(ctx, {sh({"W"}), sh({"B", "T"}), sh({"B", "T", num(h.vocab)})}));
    }
    // Encoder stacks -> step versions.
    for (auto f : llvm::to_vector(module.getOps<func::FuncOp>())) {
      auto role = dialect->getRoleAttrHelper().getAttr(f);
      if (!role || role.getValue() != "encoder" || f.isExternal()) continue;
      if (f->hasAttr(dialect->getStepOfAttrHelper().getName())) continue;
      int64_t level = 1;
      if (auto lv = dialect->getLevelAttrHelper().getAttr(f)) level = lv.getInt();
      if (auto old = module.lookupSymbol<func::FuncOp>((f.getSymName() + "_step").str()))
        old.erase();
      auto s = makeStep(f, level, blockSize);
      if (failed(s)) return failure();
      steps[f.getSymName()] = *s;
      encoderLevel[f.getSymName()] = level;
    }
    if (steps.empty())
      return module.emitError("no encoder stack (photon.role = \"encoder\"): nothing to derive");

    // Cut points in @forward.
    llvm::DenseMap<int64_t, func::CallOp> encCall;
    SmallVector<Operation *> shifts;
    forward.walk([&](Operation *op) {
      if (auto c = dyn_cast<func::CallOp>(op)) {
        auto it = encoderLevel.find(c.getCallee());
        if (it != encoderLevel.end() && !encCall.count(it->second)) encCall[it->second] = c;
      }
      if (isa<ShiftOp>(op)) shifts.push_back(op);
    });
    Value tokens = forward.getArgument(0);
    auto tokT = cast<RankedTensorType>(tokens.getType());
    Value logits = forward.getBody().front().getTerminator()->getOperand(0);
    auto logitsT = cast<RankedTensorType>(logits.getType());
    std::string V = num(h.vocab), D = num(h.width);

    if (h.family == "vanilla") {
      auto &s = steps.begin()->second;
      Type in[] = {tokT, s.poolType, memrefI32({ShapedType::kDynamic, ShapedType::kDynamic}),
                   memrefI32({ShapedType::kDynamic})};
      auto f = newStage("lm_step", in, {logitsT}, {"tokens", "pool", "table", "lens"}, {"logits"},
                        {{"W"}, {"B", "n"}, poolShape(s), {"B", "MB"}, {"B"}, {"B", "n", V}});
      return buildSlice(f, {{tokens, 0}}, logits, {1, 2, 3}, /*posArg=*/-1);
    }

    int64_t L = h.levels;
    if ((int64_t)shifts.size() != L)
      return forward.emitError("expected one photon.shift per level (")
             << L << ") in @forward, found " << shifts.size();
    auto shiftOf = [&](int64_t level) { return shifts[L - level]; };
    for (int64_t l = 1; l <= L; ++l) {
      auto it = encCall.find(l);
      auto st = llvm::find_if(steps, [&](auto &kv) { return kv.second.level == l; });
      if (it == encCall.end() || st == steps.end())
        return forward.emitError("no call of the level-") << l << " encoder stack in @forward";
      func::CallOp call = it->second;
      StepStack &s = st->second;
      std::string C = num(h.chunkSizes[l - 1]);
      auto outT = cast<RankedTensorType>(call.getResult(0).getType());
      SmallVector<Type> in;
      Value boundary;
      std::string name = "encode_" + num(l);
      SmallVector<StringRef> names;
      SmallVector<SmallVector<std::string>> shapes{{"W"}};
      if (l == 1) {
        boundary = tokens;
        in.push_back(tokT);
        names.push_back("tokens");
        shapes.push_back({"B", "n*" + C});
      } else {
        boundary = encCall[l - 1].getResult(0);
        in.push_back(boundary.getType());
        names.push_back("x");
        shapes.push_back({"B", "n*" + C, D});
      }
      in.append({s.poolType, memrefI32({ShapedType::kDynamic, ShapedType::kDynamic}),
                 memrefI32({ShapedType::kDynamic})});
      names.append({"pool", "table", "lens"});
      shapes.push_back(poolShape(s));
      shapes.push_back({"B", "MB"});
      shapes.push_back({"B"});
      shapes.push_back({"B", "n", D});
      auto f = newStage(name, in, {outT}, names, {"out"}, shapes);
      // The slice ends at the stack call itself (its result is the stage output).
      if (failed(buildSlice(f, {{boundary, 0}}, call.getResult(0), {1, 2, 3}, -1)))
        return failure();
    }
    // latent_l: prev [B, D] -> Xhat(l-1) [B, C_l, D]
    for (int64_t l = 2; l <= L; ++l) {
      Operation *sh = shiftOf(l);
      Value target = shiftOf(l - 1)->getOperand(0);
      auto tt = cast<RankedTensorType>(target.getType());
      auto outT = RankedTensorType::get({ShapedType::kDynamic, h.chunkSizes[l - 1], h.width},
                                        tt.getElementType());
      auto prevT = RankedTensorType::get({ShapedType::kDynamic, h.width}, tt.getElementType());
      auto f = newStage("latent_" + num(l), {prevT}, {outT}, {"prev"}, {"out"},
                        {{"W"}, {"B", D}, {"B", num(h.chunkSizes[l - 1]), D}});
      if (failed(buildLatentSlice(f, sh->getResult(0), target, outT))) return failure();
    }
    // token_step: prev [S, D], tokens i32[S, C_1], pos i32[S] -> logits [S, V]
    {
      Operation *sh = shiftOf(1);
      auto prevT = RankedTensorType::get({ShapedType::kDynamic, h.width},
                                         cast<RankedTensorType>(sh->getResult(0).getType()).getElementType());
      auto tokStepT = RankedTensorType::get({ShapedType::kDynamic, h.chunkSizes[0]}, tokT.getElementType());
      auto posT = RankedTensorType::get({ShapedType::kDynamic}, IntegerType::get(ctx, 32));
      auto outT = RankedTensorType::get({ShapedType::kDynamic, h.vocab}, logitsT.getElementType());
      std::string C = num(h.chunkSizes[0]);
      auto f = newStage("token_step", {prevT, tokStepT, posT}, {outT}, {"prev", "tokens", "pos"},
                        {"logits"}, {{"W"}, {"S", D}, {"S", C}, {"S"}, {"S", V}});
      if (failed(buildTokenStep(f, sh->getResult(0), tokens, logits))) return failure();
      // The incremental token step over a per-stream window cache (token_start /
      // token_next), when the decoder part of @forward has the expected form.
      if (failed(buildIncremental(sh->getResult(0), tokens, logits))) return failure();
    }
    return success();
  }

  static bool isShapeOp(Operation *op) {
    return isa<tensor::CastOp, tensor::ExpandShapeOp, tensor::CollapseShapeOp,
               tensor::ExtractSliceOp, tensor::ConcatOp>(op);
  }

  /// token_start / token_next: the token decoder window [U_1(prev) (R rows);
  /// EmbDec(tokens)] is a causal sequence of W = R + C_1 - 1 positions, so its stack runs
  /// as a step over a local cache of W positions per stream (block size W, block s of the
  /// stream's own buffer). token_start runs the R converter rows, token_next one row.
  /// Returns success without deriving them when the forward's decoder part has another
  /// form (the runtime then uses token_step).
  LogicalResult buildIncremental(Value shiftResult, Value tokens, Value logits) {
    auto noInc = [&](const Twine &why) {
      dialect->getNoIncrementalTokenStepAttrHelper().setAttr(forward,
                                                              StringAttr::get(ctx, why.str()));
      return success();
    };
    auto H = hiddenOfLogits(logits);
    if (failed(H)) return noInc("no photon.lm_head at the end of @forward");
    int64_t R = h.prefix, C1 = h.chunkSizes[0], W = R + C1 - 1;
    // H <- (shape ops, with one slice of the window rows R-1 .. R+C_1-2) <- call @dec.
    Value v = *H;
    func::CallOp decCall;
    bool rowsOk = false;
    while (Operation *d = v.getDefiningOp()) {
      if (auto c = dyn_cast<func::CallOp>(d)) {
        decCall = c;
        break;
      }
      if (!isShapeOp(d) || isa<tensor::ConcatOp>(d)) break;
      if (auto es = dyn_cast<tensor::ExtractSliceOp>(d)) {
        auto offs = es.getStaticOffsets();
        auto sizes = es.getStaticSizes();
        rowsOk = es.getSourceType().getRank() == 3 && offs.size() == 3 && offs[1] == R - 1 &&
                 sizes[1] == C1;
      }
      v = d->getOperand(0);
    }
    if (!decCall || !rowsOk || decCall.getNumOperands() != 1 || decCall.getNumResults() != 1)
      return noInc("the token decoder's hidden states are not rows R-1 .. R+C_1-2 of one stack call");
    auto dec = module.lookupSymbol<func::FuncOp>(decCall.getCallee());
    auto role = dec ? dialect->getRoleAttrHelper().getAttr(dec) : StringAttr();
    if (!dec || !role || role.getValue() != "decoder")
      return noInc("the token decoder call is not a photon.role = \"decoder\" stack");
    // The window: converter rows and decoder embeddings of the forward's tokens, joined by
    // shape ops only.
    Value window = decCall.getOperand(0);
    Operation *emb = nullptr;
    SmallVector<Value> work{window};
    llvm::DenseSet<Value> seen;
    while (!work.empty()) {
      Value x = work.pop_back_val();
      if (!seen.insert(x).second || x == shiftResult) continue;
      Operation *d = x.getDefiningOp();
      if (!d) return noInc("the token decoder window reaches an argument of @forward");
      auto embedding = dyn_cast<EmbeddingOp>(d);
      if (embedding && embedding.getIds() == tokens) {
        if (emb && emb != d) return noInc("two token embeddings in the decoder window");
        emb = d;
        continue;
      }
      if (isa<ExpandOp, WeightOp, tensor::DimOp>(d))
        continue; // the converter (of the shift result) and sizes
      if (d->getName().getDialectNamespace() == "arith" && d->getNumResults() == 1 &&
          d->getResult(0).getType().isIndex())
        continue; // size arithmetic
      if (!isShapeOp(d))
        return noInc("the token decoder window is built by " + d->getName().getStringRef());
      for (Value o : d->getOperands()) work.push_back(o);
    }
    if (!emb) return noInc("no decoder embedding of the tokens in the window");

    // A window length fixed in the decoder's types (an export traced at one window length,
    // whose reshapes spell it out) cannot run the window one row at a time.
    if (!cast<RankedTensorType>(dec.getFunctionType().getInput(0)).isDynamicDim(1))
      return noInc("the token decoder stack is typed for whole windows of " +
                   std::to_string(cast<RankedTensorType>(dec.getFunctionType().getInput(0))
                                      .getDimSize(1)) +
                   " positions (the export's reshapes spell the window length out)");
    if (auto old = module.lookupSymbol<func::FuncOp>((dec.getSymName() + "_window").str()))
      old.erase();
    auto st = makeStep(dec, 1, W, "_window");
    if (failed(st)) return failure();
    StepStack ws = *st;
    // The activations' element type; the window cache keeps the pool's (kv-type).
    Type elt = cast<RankedTensorType>(shiftResult.getType()).getElementType();
    auto cacheT = MemRefType::get({ShapedType::kDynamic, ws.poolType.getDimSize(1), 2, W,
                                   ws.poolType.getDimSize(4), ws.poolType.getDimSize(5)},
                                  ws.poolType.getElementType());
    SmallVector<std::string> cacheShape{"S"};
    for (int64_t i = 1; i < 6; ++i) cacheShape.push_back(num(cacheT.getDimSize(i)));
    std::string V = num(h.vocab), D = num(h.width);
    auto i32 = IntegerType::get(ctx, 32);
    auto prevT = RankedTensorType::get({ShapedType::kDynamic, h.width},
                                       cast<RankedTensorType>(shiftResult.getType()).getElementType());
    auto vecT = RankedTensorType::get({ShapedType::kDynamic}, i32);
    auto outT = RankedTensorType::get({ShapedType::kDynamic, h.vocab},
                                      cast<RankedTensorType>(logits.getType()).getElementType());
    Type stackArgT = ws.step.getFunctionType().getInput(0);

    // Block table (block s of stream s) and lengths of the window cache, on the stack.
    auto bindArgs = [&](OpBuilder &b, Location loc, Value S, Value pos) -> SmallVector<Value> {
      Value c0 = arith::ConstantIndexOp::create(b, loc, 0);
      Value c1 = arith::ConstantIndexOp::create(b, loc, 1);
      Value table = memref::AllocaOp::create(
          b, loc, MemRefType::get({ShapedType::kDynamic, ShapedType::kDynamic}, i32), ValueRange{S, c1});
      Value lens = memref::AllocaOp::create(b, loc, MemRefType::get({ShapedType::kDynamic}, i32),
                                            ValueRange{S});
      scf::ForOp::create(b, loc, c0, S, c1, ValueRange{},
                         [&](OpBuilder &ib, Location l, Value s, ValueRange) {
                           Value si = arith::IndexCastOp::create(ib, l, i32, s);
                           memref::StoreOp::create(ib, l, si, table, ValueRange{s, c0});
                           Value len;
                           if (pos) {
                             Value p = tensor::ExtractOp::create(ib, l, pos, ValueRange{s});
                             Value off = arith::ConstantOp::create(ib, l, ib.getI32IntegerAttr(R - 1));
                             len = arith::AddIOp::create(ib, l, p, off);
                           } else {
                             len = arith::ConstantOp::create(ib, l, ib.getI32IntegerAttr(0));
                           }
                           memref::StoreOp::create(ib, l, len, lens, ValueRange{s});
                           scf::YieldOp::create(ib, l);
                         });
      return {table, lens};
    };
    auto callWindow = [&](OpBuilder &b, Location loc, Value x, Value cache, Value S, Value pos) {
      if (x.getType() != stackArgT) x = tensor::CastOp::create(b, loc, stackArgT, x);
      auto tl = bindArgs(b, loc, S, pos);
      return func::CallOp::create(b, loc, ws.step, ValueRange{x, cache, tl[0], tl[1]}).getResult(0);
    };
    // Rows [row, row+1) of y [S, ?, D] as [S, 1, D].
    auto rowOf = [&](OpBuilder &b, Location loc, Value y, int64_t row, Value S) {
      auto t = RankedTensorType::get({ShapedType::kDynamic, 1, h.width}, elt);
      SmallVector<OpFoldResult> offs{b.getIndexAttr(0), b.getIndexAttr(row), b.getIndexAttr(0)};
      SmallVector<OpFoldResult> sizes{S, b.getIndexAttr(1), b.getIndexAttr(h.width)};
      SmallVector<OpFoldResult> strides(3, b.getIndexAttr(1));
      return tensor::ExtractSliceOp::create(b, loc, t, y, offs, sizes, strides).getResult();
    };

    // token_start(prev [S, D], cache) -> logits [S, V] of position 0.
    {
      auto f = newStage("token_start", {prevT, cacheT}, {outT}, {"prev", "cache"}, {"logits"},
                        {{"W"}, {"S", D}, cacheShape, {"S", V}});
      OpBuilder b(ctx);
      Location loc = f.getLoc();
      Block &entry = f.getBody().front();
      b.setInsertionPointToStart(&entry);
      Value S = tensor::DimOp::create(b, loc, entry.getArgument(0), 0);
      IRMapping map;
      map.map(shiftResult, asOneUnit(b, loc, entry.getArgument(0), shiftResult.getType()));
      // The token rows of the window are not needed: any tokens do (they are cut off below).
      auto tokT = cast<RankedTensorType>(tokens.getType());
      Value zt = tensor::EmptyOp::create(b, loc, ArrayRef<int64_t>{ShapedType::kDynamic, C1},
                                         tokT.getElementType(), ValueRange{S});
      Value zero = arith::ConstantOp::create(b, loc, b.getIntegerAttr(tokT.getElementType(), 0));
      zt = linalg::FillOp::create(b, loc, ValueRange{zero}, ValueRange{zt}).getResult(0);
      map.map(tokens, tensor::CastOp::create(b, loc, tokT, zt).getResult());
      auto x = materialize(b, window, map, {});
      if (failed(x)) return failure();
      Value xw = *x;
      if (cast<RankedTensorType>(xw.getType()).getRank() != 3)
        return forward.emitError("token decoder window is not [N, W, D]");
      auto rT = RankedTensorType::get({ShapedType::kDynamic, R, h.width}, elt);
      SmallVector<OpFoldResult> offs(3, b.getIndexAttr(0)), strides(3, b.getIndexAttr(1));
      SmallVector<OpFoldResult> sizes{S, b.getIndexAttr(R), b.getIndexAttr(h.width)};
      Value xr = tensor::ExtractSliceOp::create(b, loc, rT, xw, offs, sizes, strides);
      Value y = callWindow(b, loc, xr, entry.getArgument(1), S, Value());
      auto lg = applyTail(b, loc, *H, logits, rowOf(b, loc, y, R - 1, S), S, outT);
      if (failed(lg)) return failure();
      func::ReturnOp::create(b, loc, *lg);
    }
    // token_next(token [S], pos [S], cache) -> logits [S, V] of position pos >= 1.
    {
      auto f = newStage("token_next", {vecT, vecT, cacheT}, {outT}, {"token", "pos", "cache"},
                        {"logits"}, {{"W"}, {"S"}, {"S"}, cacheShape, {"S", V}});
      OpBuilder b(ctx);
      Location loc = f.getLoc();
      Block &entry = f.getBody().front();
      b.setInsertionPointToStart(&entry);
      Value S = tensor::DimOp::create(b, loc, entry.getArgument(0), 0);
      auto t2 = RankedTensorType::get({ShapedType::kDynamic, 1}, i32);
      Value tok = tensor::ExpandShapeOp::create(
          b, loc, t2, entry.getArgument(0), ArrayRef<ReassociationIndices>{{0, 1}},
          ArrayRef<OpFoldResult>{S, b.getIndexAttr(1)});
      if (tok.getType() != tokens.getType())
        tok = tensor::CastOp::create(b, loc, tokens.getType(), tok);
      IRMapping map;
      map.map(tokens, tok);
      auto e = materialize(b, emb->getResult(0), map, {});
      if (failed(e)) return failure();
      Value y = callWindow(b, loc, *e, entry.getArgument(2), S, entry.getArgument(1));
      auto lg = applyTail(b, loc, *H, logits, rowOf(b, loc, y, 0, S), S, outT);
      if (failed(lg)) return failure();
      func::ReturnOp::create(b, loc, *lg);
    }
    return success();
  }

  /// [B, D] -> [B, 1, D] cast to the type of `like`.
  Value asOneUnit(OpBuilder &b, Location loc, Value prev, Type like) {
    auto pt = cast<RankedTensorType>(prev.getType());
    auto t3 = RankedTensorType::get({ShapedType::kDynamic, 1, pt.getDimSize(1)}, pt.getElementType());
    Value e = tensor::ExpandShapeOp::create(
        b, loc, t3, prev, ArrayRef<ReassociationIndices>{{0, 1}, {2}},
        ArrayRef<OpFoldResult>{tensor::getMixedSize(b, loc, prev, 0), b.getIndexAttr(1),
                               b.getIndexAttr(pt.getDimSize(1))});
    if (e.getType() != like) e = tensor::CastOp::create(b, loc, like, e);
    return e;
  }

  LogicalResult buildSlice(func::FuncOp f, ArrayRef<std::pair<Value, unsigned>> boundary,
                           Value target, ArrayRef<unsigned> cacheArgIdx, int) {
    OpBuilder b(ctx);
    Block &entry = f.getBody().front();
    b.setInsertionPointToStart(&entry);
    IRMapping map;
    for (auto [v, i] : boundary) map.map(v, entry.getArgument(i));
    SmallVector<Value> cache;
    for (unsigned i : cacheArgIdx) cache.push_back(entry.getArgument(i));
    auto r = materialize(b, target, map, cache);
    if (failed(r)) return failure();
    Value out = *r;
    Type want = f.getFunctionType().getResult(0);
    if (out.getType() != want) out = tensor::CastOp::create(b, f.getLoc(), want, out);
    func::ReturnOp::create(b, f.getLoc(), out);
    return success();
  }

  LogicalResult buildLatentSlice(func::FuncOp f, Value shiftResult, Value target,
                                 RankedTensorType outT) {
    OpBuilder b(ctx);
    Block &entry = f.getBody().front();
    b.setInsertionPointToStart(&entry);
    IRMapping map;
    map.map(shiftResult, asOneUnit(b, f.getLoc(), entry.getArgument(0), shiftResult.getType()));
    auto r = materialize(b, target, map, {});
    if (failed(r)) return failure();
    Value out = tensor::CastOp::create(b, f.getLoc(), outT, *r);
    func::ReturnOp::create(b, f.getLoc(), out);
    return success();
  }

  /// The row-wise tail of the token decoder: walks back from `logits` through the LM head,
  /// RMSNorms and casts to the hidden states H [B, T, D] they are applied to.
  FailureOr<Value> hiddenOfLogits(Value logits) {
    Value v = logits;
    bool head = false;
    while (Operation *d = v.getDefiningOp()) {
      if (isa<LMHeadOp>(d)) head = true;
      else if (!isa<RMSNormOp, tensor::CastOp>(d)) break;
      v = d->getOperand(0); // x of the head and the norm, the source of the cast
    }
    if (!head) return failure();
    return v;
  }

  /// The tail (final norm, LM head) of @forward applied to `rows` [S, 1, D] (in place of
  /// the hidden states H): logits [S, V].
  FailureOr<Value> applyTail(OpBuilder &b, Location loc, Value H, Value logits, Value rows,
                             Value S, RankedTensorType outT) {
    if (rows.getType() != H.getType()) rows = tensor::CastOp::create(b, loc, H.getType(), rows);
    IRMapping map;
    map.map(H, rows);
    auto r = materialize(b, logits, map, {});
    if (failed(r)) return failure();
    Value lg = *r;
    auto lt = cast<RankedTensorType>(lg.getType());
    auto t3 = RankedTensorType::get({ShapedType::kDynamic, 1, outT.getDimSize(1)}, lt.getElementType());
    if (lt != t3) lg = tensor::CastOp::create(b, loc, t3, lg);
    SmallVector<OpFoldResult> offs(3, b.getIndexAttr(0)), strides(3, b.getIndexAttr(1));
    SmallVector<OpFoldResult> sizes{S, b.getIndexAttr(1), b.getIndexAttr(outT.getDimSize(1))};
    return tensor::ExtractSliceOp::create(b, loc, outT, lg, offs, sizes, strides).getResult();
  }

  LogicalResult buildTokenStep(func::FuncOp f, Value shiftResult, Value tokens, Value logits) {
    OpBuilder b(ctx);
    Location loc = f.getLoc();
    Block &entry = f.getBody().front();
    b.setInsertionPointToStart(&entry);
    IRMapping map;
    map.map(shiftResult, asOneUnit(b, loc, entry.getArgument(0), shiftResult.getType()));
    Value tok = entry.getArgument(1);
    if (tok.getType() != tokens.getType()) tok = tensor::CastOp::create(b, loc, tokens.getType(), tok);
    map.map(tokens, tok);
    Value pos = entry.getArgument(2);
    auto outT = cast<RankedTensorType>(f.getFunctionType().getResult(0));
    Value S = tensor::DimOp::create(b, loc, entry.getArgument(0), 0);
    // Gather the hidden state of position pos[s] before the final norm and LM head, so that
    // the head runs on one row per stream instead of C_1.
    auto H = hiddenOfLogits(logits);
    Value all, init;
    int64_t width = outT.getDimSize(1);
    if (succeeded(H)) {
      auto r = materialize(b, *H, map, {});
      if (failed(r)) return failure();
      all = *r;
      width = cast<RankedTensorType>(all.getType()).getDimSize(2);
    } else {
      auto r = materialize(b, logits, map, {});
      if (failed(r)) return failure();
      all = *r;
    }
    auto gT = RankedTensorType::get({ShapedType::kDynamic, width},
                                    cast<RankedTensorType>(all.getType()).getElementType());
    init = tensor::EmptyOp::create(b, loc, gT.getShape(), gT.getElementType(), ValueRange{S});
    auto maps = SmallVector<AffineMap>{
        AffineMap::get(2, 0, {b.getAffineDimExpr(0)}, ctx), b.getMultiDimIdentityMap(2)};
    auto g = linalg::GenericOp::create(
        b, loc, TypeRange{gT}, ValueRange{pos}, ValueRange{init}, maps,
        SmallVector<utils::IteratorType>(2, utils::IteratorType::parallel),
        [&](OpBuilder &nb, Location l, ValueRange a) {
          Value s = linalg::IndexOp::create(nb, l, 0);
          Value v = linalg::IndexOp::create(nb, l, 1);
          Value p = arith::IndexCastOp::create(nb, l, nb.getIndexType(), a[0]);
          Value x = tensor::ExtractOp::create(nb, l, all, ValueRange{s, p, v});
          linalg::YieldOp::create(nb, l, x);
        });
    Value out = g.getResult(0);
    if (succeeded(H)) {
      auto r = applyTail(b, loc, *H, logits, asOneUnit(b, loc, out, H->getType()), S, outT);
      if (failed(r)) return failure();
      out = *r;
    }
    func::ReturnOp::create(b, loc, out);
    return success();
  }
};

struct PhotonDeriveStagesPass : public impl::PhotonDeriveStagesBase<PhotonDeriveStagesPass> {
  using Base::Base;
  void getDependentDialects(DialectRegistry &registry) const override {
    Base::getDependentDialects(registry);
    registry.insert<bufferization::BufferizationDialect, linalg::LinalgDialect, scf::SCFDialect,
                    memref::MemRefDialect>();
  }
  void runOnOperation() override {
    ModuleOp m = getOperation();
    Deriver d;
    d.ctx = &getContext();
    if (kvType == "f32") d.kvElement = Float32Type::get(d.ctx);
    else if (kvType == "f16") d.kvElement = Float16Type::get(d.ctx);
    else if (!kvType.empty()) {
      m.emitError("photon-derive-stages: kv-type must be f32 or f16, got '") << kvType << "'";
      return signalPassFailure();
    }
    auto h = getHierarchy(m);
    if (failed(h)) return signalPassFailure();
    d.module = m;
    d.h = *h;
    d.blockSize = blockSize;
    d.dialect = getPhotonDialect(d.ctx);
    if (failed(d.run())) return signalPassFailure();
  }
};

} // namespace
} // namespace photon
} // namespace mlir
