// RUN: photon-opt %s --photon-derive-stages -split-input-file -verify-diagnostics | FileCheck %s
// RUN: photon-opt %s --photon-derive-stages=block-size=4 -split-input-file -verify-diagnostics | FileCheck %s --check-prefix=BS4
// The cache type's own check (a block size of at least 1):
// RUN: not photon-opt %s --photon-derive-stages=block-size=0 -split-input-file 2>&1 | FileCheck %s --check-prefix=BS0
// BS0: error: cannot build the stack's cache type: {{.*}}block
// kv-type=f16 (photon-compile --kv f16): the pools and cache types are f16, the attention's
// operands stay f32 (kv_append narrows, cached_attention widens in the lowering).
// RUN: photon-opt %s --photon-derive-stages=kv-type=f16 -split-input-file -verify-diagnostics | FileCheck %s --check-prefix=KV16
// RUN: not photon-opt %s --photon-derive-stages=kv-type=q4 -split-input-file 2>&1 | FileCheck %s --check-prefix=KVBAD
// KVBAD: error: photon-derive-stages: kv-type must be f32 or f16, got 'q4'

// The encoder stack's step: cache bound from (pool, table, lens), causal_attention replaced
// by kv_append + cached_attention (layer = index of the attention), rope offsets = lens.
// CHECK-LABEL: func.func private @stack_step(
// CHECK-SAME:    %[[X:[^:]+]]: tensor<?x?x32xf32>, %[[POOL:[^:]+]]: memref<?x1x2x16x2x8xf32>, %[[TABLE:[^:]+]]: memref<?x?xi32>, %[[LENS:[^:]+]]: memref<?xi32>
// CHECK-SAME:    photon.step_of = @stack
// CHECK:         %[[C:.+]] = photon.cache_bind %[[POOL]], %[[TABLE]], %[[LENS]]
// CHECK:         %[[OFF:.+]] = bufferization.to_tensor %[[LENS]]
// CHECK:         photon.rope %{{.*}}, %[[OFF]]
// CHECK:         photon.rope %{{.*}}, %[[OFF]]
// CHECK-NOT:     photon.causal_attention
// CHECK:         photon.kv_append %[[C]], %{{.*}}, %{{.*}} {layer = 0 : i64}
// CHECK:         photon.cached_attention %[[C]], %{{.*}} {layer = 0 : i64, scale = 0.353553{{[0-9]*}} : f32}

// lm_step = @forward with the stack call replaced by its step.
// CHECK-LABEL: func.func @lm_step(
// CHECK-SAME:    %[[T:[^:]+]]: tensor<?x?xi32>, %[[P:[^:]+]]: memref<?x1x2x16x2x8xf32>, %[[TB:[^:]+]]: memref<?x?xi32>, %[[L:[^:]+]]: memref<?xi32>) -> tensor<?x?x64xf32>
// CHECK-SAME:    photon.arg_names = ["tokens", "pool", "table", "lens"]
// CHECK-SAME:    photon.arg_shapes = {{\[\["W"\], \["B", "n"\], \["NB", "1", "2", "16", "2", "8"\], \["B", "MB"\], \["B"\], \["B", "n", "64"\]\]}}
// CHECK-SAME:    photon.stage = "lm_step"
// CHECK:         photon.embedding %{{.*}}, %[[T]]
// CHECK:         call @stack_step(%{{.*}}, %[[P]], %[[TB]], %[[L]])
// CHECK:         photon.lm_head

// BS4: memref<?x1x2x4x2x8xf32>
// KV16-LABEL: func.func private @stack_step(
// KV16-SAME:    memref<?x1x2x16x2x8xf16>
// KV16:         photon.cache_bind {{.*}} -> !photon.kv_cache<level = 1, layers = 1, kv_heads = 2, head_dim = 8, block_size = 16, element = f16>
// KV16:         photon.kv_append {{.*}}element = f16>, tensor<?x?x2x8xf32>, tensor<?x?x2x8xf32>
// KV16:         photon.cached_attention {{.*}}element = f16>, tensor<?x?x4x8xf32> -> tensor<?x?x4x8xf32>
// KV16-LABEL: func.func @lm_step(
// KV16-SAME:    memref<?x1x2x16x2x8xf16>
module attributes {photon.hierarchy = #photon.hierarchy<family = "vanilla", levels = 0, chunk_sizes = [], prefix = 0, width = 32, vocab = 64>} {
  func.func private @stack(%x: tensor<?x?x32xf32>) -> tensor<?x?x32xf32> attributes {photon.role = "encoder", photon.level = 1 : i64} {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %b = tensor.dim %x, %c0 : tensor<?x?x32xf32>
    %m = tensor.dim %x, %c1 : tensor<?x?x32xf32>
    %wq = "photon.weight"() {name = "wq"} : () -> tensor<32x32xf32>
    %wk = "photon.weight"() {name = "wk"} : () -> tensor<16x32xf32>
    %wv = "photon.weight"() {name = "wv"} : () -> tensor<16x32xf32>
    %q = "photon.linear"(%x, %wq) : (tensor<?x?x32xf32>, tensor<32x32xf32>) -> tensor<?x?x32xf32>
    %k = "photon.linear"(%x, %wk) : (tensor<?x?x32xf32>, tensor<16x32xf32>) -> tensor<?x?x16xf32>
    %v = "photon.linear"(%x, %wv) : (tensor<?x?x32xf32>, tensor<16x32xf32>) -> tensor<?x?x16xf32>
    %q4 = tensor.expand_shape %q [[0], [1], [2, 3]] output_shape [%b, %m, 4, 8] : tensor<?x?x32xf32> into tensor<?x?x4x8xf32>
    %k4 = tensor.expand_shape %k [[0], [1], [2, 3]] output_shape [%b, %m, 2, 8] : tensor<?x?x16xf32> into tensor<?x?x2x8xf32>
    %v4 = tensor.expand_shape %v [[0], [1], [2, 3]] output_shape [%b, %m, 2, 8] : tensor<?x?x16xf32> into tensor<?x?x2x8xf32>
    %qr = "photon.rope"(%q4) {theta = 1.0e+04 : f32} : (tensor<?x?x4x8xf32>) -> tensor<?x?x4x8xf32>
    %kr = "photon.rope"(%k4) {theta = 1.0e+04 : f32} : (tensor<?x?x2x8xf32>) -> tensor<?x?x2x8xf32>
    %a = "photon.causal_attention"(%qr, %kr, %v4) {scale = 0.353553385 : f32} : (tensor<?x?x4x8xf32>, tensor<?x?x2x8xf32>, tensor<?x?x2x8xf32>) -> tensor<?x?x4x8xf32>
    %a3 = tensor.collapse_shape %a [[0], [1], [2, 3]] : tensor<?x?x4x8xf32> into tensor<?x?x32xf32>
    return %a3 : tensor<?x?x32xf32>
  }
  func.func @forward(%tokens: tensor<?x?xi32>) -> tensor<?x?x64xf32> attributes {photon.stage = "forward"} {
    %e = "photon.weight"() {name = "tok_emb"} : () -> tensor<64x32xf32>
    %x = "photon.embedding"(%e, %tokens) : (tensor<64x32xf32>, tensor<?x?xi32>) -> tensor<?x?x32xf32>
    %h = func.call @stack(%x) : (tensor<?x?x32xf32>) -> tensor<?x?x32xf32>
    %w = "photon.weight"() {name = "lm_head"} : () -> tensor<64x32xf32>
    %l = "photon.lm_head"(%h, %w) : (tensor<?x?x32xf32>, tensor<64x32xf32>) -> tensor<?x?x64xf32>
    return %l : tensor<?x?x64xf32>
  }
}

// -----

// expected-error @below {{module has no `photon.hierarchy` attribute}}
module {
  func.func @forward(%tokens: tensor<?x?xi32>) -> tensor<?x?xi32> {
    return %tokens : tensor<?x?xi32>
  }
}


// -----

// expected-error @below {{no @forward function: photon-derive-stages derives the stages from the teacher-forced forward graph}}
module attributes {photon.hierarchy = #photon.hierarchy<family = "vanilla", levels = 0, chunk_sizes = [], prefix = 0, width = 32, vocab = 64>} {
  func.func private @stack(%q: tensor<?x?x4x8xf32>, %k: tensor<?x?x2x8xf32>) -> tensor<?x?x4x8xf32> attributes {photon.role = "encoder", photon.level = 1 : i64} {
    %a = "photon.causal_attention"(%q, %k, %k) {scale = 0.353553385 : f32} : (tensor<?x?x4x8xf32>, tensor<?x?x2x8xf32>, tensor<?x?x2x8xf32>) -> tensor<?x?x4x8xf32>
    return %a : tensor<?x?x4x8xf32>
  }
}

// -----

// expected-error @below {{no encoder stack (photon.role = "encoder"): nothing to derive}}
module attributes {photon.hierarchy = #photon.hierarchy<family = "vanilla", levels = 0, chunk_sizes = [], prefix = 0, width = 32, vocab = 64>} {
  func.func @forward(%tokens: tensor<?x?xi32>) -> tensor<?x?x64xf32> {
    %l = tensor.empty() : tensor<2x3x64xf32>
    %c = tensor.cast %l : tensor<2x3x64xf32> to tensor<?x?x64xf32>
    return %c : tensor<?x?x64xf32>
  }
}

// -----

module attributes {photon.hierarchy = #photon.hierarchy<family = "vanilla", levels = 0, chunk_sizes = [], prefix = 0, width = 32, vocab = 64>} {
  // expected-error @below {{stack has no photon.causal_attention: cannot derive its step}}
  func.func private @stack(%x: tensor<?x?x32xf32>) -> tensor<?x?x32xf32> attributes {photon.role = "encoder", photon.level = 1 : i64} {
    return %x : tensor<?x?x32xf32>
  }
  func.func @forward(%tokens: tensor<?x?xi32>) -> tensor<?x?x64xf32> {
    %l = tensor.empty() : tensor<2x3x64xf32>
    %c = tensor.cast %l : tensor<2x3x64xf32> to tensor<?x?x64xf32>
    return %c : tensor<?x?x64xf32>
  }
}

// -----

// A PHOTON model of one level whose @forward has no photon.shift.
module attributes {photon.hierarchy = #photon.hierarchy<family = "photon", levels = 1, chunk_sizes = [4], prefix = 1, width = 32, vocab = 64>} {
  func.func private @stack(%q: tensor<?x?x4x8xf32>, %k: tensor<?x?x2x8xf32>) -> tensor<?x?x4x8xf32> attributes {photon.role = "encoder", photon.level = 1 : i64} {
    %a = "photon.causal_attention"(%q, %k, %k) {scale = 0.353553385 : f32} : (tensor<?x?x4x8xf32>, tensor<?x?x2x8xf32>, tensor<?x?x2x8xf32>) -> tensor<?x?x4x8xf32>
    return %a : tensor<?x?x4x8xf32>
  }
  // expected-error @below {{expected one photon.shift per level (1) in @forward, found 0}}
  func.func @forward(%tokens: tensor<?x?xi32>) -> tensor<?x?x64xf32> {
    %l = tensor.empty() : tensor<2x3x64xf32>
    %c = tensor.cast %l : tensor<2x3x64xf32> to tensor<?x?x64xf32>
    return %c : tensor<?x?x64xf32>
  }
}

// -----

// A PHOTON model of one level whose @forward shifts but never calls its encoder stack.
module attributes {photon.hierarchy = #photon.hierarchy<family = "photon", levels = 1, chunk_sizes = [4], prefix = 1, width = 32, vocab = 64>} {
  func.func private @stack(%q: tensor<?x?x4x8xf32>, %k: tensor<?x?x2x8xf32>) -> tensor<?x?x4x8xf32> attributes {photon.role = "encoder", photon.level = 1 : i64} {
    %a = "photon.causal_attention"(%q, %k, %k) {scale = 0.353553385 : f32} : (tensor<?x?x4x8xf32>, tensor<?x?x2x8xf32>, tensor<?x?x2x8xf32>) -> tensor<?x?x4x8xf32>
    return %a : tensor<?x?x4x8xf32>
  }
  // expected-error @below {{no call of the level-1 encoder stack in @forward}}
  func.func @forward(%tokens: tensor<?x?xi32>) -> tensor<?x?x64xf32> {
    %x = tensor.empty() : tensor<2x3x32xf32>
    %xc = tensor.cast %x : tensor<2x3x32xf32> to tensor<?x?x32xf32>
    %s = "photon.weight"() {name = "start"} : () -> tensor<32xf32>
    %y = "photon.shift"(%xc, %s) : (tensor<?x?x32xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
    %l = tensor.empty() : tensor<2x3x64xf32>
    %c = tensor.cast %l : tensor<2x3x64xf32> to tensor<?x?x64xf32>
    return %c : tensor<?x?x64xf32>
  }
}

// -----

// lm_step is the slice of @forward from the tokens to the logits: it has nothing to pass
// for another @forward argument the logits depend on.
module attributes {photon.hierarchy = #photon.hierarchy<family = "vanilla", levels = 0, chunk_sizes = [], prefix = 0, width = 32, vocab = 64>} {
  func.func private @stack(%x: tensor<?x?x32xf32>, %k: tensor<?x?x2x8xf32>) -> tensor<?x?x32xf32> attributes {photon.role = "encoder", photon.level = 1 : i64} {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %b = tensor.dim %x, %c0 : tensor<?x?x32xf32>
    %m = tensor.dim %x, %c1 : tensor<?x?x32xf32>
    %q = tensor.expand_shape %x [[0], [1], [2, 3]] output_shape [%b, %m, 4, 8] : tensor<?x?x32xf32> into tensor<?x?x4x8xf32>
    %a = "photon.causal_attention"(%q, %k, %k) {scale = 0.353553385 : f32} : (tensor<?x?x4x8xf32>, tensor<?x?x2x8xf32>, tensor<?x?x2x8xf32>) -> tensor<?x?x4x8xf32>
    %a3 = tensor.collapse_shape %a [[0], [1], [2, 3]] : tensor<?x?x4x8xf32> into tensor<?x?x32xf32>
    return %a3 : tensor<?x?x32xf32>
  }
  // expected-error @below {{stage 'lm_step': its slice of @forward reaches argument #1 of @forward, which the stage does not provide}}
  func.func @forward(%tokens: tensor<?x?xi32>, %extra: tensor<?x?x2x8xf32>) -> tensor<?x?x64xf32> {
    %e = "photon.weight"() {name = "tok_emb"} : () -> tensor<64x32xf32>
    %x = "photon.embedding"(%e, %tokens) : (tensor<64x32xf32>, tensor<?x?xi32>) -> tensor<?x?x32xf32>
    %h = func.call @stack(%x, %extra) : (tensor<?x?x32xf32>, tensor<?x?x2x8xf32>) -> tensor<?x?x32xf32>
    %w = "photon.weight"() {name = "lm_head"} : () -> tensor<64x32xf32>
    %l = "photon.lm_head"(%h, %w) : (tensor<?x?x32xf32>, tensor<64x32xf32>) -> tensor<?x?x64xf32>
    return %l : tensor<?x?x64xf32>
  }
}
