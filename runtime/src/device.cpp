// The choice of device backend for an artifact (device.h: createBackend).
#include "device.h"

#include "artifact.h"
#include "cuda/cuda_device.h"
#include "device_plan.h"

#include <cstdlib>

namespace photon::rt {

Status createBackend(const Manifest &mf, const std::string &manifestPath,
                     std::shared_ptr<DeviceBackend> &out) {
  DeviceKind kind = DeviceKind::Host;
  PHOTON_RETURN_IF_ERROR(chooseBackend(
      mf.targetKind, mf.targetArchs,
      [&] { return cuda::probeDriver(0, mf.targetArchs); }, manifestPath, kind));
  if (kind == DeviceKind::Host) {
    const char *env = std::getenv("PHOTON_DEVICE_BACKEND");
    const std::string want = env ? env : "";
    if (want.empty() || want == "host") out = hostBackend();
    else if (want == "host-staged") out = stagedHostBackend();
    else
      return error(PHOTON_ERR_INVALID_ARGUMENT,
                   "PHOTON_DEVICE_BACKEND=" + want + " is not a backend for CPU artifacts "
                   "(host, host-staged)");
    return Status::ok();
  }
  PHOTON_RETURN_IF_ERROR(cuda::createCudaBackend(0, out));
  return out->checkCapability(mf);
}

} // namespace photon::rt
