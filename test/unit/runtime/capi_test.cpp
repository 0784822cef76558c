// The public API as a user sees it: libphoton.so through photon.hpp (and so photon.h), with
// no access to the runtime's internals.
#include "photon/photon.hpp"
#include "test_artifact.h"

#include <gtest/gtest.h>

#include <cstddef>
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
