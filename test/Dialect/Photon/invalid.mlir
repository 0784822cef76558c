// RUN: photon-opt %s -split-input-file -verify-diagnostics
//
// One negative test per verifier message of the photon dialect (attributes, types,
// discardable attributes and ops), in that order.

//===----------------------------------------------------------------------===//
// #photon.stream
//===----------------------------------------------------------------------===//

// expected-error @+1 {{expected stream level (-1) to be non-negative}}
func.func private @stream_level(tensor<?x?x8xf32, #photon.stream<level = -1, rate = 1>>)

// -----

// expected-error @+1 {{expected stream rate (0) to be positive}}
func.func private @stream_rate(tensor<?x?x8xf32, #photon.stream<level = 1, rate = 0>>)

// -----

// expected-error @+1 {{#photon.stream expects a tensor of rank >= 2 ([B, M, ...]), got rank 1}}
func.func private @stream_rank(tensor<8xf32, #photon.stream<level = 1, rate = 4>>)

// -----

//===----------------------------------------------------------------------===//
// #photon.hierarchy
//===----------------------------------------------------------------------===//

// expected-error @+1 {{expected family "photon", "vanilla" or "block", got "mamba"}}
module attributes {photon.hierarchy = #photon.hierarchy<family = "mamba", levels = 2, chunk_sizes = [4, 4], prefix = 2, width = 128, vocab = 256>} {}

// -----

// expected-error @+1 {{expected levels (-1) to be non-negative}}
module attributes {photon.hierarchy = #photon.hierarchy<family = "photon", levels = -1, chunk_sizes = [], prefix = 2, width = 128, vocab = 256>} {}

// -----

// expected-error @+1 {{expected one chunk size per level: levels = 2 but 1 chunk sizes}}
module attributes {photon.hierarchy = #photon.hierarchy<family = "photon", levels = 2, chunk_sizes = [4], prefix = 2, width = 128, vocab = 256>} {}

// -----

// expected-error @+1 {{expected chunk size 1 (0) to be positive}}
module attributes {photon.hierarchy = #photon.hierarchy<family = "photon", levels = 2, chunk_sizes = [4, 0], prefix = 2, width = 128, vocab = 256>} {}

// -----

// expected-error @+1 {{expected a photon model to have at least one level, got 0}}
module attributes {photon.hierarchy = #photon.hierarchy<family = "photon", levels = 0, chunk_sizes = [], prefix = 2, width = 128, vocab = 256>} {}

// -----

// expected-error @+1 {{expected a block model to have exactly one level, got 2}}
module attributes {photon.hierarchy = #photon.hierarchy<family = "block", levels = 2, chunk_sizes = [4, 4], prefix = 2, width = 128, vocab = 256>} {}

// -----

// expected-error @+1 {{expected a vanilla model to have no levels, got 1}}
module attributes {photon.hierarchy = #photon.hierarchy<family = "vanilla", levels = 1, chunk_sizes = [4], prefix = 0, width = 128, vocab = 256>} {}

// -----

// expected-error @+1 {{expected prefix (0) to be positive}}
module attributes {photon.hierarchy = #photon.hierarchy<family = "photon", levels = 2, chunk_sizes = [4, 4], prefix = 0, width = 128, vocab = 256>} {}

// -----

// expected-error @+1 {{expected prefix (-1) to be non-negative}}
module attributes {photon.hierarchy = #photon.hierarchy<family = "vanilla", levels = 0, chunk_sizes = [], prefix = -1, width = 128, vocab = 256>} {}

// -----

// expected-error @+1 {{expected width (0) to be positive}}
module attributes {photon.hierarchy = #photon.hierarchy<family = "photon", levels = 2, chunk_sizes = [4, 4], prefix = 2, width = 0, vocab = 256>} {}

// -----

// expected-error @+1 {{expected vocab (0) to be positive}}
module attributes {photon.hierarchy = #photon.hierarchy<family = "photon", levels = 2, chunk_sizes = [4, 4], prefix = 2, width = 128, vocab = 0>} {}

// -----

//===----------------------------------------------------------------------===//
// !photon.kv_cache
//===----------------------------------------------------------------------===//

// expected-error @+1 {{expected cache level (-1) to be non-negative}}
func.func private @cache_level(!photon.kv_cache<level = -1, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>)

// -----

// expected-error @+1 {{expected cache layers (0) to be positive}}
func.func private @cache_layers(!photon.kv_cache<level = 1, layers = 0, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>)

// -----

// expected-error @+1 {{expected cache kv_heads (0) to be positive}}
func.func private @cache_heads(!photon.kv_cache<level = 1, layers = 2, kv_heads = 0, head_dim = 32, block_size = 16, element = f32>)

// -----

// expected-error @+1 {{expected cache head_dim (0) to be positive}}
func.func private @cache_hd(!photon.kv_cache<level = 1, layers = 2, kv_heads = 4, head_dim = 0, block_size = 16, element = f32>)

// -----

// expected-error @+1 {{expected cache block_size (0) to be positive}}
func.func private @cache_bs(!photon.kv_cache<level = 1, layers = 2, kv_heads = 4, head_dim = 32, block_size = 0, element = f32>)

// -----

// expected-error @+1 {{expected a floating-point cache element type, got 'i32'}}
func.func private @cache_elem(!photon.kv_cache<level = 1, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = i32>)

// -----

//===----------------------------------------------------------------------===//
// Discardable photon.* attributes
//===----------------------------------------------------------------------===//

// expected-error @+1 {{'photon.hierarchy' must be a #photon.hierarchy attribute, got "photon"}}
module attributes {photon.hierarchy = "photon"} {}

// -----

module {
  // expected-error @+1 {{'photon.hierarchy' belongs on the module, not on 'func.func'}}
  func.func private @f() attributes {photon.hierarchy = #photon.hierarchy<family = "photon", levels = 2, chunk_sizes = [4, 4], prefix = 2, width = 128, vocab = 256>}
}

// -----

// expected-error @+1 {{'photon.level' must be a non-negative integer, got "one"}}
func.func private @enc1() attributes {photon.level = "one"}

// -----

// expected-error @+1 {{'photon.role' must be a string, got 1 : i64}}
func.func private @enc1() attributes {photon.role = 1 : i64}

// -----

//===----------------------------------------------------------------------===//
// photon.weight
//===----------------------------------------------------------------------===//

func.func @weight_name() {
  // expected-error @+1 {{'photon.weight' op expected a non-empty weight name}}
  %w = photon.weight "" : tensor<4xf32>
  return
}

// -----

func.func @weight_dynamic() {
  // expected-error @+1 {{'photon.weight' op result #0 must be statically shaped tensor of any type values}}
  %w = photon.weight "w" : tensor<?xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// photon.embedding
//===----------------------------------------------------------------------===//

func.func @embedding_rank(%t: tensor<256x32xf32>, %ids: tensor<?x?xi32>) {
  // expected-error @+1 {{'photon.embedding' op expected result rank (2) to be ids rank + 1 (3)}}
  %0 = photon.embedding %t, %ids : (tensor<256x32xf32>, tensor<?x?xi32>) -> tensor<?x32xf32>
  return
}

// -----

func.func @embedding_dim(%t: tensor<256x32xf32>, %ids: tensor<2x8xi32>) {
  // expected-error @+1 {{'photon.embedding' op expected result dimension 1 (4) to equal ids dimension 1 (8)}}
  %0 = photon.embedding %t, %ids : (tensor<256x32xf32>, tensor<2x8xi32>) -> tensor<2x4x32xf32>
  return
}

// -----

func.func @embedding_width(%t: tensor<256x32xf32>, %ids: tensor<?x?xi32>) {
  // expected-error @+1 {{'photon.embedding' op expected result width (64) to equal table width (32)}}
  %0 = photon.embedding %t, %ids : (tensor<256x32xf32>, tensor<?x?xi32>) -> tensor<?x?x64xf32>
  return
}

// -----

func.func @embedding_elem(%t: tensor<256x32xf32>, %ids: tensor<?x?xi64>) {
  // expected-error @+1 {{'photon.embedding' op expected result element type ('f16') to equal the table's ('f32')}}
  %0 = photon.embedding %t, %ids : (tensor<256x32xf32>, tensor<?x?xi64>) -> tensor<?x?x32xf16>
  return
}

// -----

//===----------------------------------------------------------------------===//
// photon.rms_norm
//===----------------------------------------------------------------------===//

func.func @rms_norm_0d(%x: tensor<f32>, %w: tensor<1xf32>) {
  // expected-error @+1 {{'photon.rms_norm' op expected x to have rank >= 1, got a 0-d tensor}}
  %0 = photon.rms_norm %x, %w {eps = 1.0e-05 : f32} : (tensor<f32>, tensor<1xf32>) -> tensor<f32>
  return
}

// -----

func.func @rms_norm_w(%x: tensor<?x?x128xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{'photon.rms_norm' op expected norm weight size (64) to equal x width (128)}}
  %0 = photon.rms_norm %x, %w {eps = 1.0e-05 : f32} : (tensor<?x?x128xf32>, tensor<64xf32>) -> tensor<?x?x128xf32>
  return
}

// -----

func.func @rms_norm_eps(%x: tensor<?x?x128xf32>, %w: tensor<128xf32>) {
  // expected-error @+1 {{'photon.rms_norm' op expected eps (0) to be positive}}
  %0 = photon.rms_norm %x, %w {eps = 0.0 : f32} : (tensor<?x?x128xf32>, tensor<128xf32>) -> tensor<?x?x128xf32>
  return
}

// -----

func.func @rms_norm_result_rank(%x: tensor<?x?x128xf32>, %w: tensor<128xf32>) {
  // expected-error @+1 {{'photon.rms_norm' op expected result rank (2) to equal x rank (3)}}
  %0 = photon.rms_norm %x, %w {eps = 1.0e-05 : f32} : (tensor<?x?x128xf32>, tensor<128xf32>) -> tensor<?x128xf32>
  return
}

// -----

func.func @rms_norm_result_dim(%x: tensor<2x?x128xf32>, %w: tensor<128xf32>) {
  // expected-error @+1 {{'photon.rms_norm' op expected result dimension 0 (3) to equal x dimension 0 (2)}}
  %0 = photon.rms_norm %x, %w {eps = 1.0e-05 : f32} : (tensor<2x?x128xf32>, tensor<128xf32>) -> tensor<3x?x128xf32>
  return
}

// -----

func.func @rms_norm_elem(%x: tensor<?x128xf32>, %w: tensor<128xf16>) {
  // expected-error @+1 {{'photon.rms_norm' op requires the same element type for all operands and results}}
  %0 = photon.rms_norm %x, %w {eps = 1.0e-05 : f32} : (tensor<?x128xf32>, tensor<128xf16>) -> tensor<?x128xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// photon.linear
//===----------------------------------------------------------------------===//

func.func @linear_k(%x: tensor<?x?x128xf32>, %w: tensor<64x96xf32>) {
  // expected-error @+1 {{'photon.linear' op expected weight input size (w dimension 1) (96) to equal x width (128)}}
  %0 = photon.linear %x, %w : (tensor<?x?x128xf32>, tensor<64x96xf32>) -> tensor<?x?x64xf32>
  return
}

// -----

func.func @linear_bias(%x: tensor<?x?x128xf32>, %w: tensor<64x128xf32>, %b: tensor<128xf32>) {
  // expected-error @+1 {{'photon.linear' op expected bias size (128) to equal weight output size (w dimension 0) (64)}}
  %0 = photon.linear %x, %w, %b : (tensor<?x?x128xf32>, tensor<64x128xf32>, tensor<128xf32>) -> tensor<?x?x64xf32>
  return
}

// -----

func.func @linear_rank(%x: tensor<?x?x128xf32>, %w: tensor<64x128xf32>) {
  // expected-error @+1 {{'photon.linear' op expected result rank (2) to equal x rank (3)}}
  %0 = photon.linear %x, %w : (tensor<?x?x128xf32>, tensor<64x128xf32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @linear_lead(%x: tensor<2x8x128xf32>, %w: tensor<64x128xf32>) {
  // expected-error @+1 {{'photon.linear' op expected result dimension 1 (4) to equal x dimension 1 (8)}}
  %0 = photon.linear %x, %w : (tensor<2x8x128xf32>, tensor<64x128xf32>) -> tensor<2x4x64xf32>
  return
}

// -----

func.func @linear_n(%x: tensor<?x?x128xf32>, %w: tensor<64x128xf32>) {
  // expected-error @+1 {{'photon.linear' op expected result width (128) to equal weight output size (w dimension 0) (64)}}
  %0 = photon.linear %x, %w : (tensor<?x?x128xf32>, tensor<64x128xf32>) -> tensor<?x?x128xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// photon.rope
//===----------------------------------------------------------------------===//

func.func @rope_odd(%x: tensor<?x?x4x33xf32>) {
  // expected-error @+1 {{'photon.rope' op expected an even head dim, got 33}}
  %0 = photon.rope %x {theta = 1.0e+04 : f32} : (tensor<?x?x4x33xf32>) -> tensor<?x?x4x33xf32>
  return
}

// -----

func.func @rope_offsets(%x: tensor<2x?x4x32xf32>, %off: tensor<3xi32>) {
  // expected-error @+1 {{'photon.rope' op expected offsets size (3) to equal batch (2)}}
  %0 = photon.rope %x, %off {theta = 1.0e+04 : f32} : (tensor<2x?x4x32xf32>, tensor<3xi32>) -> tensor<2x?x4x32xf32>
  return
}

// -----

func.func @rope_theta(%x: tensor<?x?x4x32xf32>) {
  // expected-error @+1 {{'photon.rope' op expected theta (-1) to be positive}}
  %0 = photon.rope %x {theta = -1.0 : f32} : (tensor<?x?x4x32xf32>) -> tensor<?x?x4x32xf32>
  return
}

// -----

func.func @rope_elem(%x: tensor<?x?x4x32xf32>) {
  // expected-error @+1 {{'photon.rope' op expected result element type ('f16') to equal x's ('f32')}}
  %0 = photon.rope %x {theta = 1.0e+04 : f32} : (tensor<?x?x4x32xf32>) -> tensor<?x?x4x32xf16>
  return
}

// -----

func.func @rope_shape(%x: tensor<?x8x4x32xf32>) {
  // expected-error @+1 {{'photon.rope' op expected result dimension 1 (7) to equal x dimension 1 (8)}}
  %0 = photon.rope %x {theta = 1.0e+04 : f32} : (tensor<?x8x4x32xf32>) -> tensor<?x7x4x32xf32>
  return
}

// -----

func.func @rope_offsets_type(%x: tensor<?x?x4x32xf32>, %off: tensor<?xi64>) {
  // expected-error @+1 {{'photon.rope' op operand #1 must be 1D tensor of 32-bit signless integer values}}
  %0 = photon.rope %x, %off {theta = 1.0e+04 : f32} : (tensor<?x?x4x32xf32>, tensor<?xi64>) -> tensor<?x?x4x32xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// photon.causal_attention (shared attention shape rules)
//===----------------------------------------------------------------------===//

func.func @attn_kv(%q: tensor<?x?x4x32xf32>, %k: tensor<?x?x2x32xf32>, %v: tensor<?x?x4x32xf32>) {
  // expected-error @+1 {{'photon.causal_attention' op expected value heads (4) to equal key heads (2)}}
  %0 = photon.causal_attention %q, %k, %v {scale = 0.17 : f32} : (tensor<?x?x4x32xf32>, tensor<?x?x2x32xf32>, tensor<?x?x4x32xf32>) -> tensor<?x?x4x32xf32>
  return
}

// -----

func.func @attn_batch(%q: tensor<2x?x4x32xf32>, %k: tensor<3x?x4x32xf32>) {
  // expected-error @+1 {{'photon.causal_attention' op expected key batch (3) to equal query batch (2)}}
  %0 = photon.causal_attention %q, %k, %k {scale = 0.17 : f32} : (tensor<2x?x4x32xf32>, tensor<3x?x4x32xf32>, tensor<3x?x4x32xf32>) -> tensor<2x?x4x32xf32>
  return
}

// -----

func.func @attn_len(%q: tensor<?x8x4x32xf32>, %k: tensor<?x6x4x32xf32>) {
  // expected-error @+1 {{'photon.causal_attention' op expected key length (6) to equal query length (8)}}
  %0 = photon.causal_attention %q, %k, %k {scale = 0.17 : f32} : (tensor<?x8x4x32xf32>, tensor<?x6x4x32xf32>, tensor<?x6x4x32xf32>) -> tensor<?x8x4x32xf32>
  return
}

// -----

func.func @attn_hd(%q: tensor<?x?x4x32xf32>, %k: tensor<?x?x4x16xf32>) {
  // expected-error @+1 {{'photon.causal_attention' op expected key head dim (16) to equal query head dim (32)}}
  %0 = photon.causal_attention %q, %k, %k {scale = 0.17 : f32} : (tensor<?x?x4x32xf32>, tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>) -> tensor<?x?x4x32xf32>
  return
}

// -----

func.func @attn_gqa(%q: tensor<?x?x6x32xf32>, %k: tensor<?x?x4x32xf32>) {
  // expected-error @+1 {{'photon.causal_attention' op expected query heads (6) to be a multiple of key/value heads (4)}}
  %0 = photon.causal_attention %q, %k, %k {scale = 0.17 : f32} : (tensor<?x?x6x32xf32>, tensor<?x?x4x32xf32>, tensor<?x?x4x32xf32>) -> tensor<?x?x6x32xf32>
  return
}

// -----

func.func @attn_result(%q: tensor<?x?x4x32xf32>, %k: tensor<?x?x2x32xf32>) {
  // expected-error @+1 {{'photon.causal_attention' op expected result dimension 2 (2) to equal q dimension 2 (4)}}
  %0 = photon.causal_attention %q, %k, %k {scale = 0.17 : f32} : (tensor<?x?x4x32xf32>, tensor<?x?x2x32xf32>, tensor<?x?x2x32xf32>) -> tensor<?x?x2x32xf32>
  return
}

// -----

func.func @attn_rank(%q: tensor<?x?x128xf32>) {
  // expected-error @+1 {{'photon.causal_attention' op operand #0 must be 4D tensor of floating-point values}}
  %0 = photon.causal_attention %q, %q, %q {scale = 0.17 : f32} : (tensor<?x?x128xf32>, tensor<?x?x128xf32>, tensor<?x?x128xf32>) -> tensor<?x?x128xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// photon.bounded_attention
//===----------------------------------------------------------------------===//

func.func @bounded_prefix(%q: tensor<?x5x4x32xf32>) {
  // expected-error @+1 {{'photon.bounded_attention' op expected prefix (0) to be positive}}
  %0 = photon.bounded_attention %q, %q, %q {prefix = 0 : i64, chunk = 4 : i64, scale = 0.17 : f32} : (tensor<?x5x4x32xf32>, tensor<?x5x4x32xf32>, tensor<?x5x4x32xf32>) -> tensor<?x5x4x32xf32>
  return
}

// -----

func.func @bounded_chunk(%q: tensor<?x5x4x32xf32>) {
  // expected-error @+1 {{'photon.bounded_attention' op expected chunk (0) to be positive}}
  %0 = photon.bounded_attention %q, %q, %q {prefix = 2 : i64, chunk = 0 : i64, scale = 0.17 : f32} : (tensor<?x5x4x32xf32>, tensor<?x5x4x32xf32>, tensor<?x5x4x32xf32>) -> tensor<?x5x4x32xf32>
  return
}

// -----

func.func @bounded_window(%q: tensor<?x6x4x32xf32>) {
  // expected-error @+1 {{'photon.bounded_attention' op expected window length (6) to be at most prefix + chunk - 1 (5)}}
  %0 = photon.bounded_attention %q, %q, %q {prefix = 2 : i64, chunk = 4 : i64, scale = 0.17 : f32} : (tensor<?x6x4x32xf32>, tensor<?x6x4x32xf32>, tensor<?x6x4x32xf32>) -> tensor<?x6x4x32xf32>
  return
}

// -----

func.func @bounded_gqa(%q: tensor<?x5x4x32xf32>, %k: tensor<?x5x3x32xf32>) {
  // expected-error @+1 {{'photon.bounded_attention' op expected query heads (4) to be a multiple of key/value heads (3)}}
  %0 = photon.bounded_attention %q, %k, %k {prefix = 2 : i64, chunk = 4 : i64, scale = 0.17 : f32} : (tensor<?x5x4x32xf32>, tensor<?x5x3x32xf32>, tensor<?x5x3x32xf32>) -> tensor<?x5x4x32xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// photon.swiglu
//===----------------------------------------------------------------------===//

func.func @swiglu_gate(%x: tensor<?x128xf32>, %g: tensor<352x64xf32>, %u: tensor<352x128xf32>, %d: tensor<128x352xf32>) {
  // expected-error @+1 {{'photon.swiglu' op expected w_gate dimension 1 (64) to equal x width (128)}}
  %0 = photon.swiglu %x, %g, %u, %d : (tensor<?x128xf32>, tensor<352x64xf32>, tensor<352x128xf32>, tensor<128x352xf32>) -> tensor<?x128xf32>
  return
}

// -----

func.func @swiglu_up0(%x: tensor<?x128xf32>, %g: tensor<352x128xf32>, %u: tensor<256x128xf32>, %d: tensor<128x352xf32>) {
  // expected-error @+1 {{'photon.swiglu' op expected w_up dimension 0 (256) to equal w_gate dimension 0 (ffn size) (352)}}
  %0 = photon.swiglu %x, %g, %u, %d : (tensor<?x128xf32>, tensor<352x128xf32>, tensor<256x128xf32>, tensor<128x352xf32>) -> tensor<?x128xf32>
  return
}

// -----

func.func @swiglu_up1(%x: tensor<?x128xf32>, %g: tensor<352x128xf32>, %u: tensor<352x64xf32>, %d: tensor<128x352xf32>) {
  // expected-error @+1 {{'photon.swiglu' op expected w_up dimension 1 (64) to equal x width (128)}}
  %0 = photon.swiglu %x, %g, %u, %d : (tensor<?x128xf32>, tensor<352x128xf32>, tensor<352x64xf32>, tensor<128x352xf32>) -> tensor<?x128xf32>
  return
}

// -----

func.func @swiglu_down0(%x: tensor<?x128xf32>, %g: tensor<352x128xf32>, %u: tensor<352x128xf32>, %d: tensor<64x352xf32>) {
  // expected-error @+1 {{'photon.swiglu' op expected w_down dimension 0 (64) to equal x width (128)}}
  %0 = photon.swiglu %x, %g, %u, %d : (tensor<?x128xf32>, tensor<352x128xf32>, tensor<352x128xf32>, tensor<64x352xf32>) -> tensor<?x128xf32>
  return
}

// -----

func.func @swiglu_down1(%x: tensor<?x128xf32>, %g: tensor<352x128xf32>, %u: tensor<352x128xf32>, %d: tensor<128x256xf32>) {
  // expected-error @+1 {{'photon.swiglu' op expected w_down dimension 1 (256) to equal w_gate dimension 0 (ffn size) (352)}}
  %0 = photon.swiglu %x, %g, %u, %d : (tensor<?x128xf32>, tensor<352x128xf32>, tensor<352x128xf32>, tensor<128x256xf32>) -> tensor<?x128xf32>
  return
}

// -----

func.func @swiglu_0d(%x: tensor<f32>, %g: tensor<1x1xf32>) {
  // expected-error @+1 {{'photon.swiglu' op expected x to have rank >= 1, got a 0-d tensor}}
  %0 = photon.swiglu %x, %g, %g, %g : (tensor<f32>, tensor<1x1xf32>, tensor<1x1xf32>, tensor<1x1xf32>) -> tensor<f32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// photon.chunk
//===----------------------------------------------------------------------===//

func.func @chunk_size(%x: tensor<?x?x32xf32>) {
  // expected-error @+1 {{'photon.chunk' op expected chunk size (0) to be positive}}
  %0 = photon.chunk %x {size = 0 : i64} : tensor<?x?x32xf32> -> tensor<?x?x32xf32>
  return
}

// -----

func.func @chunk_batch(%x: tensor<2x?x32xf32>) {
  // expected-error @+1 {{'photon.chunk' op expected result batch (3) to equal operand batch (2)}}
  %0 = photon.chunk %x {size = 4 : i64} : tensor<2x?x32xf32> -> tensor<3x?x128xf32>
  return
}

// -----

func.func @chunk_divide(%x: tensor<?x10x32xf32>) {
  // expected-error @+1 {{'photon.chunk' op expected chunk size (4) to divide stream length (10)}}
  %0 = photon.chunk %x {size = 4 : i64} : tensor<?x10x32xf32> -> tensor<?x?x128xf32>
  return
}

// -----

func.func @chunk_length(%x: tensor<?x16x32xf32>) {
  // expected-error @+1 {{'photon.chunk' op expected result length (3) to equal stream length / chunk size (4)}}
  %0 = photon.chunk %x {size = 4 : i64} : tensor<?x16x32xf32> -> tensor<?x3x128xf32>
  return
}

// -----

func.func @chunk_width(%x: tensor<?x?x32xf32>) {
  // expected-error @+1 {{'photon.chunk' op expected result width (100) to equal chunk size * width (128)}}
  %0 = photon.chunk %x {size = 4 : i64} : tensor<?x?x32xf32> -> tensor<?x?x100xf32>
  return
}

// -----

func.func @chunk_rate(%x: tensor<?x?x32xf32, #photon.stream<level = 0, rate = 1>>) {
  // expected-error @+1 {{'photon.chunk' op expected result stream rate (8) to equal operand rate (1) * chunk size (4) = 4}}
  %0 = photon.chunk %x {size = 4 : i64} : tensor<?x?x32xf32, #photon.stream<level = 0, rate = 1>> -> tensor<?x?x128xf32, #photon.stream<level = 1, rate = 8>>
  return
}

// -----

func.func @chunk_level(%x: tensor<?x?x32xf32, #photon.stream<level = 1, rate = 1>>) {
  // expected-error @+1 {{'photon.chunk' op expected result stream level (1) to be above the operand's (1)}}
  %0 = photon.chunk %x {size = 4 : i64} : tensor<?x?x32xf32, #photon.stream<level = 1, rate = 1>> -> tensor<?x?x128xf32, #photon.stream<level = 1, rate = 4>>
  return
}

// -----

//===----------------------------------------------------------------------===//
// photon.chunk_compress
//===----------------------------------------------------------------------===//

func.func @cc_divide(%x: tensor<?x6x128xf32>, %nw: tensor<512xf32>, %w: tensor<128x512xf32>, %b: tensor<128xf32>) {
  // expected-error @+1 {{'photon.chunk_compress' op expected chunk size (4) to divide stream length (6)}}
  %0 = photon.chunk_compress %x, %nw, %w, %b {size = 4 : i64, eps = 1.0e-05 : f32} : (tensor<?x6x128xf32>, tensor<512xf32>, tensor<128x512xf32>, tensor<128xf32>) -> tensor<?x?x128xf32>
  return
}

// -----

func.func @cc_norm(%x: tensor<?x?x128xf32>, %nw: tensor<128xf32>, %w: tensor<128x512xf32>, %b: tensor<128xf32>) {
  // expected-error @+1 {{'photon.chunk_compress' op expected norm_w size (128) to equal chunk size * width (512)}}
  %0 = photon.chunk_compress %x, %nw, %w, %b {size = 4 : i64, eps = 1.0e-05 : f32} : (tensor<?x?x128xf32>, tensor<128xf32>, tensor<128x512xf32>, tensor<128xf32>) -> tensor<?x?x128xf32>
  return
}

// -----

func.func @cc_w(%x: tensor<?x?x128xf32>, %nw: tensor<512xf32>, %w: tensor<128x128xf32>, %b: tensor<128xf32>) {
  // expected-error @+1 {{'photon.chunk_compress' op expected w dimension 1 (128) to equal chunk size * width (512)}}
  %0 = photon.chunk_compress %x, %nw, %w, %b {size = 4 : i64, eps = 1.0e-05 : f32} : (tensor<?x?x128xf32>, tensor<512xf32>, tensor<128x128xf32>, tensor<128xf32>) -> tensor<?x?x128xf32>
  return
}

// -----

func.func @cc_bias(%x: tensor<?x?x128xf32>, %nw: tensor<512xf32>, %w: tensor<128x512xf32>, %b: tensor<512xf32>) {
  // expected-error @+1 {{'photon.chunk_compress' op expected bias size (512) to equal w dimension 0 (128)}}
  %0 = photon.chunk_compress %x, %nw, %w, %b {size = 4 : i64, eps = 1.0e-05 : f32} : (tensor<?x?x128xf32>, tensor<512xf32>, tensor<128x512xf32>, tensor<512xf32>) -> tensor<?x?x128xf32>
  return
}

// -----

func.func @cc_result(%x: tensor<?x?x128xf32>, %nw: tensor<512xf32>, %w: tensor<128x512xf32>, %b: tensor<128xf32>) {
  // expected-error @+1 {{'photon.chunk_compress' op expected result width (512) to equal w dimension 0 (128)}}
  %0 = photon.chunk_compress %x, %nw, %w, %b {size = 4 : i64, eps = 1.0e-05 : f32} : (tensor<?x?x128xf32>, tensor<512xf32>, tensor<128x512xf32>, tensor<128xf32>) -> tensor<?x?x512xf32>
  return
}

// -----

func.func @cc_eps(%x: tensor<?x?x128xf32>, %nw: tensor<512xf32>, %w: tensor<128x512xf32>, %b: tensor<128xf32>) {
  // expected-error @+1 {{'photon.chunk_compress' op expected eps (-1) to be positive}}
  %0 = photon.chunk_compress %x, %nw, %w, %b {size = 4 : i64, eps = -1.0 : f32} : (tensor<?x?x128xf32>, tensor<512xf32>, tensor<128x512xf32>, tensor<128xf32>) -> tensor<?x?x128xf32>
  return
}

// -----

func.func @cc_rate(%x: tensor<?x?x128xf32, #photon.stream<level = 1, rate = 4>>, %nw: tensor<512xf32>, %w: tensor<128x512xf32>, %b: tensor<128xf32>) {
  // expected-error @+1 {{'photon.chunk_compress' op expected result stream rate (4) to equal operand rate (4) * chunk size (4) = 16}}
  %0 = photon.chunk_compress %x, %nw, %w, %b {size = 4 : i64, eps = 1.0e-05 : f32} : (tensor<?x?x128xf32, #photon.stream<level = 1, rate = 4>>, tensor<512xf32>, tensor<128x512xf32>, tensor<128xf32>) -> tensor<?x?x128xf32, #photon.stream<level = 2, rate = 4>>
  return
}

// -----

//===----------------------------------------------------------------------===//
// photon.expand
//===----------------------------------------------------------------------===//

func.func @expand_r(%x: tensor<?x?x128xf32>, %w: tensor<256x128xf32>, %b: tensor<256xf32>) {
  // expected-error @+1 {{'photon.expand' op expected r (0) to be positive}}
  %0 = photon.expand %x, %w, %b {r = 0 : i64} : (tensor<?x?x128xf32>, tensor<256x128xf32>, tensor<256xf32>) -> tensor<?x?x2x128xf32>
  return
}

// -----

func.func @expand_w0(%x: tensor<?x?x128xf32>, %w: tensor<128x128xf32>, %b: tensor<256xf32>) {
  // expected-error @+1 {{'photon.expand' op expected w dimension 0 (128) to equal r * width (256)}}
  %0 = photon.expand %x, %w, %b {r = 2 : i64} : (tensor<?x?x128xf32>, tensor<128x128xf32>, tensor<256xf32>) -> tensor<?x?x2x128xf32>
  return
}

// -----

func.func @expand_w1(%x: tensor<?x?x128xf32>, %w: tensor<256x64xf32>, %b: tensor<256xf32>) {
  // expected-error @+1 {{'photon.expand' op expected w dimension 1 (64) to equal width (128)}}
  %0 = photon.expand %x, %w, %b {r = 2 : i64} : (tensor<?x?x128xf32>, tensor<256x64xf32>, tensor<256xf32>) -> tensor<?x?x2x128xf32>
  return
}

// -----

func.func @expand_bias(%x: tensor<?x?x128xf32>, %w: tensor<256x128xf32>, %b: tensor<128xf32>) {
  // expected-error @+1 {{'photon.expand' op expected bias size (128) to equal r * width (256)}}
  %0 = photon.expand %x, %w, %b {r = 2 : i64} : (tensor<?x?x128xf32>, tensor<256x128xf32>, tensor<128xf32>) -> tensor<?x?x2x128xf32>
  return
}

// -----

func.func @expand_batch(%x: tensor<2x?x128xf32>, %w: tensor<256x128xf32>, %b: tensor<256xf32>) {
  // expected-error @+1 {{'photon.expand' op expected result batch (1) to equal x batch (2)}}
  %0 = photon.expand %x, %w, %b {r = 2 : i64} : (tensor<2x?x128xf32>, tensor<256x128xf32>, tensor<256xf32>) -> tensor<1x?x2x128xf32>
  return
}

// -----

func.func @expand_length(%x: tensor<?x8x128xf32>, %w: tensor<256x128xf32>, %b: tensor<256xf32>) {
  // expected-error @+1 {{'photon.expand' op expected result length (16) to equal x length (8)}}
  %0 = photon.expand %x, %w, %b {r = 2 : i64} : (tensor<?x8x128xf32>, tensor<256x128xf32>, tensor<256xf32>) -> tensor<?x16x2x128xf32>
  return
}

// -----

func.func @expand_rdim(%x: tensor<?x?x128xf32>, %w: tensor<256x128xf32>, %b: tensor<256xf32>) {
  // expected-error @+1 {{'photon.expand' op expected result dimension 2 (1) to equal r (2)}}
  %0 = photon.expand %x, %w, %b {r = 2 : i64} : (tensor<?x?x128xf32>, tensor<256x128xf32>, tensor<256xf32>) -> tensor<?x?x1x128xf32>
  return
}

// -----

func.func @expand_width(%x: tensor<?x?x128xf32>, %w: tensor<256x128xf32>, %b: tensor<256xf32>) {
  // expected-error @+1 {{'photon.expand' op expected result width (256) to equal width (128)}}
  %0 = photon.expand %x, %w, %b {r = 2 : i64} : (tensor<?x?x128xf32>, tensor<256x128xf32>, tensor<256xf32>) -> tensor<?x?x2x256xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// photon.shift
//===----------------------------------------------------------------------===//

func.func @shift_start(%x: tensor<?x?x128xf32>, %s: tensor<64xf32>) {
  // expected-error @+1 {{'photon.shift' op expected start latent size (64) to equal x width (128)}}
  %0 = photon.shift %x, %s : (tensor<?x?x128xf32>, tensor<64xf32>) -> tensor<?x?x128xf32>
  return
}

// -----

func.func @shift_result(%x: tensor<?x4x128xf32>, %s: tensor<128xf32>) {
  // expected-error @+1 {{'photon.shift' op expected result dimension 1 (5) to equal x dimension 1 (4)}}
  %0 = photon.shift %x, %s : (tensor<?x4x128xf32>, tensor<128xf32>) -> tensor<?x5x128xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// photon.lm_head
//===----------------------------------------------------------------------===//

func.func @lm_head_w(%x: tensor<?x?x128xf32>, %w: tensor<256x64xf32>) {
  // expected-error @+1 {{'photon.lm_head' op expected w dimension 1 (64) to equal x width (128)}}
  %0 = photon.lm_head %x, %w : (tensor<?x?x128xf32>, tensor<256x64xf32>) -> tensor<?x?x256xf32>
  return
}

// -----

func.func @lm_head_lead(%x: tensor<?x?x128xf32>, %w: tensor<256x128xf32>) {
  // expected-error @+1 {{'photon.lm_head' op expected result rank (2) to equal x rank (3)}}
  %0 = photon.lm_head %x, %w : (tensor<?x?x128xf32>, tensor<256x128xf32>) -> tensor<?x256xf32>
  return
}

// -----

func.func @lm_head_vocab(%x: tensor<?x?x128xf32>, %w: tensor<256x128xf32>) {
  // expected-error @+1 {{'photon.lm_head' op expected result width (128) to equal vocabulary size (w dimension 0) (256)}}
  %0 = photon.lm_head %x, %w : (tensor<?x?x128xf32>, tensor<256x128xf32>) -> tensor<?x?x128xf32>
  return
}

// -----

func.func @lm_head_0d(%x: tensor<f32>, %w: tensor<256x1xf32>) {
  // expected-error @+1 {{'photon.lm_head' op expected x to have rank >= 1, got a 0-d tensor}}
  %0 = photon.lm_head %x, %w : (tensor<f32>, tensor<256x1xf32>) -> tensor<256xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// photon.cache_bind
//===----------------------------------------------------------------------===//

func.func @bind_layers(%p: memref<?x3x2x16x4x32xf32>, %t: memref<?x?xi32>, %l: memref<?xi32>) {
  // expected-error @+1 {{'photon.cache_bind' op expected pool dimension 1 (layers) (3) to equal the cache's layers (2)}}
  %c = photon.cache_bind %p, %t, %l : (memref<?x3x2x16x4x32xf32>, memref<?x?xi32>, memref<?xi32>) -> !photon.kv_cache<level = 1, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>
  return
}

// -----

func.func @bind_kv(%p: memref<?x2x1x16x4x32xf32>, %t: memref<?x?xi32>, %l: memref<?xi32>) {
  // expected-error @+1 {{'photon.cache_bind' op expected pool dimension 2 (K/V) (1) to equal the cache's K/V (2)}}
  %c = photon.cache_bind %p, %t, %l : (memref<?x2x1x16x4x32xf32>, memref<?x?xi32>, memref<?xi32>) -> !photon.kv_cache<level = 1, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>
  return
}

// -----

func.func @bind_bs(%p: memref<?x2x2x8x4x32xf32>, %t: memref<?x?xi32>, %l: memref<?xi32>) {
  // expected-error @+1 {{'photon.cache_bind' op expected pool dimension 3 (block_size) (8) to equal the cache's block_size (16)}}
  %c = photon.cache_bind %p, %t, %l : (memref<?x2x2x8x4x32xf32>, memref<?x?xi32>, memref<?xi32>) -> !photon.kv_cache<level = 1, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>
  return
}

// -----

func.func @bind_heads(%p: memref<?x2x2x16x2x32xf32>, %t: memref<?x?xi32>, %l: memref<?xi32>) {
  // expected-error @+1 {{'photon.cache_bind' op expected pool dimension 4 (kv_heads) (2) to equal the cache's kv_heads (4)}}
  %c = photon.cache_bind %p, %t, %l : (memref<?x2x2x16x2x32xf32>, memref<?x?xi32>, memref<?xi32>) -> !photon.kv_cache<level = 1, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>
  return
}

// -----

func.func @bind_hd(%p: memref<?x2x2x16x4x64xf32>, %t: memref<?x?xi32>, %l: memref<?xi32>) {
  // expected-error @+1 {{'photon.cache_bind' op expected pool dimension 5 (head_dim) (64) to equal the cache's head_dim (32)}}
  %c = photon.cache_bind %p, %t, %l : (memref<?x2x2x16x4x64xf32>, memref<?x?xi32>, memref<?xi32>) -> !photon.kv_cache<level = 1, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>
  return
}

// -----

func.func @bind_elem(%p: memref<?x2x2x16x4x32xf16>, %t: memref<?x?xi32>, %l: memref<?xi32>) {
  // expected-error @+1 {{'photon.cache_bind' op expected pool element type ('f16') to equal the cache element type ('f32')}}
  %c = photon.cache_bind %p, %t, %l : (memref<?x2x2x16x4x32xf16>, memref<?x?xi32>, memref<?xi32>) -> !photon.kv_cache<level = 1, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>
  return
}

// -----

func.func @bind_rows(%p: memref<?x2x2x16x4x32xf32>, %t: memref<3x?xi32>, %l: memref<2xi32>) {
  // expected-error @+1 {{'photon.cache_bind' op expected block table rows (3) to equal lens size (2)}}
  %c = photon.cache_bind %p, %t, %l : (memref<?x2x2x16x4x32xf32>, memref<3x?xi32>, memref<2xi32>) -> !photon.kv_cache<level = 1, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// photon.kv_append
//===----------------------------------------------------------------------===//

func.func @append_layer(%c: !photon.kv_cache<level = 1, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>, %k: tensor<?x?x4x32xf32>) {
  // expected-error @+1 {{'photon.kv_append' op expected layer (2) to be in [0, 2) for a cache of 2 layers}}
  photon.kv_append %c, %k, %k {layer = 2 : i64} : !photon.kv_cache<level = 1, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>, tensor<?x?x4x32xf32>, tensor<?x?x4x32xf32>
  return
}

// -----

func.func @append_v(%c: !photon.kv_cache<level = 1, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>, %k: tensor<?x3x4x32xf32>, %v: tensor<?x2x4x32xf32>) {
  // expected-error @+1 {{'photon.kv_append' op expected value length (2) to equal key length (3)}}
  photon.kv_append %c, %k, %v {layer = 0 : i64} : !photon.kv_cache<level = 1, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>, tensor<?x3x4x32xf32>, tensor<?x2x4x32xf32>
  return
}

// -----

func.func @append_heads(%c: !photon.kv_cache<level = 1, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>, %k: tensor<?x?x8x32xf32>) {
  // expected-error @+1 {{'photon.kv_append' op expected key heads (8) to equal the cache's kv_heads (4)}}
  photon.kv_append %c, %k, %k {layer = 0 : i64} : !photon.kv_cache<level = 1, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>, tensor<?x?x8x32xf32>, tensor<?x?x8x32xf32>
  return
}

// -----

func.func @append_hd(%c: !photon.kv_cache<level = 1, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>, %k: tensor<?x?x4x16xf32>) {
  // expected-error @+1 {{'photon.kv_append' op expected key head dim (16) to equal the cache's head_dim (32)}}
  photon.kv_append %c, %k, %k {layer = 0 : i64} : !photon.kv_cache<level = 1, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>, tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>
  return
}

// -----

func.func @append_elem(%c: !photon.kv_cache<level = 1, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>, %k: tensor<?x?x4x32xf32>, %v: tensor<?x?x4x32xf16>) {
  // expected-error @+1 {{'photon.kv_append' op expected key and value element types to match, got 'f32' and 'f16'}}
  photon.kv_append %c, %k, %v {layer = 0 : i64} : !photon.kv_cache<level = 1, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>, tensor<?x?x4x32xf32>, tensor<?x?x4x32xf16>
  return
}

// -----

//===----------------------------------------------------------------------===//
// photon.cached_attention
//===----------------------------------------------------------------------===//

func.func @cached_layer(%c: !photon.kv_cache<level = 1, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>, %q: tensor<?x?x4x32xf32>) {
  // expected-error @+1 {{'photon.cached_attention' op expected layer (-1) to be in [0, 2) for a cache of 2 layers}}
  %0 = photon.cached_attention %c, %q {layer = -1 : i64, scale = 0.17 : f32} : !photon.kv_cache<level = 1, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>, tensor<?x?x4x32xf32> -> tensor<?x?x4x32xf32>
  return
}

// -----

func.func @cached_hd(%c: !photon.kv_cache<level = 1, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>, %q: tensor<?x?x4x64xf32>) {
  // expected-error @+1 {{'photon.cached_attention' op expected query head dim (64) to equal the cache's head_dim (32)}}
  %0 = photon.cached_attention %c, %q {layer = 0 : i64, scale = 0.17 : f32} : !photon.kv_cache<level = 1, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>, tensor<?x?x4x64xf32> -> tensor<?x?x4x64xf32>
  return
}

// -----

func.func @cached_gqa(%c: !photon.kv_cache<level = 1, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>, %q: tensor<?x?x6x32xf32>) {
  // expected-error @+1 {{'photon.cached_attention' op expected query heads (6) to be a multiple of the cache's kv_heads (4)}}
  %0 = photon.cached_attention %c, %q {layer = 0 : i64, scale = 0.17 : f32} : !photon.kv_cache<level = 1, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>, tensor<?x?x6x32xf32> -> tensor<?x?x6x32xf32>
  return
}

// -----

func.func @cached_elem(%c: !photon.kv_cache<level = 1, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>, %q: tensor<?x?x4x32xf32>) {
  // expected-error @+1 {{'photon.cached_attention' op expected result element type ('f16') to equal the query's ('f32')}}
  %0 = photon.cached_attention %c, %q {layer = 0 : i64, scale = 0.17 : f32} : !photon.kv_cache<level = 1, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>, tensor<?x?x4x32xf32> -> tensor<?x?x4x32xf16>
  return
}

// -----

func.func @cached_shape(%c: !photon.kv_cache<level = 1, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>, %q: tensor<?x1x4x32xf32>) {
  // expected-error @+1 {{'photon.cached_attention' op expected result dimension 1 (2) to equal q dimension 1 (1)}}
  %0 = photon.cached_attention %c, %q {layer = 0 : i64, scale = 0.17 : f32} : !photon.kv_cache<level = 1, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>, tensor<?x1x4x32xf32> -> tensor<?x2x4x32xf32>
  return
}
