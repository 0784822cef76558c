// Matmuls of the same types on the same x (q, k, v; gate, up) become one kernel call:
// x is packed (or norm-scaled) once and, with `parallel`, the rows of all their weights
// share one scf.parallel (one OpenMP region per group instead of one per matmul).
// RUN: photon-opt %s --photon-matmul-kernels="rows=4" | FileCheck %s
// RUN: photon-opt %s --photon-matmul-kernels="rows=4 parallel=true parallel-min-weights=1" | FileCheck %s --check-prefix=PAR
// The group lowers to LLVM with OpenMP: one fork per group kernel.
// RUN: photon-opt %s --photon-lower-to-llvm="openmp=true lanes=16" | mlir-translate --mlir-to-llvmir \
// RUN:   | llc -O2 -mtriple=x86_64-pc-linux-gnu -mcpu=znver4 | FileCheck %s --check-prefix=ASM

#x = affine_map<(m, n, k) -> (m, k)>
#w = affine_map<(m, n, k) -> (n, k)>
#y = affine_map<(m, n, k) -> (m, n)>

// q, k, v: the outputs are fresh buffers, initialized (copied) between the matmuls.
// CHECK-LABEL: func.func @qkv(
// CHECK-SAME:      %[[X:[^:]+]]: memref<?x512xf32>, %[[WQ:[^:]+]]: memref<128x512xf32>, %[[WK:[^:]+]]: memref<128x512xf32>, %[[WV:[^:]+]]: memref<128x512xf32>
// CHECK-NOT:     linalg.generic
// CHECK:         linalg.fill
// CHECK:         memref.copy
// CHECK:         memref.copy
// CHECK-NOT:     call
// CHECK:         call @[[K3:__photon_matmul_128x512_x3]](%[[X]], %[[WQ]], %[[WK]], %[[WV]], %[[YQ:[^,]+]], %[[YK:[^,]+]], %[[YV:[^)]+]])
// CHECK-NOT:     call
// CHECK:         return %[[YQ]], %[[YK]], %[[YV]]
func.func @qkv(%x: memref<?x512xf32>, %wq: memref<128x512xf32>, %wk: memref<128x512xf32>, %wv: memref<128x512xf32>)
    -> (memref<?x128xf32>, memref<?x128xf32>, memref<?x128xf32>) {
  %c0 = arith.constant 0 : index
  %z = arith.constant 0.0 : f32
  %m = memref.dim %x, %c0 : memref<?x512xf32>
  %yv = memref.alloc(%m) : memref<?x128xf32>
  linalg.fill ins(%z : f32) outs(%yv : memref<?x128xf32>)
  %yq = memref.alloc(%m) : memref<?x128xf32>
  memref.copy %yv, %yq : memref<?x128xf32> to memref<?x128xf32>
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %wq : memref<?x512xf32>, memref<128x512xf32>) outs(%yq : memref<?x128xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b fastmath<reassoc,contract> : f32
    %s = arith.addf %c, %p fastmath<reassoc,contract> : f32
    linalg.yield %s : f32
  }
  %yk = memref.alloc(%m) : memref<?x128xf32>
  memref.copy %yv, %yk : memref<?x128xf32> to memref<?x128xf32>
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %wk : memref<?x512xf32>, memref<128x512xf32>) outs(%yk : memref<?x128xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b fastmath<reassoc,contract> : f32
    %s = arith.addf %c, %p fastmath<reassoc,contract> : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %wv : memref<?x512xf32>, memref<128x512xf32>) outs(%yv : memref<?x128xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b fastmath<reassoc,contract> : f32
    %s = arith.addf %c, %p fastmath<reassoc,contract> : f32
    linalg.yield %s : f32
  }
  return %yq, %yk, %yv : memref<?x128xf32>, memref<?x128xf32>, memref<?x128xf32>
}

// The first output is read between the matmuls (a RoPE-like op on q before k's matmul):
// moving q's matmul after it would change the result, so each keeps its own call.
// CHECK-LABEL: func.func @read_between(
// CHECK:         call @[[K1:__photon_matmul_128x512]](
// CHECK:         linalg.copy
// CHECK:         call @[[K1]](
func.func @read_between(%x: memref<?x512xf32>, %wq: memref<128x512xf32>, %wk: memref<128x512xf32>,
                        %yq: memref<?x128xf32>, %t: memref<?x128xf32>) -> memref<?x128xf32> {
  %c0 = arith.constant 0 : index
  %m = memref.dim %x, %c0 : memref<?x512xf32>
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %wq : memref<?x512xf32>, memref<128x512xf32>) outs(%yq : memref<?x128xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b fastmath<reassoc,contract> : f32
    %s = arith.addf %c, %p fastmath<reassoc,contract> : f32
    linalg.yield %s : f32
  }
  linalg.copy ins(%yq : memref<?x128xf32>) outs(%t : memref<?x128xf32>)
  %yk = memref.alloc(%m) : memref<?x128xf32>
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %wk : memref<?x512xf32>, memref<128x512xf32>) outs(%yk : memref<?x128xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b fastmath<reassoc,contract> : f32
    %s = arith.addf %c, %p fastmath<reassoc,contract> : f32
    linalg.yield %s : f32
  }
  return %yk : memref<?x128xf32>
}

// A call between (effects unknown) also keeps them apart.
// CHECK-LABEL: func.func @call_between(
// CHECK:         call @[[K1]](
// CHECK-NEXT:    call @opaque()
// CHECK-NEXT:    call @[[K1]](
func.func private @opaque()
func.func @call_between(%x: memref<?x512xf32>, %wq: memref<128x512xf32>, %wk: memref<128x512xf32>)
    -> (memref<?x128xf32>, memref<?x128xf32>) {
  %c0 = arith.constant 0 : index
  %m = memref.dim %x, %c0 : memref<?x512xf32>
  %yq = memref.alloc(%m) : memref<?x128xf32>
  %yk = memref.alloc(%m) : memref<?x128xf32>
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %wq : memref<?x512xf32>, memref<128x512xf32>) outs(%yq : memref<?x128xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b fastmath<reassoc,contract> : f32
    %s = arith.addf %c, %p fastmath<reassoc,contract> : f32
    linalg.yield %s : f32
  }
  func.call @opaque() : () -> ()
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %wk : memref<?x512xf32>, memref<128x512xf32>) outs(%yk : memref<?x128xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b fastmath<reassoc,contract> : f32
    %s = arith.addf %c, %p fastmath<reassoc,contract> : f32
    linalg.yield %s : f32
  }
  return %yq, %yk : memref<?x128xf32>, memref<?x128xf32>
}

// The group kernel: x packed once for all three weights; the split-K GEMV and the GEMM
// pick weight and output by the group index.
// CHECK-LABEL: func.func private @__photon_matmul_128x512_x3(
// CHECK-SAME:      %[[KX:[^:]+]]: memref<?x512xf32>, %[[KW0:[^:]+]]: memref<128x512xf32>, %[[KW1:[^:]+]]: memref<128x512xf32>, %[[KW2:[^:]+]]: memref<128x512xf32>, %[[KY0:[^:]+]]: memref<?x128xf32>, %[[KY1:[^:]+]]: memref<?x128xf32>, %[[KY2:[^:]+]]: memref<?x128xf32>)
// CHECK:         scf.if
// CHECK-COUNT-1:   memref.alloc(%{{.+}}) {alignment = 64 : i64} : memref<?xf32>
// CHECK-NOT:       memref.alloc
// CHECK:           scf.for %[[GI:[^ ]+]] = %c0{{[_0-9]*}} to %c3
// CHECK:             %[[IS1:.+]] = arith.cmpi eq, %[[GI]], %c1
// CHECK:             %[[S1:.+]] = arith.select %[[IS1]], %[[KW1]], %[[KW0]] : memref<128x512xf32>
// CHECK:             %[[IS2:.+]] = arith.cmpi eq, %[[GI]], %c2
// CHECK:             arith.select %[[IS2]], %[[KW2]], %[[S1]] : memref<128x512xf32>
// CHECK:         } else {
// CHECK:           scf.for %{{[^ ]+}} = %c0{{[_0-9]*}} to %c3

// PAR-LABEL: func.func private @__photon_matmul_128x512_x3(
// GEMM: one 2-D parallel loop over (weight, block of weight rows)
// PAR:           scf.parallel (%{{[^,]+}}, %{{[^)]+}}) = (%c0{{[_0-9]*}}, %c0{{[_0-9]*}}) to (%c3{{[_0-9]*}}, %c128{{[_0-9]*}})
// PAR-NOT:       scf.parallel
// PAR:         } else {
// GEMV: the same over (weight, chunk of rows)
// PAR:           scf.parallel (%{{[^,]+}}, %{{[^)]+}}) = (%c0{{[_0-9]*}}, %c0{{[_0-9]*}}) to (%c3{{[_0-9]*}}, %c128{{[_0-9]*}})
// PAR-NOT:       scf.parallel
// PAR:         return

// ASM-LABEL: __photon_matmul_128x512_x3:
// ASM-COUNT-2:   callq __kmpc_fork_call
// ASM-NOT:       __kmpc_fork_call
// ASM-LABEL: .Lfunc_end
