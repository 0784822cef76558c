// How many cores the other processes leave free, measured while the engine runs, so an
// --openmp artifact's kernels use that many threads instead of fighting for a busy core.
#ifndef PHOTON_RUNTIME_CORES_H
#define PHOTON_RUNTIME_CORES_H

#include <cstdint>

namespace photon::rt {

/// Samples the machine's busy CPU time (/proc/stat) and this process's own CPU time; their
/// difference over a window is the CPU time other processes used. pick() returns the thread
/// count for the next stage calls: every online core, less the cores the others kept busy
/// over the last window (rounded, with hysteresis so a boundary load does not flip it every
/// window), at least 1 and at most `maxThreads`. The window is re-measured at most every
/// `windowSeconds`; between windows pick() returns the last decision without a system call.
class CoreMonitor {
public:
  CoreMonitor(int maxThreads, double windowSeconds = 0.25);
  int pick();
  /// The other processes' busy cores over the last completed window (-1 before the first).
  double othersBusy() const { return others_; }
  int current() const { return threads_; }
  /// Length of the last completed window in seconds (0 before the first).
  double lastWindowSeconds() const { return lastWindow_; }

  /// The decision alone, for tests: `others` busy cores on `cpus` online ones, `previous`
  /// the last decision.
  static int decide(double others, int cpus, int maxThreads, int previous);

private:
  bool sample(double &now, double &machineBusy, double &self) const;
  int maxThreads_, cpus_, threads_;
  double window_, others_ = -1, lastWindow_ = 0;
  double t0_ = 0, busy0_ = 0, self0_ = 0;
  bool have0_ = false;
};

} // namespace photon::rt

#endif
