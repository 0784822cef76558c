// Decode-regime matmul bench: y = x * W^T with few rows of x (M = 1 for batch-1 decode)
// and weights that come from DRAM, not from the caches. For every shape it allocates as
// many copies of W as fill --mib MiB (default 512, far beyond the L3) and calls the kernel
// on each copy in turn, like a decode step walking through the layers. Photon's kernel
// libraries (one or more, each built with other photon-matmul-kernels options) and
// OpenBLAS (sgemv for M = 1, sgemm otherwise) run interleaved round-robin in one process;
// the medians of --rounds are printed as GB/s of weights read, with each library's ratio
// to OpenBLAS and to the first photon library. Not part of ctest; see README.md beside
// this file.
//
//   gemv_bench M NxK [NxK ...] --so LABEL=KERNELS.so [--so ...] [--rounds R] [--mib N]
#include "bench_common.h"

#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

static double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

int main(int argc, char **argv) {
  int64_t M = argc > 1 ? std::atoll(argv[1]) : 0;
  int rounds = 7;
  int64_t mib = 512;
  std::string blasLib = "libopenblas.so.0";
  std::vector<std::pair<std::string, std::string>> libs;
  std::vector<std::pair<int64_t, int64_t>> shapes;
  for (int i = 2; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--mib") && i + 1 < argc) mib = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--blas") && i + 1 < argc) blasLib = argv[++i];
    else if (!std::strcmp(argv[i], "--so") && i + 1 < argc) {
      std::string s = argv[++i];
      size_t eq = s.find('=');
      if (eq == std::string::npos) return std::fprintf(stderr, "--so wants LABEL=PATH, got %s\n", s.c_str()), 2;
      libs.push_back({s.substr(0, eq), s.substr(eq + 1)});
    } else {
      int64_t n, k;
      if (std::sscanf(argv[i], "%ldx%ld", &n, &k) != 2) return std::fprintf(stderr, "bad shape %s\n", argv[i]), 2;
      shapes.push_back({n, k});
    }
  }
  if (M <= 0 || shapes.empty() || libs.empty()) {
    std::fprintf(stderr, "usage: gemv_bench M NxK [NxK ...] --so LABEL=KERNELS.so [--so ...] "
                         "[--rounds R] [--mib N] [--blas LIB]\n");
    return 2;
  }
  std::vector<void *> handles;
  for (auto &[label, path] : libs) {
    void *so = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!so) return std::fprintf(stderr, "%s\n", dlerror()), 1;
    handles.push_back(so);
  }
  void *blas = dlopen(blasLib.c_str(), RTLD_NOW);
  if (!blas) return std::fprintf(stderr, "%s\n", dlerror()), 1;
  auto sgemm = reinterpret_cast<SgemmFn>(dlsym(blas, "cblas_sgemm"));
  auto sgemv = reinterpret_cast<SgemvFn>(dlsym(blas, "cblas_sgemv"));
  auto setThreads = reinterpret_cast<void (*)(int)>(dlsym(blas, "openblas_set_num_threads"));
  if (!sgemm || !sgemv) return std::fprintf(stderr, "no cblas_sgemm/sgemv in %s\n", blasLib.c_str()), 1;
  int threads = 1;
  if (const char *t = std::getenv("OMP_NUM_THREADS")) threads = std::atoi(t);
  if (setThreads) setThreads(threads);
  std::printf("M %ld, threads %d, weights from DRAM (%ld MiB of copies per shape), %d rounds, "
              "medians, GB/s of weights read\n", M, threads, mib, rounds);
  std::printf("%-10s %8s", "NxK", "openblas");
  for (auto &l : libs) std::printf(" %10s %6s", l.first.c_str(), "/blas");
  std::printf(" %10s\n", "max rel err");
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1, 1);
  for (auto [N, K] : shapes) {
    std::vector<KernelFn> fns;
    for (size_t i = 0; i < libs.size(); ++i) {
      std::string sym = "_mlir_ciface_mm_" + std::to_string(N) + "x" + std::to_string(K);
      auto fn = reinterpret_cast<KernelFn>(dlsym(handles[i], sym.c_str()));
      if (!fn) return std::fprintf(stderr, "no %s in %s\n", sym.c_str(), libs[i].second.c_str()), 1;
      fns.push_back(fn);
    }
    int64_t bytes = N * K * 4;
    int64_t copies = std::max<int64_t>(2, (mib << 20) / bytes);
    std::vector<float> x(M * K), w(copies * N * K), yb(M * N), y(M * N);
    for (auto &v : x) v = u(rng);
    for (int64_t i = 0; i < N * K; ++i) w[i] = u(rng);
    for (int64_t c = 1; c < copies; ++c) std::copy(w.begin(), w.begin() + N * K, w.begin() + c * N * K);
    Memref2D mx = view(x.data(), M, K), my = view(y.data(), M, N);
    std::vector<std::vector<double>> t(libs.size() + 1);
    double err = 0;
    for (int r = 0; r < rounds + 1; ++r) {
      double t0 = now();
      for (int64_t c = 0; c < copies; ++c) {
        const float *wc = w.data() + c * N * K;
        if (M == 1) sgemv(kRowMajor, kNoTrans, N, K, 1.f, wc, K, x.data(), 1, 0.f, yb.data(), 1);
        else sgemm(kRowMajor, kNoTrans, kTrans, M, N, K, 1.f, x.data(), K, wc, K, 0.f, yb.data(), N);
      }
      double t1 = now();
      if (r > 0) t[0].push_back(t1 - t0); // round 0 warms up
      for (size_t i = 0; i < libs.size(); ++i) {
        double s0 = now();
        for (int64_t c = 0; c < copies; ++c) {
          std::fill(y.begin(), y.end(), 0.f);
          Memref2D mw = view(w.data() + c * N * K, N, K);
          fns[i](&mx, &mw, &my);
        }
        double s1 = now();
        if (r > 0) t[i + 1].push_back(s1 - s0);
        double ref = 0, e = 0;
        for (int64_t j = 0; j < M * N; ++j) {
          e = std::max(e, double(std::fabs(y[j] - yb[j])));
          ref = std::max(ref, double(std::fabs(yb[j])));
        }
        err = std::max(err, e / ref);
      }
    }
    double total = double(bytes) * copies;
    double gb = total / median(t[0]) / 1e9;
    std::printf("%4ldx%-5ld %8.1f", N, K, gb);
    for (size_t i = 0; i < libs.size(); ++i) {
      double g = total / median(t[i + 1]) / 1e9;
      std::printf(" %10.1f %5.0f%%", g, 100 * g / gb);
    }
    std::printf(" %10.1e\n", err);
  }
  return 0;
}
