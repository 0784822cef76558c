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

#include "mlir/AsmParser/AsmParser.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Diagnostics.h"

#include "llvm/ADT/BitVector.h"
#include "llvm/Support/JSON.h"

#include <cmath>

namespace photon {
namespace import {
using namespace mlir;

namespace {

constexpr int64_t kDyn = ShapedType::kDynamic;

struct Config {
  std::string family;
  int64_t vocab = -1, width = -1, levels = 0, prefix = 0, nHeads = -1, nKvHeads = -1,
          headDim = -1, ffn = -1;
  std::vector<int64_t> chunkSizes;
};

/// Shapes of a stack's weights, for the signature check and the function body.
struct StackSpec {
  int64_t layers = 0, heads = 0, kvHeads = 0, headDim = 0, width = 0, ffn = 0;
  float theta = 10000.f, eps = 1e-5f;
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
    std::string fam = gi.model().metadata("photon.family");
    if (fam.empty()) return false;
    cfg.family = fam;
    std::string js = gi.model().metadata("photon.config");
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
           b == "Shift" || b == "LatentDecoder" || b == "TokenDecoder" || b == "LMHead";
  }

  std::optional<LogicalResult> raise(const onnx::NodeProto &node, const onnx::FunctionProto &fn,
                                     Scope &scope, OpBuilder &b);
  LogicalResult finalize(ModuleOp module, func::FuncOp forward);

  GraphImporter &gi;
  Config cfg;
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
    Operation *def = v.getDefiningOp();
    if (!def || def->getName().getStringRef() != "photon.weight")
      return fail("input " + Twine(idx) + " (" + what + ") must be an initializer (a weight)");
    WeightRef w{cast<StringAttr>(def->getAttr("name")).str(), cast<RankedTensorType>(v.getType())};
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
    OperationState st(loc, "photon.weight");
    st.addAttribute("name", b.getStringAttr(w.name));
    st.addTypes(w.type);
    return b.create(st)->getResult(0);
  }
  Value mk(OpBuilder &b, StringRef name, ValueRange operands, Type result,
           ArrayRef<NamedAttribute> attrs = {}) {
    OperationState st(loc, name);
    st.addOperands(operands);
    st.addTypes(result);
    st.addAttributes(attrs);
    return b.create(st)->getResult(0);
  }
  static RankedTensorType f32(ArrayRef<int64_t> s, MLIRContext *c) {
    return RankedTensorType::get(s, Float32Type::get(c));
  }
  FailureOr<StackSpec> stackSpec(int64_t width);
  FailureOr<SmallVector<WeightRef>> stackWeights(ArrayRef<Value> ins, int first,
                                                 const StackSpec &s);
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
  if (s.layers < 1 || s.heads < 1 || s.kvHeads < 1 || s.headDim < 2 || s.headDim % 2)
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
  f->setAttr("photon.role", b.getStringAttr(role));
  f->setAttr("photon.level", b.getI64IntegerAttr(level));
  Block *blk = f.addEntryBlock();
  b.setInsertionPointToStart(blk);
  Value x = blk->getArgument(0);
  Value N = tensor::DimOp::create(b, loc, x, 0), W = tensor::DimOp::create(b, loc, x, 1);
  auto epsA = b.getNamedAttr("eps", b.getF32FloatAttr(s.eps));
  float scale = 1.0f / std::sqrt((float)s.headDim);
  auto proj4 = [&](Value h, const WeightRef &wt, int64_t heads) {
    Value p = mk(b, "photon.linear", {h, weightIn(b, wt)}, f32({kDyn, kDyn, heads * s.headDim}, c));
    return expandShape(b, p, {kDyn, kDyn, heads, s.headDim}, {{0}, {1}, {2, 3}},
                       {N, W, b.getIndexAttr(heads), b.getIndexAttr(s.headDim)});
  };
  for (int64_t i = 0; i < s.layers; ++i) {
    ArrayRef<WeightRef> lw = w.slice(9 * i, 9);
    Value h = mk(b, "photon.rms_norm", {x, weightIn(b, lw[0])}, xt, {epsA});
    Value q = proj4(h, lw[1], s.heads), k = proj4(h, lw[2], s.kvHeads),
          v = proj4(h, lw[3], s.kvHeads);
    auto theta = b.getNamedAttr("theta", b.getF32FloatAttr(s.theta));
    q = mk(b, "photon.rope", {q}, q.getType(), {theta});
    k = mk(b, "photon.rope", {k}, k.getType(), {theta});
    auto qt = f32({kDyn, kDyn, s.heads, s.headDim}, c);
    Value a;
    if (role == "encoder")
      a = mk(b, "photon.causal_attention", {q, k, v}, qt,
             {b.getNamedAttr("scale", b.getF32FloatAttr(scale))});
    else
      a = mk(b, "photon.bounded_attention", {q, k, v}, qt,
             {b.getNamedAttr("prefix", b.getI64IntegerAttr(prefix)),
              b.getNamedAttr("chunk", b.getI64IntegerAttr(chunk)),
              b.getNamedAttr("scale", b.getF32FloatAttr(scale))});
    Value a3 = collapse(b, a, {{0}, {1}, {2, 3}});
    Value o = mk(b, "photon.linear", {a3, weightIn(b, lw[4])}, xt);
    x = arith::AddFOp::create(b, loc, x, o);
    Value h2 = mk(b, "photon.rms_norm", {x, weightIn(b, lw[5])}, xt, {epsA});
    Value m = mk(b, "photon.swiglu",
                 {h2, weightIn(b, lw[6]), weightIn(b, lw[7]), weightIn(b, lw[8])}, xt);
    x = arith::AddFOp::create(b, loc, x, m);
  }
  x = mk(b, "photon.rms_norm", {x, weightIn(b, w.back())}, xt, {epsA});
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
    result = mk(b, "photon.embedding", {ins[1], ids}, f32(s, c));
  } else if (op == "Chunk") {
    if (failed(need(1)) || failed(needAttr("size")) || failed(act3(0, "x"))) return failure();
    int64_t size = attrI("size"), M = rt(0).getDimSize(1), d = rt(0).getDimSize(2);
    if (size < 1) return fail("size must be >= 1");
    if (!ShapedType::isDynamic(M) && M % size)
      return fail("size (" + Twine(size) + ") does not divide the stream length (" + Twine(M) + ")");
    int64_t rd = ShapedType::isDynamic(d) ? kDyn : d * size;
    result = mk(b, "photon.chunk", {ins[0]},
                f32({rt(0).getDimSize(0), ShapedType::isDynamic(M) ? kDyn : M / size, rd}, c),
                {b.getNamedAttr("size", b.getI64IntegerAttr(size))});
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
    result = mk(b, "photon.chunk_compress", ins,
                f32({rt(0).getDimSize(0), ShapedType::isDynamic(M) ? kDyn : M / size, D}, c),
                {b.getNamedAttr("size", b.getI64IntegerAttr(size)),
                 b.getNamedAttr("eps", b.getF32FloatAttr(attrF("eps", 1e-5f)))});
  } else if (op == "Shift") {
    if (failed(need(2)) || failed(act3(0, "x"))) return failure();
    auto sw = weightOf(ins[1], 1, "start", {rt(0).getDimSize(2)});
    if (failed(sw)) return failure();
    result = mk(b, "photon.shift", ins, rt(0));
  } else if (op == "LMHead") {
    if (failed(need(2))) return failure();
    int64_t d = rt(0).getShape().back();
    auto w = weightOf(ins[1], 1, "w", {cfg.vocab > 0 ? cfg.vocab : kDyn, d});
    if (failed(w)) return failure();
    SmallVector<int64_t> s(rt(0).getShape());
    s.back() = w->type.getDimSize(0);
    result = mk(b, "photon.lm_head", ins, f32(s, c));
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
    int64_t level = 1;
    if (name.size() > 3 && StringRef(name).starts_with("enc"))
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
    int64_t level = tok ? 1 : 2;
    if (name.size() > 3 && StringRef(name).starts_with("dec"))
      StringRef(name).drop_front(3).getAsInteger(10, level);
    auto f = buildStack(b, name, "decoder", level, *s, *w, R, chunk);
    if (failed(f)) return failure();
    // Converter: [B, M, D] -> [B, M, R, D].
    Value prev = ins[0];
    Value B = tensor::DimOp::create(b, loc, prev, 0), M = tensor::DimOp::create(b, loc, prev, 1);
    Value u = mk(b, "photon.expand", {prev, ins[convAt], ins[convAt + 1]},
                 f32({rt(0).getDimSize(0), rt(0).getDimSize(1), R, d}, c),
                 {b.getNamedAttr("r", b.getI64IntegerAttr(R))});
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
      Value e = mk(b, "photon.embedding", {ins[2], ids}, f32(es, c));
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
  forward->setAttr("photon.stage", StringAttr::get(c, "forward"));
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
           << "photon.config must give vocab and width (needed for photon.hierarchy)";
  std::string cs;
  for (size_t i = 0; i < cfg.chunkSizes.size(); ++i) cs += (i ? ", " : "") + std::to_string(cfg.chunkSizes[i]);
  std::string text = "#photon.hierarchy<family = \"" + cfg.family + "\", levels = " +
                     std::to_string(cfg.levels) + ", chunk_sizes = [" + cs + "], prefix = " +
                     std::to_string(cfg.prefix) + ", width = " + std::to_string(cfg.width) +
                     ", vocab = " + std::to_string(cfg.vocab) + ">";
  Attribute h = parseAttribute(text, c);
  if (!h) return emitError(module.getLoc()) << "cannot build " << text;
  module->setAttr("photon.hierarchy", h);
  return success();
}

} // namespace

void installPhotonRaiser(GraphImporter &gi) {
  auto r = std::make_shared<Raiser>(gi);
  if (!r->init()) {
    gi.finalizeHook = [&gi](ModuleOp module, func::FuncOp) -> LogicalResult {
      emitRemark(module.getLoc()) << "no PHOTON hierarchy found in '" << gi.model().path()
                                  << "' (no photon.family metadata): imported to upstream ops";
      return success();
    };
    return;
  }
  gi.tokensAsI32 = true;
  gi.raisesFunction = [r](const onnx::FunctionProto &fn) { return r->handles(fn); };
  gi.raiseHook = [r](const onnx::NodeProto &n, const onnx::FunctionProto &fn, Scope &s,
                     OpBuilder &b) { return r->raise(n, fn, s, b); };
  gi.finalizeHook = [r](ModuleOp m, func::FuncOp f) { return r->finalize(m, f); };
}

} // namespace import
} // namespace photon
