//===- Importer.cpp - Public entry points of photon-import ---------------===//

#include "photon/Import/Importer.h"

#include "GraphImporter.h"
#include "OnnxModel.h"

#include "photon/Dialect/PhotonDialect.h"
#include "photon/Dialect/PhotonOps.h"
#include "photon/Import/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Pass/PassManager.h"

#include <cstring>

using namespace mlir;
using namespace ::photon::import;

void mlir::photon::registerImportDialects(DialectRegistry &registry) {
  registry.insert<func::FuncDialect, arith::ArithDialect, math::MathDialect,
                  tensor::TensorDialect, linalg::LinalgDialect, mlir::photon::PhotonDialect>();
}

void mlir::photon::loadImportDialects(MLIRContext &context) {
  DialectRegistry registry;
  registerImportDialects(registry);
  context.appendDialectRegistry(registry);
  context.loadDialect<func::FuncDialect, arith::ArithDialect, math::MathDialect,
                      tensor::TensorDialect, linalg::LinalgDialect,
                      mlir::photon::PhotonDialect>();
}

/// photon-import --explain after photon-raise-local: which ONNX node (the raised op's
/// location) became which photon op, and how many of each.
static void explainLocalRaising(ModuleOp module, llvm::raw_ostream &os) {
  using namespace mlir::photon;
  llvm::StringMap<int> counts;
  std::vector<std::string> lines;
  module.walk([&](Operation *op) {
    if (!isa<LinearOp, RMSNormOp, LayerNormOp, GeluOp, SwiGLUOp, CausalAttentionOp, RoPEOp>(op))
      return;
    StringRef what = op->getName().getStringRef();
    ++counts[what];
    std::string node = "?";
    if (auto n = dyn_cast<NameLoc>(op->getLoc())) node = n.getName().str();
    lines.push_back("  node '" + node + "' -> " + what.str());
  });
  os << "photon-import: local raising (photon-raise-local) of the upstream ops: ";
  if (lines.empty()) {
    os << "nothing raised\n";
    return;
  }
  bool first = true;
  for (StringRef k : {LinearOp::getOperationName(), RMSNormOp::getOperationName(),
                      LayerNormOp::getOperationName(), GeluOp::getOperationName(),
                      SwiGLUOp::getOperationName(), CausalAttentionOp::getOperationName(),
                      RoPEOp::getOperationName()})
    if (counts.count(k)) {
      os << (first ? "" : ", ") << counts[k] << " " << k;
      first = false;
    }
  os << "\n";
  for (const auto &l : lines) os << l << "\n";
}

/// `linalg.transpose` of a 2-D `photon.weight` (permutation [1, 0]) -> the weight
/// `<name>.T`, a new blob entry holding the transposed values (any element size).
static LogicalResult foldWeightTransposes(GraphImporter &gi, ModuleOp module) {
  SmallVector<linalg::TransposeOp> ts;
  module.walk([&](linalg::TransposeOp t) {
    auto w = t.getInput().getDefiningOp<mlir::photon::WeightOp>();
    if (w && cast<RankedTensorType>(w.getType()).getRank() == 2 &&
        t.getPermutation() == ArrayRef<int64_t>{1, 0} && gi.weightTensor(w.getName()))
      ts.push_back(t);
  });
  for (linalg::TransposeOp t : ts) {
    auto w = t.getInput().getDefiningOp<mlir::photon::WeightOp>();
    const onnx::TensorProto *src = gi.weightTensor(w.getName());
    std::string name = (w.getName() + ".T").str();
    TensorBytes tb;
    std::string err;
    if (!gi.model().tensorBytes(*src, tb, err))
      return emitError(w.getLoc()) << "cannot read weight '" << w.getName() << "': " << err;
    int64_t R = src->dims(0), C = src->dims(1);
    if (R * C == 0 || tb.size() % (R * C) != 0)
      return emitError(w.getLoc()) << "weight '" << w.getName() << "' has "
                                   << tb.size() << " bytes for " << R << " x " << C;
    size_t es = tb.size() / (R * C);
    auto &t2 = gi.extraInitializers[name];
    if (t2.name().empty()) {
      t2.set_name(name);
      t2.set_data_type(src->data_type());
      t2.add_dims(C);
      t2.add_dims(R);
      std::string raw(tb.size(), '\0');
      for (int64_t i = 0; i < R; ++i)
        for (int64_t j = 0; j < C; ++j)
          std::memcpy(&raw[(j * R + i) * es], tb.data() + (i * C + j) * es, es);
      t2.set_raw_data(std::move(raw));
    }
    OpBuilder b(t);
    FailureOr<Value> nw = gi.weight(b, w.getLoc(), t2, name);
    if (failed(nw)) return failure();
    t->getResult(0).replaceAllUsesWith(*nw);
    Operation *init = t.getInit().getDefiningOp();
    t->erase();
    if (init && init->use_empty() && isa<tensor::EmptyOp>(init)) init->erase();
  }
  // Static views of weights (a start latent stored [1, 1, D] read as [D]): the blob holds
  // the same bytes under `<name>.as<d0>x<d1>..` with the view's shape, so the op that
  // reads it gets a weight of its own shape.
  SmallVector<Operation *> views;
  module.walk([&](Operation *op) {
    if (!isa<tensor::CollapseShapeOp, tensor::ExpandShapeOp>(op)) return;
    auto w = op->getOperand(0).getDefiningOp<mlir::photon::WeightOp>();
    auto rt = cast<RankedTensorType>(op->getResult(0).getType());
    if (w && rt.hasStaticShape() && gi.weightTensor(w.getName())) views.push_back(op);
  });
  for (Operation *op : views) {
    auto w = op->getOperand(0).getDefiningOp<mlir::photon::WeightOp>();
    auto rt = cast<RankedTensorType>(op->getResult(0).getType());
    const onnx::TensorProto *src = gi.weightTensor(w.getName());
    std::string name = (w.getName() + ".as").str();
    for (auto [i, d] : llvm::enumerate(rt.getShape())) name += (i ? "x" : "") + std::to_string(d);
    auto &t2 = gi.extraInitializers[name];
    if (t2.name().empty()) {
      t2 = *src;
      t2.set_name(name);
      t2.clear_dims();
      for (int64_t d : rt.getShape()) t2.add_dims(d);
    }
    OpBuilder b(op);
    FailureOr<Value> nw = gi.weight(b, w.getLoc(), t2, name);
    if (failed(nw)) return failure();
    op->getResult(0).replaceAllUsesWith(*nw);
    op->erase();
  }
  // The [in, out] weights no op reads any more are not written.
  SmallVector<mlir::photon::WeightOp> unused;
  module.walk([&](mlir::photon::WeightOp w) {
    if (w->use_empty()) unused.push_back(w);
  });
  for (auto w : unused) w->erase();
  if (!ts.empty() || !views.empty()) gi.dropUnusedWeights(module);
  return success();
}

/// Small f32 initializers the graph only slices (position tables read as table[:T]) as
/// constants for the local raising: photon.weight carries no values, and the RoPE
/// pattern evaluates its tables. A table no pattern raises stays a constant of the
/// function (its initializer is then not written to the blob).
static LogicalResult slicedTablesAsConstants(GraphImporter &gi, ModuleOp module) {
  SmallVector<mlir::photon::WeightOp> tables;
  module.walk([&](mlir::photon::WeightOp w) {
    auto t = cast<RankedTensorType>(w.getType());
    const onnx::TensorProto *src = gi.weightTensor(w.getName());
    if (src && src->data_type() == onnx::TensorProto::FLOAT && t.getElementType().isF32() &&
        t.hasStaticShape() && t.getNumElements() <= 65536 && !w->use_empty() &&
        llvm::all_of(w->getUsers(), [](Operation *u) { return isa<tensor::ExtractSliceOp>(u); }))
      tables.push_back(w);
  });
  for (mlir::photon::WeightOp w : tables) {
    auto t = cast<RankedTensorType>(w.getType());
    TensorBytes tb;
    std::string err;
    if (!gi.model().tensorBytes(*gi.weightTensor(w.getName()), tb, err))
      return emitError(w.getLoc()) << "cannot read weight '" << w.getName() << "': " << err;
    if (tb.size() != (size_t)t.getNumElements() * sizeof(float)) continue;
    std::vector<float> v(t.getNumElements());
    std::memcpy(v.data(), tb.data(), tb.size());
    OpBuilder b(w);
    Value c = arith::ConstantOp::create(b, w.getLoc(),
                                        DenseElementsAttr::get(t, ArrayRef<float>(v)));
    w->getResult(0).replaceAllUsesWith(c);
    w->erase();
  }
  if (!tables.empty()) gi.dropUnusedWeights(module);
  return success();
}

static OwningOpRef<ModuleOp> importModel(MLIRContext &context, OnnxModel &model,
                                         const mlir::photon::ImportOptions &options) {
  GraphImporter gi(context, model, options);
  if (options.emit == mlir::photon::ImportEmit::Photon) installPhotonRaiser(gi);
  OwningOpRef<ModuleOp> module = gi.run();
  if (!module) return nullptr;
  // Second stage (docs/importer.md, "Two stages"): a graph whose structure was not
  // recognized keeps its upstream ops, and the local raising patterns turn the norms,
  // activations and linears they can prove into typed photon ops.
  // Then the structure patterns over the typed ops: a decoder-only model gets its stack
  // and hierarchy, and generates like a recognized one.
  StringRef hierarchyName = mlir::photon::PhotonDialect::HierarchyAttrHelper::getNameStr();
  if (options.emit == mlir::photon::ImportEmit::Photon && options.raiseLocal &&
      !options.checkOnly && !(*module)->hasAttr(hierarchyName)) {
    if (failed(slicedTablesAsConstants(gi, *module))) return nullptr;
    PassManager pm(&context);
    pm.addPass(mlir::photon::createPhotonRaiseLocal());
    if (failed(pm.run(*module))) return nullptr;
    if (options.explain) explainLocalRaising(*module, *options.explain);
    PassManager pm2(&context);
    pm2.addPass(mlir::photon::createPhotonRaiseStructure());
    if (failed(pm2.run(*module))) return nullptr;
    if (auto h = mlir::photon::getPhotonDialect(&context)->getHierarchyAttrHelper().getAttr(*module)) {
      int layers = 0, decoderLayers = 0;
      module->walk([&](mlir::photon::CausalAttentionOp) { ++layers; });
      module->walk([&](mlir::photon::BoundedAttentionOp) { ++decoderLayers; });
      if (h.getFamily() == "vanilla") {
        emitRemark(module->getLoc())
            << "photon-raise-structure: decoder-only structure raised by the rewrite patterns: "
            << layers << " layers, width " << h.getWidth() << ", vocab " << h.getVocab()
            << "; the artifact generates with a KV cache";
      } else {
        std::string cs;
        for (int64_t c : h.getChunkSizes()) cs += (cs.empty() ? "" : ", ") + std::to_string(c);
        emitRemark(module->getLoc())
            << "photon-raise-structure: "
            << (h.getFamily() == "block" ? "Block Transformer" : "PHOTON")
            << " structure raised by the rewrite patterns: L = " << h.getLevels()
            << ", chunk sizes [" << cs << "], prefix R = " << h.getPrefix() << ", "
            << layers << " encoder and " << decoderLayers
            << " decoder attention layers (latent decoder steps counted apart), width "
            << h.getWidth() << ", vocab " << h.getVocab() << "; the artifact generates (HierGen)";
      }
    }
    // Weights the patterns read transposed ([in, out] initializers of linears and the LM
    // head) are written transposed into the blob, so no forward call transposes them.
    if (failed(foldWeightTransposes(gi, *module))) return nullptr;
  }
  if (!options.checkOnly && !options.weightsOut.empty() && !gi.writeWeights()) return nullptr;
  return module;
}

OwningOpRef<ModuleOp> mlir::photon::importOnnxFile(MLIRContext &context, StringRef path,
                                                   const ImportOptions &options) {
  loadImportDialects(context);
  OnnxModel model;
  std::string err;
  if (!model.loadFile(path, err)) {
    emitError(FileLineColLoc::get(&context, path, 0, 0)) << err;
    return nullptr;
  }
  return importModel(context, model, options);
}

OwningOpRef<ModuleOp> mlir::photon::importOnnxBytes(MLIRContext &context, StringRef bytes,
                                                    StringRef baseDir,
                                                    const ImportOptions &options) {
  loadImportDialects(context);
  OnnxModel model;
  std::string err;
  if (!model.loadBytes(bytes, baseDir, "<memory>", err)) {
    emitError(FileLineColLoc::get(&context, "<memory>", 0, 0)) << err;
    return nullptr;
  }
  return importModel(context, model, options);
}

bool mlir::photon::listUnsupportedOps(MLIRContext &context, StringRef path,
                                      std::vector<UnsupportedOp> &out) {
  loadImportDialects(context);
  OnnxModel model;
  std::string err;
  if (!model.loadFile(path, err)) {
    emitError(FileLineColLoc::get(&context, path, 0, 0)) << err;
    return false;
  }
  ImportOptions opts;
  GraphImporter gi(context, model, opts);
  installPhotonRaiser(gi);
  gi.scanUnsupported(out);
  return true;
}

std::vector<std::pair<std::string, int64_t>> mlir::photon::supportedOnnxOps() {
  return OpRegistry::get().list();
}
