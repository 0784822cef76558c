//===- GraphImporter.h - ONNX graph -> MLIR function ------------*- C++ -*-===//
#ifndef PHOTON_LIB_IMPORT_GRAPHIMPORTER_H
#define PHOTON_LIB_IMPORT_GRAPHIMPORTER_H

#include "NodeContext.h"
#include "OnnxModel.h"

#include "photon/Import/Importer.h"
#include "photon/weights_format.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"

#include <map>
#include <set>

namespace photon {
namespace import {

/// Values visible while converting one graph or one inlined function body.
struct Scope {
  llvm::StringMap<mlir::Value> values;
  llvm::StringMap<KnownInts> known;
  /// Initializers not materialised yet (created on first use).
  llvm::StringMap<const onnx::TensorProto *> pending;
  /// Function being inlined (null for the main graph) and the calling node's attributes.
  const onnx::FunctionProto *fn = nullptr;
  llvm::StringMap<const onnx::AttributeProto *> callerAttrs;
  int64_t opset = 0;
  std::string where = "graph";
};

class GraphImporter {
public:
  GraphImporter(mlir::MLIRContext &ctx, OnnxModel &model, const mlir::photon::ImportOptions &opts)
      : ctx_(ctx), model_(model), opts_(opts) {}

  mlir::OwningOpRef<mlir::ModuleOp> run();
  void scanUnsupported(std::vector<mlir::photon::UnsupportedOp> &out);

  /// A `photon.weight {name}` of the given tensor (declared in the blob once).
  mlir::FailureOr<mlir::Value> weight(mlir::OpBuilder &b, mlir::Location loc,
                                      const onnx::TensorProto &t, llvm::StringRef name);
  /// Declares a weight the raiser refers to and returns its op.
  mlir::FailureOr<mlir::Value> tensorValue(mlir::OpBuilder &b, mlir::Location loc,
                                           const onnx::TensorProto &t, llvm::StringRef name,
                                           bool isInitializer, KnownInts *known);
  OnnxModel &model() { return model_; }
  const mlir::photon::ImportOptions &options() const { return opts_; }
  mlir::MLIRContext &context() { return ctx_; }

  mlir::Location nodeLoc(const onnx::NodeProto &node);
  mlir::LogicalResult convertNodes(const google::protobuf::RepeatedPtrField<onnx::NodeProto> &nodes,
                                   Scope &scope, mlir::OpBuilder &b);
  mlir::LogicalResult lookup(Scope &scope, mlir::OpBuilder &b, const std::string &name,
                             const onnx::NodeProto &node, mlir::Value &out);
  /// MLIR type of an ONNX TypeProto (dynamic where dims are symbolic); null + error if not a
  /// supported tensor type.
  mlir::RankedTensorType tensorType(const onnx::TypeProto &tp, llvm::StringRef what,
                                    mlir::Location loc);
  /// Writes the weights blob to options().weightsOut.
  bool writeWeights();
  /// The tensor behind the declared weight `name`, or nullptr.
  const onnx::TensorProto *weightTensor(llvm::StringRef name) const {
    auto it = weightIndex_.find(name);
    return it == weightIndex_.end() ? nullptr : weights_[it->second].tensor;
  }
  /// Forgets every declared weight no `photon.weight` of `module` reads: the blob holds
  /// only what the IR names.
  void dropUnusedWeights(mlir::ModuleOp module);

  /// Hook for the photon raiser: a non-default-domain node calling a model-local function.
  /// Returns success() when it converted the node, failure() after an error, and
  /// std::nullopt when the function should be inlined.
  std::function<std::optional<mlir::LogicalResult>(const onnx::NodeProto &,
                                                   const onnx::FunctionProto &, Scope &,
                                                   mlir::OpBuilder &)>
      raiseHook;

  /// Names a (domain, function) the raiser handles, for the unsupported scan.
  std::function<bool(const onnx::FunctionProto &)> raisesFunction;

  /// Called on the finished module before verification (the raiser sets the module's
  /// hierarchy attribute, the forward's name and stage).
  std::function<mlir::LogicalResult(mlir::ModuleOp, mlir::func::FuncOp)> finalizeHook;

  /// Called after the unsupported scan, before conversion (also with --check). The raiser
  /// uses it to recover the hierarchy of a plain export: it may set nodesOverride (the node
  /// list converted instead of the graph's) and syntheticFunction (photon functions those
  /// nodes call, which the model does not define).
  std::function<mlir::LogicalResult()> prepareHook;
  const google::protobuf::RepeatedPtrField<onnx::NodeProto> *nodesOverride = nullptr;
  std::function<const onnx::FunctionProto *(const std::string &, const std::string &)>
      syntheticFunction;

  /// PHOTON models: the forward takes i32 tokens; the ONNX int64 `tokens` input is the
  /// cast tokensI64 of the i32 argument tokensI32.
  bool tokensAsI32 = false;
  std::string tokensName = "tokens"; // the graph input holding the token ids
  mlir::Value tokensI32, tokensI64;
  /// Initializers a raiser derives (a transposed weight, say), visible by name like the
  /// graph's own; std::map keeps their addresses stable.
  std::map<std::string, onnx::TensorProto> extraInitializers;
  /// Graph inputs and outputs a raiser replaced (a decoder-with-past export's past and
  /// present caches): no function argument or result is made for them.
  std::set<std::string> ignoredGraphIO;

  mlir::LogicalResult checkDeclaredPublic(Scope &scope, mlir::OpBuilder &b, const std::string &name,
                                          mlir::Value &v, mlir::Location loc) {
    return checkDeclared(scope, b, name, v, loc);
  }

  /// Declared types (value_info and graph outputs) of the main graph.
  llvm::StringMap<const onnx::TypeProto *> declared;

private:
  mlir::LogicalResult convertNode(const onnx::NodeProto &node, Scope &scope, mlir::OpBuilder &b);
  mlir::LogicalResult inlineFunction(const onnx::NodeProto &node, const onnx::FunctionProto &fn,
                                     Scope &caller, mlir::OpBuilder &b);
  mlir::LogicalResult checkDeclared(Scope &scope, mlir::OpBuilder &b, const std::string &name,
                                    mlir::Value &v, mlir::Location loc);
  void scanNodes(const google::protobuf::RepeatedPtrField<onnx::NodeProto> &nodes,
                 const onnx::FunctionProto *fn, const std::string &where,
                 std::vector<mlir::photon::UnsupportedOp> &out,
                 std::set<const onnx::FunctionProto *> &seen);

  struct WeightDecl {
    std::string name;
    const onnx::TensorProto *tensor;
    ::photon::weights::DType dtype;
    std::vector<int64_t> shape;
  };

  mlir::MLIRContext &ctx_;
  OnnxModel &model_;
  const mlir::photon::ImportOptions &opts_;
  std::vector<WeightDecl> weights_;
  llvm::StringMap<size_t> weightIndex_;
  /// The module run() built (the photon raiser and photon-raise-local rewrite it in
  /// place); writeWeights reads the weights' uses from it.
  mlir::ModuleOp module_;
  int64_t nodesDone_ = 0, nodesTotal_ = 0;
  int inlineDepth_ = 0;
};

/// Orders nodes topologically. Fails with a message naming a cycle or an undefined input.
bool topoSort(const google::protobuf::RepeatedPtrField<onnx::NodeProto> &nodes,
              const std::set<std::string> &available, std::vector<int> &order,
              std::string &error);

/// Installs the photon raiser (Raise.cpp) on an importer.
void installPhotonRaiser(GraphImporter &gi);

} // namespace import
} // namespace photon

#endif // PHOTON_LIB_IMPORT_GRAPHIMPORTER_H
