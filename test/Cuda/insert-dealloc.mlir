// photon-gpu-insert-dealloc frees every intermediate buffer after its last use, but not
// buffers that leave the function (returned directly, through a view, or through a callee
// returning its argument); photon-gpu-map-to-launch then frees them with gpu.dealloc.
// RUN: photon-cuda-opt %s --photon-gpu-insert-dealloc | FileCheck %s
// RUN: photon-cuda-opt %s --photon-gpu-insert-dealloc --photon-gpu-map-to-launch | FileCheck %s --check-prefix=GPU

func.func private @fresh(%n: index) -> memref<?xf32> {
  %a = memref.alloc(%n) : memref<?xf32>
  %t = memref.alloc(%n) : memref<?xf32>
  memref.copy %t, %a : memref<?xf32> to memref<?xf32>
  return %a : memref<?xf32>
}
// CHECK-LABEL: func.func private @fresh
// CHECK: %[[A:.*]] = memref.alloc
// CHECK: %[[T:.*]] = memref.alloc
// CHECK-NEXT: memref.copy %[[T]], %[[A]]
// CHECK-NEXT: memref.dealloc %[[T]]
// CHECK-NOT: memref.dealloc
// CHECK: return %[[A]]

func.func private @passthrough(%m: memref<?xf32>) -> memref<2x?xf32> {
  %c = arith.constant 0 : index
  %v = memref.expand_shape %m [[0, 1]] output_shape [2, %c] : memref<?xf32> into memref<2x?xf32>
  return %v : memref<2x?xf32>
}

// CHECK-LABEL: func.func @caller
func.func @caller(%n: index, %out: memref<?xf32>) -> memref<2x?xf32> {
  // A callee's fresh result is freed by the caller after its last use.
  %r = call @fresh(%n) : (index) -> memref<?xf32>
  // Returned through a callee that returns (a view of) its argument: kept.
  %k = memref.alloc(%n) : memref<?xf32>
  %p = call @passthrough(%k) : (memref<?xf32>) -> memref<2x?xf32>
  // Used inside a loop nest: freed after the loop.
  %s = memref.alloc(%n) : memref<?xf32>
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  scf.for %i = %c0 to %n step %c1 {
    %x = memref.load %r[%i] : memref<?xf32>
    memref.store %x, %s[%i] : memref<?xf32>
  }
  memref.copy %s, %out : memref<?xf32> to memref<?xf32>
  return %p : memref<2x?xf32>
}
// CHECK: %[[R:.*]] = call @fresh
// CHECK: %[[K:.*]] = memref.alloc
// CHECK: %[[S:.*]] = memref.alloc
// CHECK: scf.for
// CHECK: }
// CHECK-NEXT: memref.dealloc %[[R]]
// CHECK-NEXT: memref.copy %[[S]]
// CHECK-NEXT: memref.dealloc %[[S]]
// CHECK-NOT: memref.dealloc %[[K]]
// CHECK: return

// GPU-NOT: memref.dealloc
// GPU-LABEL: func.func @caller
// GPU: call @fresh
// GPU: gpu.dealloc
// GPU: gpu.dealloc
// GPU-NOT: gpu.dealloc
// GPU: return
