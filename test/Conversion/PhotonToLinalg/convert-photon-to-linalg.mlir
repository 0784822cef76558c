// RUN: photon-opt %s --convert-photon-to-linalg --split-input-file | FileCheck %s
// RUN: photon-opt %s --convert-photon-to-linalg --split-input-file --photon-lower-to-llvm | FileCheck %s --check-prefix=LLVM
// RUN: photon-opt %s --convert-photon-to-linalg --split-input-file --photon-cpu-pipeline | FileCheck %s --check-prefix=LLVM

// The weights blob becomes argument 0; photon.weight is a view at its byte offset.
// CHECK-LABEL: func.func @forward(
// CHECK-SAME:    %[[BLOB:.+]]: memref<?xi8> {photon.arg = "weights"}
// CHECK-SAME:    %[[X:.+]]: tensor<?x?x32xf32>
// CHECK:         %[[OFF:.+]] = arith.constant 4096 : index
// CHECK:         %[[V:.+]] = memref.view %[[BLOB]][%[[OFF]]][] : memref<?xi8> to memref<16x32xf32>
// CHECK:         %[[W:.+]] = bufferization.to_tensor %[[V]] restrict : memref<16x32xf32>
// rms_norm: a sum-of-squares reduction, then the scaling
// CHECK:         linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]
// CHECK:           math.rsqrt
// linear: x W^T over the collapsed leading dims
// CHECK:         tensor.collapse_shape %{{.*}} {{\[\[}}0, 1], [2]] : tensor<?x?x32xf32> into tensor<?x32xf32>
// CHECK:         linalg.generic {{.*}}ins(%{{.*}}, %[[W]] : tensor<?x32xf32>, tensor<16x32xf32>)
// CHECK:         tensor.expand_shape {{.*}} into tensor<?x?x16xf32>
// LLVM-LABEL: llvm.func @forward(
// LLVM-NOT: = photon.
// LLVM-NOT: "photon.
module {
  func.func @forward(%x: tensor<?x?x32xf32>) -> tensor<?x?x16xf32> {
    %n = "photon.weight"() {name = "norm", offset = 0 : i64} : () -> tensor<32xf32>
    %w = "photon.weight"() {name = "w", offset = 4096 : i64} : () -> tensor<16x32xf32>
    %h = "photon.rms_norm"(%x, %n) {eps = 1.0e-05 : f32} : (tensor<?x?x32xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
    %y = "photon.linear"(%h, %w) : (tensor<?x?x32xf32>, tensor<16x32xf32>) -> tensor<?x?x16xf32>
    return %y : tensor<?x?x16xf32>
  }
}

// -----

// Calls pass the blob on.
// CHECK-LABEL: func.func private @stack(
// CHECK-SAME:    %{{.+}}: memref<?xi8> {photon.arg = "weights"}
// CHECK-LABEL: func.func @caller(
// CHECK-SAME:    %[[B:.+]]: memref<?xi8> {photon.arg = "weights"}, %[[X:.+]]: tensor
// CHECK:         call @stack(%[[B]], %[[X]])
module {
  func.func private @stack(%x: tensor<?x?x8xf32>) -> tensor<?x?x8xf32> {
    return %x : tensor<?x?x8xf32>
  }
  func.func @caller(%x: tensor<?x?x8xf32>) -> tensor<?x?x8xf32> {
    %y = func.call @stack(%x) : (tensor<?x?x8xf32>) -> tensor<?x?x8xf32>
    return %y : tensor<?x?x8xf32>
  }
}

// -----

// kv_append stores K and V rows (vectors over head_dim) at positions lens[b] + t of the
// paged pool; cached_attention is a streaming loop over cache blocks with a running max
// and sum per row of a tile of 4 (query, head) rows: the fused kernel (fused-attention.mlir),
// a function shared by every call with the same operand types.
// CHECK-LABEL: func.func @step(
// CHECK-SAME:    %[[POOL:[^:]+]]: memref<?x1x2x16x2x8xf32>, %[[TABLE:[^:]+]]: memref<?x?xi32>, %[[LENS:[^:]+]]: memref<?xi32>
// CHECK-NOT:     photon.cache_bind
// CHECK:         scf.for
// CHECK:           memref.load %[[LENS]]
// CHECK:           arith.divui %{{.*}}, %c16{{[_0-9]*}}
// CHECK:           memref.load %[[TABLE]]
// CHECK:           arith.remui %{{.*}}, %c16{{[_0-9]*}}
// CHECK:           vector.store %{{.*}}, %[[POOL]][%{{[^,]*}}, %c0{{[_0-9]*}}, %c0{{[_0-9]*}}, %{{.*}}] : memref<?x1x2x16x2x8xf32>, vector<8xf32>
// CHECK:           vector.store %{{.*}}, %[[POOL]][%{{[^,]*}}, %c0{{[_0-9]*}}, %c1{{[_0-9]*}}, %{{.*}}] : memref<?x1x2x16x2x8xf32>, vector<8xf32>
// CHECK:         %[[OUT:.+]] = memref.alloc(%{{.*}}, %{{.*}}) : memref<?x?x4x8xf32>
// CHECK:         call @photon_attention_cached16_0(%{{.+}}, %[[POOL]], %[[TABLE]], %[[LENS]], %[[OUT]], %{{.+}}, %{{.+}}) {no_inline}
// CHECK:         bufferization.to_tensor %[[OUT]] restrict writable
// CHECK-LABEL: func.func private @photon_attention_cached16_0(
// CHECK:         scf.if
// CHECK:           memref.load
// CHECK:           vector.load
// CHECK:           vector.reduction <maxnumf>
module {
  func.func @step(%q: tensor<?x?x4x8xf32>, %k: tensor<?x?x2x8xf32>, %v: tensor<?x?x2x8xf32>,
                  %pool: memref<?x1x2x16x2x8xf32>, %table: memref<?x?xi32>, %lens: memref<?xi32>) -> tensor<?x?x4x8xf32> {
    %c = "photon.cache_bind"(%pool, %table, %lens) : (memref<?x1x2x16x2x8xf32>, memref<?x?xi32>, memref<?xi32>) -> !photon.kv_cache<level = 1, layers = 1, kv_heads = 2, head_dim = 8, block_size = 16, element = f32>
    "photon.kv_append"(%c, %k, %v) {layer = 0 : i64} : (!photon.kv_cache<level = 1, layers = 1, kv_heads = 2, head_dim = 8, block_size = 16, element = f32>, tensor<?x?x2x8xf32>, tensor<?x?x2x8xf32>) -> ()
    %o = "photon.cached_attention"(%c, %q) {layer = 0 : i64, scale = 0.353553385 : f32} : (!photon.kv_cache<level = 1, layers = 1, kv_heads = 2, head_dim = 8, block_size = 16, element = f32>, tensor<?x?x4x8xf32>) -> tensor<?x?x4x8xf32>
    return %o : tensor<?x?x4x8xf32>
  }
}

// -----

// Stream encodings are dropped everywhere (the type converter): in signatures, block
// arguments, calls and upstream ops, not only on the photon ops' results.
// CHECK-LABEL: func.func private @g(
// CHECK-SAME:    %{{.+}}: memref<?xi8> {photon.arg = "weights"}, %{{.+}}: tensor<?x?x8xf32>) -> tensor<?x?x8xf32>
// CHECK-LABEL: func.func @f(
// CHECK-SAME:    %[[B:.+]]: memref<?xi8> {photon.arg = "weights"}, %{{.+}}: tensor<?x?x2xf32>) -> tensor<?x?x8xf32>
// CHECK:         %[[C:.+]] = call @g(%[[B]], %{{.+}}) : (memref<?xi8>, tensor<?x?x8xf32>) -> tensor<?x?x8xf32>
// CHECK:         tensor.cast %[[C]] : tensor<?x?x8xf32> to tensor<2x?x8xf32>
// CHECK-NOT:     #photon.stream
#s0 = #photon.stream<level = 0, rate = 1>
#s1 = #photon.stream<level = 1, rate = 4>
module {
  func.func private @g(%x: tensor<?x?x8xf32, #s1>) -> tensor<?x?x8xf32, #s1> {
    %w = "photon.weight"() {name = "w", offset = 0 : i64} : () -> tensor<8x8xf32>
    %y = "photon.linear"(%x, %w) : (tensor<?x?x8xf32, #s1>, tensor<8x8xf32>) -> tensor<?x?x8xf32, #s1>
    return %y : tensor<?x?x8xf32, #s1>
  }
  func.func @f(%x: tensor<?x?x2xf32, #s0>) -> tensor<?x?x8xf32, #s1> {
    %a = photon.chunk %x {size = 4 : i64} : tensor<?x?x2xf32, #s0> -> tensor<?x?x8xf32, #s1>
    %b = func.call @g(%a) : (tensor<?x?x8xf32, #s1>) -> tensor<?x?x8xf32, #s1>
    %c = tensor.cast %b : tensor<?x?x8xf32, #s1> to tensor<2x?x8xf32, #s1>
    %r = tensor.cast %c : tensor<2x?x8xf32, #s1> to tensor<?x?x8xf32, #s1>
    return %r : tensor<?x?x8xf32, #s1>
  }
}
