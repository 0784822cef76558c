//===- NodeContext.h - What an op converter sees ----------------*- C++ -*-===//
//
// Every ONNX op converter is a function `LogicalResult(NodeContext &)` registered with the
// opset it starts from (registry.onOp("Add", 7, convertAdd)), in the style of torch-mlir's
// TorchOnnxToTorch. A converter reads inputs and attributes from the context, builds
// upstream MLIR (tensor / linalg / arith / math) and sets the node's results. Failures are
// diagnostics (ctx.error / ctx.unsupported), never asserts.
//
//===----------------------------------------------------------------------===//
#ifndef PHOTON_LIB_IMPORT_NODECONTEXT_H
#define PHOTON_LIB_IMPORT_NODECONTEXT_H

#include "OnnxModel.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Location.h"
#include "mlir/IR/Value.h"
#include "mlir/Support/LLVM.h"

#include "llvm/ADT/StringMap.h"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace photon {
namespace import {

/// Compile-time knowledge of a small integer tensor (shape arithmetic: Shape, Gather,
/// Concat, ... feeding Reshape). Each element is known or not (a dynamic dimension).
struct KnownInts {
  llvm::SmallVector<int64_t, 1> shape;
  llvm::SmallVector<std::optional<int64_t>, 4> vals;
  bool allKnown() const {
    for (const auto &v : vals)
      if (!v) return false;
    return true;
  }
  int64_t rank() const { return static_cast<int64_t>(shape.size()); }
};

class GraphImporter;

class NodeContext {
public:
  NodeContext(GraphImporter &gi, mlir::OpBuilder &b, mlir::Location loc,
              const onnx::NodeProto &node, int64_t opset,
              const llvm::StringMap<const onnx::AttributeProto *> &attrs)
      : gi(gi), b(b), loc(loc), node(node), opset(opset), attrs_(attrs) {}

  GraphImporter &gi;
  mlir::OpBuilder &b;
  mlir::Location loc;
  const onnx::NodeProto &node;
  int64_t opset;

  /// Inputs in order; a null Value is an absent optional input ("").
  llvm::SmallVector<mlir::Value> ins;
  llvm::SmallVector<const KnownInts *> known;
  /// Results to set, one per node output.
  llvm::SmallVector<mlir::Value> outs;
  llvm::SmallVector<std::optional<KnownInts>> outKnown;

  mlir::MLIRContext *context() const { return b.getContext(); }
  size_t numInputs() const { return ins.size(); }
  bool hasInput(size_t i) const { return i < ins.size() && ins[i]; }
  mlir::Value in(size_t i) const { return hasInput(i) ? ins[i] : mlir::Value(); }
  mlir::RankedTensorType type(size_t i) const {
    return llvm::cast<mlir::RankedTensorType>(ins[i].getType());
  }
  const KnownInts *knownIn(size_t i) const { return i < known.size() ? known[i] : nullptr; }
  /// Fully known integer contents of input i, or nullopt.
  std::optional<llvm::SmallVector<int64_t>> constInts(size_t i) const;

  // Attributes (already resolved through function attribute references).
  const onnx::AttributeProto *attr(llvm::StringRef name) const {
    auto it = attrs_.find(name);
    return it == attrs_.end() ? nullptr : it->second;
  }
  bool hasAttr(llvm::StringRef name) const { return attr(name) != nullptr; }
  int64_t getInt(llvm::StringRef name, int64_t dflt) const;
  float getFloat(llvm::StringRef name, float dflt) const;
  std::optional<llvm::SmallVector<int64_t>> getInts(llvm::StringRef name) const;
  std::string getString(llvm::StringRef name, llvm::StringRef dflt) const;

  /// "node 'name' (Op): msg" as an error at the node's location.
  mlir::LogicalResult error(const llvm::Twine &msg) const;
  /// Same, marked "unsupported:" (a valid model using a feature photon lacks).
  mlir::LogicalResult unsupported(const llvm::Twine &msg) const;

  /// Requires at least `n` present inputs and ranked tensors.
  mlir::LogicalResult requireInputs(size_t n) const;

  void setResult(size_t i, mlir::Value v, std::optional<KnownInts> k = std::nullopt) {
    if (outs.size() <= i) {
      outs.resize(i + 1);
      outKnown.resize(i + 1);
    }
    outs[i] = v;
    outKnown[i] = std::move(k);
  }

  /// Normalises an axis in [-rank, rank) to [0, rank); emits an error otherwise.
  mlir::LogicalResult normAxis(int64_t &axis, int64_t rank, llvm::StringRef what = "axis") const;

private:
  const llvm::StringMap<const onnx::AttributeProto *> &attrs_;
};

using ConvertFn = std::function<mlir::LogicalResult(NodeContext &)>;

/// Converters by op type, each with the first opset it handles.
class OpRegistry {
public:
  void onOp(llvm::StringRef opType, int64_t sinceVersion, ConvertFn fn);
  /// The converter for `opType` at `opset` (the highest since-version <= opset).
  const ConvertFn *lookup(llvm::StringRef opType, int64_t opset) const;
  /// Lowest since-version of a known op type, or nullopt.
  std::optional<int64_t> firstVersion(llvm::StringRef opType) const;
  std::vector<std::pair<std::string, int64_t>> list() const;
  static const OpRegistry &get();

private:
  struct Entry {
    int64_t since;
    ConvertFn fn;
  };
  std::map<std::string, std::vector<Entry>> ops_;
};

void registerOpsAtoF(OpRegistry &r);
void registerOpsGtoM(OpRegistry &r);
void registerOpsNtoR(OpRegistry &r);
void registerOpsStoZ(OpRegistry &r);

} // namespace import
} // namespace photon

#endif // PHOTON_LIB_IMPORT_NODECONTEXT_H
