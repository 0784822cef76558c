// RUN: photon-opt %s --convert-photon-to-linalg --split-input-file --verify-diagnostics
// Every diagnostic of convert-photon-to-linalg, one case each (the weights-file ones below
// with FileCheck: they need a file). The dialect's verifiers already reject a dynamically
// shaped photon.weight and query heads that are not a multiple of the cache's kv heads, and
// every photon op has a lowering, so the pass's own checks for those are not reachable here.

func.func @no_offset() -> tensor<4xf32> {
  // expected-error @below {{weight 'w' is not in the weights blob (no weights file given: pass --weights)}}
  %w = "photon.weight"() {name = "w"} : () -> tensor<4xf32>
  return %w : tensor<4xf32>
}

// -----

!cache = !photon.kv_cache<level = 1, layers = 1, kv_heads = 2, head_dim = 8, block_size = 16, element = f32>
func.func @unbound_cache(%c: !cache, %k: tensor<?x?x2x8xf32>) {
  // expected-error @below {{'photon.kv_append' op expects its cache operand to come from photon.cache_bind (pool, table, lens); bind the cache in the same function}}
  "photon.kv_append"(%c, %k, %k) {layer = 0 : i64} : (!cache, tensor<?x?x2x8xf32>, tensor<?x?x2x8xf32>) -> ()
  return
}

// -----

!cache = !photon.kv_cache<level = 1, layers = 1, kv_heads = 2, head_dim = 8, block_size = 16, element = f32>
func.func @unbound_cache_attention(%c: !cache, %q: tensor<?x?x4x8xf32>) -> tensor<?x?x4x8xf32> {
  // expected-error @below {{'photon.cached_attention' op expects its cache operand to come from photon.cache_bind (pool, table, lens); bind the cache in the same function}}
  %o = "photon.cached_attention"(%c, %q) {layer = 0 : i64, scale = 0.353553385 : f32} : (!cache, tensor<?x?x4x8xf32>) -> tensor<?x?x4x8xf32>
  return %o : tensor<?x?x4x8xf32>
}

// -----

!cache = !photon.kv_cache<level = 1, layers = 1, kv_heads = 2, head_dim = 8, block_size = 16, element = f32>
func.func private @use(!cache)
func.func @escaping_cache(%pool: memref<?x1x2x16x2x8xf32>, %table: memref<?x?xi32>, %lens: memref<?xi32>) {
  // expected-error @below {{'photon.cache_bind' op result is still used after lowering (only kv_append and cached_attention may use a cache)}}
  %c = "photon.cache_bind"(%pool, %table, %lens) : (memref<?x1x2x16x2x8xf32>, memref<?x?xi32>, memref<?xi32>) -> !cache
  func.call @use(%c) : (!cache) -> ()
  return
}

// -----

!cache = !photon.kv_cache<level = 1, layers = 1, kv_heads = 2, head_dim = 8, block_size = 16, element = f32>
func.func @heads(%pool: memref<?x1x2x16x2x8xf32>, %table: memref<?x?xi32>, %lens: memref<?xi32>, %q: tensor<?x?x?x8xf32>) -> tensor<?x?x?x8xf32> {
  %c = "photon.cache_bind"(%pool, %table, %lens) : (memref<?x1x2x16x2x8xf32>, memref<?x?xi32>, memref<?xi32>) -> !cache
  // expected-error @below {{expects static heads divisible by the cache's kv heads (? vs 2)}}
  %o = "photon.cached_attention"(%c, %q) {layer = 0 : i64, scale = 0.353553385 : f32} : (!cache, tensor<?x?x?x8xf32>) -> tensor<?x?x?x8xf32>
  return %o : tensor<?x?x?x8xf32>
}

// -----

!cache = !photon.kv_cache<level = 1, layers = 1, kv_heads = 2, head_dim = 8, block_size = 16, element = f32>
func.func @pool(%pool: memref<?x1x2x?x2x8xf32>, %table: memref<?x?xi32>, %lens: memref<?xi32>, %k: tensor<?x?x2x8xf32>) {
  %c = "photon.cache_bind"(%pool, %table, %lens) : (memref<?x1x2x?x2x8xf32>, memref<?x?xi32>, memref<?xi32>) -> !cache
  // expected-error @below {{expects the cache pool to be a memref [NB, layers, 2, block_size, kv_heads, head_dim] with static block_size}}
  "photon.kv_append"(%c, %k, %k) {layer = 0 : i64} : (!cache, tensor<?x?x2x8xf32>, tensor<?x?x2x8xf32>) -> ()
  return
}

// -----

// RUN: not photon-opt %s --split-input-file --convert-photon-to-linalg=weights-file=%t.missing 2>&1 | FileCheck %s --check-prefix=MISSING
// MISSING: cannot read weights blob '{{.*}}.missing'
// A file that is not a PHOTONW1 blob (this test file):
// RUN: not photon-opt %s --split-input-file --convert-photon-to-linalg=weights-file=%s 2>&1 | FileCheck %s --check-prefix=NOTBLOB
// NOTBLOB: error: weights blob '{{.*}}invalid.mlir': {{.+}}
// A blob whose tensor "w" is [4, 3] (test/Import's generator) against an IR weight [3, 4]:
// RUN: %python %S/../../Import/Inputs/gen_model.py weights %t.onnx
// RUN: photon-import %t.onnx -o /dev/null --weights-out %t.bin
// RUN: not photon-opt %s --split-input-file --convert-photon-to-linalg=weights-file=%t.bin 2>&1 | FileCheck %s --check-prefix=SHAPE
// SHAPE: error: 'photon.weight' op weight 'w' has another shape in the weights blob (2-d) than in the IR ('tensor<3x4xf32>'); re-import the model
func.func @f() -> tensor<3x4xf32> {
  // (Without a weights file, the first RUN line:)
  // expected-error @below {{weight 'w' is not in the weights blob}}
  %w = "photon.weight"() {name = "w"} : () -> tensor<3x4xf32>
  return %w : tensor<3x4xf32>
}
