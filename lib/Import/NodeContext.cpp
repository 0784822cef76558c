//===- NodeContext.cpp - Converter context and registry -------------------===//

#include "NodeContext.h"

#include "mlir/IR/Diagnostics.h"

namespace photon {
namespace import {
using namespace mlir;

std::optional<SmallVector<int64_t>> NodeContext::constInts(size_t i) const {
  const KnownInts *k = knownIn(i);
  if (!k || !k->allKnown()) return std::nullopt;
  SmallVector<int64_t> out;
  for (const auto &v : k->vals) out.push_back(*v);
  return out;
}

int64_t NodeContext::getInt(StringRef name, int64_t dflt) const {
  const auto *a = attr(name);
  if (!a) return dflt;
  return a->i();
}

float NodeContext::getFloat(StringRef name, float dflt) const {
  const auto *a = attr(name);
  if (!a) return dflt;
  return a->f();
}

std::optional<SmallVector<int64_t>> NodeContext::getInts(StringRef name) const {
  const auto *a = attr(name);
  if (!a) return std::nullopt;
  SmallVector<int64_t> out(a->ints().begin(), a->ints().end());
  return out;
}

std::string NodeContext::getString(StringRef name, StringRef dflt) const {
  const auto *a = attr(name);
  if (!a) return dflt.str();
  return a->s();
}

static std::string nodeLabel(const onnx::NodeProto &node, int64_t opset) {
  std::string s = "node '" + (node.name().empty() ? std::string("<unnamed>") : node.name()) +
                  "' (" + node.op_type() + ", opset " + std::to_string(opset) + ")";
  return s;
}

LogicalResult NodeContext::error(const Twine &msg) const {
  emitError(loc) << nodeLabel(node, opset) << ": " << msg;
  return failure();
}

LogicalResult NodeContext::unsupported(const Twine &msg) const {
  emitError(loc) << nodeLabel(node, opset) << ": unsupported: " << msg;
  return failure();
}

LogicalResult NodeContext::requireInputs(size_t n) const {
  for (size_t i = 0; i < n; ++i)
    if (!hasInput(i))
      return error("expected at least " + Twine(n) + " inputs, input " + Twine(i) +
                   " is missing");
  return success();
}

LogicalResult NodeContext::normAxis(int64_t &axis, int64_t rank, StringRef what) const {
  if (axis < -rank || axis >= rank)
    return error(what + " " + Twine(axis) + " is out of range for rank " + Twine(rank));
  if (axis < 0) axis += rank;
  return success();
}

void OpRegistry::onOp(StringRef opType, int64_t since, ConvertFn fn) {
  auto &v = ops_[opType.str()];
  v.push_back({since, std::move(fn)});
  std::sort(v.begin(), v.end(), [](const Entry &a, const Entry &b) { return a.since < b.since; });
}

const ConvertFn *OpRegistry::lookup(StringRef opType, int64_t opset) const {
  auto it = ops_.find(opType.str());
  if (it == ops_.end()) return nullptr;
  const ConvertFn *best = nullptr;
  for (const auto &e : it->second)
    if (e.since <= opset) best = &e.fn;
  return best;
}

std::optional<int64_t> OpRegistry::firstVersion(StringRef opType) const {
  auto it = ops_.find(opType.str());
  if (it == ops_.end() || it->second.empty()) return std::nullopt;
  return it->second.front().since;
}

std::vector<std::pair<std::string, int64_t>> OpRegistry::list() const {
  std::vector<std::pair<std::string, int64_t>> out;
  for (const auto &[k, v] : ops_) out.push_back({k, v.front().since});
  return out;
}

const OpRegistry &OpRegistry::get() {
  static const OpRegistry *reg = [] {
    auto *r = new OpRegistry();
    registerOpsAtoF(*r);
    registerOpsGtoM(*r);
    registerOpsNtoR(*r);
    registerOpsStoZ(*r);
    return r;
  }();
  return *reg;
}

} // namespace import
} // namespace photon
