// The runtime's CUDA backend: clean failure without a driver, the stub driver refused
// with the driver's own reason, and (on a GPU machine) memory, streams and module load.
#include "photon/cuda.h"
#include "photon/cuda_mgpu.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

bool haveDriver() { return photon_cuda_init(0) == PHOTON_CUDA_OK; }

#define REQUIRE_GPU()                                                                    \
  do {                                                                                   \
    if (!haveDriver())                                                                   \
      GTEST_SKIP() << photon_cuda_last_error();                                          \
  } while (0)

TEST(CudaBackend, InitReportsWhyWithoutADriver) {
  photon_cuda_status s = photon_cuda_init(0);
  if (s == PHOTON_CUDA_OK)
    GTEST_SKIP() << "a CUDA driver is present; nothing to report";
  std::string why = photon_cuda_last_error();
  EXPECT_TRUE(s == PHOTON_CUDA_NO_DRIVER || s == PHOTON_CUDA_NO_DEVICE) << s;
  EXPECT_NE(why.find("CUDA"), std::string::npos) << why;
  if (s == PHOTON_CUDA_NO_DRIVER && !std::getenv("PHOTON_CUDA_DRIVER"))
    EXPECT_NE(why.find("no CUDA driver (libcuda.so.1"), std::string::npos) << why;
  // Every later call fails the same way instead of crashing.
  EXPECT_EQ(photon_cuda_device_count(), 0);
  photon_cuda_devptr p = 0;
  EXPECT_NE(photon_cuda_alloc(64, &p), PHOTON_CUDA_OK);
  EXPECT_EQ(p, 0u);
  photon_cuda_stream st = nullptr;
  EXPECT_NE(photon_cuda_stream_create(&st), PHOTON_CUDA_OK);
  photon_cuda_device_info info;
  EXPECT_NE(photon_cuda_device_query(0, &info), PHOTON_CUDA_OK);
  const char *archs[] = {"sm_80"};
  EXPECT_NE(photon_cuda_check_arch(0, archs, 1), PHOTON_CUDA_OK);
}

TEST(CudaBackend, MgpuFunctionsFailSoftWithoutADriver) {
  if (haveDriver())
    GTEST_SKIP() << "a CUDA driver is present";
  static const char image[] = "not a fatbin";
  EXPECT_EQ(mgpuModuleLoad(const_cast<char *>(image), sizeof image), nullptr);
  EXPECT_EQ(mgpuModuleGetFunction(nullptr, "k"), nullptr);
  EXPECT_EQ(mgpuStreamCreate(), nullptr);
  EXPECT_EQ(mgpuMemAlloc(256, nullptr, false), nullptr);
  mgpuLaunchKernel(nullptr, 1, 1, 1, 1, 1, 1, 0, nullptr, nullptr, nullptr, 0);
  mgpuStreamSynchronize(nullptr);
  mgpuStreamDestroy(nullptr);
  mgpuModuleUnload(nullptr);
  EXPECT_NE(std::string(photon_cuda_last_error()), "");
}

TEST(CudaBackend, InvalidArgumentsAreRejected) {
  EXPECT_EQ(photon_cuda_module_load(nullptr, nullptr), PHOTON_CUDA_INVALID_ARG);
  EXPECT_EQ(photon_cuda_alloc(0, nullptr), PHOTON_CUDA_INVALID_ARG);
  EXPECT_EQ(photon_cuda_device_query(0, nullptr), PHOTON_CUDA_INVALID_ARG);
  EXPECT_EQ(photon_cuda_launch(nullptr, nullptr, nullptr, 0, nullptr, nullptr),
            PHOTON_CUDA_INVALID_ARG);
  EXPECT_NE(std::string(photon_cuda_last_error()).find("null"), std::string::npos);
}

// The driver is opened once per process, so these run in a fresh child process
// (threadsafe death tests re-execute the binary).
TEST(CudaBackend, MissingDriverLibraryIsNamed) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        setenv("PHOTON_CUDA_DRIVER", "/nonexistent/libcuda.so.1", 1);
        photon_cuda_status s = photon_cuda_init(0);
        std::fprintf(stderr, "%s\n", photon_cuda_last_error());
        std::exit(s == PHOTON_CUDA_NO_DRIVER ? 3 : 4);
      },
      testing::ExitedWithCode(3), "no CUDA driver \\(/nonexistent/libcuda.so.1 not found");
}

#ifdef PHOTON_CUDA_STUB_DRIVER
TEST(CudaBackend, ToolkitStubDriverIsRefused) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        setenv("PHOTON_CUDA_DRIVER", PHOTON_CUDA_STUB_DRIVER, 1);
        photon_cuda_status s = photon_cuda_init(0);
        std::fprintf(stderr, "%s\n", photon_cuda_last_error());
        std::exit(s == PHOTON_CUDA_NO_DRIVER ? 3 : 4);
      },
      testing::ExitedWithCode(3), "no CUDA driver \\(cuInit failed in .*stubs/libcuda.so");
}
#endif

TEST(CudaGpu, DeviceQueryAndArchCheck) {
  REQUIRE_GPU();
  ASSERT_GT(photon_cuda_device_count(), 0);
  photon_cuda_device_info info;
  ASSERT_EQ(photon_cuda_device_query(0, &info), PHOTON_CUDA_OK) << photon_cuda_last_error();
  EXPECT_GE(info.cc_major, 7);
  EXPECT_GT(info.total_bytes, 0u);
  char mine[16];
  std::snprintf(mine, sizeof mine, "sm_%d%d", info.cc_major, info.cc_minor);
  const char *ok[] = {mine};
  EXPECT_EQ(photon_cuda_check_arch(0, ok, 1), PHOTON_CUDA_OK);
  const char *other[] = {"sm_75"};
  if (std::strcmp(mine, "sm_75") != 0) {
    EXPECT_EQ(photon_cuda_check_arch(0, other, 1), PHOTON_CUDA_WRONG_ARCH);
    EXPECT_NE(std::string(photon_cuda_last_error()).find(std::string("--target cuda:") + mine),
              std::string::npos);
  }
}

TEST(CudaGpu, MemoryRoundTripOnAStream) {
  REQUIRE_GPU();
  std::vector<float> host(1 << 16), back(host.size());
  for (size_t i = 0; i < host.size(); ++i)
    host[i] = float(i) * 0.5f;
  photon_cuda_stream s = nullptr;
  ASSERT_EQ(photon_cuda_stream_create(&s), PHOTON_CUDA_OK) << photon_cuda_last_error();
  photon_cuda_devptr d = 0;
  ASSERT_EQ(photon_cuda_alloc(host.size() * sizeof(float), &d), PHOTON_CUDA_OK);
  ASSERT_EQ(photon_cuda_memcpy_htod(d, host.data(), host.size() * 4, s), PHOTON_CUDA_OK);
  ASSERT_EQ(photon_cuda_memcpy_dtoh(back.data(), d, back.size() * 4, s), PHOTON_CUDA_OK);
  ASSERT_EQ(photon_cuda_stream_sync(s), PHOTON_CUDA_OK);
  EXPECT_EQ(host, back);
  ASSERT_EQ(photon_cuda_memset32(d, 0x3f800000u, host.size(), s), PHOTON_CUDA_OK);
  ASSERT_EQ(photon_cuda_memcpy_dtoh(back.data(), d, back.size() * 4, s), PHOTON_CUDA_OK);
  ASSERT_EQ(photon_cuda_stream_sync(s), PHOTON_CUDA_OK);
  EXPECT_EQ(back.front(), 1.0f);
  EXPECT_EQ(back.back(), 1.0f);
  photon_cuda_free(d);
  photon_cuda_stream_destroy(s);
}

TEST(CudaGpu, PtxModuleLoadsAndRuns) {
  REQUIRE_GPU();
  // A hand-written PTX kernel (the driver JIT-compiles it): out[i] = 2 * in[i].
  static const char ptx[] = R"(
.version 7.5
.target sm_75
.address_size 64
.visible .entry twice(.param .u64 in, .param .u64 out, .param .u32 n) {
  .reg .pred %p; .reg .b32 %r<4>; .reg .b64 %rd<6>; .reg .f32 %f<3>;
  ld.param.u64 %rd1, [in]; ld.param.u64 %rd2, [out]; ld.param.u32 %r1, [n];
  mov.u32 %r2, %tid.x; mov.u32 %r3, %ctaid.x; mad.lo.s32 %r2, %r3, 128, %r2;
  setp.ge.u32 %p, %r2, %r1; @%p bra DONE;
  cvta.to.global.u64 %rd1, %rd1; cvta.to.global.u64 %rd2, %rd2;
  mul.wide.u32 %rd3, %r2, 4; add.s64 %rd4, %rd1, %rd3; add.s64 %rd5, %rd2, %rd3;
  ld.global.f32 %f1, [%rd4]; add.f32 %f2, %f1, %f1; st.global.f32 [%rd5], %f2;
DONE:
  ret;
})";
  photon_cuda_module *m = nullptr;
  ASSERT_EQ(photon_cuda_module_load(ptx, &m), PHOTON_CUDA_OK) << photon_cuda_last_error();
  photon_cuda_function f = nullptr;
  ASSERT_EQ(photon_cuda_module_function(m, "twice", &f), PHOTON_CUDA_OK);
  photon_cuda_function missing = nullptr;
  EXPECT_NE(photon_cuda_module_function(m, "nope", &missing), PHOTON_CUDA_OK);
  const uint32_t n = 1000;
  std::vector<float> in(n), out(n);
  for (uint32_t i = 0; i < n; ++i)
    in[i] = float(i);
  photon_cuda_devptr din = 0, dout = 0;
  ASSERT_EQ(photon_cuda_alloc(n * 4, &din), PHOTON_CUDA_OK);
  ASSERT_EQ(photon_cuda_alloc(n * 4, &dout), PHOTON_CUDA_OK);
  ASSERT_EQ(photon_cuda_memcpy_htod(din, in.data(), n * 4, nullptr), PHOTON_CUDA_OK);
  uint32_t nn = n;
  void *params[] = {&din, &dout, &nn};
  const uint32_t grid[3] = {(n + 127) / 128, 1, 1}, block[3] = {128, 1, 1};
  ASSERT_EQ(photon_cuda_launch(f, grid, block, 0, nullptr, params), PHOTON_CUDA_OK)
      << photon_cuda_last_error();
  ASSERT_EQ(photon_cuda_memcpy_dtoh(out.data(), dout, n * 4, nullptr), PHOTON_CUDA_OK);
  for (uint32_t i = 0; i < n; ++i)
    ASSERT_EQ(out[i], 2.0f * in[i]) << i;
  photon_cuda_free(din);
  photon_cuda_free(dout);
  photon_cuda_module_unload(m);
}

} // namespace
