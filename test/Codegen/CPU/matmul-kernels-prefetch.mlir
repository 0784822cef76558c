// RUN: photon-opt %s --photon-matmul-kernels="rows=4 prefetch-rows=4" | FileCheck %s
// RUN: photon-opt %s --photon-matmul-kernels="rows=4 prefetch-rows=0" | FileCheck %s --check-prefix=OFF
// RUN: photon-opt %s --photon-lower-to-llvm="rows=4 prefetch-rows=4" | FileCheck %s --check-prefix=LLVM
// RUN: not photon-opt %s --photon-matmul-kernels="prefetch-rows=-1" 2>&1 | FileCheck %s --check-prefix=BAD

// The split-K GEMV prefetches, in its k loop, the same columns of the rows one block
// further on (clamped to the last row), into L2 (locality 2); the single-row tail does not.
#x = affine_map<(m, n, k) -> (m, k)>
#w = affine_map<(m, n, k) -> (n, k)>
#y = affine_map<(m, n, k) -> (m, n)>
// CHECK-LABEL: func.func private @__photon_matmul_10x32
// CHECK:         %[[RC:.*]] = arith.minsi %{{.*}}, %c9 : index
// rows of x one at a time (M < 4: the pairs loop does not run; its tile has the same
// prefetches)
// CHECK:         scf.for %{{.*}} = %{{.*}} to %{{.*}} step %c1
// CHECK:         scf.for %[[K:.*]] = %{{.*}} to %c32 step %{{.*}} iter_args
// CHECK-NEXT:      vector.load %arg0
// CHECK-NEXT:      memref.prefetch %arg1[%[[RC]], %[[K]]], read, locality<2>, data : memref<10x32xf32>
// CHECK-COUNT-3:   memref.prefetch %arg1
// CHECK-NEXT:      vector.load %arg1
// CHECK-NOT:     memref.prefetch
// CHECK:         return
// OFF-NOT: memref.prefetch
// LLVM: "llvm.intr.prefetch"(%{{.*}}) <{cache = 1 : i32, hint = 2 : i32, rw = 0 : i32}>
// BAD: sizes must be positive
func.func @linear(%x: memref<?x32xf32>, %w: memref<10x32xf32>, %y: memref<?x10xf32>) {
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x32xf32>, memref<10x32xf32>) outs(%y : memref<?x10xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b fastmath<reassoc,contract> : f32
    %s = arith.addf %c, %p fastmath<reassoc,contract> : f32
    linalg.yield %s : f32
  }
  return
}
