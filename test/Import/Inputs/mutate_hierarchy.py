"""Near misses of a PHOTON plain export (metadata stripped) for the structure recognizer:

    mutate_hierarchy.py IN.onnx OUT.onnx VARIANT

VARIANT:
  unshared  the second unrolled step of the level-2 decoder reads a copy of one weight
            (refuse: the steps are not one stack applied C_2 times)
  noshift   the top shift keeps the stream's last unit (Slice ends = -2 instead of -1;
            refuse: not a shift by one)
"""
import sys

import numpy as np
import onnx
from onnx import numpy_helper

src, dst, variant = sys.argv[1:4]
m = onnx.load(src)
del m.metadata_props[:]
g = m.graph
if variant == "unshared":
    uses = [n for n in g.node if n.op_type == "Transpose" and list(n.input) == ["dec2.0.wq"]]
    w = next(t for t in g.initializer if t.name == "dec2.0.wq")
    g.initializer.append(numpy_helper.from_array(numpy_helper.to_array(w).copy(), "dec2.0.wq.copy"))
    uses[1].input[0] = "dec2.0.wq.copy"
elif variant == "noshift":
    sl = next(n for n in g.node if n.name == "/f_shift/Slice")
    c = next(n for n in g.node if n.output[0] == sl.input[2])
    c.attribute[0].t.CopyFrom(numpy_helper.from_array(np.array([-2], np.int64)))
else:
    sys.exit("unknown variant " + variant)
onnx.save(m, dst)
