// Bad target options are reported up front, with what is accepted.
// RUN: not photon-cuda-opt %s --photon-gpu-lowering="chips=sm_70" 2>&1 | FileCheck %s --check-prefix=OLD
// RUN: not photon-cuda-opt %s --photon-gpu-lowering="chips=gfx90a" 2>&1 | FileCheck %s --check-prefix=NAME
// RUN: not photon-cuda-opt %s --photon-gpu-lowering="chips=sm_80,sm_90 format=isa" 2>&1 | FileCheck %s --check-prefix=MULTI
// RUN: not photon-cuda-opt %s --photon-gpu-kernels="format=ptx" 2>&1 | FileCheck %s --check-prefix=FORMAT
// OLD: error: photon-gpu-lowering: sm_70 is not supported: the CUDA 13 toolkit builds for sm_75 and newer
// NAME: error: photon-gpu-lowering: expected a CUDA architecture like sm_80, got 'gfx90a'
// MULTI: error: photon-gpu-lowering: several chips need format=fatbin
// FORMAT: error: photon-gpu-kernels: format must be fatbin, bin or isa, got 'ptx'
func.func @f(%a: tensor<16xf32>) -> tensor<16xf32> {
  return %a : tensor<16xf32>
}
