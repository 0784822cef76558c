#!/usr/bin/env python3
"""Changes what one function body of a photon function export (model.onnx) computes, keeping
every call, signature, attribute and the metadata as they are: the importer must refuse to
compile the call as its photon op and name the node inside the body.

usage: mutate_function.py <in.onnx> <out.onnx> eps|sigmoid|softmax|scale|rope|gain
  eps      EncoderStack's first RMSNorm epsilon becomes 1e-3 (the call says eps = norm_eps)
  sigmoid  EncoderStack's first SwiGLU gate Sigmoid becomes Tanh
  softmax  EncoderStack's first Softmax becomes Identity
  scale    EncoderStack's first attention score scale becomes 0.5
  rope     EncoderStack's rotary frequencies are those of rope_theta = 500000
  gain     EncoderStack's first RMSNorm gain multiplies the un-normalized x
"""
import sys

import numpy as np
import onnx
from onnx import numpy_helper

src, dst, what = sys.argv[1:4]
m = onnx.load(src)
fn = next(f for f in m.functions if f.domain == "photon" and f.name.split(".")[0] == "EncoderStack")
nodes = fn.node


def first(op):
    return next(n for n in nodes if n.op_type == op)


def producer(v):
    return next(n for n in nodes if v in n.output)


def constant_input(n):
    return next(c for c in nodes if c.op_type == "Constant" and c.output[0] in n.input)


if what == "eps":
    mean = first("ReduceMean")
    add = next(n for n in nodes if n.op_type == "Add" and mean.output[0] in n.input)
    constant_input(add).attribute[0].t.CopyFrom(numpy_helper.from_array(np.array(1e-3, np.float32)))
elif what == "sigmoid":
    first("Sigmoid").op_type = "Tanh"
elif what == "softmax":
    n = first("Softmax")
    n.op_type = "Identity"
    del n.attribute[:]
elif what == "scale":
    add = producer(first("Softmax").input[0])
    mul = next(producer(v) for v in add.input if producer(v).op_type == "Mul")
    constant_input(mul).attribute[0].t.CopyFrom(numpy_helper.from_array(np.array(0.5, np.float32)))
elif what == "rope":
    mul = producer(first("Cos").input[0])
    c = constant_input(mul)
    f = numpy_helper.to_array(c.attribute[0].t)
    hd = 2 * f.shape[0]
    c.attribute[0].t.CopyFrom(numpy_helper.from_array(
        (500000.0 ** (-2.0 * np.arange(hd // 2) / hd)).astype(np.float32)))
elif what == "gain":
    # w * (x * r) -> w * x: the norm's output is not normalized any more.
    mean = first("ReduceMean")
    x = producer(mean.input[0]).input[0]          # Pow(x, 2) reads x
    scaled = next(n for n in nodes if n.op_type == "Mul" and x in n.input)
    gain = next(n for n in nodes if n.op_type == "Mul" and scaled.output[0] in n.input)
    gain.input[list(gain.input).index(scaled.output[0])] = x
else:
    sys.exit("unknown mutation " + what)
onnx.save(m, dst)
