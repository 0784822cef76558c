#include "cores.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace photon::rt {

CoreMonitor::CoreMonitor(int maxThreads, double windowSeconds)
    : maxThreads_(std::max(1, maxThreads)),
      cpus_(static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)))),
      threads_(std::min(maxThreads_, cpus_)), window_(windowSeconds) {}

int CoreMonitor::decide(double others, int cpus, int maxThreads, int previous) {
  const int cap = std::max(1, std::min(maxThreads, cpus));
  if (others < 0) return std::clamp(previous, 1, cap);
  // Free cores = cpus - others. Round half-way loads towards the previous decision: with
  // 2 CPUs, others in [0.35, 0.65] keep whatever was chosen last.
  const double freeCores = cpus - others;
  int up = static_cast<int>(std::floor(freeCores + 0.35));   // generous
  int down = static_cast<int>(std::floor(freeCores + 0.65)); // conservative rounding
  int want = previous;
  if (previous > down) want = down;
  else if (previous < up) want = up;
  return std::clamp(want, 1, cap);
}

bool CoreMonitor::sample(double &now, double &machineBusy, double &self) const {
  FILE *f = std::fopen("/proc/stat", "r");
  if (!f) return false;
  unsigned long long v[8] = {0};
  int n = std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
                      &v[5], &v[6], &v[7]);
  std::fclose(f);
  if (n < 4) return false;
  // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  machineBusy = static_cast<double>(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / ticks;
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  self = ts.tv_sec + ts.tv_nsec * 1e-9;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  now = ts.tv_sec + ts.tv_nsec * 1e-9;
  return true;
}

int CoreMonitor::pick() {
  if (cpus_ <= 1 || maxThreads_ <= 1) return 1;
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const double t = ts.tv_sec + ts.tv_nsec * 1e-9;
  if (have0_ && t - t0_ < window_) return threads_;
  double now, busy, self;
  if (!sample(now, busy, self)) return threads_;
  if (have0_ && now > t0_) {
    // /proc/stat counts in clock ticks (10 ms): over a 0.25 s window that is 4% of a core.
    lastWindow_ = now - t0_;
    others_ = std::max(0.0, ((busy - busy0_) - (self - self0_)) / lastWindow_);
    threads_ = decide(others_, cpus_, maxThreads_, threads_);
  }
  t0_ = now, busy0_ = busy, self0_ = self, have0_ = true;
  return threads_;
}

} // namespace photon::rt
