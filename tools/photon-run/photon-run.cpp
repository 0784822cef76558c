// photon-run: run a compiled photon artifact.
//
//   photon-run model.photon --prompt "Once upon a time" [--mode hiergen|recgen] ...
//   photon-run model.photon --prompts-file prompts.txt --json
//   photon-run model.photon --eval corpus.txt            bits per byte / perplexity
//   photon-run model.photon --prompt "..." --logits-out logits.npy
#include "artifact.h"
#include "cache.h"
#include "cuda/cuda_backend.h"
#include "engine.h"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <sys/resource.h>
#include <vector>

using namespace photon;

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
  --max-batch N             sequences decoded together (default 64)
  --memory-budget SIZE      KV-cache budget, e.g. 512M, 2G (default: 1/4 of RAM)
  --context-limit N         max prompt + generated tokens per sequence (default: none)
  --overlap never|auto|always  RecGen: run the next top-level step on a second thread while
                            tokens render (default auto: where it pays)
  --threads N               compute threads of an artifact compiled with --openmp (default:
                            OMP_NUM_THREADS, else every core; a sequential artifact uses 1)
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

std::atomic<Engine *> g_engine{nullptr};
volatile sig_atomic_t g_interrupts = 0;

void onSigint(int) {
  g_interrupts = g_interrupts + 1;
  if (g_interrupts >= 2) {
    std::signal(SIGINT, SIG_DFL);
    std::raise(SIGINT);
    return;
  }
  if (Engine *e = g_engine.load()) e->cancel();
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

/// A JSON string body: escapes, and U+FFFD for every byte that is not part of valid UTF-8
/// (a byte-level model can generate any bytes; the token ids stay exact in "tokens").
std::string jsonEscape(const std::string &s) {
  std::string o;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = photon::utf8SequenceLength(s, i);
    if (n == 0) {
      o += "\\ufffd";
      ++i;
      continue;
    }
    if (n > 1) {
      o.append(s, i, n);
      i += n;
      continue;
    }
    switch (c) {
    case '"': o += "\\\""; break;
    case '\\': o += "\\\\"; break;
    case '\n': o += "\\n"; break;
    case '\t': o += "\\t"; break;
    case '\r': o += "\\r"; break;
    default:
      if (c < 0x20 || c == 0x7F) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        o += buf;
      } else {
        o += static_cast<char>(c);
      }
    }
    ++i;
  }
  return o;
}

const char *finishName(photon_finish f) {
  switch (f) {
  case PHOTON_FINISH_NONE: return "none";
  case PHOTON_FINISH_LENGTH: return "length";
  case PHOTON_FINISH_STOP: return "stop";
  case PHOTON_FINISH_CONTEXT: return "context";
  case PHOTON_FINISH_CANCELLED: return "cancelled";
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

int runEval(const Model &model, const std::string &file, int64_t window, bool json) {
  std::string text;
  Status st = readFile(file, text);
  if (!st) die(st.message());
  const Manifest &m = model.manifest();
  std::vector<int32_t> toks = model.tokenizer().encode(text);
  const int tps = m.tokensPerStep();
  // Logits at t predict token t + 1 (decoder-only and forward-only graphs) or token t
  // (PHOTON and Block: the token decoder's windows already shift by one).
  const bool vanilla = m.family == PHOTON_FAMILY_VANILLA || m.family == PHOTON_FAMILY_FORWARD;
  if (window <= 0) window = m.maxContext;
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
    st = forwardLogits(model, x, 1, static_cast<int32_t>(window), logits.data());
    if (!st) die(st.message());
    for (int64_t t = vanilla ? 1 : 0; t < window; ++t) {
      const float *row = logits.data() + (vanilla ? t - 1 : t) * V;
      nll -= logSoftmaxAt(row, V, x[t]);
      ++scored;
      bytes += static_cast<int64_t>(model.tokenizer().tokenBytes(x[t]).size());
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count() - t0;
  double ppl = std::exp(nll / std::max<int64_t>(scored, 1));
  double bpb = nll / std::log(2.0) / std::max<int64_t>(bytes, 1);
  if (json) {
    std::printf("{\"file\": \"%s\", \"tokens\": %zu, \"window\": %" PRId64 ", \"windows\": %" PRId64
                ", \"scored_tokens\": %" PRId64 ", \"scored_bytes\": %" PRId64
                ", \"nll_per_token\": %.6f, \"perplexity\": %.4f, \"bits_per_byte\": %.5f, \"seconds\": %.3f}\n",
                jsonEscape(file).c_str(), toks.size(), window, nWin, scored, bytes, nll / std::max<int64_t>(scored, 1),
                ppl, bpb, secs);
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

} // namespace

int main(int argc, char **argv) {
  std::string modelPath, prompt, promptsFile, evalFile, logitsOut;
  bool havePrompt = false, json = false, quiet = false, verify = true, cudaProbe = false;
  EngineOptions eo;
  SamplingParams sp;
  int64_t window = 0;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string &a = args[i];
    auto value = [&](const char *name) -> std::string {
      if (i + 1 >= args.size()) die(std::string(name) + " needs a value (see --help)", 2);
      return args[++i];
    };
    auto intValue = [&](const char *name, int64_t lo) {
      int64_t v;
      std::string s = value(name);
      if (!parseInt(s, v) || v < lo) die(std::string(name) + ": expected an integer >= " + std::to_string(lo) + ", got '" + s + "'", 2);
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
      if (m == "hiergen") eo.mode = PHOTON_MODE_HIERGEN;
      else if (m == "recgen") eo.mode = PHOTON_MODE_RECGEN;
      else die("--mode: expected hiergen or recgen, got '" + m + "'", 2);
    }
    else if (a == "--max-tokens") sp.maxTokens = static_cast<int>(intValue("--max-tokens", 1));
    else if (a == "--temperature") sp.temperature = static_cast<float>(floatValue("--temperature", 0));
    else if (a == "--top-k") sp.topK = static_cast<int>(intValue("--top-k", 0));
    else if (a == "--top-p") sp.topP = static_cast<float>(floatValue("--top-p", 0));
    else if (a == "--repetition-penalty") sp.repetitionPenalty = static_cast<float>(floatValue("--repetition-penalty", 1e-6));
    else if (a == "--seed") sp.seed = static_cast<uint64_t>(intValue("--seed", 0));
    else if (a == "--stop") sp.stop.push_back(unescape(value("--stop")));
    else if (a == "--max-batch") eo.maxBatch = static_cast<int>(intValue("--max-batch", 1));
    else if (a == "--context-limit") eo.contextLimit = intValue("--context-limit", 1);
    else if (a == "--memory-budget") {
      std::string s = value("--memory-budget");
      if (!parseByteSize(s, eo.memoryBudget) || eo.memoryBudget == 0)
        die("--memory-budget: expected a size such as 512M or 2G, got '" + s + "'", 2);
    }
    else if (a == "--overlap") {
      std::string v = value("--overlap");
      if (v == "never") eo.overlapRecGen = 0;
      else if (v == "auto") eo.overlapRecGen = 1;
      else if (v == "always") eo.overlapRecGen = 2;
      else die("--overlap: expected never, auto or always, got '" + v + "'", 2);
    }
    else if (a == "--threads") {
      std::string v = value("--threads");
      char *end = nullptr;
      long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end || n < 1 || n > 1024)
        die("--threads: expected a thread count >= 1, got '" + v + "'", 2);
      eo.threads = static_cast<int>(n);
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
    int n = 0;
    Status st = cuda::probe(n);
    if (!st) { std::printf("CUDA: %s\n", st.message().c_str()); return 1; }
    for (int d = 0; d < n; ++d) {
      cuda::DeviceInfo info;
      if (cuda::deviceInfo(d, info))
        std::printf("CUDA device %d: %s (sm_%d%d, %s)\n", d, info.name.c_str(), info.ccMajor,
                    info.ccMinor, formatBytes(static_cast<double>(info.totalMemory)).c_str());
    }
    return 0;
  }
  if (modelPath.empty()) die("no model given\n" + std::string(kUsage), 2);
  if (!havePrompt && promptsFile.empty() && evalFile.empty())
    die("nothing to do: give --prompt, --prompts-file or --eval (see --help)", 2);

  LoadOptions lo;
  lo.verifyChecksum = verify;
  std::unique_ptr<Model> model;
  Status st = Model::load(modelPath, lo, model);
  if (!st) die(st.message());
  const Manifest &mf = model->manifest();
  std::signal(SIGINT, onSigint);

  if (!evalFile.empty()) return runEval(*model, evalFile, window, json);

  if (!logitsOut.empty()) {
    if (!havePrompt) die("--logits-out needs --prompt (the tokens whose logits to write)", 2);
    std::vector<int32_t> toks = model->tokenizer().encode(prompt);
    if (toks.empty()) die("--logits-out: the prompt is empty", 2);
    int tps = mf.tokensPerStep();
    int64_t T = static_cast<int64_t>(toks.size());
    int64_t Tp = (T + tps - 1) / tps * tps;
    std::vector<int32_t> padded(toks);
    padded.resize(static_cast<size_t>(Tp), 0);
    std::vector<float> logits(static_cast<size_t>(Tp) * mf.vocab);
    st = forwardLogits(*model, padded.data(), 1, static_cast<int32_t>(Tp), logits.data());
    if (!st) die(st.message());
    std::string err;
    if (!writeNpy(logitsOut, logits.data(), {T, mf.vocab}, err)) die(err);
    std::fprintf(stderr, "photon-run: wrote logits [%" PRId64 ", %d] of %" PRId64 " tokens to %s\n", T,
                 mf.vocab, T, logitsOut.c_str());
    return 0;
  }

  std::vector<std::string> prompts;
  if (havePrompt) prompts.push_back(prompt);
  if (!promptsFile.empty()) {
    std::string text;
    st = readFile(promptsFile, text);
    if (!st) die(st.message());
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

  std::unique_ptr<Engine> engine;
  st = Engine::create(*model, eo, engine);
  if (!st) die(st.message());
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
    std::vector<int32_t> toks = model->tokenizer().encode(prompts[i]);
    reqs[i].promptTokens = toks.size();
    SamplingParams p = sp;
    p.seed = sp.seed + i;
    uint64_t id = 0;
    st = engine->submit(toks, p, id);
    if (!st) die("prompt " + std::to_string(i + 1) + ": " + st.message());
    byId[id] = i;
  }
  const bool stream = !json && !quiet && prompts.size() == 1;
  if (stream) {
    std::fwrite(prompts[0].data(), 1, prompts[0].size(), stdout);
    std::fflush(stdout);
  }
  g_engine.store(engine.get());
  st = engine->run([&](uint64_t id, const int32_t *t, size_t n, photon_finish f) {
    Req &r = reqs[byId[id]];
    std::string piece;
    for (size_t k = 0; k < n; ++k) piece += model->tokenizer().tokenBytes(t[k]);
    r.tokens.insert(r.tokens.end(), t, t + n);
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
  bool cancelled = st.code() == PHOTON_ERR_CANCELLED;
  if (!st && !cancelled) die(st.message());

  const EngineStats &es = engine->stats();
  const CacheManager &cm = engine->cache();
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  uint64_t rss = static_cast<uint64_t>(ru.ru_maxrss) * 1024;
  uint64_t peakCache = cm.peakTotalBytes();
  uint64_t total = model->weightsSize() + peakCache;
  double prefillTps = es.prefillSeconds > 0 ? es.prefillTokens / es.prefillSeconds : 0;
  double decodeTps = es.decodeSeconds > 0 ? es.decodeTokens / es.decodeSeconds : 0;
  double tpm = peakCache > 0 ? decodeTps / (static_cast<double>(peakCache) / (1024.0 * 1024 * 1024)) : 0;
  const char *modeName = eo.mode == PHOTON_MODE_RECGEN ? "recgen" : "hiergen";
  if (eo.threads > 0) model->setComputeThreads(eo.threads);
  const int computeThreads = model->computeThreads();
  if (json) {
    std::printf("{\"model\": \"%s\", \"family\": \"%s\", \"mode\": \"%s\", \"requests\": [", jsonEscape(modelPath).c_str(),
                mf.familyName.c_str(), mf.family == PHOTON_FAMILY_VANILLA ? "vanilla" : modeName);
    for (size_t i = 0; i < reqs.size(); ++i) {
      std::printf("%s\n  {\"prompt\": \"%s\", \"prompt_tokens\": %zu, \"text\": \"%s\", \"finish\": \"%s\", \"tokens\": [",
                  i ? "," : "", jsonEscape(reqs[i].prompt).c_str(), reqs[i].promptTokens,
                  jsonEscape(reqs[i].text).c_str(), finishName(reqs[i].finish));
      for (size_t k = 0; k < reqs[i].tokens.size(); ++k) std::printf("%s%d", k ? ", " : "", reqs[i].tokens[k]);
      std::printf("]}");
    }
    std::printf("],\n \"stats\": {\"prefill_tokens\": %" PRIu64 ", \"prefill_seconds\": %.6f, \"prefill_tokens_per_s\": %.2f, "
                "\"decode_tokens\": %" PRIu64 ", \"decode_seconds\": %.6f, \"decode_tokens_per_s\": %.2f, "
                "\"peak_batch\": %d, \"compute_threads\": %d, \"cache_peak_bytes\": {",
                es.prefillTokens, es.prefillSeconds, prefillTps, es.decodeTokens, es.decodeSeconds, decodeTps, es.peakBatch,
                computeThreads);
    for (size_t li = 0; li < cm.levelCount(); ++li)
      std::printf("%s\"%d\": %" PRIu64, li ? ", " : "", cm.spec(li).level, cm.peakBytes(li));
    std::printf("}, \"cache_peak_total_bytes\": %" PRIu64 ", \"weights_bytes\": %zu, \"total_memory_bytes\": %" PRIu64
                ", \"peak_rss_bytes\": %" PRIu64 ", \"tpm_tokens_per_s_per_gib\": %.2f, \"budget_bytes\": %" PRIu64 ", \"cancelled\": %s}}\n",
                peakCache, model->weightsSize(), total, rss, tpm, cm.budget(), cancelled ? "true" : "false");
  } else {
    if (!stream)
      for (size_t i = 0; i < reqs.size(); ++i) {
        if (!quiet) std::printf("[%zu] ", i + 1);
        std::printf("%s%s\n", reqs[i].prompt.c_str(), reqs[i].text.c_str());
      }
    if (!quiet) {
      std::fprintf(stderr, "\n--- photon-run: %s, %s%s\n", mf.familyName.c_str(),
                   mf.family == PHOTON_FAMILY_VANILLA ? "autoregressive" : modeName,
                   cancelled ? " (interrupted)" : "");
      std::fprintf(stderr, "prefill: %" PRIu64 " tokens in %.3f s = %.1f tokens/s\n", es.prefillTokens,
                   es.prefillSeconds, prefillTps);
      std::fprintf(stderr, "decode:  %" PRIu64 " tokens in %.3f s = %.1f tokens/s (peak batch %d, %d compute thread%s)\n",
                   es.decodeTokens, es.decodeSeconds, decodeTps, es.peakBatch, computeThreads,
                   computeThreads == 1 ? "" : "s");
      for (size_t li = 0; li < cm.levelCount(); ++li)
        std::fprintf(stderr, "cache level %d: peak %s (%" PRIu64 " bytes)\n", cm.spec(li).level,
                     formatBytes(static_cast<double>(cm.peakBytes(li))).c_str(), cm.peakBytes(li));
      std::fprintf(stderr, "memory: weights %s + peak cache %s = %s (process peak RSS %s)\n",
                   formatBytes(static_cast<double>(model->weightsSize())).c_str(),
                   formatBytes(static_cast<double>(peakCache)).c_str(),
                   formatBytes(static_cast<double>(total)).c_str(), formatBytes(static_cast<double>(rss)).c_str());
      if (peakCache > 0) std::fprintf(stderr, "TPM: %.1f tokens/s per GiB of KV cache\n", tpm);
      else std::fprintf(stderr, "TPM: n/a (no KV cache used)\n");
    }
  }
  return cancelled ? 130 : 0;
}
