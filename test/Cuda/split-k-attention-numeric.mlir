// Split-K cached attention computes what the one-thread-per-head kernel computes: both
// versions of the conversion's cached-attention loop nest run on the CPU (every kernel as
// host loops, photon-gpu-launch-to-loops) over the same cache, and their outputs agree.
// B = 2 sequences, n = 2 queries, 4 heads x 8, pool of 4 blocks of 16 slots; lens 20 and 1:
// sequence 0 reads 21 and 22 keys over two cache blocks, sequence 1 reads 2 and 3 keys, so
// with 4 splits some splits of sequence 1 have no key at all.
// REQUIRES: mlir-runner-libs
// DEFINE: %{cpu_lowering} = --convert-scf-to-cf --convert-math-to-llvm --expand-strided-metadata --finalize-memref-to-llvm --convert-arith-to-llvm --convert-index-to-llvm --convert-func-to-llvm --convert-cf-to-llvm --reconcile-unrealized-casts
// RUN: photon-cuda-opt %s --photon-gpu-host-loops-to-kernels --photon-gpu-launch-to-loops \
// RUN:   | mlir-opt %{cpu_lowering} \
// RUN:   | mlir-runner -e main -entry-point-result=void -shared-libs=%mlir_runner_libs > %t.ref
// RUN: photon-cuda-opt %s --photon-gpu-host-loops-to-kernels --photon-gpu-split-k-attention="splits=4 target-blocks=16" -o %t.split.mlir
// RUN: FileCheck %s --check-prefix=SPLIT < %t.split.mlir
// RUN: photon-cuda-opt %t.split.mlir --photon-gpu-launch-to-loops \
// RUN:   | mlir-opt %{cpu_lowering} \
// RUN:   | mlir-runner -e main -entry-point-result=void -shared-libs=%mlir_runner_libs > %t.split
// RUN: %python %S/Inputs/compare_printed.py %t.split %t.ref 1e-6 1e-5 | FileCheck %s
// The pass's defaults: 16 splits (1 or 2 keys per split for sequence 0, 13 or 14 empty
// splits for sequence 1).
// RUN: photon-cuda-opt %s --photon-gpu-host-loops-to-kernels --photon-gpu-split-k-attention --photon-gpu-launch-to-loops \
// RUN:   | mlir-opt %{cpu_lowering} \
// RUN:   | mlir-runner -e main -entry-point-result=void -shared-libs=%mlir_runner_libs > %t.split16
// RUN: %python %S/Inputs/compare_printed.py %t.split16 %t.ref 1e-6 1e-5 | FileCheck %s

// SPLIT-LABEL: func.func @cached_attention
// SPLIT: arith.minui
// SPLIT: gpu.alloc
// SPLIT-COUNT-2: gpu.launch
// CHECK: compared 128 values: equal within 1e-06 + 1e-05 |b|

func.func @cached_attention(%q: memref<?x?x4x8xf32>, %pool: memref<?x2x2x16x4x8xf32>,
                            %table: memref<?x?xi32>, %lens: memref<?xi32>,
                            %out: memref<?x?x4x8xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c8 = arith.constant 8 : index
  %c16 = arith.constant 16 : index
  %zero = arith.constant 0.0 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %scale = arith.constant 0.353553385 : f32
  %b = memref.dim %q, %c0 : memref<?x?x4x8xf32>
  %n = memref.dim %q, %c1 : memref<?x?x4x8xf32>
  %acc = memref.alloca() : memref<8xf32>
  scf.for %i = %c0 to %b step %c1 {
    scf.for %t = %c0 to %n step %c1 {
      scf.for %h = %c0 to %c4 step %c1 {
        scf.for %d = %c0 to %c8 step %c1 {
          memref.store %zero, %acc[%d] : memref<8xf32>
        }
        %l = memref.load %lens[%i] : memref<?xi32>
        %li = arith.index_cast %l : i32 to index
        %e0 = arith.addi %li, %t : index
        %end = arith.addi %e0, %c1 : index
        %r:2 = scf.for %j = %c0 to %end step %c1 iter_args(%m = %ninf, %s = %zero) -> (f32, f32) {
          %bi = arith.divui %j, %c16 : index
          %blk = memref.load %table[%i, %bi] : memref<?x?xi32>
          %blki = arith.index_cast %blk : i32 to index
          %slot = arith.remui %j, %c16 : index
          %dot = scf.for %d = %c0 to %c8 step %c1 iter_args(%a = %zero) -> (f32) {
            %x = memref.load %q[%i, %t, %h, %d] : memref<?x?x4x8xf32>
            %y = memref.load %pool[%blki, %c0, %c0, %slot, %h, %d] : memref<?x2x2x16x4x8xf32>
            %xy = arith.mulf %x, %y : f32
            %a2 = arith.addf %a, %xy : f32
            scf.yield %a2 : f32
          }
          %sc = arith.mulf %dot, %scale : f32
          %mn = arith.maximumf %m, %sc : f32
          %dm = arith.subf %m, %mn : f32
          %corr = math.exp %dm : f32
          %ds = arith.subf %sc, %mn : f32
          %p = math.exp %ds : f32
          %sc2 = arith.mulf %s, %corr : f32
          %sn = arith.addf %sc2, %p : f32
          scf.for %d = %c0 to %c8 step %c1 {
            %o = memref.load %acc[%d] : memref<8xf32>
            %v = memref.load %pool[%blki, %c0, %c1, %slot, %h, %d] : memref<?x2x2x16x4x8xf32>
            %oc = arith.mulf %o, %corr : f32
            %pv = arith.mulf %p, %v : f32
            %on = arith.addf %oc, %pv : f32
            memref.store %on, %acc[%d] : memref<8xf32>
          }
          scf.yield %mn, %sn : f32, f32
        }
        scf.for %d = %c0 to %c8 step %c1 {
          %o = memref.load %acc[%d] : memref<8xf32>
          %y = arith.divf %o, %r#1 : f32
          memref.store %y, %out[%i, %t, %h, %d] : memref<?x?x4x8xf32>
        }
      }
    }
  }
  return
}

func.func private @printMemrefF32(memref<*xf32>) attributes {llvm.emit_c_interface}

// x[i] = a pseudo-random value in [-1, 1) from i (an LCG step).
func.func @fill(%m: memref<?xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %n = memref.dim %m, %c0 : memref<?xf32>
  %a = arith.constant 1103515245 : i64
  %c = arith.constant 12345 : i64
  %mask = arith.constant 2147483647 : i64
  %scale = arith.constant 9.31322574615478515625e-10 : f32
  %one = arith.constant 1.0 : f32
  scf.for %i = %c0 to %n step %c1 {
    %ii = arith.index_cast %i : index to i64
    %x = arith.muli %ii, %a : i64
    %y = arith.addi %x, %c : i64
    %z = arith.andi %y, %mask : i64
    %f = arith.sitofp %z : i64 to f32
    %g = arith.mulf %f, %scale : f32
    %v = arith.subf %g, %one : f32
    memref.store %v, %m[%i] : memref<?xf32>
  }
  return
}

func.func @main() {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c3 = arith.constant 3 : index
  %c4 = arith.constant 4 : index
  %c128 = arith.constant 128 : index
  %c8192 = arith.constant 8192 : index
  %qf = memref.alloc(%c128) : memref<?xf32>
  call @fill(%qf) : (memref<?xf32>) -> ()
  %qs = memref.reinterpret_cast %qf to offset: [0], sizes: [2, 2, 4, 8], strides: [64, 32, 8, 1] : memref<?xf32> to memref<2x2x4x8xf32>
  %q = memref.cast %qs : memref<2x2x4x8xf32> to memref<?x?x4x8xf32>
  %pf = memref.alloc(%c8192) : memref<?xf32>
  call @fill(%pf) : (memref<?xf32>) -> ()
  %ps = memref.reinterpret_cast %pf to offset: [0], sizes: [4, 2, 2, 16, 4, 8], strides: [2048, 1024, 512, 32, 8, 1] : memref<?xf32> to memref<4x2x2x16x4x8xf32>
  %pool = memref.cast %ps : memref<4x2x2x16x4x8xf32> to memref<?x2x2x16x4x8xf32>
  // Sequence 0: blocks 1, 3; sequence 1: blocks 2, 0.
  %table = memref.alloc(%c2, %c2) : memref<?x?xi32>
  %i0 = arith.constant 0 : i32
  %i1 = arith.constant 1 : i32
  %i2 = arith.constant 2 : i32
  %i3 = arith.constant 3 : i32
  %i20 = arith.constant 20 : i32
  memref.store %i1, %table[%c0, %c0] : memref<?x?xi32>
  memref.store %i3, %table[%c0, %c1] : memref<?x?xi32>
  memref.store %i2, %table[%c1, %c0] : memref<?x?xi32>
  memref.store %i0, %table[%c1, %c1] : memref<?x?xi32>
  %lens = memref.alloc(%c2) : memref<?xi32>
  memref.store %i20, %lens[%c0] : memref<?xi32>
  memref.store %i1, %lens[%c1] : memref<?xi32>
  %out = memref.alloc(%c2, %c2) : memref<?x?x4x8xf32>
  call @cached_attention(%q, %pool, %table, %lens, %out)
      : (memref<?x?x4x8xf32>, memref<?x2x2x16x4x8xf32>, memref<?x?xi32>, memref<?xi32>, memref<?x?x4x8xf32>) -> ()
  %u = memref.cast %out : memref<?x?x4x8xf32> to memref<*xf32>
  call @printMemrefF32(%u) : (memref<*xf32>) -> ()
  return
}
