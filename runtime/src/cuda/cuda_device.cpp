// CudaBackend (cuda_device.h): device memory, pinned staging, streams and memory info through
// photon/cuda.h. Every call makes the device's primary context current for its duration
// (cuda_driver.cpp), so any thread may use the backend.
#include "cuda_device.h"

#include "../artifact.h"
#include "cuda_backend.h"
#include "photon/cuda.h"

#include <cstring>
#include <map>
#include <mutex>

namespace photon::rt {
namespace cuda {
namespace {

Status driverError(const std::string &what) {
  return error(PHOTON_ERR_NO_DEVICE, what + ": " + photon_cuda_last_error());
}

class CudaBackend final : public DeviceBackend {
public:
  CudaBackend(int ordinal, const DeviceInfo &info) : ordinal_(ordinal), info_(info) {}
  ~CudaBackend() override {
    std::lock_guard<std::mutex> lock(stagingMu_);
    for (auto &s : slots_) {
      if (s.event) photon_cuda_event_destroy(s.event);
      if (s.host) photon_cuda_host_free(s.host);
    }
    if (uploadStream_) photon_cuda_stream_destroy(uploadStream_);
    for (auto &a : allocs_) photon_cuda_free(a.first);
  }

  std::string name() const override {
    return "cuda:" + info_.name + " (sm_" + std::to_string(info_.ccMajor) +
           std::to_string(info_.ccMinor) + ")";
  }
  DeviceKind kind() const override { return DeviceKind::Cuda; }
  bool hostAddressable() const override { return false; }

  Status checkCapability(const Manifest &mf) const override {
    if (mf.targetKind != "cuda")
      return error(PHOTON_ERR_TARGET, "the CUDA backend runs CUDA artifacts; this one was "
                                      "compiled for target kind \"" + mf.targetKind + "\"");
    std::vector<const char *> names;
    for (const auto &a : mf.targetArchs) names.push_back(a.c_str());
    if (photon_cuda_check_arch(ordinal_, names.data(), names.size()) != PHOTON_CUDA_OK)
      return error(PHOTON_ERR_NO_DEVICE, photon_cuda_last_error());
    return Status::ok();
  }

  Status allocate(uint64_t bytes, const std::string &what, DevicePtr &out) override {
    out = DevicePtr();
    if (bytes == 0)
      return error(PHOTON_ERR_INVALID_ARGUMENT, "allocation of 0 bytes for the " + what);
    photon_cuda_devptr p = 0;
    if (photon_cuda_alloc(static_cast<size_t>(bytes), &p) != PHOTON_CUDA_OK) {
      std::string why = photon_cuda_last_error();
      DeviceMemoryInfo mi;
      std::string left;
      if (memoryInfo(mi).isOk())
        left = " (" + formatBytes(static_cast<double>(mi.freeBytes)) + " of " +
               formatBytes(static_cast<double>(mi.totalBytes)) + " free on " + name() + ")";
      return error(PHOTON_ERR_OUT_OF_BUDGET,
                   "cannot allocate " + formatBytes(static_cast<double>(bytes)) +
                       " of device memory for the " + what + left + ": " + why +
                       "; lower --memory-budget or use a larger device");
    }
    // Zeroed, like the host backend's fresh mappings (a cache pool is read only where written,
    // but nothing should depend on that). cuMemAlloc returns 256-byte aligned memory.
    if (photon_cuda_memset32(p, 0, static_cast<size_t>(bytes / 4), nullptr) != PHOTON_CUDA_OK ||
        photon_cuda_stream_sync(nullptr) != PHOTON_CUDA_OK) {
      std::string why = photon_cuda_last_error();
      photon_cuda_free(p);
      return error(PHOTON_ERR_NO_DEVICE, "clearing the " + what + " failed: " + why);
    }
    out = DevicePtr(p);
    std::lock_guard<std::mutex> lock(mu_);
    allocs_[p] = bytes;
    allocated_ += bytes;
    return Status::ok();
  }

  void free(DevicePtr p) override {
    if (!p) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = allocs_.find(p.addr);
      if (it == allocs_.end()) return;
      allocated_ -= it->second;
      allocs_.erase(it);
    }
    photon_cuda_free(p.addr);
  }

  bool owns(DevicePtr p, uint64_t bytes) const override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = allocs_.upper_bound(p.addr);
    if (it == allocs_.begin()) return false;
    --it;
    return p.addr >= it->first && p.addr + bytes <= it->first + it->second;
  }

  Status placeWeights(const uint8_t *host, uint64_t bytes, const UploadProgress &progress,
                      DevicePtr &out) override {
    PHOTON_RETURN_IF_ERROR(allocate(bytes, "weights", out));
    Status st = upload(out, host, bytes, nullptr, progress);
    if (!st.isOk()) {
      free(out);
      out = DevicePtr();
    }
    return st;
  }

  Status upload(DevicePtr dst, const void *src, uint64_t bytes, DeviceStream stream,
                const UploadProgress &progress) override {
    if (bytes == 0) return Status::ok();
    if (!dst || !src) return error(PHOTON_ERR_INVALID_ARGUMENT, "upload: null pointer");
    UploadPlan plan = planUpload(bytes);
    std::unique_lock<std::mutex> lock(stagingMu_, std::defer_lock);
    photon_cuda_stream s = stream;
    if (plan.staged()) {
      lock.lock(); // one staged upload at a time owns the pinned slots
      PHOTON_RETURN_IF_ERROR(ensureStaging(plan.slots, plan.chunkBytes));
      if (!s) {
        if (!uploadStream_ && photon_cuda_stream_create(&uploadStream_) != PHOTON_CUDA_OK)
          return driverError("cannot create the upload stream");
        s = uploadStream_;
      }
    }
    struct Steps final : UploadSteps {
      CudaBackend &b;
      photon_cuda_devptr dst;
      photon_cuda_stream s;
      Steps(CudaBackend &b, photon_cuda_devptr d, photon_cuda_stream s) : b(b), dst(d), s(s) {}
      Status direct(const uint8_t *src, uint64_t off, uint64_t n) override {
        if (photon_cuda_memcpy_htod(dst + off, src, static_cast<size_t>(n), s) != PHOTON_CUDA_OK)
          return driverError("host-to-device copy failed");
        return Status::ok();
      }
      Status waitSlot(int slot) override {
        if (photon_cuda_event_sync(b.slots_[slot].event) != PHOTON_CUDA_OK)
          return driverError("waiting for a staging slot failed");
        return Status::ok();
      }
      Status stageAndCopy(int slot, const uint8_t *src, uint64_t off, uint64_t n) override {
        auto &sl = b.slots_[slot];
        std::memcpy(sl.host, src, static_cast<size_t>(n));
        if (photon_cuda_memcpy_htod(dst + off, sl.host, static_cast<size_t>(n), s) != PHOTON_CUDA_OK ||
            photon_cuda_event_record(sl.event, s) != PHOTON_CUDA_OK)
          return driverError("staged host-to-device copy failed");
        return Status::ok();
      }
      Status finish() override {
        if (s && photon_cuda_stream_sync(s) != PHOTON_CUDA_OK)
          return driverError("synchronizing the upload failed");
        return Status::ok();
      }
    } steps(*this, dst.addr, s);
    return runUpload(plan, static_cast<const uint8_t *>(src), steps, progress);
  }

  Status download(void *dst, DevicePtr src, uint64_t bytes, DeviceStream stream) override {
    if (bytes == 0) return Status::ok();
    if (!dst || !src) return error(PHOTON_ERR_INVALID_ARGUMENT, "download: null pointer");
    if (photon_cuda_memcpy_dtoh(dst, src.addr, static_cast<size_t>(bytes), stream) != PHOTON_CUDA_OK)
      return driverError("device-to-host copy failed");
    return synchronize(stream);
  }

  Status copy(DevicePtr dst, DevicePtr src, uint64_t bytes, DeviceStream stream) override {
    if (bytes == 0) return Status::ok();
    if (photon_cuda_memcpy_dtod(dst.addr, src.addr, static_cast<size_t>(bytes), stream) !=
        PHOTON_CUDA_OK)
      return driverError("device-to-device copy failed");
    return synchronize(stream);
  }

  Status memset(DevicePtr dst, uint8_t value, uint64_t bytes, DeviceStream stream) override {
    if (bytes == 0) return Status::ok();
    if (bytes % 4 || dst.addr % 4)
      return error(PHOTON_ERR_INVALID_ARGUMENT,
                   "device memset needs 4-byte aligned addresses and sizes (got " +
                       std::to_string(bytes) + " bytes)");
    const uint32_t v = 0x01010101u * value;
    if (photon_cuda_memset32(dst.addr, v, static_cast<size_t>(bytes / 4), stream) != PHOTON_CUDA_OK)
      return driverError("device memset failed");
    return synchronize(stream);
  }

  Status createStream(DeviceStream &out) override {
    out = nullptr;
    if (photon_cuda_stream_create(&out) != PHOTON_CUDA_OK)
      return driverError("cannot create a CUDA stream");
    return Status::ok();
  }
  void destroyStream(DeviceStream s) override {
    if (s) photon_cuda_stream_destroy(s);
  }
  Status synchronize(DeviceStream s) override {
    if (photon_cuda_stream_sync(s) != PHOTON_CUDA_OK)
      return driverError("synchronizing the CUDA stream failed");
    return Status::ok();
  }

  Status memoryInfo(DeviceMemoryInfo &out) const override {
    uint64_t f = 0, t = 0;
    if (photon_cuda_mem_info(&f, &t) != PHOTON_CUDA_OK)
      return driverError("cannot read the device's memory");
    out.freeBytes = f;
    out.totalBytes = t;
    return Status::ok();
  }

  uint64_t allocatedBytes() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return allocated_;
  }

private:
  struct Slot {
    void *host = nullptr; // pinned
    photon_cuda_event event = nullptr;
  };
  // Called with stagingMu_ held.
  Status ensureStaging(int slots, uint64_t chunkBytes) {
    if (chunkBytes > slotBytes_) {
      for (auto &s : slots_) {
        if (s.event) photon_cuda_event_destroy(s.event);
        if (s.host) photon_cuda_host_free(s.host);
      }
      slots_.clear();
      slotBytes_ = chunkBytes;
    }
    while (static_cast<int>(slots_.size()) < slots) {
      Slot s;
      if (photon_cuda_host_alloc(static_cast<size_t>(slotBytes_), &s.host) != PHOTON_CUDA_OK)
        return driverError("cannot allocate " + formatBytes(static_cast<double>(slotBytes_)) +
                           " of pinned staging memory");
      if (photon_cuda_event_create(&s.event) != PHOTON_CUDA_OK) {
        photon_cuda_host_free(s.host);
        return driverError("cannot create a staging event");
      }
      slots_.push_back(s);
    }
    return Status::ok();
  }

  int ordinal_;
  DeviceInfo info_;
  mutable std::mutex mu_;
  std::map<uint64_t, uint64_t> allocs_;
  uint64_t allocated_ = 0;
  std::mutex stagingMu_;
  std::vector<Slot> slots_;
  uint64_t slotBytes_ = 0;
  photon_cuda_stream uploadStream_ = nullptr;
};

} // namespace

DriverProbe probeDriver(int ordinal, const std::vector<std::string> &archs) {
  DriverProbe p;
  int n = 0;
  Status st = probe(n);
  if (!st.isOk()) {
    // The loader adds its own way out (recompile for the CPU); keep the driver's reason only.
    std::string why = photon_cuda_last_error();
    p.reason = why.empty() ? st.message() : why;
    return p;
  }
  if (ordinal >= n) {
    p.reason = "the CUDA driver reports " + std::to_string(n) + " device(s), no device " +
               std::to_string(ordinal);
    return p;
  }
  p.usable = true;
  std::vector<const char *> names;
  for (const auto &a : archs) names.push_back(a.c_str());
  if (photon_cuda_check_arch(ordinal, names.data(), names.size()) == PHOTON_CUDA_OK)
    p.archMatches = true;
  else
    p.archReason = photon_cuda_last_error();
  return p;
}

Status createCudaBackend(int ordinal, std::shared_ptr<DeviceBackend> &out) {
  DeviceInfo info;
  PHOTON_RETURN_IF_ERROR(deviceInfo(ordinal, info));
  out = std::make_shared<CudaBackend>(ordinal, info);
  return Status::ok();
}

} // namespace cuda
} // namespace photon::rt
