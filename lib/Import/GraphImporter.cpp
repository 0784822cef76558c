//===- GraphImporter.cpp - ONNX graph -> MLIR function --------------------===//

#include "GraphImporter.h"
#include "Builders.h"

#include "photon/Dialect/PhotonOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "llvm/Support/Format.h"

#include <cstring>
#include <deque>
#include <map>

namespace photon {
namespace import {
using namespace mlir;
namespace wf = ::photon::weights;

//===----------------------------------------------------------------------===//
// Topological order and cycle detection
//===----------------------------------------------------------------------===//

bool topoSort(const google::protobuf::RepeatedPtrField<onnx::NodeProto> &nodes,
                              const std::set<std::string> &available, std::vector<int> &order,
                              std::string &error) {
  int n = nodes.size();
  std::map<std::string, int> producer;
  for (int i = 0; i < n; ++i)
    for (const auto &o : nodes[i].output())
      if (!o.empty()) producer[o] = i;
  std::vector<int> indeg(n, 0);
  std::vector<std::vector<int>> users(n);
  for (int i = 0; i < n; ++i) {
    for (const auto &in : nodes[i].input()) {
      if (in.empty() || available.count(in)) continue;
      auto it = producer.find(in);
      if (it == producer.end()) {
        error = "input '" + in + "' of node '" + nodes[i].name() + "' (" + nodes[i].op_type() +
                ") is not a graph input, an initializer or the output of any node";
        return false;
      }
      ++indeg[i];
      users[it->second].push_back(i);
    }
  }
  std::deque<int> ready;
  for (int i = 0; i < n; ++i)
    if (indeg[i] == 0) ready.push_back(i);
  order.clear();
  while (!ready.empty()) {
    int i = ready.front();
    ready.pop_front();
    order.push_back(i);
    for (int u : users[i])
      if (--indeg[u] == 0) ready.push_back(u);
  }
  if ((int)order.size() != n) {
    std::string names;
    int shown = 0;
    for (int i = 0; i < n && shown < 8; ++i)
      if (indeg[i] > 0) {
        names += (shown ? ", '" : "'") + nodes[i].name() + "' (" + nodes[i].op_type() + ")";
        ++shown;
      }
    error = "the graph has a cycle: " + std::to_string(n - order.size()) +
            " nodes depend on each other's outputs, among them " + names;
    return false;
  }
  return true;
}

//===----------------------------------------------------------------------===//
// Types, locations, weights
//===----------------------------------------------------------------------===//

Location GraphImporter::nodeLoc(const onnx::NodeProto &node) {
  auto file = FileLineColLoc::get(&ctx_, model_.path(), 0, 0);
  std::string name = node.name().empty() ? node.op_type() : node.name();
  return NameLoc::get(StringAttr::get(&ctx_, name), file);
}

RankedTensorType GraphImporter::tensorType(const onnx::TypeProto &tp, StringRef what,
                                           Location loc) {
  if (!tp.has_tensor_type()) {
    emitError(loc) << "unsupported: " << what << " is not a tensor (sequences, maps and "
                   << "optionals are not supported)";
    return {};
  }
  const auto &tt = tp.tensor_type();
  Type et = onnxElemType(&ctx_, tt.elem_type());
  if (!et) {
    emitError(loc) << "unsupported: " << what << " has element type "
                   << onnxTypeName(tt.elem_type()) << ", which photon-import does not support";
    return {};
  }
  if (!tt.has_shape()) {
    emitError(loc) << what << " has no shape (unranked tensors are not supported; export "
                   << "with shapes, e.g. run onnx.shape_inference first)";
    return {};
  }
  SmallVector<int64_t> shape;
  for (const auto &d : tt.shape().dim()) {
    if (d.has_dim_value() && d.dim_value() < 0) {
      emitError(loc) << what << " declares dimension " << shape.size() << " = "
                     << d.dim_value() << "; ONNX dimensions are >= 0 (leave dim_value unset "
                     << "or use dim_param for a dynamic size)";
      return {};
    }
    if (d.has_dim_value()) shape.push_back(d.dim_value());
    else shape.push_back(ShapedType::kDynamic);
  }
  return RankedTensorType::get(shape, et);
}

static std::optional<wf::DType> blobType(int32_t dt) {
  switch (dt) {
  case onnx::TensorProto::FLOAT: return wf::DType::F32;
  case onnx::TensorProto::FLOAT16: return wf::DType::F16;
  case onnx::TensorProto::BFLOAT16: return wf::DType::BF16;
  case onnx::TensorProto::INT32: return wf::DType::I32;
  case onnx::TensorProto::INT64: return wf::DType::I64;
  case onnx::TensorProto::INT8: return wf::DType::I8;
  default: return std::nullopt;
  }
}

FailureOr<Value> GraphImporter::weight(OpBuilder &b, Location loc, const onnx::TensorProto &t,
                                       StringRef nameIn) {
  std::string nameStore = nameIn.str();
  StringRef name = nameStore;
  auto bt = blobType(t.data_type());
  if (!bt) {
    emitError(loc) << "unsupported: tensor '" << name << "' of type "
                   << onnxTypeName(t.data_type())
                   << " cannot be stored in the weights blob (f32, f16, bf16, i32, i64, i8)";
    return failure();
  }
  int64_t n = 0;
  std::string err;
  if (!OnnxModel::numElements(t, n, err)) {
    emitError(loc) << err;
    return failure();
  }
  std::vector<int64_t> shape(t.dims().begin(), t.dims().end());
  // One blob entry per tensor: a name seen with another tensor (e.g. the same Constant
  // output name in two different inlined functions) gets a numbered suffix.
  std::string unique = name.str();
  for (int k = 1;; ++k) {
    auto f = weightIndex_.find(unique);
    if (f == weightIndex_.end() || weights_[f->second].tensor == &t) break;
    unique = name.str() + "." + std::to_string(k);
  }
  nameStore = unique;
  name = nameStore;
  auto it = weightIndex_.find(name);
  if (it == weightIndex_.end()) {
    // Validate the data now (size, external file) so errors surface before writing.
    if (t.data_location() == onnx::TensorProto::EXTERNAL || !t.has_raw_data() ||
        t.raw_data().size() != (size_t)n * wf::dtypeBytes(*bt)) {
      TensorBytes tb;
      if (!model_.tensorBytes(t, tb, err)) {
        emitError(loc) << err;
        return failure();
      }
    }
    weightIndex_[name] = weights_.size();
    weights_.push_back({name.str(), &t, *bt, shape});
  }
  Type et = onnxElemType(&ctx_, t.data_type());
  auto ty = RankedTensorType::get(SmallVector<int64_t>(shape.begin(), shape.end()), et);
  return mlir::photon::WeightOp::create(b, loc, ty, name).getResult();
}

/// Whether the ONNX data type is a half-precision float (imported as f32 values).
static bool isHalf(int32_t dt) {
  return dt == onnx::TensorProto::FLOAT16 || dt == onnx::TensorProto::BFLOAT16;
}

/// f16 / bf16 raw little-endian data widened to f32 (exact).
static std::vector<float> widenHalf(int32_t dt, const char *data, size_t bytes) {
  std::vector<float> out(bytes / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    uint16_t h;
    std::memcpy(&h, data + 2 * i, 2);
    out[i] = dt == onnx::TensorProto::FLOAT16 ? wf::f16ToF32(h) : wf::bf16ToF32(h);
  }
  return out;
}

FailureOr<Value> GraphImporter::tensorValue(OpBuilder &b, Location loc, const onnx::TensorProto &t,
                                            StringRef name, bool isInitializer,
                                            KnownInts *known) {
  Type et = onnxElemType(&ctx_, t.data_type());
  if (!et) {
    emitError(loc) << "unsupported: tensor '" << name << "' has element type "
                   << onnxTypeName(t.data_type());
    return failure();
  }
  int64_t n = 0;
  std::string err;
  if (!OnnxModel::numElements(t, n, err)) {
    emitError(loc) << err;
    return failure();
  }
  bool isF = isFloatTy(et);
  // Tensors with no blob dtype (bool, u8, i16, f64, ...) stay constants whatever their size.
  bool asWeight = blobType(t.data_type()) &&
                  ((isInitializer && isF && n > 1) || n > opts_.maxInlineElements);
  if (asWeight) return weight(b, loc, t, name);
  TensorBytes tb;
  if (!model_.tensorBytes(t, tb, err)) {
    emitError(loc) << err;
    return failure();
  }
  SmallVector<int64_t> shape(t.dims().begin(), t.dims().end());
  auto ty = RankedTensorType::get(shape, et);
  DenseElementsAttr attr;
  if (et.isInteger(1)) {
    SmallVector<bool> v;
    for (size_t i = 0; i < tb.size(); ++i) v.push_back(tb.data()[i] != 0);
    attr = DenseElementsAttr::get(ty, v);
  } else if (isHalf(t.data_type())) {
    std::vector<float> v = widenHalf(t.data_type(), tb.data(), tb.size());
    attr = DenseElementsAttr::get(ty, llvm::ArrayRef<float>(v));
  } else {
    bool splat = false;
    if (!DenseElementsAttr::isValidRawBuffer(ty, tb.ref(), splat)) {
      emitError(loc) << "tensor '" << name << "' has a raw buffer that does not match its type";
      return failure();
    }
    attr = DenseElementsAttr::getFromRawBuffer(ty, tb.ref());
  }
  if (known && isIntTy(et) && n <= 64) {
    known->shape.assign(shape.begin(), shape.end());
    known->vals.clear();
    for (APInt v : attr.getValues<APInt>())
      known->vals.push_back(et.isInteger(1) ? (int64_t)v.getZExtValue() : v.getSExtValue());
  }
  return constTensor(b, loc, attr);
}

//===----------------------------------------------------------------------===//
// Nodes
//===----------------------------------------------------------------------===//

LogicalResult GraphImporter::lookup(Scope &scope, OpBuilder &b, const std::string &name,
                                    const onnx::NodeProto &node, Value &out) {
  auto it = scope.values.find(name);
  if (it != scope.values.end()) {
    out = it->second;
    return success();
  }
  auto p = scope.pending.find(name);
  if (p != scope.pending.end()) {
    // Materialise the initializer at the start of the function body.
    OpBuilder::InsertionGuard g(b);
    Block *blk = b.getInsertionBlock();
    b.setInsertionPointToStart(blk);
    KnownInts k;
    auto v = tensorValue(b, FileLineColLoc::get(&ctx_, model_.path(), 0, 0), *p->second, name,
                         /*isInitializer=*/true, &k);
    if (failed(v)) return failure();
    scope.values[name] = *v;
    if (!k.vals.empty() || k.shape.size() == 1) scope.known[name] = k;
    scope.pending.erase(p);
    out = *v;
    return success();
  }
  emitError(nodeLoc(node)) << "input '" << name << "' of node '" << node.name() << "' ("
                           << node.op_type() << ") is not defined in " << scope.where;
  return failure();
}

LogicalResult GraphImporter::checkDeclared(Scope &scope, OpBuilder &b, const std::string &name,
                                           Value &v, Location loc) {
  if (scope.fn) return success();
  auto it = declared.find(name);
  if (it == declared.end()) return success();
  const auto &tp = *it->second;
  if (!tp.has_tensor_type()) return success();
  const auto &tt = tp.tensor_type();
  auto ty = cast<RankedTensorType>(v.getType());
  if (tt.elem_type() != 0) {
    Type et = onnxElemType(&ctx_, tt.elem_type());
    if (et && et != ty.getElementType()) {
      std::string a;
      llvm::raw_string_ostream sa(a);
      sa << ty.getElementType();
      emitError(loc) << "dtype mismatch for '" << name << "': the model declares "
                     << onnxTypeName(tt.elem_type()) << ", the node produces " << a;
      return failure();
    }
  }
  if (!tt.has_shape()) return success();
  if (tt.shape().dim_size() != ty.getRank()) {
    emitError(loc) << "shape mismatch for '" << name << "': the model declares rank "
                   << tt.shape().dim_size() << ", the node produces rank " << ty.getRank();
    return failure();
  }
  SmallVector<int64_t> refined(ty.getShape());
  bool refine = false;
  for (int i = 0; i < ty.getRank(); ++i) {
    const auto &d = tt.shape().dim(i);
    if (!d.has_dim_value()) continue;
    if (d.dim_value() < 0) {
      emitError(loc) << "shape of '" << name << "': the model declares dimension " << i
                     << " = " << d.dim_value() << "; ONNX dimensions are >= 0 (leave "
                     << "dim_value unset or use dim_param for a dynamic size)";
      return failure();
    }
    if (ty.isDynamicDim(i)) {
      refined[i] = d.dim_value();
      refine = true;
    } else if (ty.getDimSize(i) != d.dim_value()) {
      emitError(loc) << "shape mismatch for '" << name << "': the model declares dimension "
                     << i << " = " << d.dim_value() << ", the node produces "
                     << ty.getDimSize(i);
      return failure();
    }
  }
  if (refine)
    v = tensor::CastOp::create(b, loc, RankedTensorType::get(refined, ty.getElementType()), v);
  return success();
}

LogicalResult GraphImporter::convertNodes(
    const google::protobuf::RepeatedPtrField<onnx::NodeProto> &nodes, Scope &scope,
    OpBuilder &b) {
  std::set<std::string> available;
  for (const auto &kv : scope.values) available.insert(kv.getKey().str());
  for (const auto &kv : scope.pending) available.insert(kv.getKey().str());
  std::vector<int> order;
  std::string err;
  if (!topoSort(nodes, available, order, err)) {
    emitError(FileLineColLoc::get(&ctx_, model_.path(), 0, 0)) << "in " << scope.where << ": "
                                                               << err;
    return failure();
  }
  for (int i : order) {
    if (failed(convertNode(nodes[i], scope, b))) return failure();
    if (!scope.fn && opts_.progress && ++nodesDone_ % 200 == 0)
      *opts_.progress << "photon-import: converted " << nodesDone_ << "/" << nodesTotal_
                      << " nodes\n";
  }
  return success();
}

LogicalResult GraphImporter::convertNode(const onnx::NodeProto &node, Scope &scope,
                                         OpBuilder &b) {
  Location loc = nodeLoc(node);
  // Attributes, resolving references to the calling node's attributes inside functions.
  llvm::StringMap<const onnx::AttributeProto *> attrs;
  for (const auto &a : node.attribute()) {
    if (!a.ref_attr_name().empty()) {
      auto it = scope.callerAttrs.find(a.ref_attr_name());
      if (it != scope.callerAttrs.end()) attrs[a.name()] = it->second;
      continue;
    }
    attrs[a.name()] = &a;
  }
  const std::string &domain = node.domain();
  if (!isDefaultDomain(domain)) {
    const onnx::FunctionProto *fn = model_.findFunction(domain, node.op_type());
    if (!fn && syntheticFunction) fn = syntheticFunction(domain, node.op_type());
    if (!fn) {
      emitError(loc) << "node '" << node.name() << "': unsupported: op " << domain << "."
                     << node.op_type() << " (no converter and no model-local function)";
      return failure();
    }
    if (raiseHook) {
      Scope tmp;
      (void)tmp;
      if (auto r = raiseHook(node, *fn, scope, b)) return *r;
    }
    // Inline with the node's resolved attributes.
    Scope *s = &scope;
    (void)s;
    auto saved = scope.callerAttrs;
    scope.callerAttrs = attrs; // read by inlineFunction
    LogicalResult r = inlineFunction(node, *fn, scope, b);
    scope.callerAttrs = saved;
    return r;
  }
  int64_t opset = scope.opset;
  const ConvertFn *fn = OpRegistry::get().lookup(node.op_type(), opset);
  if (!fn) {
    auto first = OpRegistry::get().firstVersion(node.op_type());
    if (first)
      emitError(loc) << "node '" << node.name() << "' (" << node.op_type()
                     << "): unsupported: the converter starts at opset " << *first
                     << ", the model uses opset " << opset;
    else
      emitError(loc) << "node '" << node.name() << "': unsupported: op " << node.op_type()
                     << " (opset " << opset << ") has no converter";
    return failure();
  }
  NodeContext ctx(*this, b, loc, node, opset, attrs);
  for (const auto &in : node.input()) {
    if (in.empty()) {
      ctx.ins.push_back(Value());
      ctx.known.push_back(nullptr);
      continue;
    }
    Value v;
    if (failed(lookup(scope, b, in, node, v))) return failure();
    if (!isa<RankedTensorType>(v.getType())) {
      emitError(loc) << "input '" << in << "' is not a ranked tensor";
      return failure();
    }
    ctx.ins.push_back(v);
    auto k = scope.known.find(in);
    ctx.known.push_back(k == scope.known.end() ? nullptr : &k->second);
  }
  if (failed((*fn)(ctx))) return failure();
  for (int i = 0; i < node.output_size(); ++i) {
    const std::string &name = node.output(i);
    if (name.empty()) continue;
    if (i >= (int)ctx.outs.size() || !ctx.outs[i]) {
      if (i == 0 || node.op_type() != "Dropout") {
        emitError(loc) << "node '" << node.name() << "' (" << node.op_type()
                       << "): unsupported: output " << i << " ('" << name
                       << "') is not produced by the converter";
        return failure();
      }
      continue;
    }
    Value v = ctx.outs[i];
    if (failed(checkDeclared(scope, b, name, v, loc))) return failure();
    scope.values[name] = v;
    if (i < (int)ctx.outKnown.size() && ctx.outKnown[i]) scope.known[name] = *ctx.outKnown[i];
    else scope.known.erase(name);
  }
  return success();
}

LogicalResult GraphImporter::inlineFunction(const onnx::NodeProto &node,
                                            const onnx::FunctionProto &fn, Scope &caller,
                                            OpBuilder &b) {
  Location loc = nodeLoc(node);
  if (++inlineDepth_ > 64) {
    --inlineDepth_;
    emitError(loc) << "function " << fn.domain() << "." << fn.name()
                   << " calls itself recursively (more than 64 nested calls)";
    return failure();
  }
  Scope s;
  s.fn = &fn;
  s.callerAttrs = caller.callerAttrs;
  s.where = "function " + fn.domain() + "." + fn.name();
  s.opset = model_.opsetOf("", &fn).value_or(caller.opset);
  if (s.opset > mlir::photon::kMaxOpset) {
    --inlineDepth_;
    emitError(loc) << "function " << fn.domain() << "." << fn.name() << " uses opset "
                   << s.opset << ", newer than the supported " << mlir::photon::kMaxOpset;
    return failure();
  }
  for (int i = 0; i < fn.input_size(); ++i) {
    if (i >= node.input_size() || node.input(i).empty()) continue;
    Value v;
    if (failed(lookup(caller, b, node.input(i), node, v))) {
      --inlineDepth_;
      return failure();
    }
    s.values[fn.input(i)] = v;
    auto k = caller.known.find(node.input(i));
    if (k != caller.known.end()) s.known[fn.input(i)] = k->second;
  }
  LogicalResult r = convertNodes(fn.node(), s, b);
  --inlineDepth_;
  if (failed(r)) return failure();
  for (int i = 0; i < node.output_size() && i < fn.output_size(); ++i) {
    if (node.output(i).empty()) continue;
    auto it = s.values.find(fn.output(i));
    if (it == s.values.end()) {
      emitError(loc) << "function " << fn.domain() << "." << fn.name() << " does not produce "
                     << "its output '" << fn.output(i) << "'";
      return failure();
    }
    Value v = it->second;
    if (failed(checkDeclared(caller, b, node.output(i), v, loc))) return failure();
    caller.values[node.output(i)] = v;
    auto k = s.known.find(fn.output(i));
    if (k != s.known.end()) caller.known[node.output(i)] = k->second;
  }
  return success();
}

//===----------------------------------------------------------------------===//
// Unsupported-op scan (before any conversion)
//===----------------------------------------------------------------------===//

void GraphImporter::scanNodes(const google::protobuf::RepeatedPtrField<onnx::NodeProto> &nodes,
                              const onnx::FunctionProto *fn, const std::string &where,
                              std::vector<mlir::photon::UnsupportedOp> &out,
                              std::set<const onnx::FunctionProto *> &seen) {
  for (const auto &node : nodes) {
    const std::string &domain = node.domain();
    int64_t opset = model_.opsetOf(domain, fn).value_or(0);
    auto add = [&](const std::string &reason) {
      out.push_back({node.op_type(), domain, opset, node.name(), where, reason});
    };
    if (isDefaultDomain(domain)) {
      if (opset == 0) {
        add("the model imports no default-domain opset");
        continue;
      }
      if (!OpRegistry::get().lookup(node.op_type(), opset)) {
        auto first = OpRegistry::get().firstVersion(node.op_type());
        add(first ? "the converter starts at opset " + std::to_string(*first)
                  : std::string("no converter"));
      }
      continue;
    }
    const onnx::FunctionProto *callee = model_.findFunction(domain, node.op_type());
    if (!callee) {
      add("no converter for domain '" + domain + "' and no model-local function defines it");
      continue;
    }
    if (raisesFunction && raisesFunction(*callee)) continue;
    if (seen.insert(callee).second)
      scanNodes(callee->node(), callee, "function " + domain + "." + node.op_type(), out, seen);
  }
}

void GraphImporter::scanUnsupported(std::vector<mlir::photon::UnsupportedOp> &out) {
  std::set<const onnx::FunctionProto *> seen;
  scanNodes(model_.proto().graph().node(), nullptr, "graph", out, seen);
}

//===----------------------------------------------------------------------===//
// The module
//===----------------------------------------------------------------------===//

static std::string sanitize(StringRef s) {
  std::string out;
  for (char c : s) out += (isalnum((unsigned char)c) || c == '_') ? c : '_';
  if (out.empty() || isdigit((unsigned char)out[0])) out = "g_" + out;
  return out;
}

OwningOpRef<ModuleOp> GraphImporter::run() {
  const auto &graph = model_.proto().graph();
  Location fileLoc = FileLineColLoc::get(&ctx_, model_.path(), 0, 0);

  // 1. Every unsupported op, in one diagnostic, before any conversion.
  std::vector<mlir::photon::UnsupportedOp> unsupported;
  scanUnsupported(unsupported);
  if (!unsupported.empty()) {
    auto diag = emitError(fileLoc);
    diag << unsupported.size() << " node(s) of '" << model_.path()
         << "' cannot be imported (unsupported ops):";
    for (const auto &u : unsupported)
      diag << "\n  " << (u.domain.empty() ? std::string("ai.onnx") : u.domain) << "."
           << u.opType << " (opset " << u.opset << ") node '" << u.nodeName << "' in "
           << u.where << ": " << u.reason;
    return nullptr;
  }
  if (prepareHook && failed(prepareHook())) return nullptr;
  if (opts_.checkOnly) return ModuleOp::create(fileLoc);

  const auto &nodes = nodesOverride ? *nodesOverride : graph.node();
  nodesTotal_ = nodes.size();
  OpBuilder b(&ctx_);
  OwningOpRef<ModuleOp> module = ModuleOp::create(fileLoc);
  module_ = *module;
  b.setInsertionPointToEnd(module->getBody());

  Scope scope;
  scope.opset = model_.opsetOf("").value_or(0);
  for (const auto &vi : graph.value_info()) declared[vi.name()] = &vi.type();
  for (const auto &vi : graph.output()) declared[vi.name()] = &vi.type();

  std::set<std::string> initNames;
  for (const auto &t : graph.initializer()) {
    if (t.name().empty()) {
      emitError(fileLoc) << "an initializer has no name";
      return nullptr;
    }
    initNames.insert(t.name());
    scope.pending[t.name()] = &t;
  }
  for (const auto &[name, t] : extraInitializers) {
    initNames.insert(name);
    scope.pending[name] = &t;
  }
  SmallVector<Type> argTypes;
  SmallVector<std::string> argNames;
  for (const auto &in : graph.input()) {
    if (initNames.count(in.name()) || ignoredGraphIO.count(in.name())) continue;
    auto ty = tensorType(in.type(), "graph input '" + in.name() + "'", fileLoc);
    if (!ty) return nullptr;
    if (tokensAsI32 && in.name() == tokensName && ty.getElementType().isInteger(64))
      ty = RankedTensorType::get(ty.getShape(), b.getI32Type());
    argTypes.push_back(ty);
    argNames.push_back(in.name());
  }
  std::string fname = sanitize(graph.name().empty() ? "main" : graph.name());
  auto func = func::FuncOp::create(b, fileLoc, fname, b.getFunctionType(argTypes, {}));
  Block *entry = func.addEntryBlock();
  b.setInsertionPointToStart(entry);
  for (size_t i = 0; i < argNames.size(); ++i) {
    scope.values[argNames[i]] = entry->getArgument(i);
    if (tokensAsI32 && argNames[i] == tokensName &&
        cast<RankedTensorType>(argTypes[i]).getElementType().isInteger(32)) {
      tokensI32 = entry->getArgument(i);
      tokensI64 = castTensor(b, fileLoc, tokensI32, b.getI64Type());
      scope.values[argNames[i]] = tokensI64;
    }
    func.setArgAttr(i, "onnx.name", b.getStringAttr(argNames[i]));
  }
  if (failed(convertNodes(nodes, scope, b))) return nullptr;

  SmallVector<Value> results;
  SmallVector<std::string> resultNames;
  for (const auto &out : graph.output()) {
    if (ignoredGraphIO.count(out.name())) continue;
    resultNames.push_back(out.name());
    auto it = scope.values.find(out.name());
    if (it == scope.values.end()) {
      // An output can be a graph input or an initializer directly.
      Value v;
      onnx::NodeProto dummy;
      dummy.set_name("<graph outputs>");
      dummy.set_op_type("Output");
      if (failed(lookup(scope, b, out.name(), dummy, v))) return nullptr;
      results.push_back(v);
      continue;
    }
    results.push_back(it->second);
  }
  func::ReturnOp::create(b, fileLoc, results);
  func.setType(b.getFunctionType(argTypes, ValueRange(results).getTypes()));
  for (size_t i = 0; i < resultNames.size(); ++i)
    func.setResultAttr(i, "onnx.name", b.getStringAttr(resultNames[i]));
  if (finalizeHook && failed(finalizeHook(*module, func))) return nullptr;
  // Drop what the shape arithmetic left unused (constants, tensor.dim, ...).
  module->walk([](func::FuncOp f) {
    for (Block &blk : f.getBody()) {
      bool changed = true;
      while (changed) {
        changed = false;
        for (Operation &op : llvm::make_early_inc_range(llvm::reverse(blk)))
          if (isOpTriviallyDead(&op)) {
            op.erase();
            changed = true;
          }
      }
    }
  });
  if (failed(verify(*module))) return nullptr;
  return module;
}

void GraphImporter::dropUnusedWeights(ModuleOp module) {
  llvm::StringSet<> used;
  module.walk([&](mlir::photon::WeightOp w) { used.insert(w.getName()); });
  std::vector<WeightDecl> kept;
  for (auto &d : weights_)
    if (used.contains(d.name)) kept.push_back(std::move(d));
  weights_ = std::move(kept);
  weightIndex_.clear();
  for (size_t i = 0; i < weights_.size(); ++i) weightIndex_[weights_[i].name] = i;
}

bool GraphImporter::writeWeights() {
  // f16 / bf16 initializers (a half-precision export) are f32 in the IR. A 2-D one used only
  // as matmul weights keeps its format in the blob (the lowering widens it inside the matmul
  // kernels, as for photon-compile --weights f16 / bf16); any other is widened to f32 here.
  llvm::StringSet<> keepHalf;
  if (module_) keepHalf = mlir::photon::matmulOnlyWeightNames(module_);
  auto widened = [&](const WeightDecl &d) {
    if (d.dtype != wf::DType::F16 && d.dtype != wf::DType::BF16) return false;
    return !keepHalf.contains(d.name);
  };
  wf::Writer w;
  for (const auto &d : weights_) w.declare(d.name, widened(d) ? wf::DType::F32 : d.dtype, d.shape);
  std::string err;
  Location loc = FileLineColLoc::get(&ctx_, opts_.weightsOut, 0, 0);
  if (!w.open(opts_.weightsOut, err)) {
    emitError(loc) << err;
    return false;
  }
  uint64_t total = 0, lastReport = 0;
  for (const auto &d : weights_) {
    TensorBytes tb;
    if (!model_.tensorBytes(*d.tensor, tb, err)) {
      emitError(loc) << err;
      w.close(err);
      return false;
    }
    if (widened(d)) {
      std::vector<float> v = widenHalf(d.tensor->data_type(), tb.data(), tb.size());
      w.writeData(v.data(), v.size() * sizeof(float));
    } else {
      w.writeData(tb.data(), tb.size());
    }
    w.finishTensor();
    total += tb.size();
    if (opts_.progress && total - lastReport >= (256u << 20)) {
      lastReport = total;
      *opts_.progress << "photon-import: wrote "
                      << llvm::format("%.2f", total / double(1ull << 30)) << " GiB of weights\n";
    }
  }
  if (!w.close(err)) {
    emitError(loc) << err;
    return false;
  }
  if (opts_.progress)
    *opts_.progress << "photon-import: wrote " << weights_.size() << " weights ("
                    << w.bytesWritten() << " bytes) to " << opts_.weightsOut << "\n";
  return true;
}

} // namespace import
} // namespace photon
