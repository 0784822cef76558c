// photon.linear through convert-photon-to-linalg to the tensor cores. The conversion's
// matmul is a linalg.generic y[m, n] += x[m, k] * w[n, k] (a contraction upstream
// recognizes: test/unit/compiler/ContractionFormTest.cpp); photon-gpu-tile-and-fuse takes it
// as the linalg.matmul with transposed-B indexing maps, and photon-gpu-mma-sync makes it
// nvgpu.mma.sync (tf32: f32 operands need allow-tf32). Without allow-tf32, with a dynamic
// number of rows (the stages of a compiled model: the batch and the positions) or with the
// weight widened in the body (photon-compile --weights) it stays on the SIMT path.
// RUN: photon-opt %s --convert-photon-to-linalg --split-input-file \
// RUN:   | photon-cuda-opt --allow-unregistered-dialect --split-input-file --photon-gpu-kernels="allow-tf32=true" \
// RUN:   | FileCheck %s --check-prefix=TF32
// RUN: photon-opt %s --convert-photon-to-linalg --split-input-file \
// RUN:   | photon-cuda-opt --allow-unregistered-dialect --split-input-file --photon-gpu-kernels \
// RUN:   | FileCheck %s --check-prefix=SIMT
// RUN: photon-opt %s --convert-photon-to-linalg --split-input-file \
// RUN:   | photon-cuda-opt --allow-unregistered-dialect --split-input-file --photon-gpu-lowering="chips=sm_80 format=isa allow-tf32=true" -o %t.mlir
// RUN: %python %S/Inputs/gpu_binary.py ptx %t.mlir %t.ptx
// RUN: cat %t.ptx* | FileCheck %s --check-prefix=PTX

// 64 rows of x [.., 32] times W [48, 32]^T: grid (48/16, 64/64), one warp per 16x8 tile.
// TF32-LABEL: func.func @linear
// TF32: gpu.launch
// TF32: scf.for
// TF32: nvgpu.mma.sync({{.*}}) {mmaShape = [16, 8, 4], tf32Enabled} : (vector<2x1xf32>, vector<1x1xf32>, vector<2x2xf32>) -> vector<2x2xf32>
// TF32-NOT: linalg.generic
// TF32-NOT: linalg.matmul
// TF32: return
// SIMT-LABEL: func.func @linear
// SIMT-NOT: nvgpu.mma.sync
// SIMT: gpu.launch
// SIMT: return
// PTX: mma.sync.aligned.m16n8k4.row.col.f32.tf32.tf32.f32
module {
  func.func @linear(%x: tensor<1x64x32xf32>) -> tensor<1x64x48xf32> {
    %w = "photon.weight"() {name = "w", offset = 0 : i64} : () -> tensor<48x32xf32>
    %y = "photon.linear"(%x, %w) : (tensor<1x64x32xf32>, tensor<48x32xf32>) -> tensor<1x64x48xf32>
    return %y : tensor<1x64x48xf32>
  }
}

// -----

// With a bias: the accumulator starts from the broadcast bias, fused into the warp's tile
// and read as the mma's C fragment.
// TF32-LABEL: func.func @linear_bias
// TF32: gpu.launch
// TF32: memref.load %{{.*}} : memref<48xf32>
// TF32: vector.from_elements {{.*}} : vector<2x2xf32>
// TF32: nvgpu.mma.sync({{.*}}) {mmaShape = [16, 8, 4], tf32Enabled}
// TF32: return
module {
  func.func @linear_bias(%x: tensor<1x64x32xf32>) -> tensor<1x64x48xf32> {
    %w = "photon.weight"() {name = "w", offset = 0 : i64} : () -> tensor<48x32xf32>
    %b = "photon.weight"() {name = "b", offset = 8192 : i64} : () -> tensor<48xf32>
    %y = "photon.linear"(%x, %w, %b) : (tensor<1x64x32xf32>, tensor<48x32xf32>, tensor<48xf32>) -> tensor<1x64x48xf32>
    return %y : tensor<1x64x48xf32>
  }
}

// -----

// The rows of a stage: dynamic, not a multiple of the mma tile the planner can prove.
// TF32-LABEL: func.func @linear_dynamic_rows
// TF32-NOT: nvgpu.mma.sync
// TF32: gpu.launch
// TF32: return
module {
  func.func @linear_dynamic_rows(%x: tensor<?x?x32xf32>) -> tensor<?x?x48xf32> {
    %w = "photon.weight"() {name = "w", offset = 0 : i64} : () -> tensor<48x32xf32>
    %y = "photon.linear"(%x, %w) : (tensor<?x?x32xf32>, tensor<48x32xf32>) -> tensor<?x?x48xf32>
    return %y : tensor<?x?x48xf32>
  }
}
