// Tensor-core matmuls: block tiles, one warp per 16x8 tile, a K loop of mma.sync.
// RUN: photon-cuda-opt %s --photon-gpu-kernels | FileCheck %s --check-prefix=GPU
// RUN: photon-cuda-opt %s --photon-gpu-lowering="chips=sm_80 format=isa" -o %t.sm80.mlir
// RUN: %python %S/Inputs/gpu_binary.py ptx %t.sm80.mlir %t.sm80.ptx
// RUN: cat %t.sm80.ptx %t.sm80.ptx.1 | FileCheck %s --check-prefix=PTX80
// RUN: photon-cuda-opt %s --photon-gpu-lowering="chips=sm_90 format=isa" -o %t.sm90.mlir
// RUN: %python %S/Inputs/gpu_binary.py ptx %t.sm90.mlir %t.sm90.ptx
// RUN: FileCheck %s --check-prefix=PTX90 < %t.sm90.ptx
// RUN: %ptxas -arch=sm_80 -v %t.sm80.ptx -o %t.cubin 2>&1 | FileCheck %s --check-prefix=PTXAS
// REQUIRES: ptxas

// f16 x f16 -> f32 (fp32 accumulation), 128x256 * 256x128.
// GPU-LABEL: func.func @matmul_f16_f32
// Grid (N/32, M/64); block (32 lanes, 4 warps along N, 4 along M).
// GPU: gpu.launch blocks({{.*}}) in (%{{.*}} = %c4{{.*}}, %{{.*}} = %c2{{.*}}, %{{.*}} = %c1{{.*}}) threads({{.*}}) in (%{{.*}} = %c32{{.*}}, %{{.*}} = %c4{{.*}}, %{{.*}} = %c4
// GPU: scf.for
// GPU: nvgpu.mma.sync({{.*}}) {mmaShape = [16, 8, 16]} : (vector<4x2xf16>, vector<2x2xf16>, vector<2x2xf32>) -> vector<2x2xf32>
// GPU-NOT: linalg.matmul
func.func @matmul_f16_f32(%a: tensor<128x256xf16>, %b: tensor<256x128xf16>,
                          %out: tensor<128x128xf32>) -> tensor<128x128xf32> {
  %z = arith.constant 0.0 : f32
  %f = linalg.fill ins(%z : f32) outs(%out : tensor<128x128xf32>) -> tensor<128x128xf32>
  %r = linalg.matmul ins(%a, %b : tensor<128x256xf16>, tensor<256x128xf16>)
                     outs(%f : tensor<128x128xf32>) -> tensor<128x128xf32>
  return %r : tensor<128x128xf32>
}

// photon.linear's form, x W^T with W stored [N, K]; f16 accumulation.
// GPU-LABEL: func.func @linear_f16
// GPU: nvgpu.mma.sync({{.*}}) {mmaShape = [16, 8, 16]} : (vector<4x2xf16>, vector<2x2xf16>, vector<2x2xf16>) -> vector<2x2xf16>
func.func @linear_f16(%x: tensor<64x128xf16>, %w: tensor<96x128xf16>,
                      %out: tensor<64x96xf16>) -> tensor<64x96xf16> {
  %z = arith.constant 0.0 : f16
  %f = linalg.fill ins(%z : f16) outs(%out : tensor<64x96xf16>) -> tensor<64x96xf16>
  %r = linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>,
                                      affine_map<(m, n, k) -> (n, k)>,
                                      affine_map<(m, n, k) -> (m, n)>]
         ins(%x, %w : tensor<64x128xf16>, tensor<96x128xf16>)
         outs(%f : tensor<64x96xf16>) -> tensor<64x96xf16>
  return %r : tensor<64x96xf16>
}

// f32 stays on the SIMT path unless allow-tf32 is set.
// GPU-LABEL: func.func @matmul_f32
// GPU-NOT: nvgpu.mma.sync
// GPU: gpu.launch
// GPU: return
func.func @matmul_f32(%a: tensor<64x64xf32>, %b: tensor<64x64xf32>,
                      %out: tensor<64x64xf32>) -> tensor<64x64xf32> {
  %z = arith.constant 0.0 : f32
  %f = linalg.fill ins(%z : f32) outs(%out : tensor<64x64xf32>) -> tensor<64x64xf32>
  %r = linalg.matmul ins(%a, %b : tensor<64x64xf32>, tensor<64x64xf32>)
                     outs(%f : tensor<64x64xf32>) -> tensor<64x64xf32>
  return %r : tensor<64x64xf32>
}

// PTX80: .target sm_80
// PTX80: mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32
// PTX80: mma.sync.aligned.m16n8k16.row.col.f16.f16.f16.f16
// PTX90: .target sm_90
// PTX90: mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32
// PTXAS-NOT: bytes spill stores, [1-9]
// PTXAS: Compiling entry function 'matmul_f16_f32_kernel'
// PTXAS: 0 bytes spill stores, 0 bytes spill loads
