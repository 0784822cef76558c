#include "engine.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <future>
#include <mutex>
#include <thread>

namespace photon::rt {

namespace {
double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
} // namespace

void Engine::Workspace::ensure(int64_t n) {
  if (ptr || n <= 0) return;
  const int64_t rounded = (n + 63) / 64 * 64;
  ptr = std::aligned_alloc(64, static_cast<size_t>(rounded)); // pages are touched as used
  bytes = ptr ? rounded : 0;
}

void Engine::bindWorkspace(int which) {
  if (!model_.hasWorkspace()) return;
  const Manifest &m = model_.manifest();
  workspace_[which].ensure(m.workspaceFixedBytes +
                           m.workspaceBytesPerSequence * static_cast<int64_t>(opts_.maxBatch));
  model_.setWorkspace(workspace_[which].ptr, workspace_[which].bytes);
}

Engine::~Engine() {
  // The stepping thread must not keep a pointer into the freed workspace.
  if (workspace_[0].ptr) model_.setWorkspace(nullptr, 0);
  for (auto &s : active_) cache_.release(s->cache);
  for (auto &s : waiting_) cache_.release(s->cache);
}

void Engine::cancelRequest(uint64_t id) {
  {
    std::lock_guard<std::mutex> lock(inboxMu_);
    cancelIds_.push_back(id);
  }
  inboxCv_.notify_all();
}

void Engine::wake() {
  {
    std::lock_guard<std::mutex> lock(inboxMu_);
    woken_ = true;
  }
  inboxCv_.notify_all();
}

bool Engine::waitForWork(int timeoutMs) {
  std::unique_lock<std::mutex> lock(inboxMu_);
  auto ready = [&] {
    return woken_ || !inbox_.empty() || !cancelIds_.empty() || !active_.empty() ||
           !waiting_.empty() || cancel_.load();
  };
  if (timeoutMs > 0) inboxCv_.wait_for(lock, std::chrono::milliseconds(timeoutMs), ready);
  woken_ = false;
  return !inbox_.empty() || !cancelIds_.empty() || !active_.empty() || !waiting_.empty() ||
         cancel_.load();
}

EngineSnapshot Engine::snapshot() const {
  std::lock_guard<std::mutex> lock(snapMu_);
  EngineSnapshot s = snap_;
  s.queued += inboxCount_.load(); // submitted since the last step
  return s;
}

void Engine::publish() {
  EngineSnapshot s;
  s.stats = stats_;
  s.budget = cache_.budget();
  s.inUse = cache_.inUseBytes();
  s.reserved = cache_.reservedBytes();
  s.peakTotal = cache_.peakTotalBytes();
  for (size_t li = 0; li < cache_.levelCount(); ++li) {
    s.levels.push_back(cache_.spec(li).level);
    s.inUseLevel.push_back(cache_.inUseBytes(li));
    s.peakLevel.push_back(cache_.peakBytes(li));
  }
  s.queued = static_cast<int64_t>(waiting_.size()) + followerCount();
  s.running = static_cast<int64_t>(active_.size());
  std::lock_guard<std::mutex> lock(snapMu_);
  snap_ = std::move(s);
}

Status Engine::create(const Model &model, const EngineOptions &opts, std::unique_ptr<Engine> &out) {
  const Manifest &m = model.manifest();
  std::unique_ptr<Engine> e(new Engine(model, opts));
  if (e->opts_.maxBatch < 1)
    return error(PHOTON_ERR_INVALID_ARGUMENT, "max batch must be >= 1");
  if (e->opts_.threads < 0)
    return error(PHOTON_ERR_INVALID_ARGUMENT, "threads must be >= 0 (0 = the default)");
  if (e->opts_.memoryBudget == 0) e->opts_.memoryBudget = defaultCacheBudget(model);
  if (e->opts_.threads == 0 && model.parallel() && !std::getenv("OMP_NUM_THREADS") &&
      model.computeThreads() > 1)
    e->coreMonitor_ = std::make_unique<CoreMonitor>(model.computeThreads());
  if (m.family == PHOTON_FAMILY_FORWARD)
    return error(PHOTON_ERR_UNSUPPORTED,
                 "this is a forward-only artifact (photon-compile did not recognize a PHOTON, "
                 "Block or decoder-only structure in the model; its compile log says what it "
                 "did not recognize): it computes teacher-forced logits (photon-run --eval, "
                 "--logits-out) but cannot generate");
  if (opts.mode == PHOTON_MODE_RECGEN &&
      (m.family != PHOTON_FAMILY_PHOTON || m.levels < 2))
    return error(PHOTON_ERR_UNSUPPORTED,
                 "RecGen needs a PHOTON artifact with at least 2 levels; this is a " + m.familyName +
                     " model with " + std::to_string(m.levels) + " level(s): use --mode hiergen");
  if (opts.mode == PHOTON_MODE_RECGEN) {
    const CacheSpec *top = m.cache(m.levels);
    if (top && !top->usedIn("recgen"))
      return error(PHOTON_ERR_UNSUPPORTED, "the artifact's manifest does not list RecGen for its "
                                           "top-level cache; recompile with RecGen enabled");
  }
  e->D_ = m.width;
  e->V_ = m.vocab;
  if (m.family == PHOTON_FAMILY_VANILLA) {
    e->L_ = 0;
    e->tokensPerMeta_ = 1;
  } else {
    e->L_ = m.levels;
    e->C_.assign(static_cast<size_t>(e->L_ + 1), 1);
    for (int l = 1; l <= e->L_; ++l) e->C_[l] = m.chunkSizes[l - 1];
    e->N_.assign(static_cast<size_t>(e->L_ + 1), 1);
    for (int l = e->L_ - 1; l >= 0; --l) e->N_[l] = e->N_[l + 1] * e->C_[l + 1];
    e->tokensPerMeta_ = static_cast<int>(e->N_[0]);
    for (int l = 1; l <= e->L_; ++l)
      if (!model.startLatent(l))
        return error(PHOTON_ERR_FORMAT, "the artifact has no start latent for level " +
                                            std::to_string(l));
  }
  std::vector<CacheLevelSpec> levels;
  for (const auto &c : m.caches) {
    CacheLevelSpec s;
    s.level = c.level;
    s.layers = c.layers;
    s.kvHeads = c.kvHeads;
    s.headDim = c.headDim;
    s.blockSize = c.blockSize;
    s.tokensPerUnit = c.tokensPerUnit;
    s.elementBytes = c.elementBytes;
    levels.push_back(s);
  }
  PHOTON_RETURN_IF_ERROR(e->cache_.init(levels, e->opts_.memoryBudget, model.backend()));
  e->runner_.reset(new StageRunner(model)); // the engine's stream and stage buffers
  PHOTON_RETURN_IF_ERROR(e->runner_->init());
  if (opts.cachePolicy != PHOTON_CACHE_RESERVE && opts.cachePolicy != PHOTON_CACHE_GROW)
    return error(PHOTON_ERR_INVALID_ARGUMENT, "unknown cache policy");
  if (opts.cachePolicy == PHOTON_CACHE_GROW && opts.mode == PHOTON_MODE_RECGEN)
    return error(PHOTON_ERR_UNSUPPORTED,
                 "RecGen takes the reserve cache policy only: its top-level cache holds the "
                 "decoder's reconstructions, which a preempted sequence cannot rebuild from its "
                 "tokens");
  if (opts.prefillChunk < 0)
    return error(PHOTON_ERR_INVALID_ARGUMENT, "prefill chunk must be >= 0 (0 = whole prompts)");
  if (opts.eosId < -2 || opts.eosId >= e->V_)
    return error(PHOTON_ERR_INVALID_ARGUMENT,
                 "eos id " + std::to_string(opts.eosId) + " is outside the vocabulary [0, " +
                     std::to_string(e->V_) + ") (-1: the tokenizer's, -2: none)");
  e->eos_ = opts.eosId >= 0 ? opts.eosId : opts.eosId == -1 ? model.tokenizer().eosId() : -1;
  if (e->eos_ >= e->V_) e->eos_ = -1;
  // The incremental token step: both stages, and a window cache of static dimensions
  // (token_next's argument 3 = cache [S, layers, 2, R + C_1 - 1, kv_heads, head_dim]).
  const StageSpec *ts = m.stage("token_start"), *tn = m.stage("token_next");
  if (ts && tn && model.stage("token_start") && model.stage("token_next") &&
      ts->args.size() == 4 && tn->args.size() == 5 && tn->args[3].shape.size() == 6 &&
      ts->args[2].shape == tn->args[3].shape) {
    int64_t n = 1;
    for (size_t i = 1; i < 6; ++i) {
      char *end = nullptr;
      long long d = std::strtoll(tn->args[3].shape[i].c_str(), &end, 10);
      if (!end || *end || d < 1) { n = 0; break; }
      e->windowDims_.push_back(d);
      n *= d;
    }
    // Its elements are f32, or f16 with photon-compile --kv f16.
    const std::string &wt = tn->args[3].dtype;
    if (n > 0 && (wt == "f32" || wt == "f16")) {
      e->windowFloats_ = n;
      e->windowElementBytes_ = wt == "f16" ? 2 : 4;
    } else {
      e->windowDims_.clear();
    }
  }
  e->publish();
  out = std::move(e);
  return Status::ok();
}

std::vector<int64_t> Engine::unitsFor(int64_t promptLen, int64_t limit) const {
  std::vector<int64_t> units(cache_.levelCount(), 0);
  if (L_ == 0) {
    int li = cache_.indexOfLevel(1);
    if (li >= 0) units[li] = limit;
    return units;
  }
  int64_t promptMetas = promptLen / tokensPerMeta_;
  int64_t genMetas = (limit + tokensPerMeta_ - 1) / tokensPerMeta_ - 1; // last one is not encoded
  int64_t maxMetas = std::max(promptMetas, genMetas);
  for (int l = 1; l <= L_; ++l) {
    int li = cache_.indexOfLevel(l);
    if (li < 0) continue;
    bool recgen = opts_.mode == PHOTON_MODE_RECGEN;
    // RecGen may encode the last meta-context too (overlapped with its rendering).
    units[li] = recgen ? (l < L_ ? promptMetas * N_[l] : std::max(promptMetas, genMetas + 1))
                       : maxMetas * N_[l];
  }
  return units;
}

std::vector<int64_t> Engine::unitsNextStep(const Sequence &s, bool admitting) const {
  std::vector<int64_t> units(cache_.levelCount(), 0);
  if (L_ == 0) {
    int li = cache_.indexOfLevel(1);
    int64_t have = admitting ? s.prefixLen : static_cast<int64_t>(s.tokens.size());
    if (li >= 0) units[li] = std::min<int64_t>(have + 1, s.limit);
    return units;
  }
  std::vector<int64_t> worst = unitsFor(s.prefixLen, s.limit);
  int64_t metas = admitting ? s.prefixLen / tokensPerMeta_ : s.metas;
  for (int l = 1; l <= L_; ++l) {
    int li = cache_.indexOfLevel(l);
    if (li < 0) continue;
    units[li] = std::min<int64_t>((metas + 1) * N_[l], std::max<int64_t>(worst[li], metas * N_[l]));
  }
  return units;
}

uint64_t Engine::growthNeeded() const {
  uint64_t need = 0;
  for (const auto &s : active_) {
    std::vector<int64_t> u = unitsNextStep(*s, false);
    for (size_t li = 0; li < u.size(); ++li) {
      int64_t have = li < s->cache.reservedBlocks.size() ? s->cache.reservedBlocks[li] : 0;
      int64_t add = cache_.blocksFor(li, u[li]) - have;
      if (add > 0) need += static_cast<uint64_t>(add) * cache_.spec(li).blockBytes();
    }
  }
  return need;
}

void Engine::preempt(std::unique_ptr<Sequence> s) {
  cache_.release(s->cache);
  s->prefixLen = static_cast<int64_t>(s->tokens.size());
  s->metas = 0;
  s->prefilled = false;
  s->prefillStarted = false;
  s->prefillCounted = 0;
  s->topPrev.clear();
  s->lastHat.clear();
  s->nextLogits.clear();
  ++stats_.preemptions;
  waiting_.push_front(std::move(s));
}

void Engine::growOrPreempt() {
  for (size_t i = 0; i < active_.size();) {
    Sequence &s = *active_[i];
    bool everFits = true;
    Status st = cache_.reserve(s.cache, unitsNextStep(s, false), s.limit, everFits);
    if (st) {
      ++i;
      continue;
    }
    // Out of budget: the newest sequence gives its cache back (possibly this one).
    std::unique_ptr<Sequence> victim = std::move(active_.back());
    active_.pop_back();
    preempt(std::move(victim));
  }
}

Status Engine::submit(const std::vector<int32_t> &prompt, const SamplingParams &params, uint64_t &id,
                      bool ignoreEos) {
  const Manifest &m = model_.manifest();
  for (size_t i = 0; i < prompt.size(); ++i)
    if (prompt[i] < 0 || prompt[i] >= V_)
      return error(PHOTON_ERR_INVALID_ARGUMENT, "prompt token " + std::to_string(i) + " is " +
                                                    std::to_string(prompt[i]) +
                                                    ", outside the vocabulary [0, " +
                                                    std::to_string(V_) + ")");
  if (params.maxTokens < 1)
    return error(PHOTON_ERR_INVALID_ARGUMENT, "max tokens must be >= 1");
  if (L_ == 0 && prompt.empty())
    return error(PHOTON_ERR_INVALID_ARGUMENT,
                 "a vanilla model needs at least one prompt token (it has no start latent)");
  // A model with learned positions (manifest max_positions) has none past its table.
  int64_t contextLimit = opts_.contextLimit;
  if (m.maxPositions > 0 && (contextLimit <= 0 || contextLimit > m.maxPositions))
    contextLimit = m.maxPositions;
  if (contextLimit > 0 && static_cast<int64_t>(prompt.size()) >= contextLimit)
    return error(PHOTON_ERR_OUT_OF_BUDGET, "the prompt has " + std::to_string(prompt.size()) +
                                               " tokens; the context limit is " +
                                               std::to_string(contextLimit) +
                                               (contextLimit == m.maxPositions
                                                    ? " (the model's learned positions)"
                                                    : "") +
                                               ": shorten the prompt or raise the limit");
  if (params.temperature < 0 || params.topP < 0 || params.repetitionPenalty <= 0)
    return error(PHOTON_ERR_INVALID_ARGUMENT,
                 "temperature and top-p must be >= 0, repetition penalty > 0");
  auto s = std::unique_ptr<Sequence>(new Sequence());
  s->tokens = prompt;
  s->promptLen = static_cast<int64_t>(prompt.size());
  s->prefixLen = s->promptLen;
  s->ignoreEos = ignoreEos;
  s->limit = s->promptLen + params.maxTokens;
  if (contextLimit > 0) s->limit = std::min<int64_t>(s->limit, contextLimit);
  s->params = params;
  s->rng.reseed(params.seed);
  PHOTON_RETURN_IF_ERROR(cache_.checkEverFits(unitsFor(s->promptLen, s->limit), s->limit));
  s->id = nextId_.fetch_add(1);
  id = s->id;
  {
    std::lock_guard<std::mutex> lock(inboxMu_);
    inbox_.push_back(std::move(s));
    inboxCount_.fetch_add(1);
  }
  inboxCv_.notify_all();
  return Status::ok();
}

Status Engine::submitN(const std::vector<int32_t> &prompt, const SamplingParams &params, int n,
                       std::vector<uint64_t> &ids, bool ignoreEos) {
  ids.clear();
  if (n < 1) return error(PHOTON_ERR_INVALID_ARGUMENT, "the number of samples must be >= 1");
  for (int i = 0; i < n; ++i) {
    SamplingParams p = params;
    p.seed = params.seed + static_cast<uint64_t>(i);
    uint64_t id = 0;
    Status st = submit(prompt, p, id, ignoreEos);
    if (!st) {
      for (uint64_t x : ids) cancelRequest(x);
      ids.clear();
      return st;
    }
    ids.push_back(id);
  }
  if (n > 1) {
    std::lock_guard<std::mutex> lock(inboxMu_);
    groups_.push_back(ids);
  }
  return Status::ok();
}

Status Engine::fork(Sequence &leader, std::vector<std::unique_ptr<Sequence>> &started) {
  const bool grow = opts_.cachePolicy == PHOTON_CACHE_GROW;
  std::vector<std::unique_ptr<Sequence>> followers;
  followers.swap(leader.followers);
  for (auto &f : followers) {
    bool placed = false;
    if (static_cast<int>(active_.size() + started.size()) < opts_.maxBatch) {
      bool everFits = true;
      Status st = cache_.reserve(f->cache, grow ? unitsNextStep(leader, false) : unitsFor(f->promptLen, f->limit),
                                 f->limit, everFits);
      if (st) {
        for (size_t li = 0; li < cache_.levelCount(); ++li) {
          Status cst = cache_.copyLevel(leader.cache, f->cache, li);
          if (!cst) {
            cache_.release(f->cache);
            return cst;
          }
        }
        if (opts_.mode == PHOTON_MODE_RECGEN) // as the leader: lower levels only for the prefill
          for (int l = 1; l < L_; ++l) cache_.releaseLevel(f->cache, cache_.indexOfLevel(l));
        f->metas = leader.metas;
        f->topPrev = leader.topPrev;
        f->topPrev2 = leader.topPrev2;
        f->lastHat = leader.lastHat;
        f->nextLogits = leader.nextLogits;
        f->prefillStarted = f->prefilled = true;
        f->prefillCounted = f->prefixLen; // the prompt was prefilled once, by the leader
        started.push_back(std::move(f));
        placed = true;
      } else {
        cache_.release(f->cache);
      }
    }
    if (!placed) waiting_.push_front(std::move(f)); // no room now: it prefills on its own later
  }
  return Status::ok();
}

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

Status Engine::prefillPhoton(Sequence &s, int64_t budget, int64_t &used) {
  used = 0;
  const float *sL = model_.startLatent(L_);
  if (!s.prefillStarted) {
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
  const float *sL = model_.startLatent(L_);
  for (Sequence *sp : seqs) {
    Sequence &s = *sp;
    if (s.prefillStarted) continue;
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

// ------------------------------------------------------------------ scheduling

void Engine::appendGenerated(Sequence &s, const int32_t *toks, size_t n) {
  const Tokenizer &tok = model_.tokenizer();
  for (size_t i = 0; i < n && s.finish == PHOTON_FINISH_NONE; ++i) {
    size_t before = s.text.size();
    s.tokens.push_back(toks[i]);
    s.genEnds.push_back(0);
    if (eos_ >= 0 && toks[i] == eos_ && !s.ignoreEos) {
      // End of sequence: the EOS token itself is neither kept nor reported.
      s.tokens.pop_back();
      s.genEnds.pop_back();
      s.finish = PHOTON_FINISH_EOS;
      break;
    }
    s.text += tok.tokenBytes(toks[i]);
    s.genEnds.back() = s.text.size();
    if (!s.params.stop.empty()) {
      int64_t at = findStop(s.text, s.params.stop, before);
      if (at >= 0) {
        // Keep the tokens that end before the match; the text stops where the match starts.
        while (!s.genEnds.empty() && s.genEnds.back() > static_cast<size_t>(at)) {
          s.genEnds.pop_back();
          s.tokens.pop_back();
        }
        s.text.resize(static_cast<size_t>(at));
        s.finish = PHOTON_FINISH_STOP;
        break;
      }
    }
    if (static_cast<int64_t>(s.tokens.size()) >= s.limit) {
      bool byContext = s.limit < s.promptLen + s.params.maxTokens;
      s.finish = byContext ? PHOTON_FINISH_CONTEXT : PHOTON_FINISH_LENGTH;
    }
  }
}

void Engine::report(Sequence &s, const TokenCallback &cb, bool &cancelled) {
  size_t gen = s.tokens.size() - static_cast<size_t>(s.promptLen);
  size_t n = gen > s.emitted ? gen - s.emitted : 0;
  if (n == 0 && s.finish == PHOTON_FINISH_NONE) return;
  const int32_t *p = s.tokens.data() + s.promptLen + s.emitted;
  s.emitted = gen;
  stats_.decodeTokens += n;
  if (cb && !cb(s.id, p, n, s.finish)) cancelled = true;
}

void Engine::drainInbox(const TokenCallback &cb, bool &cancelled) {
  std::deque<std::unique_ptr<Sequence>> in;
  std::vector<uint64_t> ids;
  std::vector<std::vector<uint64_t>> groups;
  {
    std::lock_guard<std::mutex> lock(inboxMu_);
    in.swap(inbox_);
    ids.swap(cancelIds_);
    groups.swap(groups_);
    inboxCount_.store(0);
  }
  for (auto &s : in) waiting_.push_back(std::move(s));
  // submitN groups: the followers still waiting attach to their leader while it has not been
  // prefilled (they start from a copy of its caches when it is).
  for (const auto &group : groups) {
    Sequence *leader = nullptr;
    for (auto &s : waiting_)
      if (s->id == group[0] && !s->prefilled) leader = s.get();
    for (auto &s : active_)
      if (s->id == group[0] && !s->prefilled) leader = s.get();
    if (!leader) continue;
    for (size_t k = 1; k < group.size(); ++k)
      for (auto it = waiting_.begin(); it != waiting_.end(); ++it)
        if ((*it)->id == group[k] && !(*it)->cache.admitted) {
          leader->followers.push_back(std::move(*it));
          waiting_.erase(it);
          break;
        }
  }
  for (uint64_t id : ids) {
    std::unique_ptr<Sequence> victim;
    auto takeFrom = [&](auto &list) {
      for (auto it = list.begin(); it != list.end(); ++it)
        if ((*it)->id == id) {
          victim = std::move(*it);
          list.erase(it);
          return;
        }
    };
    takeFrom(waiting_);
    if (!victim) takeFrom(active_);
    for (auto &s : waiting_)
      if (!victim) takeFrom(s->followers);
    for (auto &s : active_)
      if (!victim) takeFrom(s->followers);
    if (!victim) continue; // finished already, or unknown
    // A cancelled leader's followers go on without it (they prefill on their own).
    for (auto &f : victim->followers) waiting_.push_front(std::move(f));
    victim->followers.clear();
    victim->finish = PHOTON_FINISH_CANCELLED;
    report(*victim, cb, cancelled);
    cache_.release(victim->cache);
    ++stats_.requestsCancelled;
  }
}

int64_t Engine::followerCount() const {
  int64_t n = 0;
  for (const auto &s : waiting_) n += static_cast<int64_t>(s->followers.size());
  for (const auto &s : active_) n += static_cast<int64_t>(s->followers.size());
  return n;
}

void Engine::finishAll(photon_finish why, const TokenCallback &cb) {
  bool ignored = false;
  // Followers of a leader not yet prefilled are reported like the requests they are.
  std::vector<std::unique_ptr<Sequence>> followers;
  for (auto &s : active_)
    for (auto &f : s->followers) followers.push_back(std::move(f));
  for (auto &s : waiting_)
    for (auto &f : s->followers) followers.push_back(std::move(f));
  for (auto &f : followers) waiting_.push_back(std::move(f));
  for (auto &s : active_) {
    s->finish = why;
    report(*s, cb, ignored);
    cache_.release(s->cache);
  }
  for (auto &s : waiting_) {
    s->finish = why;
    report(*s, cb, ignored); // a preempted sequence may have tokens not yet reported: none
    cache_.release(s->cache);
  }
  if (why == PHOTON_FINISH_CANCELLED)
    stats_.requestsCancelled += active_.size() + waiting_.size();
  active_.clear();
  waiting_.clear();
}

Status Engine::prefillPart(Sequence &s, int64_t budget, int64_t &used) {
  double t0 = now();
  Status st = prefillPhoton(s, budget, used);
  stats_.prefillSeconds += now() - t0;
  // Prompt tokens prefilled: the whole prefix once it is in (a PHOTON prompt's incomplete
  // last meta-context included, as it is forced through the token decoder), else the parts.
  int64_t counted = s.prefilled ? s.prefixLen : s.prefillCounted + used;
  stats_.prefillTokens += static_cast<uint64_t>(counted - s.prefillCounted);
  s.prefillCounted = counted;
  return st;
}

Status Engine::step(const TokenCallback &cb, int &active) {
  // OpenMP's thread count is per calling thread: set it on whichever thread steps.
  if (opts_.threads > 0) model_.setComputeThreads(opts_.threads);
  else if (coreMonitor_) model_.setComputeThreads(coreMonitor_->pick());
  bindWorkspace(0); // so is the stage workspace
  // Requests and cancellations that other threads queued since the last step.
  bool cbCancelled = false;
  drainInbox(cb, cbCancelled);
  if (cbCancelled) cancel_.store(true);
  if (cancel_.load()) {
    finishAll(PHOTON_FINISH_CANCELLED, cb);
    cancel_.store(false);
    active = 0;
    publish();
    return error(PHOTON_ERR_CANCELLED, "generation cancelled");
  }
  const bool grow = opts_.cachePolicy == PHOTON_CACHE_GROW;
  // GROW: the running sequences first claim their next step (preempting the newest while
  // the budget does not hold it); what is left admits new ones.
  if (grow) growOrPreempt();
  // Admission in arrival order while the batch and the budget allow.
  while (!waiting_.empty() && static_cast<int>(active_.size()) < opts_.maxBatch) {
    Sequence &s = *waiting_.front();
    bool everFits = true;
    Status st;
    if (grow) {
      // Room for the prompt and one step, and after it still room for the running
      // sequences' next step (so that admitting does not preempt at once).
      std::vector<int64_t> u = unitsNextStep(s, true);
      uint64_t left = cache_.budget() - cache_.reservedBytes();
      if (!active_.empty() && cache_.bytesFor(u) + growthNeeded() > left) break;
      st = cache_.reserve(s.cache, u, s.limit, everFits);
    } else {
      st = cache_.reserve(s.cache, unitsFor(s.promptLen, s.limit), s.limit, everFits);
    }
    if (!st) {
      if (everFits && !active_.empty()) break; // wait for running requests to finish
      publish();
      return st;
    }
    active_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
  // Prefill, in admission order: whole prefixes, or with a prefill chunk at most that many
  // tokens per step over all sequences (a long prompt then takes several steps, and the
  // running sequences decode between them). The pieces of all sequences prefilling in this
  // step go through the prefill stage together (prefillBatch).
  int64_t prefillLeft = opts_.prefillChunk;
  const bool chunked = opts_.prefillChunk > 0;
  std::vector<Sequence *> toPrefill;
  std::vector<int64_t> take;
  Status pst;
  for (size_t i = 0; i < active_.size() && pst; ++i) {
    Sequence &s = *active_[i];
    if (s.prefilled) continue;
    if (chunked && prefillLeft <= 0) break;
    if (L_ > 0 && photonReplay()) { // prefilled whole and alone
      int64_t used = 0;
      pst = prefillPart(s, 0, used);
      prefillLeft -= used;
      if (!pst) toPrefill.assign(1, &s);
      continue;
    }
    int64_t n; // tokens (vanilla) or top-level units (PHOTON / Block) of s in this step
    if (L_ == 0) {
      if (s.cache.lens.empty()) {
        pst = error(PHOTON_ERR_INTERNAL, "prefill before admission");
        toPrefill.assign(1, &s);
        break;
      }
      int64_t from = s.cache.lens[cache_.indexOfLevel(1)];
      n = (chunked ? std::min(s.prefixLen, from + prefillLeft) : s.prefixLen) - from;
      prefillLeft -= n;
    } else {
      n = s.prefixLen / tokensPerMeta_ - (s.prefillStarted ? s.metas : 0);
      if (chunked) n = std::min<int64_t>(n, std::max<int64_t>(1, prefillLeft / tokensPerMeta_));
      prefillLeft -= n * tokensPerMeta_;
    }
    toPrefill.push_back(&s);
    take.push_back(n);
  }
  if (pst && opts_.batchPrefill) {
    pst = prefillBatch(toPrefill, take);
  } else if (pst) {
    for (size_t i = 0; i < toPrefill.size() && pst; ++i) {
      Sequence *one = toPrefill[i];
      pst = prefillBatch({one}, {take[i]});
      if (!pst) toPrefill.assign(1, one); // the sequence whose prefill failed
    }
  }
  if (!pst && pst.code() == PHOTON_ERR_CANCELLED) {
    // Cancelled inside the prefill: these requests are reported as cancelled with the others.
    finishAll(PHOTON_FINISH_CANCELLED, cb);
    cancel_.store(false);
    active = 0;
    publish();
    return pst;
  }
  if (!pst) {
    // The sequences of the failed prefill are dropped with their caches.
    for (Sequence *f : toPrefill) {
      if (f->prefilled) continue;
      cache_.release(f->cache);
      for (auto it = active_.begin(); it != active_.end(); ++it)
        if (it->get() == f) {
          active_.erase(it);
          break;
        }
    }
    publish();
    return pst;
  }
  // submitN: a prefilled leader's followers start from a copy of its caches.
  std::vector<std::unique_ptr<Sequence>> started;
  for (auto &s : active_)
    if (s->prefilled && !s->followers.empty()) {
      Status fst = fork(*s, started);
      if (!fst) {
        publish();
        return fst;
      }
    }
  for (auto &f : started) active_.push_back(std::move(f));
  stats_.peakBatch = std::max(stats_.peakBatch, static_cast<int>(active_.size()));
  std::vector<Sequence *> batch;
  for (auto &s : active_)
    if (s->prefilled) batch.push_back(s.get());
  if (!batch.empty()) {
    double t0 = now();
    Status st = L_ == 0 ? stepVanilla(batch) : stepPhoton(batch);
    stats_.decodeSeconds += now() - t0;
    if (!st) {
      publish();
      return st;
    }
    bool cancelled = false;
    std::vector<std::unique_ptr<Sequence>> keep;
    for (auto &s : active_) {
      report(*s, cb, cancelled);
      if (s->finish != PHOTON_FINISH_NONE) {
        cache_.release(s->cache);
        ++stats_.requestsFinished;
      } else {
        keep.push_back(std::move(s));
      }
    }
    active_.swap(keep);
    if (cancelled) cancel_.store(true);
  }
  active = static_cast<int>(active_.size() + waiting_.size() + inboxCount_.load() + followerCount());
  publish();
  return Status::ok();
}

Status Engine::run(const TokenCallback &cb) {
  int active = 1;
  while (active > 0) PHOTON_RETURN_IF_ERROR(step(cb, active));
  if (cancel_.load()) {
    int ignored;
    return step(cb, ignored);
  }
  return Status::ok();
}

Status forwardLogits(const Model &model, const int32_t *tokens, int32_t batch, int32_t length,
                     float *logits) {
  StageFn fn = model.stage("forward");
  if (!fn)
    return error(PHOTON_ERR_UNSUPPORTED, "the artifact has no 'forward' stage; recompile with "
                                         "the forward stage enabled to evaluate or dump logits");
  const Manifest &m = model.manifest();
  int tps = m.tokensPerStep();
  if (batch < 1 || length < 1 || length % tps != 0)
    return error(PHOTON_ERR_INVALID_ARGUMENT, "forward needs batch >= 1 and a length that is a "
                                              "multiple of " + std::to_string(tps) + ", got " +
                                              std::to_string(length));
  if (m.maxPositions > 0 && length > m.maxPositions)
    return error(PHOTON_ERR_INVALID_ARGUMENT,
                 "forward of " + std::to_string(length) + " tokens, but the model has learned "
                 "positions for " + std::to_string(m.maxPositions) + " (manifest max_positions)");
  for (int64_t i = 0; i < static_cast<int64_t>(batch) * length; ++i)
    if (tokens[i] < 0 || tokens[i] >= m.vocab)
      return error(PHOTON_ERR_INVALID_ARGUMENT, "token " + std::to_string(tokens[i]) +
                                                    " is outside the vocabulary");
  StageArgs a(3);
  a.add(model.weights(), {static_cast<int64_t>(model.weightsSize())});
  a.add(tokens, {batch, length});
  a.add(logits, {batch, length, m.vocab});
  StageRunner runner(model);
  PHOTON_RETURN_IF_ERROR(runner.init());
  PHOTON_RETURN_IF_ERROR(runner.run(fn, a));
  return Status::ok();
}

} // namespace photon::rt
