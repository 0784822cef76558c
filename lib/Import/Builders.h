//===- Builders.h - Shared IR building helpers of the converters -*- C++ -*-===//
#ifndef PHOTON_LIB_IMPORT_BUILDERS_H
#define PHOTON_LIB_IMPORT_BUILDERS_H

#include "NodeContext.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"

namespace photon {
namespace import {

using ScalarFn = llvm::function_ref<mlir::Value(mlir::OpBuilder &, mlir::Location,
                                                mlir::ValueRange)>;

/// MLIR element type of an ONNX data type (signless integers; bool is i1); null for
/// unsupported types (strings, complex, unsigned).
mlir::Type onnxElemType(mlir::MLIRContext *ctx, int32_t dataType);

bool isFloatTy(mlir::Type t);
bool isIntTy(mlir::Type t);

/// `index` value of dimension i.
mlir::Value dimValue(mlir::OpBuilder &b, mlir::Location loc, mlir::Value t, int64_t i);
/// Values of all dimensions as OpFoldResults (static ones as attributes).
llvm::SmallVector<mlir::OpFoldResult> mixedSizes(mlir::OpBuilder &b, mlir::Location loc,
                                                 mlir::Value t);
mlir::Value indexConst(mlir::OpBuilder &b, mlir::Location loc, int64_t v);
mlir::Value foldToValue(mlir::OpBuilder &b, mlir::Location loc, mlir::OpFoldResult r);

/// tensor.empty of `shape` (kDynamic entries take the next value of dynSizes).
mlir::Value emptyTensor(mlir::OpBuilder &b, mlir::Location loc, llvm::ArrayRef<int64_t> shape,
                        mlir::Type elem, mlir::ValueRange dynSizes);
/// tensor.empty from mixed sizes.
mlir::Value emptyTensor(mlir::OpBuilder &b, mlir::Location loc,
                        llvm::ArrayRef<mlir::OpFoldResult> sizes, mlir::Type elem);
/// Scalar constant of an int or float type.
mlir::Value scalarConst(mlir::OpBuilder &b, mlir::Location loc, mlir::Type t, double v);
/// linalg.fill of `init` with a scalar.
mlir::Value fill(mlir::OpBuilder &b, mlir::Location loc, mlir::Value init, mlir::Value scalar);

/// Scalar conversion between int/float/bool element types (ONNX Cast semantics).
mlir::Value castScalar(mlir::OpBuilder &b, mlir::Location loc, mlir::Value v, mlir::Type to);

/// Elementwise op with numpy (multidirectional) broadcasting, as a linalg.generic. Static
/// sizes must agree or be 1; a dynamic size is assumed to agree. Errors go through ctx.
mlir::FailureOr<mlir::Value> elementwise(NodeContext &ctx, llvm::ArrayRef<mlir::Value> ins,
                                         mlir::Type outElem, ScalarFn body);
/// Broadcast shape of several tensors (numpy rules); fails with a message on a mismatch.
mlir::LogicalResult broadcastShape(llvm::ArrayRef<mlir::Value> ins,
                                   llvm::SmallVectorImpl<int64_t> &shape, std::string &err);

/// Same-element-type check with a clear message.
mlir::LogicalResult requireSameElem(NodeContext &ctx, llvm::ArrayRef<mlir::Value> ins);

enum class ReduceKind { Sum, Max, Min, Prod, Mean, SumSquare, L1, L2, LogSum, LogSumExp };
/// Reduction over `dims` (any order, unique, normalised) as a linalg.generic; keepdims
/// re-inserts size-1 dimensions.
mlir::Value reduce(mlir::OpBuilder &b, mlir::Location loc, mlir::Value x,
                   llvm::ArrayRef<int64_t> dims, ReduceKind kind, bool keepdims);

/// Inserts size-1 dimensions at the given result positions (sorted) with expand_shape.
mlir::Value insertUnitDims(mlir::OpBuilder &b, mlir::Location loc, mlir::Value x,
                           llvm::ArrayRef<int64_t> resultPositions);
/// Removes the given size-1 dimensions (sorted) with collapse_shape.
mlir::Value dropUnitDims(mlir::OpBuilder &b, mlir::Location loc, mlir::Value x,
                         llvm::ArrayRef<int64_t> dims);

/// linalg.transpose by a permutation.
mlir::Value transpose(mlir::OpBuilder &b, mlir::Location loc, mlir::Value x,
                      llvm::ArrayRef<int64_t> perm);

/// Converts a tensor to another element type (identity if equal).
mlir::Value castTensor(mlir::OpBuilder &b, mlir::Location loc, mlir::Value x, mlir::Type elem);

/// Materialises a DenseElementsAttr as arith.constant.
mlir::Value constTensor(mlir::OpBuilder &b, mlir::Location loc, mlir::DenseElementsAttr a);
/// A constant from fully known integers.
mlir::Value constFromInts(mlir::OpBuilder &b, mlir::Location loc, llvm::ArrayRef<int64_t> shape,
                          llvm::ArrayRef<int64_t> vals, mlir::Type elem);

/// Reads the ints of a 1-D (or scalar) integer tensor as index values: known ones as
/// constants, the rest with tensor.extract + index_cast.
llvm::SmallVector<mlir::OpFoldResult> intsAsFoldResults(mlir::OpBuilder &b, mlir::Location loc,
                                                       mlir::Value t, const KnownInts *k);

/// Matrix product with numpy MatMul semantics (batch broadcasting, 1-D promotion).
mlir::FailureOr<mlir::Value> matmul(NodeContext &ctx, mlir::Value a, mlir::Value bm);

} // namespace import
} // namespace photon

#endif // PHOTON_LIB_IMPORT_BUILDERS_H
