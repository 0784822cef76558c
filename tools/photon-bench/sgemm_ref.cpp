// OpenBLAS sgemm on the model's matmul shapes, measured in a forked child. See sgemm_ref.h.
#include "sgemm_ref.h"

#include <dlfcn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace bench {

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// CBLAS constants (cblas.h): row major, no transpose, transpose.
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;
using SgemmFn = void (*)(int, int, int, int, int, int, float, const float *, int, const float *, int,
                         float, float *, int);
using SetThreadsFn = void (*)(int);
using ConfigFn = char *(*)();

constexpr int kMaxShapes = 8;
struct Wire {  // child -> parent, plain data
  int ok;
  char error[256], library[128], config[160];
  double g1[kMaxShapes], g2[kMaxShapes];
};

void child(int m, const std::vector<GemmShape> &shapes, double minSeconds, int fd) {
  Wire w;
  std::memset(&w, 0, sizeof w);
  auto done = [&] {
    ssize_t n = write(fd, &w, sizeof w);
    (void)n;
    _exit(0);
  };
  const char *names[] = {"libopenblas.so.0", "libopenblas.so"};
  void *h = nullptr;
  for (const char *n : names)
    if ((h = dlopen(n, RTLD_NOW | RTLD_LOCAL))) {
      std::snprintf(w.library, sizeof w.library, "%s", n);
      break;
    }
  if (!h) {
    std::snprintf(w.error, sizeof w.error, "libopenblas.so.0 not found (Debian: apt-get install libopenblas0): %s",
                  dlerror());
    done();
  }
  auto sgemm = reinterpret_cast<SgemmFn>(dlsym(h, "cblas_sgemm"));
  auto setThreads = reinterpret_cast<SetThreadsFn>(dlsym(h, "openblas_set_num_threads"));
  auto config = reinterpret_cast<ConfigFn>(dlsym(h, "openblas_get_config"));
  if (!sgemm || !setThreads) {
    std::snprintf(w.error, sizeof w.error, "%s lacks cblas_sgemm/openblas_set_num_threads", w.library);
    done();
  }
  if (config) std::snprintf(w.config, sizeof w.config, "%s", config());
  size_t maxN = 0, maxK = 0;
  for (auto &s : shapes) maxN = std::max<size_t>(maxN, s.n), maxK = std::max<size_t>(maxK, s.k);
  std::vector<float> x(static_cast<size_t>(m) * maxK), wt(maxN * maxK), y(static_cast<size_t>(m) * maxN);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 7) % 13) * 0.01f - 0.06f;
  for (size_t i = 0; i < wt.size(); ++i) wt[i] = static_cast<float>((i * 5) % 11) * 0.01f - 0.05f;
  for (int threads = 1; threads <= 2; ++threads) {
    setThreads(threads);
    for (size_t si = 0; si < shapes.size() && si < kMaxShapes; ++si) {
      const GemmShape &s = shapes[si];
      auto call = [&] {
        sgemm(kRowMajor, kNoTrans, kTrans, m, s.n, s.k, 1.0f, x.data(), s.k, wt.data(), s.k, 0.0f, y.data(), s.n);
      };
      call();  // warm-up (thread start, page faults)
      double best = 1e30, spent = 0;
      for (int r = 0; r < 20 && (r < 3 || spent < minSeconds); ++r) {
        double t0 = now();
        call();
        double dt = now() - t0;
        spent += dt;
        best = std::min(best, dt);
      }
      double gf = 2.0 * m * s.n * s.k / best / 1e9;
      (threads == 1 ? w.g1 : w.g2)[si] = gf;
    }
  }
  w.ok = 1;
  done();
}

}  // namespace

SgemmRef measureSgemmRef(int m, const std::vector<GemmShape> &shapes, double minSeconds) {
  SgemmRef r;
  r.m = m;
  r.shapes = shapes;
  if (shapes.empty() || shapes.size() > kMaxShapes || m < 1) {
    r.error = "no matmul shapes";
    return r;
  }
  int fds[2];
  if (pipe(fds) != 0) {
    r.error = "pipe failed";
    return r;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    r.error = "fork failed";
    return r;
  }
  if (pid == 0) {
    close(fds[0]);
    child(m, shapes, minSeconds, fds[1]);
    _exit(1);
  }
  close(fds[1]);
  Wire w;
  std::memset(&w, 0, sizeof w);
  size_t got = 0;
  while (got < sizeof w) {
    ssize_t n = read(fds[0], reinterpret_cast<char *>(&w) + got, sizeof w - got);
    if (n <= 0) break;
    got += n;
  }
  close(fds[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  if (got != sizeof w) {
    r.error = "the sgemm child died without a result";
    return r;
  }
  w.error[sizeof w.error - 1] = w.library[sizeof w.library - 1] = w.config[sizeof w.config - 1] = 0;
  r.library = w.library;
  r.config = w.config;
  r.error = w.error;
  if (!w.ok) return r;
  r.available = true;
  double flops = 0, t1 = 0, t2 = 0;
  for (size_t i = 0; i < r.shapes.size(); ++i) {
    GemmShape &s = r.shapes[i];
    s.gflops1 = w.g1[i];
    s.gflops2 = w.g2[i];
    double f = 2.0 * m * s.n * s.k * s.count;
    flops += f;
    if (s.gflops1 > 0) t1 += f / (s.gflops1 * 1e9);
    if (s.gflops2 > 0) t2 += f / (s.gflops2 * 1e9);
  }
  r.gflops1 = t1 > 0 ? flops / t1 / 1e9 : 0;
  r.gflops2 = t2 > 0 ? flops / t2 / 1e9 : 0;
  return r;
}

}  // namespace bench
