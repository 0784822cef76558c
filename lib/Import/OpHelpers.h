//===- OpHelpers.h - Converter factories shared by the Ops*.cpp files -*- C++ -*-===//
#ifndef PHOTON_LIB_IMPORT_OPHELPERS_H
#define PHOTON_LIB_IMPORT_OPHELPERS_H

#include "Builders.h"
#include "GraphImporter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"

namespace photon {
namespace import {

using FloatBody = std::function<mlir::Value(mlir::OpBuilder &, mlir::Location, mlir::ValueRange)>;
using IntFold = std::function<std::optional<int64_t>(int64_t, int64_t)>;

/// Unary float op: `fn(b, loc, x)`.
ConvertFn unaryFloat(std::function<mlir::Value(mlir::OpBuilder &, mlir::Location, mlir::Value)> fn);

/// Binary op with broadcasting; floatFn / intFn may be null when the type is not allowed.
/// `fold` evaluates known small integer tensors (shape arithmetic). When `boolResult`, the
/// result element type is i1.
ConvertFn binaryOp(FloatBody floatFn, FloatBody intFn, IntFold fold = nullptr,
                   bool boolResult = false);

/// Folds an elementwise integer op over known inputs (equal lengths or scalars).
std::optional<KnownInts> foldKnown(llvm::ArrayRef<const KnownInts *> ins, IntFold fn);

/// Reads an axes list: attribute `name` (opset < inputSince) or input `inputIdx`
/// (opset >= inputSince, must be constant). Returns nullopt (and no error) if absent.
mlir::FailureOr<std::optional<llvm::SmallVector<int64_t>>>
readAxes(NodeContext &ctx, llvm::StringRef name, int64_t inputSince, size_t inputIdx);

/// The data input (0) and the shape input (1) of Reshape / Expand: the shape must be 1-D of
/// static length; its entries are constants where known, index values otherwise.
mlir::FailureOr<llvm::SmallVector<mlir::OpFoldResult>> shapeOperand(NodeContext &ctx);

/// Index arithmetic that folds constants.
mlir::OpFoldResult idxAdd(mlir::OpBuilder &b, mlir::Location loc, mlir::OpFoldResult a,
                          mlir::OpFoldResult c);
mlir::OpFoldResult idxSub(mlir::OpBuilder &b, mlir::Location loc, mlir::OpFoldResult a,
                          mlir::OpFoldResult c);
mlir::OpFoldResult idxMul(mlir::OpBuilder &b, mlir::Location loc, mlir::OpFoldResult a,
                          mlir::OpFoldResult c);
mlir::OpFoldResult idxDiv(mlir::OpBuilder &b, mlir::Location loc, mlir::OpFoldResult a,
                          mlir::OpFoldResult c);
mlir::OpFoldResult idxMax(mlir::OpBuilder &b, mlir::Location loc, mlir::OpFoldResult a,
                          mlir::OpFoldResult c);
mlir::OpFoldResult idxMin(mlir::OpBuilder &b, mlir::Location loc, mlir::OpFoldResult a,
                          mlir::OpFoldResult c);

/// Shape from a mix of static ints and values: static entries stay static.
llvm::SmallVector<int64_t> staticShapeOf(llvm::ArrayRef<mlir::OpFoldResult> sizes);

/// Scalar value of a constant (arith.constant splat or 1-element) input, if any.
std::optional<double> constScalar(mlir::Value v);

/// Softmax (log = false) or LogSoftmax with the opset's axis semantics.
mlir::LogicalResult convertSoftmaxLike(NodeContext &ctx, bool log);

} // namespace import
} // namespace photon

#endif
