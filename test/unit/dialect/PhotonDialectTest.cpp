//===- PhotonDialectTest.cpp - C++ API tests of the photon dialect --------===//
//
// Builds photon ops through OpBuilder and checks that the verifiers accept the shapes
// of photon-model.md and reject broken ones with the documented messages; checks the
// attribute/type helpers other components use and the chunk-of-chunk fold.
//
//===----------------------------------------------------------------------===//

#include "photon/Dialect/PhotonAttrs.h"
#include "photon/Dialect/PhotonDialect.h"
#include "photon/Dialect/PhotonOps.h"
#include "photon/Dialect/PhotonTypes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <gtest/gtest.h>

#include <string>

using namespace mlir;
using namespace mlir::photon;

namespace {

class PhotonDialectTest : public ::testing::Test {
protected:
  PhotonDialectTest() : builder(&context) {
    context.loadDialect<PhotonDialect, func::FuncDialect, tensor::TensorDialect,
                        arith::ArithDialect, memref::MemRefDialect>();
    module = ModuleOp::create(builder.getUnknownLoc());
    builder.setInsertionPointToEnd(module->getBody());
    // Collect diagnostics instead of printing them.
    handler = std::make_unique<ScopedDiagnosticHandler>(&context, [this](Diagnostic &d) {
      diagnostics += d.str() + "\n";
      return success();
    });
  }

  /// A function with the given argument types; its arguments become values to use.
  ValueRange makeFunction(StringRef name, TypeRange args) {
    auto fn = func::FuncOp::create(builder, builder.getUnknownLoc(), name,
                                   builder.getFunctionType(args, {}));
    Block *entry = fn.addEntryBlock();
    builder.setInsertionPointToStart(entry);
    return entry->getArguments();
  }

  RankedTensorType tensor(ArrayRef<int64_t> shape, Attribute encoding = {}) {
    return RankedTensorType::get(shape, builder.getF32Type(), encoding);
  }

  /// Verifies `op`, returns whether it succeeded; diagnostics land in `diagnostics`.
  bool verifies(Operation *op) {
    diagnostics.clear();
    return succeeded(verify(op));
  }

  static constexpr int64_t kDyn = ShapedType::kDynamic;

  MLIRContext context;
  OpBuilder builder;
  OwningOpRef<ModuleOp> module;
  std::unique_ptr<ScopedDiagnosticHandler> handler;
  std::string diagnostics;
};

TEST_F(PhotonDialectTest, StreamAttrAndEncoding) {
  auto stream = StreamAttr::get(&context, /*level=*/1, /*rate=*/4);
  EXPECT_EQ(stream.getLevel(), 1);
  EXPECT_EQ(stream.getRate(), 4);
  RankedTensorType t = tensor({kDyn, kDyn, 128}, stream);
  EXPECT_EQ(getStreamEncoding(t), stream);
  EXPECT_FALSE(getStreamEncoding(tensor({2, 3})));
  EXPECT_FALSE(getStreamEncoding(builder.getF32Type()));

  auto emitError = [&] { return mlir::emitError(builder.getUnknownLoc()); };
  EXPECT_FALSE(StreamAttr::getChecked(emitError, &context, int64_t{1}, int64_t{0}));
  EXPECT_NE(diagnostics.find("expected stream rate (0) to be positive"), std::string::npos)
      << diagnostics;
}

TEST_F(PhotonDialectTest, HierarchyAttr) {
  auto h = HierarchyAttr::get(&context, "photon", 2, {4, 4}, 2, 128, 256);
  EXPECT_EQ(h.getFamily(), "photon");
  EXPECT_EQ(h.getChunkSizes().size(), 2u);
  EXPECT_EQ(h.getTokensPerUnit(0), 1);
  EXPECT_EQ(h.getTokensPerUnit(1), 4);
  EXPECT_EQ(h.getTokensPerUnit(2), 16);

  auto emitError = [&] { return mlir::emitError(builder.getUnknownLoc()); };
  EXPECT_FALSE(HierarchyAttr::getChecked(emitError, &context, StringRef("photon"),
                                         int64_t{2}, ArrayRef<int64_t>{4}, int64_t{2},
                                         int64_t{128}, int64_t{256}));
  EXPECT_NE(diagnostics.find("levels = 2 but 1 chunk sizes"), std::string::npos)
      << diagnostics;
}

TEST_F(PhotonDialectTest, KvCacheType) {
  auto cache = KvCacheType::get(&context, /*level=*/2, /*layers=*/2, /*kv_heads=*/4,
                                /*head_dim=*/32, /*block_size=*/16, builder.getF32Type());
  EXPECT_EQ(cache.getKvHeads(), 4);
  // K and V, 4 heads x 32, 4 bytes.
  EXPECT_EQ(cache.getBytesPerPositionPerLayer(), 2 * 4 * 32 * 4);
  SmallVector<int64_t> pool = cache.getPoolShape(kDyn);
  ASSERT_EQ(pool.size(), 6u);
  EXPECT_EQ(pool[0], kDyn);
  EXPECT_EQ(pool[1], 2);
  EXPECT_EQ(pool[2], 2);
  EXPECT_EQ(pool[3], 16);
  EXPECT_EQ(pool[4], 4);
  EXPECT_EQ(pool[5], 32);
  auto bf16 = KvCacheType::get(&context, 1, 1, 2, 64, 16, builder.getBF16Type());
  EXPECT_EQ(bf16.getBytesPerPositionPerLayer(), 2 * 2 * 64 * 2);

  auto emitError = [&] { return mlir::emitError(builder.getUnknownLoc()); };
  EXPECT_FALSE(KvCacheType::getChecked(emitError, &context, int64_t{1}, int64_t{1},
                                       int64_t{2}, int64_t{64}, int64_t{16},
                                       Type(builder.getI32Type())));
  EXPECT_NE(diagnostics.find("floating-point cache element type"), std::string::npos);
}

TEST_F(PhotonDialectTest, ChunkVerifier) {
  auto s0 = StreamAttr::get(&context, 0, 1);
  auto s1 = StreamAttr::get(&context, 1, 4);
  auto bad = StreamAttr::get(&context, 1, 8);
  ValueRange args =
      makeFunction("f", {tensor({2, 16, 32}, s0), tensor({2, 10, 32}), tensor({kDyn, kDyn, 32})});
  Location loc = builder.getUnknownLoc();

  auto good = ChunkOp::create(builder, loc, tensor({2, 4, 128}, s1), args[0], 4);
  EXPECT_TRUE(verifies(good)) << diagnostics;

  auto dynamic = ChunkOp::create(builder, loc, tensor({kDyn, kDyn, 128}), args[2], 4);
  EXPECT_TRUE(verifies(dynamic)) << diagnostics;

  auto indivisible = ChunkOp::create(builder, loc, tensor({2, kDyn, 128}), args[1], 4);
  EXPECT_FALSE(verifies(indivisible));
  EXPECT_NE(diagnostics.find("expected chunk size (4) to divide stream length (10)"),
            std::string::npos)
      << diagnostics;

  auto wrongRate = ChunkOp::create(builder, loc, tensor({2, 4, 128}, bad), args[0], 4);
  EXPECT_FALSE(verifies(wrongRate));
  EXPECT_NE(diagnostics.find("expected result stream rate (8) to equal operand rate (1) * "
                             "chunk size (4) = 4"),
            std::string::npos)
      << diagnostics;
}

TEST_F(PhotonDialectTest, AttentionVerifiers) {
  ValueRange args = makeFunction(
      "f", {tensor({2, 16, 4, 32}), tensor({2, 16, 2, 32}), tensor({2, 16, 3, 32}),
            tensor({8, 5, 4, 32}), tensor({8, 6, 4, 32})});
  Location loc = builder.getUnknownLoc();
  FloatAttr scale = builder.getF32FloatAttr(0.17f);

  auto gqa = CausalAttentionOp::create(builder, loc, tensor({2, 16, 4, 32}), args[0],
                                       args[1], args[1], scale);
  EXPECT_TRUE(verifies(gqa)) << diagnostics;

  auto badGroups = CausalAttentionOp::create(builder, loc, tensor({2, 16, 4, 32}), args[0],
                                             args[2], args[2], scale);
  EXPECT_FALSE(verifies(badGroups));
  EXPECT_NE(diagnostics.find("expected query heads (4) to be a multiple of key/value "
                             "heads (3)"),
            std::string::npos)
      << diagnostics;

  auto window = BoundedAttentionOp::create(builder, loc, tensor({8, 5, 4, 32}), args[3],
                                           args[3], args[3],
                                           /*prefix=*/builder.getI64IntegerAttr(2),
                                           /*chunk=*/builder.getI64IntegerAttr(4), scale);
  EXPECT_TRUE(verifies(window)) << diagnostics;

  auto tooLong = BoundedAttentionOp::create(builder, loc, tensor({8, 6, 4, 32}), args[4],
                                            args[4], args[4], builder.getI64IntegerAttr(2),
                                            builder.getI64IntegerAttr(4), scale);
  EXPECT_FALSE(verifies(tooLong));
  EXPECT_NE(diagnostics.find("expected window length (6) to be at most prefix + chunk - 1 "
                             "(5)"),
            std::string::npos)
      << diagnostics;
}

TEST_F(PhotonDialectTest, CacheOpsMatchTheCacheType) {
  auto cacheType = KvCacheType::get(&context, 2, 2, 2, 32, 16, builder.getF32Type());
  auto pool = MemRefType::get({kDyn, 2, 2, 16, 2, 32}, builder.getF32Type());
  auto badPool = MemRefType::get({kDyn, 2, 2, 16, 4, 32}, builder.getF32Type());
  auto table = MemRefType::get({kDyn, kDyn}, builder.getI32Type());
  auto lens = MemRefType::get({kDyn}, builder.getI32Type());
  ValueRange args = makeFunction("f", {pool, badPool, table, lens, tensor({kDyn, 1, 4, 32}),
                                       tensor({kDyn, 1, 2, 32}), tensor({kDyn, 1, 4, 16})});
  Location loc = builder.getUnknownLoc();

  auto bind = CacheBindOp::create(builder, loc, cacheType, args[0], args[2], args[3]);
  EXPECT_TRUE(verifies(bind)) << diagnostics;
  auto badBind = CacheBindOp::create(builder, loc, cacheType, args[1], args[2], args[3]);
  EXPECT_FALSE(verifies(badBind));
  EXPECT_NE(diagnostics.find("expected pool dimension 4 (kv_heads) (4) to equal the "
                             "cache's kv_heads (2)"),
            std::string::npos)
      << diagnostics;

  auto append = KvAppendOp::create(builder, loc, bind.getCache(), args[5], args[5], /*layer=*/1);
  EXPECT_TRUE(verifies(append)) << diagnostics;
  auto appendWrongLayer = KvAppendOp::create(builder, loc, bind.getCache(), args[5], args[5], 2);
  EXPECT_FALSE(verifies(appendWrongLayer));
  EXPECT_NE(diagnostics.find("expected layer (2) to be in [0, 2)"), std::string::npos);
  auto appendWrongHeads = KvAppendOp::create(builder, loc, bind.getCache(), args[4], args[4], 0);
  EXPECT_FALSE(verifies(appendWrongHeads));
  EXPECT_NE(diagnostics.find("expected key heads (4) to equal the cache's kv_heads (2)"),
            std::string::npos)
      << diagnostics;

  // Attribute-typed builders: a literal 0 would silently become a null IntegerAttr.
  FloatAttr scale = builder.getF32FloatAttr(0.17f);
  auto attend = CachedAttentionOp::create(builder, loc, tensor({kDyn, 1, 4, 32}), bind.getCache(),
                                          args[4], builder.getI64IntegerAttr(0), scale);
  EXPECT_TRUE(verifies(attend)) << diagnostics;
  auto wrongHeadDim = CachedAttentionOp::create(builder, loc, tensor({kDyn, 1, 4, 16}),
                                                bind.getCache(), args[6], builder.getI64IntegerAttr(0),
                                                scale);
  EXPECT_FALSE(verifies(wrongHeadDim));
  EXPECT_NE(diagnostics.find("expected query head dim (16) to equal the cache's head_dim "
                             "(32)"),
            std::string::npos)
      << diagnostics;

  // kv_append writes the cache; cached_attention only reads it.
  EXPECT_FALSE(isMemoryEffectFree(append));
  EXPECT_FALSE(isMemoryEffectFree(attend));
  EXPECT_TRUE(isMemoryEffectFree(bind));
  EXPECT_TRUE(wouldOpBeTriviallyDead(attend));
  EXPECT_FALSE(wouldOpBeTriviallyDead(append));
}

TEST_F(PhotonDialectTest, ExpandAndLinear) {
  ValueRange args = makeFunction("f", {tensor({kDyn, kDyn, 128}), tensor({256, 128}),
                                       tensor({256}), tensor({128, 128})});
  Location loc = builder.getUnknownLoc();
  auto expand = ExpandOp::create(builder, loc, tensor({kDyn, kDyn, 2, 128}), args[0],
                                 args[1], args[2], /*r=*/2);
  EXPECT_TRUE(verifies(expand)) << diagnostics;
  auto wrongR = ExpandOp::create(builder, loc, tensor({kDyn, kDyn, 3, 128}), args[0],
                                 args[1], args[2], 3);
  EXPECT_FALSE(verifies(wrongR));
  EXPECT_NE(diagnostics.find("expected w dimension 0 (256) to equal r * width (384)"),
            std::string::npos)
      << diagnostics;

  auto noBias = LinearOp::create(builder, loc, tensor({kDyn, kDyn, 128}), args[0], args[3],
                                 Value());
  EXPECT_TRUE(verifies(noBias)) << diagnostics;
  EXPECT_FALSE(noBias.getB());
  auto withBias = LinearOp::create(builder, loc, tensor({kDyn, kDyn, 256}), args[0],
                                   args[1], args[2]);
  EXPECT_TRUE(verifies(withBias)) << diagnostics;
}

TEST_F(PhotonDialectTest, ParseVerifyAndFoldChunks) {
  const char *source = R"mlir(
    module attributes {photon.hierarchy = #photon.hierarchy<family = "photon", levels = 2,
        chunk_sizes = [4, 4], prefix = 2, width = 128, vocab = 256>} {
      func.func @f(%x: tensor<2x64x8xf32>) -> tensor<2x4x128xf32> {
        %a = "photon.chunk"(%x) {size = 4 : i64} : (tensor<2x64x8xf32>) -> tensor<2x16x32xf32>
        %b = "photon.chunk"(%a) {size = 4 : i64} : (tensor<2x16x32xf32>) -> tensor<2x4x128xf32>
        return %b : tensor<2x4x128xf32>
      }
    })mlir";
  OwningOpRef<ModuleOp> parsed = parseSourceString<ModuleOp>(source, &context);
  ASSERT_TRUE(parsed) << diagnostics;
  auto h = (*parsed)->getAttrOfType<HierarchyAttr>(kHierarchyAttrName);
  ASSERT_TRUE(h);
  EXPECT_EQ(h.getWidth(), 128);

  RewritePatternSet patterns(&context);
  for (RegisteredOperationName name : context.getRegisteredOperations())
    name.getCanonicalizationPatterns(patterns, &context);
  ASSERT_TRUE(succeeded(applyPatternsGreedily(*parsed, std::move(patterns))));

  SmallVector<ChunkOp> chunks;
  parsed->walk([&](ChunkOp op) { chunks.push_back(op); });
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].getSize(), 16);
  EXPECT_EQ(chunks[0].getType().getShape(), ArrayRef<int64_t>({2, 4, 128}));
  EXPECT_TRUE(succeeded(verify(*parsed)));
}

TEST_F(PhotonDialectTest, ParseRejectsBrokenShapes) {
  const char *source = R"mlir(
      func.func @f(%x: tensor<?x?x128xf32>, %w: tensor<64xf32>) -> tensor<?x?x128xf32> {
        %0 = "photon.rms_norm"(%x, %w) {eps = 1.0e-05 : f32}
            : (tensor<?x?x128xf32>, tensor<64xf32>) -> tensor<?x?x128xf32>
        return %0 : tensor<?x?x128xf32>
      })mlir";
  diagnostics.clear();
  OwningOpRef<ModuleOp> parsed = parseSourceString<ModuleOp>(source, &context);
  EXPECT_FALSE(parsed);
  EXPECT_NE(diagnostics.find("expected norm weight size (64) to equal x width (128)"),
            std::string::npos)
      << diagnostics;
}

} // namespace
