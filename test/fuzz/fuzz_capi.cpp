// libFuzzer target: a sequence of C API calls, decoded from the input, on one vanilla test
// artifact (test/hostile/Inputs/base + the runtime's test model library): engine create/free
// with arbitrary options, submit with arbitrary prompts and sampling fields (raw float bits:
// NaN, inf, negative), step, cancel, per-request cancel, tokenize/detokenize of arbitrary
// ids, stats, freeing the model handle while engines live. Oracle: no crash, no sanitizer
// report, no hang; every failing call sets a message.
#include "photon/photon.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace {
struct Reader {
  const uint8_t *p;
  size_t n;
  template <typename T> T get() {
    T v{};
    size_t k = n < sizeof v ? n : sizeof v;
    std::memcpy(&v, p, k);
    p += k;
    n -= k;
    return v;
  }
  bool done() const { return n == 0; }
};

std::string copyFile(const std::string &from, const std::string &to) {
  std::FILE *a = std::fopen(from.c_str(), "rb");
  std::FILE *b = std::fopen(to.c_str(), "wb");
  if (!a || !b) std::abort();
  char buf[65536];
  size_t k;
  while ((k = std::fread(buf, 1, sizeof buf, a)) > 0) std::fwrite(buf, 1, k, b);
  std::fclose(a);
  std::fclose(b);
  return to;
}

const std::string &artifact() {
  static std::string d = [] {
    char tmpl[] = "/tmp/photon-fuzz-capi-XXXXXX";
    const char *p = mkdtemp(tmpl);
    if (!p) std::abort();
    std::string dir = std::string(p) + "/a.photon";
    mkdir(dir.c_str(), 0755);
    std::string in = PHOTON_HOSTILE_INPUTS;
    copyFile(in + "/base/manifest.json", dir + "/manifest.json");
    copyFile(in + "/base/weights.bin", dir + "/weights.bin");
    copyFile(PHOTON_TESTMODEL_LIB, dir + "/model.so");
    return dir;
  }();
  return d;
}

void expectMessage(photon_status s) {
  if (s != PHOTON_OK && photon_last_error()[0] == '\0') std::abort();
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  photon_model *model = nullptr;
  if (photon_model_load(artifact().c_str(), nullptr, &model) != PHOTON_OK) {
    std::fprintf(stderr, "%s\n", photon_last_error());
    std::abort();
  }
  std::vector<photon_engine *> engines;
  std::vector<photon_request_id> ids;
  Reader r{data, size};
  int steps = 0;
  while (!r.done() && steps < 64) {
    uint8_t op = r.get<uint8_t>() % 10;
    photon_engine *e = engines.empty() ? nullptr : engines[r.get<uint8_t>() % engines.size()];
    switch (op) {
    case 0: { // create
      if (!model || engines.size() >= 3) break;
      photon_engine_options o;
      photon_engine_options_defaults(&o);
      o.max_batch = r.get<uint8_t>() % 9;
      o.memory_budget = r.get<uint16_t>() * 64ull;
      o.context_limit = r.get<int8_t>();
      o.mode = static_cast<photon_mode>(r.get<uint8_t>() % 3);
      photon_engine *ne = nullptr;
      photon_status s = photon_engine_create(model, &o, &ne);
      expectMessage(s);
      if (s == PHOTON_OK) engines.push_back(ne);
      break;
    }
    case 1: { // submit
      if (!e) break;
      std::vector<int32_t> prompt(r.get<uint8_t>() % 24);
      for (auto &t : prompt) t = r.get<int16_t>() % 300;
      photon_sampling s;
      photon_sampling_defaults(&s);
      s.temperature = r.get<float>();
      s.top_k = r.get<int8_t>();
      s.top_p = r.get<float>();
      s.repetition_penalty = r.get<float>();
      s.seed = r.get<uint8_t>();
      s.max_tokens = r.get<int8_t>();
      photon_request_id id = 0;
      photon_status st = photon_engine_submit(e, prompt.data(), prompt.size(), &s, &id);
      expectMessage(st);
      if (st == PHOTON_OK) ids.push_back(id);
      break;
    }
    case 2: { // a prompt_len past the API's cap (2^26) on a small buffer: refused unread
      if (!e) break;
      int32_t one = 65;
      photon_request_id id = 0;
      photon_status st =
          photon_engine_submit(e, &one, SIZE_MAX >> (r.get<uint8_t>() % 38), nullptr, &id);
      if (st != PHOTON_ERR_INVALID_ARGUMENT) std::abort();
      expectMessage(st);
      break;
    }
    case 3: { // step
      if (!e) break;
      int32_t active = 0;
      expectMessage(photon_engine_step(e, nullptr, nullptr, &active));
      break;
    }
    case 4:
      if (e) photon_engine_cancel(e);
      break;
    case 5:
      if (e && !ids.empty())
        expectMessage(photon_engine_cancel_request(e, ids[r.get<uint8_t>() % ids.size()]));
      break;
    case 6: { // detokenize arbitrary ids
      if (!model) break;
      std::vector<int32_t> t(r.get<uint8_t>() % 8);
      for (auto &x : t) x = r.get<int32_t>();
      char out[64];
      size_t n = 0;
      expectMessage(photon_detokenize(model, t.data(), t.size(), out, sizeof out, &n));
      break;
    }
    case 7: { // stats
      if (!e) break;
      photon_engine_stats st;
      std::memset(&st, 0, sizeof st);
      st.struct_size = r.get<uint8_t>() % (sizeof st + 1);
      expectMessage(photon_engine_get_stats(e, &st));
      break;
    }
    case 8: // free the model handle: engines keep it alive
      photon_model_free(model);
      model = nullptr;
      break;
    case 9: // free an engine
      if (!engines.empty()) {
        size_t k = r.get<uint8_t>() % engines.size();
        photon_engine_free(engines[k]);
        engines.erase(engines.begin() + static_cast<long>(k));
      }
      break;
    }
    ++steps;
  }
  for (photon_engine *e : engines) {
    photon_engine_cancel(e);
    int32_t active = 0;
    photon_engine_step(e, nullptr, nullptr, &active);
    photon_engine_free(e);
  }
  photon_model_free(model);
  return 0;
}
