//===- RecognizerImpl.h - the structure recognizer's state and pieces -*- C++ -*-===//
//
// The Recognizer class of Recognize.h, shared by its source files, one per concern:
//   Recognize.cpp           graph helpers (producers, claims, diagnostics) and the entry point
//   RecognizeNorms.cpp      RMSNorm, LayerNorm, GELU
//   RecognizeLinear.cpp     linears (MatMul / Gemm, biases, fused QKV splits), weight layouts
//   RecognizeAttention.cpp  attention: projection cones, RoPE, scales, masks, GQA
//   RecognizeBlocks.cpp     LLaMA- and GPT-2-style blocks and stacks, decoder-only models
//   RecognizeHierarchy.cpp  PHOTON / Block Transformer: shifts, converters, compressors
// Private to lib/Import.
//
//===----------------------------------------------------------------------===//
#ifndef PHOTON_LIB_IMPORT_RECOGNIZERIMPL_H
#define PHOTON_LIB_IMPORT_RECOGNIZERIMPL_H

#include "GraphView.h"
#include "Recognize.h"

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace photon {
namespace import {
namespace recognize {

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
  Recognizer(const onnx::GraphProto &g, const onnx::GraphProto &weights) : GraphView(g, weights) {}

  std::string why;
  bool gpt2 = false; // the final norm is a LayerNorm: GPT-2-style blocks throughout
  RecognizedModel &m() { return *model; }
  RecognizedModel *model = nullptr;
  std::set<const Node *> claimed;
  std::set<std::string> tokDep; // values that depend on the token ids
  std::set<std::string> cacheInputs; // past key/value inputs of a decoder-with-past export
  std::set<std::string> presentValues; // the caches after the append (present outputs)
  /// Back through Cast / Identity / Transpose / Reshape producers (a cache's layout ops).
  std::string skipLayout(std::string v);

  bool fail(const Node *n, const std::string &msg);
  static std::string nm(const Node *n) { return "'" + n->name() + "' (" + n->op_type() + ")"; }
  void note(const Node *n, const std::string &what);

  /// Skips Cast / Identity producers backwards.
  std::string skip(std::string v);
  const Node *prodOp(const std::string &v, const char *op);
  std::vector<int64_t> dims(const std::string &init);
  bool isFloatInit(const std::string &v);

  /// y = x W^T (MatMul by an initializer or its Transpose, or Gemm without bias).
  bool linear(const std::string &yIn, Linear &L, const char *what);

  /// y = gain * (x / sqrt(mean(x^2) + eps)), in any of the usual spellings.
  bool rmsNorm(const std::string &yIn, Norm &N, const char *what);

  static std::string fmt(double v);

  /// The token-dependent nodes on the paths from `from` back to `to` (exclusive).
  std::vector<const Node *> between(const std::string &from, const std::string &to);

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
  bool cone(const std::vector<const Node *> &nodes, Cone &c, const char *what);
  std::optional<int64_t> lastInt(const std::string &v);
  /// A scalar constant, also computed from constants (Sqrt, Reciprocal, Div, Cast, Mul).
  std::optional<double> scalarValue(const std::string &v, int depth = 0);
  /// The Cos / Sin nodes (or constant tables) a RoPE factor comes from.
  void findTrig(const std::string &v, Cone &c);

  /// RoPE base from Cos/Sin(positions * inv_freq) or from cos/sin tables.
  bool ropeTheta(const Cone &c, int64_t hd, double &theta, const Node *at);

  /// One attention block: a = Linear_o(softmax(q k^T * s + mask) v), q/k/v from `n`.
  bool attention(const std::string &aOut, const std::string &n, int layer);

  //===--------------------------------------------------------------------===//
  // GPT-2-style pieces: LayerNorm, linear with bias, GELU, learned positions
  //===--------------------------------------------------------------------===//

  /// Back through Reshape / Cast / Identity without claiming (a probe).
  std::string backQ(std::string v);
  /// Back through Reshape / Cast / Identity, claiming them (the 2-D view of GPT-2's Conv1D).
  std::string backR(std::string v);
  bool isBias(const std::string &v) { return isFloatInit(v) && dims(v).size() == 1; }
  /// The MatMul / Gemm by a weight behind v (through a bias Add and reshapes); a probe.
  const Node *linearNode(const std::string &v);
  /// y = x W^T + b: Add(MatMul(x, W), b), Gemm(x, W, b), either in a 2-D view (Reshape
  /// around it, GPT-2's Conv1D).
  bool linearB(const std::string &yIn, Linear &L, const char *what);

  /// 1/sqrt(denom) applied to a numerator: Div(num, Sqrt(denom)), Mul(num, Reciprocal(Sqrt)),
  /// Mul(num, Div(1, Sqrt)) or Mul(num, Pow(denom, -0.5)). The nodes go to `local`.
  bool rsqrtOf(const Node *n, std::string &num, std::string &denom, std::set<const Node *> &local);
  bool lastAxisMean(const Node *mean);

  /// y = (x - mean(x)) / sqrt(mean((x - mean(x))^2) + eps) * w + b, decomposed (torch at
  /// opset <= 16) or the LayerNormalization op (opset 17).
  bool layerNorm(const std::string &yIn, Norm &N, const char *what);
  bool layerNormQuiet(const std::string &y, Norm &N);
  /// The norm of the model's kind.
  bool norm(const std::string &y, Norm &N, const char *what);
  bool normQuiet(const std::string &y, Norm &N);

  /// y = GELU(u), u the output of a linear: the token-dependent cone from y back to u holds
  /// only elementwise arithmetic with scalar constants and one Tanh or Erf; it is evaluated
  /// at sample points and must equal the exact (erf) or the tanh-approximated GELU.
  bool gelu(const std::string &yIn, std::string &u, bool &tanhForm);

  /// Is r the output of a GPT-2-style block (a residual Add whose other side is a linear
  /// with bias reading a GELU, i.e. a Mul)?
  bool isBlockOutputGpt2(const std::string &r);

  /// Split of a fused projection on the path from `from`: which output it takes.
  bool splitOf(const std::vector<const Node *> &nodes, const std::string &from, Linear &L,
               const char *what);

  /// x = Add(Gather(wte, tokens), Gather(wpe, positions)), positions = Range(0, T, 1) of the
  /// tokens' length (through Unsqueeze / Cast / Expand).
  bool learnedPositions(const std::string &x, const Node *&tokGather, std::string &table);

  std::vector<Linear> lin; // of the current layer, in recognition order

  struct Layer {
    Norm n1, n2;
    std::vector<Linear> lin; // o, q, k, v, down, gate, up
  };
  int attnCount = 0;

  /// One pre-LayerNorm GPT-2 block whose output is r; xprev is its input:
  /// r = h + proj(GELU(fc(LN_2(h)))), h = xprev + o(Attention(LN_1(xprev))), biases on all.
  bool blockGpt2(const std::string &r, Layer &L, std::string &xprev);

  /// Is r the output of a transformer block (a residual Add whose other side is a MatMul of
  /// a product, the MLP's down projection)?
  bool isBlockOutput(const std::string &r);

  /// One pre-norm LLaMA block whose output is r; xprev is its input.
  bool block(const std::string &r, Layer &L, std::string &xprev);

  struct Stack {
    std::string input, output;
    Norm fn;
    std::vector<Layer> layers; // bottom-up
  };
  /// A stack of blocks ending in its final RMSNorm y; its input is the first value that is
  /// not a block output.
  bool stackAt(const std::string &y, Stack &S, const char *what);

  /// The token input, the caches, token dependence and the logits output.
  bool prepare(RecognizedModel &out);

  bool run(RecognizedModel &out);


  /// A GPT-2-style decoder-only model (the final norm is a LayerNorm).
  bool runGpt2(RecognizedModel &out, const Linear &head);
  /// The bias of a linear in the raising's layout (the slice of a fused projection's).
  std::string useBias(const Linear &L);

  //===--------------------------------------------------------------------===//
  // Hierarchical models (PHOTON, Block Transformer)
  //===--------------------------------------------------------------------===//

  bool hier = false; // got past the token decoder: the graph is hierarchical

  static bool isLayoutOp(const std::string &op);
  /// Back through layout ops (and Slices when `slices`), claiming them.
  std::string back(std::string v, bool slices = false, std::vector<const Node *> *sl = nullptr);
  /// y = x W^T + b.
  bool linearBias(const std::string &y, Linear &L, std::string &bias, const char *what);
  /// A start latent: a float initializer of D values, through Expand / Reshape / Tile.
  std::string startLatent(std::string v, int64_t D);
  /// prev = Concat(start, Slice(x)[:-1]) (the shift), or x itself (no shift).
  bool shift(const std::string &prev, int64_t D, std::string &start, std::string &x);

  static std::vector<std::string> stackWeightsOf(const Stack &S, const std::function<std::string(const Linear &, bool)> &use);

  bool runPhoton(RecognizedModel &out);
  bool isFinalNorm(const std::string &v);
  /// Claims the layout ops between v and the values in `stops` (the token-dependent cone).
  bool claimLayout(const std::string &v, const std::vector<std::string> &stopsA,
                   const std::vector<std::string> &stopsB);
  bool allClaimed();
  /// The name of a linear's weight in the raising's layout ([out, in]; rotate-half rows).
  std::string useWeight(const Linear &L, bool ropePerm);
  /// rmsNorm without recording claims or notes (a probe).
  bool rmsNormQuiet(const std::string &y, Norm &N);
};

} // namespace recognize
} // namespace import
} // namespace photon

#endif
