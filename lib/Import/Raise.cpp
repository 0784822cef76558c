//===- Raise.cpp - photon-convention functions -> photon ops -------------===//
//
// Calls of the photon ONNX convention's local functions (docs/onnx-convention.md,
// "Signatures") become photon ops, and every EncoderStack / LatentDecoder / TokenDecoder
// call becomes a call of a private stack function built from the call's signature and
// attributes (not from the ONNX body), exactly as docs/ir-contract.md "An imported module"
// describes. Every signature is checked first (input count, weight shapes against the
// attributes and the model's photon.config). Functions of other domains are inlined.
//
//===----------------------------------------------------------------------===//

#include "InlineFunctions.h"
#include "RaiseImpl.h"

namespace photon {
namespace import {
namespace raise {

std::optional<LogicalResult> Raiser::raise(const onnx::NodeProto &n, const onnx::FunctionProto &fn,
                                           Scope &scope, OpBuilder &b) {
  if (!handles(fn)) return std::nullopt;
  node = &n;
  loc = gi.nodeLoc(n);
  op = baseName(fn.name());
  module = b.getInsertionBlock()->getParentOp()->getParentOfType<ModuleOp>();
  MLIRContext *c = b.getContext();
  if (!configError.empty()) {
    emitError(loc) << configError;
    return failure();
  }
  SmallVector<Value> ins;
  for (const auto &name : n.input()) {
    Value v;
    if (name.empty()) return fail("inputs must not be omitted");
    if (failed(gi.lookup(scope, b, name, n, v))) return failure();
    ins.push_back(v);
  }
  auto rt = [&](int i) { return cast<RankedTensorType>(ins[i].getType()); };
  auto need = [&](size_t k) -> LogicalResult {
    if (ins.size() != k)
      return fail("expected " + Twine(k) + " inputs, got " + Twine(ins.size()));
    return success();
  };
  auto act3 = [&](int i, StringRef what) -> LogicalResult {
    if (rt(i).getRank() != 3 || !isa<Float32Type>(rt(i).getElementType()))
      return fail(what + " must be an f32 tensor of rank 3 [B, M, D], got " +
                  shapeStr(rt(i).getShape()));
    return success();
  };
  Value result;
  int64_t D = cfg.width;

  if (op == "TokenEmbedding") {
    if (failed(need(2))) return failure();
    if (!isIntTy(rt(0).getElementType())) return fail("tokens must be integers");
    auto w = weightOf(ins[1], 1, "table", {cfg.vocab > 0 ? cfg.vocab : kDyn, kDyn});
    if (failed(w)) return failure();
    Value ids = tokensI32(b, ins[0]);
    SmallVector<int64_t> s(rt(0).getShape());
    s.push_back(w->type.getDimSize(1));
    result = ops::EmbeddingOp::create(b, loc, ins[1], ids);
  } else if (op == "PositionEmbedding") {
    // Learned absolute positions (recognized GPT-2-style models): x + table[m].
    if (failed(need(2)) || failed(act3(0, "x"))) return failure();
    auto w = weightOf(ins[1], 1, "table", {kDyn, rt(0).getDimSize(2)});
    if (failed(w)) return failure();
    result = ops::PositionEmbeddingOp::create(b, loc, ins[0], ins[1], Value());
  } else if (op == "Chunk") {
    if (failed(need(1)) || failed(needAttr("size")) || failed(act3(0, "x"))) return failure();
    int64_t size = attrI("size"), M = rt(0).getDimSize(1);
    if (size < 1) return fail("size must be >= 1");
    if (!ShapedType::isDynamic(M) && M % size)
      return fail("size (" + Twine(size) + ") does not divide the stream length (" + Twine(M) + ")");
    result = ops::ChunkOp::create(b, loc, ins[0], size);
  } else if (op == "ChunkCompress") {
    if (failed(need(4)) || failed(needAttr("size")) || failed(needAttr("eps")) ||
        failed(act3(0, "x")))
      return failure();
    int64_t size = attrI("size"), M = rt(0).getDimSize(1), d = rt(0).getDimSize(2);
    if (size < 1) return fail("size must be >= 1");
    if (D < 0) D = d;
    if (!ShapedType::isDynamic(M) && M % size)
      return fail("size (" + Twine(size) + ") does not divide the stream length (" + Twine(M) + ")");
    auto nw = weightOf(ins[1], 1, "norm", {size * d});
    if (failed(nw)) return failure();
    auto ww = weightOf(ins[2], 2, "w", {D, size * d});
    if (failed(ww)) return failure();
    auto bw = weightOf(ins[3], 3, "b", {D});
    if (failed(bw)) return failure();
    result = ops::ChunkCompressOp::create(
        b, loc, f32({rt(0).getDimSize(0), ShapedType::isDynamic(M) ? kDyn : M / size, D}, c),
        ins[0], ins[1], ins[2], ins[3], b.getI64IntegerAttr(size),
        b.getF32FloatAttr(attrF("eps", 1e-5f)));
  } else if (op == "Shift") {
    if (failed(need(2)) || failed(act3(0, "x"))) return failure();
    auto sw = weightOf(ins[1], 1, "start", {rt(0).getDimSize(2)});
    if (failed(sw)) return failure();
    result = ops::ShiftOp::create(b, loc, ins[0], ins[1]);
  } else if (op == "LMHead") {
    if (failed(need(2))) return failure();
    int64_t d = rt(0).getShape().back();
    auto w = weightOf(ins[1], 1, "w", {cfg.vocab > 0 ? cfg.vocab : kDyn, d});
    if (failed(w)) return failure();
    result = ops::LMHeadOp::create(b, loc, ins[0], ins[1]);
  } else if (op == "EncoderStack") {
    if (ins.empty() || failed(act3(0, "x"))) return failure();
    int64_t d = rt(0).getDimSize(2);
    if (ShapedType::isDynamic(d)) d = D;
    if (D > 0 && d != D) return fail("x has width " + Twine(d) + ", photon.config width = " + Twine(D));
    auto s = stackSpec(d);
    if (failed(s)) return failure();
    auto w = stackWeights(ins, 1, *s);
    if (failed(w)) return failure();
    ++stackCount;
    std::string name = stackName(*w, "enc" + std::to_string(stackCount));
    int64_t level = attrI("level", 1); // recognized structures say it; exports name it
    if (attrI("level") < 1 && name.size() > 3 && StringRef(name).starts_with("enc"))
      StringRef(name).drop_front(3).getAsInteger(10, level);
    auto f = buildStack(b, name, "encoder", level, *s, *w, 0, 0);
    if (failed(f)) return failure();
    result = callStack(b, *f, ins[0]);
  } else if (op == "LatentDecoder" || op == "TokenDecoder") {
    bool tok = op == "TokenDecoder";
    for (StringRef a : {"chunk", "prefix"})
      if (failed(needAttr(a))) return failure();
    if (ins.empty() || failed(act3(0, "prev"))) return failure();
    int64_t d = rt(0).getDimSize(2);
    if (ShapedType::isDynamic(d)) d = D;
    if (D > 0 && d != D) return fail("prev has width " + Twine(d) + ", photon.config width = " + Twine(D));
    int64_t chunk = attrI("chunk"), R = attrI("prefix");
    if (chunk < 1 || R < 1) return fail("chunk and prefix must be >= 1");
    if (cfg.prefix > 0 && R != cfg.prefix)
      return fail("prefix = " + Twine(R) + " but photon.config says " + Twine(cfg.prefix));
    auto s = stackSpec(d);
    if (failed(s)) return failure();
    int first = tok ? 5 : 3;
    if ((int)ins.size() < first) return fail("too few inputs");
    int convAt = tok ? 3 : 1;
    auto cw = weightOf(ins[convAt], convAt, "conv_w", {R * d, d});
    if (failed(cw)) return failure();
    auto cb = weightOf(ins[convAt + 1], convAt + 1, "conv_b", {R * d});
    if (failed(cb)) return failure();
    FailureOr<WeightRef> emb;
    if (tok) {
      if (!isIntTy(rt(1).getElementType())) return fail("tokens must be integers");
      emb = weightOf(ins[2], 2, "emb", {cfg.vocab > 0 ? cfg.vocab : kDyn, d});
      if (failed(emb)) return failure();
    }
    auto w = stackWeights(ins, first, *s);
    if (failed(w)) return failure();
    std::string name = stackName(*w, tok ? "dec1" : "dec");
    int64_t level = attrI("level", tok ? 1 : 2);
    if (attrI("level") < 1 && name.size() > 3 && StringRef(name).starts_with("dec"))
      StringRef(name).drop_front(3).getAsInteger(10, level);
    auto f = buildStack(b, name, "decoder", level, *s, *w, R, chunk);
    if (failed(f)) return failure();
    // Converter: [B, M, D] -> [B, M, R, D].
    Value prev = ins[0];
    Value B = tensor::DimOp::create(b, loc, prev, 0), M = tensor::DimOp::create(b, loc, prev, 1);
    Value u = ops::ExpandOp::create(
        b, loc, f32({rt(0).getDimSize(0), rt(0).getDimSize(1), R, d}, c), prev, ins[convAt],
        ins[convAt + 1], b.getI64IntegerAttr(R));
    SmallVector<OpFoldResult> bmcd = {B, M, b.getIndexAttr(chunk), b.getIndexAttr(d)};
    Value outs;
    if (!tok) {
      // Free-running rollout: window = u; y_j = last output of the stack over the window.
      Value window = collapse(b, u, {{0, 1}, {2}, {3}});
      Value Nv = tensor::DimOp::create(b, loc, window, 0);
      SmallVector<Value> ys;
      for (int64_t j = 1; j <= chunk; ++j) {
        Value y = callStack(b, *f, window);
        int64_t len = R + j - 1;
        SmallVector<OpFoldResult> off = {b.getIndexAttr(0), b.getIndexAttr(len - 1), b.getIndexAttr(0)};
        SmallVector<OpFoldResult> sz = {Nv, b.getIndexAttr(1), b.getIndexAttr(d)};
        SmallVector<OpFoldResult> st(3, b.getIndexAttr(1));
        Value last = tensor::ExtractSliceOp::create(b, loc, f32({kDyn, 1, d}, c), y, off, sz, st);
        ys.push_back(last);
        if (j < chunk) window = tensor::ConcatOp::create(b, loc, 1, ValueRange{window, last});
      }
      outs = ys.size() == 1 ? ys[0] : tensor::ConcatOp::create(b, loc, 1, ys).getResult();
    } else {
      // Windows [u_m (R); EmbDec(first chunk-1 tokens of chunk m)].
      Value ids = tokensI32(b, ins[1]);
      SmallVector<int64_t> es(rt(1).getShape());
      es.push_back(d);
      Value e = ops::EmbeddingOp::create(b, loc, ins[2], ids);
      if (cast<RankedTensorType>(e.getType()).getRank() != 3)
        return fail("tokens must be rank 2 [B, T]");
      Value e4 = expandShape(b, toDyn3(b, e), {kDyn, kDyn, chunk, d}, {{0}, {1, 2}, {3}}, bmcd);
      Value win = u;
      if (chunk > 1) {
        SmallVector<OpFoldResult> off(4, b.getIndexAttr(0));
        SmallVector<OpFoldResult> sz = {B, M, b.getIndexAttr(chunk - 1), b.getIndexAttr(d)};
        SmallVector<OpFoldResult> st(4, b.getIndexAttr(1));
        Value head = tensor::ExtractSliceOp::create(b, loc, f32({kDyn, kDyn, chunk - 1, d}, c), e4,
                                                    off, sz, st);
        Value uu = tensor::CastOp::create(b, loc, f32({kDyn, kDyn, R, d}, c), u);
        win = tensor::ConcatOp::create(b, loc, 2, ValueRange{uu, head});
      }
      Value w3 = collapse(b, win, {{0, 1}, {2}, {3}});
      Value y = callStack(b, *f, w3);
      Value Nv = tensor::DimOp::create(b, loc, w3, 0);
      SmallVector<OpFoldResult> off = {b.getIndexAttr(0), b.getIndexAttr(R - 1), b.getIndexAttr(0)};
      SmallVector<OpFoldResult> sz = {Nv, b.getIndexAttr(chunk), b.getIndexAttr(d)};
      SmallVector<OpFoldResult> st(3, b.getIndexAttr(1));
      outs = tensor::ExtractSliceOp::create(b, loc, f32({kDyn, chunk, d}, c), y, off, sz, st);
    }
    // [B*M, chunk, D] -> [B, M*chunk, D]
    Value o4 = expandShape(b, outs, {kDyn, kDyn, chunk, d}, {{0, 1}, {2}, {3}}, bmcd);
    result = collapse(b, o4, {{0}, {1, 2}, {3}});
  } else {
    return std::nullopt;
  }
  if (n.output_size() < 1 || n.output(0).empty()) return fail("the call has no output");
  Value r = result;
  if (failed(gi.checkDeclaredPublic(scope, b, n.output(0), r, loc))) return failure();
  scope.values[n.output(0)] = r;
  return success();
}

LogicalResult Raiser::finalize(ModuleOp module, func::FuncOp forward) {
  if (failed(checkFunctionBodies())) return failure();
  MLIRContext *c = module.getContext();
  forward.setSymName("forward");
  auto *dialect = ops::getPhotonDialect(c);
  dialect->getStageAttrHelper().setAttr(forward, StringAttr::get(c, "forward"));
  // docs/ir-contract.md: @forward(tokens) -> logits. The convention's extra outputs (x1,
  // xh1: encoder and decoder bottleneck latents, for the reference's tests) are dropped;
  // --emit=upstream keeps every graph output.
  if (!stacks.empty() && forward.getNumResults() > 1) {
    auto ret = cast<func::ReturnOp>(forward.getBody().front().getTerminator());
    Value logits = ret.getOperand(0);
    OpBuilder b(ret);
    func::ReturnOp::create(b, ret.getLoc(), logits);
    ret.erase();
    SmallVector<unsigned> drop;
    for (unsigned i = 1; i < forward.getNumResults(); ++i) drop.push_back(i);
    llvm::BitVector bv(forward.getNumResults());
    for (unsigned i : drop) bv.set(i);
    if (failed(forward.eraseResults(bv))) return failure();
  }
  if (stacks.empty()) {
    emitRemark(module.getLoc()) << "'" << gi.model().path() << "' declares photon.family = "
                                << cfg.family << " but calls no photon stack function: "
                                << "imported to upstream ops";
  }
  if (cfg.vocab < 1 || cfg.width < 1)
    return emitError(module.getLoc())
           << kConfigMetadataKey << " must give vocab and width (needed for "
           << PhotonDialect::HierarchyAttrHelper::getNameStr() << ")";
  auto h = ops::HierarchyAttr::getChecked(
      [&] {
        return emitError(module.getLoc())
               << "cannot build the #photon.hierarchy of " << kConfigMetadataKey << ": ";
      },
      c, StringRef(cfg.family), cfg.levels, ArrayRef<int64_t>(cfg.chunkSizes), cfg.prefix,
      cfg.width, cfg.vocab);
  if (!h) return failure();
  dialect->getHierarchyAttrHelper().setAttr(module, h);
  return success();
}

void Raiser::emitCalls(const std::vector<PlainCall> &calls) {
  // The synthetic calls, converted by the same raising as the function export.
  std::string prev;
  int k = 0;
  for (auto &c : calls) {
    onnx::NodeProto *n = plainNodes.Add();
    n->set_domain("photon");
    n->set_op_type(c.op);
    n->set_name("plain:" + c.op + (c.stack.empty() ? "" : "(" + c.stack + ")"));
    for (auto &i : c.inputs) n->add_input(i.empty() ? prev : i);
    prev = c.output.empty() ? "plain_" + std::to_string(k) + "_" + c.op : c.output;
    ++k;
    n->add_output(prev);
    for (auto &[name, v] : c.intAttrs) {
      auto *a = n->add_attribute();
      a->set_name(name);
      a->set_type(onnx::AttributeProto::INT);
      a->set_i(v);
    }
    for (auto &[name, v] : c.floatAttrs) {
      auto *a = n->add_attribute();
      a->set_name(name);
      a->set_type(onnx::AttributeProto::FLOAT);
      a->set_f(v);
    }
    auto &fn = plainFns[c.op];
    fn.set_domain("photon");
    fn.set_name(c.op);
  }
  gi.nodesOverride = &plainNodes;
  gi.syntheticFunction = [this](const std::string &d, const std::string &n)
      -> const onnx::FunctionProto * {
    if (d != "photon") return nullptr;
    auto it = plainFns.find(n);
    return it == plainFns.end() ? nullptr : &it->second;
  };
}

LogicalResult Raiser::prepareRecognized() {
  const onnx::ModelProto &mp = gi.model().proto();
  llvm::raw_ostream *ex = gi.options().explain;
  // A function-form export (torch.onnx's export_modules_as_functions, any domain) is
  // recognized from its bodies: the graph with every local function call expanded.
  const onnx::GraphProto *g = &mp.graph();
  if (!gi.options().recognizeGraph) {
    unrecognized = "the graph recognizer is off (--structure=patterns)";
    if (ex)
      *ex << "photon-import: '" << gi.model().path() << "': " << unrecognized
          << ": imported to upstream ops for the rewrite patterns\n";
    return success();
  }
  if (callsLocalFunctions(gi.model())) {
    std::string err;
    if (!inlineLocalFunctions(gi.model(), inlined, err)) {
      unrecognized = "the function bodies cannot be expanded: " + err;
      if (ex) *ex << "photon-import: '" << gi.model().path() << "': " << unrecognized << "\n";
      return success();
    }
    g = &inlined;
    if (ex)
      *ex << "photon-import: '" << gi.model().path() << "': function-form export: "
          << mp.graph().node_size() << " graph node(s) with their model-local functions "
          << "expanded into " << inlined.node_size() << " node(s), named <call>/<node>\n";
  }
  if (!recognizeDecoderOnly(*g, mp.graph(), recognized, unrecognized)) {
    if (ex)
      *ex << "photon-import: '" << gi.model().path() << "': no photon.* metadata and no "
          << "PHOTON, Block or decoder-only structure recognized: " << unrecognized
          << "\n  imported to upstream ops; photon-compile makes a forward-only artifact\n";
    recognized = RecognizedModel();
    return success();
  }
  RecognizedModel &r = recognized;
  if (ex) {
    *ex << "photon-import: '" << gi.model().path() << "': recognized from the graph (no "
        << "photon.* metadata): " << r.family;
    if (r.levels == 0) *ex << " (decoder-only), " << r.layers << " layers";
    *ex << ", width " << r.width << ", vocab " << r.vocab << ", " << r.heads
        << " heads, " << r.kvHeads << " kv heads, head_dim " << r.headDim
        << (r.levels == 0 ? ", ffn " + std::to_string(r.ffn) : std::string())
        << (r.gpt2 ? ", LayerNorm eps " : ", RMSNorm eps ") << r.normEps;
    if (r.gpt2)
      *ex << ", GELU (" << r.gelu << "), learned positions '" << r.positionTable << "' ("
          << r.positions << "), biases";
    else
      *ex << ", RoPE " << r.ropeLayout << " base " << r.ropeTheta;
    *ex << "; tokens '" << r.tokensInput << "', logits '" << r.logitsOutput << "'\n";
    for (const DerivedWeight &d : r.derived)
      *ex << "  weight '" << d.name << "' = '" << d.source << "'"
          << (d.transpose ? " transposed to [out, in]" : "")
          << (d.interleavedHeadDim ? " with q/k rows in rotate-half order" : "")
          << (d.flatten ? " as a 1-D vector" : "")
          << (d.rowCount ? " rows [" + std::to_string(d.rowBegin) + ", " +
                               std::to_string(d.rowBegin + d.rowCount) + ")"
                         : std::string())
          << "\n";
    for (const std::string &e : r.explain) *ex << "  " << e << "\n";
  }
  cfg.family = r.family;
  cfg.vocab = r.vocab;
  cfg.width = r.width;
  cfg.nHeads = r.heads;
  cfg.nKvHeads = r.kvHeads;
  cfg.headDim = r.headDim;
  cfg.ffn = r.ffn;
  cfg.ropeTheta = r.ropeTheta;
  cfg.normEps = r.normEps;
  cfg.levels = r.levels;
  cfg.chunkSizes = r.chunkSizes;
  cfg.prefix = r.prefix;
  cfg.level1Shift = r.level1Shift;
  // Weights in the raising's layout ([out, in]; rotate-half RoPE rows).
  for (const DerivedWeight &d : r.derived) {
    const onnx::TensorProto *src = nullptr;
    for (const auto &t : mp.graph().initializer())
      if (t.name() == d.source) src = &t;
    TensorBytes tb;
    std::string err;
    if (src && d.flatten && gi.model().tensorBytes(*src, tb, err)) {
      onnx::TensorProto &t = gi.extraInitializers[d.name];
      t.set_name(d.name);
      t.set_data_type(onnx::TensorProto::FLOAT);
      t.add_dims(static_cast<int64_t>(tb.size() / 4));
      t.set_raw_data(std::string(reinterpret_cast<const char *>(tb.data()), tb.size()));
      continue;
    }
    if (src && d.rowCount > 0 && src->dims_size() == 1 && gi.model().tensorBytes(*src, tb, err)) {
      // Elements [rowBegin, +rowCount) of a fused projection's bias.
      if (d.rowBegin < 0 || d.rowBegin + d.rowCount > src->dims(0) ||
          (int64_t)tb.size() != 4 * src->dims(0))
        return emitError(FileLineColLoc::get(&gi.context(), gi.model().path(), 0, 0))
               << "bias '" << d.source << "' has no elements [" << d.rowBegin << ", "
               << d.rowBegin + d.rowCount << ")", failure();
      onnx::TensorProto &t = gi.extraInitializers[d.name];
      t.set_name(d.name);
      t.set_data_type(onnx::TensorProto::FLOAT);
      t.add_dims(d.rowCount);
      t.set_raw_data(std::string(reinterpret_cast<const char *>(tb.data()) + 4 * d.rowBegin,
                                 4 * d.rowCount));
      continue;
    }
    if (!src || !gi.model().tensorBytes(*src, tb, err) || src->dims_size() != 2)
      return emitError(FileLineColLoc::get(&gi.context(), gi.model().path(), 0, 0))
             << "cannot read weight '" << d.source << "': " << err, failure();
    int64_t R = src->dims(0), C = src->dims(1);
    int64_t rows = d.transpose ? C : R, cols = d.transpose ? R : C;
    int64_t rowBase = 0;
    if (d.rowCount > 0) {
      // Rows [rowBegin, +rowCount) of the [out, in] weight (one part of a fused QKV).
      if (d.rowBegin < 0 || d.rowBegin + d.rowCount > rows)
        return emitError(FileLineColLoc::get(&gi.context(), gi.model().path(), 0, 0))
               << "weight '" << d.source << "' has no rows [" << d.rowBegin << ", "
               << d.rowBegin + d.rowCount << ")", failure();
      rowBase = d.rowBegin;
      rows = d.rowCount;
    }
    const float *in = reinterpret_cast<const float *>(tb.data());
    std::string raw(static_cast<size_t>(rows * cols) * 4, '\0');
    float *o = reinterpret_cast<float *>(raw.data());
    int64_t hd = d.interleavedHeadDim;
    for (int64_t i = 0; i < rows; ++i) {
      // Row i of the result is row srcRow of the [out, in] weight: within each head, the
      // rotate-half order (evens, then odds) of the interleaved pairs.
      int64_t srcRow = i;
      if (hd > 0) {
        int64_t h = i / hd, j = i % hd;
        srcRow = h * hd + (j < hd / 2 ? 2 * j : 2 * (j - hd / 2) + 1);
      }
      srcRow += rowBase;
      for (int64_t k = 0; k < cols; ++k)
        o[i * cols + k] = d.transpose ? in[k * C + srcRow] : in[srcRow * C + k];
    }
    onnx::TensorProto &t = gi.extraInitializers[d.name];
    t.set_name(d.name);
    t.set_data_type(onnx::TensorProto::FLOAT);
    t.add_dims(rows);
    t.add_dims(cols);
    t.set_raw_data(std::move(raw));
  }
  gi.tokensName = r.tokensInput;
  gi.ignoredGraphIO.insert(r.ignoredInputs.begin(), r.ignoredInputs.end());
  gi.ignoredGraphIO.insert(r.ignoredOutputs.begin(), r.ignoredOutputs.end());
  gi.tokensAsI32 = true;
  emitCalls(r.calls);
  return success();
}

} // namespace raise

using namespace mlir;
using raise::Raiser;

void installPhotonRaiser(GraphImporter &gi) {
  auto r = std::make_shared<Raiser>(gi);
  if (!r->init()) {
    // No metadata: the structure is read from the graph itself.
    gi.prepareHook = [r]() { return r->prepareRecognized(); };
    gi.raisesFunction = [r](const onnx::FunctionProto &fn) { return r->handles(fn); };
    gi.raiseHook = [r](const onnx::NodeProto &n, const onnx::FunctionProto &fn, Scope &s,
                       OpBuilder &b) { return r->raise(n, fn, s, b); };
    gi.finalizeHook = [r, &gi](ModuleOp module, func::FuncOp f) -> LogicalResult {
      if (r->recognized.family.empty()) {
        emitRemark(module.getLoc())
            << "no PHOTON hierarchy found in '" << gi.model().path()
            << "' (no photon.family metadata, and no PHOTON, Block or decoder-only structure "
               "recognized): imported to upstream ops. Not recognized: "
            << r->unrecognized;
        return success();
      }
      return r->finalize(module, f);
    };
    return;
  }
  gi.tokensAsI32 = true;
  gi.raisesFunction = [r](const onnx::FunctionProto &fn) { return r->handles(fn); };
  gi.raiseHook = [r](const onnx::NodeProto &n, const onnx::FunctionProto &fn, Scope &s,
                     OpBuilder &b) { return r->raise(n, fn, s, b); };
  gi.finalizeHook = [r](ModuleOp m, func::FuncOp f) { return r->finalize(m, f); };
  gi.prepareHook = [r, &gi]() {
    if (llvm::raw_ostream *ex = gi.options().explain) {
      *ex << "photon-import: '" << gi.model().path() << "': structure from the photon.* "
          << "metadata: family " << r->cfg.family << ", " << r->cfg.levels << " level(s), chunk sizes [";
      for (size_t i = 0; i < r->cfg.chunkSizes.size(); ++i)
        *ex << (i ? ", " : "") << r->cfg.chunkSizes[i];
      *ex << "], prefix " << r->cfg.prefix << ", width " << r->cfg.width << ", vocab "
          << r->cfg.vocab << " (checked against each call's weights while raising)\n";
    }
    return r->preparePlain();
  };
}

} // namespace import
} // namespace photon