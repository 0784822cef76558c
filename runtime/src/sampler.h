// Sampling: greedy, temperature, top-k, top-p, repetition penalty; a seeded RNG per sequence
// (the draws of one sequence never depend on other sequences, so the same seed gives the same
// tokens alone or in any batch); stop strings and max tokens.
#ifndef PHOTON_RUNTIME_SAMPLER_H
#define PHOTON_RUNTIME_SAMPLER_H

#include <cstdint>
#include <string>
#include <vector>

namespace photon::rt {

struct SamplingParams {
  float temperature = 0.0f;     // <= 0: greedy
  int topK = 0;                 // <= 0: off
  float topP = 1.0f;            // >= 1: off
  float repetitionPenalty = 1.0f;
  uint64_t seed = 0;
  int maxTokens = 128;
  std::vector<std::string> stop;
  bool greedy() const { return temperature <= 0.0f; }
};

/// Checks sampling parameters; the one rule set of the C API (and so of photon-run, which
/// goes through it). temperature: finite and >= 0 (0 = greedy); top_k >= 0 (0 = off);
/// top_p: finite, in (0, 1] (1 = off; 0 is refused: it would keep no token); repetition
/// penalty: finite and > 0 (1 = off); max_tokens >= 1. On failure sets `error` to a message
/// that names the parameter, its value and the accepted range.
bool validateSampling(const SamplingParams &p, std::string &error);

/// xoshiro256** seeded through splitmix64: fast, reproducible across platforms.
class Rng {
public:
  explicit Rng(uint64_t seed = 0) { reseed(seed); }
  void reseed(uint64_t seed);
  uint64_t next();
  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }

private:
  uint64_t s_[4];
};

class Sampler {
public:
  /// Picks a token from `logits[0..vocab)`. `history` are the tokens the repetition penalty
  /// applies to (the sequence so far). Uses exactly one RNG draw when not greedy.
  int32_t sample(const float *logits, int vocab, const SamplingParams &p,
                 const std::vector<int32_t> &history, Rng &rng);

  /// The probability distribution sample() draws from (after penalty, temperature, top-k,
  /// top-p; greedy gives a one-hot). For tests and for --logits-out debugging.
  void distribution(const float *logits, int vocab, const SamplingParams &p,
                    const std::vector<int32_t> &history, std::vector<double> &probs);

private:
  void prepare(const float *logits, int vocab, const SamplingParams &p,
               const std::vector<int32_t> &history);
  std::vector<float> work_;
  std::vector<std::pair<float, int32_t>> cand_;
  std::vector<uint8_t> seen_;
};

/// Index of the maximum (first one on ties, like torch.argmax).
int32_t argmax(const float *x, int n);

/// Stop-string search over text generated so far. Returns the byte offset where the earliest
/// match starts, or -1. `from` is the offset from which a match may start (text before it
/// was already checked); pass 0 to search everything.
int64_t findStop(const std::string &text, const std::vector<std::string> &stop, size_t from);

} // namespace photon::rt

#endif
