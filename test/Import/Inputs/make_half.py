"""Writes a half-precision copy of an ONNX export, as `model.half()` + torch.onnx.export
would: every float32 initializer, Constant and ConstantOfShape value, Cast-to-float, graph
input/output and value_info becomes float16 (or bfloat16), inside the graph and inside its
local functions. Integer tensors (tokens, shapes, positions) are left as they are.

    make_half.py IN.onnx OUT.onnx [--dtype float16|bfloat16] [--keep-io-types]

--keep-io-types keeps float32 graph inputs/outputs and inserts the Casts at the boundary
(the other common form of a mixed export). --round-only keeps every tensor float32 but
rounds its values through the half type (the f32 model the half export computes, for the
exact comparison). Prints the number of tensors converted.
"""
import argparse

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ap = argparse.ArgumentParser()
ap.add_argument("src")
ap.add_argument("dst")
ap.add_argument("--dtype", choices=["float16", "bfloat16"], default="float16")
ap.add_argument("--keep-io-types", action="store_true")
ap.add_argument("--round-only", action="store_true")
a = ap.parse_args()
HALF = TensorProto.FLOAT16 if a.dtype == "float16" else TensorProto.BFLOAT16
count = 0


def to_half(t):
    """TensorProto float32 -> the half type, rounded to nearest even."""
    global count
    if t.data_type != TensorProto.FLOAT:
        return t
    x = numpy_helper.to_array(t).astype(np.float32)
    if HALF == TensorProto.FLOAT16:
        # Out-of-range values (a -1e9 or float32-min attention mask) saturate to the largest
        # finite half, as converters and half exports do, instead of becoming infinities.
        h = numpy_helper.from_array(np.clip(x, -65504.0, 65504.0).astype(np.float16), t.name)
    else:
        u = x.view(np.uint32).astype(np.uint64)
        s16 = np.uint64(16)
        r = ((u + np.uint64(0x7FFF) + ((u >> s16) & np.uint64(1))) >> s16).astype(np.uint16)
        h = TensorProto()
        h.name = t.name
        h.data_type = TensorProto.BFLOAT16
        h.dims.extend(x.shape)
        h.raw_data = r.tobytes()
    count += 1
    if a.round_only:
        w = numpy_helper.to_array(h).astype(np.float32) if HALF == TensorProto.FLOAT16 else \
            (np.frombuffer(h.raw_data, np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(x.shape)
        return numpy_helper.from_array(np.ascontiguousarray(w, np.float32), t.name)
    return h


def fix_value_info(vi):
    tt = vi.type.tensor_type
    if tt.elem_type == TensorProto.FLOAT and not a.round_only:
        tt.elem_type = HALF


def fix_nodes(nodes):
    for n in nodes:
        for at in n.attribute:
            if at.type == onnx.AttributeProto.TENSOR and at.t.data_type == TensorProto.FLOAT:
                at.t.CopyFrom(to_half(at.t))
            elif at.name == "to" and n.op_type == "Cast" and at.i == TensorProto.FLOAT and not a.round_only:
                at.i = HALF
            elif at.type == onnx.AttributeProto.GRAPH:
                fix_graph(at.g)


def fix_graph(g, top=False):
    inits = [to_half(t) for t in g.initializer]
    del g.initializer[:]
    g.initializer.extend(inits)
    fix_nodes(g.node)
    for vi in g.value_info:
        fix_value_info(vi)
    if not top or not a.keep_io_types or a.round_only:
        for vi in list(g.input) + list(g.output):
            fix_value_info(vi)
        return
    # float32 at the boundary: Cast inputs to half after them, outputs to float32 before them.
    for vi in g.input:
        if vi.type.tensor_type.elem_type == TensorProto.FLOAT:
            for n in g.node:
                for i, x in enumerate(n.input):
                    if x == vi.name:
                        n.input[i] = vi.name + "_half"
            g.node.insert(0, helper.make_node("Cast", [vi.name], [vi.name + "_half"], to=HALF))
    for vi in g.output:
        if vi.type.tensor_type.elem_type == TensorProto.FLOAT:
            for n in g.node:
                for i, x in enumerate(n.output):
                    if x == vi.name:
                        n.output[i] = vi.name + "_half"
            g.node.append(helper.make_node("Cast", [vi.name + "_half"], [vi.name], to=TensorProto.FLOAT))


m = onnx.load(a.src)
fix_graph(m.graph, top=True)
for f in m.functions:
    fix_nodes(f.node)
onnx.save(m, a.dst)
print("%s %d float32 tensors %s %s" % ("rounded" if a.round_only else "converted", count,
                                       "through" if a.round_only else "to", a.dtype))
