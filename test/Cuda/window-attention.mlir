// The bounded-attention window as ONE fused kernel batched over (window, head): scores,
// scale + causal mask, softmax and P.V all in the P.V kernel, one thread per query row,
// and ptxas shows no spills.
// RUN: photon-cuda-opt %s --photon-gpu-kernels | FileCheck %s --check-prefix=GPU
// RUN: photon-cuda-opt %s --photon-gpu-lowering="chips=sm_80 format=isa" -o %t.mlir
// RUN: %python %S/Inputs/gpu_binary.py ptx %t.mlir %t.ptx
// RUN: FileCheck %s --check-prefix=PTX < %t.ptx
// RUN: %ptxas -arch=sm_80 -v %t.ptx -o %t.cubin 2>&1 | FileCheck %s --check-prefix=PTXAS
// RUN: photon-cuda-opt %s --photon-gpu-lowering="chips=sm_90 format=isa" -o %t90.mlir
// RUN: %python %S/Inputs/gpu_binary.py ptx %t90.mlir %t90.ptx
// RUN: %ptxas -arch=sm_90 -v %t90.ptx -o %t90.cubin 2>&1 | FileCheck %s --check-prefix=PTXAS
// REQUIRES: ptxas

// q, k, v: [N windows, W = R + C - 1 positions, H heads, hd]; out the same.
#q = affine_map<(n, h, i, j, d) -> (n, i, h, d)>
#k = affine_map<(n, h, i, j, d) -> (n, j, h, d)>
#s = affine_map<(n, h, i, j, d) -> (n, h, i, j)>
#id4 = affine_map<(n, h, i, j) -> (n, h, i, j)>
#p = affine_map<(n, h, i, d, j) -> (n, h, i, j)>
#v = affine_map<(n, h, i, d, j) -> (n, j, h, d)>
#o = affine_map<(n, h, i, d, j) -> (n, i, h, d)>

// GPU-LABEL: func.func @window_attention
// GPU-COUNT-1: gpu.launch blocks
// GPU-SAME: threads(%{{.*}}, %{{.*}}, %{{.*}}) in (%{{.*}} = %c8{{.*}}, %{{.*}} = %c4{{.*}}, %{{.*}} = %c1
// GPU: math.exp
// GPU: arith.divf
// GPU-NOT: gpu.launch
// GPU: return
func.func @window_attention(%Q: tensor<64x8x4x32xf32>, %K: tensor<64x8x4x32xf32>,
                            %V: tensor<64x8x4x32xf32>, %O: tensor<64x8x4x32xf32>)
    -> tensor<64x8x4x32xf32> {
  %zero = arith.constant 0.0 : f32
  %ninf = arith.constant -3.40282347E+38 : f32
  %scale = arith.constant 0.17677669 : f32
  %e = tensor.empty() : tensor<64x4x8x8xf32>
  %sz = linalg.fill ins(%zero : f32) outs(%e : tensor<64x4x8x8xf32>) -> tensor<64x4x8x8xf32>
  %s = linalg.generic {indexing_maps = [#q, #k, #s],
                       iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%Q, %K : tensor<64x8x4x32xf32>, tensor<64x8x4x32xf32>) outs(%sz : tensor<64x4x8x8xf32>) {
    ^bb0(%a: f32, %b: f32, %c: f32):
      %m = arith.mulf %a, %b : f32
      %r = arith.addf %c, %m : f32
      linalg.yield %r : f32
  } -> tensor<64x4x8x8xf32>
  %sm = linalg.generic {indexing_maps = [#id4, #id4],
                        iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%s : tensor<64x4x8x8xf32>) outs(%e : tensor<64x4x8x8xf32>) {
    ^bb0(%a: f32, %c: f32):
      %i = linalg.index 2 : index
      %j = linalg.index 3 : index
      %ok = arith.cmpi ule, %j, %i : index
      %x = arith.mulf %a, %scale : f32
      %r = arith.select %ok, %x, %ninf : f32
      linalg.yield %r : f32
  } -> tensor<64x4x8x8xf32>
  %p = linalg.softmax dimension(3) ins(%sm : tensor<64x4x8x8xf32>)
                                   outs(%e : tensor<64x4x8x8xf32>) -> tensor<64x4x8x8xf32>
  %oz = linalg.fill ins(%zero : f32) outs(%O : tensor<64x8x4x32xf32>) -> tensor<64x8x4x32xf32>
  %o = linalg.generic {indexing_maps = [#p, #v, #o],
                       iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%p, %V : tensor<64x4x8x8xf32>, tensor<64x8x4x32xf32>) outs(%oz : tensor<64x8x4x32xf32>) {
    ^bb0(%a: f32, %b: f32, %c: f32):
      %m = arith.mulf %a, %b : f32
      %r = arith.addf %c, %m : f32
      linalg.yield %r : f32
  } -> tensor<64x8x4x32xf32>
  return %o : tensor<64x8x4x32xf32>
}

// PTX: .target sm_80
// PTX: .entry window_attention_kernel(
// PTX: ex2.approx
// PTXAS: Compiling entry function 'window_attention_kernel'
// PTXAS: 0 bytes spill stores, 0 bytes spill loads
