//===- GraphView.h - dataflow queries over an ONNX graph --------*- C++ -*-===//
//
// Producers, consumers and constant values of an ONNX graph's tensors by name, for the
// raisers that match computations at the ONNX level (Raise.cpp: the plain-export checker;
// Recognize.cpp: structure recognition of graphs without metadata).
//
//===----------------------------------------------------------------------===//
#ifndef PHOTON_LIB_IMPORT_GRAPHVIEW_H
#define PHOTON_LIB_IMPORT_GRAPHVIEW_H

#include "onnx/onnx_pb.h"
#include "photon/weights_format.h"

#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace photon {
namespace import {

class GraphView {
public:
  explicit GraphView(const onnx::GraphProto &g) : GraphView(g, g) {}
  /// The nodes, inputs and outputs of `g` with the initializers of `weights` (a graph whose
  /// local functions were expanded, InlineFunctions.h, reads the model's own initializers).
  GraphView(const onnx::GraphProto &g, const onnx::GraphProto &weights) : g(g) {
    for (const auto &n : g.node()) {
      for (const auto &o : n.output())
        if (!o.empty()) producer[o] = &n;
      for (const auto &i : n.input())
        if (!i.empty()) consumers[i].push_back(&n);
    }
    for (const auto &t : weights.initializer()) inits[t.name()] = &t;
  }

  const onnx::GraphProto &g;
  std::map<std::string, const onnx::NodeProto *> producer;
  std::map<std::string, std::vector<const onnx::NodeProto *>> consumers;
  std::map<std::string, const onnx::TensorProto *> inits;

  /// Inputs and outputs by index, "" when out of range (any graph may reach here).
  static std::string in(const onnx::NodeProto *n, int i) {
    return i >= 0 && i < n->input_size() ? n->input(i) : std::string();
  }
  static std::string out(const onnx::NodeProto *n, int i) {
    return i >= 0 && i < n->output_size() ? n->output(i) : std::string();
  }
  static bool hasInput(const onnx::NodeProto &n, const std::string &v) {
    for (const auto &i : n.input())
      if (i == v) return true;
    return false;
  }
  /// The other input of a binary node.
  static std::string other(const onnx::NodeProto &n, const std::string &v) {
    if (n.input_size() != 2) return "";
    return n.input(0) == v ? n.input(1) : n.input(0);
  }
  static const onnx::AttributeProto *attr(const onnx::NodeProto *n, const std::string &name) {
    for (const auto &a : n->attribute())
      if (a.name() == name) return &a;
    return nullptr;
  }
  const onnx::NodeProto *prod(const std::string &v) const {
    auto it = producer.find(v);
    return it == producer.end() ? nullptr : it->second;
  }
  const std::vector<const onnx::NodeProto *> &cons(const std::string &v) { return consumers[v]; }
  const onnx::TensorProto *initializer(const std::string &v) const {
    auto it = inits.find(v);
    return it == inits.end() ? nullptr : it->second;
  }
  /// The tensor of a Constant node's `value` or of an initializer named v; null otherwise.
  const onnx::TensorProto *constantTensor(const std::string &v) const {
    if (auto *p = prod(v)) {
      if (p->op_type() != "Constant") return nullptr;
      for (const auto &a : p->attribute())
        if (a.name() == "value") return &a.t();
      return nullptr;
    }
    return initializer(v);
  }
  /// A scalar float Constant (or initializer) value.
  std::optional<double> scalar(const std::string &v) const {
    std::vector<float> f;
    std::vector<int64_t> shape;
    if (!constFloats(v, f, shape) || f.size() != 1) return std::nullopt;
    return f[0];
  }
  /// A constant tensor's float values (Constant node or initializer) and shape.
  bool constFloats(const std::string &v, std::vector<float> &vals,
                   std::vector<int64_t> &shape) const {
    const onnx::TensorProto *t = constantTensor(v);
    const bool f16 = t && t->data_type() == onnx::TensorProto::FLOAT16;
    const bool bf16 = t && t->data_type() == onnx::TensorProto::BFLOAT16;
    if (!t || (t->data_type() != onnx::TensorProto::FLOAT && !f16 && !bf16)) return false;
    int64_t n = 1;
    shape.assign(t->dims().begin(), t->dims().end());
    for (auto d : shape) {
      if (d < 0 || d > (1 << 20)) return false;
      n *= d;
    }
    if (n > (1 << 22)) return false;
    vals.resize(n);
    if (f16 || bf16) { // a half-precision export's constant, widened as the importer does
      auto widen = [&](uint16_t h) {
        return f16 ? ::photon::weights::f16ToF32(h) : ::photon::weights::bf16ToF32(h);
      };
      if (t->int32_data_size() == n) {
        for (int64_t i = 0; i < n; ++i) vals[i] = widen(static_cast<uint16_t>(t->int32_data(i)));
        return true;
      }
      if ((int64_t)t->raw_data().size() != 2 * n) return false;
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        memcpy(&h, t->raw_data().data() + 2 * i, 2);
        vals[i] = widen(h);
      }
      return true;
    }
    if (t->float_data_size() == n) {
      for (int64_t i = 0; i < n; ++i) vals[i] = t->float_data(i);
      return true;
    }
    if ((int64_t)t->raw_data().size() == 4 * n) {
      if (n) memcpy(vals.data(), t->raw_data().data(), 4 * n);
      return true;
    }
    return false;
  }
  /// The int64 values of a small constant (Unsqueeze axes, Reshape shapes).
  bool constInts(const std::string &v, std::vector<int64_t> &vals) const {
    const onnx::TensorProto *t = constantTensor(v);
    if (!t || t->data_type() != onnx::TensorProto::INT64) return false;
    int64_t n = 1;
    for (auto d : t->dims()) n *= d;
    if (n < 0 || n > 64) return false;
    vals.resize(n);
    if (t->int64_data_size() == n) {
      for (int64_t i = 0; i < n; ++i) vals[i] = t->int64_data(i);
      return true;
    }
    if ((int64_t)t->raw_data().size() == 8 * n) {
      if (n) memcpy(vals.data(), t->raw_data().data(), 8 * n);
      return true;
    }
    return false;
  }
  std::optional<int64_t> constInt(const std::string &v) const {
    std::vector<int64_t> x;
    if (!constInts(v, x) || x.size() != 1) return std::nullopt;
    return x[0];
  }
};

} // namespace import
} // namespace photon

#endif
