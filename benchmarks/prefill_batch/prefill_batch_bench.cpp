// Prefill throughput with N prompts submitted at once, batched prefill (shared stage calls,
// docs/runtime.md "Batched prefill") against one sequence per call (EngineOptions::
// batchPrefill = false, the engine before batching), alternating in one process.
//
// usage: prefill_batch_bench ART.photon hiergen|recgen N MIN_LEN MAX_LEN REPEATS
// Prints one line: the medians of prompt tokens per CPU-second of the scheduler thread (each
// run: N prompts of MIN_LEN..MAX_LEN random tokens, 1 output token each) for both settings,
// their ratio, and the prefill calls of each. CPU time, not wall time: on a shared machine it
// is the steadier of the two (the engine runs on this one thread).
#include "artifact.h"
#include "engine.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <string>

using namespace photon::rt;

namespace {
double threadSeconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}
} // namespace

int main(int argc, char **argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: %s ART.photon hiergen|recgen N MIN_LEN MAX_LEN REPEATS\n", argv[0]);
    return 2;
  }
  const std::string art = argv[1];
  const photon_mode mode = std::string(argv[2]) == "recgen" ? PHOTON_MODE_RECGEN : PHOTON_MODE_HIERGEN;
  const int n = std::atoi(argv[3]), lo = std::atoi(argv[4]), hi = std::atoi(argv[5]),
            reps = std::atoi(argv[6]);
  if (n < 1 || lo < 1 || hi < lo || reps < 1) {
    std::fprintf(stderr, "N, MIN_LEN, REPEATS >= 1 and MAX_LEN >= MIN_LEN\n");
    return 2;
  }
  std::unique_ptr<Model> model;
  Status st = Model::load(art, {}, model);
  if (!st) {
    std::fprintf(stderr, "%s: %s\n", art.c_str(), st.message().c_str());
    return 1;
  }
  const int vocab = model->manifest().vocab;
  std::mt19937 rng(3);
  std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(n));
  for (auto &p : prompts) {
    p.resize(static_cast<size_t>(lo + static_cast<int>(rng() % (hi - lo + 1))));
    for (auto &t : p) t = static_cast<int32_t>(rng() % vocab);
  }
  std::vector<double> rate[2];
  uint64_t calls[2] = {0, 0};
  // Repetition -1 warms up (weights paged in, allocator grown) and is not counted; the
  // order of the two settings alternates between repetitions.
  for (int r = -1; r < reps; ++r)
    for (int k = 0; k < 2; ++k) {
      const int batched = (r & 1) ? 1 - k : k;
      EngineOptions o;
      o.mode = mode;
      o.memoryBudget = 1ull << 30;
      o.batchPrefill = batched == 1;
      std::unique_ptr<Engine> e;
      if (!(st = Engine::create(*model, o, e))) {
        std::fprintf(stderr, "%s\n", st.message().c_str());
        return 1;
      }
      for (const auto &p : prompts) {
        SamplingParams sp;
        sp.maxTokens = 1;
        uint64_t id;
        if (!(st = e->submit(p, sp, id))) {
          std::fprintf(stderr, "%s\n", st.message().c_str());
          return 1;
        }
      }
      const double t0 = threadSeconds();
      if (!(st = e->run(nullptr))) {
        std::fprintf(stderr, "%s\n", st.message().c_str());
        return 1;
      }
      const double cpu = threadSeconds() - t0;
      if (r >= 0) rate[batched].push_back(e->stats().prefillTokens / cpu);
      calls[batched] = e->stats().prefillCalls;
    }
  const double a = median(rate[0]), b = median(rate[1]);
  std::printf("%s %s N=%d len=%d-%d: one per call %.0f tok/CPU-s (%llu calls), batched %.0f "
              "tok/CPU-s (%llu calls), ratio %.2f\n",
              art.substr(art.find_last_of('/') + 1).c_str(), argv[2], n, lo, hi, a,
              static_cast<unsigned long long>(calls[0]), b,
              static_cast<unsigned long long>(calls[1]), a > 0 ? b / a : 0.0);
  return 0;
}
