// photon-gpu-tile-and-fuse's diagnostics. Its tiling itself is checked through the
// photon-gpu-kernels pipeline (matmul-mma.mlir, fusion-depth.mlir, window-attention.mlir).
// RUN: photon-cuda-opt %s --photon-gpu-tile-and-fuse -split-input-file -verify-diagnostics
// RUN: photon-cuda-opt %s --photon-gpu-tile-and-fuse="chips=sm_90 tensor-cores=0" -split-input-file -verify-diagnostics
// A chip the CUDA 13 toolkit does not build for, or not an sm_XY name:
// RUN: not photon-cuda-opt %s --photon-gpu-tile-and-fuse="chips=sm_70" 2>&1 | FileCheck %s --check-prefix=OLD
// RUN: not photon-cuda-opt %s --photon-gpu-tile-and-fuse="chips=sm_80,gfx90a" 2>&1 | FileCheck %s --check-prefix=NAME
// OLD: error: photon-gpu-tile-and-fuse: chips: sm_70 is not supported: the CUDA 13 toolkit builds for sm_75 and newer
// NAME: error: photon-gpu-tile-and-fuse: chips: expected a CUDA architecture like sm_80, got 'gfx90a'

// A full reduction to a scalar has no parallel dimension to spread over blocks.
func.func @full_reduction(%x: tensor<64xf32>) -> tensor<f32> {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<f32>
  %z = linalg.fill ins(%cst : f32) outs(%e : tensor<f32>) -> tensor<f32>
  // expected-error @below {{photon-gpu-tile-and-fuse: op has no parallel dimension to map to the GPU; a full reduction to a scalar is not supported yet}}
  %r = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> ()>],
                       iterator_types = ["reduction"]}
      ins(%x : tensor<64xf32>) outs(%z : tensor<f32>) {
  ^bb0(%a: f32, %acc: f32):
    %s = arith.addf %a, %acc : f32
    linalg.yield %s : f32
  } -> tensor<f32>
  return %r : tensor<f32>
}

// -----

// On buffers, decomposing linalg.softmax would leave nothing that writes %y.
func.func @softmax_on_buffers(%x: memref<4x8xf32>, %y: memref<4x8xf32>) {
  // expected-error @below {{photon-gpu-tile-and-fuse: expects linalg ops on tensors (the pass runs before bufferization)}}
  linalg.softmax dimension(1) ins(%x : memref<4x8xf32>) outs(%y : memref<4x8xf32>)
  return
}
