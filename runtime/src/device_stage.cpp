#include "device_stage.h"

#include "cache.h"
#include "device_plan.h"

#include <algorithm>

namespace photon::rt {

size_t dtypeBytes(const std::string &dtype) {
  if (dtype == "f32" || dtype == "i32") return 4;
  if (dtype == "f16" || dtype == "bf16") return 2;
  if (dtype == "i8") return 1;
  if (dtype == "i64" || dtype == "f64") return 8;
  return 0;
}

uint64_t defaultCacheBudget(const Model &model) {
  const auto &dev = model.backend();
  if (!dev || dev->hostAddressable()) return defaultMemoryBudget();
  DeviceMemoryInfo mi;
  if (!dev->memoryInfo(mi).isOk()) return 64ull << 20;
  return std::max<uint64_t>(defaultDeviceCacheBudget(mi.freeBytes), 64ull << 20);
}

StageRunner::StageRunner(const Model &model) : backend_(model.backend()) {
  for (const auto &s : model.manifest().stages)
    if (StageFn fn = model.stage(s.name)) specs_[fn] = &s;
}

StageRunner::~StageRunner() {
  for (auto &kv : scratch_) backend_->free(kv.second.ptr);
  if (stream_) backend_->destroyStream(stream_);
}

Status StageRunner::init() {
  if (backend_->hostAddressable()) return Status::ok();
  return backend_->createStream(stream_);
}

uint64_t StageRunner::scratchBytes() const {
  uint64_t t = 0;
  for (const auto &kv : scratch_) t += kv.second.bytes;
  return t;
}

Status StageRunner::run(StageFn fn, StageArgs &args) {
  if (!fn) return error(PHOTON_ERR_INTERNAL, "stage call without an entry point");
  if (backend_->hostAddressable()) {
    fn(args.args());
    return Status::ok();
  }
  auto it = specs_.find(fn);
  if (it == specs_.end())
    return error(PHOTON_ERR_INTERNAL, "stage call to an entry point the manifest does not name");
  const StageSpec &spec = *it->second;
  if (spec.args.size() != args.size())
    return error(PHOTON_ERR_INTERNAL, "stage '" + spec.name + "' takes " +
                                          std::to_string(spec.args.size()) + " arguments, the "
                                          "engine passed " + std::to_string(args.size()));
  struct Back {
    void *host;
    DevicePtr dev;
    uint64_t bytes;
  };
  std::vector<Back> back;
  for (size_t i = 0; i < args.size(); ++i) {
    MemRef &m = args.at(i);
    const StageArg &sa = spec.args[i];
    const size_t eb = dtypeBytes(sa.dtype);
    if (!eb)
      return error(PHOTON_ERR_FORMAT, "stage '" + spec.name + "' argument '" + sa.name +
                                          "' has dtype \"" + sa.dtype + "\", which the device "
                                          "path cannot size");
    const uint64_t bytes = static_cast<uint64_t>(std::max<int64_t>(m.numElements(), 0)) * eb;
    const DevicePtr p = DevicePtr::fromHost(m.data());
    // Already device memory: the weights (a byte view, so size it by the descriptor in
    // bytes) and the cache pools.
    if (!p || bytes == 0 || backend_->owns(p, std::min<uint64_t>(bytes, 1)))
      continue;
    if (sa.io.empty())
      return error(PHOTON_ERR_INTERNAL, "stage '" + spec.name + "' weights argument '" + sa.name +
                                            "' is not in device memory");
    Scratch &s = scratch_[{fn, i}];
    if (s.bytes < bytes) {
      backend_->free(s.ptr);
      s = Scratch();
      const uint64_t want = std::max<uint64_t>(bytes, 256);
      PHOTON_RETURN_IF_ERROR(backend_->allocate(
          want, "argument '" + sa.name + "' of stage '" + spec.name + "'", s.ptr));
      s.bytes = want;
    }
    if (sa.io == "in" || sa.io == "inout") {
      PHOTON_RETURN_IF_ERROR(backend_->upload(s.ptr, m.data(), bytes, stream_));
      bytesIn_ += bytes;
    }
    if (sa.io == "out" || sa.io == "inout")
      back.push_back({const_cast<void *>(m.data()), s.ptr, bytes});
    m.setData(s.ptr.raw());
  }
  // The stage's own streams do not wait on ours: everything uploaded must have arrived.
  PHOTON_RETURN_IF_ERROR(backend_->synchronize(stream_));
  fn(args.args());
  for (const Back &b : back) {
    PHOTON_RETURN_IF_ERROR(backend_->download(b.host, b.dev, b.bytes, stream_));
    bytesOut_ += b.bytes;
  }
  return Status::ok();
}

} // namespace photon::rt
