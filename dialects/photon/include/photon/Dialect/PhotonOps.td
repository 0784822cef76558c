//===- PhotonOps.td - PHOTON operations --------------------*- tablegen -*-===//
//
// Operand order, attribute names and types are fixed by docs/ir-contract.md.
// Shapes follow ../shared/docs/photon-model.md; every shape rule has a verifier whose
// message quotes the offending numbers. Dynamic dimensions (`?`) are accepted
// everywhere: a rule is checked when the dimensions it involves are static.
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_DIALECT_PHOTONOPS_TD
#define PHOTON_DIALECT_PHOTONOPS_TD

include "photon/Dialect/PhotonBase.td"
include "photon/Dialect/PhotonAttrs.td"
include "photon/Dialect/PhotonTypes.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/IR/CommonTypeConstraints.td"

// Activations and weights: ranked tensors of floats (dimensions may be dynamic).
def Photon_FloatTensor : RankedTensorOf<[AnyFloat]>;
class Photon_FloatTensorOfRank<list<int> ranks> : TensorRankOf<[AnyFloat], ranks>;

//===----------------------------------------------------------------------===//
// photon.weight
//===----------------------------------------------------------------------===//

def Photon_WeightOp : Photon_Op<"weight", [Pure]> {
  let summary = "A named tensor of the external weights blob";
  let description = [{
    Reads the tensor called `name` from the weights blob written beside the module
    (docs/artifact.md). Weights are never stored as attributes: this keeps modules small
    and lets the compiler pack each weight once, in the layout its consumer wants.
    The result shape must be static and equal to the shape recorded in the blob.
    The optional `offset` is the tensor's byte offset in the blob, for modules lowered
    without the blob's index at hand (convert-photon-to-linalg's `weights-file` wins).

    ```mlir
    %wq = photon.weight "enc1.layers.0.wq" : tensor<128x128xf32>
    %wk = photon.weight "enc1.layers.0.wk" {offset = 65536 : i64} : tensor<128x128xf32>
    ```
  }];
  let arguments = (ins StrAttr:$name, OptionalAttr<I64Attr>:$offset);
  let results = (outs AnyStaticShapeTensor:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
  // The weight `name` of type `result`, without an offset.
  let builders = [
    OpBuilder<(ins "::mlir::Type":$result, "::llvm::StringRef":$name), [{
      build($_builder, $_state, result, name, /*offset=*/nullptr);
    }]>
  ];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// photon.embedding
//===----------------------------------------------------------------------===//

def Photon_EmbeddingOp : Photon_Op<"embedding", [Pure]> {
  let summary = "Table lookup: ids [..] -> rows of table [V, E]";
  let description = [{
    `result[i..., e] = table[ids[i...], e]`. Ids outside `[0, V)` are undefined
    behaviour of the model input; backends clamp or trap as they document.

    ```mlir
    %x0 = photon.embedding %table, %tokens
        : (tensor<256x32xf32>, tensor<?x?xi32>) -> tensor<?x?x32xf32>
    ```
  }];
  let arguments = (ins Photon_FloatTensorOfRank<[2]>:$table,
                       RankedTensorOf<[I32, I64]>:$ids);
  let results = (outs Photon_FloatTensor:$result);
  let assemblyFormat =
      "$table `,` $ids attr-dict `:` functional-type(operands, results)";
  // The result is `ids`' shape plus the table's row width, of the table's element type.
  let builders = [
    OpBuilder<(ins "::mlir::Value":$table, "::mlir::Value":$ids), [{
      build($_builder, $_state, embeddingResultType(table, ids), table, ids);
    }]>
  ];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// photon.position_embedding
//===----------------------------------------------------------------------===//

def Photon_PositionEmbeddingOp : Photon_Op<"position_embedding", [Pure]> {
  let summary = "Learned absolute positions: x [B, M, D] + table[offsets[b] + m]";
  let description = [{
    `x [B, M, D]`, `table [P, D]`, optional `offsets i32[B]` -> `[B, M, D]`:
    `result[b, m, :] = x[b, m, :] + table[offsets[b] + m, :]` (just `m` without offsets),
    the position table of a GPT-2-style model added to its token embeddings. Like
    `photon.rope`, the op is given `offsets` (the cache lengths) by
    `photon-derive-stages` in the token-by-token stages. A position at or beyond `P` is
    undefined behaviour of the model input (the table has no row for it); backends clamp
    to the last row. `M <= P` when both are static.

    ```mlir
    %h = photon.position_embedding %x, %wpe
        : (tensor<?x?x96xf32>, tensor<64x96xf32>) -> tensor<?x?x96xf32>
    %s = photon.position_embedding %x, %wpe, %lens
        : (tensor<?x?x96xf32>, tensor<64x96xf32>, tensor<?xi32>) -> tensor<?x?x96xf32>
    ```
  }];
  let arguments = (ins Photon_FloatTensorOfRank<[3]>:$x,
                       Photon_FloatTensorOfRank<[2]>:$table,
                       Optional<TensorRankOf<[I32], [1]>>:$offsets);
  let results = (outs Photon_FloatTensorOfRank<[3]>:$result);
  let assemblyFormat =
      "$x `,` $table (`,` $offsets^)? attr-dict `:` functional-type(operands, results)";
  // The result has the type of `x`; `offsets` may be null.
  let builders = [
    OpBuilder<(ins "::mlir::Value":$x, "::mlir::Value":$table, "::mlir::Value":$offsets), [{
      build($_builder, $_state, x.getType(), x, table, offsets);
    }]>
  ];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// photon.rms_norm
//===----------------------------------------------------------------------===//

def Photon_RMSNormOp : Photon_Op<"rms_norm",
    [Pure, SameOperandsAndResultElementType]> {
  let summary = "RMSNorm over the last dimension";
  let description = [{
    `result = x * rsqrt(mean(x^2, last dim) + eps) * w`, with `w` of size `D` (the last
    dimension of `x`). The result has the shape of `x`.

    ```mlir
    %h = photon.rms_norm %x, %w {eps = 1.0e-05 : f32}
        : (tensor<?x?x128xf32>, tensor<128xf32>) -> tensor<?x?x128xf32>
    ```
  }];
  let arguments = (ins Photon_FloatTensor:$x, Photon_FloatTensorOfRank<[1]>:$w,
                       F32Attr:$eps);
  let results = (outs Photon_FloatTensor:$result);
  let assemblyFormat = "$x `,` $w attr-dict `:` functional-type(operands, results)";
  // The result has the type of `x`.
  let builders = [
    OpBuilder<(ins "::mlir::Value":$x, "::mlir::Value":$w, "float":$eps), [{
      build($_builder, $_state, x.getType(), x, w, $_builder.getF32FloatAttr(eps));
    }]>
  ];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// photon.linear
//===----------------------------------------------------------------------===//

def Photon_LinearOp : Photon_Op<"linear",
    [Pure, SameOperandsAndResultElementType]> {
  let summary = "x W^T + b over the last dimension (torch nn.Linear layout)";
  let description = [{
    `x [.., K]`, `w [N, K]`, optional `b [N]` -> `[.., N]`.

    ```mlir
    %q = photon.linear %h, %wq
        : (tensor<?x?x128xf32>, tensor<128x128xf32>) -> tensor<?x?x128xf32>
    %u = photon.linear %h, %w, %b
        : (tensor<?x?x128xf32>, tensor<256x128xf32>, tensor<256xf32>) -> tensor<?x?x256xf32>
    ```
  }];
  let arguments = (ins Photon_FloatTensor:$x, Photon_FloatTensorOfRank<[2]>:$w,
                       Optional<Photon_FloatTensorOfRank<[1]>>:$b);
  let results = (outs Photon_FloatTensor:$result);
  let assemblyFormat =
      "$x `,` $w (`,` $b^)? attr-dict `:` functional-type(operands, results)";
  // The result is `x`'s shape with the last dimension `N` (rows of `w`); `b` may be null.
  let builders = [
    OpBuilder<(ins "::mlir::Value":$x, "::mlir::Value":$w, "::mlir::Value":$b), [{
      build($_builder, $_state, matmulResultType(x, w), x, w, b);
    }]>
  ];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// photon.layer_norm
//===----------------------------------------------------------------------===//

def Photon_LayerNormOp : Photon_Op<"layer_norm",
    [Pure, SameOperandsAndResultElementType]> {
  let summary = "LayerNorm over the last dimension (mean-centred, with gain and bias)";
  let description = [{
    `result = (x - mean(x)) * rsqrt(mean((x - mean(x))^2) + eps) * w + b` over the last
    dimension `D` of `x`; `w` and `b` have size `D`. The result has the shape of `x`.
    Unlike `photon.rms_norm`, the mean is subtracted and a bias is added (GPT-2).

    ```mlir
    %h = photon.layer_norm %x, %w, %b {eps = 1.0e-05 : f32}
        : (tensor<?x?x96xf32>, tensor<96xf32>, tensor<96xf32>) -> tensor<?x?x96xf32>
    ```
  }];
  let arguments = (ins Photon_FloatTensor:$x, Photon_FloatTensorOfRank<[1]>:$w,
                       Photon_FloatTensorOfRank<[1]>:$b, F32Attr:$eps);
  let results = (outs Photon_FloatTensor:$result);
  let assemblyFormat =
      "$x `,` $w `,` $b attr-dict `:` functional-type(operands, results)";
  // The result has the type of `x`.
  let builders = [
    OpBuilder<(ins "::mlir::Value":$x, "::mlir::Value":$w, "::mlir::Value":$b,
                   "float":$eps), [{
      build($_builder, $_state, x.getType(), x, w, b, $_builder.getF32FloatAttr(eps));
    }]>
  ];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// photon.gelu
//===----------------------------------------------------------------------===//

def Photon_GeluOp : Photon_Op<"gelu", [Pure, SameOperandsAndResultElementType]> {
  let summary = "GELU activation, exact (erf) or the tanh approximation";
  let description = [{
    Elementwise. Without `tanh`: `0.5 * x * (1 + erf(x / sqrt(2)))` (torch
    `F.gelu(x)`); with `tanh`: `0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))`
    (`F.gelu(x, approximate="tanh")`, GPT-2's `gelu_new`). The MLP of a GPT-2-style
    block is `linear(gelu(linear(x, w_fc, b_fc)), w_proj, b_proj)`.

    ```mlir
    %g = photon.gelu %u {tanh} : (tensor<?x?x384xf32>) -> tensor<?x?x384xf32>
    ```
  }];
  let arguments = (ins Photon_FloatTensor:$x, UnitAttr:$tanh);
  let results = (outs Photon_FloatTensor:$result);
  let assemblyFormat = "$x attr-dict `:` functional-type(operands, results)";
  // The result has the type of `x`.
  let builders = [
    OpBuilder<(ins "::mlir::Value":$x, "bool":$tanh), [{
      build($_builder, $_state, x.getType(), x, tanh);
    }]>
  ];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// photon.rope
//===----------------------------------------------------------------------===//

def Photon_RoPEOp : Photon_Op<"rope", [Pure]> {
  let summary = "Rotary position embedding (rotate-half layout)";
  let description = [{
    `x [B, M, H, hd]`, optional `offsets i32[B]`; position of unit `m` of sequence `b`
    is `offsets[b] + m` (just `m` without offsets). For `i < hd/2`,
    `freq_i = theta^(-2i/hd)`, `out[i] = x[i] cos - x[i + hd/2] sin`,
    `out[i + hd/2] = x[i + hd/2] cos + x[i] sin`. `hd` must be even.

    ```mlir
    %qr = photon.rope %q {theta = 1.0e+04 : f32}
        : (tensor<?x?x4x32xf32>) -> tensor<?x?x4x32xf32>
    %qs = photon.rope %q, %offsets {theta = 1.0e+04 : f32}
        : (tensor<?x1x4x32xf32>, tensor<?xi32>) -> tensor<?x1x4x32xf32>
    ```
  }];
  let arguments = (ins Photon_FloatTensorOfRank<[4]>:$x,
                       Optional<TensorRankOf<[I32], [1]>>:$offsets,
                       F32Attr:$theta);
  let results = (outs Photon_FloatTensorOfRank<[4]>:$result);
  let assemblyFormat =
      "$x (`,` $offsets^)? attr-dict `:` functional-type(operands, results)";
  // The result has the type of `x`; `offsets` may be null.
  let builders = [
    OpBuilder<(ins "::mlir::Value":$x, "::mlir::Value":$offsets, "float":$theta), [{
      build($_builder, $_state, x.getType(), x, offsets, $_builder.getF32FloatAttr(theta));
    }]>
  ];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// photon.causal_attention
//===----------------------------------------------------------------------===//

def Photon_CausalAttentionOp : Photon_Op<"causal_attention",
    [Pure, SameOperandsAndResultElementType]> {
  let summary = "Global causal attention over a stream (MHA or GQA)";
  let description = [{
    `q [B, M, H, hd]`, `k, v [B, M, Hkv, hd]` -> `[B, M, H, hd]`. Position `m` attends to
    positions `0 .. m` of its own sequence with `softmax(scale * q k^T)`. `H` must be a
    multiple of `Hkv`; query head `h` uses KV head `h / (H / Hkv)`.

    This is the op that `photon-derive-stages` replaces by `photon.kv_append` +
    `photon.cached_attention` in the incremental stage functions.

    ```mlir
    %o = photon.causal_attention %q, %k, %v {scale = 0.176776695 : f32}
        : (tensor<?x?x4x32xf32>, tensor<?x?x2x32xf32>, tensor<?x?x2x32xf32>)
       -> tensor<?x?x4x32xf32>
    ```
  }];
  let arguments = (ins Photon_FloatTensorOfRank<[4]>:$q,
                       Photon_FloatTensorOfRank<[4]>:$k,
                       Photon_FloatTensorOfRank<[4]>:$v,
                       F32Attr:$scale);
  let results = (outs Photon_FloatTensorOfRank<[4]>:$result);
  let assemblyFormat =
      "$q `,` $k `,` $v attr-dict `:` functional-type(operands, results)";
  // The result has the type of `q`.
  let builders = [
    OpBuilder<(ins "::mlir::Value":$q, "::mlir::Value":$k, "::mlir::Value":$v,
                   "float":$scale), [{
      build($_builder, $_state, q.getType(), q, k, v, $_builder.getF32FloatAttr(scale));
    }]>
  ];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// photon.bounded_attention
//===----------------------------------------------------------------------===//

def Photon_BoundedAttentionOp : Photon_Op<"bounded_attention",
    [Pure, SameOperandsAndResultElementType]> {
  let summary = "Causal attention inside independent windows of R + C - 1 positions";
  let description = [{
    The decoder's bounded attention: `q [N, W, H, hd]`, `k, v [N, W, Hkv, hd]` ->
    `[N, W, H, hd]`. Each of the `N` windows `[u_1..u_R, y_1..y_(C-1)]` is attended
    causally and independently: attention never leaves its window. `prefix` is `R` (the
    converter's prefix vectors) and `chunk` is `C`; the window length `W` is at most
    `prefix + chunk - 1` (shorter windows occur during the free-running rollout).

    ```mlir
    %o = photon.bounded_attention %q, %k, %v
        {prefix = 2 : i64, chunk = 4 : i64, scale = 0.176776695 : f32}
        : (tensor<?x5x4x32xf32>, tensor<?x5x4x32xf32>, tensor<?x5x4x32xf32>)
       -> tensor<?x5x4x32xf32>
    ```
  }];
  let arguments = (ins Photon_FloatTensorOfRank<[4]>:$q,
                       Photon_FloatTensorOfRank<[4]>:$k,
                       Photon_FloatTensorOfRank<[4]>:$v,
                       I64Attr:$prefix, I64Attr:$chunk, F32Attr:$scale);
  let results = (outs Photon_FloatTensorOfRank<[4]>:$result);
  let assemblyFormat =
      "$q `,` $k `,` $v attr-dict `:` functional-type(operands, results)";
  // The result has the type of `q`.
  let builders = [
    OpBuilder<(ins "::mlir::Value":$q, "::mlir::Value":$k, "::mlir::Value":$v,
                   "int64_t":$prefix, "int64_t":$chunk, "float":$scale), [{
      build($_builder, $_state, q.getType(), q, k, v, $_builder.getI64IntegerAttr(prefix),
            $_builder.getI64IntegerAttr(chunk), $_builder.getF32FloatAttr(scale));
    }]>
  ];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// photon.swiglu
//===----------------------------------------------------------------------===//

def Photon_SwiGLUOp : Photon_Op<"swiglu",
    [Pure, SameOperandsAndResultElementType]> {
  let summary = "The SwiGLU MLP: w_down(silu(w_gate x) * w_up x)";
  let description = [{
    `x [.., D]`, `w_gate [F, D]`, `w_up [F, D]`, `w_down [D, F]` -> `[.., D]`.

    ```mlir
    %m = photon.swiglu %h, %wg, %wu, %wd
        : (tensor<?x?x128xf32>, tensor<352x128xf32>, tensor<352x128xf32>,
           tensor<128x352xf32>) -> tensor<?x?x128xf32>
    ```
  }];
  let arguments = (ins Photon_FloatTensor:$x,
                       Photon_FloatTensorOfRank<[2]>:$w_gate,
                       Photon_FloatTensorOfRank<[2]>:$w_up,
                       Photon_FloatTensorOfRank<[2]>:$w_down);
  let results = (outs Photon_FloatTensor:$result);
  let assemblyFormat = "$x `,` $w_gate `,` $w_up `,` $w_down attr-dict `:` "
                       "functional-type(operands, results)";
  // The result has the type of `x`.
  let builders = [
    OpBuilder<(ins "::mlir::Value":$x, "::mlir::Value":$w_gate, "::mlir::Value":$w_up,
                   "::mlir::Value":$w_down), [{
      build($_builder, $_state, x.getType(), x, w_gate, w_up, w_down);
    }]>
  ];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// photon.chunk
//===----------------------------------------------------------------------===//

def Photon_ChunkOp : Photon_Op<"chunk",
    [Pure, SameOperandsAndResultElementType]> {
  let summary = "Concatenate `size` consecutive units: [B, M, d] -> [B, M/size, size*d]";
  let description = [{
    The parameter-free chunker (a row-major reshape). The chunk size must divide the
    stream length `M` when `M` is static. When both the operand and the result carry a
    `#photon.stream` encoding, the result's rate is the operand's rate times `size` and
    its level is higher.

    A chunk of a chunk folds into one chunk whose size is the product; a chunk of size 1
    whose result type equals its operand's folds away.

    ```mlir
    %a1 = photon.chunk %x0 {size = 4 : i64}
        : tensor<?x?x32xf32, #photon.stream<level = 0, rate = 1>>
       -> tensor<?x?x128xf32, #photon.stream<level = 1, rate = 4>>
    ```
  }];
  let arguments = (ins Photon_FloatTensorOfRank<[3]>:$x, I64Attr:$size);
  let results = (outs Photon_FloatTensorOfRank<[3]>:$result);
  let assemblyFormat = "$x attr-dict `:` type($x) `->` type($result)";
  // The result is `[B, M / size, size * d]` (dynamic where `M` or `d` is), without an
  // encoding.
  let builders = [
    OpBuilder<(ins "::mlir::Value":$x, "int64_t":$size), [{
      build($_builder, $_state, chunkResultType(x, size), x,
            $_builder.getI64IntegerAttr(size));
    }]>
  ];
  let hasVerifier = 1;
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// photon.chunk_compress
//===----------------------------------------------------------------------===//

def Photon_ChunkCompressOp : Photon_Op<"chunk_compress",
    [Pure, SameOperandsAndResultElementType]> {
  let summary = "Chunk, RMSNorm over size*D, Linear(size*D -> D) with bias";
  let description = [{
    The chunker of levels >= 2: `x [B, M, D]`, `norm_w [size*D]`, `w [D', size*D]`,
    `b [D']` -> `[B, M/size, D']` (the model uses `D' = D`). Same stream rules as
    `photon.chunk`: `size` divides `M` when static; the rate is multiplied by `size`.

    ```mlir
    %a2 = photon.chunk_compress %x1, %nw, %w, %b {size = 4 : i64, eps = 1.0e-05 : f32}
        : (tensor<?x?x128xf32>, tensor<512xf32>, tensor<128x512xf32>, tensor<128xf32>)
       -> tensor<?x?x128xf32>
    ```
  }];
  let arguments = (ins Photon_FloatTensorOfRank<[3]>:$x,
                       Photon_FloatTensorOfRank<[1]>:$norm_w,
                       Photon_FloatTensorOfRank<[2]>:$w,
                       Photon_FloatTensorOfRank<[1]>:$b,
                       I64Attr:$size, F32Attr:$eps);
  let results = (outs Photon_FloatTensorOfRank<[3]>:$result);
  let assemblyFormat = "$x `,` $norm_w `,` $w `,` $b attr-dict `:` "
                       "functional-type(operands, results)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// photon.expand
//===----------------------------------------------------------------------===//

def Photon_ExpandOp : Photon_Op<"expand",
    [Pure, SameOperandsAndResultElementType]> {
  let summary = "The converter: one latent -> R prefix vectors (Linear D -> R*D + reshape)";
  let description = [{
    `x [B, M, D]`, `w [R*D, D]`, `b [R*D]` -> `[B, M, R, D]`: `result[b, m, i, :] =
    (x[b, m] W^T + b)[i*D : (i+1)*D]`. `r` is `R`.

    With `r = 1` it canonicalizes to `photon.linear` + `tensor.expand_shape`.

    ```mlir
    %u = photon.expand %p, %w, %b {r = 2 : i64}
        : (tensor<?x?x128xf32>, tensor<256x128xf32>, tensor<256xf32>)
       -> tensor<?x?x2x128xf32>
    ```
  }];
  let arguments = (ins Photon_FloatTensorOfRank<[3]>:$x,
                       Photon_FloatTensorOfRank<[2]>:$w,
                       Photon_FloatTensorOfRank<[1]>:$b,
                       I64Attr:$r);
  let results = (outs Photon_FloatTensorOfRank<[4]>:$result);
  let assemblyFormat = "$x `,` $w `,` $b attr-dict `:` "
                       "functional-type(operands, results)";
  let hasVerifier = 1;
  let hasCanonicalizer = 1;
}

//===----------------------------------------------------------------------===//
// photon.shift
//===----------------------------------------------------------------------===//

def Photon_ShiftOp : Photon_Op<"shift",
    [Pure, SameOperandsAndResultElementType]> {
  let summary = "Previous-latent shift with a learned start latent";
  let description = [{
    `x [B, M, D]`, `start [D]` -> `[B, M, D]`: `result[:, 0] = start`,
    `result[:, m] = x[:, m - 1]` (`concat(start[None], x[:, :-1])` along the unit axis):
    chunk `g` is generated from the previous latent.

    ```mlir
    %p = photon.shift %x2, %s2
        : (tensor<?x?x128xf32>, tensor<128xf32>) -> tensor<?x?x128xf32>
    ```
  }];
  let arguments = (ins Photon_FloatTensorOfRank<[3]>:$x,
                       Photon_FloatTensorOfRank<[1]>:$start);
  let results = (outs Photon_FloatTensorOfRank<[3]>:$result);
  let assemblyFormat = "$x `,` $start attr-dict `:` functional-type(operands, results)";
  // The result has the type of `x`.
  let builders = [
    OpBuilder<(ins "::mlir::Value":$x, "::mlir::Value":$start), [{
      build($_builder, $_state, x.getType(), x, start);
    }]>
  ];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// photon.lm_head
//===----------------------------------------------------------------------===//

def Photon_LMHeadOp : Photon_Op<"lm_head",
    [Pure, SameOperandsAndResultElementType]> {
  let summary = "The (untied) LM head: x [.., D], w [V, D] -> logits [.., V]";
  let description = [{
    `x W^T` without bias. Kept apart from `photon.linear` because it is the largest
    GEMV of a decode step and the last op of every token step.

    ```mlir
    %logits = photon.lm_head %h, %wout
        : (tensor<?x?x128xf32>, tensor<256x128xf32>) -> tensor<?x?x256xf32>
    ```
  }];
  let arguments = (ins Photon_FloatTensor:$x, Photon_FloatTensorOfRank<[2]>:$w);
  let results = (outs Photon_FloatTensor:$result);
  let assemblyFormat = "$x `,` $w attr-dict `:` functional-type(operands, results)";
  // The result is `x`'s shape with the last dimension `V` (rows of `w`), without an
  // encoding.
  let builders = [
    OpBuilder<(ins "::mlir::Value":$x, "::mlir::Value":$w), [{
      build($_builder, $_state, matmulResultType(x, w), x, w);
    }]>
  ];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// photon.cache_bind
//===----------------------------------------------------------------------===//

def Photon_CacheBindOp : Photon_Op<"cache_bind", [Pure]> {
  let summary = "Bind a block pool, block tables and valid lengths into a KV cache";
  let description = [{
    `pool [NB, layers, 2, block_size, kv_heads, head_dim]` (K at index 0, V at index 1),
    `table i32[B, MB]` (block ids per sequence), `lens i32[B]` (valid positions per
    sequence) -> `!photon.kv_cache<...>`. The pool's static dimensions and element type
    must agree with the cache type. The stage functions of docs/artifact.md receive the
    three buffers as arguments.

    ```mlir
    %c = photon.cache_bind %pool, %table, %lens
        : (memref<?x2x2x16x4x32xf32>, memref<?x?xi32>, memref<?xi32>)
       -> !photon.kv_cache<level = 2, layers = 2, kv_heads = 4, head_dim = 32,
                           block_size = 16, element = f32>
    ```
  }];
  let arguments = (ins MemRefRankOf<[AnyFloat], [6]>:$pool,
                       MemRefRankOf<[I32], [2]>:$table,
                       MemRefRankOf<[I32], [1]>:$lens);
  let results = (outs Photon_KvCacheType:$cache);
  let assemblyFormat = "$pool `,` $table `,` $lens attr-dict `:` "
                       "functional-type(operands, results)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// photon.kv_append
//===----------------------------------------------------------------------===//

def Photon_KvAppendOp : Photon_Op<"kv_append"> {
  let summary = "Append n new K/V positions per sequence to one layer of a cache";
  let description = [{
    `k, v [B, n, Hkv, hd]` are written to layer `layer` of the cache at positions
    `lens[b] + t`, `t < n` (the blocks must have been allocated by the runtime). The
    valid lengths are not changed: the runtime advances them after the step. `Hkv` and
    `hd` must match the cache type and `layer` must be below its `layers`.

    ```mlir
    photon.kv_append %c, %k, %v {layer = 0 : i64}
        : !photon.kv_cache<level = 2, layers = 2, kv_heads = 4, head_dim = 32,
                           block_size = 16, element = f32>,
          tensor<?x?x4x32xf32>, tensor<?x?x4x32xf32>
    ```
  }];
  let arguments = (ins Arg<Photon_KvCacheType, "the cache", [MemRead, MemWrite]>:$cache,
                       Photon_FloatTensorOfRank<[4]>:$k,
                       Photon_FloatTensorOfRank<[4]>:$v,
                       I64Attr:$layer);
  let assemblyFormat = "$cache `,` $k `,` $v attr-dict `:` qualified(type($cache)) `,` "
                       "type($k) `,` type($v)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// photon.cached_attention
//===----------------------------------------------------------------------===//

def Photon_CachedAttentionOp : Photon_Op<"cached_attention"> {
  let summary = "Causal attention of n new queries against one layer of a cache";
  let description = [{
    `q [B, n, H, hd]` -> `[B, n, H, hd]`: query `t` of sequence `b` attends to cache
    positions `0 .. lens[b] + t` of layer `layer` (so the step's own K/V must have been
    appended first). `hd` must equal the cache's `head_dim`, `H` must be a multiple of
    its `kv_heads` (GQA), and `layer` must be below its `layers`.

    ```mlir
    %o = photon.cached_attention %c, %q {layer = 0 : i64, scale = 0.176776695 : f32}
        : !photon.kv_cache<level = 2, layers = 2, kv_heads = 4, head_dim = 32,
                           block_size = 16, element = f32>,
          tensor<?x?x4x32xf32> -> tensor<?x?x4x32xf32>
    ```
  }];
  let arguments = (ins Arg<Photon_KvCacheType, "the cache", [MemRead]>:$cache,
                       Photon_FloatTensorOfRank<[4]>:$q,
                       I64Attr:$layer, F32Attr:$scale);
  let results = (outs Photon_FloatTensorOfRank<[4]>:$result);
  let assemblyFormat = "$cache `,` $q attr-dict `:` qualified(type($cache)) `,` "
                       "type($q) `->` type($result)";
  let hasVerifier = 1;
}

#endif // PHOTON_DIALECT_PHOTONOPS_TD
