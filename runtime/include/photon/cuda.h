/* photon CUDA backend: the driver API loaded at run time with dlopen("libcuda.so.1").
 *
 * Nothing here needs the CUDA toolkit to build or to run: without a driver every call
 * returns PHOTON_CUDA_NO_DRIVER and photon_cuda_last_error() says why, e.g.
 *   "no CUDA driver (libcuda.so.1 not found: ...)".
 * PHOTON_CUDA_DRIVER=<path> in the environment loads another driver library instead
 * (a test hook; the toolkit's stubs/libcuda.so exercises the error path).
 *
 * The same library also exports the mgpu* host functions that MLIR's GPU lowering
 * (gpu-to-llvm, MLIR 22) calls from compiled host code: mgpuModuleLoad(data, size),
 * mgpuModuleUnload, mgpuModuleGetFunction, mgpuLaunchKernel(..., params, extra,
 * paramsCount), mgpuStreamCreate/Synchronize/Destroy/WaitEvent, mgpuEvent*,
 * mgpuMemAlloc(bytes, stream, isHostShared), mgpuMemFree, mgpuMemcpy, mgpuMemset16/32,
 * mgpuSetDefaultDevice. They report driver errors on stderr (they have no status return
 * in MLIR's ABI) and keep the first error for photon_cuda_last_error(). */
#ifndef PHOTON_CUDA_H
#define PHOTON_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum photon_cuda_status {
  PHOTON_CUDA_OK = 0,
  PHOTON_CUDA_NO_DRIVER = 1,    /* libcuda.so.1 missing, or a stub, or too old */
  PHOTON_CUDA_NO_DEVICE = 2,    /* driver present, no device with that ordinal */
  PHOTON_CUDA_WRONG_ARCH = 3,   /* module built for other architectures */
  PHOTON_CUDA_INVALID_ARG = 4,  /* null pointer, bad size, ... */
  PHOTON_CUDA_DRIVER_ERROR = 5, /* a driver call failed; see photon_cuda_last_error() */
} photon_cuda_status;

typedef struct photon_cuda_module photon_cuda_module; /* a loaded CUmodule */
typedef void *photon_cuda_function;                    /* a CUfunction */
typedef void *photon_cuda_stream;                      /* a CUstream; NULL = default */
typedef uint64_t photon_cuda_devptr;                   /* a CUdeviceptr */
typedef void *photon_cuda_event;                       /* a CUevent (timing disabled) */

typedef struct photon_cuda_device_info {
  char name[256];
  int ordinal;
  int cc_major, cc_minor; /* compute capability: sm_<major><minor> */
  int multiprocessors;
  uint64_t total_bytes;
  int driver_version; /* e.g. 13000 for CUDA 13.0 */
} photon_cuda_device_info;

/* Loads the driver and makes the primary context of device `ordinal` current to every
 * later call on this thread. Safe to call repeatedly; the driver is opened once. */
photon_cuda_status photon_cuda_init(int ordinal);
/* Text of the last failure on any thread ("" if none). */
const char *photon_cuda_last_error(void);
/* Number of devices (0 without a driver). */
int photon_cuda_device_count(void);
photon_cuda_status photon_cuda_device_query(int ordinal, photon_cuda_device_info *info);

/* Refuses a device whose architecture is not in `archs` (e.g. {"sm_80", "sm_90"}), with a
 * message naming the device's architecture and the flag that builds for it
 * ("recompile with photon-compile --target cuda:sm_86"). */
photon_cuda_status photon_cuda_check_arch(int ordinal, const char *const *archs, size_t count);

/* Modules: `image` is a fatbin, cubin or PTX image as cuModuleLoadData accepts it. */
photon_cuda_status photon_cuda_module_load(const void *image, photon_cuda_module **out);
photon_cuda_status photon_cuda_module_function(photon_cuda_module *m, const char *name,
                                               photon_cuda_function *out);
void photon_cuda_module_unload(photon_cuda_module *m);
photon_cuda_status photon_cuda_launch(photon_cuda_function f, const uint32_t grid[3],
                                      const uint32_t block[3], uint32_t shared_bytes,
                                      photon_cuda_stream stream, void **params);

/* Streams. */
photon_cuda_status photon_cuda_stream_create(photon_cuda_stream *out);
photon_cuda_status photon_cuda_stream_sync(photon_cuda_stream s);
void photon_cuda_stream_destroy(photon_cuda_stream s);

/* Device memory for weights, KV-cache pools and activations. */
photon_cuda_status photon_cuda_alloc(size_t bytes, photon_cuda_devptr *out);
void photon_cuda_free(photon_cuda_devptr p);
photon_cuda_status photon_cuda_memcpy_htod(photon_cuda_devptr dst, const void *src, size_t bytes,
                                           photon_cuda_stream s);
photon_cuda_status photon_cuda_memcpy_dtoh(void *dst, photon_cuda_devptr src, size_t bytes,
                                           photon_cuda_stream s);
/* Device to device (unified addressing); with a NULL stream it returns when done. */
photon_cuda_status photon_cuda_memcpy_dtod(photon_cuda_devptr dst, photon_cuda_devptr src,
                                           size_t bytes, photon_cuda_stream s);
photon_cuda_status photon_cuda_memset32(photon_cuda_devptr dst, uint32_t value, size_t count,
                                        photon_cuda_stream s);

/* Page-locked host memory (staging buffers of uploads: cuMemHostAlloc / cuMemFreeHost). */
photon_cuda_status photon_cuda_host_alloc(size_t bytes, void **out);
void photon_cuda_host_free(void *p);
/* Free and total device memory of the current device (cuMemGetInfo), in bytes. */
photon_cuda_status photon_cuda_mem_info(uint64_t *free_bytes, uint64_t *total_bytes);

/* Events: record after work on a stream, wait for it from the host. */
photon_cuda_status photon_cuda_event_create(photon_cuda_event *out);
photon_cuda_status photon_cuda_event_record(photon_cuda_event e, photon_cuda_stream s);
photon_cuda_status photon_cuda_event_sync(photon_cuda_event e);
void photon_cuda_event_destroy(photon_cuda_event e);

#ifdef __cplusplus
}
#endif

#endif /* PHOTON_CUDA_H */
