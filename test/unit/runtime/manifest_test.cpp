#include "artifact.h"
#include "test_artifact.h"

#include "photon/photon.h"

#include <gtest/gtest.h>

#include <fstream>

using namespace photon::rt;

namespace {
std::string tmpDir(const std::string &name) {
  std::string d = ::testing::TempDir() + "photon-" + name + "-" + std::to_string(getpid());
  return d;
}

// The example manifest of docs/artifact.md must parse.
const char *kDocManifest = R"({
  "format": "photon-artifact", "format_version": 1, "abi": "photon-abi-1",
  "compiler": {"name": "photon-compile", "version": "0.1.0", "mlir": "22.1.8"},
  "target": {"kind": "cpu", "triple": "x86_64-pc-linux-gnu", "cpu": "znver3",
             "features": ["avx2", "fma"]},
  "model": {"family": "photon", "vocab": 256, "width": 128, "levels": 2,
            "chunk_sizes": [4, 4], "prefix": 2, "max_context": 4096,
            "tokenizer": {"kind": "byte"}},
  "library": "model.so",
  "weights": {"file": "weights.bin", "bytes": 7340032, "checksum": "fnv1a64:0123456789abcdef"},
  "start_latents": {"1": "dec1.start", "2": "dec2.start"},
  "caches": [
    {"level": 1, "layers": 2, "kv_heads": 4, "head_dim": 32, "dtype": "f32",
     "block_size": 16, "bytes_per_unit": 2048, "tokens_per_unit": 4, "modes": ["hiergen"]},
    {"level": 2, "layers": 2, "kv_heads": 4, "head_dim": 32, "dtype": "f32",
     "block_size": 16, "bytes_per_unit": 2048, "tokens_per_unit": 16, "modes": ["hiergen", "recgen"]}
  ],
  "stages": [
    {"name": "encode_1", "symbol": "photon_encode_1", "args": [
      {"name": "weights", "dtype": "i8", "shape": ["W"]},
      {"name": "tokens", "dtype": "i32", "shape": ["B", "n*4"], "io": "in"},
      {"name": "pool", "dtype": "f32", "shape": ["NB", 2, 2, 16, 4, 32], "io": "inout"},
      {"name": "table", "dtype": "i32", "shape": ["B", "MB"], "io": "in"},
      {"name": "lens", "dtype": "i32", "shape": ["B"], "io": "in"},
      {"name": "out", "dtype": "f32", "shape": ["B", "n", 128], "io": "out"}]}
  ],
  "cost_model": {"cache_bytes_per_1k_tokens": {"1": 0, "2": 0, "total": 0},
                 "weight_bytes_per_token": 0, "flops_per_token": 0}
})";
} // namespace

TEST(Manifest, ParsesTheDocumentedExample) {
  Manifest m;
  Status st = parseManifest(kDocManifest, "manifest.json", m);
  ASSERT_TRUE(st.isOk()) << st.message();
  EXPECT_EQ(m.family, PHOTON_FAMILY_PHOTON);
  EXPECT_EQ(m.levels, 2);
  EXPECT_EQ(m.chunkSizes, (std::vector<int>{4, 4}));
  EXPECT_EQ(m.tokensPerStep(), 16);
  EXPECT_EQ(m.checksum, 0x0123456789abcdefull);
  ASSERT_EQ(m.caches.size(), 2u);
  EXPECT_EQ(m.cache(2)->tokensPerUnit, 16);
  EXPECT_TRUE(m.cache(2)->usedIn("recgen"));
  EXPECT_FALSE(m.cache(1)->usedIn("recgen"));
  EXPECT_EQ(m.startLatents.at(2), "dec2.start");
  ASSERT_NE(m.stage("encode_1"), nullptr);
  EXPECT_EQ(m.stage("encode_1")->args[2].shape[3], "16");
  EXPECT_TRUE(m.decoderShift);
}

TEST(Manifest, F16Caches) {
  std::string text = kDocManifest;
  const std::string from = "\"dtype\": \"f32\",\n     \"block_size\": 16, \"bytes_per_unit\": 2048";
  size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos);
  text.replace(at, from.size(), "\"dtype\": \"f16\",\n     \"block_size\": 16, \"bytes_per_unit\": 1024");
  Manifest m;
  Status st = parseManifest(text, "m.json", m);
  ASSERT_TRUE(st.isOk()) << st.message();
  EXPECT_EQ(m.cache(1)->dtype, "f16");
  EXPECT_EQ(m.cache(1)->elementBytes, 2);
  EXPECT_EQ(m.cache(1)->blockBytes(), 1024u * 16);
  EXPECT_EQ(m.cache(2)->elementBytes, 4);
}

// The stage workspace (photon-plan-workspace): optional; its byte counts are read as written
// and refused when negative, not integers or beyond what an engine could multiply by its batch.
TEST(Manifest, StageWorkspace) {
  auto parse = [](const std::string &ws, Manifest &m) {
    std::string text = kDocManifest;
    const std::string from = "\"library\": \"model.so\",";
    size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos);
    text.replace(at, from.size(), from + " \"workspace\": " + ws + ",");
    return parseManifest(text, "m.json", m);
  };
  Manifest none;
  ASSERT_TRUE(parseManifest(kDocManifest, "m.json", none).isOk());
  EXPECT_EQ(none.workspaceFixedBytes, 0);
  EXPECT_EQ(none.workspaceBytesPerSequence, 0);
  Manifest m;
  Status st = parse("{\"setter\": \"photon_workspace_set\", \"alignment\": 64, "
                    "\"fixed_bytes\": 317696, \"bytes_per_sequence\": 277248}", m);
  ASSERT_TRUE(st.isOk()) << st.message();
  EXPECT_EQ(m.workspaceFixedBytes, 317696);
  EXPECT_EQ(m.workspaceBytesPerSequence, 277248);
  auto refused = [&](const std::string &ws) {
    Manifest fresh;
    Status r = parse(ws, fresh);
    EXPECT_FALSE(r.isOk()) << ws;
    EXPECT_NE(r.message().find("workspace"), std::string::npos) << r.message();
    return r;
  };
  refused("{\"fixed_bytes\": -1, \"bytes_per_sequence\": 0}");
  refused("{\"fixed_bytes\": 0, \"bytes_per_sequence\": 1.5}");
  refused("{\"fixed_bytes\": 0}");
  refused("[1, 2]");
  st = refused("{\"fixed_bytes\": 0, \"bytes_per_sequence\": 1000000000000000}");
  EXPECT_NE(st.message().find("workspace"), std::string::npos) << st.message();
}

TEST(Manifest, RefusalsSayWhatToDo) {
  auto refuse = [](std::string from, std::string to) {
    std::string text = kDocManifest;
    size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
    Manifest m;
    return parseManifest(text, "m.json", m);
  };
  Status st = refuse("\"format_version\": 1", "\"format_version\": 2");
  EXPECT_EQ(st.code(), PHOTON_ERR_FORMAT);
  EXPECT_NE(st.message().find("format_version 2"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("recompile"), std::string::npos) << st.message();
  st = refuse("\"abi\": \"photon-abi-1\"", "\"abi\": \"photon-abi-0\"");
  EXPECT_EQ(st.code(), PHOTON_ERR_ABI);
  st = refuse("\"bytes_per_unit\": 2048, \"tokens_per_unit\": 4", "\"bytes_per_unit\": 1000, \"tokens_per_unit\": 4");
  EXPECT_EQ(st.code(), PHOTON_ERR_FORMAT);
  EXPECT_NE(st.message().find("2*layers*kv_heads*head_dim*4 (f32) = 2048"), std::string::npos) << st.message();
  st = refuse("\"family\": \"photon\"", "\"family\": \"mamba\"");
  EXPECT_NE(st.message().find("model.family"), std::string::npos) << st.message();
  st = refuse("\"chunk_sizes\": [4, 4]", "\"chunk_sizes\": [4]");
  EXPECT_NE(st.message().find("chunk_sizes"), std::string::npos) << st.message();
  st = refuse("\"checksum\": \"fnv1a64:0123456789abcdef\"", "\"checksum\": \"md5:00\"");
  EXPECT_NE(st.message().find("fnv1a64"), std::string::npos) << st.message();
  st = refuse("\"dtype\": \"f32\",\n     \"block_size\": 16, \"bytes_per_unit\": 2048, \"tokens_per_unit\": 4",
              "\"dtype\": \"bf16\",\n     \"block_size\": 16, \"bytes_per_unit\": 2048, \"tokens_per_unit\": 4");
  EXPECT_NE(st.message().find("expected f32 or f16 caches, got \"bf16\""), std::string::npos)
      << st.message();
  // An f16 cache (photon-compile --kv f16) takes 2 bytes per element: the f32 size is refused.
  st = refuse("\"dtype\": \"f32\",\n     \"block_size\": 16, \"bytes_per_unit\": 2048, \"tokens_per_unit\": 4",
              "\"dtype\": \"f16\",\n     \"block_size\": 16, \"bytes_per_unit\": 2048, \"tokens_per_unit\": 4");
  EXPECT_NE(st.message().find("2*layers*kv_heads*head_dim*2 (f16) = 1024"), std::string::npos)
      << st.message();
  Manifest m;
  st = parseManifest("{\"format\": ", "m.json", m);
  EXPECT_NE(st.message().find("m.json: invalid JSON at line 1"), std::string::npos) << st.message();
}

TEST(ModelLoad, LoadsAndMapsWeights) {
  std::string dir = tmpDir("load"), err;
  ASSERT_TRUE(photon_test::writeArtifact(dir, {}, err)) << err;
  std::unique_ptr<Model> m;
  Status st = Model::load(dir, {}, m);
  ASSERT_TRUE(st.isOk()) << st.message();
  EXPECT_EQ(m->manifest().family, PHOTON_FAMILY_PHOTON);
  ASSERT_NE(m->stage("encode_1"), nullptr);
  ASSERT_NE(m->stage("forward"), nullptr);
  EXPECT_EQ(m->stage("nonexistent"), nullptr);
  ASSERT_NE(m->startLatent(2), nullptr);
  float s2[8];
  photon_test::startLatent(2, s2);
  for (int k = 0; k < 8; ++k) EXPECT_FLOAT_EQ(m->startLatent(2)[k], s2[k]);
  // The start latent points into the mapping: the weights are not copied.
  const uint8_t *p = reinterpret_cast<const uint8_t *>(m->startLatent(2));
  EXPECT_GE(p, m->weights());
  EXPECT_LT(p, m->weights() + m->weightsSize());
  EXPECT_STREQ(m->tokenizer().kind(), "byte");
}

TEST(ModelLoad, ThroughTheCApi) {
  std::string dir = tmpDir("capi"), err;
  ASSERT_TRUE(photon_test::writeArtifact(dir, {}, err)) << err;
  photon_model *m = nullptr;
  ASSERT_EQ(photon_model_load(dir.c_str(), nullptr, &m), PHOTON_OK) << photon_last_error();
  photon_model_info info;
  info.struct_size = sizeof info;
  ASSERT_EQ(photon_model_get_info(m, &info), PHOTON_OK);
  EXPECT_EQ(info.family, PHOTON_FAMILY_PHOTON);
  EXPECT_EQ(info.levels, 2);
  EXPECT_EQ(info.tokens_per_step, 16);
  EXPECT_EQ(info.has_recgen, 1);
  EXPECT_EQ(info.cache_levels, 2);
  EXPECT_EQ(info.cache_bytes_per_unit[1], 16u);
  int32_t ids[8];
  size_t n = 0;
  ASSERT_EQ(photon_tokenize(m, "hey", 3, ids, 8, &n), PHOTON_OK);
  EXPECT_EQ(n, 3u);
  EXPECT_EQ(ids[0], 'h');
  char buf[8];
  ASSERT_EQ(photon_detokenize(m, ids, n, buf, sizeof buf, &n), PHOTON_OK);
  EXPECT_EQ(std::string(buf, n), "hey");
  photon_model_free(m);
  EXPECT_EQ(photon_model_load("/nonexistent/x.photon", nullptr, &m), PHOTON_ERR_IO);
  EXPECT_NE(std::string(photon_last_error()).find("/nonexistent/x.photon"), std::string::npos);
  EXPECT_EQ(m, nullptr);
}

TEST(ModelLoad, RefusesMismatches) {
  std::string err;
  std::unique_ptr<Model> m;
  {
    photon_test::ArtifactOptions o;
    o.corruptWeights = true;
    std::string dir = tmpDir("corrupt");
    ASSERT_TRUE(photon_test::writeArtifact(dir, o, err)) << err;
    Status st = Model::load(dir, {}, m);
    EXPECT_EQ(st.code(), PHOTON_ERR_CHECKSUM) << st.message();
    EXPECT_NE(st.message().find("recompile"), std::string::npos) << st.message();
    LoadOptions lo;
    lo.verifyChecksum = false; // explicitly skipped: loads
    EXPECT_TRUE(Model::load(dir, lo, m).isOk());
  }
  {
    // A feature this CPU lacks (if it has them all, the check cannot be exercised here).
    std::string missing;
    for (const char *f : {"avx512fp16", "avx512bf16", "avx512vnni", "avx512f", "avxvnni", "avx2"}) {
      bool known;
      if (!cpuHasFeature(f, known)) { missing = f; break; }
    }
    if (!missing.empty()) {
      photon_test::ArtifactOptions o;
      o.features = {"sse2", missing};
      std::string dir = tmpDir("cpu");
      ASSERT_TRUE(photon_test::writeArtifact(dir, o, err)) << err;
      Status st = Model::load(dir, {}, m);
      EXPECT_EQ(st.code(), PHOTON_ERR_TARGET) << st.message();
      EXPECT_NE(st.message().find(missing), std::string::npos) << st.message();
      EXPECT_NE(st.message().find("--cpu=native"), std::string::npos) << st.message();
    }
  }
  {
    photon_test::ArtifactOptions o;
    o.extraStageSymbol = "photon_not_there";
    std::string dir = tmpDir("sym");
    ASSERT_TRUE(photon_test::writeArtifact(dir, o, err)) << err;
    Status st = Model::load(dir, {}, m);
    EXPECT_EQ(st.code(), PHOTON_ERR_ABI) << st.message();
    EXPECT_NE(st.message().find("photon_not_there"), std::string::npos) << st.message();
  }
  {
    photon_test::ArtifactOptions o;
    o.formatVersion = 7;
    std::string dir = tmpDir("fmt");
    ASSERT_TRUE(photon_test::writeArtifact(dir, o, err)) << err;
    Status st = Model::load(dir, {}, m);
    EXPECT_EQ(st.code(), PHOTON_ERR_FORMAT) << st.message();
  }
  {
    Status st = Model::load(PHOTON_SOURCE_DIR "/README.md", {}, m);
    EXPECT_NE(st.code(), PHOTON_OK);
  }
}
