// photon-gpu-map-to-launch's diagnostics. Its mapping is checked after photon-gpu-kernels
// (matmul-mma.mlir, partial-tile-bound.mlir) and after photon-gpu-insert-dealloc
// (insert-dealloc.mlir).
// RUN: photon-cuda-opt %s --photon-gpu-map-to-launch -split-input-file -verify-diagnostics

func.func @on_tensors(%t: tensor<64xf32>) -> tensor<64xf32> {
  // expected-error @below {{photon-gpu-map-to-launch: loop still on tensors; run one-shot-bufferize first}}
  %r = scf.forall (%i) in (4) shared_outs(%o = %t) -> (tensor<64xf32>) {
    scf.forall.in_parallel {
    }
  } {mapping = [#gpu.block<x>]}
  return %r : tensor<64xf32>
}

// -----

func.func @dynamic_threads(%m: memref<?xf32>, %n: index) {
  %c0 = arith.constant 0.0 : f32
  scf.forall (%b) in (4) {
    // expected-error @below {{photon-gpu-map-to-launch: thread loop with a dynamic trip count}}
    scf.forall (%t) in (%n) {
      memref.store %c0, %m[%t] : memref<?xf32>
    } {mapping = [#gpu.thread<x>]}
  } {mapping = [#gpu.block<x>]}
  return
}

// -----

func.func @too_many_threads(%m: memref<4096xf32>) {
  %c0 = arith.constant 0.0 : f32
  // expected-error @below {{photon-gpu-map-to-launch: block of 2048x1x1 threads exceeds the 1024-thread limit}}
  scf.forall (%b) in (2) {
    scf.forall (%t) in (2048) {
      memref.store %c0, %m[%t] : memref<4096xf32>
    } {mapping = [#gpu.thread<x>]}
  } {mapping = [#gpu.block<x>]}
  return
}

// -----

func.func @linear_blocks(%m: memref<64xf32>) {
  %c0 = arith.constant 0.0 : f32
  // expected-error @below {{photon-gpu-map-to-launch: only block x/y/z mappings are supported}}
  scf.forall (%b) in (4) {
    memref.store %c0, %m[%b] : memref<64xf32>
  } {mapping = [#gpu.block<linear_dim_0>]}
  return
}

// -----

func.func @unbounded_buffer(%m: memref<?xf32>, %n: index) {
  %c0 = arith.constant 0 : index
  %f = arith.constant 0.0 : f32
  scf.forall (%b) in (4) {
    // expected-error @below {{photon-gpu-map-to-launch: buffer inside a kernel whose size has no compile-time bound (a dimension the kernel keeps whole is dynamic); give that dimension a static size}}
    %a = memref.alloc(%n) : memref<?xf32>
    memref.store %f, %a[%c0] : memref<?xf32>
    %v = memref.load %a[%c0] : memref<?xf32>
    memref.store %v, %m[%b] : memref<?xf32>
  } {mapping = [#gpu.block<x>]}
  return
}
