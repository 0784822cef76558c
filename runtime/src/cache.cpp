#include "cache.h"

#include "device.h"
#include "device_plan.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sys/mman.h>
#include <unistd.h>

namespace photon::rt {

CacheManager::~CacheManager() {
  for (auto &p : pools_)
    if (p.base) device_->free(DevicePtr::fromHost(p.base));
}

bool CacheManager::onDevice() const { return device_ && !device_->hostAddressable(); }

uint64_t CacheManager::poolBytes() const {
  uint64_t t = 0;
  for (const auto &p : pools_) t += p.mappedBytes;
  return t;
}

Status CacheManager::init(const std::vector<CacheLevelSpec> &levels, uint64_t budgetBytes,
                          std::shared_ptr<DeviceBackend> device) {
  device_ = device ? std::move(device) : hostBackend();
  // Device memory is real: the budget is split among the levels instead of mapped per level.
  const std::vector<int64_t> deviceBlocks =
      onDevice() ? planDeviceCachePools(levels, budgetBytes) : std::vector<int64_t>();
  levels_ = levels;
  budget_ = budgetBytes;
  pools_.assign(levels.size(), Pool());
  for (size_t li = 0; li < levels.size(); ++li) {
    const auto &s = levels[li];
    if (s.blockSize < 1 || s.layers < 1 || s.kvHeads < 1 || s.headDim < 1 ||
        (s.elementBytes != 4 && s.elementBytes != 2))
      return error(PHOTON_ERR_INVALID_ARGUMENT, "cache level " + std::to_string(s.level) +
                                                    ": invalid block geometry");
    Pool &p = pools_[li];
    uint64_t nb = onDevice() ? static_cast<uint64_t>(deviceBlocks[li]) : budgetBytes / s.blockBytes();
    nb = std::min<uint64_t>(nb, 0x7fffffff);
    p.numBlocks = static_cast<int64_t>(std::max<uint64_t>(nb, 1));
    p.mappedBytes = static_cast<size_t>(p.numBlocks) * s.blockBytes();
    DevicePtr m;
    PHOTON_RETURN_IF_ERROR(device_->allocate(
        p.mappedBytes, "level-" + std::to_string(s.level) + " cache pool", m));
    p.base = static_cast<float *>(m.raw()); // a device address on a device: never dereferenced
  }
  return Status::ok();
}

int CacheManager::indexOfLevel(int level) const {
  for (size_t i = 0; i < levels_.size(); ++i)
    if (levels_[i].level == level) return static_cast<int>(i);
  return -1;
}

std::vector<int64_t> CacheManager::poolShape(size_t li) const {
  const auto &s = levels_[li];
  return {pools_[li].numBlocks, s.layers, 2, s.blockSize, s.kvHeads, s.headDim};
}

uint64_t CacheManager::inUseBytes() const {
  uint64_t t = 0;
  for (size_t li = 0; li < pools_.size(); ++li) t += inUseBytes(li);
  return t;
}

uint64_t CacheManager::residentBytes() const {
  uint64_t t = 0;
  for (size_t li = 0; li < pools_.size(); ++li)
    t += static_cast<uint64_t>(pools_[li].touched) * levels_[li].blockBytes();
  return t;
}

uint64_t CacheManager::bytesFor(const std::vector<int64_t> &units) const {
  uint64_t b = 0;
  for (size_t li = 0; li < levels_.size() && li < units.size(); ++li)
    b += static_cast<uint64_t>(blocksFor(li, units[li])) * levels_[li].blockBytes();
  return b;
}

std::string CacheManager::describeNeed(const std::vector<int64_t> &blocks, int64_t tokens) const {
  uint64_t total = 0;
  std::string perLevel;
  int parts = 0;
  for (size_t li = 0; li < levels_.size() && li < blocks.size(); ++li) {
    uint64_t b = static_cast<uint64_t>(blocks[li]) * levels_[li].blockBytes();
    total += b;
    if (!b) continue;
    if (parts++) perLevel += " + ";
    perLevel += formatBytes(static_cast<double>(b)) + " at level " + std::to_string(levels_[li].level);
  }
  std::string s = "context " + std::to_string(tokens) + " needs " + perLevel;
  if (parts > 1) s += " (" + formatBytes(static_cast<double>(total)) + ")";
  return s;
}

Status CacheManager::checkEverFits(const std::vector<int64_t> &units, int64_t tokens) const {
  std::vector<int64_t> blocks(levels_.size(), 0);
  for (size_t li = 0; li < levels_.size() && li < units.size(); ++li) blocks[li] = blocksFor(li, units[li]);
  if (bytesFor(units) <= budget_) return Status::ok();
  return error(PHOTON_ERR_OUT_OF_BUDGET,
               describeNeed(blocks, tokens) + "; the whole budget is " +
                   formatBytes(static_cast<double>(budget_)) +
                   ": raise --memory-budget or shorten the prompt / max tokens");
}

Status CacheManager::reserve(SeqCache &seq, const std::vector<int64_t> &units, int64_t tokens,
                             bool &everFits) {
  if (seq.tables.size() != levels_.size()) {
    seq.tables.assign(levels_.size(), {});
    seq.lens.assign(levels_.size(), 0);
    seq.reservedBlocks.assign(levels_.size(), 0);
  }
  std::vector<int64_t> add(levels_.size(), 0);
  uint64_t need = 0;
  for (size_t li = 0; li < levels_.size() && li < units.size(); ++li) {
    int64_t want = blocksFor(li, units[li]);
    add[li] = std::max<int64_t>(0, want - seq.reservedBlocks[li]);
    need += static_cast<uint64_t>(add[li]) * levels_[li].blockBytes();
  }
  uint64_t left = budget_ - reserved_;
  everFits = need <= budget_; // would fit once every other reservation is gone
  // On a device each level has its own pool (planDeviceCachePools): the level must fit too.
  // On the host every pool spans the whole budget, so this never refuses there.
  int overLevel = -1;
  for (size_t li = 0; onDevice() && li < add.size(); ++li) {
    if (pools_[li].reserved + add[li] > pools_[li].numBlocks) overLevel = static_cast<int>(li);
    if (seq.reservedBlocks[li] + add[li] > pools_[li].numBlocks) everFits = false;
  }
  if (overLevel >= 0 && need <= left) {
    const size_t li = static_cast<size_t>(overLevel);
    std::string msg = describeNeed(add, tokens) + "; the level-" +
                      std::to_string(levels_[li].level) + " pool has " +
                      std::to_string(pools_[li].numBlocks - pools_[li].reserved) + " of " +
                      std::to_string(pools_[li].numBlocks) + " blocks left";
    msg += everFits ? " (the request waits until running requests finish)"
                    : ": raise --memory-budget or shorten the prompt / max tokens";
    return error(PHOTON_ERR_OUT_OF_BUDGET, msg);
  }
  if (need > left) {
    std::string msg = describeNeed(add, tokens) + "; " + formatBytes(static_cast<double>(left)) +
                      " left in the budget of " + formatBytes(static_cast<double>(budget_));
    msg += everFits ? " (the request waits until running requests finish)"
                    : ": raise --memory-budget or shorten the prompt / max tokens";
    return error(PHOTON_ERR_OUT_OF_BUDGET, msg);
  }
  for (size_t li = 0; li < add.size(); ++li) {
    seq.reservedBlocks[li] += add[li];
    pools_[li].reserved += add[li];
  }
  reserved_ += need;
  seq.admitted = true;
  return Status::ok();
}

int32_t CacheManager::allocBlock(size_t li) {
  Pool &p = pools_[li];
  int32_t id;
  if (!p.freeList.empty()) {
    id = p.freeList.back();
    p.freeList.pop_back();
  } else {
    id = static_cast<int32_t>(p.touched++);
  }
  ++p.inUse;
  p.peak = std::max(p.peak, p.inUse);
  return id;
}

void CacheManager::freeBlock(size_t li, int32_t id) {
  Pool &p = pools_[li];
  p.freeList.push_back(id);
  --p.inUse;
}

void CacheManager::updatePeak() { peakTotal_ = std::max(peakTotal_, inUseBytes()); }

Status CacheManager::ensure(SeqCache &seq, size_t li, int64_t units) {
  int64_t need = blocksFor(li, units);
  auto &table = seq.tables[li];
  if (need > seq.reservedBlocks[li])
    return error(PHOTON_ERR_INTERNAL,
                 "level-" + std::to_string(levels_[li].level) + " cache: " +
                     std::to_string(units) + " units exceed the reservation of " +
                     std::to_string(seq.reservedBlocks[li]) + " blocks");
  while (static_cast<int64_t>(table.size()) < need) {
    Pool &p = pools_[li];
    if (p.freeList.empty() && p.touched >= p.numBlocks)
      return error(PHOTON_ERR_INTERNAL, "level-" + std::to_string(levels_[li].level) +
                                            " cache pool exhausted despite the reservation");
    table.push_back(allocBlock(li));
  }
  updatePeak();
  return Status::ok();
}

Status CacheManager::copyLevel(const SeqCache &from, SeqCache &to, size_t li) {
  if (onDevice()) return copyLevelThroughDevice(from, to, li);
  const int64_t units = from.lens[li];
  if (units == 0) return Status::ok();
  if (to.lens[li] != 0)
    return error(PHOTON_ERR_INTERNAL, "cache copy into a sequence that has units already");
  PHOTON_RETURN_IF_ERROR(ensure(to, li, units));
  const size_t blockBytes = static_cast<size_t>(levels_[li].blockBytes());
  const int64_t blocks = blocksFor(li, units);
  char *base = reinterpret_cast<char *>(pools_[li].base);
  for (int64_t b = 0; b < blocks; ++b)
    std::memcpy(base + static_cast<size_t>(to.tables[li][b]) * blockBytes,
                base + static_cast<size_t>(from.tables[li][b]) * blockBytes, blockBytes);
  to.lens[li] = units;
  return Status::ok();
}

Status CacheManager::copyLevelThroughDevice(const SeqCache &from, SeqCache &to, size_t li) {
  const int64_t units = from.lens[li];
  if (units == 0) return Status::ok();
  if (to.lens[li] != 0)
    return error(PHOTON_ERR_INTERNAL, "cache copy into a sequence that has units already");
  PHOTON_RETURN_IF_ERROR(ensure(to, li, units));
  const uint64_t bb = levels_[li].blockBytes();
  const DevicePtr base = DevicePtr::fromHost(pools_[li].base);
  for (int64_t b = 0; b < blocksFor(li, units); ++b)
    PHOTON_RETURN_IF_ERROR(device_->copy(base + static_cast<uint64_t>(to.tables[li][b]) * bb,
                                         base + static_cast<uint64_t>(from.tables[li][b]) * bb,
                                         bb, nullptr));
  to.lens[li] = units;
  return Status::ok();
}

void CacheManager::releaseLevel(SeqCache &seq, size_t li) {
  if (li >= seq.tables.size()) return;
  for (int32_t id : seq.tables[li]) freeBlock(li, id);
  seq.tables[li].clear();
  seq.lens[li] = 0;
  reserved_ -= static_cast<uint64_t>(seq.reservedBlocks[li]) * levels_[li].blockBytes();
  pools_[li].reserved -= seq.reservedBlocks[li];
  seq.reservedBlocks[li] = 0;
}

void CacheManager::release(SeqCache &seq) {
  for (size_t li = 0; li < seq.tables.size(); ++li) releaseLevel(seq, li);
  seq.admitted = false;
}

bool CacheManager::checkInvariants(std::string &why) const {
  for (size_t li = 0; li < pools_.size(); ++li) {
    const Pool &p = pools_[li];
    if (p.inUse + static_cast<int64_t>(p.freeList.size()) != p.touched) {
      why = "level " + std::to_string(levels_[li].level) + ": in use " + std::to_string(p.inUse) +
            " + free " + std::to_string(p.freeList.size()) + " != touched " +
            std::to_string(p.touched);
      return false;
    }
    std::vector<int32_t> f = p.freeList;
    std::sort(f.begin(), f.end());
    if (std::adjacent_find(f.begin(), f.end()) != f.end()) {
      why = "duplicate block on the free list";
      return false;
    }
  }
  if (inUseBytes() > reserved_) {
    why = "blocks in use exceed the reservations";
    return false;
  }
  if (reserved_ > budget_) {
    why = "reservations exceed the budget";
    return false;
  }
  return true;
}

uint64_t defaultMemoryBudget() {
  long pages = sysconf(_SC_PHYS_PAGES);
  long pageSize = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || pageSize <= 0) return 1ull << 30;
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(pageSize) / 4;
}

bool parseByteSize(const std::string &text, uint64_t &out) {
  if (text.empty()) return false;
  char *end = nullptr;
  errno = 0;
  double v = std::strtod(text.c_str(), &end);
  if (errno || end == text.c_str() || !(v >= 0) || !std::isfinite(v)) return false;
  std::string suf(end);
  for (auto &c : suf) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  double mul = 1;
  if (suf.empty() || suf == "B") mul = 1;
  else if (suf == "K" || suf == "KB" || suf == "KIB") mul = 1024.0;
  else if (suf == "M" || suf == "MB" || suf == "MIB") mul = 1024.0 * 1024;
  else if (suf == "G" || suf == "GB" || suf == "GIB") mul = 1024.0 * 1024 * 1024;
  else if (suf == "T" || suf == "TB" || suf == "TIB") mul = 1024.0 * 1024 * 1024 * 1024;
  else return false;
  double b = v * mul;
  if (b > 1.8e19) return false;
  out = static_cast<uint64_t>(b);
  return true;
}

} // namespace photon::rt
