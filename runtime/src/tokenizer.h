// Tokenizers: byte-level (id = byte), GPT-2 byte-level BPE (vocab.json + merges.txt) and
// SentencePiece models (libsentencepiece).
#ifndef PHOTON_RUNTIME_TOKENIZER_H
#define PHOTON_RUNTIME_TOKENIZER_H

#include "status.h"

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

struct photon_sp; // sentencepiece/sentencepiece_shim.h

namespace photon::rt {

class Tokenizer {
public:
  virtual ~Tokenizer() = default;
  virtual const char *kind() const = 0;
  virtual int vocabSize() const = 0;
  virtual std::vector<int32_t> encode(const std::string &text) const = 0;
  /// The bytes of one token ("" for an unknown id).
  virtual std::string tokenBytes(int32_t id) const = 0;
  /// The end-of-sequence id, -1 if the tokenizer has none (the engine ends a sequence there).
  virtual int32_t eosId() const { return -1; }
  std::string decode(const std::vector<int32_t> &ids) const {
    std::string s;
    for (int32_t id : ids) s += tokenBytes(id);
    return s;
  }
};

class ByteTokenizer final : public Tokenizer {
public:
  const char *kind() const override { return "byte"; }
  int vocabSize() const override { return 256; }
  std::vector<int32_t> encode(const std::string &text) const override;
  std::string tokenBytes(int32_t id) const override;
};

/// GPT-2 byte-level BPE: the pre-tokenizer regex of GPT-2
///   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
/// then the bytes-to-unicode map, then merges by rank.
class BpeTokenizer final : public Tokenizer {
public:
  static Status load(const std::string &vocabJsonPath, const std::string &mergesPath,
                     std::unique_ptr<BpeTokenizer> &out);
  const char *kind() const override { return "bpe"; }
  int vocabSize() const override { return static_cast<int>(idToToken_.size()); }
  std::vector<int32_t> encode(const std::string &text) const override;
  std::string tokenBytes(int32_t id) const override;
  /// GPT-2's "<|endoftext|>" when the vocabulary has it.
  int32_t eosId() const override {
    auto it = tokenToId_.find("<|endoftext|>");
    return it == tokenToId_.end() ? -1 : it->second;
  }

  /// The pre-tokenizer alone (exposed for tests): splits UTF-8 text into GPT-2 pieces.
  static std::vector<std::string> pretokenize(const std::string &text);

private:
  void bpe(const std::string &piece, std::vector<int32_t> &out) const;
  std::unordered_map<std::string, int32_t> tokenToId_; // keys in byte-encoded unicode form
  std::vector<std::string> idToBytes_;                 // raw bytes of each id
  std::vector<std::string> idToToken_;
  std::unordered_map<std::string, int32_t> mergeRank_; // "a b" -> rank
  std::string byteToUnicode_[256];                     // UTF-8 of the mapped code point
};

/// A SentencePiece model (a `.model` file, BPE or unigram) through libsentencepiece, which
/// the runtime reaches through libphoton_sentencepiece.so (sentencepiece/sentencepiece_shim.h),
/// opened on first use. Encoding is the library's Encode; a token's bytes are the library's
/// Decode of that token alone (byte-fallback pieces <0xNN> give their byte, control pieces
/// nothing), with the leading space the library drops from a sequence's first piece when
/// the model adds a dummy prefix restored, so that concatenating tokens' bytes streams text
/// token by token. For a model without a dummy prefix or whitespace normalisation (the
/// bundled one) that concatenation equals the library's Decode of the sequence.
class SentencePieceTokenizer final : public Tokenizer {
public:
  static Status load(const std::string &modelPath, std::unique_ptr<SentencePieceTokenizer> &out);
  ~SentencePieceTokenizer() override;
  const char *kind() const override { return "sentencepiece"; }
  int vocabSize() const override { return static_cast<int>(idToBytes_.size()); }
  std::vector<int32_t> encode(const std::string &text) const override;
  std::string tokenBytes(int32_t id) const override;
  int32_t eosId() const override { return eos_; }

private:
  SentencePieceTokenizer() = default;
  ::photon_sp *sp_ = nullptr;
  std::vector<std::string> idToBytes_;
  int32_t eos_ = -1;
};

/// Bytes of the valid UTF-8 sequence starting at s[i], 0 if the bytes there are not one
/// (overlong forms, surrogates and code points above U+10FFFF are invalid). The tokenizers'
/// lenient decoding reads such a byte as U+FFFD.
size_t utf8SequenceLength(const std::string &s, size_t i);

} // namespace photon::rt

#endif
