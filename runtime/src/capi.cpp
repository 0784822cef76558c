// The C API (photon.h) over the internal C++ classes.
#include "photon/photon.h"

#include "artifact.h"
#include "cuda/cuda_backend.h"
#include "engine.h"

#include <cstddef>
#include <cstring>
#include <new>
#include <string>

struct photon_model {
  std::unique_ptr<photon::Model> impl;
};
struct photon_engine {
  std::unique_ptr<photon::Engine> impl;
};

namespace {
thread_local std::string g_lastError;

photon_status fail(const photon::Status &st) {
  g_lastError = st.message();
  return st.code();
}
photon_status fail(photon_status code, const std::string &msg) {
  g_lastError = msg;
  return code;
}
photon_status ok() {
  g_lastError.clear();
  return PHOTON_OK;
}
template <typename T> bool sizeOk(const T *p) { return p && p->struct_size >= sizeof(size_t); }
} // namespace

extern "C" {

int photon_api_version(void) { return PHOTON_API_VERSION; }
const char *photon_version(void) { return "0.1.0"; }

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
  }
  return "unknown status";
}

const char *photon_last_error(void) { return g_lastError.c_str(); }

void photon_load_options_defaults(photon_load_options *o) {
  if (!o) return;
  std::memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->verify_checksum = 1;
  o->check_cpu = 1;
}

photon_status photon_model_load(const char *path, const photon_load_options *opts,
                                photon_model **out) {
  if (!path || !out) return fail(PHOTON_ERR_INVALID_ARGUMENT, "photon_model_load: NULL argument");
  *out = nullptr;
  photon::LoadOptions lo;
  if (opts) {
    if (!sizeOk(opts)) return fail(PHOTON_ERR_INVALID_ARGUMENT, "photon_load_options.struct_size not set");
    lo.verifyChecksum = opts->verify_checksum != 0;
    lo.checkCpu = opts->check_cpu != 0;
  }
  std::unique_ptr<photon::Model> m;
  photon::Status st = photon::Model::load(path, lo, m);
  if (!st) return fail(st);
  auto *h = new (std::nothrow) photon_model();
  if (!h) return fail(PHOTON_ERR_INTERNAL, "out of memory");
  h->impl = std::move(m);
  *out = h;
  return ok();
}

void photon_model_free(photon_model *m) { delete m; }

photon_status photon_model_get_info(const photon_model *model, photon_model_info *info) {
  if (!model || !sizeOk(info)) return fail(PHOTON_ERR_INVALID_ARGUMENT, "photon_model_get_info: bad argument");
  const photon::Manifest &m = model->impl->manifest();
  size_t sz = info->struct_size;
  photon_model_info r;
  std::memset(&r, 0, sizeof r);
  r.struct_size = sizeof r;
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
  std::memcpy(info, &r, std::min(sz, sizeof r));
  info->struct_size = std::min(sz, sizeof r);
  return ok();
}

photon_status photon_tokenize(const photon_model *model, const char *text, size_t len,
                              int32_t *out, size_t capacity, size_t *n_out) {
  if (!model || (!text && len) || !n_out || (capacity && !out))
    return fail(PHOTON_ERR_INVALID_ARGUMENT, "photon_tokenize: bad argument");
  std::vector<int32_t> ids = model->impl->tokenizer().encode(std::string(text ? text : "", len));
  *n_out = ids.size();
  if (capacity) std::memcpy(out, ids.data(), sizeof(int32_t) * std::min(capacity, ids.size()));
  return ok();
}

photon_status photon_detokenize(const photon_model *model, const int32_t *tokens, size_t n,
                                char *out, size_t capacity, size_t *n_out) {
  if (!model || (!tokens && n) || !n_out || (capacity && !out))
    return fail(PHOTON_ERR_INVALID_ARGUMENT, "photon_detokenize: bad argument");
  std::string s = model->impl->tokenizer().decode(std::vector<int32_t>(tokens, tokens + n));
  *n_out = s.size();
  if (capacity) std::memcpy(out, s.data(), std::min(capacity, s.size()));
  return ok();
}

photon_status photon_model_forward(const photon_model *model, const int32_t *tokens, int32_t batch,
                                   int32_t length, float *logits) {
  if (!model || !tokens || !logits)
    return fail(PHOTON_ERR_INVALID_ARGUMENT, "photon_model_forward: NULL argument");
  photon::Status st = photon::forwardLogits(*model->impl, tokens, batch, length, logits);
  return st ? ok() : fail(st);
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
}

photon_status photon_engine_create(const photon_model *model, const photon_engine_options *opts,
                                   photon_engine **out) {
  if (!model || !out) return fail(PHOTON_ERR_INVALID_ARGUMENT, "photon_engine_create: NULL argument");
  *out = nullptr;
  photon::EngineOptions eo;
  if (opts) {
    if (!sizeOk(opts)) return fail(PHOTON_ERR_INVALID_ARGUMENT, "photon_engine_options.struct_size not set");
    if (opts->mode != PHOTON_MODE_HIERGEN && opts->mode != PHOTON_MODE_RECGEN)
      return fail(PHOTON_ERR_INVALID_ARGUMENT, "unknown generation mode");
    eo.mode = opts->mode;
    eo.memoryBudget = opts->memory_budget;
    eo.maxBatch = opts->max_batch;
    eo.contextLimit = opts->context_limit;
    if (opts->overlap_recgen < 0 || opts->overlap_recgen > 2)
      return fail(PHOTON_ERR_INVALID_ARGUMENT, "overlap_recgen must be 0, 1 or 2");
    eo.overlapRecGen = opts->overlap_recgen;
    // `threads` came later: read it only from a struct that has it.
    if (opts->struct_size >= offsetof(photon_engine_options, threads) + sizeof(opts->threads)) {
      if (opts->threads < 0) return fail(PHOTON_ERR_INVALID_ARGUMENT, "threads must be >= 0");
      eo.threads = opts->threads;
    }
  }
  std::unique_ptr<photon::Engine> e;
  photon::Status st = photon::Engine::create(*model->impl, eo, e);
  if (!st) return fail(st);
  auto *h = new (std::nothrow) photon_engine();
  if (!h) return fail(PHOTON_ERR_INTERNAL, "out of memory");
  h->impl = std::move(e);
  *out = h;
  return ok();
}

void photon_engine_free(photon_engine *e) { delete e; }

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

photon_status photon_engine_submit(photon_engine *engine, const int32_t *prompt, size_t prompt_len,
                                   const photon_sampling *s, photon_request_id *id) {
  if (!engine || (!prompt && prompt_len) || !id)
    return fail(PHOTON_ERR_INVALID_ARGUMENT, "photon_engine_submit: NULL argument");
  photon::SamplingParams p;
  if (s) {
    if (!sizeOk(s)) return fail(PHOTON_ERR_INVALID_ARGUMENT, "photon_sampling.struct_size not set");
    p.temperature = s->temperature;
    p.topK = s->top_k;
    p.topP = s->top_p;
    p.repetitionPenalty = s->repetition_penalty;
    p.seed = s->seed;
    p.maxTokens = s->max_tokens;
    if (s->n_stop < 0 || (s->n_stop > 0 && !s->stop))
      return fail(PHOTON_ERR_INVALID_ARGUMENT, "photon_sampling: bad stop list");
    for (int i = 0; i < s->n_stop; ++i)
      if (s->stop[i] && *s->stop[i]) p.stop.emplace_back(s->stop[i]);
  }
  uint64_t rid = 0;
  photon::Status st =
      engine->impl->submit(std::vector<int32_t>(prompt, prompt + prompt_len), p, rid);
  if (!st) return fail(st);
  *id = rid;
  return ok();
}

static photon::TokenCallback wrap(photon_token_callback cb, void *user) {
  if (!cb) return nullptr;
  return [cb, user](uint64_t id, const int32_t *t, size_t n, photon_finish f) {
    return cb(user, id, t, n, f) == 0;
  };
}

photon_status photon_engine_step(photon_engine *engine, photon_token_callback cb, void *user,
                                 int32_t *active) {
  if (!engine) return fail(PHOTON_ERR_INVALID_ARGUMENT, "photon_engine_step: NULL engine");
  int a = 0;
  photon::Status st = engine->impl->step(wrap(cb, user), a);
  if (active) *active = a;
  return st ? ok() : fail(st);
}

photon_status photon_engine_run(photon_engine *engine, photon_token_callback cb, void *user) {
  if (!engine) return fail(PHOTON_ERR_INVALID_ARGUMENT, "photon_engine_run: NULL engine");
  photon::Status st = engine->impl->run(wrap(cb, user));
  return st ? ok() : fail(st);
}

void photon_engine_cancel(photon_engine *engine) {
  if (engine) engine->impl->cancel();
}

photon_status photon_engine_get_stats(const photon_engine *engine, photon_engine_stats *stats) {
  if (!engine || !sizeOk(stats))
    return fail(PHOTON_ERR_INVALID_ARGUMENT, "photon_engine_get_stats: bad argument");
  const photon::Engine &e = *engine->impl;
  const photon::CacheManager &c = e.cache();
  size_t sz = stats->struct_size;
  photon_engine_stats r;
  std::memset(&r, 0, sizeof r);
  r.struct_size = sizeof r;
  r.prefill_tokens = e.stats().prefillTokens;
  r.prefill_seconds = e.stats().prefillSeconds;
  r.decode_tokens = e.stats().decodeTokens;
  r.decode_seconds = e.stats().decodeSeconds;
  r.budget_bytes = c.budget();
  r.cache_bytes_in_use = c.inUseBytes();
  r.cache_bytes_reserved = c.reservedBytes();
  r.cache_levels = static_cast<int32_t>(std::min<size_t>(c.levelCount(), PHOTON_MAX_LEVELS));
  for (int i = 0; i < r.cache_levels; ++i) {
    r.cache_level_id[i] = c.spec(i).level;
    r.cache_peak_bytes[i] = c.peakBytes(i);
  }
  r.cache_peak_total_bytes = c.peakTotalBytes();
  r.requests_finished = e.stats().requestsFinished;
  r.peak_batch = e.stats().peakBatch;
  std::memcpy(stats, &r, std::min(sz, sizeof r));
  stats->struct_size = std::min(sz, sizeof r);
  return ok();
}

photon_status photon_cuda_probe(int32_t *device_count) {
  int n = 0;
  photon::Status st = photon::cuda::probe(n);
  if (device_count) *device_count = n;
  return st ? ok() : fail(st);
}

} // extern "C"
