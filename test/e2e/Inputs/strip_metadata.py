"""Writes a copy of an ONNX model without its metadata_props (what a third-party export of
the same graph carries), optionally renaming the token input.

    strip_metadata.py IN.onnx OUT.onnx [--rename-input NEW]
"""
import argparse

import onnx

ap = argparse.ArgumentParser()
ap.add_argument("src")
ap.add_argument("dst")
ap.add_argument("--rename-input")
a = ap.parse_args()
m = onnx.load(a.src)
del m.metadata_props[:]
if a.rename_input:
    old = m.graph.input[0].name
    m.graph.input[0].name = a.rename_input
    for n in m.graph.node:
        for i, x in enumerate(n.input):
            if x == old:
                n.input[i] = a.rename_input
onnx.save(m, a.dst)
