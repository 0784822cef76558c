// f16 KV caches (photon-compile --kv f16): kv_append narrows each K/V row to f16 on the
// store and cached_attention widens the cached rows on the load; scores, softmax and the
// P V accumulation stay f32. The fused CPU kernels convert 8 lanes at a time, and the x86
// back end picks F16C's vcvtps2ph / vcvtph2ps for them on an AVX2+FMA+F16C target
// (znver3) and on an AVX-512 target (skylake-avx512). The unfused lowering converts
// scalars.
// RUN: photon-opt %s --convert-photon-to-linalg | FileCheck %s
// RUN: photon-opt %s --convert-photon-to-linalg="fused-attention=false" | FileCheck %s --check-prefix=UNFUSED
// RUN: photon-opt %s --convert-photon-to-linalg --photon-lower-to-llvm | mlir-translate --mlir-to-llvmir \
// RUN:   | llc -O3 -mtriple=x86_64-pc-linux-gnu -mcpu=znver3 | FileCheck %s --check-prefix=ASM
// RUN: photon-opt %s --convert-photon-to-linalg --photon-lower-to-llvm | mlir-translate --mlir-to-llvmir \
// RUN:   | llc -O3 -mtriple=x86_64-pc-linux-gnu -mcpu=skylake-avx512 | FileCheck %s --check-prefix=ASM

// CHECK-LABEL: func.func @step(
// The append: one f32 row of 8 lanes loaded, narrowed, stored into the f16 pool.
// CHECK:         %[[ROW:.+]] = vector.load %{{.+}} : memref<?x?x2x16xf32{{.*}}>, vector<8xf32>
// CHECK:         %[[H:.+]] = arith.truncf %[[ROW]] : vector<8xf32> to vector<8xf16>
// CHECK:         vector.store %[[H]], %{{.+}} : memref<?x2x2x4x2x16xf16>, vector<8xf16>
// CHECK:         call @photon_attention_cached4_0(
// CHECK-LABEL: func.func private @photon_attention_cached4_0(
// CHECK-SAME:    memref<?x2x2x4x2x16xf16>
// Prefill: keys, an f16 load widened into the transposed f32 keys; values widened for P V
// (16 lanes: head_dim 16).
// CHECK:         %[[KH:.+]] = vector.load %{{.+}} : memref<?x2x2x4x2x16xf16>, vector<8xf16>
// CHECK:         %[[K:.+]] = arith.extf %[[KH]] : vector<8xf16> to vector<8xf32>
// CHECK:         vector.extract %[[K]][0]
// CHECK:         %[[PVH:.+]] = vector.load %{{.+}} : memref<?x2x2x4x2x16xf16>, vector<16xf16>
// CHECK:         %[[PV:.+]] = arith.extf %[[PVH]] : vector<16xf16> to vector<16xf32>
// CHECK:         vector.fma %{{.+}}, %[[PV]], %{{.+}} : vector<16xf32>
// Decode: keys, an f16 load widened, then FMAs with the f32 query.
// CHECK:         %[[DKH:.+]] = vector.load %{{.+}} : memref<?x2x2x4x2x16xf16>, vector<8xf16>
// CHECK:         %[[DK:.+]] = arith.extf %[[DKH]] : vector<8xf16> to vector<8xf32>
// CHECK:         vector.fma %{{.+}}, %[[DK]], %{{.+}} : vector<8xf32>
// Values: the same for P V.
// CHECK:         %[[VH:.+]] = vector.load %{{.+}} : memref<?x2x2x4x2x16xf16>, vector<8xf16>
// CHECK:         %[[VV:.+]] = arith.extf %[[VH]] : vector<8xf16> to vector<8xf32>
// CHECK:         vector.fma %{{.+}}, %[[VV]], %{{.+}} : vector<8xf32>

// UNFUSED-LABEL: func.func @step(
// UNFUSED:         arith.truncf %{{.+}} : f32 to f16
// UNFUSED:         memref.store %{{.+}} : memref<?x2x2x4x2x16xf16>
// UNFUSED:         memref.load %{{.+}} : memref<?x2x2x4x2x16xf16>
// UNFUSED:         arith.extf %{{.+}} : f16 to f32

// ASM-LABEL: step:
// ASM:         vcvtps2ph
// ASM-LABEL: photon_attention_cached4_0:
// ASM:         vcvtph2ps
// ASM:         vfmadd
// ASM-NOT:     __extendhfsf2
// ASM-NOT:     __truncsfhf2
module {
  func.func @step(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x2x16xf32>, %v: tensor<?x?x2x16xf32>,
                  %pool: memref<?x2x2x4x2x16xf16>, %table: memref<?x?xi32>, %lens: memref<?xi32>) -> tensor<?x?x4x16xf32> {
    %c = "photon.cache_bind"(%pool, %table, %lens) : (memref<?x2x2x4x2x16xf16>, memref<?x?xi32>, memref<?xi32>) -> !photon.kv_cache<level = 1, layers = 2, kv_heads = 2, head_dim = 16, block_size = 4, element = f16>
    "photon.kv_append"(%c, %k, %v) {layer = 1 : i64} : (!photon.kv_cache<level = 1, layers = 2, kv_heads = 2, head_dim = 16, block_size = 4, element = f16>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>) -> ()
    %o = "photon.cached_attention"(%c, %q) {layer = 1 : i64, scale = 0.25 : f32} : (!photon.kv_cache<level = 1, layers = 2, kv_heads = 2, head_dim = 16, block_size = 4, element = f16>, tensor<?x?x4x16xf32>) -> tensor<?x?x4x16xf32>
    return %o : tensor<?x?x4x16xf32>
  }
}
