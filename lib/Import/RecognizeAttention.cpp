//===- RecognizeAttention.cpp - attention: projection cones, RoPE, scale, mask, GQA ---===//
//
// Part of the structure recognizer (Recognize.h, RecognizerImpl.h; docs/importer.md,
// "Structure recognition").
//
//===----------------------------------------------------------------------===//

#include "RecognizerImpl.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <set>
#include <sstream>

namespace photon {
namespace import {
namespace recognize {

std::vector<const Node *> Recognizer::between(const std::string &from, const std::string &to) {
  std::vector<const Node *> r;
  std::set<const Node *> seen;
  std::vector<std::string> work{from};
  while (!work.empty()) {
    std::string v = work.back();
    work.pop_back();
    if (v == to || !tokDep.count(v)) continue;
    const Node *p = prod(v);
    if (!p || !seen.insert(p).second) continue;
    r.push_back(p);
    for (const auto &i : p->input()) work.push_back(i);
  }
  return r;
}

bool Recognizer::cone(const std::vector<const Node *> &nodes, Cone &c, const char *what) {
  static const std::set<std::string> layout = {
      "Reshape", "Transpose", "Unsqueeze", "Squeeze", "Cast", "Identity", "Expand",
      "Flatten", "Tile", "Slice", "Concat", "Split", "Neg", "Mul", "Add", "Sub", "Div"};
  for (const Node *n : nodes) {
    const std::string &op = n->op_type();
    if (!layout.count(op))
      return fail(n, std::string("an op the ") + what + " path of attention does not have");
    claimed.insert(n);
    if (op == "Tile") c.tile = true;
    if (op == "Concat" && (std::string(what) == "key" || std::string(what) == "value")) {
      // A decoder-with-past export appends the new keys / values to the past cache.
      bool past = false;
      for (const auto &i : n->input())
        if (!i.empty() && !tokDep.count(i)) past |= cacheInputs.count(skipLayout(i)) > 0;
      if (past) {
        c.pastConcat = n;
        continue;
      }
    }
    if (op == "Add" || op == "Sub" || op == "Concat")
      for (const auto &i : n->input())
        if (!i.empty() && !tokDep.count(i))
          return fail(n, std::string("a constant ") + (op == "Concat" ? "concatenated" : "added") +
                             " on the " + what + " path of attention (a projection bias, "
                             "which the decoder-only form does not have)");
    if (op == "Reshape") {
      std::vector<int64_t> s;
      std::string shp = in(n, 1);
      int64_t last = 0;
      if (constInts(shp, s) && !s.empty()) last = s.back();
      else if (const Node *cc = prod(shp); cc && cc->op_type() == "Concat" && cc->input_size())
        if (auto v = lastInt(cc->input(cc->input_size() - 1))) last = *v;
      if (last == 2) c.interleaved = true;
      // GPT-2's Conv1D views its [B*T, 3D] output as [B, T, 3D] before the head split:
      // the head split is the smallest.
      else if (last > 2 && (!gpt2 || !c.reshapeLast || last < c.reshapeLast))
        c.reshapeLast = last;
    }
    if (op == "Slice") {
      std::vector<int64_t> st;
      if (n->input_size() > 4 && constInts(in(n, 4), st) && !st.empty() && std::abs(st[0]) == 2)
        c.interleaved = true;
    }
    if (op == "Mul" || op == "Div") {
      for (int s = 0; s < 2; ++s) {
        std::string o = in(n, s);
        if (tokDep.count(o)) continue;
        if (auto f = scalarValue(o)) {
          c.scale *= op == "Mul" ? *f : (s == 1 ? 1.0 / *f : 0.0);
          if (op == "Div" && s == 0) return fail(n, "a division of a constant by the activations");
        } else if (op == "Mul") {
          c.rope = true;
          findTrig(o, c);
        } else {
          return fail(n, "a division by a non-scalar tensor");
        }
      }
    }
  }
  return true;
}

std::optional<int64_t> Recognizer::lastInt(const std::string &v) {
  std::vector<int64_t> s;
  std::string u = v;
  if (const Node *p = prod(v); p && p->op_type() == "Unsqueeze") u = in(p, 0);
  if (constInts(u, s) && !s.empty()) return s.back();
  return std::nullopt;
}

std::optional<double> Recognizer::scalarValue(const std::string &v, int depth) {
  if (auto s = scalar(v)) return s;
  if (auto i = constInt(v)) return (double)*i;
  if (depth > 6) return std::nullopt;
  const Node *p = prod(v);
  if (!p) return std::nullopt;
  const std::string &op = p->op_type();
  if (op == "Cast" || op == "Identity") return scalarValue(in(p, 0), depth + 1);
  if (op == "Sqrt" || op == "Reciprocal") {
    auto a = scalarValue(in(p, 0), depth + 1);
    if (!a) return std::nullopt;
    claimed.insert(p);
    return op == "Sqrt" ? std::sqrt(*a) : 1.0 / *a;
  }
  if (op == "Div" || op == "Mul" || op == "Pow") {
    auto a = scalarValue(in(p, 0), depth + 1), b = scalarValue(in(p, 1), depth + 1);
    if (!a || !b) return std::nullopt;
    claimed.insert(p);
    return op == "Div" ? *a / *b : op == "Mul" ? *a * *b : std::pow(*a, *b);
  }
  return std::nullopt;
}

void Recognizer::findTrig(const std::string &v, Cone &c) {
  std::vector<std::string> work{v};
  std::set<std::string> seen;
  while (!work.empty() && seen.size() < 64) {
    std::string x = work.back();
    work.pop_back();
    if (!seen.insert(x).second) continue;
    const Node *p = prod(x);
    if (!p) {
      if (isFloatInit(x) && dims(x).size() >= 2) c.tables.push_back(x);
      continue;
    }
    if (p->op_type() == "Cos" || p->op_type() == "Sin") {
      c.trig.push_back(p);
      continue;
    }
    if (p->op_type() == "Shape" || tokDep.count(x)) continue; // sizes, not values
    if (p->op_type() == "Constant") {
      std::vector<float> f;
      std::vector<int64_t> s;
      if (constFloats(x, f, s) && s.size() >= 2) c.tables.push_back(x);
      continue;
    }
    for (const auto &i : p->input()) work.push_back(i);
  }
}

bool Recognizer::ropeTheta(const Cone &c, int64_t hd, double &theta, const Node *at) {
  int64_t half = hd / 2;
  auto thetaOf = [&](const std::vector<double> &f, double tol = 1e-4) -> std::optional<double> {
    // f[i] = theta^(-2i / hd); i = 1 gives theta, the rest are checked.
    if ((int64_t)f.size() < 2 || f[0] != 1.0 || !(f[1] > 0 && f[1] < 1)) return std::nullopt;
    double t = std::pow(f[1], -(double)hd / 2.0);
    // RoPE bases are integers (10000, 500000, ...); f32 frequencies lose the last digits.
    if (std::fabs(t - std::round(t)) < 1e-4 * t) t = std::round(t);
    for (int64_t i = 0; i < (int64_t)f.size(); ++i) {
      double want = std::pow(t, -2.0 * i / (double)hd);
      if (std::fabs(f[i] - want) > tol * want + 1e-6) return std::nullopt;
    }
    return t;
  };
  for (const Node *t : c.trig) {
    // Search the constant cone of the argument for a vector of hd/2 frequencies.
    std::vector<std::string> work{in(t, 0)};
    std::set<std::string> seen;
    while (!work.empty() && seen.size() < 64) {
      std::string x = work.back();
      work.pop_back();
      if (!seen.insert(x).second) continue;
      std::vector<float> f;
      std::vector<int64_t> s;
      if (constFloats(x, f, s)) {
        std::vector<double> fr;
        if ((int64_t)f.size() == half) fr.assign(f.begin(), f.end());
        else if ((int64_t)f.size() == hd) fr.assign(f.begin(), f.begin() + half); // cat(f, f)
        if (!fr.empty())
          if (auto th = thetaOf(fr)) {
            theta = *th;
            return true;
          }
        continue;
      }
      if (const Node *p = prod(x); p && p->op_type() != "Shape" && !tokDep.count(x)) {
        claimed.insert(p);
        for (const auto &i : p->input()) work.push_back(i);
      }
    }
  }
  // Tables: sin of position * inv_freq (row 0 all zero) is exact for small angles, so it
  // is preferred to cos.
  for (int wantSin = 1; wantSin >= 0; --wantSin)
    for (const std::string &tb : c.tables) {
      std::vector<float> v;
      std::vector<int64_t> s;
      if (!constFloats(tb, v, s) || s.empty()) continue;
      int64_t cols = s.back();
      if ((cols != half && cols != hd) || (int64_t)v.size() < 2 * cols) continue;
      bool isSin = std::fabs(v[0]) < 1e-6, isCos = std::fabs(v[0] - 1.0f) < 1e-6;
      if (wantSin ? !isSin : !isCos) continue;
      bool dup = cols == hd && v[cols] == v[cols + 1]; // interleaved: f0 f0 f1 f1 ...
      std::vector<double> fr(half);
      for (int64_t i = 0; i < half; ++i) {
        double r1 = std::max(-1.0, std::min(1.0, (double)v[cols + (dup ? 2 * i : i)]));
        fr[i] = isSin ? std::asin(r1) : std::acos(r1);
      }
      fr[0] = 1.0; // row 1, frequency 0: an angle of exactly 1 rad
      if (auto th = thetaOf(fr, 2e-3)) {
        theta = *th;
        return true;
      }
    }
  return fail(at, "the rotary embedding's frequencies were not found or are not "
                  "theta^(-2i/head_dim) (looked for an inv_freq vector or cos/sin tables)");
}

bool Recognizer::attention(const std::string &aOut, const std::string &n, int layer) {
  Linear o;
  if (!(gpt2 ? linearB(aOut, o, "attention output") : linear(aOut, o, "attention output")))
    return false;
  lin.push_back(o);
  // Back from o.x to MatMul(P, V) through layout ops.
  std::string v = o.x;
  const Node *pv = nullptr;
  std::vector<const Node *> post;
  for (int k = 0; k < 16; ++k) {
    const Node *p = prod(v);
    if (!p) break;
    if (p->op_type() == "MatMul" && !isFloatInit(in(p, 1)) && tokDep.count(in(p, 1))) {
      pv = p;
      break;
    }
    if (p->op_type() != "Reshape" && p->op_type() != "Transpose" && p->op_type() != "Cast" &&
        p->op_type() != "Identity")
      return fail(p, "expected reshapes / transposes between attention and its output projection");
    post.push_back(p);
    v = in(p, 0);
  }
  if (!pv) return fail(o.mm, "no attention-weights x V MatMul before the output projection");
  claimed.insert(post.begin(), post.end());
  claimed.insert(pv);
  const Node *sm = prodOp(in(pv, 0), "Softmax");
  if (!sm) return fail(pv, "the attention weights are not a Softmax");
  auto *ax = attr(sm, "axis");
  if (ax && ax->i() != -1 && ax->i() != 3)
    return fail(sm, "Softmax over an axis other than the keys");
  claimed.insert(sm);
  note(sm, "attention softmax (block " + std::to_string(layer + 1) + " counted from the output)");
  // Scores: back through scale and mask ops to MatMul(q, k^T).
  std::string s = in(sm, 0);
  double scale = 1;
  bool mask = false;
  const Node *qk = nullptr;
  for (int k = 0; k < 12; ++k) {
    s = skip(s);
    const Node *p = prod(s);
    if (!p) break;
    const std::string &op = p->op_type();
    if (op == "MatMul") {
      qk = p;
      break;
    }
    claimed.insert(p);
    int dep = tokDep.count(in(p, 0)) ? 0 : 1;
    if (op == "Where") {
      dep = tokDep.count(in(p, 1)) ? 1 : 2;
      auto fill = scalarValue(in(p, dep == 1 ? 2 : 1));
      if (!fill || !(*fill <= -1e4))
        return fail(p, "a Where on the scores whose other value is not a large negative constant (a mask)");
      mask = true;
      note(p, "attention mask (Where)");
      s = in(p, dep);
      continue;
    }
    if (tokDep.count(in(p, 1 - dep)) && op != "Where")
      return fail(p, "an op combining the scores with another token-dependent value");
    if (op == "Add") {
      mask = true;
      note(p, "attention mask (additive)");
    } else if (op == "Mul" || op == "Div") {
      auto f = scalarValue(in(p, 1 - dep));
      if (!f || (op == "Div" && dep == 1)) return fail(p, "a non-scalar scale of the scores");
      scale *= op == "Mul" ? *f : 1.0 / *f;
    } else {
      return fail(p, "an op between QK^T and the Softmax that is not a scale or a mask");
    }
    s = in(p, dep);
  }
  if (!qk) return fail(sm, "no QK^T MatMul before the Softmax");
  if (!mask)
    return fail(sm, "the attention has no mask: a bidirectional attention is not a decoder");
  claimed.insert(qk);
  // The q, k, v projections and the cones from them.
  Linear q, kk, vv;
  auto projOf = [&](const std::string &from, Linear &L, const char *what, Cone &c) -> bool {
    // Walk back through token-dependent single-input chains to the first MatMul by a weight.
    std::vector<std::string> work{from};
    std::set<std::string> seen;
    std::string found;
    while (!work.empty()) {
      std::string x = work.back();
      work.pop_back();
      if (!seen.insert(x).second || !tokDep.count(x)) continue;
      const Node *p = prod(x);
      if (!p) continue;
      if ((p->op_type() == "MatMul" || p->op_type() == "Gemm") &&
          (isFloatInit(in(p, 1)) || (prod(in(p, 1)) && prod(in(p, 1))->op_type() == "Transpose" &&
                                     isFloatInit(in(prod(in(p, 1)), 0))))) {
        if (!found.empty() && found != x)
          return fail(p, std::string("the ") + what + " path of attention reads two projections");
        found = x;
        continue;
      }
      for (const auto &i : p->input()) work.push_back(i);
    }
    if (found.empty()) return fail(qk, std::string("no ") + what + " projection found");
    if (!linear(found, L, what)) return false;
    if (!gpt2) return cone(between(from, L.y), c, what);
    // GPT-2-style: the bias is the Gemm's C or an Add right after the MatMul.
    std::string to = L.y;
    if (L.bias.empty()) {
      auto &cs = cons(L.y);
      if (cs.size() == 1 && cs[0]->op_type() == "Add" && isBias(GraphView::other(*cs[0], L.y))) {
        L.bias = GraphView::other(*cs[0], L.y);
        claimed.insert(cs[0]);
        to = out(cs[0], 0);
      }
    }
    if (L.bias.empty() || dims(L.bias)[0] != L.out)
      return fail(L.mm, std::string("the ") + what + " projection has no bias of its " +
                            std::to_string(L.out) + " outputs (GPT-2-style blocks have one)");
    auto nodes = between(from, to);
    return cone(nodes, c, what) && splitOf(nodes, from, L, what);
  };
  Cone cq, ck, cv;
  if (!projOf(in(qk, 0), q, "query", cq) || !projOf(in(qk, 1), kk, "key", ck) ||
      !projOf(in(pv, 1), vv, "value", cv))
    return false;
  for (Linear *L : {&q, &kk, &vv})
    if ((gpt2 ? backR(skip(L->x)) : skip(L->x)) != skip(n))
      return fail(L->mm, "the q, k and v projections do not read the attention norm's output");
  if (cv.rope) return fail(pv, "the value path has a position-dependent factor");
  if (!cacheInputs.empty() && (!ck.pastConcat || !cv.pastConcat))
    return fail(qk, "a decoder-with-past export whose keys and values are not both appended "
                    "to a past input");
  for (const Cone *c : {&ck, &cv})
    if (c->pastConcat) presentValues.insert(out(c->pastConcat, 0));
  if (cq.tile || ck.tile || cv.tile)
    return fail(qk, "K/V heads repeated with Tile (head h reads kv head h mod kv_heads); "
                    "only the grouped order (h reads h / group: Expand + Reshape, "
                    "repeat_interleave or a broadcasting MatMul) is supported");
  // head_dim: the projections' Reshape, cross-checked with the scale and the RoPE.
  int64_t hd = cq.reshapeLast > 2 ? cq.reshapeLast : 0;
  double total = scale * cq.scale * ck.scale;
  if (!hd && total > 0 && total < 1) hd = std::llround(1.0 / (total * total));
  if (hd < 2 || q.out % hd || kk.out % hd || vv.out != kk.out)
    return fail(qk, "cannot infer head_dim (q: " + std::to_string(q.out) + ", k: " +
                        std::to_string(kk.out) + ", v: " + std::to_string(vv.out) +
                        " outputs, reshape to " + std::to_string(cq.reshapeLast) + ")");
  if (std::fabs(total * std::sqrt((double)hd) - 1.0) > 1e-4)
    return fail(qk, "the attention scale is " + fmt(total) + ", not 1/sqrt(head_dim = " +
                        std::to_string(hd) + ")");
  double theta = 0;
  std::string layout = "none";
  if (gpt2) {
    if (cq.rope || ck.rope)
      return fail(qk, "a rotary embedding in a LayerNorm model: GPT-2-style models have "
                      "learned absolute positions (LayerNorm with RoPE is not supported)");
  } else {
    if (!cq.rope || !ck.rope)
      return fail(qk, "no rotary position embedding on q and k (models without RoPE, e.g. "
                      "learned absolute positions, are not in the decoder-only form)");
    if (!ropeTheta(cq, hd, theta, qk)) return false;
    layout = cq.interleaved || ck.interleaved ? "interleaved" : "rotate-half";
  }
  int64_t H = q.out / hd, KV = kk.out / hd;
  if (H % KV) return fail(qk, "heads (" + std::to_string(H) + ") not a multiple of kv heads (" +
                                  std::to_string(KV) + ")");
  note(qk, "attention scores: " + std::to_string(H) + " heads, " + std::to_string(KV) +
               " kv heads, head_dim " + std::to_string(hd) +
               (gpt2 ? std::string(", no RoPE") : ", RoPE " + layout + " base " + fmt(theta)));
  if (m().headDim == 0) {
    m().heads = H;
    m().kvHeads = KV;
    m().headDim = hd;
    m().ropeTheta = theta;
    m().ropeLayout = layout;
  } else if (H != m().heads || KV != m().kvHeads || hd != m().headDim ||
             std::fabs(theta - m().ropeTheta) > 1e-3 * theta || layout != m().ropeLayout) {
    return fail(qk, "this attention has other heads / head_dim / RoPE than the first one "
                    "recognized (" + std::to_string(m().heads) + " heads, head_dim " +
                    std::to_string(m().headDim) + ")");
  }
  lin.push_back(q);
  lin.push_back(kk);
  lin.push_back(vv);
  return true;
}
} // namespace recognize
} // namespace import
} // namespace photon
