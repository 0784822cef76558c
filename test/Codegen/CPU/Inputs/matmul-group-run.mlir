// Input of matmul-kernels-group-run.test: q, k, v-like matmuls on one x into fresh buffers.
#x = affine_map<(m, n, k) -> (m, k)>
#w = affine_map<(m, n, k) -> (n, k)>
#y = affine_map<(m, n, k) -> (m, n)>
func.func @g3(%x: memref<?x400xf32>, %w1: memref<70x400xf32>, %w2: memref<70x400xf32>, %w3: memref<70x400xf32>, %o1: memref<?x70xf32>, %o2: memref<?x70xf32>, %o3: memref<?x70xf32>) attributes {llvm.emit_c_interface} {
  %c0 = arith.constant 0 : index
  %m = memref.dim %x, %c0 : memref<?x400xf32>
  %a1 = memref.alloc(%m) : memref<?x70xf32>
  memref.copy %o1, %a1 : memref<?x70xf32> to memref<?x70xf32>
  %a2 = memref.alloc(%m) : memref<?x70xf32>
  memref.copy %o2, %a2 : memref<?x70xf32> to memref<?x70xf32>
  %a3 = memref.alloc(%m) : memref<?x70xf32>
  memref.copy %o3, %a3 : memref<?x70xf32> to memref<?x70xf32>
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w1 : memref<?x400xf32>, memref<70x400xf32>) outs(%a1 : memref<?x70xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b fastmath<reassoc,contract> : f32
    %s = arith.addf %c, %p fastmath<reassoc,contract> : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w2 : memref<?x400xf32>, memref<70x400xf32>) outs(%a2 : memref<?x70xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b fastmath<reassoc,contract> : f32
    %s = arith.addf %c, %p fastmath<reassoc,contract> : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w3 : memref<?x400xf32>, memref<70x400xf32>) outs(%a3 : memref<?x70xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b fastmath<reassoc,contract> : f32
    %s = arith.addf %c, %p fastmath<reassoc,contract> : f32
    linalg.yield %s : f32
  }
  memref.copy %a1, %o1 : memref<?x70xf32> to memref<?x70xf32>
  memref.copy %a2, %o2 : memref<?x70xf32> to memref<?x70xf32>
  memref.copy %a3, %o3 : memref<?x70xf32> to memref<?x70xf32>
  return
}
