// The engine's vanilla (token-level transformer) stages: prefill across sequences in lm_step
// calls of equal-length pieces, and one decode step for the batch. engine.cpp has the
// engine's lifecycle, engine_schedule.cpp the step that calls these.
#include "engine.h"

#include <algorithm>
#include <cstring>

namespace photon::rt {

// ------------------------------------------------------------------ vanilla

// Prefill across sequences: the sequences whose pieces in this step have the same length share
// lm_step calls of up to kBatchRows token rows (B * m); a piece longer than that is a call of
// its own (at most kPiece tokens). Pieces are not cut to make lengths meet: lm_step
// materializes every intermediate, and on the bundled small vanilla model (D 192, V 4096;
// Zen 5, one thread) its cost per token row is lowest near 32 rows: 16 prompts of 8 tokens
// prefill 1.2x faster in calls of 32 rows than alone, 1.0x in calls of 128 rows and 0.9x in
// calls of 256, and prompts of 32 tokens or more gain nothing from sharing a call.
Status Engine::prefillVanillaBatch(const std::vector<Sequence *> &seqs,
                                   const std::vector<int64_t> &take) {
  StageFn fn = model_.stage("lm_step");
  if (!fn) return error(PHOTON_ERR_ABI, "the artifact has no stage 'lm_step'");
  const int li = cache_.indexOfLevel(1);
  const int64_t kPiece = 256, kBatchRows = 32;
  for (Sequence *s : seqs)
    if (s->cache.lens.empty()) return error(PHOTON_ERR_INTERNAL, "prefill before admission");
  std::vector<int64_t> left(take);
  std::vector<int32_t> toks, table, lens;
  std::vector<float> logits;
  for (;;) {
    // The sequences with tokens left, pieces of at most kPiece; the shortest piece first, one
    // length per round, the sequences of that length in calls of at most kBatchRows rows.
    int64_t m = 0;
    for (size_t i = 0; i < seqs.size(); ++i)
      if (left[i] > 0) m = m == 0 ? std::min(left[i], kPiece) : std::min({m, left[i], kPiece});
    if (m == 0) break;
    std::vector<size_t> act;
    for (size_t i = 0; i < seqs.size(); ++i)
      if (left[i] > 0 && std::min(left[i], kPiece) == m) act.push_back(i);
    const size_t per = static_cast<size_t>(std::max<int64_t>(1, kBatchRows / m));
    for (size_t g0 = 0; g0 < act.size(); g0 += per) {
      // Cancellation (Ctrl-C) is honoured between calls of a long prefill, not only after it.
      if (cancel_.load()) return error(PHOTON_ERR_CANCELLED, "cancelled during the prompt's prefill");
      std::vector<Sequence *> group;
      for (size_t g = g0; g < std::min(act.size(), g0 + per); ++g) group.push_back(seqs[act[g]]);
      const int64_t B = static_cast<int64_t>(group.size());
      int64_t MB = 1;
      for (Sequence *s : group) {
        PHOTON_RETURN_IF_ERROR(cache_.ensure(s->cache, li, s->cache.lens[li] + m));
        MB = std::max<int64_t>(MB, static_cast<int64_t>(s->cache.tables[li].size()));
      }
      toks.resize(static_cast<size_t>(B * m));
      table.assign(static_cast<size_t>(B * MB), 0);
      lens.resize(static_cast<size_t>(B));
      for (int64_t b = 0; b < B; ++b) {
        const Sequence &s = *group[b];
        std::copy_n(s.tokens.begin() + s.cache.lens[li], m, toks.begin() + b * m);
        std::copy(s.cache.tables[li].begin(), s.cache.tables[li].end(), table.begin() + b * MB);
        lens[b] = static_cast<int32_t>(s.cache.lens[li]);
      }
      logits.assign(static_cast<size_t>(B * m * V_), 0.0f);
      StageArgs a(6);
      a.add(model_.weights(), {static_cast<int64_t>(model_.weightsSize())});
      a.add(toks.data(), {B, m});
      a.add(cache_.pool(li), cache_.poolShape(li));
      a.add(table.data(), {B, MB});
      a.add(lens.data(), {B});
      a.add(logits.data(), {B, m, V_});
      PHOTON_RETURN_IF_ERROR(runner_->run(fn, a));
      ++stats_.prefillCalls;
      for (int64_t b = 0; b < B; ++b) {
        Sequence &s = *group[b];
        cache_.setLength(s.cache, li, s.cache.lens[li] + m);
        if (s.cache.lens[li] == s.prefixLen) {
          const float *row = logits.data() + ((b + 1) * m - 1) * V_;
          s.nextLogits.assign(row, row + V_);
          s.prefilled = true;
        }
      }
    }
    for (size_t i : act) left[i] -= m;
  }
  return Status::ok();
}

Status Engine::prefillBatch(const std::vector<Sequence *> &seqs, const std::vector<int64_t> &take) {
  if (seqs.empty()) return Status::ok();
  double t0 = now();
  std::vector<int64_t> before;
  for (Sequence *s : seqs)
    before.push_back(L_ == 0 ? s->cache.lens[cache_.indexOfLevel(1)] : s->metas * tokensPerMeta_);
  Status st = L_ == 0 ? prefillVanillaBatch(seqs, take) : prefillPhotonBatch(seqs, take);
  stats_.prefillSeconds += now() - t0;
  // Prompt tokens prefilled, counted as prefillPart counts them.
  for (size_t i = 0; i < seqs.size(); ++i) {
    Sequence &s = *seqs[i];
    int64_t used = (L_ == 0 ? s.cache.lens[cache_.indexOfLevel(1)] : s.metas * tokensPerMeta_) -
                   before[i];
    int64_t counted = s.prefilled ? s.prefixLen : s.prefillCounted + used;
    stats_.prefillTokens += static_cast<uint64_t>(counted - s.prefillCounted);
    s.prefillCounted = counted;
  }
  return st;
}

Status Engine::stepVanilla(std::vector<Sequence *> &batch) {
  std::vector<Sequence *> cont;
  for (Sequence *sp : batch) {
    Sequence &s = *sp;
    static const std::vector<int32_t> kNone;
    if (opts_.logitsObserver) opts_.logitsObserver(s.id, s.nextLogits.data(), V_);
    int32_t t = sampler_.sample(s.nextLogits.data(), V_, s.params,
                                s.params.repetitionPenalty != 1.0f ? s.tokens : kNone, s.rng);
    appendGenerated(s, &t, 1);
    if (s.finish == PHOTON_FINISH_NONE) cont.push_back(sp);
  }
  if (cont.empty()) return Status::ok();
  StageFn fn = model_.stage("lm_step");
  int li = cache_.indexOfLevel(1);
  const int64_t B = static_cast<int64_t>(cont.size());
  int64_t MB = 1;
  for (Sequence *s : cont) {
    PHOTON_RETURN_IF_ERROR(cache_.ensure(s->cache, li, s->cache.lens[li] + 1));
    MB = std::max<int64_t>(MB, static_cast<int64_t>(s->cache.tables[li].size()));
  }
  std::vector<int32_t> table(static_cast<size_t>(B * MB), 0), lens(static_cast<size_t>(B)),
      toks(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const auto &t = cont[b]->cache.tables[li];
    std::copy(t.begin(), t.end(), table.begin() + b * MB);
    lens[b] = static_cast<int32_t>(cont[b]->cache.lens[li]);
    toks[b] = cont[b]->tokens.back();
  }
  std::vector<float> logits(static_cast<size_t>(B * V_), 0.0f);
  StageArgs a(6);
  a.add(model_.weights(), {static_cast<int64_t>(model_.weightsSize())});
  a.add(toks.data(), {B, 1});
  a.add(cache_.pool(li), cache_.poolShape(li));
  a.add(table.data(), {B, MB});
  a.add(lens.data(), {B});
  a.add(logits.data(), {B, 1, V_});
  PHOTON_RETURN_IF_ERROR(runner_->run(fn, a));
  for (int64_t b = 0; b < B; ++b) {
    cache_.setLength(cont[b]->cache, li, cont[b]->cache.lens[li] + 1);
    cont[b]->nextLogits.assign(logits.begin() + b * V_, logits.begin() + (b + 1) * V_);
  }
  return Status::ok();
}

} // namespace photon::rt
