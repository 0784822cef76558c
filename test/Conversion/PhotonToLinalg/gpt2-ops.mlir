// RUN: photon-opt %s --convert-photon-to-linalg | FileCheck %s
// RUN: photon-opt %s --convert-photon-to-linalg --photon-cpu-pipeline | FileCheck %s --check-prefix=LLVM
//
// The GPT-2-style ops, one conversion pattern each: position_embedding (table rows at
// offsets[b] + m, clamped to the last row), layer_norm (a row sum, a centred sum of
// squares, then the normalization with gain and bias), linear with a bias (the bias
// initializes the accumulator), gelu tanh and erf forms (erf as
// Abramowitz & Stegun 7.1.26: math-to-llvm has no erf).
// CHECK-LABEL: func.func @forward(
// CHECK-SAME:    %[[BLOB:.+]]: memref<?xi8> {photon.arg = "weights"}
// position_embedding: x + table[min(offsets[b] + m, P - 1)]
// CHECK:         linalg.generic
// CHECK:           linalg.index 1
// CHECK:           arith.addi
// CHECK:           %[[LAST:.+]] = arith.constant 63 : index
// CHECK:           arith.minui %{{.*}}, %[[LAST]]
// CHECK:           tensor.extract
// CHECK:           arith.addf
// layer_norm: row sum, then centred squares, then (x - mean) * rsqrt(var + eps) * w + b
// CHECK:         linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]
// CHECK:         linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]
// CHECK:           arith.subf
// CHECK:           arith.mulf
// CHECK:         linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]
// CHECK:           math.rsqrt
// CHECK:           arith.mulf
// CHECK:           arith.addf
// linear with a bias: the bias broadcast into the accumulator, then the contraction
// CHECK:         linalg.generic {{.*}}ins(%{{.*}} : tensor<384xf32>)
// CHECK:         linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "reduction"]
// gelu, tanh form, then erf form
// CHECK:         linalg.generic
// CHECK:           math.tanh
// CHECK:         linalg.generic
// CHECK:           math.absf
// CHECK:           math.exp
// CHECK:           math.copysign
// CHECK-NOT:     photon.
// LLVM-LABEL: llvm.func @forward(
// LLVM-NOT: = photon.
// LLVM-NOT: "photon.
module {
  func.func @forward(%x: tensor<?x?x96xf32>, %lens: tensor<?xi32>) -> tensor<?x?x384xf32> {
    %wpe = "photon.weight"() {name = "wpe", offset = 0 : i64} : () -> tensor<64x96xf32>
    %g = "photon.weight"() {name = "g", offset = 24576 : i64} : () -> tensor<96xf32>
    %b = "photon.weight"() {name = "b", offset = 24960 : i64} : () -> tensor<96xf32>
    %w = "photon.weight"() {name = "w", offset = 25344 : i64} : () -> tensor<384x96xf32>
    %bw = "photon.weight"() {name = "bw", offset = 172800 : i64} : () -> tensor<384xf32>
    %p = photon.position_embedding %x, %wpe, %lens : (tensor<?x?x96xf32>, tensor<64x96xf32>, tensor<?xi32>) -> tensor<?x?x96xf32>
    %n = photon.layer_norm %p, %g, %b {eps = 1.0e-05 : f32} : (tensor<?x?x96xf32>, tensor<96xf32>, tensor<96xf32>) -> tensor<?x?x96xf32>
    %u = photon.linear %n, %w, %bw : (tensor<?x?x96xf32>, tensor<384x96xf32>, tensor<384xf32>) -> tensor<?x?x384xf32>
    %t = photon.gelu %u {tanh} : (tensor<?x?x384xf32>) -> tensor<?x?x384xf32>
    %e = photon.gelu %t : (tensor<?x?x384xf32>) -> tensor<?x?x384xf32>
    return %e : tensor<?x?x384xf32>
  }
}
