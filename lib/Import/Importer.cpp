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

/// The weight layouts the patterns read, as blob entries of their own: `linalg.transpose`
/// of a 2-D `photon.weight` (permutation [1, 0]) -> the weight `<name>.T` holding the
/// transposed values (any element size); a static collapse / expand of a weight -> the
/// weight `<name>.as<d0>x<d1>..`, the same bytes with the view's shape.
static LogicalResult foldWeightLayouts(GraphImporter &gi, ModuleOp module) {
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

/// A decoder-with-past export (token ids and past keys / values in; logits and the
/// presents out, each present a past with the new keys / values appended along its
/// position axis) as the forward it is with an empty past, before the local raising: the
/// past inputs become tensors of zero positions, `past ++ new` the new keys / values, and
/// the presents are dropped. The rewrite patterns then see the model's forward, and
/// photon-derive-stages gives it the runtime's own KV cache. Returns the number of past
/// inputs so compiled (0: not such an export, left as it is).
static unsigned specializeEmptyPast(ModuleOp module) {
  for (auto f : llvm::to_vector(module.getOps<func::FuncOp>())) {
    if (f.isPrivate() || f.isExternal() || f.getNumArguments() < 2 ||
        f.getNumResults() != f.getNumArguments())
      continue;
    auto tokT = dyn_cast<RankedTensorType>(f.getArgument(0).getType());
    if (!tokT || tokT.getRank() != 2 || !tokT.getElementType().isSignlessInteger()) continue;
    Block &entry = f.getBody().front();
    auto ret = cast<func::ReturnOp>(entry.getTerminator());
    // Each past: rank-4 float, dynamic only in the batch (axis 0) and the positions, read
    // (besides its sizes) by one concat as its first operand along the positions, whose
    // result is one of the outputs but the first (the logits).
    SmallVector<std::pair<BlockArgument, tensor::ConcatOp>> pasts;
    llvm::SmallDenseSet<unsigned> presents;
    for (BlockArgument a : f.getArguments().drop_front()) {
      auto t = dyn_cast<RankedTensorType>(a.getType());
      tensor::ConcatOp cat;
      bool ok = t && t.getRank() == 4 && isa<FloatType>(t.getElementType());
      for (Operation *u : a.getUsers()) {
        if (!ok) break;
        if (isa<tensor::DimOp>(u)) continue;
        auto c = dyn_cast<tensor::ConcatOp>(u);
        ok = c && !cat && c.getInputs().size() == 2 && c.getInputs()[0] == a &&
             t.isDynamicDim(c.getDim()) && c.getDim() != 0;
        cat = c;
      }
      for (int64_t i = 1; ok && i < 4; ++i)
        ok = !t.isDynamicDim(i) || i == (int64_t)cat.getDim();
      if (!ok || !cat) return 0;
      std::optional<unsigned> out;
      for (OpOperand &o : ret->getOpOperands())
        if (o.get() == cat.getResult() && o.getOperandNumber() > 0) out = o.getOperandNumber();
      if (!out || !presents.insert(*out).second) return 0;
      pasts.push_back({a, cat});
    }
    OpBuilder b(&entry, entry.begin());
    Location loc = f.getLoc();
    Value batch = tensor::DimOp::create(b, loc, f.getArgument(0), 0);
    for (auto [a, cat] : pasts) {
      auto t = cast<RankedTensorType>(a.getType());
      SmallVector<int64_t> shape(t.getShape());
      shape[cat.getDim()] = 0;
      SmallVector<Value> dyn;
      if (t.isDynamicDim(0)) dyn.push_back(batch);
      Value empty = tensor::EmptyOp::create(b, loc, shape, t.getElementType(), dyn);
      a.replaceAllUsesWith(tensor::CastOp::create(b, loc, t, empty).getResult());
      OpBuilder cb(cat);
      Value fresh = cat.getInputs()[1];
      if (fresh.getType() != cat.getType())
        fresh = tensor::CastOp::create(cb, cat.getLoc(), cat.getType(), fresh);
      cat.getResult().replaceAllUsesWith(fresh);
    }
    // The presents out, then the pasts.
    llvm::BitVector results(f.getNumResults()), args(f.getNumArguments());
    SmallVector<unsigned> drop(presents.begin(), presents.end());
    llvm::sort(drop, std::greater<unsigned>());
    for (unsigned i : drop) {
      ret->eraseOperand(i);
      results.set(i);
    }
    (void)f.eraseResults(results);
    for (auto [a, cat] : pasts) {
      args.set(a.getArgNumber());
      cat->erase();
    }
    (void)f.eraseArguments(args);
    return pasts.size();
  }
  return 0;
}

/// A graph of token ids that returns more than its logits (the first output, [B, T, V]
/// float): the other outputs dropped, as a recognized model's forward has them. Returns
/// their names ("" when none was dropped).
static std::string dropExtraOutputs(ModuleOp module) {
  for (auto f : module.getOps<func::FuncOp>()) {
    if (f.isPrivate() || f.isExternal() || f.getNumArguments() != 1 || f.getNumResults() < 2)
      continue;
    auto tokT = dyn_cast<RankedTensorType>(f.getArgument(0).getType());
    auto logT = dyn_cast<RankedTensorType>(f.getResultTypes()[0]);
    if (!tokT || tokT.getRank() != 2 || !tokT.getElementType().isSignlessInteger() || !logT ||
        logT.getRank() != 3 || !isa<FloatType>(logT.getElementType()))
      continue;
    std::string names;
    llvm::BitVector drop(f.getNumResults());
    for (unsigned i = 1; i < f.getNumResults(); ++i) {
      auto n = f.getResultAttrOfType<StringAttr>(i, "onnx.name");
      names += (names.empty() ? "'" : ", '") + (n ? n.str() : "#" + std::to_string(i)) + "'";
      drop.set(i);
    }
    auto ret = cast<func::ReturnOp>(f.getBody().front().getTerminator());
    for (int i = f.getNumResults() - 1; i >= 1; --i) ret->eraseOperand(i);
    (void)f.eraseResults(drop);
    return names;
  }
  return "";
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
    auto raise = [&](ModuleOp m, bool quiet) {
      ScopedDiagnosticHandler silence(&context, [&](Diagnostic &d) {
        return success(quiet && d.getSeverity() == DiagnosticSeverity::Remark);
      });
      PassManager pm(&context);
      pm.addPass(mlir::photon::createPhotonRaiseLocal());
      if (failed(pm.run(m))) return failure();
      if (options.explain && !quiet) explainLocalRaising(m, *options.explain);
      PassManager pm2(&context);
      pm2.addPass(mlir::photon::createPhotonRaiseStructure());
      return pm2.run(m);
    };
    // A decoder-with-past export is tried as its forward with an empty past, a graph
    // with outputs besides its logits as the logits alone; if that does not raise to
    // generation stages, the graph is compiled as it is.
    // (Cloned only for a graph with more than one input or output.)
    bool moreThanLogits = llvm::any_of(module->getOps<func::FuncOp>(), [](func::FuncOp f) {
      return !f.isPrivate() && (f.getNumArguments() > 1 || f.getNumResults() > 1);
    });
    OwningOpRef<ModuleOp> forward = moreThanLogits ? module->clone() : OwningOpRef<ModuleOp>();
    unsigned pasts = forward ? specializeEmptyPast(*forward) : 0;
    std::string extra = forward && !pasts ? dropExtraOutputs(*forward) : std::string();
    if (pasts || !extra.empty()) {
      if (failed(raise(*forward, /*quiet=*/true))) return nullptr;
      if ((*forward)->hasAttr(hierarchyName)) {
        if (pasts)
          emitRemark(module->getLoc())
              << "a decoder-with-past export: its " << pasts
              << " past key / value inputs are compiled as empty (the forward from position 0) "
                 "and its present outputs dropped; the runtime keeps the KV cache";
        else
          emitRemark(module->getLoc())
              << "the graph's outputs besides its logits (" << extra
              << ") are not compiled: the artifact computes the logits";
        module = std::move(forward);
        if (options.explain) explainLocalRaising(*module, *options.explain);
      }
    }
    if (!(*module)->hasAttr(hierarchyName) && failed(raise(*module, /*quiet=*/false)))
      return nullptr;
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
    // head) or reshaped (a [1, 1, D] start latent) are written so into the blob, so no
    // forward call transposes or reshapes them.
    if (failed(foldWeightLayouts(gi, *module))) return nullptr;
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
