// RUN: photon-opt %s --photon-inline-alloca-scopes | FileCheck %s

// The body of every memref.alloca_scope moves into the enclosing block and its results
// replace the scope's (convert-scf-to-openmp wraps loop bodies in scopes).
// CHECK-LABEL: func @scoped
// CHECK-NOT: memref.alloca_scope
// CHECK: %[[A:.*]] = memref.alloca() : memref<4xf32>
// CHECK: %[[V:.*]] = memref.load %[[A]]
// CHECK: return %[[V]]
func.func @scoped(%i: index) -> f32 {
  %r = memref.alloca_scope -> f32 {
    %a = memref.alloca() : memref<4xf32>
    %v = memref.load %a[%i] : memref<4xf32>
    memref.alloca_scope.return %v : f32
  }
  return %r : f32
}
