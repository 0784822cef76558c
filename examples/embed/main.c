/* photon-embed: load a compiled artifact and generate a few tokens through the C API.
 *
 *   photon-embed MODEL.photon [PROMPT] [MAX_TOKENS]
 *
 * Prints the library version, the model, the generated token ids and text, and a last line
 * "generated N tokens". Exit status 0 on success, 1 with photon_last_error() on failure. */
#include <photon/photon.h>
#include <photon/version.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const photon_model *model;
  size_t count;
} output;

/* Called with each batch of new tokens (a meta-context at a time for PHOTON models). */
static int on_tokens(void *user, photon_request_id id, const int32_t *tokens, size_t n,
                     photon_finish finish) {
  output *out = (output *)user;
  char text[4096];
  size_t len = 0;
  (void)id;
  for (size_t i = 0; i < n; ++i) printf("token %d\n", tokens[i]);
  if (photon_detokenize(out->model, tokens, n, text, sizeof text, &len) == PHOTON_OK)
    printf("text \"%.*s\"\n", (int)(len < sizeof text ? len : sizeof text), text);
  out->count += n;
  if (finish != PHOTON_FINISH_NONE) printf("finish %d\n", (int)finish);
  return 0; /* continue */
}

static int fail(const char *what) {
  fprintf(stderr, "photon-embed: %s: %s\n", what, photon_last_error());
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: photon-embed MODEL.photon [PROMPT] [MAX_TOKENS]\n");
    return 2;
  }
  const char *prompt = argc > 2 ? argv[2] : "Once upon a time";
  int max_tokens = argc > 3 ? atoi(argv[3]) : 16;
  printf("libphoton %s (header %s, API %d)\n", photon_version(), PHOTON_VERSION_STRING,
         photon_api_version());

  photon_model *model = NULL;
  if (photon_model_load(argv[1], NULL, &model) != PHOTON_OK) return fail("loading the model");
  photon_model_info info;
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  if (photon_model_get_info(model, &info) != PHOTON_OK) return fail("model info");
  printf("model %s: vocab %d, %d tokens per step\n", info.family_name, info.vocab,
         info.tokens_per_step);

  int32_t ids[1024];
  size_t n = 0;
  if (photon_tokenize(model, prompt, strlen(prompt), ids, 1024, &n) != PHOTON_OK)
    return fail("tokenizing the prompt");
  if (n > 1024) n = 1024;
  printf("prompt \"%s\": %zu tokens\n", prompt, n);

  photon_engine_options eo;
  photon_engine_options_defaults(&eo);
  eo.memory_budget = 64u << 20; /* bytes for all KV caches */
  photon_engine *engine = NULL;
  if (photon_engine_create(model, &eo, &engine) != PHOTON_OK) return fail("creating the engine");

  photon_sampling s;
  photon_sampling_defaults(&s); /* greedy */
  s.max_tokens = max_tokens;
  photon_request_id id;
  if (photon_engine_submit(engine, ids, n, &s, &id) != PHOTON_OK) return fail("submitting");

  output out = {model, 0};
  if (photon_engine_run(engine, on_tokens, &out) != PHOTON_OK) return fail("generating");
  printf("generated %zu tokens\n", out.count);

  /* Either order is fine: the engine keeps its model loaded (photon.h, "Handles"). */
  photon_model_free(model);
  photon_engine_free(engine);
  return 0;
}
