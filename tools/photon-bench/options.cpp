// photon-bench's command line: usage text, parsing, the defaults of each suite.
#include <chrono>
#include <sstream>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench.h"

namespace bench {

namespace {

const char *kUsage = R"(usage: photon-bench --suite paper|sweep|roofline|quick|machine --model DIR.photon [--model ...]
                    [--json OUT] [options]

Measures compiled photon artifacts with the paper's protocol: PF (2,048 prompt / 128
generated tokens) and DE (128 / 2,048) for every model and mode (vanilla, Block, PHOTON
HierGen, PHOTON RecGen). Per-sample memory is the slope of the peak memory against the batch
size; the batch is then tuned to fill the memory budget; throughput, prefill and decode
tokens/s and TPM (tokens/s per GiB of per-sample memory) are medians over repeats with their
spread. The machine's limits are measured in the same process (read bandwidth with 1 and 2
threads, peak FP32 FLOP/s of an FMA loop, AVX-512 where present) and give each run's roofline. Every run records
the CPU time other processes used meanwhile (/proc/stat) and is flagged noisy above a
threshold.

suites
  paper     PF and DE, memory slope over --slope-batches, tuned batch, repeats (default 3)
  sweep     context 512 .. 32768: prefill of the context then 128 decoded tokens, batch 1
  roofline  machine limits (longer), batch-1 decode of every mode at context 2,048
  quick     smoke test (< 1 minute on the small test fixtures): scaled-down PF/DE, 1 repeat
  machine   the machine's limits and the OpenBLAS sgemm reference on the models' shapes only
            (no runs): for scripts that time other programs in the same sitting

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

bool parseIntList(const std::string &s, std::vector<int> &out);

}  // namespace

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

namespace {

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

}  // namespace

int parseOptions(int argc, char **argv, Options &o) {
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
    } else if (a == "--suite") o.suite = need("paper, sweep, roofline, quick or machine");
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
  if (o.suite != "paper" && o.suite != "sweep" && o.suite != "roofline" && o.suite != "quick" &&
      o.suite != "machine") {
    std::fprintf(stderr, "photon-bench: --suite must be paper, sweep, roofline, quick or machine%s\n",
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
  return -1;
}

}  // namespace bench
