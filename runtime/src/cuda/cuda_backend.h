// CUDA backend over the driver API, loaded at run time with dlopen("libcuda.so.1") so that
// libphoton has no link-time dependency on CUDA. This folder is the CUDA backend's home; for
// now it probes the driver and reports cleanly when there is none.
#ifndef PHOTON_RUNTIME_CUDA_BACKEND_H
#define PHOTON_RUNTIME_CUDA_BACKEND_H

#include "../status.h"

#include <string>

namespace photon::rt {
namespace cuda {

struct DeviceInfo {
  int ordinal = 0;
  std::string name;
  int ccMajor = 0, ccMinor = 0;
  size_t totalMemory = 0;
};

/// Opens the driver and initialises it. PHOTON_ERR_NO_DEVICE with "no CUDA driver
/// (libcuda.so.1 not found)" when the library is absent, or the driver's own error string.
Status probe(int &deviceCount);
/// Device properties (after a successful probe).
Status deviceInfo(int ordinal, DeviceInfo &out);

} // namespace cuda
} // namespace photon::rt

#endif
