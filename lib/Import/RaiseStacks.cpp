//===- RaiseStacks.cpp - stack functions of the photon convention --------===//
//
// Every EncoderStack / LatentDecoder / TokenDecoder call becomes a call of a private stack
// function (@enc1, @dec2, @stack) whose body is built from the call's signature and
// attributes (LLaMA-style or GPT-2-style layers of photon ops), after the signature is
// checked against the weights' shapes. docs/ir-contract.md, "An imported module".
//
//===----------------------------------------------------------------------===//

#include "RaiseImpl.h"

namespace photon {
namespace import {
namespace raise {

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

} // namespace raise
} // namespace import
} // namespace photon
