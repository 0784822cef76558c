// Stage calls through a device backend (device.h). One StageRunner per engine: it owns the
// engine's stream and the device copies of the engine's per-call buffers.
//
// The stage ABI (docs/artifact.md) passes every argument as a memref descriptor. On the host
// backend the descriptors point at host buffers and the call is direct. On a device backend
// the weights and the cache pools are already device memory (Model::weights(),
// CacheManager::pool()); every other argument (token ids, block tables, lengths, latents,
// logits) is a host buffer of the engine: the runner copies the "in"/"inout" ones to device
// buffers it keeps per (stage, argument) and grows as needed, points the descriptors at them,
// calls the stage (the generated host code launches the kernels and returns when they are
// done) and copies the "out"/"inout" ones back.
#ifndef PHOTON_RUNTIME_DEVICE_STAGE_H
#define PHOTON_RUNTIME_DEVICE_STAGE_H

#include "artifact.h"
#include "device.h"
#include "memref.h"

#include <map>
#include <memory>
#include <utility>

namespace photon::rt {

/// Bytes of one element of a manifest dtype ("f32", "i32", "i8", "f16", "bf16", "i64");
/// 0 when unknown.
size_t dtypeBytes(const std::string &dtype);

/// Default cache budget of an engine on `model`: a quarter of physical memory on the host
/// (defaultMemoryBudget, cache.h); on a device, defaultDeviceCacheBudget of the device's free
/// memory (the weights are already there), at least 64 MiB.
uint64_t defaultCacheBudget(const Model &model);

class StageRunner {
public:
  explicit StageRunner(const Model &model);
  ~StageRunner();
  StageRunner(const StageRunner &) = delete;
  StageRunner &operator=(const StageRunner &) = delete;

  /// Creates the engine's stream (device backends).
  Status init();
  /// Calls `fn` (a stage of the model) with `args`, moving host buffers through the device.
  Status run(StageFn fn, StageArgs &args);

  DeviceBackend &backend() const { return *backend_; }
  DeviceStream stream() const { return stream_; }
  /// Bytes copied host -> device and device -> host by stage calls so far.
  uint64_t bytesIn() const { return bytesIn_; }
  uint64_t bytesOut() const { return bytesOut_; }
  /// Device bytes held for the per-call buffers.
  uint64_t scratchBytes() const;

private:
  struct Scratch {
    DevicePtr ptr;
    uint64_t bytes = 0;
  };
  std::shared_ptr<DeviceBackend> backend_;
  DeviceStream stream_ = nullptr;
  std::map<StageFn, const StageSpec *> specs_;
  std::map<std::pair<StageFn, size_t>, Scratch> scratch_;
  uint64_t bytesIn_ = 0, bytesOut_ = 0;
};

} // namespace photon::rt

#endif
