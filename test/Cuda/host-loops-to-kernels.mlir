// Host-side loops over device buffers (what the compiler leaves outside linalg: kv_append's
// stores into the cache pool, the cached-attention loop) become kernels.
// The last two cases are the pass's diagnostics (expected-error).
// RUN: photon-cuda-opt %s --photon-gpu-host-loops-to-kernels -split-input-file -verify-diagnostics | FileCheck %s
// And the whole lowering accepts them (the loops end up in kernels, not host code).
// RUN: photon-cuda-opt %s --photon-gpu-kernels -split-input-file -verify-diagnostics | FileCheck %s --check-prefix=KERNELS

// kv_append: new K rows of [B, n, H=4, hd=8] into the pool at position lens[b] + t, block
// table[b][pos / 16], slot pos % 16. Parallel: the pool is only written.
// CHECK-LABEL: func.func @kv_append
// CHECK-SAME: (%[[POOL:.*]]: memref<?x16x4x8xf32>, %{{.*}}: memref<?x?xi32>, %{{.*}}: memref<?xi32>, %[[K:.*]]: memref<?x?x4x8xf32>)
// CHECK-DAG: %[[B:.*]] = memref.dim %[[K]], %c0
// CHECK-DAG: %[[N:.*]] = memref.dim %[[K]], %c1
// CHECK-DAG: %[[C4:.*]] = arith.constant 4 : index
// CHECK-DAG: %[[C8:.*]] = arith.constant 8 : index
// CHECK-NOT: scf.for
// CHECK: gpu.launch blocks(%[[BX:.*]], %[[BY:.*]], %[[BZ:.*]]) in (%{{.*}} = %[[B]], %{{.*}} = %[[N]], %{{.*}} = %[[C4]]) threads(%[[TX:.*]], %{{.*}}, %{{.*}}) in (%{{.*}} = %[[C8]], %{{.*}} = %c1{{.*}}, %{{.*}} = %c1{{.*}})
// CHECK-NOT: scf.for
// CHECK: memref.load %{{.*}}[%[[BX]]] : memref<?xi32>
// CHECK: memref.store %{{.*}}, %[[POOL]][%{{.*}}, %{{.*}}, %[[BZ]], %[[TX]]]
// CHECK: gpu.terminator
// CHECK-NOT: photon.serial
// CHECK: return
// KERNELS-LABEL: func.func @kv_append
// KERNELS-NOT: scf.for
// KERNELS: gpu.launch
func.func @kv_append(%pool: memref<?x16x4x8xf32>, %table: memref<?x?xi32>, %lens: memref<?xi32>,
                     %k: memref<?x?x4x8xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c16 = arith.constant 16 : index
  %b = memref.dim %k, %c0 : memref<?x?x4x8xf32>
  %n = memref.dim %k, %c1 : memref<?x?x4x8xf32>
  scf.for %i = %c0 to %b step %c1 {
    %c0_0 = arith.constant 0 : index
    %c1_0 = arith.constant 1 : index
    scf.for %t = %c0_0 to %n step %c1_0 {
      %c4 = arith.constant 4 : index
      scf.for %h = %c0 to %c4 step %c1 {
        %c8 = arith.constant 8 : index
        scf.for %d = %c0 to %c8 step %c1 {
          %l = memref.load %lens[%i] : memref<?xi32>
          %li = arith.index_cast %l : i32 to index
          %pos = arith.addi %li, %t : index
          %blk = arith.divui %pos, %c16 : index
          %slot = arith.remui %pos, %c16 : index
          %e = memref.load %table[%i, %blk] : memref<?x?xi32>
          %ei = arith.index_cast %e : i32 to index
          %v = memref.load %k[%i, %t, %h, %d] : memref<?x?x4x8xf32>
          memref.store %v, %pool[%ei, %slot, %h, %d] : memref<?x16x4x8xf32>
        }
      }
    }
  }
  return
}

// -----

// Cached attention: per (b, t, h) an online softmax over the pool with a host scratch
// row (memref.alloca) that becomes per-thread private memory inside the kernel; the
// loop carrying the softmax state (iter_args) stays a loop in each thread.
// CHECK-LABEL: func.func @cached_attention
// CHECK-NOT: memref.alloca
// CHECK: gpu.launch blocks(%[[BX:.*]], %[[BY:.*]], %{{.*}}) in (%{{.*}} = %{{.*}}, %{{.*}} = %{{.*}}, %{{.*}} = %c1{{.*}}) threads(%[[TX:.*]], %{{.*}}, %{{.*}}) in (%{{.*}} = %c4{{.*}}, %{{.*}} = %c1{{.*}}, %{{.*}} = %c1{{.*}})
// CHECK-NEXT: %[[ROW:.*]] = memref.alloca() : memref<8xf32>
// CHECK: scf.for
// CHECK: scf.for {{.*}} iter_args
// CHECK: memref.store %{{.*}}, %[[ROW]]
// CHECK: memref.store %{{.*}}, %{{.*}}[%[[BX]], %[[BY]], %[[TX]], %{{.*}}] : memref<?x?x4x8xf32>
// CHECK: gpu.terminator
// CHECK-NOT: photon.serial
func.func @cached_attention(%q: memref<?x?x4x8xf32>, %pool: memref<?x16x4x8xf32>,
                            %lens: memref<?xi32>, %out: memref<?x?x4x8xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c8 = arith.constant 8 : index
  %c16 = arith.constant 16 : index
  %zero = arith.constant 0.0 : f32
  %b = memref.dim %q, %c0 : memref<?x?x4x8xf32>
  %n = memref.dim %q, %c1 : memref<?x?x4x8xf32>
  %row = memref.alloca() : memref<8xf32>
  scf.for %i = %c0 to %b step %c1 {
    scf.for %t = %c0 to %n step %c1 {
      scf.for %h = %c0 to %c4 step %c1 {
        scf.for %d = %c0 to %c8 step %c1 {
          memref.store %zero, %row[%d] : memref<8xf32>
        }
        %l = memref.load %lens[%i] : memref<?xi32>
        %li = arith.index_cast %l : i32 to index
        %end = arith.addi %li, %t : index
        %s = scf.for %p = %c0 to %end step %c1 iter_args(%acc = %zero) -> (f32) {
          %blk = arith.divui %p, %c16 : index
          %slot = arith.remui %p, %c16 : index
          %dot = scf.for %d = %c0 to %c8 step %c1 iter_args(%a = %zero) -> (f32) {
            %x = memref.load %q[%i, %t, %h, %d] : memref<?x?x4x8xf32>
            %y = memref.load %pool[%blk, %slot, %h, %d] : memref<?x16x4x8xf32>
            %m = arith.mulf %x, %y : f32
            %r = arith.addf %a, %m : f32
            scf.yield %r : f32
          }
          %e = math.exp %dot : f32
          scf.for %d = %c0 to %c8 step %c1 {
            %o = memref.load %row[%d] : memref<8xf32>
            %y = memref.load %pool[%blk, %slot, %h, %d] : memref<?x16x4x8xf32>
            %m = arith.mulf %e, %y : f32
            %r = arith.addf %o, %m : f32
            memref.store %r, %row[%d] : memref<8xf32>
          }
          %acc2 = arith.addf %acc, %e : f32
          scf.yield %acc2 : f32
        }
        scf.for %d = %c0 to %c8 step %c1 {
          %o = memref.load %row[%d] : memref<8xf32>
          %r = arith.divf %o, %s : f32
          memref.store %r, %out[%i, %t, %h, %d] : memref<?x?x4x8xf32>
        }
      }
    }
  }
  return
}

// -----

// A loop whose iterations depend on each other through memory (prefix sum in place):
// one thread of a one-block kernel runs it as written.
// CHECK-LABEL: func.func @prefix_sum
// CHECK: memref.dim
// CHECK-NEXT: %[[ONE:.*]] = arith.constant 1 : index
// CHECK: gpu.launch blocks(%{{.*}}, %{{.*}}, %{{.*}}) in (%{{.*}} = %[[ONE]], %{{.*}} = %[[ONE]], %{{.*}} = %[[ONE]]) threads(%{{.*}}, %{{.*}}, %{{.*}}) in (%{{.*}} = %c1{{[_0-9]*}}, %{{.*}} = %[[ONE]], %{{.*}} = %[[ONE]])
// CHECK-NEXT: scf.for
// CHECK: gpu.terminator
// CHECK-NEXT: } {photon.serial}
func.func @prefix_sum(%a: memref<?xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %n = memref.dim %a, %c0 : memref<?xf32>
  scf.for %i = %c1 to %n step %c1 {
    %p = arith.subi %i, %c1 : index
    %x = memref.load %a[%p] : memref<?xf32>
    %y = memref.load %a[%i] : memref<?xf32>
    %s = arith.addf %x, %y : f32
    memref.store %s, %a[%i] : memref<?xf32>
  }
  return
}

// -----

// Loops that only compute on the host (no buffer access) stay.
// CHECK-LABEL: func.func @host_only
// CHECK-NOT: gpu.launch
// CHECK: scf.for
func.func @host_only(%n: index) -> index {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %r = scf.for %i = %c0 to %n step %c1 iter_args(%a = %c0) -> (index) {
    %b = arith.addi %a, %i : index
    scf.yield %b : index
  }
  return %r : index
}

// -----

// A host stack buffer filled by a host loop and passed on (the block table of a decoder
// window's cache): device memory, freed at return; the loop that fills it is a kernel.
// CHECK-LABEL: func.func @table_for_callee
// CHECK-NOT: memref.alloca
// CHECK: %[[T:[a-z_0-9]+]], %{{.*}} = gpu.alloc async [%{{.*}}] (%{{.*}}) : memref<?xi32>
// CHECK: gpu.launch
// CHECK: memref.store %{{.*}}, %[[T]][
// CHECK: gpu.terminator
// CHECK: call @use_table(%[[T]])
// CHECK: gpu.dealloc async [%{{.*}}] %[[T]] : memref<?xi32>
// CHECK-NEXT: gpu.wait [%{{.*}}]
// CHECK-NEXT: return
func.func private @use_table(memref<?xi32>)
func.func @table_for_callee(%n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %t = memref.alloca(%n) : memref<?xi32>
  scf.for %i = %c0 to %n step %c1 {
    %v = arith.index_cast %i : index to i32
    memref.store %v, %t[%i] : memref<?xi32>
  }
  call @use_table(%t) : (memref<?xi32>) -> ()
  return
}

// -----

// A host loop over device buffers whose results the host needs cannot become a kernel.
func.func @yields(%m: memref<?xf32>, %n: index) -> f32 {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %z = arith.constant 0.0 : f32
  // expected-error @below {{photon-gpu-host-loops-to-kernels: a host loop over device buffers that yields values to the host is not supported}}
  %s = scf.for %i = %c0 to %n step %c1 iter_args(%acc = %z) -> (f32) {
    %x = memref.load %m[%i] : memref<?xf32>
    %y = arith.addf %acc, %x : f32
    scf.yield %y : f32
  }
  return %s : f32
}

// -----

// A host loop that both launches kernels and touches device buffers itself.
func.func @launches(%m: memref<?xf32>, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %z = arith.constant 0.0 : f32
  // expected-error @below {{photon-gpu-host-loops-to-kernels: a host loop that launches kernels and also touches device buffers is not supported}}
  scf.for %i = %c0 to %n step %c1 {
    memref.store %z, %m[%i] : memref<?xf32>
    gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
               threads(%tx, %ty, %tz) in (%sx = %c1, %sy = %c1, %sz = %c1) {
      memref.store %z, %m[%c0] : memref<?xf32>
      gpu.terminator
    }
  }
  return
}
