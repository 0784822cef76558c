//===- RecognizeNorms.cpp - RMSNorm, LayerNorm and GELU in their exporters' spellings ---===//
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

bool Recognizer::rmsNorm(const std::string &yIn, Norm &N, const char *what) {
  std::string y = skip(yIn);
  const Node *g = prod(y);
  if (!g || g->op_type() != "Mul") return fail(g, std::string("expected the ") + what + " RMSNorm (gain Mul)");
  std::string nv, gain;
  for (int s = 0; s < 2; ++s) {
    std::string c = skip(in(g, s));
    if (isFloatInit(c) && dims(c).size() == 1) {
      gain = c;
      nv = in(g, 1 - s);
    }
  }
  if (gain.empty()) return fail(g, std::string("the ") + what + " RMSNorm has no 1-D gain initializer");
  std::set<const Node *> local{g};
  nv = skip(nv);
  const Node *n = prod(nv);
  std::string x, denom; // x / sqrt(denom) or x * rsqrt(denom)
  if (n && n->op_type() == "Div") {
    const Node *sq = prodOp(in(n, 1), "Sqrt");
    if (!sq) return fail(n, std::string("the ") + what + " RMSNorm divides by something else than Sqrt");
    x = in(n, 0);
    denom = in(sq, 0);
    local.insert({n, sq});
  } else if (n && n->op_type() == "Mul") {
    for (int s = 0; s < 2 && denom.empty(); ++s) {
      const Node *r = prod(skip(in(n, s)));
      if (!r) continue;
      if (r->op_type() == "Reciprocal") {
        if (const Node *sq = prodOp(in(r, 0), "Sqrt")) {
          denom = in(sq, 0);
          local.insert({r, sq});
        }
      } else if (r->op_type() == "Div") {
        auto one = scalar(in(r, 0));
        const Node *sq = prodOp(in(r, 1), "Sqrt");
        if (one && *one == 1.0 && sq) {
          denom = in(sq, 0);
          local.insert({r, sq});
        }
      } else if (r->op_type() == "Pow") {
        auto e = scalar(in(r, 1));
        if (e && std::fabs(*e + 0.5) < 1e-7) {
          denom = in(r, 0);
          local.insert(r);
        }
      }
      if (!denom.empty()) x = in(n, 1 - s);
    }
    local.insert(n);
  }
  if (denom.empty())
    return fail(n ? n : g, std::string("the ") + what +
                               " norm is not x / sqrt(...), x * Reciprocal(Sqrt(...)) or x * Pow(..., -0.5)");
  const Node *add = prodOp(denom, "Add");
  if (!add) return fail(prod(denom), std::string("the ") + what + " RMSNorm has no + eps");
  const Node *mean = nullptr;
  std::optional<double> eps;
  for (int s = 0; s < 2; ++s)
    if (const Node *r = prodOp(in(add, s), "ReduceMean")) {
      mean = r;
      eps = scalar(skip(in(add, 1 - s)));
    }
  if (!mean || !eps || *eps <= 0)
    return fail(add, std::string("the ") + what + " RMSNorm is not ReduceMean(x^2) + eps (a positive constant)");
  auto *axes = attr(mean, "axes");
  auto *keep = attr(mean, "keepdims");
  if (!axes || axes->ints_size() != 1 || axes->ints(0) != -1 || (keep && keep->i() == 0))
    return fail(mean, std::string("the ") + what + " RMSNorm must reduce the last axis (axes = [-1], keepdims)");
  const Node *sq = prod(skip(in(mean, 0)));
  x = skip(x);
  bool okSq = false;
  if (sq && sq->op_type() == "Pow") {
    auto e = scalar(in(sq, 1));
    okSq = e && *e == 2.0 && skip(in(sq, 0)) == x;
  } else if (sq && sq->op_type() == "Mul") {
    okSq = skip(in(sq, 0)) == x && skip(in(sq, 1)) == x;
  }
  if (!okSq)
    return fail(sq ? sq : mean, std::string("the ") + what +
                                    " RMSNorm's mean is not of the normalized x squared "
                                    "(a LayerNorm with mean-centring is not an RMSNorm)");
  // x - ReduceMean(x): a LayerNorm's centring (without its bias), not an RMSNorm.
  if (const Node *c = prod(x); c && c->op_type() == "Sub")
    if (const Node *cm = prodOp(in(c, 1), "ReduceMean"); cm && skip(in(cm, 0)) == skip(in(c, 0)))
      return fail(c, std::string("the ") + what + " norm subtracts the mean of its input "
                                                  "(a norm with mean-centring is not an RMSNorm)");
  local.insert({add, mean, sq});
  claimed.insert(local.begin(), local.end());
  N.x = x;
  N.y = y;
  N.gain = gain;
  N.eps = *eps;
  note(g, std::string(what) + " RMSNorm, gain '" + gain + "', eps " + fmt(*eps));
  return true;
}

bool Recognizer::rsqrtOf(const Node *n, std::string &num, std::string &denom, std::set<const Node *> &local) {
  if (n && n->op_type() == "Div") {
    const Node *sq = prodOp(in(n, 1), "Sqrt");
    if (!sq) return false;
    num = in(n, 0);
    denom = in(sq, 0);
    local.insert({n, sq});
    return true;
  }
  if (!n || n->op_type() != "Mul") return false;
  for (int s = 0; s < 2 && denom.empty(); ++s) {
    const Node *r = prod(skip(in(n, s)));
    if (!r) continue;
    if (r->op_type() == "Reciprocal") {
      if (const Node *sq = prodOp(in(r, 0), "Sqrt")) {
        denom = in(sq, 0);
        local.insert({r, sq});
      }
    } else if (r->op_type() == "Div") {
      auto one = scalar(in(r, 0));
      const Node *sq = prodOp(in(r, 1), "Sqrt");
      if (one && *one == 1.0 && sq) {
        denom = in(sq, 0);
        local.insert({r, sq});
      }
    } else if (r->op_type() == "Pow") {
      auto e = scalar(in(r, 1));
      if (e && std::fabs(*e + 0.5) < 1e-7) {
        denom = in(r, 0);
        local.insert(r);
      }
    }
    if (!denom.empty()) num = in(n, 1 - s);
  }
  if (!denom.empty()) local.insert(n);
  return !denom.empty();
}

bool Recognizer::lastAxisMean(const Node *mean) {
  auto *axes = attr(mean, "axes");
  auto *keep = attr(mean, "keepdims");
  std::vector<int64_t> ax;
  if (axes) ax.assign(axes->ints().begin(), axes->ints().end());
  else if (mean->input_size() > 1) constInts(in(mean, 1), ax); // opset 18 form
  return ax.size() == 1 && ax[0] == -1 && !(keep && keep->i() == 0);
}

bool Recognizer::layerNorm(const std::string &yIn, Norm &N, const char *what) {
  std::string y = skip(yIn);
  const Node *p = prod(y);
  std::string W = std::string("the ") + what + " LayerNorm";
  if (p && p->op_type() == "LayerNormalization") {
    auto *ax = attr(p, "axis");
    auto *ep = attr(p, "epsilon");
    if (ax && ax->i() != -1) return fail(p, W + " must normalize the last axis (axis = -1)");
    if (p->input_size() < 3 || !isBias(in(p, 1)) || !isBias(in(p, 2)))
      return fail(p, W + " has no 1-D scale and bias initializers");
    claimed.insert(p);
    N = Norm{in(p, 0), y, in(p, 1), in(p, 2), ep ? ep->f() : 1e-5};
    note(p, std::string(what) + " LayerNorm (op), gain '" + N.gain + "', bias '" + N.bias +
                "', eps " + fmt(N.eps));
    return true;
  }
  // bias Add, gain Mul
  if (!p || p->op_type() != "Add") return fail(p, "expected " + W + " (a bias Add)");
  std::string bias, gv;
  for (int s = 0; s < 2; ++s)
    if (isBias(skip(in(p, s)))) {
      bias = skip(in(p, s));
      gv = skip(in(p, 1 - s));
    }
  if (bias.empty()) return fail(p, W + " has no 1-D bias initializer");
  const Node *g = prod(gv);
  if (!g || g->op_type() != "Mul") return fail(g ? g : p, W + " has no gain Mul");
  std::string nv, gain;
  for (int s = 0; s < 2; ++s)
    if (isBias(skip(in(g, s)))) {
      gain = skip(in(g, s));
      nv = in(g, 1 - s);
    }
  if (gain.empty()) return fail(g, W + " has no 1-D gain initializer");
  std::set<const Node *> local{p, g};
  std::string num, denom;
  if (!rsqrtOf(prod(skip(nv)), num, denom, local))
    return fail(prod(skip(nv)), W + " is not d / sqrt(...), d * Reciprocal(Sqrt(...)) or "
                                    "d * Pow(..., -0.5)");
  const Node *add = prodOp(denom, "Add");
  if (!add) return fail(prod(denom), W + " has no + eps");
  const Node *var = nullptr;
  std::optional<double> eps;
  for (int s = 0; s < 2; ++s)
    if (const Node *r = prodOp(in(add, s), "ReduceMean")) {
      var = r;
      eps = scalar(skip(in(add, 1 - s)));
    }
  if (!var || !eps || *eps <= 0)
    return fail(add, W + " is not ReduceMean(d^2) + eps (a positive constant)");
  if (!lastAxisMean(var)) return fail(var, W + " must reduce the last axis (axes = [-1], keepdims)");
  // d = x - mean(x): the numerator and the base of the square.
  std::string d = skip(num);
  const Node *sub = prod(d);
  if (!sub || sub->op_type() != "Sub")
    return fail(prod(skip(nv)), W + ": the normalized value is not mean-centred (x - "
                               "ReduceMean(x)); an RMSNorm is not a LayerNorm");
  const Node *mean = prodOp(in(sub, 1), "ReduceMean");
  std::string x = skip(in(sub, 0));
  if (!mean || skip(in(mean, 0)) != x || !lastAxisMean(mean))
    return fail(sub, W + ": the centring does not subtract ReduceMean(x, axes = [-1]) of "
                         "the same x");
  const Node *sq = prod(skip(in(var, 0)));
  bool okSq = false;
  if (sq && sq->op_type() == "Pow") {
    auto e = scalar(in(sq, 1));
    okSq = e && *e == 2.0 && skip(in(sq, 0)) == d;
  } else if (sq && sq->op_type() == "Mul") {
    okSq = skip(in(sq, 0)) == d && skip(in(sq, 1)) == d;
  }
  if (!okSq)
    return fail(sq ? sq : var, W + "'s variance is not the mean of the centred x squared");
  local.insert({add, var, sub, mean, sq});
  claimed.insert(local.begin(), local.end());
  N = Norm{x, y, gain, bias, *eps};
  note(p, std::string(what) + " LayerNorm, gain '" + gain + "', bias '" + bias + "', eps " +
              fmt(*eps));
  return true;
}

bool Recognizer::layerNormQuiet(const std::string &y, Norm &N) {
  auto saveC = claimed;
  auto saveE = model->explain.size();
  std::string saveWhy = why;
  bool ok = layerNorm(y, N, "probe");
  claimed = saveC;
  model->explain.resize(saveE);
  why = saveWhy;
  return ok;
}

bool Recognizer::norm(const std::string &y, Norm &N, const char *what) {
  return gpt2 ? layerNorm(y, N, what) : rmsNorm(y, N, what);
}

bool Recognizer::normQuiet(const std::string &y, Norm &N) {
  if (!gpt2) return rmsNormQuiet(y, N);
  return layerNormQuiet(y, N);
}

bool Recognizer::gelu(const std::string &yIn, std::string &u, bool &tanhForm) {
  static const std::set<std::string> ok = {"Mul", "Add", "Sub", "Div", "Pow", "Tanh",
                                           "Erf", "Sqrt", "Cast", "Identity", "Neg"};
  std::string y = skip(yIn);
  std::set<const Node *> cone;
  std::set<std::string> leaves;
  std::vector<std::string> work{y};
  std::set<std::string> seen;
  int special = 0;
  while (!work.empty()) {
    std::string x = work.back();
    work.pop_back();
    if (!seen.insert(x).second || !tokDep.count(x)) continue;
    const Node *p = prod(x);
    if (!p || linearNode(x)) {
      leaves.insert(x);
      continue;
    }
    if (!ok.count(p->op_type()))
      return fail(p, "an op the MLP activation (GELU) does not have");
    if (p->op_type() == "Tanh" || p->op_type() == "Erf") ++special;
    cone.insert(p);
    if (cone.size() > 32) return fail(p, "the MLP activation is not a GELU (too many ops)");
    for (const auto &i : p->input()) work.push_back(i);
  }
  const Node *top = prod(y);
  if (leaves.size() != 1)
    return fail(top, "the MLP activation reads " + std::to_string(leaves.size()) +
                         " token-dependent values; a GELU reads only its linear's output");
  if (special != 1)
    return fail(top, "the MLP activation is not a GELU (expected one Tanh or Erf; SwiGLU "
                     "and other activations are not GPT-2-style)");
  u = *leaves.begin();
  // Evaluate the cone as a function of u.
  std::map<std::string, double> memo;
  bool bad = false;
  std::function<double(const std::string &)> ev = [&](const std::string &v) -> double {
    if (bad) return 0;
    if (v == u) return memo[u];
    if (!tokDep.count(v)) {
      auto c = scalarValue(v);
      if (!c) bad = true;
      return c ? *c : 0;
    }
    auto it = memo.find(v);
    if (it != memo.end()) return it->second;
    const Node *p = prod(v);
    const std::string &op = p->op_type();
    double a = ev(in(p, 0)), r = 0;
    double b2 = p->input_size() > 1 ? ev(in(p, 1)) : 0;
    if (op == "Mul") r = a * b2;
    else if (op == "Add") r = a + b2;
    else if (op == "Sub") r = a - b2;
    else if (op == "Div") r = a / b2;
    else if (op == "Pow") r = std::pow(a, b2);
    else if (op == "Tanh") r = std::tanh(a);
    else if (op == "Erf") r = std::erf(a);
    else if (op == "Sqrt") r = std::sqrt(a);
    else if (op == "Neg") r = -a;
    else r = a; // Cast, Identity
    memo[v] = r;
    return r;
  };
  bool isErf = true, isTanh = true;
  for (double xv : {-3.0, -1.5, -0.5, 0.25, 1.0, 2.5}) {
    memo.clear();
    memo[u] = xv;
    double got = ev(y);
    double e = 0.5 * xv * (1 + std::erf(xv / std::sqrt(2.0)));
    double t = 0.5 * xv * (1 + std::tanh(std::sqrt(2.0 / M_PI) * (xv + 0.044715 * xv * xv * xv)));
    isErf &= std::fabs(got - e) <= 1e-6 * (1 + std::fabs(e));
    isTanh &= std::fabs(got - t) <= 1e-6 * (1 + std::fabs(t));
  }
  if (bad) return fail(top, "the MLP activation uses a non-scalar constant");
  if (!isErf && !isTanh)
    return fail(top, "the MLP activation has a Tanh or an Erf but does not compute a GELU "
                     "(0.5 x (1 + erf(x / sqrt 2)) or 0.5 x (1 + tanh(sqrt(2/pi) (x + "
                     "0.044715 x^3))), checked at sample points)");
  tanhForm = isTanh;
  claimed.insert(cone.begin(), cone.end());
  note(top, std::string("GELU (") + (isTanh ? "tanh approximation" : "erf") + ")");
  return true;
}

bool Recognizer::rmsNormQuiet(const std::string &y, Norm &N) {
  auto saveC = claimed;
  auto saveE = model->explain.size();
  bool ok = rmsNorm(y, N, "probe");
  claimed = saveC;
  model->explain.resize(saveE);
  return ok;
}
} // namespace recognize
} // namespace import
} // namespace photon
