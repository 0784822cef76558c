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
#include "photon/weights_format.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/IR/LinalgInterfaces.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FileUtilities.h"

#include <gtest/gtest.h>

using namespace mlir;

namespace {

class ContractionFormTest : public ::testing::Test {
protected:
  ContractionFormTest() {
    ctx.loadDialect<func::FuncDialect, tensor::TensorDialect, linalg::LinalgDialect,
                    arith::ArithDialect, bufferization::BufferizationDialect,
                    mlir::photon::PhotonDialect>();
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
  pm.addPass(mlir::photon::createConvertPhotonToLinalg());
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

/// The reduced-precision forms (photon-compile --weights): the conversion reads each
/// weight's dtype from the weights blob and widens it in the matmul's body: f16 / bf16 by
/// extf; q8 with a third input, the scales d[n, k floordiv 32]; q4 reading two weights per
/// byte through (n, k floordiv 32 * 16 + k mod 16) and selecting the nibble by linalg.index.
TEST_F(ContractionFormTest, WideningFormsAsUpstreamSeesThem) {
  namespace pw = ::photon::weights;
  SmallString<128> blob;
  ASSERT_FALSE(llvm::sys::fs::createTemporaryFile("contraction-form", "bin", blob));
  llvm::FileRemover remove(blob);
  pw::Writer w;
  w.declare("w_f32", pw::DType::F32, {16, 64});
  w.declare("w_f16", pw::DType::F16, {16, 64});
  w.declare("w_bf16", pw::DType::BF16, {16, 64});
  w.declare("w_q8", pw::DType::I8, {16, 64});
  w.declare(std::string("w_q8") + pw::kQ8ScalesSuffix, pw::DType::F16, {16, 2});
  w.declare("w_q4", pw::DType::I8, {16, 32});
  w.declare(std::string("w_q4") + pw::kQ4ScalesSuffix, pw::DType::F16, {16, 2});
  std::string error;
  ASSERT_TRUE(w.open(blob.str().str(), error)) << error;
  for (const pw::TensorInfo &t : w.tensors()) {
    std::vector<uint8_t> zeros(t.bytes, 0); // the conversion reads the index only
    w.writeData(zeros.data(), zeros.size());
    w.finishTensor();
  }
  ASSERT_TRUE(w.close(error)) << error;

  std::string src;
  for (const char *name : {"f32", "f16", "bf16", "q8", "q4"})
    src += std::string("func.func @") + name +
           "(%x: tensor<?x?x64xf32>) -> tensor<?x?x16xf32> {\n"
           "  %w = \"photon.weight\"() {name = \"w_" + name +
           "\"} : () -> tensor<16x64xf32>\n"
           "  %y = \"photon.linear\"(%x, %w) : (tensor<?x?x64xf32>, tensor<16x64xf32>) -> "
           "tensor<?x?x16xf32>\n"
           "  return %y : tensor<?x?x16xf32>\n}\n";
  auto m = parse(src);
  ASSERT_TRUE(m);
  mlir::photon::ConvertPhotonToLinalgOptions options;
  options.weightsFile = blob.str().str();
  PassManager pm(&ctx);
  pm.addPass(mlir::photon::createConvertPhotonToLinalg(options));
  ASSERT_TRUE(succeeded(pm.run(*m)));

  llvm::StringMap<bool> contraction;
  llvm::StringMap<unsigned> inputs;
  for (linalg::GenericOp g : matmuls(*m)) {
    StringRef f = g->getParentOfType<func::FuncOp>().getSymName();
    EXPECT_FALSE(contraction.count(f)) << "one matmul per function: " << f.str();
    contraction[f] = linalg::isaContractionOpInterface(g);
    inputs[f] = g.getNumDpsInputs();
  }
  ASSERT_EQ(contraction.size(), 5u);
  // f32: x and w; f16 / bf16: the same, an extf of w in the body.
  EXPECT_TRUE(contraction["f32"]);
  EXPECT_TRUE(contraction["f16"]);
  EXPECT_TRUE(contraction["bf16"]);
  EXPECT_EQ(inputs["f16"], 2u);
  // q8: a third input (the scales); q4: also a map that is no projected permutation and
  // linalg.index in the body. Neither is a contraction to upstream.
  EXPECT_EQ(inputs["q8"], 3u);
  EXPECT_EQ(inputs["q4"], 3u);
  EXPECT_FALSE(contraction["q8"]);
  EXPECT_FALSE(contraction["q4"]);
}

} // namespace
