// The public API as a user sees it: libphoton.so through photon.hpp (and so photon.h), with
// no access to the runtime's internals.
#include "photon/photon.hpp"
#include "test_artifact.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <atomic>
#include <map>
#include <mutex>
#include <thread>
#include <unistd.h>

TEST(PublicApi, GenerateThroughTheSharedLibrary) {
  std::string dir = ::testing::TempDir() + "photon-capi-" + std::to_string(getpid());
  std::string err;
  ASSERT_TRUE(photon_test::writeArtifact(dir, {}, err)) << err;
  EXPECT_EQ(photon_api_version(), PHOTON_API_VERSION);
  photon::Model model(dir);
  photon_model_info info = model.info();
  EXPECT_EQ(info.levels, 2);
  EXPECT_EQ(model.detokenize(model.tokenize("round trip")), "round trip");

  photon::Engine engine(model, photon::EngineOptions().mode(PHOTON_MODE_RECGEN).maxBatch(4));
  std::map<photon_request_id, std::vector<int32_t>> got;
  std::map<photon_request_id, photon_finish> fin;
  auto a = engine.submit(model.tokenize("first prompt"), photon::Sampling().maxTokens(20));
  auto b = engine.submit(model.tokenize("second"),
                         photon::Sampling().maxTokens(33).temperature(0.7f).topK(20).seed(9));
  EXPECT_TRUE(engine.run([&](photon_request_id id, const std::vector<int32_t> &t, photon_finish f) {
    got[id].insert(got[id].end(), t.begin(), t.end());
    fin[id] = f;
    return true;
  }));
  EXPECT_EQ(got[a].size(), 20u);
  EXPECT_EQ(got[b].size(), 33u);
  EXPECT_EQ(fin[a], PHOTON_FINISH_LENGTH);
  photon_engine_stats s = engine.stats();
  EXPECT_EQ(s.decode_tokens, 53u);
  EXPECT_EQ(s.requests_finished, 2u);
  EXPECT_EQ(s.cache_bytes_in_use, 0u);
  EXPECT_EQ(s.cache_levels, 2);
  EXPECT_GT(s.cache_peak_bytes[1], 0u);

  // Errors surface as photon::Error with the status and the message.
  try {
    photon::Model bad(dir + "/nope");
    FAIL() << "loading a missing artifact succeeded";
  } catch (const photon::Error &e) {
    EXPECT_EQ(e.status(), PHOTON_ERR_IO);
    EXPECT_NE(std::string(e.what()).find("nope"), std::string::npos);
  }
  try {
    engine.submit({1, 2, 999}, photon::Sampling());
    FAIL() << "an out-of-vocabulary token was accepted";
  } catch (const photon::Error &e) {
    EXPECT_EQ(e.status(), PHOTON_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("999"), std::string::npos) << e.what();
  }
  EXPECT_STREQ(photon_status_string(PHOTON_ERR_OUT_OF_BUDGET), "out of budget");

  // Compute threads: a sequential artifact accepts a count (and ignores it); a negative
  // count is refused; a caller built before `threads` existed (smaller struct_size) is
  // not read past its struct.
  photon::Engine threaded(model, photon::EngineOptions().threads(2));
  try {
    photon::Engine neg(model, photon::EngineOptions().threads(-1));
    FAIL() << "threads = -1 was accepted";
  } catch (const photon::Error &e) {
    EXPECT_EQ(e.status(), PHOTON_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("threads"), std::string::npos) << e.what();
  }
  photon_engine_options old;
  photon_engine_options_defaults(&old);
  old.threads = -1;
  old.struct_size = offsetof(photon_engine_options, threads);
  photon_engine *oe = nullptr;
  EXPECT_EQ(photon_engine_create(model.get(), &old, &oe), PHOTON_OK) << photon_last_error();
  photon_engine_free(oe);
}

// Lifetimes and struct_size (photon.h, "Handles" and "Conventions"): an engine keeps its
// model loaded, so the model handle may be freed first; every option field is read only
// when struct_size covers it; the version comes from the build.
TEST(PublicApi, EngineOutlivesModelAndShortStructsGetDefaults) {
  std::string dir = ::testing::TempDir() + "photon-capi-life-" + std::to_string(getpid());
  std::string err;
  ASSERT_TRUE(photon_test::writeArtifact(dir, {}, err)) << err;
  EXPECT_STRNE(photon_version(), "");
  photon_model *m = nullptr;
  ASSERT_EQ(photon_model_load(dir.c_str(), nullptr, &m), PHOTON_OK) << photon_last_error();
  int32_t ids[64];
  size_t n = 0;
  ASSERT_EQ(photon_tokenize(m, "lifetime", 8, ids, 64, &n), PHOTON_OK);
  photon_engine *e = nullptr;
  ASSERT_EQ(photon_engine_create(m, nullptr, &e), PHOTON_OK) << photon_last_error();
  photon_model_free(m); // the engine still holds the model

  // A sampling struct from a caller that knows only `temperature`: max_tokens keeps its
  // default (128) even though the (garbage) field behind struct_size says 5.
  photon_sampling s;
  photon_sampling_defaults(&s);
  s.max_tokens = 5;
  s.n_stop = -7; // would be refused if read
  s.struct_size = offsetof(photon_sampling, top_k);
  photon_request_id id = 0;
  ASSERT_EQ(photon_engine_submit(e, ids, n, &s, &id), PHOTON_OK) << photon_last_error();
  size_t total = 0;
  auto cb = [](void *user, photon_request_id, const int32_t *, size_t k, photon_finish) {
    *static_cast<size_t *>(user) += k;
    return 0;
  };
  ASSERT_EQ(photon_engine_run(e, cb, &total), PHOTON_OK) << photon_last_error();
  EXPECT_EQ(total, 128u);

  // An info struct from an older caller is written only up to its struct_size.
  struct {
    photon_engine_stats st;
    unsigned char guard[8];
  } small;
  std::memset(&small, 0xAB, sizeof small);
  small.st.struct_size = offsetof(photon_engine_stats, decode_tokens);
  ASSERT_EQ(photon_engine_get_stats(e, &small.st), PHOTON_OK);
  EXPECT_EQ(small.st.prefill_tokens, n);
  const unsigned char *tail = reinterpret_cast<const unsigned char *>(&small.st) +
                              offsetof(photon_engine_stats, decode_tokens);
  EXPECT_EQ(tail[0], 0xAB); // not written past struct_size
  photon_engine_free(e);    // unloads the model
  photon_test::removeTree(dir);
}

// The serving calls through the shared library: a scheduler thread loops
// photon_engine_wait + photon_engine_step while the main thread submits (one request and
// three samples of one prompt with photon_engine_submit_n) and cancels one; wake ends the
// loop; get_stats from this thread shows everything finished and the cache at zero.
TEST(PublicApi, ServingCallsFromAnotherThread) {
  std::string dir = ::testing::TempDir() + "photon-capi-serve-" + std::to_string(getpid());
  std::string err;
  ASSERT_TRUE(photon_test::writeArtifact(dir, {}, err)) << err;
  photon_model *m = nullptr;
  ASSERT_EQ(photon_model_load(dir.c_str(), nullptr, &m), PHOTON_OK) << photon_last_error();
  photon_engine_options eo;
  photon_engine_options_defaults(&eo);
  eo.cache_policy = PHOTON_CACHE_GROW;
  eo.prefill_chunk = 8;
  photon_engine *e = nullptr;
  ASSERT_EQ(photon_engine_create(m, &eo, &e), PHOTON_OK) << photon_last_error();
  struct State {
    std::mutex mu;
    std::map<photon_request_id, photon_finish> finish;
    std::map<photon_request_id, size_t> tokens;
  } st;
  std::atomic<bool> stop{false};
  std::thread scheduler([&] {
    while (!stop.load()) {
      int32_t work = 0;
      ASSERT_EQ(photon_engine_wait(e, 50, &work), PHOTON_OK);
      if (!work) continue;
      int32_t active = 0;
      ASSERT_EQ(photon_engine_step(
                    e,
                    [](void *u, photon_request_id id, const int32_t *, size_t n, photon_finish f) {
                      State &s = *static_cast<State *>(u);
                      std::lock_guard<std::mutex> lock(s.mu);
                      s.tokens[id] += n;
                      if (f) s.finish[id] = f;
                      return 0;
                    },
                    &st, &active),
                PHOTON_OK)
          << photon_last_error();
    }
  });
  int32_t prompt[40];
  for (int i = 0; i < 40; ++i) prompt[i] = i + 1;
  photon_sampling s;
  photon_sampling_defaults(&s);
  s.max_tokens = 20;
  s.temperature = 0.7f;
  photon_request_id one = 0, three[3] = {0, 0, 0}, cancelled = 0;
  ASSERT_EQ(photon_engine_submit(e, prompt, 40, &s, &one), PHOTON_OK) << photon_last_error();
  ASSERT_EQ(photon_engine_submit_n(e, prompt, 40, &s, 3, three), PHOTON_OK) << photon_last_error();
  EXPECT_NE(photon_engine_submit_n(e, prompt, 40, &s, 0, three), PHOTON_OK);
  s.max_tokens = 100000;
  ASSERT_EQ(photon_engine_submit(e, prompt, 40, &s, &cancelled), PHOTON_OK);
  ASSERT_EQ(photon_engine_cancel_request(e, cancelled), PHOTON_OK);
  for (int i = 0; i < 1000; ++i) {
    {
      std::lock_guard<std::mutex> lock(st.mu);
      if (st.finish.size() == 5) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  stop.store(true);
  photon_engine_wake(e);
  scheduler.join();
  ASSERT_EQ(st.finish.size(), 5u);
  EXPECT_EQ(st.finish[cancelled], PHOTON_FINISH_CANCELLED);
  for (photon_request_id id : {one, three[0], three[1], three[2]}) {
    EXPECT_EQ(st.finish[id], PHOTON_FINISH_LENGTH) << id;
    EXPECT_EQ(st.tokens[id], 20u) << id;
  }
  photon_engine_stats stats;
  stats.struct_size = sizeof stats;
  ASSERT_EQ(photon_engine_get_stats(e, &stats), PHOTON_OK);
  EXPECT_EQ(stats.queued, 0);
  EXPECT_EQ(stats.running, 0);
  EXPECT_EQ(stats.cache_bytes_in_use, 0u);
  EXPECT_EQ(stats.requests_cancelled, 1u);
  EXPECT_EQ(stats.requests_finished, 4u);
  for (int i = 0; i < stats.cache_levels; ++i) EXPECT_EQ(stats.cache_bytes_in_use_level[i], 0u);
  photon_engine_free(e);
  photon_model_free(m);
  photon_test::removeTree(dir);
}
