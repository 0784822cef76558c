#include "tokenizer.h"

#include "artifact.h"
#include "jsonio.h"

#include "sentencepiece/sentencepiece_shim.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <mutex>
#include <type_traits>

namespace photon::rt {

namespace {
#include "unicode_tables.inc"

template <size_t N> bool inRanges(const uint32_t (&r)[N][2], uint32_t cp) {
  size_t lo = 0, hi = N;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (cp < r[mid][0]) hi = mid;
    else if (cp > r[mid][1]) lo = mid + 1;
    else return true;
  }
  return false;
}
bool isLetter(uint32_t cp) {
  if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
  return inRanges(kLetterRanges, cp);
}
bool isNumber(uint32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  return inRanges(kNumberRanges, cp);
}
bool isSpace(uint32_t cp) {
  if (cp < 0x80) return cp == ' ' || (cp >= 0x9 && cp <= 0xD);
  return inRanges(kSpaceRanges, cp);
}

struct Cp {
  uint32_t cp;
  uint32_t start; // byte offset
  uint32_t len;   // bytes
};

// Lenient UTF-8 decoding: an invalid byte becomes U+FFFD of length 1 (bytes are preserved).
std::vector<Cp> decodeUtf8(const std::string &s) {
  std::vector<Cp> out;
  size_t i = 0, n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = utf8SequenceLength(s, i);
    uint32_t cp = 0xFFFD;
    if (len == 1) {
      cp = c;
    } else if (len > 1) {
      cp = c & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
      for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    } else {
      len = 1;
    }
    out.push_back({cp, static_cast<uint32_t>(i), static_cast<uint32_t>(len)});
    i += len;
  }
  return out;
}

void appendUtf8(std::string &s, uint32_t cp) {
  if (cp < 0x80) s += static_cast<char>(cp);
  else if (cp < 0x800) { s += static_cast<char>(0xC0 | (cp >> 6)); s += static_cast<char>(0x80 | (cp & 0x3F)); }
  else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12)); s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18)); s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F)); s += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

} // namespace

size_t utf8SequenceLength(const std::string &s, size_t i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  auto cont = [&](size_t k) { return k < s.size() && (b(k) & 0xC0) == 0x80; };
  unsigned char c = b(i);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(i + 1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(i + 1) || !cont(i + 2)) return 0;
    if (c == 0xE0 && b(i + 1) < 0xA0) return 0;  // overlong
    if (c == 0xED && b(i + 1) >= 0xA0) return 0; // surrogates
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(i + 1) || !cont(i + 2) || !cont(i + 3)) return 0;
    if (c == 0xF0 && b(i + 1) < 0x90) return 0;  // overlong
    if (c == 0xF4 && b(i + 1) >= 0x90) return 0; // above U+10FFFF
    return 4;
  }
  return 0;
}

std::vector<int32_t> ByteTokenizer::encode(const std::string &text) const {
  std::vector<int32_t> out;
  out.reserve(text.size());
  for (unsigned char c : text) out.push_back(c);
  return out;
}

std::string ByteTokenizer::tokenBytes(int32_t id) const {
  if (id < 0 || id > 255) return std::string();
  return std::string(1, static_cast<char>(id));
}

std::vector<std::string> BpeTokenizer::pretokenize(const std::string &text) {
  std::vector<Cp> cps = decodeUtf8(text);
  std::vector<std::string> pieces;
  size_t n = cps.size(), i = 0;
  auto cls = [&](size_t k) -> int { // 0 letter, 1 number, 2 space, 3 other
    uint32_t c = cps[k].cp;
    return isLetter(c) ? 0 : isNumber(c) ? 1 : isSpace(c) ? 2 : 3;
  };
  auto emit = [&](size_t a, size_t b) { // cps [a, b)
    size_t s = cps[a].start, e = cps[b - 1].start + cps[b - 1].len;
    pieces.push_back(text.substr(s, e - s));
  };
  while (i < n) {
    // 's 't 're 've 'm 'll 'd
    if (cps[i].cp == '\'' && i + 1 < n) {
      uint32_t a = cps[i + 1].cp, b = i + 2 < n ? cps[i + 2].cp : 0;
      size_t len = 0;
      if (a == 's' || a == 't' || a == 'm' || a == 'd') len = 2;
      else if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) len = 3;
      if (len) { emit(i, i + len); i += len; continue; }
    }
    // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+'
    size_t j = i;
    if (cps[i].cp == ' ' && i + 1 < n && cls(i + 1) != 2) j = i + 1;
    int c = cls(j);
    if (c != 2) {
      size_t k = j + 1;
      while (k < n && cls(k) == c) ++k;
      emit(i, k);
      i = k;
      continue;
    }
    // '\s+(?!\S)' then '\s+'
    size_t k = i;
    while (k < n && cls(k) == 2) ++k;
    if (k < n && k - i >= 2) k -= 1; // leave the last space to prefix the next word
    emit(i, k);
    i = k;
  }
  return pieces;
}

Status BpeTokenizer::load(const std::string &vocabPath, const std::string &mergesPath,
                          std::unique_ptr<BpeTokenizer> &out) {
  std::unique_ptr<BpeTokenizer> t(new BpeTokenizer());
  // bytes_to_unicode of GPT-2.
  {
    std::vector<int> bs, cs;
    for (int b = '!'; b <= '~'; ++b) bs.push_back(b);
    for (int b = 0xA1; b <= 0xAC; ++b) bs.push_back(b);
    for (int b = 0xAE; b <= 0xFF; ++b) bs.push_back(b);
    cs = bs;
    int extra = 0;
    for (int b = 0; b < 256; ++b)
      if (std::find(bs.begin(), bs.end(), b) == bs.end()) {
        bs.push_back(b);
        cs.push_back(256 + extra++);
      }
    for (size_t k = 0; k < bs.size(); ++k) {
      std::string u;
      appendUtf8(u, static_cast<uint32_t>(cs[k]));
      t->byteToUnicode_[bs[k]] = u;
    }
  }
  std::unordered_map<uint32_t, uint8_t> unicodeToByte;
  for (int b = 0; b < 256; ++b) {
    std::vector<Cp> c = decodeUtf8(t->byteToUnicode_[b]);
    unicodeToByte[c[0].cp] = static_cast<uint8_t>(b);
  }

  std::string text;
  PHOTON_RETURN_IF_ERROR(readFile(vocabPath, text));
  Json v;
  std::string err;
  if (!parseJson(text, v, err))
    return error(PHOTON_ERR_FORMAT, vocabPath + ": invalid JSON at " + err);
  if (!v.is_object())
    return error(PHOTON_ERR_FORMAT, vocabPath + ": expected a JSON object {token: id}");
  int32_t maxId = -1;
  for (const auto &kv : v.items()) {
    if (!jsonIsInteger(kv.value()) || jsonInt(kv.value()) < 0 || jsonInt(kv.value()) > INT32_MAX / 2)
      return error(PHOTON_ERR_FORMAT, vocabPath + ": token \"" + kv.key() +
                                          "\" has no valid integer id");
    maxId = std::max<int32_t>(maxId, static_cast<int32_t>(jsonInt(kv.value())));
  }
  t->idToToken_.assign(static_cast<size_t>(maxId + 1), std::string());
  t->idToBytes_.assign(static_cast<size_t>(maxId + 1), std::string());
  for (const auto &kv : v.items()) {
    int32_t id = static_cast<int32_t>(jsonInt(kv.value()));
    t->tokenToId_[kv.key()] = id;
    t->idToToken_[id] = kv.key();
    std::string bytes;
    for (const Cp &c : decodeUtf8(kv.key())) {
      auto it = unicodeToByte.find(c.cp);
      if (it == unicodeToByte.end()) { bytes = kv.key(); break; } // special token: as written
      bytes += static_cast<char>(it->second);
    }
    t->idToBytes_[id] = bytes;
  }
  for (int b = 0; b < 256; ++b)
    if (!t->tokenToId_.count(t->byteToUnicode_[b]))
      return error(PHOTON_ERR_FORMAT, vocabPath + ": the vocabulary lacks the single-byte token " +
                                          "for byte " + std::to_string(b) +
                                          " (not a GPT-2 byte-level BPE vocabulary)");

  PHOTON_RETURN_IF_ERROR(readFile(mergesPath, text));
  size_t pos = 0;
  int32_t rank = 0;
  int lineNo = 0;
  while (pos < text.size()) {
    size_t e = text.find('\n', pos);
    if (e == std::string::npos) e = text.size();
    std::string line = text.substr(pos, e - pos);
    pos = e + 1;
    ++lineNo;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (lineNo == 1 && line.compare(0, 8, "#version") == 0)) continue;
    size_t sp = line.find(' ');
    if (sp == std::string::npos || sp == 0 || sp + 1 >= line.size() ||
        line.find(' ', sp + 1) != std::string::npos)
      return error(PHOTON_ERR_FORMAT, mergesPath + ": line " + std::to_string(lineNo) +
                                          ": expected two symbols separated by one space");
    t->mergeRank_.emplace(line, rank++);
  }
  out = std::move(t);
  return Status::ok();
}

void BpeTokenizer::bpe(const std::string &piece, std::vector<int32_t> &out) const {
  // Symbols in byte-encoded unicode form.
  std::vector<std::string> word;
  for (unsigned char c : piece) word.push_back(byteToUnicode_[c]);
  while (word.size() > 1) {
    int32_t best = INT32_MAX;
    size_t bestAt = 0;
    for (size_t k = 0; k + 1 < word.size(); ++k) {
      auto it = mergeRank_.find(word[k] + " " + word[k + 1]);
      if (it != mergeRank_.end() && it->second < best) { best = it->second; bestAt = k; }
    }
    if (best == INT32_MAX) break;
    const std::string first = word[bestAt], second = word[bestAt + 1];
    std::vector<std::string> merged;
    merged.reserve(word.size());
    for (size_t k = 0; k < word.size();) {
      if (k + 1 < word.size() && word[k] == first && word[k + 1] == second) {
        merged.push_back(first + second);
        k += 2;
      } else {
        merged.push_back(word[k]);
        k += 1;
      }
    }
    word.swap(merged);
  }
  for (const auto &w : word) {
    auto it = tokenToId_.find(w);
    if (it != tokenToId_.end()) out.push_back(it->second);
    else // cannot happen with a complete byte vocabulary; fall back to single bytes
      for (const Cp &c : decodeUtf8(w)) {
        std::string u;
        appendUtf8(u, c.cp);
        auto jt = tokenToId_.find(u);
        if (jt != tokenToId_.end()) out.push_back(jt->second);
      }
  }
}

std::vector<int32_t> BpeTokenizer::encode(const std::string &text) const {
  std::vector<int32_t> out;
  for (const auto &p : pretokenize(text)) bpe(p, out);
  return out;
}

std::string BpeTokenizer::tokenBytes(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= idToBytes_.size()) return std::string();
  return idToBytes_[id];
}

namespace {

/// libphoton_sentencepiece.so, opened once per process and kept (its functions below).
struct SentencePieceShim {
  decltype(&photon_sp_load) load = nullptr;
  decltype(&photon_sp_free) free = nullptr;
  decltype(&photon_sp_piece_size) pieceSize = nullptr;
  decltype(&photon_sp_eos_id) eosId = nullptr;
  decltype(&photon_sp_encode) encode = nullptr;
  decltype(&photon_sp_free_ids) freeIds = nullptr;
  decltype(&photon_sp_token_bytes) tokenBytes = nullptr;
  std::string error; // why it could not be opened
};

void anchor() {}

const SentencePieceShim &sentencePieceShim() {
  static SentencePieceShim shim;
  static std::once_flag once;
  std::call_once(once, [] {
    // Candidates: $PHOTON_SENTENCEPIECE_LIB; beside the object that holds this code
    // (libphoton.so, or an executable linked with the static runtime) and in ../lib from
    // it (an installed tree, the build tree's bin/); the build tree's path; the loader's
    // search path.
    const char *name = "libphoton_sentencepiece.so";
    std::vector<std::string> candidates;
    if (const char *env = std::getenv("PHOTON_SENTENCEPIECE_LIB"))
      if (*env) candidates.push_back(env);
    Dl_info info;
    if (dladdr(reinterpret_cast<void *>(&anchor), &info) && info.dli_fname) {
      std::string self = info.dli_fname;
      size_t slash = self.rfind('/');
      std::string dir = slash == std::string::npos ? "." : self.substr(0, slash);
      candidates.push_back(dir + "/" + name);
      candidates.push_back(dir + "/../lib/" + name);
    }
#ifdef PHOTON_SENTENCEPIECE_BUILD_PATH
    candidates.push_back(PHOTON_SENTENCEPIECE_BUILD_PATH);
#endif
    candidates.push_back(name);
    // RTLD_LOCAL keeps the protobuf symbols libsentencepiece exports out of the global
    // scope, RTLD_DEEPBIND binds libsentencepiece to its own copies, not to a libprotobuf
    // already in the process (sentencepiece_shim.h). The sanitizer runtimes refuse
    // RTLD_DEEPBIND.
    int flags = RTLD_NOW | RTLD_LOCAL;
#if !defined(__SANITIZE_ADDRESS__) && !defined(PHOTON_SANITIZERS)
#if defined(__has_feature)
#if !__has_feature(address_sanitizer)
    flags |= RTLD_DEEPBIND;
#endif
#else
    flags |= RTLD_DEEPBIND;
#endif
#endif
    void *h = nullptr;
    std::string tried;
    for (const std::string &c : candidates) {
      if (c.find('/') != std::string::npos && access(c.c_str(), R_OK) != 0) continue;
      h = dlopen(c.c_str(), flags);
      if (h && dlsym(h, "photon_sp_load")) break;
      const char *e = h ? nullptr : dlerror();
      tried += (tried.empty() ? "" : "; ") + (e ? std::string(e) : c + ": not the SentencePiece shim");
      if (h) dlclose(h);
      h = nullptr;
    }
    if (!h) {
      shim.error = "cannot open libphoton_sentencepiece.so (SentencePiece tokenizers; set "
                   "PHOTON_SENTENCEPIECE_LIB to its path)" +
                   (tried.empty() ? std::string() : ": " + tried);
      return;
    }
    auto sym = [&](auto &fn, const char *s) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(h, s));
      if (!fn && shim.error.empty()) shim.error = std::string("libphoton_sentencepiece.so lacks ") + s;
    };
    sym(shim.load, "photon_sp_load");
    sym(shim.free, "photon_sp_free");
    sym(shim.pieceSize, "photon_sp_piece_size");
    sym(shim.eosId, "photon_sp_eos_id");
    sym(shim.encode, "photon_sp_encode");
    sym(shim.freeIds, "photon_sp_free_ids");
    sym(shim.tokenBytes, "photon_sp_token_bytes");
  });
  return shim;
}

} // namespace

SentencePieceTokenizer::~SentencePieceTokenizer() {
  if (sp_) sentencePieceShim().free(sp_);
}

Status SentencePieceTokenizer::load(const std::string &modelPath,
                                    std::unique_ptr<SentencePieceTokenizer> &out) {
  const SentencePieceShim &shim = sentencePieceShim();
  if (!shim.error.empty()) return error(PHOTON_ERR_FORMAT, shim.error);
  char err[512] = {0};
  std::unique_ptr<SentencePieceTokenizer> t(new SentencePieceTokenizer());
  t->sp_ = shim.load(modelPath.c_str(), err, sizeof err);
  if (!t->sp_)
    return error(PHOTON_ERR_FORMAT, "cannot load SentencePiece model '" + modelPath + "': " + err);
  const int32_t n = shim.pieceSize(t->sp_);
  if (n <= 0) return error(PHOTON_ERR_FORMAT, "SentencePiece model '" + modelPath + "' has no pieces");
  // The text of every token, once (the engine streams token by token).
  t->idToBytes_.resize(static_cast<size_t>(n));
  for (int32_t id = 0; id < n; ++id) {
    std::string &b = t->idToBytes_[static_cast<size_t>(id)];
    b.resize(64);
    int64_t len = shim.tokenBytes(t->sp_, id, b.data(), b.size());
    if (len > static_cast<int64_t>(b.size())) {
      b.resize(static_cast<size_t>(len));
      len = shim.tokenBytes(t->sp_, id, b.data(), b.size());
    }
    b.resize(static_cast<size_t>(std::max<int64_t>(len, 0)));
  }
  t->eos_ = shim.eosId(t->sp_);
  out = std::move(t);
  return Status();
}

std::vector<int32_t> SentencePieceTokenizer::encode(const std::string &text) const {
  const SentencePieceShim &shim = sentencePieceShim();
  int32_t *ids = nullptr;
  char err[256] = {0};
  int64_t n = shim.encode(sp_, text.data(), text.size(), &ids, err, sizeof err);
  if (n < 0) return {};
  std::vector<int32_t> out(ids, ids + n);
  shim.freeIds(ids);
  return out;
}

std::string SentencePieceTokenizer::tokenBytes(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= idToBytes_.size()) return std::string();
  return idToBytes_[static_cast<size_t>(id)];
}

} // namespace photon::rt
