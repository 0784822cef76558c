//===- Tokenizer.h - the tokenizer an artifact carries -------------*- C++ -*-===//
//
// photon-compile --tokenizer SPEC: which tokenizer the runtime uses for the artifact
// (docs/artifact.md, model.tokenizer). SPEC is
//   byte           token id = byte (the default when --tokenizer is not given)
//   FILE.json      GPT-2 byte-level BPE: FILE.json (vocab.json) with merges.txt beside it
//   FILE           any other file: a SentencePiece model (the runtime loads it with
//                  libsentencepiece when it loads the artifact, and refuses a file that is
//                  not one or has more pieces than the model's vocabulary)
// The files are copied into the artifact; the manifest entry names them.
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_TARGET_TOKENIZER_H
#define PHOTON_TARGET_TOKENIZER_H

#include "llvm/Support/JSON.h"

#include <cstdint>
#include <string>

namespace mlir {
namespace photon {

/// Copies the tokenizer files of `spec` into `artifactDir` and sets `entry` to the
/// manifest's model.tokenizer object. `modelVocab` is the model's vocabulary (the
/// tokenizer must not have more ids). Returns false with `err` set on failure.
bool addTokenizer(const std::string &spec, int64_t modelVocab, const std::string &artifactDir,
                  llvm::json::Object &entry, std::string &err);

} // namespace photon
} // namespace mlir

#endif // PHOTON_TARGET_TOKENIZER_H
