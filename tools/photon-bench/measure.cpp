// photon-bench's measurement of one run: a forked child runs the engine on a batch of random
// prompts and reports its peak RSS (the mark reset before the run), the engine's cache peak
// and timings through a pipe; the parent accounts the CPU time other processes used meanwhile.
#include "machine.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <climits>

#include <malloc.h>

#include <fstream>
#include <random>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench.h"
#include "heapstat.h"

namespace bench {

namespace {

// Written by the child through a pipe (plain data).
struct ChildResult {
  int ok;
  int status;
  char error[512];
  double wall, prefillSeconds, decodeSeconds;
  uint64_t prefillTokens, decodeTokens, cachePeak, generated;
  uint64_t peakRss, rssBefore;
  int32_t peakBatch;
  MemParts mem;
};

uint64_t statusKb(const char *field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  size_t n = std::strlen(field);
  while (std::getline(f, line))
    if (line.compare(0, n, field) == 0) return std::strtoull(line.c_str() + n, nullptr, 10);
  return 0;
}

struct CountCtx {
  uint64_t tokens = 0;
};

int countTokens(void *user, photon_request_id, const int32_t *, size_t n, photon_finish) {
  static_cast<CountCtx *>(user)->tokens += n;
  return 0;
}

/// Maps every page of the artifact's files (weights.bin, model.so) into this process. A run is
/// a forked child, and fork does not copy the parent's page-table entries of file mappings: the
/// child would map the weights page by page as it reads them, so its file-backed RSS would grow
/// with the embedding rows the batch's tokens select, pages that are already in memory and
/// shared. Mapped up front, they are the same at every batch and leave the per-sample slope.
void mapArtifactPages(const std::string &artifact) {
  char real[PATH_MAX];
  if (!realpath(artifact.c_str(), real)) return;
  std::string dir = std::string(real) + "/";
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    size_t slash = line.find('/');
    if (slash == std::string::npos || line.compare(slash, dir.size(), dir) != 0) continue;
    unsigned long lo = 0, hi = 0;
    char perms[8] = {0};
    if (std::sscanf(line.c_str(), "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r') continue;
    void *addr = reinterpret_cast<void *>(lo);
    if (madvise(addr, hi - lo, MADV_POPULATE_READ) != 0) {
      // Kernels before 5.14: touch one byte per page.
      long page = sysconf(_SC_PAGESIZE);
      volatile const char *b = reinterpret_cast<const char *>(lo);
      for (unsigned long off = 0; off < hi - lo; off += static_cast<unsigned long>(page)) (void)b[off];
    }
  }
}

void childRun(const RunSpec &rs, uint64_t seed, int threads, int fd) {
  ChildResult r;
  std::memset(&r, 0, sizeof r);
  auto finish = [&](photon_status st) {
    r.status = st;
    r.ok = st == PHOTON_OK;
    if (!r.ok) std::snprintf(r.error, sizeof r.error, "%s: %s", photon_status_string(st), photon_last_error());
    ssize_t w = write(fd, &r, sizeof r);
    (void)w;
    _exit(r.ok ? 0 : 3);
  };
  const Model &m = *rs.model;
  photon_engine_options eo;
  photon_engine_options_defaults(&eo);
  eo.mode = rs.mode.mode;
  eo.max_batch = rs.batch;
  eo.threads = threads;
  // The engine's own budget must never make requests wait: the protocol tunes the batch.
  uint64_t perSeq = 0;
  for (int i = 0; i < m.info.cache_levels; ++i)
    perSeq += m.info.cache_bytes_per_unit[i] *
              ((rs.prompt + rs.gen) / std::max(1, m.info.cache_tokens_per_unit[i]) + 64);
  eo.memory_budget = std::max<uint64_t>(uint64_t(1) << 30, 2 * perSeq * rs.batch + (uint64_t(64) << 20));
  photon_engine *e = nullptr;
  photon_status st = photon_engine_create(m.handle, &eo, &e);
  if (st != PHOTON_OK) finish(st);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> tok(0, m.info.vocab - 1);
  photon_sampling s;
  photon_sampling_defaults(&s);
  s.max_tokens = rs.gen;
  s.temperature = 0;
  std::vector<int32_t> prompt(rs.prompt);
  // Heap accounting from here (its table is touched now, before the mark).
  r.mem.tracked = heapstat::start() ? 1 : 0;
  // The artifact's pages mapped before the mark (mapArtifactPages), so that the file-backed
  // RSS does not count the embedding rows a batch happens to read.
  mapArtifactPages(m.path);
  // Reset the peak-RSS mark: the peak is then that of this run (the weights' pages included;
  // they are the same at every batch and drop out of the slope).
  {
    int cf = open("/proc/self/clear_refs", O_WRONLY);
    if (cf >= 0) {
      ssize_t w = write(cf, "5", 1);
      (void)w;
      close(cf);
    }
  }
  r.rssBefore = statusKb("VmRSS:") * 1024;
  r.mem.rssFileBefore = statusKb("RssFile:") * 1024;
  for (int b = 0; b < rs.batch; ++b) {
    for (auto &t : prompt) t = tok(rng);
    s.seed = seed + b;
    photon_request_id id;
    st = photon_engine_submit(e, prompt.data(), prompt.size(), &s, &id);
    if (st != PHOTON_OK) finish(st);
  }
  CountCtx cc;
  double t0 = nowSec();
  st = photon_engine_run(e, countTokens, &cc);
  r.wall = nowSec() - t0;
  heapstat::Snapshot hs = heapstat::stop();
  r.mem.rssFileAfter = statusKb("RssFile:") * 1024;
  if (st != PHOTON_OK) finish(st);
  r.mem.heapPeak = hs.peakTotal;
  r.mem.stagePeak = hs.peakStage;
  r.mem.runtimePeak = hs.peakRuntime;
  r.mem.stageMallocs = hs.stageMallocs;
  r.mem.stageBytes = hs.stageBytes;
  r.mem.untracked = hs.untracked;
  {
    struct mallinfo2 mi = mallinfo2();
    r.mem.mallocHeld = mi.arena + mi.hblkhd;
    r.mem.mallocFree = mi.fordblks;
  }
  photon_engine_stats es;
  std::memset(&es, 0, sizeof es);
  es.struct_size = sizeof es;
  st = photon_engine_get_stats(e, &es);
  if (st != PHOTON_OK) finish(st);
  r.prefillSeconds = es.prefill_seconds;
  r.decodeSeconds = es.decode_seconds;
  r.prefillTokens = es.prefill_tokens;
  r.decodeTokens = es.decode_tokens;
  r.cachePeak = es.cache_peak_total_bytes;
  r.peakBatch = es.peak_batch;
  r.mem.cacheLevels = std::min<int32_t>(es.cache_levels, PHOTON_MAX_LEVELS);
  for (int i = 0; i < r.mem.cacheLevels; ++i) {
    r.mem.cacheLevelId[i] = es.cache_level_id[i];
    r.mem.cachePeakLevel[i] = es.cache_peak_bytes[i];
  }
  r.generated = cc.tokens;
  r.peakRss = statusKb("VmHWM:") * 1024;
  finish(PHOTON_OK);
}

}  // namespace

RunResult runOne(const RunSpec &rs, const Options &o) {
  RunResult out;
  out.spec = rs;
  int fds[2];
  if (pipe(fds) != 0) {
    out.error = std::string("pipe: ") + std::strerror(errno);
    return out;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  // The bandwidth around the run (before here, after the child is reaped), outside the
  // run's own CPU and noise accounting.
  auto sampleBandwidth = [&] {
    out.bw1 = std::max(out.bw1, measureReadBandwidth(o.bwBytes, 1, 2));
    out.bw2 = std::max(out.bw2, measureReadBandwidth(o.bwBytes, 2, 2));
  };
  sampleBandwidth();
  CpuSample c0, c1;
  readProcStat(c0);
  pid_t pid = fork();
  if (pid < 0) {
    out.error = std::string("fork: ") + std::strerror(errno);
    close(fds[0]);
    close(fds[1]);
    return out;
  }
  if (pid == 0) {
    close(fds[0]);
    childRun(rs, o.seed, o.threads, fds[1]);
    _exit(4);
  }
  close(fds[1]);
  ChildResult cr;
  std::memset(&cr, 0, sizeof cr);
  size_t got = 0;
  double deadline = nowSec() + o.runTimeout;
  bool timedOut = false;
  while (got < sizeof cr) {
    double left = deadline - nowSec();
    if (left <= 0) {
      timedOut = true;
      break;
    }
    struct pollfd pf = {fds[0], POLLIN, 0};
    int pr = poll(&pf, 1, static_cast<int>(std::min(left, 1e6) * 1000));
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) continue;
    ssize_t n = read(fds[0], reinterpret_cast<char *>(&cr) + got, sizeof cr - got);
    if (n <= 0) break;
    got += n;
  }
  close(fds[0]);
  if (timedOut) kill(pid, SIGKILL);
  int wstatus = 0;
  struct rusage ru;
  std::memset(&ru, 0, sizeof ru);
  wait4(pid, &wstatus, 0, &ru);
  readProcStat(c1);
  sampleBandwidth();
  out.elapsed = c1.time - c0.time;
  out.ownCpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
  double busy = (c1.busyTicks - c0.busyTicks) / ticksPerSecond();
  out.otherCores = out.elapsed > 0 ? std::max(0.0, busy - out.ownCpu) / out.elapsed : 0;
  out.noisy = out.otherCores > o.noiseThreshold;
  if (timedOut) {
    out.error = "timed out after " + std::to_string(static_cast<int>(o.runTimeout)) +
                " s (raise --run-timeout or lower the batch/lengths)";
    return out;
  }
  if (got != sizeof cr) {
    if (WIFSIGNALED(wstatus))
      out.error = std::string("the run crashed: signal ") + strsignal(WTERMSIG(wstatus));
    else
      out.error = "the run exited with status " + std::to_string(WEXITSTATUS(wstatus)) + " without a result";
    return out;
  }
  out.ok = cr.ok;
  cr.error[sizeof cr.error - 1] = 0;
  out.error = cr.error;
  out.wall = cr.wall;
  out.prefillSeconds = cr.prefillSeconds;
  out.decodeSeconds = cr.decodeSeconds;
  out.prefillTokens = cr.prefillTokens;
  out.decodeTokens = cr.decodeTokens;
  out.cachePeak = cr.cachePeak;
  out.generated = cr.generated;
  out.peakRss = cr.peakRss;
  out.rssBefore = cr.rssBefore;
  out.peakBatch = cr.peakBatch;
  out.mem = cr.mem;
  return out;
}

}  // namespace bench
