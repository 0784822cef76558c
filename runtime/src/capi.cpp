// The C API (photon.h) over the internal C++ classes (namespace photon::rt).
//
// The boundary: every entry point runs its body inside `guard`, so no C++ exception (a
// std::bad_alloc from a large request, anything else from a bug) ever crosses into C; it
// becomes a status code and a photon_last_error() message. Option structs are read field by
// field, each only when the caller's `struct_size` covers it (older callers get the defaults
// for fields they do not know); info structs are written up to the caller's `struct_size`.
#include "photon/photon.h"
#include "photon/version.h"

#include "artifact.h"
#include "cache.h"
#include "cuda/cuda_backend.h"
#include "engine.h"
#include "sampler.h"

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <type_traits>

namespace rt = photon::rt;

// A model is shared between its handle and the engines created from it: freeing the model
// handle while engines exist is allowed; the model is unloaded with its last user.
struct photon_model {
  std::shared_ptr<const rt::Model> impl;
};
struct photon_engine {
  std::shared_ptr<const rt::Model> model; // keeps the model alive; destroyed after `impl`
  std::unique_ptr<rt::Engine> impl;
  int32_t threads = 0;
};

namespace {
thread_local std::string g_lastError;
// Set when the message could not be stored (no memory): the failing function's name, and
// photon_last_error() says "<name>: out of memory" from a static buffer.
thread_local const char *g_oomFunction = nullptr;

void setLastError(const char *msg) noexcept {
  try {
    g_lastError = msg;
    g_oomFunction = nullptr;
  } catch (...) {
    g_oomFunction = "photon";
  }
}
photon_status fail(photon_status code, const std::string &msg) noexcept {
  setLastError(msg.c_str());
  return code;
}
photon_status fail(const rt::Status &st) noexcept { return fail(st.code(), st.message()); }
photon_status ok() noexcept {
  g_lastError.clear();
  g_oomFunction = nullptr;
  return PHOTON_OK;
}

/// Runs `body` (returning photon_status) with every exception turned into a status.
template <typename F> photon_status guard(const char *fn, F &&body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc &) {
    g_oomFunction = fn; // reported as "<fn>: out of memory" without allocating
    return PHOTON_ERR_OUT_OF_MEMORY;
  } catch (const std::exception &e) {
    try {
      return fail(PHOTON_ERR_INTERNAL, std::string(fn) + ": internal error: " + e.what());
    } catch (...) {
      return PHOTON_ERR_INTERNAL;
    }
  } catch (...) {
    setLastError(fn);
    return PHOTON_ERR_INTERNAL;
  }
}

/// True when the caller's struct (of `struct_size` bytes) contains `field` entirely.
#define PHOTON_HAS(p, field)                                                                   \
  ((p)->struct_size >= offsetof(std::remove_cv_t<std::remove_pointer_t<decltype(p)>>, field) + \
                           sizeof((p)->field))

template <typename T> bool sizeOk(const T *p) { return p && p->struct_size >= sizeof(size_t); }

/// Copies the library's `r` into the caller's struct of `out->struct_size` bytes.
template <typename T> void writeOut(T *out, T &r) {
  size_t sz = std::min(out->struct_size, sizeof r);
  r.struct_size = sz;
  std::memcpy(out, &r, sz);
}
} // namespace

extern "C" {

int photon_api_version(void) { return PHOTON_API_VERSION; }
const char *photon_version(void) { return PHOTON_VERSION_STRING; }

const char *photon_status_string(photon_status s) {
  switch (s) {
  case PHOTON_OK: return "ok";
  case PHOTON_ERR_INVALID_ARGUMENT: return "invalid argument";
  case PHOTON_ERR_IO: return "i/o error";
  case PHOTON_ERR_FORMAT: return "format error";
  case PHOTON_ERR_ABI: return "ABI mismatch";
  case PHOTON_ERR_TARGET: return "target mismatch";
  case PHOTON_ERR_CHECKSUM: return "checksum mismatch";
  case PHOTON_ERR_OUT_OF_BUDGET: return "out of budget";
  case PHOTON_ERR_UNSUPPORTED: return "unsupported";
  case PHOTON_ERR_NO_DEVICE: return "no device";
  case PHOTON_ERR_CANCELLED: return "cancelled";
  case PHOTON_ERR_INTERNAL: return "internal error";
  case PHOTON_ERR_OUT_OF_MEMORY: return "out of memory";
  }
  return "unknown status";
}

const char *photon_last_error(void) {
  if (g_oomFunction) {
    static thread_local char buf[160];
    std::snprintf(buf, sizeof buf, "%s: out of memory", g_oomFunction);
    return buf;
  }
  return g_lastError.c_str();
}

void photon_load_options_defaults(photon_load_options *o) {
  if (!o) return;
  std::memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->verify_checksum = 1;
  o->check_cpu = 1;
}

photon_status photon_model_load(const char *path, const photon_load_options *opts,
                                photon_model **out) {
  return guard("photon_model_load", [&]() -> photon_status {
    if (!path || !out) return fail(PHOTON_ERR_INVALID_ARGUMENT, "photon_model_load: NULL argument");
    *out = nullptr;
    rt::LoadOptions lo;
    if (opts) {
      if (!sizeOk(opts))
        return fail(PHOTON_ERR_INVALID_ARGUMENT, "photon_load_options.struct_size not set");
      if (PHOTON_HAS(opts, verify_checksum)) lo.verifyChecksum = opts->verify_checksum != 0;
      if (PHOTON_HAS(opts, check_cpu)) lo.checkCpu = opts->check_cpu != 0;
      if (PHOTON_HAS(opts, upload_user) && opts->upload_progress) {
        auto fn = opts->upload_progress;
        void *user = opts->upload_user;
        lo.uploadProgress = [fn, user](uint64_t done, uint64_t total) { fn(done, total, user); };
      }
    }
    std::unique_ptr<rt::Model> m;
    rt::Status st = rt::Model::load(path, lo, m);
    if (!st) return fail(st);
    auto h = std::make_unique<photon_model>();
    h->impl = std::shared_ptr<const rt::Model>(std::move(m));
    *out = h.release();
    return ok();
  });
}

void photon_model_free(photon_model *m) {
  try {
    delete m;
  } catch (...) {
  }
}

photon_status photon_model_get_info(const photon_model *model, photon_model_info *info) {
  return guard("photon_model_get_info", [&]() -> photon_status {
    if (!model || !sizeOk(info))
      return fail(PHOTON_ERR_INVALID_ARGUMENT, "photon_model_get_info: bad argument");
    const rt::Manifest &m = model->impl->manifest();
    photon_model_info r;
    std::memset(&r, 0, sizeof r);
    r.family = m.family;
    r.vocab = m.vocab;
    r.width = m.width;
    r.levels = m.family == PHOTON_FAMILY_VANILLA || m.family == PHOTON_FAMILY_FORWARD ? 0 : m.levels;
    for (size_t i = 0; i < m.chunkSizes.size() && i < PHOTON_MAX_LEVELS; ++i)
      r.chunk_sizes[i] = m.chunkSizes[i];
    r.tokens_per_step = m.tokensPerStep();
    r.max_context = m.maxContext;
    r.has_recgen = m.family == PHOTON_FAMILY_PHOTON && m.levels >= 2 &&
                   (!m.cache(m.levels) || m.cache(m.levels)->usedIn("recgen"));
    r.has_forward = model->impl->stage("forward") != nullptr;
    r.cache_levels = static_cast<int32_t>(std::min<size_t>(m.caches.size(), PHOTON_MAX_LEVELS));
    for (int i = 0; i < r.cache_levels; ++i) {
      r.cache_level_id[i] = m.caches[i].level;
      r.cache_bytes_per_unit[i] = m.caches[i].bytesPerUnit;
      r.cache_tokens_per_unit[i] = m.caches[i].tokensPerUnit;
    }
    r.weights_bytes = model->impl->weightsSize();
    r.target_cpu = m.targetCpu.c_str();
    r.tokenizer_kind = model->impl->tokenizer().kind();
    r.family_name = m.familyName.c_str();
    r.compute_parallel = model->impl->parallel() ? 1 : 0;
    r.eos_id = model->impl->tokenizer().eosId();
    const rt::DeviceBackend &dev = *model->impl->backend();
    r.device = model->impl->deviceName().c_str();
    r.device_memory = dev.hostAddressable() ? 0 : 1;
    rt::DeviceMemoryInfo mi;
    if (r.device_memory && dev.memoryInfo(mi).isOk()) r.device_total_bytes = mi.totalBytes;
    writeOut(info, r);
    return ok();
  });
}

photon_status photon_tokenize(const photon_model *model, const char *text, size_t len,
                              int32_t *out, size_t capacity, size_t *n_out) {
  return guard("photon_tokenize", [&]() -> photon_status {
    if (!model || (!text && len) || !n_out || (capacity && !out))
      return fail(PHOTON_ERR_INVALID_ARGUMENT, "photon_tokenize: bad argument");
    std::vector<int32_t> ids = model->impl->tokenizer().encode(std::string(text ? text : "", len));
    *n_out = ids.size();
    if (capacity) std::memcpy(out, ids.data(), sizeof(int32_t) * std::min(capacity, ids.size()));
    return ok();
  });
}

photon_status photon_detokenize(const photon_model *model, const int32_t *tokens, size_t n,
                                char *out, size_t capacity, size_t *n_out) {
  return guard("photon_detokenize", [&]() -> photon_status {
    if (!model || (!tokens && n) || !n_out || (capacity && !out))
      return fail(PHOTON_ERR_INVALID_ARGUMENT, "photon_detokenize: bad argument");
    // An id outside the model's vocabulary is an error, not a silently dropped token.
    const int32_t vocab = model->impl->manifest().vocab;
    for (size_t i = 0; i < n; ++i)
      if (tokens[i] < 0 || tokens[i] >= vocab)
        return fail(PHOTON_ERR_INVALID_ARGUMENT,
                    "photon_detokenize: token " + std::to_string(i) + " is " +
                        std::to_string(tokens[i]) + ", outside the vocabulary [0, " +
                        std::to_string(vocab) + ")");
    std::string s = model->impl->tokenizer().decode(std::vector<int32_t>(tokens, tokens + n));
    *n_out = s.size();
    if (capacity) std::memcpy(out, s.data(), std::min(capacity, s.size()));
    return ok();
  });
}

photon_status photon_model_forward(const photon_model *model, const int32_t *tokens, int32_t batch,
                                   int32_t length, float *logits) {
  return guard("photon_model_forward", [&]() -> photon_status {
    if (!model || !tokens || !logits)
      return fail(PHOTON_ERR_INVALID_ARGUMENT, "photon_model_forward: NULL argument");
    rt::Status st = rt::forwardLogits(*model->impl, tokens, batch, length, logits);
    return st ? ok() : fail(st);
  });
}

void photon_engine_options_defaults(photon_engine_options *o) {
  if (!o) return;
  std::memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->mode = PHOTON_MODE_HIERGEN;
  o->memory_budget = 0;
  o->max_batch = 64;
  o->context_limit = 0;
  o->overlap_recgen = 1;
  o->threads = 0;
  o->cache_policy = PHOTON_CACHE_RESERVE;
  o->eos_id = -1;
  o->prefill_chunk = 0;
}

photon_status photon_engine_create(const photon_model *model, const photon_engine_options *opts,
                                   photon_engine **out) {
  return guard("photon_engine_create", [&]() -> photon_status {
    if (!model || !out)
      return fail(PHOTON_ERR_INVALID_ARGUMENT, "photon_engine_create: NULL argument");
    *out = nullptr;
    rt::EngineOptions eo;
    if (opts) {
      if (!sizeOk(opts))
        return fail(PHOTON_ERR_INVALID_ARGUMENT, "photon_engine_options.struct_size not set");
      if (PHOTON_HAS(opts, mode)) {
        if (opts->mode != PHOTON_MODE_HIERGEN && opts->mode != PHOTON_MODE_RECGEN)
          return fail(PHOTON_ERR_INVALID_ARGUMENT, "unknown generation mode");
        eo.mode = opts->mode;
      }
      if (PHOTON_HAS(opts, memory_budget)) eo.memoryBudget = opts->memory_budget;
      if (PHOTON_HAS(opts, max_batch)) eo.maxBatch = opts->max_batch;
      if (PHOTON_HAS(opts, context_limit)) eo.contextLimit = opts->context_limit;
      if (PHOTON_HAS(opts, overlap_recgen)) {
        if (opts->overlap_recgen < 0 || opts->overlap_recgen > 2)
          return fail(PHOTON_ERR_INVALID_ARGUMENT, "overlap_recgen must be 0, 1 or 2");
        eo.overlapRecGen = opts->overlap_recgen;
      }
      if (PHOTON_HAS(opts, threads)) {
        if (opts->threads < 0) return fail(PHOTON_ERR_INVALID_ARGUMENT, "threads must be >= 0");
        eo.threads = opts->threads;
      }
      if (PHOTON_HAS(opts, cache_policy)) eo.cachePolicy = opts->cache_policy; // checked by create
      if (PHOTON_HAS(opts, eos_id)) eo.eosId = opts->eos_id;
      if (PHOTON_HAS(opts, prefill_chunk)) eo.prefillChunk = opts->prefill_chunk;
      
    }
    std::unique_ptr<rt::Engine> e;
    rt::Status st = rt::Engine::create(*model->impl, eo, e);
    if (!st) return fail(st);
    auto h = std::make_unique<photon_engine>();
    h->model = model->impl;
    h->impl = std::move(e);
    h->threads = eo.threads;
    *out = h.release();
    return ok();
  });
}

void photon_engine_free(photon_engine *e) {
  try {
    delete e;
  } catch (...) {
  }
}

void photon_sampling_defaults(photon_sampling *s) {
  if (!s) return;
  std::memset(s, 0, sizeof *s);
  s->struct_size = sizeof *s;
  s->temperature = 0.0f;
  s->top_k = 0;
  s->top_p = 1.0f;
  s->repetition_penalty = 1.0f;
  s->seed = 0;
  s->max_tokens = 128;
}

// photon_engine_submit (n = 1) and photon_engine_submit_n: one set of checks.
static photon_status submitSamples(photon_engine *engine, const int32_t *prompt, size_t prompt_len,
                                   const photon_sampling *s, int32_t n, photon_request_id *id) {
  return guard("photon_engine_submit", [&]() -> photon_status {
    if (!engine || (!prompt && prompt_len) || !id)
      return fail(PHOTON_ERR_INVALID_ARGUMENT, "photon_engine_submit: NULL argument");
    if (n < 1 || n > 1024)
      return fail(PHOTON_ERR_INVALID_ARGUMENT,
                  "photon_engine_submit_n: n is " + std::to_string(n) + "; it must be in [1, 1024]");
    rt::SamplingParams p;
    if (s) {
      if (!sizeOk(s))
        return fail(PHOTON_ERR_INVALID_ARGUMENT, "photon_sampling.struct_size not set");
      if (PHOTON_HAS(s, temperature)) p.temperature = s->temperature;
      if (PHOTON_HAS(s, top_k)) p.topK = s->top_k;
      if (PHOTON_HAS(s, top_p)) p.topP = s->top_p;
      if (PHOTON_HAS(s, repetition_penalty)) p.repetitionPenalty = s->repetition_penalty;
      if (PHOTON_HAS(s, seed)) p.seed = s->seed;
      if (PHOTON_HAS(s, max_tokens)) p.maxTokens = s->max_tokens;
      // The stop list is one field of two members: used only when both are covered.
      if (PHOTON_HAS(s, stop) && PHOTON_HAS(s, n_stop)) {
        if (s->n_stop < 0 || (s->n_stop > 0 && !s->stop))
          return fail(PHOTON_ERR_INVALID_ARGUMENT, "photon_sampling: bad stop list");
        for (int i = 0; i < s->n_stop; ++i)
          if (s->stop[i] && *s->stop[i]) p.stop.emplace_back(s->stop[i]);
      }
    }
    // One rule set for every caller (photon-run goes through here too): NaN, infinities and
    // out-of-range values are refused, never turned into "off" or garbage tokens.
    std::string bad;
    if (!rt::validateSampling(p, bad))
      return fail(PHOTON_ERR_INVALID_ARGUMENT, "photon_sampling: " + bad);
    // The prompt's length is checked before anything of that size is allocated.
    // (A cap of 2^26 tokens, 256 MiB of ids: far past any context photon models train on,
    // and small enough that copying a prompt never fails for want of memory.)
    constexpr size_t kMaxPromptTokens = size_t(1) << 26;
    if (prompt_len > kMaxPromptTokens)
      return fail(PHOTON_ERR_INVALID_ARGUMENT,
                  "photon_engine_submit: prompt_len " + std::to_string(prompt_len) +
                      " is more than a request can hold (" + std::to_string(kMaxPromptTokens) +
                      " tokens)");
    bool ignoreEos = s && PHOTON_HAS(s, ignore_eos) && s->ignore_eos != 0;
    std::vector<int32_t> tokens(prompt, prompt + prompt_len);
    if (n == 1) {
      uint64_t rid = 0;
      rt::Status st = engine->impl->submit(tokens, p, rid, ignoreEos);
      if (!st) return fail(st);
      *id = rid;
      return ok();
    }
    std::vector<uint64_t> rids;
    rt::Status st = engine->impl->submitN(tokens, p, n, rids, ignoreEos);
    if (!st) return fail(st);
    std::copy(rids.begin(), rids.end(), id);
    return ok();
  });
}

photon_status photon_engine_submit(photon_engine *engine, const int32_t *prompt, size_t prompt_len,
                                   const photon_sampling *s, photon_request_id *id) {
  return submitSamples(engine, prompt, prompt_len, s, 1, id);
}

photon_status photon_engine_submit_n(photon_engine *engine, const int32_t *prompt,
                                     size_t prompt_len, const photon_sampling *s, int32_t n,
                                     photon_request_id *ids) {
  return submitSamples(engine, prompt, prompt_len, s, n, ids);
}

static rt::TokenCallback wrap(photon_token_callback cb, void *user) {
  if (!cb) return nullptr;
  return [cb, user](uint64_t id, const int32_t *t, size_t n, photon_finish f) {
    return cb(user, id, t, n, f) == 0;
  };
}

photon_status photon_engine_step(photon_engine *engine, photon_token_callback cb, void *user,
                                 int32_t *active) {
  return guard("photon_engine_step", [&]() -> photon_status {
    if (!engine) return fail(PHOTON_ERR_INVALID_ARGUMENT, "photon_engine_step: NULL engine");
    int a = 0;
    rt::Status st = engine->impl->step(wrap(cb, user), a);
    if (active) *active = a;
    return st ? ok() : fail(st);
  });
}

photon_status photon_engine_run(photon_engine *engine, photon_token_callback cb, void *user) {
  return guard("photon_engine_run", [&]() -> photon_status {
    if (!engine) return fail(PHOTON_ERR_INVALID_ARGUMENT, "photon_engine_run: NULL engine");
    rt::Status st = engine->impl->run(wrap(cb, user));
    return st ? ok() : fail(st);
  });
}

void photon_engine_cancel(photon_engine *engine) {
  if (engine) engine->impl->cancel(); // an atomic store: cannot throw, async-signal-safe
}

photon_status photon_engine_cancel_request(photon_engine *engine, photon_request_id id) {
  return guard("photon_engine_cancel_request", [&]() -> photon_status {
    if (!engine) return fail(PHOTON_ERR_INVALID_ARGUMENT, "photon_engine_cancel_request: NULL engine");
    engine->impl->cancelRequest(id);
    return ok();
  });
}

photon_status photon_engine_wait(photon_engine *engine, int32_t timeout_ms, int32_t *has_work) {
  return guard("photon_engine_wait", [&]() -> photon_status {
    if (!engine) return fail(PHOTON_ERR_INVALID_ARGUMENT, "photon_engine_wait: NULL engine");
    if (timeout_ms < 0) return fail(PHOTON_ERR_INVALID_ARGUMENT, "photon_engine_wait: timeout_ms < 0");
    bool w = engine->impl->waitForWork(timeout_ms);
    if (has_work) *has_work = w ? 1 : 0;
    return ok();
  });
}

void photon_engine_wake(photon_engine *engine) {
  if (!engine) return;
  try {
    engine->impl->wake();
  } catch (...) {
  }
}

photon_status photon_engine_get_stats(const photon_engine *engine, photon_engine_stats *stats) {
  return guard("photon_engine_get_stats", [&]() -> photon_status {
    if (!engine || !sizeOk(stats))
      return fail(PHOTON_ERR_INVALID_ARGUMENT, "photon_engine_get_stats: bad argument");
    // The copy the scheduler thread published after its last step: safe from any thread.
    const rt::Engine &e = *engine->impl;
    const rt::EngineSnapshot snap = e.snapshot();
    const rt::EngineStats &es = snap.stats;
    photon_engine_stats r;
    std::memset(&r, 0, sizeof r);
    r.prefill_tokens = es.prefillTokens;
    r.prefill_seconds = es.prefillSeconds;
    r.decode_tokens = es.decodeTokens;
    r.decode_seconds = es.decodeSeconds;
    r.budget_bytes = snap.budget;
    r.cache_bytes_in_use = snap.inUse;
    r.cache_bytes_reserved = snap.reserved;
    r.cache_levels = static_cast<int32_t>(std::min<size_t>(snap.levels.size(), PHOTON_MAX_LEVELS));
    for (int i = 0; i < r.cache_levels; ++i) {
      r.cache_level_id[i] = snap.levels[i];
      r.cache_peak_bytes[i] = snap.peakLevel[i];
      r.cache_bytes_in_use_level[i] = snap.inUseLevel[i];
    }
    r.cache_peak_total_bytes = snap.peakTotal;
    r.requests_finished = es.requestsFinished;
    r.peak_batch = es.peakBatch;
    r.queued = static_cast<int32_t>(snap.queued);
    r.running = static_cast<int32_t>(snap.running);
    r.requests_cancelled = es.requestsCancelled;
    r.preemptions = es.preemptions;
    const rt::Model &m = e.model();
    r.compute_threads = m.parallel() && engine->threads > 0 ? engine->threads : m.computeThreads();
    writeOut(stats, r);
    return ok();
  });
}

int photon_parse_byte_size(const char *text, uint64_t *out) {
  if (!text || !out) return 0;
  try {
    uint64_t v = 0;
    if (!rt::parseByteSize(text, v)) return 0;
    *out = v;
    return 1;
  } catch (...) {
    return 0;
  }
}

const char *photon_format_bytes(double bytes, char *buf, size_t size) {
  if (!buf || size == 0) return buf;
  try {
    std::snprintf(buf, size, "%s", rt::formatBytes(bytes).c_str());
  } catch (...) {
    buf[0] = '\0';
  }
  return buf;
}

photon_status photon_cuda_probe(int32_t *device_count) {
  return guard("photon_cuda_probe", [&]() -> photon_status {
    int n = 0;
    rt::Status st = rt::cuda::probe(n);
    if (device_count) *device_count = n;
    return st ? ok() : fail(st);
  });
}

} // extern "C"
