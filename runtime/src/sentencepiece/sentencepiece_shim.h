// The C ABI of libphoton_sentencepiece.so, the runtime's one user of libsentencepiece.
//
// Debian's libsentencepiece exports the protobuf-lite it bundles, so a process that also
// has libprotobuf (the ONNX importer, a user's program) crashes at load when both are in the
// global symbol scope. libphoton therefore never links it: SentencePieceTokenizer opens this
// shim with dlopen(RTLD_LOCAL | RTLD_DEEPBIND) when an artifact's tokenizer is a
// SentencePiece model, and calls the functions below (tokenizer.cpp).
#ifndef PHOTON_RUNTIME_SENTENCEPIECE_SHIM_H
#define PHOTON_RUNTIME_SENTENCEPIECE_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct photon_sp photon_sp;

/* Loads a SentencePiece model; NULL on failure with a message in err (NUL-terminated). */
photon_sp *photon_sp_load(const char *path, char *err, size_t err_cap);
void photon_sp_free(photon_sp *sp);
int32_t photon_sp_piece_size(const photon_sp *sp);
/* The model's end-of-sequence id, -1 if it has none. */
int32_t photon_sp_eos_id(const photon_sp *sp);
/* Encodes `len` bytes of text into a malloc'ed array (*ids, free with photon_sp_free_ids);
 * returns the number of ids, or -1 with a message in err. */
int64_t photon_sp_encode(const photon_sp *sp, const char *text, size_t len, int32_t **ids,
                         char *err, size_t err_cap);
void photon_sp_free_ids(int32_t *ids);
/* The bytes of token `id` as the runtime streams it (tokenizer.h, SentencePieceTokenizer):
 * writes up to `cap` bytes and returns the full length, -1 for an id out of range. */
int64_t photon_sp_token_bytes(const photon_sp *sp, int32_t id, char *out, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
