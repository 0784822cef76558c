// Thin C++17 wrapper over the C API of photon.h: RAII handles, std::string / std::vector,
// and photon::Error (a status code plus the message) instead of status codes. Header-only;
// link libphoton (CMake: photon::runtime). Ownership, lifetime and threads are those of the
// C handles (photon.h): a Model may be shared by threads and engines, and an Engine keeps
// its model loaded, so destroying a Model before its Engines is safe; an Engine's step(),
// run() and wait() run on one scheduler thread at a time, while submit(), cancelRequest(),
// cancel(), wake() and stats() may come from any thread. Exceptions thrown by an Engine callback
// stop the run and are rethrown from run()/step(); they never cross the C library.
//
//   photon::Model model("tiny.photon");
//   photon::Engine engine(model, photon::EngineOptions().mode(PHOTON_MODE_RECGEN));
//   auto id = engine.submit(model.tokenize("Once upon a time"), photon::Sampling().maxTokens(64));
//   engine.run([&](photon_request_id, const std::vector<int32_t> &t, photon_finish) {
//     std::cout << model.detokenize(t) << std::flush;
//     return true;
//   });
#ifndef PHOTON_PHOTON_HPP
#define PHOTON_PHOTON_HPP

#include "photon/photon.h"

#include <exception>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace photon {

class Error : public std::runtime_error {
public:
  Error(photon_status s, const std::string &msg) : std::runtime_error(msg), status_(s) {}
  photon_status status() const { return status_; }

private:
  photon_status status_;
};

inline void check(photon_status s) {
  if (s != PHOTON_OK) throw Error(s, photon_last_error());
}

class Model {
public:
  explicit Model(const std::string &path, bool verifyChecksum = true, bool checkCpu = true) {
    photon_load_options o;
    photon_load_options_defaults(&o);
    o.verify_checksum = verifyChecksum;
    o.check_cpu = checkCpu;
    check(photon_model_load(path.c_str(), &o, &m_));
  }
  ~Model() { photon_model_free(m_); }
  Model(const Model &) = delete;
  Model &operator=(const Model &) = delete;
  Model(Model &&o) noexcept : m_(o.m_) { o.m_ = nullptr; }

  photon_model *get() const { return m_; }
  /// The bytes of one token (detokenize of a single id).
  std::string tokenBytes(int32_t id) const { return detokenize(std::vector<int32_t>{id}); }
  photon_model_info info() const {
    photon_model_info i;
    i.struct_size = sizeof i;
    check(photon_model_get_info(m_, &i));
    return i;
  }
  std::vector<int32_t> tokenize(const std::string &text) const {
    size_t n = 0;
    check(photon_tokenize(m_, text.data(), text.size(), nullptr, 0, &n));
    std::vector<int32_t> out(n);
    check(photon_tokenize(m_, text.data(), text.size(), out.data(), out.size(), &n));
    return out;
  }
  std::string detokenize(const std::vector<int32_t> &ids) const {
    size_t n = 0;
    check(photon_detokenize(m_, ids.data(), ids.size(), nullptr, 0, &n));
    std::string out(n, '\0');
    check(photon_detokenize(m_, ids.data(), ids.size(), &out[0], out.size(), &n));
    return out;
  }
  /// Teacher-forced logits [batch, length, vocab].
  std::vector<float> forward(const std::vector<int32_t> &tokens, int32_t batch, int32_t length) const {
    std::vector<float> logits(static_cast<size_t>(batch) * length * info().vocab);
    forward(tokens.data(), batch, length, logits.data());
    return logits;
  }
  /// Teacher-forced logits into `logits` ([batch, length, vocab] floats).
  void forward(const int32_t *tokens, int32_t batch, int32_t length, float *logits) const {
    check(photon_model_forward(m_, tokens, batch, length, logits));
  }

private:
  photon_model *m_ = nullptr;
};

class EngineOptions {
public:
  EngineOptions() { photon_engine_options_defaults(&o_); }
  EngineOptions &mode(photon_mode m) { o_.mode = m; return *this; }
  EngineOptions &memoryBudget(uint64_t bytes) { o_.memory_budget = bytes; return *this; }
  EngineOptions &maxBatch(int32_t n) { o_.max_batch = n; return *this; }
  EngineOptions &contextLimit(int64_t n) { o_.context_limit = n; return *this; }
  EngineOptions &overlapRecGen(int mode) { o_.overlap_recgen = mode; return *this; } // 0/1/2
  EngineOptions &threads(int32_t n) { o_.threads = n; return *this; } // 0: OpenMP's default
  EngineOptions &cachePolicy(photon_cache_policy p) { o_.cache_policy = p; return *this; }
  EngineOptions &eosId(int32_t id) { o_.eos_id = id; return *this; } // -1 tokenizer's, -2 none
  EngineOptions &prefillChunk(int64_t tokens) { o_.prefill_chunk = tokens; return *this; } // 0: whole
  const photon_engine_options *get() const { return &o_; }

private:
  photon_engine_options o_;
};

class Sampling {
public:
  Sampling() { photon_sampling_defaults(&s_); }
  Sampling &temperature(float t) { s_.temperature = t; return *this; }
  Sampling &topK(int32_t k) { s_.top_k = k; return *this; }
  Sampling &topP(float p) { s_.top_p = p; return *this; }
  Sampling &repetitionPenalty(float r) { s_.repetition_penalty = r; return *this; }
  Sampling &seed(uint64_t s) { s_.seed = s; return *this; }
  Sampling &maxTokens(int32_t n) { s_.max_tokens = n; return *this; }
  Sampling &stop(std::vector<std::string> s) { stop_ = std::move(s); return *this; }
  Sampling &ignoreEos(bool b) { s_.ignore_eos = b ? 1 : 0; return *this; }
  /// The C struct; valid while this object lives and is not modified.
  const photon_sampling *get() {
    ptrs_.clear();
    for (const auto &s : stop_) ptrs_.push_back(s.c_str());
    s_.stop = ptrs_.data();
    s_.n_stop = static_cast<int32_t>(ptrs_.size());
    return &s_;
  }

private:
  photon_sampling s_;
  std::vector<std::string> stop_;
  std::vector<const char *> ptrs_;
};

class Engine {
public:
  /// Receives new tokens of a request; return false to cancel the run.
  using Callback = std::function<bool(photon_request_id, const std::vector<int32_t> &, photon_finish)>;

  Engine(const Model &model, const EngineOptions &opts = EngineOptions()) {
    check(photon_engine_create(model.get(), opts.get(), &e_));
  }
  ~Engine() { photon_engine_free(e_); }
  Engine(const Engine &) = delete;
  Engine &operator=(const Engine &) = delete;

  photon_request_id submit(const std::vector<int32_t> &prompt, Sampling s = Sampling()) {
    photon_request_id id = 0;
    check(photon_engine_submit(e_, prompt.data(), prompt.size(), s.get(), &id));
    return id;
  }
  /// n samples of one prompt, seeds seed + i, one prefill (photon_engine_submit_n).
  std::vector<photon_request_id> submitN(const std::vector<int32_t> &prompt, int32_t n,
                                         Sampling s = Sampling()) {
    std::vector<photon_request_id> ids(n > 0 ? static_cast<size_t>(n) : 0);
    check(photon_engine_submit_n(e_, prompt.data(), prompt.size(), s.get(), n, ids.data()));
    return ids;
  }
  /// Runs until every request finished. Returns false if cancelled.
  bool run(const Callback &cb) {
    Call c{&cb, nullptr};
    photon_status s = photon_engine_run(e_, cb ? &trampoline : nullptr, &c);
    if (c.error) std::rethrow_exception(c.error);
    if (s == PHOTON_ERR_CANCELLED) return false;
    check(s);
    return true;
  }
  /// One scheduling step; returns the number of unfinished requests.
  int32_t step(const Callback &cb) {
    int32_t active = 0;
    Call c{&cb, nullptr};
    photon_status s = photon_engine_step(e_, cb ? &trampoline : nullptr, &c, &active);
    if (c.error) std::rethrow_exception(c.error);
    check(s);
    return active;
  }
  void cancel() { photon_engine_cancel(e_); }
  /// Thread-safe: cancels one request (reported with PHOTON_FINISH_CANCELLED by the next step).
  void cancelRequest(photon_request_id id) { check(photon_engine_cancel_request(e_, id)); }
  /// Scheduler thread: waits up to `timeoutMs` for work; true if there is some.
  bool wait(int32_t timeoutMs) {
    int32_t w = 0;
    check(photon_engine_wait(e_, timeoutMs, &w));
    return w != 0;
  }
  /// Thread-safe: ends a wait() now.
  void wake() { photon_engine_wake(e_); }
  photon_engine *get() const { return e_; }
  photon_engine_stats stats() const {
    photon_engine_stats s;
    s.struct_size = sizeof s;
    check(photon_engine_get_stats(e_, &s));
    return s;
  }

private:
  struct Call {
    const Callback *cb;
    std::exception_ptr error; // thrown by the callback; rethrown after the C call returns
  };
  static int trampoline(void *user, photon_request_id id, const int32_t *t, size_t n, photon_finish f) {
    Call &c = *static_cast<Call *>(user);
    try {
      return (*c.cb)(id, std::vector<int32_t>(t, t + n), f) ? 0 : 1;
    } catch (...) {
      c.error = std::current_exception();
      return 1; // cancels the run
    }
  }
  photon_engine *e_ = nullptr;
};

} // namespace photon

#endif // PHOTON_PHOTON_HPP
