// The packed GEMM's register tiles (docs/compiler.md, "Matmul kernels"): panels of
// gemm-vecs = 2 vectors of x rows, a wide tile of 4 weight rows x 2 vectors, and for a last
// panel of at most `lanes` rows (M = 16, or the 16 rows left of M = 48) a narrow tile of
// 8 weight rows x 1 vector: 8 accumulators either way, no FMAs on the zero padding.
// RUN: photon-opt %s --photon-matmul-kernels="lanes=16 gemm-mc=16" | FileCheck %s
// The instructions: AVX-512 (znver4, skylake-avx512) FMAs on zmm with the weight broadcast
// from memory ({1to16}); AVX2 (znver3, lanes = 8) on ymm only.
// RUN: photon-opt %s --photon-lower-to-llvm="lanes=16" | mlir-translate --mlir-to-llvmir \
// RUN:   | llc -O3 -mtriple=x86_64-pc-linux-gnu -mcpu=znver4 | FileCheck %s --check-prefix=AVX512
// RUN: photon-opt %s --photon-lower-to-llvm="lanes=16" | mlir-translate --mlir-to-llvmir \
// RUN:   | llc -O3 -mtriple=x86_64-pc-linux-gnu -mcpu=skylake-avx512 | FileCheck %s --check-prefix=AVX512
// RUN: photon-opt %s --photon-lower-to-llvm="lanes=8" | mlir-translate --mlir-to-llvmir \
// RUN:   | llc -O3 -mtriple=x86_64-pc-linux-gnu -mcpu=znver3 | FileCheck %s --check-prefix=AVX2
// With one vector per panel there is only the one tile.
// RUN: photon-opt %s --photon-matmul-kernels="lanes=16 gemm-vecs=1" | FileCheck %s --check-prefix=ONE

#x = affine_map<(m, n, k) -> (m, k)>
#w = affine_map<(m, n, k) -> (n, k)>
#y = affine_map<(m, n, k) -> (m, n)>
func.func @linear(%x: memref<?x64xf32>, %w: memref<40x64xf32>, %y: memref<?x40xf32>) {
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x64xf32>, memref<40x64xf32>) outs(%y : memref<?x40xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b fastmath<reassoc,contract> : f32
    %s = arith.addf %c, %p fastmath<reassoc,contract> : f32
    linalg.yield %s : f32
  }
  return
}

// CHECK-LABEL: func.func private @__photon_matmul_40x64(
// CHECK:         %[[XP:.+]] = memref.alloc(%{{.+}}) {alignment = 64 : i64} : memref<?xf32>
// blocks of gemm-mc = 16 weight rows, panels of 32 rows of x with `valid` rows each
// CHECK:         scf.for %[[N0:[^ ]+]] = %{{[^ ]+}} to %c40{{[_0-9]*}} step %c16
// CHECK:           scf.for %[[P:[^ ]+]] = %{{[^ ]+}} to %{{[^ ]+}} step %c1
// CHECK:             %[[VALID:.+]] = arith.minsi %{{.+}}, %c32
// CHECK:             %[[NARROW:.+]] = arith.cmpi sle, %[[VALID]], %c16
// CHECK:             scf.if %[[NARROW]] {
// narrow: whole groups of 8 weight rows, then the rest 4 at a time
// CHECK:               scf.for %{{[^ ]+}} = %[[N0]] to %[[NW:[^ ]+]] step %c8
// CHECK:                 %{{.+}}:8 = scf.for %{{.+}} iter_args(
// CHECK:                   %[[XV:.+]] = vector.load %[[XP]][%{{.+}}] : memref<?xf32>, vector<16xf32>
// CHECK-NOT:               vector.load
// CHECK-COUNT-8:           vector.fma %{{.+}}, %[[XV]], %{{.+}} : vector<16xf32>
// CHECK-NEXT:              scf.yield
// CHECK:               scf.for %{{[^ ]+}} = %[[NW]] to %{{[^ ]+}} step %c4
// CHECK:                 %{{.+}}:4 = scf.for %{{.+}} iter_args(
// CHECK-COUNT-4:           vector.fma %{{.+}} : vector<16xf32>
// CHECK:             } else {
// wide: 4 weight rows x 2 vectors of x rows
// CHECK:               scf.for %{{[^ ]+}} = %[[N0]] to %{{[^ ]+}} step %c4
// CHECK:                 %{{.+}}:8 = scf.for %{{.+}} iter_args(
// CHECK-COUNT-2:           vector.load %[[XP]]
// CHECK-COUNT-8:           vector.fma
// CHECK-NEXT:              scf.yield
// CHECK:         memref.dealloc %[[XP]]

// AVX512-LABEL: __photon_matmul_40x64:
// AVX512:         vfmadd231ps {{.*}}{1to16}, %zmm{{[0-9]+}}, %zmm{{[0-9]+}}
// AVX512-LABEL: .Lfunc_end

// AVX2-LABEL: __photon_matmul_40x64:
// AVX2-NOT:       zmm
// AVX2:           vfmadd231ps {{.*}}%ymm{{[0-9]+}}
// AVX2-NOT:       zmm
// AVX2-LABEL: .Lfunc_end

// ONE-LABEL: func.func private @__photon_matmul_40x64(
// ONE-NOT:     arith.cmpi sle
// ONE:         %{{.+}}:4 = scf.for %{{.+}} iter_args(
// ONE-NOT:     arith.cmpi sle
// ONE:         return
