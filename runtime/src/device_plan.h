// Host-side logic of the device backends (device.h), kept free of any driver call so that it
// is unit-tested on machines without a GPU (test/unit/runtime/device_test.cpp):
//   - the upload plan: a host buffer cut into chunks that go through a ring of pinned staging
//     slots, with progress after every chunk;
//   - the device cache plan: how a device-memory budget is split into per-level pools (device
//     memory is not overcommitted, unlike the host's lazily committed mappings);
//   - the default device budget from the device's free memory;
//   - the choice of backend from the manifest's target kind and the driver probe.
#ifndef PHOTON_RUNTIME_DEVICE_PLAN_H
#define PHOTON_RUNTIME_DEVICE_PLAN_H

#include "cache.h"
#include "device.h"
#include "status.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace photon::rt {

// ------------------------------------------------------------------ upload plan

/// Copies of at most this many bytes go straight from the caller's (pageable) buffer.
constexpr uint64_t kDirectUploadBytes = 1ull << 20;   // 1 MiB
/// Size of one pinned staging slot and number of slots of a staged upload.
constexpr uint64_t kStagingChunkBytes = 16ull << 20;  // 16 MiB
constexpr int kStagingSlots = 2;

struct UploadChunk {
  uint64_t offset = 0; // into the source and the destination
  uint64_t bytes = 0;
  int slot = -1;       // staging slot; -1 = direct copy from the source
  /// The slot was used by an earlier chunk: wait for that copy before overwriting the slot.
  bool waitForSlot = false;
};

struct UploadPlan {
  uint64_t totalBytes = 0;
  uint64_t chunkBytes = 0; // staging slot size (0 for a direct copy)
  int slots = 0;           // staging slots used (0 for a direct copy)
  std::vector<UploadChunk> chunks;
  bool staged() const { return slots > 0; }
};

/// Plans an upload of `total` bytes: one direct chunk when total <= directLimit, else chunks
/// of `chunkBytes` (the last one shorter) round-robin over `slots` staging slots.
UploadPlan planUpload(uint64_t total, uint64_t chunkBytes = kStagingChunkBytes,
                      int slots = kStagingSlots, uint64_t directLimit = kDirectUploadBytes);

/// What a backend does for each step of a plan. CudaBackend: memcpy into a pinned slot,
/// cuMemcpyHtoDAsync on the stream + an event per slot, cuEventSynchronize.
class UploadSteps {
public:
  virtual ~UploadSteps() = default;
  /// Copies a direct chunk from the source (pageable) to the device at `offset`.
  virtual Status direct(const uint8_t *src, uint64_t offset, uint64_t bytes) = 0;
  /// Waits until the copy that last used `slot` has finished.
  virtual Status waitSlot(int slot) = 0;
  /// Fills staging `slot` with `bytes` from `src` and enqueues its copy to `offset`.
  virtual Status stageAndCopy(int slot, const uint8_t *src, uint64_t offset, uint64_t bytes) = 0;
  /// Waits for every enqueued copy.
  virtual Status finish() = 0;
};

/// Runs `plan` over `src` with `steps`; `progress` (may be empty) gets the bytes enqueued
/// after every chunk and (total, total) once everything has arrived.
Status runUpload(const UploadPlan &plan, const uint8_t *src, UploadSteps &steps,
                 const UploadProgress &progress);

// ------------------------------------------------------------------ device cache plan

/// Blocks per level when all levels share one device budget of real (not overcommitted)
/// memory: each level gets the share of the budget that its bytes per token take of the
/// total (a sequence of T tokens needs ceil(T / tokensPerUnit / blockSize) blocks at each
/// level), at least one block. The sum of the pools' bytes never exceeds the budget, except
/// for the one-block minimum. The host backend instead maps budget / block bytes per level
/// (address space only).
std::vector<int64_t> planDeviceCachePools(const std::vector<CacheLevelSpec> &levels,
                                          uint64_t budgetBytes);

/// Device memory held back for the stages' own allocations (intermediates, gpu.alloc in the
/// generated host code) and the driver.
constexpr uint64_t kDeviceHeadroomBytes = 1ull << 30; // 1 GiB

/// Default cache budget on a device: 90% of what is free after the weights, less the
/// headroom; 0 when nothing is left.
uint64_t defaultDeviceCacheBudget(uint64_t freeBytesAfterWeights);

// ------------------------------------------------------------------ choice of backend

/// What the loader learnt from the driver about device 0.
struct DriverProbe {
  bool usable = false;      // driver loaded, initialised, has a device
  std::string reason;       // why not (the driver's own text), when !usable
  bool archMatches = false; // the device's architecture is in target.archs
  std::string archReason;   // the driver's refusal naming the device's sm_XY
};

/// Picks the backend of an artifact. `probe` is called only for CUDA artifacts (a CPU
/// artifact never opens the driver). Errors: PHOTON_ERR_FORMAT (cuda without archs),
/// PHOTON_ERR_NO_DEVICE (no usable driver / another architecture: the driver's reason and
/// the way out), PHOTON_ERR_TARGET (unknown kind). `mpath` names manifest.json.
Status chooseBackend(const std::string &targetKind, const std::vector<std::string> &archs,
                     const std::function<DriverProbe()> &probe, const std::string &mpath,
                     DeviceKind &out);

} // namespace photon::rt

#endif
