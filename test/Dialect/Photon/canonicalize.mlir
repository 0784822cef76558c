// RUN: photon-opt %s -canonicalize -split-input-file | FileCheck %s

// A chunk of a chunk is one chunk whose size is the product.
// CHECK-LABEL: func.func @chunk_of_chunk
// CHECK-SAME: (%[[X:.+]]: tensor<2x32x8xf32>)
// CHECK-NEXT: %[[R:.+]] = photon.chunk %[[X]] {size = 16 : i64} : tensor<2x32x8xf32> -> tensor<2x2x128xf32>
// CHECK-NEXT: return %[[R]]
func.func @chunk_of_chunk(%x: tensor<2x32x8xf32>) -> tensor<2x2x128xf32> {
  %a = photon.chunk %x {size = 4 : i64} : tensor<2x32x8xf32> -> tensor<2x8x32xf32>
  %b = photon.chunk %a {size = 4 : i64} : tensor<2x8x32xf32> -> tensor<2x2x128xf32>
  return %b : tensor<2x2x128xf32>
}

// -----

// Composition keeps the outer encoding: rate 1 -> 4 -> 16 becomes rate 1 -> 16.
// CHECK-LABEL: func.func @chunk_of_chunk_streams
// CHECK-NEXT: photon.chunk %{{.+}} {size = 16 : i64} : tensor<?x?x8xf32, #photon.stream<level = 0, rate = 1>> -> tensor<?x?x128xf32, #photon.stream<level = 2, rate = 16>>
// CHECK-NEXT: return
func.func @chunk_of_chunk_streams(%x: tensor<?x?x8xf32, #photon.stream<level = 0, rate = 1>>)
    -> tensor<?x?x128xf32, #photon.stream<level = 2, rate = 16>> {
  %a = photon.chunk %x {size = 4 : i64} : tensor<?x?x8xf32, #photon.stream<level = 0, rate = 1>> -> tensor<?x?x32xf32, #photon.stream<level = 1, rate = 4>>
  %b = photon.chunk %a {size = 4 : i64} : tensor<?x?x32xf32, #photon.stream<level = 1, rate = 4>> -> tensor<?x?x128xf32, #photon.stream<level = 2, rate = 16>>
  return %b : tensor<?x?x128xf32, #photon.stream<level = 2, rate = 16>>
}

// -----

// Three chunks in a row compose too; an inner chunk that has other users stays.
// CHECK-LABEL: func.func @chunk_chain
// CHECK-SAME: (%[[X:.+]]: tensor<1x64x2xf32>)
// CHECK-DAG: %[[A:.+]] = photon.chunk %[[X]] {size = 2 : i64} : tensor<1x64x2xf32> -> tensor<1x32x4xf32>
// CHECK-DAG: %[[C:.+]] = photon.chunk %[[X]] {size = 32 : i64} : tensor<1x64x2xf32> -> tensor<1x2x64xf32>
// CHECK: return %[[A]], %[[C]]
func.func @chunk_chain(%x: tensor<1x64x2xf32>) -> (tensor<1x32x4xf32>, tensor<1x2x64xf32>) {
  %a = photon.chunk %x {size = 2 : i64} : tensor<1x64x2xf32> -> tensor<1x32x4xf32>
  %b = photon.chunk %a {size = 4 : i64} : tensor<1x32x4xf32> -> tensor<1x8x16xf32>
  %c = photon.chunk %b {size = 4 : i64} : tensor<1x8x16xf32> -> tensor<1x2x64xf32>
  return %a, %c : tensor<1x32x4xf32>, tensor<1x2x64xf32>
}

// -----

// A chunk of size 1 with an unchanged type is the identity...
// CHECK-LABEL: func.func @chunk_one
// CHECK-SAME: (%[[X:.+]]: tensor<?x?x8xf32>)
// CHECK-NEXT: return %[[X]]
func.func @chunk_one(%x: tensor<?x?x8xf32>) -> tensor<?x?x8xf32> {
  %a = photon.chunk %x {size = 1 : i64} : tensor<?x?x8xf32> -> tensor<?x?x8xf32>
  return %a : tensor<?x?x8xf32>
}

// -----

// ... but not when it refines the type (here: it adds a stream encoding).
// CHECK-LABEL: func.func @chunk_one_refines
// CHECK-NEXT: photon.chunk %{{.+}} {size = 1 : i64}
func.func @chunk_one_refines(%x: tensor<?x?x8xf32>) -> tensor<?x?x8xf32, #photon.stream<level = 1, rate = 1>> {
  %a = photon.chunk %x {size = 1 : i64} : tensor<?x?x8xf32> -> tensor<?x?x8xf32, #photon.stream<level = 1, rate = 1>>
  return %a : tensor<?x?x8xf32, #photon.stream<level = 1, rate = 1>>
}

// -----

// expand with r = 1 is a linear layer plus a unit-dimension reshape.
// CHECK-LABEL: func.func @expand_r1
// CHECK-SAME: (%[[X:.+]]: tensor<?x?x64xf32>, %[[W:.+]]: tensor<64x64xf32>, %[[B:.+]]: tensor<64xf32>)
// CHECK-DAG: %[[C0:.+]] = arith.constant 0 : index
// CHECK-DAG: %[[C1:.+]] = arith.constant 1 : index
// CHECK: %[[L:.+]] = photon.linear %[[X]], %[[W]], %[[B]] : (tensor<?x?x64xf32>, tensor<64x64xf32>, tensor<64xf32>) -> tensor<?x?x64xf32>
// CHECK-DAG: %[[D0:.+]] = tensor.dim %[[L]], %[[C0]]
// CHECK-DAG: %[[D1:.+]] = tensor.dim %[[L]], %[[C1]]
// CHECK: %[[E:.+]] = tensor.expand_shape %[[L]] {{\[}}[0], [1], [2, 3]] output_shape [%[[D0]], %[[D1]], 1, 64] : tensor<?x?x64xf32> into tensor<?x?x1x64xf32>
// CHECK: return %[[E]]
// CHECK-NOT: photon.expand
func.func @expand_r1(%x: tensor<?x?x64xf32>, %w: tensor<64x64xf32>, %b: tensor<64xf32>) -> tensor<?x?x1x64xf32> {
  %u = photon.expand %x, %w, %b {r = 1 : i64} : (tensor<?x?x64xf32>, tensor<64x64xf32>, tensor<64xf32>) -> tensor<?x?x1x64xf32>
  return %u : tensor<?x?x1x64xf32>
}

// -----

// CHECK-LABEL: func.func @expand_r1_static
// CHECK: %[[L:.+]] = photon.linear %{{.+}}, %{{.+}}, %{{.+}} : (tensor<2x3x8xf32>, tensor<8x8xf32>, tensor<8xf32>) -> tensor<2x3x8xf32>
// CHECK: tensor.expand_shape %[[L]] {{\[}}[0], [1], [2, 3]] output_shape [2, 3, 1, 8] : tensor<2x3x8xf32> into tensor<2x3x1x8xf32>
func.func @expand_r1_static(%x: tensor<2x3x8xf32>, %w: tensor<8x8xf32>, %b: tensor<8xf32>) -> tensor<2x3x1x8xf32> {
  %u = photon.expand %x, %w, %b {r = 1 : i64} : (tensor<2x3x8xf32>, tensor<8x8xf32>, tensor<8xf32>) -> tensor<2x3x1x8xf32>
  return %u : tensor<2x3x1x8xf32>
}

// -----

// A real converter (r = 2) stays whole: fusion and weight packing want to see it.
// CHECK-LABEL: func.func @expand_r2
// CHECK-NEXT: photon.expand %{{.+}}, %{{.+}}, %{{.+}} {r = 2 : i64}
// CHECK-NOT: tensor.expand_shape
func.func @expand_r2(%x: tensor<?x?x64xf32>, %w: tensor<128x64xf32>, %b: tensor<128xf32>) -> tensor<?x?x2x64xf32> {
  %u = photon.expand %x, %w, %b {r = 2 : i64} : (tensor<?x?x64xf32>, tensor<128x64xf32>, tensor<128xf32>) -> tensor<?x?x2x64xf32>
  return %u : tensor<?x?x2x64xf32>
}

// -----

// Pure ops without users disappear; kv_append (writes the cache) stays.
// CHECK-LABEL: func.func @dead_code
// CHECK-NOT: photon.cached_attention
// CHECK-NOT: photon.rms_norm
// CHECK: photon.cache_bind
// CHECK-NEXT: photon.kv_append
// CHECK-NEXT: return
func.func @dead_code(%pool: memref<?x1x2x16x2x8xf32>, %t: memref<?x?xi32>, %l: memref<?xi32>,
                     %k: tensor<?x1x2x8xf32>, %x: tensor<?x8xf32>, %nw: tensor<8xf32>) {
  %c = photon.cache_bind %pool, %t, %l : (memref<?x1x2x16x2x8xf32>, memref<?x?xi32>, memref<?xi32>) -> !photon.kv_cache<level = 1, layers = 1, kv_heads = 2, head_dim = 8, block_size = 16, element = f32>
  photon.kv_append %c, %k, %k {layer = 0 : i64} : !photon.kv_cache<level = 1, layers = 1, kv_heads = 2, head_dim = 8, block_size = 16, element = f32>, tensor<?x1x2x8xf32>, tensor<?x1x2x8xf32>
  %o = photon.cached_attention %c, %k {layer = 0 : i64, scale = 0.35 : f32} : !photon.kv_cache<level = 1, layers = 1, kv_heads = 2, head_dim = 8, block_size = 16, element = f32>, tensor<?x1x2x8xf32> -> tensor<?x1x2x8xf32>
  %n = photon.rms_norm %x, %nw {eps = 1.0e-05 : f32} : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
  return
}

// -----

// Sizes whose product overflows i64 are left alone.
// CHECK-LABEL: func.func @chunk_of_chunk_overflow
// CHECK: photon.chunk %{{.+}} {size = 4611686018427387904 : i64}
// CHECK: photon.chunk %{{.+}} {size = 4 : i64}
func.func @chunk_of_chunk_overflow(%x: tensor<?x?x1xf32>) -> tensor<?x?x?xf32> {
  %a = photon.chunk %x {size = 4611686018427387904 : i64} : tensor<?x?x1xf32> -> tensor<?x?x?xf32>
  %b = photon.chunk %a {size = 4 : i64} : tensor<?x?x?xf32> -> tensor<?x?x?xf32>
  return %b : tensor<?x?x?xf32>
}
