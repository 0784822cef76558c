// RUN: photon-opt %s --photon-matmul-kernels=rows=4 | FileCheck %s
// Its one diagnostic: every size option must be positive (prefetch-rows may be 0).
// RUN: not photon-opt %s --photon-matmul-kernels=lanes=0 2>&1 | FileCheck %s --check-prefix=SIZES
// RUN: not photon-opt %s --photon-matmul-kernels=prefetch-rows=-1 2>&1 | FileCheck %s --check-prefix=SIZES
// SIZES: error: photon-matmul-kernels: sizes must be positive
// RUN: photon-opt %s --photon-matmul-kernels=parallel=true | FileCheck %s --check-prefix=PAR
// RUN: photon-opt %s --photon-matmul-kernels="lanes=16 gemm-min-rows=0" | FileCheck %s --check-prefix=L16
// RUN: photon-opt %s --photon-lower-to-llvm=openmp=true | FileCheck %s --check-prefix=OMP
// RUN: photon-opt %s --photon-matmul-kernels=rows=4 | FileCheck %s --check-prefix=NORM

// y[m, n] += x[m, k] * w[n, k], N = 6 (one block of 4 rows + 2 single rows),
// K = 20 (two 8-lane steps + a scalar tail of 4). Both matmuls of the same types call one
// kernel function.
#x = affine_map<(m, n, k) -> (m, k)>
#w = affine_map<(m, n, k) -> (n, k)>
#y = affine_map<(m, n, k) -> (m, n)>
// CHECK-LABEL: func.func @linear
// CHECK-NOT:     linalg.generic
// CHECK:         call @[[KERNEL:__photon_matmul_6x20]](%arg0, %arg1, %arg2)
// CHECK:         call @[[KERNEL]](%arg0, %arg1, %arg3)
// CHECK:         return
func.func @linear(%x: memref<?x20xf32>, %w: memref<6x20xf32>, %y: memref<?x6xf32>, %y2: memref<?x6xf32>) {
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x20xf32>, memref<6x20xf32>) outs(%y : memref<?x6xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b fastmath<reassoc,contract> : f32
    %s = arith.addf %c, %p fastmath<reassoc,contract> : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x20xf32>, memref<6x20xf32>) outs(%y2 : memref<?x6xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b fastmath<reassoc,contract> : f32
    %s = arith.addf %c, %p fastmath<reassoc,contract> : f32
    linalg.yield %s : f32
  }
  return
}

// Not x * W^T (w indexed (k, n)): left alone.
// CHECK-LABEL: func.func @not_transposed
// CHECK:         linalg.generic
#wk = affine_map<(m, n, k) -> (k, n)>
func.func @not_transposed(%x: memref<?x8xf32>, %w: memref<8x4xf32>, %y: memref<?x4xf32>) {
  linalg.generic {indexing_maps = [#x, #wk, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x8xf32>, memref<8x4xf32>) outs(%y : memref<?x4xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    linalg.yield %s : f32
  }
  return
}

// Dynamic weight shape: left alone.
// CHECK-LABEL: func.func @dynamic_weight
// CHECK:         linalg.generic
func.func @dynamic_weight(%x: memref<?x?xf32>, %w: memref<?x?xf32>, %y: memref<?x?xf32>) {
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x?xf32>, memref<?x?xf32>) outs(%y : memref<?x?xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    linalg.yield %s : f32
  }
  return
}

// The kernel: M >= 16 rows of x take the packed GEMM, fewer the split-K GEMV.
// CHECK-LABEL: func.func private @__photon_matmul_6x20(
// CHECK-SAME:      attributes {passthrough = ["noinline"]}
// CHECK:         %[[M:.+]] = memref.dim %arg0, %c0
// CHECK:         %[[BIG:.+]] = arith.cmpi sge, %[[M]], %c16
// CHECK:         scf.if %[[BIG]] {
// x packed into panels of 16 rows (2 vectors of 8 lanes), zero padded
// CHECK:           %[[XP:.+]] = memref.alloc(%{{.+}}) {alignment = 64 : i64} : memref<?xf32>
// CHECK:           memref.store %{{.+}}, %[[XP]]
// GEMM register tile: 4 weight rows x 16 rows of x, 8 accumulators
// CHECK:           %{{.+}}:8 = scf.for %{{.+}} iter_args(
// CHECK-COUNT-2:     vector.load %[[XP]]
// CHECK:             memref.load %arg1
// CHECK-NEXT:        vector.broadcast %{{.+}} : f32 to vector<8xf32>
// CHECK-COUNT-8:     vector.fma
// transposed store of the full tile: 64 scalars
// CHECK-COUNT-64:  memref.store %{{.+}}, %arg2
// last panel: as many rows as are valid
// CHECK:           scf.for
// CHECK:             vector.extract %{{.+}}[%{{.+}}] : f32 from vector<8xf32>
// the 2 rows of the N tail, one weight row per tile
// CHECK:           %{{.+}}:2 = scf.for %{{.+}} iter_args(
// CHECK:           memref.dealloc %[[XP]]
// CHECK:         } else {
// split-K GEMV: 4 weight rows; from M >= 4 on, rows of x in pairs (each weight vector
// feeds 2 accumulators, 8 in all), the remaining rows one at a time
// CHECK:           scf.for %[[N:[^ ]+]] = %{{[^ ]+}} to %c4{{[_0-9]*}} step %c4{{[_0-9]*}} {
// CHECK:             %[[MF:.+]] = arith.select
// CHECK:             scf.for %[[M0:[^ ]+]] = %{{[^ ]+}} to %[[MF]] step %c2
// CHECK:               %{{.+}}:8 = scf.for %[[K0:[^ ]+]] = %{{[^ ]+}} to %c16{{[_0-9]*}} step %c8{{[_0-9]*}} iter_args(
// CHECK:                 vector.load %arg0[%[[M0]], %[[K0]]]
// CHECK:                 vector.load %arg0[
// CHECK-COUNT-8:         vector.fma
// CHECK:             scf.for %[[MM:[^ ]+]] = %[[MF]] to %{{[^ ]+}} step %c1
// CHECK:               %{{.+}}:4 = scf.for %[[K:[^ ]+]] = %{{[^ ]+}} to %c16{{[_0-9]*}} step %c8{{[_0-9]*}} iter_args(
// CHECK:                 %[[XV:.+]] = vector.load %arg0[%[[MM]], %[[K]]] : memref<?x20xf32>, vector<8xf32>
// CHECK-COUNT-4:         vector.fma %[[XV]]
// CHECK:                 scf.yield
// CHECK-COUNT-4:       vector.reduction <add>, %{{.*}} fastmath<reassoc,contract> : vector<8xf32> into f32
// CHECK:               scf.for %{{[^ ]+}} = %c16{{[_0-9]*}} to %c20{{[_0-9]*}} step %c1{{[_0-9]*}} iter_args(
// CHECK-COUNT-4:         math.fma
// CHECK:               memref.load %arg2[%[[MM]], %[[N]]]
// CHECK:               memref.store
// rows 4 and 5
// CHECK:           scf.for %{{.+}} = %c4{{[_0-9]*}} to %c6{{[_0-9]*}} step %c1
// CHECK:             vector.reduction <add>
// CHECK:         return

// PAR-LABEL: func.func private @__photon_matmul_6x20(
// N * K = 120 < parallel-min-weights: sequential
// PAR-NOT:     scf.parallel
// PAR:         return

// 16 lanes, GEMV only: K = 20 is one 16-lane step + a tail of 4
// L16-LABEL: func.func private @__photon_matmul_6x20(
// L16-NOT:     scf.if
// L16:         scf.for %{{.+}} = %{{.+}} to %c16{{[_0-9]*}} step %c16{{[_0-9]*}} iter_args(
// L16:           vector.load %arg0{{.+}} vector<16xf32>
// L16:         scf.for %{{.+}} = %c16{{[_0-9]*}} to %c20

// A weight large enough to run in parallel: 16 chunks of 4096/16 = 256 rows in an OpenMP
// loop with a dynamic schedule.
// PAR-LABEL: func.func private @__photon_matmul_4096x16(
// PAR:         scf.parallel (%{{.*}}) = (%c0{{[_0-9]*}}) to (%c4096{{[_0-9]*}}) step (%c256{{[_0-9]*}})
// PAR:           scf.for %{{.+}} step %c8
// PAR-COUNT-8:       vector.fma
// OMP-LABEL: llvm.func @big(
// OMP-LABEL: llvm.func @__photon_matmul_4096x16(
// OMP-SAME:      passthrough = ["noinline"]
// OMP:         omp.parallel
// OMP:           omp.wsloop schedule(dynamic)
func.func @big(%x: memref<?x16xf32>, %w: memref<4096x16xf32>, %y: memref<?x4096xf32>) {
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x16xf32>, memref<4096x16xf32>) outs(%y : memref<?x4096xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    linalg.yield %s : f32
  }
  return
}

// The RMSNorm-fused form of photon-fuse-norm-matmul, y[m, n] += ((x[m, k] * r[m]) * g[k]) *
// w[n, k]: a kernel of its own with r and g as extra arguments, shared by both calls.
#nx = affine_map<(m, n, k) -> (m, k)>
#nr = affine_map<(m, n, k) -> (m)>
#ng = affine_map<(m, n, k) -> (k)>
#nw = affine_map<(m, n, k) -> (n, k)>
#ny = affine_map<(m, n, k) -> (m, n)>
// NORM-LABEL: func.func @linear_rmsnorm(
// NORM-SAME:      %[[X:[^:]+]]: memref<?x20xf32>, %[[R:[^:]+]]: memref<?xf32>, %[[G:[^:]+]]: memref<20xf32>, %[[W:[^:]+]]: memref<6x20xf32>, %[[Y:[^:]+]]: memref<?x6xf32>, %[[Y2:[^:]+]]: memref<?x6xf32>
// NORM-NOT:     linalg.generic
// NORM:         call @[[NK:__photon_matmul_rmsnorm_6x20]](%[[X]], %[[W]], %[[Y]], %[[R]], %[[G]])
// NORM:         call @[[NK]](%[[X]], %[[W]], %[[Y2]], %[[R]], %[[G]])
// A 4-input generic that is not the fused form (g indexed by n): left alone.
// NORM-LABEL: func.func @not_norm_form(
// NORM:         linalg.generic
func.func @linear_rmsnorm(%x: memref<?x20xf32>, %r: memref<?xf32>, %g: memref<20xf32>, %w: memref<6x20xf32>,
                          %y: memref<?x6xf32>, %y2: memref<?x6xf32>) {
  linalg.generic {indexing_maps = [#nx, #nr, #ng, #nw, #ny], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %r, %g, %w : memref<?x20xf32>, memref<?xf32>, memref<20xf32>, memref<6x20xf32>) outs(%y : memref<?x6xf32>) {
  ^bb0(%a: f32, %rm: f32, %gk: f32, %b: f32, %c: f32):
    %xr = arith.mulf %a, %rm : f32
    %xn = arith.mulf %xr, %gk : f32
    %p = arith.mulf %xn, %b fastmath<reassoc,contract> : f32
    %s = arith.addf %c, %p fastmath<reassoc,contract> : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [#nx, #nr, #ng, #nw, #ny], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %r, %g, %w : memref<?x20xf32>, memref<?xf32>, memref<20xf32>, memref<6x20xf32>) outs(%y2 : memref<?x6xf32>) {
  ^bb0(%a: f32, %rm: f32, %gk: f32, %b: f32, %c: f32):
    %xr = arith.mulf %rm, %a : f32
    %xn = arith.mulf %gk, %xr : f32
    %p = arith.mulf %b, %xn : f32
    %s = arith.addf %p, %c : f32
    linalg.yield %s : f32
  }
  return
}
#ngn = affine_map<(m, n, k) -> (n)>
func.func @not_norm_form(%x: memref<?x20xf32>, %r: memref<?xf32>, %g: memref<6xf32>, %w: memref<6x20xf32>,
                         %y: memref<?x6xf32>) {
  linalg.generic {indexing_maps = [#nx, #nr, #ngn, #nw, #ny], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %r, %g, %w : memref<?x20xf32>, memref<?xf32>, memref<6xf32>, memref<6x20xf32>) outs(%y : memref<?x6xf32>) {
  ^bb0(%a: f32, %rm: f32, %gk: f32, %b: f32, %c: f32):
    %xr = arith.mulf %a, %rm : f32
    %xn = arith.mulf %xr, %gk : f32
    %p = arith.mulf %xn, %b : f32
    %s = arith.addf %c, %p : f32
    linalg.yield %s : f32
  }
  return
}
// The fused kernel: (x, w, y, r, g).
// NORM-LABEL: func.func private @__photon_matmul_rmsnorm_6x20(
// NORM-SAME:      %[[KX:[^:]+]]: memref<?x20xf32>, %[[KW:[^:]+]]: memref<6x20xf32>, %[[KY:[^:]+]]: memref<?x6xf32>, %[[KR:[^:]+]]: memref<?xf32>, %[[KG:[^:]+]]: memref<20xf32>)
// NORM-SAME:      attributes {passthrough = ["noinline"]}
// NORM:         scf.if %{{.+}} {
// GEMM: x packed as (x * r[m]) * g[k], r read once per row (row 0 for the padding rows)
// NORM:           %[[XP:.+]] = memref.alloc(%{{.+}}) {alignment = 64 : i64} : memref<?xf32>
// NORM:           scf.for %[[PM:[^ ]+]] =
// NORM:             %[[IN:.+]] = arith.cmpi ult, %[[PM]],
// NORM:             %[[RI:.+]] = arith.select %[[IN]], %[[PM]], %c0
// NORM:             %[[RM:.+]] = memref.load %[[KR]][%[[RI]]]
// one branch per row of the panel: a row of x or (past M) zeros
// NORM:             scf.if %[[IN]] {
// NORM:               scf.for %[[PK:[^ ]+]] =
// NORM-NEXT:            %[[XV:.+]] = memref.load %[[KX]][%[[PM]], %[[PK]]]
// NORM-NEXT:            %[[XR:.+]] = arith.mulf %[[XV]], %[[RM]] : f32
// NORM-NEXT:            %[[GV:.+]] = memref.load %[[KG]][%[[PK]]]
// NORM-NEXT:            %[[XN:.+]] = arith.mulf %[[XR]], %[[GV]] : f32
// NORM:                 memref.store %[[XN]], %[[XP]]
// NORM:             } else {
// NORM:               scf.for
// NORM-NOT:             memref.load
// NORM:                 memref.store %cst{{[_0-9]*}}, %[[XP]]
// the GEMM itself reads only the packed panels and w
// NORM:           %{{.+}}:8 = scf.for %{{.+}} iter_args(
// NORM-COUNT-2:     vector.load %[[XP]]
// NORM:           memref.dealloc %[[XP]]
// NORM:         } else {
// GEMV: the M rows scaled once into xs, then the split-K loop on xs
// NORM:           %[[XS:.+]] = memref.alloc(%{{.+}}) {alignment = 64 : i64} : memref<?x20xf32>
// NORM:           scf.for %[[SM:[^ ]+]] =
// NORM-NEXT:        %[[SR:.+]] = memref.load %[[KR]][%[[SM]]]
// NORM:            scf.for %[[SK:[^ ]+]] =
// NORM-NEXT:          %[[SX:.+]] = memref.load %[[KX]][%[[SM]], %[[SK]]]
// NORM-NEXT:          %[[SG:.+]] = memref.load %[[KG]][%[[SK]]]
// NORM-NEXT:          %[[S1:.+]] = arith.mulf %[[SX]], %[[SR]] : f32
// NORM-NEXT:          %[[S2:.+]] = arith.mulf %[[S1]], %[[SG]] : f32
// NORM-NEXT:          memref.store %[[S2]], %[[XS]][%[[SM]], %[[SK]]]
// NORM:           scf.for %[[N:[^ ]+]] = %{{[^ ]+}} to %c4{{[_0-9]*}} step %c4{{[_0-9]*}} {
// NORM:             %[[MF:.+]] = arith.select
// NORM:             scf.for %{{[^ ]+}} = %{{[^ ]+}} to %[[MF]] step %c2
// NORM:               vector.load %[[XS]]
// NORM:             scf.for %[[MM:[^ ]+]] = %[[MF]] to %{{[^ ]+}} step %c1
// NORM:               %{{.+}}:4 = scf.for %[[K:[^ ]+]] = %{{[^ ]+}} to %c16{{[_0-9]*}} step %c8{{[_0-9]*}} iter_args(
// NORM:                 %[[XV2:.+]] = vector.load %[[XS]][%[[MM]], %[[K]]] : memref<?x20xf32>, vector<8xf32>
// NORM-COUNT-4:         vector.fma %[[XV2]]
// NORM:           memref.dealloc %[[XS]]
// NORM:         }
// NORM-NEXT:    return
