// RUN: photon-opt %s --photon-matmul-kernels | FileCheck %s
// RUN: photon-opt %s --photon-matmul-kernels=parallel=true | FileCheck %s --check-prefix=PAR

// y[m, n] += x[m, k] * w[n, k], N = 6 (one block of 4 rows + 2 single rows),
// K = 20 (two 8-lane steps + a scalar tail of 4).
#x = affine_map<(m, n, k) -> (m, k)>
#w = affine_map<(m, n, k) -> (n, k)>
#y = affine_map<(m, n, k) -> (m, n)>
// CHECK-LABEL: func.func @linear
// CHECK-NOT:     linalg.generic
// CHECK:         scf.for %[[N:[^ ]+]] = %{{[^ ]+}} to %c4 step %c4{{[_0-9]*}} {
// CHECK:           scf.for %[[M:[^ ]+]] = %{{[^ ]+}} to %{{[^ ]+}} step %c1
// CHECK:             %{{.+}}:4 = scf.for %[[K:[^ ]+]] = %{{[^ ]+}} to %c16 step %c8 iter_args(
// CHECK:               %[[XV:.+]] = vector.load %arg0[%[[M]], %[[K]]] : memref<?x20xf32>, vector<8xf32>
// CHECK-COUNT-4:       vector.fma %[[XV]]
// CHECK:               scf.yield
// CHECK-COUNT-4:     vector.reduction <add>, %{{.*}} fastmath<reassoc,contract> : vector<8xf32> into f32
// CHECK:             scf.for %{{[^ ]+}} = %c16{{[_0-9]*}} to %c20 step %c1{{[_0-9]*}} iter_args(
// CHECK-COUNT-4:       math.fma
// CHECK:             memref.load %arg2[%[[M]], %[[N]]]
// CHECK:             memref.store
// single rows 4 and 5
// CHECK-COUNT-2:  vector.reduction <add>
// CHECK:          return
// PAR:           scf.parallel (%{{.*}}) = (%c0) to (%c4) step (%c4{{[_0-9]*}}) {
// PAR:             vector.fma
func.func @linear(%x: memref<?x20xf32>, %w: memref<6x20xf32>, %y: memref<?x6xf32>) {
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x20xf32>, memref<6x20xf32>) outs(%y : memref<?x6xf32>) {
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
