// RUN: photon-opt %s --convert-photon-to-linalg --split-input-file | FileCheck %s
// RUN: photon-opt %s --convert-photon-to-linalg="fused-attention=false" --split-input-file | FileCheck %s --check-prefix=UNFUSED
// RUN: photon-opt %s --convert-photon-to-linalg --split-input-file --photon-lower-to-llvm | FileCheck %s --check-prefix=LLVM
// RUN: photon-opt %s --convert-photon-to-linalg="parallel-decode-min-keys=256" --split-input-file | FileCheck %s --check-prefix=PAR

// Causal attention with GQA (H = 4 query heads over Hkv = 2 kv heads, hd = 16): the fused
// kernel reads q/k/v through read-only buffers, keeps R x 16 scores, R x hd accumulators
// and R (max, sum) pairs in scratch and never builds a [B, Hkv, G, M, M] scores tensor.
// The kernel is a function shared by every call with the same operand types (not inlined).
// CHECK-LABEL: func.func @causal(
// CHECK-NOT:     linalg.generic
// CHECK:         %[[Q0:.+]] = bufferization.to_buffer %{{.+}} read_only : tensor<?x?x4x16xf32> to memref<?x?x4x16xf32, strided<[?, ?, ?, 1], offset: ?>>
// CHECK:         %[[K0:.+]] = bufferization.to_buffer %{{.+}} read_only : tensor<?x?x2x16xf32>
// CHECK:         %[[V0:.+]] = bufferization.to_buffer %{{.+}} read_only : tensor<?x?x2x16xf32>
// CHECK:         %[[OUT0:.+]] = memref.alloc(%{{.+}}, %{{.+}}) : memref<?x?x4x16xf32>
// CHECK:         %[[SC:.+]] = arith.constant 2.500000e-01 : f32
// CHECK:         call @photon_attention_causal_0(%[[Q0]], %[[K0]], %[[V0]], %[[OUT0]], %[[SC]]) {no_inline}
// CHECK:         bufferization.to_tensor %[[OUT0]] restrict writable
// CHECK-NOT:     math.exp
// CHECK:         return
// CHECK-LABEL: func.func private @photon_attention_causal_0(
// CHECK-SAME:    %[[Q:[^:]+]]: memref<?x?x4x16xf32, strided<[?, ?, ?, 1], offset: ?>>, %[[K:[^:]+]]: memref<?x?x2x16xf32, strided<[?, ?, ?, 1], offset: ?>>, %[[V:[^:]+]]: memref<?x?x2x16xf32, strided<[?, ?, ?, 1], offset: ?>>, %[[OUT:[^:]+]]: memref<?x?x4x16xf32>, %{{.+}}: f32)
// CHECK:         %[[SD:.+]] = memref.alloca() : memref<1x4x16xf32>
// CHECK:         %[[PD:.+]] = memref.alloca() : memref<1x4x16x8xf32>
// CHECK:         %[[LARGE:.+]] = arith.cmpi uge, %{{.+}}, %c64
// CHECK:         scf.if %[[LARGE]] {
// Prefill: (batch row, kv head) pairs as an scf.parallel, one heap scratch slot each.
// CHECK:           %[[S:.+]] = memref.alloc(%{{.+}}) : memref<?x4x16xf32>
// CHECK:           %[[P:.+]] = memref.alloc(%{{.+}}) : memref<?x4x16x8xf32>
// CHECK:           %[[ACC:.+]] = memref.alloc(%{{.+}}) : memref<?x4x16xf32>
// CHECK:           %[[ML:.+]] = memref.alloc(%{{.+}}) : memref<?x4x2xf32>
// CHECK:           scf.parallel (%{{.+}}, %{{.+}}) = ({{.+}}) to (%{{.+}}, %c2{{[_0-9]*}})
// At least 64 queries: the pair's keys transposed once into KT [blocks, hd, 16].
// CHECK:             scf.if
// CHECK:               %[[KT:.+]] = memref.alloc(%{{.+}}) {alignment = 64 : i64} : memref<?x16x16xf32>
// CHECK:               scf.for %{{.+}} = %{{.+}} to %{{.+}} step %c16
// CHECK:                   vector.load %[[K]]{{.*}} vector<8xf32>
// CHECK:                   memref.store %{{.+}}, %[[KT]]
// tiles of 4 (query, head) rows, then key blocks of 16
// CHECK:               scf.for %{{.+}} = %{{.+}} to %{{.+}} step %c4
// CHECK:                 scf.for %{{.+}} = %{{.+}} to %{{.+}} step %c16
// scores: a KT row (16 keys) times each row's query component broadcast, 4 accumulators
// CHECK:                   scf.for {{.*}} iter_args({{.*}}) -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>)
// CHECK:                     vector.load %[[KT]]{{.*}} : memref<?x16x16xf32>, vector<16xf32>
// CHECK:                     memref.load %[[Q]]
// CHECK:                     vector.fma {{.*}} : vector<16xf32>
// masked j <= i, then the online softmax on the row's vector with a vector exp (no libm call)
// CHECK:                   arith.cmpi ule, %{{.+}}, %{{.+}} : vector<16xi32>
// CHECK:                   arith.select
// CHECK:                   memref.load %[[ML]]
// CHECK:                   vector.reduction <maxnumf>, %{{.+}} : vector<16xf32> into f32
// CHECK:                   math.floor %{{.+}} : vector<16xf32>
// CHECK:                   vector.store %{{.+}}, %[[S]]
// CHECK:                   memref.store %{{.+}}, %[[ML]]
// p V: 4 rows x one 16-lane vector of hd over the keys of the block
// CHECK:                   scf.for {{.*}} iter_args({{.*}}) -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>)
// CHECK:                     vector.load %[[V]]{{.*}} vector<16xf32>
// CHECK:                     memref.load %[[S]]
// CHECK:                     vector.broadcast
// CHECK:                     vector.fma
// CHECK:                   vector.store %{{.+}}, %[[ACC]]
// CHECK:                 vector.store %{{.+}}, %[[OUT]]
// remainder rows one at a time
// CHECK:             scf.for %{{.+}} = %{{.+}} to %{{.+}} step %c1
// CHECK:           scf.reduce
// Decode (< 64 queries): one pass over the key blocks of a sequence serves every kv head.
// CHECK:         } else {
// CHECK:           %[[DACC:.+]] = memref.alloc(%{{.+}}) : memref<?x4x16xf32>
// CHECK:           %[[DML:.+]] = memref.alloc(%{{.+}}) : memref<?x4x2xf32>
// CHECK:           scf.for
// CHECK:             scf.for %{{.+}} = %{{.+}} to %c2
// CHECK:               vector.store %{{.+}}, %[[DACC]]
// CHECK:             scf.for %{{.+}} = %{{.+}} to %{{.+}} step %c16
// CHECK:               scf.for %{{.+}} = %{{.+}} to %c2
// CHECK:                 scf.for %{{.+}} = %{{.+}} to %{{.+}} step %c4
// CHECK:                   vector.load %[[K]]
// each key's 8-lane partial dot product to PD; 8 keys' partials reduced together by shuffles
// CHECK:                   vector.store %{{.+}}, %[[PD]]
// CHECK:                 vector.shuffle %{{.+}}, %{{.+}} [0, 8, 2, 10, 4, 12, 6, 14] : vector<8xf32>, vector<8xf32>
// CHECK:                 vector.store %{{.+}}, %[[SD]]
// CHECK:                 memref.store %{{.+}}, %[[DML]]
// CHECK:             scf.for %{{.+}} = %{{.+}} to %c2
// CHECK:               vector.store %{{.+}}, %[[OUT]]
// CHECK-NOT:     math.exp
// CHECK:         return

// The unfused form (the CUDA pipeline's): materialized [B, Hkv, G, M, M] scores.
// UNFUSED-LABEL: func.func @causal(
// UNFUSED-NOT:   vector.
// UNFUSED:       linalg.fill {{.*}} -> tensor<?x2x2x?x?xf32>
// UNFUSED:       linalg.generic
// UNFUSED:       math.exp
// UNFUSED:       return

// LLVM-LABEL: llvm.func @causal(
// LLVM-NOT:   = photon.
// LLVM:       llvm.intr.fmuladd({{.*}}) : (vector<8xf32>, vector<8xf32>, vector<8xf32>) -> vector<8xf32>
// LLVM:       llvm.intr.vector.reduce.fmax
// LLVM:       llvm.intr.floor({{.*}}) : (vector<8xf32>) -> vector<8xf32>
// LLVM-NOT:   llvm.intr.exp
// LLVM-LABEL: llvm.func @window(
module {
  func.func @causal(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x2x16xf32>, %v: tensor<?x?x2x16xf32>) -> tensor<?x?x4x16xf32> {
    %o = "photon.causal_attention"(%q, %k, %v) {scale = 0.25 : f32} : (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>) -> tensor<?x?x4x16xf32>
    return %o : tensor<?x?x4x16xf32>
  }
}

// -----

// Bounded attention (windows of W = 5 are the batch rows) is the same kernel; hd = 12
// uses 4 lanes.
// CHECK-LABEL: func.func @window(
// CHECK-NOT:     linalg.generic
// CHECK:         memref.alloc(%{{.+}}) : memref<?x5x2x12xf32>
// CHECK:         call @photon_attention_causal_0(
// CHECK-LABEL: func.func private @photon_attention_causal_0(
// CHECK:         memref.alloca() : memref<1x4x16xf32>
// CHECK:         memref.alloc(%{{.+}}) : memref<?x4x12xf32>
// CHECK:         vector.fma {{.*}} : vector<4xf32>
// CHECK:         math.floor %{{.+}} : vector<4xf32>
// UNFUSED-LABEL: func.func @window(
// UNFUSED:       linalg.fill {{.*}} -> tensor<?x2x1x5x5xf32>
module {
  func.func @window(%q: tensor<?x5x2x12xf32>, %k: tensor<?x5x2x12xf32>, %v: tensor<?x5x2x12xf32>) -> tensor<?x5x2x12xf32> {
    %o = "photon.bounded_attention"(%q, %k, %v) {prefix = 2 : i64, chunk = 4 : i64, scale = 0.288675129 : f32} : (tensor<?x5x2x12xf32>, tensor<?x5x2x12xf32>, tensor<?x5x2x12xf32>) -> tensor<?x5x2x12xf32>
    return %o : tensor<?x5x2x12xf32>
  }
}

// -----

// head_dim 6 is not a multiple of 4: the unfused form is kept.
// CHECK-LABEL: func.func @odd_head_dim(
// CHECK-NOT:     vector.fma
// CHECK:         linalg.fill {{.*}} -> tensor<?x1x1x?x?xf32>
module {
  func.func @odd_head_dim(%q: tensor<?x?x1x6xf32>, %k: tensor<?x?x1x6xf32>, %v: tensor<?x?x1x6xf32>) -> tensor<?x?x1x6xf32> {
    %o = "photon.causal_attention"(%q, %k, %v) {scale = 0.408248290 : f32} : (tensor<?x?x1x6xf32>, tensor<?x?x1x6xf32>, tensor<?x?x1x6xf32>) -> tensor<?x?x1x6xf32>
    return %o : tensor<?x?x1x6xf32>
  }
}

// -----

// Cached attention: one key block per cache block (block_size 12, padded to 16 in the
// scores scratch), its pool block looked up once per block through the table; K and V
// rows are vector loads from the pool.
// CHECK-LABEL: func.func @cached(
// CHECK-SAME:    %[[POOL0:[^:]+]]: memref<?x2x2x12x2x8xf32>, %[[TABLE0:[^:]+]]: memref<?x?xi32>, %[[LENS0:[^:]+]]: memref<?xi32>
// CHECK:         call @photon_attention_cached12_0(%{{.+}}, %[[POOL0]], %[[TABLE0]], %[[LENS0]], %{{.+}}, %{{.+}}, %{{.+}}) {no_inline} : ({{.*}}, index, f32) -> ()
// CHECK-LABEL: func.func private @photon_attention_cached12_0(
// CHECK-SAME:    %{{[^:]+}}: memref<?x?x4x8xf32, {{.*}}>, %[[POOL:[^:]+]]: memref<?x2x2x12x2x8xf32>, %[[TABLE:[^:]+]]: memref<?x?xi32>, %[[LENS:[^:]+]]: memref<?xi32>, %{{[^:]+}}: memref<?x?x4x8xf32>, %[[L:[^:]+]]: index
// CHECK:         memref.alloca() : memref<1x4x16xf32>
// CHECK:         scf.if
// CHECK:           scf.parallel (%[[PB:[^,]+]], %{{.+}}) =
// CHECK:             memref.load %[[LENS]][%[[PB]]]
// Prefill (at least 64 queries): the pair's keys transposed once into KT [blocks, hd, 16]
// (f32), so each key block's scores are 16-lane FMAs of a KT row by a broadcast query
// component, and the softmax update works on that vector.
// CHECK:             scf.if
// CHECK:               %[[KT:.+]] = memref.alloc(%{{.+}}) {alignment = 64 : i64} : memref<?x8x16xf32>
// CHECK:               scf.for %{{.+}} = %{{.+}} to %{{.+}} step %c12
// CHECK:                 memref.load %[[TABLE]][%[[PB]], %{{.+}}]
// CHECK:                   vector.load %[[POOL]][%{{.+}}, %[[L]], %c0{{[_0-9]*}}, %{{.+}}, %{{.+}}, %c0{{[_0-9]*}}] : memref<?x2x2x12x2x8xf32>, vector<8xf32>
// CHECK:                   memref.store %{{.+}}, %[[KT]]
// CHECK:                 vector.load %[[KT]]{{.*}} : memref<?x8x16xf32>, vector<16xf32>
// CHECK:                 vector.fma %{{.+}}, %{{.+}}, %{{.+}} : vector<16xf32>
// CHECK:               vector.reduction <maxnumf>, %{{.+}} : vector<16xf32> into f32
// CHECK:                 vector.load %[[POOL]][%{{.+}}, %[[L]], %c1{{[_0-9]*}}, %{{.+}}, %{{.+}}, %{{.+}}] : memref<?x2x2x12x2x8xf32>, vector<8xf32>
// Few queries over a long cache (a parallel decode): scores as dot products.
// CHECK:             } else {
// CHECK:                 scf.for %[[J0:[^ ]+]] = %{{.+}} to %{{.+}} step %c12
// CHECK:                   %[[BI:.+]] = arith.divui %[[J0]], %c12
// CHECK:                   memref.load %[[TABLE]][%[[PB]], %[[BI]]]
// CHECK:                   scf.for
// CHECK:                     vector.load %[[POOL]][%{{.+}}, %[[L]], %c0{{[_0-9]*}}, %{{.+}}, %{{.+}}, %c0{{[_0-9]*}}] : memref<?x2x2x12x2x8xf32>, vector<8xf32>
// CHECK:                   vector.reduction <maxnumf>
// CHECK:                   scf.for
// CHECK:                     vector.load %[[POOL]][%{{.+}}, %[[L]], %c1{{[_0-9]*}}, %{{.+}}, %{{.+}}, %{{.+}}] : memref<?x2x2x12x2x8xf32>, vector<8xf32>
// Decode: the block is looked up once for all kv heads.
// CHECK:         } else {
// CHECK:           scf.for %[[B:[^ ]+]] =
// CHECK:             memref.load %[[LENS]][%[[B]]]
// CHECK:             scf.for %[[DJ0:[^ ]+]] = %{{.+}} to %{{.+}} step %c12
// CHECK:               %[[DBI:.+]] = arith.divui %[[DJ0]], %c12
// CHECK:               memref.load %[[TABLE]][%[[B]], %[[DBI]]]
// CHECK:               scf.for %{{.+}} = %{{.+}} to %c2
// CHECK:                 vector.load %[[POOL]]
// the next block's K and V rows of this head go to L2 while this block is read
// CHECK:                 memref.prefetch %[[POOL]][%{{.+}}, %[[L]], %c0{{[_0-9]*}}, {{.+}}], read, locality<2>, data
// CHECK:                 memref.prefetch %[[POOL]][%{{.+}}, %[[L]], %c1{{[_0-9]*}}, {{.+}}], read, locality<2>, data
// each key's 8-lane partial dot product is stored, then 8 keys' partials are reduced together
// by shuffles and adds (no horizontal reduction per key)
// CHECK:                 vector.store %{{.+}}, %{{.+}} : memref<1x4x16x8xf32>, vector<8xf32>
// CHECK-NOT:             vector.reduction <add>
// CHECK:               vector.shuffle %{{.+}}, %{{.+}} [0, 8, 2, 10, 4, 12, 6, 14] : vector<8xf32>, vector<8xf32>
// CHECK:               vector.shuffle %{{.+}}, %{{.+}} [0, 1, 2, 3, 8, 9, 10, 11] : vector<8xf32>, vector<8xf32>
// With parallel-decode-min-keys (photon-compile --openmp), decode over at least 256 keys
// (batch row 0's times the batch: a batched decode of short sequences counts every row) also
// takes the parallel (batch row, kv head) branch; the kernel's name carries the threshold.
// PAR-LABEL: func.func @cached(
// PAR:         call @photon_attention_cached12_par256_0(
// PAR-LABEL: func.func private @photon_attention_cached12_par256_0(
// PAR-SAME:    %{{[^:]+}}: memref<?x?x4x8xf32, {{.*}}>, %{{[^:]+}}: memref<?x2x2x12x2x8xf32>, %{{[^:]+}}: memref<?x?xi32>, %[[PLENS:[^:]+]]: memref<?xi32>
// PAR:         %[[PREFILL:.+]] = arith.cmpi uge, %{{.+}}, %c64
// PAR:         %[[ROWS:.+]] = arith.cmpi ugt, %{{.+}}, %c0
// PAR:         %[[K0:.+]] = scf.if %[[ROWS]] -> (index) {
// PAR:           memref.load %[[PLENS]][%c0
// PAR:         %[[ALL:.+]] = arith.muli %[[K0]], %{{.+}} : index
// PAR:         %[[LONG:.+]] = arith.cmpi uge, %[[ALL]], %c256
// PAR:         %[[ANY:.+]] = arith.ori %[[PREFILL]], %[[LONG]]
// PAR:         scf.if %[[ANY]] {
// PAR:           scf.parallel
// PAR:         } else {
// UNFUSED-LABEL: func.func @cached(
// UNFUSED-NOT:   vector.
// UNFUSED:       scf.for {{.*}} iter_args(%{{.*}} = %cst{{.*}}, %{{.*}} = %cst{{.*}}) -> (f32, f32)
// UNFUSED:         math.exp
module {
  func.func @cached(%q: tensor<?x?x4x8xf32>, %pool: memref<?x2x2x12x2x8xf32>, %table: memref<?x?xi32>, %lens: memref<?xi32>) -> tensor<?x?x4x8xf32> {
    %c = "photon.cache_bind"(%pool, %table, %lens) : (memref<?x2x2x12x2x8xf32>, memref<?x?xi32>, memref<?xi32>) -> !photon.kv_cache<level = 1, layers = 2, kv_heads = 2, head_dim = 8, block_size = 12, element = f32>
    %o = "photon.cached_attention"(%c, %q) {layer = 1 : i64, scale = 0.353553385 : f32} : (!photon.kv_cache<level = 1, layers = 2, kv_heads = 2, head_dim = 8, block_size = 12, element = f32>, tensor<?x?x4x8xf32>) -> tensor<?x?x4x8xf32>
    return %o : tensor<?x?x4x8xf32>
  }
}
