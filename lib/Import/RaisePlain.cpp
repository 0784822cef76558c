//===- RaisePlain.cpp - hierarchy of a plain export from photon.config ----===//
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
//
//===----------------------------------------------------------------------===//

#include "InlineFunctions.h"
#include "RaiseImpl.h"

namespace photon {
namespace import {
namespace raise {

namespace {

class PlainChecker : public GraphView {
public:
  PlainChecker(const onnx::GraphProto &g, const onnx::GraphProto &weights, Location loc,
               StringRef path, double eps)
      : GraphView(g, weights), loc(loc), path(path), eps(eps) {}

  Location loc;
  std::string path;
  double eps;
  /// "plain export", or "function export" when the bodies of a function export are checked.
  std::string kind = "plain export";

  LogicalResult fail(const onnx::NodeProto *n, StringRef weight, StringRef pattern,
                     const Twine &what) {
    auto d = emitError(loc) << kind << " '" << path << "': ";
    if (n) d << "node '" << n->name() << "' (" << n->op_type() << ") ";
    d << "breaks the " << pattern << " pattern around weight '" << weight << "': " << what;
    if (kind == "plain export")
      d << "; the graph does not compute what its photon.config and initializer names describe "
           "(export with functions, docs/onnx-convention.md, or import with --emit=upstream)";
    else
      d << "; the function body does not compute what the photon op of its call means "
           "(docs/onnx-convention.md), so it is not compiled as that op (import with "
           "--emit=upstream to compile the graph as written)";
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
        // A half-precision export holds eps rounded to f16 / bf16 (1e-5 is subnormal in f16).
        namespace W = ::photon::weights;
        float epsF = static_cast<float>(eps);
        auto isEps = [&](double x) {
          return std::fabs(x - eps) <= 1e-3 * eps ||
                 x == W::f16ToF32(W::f32ToF16(epsF)) || x == W::bf16ToF32(W::f32ToBF16(epsF));
        };
        if (!e || !isEps(*e))
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
      const double rel = kConstantTolerance;
      for (int64_t i = 0; i < half; ++i) {
        double want = std::pow(theta, -2.0 * i / (double)headDim);
        if (std::fabs(f[i] - want) > rel * want + 1e-12)
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

  /// The relative tolerance of the constants checked against the config (rotary frequencies
  /// and tables, the score scale): the rounding of bf16, 2^-8, so that a half export, and an
  /// f32 export of values a half export rounded (make_half.py --round-only), passes.
  static constexpr double kConstantTolerance = 1.0 / 256;

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
      const double rel = kConstantTolerance;
      bool isCos = true, isSin = true;
      for (int64_t pos = 0; pos < L; ++pos)
        for (int64_t i = 0; i < half; ++i) {
          double a = pos * std::pow(theta, -2.0 * i / (double)headDim);
          float v = t[pos * half + i];
          if (std::fabs(v - std::cos(a)) > rel) isCos = false;
          if (std::fabs(v - std::sin(a)) > rel) isSin = false;
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
      if (std::fabs(*f - want) > kConstantTolerance * want)
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
            if (j <= i ? v != 0.f : !(v <= -1e4f)) // -inf, or finite <= -1e4 (see below)
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
      // -inf, or a finite fill of at most -1e4 (a half export's -65504, BERT's -10000):
      // softmax gives the masked keys exp(-1e4) = 0 in f32 just as for -inf.
      auto ninf = scalar(in(wh, 1));
      if (!ninf || !(*ninf <= -1e4))
        return fail(wh, w, A, "the masked value must be -inf (or at most -1e4)"), failure();
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

  bool isInit(const std::string &v) const { return initializer(v) != nullptr; }

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
  // The function export: its calls are raised from their signatures (raise()), and what
  // each body computes is checked after them (checkFunctionBodies, from finalize), on the
  // graph with the bodies expanded, by the same patterns as a plain export, so a body that
  // is not what its photon op means is refused with its node named instead of being
  // compiled as the op.
  bool functionExport = false;
  for (const auto &f : mp.functions())
    if (f.domain() == "photon") functionExport = true;
  if (!functionExport)
    for (const auto &n : mp.graph().node())
      if (!isDefaultDomain(n.domain())) return success(); // not a plain export
  std::string path = gi.model().path();
  Location floc = FileLineColLoc::get(&gi.context(), path, 0, 0);
  const char *kind = functionExport ? "function export" : "plain export";
  auto bad = [&](const Twine &msg) {
    emitError(floc) << kind << " '" << path << "': cannot recover the PHOTON hierarchy: " << msg;
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
    if (t.data_type() == onnx::TensorProto::FLOAT || t.data_type() == onnx::TensorProto::FLOAT16 ||
        t.data_type() == onnx::TensorProto::BFLOAT16) // half exports: widened at import
      inits.insert(t.name());
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

  if (functionExport) {
    // Checked after the calls' signatures (finalize), whose diagnostics come first.
    bodyCalls = std::move(calls);
    return success();
  }
  if (failed(checkBodies(calls, mp.graph()))) return failure();
  emitCalls(calls);
  return success();
}

LogicalResult Raiser::checkFunctionBodies() {
  if (bodyCalls.empty()) return success();
  std::string err;
  if (!inlineLocalFunctions(gi.model(), inlined, err))
    return emitError(FileLineColLoc::get(&gi.context(), gi.model().path(), 0, 0))
           << "function export '" << gi.model().path()
           << "': cannot expand its function bodies: " << err,
           failure();
  return checkBodies(bodyCalls, inlined);
}

LogicalResult Raiser::checkBodies(const std::vector<PlainCall> &calls, const onnx::GraphProto &g) {
  const onnx::ModelProto &mp = gi.model().proto();
  std::string path = gi.model().path();
  Location floc = FileLineColLoc::get(&gi.context(), path, 0, 0);
  const bool functionExport = &g != &mp.graph();
  const char *kind = functionExport ? "function export" : "plain export";
  auto bad = [&](const Twine &msg) {
    emitError(floc) << kind << " '" << path << "': cannot recover the PHOTON hierarchy: " << msg;
    return failure();
  };
  auto layersOf = [&](const std::string &s) -> int64_t {
    auto it = cfg.layers.find(s);
    return it == cfg.layers.end() ? -1 : it->second;
  };
  // The computation around every weight.
  PlainChecker pc(g, mp.graph(), floc, path, cfg.normEps);
  pc.kind = kind;
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

  return success();
}

} // namespace raise
} // namespace import
} // namespace photon
