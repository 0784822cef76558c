// A process with libprotobuf (the ONNX importer's, or a user's) loads SentencePiece
// tokenizers: Debian's libsentencepiece exports the protobuf-lite it bundles, so linking it
// next to libprotobuf crashes before main(); the runtime opens it through
// libphoton_sentencepiece.so with RTLD_LOCAL | RTLD_DEEPBIND instead (sentencepiece_shim.h).
#include "tokenizer.h"

#include <google/protobuf/stubs/common.h>
#include <gtest/gtest.h>

using namespace photon::rt;

TEST(SentencePieceWithProtobuf, LoadsAndEncodes) {
  GOOGLE_PROTOBUF_VERIFY_VERSION; // libprotobuf is linked and initialised in this process
  std::unique_ptr<SentencePieceTokenizer> t;
  Status st = SentencePieceTokenizer::load(
      std::string(PHOTON_SOURCE_DIR) + "/reference/data/austen-bpe4096.model", t);
  ASSERT_TRUE(st.isOk()) << st.message();
  EXPECT_EQ(t->encode("It is a truth\nuniversally"),
            (std::vector<int32_t>{935, 367, 261, 1997, 4036, 651, 4022, 1173, 562}));
  EXPECT_EQ(t->decode(t->encode("Mr. Darcy \xe2\x98\x83")), "Mr. Darcy \xe2\x98\x83");
}
