#!/usr/bin/env python3
"""Breaks one pattern of a plain export (model.plain.onnx), for the hierarchy-recovery tests.

usage: mutate_plain.py <in.onnx> <out.onnx> eps|sigmoid|softmax|mask|extra|missing|layers
  eps      the first RMSNorm's epsilon becomes 1e-3 (photon.config says norm_eps)
  sigmoid  the first SwiGLU gate's Sigmoid becomes Tanh
  softmax  the first attention's Softmax becomes Identity
  mask     the first encoder attention's mask (Where) passes the scores unmasked
  extra    an initializer that is no weight of the structure is added
  missing  enc1.0.wk is renamed (the weight the convention names is absent)
  layers   photon.config says enc1 has 3 layers
  scale    the first encoder attention's score scale becomes 0.5
  anticausal  the first encoder mask's comparison is swapped (query > key is masked)
  window   the first decoder window mask is transposed (not causal)
  rope     the first encoder's rotary frequencies are those of rope_theta = 500000
  ropetable  the token decoder's first precomputed rotary table is negated
"""
import json
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper

src, dst, what = sys.argv[1:4]
m = onnx.load(src)
g = m.graph


def first(op, prefix="/f_enc1/"):
    return next(n for n in g.node if n.op_type == op and n.name.startswith(prefix))


if what == "eps":
    mean = first("ReduceMean")
    add = next(n for n in g.node if n.op_type == "Add" and mean.output[0] in n.input)
    c = next(n for n in g.node if n.op_type == "Constant" and n.output[0] in add.input)
    c.attribute[0].t.CopyFrom(numpy_helper.from_array(np.array(1e-3, dtype=np.float32)))
elif what == "sigmoid":
    first("Sigmoid").op_type = "Tanh"
elif what == "softmax":
    n = first("Softmax")
    n.op_type = "Identity"
    del n.attribute[:]
elif what == "mask":
    w = first("Where")
    # Where(cond, a, b) -> Identity(b): the scores pass unmasked.
    scores = w.input[2]
    w.op_type = "Identity"
    del w.input[:]
    w.input.append(scores)
elif what == "extra":
    g.initializer.append(numpy_helper.from_array(np.zeros([4, 4], np.float32), "probe.w"))
    g.node.append(helper.make_node("Identity", ["probe.w"], ["probe_out"], name="probe"))
elif what == "missing":
    for t in g.initializer:
        if t.name == "enc1.0.wk":
            t.name = "enc1.0.wk_renamed"
    for n in g.node:
        for i, x in enumerate(n.input):
            if x == "enc1.0.wk":
                n.input[i] = "enc1.0.wk_renamed"
elif what == "layers":
    for p in m.metadata_props:
        if p.key == "photon.config":
            cfg = json.loads(p.value)
            cfg["layers"]["enc1"] = 3
            p.value = json.dumps(cfg, sort_keys=True)
elif what == "scale":
    sm = first("Softmax")
    add = next(n for n in g.node if n.output[0] == sm.input[0])
    mul = next(n for n in g.node if n.output[0] in add.input and n.op_type == "Mul")
    c = next(n for n in g.node if n.op_type == "Constant" and n.output[0] in mul.input)
    c.attribute[0].t.CopyFrom(numpy_helper.from_array(np.array(0.5, dtype=np.float32)))
elif what == "anticausal":
    gt = first("Greater")
    a, b = gt.input[0], gt.input[1]
    gt.input[0], gt.input[1] = b, a
elif what == "window":
    sm = first("Softmax", "/f_dec1/")
    add = next(n for n in g.node if n.output[0] == sm.input[0])
    c = next(n for n in g.node if n.op_type == "Constant" and n.output[0] in add.input)
    a = numpy_helper.to_array(c.attribute[0].t)
    c.attribute[0].t.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(a.T)))
elif what == "rope":
    cos = first("Cos")
    mul = next(n for n in g.node if n.output[0] == cos.input[0])
    c = next(n for n in g.node if n.op_type == "Constant" and n.output[0] in mul.input)
    f = numpy_helper.to_array(c.attribute[0].t)
    hd = 2 * f.shape[0]
    c.attribute[0].t.CopyFrom(numpy_helper.from_array(
        (500000.0 ** (-2.0 * np.arange(hd // 2) / hd)).astype(np.float32)))
elif what == "ropetable":
    consts = {n.output[0]: n for n in g.node if n.op_type == "Constant"}
    for n in g.node:
        if n.op_type != "Mul" or not n.name.startswith("/f_dec1/"):
            continue
        c = next((consts[i] for i in n.input if i in consts), None)
        if c is None:
            continue
        a = numpy_helper.to_array(c.attribute[0].t)
        if a.ndim >= 2 and a.shape[-1] == 4 and a.size >= 8:
            c.attribute[0].t.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(-a)))
            break
    else:
        sys.exit("no rotary table found")
else:
    sys.exit("unknown mutation " + what)
onnx.save(m, dst)
