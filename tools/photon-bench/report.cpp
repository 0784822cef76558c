// photon-bench's report: the JSON document (rewritten atomically after every run) and the
// summary table on stdout.
#include <errno.h>

#include <ctime>
#include <fstream>
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

namespace {

void writeRun(JWriter &w, const RunResult &r) {
  w.beginObj();
  w.kv("batch", r.spec.batch);
  w.kv("prompt", r.spec.prompt);
  w.kv("gen", r.spec.gen);
  w.kv("ok", r.ok);
  if (!r.ok) w.kv("error", r.error);
  w.kv("wall_s", r.wall);
  w.kv("prefill_s", r.prefillSeconds);
  w.kv("decode_s", r.decodeSeconds);
  w.kv("prefill_tokens", static_cast<double>(r.prefillTokens));
  w.kv("decode_tokens", static_cast<double>(r.decodeTokens));
  w.kv("generated", static_cast<double>(r.generated));
  w.kv("throughput_tps", r.throughput());
  w.kv("prefill_tps", r.prefillTps());
  w.kv("decode_tps", r.decodeTps());
  w.kv("peak_rss_bytes", static_cast<double>(r.peakRss));
  w.kv("cache_peak_bytes", static_cast<double>(r.cachePeak));
  w.kv("peak_batch", r.peakBatch);
  w.kv("own_cpu_s", r.ownCpu);
  w.kv("cpu_utilization", r.elapsed > 0 ? r.ownCpu / r.elapsed : 0.0);
  w.kv("other_cpu_cores", r.otherCores);
  w.kv("noisy", r.noisy);
  w.kv("read_bw_gbps_1t", r.bw1);
  w.kv("read_bw_gbps_2t", r.bw2);
  w.endObj();
}

void writeSummary(JWriter &w, const std::string &k, const Summary &s) {
  w.key(k);
  w.beginObj();
  w.kv("median", s.median);
  w.kv("min", s.min);
  w.kv("max", s.max);
  w.kv("n", s.n);
  w.endObj();
}

void writeRoof(JWriter &w, const std::string &k, const Roofline &r) {
  w.key(k);
  w.beginObj();
  w.kv("decode_tps", r.decodeTps);
  w.kv("prefill_tps", r.prefillTps);
  w.kv("bytes_per_token", r.bytesPerToken);
  w.kv("flops_per_token", r.flopsPerToken);
  w.kv("bound", r.bandwidthBound ? "bandwidth" : "compute");
  w.endObj();
}

std::string isoNow() {
  std::time_t t = std::time(nullptr);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::string cpuModel() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.compare(0, 10, "model name") == 0) {
      size_t c = line.find(':');
      return c == std::string::npos ? line : line.substr(c + 2);
    }
  return "unknown";
}

}  // namespace

// The first three fields of /proc/loadavg ("1.02 0.80 0.66").
std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  if (!(f >> a >> b >> c)) return "";
  return a + " " + b + " " + c;
}

void logRun(const Options &o, const RunResult &r) {
  if (!o.verbose) return;
  std::fprintf(stderr, "  %-14s %-8s P=%-5d G=%-5d B=%-3d %s thr %8.1f tok/s (prefill %8.1f, decode %8.1f) peak %7.1f MiB cache %7.1f MiB other %.2f cores%s\n",
               r.spec.model->name.c_str(), r.spec.mode.label.c_str(), r.spec.prompt, r.spec.gen,
               r.spec.batch, r.ok ? "ok  " : "FAIL", r.throughput(), r.prefillTps(), r.decodeTps(),
               r.peakRss / 1048576.0, r.cachePeak / 1048576.0, r.otherCores, r.noisy ? " NOISY" : "");
  if (!r.ok) std::fprintf(stderr, "    error: %s\n", r.error.c_str());
}

std::string buildJson(Bench &B, bool complete) {
  const Options &o = B.o;
  const std::vector<Model> &models = B.models;
  const Machine &mc = B.mc;
  const SgemmRef &sg = B.sg;
  const std::vector<SettingDef> &settings = B.settings;
  const std::string &loadavgStart = B.loadavgStart;
  const bool &anyFailed = B.anyFailed;
  std::deque<Cell> &cells = B.cells;
  const std::vector<RunResult> &sweepRuns = B.sweepRuns;
  const std::vector<RunResult> &rooflineRuns = B.rooflineRuns;
  const Json &peersJson = B.peersJson;
  const bool &peersRan = B.peersRan;
  const std::string &peersError = B.peersError;
  int &noisyRuns = B.noisyRuns, &runsTotal = B.runsTotal;
  double &otherMax = B.otherMax;
  for (auto &c : cells) finishCell(B, c);
  JWriter w;
  w.beginObj();
  w.kv("tool", "photon-bench");
  w.kv("version", photon_version());
  w.kv("suite", o.suite);
  w.kv("date", isoNow());
  w.kv("complete", complete);
  w.kv("compute_threads_option", o.threads); // --threads (0: OpenMP's default)
  w.key("host");
  w.beginObj();
  w.kv("cpu", cpuModel());
  w.kv("online_cpus", onlineCpus());
  w.kv("avx2_fma", cpuHasAvx2Fma());
  w.endObj();
  w.key("machine");
  w.beginObj();
  w.kv("read_bw_gbs_1t", mc.bw1);
  w.kv("read_bw_gbs_2t", mc.bw2);
  w.kv("peak_gflops_1t", mc.flops1 / 1e9);
  w.kv("peak_gflops_2t", mc.flops2 / 1e9);
  w.kv("bw_buffer_bytes", static_cast<double>(o.bwBytes));
  w.kv("measure_seconds", mc.seconds);
  w.kv("other_cpu_cores_during", mc.otherCores);
  w.kv("loadavg_start", loadavgStart);
  w.kv("loadavg_now", loadavg());
  w.endObj();
  w.key("sgemm_reference");
  w.beginObj();
  w.kv("available", sg.available);
  if (!sg.error.empty()) w.kv("error", sg.error);
  w.kv("library", sg.library);
  w.kv("config", sg.config);
  w.kv("m", sg.m);
  w.kv("gflops_1t", sg.gflops1);
  w.kv("gflops_2t", sg.gflops2);
  w.kv("what", "cblas_sgemm(row major, x[M,K] * W[N,K]^T) on the models' matmul shapes, best of several calls "
               "after a warm-up; gflops = the shape mix weighted by the FLOPs of one token (total FLOP / total time)");
  w.key("shapes");
  w.beginArr();
  for (auto &s : sg.shapes) {
    w.beginObj();
    w.kv("what", s.what);
    w.kv("n", s.n);
    w.kv("k", s.k);
    w.kv("per_token", s.count);
    w.kv("gflops_1t", s.gflops1);
    w.kv("gflops_2t", s.gflops2);
    w.endObj();
  }
  w.endArr();
  w.endObj();
  w.key("protocol");
  w.beginObj();
  w.key("settings");
  w.beginArr();
  for (auto &s : settings) {
    w.beginObj();
    w.kv("name", s.name);
    w.kv("prompt", s.prompt);
    w.kv("gen", s.gen);
    w.endObj();
  }
  w.endArr();
  w.kv("budget_gib", o.budgetGiB);
  w.kv("max_batch", o.maxBatch);
  w.key("slope_batches");
  w.beginArr();
  for (int b : o.slopeBatches) w.value(b);
  w.endArr();
  w.kv("repeats", o.repeats);
  w.kv("noise_threshold_cores", o.noiseThreshold);
  w.kv("throughput", "generated tokens / (prefill + decode seconds), summed over the batch");
  w.kv("tpm", "throughput / per-sample memory in GiB (tokens/s/GiB); per-sample memory = slope of peak RSS against batch");
  w.kv("prefill_gflops", "prefill tokens/s x the cost model's prefill FLOPs per prompt token (matmuls of the encoders, or of the whole vanilla model; attention excluded)");
  w.endObj();

  w.key("models");
  w.beginArr();
  for (auto &m : models) {
    w.beginObj();
    w.kv("name", m.name);
    w.kv("path", m.path);
    w.kv("family", familyName(m.info.family));
    w.kv("vocab", m.info.vocab);
    w.kv("width", m.info.width);
    w.kv("levels", m.info.levels);
    w.kv("tokens_per_step", m.info.tokens_per_step);
    w.kv("weights_bytes", static_cast<double>(m.info.weights_bytes));
    w.kv("params_f32", m.params);
    w.kv("target_cpu", m.info.target_cpu ? m.info.target_cpu : "");
    w.key("cost_model");
    if (m.cost.present) {
      w.beginObj();
      w.kv("weight_bytes_per_token", m.cost.weightBytesPerToken);
      w.kv("flops_per_token", m.cost.flopsPerToken);
      w.kv("prefill_flops_per_token", m.cost.prefillFlopsPerToken);
      w.kv("cache_bytes_per_1k_hiergen", m.cost.cacheHierPer1k);
      w.kv("cache_bytes_per_1k_recgen", m.cost.cacheRecPer1k);
      w.kv("vanilla_weight_bytes_per_token", m.cost.vWeightBytesPerToken);
      w.kv("vanilla_flops_per_token", m.cost.vFlopsPerToken);
      w.kv("vanilla_cache_bytes_per_1k", m.cost.vCachePer1k);
      w.kv("ratio_weight_bytes", m.cost.ratioWeight);
      w.kv("ratio_flops", m.cost.ratioFlops);
      w.kv("ratio_cache_recgen", m.cost.ratioCacheRec);
      w.kv("ratio_cache_hiergen", m.cost.ratioCacheHier);
      w.endObj();
    } else {
      w.null();
    }
    w.endObj();
  }
  w.endArr();

  w.key("results");
  w.beginArr();
  for (auto &c : cells) {
    w.beginObj();
    w.kv("model", c.model);
    w.kv("family", c.family);
    w.kv("mode", c.mode);
    w.kv("setting", c.setting);
    w.kv("prompt", c.prompt);
    w.kv("gen", c.gen);
    w.kv("complete", c.complete);
    if (!c.error.empty()) w.kv("error", c.error);
    w.key("memory");
    w.beginObj();
    w.kv("per_sample_bytes", c.memSlope);
    w.kv("intercept_bytes", c.memIntercept);
    w.kv("cache_per_sample_bytes", c.cacheSlope);
    w.kv("rss_per_sample_bytes", c.rssSlope);
    w.kv("source", c.memSource);
    if (c.m->plannedBytesPerSeq >= 0) w.kv("planned_non_cache_per_sample_bytes", c.m->plannedBytesPerSeq);
    w.key("breakdown_per_sample_bytes");
    if (c.parts.present) {
      const MemBreakdown &p = c.parts;
      w.beginObj();
      w.key("cache_levels");
      w.beginObj();
      for (auto &l : p.cacheLevels) w.kv("level_" + std::to_string(l.first), l.second);
      w.endObj();
      w.kv("cache", p.cache);
      w.kv("token_decoder_windows", p.windows);
      w.kv("stage_activations", p.stage);
      w.kv("runtime_logits_sampling_other", p.runtimeOther);
      w.kv("runtime_heap", p.runtime);
      w.kv("other_heap", p.heapOther);
      w.kv("heap", p.heap);
      w.kv("weight_pages_touched", p.weightPages);
      w.kv("allocator_and_untracked", p.allocator);
      // per-sample memory without the shared weights' pages the batch's tokens touched
      w.kv("rss_without_weight_pages", p.rss - p.weightPages);
      w.kv("rss", p.rss);
      w.kv("stage_mallocs_per_generated_token", p.stageMallocsPerToken);
      w.endObj();
    } else {
      w.null();
    }
    w.key("points");
    w.beginArr();
    for (auto &p : c.points) {
      w.beginObj();
      w.kv("batch", p.batch);
      w.kv("peak_rss_bytes", p.peakRss);
      w.kv("cache_peak_bytes", p.cachePeak);
      if (p.mem.tracked) {
        w.kv("rss_growth_bytes", p.peakRss - p.rssBefore);
        w.kv("heap_peak_bytes", static_cast<double>(p.mem.heapPeak));
        w.kv("stage_heap_peak_bytes", static_cast<double>(p.mem.stagePeak));
        w.kv("runtime_heap_peak_bytes", static_cast<double>(p.mem.runtimePeak));
        w.kv("token_decoder_window_bytes", p.windows);
        w.kv("stage_mallocs", static_cast<double>(p.mem.stageMallocs));
        w.kv("stage_malloc_bytes", static_cast<double>(p.mem.stageBytes));
        w.kv("malloc_held_bytes_end", static_cast<double>(p.mem.mallocHeld));
        w.kv("malloc_free_bytes_end", static_cast<double>(p.mem.mallocFree));
        if (p.mem.untracked) w.kv("heap_untracked_allocations", static_cast<double>(p.mem.untracked));
      }
      w.endObj();
    }
    w.endArr();
    w.endObj();
    w.kv("budget_batch", c.budgetBatch);
    w.kv("tuned_batch", c.tunedBatch);
    w.kv("batch_capped", c.batchCapped);
    writeSummary(w, "throughput_tps", c.thr);
    writeSummary(w, "prefill_tps", c.prefill);
    writeSummary(w, "decode_tps", c.decode);
    writeSummary(w, "wall_s", c.wall);
    writeSummary(w, "batch1_decode_tps", c.b1Decode);
    writeSummary(w, "batch1_throughput_tps", c.b1Thr);
    writeSummary(w, "batch1_prefill_tps", c.b1Prefill);
    w.kv("tpm", c.tpm);
    w.kv("tpm_cache_only", c.tpmCache);
    w.kv("threads_used", c.threadsUsed);
    w.kv("read_bw_gbps_around_runs", c.threadsUsed >= 2 ? c.bw2 : c.bw1);
    writeRoof(w, "roofline", c.roof);
    writeRoof(w, "roofline_batch1", c.roofB1);
    w.kv("achieved_over_roofline_decode", c.achievedDecode);
    w.kv("achieved_over_roofline_decode_batch1", c.achievedB1);
    w.kv("prefill_gflops", c.prefillGflops);
    w.kv("sgemm_gflops", c.sgemmGflops);
    w.kv("prefill_over_sgemm", c.prefillOverSgemm);
    w.kv("other_cpu_cores_max", c.otherCoresMax);
    w.kv("noisy", c.noisy);
    w.key("runs");
    w.beginArr();
    for (auto &r : c.runs) writeRun(w, r);
    w.endArr();
    w.endObj();
  }
  w.endArr();

  auto writeRunList = [&](const char *key, const std::vector<RunResult> &runs) {
    w.key(key);
    w.beginArr();
    for (auto &r : runs) {
      w.beginObj();
      w.kv("model", r.spec.model->name);
      w.kv("mode", r.spec.mode.label);
      w.kv("context", r.spec.prompt + r.spec.gen);
      w.key("run");
      writeRun(w, r);
      int th = threadsFrom({r});
      Machine around = aroundRuns(mc, {r});
      w.kv("read_bw_gbps_around_run", th >= 2 ? around.bw2 : around.bw1);
      Roofline rf = roofline(*r.spec.model, r.spec.mode.label, r.spec.prompt + r.spec.gen / 2.0, 1, around, th);
      writeRoof(w, "roofline", rf);
      w.kv("achieved_over_roofline_decode", safeDiv(r.decodeTps(), rf.decodeTps));
      w.kv("achieved_over_roofline_prefill", safeDiv(r.prefillTps(), rf.prefillTps));
      double fpt = r.spec.model->cost.prefillFlopsPerToken;
      double sgf = sg.available ? (th >= 2 ? sg.gflops2 : sg.gflops1) : NAN;
      w.kv("prefill_over_sgemm", safeDiv(r.prefillTps() * fpt / 1e9, sgf));
      w.endObj();
    }
    w.endArr();
  };
  if (o.suite == "sweep") writeRunList("sweep", sweepRuns);
  if (o.suite == "roofline") writeRunList("roofline_runs", rooflineRuns);

  // ratios and targets
  w.key("ratios");
  w.beginObj();
  for (auto &sd : settings) {
    const Cell *v = findCell(B, "vanilla", sd.name), *bl = findCell(B, "block", sd.name),
               *hg = findCell(B, "hiergen", sd.name), *rg = findCell(B, "recgen", sd.name);
    w.key(sd.name);
    w.beginObj();
    auto pair = [&](const char *name, const Cell *a, const Cell *b) {
      if (!a || !b) return;
      w.key(name);
      w.beginObj();
      w.kv("tpm", safeDiv(a->tpm, b->tpm));
      w.kv("throughput", safeDiv(a->thr.median, b->thr.median));
      w.kv("per_sample_memory", safeDiv(a->memSlope, b->memSlope));
      w.kv("decode_tps", safeDiv(a->decode.median, b->decode.median));
      w.kv("batch1_decode_tps", safeDiv(a->b1Decode.median, b->b1Decode.median));
      w.endObj();
    };
    pair("recgen_over_vanilla", rg, v);
    pair("hiergen_over_vanilla", hg, v);
    pair("hiergen_over_block", hg, bl);
    pair("recgen_over_block", rg, bl);
    pair("block_over_vanilla", bl, v);
    // The cost model's prediction of RecGen/vanilla TPM: per-sample cache ratio from the
    // compile-time cache plan, throughput from its roofline at each run's tuned batch.
    if (rg && v && rg->m->cost.present) {
      const CostModel &pc = rg->m->cost;
      double vCache = v->m->cost.present && v->m->cost.cacheHierPer1k > 0 ? v->m->cost.cacheHierPer1k : pc.vCachePer1k;
      double cacheRatio = safeDiv(pc.cacheRecPer1k, vCache);  // RecGen / vanilla, caches only
      double memRatio = predictedMemoryRatio(*rg, *v);  // caches at the context + the rest
      double thrRatio = safeDiv(rg->roof.decodeTps, v->roof.decodeTps);
      double predicted = safeDiv(thrRatio, memRatio);
      double measured = safeDiv(rg->tpm, v->tpm);
      w.key("cost_model_recgen_over_vanilla");
      w.beginObj();
      w.kv("predicted_cache_ratio", cacheRatio);
      w.kv("predicted_memory_ratio", memRatio);
      w.kv("predicted_tpm_ratio_cache_only", safeDiv(thrRatio, cacheRatio));
      w.kv("predicted_throughput_ratio", thrRatio);
      w.kv("predicted_tpm_ratio", predicted);
      w.kv("measured_tpm_ratio", measured);
      w.kv("measured_over_predicted", safeDiv(measured, predicted));
      // The same with the measured per-sample KV-cache bytes instead of the RSS slope (the
      // cost model predicts the cache only).
      w.kv("measured_tpm_ratio_cache_only", safeDiv(rg->tpmCache, v->tpmCache));
      w.kv("measured_cache_only_over_predicted", safeDiv(safeDiv(rg->tpmCache, v->tpmCache), predicted));
      // Batch 1: weight bytes per token alone (1 / ratio_weight_bytes) and the batch-1
      // rooflines (weights + KV reads at the mean context).
      w.kv("predicted_batch1_decode_ratio_weight_bytes", safeDiv(1.0, pc.ratioWeight));
      w.kv("predicted_batch1_decode_ratio_roofline", safeDiv(rg->roofB1.decodeTps, v->roofB1.decodeTps));
      w.kv("measured_batch1_decode_ratio", safeDiv(rg->b1Decode.median, v->b1Decode.median));
      w.endObj();
    }
    w.key("achieved_over_roofline_decode");
    w.beginObj();
    for (auto &c : cells)
      if (c.setting == sd.name) w.kv(c.model + "/" + c.mode, c.achievedDecode);
    w.endObj();
    w.key("prefill_over_sgemm");
    w.beginObj();
    for (auto &c : cells)
      if (c.setting == sd.name) w.kv(c.model + "/" + c.mode, c.prefillOverSgemm);
    w.endObj();
    w.endObj();
  }
  w.endObj();

  // ---- peers (run_peers.py's JSON as it wrote it) and photon / peer at equal batch
  std::vector<const Json *> peerRuns;
  if (const Json *pr = peersRan ? jget(&peersJson, "runs") : nullptr)
    if (pr->is_array())
      for (auto &r : *pr) peerRuns.push_back(&r);
  w.key("peers");
  if (peersRan) w.value(peersJson);
  else if (!peersError.empty()) {
    w.beginObj();
    w.kv("error", peersError);
    w.endObj();
  } else w.null();
  w.key("peer_ratios");
  w.beginArr();
  for (const Json *pr : peerRuns) {
    const Json *ps = jget(pr, "setting"), *pp = jget(pr, "peer"), *pk = jget(pr, "kind");
    if (!ps || !pp || !pk) continue;
    const Cell *v = findCell(B, "vanilla", jstr(ps));
    if (!v) continue;
    int b = static_cast<int>(jnumber(pr, "batch", 1));
    double pd = jnumber(pr, "decode_tps", NAN), pf = jnumber(pr, "prefill_tps", NAN),
           pt = jnumber(pr, "throughput_tps", NAN);
    double d = atBatch(v, b, &RunResult::decodeTps), f = atBatch(v, b, &RunResult::prefillTps),
           t = atBatch(v, b, &RunResult::throughput);
    w.beginObj();
    w.kv("setting", jstr(ps));
    w.kv("peer", jstr(pp));
    w.kv("kind", jstr(pk));
    w.kv("batch", b);
    w.kv("photon_decode_tps", d);
    w.kv("peer_decode_tps", pd);
    w.kv("decode_photon_over_peer", safeDiv(d, pd));
    w.kv("photon_prefill_tps", f);
    w.kv("peer_prefill_tps", pf);
    w.kv("prefill_photon_over_peer", safeDiv(f, pf));
    w.kv("photon_throughput_tps", t);
    w.kv("peer_throughput_tps", pt);
    w.kv("throughput_photon_over_peer", safeDiv(t, pt));
    w.endObj();
  }
  w.endArr();

  w.key("targets");
  w.beginObj();
  {
    const Cell *v = findCell(B, "vanilla", "DE"), *rg = findCell(B, "recgen", "DE");
    if (v && rg) {
      double r = safeDiv(rg->b1Decode.median, v->b1Decode.median);
      w.key("recgen_batch1_decode_speedup");
      w.beginObj();
      w.kv("value", r);
      w.kv("target", 5.0);
      w.kv("met", std::isfinite(r) && r >= 5.0);
      w.kv("cost_model_weight_bytes", safeDiv(1.0, rg->m->cost.ratioWeight));
      w.endObj();
    }
    if (v) {
      double r = v->achievedB1;
      w.key("vanilla_batch1_decode_over_bandwidth_roofline");
      w.beginObj();
      w.kv("value", r);
      w.kv("target", 0.9);
      w.kv("met", std::isfinite(r) && r >= 0.9);
      w.endObj();
      for (const Json *pr : peerRuns) {
        const Json *ps = jget(pr, "setting"), *pp = jget(pr, "peer");
        if (!ps || !pp || jstr(ps) != "DE" || jstr(pp) != "onnxruntime" || jnumber(pr, "batch", 1) != 1) continue;
        double x = safeDiv(v->b1Decode.median, jnumber(pr, "decode_tps", NAN));
        w.key("vanilla_batch1_decode_over_onnxruntime");
        w.beginObj();
        w.kv("value", x);
        w.kv("target", 1.0);
        w.kv("met", std::isfinite(x) && x > 1.0);
        w.endObj();
        break;
      }
    }
    if (v && rg && rg->m->cost.present) {
      double predicted = safeDiv(safeDiv(rg->roof.decodeTps, v->roof.decodeTps), predictedMemoryRatio(*rg, *v));
      double r = safeDiv(safeDiv(rg->tpm, v->tpm), predicted);
      w.key("de_tpm_ratio_over_cost_model");
      w.beginObj();
      w.kv("value", r);
      w.kv("target", 0.9);
      w.kv("met", std::isfinite(r) && r >= 0.9);
      w.endObj();
    }
  }
  w.endObj();
  noisyRuns = runsTotal = 0;
  otherMax = 0;
  auto countRuns = [&](const std::vector<RunResult> &rs) {
    for (auto &r : rs) {
      ++runsTotal;
      noisyRuns += r.noisy;
      otherMax = std::max(otherMax, r.otherCores);
    }
  };
  for (auto &c : cells) countRuns(c.runs);
  countRuns(sweepRuns);
  countRuns(rooflineRuns);
  w.key("noise");
  w.beginObj();
  w.kv("runs", runsTotal);
  w.kv("noisy_runs", noisyRuns);
  w.kv("other_cpu_cores_max", otherMax);
  w.endObj();
  w.kv("all_ok", !anyFailed);
  w.endObj();
  return w.str() + "\n";
}

void emit(Bench &B, bool complete) {
  const Options &o = B.o;
  bool &jsonWriteFailed = B.jsonWriteFailed;
  if (o.json.empty() || jsonWriteFailed) return;
  std::string text = buildJson(B, complete);
  std::string tmp = o.json + ".tmp";
  {
    std::ofstream f(tmp);
    f << text;
    f.flush();
    if (!f) {
      std::fprintf(stderr, "photon-bench: cannot write %s: %s\n", tmp.c_str(), std::strerror(errno));
      jsonWriteFailed = true;
      return;
    }
  }
  if (std::rename(tmp.c_str(), o.json.c_str()) != 0) {
    std::fprintf(stderr, "photon-bench: cannot rename %s to %s: %s\n", tmp.c_str(), o.json.c_str(), std::strerror(errno));
    jsonWriteFailed = true;
  }
}

void printSummary(Bench &B) {
  const Machine &mc = B.mc;
  const SgemmRef &sg = B.sg;
  const std::deque<Cell> &cells = B.cells;
  const std::vector<RunResult> &sweepRuns = B.sweepRuns;
  const std::vector<RunResult> &rooflineRuns = B.rooflineRuns;
  const std::string &loadavgStart = B.loadavgStart;
  const int noisyRuns = B.noisyRuns, runsTotal = B.runsTotal;
// ---- summary on stdout
std::printf("%-16s %-8s %-3s %6s %12s %12s %12s %12s %12s %10s\n", "model", "mode", "set", "batch",
            "thr tok/s", "decode tok/s", "b1 decode", "MiB/sample", "TPM K", "pf/sgemm");
for (auto &c : cells)
  std::printf("%-16s %-8s %-3s %6d %12.1f %12.1f %12.1f %12.2f %12.3f %10.3f%s%s\n", c.model.c_str(),
              c.mode.c_str(), c.setting.c_str(), c.tunedBatch, c.thr.median, c.decode.median,
              c.b1Decode.median, c.memSlope / 1048576.0, c.tpm / 1000.0, c.prefillOverSgemm,
              c.noisy ? " noisy" : "", c.error.empty() ? "" : " FAILED");
for (auto &r : sweepRuns)
  std::printf("sweep %-16s %-8s ctx %6d prefill %10.1f tok/s decode %8.1f tok/s%s\n",
              r.spec.model->name.c_str(), r.spec.mode.label.c_str(), r.spec.prompt + r.spec.gen,
              r.prefillTps(), r.decodeTps(), r.ok ? "" : " FAILED");
for (auto &r : rooflineRuns)
  std::printf("roofline %-16s %-8s decode %8.1f tok/s%s\n", r.spec.model->name.c_str(),
              r.spec.mode.label.c_str(), r.decodeTps(), r.ok ? "" : " FAILED");
if (sg.available)
  std::printf("sgemm reference (OpenBLAS, M = %d): %.1f/%.1f GFLOP/s (1/2 threads)\n", sg.m, sg.gflops1, sg.gflops2);
else
  std::printf("sgemm reference: not measured: %s\n", sg.error.c_str());
std::printf("machine: read %.1f/%.1f GB/s (1/2 threads), FP32 %.1f/%.1f GFLOP/s; %d of %d runs noisy; loadavg %s -> %s\n",
            mc.bw1, mc.bw2, mc.flops1 / 1e9, mc.flops2 / 1e9, noisyRuns, runsTotal, loadavgStart.c_str(),
            loadavg().c_str());
}

}  // namespace bench
