//===- Recognize.h - model structure from an ONNX graph --------*- C++ -*-===//
//
// Recognizes the structure of a plain ONNX graph that carries no photon metadata (an export
// written by someone else): a LLaMA-style decoder-only model (pre-RMSNorm blocks,
// bias-free Q/K/V/O, RoPE, causal softmax attention with optional GQA, SwiGLU MLP, final
// RMSNorm, LM head), a GPT-2-style one (pre-LayerNorm blocks, biases, fused or separate
// Q/K/V, GELU MLP, learned absolute positions), or a PHOTON / Block Transformer. Everything the compiler needs is read from the graph: layers, width,
// heads, kv heads, head_dim (from the Reshape of the projections, cross-checked with the
// attention scale and the rotary frequencies), norm eps, RoPE base and layout, vocab. The
// result is the convention's call sequence (TokenEmbedding, EncoderStack, LMHead) that
// Raise.cpp turns into photon ops exactly as for our own exports. docs/importer.md,
// "Structure recognition".
//
//===----------------------------------------------------------------------===//
#ifndef PHOTON_LIB_IMPORT_RECOGNIZE_H
#define PHOTON_LIB_IMPORT_RECOGNIZE_H

#include "onnx/onnx_pb.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace photon {
namespace import {

/// One call of the convention's functions (docs/onnx-convention.md, "Signatures").
struct PlainCall {
  std::string op;
  std::vector<std::pair<std::string, int64_t>> intAttrs;
  std::vector<std::pair<std::string, float>> floatAttrs;
  std::vector<std::string> inputs; // "" = the previous call's output
  std::string output;
  std::string stack; // stack prefix (enc1, dec2, stack) or ""
};

/// A weight the raising needs in another layout than the graph's initializer: [out, in]
/// from a pre-transposed [in, out] one, and/or with each head's rows permuted from the
/// interleaved (GPT-J) RoPE layout to rotate-half (attention scores are invariant under
/// one permutation of q's and k's head_dim axis).
struct DerivedWeight {
  std::string name, source;
  bool transpose = false;
  int64_t interleavedHeadDim = 0; // > 0: permute rows within each head of this size
  bool flatten = false;           // the same values as a 1-D tensor (a [1, 1, D] start latent)
  /// rows [rowBegin, rowBegin + rowCount) of the [out, in] result (or elements of a 1-D
  /// source): one of q / k / v of a fused QKV projection split after it; 0 = all.
  int64_t rowBegin = 0, rowCount = 0;
};

struct RecognizedModel {
  std::string family; // "vanilla", "block" (L = 1) or "photon"
  int64_t vocab = 0, width = 0, layers = 0, heads = 0, kvHeads = 0, headDim = 0, ffn = 0;
  double ropeTheta = 0, normEps = 0;
  int64_t levels = 0, prefix = 0; // hierarchical models: L and the converter length R
  std::vector<int64_t> chunkSizes;
  bool level1Shift = true;
  std::string ropeLayout; // "rotate-half" or "interleaved"
  /// GPT-2-style decoder-only model: LayerNorm, biases, GELU, learned absolute positions.
  bool gpt2 = false;
  std::string gelu;          // "tanh" or "erf" (GPT-2-style)
  std::string positionTable; // the learned positions' initializer [P, D] (GPT-2-style)
  int64_t positions = 0;     // P
  std::string tokensInput, logitsOutput;
  std::vector<PlainCall> calls;
  std::vector<DerivedWeight> derived;
  /// A decoder-with-past export: the past key/value inputs and present outputs, which the
  /// raised model drops (its caches are the runtime's paged cache).
  std::vector<std::string> ignoredInputs, ignoredOutputs;
  /// What was recognized where, for --explain: "node '<name>' (<op>) -> <what>".
  std::vector<std::string> explain;
};

/// Recognizes a decoder-only or a hierarchical (PHOTON / Block) model in `g`, whose
/// initializers are those of `weights` (the model's graph; `g` itself for a plain graph, or
/// its copy with the local functions expanded, InlineFunctions.h). On failure, `why` says
/// what was not recognized and where (node names), in one paragraph.
bool recognizeDecoderOnly(const onnx::GraphProto &g, const onnx::GraphProto &weights,
                          RecognizedModel &out, std::string &why);

} // namespace import
} // namespace photon

#endif
