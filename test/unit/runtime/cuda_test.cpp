#include "photon/photon.h"

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <string>

TEST(Cuda, ProbeReportsMissingDriverCleanly) {
  void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  int32_t n = -1;
  photon_status st = photon_cuda_probe(&n);
  if (h) {
    dlclose(h);
    GTEST_SKIP() << "a CUDA driver is installed here; probe returned "
                 << photon_status_string(st) << ": " << photon_last_error();
  }
  EXPECT_EQ(st, PHOTON_ERR_NO_DEVICE);
  EXPECT_EQ(n, 0);
  EXPECT_NE(std::string(photon_last_error()).find("no CUDA driver (libcuda.so.1 not found"),
            std::string::npos)
      << photon_last_error();
}
