// Kernels compiled at build time by photon-gpu-lowering (sm_80 + sm_90 fatbin) and linked
// into photon-cuda-e2e-tests, which runs them on a GPU and compares with a CPU reference.

// RMSNorm rows: out[b, d] = x[b, d] * w[d] / sqrt(mean(x[b, :]^2) + eps).
#row = affine_map<(b, d) -> (b, d)>
#red = affine_map<(b, d) -> (b)>
#vec = affine_map<(b, d) -> (d)>
func.func @rms_norm(%x: tensor<16x256xf32>, %w: tensor<256xf32>, %out: tensor<16x256xf32>)
    -> tensor<16x256xf32> attributes {llvm.emit_c_interface} {
  %zero = arith.constant 0.0 : f32
  %n = arith.constant 256.0 : f32
  %eps = arith.constant 1.0e-5 : f32
  %e = tensor.empty() : tensor<16xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<16xf32>) -> tensor<16xf32>
  %ss = linalg.generic {indexing_maps = [#row, #red], iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<16x256xf32>) outs(%z : tensor<16xf32>) {
    ^bb0(%a: f32, %acc: f32):
      %sq = arith.mulf %a, %a : f32
      %r = arith.addf %acc, %sq : f32
      linalg.yield %r : f32
  } -> tensor<16xf32>
  %y = linalg.generic {indexing_maps = [#row, #red, #vec, #row],
                       iterator_types = ["parallel", "parallel"]}
      ins(%x, %ss, %w : tensor<16x256xf32>, tensor<16xf32>, tensor<256xf32>)
      outs(%out : tensor<16x256xf32>) {
    ^bb0(%a: f32, %s: f32, %g: f32, %o: f32):
      %mean = arith.divf %s, %n : f32
      %me = arith.addf %mean, %eps : f32
      %inv = math.rsqrt %me : f32
      %t = arith.mulf %a, %inv : f32
      %r = arith.mulf %t, %g : f32
      linalg.yield %r : f32
  } -> tensor<16x256xf32>
  return %y : tensor<16x256xf32>
}

// Tensor-core matmul, f16 inputs, f32 accumulation: out = a * b.
func.func @matmul_f16(%a: tensor<64x128xf16>, %b: tensor<128x64xf16>, %out: tensor<64x64xf32>)
    -> tensor<64x64xf32> attributes {llvm.emit_c_interface} {
  %z = arith.constant 0.0 : f32
  %f = linalg.fill ins(%z : f32) outs(%out : tensor<64x64xf32>) -> tensor<64x64xf32>
  %r = linalg.matmul ins(%a, %b : tensor<64x128xf16>, tensor<128x64xf16>)
                     outs(%f : tensor<64x64xf32>) -> tensor<64x64xf32>
  return %r : tensor<64x64xf32>
}

// The fused bounded-attention window: q, k, v, out [N=8, W=6, H=2, hd=16], causal.
#q = affine_map<(n, h, i, j, d) -> (n, i, h, d)>
#k = affine_map<(n, h, i, j, d) -> (n, j, h, d)>
#s = affine_map<(n, h, i, j, d) -> (n, h, i, j)>
#id4 = affine_map<(n, h, i, j) -> (n, h, i, j)>
#p = affine_map<(n, h, i, d, j) -> (n, h, i, j)>
#v = affine_map<(n, h, i, d, j) -> (n, j, h, d)>
#o = affine_map<(n, h, i, d, j) -> (n, i, h, d)>
func.func @window_attention(%Q: tensor<8x6x2x16xf32>, %K: tensor<8x6x2x16xf32>,
                            %V: tensor<8x6x2x16xf32>, %O: tensor<8x6x2x16xf32>)
    -> tensor<8x6x2x16xf32> attributes {llvm.emit_c_interface} {
  %zero = arith.constant 0.0 : f32
  %ninf = arith.constant -3.40282347E+38 : f32
  %scale = arith.constant 0.25 : f32
  %e = tensor.empty() : tensor<8x2x6x6xf32>
  %sz = linalg.fill ins(%zero : f32) outs(%e : tensor<8x2x6x6xf32>) -> tensor<8x2x6x6xf32>
  %s = linalg.generic {indexing_maps = [#q, #k, #s],
                       iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%Q, %K : tensor<8x6x2x16xf32>, tensor<8x6x2x16xf32>) outs(%sz : tensor<8x2x6x6xf32>) {
    ^bb0(%a: f32, %b: f32, %c: f32):
      %m = arith.mulf %a, %b : f32
      %r = arith.addf %c, %m : f32
      linalg.yield %r : f32
  } -> tensor<8x2x6x6xf32>
  %sm = linalg.generic {indexing_maps = [#id4, #id4],
                        iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%s : tensor<8x2x6x6xf32>) outs(%e : tensor<8x2x6x6xf32>) {
    ^bb0(%a: f32, %c: f32):
      %i = linalg.index 2 : index
      %j = linalg.index 3 : index
      %ok = arith.cmpi ule, %j, %i : index
      %x = arith.mulf %a, %scale : f32
      %r = arith.select %ok, %x, %ninf : f32
      linalg.yield %r : f32
  } -> tensor<8x2x6x6xf32>
  %p = linalg.softmax dimension(3) ins(%sm : tensor<8x2x6x6xf32>)
                                   outs(%e : tensor<8x2x6x6xf32>) -> tensor<8x2x6x6xf32>
  %oz = linalg.fill ins(%zero : f32) outs(%O : tensor<8x6x2x16xf32>) -> tensor<8x6x2x16xf32>
  %o = linalg.generic {indexing_maps = [#p, #v, #o],
                       iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%p, %V : tensor<8x2x6x6xf32>, tensor<8x6x2x16xf32>) outs(%oz : tensor<8x6x2x16xf32>) {
    ^bb0(%a: f32, %b: f32, %c: f32):
      %m = arith.mulf %a, %b : f32
      %r = arith.addf %c, %m : f32
      linalg.yield %r : f32
  } -> tensor<8x6x2x16xf32>
  return %o : tensor<8x6x2x16xf32>
}
