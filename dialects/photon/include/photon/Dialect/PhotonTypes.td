//===- PhotonTypes.td - PHOTON types -----------------------*- tablegen -*-===//

#ifndef PHOTON_DIALECT_PHOTONTYPES_TD
#define PHOTON_DIALECT_PHOTONTYPES_TD

include "photon/Dialect/PhotonBase.td"

//===----------------------------------------------------------------------===//
// KvCacheType
//===----------------------------------------------------------------------===//

def Photon_KvCacheType : Photon_Type<"KvCache", "kv_cache"> {
  let summary = "One level's paged KV cache";
  let description = [{
    A handle on one level's paged key/value cache: a pool of blocks
    `[NB, layers, 2, block_size, kv_heads, head_dim]` of `element`, a per-sequence block
    table `i32[B, MB]` and the valid lengths `i32[B]` (see `photon.cache_bind`). Position
    `p` of sequence `b` lives in block `table[b, p / block_size]` at row
    `p % block_size`. Capacity (the pool) is kept apart from the valid length.

    `photon.kv_append` and `photon.cached_attention` check that their `layer` is below
    `layers` and that their K/V/Q shapes agree with `kv_heads` and `head_dim`.

    ```mlir
    !photon.kv_cache<level = 2, layers = 2, kv_heads = 4, head_dim = 32,
                     block_size = 16, element = f32>
    ```
  }];
  let parameters = (ins
    "int64_t":$level,
    "int64_t":$layers,
    "int64_t":$kv_heads,
    "int64_t":$head_dim,
    "int64_t":$block_size,
    "::mlir::Type":$element);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// Bytes one cached position takes in one layer (K and V).
    int64_t getBytesPerPositionPerLayer() const;
    /// The pool's shape with `numBlocks` (possibly ShapedType::kDynamic) blocks.
    ::llvm::SmallVector<int64_t> getPoolShape(int64_t numBlocks) const;
  }];
}

#endif // PHOTON_DIALECT_PHOTONTYPES_TD
