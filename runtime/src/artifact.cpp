#include "artifact.h"
#include "jsonio.h"

#include "photon/cuda.h"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace photon::rt {

std::string formatBytes(double bytes) {
  const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 4) { bytes /= 1024.0; ++u; }
  char buf[64];
  if (u == 0) std::snprintf(buf, sizeof buf, "%.0f B", bytes);
  else std::snprintf(buf, sizeof buf, "%.1f %s", bytes, units[u]);
  return buf;
}

Status readFile(const std::string &path, std::string &out) {
  std::FILE *f = std::fopen(path.c_str(), "rb");
  if (!f) return error(PHOTON_ERR_IO, "cannot open '" + path + "': " + std::strerror(errno));
  out.clear();
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  bool bad = std::ferror(f);
  std::fclose(f);
  if (bad) return error(PHOTON_ERR_IO, "error reading '" + path + "'");
  return Status::ok();
}

bool CacheSpec::usedIn(const std::string &mode) const {
  if (modes.empty()) return true;
  for (const auto &m : modes)
    if (m == mode) return true;
  return false;
}

const StageSpec *Manifest::stage(const std::string &name) const {
  for (const auto &s : stages)
    if (s.name == name) return &s;
  return nullptr;
}
const CacheSpec *Manifest::cache(int level) const {
  for (const auto &c : caches)
    if (c.level == level) return &c;
  return nullptr;
}
int Manifest::tokensPerStep() const {
  if (family == PHOTON_FAMILY_VANILLA) return 1;
  if (family == PHOTON_FAMILY_FORWARD) return lengthMultiple;
  int t = 1;
  for (int c : chunkSizes) t *= c;
  return t;
}

// ------------------------------------------------------------------ manifest parsing

namespace {

struct Ctx {
  std::string file;
  Status fail(const std::string &key, const std::string &what) const {
    return error(PHOTON_ERR_FORMAT, file + ": " + key + ": " + what +
                                        " (re-run photon-compile to regenerate the artifact)");
  }
};

Status getObj(const Ctx &c, const Json &v, const char *key, const Json *&out,
              bool required = true) {
  out = jsonGet(v, key);
  if (!out) return required ? c.fail(key, "missing") : Status::ok();
  if (!out->is_object()) return c.fail(key, std::string("expected an object, got ") +
                                              jsonKindName(*out));
  return Status::ok();
}
Status getStr(const Ctx &c, const Json &v, const char *key, std::string &out,
              bool required = true) {
  const Json *x = jsonGet(v, key);
  if (!x) return required ? c.fail(key, "missing") : Status::ok();
  if (!x->is_string()) return c.fail(key, std::string("expected a string, got ") +
                                            jsonKindName(*x));
  out = x->get<std::string>();
  return Status::ok();
}
template <typename T>
Status getInt(const Ctx &c, const Json &v, const char *key, T &out, bool required = true,
              int64_t minValue = 0) {
  const Json *x = jsonGet(v, key);
  if (!x) return required ? c.fail(key, "missing") : Status::ok();
  if (!jsonIsInteger(*x)) return c.fail(key, "expected an integer");
  if (jsonInt(*x) < minValue)
    return c.fail(key, "must be >= " + std::to_string(minValue) + ", got " +
                           std::to_string(jsonInt(*x)));
  out = static_cast<T>(jsonInt(*x));
  return Status::ok();
}
Status getStrList(const Ctx &c, const Json &v, const char *key,
                  std::vector<std::string> &out, bool required = true) {
  const Json *x = jsonGet(v, key);
  if (!x) return required ? c.fail(key, "missing") : Status::ok();
  if (!x->is_array()) return c.fail(key, "expected an array of strings");
  out.clear();
  for (const auto &e : (*x)) {
    if (!e.is_string()) return c.fail(key, "expected an array of strings");
    out.push_back(e.get<std::string>());
  }
  return Status::ok();
}

} // namespace

Status parseManifest(const std::string &text, const std::string &file, Manifest &m) {
  Ctx c{file};
  Json root;
  std::string err;
  if (!parseJson(text, root, err))
    return error(PHOTON_ERR_FORMAT, file + ": invalid JSON at " + err);
  if (!root.is_object()) return c.fail("(root)", "expected a JSON object");
  std::string format;
  PHOTON_RETURN_IF_ERROR(getStr(c, root, "format", format));
  if (format != "photon-artifact")
    return c.fail("format", "expected \"photon-artifact\", got \"" + format + "\"");
  PHOTON_RETURN_IF_ERROR(getInt(c, root, "format_version", m.formatVersion));
  if (m.formatVersion != PHOTON_ARTIFACT_FORMAT_VERSION)
    return error(PHOTON_ERR_FORMAT,
                 file + ": artifact format_version " + std::to_string(m.formatVersion) +
                     " is not supported by this runtime (it reads version " +
                     std::to_string(PHOTON_ARTIFACT_FORMAT_VERSION) +
                     "); recompile the model with a photon-compile that matches this runtime (" +
                     PHOTON_STAGE_ABI + ")");
  PHOTON_RETURN_IF_ERROR(getStr(c, root, "abi", m.abi));
  if (m.abi != PHOTON_STAGE_ABI)
    return error(PHOTON_ERR_ABI, file + ": stage ABI \"" + m.abi + "\" is not \"" +
                                     PHOTON_STAGE_ABI +
                                     "\"; recompile the model with a matching photon-compile");

  const Json *comp = nullptr;
  PHOTON_RETURN_IF_ERROR(getObj(c, root, "compiler", comp, false));
  if (comp) {
    getStr(c, *comp, "name", m.compilerName, false);
    getStr(c, *comp, "version", m.compilerVersion, false);
  }

  const Json *target = nullptr;
  PHOTON_RETURN_IF_ERROR(getObj(c, root, "target", target));
  PHOTON_RETURN_IF_ERROR(getStr(c, *target, "kind", m.targetKind));
  PHOTON_RETURN_IF_ERROR(getStr(c, *target, "triple", m.targetTriple, false));
  PHOTON_RETURN_IF_ERROR(getStr(c, *target, "cpu", m.targetCpu, false));
  PHOTON_RETURN_IF_ERROR(getStrList(c, *target, "features", m.targetFeatures, false));
  PHOTON_RETURN_IF_ERROR(getStrList(c, *target, "archs", m.targetArchs, false));

  const Json *model = nullptr;
  PHOTON_RETURN_IF_ERROR(getObj(c, root, "model", model));
  PHOTON_RETURN_IF_ERROR(getStr(c, *model, "family", m.familyName));
  if (m.familyName == "photon") m.family = PHOTON_FAMILY_PHOTON;
  else if (m.familyName == "block") m.family = PHOTON_FAMILY_BLOCK;
  else if (m.familyName == "vanilla") m.family = PHOTON_FAMILY_VANILLA;
  else if (m.familyName == "forward") m.family = PHOTON_FAMILY_FORWARD;
  else return c.fail("model.family", "expected \"photon\", \"block\", \"vanilla\" or "
                                     "\"forward\", got \"" + m.familyName + "\"");
  PHOTON_RETURN_IF_ERROR(getInt(c, *model, "vocab", m.vocab, true, 1));
  // A forward-only artifact's width is unknown when its hierarchy was not recognized.
  PHOTON_RETURN_IF_ERROR(getInt(c, *model, "width", m.width,
                                m.family != PHOTON_FAMILY_FORWARD, 1));
  PHOTON_RETURN_IF_ERROR(getInt(c, *model, "max_context", m.maxContext, true, 1));
  if (m.family == PHOTON_FAMILY_FORWARD) {
    PHOTON_RETURN_IF_ERROR(getInt(c, *model, "length_multiple", m.lengthMultiple, false, 1));
    if (m.lengthMultiple > 65536)
      return c.fail("model.length_multiple", "expected an integer in [1, 65536]");
  } else if (m.family != PHOTON_FAMILY_VANILLA) {
    PHOTON_RETURN_IF_ERROR(getInt(c, *model, "levels", m.levels, true, 1));
    if (m.levels > PHOTON_MAX_LEVELS)
      return c.fail("model.levels", "at most " + std::to_string(PHOTON_MAX_LEVELS) + " supported");
    if (m.family == PHOTON_FAMILY_BLOCK && m.levels != 1)
      return c.fail("model.levels", "a block (Block Transformer) artifact has exactly 1 level");
    const Json *cs = jsonGet(*model, "chunk_sizes");
    if (!cs || !cs->is_array() || static_cast<int>(cs->size()) != m.levels)
      return c.fail("model.chunk_sizes", "expected an array of " + std::to_string(m.levels) +
                                             " positive integers");
    for (const auto &e : (*cs)) {
      if (!jsonIsInteger(e) || jsonInt(e) < 1 || jsonInt(e) > 4096)
        return c.fail("model.chunk_sizes", "expected positive integers");
      m.chunkSizes.push_back(static_cast<int>(jsonInt(e)));
    }
    PHOTON_RETURN_IF_ERROR(getInt(c, *model, "prefix", m.prefix, false));
    std::string tdi = "decoder";
    PHOTON_RETURN_IF_ERROR(getStr(c, *model, "token_decoder_input", tdi, false));
    if (tdi != "decoder")
      return error(PHOTON_ERR_UNSUPPORTED,
                   file + ": model.token_decoder_input \"" + tdi +
                       "\" is not supported by this runtime (only \"decoder\", the paper's "
                       "composition); re-train or export with token_decoder_input='decoder'");
    if (const Json *sh = jsonGet(*model, "decoder_shift")) {
      if (!sh->is_boolean()) return c.fail("model.decoder_shift", "expected true or false");
      m.decoderShift = sh->get<bool>();
    }
  }
  if (const Json *tok = jsonGet(*model, "tokenizer")) {
    if (!tok->is_object()) return c.fail("model.tokenizer", "expected an object");
    PHOTON_RETURN_IF_ERROR(getStr(c, *tok, "kind", m.tokenizerKind));
    if (m.tokenizerKind == "bpe") {
      PHOTON_RETURN_IF_ERROR(getStr(c, *tok, "vocab", m.tokenizerVocab));
      PHOTON_RETURN_IF_ERROR(getStr(c, *tok, "merges", m.tokenizerMerges));
    } else if (m.tokenizerKind != "byte") {
      return c.fail("model.tokenizer.kind", "expected \"byte\" or \"bpe\", got \"" +
                                                m.tokenizerKind + "\"");
    }
  }

  PHOTON_RETURN_IF_ERROR(getStr(c, root, "library", m.library, false));
  const Json *w = nullptr;
  PHOTON_RETURN_IF_ERROR(getObj(c, root, "weights", w));
  PHOTON_RETURN_IF_ERROR(getStr(c, *w, "file", m.weightsFile, false));
  PHOTON_RETURN_IF_ERROR(getInt(c, *w, "bytes", m.weightsBytes, false));
  std::string sum;
  PHOTON_RETURN_IF_ERROR(getStr(c, *w, "checksum", sum, false));
  if (!sum.empty()) {
    const std::string pfx = "fnv1a64:";
    if (sum.compare(0, pfx.size(), pfx) != 0 || sum.size() != pfx.size() + 16)
      return c.fail("weights.checksum", "expected \"fnv1a64:<16 hex digits>\", got \"" + sum + "\"");
    char *end = nullptr;
    m.checksum = std::strtoull(sum.c_str() + pfx.size(), &end, 16);
    if (!end || *end != '\0') return c.fail("weights.checksum", "invalid hex digits");
    m.hasChecksum = true;
  }
  if (m.library.find('/') != std::string::npos || m.weightsFile.find('/') != std::string::npos)
    return c.fail("library/weights.file", "must be a file name inside the artifact directory");

  if (const Json *sl = jsonGet(root, "start_latents")) {
    if (!sl->is_object()) return c.fail("start_latents", "expected an object {level: tensor}");
    for (const auto &kv : sl->items()) {
      char *end = nullptr;
      long lvl = std::strtol(kv.key().c_str(), &end, 10);
      if (!end || *end || lvl < 1 || lvl > PHOTON_MAX_LEVELS || !kv.value().is_string())
        return c.fail("start_latents", "expected {\"<level>\": \"<tensor name>\"}");
      m.startLatents[static_cast<int>(lvl)] = kv.value().get<std::string>();
    }
  }

  const Json *caches = jsonGet(root, "caches");
  if (caches) {
    if (!caches->is_array()) return c.fail("caches", "expected an array");
    for (const auto &e : (*caches)) {
      if (!e.is_object()) return c.fail("caches", "expected an array of objects");
      CacheSpec cs;
      Ctx cc{file + ": caches[" + std::to_string(m.caches.size()) + "]"};
      PHOTON_RETURN_IF_ERROR(getInt(cc, e, "level", cs.level, true, 1));
      PHOTON_RETURN_IF_ERROR(getInt(cc, e, "layers", cs.layers, true, 1));
      PHOTON_RETURN_IF_ERROR(getInt(cc, e, "kv_heads", cs.kvHeads, true, 1));
      PHOTON_RETURN_IF_ERROR(getInt(cc, e, "head_dim", cs.headDim, true, 1));
      PHOTON_RETURN_IF_ERROR(getStr(cc, e, "dtype", cs.dtype, false));
      if (cs.dtype != "f32")
        return cc.fail("dtype", "only f32 caches are supported by this runtime, got " + cs.dtype);
      PHOTON_RETURN_IF_ERROR(getInt(cc, e, "block_size", cs.blockSize, true, 1));
      PHOTON_RETURN_IF_ERROR(getInt(cc, e, "bytes_per_unit", cs.bytesPerUnit, false));
      uint64_t expect = 2ull * cs.layers * cs.kvHeads * cs.headDim * 4;
      if (cs.bytesPerUnit == 0) cs.bytesPerUnit = expect;
      if (cs.bytesPerUnit != expect)
        return cc.fail("bytes_per_unit", "is " + std::to_string(cs.bytesPerUnit) +
                                             " but 2*layers*kv_heads*head_dim*4 = " +
                                             std::to_string(expect));
      PHOTON_RETURN_IF_ERROR(getInt(cc, e, "tokens_per_unit", cs.tokensPerUnit, false, 1));
      PHOTON_RETURN_IF_ERROR(getStrList(cc, e, "modes", cs.modes, false));
      if (m.cache(cs.level)) return cc.fail("level", "duplicate cache level");
      m.caches.push_back(cs);
    }
  }

  const Json *stages = jsonGet(root, "stages");
  if (!stages || !stages->is_array()) return c.fail("stages", "missing or not an array");
  for (const auto &e : (*stages)) {
    if (!e.is_object()) return c.fail("stages", "expected an array of objects");
    StageSpec st;
    Ctx sc{file + ": stages[" + std::to_string(m.stages.size()) + "]"};
    PHOTON_RETURN_IF_ERROR(getStr(sc, e, "name", st.name));
    st.symbol = "photon_" + st.name;
    PHOTON_RETURN_IF_ERROR(getStr(sc, e, "symbol", st.symbol, false));
    const Json *args = jsonGet(e, "args");
    if (!args || !args->is_array()) return sc.fail("args", "missing or not an array");
    for (const auto &a : (*args)) {
      if (!a.is_object()) return sc.fail("args", "expected objects");
      StageArg arg;
      PHOTON_RETURN_IF_ERROR(getStr(sc, a, "name", arg.name));
      PHOTON_RETURN_IF_ERROR(getStr(sc, a, "dtype", arg.dtype));
      PHOTON_RETURN_IF_ERROR(getStr(sc, a, "io", arg.io, false));
      const Json *shape = jsonGet(a, "shape");
      if (!shape || !shape->is_array()) return sc.fail("args." + arg.name + ".shape", "missing");
      for (const auto &d : (*shape)) {
        if (d.is_string()) arg.shape.push_back(d.get<std::string>());
        else if (jsonIsInteger(d)) arg.shape.push_back(std::to_string(jsonInt(d)));
        else return sc.fail("args." + arg.name + ".shape", "expected strings or integers");
      }
      st.args.push_back(std::move(arg));
    }
    m.stages.push_back(std::move(st));
  }
  return Status::ok();
}

// ------------------------------------------------------------------ CPU features

bool cpuHasFeature(const std::string &name, bool &known) {
  known = true;
#if defined(__x86_64__) || defined(__i386__)
  unsigned a, b, c, d;
  unsigned c1 = 0, d1 = 0, b7 = 0, c7 = 0, d7 = 0, a71 = 0;
  unsigned maxLeaf = __get_cpuid_max(0, nullptr);
  if (__get_cpuid(1, &a, &b, &c, &d)) { c1 = c; d1 = d; }
  if (maxLeaf >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    b7 = b; c7 = c; d7 = d;
    __cpuid_count(7, 1, a, b, c, d);
    a71 = a;
  }
  // OS support for AVX / AVX-512 state (XGETBV).
  bool osAvx = false, osAvx512 = false;
  if (c1 & (1u << 27)) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    osAvx = (lo & 0x6) == 0x6;
    osAvx512 = osAvx && (lo & 0xE0) == 0xE0;
  }
  struct F { const char *n; unsigned v; };
  const F table[] = {
      {"sse", (d1 >> 25) & 1},       {"sse2", (d1 >> 26) & 1},
      {"sse3", c1 & 1},              {"ssse3", (c1 >> 9) & 1},
      {"sse4.1", (c1 >> 19) & 1},    {"sse4.2", (c1 >> 20) & 1},
      {"popcnt", (c1 >> 23) & 1},    {"f16c", osAvx && ((c1 >> 29) & 1)},
      {"fma", osAvx && ((c1 >> 12) & 1)}, {"avx", osAvx && ((c1 >> 28) & 1)},
      {"avx2", osAvx && ((b7 >> 5) & 1)}, {"bmi", (b7 >> 3) & 1},
      {"bmi2", (b7 >> 8) & 1},       {"avx512f", osAvx512 && ((b7 >> 16) & 1)},
      {"avx512dq", osAvx512 && ((b7 >> 17) & 1)}, {"avx512cd", osAvx512 && ((b7 >> 28) & 1)},
      {"avx512bw", osAvx512 && ((b7 >> 30) & 1)}, {"avx512vl", osAvx512 && ((b7 >> 31) & 1)},
      {"avx512vnni", osAvx512 && ((c7 >> 11) & 1)}, {"avx512bf16", osAvx512 && ((a71 >> 5) & 1)},
      {"avxvnni", osAvx && ((a71 >> 4) & 1)}, {"avx512fp16", osAvx512 && ((d7 >> 23) & 1)},
  };
  std::string n = name;
  if (!n.empty() && (n[0] == '+')) n = n.substr(1);
  for (const auto &f : table)
    if (n == f.n) return f.v != 0;
  known = false;
  return true;
#else
  (void)name;
  known = false;
  return true;
#endif
}

std::string hostCpuFeatureSummary() {
  std::string s;
  for (const char *f : {"sse4.2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw",
                        "avx512vl", "avx512bf16", "avxvnni"}) {
    bool known;
    if (cpuHasFeature(f, known) && known) s += (s.empty() ? "" : ",") + std::string(f);
  }
  return s.empty() ? "none of the common x86 extensions" : s;
}

// ------------------------------------------------------------------ Model

namespace {

Status checkStageArgs(const Manifest &m, const std::string &name, const std::vector<int> &ranks,
                      const std::string &file) {
  const StageSpec *st = m.stage(name);
  if (!st)
    return error(PHOTON_ERR_ABI, file + ": the artifact has no stage '" + name + "', which a " +
                                     m.familyName + " model needs; recompile with photon-compile");
  if (st->args.size() != ranks.size())
    return error(PHOTON_ERR_ABI, file + ": stage '" + name + "' lists " +
                                     std::to_string(st->args.size()) + " arguments, the ABI has " +
                                     std::to_string(ranks.size()) +
                                     "; the runtime and compiler disagree, recompile the model");
  for (size_t i = 0; i < ranks.size(); ++i)
    if (static_cast<int>(st->args[i].shape.size()) != ranks[i])
      return error(PHOTON_ERR_ABI, file + ": stage '" + name + "' argument " + std::to_string(i) +
                                       " ('" + st->args[i].name + "') has rank " +
                                       std::to_string(st->args[i].shape.size()) + ", expected " +
                                       std::to_string(ranks[i]) + "; recompile the model");
  return Status::ok();
}

} // namespace

Model::~Model() {
  if (weights_) munmap(weights_, weightsSize_);
  if (lib_) dlclose(lib_);
}

StageFn Model::stage(const std::string &name) const {
  auto it = stages_.find(name);
  return it == stages_.end() ? nullptr : it->second;
}

int Model::computeThreads() const { return ompGetMaxThreads_ ? std::max(1, ompGetMaxThreads_()) : 1; }

void Model::setComputeThreads(int n) const {
  if (ompSetNumThreads_ && n > 0) ompSetNumThreads_(n);
}

const float *Model::startLatent(int level) const {
  auto it = startLatents_.find(level);
  return it == startLatents_.end() ? nullptr : it->second;
}

Status Model::load(const std::string &dirIn, const LoadOptions &opts, std::unique_ptr<Model> &out) {
  std::unique_ptr<Model> m(new Model());
  std::string dir = dirIn;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  m->dir_ = dir;
  struct stat st;
  if (stat(dir.c_str(), &st) != 0)
    return error(PHOTON_ERR_IO, "cannot open artifact '" + dir + "': " + std::strerror(errno));
  if (!S_ISDIR(st.st_mode))
    return error(PHOTON_ERR_FORMAT, "'" + dir + "' is not an artifact directory (expected a "
                                    "*.photon directory with manifest.json, model.so, weights.bin"
                                    " written by photon-compile)");
  const std::string mpath = dir + "/manifest.json";
  std::string text;
  PHOTON_RETURN_IF_ERROR(readFile(mpath, text));
  PHOTON_RETURN_IF_ERROR(parseManifest(text, mpath, m->manifest_));
  Manifest &mf = m->manifest_;

  // Target.
  if (mf.targetKind == "cuda") {
    // Checked before model.so is opened: its constructors load the fatbins through the
    // driver (mgpuModuleLoad).
    std::string archs;
    std::vector<const char *> names;
    for (const auto &a : mf.targetArchs) {
      archs += (archs.empty() ? "" : ",") + a;
      names.push_back(a.c_str());
    }
    if (names.empty())
      return error(PHOTON_ERR_FORMAT, mpath + ": target.kind is \"cuda\" but target.archs is "
                                              "missing or empty; recompile with photon-compile "
                                              "--target cuda:sm_XY");
    if (photon_cuda_check_arch(0, names.data(), names.size()) != PHOTON_CUDA_OK)
      return error(PHOTON_ERR_NO_DEVICE,
                   mpath + ": this artifact was compiled for CUDA (" + archs + ") and cannot "
                           "run here: " + photon_cuda_last_error() +
                           "; to run it on this machine's CPU instead, recompile with "
                           "photon-compile --target cpu");
    return error(PHOTON_ERR_NO_DEVICE,
                 mpath + ": this artifact was compiled for CUDA (" + archs + ") and the "
                         "device matches, but the engine's CUDA execution path (device "
                         "buffers for the weights and caches) is not implemented yet; "
                         "recompile with photon-compile --target cpu");
  }
  if (mf.targetKind != "cpu")
    return error(PHOTON_ERR_TARGET, mpath + ": unknown target kind \"" + mf.targetKind + "\"");
#if defined(__x86_64__)
  if (!mf.targetTriple.empty() && mf.targetTriple.compare(0, 7, "x86_64-") != 0)
    return error(PHOTON_ERR_TARGET, mpath + ": compiled for " + mf.targetTriple +
                                        ", this machine is x86_64; recompile for this machine");
#endif
  if (opts.checkCpu) {
    std::string missing;
    for (const auto &f : mf.targetFeatures) {
      bool known;
      if (!cpuHasFeature(f, known)) missing += (missing.empty() ? "" : ", ") + f;
    }
    if (!missing.empty())
      return error(PHOTON_ERR_TARGET,
                   mpath + ": the model was compiled for CPU '" + mf.targetCpu +
                       "' and uses " + missing + ", which this CPU lacks (it has " +
                       hostCpuFeatureSummary() +
                       "); recompile with photon-compile --cpu=native on this machine");
  }

  // Stage table sanity against the ABI.
  const std::string &fam = mf.familyName;
  if (mf.family == PHOTON_FAMILY_FORWARD) {
    if (!mf.stage("forward"))
      return error(PHOTON_ERR_FORMAT, mpath + ": a forward-only artifact needs a 'forward' stage");
  } else if (mf.family == PHOTON_FAMILY_VANILLA) {
    PHOTON_RETURN_IF_ERROR(checkStageArgs(mf, "lm_step", {1, 2, 6, 2, 1, 3}, mpath));
    if (!mf.cache(1))
      return error(PHOTON_ERR_FORMAT, mpath + ": a vanilla artifact needs caches[] level 1");
  } else {
    PHOTON_RETURN_IF_ERROR(checkStageArgs(mf, "encode_1", {1, 2, 6, 2, 1, 3}, mpath));
    for (int l = 2; l <= mf.levels; ++l) {
      PHOTON_RETURN_IF_ERROR(checkStageArgs(mf, "encode_" + std::to_string(l), {1, 3, 6, 2, 1, 3}, mpath));
      PHOTON_RETURN_IF_ERROR(checkStageArgs(mf, "latent_" + std::to_string(l), {1, 2, 3}, mpath));
    }
    PHOTON_RETURN_IF_ERROR(checkStageArgs(mf, "token_step", {1, 2, 2, 1, 2}, mpath));
    for (int l = 1; l <= mf.levels; ++l) {
      if (!mf.cache(l))
        return error(PHOTON_ERR_FORMAT, mpath + ": a " + fam + " artifact with " +
                                            std::to_string(mf.levels) +
                                            " levels needs caches[] level " + std::to_string(l));
      if (mf.startLatents.find(l) == mf.startLatents.end())
        return error(PHOTON_ERR_FORMAT, mpath + ": start_latents has no entry for level " +
                                            std::to_string(l) + "; recompile the model");
    }
  }
  if (mf.stage("forward"))
    PHOTON_RETURN_IF_ERROR(checkStageArgs(mf, "forward", {1, 2, 3}, mpath));

  // Weights: mmap read-only, never copied.
  const std::string wpath = dir + "/" + mf.weightsFile;
  int fd = open(wpath.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return error(PHOTON_ERR_IO, "cannot open weights '" + wpath + "': " + std::strerror(errno));
  struct stat wst;
  if (fstat(fd, &wst) != 0 || wst.st_size <= 0) {
    close(fd);
    return error(PHOTON_ERR_FORMAT, "weights '" + wpath + "' is empty or unreadable");
  }
  m->weightsSize_ = static_cast<size_t>(wst.st_size);
  if (mf.weightsBytes && mf.weightsBytes != m->weightsSize_) {
    close(fd);
    return error(PHOTON_ERR_CHECKSUM, "weights '" + wpath + "' has " +
                                          std::to_string(m->weightsSize_) +
                                          " bytes, the manifest says " +
                                          std::to_string(mf.weightsBytes) +
                                          "; the file is truncated or from another compile: "
                                          "recompile the model");
  }
  void *p = mmap(nullptr, m->weightsSize_, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (p == MAP_FAILED)
    return error(PHOTON_ERR_IO, "cannot mmap '" + wpath + "': " + std::strerror(errno));
  m->weights_ = static_cast<uint8_t *>(p);
  if (opts.verifyChecksum && mf.hasChecksum) {
    uint64_t h = weights::fnv1a64(m->weights_, m->weightsSize_);
    if (h != mf.checksum) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "fnv1a64:%016" PRIx64 ", the manifest says fnv1a64:%016" PRIx64,
                    h, mf.checksum);
      return error(PHOTON_ERR_CHECKSUM, "weights '" + wpath + "' checksum is " + buf +
                                            "; the weights do not belong to this model.so: "
                                            "recompile the model (photon-compile)");
    }
  }
  std::string err;
  if (!weights::parseIndex(m->weights_, m->weightsSize_, m->tensors_, err))
    return error(PHOTON_ERR_FORMAT, "weights '" + wpath + "': " + err);
  for (const auto &kv : mf.startLatents) {
    const weights::TensorInfo *t = nullptr;
    for (const auto &ti : m->tensors_)
      if (ti.name == kv.second) t = &ti;
    if (!t)
      return error(PHOTON_ERR_FORMAT, mpath + ": start latent of level " + std::to_string(kv.first) +
                                          " names tensor '" + kv.second +
                                          "', which is not in " + mf.weightsFile);
    if (t->dtype != weights::DType::F32 || t->numElements() != mf.width || t->offset % 4)
      return error(PHOTON_ERR_FORMAT, "start latent '" + kv.second + "' must be f32 with " +
                                          std::to_string(mf.width) + " elements (the width)");
    m->startLatents_[kv.first] = reinterpret_cast<const float *>(m->weights_ + t->offset);
  }

  // Library.
  const std::string lpath = dir + "/" + mf.library;
  m->lib_ = dlopen(lpath.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!m->lib_) {
    const char *e = dlerror();
    return error(PHOTON_ERR_IO, "cannot load '" + lpath + "': " + (e ? e : "unknown error") +
                                    " (recompile the model for this machine)");
  }
  using AbiFn = const char *(*)();
  auto abi = reinterpret_cast<AbiFn>(dlsym(m->lib_, "photon_abi"));
  if (!abi)
    return error(PHOTON_ERR_ABI, lpath + " does not export photon_abi(); it was not built by "
                                         "photon-compile or is too old: recompile the model");
  const char *abiStr = abi();
  if (!abiStr || std::string(abiStr) != PHOTON_STAGE_ABI)
    return error(PHOTON_ERR_ABI, lpath + " reports ABI \"" + std::string(abiStr ? abiStr : "") +
                                     "\", this runtime needs \"" + PHOTON_STAGE_ABI +
                                     "\": recompile the model with a matching photon-compile");
  for (const auto &s : mf.stages) {
    void *sym = dlsym(m->lib_, s.symbol.c_str());
    if (!sym)
      return error(PHOTON_ERR_ABI, lpath + " does not export '" + s.symbol + "' (stage '" +
                                       s.name + "' of the manifest): recompile the model");
    m->stages_[s.name] = reinterpret_cast<StageFn>(sym);
  }
  // An --openmp library (manifest target.threads "openmp") links libomp: its thread-count
  // controls are reachable through the library's handle, which searches its dependencies.
  m->ompSetNumThreads_ = reinterpret_cast<void (*)(int)>(dlsym(m->lib_, "omp_set_num_threads"));
  m->ompGetMaxThreads_ = reinterpret_cast<int (*)()>(dlsym(m->lib_, "omp_get_max_threads"));
  if (!m->ompSetNumThreads_ || !m->ompGetMaxThreads_) {
    m->ompSetNumThreads_ = nullptr;
    m->ompGetMaxThreads_ = nullptr;
  }

  // Tokenizer.
  if (mf.tokenizerKind == "bpe") {
    std::unique_ptr<BpeTokenizer> bpe;
    PHOTON_RETURN_IF_ERROR(BpeTokenizer::load(dir + "/" + mf.tokenizerVocab,
                                              dir + "/" + mf.tokenizerMerges, bpe));
    if (bpe->vocabSize() > mf.vocab)
      return error(PHOTON_ERR_FORMAT, "tokenizer has " + std::to_string(bpe->vocabSize()) +
                                          " tokens but the model's vocabulary is " +
                                          std::to_string(mf.vocab));
    m->tokenizer_ = std::move(bpe);
  } else {
    // A model without a tokenizer of its own (an import of someone's export) and a vocabulary
    // under 256 still runs on bytes: a prompt byte outside the vocabulary is refused when the
    // request is submitted, naming the token.
    m->tokenizer_.reset(new ByteTokenizer());
  }
  out = std::move(m);
  return Status::ok();
}

} // namespace photon::rt
