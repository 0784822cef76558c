//===- CachePlan.h - KV cache plan and compile-time cost model --*- C++ -*-===//
//
// Every cache a model's generation needs, derived from the photon IR (the hierarchy
// attribute and the stack functions), and the cost model photon-compile --report prints:
// cache bytes per 1,000 tokens, weight bytes read per generated token and FLOPs per
// generated token, per level and in total, with the ratios to a vanilla model of the same
// width (same D, heads, FFN width and vocabulary; as many layers as all stacks together).
//
// Cache sizes follow photon-model.md section 3 (the "+ local" decoder windows, at most
// R + C - 1 positions, are dropped after each chunk and not counted; the token decoder's
// window cache is listed apart, as LocalCache):
//   vanilla:  2 * N * d_kv * e * T
//   photon:   2 * d_kv * e * sum_l N_E(l) * ceil(T / (C_1...C_l))   (HierGen)
//             2 * d_kv * e * N_E(L) * ceil(T / (C_1...C_L))          (RecGen)
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_TRANSFORMS_CACHEPLAN_H
#define PHOTON_TRANSFORMS_CACHEPLAN_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <string>
#include <vector>

namespace mlir {
namespace photon {

/// The module's #photon.hierarchy.
struct Hierarchy {
  std::string family = "photon"; ///< photon | block | vanilla
  int64_t levels = 0;
  std::vector<int64_t> chunkSizes;
  int64_t prefix = 0, width = 0, vocab = 0;
  /// Tokens covered by one unit of `level` (1 for level 0).
  int64_t tokensPerUnit(int64_t level) const;
};

/// Reads the module's #photon.hierarchy (the `photon.hierarchy` attribute).
FailureOr<Hierarchy> getHierarchy(ModuleOp module);

/// One transformer stack function (photon.role / photon.level).
struct StackInfo {
  std::string func, role; ///< "encoder" | "decoder"
  int64_t level = 0;
  int64_t layers = 0;    ///< attention ops in the stack
  int64_t heads = 0, kvHeads = 0, headDim = 0;
  std::string dtype = "f32";  ///< the attention's element type
  int64_t elementBytes = 4;
  /// Element type of the stack's KV cache: its derived step's `!photon.kv_cache` element
  /// (photon-derive-stages kv-type), else the attention's.
  std::string cacheDtype = "f32";
  int64_t cacheElementBytes = 4;
  int64_t weightBytes = 0; ///< bytes of the photon.weight tensors the stack reads
  int64_t macs = 0;        ///< multiply-adds of its matmuls per unit (attention excluded)
};

struct LevelCache {
  int64_t level = 0, layers = 0, kvHeads = 0, headDim = 0, blockSize = 16;
  std::string dtype = "f32";
  int64_t elementBytes = 4;
  int64_t bytesPerUnit = 0;  ///< 2 * layers * kv_heads * head_dim * e
  int64_t tokensPerUnit = 1; ///< C_1 * ... * C_level (1 for vanilla)
  std::vector<std::string> modes;
  /// Cache bytes for a context of `tokens` tokens.
  int64_t bytesFor(int64_t tokens) const;
};

/// The token decoder's local window cache (token_start / token_next): per chunk stream,
/// the K/V of the W = R + C_1 - 1 window positions of the level-1 decoder stack. It is
/// refilled for every chunk and does not grow with the context.
struct LocalCache {
  int64_t level = 1, layers = 0, kvHeads = 0, headDim = 0, positions = 0;
  std::string dtype = "f32";
  int64_t bytesPerStream = 0;     ///< 2 * layers * kv_heads * head_dim * e * positions
  int64_t streamsPerSequence = 0; ///< chunk streams rendered together (C_2 * ... * C_L)
};

struct LevelCost {
  int64_t level = 0;
  int64_t cacheBytesPer1k = 0;
  double weightBytesPerToken = 0, flopsPerToken = 0;
};

struct CachePlan {
  Hierarchy hierarchy;
  std::vector<StackInfo> stacks;
  std::vector<LevelCache> caches;
  std::vector<LocalCache> localCaches; ///< empty for vanilla
  std::vector<LevelCost> costs; ///< per level (level 0: embeddings and the LM head)
  int64_t cacheBytesPer1kHierGen = 0, cacheBytesPer1kRecGen = 0;
  double weightBytesPerToken = 0, flopsPerToken = 0;
  /// FLOPs per prompt token of the prefill: the encoder stacks and chunk compressors of every
  /// level (a level-l unit per tokensPerUnit(l) tokens); vanilla: flopsPerToken (its prefill
  /// runs the stack and the LM head on every prompt token).
  double prefillFlopsPerToken = 0;
  /// Per generated token under RecGen, which runs no level-1 encoder at decode time (the top
  /// level is fed from the decoder's own reconstruction): the totals less F1's share.
  double recgenWeightBytesPerToken = 0, recgenFlopsPerToken = 0;
  /// Chunk streams the token decoder steps together per sequence (1 for vanilla / Block).
  int64_t tokenStreams = 1;
  /// What one sequence holds besides its caches (the cost model's per-sample memory is the
  /// caches at the context plus these): the token decoder's window caches and the f32
  /// logits of one step (one row per chunk stream; one row for vanilla).
  int64_t windowBytesPerSequence = 0, logitsBytesPerSequence = 0;
  int64_t vanillaLogitsBytesPerSequence = 0;
  int64_t nonCacheBytesPerSequence() const { return windowBytesPerSequence + logitsBytesPerSequence; }
  /// The vanilla model of the same width.
  int64_t vanillaLayers = 0, vanillaCacheBytesPer1k = 0;
  double vanillaWeightBytesPerToken = 0, vanillaFlopsPerToken = 0;
  /// Names of the start latents in the weights blob, by level.
  std::vector<std::pair<int64_t, std::string>> startLatents;
  /// Rows of the learned position table (photon.position_embedding): the longest sequence
  /// the model has positions for (manifest model.max_positions); 0 = no such limit.
  int64_t maxPositions = 0;
};

/// Plans the caches of a module in the imported (or stage-derived) form.
FailureOr<CachePlan> planCaches(ModuleOp module, int64_t blockSize = 16);

/// Human-readable plan and cost model (photon-compile --report, the test pass).
void printReport(const CachePlan &plan, llvm::raw_ostream &os);

/// Manifest pieces (docs/artifact.md).
llvm::json::Object hierarchyJson(const CachePlan &plan);
llvm::json::Object startLatentsJson(const CachePlan &plan);
llvm::json::Array cachesJson(const CachePlan &plan);
llvm::json::Array localCachesJson(const CachePlan &plan);
llvm::json::Object costModelJson(const CachePlan &plan);

} // namespace photon
} // namespace mlir

#endif // PHOTON_TRANSFORMS_CACHEPLAN_H
