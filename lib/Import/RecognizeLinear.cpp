//===- RecognizeLinear.cpp - linears (MatMul / Gemm, biases, fused QKV) and weight layouts ---===//
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

bool Recognizer::linear(const std::string &yIn, Linear &L, const char *what) {
  std::string y = skip(yIn);
  const Node *p = prod(y);
  if (!p) return fail(nullptr, std::string("expected the ") + what + " projection, found a graph input");
  if (p->op_type() == "Add" && !gpt2) {
    for (int s = 0; s < 2; ++s)
      if (isFloatInit(in(p, s)) && prod(in(p, 1 - s)) &&
          (prod(in(p, 1 - s))->op_type() == "MatMul" || prod(in(p, 1 - s))->op_type() == "Gemm"))
        return fail(p, std::string("the ") + what + " projection has a bias, which the " +
                           "decoder-only form (bias-free LLaMA blocks) does not have");
  }
  std::string w;
  if (p->op_type() == "MatMul") {
    w = in(p, 1);
    L.x = in(p, 0);
    if (isFloatInit(w)) {
      L.transposed = true;
    } else if (const Node *t = prod(w); t && t->op_type() == "Transpose" && isFloatInit(in(t, 0))) {
      auto *perm = attr(t, "perm");
      if (perm && !(perm->ints_size() == 2 && perm->ints(0) == 1 && perm->ints(1) == 0))
        return fail(t, "a weight Transpose that is not [1, 0]");
      claimed.insert(t);
      w = in(t, 0);
    } else {
      return fail(p, std::string("expected the ") + what +
                         " projection: MatMul(x, W) with W an initializer or its Transpose");
    }
  } else if (p->op_type() == "Gemm") {
    if (p->input_size() > 2 && !in(p, 2).empty()) {
      if (!gpt2) return fail(p, std::string("the ") + what + " projection (Gemm) has a bias");
      auto *be = attr(p, "beta");
      if (!isFloatInit(in(p, 2)) || dims(in(p, 2)).size() != 1 || (be && be->f() != 1.0f))
        return fail(p, std::string("the ") + what + " projection (Gemm) adds a C that is not "
                       "a 1-D bias initializer with beta = 1");
      L.bias = in(p, 2);
    }
    auto *ta = attr(p, "transA"), *tb = attr(p, "transB"), *al = attr(p, "alpha");
    if ((ta && ta->i()) || (al && al->f() != 1.0f))
      return fail(p, "a Gemm with transA or alpha != 1");
    w = in(p, 1);
    L.x = in(p, 0);
    if (!isFloatInit(w)) return fail(p, "a Gemm whose weight is not an initializer");
    L.transposed = !(tb && tb->i());
  } else {
    return fail(p, std::string("expected the ") + what + " projection (MatMul or Gemm by a weight)");
  }
  auto d = dims(w);
  if (d.size() != 2) return fail(p, std::string("the ") + what + " weight is not 2-D");
  L.weight = w;
  L.out = L.transposed ? d[1] : d[0];
  L.in = L.transposed ? d[0] : d[1];
  L.y = y;
  L.mm = p;
  claimed.insert(p);
  note(p, std::string(what) + " projection, weight '" + w + "' [" + std::to_string(L.out) +
              " x " + std::to_string(L.in) + "]" + (L.transposed ? " (stored [in, out])" : ""));
  return true;
}

std::string Recognizer::backQ(std::string v) {
  for (int k = 0; k < 8; ++k) {
    const Node *p = prod(v);
    if (!p || (p->op_type() != "Reshape" && p->op_type() != "Cast" && p->op_type() != "Identity"))
      break;
    v = in(p, 0);
  }
  return v;
}

std::string Recognizer::backR(std::string v) {
  for (int k = 0; k < 8; ++k) {
    const Node *p = prod(v);
    if (!p || (p->op_type() != "Reshape" && p->op_type() != "Cast" && p->op_type() != "Identity"))
      break;
    claimed.insert(p);
    v = in(p, 0);
  }
  return v;
}

const Node *Recognizer::linearNode(const std::string &v) {
  const Node *p = prod(backQ(v));
  if (p && p->op_type() == "Add")
    for (int s = 0; s < 2; ++s)
      if (isBias(in(p, s))) {
        p = prod(backQ(in(p, 1 - s)));
        break;
      }
  if (!p || (p->op_type() != "MatMul" && p->op_type() != "Gemm")) return nullptr;
  std::string w = in(p, 1);
  if (isFloatInit(w)) return p;
  const Node *t = prod(w);
  return t && t->op_type() == "Transpose" && isFloatInit(in(t, 0)) ? p : nullptr;
}

bool Recognizer::linearB(const std::string &yIn, Linear &L, const char *what) {
  std::string y = backR(skip(yIn));
  const Node *a = prod(y);
  std::string bias, inner = y;
  if (a && a->op_type() == "Add")
    for (int s = 0; s < 2 && bias.empty(); ++s)
      if (isBias(skip(in(a, s)))) {
        bias = skip(in(a, s));
        inner = backR(skip(in(a, 1 - s)));
        claimed.insert(a);
      }
  if (!linear(inner, L, what)) return false;
  if (!bias.empty()) {
    if (!L.bias.empty()) return fail(a, std::string("the ") + what + " projection has two biases");
    L.bias = bias;
  }
  if (L.bias.empty())
    return fail(L.mm, std::string("the ") + what + " projection has no bias (GPT-2-style "
                      "blocks have a bias on every linear)");
  if (dims(L.bias)[0] != L.out)
    return fail(L.mm, std::string("the ") + what + " bias has " + std::to_string(dims(L.bias)[0]) +
                          " values for " + std::to_string(L.out) + " outputs");
  L.y = y;
  return true;
}

bool Recognizer::splitOf(const std::vector<const Node *> &nodes, const std::string &from, Linear &L,
             const char *what) {
  const Node *sp = nullptr;
  for (const Node *n : nodes)
    if (n->op_type() == "Split") {
      if (sp) return fail(n, std::string("two Splits on the ") + what + " path of attention");
      sp = n;
    }
  if (!sp) return true;
  if (!gpt2) return fail(sp, std::string("a Split on the ") + what + " path of attention");
  auto *ax = attr(sp, "axis");
  if (!ax || (ax->i() != -1 && ax->i() != 2))
    return fail(sp, "a fused projection split along another axis than the last");
  std::set<std::string> used{from};
  for (const Node *n : nodes)
    for (const auto &i : n->input()) used.insert(i);
  int idx = -1;
  for (int j = 0; j < sp->output_size(); ++j)
    if (used.count(sp->output(j))) {
      if (idx >= 0) return fail(sp, std::string("the ") + what + " path reads two parts of a Split");
      idx = j;
    }
  std::vector<int64_t> sizes;
  if (auto *sa = attr(sp, "split")) sizes.assign(sa->ints().begin(), sa->ints().end());
  else if (sp->input_size() > 1 && !in(sp, 1).empty() && !constInts(in(sp, 1), sizes))
    return fail(sp, "a Split whose sizes are not constant");
  if (sizes.empty())
    sizes.assign(sp->output_size(), sp->output_size() ? L.out / sp->output_size() : 0);
  int64_t total = 0, begin = 0;
  for (size_t j = 0; j < sizes.size(); ++j) {
    if ((int)j < idx) begin += sizes[j];
    total += sizes[j];
  }
  if (idx < 0 || total != L.out || (int)sizes.size() != sp->output_size())
    return fail(sp, "a Split of the fused projection whose parts do not add up to its " +
                        std::to_string(L.out) + " outputs");
  L.rowBegin += begin;
  L.out = sizes[idx];
  L.sliced = true;
  note(sp, std::string("fused projection split: ") + what + " = outputs [" +
               std::to_string(L.rowBegin) + ", " + std::to_string(L.rowBegin + L.out) + ")");
  return true;
}

std::string Recognizer::useBias(const Linear &L) {
  if (!L.sliced) return L.bias;
  RecognizedModel &out = m();
  DerivedWeight d;
  d.source = L.bias;
  d.rowBegin = L.rowBegin;
  d.rowCount = L.out;
  d.name = L.bias + ".rows" + std::to_string(L.rowBegin) + "_" + std::to_string(L.out);
  for (auto &e : out.derived)
    if (e.name == d.name) return d.name;
  out.derived.push_back(d);
  return d.name;
}

bool Recognizer::linearBias(const std::string &y, Linear &L, std::string &bias, const char *what) {
  const Node *a = prod(skip(y));
  if (!a || a->op_type() != "Add") return fail(a, std::string("expected the ") + what + " (a linear plus a bias)");
  for (int s2 = 0; s2 < 2; ++s2)
    if (isFloatInit(skip(in(a, s2))) && dims(skip(in(a, s2))).size() == 1) {
      bias = skip(in(a, s2));
      std::string saveWhy = why;
      Linear t;
      // linear() refuses an Add(MatMul, bias) at its own input; call it on the MatMul.
      if (!linear(in(a, 1 - s2), t, what)) return false;
      why = saveWhy;
      L = t;
      claimed.insert(a);
      return true;
    }
  return fail(a, std::string("the ") + what + " has no 1-D bias initializer");
}

std::string Recognizer::useWeight(const Linear &L, bool ropePerm) {
  RecognizedModel &out = m();
  bool perm = ropePerm && out.ropeLayout == "interleaved";
  if (!L.transposed && !perm && !L.sliced) return L.weight;
  DerivedWeight d;
  d.source = L.weight;
  d.transpose = L.transposed;
  d.interleavedHeadDim = perm ? out.headDim : 0;
  d.name = L.weight + (L.transposed ? ".T" : "") + (perm ? ".rope" : "");
  if (L.sliced) {
    d.rowBegin = L.rowBegin;
    d.rowCount = L.out;
    d.name += ".rows" + std::to_string(L.rowBegin) + "_" + std::to_string(L.out);
  }
  for (auto &e : out.derived)
    if (e.name == d.name) return d.name;
  out.derived.push_back(d);
  return d.name;
}
} // namespace recognize
} // namespace import
} // namespace photon
