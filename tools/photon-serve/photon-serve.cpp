// photon-serve: an OpenAI-compatible HTTP server over one engine (docs/runtime.md, "The
// server"). A client of the public API only (photon/photon.hpp over libphoton.so).
//
// Threads: cpp-httplib's worker threads parse requests, tokenize, submit to the engine and
// wait for (or stream) the answer; one scheduler thread waits for work and steps the engine,
// and its callback hands tokens to the waiting request; one thread waits for SIGTERM/SIGINT.
//
// This file: the server's state, the engine's scheduler, the handlers and main; the request
// parsing and validation are in request.cpp, the answers' text and finish reasons in
// answer.cpp, the socket handling around cpp-httplib in connections.cpp.
#include "answer.h"
#include "connections.h"
#include "request.h"
#include "photon/photon.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <pthread.h>
#include <random>
#include <string>
#include <thread>
#include <vector>

using photon_serve::badRequest;
using photon_serve::dumpJson;
using photon_serve::errorJson;
using photon_serve::finishReason;
using photon_serve::GenRequest;
using photon_serve::HttpError;
using photon_serve::json;
using photon_serve::photonFinish;
using photon_serve::TextState;
using photon_serve::usageJson;

namespace {

const char *kUsage = R"(usage: photon-serve MODEL.photon [options]

An OpenAI-compatible HTTP server over a compiled photon artifact.

Endpoints:
  POST /v1/completions        prompt -> text (streaming with "stream": true: server-sent events)
  POST /v1/chat/completions   messages -> text through the plain chat template below
  GET  /v1/models             the one model served
  GET  /health                200 {"status":"ok"}, 503 while shutting down
  GET  /metrics               Prometheus text: queue length, running sequences, cache bytes
                              per level, tokens, tokens/s, requests by outcome

Request fields: prompt (a string, one-string list, or token ids) / messages, max_tokens,
temperature, top_p, seed, stop (a string or up to 4), n (up to 8 samples), stream,
stream_options.include_usage; photon extensions: top_k, repetition_penalty, ignore_eos.
Other fields are ignored. Errors come in OpenAI's shape {"error": {"message", "type",
"param", "code"}}: 400 bad input, 404 unknown route, 413 body too large, 429 over capacity,
503 shutting down, 500 engine failure.

Chat template (for a base model): each message becomes "<role>: <content>\n" and the prompt
ends with "assistant:"; generation also stops at "\nuser:".

Options:
  --host ADDR               address to listen on (default 127.0.0.1: this machine only)
  --port N                  port (default 8000; 0 = any free port, printed at start)
  --port-file PATH          write the port the server listens on to PATH once it listens
  --model-name NAME         the model id clients use (default: the artifact's directory name)
  --mode hiergen|recgen     generation mode (default hiergen)
  --memory-budget SIZE      KV cache budget, e.g. 512M, 2G (default 1/4 of RAM)
  --cache-policy grow|reserve
                            grow (default; reserve for RecGen): a request takes cache as it
                            grows, the newest sequence is preempted and resumed when the
                            budget runs out; reserve: worst case taken at admission
  --max-batch N             sequences decoded together (default 64)
  --context-limit N         max prompt + generated tokens per sequence (default: none)
  --threads N               compute threads of an --openmp artifact (default: OpenMP's)
  --eos-id N                end-of-sequence token (default: the tokenizer's; -2: none)
  --prefill-chunk N         prompt tokens prefilled per engine step over all new requests
                            (default 512; 0 = whole prompts): a long prompt is prefilled
                            over several steps while running requests keep decoding
  --http-threads N          HTTP worker threads (default 128; one per open request)
  --max-queue N             requests (samples) in flight at once before 429 (default 256)
  --max-body SIZE           largest request body (default 1M)
  --max-tokens-limit N      largest max_tokens a request may ask (default 4096)
  --default-max-tokens N    max_tokens when a request gives none (default 16, as OpenAI)
  --idle-timeout S          how long a connection may stay open without a request, before its
                            first one or between keep-alive requests (default 10)
  --backlog N               connections the kernel queues before they are accepted
                            (default 1024, capped by net.core.somaxconn)
  --drain-seconds S         on SIGTERM, let running requests finish for up to S seconds, then
                            cancel the rest (default 10)
  --quiet                   no access log on stderr
  --help                    this text
)";

[[noreturn]] void die(const std::string &msg, int code = 1) {
  std::fprintf(stderr, "photon-serve: error: %s\n", msg.c_str());
  std::exit(code);
}

double nowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
int64_t unixTime() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// --------------------------------------------------------------------------- state

// One sample (one engine request) of an HTTP request.
struct Sample {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<int32_t> tokens;
  photon_finish finish = PHOTON_FINISH_NONE;
  std::string error; // the engine failed
};

struct Metrics {
  std::atomic<uint64_t> requests{0}, ok{0}, errors4xx{0}, errors5xx{0}, cancelled{0};
  std::atomic<uint64_t> promptTokens{0}, completionTokens{0};
  std::atomic<int64_t> inflightSamples{0};
  // Generated tokens per second over a sliding window, computed from the engine's counter.
  std::mutex rateMu;
  std::vector<std::pair<double, uint64_t>> window;
};

struct Server {
  photon::Model *model = nullptr;
  photon::Engine *engine = nullptr;
  photon_model_info info{};
  std::string modelName;
  int maxQueue = 256, maxTokensLimit = 4096, defaultMaxTokens = 16;
  bool quiet = false;
  std::atomic<bool> shuttingDown{false};
  std::atomic<bool> stopScheduler{false};
  std::atomic<bool> listenReturned{false};
  std::mutex mapMu; // held across submit + insert so the callback always finds the sample
  std::map<photon_request_id, std::shared_ptr<Sample>> samples;
  Metrics metrics;
  std::string tokenBytes(int32_t id) const { return model->tokenBytes(id); }
};

Server g;

// --------------------------------------------------------------------------- errors

void sendError(httplib::Response &res, const HttpError &e) {
  res.status = e.status;
  res.set_content(dumpJson(errorJson(e)), "application/json");
  if (e.status >= 500) ++g.metrics.errors5xx;
  else ++g.metrics.errors4xx;
}

// --------------------------------------------------------------------------- engine

// Submits the samples of a request; on failure cancels what was submitted.
std::vector<std::pair<photon_request_id, std::shared_ptr<Sample>>> submitAll(GenRequest &r) {
  if (g.shuttingDown.load())
    throw HttpError{503, "the server is shutting down", "server_error", "", "shutting_down"};
  std::vector<std::pair<photon_request_id, std::shared_ptr<Sample>>> out;
  std::lock_guard<std::mutex> lock(g.mapMu); // the count below changes only under this lock
  if (g.metrics.inflightSamples.load() + r.n > g.maxQueue)
    throw HttpError{429,
                    "over capacity: " + std::to_string(g.metrics.inflightSamples.load()) +
                        " samples in flight, the limit is " + std::to_string(g.maxQueue) +
                        " (--max-queue); retry later",
                    "rate_limit_error", "", "over_capacity"};
  // n samples: one engine call, one prefill (the other samples start from a copy of it).
  photon::Sampling s = r.sampling;
  s.seed(r.seed);
  std::vector<photon_request_id> ids(static_cast<size_t>(r.n));
  photon_status st = photon_engine_submit_n(g.engine->get(), r.prompt.data(), r.prompt.size(),
                                            s.get(), r.n, ids.data());
  if (st != PHOTON_OK) {
    std::string msg = photon_last_error();
    if (st == PHOTON_ERR_OUT_OF_BUDGET)
      throw HttpError{400, "the request does not fit this server: " + msg, "invalid_request_error",
                      "max_tokens", "context_length_exceeded"};
    if (st == PHOTON_ERR_INVALID_ARGUMENT) throw badRequest(msg);
    throw HttpError{500, msg, "server_error", "", ""};
  }
  for (photon_request_id id : ids) {
    auto sample = std::make_shared<Sample>();
    g.samples[id] = sample;
    ++g.metrics.inflightSamples;
    out.emplace_back(id, sample);
  }
  g.metrics.promptTokens += r.prompt.size() * static_cast<size_t>(r.n);
  return out;
}

void forget(photon_request_id id) {
  std::lock_guard<std::mutex> lock(g.mapMu);
  if (g.samples.erase(id)) --g.metrics.inflightSamples;
}

bool onTokens(photon_request_id id, const std::vector<int32_t> &toks, photon_finish f) {
  std::shared_ptr<Sample> s;
  {
    std::lock_guard<std::mutex> lock(g.mapMu);
    auto it = g.samples.find(id);
    if (it == g.samples.end()) return true; // its client went away
    s = it->second;
  }
  {
    std::lock_guard<std::mutex> lock(s->mu);
    s->tokens.insert(s->tokens.end(), toks.begin(), toks.end());
    s->finish = f;
  }
  g.metrics.completionTokens += toks.size();
  s->cv.notify_all();
  return true;
}

void failAll(const std::string &msg) {
  std::lock_guard<std::mutex> lock(g.mapMu);
  for (auto &kv : g.samples) {
    std::lock_guard<std::mutex> l(kv.second->mu);
    kv.second->error = msg;
    kv.second->finish = PHOTON_FINISH_CANCELLED;
    kv.second->cv.notify_all();
  }
}

void schedulerLoop() {
  while (!g.stopScheduler.load()) {
    try {
      if (!g.engine->wait(100)) continue;
      g.engine->step(onTokens);
    } catch (const photon::Error &e) {
      if (e.status() == PHOTON_ERR_CANCELLED) continue; // reported through the callback
      std::fprintf(stderr, "photon-serve: engine error: %s\n", e.what());
      failAll(std::string("engine error: ") + e.what());
    } catch (const std::exception &e) {
      std::fprintf(stderr, "photon-serve: engine error: %s\n", e.what());
      failAll(std::string("engine error: ") + e.what());
    }
  }
}

// --------------------------------------------------------------------------- answers

std::string newId(const char *prefix) {
  static std::atomic<uint64_t> n{0};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s-%llx%06llx", prefix, static_cast<unsigned long long>(unixTime()),
                static_cast<unsigned long long>(n.fetch_add(1)));
  return buf;
}

void handleGenerate(const httplib::Request &req, httplib::Response &res, bool chat) {
  ++g.metrics.requests;
  GenRequest r;
  std::vector<std::pair<photon_request_id, std::shared_ptr<Sample>>> subs;
  try {
    r = photon_serve::parseRequest(
        req.body, chat, {*g.model, g.info, g.modelName, g.defaultMaxTokens, g.maxTokensLimit});
    subs = submitAll(r);
  } catch (const HttpError &e) {
    sendError(res, e);
    return;
  }
  const std::string id = newId(chat ? "chatcmpl" : "cmpl");
  const int64_t created = unixTime();
  const size_t promptTokens = r.prompt.size();

  if (!r.stream) {
    json choices = json::array();
    size_t completion = 0;
    for (size_t i = 0; i < subs.size(); ++i) {
      Sample &s = *subs[i].second;
      std::unique_lock<std::mutex> lock(s.mu);
      s.cv.wait(lock, [&] { return s.finish != PHOTON_FINISH_NONE; });
      if (!s.error.empty()) {
        lock.unlock();
        for (auto &p : subs) forget(p.first);
        sendError(res, {500, s.error, "server_error", "", ""});
        return;
      }
      TextState t;
      t.add(*g.model, s.tokens);
      t.finish(s.finish, r.stop);
      completion += s.tokens.size();
      json c = {{"index", i},
                {"finish_reason", finishReason(s.finish)},
                {"photon_finish", photonFinish(s.finish)}};
      if (chat) c["message"] = {{"role", "assistant"}, {"content", t.take(true, r.stop)}};
      else {
        c["text"] = t.take(true, r.stop);
        c["logprobs"] = nullptr;
      }
      choices.push_back(c);
    }
    for (auto &p : subs) forget(p.first);
    json out = {{"id", id},
                {"object", chat ? "chat.completion" : "text_completion"},
                {"created", created},
                {"model", g.modelName},
                {"choices", choices},
                {"usage", usageJson(promptTokens, completion)}};
    res.set_content(dumpJson(out), "application/json");
    ++g.metrics.ok;
    return;
  }

  // Streaming: one event per piece of new text, then one with the finish reason, the usage
  // (if asked), and [DONE]. A client that goes away cancels its samples.
  struct Stream {
    GenRequest r;
    std::vector<std::pair<photon_request_id, std::shared_ptr<Sample>>> subs;
    std::vector<TextState> text;
    std::vector<bool> done, roleSent;
    bool finished = false;
    std::string id;
    int64_t created;
    size_t promptTokens;
  };
  auto st = std::make_shared<Stream>();
  st->r = std::move(r);
  st->subs = std::move(subs);
  st->text.resize(st->subs.size());
  st->done.assign(st->subs.size(), false);
  st->roleSent.assign(st->subs.size(), false);
  st->id = id;
  st->created = created;
  st->promptTokens = promptTokens;
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [st, chat](size_t, httplib::DataSink &sink) -> bool {
        auto event = [&](const json &choice) {
          json j = {{"id", st->id},
                    {"object", chat ? "chat.completion.chunk" : "text_completion"},
                    {"created", st->created},
                    {"model", g.modelName},
                    {"choices", json::array({choice})}};
          std::string line = "data: " + dumpJson(j) + "\n\n";
          return sink.write(line.data(), line.size());
        };
        // Wait (bounded, so a gone client is noticed) for news on any unfinished sample.
        bool progressed = false;
        for (size_t i = 0; i < st->subs.size(); ++i) {
          if (st->done[i]) continue;
          Sample &s = *st->subs[i].second;
          std::vector<int32_t> toks;
          photon_finish f;
          std::string err;
          {
            std::unique_lock<std::mutex> lock(s.mu);
            s.cv.wait_for(lock, std::chrono::milliseconds(progressed ? 0 : 50), [&] {
              return s.finish != PHOTON_FINISH_NONE || s.tokens.size() > st->text[i].tokensSeen;
            });
            toks = s.tokens;
            f = s.finish;
            err = s.error;
          }
          if (!err.empty()) {
            std::string line = "data: " + dumpJson(json{{"error", {{"message", err}, {"type", "server_error"}}}}) + "\n\n";
            sink.write(line.data(), line.size());
            sink.done();
            return true;
          }
          TextState &t = st->text[i];
          if (toks.size() > t.tokensSeen) progressed = true;
          t.add(*g.model, toks);
          if (f != PHOTON_FINISH_NONE) t.finish(f, st->r.stop);
          std::string piece = t.take(f != PHOTON_FINISH_NONE, st->r.stop);
          if (chat && !st->roleSent[i]) {
            st->roleSent[i] = true;
            if (!event({{"index", i}, {"delta", {{"role", "assistant"}, {"content", ""}}}, {"finish_reason", nullptr}}))
              return false;
          }
          if (!piece.empty()) {
            json c = {{"index", i}, {"finish_reason", nullptr}};
            if (chat) c["delta"] = {{"content", piece}};
            else { c["text"] = piece; c["logprobs"] = nullptr; }
            if (!event(c)) return false;
          }
          if (f != PHOTON_FINISH_NONE) {
            st->done[i] = true;
            progressed = true;
            json c = {{"index", i}, {"finish_reason", finishReason(f)}, {"photon_finish", photonFinish(f)}};
            if (chat) c["delta"] = json::object();
            else { c["text"] = ""; c["logprobs"] = nullptr; }
            if (!event(c)) return false;
          }
        }
        if (std::all_of(st->done.begin(), st->done.end(), [](bool b) { return b; })) {
          if (st->r.includeUsage) {
            size_t completion = 0;
            for (auto &t : st->text) completion += t.tokensSeen;
            json j = {{"id", st->id},
                      {"object", chat ? "chat.completion.chunk" : "text_completion"},
                      {"created", st->created},
                      {"model", g.modelName},
                      {"choices", json::array()},
                      {"usage", usageJson(st->promptTokens, completion)}};
            std::string line = "data: " + dumpJson(j) + "\n\n";
            if (!sink.write(line.data(), line.size())) return false;
          }
          static const std::string doneLine = "data: [DONE]\n\n";
          sink.write(doneLine.data(), doneLine.size());
          st->finished = true;
          sink.done();
        }
        return sink.is_writable();
      },
      [st](bool success) {
        // Runs once the response ends: a client that left early cancels its samples.
        for (size_t i = 0; i < st->subs.size(); ++i) {
          if (!st->done[i]) {
            photon_engine_cancel_request(g.engine->get(), st->subs[i].first);
            ++g.metrics.cancelled;
          }
          forget(st->subs[i].first);
        }
        if (success && st->finished) ++g.metrics.ok;
      });
}

// --------------------------------------------------------------------------- metrics

std::string metricsText() {
  photon_engine_stats s;
  s.struct_size = sizeof s;
  photon_engine_get_stats(g.engine->get(), &s);
  double rate = 0;
  {
    std::lock_guard<std::mutex> lock(g.metrics.rateMu);
    double t = nowSeconds();
    auto &w = g.metrics.window;
    w.emplace_back(t, s.decode_tokens);
    while (w.size() > 2 && w.front().first < t - 10) w.erase(w.begin());
    if (w.size() >= 2 && w.back().first > w.front().first)
      rate = static_cast<double>(w.back().second - w.front().second) /
             (w.back().first - w.front().first);
  }
  std::string o;
  auto add = [&](const char *name, const char *type, const char *help, const std::string &value,
                 const std::string &labels = "") {
    o += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    o += std::string(name) + labels + " " + value + "\n";
  };
  add("photon_queue_length", "gauge", "Requests submitted and not yet admitted.", std::to_string(s.queued));
  add("photon_active_sequences", "gauge", "Sequences generating.", std::to_string(s.running));
  add("photon_samples_in_flight", "gauge", "Samples the HTTP side waits for.",
      std::to_string(g.metrics.inflightSamples.load()));
  add("photon_cache_budget_bytes", "gauge", "KV cache budget in bytes.", std::to_string(s.budget_bytes));
  add("photon_cache_reserved_bytes", "gauge", "KV cache bytes reserved.", std::to_string(s.cache_bytes_reserved));
  o += "# HELP photon_cache_bytes_in_use KV cache bytes in blocks, per level.\n# TYPE photon_cache_bytes_in_use gauge\n";
  for (int i = 0; i < s.cache_levels; ++i)
    o += "photon_cache_bytes_in_use{level=\"" + std::to_string(s.cache_level_id[i]) + "\"} " +
         std::to_string(s.cache_bytes_in_use_level[i]) + "\n";
  add("photon_generated_tokens_total", "counter", "Tokens generated.", std::to_string(s.decode_tokens));
  add("photon_prefill_tokens_total", "counter", "Tokens prefilled.", std::to_string(s.prefill_tokens));
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", rate);
  add("photon_generated_tokens_per_second", "gauge", "Generated tokens per second over the last 10 s of scrapes.", buf);
  add("photon_preemptions_total", "counter", "Sequences preempted for lack of cache.", std::to_string(s.preemptions));
  add("photon_engine_requests_finished_total", "counter", "Engine requests finished.", std::to_string(s.requests_finished));
  add("photon_engine_requests_cancelled_total", "counter", "Engine requests cancelled.", std::to_string(s.requests_cancelled));
  o += "# HELP photon_http_requests_total Generation requests by outcome.\n# TYPE photon_http_requests_total counter\n";
  o += "photon_http_requests_total{outcome=\"ok\"} " + std::to_string(g.metrics.ok.load()) + "\n";
  o += "photon_http_requests_total{outcome=\"client_error\"} " + std::to_string(g.metrics.errors4xx.load()) + "\n";
  o += "photon_http_requests_total{outcome=\"server_error\"} " + std::to_string(g.metrics.errors5xx.load()) + "\n";
  o += "photon_http_requests_total{outcome=\"cancelled\"} " + std::to_string(g.metrics.cancelled.load()) + "\n";
  add("photon_shutting_down", "gauge", "1 while draining after SIGTERM.", g.shuttingDown.load() ? "1" : "0");
  return o;
}

} // namespace

int main(int argc, char **argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string modelPath, host = "127.0.0.1", portFile, modelName, mode = "hiergen", policy;
  int port = 8000, maxBatch = 64, threads = 0, httpThreads = 128, eosId = -1;
  int64_t contextLimit = 0, prefillChunk = 512;
  uint64_t budget = 0, maxBody = 1 << 20;
  double drainSeconds = 10;
  int idleTimeout = 10, backlog = 1024;
  auto value = [&](size_t &i, const char *name) -> std::string {
    if (i + 1 >= args.size()) die(std::string(name) + " needs a value (see --help)", 2);
    return args[++i];
  };
  auto toInt = [&](const std::string &v, const char *name, long long lo, long long hi) {
    char *end = nullptr;
    long long x = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end || x < lo || x > hi)
      die(std::string(name) + " takes an integer in [" + std::to_string(lo) + ", " +
              std::to_string(hi) + "], got '" + v + "'",
          2);
    return x;
  };
  auto toSize = [&](const std::string &v, const char *name) {
    uint64_t b = 0;
    if (!photon_parse_byte_size(v.c_str(), &b) || b == 0)
      die(std::string(name) + " takes a size such as 512M or 2G, got '" + v + "'", 2);
    return b;
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string &a = args[i];
    if (a == "--help" || a == "-h") { std::fputs(kUsage, stdout); return 0; }
    else if (a == "--host") host = value(i, "--host");
    else if (a == "--port") port = static_cast<int>(toInt(value(i, "--port"), "--port", 0, 65535));
    else if (a == "--port-file") portFile = value(i, "--port-file");
    else if (a == "--model-name") modelName = value(i, "--model-name");
    else if (a == "--mode") mode = value(i, "--mode");
    else if (a == "--memory-budget") budget = toSize(value(i, "--memory-budget"), "--memory-budget");
    else if (a == "--cache-policy") policy = value(i, "--cache-policy");
    else if (a == "--max-batch") maxBatch = static_cast<int>(toInt(value(i, "--max-batch"), "--max-batch", 1, 4096));
    else if (a == "--context-limit") contextLimit = toInt(value(i, "--context-limit"), "--context-limit", 0, 1ll << 40);
    else if (a == "--threads") threads = static_cast<int>(toInt(value(i, "--threads"), "--threads", 0, 1024));
    else if (a == "--prefill-chunk") prefillChunk = toInt(value(i, "--prefill-chunk"), "--prefill-chunk", 0, 1ll << 30);
    else if (a == "--eos-id") eosId = static_cast<int>(toInt(value(i, "--eos-id"), "--eos-id", -2, 1 << 30));
    else if (a == "--http-threads") httpThreads = static_cast<int>(toInt(value(i, "--http-threads"), "--http-threads", 1, 4096));
    else if (a == "--max-queue") g.maxQueue = static_cast<int>(toInt(value(i, "--max-queue"), "--max-queue", 1, 1 << 20));
    else if (a == "--max-body") maxBody = toSize(value(i, "--max-body"), "--max-body");
    else if (a == "--max-tokens-limit") g.maxTokensLimit = static_cast<int>(toInt(value(i, "--max-tokens-limit"), "--max-tokens-limit", 1, 1 << 24));
    else if (a == "--default-max-tokens") g.defaultMaxTokens = static_cast<int>(toInt(value(i, "--default-max-tokens"), "--default-max-tokens", 1, 1 << 24));
    else if (a == "--drain-seconds") drainSeconds = static_cast<double>(toInt(value(i, "--drain-seconds"), "--drain-seconds", 0, 86400));
    else if (a == "--idle-timeout") idleTimeout = static_cast<int>(toInt(value(i, "--idle-timeout"), "--idle-timeout", 1, 3600));
    else if (a == "--backlog") backlog = static_cast<int>(toInt(value(i, "--backlog"), "--backlog", 1, 1 << 20));
    else if (a == "--quiet") g.quiet = true;
    else if (!a.empty() && a[0] == '-') die("unknown option '" + a + "' (see --help)", 2);
    else if (modelPath.empty()) modelPath = a;
    else die("more than one model given ('" + modelPath + "' and '" + a + "')", 2);
  }
  if (modelPath.empty()) die("no model given\n" + std::string(kUsage), 2);
  if (mode != "hiergen" && mode != "recgen") die("--mode takes hiergen or recgen, got '" + mode + "'", 2);
  if (policy.empty()) policy = mode == "recgen" ? "reserve" : "grow";
  if (policy != "grow" && policy != "reserve") die("--cache-policy takes grow or reserve, got '" + policy + "'", 2);
  if (g.defaultMaxTokens > g.maxTokensLimit) g.defaultMaxTokens = g.maxTokensLimit;

  // SIGTERM / SIGINT are taken by one thread with sigwait: block them before any thread starts.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  std::unique_ptr<photon::Model> model;
  std::unique_ptr<photon::Engine> engine;
  try {
    model = std::make_unique<photon::Model>(modelPath);
    g.info = model->info();
    if (g.info.family == PHOTON_FAMILY_FORWARD)
      die("'" + modelPath + "' is a forward-only artifact; it cannot generate, so it cannot be served");
    photon::EngineOptions eo;
    eo.mode(mode == "recgen" ? PHOTON_MODE_RECGEN : PHOTON_MODE_HIERGEN)
        .memoryBudget(budget)
        .maxBatch(maxBatch)
        .contextLimit(contextLimit)
        .threads(threads)
        .cachePolicy(policy == "grow" ? PHOTON_CACHE_GROW : PHOTON_CACHE_RESERVE)
        .eosId(eosId)
        .prefillChunk(prefillChunk);
    engine = std::make_unique<photon::Engine>(*model, eo);
  } catch (const photon::Error &e) {
    die(std::string(photon_status_string(e.status())) + ": " + e.what());
  }
  g.model = model.get();
  g.engine = engine.get();
  if (modelName.empty()) {
    std::string p = modelPath;
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    size_t slash = p.find_last_of('/');
    modelName = slash == std::string::npos ? p : p.substr(slash + 1);
  }
  g.modelName = modelName;

  httplib::Server svr;
  svr.new_task_queue = [httpThreads] { return new httplib::ThreadPool(static_cast<size_t>(httpThreads)); };
  svr.set_payload_max_length(maxBody);
  svr.set_read_timeout(30, 0);
  svr.set_write_timeout(30, 0);
  // httplib waits for a new connection's first request only as long as the keep-alive timeout:
  // a client that connects and is slow to send (a loaded machine, a client starved of CPU) must
  // not be dropped, so this is the idle timeout, not the 1 s it once was. Idle connections do
  // not hold up a shutdown: the signal thread wakes them (shutdownIdleConnections).
  svr.set_keep_alive_timeout(idleTimeout);
  svr.set_socket_options(photon_serve::listeningSocketOptions);
  svr.Post("/v1/completions", [&](const httplib::Request &req, httplib::Response &res) {
    handleGenerate(req, res, false); // the body is read as JSON whatever its Content-Type
  });
  svr.Post("/v1/chat/completions", [&](const httplib::Request &req, httplib::Response &res) {
    handleGenerate(req, res, true);
  });
  svr.Get("/v1/models", [&](const httplib::Request &, httplib::Response &res) {
    json m = {{"id", g.modelName},
              {"object", "model"},
              {"created", 0},
              {"owned_by", "photon"},
              {"photon", {{"family", g.info.family_name ? g.info.family_name : ""},
                          {"vocab", g.info.vocab},
                          {"max_context", g.info.max_context},
                          {"tokens_per_step", g.info.tokens_per_step}}}};
    res.set_content(dumpJson(json{{"object", "list"}, {"data", json::array({m})}}), "application/json");
  });
  svr.Get("/health", [&](const httplib::Request &, httplib::Response &res) {
    if (g.shuttingDown.load()) {
      res.status = 503;
      res.set_content("{\"status\":\"shutting down\"}", "application/json");
    } else {
      res.set_content("{\"status\":\"ok\"}", "application/json");
    }
  });
  svr.Get("/metrics", [&](const httplib::Request &, httplib::Response &res) {
    res.set_content(metricsText(), "text/plain; version=0.0.4");
  });
  svr.set_error_handler([](const httplib::Request &req, httplib::Response &res) {
    if (!res.body.empty()) return;
    if (res.status == 404)
      sendError(res, {404, "no route " + req.method + " " + req.path, "invalid_request_error", "", "not_found"});
    else if (res.status == 413)
      sendError(res, {413, "the request body is larger than --max-body", "invalid_request_error", "", "body_too_large"});
    else if (res.status == 405)
      sendError(res, {405, "method " + req.method + " is not allowed on " + req.path, "invalid_request_error", "", ""});
    else if (res.status >= 400)
      sendError(res, {res.status, "HTTP error " + std::to_string(res.status), res.status >= 500 ? "server_error" : "invalid_request_error", "", ""});
  });
  svr.set_exception_handler([](const httplib::Request &, httplib::Response &res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception &e) {
      what = e.what();
    } catch (...) {
    }
    sendError(res, {500, what, "server_error", "", ""});
  });
  if (!g.quiet)
    svr.set_logger([](const httplib::Request &req, const httplib::Response &res) {
      std::fprintf(stderr, "photon-serve: %s %s -> %d\n", req.method.c_str(), req.path.c_str(), res.status);
    });

  int bound = port;
  if (port == 0) bound = svr.bind_to_any_port(host);
  else if (!svr.bind_to_port(host, port)) bound = -1;
  if (bound <= 0)
    die("cannot listen on " + host + ":" + std::to_string(port) + " (in use, or not an address of this machine)");
  // httplib listens with a backlog of 5: a burst of new connections beyond it has its SYNs
  // dropped and retried after 1, 3, 7 ... s. Re-arm listen() with a deeper queue.
  if (!photon_serve::raiseBacklog(backlog))
    std::fprintf(stderr, "photon-serve: warning: could not raise the listen backlog to %d: %s\n", backlog,
                 std::strerror(errno));

  std::thread scheduler(schedulerLoop);
  std::thread signals([&] {
    int sig = 0;
    sigwait(&sigs, &sig);
    std::fprintf(stderr, "photon-serve: %s: no new requests; draining for up to %.0f s\n",
                 sig == SIGTERM ? "SIGTERM" : "SIGINT", drainSeconds);
    g.shuttingDown.store(true);
    double until = nowSeconds() + drainSeconds;
    while (nowSeconds() < until) {
      {
        std::lock_guard<std::mutex> lock(g.mapMu);
        if (g.samples.empty()) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    {
      std::lock_guard<std::mutex> lock(g.mapMu);
      if (!g.samples.empty())
        std::fprintf(stderr, "photon-serve: cancelling %zu unfinished sample(s)\n", g.samples.size());
      for (auto &kv : g.samples) photon_engine_cancel_request(g.engine->get(), kv.first);
    }
    // Let the cancellations reach their clients, then stop listening.
    for (int i = 0; i < 100; ++i) {
      {
        std::lock_guard<std::mutex> lock(g.mapMu);
        if (g.samples.empty()) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    // Wake the workers still waiting on idle keep-alive connections (httplib joins them before
    // listen returns), until listen has returned.
    photon_serve::shutdownIdleConnections(bound);
    svr.stop();
    while (!g.listenReturned.load()) {
      photon_serve::shutdownIdleConnections(bound);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  photon_engine_stats s0;
  s0.struct_size = sizeof s0;
  photon_engine_get_stats(engine->get(), &s0);
  char budgetText[32];
  photon_format_bytes(static_cast<double>(s0.budget_bytes), budgetText, sizeof budgetText);
  std::fprintf(stderr,
               "photon-serve: serving '%s' (%s, %s, cache policy %s, budget %s) on http://%s:%d\n",
               g.modelName.c_str(), g.info.family_name ? g.info.family_name : "?", mode.c_str(),
               policy.c_str(), budgetText, host.c_str(), bound);
  if (!portFile.empty()) {
    std::string tmp = portFile + ".tmp";
    std::ofstream f(tmp);
    f << bound << "\n";
    f.close();
    if (!f || std::rename(tmp.c_str(), portFile.c_str()) != 0)
      die("cannot write --port-file '" + portFile + "'");
  }
  bool listened = svr.listen_after_bind();
  g.listenReturned.store(true);
  g.stopScheduler.store(true);
  engine->wake();
  scheduler.join();
  if (!g.shuttingDown.load()) {
    // listen failed on its own: unblock the signal thread and report.
    pthread_kill(signals.native_handle(), SIGTERM);
  }
  signals.join();
  photon_engine_stats s;
  s.struct_size = sizeof s;
  photon_engine_get_stats(engine->get(), &s);
  std::fprintf(stderr, "photon-serve: stopped: %llu requests answered, %llu tokens generated\n",
               static_cast<unsigned long long>(g.metrics.ok.load()),
               static_cast<unsigned long long>(s.decode_tokens));
  return listened || g.shuttingDown.load() ? 0 : 1;
}
