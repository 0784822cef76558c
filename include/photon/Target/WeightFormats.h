//===- WeightFormats.h - photon-compile --weights: f32 / f16 / bf16 / q8 -*- C++ -*-===//
//
// Converts the matmul weights of a photon module's weights blob to a reduced-precision
// format (f16, bf16, q8, q4) at compile time (docs/compiler.md "Weight formats", docs/artifact.md). Only the
// weights every use of which is the weight operand of photon.linear / lm_head / swiglu /
// chunk_compress / expand are converted (an embedding table, a norm weight, a latent or a
// tied embedding / LM head stays f32). convert-photon-to-linalg reads each tensor's dtype
// from the rewritten blob's index and widens it inside the matmul.
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_TARGET_WEIGHTFORMATS_H
#define PHOTON_TARGET_WEIGHTFORMATS_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/JSON.h"

#include <string>

namespace mlir {
namespace photon {

/// True if `s` names a weight format: f32, f16, bf16, q8 or q4.
bool isWeightFormatName(llvm::StringRef s);

/// Rewrites blob `in` as `out` (may be the same file) with the matmul weights of `m` in
/// `format`, except those whose name matches a glob of `weightsFor`
/// ("GLOB=FORMAT[,GLOB=FORMAT...]", first match wins), which get that entry's format. A q8
/// weight whose K is not a multiple of 32 stays f32 (a note says so unless `quiet`).
/// `manifest` receives the manifest's weight-format fields ("format", "tensor_formats").
/// Returns false with `err` set on a bad option or blob.
bool convertWeightFormats(ModuleOp m, const std::string &in, const std::string &out,
                          const std::string &format, const std::string &weightsFor, bool quiet,
                          llvm::json::Object &manifest, std::string &err);

} // namespace photon
} // namespace mlir

#endif // PHOTON_TARGET_WEIGHTFORMATS_H
