// The KV cache manager: per-level pools of fixed-size blocks, per-sequence block tables,
// one memory budget shared by all levels, admission by reservation.
//
// Pool of level l: f32[NB_l, layers, 2, BS, Hkv, hd] (docs/artifact.md), one contiguous
// mapping so that a stage takes it as one memref. NB_l = budget / block bytes of level l: the
// mapping is virtual (MAP_NORESERVE) and pages are committed only when a block is first
// written, so every level can address the whole budget while the budget itself is enforced by
// the accounting below. Freed blocks go on a LIFO free list and are reused first (their pages
// are already committed).
//
// A sequence reserves, when admitted, the blocks it can ever need (prompt + max new tokens,
// capped at max_context) at each level; blocks are then allocated on demand inside that
// reservation. A request that does not fit the budget at all is refused with the numbers; one
// that fits the budget but not what is left waits until others finish. A running sequence can
// therefore never run out of cache.
#ifndef PHOTON_RUNTIME_CACHE_H
#define PHOTON_RUNTIME_CACHE_H

#include "status.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace photon::rt {

class DeviceBackend;

struct CacheLevelSpec {
  int level = 1;               // model level (1..L), used in messages
  int layers = 1, kvHeads = 1, headDim = 1;
  int blockSize = 16;          // units per block
  int tokensPerUnit = 1;       // tokens one unit covers (C_1*...*C_l)
  int elementBytes = 4;        // 4 (f32 cache) or 2 (f16, photon-compile --kv f16)
  uint64_t bytesPerUnit() const { return 2ull * layers * kvHeads * headDim * elementBytes; }
  uint64_t blockBytes() const { return bytesPerUnit() * blockSize; }
};

/// Per-sequence cache state: one block table per level, valid length (units written) kept
/// apart from capacity (blocks * block size) and from the reservation.
struct SeqCache {
  std::vector<std::vector<int32_t>> tables; // [level index][block] -> pool block id
  std::vector<int64_t> lens;                // valid units per level
  std::vector<int64_t> reservedBlocks;      // per level
  bool admitted = false;
  int64_t capacity(size_t li, int blockSize) const {
    return static_cast<int64_t>(tables[li].size()) * blockSize;
  }
};

class CacheManager {
public:
  CacheManager() = default;
  ~CacheManager();
  CacheManager(const CacheManager &) = delete;
  CacheManager &operator=(const CacheManager &) = delete;

  /// Maps the pools. `budgetBytes` bounds the bytes of all blocks reserved at any time.
  /// The pools live in `device`'s memory (the host backend when empty): on the host each
  /// level maps the whole budget lazily; on a device (not host-addressable) the budget is
  /// split into per-level pools of real memory (planDeviceCachePools, device_plan.h) and a
  /// reservation must also fit its level's pool.
  Status init(const std::vector<CacheLevelSpec> &levels, uint64_t budgetBytes,
              std::shared_ptr<DeviceBackend> device = nullptr);
  /// True when the pools are device memory the host cannot address.
  bool onDevice() const;
  /// Bytes of the pools (device memory on a device; address space on the host).
  uint64_t poolBytes() const;

  size_t levelCount() const { return levels_.size(); }
  const CacheLevelSpec &spec(size_t li) const { return levels_[li]; }
  /// Index of model level `level` among the pools, or -1.
  int indexOfLevel(int level) const;
  float *pool(size_t li) const { return pools_[li].base; }
  int64_t poolBlocks(size_t li) const { return pools_[li].numBlocks; }
  /// Pool shape [NB, layers, 2, BS, Hkv, hd] for a memref.
  std::vector<int64_t> poolShape(size_t li) const;

  uint64_t budget() const { return budget_; }
  uint64_t reservedBytes() const { return reserved_; }
  uint64_t inUseBytes() const;
  uint64_t inUseBytes(size_t li) const { return pools_[li].inUse * levels_[li].blockBytes(); }
  uint64_t peakBytes(size_t li) const { return pools_[li].peak * levels_[li].blockBytes(); }
  uint64_t peakTotalBytes() const { return peakTotal_; }
  /// Blocks ever touched (their pages are committed): resident bytes of the pools.
  uint64_t residentBytes() const;
  int64_t freeListSize(size_t li) const { return static_cast<int64_t>(pools_[li].freeList.size()); }
  int64_t blocksInUse(size_t li) const { return pools_[li].inUse; }

  int64_t blocksFor(size_t li, int64_t units) const {
    int64_t bs = levels_[li].blockSize;
    return (units + bs - 1) / bs;
  }
  /// Bytes a reservation of `units` per level takes.
  uint64_t bytesFor(const std::vector<int64_t> &units) const;

  /// Reserves `units[li]` units at each level for `seq` (adds to an existing reservation).
  /// PHOTON_ERR_OUT_OF_BUDGET when it does not fit: the message names the context (`tokens`),
  /// the bytes per level and what is left. `everFits` tells whether it would fit an empty
  /// budget (so the caller can queue the request instead of refusing it).
  Status reserve(SeqCache &seq, const std::vector<int64_t> &units, int64_t tokens, bool &everFits);
  /// OK if a reservation of `units` would fit an otherwise empty budget; else the refusal.
  Status checkEverFits(const std::vector<int64_t> &units, int64_t tokens) const;

  /// Makes room for `units` valid units at level index li (allocates blocks inside the
  /// reservation). Does not change the valid length.
  Status ensure(SeqCache &seq, size_t li, int64_t units);
  /// Sets the valid length after a stage wrote the units.
  void setLength(SeqCache &seq, size_t li, int64_t units) { seq.lens[li] = units; }

  /// Copies the valid units of level index li from `from` into `to` (which must be empty at
  /// that level and have the reservation): allocates blocks and copies their bytes.
  Status copyLevel(const SeqCache &from, SeqCache &to, size_t li);

  /// Frees the blocks of one level and drops its reservation (RecGen after prefill).
  void releaseLevel(SeqCache &seq, size_t li);
  /// Frees everything the sequence holds.
  void release(SeqCache &seq);

  /// Checks internal invariants (free list + in use == touched, no duplicates). For tests.
  bool checkInvariants(std::string &why) const;

private:
  struct Pool {
    float *base = nullptr;
    size_t mappedBytes = 0;
    int64_t numBlocks = 0;
    int64_t touched = 0; // high-water mark of block ids handed out
    int64_t inUse = 0;
    int64_t peak = 0;
    int64_t reserved = 0; // blocks reserved at this level by all sequences
    std::vector<int32_t> freeList;
  };
  std::string describeNeed(const std::vector<int64_t> &blocks, int64_t tokens) const;
  Status copyLevelThroughDevice(const SeqCache &from, SeqCache &to, size_t li);
  int32_t allocBlock(size_t li);
  void freeBlock(size_t li, int32_t id);
  void updatePeak();

  std::vector<CacheLevelSpec> levels_;
  std::vector<Pool> pools_;
  std::shared_ptr<DeviceBackend> device_;
  uint64_t budget_ = 0;
  uint64_t reserved_ = 0;
  uint64_t peakTotal_ = 0;
};

/// Default cache budget: a quarter of physical memory.
uint64_t defaultMemoryBudget();
/// Parses "512M", "2G", "1.5GiB", "100000" (bytes); false on bad input.
bool parseByteSize(const std::string &text, uint64_t &out);

} // namespace photon::rt

#endif
