// RUN: photon-opt %s --photon-test-cache-plan -o /dev/null | FileCheck %s
// The planner's diagnostics (shared with photon-derive-stages, see derive-stages.mlir):
// RUN: echo 'module {}' | not photon-opt --photon-test-cache-plan 2>&1 | FileCheck %s --check-prefix=NOHIER
// NOHIER: error: module has no `photon.hierarchy` attribute
// RUN: echo 'module attributes {photon.hierarchy = #photon.hierarchy<family = "vanilla", levels = 0, chunk_sizes = [], prefix = 0, width = 32, vocab = 64>} {}' | not photon-opt --photon-test-cache-plan 2>&1 | FileCheck %s --check-prefix=NOSTACK
// NOSTACK: error: no stack functions (photon.role = "encoder" / "decoder") in the module: cannot plan caches

// A PHOTON model, L = 2, C = (4, 4), R = 2, D = 32: one encoder layer per level, Hkv = 2,
// hd = 8, f32. Section 3 of photon-model.md: bytes per unit 2 * 1 * 2 * 8 * 4 = 128;
// per 1,000 tokens: level 1 128 * ceil(1000 / 4) = 32000, level 2 128 * ceil(1000 / 16) = 8064.
// Vanilla of the same width: 2 + 2 (encoders) + 2 (decoders) = ... layers counted below.
// CHECK: photon cache plan: family photon, levels 2, chunk sizes [4, 4], prefix 2, width 32, vocab 64
// CHECK: cache level 1: layers 1, kv_heads 2, head_dim 8, f32, bytes_per_unit 128, tokens_per_unit 4, block_size 16, modes hiergen
// CHECK: cache level 2: layers 1, kv_heads 2, head_dim 8, f32, bytes_per_unit 128, tokens_per_unit 16, block_size 16, modes hiergen recgen
// The token decoder's window cache: 2 * 1 * 2 * 8 * 4 bytes * (R + C_1 - 1 = 5 positions) = 640
// per stream, C_2 = 4 streams rendered together per sequence; independent of the context.
// CHECK: local window cache level 1 (token decoder): layers 1, kv_heads 2, head_dim 8, f32, positions 5, bytes_per_stream 640, streams_per_sequence 4, bytes_per_sequence 2560, grows_with_context no
// CHECK: level 1: cache bytes per 1000 tokens 32000,
// CHECK: level 2: cache bytes per 1000 tokens 8064,
// CHECK: total: cache bytes per 1000 tokens 40064 (hiergen), 8064 (recgen);
// The per-sequence memory besides the caches (the cost model's per-sample memory adds it):
// 4 streams x 5 positions of window cache, one f32 logits row of V = 64 per stream.
// CHECK: per sequence besides the caches: token-decoder windows 2560, logits 1024, total 3584 bytes (vanilla: logits 256)
// 4 stacks of 1 layer -> vanilla of 4 layers: 2 * 4 * 16 * 4 * 1000 = 512000
// CHECK: vanilla of the same width (4 layers): cache bytes per 1000 tokens 512000;
// 40064 / 512000 = 0.07825 (5/64 up to the ceil), 8064 / 512000 = 0.01575 (1/64)
// CHECK: ratio to vanilla: cache 0.078250 (hiergen), 0.015750 (recgen);
module attributes {photon.hierarchy = #photon.hierarchy<family = "photon", levels = 2, chunk_sizes = [4, 4], prefix = 2, width = 32, vocab = 64>} {
  func.func private @enc1(%x: tensor<?x?x32xf32>) -> tensor<?x?x32xf32> attributes {photon.role = "encoder", photon.level = 1 : i64} {
    %q = tensor.empty() : tensor<1x4x4x8xf32>
    %k = tensor.empty() : tensor<1x4x2x8xf32>
    %a = "photon.causal_attention"(%q, %k, %k) {scale = 0.353553385 : f32} : (tensor<1x4x4x8xf32>, tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>) -> tensor<1x4x4x8xf32>
    return %x : tensor<?x?x32xf32>
  }
  func.func private @enc2(%x: tensor<?x?x32xf32>) -> tensor<?x?x32xf32> attributes {photon.role = "encoder", photon.level = 2 : i64} {
    %q = tensor.empty() : tensor<1x4x4x8xf32>
    %k = tensor.empty() : tensor<1x4x2x8xf32>
    %a = "photon.causal_attention"(%q, %k, %k) {scale = 0.353553385 : f32} : (tensor<1x4x4x8xf32>, tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>) -> tensor<1x4x4x8xf32>
    return %x : tensor<?x?x32xf32>
  }
  func.func private @dec1(%x: tensor<?x?x32xf32>) -> tensor<?x?x32xf32> attributes {photon.role = "decoder", photon.level = 1 : i64} {
    %q = tensor.empty() : tensor<1x5x4x8xf32>
    %k = tensor.empty() : tensor<1x5x2x8xf32>
    %a = "photon.bounded_attention"(%q, %k, %k) {prefix = 2 : i64, chunk = 4 : i64, scale = 0.353553385 : f32} : (tensor<1x5x4x8xf32>, tensor<1x5x2x8xf32>, tensor<1x5x2x8xf32>) -> tensor<1x5x4x8xf32>
    return %x : tensor<?x?x32xf32>
  }
  func.func private @dec2(%x: tensor<?x?x32xf32>) -> tensor<?x?x32xf32> attributes {photon.role = "decoder", photon.level = 2 : i64} {
    %q = tensor.empty() : tensor<1x5x4x8xf32>
    %k = tensor.empty() : tensor<1x5x2x8xf32>
    %a = "photon.bounded_attention"(%q, %k, %k) {prefix = 2 : i64, chunk = 4 : i64, scale = 0.353553385 : f32} : (tensor<1x5x4x8xf32>, tensor<1x5x2x8xf32>, tensor<1x5x2x8xf32>) -> tensor<1x5x4x8xf32>
    return %x : tensor<?x?x32xf32>
  }
}
