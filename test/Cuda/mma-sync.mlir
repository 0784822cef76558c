// photon-gpu-mma-sync's diagnostic: a marked warp tile that is not 16x8xK. The rewrite
// itself is checked through photon-gpu-kernels and ptxas in matmul-mma.mlir.
// RUN: photon-cuda-opt %s --photon-gpu-mma-sync -split-input-file -verify-diagnostics

func.func @not_a_warp_tile(%a: memref<32x16xf16>, %b: memref<16x8xf16>, %c: memref<32x8xf32>) {
  %c1 = arith.constant 1 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c1, %sy = %c1, %sz = %c1) {
    // expected-error @below {{photon-gpu-mma-sync: expected a 16x8xK warp tile with K a multiple of 16, got 32x8x16}}
    linalg.matmul {photon.mma_k = 16 : i64}
        ins(%a, %b : memref<32x16xf16>, memref<16x8xf16>) outs(%c : memref<32x8xf32>)
    gpu.terminator
  }
  return
}

// -----

func.func @k_not_a_multiple(%a: memref<16x24xf16>, %b: memref<24x8xf16>, %c: memref<16x8xf32>) {
  %c1 = arith.constant 1 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c1, %sy = %c1, %sz = %c1) {
    // expected-error @below {{photon-gpu-mma-sync: expected a 16x8xK warp tile with K a multiple of 16, got 16x8x24}}
    linalg.matmul {photon.mma_k = 16 : i64}
        ins(%a, %b : memref<16x24xf16>, memref<24x8xf16>) outs(%c : memref<16x8xf32>)
    gpu.terminator
  }
  return
}
