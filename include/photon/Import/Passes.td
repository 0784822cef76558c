//===- Passes.td - importer passes -*- tablegen -*-===//
//
// Passes of the ONNX importer's second stage (docs/importer.md, "Two stages"): rewrite
// patterns that raise the upstream-op spellings of local computations (norms,
// activations, linears, attention, RoPE) into typed photon ops through their ODS builders.
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_IMPORT_PASSES
#define PHOTON_IMPORT_PASSES

include "mlir/Pass/PassBase.td"

def PhotonRaiseLocal : Pass<"photon-raise-local"> {
  let summary = "Raise local computations of imported upstream IR to typed photon ops";
  let description = [{
    The importer converts a graph whose structure it did not recognize (docs/importer.md,
    4c/4d) to upstream ops: `linalg.generic` elementwise and reduction ops, matmul
    contractions, `tensor` reshapes. This pass raises the local computations it can prove
    into typed photon ops, one rewrite pattern per concern, each building its op through
    the op's ODS builder:

    - **Linear**: a matmul contraction `x[.., K] x W[K, N]` (linalg.fill 0, then a
      `linalg.generic` mul/add over the last axis) whose `W` is a `photon.weight`, or the
      `linalg.transpose` of an `[N, K]` weight, or a contraction reading an `[N, K]`
      weight transposed (Gemm with transB) -> `photon.linear(x, W^T)`.
    - **Linear bias**: `photon.linear(x, w) + b` (`b` a 1-D `photon.weight` broadcast over
      the last axis) -> `photon.linear(x, w, b)`.
    - **RMSNorm**: `gain * x / sqrt(mean(x^2) + eps)` with `x^2` as `x*x` or `powf(x, 2)`,
      the mean as a sum over the last axis divided by its size, and the normalization as
      `x / sqrt(.)`, `x * rsqrt(.)`, `x * (1 / sqrt(.))` or `x * powf(., -0.5)`; `gain` a
      1-D `photon.weight` -> `photon.rms_norm`. A mean-centred `x` is not an RMSNorm.
    - **LayerNorm**: the same over `d = x - mean(x)`, then `* gain + bias` ->
      `photon.layer_norm`. A norm without the centring is not a LayerNorm.
    - **LayerNorm op**: the converter's LayerNormalization (a fused sum of squares of
      `d = x - mean(x)`, one `rsqrt(. / D + eps)` generic, one `d * r * w + b` generic) ->
      `photon.layer_norm`.
    - **GELU**: the elementwise cone between a value and its root that holds only scalar
      constants and exactly one `math.erf` or `math.tanh` is evaluated at sample points and
      must equal `0.5 x (1 + erf(x / sqrt 2))` or the tanh approximation within 1e-5 ->
      `photon.gelu` (a wrong constant is no GELU).
    - **SwiGLU**: `photon.linear(silu(photon.linear(x, wg)) * photon.linear(x, wu), wd)`,
      the SiLU checked numerically as `t * sigmoid(t)` -> `photon.swiglu`.
    - **Causal attention** (`RaiseLocalAttention.cpp`): `softmax(scale * Q K^T + mask) V`
      as two batched matmul contractions around a softmax over the key axis (the
      Softmax converter's form, or `exp(s [- max]) / sum`); q, k, v layouts read from
      the contractions' indexing maps (`[B, H, M, hd]`, `[B * H, M, hd]`, or
      `[B, Hkv, G, M, hd]` with k and v broadcast over `G`); the scale from scalar
      Mul / Div of q, k or the scores, before or after the mask; the mask (additive, or a
      masked fill) evaluated at sample positions: 0 where the key is not after the query,
      at most -1e7 after scaling where it is -> `photon.causal_attention`.
    - **GQA**: a `photon.causal_attention` whose k and v are copies of `[B, M, Hkv, hd]`
      tensors, head `h` reading head `h / (H / Hkv)` (Expand / Reshape, Split / Concat),
      proven by following sample elements through the data-movement ops -> the same op
      over the `Hkv` heads.
    - **RoPE**: `x * cos + rot(x) * sin`, rot the rotate-half (`cat(-x2, x1)`) or the
      interleaved (GPT-J) rotation, proven by following sample elements back to x; x of
      rank 3, 4 or 5; the tables evaluated at sample positions against
      `cos / sin(m theta^(-2j/hd))`, theta read from them -> `photon.rope` (transposed
      to `[B, M, H, hd]`, de-interleaved if interleaved, and back; transpose pairs
      compose).

    A pattern that almost matches does not fire: the upstream ops stay and compute what
    they did. test/Import/raise-local.test and raise-local-attention.test cover each
    spelling and near miss (graphs from Inputs/gen_local.py and Inputs/gen_attention.py,
    through `photon-import --raise-local`), raise-local-fallback.test the forward-only
    fallback of photon-compile against ONNX Runtime.
  }];
  let dependentDialects = ["::mlir::photon::PhotonDialect", "::mlir::linalg::LinalgDialect"];
}

def PhotonRaiseStructure : Pass<"photon-raise-structure", "::mlir::ModuleOp"> {
  let summary = "Raise a decoder-only, Block Transformer or PHOTON model's structure over "
                "typed ops to the stage form";
  let description = [{
    Run after `photon-raise-local` on a module without `photon.hierarchy` (an ONNX graph
    whose structure the importer's first stage did not recognize). Rewrite patterns, one
    concern each, over the typed photon ops and the upstream ops left between them:

    - **Embedding**: a gather `out[.., e] = table[ids[..], e]` from a 2-D `photon.weight`
      (torch's negative-index wrap-around or none) -> `photon.embedding`. A transposed or
      shifted read is no embedding.
    - **LM head**: the bias-free `photon.linear` whose result the graph function returns
      -> `photon.lm_head`.
    - **Decoder stack**: `lm_head(norm(r_N))` with residual blocks
      `h_i = r_(i-1) + attn(norm(r_(i-1)))`, `r_i = h_i + mlp(norm(h_i))` down to the
      stack's input: each sublayer reads the stream only as the x of one RMSNorm or
      LayerNorm, attention sublayers hold exactly one `photon.causal_attention`, MLP
      sublayers none, and they alternate. The blocks and the final norm are outlined into
      a private function (`photon.role = "encoder"`, `photon.level = 1`) called from the
      graph function, which becomes `@forward` (`photon.stage = "forward"`, i32 token
      ids), and the module gets `#photon.hierarchy<family = "vanilla">`.

    Before outlining, every op of the graph function on the tokens' data is proven
    row-wise: it computes each token's row from that token's row alone (feature and
    token axes tracked through transposes and reshapes), except causal attention, RoPE
    and learned positions, whose incremental forms photon-derive-stages builds. A
    reduction or a gather along the sequence, a read of loop positions, or any op not
    known to be row-wise stops the pattern, and the pass says why in a remark: the
    KV-cached stages would compute something else. photon-derive-stages then derives the
    `lm_step` stage as for a recognized decoder-only model.

    - **Merged heads**: a `photon.causal_attention` of one head over `[N*H, M, 1, hd]`
      whose q, k, v (q and k maybe under a `photon.rope`) merge `[N, M, H, hd]`
      transposed to `[N, H, M, hd]` (torch's baddbmm over heads in the batch) -> the
      attention of H heads over `[N, M, H, hd]`, the merged layout rebuilt from its
      result. Either stack pattern refuses an attention whose batch and positions are not
      its stack input's: the stages bind one cache row per sequence.
    - **PHOTON / Block Transformer**: the LM head reading window rows `R-1 .. R+C_1-2` of
      a decoder stack over windows `[N, W, D]`, the windows `[converter rows; the
      embeddings of each chunk's first C_1-1 tokens]`, each converter a linear with bias
      of a shift `concat(start latent broadcast over the batch, X[:, :-1])`; `X` of level
      `l < L` a latent decoder exported as `C_(l+1)` unrolled steps (the last row of a
      stack over a window that grows by the previous step's row, from the level above's
      converter rows), `X` of level `L` the top encoder; each encoder stack of level
      `l >= 2` over `Linear(RMSNorm(C_l units of the level below joined))` with a bias,
      the first over `C_1` consecutive token rows joined (computed row-wise from the
      tokens) -> `photon.chunk`, `photon.chunk_compress`, one encoder function per level
      (role encoder), `photon.shift` and `photon.expand` per level, one decoder function per
      unrolled latent-decoder step and the token decoder (role decoder,
      `photon.bounded_attention`), and `#photon.hierarchy<family = "photon">` (`"block"`
      for L = 1). Every reshape, slice and concat is checked with the sizes the graph
      computes for it, evaluated on integers for two samples of the batch and sequence;
      every op on the tokens' data must be a part of the structure, and every encoder's
      ops row-wise (its stage runs over a cache); photon-derive-stages then derives
      `encode_l`, `latent_l` and `token_step`.
  }];
  let dependentDialects = ["::mlir::photon::PhotonDialect", "::mlir::linalg::LinalgDialect",
                           "::mlir::func::FuncDialect", "::mlir::tensor::TensorDialect"];
}

#endif // PHOTON_IMPORT_PASSES
