// Times photon's matmul kernels (y = x * W^T, W in the weights blob's [N, K] layout) against
// OpenBLAS sgemm on the same shapes, interleaved round-robin in one process, and checks
// that both agree. Not part of ctest; see README.md beside this file.
//
//   gemm_bench KERNELS.so M NxK [NxK ...] [--rounds R] [--blas libopenblas.so.0]
//              [--baseline OTHER_KERNELS.so]
// --baseline: a second kernel library (e.g. built before a change), timed in the same
// round-robin and printed as its own column.
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

int main(int argc, char **argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: gemm_bench KERNELS.so M NxK [NxK ...] [--rounds R] [--blas LIB] "
                         "[--baseline KERNELS.so]\n");
    return 2;
  }
  const char *soPath = argv[1];
  int64_t M = std::atoll(argv[2]);
  int rounds = 5;
  std::string blasLib = "libopenblas.so.0";
  const char *basePath = nullptr;
  std::vector<std::pair<int64_t, int64_t>> shapes;
  for (int i = 3; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--blas") && i + 1 < argc) blasLib = argv[++i];
    else if (!std::strcmp(argv[i], "--baseline") && i + 1 < argc) basePath = argv[++i];
    else {
      int64_t n, k;
      if (std::sscanf(argv[i], "%ldx%ld", &n, &k) != 2) return std::fprintf(stderr, "bad shape %s\n", argv[i]), 2;
      shapes.push_back({n, k});
    }
  }
  void *so = dlopen(soPath, RTLD_NOW);
  if (!so) return std::fprintf(stderr, "%s\n", dlerror()), 1;
  void *base = nullptr;
  if (basePath && !(base = dlopen(basePath, RTLD_NOW | RTLD_LOCAL)))
    return std::fprintf(stderr, "%s\n", dlerror()), 1;
  void *blas = dlopen(blasLib.c_str(), RTLD_NOW);
  if (!blas) return std::fprintf(stderr, "%s\n", dlerror()), 1;
  auto sgemm = reinterpret_cast<SgemmFn>(dlsym(blas, "cblas_sgemm"));
  auto setThreads = reinterpret_cast<void (*)(int)>(dlsym(blas, "openblas_set_num_threads"));
  if (!sgemm) return std::fprintf(stderr, "no cblas_sgemm in %s\n", blasLib.c_str()), 1;
  int threads = 1;
  if (const char *t = std::getenv("OMP_NUM_THREADS")) threads = std::atoi(t);
  if (setThreads) setThreads(threads);
  std::printf("M %ld, threads %d (OMP_NUM_THREADS; OpenBLAS set to the same), %d rounds, medians\n",
              M, threads, rounds);
  std::printf("%-10s %10s %10s %8s %10s%s\n", "NxK", "photon", "openblas", "ratio", "max rel err",
              base ? "   baseline" : "");
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1, 1);
  for (auto [N, K] : shapes) {
    std::string sym = "_mlir_ciface_mm_" + std::to_string(N) + "x" + std::to_string(K);
    auto fn = reinterpret_cast<KernelFn>(dlsym(so, sym.c_str()));
    if (!fn) return std::fprintf(stderr, "no %s in %s\n", sym.c_str(), soPath), 1;
    KernelFn baseFn = base ? reinterpret_cast<KernelFn>(dlsym(base, sym.c_str())) : nullptr;
    if (base && !baseFn) return std::fprintf(stderr, "no %s in %s\n", sym.c_str(), basePath), 1;
    std::vector<float> x(M * K), w(N * K), y1(M * N), y2(M * N);
    for (auto &v : x) v = u(rng);
    for (auto &v : w) v = u(rng);
    Memref2D mx = view(x.data(), M, K), mw = view(w.data(), N, K), my = view(y1.data(), M, N);
    std::vector<double> tp, tb, tq;
    std::vector<float> y3(baseFn ? M * N : 0);
    Memref2D my3 = view(y3.data(), M, N);
    for (int r = 0; r < rounds + 1; ++r) {
      std::fill(y1.begin(), y1.end(), 0.f);
      double t0 = now();
      fn(&mx, &mw, &my);
      double t1 = now();
      sgemm(kRowMajor, kNoTrans, kTrans, M, N, K, 1.f, x.data(), K, w.data(), K, 0.f, y2.data(), N);
      double t2 = now();
      if (r > 0) tp.push_back(t1 - t0), tb.push_back(t2 - t1); // round 0 warms up
      if (baseFn) {
        std::fill(y3.begin(), y3.end(), 0.f);
        double t3 = now();
        baseFn(&mx, &mw, &my3);
        if (r > 0) tq.push_back(now() - t3);
      }
    }
    double err = 0, ref = 0;
    for (int64_t i = 0; i < M * N; ++i) {
      err = std::max(err, double(std::fabs(y1[i] - y2[i])));
      ref = std::max(ref, double(std::fabs(y2[i])));
    }
    std::nth_element(tp.begin(), tp.begin() + tp.size() / 2, tp.end());
    std::nth_element(tb.begin(), tb.begin() + tb.size() / 2, tb.end());
    double flop = 2.0 * M * N * K;
    double gp = flop / tp[tp.size() / 2] / 1e9, gb = flop / tb[tb.size() / 2] / 1e9;
    std::printf("%4ldx%-5ld %7.1f GF %7.1f GF %7.0f%% %10.1e", N, K, gp, gb, 100 * gp / gb, err / ref);
    if (baseFn) {
      std::nth_element(tq.begin(), tq.begin() + tq.size() / 2, tq.end());
      std::printf(" %7.1f GF", flop / tq[tq.size() / 2] / 1e9);
    }
    std::printf("\n");
  }
  return 0;
}
