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

static OwningOpRef<ModuleOp> importModel(MLIRContext &context, OnnxModel &model,
                                         const mlir::photon::ImportOptions &options) {
  GraphImporter gi(context, model, options);
  if (options.emit == mlir::photon::ImportEmit::Photon) installPhotonRaiser(gi);
  OwningOpRef<ModuleOp> module = gi.run();
  if (!module) return nullptr;
  // Second stage (docs/importer.md, "Two stages"): a graph whose structure was not
  // recognized keeps its upstream ops, and the local raising patterns turn the norms,
  // activations and linears they can prove into typed photon ops.
  if (options.emit == mlir::photon::ImportEmit::Photon && options.raiseLocal &&
      !options.checkOnly &&
      !(*module)->hasAttr(mlir::photon::PhotonDialect::HierarchyAttrHelper::getNameStr())) {
    PassManager pm(&context);
    pm.addPass(mlir::photon::createPhotonRaiseLocal());
    if (failed(pm.run(*module))) return nullptr;
    if (options.explain) explainLocalRaising(*module, *options.explain);
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
