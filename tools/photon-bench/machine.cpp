// The machine's limits, measured in-process: STREAM-like read bandwidth and peak FP32 FLOP/s
// (an FMA loop of the widest vectors the CPU has: AVX-512 where present, else AVX2), each with
// 1 and 2 threads; and the CPU time other processes use meanwhile.
#include "machine.h"

#include <immintrin.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace bench {

static double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

bool cpuHasAvx2Fma() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

// Sum of n floats with 4 independent AVX accumulators: every byte is read once, nothing written.
__attribute__((target("avx2,fma"))) static float readSumAvx2(const float *p, size_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
  alignas(32) float t[8];
  _mm256_store_ps(t, s);
  float r = 0;
  for (float v : t) r += v;
  for (; i < n; ++i) r += p[i];
  return r;
}

static float readSumScalar(const float *p, size_t n) {
  float r = 0;
  for (size_t i = 0; i < n; ++i) r += p[i];
  return r;
}

double measureReadBandwidth(size_t bytes, int threads, int reps) {
  size_t n = bytes / sizeof(float);
  n -= n % 64;
  float *buf = static_cast<float *>(std::aligned_alloc(64, n * sizeof(float)));
  if (!buf) return 0;
  // First touch by the threads that will read (one half each with 2 threads).
  for (size_t i = 0; i < n; ++i) buf[i] = static_cast<float>(i & 7) * 0.125f;
  const bool avx = cpuHasAvx2Fma();
  std::atomic<float> sink{0};
  double best = 0;
  for (int r = 0; r < reps + 1; ++r) {  // the first pass warms up
    double t0 = now();
    std::vector<std::thread> ts;
    size_t per = n / threads;
    per -= per % 64;
    for (int t = 0; t < threads; ++t) {
      size_t begin = t * per, len = (t == threads - 1) ? n - begin : per;
      ts.emplace_back([&, begin, len] {
        float s = avx ? readSumAvx2(buf + begin, len) : readSumScalar(buf + begin, len);
        float cur = sink.load();
        while (!sink.compare_exchange_weak(cur, cur + s)) {
        }
      });
    }
    for (auto &t : ts) t.join();
    double dt = now() - t0;
    if (r > 0) best = std::max(best, n * sizeof(float) / dt / 1e9);
  }
  std::free(buf);
  if (sink.load() == 12345.0f) std::fputs("", stderr);  // keep the sums alive
  return best;
}

// 10 independent FMA chains of 8 lanes: 160 FLOP per iteration, enough chains to hide the
// 4-5 cycle FMA latency on 2 FMA pipes.
__attribute__((target("avx2,fma"))) static float fmaLoop(long iters) {
  __m256 a[10];
  for (int k = 0; k < 10; ++k) a[k] = _mm256_set1_ps(1.0f + k * 1e-3f);
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (long i = 0; i < iters; ++i) {
    for (int k = 0; k < 10; ++k) a[k] = _mm256_fmadd_ps(a[k], m, c);
  }
  __m256 s = a[0];
  for (int k = 1; k < 10; ++k) s = _mm256_add_ps(s, a[k]);
  alignas(32) float t[8];
  _mm256_store_ps(t, s);
  return t[0] + t[7];
}

bool cpuHasAvx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f");
}

// The same 10 chains on 16 lanes: 320 FLOP per iteration. A CPU with 512-bit FMA units (Zen 5,
// Xeon) doubles the AVX2 loop's rate; one that splits them (Zen 4) does not.
__attribute__((target("avx512f"))) static float fmaLoop512(long iters) {
  __m512 a[10];
  for (int k = 0; k < 10; ++k) a[k] = _mm512_set1_ps(1.0f + k * 1e-3f);
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  for (long i = 0; i < iters; ++i) {
#pragma GCC unroll 10
    for (int k = 0; k < 10; ++k) a[k] = _mm512_fmadd_ps(a[k], m, c);
  }
  __m512 s = a[0];
  for (int k = 1; k < 10; ++k) s = _mm512_add_ps(s, a[k]);
  return _mm512_reduce_add_ps(s);
}

static double peakOf(float (*loop)(long), double flopPerIter, double seconds, int threads) {
  // Calibrate iterations for about `seconds` per thread.
  long iters = 1 << 20;
  double t0 = now();
  volatile float sink = loop(iters);
  double dt = now() - t0;
  iters = std::max<long>(1 << 20, static_cast<long>(iters * seconds / std::max(dt, 1e-6)));
  double best = 0;
  for (int r = 0; r < 3; ++r) {
    std::vector<std::thread> ts;
    t0 = now();
    for (int t = 0; t < threads; ++t)
      ts.emplace_back([&] { sink = sink + loop(iters); });
    for (auto &t : ts) t.join();
    dt = now() - t0;
    best = std::max(best, flopPerIter * iters * threads / dt);
  }
  (void)sink;
  return best;
}

double measurePeakFlops(double seconds, int threads) {
  if (!cpuHasAvx2Fma()) return 0;
  double best = peakOf(fmaLoop, 160.0, seconds, threads);
  if (cpuHasAvx512()) best = std::max(best, peakOf(fmaLoop512, 320.0, seconds, threads));
  return best;
}

// ---------------------------------------------------------------- CPU accounting ----------

bool readProcStat(CpuSample &s) {
  std::ifstream f("/proc/stat");
  std::string line;
  if (!f || !std::getline(f, line) || line.compare(0, 4, "cpu ") != 0) return false;
  std::istringstream is(line.substr(4));
  unsigned long long v[10] = {0};
  for (int i = 0; i < 10 && (is >> v[i]); ++i) {
  }
  // user nice system idle iowait irq softirq steal guest guest_nice
  unsigned long long idle = v[3] + v[4];
  unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
  s.busyTicks = busy;
  s.totalTicks = busy + idle;
  s.time = now();
  return true;
}

double ticksPerSecond() { return static_cast<double>(sysconf(_SC_CLK_TCK)); }

int onlineCpus() { return static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)); }

}  // namespace bench
