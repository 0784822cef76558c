// Where the toolkit has cuobjdump (not in every CUDA install): it lists both cubins.
// RUN: photon-cuda-opt %S/multiarch-host-object.mlir --photon-gpu-lowering="chips=sm_80,sm_90" -o %t.mlir
// RUN: mlir-translate --mlir-to-llvmir %t.mlir -o %t.ll
// RUN: %llc -O2 -filetype=obj -relocation-model=pic %t.ll -o %t.o
// RUN: %cuobjdump --list-elf %t.o | FileCheck %s
// REQUIRES: ptxas, fatbinary, cuobjdump
// CHECK-DAG: sm_80
// CHECK-DAG: sm_90
