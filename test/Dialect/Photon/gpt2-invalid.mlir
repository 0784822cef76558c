// RUN: photon-opt %s -split-input-file -verify-diagnostics
//
// One negative test per verifier message of the GPT-2-style ops (layer_norm, gelu,
// position_embedding).

func.func @ln_gain(%x: tensor<?x?x96xf32>, %g: tensor<95xf32>, %b: tensor<96xf32>) -> tensor<?x?x96xf32> {
  // expected-error @+1 {{expected norm weight size (95) to equal x width (96)}}
  %n = photon.layer_norm %x, %g, %b {eps = 1.0e-05 : f32} : (tensor<?x?x96xf32>, tensor<95xf32>, tensor<96xf32>) -> tensor<?x?x96xf32>
  return %n : tensor<?x?x96xf32>
}

// -----

func.func @ln_bias(%x: tensor<?x?x96xf32>, %g: tensor<96xf32>, %b: tensor<32xf32>) -> tensor<?x?x96xf32> {
  // expected-error @+1 {{expected norm bias size (32) to equal x width (96)}}
  %n = photon.layer_norm %x, %g, %b {eps = 1.0e-05 : f32} : (tensor<?x?x96xf32>, tensor<96xf32>, tensor<32xf32>) -> tensor<?x?x96xf32>
  return %n : tensor<?x?x96xf32>
}

// -----

func.func @ln_eps(%x: tensor<?x?x96xf32>, %g: tensor<96xf32>, %b: tensor<96xf32>) -> tensor<?x?x96xf32> {
  // expected-error @+1 {{eps}}
  %n = photon.layer_norm %x, %g, %b {eps = 0.0 : f32} : (tensor<?x?x96xf32>, tensor<96xf32>, tensor<96xf32>) -> tensor<?x?x96xf32>
  return %n : tensor<?x?x96xf32>
}

// -----

func.func @gelu_shape(%x: tensor<?x?x96xf32>) -> tensor<?x?x95xf32> {
  // expected-error @+1 {{expected result dimension 2 (95) to equal x dimension 2 (96)}}
  %g = photon.gelu %x : (tensor<?x?x96xf32>) -> tensor<?x?x95xf32>
  return %g : tensor<?x?x95xf32>
}

// -----

func.func @pos_width(%x: tensor<?x?x96xf32>, %t: tensor<64x32xf32>) -> tensor<?x?x96xf32> {
  // expected-error @+1 {{expected position table width (32) to equal x width (96)}}
  %p = photon.position_embedding %x, %t : (tensor<?x?x96xf32>, tensor<64x32xf32>) -> tensor<?x?x96xf32>
  return %p : tensor<?x?x96xf32>
}

// -----

func.func @pos_rows(%x: tensor<1x65x96xf32>, %t: tensor<64x96xf32>) -> tensor<1x65x96xf32> {
  // expected-error @+1 {{expected at most as many positions (65) as the position table has rows (64)}}
  %p = photon.position_embedding %x, %t : (tensor<1x65x96xf32>, tensor<64x96xf32>) -> tensor<1x65x96xf32>
  return %p : tensor<1x65x96xf32>
}

// -----

func.func @pos_offsets(%x: tensor<2x1x96xf32>, %t: tensor<64x96xf32>, %o: tensor<3xi32>) -> tensor<2x1x96xf32> {
  // expected-error @+1 {{expected offsets size (3) to equal batch (2)}}
  %p = photon.position_embedding %x, %t, %o : (tensor<2x1x96xf32>, tensor<64x96xf32>, tensor<3xi32>) -> tensor<2x1x96xf32>
  return %p : tensor<2x1x96xf32>
}

// -----

func.func @pos_type(%x: tensor<?x?x96xf32>, %t: tensor<64x96xf16>) -> tensor<?x?x96xf32> {
  // expected-error @+1 {{expected the table ('f16') and the result ('f32') to have x's element type ('f32')}}
  %p = photon.position_embedding %x, %t : (tensor<?x?x96xf32>, tensor<64x96xf16>) -> tensor<?x?x96xf32>
  return %p : tensor<?x?x96xf32>
}
