// Loading a compiled artifact (docs/artifact.md): files opened and resolved inside the
// artifact directory, the host CPU's features checked against the manifest's, model.so
// dlopened, the weights memory-mapped and checked; the manifest itself is parsed in
// manifest.cpp.
#include "artifact.h"
#include "jsonio.h"


#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <link.h>
#include <limits>
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

Status openRegularFile(const std::string &path, const char *what, int &fd, uint64_t &size) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
  fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0)
    return error(PHOTON_ERR_IO, std::string("cannot open ") + what + " '" + path + "': " +
                                    std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    fd = -1;
    return error(PHOTON_ERR_IO, std::string("cannot stat ") + what + " '" + path + "': " +
                                    std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    fd = -1;
    const char *kind = S_ISFIFO(st.st_mode)  ? "a FIFO"
                       : S_ISCHR(st.st_mode) ? "a character device"
                       : S_ISBLK(st.st_mode) ? "a block device"
                       : S_ISDIR(st.st_mode) ? "a directory"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "not a regular file";
    return error(PHOTON_ERR_FORMAT, std::string(what) + " '" + path + "' is " + kind +
                                        "; only regular files are read");
  }
  size = static_cast<uint64_t>(st.st_size);
  return Status::ok();
}

Status readFile(const std::string &path, std::string &out, uint64_t maxBytes) {
  int fd = -1;
  uint64_t size = 0;
  PHOTON_RETURN_IF_ERROR(openRegularFile(path, "file", fd, size));
  auto tooBig = [&]() {
    return error(PHOTON_ERR_FORMAT, "'" + path + "' is larger than " + std::to_string(maxBytes) +
                                        " bytes, the limit for this file; it is not what "
                                        "photon-compile writes");
  };
  if (size > maxBytes) {
    close(fd);
    return tooBig();
  }
  out.clear();
  out.reserve(static_cast<size_t>(size));
  char buf[1 << 16];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      return error(PHOTON_ERR_IO, "error reading '" + path + "': " + std::strerror(e));
    }
    if (n == 0) break;
    // Bounded even when the size was not known up front (a file that grows while read,
    // a /proc file that reports 0 bytes).
    if (out.size() + static_cast<size_t>(n) > maxBytes) {
      close(fd);
      out.clear();
      return tooBig();
    }
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
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

/// The path of `name` (relative, as the manifest gives it) inside artifact directory `dir`,
/// after every symlink is resolved; refused when it leads outside the directory.
Status resolveInsideImpl(const std::string &dir, const std::string &name, const char *what,
                         const std::string &origin, std::string &out) {
  if (name.empty() || name[0] == '/')
    return error(PHOTON_ERR_FORMAT, origin + ": " + what + " '" + name +
                                        "' must be a relative path inside the artifact directory");
  char *rd = realpath(dir.c_str(), nullptr);
  if (!rd) return error(PHOTON_ERR_IO, "cannot resolve '" + dir + "': " + std::strerror(errno));
  std::string root(rd);
  std::free(rd);
  const std::string full = dir + "/" + name;
  char *rf = realpath(full.c_str(), nullptr);
  if (!rf)
    return error(PHOTON_ERR_IO, std::string("cannot open ") + what + " '" + full + "': " +
                                    std::strerror(errno));
  std::string real(rf);
  std::free(rf);
  std::string prefix = root == "/" ? root : root + "/";
  if (real.compare(0, prefix.size(), prefix) != 0)
    return error(PHOTON_ERR_FORMAT,
                 origin + ": " + what + " '" + name + "' resolves to '" + real +
                     "', outside the artifact directory '" + root +
                     "'; refused (every file an artifact names must lie inside it, after "
                     "symlinks)");
  out = real;
  return Status::ok();
}

/// Warns (stderr, once per path) when the artifact directory or one of its files can be
/// written by other users: model.so is executable code that they could replace.
void warnIfWritable(const std::string &path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return;
  bool dirOk = S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX); // sticky: only owners replace
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !dirOk)
    std::fprintf(stderr,
                 "photon: warning: '%s' is writable by %s; an artifact is executable code "
                 "(model.so runs when the model is loaded): chmod go-w it\n",
                 path.c_str(), (st.st_mode & S_IWOTH) ? "every user" : "its group");
}

/// True when `addr` lies in the object of `handle` itself (not in one of its dependencies).
bool definedIn(void *handle, void *addr) {
  struct link_map *own = nullptr;
  if (dlinfo(handle, RTLD_DI_LINKMAP, &own) != 0 || !own) return false;
  Dl_info info;
  struct link_map *where = nullptr;
  if (!dladdr1(addr, &info, reinterpret_cast<void **>(&where), RTLD_DL_LINKMAP) || !where)
    return false;
  return where == own;
}

} // namespace

Model::~Model() {
  if (backend_ && weightsDevice_ && weightsDevice_.raw() != weights_) backend_->free(weightsDevice_);
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
  std::string realManifest;
  PHOTON_RETURN_IF_ERROR(resolveInsideImpl(dir, "manifest.json", "manifest", dir, realManifest));
  std::string text;
  PHOTON_RETURN_IF_ERROR(readFile(realManifest, text, kMaxManifestBytes));
  PHOTON_RETURN_IF_ERROR(parseManifest(text, mpath, m->manifest_));
  Manifest &mf = m->manifest_;

  // Target: the device backend (host for "cpu"; for "cuda" the CUDA backend when the driver
  // is usable and the device's architecture is among target.archs, checked before model.so
  // is opened: its constructors load the fatbins through the driver).
  if (opts.backend) {
    PHOTON_RETURN_IF_ERROR(opts.backend->checkCapability(mf).prefix(mpath));
    m->backend_ = opts.backend;
  } else {
    PHOTON_RETURN_IF_ERROR(createBackend(mf, mpath, m->backend_));
  }
  m->deviceName_ = m->backend_->name();
  // The host code of both targets runs on this CPU.
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
  std::string realWeights;
  PHOTON_RETURN_IF_ERROR(resolveInsideImpl(dir, mf.weightsFile, "weights.file", mpath, realWeights));
  int fd = -1;
  uint64_t wsize = 0;
  PHOTON_RETURN_IF_ERROR(openRegularFile(realWeights, "weights", fd, wsize));
  if (wsize == 0) {
    close(fd);
    return error(PHOTON_ERR_FORMAT, "weights '" + wpath + "' is empty; recompile the model");
  }
  m->weightsSize_ = static_cast<size_t>(wsize);
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

  // The weights where the stages read them: in place on the host, one upload to a device.
  PHOTON_RETURN_IF_ERROR(m->backend_->placeWeights(m->weights_, m->weightsSize_,
                                                   opts.uploadProgress, m->weightsDevice_)
                             .prefix("weights '" + wpath + "' on " + m->backend_->name()));

  // Tokenizer.
  if (mf.tokenizerKind == "bpe") {
    std::unique_ptr<BpeTokenizer> bpe;
    std::string vocabPath, mergesPath;
    PHOTON_RETURN_IF_ERROR(
        resolveInsideImpl(dir, mf.tokenizerVocab, "model.tokenizer.vocab", mpath, vocabPath));
    PHOTON_RETURN_IF_ERROR(
        resolveInsideImpl(dir, mf.tokenizerMerges, "model.tokenizer.merges", mpath, mergesPath));
    PHOTON_RETURN_IF_ERROR(BpeTokenizer::load(vocabPath, mergesPath, bpe));
    if (bpe->vocabSize() > mf.vocab)
      return error(PHOTON_ERR_FORMAT, "tokenizer has " + std::to_string(bpe->vocabSize()) +
                                          " tokens but the model's vocabulary is " +
                                          std::to_string(mf.vocab));
    m->tokenizer_ = std::move(bpe);
  } else if (mf.tokenizerKind == "sentencepiece") {
    std::unique_ptr<SentencePieceTokenizer> sp;
    std::string modelPath;
    PHOTON_RETURN_IF_ERROR(
        resolveInsideImpl(dir, mf.tokenizerModel, "model.tokenizer.model", mpath, modelPath));
    PHOTON_RETURN_IF_ERROR(SentencePieceTokenizer::load(modelPath, sp));
    if (sp->vocabSize() > mf.vocab)
      return error(PHOTON_ERR_FORMAT, "tokenizer has " + std::to_string(sp->vocabSize()) +
                                          " tokens but the model's vocabulary is " +
                                          std::to_string(mf.vocab));
    m->tokenizer_ = std::move(sp);
  } else {
    // A model without a tokenizer of its own (an import of someone's export) and a vocabulary
    // under 256 still runs on bytes: a prompt byte outside the vocabulary is refused when the
    // request is submitted, naming the token.
    m->tokenizer_.reset(new ByteTokenizer());
  }
  // Library.
  // model.so is code: its constructors run inside dlopen. Everything else is checked first,
  // and the library must be a regular file inside the artifact (docs/artifact.md, "Trust").
  const std::string lpath = dir + "/" + mf.library;
  std::string realLib;
  PHOTON_RETURN_IF_ERROR(resolveInsideImpl(dir, mf.library, "library", mpath, realLib));
  {
    int lfd = -1;
    uint64_t lsize = 0;
    PHOTON_RETURN_IF_ERROR(openRegularFile(realLib, "library", lfd, lsize));
    close(lfd);
  }
  warnIfWritable(dir);
  warnIfWritable(realLib);
  warnIfWritable(realWeights);
  m->lib_ = dlopen(realLib.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!m->lib_) {
    const char *e = dlerror();
    return error(PHOTON_ERR_IO, "cannot load '" + lpath + "': " + (e ? e : "unknown error") +
                                    " (recompile the model for this machine)");
  }
  using AbiFn = const char *(*)();
  void *abiSym = dlsym(m->lib_, "photon_abi");
  auto abi = abiSym && definedIn(m->lib_, abiSym) ? reinterpret_cast<AbiFn>(abiSym) : nullptr;
  if (!abi)
    return error(PHOTON_ERR_ABI, lpath + " does not export photon_abi(); it was not built by "
                                         "photon-compile or is too old: recompile the model");
  const char *abiStr = abi();
  if (!abiStr || std::string(abiStr) != PHOTON_STAGE_ABI)
    return error(PHOTON_ERR_ABI, lpath + " reports ABI \"" + std::string(abiStr ? abiStr : "") +
                                     "\", this runtime needs \"" + PHOTON_STAGE_ABI +
                                     "\": recompile the model with a matching photon-compile");
  for (const auto &s : mf.stages) {
    // Only model.so's own definitions: a handle's lookup also searches its dependencies
    // (libc's "abort" is not a stage).
    void *sym = dlsym(m->lib_, s.symbol.c_str());
    if (!sym)
      return error(PHOTON_ERR_ABI, lpath + " does not export '" + s.symbol + "' (stage '" +
                                       s.name + "' of the manifest): recompile the model");
    if (!definedIn(m->lib_, sym))
      return error(PHOTON_ERR_ABI, lpath + " does not define '" + s.symbol + "' (stage '" +
                                       s.name + "' of the manifest) itself; it resolves in "
                                       "one of its dependencies, which is refused: recompile "
                                       "the model");
    m->stages_[s.name] = reinterpret_cast<StageFn>(sym);
  }
  // An --openmp library (manifest target.threads "openmp") links libomp: its thread-count
  // controls are reachable through the library's handle, which searches its dependencies.
  // The stage workspace's setter (photon-plan-workspace), when model.so itself defines it.
  if (void *ws = dlsym(m->lib_, "photon_workspace_set"); ws && definedIn(m->lib_, ws))
    m->workspaceSet_ = reinterpret_cast<void (*)(void *, int64_t)>(ws);
  m->ompSetNumThreads_ = reinterpret_cast<void (*)(int)>(dlsym(m->lib_, "omp_set_num_threads"));
  m->ompGetMaxThreads_ = reinterpret_cast<int (*)()>(dlsym(m->lib_, "omp_get_max_threads"));
  if (!m->ompSetNumThreads_ || !m->ompGetMaxThreads_) {
    m->ompSetNumThreads_ = nullptr;
    m->ompGetMaxThreads_ = nullptr;
  }

  out = std::move(m);
  return Status::ok();
}

} // namespace photon::rt
