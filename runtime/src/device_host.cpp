// HostBackend: the device is the host. Device pointers are host pointers; the mmapped weights
// are used in place (zero-copy); allocations are anonymous mappings committed on first touch
// (MAP_NORESERVE), so a cache pool may span more address space than the budget it is
// accounted against (cache.h).
#include "device.h"

#include "artifact.h"
#include "device_plan.h"

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <sys/mman.h>
#include <unistd.h>

namespace photon::rt {
namespace {

class HostBackend final : public DeviceBackend {
public:
  /// `staged`: behave like a discrete device (see stagedHostBackend in device.h).
  explicit HostBackend(bool staged = false) : staged_(staged) {}
  std::string name() const override { return staged_ ? "host-staged" : "host"; }
  DeviceKind kind() const override { return DeviceKind::Host; }
  bool hostAddressable() const override { return !staged_; }

  Status checkCapability(const Manifest &mf) const override {
    if (mf.targetKind != "cpu")
      return error(PHOTON_ERR_TARGET, "the host backend runs CPU artifacts; this one was "
                                      "compiled for target kind \"" + mf.targetKind + "\"");
    return Status::ok();
  }

  Status allocate(uint64_t bytes, const std::string &what, DevicePtr &out) override {
    out = DevicePtr();
    if (bytes == 0)
      return error(PHOTON_ERR_INVALID_ARGUMENT, "allocation of 0 bytes for the " + what);
    void *m = mmap(nullptr, static_cast<size_t>(bytes), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
      return error(PHOTON_ERR_OUT_OF_BUDGET,
                   "cannot map " + formatBytes(static_cast<double>(bytes)) +
                       " of address space for the " + what + " (" + std::strerror(errno) +
                       "); lower --memory-budget");
    out = DevicePtr::fromHost(m);
    std::lock_guard<std::mutex> lock(mu_);
    allocs_[out.addr] = bytes;
    allocated_ += bytes;
    return Status::ok();
  }

  void free(DevicePtr p) override {
    if (!p) return;
    uint64_t bytes = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = allocs_.find(p.addr);
      if (it == allocs_.end()) return; // not ours (the weights mapping is the loader's)
      bytes = it->second;
      allocated_ -= bytes;
      allocs_.erase(it);
    }
    munmap(p.raw(), static_cast<size_t>(bytes));
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
    if (staged_) { // one allocation, one upload, like a device
      PHOTON_RETURN_IF_ERROR(allocate(bytes, "weights", out));
      return upload(out, host, bytes, nullptr, progress);
    }
    out = DevicePtr::fromHost(host); // zero-copy: the stages read the mapping in place
    if (progress) progress(bytes, bytes);
    return Status::ok();
  }

  Status upload(DevicePtr dst, const void *src, uint64_t bytes, DeviceStream,
                const UploadProgress &progress) override {
    if (bytes && (!dst || !src)) return error(PHOTON_ERR_INVALID_ARGUMENT, "upload: null pointer");
    // Same plan as a device upload (no staging needed: the chunks only pace the progress).
    UploadPlan plan = planUpload(bytes);
    struct Steps final : UploadSteps {
      uint8_t *dst;
      explicit Steps(uint8_t *d) : dst(d) {}
      Status direct(const uint8_t *s, uint64_t off, uint64_t n) override {
        std::memcpy(dst + off, s, static_cast<size_t>(n));
        return Status::ok();
      }
      Status waitSlot(int) override { return Status::ok(); }
      Status stageAndCopy(int, const uint8_t *s, uint64_t off, uint64_t n) override {
        return direct(s, off, n);
      }
      Status finish() override { return Status::ok(); }
    } steps(static_cast<uint8_t *>(dst.raw()));
    return runUpload(plan, static_cast<const uint8_t *>(src), steps, progress);
  }

  Status download(void *dst, DevicePtr src, uint64_t bytes, DeviceStream) override {
    if (bytes && (!dst || !src)) return error(PHOTON_ERR_INVALID_ARGUMENT, "download: null pointer");
    if (bytes) std::memcpy(dst, src.raw(), static_cast<size_t>(bytes));
    return Status::ok();
  }

  Status copy(DevicePtr dst, DevicePtr src, uint64_t bytes, DeviceStream) override {
    if (bytes && (!dst || !src)) return error(PHOTON_ERR_INVALID_ARGUMENT, "copy: null pointer");
    if (bytes) std::memmove(dst.raw(), src.raw(), static_cast<size_t>(bytes));
    return Status::ok();
  }

  Status memset(DevicePtr dst, uint8_t value, uint64_t bytes, DeviceStream) override {
    if (bytes && !dst) return error(PHOTON_ERR_INVALID_ARGUMENT, "memset: null pointer");
    if (bytes) std::memset(dst.raw(), value, static_cast<size_t>(bytes));
    return Status::ok();
  }

  Status createStream(DeviceStream &out) override {
    out = nullptr;
    return Status::ok();
  }
  void destroyStream(DeviceStream) override {}
  Status synchronize(DeviceStream) override { return Status::ok(); }

  Status memoryInfo(DeviceMemoryInfo &out) const override {
    long pages = sysconf(_SC_PHYS_PAGES), avail = sysconf(_SC_AVPHYS_PAGES);
    long pageSize = sysconf(_SC_PAGE_SIZE);
    if (pages <= 0 || pageSize <= 0)
      return error(PHOTON_ERR_INTERNAL, "sysconf cannot tell the physical memory");
    out.totalBytes = static_cast<uint64_t>(pages) * static_cast<uint64_t>(pageSize);
    out.freeBytes = avail > 0 ? static_cast<uint64_t>(avail) * static_cast<uint64_t>(pageSize) : 0;
    return Status::ok();
  }

  uint64_t allocatedBytes() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return allocated_;
  }

private:
  bool staged_;
  mutable std::mutex mu_;
  std::map<uint64_t, uint64_t> allocs_; // base -> bytes
  uint64_t allocated_ = 0;
};

} // namespace

std::shared_ptr<DeviceBackend> hostBackend() {
  static std::shared_ptr<DeviceBackend> host = std::make_shared<HostBackend>();
  return host;
}

std::shared_ptr<DeviceBackend> stagedHostBackend() {
  return std::make_shared<HostBackend>(/*staged=*/true);
}

} // namespace photon::rt
