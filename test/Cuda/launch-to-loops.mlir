// photon-gpu-launch-to-loops (test-only; used by split-k-attention-numeric.mlir): a
// synchronous gpu.launch becomes six nested scf.for loops (blocks z, y, x, threads z, y, x)
// with the body's ids replaced by the loop variables, gpu.alloc / gpu.dealloc become
// memref.alloc / memref.dealloc, and gpu.wait goes. Each diagnostic below is the pass
// refusing a kernel it cannot run as loops.
// RUN: photon-cuda-opt %s --split-input-file --photon-gpu-launch-to-loops -verify-diagnostics | FileCheck %s

// CHECK-LABEL: func.func @sync
// CHECK:         %[[M:.+]] = memref.alloc() : memref<8xf32>
// CHECK:         scf.for
// CHECK:           scf.for
// CHECK:             scf.for %[[BX:.+]] = %c0{{.*}} to %c2
// CHECK:               scf.for
// CHECK:                 scf.for
// CHECK:                   scf.for %[[TX:.+]] = %c0{{.*}} to %c4
// CHECK:                     %[[I:.+]] = arith.addi %{{.+}}, %[[TX]] : index
// CHECK:                     memref.store %{{.+}}, %[[M]][%[[I]]] : memref<8xf32>
// CHECK-NOT:     gpu.
// CHECK:         memref.dealloc %[[M]] : memref<8xf32>
func.func @sync(%v: f32) {
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c4 = arith.constant 4 : index
  %m = gpu.alloc () : memref<8xf32>
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c2, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c4, %sy = %c1, %sz = %c1) {
    %base = arith.muli %bx, %sx : index
    %i = arith.addi %base, %tx : index
    memref.store %v, %m[%i] : memref<8xf32>
    gpu.terminator
  }
  gpu.wait
  gpu.dealloc %m : memref<8xf32>
  return
}

// -----

func.func @async_launch() {
  %c1 = arith.constant 1 : index
  %t0 = gpu.wait async
  // expected-error @below {{photon-gpu-launch-to-loops: only synchronous launches without attributions or clusters can run as loops}}
  %t1 = gpu.launch async [%t0] blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c1, %sy = %c1, %sz = %c1) {
    gpu.terminator
  }
  return
}

// -----

func.func @barrier() {
  %c1 = arith.constant 1 : index
  // expected-error @below {{photon-gpu-launch-to-loops: a kernel with gpu ops inside (barriers, ids read by op, shuffles) cannot run as loops}}
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c1, %sy = %c1, %sz = %c1) {
    gpu.barrier
    gpu.terminator
  }
  return
}

// -----

func.func @host_shared() {
  // expected-error @below {{photon-gpu-launch-to-loops: unsupported gpu.alloc}}
  %m = gpu.alloc host_shared () : memref<8xf32>
  return
}
