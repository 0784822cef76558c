//===- RaiseImpl.h - the photon-convention raiser's state -----*- C++ -*-===//
//
// The Raiser class, shared by its source files, one per concern:
//   Raise.cpp        raising of the convention's calls to photon ops, the module's
//                    hierarchy, and the hooks into GraphImporter (installPhotonRaiser)
//   RaiseStacks.cpp  stack functions (@enc1, @dec2, @stack): signatures and bodies
//   RaisePlain.cpp   plain exports: the call sequence from photon.config, checked against
//                    the graph (PlainChecker)
// Private to lib/Import.
//
//===----------------------------------------------------------------------===//
#ifndef PHOTON_LIB_IMPORT_RAISEIMPL_H
#define PHOTON_LIB_IMPORT_RAISEIMPL_H

#include "Builders.h"
#include "GraphImporter.h"
#include "GraphView.h"
#include "Recognize.h"

#include "photon/Dialect/PhotonOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Diagnostics.h"

#include "llvm/ADT/BitVector.h"
#include "llvm/Support/JSON.h"

#include <cmath>
#include <cstring>
#include <map>
#include <set>
namespace photon {
namespace import {
namespace raise {
using namespace mlir;
using mlir::photon::PhotonDialect;
namespace ops = mlir::photon;


constexpr int64_t kDyn = ShapedType::kDynamic;

/// The convention's model metadata (docs/onnx-convention.md): the model family and its
/// JSON configuration.
constexpr StringLiteral kFamilyMetadataKey = "photon.family";
constexpr StringLiteral kConfigMetadataKey = "photon.config";

struct Config {
  std::string family;
  int64_t vocab = -1, width = -1, levels = 0, prefix = 0, nHeads = -1, nKvHeads = -1,
          headDim = -1, ffn = -1;
  std::vector<int64_t> chunkSizes;
  // Needed only to recover the hierarchy of a plain export.
  std::map<std::string, int64_t> layers;
  double ropeTheta = -1, normEps = -1;
  bool level1Shift = true;
  std::string tokenDecoderInput = "decoder";
};

/// Shapes of a stack's weights, for the signature check and the function body.
struct StackSpec {
  int64_t layers = 0, heads = 0, kvHeads = 0, headDim = 0, width = 0, ffn = 0;
  float theta = 10000.f, eps = 1e-5f;
  /// GPT-2-style blocks (attribute `layer_norm` = 1, only from structure recognition):
  /// LayerNorm, biases on every linear, GELU MLP (`gelu_tanh`), no RoPE. 16 weights per
  /// layer (ln_1 w, b; wq, bq, wk, bk, wv, bv, wo, bo; ln_2 w, b; w_fc, b_fc, w_proj,
  /// b_proj) and the final LayerNorm's w, b.
  bool layerNorm = false, geluTanh = false;
  int perLayer() const { return layerNorm ? 16 : 9; }
  int finalWeights() const { return layerNorm ? 2 : 1; }
};

struct WeightRef {
  std::string name;
  RankedTensorType type;
};

inline std::string shapeStr(ArrayRef<int64_t> s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i)
    r += (i ? ", " : "") + (ShapedType::isDynamic(s[i]) ? std::string("?") : std::to_string(s[i]));
  return r + "]";
}

class Raiser {
public:
  explicit Raiser(GraphImporter &gi) : gi(gi) {}

  bool init() {
    std::string fam = gi.model().metadata(kFamilyMetadataKey);
    if (fam.empty()) return false;
    cfg.family = fam;
    std::string js = gi.model().metadata(kConfigMetadataKey);
    if (!js.empty()) {
      auto v = llvm::json::parse(js);
      if (!v) {
        llvm::consumeError(v.takeError());
        configError = "the photon.config metadata is not valid JSON";
      } else if (auto *o = v->getAsObject()) {
        auto geti = [&](StringRef k, int64_t &out) {
          if (auto x = o->getInteger(k)) out = *x;
        };
        geti("vocab", cfg.vocab);
        geti("width", cfg.width);
        geti("levels", cfg.levels);
        geti("prefix", cfg.prefix);
        geti("n_heads", cfg.nHeads);
        geti("n_kv_heads", cfg.nKvHeads);
        geti("head_dim", cfg.headDim);
        geti("ffn", cfg.ffn);
        if (auto x = o->getNumber("rope_theta")) cfg.ropeTheta = *x;
        if (auto x = o->getNumber("norm_eps")) cfg.normEps = *x;
        if (auto x = o->getBoolean("level1_shift")) cfg.level1Shift = *x;
        if (auto x = o->getString("token_decoder_input")) cfg.tokenDecoderInput = x->str();
        if (auto *l = o->getObject("layers"))
          for (auto &kv : *l)
            if (auto x = kv.second.getAsInteger()) cfg.layers[kv.first.str()] = *x;
        if (auto *a = o->getArray("chunk_sizes"))
          for (auto &e : *a)
            if (auto x = e.getAsInteger()) cfg.chunkSizes.push_back(*x);
      }
    }
    if (cfg.family == "vanilla") {
      cfg.levels = 0;
      cfg.chunkSizes.clear();
      cfg.prefix = 0;
    }
    return true;
  }

  static StringRef baseName(StringRef n) {
    size_t dot = n.find('.');
    return dot == StringRef::npos ? n : n.take_front(dot);
  }

  bool handles(const onnx::FunctionProto &fn) const {
    if (fn.domain() != "photon") return false;
    StringRef b = baseName(fn.name());
    return b == "TokenEmbedding" || b == "Chunk" || b == "ChunkCompress" || b == "EncoderStack" ||
           b == "Shift" || b == "LatentDecoder" || b == "TokenDecoder" || b == "LMHead" ||
           (b == "PositionEmbedding" && !recognized.family.empty());
  }

  std::optional<LogicalResult> raise(const onnx::NodeProto &node, const onnx::FunctionProto &fn,
                                     Scope &scope, OpBuilder &b);
  LogicalResult finalize(ModuleOp module, func::FuncOp forward);
  /// Plain export (no photon functions): recovers the call sequence and checks the graph
  /// around every weight (RaisePlain.cpp). Function export: builds the same sequence, and
  /// checkFunctionBodies (from finalize) checks the bodies, expanded into one graph.
  LogicalResult preparePlain();
  LogicalResult checkBodies(const std::vector<PlainCall> &calls, const onnx::GraphProto &g);
  LogicalResult checkFunctionBodies();
  std::vector<PlainCall> bodyCalls;
  /// The main graph with the model-local functions expanded (InlineFunctions.h).
  onnx::GraphProto inlined;
  /// No metadata: recognizes the structure from the graph (Recognize.cpp); when it is not
  /// recognized, the model imports to upstream ops and `unrecognized` says why.
  LogicalResult prepareRecognized();
  /// Replaces the graph's nodes by the calls, raised like the function export's.
  void emitCalls(const std::vector<PlainCall> &calls);
  RecognizedModel recognized;
  std::string unrecognized;

  GraphImporter &gi;
  Config cfg;
  google::protobuf::RepeatedPtrField<onnx::NodeProto> plainNodes;
  std::map<std::string, onnx::FunctionProto> plainFns;
  std::string configError;
  int stackCount = 0;

private:
  // Per call.
  const onnx::NodeProto *node = nullptr;
  Location loc = UnknownLoc();
  StringRef op;

  LogicalResult fail(const Twine &msg) {
    emitError(loc) << "photon function call '" << node->name() << "' (" << op
                   << "): signature mismatch: " << msg;
    return failure();
  }
  int64_t attrI(StringRef n, int64_t d = -1) {
    for (const auto &a : node->attribute())
      if (a.name() == n) return a.i();
    return d;
  }
  float attrF(StringRef n, float d) {
    for (const auto &a : node->attribute())
      if (a.name() == n) return a.f();
    return d;
  }
  LogicalResult needAttr(StringRef n) {
    for (const auto &a : node->attribute())
      if (a.name() == n) return success();
    return fail("missing attribute '" + n + "'");
  }
  /// The weight behind an input (must be a photon.weight, i.e. an initializer).
  FailureOr<WeightRef> weightOf(Value v, int idx, StringRef what, ArrayRef<int64_t> expect) {
    auto def = v.getDefiningOp<ops::WeightOp>();
    if (!def)
      return fail("input " + Twine(idx) + " (" + what + ") must be an initializer (a weight)");
    WeightRef w{def.getName().str(), cast<RankedTensorType>(v.getType())};
    if (!isa<Float32Type>(w.type.getElementType()))
      return fail("weight '" + w.name + "' (" + what + ") must be f32");
    ArrayRef<int64_t> s = w.type.getShape();
    bool ok = s.size() == expect.size();
    for (size_t i = 0; ok && i < s.size(); ++i)
      if (!ShapedType::isDynamic(expect[i]) && expect[i] != s[i]) ok = false;
    if (!ok)
      return fail("weight '" + w.name + "' (" + what + ", input " + Twine(idx) + ") has shape " +
                  shapeStr(s) + ", expected " + shapeStr(expect));
    return w;
  }
  Value weightIn(OpBuilder &b, const WeightRef &w) {
    return ops::WeightOp::create(b, loc, w.type, w.name);
  }
  static RankedTensorType f32(ArrayRef<int64_t> s, MLIRContext *c) {
    return RankedTensorType::get(s, Float32Type::get(c));
  }
  FailureOr<StackSpec> stackSpec(int64_t width);
  FailureOr<SmallVector<WeightRef>> stackWeights(ArrayRef<Value> ins, int first,
                                                 const StackSpec &s);
  FailureOr<SmallVector<WeightRef>> gpt2StackWeights(ArrayRef<Value> ins, int first,
                                                     const StackSpec &s);
  void buildGpt2Layers(OpBuilder &b, Value &x, const StackSpec &s, ArrayRef<WeightRef> w);
  FailureOr<func::FuncOp> buildStack(OpBuilder &b, StringRef name, StringRef role, int64_t level,
                                     const StackSpec &s, ArrayRef<WeightRef> w, int64_t prefix,
                                     int64_t chunk);
  std::string stackName(ArrayRef<WeightRef> w, StringRef fallback);
  Value callStack(OpBuilder &b, func::FuncOp f, Value x);
  Value expandShape(OpBuilder &b, Value x, ArrayRef<int64_t> shape,
                    ArrayRef<ReassociationIndices> groups, ArrayRef<OpFoldResult> sizes) {
    return tensor::ExpandShapeOp::create(b, loc, f32(shape, b.getContext()), x, groups, sizes);
  }
  Value collapse(OpBuilder &b, Value x, ArrayRef<ReassociationIndices> groups) {
    return tensor::CollapseShapeOp::create(b, loc, x, groups);
  }
  Value toDyn3(OpBuilder &b, Value x) {
    auto t = cast<RankedTensorType>(x.getType());
    auto d = f32({kDyn, kDyn, t.getDimSize(2)}, b.getContext());
    return t == d ? x : tensor::CastOp::create(b, loc, d, x).getResult();
  }
  Value tokensI32(OpBuilder &b, Value t) {
    if (t == gi.tokensI64 && gi.tokensI32) return gi.tokensI32;
    auto tt = cast<RankedTensorType>(t.getType());
    if (tt.getElementType().isInteger(32)) return t;
    return castTensor(b, loc, t, b.getI32Type());
  }

  ModuleOp module;
  llvm::StringMap<func::FuncOp> stacks;
};

} // namespace raise
} // namespace import
} // namespace photon

#endif
