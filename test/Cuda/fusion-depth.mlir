// Fusion stops at values read outside a kernel's group and at use-path / size limits, so
// a deep chain with residual connections (x_{k+1} = x_k + x_k * x_k: every x_k has two
// users) becomes a few kernels, each computing two layers, instead of one kernel that
// recomputes the whole upstream chain along every path (exponential in depth: the cause
// of photon-gpu-tile-and-fuse running out of memory on 16-layer models).
// RUN: photon-cuda-opt %s --photon-gpu-kernels | FileCheck %s
// RUN: photon-cuda-opt %s --photon-gpu-kernels | FileCheck %s --check-prefix=MUL

// CHECK-LABEL: func.func @chain
// CHECK-COUNT-3: gpu.launch blocks
// CHECK-NOT: gpu.launch
// Intermediates between the kernels live in device memory and are freed; the result is
// returned.
// CHECK: return
// Five multiplications in all: no layer is computed twice across kernels.
// MUL-COUNT-5: arith.mulf
// MUL-NOT: arith.mulf
func.func @chain(%x0: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %m0 = arith.mulf %x0, %x0 : tensor<?x64xf32>
  %x1 = arith.addf %x0, %m0 : tensor<?x64xf32>
  %m1 = arith.mulf %x1, %x1 : tensor<?x64xf32>
  %x2 = arith.addf %x1, %m1 : tensor<?x64xf32>
  %m2 = arith.mulf %x2, %x2 : tensor<?x64xf32>
  %x3 = arith.addf %x2, %m2 : tensor<?x64xf32>
  %m3 = arith.mulf %x3, %x3 : tensor<?x64xf32>
  %x4 = arith.addf %x3, %m3 : tensor<?x64xf32>
  %m4 = arith.mulf %x4, %x4 : tensor<?x64xf32>
  %x5 = arith.addf %x4, %m4 : tensor<?x64xf32>
  return %x5 : tensor<?x64xf32>
}
