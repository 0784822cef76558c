#!/usr/bin/env python3
"""Checks that a weights blob holds `<name>.T`, the transpose of the ONNX initializer `name`,
and not `name` itself (the importer folds the transposes the rewrite patterns leave on
[in, out] weights into the blob):

    check_transposed_blob.py MODEL.onnx BLOB NAME [NAME ...]
"""
import struct
import sys

import numpy as np
import onnx
from onnx import numpy_helper

DT = {0: np.float32, 1: np.float16, 3: np.int32, 4: np.int64, 5: np.int8}


def read_blob(path):
    data = open(path, "rb").read()
    assert data[:8] == b"PHOTONW1", "bad magic"
    _, count, _, _ = struct.unpack_from("<IIQQ", data, 8)
    p, out = 32, {}
    for _ in range(count):
        (n,) = struct.unpack_from("<H", data, p); p += 2
        name = data[p:p + n].decode(); p += n
        dtype, rank = struct.unpack_from("<BB", data, p); p += 2
        shape = list(struct.unpack_from("<%dq" % rank, data, p)); p += 8 * rank
        off, nbytes = struct.unpack_from("<QQ", data, p); p += 16
        out[name] = np.frombuffer(data[off:off + nbytes], dtype=DT[dtype]).reshape(shape)
    return out


model = onnx.load(sys.argv[1])
inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
blob = read_blob(sys.argv[2])
ok = True
for name in sys.argv[3:]:
    w = inits[name]
    t = blob.get(name + ".T")
    if t is None or t.shape != w.T.shape or not np.array_equal(t, w.T):
        print(f"FAIL {name}.T is not the transpose of '{name}' {list(w.shape)}")
        ok = False
    else:
        print(f"{name}.T {list(t.shape)} equals the transpose of '{name}' {list(w.shape)}")
    if name in blob:
        print(f"'{name}' is in the blob too")
        ok = False
sys.exit(0 if ok else 1)
