//===- CachePlanTest.cpp - the cache planner and cost model --------------===//

#include "photon/Dialect/PhotonDialect.h"
#include "photon/Transforms/CachePlan.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

using namespace mlir;

namespace {

/// One attention layer per stack (Hkv kv heads of head_dim 8), as generic photon IR.
std::string stack(const std::string &name, const std::string &role, int level, int kvHeads,
                  bool bounded) {
  std::string k = "tensor<1x4x" + std::to_string(kvHeads) + "x8xf32>";
  std::string op = bounded ? "\"photon.bounded_attention\"(%q, %k, %k) {prefix = 2 : i64, "
                             "chunk = 4 : i64, scale = 0.35 : f32}"
                           : "\"photon.causal_attention\"(%q, %k, %k) {scale = 0.35 : f32}";
  return "func.func private @" + name +
         "(%x: tensor<?x?x32xf32>) -> tensor<?x?x32xf32> attributes {photon.role = \"" + role +
         "\", photon.level = " + std::to_string(level) +
         " : i64} {\n"
         "  %q = tensor.empty() : tensor<1x4x4x8xf32>\n"
         "  %k = tensor.empty() : " + k + "\n"
         "  %w = \"photon.weight\"() {name = \"" + name + ".w\"} : () -> tensor<32x32xf32>\n"
         "  %y = \"photon.linear\"(%x, %w) : (tensor<?x?x32xf32>, tensor<32x32xf32>) -> tensor<?x?x32xf32>\n"
         "  %a = " + op + " : (tensor<1x4x4x8xf32>, " + k + ", " + k +
         ") -> tensor<1x4x4x8xf32>\n"
         "  return %y : tensor<?x?x32xf32>\n}\n";
}

class CachePlanTest : public ::testing::Test {
protected:
  CachePlanTest() {
    // The planner reads typed photon ops and the #photon.hierarchy: the dialect is loaded.
    ctx.loadDialect<func::FuncDialect, tensor::TensorDialect, photon::PhotonDialect>();
    ctx.allowUnregisteredDialects(true);
  }
  OwningOpRef<ModuleOp> parse(const std::string &src) {
    return parseSourceString<ModuleOp>(src, &ctx);
  }
  MLIRContext ctx;
};

TEST_F(CachePlanTest, PhotonTwoLevelsMatchesSection3) {
  std::string src = "module attributes {photon.hierarchy = #photon.hierarchy<family = \"photon\", "
                    "levels = 2, chunk_sizes = [4, 4], prefix = 2, width = 32, vocab = 64>} {\n" +
                    stack("enc1", "encoder", 1, 2, false) + stack("enc2", "encoder", 2, 2, false) +
                    stack("dec1", "decoder", 1, 2, true) + stack("dec2", "decoder", 2, 2, true) +
                    "}\n";
  auto m = parse(src);
  ASSERT_TRUE(m);
  auto plan = photon::planCaches(*m, 16);
  ASSERT_TRUE(succeeded(plan));
  ASSERT_EQ(plan->caches.size(), 2u);
  // 2 * layers * kv_heads * head_dim * 4 bytes
  EXPECT_EQ(plan->caches[0].bytesPerUnit, 2 * 1 * 2 * 8 * 4);
  EXPECT_EQ(plan->caches[0].tokensPerUnit, 4);
  EXPECT_EQ(plan->caches[1].tokensPerUnit, 16);
  // section 3, HierGen: 2 d_kv e sum_l N_E(l) ceil(T / (C_1..C_l)), T = 1000
  int64_t dkvE = 2 * 2 * 8 * 4;
  EXPECT_EQ(plan->cacheBytesPer1kHierGen, dkvE * (250 + 63));
  EXPECT_EQ(plan->cacheBytesPer1kRecGen, dkvE * 63);
  EXPECT_EQ(plan->caches[0].bytesFor(69), dkvE * 18);
  // the vanilla of the same width has all 4 layers, every token cached
  EXPECT_EQ(plan->vanillaLayers, 4);
  EXPECT_EQ(plan->vanillaCacheBytesPer1k, 4 * dkvE * 1000);
  EXPECT_EQ(plan->caches[1].modes, (std::vector<std::string>{"hiergen", "recgen"}));
  EXPECT_EQ(plan->caches[0].modes, (std::vector<std::string>{"hiergen"}));
  // weights per token: enc1 / 4, enc2 / 16, dec2 runs 4 steps per 16 tokens, dec1 once per
  // step of the 16 / 4 = 4 chunk streams of a meta-context
  double w = 32 * 32 * 4;
  EXPECT_EQ(plan->tokenStreams, 4);
  EXPECT_DOUBLE_EQ(plan->weightBytesPerToken, w / 4 + w / 16 + w / 4 + w / 4);
  EXPECT_DOUBLE_EQ(plan->flopsPerToken, 2.0 * 32 * 32 * (1.0 / 4 + 1.0 / 16 + 1 + 1.0 / 4));
}

TEST_F(CachePlanTest, VanillaIsOneLevelPerToken) {
  std::string src = "module attributes {photon.hierarchy = #photon.hierarchy<family = \"vanilla\", "
                    "levels = 0, chunk_sizes = [], prefix = 0, width = 32, vocab = 64>} {\n" +
                    stack("stack", "encoder", 1, 4, false) + "}\n";
  auto m = parse(src);
  ASSERT_TRUE(m);
  auto plan = photon::planCaches(*m, 16);
  ASSERT_TRUE(succeeded(plan));
  ASSERT_EQ(plan->caches.size(), 1u);
  EXPECT_EQ(plan->caches[0].tokensPerUnit, 1);
  EXPECT_TRUE(plan->caches[0].modes.empty());
  EXPECT_EQ(plan->cacheBytesPer1kHierGen, 2 * 4 * 8 * 4 * 1000);
  EXPECT_EQ(plan->cacheBytesPer1kHierGen, plan->vanillaCacheBytesPer1k);
}

TEST_F(CachePlanTest, MissingHierarchyIsAnError) {
  auto m = parse("module {}");
  ASSERT_TRUE(m);
  std::string msg;
  ScopedDiagnosticHandler h(&ctx, [&](Diagnostic &d) {
    msg = d.str();
    return success();
  });
  EXPECT_TRUE(failed(photon::planCaches(*m, 16)));
  EXPECT_NE(msg.find("photon.hierarchy"), std::string::npos);
}

TEST_F(CachePlanTest, ChunkSizeCountMustMatchLevels) {
  std::string src = "module attributes {photon.hierarchy = #photon.hierarchy<family = \"photon\", "
                    "levels = 2, chunk_sizes = [4], prefix = 2, width = 32, vocab = 64>} {\n" +
                    stack("enc1", "encoder", 1, 2, false) + "}\n";
  auto m = parse(src);
  if (!m) GTEST_SKIP() << "the registered dialect rejects the malformed hierarchy itself";
  std::string msg;
  ScopedDiagnosticHandler h(&ctx, [&](Diagnostic &d) {
    msg = d.str();
    return success();
  });
  EXPECT_TRUE(failed(photon::planCaches(*m, 16)));
  EXPECT_NE(msg.find("1 chunk sizes for 2 levels"), std::string::npos);
}

} // namespace
