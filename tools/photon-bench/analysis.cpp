// photon-bench's analysis: medians, the memory slope's line fit, the rooflines of the
// compile-time cost model and the measured limits, and what each paper-table cell derives.
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

Summary summarize(std::vector<double> v) {
  Summary s;
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.n = static_cast<int>(v.size());
  s.min = v.front();
  s.max = v.back();
  s.median = v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
  return s;
}

bool fitLine(const std::vector<double> &x, const std::vector<double> &y, double &a, double &b) {
  size_t n = x.size();
  if (n < 2) return false;
  double mx = 0, my = 0;
  for (size_t i = 0; i < n; ++i) mx += x[i], my += y[i];
  mx /= n;
  my /= n;
  double sxx = 0, sxy = 0;
  for (size_t i = 0; i < n; ++i) sxx += (x[i] - mx) * (x[i] - mx), sxy += (x[i] - mx) * (y[i] - my);
  if (sxx <= 0) return false;
  b = sxy / sxx;
  a = my - b * mx;
  return true;
}

// Bytes one generated token reads from the caches at context T (averaged over the steps of
// the level that reads them): level l is read once per level-l step, every tokens_per_unit
// tokens; RecGen keeps only the top level.
double cacheReadPerToken(const Model &m, const std::string &mode, double T) {
  // Every level's cache is read once per meta-context (the tokens of one top-level unit):
  // after a meta-context's tokens are decoded, the encoders extend every level at once
  // (HierGen: F1 by C_2...C_L positions in one call, then F2, ...; RecGen: the top level only).
  double bytes = 0;
  int n = m.info.cache_levels;
  int top = 0;
  double meta = 1;
  for (int i = 0; i < n; ++i) {
    top = std::max(top, m.info.cache_level_id[i]);
    meta = std::max(meta, static_cast<double>(m.info.cache_tokens_per_unit[i]));
  }
  for (int i = 0; i < n; ++i) {
    if (mode == "recgen" && m.info.cache_level_id[i] != top) continue;
    double tpu = std::max(1, m.info.cache_tokens_per_unit[i]);
    double stored = m.info.cache_bytes_per_unit[i] * std::ceil(T / tpu);
    bytes += stored / meta;
  }
  return bytes;
}

// Decode and prefill rooflines from the compile-time cost model (weights bytes and FLOPs per
// token) and the measured limits. `threads` selects the 1- or 2-thread limits.
Roofline roofline(const Model &m, const std::string &mode, double avgContext, int batch,
                  const Machine &mc, int threads) {
  Roofline r;
  const bool rec = mode == "recgen";
  double cw = rec ? m.cost.recWeightBytesPerToken : m.cost.weightBytesPerToken;
  double cf = rec ? m.cost.recFlopsPerToken : m.cost.flopsPerToken;
  double w = cw > 0 ? cw : static_cast<double>(m.info.weights_bytes);
  double f = cf > 0 ? cf : 2.0 * m.info.weights_bytes / 4.0;
  double bw = (threads >= 2 ? mc.bw2 : mc.bw1) * 1e9;
  double pk = threads >= 2 ? mc.flops2 : mc.flops1;
  r.bytesPerToken = w / std::max(1, batch) + cacheReadPerToken(m, mode, avgContext);
  r.flopsPerToken = f;
  double tBw = r.bytesPerToken / bw, tFl = f / pk;
  r.bandwidthBound = tBw >= tFl;
  // tokens/s summed over the batch: B tokens per step of max((W + B*cache)/BW, B*F/PEAK)
  r.decodeTps = 1.0 / std::max(tBw, tFl);
  r.prefillTps = pk / (m.cost.prefillFlopsPerToken > 0 ? m.cost.prefillFlopsPerToken : f);
  return r;
}

int threadsFrom(const std::vector<RunResult> &runs) {
  // The cores a run drew on: a second thread busy for more than 5% of the wall time (RecGen's
  // overlapped top-level step, OpenMP kernels) can read memory beside the first, so the
  // run's roofline, an upper bound, takes the two-thread bandwidth and peak.
  double best = 0;
  for (auto &r : runs)
    if (r.ok && r.elapsed > 0) best = std::max(best, r.ownCpu / r.elapsed);
  return best > 1.05 ? 2 : 1;
}

Machine aroundRuns(const Machine &mc, const std::vector<RunResult> &runs) {
  // The largest bandwidth measured around any of the runs (an upper bound for each); the
  // suite's start-up figure when no run measured one.
  Machine r = mc;
  double b1 = 0, b2 = 0;
  for (auto &x : runs) {
    b1 = std::max(b1, x.bw1);
    b2 = std::max(b2, x.bw2);
  }
  if (b1 > 0) r.bw1 = b1;
  if (b2 > 0) r.bw2 = b2;
  return r;
}

void finishCell(Bench &B, Cell &c) {
  const Machine &mc = B.mc;
  const SgemmRef &sg = B.sg;
  const Model &m = *c.m;
  std::vector<double> thr, pre, dec, wall, b1d, b1t, b1p;
  for (auto &r : c.runs) {
    if (!r.ok) continue;
    if (c.tunedBatch > 0 && r.spec.batch == c.tunedBatch) {
      thr.push_back(r.throughput());
      pre.push_back(r.prefillTps());
      dec.push_back(r.decodeTps());
      wall.push_back(r.wall);
    }
    if (r.spec.batch == 1) {
      b1d.push_back(r.decodeTps());
      b1t.push_back(r.throughput());
      b1p.push_back(r.prefillTps());
    }
  }
  c.thr = summarize(thr);
  c.prefill = summarize(pre);
  c.decode = summarize(dec);
  c.wall = summarize(wall);
  c.b1Decode = summarize(b1d);
  c.b1Thr = summarize(b1t);
  c.b1Prefill = summarize(b1p);
  c.tpm = (std::isfinite(c.memSlope) && c.memSlope > 0) ? c.thr.median / (c.memSlope / 1073741824.0) : NAN;
  c.tpmCache = (std::isfinite(c.cacheSlope) && c.cacheSlope > 0) ? c.thr.median / (c.cacheSlope / 1073741824.0) : NAN;
  c.threadsUsed = threadsFrom(c.runs);
  double avgCtx = c.prompt + c.gen / 2.0;
  const Machine around = aroundRuns(mc, c.runs);
  c.bw1 = around.bw1;
  c.bw2 = around.bw2;
  c.roof = roofline(m, c.mode, avgCtx, std::max(1, c.tunedBatch), around, c.threadsUsed);
  c.roofB1 = roofline(m, c.mode, avgCtx, 1, around, c.threadsUsed);
  c.achievedDecode = c.decode.median / c.roof.decodeTps;
  c.achievedB1 = c.b1Decode.median / c.roofB1.decodeTps;
  c.parts = memBreakdown(c);
  c.otherCoresMax = 0;
  c.noisy = false;
  for (auto &r : c.runs) {
    c.otherCoresMax = std::max(c.otherCoresMax, r.otherCores);
    c.noisy = c.noisy || r.noisy;
  }
  double fpt = m.cost.prefillFlopsPerToken > 0 ? m.cost.prefillFlopsPerToken : NAN;
  Summary &pf = c.prefill.n > 0 ? c.prefill : c.b1Prefill;
  c.prefillGflops = pf.median * fpt / 1e9;
  c.sgemmGflops = sg.available ? (c.threadsUsed >= 2 ? sg.gflops2 : sg.gflops1) : NAN;
  c.prefillOverSgemm = c.sgemmGflops > 0 ? c.prefillGflops / c.sgemmGflops : NAN;
}

MemBreakdown memBreakdown(const Cell &c) {
  MemBreakdown p;
  std::vector<double> x;
  for (auto &pt : c.points) {
    if (!pt.mem.tracked) return p;
    x.push_back(pt.batch);
  }
  if (x.size() < 2) return p;
  auto slope = [&](auto f) {
    std::vector<double> y;
    for (auto &pt : c.points) y.push_back(f(pt));
    double a = 0, b = NAN;
    if (!fitLine(x, y, a, b)) return static_cast<double>(NAN);
    return b;
  };
  p.present = true;
  const MemParts &m0 = c.points.front().mem;
  for (int i = 0; i < m0.cacheLevels; ++i)
    p.cacheLevels.push_back({m0.cacheLevelId[i], slope([&](const MemPoint &pt) {
                               return static_cast<double>(pt.mem.cachePeakLevel[i]);
                             })});
  p.cache = slope([](const MemPoint &pt) { return pt.cachePeak; });
  p.windows = slope([](const MemPoint &pt) { return pt.windows; });
  p.stage = slope([](const MemPoint &pt) { return static_cast<double>(pt.mem.stagePeak); });
  p.runtime = slope([](const MemPoint &pt) { return static_cast<double>(pt.mem.runtimePeak); });
  p.runtimeOther = p.runtime - p.windows;
  p.heap = slope([](const MemPoint &pt) { return static_cast<double>(pt.mem.heapPeak); });
  p.heapOther = slope([](const MemPoint &pt) {
    return static_cast<double>(pt.mem.heapPeak - pt.mem.stagePeak - pt.mem.runtimePeak);
  });
  p.rss = slope([](const MemPoint &pt) { return pt.peakRss - pt.rssBefore; });
  // What the RSS grows by beyond the caches (mmapped), the live heap and the weights' pages:
  // glibc's free chunks, arenas of more threads, page granularity.
  p.weightPages = slope([](const MemPoint &pt) {
    return static_cast<double>(pt.mem.rssFileAfter) - static_cast<double>(pt.mem.rssFileBefore);
  });
  p.allocator = p.rss - p.cache - p.heap - p.weightPages;
  double mallocs = 0, tokens = 0;
  for (auto &r : c.runs)
    if (r.ok && r.mem.tracked) mallocs += r.mem.stageMallocs, tokens += r.generated;
  p.stageMallocsPerToken = tokens > 0 ? mallocs / tokens : NAN;
  return p;
}

double predictedMemoryRatio(const Cell &rg, const Cell &v) {
  const CostModel &pc = rg.m->cost;
  const CostModel &vc = v.m->cost;
  double vCache = vc.present && vc.cacheHierPer1k > 0 ? vc.cacheHierPer1k : pc.vCachePer1k;
  double vNon = vc.present && vc.nonCachePerSeq >= 0 ? vc.nonCachePerSeq : std::max(0.0, pc.vNonCachePerSeq);
  double T = (rg.prompt + rg.gen) / 1000.0;
  return safeDiv(pc.cacheRecPer1k * T + std::max(0.0, pc.recgenNonCachePerSeq), vCache * T + vNon);
}

double safeDiv(double a, double b) { return (std::isfinite(a) && std::isfinite(b) && b != 0) ? a / b : NAN; }

const Cell *findCell(Bench &B, const std::string &mode, const std::string &setting) {
  for (auto &c : B.cells)
    if (c.mode == mode && c.setting == setting) return &c;
  return nullptr;
}

double atBatch(const Cell *c, int batch, double (RunResult::*metric)() const) {
  std::vector<double> v;
  if (c)
    for (auto &r : c->runs)
      if (r.ok && r.spec.batch == batch) v.push_back((r.*metric)());
  return summarize(v).median;
}

}  // namespace bench
