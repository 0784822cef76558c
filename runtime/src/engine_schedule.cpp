// The engine's step: the inbox drained (submissions, cancellations, submitN groups),
// admission against the cache budget, the prefill of admitted sequences (in parts for
// replay models), one decode step for the active batch (engine_photon.cpp or
// engine_vanilla.cpp), the generated tokens turned into text and checked against stop
// strings and limits, and the tokens reported to the callback. engine.cpp has the engine's
// lifecycle; docs/runtime.md describes the loop.
#include "engine.h"

#include <algorithm>
#include <cstring>
#include <mutex>

namespace photon::rt {

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

} // namespace photon::rt
