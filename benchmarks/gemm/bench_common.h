// Shared by gemm_bench.cpp and gemv_bench.cpp: the 2-D memref descriptor photon's kernel
// libraries take (through their _mlir_ciface_ wrappers), OpenBLAS's CBLAS entry points as
// dlsym'd function types, and a clock (also gemv_regions.cpp's).
#pragma once

#include <chrono>
#include <cstdint>

struct Memref2D {
  float *allocated, *aligned;
  int64_t offset, sizes[2], strides[2];
};
using KernelFn = void (*)(Memref2D *, Memref2D *, Memref2D *);
using SgemmFn = void (*)(int, int, int, int, int, int, float, const float *, int, const float *,
                         int, float, float *, int);
using SgemvFn = void (*)(int, int, int, int, float, const float *, int, const float *, int, float,
                         float *, int);
enum { kRowMajor = 101, kNoTrans = 111, kTrans = 112 };

inline Memref2D view(float *p, int64_t rows, int64_t cols) {
  return Memref2D{p, p, 0, {rows, cols}, {cols, 1}};
}

inline double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
