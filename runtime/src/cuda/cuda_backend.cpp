#include "cuda_backend.h"

#include <dlfcn.h>
#include <mutex>

namespace photon {
namespace cuda {

namespace {

// The few driver entry points we need, declared with plain C types (no cuda.h dependency).
using CUresult = int;
using CUdevice = int;
struct Driver {
  void *handle = nullptr;
  CUresult (*cuInit)(unsigned) = nullptr;
  CUresult (*cuDeviceGetCount)(int *) = nullptr;
  CUresult (*cuDeviceGet)(CUdevice *, int) = nullptr;
  CUresult (*cuDeviceGetName)(char *, int, CUdevice) = nullptr;
  CUresult (*cuDeviceGetAttribute)(int *, int, CUdevice) = nullptr;
  CUresult (*cuDeviceTotalMem)(size_t *, CUdevice) = nullptr;
  CUresult (*cuGetErrorString)(CUresult, const char **) = nullptr;
  Status status;
};

template <typename F> bool sym(void *h, const char *name, F &out) {
  out = reinterpret_cast<F>(dlsym(h, name));
  return out != nullptr;
}

std::string errString(const Driver &d, CUresult r) {
  const char *s = nullptr;
  if (d.cuGetErrorString && d.cuGetErrorString(r, &s) == 0 && s) return s;
  return "CUDA error " + std::to_string(r);
}

Driver &driver() {
  static Driver d;
  static std::once_flag once;
  std::call_once(once, [] {
    d.handle = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!d.handle) {
      d.status = error(PHOTON_ERR_NO_DEVICE,
                       "no CUDA driver (libcuda.so.1 not found); install the NVIDIA driver or "
                       "run a CPU artifact (photon-compile --target=cpu)");
      return;
    }
    bool ok = sym(d.handle, "cuInit", d.cuInit) && sym(d.handle, "cuDeviceGetCount", d.cuDeviceGetCount) &&
              sym(d.handle, "cuDeviceGet", d.cuDeviceGet) &&
              sym(d.handle, "cuDeviceGetName", d.cuDeviceGetName) &&
              sym(d.handle, "cuDeviceGetAttribute", d.cuDeviceGetAttribute) &&
              (sym(d.handle, "cuDeviceTotalMem_v2", d.cuDeviceTotalMem) ||
               sym(d.handle, "cuDeviceTotalMem", d.cuDeviceTotalMem));
    sym(d.handle, "cuGetErrorString", d.cuGetErrorString);
    if (!ok) {
      d.status = error(PHOTON_ERR_NO_DEVICE, "libcuda.so.1 lacks driver API entry points "
                                             "(driver too old?); update the NVIDIA driver");
      return;
    }
    CUresult r = d.cuInit(0);
    if (r != 0)
      d.status = error(PHOTON_ERR_NO_DEVICE, "the CUDA driver failed to initialise: " + errString(d, r));
  });
  return d;
}

} // namespace

Status probe(int &deviceCount) {
  deviceCount = 0;
  Driver &d = driver();
  if (!d.status) return d.status;
  CUresult r = d.cuDeviceGetCount(&deviceCount);
  if (r != 0) return error(PHOTON_ERR_NO_DEVICE, "cuDeviceGetCount: " + errString(d, r));
  if (deviceCount == 0) return error(PHOTON_ERR_NO_DEVICE, "the CUDA driver reports no device");
  return Status::ok();
}

Status deviceInfo(int ordinal, DeviceInfo &out) {
  int n = 0;
  PHOTON_RETURN_IF_ERROR(probe(n));
  if (ordinal < 0 || ordinal >= n)
    return error(PHOTON_ERR_INVALID_ARGUMENT, "CUDA device " + std::to_string(ordinal) +
                                                  " does not exist (" + std::to_string(n) + " found)");
  Driver &d = driver();
  CUdevice dev;
  CUresult r = d.cuDeviceGet(&dev, ordinal);
  if (r != 0) return error(PHOTON_ERR_NO_DEVICE, "cuDeviceGet: " + errString(d, r));
  char name[256] = {};
  d.cuDeviceGetName(name, sizeof name, dev);
  out.ordinal = ordinal;
  out.name = name;
  d.cuDeviceGetAttribute(&out.ccMajor, 75, dev); // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
  d.cuDeviceGetAttribute(&out.ccMinor, 76, dev); // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR
  d.cuDeviceTotalMem(&out.totalMemory, dev);
  return Status::ok();
}

} // namespace cuda
} // namespace photon
