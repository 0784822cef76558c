// photon-run: run a compiled photon artifact.
//
//   photon-run model.photon --prompt "Once upon a time" [--mode hiergen|recgen] ...
//   photon-run model.photon --prompts-file prompts.txt --json
//   photon-run model.photon --eval corpus.txt            bits per byte / perplexity
//   photon-run model.photon --prompt "..." --logits-out logits.npy
//
// A client of the public API only: photon/photon.hpp (the C API of photon.h through its C++
// wrapper) and photon/cuda.h (device properties), linked against libphoton.so. JSON output through nlohmann::json.
#include "photon/cuda.h"
#include "photon/photon.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <climits>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <fstream>
#include <map>
#include <string>
#include <sys/resource.h>
#include <vector>

using Json = nlohmann::ordered_json;

namespace {

const char *kUsage = R"(usage: photon-run MODEL.photon [options]

Generate text with a compiled photon artifact (a directory written by photon-compile), or
evaluate it. Text streams to stdout as it is generated; statistics go to stderr.

generation:
  --prompt TEXT             prompt (may be empty for PHOTON/Block models)
  --prompts-file FILE       one prompt per line; all are batched together
  --mode hiergen|recgen     PHOTON generation mode (default hiergen; recgen keeps only the
                            top-level KV cache)
  --max-tokens N            new tokens per prompt (default 128)
  --temperature T           0 = greedy (default 0)
  --top-k K                 keep the K most likely tokens (default 0 = off)
  --top-p P                 nucleus sampling mass (default 1 = off)
  --repetition-penalty R    > 1 discourages repeats (default 1 = off)
  --seed S                  per-sequence RNG seed (default 0); prompt i uses S + i
  --stop STR                stop before STR (repeatable; C escapes \n \t \\ understood)
  --ignore-eos              keep generating past the tokenizer's end-of-sequence token
                            (default: a sequence ends there, finish reason "eos")
  --max-batch N             sequences decoded together (default 64)
  --memory-budget SIZE      KV-cache budget, e.g. 512M, 2G (default: 1/4 of RAM)
  --context-limit N         max prompt + generated tokens per sequence (default: none)
  --overlap never|auto|always  RecGen: run the next top-level step on a second thread while
                            tokens render (default auto: where it pays)
  --threads N               compute threads of an artifact compiled with --openmp (default:
                            OMP_NUM_THREADS, else the cores other processes leave free,
                            re-measured every 0.25 s; a sequential artifact uses 1)
  --json                    print one JSON object with every request and the statistics
  --quiet                   no streaming and no statistics (just the texts)

evaluation and debugging:
  --eval FILE               teacher-forced bits per byte and perplexity over FILE, in
                            windows of the model's context (uses the `forward` stage)
  --window N                evaluation window in tokens (default: the model's max_context,
                            rounded down to a multiple of tokens per step)
  --logits-out FILE.npy     write the teacher-forced logits [T, V] of the --prompt tokens
                            (PHOTON/Block: row t is the distribution of token t; vanilla: of t+1)

other:
  --no-verify-checksum      skip the FNV-1a check of weights.bin at load
  --cuda-probe              report whether a CUDA driver and device are usable, then exit
  --help                    this text

Statistics: prefill and decode tokens/s, peak KV-cache bytes per level, total memory
(weights + peak cache + process peak RSS) and TPM = decode tokens/s per GiB of peak KV cache.
Ctrl-C stops generation cleanly after the current step (press twice to abort).
)";

std::atomic<photon_engine *> g_engine{nullptr};
volatile sig_atomic_t g_interrupts = 0;

void onSigint(int) {
  g_interrupts = g_interrupts + 1;
  if (g_interrupts >= 2) {
    std::signal(SIGINT, SIG_DFL);
    std::raise(SIGINT);
    return;
  }
  if (photon_engine *e = g_engine.load()) photon_engine_cancel(e);
}

[[noreturn]] void die(const std::string &msg, int code = 1) {
  std::fprintf(stderr, "photon-run: error: %s\n", msg.c_str());
  std::exit(code);
}

std::string unescape(const std::string &s) {
  std::string o;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      char c = s[++i];
      o += c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c == '0' ? '\0' : c;
    } else {
      o += s[i];
    }
  }
  return o;
}

/// JSON text of `j`; bytes that are not valid UTF-8 become U+FFFD (a byte-level model can
/// generate any bytes; the token ids stay exact in "tokens").
std::string dumpJson(const Json &j) { return j.dump(1, ' ', false, Json::error_handler_t::replace); }

std::string formatBytes(double bytes) {
  char buf[64];
  return photon_format_bytes(bytes, buf, sizeof buf);
}

bool parseByteSize(const std::string &text, uint64_t &out) {
  return photon_parse_byte_size(text.c_str(), &out) != 0;
}

bool readFile(const std::string &path, std::string &out, std::string &err) {
  std::ifstream f(path, std::ios::binary);
  if (!f) { err = "cannot open '" + path + "': " + std::strerror(errno); return false; }
  std::ostringstream text;
  text << f.rdbuf();
  if (f.bad()) { err = "error reading '" + path + "'"; return false; }
  out = text.str();
  return true;
}

const char *finishName(photon_finish f) {
  switch (f) {
  case PHOTON_FINISH_NONE: return "none";
  case PHOTON_FINISH_LENGTH: return "length";
  case PHOTON_FINISH_STOP: return "stop";
  case PHOTON_FINISH_CONTEXT: return "context";
  case PHOTON_FINISH_CANCELLED: return "cancelled";
  case PHOTON_FINISH_EOS: return "eos";
  }
  return "?";
}

bool parseInt(const std::string &s, int64_t &out) {
  char *end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno || !end || *end || s.empty()) return false;
  out = v;
  return true;
}
bool parseFloat(const std::string &s, double &out) {
  char *end = nullptr;
  errno = 0;
  double v = std::strtod(s.c_str(), &end);
  if (errno || !end || *end || s.empty() || !std::isfinite(v)) return false;
  out = v;
  return true;
}

bool writeNpy(const std::string &path, const float *data, const std::vector<int64_t> &shape,
              std::string &err) {
  std::string shp = "(";
  for (size_t i = 0; i < shape.size(); ++i) shp += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) shp += ",";
  shp += ")";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shp + ", }";
  size_t total = 10 + header.size() + 1;
  header += std::string((64 - total % 64) % 64, ' ') + "\n";
  std::FILE *f = std::fopen(path.c_str(), "wb");
  if (!f) { err = "cannot write '" + path + "': " + std::strerror(errno); return false; }
  const char magic[] = "\x93NUMPY\x01\x00";
  std::fwrite(magic, 1, 8, f);
  uint16_t hl = static_cast<uint16_t>(header.size());
  std::fwrite(&hl, 2, 1, f);
  std::fwrite(header.data(), 1, header.size(), f);
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  bool ok = std::fwrite(data, sizeof(float), n, f) == n;
  ok &= std::fclose(f) == 0;
  if (!ok) err = "failed writing '" + path + "'";
  return ok;
}

double logSoftmaxAt(const float *l, int V, int32_t t) {
  double mx = l[0];
  for (int v = 1; v < V; ++v) mx = std::max<double>(mx, l[v]);
  double s = 0;
  for (int v = 0; v < V; ++v) s += std::exp(static_cast<double>(l[v]) - mx);
  return static_cast<double>(l[t]) - mx - std::log(s);
}

int runEval(const photon::Model &model, const std::string &file, int64_t window, bool json) {
  std::string text, err;
  if (!readFile(file, text, err)) die(err);
  const photon_model_info m = model.info();
  std::vector<int32_t> toks = model.tokenize(text);
  const int tps = m.tokens_per_step;
  // Logits at t predict token t + 1 (decoder-only and forward-only graphs) or token t
  // (PHOTON and Block: the token decoder's windows already shift by one).
  const bool vanilla = m.family == PHOTON_FAMILY_VANILLA || m.family == PHOTON_FAMILY_FORWARD;
  if (window <= 0) window = m.max_context;
  window = window / tps * tps;
  if (window > static_cast<int64_t>(toks.size())) window = static_cast<int64_t>(toks.size()) / tps * tps;
  if (window < tps || (vanilla && window < 2))
    die("'" + file + "' has " + std::to_string(toks.size()) + " tokens, fewer than one evaluation "
        "window of " + std::to_string(tps) + " tokens");
  const int64_t nWin = static_cast<int64_t>(toks.size()) / window;
  const int V = m.vocab;
  double nll = 0;
  int64_t scored = 0, bytes = 0;
  std::vector<float> logits(static_cast<size_t>(window) * V);
  double t0 = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  for (int64_t w = 0; w < nWin && !g_interrupts; ++w) {
    const int32_t *x = toks.data() + w * window;
    model.forward(x, 1, static_cast<int32_t>(window), logits.data());
    const int64_t first = vanilla ? 1 : 0;
    for (int64_t t = first; t < window; ++t) {
      const float *row = logits.data() + (vanilla ? t - 1 : t) * V;
      nll -= logSoftmaxAt(row, V, x[t]);
      ++scored;
    }
    bytes += static_cast<int64_t>(model.detokenize(std::vector<int32_t>(x + first, x + window)).size());
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count() - t0;
  double ppl = std::exp(nll / std::max<int64_t>(scored, 1));
  double bpb = nll / std::log(2.0) / std::max<int64_t>(bytes, 1);
  if (json) {
    Json j;
    j["file"] = file;
    j["tokens"] = toks.size();
    j["window"] = window;
    j["windows"] = nWin;
    j["scored_tokens"] = scored;
    j["scored_bytes"] = bytes;
    j["nll_per_token"] = nll / std::max<int64_t>(scored, 1);
    j["perplexity"] = ppl;
    j["bits_per_byte"] = bpb;
    j["seconds"] = secs;
    std::printf("%s\n", dumpJson(j).c_str());
  } else {
    std::printf("eval %s: %zu tokens, %" PRId64 " windows of %" PRId64 " (tail of %" PRId64 " not scored)\n",
                file.c_str(), toks.size(), nWin, window, static_cast<int64_t>(toks.size()) - nWin * window);
    std::printf("  scored %" PRId64 " tokens (%" PRId64 " bytes) in %.2f s (%.0f tokens/s)\n", scored, bytes, secs,
                scored / std::max(secs, 1e-9));
    std::printf("  nll/token %.4f nats   perplexity %.3f   bits per byte %.4f\n",
                nll / std::max<int64_t>(scored, 1), ppl, bpb);
  }
  return g_interrupts ? 130 : 0;
}

int run(int argc, char **argv) {
  std::string modelPath, prompt, promptsFile, evalFile, logitsOut;
  bool havePrompt = false, json = false, quiet = false, verify = true, cudaProbe = false;
  // Engine options and sampling parameters, as given on the command line.
  photon_mode mode = PHOTON_MODE_HIERGEN;
  uint64_t memoryBudget = 0;
  int32_t maxBatch = 64, overlap = 1, threads = 0;
  int64_t contextLimit = 0;
  float temperature = 0, topP = 1, repetitionPenalty = 1;
  bool ignoreEos = false;
  int32_t topK = 0, maxTokens = 128;
  uint64_t seed = 0;
  std::vector<std::string> stops;
  int64_t window = 0;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string &a = args[i];
    auto value = [&](const char *name) -> std::string {
      if (i + 1 >= args.size()) die(std::string(name) + " needs a value (see --help)", 2);
      return args[++i];
    };
    // Range-checked, never narrowed: a value that does not fit is refused as such.
    auto intValue = [&](const char *name, int64_t lo, int64_t hi = INT64_MAX) {
      int64_t v;
      std::string s = value(name);
      if (!parseInt(s, v) || v < lo || v > hi)
        die(std::string(name) + ": expected an integer " +
                (hi == INT64_MAX ? ">= " + std::to_string(lo)
                                 : "in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]") +
                ", got '" + s + "'",
            2);
      return v;
    };
    auto floatValue = [&](const char *name, double lo) {
      double v;
      std::string s = value(name);
      if (!parseFloat(s, v) || v < lo) die(std::string(name) + ": expected a number >= " + std::to_string(lo) + ", got '" + s + "'", 2);
      return v;
    };
    if (a == "--help" || a == "-h") { std::fputs(kUsage, stdout); return 0; }
    else if (a == "--prompt") { prompt = value("--prompt"); havePrompt = true; }
    else if (a == "--prompts-file") promptsFile = value("--prompts-file");
    else if (a == "--mode") {
      std::string m = value("--mode");
      if (m == "hiergen") mode = PHOTON_MODE_HIERGEN;
      else if (m == "recgen") mode = PHOTON_MODE_RECGEN;
      else die("--mode: expected hiergen or recgen, got '" + m + "'", 2);
    }
    else if (a == "--max-tokens") maxTokens = static_cast<int32_t>(intValue("--max-tokens", 1, INT32_MAX));
    else if (a == "--temperature") temperature = static_cast<float>(floatValue("--temperature", 0));
    else if (a == "--top-k") topK = static_cast<int32_t>(intValue("--top-k", 0, INT32_MAX));
    else if (a == "--top-p") {
      std::string v = value("--top-p");
      double d;
      if (!parseFloat(v, d) || !(d > 0.0 && d <= 1.0))
        die("--top-p: expected a number in (0, 1] (1 = off; for greedy use --temperature 0), "
            "got '" + v + "'", 2);
      topP = static_cast<float>(d);
    }
    else if (a == "--repetition-penalty") repetitionPenalty = static_cast<float>(floatValue("--repetition-penalty", 1e-6));
    else if (a == "--seed") seed = static_cast<uint64_t>(intValue("--seed", 0));
    else if (a == "--stop") stops.push_back(unescape(value("--stop")));
    else if (a == "--ignore-eos") ignoreEos = true;
    else if (a == "--max-batch") maxBatch = static_cast<int32_t>(intValue("--max-batch", 1, INT32_MAX));
    else if (a == "--context-limit") contextLimit = intValue("--context-limit", 1);
    else if (a == "--memory-budget") {
      std::string s = value("--memory-budget");
      if (!parseByteSize(s, memoryBudget) || memoryBudget == 0)
        die("--memory-budget: expected a size such as 512M or 2G, got '" + s + "'", 2);
    }
    else if (a == "--overlap") {
      std::string v = value("--overlap");
      if (v == "never") overlap = 0;
      else if (v == "auto") overlap = 1;
      else if (v == "always") overlap = 2;
      else die("--overlap: expected never, auto or always, got '" + v + "'", 2);
    }
    else if (a == "--threads") {
      std::string v = value("--threads");
      char *end = nullptr;
      long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end || n < 1 || n > 1024)
        die("--threads: expected a thread count >= 1, got '" + v + "'", 2);
      threads = static_cast<int32_t>(n);
    }
    else if (a == "--json") json = true;
    else if (a == "--quiet") quiet = true;
    else if (a == "--eval") evalFile = value("--eval");
    else if (a == "--window") window = intValue("--window", 1);
    else if (a == "--logits-out") logitsOut = value("--logits-out");
    else if (a == "--no-verify-checksum") verify = false;
    else if (a == "--cuda-probe") cudaProbe = true;
    else if (!a.empty() && a[0] == '-') die("unknown option '" + a + "' (see --help)", 2);
    else if (modelPath.empty()) modelPath = a;
    else die("more than one model given ('" + modelPath + "' and '" + a + "')", 2);
  }
  if (cudaProbe) {
    int32_t n = 0;
    if (photon_cuda_probe(&n) != PHOTON_OK) { std::printf("CUDA: %s\n", photon_last_error()); return 1; }
    for (int32_t d = 0; d < n; ++d) {
      photon_cuda_device_info info;
      if (photon_cuda_device_query(d, &info) == PHOTON_CUDA_OK)
        std::printf("CUDA device %d: %s (sm_%d%d, %s)\n", d, info.name, info.cc_major,
                    info.cc_minor, formatBytes(static_cast<double>(info.total_bytes)).c_str());
    }
    return 0;
  }
  if (modelPath.empty()) die("no model given\n" + std::string(kUsage), 2);
  if (!havePrompt && promptsFile.empty() && evalFile.empty())
    die("nothing to do: give --prompt, --prompts-file or --eval (see --help)", 2);

  photon::Model model(modelPath, verify);
  const photon_model_info mf = model.info();
  const std::string familyName = mf.family_name ? mf.family_name : "?";
  std::signal(SIGINT, onSigint);

  if (!evalFile.empty()) return runEval(model, evalFile, window, json);

  if (!logitsOut.empty()) {
    if (!havePrompt) die("--logits-out needs --prompt (the tokens whose logits to write)", 2);
    std::vector<int32_t> toks = model.tokenize(prompt);
    if (toks.empty()) die("--logits-out: the prompt is empty", 2);
    int tps = mf.tokens_per_step;
    int64_t T = static_cast<int64_t>(toks.size());
    int64_t Tp = (T + tps - 1) / tps * tps;
    std::vector<int32_t> padded(toks);
    padded.resize(static_cast<size_t>(Tp), 0);
    std::vector<float> logits(static_cast<size_t>(Tp) * mf.vocab);
    model.forward(padded.data(), 1, static_cast<int32_t>(Tp), logits.data());
    std::string err;
    if (!writeNpy(logitsOut, logits.data(), {T, mf.vocab}, err)) die(err);
    std::fprintf(stderr, "photon-run: wrote logits [%" PRId64 ", %d] of %" PRId64 " tokens to %s\n", T,
                 mf.vocab, T, logitsOut.c_str());
    return 0;
  }

  std::vector<std::string> prompts;
  if (havePrompt) prompts.push_back(prompt);
  if (!promptsFile.empty()) {
    std::string text, err;
    if (!readFile(promptsFile, text, err)) die(err);
    size_t pos = 0;
    while (pos < text.size()) {
      size_t e = text.find('\n', pos);
      if (e == std::string::npos) e = text.size();
      std::string line = text.substr(pos, e - pos);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty()) prompts.push_back(unescape(line));
      pos = e + 1;
    }
    if (prompts.empty()) die("'" + promptsFile + "' has no prompts (one per line)");
  }

  photon::Engine engine(model, photon::EngineOptions()
                                   .mode(mode)
                                   .memoryBudget(memoryBudget)
                                   .maxBatch(maxBatch)
                                   .contextLimit(contextLimit)
                                   .overlapRecGen(overlap)
                                   .threads(threads));
  struct Req {
    std::string prompt, text;
    std::vector<int32_t> tokens;
    photon_finish finish = PHOTON_FINISH_NONE;
    size_t promptTokens = 0;
  };
  std::vector<Req> reqs(prompts.size());
  std::map<uint64_t, size_t> byId;
  for (size_t i = 0; i < prompts.size(); ++i) {
    reqs[i].prompt = prompts[i];
    std::vector<int32_t> toks = model.tokenize(prompts[i]);
    reqs[i].promptTokens = toks.size();
    photon::Sampling p;
    p.temperature(temperature).topK(topK).topP(topP).repetitionPenalty(repetitionPenalty)
        .seed(seed + i).maxTokens(maxTokens).stop(stops).ignoreEos(ignoreEos);
    photon_request_id id = 0;
    try {
      id = engine.submit(toks, p);
    } catch (const photon::Error &e) {
      die("prompt " + std::to_string(i + 1) + ": " + e.what());
    }
    byId[id] = i;
  }
  const bool stream = !json && !quiet && prompts.size() == 1;
  if (stream) {
    std::fwrite(prompts[0].data(), 1, prompts[0].size(), stdout);
    std::fflush(stdout);
  }
  g_engine.store(engine.get());
  bool cancelled = !engine.run([&](photon_request_id id, const std::vector<int32_t> &t, photon_finish f) {
    Req &r = reqs[byId[id]];
    std::string piece = model.detokenize(t);
    r.tokens.insert(r.tokens.end(), t.begin(), t.end());
    r.text += piece;
    r.finish = f;
    if (stream) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      if (f != PHOTON_FINISH_NONE) std::fputc('\n', stdout);
      std::fflush(stdout);
    }
    return true;
  });
  g_engine.store(nullptr);

  const photon_engine_stats es = engine.stats();
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  uint64_t rss = static_cast<uint64_t>(ru.ru_maxrss) * 1024;
  uint64_t peakCache = es.cache_peak_total_bytes;
  uint64_t total = mf.weights_bytes + peakCache;
  double prefillTps = es.prefill_seconds > 0 ? es.prefill_tokens / es.prefill_seconds : 0;
  double decodeTps = es.decode_seconds > 0 ? es.decode_tokens / es.decode_seconds : 0;
  double tpm = peakCache > 0 ? decodeTps / (static_cast<double>(peakCache) / (1024.0 * 1024 * 1024)) : 0;
  const char *modeName = mode == PHOTON_MODE_RECGEN ? "recgen" : "hiergen";
  const int computeThreads = es.compute_threads;
  if (json) {
    Json j;
    j["model"] = modelPath;
    j["family"] = familyName;
    j["mode"] = mf.family == PHOTON_FAMILY_VANILLA ? "vanilla" : modeName;
    Json requests = Json::array();
    for (const Req &r : reqs)
      requests.push_back(Json{{"prompt", r.prompt},
                              {"prompt_tokens", r.promptTokens},
                              {"text", r.text},
                              {"finish", finishName(r.finish)},
                              {"tokens", r.tokens}});
    j["requests"] = std::move(requests);
    Json cachePeak = Json::object();
    for (int li = 0; li < es.cache_levels; ++li)
      cachePeak[std::to_string(es.cache_level_id[li])] = es.cache_peak_bytes[li];
    j["stats"] = Json{{"prefill_tokens", es.prefill_tokens},
                      {"prefill_seconds", es.prefill_seconds},
                      {"prefill_tokens_per_s", prefillTps},
                      {"decode_tokens", es.decode_tokens},
                      {"decode_seconds", es.decode_seconds},
                      {"decode_tokens_per_s", decodeTps},
                      {"peak_batch", es.peak_batch},
                      {"compute_threads", computeThreads},
                      {"cache_peak_bytes", std::move(cachePeak)},
                      {"cache_peak_total_bytes", peakCache},
                      {"weights_bytes", mf.weights_bytes},
                      {"total_memory_bytes", total},
                      {"peak_rss_bytes", rss},
                      {"tpm_tokens_per_s_per_gib", tpm},
                      {"budget_bytes", es.budget_bytes},
                      {"device", mf.device ? mf.device : "host"},
                      {"memory_space", mf.device_memory ? "device" : "host"},
                      {"cancelled", cancelled}};
    std::printf("%s\n", dumpJson(j).c_str());
  } else {
    if (!stream)
      for (size_t i = 0; i < reqs.size(); ++i) {
        if (!quiet) std::printf("[%zu] ", i + 1);
        std::printf("%s%s\n", reqs[i].prompt.c_str(), reqs[i].text.c_str());
      }
    if (!quiet) {
      std::fprintf(stderr, "\n--- photon-run: %s, %s%s\n", familyName.c_str(),
                   mf.family == PHOTON_FAMILY_VANILLA ? "autoregressive" : modeName,
                   cancelled ? " (interrupted)" : "");
      std::fprintf(stderr, "prefill: %" PRIu64 " tokens in %.3f s = %.1f tokens/s\n", es.prefill_tokens,
                   es.prefill_seconds, prefillTps);
      std::fprintf(stderr, "decode:  %" PRIu64 " tokens in %.3f s = %.1f tokens/s (peak batch %d, %d compute thread%s)\n",
                   es.decode_tokens, es.decode_seconds, decodeTps, es.peak_batch, computeThreads,
                   computeThreads == 1 ? "" : "s");
      for (int li = 0; li < es.cache_levels; ++li)
        std::fprintf(stderr, "cache level %d: peak %s (%" PRIu64 " bytes)\n", es.cache_level_id[li],
                     formatBytes(static_cast<double>(es.cache_peak_bytes[li])).c_str(), es.cache_peak_bytes[li]);
      if (mf.device_memory) // weights and caches in device memory, the host's RSS apart
        std::fprintf(stderr, "device memory (%s, %s): weights %s + peak cache %s = %s; host: "
                     "process peak RSS %s\n", mf.device,
                     formatBytes(static_cast<double>(mf.device_total_bytes)).c_str(),
                     formatBytes(static_cast<double>(mf.weights_bytes)).c_str(),
                     formatBytes(static_cast<double>(peakCache)).c_str(),
                     formatBytes(static_cast<double>(total)).c_str(),
                     formatBytes(static_cast<double>(rss)).c_str());
      else
        std::fprintf(stderr, "memory: weights %s + peak cache %s = %s (process peak RSS %s)\n",
                     formatBytes(static_cast<double>(mf.weights_bytes)).c_str(),
                     formatBytes(static_cast<double>(peakCache)).c_str(),
                     formatBytes(static_cast<double>(total)).c_str(), formatBytes(static_cast<double>(rss)).c_str());
      if (peakCache > 0) std::fprintf(stderr, "TPM: %.1f tokens/s per GiB of KV cache\n", tpm);
      else std::fprintf(stderr, "TPM: n/a (no KV cache used)\n");
    }
  }
  return cancelled ? 130 : 0;
}

} // namespace

int main(int argc, char **argv) {
  try {
    return run(argc, argv);
  } catch (const photon::Error &e) {
    die(e.what());
  } catch (const std::exception &e) {
    die(std::string("internal error: ") + e.what());
  }
}
