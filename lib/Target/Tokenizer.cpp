//===- Tokenizer.cpp - the tokenizer an artifact carries -----------------===//
//
// photon-compile --tokenizer (include/photon/Target/Tokenizer.h).
//
//===----------------------------------------------------------------------===//

#include "photon/Target/Tokenizer.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

using namespace mlir::photon;

namespace {

bool copyInto(const std::string &from, const std::string &dir, const char *name, std::string &err) {
  llvm::SmallString<256> to(dir);
  llvm::sys::path::append(to, name);
  if (llvm::sys::fs::equivalent(from, to)) return true;
  if (auto ec = llvm::sys::fs::copy_file(from, to)) {
    err = "cannot copy tokenizer file '" + from + "' to '" + std::string(to) + "': " + ec.message();
    return false;
  }
  return true;
}

bool tooLarge(int64_t n, int64_t modelVocab, const std::string &what, std::string &err) {
  if (n <= modelVocab) return false;
  err = "--tokenizer: " + what + " has " + std::to_string(n) + " tokens but the model's vocabulary is " +
        std::to_string(modelVocab);
  return true;
}

} // namespace

bool mlir::photon::addTokenizer(const std::string &spec, int64_t modelVocab,
                                const std::string &artifactDir, llvm::json::Object &entry,
                                std::string &err) {
  if (spec.empty() || spec == "byte") {
    entry = llvm::json::Object{{"kind", "byte"}};
    return true;
  }
  if (!llvm::sys::fs::is_regular_file(spec)) {
    err = "--tokenizer: '" + spec + "' is not a file (expected byte, a SentencePiece model or a "
          "GPT-2 vocab.json with merges.txt beside it)";
    return false;
  }
  if (llvm::StringRef(spec).ends_with(".json")) {
    // GPT-2 byte-level BPE.
    llvm::SmallString<256> merges(llvm::sys::path::parent_path(spec));
    llvm::sys::path::append(merges, "merges.txt");
    if (!llvm::sys::fs::is_regular_file(merges)) {
      err = "--tokenizer: GPT-2 BPE vocabulary '" + spec + "' needs merges.txt beside it ('" +
            std::string(merges) + "' is missing)";
      return false;
    }
    auto buf = llvm::MemoryBuffer::getFile(spec);
    if (!buf) {
      err = "--tokenizer: cannot read '" + spec + "'";
      return false;
    }
    auto vocab = llvm::json::parse((*buf)->getBuffer());
    if (!vocab || !vocab->getAsObject()) {
      if (!vocab) llvm::consumeError(vocab.takeError());
      err = "--tokenizer: '" + spec + "' is not a JSON object (a GPT-2 vocab.json: token -> id)";
      return false;
    }
    if (tooLarge(static_cast<int64_t>(vocab->getAsObject()->size()), modelVocab, "'" + spec + "'", err))
      return false;
    if (!copyInto(spec, artifactDir, "vocab.json", err) ||
        !copyInto(std::string(merges), artifactDir, "merges.txt", err))
      return false;
    entry = llvm::json::Object{{"kind", "bpe"}, {"vocab", "vocab.json"}, {"merges", "merges.txt"}};
    return true;
  }
  // SentencePiece: copied as it is. The compiler does not link libsentencepiece (Debian's
  // exports the protobuf it bundles, which clashes with the importer's libprotobuf); the
  // runtime loads the model when it loads the artifact and refuses a file that is not one,
  // or one with more pieces than the model's vocabulary, naming the file.
  if (!copyInto(spec, artifactDir, "tokenizer.model", err)) return false;
  entry = llvm::json::Object{{"kind", "sentencepiece"}, {"model", "tokenizer.model"}};
  return true;
}
