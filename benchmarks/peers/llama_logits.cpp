// Greedy generation of given token ids with llama.cpp (libllama), for the peer check
// (benchmarks/peers/check_llama.py): are llama.cpp's logits and tokens those of the
// reference on the same weights? Built by build_llama_cpp.sh next to llama-bench.
//
// usage: llama-logits MODEL.gguf N_GEN TOKEN...
// Prints one JSON object: the greedy tokens, and the logits after the prompt and after every
// generated token (N_GEN rows of n_vocab floats).
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "llama.h"

int main(int argc, char **argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: llama-logits MODEL.gguf N_GEN TOKEN...\n");
    return 2;
  }
  const int nGen = std::atoi(argv[2]);
  std::vector<llama_token> prompt;
  for (int i = 3; i < argc; ++i) prompt.push_back(std::atoi(argv[i]));
  llama_backend_init();
  llama_model_params mp = llama_model_default_params();
  llama_model *model = llama_model_load_from_file(argv[1], mp);
  if (!model) {
    std::fprintf(stderr, "llama-logits: cannot load %s\n", argv[1]);
    return 1;
  }
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = static_cast<uint32_t>(prompt.size() + nGen + 16);
  cp.n_batch = cp.n_ctx;
  cp.n_threads = cp.n_threads_batch = 1;
  llama_context *ctx = llama_init_from_model(model, cp);
  if (!ctx) {
    std::fprintf(stderr, "llama-logits: cannot create a context\n");
    return 1;
  }
  const int nVocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
  std::vector<llama_token> out;
  std::printf("{\"n_vocab\": %d, \"logits\": [", nVocab);
  llama_batch batch = llama_batch_get_one(prompt.data(), static_cast<int32_t>(prompt.size()));
  llama_token tok = 0;
  for (int s = 0; s < nGen; ++s) {
    if (llama_decode(ctx, batch) != 0) {
      std::fprintf(stderr, "llama-logits: llama_decode failed\n");
      return 1;
    }
    const float *lg = llama_get_logits_ith(ctx, -1);
    int best = 0;
    for (int v = 0; v < nVocab; ++v)
      if (lg[v] > lg[best]) best = v;
    std::printf("%s[", s ? ", " : "");
    for (int v = 0; v < nVocab; ++v) std::printf("%s%.6g", v ? "," : "", lg[v]);
    std::printf("]");
    tok = best;
    out.push_back(tok);
    batch = llama_batch_get_one(&tok, 1);
  }
  std::printf("], \"tokens\": [");
  for (size_t i = 0; i < out.size(); ++i) std::printf("%s%d", i ? ", " : "", out[i]);
  std::printf("]}\n");
  llama_free(ctx);
  llama_model_free(model);
  return 0;
}
