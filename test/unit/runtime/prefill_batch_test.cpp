// Prefill batched across requests: prompts submitted together are prefilled in shared calls of
// the prefill stage (lm_step for vanilla, encode_1..encode_L for Block and PHOTON), whole or
// in chunks, and every request gets exactly the tokens and the logits it gets when it is
// prefilled and generated alone. Runs on the artifacts compiled from test/fixtures (as
// e2e_test.cpp; skipped with the path tried when they are absent).
#include "artifact.h"
#include "engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <sys/stat.h>

using namespace photon::rt;

namespace {

std::string artifactDir() {
  const char *e = std::getenv("PHOTON_E2E_ARTIFACTS");
  return e && *e ? e : PHOTON_E2E_ARTIFACTS_DEFAULT;
}

bool isDir(const std::string &p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

struct Req {
  std::vector<int32_t> prompt;
  SamplingParams params;
};

// Prompts of different lengths (some shorter than a meta-context, some sharing a length) with
// greedy and seeded sampling.
std::vector<Req> requests(int vocab) {
  std::mt19937 rng(11);
  std::vector<Req> reqs;
  for (int len : {37, 5, 16, 23, 16, 2, 41, 9}) {
    Req r;
    for (int i = 0; i < len; ++i) r.prompt.push_back(static_cast<int32_t>(rng() % vocab));
    r.params.maxTokens = 12;
    r.params.temperature = reqs.size() % 2 ? 0.8f : 0.0f;
    r.params.topP = 0.95f;
    r.params.seed = 100 + reqs.size();
    reqs.push_back(r);
  }
  return reqs;
}

struct Result {
  std::vector<int32_t> tokens;
  std::vector<std::vector<float>> logits; // per generated token, the logits it was drawn from
};

struct Generation {
  std::vector<Result> results; // per request
  EngineStats stats;
};

// together = false: each request alone through its own run; true: all submitted, then one run.
Generation generate(const Model &model, photon_mode mode, const std::vector<Req> &reqs, bool together,
             int64_t prefillChunk, bool batchPrefill = true) {
  Generation run;
  std::map<uint64_t, Result> byId;
  EngineOptions o;
  o.mode = mode;
  o.memoryBudget = 256ull << 20;
  o.prefillChunk = prefillChunk;
  o.batchPrefill = batchPrefill;
  o.logitsObserver = [&](uint64_t id, const float *l, int v) {
    byId[id].logits.emplace_back(l, l + v);
  };
  auto cb = [&](uint64_t id, const int32_t *t, size_t n, photon_finish) {
    byId[id].tokens.insert(byId[id].tokens.end(), t, t + n);
    return true;
  };
  std::unique_ptr<Engine> e;
  std::vector<uint64_t> ids;
  for (const Req &r : reqs) {
    if (!e || !together) {
      if (e) {
        run.stats.prefillCalls += e->stats().prefillCalls;
        run.stats.prefillTokens += e->stats().prefillTokens;
      }
      Status st = Engine::create(model, o, e);
      EXPECT_TRUE(st.isOk()) << st.message();
      if (!st) return run;
    }
    uint64_t id = 0;
    Status st = e->submit(r.prompt, r.params, id);
    EXPECT_TRUE(st.isOk()) << st.message();
    ids.push_back(id);
    if (!together) { // ids restart with every engine
      EXPECT_TRUE(e->run(cb).isOk());
      EXPECT_EQ(e->cache().inUseBytes(), 0u);
      run.results.push_back(byId[id]);
      byId.clear();
    }
  }
  if (together) {
    EXPECT_TRUE(e->run(cb).isOk());
    EXPECT_EQ(e->cache().inUseBytes(), 0u);
    for (uint64_t id : ids) run.results.push_back(byId[id]);
  }
  run.stats.prefillCalls += e->stats().prefillCalls;
  run.stats.prefillTokens += e->stats().prefillTokens;
  run.stats.peakBatch = e->stats().peakBatch;
  return run;
}

// Logits may differ by float rounding only (relative to 1 + |logit|): the first generated
// token's (the prefill's output), and every later one's (rounding differences in the cached
// K/V carry on through the generation).
constexpr float kFirstTolerance = 1e-4f, kTolerance = 1e-3f;

class PrefillBatch : public ::testing::TestWithParam<std::string> {};

} // namespace

TEST_P(PrefillBatch, EqualsPrefillAlone) {
  const std::string name = GetParam();
  const std::string art = artifactDir() + "/" + name + ".photon";
  if (!isDir(art))
    GTEST_SKIP() << "artifact " << art << " not found: compile test/fixtures/" << name;
  std::unique_ptr<Model> model;
  Status st = Model::load(art, {}, model);
  ASSERT_TRUE(st.isOk()) << st.message();
  const Manifest &m = model->manifest();
  const auto reqs = requests(m.vocab);
  int64_t promptTokens = 0;
  for (const Req &r : reqs) promptTokens += static_cast<int64_t>(r.prompt.size());

  std::vector<photon_mode> modes{PHOTON_MODE_HIERGEN};
  if (m.family == PHOTON_FAMILY_PHOTON && m.levels >= 2) modes.push_back(PHOTON_MODE_RECGEN);
  for (photon_mode mode : modes) {
    SCOPED_TRACE(mode == PHOTON_MODE_RECGEN ? "recgen" : "hiergen");
    const Generation alone = generate(*model, mode, reqs, false, 0);
    ASSERT_EQ(alone.results.size(), reqs.size());
    // Whole prompts, and chunks of 24 prompt tokens per step over all sequences.
    for (int64_t chunk : {int64_t(0), int64_t(24)}) {
      SCOPED_TRACE("prefill chunk " + std::to_string(chunk));
      const Generation together = generate(*model, mode, reqs, true, chunk);
      ASSERT_EQ(together.results.size(), reqs.size());
      EXPECT_EQ(together.stats.peakBatch, static_cast<int>(reqs.size()));
      EXPECT_EQ(together.stats.prefillTokens, static_cast<uint64_t>(promptTokens));
      // Batched: fewer calls of the prefill stage than one sequence at a time; with
      // batchPrefill off, together makes as many calls as alone and the same tokens.
      if (chunk == 0) {
        EXPECT_LT(together.stats.prefillCalls, alone.stats.prefillCalls);
        const Generation unbatched = generate(*model, mode, reqs, true, 0, false);
        EXPECT_EQ(unbatched.stats.prefillCalls, alone.stats.prefillCalls);
        for (size_t i = 0; i < reqs.size() && i < unbatched.results.size(); ++i)
          EXPECT_EQ(unbatched.results[i].tokens, alone.results[i].tokens) << "request " << i;
      }
      // Largest |logit difference|: of the first generated token (the prefill's own output),
      // and over every generated token.
      float worstFirst = 0, worst = 0;
      for (size_t i = 0; i < reqs.size(); ++i) {
        SCOPED_TRACE("request " + std::to_string(i) + " (prompt of " +
                     std::to_string(reqs[i].prompt.size()) + " tokens)");
        const Result &a = alone.results[i], &b = together.results[i];
        ASSERT_EQ(a.tokens.size(), static_cast<size_t>(reqs[i].params.maxTokens));
        EXPECT_EQ(b.tokens, a.tokens);
        ASSERT_EQ(b.logits.size(), a.logits.size());
        for (size_t t = 0; t < a.logits.size(); ++t) {
          ASSERT_EQ(b.logits[t].size(), a.logits[t].size());
          for (size_t v = 0; v < a.logits[t].size(); ++v) {
            float d = std::fabs(a.logits[t][v] - b.logits[t][v]);
            worst = std::max(worst, d);
            if (t == 0) worstFirst = std::max(worstFirst, d);
            // Equal up to float rounding: the stage calls see other row counts (the kernels'
            // tiles, and the pieces a prompt is cut into, differ), so not always bit-equal;
            // the differences then grow a little over the generated tokens.
            ASSERT_LE(d, (t == 0 ? kFirstTolerance : kTolerance) * (1.0f + std::fabs(a.logits[t][v])))
                << "logit " << v << " of generated token " << t;
          }
        }
      }
      std::printf("[ prefill batch ] %s %s chunk %lld: max |logit difference| first token "
                  "%.3g, all %.3g, prefill calls %llu (alone %llu)\n",
                  name.c_str(), mode == PHOTON_MODE_RECGEN ? "recgen" : "hiergen",
                  static_cast<long long>(chunk), static_cast<double>(worstFirst),
                  static_cast<double>(worst),
                  static_cast<unsigned long long>(together.stats.prefillCalls),
                  static_cast<unsigned long long>(alone.stats.prefillCalls));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, PrefillBatch,
                         ::testing::Values("vanilla", "block", "photon-c44", "photon-c22",
                                           "photon-l3", "photon-gqa"),
                         [](const ::testing::TestParamInfo<std::string> &i) {
                           std::string s = i.param;
                           for (auto &c : s) if (c == '-') c = '_';
                           return s;
                         });
