//===- InlineFunctions.h - an ONNX graph with its local functions expanded -*- C++ -*-===//
//
// A function-form export (torch.onnx's export_modules_as_functions, our reference's
// model.onnx) keeps each module's computation in a model-local FunctionProto and calls it
// from the graph. The structural raisers read graphs node by node (GraphView), so they see
// the bodies through this copy of the main graph in which every call of a model-local
// function is replaced by the function's body, recursively:
//   - the body's formal inputs and outputs become the call's actual values (a formal input
//     the call leaves out is absent, ""), every other value and node name is prefixed with
//     the call's path (`<call node name>/<body node name>`), so a diagnostic names the call
//     and the node inside it;
//   - attribute references (`ref_attr_name`) take the calling node's attribute of that name
//     (dropped when the caller has none, as ONNX's defaults then apply);
//   - Constant nodes with value_float(s) / value_int(s) are rewritten to the equivalent
//     `value` tensor, the one form GraphView reads constants from.
// Initializers, inputs, outputs and value_info of the main graph are copied unchanged; nodes
// of other domains without a local function (contrib ops) stay as they are.
//
//===----------------------------------------------------------------------===//
#ifndef PHOTON_LIB_IMPORT_INLINEFUNCTIONS_H
#define PHOTON_LIB_IMPORT_INLINEFUNCTIONS_H

#include "onnx/onnx_pb.h"

#include <string>

namespace photon {
namespace import {

class OnnxModel;

/// True when a node of the main graph calls a model-local function.
bool callsLocalFunctions(const OnnxModel &model);

/// Writes the main graph with every model-local function call expanded into `out`. Returns
/// false with `error` set for a recursion deeper than 64 calls or a call with more inputs or
/// outputs than its function declares.
bool inlineLocalFunctions(const OnnxModel &model, onnx::GraphProto &out, std::string &error);

} // namespace import
} // namespace photon

#endif
