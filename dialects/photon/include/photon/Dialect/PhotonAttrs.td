//===- PhotonAttrs.td - PHOTON attributes ------------------*- tablegen -*-===//

#ifndef PHOTON_DIALECT_PHOTONATTRS_TD
#define PHOTON_DIALECT_PHOTONATTRS_TD

include "photon/Dialect/PhotonBase.td"
include "mlir/IR/TensorEncoding.td"

// A bracketed list of integers, `[4, 4]` (possibly empty: `[]`).
def Photon_I64ListParameter : ArrayRefParameter<"int64_t", "list of integers"> {
  let parser = "::mlir::photon::parseI64List($_parser)";
  let printer = "::mlir::photon::printI64List($_printer, $_self)";
}

//===----------------------------------------------------------------------===//
// StreamAttr
//===----------------------------------------------------------------------===//

def Photon_StreamAttr : Photon_Attr<"Stream", "stream",
    [DeclareAttrInterfaceMethods<VerifiableTensorEncoding>]> {
  let summary = "Encoding of a latent stream: its level and tokens per unit";
  let description = [{
    An optional encoding on a ranked tensor `[B, M, D, ...]` whose dimension 1 runs over
    the units of a stream. `level` is the hierarchy level (0 = tokens, 1 = first chunk
    level, ...); `rate` is how many tokens one unit covers (1 for tokens, `C_1` at level 1,
    `C_1 * C_2` at level 2, ...).

    Ops that change the rate check it when both operand and result carry an encoding:
    `photon.chunk` and `photon.chunk_compress` of size `C` multiply it by `C` and raise
    the level.

    ```mlir
    %x1 = photon.chunk %x0 {size = 4 : i64}
        : tensor<?x?x32xf32, #photon.stream<level = 0, rate = 1>>
       -> tensor<?x?x128xf32, #photon.stream<level = 1, rate = 4>>
    ```
  }];
  let parameters = (ins "int64_t":$level, "int64_t":$rate);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

//===----------------------------------------------------------------------===//
// HierarchyAttr
//===----------------------------------------------------------------------===//

def Photon_HierarchyAttr : Photon_Attr<"Hierarchy", "hierarchy"> {
  let summary = "The model's hierarchy: family, levels, chunk sizes, prefix, width, vocab";
  let description = [{
    Attached to the module as `photon.hierarchy`: the one description of the model that
    travels from the IR into the artifact's manifest.

    * `family`: `"photon"`, `"vanilla"` (a plain decoder-only LLaMA) or `"block"` (a Block
      Transformer, one level).
    * `levels`: number of chunk levels `L` (0 for `vanilla`).
    * `chunk_sizes`: `[C_1, ..., C_L]`, one per level, each >= 1.
    * `prefix`: `R`, the number of prefix vectors the converter produces (0 for `vanilla`).
    * `width`: the model width `D`; `vocab`: the vocabulary size `V`.

    ```mlir
    module attributes {photon.hierarchy = #photon.hierarchy<family = "photon", levels = 2,
        chunk_sizes = [4, 4], prefix = 2, width = 128, vocab = 256>} {
    }
    ```
  }];
  let parameters = (ins
    StringRefParameter<"model family">:$family,
    "int64_t":$levels,
    Photon_I64ListParameter:$chunk_sizes,
    "int64_t":$prefix,
    "int64_t":$width,
    "int64_t":$vocab);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// Tokens covered by one unit of `level` (product of the first `level` chunk sizes).
    int64_t getTokensPerUnit(int64_t level) const;
  }];
}

#endif // PHOTON_DIALECT_PHOTONATTRS_TD
