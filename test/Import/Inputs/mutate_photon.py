#!/usr/bin/env python3
"""Breaks one aspect of a photon-convention export, for the signature-check tests.

usage: mutate_photon.py <in.onnx> <out.onnx> wq|heads|count
  wq     enc1.0.wq becomes [16, D] (wrong for n_heads * head_dim)
  heads  the first EncoderStack call says n_heads = 8 (photon.config says otherwise)
  count  the first EncoderStack call loses its last input
"""
import sys

import numpy as np
import onnx
from onnx import numpy_helper

src, dst, what = sys.argv[1:4]
m = onnx.load(src)
g = m.graph
call = next(n for n in g.node if n.op_type.split(".")[0] == "EncoderStack")
if what == "wq":
    for i, t in enumerate(g.initializer):
        if t.name == "enc1.0.wq":
            a = numpy_helper.to_array(t)
            g.initializer[i].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(a[: a.shape[0] // 2]), t.name))
elif what == "heads":
    for a in call.attribute:
        if a.name == "n_heads":
            a.i = 8
elif what == "count":
    del call.input[-1]
onnx.save(m, dst)
