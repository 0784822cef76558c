//===- RecognizeBlocks.cpp - transformer blocks and stacks; decoder-only models ---===//
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

bool Recognizer::isBlockOutputGpt2(const std::string &r) {
  const Node *p = prod(r);
  if (!p || p->op_type() != "Add") return false;
  for (int s = 0; s < 2; ++s)
    if (const Node *mm = linearNode(in(p, s))) {
      const Node *m = prod(backQ(skip(in(mm, 0))));
      if (m && m->op_type() == "Mul") return true;
    }
  return false;
}

bool Recognizer::learnedPositions(const std::string &x, const Node *&tokGather, std::string &table) {
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

bool Recognizer::blockGpt2(const std::string &r, Layer &L, std::string &xprev) {
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

bool Recognizer::isBlockOutput(const std::string &r) {
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

bool Recognizer::block(const std::string &r, Layer &L, std::string &xprev) {
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

bool Recognizer::stackAt(const std::string &y, Stack &S, const char *what) {
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

bool Recognizer::prepare(RecognizedModel &out) {
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
    } else if ((et == onnx::TensorProto::FLOAT || et == onnx::TensorProto::FLOAT16 ||
                et == onnx::TensorProto::BFLOAT16) &&
               i->type().tensor_type().shape().dim_size() == 4) {
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

bool Recognizer::run(RecognizedModel &out) {
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

bool Recognizer::runGpt2(RecognizedModel &out, const Linear &head) {
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

bool Recognizer::allClaimed() {
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
} // namespace recognize
} // namespace import
} // namespace photon
