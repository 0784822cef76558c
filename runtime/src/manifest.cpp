// The artifact's manifest (docs/artifact.md): the Manifest's lookups and parseManifest, which
// checks every field against its type and bounds and names the field a bad manifest gets
// wrong. Loading the model (model.so, the weights mapping) is in artifact.cpp.
#include "artifact.h"
#include "jsonio.h"

#include <algorithm>
#include <cctype>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace photon::rt {

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

constexpr int kMaxVocab = 1 << 24;
constexpr int kMaxWidth = 1 << 20;
constexpr int64_t kMaxTokensPerStep = 1 << 20;

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
  // Range-checked, never narrowed: 2^32 + 1 is not 1.
  const int64_t n = jsonInt(*x);
  if (n > 0 && static_cast<uint64_t>(n) > static_cast<uint64_t>(std::numeric_limits<T>::max()))
    return c.fail(key, "is " + std::to_string(n) + ", more than this runtime supports (" +
                           std::to_string(static_cast<uint64_t>(std::numeric_limits<T>::max())) +
                           ")");
  out = static_cast<T>(n);
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
    return error(PHOTON_ERR_FORMAT, file + ": invalid JSON" +
                                        (err.compare(0, 5, "line ") == 0 ? " at " : ": ") + err);
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
  PHOTON_RETURN_IF_ERROR(getInt(c, *model, "max_positions", m.maxPositions, false, 1));
  // Sizes the engine multiplies together (logits are S x vocab floats, latents B x width):
  // bounded here so that no product overflows later.
  if (m.vocab > kMaxVocab)
    return c.fail("model.vocab", std::to_string(m.vocab) + " is larger than this runtime "
                                 "supports (" + std::to_string(kMaxVocab) + ")");
  if (m.width > kMaxWidth)
    return c.fail("model.width", std::to_string(m.width) + " is larger than this runtime "
                                 "supports (" + std::to_string(kMaxWidth) + ")");
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
    int64_t perStep = 1;
    for (int cs1 : m.chunkSizes) perStep = std::min<int64_t>(perStep * cs1, kMaxTokensPerStep + 1);
    if (perStep > kMaxTokensPerStep)
      return c.fail("model.chunk_sizes", "their product (tokens per top-level unit) is over " +
                                             std::to_string(kMaxTokensPerStep) +
                                             ", the most this runtime supports");
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
    } else if (m.tokenizerKind == "sentencepiece") {
      PHOTON_RETURN_IF_ERROR(getStr(c, *tok, "model", m.tokenizerModel));
    } else if (m.tokenizerKind != "byte") {
      return c.fail("model.tokenizer.kind", "expected \"byte\", \"bpe\" or \"sentencepiece\", got \"" +
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
      if (cs.dtype != "f32" && cs.dtype != "f16")
        return cc.fail("dtype", "expected f32 or f16 caches, got \"" + cs.dtype + "\"");
      cs.elementBytes = cs.dtype == "f16" ? 2 : 4;
      PHOTON_RETURN_IF_ERROR(getInt(cc, e, "block_size", cs.blockSize, true, 1));
      PHOTON_RETURN_IF_ERROR(getInt(cc, e, "bytes_per_unit", cs.bytesPerUnit, false));
      if (cs.layers > 4096 || cs.kvHeads > 4096 || cs.headDim > 65536 || cs.blockSize > 65536)
        return cc.fail("layers/kv_heads/head_dim/block_size",
                       "out of range (at most 4096 layers, 4096 KV heads, head_dim 65536, "
                       "block_size 65536)");
      uint64_t expect = 2ull * cs.layers * cs.kvHeads * cs.headDim * cs.elementBytes;
      if (cs.bytesPerUnit == 0) cs.bytesPerUnit = expect;
      if (cs.bytesPerUnit != expect)
        return cc.fail("bytes_per_unit", "is " + std::to_string(cs.bytesPerUnit) +
                                             " but 2*layers*kv_heads*head_dim*" +
                                             std::to_string(cs.elementBytes) + " (" + cs.dtype +
                                             ") = " + std::to_string(expect));
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
    // Stage entry points are photon_* symbols of model.so (docs/artifact.md): a manifest
    // cannot point a stage at any other function.
    bool symOk = st.symbol.size() > 7 && st.symbol.compare(0, 7, "photon_") == 0;
    for (char ch : st.symbol)
      if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_')) symOk = false;
    if (!symOk || st.symbol == "photon_abi")
      return sc.fail("symbol", "\"" + st.symbol + "\" is not a stage entry point (expected "
                               "photon_<name>, letters, digits and _)");
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
  if (const Json *ws = jsonGet(root, "workspace")) {
    if (!ws->is_object()) return c.fail("workspace", "expected an object");
    Ctx wc{file + ": workspace"};
    PHOTON_RETURN_IF_ERROR(getInt(wc, *ws, "fixed_bytes", m.workspaceFixedBytes));
    PHOTON_RETURN_IF_ERROR(getInt(wc, *ws, "bytes_per_sequence", m.workspaceBytesPerSequence));
    // The engine multiplies the per-sequence bytes by its batch: keep that far from overflow.
    constexpr int64_t kMaxWorkspace = int64_t(1) << 36;
    if (m.workspaceFixedBytes > kMaxWorkspace || m.workspaceBytesPerSequence > kMaxWorkspace)
      return wc.fail("bytes_per_sequence", "more than 64 GiB of stage workspace");
  }
  return Status::ok();
}

} // namespace photon::rt
