// The machine's limits measured in-process (bandwidth, FLOP/s) and CPU-time accounting.
#ifndef PHOTON_BENCH_MACHINE_H
#define PHOTON_BENCH_MACHINE_H

#include <cstddef>

namespace bench {

bool cpuHasAvx2Fma();
bool cpuHasAvx512();
/// Best-of-`reps` read bandwidth in GB/s (1e9 bytes/s) over a `bytes` buffer, `threads` readers.
double measureReadBandwidth(size_t bytes, int threads, int reps);
/// Best FP32 FLOP/s of an FMA loop of the widest vectors the CPU has (AVX-512 where present,
/// else AVX2; about `seconds` per pass), `threads` threads.
double measurePeakFlops(double seconds, int threads);

/// Aggregate line of /proc/stat (all CPUs), in clock ticks.
struct CpuSample {
  unsigned long long busyTicks = 0, totalTicks = 0;
  double time = 0;
};
bool readProcStat(CpuSample &s);
double ticksPerSecond();
int onlineCpus();

}  // namespace bench

#endif
