// photon CUDA backend over the driver API, opened with dlopen at run time (no link-time
// dependency on libcuda or on the toolkit). See runtime/include/photon/cuda.h.
// (cuda_backend.cpp beside this file keeps libphoton's photon::cuda::probe/deviceInfo.)
// Exported from libphoton_cuda whatever the default visibility of the build is.
#pragma GCC visibility push(default)
#include "photon/cuda.h"
#include "photon/cuda_mgpu.h"
#pragma GCC visibility pop

#include <dlfcn.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

namespace {

// Driver types and entry points, declared here so that the runtime builds without cuda.h.
using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using CUcontext = void *;
using CUmodule = void *;
using CUfunction = void *;
using CUstream = void *;
using CUevent = void *;
constexpr CUresult CUDA_SUCCESS = 0;
constexpr unsigned CU_STREAM_NON_BLOCKING = 1;
constexpr unsigned CU_EVENT_DISABLE_TIMING = 2;
constexpr int CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;

struct Driver {
  void *handle = nullptr;
  CUresult (*cuInit)(unsigned) = nullptr;
  CUresult (*cuDriverGetVersion)(int *) = nullptr;
  CUresult (*cuGetErrorName)(CUresult, const char **) = nullptr;
  CUresult (*cuGetErrorString)(CUresult, const char **) = nullptr;
  CUresult (*cuDeviceGetCount)(int *) = nullptr;
  CUresult (*cuDeviceGet)(CUdevice *, int) = nullptr;
  CUresult (*cuDeviceGetName)(char *, int, CUdevice) = nullptr;
  CUresult (*cuDeviceGetAttribute)(int *, int, CUdevice) = nullptr;
  CUresult (*cuDeviceTotalMem)(size_t *, CUdevice) = nullptr;
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice) = nullptr;
  CUresult (*cuCtxPushCurrent)(CUcontext) = nullptr;
  CUresult (*cuCtxPopCurrent)(CUcontext *) = nullptr;
  CUresult (*cuModuleLoadData)(CUmodule *, const void *) = nullptr;
  CUresult (*cuModuleUnload)(CUmodule) = nullptr;
  CUresult (*cuModuleGetFunction)(CUfunction *, CUmodule, const char *) = nullptr;
  CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned,
                             unsigned, unsigned, CUstream, void **, void **) = nullptr;
  CUresult (*cuStreamCreate)(CUstream *, unsigned) = nullptr;
  CUresult (*cuStreamSynchronize)(CUstream) = nullptr;
  CUresult (*cuStreamDestroy)(CUstream) = nullptr;
  CUresult (*cuStreamWaitEvent)(CUstream, CUevent, unsigned) = nullptr;
  CUresult (*cuEventCreate)(CUevent *, unsigned) = nullptr;
  CUresult (*cuEventDestroy)(CUevent) = nullptr;
  CUresult (*cuEventRecord)(CUevent, CUstream) = nullptr;
  CUresult (*cuEventSynchronize)(CUevent) = nullptr;
  CUresult (*cuMemAlloc)(CUdeviceptr *, size_t) = nullptr;
  CUresult (*cuMemAllocManaged)(CUdeviceptr *, size_t, unsigned) = nullptr;
  CUresult (*cuMemFree)(CUdeviceptr) = nullptr;
  CUresult (*cuMemcpyAsync)(CUdeviceptr, CUdeviceptr, size_t, CUstream) = nullptr;
  CUresult (*cuMemcpyHtoDAsync)(CUdeviceptr, const void *, size_t, CUstream) = nullptr;
  CUresult (*cuMemcpyDtoHAsync)(void *, CUdeviceptr, size_t, CUstream) = nullptr;
  CUresult (*cuMemsetD32Async)(CUdeviceptr, unsigned, size_t, CUstream) = nullptr;
  CUresult (*cuMemsetD16Async)(CUdeviceptr, unsigned short, size_t, CUstream) = nullptr;
  CUresult (*cuMemHostAlloc)(void **, size_t, unsigned) = nullptr;
  CUresult (*cuMemFreeHost)(void *) = nullptr;
  CUresult (*cuMemGetInfo)(size_t *, size_t *) = nullptr;
};

std::mutex gMutex;
Driver gDriver;
bool gTried = false;
photon_cuda_status gLoadStatus = PHOTON_CUDA_NO_DRIVER;
std::string gLoadError;
std::string gLastError;
CUcontext gContext[64] = {};
thread_local int tDevice = 0;

void setError(const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  std::lock_guard<std::mutex> lock(gMutex);
  gLastError = buf;
}

std::string resultText(CUresult r) {
  const char *name = nullptr, *text = nullptr;
  if (gDriver.cuGetErrorName)
    gDriver.cuGetErrorName(r, &name);
  if (gDriver.cuGetErrorString)
    gDriver.cuGetErrorString(r, &text);
  std::string s = name ? name : ("CUresult " + std::to_string(r));
  if (text)
    s += std::string(" (") + text + ")";
  return s;
}

template <typename Fn> bool bindSymbol(Fn &fn, const char *name, std::string &missing) {
  fn = reinterpret_cast<Fn>(dlsym(gDriver.handle, name));
  if (!fn) {
    missing = name;
    return false;
  }
  return true;
}

// Opens the driver once.
photon_cuda_status loadDriver() {
  std::lock_guard<std::mutex> lock(gMutex);
  if (gTried)
    return gLoadStatus;
  gTried = true;
  const char *override = std::getenv("PHOTON_CUDA_DRIVER");
  const char *path = (override && *override) ? override : "libcuda.so.1";
  gDriver.handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!gDriver.handle) {
    const char *why = dlerror();
    gLoadError = std::string("no CUDA driver (") + path + " not found" +
                 (why ? std::string(": ") + why : std::string()) +
                 "); install the NVIDIA driver or run on a machine with a GPU";
    gLastError = gLoadError;
    return gLoadStatus = PHOTON_CUDA_NO_DRIVER;
  }
  std::string missing;
  bool ok = bindSymbol(gDriver.cuInit, "cuInit", missing) &&
            bindSymbol(gDriver.cuDriverGetVersion, "cuDriverGetVersion", missing) &&
            bindSymbol(gDriver.cuGetErrorName, "cuGetErrorName", missing) &&
            bindSymbol(gDriver.cuGetErrorString, "cuGetErrorString", missing) &&
            bindSymbol(gDriver.cuDeviceGetCount, "cuDeviceGetCount", missing) &&
            bindSymbol(gDriver.cuDeviceGet, "cuDeviceGet", missing) &&
            bindSymbol(gDriver.cuDeviceGetName, "cuDeviceGetName", missing) &&
            bindSymbol(gDriver.cuDeviceGetAttribute, "cuDeviceGetAttribute", missing) &&
            bindSymbol(gDriver.cuDeviceTotalMem, "cuDeviceTotalMem_v2", missing) &&
            bindSymbol(gDriver.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain", missing) &&
            bindSymbol(gDriver.cuCtxPushCurrent, "cuCtxPushCurrent_v2", missing) &&
            bindSymbol(gDriver.cuCtxPopCurrent, "cuCtxPopCurrent_v2", missing) &&
            bindSymbol(gDriver.cuModuleLoadData, "cuModuleLoadData", missing) &&
            bindSymbol(gDriver.cuModuleUnload, "cuModuleUnload", missing) &&
            bindSymbol(gDriver.cuModuleGetFunction, "cuModuleGetFunction", missing) &&
            bindSymbol(gDriver.cuLaunchKernel, "cuLaunchKernel", missing) &&
            bindSymbol(gDriver.cuStreamCreate, "cuStreamCreate", missing) &&
            bindSymbol(gDriver.cuStreamSynchronize, "cuStreamSynchronize", missing) &&
            bindSymbol(gDriver.cuStreamDestroy, "cuStreamDestroy_v2", missing) &&
            bindSymbol(gDriver.cuStreamWaitEvent, "cuStreamWaitEvent", missing) &&
            bindSymbol(gDriver.cuEventCreate, "cuEventCreate", missing) &&
            bindSymbol(gDriver.cuEventDestroy, "cuEventDestroy_v2", missing) &&
            bindSymbol(gDriver.cuEventRecord, "cuEventRecord", missing) &&
            bindSymbol(gDriver.cuEventSynchronize, "cuEventSynchronize", missing) &&
            bindSymbol(gDriver.cuMemAlloc, "cuMemAlloc_v2", missing) &&
            bindSymbol(gDriver.cuMemAllocManaged, "cuMemAllocManaged", missing) &&
            bindSymbol(gDriver.cuMemFree, "cuMemFree_v2", missing) &&
            bindSymbol(gDriver.cuMemcpyAsync, "cuMemcpyAsync", missing) &&
            bindSymbol(gDriver.cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2", missing) &&
            bindSymbol(gDriver.cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2", missing) &&
            bindSymbol(gDriver.cuMemsetD32Async, "cuMemsetD32Async", missing) &&
            bindSymbol(gDriver.cuMemsetD16Async, "cuMemsetD16Async", missing) &&
            bindSymbol(gDriver.cuMemHostAlloc, "cuMemHostAlloc", missing) &&
            bindSymbol(gDriver.cuMemFreeHost, "cuMemFreeHost", missing) &&
            bindSymbol(gDriver.cuMemGetInfo, "cuMemGetInfo_v2", missing);
  if (!ok) {
    gLoadError = std::string("no usable CUDA driver (") + path + " lacks " + missing +
                 "); the driver is too old for this runtime";
    gLastError = gLoadError;
    return gLoadStatus = PHOTON_CUDA_NO_DRIVER;
  }
  CUresult r = gDriver.cuInit(0);
  if (r != CUDA_SUCCESS) {
    // CUDA_ERROR_STUB_LIBRARY (34): the toolkit's stub was found instead of a driver;
    // CUDA_ERROR_NO_DEVICE (100): the driver sees no GPU.
    gLoadError = std::string("no CUDA driver (cuInit failed in ") + path + ": " + resultText(r) +
                 ")";
    gLastError = gLoadError;
    return gLoadStatus = (r == 100 ? PHOTON_CUDA_NO_DEVICE : PHOTON_CUDA_NO_DRIVER);
  }
  return gLoadStatus = PHOTON_CUDA_OK;
}

photon_cuda_status check(CUresult r, const char *what) {
  if (r == CUDA_SUCCESS)
    return PHOTON_CUDA_OK;
  setError("%s failed: %s", what, resultText(r).c_str());
  return PHOTON_CUDA_DRIVER_ERROR;
}

// The primary context of the thread's device, retained once per device.
photon_cuda_status primaryContext(CUcontext *out) {
  photon_cuda_status s = loadDriver();
  if (s != PHOTON_CUDA_OK) {
    std::lock_guard<std::mutex> lock(gMutex);
    gLastError = gLoadError;
    return s;
  }
  int ordinal = tDevice;
  if (ordinal < 0 || ordinal >= 64) {
    setError("CUDA device ordinal %d out of range", ordinal);
    return PHOTON_CUDA_NO_DEVICE;
  }
  std::lock_guard<std::mutex> lock(gMutex);
  if (!gContext[ordinal]) {
    CUdevice dev = 0;
    CUresult r = gDriver.cuDeviceGet(&dev, ordinal);
    if (r != CUDA_SUCCESS) {
      gLastError = "no CUDA device " + std::to_string(ordinal) + ": " + resultText(r);
      return PHOTON_CUDA_NO_DEVICE;
    }
    r = gDriver.cuDevicePrimaryCtxRetain(&gContext[ordinal], dev);
    if (r != CUDA_SUCCESS) {
      gLastError = "cuDevicePrimaryCtxRetain failed: " + resultText(r);
      return PHOTON_CUDA_DRIVER_ERROR;
    }
  }
  *out = gContext[ordinal];
  return PHOTON_CUDA_OK;
}

// Makes the primary context current for the duration of one call (as MLIR's wrappers do).
class ScopedContext {
public:
  ScopedContext() {
    CUcontext ctx = nullptr;
    status = primaryContext(&ctx);
    if (status == PHOTON_CUDA_OK) {
      status = check(gDriver.cuCtxPushCurrent(ctx), "cuCtxPushCurrent");
      pushed = status == PHOTON_CUDA_OK;
    }
  }
  ~ScopedContext() {
    if (pushed) {
      CUcontext ignored = nullptr;
      gDriver.cuCtxPopCurrent(&ignored);
    }
  }
  photon_cuda_status status;

private:
  bool pushed = false;
};

// mgpu* functions have no status return: report on stderr, keep the text.
void report(photon_cuda_status s, const char *fn) {
  if (s != PHOTON_CUDA_OK)
    std::fprintf(stderr, "photon cuda: %s: %s\n", fn, photon_cuda_last_error());
}

} // namespace

struct photon_cuda_module {
  CUmodule module;
};

extern "C" {

photon_cuda_status photon_cuda_init(int ordinal) {
  tDevice = ordinal;
  ScopedContext ctx;
  return ctx.status;
}

const char *photon_cuda_last_error(void) {
  static thread_local std::string copy;
  std::lock_guard<std::mutex> lock(gMutex);
  copy = gLastError;
  return copy.c_str();
}

int photon_cuda_device_count(void) {
  if (loadDriver() != PHOTON_CUDA_OK)
    return 0;
  int n = 0;
  if (gDriver.cuDeviceGetCount(&n) != CUDA_SUCCESS)
    return 0;
  return n;
}

photon_cuda_status photon_cuda_device_query(int ordinal, photon_cuda_device_info *info) {
  if (!info) {
    setError("photon_cuda_device_query: info is null");
    return PHOTON_CUDA_INVALID_ARG;
  }
  std::memset(info, 0, sizeof *info);
  photon_cuda_status s = loadDriver();
  if (s != PHOTON_CUDA_OK)
    return s;
  CUdevice dev = 0;
  CUresult r = gDriver.cuDeviceGet(&dev, ordinal);
  if (r != CUDA_SUCCESS) {
    setError("no CUDA device %d (%d found): %s", ordinal, photon_cuda_device_count(),
             resultText(r).c_str());
    return PHOTON_CUDA_NO_DEVICE;
  }
  info->ordinal = ordinal;
  if ((s = check(gDriver.cuDeviceGetName(info->name, sizeof info->name - 1, dev),
                 "cuDeviceGetName")) != PHOTON_CUDA_OK ||
      (s = check(gDriver.cuDeviceGetAttribute(&info->cc_major,
                                              CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev),
                 "cuDeviceGetAttribute")) != PHOTON_CUDA_OK ||
      (s = check(gDriver.cuDeviceGetAttribute(&info->cc_minor,
                                              CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev),
                 "cuDeviceGetAttribute")) != PHOTON_CUDA_OK ||
      (s = check(gDriver.cuDeviceGetAttribute(&info->multiprocessors,
                                              CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev),
                 "cuDeviceGetAttribute")) != PHOTON_CUDA_OK)
    return s;
  size_t total = 0;
  if ((s = check(gDriver.cuDeviceTotalMem(&total, dev), "cuDeviceTotalMem")) != PHOTON_CUDA_OK)
    return s;
  info->total_bytes = total;
  gDriver.cuDriverGetVersion(&info->driver_version);
  return PHOTON_CUDA_OK;
}

photon_cuda_status photon_cuda_check_arch(int ordinal, const char *const *archs, size_t count) {
  if (!archs && count) {
    setError("photon_cuda_check_arch: archs is null");
    return PHOTON_CUDA_INVALID_ARG;
  }
  photon_cuda_device_info info;
  photon_cuda_status s = photon_cuda_device_query(ordinal, &info);
  if (s != PHOTON_CUDA_OK)
    return s;
  char mine[32];
  std::snprintf(mine, sizeof mine, "sm_%d%d", info.cc_major, info.cc_minor);
  std::string built;
  for (size_t i = 0; i < count; ++i) {
    if (std::strcmp(archs[i], mine) == 0)
      return PHOTON_CUDA_OK;
    built += (i ? ", " : "") + std::string(archs[i]);
  }
  setError("the artifact has GPU code for %s, but device %d (%s) is %s; recompile with "
           "photon-compile --target cuda:%s",
           built.empty() ? "no architecture" : built.c_str(), ordinal, info.name, mine, mine);
  return PHOTON_CUDA_WRONG_ARCH;
}

photon_cuda_status photon_cuda_module_load(const void *image, photon_cuda_module **out) {
  if (!image || !out) {
    setError("photon_cuda_module_load: null image or result pointer");
    return PHOTON_CUDA_INVALID_ARG;
  }
  *out = nullptr;
  ScopedContext ctx;
  if (ctx.status != PHOTON_CUDA_OK)
    return ctx.status;
  CUmodule m = nullptr;
  photon_cuda_status s = check(gDriver.cuModuleLoadData(&m, image), "cuModuleLoadData");
  if (s != PHOTON_CUDA_OK)
    return s;
  *out = new photon_cuda_module{m};
  return PHOTON_CUDA_OK;
}

photon_cuda_status photon_cuda_module_function(photon_cuda_module *m, const char *name,
                                               photon_cuda_function *out) {
  if (!m || !name || !out) {
    setError("photon_cuda_module_function: null argument");
    return PHOTON_CUDA_INVALID_ARG;
  }
  CUfunction f = nullptr;
  photon_cuda_status s =
      check(gDriver.cuModuleGetFunction(&f, m->module, name), "cuModuleGetFunction");
  if (s != PHOTON_CUDA_OK) {
    std::string why = photon_cuda_last_error();
    setError("kernel '%s' not found in the module: %s", name, why.c_str());
    return s;
  }
  *out = f;
  return PHOTON_CUDA_OK;
}

void photon_cuda_module_unload(photon_cuda_module *m) {
  if (!m)
    return;
  ScopedContext ctx;
  if (ctx.status == PHOTON_CUDA_OK)
    check(gDriver.cuModuleUnload(m->module), "cuModuleUnload");
  delete m;
}

photon_cuda_status photon_cuda_launch(photon_cuda_function f, const uint32_t grid[3],
                                      const uint32_t block[3], uint32_t shared_bytes,
                                      photon_cuda_stream stream, void **params) {
  if (!f || !grid || !block) {
    setError("photon_cuda_launch: null function, grid or block");
    return PHOTON_CUDA_INVALID_ARG;
  }
  ScopedContext ctx;
  if (ctx.status != PHOTON_CUDA_OK)
    return ctx.status;
  return check(gDriver.cuLaunchKernel(f, grid[0], grid[1], grid[2], block[0], block[1], block[2],
                                      shared_bytes, stream, params, nullptr),
               "cuLaunchKernel");
}

photon_cuda_status photon_cuda_stream_create(photon_cuda_stream *out) {
  if (!out) {
    setError("photon_cuda_stream_create: null result pointer");
    return PHOTON_CUDA_INVALID_ARG;
  }
  *out = nullptr;
  ScopedContext ctx;
  if (ctx.status != PHOTON_CUDA_OK)
    return ctx.status;
  return check(gDriver.cuStreamCreate(out, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
}

photon_cuda_status photon_cuda_stream_sync(photon_cuda_stream s) {
  ScopedContext ctx;
  if (ctx.status != PHOTON_CUDA_OK)
    return ctx.status;
  return check(gDriver.cuStreamSynchronize(s), "cuStreamSynchronize");
}

void photon_cuda_stream_destroy(photon_cuda_stream s) {
  if (!s || loadDriver() != PHOTON_CUDA_OK)
    return;
  check(gDriver.cuStreamDestroy(s), "cuStreamDestroy");
}

photon_cuda_status photon_cuda_alloc(size_t bytes, photon_cuda_devptr *out) {
  if (!out || bytes == 0) {
    setError("photon_cuda_alloc: null result pointer or zero size");
    return PHOTON_CUDA_INVALID_ARG;
  }
  *out = 0;
  ScopedContext ctx;
  if (ctx.status != PHOTON_CUDA_OK)
    return ctx.status;
  CUdeviceptr p = 0;
  CUresult r = gDriver.cuMemAlloc(&p, bytes);
  if (r != CUDA_SUCCESS) {
    setError("cuMemAlloc of %zu bytes failed: %s", bytes, resultText(r).c_str());
    return PHOTON_CUDA_DRIVER_ERROR;
  }
  *out = p;
  return PHOTON_CUDA_OK;
}

void photon_cuda_free(photon_cuda_devptr p) {
  if (!p)
    return;
  ScopedContext ctx;
  if (ctx.status == PHOTON_CUDA_OK)
    check(gDriver.cuMemFree(p), "cuMemFree");
}

photon_cuda_status photon_cuda_memcpy_htod(photon_cuda_devptr dst, const void *src, size_t bytes,
                                           photon_cuda_stream s) {
  if ((!dst || !src) && bytes) {
    setError("photon_cuda_memcpy_htod: null pointer");
    return PHOTON_CUDA_INVALID_ARG;
  }
  ScopedContext ctx;
  if (ctx.status != PHOTON_CUDA_OK)
    return ctx.status;
  photon_cuda_status st = check(gDriver.cuMemcpyHtoDAsync(dst, src, bytes, s), "cuMemcpyHtoD");
  if (st == PHOTON_CUDA_OK && !s)
    st = check(gDriver.cuStreamSynchronize(nullptr), "cuStreamSynchronize");
  return st;
}

photon_cuda_status photon_cuda_memcpy_dtoh(void *dst, photon_cuda_devptr src, size_t bytes,
                                           photon_cuda_stream s) {
  if ((!dst || !src) && bytes) {
    setError("photon_cuda_memcpy_dtoh: null pointer");
    return PHOTON_CUDA_INVALID_ARG;
  }
  ScopedContext ctx;
  if (ctx.status != PHOTON_CUDA_OK)
    return ctx.status;
  photon_cuda_status st = check(gDriver.cuMemcpyDtoHAsync(dst, src, bytes, s), "cuMemcpyDtoH");
  if (st == PHOTON_CUDA_OK && !s)
    st = check(gDriver.cuStreamSynchronize(nullptr), "cuStreamSynchronize");
  return st;
}

photon_cuda_status photon_cuda_memcpy_dtod(photon_cuda_devptr dst, photon_cuda_devptr src,
                                           size_t bytes, photon_cuda_stream s) {
  if ((!dst || !src) && bytes) {
    setError("photon_cuda_memcpy_dtod: null pointer");
    return PHOTON_CUDA_INVALID_ARG;
  }
  ScopedContext ctx;
  if (ctx.status != PHOTON_CUDA_OK)
    return ctx.status;
  photon_cuda_status st = check(gDriver.cuMemcpyAsync(dst, src, bytes, s), "cuMemcpy");
  if (st == PHOTON_CUDA_OK && !s)
    st = check(gDriver.cuStreamSynchronize(nullptr), "cuStreamSynchronize");
  return st;
}

photon_cuda_status photon_cuda_memset32(photon_cuda_devptr dst, uint32_t value, size_t count,
                                        photon_cuda_stream s) {
  if (!dst && count) {
    setError("photon_cuda_memset32: null pointer");
    return PHOTON_CUDA_INVALID_ARG;
  }
  ScopedContext ctx;
  if (ctx.status != PHOTON_CUDA_OK)
    return ctx.status;
  return check(gDriver.cuMemsetD32Async(dst, value, count, s), "cuMemsetD32");
}

photon_cuda_status photon_cuda_host_alloc(size_t bytes, void **out) {
  if (!out || bytes == 0) {
    setError("photon_cuda_host_alloc: null result pointer or zero size");
    return PHOTON_CUDA_INVALID_ARG;
  }
  *out = nullptr;
  ScopedContext ctx;
  if (ctx.status != PHOTON_CUDA_OK)
    return ctx.status;
  // Flags 0: page-locked, usable by copies on any stream of this context.
  CUresult r = gDriver.cuMemHostAlloc(out, bytes, 0);
  if (r != CUDA_SUCCESS) {
    setError("cuMemHostAlloc of %zu bytes failed: %s", bytes, resultText(r).c_str());
    *out = nullptr;
    return PHOTON_CUDA_DRIVER_ERROR;
  }
  return PHOTON_CUDA_OK;
}

void photon_cuda_host_free(void *p) {
  if (!p)
    return;
  ScopedContext ctx;
  if (ctx.status == PHOTON_CUDA_OK)
    check(gDriver.cuMemFreeHost(p), "cuMemFreeHost");
}

photon_cuda_status photon_cuda_mem_info(uint64_t *free_bytes, uint64_t *total_bytes) {
  if (!free_bytes || !total_bytes) {
    setError("photon_cuda_mem_info: null result pointer");
    return PHOTON_CUDA_INVALID_ARG;
  }
  *free_bytes = *total_bytes = 0;
  ScopedContext ctx;
  if (ctx.status != PHOTON_CUDA_OK)
    return ctx.status;
  size_t f = 0, t = 0;
  photon_cuda_status st = check(gDriver.cuMemGetInfo(&f, &t), "cuMemGetInfo");
  *free_bytes = f;
  *total_bytes = t;
  return st;
}

photon_cuda_status photon_cuda_event_create(photon_cuda_event *out) {
  if (!out) {
    setError("photon_cuda_event_create: null result pointer");
    return PHOTON_CUDA_INVALID_ARG;
  }
  *out = nullptr;
  ScopedContext ctx;
  if (ctx.status != PHOTON_CUDA_OK)
    return ctx.status;
  CUevent e = nullptr;
  photon_cuda_status st =
      check(gDriver.cuEventCreate(&e, CU_EVENT_DISABLE_TIMING), "cuEventCreate");
  *out = e;
  return st;
}

photon_cuda_status photon_cuda_event_record(photon_cuda_event e, photon_cuda_stream s) {
  if (!e) {
    setError("photon_cuda_event_record: null event");
    return PHOTON_CUDA_INVALID_ARG;
  }
  ScopedContext ctx;
  if (ctx.status != PHOTON_CUDA_OK)
    return ctx.status;
  return check(gDriver.cuEventRecord(e, s), "cuEventRecord");
}

photon_cuda_status photon_cuda_event_sync(photon_cuda_event e) {
  if (!e) {
    setError("photon_cuda_event_sync: null event");
    return PHOTON_CUDA_INVALID_ARG;
  }
  ScopedContext ctx;
  if (ctx.status != PHOTON_CUDA_OK)
    return ctx.status;
  return check(gDriver.cuEventSynchronize(e), "cuEventSynchronize");
}

void photon_cuda_event_destroy(photon_cuda_event e) {
  if (!e)
    return;
  ScopedContext ctx;
  if (ctx.status == PHOTON_CUDA_OK)
    check(gDriver.cuEventDestroy(e), "cuEventDestroy");
}

//===----------------------------------------------------------------------===//
// The host functions MLIR 22's gpu-to-llvm lowering calls (signatures as emitted by
// MLIR 22: see runtime/include/photon/cuda_mgpu.h).
//===----------------------------------------------------------------------===//

void *mgpuModuleLoad(void *data, size_t /*gpuBlobSize*/) {
  photon_cuda_module *m = nullptr;
  report(photon_cuda_module_load(data, &m), "mgpuModuleLoad");
  if (!m)
    return nullptr;
  CUmodule mod = m->module;
  delete m;
  return mod;
}

void mgpuModuleUnload(void *module) {
  if (!module)
    return;
  ScopedContext ctx;
  if (ctx.status == PHOTON_CUDA_OK)
    report(check(gDriver.cuModuleUnload(module), "cuModuleUnload"), "mgpuModuleUnload");
}

void *mgpuModuleGetFunction(void *module, const char *name) {
  if (!module) {
    setError("kernel '%s' requested from a module that failed to load", name ? name : "?");
    report(PHOTON_CUDA_INVALID_ARG, "mgpuModuleGetFunction");
    return nullptr;
  }
  photon_cuda_module m{module};
  photon_cuda_function f = nullptr;
  report(photon_cuda_module_function(&m, name, &f), "mgpuModuleGetFunction");
  return f;
}

void mgpuLaunchKernel(void *function, intptr_t gridX, intptr_t gridY, intptr_t gridZ,
                      intptr_t blockX, intptr_t blockY, intptr_t blockZ, int32_t smem,
                      void *stream, void **params, void **extra, size_t /*paramsCount*/) {
  if (!function) {
    setError("launch of a kernel that was not found");
    report(PHOTON_CUDA_INVALID_ARG, "mgpuLaunchKernel");
    return;
  }
  ScopedContext ctx;
  if (ctx.status != PHOTON_CUDA_OK) {
    report(ctx.status, "mgpuLaunchKernel");
    return;
  }
  report(check(gDriver.cuLaunchKernel(function, (unsigned)gridX, (unsigned)gridY,
                                      (unsigned)gridZ, (unsigned)blockX, (unsigned)blockY,
                                      (unsigned)blockZ, (unsigned)smem, stream, params, extra),
               "cuLaunchKernel"),
         "mgpuLaunchKernel");
}

void *mgpuStreamCreate(void) {
  photon_cuda_stream s = nullptr;
  report(photon_cuda_stream_create(&s), "mgpuStreamCreate");
  return s;
}

void mgpuStreamDestroy(void *stream) { photon_cuda_stream_destroy(stream); }

void mgpuStreamSynchronize(void *stream) {
  report(photon_cuda_stream_sync(stream), "mgpuStreamSynchronize");
}

void mgpuStreamWaitEvent(void *stream, void *event) {
  ScopedContext ctx;
  if (ctx.status == PHOTON_CUDA_OK)
    report(check(gDriver.cuStreamWaitEvent(stream, event, 0), "cuStreamWaitEvent"),
           "mgpuStreamWaitEvent");
}

void *mgpuEventCreate(void) {
  ScopedContext ctx;
  CUevent e = nullptr;
  if (ctx.status == PHOTON_CUDA_OK)
    report(check(gDriver.cuEventCreate(&e, CU_EVENT_DISABLE_TIMING), "cuEventCreate"),
           "mgpuEventCreate");
  else
    report(ctx.status, "mgpuEventCreate");
  return e;
}

void mgpuEventDestroy(void *event) {
  if (event && loadDriver() == PHOTON_CUDA_OK)
    report(check(gDriver.cuEventDestroy(event), "cuEventDestroy"), "mgpuEventDestroy");
}

void mgpuEventSynchronize(void *event) {
  if (loadDriver() == PHOTON_CUDA_OK)
    report(check(gDriver.cuEventSynchronize(event), "cuEventSynchronize"),
           "mgpuEventSynchronize");
}

void mgpuEventRecord(void *event, void *stream) {
  if (loadDriver() == PHOTON_CUDA_OK)
    report(check(gDriver.cuEventRecord(event, stream), "cuEventRecord"), "mgpuEventRecord");
}

void *mgpuMemAlloc(uint64_t sizeBytes, void * /*stream*/, bool isHostShared) {
  if (sizeBytes == 0)
    return nullptr;
  ScopedContext ctx;
  if (ctx.status != PHOTON_CUDA_OK) {
    report(ctx.status, "mgpuMemAlloc");
    return nullptr;
  }
  CUdeviceptr p = 0;
  constexpr unsigned CU_MEM_ATTACH_GLOBAL = 1;
  CUresult r = isHostShared ? gDriver.cuMemAllocManaged(&p, sizeBytes, CU_MEM_ATTACH_GLOBAL)
                            : gDriver.cuMemAlloc(&p, sizeBytes);
  report(check(r, "cuMemAlloc"), "mgpuMemAlloc");
  return reinterpret_cast<void *>(p);
}

void mgpuMemFree(void *ptr, void * /*stream*/) {
  photon_cuda_free(reinterpret_cast<photon_cuda_devptr>(ptr));
}

void mgpuMemcpy(void *dst, void *src, size_t sizeBytes, void *stream) {
  ScopedContext ctx;
  if (ctx.status != PHOTON_CUDA_OK) {
    report(ctx.status, "mgpuMemcpy");
    return;
  }
  report(check(gDriver.cuMemcpyAsync(reinterpret_cast<CUdeviceptr>(dst),
                                     reinterpret_cast<CUdeviceptr>(src), sizeBytes, stream),
               "cuMemcpyAsync"),
         "mgpuMemcpy");
}

void mgpuMemset32(void *dst, unsigned int value, size_t count, void *stream) {
  report(photon_cuda_memset32(reinterpret_cast<photon_cuda_devptr>(dst), value, count, stream),
         "mgpuMemset32");
}

void mgpuMemset16(void *dst, unsigned short value, size_t count, void *stream) {
  ScopedContext ctx;
  if (ctx.status != PHOTON_CUDA_OK) {
    report(ctx.status, "mgpuMemset16");
    return;
  }
  report(check(gDriver.cuMemsetD16Async(reinterpret_cast<CUdeviceptr>(dst), value, count,
                                        stream),
               "cuMemsetD16Async"),
         "mgpuMemset16");
}

void mgpuSetDefaultDevice(int32_t device) { tDevice = device; }

} // extern "C"
