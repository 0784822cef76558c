//===- Raise.cpp - photon-convention functions -> photon ops -------------===//
//
// Calls of the photon ONNX convention's local functions (docs/onnx-convention.md,
// "Signatures") become photon ops, and every EncoderStack / LatentDecoder / TokenDecoder
// call becomes a call of a private stack function built from the call's signature and
// attributes (not from the ONNX body), exactly as docs/ir-contract.md "An imported module"
// describes. Every signature is checked first (input count, weight shapes against the
// attributes and the model's photon.config). Functions of other domains are inlined.
//
//===----------------------------------------------------------------------===//

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
using namespace mlir;
using mlir::photon::PhotonDialect;
namespace ops = mlir::photon;

namespace {

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

static std::string shapeStr(ArrayRef<int64_t> s) {
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
  /// Plain export (no photon functions): recovers the call sequence (RaisePlain.cpp).
  LogicalResult preparePlain();
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

FailureOr<StackSpec> Raiser::stackSpec(int64_t width) {
  for (StringRef a : {"n_layers", "n_heads", "n_kv_heads", "head_dim", "rope_theta", "eps"})
    if (failed(needAttr(a))) return failure();
  StackSpec s;
  s.layers = attrI("n_layers");
  s.heads = attrI("n_heads");
  s.kvHeads = attrI("n_kv_heads");
  s.headDim = attrI("head_dim");
  s.theta = attrF("rope_theta", 10000.f);
  s.eps = attrF("eps", 1e-5f);
  s.width = width;
  s.layerNorm = attrI("layer_norm", 0) == 1;
  s.geluTanh = attrI("gelu_tanh", 0) == 1;
  if (s.layers < 1 || s.heads < 1 || s.kvHeads < 1 || s.headDim < 2 ||
      (s.headDim % 2 && !s.layerNorm))
    return fail("n_layers, n_heads, n_kv_heads must be >= 1 and head_dim even (got " +
                Twine(s.layers) + ", " + Twine(s.heads) + ", " + Twine(s.kvHeads) + ", " +
                Twine(s.headDim) + ")");
  if (s.heads % s.kvHeads)
    return fail("n_heads (" + Twine(s.heads) + ") must be a multiple of n_kv_heads (" +
                Twine(s.kvHeads) + ")");
  if (cfg.nHeads > 0 && cfg.nHeads != s.heads)
    return fail("n_heads = " + Twine(s.heads) + " but photon.config says " + Twine(cfg.nHeads));
  if (cfg.nKvHeads > 0 && cfg.nKvHeads != s.kvHeads)
    return fail("n_kv_heads = " + Twine(s.kvHeads) + " but photon.config says " +
                Twine(cfg.nKvHeads));
  if (cfg.headDim > 0 && cfg.headDim != s.headDim)
    return fail("head_dim = " + Twine(s.headDim) + " but photon.config says " +
                Twine(cfg.headDim));
  return s;
}

FailureOr<SmallVector<WeightRef>> Raiser::stackWeights(ArrayRef<Value> ins, int first,
                                                       const StackSpec &s) {
  if (s.layerNorm) return gpt2StackWeights(ins, first, s);
  int64_t need = first + 9 * s.layers + 1;
  if ((int64_t)ins.size() != need)
    return fail("expected " + Twine(need) + " inputs for n_layers = " + Twine(s.layers) +
                ", got " + Twine(ins.size()));
  int64_t D = s.width, Q = s.heads * s.headDim, KV = s.kvHeads * s.headDim;
  int64_t F = kDyn;
  SmallVector<WeightRef> out;
  static const char *names[] = {"attn_norm", "wq", "wk", "wv", "wo",
                                "mlp_norm", "w_gate", "w_up", "w_down"};
  for (int64_t i = 0; i < s.layers; ++i) {
    for (int j = 0; j < 9; ++j) {
      int idx = first + 9 * i + j;
      SmallVector<int64_t> e;
      switch (j) {
      case 0: case 5: e = {D}; break;
      case 1: e = {Q, D}; break;
      case 2: case 3: e = {KV, D}; break;
      case 4: e = {D, Q}; break;
      case 6: case 7: e = {F, D}; break;
      case 8: e = {D, F}; break;
      }
      std::string what = std::string(names[j]) + "." + std::to_string(i);
      auto w = weightOf(ins[idx], idx, what, e);
      if (failed(w)) return failure();
      if (j == 6) {
        F = w->type.getDimSize(0);
        if (cfg.ffn > 0 && F != cfg.ffn)
          return fail("w_gate." + Twine(i) + " has " + Twine(F) + " rows but photon.config ffn = " +
                      Twine(cfg.ffn));
      }
      out.push_back(*w);
    }
  }
  auto fn = weightOf(ins[need - 1], need - 1, "final_norm", {D});
  if (failed(fn)) return failure();
  out.push_back(*fn);
  return out;
}

FailureOr<SmallVector<WeightRef>> Raiser::gpt2StackWeights(ArrayRef<Value> ins, int first,
                                                           const StackSpec &s) {
  int64_t need = first + 16 * s.layers + 2;
  if ((int64_t)ins.size() != need)
    return fail("expected " + Twine(need) + " inputs for n_layers = " + Twine(s.layers) +
                " (GPT-2-style blocks), got " + Twine(ins.size()));
  int64_t D = s.width, Q = s.heads * s.headDim, KV = s.kvHeads * s.headDim;
  int64_t F = kDyn;
  SmallVector<WeightRef> out;
  static const char *names[] = {"ln_1.w", "ln_1.b", "wq",     "bq",     "wk",   "bk",
                                "wv",     "bv",     "wo",     "bo",     "ln_2.w", "ln_2.b",
                                "w_fc",   "b_fc",   "w_proj", "b_proj"};
  for (int64_t i = 0; i < s.layers; ++i) {
    for (int j = 0; j < 16; ++j) {
      int idx = first + 16 * i + j;
      SmallVector<int64_t> e;
      switch (j) {
      case 0: case 1: case 9: case 10: case 11: case 15: e = {D}; break;
      case 2: e = {Q, D}; break;
      case 3: e = {Q}; break;
      case 4: case 6: e = {KV, D}; break;
      case 5: case 7: e = {KV}; break;
      case 8: e = {D, Q}; break;
      case 12: e = {F, D}; break;
      case 13: e = {F}; break;
      case 14: e = {D, F}; break;
      }
      std::string what = std::string(names[j]) + "." + std::to_string(i);
      auto w = weightOf(ins[idx], idx, what, e);
      if (failed(w)) return failure();
      if (j == 12) F = w->type.getDimSize(0);
      out.push_back(*w);
    }
  }
  for (int j = 0; j < 2; ++j) {
    auto fn = weightOf(ins[need - 2 + j], need - 2 + j, j ? "final_norm.b" : "final_norm.w", {D});
    if (failed(fn)) return failure();
    out.push_back(*fn);
  }
  return out;
}

/// x = x + wo(attention(ln_1(x))) + ...; x = x + w_proj(gelu(w_fc(ln_2(x)))), with biases.
void Raiser::buildGpt2Layers(OpBuilder &b, Value &x, const StackSpec &s, ArrayRef<WeightRef> w) {
  MLIRContext *c = b.getContext();
  auto xt = cast<RankedTensorType>(x.getType());
  Value N = tensor::DimOp::create(b, loc, x, 0), W = tensor::DimOp::create(b, loc, x, 1);
  float scale = 1.0f / std::sqrt((float)s.headDim);
  auto proj4 = [&](Value h, const WeightRef &wt, const WeightRef &bt, int64_t heads) {
    Value p = ops::LinearOp::create(b, loc, h, weightIn(b, wt), weightIn(b, bt));
    return expandShape(b, p, {kDyn, kDyn, heads, s.headDim}, {{0}, {1}, {2, 3}},
                       {N, W, b.getIndexAttr(heads), b.getIndexAttr(s.headDim)});
  };
  for (int64_t i = 0; i < s.layers; ++i) {
    ArrayRef<WeightRef> lw = w.slice(16 * i, 16);
    Value h = ops::LayerNormOp::create(b, loc, x, weightIn(b, lw[0]), weightIn(b, lw[1]), s.eps);
    Value q = proj4(h, lw[2], lw[3], s.heads), k = proj4(h, lw[4], lw[5], s.kvHeads),
          v = proj4(h, lw[6], lw[7], s.kvHeads);
    Value a = ops::CausalAttentionOp::create(b, loc, q, k, v, scale);
    Value a3 = collapse(b, a, {{0}, {1}, {2, 3}});
    Value o = ops::LinearOp::create(b, loc, xt, a3, weightIn(b, lw[8]), weightIn(b, lw[9]));
    x = arith::AddFOp::create(b, loc, x, o);
    Value h2 = ops::LayerNormOp::create(b, loc, x, weightIn(b, lw[10]), weightIn(b, lw[11]), s.eps);
    Value u = ops::LinearOp::create(b, loc, h2, weightIn(b, lw[12]), weightIn(b, lw[13]));
    Value g = ops::GeluOp::create(b, loc, u, s.geluTanh);
    Value m = ops::LinearOp::create(b, loc, xt, g, weightIn(b, lw[14]), weightIn(b, lw[15]));
    x = arith::AddFOp::create(b, loc, x, m);
  }
  x = ops::LayerNormOp::create(b, loc, x, weightIn(b, w[w.size() - 2]), weightIn(b, w.back()),
                               s.eps);
  (void)c;
}

std::string Raiser::stackName(ArrayRef<WeightRef> w, StringRef fallback) {
  // Weight names are "<stack>.<i>.<w>" (enc1.0.wq): the stack prefix names the function.
  std::string n = w.empty() ? fallback.str() : w.front().name;
  size_t dot = n.find('.');
  if (dot != std::string::npos) n = n.substr(0, dot);
  std::string s;
  for (char c : n) s += (isalnum((unsigned char)c) || c == '_') ? c : '_';
  if (s.empty()) s = fallback.str();
  std::string base = s;
  for (int k = 1; stacks.count(s); ++k) s = base + "_" + std::to_string(k);
  return s;
}

FailureOr<func::FuncOp> Raiser::buildStack(OpBuilder &outer, StringRef name, StringRef role,
                                           int64_t level, const StackSpec &s,
                                           ArrayRef<WeightRef> w, int64_t prefix, int64_t chunk) {
  MLIRContext *c = outer.getContext();
  OpBuilder b(c);
  // Insert before @forward (the last op of the module while converting).
  Operation *fwd = outer.getInsertionBlock()->getParentOp();
  b.setInsertionPoint(fwd);
  auto xt = f32({kDyn, kDyn, s.width}, c);
  auto f = func::FuncOp::create(b, loc, name, b.getFunctionType({xt}, {xt}));
  f.setPrivate();
  auto *dialect = ops::getPhotonDialect(c);
  dialect->getRoleAttrHelper().setAttr(f, b.getStringAttr(role));
  dialect->getLevelAttrHelper().setAttr(f, b.getI64IntegerAttr(level));
  Block *blk = f.addEntryBlock();
  b.setInsertionPointToStart(blk);
  Value x = blk->getArgument(0);
  if (s.layerNorm) {
    buildGpt2Layers(b, x, s, w);
    func::ReturnOp::create(b, loc, x);
    stacks[name] = f;
    return f;
  }
  Value N = tensor::DimOp::create(b, loc, x, 0), W = tensor::DimOp::create(b, loc, x, 1);
  float scale = 1.0f / std::sqrt((float)s.headDim);
  auto proj4 = [&](Value h, const WeightRef &wt, int64_t heads) {
    Value p = ops::LinearOp::create(b, loc, f32({kDyn, kDyn, heads * s.headDim}, c), h,
                                    weightIn(b, wt), Value());
    return expandShape(b, p, {kDyn, kDyn, heads, s.headDim}, {{0}, {1}, {2, 3}},
                       {N, W, b.getIndexAttr(heads), b.getIndexAttr(s.headDim)});
  };
  for (int64_t i = 0; i < s.layers; ++i) {
    ArrayRef<WeightRef> lw = w.slice(9 * i, 9);
    // x keeps the type xt: every op below preserves its operand's type.
    Value h = ops::RMSNormOp::create(b, loc, x, weightIn(b, lw[0]), s.eps);
    Value q = proj4(h, lw[1], s.heads), k = proj4(h, lw[2], s.kvHeads),
          v = proj4(h, lw[3], s.kvHeads);
    q = ops::RoPEOp::create(b, loc, q, /*offsets=*/Value(), s.theta);
    k = ops::RoPEOp::create(b, loc, k, /*offsets=*/Value(), s.theta);
    Value a;
    if (role == "encoder")
      a = ops::CausalAttentionOp::create(b, loc, q, k, v, scale);
    else
      a = ops::BoundedAttentionOp::create(b, loc, q, k, v, prefix, chunk, scale);
    Value a3 = collapse(b, a, {{0}, {1}, {2, 3}});
    Value o = ops::LinearOp::create(b, loc, xt, a3, weightIn(b, lw[4]), Value());
    x = arith::AddFOp::create(b, loc, x, o);
    Value h2 = ops::RMSNormOp::create(b, loc, x, weightIn(b, lw[5]), s.eps);
    Value m = ops::SwiGLUOp::create(b, loc, h2, weightIn(b, lw[6]), weightIn(b, lw[7]),
                                    weightIn(b, lw[8]));
    x = arith::AddFOp::create(b, loc, x, m);
  }
  x = ops::RMSNormOp::create(b, loc, x, weightIn(b, w.back()), s.eps);
  func::ReturnOp::create(b, loc, x);
  stacks[name] = f;
  return f;
}

Value Raiser::callStack(OpBuilder &b, func::FuncOp f, Value x) {
  return func::CallOp::create(b, loc, f, ValueRange{toDyn3(b, x)}).getResult(0);
}

std::optional<LogicalResult> Raiser::raise(const onnx::NodeProto &n, const onnx::FunctionProto &fn,
                                           Scope &scope, OpBuilder &b) {
  if (!handles(fn)) return std::nullopt;
  node = &n;
  loc = gi.nodeLoc(n);
  op = baseName(fn.name());
  module = b.getInsertionBlock()->getParentOp()->getParentOfType<ModuleOp>();
  MLIRContext *c = b.getContext();
  if (!configError.empty()) {
    emitError(loc) << configError;
    return failure();
  }
  SmallVector<Value> ins;
  for (const auto &name : n.input()) {
    Value v;
    if (name.empty()) return fail("inputs must not be omitted");
    if (failed(gi.lookup(scope, b, name, n, v))) return failure();
    ins.push_back(v);
  }
  auto rt = [&](int i) { return cast<RankedTensorType>(ins[i].getType()); };
  auto need = [&](size_t k) -> LogicalResult {
    if (ins.size() != k)
      return fail("expected " + Twine(k) + " inputs, got " + Twine(ins.size()));
    return success();
  };
  auto act3 = [&](int i, StringRef what) -> LogicalResult {
    if (rt(i).getRank() != 3 || !isa<Float32Type>(rt(i).getElementType()))
      return fail(what + " must be an f32 tensor of rank 3 [B, M, D], got " +
                  shapeStr(rt(i).getShape()));
    return success();
  };
  Value result;
  int64_t D = cfg.width;

  if (op == "TokenEmbedding") {
    if (failed(need(2))) return failure();
    if (!isIntTy(rt(0).getElementType())) return fail("tokens must be integers");
    auto w = weightOf(ins[1], 1, "table", {cfg.vocab > 0 ? cfg.vocab : kDyn, kDyn});
    if (failed(w)) return failure();
    Value ids = tokensI32(b, ins[0]);
    SmallVector<int64_t> s(rt(0).getShape());
    s.push_back(w->type.getDimSize(1));
    result = ops::EmbeddingOp::create(b, loc, ins[1], ids);
  } else if (op == "PositionEmbedding") {
    // Learned absolute positions (recognized GPT-2-style models): x + table[m].
    if (failed(need(2)) || failed(act3(0, "x"))) return failure();
    auto w = weightOf(ins[1], 1, "table", {kDyn, rt(0).getDimSize(2)});
    if (failed(w)) return failure();
    result = ops::PositionEmbeddingOp::create(b, loc, ins[0], ins[1], Value());
  } else if (op == "Chunk") {
    if (failed(need(1)) || failed(needAttr("size")) || failed(act3(0, "x"))) return failure();
    int64_t size = attrI("size"), M = rt(0).getDimSize(1);
    if (size < 1) return fail("size must be >= 1");
    if (!ShapedType::isDynamic(M) && M % size)
      return fail("size (" + Twine(size) + ") does not divide the stream length (" + Twine(M) + ")");
    result = ops::ChunkOp::create(b, loc, ins[0], size);
  } else if (op == "ChunkCompress") {
    if (failed(need(4)) || failed(needAttr("size")) || failed(needAttr("eps")) ||
        failed(act3(0, "x")))
      return failure();
    int64_t size = attrI("size"), M = rt(0).getDimSize(1), d = rt(0).getDimSize(2);
    if (size < 1) return fail("size must be >= 1");
    if (D < 0) D = d;
    if (!ShapedType::isDynamic(M) && M % size)
      return fail("size (" + Twine(size) + ") does not divide the stream length (" + Twine(M) + ")");
    auto nw = weightOf(ins[1], 1, "norm", {size * d});
    if (failed(nw)) return failure();
    auto ww = weightOf(ins[2], 2, "w", {D, size * d});
    if (failed(ww)) return failure();
    auto bw = weightOf(ins[3], 3, "b", {D});
    if (failed(bw)) return failure();
    result = ops::ChunkCompressOp::create(
        b, loc, f32({rt(0).getDimSize(0), ShapedType::isDynamic(M) ? kDyn : M / size, D}, c),
        ins[0], ins[1], ins[2], ins[3], b.getI64IntegerAttr(size),
        b.getF32FloatAttr(attrF("eps", 1e-5f)));
  } else if (op == "Shift") {
    if (failed(need(2)) || failed(act3(0, "x"))) return failure();
    auto sw = weightOf(ins[1], 1, "start", {rt(0).getDimSize(2)});
    if (failed(sw)) return failure();
    result = ops::ShiftOp::create(b, loc, ins[0], ins[1]);
  } else if (op == "LMHead") {
    if (failed(need(2))) return failure();
    int64_t d = rt(0).getShape().back();
    auto w = weightOf(ins[1], 1, "w", {cfg.vocab > 0 ? cfg.vocab : kDyn, d});
    if (failed(w)) return failure();
    result = ops::LMHeadOp::create(b, loc, ins[0], ins[1]);
  } else if (op == "EncoderStack") {
    if (ins.empty() || failed(act3(0, "x"))) return failure();
    int64_t d = rt(0).getDimSize(2);
    if (ShapedType::isDynamic(d)) d = D;
    if (D > 0 && d != D) return fail("x has width " + Twine(d) + ", photon.config width = " + Twine(D));
    auto s = stackSpec(d);
    if (failed(s)) return failure();
    auto w = stackWeights(ins, 1, *s);
    if (failed(w)) return failure();
    ++stackCount;
    std::string name = stackName(*w, "enc" + std::to_string(stackCount));
    int64_t level = attrI("level", 1); // recognized structures say it; exports name it
    if (attrI("level") < 1 && name.size() > 3 && StringRef(name).starts_with("enc"))
      StringRef(name).drop_front(3).getAsInteger(10, level);
    auto f = buildStack(b, name, "encoder", level, *s, *w, 0, 0);
    if (failed(f)) return failure();
    result = callStack(b, *f, ins[0]);
  } else if (op == "LatentDecoder" || op == "TokenDecoder") {
    bool tok = op == "TokenDecoder";
    for (StringRef a : {"chunk", "prefix"})
      if (failed(needAttr(a))) return failure();
    if (ins.empty() || failed(act3(0, "prev"))) return failure();
    int64_t d = rt(0).getDimSize(2);
    if (ShapedType::isDynamic(d)) d = D;
    if (D > 0 && d != D) return fail("prev has width " + Twine(d) + ", photon.config width = " + Twine(D));
    int64_t chunk = attrI("chunk"), R = attrI("prefix");
    if (chunk < 1 || R < 1) return fail("chunk and prefix must be >= 1");
    if (cfg.prefix > 0 && R != cfg.prefix)
      return fail("prefix = " + Twine(R) + " but photon.config says " + Twine(cfg.prefix));
    auto s = stackSpec(d);
    if (failed(s)) return failure();
    int first = tok ? 5 : 3;
    if ((int)ins.size() < first) return fail("too few inputs");
    int convAt = tok ? 3 : 1;
    auto cw = weightOf(ins[convAt], convAt, "conv_w", {R * d, d});
    if (failed(cw)) return failure();
    auto cb = weightOf(ins[convAt + 1], convAt + 1, "conv_b", {R * d});
    if (failed(cb)) return failure();
    FailureOr<WeightRef> emb;
    if (tok) {
      if (!isIntTy(rt(1).getElementType())) return fail("tokens must be integers");
      emb = weightOf(ins[2], 2, "emb", {cfg.vocab > 0 ? cfg.vocab : kDyn, d});
      if (failed(emb)) return failure();
    }
    auto w = stackWeights(ins, first, *s);
    if (failed(w)) return failure();
    std::string name = stackName(*w, tok ? "dec1" : "dec");
    int64_t level = attrI("level", tok ? 1 : 2);
    if (attrI("level") < 1 && name.size() > 3 && StringRef(name).starts_with("dec"))
      StringRef(name).drop_front(3).getAsInteger(10, level);
    auto f = buildStack(b, name, "decoder", level, *s, *w, R, chunk);
    if (failed(f)) return failure();
    // Converter: [B, M, D] -> [B, M, R, D].
    Value prev = ins[0];
    Value B = tensor::DimOp::create(b, loc, prev, 0), M = tensor::DimOp::create(b, loc, prev, 1);
    Value u = ops::ExpandOp::create(
        b, loc, f32({rt(0).getDimSize(0), rt(0).getDimSize(1), R, d}, c), prev, ins[convAt],
        ins[convAt + 1], b.getI64IntegerAttr(R));
    SmallVector<OpFoldResult> bmcd = {B, M, b.getIndexAttr(chunk), b.getIndexAttr(d)};
    Value outs;
    if (!tok) {
      // Free-running rollout: window = u; y_j = last output of the stack over the window.
      Value window = collapse(b, u, {{0, 1}, {2}, {3}});
      Value Nv = tensor::DimOp::create(b, loc, window, 0);
      SmallVector<Value> ys;
      for (int64_t j = 1; j <= chunk; ++j) {
        Value y = callStack(b, *f, window);
        int64_t len = R + j - 1;
        SmallVector<OpFoldResult> off = {b.getIndexAttr(0), b.getIndexAttr(len - 1), b.getIndexAttr(0)};
        SmallVector<OpFoldResult> sz = {Nv, b.getIndexAttr(1), b.getIndexAttr(d)};
        SmallVector<OpFoldResult> st(3, b.getIndexAttr(1));
        Value last = tensor::ExtractSliceOp::create(b, loc, f32({kDyn, 1, d}, c), y, off, sz, st);
        ys.push_back(last);
        if (j < chunk) window = tensor::ConcatOp::create(b, loc, 1, ValueRange{window, last});
      }
      outs = ys.size() == 1 ? ys[0] : tensor::ConcatOp::create(b, loc, 1, ys).getResult();
    } else {
      // Windows [u_m (R); EmbDec(first chunk-1 tokens of chunk m)].
      Value ids = tokensI32(b, ins[1]);
      SmallVector<int64_t> es(rt(1).getShape());
      es.push_back(d);
      Value e = ops::EmbeddingOp::create(b, loc, ins[2], ids);
      if (cast<RankedTensorType>(e.getType()).getRank() != 3)
        return fail("tokens must be rank 2 [B, T]");
      Value e4 = expandShape(b, toDyn3(b, e), {kDyn, kDyn, chunk, d}, {{0}, {1, 2}, {3}}, bmcd);
      Value win = u;
      if (chunk > 1) {
        SmallVector<OpFoldResult> off(4, b.getIndexAttr(0));
        SmallVector<OpFoldResult> sz = {B, M, b.getIndexAttr(chunk - 1), b.getIndexAttr(d)};
        SmallVector<OpFoldResult> st(4, b.getIndexAttr(1));
        Value head = tensor::ExtractSliceOp::create(b, loc, f32({kDyn, kDyn, chunk - 1, d}, c), e4,
                                                    off, sz, st);
        Value uu = tensor::CastOp::create(b, loc, f32({kDyn, kDyn, R, d}, c), u);
        win = tensor::ConcatOp::create(b, loc, 2, ValueRange{uu, head});
      }
      Value w3 = collapse(b, win, {{0, 1}, {2}, {3}});
      Value y = callStack(b, *f, w3);
      Value Nv = tensor::DimOp::create(b, loc, w3, 0);
      SmallVector<OpFoldResult> off = {b.getIndexAttr(0), b.getIndexAttr(R - 1), b.getIndexAttr(0)};
      SmallVector<OpFoldResult> sz = {Nv, b.getIndexAttr(chunk), b.getIndexAttr(d)};
      SmallVector<OpFoldResult> st(3, b.getIndexAttr(1));
      outs = tensor::ExtractSliceOp::create(b, loc, f32({kDyn, chunk, d}, c), y, off, sz, st);
    }
    // [B*M, chunk, D] -> [B, M*chunk, D]
    Value o4 = expandShape(b, outs, {kDyn, kDyn, chunk, d}, {{0, 1}, {2}, {3}}, bmcd);
    result = collapse(b, o4, {{0}, {1, 2}, {3}});
  } else {
    return std::nullopt;
  }
  if (n.output_size() < 1 || n.output(0).empty()) return fail("the call has no output");
  Value r = result;
  if (failed(gi.checkDeclaredPublic(scope, b, n.output(0), r, loc))) return failure();
  scope.values[n.output(0)] = r;
  return success();
}

LogicalResult Raiser::finalize(ModuleOp module, func::FuncOp forward) {
  MLIRContext *c = module.getContext();
  forward.setSymName("forward");
  auto *dialect = ops::getPhotonDialect(c);
  dialect->getStageAttrHelper().setAttr(forward, StringAttr::get(c, "forward"));
  // docs/ir-contract.md: @forward(tokens) -> logits. The convention's extra outputs (x1,
  // xh1: encoder and decoder bottleneck latents, for the reference's tests) are dropped;
  // --emit=upstream keeps every graph output.
  if (!stacks.empty() && forward.getNumResults() > 1) {
    auto ret = cast<func::ReturnOp>(forward.getBody().front().getTerminator());
    Value logits = ret.getOperand(0);
    OpBuilder b(ret);
    func::ReturnOp::create(b, ret.getLoc(), logits);
    ret.erase();
    SmallVector<unsigned> drop;
    for (unsigned i = 1; i < forward.getNumResults(); ++i) drop.push_back(i);
    llvm::BitVector bv(forward.getNumResults());
    for (unsigned i : drop) bv.set(i);
    if (failed(forward.eraseResults(bv))) return failure();
  }
  if (stacks.empty()) {
    emitRemark(module.getLoc()) << "'" << gi.model().path() << "' declares photon.family = "
                                << cfg.family << " but calls no photon stack function: "
                                << "imported to upstream ops";
  }
  if (cfg.vocab < 1 || cfg.width < 1)
    return emitError(module.getLoc())
           << kConfigMetadataKey << " must give vocab and width (needed for "
           << PhotonDialect::HierarchyAttrHelper::getNameStr() << ")";
  auto h = ops::HierarchyAttr::getChecked(
      [&] {
        return emitError(module.getLoc())
               << "cannot build the #photon.hierarchy of " << kConfigMetadataKey << ": ";
      },
      c, StringRef(cfg.family), cfg.levels, ArrayRef<int64_t>(cfg.chunkSizes), cfg.prefix,
      cfg.width, cfg.vocab);
  if (!h) return failure();
  dialect->getHierarchyAttrHelper().setAttr(module, h);
  return success();
}

} // namespace

//===----------------------------------------------------------------------===//
// Plain exports: recovering the hierarchy
//===----------------------------------------------------------------------===//
//
// A plain export (model.plain.onnx: every function inlined into default-domain ops) has the
// same initializer names, metadata and outputs as the function export. The call sequence
// of the convention (reference/photon_ref/export.py, expected_calls) follows from
// photon.config alone; the initializer names anchor each call's weights. Before the
// sequence replaces the graph's nodes, the graph's computation around every weight is
// checked against the pattern the call prescribes (RMSNorm, linear, SwiGLU, attention with
// a mask and softmax, residual adds, embedding gathers, converter / compressor biases); the
// first node that breaks a pattern is named in the error. The synthetic calls then go
// through the same raising as the function export, so both exports give the same module.

namespace {

class PlainChecker : public GraphView {
public:
  PlainChecker(const onnx::GraphProto &g, Location loc, StringRef path, double eps)
      : GraphView(g), loc(loc), path(path), eps(eps) {}

  Location loc;
  std::string path;
  double eps;

  LogicalResult fail(const onnx::NodeProto *n, StringRef weight, StringRef pattern,
                     const Twine &what) {
    auto d = emitError(loc) << "plain export '" << path << "': ";
    if (n) d << "node '" << n->name() << "' (" << n->op_type() << ") ";
    d << "breaks the " << pattern << " pattern around weight '" << weight << "': " << what
      << "; the graph does not compute what its photon.config and initializer names describe "
         "(export with functions, docs/onnx-convention.md, or import with --emit=upstream)";
    return failure();
  }
  /// linear: MatMul(x, Transpose(w)) (or MatMul(x, w) / Gemm): every MatMul the weight
  /// feeds (one per application of a stack: the latent decoders' rollout applies it
  /// `chunk` times).
  FailureOr<std::vector<const onnx::NodeProto *>> linears(const std::string &w) {
    std::vector<const onnx::NodeProto *> r;
    const auto &cs = cons(w);
    if (cs.empty()) return fail(nullptr, w, "linear", "the weight is not used"), failure();
    for (const onnx::NodeProto *c : cs) {
      if ((c->op_type() == "MatMul" || c->op_type() == "Gemm") && in(c, 1) == w) {
        r.push_back(c);
        continue;
      }
      if (c->op_type() != "Transpose")
        return fail(c, w, "linear", "expected Transpose or MatMul"), failure();
      const auto &tc = cons(out(c, 0));
      if (tc.empty()) return fail(c, w, "linear", "the transposed weight is not used"), failure();
      for (const onnx::NodeProto *m : tc) {
        if (m->op_type() != "MatMul" || in(m, 1) != out(c, 0))
          return fail(m, w, "linear", "the transposed weight must be the right operand of a MatMul"),
                 failure();
        r.push_back(m);
      }
    }
    return r;
  }
  /// The linear application of w that reads `in` (or the only one when in is empty).
  FailureOr<const onnx::NodeProto *> linear(const std::string &w, const std::string &src = "") {
    auto ms = linears(w);
    if (failed(ms)) return failure();
    for (auto *m : *ms)
      if (src.empty() ? ms->size() == 1 : in(m, 0) == src) return m;
    if (src.empty())
      return fail(nullptr, w, "linear", "expected one application, found " + Twine(ms->size())),
             failure();
    return fail((*ms)[0], w, "linear", "no MatMul by the weight reads '" + src + "'"), failure();
  }

  /// RMSNorm: Mul(Mul(x, Div(1, Sqrt(Add(ReduceMean(Pow(x, 2)), eps)))), w), one per
  /// application. Returns {x, out} for each.
  FailureOr<std::vector<std::pair<std::string, std::string>>> rmsNorms(const std::string &w) {
    const char *P = "RMSNorm";
    const auto &cs = cons(w);
    if (cs.empty()) return fail(nullptr, w, P, "the weight is not used"), failure();
    std::vector<std::pair<std::string, std::string>> r;
    for (const onnx::NodeProto *m : cs) {
      if (m->op_type() != "Mul") return fail(m, w, P, "expected a Mul by the weight"), failure();
      auto one = rmsNormAt(w, m);
      if (failed(one)) return failure();
      r.push_back(*one);
    }
    return r;
  }
  FailureOr<std::pair<std::string, std::string>> rmsNorm(const std::string &w) {
    auto r = rmsNorms(w);
    if (failed(r)) return failure();
    if (r->size() != 1)
      return fail(nullptr, w, "RMSNorm", "expected one application, found " + Twine(r->size())),
             failure();
    return (*r)[0];
  }
  FailureOr<std::pair<std::string, std::string>> rmsNormAt(const std::string &w,
                                                         const onnx::NodeProto *m) {
    const char *P = "RMSNorm";
    const onnx::NodeProto *xr = prod(other(*m, w));
    if (!xr || xr->op_type() != "Mul")
      return fail(xr ? xr : m, w, P, "expected Mul(x, 1/rms) before the weight"), failure();
    for (int side = 0; side < 2; ++side) {
      std::string x = in(xr, side), r = in(xr, 1 - side);
      const onnx::NodeProto *rn = prod(r);
      if (!rn || (rn->op_type() != "Div" && rn->op_type() != "Reciprocal")) continue;
      const onnx::NodeProto *sq = prod(in(rn, rn->input_size() - 1));
      if (rn->op_type() == "Div") {
        auto one = scalar(in(rn, 0));
        if (!one || *one != 1.0) return fail(rn, w, P, "expected 1 / sqrt(...)"), failure();
      }
      if (!sq || sq->op_type() != "Sqrt") return fail(rn, w, P, "expected 1 / Sqrt(...)"), failure();
      const onnx::NodeProto *add = prod(in(sq, 0));
      if (!add || add->op_type() != "Add") return fail(sq, w, P, "expected Sqrt(mean + eps)"), failure();
      for (int s2 = 0; s2 < 2; ++s2) {
        const onnx::NodeProto *mean = prod(in(add, s2));
        if (!mean || mean->op_type() != "ReduceMean") continue;
        auto e = scalar(in(add, 1 - s2));
        if (!e || std::fabs(*e - eps) > 1e-3 * eps)
          return fail(add, w, P, "epsilon is not photon.config norm_eps = " + Twine(std::to_string(eps))), failure();
        const onnx::NodeProto *pw = prod(in(mean, 0));
        if (!pw || pw->op_type() != "Pow" || in(pw, 0) != x)
          return fail(pw ? pw : mean, w, P, "expected ReduceMean(Pow(x, 2)) of the normalized x"),
                 failure();
        auto two = scalar(in(pw, 1));
        if (!two || *two != 2.0) return fail(pw, w, P, "expected exponent 2"), failure();
        return std::make_pair(x, out(m, 0));
      }
      return fail(add, w, P, "expected ReduceMean(...) + eps"), failure();
    }
    return fail(xr, w, P, "expected x * (1 / sqrt(mean(x^2) + eps))"), failure();
  }

  /// Nodes in the backward cone of v (bounded), not crossing `stop` values.
  std::set<const onnx::NodeProto *> cone(const std::string &v, const std::set<std::string> &stop,
                                         size_t limit = 400) {
    std::set<const onnx::NodeProto *> seen;
    std::vector<std::string> work{v};
    while (!work.empty() && seen.size() < limit) {
      std::string x = work.back();
      work.pop_back();
      if (stop.count(x)) continue;
      const onnx::NodeProto *p = prod(x);
      if (!p || !seen.insert(p).second) continue;
      if (p->op_type() == "Shape") continue; // shape arithmetic reads other layers' values
      for (const auto &i : p->input()) work.push_back(i);
    }
    return seen;
  }

  /// Attention kind of the stack being checked: scale 1/sqrt(headDim); a constant mask
  /// of a decoder window has maskMin..maskMax rows (0 = any).
  int64_t headDim = 0, maskMin = 0, maskMax = 0;

  double theta = 10000;
  /// RoPE: Cos / Sin(positions * f) with f[i] = theta^(-2i / head_dim), i < head_dim / 2.
  LogicalResult ropeFrequencies(const std::string &p, const onnx::NodeProto *trig) {
    const char *R = "rotary embedding";
    std::string w = p + "wq";
    const onnx::NodeProto *m = prod(in(trig, 0));
    if (!m || m->op_type() != "Mul")
      return fail(m ? m : trig, w, R, "expected " + trig->op_type() + "(positions * frequencies)"),
             failure();
    for (int side = 0; side < 2; ++side) {
      std::vector<float> f;
      std::vector<int64_t> shape;
      if (!constFloats(in(m, side), f, shape)) continue;
      int64_t half = headDim / 2;
      if ((int64_t)f.size() != half)
        return fail(m, w, R, Twine(f.size()) + " frequencies, expected head_dim / 2 = " +
                                 Twine(half)),
               failure();
      for (int64_t i = 0; i < half; ++i) {
        double want = std::pow(theta, -2.0 * i / (double)headDim);
        if (std::fabs(f[i] - want) > 1e-4 * want + 1e-12)
          return fail(m, w, R, "frequency " + Twine(i) + " is " + Twine(std::to_string(f[i])) +
                                   ", expected rope_theta^(-2i/head_dim) = " +
                                   Twine(std::to_string(want)) + " (rope_theta = " +
                                   Twine(std::to_string(theta)) + ")"),
                 failure();
      }
      return success();
    }
    return fail(m, w, R, "expected a constant frequency vector"), failure();
  }

  /// RoPE with precomputed tables (fixed-length decoder windows): Mul(x, T) with a
  /// constant T[..., L, head_dim / 2] = cos or sin(pos * theta^(-2i / head_dim)).
  LogicalResult ropeTable(const std::string &p, const onnx::NodeProto *m, bool &cosSeen,
                          bool &sinSeen) {
    int64_t half = headDim / 2;
    for (int side = 0; side < 2; ++side) {
      std::vector<float> t;
      std::vector<int64_t> shape;
      if (!constFloats(in(m, side), t, shape) || shape.size() < 2 || shape.back() != half ||
          t.size() < 2 * (size_t)half)
        continue;
      int64_t L = t.size() / half;
      bool isCos = true, isSin = true;
      for (int64_t pos = 0; pos < L; ++pos)
        for (int64_t i = 0; i < half; ++i) {
          double a = pos * std::pow(theta, -2.0 * i / (double)headDim);
          float v = t[pos * half + i];
          if (std::fabs(v - std::cos(a)) > 1e-4) isCos = false;
          if (std::fabs(v - std::sin(a)) > 1e-4) isSin = false;
        }
      if (!isCos && !isSin)
        return fail(m, p + "wq", "rotary embedding",
                    "a constant [" + Twine(L) + ", " + Twine(half) +
                        "] table that is neither cos nor sin of position * rope_theta^(-2i/head_dim)"
                        " (rope_theta = " + Twine(std::to_string(theta)) + ")"),
               failure();
      (isCos ? cosSeen : sinSeen) = true;
    }
    return success();
  }

  /// Softmax(q k^T * 1/sqrt(head_dim) + causal mask): the mask is a constant [L, L] with 0
  /// on and below the diagonal and -inf above, or Where(j > i, -inf, 0) over two Ranges.
  LogicalResult scoresAndMask(const std::string &p, const onnx::NodeProto *sm) {
    const char *A = "attention";
    std::string w = p + "wq";
    const onnx::NodeProto *add = prod(in(sm, 0));
    if (!add || add->op_type() != "Add")
      return fail(add ? add : sm, w, A, "expected Softmax(scores + mask)"), failure();
    for (int side = 0; side < 2; ++side) {
      const onnx::NodeProto *sc = prod(in(add, side));
      if (!sc || (sc->op_type() != "Mul" && sc->op_type() != "Div")) continue;
      std::optional<double> f;
      for (int k = 0; k < 2 && !f; ++k)
        if (prod(in(sc, k)) && prod(in(sc, k))->op_type() == "MatMul") f = scalar(in(sc, 1 - k));
      if (!f) continue;
      double want = sc->op_type() == "Mul" ? 1.0 / std::sqrt((double)headDim)
                                            : std::sqrt((double)headDim);
      if (std::fabs(*f - want) > 1e-4 * want)
        return fail(sc, w, A, "the scores are scaled by " + Twine(std::to_string(*f)) +
                                  ", expected 1/sqrt(head_dim = " + Twine(headDim) + ")"),
               failure();
      std::string mask = in(add, 1 - side);
      std::vector<float> vals;
      std::vector<int64_t> shape;
      if (constFloats(mask, vals, shape)) {
        if (shape.size() != 2 || shape[0] != shape[1])
          return fail(prod(mask) ? prod(mask) : add, w, A, "the mask must be square [L, L]"),
                 failure();
        int64_t L = shape[0];
        if ((maskMin && L < maskMin) || (maskMax && L > maskMax))
          return fail(prod(mask) ? prod(mask) : add, w, A,
                      "a window of " + Twine(L) + " positions, expected " + Twine(maskMin) +
                          ".." + Twine(maskMax) + " (prefix + chunk - 1)"),
                 failure();
        for (int64_t i = 0; i < L; ++i)
          for (int64_t j = 0; j < L; ++j) {
            float v = vals[i * L + j];
            if (j <= i ? v != 0.f : !(v <= -1e9f))
              return fail(prod(mask) ? prod(mask) : add, w, A,
                          "the mask is not causal at [" + Twine(i) + ", " + Twine(j) + "]"),
                     failure();
          }
        return success();
      }
      const onnx::NodeProto *wh = prod(mask);
      if (!wh || wh->op_type() != "Where")
        return fail(wh ? wh : add, w, A, "expected a causal mask (a constant or Where)"),
               failure();
      auto ninf = scalar(in(wh, 1));
      if (!ninf || !(*ninf <= -1e9))
        return fail(wh, w, A, "the masked value must be -inf"), failure();
      const onnx::NodeProto *cond = prod(in(wh, 0));
      if (cond && cond->op_type() == "Cast") cond = prod(in(cond, 0));
      if (!cond || cond->op_type() != "Greater")
        return fail(cond ? cond : wh, w, A, "expected the condition key > query"), failure();
      const onnx::NodeProto *k0 = prod(in(cond, 0)), *k1 = prod(in(cond, 1));
      auto axis = [&](const onnx::NodeProto *u) -> std::optional<int64_t> {
        if (!u || u->op_type() != "Unsqueeze") return std::nullopt;
        return constInt(in(u, 1));
      };
      auto a0 = axis(k0), a1 = axis(k1);
      if (!a0 || !a1 || *a0 != 0 || *a1 != 1)
        return fail(cond, w, A,
                    "expected Greater(key positions [1, L], query positions [L, 1]) (causal)"),
               failure();
      return success();
    }
    return fail(add, w, A, "expected scores = (q k^T) * scale"), failure();
  }

  /// One pre-norm transformer layer (prefix P, layer i), every application of it. xs: the
  /// layer inputs of the applications (empty for the first layer), replaced by the outputs.
  LogicalResult layer(const std::string &P, int64_t i, std::vector<std::string> &xs) {
    std::string p = P + "." + std::to_string(i) + ".";
    auto n1s = rmsNorms(p + "attn_norm");
    if (failed(n1s)) return failure();
    if (!xs.empty() && xs.size() != n1s->size())
      return fail(nullptr, p + "attn_norm", "residual stream",
                  "applied " + Twine(n1s->size()) + " times, the previous layer " +
                      Twine(xs.size()) + " times"),
             failure();
    std::vector<std::string> outs;
    for (size_t a = 0; a < n1s->size(); ++a) {
      auto &n1 = (*n1s)[a];
      if (!xs.empty() && llvm::find(xs, n1.first) == xs.end())
        return fail(prod(n1.first), p + "attn_norm", "residual stream",
                    "the layer's input is not the previous layer's output"),
               failure();
      std::string out;
      if (failed(application(p, n1, out))) return failure();
      outs.push_back(out);
    }
    xs = outs;
    return success();
  }

  LogicalResult application(const std::string &p, const std::pair<std::string, std::string> &n1,
                            std::string &result) {
    const onnx::NodeProto *mm[7];
    static const char *lin[] = {"wq", "wk", "wv", "wo", "w_gate", "w_up", "w_down"};
    // attention: q, k, v read the normed input; softmax(mask(q k^T * scale)) v -> wo.
    for (int j = 0; j < 3; ++j) {
      auto m = linear(p + lin[j], n1.second);
      if (failed(m)) return failure();
      mm[j] = *m;
    }
    std::set<std::string> stop{n1.second, n1.first};
    // wo: the application whose input cone holds this q projection.
    {
      auto os = linears(p + "wo");
      if (failed(os)) return failure();
      mm[3] = nullptr;
      // A later rollout step reads this step's output, so its cone holds this q too: the
      // own application is the one with the smallest cone.
      size_t best = SIZE_MAX;
      for (auto *o : *os) {
        auto c = cone(in(o, 0), stop);
        if (c.count(mm[0]) && c.size() < best) {
          best = c.size();
          mm[3] = o;
        }
      }
      if (!mm[3])
        return fail(mm[0], p + "wo", "attention", "the query projection does not reach wo"),
               failure();
    }
    auto oc = cone(in(mm[3], 0), stop);
    const onnx::NodeProto *sm = nullptr;
    for (auto *n : oc)
      if (n->op_type() == "Softmax") {
        if (sm) return fail(n, p + "wo", "attention", "more than one Softmax"), failure();
        sm = n;
      }
    if (!sm) return fail(mm[3], p + "wo", "attention", "no Softmax before the output projection"), failure();
    if (!oc.count(mm[2]))
      return fail(mm[3], p + "wv", "attention", "the value projection does not reach wo"), failure();
    auto sc = cone(in(sm, 0), stop);
    if (!sc.count(mm[0]) || !sc.count(mm[1]))
      return fail(sm, p + "wq", "attention", "the Softmax does not read q k^T"), failure();
    if (sc.count(mm[2]))
      return fail(sm, p + "wv", "attention", "the value projection feeds the scores"), failure();
    bool rot = false, cosSeen = false, sinSeen = false;
    for (auto *n : sc) {
      if (n->op_type() == "Neg" || n->op_type() == "Sub") rot = true;
      if (n->op_type() == "Mul" && failed(ropeTable(p, n, cosSeen, sinSeen))) return failure();
      if (n->op_type() != "Sin" && n->op_type() != "Cos") continue;
      (n->op_type() == "Cos" ? cosSeen : sinSeen) = true;
      if (failed(ropeFrequencies(p, n))) return failure();
    }
    if (!rot || !cosSeen || !sinSeen)
      return fail(sm, p + "wq", "attention",
                  "no rotary embedding (cos, sin of position * frequency, rotate-half) on q, k"),
             failure();
    if (failed(scoresAndMask(p, sm))) return failure();
    // residual: h = x + o
    const auto &oc2 = cons(out(mm[3], 0));
    const onnx::NodeProto *res1 = nullptr;
    for (auto *c : oc2)
      if (c->op_type() == "Add" && hasInput(*c, n1.first)) res1 = c;
    if (!res1)
      return fail(oc2.empty() ? mm[3] : oc2[0], p + "wo", "residual",
                  "expected Add(x, attention output)"),
             failure();
    const onnx::NodeProto *norm2 = nullptr;
    for (auto *c : cons(out(res1, 0)))
      if (c->op_type() == "Mul") {
        const onnx::NodeProto *m2 = nullptr;
        for (auto *d : cons(out(c, 0)))
          if (d->op_type() == "Mul" && hasInput(*d, p + "mlp_norm")) m2 = d;
        if (m2) norm2 = m2;
      }
    if (!norm2)
      return fail(res1, p + "mlp_norm", "residual", "mlp_norm must read the attention residual"),
             failure();
    auto n2 = rmsNormAt(p + "mlp_norm", norm2);
    if (failed(n2)) return failure();
    if (n2->first != out(res1, 0))
      return fail(prod(n2->first), p + "mlp_norm", "residual",
                  "mlp_norm must read the attention residual"),
             failure();
    // SwiGLU: w_down(silu(w_gate h) * w_up h)
    const char *S = "SwiGLU";
    for (int j = 4; j < 6; ++j) {
      auto m = linear(p + lin[j], n2->second);
      if (failed(m)) return failure();
      mm[j] = *m;
    }
    std::string gout = out(mm[4], 0), uout = out(mm[5], 0);
    const onnx::NodeProto *sig = nullptr, *silu = nullptr;
    for (auto *c : cons(gout))
      if (c->op_type() == "Sigmoid") sig = c;
    if (!sig) return fail(mm[4], p + "w_gate", S, "expected Sigmoid(gate)"), failure();
    for (auto *c : cons(gout))
      if (c->op_type() == "Mul" && hasInput(*c, out(sig, 0))) silu = c;
    if (!silu) return fail(sig, p + "w_gate", S, "expected gate * Sigmoid(gate)"), failure();
    const onnx::NodeProto *pr = nullptr;
    for (auto *c : cons(out(silu, 0)))
      if (c->op_type() == "Mul" && hasInput(*c, uout)) pr = c;
    if (!pr) return fail(silu, p + "w_up", S, "expected silu(gate) * up"), failure();
    auto down = linear(p + "w_down", out(pr, 0));
    if (failed(down)) return failure();
    mm[6] = *down;
    const onnx::NodeProto *res2 = nullptr;
    for (auto *c : cons(out(mm[6], 0)))
      if (c->op_type() == "Add" && hasInput(*c, out(res1, 0))) res2 = c;
    if (!res2) return fail(mm[6], p + "w_down", "residual", "expected Add(h, mlp output)"), failure();
    result = out(res2, 0);
    return success();
  }

  bool isInit(const std::string &v) const {
    for (const auto &i : g.initializer())
      if (i.name() == v) return true;
    return false;
  }

  /// A stack: layers then the final norm, every application.
  LogicalResult stack(const std::string &P, int64_t n, int64_t minWin = 0, int64_t maxWin = 0) {
    maskMin = minWin;
    maskMax = maxWin;
    std::vector<std::string> xs;
    for (int64_t i = 0; i < n; ++i)
      if (failed(layer(P, i, xs))) return failure();
    auto fs = rmsNorms(P + ".final_norm");
    if (failed(fs)) return failure();
    if (fs->size() != xs.size())
      return fail(nullptr, P + ".final_norm", "residual stream",
                  "applied " + Twine(fs->size()) + " times, the layers " + Twine(xs.size()) +
                      " times"),
             failure();
    for (auto &f : *fs)
      if (llvm::find(xs, f.first) == xs.end())
        return fail(prod(f.first), P + ".final_norm", "residual stream",
                    "the final norm must read the last layer's output"),
               failure();
    return success();
  }

  LogicalResult consumedBy(const std::string &w, std::initializer_list<StringRef> ops,
                           StringRef pattern) {
    const auto &cs = cons(w);
    if (cs.empty()) return fail(nullptr, w, pattern, "the weight is not used"), failure();
    for (auto *c : cs)
      if (llvm::find(ops, StringRef(c->op_type())) == ops.end())
        return fail(c, w, pattern, "unexpected consumer"), failure();
    return success();
  }
};

} // namespace

LogicalResult Raiser::preparePlain() {
  const onnx::ModelProto &mp = gi.model().proto();
  for (const auto &f : mp.functions())
    if (f.domain() == "photon") return success(); // the function export
  for (const auto &n : mp.graph().node())
    if (!isDefaultDomain(n.domain())) return success(); // not a plain export
  std::string path = gi.model().path();
  Location floc = FileLineColLoc::get(&gi.context(), path, 0, 0);
  auto bad = [&](const Twine &msg) {
    emitError(floc) << "plain export '" << path << "': cannot recover the PHOTON hierarchy: "
                    << msg;
    return failure();
  };
  if (!configError.empty()) return bad(configError);
  if (cfg.vocab < 1 || cfg.width < 1 || cfg.nHeads < 1 || cfg.nKvHeads < 1 || cfg.headDim < 1 ||
      cfg.ropeTheta <= 0 || cfg.normEps <= 0)
    return bad("photon.config must give vocab, width, n_heads, n_kv_heads, head_dim, rope_theta "
               "and norm_eps");
  bool vanilla = cfg.family == "vanilla";
  int64_t L = cfg.levels;
  if (!vanilla && (L < 1 || (int64_t)cfg.chunkSizes.size() != L || cfg.prefix < 1))
    return bad("photon.config must give levels >= 1, one chunk size per level and prefix >= 1");
  if (!vanilla && cfg.tokenDecoderInput != "decoder")
    return bad("token_decoder_input = '" + cfg.tokenDecoderInput + "' is not supported");
  auto layersOf = [&](const std::string &s) -> int64_t {
    auto it = cfg.layers.find(s);
    return it == cfg.layers.end() ? -1 : it->second;
  };
  std::set<std::string> outs;
  for (const auto &o : mp.graph().output()) outs.insert(o.name());

  // The convention's call sequence (reference/photon_ref/export.py, expected_calls).
  std::vector<PlainCall> calls;
  auto stackIns = [&](const std::string &P, int64_t n) {
    static const char *w[] = {"attn_norm", "wq", "wk", "wv", "wo",
                              "mlp_norm", "w_gate", "w_up", "w_down"};
    std::vector<std::string> r;
    for (int64_t i = 0; i < n; ++i)
      for (const char *x : w) r.push_back(P + "." + std::to_string(i) + "." + x);
    r.push_back(P + ".final_norm");
    return r;
  };
  auto sattrs = [&](PlainCall &c, int64_t n) {
    c.intAttrs = {{"n_layers", n}, {"n_heads", cfg.nHeads}, {"n_kv_heads", cfg.nKvHeads},
                  {"head_dim", cfg.headDim}};
    c.floatAttrs = {{"rope_theta", (float)cfg.ropeTheta}, {"eps", (float)cfg.normEps}};
  };
  auto add = [&](PlainCall c) { calls.push_back(std::move(c)); };
  auto stackCall = [&](const std::string &op, const std::string &P,
                       std::vector<std::string> pre) -> LogicalResult {
    int64_t n = layersOf(P);
    if (n < 1) return bad("photon.config layers lacks '" + P + "'");
    PlainCall c;
    c.op = op;
    c.stack = P;
    sattrs(c, n);
    c.inputs = {""};
    for (auto &p : pre) c.inputs.push_back(p);
    for (auto &w : stackIns(P, n)) c.inputs.push_back(w);
    calls.push_back(std::move(c));
    return success();
  };
  if (vanilla) {
    add({"TokenEmbedding", {}, {}, {"tokens", "emb"}, "", ""});
    if (failed(stackCall("EncoderStack", "stack", {}))) return failure();
    add({"LMHead", {}, {}, {"", "lm_head"}, "", ""});
  } else {
    auto &C = cfg.chunkSizes;
    add({"TokenEmbedding", {}, {}, {"tokens", "emb_enc"}, "", ""});
    add({"Chunk", {{"size", C[0]}}, {}, {""}, "", ""});
    for (int64_t l = 1; l <= L; ++l) {
      std::string P = "enc" + std::to_string(l);
      if (l >= 2)
        add({"ChunkCompress", {{"size", C[l - 1]}}, {{"eps", (float)cfg.normEps}},
             {"", P + ".compress.norm", P + ".compress.w", P + ".compress.b"}, "", ""});
      if (failed(stackCall("EncoderStack", P, {}))) return failure();
      if (l == 1 && outs.count("x1")) calls.back().output = "x1";
    }
    for (int64_t l = L; l >= 2; --l) {
      std::string P = "dec" + std::to_string(l);
      add({"Shift", {}, {}, {"", P + ".start"}, "", ""});
      if (failed(stackCall("LatentDecoder", P, {P + ".conv.w", P + ".conv.b"}))) return failure();
      calls.back().intAttrs.push_back({"chunk", C[l - 1]});
      calls.back().intAttrs.push_back({"prefix", cfg.prefix});
      if (l == 2 && outs.count("xh1")) calls.back().output = "xh1";
    }
    if (cfg.level1Shift) add({"Shift", {}, {}, {"", "dec1.start"}, "", ""});
    if (failed(stackCall("TokenDecoder", "dec1",
                         {"tokens", "dec1.emb", "dec1.conv.w", "dec1.conv.b"})))
      return failure();
    calls.back().intAttrs.push_back({"chunk", C[0]});
    calls.back().intAttrs.push_back({"prefix", cfg.prefix});
    add({"LMHead", {}, {}, {"", "lm_head"}, "", ""});
  }
  calls.back().output = "logits";
  if (!outs.count("logits")) return bad("the graph has no output 'logits'");

  // Every weight the sequence names exists; every float initializer is one of them.
  std::set<std::string> inits, used;
  for (const auto &t : mp.graph().initializer())
    if (t.data_type() == onnx::TensorProto::FLOAT) inits.insert(t.name());
  for (auto &c : calls)
    for (auto &i : c.inputs)
      if (!i.empty() && i != "tokens") {
        if (!inits.count(i))
          return bad(c.op + " needs the f32 initializer '" + i +
                     "' (docs/onnx-convention.md names), which the graph lacks");
        used.insert(i);
      }
  for (auto &i : inits)
    if (!used.count(i))
      return bad("initializer '" + i + "' is not a weight of the structure photon.config " +
                 "describes");

  // The computation around every weight.
  PlainChecker pc(mp.graph(), floc, path, cfg.normEps);
  pc.headDim = cfg.headDim;
  pc.theta = cfg.ropeTheta;
  for (auto &c : calls) {
    if (!c.stack.empty()) {
      int64_t lo = 0, hi = 0; // decoder windows: prefix .. prefix + chunk - 1 positions
      for (auto &[k, v] : c.intAttrs)
        if (k == "chunk") {
          lo = cfg.prefix;
          hi = cfg.prefix + v - 1;
        }
      if (failed(pc.stack(c.stack, layersOf(c.stack), lo, hi))) return failure();
      if (c.op != "EncoderStack") {
        const std::string &P = c.stack;
        if (failed(pc.linear(P + ".conv.w")) ||
            failed(pc.consumedBy(P + ".conv.b", {"Add"}, "converter")))
          return failure();
      }
      if (c.op == "TokenDecoder" && failed(pc.consumedBy("dec1.emb", {"Gather"}, "embedding")))
        return failure();
    } else if (c.op == "TokenEmbedding") {
      if (failed(pc.consumedBy(c.inputs[1], {"Gather"}, "embedding"))) return failure();
    } else if (c.op == "ChunkCompress") {
      if (failed(pc.rmsNorm(c.inputs[1])) || failed(pc.linear(c.inputs[2])) ||
          failed(pc.consumedBy(c.inputs[3], {"Add"}, "compressor")))
        return failure();
    } else if (c.op == "LMHead") {
      if (failed(pc.linear("lm_head"))) return failure();
      auto *mm = *pc.linear("lm_head");
      if (PlainChecker::out(mm, 0) != "logits" && !pc.cons(PlainChecker::out(mm, 0)).empty() &&
          pc.prod("logits") == nullptr)
        return bad("no node computes 'logits'");
    } else if (c.op == "Shift") {
      if (failed(pc.consumedBy(c.inputs[1], {"Reshape", "Unsqueeze", "Expand", "Concat"},
                               "shift")))
        return failure();
    }
  }

  emitCalls(calls);
  return success();
}


void Raiser::emitCalls(const std::vector<PlainCall> &calls) {
  // The synthetic calls, converted by the same raising as the function export.
  std::string prev;
  int k = 0;
  for (auto &c : calls) {
    onnx::NodeProto *n = plainNodes.Add();
    n->set_domain("photon");
    n->set_op_type(c.op);
    n->set_name("plain:" + c.op + (c.stack.empty() ? "" : "(" + c.stack + ")"));
    for (auto &i : c.inputs) n->add_input(i.empty() ? prev : i);
    prev = c.output.empty() ? "plain_" + std::to_string(k) + "_" + c.op : c.output;
    ++k;
    n->add_output(prev);
    for (auto &[name, v] : c.intAttrs) {
      auto *a = n->add_attribute();
      a->set_name(name);
      a->set_type(onnx::AttributeProto::INT);
      a->set_i(v);
    }
    for (auto &[name, v] : c.floatAttrs) {
      auto *a = n->add_attribute();
      a->set_name(name);
      a->set_type(onnx::AttributeProto::FLOAT);
      a->set_f(v);
    }
    auto &fn = plainFns[c.op];
    fn.set_domain("photon");
    fn.set_name(c.op);
  }
  gi.nodesOverride = &plainNodes;
  gi.syntheticFunction = [this](const std::string &d, const std::string &n)
      -> const onnx::FunctionProto * {
    if (d != "photon") return nullptr;
    auto it = plainFns.find(n);
    return it == plainFns.end() ? nullptr : &it->second;
  };
}

LogicalResult Raiser::prepareRecognized() {
  const onnx::ModelProto &mp = gi.model().proto();
  llvm::raw_ostream *ex = gi.options().explain;
  if (!recognizeDecoderOnly(mp.graph(), recognized, unrecognized)) {
    if (ex)
      *ex << "photon-import: '" << gi.model().path() << "': no photon.* metadata and no "
          << "PHOTON, Block or decoder-only structure recognized: " << unrecognized
          << "\n  imported to upstream ops; photon-compile makes a forward-only artifact\n";
    recognized = RecognizedModel();
    return success();
  }
  RecognizedModel &r = recognized;
  if (ex) {
    *ex << "photon-import: '" << gi.model().path() << "': recognized from the graph (no "
        << "photon.* metadata): " << r.family;
    if (r.levels == 0) *ex << " (decoder-only), " << r.layers << " layers";
    *ex << ", width " << r.width << ", vocab " << r.vocab << ", " << r.heads
        << " heads, " << r.kvHeads << " kv heads, head_dim " << r.headDim
        << (r.levels == 0 ? ", ffn " + std::to_string(r.ffn) : std::string())
        << (r.gpt2 ? ", LayerNorm eps " : ", RMSNorm eps ") << r.normEps;
    if (r.gpt2)
      *ex << ", GELU (" << r.gelu << "), learned positions '" << r.positionTable << "' ("
          << r.positions << "), biases";
    else
      *ex << ", RoPE " << r.ropeLayout << " base " << r.ropeTheta;
    *ex << "; tokens '" << r.tokensInput << "', logits '" << r.logitsOutput << "'\n";
    for (const DerivedWeight &d : r.derived)
      *ex << "  weight '" << d.name << "' = '" << d.source << "'"
          << (d.transpose ? " transposed to [out, in]" : "")
          << (d.interleavedHeadDim ? " with q/k rows in rotate-half order" : "")
          << (d.flatten ? " as a 1-D vector" : "")
          << (d.rowCount ? " rows [" + std::to_string(d.rowBegin) + ", " +
                               std::to_string(d.rowBegin + d.rowCount) + ")"
                         : std::string())
          << "\n";
    for (const std::string &e : r.explain) *ex << "  " << e << "\n";
  }
  cfg.family = r.family;
  cfg.vocab = r.vocab;
  cfg.width = r.width;
  cfg.nHeads = r.heads;
  cfg.nKvHeads = r.kvHeads;
  cfg.headDim = r.headDim;
  cfg.ffn = r.ffn;
  cfg.ropeTheta = r.ropeTheta;
  cfg.normEps = r.normEps;
  cfg.levels = r.levels;
  cfg.chunkSizes = r.chunkSizes;
  cfg.prefix = r.prefix;
  cfg.level1Shift = r.level1Shift;
  // Weights in the raising's layout ([out, in]; rotate-half RoPE rows).
  for (const DerivedWeight &d : r.derived) {
    const onnx::TensorProto *src = nullptr;
    for (const auto &t : mp.graph().initializer())
      if (t.name() == d.source) src = &t;
    TensorBytes tb;
    std::string err;
    if (src && d.flatten && gi.model().tensorBytes(*src, tb, err)) {
      onnx::TensorProto &t = gi.extraInitializers[d.name];
      t.set_name(d.name);
      t.set_data_type(onnx::TensorProto::FLOAT);
      t.add_dims(static_cast<int64_t>(tb.size() / 4));
      t.set_raw_data(std::string(reinterpret_cast<const char *>(tb.data()), tb.size()));
      continue;
    }
    if (src && d.rowCount > 0 && src->dims_size() == 1 && gi.model().tensorBytes(*src, tb, err)) {
      // Elements [rowBegin, +rowCount) of a fused projection's bias.
      if (d.rowBegin < 0 || d.rowBegin + d.rowCount > src->dims(0) ||
          (int64_t)tb.size() != 4 * src->dims(0))
        return emitError(FileLineColLoc::get(&gi.context(), gi.model().path(), 0, 0))
               << "bias '" << d.source << "' has no elements [" << d.rowBegin << ", "
               << d.rowBegin + d.rowCount << ")", failure();
      onnx::TensorProto &t = gi.extraInitializers[d.name];
      t.set_name(d.name);
      t.set_data_type(onnx::TensorProto::FLOAT);
      t.add_dims(d.rowCount);
      t.set_raw_data(std::string(reinterpret_cast<const char *>(tb.data()) + 4 * d.rowBegin,
                                 4 * d.rowCount));
      continue;
    }
    if (!src || !gi.model().tensorBytes(*src, tb, err) || src->dims_size() != 2)
      return emitError(FileLineColLoc::get(&gi.context(), gi.model().path(), 0, 0))
             << "cannot read weight '" << d.source << "': " << err, failure();
    int64_t R = src->dims(0), C = src->dims(1);
    int64_t rows = d.transpose ? C : R, cols = d.transpose ? R : C;
    int64_t rowBase = 0;
    if (d.rowCount > 0) {
      // Rows [rowBegin, +rowCount) of the [out, in] weight (one part of a fused QKV).
      if (d.rowBegin < 0 || d.rowBegin + d.rowCount > rows)
        return emitError(FileLineColLoc::get(&gi.context(), gi.model().path(), 0, 0))
               << "weight '" << d.source << "' has no rows [" << d.rowBegin << ", "
               << d.rowBegin + d.rowCount << ")", failure();
      rowBase = d.rowBegin;
      rows = d.rowCount;
    }
    const float *in = reinterpret_cast<const float *>(tb.data());
    std::string raw(static_cast<size_t>(rows * cols) * 4, '\0');
    float *o = reinterpret_cast<float *>(raw.data());
    int64_t hd = d.interleavedHeadDim;
    for (int64_t i = 0; i < rows; ++i) {
      // Row i of the result is row srcRow of the [out, in] weight: within each head, the
      // rotate-half order (evens, then odds) of the interleaved pairs.
      int64_t srcRow = i;
      if (hd > 0) {
        int64_t h = i / hd, j = i % hd;
        srcRow = h * hd + (j < hd / 2 ? 2 * j : 2 * (j - hd / 2) + 1);
      }
      srcRow += rowBase;
      for (int64_t k = 0; k < cols; ++k)
        o[i * cols + k] = d.transpose ? in[k * C + srcRow] : in[srcRow * C + k];
    }
    onnx::TensorProto &t = gi.extraInitializers[d.name];
    t.set_name(d.name);
    t.set_data_type(onnx::TensorProto::FLOAT);
    t.add_dims(rows);
    t.add_dims(cols);
    t.set_raw_data(std::move(raw));
  }
  gi.tokensName = r.tokensInput;
  gi.ignoredGraphIO.insert(r.ignoredInputs.begin(), r.ignoredInputs.end());
  gi.ignoredGraphIO.insert(r.ignoredOutputs.begin(), r.ignoredOutputs.end());
  gi.tokensAsI32 = true;
  emitCalls(r.calls);
  return success();
}

void installPhotonRaiser(GraphImporter &gi) {
  auto r = std::make_shared<Raiser>(gi);
  if (!r->init()) {
    // No metadata: the structure is read from the graph itself.
    gi.prepareHook = [r]() { return r->prepareRecognized(); };
    gi.raisesFunction = [r](const onnx::FunctionProto &fn) { return r->handles(fn); };
    gi.raiseHook = [r](const onnx::NodeProto &n, const onnx::FunctionProto &fn, Scope &s,
                       OpBuilder &b) { return r->raise(n, fn, s, b); };
    gi.finalizeHook = [r, &gi](ModuleOp module, func::FuncOp f) -> LogicalResult {
      if (r->recognized.family.empty()) {
        emitRemark(module.getLoc())
            << "no PHOTON hierarchy found in '" << gi.model().path()
            << "' (no photon.family metadata, and no PHOTON, Block or decoder-only structure "
               "recognized): imported to upstream ops. Not recognized: "
            << r->unrecognized;
        return success();
      }
      return r->finalize(module, f);
    };
    return;
  }
  gi.tokensAsI32 = true;
  gi.raisesFunction = [r](const onnx::FunctionProto &fn) { return r->handles(fn); };
  gi.raiseHook = [r](const onnx::NodeProto &n, const onnx::FunctionProto &fn, Scope &s,
                     OpBuilder &b) { return r->raise(n, fn, s, b); };
  gi.finalizeHook = [r](ModuleOp m, func::FuncOp f) { return r->finalize(m, f); };
  gi.prepareHook = [r, &gi]() {
    if (llvm::raw_ostream *ex = gi.options().explain) {
      *ex << "photon-import: '" << gi.model().path() << "': structure from the photon.* "
          << "metadata: family " << r->cfg.family << ", " << r->cfg.levels << " level(s), chunk sizes [";
      for (size_t i = 0; i < r->cfg.chunkSizes.size(); ++i)
        *ex << (i ? ", " : "") << r->cfg.chunkSizes[i];
      *ex << "], prefix " << r->cfg.prefix << ", width " << r->cfg.width << ", vocab "
          << r->cfg.vocab << " (checked against each call's weights while raising)\n";
    }
    return r->preparePlain();
  };
}

} // namespace import
} // namespace photon
