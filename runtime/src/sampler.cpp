#include "sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace photon::rt {

static uint64_t splitmix64(uint64_t &x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void Rng::reseed(uint64_t seed) {
  uint64_t x = seed;
  for (auto &s : s_) s = splitmix64(x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t Rng::next() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

int32_t argmax(const float *x, int n) {
  int32_t best = 0;
  float bv = -std::numeric_limits<float>::infinity();
  bool any = false;
  for (int i = 0; i < n; ++i) {
    if (std::isnan(x[i])) continue;
    if (!any || x[i] > bv) { bv = x[i]; best = i; any = true; }
  }
  return best;
}

void Sampler::prepare(const float *logits, int vocab, const SamplingParams &p,
                      const std::vector<int32_t> &history) {
  work_.assign(logits, logits + vocab);
  if (p.repetitionPenalty != 1.0f && p.repetitionPenalty > 0.0f) {
    seen_.assign(static_cast<size_t>(vocab), 0);
    for (int32_t t : history)
      if (t >= 0 && t < vocab && !seen_[t]) {
        seen_[t] = 1;
        float &l = work_[t];
        l = l > 0 ? l / p.repetitionPenalty : l * p.repetitionPenalty;
      }
  }
}

void Sampler::distribution(const float *logits, int vocab, const SamplingParams &p,
                           const std::vector<int32_t> &history, std::vector<double> &probs) {
  prepare(logits, vocab, p, history);
  probs.assign(static_cast<size_t>(vocab), 0.0);
  if (p.greedy()) {
    probs[argmax(work_.data(), vocab)] = 1.0;
    return;
  }
  // Candidates sorted by logit (descending, ties by index), cut by top-k.
  cand_.clear();
  for (int i = 0; i < vocab; ++i)
    if (!std::isnan(work_[i])) cand_.emplace_back(work_[i], i);
  if (cand_.empty()) { probs[0] = 1.0; return; }
  auto cmp = [](const std::pair<float, int32_t> &a, const std::pair<float, int32_t> &b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  size_t k = cand_.size();
  if (p.topK > 0 && static_cast<size_t>(p.topK) < k) {
    k = static_cast<size_t>(p.topK);
    std::partial_sort(cand_.begin(), cand_.begin() + k, cand_.end(), cmp);
    cand_.resize(k);
  } else {
    std::sort(cand_.begin(), cand_.end(), cmp);
  }
  // Softmax with temperature (in double).
  double maxl = cand_[0].first / static_cast<double>(p.temperature);
  std::vector<double> w(k);
  double sum = 0;
  for (size_t i = 0; i < k; ++i) {
    w[i] = std::exp(cand_[i].first / static_cast<double>(p.temperature) - maxl);
    sum += w[i];
  }
  // Top-p: smallest prefix whose mass reaches p (at least one token).
  size_t keep = k;
  if (p.topP < 1.0f && p.topP > 0.0f) {
    double acc = 0;
    for (size_t i = 0; i < k; ++i) {
      acc += w[i] / sum;
      if (acc >= p.topP) { keep = i + 1; break; }
    }
  }
  double s2 = 0;
  for (size_t i = 0; i < keep; ++i) s2 += w[i];
  for (size_t i = 0; i < keep; ++i) probs[cand_[i].second] = w[i] / s2;
}

int32_t Sampler::sample(const float *logits, int vocab, const SamplingParams &p,
                        const std::vector<int32_t> &history, Rng &rng) {
  if (p.greedy()) {
    prepare(logits, vocab, p, history);
    return argmax(work_.data(), vocab);
  }
  std::vector<double> probs;
  distribution(logits, vocab, p, history, probs);
  double u = rng.uniform();
  // Walk candidates in the sorted order distribution() left in cand_ (deterministic).
  double acc = 0;
  int32_t last = cand_.empty() ? 0 : cand_[0].second;
  for (const auto &c : cand_) {
    double q = probs[c.second];
    if (q <= 0) continue;
    acc += q;
    last = c.second;
    if (u < acc) return c.second;
  }
  return last;
}

bool validateSampling(const SamplingParams &p, std::string &error) {
  auto num = [](double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%g", v);
    return std::string(buf);
  };
  if (!std::isfinite(p.temperature) || p.temperature < 0.0f) {
    error = "temperature is " + num(p.temperature) + "; expected a finite number >= 0 (0 = greedy)";
    return false;
  }
  if (p.topK < 0) {
    error = "top-k is " + std::to_string(p.topK) + "; expected an integer >= 0 (0 = off)";
    return false;
  }
  if (!std::isfinite(p.topP) || p.topP <= 0.0f || p.topP > 1.0f) {
    error = "top-p is " + num(p.topP) + "; expected a number in (0, 1] (1 = off; for greedy "
            "decoding set the temperature to 0)";
    return false;
  }
  if (!std::isfinite(p.repetitionPenalty) || p.repetitionPenalty <= 0.0f) {
    error = "repetition penalty is " + num(p.repetitionPenalty) +
            "; expected a finite number > 0 (1 = off)";
    return false;
  }
  if (p.maxTokens < 1) {
    error = "max tokens is " + std::to_string(p.maxTokens) + "; expected an integer >= 1";
    return false;
  }
  return true;
}

int64_t findStop(const std::string &text, const std::vector<std::string> &stop, size_t from) {
  int64_t best = -1;
  for (const auto &s : stop) {
    if (s.empty()) continue;
    size_t start = from >= s.size() - 1 ? from - (s.size() - 1) : 0;
    size_t pos = text.find(s, start);
    if (pos != std::string::npos && (best < 0 || static_cast<int64_t>(pos) < best))
      best = static_cast<int64_t>(pos);
  }
  return best;
}

} // namespace photon::rt
