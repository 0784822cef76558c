// The prefill reference: OpenBLAS sgemm (Debian's libopenblas.so.0, loaded at run time) on a
// model's matmul shapes, so that prefill can be reported as a fraction of a tuned BLAS.
#ifndef PHOTON_BENCH_SGEMM_REF_H
#define PHOTON_BENCH_SGEMM_REF_H

#include <string>
#include <vector>

namespace bench {

/// y[M, n] = x[M, k] * W[n, k]^T, `count` times per token-row (per layer x layers).
struct GemmShape {
  std::string what;
  int n = 0, k = 0;
  double count = 0;
  double gflops1 = 0, gflops2 = 0;  // measured (filled in)
};

struct SgemmRef {
  bool available = false;
  std::string library, config, error;
  int m = 0;                        // rows of x (prefill tokens per call)
  double gflops1 = 0, gflops2 = 0;  // the shape mix weighted by FLOPs (total FLOP / total time)
  std::vector<GemmShape> shapes;
};

/// Measures cblas_sgemm on `shapes` with M rows, 1 and 2 OpenBLAS threads, in a forked child
/// (OpenBLAS's worker threads never live in the benchmark's own process). Best of a few calls
/// per shape after a warm-up, at least `minSeconds` per shape and thread count.
SgemmRef measureSgemmRef(int m, const std::vector<GemmShape> &shapes, double minSeconds);

}  // namespace bench

#endif
