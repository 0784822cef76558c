// photon-cuda-bandwidth: the GPU's device-memory bandwidth, measured with device-to-device
// copies through the runtime's CUDA backend (photon/cuda.h). scripts/gpu-check.sh prints it
// next to the decode figures so that each can be read as a fraction of the roofline.
//
//   photon-cuda-bandwidth [--bytes N] [--repeats R] [--device I]
//
// Prints one JSON object. A copy of N bytes reads N and writes N bytes, so the figure is
// 2 N / time; the median of R timed copies after one warm-up copy. Exits 77 (the
// conventional "skipped") with the driver's reason when there is no usable GPU.
#include "photon/cuda.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

static int usage(const char *argv0, int rc) {
  std::fprintf(rc ? stderr : stdout,
               "usage: %s [--bytes N] [--repeats R] [--device I]\n"
               "  Measures device-memory bandwidth with device-to-device copies of N bytes\n"
               "  (default 1 GiB), median of R (default 20) timed copies; prints JSON.\n"
               "  Exit 77 when no GPU is usable (the reason is printed).\n",
               argv0);
  return rc;
}

static bool parseCount(const char *s, unsigned long long &out) {
  char *end = nullptr;
  errno = 0;
  out = std::strtoull(s, &end, 10);
  return errno == 0 && end && *end == '\0' && s[0] != '-' && out > 0;
}

int main(int argc, char **argv) {
  unsigned long long bytes = 1ull << 30, repeats = 20, device = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") return usage(argv[0], 0);
    unsigned long long *dst = a == "--bytes" ? &bytes : a == "--repeats" ? &repeats
                              : a == "--device" ? &device : nullptr;
    if (!dst || i + 1 >= argc) return usage(argv[0], 2);
    if (!parseCount(argv[++i], *dst) && !(dst == &device && std::strcmp(argv[i], "0") == 0)) {
      std::fprintf(stderr, "photon-cuda-bandwidth: error: %s needs a positive integer, got '%s'\n",
                   a.c_str(), argv[i]);
      return 2;
    }
    if (dst == &device && std::strcmp(argv[i], "0") == 0) device = 0;
  }
  if (photon_cuda_init(static_cast<int>(device)) != PHOTON_CUDA_OK) {
    std::printf("{\"skipped\": \"%s\"}\n", photon_cuda_last_error());
    return 77;
  }
  photon_cuda_device_info info{};
  photon_cuda_device_query(static_cast<int>(device), &info);
  bytes &= ~0xFFull; // whole 256-byte lines
  photon_cuda_devptr a = 0, b = 0;
  if (photon_cuda_alloc(bytes, &a) != PHOTON_CUDA_OK ||
      photon_cuda_alloc(bytes, &b) != PHOTON_CUDA_OK) {
    std::fprintf(stderr, "photon-cuda-bandwidth: error: cannot allocate 2 x %llu bytes: %s\n",
                 bytes, photon_cuda_last_error());
    return 1;
  }
  photon_cuda_memset32(a, 0x3f800000u, bytes / 4, nullptr);
  photon_cuda_memcpy_dtod(b, a, bytes, nullptr); // warm-up
  std::vector<double> gbps;
  for (unsigned long long r = 0; r < repeats; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    if (photon_cuda_memcpy_dtod(b, a, bytes, nullptr) != PHOTON_CUDA_OK) {
      std::fprintf(stderr, "photon-cuda-bandwidth: error: copy failed: %s\n",
                   photon_cuda_last_error());
      return 1;
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    gbps.push_back(2.0 * static_cast<double>(bytes) / s / 1e9);
  }
  // The copy must have copied: read back the first and last words.
  uint32_t first = 0, last = 0;
  photon_cuda_memcpy_dtoh(&first, b, 4, nullptr);
  photon_cuda_memcpy_dtoh(&last, b + bytes - 4, 4, nullptr);
  photon_cuda_free(a);
  photon_cuda_free(b);
  if (first != 0x3f800000u || last != 0x3f800000u) {
    std::fprintf(stderr, "photon-cuda-bandwidth: error: the copy did not copy (read back %08x %08x)\n",
                 first, last);
    return 1;
  }
  std::vector<double> sorted = gbps;
  std::sort(sorted.begin(), sorted.end());
  double median = sorted[sorted.size() / 2];
  std::printf("{\"device\": \"%s\", \"arch\": \"sm_%d%d\", \"total_bytes\": %llu, "
              "\"copy_bytes\": %llu, \"repeats\": %llu, \"bandwidth_gbps_median\": %.1f, "
              "\"bandwidth_gbps_min\": %.1f, \"bandwidth_gbps_max\": %.1f}\n",
              info.name, info.cc_major, info.cc_minor,
              static_cast<unsigned long long>(info.total_bytes), bytes, repeats, median,
              sorted.front(), sorted.back());
  return 0;
}
