// photon-bench's shared types: options, models, runs, cells and the state of a suite; one
// file per concern implements them (options.cpp, setup.cpp, measure.cpp, analysis.cpp,
// suites.cpp, peers.cpp, report.cpp). See docs/benchmarks.md for the protocol.
#ifndef PHOTON_BENCH_BENCH_H
#define PHOTON_BENCH_BENCH_H

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "benchjson.h"
#include "machine.h"
#include "sgemm_ref.h"
#include "photon/photon.h"

namespace bench {

// ------------------------------------------------------------------------------ options ---

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

/// Parses the command line into `o` (defaults of the suite applied). Returns -1 to go on, or
/// the exit status (0 after --help, 2 on bad usage).
int parseOptions(int argc, char **argv, Options &o);
double nowSec();
std::vector<std::string> splitList(const std::string &s);

// ------------------------------------------------------------------------------ models ----

struct CostModel {
  bool present = false;
  double weightBytesPerToken = 0, flopsPerToken = 0;
  /// FLOPs per prompt token of the prefill (the encoders only for PHOTON / Block);
  /// flopsPerToken for artifacts older than the field.
  double prefillFlopsPerToken = 0;
  /// RecGen's per-token weight bytes and FLOPs (no level-1 encoder at decode time); the
  /// totals for artifacts older than the field.
  double recWeightBytesPerToken = 0, recFlopsPerToken = 0;
  double cacheHierPer1k = 0, cacheRecPer1k = 0;
  double vWeightBytesPerToken = 0, vFlopsPerToken = 0, vCachePer1k = 0, vLayers = 0;
  double ratioCacheRec = 0, ratioCacheHier = 0, ratioWeight = 0, ratioFlops = 0;
  // cost_model.non_cache_bytes_per_sequence (windows + logits) and the vanilla model's; -1:
  // an older manifest without them (the prediction then counts the caches alone)
  double nonCachePerSeq = -1, vNonCachePerSeq = -1;
  // RecGen's: non_cache_bytes_per_sequence.recgen_total (the second engine thread's stage
  // workspace of the overlapped top-level step included); nonCachePerSeq when absent
  double recgenNonCachePerSeq = -1;
};

struct Model {
  std::string path, name;
  photon_model *handle = nullptr;
  photon_model_info info{};
  CostModel cost;
  double params = 0;  // weights bytes / 4 (f32)
  double windowBytes = 0;  // one sequence's token-decoder windows (token_next's cache argument x streams)
  double plannedBytesPerSeq = -1;  // manifest memory_plan.per_sequence_bytes (-1: none)
};

struct ModeSpec {
  std::string label;  // vanilla, block, hiergen, recgen
  photon_mode mode;
};

std::string baseName(std::string p);
bool readFile(const std::string &path, std::string &out);
void readCostModel(Model &m);
const char *familyName(photon_family f);
std::vector<ModeSpec> modesOf(const Model &m);

// ------------------------------------------------------------------------------ one run ---

struct RunSpec {
  const Model *model;
  ModeSpec mode;
  int prompt, gen, batch;
};

/// Where a run's memory went (plain data: it crosses the child's pipe). Heap figures are
/// peaks of live bytes from heapstat (model.so = the compiled stages' intermediates,
/// libphoton.so = the runtime's logits, windows, batch tables and sequences).
struct MemParts {
  int32_t tracked;  // heapstat found model.so and counted
  int32_t cacheLevels;
  int32_t cacheLevelId[PHOTON_MAX_LEVELS];
  uint64_t cachePeakLevel[PHOTON_MAX_LEVELS];
  int64_t heapPeak, stagePeak, runtimePeak;
  uint64_t stageMallocs, stageBytes, untracked;
  uint64_t mallocHeld, mallocFree;  // glibc arenas + mmapped chunks, free bytes in them (end)
  // File-backed resident bytes before and after the run: the weights' pages the run touched
  // (the embedding rows of its tokens grow with the batch; shared, not per-sample memory)
  uint64_t rssFileBefore, rssFileAfter;
};

struct RunResult {
  RunSpec spec;
  MemParts mem{};
  bool ok = false;
  std::string error;
  double wall = 0, prefillSeconds = 0, decodeSeconds = 0;
  uint64_t prefillTokens = 0, decodeTokens = 0, cachePeak = 0, generated = 0;
  uint64_t peakRss = 0, rssBefore = 0;
  int peakBatch = 0;
  double ownCpu = 0, otherCores = 0, elapsed = 0;
  bool noisy = false;
  /// Read bandwidth (GB/s, 1 and 2 threads) measured right before and right after the run,
  /// the larger of the two: the machine's bandwidth moves by 2x within minutes on a shared
  /// VM, so a run's roofline uses what the machine gave around that run.
  double bw1 = 0, bw2 = 0;
  double throughput() const {  // generated tokens per second of the whole run
    double t = prefillSeconds + decodeSeconds;
    return t > 0 ? static_cast<double>(generated) / t : 0;
  }
  double prefillTps() const { return prefillSeconds > 0 ? prefillTokens / prefillSeconds : 0; }
  double decodeTps() const { return decodeSeconds > 0 ? decodeTokens / decodeSeconds : 0; }
};

/// One run in a forked child; its peak RSS is that of the run alone.
RunResult runOne(const RunSpec &rs, const Options &o);

// ------------------------------------------------------------------------------ stats -----

struct Summary {
  double median = NAN, min = NAN, max = NAN;
  int n = 0;
};

Summary summarize(std::vector<double> v);
/// Least-squares line y = a + b x.
bool fitLine(const std::vector<double> &x, const std::vector<double> &y, double &a, double &b);

// ------------------------------------------------------------------------------ roofline --

struct Machine {
  double bw1 = 0, bw2 = 0;        // GB/s
  double flops1 = 0, flops2 = 0;  // FLOP/s
  double otherCores = 0, seconds = 0;
};

struct Roofline {
  double decodeTps = 0;   // bandwidth/compute bound of decode at the run's batch
  double prefillTps = 0;  // compute bound of prefill
  double bytesPerToken = 0, flopsPerToken = 0;
  bool bandwidthBound = true;
};

Roofline roofline(const Model &m, const std::string &mode, double avgContext, int batch,
                  const Machine &mc, int threads);
int threadsFrom(const std::vector<RunResult> &runs);
/// The machine's limits with the read bandwidth measured around `runs` (RunResult::bw1/bw2).
Machine aroundRuns(const Machine &mc, const std::vector<RunResult> &runs);

// ------------------------------------------------------------------------------ results ---

struct SettingDef {
  std::string name;
  int prompt, gen;
};

struct MemPoint {
  int batch;
  double peakRss, cachePeak;
  double rssBefore = 0;
  MemParts mem{};
  double windows = 0;  // token-decoder windows: batch x the model's window bytes (HierGen/RecGen)
};

/// Per-sample bytes of each part of memory: slopes against the batch of the slope runs.
struct MemBreakdown {
  bool present = false;
  std::vector<std::pair<int, double>> cacheLevels;  // (level id, bytes per sample)
  double cache = NAN, windows = NAN, stage = NAN, runtime = NAN, runtimeOther = NAN,
         heapOther = NAN, heap = NAN, rss = NAN, allocator = NAN, weightPages = NAN;
  double stageMallocsPerToken = NAN;
};

struct Cell {  // one model x mode x setting of the paper table
  std::string model, family, mode, setting;
  int prompt = 0, gen = 0;
  std::vector<MemPoint> points;
  MemBreakdown parts;
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
  double bw1 = 0, bw2 = 0; ///< the bandwidth its rooflines use (aroundRuns), GB/s
  double achievedDecode = NAN, achievedB1 = NAN;
  double otherCoresMax = 0;
  bool noisy = false;
  std::vector<RunResult> runs;
  std::string error;
  const Model *m = nullptr;
};

/// Everything one invocation measured so far (the JSON is rebuilt from it after every run).
struct Bench {
  Options o;
  std::vector<Model> models;
  Machine mc;
  SgemmRef sg;
  std::vector<SettingDef> settings;
  std::string loadavgStart;
  bool anyFailed = false;
  // A deque: cells are appended while references to earlier ones are held.
  std::deque<Cell> cells;
  std::vector<RunResult> sweepRuns;
  std::vector<RunResult> rooflineRuns;
  double budgetBytes = 0;
  Json peersJson;
  bool peersRan = false;
  std::string peersError;
  int noisyRuns = 0, runsTotal = 0;
  double otherMax = 0;
  bool jsonWriteFailed = false;
};

/// Loads the models, measures the machine's limits and the sgemm reference, fixes the settings.
/// Returns -1 to go on or the exit status.
int setup(Bench &B);
/// Everything derived from a cell's runs (idempotent: called on partial cells too).
void finishCell(Bench &B, Cell &c);
/// The per-sample slope of each part of memory over the slope runs of a cell.
MemBreakdown memBreakdown(const Cell &c);
double safeDiv(double a, double b);
/// The cost model's per-sample memory of RecGen over vanilla at the cells' context (prompt +
/// generated): caches at that context plus the per-sequence bytes besides them.
double predictedMemoryRatio(const Cell &rg, const Cell &v);
const Cell *findCell(Bench &B, const std::string &mode, const std::string &setting);
/// Median of a metric over the ok runs of a cell at one batch size.
double atBatch(const Cell *c, int batch, double (RunResult::*metric)() const);

void runPaperSuite(Bench &B);
void runSweepSuite(Bench &B);
void runRooflineSuite(Bench &B);
/// run_peers.py on the vanilla model, the same lengths, after photon's runs.
void runPeers(Bench &B);

std::string loadavg();
void logRun(const Options &o, const RunResult &r);
/// The whole result document, from what has run so far.
std::string buildJson(Bench &B, bool complete);
/// Rewrites the JSON file (temporary file + rename: a reader never sees half a file).
void emit(Bench &B, bool complete);
/// The summary table on stdout.
void printSummary(Bench &B);

}  // namespace bench

#endif
