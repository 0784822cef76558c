// Does a decode GEMV on two threads lose bandwidth to OpenMP's fork/join per matmul?
// The same 8-row AVX-512 GEMV micro-kernel (photon's split-K recipe: 8 weight rows, one x
// vector, next block's rows prefetched into L2) over copies of a 1728x640 f32 weight
// (vanilla-mid's gate/up shape) filling 512 MiB, so every weight comes from DRAM, the way a
// decode step walks its layers. Five ways to share each matmul between the threads, timed
// round-robin in one process with a plain two-thread read of the same buffer beside them:
//   fork/call dyn16 pf     one parallel region per matmul, 16 chunks, schedule(dynamic):
//                          what photon's --openmp kernels do today
//   fork/call dyn16 nopf   the same without the software prefetch
//   fork/call halves       one region per matmul, each thread one contiguous half
//   persistent halves      ONE region for all matmuls, halves, a barrier after each
//                          (a persistent worker pool, as llama.cpp's threadpool)
//   persistent dyn16       one region for all matmuls, 16 dynamic chunks per matmul
// Prints GB/s of weights read (median, min, max of --rounds). Not part of ctest.
//
//   clang++ -O2 -march=native -fopenmp benchmarks/gemm/gemv_regions.cpp -o /tmp/gemv_regions
//   OMP_NUM_THREADS=2 /tmp/gemv_regions [--rounds 9]
// (with LLVM 22's clang: /usr/lib/llvm-22/bin/clang++ ... -Wl,-rpath,/usr/lib/llvm-22/lib)
#include "bench_common.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#ifndef __AVX512F__
#error "gemv_regions needs AVX-512F (-march=native on an AVX-512 CPU)"
#endif

static const int N = 1728, K = 640;

// y[n0..n1) = W[n0..n1) x, blocks of 8 rows; prefetch the next block's rows into L2.
static inline void rows8(const float *x, const float *w, float *y, int n0, int n1, bool pf) {
  for (int n = n0; n < n1; n += 8) {
    __m512 a[8];
    for (int i = 0; i < 8; i++) a[i] = _mm512_setzero_ps();
    for (int k = 0; k < K; k += 16) {
      __m512 xv = _mm512_loadu_ps(x + k);
      if (pf && n + 8 < n1)
        for (int i = 0; i < 8; i++)
          _mm_prefetch(reinterpret_cast<const char *>(w + size_t(n + 8 + i) * K + k), _MM_HINT_T1);
      for (int i = 0; i < 8; i++)
        a[i] = _mm512_fmadd_ps(xv, _mm512_loadu_ps(w + size_t(n + i) * K + k), a[i]);
    }
    for (int i = 0; i < 8; i++) y[n + i] = _mm512_reduce_add_ps(a[i]);
  }
}

static int chunkBegin(int c) { return c * (N / 8) / 16 * 8; }
static void half(int t, int T, int &a, int &b) {
  a = (N / 8) * t / T * 8;
  b = (N / 8) * (t + 1) / T * 8;
}

int main(int argc, char **argv) {
  int rounds = 9;
  for (int i = 1; i < argc; ++i)
    if (!std::strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = std::atoi(argv[++i]);
  const size_t per = size_t(N) * K;
  const int copies = int((size_t(512) << 20) / (per * 4));
  float *W = static_cast<float *>(std::aligned_alloc(64, per * 4 * copies));
  if (!W) return std::fprintf(stderr, "out of memory\n"), 1;
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < per * copies; i++) W[i] = float(i % 7) * 0.01f;
  std::vector<float> x(K, 0.5f), y(N), ref(N);
  rows8(x.data(), W + per * (copies - 1), ref.data(), 0, N, false);  // y holds the last copy's
  const char *names[] = {"fork/call dyn16 pf", "fork/call dyn16 nopf", "fork/call halves",
                         "persistent halves", "persistent dyn16", "two-thread read (no GEMV)"};
  const int V = 6;
  std::vector<std::vector<double>> res(V);
  float sink = 0;
  for (int r = 0; r < rounds; r++) {
    for (int v = 0; v < V; v++) {
      double t0 = now();
      if (v <= 2) {
        for (int c = 0; c < copies; c++) {
          const float *w = W + per * c;
          if (v <= 1) {
#pragma omp parallel for schedule(dynamic, 1)
            for (int ch = 0; ch < 16; ch++)
              rows8(x.data(), w, y.data(), chunkBegin(ch), chunkBegin(ch + 1), v == 0);
          } else {
#pragma omp parallel
            {
              int a, b;
              half(omp_get_thread_num(), omp_get_num_threads(), a, b);
              rows8(x.data(), w, y.data(), a, b, true);
            }
          }
        }
      } else if (v <= 4) {
#pragma omp parallel
        for (int c = 0; c < copies; c++) {
          const float *w = W + per * c;
          if (v == 3) {
            int a, b;
            half(omp_get_thread_num(), omp_get_num_threads(), a, b);
            rows8(x.data(), w, y.data(), a, b, true);
#pragma omp barrier
          } else {
#pragma omp for schedule(dynamic, 1)
            for (int ch = 0; ch < 16; ch++)
              rows8(x.data(), w, y.data(), chunkBegin(ch), chunkBegin(ch + 1), true);
          }
        }
      } else {
        float s = 0;
#pragma omp parallel for schedule(static) reduction(+ : s)
        for (int c = 0; c < copies * 8; c++) {
          const float *p = W + per / 8 * c;
          __m512 a0 = _mm512_setzero_ps(), a1 = a0;
          for (size_t i = 0; i < per / 8; i += 32) {
            a0 = _mm512_add_ps(a0, _mm512_loadu_ps(p + i));
            a1 = _mm512_add_ps(a1, _mm512_loadu_ps(p + i + 16));
          }
          s += _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
        }
        sink += s;
      }
      double t = now() - t0;
      res[v].push_back(per * 4.0 * copies / t / 1e9);
      if (v < 5)
        for (int n = 0; n < N; n++)
          if (std::abs(y[n] - ref[n]) > 1e-3f * (1 + std::abs(ref[n])))
            return std::fprintf(stderr, "%s: wrong result at row %d\n", names[v], n), 1;
    }
  }
  std::printf("threads %d, %d rounds, 1728x640 f32 weights from DRAM (%d copies, 512 MiB), GB/s read%s\n",
              omp_get_max_threads(), rounds, copies, sink == 12345.f ? " " : "");
  for (int v = 0; v < V; v++) {
    auto q = res[v];
    std::sort(q.begin(), q.end());
    std::printf("  %-28s median %5.1f  min %5.1f  max %5.1f\n", names[v], q[q.size() / 2], q.front(), q.back());
  }
  return 0;
}
