// The generation engine: HierGen / RecGen for PHOTON (any L), Block Transformer (L = 1) and
// vanilla artifacts over the stage ABI, with continuous batching. docs/runtime.md describes
// the loop step by step. Defined in engine.cpp (lifecycle, admission), engine_schedule.cpp
// (one step), engine_photon.cpp (PHOTON / Block stages) and engine_vanilla.cpp.
#ifndef PHOTON_RUNTIME_ENGINE_H
#define PHOTON_RUNTIME_ENGINE_H

#include "artifact.h"
#include "cache.h"
#include "cores.h"
#include "device_stage.h"
#include "memref.h"
#include "sampler.h"

#include <atomic>
#include <cstdlib>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace photon::rt {

struct EngineOptions {
  photon_mode mode = PHOTON_MODE_HIERGEN;
  uint64_t memoryBudget = 0; // 0: defaultMemoryBudget()
  int maxBatch = 64;
  /// Total tokens (prompt + generated) a sequence may reach; 0 = no limit but the budget.
  /// The manifest's max_context is the training context; RoPE models run past it.
  int64_t contextLimit = 0;
  /// RecGen: run the next top-level step (encode_L over Xhat(L-1), which does not depend on
  /// the sampled tokens) on a second thread while the tokens of the meta-context render.
  /// 0 = never; 1 = where it pays (a second core, and the step takes longer than starting a
  /// thread: measured on the first sequential steps); 2 = always.
  int overlapRecGen = 1;
  /// Compute threads of an --openmp artifact's kernels; 0 = OpenMP's default
  /// (OMP_NUM_THREADS, else every core). Ignored by a sequential artifact.
  int threads = 0;
  /// How cache is claimed (photon.h, photon_cache_policy): RESERVE takes a request's
  /// worst case at admission; GROW takes what the next step needs, grows every step and,
  /// when the budget runs out, preempts the newest sequence (its cache is freed, it goes back
  /// to the front of the queue and is re-prefilled from its tokens when room frees up).
  photon_cache_policy cachePolicy = PHOTON_CACHE_RESERVE;
  /// End-of-sequence token: -1 = the tokenizer's (if it has one), -2 = none, >= 0 = this id.
  int32_t eosId = -1;
  /// Prompt tokens prefilled per step over all admitted sequences; 0 = a prompt is prefilled
  /// whole when admitted. With a chunk, a long prompt takes several steps (PHOTON: whole
  /// meta-contexts, at least one per step) and the running sequences decode in between.
  int64_t prefillChunk = 0;
  /// Prefill the sequences of a step together (shared stage calls, docs/runtime.md "Batched
  /// prefill"); false: one sequence per call, as before batching (for measurements).
  bool batchPrefill = true;
  /// Tests and debugging: called on the scheduler thread with the logits each generated token
  /// is sampled from (before sampling; `vocab` floats). Empty: not called.
  std::function<void(uint64_t id, const float *logits, int vocab)> logitsObserver;
};

struct EngineStats {
  uint64_t prefillTokens = 0;
  double prefillSeconds = 0;
  uint64_t prefillCalls = 0; // calls of the first prefill stage (encode_1 / lm_step)
  uint64_t decodeTokens = 0;
  double decodeSeconds = 0;
  uint64_t requestsFinished = 0;
  uint64_t requestsCancelled = 0;
  uint64_t preemptions = 0;
  int peakBatch = 0;
};

/// What other threads may read while the scheduler thread steps (photon_engine_get_stats,
/// a server's /metrics): a copy taken at the end of every step, under a lock.
struct EngineSnapshot {
  EngineStats stats;
  uint64_t budget = 0, inUse = 0, reserved = 0, peakTotal = 0;
  std::vector<int> levels;
  std::vector<uint64_t> inUseLevel, peakLevel;
  int64_t queued = 0;  // submitted, not yet admitted (the inbox and the waiting queue)
  int64_t running = 0; // admitted (prefilled), generating
};

/// Called with the new tokens of a request (final: after stop/max-token truncation) and, on
/// the last call, the finish reason. Return false to cancel the run.
using TokenCallback =
    std::function<bool(uint64_t id, const int32_t *tokens, size_t n, photon_finish finish)>;

class Engine {
public:
  static Status create(const Model &model, const EngineOptions &opts, std::unique_ptr<Engine> &out);
  ~Engine();

  // Threads: submit, cancelRequest, cancel, wake, waitForWork's waking and snapshot may be
  // called from any thread at any time. step and run (and everything below them) run on one
  // thread at a time, the scheduler thread; submissions and cancellations reach it through
  // a queue (the inbox) that step drains first.

  /// Queues a request (any thread); refuses one that can never fit the budget or the context.
  Status submit(const std::vector<int32_t> &prompt, const SamplingParams &params, uint64_t &id,
                bool ignoreEos = false);
  /// Queues n samples of one prompt (any thread): sample i draws with seed params.seed + i,
  /// and ids[i] is its id. The prompt is prefilled once; when that is done the other samples
  /// start from a copy of its cache (where the budget and the batch have room; otherwise they
  /// prefill on their own later). The tokens are those of n separate submissions.
  Status submitN(const std::vector<int32_t> &prompt, const SamplingParams &params, int n,
                 std::vector<uint64_t> &ids, bool ignoreEos = false);
  /// Cancels one request (any thread): the next step reports it with PHOTON_FINISH_CANCELLED
  /// (its tokens so far were reported) and frees its cache. Unknown or finished ids: no-op.
  void cancelRequest(uint64_t id);
  /// Admit + prefill what fits, one decode step for all active sequences, report tokens.
  Status step(const TokenCallback &cb, int &active);
  Status run(const TokenCallback &cb);
  void cancel() { cancel_.store(true); }
  /// Scheduler thread: blocks until a request is queued or running, wake() is called or
  /// `timeoutMs` passes. Returns whether there is work.
  bool waitForWork(int timeoutMs);
  /// Any thread: makes a waitForWork return now.
  void wake();
  EngineSnapshot snapshot() const;

  const EngineStats &stats() const { return stats_; }
  const CacheManager &cache() const { return cache_; }
  const Model &model() const { return model_; }
  photon_mode mode() const { return opts_.mode; }
  size_t activeCount() const { return active_.size(); }
  size_t waitingCount() const { return waiting_.size(); }
  /// Cache units per level (index into the cache manager) a request reserves.
  std::vector<int64_t> unitsFor(int64_t promptLen, int64_t limitTokens) const;

private:
  struct Sequence {
    uint64_t id = 0;
    std::vector<int32_t> tokens; // prompt + generated
    int64_t promptLen = 0;
    int64_t prefixLen = 0;       // tokens prefilled at (re)admission: the prompt, or after a
                                 // preemption the prompt and the tokens generated before it
    int64_t limit = 0;           // total tokens at which generation stops
    SamplingParams params;
    bool ignoreEos = false;
    Rng rng;
    SeqCache cache;
    int64_t metas = 0;                     // top-level units encoded (photon / block)
    std::vector<float> topPrev;            // X(L)_{g-1} or s_L
    std::vector<float> topPrev2;           // prefill in parts: X(L) of the meta before topPrev's
    bool prefillStarted = false, prefilled = false;
    int64_t prefillCounted = 0;            // prefix tokens counted in stats_.prefillTokens
    std::vector<std::unique_ptr<Sequence>> followers; // submitN: samples waiting for this prefill
    std::vector<std::vector<float>> lastHat; // [l] = last Xhat(l) unit of the previous meta (l < L)
    std::vector<float> nextLogits;         // vanilla: logits for the next token
    std::string text;                      // generated bytes (stop strings)
    std::vector<size_t> genEnds;           // byte end of each generated token in text
    size_t emitted = 0;                    // generated tokens reported
    photon_finish finish = PHOTON_FINISH_NONE;
  };

  Engine(const Model &model, const EngineOptions &opts) : model_(model), opts_(opts) {}
  /// Seconds on the steady clock (the statistics' timings).
  static double now();
  /// Prefills up to `budget` more tokens of s's prefix (0: all of it) on its own (PHOTON
  /// replay models only); `used` = tokens done. Sets s.prefilled once the prefix is cached.
  Status prefillPart(Sequence &s, int64_t budget, int64_t &used);
  /// Prefills the admitted, not yet prefilled sequences of this step (admission order) by
  /// `take[i]` more of seqs[i]'s prefix (tokens for vanilla, top-level units = meta-contexts
  /// for PHOTON/Block), batched across the sequences: each call of the prefill stage takes the
  /// sequences whose pieces have the same length (the stage ABI's [B, n]). Updates the
  /// prefill statistics. Not for replay models (photonReplay()); those use prefillPart.
  Status prefillBatch(const std::vector<Sequence *> &seqs, const std::vector<int64_t> &take);
  Status prefillVanillaBatch(const std::vector<Sequence *> &seqs, const std::vector<int64_t> &take);
  Status prefillPhotonBatch(const std::vector<Sequence *> &seqs, const std::vector<int64_t> &take);
  /// PHOTON with a chunk size 1 above level 2: the decoder state after the prompt is replayed
  /// from every top-level unit, so a prompt is prefilled whole and alone (prefillPhoton).
  bool photonReplay() const;
  /// Units per level the sequence needs through its next decode step (GROW policy).
  std::vector<int64_t> unitsNextStep(const Sequence &s, bool admitting) const;
  /// GROW: bytes the active sequences must add to their reservations for their next step.
  uint64_t growthNeeded() const;
  /// GROW: extends every active sequence's reservation to its next step, preempting the
  /// newest sequences while it does not fit.
  void growOrPreempt();
  void preempt(std::unique_ptr<Sequence> s);
  int64_t followerCount() const;
  /// submitN: starts the followers of a prefilled sequence from a copy of its state.
  Status fork(Sequence &leader, std::vector<std::unique_ptr<Sequence>> &started);
  void drainInbox(const TokenCallback &cb, bool &cancelled);
  void publish();
  Status prefillPhoton(Sequence &s, int64_t budget, int64_t &used);
  /// A PHOTON / Block sequence's state before its first meta-context (start latents).
  void startPrefill(Sequence &s);
  Status stepPhoton(std::vector<Sequence *> &batch);
  Status stepVanilla(std::vector<Sequence *> &batch);
  /// Runs latent_L .. latent_2 for the batch and returns the level-1 latents per token chunk
  /// (the `prev` rows of token_step): [B * N_1, D]. Updates lastHat.
  Status decodeLatents(std::vector<Sequence *> &batch, std::vector<float> &tokenPrev,
                       std::vector<float> &topChunk);
  Status encodeStep(std::vector<Sequence *> &batch, const std::vector<float> &xhatTop);
  /// Encodes `count` top-level units of one sequence from tokens (prefill).
  Status encodeTokens(Sequence &s, const int32_t *tokens, int64_t count, std::vector<float> &xTop);
  Status callEncode(int level, std::vector<Sequence *> &batch, const void *input, int64_t n,
                    std::vector<float> &out);
  Status callLatent(int level, const std::vector<float> &prev, int64_t rows, std::vector<float> &out);
  void appendGenerated(Sequence &s, const int32_t *toks, size_t n);
  void report(Sequence &s, const TokenCallback &cb, bool &cancelled);
  void finishAll(photon_finish why, const TokenCallback &cb);

  /// The stage workspace of one engine thread (photon-plan-workspace): allocated once, sized
  /// from the manifest for the engine's max batch; [0] for the stepping thread, [1] for the
  /// thread that overlaps RecGen's next top-level step (allocated on its first use).
  struct Workspace {
    void *ptr = nullptr;
    int64_t bytes = 0;
    ~Workspace() { std::free(ptr); }
    void ensure(int64_t n);
  };
  Workspace workspace_[2];
  void bindWorkspace(int which);

  const Model &model_;
  EngineOptions opts_;
  // threads = 0 on an --openmp artifact without OMP_NUM_THREADS: the cores others leave free.
  std::unique_ptr<CoreMonitor> coreMonitor_;
  CacheManager cache_;
  std::unique_ptr<StageRunner> runner_; // stage calls through the model's device backend
  Sampler sampler_;
  std::deque<std::unique_ptr<Sequence>> waiting_;
  std::vector<std::unique_ptr<Sequence>> active_;
  std::atomic<uint64_t> nextId_{1};
  int32_t eos_ = -1; // resolved end-of-sequence id, -1 = none
  // The inbox: submissions and cancellations from any thread, drained by step().
  std::mutex inboxMu_;
  std::condition_variable inboxCv_;
  std::deque<std::unique_ptr<Sequence>> inbox_;
  std::vector<uint64_t> cancelIds_;
  std::vector<std::vector<uint64_t>> groups_; // submitN: ids whose first one prefills for all
  bool woken_ = false;
  std::atomic<int64_t> inboxCount_{0};
  mutable std::mutex snapMu_;
  EngineSnapshot snap_;
  EngineStats stats_;
  std::atomic<bool> cancel_{false};
  double recgenEncodeSeconds_ = 0; // moving average of a sequential RecGen top-level step
  // Derived geometry.
  int L_ = 0, D_ = 0, V_ = 0, tokensPerMeta_ = 1;
  std::vector<int> C_;     // C_[l] for l = 1..L (C_[0] unused)
  std::vector<int64_t> N_; // N_[l] = level-l units per meta-context (l = 0: tokens)
  // Token decoder window cache (token_start / token_next, docs/artifact.md): the static
  // dimensions of one stream's slice [layers, 2, R + C_1 - 1, kv_heads, head_dim]; empty
  // when the artifact has only token_step. Sized per call; it never grows with context.
  std::vector<int64_t> windowDims_;
  int64_t windowFloats_ = 0;    // elements of one stream's slice
  int windowElementBytes_ = 4;  // 4 (f32) or 2 (f16: photon-compile --kv f16)
  std::vector<float> window_;   // storage of windowFloats_ * windowElementBytes_ per stream
  int32_t sampleToken(Sequence &s, const float *logits, std::vector<int32_t> &sampled);
  Status renderIncremental(std::vector<Sequence *> &batch, const std::vector<int64_t> &meta,
                           const std::vector<float> &tokenPrev, std::vector<int32_t> &chunkTok,
                           std::vector<std::vector<int32_t>> &sampled);
};

/// Teacher-forced logits through the `forward` stage.
Status forwardLogits(const Model &model, const int32_t *tokens, int32_t batch, int32_t length,
                     float *logits);

} // namespace photon::rt

#endif
