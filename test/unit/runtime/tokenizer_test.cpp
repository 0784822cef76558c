#include "jsonio.h"
#include "tokenizer.h"
#include "artifact.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sys/stat.h>

using namespace photon::rt;

namespace {
const std::string kGpt2Dir = std::string(PHOTON_SOURCE_DIR) + "/test/fixtures/tokenizers/gpt2";
bool exists(const std::string &p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}
} // namespace

TEST(ByteTokenizer, RoundTripsAllBytes) {
  ByteTokenizer t;
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  std::vector<int32_t> ids = t.encode(all);
  ASSERT_EQ(ids.size(), 256u);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(ids[i], i);
  EXPECT_EQ(t.decode(ids), all);
  EXPECT_EQ(t.tokenBytes(300), "");
  EXPECT_EQ(t.encode("hi"), (std::vector<int32_t>{104, 105}));
}

TEST(BpePretokenizer, FollowsTheGpt2Regex) {
  using V = std::vector<std::string>;
  EXPECT_EQ(BpeTokenizer::pretokenize("Hello world"), (V{"Hello", " world"}));
  EXPECT_EQ(BpeTokenizer::pretokenize("it's 42!"), (V{"it", "'s", " 42", "!"}));
  EXPECT_EQ(BpeTokenizer::pretokenize("a   b"), (V{"a", "  ", " b"}));
  EXPECT_EQ(BpeTokenizer::pretokenize("end   "), (V{"end", "   "}));
  EXPECT_EQ(BpeTokenizer::pretokenize("x\n\ny"), (V{"x", "\n", "\n", "y"}));
  EXPECT_EQ(BpeTokenizer::pretokenize("caf\xc3\xa9 na\xc3\xafve"), (V{"caf\xc3\xa9", " na\xc3\xafve"}));
}

// Conformance with the original GPT-2 encoder (gpt-3-encoder's Encoder.js, run by node over
// the same vocab.json/merges.txt; expected.json holds its outputs).
TEST(BpeTokenizer, MatchesTheReferenceEncoder) {
  if (!exists(kGpt2Dir + "/vocab.json"))
    GTEST_SKIP() << "GPT-2 tokenizer files not found in " << kGpt2Dir;
  std::unique_ptr<BpeTokenizer> t;
  Status st = BpeTokenizer::load(kGpt2Dir + "/vocab.json", kGpt2Dir + "/merges.txt", t);
  ASSERT_TRUE(st.isOk()) << st.message();
  EXPECT_EQ(t->vocabSize(), 50257);
  std::string text;
  ASSERT_TRUE(readFile(kGpt2Dir + "/expected.json", text).isOk());
  Json cases;
  std::string err;
  ASSERT_TRUE(parseJson(text, cases, err)) << err;
  ASSERT_GE(cases.size(), 10u);
  for (const auto &c : cases) {
    const std::string s = c.at("text").get<std::string>();
    std::vector<int32_t> expect;
    for (const auto &id : c.at("ids")) expect.push_back(static_cast<int32_t>(jsonInt(id)));
    EXPECT_EQ(t->encode(s), expect) << "text: \"" << s << "\"";
    if (c.at("roundtrip").get<bool>()) EXPECT_EQ(t->decode(expect), s);
  }
  // Known single encodings.
  EXPECT_EQ(t->encode("Hello world"), (std::vector<int32_t>{15496, 995}));
  EXPECT_EQ(t->tokenBytes(50256), "<|endoftext|>");
}

TEST(BpeTokenizer, RefusesBrokenFiles) {
  std::string dir = ::testing::TempDir();
  std::ofstream(dir + "/bad_vocab.json") << "{\"a\": 0";
  std::ofstream(dir + "/merges.txt") << "#version: 0.2\na b\n";
  std::unique_ptr<BpeTokenizer> t;
  Status st = BpeTokenizer::load(dir + "/bad_vocab.json", dir + "/merges.txt", t);
  EXPECT_EQ(st.code(), PHOTON_ERR_FORMAT);
  EXPECT_NE(st.message().find("bad_vocab.json"), std::string::npos) << st.message();
  std::ofstream(dir + "/small_vocab.json") << "{\"a\": 0, \"b\": 1}";
  st = BpeTokenizer::load(dir + "/small_vocab.json", dir + "/merges.txt", t);
  EXPECT_EQ(st.code(), PHOTON_ERR_FORMAT);
  EXPECT_NE(st.message().find("single-byte token"), std::string::npos) << st.message();
  st = BpeTokenizer::load(dir + "/missing.json", dir + "/merges.txt", t);
  EXPECT_EQ(st.code(), PHOTON_ERR_IO);
}

// SentencePiece through libphoton_sentencepiece.so: the bundled model's encodings equal the
// Python binding's (expected.json, make_expected.py beside it); tokens' bytes concatenate to
// the text (the stream), including byte-fallback pieces of characters the corpus lacks.
namespace {
const std::string kSpDir = std::string(PHOTON_SOURCE_DIR) + "/test/fixtures/tokenizers/sentencepiece";
const std::string kSpModel = std::string(PHOTON_SOURCE_DIR) + "/reference/data/austen-bpe4096.model";
} // namespace

TEST(SentencePieceTokenizer, MatchesTheLibrarysPythonBinding) {
  std::unique_ptr<SentencePieceTokenizer> t;
  Status st = SentencePieceTokenizer::load(kSpModel, t);
  ASSERT_TRUE(st.isOk()) << st.message();
  EXPECT_STREQ(t->kind(), "sentencepiece");
  std::string text;
  ASSERT_TRUE(readFile(kSpDir + "/expected.json", text).isOk());
  Json doc;
  std::string err;
  ASSERT_TRUE(parseJson(text, doc, err)) << err;
  EXPECT_EQ(t->vocabSize(), jsonInt(doc.at("vocab")));
  EXPECT_EQ(t->eosId(), jsonInt(doc.at("eos")));
  ASSERT_GE(doc.at("cases").size(), 8u);
  for (const auto &c : doc.at("cases")) {
    const std::string s = c.at("text").get<std::string>();
    std::vector<int32_t> expect;
    for (const auto &id : c.at("ids")) expect.push_back(static_cast<int32_t>(jsonInt(id)));
    EXPECT_EQ(t->encode(s), expect) << "text: \"" << s << "\"";
    EXPECT_EQ(t->decode(expect), s);
    // One token at a time gives the same bytes (what photon-run streams).
    std::string streamed;
    for (int32_t id : expect) streamed += t->tokenBytes(id);
    EXPECT_EQ(streamed, s);
  }
  EXPECT_EQ(t->tokenBytes(t->eosId()), "");   // </s>: control, no text
  EXPECT_EQ(t->tokenBytes(3 + 'A'), "A");      // <0x41>
  EXPECT_EQ(t->tokenBytes(3 + 0xE2), "\xe2");  // a lone byte stays a byte
  EXPECT_EQ(t->tokenBytes(-1), "");
  EXPECT_EQ(t->tokenBytes(t->vocabSize()), "");
}

TEST(SentencePieceTokenizer, RefusesAFileThatIsNotAModel) {
  std::string path = ::testing::TempDir() + "/not_a_model.model";
  std::ofstream(path) << "this is not a serialized ModelProto";
  std::unique_ptr<SentencePieceTokenizer> t;
  Status st = SentencePieceTokenizer::load(path, t);
  EXPECT_EQ(st.code(), PHOTON_ERR_FORMAT);
  EXPECT_NE(st.message().find("not_a_model.model"), std::string::npos) << st.message();
  st = SentencePieceTokenizer::load(::testing::TempDir() + "/missing.model", t);
  EXPECT_EQ(st.code(), PHOTON_ERR_FORMAT);
  EXPECT_NE(st.message().find("missing.model"), std::string::npos) << st.message();
}
