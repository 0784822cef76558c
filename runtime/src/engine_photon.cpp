// The engine's PHOTON and Block Transformer stages (HierGen / RecGen): the encode_l /
// latent_l calls through the stage runner, the top-down decode of a meta-context's latents,
// the prefill of prompts (alone for replay models, batched across sequences otherwise), the
// top-level encode step (overlapped with the rendering of tokens in RecGen where it pays),
// and the token decoder over the window cache (token_start / token_next) or token_step.
// engine.cpp has the engine's lifecycle, engine_schedule.cpp the step that calls these.
#include "engine.h"

#include <algorithm>
#include <cstring>
#include <future>
#include <thread>

namespace photon::rt {

// ------------------------------------------------------------------ stage calls

Status Engine::callEncode(int level, std::vector<Sequence *> &batch, const void *input, int64_t n,
                          std::vector<float> &out) {
  const std::string name = "encode_" + std::to_string(level);
  StageFn fn = model_.stage(name);
  if (!fn) return error(PHOTON_ERR_ABI, "the artifact has no stage '" + name + "'");
  int li = cache_.indexOfLevel(level);
  if (li < 0) return error(PHOTON_ERR_FORMAT, "no cache for level " + std::to_string(level));
  const int64_t B = static_cast<int64_t>(batch.size());
  int64_t MB = 1;
  for (Sequence *s : batch) {
    PHOTON_RETURN_IF_ERROR(cache_.ensure(s->cache, li, s->cache.lens[li] + n));
    MB = std::max<int64_t>(MB, static_cast<int64_t>(s->cache.tables[li].size()));
  }
  std::vector<int32_t> table(static_cast<size_t>(B * MB), 0), lens(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const auto &t = batch[b]->cache.tables[li];
    std::copy(t.begin(), t.end(), table.begin() + b * MB);
    lens[b] = static_cast<int32_t>(batch[b]->cache.lens[li]);
  }
  out.assign(static_cast<size_t>(B * n * D_), 0.0f);
  StageArgs a(6);
  a.add(model_.weights(), {static_cast<int64_t>(model_.weightsSize())});
  if (level == 1) a.add(input, {B, n * C_[1]});
  else a.add(input, {B, n * C_[level], D_});
  a.add(cache_.pool(li), cache_.poolShape(li));
  a.add(table.data(), {B, MB});
  a.add(lens.data(), {B});
  a.add(out.data(), {B, n, D_});
  PHOTON_RETURN_IF_ERROR(runner_->run(fn, a));
  for (Sequence *s : batch) cache_.setLength(s->cache, li, s->cache.lens[li] + n);
  return Status::ok();
}

Status Engine::callLatent(int level, const std::vector<float> &prev, int64_t rows,
                          std::vector<float> &out) {
  const std::string name = "latent_" + std::to_string(level);
  StageFn fn = model_.stage(name);
  if (!fn) return error(PHOTON_ERR_ABI, "the artifact has no stage '" + name + "'");
  out.assign(static_cast<size_t>(rows * C_[level] * D_), 0.0f);
  StageArgs a(3);
  a.add(model_.weights(), {static_cast<int64_t>(model_.weightsSize())});
  a.add(prev.data(), {rows, D_});
  a.add(out.data(), {rows, C_[level], D_});
  PHOTON_RETURN_IF_ERROR(runner_->run(fn, a));
  return Status::ok();
}

// ------------------------------------------------------------------ photon / block

Status Engine::decodeLatents(std::vector<Sequence *> &batch, std::vector<float> &tokenPrev,
                             std::vector<float> &topChunk) {
  const int64_t B = static_cast<int64_t>(batch.size());
  if (L_ == 1) { // Block Transformer: token chunk k is fed X(1)_{k-1}
    tokenPrev.resize(static_cast<size_t>(B * D_));
    for (int64_t b = 0; b < B; ++b)
      std::memcpy(tokenPrev.data() + b * D_, batch[b]->topPrev.data(), sizeof(float) * D_);
    topChunk.clear();
    return Status::ok();
  }
  // Top level: Xhat(L-1) units of this meta-context from X(L)_{g-1}.
  std::vector<float> prev(static_cast<size_t>(B * D_)), U;
  for (int64_t b = 0; b < B; ++b)
    std::memcpy(prev.data() + b * D_, batch[b]->topPrev.data(), sizeof(float) * D_);
  PHOTON_RETURN_IF_ERROR(callLatent(L_, prev, B, U)); // [B, N_{L-1}, D]
  topChunk = U;
  // Levels L-1 .. 2: chunk h at level l-1 is generated from Xhat(l)_{h-1}.
  for (int l = L_ - 1; l >= 2; --l) {
    const int64_t Nl = N_[l];
    prev.assign(static_cast<size_t>(B * Nl * D_), 0.0f);
    for (int64_t b = 0; b < B; ++b) {
      Sequence &s = *batch[b];
      float *dst = prev.data() + b * Nl * D_;
      std::memcpy(dst, s.lastHat[l].data(), sizeof(float) * D_);
      std::memcpy(dst + D_, U.data() + b * Nl * D_, sizeof(float) * (Nl - 1) * D_);
      std::memcpy(s.lastHat[l].data(), U.data() + (b * Nl + Nl - 1) * D_, sizeof(float) * D_);
    }
    std::vector<float> next;
    PHOTON_RETURN_IF_ERROR(callLatent(l, prev, B * Nl, next)); // [B*Nl, C_l, D] = [B, N_{l-1}, D]
    U.swap(next);
  }
  // Token chunks: chunk k is fed Xhat(1)_{k-1} (shifted) or Xhat(1)_k (unshifted variant).
  const int64_t N1 = N_[1];
  tokenPrev.assign(static_cast<size_t>(B * N1 * D_), 0.0f);
  const bool shift = model_.manifest().decoderShift;
  for (int64_t b = 0; b < B; ++b) {
    Sequence &s = *batch[b];
    float *dst = tokenPrev.data() + b * N1 * D_;
    const float *u = U.data() + b * N1 * D_;
    if (shift) {
      std::memcpy(dst, s.lastHat[1].data(), sizeof(float) * D_);
      std::memcpy(dst + D_, u, sizeof(float) * (N1 - 1) * D_);
    } else {
      std::memcpy(dst, u, sizeof(float) * N1 * D_);
    }
    std::memcpy(s.lastHat[1].data(), u + (N1 - 1) * D_, sizeof(float) * D_);
  }
  return Status::ok();
}

Status Engine::encodeTokens(Sequence &s, const int32_t *tokens, int64_t count,
                            std::vector<float> &xTop) {
  const int64_t kPiece = 64; // top-level units per call: bounds the stages' temporaries
  std::vector<Sequence *> one{&s};
  xTop.clear();
  for (int64_t done = 0; done < count; done += kPiece) {
    // Cancellation (Ctrl-C) is honoured between pieces of a long prefill, not only after it.
    if (cancel_.load()) return error(PHOTON_ERR_CANCELLED, "cancelled during the prompt's prefill");
    int64_t m = std::min(kPiece, count - done);
    std::vector<float> x, y;
    PHOTON_RETURN_IF_ERROR(callEncode(1, one, tokens + done * tokensPerMeta_, m * N_[1], x));
    ++stats_.prefillCalls;
    for (int l = 2; l <= L_; ++l) {
      PHOTON_RETURN_IF_ERROR(callEncode(l, one, x.data(), m * N_[l], y));
      x.swap(y);
    }
    xTop.insert(xTop.end(), x.begin(), x.end());
  }
  return Status::ok();
}

void Engine::startPrefill(Sequence &s) {
  // Before the first meta-context every level's previous latent is its start latent.
  const float *sL = model_.startLatent(L_);
  s.topPrev.assign(sL, sL + D_);
  s.topPrev2.assign(sL, sL + D_);
  s.lastHat.assign(static_cast<size_t>(L_ + 1), {});
  for (int l = 1; l < L_; ++l) {
    const float *sl = model_.startLatent(l);
    s.lastHat[l].assign(sl, sl + D_);
  }
  s.metas = 0;
  s.prefillStarted = true;
}

Status Engine::prefillPhoton(Sequence &s, int64_t budget, int64_t &used) {
  used = 0;
  if (!s.prefillStarted) startPrefill(s);
  const float *sL = model_.startLatent(L_);
  const int64_t Pm = s.prefixLen / tokensPerMeta_;
  // The decoder state after meta-context Pm-1 (the last Xhat(l) units), needed by the first
  // generated chunk at each level. With chunk sizes >= 2 it depends only on meta Pm-1 (and
  // the prompt may be prefilled in parts); otherwise it is replayed from the start, which
  // needs every top-level unit at once (no parts).
  bool replay = false;
  for (int l = 2; l < L_; ++l) replay |= C_[l + 1] < 2;
  int64_t n = Pm - s.metas;
  if (budget > 0 && !replay) n = std::min<int64_t>(n, std::max<int64_t>(1, budget / tokensPerMeta_));
  std::vector<float> xTop;
  if (n > 0) {
    PHOTON_RETURN_IF_ERROR(encodeTokens(s, s.tokens.data() + s.metas * tokensPerMeta_, n, xTop));
    if (n >= 2) s.topPrev2.assign(xTop.end() - 2 * D_, xTop.end() - D_);
    else s.topPrev2 = s.topPrev;
    s.topPrev.assign(xTop.end() - D_, xTop.end());
    s.metas += n;
    used = n * tokensPerMeta_;
  }
  if (s.metas < Pm) return Status::ok(); // more in later steps
  if (Pm > 0 && opts_.mode == PHOTON_MODE_RECGEN)
    for (int l = 1; l < L_; ++l) cache_.releaseLevel(s.cache, cache_.indexOfLevel(l));
  if (L_ >= 2 && Pm > 0) {
    std::vector<float> last = s.topPrev;
    std::vector<Sequence *> one{&s};
    std::vector<float> tp, tc;
    if (replay) {
      for (int64_t m = 0; m < Pm; ++m) {
        if (m >= 1) s.topPrev.assign(xTop.begin() + (m - 1) * D_, xTop.begin() + m * D_);
        else s.topPrev.assign(sL, sL + D_);
        PHOTON_RETURN_IF_ERROR(decodeLatents(one, tp, tc));
      }
    } else {
      s.topPrev = s.topPrev2; // X(L) of meta Pm-2 (the start latent if Pm = 1)
      PHOTON_RETURN_IF_ERROR(decodeLatents(one, tp, tc));
    }
    s.topPrev = last;
  }
  s.prefilled = true;
  return Status::ok();
}

bool Engine::photonReplay() const {
  bool replay = false;
  for (int l = 2; l < L_; ++l) replay |= C_[l + 1] < 2;
  return replay;
}

// Prefill across sequences: rounds over the sequences with units left, each round taking the
// smallest piece left (at most kUnits) from all of them, in calls of at most kUnits top-level
// units (B * m), so a call's temporaries stay those of one sequence's piece before batching.
// A prefix is thus encoded in pieces whose bounds depend on the other prompts; the stages'
// results do not (a piece writes the K/V of its positions and attends to the cache before
// it), which the batched-prefill tests check against prompts prefilled alone.
Status Engine::prefillPhotonBatch(const std::vector<Sequence *> &seqs,
                                  const std::vector<int64_t> &take) {
  const int64_t kUnits = 64; // top-level units per call over the batch
  for (Sequence *sp : seqs)
    if (!sp->prefillStarted) startPrefill(*sp);
  std::vector<int64_t> left(take);
  std::vector<int32_t> toks;
  std::vector<float> x, y;
  const int64_t topRows = N_[L_]; // top-level units per meta-context (1)
  for (;;) {
    std::vector<size_t> act;
    int64_t m = kUnits;
    for (size_t i = 0; i < seqs.size(); ++i)
      if (left[i] > 0) {
        act.push_back(i);
        m = std::min(m, left[i]);
      }
    if (act.empty()) break;
    const size_t per = static_cast<size_t>(std::max<int64_t>(1, kUnits / m));
    for (size_t g0 = 0; g0 < act.size(); g0 += per) {
      // Cancellation (Ctrl-C) is honoured between calls of a long prefill, not only after it.
      if (cancel_.load()) return error(PHOTON_ERR_CANCELLED, "cancelled during the prompt's prefill");
      std::vector<Sequence *> group;
      for (size_t g = g0; g < std::min(act.size(), g0 + per); ++g) group.push_back(seqs[act[g]]);
      const int64_t B = static_cast<int64_t>(group.size()), T = m * tokensPerMeta_;
      toks.resize(static_cast<size_t>(B * T));
      for (int64_t b = 0; b < B; ++b)
        std::copy_n(group[b]->tokens.begin() + group[b]->metas * tokensPerMeta_, T,
                    toks.begin() + b * T);
      PHOTON_RETURN_IF_ERROR(callEncode(1, group, toks.data(), m * N_[1], x));
      ++stats_.prefillCalls;
      for (int l = 2; l <= L_; ++l) {
        PHOTON_RETURN_IF_ERROR(callEncode(l, group, x.data(), m * N_[l], y));
        x.swap(y);
      }
      const int64_t rows = m * topRows; // [B, rows, D]
      for (int64_t b = 0; b < B; ++b) {
        Sequence &s = *group[b];
        const float *xb = x.data() + b * rows * D_;
        if (rows >= 2) s.topPrev2.assign(xb + (rows - 2) * D_, xb + (rows - 1) * D_);
        else s.topPrev2 = s.topPrev;
        s.topPrev.assign(xb + (rows - 1) * D_, xb + rows * D_);
        s.metas += m;
      }
    }
    for (size_t i : act) left[i] -= m;
  }
  // The prefixes now complete: the decoder state after meta-context Pm-1 (the last Xhat(l)
  // units), for all of them in one pass of the latent stages.
  std::vector<Sequence *> done;
  for (Sequence *sp : seqs) {
    Sequence &s = *sp;
    const int64_t Pm = s.prefixLen / tokensPerMeta_;
    if (s.metas < Pm) continue; // more in later steps
    if (Pm > 0 && opts_.mode == PHOTON_MODE_RECGEN)
      for (int l = 1; l < L_; ++l) cache_.releaseLevel(s.cache, cache_.indexOfLevel(l));
    if (L_ >= 2 && Pm > 0) done.push_back(&s);
    else s.prefilled = true;
  }
  if (!done.empty()) {
    std::vector<std::vector<float>> last;
    for (Sequence *s : done) {
      last.push_back(s->topPrev);
      s->topPrev = s->topPrev2; // X(L) of meta Pm-2 (the start latent if Pm = 1)
    }
    std::vector<float> tp, tc;
    Status st = decodeLatents(done, tp, tc);
    for (size_t i = 0; i < done.size(); ++i) done[i]->topPrev = std::move(last[i]);
    PHOTON_RETURN_IF_ERROR(st);
    for (Sequence *s : done) s->prefilled = true;
  }
  return Status::ok();
}

Status Engine::encodeStep(std::vector<Sequence *> &batch, const std::vector<float> &xhatTop) {
  const int64_t B = static_cast<int64_t>(batch.size());
  if (B == 0) return Status::ok();
  std::vector<float> x, y;
  if (opts_.mode == PHOTON_MODE_RECGEN) {
    // A(L) = Chunk_L(Xhat(L-1)): the decoder's own reconstruction; no lower-level encoder.
    PHOTON_RETURN_IF_ERROR(callEncode(L_, batch, xhatTop.data(), 1, x));
  } else {
    std::vector<int32_t> toks(static_cast<size_t>(B * tokensPerMeta_));
    for (int64_t b = 0; b < B; ++b) {
      const Sequence &s = *batch[b];
      std::copy(s.tokens.begin() + s.metas * tokensPerMeta_,
                s.tokens.begin() + (s.metas + 1) * tokensPerMeta_, toks.begin() + b * tokensPerMeta_);
    }
    PHOTON_RETURN_IF_ERROR(callEncode(1, batch, toks.data(), N_[1], x));
    for (int l = 2; l <= L_; ++l) {
      PHOTON_RETURN_IF_ERROR(callEncode(l, batch, x.data(), N_[l], y));
      x.swap(y);
    }
  }
  for (int64_t b = 0; b < B; ++b) {
    batch[b]->topPrev.assign(x.begin() + b * D_, x.begin() + (b + 1) * D_);
    batch[b]->metas += 1;
  }
  return Status::ok();
}

Status Engine::stepPhoton(std::vector<Sequence *> &batch) {
  const int64_t B = static_cast<int64_t>(batch.size());
  const int64_t N1 = N_[1];
  const int C1 = C_[1];
  std::vector<float> tokenPrev, topChunk;
  PHOTON_RETURN_IF_ERROR(decodeLatents(batch, tokenPrev, topChunk));
  std::vector<int64_t> meta(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) meta[b] = batch[b]->metas;

  // RecGen: the next top-level step depends only on Xhat(L-1), known now; overlap it with the
  // token rendering below when there is a second core.
  std::future<Status> overlapped;
  const bool recgen = opts_.mode == PHOTON_MODE_RECGEN;
  // It pays with a core the kernels leave free (an --openmp artifact's kernels use
  // computeThreads() of them) and a step slower than starting a thread.
  const bool pays = std::thread::hardware_concurrency() > static_cast<unsigned>(model_.computeThreads()) &&
                    recgenEncodeSeconds_ > 200e-6;
  if (recgen && (opts_.overlapRecGen == 2 || (opts_.overlapRecGen == 1 && pays))) {
    std::vector<Sequence *> all(batch);
    try {
      overlapped = std::async(std::launch::async, [this, all, &topChunk]() mutable {
        model_.setComputeThreads(1); // this thread is the "second core" already
        bindWorkspace(1);            // the workspace is per thread
        return encodeStep(all, topChunk);
      });
    } catch (...) {
      // no thread available: fall back to the sequential order below
    }
  }

  const int64_t S = B * N1;
  std::vector<int32_t> chunkTok(static_cast<size_t>(S * C1), 0);
  // Prompt tokens of the current meta-context are forced, not sampled.
  auto absIndex = [&](int64_t b, int64_t c, int p) { return meta[b] * tokensPerMeta_ + c * C1 + p; };
  std::vector<std::vector<int32_t>> sampled(static_cast<size_t>(B));
  StageFn tokenStep = model_.stage("token_step");
  if (windowFloats_ > 0) {
    Status st = renderIncremental(batch, meta, tokenPrev, chunkTok, sampled);
    if (!st.isOk()) {
      if (overlapped.valid()) overlapped.wait();
      return st;
    }
  } else if (!tokenStep) {
    if (overlapped.valid()) overlapped.wait();
    return error(PHOTON_ERR_ABI, "the artifact has no stage 'token_step'");
  }
  std::vector<int64_t> streams;
  std::vector<float> prev, logits;
  std::vector<int32_t> toks, pos;
  for (int p = 0; p < C1 && windowFloats_ == 0; ++p) {
    streams.clear();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t c = 0; c < N1; ++c) {
        int64_t a = absIndex(b, c, p);
        if (a < batch[b]->prefixLen) chunkTok[(b * N1 + c) * C1 + p] = batch[b]->tokens[a];
        else if (a < batch[b]->limit) streams.push_back(b * N1 + c); // beyond: never sampled
      }
    if (streams.empty()) continue;
    const int64_t Sa = static_cast<int64_t>(streams.size());
    prev.resize(static_cast<size_t>(Sa * D_));
    toks.resize(static_cast<size_t>(Sa * C1));
    pos.assign(static_cast<size_t>(Sa), p);
    logits.assign(static_cast<size_t>(Sa * V_), 0.0f);
    for (int64_t i = 0; i < Sa; ++i) {
      std::memcpy(prev.data() + i * D_, tokenPrev.data() + streams[i] * D_, sizeof(float) * D_);
      std::memcpy(toks.data() + i * C1, chunkTok.data() + streams[i] * C1, sizeof(int32_t) * C1);
    }
    StageArgs a(5);
    a.add(model_.weights(), {static_cast<int64_t>(model_.weightsSize())});
    a.add(prev.data(), {Sa, D_});
    a.add(toks.data(), {Sa, C1});
    a.add(pos.data(), {Sa});
    a.add(logits.data(), {Sa, V_});
    PHOTON_RETURN_IF_ERROR(runner_->run(tokenStep, a));
    // Sample in (sequence, chunk) order; each sequence draws from its own RNG.
    for (int64_t i = 0; i < Sa; ++i) {
      int64_t b = streams[i] / N1;
      chunkTok[streams[i] * C1 + p] = sampleToken(*batch[b], logits.data() + i * V_, sampled[b]);
    }
  }
  // Commit the meta-context's tokens (beyond the prompt) in order.
  std::vector<Sequence *> cont;
  std::vector<float> contTop;
  const int64_t topRow = L_ >= 2 ? static_cast<int64_t>(C_[L_]) * D_ : 0;
  for (int64_t b = 0; b < B; ++b) {
    Sequence &s = *batch[b];
    std::vector<int32_t> gen;
    for (int64_t c = 0; c < N1; ++c)
      for (int p = 0; p < C1; ++p)
        if (absIndex(b, c, p) >= s.prefixLen && absIndex(b, c, p) < s.limit)
          gen.push_back(chunkTok[(b * N1 + c) * C1 + p]);
    appendGenerated(s, gen.data(), gen.size());
    if (s.finish == PHOTON_FINISH_NONE) {
      cont.push_back(&s);
      if (topRow) contTop.insert(contTop.end(), topChunk.begin() + b * topRow,
                                 topChunk.begin() + (b + 1) * topRow);
    }
  }
  if (overlapped.valid()) return overlapped.get();
  double t0 = now();
  Status st = encodeStep(cont, contTop);
  if (recgen && !cont.empty()) {
    double dt = now() - t0;
    recgenEncodeSeconds_ = recgenEncodeSeconds_ == 0 ? dt : 0.8 * recgenEncodeSeconds_ + 0.2 * dt;
  }
  return st;
}

// Samples the next token of `s` from `logits` (its own RNG; the repetition penalty sees the
// sequence's tokens and those sampled so far in this meta-context) and records it.
int32_t Engine::sampleToken(Sequence &s, const float *logits, std::vector<int32_t> &sampled) {
  std::vector<int32_t> hist;
  if (s.params.repetitionPenalty != 1.0f) {
    hist = s.tokens;
    hist.insert(hist.end(), sampled.begin(), sampled.end());
  }
  if (opts_.logitsObserver) opts_.logitsObserver(s.id, logits, V_);
  int32_t t = sampler_.sample(logits, V_, s.params, hist, s.rng);
  sampled.push_back(t);
  return t;
}

// The token decoder of one meta-context through the window cache: token_start computes the
// R converter rows of every stream that samples in this chunk (their K/V go to the stream's
// window, the logits are those of position 0), then token_next adds one row per position
// (the token at p-1) and returns the logits of position p. A stream takes part up to its
// last sampled position, forced prompt positions included (their rows are needed later).
// The streams of a call are those still taking part, in (sequence, chunk) order; their
// window slices are kept contiguous at the front of window_ (the sets only shrink).
Status Engine::renderIncremental(std::vector<Sequence *> &batch, const std::vector<int64_t> &meta,
                                 const std::vector<float> &tokenPrev,
                                 std::vector<int32_t> &chunkTok,
                                 std::vector<std::vector<int32_t>> &sampled) {
  StageFn tokenStart = model_.stage("token_start"), tokenNext = model_.stage("token_next");
  if (!tokenStart || !tokenNext)
    return error(PHOTON_ERR_ABI, "the artifact has no stages 'token_start' and 'token_next'");
  const int64_t B = static_cast<int64_t>(batch.size());
  const int64_t N1 = N_[1];
  const int C1 = C_[1];
  const int64_t S = B * N1;
  auto absIndex = [&](int64_t b, int64_t c, int p) { return meta[b] * tokensPerMeta_ + c * C1 + p; };
  std::vector<int> last(static_cast<size_t>(S), -1);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < N1; ++c)
      for (int p = 0; p < C1; ++p) {
        int64_t a = absIndex(b, c, p);
        if (a < batch[b]->prefixLen) chunkTok[(b * N1 + c) * C1 + p] = batch[b]->tokens[a];
        else if (a < batch[b]->limit) last[b * N1 + c] = p;
      }
  std::vector<int64_t> act;
  for (int64_t s = 0; s < S; ++s)
    if (last[s] >= 0) act.push_back(s);
  if (act.empty()) return Status::ok();
  const size_t wb = static_cast<size_t>(windowFloats_) * windowElementBytes_; // bytes per stream
  if (window_.size() * sizeof(float) < act.size() * wb)
    window_.resize((act.size() * wb + sizeof(float) - 1) / sizeof(float));
  char *window = reinterpret_cast<char *>(window_.data());
  std::vector<float> prev, logits;
  std::vector<int32_t> toks, pos;
  for (int p = 0; p < C1; ++p) {
    if (p > 0) {
      size_t k = 0;
      for (size_t i = 0; i < act.size(); ++i) {
        if (last[act[i]] < p) continue;
        if (k != i) std::memmove(window + k * wb, window + i * wb, wb);
        act[k++] = act[i];
      }
      act.resize(k);
    }
    if (act.empty()) break;
    const int64_t Sa = static_cast<int64_t>(act.size());
    std::vector<int64_t> wshape{Sa};
    wshape.insert(wshape.end(), windowDims_.begin(), windowDims_.end());
    logits.assign(static_cast<size_t>(Sa * V_), 0.0f);
    if (p == 0) {
      prev.resize(static_cast<size_t>(Sa * D_));
      for (int64_t i = 0; i < Sa; ++i)
        std::memcpy(prev.data() + i * D_, tokenPrev.data() + act[i] * D_, sizeof(float) * D_);
      StageArgs a(4);
      a.add(model_.weights(), {static_cast<int64_t>(model_.weightsSize())});
      a.add(prev.data(), {Sa, D_});
      a.add(window_.data(), wshape);
      a.add(logits.data(), {Sa, V_});
      PHOTON_RETURN_IF_ERROR(runner_->run(tokenStart, a));
    } else {
      toks.resize(static_cast<size_t>(Sa));
      pos.assign(static_cast<size_t>(Sa), p);
      for (int64_t i = 0; i < Sa; ++i) toks[i] = chunkTok[act[i] * C1 + p - 1];
      StageArgs a(5);
      a.add(model_.weights(), {static_cast<int64_t>(model_.weightsSize())});
      a.add(toks.data(), {Sa});
      a.add(pos.data(), {Sa});
      a.add(window_.data(), wshape);
      a.add(logits.data(), {Sa, V_});
      PHOTON_RETURN_IF_ERROR(runner_->run(tokenNext, a));
    }
    // Sample in (sequence, chunk) order; each sequence draws from its own RNG.
    for (int64_t i = 0; i < Sa; ++i) {
      int64_t b = act[i] / N1, c = act[i] % N1;
      int64_t a = absIndex(b, c, p);
      if (a < batch[b]->prefixLen || a >= batch[b]->limit) continue; // forced, or beyond the limit
      chunkTok[act[i] * C1 + p] = sampleToken(*batch[b], logits.data() + i * V_, sampled[b]);
    }
  }
  return Status::ok();
}

} // namespace photon::rt
