// photon-bench's setup: loading the artifacts (and their compile-time cost models), the
// machine's measured limits, the settings and the OpenBLAS sgemm reference.
#include <fstream>
#include <sstream>
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

std::string baseName(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  size_t s = p.find_last_of('/');
  std::string b = s == std::string::npos ? p : p.substr(s + 1);
  if (b.size() > 7 && b.compare(b.size() - 7, 7, ".photon") == 0) b.resize(b.size() - 7);
  return b;
}

bool readFile(const std::string &path, std::string &out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::stringstream ss;
  ss << f.rdbuf();
  out = ss.str();
  return true;
}

void readCostModel(Model &m) {
  std::string text, err;
  if (!readFile(m.path + "/manifest.json", text)) return;
  Json root;
  if (!parseJson(text, root, err)) return;
  const Json *cm = jget(&root, "cost_model");
  if (const Json *st = jget(&root, "stages"))
    if (st->is_array())
      for (auto &s : *st) {
        const Json *n = jget(&s, "name"), *args = jget(&s, "args");
        if (!n || jstr(n) != "token_next" || !args || !args->is_array()) continue;
        for (auto &a : *args) {
          const Json *an = jget(&a, "name"), *sh = jget(&a, "shape");
          if (!an || jstr(an) != "cache" || !sh || !sh->is_array() || sh->size() < 2) continue;
          double floats = 1;
          for (size_t i = 1; i < sh->size(); ++i) floats *= (*sh)[i].is_number() ? (*sh)[i].get<double>() : 0;
          m.windowBytes = 4 * floats;
        }
      }
  // The engine keeps one window per chunk stream of a sequence (token_next steps them together).
  if (const Json *cm0 = jget(&root, "cost_model")) m.windowBytes *= std::max(1.0, jnumber(cm0, "token_streams_per_step", 1));
  if (const Json *mp = jget(&root, "memory_plan")) m.plannedBytesPerSeq = jnumber(mp, "per_sequence_bytes", -1);
  if (!cm) return;
  CostModel &c = m.cost;
  c.present = true;
  c.weightBytesPerToken = jnumber(cm, "weight_bytes_per_token");
  c.flopsPerToken = jnumber(cm, "flops_per_token");
  c.prefillFlopsPerToken = jnumber(cm, "prefill_flops_per_token", c.flopsPerToken);
  const Json *rg = jget(cm, "recgen");
  c.recWeightBytesPerToken = rg ? jnumber(rg, "weight_bytes_per_token", c.weightBytesPerToken)
                                : c.weightBytesPerToken;
  c.recFlopsPerToken = rg ? jnumber(rg, "flops_per_token", c.flopsPerToken) : c.flopsPerToken;
  if (const Json *cb = jget(cm, "cache_bytes_per_1k_tokens")) {
    c.cacheHierPer1k = jnumber(cb, "total");
    c.cacheRecPer1k = jnumber(cb, "recgen", c.cacheHierPer1k);
  }
  if (const Json *v = jget(cm, "vanilla")) {
    c.vWeightBytesPerToken = jnumber(v, "weight_bytes_per_token");
    c.vFlopsPerToken = jnumber(v, "flops_per_token");
    c.vCachePer1k = jnumber(v, "cache_bytes_per_1k_tokens");
    c.vLayers = jnumber(v, "layers");
    c.vNonCachePerSeq = jnumber(v, "non_cache_bytes_per_sequence", -1);
  }
  if (const Json *nc = jget(cm, "non_cache_bytes_per_sequence")) {
    c.nonCachePerSeq = jnumber(nc, "total", -1);
    c.recgenNonCachePerSeq = jnumber(nc, "recgen_total", c.nonCachePerSeq);
  }
  if (const Json *r = jget(cm, "ratio_to_vanilla")) {
    c.ratioCacheRec = jnumber(r, "cache_recgen");
    c.ratioCacheHier = jnumber(r, "cache_hiergen");
    c.ratioWeight = jnumber(r, "weight_bytes");
    c.ratioFlops = jnumber(r, "flops");
  }
}

const char *familyName(photon_family f) {
  switch (f) {
    case PHOTON_FAMILY_PHOTON: return "photon";
    case PHOTON_FAMILY_BLOCK: return "block";
    case PHOTON_FAMILY_VANILLA: return "vanilla";
    case PHOTON_FAMILY_FORWARD: return "forward";
  }
  return "?";
}

std::vector<ModeSpec> modesOf(const Model &m) {
  switch (m.info.family) {
    case PHOTON_FAMILY_VANILLA: return {{"vanilla", PHOTON_MODE_HIERGEN}};
    case PHOTON_FAMILY_BLOCK: return {{"block", PHOTON_MODE_HIERGEN}};
    case PHOTON_FAMILY_PHOTON: {
      std::vector<ModeSpec> v{{"hiergen", PHOTON_MODE_HIERGEN}};
      if (m.info.has_recgen) v.push_back({"recgen", PHOTON_MODE_RECGEN});
      return v;
    }
  }
  return {};
}

int setup(Bench &B) {
  Options &o = B.o;
  std::vector<Model> &models = B.models;
  Machine &mc = B.mc;
  SgemmRef &sg = B.sg;
  std::vector<SettingDef> &settings = B.settings;
  const bool quick = o.suite == "quick";
  // ---- models
  for (auto &p : o.models) {
    Model m;
    m.path = p;
    m.name = baseName(p);
    photon_load_options lo;
    photon_load_options_defaults(&lo);
    lo.verify_checksum = o.checksum ? 1 : 0;
    photon_status st = photon_model_load(p.c_str(), &lo, &m.handle);
    if (st != PHOTON_OK) {
      std::fprintf(stderr, "photon-bench: %s: %s: %s\n", p.c_str(), photon_status_string(st), photon_last_error());
      return 2;
    }
    m.info.struct_size = sizeof m.info;
    photon_model_get_info(m.handle, &m.info);
    m.params = m.info.weights_bytes / 4.0;
    readCostModel(m);
    models.push_back(std::move(m));
  }

  B.loadavgStart = loadavg();
  // ---- machine limits
  {
    CpuSample a, b;
    readProcStat(a);
    double t0 = nowSec();
    int reps = quick ? 2 : 5;
    mc.bw1 = measureReadBandwidth(o.bwBytes, 1, reps);
    mc.bw2 = measureReadBandwidth(o.bwBytes, 2, reps);
    double fs = quick ? 0.02 : (o.suite == "roofline" ? 0.5 : 0.2);
    mc.flops1 = measurePeakFlops(fs, 1);
    mc.flops2 = measurePeakFlops(fs, 2);
    mc.seconds = nowSec() - t0;
    readProcStat(b);
    // Our own threads were busy all the time (1 or 2 of them): report the rest.
    double busy = (b.busyTicks - a.busyTicks) / ticksPerSecond();
    mc.otherCores = std::max(0.0, busy / std::max(mc.seconds, 1e-9) - 1.5);
    if (o.verbose)
      std::fprintf(stderr, "machine: read %.1f GB/s (1 thread), %.1f GB/s (2); FP32 %.1f GFLOP/s (1), %.1f (2)\n",
                   mc.bw1, mc.bw2, mc.flops1 / 1e9, mc.flops2 / 1e9);
  }

  settings.clear();
  if (quick) settings = {{"PF", 64, 16}, {"DE", 16, 64}};
  else settings = {{"PF", 2048, 128}, {"DE", 128, 2048}};
  for (auto &s : settings) {
    auto it = o.lengths.find(s.name);
    if (it != o.lengths.end()) s.prompt = it->second.first, s.gen = it->second.second;
  }
  if (!o.settings.empty()) {
    std::vector<SettingDef> keep;
    for (auto &s : settings)
      if (std::find(o.settings.begin(), o.settings.end(), s.name) != o.settings.end()) keep.push_back(s);
    settings = keep;
  }

  // ---- OpenBLAS sgemm on the prefill matmul shapes (the vanilla layer of the models' width;
  // the cost models' FLOPs are these matmuls' FLOPs)
  if (!o.sgemm) {
    sg.error = "skipped (--no-sgemm)";
  } else {
    const Model *ref = nullptr;
    for (auto &m : models)
      if (m.cost.present && m.cost.vLayers > 0 && m.cost.vFlopsPerToken > 0 &&
          (!ref || m.info.family == PHOTON_FAMILY_VANILLA))
        ref = &m;
    if (!ref) {
      sg.error = "no manifest with a cost model (vanilla layer count and FLOPs)";
    } else {
      const int D = ref->info.width, V = ref->info.vocab;
      const double L = ref->cost.vLayers;
      // vanilla FLOPs/token = 2 (L (4 D^2 + 3 D F) + D V): solve for the FFN width F.
      double perLayer = (ref->cost.vFlopsPerToken / 2 - static_cast<double>(D) * V) / L;
      int F = static_cast<int>(std::lround((perLayer - 4.0 * D * D) / (3.0 * D)));
      if (F <= 0) F = (8 * D + 2) / 3;
      int M = 2048;
      for (auto &s : settings)
        if (s.name == "PF") M = s.prompt;
      M = std::max(16, std::min(M, 2048));
      std::vector<GemmShape> shapes = {{"attention q/k/v/o (D x D)", D, D, 4 * L},
                                       {"ffn gate/up (F x D)", F, D, 2 * L},
                                       {"ffn down (D x F)", D, F, L},
                                       {"lm_head (V x D)", V, D, 1}};
      sg = measureSgemmRef(M, shapes, quick ? 0.01 : 0.3);
    }
    if (o.verbose) {
      if (sg.available)
        std::fprintf(stderr, "sgemm reference (%s, M = %d): %.1f GFLOP/s (1 thread), %.1f (2)\n",
                     sg.library.c_str(), sg.m, sg.gflops1, sg.gflops2);
      else
        std::fprintf(stderr, "sgemm reference: not measured: %s\n", sg.error.c_str());
    }
  }
  B.budgetBytes = o.budgetGiB * 1073741824.0;
  return -1;
}

}  // namespace bench
