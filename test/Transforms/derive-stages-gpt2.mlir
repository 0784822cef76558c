// RUN: photon-opt %s --photon-derive-stages | FileCheck %s
//
// Learned positions (photon.position_embedding in @forward, before the stack): lm_step's
// slice gives them the cache's valid lengths as offsets, so the new tokens' positions
// continue from the cached ones; @forward keeps positions 0 .. T-1.
// CHECK-LABEL: func.func @forward(
// CHECK:         photon.position_embedding %{{[^,]+}}, %{{[^,]+}} :
// CHECK-LABEL: func.func @lm_step(
// CHECK-SAME:    %[[T:[^:]+]]: tensor<?x?xi32>, %[[P:[^:]+]]: memref<?x1x2x16x2x8xf32>, %[[TB:[^:]+]]: memref<?x?xi32>, %[[L:[^:]+]]: memref<?xi32>)
// CHECK:         %[[E:.+]] = photon.embedding %{{.*}}, %[[T]]
// CHECK:         %[[OFF:.+]] = bufferization.to_tensor %[[L]]
// CHECK:         photon.position_embedding %[[E]], %{{[^,]+}}, %[[OFF]] :
// CHECK:         call @stack_step(%{{.*}}, %[[P]], %[[TB]], %[[L]])
module attributes {photon.hierarchy = #photon.hierarchy<family = "vanilla", levels = 0, chunk_sizes = [], prefix = 0, width = 16, vocab = 64>} {
  func.func private @stack(%x: tensor<?x?x16xf32>) -> tensor<?x?x16xf32> attributes {photon.role = "encoder", photon.level = 1 : i64} {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %n = tensor.dim %x, %c0 : tensor<?x?x16xf32>
    %m = tensor.dim %x, %c1 : tensor<?x?x16xf32>
    %g = photon.weight "g" : tensor<16xf32>
    %b = photon.weight "b" : tensor<16xf32>
    %h = photon.layer_norm %x, %g, %b {eps = 1.0e-05 : f32} : (tensor<?x?x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<?x?x16xf32>
    %q = tensor.expand_shape %h [[0], [1], [2, 3]] output_shape [%n, %m, 2, 8] : tensor<?x?x16xf32> into tensor<?x?x2x8xf32>
    %a = photon.causal_attention %q, %q, %q {scale = 0.353553385 : f32} : (tensor<?x?x2x8xf32>, tensor<?x?x2x8xf32>, tensor<?x?x2x8xf32>) -> tensor<?x?x2x8xf32>
    %o = tensor.collapse_shape %a [[0], [1], [2, 3]] : tensor<?x?x2x8xf32> into tensor<?x?x16xf32>
    %r = arith.addf %x, %o : tensor<?x?x16xf32>
    return %r : tensor<?x?x16xf32>
  }
  func.func @forward(%tokens: tensor<?x?xi32>) -> tensor<?x?x64xf32> {
    %wte = photon.weight "wte" : tensor<64x16xf32>
    %wpe = photon.weight "wpe" : tensor<32x16xf32>
    %e = photon.embedding %wte, %tokens : (tensor<64x16xf32>, tensor<?x?xi32>) -> tensor<?x?x16xf32>
    %p = photon.position_embedding %e, %wpe : (tensor<?x?x16xf32>, tensor<32x16xf32>) -> tensor<?x?x16xf32>
    %y = call @stack(%p) : (tensor<?x?x16xf32>) -> tensor<?x?x16xf32>
    %w = photon.weight "head" : tensor<64x16xf32>
    %l = photon.lm_head %y, %w : (tensor<?x?x16xf32>, tensor<64x16xf32>) -> tensor<?x?x64xf32>
    return %l : tensor<?x?x64xf32>
  }
}
