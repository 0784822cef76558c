// Reduced-precision weights (photon-compile --weights f16|bf16|q8|q4): photon-matmul-kernels
// widens the weight inside the dot product, and the instructions the x86 back end picks for
// it on an AVX2+FMA+F16C target (znver3, 8 lanes) and an AVX-512 target (skylake-avx512,
// 16 lanes).
// RUN: photon-opt %s --photon-matmul-kernels=rows=4 | FileCheck %s
// RUN: photon-opt %s --photon-lower-to-llvm | mlir-translate --mlir-to-llvmir \
// RUN:   | llc -O3 -mtriple=x86_64-pc-linux-gnu -mcpu=znver3 | FileCheck %s --check-prefix=AVX2
// RUN: photon-opt %s --photon-lower-to-llvm="lanes=16" | mlir-translate --mlir-to-llvmir \
// RUN:   | llc -O3 -mtriple=x86_64-pc-linux-gnu -mcpu=skylake-avx512 | FileCheck %s --check-prefix=AVX512

#x = affine_map<(m, n, k) -> (m, k)>
#w = affine_map<(m, n, k) -> (n, k)>
#d = affine_map<(m, n, k) -> (n, k floordiv 32)>
#y = affine_map<(m, n, k) -> (m, n)>

// f16: vector<8xf16> loads widened by arith.extf, FMAs in f32; the GEMM widens the scalar.
// CHECK-LABEL: func.func @f16
// CHECK:         call @__photon_matmul_f16_6x64(%arg0, %arg1, %arg2)
// CHECK-LABEL: func.func @bf16
// CHECK:         call @__photon_matmul_bf16_6x64(%arg0, %arg1, %arg2)
// CHECK-LABEL: func.func @q8
// CHECK:         call @__photon_matmul_q8_6x64(%arg0, %arg1, %arg3, %arg2)
// CHECK-LABEL: func.func @q4
// CHECK:         call @__photon_matmul_q4_6x64(%arg0, %arg1, %arg3, %arg2)
// CHECK-LABEL: func.func @not_grouped
// CHECK:         linalg.generic
// The GEMM (M >= gemm-min-rows) widens each block of the weight (gemm-mc rows x gemm-kc
// columns) once into an f32 block that the tiles of every panel of x read; the GEMV widens in
// the dot product.
// CHECK-LABEL: func.func private @__photon_matmul_f16_6x64
// CHECK-SAME:    memref<6x64xf16>
// CHECK:         %[[BLK:.*]] = memref.alloc() {alignment = 64 : i64} : memref<64x64xf32>
// CHECK:         %[[HB:.*]] = vector.load %arg1[{{.*}}] : memref<6x64xf16>, vector<8xf16>
// CHECK:         %[[EB:.*]] = arith.extf %[[HB]] : vector<8xf16> to vector<8xf32>
// CHECK:         vector.store %[[EB]], %[[BLK]][{{.*}}] : memref<64x64xf32>, vector<8xf32>
// CHECK:         memref.load %[[BLK]][{{.*}}] : memref<64x64xf32>
// CHECK:         memref.dealloc %[[BLK]]
// (the N % gemm-rows weight rows left: a second block of their own)
// CHECK:         memref.dealloc %{{.*}} : memref<64x64xf32>
// CHECK:         %[[H:.*]] = vector.load %arg1[{{.*}}] : memref<6x64xf16>, vector<8xf16>
// CHECK:         %[[E:.*]] = arith.extf %[[H]] : vector<8xf16> to vector<8xf32>
// CHECK:         vector.fma {{.*}}, %[[E]], {{.*}} : vector<8xf32>
// CHECK-LABEL: func.func private @__photon_matmul_bf16_6x64
// CHECK:         vector.load %arg1[{{.*}}] : memref<6x64xbf16>, vector<8xbf16>
// CHECK:         arith.extf {{.*}} : vector<8xbf16> to vector<8xf32>
// q8: k steps by a whole group of 32 (4 vectors of 8); one scale per group and weight row,
// the group's products summed first, then acc = fma(sum, scale, acc).
// CHECK-LABEL: func.func private @__photon_matmul_q8_6x64
// CHECK-SAME:    memref<6x64xi8>, %{{.*}}: memref<?x6xf32>, %{{.*}}: memref<6x2xf16>
// GEMM block: q as f32 times its group's scale, once per weight
// CHECK:         %[[QB:.*]] = memref.alloc() {alignment = 64 : i64} : memref<64x64xf32>
// CHECK:         %[[QR:.*]] = vector.load %arg1[{{.*}}] : memref<6x64xi8>, vector<8xi8>
// CHECK:         %[[QW:.*]] = arith.sitofp %[[QR]] : vector<8xi8> to vector<8xf32>
// CHECK:         memref.load %arg3[{{.*}}] : memref<6x2xf16>
// CHECK:         %[[QS:.*]] = arith.mulf %[[QW]], {{.*}} : vector<8xf32>
// CHECK:         vector.store %[[QS]], %[[QB]]
// CHECK:         scf.for %[[K:[a-z0-9_]+]] = %{{.*}} to %{{.*}} step %{{c32[_0-9]*}} iter_args
// CHECK:           %[[G:.*]] = arith.divui %[[K]], %{{c32[_0-9]*}} : index
// CHECK:           %[[S:.*]] = memref.load %arg3[%{{.*}}, %[[G]]] : memref<6x2xf16>
// CHECK:           %[[SF:.*]] = arith.extf %[[S]] : f16 to f32
// CHECK:           %[[SV:.*]] = vector.broadcast %[[SF]] : f32 to vector<8xf32>
// CHECK:           %[[Q:.*]] = vector.load %arg1[{{.*}}] : memref<6x64xi8>, vector<8xi8>
// CHECK:           %[[QF:.*]] = arith.sitofp %[[Q]] : vector<8xi8> to vector<8xf32>
// CHECK:           arith.mulf {{.*}}, %[[QF]]
// CHECK-COUNT-3:   vector.fma
// CHECK:           vector.fma %{{.*}}, %[[SV]], %{{.*}} : vector<8xf32>

// q4: per group and weight row one vector<16xi8> load of 16 bytes, low nibbles (k 0..15)
// and high nibbles (k 16..31) minus 8, sliced into vectors of 8 and converted.
// CHECK-LABEL: func.func private @__photon_matmul_q4_6x64
// CHECK-SAME:    memref<6x32xi8>, %{{.*}}: memref<?x6xf32>, %{{.*}}: memref<6x2xf16>
// CHECK:         scf.for %[[K4:[a-z0-9_]+]] = %{{.*}} to %{{.*}} step %{{c32[_0-9]*}} iter_args
// CHECK:           arith.divui %[[K4]], %{{c2[_0-9]*}} : index
// CHECK:           %[[RAW:.*]] = vector.load %arg1[%{{.*}}, %{{.*}}] : memref<6x32xi8>, vector<16xi8>
// CHECK:           arith.andi %[[RAW]]
// CHECK:           arith.shrui %[[RAW]]
// CHECK:           vector.extract_strided_slice {{.*}} {offsets = [8], sizes = [8], strides = [1]} : vector<16xi8> to vector<8xi8>
// CHECK:           arith.sitofp {{.*}} : vector<8xi8> to vector<8xf32>

// AVX2 + F16C: f16 -> vcvtph2ps on ymm; bf16 -> zero-extend and shift left by 16; i8 ->
// sign-extend to dwords and convert; FMAs on ymm.
// AVX2-LABEL: __photon_matmul_f16_6x64:
// AVX2:         vcvtph2ps {{.*}}%ymm
// AVX2:         vfmadd{{.*}}%ymm
// AVX2-LABEL: __photon_matmul_bf16_6x64:
// AVX2:         vpmovzxwd {{.*}}%ymm
// AVX2:         vpslld $16, {{.*}}%ymm
// AVX2-LABEL: __photon_matmul_q8_6x64:
// AVX2:         vpmovsxbd {{.*}}%ymm
// AVX2:         vcvtdq2ps {{.*}}%ymm
// AVX2:         vfmadd{{.*}}%ymm
// AVX2-LABEL: __photon_matmul_q4_6x64:
// AVX2:         vpsrlw $4
// AVX2:         vpmovsxbd {{.*}}%ymm
// AVX2:         vcvtdq2ps {{.*}}%ymm
// AVX512-LABEL: __photon_matmul_f16_6x64:
// AVX512:       vcvtph2ps {{.*}}%zmm
// AVX512:       vfmadd{{.*}}%zmm
// AVX512-LABEL: __photon_matmul_q8_6x64:
// AVX512:       vpmovsxbd {{.*}}%zmm
// AVX512:       vcvtdq2ps {{.*}}%zmm
// AVX512:       vfmadd{{.*}}%zmm

func.func @f16(%x: memref<?x64xf32>, %w: memref<6x64xf16>, %y: memref<?x6xf32>) {
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x64xf32>, memref<6x64xf16>) outs(%y : memref<?x6xf32>) {
  ^bb0(%a: f32, %b: f16, %c: f32):
    %e = arith.extf %b : f16 to f32
    %p = arith.mulf %a, %e fastmath<reassoc,contract> : f32
    %s = arith.addf %c, %p fastmath<reassoc,contract> : f32
    linalg.yield %s : f32
  }
  return
}

func.func @bf16(%x: memref<?x64xf32>, %w: memref<6x64xbf16>, %y: memref<?x6xf32>) {
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x64xf32>, memref<6x64xbf16>) outs(%y : memref<?x6xf32>) {
  ^bb0(%a: f32, %b: bf16, %c: f32):
    %e = arith.extf %b : bf16 to f32
    %p = arith.mulf %a, %e fastmath<reassoc,contract> : f32
    %s = arith.addf %c, %p fastmath<reassoc,contract> : f32
    linalg.yield %s : f32
  }
  return
}

func.func @q8(%x: memref<?x64xf32>, %w: memref<6x64xi8>, %d: memref<6x2xf16>, %y: memref<?x6xf32>) {
  linalg.generic {indexing_maps = [#x, #w, #d, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w, %d : memref<?x64xf32>, memref<6x64xi8>, memref<6x2xf16>) outs(%y : memref<?x6xf32>) {
  ^bb0(%a: f32, %q: i8, %s: f16, %c: f32):
    %qf = arith.sitofp %q : i8 to f32
    %sf = arith.extf %s : f16 to f32
    %wv = arith.mulf %qf, %sf : f32
    %p = arith.mulf %a, %wv fastmath<reassoc,contract> : f32
    %r = arith.addf %c, %p fastmath<reassoc,contract> : f32
    linalg.yield %r : f32
  }
  return
}

// q4: two weights per byte, w [N, K / 2] read at (n, k floordiv 32 * 16 + k mod 16); the
// body picks the nibble by k mod 32 (convert-photon-to-linalg's dequantQ4).
#p4 = affine_map<(m, n, k) -> (n, (k floordiv 32) * 16 + k mod 16)>
func.func @q4(%x: memref<?x64xf32>, %w: memref<6x32xi8>, %d: memref<6x2xf16>, %y: memref<?x6xf32>) {
  linalg.generic {indexing_maps = [#x, #p4, #d, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w, %d : memref<?x64xf32>, memref<6x32xi8>, memref<6x2xf16>) outs(%y : memref<?x6xf32>) {
  ^bb0(%a: f32, %q: i8, %s: f16, %c: f32):
    %k = linalg.index 2 : index
    %c32 = arith.constant 32 : index
    %r = arith.remui %k, %c32 : index
    %c16 = arith.constant 16 : index
    %hi = arith.cmpi uge, %r, %c16 : index
    %c15 = arith.constant 15 : i8
    %lo = arith.andi %q, %c15 : i8
    %c4 = arith.constant 4 : i8
    %sh = arith.shrui %q, %c4 : i8
    %nib = arith.select %hi, %sh, %lo : i8
    %c8 = arith.constant 8 : i8
    %qq = arith.subi %nib, %c8 : i8
    %qf = arith.sitofp %qq : i8 to f32
    %sf = arith.extf %s : f16 to f32
    %wv = arith.mulf %qf, %sf : f32
    %p = arith.mulf %a, %wv fastmath<reassoc,contract> : f32
    %o = arith.addf %c, %p fastmath<reassoc,contract> : f32
    linalg.yield %o : f32
  }
  return
}

// Not a dequantized weight (the scale map is not k floordiv a constant): left alone.
#dk = affine_map<(m, n, k) -> (n, k)>
func.func @not_grouped(%x: memref<?x64xf32>, %w: memref<6x64xi8>, %d: memref<6x64xf16>, %y: memref<?x6xf32>) {
  linalg.generic {indexing_maps = [#x, #w, #dk, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w, %d : memref<?x64xf32>, memref<6x64xi8>, memref<6x64xf16>) outs(%y : memref<?x6xf32>) {
  ^bb0(%a: f32, %q: i8, %s: f16, %c: f32):
    %qf = arith.sitofp %q : i8 to f32
    %sf = arith.extf %s : f16 to f32
    %wv = arith.mulf %qf, %sf : f32
    %p = arith.mulf %a, %wv fastmath<reassoc,contract> : f32
    %r = arith.addf %c, %p fastmath<reassoc,contract> : f32
    linalg.yield %r : f32
  }
  return
}
