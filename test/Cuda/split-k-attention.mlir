// Split-K (flash-decoding) cached attention: the online-softmax kernel that
// photon-gpu-host-loops-to-kernels makes of the conversion's cached-attention loop (grid
// (B, n), one thread per head, every key in one thread) becomes a kernel on grid
// (B, n, splits) whose block z takes keys z, z + splits, ... and stores its partial
// (m, l, row) to a device buffer, and a combine kernel on grid (B, n) that runs the code
// after the key loop on M = max m_z, l = sum l_z exp(m_z - M), row = sum row_z exp(m_z - M).
// splits = min(8, max(1, ceil(target-blocks / (B * n)))), on the host.
// RUN: photon-cuda-opt %s --photon-gpu-host-loops-to-kernels --photon-gpu-split-k-attention=splits=8 -split-input-file | FileCheck %s
// With B = 2, n = 1 static: 8 splits for the default 256 target blocks, 2 for 4.
// RUN: photon-cuda-opt %s --photon-gpu-host-loops-to-kernels --photon-gpu-split-k-attention=splits=8 -split-input-file | FileCheck %s --check-prefix=STATIC8
// RUN: photon-cuda-opt %s --photon-gpu-host-loops-to-kernels --photon-gpu-split-k-attention="splits=8 target-blocks=4" -split-input-file | FileCheck %s --check-prefix=STATIC2
// splits=1 leaves the kernel as it is.
// RUN: photon-cuda-opt %s --photon-gpu-host-loops-to-kernels --photon-gpu-split-k-attention=splits=1 -split-input-file | FileCheck %s --check-prefix=OFF
// The GPU pipelines run it (default 16 splits), and ptxas accepts both kernels for sm_80
// and sm_90.
// RUN: photon-cuda-opt %s --photon-gpu-kernels -split-input-file | FileCheck %s --check-prefix=KERNELS
// One module (no split): the split kernel's PTX in %t.ptx, the combine kernel's in
// %t.ptx.1 (then plain_sum's).
// RUN: photon-cuda-opt %s --photon-gpu-lowering="chips=sm_80 format=isa" -o %t.mlir
// RUN: %python %S/Inputs/gpu_binary.py ptx %t.mlir %t.ptx
// RUN: FileCheck %s --check-prefix=PTX-SPLIT < %t.ptx
// RUN: FileCheck %s --check-prefix=PTX-COMBINE < %t.ptx.1
// RUN: %ptxas -arch=sm_80 -v %t.ptx -o %t.cubin 2>&1 | FileCheck %s --check-prefix=PTXAS
// RUN: %ptxas -arch=sm_80 -v %t.ptx.1 -o %t.1.cubin 2>&1 | FileCheck %s --check-prefix=PTXAS
// RUN: photon-cuda-opt %s --photon-gpu-lowering="chips=sm_90 format=isa" -o %t90.mlir
// RUN: %python %S/Inputs/gpu_binary.py ptx %t90.mlir %t90.ptx
// RUN: %ptxas -arch=sm_90 -v %t90.ptx -o %t90.cubin 2>&1 | FileCheck %s --check-prefix=PTXAS
// RUN: %ptxas -arch=sm_90 -v %t90.ptx.1 -o %t90.1.cubin 2>&1 | FileCheck %s --check-prefix=PTXAS
// REQUIRES: ptxas

// The loop nest of convert-photon-to-linalg's cached attention (CacheLowering.cpp) after
// bufferization: q [B, n, 4, 8], pool [NB, layers 2, K/V, 16 slots, 4 heads, 8], layer 0.
// CHECK-LABEL: func.func @cached_attention
// CHECK-SAME: (%[[Q:[a-z0-9_#]+]]: memref<?x?x4x8xf32>, %[[POOL:[a-z0-9_#]+]]: memref<?x2x2x16x4x8xf32>, %[[TABLE:[a-z0-9_#]+]]: memref<?x?xi32>, %[[LENS:[a-z0-9_#]+]]: memref<?xi32>, %[[OUT:[a-z0-9_#]+]]: memref<?x?x4x8xf32>)
// CHECK-DAG: %[[B:[a-z0-9_#]+]] = memref.dim %[[Q]], %c0
// CHECK-DAG: %[[N:[a-z0-9_#]+]] = memref.dim %[[Q]], %c1
// CHECK: %[[T:[a-z0-9_#]+]] = arith.constant 4 : index
// CHECK: %[[BN:[a-z0-9_#]+]] = arith.muli %[[B]], %[[N]]
// CHECK: %[[BN1:[a-z0-9_#]+]] = arith.maxui %[[BN]], %[[ONE:[a-z0-9_#]+]]
// CHECK: %[[C256:[a-z0-9_#]+]] = arith.constant 256 : index
// CHECK: %[[WANT:[a-z0-9_#]+]] = arith.ceildivui %[[C256]], %[[BN1]]
// CHECK: %[[W1:[a-z0-9_#]+]] = arith.maxui %[[WANT]], %{{.*}}
// CHECK: %[[C8:[a-z0-9_#]+]] = arith.constant 8 : index
// CHECK: %[[S:[a-z0-9_#]+]] = arith.minui %[[W1]], %[[C8]]
// Partials: m, l and the 8-float row per (b, t, split, head).
// CHECK: %[[PART:[a-z0-9_#]+]], %{{.*}} = gpu.alloc async [%{{.*}}] (%[[B]], %[[N]], %[[S]]) : memref<?x?x?x4x10xf32>
// CHECK: gpu.launch blocks(%[[BX:[a-z0-9_#]+]], %[[BY:[a-z0-9_#]+]], %[[BZ:[a-z0-9_#]+]]) in (%{{.*}} = %[[B]], %{{.*}} = %[[N]], %{{.*}} = %[[S]]) threads(%[[TX:[a-z0-9_#]+]], %{{.*}}, %{{.*}}) in (%{{.*}} = %[[T]],
// CHECK: %[[ROW:[a-z0-9_#]+]] = memref.alloca() : memref<8xf32>
// CHECK: %[[SHIFT:[a-z0-9_#]+]] = arith.muli %[[BZ]], %c1
// CHECK: %[[LB:[a-z0-9_#]+]] = arith.addi %c0{{.*}}, %[[SHIFT]]
// CHECK: %[[STEP:[a-z0-9_#]+]] = arith.muli %c1{{.*}}, %[[S]]
// CHECK: %[[R:[a-z0-9_#]+]]:2 = scf.for %{{.*}} = %[[LB]] to %{{.*}} step %[[STEP]] iter_args
// CHECK: arith.maximumf
// CHECK: scf.yield
// CHECK: memref.store %[[R]]#0, %[[PART]][%[[BX]], %[[BY]], %[[BZ]], %[[TX]], %c0{{.*}}]
// CHECK: memref.store %[[R]]#1, %[[PART]][%[[BX]], %[[BY]], %[[BZ]], %[[TX]], %c1{{.*}}]
// CHECK: scf.for %[[D:[a-z0-9_#]+]] = %c0{{.*}} to %c8{{.*}} step %c1
// CHECK: %[[X:[a-z0-9_#]+]] = memref.load %[[ROW]][%[[D]]]
// CHECK: %[[COL:[a-z0-9_#]+]] = arith.addi %[[D]], %c2
// CHECK: memref.store %[[X]], %[[PART]][%[[BX]], %[[BY]], %[[BZ]], %[[TX]], %[[COL]]]
// CHECK-NOT: %[[OUT]]
// CHECK: gpu.terminator
// The combine kernel: same grid x/y and threads, no split.
// CHECK: gpu.launch blocks(%[[CX:[a-z0-9_#]+]], %[[CY:[a-z0-9_#]+]], %{{.*}}) in (%{{.*}} = %[[B]], %{{.*}} = %[[N]], %{{.*}} = %c1{{.*}}) threads(%[[CT:[a-z0-9_#]+]], %{{.*}}, %{{.*}}) in (%{{.*}} = %[[T]],
// CHECK: %[[CROW:[a-z0-9_#]+]] = memref.alloca() : memref<8xf32>
// CHECK: %[[M:[a-z0-9_#]+]] = scf.for %[[Z:[a-z0-9_#]+]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[MA:[a-z0-9_#]+]] = %cst{{.*}}) -> (f32) {
// CHECK: %[[MZ:[a-z0-9_#]+]] = memref.load %[[PART]][%[[CX]], %[[CY]], %[[Z]], %[[CT]], %c0
// CHECK: arith.maximumf %[[MA]], %[[MZ]]
// CHECK: %[[L:[a-z0-9_#]+]] = scf.for %[[Z2:[a-z0-9_#]+]] = {{.*}} iter_args
// CHECK: %[[LZ:[a-z0-9_#]+]] = memref.load %[[PART]][%[[CX]], %[[CY]], %[[Z2]], %[[CT]], %c1
// CHECK: %[[MZ2:[a-z0-9_#]+]] = memref.load %[[PART]][%[[CX]], %[[CY]], %[[Z2]], %[[CT]], %c0
// CHECK: %[[DM:[a-z0-9_#]+]] = arith.subf %[[MZ2]], %[[M]]
// CHECK: %[[W:[a-z0-9_#]+]] = math.exp %[[DM]]
// CHECK: arith.mulf %[[LZ]], %[[W]]
// CHECK: scf.for %[[D2:[a-z0-9_#]+]] = %c0{{.*}} to %c8
// CHECK: %[[RS:[a-z0-9_#]+]] = scf.for
// CHECK: memref.load %[[PART]][%[[CX]], %[[CY]], %{{.*}}, %[[CT]], %{{.*}}]
// CHECK: math.exp
// CHECK: memref.store %[[RS]], %[[CROW]][%[[D2]]]
// What followed the key loop, on the combined values.
// CHECK: scf.for %[[D3:[a-z0-9_#]+]] =
// CHECK: %[[V:[a-z0-9_#]+]] = memref.load %[[CROW]][%[[D3]]]
// CHECK: %[[O:[a-z0-9_#]+]] = arith.divf %[[V]], %[[L]]
// CHECK: memref.store %[[O]], %[[OUT]][%[[CX]], %[[CY]], %[[CT]], %[[D3]]]
// CHECK: gpu.terminator
// CHECK: gpu.dealloc async [%{{.*}}] %[[PART]]
// CHECK: return

// OFF-LABEL: func.func @cached_attention
// OFF-COUNT-1: gpu.launch
// OFF-NOT: gpu.launch
// OFF-NOT: gpu.alloc

// KERNELS-LABEL: func.func @cached_attention
// KERNELS: %[[KS:[a-z0-9_]+]] = arith.minui %{{.*}}, %c16
// KERNELS: gpu.alloc {{.*}} : memref<?x?x?x4x10xf32>
// KERNELS: gpu.launch blocks({{.*}}) in (%{{.*}} = %{{.*}}, %{{.*}} = %{{.*}}, %{{.*}} = %[[KS]])
// KERNELS: gpu.launch blocks({{.*}}) in (%{{.*}} = %{{.*}}, %{{.*}} = %{{.*}}, %{{.*}} = %c1)
// KERNELS-NOT: gpu.launch
// KERNELS: gpu.dealloc

// The two kernels, compiled: the split kernel runs the online softmax (ex2) and stores m, l
// and the row; the combine kernel weighs each split by ex2(m_z - M) and divides by l.
// PTX-SPLIT: .entry cached_attention_kernel(
// PTX-SPLIT: ex2.approx
// PTX-SPLIT-COUNT-3: st.global.b32
// PTX-SPLIT-NOT: div.rn.f32
// PTX-COMBINE: .entry cached_attention_kernel(
// PTX-COMBINE: max.NaN.f32
// PTX-COMBINE: ex2.approx
// PTX-COMBINE: div.rn.f32
// PTX-COMBINE: st.global.b32
// PTXAS: 0 bytes spill stores, 0 bytes spill loads
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

// -----

// Not the online softmax (the sum's update has no rescale by exp(m - mNew)): one kernel,
// as photon-gpu-host-loops-to-kernels made it.
// CHECK-LABEL: func.func @plain_sum
// CHECK-NOT: gpu.alloc
// CHECK-COUNT-1: gpu.launch
// CHECK-NOT: gpu.launch
// CHECK: return
// OFF-LABEL: func.func @plain_sum
// KERNELS-LABEL: func.func @plain_sum
// KERNELS-COUNT-1: gpu.launch
// KERNELS-NOT: gpu.launch
func.func @plain_sum(%pool: memref<?x8xf32>, %lens: memref<?xi32>, %out: memref<?x4x8xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c8 = arith.constant 8 : index
  %zero = arith.constant 0.0 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %b = memref.dim %out, %c0 : memref<?x4x8xf32>
  %acc = memref.alloca() : memref<8xf32>
  scf.for %i = %c0 to %b step %c1 {
    scf.for %h = %c0 to %c4 step %c1 {
      scf.for %d = %c0 to %c8 step %c1 {
        memref.store %zero, %acc[%d] : memref<8xf32>
      }
      %l = memref.load %lens[%i] : memref<?xi32>
      %end = arith.index_cast %l : i32 to index
      %r:2 = scf.for %j = %c0 to %end step %c1 iter_args(%m = %ninf, %s = %zero) -> (f32, f32) {
        %x = memref.load %pool[%j, %c0] : memref<?x8xf32>
        %mn = arith.maximumf %m, %x : f32
        %p = math.exp %x : f32
        %sn = arith.addf %s, %p : f32
        scf.for %d = %c0 to %c8 step %c1 {
          %o = memref.load %acc[%d] : memref<8xf32>
          %v = memref.load %pool[%j, %d] : memref<?x8xf32>
          %pv = arith.mulf %p, %v : f32
          %on = arith.addf %o, %pv : f32
          memref.store %on, %acc[%d] : memref<8xf32>
        }
        scf.yield %mn, %sn : f32, f32
      }
      scf.for %d = %c0 to %c8 step %c1 {
        %o = memref.load %acc[%d] : memref<8xf32>
        %y = arith.divf %o, %r#1 : f32
        memref.store %y, %out[%i, %h, %d] : memref<?x4x8xf32>
      }
    }
  }
  return
}

// -----

// Static B = 2, n = 1: the split count is a constant and so is the partials buffer.
// STATIC8-LABEL: func.func @cached_attention_static
// STATIC8: gpu.alloc async [%{{.*}}] () : memref<2x1x8x4x10xf32>
// STATIC8: gpu.launch blocks({{.*}}) in (%{{.*}} = %c2{{.*}}, %{{.*}} = %c1{{.*}}, %{{.*}} = %c8{{.*}})
// STATIC8: gpu.launch blocks({{.*}}) in (%{{.*}} = %c2{{.*}}, %{{.*}} = %c1{{.*}}, %{{.*}} = %c1{{.*}})
// STATIC2-LABEL: func.func @cached_attention_static
// STATIC2: gpu.alloc async [%{{.*}}] () : memref<2x1x2x4x10xf32>
// STATIC2: gpu.launch blocks({{.*}}) in (%{{.*}} = %c2{{.*}}, %{{.*}} = %c1{{.*}}, %{{.*}} = %c2{{.*}})
// CHECK-LABEL: func.func @cached_attention_static
// OFF-LABEL: func.func @cached_attention_static
// KERNELS-LABEL: func.func @cached_attention_static
func.func @cached_attention_static(%q: memref<2x1x4x8xf32>, %pool: memref<?x2x2x16x4x8xf32>,
                            %table: memref<?x?xi32>, %lens: memref<?xi32>,
                            %out: memref<2x1x4x8xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c8 = arith.constant 8 : index
  %c16 = arith.constant 16 : index
  %zero = arith.constant 0.0 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %scale = arith.constant 0.353553385 : f32
  %b = arith.constant 2 : index
  %n = arith.constant 1 : index
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
            %x = memref.load %q[%i, %t, %h, %d] : memref<2x1x4x8xf32>
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
          memref.store %y, %out[%i, %t, %h, %d] : memref<2x1x4x8xf32>
        }
      }
    }
  }
  return
}

