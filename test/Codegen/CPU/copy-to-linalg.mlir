// RUN: photon-opt %s --photon-copy-to-linalg | FileCheck %s
// RUN: photon-opt %s --photon-copy-to-linalg --convert-linalg-to-loops | FileCheck %s --check-prefix=LOOPS

// memref.copy becomes linalg.copy, which lowers to loops instead of a call of the
// memrefCopy runtime function.
// CHECK-LABEL: func @copy
// CHECK-NOT: memref.copy
// CHECK: linalg.copy ins(%arg0 : memref<?x8xf32>) outs(%arg1 : memref<?x8xf32>)
// LOOPS-LABEL: func @copy
// LOOPS: scf.for
// LOOPS: memref.load
// LOOPS: memref.store
func.func @copy(%a: memref<?x8xf32>, %b: memref<?x8xf32>) {
  memref.copy %a, %b : memref<?x8xf32> to memref<?x8xf32>
  return
}
