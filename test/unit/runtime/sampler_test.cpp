#include "sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

using namespace photon::rt;

namespace {
std::vector<float> logitsOf(std::initializer_list<float> l) { return std::vector<float>(l); }
}

TEST(Sampler, GreedyIsArgmaxFirstOnTies) {
  Sampler s;
  Rng rng(1);
  SamplingParams p;
  auto l = logitsOf({0.1f, 3.0f, -2.0f, 3.0f});
  EXPECT_EQ(s.sample(l.data(), 4, p, {}, rng), 1);
  EXPECT_EQ(argmax(l.data(), 4), 1);
  // Greedy consumes no randomness.
  Rng a(7), b(7);
  s.sample(l.data(), 4, p, {}, a);
  EXPECT_EQ(a.next(), b.next());
}

TEST(Sampler, TemperatureMatchesSoftmax) {
  Sampler s;
  Rng rng(42);
  SamplingParams p;
  p.temperature = 0.7f;
  auto l = logitsOf({1.0f, 2.0f, 0.5f, -1.0f, 1.5f});
  std::vector<double> probs;
  s.distribution(l.data(), 5, p, {}, probs);
  double z = 0;
  for (float x : l) z += std::exp(x / 0.7);
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(probs[i], std::exp(l[i] / 0.7) / z, 1e-6);
  const int n = 40000;
  std::vector<int> count(5, 0);
  for (int i = 0; i < n; ++i) ++count[s.sample(l.data(), 5, p, {}, rng)];
  for (int i = 0; i < 5; ++i) {
    double sd = std::sqrt(probs[i] * (1 - probs[i]) / n);
    EXPECT_NEAR(count[i] / double(n), probs[i], 5 * sd + 1e-3) << "token " << i;
  }
}

TEST(Sampler, TopKAndTopPRestrictTheSupport) {
  Sampler s;
  Rng rng(3);
  auto l = logitsOf({4.0f, 3.0f, 2.0f, 1.0f, 0.0f, -1.0f});
  SamplingParams p;
  p.temperature = 1.0f;
  p.topK = 2;
  std::vector<double> probs;
  s.distribution(l.data(), 6, p, {}, probs);
  EXPECT_GT(probs[0], 0);
  EXPECT_GT(probs[1], 0);
  for (int i = 2; i < 6; ++i) EXPECT_EQ(probs[i], 0);
  EXPECT_NEAR(probs[0] + probs[1], 1.0, 1e-12);
  for (int i = 0; i < 2000; ++i) EXPECT_LT(s.sample(l.data(), 6, p, {}, rng), 2);

  // Top-p 0.7: p(0) ~ 0.636, p(0)+p(1) ~ 0.87 -> the two most likely tokens.
  p.topK = 0;
  p.topP = 0.7f;
  s.distribution(l.data(), 6, p, {}, probs);
  EXPECT_GT(probs[1], 0);
  EXPECT_EQ(probs[2], 0);
  // Top-p smaller than the largest probability keeps exactly one token.
  p.topP = 0.1f;
  s.distribution(l.data(), 6, p, {}, probs);
  EXPECT_DOUBLE_EQ(probs[0], 1.0);
}

TEST(Sampler, RepetitionPenalty) {
  Sampler s;
  Rng rng(1);
  SamplingParams p;
  p.repetitionPenalty = 2.0f;
  auto l = logitsOf({3.0f, 2.0f, -1.0f, -0.5f});
  EXPECT_EQ(s.sample(l.data(), 4, p, {}, rng), 0);
  EXPECT_EQ(s.sample(l.data(), 4, p, {0}, rng), 1);       // 3/2 = 1.5 < 2
  EXPECT_EQ(s.sample(l.data(), 4, p, {0, 1, 0}, rng), 0); // 1.5 > 1.0
  // Negative logits are pushed down (multiplied), not up.
  auto n = logitsOf({-1.0f, -1.5f});
  EXPECT_EQ(s.sample(n.data(), 2, p, {0}, rng), 1); // -2 < -1.5
}

TEST(Sampler, SameSeedSameTokensRegardlessOfOthers) {
  Sampler s;
  SamplingParams p;
  p.temperature = 1.0f;
  p.topK = 50;
  std::vector<float> l(256);
  for (int i = 0; i < 256; ++i) l[i] = std::sin(i * 0.37f) * 3;
  auto draw = [&](uint64_t seed, int n, Rng *interleave) {
    Rng rng(seed);
    std::vector<int32_t> out;
    for (int i = 0; i < n; ++i) {
      out.push_back(s.sample(l.data(), 256, p, {}, rng));
      if (interleave) s.sample(l.data(), 256, p, {}, *interleave); // another sequence
    }
    return out;
  };
  Rng other(999);
  auto alone = draw(5, 64, nullptr);
  auto batched = draw(5, 64, &other);
  EXPECT_EQ(alone, batched);
  EXPECT_NE(alone, draw(6, 64, nullptr));
}

TEST(Sampler, RngIsReproducibleAndUniform) {
  Rng a(123), b(123);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.next(), b.next());
  Rng c(0);
  double sum = 0;
  for (int i = 0; i < 100000; ++i) {
    double u = c.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / 100000, 0.5, 0.005);
}

TEST(Sampler, StopStrings) {
  EXPECT_EQ(findStop("hello world", {"wor"}, 0), 6);
  EXPECT_EQ(findStop("hello world", {"xyz", "o"}, 0), 4);
  EXPECT_EQ(findStop("hello world", {"o w"}, 5), 4); // match started before `from`
  EXPECT_EQ(findStop("hello world", {"hello"}, 6), -1); // already checked
  EXPECT_EQ(findStop("abc", {""}, 0), -1);
}
