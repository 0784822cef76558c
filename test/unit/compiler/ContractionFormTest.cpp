//===- ContractionFormTest.cpp - the conversion's matmuls as upstream sees them ---===//
//
// convert-photon-to-linalg lowers photon.linear, lm_head and the SwiGLU projections to a
// linalg.generic y[m, n] += x[m, k] * w[n, k] (w stored [N, K], as in the weights blob),
// and, for reduced-precision weights (photon-compile --weights), to the same generic with
// the weight widened in its body. These tests record what upstream linalg makes of those
// forms: linalg::isaContractionOpInterface (the check linalg's contraction transforms and
// tensor-core rewrites key on) and linalg::inferContractionDims. The f32 form is a
// contraction with m = d0, n = d1, k = d2, and so is the f16 / bf16 form; the q8 and q4
// forms are not. photon-gpu-tile-and-fuse relies on the f32 form being one to give it to the
// tensor-core path as a linalg.matmul with transposed-B indexing maps (test/Cuda/linear-mma.mlir).
//
//===----------------------------------------------------------------------===//

#include "photon/Conversion/Passes.h"
#include "photon/Dialect/PhotonDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/IR/LinalgInterfaces.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"

#include <gtest/gtest.h>

using namespace mlir;

namespace {

class ContractionFormTest : public ::testing::Test {
protected:
  ContractionFormTest() {
    ctx.loadDialect<func::FuncDialect, tensor::TensorDialect, linalg::LinalgDialect,
                    arith::ArithDialect, bufferization::BufferizationDialect,
                    photon::PhotonDialect>();
  }
  OwningOpRef<ModuleOp> parse(const std::string &src) {
    return parseSourceString<ModuleOp>(src, &ctx);
  }
  /// The generics with loops (parallel, parallel, reduction): the matmuls.
  static SmallVector<linalg::GenericOp> matmuls(ModuleOp m) {
    SmallVector<linalg::GenericOp> out;
    m.walk([&](linalg::GenericOp g) {
      if (g.getNumLoops() == 3 && g.getNumReductionLoops() == 1) out.push_back(g);
    });
    return out;
  }
  MLIRContext ctx;
};

/// photon.linear (with bias), lm_head and SwiGLU on f32 weights, lowered by the pass.
TEST_F(ContractionFormTest, F32MatmulsOfTheConversionAreContractions) {
  auto m = parse(R"mlir(
    func.func @forward(%x: tensor<?x?x32xf32>) -> tensor<?x?x64xf32> {
      %w = "photon.weight"() {name = "w", offset = 0 : i64} : () -> tensor<48x32xf32>
      %b = "photon.weight"() {name = "b", offset = 8192 : i64} : () -> tensor<48xf32>
      %wg = "photon.weight"() {name = "wg", offset = 16384 : i64} : () -> tensor<16x48xf32>
      %wu = "photon.weight"() {name = "wu", offset = 32768 : i64} : () -> tensor<16x48xf32>
      %wd = "photon.weight"() {name = "wd", offset = 49152 : i64} : () -> tensor<48x16xf32>
      %wh = "photon.weight"() {name = "wh", offset = 65536 : i64} : () -> tensor<64x48xf32>
      %y = "photon.linear"(%x, %w, %b) : (tensor<?x?x32xf32>, tensor<48x32xf32>, tensor<48xf32>) -> tensor<?x?x48xf32>
      %s = "photon.swiglu"(%y, %wg, %wu, %wd) : (tensor<?x?x48xf32>, tensor<16x48xf32>, tensor<16x48xf32>, tensor<48x16xf32>) -> tensor<?x?x48xf32>
      %l = "photon.lm_head"(%s, %wh) : (tensor<?x?x48xf32>, tensor<64x48xf32>) -> tensor<?x?x64xf32>
      return %l : tensor<?x?x64xf32>
    })mlir");
  ASSERT_TRUE(m);
  PassManager pm(&ctx);
  pm.addPass(photon::createConvertPhotonToLinalg());
  ASSERT_TRUE(succeeded(pm.run(*m)));
  SmallVector<linalg::GenericOp> mms = matmuls(*m);
  ASSERT_EQ(mms.size(), 5u); // linear, gate, up, down, lm_head
  for (linalg::GenericOp g : mms) {
    EXPECT_TRUE(linalg::isaContractionOpInterface(g));
    FailureOr<linalg::ContractionDimensions> dims = linalg::inferContractionDims(g);
    ASSERT_TRUE(succeeded(dims));
    EXPECT_EQ(dims->m, SmallVector<unsigned>{0});
    EXPECT_EQ(dims->n, SmallVector<unsigned>{1});
    EXPECT_EQ(dims->k, SmallVector<unsigned>{2});
    EXPECT_TRUE(dims->batch.empty());
  }
}

/// The reduced-precision forms, as convert-photon-to-linalg writes them (TensorLowering.cpp,
/// matmulT): f16 / bf16 widened by extf in the body; q8 with a third input, the scales
/// d[n, k floordiv 32]; q4 reading two weights per byte through (n, k floordiv 32 * 16 +
/// k mod 16) and selecting the nibble by linalg.index.
TEST_F(ContractionFormTest, WideningFormsAsUpstreamSeesThem) {
  auto m = parse(R"mlir(
    #x = affine_map<(m, n, k) -> (m, k)>
    #w = affine_map<(m, n, k) -> (n, k)>
    #d = affine_map<(m, n, k) -> (n, k floordiv 32)>
    #p = affine_map<(m, n, k) -> (n, (k floordiv 32) * 16 + k mod 16)>
    #y = affine_map<(m, n, k) -> (m, n)>
    func.func @f16(%x: tensor<?x64xf32>, %w: tensor<16x64xf16>, %y: tensor<?x16xf32>) -> tensor<?x16xf32> {
      %r = linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
          ins(%x, %w : tensor<?x64xf32>, tensor<16x64xf16>) outs(%y : tensor<?x16xf32>) {
      ^bb0(%a: f32, %b: f16, %c: f32):
        %wv = arith.extf %b : f16 to f32
        %p = arith.mulf %a, %wv fastmath<reassoc,contract> : f32
        %s = arith.addf %c, %p fastmath<reassoc,contract> : f32
        linalg.yield %s : f32
      } -> tensor<?x16xf32>
      return %r : tensor<?x16xf32>
    }
    func.func @q8(%x: tensor<?x64xf32>, %q: tensor<16x64xi8>, %d: tensor<16x2xf16>, %y: tensor<?x16xf32>) -> tensor<?x16xf32> {
      %r = linalg.generic {indexing_maps = [#x, #w, #d, #y], iterator_types = ["parallel", "parallel", "reduction"]}
          ins(%x, %q, %d : tensor<?x64xf32>, tensor<16x64xi8>, tensor<16x2xf16>) outs(%y : tensor<?x16xf32>) {
      ^bb0(%a: f32, %b: i8, %e: f16, %c: f32):
        %qf = arith.sitofp %b : i8 to f32
        %df = arith.extf %e : f16 to f32
        %wv = arith.mulf %qf, %df : f32
        %p = arith.mulf %a, %wv fastmath<reassoc,contract> : f32
        %s = arith.addf %c, %p fastmath<reassoc,contract> : f32
        linalg.yield %s : f32
      } -> tensor<?x16xf32>
      return %r : tensor<?x16xf32>
    }
    func.func @q4(%x: tensor<?x64xf32>, %q: tensor<16x32xi8>, %d: tensor<16x2xf16>, %y: tensor<?x16xf32>) -> tensor<?x16xf32> {
      %r = linalg.generic {indexing_maps = [#x, #p, #d, #y], iterator_types = ["parallel", "parallel", "reduction"]}
          ins(%x, %q, %d : tensor<?x64xf32>, tensor<16x32xi8>, tensor<16x2xf16>) outs(%y : tensor<?x16xf32>) {
      ^bb0(%a: f32, %b: i8, %e: f16, %c: f32):
        %k = linalg.index 2 : index
        %c32 = arith.constant 32 : index
        %c16 = arith.constant 16 : index
        %c15 = arith.constant 15 : i8
        %c4 = arith.constant 4 : i8
        %c8 = arith.constant 8 : i8
        %rk = arith.remui %k, %c32 : index
        %hi = arith.cmpi uge, %rk, %c16 : index
        %lo = arith.andi %b, %c15 : i8
        %sh = arith.shrui %b, %c4 : i8
        %nib = arith.select %hi, %sh, %lo : i8
        %q8 = arith.subi %nib, %c8 : i8
        %qf = arith.sitofp %q8 : i8 to f32
        %df = arith.extf %e : f16 to f32
        %wv = arith.mulf %qf, %df : f32
        %p = arith.mulf %a, %wv fastmath<reassoc,contract> : f32
        %s = arith.addf %c, %p fastmath<reassoc,contract> : f32
        linalg.yield %s : f32
      } -> tensor<?x16xf32>
      return %r : tensor<?x16xf32>
    })mlir");
  ASSERT_TRUE(m);
  llvm::StringMap<bool> contraction;
  m->walk([&](linalg::GenericOp g) {
    contraction[g->getParentOfType<func::FuncOp>().getSymName()] =
        linalg::isaContractionOpInterface(g);
  });
  ASSERT_EQ(contraction.size(), 3u);
  // f16 / bf16: two inputs, projected permutations, a mul-add body with a cast in it.
  EXPECT_TRUE(contraction["f16"]);
  // q8: a third input (the scales); q4: also a map that is not a projected permutation and
  // linalg.index in the body. Neither is a contraction to upstream.
  EXPECT_FALSE(contraction["q8"]);
  EXPECT_FALSE(contraction["q4"]);
}

} // namespace
