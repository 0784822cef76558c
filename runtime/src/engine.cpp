// The engine's lifecycle and admission: the per-thread stage workspace, the inbox that other
// threads submit to and cancel through (submit, submitN, cancelRequest, wake, waitForWork),
// the published snapshot, Engine::create (geometry and stages from the manifest), the cache
// units a request reserves and the GROW policy's growth and preemption, the start of
// submitN's followers from a prefilled leader (fork), and the teacher-forced forwardLogits.
// The other parts of the engine: engine_photon.cpp (PHOTON / Block Transformer stages),
// engine_vanilla.cpp (vanilla stages), engine_schedule.cpp (one step: admission, prefill,
// decode, reporting). docs/runtime.md describes the loop.
#include "engine.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace photon::rt {

double Engine::now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

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
