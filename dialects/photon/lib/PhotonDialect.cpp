//===- PhotonDialect.cpp - PHOTON dialect, attributes and types -----------===//

#include "photon/Dialect/PhotonDialect.h"
#include "photon/Dialect/PhotonAttrs.h"
#include "photon/Dialect/PhotonOps.h"
#include "photon/Dialect/PhotonTypes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::photon;

#include "photon/Dialect/PhotonDialect.cpp.inc"

//===----------------------------------------------------------------------===//
// Dialect
//===----------------------------------------------------------------------===//

void PhotonDialect::initialize() {
  registerAttributes();
  registerTypes();
  addOperations<
#define GET_OP_LIST
#include "photon/Dialect/PhotonOps.cpp.inc"
      >();
}

/// Discardable `photon.*` attributes the dialect knows: check their kinds so that a
/// malformed module fails at parse time rather than deep inside a pass.
LogicalResult PhotonDialect::verifyOperationAttribute(Operation *op,
                                                      NamedAttribute attr) {
  StringRef name = attr.getName().getValue();
  if (name == HierarchyAttrHelper::getNameStr()) {
    if (!isa<HierarchyAttr>(attr.getValue()))
      return op->emitError() << "'" << name
                             << "' must be a #photon.hierarchy attribute, got "
                             << attr.getValue();
    if (!isa<ModuleOp>(op))
      return op->emitError() << "'" << name << "' belongs on the module, not on '"
                             << op->getName() << "'";
    return success();
  }
  if (name == LevelAttrHelper::getNameStr()) {
    auto level = dyn_cast<IntegerAttr>(attr.getValue());
    if (!level || level.getInt() < 0)
      return op->emitError() << "'" << name << "' must be a non-negative integer, got "
                             << attr.getValue();
    return success();
  }
  if (name == RoleAttrHelper::getNameStr() || name == StageAttrHelper::getNameStr()) {
    if (!isa<StringAttr>(attr.getValue()))
      return op->emitError() << "'" << name << "' must be a string, got "
                             << attr.getValue();
    return success();
  }
  // Other photon.* attributes (analysis results, plans) are free-form.
  return success();
}

//===----------------------------------------------------------------------===//
// Attributes
//===----------------------------------------------------------------------===//

FailureOr<SmallVector<int64_t>> mlir::photon::parseI64List(AsmParser &parser) {
  SmallVector<int64_t> values;
  if (parser.parseCommaSeparatedList(AsmParser::Delimiter::Square, [&]() {
        int64_t value;
        if (parser.parseInteger(value))
          return failure();
        values.push_back(value);
        return success();
      }))
    return failure();
  return values;
}

void mlir::photon::printI64List(AsmPrinter &printer, ArrayRef<int64_t> values) {
  printer << '[';
  llvm::interleaveComma(values, printer);
  printer << ']';
}

#define GET_ATTRDEF_CLASSES
#include "photon/Dialect/PhotonAttrs.cpp.inc"

void PhotonDialect::registerAttributes() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "photon/Dialect/PhotonAttrs.cpp.inc"
      >();
}

StreamAttr mlir::photon::getStreamEncoding(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor)
    return {};
  return dyn_cast_or_null<StreamAttr>(tensor.getEncoding());
}

LogicalResult StreamAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                 int64_t level, int64_t rate) {
  if (level < 0)
    return emitError() << "expected stream level (" << level
                       << ") to be non-negative";
  if (rate < 1)
    return emitError() << "expected stream rate (" << rate << ") to be positive";
  return success();
}

LogicalResult
StreamAttr::verifyEncoding(ArrayRef<int64_t> shape, Type elementType,
                           function_ref<InFlightDiagnostic()> emitError) const {
  if (shape.size() < 2)
    return emitError() << "#photon.stream expects a tensor of rank >= 2 ([B, M, ...]), "
                          "got rank "
                       << shape.size();
  return success();
}

LogicalResult HierarchyAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                    StringRef family, int64_t levels,
                                    ArrayRef<int64_t> chunkSizes, int64_t prefix,
                                    int64_t width, int64_t vocab) {
  if (family != "photon" && family != "vanilla" && family != "block")
    return emitError() << "expected family \"photon\", \"vanilla\" or \"block\", got \""
                       << family << "\"";
  if (levels < 0)
    return emitError() << "expected levels (" << levels << ") to be non-negative";
  if (static_cast<int64_t>(chunkSizes.size()) != levels)
    return emitError() << "expected one chunk size per level: levels = " << levels
                       << " but " << chunkSizes.size() << " chunk sizes";
  for (auto [i, c] : llvm::enumerate(chunkSizes))
    if (c < 1)
      return emitError() << "expected chunk size " << i << " (" << c
                         << ") to be positive";
  if (family == "photon" && levels < 1)
    return emitError() << "expected a photon model to have at least one level, got "
                       << levels;
  if (family == "block" && levels != 1)
    return emitError() << "expected a block model to have exactly one level, got "
                       << levels;
  if (family == "vanilla" && levels != 0)
    return emitError() << "expected a vanilla model to have no levels, got " << levels;
  if (prefix < 0 || (family != "vanilla" && prefix < 1))
    return emitError() << "expected prefix (" << prefix << ") to be "
                       << (family == "vanilla" ? "non-negative" : "positive");
  if (width < 1)
    return emitError() << "expected width (" << width << ") to be positive";
  if (vocab < 1)
    return emitError() << "expected vocab (" << vocab << ") to be positive";
  return success();
}

int64_t HierarchyAttr::getTokensPerUnit(int64_t level) const {
  int64_t tokens = 1;
  ArrayRef<int64_t> sizes = getChunkSizes();
  for (int64_t i = 0; i < level && i < static_cast<int64_t>(sizes.size()); ++i)
    tokens *= sizes[i];
  return tokens;
}

//===----------------------------------------------------------------------===//
// Types
//===----------------------------------------------------------------------===//

#define GET_TYPEDEF_CLASSES
#include "photon/Dialect/PhotonTypes.cpp.inc"

void PhotonDialect::registerTypes() {
  addTypes<
#define GET_TYPEDEF_LIST
#include "photon/Dialect/PhotonTypes.cpp.inc"
      >();
}

LogicalResult KvCacheType::verify(function_ref<InFlightDiagnostic()> emitError,
                                  int64_t level, int64_t layers, int64_t kvHeads,
                                  int64_t headDim, int64_t blockSize, Type element) {
  if (level < 0)
    return emitError() << "expected cache level (" << level << ") to be non-negative";
  if (layers < 1)
    return emitError() << "expected cache layers (" << layers << ") to be positive";
  if (kvHeads < 1)
    return emitError() << "expected cache kv_heads (" << kvHeads << ") to be positive";
  if (headDim < 1)
    return emitError() << "expected cache head_dim (" << headDim << ") to be positive";
  if (blockSize < 1)
    return emitError() << "expected cache block_size (" << blockSize
                       << ") to be positive";
  if (!isa<FloatType>(element))
    return emitError() << "expected a floating-point cache element type, got "
                       << element;
  return success();
}

int64_t KvCacheType::getBytesPerPositionPerLayer() const {
  int64_t bits = cast<FloatType>(getElement()).getWidth();
  return 2 * getKvHeads() * getHeadDim() * ((bits + 7) / 8);
}

SmallVector<int64_t> KvCacheType::getPoolShape(int64_t numBlocks) const {
  return {numBlocks, getLayers(), 2, getBlockSize(), getKvHeads(), getHeadDim()};
}
