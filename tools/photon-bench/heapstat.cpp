// photon-bench's heap accounting (see heapstat.h). The allocator entry points below replace
// glibc's for the whole process (symbols of the executable come first in the lookup scope of
// every shared object, dlopened model.so included) and forward to glibc's own __libc_*
// functions; sizes are malloc_usable_size, so the counts are what glibc holds for the caller
// (without the chunk headers and free lists, which are the allocator's overhead).
#include "heapstat.h"

#include <dlfcn.h>
#include <link.h>
#include <malloc.h>

#include <atomic>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <new>

extern "C" {
void *__libc_malloc(size_t);
void __libc_free(void *);
void *__libc_calloc(size_t, size_t);
void *__libc_realloc(void *, size_t);
void *__libc_memalign(size_t, size_t);
void *__libc_valloc(size_t);
void *__libc_pvalloc(size_t);
}

namespace bench {
namespace heapstat {
namespace {

enum Owner : uint8_t { kOther = 0, kStage = 1, kRuntime = 2 };

std::atomic<bool> gOn{false};
uintptr_t gStageLo = 0, gStageHi = 0, gRtLo = 0, gRtHi = 0;
std::atomic<int64_t> gLive{0}, gPeak{0}, gLiveStage{0}, gPeakStage{0}, gLiveRt{0}, gPeakRt{0};
std::atomic<uint64_t> gStageMallocs{0}, gStageBytes{0}, gUntracked{0};

// Open-addressing table of the live attributed pointers (stage and runtime) with their size
// and owner; a spin lock guards it (allocations of the stages and the runtime are few per
// step). Static and touched in start(), before the run's RSS mark.
constexpr size_t kSlots = size_t(1) << 15;
struct Slot {
  uintptr_t p;
  int64_t bytes;  // usable bytes
  uint8_t owner;
  uint8_t tomb;  // freed; a later probe sequence may run through it
};
Slot gTable[kSlots];
std::atomic_flag gLock = ATOMIC_FLAG_INIT;

void lock() {
  while (gLock.test_and_set(std::memory_order_acquire)) {
  }
}
void unlock() { gLock.clear(std::memory_order_release); }

// PHOTON_BENCH_HEAP_SITES=1: the largest allocation of each call site in model.so, printed
// (with the nearest dynamic symbol) by stop(); for finding which stage allocates what.
bool gSites = false;
struct Site {
  const void *ret;
  int64_t maxBytes;
  uint64_t calls;
};
Site gSiteTab[256];
void noteSite(const void *ret, int64_t n) {
  lock();
  for (auto &s : gSiteTab) {
    if (s.ret == ret || s.ret == nullptr) {
      s.ret = ret;
      if (n > s.maxBytes) s.maxBytes = n;
      ++s.calls;
      break;
    }
  }
  unlock();
}

size_t slotOf(uintptr_t p) { return (p >> 4) * 0x9E3779B97F4A7C15ull >> (64 - 15); }

void bump(std::atomic<int64_t> &live, std::atomic<int64_t> &peak, int64_t d) {
  int64_t now = live.fetch_add(d, std::memory_order_relaxed) + d;
  int64_t p = peak.load(std::memory_order_relaxed);
  while (now > p && !peak.compare_exchange_weak(p, now, std::memory_order_relaxed)) {
  }
}

Owner ownerOf(const void *ret) {
  uintptr_t a = reinterpret_cast<uintptr_t>(ret);
  if (a >= gStageLo && a < gStageHi) return kStage;
  if (a >= gRtLo && a < gRtHi) return kRuntime;
  return kOther;
}

void onAlloc(void *p, const void *ret) {
  if (!p || !gOn.load(std::memory_order_relaxed)) return;
  int64_t n = static_cast<int64_t>(malloc_usable_size(p));
  bump(gLive, gPeak, n);
  Owner o = ownerOf(ret);
  if (o == kOther) return;
  if (gSites) noteSite(ret, n);
  if (o == kStage) {
    gStageMallocs.fetch_add(1, std::memory_order_relaxed);
    gStageBytes.fetch_add(n, std::memory_order_relaxed);
    bump(gLiveStage, gPeakStage, n);
  } else {
    bump(gLiveRt, gPeakRt, n);
  }
  lock();
  size_t i = slotOf(reinterpret_cast<uintptr_t>(p));
  bool stored = false;
  for (size_t k = 0; k < kSlots; ++k, i = (i + 1) & (kSlots - 1))
    if (gTable[i].p == 0 || gTable[i].tomb) {
      gTable[i] = {reinterpret_cast<uintptr_t>(p), n, static_cast<uint8_t>(o), 0};
      stored = true;
      break;
    }
  unlock();
  if (!stored) gUntracked.fetch_add(1, std::memory_order_relaxed);
}

void onFree(void *p) {
  if (!p || !gOn.load(std::memory_order_relaxed)) return;
  int64_t n = static_cast<int64_t>(malloc_usable_size(p));
  gLive.fetch_sub(n, std::memory_order_relaxed);
  lock();
  size_t i = slotOf(reinterpret_cast<uintptr_t>(p));
  for (size_t k = 0; k < kSlots; ++k, i = (i + 1) & (kSlots - 1)) {
    if (gTable[i].p == 0) break;
    if (!gTable[i].tomb && gTable[i].p == reinterpret_cast<uintptr_t>(p)) {
      (gTable[i].owner == kStage ? gLiveStage : gLiveRt).fetch_sub(gTable[i].bytes, std::memory_order_relaxed);
      // The end of a probe sequence can be emptied; elsewhere a tombstone keeps it going.
      if (gTable[(i + 1) & (kSlots - 1)].p == 0) gTable[i].p = 0;
      else gTable[i].tomb = 1;
      break;
    }
  }
  unlock();
}

struct Ranges {
  const char *suffix;
  size_t suffixLen;
  uintptr_t lo, hi;
};

int findRange(struct dl_phdr_info *info, size_t, void *data) {
  auto *r = static_cast<Ranges *>(data);
  size_t n = info->dlpi_name ? std::strlen(info->dlpi_name) : 0;
  if (n < r->suffixLen || std::strcmp(info->dlpi_name + n - r->suffixLen, r->suffix) != 0) return 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr) &ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    uintptr_t lo = info->dlpi_addr + ph.p_vaddr, hi = lo + ph.p_memsz;
    if (r->lo == 0 || lo < r->lo) r->lo = lo;
    if (hi > r->hi) r->hi = hi;
  }
  return 1;
}

}  // namespace

bool start() {
  gOn.store(false);
  Ranges st{"/model.so", 9, 0, 0}, rt{"/libphoton.so.1", 15, 0, 0};
  dl_iterate_phdr(findRange, &st);
  dl_iterate_phdr(findRange, &rt);
  if (rt.lo == 0) {
    Ranges rt2{"/libphoton.so", 13, 0, 0};
    dl_iterate_phdr(findRange, &rt2);
    rt = rt2;
  }
  if (st.lo == 0) return false;
  gStageLo = st.lo, gStageHi = st.hi, gRtLo = rt.lo, gRtHi = rt.hi;
  std::memset(static_cast<void *>(gTable), 0, sizeof gTable);
  for (auto *a : {&gLive, &gPeak, &gLiveStage, &gPeakStage, &gLiveRt, &gPeakRt}) a->store(0);
  for (auto *a : {&gStageMallocs, &gStageBytes, &gUntracked}) a->store(0);
  gSites = std::getenv("PHOTON_BENCH_HEAP_SITES") != nullptr;
  std::memset(static_cast<void *>(gSiteTab), 0, sizeof gSiteTab);
  gOn.store(true);
  return true;
}

Snapshot stop() {
  gOn.store(false);
  Snapshot s;
  s.peakTotal = gPeak.load();
  s.peakStage = gPeakStage.load();
  s.peakRuntime = gPeakRt.load();
  s.stageMallocs = gStageMallocs.load();
  s.stageBytes = gStageBytes.load();
  s.untracked = gUntracked.load();
  if (gSites)
    for (auto &t : gSiteTab) {
      if (!t.ret) break;
      Dl_info di;
      const char *name = dladdr(t.ret, &di) && di.dli_sname ? di.dli_sname : "?";
      std::fprintf(stderr, "heap site %s+%#lx: max %lld bytes, %llu calls\n", name,
                   static_cast<unsigned long>(reinterpret_cast<uintptr_t>(t.ret) -
                                              reinterpret_cast<uintptr_t>(di.dli_saddr)),
                   static_cast<long long>(t.maxBytes), static_cast<unsigned long long>(t.calls));
    }
  return s;
}

}  // namespace heapstat
}  // namespace bench

using bench::heapstat::onAlloc;
using bench::heapstat::onFree;

#define RET __builtin_return_address(0)

extern "C" {
void *malloc(size_t n) {
  void *p = __libc_malloc(n);
  onAlloc(p, RET);
  return p;
}
void free(void *p) {
  onFree(p);
  __libc_free(p);
}
void *calloc(size_t a, size_t b) {
  void *p = __libc_calloc(a, b);
  onAlloc(p, RET);
  return p;
}
void *realloc(void *old, size_t n) {
  onFree(old);
  void *p = __libc_realloc(old, n);
  // realloc(p, 0) frees p and may return NULL; a failed realloc keeps old (counted again)
  if (p) onAlloc(p, RET);
  else if (n != 0) onAlloc(old, RET);
  return p;
}
void *memalign(size_t align, size_t n) {
  void *p = __libc_memalign(align, n);
  onAlloc(p, RET);
  return p;
}
void *aligned_alloc(size_t align, size_t n) {
  void *p = __libc_memalign(align, n);
  onAlloc(p, RET);
  return p;
}
int posix_memalign(void **out, size_t align, size_t n) {
  if (align < sizeof(void *) || (align & (align - 1))) return 22;  // EINVAL
  void *p = __libc_memalign(align, n);
  if (!p) return 12;  // ENOMEM
  onAlloc(p, RET);
  *out = p;
  return 0;
}
void *valloc(size_t n) {
  void *p = __libc_valloc(n);
  onAlloc(p, RET);
  return p;
}
void *pvalloc(size_t n) {
  void *p = __libc_pvalloc(n);
  onAlloc(p, RET);
  return p;
}
}

// The plain operator new/delete, so that a std::vector of the runtime is attributed to the
// runtime code that grew it (libstdc++'s own operator new would be the caller of malloc).
static void *newImpl(size_t n, const void *ret) {
  void *p = __libc_malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  onAlloc(p, ret);
  return p;
}
void *operator new(size_t n) { return newImpl(n, RET); }
void *operator new[](size_t n) { return newImpl(n, RET); }
void *operator new(size_t n, const std::nothrow_t &) noexcept {
  void *p = __libc_malloc(n ? n : 1);
  onAlloc(p, RET);
  return p;
}
void *operator new[](size_t n, const std::nothrow_t &) noexcept {
  void *p = __libc_malloc(n ? n : 1);
  onAlloc(p, RET);
  return p;
}
void operator delete(void *p) noexcept { free(p); }
void operator delete[](void *p) noexcept { free(p); }
void operator delete(void *p, size_t) noexcept { free(p); }
void operator delete[](void *p, size_t) noexcept { free(p); }
void operator delete(void *p, const std::nothrow_t &) noexcept { free(p); }
void operator delete[](void *p, const std::nothrow_t &) noexcept { free(p); }
