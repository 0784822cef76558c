// A host object with one embedded fatbin holding cubins for sm_80 AND sm_90 (merged with
// the toolkit's fatbinary), in the .nv_fatbin section where cuobjdump looks, and host
// code that calls the mgpu* functions of libphoton_cuda.
// RUN: photon-cuda-opt %s --photon-gpu-lowering="chips=sm_80,sm_90" -o %t.mlir
// RUN: FileCheck %s --check-prefix=BIN < %t.mlir
// RUN: mlir-translate --mlir-to-llvmir %t.mlir -o %t.ll
// RUN: FileCheck %s --check-prefix=HOST < %t.ll
// RUN: %llc -O2 -filetype=obj -relocation-model=pic %t.ll -o %t.o
// RUN: %python %S/Inputs/gpu_binary.py archs %t.o | FileCheck %s --check-prefix=ARCHS
// REQUIRES: ptxas, fatbinary

// One object (format fatbin, the default, so not printed) for both chips:
// BIN: gpu.binary @scale_rows_kernel {{ *}}[#gpu.object<#nvvm.target<{{.*}}chip = "sm_80"{{.*}}>, properties = {{{.*}}photon.chips = ["sm_80", "sm_90"], section = ".nv_fatbin"}, "
// BIN-NOT: #gpu.object<#nvvm.target<{{.*}}chip = "sm_90"

// HOST: @scale_rows_kernel_binary = internal constant {{.*}} section ".nv_fatbin"
// HOST-DAG: declare ptr @mgpuModuleLoad(ptr, i64)
// HOST-DAG: declare ptr @mgpuModuleGetFunction(ptr, ptr)
// HOST-DAG: declare void @mgpuLaunchKernel(ptr, i64, i64, i64, i64, i64, i64, i32, ptr, ptr, ptr, i64)

// ARCHS-DAG: elf sm_80
// ARCHS-DAG: elf sm_90

// RMSNorm-style row scaling: out[b, d] = x[b, d] * w[d] / sqrt(mean(x[b, :]^2) + eps).
#row = affine_map<(b, d) -> (b, d)>
#red = affine_map<(b, d) -> (b)>
#vec = affine_map<(b, d) -> (d)>
func.func @scale_rows(%x: tensor<16x256xf32>, %w: tensor<256xf32>, %out: tensor<16x256xf32>)
    -> tensor<16x256xf32> {
  %zero = arith.constant 0.0 : f32
  %n = arith.constant 256.0 : f32
  %eps = arith.constant 1.0e-5 : f32
  %e = tensor.empty() : tensor<16xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<16xf32>) -> tensor<16xf32>
  %ss = linalg.generic {indexing_maps = [#row, #red], iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<16x256xf32>) outs(%z : tensor<16xf32>) {
    ^bb0(%a: f32, %acc: f32):
      %sq = arith.mulf %a, %a : f32
      %r = arith.addf %acc, %sq : f32
      linalg.yield %r : f32
  } -> tensor<16xf32>
  %y = linalg.generic {indexing_maps = [#row, #red, #vec, #row],
                       iterator_types = ["parallel", "parallel"]}
      ins(%x, %ss, %w : tensor<16x256xf32>, tensor<16xf32>, tensor<256xf32>)
      outs(%out : tensor<16x256xf32>) {
    ^bb0(%a: f32, %s: f32, %g: f32, %o: f32):
      %mean = arith.divf %s, %n : f32
      %me = arith.addf %mean, %eps : f32
      %inv = math.rsqrt %me : f32
      %t = arith.mulf %a, %inv : f32
      %r = arith.mulf %t, %g : f32
      linalg.yield %r : f32
  } -> tensor<16x256xf32>
  return %y : tensor<16x256xf32>
}
