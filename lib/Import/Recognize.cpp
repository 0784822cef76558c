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
#include "RecognizerImpl.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <set>
#include <sstream>

namespace photon {
namespace import {
namespace recognize {

std::string Recognizer::skipLayout(std::string v) {
  for (int k = 0; k < 8; ++k) {
    const Node *p = prod(v);
    if (!p || (p->op_type() != "Cast" && p->op_type() != "Identity" &&
               p->op_type() != "Transpose" && p->op_type() != "Reshape"))
      break;
    v = in(p, 0);
  }
  return v;
}

bool Recognizer::fail(const Node *n, const std::string &msg) {
  if (why.empty()) {
    why = msg;
    if (n) why += " (node '" + n->name() + "', " + n->op_type() + ")";
  }
  return false;
}

void Recognizer::note(const Node *n, const std::string &what) {
  if (n) m().explain.push_back("node " + nm(n) + " -> " + what);
}

std::string Recognizer::skip(std::string v) {
  for (int k = 0; k < 8; ++k) {
    const Node *p = prod(v);
    if (!p || (p->op_type() != "Cast" && p->op_type() != "Identity")) break;
    claimed.insert(p);
    v = in(p, 0);
  }
  return v;
}

const Node *Recognizer::prodOp(const std::string &v, const char *op) {
  const Node *p = prod(skip(v));
  return p && p->op_type() == op ? p : nullptr;
}

std::vector<int64_t> Recognizer::dims(const std::string &init) {
  const onnx::TensorProto *t = initializer(init);
  if (!t) return {};
  return std::vector<int64_t>(t->dims().begin(), t->dims().end());
}

bool Recognizer::isFloatInit(const std::string &v) {
  const onnx::TensorProto *t = initializer(v);
  // f16 / bf16 initializers (a half-precision export) are weights too: imported as f32.
  return t && (t->data_type() == onnx::TensorProto::FLOAT ||
               t->data_type() == onnx::TensorProto::FLOAT16 ||
               t->data_type() == onnx::TensorProto::BFLOAT16);
}

std::string Recognizer::fmt(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

bool Recognizer::isLayoutOp(const std::string &op) {
  return op == "Reshape" || op == "Transpose" || op == "Squeeze" || op == "Unsqueeze" ||
         op == "Cast" || op == "Identity" || op == "Flatten";
}
} // namespace recognize


bool recognizeDecoderOnly(const onnx::GraphProto &g, const onnx::GraphProto &weights,
                          RecognizedModel &out, std::string &why) {
  for (const auto &n : g.node())
    if (!n.domain().empty() && n.domain() != "ai.onnx") {
      why = "node '" + n.name() + "' is an op of domain " + n.domain() + " (" + n.op_type() +
            ") that is not a model-local function: structure recognition reads ONNX's "
            "default-domain ops";
      return false;
    }
  {
    recognize::Recognizer r(g, weights);
    if (r.run(out)) return true;
    why = r.why.empty() ? "not recognized" : r.why;
  }
  // Not decoder-only: a hierarchical model? Its reason wins once it got past the token
  // decoder (the graph is hierarchical), the decoder-only one otherwise.
  RecognizedModel h;
  recognize::Recognizer r(g, weights);
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

