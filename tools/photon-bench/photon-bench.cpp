// photon-bench: the paper's PF/DE protocol on compiled photon artifacts, with the machine's
// measured limits. See docs/benchmarks.md for the protocol and every field of the JSON.
//
// Each measurement runs in a forked child (the model is loaded once in the parent and the
// mmapped weights are shared): the child's peak RSS is then the peak of that run alone, and a
// crash or hang of one run cannot take the others down.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "machine.h"
#include "benchjson.h"
#include "sgemm_ref.h"
#include "photon/photon.h"

using namespace bench;

namespace {

const char *kUsage = R"(usage: photon-bench --suite paper|sweep|roofline|quick --model DIR.photon [--model ...]
                    [--json OUT] [options]

Measures compiled photon artifacts with the paper's protocol: PF (2,048 prompt / 128
generated tokens) and DE (128 / 2,048) for every model and mode (vanilla, Block, PHOTON
HierGen, PHOTON RecGen). Per-sample memory is the slope of the peak memory against the batch
size; the batch is then tuned to fill the memory budget; throughput, prefill and decode
tokens/s and TPM (tokens/s per GiB of per-sample memory) are medians over repeats with their
spread. The machine's limits are measured in the same process (read bandwidth with 1 and 2
threads, peak FP32 FLOP/s of an AVX2 FMA loop) and give each run's roofline. Every run records
the CPU time other processes used meanwhile (/proc/stat) and is flagged noisy above a
threshold.

suites
  paper     PF and DE, memory slope over --slope-batches, tuned batch, repeats (default 3)
  sweep     context 512 .. 32768: prefill of the context then 128 decoded tokens, batch 1
  roofline  machine limits (longer), batch-1 decode of every mode at context 2,048
  quick     smoke test (< 1 minute on the small test fixtures): scaled-down PF/DE, 1 repeat

options
  --model DIR          a compiled artifact (*.photon); repeat for several models
  --models-dir DIR     every *.photon directory inside DIR
  --json OUT           write the results (default: stdout summary only)
  --budget-gib X       memory budget the batch is tuned to (default paper 2, quick 0.25)
  --max-batch N        cap of the tuned batch (default paper 16, quick 4)
  --slope-batches L    batch sizes of the memory slope, e.g. 1,2,4 (default paper 1,2,4)
  --repeats N          repeats at the tuned batch (default paper 3, quick 1)
  --settings L         subset of PF,DE (paper/quick)
  --lengths L          override prompt/generated lengths, e.g. PF=512/32,DE=32/512 (the
                       results are then not the paper's protocol; the JSON records them)
  --contexts L         sweep contexts (default 512,1024,2048,4096,8192,16384,32768)
  --run-timeout S      kill a run after S seconds and record it as timed out (default 900)
  --sweep-cap S        stop a model's sweep once a run took longer than S seconds (default 60)
  --noise-threshold C  flag a run noisy when other processes used more than C cores on
                       average meanwhile (default 0.25)
  --bw-bytes N         buffer size of the bandwidth test (default 512 MiB, quick 64 MiB)
  --seed N             prompt token seed (default 1)
  --no-sgemm           skip the OpenBLAS sgemm reference of prefill
  --peers LIST         also run the peers on the vanilla model in the same run, after the
                       PF/DE cells, with the same lengths: torch,ort,llama (paper/quick)
  --peer-model DIR     the vanilla model directory with step.onnx and model-f32/f16.gguf
                       (default: the vanilla artifact's path without .photon)
  --peer-threads N     threads of every peer (default: the threads photon's vanilla runs used)
  --threads N          compute threads of artifacts compiled with --openmp (engine option
                       `threads`; default: OpenMP's, i.e. OMP_NUM_THREADS or every core);
                       sequential artifacts use one thread per stage call
  --peers-script PATH  benchmarks/peers/run_peers.py (default: the source tree's)
  --peer-args ARGS     extra run_peers.py arguments (e.g. "--llama-batches 1,4")
  --no-checksum        skip the weights checksum when loading
  -v, --verbose        one line per run on stderr
  -h, --help           this text

The JSON file is rewritten (atomically) after every finished run, with "complete": false
until the suite ends: an interrupted suite keeps every run it finished.

Exit status: 0 when every run succeeded, 1 when some run failed (recorded in the JSON), 2 on
bad usage or an artifact that does not load.
)";

double nowSec() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::vector<std::string> splitList(const std::string &s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

bool parseIntList(const std::string &s, std::vector<int> &out) {
  out.clear();
  for (auto &t : splitList(s)) {
    char *end = nullptr;
    long v = std::strtol(t.c_str(), &end, 10);
    if (*end || v <= 0) return false;
    out.push_back(static_cast<int>(v));
  }
  return !out.empty();
}

struct Options {
  std::string suite;
  std::vector<std::string> models;
  std::string json;
  double budgetGiB = -1;
  int maxBatch = -1;
  std::vector<int> slopeBatches;
  int repeats = -1;
  std::vector<std::string> settings;
  std::map<std::string, std::pair<int, int>> lengths;  // --lengths overrides
  std::vector<int> contexts;
  double runTimeout = 900;
  double sweepCap = 60;
  double noiseThreshold = 0.25;
  size_t bwBytes = 0;
  uint64_t seed = 1;
  bool checksum = true;
  bool verbose = false;
  bool sgemm = true;
  std::vector<std::string> peers;
  std::string peerModel, peersScript, peerArgs;
  int peerThreads = 0;
  int threads = 0;
};

#ifndef PHOTON_BENCH_PEERS_SCRIPT
#define PHOTON_BENCH_PEERS_SCRIPT "benchmarks/peers/run_peers.py"
#endif

// ------------------------------------------------------------------------------ models ----

struct CostModel {
  bool present = false;
  double weightBytesPerToken = 0, flopsPerToken = 0;
  double cacheHierPer1k = 0, cacheRecPer1k = 0;
  double vWeightBytesPerToken = 0, vFlopsPerToken = 0, vCachePer1k = 0, vLayers = 0;
  double ratioCacheRec = 0, ratioCacheHier = 0, ratioWeight = 0, ratioFlops = 0;
};

struct Model {
  std::string path, name;
  photon_model *handle = nullptr;
  photon_model_info info{};
  CostModel cost;
  double params = 0;  // weights bytes / 4 (f32)
};

std::string baseName(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  size_t s = p.find_last_of('/');
  std::string b = s == std::string::npos ? p : p.substr(s + 1);
  if (b.size() > 7 && b.compare(b.size() - 7, 7, ".photon") == 0) b.resize(b.size() - 7);
  return b;
}

bool readFile(const std::string &path, std::string &out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::stringstream ss;
  ss << f.rdbuf();
  out = ss.str();
  return true;
}

void readCostModel(Model &m) {
  std::string text, err;
  if (!readFile(m.path + "/manifest.json", text)) return;
  Json root;
  if (!parseJson(text, root, err)) return;
  const Json *cm = jget(&root, "cost_model");
  if (!cm) return;
  CostModel &c = m.cost;
  c.present = true;
  c.weightBytesPerToken = jnumber(cm, "weight_bytes_per_token");
  c.flopsPerToken = jnumber(cm, "flops_per_token");
  if (const Json *cb = jget(cm, "cache_bytes_per_1k_tokens")) {
    c.cacheHierPer1k = jnumber(cb, "total");
    c.cacheRecPer1k = jnumber(cb, "recgen", c.cacheHierPer1k);
  }
  if (const Json *v = jget(cm, "vanilla")) {
    c.vWeightBytesPerToken = jnumber(v, "weight_bytes_per_token");
    c.vFlopsPerToken = jnumber(v, "flops_per_token");
    c.vCachePer1k = jnumber(v, "cache_bytes_per_1k_tokens");
    c.vLayers = jnumber(v, "layers");
  }
  if (const Json *r = jget(cm, "ratio_to_vanilla")) {
    c.ratioCacheRec = jnumber(r, "cache_recgen");
    c.ratioCacheHier = jnumber(r, "cache_hiergen");
    c.ratioWeight = jnumber(r, "weight_bytes");
    c.ratioFlops = jnumber(r, "flops");
  }
}

const char *familyName(photon_family f) {
  switch (f) {
    case PHOTON_FAMILY_PHOTON: return "photon";
    case PHOTON_FAMILY_BLOCK: return "block";
    case PHOTON_FAMILY_VANILLA: return "vanilla";
    case PHOTON_FAMILY_FORWARD: return "forward";
  }
  return "?";
}

struct ModeSpec {
  std::string label;  // vanilla, block, hiergen, recgen
  photon_mode mode;
};

std::vector<ModeSpec> modesOf(const Model &m) {
  switch (m.info.family) {
    case PHOTON_FAMILY_VANILLA: return {{"vanilla", PHOTON_MODE_HIERGEN}};
    case PHOTON_FAMILY_BLOCK: return {{"block", PHOTON_MODE_HIERGEN}};
    case PHOTON_FAMILY_PHOTON: {
      std::vector<ModeSpec> v{{"hiergen", PHOTON_MODE_HIERGEN}};
      if (m.info.has_recgen) v.push_back({"recgen", PHOTON_MODE_RECGEN});
      return v;
    }
  }
  return {};
}

// ------------------------------------------------------------------------------ one run ---

struct RunSpec {
  const Model *model;
  ModeSpec mode;
  int prompt, gen, batch;
};

// Written by the child through a pipe (plain data).
struct ChildResult {
  int ok;
  int status;
  char error[512];
  double wall, prefillSeconds, decodeSeconds;
  uint64_t prefillTokens, decodeTokens, cachePeak, generated;
  uint64_t peakRss, rssBefore;
  int32_t peakBatch;
};

struct RunResult {
  RunSpec spec;
  bool ok = false;
  std::string error;
  double wall = 0, prefillSeconds = 0, decodeSeconds = 0;
  uint64_t prefillTokens = 0, decodeTokens = 0, cachePeak = 0, generated = 0;
  uint64_t peakRss = 0, rssBefore = 0;
  int peakBatch = 0;
  double ownCpu = 0, otherCores = 0, elapsed = 0;
  bool noisy = false;
  double throughput() const {  // generated tokens per second of the whole run
    double t = prefillSeconds + decodeSeconds;
    return t > 0 ? static_cast<double>(generated) / t : 0;
  }
  double prefillTps() const { return prefillSeconds > 0 ? prefillTokens / prefillSeconds : 0; }
  double decodeTps() const { return decodeSeconds > 0 ? decodeTokens / decodeSeconds : 0; }
};

uint64_t statusKb(const char *field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  size_t n = std::strlen(field);
  while (std::getline(f, line))
    if (line.compare(0, n, field) == 0) return std::strtoull(line.c_str() + n, nullptr, 10);
  return 0;
}

struct CountCtx {
  uint64_t tokens = 0;
};

int countTokens(void *user, photon_request_id, const int32_t *, size_t n, photon_finish) {
  static_cast<CountCtx *>(user)->tokens += n;
  return 0;
}

void childRun(const RunSpec &rs, uint64_t seed, int threads, int fd) {
  ChildResult r;
  std::memset(&r, 0, sizeof r);
  auto finish = [&](photon_status st) {
    r.status = st;
    r.ok = st == PHOTON_OK;
    if (!r.ok) std::snprintf(r.error, sizeof r.error, "%s: %s", photon_status_string(st), photon_last_error());
    ssize_t w = write(fd, &r, sizeof r);
    (void)w;
    _exit(r.ok ? 0 : 3);
  };
  const Model &m = *rs.model;
  photon_engine_options eo;
  photon_engine_options_defaults(&eo);
  eo.mode = rs.mode.mode;
  eo.max_batch = rs.batch;
  eo.threads = threads;
  // The engine's own budget must never make requests wait: the protocol tunes the batch.
  uint64_t perSeq = 0;
  for (int i = 0; i < m.info.cache_levels; ++i)
    perSeq += m.info.cache_bytes_per_unit[i] *
              ((rs.prompt + rs.gen) / std::max(1, m.info.cache_tokens_per_unit[i]) + 64);
  eo.memory_budget = std::max<uint64_t>(uint64_t(1) << 30, 2 * perSeq * rs.batch + (uint64_t(64) << 20));
  photon_engine *e = nullptr;
  photon_status st = photon_engine_create(m.handle, &eo, &e);
  if (st != PHOTON_OK) finish(st);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> tok(0, m.info.vocab - 1);
  photon_sampling s;
  photon_sampling_defaults(&s);
  s.max_tokens = rs.gen;
  s.temperature = 0;
  std::vector<int32_t> prompt(rs.prompt);
  // Reset the peak-RSS mark: the peak is then that of this run (weights pages it touches
  // included; they are the same at every batch and drop out of the slope).
  {
    int cf = open("/proc/self/clear_refs", O_WRONLY);
    if (cf >= 0) {
      ssize_t w = write(cf, "5", 1);
      (void)w;
      close(cf);
    }
  }
  r.rssBefore = statusKb("VmRSS:") * 1024;
  for (int b = 0; b < rs.batch; ++b) {
    for (auto &t : prompt) t = tok(rng);
    s.seed = seed + b;
    photon_request_id id;
    st = photon_engine_submit(e, prompt.data(), prompt.size(), &s, &id);
    if (st != PHOTON_OK) finish(st);
  }
  CountCtx cc;
  double t0 = nowSec();
  st = photon_engine_run(e, countTokens, &cc);
  r.wall = nowSec() - t0;
  if (st != PHOTON_OK) finish(st);
  photon_engine_stats es;
  std::memset(&es, 0, sizeof es);
  es.struct_size = sizeof es;
  st = photon_engine_get_stats(e, &es);
  if (st != PHOTON_OK) finish(st);
  r.prefillSeconds = es.prefill_seconds;
  r.decodeSeconds = es.decode_seconds;
  r.prefillTokens = es.prefill_tokens;
  r.decodeTokens = es.decode_tokens;
  r.cachePeak = es.cache_peak_total_bytes;
  r.peakBatch = es.peak_batch;
  r.generated = cc.tokens;
  r.peakRss = statusKb("VmHWM:") * 1024;
  finish(PHOTON_OK);
}

RunResult runOne(const RunSpec &rs, const Options &o) {
  RunResult out;
  out.spec = rs;
  int fds[2];
  if (pipe(fds) != 0) {
    out.error = std::string("pipe: ") + std::strerror(errno);
    return out;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  CpuSample c0, c1;
  readProcStat(c0);
  pid_t pid = fork();
  if (pid < 0) {
    out.error = std::string("fork: ") + std::strerror(errno);
    close(fds[0]);
    close(fds[1]);
    return out;
  }
  if (pid == 0) {
    close(fds[0]);
    childRun(rs, o.seed, o.threads, fds[1]);
    _exit(4);
  }
  close(fds[1]);
  ChildResult cr;
  std::memset(&cr, 0, sizeof cr);
  size_t got = 0;
  double deadline = nowSec() + o.runTimeout;
  bool timedOut = false;
  while (got < sizeof cr) {
    double left = deadline - nowSec();
    if (left <= 0) {
      timedOut = true;
      break;
    }
    struct pollfd pf = {fds[0], POLLIN, 0};
    int pr = poll(&pf, 1, static_cast<int>(std::min(left, 1e6) * 1000));
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) continue;
    ssize_t n = read(fds[0], reinterpret_cast<char *>(&cr) + got, sizeof cr - got);
    if (n <= 0) break;
    got += n;
  }
  close(fds[0]);
  if (timedOut) kill(pid, SIGKILL);
  int wstatus = 0;
  struct rusage ru;
  std::memset(&ru, 0, sizeof ru);
  wait4(pid, &wstatus, 0, &ru);
  readProcStat(c1);
  out.elapsed = c1.time - c0.time;
  out.ownCpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
  double busy = (c1.busyTicks - c0.busyTicks) / ticksPerSecond();
  out.otherCores = out.elapsed > 0 ? std::max(0.0, busy - out.ownCpu) / out.elapsed : 0;
  out.noisy = out.otherCores > o.noiseThreshold;
  if (timedOut) {
    out.error = "timed out after " + std::to_string(static_cast<int>(o.runTimeout)) +
                " s (raise --run-timeout or lower the batch/lengths)";
    return out;
  }
  if (got != sizeof cr) {
    if (WIFSIGNALED(wstatus))
      out.error = std::string("the run crashed: signal ") + strsignal(WTERMSIG(wstatus));
    else
      out.error = "the run exited with status " + std::to_string(WEXITSTATUS(wstatus)) + " without a result";
    return out;
  }
  out.ok = cr.ok;
  cr.error[sizeof cr.error - 1] = 0;
  out.error = cr.error;
  out.wall = cr.wall;
  out.prefillSeconds = cr.prefillSeconds;
  out.decodeSeconds = cr.decodeSeconds;
  out.prefillTokens = cr.prefillTokens;
  out.decodeTokens = cr.decodeTokens;
  out.cachePeak = cr.cachePeak;
  out.generated = cr.generated;
  out.peakRss = cr.peakRss;
  out.rssBefore = cr.rssBefore;
  out.peakBatch = cr.peakBatch;
  return out;
}

// ------------------------------------------------------------------------------ stats -----

struct Summary {
  double median = NAN, min = NAN, max = NAN;
  int n = 0;
};

Summary summarize(std::vector<double> v) {
  Summary s;
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.n = static_cast<int>(v.size());
  s.min = v.front();
  s.max = v.back();
  s.median = v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
  return s;
}

// Least-squares line y = a + b x.
bool fitLine(const std::vector<double> &x, const std::vector<double> &y, double &a, double &b) {
  size_t n = x.size();
  if (n < 2) return false;
  double mx = 0, my = 0;
  for (size_t i = 0; i < n; ++i) mx += x[i], my += y[i];
  mx /= n;
  my /= n;
  double sxx = 0, sxy = 0;
  for (size_t i = 0; i < n; ++i) sxx += (x[i] - mx) * (x[i] - mx), sxy += (x[i] - mx) * (y[i] - my);
  if (sxx <= 0) return false;
  b = sxy / sxx;
  a = my - b * mx;
  return true;
}

// ------------------------------------------------------------------------------ roofline --

struct Machine {
  double bw1 = 0, bw2 = 0;        // GB/s
  double flops1 = 0, flops2 = 0;  // FLOP/s
  double otherCores = 0, seconds = 0;
};

// Bytes one generated token reads from the caches at context T (averaged over the steps of
// the level that reads them): level l is read once per level-l step, every tokens_per_unit
// tokens; RecGen keeps only the top level.
double cacheReadPerToken(const Model &m, const std::string &mode, double T) {
  double bytes = 0;
  int n = m.info.cache_levels;
  int top = 0;
  for (int i = 0; i < n; ++i) top = std::max(top, m.info.cache_level_id[i]);
  for (int i = 0; i < n; ++i) {
    if (mode == "recgen" && m.info.cache_level_id[i] != top) continue;
    double tpu = std::max(1, m.info.cache_tokens_per_unit[i]);
    double stored = m.info.cache_bytes_per_unit[i] * std::ceil(T / tpu);
    bytes += stored / tpu;
  }
  return bytes;
}

struct Roofline {
  double decodeTps = 0;   // bandwidth/compute bound of decode at the run's batch
  double prefillTps = 0;  // compute bound of prefill
  double bytesPerToken = 0, flopsPerToken = 0;
  bool bandwidthBound = true;
};

// Decode and prefill rooflines from the compile-time cost model (weights bytes and FLOPs per
// token) and the measured limits. `threads` selects the 1- or 2-thread limits.
Roofline roofline(const Model &m, const std::string &mode, double avgContext, int batch,
                  const Machine &mc, int threads) {
  Roofline r;
  double w = m.cost.weightBytesPerToken > 0 ? m.cost.weightBytesPerToken : static_cast<double>(m.info.weights_bytes);
  double f = m.cost.flopsPerToken > 0 ? m.cost.flopsPerToken : 2.0 * m.info.weights_bytes / 4.0;
  double bw = (threads >= 2 ? mc.bw2 : mc.bw1) * 1e9;
  double pk = threads >= 2 ? mc.flops2 : mc.flops1;
  r.bytesPerToken = w / std::max(1, batch) + cacheReadPerToken(m, mode, avgContext);
  r.flopsPerToken = f;
  double tBw = r.bytesPerToken / bw, tFl = f / pk;
  r.bandwidthBound = tBw >= tFl;
  // tokens/s summed over the batch: B tokens per step of max((W + B*cache)/BW, B*F/PEAK)
  r.decodeTps = 1.0 / std::max(tBw, tFl);
  r.prefillTps = pk / f;
  return r;
}

// ------------------------------------------------------------------------------ results ---

struct SettingDef {
  std::string name;
  int prompt, gen;
};

struct MemPoint {
  int batch;
  double peakRss, cachePeak;
};

struct Cell {  // one model x mode x setting of the paper table
  std::string model, family, mode, setting;
  int prompt = 0, gen = 0;
  std::vector<MemPoint> points;
  double memSlope = NAN, memIntercept = NAN, cacheSlope = NAN, rssSlope = NAN;
  std::string memSource = "peak_rss";
  int budgetBatch = 0, tunedBatch = 0;
  bool batchCapped = false;
  Summary thr, prefill, decode, wall;
  Summary b1Decode, b1Thr, b1Prefill;
  double prefillGflops = NAN, sgemmGflops = NAN, prefillOverSgemm = NAN;
  bool complete = false;  // every run of the cell done
  double tpm = NAN;  // throughput / per-sample GiB (K tokens/s/GiB is tpm/1000)
  double tpmCache = NAN;
  Roofline roof, roofB1;
  int threadsUsed = 1;
  double achievedDecode = NAN, achievedB1 = NAN;
  double otherCoresMax = 0;
  bool noisy = false;
  std::vector<RunResult> runs;
  std::string error;
  const Model *m = nullptr;
};

void writeRun(JWriter &w, const RunResult &r) {
  w.beginObj();
  w.kv("batch", r.spec.batch);
  w.kv("prompt", r.spec.prompt);
  w.kv("gen", r.spec.gen);
  w.kv("ok", r.ok);
  if (!r.ok) w.kv("error", r.error);
  w.kv("wall_s", r.wall);
  w.kv("prefill_s", r.prefillSeconds);
  w.kv("decode_s", r.decodeSeconds);
  w.kv("prefill_tokens", static_cast<double>(r.prefillTokens));
  w.kv("decode_tokens", static_cast<double>(r.decodeTokens));
  w.kv("generated", static_cast<double>(r.generated));
  w.kv("throughput_tps", r.throughput());
  w.kv("prefill_tps", r.prefillTps());
  w.kv("decode_tps", r.decodeTps());
  w.kv("peak_rss_bytes", static_cast<double>(r.peakRss));
  w.kv("cache_peak_bytes", static_cast<double>(r.cachePeak));
  w.kv("peak_batch", r.peakBatch);
  w.kv("own_cpu_s", r.ownCpu);
  w.kv("cpu_utilization", r.elapsed > 0 ? r.ownCpu / r.elapsed : 0.0);
  w.kv("other_cpu_cores", r.otherCores);
  w.kv("noisy", r.noisy);
  w.endObj();
}

void writeSummary(JWriter &w, const std::string &k, const Summary &s) {
  w.key(k);
  w.beginObj();
  w.kv("median", s.median);
  w.kv("min", s.min);
  w.kv("max", s.max);
  w.kv("n", s.n);
  w.endObj();
}

void writeRoof(JWriter &w, const std::string &k, const Roofline &r) {
  w.key(k);
  w.beginObj();
  w.kv("decode_tps", r.decodeTps);
  w.kv("prefill_tps", r.prefillTps);
  w.kv("bytes_per_token", r.bytesPerToken);
  w.kv("flops_per_token", r.flopsPerToken);
  w.kv("bound", r.bandwidthBound ? "bandwidth" : "compute");
  w.endObj();
}


// The first three fields of /proc/loadavg ("1.02 0.80 0.66").
std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  if (!(f >> a >> b >> c)) return "";
  return a + " " + b + " " + c;
}

std::string isoNow() {
  std::time_t t = std::time(nullptr);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::string cpuModel() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.compare(0, 10, "model name") == 0) {
      size_t c = line.find(':');
      return c == std::string::npos ? line : line.substr(c + 2);
    }
  return "unknown";
}

void logRun(const Options &o, const RunResult &r) {
  if (!o.verbose) return;
  std::fprintf(stderr, "  %-14s %-8s P=%-5d G=%-5d B=%-3d %s thr %8.1f tok/s (prefill %8.1f, decode %8.1f) peak %7.1f MiB cache %7.1f MiB other %.2f cores%s\n",
               r.spec.model->name.c_str(), r.spec.mode.label.c_str(), r.spec.prompt, r.spec.gen,
               r.spec.batch, r.ok ? "ok  " : "FAIL", r.throughput(), r.prefillTps(), r.decodeTps(),
               r.peakRss / 1048576.0, r.cachePeak / 1048576.0, r.otherCores, r.noisy ? " NOISY" : "");
  if (!r.ok) std::fprintf(stderr, "    error: %s\n", r.error.c_str());
}

int threadsFrom(const std::vector<RunResult> &runs) {
  double best = 0;
  for (auto &r : runs)
    if (r.ok && r.elapsed > 0) best = std::max(best, r.ownCpu / r.elapsed);
  return best > 1.3 ? 2 : 1;
}

}  // namespace

int main(int argc, char **argv) {
  Options o;
  std::vector<std::string> modelsDirs;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto need = [&](const char *what) -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "photon-bench: %s needs %s (see --help)\n", a.c_str(), what);
        std::exit(2);
      }
      return argv[++i];
    };
    auto num = [&](const char *what) -> double {
      std::string v = need(what);
      char *end = nullptr;
      double d = std::strtod(v.c_str(), &end);
      if (*end || !std::isfinite(d) || d < 0) {
        std::fprintf(stderr, "photon-bench: %s expects %s, got '%s'\n", a.c_str(), what, v.c_str());
        std::exit(2);
      }
      return d;
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--suite") o.suite = need("paper, sweep, roofline or quick");
    else if (a == "--model") o.models.push_back(need("an artifact directory"));
    else if (a == "--models-dir") modelsDirs.push_back(need("a directory"));
    else if (a == "--json") o.json = need("an output path");
    else if (a == "--budget-gib") o.budgetGiB = num("a size in GiB");
    else if (a == "--max-batch") o.maxBatch = static_cast<int>(num("a batch size"));
    else if (a == "--repeats") o.repeats = static_cast<int>(num("a count"));
    else if (a == "--run-timeout") o.runTimeout = num("seconds");
    else if (a == "--sweep-cap") o.sweepCap = num("seconds");
    else if (a == "--noise-threshold") o.noiseThreshold = num("cores");
    else if (a == "--bw-bytes") o.bwBytes = static_cast<size_t>(num("bytes"));
    else if (a == "--seed") o.seed = static_cast<uint64_t>(num("an integer"));
    else if (a == "--no-checksum") o.checksum = false;
    else if (a == "--no-sgemm") o.sgemm = false;
    else if (a == "--peers") {
      o.peers = splitList(need("a list such as torch,ort,llama"));
      for (auto &p : o.peers)
        if (p != "torch" && p != "ort" && p != "llama") {
          std::fprintf(stderr, "photon-bench: --peers: unknown peer '%s' (torch, ort, llama)\n", p.c_str());
          return 2;
        }
    } else if (a == "--peer-model") o.peerModel = need("a model directory");
    else if (a == "--peer-threads") o.peerThreads = static_cast<int>(num("a thread count"));
    else if (a == "--threads") {
      o.threads = static_cast<int>(num("a thread count"));
      if (o.threads < 1) {
        std::fprintf(stderr, "photon-bench: --threads: expected a thread count >= 1\n");
        return 2;
      }
    }
    else if (a == "--peers-script") o.peersScript = need("a path");
    else if (a == "--peer-args") o.peerArgs = need("arguments");
    else if (a == "-v" || a == "--verbose") o.verbose = true;
    else if (a == "--slope-batches") {
      std::string v = need("a list such as 1,2,4");
      if (!parseIntList(v, o.slopeBatches)) {
        std::fprintf(stderr, "photon-bench: --slope-batches expects positive integers such as 1,2,4, got '%s'\n", v.c_str());
        return 2;
      }
    } else if (a == "--contexts") {
      std::string v = need("a list such as 512,1024");
      if (!parseIntList(v, o.contexts)) {
        std::fprintf(stderr, "photon-bench: --contexts expects positive integers, got '%s'\n", v.c_str());
        return 2;
      }
    } else if (a == "--lengths") {
      std::string v = need("a list such as PF=512/32,DE=32/512");
      for (auto &item : splitList(v)) {
        int p = 0, g = 0;
        char name[8] = {0};
        if (std::sscanf(item.c_str(), "%2[A-Z]=%d/%d", name, &p, &g) != 3 || p < 1 || g < 1 ||
            (std::string(name) != "PF" && std::string(name) != "DE")) {
          std::fprintf(stderr, "photon-bench: --lengths: bad item '%s' (expected PF=P/G or DE=P/G, positive)\n", item.c_str());
          return 2;
        }
        o.lengths[name] = {p, g};
      }
    } else if (a == "--settings") {
      o.settings = splitList(need("PF,DE"));
      for (auto &s : o.settings)
        if (s != "PF" && s != "DE") {
          std::fprintf(stderr, "photon-bench: --settings: unknown setting '%s' (PF or DE)\n", s.c_str());
          return 2;
        }
    } else {
      std::fprintf(stderr, "photon-bench: unknown argument '%s' (see --help)\n", a.c_str());
      return 2;
    }
  }
  if (o.suite != "paper" && o.suite != "sweep" && o.suite != "roofline" && o.suite != "quick") {
    std::fprintf(stderr, "photon-bench: --suite must be paper, sweep, roofline or quick%s\n",
                 o.suite.empty() ? " (missing)" : (", got '" + o.suite + "'").c_str());
    return 2;
  }
  for (auto &d : modelsDirs) {
    std::vector<std::string> found;
    std::string cmd;
    if (FILE *p = popen(("ls -1d '" + d + "'/*.photon 2>/dev/null").c_str(), "r")) {
      char buf[4096];
      while (std::fgets(buf, sizeof buf, p)) {
        std::string s = buf;
        while (!s.empty() && (s.back() == '\n')) s.pop_back();
        found.push_back(s);
      }
      pclose(p);
    }
    if (found.empty()) {
      std::fprintf(stderr, "photon-bench: no *.photon artifact in %s (compile some with photon-compile)\n", d.c_str());
      return 2;
    }
    for (auto &f : found) o.models.push_back(f);
  }
  if (o.models.empty()) {
    std::fprintf(stderr, "photon-bench: no model: pass --model DIR.photon or --models-dir DIR (see --help)\n");
    return 2;
  }
  const bool quick = o.suite == "quick";
  if (o.budgetGiB < 0) o.budgetGiB = quick ? 0.25 : 2.0;
  if (o.maxBatch < 0) o.maxBatch = quick ? 4 : 16;
  if (o.maxBatch < 1) o.maxBatch = 1;
  if (o.repeats < 0) o.repeats = o.suite == "paper" ? 3 : 1;
  if (o.repeats < 1) o.repeats = 1;
  if (o.slopeBatches.empty()) o.slopeBatches = quick ? std::vector<int>{1, 2} : std::vector<int>{1, 2, 4};
  if (o.contexts.empty()) o.contexts = quick ? std::vector<int>{64, 128} : std::vector<int>{512, 1024, 2048, 4096, 8192, 16384, 32768};
  if (o.bwBytes == 0) o.bwBytes = quick ? (size_t(64) << 20) : (size_t(512) << 20);

  // ---- models
  std::vector<Model> models;
  for (auto &p : o.models) {
    Model m;
    m.path = p;
    m.name = baseName(p);
    photon_load_options lo;
    photon_load_options_defaults(&lo);
    lo.verify_checksum = o.checksum ? 1 : 0;
    photon_status st = photon_model_load(p.c_str(), &lo, &m.handle);
    if (st != PHOTON_OK) {
      std::fprintf(stderr, "photon-bench: %s: %s: %s\n", p.c_str(), photon_status_string(st), photon_last_error());
      return 2;
    }
    m.info.struct_size = sizeof m.info;
    photon_model_get_info(m.handle, &m.info);
    m.params = m.info.weights_bytes / 4.0;
    readCostModel(m);
    models.push_back(std::move(m));
  }

  const std::string loadavgStart = loadavg();
  // ---- machine limits
  Machine mc;
  {
    CpuSample a, b;
    readProcStat(a);
    double t0 = nowSec();
    int reps = quick ? 2 : 5;
    mc.bw1 = measureReadBandwidth(o.bwBytes, 1, reps);
    mc.bw2 = measureReadBandwidth(o.bwBytes, 2, reps);
    double fs = quick ? 0.02 : (o.suite == "roofline" ? 0.5 : 0.2);
    mc.flops1 = measurePeakFlops(fs, 1);
    mc.flops2 = measurePeakFlops(fs, 2);
    mc.seconds = nowSec() - t0;
    readProcStat(b);
    // Our own threads were busy all the time (1 or 2 of them): report the rest.
    double busy = (b.busyTicks - a.busyTicks) / ticksPerSecond();
    mc.otherCores = std::max(0.0, busy / std::max(mc.seconds, 1e-9) - 1.5);
    if (o.verbose)
      std::fprintf(stderr, "machine: read %.1f GB/s (1 thread), %.1f GB/s (2); FP32 %.1f GFLOP/s (1), %.1f (2)\n",
                   mc.bw1, mc.bw2, mc.flops1 / 1e9, mc.flops2 / 1e9);
  }

  std::vector<SettingDef> settings;
  if (quick) settings = {{"PF", 64, 16}, {"DE", 16, 64}};
  else settings = {{"PF", 2048, 128}, {"DE", 128, 2048}};
  for (auto &s : settings) {
    auto it = o.lengths.find(s.name);
    if (it != o.lengths.end()) s.prompt = it->second.first, s.gen = it->second.second;
  }
  if (!o.settings.empty()) {
    std::vector<SettingDef> keep;
    for (auto &s : settings)
      if (std::find(o.settings.begin(), o.settings.end(), s.name) != o.settings.end()) keep.push_back(s);
    settings = keep;
  }

  // ---- OpenBLAS sgemm on the prefill matmul shapes (the vanilla layer of the models' width;
  // the cost models' FLOPs are these matmuls' FLOPs)
  SgemmRef sg;
  if (!o.sgemm) {
    sg.error = "skipped (--no-sgemm)";
  } else {
    const Model *ref = nullptr;
    for (auto &m : models)
      if (m.cost.present && m.cost.vLayers > 0 && m.cost.vFlopsPerToken > 0 &&
          (!ref || m.info.family == PHOTON_FAMILY_VANILLA))
        ref = &m;
    if (!ref) {
      sg.error = "no manifest with a cost model (vanilla layer count and FLOPs)";
    } else {
      const int D = ref->info.width, V = ref->info.vocab;
      const double L = ref->cost.vLayers;
      // vanilla FLOPs/token = 2 (L (4 D^2 + 3 D F) + D V): solve for the FFN width F.
      double perLayer = (ref->cost.vFlopsPerToken / 2 - static_cast<double>(D) * V) / L;
      int F = static_cast<int>(std::lround((perLayer - 4.0 * D * D) / (3.0 * D)));
      if (F <= 0) F = (8 * D + 2) / 3;
      int M = 2048;
      for (auto &s : settings)
        if (s.name == "PF") M = s.prompt;
      M = std::max(16, std::min(M, 2048));
      std::vector<GemmShape> shapes = {{"attention q/k/v/o (D x D)", D, D, 4 * L},
                                       {"ffn gate/up (F x D)", F, D, 2 * L},
                                       {"ffn down (D x F)", D, F, L},
                                       {"lm_head (V x D)", V, D, 1}};
      sg = measureSgemmRef(M, shapes, quick ? 0.01 : 0.3);
    }
    if (o.verbose) {
      if (sg.available)
        std::fprintf(stderr, "sgemm reference (%s, M = %d): %.1f GFLOP/s (1 thread), %.1f (2)\n",
                     sg.library.c_str(), sg.m, sg.gflops1, sg.gflops2);
      else
        std::fprintf(stderr, "sgemm reference: not measured: %s\n", sg.error.c_str());
    }
  }

  bool anyFailed = false;
  // A deque: cells are appended while references to earlier ones are held.
  std::deque<Cell> cells;
  std::vector<RunResult> sweepRuns;
  std::vector<RunResult> rooflineRuns;
  const double budgetBytes = o.budgetGiB * 1073741824.0;
  Json peersJson;
  bool peersRan = false;
  std::string peersError;

  // Everything derived from a cell's runs (idempotent: called on partial cells too).
  auto finishCell = [&](Cell &c) {
    const Model &m = *c.m;
    std::vector<double> thr, pre, dec, wall, b1d, b1t, b1p;
    for (auto &r : c.runs) {
      if (!r.ok) continue;
      if (c.tunedBatch > 0 && r.spec.batch == c.tunedBatch) {
        thr.push_back(r.throughput());
        pre.push_back(r.prefillTps());
        dec.push_back(r.decodeTps());
        wall.push_back(r.wall);
      }
      if (r.spec.batch == 1) {
        b1d.push_back(r.decodeTps());
        b1t.push_back(r.throughput());
        b1p.push_back(r.prefillTps());
      }
    }
    c.thr = summarize(thr);
    c.prefill = summarize(pre);
    c.decode = summarize(dec);
    c.wall = summarize(wall);
    c.b1Decode = summarize(b1d);
    c.b1Thr = summarize(b1t);
    c.b1Prefill = summarize(b1p);
    c.tpm = (std::isfinite(c.memSlope) && c.memSlope > 0) ? c.thr.median / (c.memSlope / 1073741824.0) : NAN;
    c.tpmCache = (std::isfinite(c.cacheSlope) && c.cacheSlope > 0) ? c.thr.median / (c.cacheSlope / 1073741824.0) : NAN;
    c.threadsUsed = threadsFrom(c.runs);
    double avgCtx = c.prompt + c.gen / 2.0;
    c.roof = roofline(m, c.mode, avgCtx, std::max(1, c.tunedBatch), mc, c.threadsUsed);
    c.roofB1 = roofline(m, c.mode, avgCtx, 1, mc, c.threadsUsed);
    c.achievedDecode = c.decode.median / c.roof.decodeTps;
    c.achievedB1 = c.b1Decode.median / c.roofB1.decodeTps;
    c.otherCoresMax = 0;
    c.noisy = false;
    for (auto &r : c.runs) {
      c.otherCoresMax = std::max(c.otherCoresMax, r.otherCores);
      c.noisy = c.noisy || r.noisy;
    }
    double fpt = m.cost.flopsPerToken > 0 ? m.cost.flopsPerToken : NAN;
    Summary &pf = c.prefill.n > 0 ? c.prefill : c.b1Prefill;
    c.prefillGflops = pf.median * fpt / 1e9;
    c.sgemmGflops = sg.available ? (c.threadsUsed >= 2 ? sg.gflops2 : sg.gflops1) : NAN;
    c.prefillOverSgemm = c.sgemmGflops > 0 ? c.prefillGflops / c.sgemmGflops : NAN;
  };

  auto safeDiv = [](double a, double b) { return (std::isfinite(a) && std::isfinite(b) && b != 0) ? a / b : NAN; };
  auto findCell = [&](const std::string &mode, const std::string &setting) -> const Cell * {
    for (auto &c : cells)
      if (c.mode == mode && c.setting == setting) return &c;
    return nullptr;
  };
  // Median of a metric over the ok runs of a cell at one batch size.
  auto atBatch = [](const Cell *c, int batch, double (RunResult::*metric)() const) {
    std::vector<double> v;
    if (c)
      for (auto &r : c->runs)
        if (r.ok && r.spec.batch == batch) v.push_back((r.*metric)());
    return summarize(v).median;
  };
  int noisyRuns = 0, runsTotal = 0;
  double otherMax = 0;

  // The whole result document, from what has run so far.
  auto buildJson = [&](bool complete) {
    for (auto &c : cells) finishCell(c);
    JWriter w;
    w.beginObj();
    w.kv("tool", "photon-bench");
    w.kv("version", photon_version());
    w.kv("suite", o.suite);
    w.kv("date", isoNow());
    w.kv("complete", complete);
    w.kv("compute_threads_option", o.threads); // --threads (0: OpenMP's default)
    w.key("host");
    w.beginObj();
    w.kv("cpu", cpuModel());
    w.kv("online_cpus", onlineCpus());
    w.kv("avx2_fma", cpuHasAvx2Fma());
    w.endObj();
    w.key("machine");
    w.beginObj();
    w.kv("read_bw_gbs_1t", mc.bw1);
    w.kv("read_bw_gbs_2t", mc.bw2);
    w.kv("peak_gflops_1t", mc.flops1 / 1e9);
    w.kv("peak_gflops_2t", mc.flops2 / 1e9);
    w.kv("bw_buffer_bytes", static_cast<double>(o.bwBytes));
    w.kv("measure_seconds", mc.seconds);
    w.kv("other_cpu_cores_during", mc.otherCores);
    w.kv("loadavg_start", loadavgStart);
    w.kv("loadavg_now", loadavg());
    w.endObj();
    w.key("sgemm_reference");
    w.beginObj();
    w.kv("available", sg.available);
    if (!sg.error.empty()) w.kv("error", sg.error);
    w.kv("library", sg.library);
    w.kv("config", sg.config);
    w.kv("m", sg.m);
    w.kv("gflops_1t", sg.gflops1);
    w.kv("gflops_2t", sg.gflops2);
    w.kv("what", "cblas_sgemm(row major, x[M,K] * W[N,K]^T) on the models' matmul shapes, best of several calls "
                 "after a warm-up; gflops = the shape mix weighted by the FLOPs of one token (total FLOP / total time)");
    w.key("shapes");
    w.beginArr();
    for (auto &s : sg.shapes) {
      w.beginObj();
      w.kv("what", s.what);
      w.kv("n", s.n);
      w.kv("k", s.k);
      w.kv("per_token", s.count);
      w.kv("gflops_1t", s.gflops1);
      w.kv("gflops_2t", s.gflops2);
      w.endObj();
    }
    w.endArr();
    w.endObj();
    w.key("protocol");
    w.beginObj();
    w.key("settings");
    w.beginArr();
    for (auto &s : settings) {
      w.beginObj();
      w.kv("name", s.name);
      w.kv("prompt", s.prompt);
      w.kv("gen", s.gen);
      w.endObj();
    }
    w.endArr();
    w.kv("budget_gib", o.budgetGiB);
    w.kv("max_batch", o.maxBatch);
    w.key("slope_batches");
    w.beginArr();
    for (int b : o.slopeBatches) w.value(b);
    w.endArr();
    w.kv("repeats", o.repeats);
    w.kv("noise_threshold_cores", o.noiseThreshold);
    w.kv("throughput", "generated tokens / (prefill + decode seconds), summed over the batch");
    w.kv("tpm", "throughput / per-sample memory in GiB (tokens/s/GiB); per-sample memory = slope of peak RSS against batch");
    w.kv("prefill_gflops", "prefill tokens/s x the cost model's FLOPs per token (matmuls; attention excluded)");
    w.endObj();

    w.key("models");
    w.beginArr();
    for (auto &m : models) {
      w.beginObj();
      w.kv("name", m.name);
      w.kv("path", m.path);
      w.kv("family", familyName(m.info.family));
      w.kv("vocab", m.info.vocab);
      w.kv("width", m.info.width);
      w.kv("levels", m.info.levels);
      w.kv("tokens_per_step", m.info.tokens_per_step);
      w.kv("weights_bytes", static_cast<double>(m.info.weights_bytes));
      w.kv("params_f32", m.params);
      w.kv("target_cpu", m.info.target_cpu ? m.info.target_cpu : "");
      w.key("cost_model");
      if (m.cost.present) {
        w.beginObj();
        w.kv("weight_bytes_per_token", m.cost.weightBytesPerToken);
        w.kv("flops_per_token", m.cost.flopsPerToken);
        w.kv("cache_bytes_per_1k_hiergen", m.cost.cacheHierPer1k);
        w.kv("cache_bytes_per_1k_recgen", m.cost.cacheRecPer1k);
        w.kv("vanilla_weight_bytes_per_token", m.cost.vWeightBytesPerToken);
        w.kv("vanilla_flops_per_token", m.cost.vFlopsPerToken);
        w.kv("vanilla_cache_bytes_per_1k", m.cost.vCachePer1k);
        w.kv("ratio_weight_bytes", m.cost.ratioWeight);
        w.kv("ratio_flops", m.cost.ratioFlops);
        w.kv("ratio_cache_recgen", m.cost.ratioCacheRec);
        w.kv("ratio_cache_hiergen", m.cost.ratioCacheHier);
        w.endObj();
      } else {
        w.null();
      }
      w.endObj();
    }
    w.endArr();

    w.key("results");
    w.beginArr();
    for (auto &c : cells) {
      w.beginObj();
      w.kv("model", c.model);
      w.kv("family", c.family);
      w.kv("mode", c.mode);
      w.kv("setting", c.setting);
      w.kv("prompt", c.prompt);
      w.kv("gen", c.gen);
      w.kv("complete", c.complete);
      if (!c.error.empty()) w.kv("error", c.error);
      w.key("memory");
      w.beginObj();
      w.kv("per_sample_bytes", c.memSlope);
      w.kv("intercept_bytes", c.memIntercept);
      w.kv("cache_per_sample_bytes", c.cacheSlope);
      w.kv("rss_per_sample_bytes", c.rssSlope);
      w.kv("source", c.memSource);
      w.key("points");
      w.beginArr();
      for (auto &p : c.points) {
        w.beginObj();
        w.kv("batch", p.batch);
        w.kv("peak_rss_bytes", p.peakRss);
        w.kv("cache_peak_bytes", p.cachePeak);
        w.endObj();
      }
      w.endArr();
      w.endObj();
      w.kv("budget_batch", c.budgetBatch);
      w.kv("tuned_batch", c.tunedBatch);
      w.kv("batch_capped", c.batchCapped);
      writeSummary(w, "throughput_tps", c.thr);
      writeSummary(w, "prefill_tps", c.prefill);
      writeSummary(w, "decode_tps", c.decode);
      writeSummary(w, "wall_s", c.wall);
      writeSummary(w, "batch1_decode_tps", c.b1Decode);
      writeSummary(w, "batch1_throughput_tps", c.b1Thr);
      writeSummary(w, "batch1_prefill_tps", c.b1Prefill);
      w.kv("tpm", c.tpm);
      w.kv("tpm_cache_only", c.tpmCache);
      w.kv("threads_used", c.threadsUsed);
      writeRoof(w, "roofline", c.roof);
      writeRoof(w, "roofline_batch1", c.roofB1);
      w.kv("achieved_over_roofline_decode", c.achievedDecode);
      w.kv("achieved_over_roofline_decode_batch1", c.achievedB1);
      w.kv("prefill_gflops", c.prefillGflops);
      w.kv("sgemm_gflops", c.sgemmGflops);
      w.kv("prefill_over_sgemm", c.prefillOverSgemm);
      w.kv("other_cpu_cores_max", c.otherCoresMax);
      w.kv("noisy", c.noisy);
      w.key("runs");
      w.beginArr();
      for (auto &r : c.runs) writeRun(w, r);
      w.endArr();
      w.endObj();
    }
    w.endArr();

    auto writeRunList = [&](const char *key, const std::vector<RunResult> &runs) {
      w.key(key);
      w.beginArr();
      for (auto &r : runs) {
        w.beginObj();
        w.kv("model", r.spec.model->name);
        w.kv("mode", r.spec.mode.label);
        w.kv("context", r.spec.prompt + r.spec.gen);
        w.key("run");
        writeRun(w, r);
        int th = threadsFrom({r});
        Roofline rf = roofline(*r.spec.model, r.spec.mode.label, r.spec.prompt + r.spec.gen / 2.0, 1, mc, th);
        writeRoof(w, "roofline", rf);
        w.kv("achieved_over_roofline_decode", safeDiv(r.decodeTps(), rf.decodeTps));
        w.kv("achieved_over_roofline_prefill", safeDiv(r.prefillTps(), rf.prefillTps));
        double fpt = r.spec.model->cost.flopsPerToken;
        double sgf = sg.available ? (th >= 2 ? sg.gflops2 : sg.gflops1) : NAN;
        w.kv("prefill_over_sgemm", safeDiv(r.prefillTps() * fpt / 1e9, sgf));
        w.endObj();
      }
      w.endArr();
    };
    if (o.suite == "sweep") writeRunList("sweep", sweepRuns);
    if (o.suite == "roofline") writeRunList("roofline_runs", rooflineRuns);

    // ratios and targets
    w.key("ratios");
    w.beginObj();
    for (auto &sd : settings) {
      const Cell *v = findCell("vanilla", sd.name), *bl = findCell("block", sd.name),
                 *hg = findCell("hiergen", sd.name), *rg = findCell("recgen", sd.name);
      w.key(sd.name);
      w.beginObj();
      auto pair = [&](const char *name, const Cell *a, const Cell *b) {
        if (!a || !b) return;
        w.key(name);
        w.beginObj();
        w.kv("tpm", safeDiv(a->tpm, b->tpm));
        w.kv("throughput", safeDiv(a->thr.median, b->thr.median));
        w.kv("per_sample_memory", safeDiv(a->memSlope, b->memSlope));
        w.kv("decode_tps", safeDiv(a->decode.median, b->decode.median));
        w.kv("batch1_decode_tps", safeDiv(a->b1Decode.median, b->b1Decode.median));
        w.endObj();
      };
      pair("recgen_over_vanilla", rg, v);
      pair("hiergen_over_vanilla", hg, v);
      pair("hiergen_over_block", hg, bl);
      pair("recgen_over_block", rg, bl);
      pair("block_over_vanilla", bl, v);
      // The cost model's prediction of RecGen/vanilla TPM: per-sample cache ratio from the
      // compile-time cache plan, throughput from its roofline at each run's tuned batch.
      if (rg && v && rg->m->cost.present) {
        const CostModel &pc = rg->m->cost;
        double vCache = v->m->cost.present && v->m->cost.cacheHierPer1k > 0 ? v->m->cost.cacheHierPer1k : pc.vCachePer1k;
        double memRatio = safeDiv(pc.cacheRecPer1k, vCache);  // RecGen / vanilla per sample
        double thrRatio = safeDiv(rg->roof.decodeTps, v->roof.decodeTps);
        double predicted = safeDiv(thrRatio, memRatio);
        double measured = safeDiv(rg->tpm, v->tpm);
        w.key("cost_model_recgen_over_vanilla");
        w.beginObj();
        w.kv("predicted_cache_ratio", memRatio);
        w.kv("predicted_throughput_ratio", thrRatio);
        w.kv("predicted_tpm_ratio", predicted);
        w.kv("measured_tpm_ratio", measured);
        w.kv("measured_over_predicted", safeDiv(measured, predicted));
        // The same with the measured per-sample KV-cache bytes instead of the RSS slope (the
        // cost model predicts the cache only).
        w.kv("measured_tpm_ratio_cache_only", safeDiv(rg->tpmCache, v->tpmCache));
        w.kv("measured_cache_only_over_predicted", safeDiv(safeDiv(rg->tpmCache, v->tpmCache), predicted));
        // Batch 1: weight bytes per token alone (1 / ratio_weight_bytes) and the batch-1
        // rooflines (weights + KV reads at the mean context).
        w.kv("predicted_batch1_decode_ratio_weight_bytes", safeDiv(1.0, pc.ratioWeight));
        w.kv("predicted_batch1_decode_ratio_roofline", safeDiv(rg->roofB1.decodeTps, v->roofB1.decodeTps));
        w.kv("measured_batch1_decode_ratio", safeDiv(rg->b1Decode.median, v->b1Decode.median));
        w.endObj();
      }
      w.key("achieved_over_roofline_decode");
      w.beginObj();
      for (auto &c : cells)
        if (c.setting == sd.name) w.kv(c.model + "/" + c.mode, c.achievedDecode);
      w.endObj();
      w.key("prefill_over_sgemm");
      w.beginObj();
      for (auto &c : cells)
        if (c.setting == sd.name) w.kv(c.model + "/" + c.mode, c.prefillOverSgemm);
      w.endObj();
      w.endObj();
    }
    w.endObj();

    // ---- peers (run_peers.py's JSON as it wrote it) and photon / peer at equal batch
    std::vector<const Json *> peerRuns;
    if (const Json *pr = peersRan ? jget(&peersJson, "runs") : nullptr)
      if (pr->is_array())
        for (auto &r : *pr) peerRuns.push_back(&r);
    w.key("peers");
    if (peersRan) w.value(peersJson);
    else if (!peersError.empty()) {
      w.beginObj();
      w.kv("error", peersError);
      w.endObj();
    } else w.null();
    w.key("peer_ratios");
    w.beginArr();
    for (const Json *pr : peerRuns) {
      const Json *ps = jget(pr, "setting"), *pp = jget(pr, "peer"), *pk = jget(pr, "kind");
      if (!ps || !pp || !pk) continue;
      const Cell *v = findCell("vanilla", jstr(ps));
      if (!v) continue;
      int b = static_cast<int>(jnumber(pr, "batch", 1));
      double pd = jnumber(pr, "decode_tps", NAN), pf = jnumber(pr, "prefill_tps", NAN),
             pt = jnumber(pr, "throughput_tps", NAN);
      double d = atBatch(v, b, &RunResult::decodeTps), f = atBatch(v, b, &RunResult::prefillTps),
             t = atBatch(v, b, &RunResult::throughput);
      w.beginObj();
      w.kv("setting", jstr(ps));
      w.kv("peer", jstr(pp));
      w.kv("kind", jstr(pk));
      w.kv("batch", b);
      w.kv("photon_decode_tps", d);
      w.kv("peer_decode_tps", pd);
      w.kv("decode_photon_over_peer", safeDiv(d, pd));
      w.kv("photon_prefill_tps", f);
      w.kv("peer_prefill_tps", pf);
      w.kv("prefill_photon_over_peer", safeDiv(f, pf));
      w.kv("photon_throughput_tps", t);
      w.kv("peer_throughput_tps", pt);
      w.kv("throughput_photon_over_peer", safeDiv(t, pt));
      w.endObj();
    }
    w.endArr();

    w.key("targets");
    w.beginObj();
    {
      const Cell *v = findCell("vanilla", "DE"), *rg = findCell("recgen", "DE");
      if (v && rg) {
        double r = safeDiv(rg->b1Decode.median, v->b1Decode.median);
        w.key("recgen_batch1_decode_speedup");
        w.beginObj();
        w.kv("value", r);
        w.kv("target", 5.0);
        w.kv("met", std::isfinite(r) && r >= 5.0);
        w.kv("cost_model_weight_bytes", safeDiv(1.0, rg->m->cost.ratioWeight));
        w.endObj();
      }
      if (v) {
        double r = v->achievedB1;
        w.key("vanilla_batch1_decode_over_bandwidth_roofline");
        w.beginObj();
        w.kv("value", r);
        w.kv("target", 0.9);
        w.kv("met", std::isfinite(r) && r >= 0.9);
        w.endObj();
        for (const Json *pr : peerRuns) {
          const Json *ps = jget(pr, "setting"), *pp = jget(pr, "peer");
          if (!ps || !pp || jstr(ps) != "DE" || jstr(pp) != "onnxruntime" || jnumber(pr, "batch", 1) != 1) continue;
          double x = safeDiv(v->b1Decode.median, jnumber(pr, "decode_tps", NAN));
          w.key("vanilla_batch1_decode_over_onnxruntime");
          w.beginObj();
          w.kv("value", x);
          w.kv("target", 1.0);
          w.kv("met", std::isfinite(x) && x > 1.0);
          w.endObj();
          break;
        }
      }
      if (v && rg && rg->m->cost.present) {
        const CostModel &pc = rg->m->cost;
        double vCache = v->m->cost.present && v->m->cost.cacheHierPer1k > 0 ? v->m->cost.cacheHierPer1k : pc.vCachePer1k;
        double predicted = safeDiv(safeDiv(rg->roof.decodeTps, v->roof.decodeTps), safeDiv(pc.cacheRecPer1k, vCache));
        double r = safeDiv(safeDiv(rg->tpm, v->tpm), predicted);
        w.key("de_tpm_ratio_over_cost_model");
        w.beginObj();
        w.kv("value", r);
        w.kv("target", 0.9);
        w.kv("met", std::isfinite(r) && r >= 0.9);
        w.endObj();
      }
    }
    w.endObj();
    noisyRuns = runsTotal = 0;
    otherMax = 0;
    auto countRuns = [&](const std::vector<RunResult> &rs) {
      for (auto &r : rs) {
        ++runsTotal;
        noisyRuns += r.noisy;
        otherMax = std::max(otherMax, r.otherCores);
      }
    };
    for (auto &c : cells) countRuns(c.runs);
    countRuns(sweepRuns);
    countRuns(rooflineRuns);
    w.key("noise");
    w.beginObj();
    w.kv("runs", runsTotal);
    w.kv("noisy_runs", noisyRuns);
    w.kv("other_cpu_cores_max", otherMax);
    w.endObj();
    w.kv("all_ok", !anyFailed);
    w.endObj();
    return w.str() + "\n";
  };

  // Rewrites the JSON file (temporary file + rename: a reader never sees half a file).
  bool jsonWriteFailed = false;
  auto emit = [&](bool complete) {
    if (o.json.empty() || jsonWriteFailed) return;
    std::string text = buildJson(complete);
    std::string tmp = o.json + ".tmp";
    {
      std::ofstream f(tmp);
      f << text;
      f.flush();
      if (!f) {
        std::fprintf(stderr, "photon-bench: cannot write %s: %s\n", tmp.c_str(), std::strerror(errno));
        jsonWriteFailed = true;
        return;
      }
    }
    if (std::rename(tmp.c_str(), o.json.c_str()) != 0) {
      std::fprintf(stderr, "photon-bench: cannot rename %s to %s: %s\n", tmp.c_str(), o.json.c_str(), std::strerror(errno));
      jsonWriteFailed = true;
    }
  };
  emit(false);  // the machine limits and the sgemm reference

  if (o.suite == "paper" || o.suite == "quick") {
    for (auto &m : models) {
      for (auto &md : modesOf(m)) {
        for (auto &sd : settings) {
          cells.emplace_back();
          Cell &c = cells.back();
          c.m = &m;
          c.model = m.name;
          c.family = familyName(m.info.family);
          c.mode = md.label;
          c.setting = sd.name;
          c.prompt = sd.prompt;
          c.gen = sd.gen;
          if (o.verbose) std::fprintf(stderr, "%s %s %s\n", m.name.c_str(), md.label.c_str(), sd.name.c_str());
          // 1. memory slope
          std::vector<double> xs, ys, yc;
          for (int b : o.slopeBatches) {
            RunResult r = runOne({&m, md, sd.prompt, sd.gen, b}, o);
            logRun(o, r);
            c.runs.push_back(r);
            if (!r.ok) {
              anyFailed = true;
              c.error = r.error;
            } else {
              c.points.push_back({b, static_cast<double>(r.peakRss), static_cast<double>(r.cachePeak)});
              xs.push_back(b);
              ys.push_back(static_cast<double>(r.peakRss));
              yc.push_back(static_cast<double>(r.cachePeak));
            }
            emit(false);
          }
          double a = 0, s = 0, ca = 0, cs = 0;
          if (fitLine(xs, ys, a, s)) c.memSlope = s, c.memIntercept = a;
          if (fitLine(xs, yc, ca, cs)) c.cacheSlope = cs;
          c.rssSlope = c.memSlope;
          if (std::isfinite(c.cacheSlope) && c.cacheSlope > 0 &&
              !(std::isfinite(c.memSlope) && c.memSlope >= c.cacheSlope)) {
            // The peak RSS did not resolve the per-sample growth (it must hold at least the
            // KV cache; tiny models are below page/allocator granularity): use the cache.
            c.memSlope = c.cacheSlope;
            c.memSource = "cache";
          }
          if (!c.points.empty() && std::isfinite(c.memSlope) && c.memSlope > 0) {
            // The budget holds the per-sample memory of the batch (weights and code are shared
            // by any batch and are not part of it, as in the paper's protocol).
            c.budgetBatch = static_cast<int>(std::floor(budgetBytes / c.memSlope));
            c.budgetBatch = std::max(1, c.budgetBatch);
            c.tunedBatch = std::min(c.budgetBatch, o.maxBatch);
            c.batchCapped = c.budgetBatch > o.maxBatch;
            // 2. repeats at the tuned batch (slope runs of that batch count)
            int have = 0;
            for (auto &r : c.runs)
              if (r.ok && r.spec.batch == c.tunedBatch) ++have;
            while (have < o.repeats) {
              RunResult r = runOne({&m, md, sd.prompt, sd.gen, c.tunedBatch}, o);
              logRun(o, r);
              c.runs.push_back(r);
              emit(false);
              if (!r.ok) {
                anyFailed = true;
                c.error = r.error;
                break;
              }
              ++have;
            }
          }
          c.complete = true;
          emit(false);
        }
      }
    }
  }

  if (o.suite == "sweep") {
    for (auto &m : models)
      for (auto &md : modesOf(m))
        for (int ctx : o.contexts) {
          int gen = 128;
          int prompt = std::max(1, ctx - gen);
          RunResult r = runOne({&m, md, prompt, gen, 1}, o);
          logRun(o, r);
          if (!r.ok) anyFailed = true;
          sweepRuns.push_back(r);
          emit(false);
          if (!r.ok || r.wall > o.sweepCap) break;  // longer contexts would take longer still
        }
  }

  if (o.suite == "roofline") {
    for (auto &m : models)
      for (auto &md : modesOf(m)) {
        RunResult r = runOne({&m, md, 2048, 64, 1}, o);
        logRun(o, r);
        if (!r.ok) anyFailed = true;
        rooflineRuns.push_back(r);
        emit(false);
      }
  }

  // ---- peers: run_peers.py on the vanilla model, the same lengths, after photon's runs
  if (!o.peers.empty() && (o.suite == "paper" || o.suite == "quick")) {
    const Model *van = nullptr;
    for (auto &m : models)
      if (m.info.family == PHOTON_FAMILY_VANILLA) van = &m;
    std::string dir = o.peerModel;
    if (dir.empty() && van) {
      dir = van->path;
      while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
      if (dir.size() > 7 && dir.compare(dir.size() - 7, 7, ".photon") == 0) dir.resize(dir.size() - 7);
    }
    int threads = o.peerThreads;
    if (threads <= 0) {
      threads = 1;
      for (auto &c : cells)
        if (c.family == "vanilla") threads = std::max(threads, threadsFrom(c.runs));
    }
    struct stat sb;
    if (dir.empty() || stat(dir.c_str(), &sb) != 0) {
      peersError = "no peer model directory (--peer-model DIR with step.onnx and model-f32/f16.gguf)";
    } else {
      std::string peersOut = o.json.empty() ? "/tmp/photon-bench-peers-" + std::to_string(getpid()) + ".json"
                                            : o.json + ".peers.json";
      std::string list, lens, sets;
      for (auto &p : o.peers) list += (list.empty() ? "" : ",") + p;
      for (auto &s : settings) {
        lens += (lens.empty() ? "" : ",") + s.name + "=" + std::to_string(s.prompt) + "/" + std::to_string(s.gen);
        sets += (sets.empty() ? "" : ",") + s.name;
      }
      std::string script = o.peersScript.empty() ? PHOTON_BENCH_PEERS_SCRIPT : o.peersScript;
      std::string cmd = "/usr/bin/python3 '" + script + "' --model '" + dir + "' --peers " + list +
                        " --threads " + std::to_string(threads) + " --settings " + sets + " --lengths " + lens +
                        " --out '" + peersOut + "' " + o.peerArgs + " 1>&2";
      if (o.verbose) std::fprintf(stderr, "peers: %s\n", cmd.c_str());
      std::fflush(stderr);
      int rc = std::system(cmd.c_str());
      std::string text, err;
      if (!readFile(peersOut, text)) {
        peersError = "run_peers.py wrote no JSON (exit status " + std::to_string(rc) + ")";
      } else {
        if (!parseJson(text, peersJson, err)) peersError = "run_peers.py's JSON: " + err;
        else peersRan = true;
      }
      if (rc != 0 && peersRan) peersError = "run_peers.py exit status " + std::to_string(rc) + " (see peers.errors)";
    }
    if (!peersError.empty()) std::fprintf(stderr, "photon-bench: peers: %s\n", peersError.c_str());
  }

  emit(true);
  for (auto &c : cells) finishCell(c);

  // ---- summary on stdout
  std::printf("%-16s %-8s %-3s %6s %12s %12s %12s %12s %12s %10s\n", "model", "mode", "set", "batch",
              "thr tok/s", "decode tok/s", "b1 decode", "MiB/sample", "TPM K", "pf/sgemm");
  for (auto &c : cells)
    std::printf("%-16s %-8s %-3s %6d %12.1f %12.1f %12.1f %12.2f %12.3f %10.3f%s%s\n", c.model.c_str(),
                c.mode.c_str(), c.setting.c_str(), c.tunedBatch, c.thr.median, c.decode.median,
                c.b1Decode.median, c.memSlope / 1048576.0, c.tpm / 1000.0, c.prefillOverSgemm,
                c.noisy ? " noisy" : "", c.error.empty() ? "" : " FAILED");
  for (auto &r : sweepRuns)
    std::printf("sweep %-16s %-8s ctx %6d prefill %10.1f tok/s decode %8.1f tok/s%s\n",
                r.spec.model->name.c_str(), r.spec.mode.label.c_str(), r.spec.prompt + r.spec.gen,
                r.prefillTps(), r.decodeTps(), r.ok ? "" : " FAILED");
  for (auto &r : rooflineRuns)
    std::printf("roofline %-16s %-8s decode %8.1f tok/s%s\n", r.spec.model->name.c_str(),
                r.spec.mode.label.c_str(), r.decodeTps(), r.ok ? "" : " FAILED");
  if (sg.available)
    std::printf("sgemm reference (OpenBLAS, M = %d): %.1f/%.1f GFLOP/s (1/2 threads)\n", sg.m, sg.gflops1, sg.gflops2);
  else
    std::printf("sgemm reference: not measured: %s\n", sg.error.c_str());
  std::printf("machine: read %.1f/%.1f GB/s (1/2 threads), FP32 %.1f/%.1f GFLOP/s; %d of %d runs noisy; loadavg %s -> %s\n",
              mc.bw1, mc.bw2, mc.flops1 / 1e9, mc.flops2 / 1e9, noisyRuns, runsTotal, loadavgStart.c_str(),
              loadavg().c_str());
  if (jsonWriteFailed) return 2;
  for (auto &m : models) photon_model_free(m.handle);
  return anyFailed ? 1 : 0;
}
