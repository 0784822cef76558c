//===- ConvertPhotonToLinalg.cpp - photon ops to linalg/tensor/scf -------===//
//
// Lowers the photon ops of docs/ir-contract.md to upstream dialects on tensors, reading
// each op through its generated accessors and adaptor. See Passes.td for the op-by-op
// description. Structure (as mlir/examples/toy/Ch7's LowerToAffineLoops.cpp): the
// builders of Lowering.h emit the upstream IR (TensorLowering.cpp for the ops on tensors,
// CacheLowering.cpp for the cache ops); this file has the type converter, one
// OpConversionPattern per photon op, which calls them on the adaptor's (converted)
// operands, and the pass, which adds the weights blob argument, then runs a partial
// conversion with the photon dialect illegal and PhotonTypeConverter for the photon types.
//
//===----------------------------------------------------------------------===//

#include "Lowering.h"

#include "photon/Conversion/AttentionLowering.h"
#include "photon/Dialect/PhotonOps.h"
#include "photon/Conversion/Passes.h"
#include "photon/weights_format.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
#include "mlir/Transforms/DialectConversion.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/MemoryBuffer.h"

namespace mlir {
namespace photon {
#define GEN_PASS_DEF_CONVERTPHOTONTOLINALG
#include "photon/Conversion/Passes.h.inc"
} // namespace photon
} // namespace mlir

using namespace mlir;
using namespace mlir::photon;
using namespace mlir::photon::conversion;

namespace {

//===----------------------------------------------------------------------===//
// Types: the photon types' lowering
//===----------------------------------------------------------------------===//

/// The photon dialect's types after lowering: tensors lose their `#photon.stream`
/// encoding (any encoding: upstream ops take plain tensors); every other type, the
/// weights blob memref and `!photon.kv_cache` included, is kept. A cache handle has no
/// value of its own after lowering: `photon.cache_bind` is erased and `kv_append` /
/// `cached_attention` read the pool, table and lens it was bound to.
struct PhotonTypeConverter : TypeConverter {
  PhotonTypeConverter() {
    addConversion([](Type t) { return t; });
    addConversion([](RankedTensorType t) -> Type {
      if (!t.getEncoding()) return t;
      return RankedTensorType::get(t.getShape(), t.getElementType());
    });
  }

  /// No encoded tensor among the op's operands, results and block arguments (a
  /// function's signature included).
  bool isLegalOp(Operation *op) const {
    if (auto f = dyn_cast<FunctionOpInterface>(op))
      if (!isLegal(f.getArgumentTypes()) || !isLegal(f.getResultTypes())) return false;
    if (!isLegal(op)) return false;
    for (Region &r : op->getRegions())
      if (!isLegal(&r)) return false;
    return true;
  }
};

//===----------------------------------------------------------------------===//
// Patterns: one per photon op
//===----------------------------------------------------------------------===//

/// What the patterns share with the pass: its options and the weights blob's index.
struct LoweringContext {
  bool fusedAttention = true;
  int64_t parallelDecodeMinKeys = 0;
  bool haveWeightsFile = false;
  llvm::StringMap<::photon::weights::TensorInfo> index;
  /// Set when a pattern has reported why its op cannot be lowered (the conversion then
  /// fails; the driver's generic "failed to legalize" adds nothing).
  bool reported = false;
};

template <typename OpT>
struct PhotonOpLowering : OpConversionPattern<OpT> {
  using Adaptor = typename OpConversionPattern<OpT>::OpAdaptor;
  PhotonOpLowering(const TypeConverter &tc, MLIRContext *ctx, LoweringContext &lc)
      : OpConversionPattern<OpT>(tc, ctx), lc(lc) {}

  /// The converted type of result `i`.
  RankedTensorType resultType(OpT op, unsigned i = 0) const {
    return cast<RankedTensorType>(this->getTypeConverter()->convertType(op->getResult(i).getType()));
  }
  /// Replaces the op's result by `r` (cast to the converted result type when the lowering
  /// computed a more static one).
  LogicalResult replace(OpT op, Value r, ConversionPatternRewriter &rewriter) const {
    Type want = resultType(op);
    if (r.getType() != want) r = tensor::CastOp::create(rewriter, op.getLoc(), want, r);
    rewriter.replaceOp(op, r);
    return success();
  }
  /// The op cannot be lowered; the diagnostic has been emitted.
  LogicalResult reported() const {
    lc.reported = true;
    return failure();
  }

  LoweringContext &lc;
};

#define PHOTON_LOWERING(OpT)                                                               \
  struct OpT##Lowering : PhotonOpLowering<OpT> {                                           \
    using PhotonOpLowering<OpT>::PhotonOpLowering;                                         \
    LogicalResult matchAndRewrite(OpT op, OpAdaptor a,                                     \
                                  ConversionPatternRewriter &rewriter) const override;     \
  };
PHOTON_LOWERING(WeightOp)
PHOTON_LOWERING(EmbeddingOp)
PHOTON_LOWERING(RMSNormOp)
PHOTON_LOWERING(LinearOp)
PHOTON_LOWERING(LayerNormOp)
PHOTON_LOWERING(GeluOp)
PHOTON_LOWERING(PositionEmbeddingOp)
PHOTON_LOWERING(LMHeadOp)
PHOTON_LOWERING(RoPEOp)
PHOTON_LOWERING(CausalAttentionOp)
PHOTON_LOWERING(BoundedAttentionOp)
PHOTON_LOWERING(SwiGLUOp)
PHOTON_LOWERING(ChunkOp)
PHOTON_LOWERING(ChunkCompressOp)
PHOTON_LOWERING(ExpandOp)
PHOTON_LOWERING(ShiftOp)
PHOTON_LOWERING(CacheBindOp)
PHOTON_LOWERING(KvAppendOp)
PHOTON_LOWERING(CachedAttentionOp)
#undef PHOTON_LOWERING

/// `photon.weight` -> memref.view of the blob (the function's argument 0) at the tensor's
/// byte offset, as a read-only tensor.
LogicalResult WeightOpLowering::matchAndRewrite(WeightOp op, OpAdaptor,
                                                ConversionPatternRewriter &rewriter) const {
  StringRef name = op.getName();
  RankedTensorType rt = resultType(op);
  if (!rt.hasStaticShape())
    return op.emitOpError("must produce a statically shaped tensor"), reported();
  int64_t offset = -1;
  if (std::optional<uint64_t> off = op.getOffset()) offset = static_cast<int64_t>(*off);
  auto it = lc.index.find(name);
  // q4 stores two 4-bit weights per byte: [N, K / 2] (docs/artifact.md, "Weight formats")
  auto q4Scales = lc.index.find((name + ::photon::weights::kQ4ScalesSuffix).str());
  bool q4 = q4Scales != lc.index.end() && rt.getRank() == 2;
  if (it != lc.index.end()) {
    const auto &info = it->second;
    std::vector<int64_t> stored(rt.getShape().begin(), rt.getShape().end());
    if (q4) stored[1] /= 2;
    if (info.shape != stored)
      return op.emitOpError("weight '") << name << "' has another shape in the weights blob ("
                                         << info.shape.size() << "-d) than in the IR (" << rt
                                         << "); re-import the model",
             reported();
    offset = static_cast<int64_t>(info.offset);
  } else if (offset < 0) {
    return op.emitOpError("weight '")
               << name << "' is not in the weights blob"
               << (lc.haveWeightsFile ? "" : " (no weights file given: pass --weights)") << "",
           reported();
  }
  auto f = op->getParentOfType<func::FuncOp>();
  Value blob = rewriter.getRemappedValue(f.getArgument(0));
  Location loc = op.getLoc();
  // A tensor of the blob at byte offset `o` as `shape` x `elt`.
  auto viewAt = [&](int64_t o, ArrayRef<int64_t> shape, Type elt) -> Value {
    Value off = arith::ConstantIndexOp::create(rewriter, loc, o);
    auto mt = MemRefType::get(shape, elt);
    Value view = memref::ViewOp::create(rewriter, loc, mt, blob, off, ValueRange{});
    return bufferization::ToTensorOp::create(rewriter, loc, RankedTensorType::get(shape, elt), view,
                                             /*restrict=*/true, /*writable=*/false);
  };
  using ::photon::weights::DType;
  DType dt = it != lc.index.end() ? it->second.dtype : DType::F32;
  if (dt == DType::F32 || !rt.getElementType().isF32() || rt.getRank() != 2)
    return replace(op, viewAt(offset, rt.getShape(), rt.getElementType()), rewriter);
  // A reduced-precision matmul weight (photon-compile --weights, docs/artifact.md): widened
  // by an elementwise generic that matmulT folds into the matmul's body.
  Lowering L{rewriter, loc};
  Value init = tensor::EmptyOp::create(rewriter, loc, rt.getShape(), rewriter.getF32Type());
  if (dt == DType::F16 || dt == DType::BF16) {
    Type elt = dt == DType::F16 ? Type(rewriter.getF16Type()) : Type(rewriter.getBF16Type());
    Value q = viewAt(offset, rt.getShape(), elt);
    return replace(op,
                   L.generic(init, ValueRange{q}, {L.idMap(2), L.idMap(2)}, L.iters(2),
                             [](OpBuilder &nb, Location l, ValueRange a) {
                               linalg::YieldOp::create(
                                   nb, l, ValueRange{arith::ExtFOp::create(nb, l, nb.getF32Type(), a[0])});
                             }),
                   rewriter);
  }
  int64_t N = rt.getDimSize(0), K = rt.getDimSize(1), G = ::photon::weights::kQ8Group;
  if (q4) {
    const auto &si = q4Scales->second;
    if (dt != DType::I8 || K % G != 0 || si.dtype != DType::F16 ||
        si.shape != std::vector<int64_t>{N, K / G})
      return op.emitOpError("weight '")
                 << name << "' has q4 scales but is not a q4 weight (i8 [N, K / 2] with f16 "
                    "scales [N, K / 32]); re-run photon-compile from the f32 weights",
             reported();
    Value p = viewAt(offset, {N, K / 2}, rewriter.getI8Type());
    Value d = viewAt(static_cast<int64_t>(si.offset), {N, K / G}, rewriter.getF16Type());
    AffineExpr n = rewriter.getAffineDimExpr(0), k = rewriter.getAffineDimExpr(1);
    AffineMap pMap = AffineMap::get(2, 0, {n, k.floorDiv(G) * (G / 2) + k % (G / 2)}, rewriter.getContext());
    AffineMap dMap = AffineMap::get(2, 0, {n, k.floorDiv(G)}, rewriter.getContext());
    return replace(op,
                   L.generic(init, ValueRange{p, d}, {pMap, dMap, L.idMap(2)}, L.iters(2),
                             [](OpBuilder &nb, Location l, ValueRange a) {
                               Value kk = linalg::IndexOp::create(nb, l, 1);
                               linalg::YieldOp::create(nb, l, ValueRange{dequantQ4(nb, l, a[0], a[1], kk)});
                             }),
                   rewriter);
  }
  auto sc = lc.index.find((name + ::photon::weights::kQ8ScalesSuffix).str());
  if (dt != DType::I8 || K % G != 0 || sc == lc.index.end() || sc->second.dtype != DType::F16 ||
      sc->second.shape != std::vector<int64_t>{N, K / G})
    return op.emitOpError("weight '")
               << name << "' is stored as " << ::photon::weights::dtypeName(dt)
               << " in the weights blob, which is not an f32 / f16 / bf16 / q8 matmul weight "
                  "(q8: i8 [N, K] with f16 scales '"
               << name << ::photon::weights::kQ8ScalesSuffix
               << "' [N, K / 32]); re-run photon-compile from the f32 weights",
           reported();
  Value q = viewAt(offset, rt.getShape(), rewriter.getI8Type());
  Value d = viewAt(static_cast<int64_t>(sc->second.offset), {N, K / G}, rewriter.getF16Type());
  AffineMap dMap = AffineMap::get(2, 0, {rewriter.getAffineDimExpr(0), rewriter.getAffineDimExpr(1).floorDiv(G)},
                                  rewriter.getContext());
  return replace(op,
                 L.generic(init, ValueRange{q, d}, {L.idMap(2), dMap, L.idMap(2)}, L.iters(2),
                           [](OpBuilder &nb, Location l, ValueRange a) {
                             Value qf = arith::SIToFPOp::create(nb, l, nb.getF32Type(), a[0]);
                             Value df = arith::ExtFOp::create(nb, l, nb.getF32Type(), a[1]);
                             linalg::YieldOp::create(nb, l, ValueRange{arith::MulFOp::create(nb, l, qf, df)});
                           }),
                 rewriter);
}

LogicalResult EmbeddingOpLowering::matchAndRewrite(EmbeddingOp op, OpAdaptor a,
                                                   ConversionPatternRewriter &rewriter) const {
  Lowering L{rewriter, op.getLoc()};
  return replace(op, L.embedding(a.getTable(), a.getIds(), resultType(op)), rewriter);
}

LogicalResult RMSNormOpLowering::matchAndRewrite(RMSNormOp op, OpAdaptor a,
                                                 ConversionPatternRewriter &rewriter) const {
  Lowering L{rewriter, op.getLoc()};
  return replace(op, L.rmsNorm(a.getX(), a.getW(), op.getEpsAttr().getValueAsDouble(),
                               resultType(op)),
                 rewriter);
}

LogicalResult LinearOpLowering::matchAndRewrite(LinearOp op, OpAdaptor a,
                                                ConversionPatternRewriter &rewriter) const {
  Lowering L{rewriter, op.getLoc()};
  return replace(op, L.linear(a.getX(), a.getW(), a.getB(), resultType(op)), rewriter);
}

/// Two row reductions (sum, then the centred sum of squares) and the normalization.
LogicalResult LayerNormOpLowering::matchAndRewrite(LayerNormOp op, OpAdaptor a,
                                                   ConversionPatternRewriter &rewriter) const {
  Lowering L{rewriter, op.getLoc()};
  return replace(op, L.layerNorm(a.getX(), a.getW(), a.getB(),
                                 op.getEpsAttr().getValueAsDouble(), resultType(op)),
                 rewriter);
}

LogicalResult GeluOpLowering::matchAndRewrite(GeluOp op, OpAdaptor a,
                                              ConversionPatternRewriter &rewriter) const {
  Lowering L{rewriter, op.getLoc()};
  return replace(op, L.gelu(a.getX(), op.getTanh()), rewriter);
}

LogicalResult
PositionEmbeddingOpLowering::matchAndRewrite(PositionEmbeddingOp op, OpAdaptor a,
                                             ConversionPatternRewriter &rewriter) const {
  Lowering L{rewriter, op.getLoc()};
  return replace(op, L.positionEmbedding(a.getX(), a.getTable(), a.getOffsets()), rewriter);
}

LogicalResult LMHeadOpLowering::matchAndRewrite(LMHeadOp op, OpAdaptor a,
                                                ConversionPatternRewriter &rewriter) const {
  Lowering L{rewriter, op.getLoc()};
  return replace(op, L.linear(a.getX(), a.getW(), Value(), resultType(op)), rewriter);
}

LogicalResult RoPEOpLowering::matchAndRewrite(RoPEOp op, OpAdaptor a,
                                              ConversionPatternRewriter &rewriter) const {
  Lowering L{rewriter, op.getLoc()};
  return replace(op, L.rope(a.getX(), a.getOffsets(), op.getThetaAttr().getValueAsDouble()),
                 rewriter);
}

/// Causal and bounded attention (a bounded attention's windows are its batch rows) lower
/// the same way: the fused kernel when enabled and the shapes allow it, else the
/// score / masked-softmax / value generics.
template <typename AttnOp, typename AdaptorT>
Value lowerAttention(AttnOp op, AdaptorT a, RankedTensorType resultType, OpBuilder &b,
                     bool fusedAttention) {
  Location loc = op.getLoc();
  double scale = op.getScaleAttr().getValueAsDouble();
  FailureOr<Value> fused = failure();
  if (const AttentionKernelProvider *kernels =
          fusedAttention ? getAttentionKernelProvider() : nullptr)
    fused = kernels->causal(b, loc, a.getQ(), a.getK(), a.getV(), scale, resultType);
  if (succeeded(fused)) return *fused;
  Lowering L{b, loc};
  return L.causalAttention(a.getQ(), a.getK(), a.getV(), scale, resultType);
}

LogicalResult
CausalAttentionOpLowering::matchAndRewrite(CausalAttentionOp op, OpAdaptor a,
                                           ConversionPatternRewriter &rewriter) const {
  return replace(op, lowerAttention(op, a, resultType(op), rewriter, lc.fusedAttention),
                 rewriter);
}

LogicalResult
BoundedAttentionOpLowering::matchAndRewrite(BoundedAttentionOp op, OpAdaptor a,
                                            ConversionPatternRewriter &rewriter) const {
  return replace(op, lowerAttention(op, a, resultType(op), rewriter, lc.fusedAttention),
                 rewriter);
}

LogicalResult SwiGLUOpLowering::matchAndRewrite(SwiGLUOp op, OpAdaptor a,
                                                ConversionPatternRewriter &rewriter) const {
  Lowering L{rewriter, op.getLoc()};
  return replace(op, L.swiglu(a.getX(), a.getWGate(), a.getWUp(), a.getWDown(), resultType(op)),
                 rewriter);
}

LogicalResult ChunkOpLowering::matchAndRewrite(ChunkOp op, OpAdaptor a,
                                               ConversionPatternRewriter &rewriter) const {
  Lowering L{rewriter, op.getLoc()};
  return replace(op, L.chunk(a.getX(), op.getSize()), rewriter);
}

/// chunk, then RMSNorm, then the linear projection.
LogicalResult
ChunkCompressOpLowering::matchAndRewrite(ChunkCompressOp op, OpAdaptor a,
                                         ConversionPatternRewriter &rewriter) const {
  Lowering L{rewriter, op.getLoc()};
  Value ch = L.chunk(a.getX(), op.getSize());
  Value n = L.rmsNorm(ch, a.getNormW(), op.getEpsAttr().getValueAsDouble(),
                      cast<RankedTensorType>(ch.getType()));
  return replace(op, L.linear(n, a.getW(), a.getB(), resultType(op)), rewriter);
}

/// The linear projection to R * D, then [.., R * D] -> [.., R, D].
LogicalResult ExpandOpLowering::matchAndRewrite(ExpandOp op, OpAdaptor a,
                                                ConversionPatternRewriter &rewriter) const {
  Location loc = op.getLoc();
  Lowering L{rewriter, loc};
  int64_t R = op.getR();
  auto xt = L.rtt(a.getX());
  int64_t D = xt.getDimSize(2);
  auto linT =
      RankedTensorType::get({xt.getDimSize(0), xt.getDimSize(1), R * D}, xt.getElementType());
  Value y = L.linear(a.getX(), a.getW(), a.getB(), linT);
  Value r = tensor::ExpandShapeOp::create(
      rewriter, loc, resultType(op), y, ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3}},
      ArrayRef<OpFoldResult>{L.dim(y, 0), L.dim(y, 1), rewriter.getIndexAttr(R),
                             rewriter.getIndexAttr(D)});
  return replace(op, r, rewriter);
}

LogicalResult ShiftOpLowering::matchAndRewrite(ShiftOp op, OpAdaptor a,
                                               ConversionPatternRewriter &rewriter) const {
  Lowering L{rewriter, op.getLoc()};
  return replace(op, L.shift(a.getX(), a.getStart()), rewriter);
}

/// The cache handle has no lowered value: erased, its users read the bound buffers
/// (getCache). Only kv_append and cached_attention may use it.
LogicalResult CacheBindOpLowering::matchAndRewrite(CacheBindOp op, OpAdaptor,
                                                   ConversionPatternRewriter &rewriter) const {
  if (!llvm::all_of(op->getUsers(),
                    [](Operation *u) { return isa<KvAppendOp, CachedAttentionOp>(u); }))
    return op.emitOpError("result is still used after lowering (only kv_append and "
                          "cached_attention may use a cache)"),
           reported();
  rewriter.eraseOp(op);
  return success();
}

LogicalResult KvAppendOpLowering::matchAndRewrite(KvAppendOp op, OpAdaptor a,
                                                  ConversionPatternRewriter &rewriter) const {
  if (failed(lowerKvAppend(op, a.getK(), a.getV(), getCache(op, op.getCache(), rewriter),
                           rewriter, lc.fusedAttention)))
    return reported();
  rewriter.eraseOp(op);
  return success();
}

LogicalResult
CachedAttentionOpLowering::matchAndRewrite(CachedAttentionOp op, OpAdaptor a,
                                           ConversionPatternRewriter &rewriter) const {
  FailureOr<Value> r =
      lowerCachedAttention(op, a.getQ(), getCache(op, op.getCache(), rewriter), rewriter,
                           lc.fusedAttention, lc.parallelDecodeMinKeys);
  if (failed(r)) return reported();
  return replace(op, *r, rewriter);
}

/// Any other op whose operands, results or block arguments carry encoded tensors is
/// rebuilt with the converted types (func.call, func.return, tensor reshapes, scf, ...).
struct DropTensorEncodings : ConversionPattern {
  DropTensorEncodings(const TypeConverter &tc, MLIRContext *ctx)
      : ConversionPattern(tc, MatchAnyOpTypeTag(), /*benefit=*/1, ctx) {}
  LogicalResult matchAndRewrite(Operation *op, ArrayRef<Value> operands,
                                ConversionPatternRewriter &rewriter) const override {
    if (isa<FunctionOpInterface>(op) || isa_and_nonnull<PhotonDialect>(op->getDialect()))
      return failure();
    SmallVector<Type> types;
    if (failed(getTypeConverter()->convertTypes(op->getResultTypes(), types))) return failure();
    Operation *n = Operation::create(op->getLoc(), op->getName(), types, operands,
                                     op->getAttrDictionary(), op->getPropertiesStorage(),
                                     op->getSuccessors(), op->getNumRegions());
    for (auto [from, to] : llvm::zip(op->getRegions(), n->getRegions())) {
      rewriter.inlineRegionBefore(from, to, to.end());
      if (failed(rewriter.convertRegionTypes(&to, *getTypeConverter()))) return failure();
    }
    rewriter.insert(n);
    rewriter.replaceOp(op, n->getResults());
    return success();
  }
};

//===----------------------------------------------------------------------===//
// The pass
//===----------------------------------------------------------------------===//

struct ConvertPhotonToLinalgPass
    : public mlir::photon::impl::ConvertPhotonToLinalgBase<ConvertPhotonToLinalgPass> {
  using Base::Base;

  void getDependentDialects(DialectRegistry &registry) const override {
    Base::getDependentDialects(registry);
    registry.insert<vector::VectorDialect>(); // the fused attention kernels
  }

  LogicalResult loadIndex(ModuleOp m, llvm::StringMap<::photon::weights::TensorInfo> &index) {
    if (weightsFile.empty()) return success();
    auto buf = llvm::MemoryBuffer::getFile(weightsFile, /*IsText=*/false,
                                           /*RequiresNullTerminator=*/false);
    if (!buf)
      return m.emitError("cannot read weights blob '") << weightsFile << "': "
                                                        << buf.getError().message();
    std::vector<::photon::weights::TensorInfo> infos;
    std::string err;
    if (!::photon::weights::parseIndex((*buf)->getBufferStart(), (*buf)->getBufferSize(), infos,
                                     err))
      return m.emitError("weights blob '") << weightsFile << "': " << err;
    for (auto &t : infos) index[t.name] = t;
    return success();
  }

  /// The weights blob becomes argument 0 of every function with a body (the ABI's
  /// argument 0, marked photon.weights_arg), and every call of one passes it on. This is
  /// an ABI change, not a type conversion, so it is done before the conversion.
  LogicalResult addWeightsArgument(ModuleOp m) {
    MLIRContext *ctx = &getContext();
    auto blobT = MemRefType::get({ShapedType::kDynamic}, IntegerType::get(ctx, 8));
    PhotonDialect *dialect = getPhotonDialect(ctx);
    auto weightsArg = dialect->getWeightsArgAttrHelper();
    // The blob argument's attribute: photon.arg = "weights".
    NamedAttribute blobArgAttr(dialect->getArgAttrHelper().getName(),
                               StringAttr::get(ctx, "weights"));
    llvm::DenseMap<func::FuncOp, Value> blobOf;
    for (auto f : m.getOps<func::FuncOp>()) {
      if (f.isExternal()) continue;
      if (f->hasAttr(weightsArg.getName())) {
        blobOf[f] = f.getArgument(0);
        continue;
      }
      if (failed(f.insertArgument(0, blobT, DictionaryAttr::get(ctx, {blobArgAttr}), f.getLoc())))
        return failure();
      weightsArg.setAttr(f, UnitAttr::get(ctx));
      blobOf[f] = f.getArgument(0);
    }
    m.walk([&](func::CallOp call) {
      auto callee = m.lookupSymbol<func::FuncOp>(call.getCallee());
      if (!callee || callee.isExternal() || !blobOf.count(callee)) return;
      auto caller = call->getParentOfType<func::FuncOp>();
      if (call.getNumOperands() == callee.getNumArguments()) return;
      SmallVector<Value> args{blobOf[caller]};
      args.append(call.getOperands().begin(), call.getOperands().end());
      call->setOperands(args);
    });
    return success();
  }

  void runOnOperation() override {
    ModuleOp m = getOperation();
    MLIRContext *ctx = &getContext();
    LoweringContext lc;
    lc.fusedAttention = fusedAttention;
    lc.parallelDecodeMinKeys = parallelDecodeMinKeys;
    lc.haveWeightsFile = !weightsFile.empty();
    if (failed(loadIndex(m, lc.index))) return signalPassFailure();
    if (failed(addWeightsArgument(m))) return signalPassFailure();

    PhotonTypeConverter typeConverter;
    ConversionTarget target(*ctx);
    target.addIllegalDialect<PhotonDialect>();
    target.markUnknownOpDynamicallyLegal(
        [&](Operation *op) { return typeConverter.isLegalOp(op); });

    RewritePatternSet patterns(ctx);
    patterns.add<LayerNormOpLowering, GeluOpLowering, PositionEmbeddingOpLowering>(
        typeConverter, ctx, lc);
    patterns.add<WeightOpLowering, EmbeddingOpLowering, RMSNormOpLowering, LinearOpLowering,
                 LMHeadOpLowering, RoPEOpLowering, CausalAttentionOpLowering,
                 BoundedAttentionOpLowering, SwiGLUOpLowering, ChunkOpLowering,
                 ChunkCompressOpLowering, ExpandOpLowering, ShiftOpLowering,
                 CacheBindOpLowering, KvAppendOpLowering, CachedAttentionOpLowering>(
        typeConverter, ctx, lc);
    patterns.add<DropTensorEncodings>(typeConverter, ctx);
    populateFunctionOpInterfaceTypeConversionPattern<func::FuncOp>(patterns, typeConverter);

    // The lowered IR is exactly the patterns' output: no folding of the photon ops
    // (photon.chunk folds) before they are lowered.
    ConversionConfig config;
    config.foldingMode = DialectConversionFoldingMode::Never;
    // A pattern that cannot lower its op says why; the driver's "failed to legalize
    // operation" that follows adds nothing.
    ScopedDiagnosticHandler quiet(ctx, [&](Diagnostic &d) {
      return success(lc.reported && d.getSeverity() == DiagnosticSeverity::Error &&
                     StringRef(d.str()).starts_with("failed to legalize operation"));
    });
    if (failed(applyPartialConversion(m, target, std::move(patterns), config)))
      signalPassFailure();
  }
};

} // namespace
