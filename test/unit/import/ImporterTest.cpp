//===- ImporterTest.cpp - photon-import library API tests ----------------===//

#include "photon/Import/Importer.h"
#include "photon/weights_format.h"

#include "photon/Dialect/PhotonOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

// onnx_pb.h defines ONNX_API and includes onnx/onnx-ml.pb.h.
#include "onnx/onnx_pb.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <optional>
#include <unistd.h>
#include <fstream>
#include <set>

namespace {

using onnx::TensorProto;

class ImporterTest : public ::testing::Test {
protected:
  void SetUp() override {
    mlir::photon::loadImportDialects(ctx);
    handler = std::make_unique<mlir::ScopedDiagnosticHandler>(&ctx, [this](mlir::Diagnostic &d) {
      if (d.getSeverity() == mlir::DiagnosticSeverity::Error) errors += d.str() + "\n";
      return mlir::success();
    });
    llvm::SmallString<128> dir;
    ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("photon-import-test", dir));
    tmp = std::string(dir);
  }
  void TearDown() override { llvm::sys::fs::remove_directories(tmp); }

  static onnx::ModelProto baseModel() {
    onnx::ModelProto m;
    m.set_ir_version(8);
    auto *op = m.add_opset_import();
    op->set_domain("");
    op->set_version(17);
    m.mutable_graph()->set_name("g");
    return m;
  }
  static void addInput(onnx::GraphProto *g, const std::string &name, int dt,
                       std::vector<int64_t> shape, bool output = false) {
    auto *vi = output ? g->add_output() : g->add_input();
    vi->set_name(name);
    auto *tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(dt);
    auto *sh = tt->mutable_shape();
    for (int64_t d : shape) {
      if (d < 0) sh->add_dim()->set_dim_param("N");
      else sh->add_dim()->set_dim_value(d);
    }
  }
  /// x[2,3] MatMul w[3,2] -> y[2,2], w an f32 initializer (optionally external).
  onnx::ModelProto matmulModel(bool external) {
    auto m = baseModel();
    auto *g = m.mutable_graph();
    addInput(g, "x", TensorProto::FLOAT, {-1, 3});
    addInput(g, "y", TensorProto::FLOAT, {-1, 2}, true);
    auto *n = g->add_node();
    n->set_op_type("MatMul");
    n->set_name("mm");
    n->add_input("x");
    n->add_input("w");
    n->add_output("y");
    auto *w = g->add_initializer();
    w->set_name("w");
    w->set_data_type(TensorProto::FLOAT);
    w->add_dims(3);
    w->add_dims(2);
    float vals[6] = {1, 2, 3, 4, 5, 6};
    if (!external) {
      w->set_raw_data(std::string(reinterpret_cast<char *>(vals), sizeof(vals)));
    } else {
      std::ofstream side(tmp + "/w.data", std::ios::binary);
      char pad[16] = {};
      side.write(pad, 16); // non-zero offset
      side.write(reinterpret_cast<char *>(vals), sizeof(vals));
      w->set_data_location(TensorProto::EXTERNAL);
      auto kv = [&](const char *k, const std::string &v) {
        auto *e = w->add_external_data();
        e->set_key(k);
        e->set_value(v);
      };
      kv("location", "w.data");
      kv("offset", "16");
      kv("length", "24");
    }
    return m;
  }
  std::string save(const onnx::ModelProto &m, const std::string &name) {
    std::string p = tmp + "/" + name;
    std::ofstream f(p, std::ios::binary);
    m.SerializeToOstream(&f);
    return p;
  }
  /// The blob's index entry for `name`, if any; `buf` keeps the blob's bytes.
  std::optional<photon::weights::TensorInfo> blobEntry(const std::string &blob,
                                                       const std::string &name,
                                                       std::unique_ptr<llvm::MemoryBuffer> &buf) {
    auto f = llvm::MemoryBuffer::getFile(blob);
    EXPECT_TRUE(bool(f));
    if (!f) return std::nullopt;
    buf = std::move(*f);
    std::vector<photon::weights::TensorInfo> idx;
    std::string err;
    EXPECT_TRUE(photon::weights::parseIndex(buf->getBufferStart(), buf->getBufferSize(), idx, err)) << err;
    for (const auto &t : idx)
      if (t.name == name) return t;
    return std::nullopt;
  }
  bool blobHas(const std::string &blob, const std::string &name) {
    std::unique_ptr<llvm::MemoryBuffer> buf;
    return blobEntry(blob, name, buf).has_value();
  }
  std::vector<float> readBlobTensor(const std::string &blob, const std::string &name,
                                    std::vector<int64_t> &shape) {
    std::unique_ptr<llvm::MemoryBuffer> buf;
    if (auto t = blobEntry(blob, name, buf)) {
      shape = t->shape;
      EXPECT_EQ(t->offset % 64, 0u);
      std::vector<float> v(t->numElements());
      std::memcpy(v.data(), buf->getBufferStart() + t->offset, t->bytes);
      return v;
    }
    ADD_FAILURE() << "tensor " << name << " not in blob";
    return {};
  }

  mlir::MLIRContext ctx;
  std::unique_ptr<mlir::ScopedDiagnosticHandler> handler;
  std::string errors, tmp;
};

TEST_F(ImporterTest, GarbageBytesAreAnErrorNotACrash) {
  auto m = mlir::photon::importOnnxBytes(ctx, "\x08\x96\x01 this is not onnx \xff\xff", "");
  EXPECT_FALSE(m);
  EXPECT_NE(errors.find("ONNX"), std::string::npos) << errors;
}

TEST_F(ImporterTest, EmptyFileIsAnError) {
  std::ofstream(tmp + "/empty.onnx").close();
  EXPECT_FALSE(mlir::photon::importOnnxFile(ctx, tmp + "/empty.onnx"));
  EXPECT_NE(errors.find("empty"), std::string::npos) << errors;
}

TEST_F(ImporterTest, MatMulWithWeightsBlob) {
  std::string p = save(matmulModel(false), "mm.onnx");
  mlir::photon::ImportOptions o;
  o.weightsOut = tmp + "/w.bin";
  o.raiseLocal = false; // the converters' ops: the initializer as it is
  auto m = mlir::photon::importOnnxFile(ctx, p, o);
  ASSERT_TRUE(m) << errors;
  auto f = m->lookupSymbol<mlir::func::FuncOp>("g");
  ASSERT_TRUE(f);
  EXPECT_EQ(f.getFunctionType().getNumInputs(), 1u); // the initializer is not an argument
  bool sawWeight = false;
  m->walk([&](mlir::Operation *op) {
    if (op->getName().getStringRef() == "photon.weight") sawWeight = true;
    // Weights never become attributes: no dense constant of 6 floats.
    if (auto a = op->getAttrOfType<mlir::DenseElementsAttr>("value"))
      EXPECT_LT(a.getNumElements(), 6);
  });
  EXPECT_TRUE(sawWeight);
  std::vector<int64_t> shape;
  auto v = readBlobTensor(o.weightsOut, "w", shape);
  EXPECT_EQ(shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(v, (std::vector<float>{1, 2, 3, 4, 5, 6}));
}

TEST_F(ImporterTest, ExternalDataIsStreamedIntoTheBlob) {
  std::string p = save(matmulModel(true), "ext.onnx");
  mlir::photon::ImportOptions o;
  o.weightsOut = tmp + "/w.bin";
  o.raiseLocal = false;
  auto m = mlir::photon::importOnnxFile(ctx, p, o);
  ASSERT_TRUE(m) << errors;
  std::vector<int64_t> shape;
  auto v = readBlobTensor(o.weightsOut, "w", shape);
  EXPECT_EQ(v, (std::vector<float>{1, 2, 3, 4, 5, 6}));
}

// photon-raise-local reads the [in, out] initializer of MatMul(x, w) as photon.linear's
// [out, in] weight through a transpose; the importer writes it transposed as "w.T" (read
// from the external data file here) and drops "w", so no forward call transposes it.
TEST_F(ImporterTest, RaisedLinearWeightIsWrittenTransposed) {
  for (bool external : {false, true}) {
    std::string p = save(matmulModel(external), external ? "ext.onnx" : "mm.onnx");
    mlir::photon::ImportOptions o;
    o.weightsOut = tmp + "/w.bin";
    auto m = mlir::photon::importOnnxFile(ctx, p, o);
    ASSERT_TRUE(m) << errors;
    int linears = 0, transposes = 0;
    m->walk([&](mlir::photon::LinearOp) { ++linears; });
    m->walk([&](mlir::linalg::TransposeOp) { ++transposes; });
    EXPECT_EQ(linears, 1);
    EXPECT_EQ(transposes, 0);
    std::vector<int64_t> shape;
    auto v = readBlobTensor(o.weightsOut, "w.T", shape);
    EXPECT_EQ(shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(v, (std::vector<float>{1, 3, 5, 2, 4, 6}));
    EXPECT_FALSE(blobHas(o.weightsOut, "w"));
  }
}

TEST_F(ImporterTest, MissingExternalDataFile) {
  std::string p = save(matmulModel(true), "ext.onnx");
  llvm::sys::fs::remove(tmp + "/w.data");
  EXPECT_FALSE(mlir::photon::importOnnxFile(ctx, p));
  EXPECT_NE(errors.find("external-data file"), std::string::npos) << errors;
}

TEST_F(ImporterTest, TruncatedExternalDataFile) {
  std::string p = save(matmulModel(true), "ext.onnx");
  ::truncate((tmp + "/w.data").c_str(), 20);
  EXPECT_FALSE(mlir::photon::importOnnxFile(ctx, p));
  EXPECT_NE(errors.find("truncated"), std::string::npos) << errors;
}

TEST_F(ImporterTest, ExternalDataMustBeRelative) {
  auto m = matmulModel(true);
  m.mutable_graph()->mutable_initializer(0)->mutable_external_data(0)->set_value("/etc/passwd");
  EXPECT_FALSE(mlir::photon::importOnnxFile(ctx, save(m, "abs.onnx")));
  EXPECT_NE(errors.find("absolute path"), std::string::npos) << errors;
}

TEST_F(ImporterTest, ListsEveryUnsupportedOp) {
  auto m = baseModel();
  auto *g = m.mutable_graph();
  addInput(g, "x", TensorProto::FLOAT, {4});
  addInput(g, "z", TensorProto::FLOAT, {4}, true);
  const char *ops[] = {"Relu", "Einsum", "Mod", "TopK"};
  std::string prev = "x";
  for (int i = 0; i < 4; ++i) {
    auto *n = g->add_node();
    n->set_op_type(ops[i]);
    n->set_name(std::string("n") + std::to_string(i));
    n->add_input(prev);
    prev = i == 3 ? "z" : "t" + std::to_string(i);
    n->add_output(prev);
  }
  std::string p = save(m, "un.onnx");
  std::vector<mlir::photon::UnsupportedOp> un;
  ASSERT_TRUE(mlir::photon::listUnsupportedOps(ctx, p, un));
  std::set<std::string> names;
  for (const auto &u : un) {
    names.insert(u.nodeName);
    EXPECT_EQ(u.opset, 17);
  }
  EXPECT_EQ(names, (std::set<std::string>{"n1", "n2", "n3"}));
  EXPECT_FALSE(mlir::photon::importOnnxFile(ctx, p));
  for (const char *n : {"'n1'", "'n2'", "'n3'"}) EXPECT_NE(errors.find(n), std::string::npos);
}

TEST_F(ImporterTest, CoversTheIssueOpList) {
  std::set<std::string> have;
  for (const auto &[op, since] : mlir::photon::supportedOnnxOps()) have.insert(op);
  for (const char *op :
       {"MatMul", "Gemm", "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Reciprocal", "Neg", "Exp",
        "Log", "Tanh", "Erf", "Sigmoid", "Cos", "Sin", "Reshape", "Transpose", "Concat", "Split",
        "Slice", "Gather", "Unsqueeze", "Squeeze", "Expand", "Where", "Equal", "Less", "Cast",
        "Shape", "ConstantOfShape", "Range", "Softmax", "LogSoftmax", "ReduceMean", "ReduceSum",
        "ReduceMax", "LayerNormalization", "Trilu", "CumSum", "Identity", "Constant"})
    EXPECT_TRUE(have.count(op)) << op;
}

} // namespace

//===----------------------------------------------------------------------===//
// Plain exports: the hierarchy is recovered by patterns
//===----------------------------------------------------------------------===//

namespace {

std::string printModule(mlir::ModuleOp m) {
  std::string s;
  llvm::raw_string_ostream os(s);
  m->print(os);
  return s;
}

size_t countOps(mlir::ModuleOp m, llvm::StringRef name) {
  size_t n = 0;
  m->walk([&](mlir::Operation *op) { n += op->getName().getStringRef() == name; });
  return n;
}

onnx::ModelProto loadModel(const std::string &path) {
  onnx::ModelProto m;
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(m.ParseFromIstream(&f)) << path;
  return m;
}

} // namespace

TEST_F(ImporterTest, PlainExportRaisesToTheFunctionExportsModule) {
  for (const char *fx : {"photon-c44", "vanilla", "block", "photon-l3", "photon-gqa"}) {
    std::string dir = std::string(PHOTON_FIXTURES_DIR) + "/" + fx;
    mlir::photon::ImportOptions po, fo;
    po.weightsOut = tmp + "/plain.bin";
    fo.weightsOut = tmp + "/fn.bin";
    auto plain = mlir::photon::importOnnxFile(ctx, dir + "/model.plain.onnx", po);
    auto fn = mlir::photon::importOnnxFile(ctx, dir + "/model.onnx", fo);
    ASSERT_TRUE(plain && fn) << fx << ": " << errors;
    EXPECT_EQ(printModule(*plain), printModule(*fn)) << fx;
    EXPECT_GT(countOps(*plain, "photon.causal_attention"), 0u) << fx;
    EXPECT_GT(countOps(*plain, "photon.swiglu"), 0u) << fx;
    EXPECT_EQ(countOps(*plain, "linalg.generic"), 0u) << fx;
    auto a = llvm::MemoryBuffer::getFile(po.weightsOut), b = llvm::MemoryBuffer::getFile(fo.weightsOut);
    ASSERT_TRUE(a && b);
    EXPECT_EQ((*a)->getBuffer(), (*b)->getBuffer()) << fx << ": the weights blobs differ";
  }
  EXPECT_EQ(errors, "");
}

TEST_F(ImporterTest, PlainExportWithABrokenPatternIsRefused) {
  auto m = loadModel(std::string(PHOTON_FIXTURES_DIR) + "/block/model.plain.onnx");
  // The token decoder's first Softmax becomes an Identity: attention without softmax.
  onnx::NodeProto *sm = nullptr;
  for (auto &n : *m.mutable_graph()->mutable_node())
    if (n.op_type() == "Softmax" && llvm::StringRef(n.name()).starts_with("/f_dec1/")) {
      sm = &n;
      break;
    }
  ASSERT_NE(sm, nullptr);
  sm->set_op_type("Identity");
  sm->clear_attribute();
  std::string path = save(m, "broken.onnx");
  mlir::photon::ImportOptions opts;
  EXPECT_FALSE(mlir::photon::importOnnxFile(ctx, path, opts));
  EXPECT_NE(errors.find("breaks the attention pattern around weight 'dec1.0.wo': no Softmax"),
            std::string::npos)
      << errors;
  // Forced to upstream ops, the same model imports (nothing is raised).
  errors.clear();
  opts.emit = mlir::photon::ImportEmit::Upstream;
  auto up = mlir::photon::importOnnxFile(ctx, path, opts);
  ASSERT_TRUE(up) << errors;
  EXPECT_EQ(countOps(*up, "photon.causal_attention"), 0u);
}
