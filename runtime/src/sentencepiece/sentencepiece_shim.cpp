// libphoton_sentencepiece.so: sentencepiece_shim.h over libsentencepiece's C++ API.
#include "sentencepiece_shim.h"

#include <sentencepiece_processor.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#define PHOTON_SP_EXPORT extern "C" __attribute__((visibility("default")))

struct photon_sp {
  sentencepiece::SentencePieceProcessor proc;
};

namespace {
void setError(char *err, size_t cap, const std::string &msg) {
  if (!err || cap == 0) return;
  size_t n = msg.size() < cap - 1 ? msg.size() : cap - 1;
  std::memcpy(err, msg.data(), n);
  err[n] = '\0';
}
} // namespace

PHOTON_SP_EXPORT photon_sp *photon_sp_load(const char *path, char *err, size_t err_cap) {
  photon_sp *sp = new (std::nothrow) photon_sp();
  if (!sp) {
    setError(err, err_cap, "out of memory");
    return nullptr;
  }
  sentencepiece::util::Status st = sp->proc.Load(path ? path : "");
  if (!st.ok()) {
    setError(err, err_cap, st.ToString());
    delete sp;
    return nullptr;
  }
  return sp;
}

PHOTON_SP_EXPORT void photon_sp_free(photon_sp *sp) { delete sp; }

PHOTON_SP_EXPORT int32_t photon_sp_piece_size(const photon_sp *sp) { return sp->proc.GetPieceSize(); }

PHOTON_SP_EXPORT int32_t photon_sp_eos_id(const photon_sp *sp) {
  int id = sp->proc.eos_id();
  return id >= 0 && id < sp->proc.GetPieceSize() ? id : -1;
}

PHOTON_SP_EXPORT int64_t photon_sp_encode(const photon_sp *sp, const char *text, size_t len,
                                          int32_t **ids, char *err, size_t err_cap) {
  std::vector<int> v;
  sentencepiece::util::Status st = sp->proc.Encode(std::string(text ? text : "", len), &v);
  if (!st.ok()) {
    setError(err, err_cap, st.ToString());
    return -1;
  }
  *ids = static_cast<int32_t *>(std::malloc(sizeof(int32_t) * (v.size() ? v.size() : 1)));
  if (!*ids) {
    setError(err, err_cap, "out of memory");
    return -1;
  }
  for (size_t i = 0; i < v.size(); ++i) (*ids)[i] = v[i];
  return static_cast<int64_t>(v.size());
}

PHOTON_SP_EXPORT void photon_sp_free_ids(int32_t *ids) { std::free(ids); }

PHOTON_SP_EXPORT int64_t photon_sp_token_bytes(const photon_sp *sp, int32_t id, char *out, size_t cap) {
  const auto &p = sp->proc;
  if (id < 0 || id >= p.GetPieceSize()) return -1;
  std::string b;
  if (p.IsControl(id)) {
    // <s>, </s>: no text
  } else if (p.IsByte(id)) {
    // "<0xNN>": its byte (Decode of a lone byte of a multi-byte character would be U+FFFD)
    unsigned v = 0;
    const std::string piece = p.IdToPiece(id);
    if (piece.size() == 6 && std::sscanf(piece.c_str(), "<0x%2X>", &v) == 1) b.assign(1, static_cast<char>(v));
  } else {
    if (!p.Decode(std::vector<int>{id}, &b).ok()) b.clear();
    // Decode strips the space of a sequence's first word piece when the model adds a dummy
    // prefix; inside a stream the piece has it.
    static const std::string kSpaceMark = "\xe2\x96\x81"; // U+2581
    const std::string piece = p.IdToPiece(id);
    if (piece.compare(0, kSpaceMark.size(), kSpaceMark) == 0 && (b.empty() || b[0] != ' '))
      b.insert(b.begin(), ' ');
  }
  if (out && cap) std::memcpy(out, b.data(), b.size() < cap ? b.size() : cap);
  return static_cast<int64_t>(b.size());
}
