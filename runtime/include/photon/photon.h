/* libphoton: the C API of the photon runtime.
 *
 * Loads a compiled artifact (a `*.photon` directory, docs/artifact.md), owns the KV caches
 * against a memory budget, and generates text with HierGen or RecGen (PHOTON), or plain
 * autoregressive decoding (vanilla, Block Transformer), for many sequences in one batch.
 *
 * Conventions
 *  - Every function that can fail returns a photon_status; PHOTON_OK is 0. The message of
 *    the last failure on the calling thread is photon_last_error(); it says what to do.
 *    No C++ exception crosses this API: an allocation failure inside the library returns
 *    PHOTON_ERR_OUT_OF_MEMORY, any other internal exception PHOTON_ERR_INTERNAL, both with
 *    a message; the library never aborts on a failure it can report.
 *  - Option structs (photon_load_options, photon_engine_options, photon_sampling) start with
 *    `struct_size` (set it to sizeof the struct; photon_*_defaults() fills everything). The
 *    library reads a field only when `struct_size` covers it entirely, so a caller compiled
 *    against an older, shorter struct gets the defaults for the fields it does not know.
 *    Info structs (photon_model_info, photon_engine_stats) are
 *    written up to the caller's `struct_size` (which is set to the bytes written).
 *  - Versioning: PHOTON_API_VERSION changes when this header changes incompatibly (fields
 *    are only ever appended); photon_api_version() reports the version the library was
 *    built with, photon_version() the release ("0.1.0", from the build's project version;
 *    also PHOTON_VERSION_STRING in photon/version.h).
 *
 * Handles: ownership, lifetime, threads
 *  - photon_model: created by photon_model_load, owned by the caller, released with
 *    photon_model_free. Immutable after loading: any number of threads and engines may use
 *    one model at the same time (tokenize, detokenize, get_info, forward, engine_create).
 *    Reference-counted with its engines: every engine keeps its model alive, so
 *    photon_model_free may be called while engines exist (the model is unloaded, its
 *    model.so closed and weights.bin unmapped, when the last engine is freed). Pointers
 *    inside photon_model_info (target_cpu, ...) are valid until the model is unloaded.
 *  - photon_engine: created by photon_engine_create from a model, owned by the caller,
 *    released with photon_engine_free (never while a call on it is running). The engine
 *    has one scheduler thread: whichever thread calls photon_engine_step / _run / _wait,
 *    one at a time (a server runs them in a loop on a thread of its own). Every other
 *    engine call is thread-safe and may come from any thread while the scheduler steps:
 *    photon_engine_submit(_n) and photon_engine_cancel_request put the request or the
 *    cancellation on a queue (the inbox) that the next step drains before it admits and
 *    decodes; photon_engine_wake ends a photon_engine_wait; photon_engine_get_stats reads a
 *    copy the scheduler publishes after every step. photon_engine_cancel (cancel the whole
 *    run) is an atomic flag that a signal handler may set. Different engines (of the same
 *    model or not) run concurrently.
 *  - photon_request_id: a number, valid for the engine that returned it.
 *  - Callbacks (photon_token_callback) run on the scheduler thread, inside step/run, before
 *    it returns; the token array is valid only during the call. A callback may call the
 *    thread-safe functions above (submit, cancel_request, cancel, wake, get_stats) but not
 *    step, run, wait or free.
 *  - Strings and arrays passed in are copied or used only during the call.
 *
 * See docs/runtime.md for the design and the generation loop.
 */
#ifndef PHOTON_PHOTON_H
#define PHOTON_PHOTON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define PHOTON_EXPORT __attribute__((visibility("default")))
#else
#define PHOTON_EXPORT
#endif

#define PHOTON_API_VERSION 1
/* The artifact format and stage ABI this runtime reads (docs/artifact.md). */
#define PHOTON_ARTIFACT_FORMAT_VERSION 1
#define PHOTON_STAGE_ABI "photon-abi-1"
/* Limits of the API structs. */
#define PHOTON_MAX_LEVELS 8

typedef enum photon_status {
  PHOTON_OK = 0,
  PHOTON_ERR_INVALID_ARGUMENT = 1, /* a NULL handle, a bad option value, a bad token id */
  PHOTON_ERR_IO = 2,               /* a file could not be opened, read or mapped */
  PHOTON_ERR_FORMAT = 3,           /* manifest/weights/tokenizer malformed or wrong version */
  PHOTON_ERR_ABI = 4,              /* stage ABI mismatch or missing symbol in model.so */
  PHOTON_ERR_TARGET = 5,           /* compiled for another CPU / target */
  PHOTON_ERR_CHECKSUM = 6,         /* weights.bin does not match the manifest */
  PHOTON_ERR_OUT_OF_BUDGET = 7,    /* a request does not fit in the cache memory budget */
  PHOTON_ERR_UNSUPPORTED = 8,      /* e.g. RecGen on a vanilla model */
  PHOTON_ERR_NO_DEVICE = 9,        /* CUDA requested, no driver or device */
  PHOTON_ERR_CANCELLED = 10,       /* stopped by photon_engine_cancel or a callback */
  PHOTON_ERR_INTERNAL = 11,       /* a bug in the library (the message says where) */
  PHOTON_ERR_OUT_OF_MEMORY = 12    /* an allocation failed inside the library */
} photon_status;

PHOTON_EXPORT int photon_api_version(void);
/* The library's release version ("0.1.0"), set by the build. Static storage. */
PHOTON_EXPORT const char *photon_version(void);
/* Short name of a status ("out of budget"). Never NULL. */
PHOTON_EXPORT const char *photon_status_string(photon_status status);
/* Message of the last failure on this thread ("" if none). Owned by the library; valid
 * until the next photon_* call on this thread. */
PHOTON_EXPORT const char *photon_last_error(void);

/* ---------------------------------------------------------------- model ---------- */

typedef struct photon_model photon_model;

typedef enum photon_family {
  PHOTON_FAMILY_PHOTON = 0,  /* hierarchical, L levels */
  PHOTON_FAMILY_BLOCK = 1,   /* Block Transformer (L = 1) */
  PHOTON_FAMILY_VANILLA = 2, /* plain decoder-only transformer */
  PHOTON_FAMILY_FORWARD = 3  /* forward only: a graph whose hierarchy the compiler did not
                                recognize; teacher-forced logits (photon_model_forward), no
                                generation */
} photon_family;

typedef struct photon_load_options {
  size_t struct_size;
  int verify_checksum;  /* default 1: FNV-1a over weights.bin must match the manifest */
  int check_cpu;        /* default 1: refuse if this CPU lacks a feature the code uses */
  /* Progress of the weights' upload to a device (a CUDA artifact): called from the loading
   * thread after every staged chunk with the bytes done and the total, once more with
   * done == total. NULL (default): not called. On the host nothing is copied and it is
   * called once with done == total. */
  void (*upload_progress)(uint64_t done, uint64_t total, void *user);
  void *upload_user;
} photon_load_options;

PHOTON_EXPORT void photon_load_options_defaults(photon_load_options *opts);

/* Loads the artifact directory `path` (manifest.json, model.so, weights.bin). weights.bin
 * is memory-mapped read-only; a CPU artifact's stages read the mapping (never copied), a
 * CUDA artifact's weights are uploaded once into device memory. `opts` may be NULL. */
PHOTON_EXPORT photon_status photon_model_load(const char *path, const photon_load_options *opts,
                                              photon_model **out);
/* Releases the caller's reference; NULL is ignored. Engines created from the model keep it
 * loaded until they are freed. */
PHOTON_EXPORT void photon_model_free(photon_model *model);

typedef struct photon_model_info {
  size_t struct_size;
  photon_family family;
  int32_t vocab;
  int32_t width;
  int32_t levels;                         /* 0 for vanilla */
  int32_t chunk_sizes[PHOTON_MAX_LEVELS]; /* C_1..C_L */
  int32_t tokens_per_step;                /* C_1*...*C_L (1 for vanilla) */
  int32_t max_context;
  int32_t has_recgen;                     /* the artifact supports RecGen */
  int32_t has_forward;                    /* the `forward` stage exists (eval, logits) */
  int32_t cache_levels;                   /* entries of the arrays below */
  int32_t cache_level_id[PHOTON_MAX_LEVELS];
  uint64_t cache_bytes_per_unit[PHOTON_MAX_LEVELS];
  int32_t cache_tokens_per_unit[PHOTON_MAX_LEVELS];
  uint64_t weights_bytes;
  const char *target_cpu;                 /* owned by the model */
  const char *tokenizer_kind;             /* "byte", "bpe" or "sentencepiece"; owned by
                                             the model */
  const char *family_name;                /* manifest model.family: "photon", "block",
                                             "vanilla" or "forward"; owned by the model */
  int32_t compute_parallel;               /* the library was compiled with --openmp
                                             (photon_engine_options.threads applies) */
  int32_t eos_id;                         /* the tokenizer's end-of-sequence id, -1 if it
                                             has none */
  const char *device;                     /* where the stages run: "host", or
                                             "cuda:<name> (sm_XY)"; owned by the model */
  int32_t device_memory;                  /* 1: weights and caches are in device memory
                                             (reported apart from the host's), 0: host */
  uint64_t device_total_bytes;            /* the device's memory (0 on the host) */
} photon_model_info;

PHOTON_EXPORT photon_status photon_model_get_info(const photon_model *model,
                                                  photon_model_info *info);

/* Tokenizer of the model (from the manifest). Encode writes up to `capacity` ids to `out`
 * and the full count to `*n_out` (call with capacity 0 to size). */
PHOTON_EXPORT photon_status photon_tokenize(const photon_model *model, const char *text,
                                            size_t text_len, int32_t *out, size_t capacity,
                                            size_t *n_out);
/* Decodes ids to bytes (possibly partial UTF-8). Same sizing convention as above. */
PHOTON_EXPORT photon_status photon_detokenize(const photon_model *model, const int32_t *tokens,
                                              size_t n, char *out, size_t capacity,
                                              size_t *n_out);

/* Teacher-forced logits through the `forward` stage: tokens [batch, length] row-major,
 * logits [batch, length, vocab]. `length` must be a multiple of tokens_per_step. */
PHOTON_EXPORT photon_status photon_model_forward(const photon_model *model, const int32_t *tokens,
                                                 int32_t batch, int32_t length, float *logits);

/* --------------------------------------------------------------- engine ---------- */

typedef struct photon_engine photon_engine;

typedef enum photon_mode { PHOTON_MODE_HIERGEN = 0, PHOTON_MODE_RECGEN = 1 } photon_mode;

/* How requests claim KV cache from the budget (docs/runtime.md, "Cache policy").
 *  RESERVE: a request is admitted when its worst case (prompt + max_tokens, capped by the
 *    context limit) fits what is left; it never waits once running. Simple, but a request
 *    for many tokens holds their cache from the start.
 *  GROW: a request is admitted when its prompt and one decode step fit, leaving room for the
 *    running sequences' next step; every step extends the reservations by one step. When
 *    the budget runs out, the newest running sequence is preempted: its cache is freed, it
 *    goes back to the front of the queue with the tokens it has (already reported) and is
 *    prefilled again from them when room frees up, then continues with the same sampler
 *    state. The oldest sequence always progresses. RecGen cannot rebuild its top-level
 *    cache from tokens, so it takes RESERVE only.
 * Either way a request that could never fit the whole budget is refused at submit with the
 * numbers, and no allocation outside the budget happens. */
typedef enum photon_cache_policy {
  PHOTON_CACHE_RESERVE = 0,
  PHOTON_CACHE_GROW = 1
} photon_cache_policy;

typedef struct photon_engine_options {
  size_t struct_size;
  photon_mode mode;        /* default HierGen; RecGen needs a photon-family artifact */
  uint64_t memory_budget;  /* bytes for all KV caches; 0 = default (1/4 of physical RAM) */
  int32_t max_batch;       /* sequences decoded together; default 64 */
  int64_t context_limit;   /* max prompt + generated tokens; 0 = none (the manifest's
                              max_context is the training context, not a hard limit) */
  int32_t overlap_recgen;  /* RecGen: run the next top-level step on a second thread while
                              the current tokens render. 0 = never, 1 = where it pays
                              (default: a second core and a step slower than a thread
                              start), 2 = always */
  int32_t threads;         /* compute threads of an artifact compiled with --openmp;
                              0 = automatic: OMP_NUM_THREADS if set, else every core that
                              other processes leave free, re-measured from /proc/stat every
                              0.25 s while the engine steps (a busy core slows every
                              fork/join of the kernels more than it adds); ignored by a
                              sequential artifact */
  photon_cache_policy cache_policy; /* default RESERVE */
  int32_t eos_id;          /* end of sequence: -1 (default) = the tokenizer's id, if it has
                              one; -2 = none; >= 0 = this token id */
  int64_t prefill_chunk;   /* prompt tokens prefilled per step over all admitted requests;
                              0 (default) = a prompt is prefilled whole when admitted. With a
                              chunk a long prompt takes several steps (PHOTON: whole
                              meta-contexts, at least one per step) while the running
                              sequences keep decoding between them */
} photon_engine_options;

PHOTON_EXPORT void photon_engine_options_defaults(photon_engine_options *opts);
PHOTON_EXPORT photon_status photon_engine_create(const photon_model *model,
                                                 const photon_engine_options *opts,
                                                 photon_engine **out);
/* Frees the engine, its caches and queued requests (and the model, if this was its last
 * reference); NULL is ignored. */
PHOTON_EXPORT void photon_engine_free(photon_engine *engine);

typedef struct photon_sampling {
  size_t struct_size;
  float temperature;          /* 0 = greedy (default) */
  int32_t top_k;              /* 0 = off */
  float top_p;                /* 1 = off */
  float repetition_penalty;   /* 1 = off; >1 penalises tokens already in the sequence */
  uint64_t seed;              /* per-sequence RNG seed */
  int32_t max_tokens;         /* new tokens to generate; default 128 */
  const char *const *stop;    /* stop strings (bytes); generation ends before the match */
  int32_t n_stop;
  int32_t ignore_eos;         /* 1: do not end at the end-of-sequence token (default 0) */
} photon_sampling;

PHOTON_EXPORT void photon_sampling_defaults(photon_sampling *s);

typedef uint64_t photon_request_id;

/* Queues a request (any thread). It is admitted (prefilled) as soon as its caches fit in the
 * budget (photon_cache_policy); a request that can never fit is refused here with
 * PHOTON_ERR_OUT_OF_BUDGET and the numbers. */
PHOTON_EXPORT photon_status photon_engine_submit(photon_engine *engine, const int32_t *prompt,
                                                 size_t prompt_len, const photon_sampling *s,
                                                 photon_request_id *id);

/* Queues n samples of one prompt (any thread): sample i draws with seed s->seed + i and
 * gets ids[i] (ids has room for n). The prompt is prefilled once; the other samples start
 * from a copy of its caches (if the budget and the batch have room then; otherwise they
 * prefill on their own). Each sample is reported and cancelled as its own request, and its
 * tokens are those of a separate submission with its seed. n in [1, 1024]. */
PHOTON_EXPORT photon_status photon_engine_submit_n(photon_engine *engine, const int32_t *prompt,
                                                   size_t prompt_len, const photon_sampling *s,
                                                   int32_t n, photon_request_id *ids);

typedef enum photon_finish {
  PHOTON_FINISH_NONE = 0,       /* still running */
  PHOTON_FINISH_LENGTH = 1,     /* max_tokens reached */
  PHOTON_FINISH_STOP = 2,       /* a stop string matched */
  PHOTON_FINISH_CONTEXT = 3,    /* the engine's context_limit reached */
  PHOTON_FINISH_CANCELLED = 4,  /* photon_engine_cancel(_request) or a callback */
  PHOTON_FINISH_EOS = 5         /* the end-of-sequence token was sampled (not reported) */
} photon_finish;

/* Receives new tokens of a request as they are final (for PHOTON a meta-context at a time).
 * `finish` is non-zero on the last call for the request. Return non-zero to cancel the
 * whole run. */
typedef int (*photon_token_callback)(void *user, photon_request_id id, const int32_t *tokens,
                                     size_t n, photon_finish finish);

/* One scheduling step: admit waiting requests that fit, prefill them, run one decode step
 * (a meta-context for PHOTON/Block, one token for vanilla) over every active sequence,
 * report tokens. `*active` receives the number of unfinished requests (running + queued). */
PHOTON_EXPORT photon_status photon_engine_step(photon_engine *engine, photon_token_callback cb,
                                               void *user, int32_t *active);
/* Steps until every request has finished (or a callback/cancel stops it). */
PHOTON_EXPORT photon_status photon_engine_run(photon_engine *engine, photon_token_callback cb,
                                              void *user);
/* Asks a running photon_engine_run to stop after the current step (async-signal-safe). */
PHOTON_EXPORT void photon_engine_cancel(photon_engine *engine);
/* Cancels one request (any thread): the next step reports it to the callback with
 * PHOTON_FINISH_CANCELLED (after the tokens it had) and frees its cache; the other requests
 * go on. An id that finished already, or is unknown, is ignored. */
PHOTON_EXPORT photon_status photon_engine_cancel_request(photon_engine *engine,
                                                         photon_request_id id);
/* Scheduler thread: blocks until a request is queued or running, photon_engine_wake is
 * called, or `timeout_ms` passes. `*has_work` (may be NULL) is 1 if there is work to step.
 * A serving loop: while (!stop) { wait(engine, 100, &w); if (w) step(engine, ...); } */
PHOTON_EXPORT photon_status photon_engine_wait(photon_engine *engine, int32_t timeout_ms,
                                               int32_t *has_work);
/* Any thread: ends a photon_engine_wait now. */
PHOTON_EXPORT void photon_engine_wake(photon_engine *engine);

typedef struct photon_engine_stats {
  size_t struct_size;
  uint64_t prefill_tokens;
  double prefill_seconds;
  uint64_t decode_tokens;
  double decode_seconds;
  uint64_t budget_bytes;
  uint64_t cache_bytes_in_use;
  uint64_t cache_bytes_reserved;
  int32_t cache_levels;
  int32_t cache_level_id[PHOTON_MAX_LEVELS];
  uint64_t cache_peak_bytes[PHOTON_MAX_LEVELS];  /* peak bytes in blocks, per level */
  uint64_t cache_peak_total_bytes;
  uint64_t requests_finished;
  int32_t peak_batch;
  int32_t compute_threads;  /* threads of the engine's parallel kernels (1 for a sequential
                               artifact; `threads` if set, else OpenMP's default) */
  int32_t queued;           /* submitted, not yet admitted (incl. preempted ones) */
  int32_t running;          /* admitted and generating */
  uint64_t cache_bytes_in_use_level[PHOTON_MAX_LEVELS]; /* bytes in blocks now, per level */
  uint64_t requests_cancelled;
  uint64_t preemptions;     /* GROW: sequences preempted for lack of cache */
} photon_engine_stats;

PHOTON_EXPORT photon_status photon_engine_get_stats(const photon_engine *engine,
                                                    photon_engine_stats *stats);

/* -------------------------------------------------------------- sizes ---------- */

/* Parses a byte size as the tools take it ("512M", "2G", "1.5GiB", "4096"; K/M/G/T are
 * powers of 1024) into *out. Returns 1 on success, 0 (and leaves *out) otherwise. */
PHOTON_EXPORT int photon_parse_byte_size(const char *text, uint64_t *out);
/* Writes `bytes` for people ("512 B", "1.5 MiB") into buf (NUL-terminated, truncated to
 * size); returns buf. */
PHOTON_EXPORT const char *photon_format_bytes(double bytes, char *buf, size_t size);

/* ----------------------------------------------------------------- CUDA ---------- */

/* Probes the CUDA driver (dlopen("libcuda.so.1")). Device properties: photon_cuda_device_query
 * in photon/cuda.h (libphoton_cuda, which libphoton links). PHOTON_OK with the device count, or
 * PHOTON_ERR_NO_DEVICE with a message such as "no CUDA driver (libcuda.so.1 not found)". */
PHOTON_EXPORT photon_status photon_cuda_probe(int32_t *device_count);


#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* PHOTON_PHOTON_H */
