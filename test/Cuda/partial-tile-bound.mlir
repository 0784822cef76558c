// A width of 640 (> 256 threads) is split across blocks of 256 threads; the fused
// producer's per-thread tile then has the size
// max(0, min(s - tid * ceildiv(s, 256), ceildiv(s, 256))), s = min(640 - 256 * bid, 256),
// which plain ValueBounds cannot bound (tid * ceildiv is not affine). Bounding each
// min/max expression on its own gives 1: a one-element private buffer instead of
// "buffer inside a kernel whose size has no compile-time bound" (the residual adds of the
// width-640 models).
// RUN: photon-cuda-opt %s --photon-gpu-kernels | FileCheck %s

// CHECK-LABEL: func.func @residual
// CHECK: gpu.launch blocks({{.*}}) in (%{{.*}} = %c3, {{.*}} threads({{.*}}) in (%{{.*}} = %c256,
// CHECK: memref.alloca() : memref<1x1x1xf32>
// CHECK-NOT: memref.alloc(
// CHECK: return
func.func @residual(%a: tensor<?x?x640xf32>, %b: tensor<?x?x640xf32>,
                    %c: tensor<?x?x640xf32>) -> tensor<?x?x640xf32> {
  %t = arith.addf %a, %b : tensor<?x?x640xf32>
  %r = arith.mulf %t, %c : tensor<?x?x640xf32>
  return %r : tensor<?x?x640xf32>
}
