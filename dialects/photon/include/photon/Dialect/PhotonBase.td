//===- PhotonBase.td - PHOTON dialect definition -----------*- tablegen -*-===//
//
// The dialect itself and the base classes of its attributes, types and ops.
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_DIALECT_PHOTONBASE_TD
#define PHOTON_DIALECT_PHOTONBASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"

def Photon_Dialect : Dialect {
  let name = "photon";
  let cppNamespace = "::mlir::photon";
  let summary = "PHOTON hierarchical language models: streams, chunking, windows, caches";
  let description = [{
    The `photon` dialect expresses PHOTON hierarchical autoregressive language models
    (arXiv 2512.20687) and their LLaMA building blocks at the level where the compiler
    can reason about them:

    * **Streams.** A latent stream of level `l` is a tensor `[B, M, D]` whose optional
      `#photon.stream<level = l, rate = r>` encoding says that one unit covers `r` tokens.
      `photon.chunk` and `photon.chunk_compress` multiply the rate by their chunk size.
    * **Hierarchy ops.** `chunk` (concatenate C units), `chunk_compress` (concatenate +
      RMSNorm + linear with bias), `expand` (the converter: one latent -> R prefix
      vectors) and `shift` (previous-latent shift with a learned start latent).
    * **Attention.** `causal_attention` is global over a stream; `bounded_attention` is
      causal inside independent windows of at most `R + C - 1` positions. Their
      incremental forms work on an explicit paged cache (`!photon.kv_cache`,
      `photon.cache_bind`, `photon.kv_append`, `photon.cached_attention`).
    * **LLaMA pieces.** `embedding`, `rms_norm`, `linear`, `rope`, `swiglu`, `lm_head`
      are ops too, so that fusion and weight packing see them whole.
    * **Weights.** `photon.weight` names a tensor of the external weights blob; weights
      are never stored as attributes.

    The module-level `#photon.hierarchy<...>` attribute (`photon.hierarchy`) is the one
    description of the model that travels into the artifact's manifest.
  }];

  let useDefaultAttributePrinterParser = 1;
  let useDefaultTypePrinterParser = 1;
  let hasOperationAttrVerify = 1;
  let dependentDialects = ["::mlir::tensor::TensorDialect"];

  let extraClassDeclaration = [{
    void registerAttributes();
    void registerTypes();
  }];
}

// Base class of every photon op.
class Photon_Op<string mnemonic, list<Trait> traits = []>
    : Op<Photon_Dialect, mnemonic, traits>;

// Base class of every photon attribute.
class Photon_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<Photon_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}

// Base class of every photon type.
class Photon_Type<string name, string typeMnemonic, list<Trait> traits = []>
    : TypeDef<Photon_Dialect, name, traits> {
  let mnemonic = typeMnemonic;
}

#endif // PHOTON_DIALECT_PHOTONBASE_TD
