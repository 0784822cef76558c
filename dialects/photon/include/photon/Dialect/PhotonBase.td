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

  // The discardable `photon.*` attributes the compiler reads and writes: each gets a
  // typed helper (`PhotonDialect::getStageAttrHelper()`, its static `getNameStr()`), so
  // no pass spells an attribute name. verifyOperationAttribute checks the kinds of
  // `hierarchy`, `level`, `role` and `stage`.
  let discardableAttrs = (ins
    // Module: the model's hierarchy, the one description of the model that travels into
    // the artifact's manifest.
    "::mlir::photon::HierarchyAttr":$hierarchy,
    // Stack functions written by the importer: "encoder" or "decoder", and their level.
    "::mlir::StringAttr":$role,
    "::mlir::IntegerAttr":$level,
    // A stack's incremental version (photon-derive-stages): the stack it was cloned from.
    "::mlir::FlatSymbolRefAttr":$step_of,
    // Stage functions of docs/artifact.md: the stage name, the names of its arguments and
    // results and the symbolic shapes of its ABI arguments.
    "::mlir::StringAttr":$stage,
    "::mlir::ArrayAttr":$arg_names,
    "::mlir::ArrayAttr":$result_names,
    "::mlir::ArrayAttr":$arg_shapes,
    // On @forward: why photon-derive-stages derived no token_start / token_next.
    "::mlir::StringAttr":$no_incremental_token_step,
    // convert-photon-to-linalg: functions whose argument 0 is already the weights blob,
    // and the argument attribute naming that argument ("weights").
    "::mlir::UnitAttr":$weights_arg,
    "::mlir::StringAttr":$arg,
    // A fused attention kernel function: its kind and operand types (one per shape).
    "::mlir::StringAttr":$attention_kernel
  );

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
