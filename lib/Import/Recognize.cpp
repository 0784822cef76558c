//===- Recognize.cpp - model structure from an ONNX graph -----------------===//
//
// See Recognize.h. The recognizer walks the residual stream backwards from the logits:
//
//   logits = Linear_head(RMSNorm_final(r_N))
//   r_i    = h_i + Linear_down(SiLU(Linear_gate(n)) * Linear_up(n)),  n = RMSNorm(h_i)
//   h_i    = r_{i-1} + Linear_o(Attention(q, k, v)),  q, k, v = Linear_{q,k,v}(RMSNorm(r_{i-1}))
//   r_0    = Gather(embedding, tokens)
//
// Each piece accepts the spellings torch.onnx and other exporters write (Pow or x*x,
// Sqrt+Div / Reciprocal / Pow(-0.5), MatMul by a pre-transposed initializer or a Transpose,
// Gemm, Mul or Div scales before or after QK^T, additive or Where masks, Expand / Reshape
// GQA or a broadcasting MatMul, rotate-half or interleaved RoPE from tables or computed
// from Range/Cos/Sin). Between a projection and the attention MatMuls the recognizer takes
// the whole token-dependent cone (reshapes, transposes, RoPE arithmetic) and checks that
// it holds only such ops; in the end every token-dependent node of the graph must belong
// to a recognized piece, so an extra op (a bias, a second scale, an activation) makes the
// recognition fail with that node named instead of being silently dropped.
//
//===----------------------------------------------------------------------===//

#include "Recognize.h"
#include "GraphView.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <set>
#include <sstream>

namespace photon {
namespace import {

namespace {

using Node = onnx::NodeProto;

struct Linear {
  std::string x, y, weight; // weight: the initializer ([out, in] unless transposed)
  bool transposed = false;  // the initializer is [in, out]
  int64_t out = 0, in = 0;
  const Node *mm = nullptr;
  std::string bias;         // 1-D initializer (GPT-2-style models), "" without
  int64_t rowBegin = 0;     // a slice of a fused projection: rows [rowBegin, +out)
  bool sliced = false;
};

struct Norm {
  std::string x, y, gain;
  std::string bias; // LayerNorm
  double eps = 0;
};

class Recognizer : public GraphView {
public:
  explicit Recognizer(const onnx::GraphProto &g) : GraphView(g) {}

  std::string why;
  bool gpt2 = false; // the final norm is a LayerNorm: GPT-2-style blocks throughout
  RecognizedModel &m() { return *model; }
  RecognizedModel *model = nullptr;
  std::set<const Node *> claimed;
  std::set<std::string> tokDep; // values that depend on the token ids
  std::set<std::string> cacheInputs; // past key/value inputs of a decoder-with-past export
  std::set<std::string> presentValues; // the caches after the append (present outputs)
  /// Back through Cast / Identity / Transpose / Reshape producers (a cache's layout ops).
  std::string skipLayout(std::string v) {
    for (int k = 0; k < 8; ++k) {
      const Node *p = prod(v);
      if (!p || (p->op_type() != "Cast" && p->op_type() != "Identity" &&
                 p->op_type() != "Transpose" && p->op_type() != "Reshape"))
        break;
      v = in(p, 0);
    }
    return v;
  }

  bool fail(const Node *n, const std::string &msg) {
    if (why.empty()) {
      why = msg;
      if (n) why += " (node '" + n->name() + "', " + n->op_type() + ")";
    }
    return false;
  }
  static std::string nm(const Node *n) { return "'" + n->name() + "' (" + n->op_type() + ")"; }
  void note(const Node *n, const std::string &what) {
    if (n) m().explain.push_back("node " + nm(n) + " -> " + what);
  }

  /// Skips Cast / Identity producers backwards.
  std::string skip(std::string v) {
    for (int k = 0; k < 8; ++k) {
      const Node *p = prod(v);
      if (!p || (p->op_type() != "Cast" && p->op_type() != "Identity")) break;
      claimed.insert(p);
      v = in(p, 0);
    }
    return v;
  }
  const Node *prodOp(const std::string &v, const char *op) {
    const Node *p = prod(skip(v));
    return p && p->op_type() == op ? p : nullptr;
  }
  std::vector<int64_t> dims(const std::string &init) {
    const onnx::TensorProto *t = initializer(init);
    if (!t) return {};
    return std::vector<int64_t>(t->dims().begin(), t->dims().end());
  }
  bool isFloatInit(const std::string &v) {
    const onnx::TensorProto *t = initializer(v);
    return t && t->data_type() == onnx::TensorProto::FLOAT;
  }

  /// y = x W^T (MatMul by an initializer or its Transpose, or Gemm without bias).
  bool linear(const std::string &yIn, Linear &L, const char *what) {
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

  /// y = gain * (x / sqrt(mean(x^2) + eps)), in any of the usual spellings.
  bool rmsNorm(const std::string &yIn, Norm &N, const char *what) {
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

  static std::string fmt(double v) {
    std::ostringstream s;
    s << v;
    return s.str();
  }

  /// The token-dependent nodes on the paths from `from` back to `to` (exclusive).
  std::vector<const Node *> between(const std::string &from, const std::string &to) {
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

  /// Per-cone facts: RoPE layout and frequencies, scale factors, head_dim from a Reshape.
  struct Cone {
    bool rope = false, interleaved = false, tile = false;
    const Node *pastConcat = nullptr; // past cache ++ new keys / values
    double scale = 1;
    int64_t reshapeLast = 0;
    std::vector<const Node *> trig; // Cos / Sin feeding the cone
    std::vector<std::string> tables;
  };

  /// Checks a projection -> attention cone: only layout ops and RoPE arithmetic.
  bool cone(const std::vector<const Node *> &nodes, Cone &c, const char *what) {
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
  std::optional<int64_t> lastInt(const std::string &v) {
    std::vector<int64_t> s;
    std::string u = v;
    if (const Node *p = prod(v); p && p->op_type() == "Unsqueeze") u = in(p, 0);
    if (constInts(u, s) && !s.empty()) return s.back();
    return std::nullopt;
  }
  /// A scalar constant, also computed from constants (Sqrt, Reciprocal, Div, Cast, Mul).
  std::optional<double> scalarValue(const std::string &v, int depth = 0) {
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
  /// The Cos / Sin nodes (or constant tables) a RoPE factor comes from.
  void findTrig(const std::string &v, Cone &c) {
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

  /// RoPE base from Cos/Sin(positions * inv_freq) or from cos/sin tables.
  bool ropeTheta(const Cone &c, int64_t hd, double &theta, const Node *at) {
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

  /// One attention block: a = Linear_o(softmax(q k^T * s + mask) v), q/k/v from `n`.
  bool attention(const std::string &aOut, const std::string &n, int layer) {
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

  //===--------------------------------------------------------------------===//
  // GPT-2-style pieces: LayerNorm, linear with bias, GELU, learned positions
  //===--------------------------------------------------------------------===//

  /// Back through Reshape / Cast / Identity without claiming (a probe).
  std::string backQ(std::string v) {
    for (int k = 0; k < 8; ++k) {
      const Node *p = prod(v);
      if (!p || (p->op_type() != "Reshape" && p->op_type() != "Cast" && p->op_type() != "Identity"))
        break;
      v = in(p, 0);
    }
    return v;
  }
  /// Back through Reshape / Cast / Identity, claiming them (the 2-D view of GPT-2's Conv1D).
  std::string backR(std::string v) {
    for (int k = 0; k < 8; ++k) {
      const Node *p = prod(v);
      if (!p || (p->op_type() != "Reshape" && p->op_type() != "Cast" && p->op_type() != "Identity"))
        break;
      claimed.insert(p);
      v = in(p, 0);
    }
    return v;
  }
  bool isBias(const std::string &v) { return isFloatInit(v) && dims(v).size() == 1; }
  /// The MatMul / Gemm by a weight behind v (through a bias Add and reshapes); a probe.
  const Node *linearNode(const std::string &v) {
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
  /// y = x W^T + b: Add(MatMul(x, W), b), Gemm(x, W, b), either in a 2-D view (Reshape
  /// around it, GPT-2's Conv1D).
  bool linearB(const std::string &yIn, Linear &L, const char *what) {
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

  /// 1/sqrt(denom) applied to a numerator: Div(num, Sqrt(denom)), Mul(num, Reciprocal(Sqrt)),
  /// Mul(num, Div(1, Sqrt)) or Mul(num, Pow(denom, -0.5)). The nodes go to `local`.
  bool rsqrtOf(const Node *n, std::string &num, std::string &denom, std::set<const Node *> &local) {
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
  bool lastAxisMean(const Node *mean) {
    auto *axes = attr(mean, "axes");
    auto *keep = attr(mean, "keepdims");
    std::vector<int64_t> ax;
    if (axes) ax.assign(axes->ints().begin(), axes->ints().end());
    else if (mean->input_size() > 1) constInts(in(mean, 1), ax); // opset 18 form
    return ax.size() == 1 && ax[0] == -1 && !(keep && keep->i() == 0);
  }

  /// y = (x - mean(x)) / sqrt(mean((x - mean(x))^2) + eps) * w + b, decomposed (torch at
  /// opset <= 16) or the LayerNormalization op (opset 17).
  bool layerNorm(const std::string &yIn, Norm &N, const char *what) {
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
  bool layerNormQuiet(const std::string &y, Norm &N) {
    auto saveC = claimed;
    auto saveE = model->explain.size();
    std::string saveWhy = why;
    bool ok = layerNorm(y, N, "probe");
    claimed = saveC;
    model->explain.resize(saveE);
    why = saveWhy;
    return ok;
  }
  /// The norm of the model's kind.
  bool norm(const std::string &y, Norm &N, const char *what) {
    return gpt2 ? layerNorm(y, N, what) : rmsNorm(y, N, what);
  }
  bool normQuiet(const std::string &y, Norm &N) {
    if (!gpt2) return rmsNormQuiet(y, N);
    return layerNormQuiet(y, N);
  }

  /// y = GELU(u), u the output of a linear: the token-dependent cone from y back to u holds
  /// only elementwise arithmetic with scalar constants and one Tanh or Erf; it is evaluated
  /// at sample points and must equal the exact (erf) or the tanh-approximated GELU.
  bool gelu(const std::string &yIn, std::string &u, bool &tanhForm) {
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

  /// Is r the output of a GPT-2-style block (a residual Add whose other side is a linear
  /// with bias reading a GELU, i.e. a Mul)?
  bool isBlockOutputGpt2(const std::string &r) {
    const Node *p = prod(r);
    if (!p || p->op_type() != "Add") return false;
    for (int s = 0; s < 2; ++s)
      if (const Node *mm = linearNode(in(p, s))) {
        const Node *m = prod(backQ(skip(in(mm, 0))));
        if (m && m->op_type() == "Mul") return true;
      }
    return false;
  }

  /// Split of a fused projection on the path from `from`: which output it takes.
  bool splitOf(const std::vector<const Node *> &nodes, const std::string &from, Linear &L,
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

  /// x = Add(Gather(wte, tokens), Gather(wpe, positions)), positions = Range(0, T, 1) of the
  /// tokens' length (through Unsqueeze / Cast / Expand).
  bool learnedPositions(const std::string &x, const Node *&tokGather, std::string &table) {
    const Node *a = prod(skip(x));
    if (!a || a->op_type() != "Add")
      return fail(a, "the residual stream does not start at token embeddings plus learned "
                     "positions (an Add of two Gathers)");
    for (int s = 0; s < 2; ++s) {
      const Node *tg = prod(skip(in(a, s))), *pg = prod(skip(in(a, 1 - s)));
      if (!tg || !pg || tg->op_type() != "Gather" || pg->op_type() != "Gather") continue;
      if (skip(in(tg, 1)) != m().tokensInput || !isFloatInit(in(tg, 0))) continue;
      if (!isFloatInit(in(pg, 0)) || tokDep.count(in(pg, 1))) continue;
      // The positions: a Range(0, n, 1) through layout ops.
      std::string pv = in(pg, 1);
      const Node *rg = nullptr;
      for (int k = 0; k < 8; ++k) {
        const Node *p = prod(pv);
        if (!p) break;
        if (p->op_type() == "Range") {
          rg = p;
          break;
        }
        if (p->op_type() != "Unsqueeze" && p->op_type() != "Cast" && p->op_type() != "Expand" &&
            p->op_type() != "Reshape" && p->op_type() != "Identity" && p->op_type() != "Slice")
          break;
        if (p->op_type() == "Slice") { // a slice of a position buffer: starts at 0
          std::vector<int64_t> st;
          if (!constInts(in(p, 1), st) || st.size() != 1 || st[0] != 0) break;
        }
        pv = in(p, 0);
      }
      auto st = rg ? scalarValue(in(rg, 0)) : std::nullopt;
      auto dl = rg ? scalarValue(in(rg, 2)) : std::nullopt;
      if (!rg || !st || *st != 0 || !dl || *dl != 1)
        return fail(pg, "the position Gather's indices are not Range(0, length, 1) (learned "
                        "absolute positions counted from 0)");
      claimed.insert({a, tg, pg});
      tokGather = tg;
      table = in(pg, 0);
      note(pg, "learned absolute positions '" + table + "' [" + std::to_string(dims(table)[0]) +
                   ", " + std::to_string(dims(table)[1]) + "] at Range(0, T)");
      return true;
    }
    return fail(a, "the residual stream does not start at Gather(embedding, tokens) + "
                   "Gather(position table, Range(0, T))");
  }

  std::vector<Linear> lin; // of the current layer, in recognition order

  struct Layer {
    Norm n1, n2;
    std::vector<Linear> lin; // o, q, k, v, down, gate, up
  };
  int attnCount = 0;

  /// One pre-LayerNorm GPT-2 block whose output is r; xprev is its input:
  /// r = h + proj(GELU(fc(LN_2(h)))), h = xprev + o(Attention(LN_1(xprev))), biases on all.
  bool blockGpt2(const std::string &r, Layer &L, std::string &xprev) {
    const Node *p = prod(r);
    lin.clear();
    int side = -1;
    for (int s = 0; s < 2 && side < 0; ++s)
      if (const Node *mm = linearNode(in(p, s))) {
        const Node *ml = prod(backQ(skip(in(mm, 0))));
        if (ml && ml->op_type() == "Mul") side = s;
      }
    if (side < 0) return fail(p, "a residual Add without an MLP branch (a linear of a GELU)");
    claimed.insert(p);
    std::string h = skip(in(p, 1 - side));
    Linear proj, fc;
    if (!linearB(in(p, side), proj, "MLP output")) return false;
    std::string u;
    bool tanhForm = false;
    if (!gelu(backR(skip(proj.x)), u, tanhForm)) return false;
    std::string gk = tanhForm ? "tanh" : "erf";
    if (m().gelu.empty()) m().gelu = gk;
    else if (m().gelu != gk) return fail(p, "the blocks' GELUs differ (erf and tanh forms)");
    if (!linearB(u, fc, "MLP input")) return false;
    if (!layerNorm(backR(skip(fc.x)), L.n2, "MLP")) return false;
    if (skip(L.n2.x) != h) return fail(p, "the MLP norm does not read the residual stream");
    const Node *pa = prod(h);
    if (!pa || pa->op_type() != "Add") return fail(pa, "expected the attention residual Add");
    claimed.insert(pa);
    int as = -1;
    for (int s = 0; s < 2 && as < 0; ++s)
      if (linearNode(in(pa, s))) as = s;
    if (as < 0) return fail(pa, "an attention residual Add without an output projection");
    xprev = skip(in(pa, 1 - as));
    // n1: the LayerNorm of xprev that the attention reads.
    std::string n1;
    {
      std::vector<std::pair<std::string, int>> work{{xprev, 0}};
      std::set<const Node *> seen;
      while (!work.empty() && n1.empty()) {
        auto [v, d] = work.back();
        work.pop_back();
        for (const Node *c : cons(v)) {
          if (!seen.insert(c).second || c == pa) continue;
          for (const auto &o : c->output()) {
            Norm t;
            if ((c->op_type() == "Add" || c->op_type() == "LayerNormalization") &&
                layerNormQuiet(o, t) && skip(t.x) == xprev)
              n1 = o;
            if (d < 6 && n1.empty()) work.push_back({o, d + 1});
          }
        }
      }
    }
    if (n1.empty()) return fail(pa, "no LayerNorm of the residual stream feeds the attention");
    if (!layerNorm(n1, L.n1, "attention")) return false;
    if (!attention(in(pa, as), n1, attnCount++)) return false;
    L.lin = lin; // o, q, k, v
    L.lin.push_back(proj);
    L.lin.push_back(fc);
    return true;
  }

  /// Is r the output of a transformer block (a residual Add whose other side is a MatMul of
  /// a product, the MLP's down projection)?
  bool isBlockOutput(const std::string &r) {
    const Node *p = prod(r);
    if (!p || p->op_type() != "Add") return false;
    for (int s = 0; s < 2; ++s) {
      const Node *mm = prod(skip(in(p, s)));
      if (!mm || (mm->op_type() != "MatMul" && mm->op_type() != "Gemm")) continue;
      const Node *mul = prod(skip(in(mm, 0)));
      if (!mul || mul->op_type() != "Mul") continue;
      // SwiGLU: one factor is x * Sigmoid(x) (a compressor's norm gain Mul is not).
      for (int t = 0; t < 2; ++t) {
        const Node *si = prod(skip(in(mul, t)));
        if (!si || si->op_type() != "Mul") continue;
        for (int u = 0; u < 2; ++u)
          if (const Node *sg = prod(skip(in(si, u))); sg && sg->op_type() == "Sigmoid") return true;
      }
    }
    return false;
  }

  /// One pre-norm LLaMA block whose output is r; xprev is its input.
  bool block(const std::string &r, Layer &L, std::string &xprev) {
    const Node *p = prod(r);
    lin.clear();
    // MLP residual: r = h + down(silu(gate(n2)) * up(n2)).
    int side = -1;
    for (int s = 0; s < 2 && side < 0; ++s) {
      const Node *mm = prod(skip(in(p, s)));
      if (!mm || (mm->op_type() != "MatMul" && mm->op_type() != "Gemm")) continue;
      const Node *mul = prod(skip(in(mm, 0)));
      if (mul && mul->op_type() == "Mul") side = s;
    }
    if (side < 0) return fail(p, "a residual Add without an MLP branch (MatMul of a product)");
    claimed.insert(p);
    std::string h = skip(in(p, 1 - side));
    Linear down, gate, up;
    if (!linear(in(p, side), down, "MLP down")) return false;
    const Node *mul = prod(skip(down.x));
    claimed.insert(mul);
    // One factor is SiLU(gate) = gate * Sigmoid(gate).
    std::string gv, uv;
    for (int s = 0; s < 2 && gv.empty(); ++s) {
      const Node *si = prod(skip(in(mul, s)));
      if (!si || si->op_type() != "Mul") continue;
      for (int t = 0; t < 2; ++t) {
        const Node *sg = prod(skip(in(si, t)));
        if (sg && sg->op_type() == "Sigmoid" && skip(in(sg, 0)) == skip(in(si, 1 - t))) {
          gv = in(si, 1 - t);
          uv = in(mul, 1 - s);
          claimed.insert({si, sg});
        }
      }
    }
    if (gv.empty())
      return fail(mul, "the MLP is not SwiGLU: expected down(silu(gate(x)) * up(x)) with silu "
                       "as x * Sigmoid(x) (GELU MLPs are not in the decoder-only form)");
    note(mul, "SwiGLU product");
    if (!linear(gv, gate, "MLP gate") || !linear(uv, up, "MLP up")) return false;
    if (skip(gate.x) != skip(up.x)) return fail(up.mm, "the MLP gate and up read different values");
    if (!rmsNorm(gate.x, L.n2, "MLP")) return false;
    if (skip(L.n2.x) != h) return fail(p, "the MLP norm does not read the residual stream");
    // Attention residual: h = x + o(attention(n1)).
    const Node *pa = prod(h);
    if (!pa || pa->op_type() != "Add") return fail(pa, "expected the attention residual Add");
    claimed.insert(pa);
    int as = -1;
    for (int s = 0; s < 2 && as < 0; ++s) {
      const Node *mm = prod(skip(in(pa, s)));
      if (mm && (mm->op_type() == "MatMul" || mm->op_type() == "Gemm") &&
          (isFloatInit(in(mm, 1)) || (prod(in(mm, 1)) && prod(in(mm, 1))->op_type() == "Transpose")))
        as = s;
    }
    if (as < 0) return fail(pa, "an attention residual Add without an output projection");
    xprev = skip(in(pa, 1 - as));
    // n1: the norm the q projection reads; found from the attention.
    // First recognize the norm of xprev that feeds q/k/v.
    // n1: the RMSNorm of xprev that the attention reads (a gain Mul a few steps after it).
    std::string n1;
    {
      std::vector<std::pair<std::string, int>> work{{xprev, 0}};
      std::set<const Node *> seen;
      while (!work.empty() && n1.empty()) {
        auto [v, d] = work.back();
        work.pop_back();
        for (const Node *c : cons(v)) {
          if (!seen.insert(c).second || c == pa) continue;
          for (const auto &o : c->output()) {
            Norm t;
            std::string saveWhy = why;
            if (c->op_type() == "Mul" && rmsNormQuiet(o, t) && skip(t.x) == xprev) n1 = o;
            why = saveWhy;
            if (d < 4 && n1.empty()) work.push_back({o, d + 1});
          }
        }
      }
    }
    if (n1.empty()) return fail(pa, "no RMSNorm of the residual stream feeds the attention");
    if (!rmsNorm(n1, L.n1, "attention")) return false;
    if (!attention(in(pa, as), n1, attnCount++)) return false;
    L.lin = lin;
    L.lin.push_back(down);
    L.lin.push_back(gate);
    L.lin.push_back(up);
    L.lin = lin;
    L.lin.push_back(down);
    L.lin.push_back(gate);
    L.lin.push_back(up);
    return true;
  }

  struct Stack {
    std::string input, output;
    Norm fn;
    std::vector<Layer> layers; // bottom-up
  };
  /// A stack of blocks ending in its final RMSNorm y; its input is the first value that is
  /// not a block output.
  bool stackAt(const std::string &y, Stack &S, const char *what) {
    if (!norm(y, S.fn, what)) return false;
    std::string r = skip(S.fn.x);
    while (gpt2 ? isBlockOutputGpt2(r) : isBlockOutput(r)) {
      Layer L;
      std::string xprev;
      if (!(gpt2 ? blockGpt2(r, L, xprev) : block(r, L, xprev))) return false;
      S.layers.push_back(L);
      r = xprev;
    }
    if (S.layers.empty()) return fail(prod(r), std::string("no transformer block before the ") + what + " norm");
    std::reverse(S.layers.begin(), S.layers.end());
    S.input = r;
    S.output = skip(y);
    return true;
  }

  /// The token input, the caches, token dependence and the logits output.
  bool prepare(RecognizedModel &out) {
    model = &out;
    // Token input: the graph's only non-initializer input, an integer tensor.
    std::vector<const onnx::ValueInfoProto *> ins;
    for (const auto &i : g.input())
      if (!initializer(i.name())) ins.push_back(&i);
    // The token ids: the one integer input. Other inputs may only be float caches of a
    // decoder-with-past export (past_key_values.*: [B, kv_heads, P, head_dim]).
    for (const auto *i : ins) {
      int et = i->type().tensor_type().elem_type();
      if (et == onnx::TensorProto::INT64 || et == onnx::TensorProto::INT32) {
        if (!out.tokensInput.empty())
          return fail(nullptr, "the graph has two integer inputs ('" + out.tokensInput + "', '" +
                                   i->name() + "'); the decoder-only form takes only the token "
                                   "ids (and past key/value caches)");
        out.tokensInput = i->name();
      } else if (et == onnx::TensorProto::FLOAT && i->type().tensor_type().shape().dim_size() == 4) {
        cacheInputs.insert(i->name());
      } else {
        return fail(nullptr, "graph input '" + i->name() + "' is neither the token ids nor a "
                                 "rank-4 float past key/value cache");
      }
    }
    if (out.tokensInput.empty())
      return fail(nullptr, "the graph has no integer token-id input");
    // Token dependence (nodes are in topological order in a valid graph; Shape cuts it).
    tokDep.insert(out.tokensInput);
    for (const auto &n : g.node()) {
      if (n.op_type() == "Shape") continue;
      bool d = false;
      for (const auto &i : n.input()) d |= tokDep.count(i) > 0;
      if (d)
        for (const auto &o : n.output()) tokDep.insert(o);
    }
    // Logits: the graph's only output.
    // Logits: the output named logits, else the only output; the others may only be the
    // present key/value caches of a decoder-with-past export (checked at the end).
    for (const auto &o : g.output())
      if (o.name() == "logits") out.logitsOutput = o.name();
    if (out.logitsOutput.empty()) {
      if (g.output_size() != 1)
        return fail(nullptr, "the graph has " + std::to_string(g.output_size()) +
                                 " outputs and none is named logits");
      out.logitsOutput = g.output(0).name();
    }
    return true;
  }

  bool run(RecognizedModel &out) {
    if (!prepare(out)) return false;
    Linear head;
    if (!linear(out.logitsOutput, head, "LM head")) return false;
    out.width = head.in;
    out.vocab = head.out;
    // A LayerNorm before the head (and not an RMSNorm): GPT-2-style blocks throughout.
    {
      Norm t;
      std::string saveWhy = why;
      gpt2 = !rmsNormQuiet(skip(head.x), t) && layerNormQuiet(skip(head.x), t);
      why = saveWhy;
    }
    if (gpt2) return runGpt2(out, head);
    // Residual stream, from the top.
    Stack st0;
    if (!stackAt(head.x, st0, "final")) return false;
    std::vector<Layer> &layers = st0.layers;
    Norm &fn = st0.fn;
    out.normEps = fn.eps;
    const Node *emb = nullptr;
    if (const Node *p = prod(st0.input); p && p->op_type() == "Gather" &&
        skip(in(p, 1)) == out.tokensInput && isFloatInit(in(p, 0)))
      emb = p;
    if (!emb) return fail(nullptr, "the residual stream does not start at an embedding Gather");
    claimed.insert(emb);
    auto ed = dims(in(emb, 0));
    if (ed.size() != 2 || ed[1] != out.width || ed[0] != out.vocab)
      return fail(emb, "the embedding table is not [vocab, width]");
    note(emb, "token embedding '" + in(emb, 0) + "'");
    if (layers.empty()) return fail(nullptr, "no transformer block found");
    // Other outputs: only the present caches (the past appended with the new keys/values),
    // which the runtime's paged cache replaces.
    for (const auto &o : g.output()) {
      if (o.name() == out.logitsOutput) continue;
      std::string v = o.name();
      if (!presentValues.count(v) && !presentValues.count(skipLayout(v)))
        return fail(prod(v), "graph output '" + v + "' is neither the logits nor a present "
                                 "key/value cache");
      for (std::string x = v; x != skipLayout(x);) { // claim the output's layout ops
        const Node *p = prod(x);
        claimed.insert(p);
        x = in(p, 0);
      }
      out.ignoredOutputs.push_back(v);
    }
    for (const auto &i : cacheInputs) out.ignoredInputs.push_back(i);
    if (!cacheInputs.empty())
      out.explain.push_back("decoder-with-past export: " + std::to_string(cacheInputs.size()) +
                            " past inputs and their present outputs become the runtime's "
                            "paged KV cache");
    if (!allClaimed()) return false;
    // The call sequence, with weights in the raising's layout.
    out.family = "vanilla";
    out.layers = (int64_t)layers.size();
    out.ffn = layers[0].lin[5].out;
    auto use = [&](const Linear &L, bool ropePerm) { return useWeight(L, ropePerm); };
    PlainCall e{"TokenEmbedding", {}, {}, {out.tokensInput, in(emb, 0)}, "", ""};
    PlainCall st;
    st.op = "EncoderStack";
    st.stack = "stack";
    st.intAttrs = {{"n_layers", out.layers}, {"n_heads", out.heads},
                   {"n_kv_heads", out.kvHeads}, {"head_dim", out.headDim}};
    st.floatAttrs = {{"rope_theta", (float)out.ropeTheta}, {"eps", (float)out.normEps}};
    st.inputs = {""};
    for (auto &L : layers) {
      // lin: o, q, k, v, down, gate, up
      if (std::fabs(L.n1.eps - out.normEps) > 1e-6 * out.normEps ||
          std::fabs(L.n2.eps - out.normEps) > 1e-6 * out.normEps)
        return fail(nullptr, "the norms' eps differ between layers");
      for (const std::string &w :
           {L.n1.gain, use(L.lin[1], true), use(L.lin[2], true), use(L.lin[3], false),
            use(L.lin[0], false), L.n2.gain, use(L.lin[5], false), use(L.lin[6], false),
            use(L.lin[4], false)})
        st.inputs.push_back(w);
    }
    st.inputs.push_back(fn.gain);
    PlainCall lm{"LMHead", {}, {}, {"", use(head, false)}, out.logitsOutput, ""};
    out.calls = {e, st, lm};
    return true;
  }


  /// A GPT-2-style decoder-only model (the final norm is a LayerNorm).
  bool runGpt2(RecognizedModel &out, const Linear &head) {
    out.explain.push_back("GPT-2-style: the norm before the LM head is a LayerNorm");
    if (!head.bias.empty()) return fail(head.mm, "the LM head has a bias");
    Stack st0;
    if (!stackAt(head.x, st0, "final")) return false;
    std::vector<Layer> &layers = st0.layers;
    out.normEps = st0.fn.eps;
    const Node *emb = nullptr;
    std::string table;
    if (!learnedPositions(st0.input, emb, table)) return false;
    auto ed = dims(in(emb, 0)), pd = dims(table);
    if (ed.size() != 2 || ed[1] != out.width || ed[0] != out.vocab)
      return fail(emb, "the embedding table is not [vocab, width]");
    if (pd.size() != 2 || pd[1] != out.width || pd[0] < 1)
      return fail(nullptr, "the position table '" + table + "' is not [positions, width]");
    note(emb, "token embedding '" + in(emb, 0) + "'");
    if (layers.empty()) return fail(nullptr, "no transformer block found");
    for (const auto &o : g.output())
      if (o.name() != out.logitsOutput)
        return fail(prod(o.name()), "graph output '" + o.name() + "' is not the logits (a "
                                    "GPT-2-style model with past caches is not supported)");
    if (!cacheInputs.empty())
      return fail(nullptr, "a GPT-2-style decoder-with-past export is not supported");
    if (!allClaimed()) return false;
    out.family = "vanilla";
    out.gpt2 = true;
    out.positionTable = table;
    out.positions = pd[0];
    out.layers = (int64_t)layers.size();
    out.ffn = layers[0].lin[5].out;
    for (auto &L : layers)
      if (std::fabs(L.n1.eps - out.normEps) > 1e-6 * out.normEps ||
          std::fabs(L.n2.eps - out.normEps) > 1e-6 * out.normEps)
        return fail(nullptr, "the norms' eps differ between layers");
    PlainCall e{"TokenEmbedding", {}, {}, {out.tokensInput, in(emb, 0)}, "", ""};
    PlainCall pe{"PositionEmbedding", {}, {}, {"", table}, "", ""};
    PlainCall st;
    st.op = "EncoderStack";
    st.stack = "stack";
    st.intAttrs = {{"n_layers", out.layers}, {"n_heads", out.heads},
                   {"n_kv_heads", out.kvHeads}, {"head_dim", out.headDim},
                   {"layer_norm", 1}, {"gelu_tanh", out.gelu == "tanh" ? 1 : 0}};
    st.floatAttrs = {{"rope_theta", 0.0f}, {"eps", (float)out.normEps}};
    st.inputs = {""};
    for (auto &L : layers) {
      // lin: o, q, k, v, proj, fc
      for (const std::string &w :
           {L.n1.gain, L.n1.bias, useWeight(L.lin[1], false), useBias(L.lin[1]),
            useWeight(L.lin[2], false), useBias(L.lin[2]), useWeight(L.lin[3], false),
            useBias(L.lin[3]), useWeight(L.lin[0], false), useBias(L.lin[0]), L.n2.gain,
            L.n2.bias, useWeight(L.lin[5], false), useBias(L.lin[5]),
            useWeight(L.lin[4], false), useBias(L.lin[4])})
        st.inputs.push_back(w);
    }
    st.inputs.push_back(st0.fn.gain);
    st.inputs.push_back(st0.fn.bias);
    PlainCall lm{"LMHead", {}, {}, {"", useWeight(head, false)}, out.logitsOutput, ""};
    out.calls = {e, pe, st, lm};
    return true;
  }
  /// The bias of a linear in the raising's layout (the slice of a fused projection's).
  std::string useBias(const Linear &L) {
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

  //===--------------------------------------------------------------------===//
  // Hierarchical models (PHOTON, Block Transformer)
  //===--------------------------------------------------------------------===//

  bool hier = false; // got past the token decoder: the graph is hierarchical

  static bool isLayoutOp(const std::string &op) {
    return op == "Reshape" || op == "Transpose" || op == "Squeeze" || op == "Unsqueeze" ||
           op == "Cast" || op == "Identity" || op == "Flatten";
  }
  /// Back through layout ops (and Slices when `slices`), claiming them.
  std::string back(std::string v, bool slices = false, std::vector<const Node *> *sl = nullptr) {
    for (int k = 0; k < 32; ++k) {
      const Node *p = prod(v);
      if (!p || !(isLayoutOp(p->op_type()) || (slices && p->op_type() == "Slice"))) break;
      claimed.insert(p);
      if (sl && p->op_type() == "Slice") sl->push_back(p);
      v = in(p, 0);
    }
    return v;
  }
  /// y = x W^T + b.
  bool linearBias(const std::string &y, Linear &L, std::string &bias, const char *what) {
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
  /// A start latent: a float initializer of D values, through Expand / Reshape / Tile.
  std::string startLatent(std::string v, int64_t D) {
    for (int k = 0; k < 16; ++k) {
      v = skip(v);
      if (isFloatInit(v)) break;
      const Node *p = prod(v);
      if (!p || !(isLayoutOp(p->op_type()) || p->op_type() == "Expand" || p->op_type() == "Tile"))
        return "";
      v = in(p, 0);
    }
    int64_t n = 1;
    for (int64_t d : dims(v)) n *= d;
    return isFloatInit(v) && n == D ? v : "";
  }
  /// prev = Concat(start, Slice(x)[:-1]) (the shift), or x itself (no shift).
  bool shift(const std::string &prev, int64_t D, std::string &start, std::string &x) {
    const Node *c = prod(skip(prev));
    start.clear();
    if (c && c->op_type() == "Concat" && c->input_size() == 2) {
      for (int s2 = 0; s2 < 2; ++s2) {
        std::string st = startLatent(in(c, s2), D);
        if (st.empty()) continue;
        const Node *sl = prod(skip(in(c, 1 - s2)));
        if (!sl || sl->op_type() != "Slice")
          return fail(c, "a shift whose other operand is not a Slice of the stream");
        if (s2 != 0) return fail(c, "a shift that appends the start latent instead of prepending it");
        std::vector<int64_t> ends;
        if (!constInts(in(sl, 2), ends) || ends.size() != 1 || ends[0] != -1)
          return fail(sl, "a shift must drop the stream's last unit (Slice ends = -1)");
        claimed.insert({c, sl});
        start = st;
        x = in(sl, 0);
        return true;
      }
    }
    x = prev;
    return true;
  }

  static std::vector<std::string> stackWeightsOf(const Stack &S, const std::function<std::string(const Linear &, bool)> &use) {
    std::vector<std::string> w;
    for (const Layer &L : S.layers)
      for (const std::string &x :
           {L.n1.gain, use(L.lin[1], true), use(L.lin[2], true), use(L.lin[3], false),
            use(L.lin[0], false), L.n2.gain, use(L.lin[5], false), use(L.lin[6], false),
            use(L.lin[4], false)})
        w.push_back(x);
    w.push_back(S.fn.gain);
    return w;
  }

  bool runPhoton(RecognizedModel &out) {
    if (!prepare(out)) return false;
    Linear head;
    if (!linear(out.logitsOutput, head, "LM head")) return false;
    const int64_t D = head.in;
    out.width = D;
    out.vocab = head.out;
    // Token decoder G1: its windows' outputs, sliced and reshaped, feed the head.
    Stack g1;
    if (!stackAt(back(head.x, true), g1, "token decoder final")) return false;
    out.normEps = g1.fn.eps;
    const Node *win = prod(back(g1.input));
    if (!win || win->op_type() != "Concat" || win->input_size() != 2)
      return fail(win, "the token decoder's windows are not Concat(converter vectors, token embeddings)");
    claimed.insert(win);
    std::string embDec, conv1b;
    Linear conv1;
    int ui = -1;
    for (int s2 = 0; s2 < 2; ++s2) {
      const Node *gth = prod(back(in(win, s2), true));
      if (gth && gth->op_type() == "Gather" && skip(in(gth, 1)) == out.tokensInput &&
          isFloatInit(in(gth, 0))) {
        embDec = in(gth, 0);
        claimed.insert(gth);
        ui = 1 - s2;
      }
    }
    if (ui != 0) return fail(win, "the token decoder's windows are not [converter vectors; embedded tokens]");
    if (!linearBias(back(in(win, 0)), conv1, conv1b, "level-1 converter")) return false;
    hier = true;
    if (conv1.in != D || conv1.out % D) return fail(conv1.mm, "the converter is not D -> R*D");
    const int64_t R = conv1.out / D;
    std::string start1, xhat;
    if (!shift(conv1.x, D, start1, xhat)) return false;
    out.level1Shift = !start1.empty();
    // Latent decoders, top-down from level 2: Xhat(l-1) is the rollout of G_l.
    struct Dec {
      Stack g;
      Linear conv;
      std::string convB, start;
      int64_t chunk = 0;
    };
    std::vector<Dec> decs; // level 2, 3, ... (bottom-up)
    std::string cur = xhat;
    for (int guard = 0; guard < 16; ++guard) {
      std::string v = back(cur);
      if (isFinalNorm(v)) {
        cur = v;
        break;
      }
      // Rollout: Concat(y_1, ..., y_C) with y_j the last unit of application j.
      std::vector<std::string> parts;
      const Node *cat = prod(v);
      if (cat && cat->op_type() == "Concat") {
        claimed.insert(cat);
        for (const auto &i : cat->input()) parts.push_back(i);
      } else {
        parts.push_back(v);
      }
      Dec d;
      d.chunk = (int64_t)parts.size();
      std::vector<std::string> w0, stops;
      std::string u;
      for (size_t j = 0; j < parts.size(); ++j) {
        Stack app;
        std::string y = back(parts[j], true);
        if (!stackAt(y, app, "latent decoder final")) return false;
        stops.push_back(parts[j]);
        auto use = [&](const Linear &L, bool rope) { return useWeight(L, rope); };
        auto w = stackWeightsOf(app, use);
        if (j == 0) {
          w0 = w;
          d.g = app;
          Linear cv;
          std::string cb;
          u = app.input;
          if (!linearBias(back(u), cv, cb, "latent converter")) return false;
          if (cv.in != D || cv.out != R * D)
            return fail(cv.mm, "a latent converter that is not D -> R*D with the token decoder's R");
          d.conv = cv;
          d.convB = cb;
          u = back(u);
        } else {
          if (w != w0)
            return fail(prod(y), "the latent decoder's unrolled steps do not share one stack's weights");
          // The window of step j is the previous window plus the previous step's output.
          if (!claimLayout(app.input, {u}, stops)) return false;
        }
      }
      std::string st, x2;
      if (!shift(d.conv.x, D, st, x2)) return false;
      if (st.empty()) return fail(prod(d.conv.x), "a latent decoder without a start latent (shift)");
      d.start = st;
      decs.push_back(d);
      cur = x2;
    }
    // Encoders, top-down: X(l) = F_l(compress(chunk(X(l-1)))), X(0) = EmbEnc[tokens].
    std::vector<Stack> encs;
    struct Comp {
      Norm n;
      Linear w;
      std::string b;
    };
    std::vector<Comp> comps;
    std::string embEnc;
    for (int guard = 0; guard < 16; ++guard) {
      Stack e;
      if (!stackAt(cur, e, "encoder final")) return false;
      encs.push_back(e);
      std::string a = back(e.input);
      const Node *gth = prod(a);
      if (gth && gth->op_type() == "Gather" && skip(in(gth, 1)) == out.tokensInput &&
          isFloatInit(in(gth, 0))) {
        embEnc = in(gth, 0);
        claimed.insert(gth);
        break;
      }
      Comp c;
      if (!linearBias(a, c.w, c.b, "chunk compressor")) return false;
      if (!rmsNorm(c.w.x, c.n, "chunk compressor")) return false;
      comps.push_back(c);
      cur = back(c.n.x);
    }
    if (embEnc.empty()) return fail(nullptr, "the encoder stacks do not start at an embedding Gather");
    std::reverse(encs.begin(), encs.end());
    std::reverse(comps.begin(), comps.end());
    const int64_t L = (int64_t)encs.size();
    if ((int64_t)decs.size() != L - 1)
      return fail(nullptr, std::to_string(L) + " encoder levels but " +
                               std::to_string(decs.size() + 1) + " decoder levels");
    auto ee = dims(embEnc), ed = dims(embDec);
    if (ee.size() != 2 || ed.size() != 2 || ee[0] != out.vocab || ed[0] != out.vocab ||
        ed[1] != D || ee[1] < 1 || D % ee[1])
      return fail(nullptr, "the embeddings are not [vocab, D / C_1] (encoder) and [vocab, D] (decoder)");
    out.chunkSizes = {D / ee[1]};
    for (const Comp &c : comps) {
      if (c.w.out != D || c.w.in % D) return fail(c.w.mm, "a chunk compressor that is not C*D -> D");
      out.chunkSizes.push_back(c.w.in / D);
    }
    for (size_t l = 0; l < decs.size(); ++l)
      if (decs[l].chunk != out.chunkSizes[l + 1])
        return fail(nullptr, "the level-" + std::to_string(l + 2) + " decoder unrolls " +
                                 std::to_string(decs[l].chunk) + " steps, the encoder chunks " +
                                 std::to_string(out.chunkSizes[l + 1]));
    out.levels = L;
    out.prefix = R;
    out.family = L == 1 ? "block" : "photon";
    // Outputs other than the logits: only recognized stream values (X(l), Xhat(l)).
    std::set<std::string> streams;
    for (const Stack &e : encs) streams.insert(e.output);
    for (const Dec &d : decs) streams.insert(d.g.output);
    streams.insert(xhat);
    for (const auto &o : g.output()) {
      if (o.name() == out.logitsOutput) continue;
      if (!streams.count(skip(o.name())) && !streams.count(back(o.name(), true)))
        return fail(prod(o.name()), "graph output '" + o.name() + "' is neither the logits nor a latent stream");
      out.ignoredOutputs.push_back(o.name());
    }
    if (!allClaimed()) return false;
    // The convention's calls (docs/onnx-convention.md), as the plain-export path builds them.
    auto use = [&](const Linear &Lw, bool rope) { return useWeight(Lw, rope); };
    auto stackCall = [&](const std::string &op, const Stack &S, int64_t level,
                         std::vector<std::string> pre) {
      PlainCall c;
      c.op = op;
      c.stack = op == "EncoderStack" ? "enc" + std::to_string(level) : "dec" + std::to_string(level);
      c.intAttrs = {{"n_layers", (int64_t)S.layers.size()}, {"n_heads", out.heads},
                    {"n_kv_heads", out.kvHeads}, {"head_dim", out.headDim}, {"level", level}};
      c.floatAttrs = {{"rope_theta", (float)out.ropeTheta}, {"eps", (float)out.normEps}};
      c.inputs = {""};
      for (auto &p2 : pre) c.inputs.push_back(p2);
      for (auto &w : stackWeightsOf(S, use)) c.inputs.push_back(w);
      return c;
    };
    auto flat = [&](const std::string &w) {
      if (dims(w).size() == 1) return w;
      DerivedWeight d;
      d.source = w;
      d.name = w + ".flat";
      d.flatten = true;
      for (auto &e : out.derived)
        if (e.name == d.name) return d.name;
      out.derived.push_back(d);
      return d.name;
    };
    auto &C = out.chunkSizes;
    std::vector<PlainCall> calls;
    calls.push_back({"TokenEmbedding", {}, {}, {out.tokensInput, embEnc}, "", ""});
    calls.push_back({"Chunk", {{"size", C[0]}}, {}, {""}, "", ""});
    for (int64_t l = 1; l <= L; ++l) {
      if (l >= 2) {
        const Comp &c = comps[l - 2];
        calls.push_back({"ChunkCompress", {{"size", C[l - 1]}}, {{"eps", (float)c.n.eps}},
                         {"", c.n.gain, use(c.w, false), c.b}, "", ""});
      }
      calls.push_back(stackCall("EncoderStack", encs[l - 1], l, {}));
    }
    for (int64_t l = L; l >= 2; --l) {
      const Dec &d = decs[l - 2];
      calls.push_back({"Shift", {}, {}, {"", flat(d.start)}, "", ""});
      calls.push_back(stackCall("LatentDecoder", d.g, l, {use(d.conv, false), d.convB}));
      calls.back().intAttrs.push_back({"chunk", C[l - 1]});
      calls.back().intAttrs.push_back({"prefix", R});
    }
    if (out.level1Shift) calls.push_back({"Shift", {}, {}, {"", flat(start1)}, "", ""});
    calls.push_back(stackCall("TokenDecoder", g1, 1,
                              {out.tokensInput, embDec, use(conv1, false), conv1b}));
    calls.back().intAttrs.push_back({"chunk", C[0]});
    calls.back().intAttrs.push_back({"prefix", R});
    calls.push_back({"LMHead", {}, {}, {"", use(head, false)}, out.logitsOutput, ""});
    out.calls = calls;
    out.layers = 0;
    out.ffn = -1;
    std::string cs;
    for (size_t i = 0; i < C.size(); ++i) cs += (i ? ", " : "") + std::to_string(C[i]);
    out.explain.insert(out.explain.begin(),
                       "hierarchy: " + std::to_string(L) + " level(s), chunk sizes [" + cs +
                           "], converter length R = " + std::to_string(R) + ", level-1 shift " +
                           (out.level1Shift ? "on" : "off"));
    return true;
  }
  bool isFinalNorm(const std::string &v) {
    Norm t;
    std::string saveWhy = why;
    bool ok = rmsNormQuiet(v, t) && isBlockOutput(skip(t.x));
    why = saveWhy;
    return ok;
  }
  /// Claims the layout ops between v and the values in `stops` (the token-dependent cone).
  bool claimLayout(const std::string &v, const std::vector<std::string> &stopsA,
                   const std::vector<std::string> &stopsB) {
    std::set<std::string> stop(stopsA.begin(), stopsA.end());
    stop.insert(stopsB.begin(), stopsB.end());
    std::vector<std::string> work{v};
    std::set<std::string> seen;
    while (!work.empty()) {
      std::string x = work.back();
      work.pop_back();
      if (stop.count(x) || !tokDep.count(x) || !seen.insert(x).second) continue;
      const Node *p = prod(x);
      if (!p) continue;
      if (!isLayoutOp(p->op_type()) && p->op_type() != "Concat" && p->op_type() != "Slice")
        return fail(p, "an op other than reshapes, slices and concatenation in a latent decoder's window");
      claimed.insert(p);
      for (const auto &i : p->input()) work.push_back(i);
    }
    return true;
  }
  bool allClaimed() {
  // Every token-dependent node must be part of what was recognized.
  // (Nodes whose values reach no graph output, or only a Shape, do not count.)
  std::set<const Node *> live;
  {
    std::vector<std::string> work;
    for (const auto &o : g.output()) work.push_back(o.name());
    while (!work.empty()) {
      const Node *p = prod(work.back());
      work.pop_back();
      if (!p || !live.insert(p).second) continue;
      if (p->op_type() == "Shape") continue; // reads only the shape of its input
      for (const auto &i : p->input()) work.push_back(i);
    }
  }
  std::vector<std::string> extra;
  for (const auto &n : g.node()) {
    bool dep = false;
    for (const auto &o : n.output()) dep |= tokDep.count(o) > 0;
    if (dep && live.count(&n) && !claimed.count(&n)) extra.push_back(nm(&n));
  }
  if (!extra.empty()) {
    std::string list;
    for (size_t i = 0; i < extra.size() && i < 6; ++i) list += (i ? ", " : "") + extra[i];
    if (extra.size() > 6) list += ", ... (" + std::to_string(extra.size()) + " in all)";
    return fail(nullptr, "nodes outside the recognized pieces (blocks, embeddings, converters, shifts) compute on the "
                         "tokens: " + list);
  }
    return true;
  }
  /// The name of a linear's weight in the raising's layout ([out, in]; rotate-half rows).
  std::string useWeight(const Linear &L, bool ropePerm) {
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
  /// rmsNorm without recording claims or notes (a probe).
  bool rmsNormQuiet(const std::string &y, Norm &N) {
    auto saveC = claimed;
    auto saveE = model->explain.size();
    bool ok = rmsNorm(y, N, "probe");
    claimed = saveC;
    model->explain.resize(saveE);
    return ok;
  }
};

} // namespace

bool recognizeDecoderOnly(const onnx::GraphProto &g, RecognizedModel &out, std::string &why) {
  for (const auto &n : g.node())
    if (!n.domain().empty() && n.domain() != "ai.onnx") {
      why = "node '" + n.name() + "' calls " + n.domain() + "." + n.op_type() +
            " (a local function): structure recognition reads plain graphs";
      return false;
    }
  {
    Recognizer r(g);
    if (r.run(out)) return true;
    why = r.why.empty() ? "not recognized" : r.why;
  }
  // Not decoder-only: a hierarchical model? Its reason wins once it got past the token
  // decoder (the graph is hierarchical), the decoder-only one otherwise.
  RecognizedModel h;
  Recognizer r(g);
  if (r.runPhoton(h)) {
    out = std::move(h);
    return true;
  }
  if (r.hier) why = r.why.empty() ? "not recognized" : r.why;
  else if (!r.why.empty() && r.why != why)
    why = "as a decoder-only model: " + why + "; as a hierarchical model: " + r.why;
  return false;
}

} // namespace import
} // namespace photon

