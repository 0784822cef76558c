// photon-bench's heap accounting: the executable defines malloc/free/calloc/realloc, the
// aligned allocators and the plain operator new/delete, forwarding to glibc's __libc_*
// functions, so that every allocation of the process (the runtime library's and the compiled
// model.so's included) is seen. While enabled it keeps the live and peak bytes (glibc's
// usable sizes) in total and by the code that called the allocator: the compiled stages
// (model.so: the bufferized intermediates of a stage call) and the runtime (libphoton.so:
// logits, windows, sequences, batch tables). Disabled it costs one relaxed load per call.
#ifndef PHOTON_BENCH_HEAPSTAT_H
#define PHOTON_BENCH_HEAPSTAT_H

#include <cstdint>

namespace bench {
namespace heapstat {

struct Snapshot {
  int64_t peakTotal = 0;    // peak of live heap bytes since start(), all callers
  int64_t peakStage = 0;    // peak of live bytes allocated by model.so
  int64_t peakRuntime = 0;  // peak of live bytes allocated by libphoton.so
  uint64_t stageMallocs = 0;  // allocations made by model.so since start()
  uint64_t stageBytes = 0;    // bytes model.so allocated since start() (sum, not live)
  uint64_t untracked = 0;     // attributed allocations the pointer table had no room for
};

/// Finds model.so and libphoton.so in the process (dl_iterate_phdr) and starts counting from
/// zero. Returns false (and counts nothing) when model.so is not loaded.
bool start();
/// Stops counting and returns what was counted.
Snapshot stop();

}  // namespace heapstat
}  // namespace bench

#endif
