//===- InlineFunctions.cpp - an ONNX graph with its local functions expanded ----===//
//
// See InlineFunctions.h.
//
//===----------------------------------------------------------------------===//
#include "InlineFunctions.h"

#include "OnnxModel.h"

#include <map>
#include <set>

namespace photon {
namespace import {
namespace {

using AttrMap = std::map<std::string, const onnx::AttributeProto *>;

/// Constant(value_float | value_floats | value_int | value_ints) as Constant(value).
void normalizeConstant(onnx::NodeProto &n) {
  if (n.op_type() != "Constant" || !isDefaultDomain(n.domain()) || n.attribute_size() != 1)
    return;
  const onnx::AttributeProto &a = n.attribute(0);
  onnx::TensorProto t;
  if (a.name() == "value_float") {
    t.set_data_type(onnx::TensorProto::FLOAT);
    t.add_float_data(a.f());
  } else if (a.name() == "value_floats") {
    t.set_data_type(onnx::TensorProto::FLOAT);
    t.add_dims(a.floats_size());
    for (float f : a.floats()) t.add_float_data(f);
  } else if (a.name() == "value_int") {
    t.set_data_type(onnx::TensorProto::INT64);
    t.add_int64_data(a.i());
  } else if (a.name() == "value_ints") {
    t.set_data_type(onnx::TensorProto::INT64);
    t.add_dims(a.ints_size());
    for (int64_t i : a.ints()) t.add_int64_data(i);
  } else {
    return;
  }
  onnx::AttributeProto v;
  v.set_name("value");
  v.set_type(onnx::AttributeProto::TENSOR);
  *v.mutable_t() = std::move(t);
  n.clear_attribute();
  *n.add_attribute() = std::move(v);
}

class Inliner {
public:
  Inliner(const OnnxModel &model, onnx::GraphProto &out) : model(model), out(out) {}

  /// Copies node `n` of a scope into the output: its values renamed (`rename`, else
  /// `prefix/name`), its attribute references resolved from `caller`, a call of a local
  /// function expanded.
  bool emit(const onnx::NodeProto &n, const std::string &prefix,
            const std::map<std::string, std::string> &rename, const AttrMap *caller, int index,
            int depth) {
    onnx::NodeProto m = n;
    auto name = [&](const std::string &v) -> std::string {
      if (v.empty() || prefix.empty()) return v;
      auto it = rename.find(v);
      return it != rename.end() ? it->second : prefix + "/" + v;
    };
    for (int i = 0; i < m.input_size(); ++i) m.set_input(i, name(m.input(i)));
    for (int i = 0; i < m.output_size(); ++i) m.set_output(i, name(m.output(i)));
    if (!prefix.empty())
      m.set_name(prefix + "/" +
                 (n.name().empty() ? n.op_type() + "_" + std::to_string(index) : n.name()));
    if (caller) {
      google::protobuf::RepeatedPtrField<onnx::AttributeProto> attrs;
      for (const auto &a : m.attribute()) {
        if (a.ref_attr_name().empty()) {
          *attrs.Add() = a;
          continue;
        }
        auto it = caller->find(a.ref_attr_name());
        if (it == caller->end()) continue; // not given by the caller: the op's default
        onnx::AttributeProto r = *it->second;
        r.set_name(a.name());
        *attrs.Add() = std::move(r);
      }
      *m.mutable_attribute() = std::move(attrs);
    }
    normalizeConstant(m);
    const onnx::FunctionProto *fn =
        isDefaultDomain(m.domain()) ? nullptr : model.findFunction(m.domain(), m.op_type());
    if (!fn) {
      *out.add_node() = std::move(m);
      return true;
    }
    return expand(m, *fn, depth + 1);
  }

  std::string error;

private:
  bool expand(const onnx::NodeProto &call, const onnx::FunctionProto &fn, int depth) {
    if (depth > 64) {
      error = "function " + fn.domain() + "." + fn.name() +
              " calls itself recursively (more than 64 nested calls)";
      return false;
    }
    if (call.input_size() > fn.input_size() || call.output_size() > fn.output_size()) {
      error = "node '" + call.name() + "' calls " + fn.domain() + "." + fn.name() + " with " +
              std::to_string(call.input_size()) + " inputs and " +
              std::to_string(call.output_size()) + " outputs; the function declares " +
              std::to_string(fn.input_size()) + " and " + std::to_string(fn.output_size());
      return false;
    }
    std::string prefix = call.name().empty() ? fn.name() : call.name();
    if (!prefixes.insert(prefix).second) {
      int k = 1;
      while (!prefixes.insert(prefix + "#" + std::to_string(k)).second) ++k;
      prefix += "#" + std::to_string(k);
    }
    std::map<std::string, std::string> rename;
    for (int i = 0; i < fn.input_size(); ++i)
      rename[fn.input(i)] = i < call.input_size() ? call.input(i) : std::string();
    std::set<std::string> produced;
    for (const auto &bn : fn.node())
      for (const auto &o : bn.output()) produced.insert(o);
    std::vector<std::pair<std::string, std::string>> passThrough;
    for (int i = 0; i < fn.output_size(); ++i) {
      std::string actual =
          i < call.output_size() && !call.output(i).empty() ? call.output(i)
                                                            : prefix + "/" + fn.output(i);
      if (!produced.count(fn.output(i)) && rename.count(fn.output(i))) {
        passThrough.push_back({rename[fn.output(i)], actual}); // an input returned as is
        continue;
      }
      rename[fn.output(i)] = actual;
    }
    AttrMap attrs;
    for (const auto &a : call.attribute()) attrs[a.name()] = &a;
    int k = 0;
    for (const auto &bn : fn.node())
      if (!emit(bn, prefix, rename, &attrs, k++, depth)) return false;
    for (auto &[from, to] : passThrough) {
      onnx::NodeProto *id = out.add_node();
      id->set_op_type("Identity");
      id->set_name(prefix + "/" + to);
      id->add_input(from);
      id->add_output(to);
    }
    return true;
  }

  const OnnxModel &model;
  onnx::GraphProto &out;
  std::set<std::string> prefixes;
};

} // namespace

bool callsLocalFunctions(const OnnxModel &model) {
  for (const auto &n : model.proto().graph().node())
    if (!isDefaultDomain(n.domain()) && model.findFunction(n.domain(), n.op_type()))
      return true;
  return false;
}

bool inlineLocalFunctions(const OnnxModel &model, onnx::GraphProto &out, std::string &error) {
  const onnx::GraphProto &g = model.proto().graph();
  out.Clear();
  out.set_name(g.name());
  *out.mutable_input() = g.input();
  *out.mutable_output() = g.output();
  *out.mutable_value_info() = g.value_info();
  *out.mutable_initializer() = g.initializer();
  Inliner in(model, out);
  int k = 0;
  for (const auto &n : g.node())
    if (!in.emit(n, "", {}, nullptr, k++, 0)) {
      error = in.error;
      return false;
    }
  return true;
}

} // namespace import
} // namespace photon
