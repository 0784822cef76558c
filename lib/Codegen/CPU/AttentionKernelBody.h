//===- AttentionKernelBody.h - the fused attention loop nest ----*- C++ -*-===//
//
// Internal to lib/Codegen/CPU: the loop nest that every fused attention kernel of
// AttentionKernels.cpp emits (AttentionKernel: tiles of query rows, key blocks, scores,
// online softmax, p V), its key source (where K / V row j lives) and the small emission
// helpers it shares with AttentionKernels.cpp. The algorithm is described at the top of
// AttentionKernels.cpp; the member functions are defined in AttentionKernelBody.cpp.
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_LIB_CODEGEN_CPU_ATTENTIONKERNELBODY_H
#define PHOTON_LIB_CODEGEN_CPU_ATTENTIONKERNELBODY_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/SmallVector.h"

#include <functional>
#include <utility>

namespace mlir {
namespace photon {
namespace attention_detail {


inline constexpr arith::FastMathFlags kFM =
    arith::FastMathFlags::reassoc | arith::FastMathFlags::contract;

/// Rows of query positions x heads per register tile.
inline constexpr int64_t kTileRows = 4;
/// Key block of causal / bounded attention (cached attention uses the cache block).
inline constexpr int64_t kKeyBlock = 16;
/// Queries per batch row from which (batch row, kv head) pairs run as an scf.parallel.
inline constexpr int64_t kParallelMinQueries = 64;
/// Widest key block (padded) whose prefill scores use the transposed keys.
inline constexpr int64_t kMaxTransposedBlock = 32;


Value cIdx(OpBuilder &b, Location loc, int64_t v);
/// f32 (or vector of f32 / i32) constant of type t.
Value splatF(OpBuilder &b, Location loc, Type t, float v);
Value splatI(OpBuilder &b, Location loc, Type t, int32_t v);
/// exp(x) for f32 or vector<L x f32>: x = n ln2 + r, |r| <= ln2 / 2, a degree-6 polynomial
/// for exp(r) (Cephes expf) and 2^n through the exponent bits. Inputs below -88 give 0
/// (so exp(-inf) = 0 as the masking needs); the kernels never pass positive inputs.
Value emitExp(OpBuilder &b, Location loc, Value x);
/// A vector of type `v` (f32 lanes) read from `m` at `idx`: a vector load of the memref's
/// element type, widened with arith.extf when it is narrower (an f16 cache: vcvtph2ps).
Value loadAsF32(OpBuilder &b, Location loc, VectorType v, Value m, ValueRange idx);
/// Whether `t` is an element type the cache kernels read and write (f32, or f16 converted
/// on the load and the store).
bool cacheElementSupported(Type t);

/// Where the keys and values come from.
struct KeySource {
  /// Key block size (positions per block; a multiple of nothing in particular).
  int64_t block = kKeyBlock;
  /// Called once per key block j0 of batch row bI; returns values `row` may use.
  std::function<SmallVector<Value>(OpBuilder &, Location, Value bI, Value j0)> blockSetup;
  /// The memref and the leading indices (all but hd) of the K (which = 0) or V (which = 1)
  /// row j0 + jj of kv head kh.
  std::function<std::pair<Value, SmallVector<Value>>(OpBuilder &, Location, int which,
                                                      Value bI, Value kh, Value j0, Value jj,
                                                      ArrayRef<Value> blk)>
      row;
  /// Query t of batch row bI sees keys 0 .. base(bI) + t.
  std::function<Value(OpBuilder &, Location, Value bI)> base;
};

struct AttentionKernel {
  Value Q, O;           // memrefs [B, N, H, hd] (unit innermost stride)
  Value B, N;           // index
  int64_t H, Hkv, G, hd, L;
  Value scale;          // f32
  KeySource keys;
  /// Decode over at least this many keys (batch row 0's times the batch) also runs the
  /// (batch row, kv head) pairs as an scf.parallel; 0 = only prefill does.
  int64_t parallelMinKeys = 0;

  int64_t KB = 0, KBp = 0; // key block and its padding to a multiple of L
  // Scratch: scores [sSlots, R, KBp], accumulators [slots, R, hd], running (max, sum)
  // [slots, R, 2]; sSlot / slot select this tile's.
  Value S, Acc, ML;
  /// Dot-product scores: per key, each row's L-lane partial sums [slots, R, KBp, L], reduced
  /// L keys at a time (reduceLanes) instead of one horizontal reduction per key.
  Value P;
  Value sSlot, slot;
  /// Prefill: the pair's keys transposed (transposeKeys), or null (dot-product scores).
  Value KT;
  /// Decode: the next key block (blockSetup values and its first key), prefetched by step.
  SmallVector<Value> pfBlk;
  Value pfJ0;

  VectorType vt(OpBuilder &b) const { return VectorType::get({L}, b.getF32Type()); }

  struct Rows {
    SmallVector<Value> t, h, lim, r;
  };

  void emit(OpBuilder &b, Location loc);

  /// The key block after [j0, j0 + KB) of sequence bI (the last block refers to itself),
  /// whose K/V rows `step` prefetches into L2 while it reads this block's.
  void setPrefetchBlock(OpBuilder &b, Location loc, Value bI, Value j0, Value jend);

  /// Tiles of one kv head: N * G rows in tiles of kTileRows, then single rows.
  Value tilesPerHead(OpBuilder &b, Location loc);

  /// Calls fn(R, first row, tile index) for every tile of kv head kh.
  void forTiles(OpBuilder &b, Location loc, Value kh,
                function_ref<void(OpBuilder &, Location, int64_t, Value, Value)> fn);

  /// Query position, head and last visible key of rows r0 .. r0 + R - 1 of kv head kh.
  Rows rows(OpBuilder &b, Location loc, int64_t R, Value kh, Value base, Value r0);

  void init(OpBuilder &b, Location loc, int64_t R, Rows &rw);

  /// One key block j0 .. min(j0 + KB, jend) - 1 for the rows of a tile.
  void step(OpBuilder &b, Location loc, int64_t R, Value bI, Value kh, Rows &rw, Value j0,
            Value jend, ArrayRef<Value> blk);

  /// acc = acc * corr + p V for the rows of a tile over keys j0 .. j0 + jn - 1 (p in S), in
  /// chunks of U vectors of type v over hd.
  void accumulatePV(OpBuilder &b, Location loc, int64_t R, Value bI, Value kh, Rows &rw,
                    Value j0, Value jn, ArrayRef<Value> blk, ArrayRef<Value> corr, VectorType v,
                    int64_t U);

  /// The sums of L vectors of L lanes as one vector (lane k: the sum of parts[k]'s lanes), by
  /// log2(L) levels of shuffles and adds (2 (L - 1) shuffles, L - 1 adds): at a level with
  /// half-block h, each pair (a, b) becomes x + y with x / y the lower / upper halves of every
  /// 2h-lane block of a, then of b, so lanes end up owned by parts 0 .. L - 1 in order.
  Value reduceLanes(OpBuilder &b, Location loc, SmallVector<Value> parts);

  /// Keys 0 .. jAll - 1 of (batch row bI, kv head kh) transposed into a fresh f32 buffer
  /// KT [ceil(jAll / KB), hd, KBp]: KT[j / KB][d][j % KB] = K[j][d] (an f16 cache widened).
  /// Every query tile of the pair then reads a key block's d-th components as one vector.
  /// Lanes past jAll stay unwritten; the score step masks them.
  Value transposeKeys(OpBuilder &b, Location loc, Value bI, Value kh, Value jAll);

  /// Scores of key block j0 for the rows of a tile from KT, GEMM-like: for every component
  /// d, one vector of the block's KBp keys times each row's q[d] broadcast (R accumulators
  /// of KBp lanes, no horizontal reduction per key); then scale, and -inf where a key is
  /// past the row's last visible key (the causal mask, and the lanes past the keys); then the
  /// online softmax update of each row. Returns the rows' corrections exp(m_old - m_new).
  SmallVector<Value> scoresTransposed(OpBuilder &b, Location loc, int64_t R, Value bI, Rows &rw,
                                      Value j0);

  /// out = acc / l for the rows of a tile.
  void finish(OpBuilder &b, Location loc, int64_t R, Value bI, Rows &rw);
};

} // namespace attention_detail
} // namespace photon
} // namespace mlir

#endif // PHOTON_LIB_CODEGEN_CPU_ATTENTIONKERNELBODY_H
