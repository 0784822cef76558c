// Every op, attribute and type in the generic form of docs/ir-contract.md survives
// parse -> print -> parse, through the custom form, the generic form and bytecode.
// RUN: photon-opt %s | photon-opt | FileCheck %s
// RUN: photon-opt %s --mlir-print-op-generic | photon-opt | FileCheck %s
// RUN: photon-opt %s -emit-bytecode | photon-opt | FileCheck %s
// Printing twice is a fixed point.
// RUN: photon-opt %s > %t.1.mlir && photon-opt %t.1.mlir > %t.2.mlir && diff %t.1.mlir %t.2.mlir

// CHECK: module attributes {photon.hierarchy = #photon.hierarchy<family = "photon", levels = 2, chunk_sizes = [4, 4], prefix = 2, width = 128, vocab = 256>}
module attributes {photon.hierarchy = #photon.hierarchy<family = "photon", levels = 2, chunk_sizes = [4, 4], prefix = 2, width = 128, vocab = 256>} {

// CHECK-LABEL: func.func @llama_pieces
// CHECK-SAME: attributes {photon.level = 1 : i64, photon.role = "encoder"}
func.func @llama_pieces(%x: tensor<?x?x128xf32>, %ids: tensor<?x?xi64>, %off: tensor<?xi32>) -> tensor<?x?x256xf32>
    attributes {photon.role = "encoder", photon.level = 1 : i64} {
  // CHECK: %[[T:.+]] = photon.weight "emb_dec" : tensor<256x128xf32>
  %t = "photon.weight"() {name = "emb_dec"} : () -> tensor<256x128xf32>
  // CHECK: photon.embedding %[[T]], %{{.+}} : (tensor<256x128xf32>, tensor<?x?xi64>) -> tensor<?x?x128xf32>
  %e = "photon.embedding"(%t, %ids) : (tensor<256x128xf32>, tensor<?x?xi64>) -> tensor<?x?x128xf32>
  %nw = "photon.weight"() {name = "norm"} : () -> tensor<128xf32>
  // CHECK: photon.rms_norm %{{.+}}, %{{.+}} {eps = 9.99999974E-6 : f32} : (tensor<?x?x128xf32>, tensor<128xf32>) -> tensor<?x?x128xf32>
  %h = "photon.rms_norm"(%e, %nw) {eps = 1.0e-05 : f32} : (tensor<?x?x128xf32>, tensor<128xf32>) -> tensor<?x?x128xf32>
  %wq = "photon.weight"() {name = "wq"} : () -> tensor<128x128xf32>
  %bq = "photon.weight"() {name = "bq"} : () -> tensor<128xf32>
  // CHECK: photon.linear %{{.+}}, %{{.+}} : (tensor<?x?x128xf32>, tensor<128x128xf32>) -> tensor<?x?x128xf32>
  %q = "photon.linear"(%h, %wq) : (tensor<?x?x128xf32>, tensor<128x128xf32>) -> tensor<?x?x128xf32>
  // CHECK: photon.linear %{{.+}}, %{{.+}}, %{{.+}} : (tensor<?x?x128xf32>, tensor<128x128xf32>, tensor<128xf32>) -> tensor<?x?x128xf32>
  %qb = "photon.linear"(%h, %wq, %bq) : (tensor<?x?x128xf32>, tensor<128x128xf32>, tensor<128xf32>) -> tensor<?x?x128xf32>
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %b = tensor.dim %q, %c0 : tensor<?x?x128xf32>
  %m = tensor.dim %q, %c1 : tensor<?x?x128xf32>
  %q4 = tensor.expand_shape %q [[0], [1], [2, 3]] output_shape [%b, %m, 4, 32] : tensor<?x?x128xf32> into tensor<?x?x4x32xf32>
  // CHECK: photon.rope %{{.+}} {theta = 1.000000e+04 : f32} : (tensor<?x?x4x32xf32>) -> tensor<?x?x4x32xf32>
  %qr = "photon.rope"(%q4) {theta = 1.0e+04 : f32} : (tensor<?x?x4x32xf32>) -> tensor<?x?x4x32xf32>
  // CHECK: photon.rope %{{.+}}, %{{.+}} {theta = 1.000000e+04 : f32} : (tensor<?x?x4x32xf32>, tensor<?xi32>) -> tensor<?x?x4x32xf32>
  %qo = "photon.rope"(%q4, %off) {theta = 1.0e+04 : f32} : (tensor<?x?x4x32xf32>, tensor<?xi32>) -> tensor<?x?x4x32xf32>
  // CHECK: photon.causal_attention %{{.+}}, %{{.+}}, %{{.+}} {scale = 0.176776692 : f32} : (tensor<?x?x4x32xf32>, tensor<?x?x4x32xf32>, tensor<?x?x4x32xf32>) -> tensor<?x?x4x32xf32>
  %a = "photon.causal_attention"(%qr, %qo, %qo) {scale = 0.176776695 : f32} : (tensor<?x?x4x32xf32>, tensor<?x?x4x32xf32>, tensor<?x?x4x32xf32>) -> tensor<?x?x4x32xf32>
  %a3 = tensor.collapse_shape %a [[0], [1], [2, 3]] : tensor<?x?x4x32xf32> into tensor<?x?x128xf32>
  %wg = "photon.weight"() {name = "w_gate"} : () -> tensor<352x128xf32>
  %wu = "photon.weight"() {name = "w_up"} : () -> tensor<352x128xf32>
  %wd = "photon.weight"() {name = "w_down"} : () -> tensor<128x352xf32>
  // CHECK: photon.swiglu %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}} : (tensor<?x?x128xf32>, tensor<352x128xf32>, tensor<352x128xf32>, tensor<128x352xf32>) -> tensor<?x?x128xf32>
  %f = "photon.swiglu"(%a3, %wg, %wu, %wd) : (tensor<?x?x128xf32>, tensor<352x128xf32>, tensor<352x128xf32>, tensor<128x352xf32>) -> tensor<?x?x128xf32>
  %s = arith.addf %f, %qb : tensor<?x?x128xf32>
  %wout = "photon.weight"() {name = "lm_head"} : () -> tensor<256x128xf32>
  // CHECK: photon.lm_head %{{.+}}, %{{.+}} : (tensor<?x?x128xf32>, tensor<256x128xf32>) -> tensor<?x?x256xf32>
  %l = "photon.lm_head"(%s, %wout) : (tensor<?x?x128xf32>, tensor<256x128xf32>) -> tensor<?x?x256xf32>
  return %l : tensor<?x?x256xf32>
}

// CHECK-LABEL: func.func @hierarchy_ops
func.func @hierarchy_ops(%x0: tensor<?x?x32xf32, #photon.stream<level = 0, rate = 1>>, %win: tensor<?x5x4x32xf32>)
    -> (tensor<?x?x2x128xf32>, tensor<?x5x4x32xf32>) {
  // CHECK: photon.chunk %{{.+}} {size = 4 : i64} : tensor<?x?x32xf32, #photon.stream<level = 0, rate = 1>> -> tensor<?x?x128xf32, #photon.stream<level = 1, rate = 4>>
  %x1 = "photon.chunk"(%x0) {size = 4 : i64} : (tensor<?x?x32xf32, #photon.stream<level = 0, rate = 1>>) -> tensor<?x?x128xf32, #photon.stream<level = 1, rate = 4>>
  %nw = "photon.weight"() {name = "cc.norm"} : () -> tensor<512xf32>
  %w = "photon.weight"() {name = "cc.w"} : () -> tensor<128x512xf32>
  %b = "photon.weight"() {name = "cc.b"} : () -> tensor<128xf32>
  // CHECK: photon.chunk_compress %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}} {eps = 9.99999974E-6 : f32, size = 4 : i64} : (tensor<?x?x128xf32, #photon.stream<level = 1, rate = 4>>, tensor<512xf32>, tensor<128x512xf32>, tensor<128xf32>) -> tensor<?x?x128xf32, #photon.stream<level = 2, rate = 16>>
  %x2 = "photon.chunk_compress"(%x1, %nw, %w, %b) {size = 4 : i64, eps = 1.0e-05 : f32} : (tensor<?x?x128xf32, #photon.stream<level = 1, rate = 4>>, tensor<512xf32>, tensor<128x512xf32>, tensor<128xf32>) -> tensor<?x?x128xf32, #photon.stream<level = 2, rate = 16>>
  %s2 = "photon.weight"() {name = "s2"} : () -> tensor<128xf32>
  // CHECK: photon.shift %{{.+}}, %{{.+}} : (tensor<?x?x128xf32, #photon.stream<level = 2, rate = 16>>, tensor<128xf32>) -> tensor<?x?x128xf32, #photon.stream<level = 2, rate = 16>>
  %p2 = "photon.shift"(%x2, %s2) : (tensor<?x?x128xf32, #photon.stream<level = 2, rate = 16>>, tensor<128xf32>) -> tensor<?x?x128xf32, #photon.stream<level = 2, rate = 16>>
  %uw = "photon.weight"() {name = "u2.w"} : () -> tensor<256x128xf32>
  %ub = "photon.weight"() {name = "u2.b"} : () -> tensor<256xf32>
  // CHECK: photon.expand %{{.+}}, %{{.+}}, %{{.+}} {r = 2 : i64} : (tensor<?x?x128xf32, #photon.stream<level = 2, rate = 16>>, tensor<256x128xf32>, tensor<256xf32>) -> tensor<?x?x2x128xf32>
  %u = "photon.expand"(%p2, %uw, %ub) {r = 2 : i64} : (tensor<?x?x128xf32, #photon.stream<level = 2, rate = 16>>, tensor<256x128xf32>, tensor<256xf32>) -> tensor<?x?x2x128xf32>
  // CHECK: photon.bounded_attention %{{.+}}, %{{.+}}, %{{.+}} {chunk = 4 : i64, prefix = 2 : i64, scale = 0.176776692 : f32} : (tensor<?x5x4x32xf32>, tensor<?x5x4x32xf32>, tensor<?x5x4x32xf32>) -> tensor<?x5x4x32xf32>
  %o = "photon.bounded_attention"(%win, %win, %win) {prefix = 2 : i64, chunk = 4 : i64, scale = 0.176776695 : f32} : (tensor<?x5x4x32xf32>, tensor<?x5x4x32xf32>, tensor<?x5x4x32xf32>) -> tensor<?x5x4x32xf32>
  return %u, %o : tensor<?x?x2x128xf32>, tensor<?x5x4x32xf32>
}

// CHECK-LABEL: func.func @cache_ops
// CHECK-SAME: attributes {photon.stage = "encode_2"}
func.func @cache_ops(%pool: memref<?x2x2x16x4x32xf32>, %table: memref<?x?xi32>, %lens: memref<?xi32>,
                     %q: tensor<?x?x8x32xf32>, %k: tensor<?x?x4x32xf32>) -> tensor<?x?x8x32xf32>
    attributes {photon.stage = "encode_2"} {
  // CHECK: %[[C:.+]] = photon.cache_bind %{{.+}}, %{{.+}}, %{{.+}} : (memref<?x2x2x16x4x32xf32>, memref<?x?xi32>, memref<?xi32>) -> !photon.kv_cache<level = 2, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>
  %c = "photon.cache_bind"(%pool, %table, %lens) : (memref<?x2x2x16x4x32xf32>, memref<?x?xi32>, memref<?xi32>) -> !photon.kv_cache<level = 2, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>
  // CHECK: photon.kv_append %[[C]], %{{.+}}, %{{.+}} {layer = 1 : i64} : !photon.kv_cache<level = 2, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>, tensor<?x?x4x32xf32>, tensor<?x?x4x32xf32>
  "photon.kv_append"(%c, %k, %k) {layer = 1 : i64} : (!photon.kv_cache<level = 2, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>, tensor<?x?x4x32xf32>, tensor<?x?x4x32xf32>) -> ()
  // CHECK: photon.cached_attention %[[C]], %{{.+}} {layer = 1 : i64, scale = 0.176776692 : f32} : !photon.kv_cache<level = 2, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>, tensor<?x?x8x32xf32> -> tensor<?x?x8x32xf32>
  %o = "photon.cached_attention"(%c, %q) {layer = 1 : i64, scale = 0.176776695 : f32} : (!photon.kv_cache<level = 2, layers = 2, kv_heads = 4, head_dim = 32, block_size = 16, element = f32>, tensor<?x?x8x32xf32>) -> tensor<?x?x8x32xf32>
  return %o : tensor<?x?x8x32xf32>
}

// Attribute and type parameters in any order, other families and element types.
// CHECK-LABEL: func.func private @other_forms
// CHECK-SAME: !photon.kv_cache<level = 0, layers = 8, kv_heads = 2, head_dim = 64, block_size = 32, element = bf16>
// CHECK-SAME: tensor<2x16x64xf16, #photon.stream<level = 1, rate = 4>>
// CHECK-SAME: photon.block = #photon.hierarchy<family = "block", levels = 1, chunk_sizes = [4], prefix = 2, width = 640, vocab = 8192>
// CHECK-SAME: photon.vanilla = #photon.hierarchy<family = "vanilla", levels = 0, chunk_sizes = [], prefix = 0, width = 640, vocab = 32000>
func.func private @other_forms(!photon.kv_cache<element = bf16, block_size = 32, head_dim = 64, kv_heads = 2, layers = 8, level = 0>,
                               tensor<2x16x64xf16, #photon.stream<rate = 4, level = 1>>)
    attributes {photon.vanilla = #photon.hierarchy<vocab = 32000, width = 640, prefix = 0, chunk_sizes = [], levels = 0, family = "vanilla">,
                photon.block = #photon.hierarchy<family = "block", levels = 1, chunk_sizes = [4], prefix = 2, width = 640, vocab = 8192>}
}
