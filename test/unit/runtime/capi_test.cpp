// The public API as a user sees it: libphoton.so through photon.hpp (and so photon.h), with
// no access to the runtime's internals.
#include "photon/photon.hpp"
#include "test_artifact.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <map>
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
