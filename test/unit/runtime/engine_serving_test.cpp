// The engine as a server uses it: submissions and cancellations from other threads while a
// scheduler thread steps (through the inbox), the GROW cache policy (admission by the next
// step, preemption and re-prefill when the budget runs out), and each finish reason (EOS,
// stop string, length, context limit, cancelled). Runs on the test model (testmodel/).
#include "engine.h"
#include "test_artifact.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <thread>

using namespace photon::rt;

namespace {

struct Out {
  std::vector<int32_t> tokens;
  photon_finish finish = PHOTON_FINISH_NONE;
  int finals = 0; // calls with a finish reason: exactly one per request
};

std::unique_ptr<Model> loadModel(const std::string &family) {
  static int counter = 0;
  std::string dir = ::testing::TempDir() + "photon-serving-" + family + "-" +
                    std::to_string(getpid()) + "-" + std::to_string(counter++);
  photon_test::ArtifactOptions o;
  o.family = family;
  std::string err;
  EXPECT_TRUE(photon_test::writeArtifact(dir, o, err)) << err;
  std::unique_ptr<Model> m;
  Status st = Model::load(dir, {}, m);
  EXPECT_TRUE(st.isOk()) << st.message();
  return m;
}

struct Req {
  std::vector<int32_t> prompt;
  SamplingParams p;
};

std::vector<Req> makeRequests(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<Req> reqs;
  for (int i = 0; i < n; ++i) {
    Req r;
    r.prompt.resize(1 + rng() % 40);
    for (auto &t : r.prompt) t = static_cast<int32_t>(rng() % 256);
    r.p.temperature = (i % 3) ? 0.9f : 0.0f;
    r.p.topP = 0.95f;
    r.p.seed = 77 + i;
    r.p.maxTokens = 5 + static_cast<int>(rng() % 60);
    reqs.push_back(r);
  }
  return reqs;
}

// Every request alone through run(): the reference tokens.
std::vector<std::vector<int32_t>> alone(const Model &m, const std::vector<Req> &reqs, EngineOptions o) {
  std::vector<std::vector<int32_t>> res;
  for (const auto &r : reqs) {
    std::unique_ptr<Engine> e;
    EXPECT_TRUE(Engine::create(m, o, e).isOk());
    uint64_t id;
    EXPECT_TRUE(e->submit(r.prompt, r.p, id).isOk());
    std::vector<int32_t> got;
    EXPECT_TRUE(e->run([&](uint64_t, const int32_t *t, size_t n, photon_finish) {
                   got.insert(got.end(), t, t + n);
                   return true;
                 }).isOk());
    res.push_back(got);
  }
  return res;
}

} // namespace

// Four threads submit 40 requests while a scheduler thread waits and steps; a fifth cancels
// some of them. Every request gets exactly one final callback; the uncancelled ones produce
// the tokens they produce alone (seeded sampling is batch-invariant); the cache returns to 0.
TEST(EngineServing, SubmitAndCancelFromOtherThreadsWhileStepping) {
  for (const char *family : {"photon", "vanilla"}) {
    SCOPED_TRACE(family);
    auto m = loadModel(family);
    auto reqs = makeRequests(40, 5);
    EngineOptions o;
    o.maxBatch = 8;
    auto want = alone(*m, reqs, o);
    std::unique_ptr<Engine> e;
    ASSERT_TRUE(Engine::create(*m, o, e).isOk());

    std::mutex mu;
    std::map<uint64_t, Out> out;
    std::map<uint64_t, size_t> reqOf;
    std::atomic<bool> stop{false};
    std::atomic<int> submitted{0};
    std::thread scheduler([&] {
      while (!stop.load()) {
        if (!e->waitForWork(20)) continue;
        int active = 0;
        Status st = e->step(
            [&](uint64_t id, const int32_t *t, size_t n, photon_finish f) {
              std::lock_guard<std::mutex> lock(mu);
              Out &x = out[id];
              x.tokens.insert(x.tokens.end(), t, t + n);
              if (f != PHOTON_FINISH_NONE) {
                x.finish = f;
                ++x.finals;
              }
              return true;
            },
            active);
        ASSERT_TRUE(st.isOk()) << st.message();
      }
    });
    std::vector<std::thread> submitters;
    std::vector<uint64_t> toCancel;
    for (int t = 0; t < 4; ++t)
      submitters.emplace_back([&, t] {
        for (size_t i = t; i < reqs.size(); i += 4) {
          uint64_t id = 0;
          Status st = e->submit(reqs[i].prompt, reqs[i].p, id);
          ASSERT_TRUE(st.isOk()) << st.message();
          std::lock_guard<std::mutex> lock(mu);
          reqOf[id] = i;
          if (i % 7 == 3) toCancel.push_back(id);
          ++submitted;
          std::this_thread::yield();
        }
      });
    for (auto &th : submitters) th.join();
    std::thread canceller([&] {
      std::vector<uint64_t> ids;
      {
        std::lock_guard<std::mutex> lock(mu);
        ids = toCancel;
      }
      for (uint64_t id : ids) e->cancelRequest(id);
      e->cancelRequest(999999); // unknown: ignored
    });
    canceller.join();
    // Wait until every request has its final callback (bounded).
    for (int i = 0; i < 2000; ++i) {
      {
        std::lock_guard<std::mutex> lock(mu);
        size_t done = 0;
        for (auto &kv : out) done += kv.second.finals > 0;
        if (done == reqs.size()) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    stop.store(true);
    e->wake();
    scheduler.join();
    ASSERT_EQ(out.size(), reqs.size());
    int cancelled = 0;
    for (auto &kv : out) {
      size_t i = reqOf[kv.first];
      EXPECT_EQ(kv.second.finals, 1) << "request " << i;
      const auto &w = want[i];
      if (kv.second.finish == PHOTON_FINISH_CANCELLED) {
        ++cancelled;
        EXPECT_EQ(i % 7, 3u) << "only the ones asked for are cancelled";
        // What it had reported before the cancellation is a prefix of its full answer.
        ASSERT_LE(kv.second.tokens.size(), w.size());
        EXPECT_TRUE(std::equal(kv.second.tokens.begin(), kv.second.tokens.end(), w.begin()));
      } else {
        EXPECT_EQ(kv.second.finish, PHOTON_FINISH_LENGTH) << "request " << i;
        EXPECT_EQ(kv.second.tokens, w) << "request " << i;
      }
    }
    EngineSnapshot s = e->snapshot();
    EXPECT_EQ(s.inUse, 0u);
    EXPECT_EQ(s.reserved, 0u);
    EXPECT_EQ(s.queued + s.running, 0);
    EXPECT_EQ(s.stats.requestsFinished + s.stats.requestsCancelled, reqs.size());
    EXPECT_EQ(static_cast<int>(s.stats.requestsCancelled), cancelled);
  }
}

// GROW under a budget that holds a few sequences' next step but not their whole answers:
// sequences are preempted and re-prefilled, the tokens equal the RESERVE run's (and each
// request's alone), the budget is never exceeded and the accounting returns to zero.
TEST(EngineServing, GrowPolicyPreemptsAndResumesExactly) {
  for (const char *family : {"photon", "vanilla"}) {
    SCOPED_TRACE(family);
    auto m = loadModel(family);
    auto reqs = makeRequests(24, 9);
    for (auto &r : reqs) r.p.maxTokens = 60 + r.p.maxTokens; // long answers
    EngineOptions o;
    o.maxBatch = 16;
    o.memoryBudget = 48 * 64; // 48 blocks of 64 bytes
    auto want = alone(*m, reqs, o);
    o.cachePolicy = PHOTON_CACHE_GROW;
    for (int64_t chunk : {0, 8}) {
    SCOPED_TRACE("prefill chunk " + std::to_string(chunk));
    o.prefillChunk = chunk;
    std::unique_ptr<Engine> e;
    ASSERT_TRUE(Engine::create(*m, o, e).isOk());
    std::map<uint64_t, size_t> reqOf;
    for (size_t i = 0; i < reqs.size(); ++i) {
      uint64_t id;
      ASSERT_TRUE(e->submit(reqs[i].prompt, reqs[i].p, id).isOk());
      reqOf[id] = i;
    }
    std::map<uint64_t, Out> out;
    int active = 1, maxRunning = 0;
    while (active > 0) {
      Status st = e->step(
          [&](uint64_t id, const int32_t *t, size_t n, photon_finish f) {
            out[id].tokens.insert(out[id].tokens.end(), t, t + n);
            if (f) { out[id].finish = f; ++out[id].finals; }
            return true;
          },
          active);
      ASSERT_TRUE(st.isOk()) << st.message();
      std::string why;
      ASSERT_TRUE(e->cache().checkInvariants(why)) << why;
      ASSERT_LE(e->cache().reservedBytes(), o.memoryBudget);
      maxRunning = std::max(maxRunning, static_cast<int>(e->activeCount()));
    }
    for (auto &kv : out) {
      EXPECT_EQ(kv.second.finals, 1);
      EXPECT_EQ(kv.second.tokens, want[reqOf[kv.first]]) << "request " << reqOf[kv.first];
    }
    EXPECT_EQ(out.size(), reqs.size());
    EXPECT_GT(e->stats().preemptions, 0u) << "the budget is meant to run out";
    EXPECT_GT(maxRunning, 2) << "GROW admits more than RESERVE would";
    EXPECT_EQ(e->cache().inUseBytes(), 0u);
    EXPECT_EQ(e->cache().reservedBytes(), 0u);
    EXPECT_LE(e->cache().peakTotalBytes(), o.memoryBudget);
    }
  }
}

TEST(EngineServing, GrowRefusesRecGen) {
  auto m = loadModel("photon");
  EngineOptions o;
  o.mode = PHOTON_MODE_RECGEN;
  o.cachePolicy = PHOTON_CACHE_GROW;
  std::unique_ptr<Engine> e;
  Status st = Engine::create(*m, o, e);
  EXPECT_EQ(st.code(), PHOTON_ERR_UNSUPPORTED);
  EXPECT_NE(st.message().find("reserve"), std::string::npos) << st.message();
}

// Each finish reason is reported: EOS (the id is not reported), stop string, length,
// context limit.
TEST(EngineServing, EachFinishReasonIsReported) {
  for (const char *family : {"photon", "vanilla"}) {
    SCOPED_TRACE(family);
    auto m = loadModel(family);
    EngineOptions o;
    std::unique_ptr<Engine> e;
    ASSERT_TRUE(Engine::create(*m, o, e).isOk());
    EXPECT_EQ(m->tokenizer().eosId(), -1); // the byte tokenizer has none
    SamplingParams p;
    p.maxTokens = 40;
    std::vector<int32_t> prompt = {'h', 'i'};
    auto runOne = [&](Engine &eng, const SamplingParams &sp, bool ignoreEos = false) {
      uint64_t id;
      EXPECT_TRUE(eng.submit(prompt, sp, id, ignoreEos).isOk());
      Out o1;
      EXPECT_TRUE(eng.run([&](uint64_t, const int32_t *t, size_t n, photon_finish f) {
                       o1.tokens.insert(o1.tokens.end(), t, t + n);
                       if (f) { o1.finish = f; ++o1.finals; }
                       return true;
                     }).isOk());
      return o1;
    };
    Out full = runOne(*e, p);
    ASSERT_EQ(full.finish, PHOTON_FINISH_LENGTH);
    ASSERT_EQ(full.tokens.size(), 40u);
    // EOS: make the 11th generated token the end-of-sequence id.
    int32_t eos = full.tokens[10];
    size_t first = std::find(full.tokens.begin(), full.tokens.end(), eos) - full.tokens.begin();
    EngineOptions oe;
    oe.eosId = eos;
    std::unique_ptr<Engine> e2;
    ASSERT_TRUE(Engine::create(*m, oe, e2).isOk());
    Out got = runOne(*e2, p);
    EXPECT_EQ(got.finish, PHOTON_FINISH_EOS);
    EXPECT_EQ(got.tokens, std::vector<int32_t>(full.tokens.begin(), full.tokens.begin() + first));
    got = runOne(*e2, p, /*ignoreEos=*/true);
    EXPECT_EQ(got.finish, PHOTON_FINISH_LENGTH);
    EXPECT_EQ(got.tokens, full.tokens);
    // Stop string.
    SamplingParams ps = p;
    ps.stop = {std::string(1, static_cast<char>(full.tokens[5]))};
    got = runOne(*e, ps);
    EXPECT_EQ(got.finish, PHOTON_FINISH_STOP);
    EXPECT_LE(got.tokens.size(), 5u);
    // Context limit: prompt 2 + 10 generated.
    EngineOptions oc;
    oc.contextLimit = 12;
    std::unique_ptr<Engine> e3;
    ASSERT_TRUE(Engine::create(*m, oc, e3).isOk());
    got = runOne(*e3, p);
    EXPECT_EQ(got.finish, PHOTON_FINISH_CONTEXT);
    EXPECT_EQ(got.tokens, std::vector<int32_t>(full.tokens.begin(), full.tokens.begin() + 10));
    // A bad EOS id is refused.
    EngineOptions ob;
    ob.eosId = 100000;
    std::unique_ptr<Engine> e4;
    EXPECT_EQ(Engine::create(*m, ob, e4).code(), PHOTON_ERR_INVALID_ARGUMENT);
  }
}

// Chunked prefill: a prompt prefilled a few tokens per step gives the same tokens as one
// prefilled whole (PHOTON, Block, vanilla; greedy and sampled; prompts up to 200 tokens).
TEST(EngineServing, ChunkedPrefillGivesTheSameTokens) {
  for (const char *family : {"photon", "block", "vanilla"}) {
    SCOPED_TRACE(family);
    auto m = loadModel(family);
    std::mt19937 rng(17);
    std::vector<Req> reqs;
    for (int i = 0; i < 10; ++i) {
      Req r;
      r.prompt.resize(1 + rng() % 200);
      for (auto &t : r.prompt) t = static_cast<int32_t>(rng() % 256);
      r.p.temperature = i % 2 ? 0.8f : 0.0f;
      r.p.seed = 5 + i;
      r.p.maxTokens = 10 + static_cast<int>(rng() % 30);
      reqs.push_back(r);
    }
    auto runWith = [&](int64_t chunk) {
      EngineOptions o;
      o.prefillChunk = chunk;
      o.maxBatch = 4;
      std::unique_ptr<Engine> e;
      EXPECT_TRUE(Engine::create(*m, o, e).isOk());
      std::vector<uint64_t> ids;
      for (auto &r : reqs) {
        uint64_t id;
        EXPECT_TRUE(e->submit(r.prompt, r.p, id).isOk());
        ids.push_back(id);
      }
      std::map<uint64_t, std::vector<int32_t>> out;
      EXPECT_TRUE(e->run([&](uint64_t id, const int32_t *t, size_t n, photon_finish) {
                     out[id].insert(out[id].end(), t, t + n);
                     return true;
                   }).isOk());
      EXPECT_EQ(e->cache().inUseBytes(), 0u);
      // Every prompt is counted once, whatever the parts.
      uint64_t want = 0;
      for (auto &r : reqs) want += r.prompt.size();
      EXPECT_EQ(e->stats().prefillTokens, want);
      std::vector<std::vector<int32_t>> res;
      for (uint64_t id : ids) res.push_back(out[id]);
      return res;
    };
    auto whole = runWith(0);
    EXPECT_EQ(runWith(8), whole);
    EXPECT_EQ(runWith(37), whole);
  }
}

// With a prefill chunk, a long prompt does not stall a running sequence: it keeps getting
// tokens in the steps during which the long prompt is prefilled.
TEST(EngineServing, LongPromptDoesNotStallRunningSequences) {
  for (const char *family : {"photon", "vanilla"}) {
    SCOPED_TRACE(family);
    auto m = loadModel(family);
    EngineOptions o;
    o.prefillChunk = 16;
    std::unique_ptr<Engine> e;
    ASSERT_TRUE(Engine::create(*m, o, e).isOk());
    SamplingParams p;
    p.maxTokens = 400;
    uint64_t a, b;
    ASSERT_TRUE(e->submit({1, 2, 3, 4}, p, a).isOk());
    std::map<uint64_t, size_t> got;
    auto cb = [&](uint64_t id, const int32_t *, size_t n, photon_finish) {
      got[id] += n;
      return true;
    };
    int active = 0;
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(e->step(cb, active).isOk());
    ASSERT_GT(got[a], 0u);
    std::vector<int32_t> longPrompt(320);
    for (size_t i = 0; i < longPrompt.size(); ++i) longPrompt[i] = static_cast<int32_t>(i % 251);
    p.maxTokens = 8;
    ASSERT_TRUE(e->submit(longPrompt, p, b).isOk());
    int stepsWhilePrefilling = 0;
    while (got[b] == 0) {
      size_t before = got[a];
      ASSERT_TRUE(e->step(cb, active).isOk());
      ASSERT_GT(got[a], before) << "the running sequence decoded in every step";
      if (got[b] == 0) ++stepsWhilePrefilling;
      ASSERT_LT(stepsWhilePrefilling, 100);
    }
    EXPECT_GE(stepsWhilePrefilling, 10) << "320 tokens at 16 per step take many steps";
    ASSERT_TRUE(e->run(cb).isOk());
    EXPECT_EQ(got[a], 400u);
    EXPECT_EQ(got[b], 8u);
  }
}

// submitN: n samples of one prompt are prefilled once and the others start from a copy of
// its caches; each sample's tokens equal a separate submission with seed + i (PHOTON under
// HierGen and RecGen, Block, vanilla); with a batch too small for all of them the rest
// prefill on their own, with the same tokens; a follower cancelled before it starts is
// reported as cancelled and the cache returns to zero.
TEST(EngineServing, SamplesOfOnePromptShareItsPrefill) {
  struct Case { const char *family; photon_mode mode; };
  for (Case c : {Case{"photon", PHOTON_MODE_HIERGEN}, Case{"photon", PHOTON_MODE_RECGEN},
                 Case{"block", PHOTON_MODE_HIERGEN}, Case{"vanilla", PHOTON_MODE_HIERGEN}}) {
    SCOPED_TRACE(std::string(c.family) + " mode " + std::to_string(c.mode));
    auto m = loadModel(c.family);
    std::vector<int32_t> prompt(70);
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>((i * 37) % 256);
    SamplingParams p;
    p.temperature = 0.9f;
    p.seed = 100;
    p.maxTokens = 30;
    const int n = 4;
    auto collect = [](Engine &e) {
      std::map<uint64_t, Out> out;
      EXPECT_TRUE(e.run([&](uint64_t id, const int32_t *t, size_t k, photon_finish f) {
                     out[id].tokens.insert(out[id].tokens.end(), t, t + k);
                     if (f) { out[id].finish = f; ++out[id].finals; }
                     return true;
                   }).isOk());
      return out;
    };
    EngineOptions o;
    o.mode = c.mode;
    std::vector<std::vector<int32_t>> want;
    for (int i = 0; i < n; ++i) {
      std::unique_ptr<Engine> e;
      ASSERT_TRUE(Engine::create(*m, o, e).isOk());
      SamplingParams pi = p;
      pi.seed = p.seed + i;
      uint64_t id;
      ASSERT_TRUE(e->submit(prompt, pi, id).isOk());
      want.push_back(collect(*e)[id].tokens);
    }
    for (int maxBatch : {8, 2}) {
      SCOPED_TRACE("max batch " + std::to_string(maxBatch));
      o.maxBatch = maxBatch;
      std::unique_ptr<Engine> e;
      ASSERT_TRUE(Engine::create(*m, o, e).isOk());
      std::vector<uint64_t> ids;
      ASSERT_TRUE(e->submitN(prompt, p, n, ids).isOk());
      ASSERT_EQ(ids.size(), static_cast<size_t>(n));
      auto out = collect(*e);
      for (int i = 0; i < n; ++i) {
        EXPECT_EQ(out[ids[i]].tokens, want[i]) << "sample " << i;
        EXPECT_EQ(out[ids[i]].finals, 1);
      }
      // Prefill work: once with room for all, else once per group that started together.
      if (maxBatch >= n) EXPECT_EQ(e->stats().prefillTokens, prompt.size());
      else EXPECT_LT(e->stats().prefillTokens, n * prompt.size());
      EXPECT_EQ(e->cache().inUseBytes(), 0u);
      EXPECT_EQ(e->cache().reservedBytes(), 0u);
    }
    // A follower cancelled before its leader is prefilled.
    std::unique_ptr<Engine> e;
    ASSERT_TRUE(Engine::create(*m, o, e).isOk());
    std::vector<uint64_t> ids;
    ASSERT_TRUE(e->submitN(prompt, p, n, ids).isOk());
    e->cancelRequest(ids[2]);
    auto out = collect(*e);
    EXPECT_EQ(out[ids[2]].finish, PHOTON_FINISH_CANCELLED);
    EXPECT_TRUE(out[ids[2]].tokens.empty());
    EXPECT_EQ(out[ids[3]].tokens, want[3]);
    EXPECT_EQ(e->cache().inUseBytes(), 0u);
  }
}
