// RUN: photon-opt %s --photon-expand-shape-to-reinterpret-cast | FileCheck %s
// RUN: photon-opt %s --photon-expand-shape-to-reinterpret-cast --expand-strided-metadata | FileCheck %s --check-prefix=ESM

// Two dynamic sizes in one reassociation group ([?, 16] into [?, ?, 16]), the shape that
// crashes MLIR 22's expand-strided-metadata: it becomes a reinterpret_cast of the base
// buffer with the sizes given and the strides computed from the inner sizes.
// CHECK-LABEL: func @two_dynamic
// CHECK-NOT: memref.expand_shape
// CHECK: %[[BASE:.*]], %[[OFF:.*]], %{{.*}}:2, %[[ST:.*]]:2 = memref.extract_strided_metadata %arg0
// CHECK: %[[S1:.*]] = arith.muli %[[ST]]#0, %arg2
// CHECK: memref.reinterpret_cast %[[BASE]] to offset: [0], sizes: [%arg1, %arg2, 16], strides: [%[[S1]], 16, 1]
// ESM-LABEL: func @two_dynamic
// ESM-NOT: memref.expand_shape
func.func @two_dynamic(%m: memref<?x16xf32>, %a: index, %b: index) -> memref<?x?x16xf32> {
  %r = memref.expand_shape %m [[0, 1], [2]] output_shape [%a, %b, 16]
      : memref<?x16xf32> into memref<?x?x16xf32>
  return %r : memref<?x?x16xf32>
}

// A static expand_shape is rewritten too, with every size and stride constant.
// CHECK-LABEL: func @static
// CHECK: memref.reinterpret_cast %{{.*}} to offset: [0], sizes: [2, 3, 4], strides: [12, 4, 1]
func.func @static(%m: memref<6x4xf32>) -> memref<2x3x4xf32> {
  %r = memref.expand_shape %m [[0, 1], [2]] output_shape [2, 3, 4]
      : memref<6x4xf32> into memref<2x3x4xf32>
  return %r : memref<2x3x4xf32>
}
