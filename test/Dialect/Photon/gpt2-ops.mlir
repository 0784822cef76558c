// RUN: photon-opt %s | photon-opt | FileCheck %s
// RUN: photon-opt %s --mlir-print-op-generic | photon-opt | FileCheck %s
//
// The ops of GPT-2-style models (docs/ir-contract.md): layer_norm, gelu (erf and tanh),
// position_embedding (with and without offsets) and linear with a bias round-trip.

// CHECK-LABEL: func.func @gpt2_block
func.func @gpt2_block(%x: tensor<?x?x96xf32>, %wpe: tensor<64x96xf32>, %lens: tensor<?xi32>,
                      %g: tensor<96xf32>, %b: tensor<96xf32>, %w: tensor<384x96xf32>,
                      %bw: tensor<384xf32>) -> tensor<?x?x384xf32> {
  // CHECK: photon.position_embedding %{{.+}}, %{{.+}} : (tensor<?x?x96xf32>, tensor<64x96xf32>) -> tensor<?x?x96xf32>
  %p = photon.position_embedding %x, %wpe : (tensor<?x?x96xf32>, tensor<64x96xf32>) -> tensor<?x?x96xf32>
  // CHECK: photon.position_embedding %{{.+}}, %{{.+}}, %{{.+}} : (tensor<?x?x96xf32>, tensor<64x96xf32>, tensor<?xi32>) -> tensor<?x?x96xf32>
  %s = photon.position_embedding %p, %wpe, %lens : (tensor<?x?x96xf32>, tensor<64x96xf32>, tensor<?xi32>) -> tensor<?x?x96xf32>
  // CHECK: photon.layer_norm %{{.+}}, %{{.+}}, %{{.+}} {eps = 9.99999974E-6 : f32} : (tensor<?x?x96xf32>, tensor<96xf32>, tensor<96xf32>) -> tensor<?x?x96xf32>
  %n = photon.layer_norm %s, %g, %b {eps = 1.0e-05 : f32} : (tensor<?x?x96xf32>, tensor<96xf32>, tensor<96xf32>) -> tensor<?x?x96xf32>
  // CHECK: photon.linear %{{.+}}, %{{.+}}, %{{.+}} : (tensor<?x?x96xf32>, tensor<384x96xf32>, tensor<384xf32>) -> tensor<?x?x384xf32>
  %u = photon.linear %n, %w, %bw : (tensor<?x?x96xf32>, tensor<384x96xf32>, tensor<384xf32>) -> tensor<?x?x384xf32>
  // CHECK: photon.gelu %{{.+}} {tanh} : (tensor<?x?x384xf32>) -> tensor<?x?x384xf32>
  %t = photon.gelu %u {tanh} : (tensor<?x?x384xf32>) -> tensor<?x?x384xf32>
  // CHECK: photon.gelu %{{.+}} : (tensor<?x?x384xf32>) -> tensor<?x?x384xf32>
  %e = photon.gelu %t : (tensor<?x?x384xf32>) -> tensor<?x?x384xf32>
  return %e : tensor<?x?x384xf32>
}
