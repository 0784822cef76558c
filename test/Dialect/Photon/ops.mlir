// Every photon op in its custom form with the static shapes of the tiny model
// (D = 128, 4 heads x 32, GQA with 2 KV heads, F = 352, C = (4, 4), R = 2, V = 256),
// and with dynamic dimensions: all verifiers accept them.
// RUN: photon-opt %s -verify-diagnostics | FileCheck %s

module attributes {photon.hierarchy = #photon.hierarchy<family = "photon", levels = 2, chunk_sizes = [4, 4], prefix = 2, width = 128, vocab = 256>} {

// Level-1 encoder layer on a static [B = 2, M = 16] stream.
// CHECK-LABEL: func.func @encoder_layer
func.func @encoder_layer(%x: tensor<2x16x128xf32, #photon.stream<level = 1, rate = 4>>) -> tensor<2x16x128xf32> {
  %nw = photon.weight "enc1.layers.0.attn_norm" : tensor<128xf32>
  // CHECK: photon.rms_norm
  %h = photon.rms_norm %x, %nw {eps = 1.0e-05 : f32} : (tensor<2x16x128xf32, #photon.stream<level = 1, rate = 4>>, tensor<128xf32>) -> tensor<2x16x128xf32>
  %wq = photon.weight "enc1.layers.0.wq" : tensor<128x128xf32>
  %wk = photon.weight "enc1.layers.0.wk" : tensor<64x128xf32>
  // CHECK: photon.linear %{{.+}}, %{{.+}} : (tensor<2x16x128xf32>, tensor<128x128xf32>) -> tensor<2x16x128xf32>
  %q = photon.linear %h, %wq : (tensor<2x16x128xf32>, tensor<128x128xf32>) -> tensor<2x16x128xf32>
  // CHECK: photon.linear %{{.+}}, %{{.+}} : (tensor<2x16x128xf32>, tensor<64x128xf32>) -> tensor<2x16x64xf32>
  %k = photon.linear %h, %wk : (tensor<2x16x128xf32>, tensor<64x128xf32>) -> tensor<2x16x64xf32>
  %q4 = tensor.expand_shape %q [[0], [1], [2, 3]] output_shape [2, 16, 4, 32] : tensor<2x16x128xf32> into tensor<2x16x4x32xf32>
  %k4 = tensor.expand_shape %k [[0], [1], [2, 3]] output_shape [2, 16, 2, 32] : tensor<2x16x64xf32> into tensor<2x16x2x32xf32>
  // CHECK: photon.rope
  %qr = photon.rope %q4 {theta = 1.0e+04 : f32} : (tensor<2x16x4x32xf32>) -> tensor<2x16x4x32xf32>
  %kr = photon.rope %k4 {theta = 1.0e+04 : f32} : (tensor<2x16x2x32xf32>) -> tensor<2x16x2x32xf32>
  // GQA: 4 query heads over 2 KV heads.
  // CHECK: photon.causal_attention %{{.+}}, %{{.+}}, %{{.+}} {scale = {{.+}} : f32} : (tensor<2x16x4x32xf32>, tensor<2x16x2x32xf32>, tensor<2x16x2x32xf32>) -> tensor<2x16x4x32xf32>
  %a = photon.causal_attention %qr, %kr, %kr {scale = 0.176776695 : f32} : (tensor<2x16x4x32xf32>, tensor<2x16x2x32xf32>, tensor<2x16x2x32xf32>) -> tensor<2x16x4x32xf32>
  %a3 = tensor.collapse_shape %a [[0], [1], [2, 3]] : tensor<2x16x4x32xf32> into tensor<2x16x128xf32>
  %wg = photon.weight "enc1.layers.0.w_gate" : tensor<352x128xf32>
  %wu = photon.weight "enc1.layers.0.w_up" : tensor<352x128xf32>
  %wd = photon.weight "enc1.layers.0.w_down" : tensor<128x352xf32>
  // CHECK: photon.swiglu
  %m = photon.swiglu %a3, %wg, %wu, %wd : (tensor<2x16x128xf32>, tensor<352x128xf32>, tensor<352x128xf32>, tensor<128x352xf32>) -> tensor<2x16x128xf32>
  return %m : tensor<2x16x128xf32>
}

// The bottom-up path and the converter on static streams: T = 64 tokens.
// CHECK-LABEL: func.func @bottom_up
func.func @bottom_up(%tokens: tensor<2x64xi32>) -> tensor<2x4x2x128xf32> {
  %emb = photon.weight "emb_enc" : tensor<256x32xf32>
  // CHECK: photon.embedding %{{.+}}, %{{.+}} : (tensor<256x32xf32>, tensor<2x64xi32>) -> tensor<2x64x32xf32, #photon.stream<level = 0, rate = 1>>
  %x0 = photon.embedding %emb, %tokens : (tensor<256x32xf32>, tensor<2x64xi32>) -> tensor<2x64x32xf32, #photon.stream<level = 0, rate = 1>>
  // CHECK: photon.chunk %{{.+}} {size = 4 : i64} : tensor<2x64x32xf32, #photon.stream<level = 0, rate = 1>> -> tensor<2x16x128xf32, #photon.stream<level = 1, rate = 4>>
  %x1 = photon.chunk %x0 {size = 4 : i64} : tensor<2x64x32xf32, #photon.stream<level = 0, rate = 1>> -> tensor<2x16x128xf32, #photon.stream<level = 1, rate = 4>>
  %nw = photon.weight "chunk2.norm" : tensor<512xf32>
  %w = photon.weight "chunk2.w" : tensor<128x512xf32>
  %b = photon.weight "chunk2.b" : tensor<128xf32>
  // CHECK: photon.chunk_compress {{.+}} -> tensor<2x4x128xf32, #photon.stream<level = 2, rate = 16>>
  %x2 = photon.chunk_compress %x1, %nw, %w, %b {size = 4 : i64, eps = 1.0e-05 : f32} : (tensor<2x16x128xf32, #photon.stream<level = 1, rate = 4>>, tensor<512xf32>, tensor<128x512xf32>, tensor<128xf32>) -> tensor<2x4x128xf32, #photon.stream<level = 2, rate = 16>>
  %s2 = photon.weight "start2" : tensor<128xf32>
  // CHECK: photon.shift
  %p2 = photon.shift %x2, %s2 : (tensor<2x4x128xf32, #photon.stream<level = 2, rate = 16>>, tensor<128xf32>) -> tensor<2x4x128xf32, #photon.stream<level = 2, rate = 16>>
  %uw = photon.weight "u2.w" : tensor<256x128xf32>
  %ub = photon.weight "u2.b" : tensor<256xf32>
  // CHECK: photon.expand {{.+}} {r = 2 : i64} {{.+}} -> tensor<2x4x2x128xf32>
  %u = photon.expand %p2, %uw, %ub {r = 2 : i64} : (tensor<2x4x128xf32, #photon.stream<level = 2, rate = 16>>, tensor<256x128xf32>, tensor<256xf32>) -> tensor<2x4x2x128xf32>
  return %u : tensor<2x4x2x128xf32>
}

// Token-decoder windows: N = 8 windows of R + C - 1 = 5 positions, and a shorter
// window of the free-running rollout (W = 3 <= 5); then the LM head.
// CHECK-LABEL: func.func @decoder_windows
func.func @decoder_windows(%q: tensor<8x5x4x32xf32>, %kv: tensor<8x5x4x32xf32>, %q3: tensor<?x3x4x32xf32>,
                           %h: tensor<8x4x128xf32>) -> (tensor<8x5x4x32xf32>, tensor<?x3x4x32xf32>, tensor<8x4x256xf32>) {
  // CHECK: photon.bounded_attention {{.+}} {chunk = 4 : i64, prefix = 2 : i64, scale = {{.+}} : f32} : (tensor<8x5x4x32xf32>
  %o = photon.bounded_attention %q, %kv, %kv {prefix = 2 : i64, chunk = 4 : i64, scale = 0.176776695 : f32} : (tensor<8x5x4x32xf32>, tensor<8x5x4x32xf32>, tensor<8x5x4x32xf32>) -> tensor<8x5x4x32xf32>
  // CHECK: photon.bounded_attention {{.+}} : (tensor<?x3x4x32xf32>
  %o3 = photon.bounded_attention %q3, %q3, %q3 {prefix = 2 : i64, chunk = 4 : i64, scale = 0.176776695 : f32} : (tensor<?x3x4x32xf32>, tensor<?x3x4x32xf32>, tensor<?x3x4x32xf32>) -> tensor<?x3x4x32xf32>
  %wout = photon.weight "lm_head" : tensor<256x128xf32>
  // CHECK: photon.lm_head %{{.+}}, %{{.+}} : (tensor<8x4x128xf32>, tensor<256x128xf32>) -> tensor<8x4x256xf32>
  %logits = photon.lm_head %h, %wout : (tensor<8x4x128xf32>, tensor<256x128xf32>) -> tensor<8x4x256xf32>
  return %o, %o3, %logits : tensor<8x5x4x32xf32>, tensor<?x3x4x32xf32>, tensor<8x4x256xf32>
}

// A decode step of the level-2 encoder over its paged cache (GQA: 4 over 2 heads),
// with positions from the valid lengths.
// CHECK-LABEL: func.func @encode_2_step
// CHECK-SAME: photon.stage = "encode_2"
func.func @encode_2_step(%pool: memref<?x2x2x16x2x32xf32>, %table: memref<?x?xi32>, %lens: memref<?xi32>,
                         %q: tensor<?x1x4x32xf32>, %k: tensor<?x1x2x32xf32>, %v: tensor<?x1x2x32xf32>,
                         %pos: tensor<?xi32>) -> tensor<?x1x4x32xf32>
    attributes {photon.stage = "encode_2", photon.level = 2 : i64} {
  // CHECK: %[[C:.+]] = photon.cache_bind
  %c = photon.cache_bind %pool, %table, %lens : (memref<?x2x2x16x2x32xf32>, memref<?x?xi32>, memref<?xi32>) -> !photon.kv_cache<level = 2, layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, element = f32>
  // CHECK: photon.rope %{{.+}}, %{{.+}}
  %qr = photon.rope %q, %pos {theta = 1.0e+04 : f32} : (tensor<?x1x4x32xf32>, tensor<?xi32>) -> tensor<?x1x4x32xf32>
  %kr = photon.rope %k, %pos {theta = 1.0e+04 : f32} : (tensor<?x1x2x32xf32>, tensor<?xi32>) -> tensor<?x1x2x32xf32>
  // CHECK: photon.kv_append %[[C]], %{{.+}}, %{{.+}} {layer = 1 : i64}
  photon.kv_append %c, %kr, %v {layer = 1 : i64} : !photon.kv_cache<level = 2, layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, element = f32>, tensor<?x1x2x32xf32>, tensor<?x1x2x32xf32>
  // CHECK: photon.cached_attention %[[C]], %{{.+}} {layer = 1 : i64, scale = {{.+}} : f32}
  %o = photon.cached_attention %c, %qr {layer = 1 : i64, scale = 0.176776695 : f32} : !photon.kv_cache<level = 2, layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, element = f32>, tensor<?x1x4x32xf32> -> tensor<?x1x4x32xf32>
  return %o : tensor<?x1x4x32xf32>
}

// Fully dynamic shapes everywhere (stage functions have dynamic batch and length).
// CHECK-LABEL: func.func @dynamic
func.func @dynamic(%x: tensor<?x?x?xf32>, %w: tensor<?x?xf32>, %v: tensor<?xf32>, %ids: tensor<?x?xi64>,
                   %a: tensor<?x?x?x?xf32>) -> (tensor<?x?x?xf32>, tensor<?x?x?x?xf32>) {
  %e = photon.embedding %w, %ids : (tensor<?x?xf32>, tensor<?x?xi64>) -> tensor<?x?x?xf32>
  %n = photon.rms_norm %e, %v {eps = 1.0e-05 : f32} : (tensor<?x?x?xf32>, tensor<?xf32>) -> tensor<?x?x?xf32>
  %l = photon.linear %n, %w, %v : (tensor<?x?x?xf32>, tensor<?x?xf32>, tensor<?xf32>) -> tensor<?x?x?xf32>
  %c = photon.chunk %l {size = 4 : i64} : tensor<?x?x?xf32> -> tensor<?x?x?xf32>
  %cc = photon.chunk_compress %c, %v, %w, %v {size = 4 : i64, eps = 1.0e-05 : f32} : (tensor<?x?x?xf32>, tensor<?xf32>, tensor<?x?xf32>, tensor<?xf32>) -> tensor<?x?x?xf32>
  %s = photon.shift %cc, %v : (tensor<?x?x?xf32>, tensor<?xf32>) -> tensor<?x?x?xf32>
  %m = photon.swiglu %s, %w, %w, %w : (tensor<?x?x?xf32>, tensor<?x?xf32>, tensor<?x?xf32>, tensor<?x?xf32>) -> tensor<?x?x?xf32>
  %h = photon.lm_head %m, %w : (tensor<?x?x?xf32>, tensor<?x?xf32>) -> tensor<?x?x?xf32>
  %u = photon.expand %h, %w, %v {r = 2 : i64} : (tensor<?x?x?xf32>, tensor<?x?xf32>, tensor<?xf32>) -> tensor<?x?x?x?xf32>
  %r = photon.rope %u {theta = 1.0e+04 : f32} : (tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32>
  %o = photon.causal_attention %r, %a, %a {scale = 1.0 : f32} : (tensor<?x?x?x?xf32>, tensor<?x?x?x?xf32>, tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32>
  %b = photon.bounded_attention %o, %a, %a {prefix = 2 : i64, chunk = 4 : i64, scale = 1.0 : f32} : (tensor<?x?x?x?xf32>, tensor<?x?x?x?xf32>, tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32>
  // CHECK: return
  return %h, %b : tensor<?x?x?xf32>, tensor<?x?x?x?xf32>
}

// Huge attribute values do not overflow the shape arithmetic of the verifiers.
// CHECK-LABEL: func.func @huge_attributes
func.func @huge_attributes(%x: tensor<?x?x4xf32>, %q: tensor<?x5x4x32xf32>) -> (tensor<?x?x?xf32>, tensor<?x5x4x32xf32>) {
  // CHECK: photon.chunk %{{.+}} {size = 4611686018427387904 : i64}
  %c = photon.chunk %x {size = 4611686018427387904 : i64} : tensor<?x?x4xf32> -> tensor<?x?x?xf32>
  // CHECK: photon.bounded_attention {{.+}}prefix = 9223372036854775807 : i64
  %o = photon.bounded_attention %q, %q, %q {prefix = 9223372036854775807 : i64, chunk = 4 : i64, scale = 1.0 : f32} : (tensor<?x5x4x32xf32>, tensor<?x5x4x32xf32>, tensor<?x5x4x32xf32>) -> tensor<?x5x4x32xf32>
  return %c, %o : tensor<?x?x?xf32>, tensor<?x5x4x32xf32>
}
}
