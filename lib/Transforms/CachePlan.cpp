//===- CachePlan.cpp - KV cache plan and compile-time cost model ---------===//

#include "photon/Transforms/CachePlan.h"
#include "photon/Transforms/Passes.h"

#include "photon/Dialect/PhotonOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Format.h"

#include <cmath>

namespace mlir {
namespace photon {

int64_t Hierarchy::tokensPerUnit(int64_t level) const {
  int64_t t = 1;
  for (int64_t l = 0; l < level && l < (int64_t)chunkSizes.size(); ++l) t *= chunkSizes[l];
  return t;
}

int64_t LevelCache::bytesFor(int64_t tokens) const {
  int64_t units = (tokens + tokensPerUnit - 1) / tokensPerUnit;
  return bytesPerUnit * units;
}

FailureOr<Hierarchy> getHierarchy(ModuleOp module) {
  constexpr StringLiteral name = PhotonDialect::HierarchyAttrHelper::getNameStr();
  Attribute a = module->getAttr(name);
  if (!a)
    return module.emitError("module has no `")
               << name
               << "` attribute (the importer writes "
                  "#photon.hierarchy<family = ..., levels = ..., chunk_sizes = [...], "
                  "prefix = ..., width = ..., vocab = ...>)",
           failure();
  auto attr = dyn_cast<HierarchyAttr>(a);
  if (!attr)
    return module.emitError("`") << name << "` is not a #photon.hierarchy: " << a, failure();
  Hierarchy h;
  h.family = attr.getFamily().str();
  h.levels = attr.getLevels();
  h.chunkSizes.assign(attr.getChunkSizes().begin(), attr.getChunkSizes().end());
  h.prefix = attr.getPrefix();
  h.width = attr.getWidth();
  h.vocab = attr.getVocab();
  return h;
}

static int64_t elementBytes(Type t) {
  if (t.isIntOrFloat()) return std::max<int64_t>(1, t.getIntOrFloatBitWidth() / 8);
  return 4;
}

static std::string dtypeName(Type t) {
  return t.isF32() ? "f32" : t.isF16() ? "f16" : t.isBF16() ? "bf16" : "?";
}

/// The cache element type of the step derived from stack `stack` (its cache_bind's
/// `!photon.kv_cache`), or null before photon-derive-stages.
static Type stepCacheElement(ModuleOp module, PhotonDialect *dialect, StringRef stack) {
  Type element;
  for (auto f : module.getOps<func::FuncOp>()) {
    auto of = dialect->getStepOfAttrHelper().getAttr(f);
    if (!of || of.getValue() != stack) continue;
    f.walk([&](CacheBindOp bind) {
      element = bind.getType().getElement();
      return WalkResult::interrupt();
    });
    if (element) break;
  }
  return element;
}

static int64_t numElements(Type t) {
  auto st = dyn_cast<ShapedType>(t);
  if (!st || !st.hasStaticShape()) return 0;
  return st.getNumElements();
}

/// Multiply-adds per position of one matmul-like op (weights N x K -> N*K).
static int64_t opMacs(Operation *op) {
  if (auto linear = dyn_cast<LinearOp>(op)) return numElements(linear.getW().getType());
  if (auto head = dyn_cast<LMHeadOp>(op)) return numElements(head.getW().getType());
  if (auto cc = dyn_cast<ChunkCompressOp>(op)) return numElements(cc.getW().getType());
  if (auto expand = dyn_cast<ExpandOp>(op)) return numElements(expand.getW().getType());
  if (auto mlp = dyn_cast<SwiGLUOp>(op))
    return numElements(mlp.getWGate().getType()) + numElements(mlp.getWUp().getType()) +
           numElements(mlp.getWDown().getType());
  return 0;
}

static int64_t weightBytesOf(Operation *root, llvm::StringSet<> *seen = nullptr) {
  llvm::StringSet<> local;
  if (!seen) seen = &local;
  int64_t bytes = 0;
  root->walk([&](WeightOp op) {
    if (!seen->insert(op.getName()).second) return;
    auto st = cast<ShapedType>(op.getType());
    if (st.hasStaticShape()) bytes += st.getNumElements() * elementBytes(st.getElementType());
  });
  return bytes;
}

FailureOr<CachePlan> planCaches(ModuleOp module, int64_t blockSize) {
  auto h = getHierarchy(module);
  if (failed(h)) return failure();
  CachePlan plan;
  plan.hierarchy = *h;
  bool vanilla = h->family == "vanilla";
  int64_t L = h->levels;

  PhotonDialect *dialect = getPhotonDialect(module.getContext());
  for (auto f : module.getOps<func::FuncOp>()) {
    auto role = dialect->getRoleAttrHelper().getAttr(f);
    if (!role || f.isExternal() || f->hasAttr(dialect->getStepOfAttrHelper().getName()))
      continue;
    StackInfo s;
    s.func = f.getSymName().str();
    s.role = role.str();
    if (auto lv = dialect->getLevelAttrHelper().getAttr(f)) s.level = lv.getInt();
    f.walk([&](Operation *op) {
      s.macs += opMacs(op);
      auto attention = [&](auto attn) {
        ++s.layers;
        auto q = cast<ShapedType>(attn.getQ().getType());
        auto k = cast<ShapedType>(attn.getK().getType());
        s.heads = q.getDimSize(2);
        s.headDim = q.getDimSize(3);
        s.kvHeads = k.getDimSize(2);
        s.elementBytes = elementBytes(k.getElementType());
        s.dtype = dtypeName(k.getElementType());
      };
      if (auto attn = dyn_cast<CausalAttentionOp>(op)) attention(attn);
      else if (auto attn = dyn_cast<BoundedAttentionOp>(op)) attention(attn);
    });
    s.cacheDtype = s.dtype;
    s.cacheElementBytes = s.elementBytes;
    if (Type ce = stepCacheElement(module, dialect, f.getSymName())) {
      s.cacheDtype = dtypeName(ce);
      s.cacheElementBytes = elementBytes(ce);
    }
    s.weightBytes = weightBytesOf(f);
    plan.stacks.push_back(s);
  }
  if (plan.stacks.empty())
    return module.emitError("no stack functions (photon.role = \"encoder\" / \"decoder\") in the "
                            "module: cannot plan caches"),
           failure();

  // One cache per encoder stack.
  for (auto &s : plan.stacks) {
    if (s.role != "encoder") continue;
    LevelCache c;
    c.level = vanilla ? 1 : s.level;
    c.layers = s.layers;
    c.kvHeads = s.kvHeads;
    c.headDim = s.headDim;
    c.dtype = s.cacheDtype;
    c.elementBytes = s.cacheElementBytes;
    c.blockSize = blockSize;
    c.bytesPerUnit = 2 * s.layers * s.kvHeads * s.headDim * s.cacheElementBytes;
    c.tokensPerUnit = vanilla ? 1 : h->tokensPerUnit(c.level);
    if (vanilla) c.modes = {}; // one mode only: used whenever the model runs
    else if (c.level == L) c.modes = {"hiergen", "recgen"}; // RecGen keeps the top level only
    else c.modes = {"hiergen"};
    plan.caches.push_back(c);
  }
  std::sort(plan.caches.begin(), plan.caches.end(),
            [](const LevelCache &a, const LevelCache &b) { return a.level < b.level; });

  // The token decoder's window cache (level-1 decoder stack, R + C_1 - 1 positions).
  if (!vanilla && L >= 1 && !h->chunkSizes.empty())
    for (auto &s : plan.stacks) {
      if (s.role != "decoder" || s.level != 1 || s.layers == 0) continue;
      LocalCache lc;
      lc.layers = s.layers;
      lc.kvHeads = s.kvHeads;
      lc.headDim = s.headDim;
      lc.dtype = s.cacheDtype;
      lc.positions = h->prefix + h->chunkSizes[0] - 1;
      lc.bytesPerStream =
          2 * s.layers * s.kvHeads * s.headDim * s.cacheElementBytes * lc.positions;
      lc.streamsPerSequence = h->tokensPerUnit(L) / h->chunkSizes[0];
      plan.localCaches.push_back(lc);
    }

  // Forward-level ops: chunk_compress (levels 2..L in order), expand (levels L..1),
  // shift (start latents, levels L..1), embeddings, LM head.
  auto fwd = module.lookupSymbol<func::FuncOp>("forward");
  std::vector<int64_t> ccMacs, exMacs;
  int64_t ccBytes2 = 0;
  (void)ccBytes2;
  std::vector<int64_t> ccBytes, exBytes;
  int64_t lmMacs = 0, lmBytes = 0, embBytesPerToken = 0;
  if (fwd) {
    llvm::StringSet<> seen;
    fwd.walk([&](Operation *op) {
      auto wbytes = [&](Value v) -> int64_t {
        auto st = dyn_cast<ShapedType>(v.getType());
        return st && st.hasStaticShape() ? st.getNumElements() * elementBytes(st.getElementType()) : 0;
      };
      if (auto cc = dyn_cast<ChunkCompressOp>(op)) {
        ccMacs.push_back(opMacs(op));
        ccBytes.push_back(wbytes(cc.getNormW()) + wbytes(cc.getW()) + wbytes(cc.getB()));
      } else if (auto expand = dyn_cast<ExpandOp>(op)) {
        exMacs.push_back(opMacs(op));
        exBytes.push_back(wbytes(expand.getW()) + wbytes(expand.getB()));
      } else if (auto head = dyn_cast<LMHeadOp>(op)) {
        lmMacs += opMacs(op);
        lmBytes += wbytes(head.getW());
      } else if (auto emb = dyn_cast<EmbeddingOp>(op)) {
        auto st = cast<ShapedType>(emb.getTable().getType());
        embBytesPerToken += st.getDimSize(1) * elementBytes(st.getElementType());
      } else if (auto pe = dyn_cast<PositionEmbeddingOp>(op)) {
        int64_t rows = cast<ShapedType>(pe.getTable().getType()).getDimSize(0);
        if (!ShapedType::isDynamic(rows) && (plan.maxPositions == 0 || rows < plan.maxPositions))
          plan.maxPositions = rows;
      } else if (auto shift = dyn_cast<ShiftOp>(op)) {
        if (auto start = shift.getStart().getDefiningOp<WeightOp>())
          plan.startLatents.push_back({L - (int64_t)plan.startLatents.size(), start.getName().str()});
      }
    });
  }

  // Cost per generated token, per level.
  int64_t nLevels = vanilla ? 1 : std::max<int64_t>(L, 1);
  plan.costs.resize(nLevels);
  for (int64_t l = 1; l <= nLevels; ++l) plan.costs[l - 1].level = l;
  for (auto &c : plan.caches) {
    if (c.level < 1 || c.level > nLevels) continue;
    plan.costs[c.level - 1].cacheBytesPer1k = c.bytesFor(1000);
  }
  auto add = [&](int64_t level, double bytes, double macs, double perTokens) {
    if (level < 1 || level > nLevels) return;
    plan.costs[level - 1].weightBytesPerToken += bytes / perTokens;
    plan.costs[level - 1].flopsPerToken += 2.0 * macs / perTokens;
  };
  // The token decoder steps every chunk stream of a meta-context together (one row per
  // stream), so at batch 1 one read of G_1's weights and of the LM head serves
  // streams = C_1...C_L / C_1 tokens. FLOPs stay per token.
  double streams = vanilla || L < 1 ? 1.0 : (double)h->tokensPerUnit(L) / h->chunkSizes[0];
  double f1Bytes = 0, f1Flops = 0;
  plan.tokenStreams = static_cast<int64_t>(streams);
  for (auto &s : plan.stacks) {
    int64_t lvl = vanilla ? 1 : s.level;
    if (s.role == "encoder") {
      add(lvl, s.weightBytes, s.macs, vanilla ? 1 : h->tokensPerUnit(lvl));
      if (!vanilla) plan.prefillFlopsPerToken += 2.0 * s.macs / h->tokensPerUnit(lvl);
      if (!vanilla && lvl == 1) { // F1: HierGen's alone (RecGen skips it at decode time)
        f1Bytes += s.weightBytes / (double)h->tokensPerUnit(1);
        f1Flops += 2.0 * s.macs / h->tokensPerUnit(1);
      }
    } else if (lvl <= 1) {
      // G_1 runs once per token, all streams of a meta-context in one step.
      add(lvl, s.weightBytes / streams, s.macs, 1.0);
    } else {
      // G_l (l >= 2) runs C_l steps per level-l unit.
      add(lvl, s.weightBytes, s.macs, (double)h->tokensPerUnit(lvl) / h->chunkSizes[lvl - 1]);
    }
  }
  for (size_t i = 0; i < ccMacs.size(); ++i) {
    add(2 + (int64_t)i, ccBytes[i], ccMacs[i], h->tokensPerUnit(2 + i));
    plan.prefillFlopsPerToken += 2.0 * ccMacs[i] / h->tokensPerUnit(2 + i);
  }
  for (size_t i = 0; i < exMacs.size(); ++i) {
    int64_t lvl = L - (int64_t)i;
    add(lvl, exBytes[i], exMacs[i], h->tokensPerUnit(lvl));
  }
  add(1, lmBytes / streams, lmMacs, 1.0);
  add(1, embBytesPerToken, 0.0, 1.0);

  for (auto &c : plan.caches) {
    plan.cacheBytesPer1kHierGen += c.bytesFor(1000);
    if (c.level == L || vanilla) plan.cacheBytesPer1kRecGen = c.bytesFor(1000);
  }
  for (auto &w : plan.localCaches)
    plan.windowBytesPerSequence += w.bytesPerStream * w.streamsPerSequence;
  plan.logitsBytesPerSequence = plan.tokenStreams * h->vocab * 4;
  plan.vanillaLogitsBytesPerSequence = h->vocab * 4;
  for (auto &lc : plan.costs) {
    plan.weightBytesPerToken += lc.weightBytesPerToken;
    plan.flopsPerToken += lc.flopsPerToken;
  }
  if (vanilla) plan.prefillFlopsPerToken = plan.flopsPerToken;
  plan.recgenWeightBytesPerToken = plan.weightBytesPerToken - f1Bytes;
  plan.recgenFlopsPerToken = plan.flopsPerToken - f1Flops;

  // The vanilla model of the same width: as many layers as all stacks together, the
  // layer shape of the level-1 (or first) encoder stack.
  const StackInfo *ref = nullptr;
  for (auto &s : plan.stacks)
    if (s.role == "encoder" && (!ref || s.level < ref->level)) ref = &s;
  if (!ref) ref = &plan.stacks.front();
  for (auto &s : plan.stacks) plan.vanillaLayers += s.layers;
  if (ref->layers > 0) {
    int64_t D = h->width;
    double layerBytes = (double)(ref->weightBytes - D * ref->elementBytes) / ref->layers;
    double layerMacs = (double)ref->macs / ref->layers;
    plan.vanillaCacheBytesPer1k =
        2 * plan.vanillaLayers * ref->kvHeads * ref->headDim * ref->cacheElementBytes * 1000;
    plan.vanillaWeightBytesPerToken = plan.vanillaLayers * layerBytes + D * ref->elementBytes +
                                      (double)h->vocab * D * ref->elementBytes +
                                      D * ref->elementBytes;
    plan.vanillaFlopsPerToken = 2.0 * (plan.vanillaLayers * layerMacs + (double)h->vocab * D);
  }
  return plan;
}

void printReport(const CachePlan &p, llvm::raw_ostream &os) {
  const Hierarchy &h = p.hierarchy;
  os << "photon cache plan: family " << h.family << ", levels " << h.levels << ", chunk sizes [";
  for (size_t i = 0; i < h.chunkSizes.size(); ++i) os << (i ? ", " : "") << h.chunkSizes[i];
  os << "], prefix " << h.prefix << ", width " << h.width << ", vocab " << h.vocab << "\n";
  for (auto &c : p.caches) {
    os << "cache level " << c.level << ": layers " << c.layers << ", kv_heads " << c.kvHeads
       << ", head_dim " << c.headDim << ", " << c.dtype << ", bytes_per_unit " << c.bytesPerUnit
       << ", tokens_per_unit " << c.tokensPerUnit << ", block_size " << c.blockSize
       << ", modes";
    for (auto &m : c.modes) os << " " << m;
    os << "\n";
  }
  for (auto &w : p.localCaches)
    os << "local window cache level " << w.level << " (token decoder): layers " << w.layers
       << ", kv_heads " << w.kvHeads << ", head_dim " << w.headDim << ", " << w.dtype
       << ", positions " << w.positions << ", bytes_per_stream " << w.bytesPerStream
       << ", streams_per_sequence " << w.streamsPerSequence
       << ", bytes_per_sequence " << w.bytesPerStream * w.streamsPerSequence
       << ", grows_with_context no\n";
  if (p.tokenStreams > 1)
    os << "token decoder: " << p.tokenStreams
       << " chunk streams per step (G_1 and the LM head are read once per step at batch 1)\n";
  for (auto &lc : p.costs)
    os << llvm::format("level %lld: cache bytes per 1000 tokens %lld, weight bytes read per "
                       "token %.1f, FLOPs per token %.1f\n",
                       (long long)lc.level, (long long)lc.cacheBytesPer1k,
                       lc.weightBytesPerToken, lc.flopsPerToken);
  auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  os << llvm::format("total: cache bytes per 1000 tokens %lld (hiergen), %lld (recgen); "
                     "weight bytes read per token %.1f; FLOPs per token %.1f\n",
                     (long long)p.cacheBytesPer1kHierGen, (long long)p.cacheBytesPer1kRecGen,
                     p.weightBytesPerToken, p.flopsPerToken);
  os << llvm::format("per sequence besides the caches: token-decoder windows %lld, logits "
                     "%lld, total %lld bytes (vanilla: logits %lld)\n",
                     (long long)p.windowBytesPerSequence, (long long)p.logitsBytesPerSequence,
                     (long long)p.nonCacheBytesPerSequence(),
                     (long long)p.vanillaLogitsBytesPerSequence);
  os << llvm::format("vanilla of the same width (%lld layers): cache bytes per 1000 tokens "
                     "%lld; weight bytes read per token %.1f; FLOPs per token %.1f\n",
                     (long long)p.vanillaLayers, (long long)p.vanillaCacheBytesPer1k,
                     p.vanillaWeightBytesPerToken, p.vanillaFlopsPerToken);
  os << llvm::format("ratio to vanilla: cache %.6f (hiergen), %.6f (recgen); weight bytes "
                     "%.4f; FLOPs %.4f\n",
                     ratio(p.cacheBytesPer1kHierGen, p.vanillaCacheBytesPer1k),
                     ratio(p.cacheBytesPer1kRecGen, p.vanillaCacheBytesPer1k),
                     ratio(p.weightBytesPerToken, p.vanillaWeightBytesPerToken),
                     ratio(p.flopsPerToken, p.vanillaFlopsPerToken));
}

llvm::json::Object hierarchyJson(const CachePlan &p) {
  const Hierarchy &h = p.hierarchy;
  llvm::json::Array cs;
  for (int64_t c : h.chunkSizes) cs.push_back(c);
  llvm::json::Object o{{"family", h.family}, {"vocab", h.vocab}, {"width", h.width},
                       {"levels", h.levels}, {"chunk_sizes", std::move(cs)},
                       {"prefix", h.prefix},
                       {"tokenizer", llvm::json::Object{{"kind", "byte"}}}};
  if (p.maxPositions > 0) o["max_positions"] = p.maxPositions;
  return o;
}

llvm::json::Object startLatentsJson(const CachePlan &p) {
  llvm::json::Object o;
  for (auto &[l, n] : p.startLatents) o[std::to_string(l)] = n;
  return o;
}

llvm::json::Array cachesJson(const CachePlan &p) {
  llvm::json::Array a;
  for (auto &c : p.caches) {
    llvm::json::Array modes;
    for (auto &m : c.modes) modes.push_back(m);
    a.push_back(llvm::json::Object{{"level", c.level},
                                   {"layers", c.layers},
                                   {"kv_heads", c.kvHeads},
                                   {"head_dim", c.headDim},
                                   {"dtype", c.dtype},
                                   {"block_size", c.blockSize},
                                   {"bytes_per_unit", c.bytesPerUnit},
                                   {"tokens_per_unit", c.tokensPerUnit},
                                   {"modes", std::move(modes)}});
  }
  return a;
}

llvm::json::Array localCachesJson(const CachePlan &p) {
  llvm::json::Array a;
  for (auto &w : p.localCaches)
    a.push_back(llvm::json::Object{{"level", w.level},
                                   {"layers", w.layers},
                                   {"kv_heads", w.kvHeads},
                                   {"head_dim", w.headDim},
                                   {"dtype", w.dtype},
                                   {"positions", w.positions},
                                   {"bytes_per_stream", w.bytesPerStream},
                                   {"streams_per_sequence", w.streamsPerSequence},
                                   {"bytes_per_sequence", w.bytesPerStream * w.streamsPerSequence},
                                   {"grows_with_context", false},
                                   {"stages", llvm::json::Array{"token_start", "token_next"}}});
  return a;
}

llvm::json::Object costModelJson(const CachePlan &p) {
  llvm::json::Object cache;
  for (auto &lc : p.costs) cache[std::to_string(lc.level)] = lc.cacheBytesPer1k;
  cache["total"] = p.cacheBytesPer1kHierGen;
  cache["recgen"] = p.cacheBytesPer1kRecGen;
  auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  return llvm::json::Object{
      {"cache_bytes_per_1k_tokens", std::move(cache)},
      {"weight_bytes_per_token", p.weightBytesPerToken},
      {"token_streams_per_step", p.tokenStreams},
      {"flops_per_token", p.flopsPerToken},
      {"prefill_flops_per_token", p.prefillFlopsPerToken},
      {"recgen", llvm::json::Object{{"weight_bytes_per_token", p.recgenWeightBytesPerToken},
                                    {"flops_per_token", p.recgenFlopsPerToken}}},
      {"local_caches", localCachesJson(p)},
      {"non_cache_bytes_per_sequence",
       llvm::json::Object{{"token_decoder_windows", p.windowBytesPerSequence},
                          {"logits", p.logitsBytesPerSequence},
                          {"total", p.nonCacheBytesPerSequence()}}},
      {"vanilla", llvm::json::Object{{"layers", p.vanillaLayers},
                                     {"non_cache_bytes_per_sequence", p.vanillaLogitsBytesPerSequence},
                                     {"cache_bytes_per_1k_tokens", p.vanillaCacheBytesPer1k},
                                     {"weight_bytes_per_token", p.vanillaWeightBytesPerToken},
                                     {"flops_per_token", p.vanillaFlopsPerToken}}},
      {"ratio_to_vanilla",
       llvm::json::Object{
           {"cache_hiergen", ratio(p.cacheBytesPer1kHierGen, p.vanillaCacheBytesPer1k)},
           {"cache_recgen", ratio(p.cacheBytesPer1kRecGen, p.vanillaCacheBytesPer1k)},
           {"weight_bytes", ratio(p.weightBytesPerToken, p.vanillaWeightBytesPerToken)},
           {"flops", ratio(p.flopsPerToken, p.vanillaFlopsPerToken)}}}};
}

} // namespace photon
} // namespace mlir
