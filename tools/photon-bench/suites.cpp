// photon-bench's suites: the paper table (memory slope, then repeats at the batch the budget
// allows), the context sweep and the roofline runs.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench.h"

namespace bench {

void runPaperSuite(Bench &B) {
  const Options &o = B.o;
  std::vector<Model> &models = B.models;
  const std::vector<SettingDef> &settings = B.settings;
  std::deque<Cell> &cells = B.cells;
  bool &anyFailed = B.anyFailed;
  const double budgetBytes = B.budgetBytes;
for (auto &m : models) {
  for (auto &md : modesOf(m)) {
    for (auto &sd : settings) {
      cells.emplace_back();
      Cell &c = cells.back();
      c.m = &m;
      c.model = m.name;
      c.family = familyName(m.info.family);
      c.mode = md.label;
      c.setting = sd.name;
      c.prompt = sd.prompt;
      c.gen = sd.gen;
      if (o.verbose) std::fprintf(stderr, "%s %s %s\n", m.name.c_str(), md.label.c_str(), sd.name.c_str());
      // 1. memory slope
      std::vector<double> xs, ys, yc;
      for (int b : o.slopeBatches) {
        RunResult r = runOne({&m, md, sd.prompt, sd.gen, b}, o);
        logRun(o, r);
        c.runs.push_back(r);
        if (!r.ok) {
          anyFailed = true;
          c.error = r.error;
        } else {
          MemPoint pt{b, static_cast<double>(r.peakRss), static_cast<double>(r.cachePeak)};
          pt.rssBefore = static_cast<double>(r.rssBefore);
          pt.mem = r.mem;
          pt.windows = md.label == "hiergen" || md.label == "recgen" ? b * m.windowBytes : 0;
          c.points.push_back(pt);
          xs.push_back(b);
          ys.push_back(static_cast<double>(r.peakRss));
          yc.push_back(static_cast<double>(r.cachePeak));
        }
        emit(B, false);
      }
      double a = 0, s = 0, ca = 0, cs = 0;
      if (fitLine(xs, ys, a, s)) c.memSlope = s, c.memIntercept = a;
      if (fitLine(xs, yc, ca, cs)) c.cacheSlope = cs;
      c.rssSlope = c.memSlope;
      if (std::isfinite(c.cacheSlope) && c.cacheSlope > 0 &&
          !(std::isfinite(c.memSlope) && c.memSlope >= c.cacheSlope)) {
        // The peak RSS did not resolve the per-sample growth (it must hold at least the
        // KV cache; tiny models are below page/allocator granularity): use the cache.
        c.memSlope = c.cacheSlope;
        c.memSource = "cache";
      }
      if (!c.points.empty() && std::isfinite(c.memSlope) && c.memSlope > 0) {
        // The budget holds the per-sample memory of the batch (weights and code are shared
        // by any batch and are not part of it, as in the paper's protocol).
        c.budgetBatch = static_cast<int>(std::floor(budgetBytes / c.memSlope));
        c.budgetBatch = std::max(1, c.budgetBatch);
        c.tunedBatch = std::min(c.budgetBatch, o.maxBatch);
        c.batchCapped = c.budgetBatch > o.maxBatch;
        // 2. repeats at the tuned batch (slope runs of that batch count)
        int have = 0;
        for (auto &r : c.runs)
          if (r.ok && r.spec.batch == c.tunedBatch) ++have;
        while (have < o.repeats) {
          RunResult r = runOne({&m, md, sd.prompt, sd.gen, c.tunedBatch}, o);
          logRun(o, r);
          c.runs.push_back(r);
          emit(B, false);
          if (!r.ok) {
            anyFailed = true;
            c.error = r.error;
            break;
          }
          ++have;
        }
      }
      c.complete = true;
      emit(B, false);
    }
  }
}
}

void runSweepSuite(Bench &B) {
  const Options &o = B.o;
  std::vector<Model> &models = B.models;
  bool &anyFailed = B.anyFailed;
  std::vector<RunResult> &sweepRuns = B.sweepRuns;
for (auto &m : models)
  for (auto &md : modesOf(m))
    for (int ctx : o.contexts) {
      int gen = 128;
      int prompt = std::max(1, ctx - gen);
      RunResult r = runOne({&m, md, prompt, gen, 1}, o);
      logRun(o, r);
      if (!r.ok) anyFailed = true;
      sweepRuns.push_back(r);
      emit(B, false);
      if (!r.ok || r.wall > o.sweepCap) break;  // longer contexts would take longer still
    }
}

void runRooflineSuite(Bench &B) {
  const Options &o = B.o;
  std::vector<Model> &models = B.models;
  bool &anyFailed = B.anyFailed;
  std::vector<RunResult> &rooflineRuns = B.rooflineRuns;
for (auto &m : models)
  for (auto &md : modesOf(m)) {
    RunResult r = runOne({&m, md, 2048, 64, 1}, o);
    logRun(o, r);
    if (!r.ok) anyFailed = true;
    rooflineRuns.push_back(r);
    emit(B, false);
  }
}

}  // namespace bench
