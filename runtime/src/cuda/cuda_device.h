// CudaBackend: the runtime's device backend (device.h) on a CUDA device, through the driver
// API that libphoton_cuda.so opens with dlopen (photon/cuda.h). Nothing here links CUDA.
#ifndef PHOTON_RUNTIME_CUDA_DEVICE_H
#define PHOTON_RUNTIME_CUDA_DEVICE_H

#include "../device.h"
#include "../device_plan.h"

#include <memory>

namespace photon::rt {
namespace cuda {

/// Probes device `ordinal` for an artifact built for `archs`: whether the driver is usable
/// and whether the device's architecture is among them, with the driver's reasons.
DriverProbe probeDriver(int ordinal, const std::vector<std::string> &archs);

/// Creates the CUDA backend of device `ordinal` (after a successful probe).
Status createCudaBackend(int ordinal, std::shared_ptr<DeviceBackend> &out);

} // namespace cuda
} // namespace photon::rt

#endif
