//===- RecognizeHierarchy.cpp - PHOTON / Block Transformer hierarchy (shifts, converters) ---===//
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

std::string Recognizer::back(std::string v, bool slices, std::vector<const Node *> *sl) {
  for (int k = 0; k < 32; ++k) {
    const Node *p = prod(v);
    if (!p || !(isLayoutOp(p->op_type()) || (slices && p->op_type() == "Slice"))) break;
    claimed.insert(p);
    if (sl && p->op_type() == "Slice") sl->push_back(p);
    v = in(p, 0);
  }
  return v;
}

std::string Recognizer::startLatent(std::string v, int64_t D) {
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

bool Recognizer::shift(const std::string &prev, int64_t D, std::string &start, std::string &x) {
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

std::vector<std::string> Recognizer::stackWeightsOf(const Stack &S, const std::function<std::string(const Linear &, bool)> &use) {
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

bool Recognizer::runPhoton(RecognizedModel &out) {
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
  // One eps for every norm of every stack (the stack op carries one): a norm with another
  // epsilon is named rather than compiled with the token decoder's.
  auto sameEps = [&](const Norm &n, const char *what) {
    if (std::fabs(n.eps - out.normEps) <= 1e-6 * out.normEps) return true;
    return fail(prod(n.y), std::string("the ") + what + " has eps " + fmt(n.eps) +
                               ", the token decoder's final RMSNorm " + fmt(out.normEps) +
                               " (every norm of the stacks must agree)");
  };
  std::vector<const Stack *> all;
  for (auto &e : encs) all.push_back(&e);
  for (auto &d : decs) all.push_back(&d.g);
  all.push_back(&g1);
  for (const Stack *S : all) {
    if (!sameEps(S->fn, "final RMSNorm of a stack")) return false;
    for (const Layer &Ly : S->layers)
      if (!sameEps(Ly.n1, "attention RMSNorm") || !sameEps(Ly.n2, "MLP RMSNorm")) return false;
  }
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

bool Recognizer::isFinalNorm(const std::string &v) {
  Norm t;
  std::string saveWhy = why;
  bool ok = rmsNormQuiet(v, t) && isBlockOutput(skip(t.x));
  why = saveWhy;
  return ok;
}

bool Recognizer::claimLayout(const std::string &v, const std::vector<std::string> &stopsA,
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
} // namespace recognize
} // namespace import
} // namespace photon
