//===- PhotonOps.cpp - PHOTON operations: verifiers, folds, patterns ------===//
//
// Every shape rule of photon-model.md is checked here. A rule involving a dynamic
// dimension (`?`) is checked when the dimension is static; the messages quote the
// offending numbers.
//
//===----------------------------------------------------------------------===//

#include "photon/Dialect/PhotonOps.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/IR/TypeUtilities.h"

#include "llvm/Support/Format.h"
#include "llvm/Support/MathExtras.h"
#include "llvm/Support/raw_ostream.h"

#include <limits>
#include <string>

using namespace mlir;
using namespace mlir::photon;

namespace {

bool isStatic(int64_t dim) { return !ShapedType::isDynamic(dim); }

RankedTensorType tensorType(Value v) { return cast<RankedTensorType>(v.getType()); }

/// Fails with "expected <what> (<actual>) to equal <expectedWhat> (<expected>)" when
/// both numbers are static and differ.
LogicalResult expectDim(Operation *op, int64_t actual, int64_t expected,
                        const Twine &what, const Twine &expectedWhat) {
  if (isStatic(actual) && isStatic(expected) && actual != expected)
    return op->emitOpError() << "expected " << what << " (" << actual
                             << ") to equal " << expectedWhat << " (" << expected
                             << ")";
  return success();
}

/// `a * b` when both are static (and the product fits), dynamic otherwise: a rule on
/// a dynamic value is not checked.
int64_t mulDims(int64_t a, int64_t b) {
  int64_t product;
  if (!isStatic(a) || !isStatic(b) || llvm::MulOverflow(a, b, product))
    return ShapedType::kDynamic;
  return product;
}

/// Result shape must equal the operand's (dimension by dimension, where static).
LogicalResult expectSameShape(Operation *op, RankedTensorType result,
                              RankedTensorType operand, StringRef operandName) {
  if (result.getRank() != operand.getRank())
    return op->emitOpError() << "expected result rank (" << result.getRank()
                             << ") to equal " << operandName << " rank ("
                             << operand.getRank() << ")";
  for (int64_t i = 0; i < result.getRank(); ++i)
    if (failed(expectDim(op, result.getDimSize(i), operand.getDimSize(i),
                         "result dimension " + Twine(i),
                         operandName + " dimension " + Twine(i))))
      return failure();
  return success();
}

/// Result `[lead..., last]` where lead equals x's leading dimensions.
LogicalResult expectLeadingDims(Operation *op, RankedTensorType result,
                                RankedTensorType x) {
  if (result.getRank() != x.getRank())
    return op->emitOpError() << "expected result rank (" << result.getRank()
                             << ") to equal x rank (" << x.getRank() << ")";
  for (int64_t i = 0; i + 1 < result.getRank(); ++i)
    if (failed(expectDim(op, result.getDimSize(i), x.getDimSize(i),
                         "result dimension " + Twine(i), "x dimension " + Twine(i))))
      return failure();
  return success();
}

LogicalResult expectRankAtLeast1(Operation *op, RankedTensorType x, StringRef name) {
  if (x.getRank() < 1)
    return op->emitOpError() << "expected " << name
                             << " to have rank >= 1, got a 0-d tensor";
  return success();
}

LogicalResult expectPositive(Operation *op, int64_t value, StringRef name) {
  if (value < 1)
    return op->emitOpError() << "expected " << name << " (" << value
                             << ") to be positive";
  return success();
}

LogicalResult expectPositive(Operation *op, FloatAttr value, StringRef name) {
  double v = value.getValueAsDouble();
  if (!(v > 0.0)) {
    std::string text;
    llvm::raw_string_ostream(text) << llvm::format("%g", v);
    return op->emitOpError() << "expected " << name << " (" << text
                             << ") to be positive";
  }
  return success();
}

/// The stream rules of chunk / chunk_compress: [B, M, *] -> [B, M/size, *], size
/// divides M, rate multiplied by size, level raised.
LogicalResult verifyChunkStream(Operation *op, RankedTensorType x,
                                RankedTensorType result, int64_t size) {
  if (failed(expectPositive(op, size, "chunk size")))
    return failure();
  if (failed(expectDim(op, result.getDimSize(0), x.getDimSize(0), "result batch",
                       "operand batch")))
    return failure();
  int64_t m = x.getDimSize(1);
  if (isStatic(m) && m % size != 0)
    return op->emitOpError() << "expected chunk size (" << size
                             << ") to divide stream length (" << m << ")";
  int64_t units = isStatic(m) ? m / size : ShapedType::kDynamic;
  if (failed(expectDim(op, result.getDimSize(1), units, "result length",
                       "stream length / chunk size")))
    return failure();
  StreamAttr in = getStreamEncoding(x), out = getStreamEncoding(result);
  if (in && out) {
    int64_t rate = mulDims(in.getRate(), size);
    if (out.getRate() != rate)
      return op->emitOpError()
             << "expected result stream rate (" << out.getRate()
             << ") to equal operand rate (" << in.getRate() << ") * chunk size ("
             << size << ") = "
             << (isStatic(rate) ? Twine(rate) : Twine("an overflowing value"));
    if (out.getLevel() <= in.getLevel())
      return op->emitOpError() << "expected result stream level (" << out.getLevel()
                               << ") to be above the operand's (" << in.getLevel()
                               << ")";
  }
  return success();
}

/// q [B, M, H, hd], k, v [B, M, Hkv, hd] -> [B, M, H, hd].
LogicalResult verifyAttentionShapes(Operation *op, RankedTensorType q,
                                    RankedTensorType k, RankedTensorType v,
                                    RankedTensorType result) {
  static const char *const kDimNames[] = {"batch", "length", "heads", "head dim"};
  for (int64_t i = 0; i < 4; ++i)
    if (failed(expectDim(op, v.getDimSize(i), k.getDimSize(i),
                         Twine("value ") + kDimNames[i],
                         Twine("key ") + kDimNames[i])))
      return failure();
  if (failed(expectDim(op, k.getDimSize(0), q.getDimSize(0), "key batch",
                       "query batch")) ||
      failed(expectDim(op, k.getDimSize(1), q.getDimSize(1), "key length",
                       "query length")) ||
      failed(expectDim(op, k.getDimSize(3), q.getDimSize(3), "key head dim",
                       "query head dim")))
    return failure();
  int64_t h = q.getDimSize(2), hkv = k.getDimSize(2);
  if (isStatic(h) && isStatic(hkv) && (hkv == 0 || h % hkv != 0))
    return op->emitOpError() << "expected query heads (" << h
                             << ") to be a multiple of key/value heads (" << hkv
                             << ")";
  return expectSameShape(op, result, q, "q");
}

LogicalResult verifyCacheLayer(Operation *op, KvCacheType cache, int64_t layer) {
  if (layer < 0 || layer >= cache.getLayers())
    return op->emitOpError() << "expected layer (" << layer
                             << ") to be in [0, " << cache.getLayers()
                             << ") for a cache of " << cache.getLayers() << " layers";
  return success();
}

//===----------------------------------------------------------------------===//
// Result types of the ODS builders that infer them
//===----------------------------------------------------------------------===//

/// embedding: `ids`' shape + [E] (the table's rows), of the table's element type.
RankedTensorType embeddingResultType(Value table, Value ids) {
  RankedTensorType tableType = tensorType(table);
  SmallVector<int64_t> shape(tensorType(ids).getShape());
  shape.push_back(tableType.getDimSize(1));
  return RankedTensorType::get(shape, tableType.getElementType());
}

/// x W^T: `x`'s shape with the last dimension replaced by the rows of `w`.
RankedTensorType matmulResultType(Value x, Value w) {
  RankedTensorType xType = tensorType(x);
  SmallVector<int64_t> shape(xType.getShape());
  shape.back() = tensorType(w).getDimSize(0);
  return RankedTensorType::get(shape, xType.getElementType());
}

/// chunk: [B, M, d] -> [B, M / size, size * d] (dynamic where M or d is).
RankedTensorType chunkResultType(Value x, int64_t size) {
  RankedTensorType xType = tensorType(x);
  int64_t m = xType.getDimSize(1), d = xType.getDimSize(2);
  return RankedTensorType::get(
      {xType.getDimSize(0), isStatic(m) ? m / size : ShapedType::kDynamic,
       mulDims(d, size)},
      xType.getElementType());
}

} // namespace

//===----------------------------------------------------------------------===//
// WeightOp
//===----------------------------------------------------------------------===//

LogicalResult WeightOp::verify() {
  if (getName().empty())
    return emitOpError("expected a non-empty weight name");
  return success();
}

//===----------------------------------------------------------------------===//
// EmbeddingOp
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingOp::verify() {
  RankedTensorType table = tensorType(getTable()), ids = tensorType(getIds()),
                   result = getType();
  if (result.getRank() != ids.getRank() + 1)
    return emitOpError() << "expected result rank (" << result.getRank()
                         << ") to be ids rank + 1 (" << ids.getRank() + 1 << ")";
  for (int64_t i = 0; i < ids.getRank(); ++i)
    if (failed(expectDim(*this, result.getDimSize(i), ids.getDimSize(i),
                         "result dimension " + Twine(i), "ids dimension " + Twine(i))))
      return failure();
  if (failed(expectDim(*this, result.getDimSize(ids.getRank()), table.getDimSize(1),
                       "result width", "table width")))
    return failure();
  if (result.getElementType() != table.getElementType())
    return emitOpError() << "expected result element type ("
                         << result.getElementType() << ") to equal the table's ("
                         << table.getElementType() << ")";
  return success();
}

//===----------------------------------------------------------------------===//
// RMSNormOp
//===----------------------------------------------------------------------===//

LogicalResult RMSNormOp::verify() {
  RankedTensorType x = tensorType(getX()), w = tensorType(getW());
  if (failed(expectRankAtLeast1(*this, x, "x")) ||
      failed(expectDim(*this, w.getDimSize(0), x.getDimSize(x.getRank() - 1),
                       "norm weight size", "x width")) ||
      failed(expectPositive(*this, getEpsAttr(), "eps")))
    return failure();
  return expectSameShape(*this, getType(), x, "x");
}

//===----------------------------------------------------------------------===//
// PositionEmbeddingOp
//===----------------------------------------------------------------------===//

LogicalResult PositionEmbeddingOp::verify() {
  RankedTensorType x = tensorType(getX()), table = tensorType(getTable());
  if (table.getElementType() != x.getElementType() ||
      getType().getElementType() != x.getElementType())
    return emitOpError() << "expected the table (" << table.getElementType()
                         << ") and the result (" << getType().getElementType()
                         << ") to have x's element type (" << x.getElementType() << ")";
  if (failed(expectDim(*this, table.getDimSize(1), x.getDimSize(2), "position table width",
                       "x width")))
    return failure();
  int64_t m = x.getDimSize(1), p = table.getDimSize(0);
  if (isStatic(m) && isStatic(p) && m > p)
    return emitOpError() << "expected at most as many positions (" << m
                         << ") as the position table has rows (" << p << ")";
  if (getOffsets() &&
      failed(expectDim(*this, tensorType(getOffsets()).getDimSize(0), x.getDimSize(0),
                       "offsets size", "batch")))
    return failure();
  return expectSameShape(*this, getType(), x, "x");
}

//===----------------------------------------------------------------------===//
// LayerNormOp
//===----------------------------------------------------------------------===//

LogicalResult LayerNormOp::verify() {
  RankedTensorType x = tensorType(getX()), w = tensorType(getW()), b = tensorType(getB());
  if (failed(expectRankAtLeast1(*this, x, "x")) ||
      failed(expectDim(*this, w.getDimSize(0), x.getDimSize(x.getRank() - 1),
                       "norm weight size", "x width")) ||
      failed(expectDim(*this, b.getDimSize(0), x.getDimSize(x.getRank() - 1),
                       "norm bias size", "x width")) ||
      failed(expectPositive(*this, getEpsAttr(), "eps")))
    return failure();
  return expectSameShape(*this, getType(), x, "x");
}

//===----------------------------------------------------------------------===//
// GeluOp
//===----------------------------------------------------------------------===//

LogicalResult GeluOp::verify() {
  return expectSameShape(*this, getType(), tensorType(getX()), "x");
}

//===----------------------------------------------------------------------===//
// LinearOp
//===----------------------------------------------------------------------===//

LogicalResult LinearOp::verify() {
  RankedTensorType x = tensorType(getX()), w = tensorType(getW()), result = getType();
  if (failed(expectRankAtLeast1(*this, x, "x")) ||
      failed(expectDim(*this, w.getDimSize(1), x.getDimSize(x.getRank() - 1),
                       "weight input size (w dimension 1)", "x width")))
    return failure();
  if (getB() && failed(expectDim(*this, tensorType(getB()).getDimSize(0),
                                 w.getDimSize(0), "bias size",
                                 "weight output size (w dimension 0)")))
    return failure();
  if (failed(expectLeadingDims(*this, result, x)))
    return failure();
  return expectDim(*this, result.getDimSize(result.getRank() - 1), w.getDimSize(0),
                   "result width", "weight output size (w dimension 0)");
}

//===----------------------------------------------------------------------===//
// RoPEOp
//===----------------------------------------------------------------------===//

LogicalResult RoPEOp::verify() {
  RankedTensorType x = tensorType(getX());
  int64_t hd = x.getDimSize(3);
  if (isStatic(hd) && hd % 2 != 0)
    return emitOpError() << "expected an even head dim, got " << hd;
  if (getOffsets() &&
      failed(expectDim(*this, tensorType(getOffsets()).getDimSize(0), x.getDimSize(0),
                       "offsets size", "batch")))
    return failure();
  if (failed(expectPositive(*this, getThetaAttr(), "theta")))
    return failure();
  if (getType().getElementType() != x.getElementType())
    return emitOpError() << "expected result element type (" << getType().getElementType()
                         << ") to equal x's (" << x.getElementType() << ")";
  return expectSameShape(*this, getType(), x, "x");
}

//===----------------------------------------------------------------------===//
// CausalAttentionOp / BoundedAttentionOp
//===----------------------------------------------------------------------===//

LogicalResult CausalAttentionOp::verify() {
  return verifyAttentionShapes(*this, tensorType(getQ()), tensorType(getK()),
                               tensorType(getV()), getType());
}

LogicalResult BoundedAttentionOp::verify() {
  if (failed(expectPositive(*this, getPrefix(), "prefix")) ||
      failed(expectPositive(*this, getChunk(), "chunk")))
    return failure();
  int64_t w = tensorType(getQ()).getDimSize(1);
  int64_t maxW;
  if (llvm::AddOverflow<int64_t>(getPrefix(), getChunk() - 1, maxW))
    maxW = std::numeric_limits<int64_t>::max();
  if (isStatic(w) && w > maxW)
    return emitOpError() << "expected window length (" << w
                         << ") to be at most prefix + chunk - 1 (" << maxW << ")";
  return verifyAttentionShapes(*this, tensorType(getQ()), tensorType(getK()),
                               tensorType(getV()), getType());
}

//===----------------------------------------------------------------------===//
// SwiGLUOp
//===----------------------------------------------------------------------===//

LogicalResult SwiGLUOp::verify() {
  RankedTensorType x = tensorType(getX()), gate = tensorType(getWGate()),
                   up = tensorType(getWUp()), down = tensorType(getWDown());
  if (failed(expectRankAtLeast1(*this, x, "x")))
    return failure();
  int64_t d = x.getDimSize(x.getRank() - 1);
  if (failed(expectDim(*this, gate.getDimSize(1), d, "w_gate dimension 1", "x width")) ||
      failed(expectDim(*this, up.getDimSize(0), gate.getDimSize(0),
                       "w_up dimension 0", "w_gate dimension 0 (ffn size)")) ||
      failed(expectDim(*this, up.getDimSize(1), d, "w_up dimension 1", "x width")) ||
      failed(expectDim(*this, down.getDimSize(0), d, "w_down dimension 0", "x width")) ||
      failed(expectDim(*this, down.getDimSize(1), gate.getDimSize(0),
                       "w_down dimension 1", "w_gate dimension 0 (ffn size)")))
    return failure();
  return expectSameShape(*this, getType(), x, "x");
}

//===----------------------------------------------------------------------===//
// ChunkOp
//===----------------------------------------------------------------------===//

LogicalResult ChunkOp::verify() {
  RankedTensorType x = tensorType(getX()), result = getType();
  if (failed(verifyChunkStream(*this, x, result, getSize())))
    return failure();
  return expectDim(*this, result.getDimSize(2), mulDims(getSize(), x.getDimSize(2)),
                   "result width", "chunk size * width");
}

OpFoldResult ChunkOp::fold(FoldAdaptor) {
  // chunk of size 1 with an unchanged type is the identity.
  if (getSize() == 1 && getX().getType() == getType())
    return getX();
  // chunk(chunk(x, a), b) == chunk(x, a * b): both are row-major reshapes.
  if (auto inner = getX().getDefiningOp<ChunkOp>()) {
    int64_t size;
    if (llvm::MulOverflow<int64_t>(inner.getSize(), getSize(), size))
      return {};
    getXMutable().assign(inner.getX());
    setSize(size);
    return getResult();
  }
  return {};
}

//===----------------------------------------------------------------------===//
// ChunkCompressOp
//===----------------------------------------------------------------------===//

LogicalResult ChunkCompressOp::verify() {
  RankedTensorType x = tensorType(getX()), normW = tensorType(getNormW()),
                   w = tensorType(getW()), b = tensorType(getB()), result = getType();
  if (failed(verifyChunkStream(*this, x, result, getSize())))
    return failure();
  int64_t chunkWidth = mulDims(getSize(), x.getDimSize(2));
  if (failed(expectDim(*this, normW.getDimSize(0), chunkWidth, "norm_w size",
                       "chunk size * width")) ||
      failed(expectDim(*this, w.getDimSize(1), chunkWidth, "w dimension 1",
                       "chunk size * width")) ||
      failed(expectDim(*this, b.getDimSize(0), w.getDimSize(0), "bias size",
                       "w dimension 0")) ||
      failed(expectDim(*this, result.getDimSize(2), w.getDimSize(0), "result width",
                       "w dimension 0")) ||
      failed(expectPositive(*this, getEpsAttr(), "eps")))
    return failure();
  return success();
}

//===----------------------------------------------------------------------===//
// ExpandOp
//===----------------------------------------------------------------------===//

LogicalResult ExpandOp::verify() {
  RankedTensorType x = tensorType(getX()), w = tensorType(getW()),
                   b = tensorType(getB()), result = getType();
  if (failed(expectPositive(*this, getR(), "r")))
    return failure();
  int64_t d = x.getDimSize(2);
  int64_t rd = mulDims(getR(), d);
  if (failed(expectDim(*this, w.getDimSize(0), rd, "w dimension 0", "r * width")) ||
      failed(expectDim(*this, w.getDimSize(1), d, "w dimension 1", "width")) ||
      failed(expectDim(*this, b.getDimSize(0), rd, "bias size", "r * width")) ||
      failed(expectDim(*this, result.getDimSize(0), x.getDimSize(0), "result batch",
                       "x batch")) ||
      failed(expectDim(*this, result.getDimSize(1), x.getDimSize(1), "result length",
                       "x length")) ||
      failed(expectDim(*this, result.getDimSize(2), getR(), "result dimension 2",
                       "r")) ||
      failed(expectDim(*this, result.getDimSize(3), d, "result width", "width")))
    return failure();
  return success();
}

namespace {
/// expand with r = 1 is a linear layer followed by a unit-dimension reshape:
///   [B, M, D] -> linear -> [B, M, D] -> tensor.expand_shape -> [B, M, 1, D].
struct ExpandR1ToReshape : OpRewritePattern<ExpandOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(ExpandOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getR() != 1)
      return rewriter.notifyMatchFailure(op, "r != 1: a real converter");
    RankedTensorType resultType = op.getType();
    if (resultType.getEncoding())
      return rewriter.notifyMatchFailure(op, "result carries an encoding");
    Location loc = op.getLoc();
    auto linearType = RankedTensorType::get(
        {resultType.getDimSize(0), resultType.getDimSize(1), resultType.getDimSize(3)},
        resultType.getElementType());
    Value linear = LinearOp::create(rewriter, loc, linearType, op.getX(), op.getW(),
                                    op.getB());
    SmallVector<OpFoldResult> outputShape = {
        tensor::getMixedSize(rewriter, loc, linear, 0),
        tensor::getMixedSize(rewriter, loc, linear, 1), rewriter.getIndexAttr(1),
        tensor::getMixedSize(rewriter, loc, linear, 2)};
    SmallVector<ReassociationIndices> reassociation = {{0}, {1}, {2, 3}};
    rewriter.replaceOpWithNewOp<tensor::ExpandShapeOp>(op, resultType, linear,
                                                       reassociation, outputShape);
    return success();
  }
};
} // namespace

void ExpandOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                           MLIRContext *context) {
  results.add<ExpandR1ToReshape>(context);
}

//===----------------------------------------------------------------------===//
// ShiftOp
//===----------------------------------------------------------------------===//

LogicalResult ShiftOp::verify() {
  RankedTensorType x = tensorType(getX());
  if (failed(expectDim(*this, tensorType(getStart()).getDimSize(0), x.getDimSize(2),
                       "start latent size", "x width")))
    return failure();
  return expectSameShape(*this, getType(), x, "x");
}

//===----------------------------------------------------------------------===//
// LMHeadOp
//===----------------------------------------------------------------------===//

LogicalResult LMHeadOp::verify() {
  RankedTensorType x = tensorType(getX()), w = tensorType(getW()), result = getType();
  if (failed(expectRankAtLeast1(*this, x, "x")) ||
      failed(expectDim(*this, w.getDimSize(1), x.getDimSize(x.getRank() - 1),
                       "w dimension 1", "x width")) ||
      failed(expectLeadingDims(*this, result, x)))
    return failure();
  return expectDim(*this, result.getDimSize(result.getRank() - 1), w.getDimSize(0),
                   "result width", "vocabulary size (w dimension 0)");
}

//===----------------------------------------------------------------------===//
// CacheBindOp
//===----------------------------------------------------------------------===//

LogicalResult CacheBindOp::verify() {
  auto pool = cast<MemRefType>(getPool().getType());
  auto table = cast<MemRefType>(getTable().getType());
  auto lens = cast<MemRefType>(getLens().getType());
  KvCacheType cache = getType();
  static const char *const kPoolDims[] = {"blocks", "layers", "K/V",
                                          "block_size", "kv_heads", "head_dim"};
  SmallVector<int64_t> expected = cache.getPoolShape(ShapedType::kDynamic);
  for (int64_t i = 1; i < 6; ++i)
    if (failed(expectDim(*this, pool.getDimSize(i), expected[i],
                         "pool dimension " + Twine(i) + " (" + kPoolDims[i] + ")",
                         Twine("the cache's ") + kPoolDims[i])))
      return failure();
  if (pool.getElementType() != cache.getElement())
    return emitOpError() << "expected pool element type (" << pool.getElementType()
                         << ") to equal the cache element type ("
                         << cache.getElement() << ")";
  return expectDim(*this, table.getDimSize(0), lens.getDimSize(0), "block table rows",
                   "lens size");
}

//===----------------------------------------------------------------------===//
// KvAppendOp / CachedAttentionOp
//===----------------------------------------------------------------------===//

LogicalResult KvAppendOp::verify() {
  KvCacheType cache = getCache().getType();
  RankedTensorType k = tensorType(getK()), v = tensorType(getV());
  if (failed(verifyCacheLayer(*this, cache, getLayer())))
    return failure();
  static const char *const kDimNames[] = {"batch", "length", "heads", "head dim"};
  for (int64_t i = 0; i < 4; ++i)
    if (failed(expectDim(*this, v.getDimSize(i), k.getDimSize(i),
                         Twine("value ") + kDimNames[i],
                         Twine("key ") + kDimNames[i])))
      return failure();
  if (failed(expectDim(*this, k.getDimSize(2), cache.getKvHeads(), "key heads",
                       "the cache's kv_heads")) ||
      failed(expectDim(*this, k.getDimSize(3), cache.getHeadDim(), "key head dim",
                       "the cache's head_dim")))
    return failure();
  if (k.getElementType() != v.getElementType())
    return emitOpError() << "expected key and value element types to match, got "
                         << k.getElementType() << " and " << v.getElementType();
  return success();
}

LogicalResult CachedAttentionOp::verify() {
  KvCacheType cache = getCache().getType();
  RankedTensorType q = tensorType(getQ());
  if (failed(verifyCacheLayer(*this, cache, getLayer())) ||
      failed(expectDim(*this, q.getDimSize(3), cache.getHeadDim(), "query head dim",
                       "the cache's head_dim")))
    return failure();
  int64_t h = q.getDimSize(2);
  if (isStatic(h) && h % cache.getKvHeads() != 0)
    return emitOpError() << "expected query heads (" << h
                         << ") to be a multiple of the cache's kv_heads ("
                         << cache.getKvHeads() << ")";
  if (getType().getElementType() != q.getElementType())
    return emitOpError() << "expected result element type (" << getType().getElementType()
                         << ") to equal the query's (" << q.getElementType() << ")";
  return expectSameShape(*this, getType(), q, "q");
}

#define GET_OP_CLASSES
#include "photon/Dialect/PhotonOps.cpp.inc"

//===----------------------------------------------------------------------===//
// Matmul weights
//===----------------------------------------------------------------------===//

bool mlir::photon::isMatmulWeightOperand(OpOperand &use) {
  Operation *u = use.getOwner();
  Value v = use.get();
  if (auto op = dyn_cast<LinearOp>(u)) return op.getW() == v && op.getX() != v;
  if (auto op = dyn_cast<LMHeadOp>(u)) return op.getW() == v && op.getX() != v;
  if (auto op = dyn_cast<SwiGLUOp>(u))
    return op.getX() != v && (op.getWGate() == v || op.getWUp() == v || op.getWDown() == v);
  if (auto op = dyn_cast<ChunkCompressOp>(u))
    return op.getW() == v && op.getX() != v && op.getNormW() != v && op.getB() != v;
  if (auto op = dyn_cast<ExpandOp>(u)) return op.getW() == v && op.getX() != v && op.getB() != v;
  return false;
}

llvm::StringSet<> mlir::photon::matmulOnlyWeightNames(Operation *root) {
  llvm::StringMap<bool> only;
  root->walk([&](WeightOp w) {
    bool ok = cast<RankedTensorType>(w.getType()).getRank() == 2 && !w.getResult().use_empty();
    for (OpOperand &use : w.getResult().getUses()) ok = ok && isMatmulWeightOperand(use);
    auto [it, inserted] = only.try_emplace(w.getName(), ok);
    if (!inserted) it->second = it->second && ok;
  });
  llvm::StringSet<> names;
  for (auto &kv : only)
    if (kv.second) names.insert(kv.first());
  return names;
}
