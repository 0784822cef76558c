// The runtime's device-backend interface: where the weights, the KV-cache pools and the stage
// buffers live. The engine and the cache manager hold DevicePtr values and move bytes through
// a DeviceBackend; they never assume that a device address is a host pointer.
//
// Two implementations:
//   HostBackend  (device_host.cpp)    host memory; the mmapped weights are used in place
//                                     (zero-copy); cache pools are lazily committed mappings.
//   CudaBackend  (cuda/cuda_device.cpp) device memory through the dlopen'd driver API
//                                     (photon/cuda.h): the weights in one allocation uploaded
//                                     once through pinned staging, cache pools in device
//                                     memory under a device budget, one stream per engine.
//
// The pure host-side logic both share (upload plan, device cache plan, the choice of backend)
// is in device_plan.h so that it is unit-tested without a device.
#ifndef PHOTON_RUNTIME_DEVICE_H
#define PHOTON_RUNTIME_DEVICE_H

#include "status.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace photon::rt {

struct Manifest;

/// An address in a backend's memory. For the host backend it is a host pointer; for CUDA a
/// CUdeviceptr, which the host must not dereference.
struct DevicePtr {
  uint64_t addr = 0;
  DevicePtr() = default;
  explicit DevicePtr(uint64_t a) : addr(a) {}
  static DevicePtr fromHost(const void *p) { return DevicePtr(reinterpret_cast<uintptr_t>(p)); }
  explicit operator bool() const { return addr != 0; }
  DevicePtr operator+(uint64_t bytes) const { return DevicePtr(addr + bytes); }
  /// The address as the stage ABI takes it (a memref's allocated/aligned pointer).
  void *raw() const { return reinterpret_cast<void *>(static_cast<uintptr_t>(addr)); }
  bool operator==(const DevicePtr &o) const { return addr == o.addr; }
  bool operator!=(const DevicePtr &o) const { return addr != o.addr; }
};

enum class DeviceKind { Host, Cuda };

/// Bytes of the backend's memory. For the host backend: physical memory.
struct DeviceMemoryInfo {
  uint64_t totalBytes = 0;
  uint64_t freeBytes = 0;
};

/// Progress of a long upload: bytes done of bytes total, called after every chunk (and once
/// with done == total at the end).
using UploadProgress = std::function<void(uint64_t done, uint64_t total)>;

/// A queue of device work (a CUstream). Host backend: nullptr, everything is synchronous.
using DeviceStream = void *;

class DeviceBackend {
public:
  virtual ~DeviceBackend() = default;

  /// "host" or "cuda:<device name> (sm_XY)".
  virtual std::string name() const = 0;
  virtual DeviceKind kind() const = 0;
  /// True when a DevicePtr of this backend is a host pointer (the host backend).
  virtual bool hostAddressable() const = 0;

  /// Capability check against an artifact's manifest (target kind, architectures); the
  /// refusal names the reason and the compile flag that fixes it.
  virtual Status checkCapability(const Manifest &mf) const = 0;

  /// Device memory, zeroed (up to the last whole 4 bytes on CUDA). `what` names the buffer
  /// in messages ("weights", "level-1 cache pool"). Host: lazily committed anonymous memory.
  virtual Status allocate(uint64_t bytes, const std::string &what, DevicePtr &out) = 0;
  virtual void free(DevicePtr p) = 0;
  /// True when [p, p + bytes) lies inside one allocation of this backend.
  virtual bool owns(DevicePtr p, uint64_t bytes) const = 0;

  /// The model's weights blob, given as the host mapping of weights.bin. Host: the mapping
  /// itself (zero-copy, no allocation). CUDA: one allocation, uploaded once through pinned
  /// staging, `progress` after every chunk.
  virtual Status placeWeights(const uint8_t *host, uint64_t bytes, const UploadProgress &progress,
                              DevicePtr &out) = 0;

  /// Host -> device. Large copies go through pinned staging in chunks (device_plan.h);
  /// `progress` (may be empty) is called after every chunk. Returns when the bytes are on the
  /// device (the host buffer may be reused).
  virtual Status upload(DevicePtr dst, const void *src, uint64_t bytes, DeviceStream stream,
                        const UploadProgress &progress = {}) = 0;
  /// Device -> host; returns when the bytes are in `dst`.
  virtual Status download(void *dst, DevicePtr src, uint64_t bytes, DeviceStream stream) = 0;
  /// Device -> device (a block copy inside a cache pool).
  virtual Status copy(DevicePtr dst, DevicePtr src, uint64_t bytes, DeviceStream stream) = 0;
  /// Sets `bytes` bytes to `value`. CUDA: bytes and dst must be multiples of 4.
  virtual Status memset(DevicePtr dst, uint8_t value, uint64_t bytes, DeviceStream stream) = 0;

  /// One stream per engine. Host: nullptr.
  virtual Status createStream(DeviceStream &out) = 0;
  virtual void destroyStream(DeviceStream s) = 0;
  virtual Status synchronize(DeviceStream s) = 0;

  virtual Status memoryInfo(DeviceMemoryInfo &out) const = 0;
  /// Bytes this backend has allocated now (weights, pools, stage buffers).
  virtual uint64_t allocatedBytes() const = 0;
};

/// The host backend (today's behaviour). One instance is shared by every host model.
std::shared_ptr<DeviceBackend> hostBackend();

/// A host backend that behaves like a discrete device: its DevicePtrs are its own
/// allocations (not the caller's buffers), the weights are copied into one allocation, and
/// stage calls go through the device path of StageRunner (explicit copies in and out). It
/// runs CPU artifacts; it exists so that the device path is exercised without a GPU
/// (tests; PHOTON_DEVICE_BACKEND=host-staged for CPU artifacts).
std::shared_ptr<DeviceBackend> stagedHostBackend();

/// The backend an artifact runs on: the host for target kind "cpu"; for "cuda" the CUDA
/// backend when the driver is usable and the device's architecture is in target.archs, else
/// PHOTON_ERR_NO_DEVICE naming the driver's reason (device_plan.h: chooseBackend). For a CPU
/// artifact PHOTON_DEVICE_BACKEND=host-staged picks stagedHostBackend().
Status createBackend(const Manifest &mf, const std::string &manifestPath,
                     std::shared_ptr<DeviceBackend> &out);

} // namespace photon::rt

#endif
