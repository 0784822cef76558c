// The engine-facing probe of the CUDA backend, over the backend's C API (photon/cuda.h,
// cuda_driver.cpp: the driver API loaded with dlopen("libcuda.so.1")).
#include "cuda_backend.h"

#include "photon/cuda.h"

namespace photon::rt {
namespace cuda {

Status probe(int &deviceCount) {
  deviceCount = 0;
  photon_cuda_status s = photon_cuda_init(0);
  if (s != PHOTON_CUDA_OK) {
    std::string why = photon_cuda_last_error();
    if (why.empty()) why = "no CUDA driver (libcuda.so.1 not found)";
    if (why.find("install") == std::string::npos)
      why += "; install the NVIDIA driver or run a CPU artifact (photon-compile --target=cpu)";
    return error(PHOTON_ERR_NO_DEVICE, why);
  }
  deviceCount = photon_cuda_device_count();
  if (deviceCount == 0) return error(PHOTON_ERR_NO_DEVICE, "the CUDA driver reports no device");
  return Status::ok();
}

Status deviceInfo(int ordinal, DeviceInfo &out) {
  int n = 0;
  PHOTON_RETURN_IF_ERROR(probe(n));
  photon_cuda_device_info info;
  if (photon_cuda_device_query(ordinal, &info) != PHOTON_CUDA_OK)
    return error(PHOTON_ERR_NO_DEVICE, photon_cuda_last_error());
  out.ordinal = info.ordinal;
  out.name = info.name;
  out.ccMajor = info.cc_major;
  out.ccMinor = info.cc_minor;
  out.totalMemory = static_cast<size_t>(info.total_bytes);
  return Status::ok();
}

} // namespace cuda
} // namespace photon::rt
