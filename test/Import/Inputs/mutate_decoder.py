"""Variants of a decoder-only plain export (metadata stripped) for the structure
recognizer's tests: each is a spelling the recognizer must accept or a near miss it must
refuse.

    mutate_decoder.py IN.onnx OUT.onnx VARIANT

VARIANT:
  plain        metadata stripped only
  pretransposed every MatMul(x, Transpose(W)) becomes MatMul(x, W^T) with W^T an
               initializer (what torch.onnx writes with constant folding), renamed
               (accept: same logits, the weights are transposed back at import)
  scale2       the attention scale constant doubled (refuse: not 1/sqrt(head_dim))
  relu         a Relu after the first attention output projection (refuse: an extra op)
  bias         a bias Add after the first query projection (refuse: a projection bias)
  meancentred  the final RMSNorm normalizes x - ReduceMean(x) (a LayerNorm without bias;
               refuse: a norm with mean-centring is not an RMSNorm)
"""
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper

src, dst, variant = sys.argv[1:4]
m = onnx.load(src)
del m.metadata_props[:]
g = m.graph
inits = {t.name: t for t in g.initializer}


def producer(name):
    for n in g.node:
        if name in n.output:
            return n
    return None


if variant == "pretransposed":
    drop = []
    for n in list(g.node):
        if n.op_type == "MatMul":
            t = producer(n.input[1])
            if t is not None and t.op_type == "Transpose" and t.input[0] in inits:
                w = numpy_helper.to_array(inits[t.input[0]])
                new = "onnx::MatMul_" + str(len(g.initializer))
                g.initializer.append(numpy_helper.from_array(np.ascontiguousarray(w.T), new))
                n.input[1] = new
                drop.append(t)
    for t in drop:
        if t in g.node:
            g.node.remove(t)
    used = {i for n in g.node for i in n.input}
    for t in list(g.initializer):
        if t.name not in used:
            g.initializer.remove(t)
elif variant == "scale2":
    sm = next(n for n in g.node if n.op_type == "Softmax")
    add = producer(sm.input[0])
    mul = next(producer(i) for i in add.input if producer(i) is not None and producer(i).op_type == "Mul")
    c = next(i for i in mul.input if producer(i) is not None and producer(i).op_type == "Constant")
    cn = producer(c)
    v = numpy_helper.to_array(cn.attribute[0].t) * 2
    cn.attribute[0].t.CopyFrom(numpy_helper.from_array(v.astype(np.float32)))
elif variant in ("relu", "bias"):
    target = "wo" if variant == "relu" else "wq"
    mm = None
    for n in g.node:
        if n.op_type == "MatMul":
            t = producer(n.input[1])
            if t is not None and t.op_type == "Transpose" and t.input[0].endswith("0." + target):
                mm = n
    out = mm.output[0]
    mid = out + "_pre"
    mm.output[0] = mid
    if variant == "relu":
        node = helper.make_node("Relu", [mid], [out], name="extra_relu")
    else:
        rows = numpy_helper.to_array(inits[producer(mm.input[1]).input[0]]).shape[0]
        g.initializer.append(numpy_helper.from_array(np.full(rows, 0.5, np.float32), "q_bias"))
        node = helper.make_node("Add", [mid, "q_bias"], [out], name="q_bias_add")
    idx = list(g.node).index(mm)
    g.node.insert(idx + 1, node)
elif variant == "meancentred":
    # The final norm: the last Pow(x, 2) of the graph; its x also feeds the normalizing Mul.
    pw = [n for n in g.node if n.op_type == "Pow"][-1]
    x = pw.input[0]
    idx = list(g.node).index(pw)
    g.node.insert(idx, helper.make_node("ReduceMean", [x], ["mc_mean"], name="mc_mean", axes=[-1]))
    g.node.insert(idx + 1, helper.make_node("Sub", [x, "mc_mean"], ["mc_centred"], name="mc_sub"))
    for n in g.node:
        if n.name in ("mc_mean", "mc_sub"):
            continue
        if n is pw or (n.op_type == "Mul" and x in n.input and list(g.node).index(n) > idx):
            n.input[:] = ["mc_centred" if i == x else i for i in n.input]
elif variant != "plain":
    sys.exit("unknown variant " + variant)
onnx.checker.check_model(m)
onnx.save(m, dst)
