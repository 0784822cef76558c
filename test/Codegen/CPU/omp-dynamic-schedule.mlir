// RUN: photon-opt %s --photon-omp-dynamic-schedule | FileCheck %s

// Every omp.wsloop gets schedule(dynamic).
// CHECK-LABEL: func @loop
// CHECK: omp.wsloop schedule(dynamic)
func.func @loop(%n: index, %m: memref<?xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %f = arith.constant 1.0 : f32
  omp.parallel {
    omp.wsloop {
      omp.loop_nest (%i) : index = (%c0) to (%n) step (%c1) {
        memref.store %f, %m[%i] : memref<?xf32>
        omp.yield
      }
    }
    omp.terminator
  }
  return
}
