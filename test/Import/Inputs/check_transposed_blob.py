#!/usr/bin/env python3
"""Checks that a weights blob holds `<name>.T`, the transpose of the ONNX initializer `name`,
and not `name` itself (the importer folds the transposes the rewrite patterns leave on
[in, out] weights into the blob):

    check_transposed_blob.py MODEL.onnx BLOB NAME [NAME ...]
"""
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from read_blob import read_blob  # noqa: E402


model = onnx.load(sys.argv[1])
inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
blob = {k: v for k, (_, v) in read_blob(sys.argv[2]).items()}
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
