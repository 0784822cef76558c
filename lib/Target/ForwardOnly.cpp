//===- ForwardOnly.cpp - a forward stage for an unrecognized graph --------===//
//
// See include/photon/Target/ForwardOnly.h.
//
//===----------------------------------------------------------------------===//

#include "photon/Target/ForwardOnly.h"
#include "photon/Dialect/PhotonDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"

#include "llvm/ADT/StringExtras.h"

namespace mlir {
namespace photon {

namespace {

std::string nameOf(DictionaryAttr attrs, StringRef fallback) {
  if (attrs)
    if (auto s = attrs.getAs<StringAttr>("onnx.name")) return s.str();
  return fallback.str();
}

bool isTokenName(StringRef n) {
  std::string l = n.lower();
  return l == "tokens" || l == "input_ids" || l == "idx" || l == "input" || l == "ids" ||
         l == "token_ids";
}

/// An elementwise linalg.generic over a tensor of `shape` (dims: static or a Value).
Value generic(OpBuilder &b, Location loc, RankedTensorType ty, ValueRange dynSizes,
              ValueRange inputs, function_ref<Value(OpBuilder &, Location, ValueRange)> body) {
  Value init = tensor::EmptyOp::create(b, loc, ty, dynSizes);
  unsigned rank = ty.getRank();
  SmallVector<AffineMap> maps(inputs.size() + 1, b.getMultiDimIdentityMap(rank));
  SmallVector<utils::IteratorType> its(rank, utils::IteratorType::parallel);
  auto g = linalg::GenericOp::create(
      b, loc, TypeRange{ty}, inputs, ValueRange{init}, maps, its,
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        linalg::YieldOp::create(nb, nl, body(nb, nl, args));
      });
  return g.getResult(0);
}

} // namespace

FailureOr<ForwardOnlyInfo> makeForwardOnly(ModuleOp module) {
  func::FuncOp graph;
  for (auto f : module.getOps<func::FuncOp>()) {
    if (f.isExternal() || f.isPrivate()) continue;
    if (graph)
      return module.emitError("forward-only compile: the module has more than one public "
                              "function (@")
                 << graph.getSymName() << ", @" << f.getSymName()
                 << "); expected the one function the importer writes for the ONNX graph",
             failure();
    graph = f;
  }
  if (!graph)
    return module.emitError("forward-only compile: no public function with a body"), failure();
  MLIRContext *ctx = module.getContext();
  auto ft = graph.getFunctionType();
  ForwardOnlyInfo info;

  // The token input: an integer [B, T] argument, by name first.
  int tokArg = -1;
  for (int pass = 0; pass < 2 && tokArg < 0; ++pass)
    for (unsigned i = 0; i < ft.getNumInputs(); ++i) {
      auto t = dyn_cast<RankedTensorType>(ft.getInput(i));
      if (!t || t.getRank() != 2 || !t.getElementType().isSignlessInteger()) continue;
      if (pass == 0 && !isTokenName(nameOf(graph.getArgAttrDict(i), ""))) continue;
      tokArg = i;
      break;
    }
  if (tokArg < 0)
    return graph.emitError("forward-only compile: the graph has no integer [batch, sequence] "
                           "input for the token ids (looked for 'tokens', 'input_ids', ... then "
                           "any rank-2 integer input)"),
           failure();
  info.tokensInput = nameOf(graph.getArgAttrDict(tokArg), "#" + std::to_string(tokArg));

  // The logits output: 'logits' by name, else the first float [B, T, V] result.
  int logRes = -1;
  for (int pass = 0; pass < 2 && logRes < 0; ++pass)
    for (unsigned i = 0; i < ft.getNumResults(); ++i) {
      auto t = dyn_cast<RankedTensorType>(ft.getResult(i));
      if (!t || t.getRank() != 3 || !isa<FloatType>(t.getElementType())) continue;
      if (pass == 0 && StringRef(nameOf(graph.getResultAttrDict(i), "")).lower() != "logits")
        continue;
      logRes = i;
      break;
    }
  if (logRes < 0)
    return graph.emitError("forward-only compile: the graph has no float [batch, sequence, "
                           "vocab] output (looked for 'logits', then any rank-3 float output)"),
           failure();
  auto lt = cast<RankedTensorType>(ft.getResult(logRes));
  info.logitsOutput = nameOf(graph.getResultAttrDict(logRes), "#" + std::to_string(logRes));
  if (ShapedType::isDynamic(lt.getDimSize(2)))
    return graph.emitError("forward-only compile: output '")
               << info.logitsOutput << "' has a dynamic vocabulary axis; the artifact needs a "
               << "static one",
           failure();
  if (!lt.getElementType().isF32())
    return graph.emitError("forward-only compile: output '")
               << info.logitsOutput << "' is " << lt.getElementType()
               << "; the forward stage returns f32 logits",
           failure();
  info.vocab = lt.getDimSize(2);

  graph.setPrivate();
  if (graph.getSymName() == "forward") {
    if (failed(SymbolTable::replaceAllSymbolUses(graph, StringAttr::get(ctx, "onnx_graph"), module)))
      return failure();
    graph.setSymName("onnx_graph");
  }

  OpBuilder b(ctx);
  b.setInsertionPointToEnd(module.getBody());
  Location loc = graph.getLoc();
  auto i32 = b.getI32Type();
  auto tokTy = RankedTensorType::get({ShapedType::kDynamic, ShapedType::kDynamic}, i32);
  auto outTy = RankedTensorType::get({ShapedType::kDynamic, ShapedType::kDynamic, info.vocab},
                                     lt.getElementType());
  auto fwd = func::FuncOp::create(b, loc, "forward", b.getFunctionType({tokTy}, {outTy}));
  Block *entry = fwd.addEntryBlock();
  b.setInsertionPointToStart(entry);
  Value tok = entry->getArgument(0);
  Value B = tensor::DimOp::create(b, loc, tok, 0), T = tensor::DimOp::create(b, loc, tok, 1);

  SmallVector<Value> args;
  for (unsigned i = 0; i < ft.getNumInputs(); ++i) {
    auto t = dyn_cast<RankedTensorType>(ft.getInput(i));
    std::string name = nameOf(graph.getArgAttrDict(i), "#" + std::to_string(i));
    if (!t)
      return graph.emitError("forward-only compile: input '") << name << "' is not a ranked tensor",
             failure();
    Type et = t.getElementType();
    std::string lname = StringRef(name).lower();
    // Dynamic sizes: axis 0 is the batch; an axis of a [B, T]-shaped input is the sequence;
    // every other dynamic axis (a past length) is 0.
    SmallVector<Value> dyn;
    bool seqLike = (int)i == tokArg || (t.getRank() == 2 && et.isSignlessInteger());
    for (int64_t d = 0; d < t.getRank(); ++d)
      if (t.isDynamicDim(d))
        dyn.push_back(d == 0 ? B : (seqLike && d == 1) ? T : arith::ConstantIndexOp::create(b, loc, 0));
    if ((int)i == tokArg) {
      Value v = tok;
      if (et != i32) {
        auto ty = RankedTensorType::get({ShapedType::kDynamic, ShapedType::kDynamic}, et);
        v = generic(b, loc, ty, {B, T}, {tok}, [&](OpBuilder &nb, Location nl, ValueRange a) -> Value {
          return cast<IntegerType>(et).getWidth() > 32 ? arith::ExtSIOp::create(nb, nl, et, a[0]).getResult()
                                                       : arith::TruncIOp::create(nb, nl, et, a[0]).getResult();
        });
      }
      args.push_back(tensor::CastOp::create(b, loc, t, v));
      continue;
    }
    Value v;
    if (et.isSignlessInteger() && StringRef(lname).contains("mask")) {
      v = generic(b, loc, t, dyn, {}, [&](OpBuilder &nb, Location nl, ValueRange) -> Value {
        return arith::ConstantOp::create(nb, nl, et, nb.getIntegerAttr(et, 1));
      });
      info.suppliedInputs.push_back(name + ": ones (every position attended)");
    } else if (et.isSignlessInteger() && StringRef(lname).contains("position")) {
      unsigned last = t.getRank() - 1;
      v = generic(b, loc, t, dyn, {}, [&](OpBuilder &nb, Location nl, ValueRange) -> Value {
        Value idx = linalg::IndexOp::create(nb, nl, last);
        return arith::IndexCastOp::create(nb, nl, et, idx);
      });
      info.suppliedInputs.push_back(name + ": positions 0 .. T-1");
    } else if (isa<FloatType>(et) && llvm::any_of(t.getShape(), ShapedType::isDynamic) &&
               t.getRank() >= 3) {
      // A past key/value cache: empty along its dynamic past axis.
      v = tensor::EmptyOp::create(b, loc, t, dyn);
      bool empty = false;
      for (int64_t d = 1; d < t.getRank(); ++d) empty |= t.isDynamicDim(d);
      if (!empty)
        return graph.emitError("forward-only compile: input '")
                   << name << "' " << t << " has no dynamic axis after the batch to leave empty",
               failure();
      v = generic(b, loc, t, dyn, {}, [&](OpBuilder &nb, Location nl, ValueRange) -> Value {
        return arith::ConstantOp::create(nb, nl, et, nb.getFloatAttr(et, 0.0));
      });
      info.suppliedInputs.push_back(name + ": empty past (length 0)");
    } else {
      return graph.emitError("forward-only compile: cannot supply graph input '")
                 << name << "' " << t << " (the forward stage takes only the token ids; inputs "
                 << "named *mask* get ones, *position* get 0 .. T-1, float caches are empty)",
             failure();
    }
    args.push_back(v);
  }
  auto call = func::CallOp::create(b, loc, graph, args);
  Value logits = call.getResult(logRes);
  if (logits.getType() != outTy) logits = tensor::CastOp::create(b, loc, outTy, logits);
  func::ReturnOp::create(b, loc, logits);

  auto strs = [&](ArrayRef<StringRef> s) {
    SmallVector<Attribute> a;
    for (StringRef x : s) a.push_back(StringAttr::get(ctx, x));
    return ArrayAttr::get(ctx, a);
  };
  PhotonDialect *dialect = getPhotonDialect(ctx);
  dialect->getStageAttrHelper().setAttr(fwd, StringAttr::get(ctx, "forward"));
  dialect->getArgNamesAttrHelper().setAttr(fwd, strs({"tokens"}));
  dialect->getResultNamesAttrHelper().setAttr(fwd, strs({"logits"}));
  std::string v = std::to_string(info.vocab);
  dialect->getArgShapesAttrHelper().setAttr(
      fwd, ArrayAttr::get(ctx, {strs({"W"}), strs({"B", "T"}), strs({"B", "T", v})}));
  return info;
}

} // namespace photon
} // namespace mlir
