// Runs the kernels of Inputs/e2e_kernels.mlir (compiled by photon-gpu-lowering for sm_80
// and sm_90 into this executable) on the GPU and compares with a CPU reference. Skips,
// with the driver's reason, where there is no GPU.
#include "photon/cuda.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

template <typename T, int N> struct MemRef {
  T *allocated;
  T *aligned;
  int64_t offset;
  int64_t sizes[N];
  int64_t strides[N];
};

extern "C" {
void _mlir_ciface_rms_norm(MemRef<float, 2> *result, MemRef<float, 2> *x, MemRef<float, 1> *w,
                           MemRef<float, 2> *out);
void _mlir_ciface_matmul_f16(MemRef<float, 2> *result, MemRef<uint16_t, 2> *a,
                             MemRef<uint16_t, 2> *b, MemRef<float, 2> *out);
void _mlir_ciface_window_attention(MemRef<float, 4> *result, MemRef<float, 4> *q,
                                   MemRef<float, 4> *k, MemRef<float, 4> *v,
                                   MemRef<float, 4> *out);
}

namespace {

#define REQUIRE_GPU()                                                                    \
  do {                                                                                   \
    if (photon_cuda_init(0) != PHOTON_CUDA_OK)                                           \
      GTEST_SKIP() << photon_cuda_last_error();                                          \
    const char *archs[] = {"sm_80", "sm_90"};                                            \
    if (photon_cuda_check_arch(0, archs, 2) != PHOTON_CUDA_OK)                           \
      GTEST_SKIP() << photon_cuda_last_error();                                          \
  } while (0)

/// A device copy of a host array, freed on scope exit.
template <typename T> struct DeviceBuffer {
  photon_cuda_devptr ptr = 0;
  size_t count;
  explicit DeviceBuffer(const std::vector<T> &host) : count(host.size()) {
    EXPECT_EQ(photon_cuda_alloc(count * sizeof(T), &ptr), PHOTON_CUDA_OK);
    EXPECT_EQ(photon_cuda_memcpy_htod(ptr, host.data(), count * sizeof(T), nullptr),
              PHOTON_CUDA_OK);
  }
  ~DeviceBuffer() { photon_cuda_free(ptr); }
  std::vector<T> read() const {
    std::vector<T> h(count);
    EXPECT_EQ(photon_cuda_memcpy_dtoh(h.data(), ptr, count * sizeof(T), nullptr), PHOTON_CUDA_OK);
    return h;
  }
  template <int N> MemRef<T, N> ref(std::initializer_list<int64_t> shape) const {
    MemRef<T, N> m{};
    m.allocated = m.aligned = reinterpret_cast<T *>(ptr);
    int i = 0;
    for (int64_t s : shape)
      m.sizes[i++] = s;
    int64_t stride = 1;
    for (int d = N - 1; d >= 0; --d) {
      m.strides[d] = stride;
      stride *= m.sizes[d];
    }
    return m;
  }
};

std::vector<float> randomVector(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float &x : v)
    x = dist(rng);
  return v;
}

uint16_t toHalf(float f) { // round to nearest even, values in the normal f16 range
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  int32_t exp = int32_t((x >> 23) & 0xff) - 127 + 15;
  uint32_t mant = x & 0x7fffffu;
  if (exp <= 0)
    return uint16_t(sign);
  uint32_t h = sign | (uint32_t(exp) << 10) | (mant >> 13);
  uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u)))
    ++h;
  return uint16_t(h);
}
float fromHalf(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  int32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ffu;
  uint32_t x = exp == 0 ? sign : sign | (uint32_t(exp - 15 + 127) << 23) | (mant << 13);
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

TEST(CudaGpuE2E, RmsNormMatchesCpu) {
  REQUIRE_GPU();
  const int B = 16, D = 256;
  std::vector<float> x = randomVector(B * D, 1), w = randomVector(D, 2), out(B * D, 0.0f);
  DeviceBuffer<float> dx(x), dw(w), dout(out);
  MemRef<float, 2> result{}, mx = dx.ref<2>({B, D}), mo = dout.ref<2>({B, D});
  MemRef<float, 1> mw = dw.ref<1>({D});
  _mlir_ciface_rms_norm(&result, &mx, &mw, &mo);
  ASSERT_EQ(photon_cuda_stream_sync(nullptr), PHOTON_CUDA_OK) << photon_cuda_last_error();
  std::vector<float> got = dout.read();
  for (int b = 0; b < B; ++b) {
    double ss = 0;
    for (int d = 0; d < D; ++d)
      ss += double(x[b * D + d]) * x[b * D + d];
    double inv = 1.0 / std::sqrt(ss / D + 1e-5);
    for (int d = 0; d < D; ++d)
      ASSERT_NEAR(got[b * D + d], x[b * D + d] * inv * w[d], 1e-4) << b << "," << d;
  }
}

TEST(CudaGpuE2E, TensorCoreMatmulMatchesCpu) {
  REQUIRE_GPU();
  const int M = 64, K = 128, N = 64;
  std::vector<float> af = randomVector(M * K, 3), bf = randomVector(K * N, 4);
  std::vector<uint16_t> a(M * K), b(K * N);
  for (int i = 0; i < M * K; ++i)
    a[i] = toHalf(af[i]);
  for (int i = 0; i < K * N; ++i)
    b[i] = toHalf(bf[i]);
  DeviceBuffer<uint16_t> da(a), db(b);
  DeviceBuffer<float> dout(std::vector<float>(M * N, 0.0f));
  MemRef<float, 2> result{}, mo = dout.ref<2>({M, N});
  MemRef<uint16_t, 2> ma = da.ref<2>({M, K}), mb = db.ref<2>({K, N});
  _mlir_ciface_matmul_f16(&result, &ma, &mb, &mo);
  ASSERT_EQ(photon_cuda_stream_sync(nullptr), PHOTON_CUDA_OK) << photon_cuda_last_error();
  std::vector<float> got = dout.read();
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      double ref = 0;
      for (int k = 0; k < K; ++k)
        ref += double(fromHalf(a[i * K + k])) * fromHalf(b[k * N + j]);
      ASSERT_NEAR(got[i * N + j], ref, 1e-3 * (1 + std::fabs(ref))) << i << "," << j;
    }
}

TEST(CudaGpuE2E, FusedWindowAttentionMatchesCpu) {
  REQUIRE_GPU();
  const int Nw = 8, W = 6, H = 2, hd = 16;
  const size_t n = size_t(Nw) * W * H * hd;
  std::vector<float> q = randomVector(n, 5), k = randomVector(n, 6), v = randomVector(n, 7);
  DeviceBuffer<float> dq(q), dk(k), dv(v), dout(std::vector<float>(n, 0.0f));
  MemRef<float, 4> result{}, mq = dq.ref<4>({Nw, W, H, hd}), mk = dk.ref<4>({Nw, W, H, hd}),
                   mv = dv.ref<4>({Nw, W, H, hd}), mo = dout.ref<4>({Nw, W, H, hd});
  _mlir_ciface_window_attention(&result, &mq, &mk, &mv, &mo);
  ASSERT_EQ(photon_cuda_stream_sync(nullptr), PHOTON_CUDA_OK) << photon_cuda_last_error();
  std::vector<float> got = dout.read();
  auto at = [&](const std::vector<float> &t, int nw, int w, int h, int d) {
    return t[((size_t(nw) * W + w) * H + h) * hd + d];
  };
  for (int nw = 0; nw < Nw; ++nw)
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < W; ++i) {
        std::vector<double> p(W, 0.0);
        double mx = -1e300, sum = 0;
        for (int j = 0; j <= i; ++j) {
          double s = 0;
          for (int d = 0; d < hd; ++d)
            s += double(at(q, nw, i, h, d)) * at(k, nw, j, h, d);
          p[j] = s * 0.25;
          mx = std::max(mx, p[j]);
        }
        for (int j = 0; j <= i; ++j)
          sum += (p[j] = std::exp(p[j] - mx));
        for (int d = 0; d < hd; ++d) {
          double o = 0;
          for (int j = 0; j <= i; ++j)
            o += p[j] / sum * at(v, nw, j, h, d);
          ASSERT_NEAR(at(got, nw, i, h, d), o, 1e-4) << nw << "," << i << "," << h << "," << d;
        }
      }
}

} // namespace
