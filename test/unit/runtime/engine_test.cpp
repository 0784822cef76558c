// Generation engine over the stage ABI, exercised with the test model (testmodel/): greedy
// HierGen / Block / vanilla generations must equal the argmax of the model's teacher-forced
// `forward` at every generated position (exactness through the paged caches, the decoder
// shift, the start latents and forced prompt tokens), and seeded sampling must give the same
// tokens alone or in any batch (continuous batching).
#include "engine.h"
#include "test_artifact.h"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <map>
#include <random>

using namespace photon::rt;

namespace {

struct Out {
  std::vector<int32_t> tokens;
  photon_finish finish = PHOTON_FINISH_NONE;
  int calls = 0;
};

class EngineTest : public ::testing::Test {
protected:
  std::unique_ptr<Model> load(const std::string &family) {
    static int counter = 0;
    std::string dir = ::testing::TempDir() + "photon-engine-" + family + "-" + std::to_string(getpid()) +
                      "-" + std::to_string(counter++);
    photon_test::ArtifactOptions o;
    o.family = family;
    std::string err;
    EXPECT_TRUE(photon_test::writeArtifact(dir, o, err)) << err;
    std::unique_ptr<Model> m;
    Status st = Model::load(dir, {}, m);
    EXPECT_TRUE(st.isOk()) << st.message();
    return m;
  }
  static int protocolErrors(const Model &m) {
    void *h = dlopen((m.dir() + "/model.so").c_str(), RTLD_NOW | RTLD_NOLOAD);
    if (!h) return -1;
    auto fn = reinterpret_cast<int (*)()>(dlsym(h, "photon_test_errors"));
    int e = fn ? fn() : -1;
    dlclose(h);
    return e;
  }
  static std::map<uint64_t, Out> runAll(Engine &e) {
    std::map<uint64_t, Out> out;
    Status st = e.run([&](uint64_t id, const int32_t *t, size_t n, photon_finish f) {
      Out &o = out[id];
      o.tokens.insert(o.tokens.end(), t, t + n);
      o.finish = f;
      ++o.calls;
      return true;
    });
    EXPECT_TRUE(st.isOk()) << st.message();
    return out;
  }
  // Teacher-forced greedy check: every generated token is the argmax of forward's logits.
  static void expectGreedyExact(const Model &m, const std::vector<int32_t> &prompt,
                                const std::vector<int32_t> &gen, bool vanilla) {
    std::vector<int32_t> all = prompt;
    all.insert(all.end(), gen.begin(), gen.end());
    int tps = m.manifest().tokensPerStep();
    int64_t T = (static_cast<int64_t>(all.size()) + tps - 1) / tps * tps;
    std::vector<int32_t> padded(all);
    padded.resize(static_cast<size_t>(T), 0);
    std::vector<float> logits(static_cast<size_t>(T) * 256);
    ASSERT_TRUE(forwardLogits(m, padded.data(), 1, static_cast<int32_t>(T), logits.data()).isOk());
    for (size_t i = prompt.size(); i < all.size(); ++i) {
      size_t row = vanilla ? i - 1 : i; // vanilla: logits[t] is the distribution of token t+1
      EXPECT_EQ(argmax(logits.data() + row * 256, 256), all[i])
          << "position " << i << " (prompt " << prompt.size() << ")";
    }
  }
  static std::vector<int32_t> randomPrompt(std::mt19937 &rng, size_t n) {
    std::vector<int32_t> p(n);
    for (auto &t : p) t = static_cast<int32_t>(rng() % 256);
    return p;
  }
};

} // namespace

TEST_F(EngineTest, HierGenGreedyEqualsTeacherForcedArgmax) {
  auto m = load("photon");
  std::unique_ptr<Engine> e;
  ASSERT_TRUE(Engine::create(*m, {}, e).isOk());
  std::mt19937 rng(11);
  std::vector<std::vector<int32_t>> prompts;
  for (size_t len : {0, 1, 5, 15, 16, 17, 21, 32, 40, 100}) prompts.push_back(randomPrompt(rng, len));
  SamplingParams p;
  p.maxTokens = 37;
  std::vector<uint64_t> ids;
  for (auto &pr : prompts) {
    uint64_t id;
    ASSERT_TRUE(e->submit(pr, p, id).isOk());
    ids.push_back(id);
  }
  auto out = runAll(*e);
  for (size_t i = 0; i < prompts.size(); ++i) {
    const Out &o = out[ids[i]];
    ASSERT_EQ(o.tokens.size(), 37u) << "prompt " << i;
    EXPECT_EQ(o.finish, PHOTON_FINISH_LENGTH);
    expectGreedyExact(*m, prompts[i], o.tokens, false);
  }
  EXPECT_EQ(protocolErrors(*m), 0);
  EXPECT_EQ(e->cache().inUseBytes(), 0u);
  EXPECT_EQ(e->cache().reservedBytes(), 0u);
  EXPECT_GT(e->cache().peakBytes(0), 0u);
  EXPECT_EQ(e->stats().peakBatch, 10);
}

TEST_F(EngineTest, BlockAndVanillaGreedyEqualTeacherForcedArgmax) {
  for (const char *fam : {"block", "vanilla"}) {
    auto m = load(fam);
    std::unique_ptr<Engine> e;
    ASSERT_TRUE(Engine::create(*m, {}, e).isOk());
    std::mt19937 rng(5);
    std::vector<std::vector<int32_t>> prompts;
    for (size_t len : {1, 3, 4, 9, 300}) prompts.push_back(randomPrompt(rng, len));
    SamplingParams p;
    p.maxTokens = 23;
    std::vector<uint64_t> ids;
    for (auto &pr : prompts) {
      uint64_t id;
      ASSERT_TRUE(e->submit(pr, p, id).isOk());
      ids.push_back(id);
    }
    auto out = runAll(*e);
    for (size_t i = 0; i < prompts.size(); ++i) {
      ASSERT_EQ(out[ids[i]].tokens.size(), 23u) << fam;
      expectGreedyExact(*m, prompts[i], out[ids[i]].tokens, std::string(fam) == "vanilla");
    }
    EXPECT_EQ(protocolErrors(*m), 0) << fam;
    EXPECT_EQ(e->cache().inUseBytes(), 0u);
    // RecGen needs a hierarchy.
    EngineOptions ro;
    ro.mode = PHOTON_MODE_RECGEN;
    Status st = Engine::create(*m, ro, e);
    EXPECT_EQ(st.code(), PHOTON_ERR_UNSUPPORTED);
    EXPECT_NE(st.message().find("--mode hiergen"), std::string::npos) << st.message();
  }
}

TEST_F(EngineTest, SeededSamplingIsBatchInvariantUnderContinuousBatching) {
  auto m = load("photon");
  std::mt19937 rng(3);
  struct Req { std::vector<int32_t> prompt; SamplingParams p; };
  std::vector<Req> reqs;
  for (int i = 0; i < 7; ++i) {
    Req r;
    r.prompt = randomPrompt(rng, static_cast<size_t>(rng() % 40));
    r.p.temperature = 0.9f;
    r.p.topK = 40;
    r.p.topP = 0.95f;
    r.p.repetitionPenalty = i % 2 ? 1.3f : 1.0f;
    r.p.seed = 1000 + i;
    r.p.maxTokens = 10 + static_cast<int>(rng() % 50); // leave at different steps
    reqs.push_back(r);
  }
  auto runWith = [&](int maxBatch, photon_mode mode, bool alone) {
    std::vector<std::vector<int32_t>> res;
    EngineOptions o;
    o.maxBatch = maxBatch;
    o.mode = mode;
    if (alone) {
      for (auto &r : reqs) {
        std::unique_ptr<Engine> e;
        EXPECT_TRUE(Engine::create(*m, o, e).isOk());
        uint64_t id;
        EXPECT_TRUE(e->submit(r.prompt, r.p, id).isOk());
        res.push_back(runAll(*e)[id].tokens);
      }
      return res;
    }
    std::unique_ptr<Engine> e;
    EXPECT_TRUE(Engine::create(*m, o, e).isOk());
    std::vector<uint64_t> ids;
    for (auto &r : reqs) {
      uint64_t id;
      EXPECT_TRUE(e->submit(r.prompt, r.p, id).isOk());
      ids.push_back(id);
    }
    auto out = runAll(*e);
    for (uint64_t id : ids) res.push_back(out[id].tokens);
    EXPECT_EQ(e->cache().inUseBytes(), 0u);
    return res;
  };
  for (photon_mode mode : {PHOTON_MODE_HIERGEN, PHOTON_MODE_RECGEN}) {
    auto alone = runWith(1, mode, true);
    EXPECT_EQ(alone, runWith(64, mode, false)) << "all in one batch, mode " << mode;
    EXPECT_EQ(alone, runWith(3, mode, false)) << "joining and leaving, mode " << mode;
    for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(alone[i].size(), static_cast<size_t>(reqs[i].p.maxTokens));
  }
  EXPECT_EQ(protocolErrors(*m), 0);
}

TEST_F(EngineTest, RecGenKeepsOnlyTheTopLevelCache) {
  auto m = load("photon");
  EngineOptions o;
  o.mode = PHOTON_MODE_RECGEN;
  std::unique_ptr<Engine> e;
  ASSERT_TRUE(Engine::create(*m, o, e).isOk());
  std::mt19937 rng(9);
  auto prompt = randomPrompt(rng, 40); // 2 complete meta-contexts + 8 forced tokens
  SamplingParams p;
  p.maxTokens = 200;
  uint64_t id;
  ASSERT_TRUE(e->submit(prompt, p, id).isOk());
  auto out = runAll(*e);
  ASSERT_EQ(out[id].tokens.size(), 200u);
  // Level 1 held only the prompt's 8 units (2 blocks of 4) during the prefill; level 2 grows
  // to ceil(240/16) - 1 = 14 units = 4 blocks.
  EXPECT_EQ(e->cache().peakBytes(0), 2u * 4 * 16);
  EXPECT_EQ(e->cache().peakBytes(1), 4u * 4 * 16);
  EXPECT_EQ(e->cache().inUseBytes(), 0u);
  // The same prompt under HierGen generates differently (RecGen encodes Xhat, not X).
  std::unique_ptr<Engine> h;
  ASSERT_TRUE(Engine::create(*m, {}, h).isOk());
  ASSERT_TRUE(h->submit(prompt, p, id).isOk());
  auto hout = runAll(*h);
  EXPECT_NE(hout[id].tokens, out[1].tokens);
  // The first meta-context after the prompt depends only on the encoded prompt: equal.
  EXPECT_TRUE(std::equal(out[1].tokens.begin(), out[1].tokens.begin() + 8, hout[id].tokens.begin()));
  EXPECT_EQ(protocolErrors(*m), 0);
}

TEST_F(EngineTest, StopStringsAndMaxTokens) {
  auto m = load("photon");
  std::unique_ptr<Engine> e;
  ASSERT_TRUE(Engine::create(*m, {}, e).isOk());
  std::vector<int32_t> prompt = {'a', 'b', 'c'};
  SamplingParams p;
  p.maxTokens = 40;
  uint64_t id;
  ASSERT_TRUE(e->submit(prompt, p, id).isOk());
  std::vector<int32_t> full = runAll(*e)[id].tokens;
  ASSERT_EQ(full.size(), 40u);
  // Stop at the bytes of tokens 20..21: the output ends right before their first occurrence.
  std::string text(full.begin(), full.end());
  std::string stop = text.substr(20, 2);
  size_t first = text.find(stop);
  p.stop = {stop};
  ASSERT_TRUE(e->submit(prompt, p, id).isOk());
  Out o = runAll(*e)[id];
  EXPECT_EQ(o.finish, PHOTON_FINISH_STOP);
  EXPECT_EQ(o.tokens, std::vector<int32_t>(full.begin(), full.begin() + first));
  // Max tokens 5: five tokens, finish = length, a prefix of the long run.
  p.stop.clear();
  p.maxTokens = 5;
  ASSERT_TRUE(e->submit(prompt, p, id).isOk());
  o = runAll(*e)[id];
  EXPECT_EQ(o.finish, PHOTON_FINISH_LENGTH);
  EXPECT_EQ(o.tokens, std::vector<int32_t>(full.begin(), full.begin() + 5));
  EXPECT_EQ(e->cache().inUseBytes(), 0u);
}

TEST_F(EngineTest, BudgetRefusalAndWaiting) {
  auto m = load("photon");
  EngineOptions o;
  o.memoryBudget = 10 * 64; // ten 64-byte blocks (4 units x 16 bytes)
  std::unique_ptr<Engine> e;
  ASSERT_TRUE(Engine::create(*m, o, e).isOk());
  SamplingParams p;
  p.maxTokens = 2000;
  uint64_t id;
  Status st = e->submit({1, 2, 3}, p, id);
  ASSERT_EQ(st.code(), PHOTON_ERR_OUT_OF_BUDGET);
  EXPECT_NE(st.message().find("context 2003 needs"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("at level 1"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("640 B"), std::string::npos) << st.message();
  // Two requests that each fit alone but not together: the second waits, both finish.
  p.maxTokens = 100; // 116 tokens -> 7 metas encoded -> 28 level-1 units (7 blocks) + 7 level-2 units (2 blocks)
  uint64_t a, b;
  ASSERT_TRUE(e->submit({1}, p, a).isOk());
  ASSERT_TRUE(e->submit({2}, p, b).isOk());
  std::map<uint64_t, Out> out;
  auto cb = [&](uint64_t rid, const int32_t *t, size_t n, photon_finish f) {
    out[rid].tokens.insert(out[rid].tokens.end(), t, t + n);
    out[rid].finish = f;
    return true;
  };
  int active = 0;
  ASSERT_TRUE(e->step(cb, active).isOk());
  EXPECT_EQ(e->activeCount(), 1u); // b waits: the budget holds only one of them
  EXPECT_EQ(e->waitingCount(), 1u);
  EXPECT_EQ(active, 2);
  ASSERT_TRUE(e->run(cb).isOk());
  EXPECT_EQ(out[a].tokens.size(), 100u);
  EXPECT_EQ(out[b].tokens.size(), 100u);
  EXPECT_EQ(e->cache().inUseBytes(), 0u);
}

TEST_F(EngineTest, CancelStopsCleanly) {
  auto m = load("photon");
  std::unique_ptr<Engine> e;
  ASSERT_TRUE(Engine::create(*m, {}, e).isOk());
  SamplingParams p;
  p.maxTokens = 1000;
  uint64_t id;
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(e->submit({1, 2}, p, id).isOk());
  int calls = 0;
  std::map<uint64_t, photon_finish> fin;
  Status st = e->run([&](uint64_t rid, const int32_t *, size_t, photon_finish f) {
    fin[rid] = f;
    return ++calls < 6; // cancel from the callback
  });
  EXPECT_EQ(st.code(), PHOTON_ERR_CANCELLED);
  EXPECT_EQ(fin.size(), 4u);
  for (auto &kv : fin) EXPECT_EQ(kv.second, PHOTON_FINISH_CANCELLED);
  EXPECT_EQ(e->cache().inUseBytes(), 0u);
  EXPECT_EQ(e->cache().reservedBytes(), 0u);
  EXPECT_EQ(e->activeCount() + e->waitingCount(), 0u);
}

// Soak: 1,000 requests of random lengths and sampling settings through the engine (cache
// manager + sampler + scheduler) under a tight budget; afterwards the cache accounting is
// back at zero and the model saw no protocol violation.
TEST_F(EngineTest, SoakThousandRequests) {
  auto m = load("photon");
  EngineOptions o;
  o.memoryBudget = 256 * 64; // 256 blocks of 64 bytes: requests have to wait for each other
  o.maxBatch = 16;
  std::unique_ptr<Engine> e;
  ASSERT_TRUE(Engine::create(*m, o, e).isOk());
  std::mt19937 rng(2024);
  std::map<uint64_t, int> expectLen;
  int submitted = 0, refused = 0;
  size_t finished = 0;
  std::map<uint64_t, size_t> got;
  auto cb = [&](uint64_t id, const int32_t *, size_t n, photon_finish f) {
    got[id] += n;
    if (f != PHOTON_FINISH_NONE) ++finished;
    return true;
  };
  int active = 1;
  while (submitted < 1000 || active > 0) {
    for (int k = 0; k < 3 && submitted < 1000; ++k, ++submitted) {
      SamplingParams p;
      p.maxTokens = 1 + static_cast<int>(rng() % 120);
      p.temperature = (rng() % 2) ? 0.8f : 0.0f;
      p.seed = rng();
      uint64_t id;
      Status st = e->submit(randomPrompt(rng, rng() % 70), p, id);
      if (st.isOk()) expectLen[id] = p.maxTokens;
      else { ASSERT_EQ(st.code(), PHOTON_ERR_OUT_OF_BUDGET); ++refused; }
    }
    Status st = e->step(cb, active);
    ASSERT_TRUE(st.isOk()) << st.message();
    std::string why;
    ASSERT_TRUE(e->cache().checkInvariants(why)) << why;
  }
  EXPECT_EQ(finished, expectLen.size());
  for (auto &kv : expectLen) EXPECT_EQ(got[kv.first], static_cast<size_t>(kv.second)) << kv.first;
  EXPECT_EQ(submitted, 1000);
  EXPECT_EQ(static_cast<size_t>(submitted - refused), expectLen.size());
  EXPECT_EQ(e->cache().inUseBytes(), 0u);
  EXPECT_EQ(e->cache().reservedBytes(), 0u);
  EXPECT_LE(e->cache().peakTotalBytes(), o.memoryBudget);
  EXPECT_EQ(e->stats().requestsFinished, expectLen.size());
  EXPECT_EQ(protocolErrors(*m), 0);
}

TEST_F(EngineTest, RecGenOverlapChangesNothingButTiming) {
  auto m = load("photon");
  std::mt19937 rng(77);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 5; ++i) prompts.push_back(randomPrompt(rng, rng() % 50));
  auto run = [&](int overlap) {
    EngineOptions o;
    o.mode = PHOTON_MODE_RECGEN;
    o.overlapRecGen = overlap;
    std::unique_ptr<Engine> e;
    EXPECT_TRUE(Engine::create(*m, o, e).isOk());
    std::vector<uint64_t> ids;
    for (size_t i = 0; i < prompts.size(); ++i) {
      SamplingParams p;
      p.maxTokens = 20 + static_cast<int>(i) * 13;
      p.temperature = 0.7f;
      p.seed = i;
      uint64_t id;
      EXPECT_TRUE(e->submit(prompts[i], p, id).isOk());
      ids.push_back(id);
    }
    auto out = runAll(*e);
    std::vector<std::vector<int32_t>> res;
    for (uint64_t id : ids) res.push_back(out[id].tokens);
    EXPECT_EQ(e->cache().inUseBytes(), 0u);
    EXPECT_EQ(e->cache().reservedBytes(), 0u);
    return res;
  };
  auto seq = run(0);
  EXPECT_EQ(seq, run(2)); // always overlapped
  EXPECT_EQ(seq, run(1)); // where it pays (not for this tiny model)
  for (size_t i = 0; i < seq.size(); ++i) EXPECT_EQ(seq[i].size(), 20u + i * 13);
  EXPECT_EQ(protocolErrors(*m), 0);
}
