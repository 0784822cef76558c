// RUN: photon-opt %s --photon-free-at-last-use | FileCheck %s

// Two intermediates of a straight-line stage: each is freed right after its last use (a view
// of it counts), not at the end of the block where buffer-deallocation-pipeline put it.
// CHECK-LABEL: func @chain
// CHECK: %[[A:.*]] = memref.alloc
// CHECK: linalg.fill {{.*}} outs(%[[A]]
// CHECK: %[[B:.*]] = memref.alloc
// CHECK: %[[V:.*]] = memref.subview %[[A]]
// CHECK: memref.copy %[[V]], %[[B]]
// CHECK-NEXT: memref.dealloc %[[A]]
// CHECK: %[[C:.*]] = memref.alloc
// CHECK: scf.for
// CHECK: memref.load %[[B]]
// CHECK: }
// CHECK-NEXT: memref.dealloc %[[B]]
// CHECK: memref.copy %[[C]], %arg1
// CHECK-NEXT: memref.dealloc %[[C]]
// CHECK-NEXT: return
func.func @chain(%n: index, %out: memref<?x8xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %f = arith.constant 1.0 : f32
  %a = memref.alloc(%n) : memref<?x16xf32>
  linalg.fill ins(%f : f32) outs(%a : memref<?x16xf32>)
  %b = memref.alloc(%n) : memref<?x8xf32>
  %v = memref.subview %a[0, 0] [%n, 8] [1, 1] : memref<?x16xf32> to memref<?x8xf32, strided<[16, 1]>>
  memref.copy %v, %b : memref<?x8xf32, strided<[16, 1]>> to memref<?x8xf32>
  %c = memref.alloc(%n) : memref<?x8xf32>
  scf.for %i = %c0 to %n step %c1 {
    %x = memref.load %b[%i, %c0] : memref<?x8xf32>
    memref.store %x, %c[%i, %c0] : memref<?x8xf32>
  }
  memref.copy %c, %out : memref<?x8xf32> to memref<?x8xf32>
  memref.dealloc %a : memref<?x16xf32>
  memref.dealloc %b : memref<?x8xf32>
  memref.dealloc %c : memref<?x8xf32>
  return
}

// A raw pointer taken from a buffer escapes the analysis: its deallocation stays at the end.
// CHECK-LABEL: func @pointer
// CHECK: memref.extract_aligned_pointer_as_index
// CHECK: arith.addi
// CHECK-NEXT: memref.dealloc
// CHECK-NEXT: return
func.func @pointer(%n: index) -> index {
  %a = memref.alloc(%n) : memref<?xf32>
  %p = memref.extract_aligned_pointer_as_index %a : memref<?xf32> -> index
  %q = arith.addi %p, %n : index
  memref.dealloc %a : memref<?xf32>
  return %q : index
}

// A buffer a loop yields (an alias the analysis follows through the loop's result) stays
// allocated until the loop's result is last used; a dealloc in another block is left alone.
// CHECK-LABEL: func @yielded
// CHECK: %[[A:.*]] = memref.alloc
// CHECK: %[[R:.*]] = scf.for
// CHECK: memref.copy %[[R]], %arg1
// CHECK-NEXT: memref.dealloc %[[A]]
func.func @yielded(%n: index, %out: memref<4xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %a = memref.alloc() : memref<4xf32>
  %r = scf.for %i = %c0 to %n step %c1 iter_args(%x = %a) -> (memref<4xf32>) {
    scf.yield %x : memref<4xf32>
  }
  %t = arith.constant 2.0 : f32
  memref.copy %r, %out : memref<4xf32> to memref<4xf32>
  memref.store %t, %out[%c0] : memref<4xf32>
  memref.dealloc %a : memref<4xf32>
  return
}
