// Hostile calls through the public C API (issue 19): every one returns a status and a
// message naming what is wrong; none crashes, aborts, hangs or produces garbage.
#include "photon/photon.h"
#include "test_artifact.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <unistd.h>

namespace {

class HostileCApi : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "photon-hostile-capi-" + std::to_string(getpid());
    photon_test::ArtifactOptions o;
    o.family = "vanilla";
    std::string err;
    ASSERT_TRUE(photon_test::writeArtifact(dir_, o, err)) << err;
    ASSERT_EQ(photon_model_load(dir_.c_str(), nullptr, &model_), PHOTON_OK) << photon_last_error();
    ASSERT_EQ(photon_engine_create(model_, nullptr, &engine_), PHOTON_OK) << photon_last_error();
  }
  void TearDown() override {
    photon_engine_free(engine_);
    photon_model_free(model_);
  }
  photon_status submit(const photon_sampling &s, size_t len = 2) {
    photon_request_id id = 0;
    return photon_engine_submit(engine_, prompt_, len, &s, &id);
  }
  std::string dir_;
  photon_model *model_ = nullptr;
  photon_engine *engine_ = nullptr;
  int32_t prompt_[2] = {65, 66};
};

TEST_F(HostileCApi, SamplingParametersAreValidated) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  auto check = [&](photon_sampling s, const char *expect) {
    EXPECT_EQ(submit(s), PHOTON_ERR_INVALID_ARGUMENT) << expect;
    EXPECT_NE(std::string(photon_last_error()).find(expect), std::string::npos)
        << photon_last_error();
  };
  photon_sampling s;
  photon_sampling_defaults(&s);
  s.temperature = nan; check(s, "temperature is nan; expected a finite number >= 0");
  photon_sampling_defaults(&s);
  s.temperature = inf; check(s, "temperature is inf");
  photon_sampling_defaults(&s);
  s.temperature = -0.5f; check(s, "temperature is -0.5");
  photon_sampling_defaults(&s);
  s.temperature = 1.0f;
  s.top_p = nan; check(s, "top-p is nan; expected a number in (0, 1]");
  s.top_p = 0.0f; check(s, "top-p is 0; expected a number in (0, 1]");
  s.top_p = 2.0f; check(s, "top-p is 2; expected a number in (0, 1]");
  photon_sampling_defaults(&s);
  s.top_k = -1; check(s, "top-k is -1");
  photon_sampling_defaults(&s);
  s.repetition_penalty = nan; check(s, "repetition penalty is nan");
  s.repetition_penalty = 0.0f; check(s, "repetition penalty is 0");
  photon_sampling_defaults(&s);
  s.max_tokens = 0; check(s, "max tokens is 0");
  // The valid edges are accepted.
  photon_sampling_defaults(&s);
  s.temperature = 0.8f;
  s.top_p = 1.0f;
  EXPECT_EQ(submit(s), PHOTON_OK) << photon_last_error();
  s.top_p = 1e-6f;
  EXPECT_EQ(submit(s), PHOTON_OK) << photon_last_error();
}

TEST_F(HostileCApi, HugePromptLengthIsRefusedBeforeAllocating) {
  photon_sampling s;
  photon_sampling_defaults(&s);
  // The buffer holds 2 tokens; the length is checked before anything is read or allocated.
  EXPECT_EQ(submit(s, SIZE_MAX / 8), PHOTON_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(photon_last_error()).find("is more than a request can hold"),
            std::string::npos) << photon_last_error();
}

TEST_F(HostileCApi, DetokenizeRefusesIdsOutsideTheVocabulary) {
  const int32_t ids[] = {65, 256, 66};
  char out[16];
  size_t n = 0;
  EXPECT_EQ(photon_detokenize(model_, ids, 3, out, sizeof out, &n), PHOTON_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(photon_last_error())
                .find("token 1 is 256, outside the vocabulary [0, 256)"),
            std::string::npos) << photon_last_error();
  const int32_t neg[] = {-1};
  EXPECT_EQ(photon_detokenize(model_, neg, 1, out, sizeof out, &n), PHOTON_ERR_INVALID_ARGUMENT);
  const int32_t ok[] = {65, 66};
  ASSERT_EQ(photon_detokenize(model_, ok, 2, out, sizeof out, &n), PHOTON_OK);
  EXPECT_EQ(std::string(out, n), "AB");
}

TEST_F(HostileCApi, EngineStaysUsableAfterItsModelHandleIsFreed) {
  photon_model_free(model_);
  model_ = nullptr;
  photon_sampling s;
  photon_sampling_defaults(&s);
  s.max_tokens = 3;
  EXPECT_EQ(submit(s), PHOTON_OK) << photon_last_error();
  EXPECT_EQ(photon_engine_run(engine_, nullptr, nullptr), PHOTON_OK) << photon_last_error();
}

// Issue 19: a stage symbol is looked up among model.so's own definitions only. This model.so
// links libphoton.so, which exports photon_model_load: a manifest naming it as a stage (the
// photon_ prefix is right) is refused instead of calling into the dependency.
TEST(HostileArtifact, StageSymbolDefinedOnlyByADependencyIsRefused) {
  std::string dir = ::testing::TempDir() + "photon-hostile-dep-" + std::to_string(getpid());
  photon_test::ArtifactOptions o;
  o.family = "vanilla";
  o.extraStageSymbol = "photon_model_load";
  std::string err;
  ASSERT_TRUE(photon_test::writeArtifact(dir, o, err)) << err;
  std::string so = photon_test::readAll(PHOTON_TESTMODEL_DEP_LIB);
  ASSERT_FALSE(so.empty());
  std::ofstream(dir + "/model.so", std::ios::binary | std::ios::trunc) << so;
  photon_model *m = nullptr;
  EXPECT_EQ(photon_model_load(dir.c_str(), nullptr, &m), PHOTON_ERR_ABI);
  EXPECT_EQ(m, nullptr);
  EXPECT_NE(std::string(photon_last_error())
                .find("does not define 'photon_model_load' (stage 'extra' of the manifest) itself"),
            std::string::npos) << photon_last_error();
  photon_model_free(m);
}

} // namespace
