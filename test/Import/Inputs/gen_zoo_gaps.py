#!/usr/bin/env python3
"""Writes the models of tile.test and bool-initializer.test (helpers from gen_model.py):
the two import gaps the test/zoo exports found (Tile in `block`, a large bool initializer
in `gpt2`).

usage: gen_zoo_gaps.py <case> <out.onnx>
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_model import F, I64, init, model, vi  # noqa: E402


def case_static():
    # Constant repeats: axis 0 (size 2) x 3 needs a (3, 2) pair; axis 1 x 1 stays.
    n = [helper.make_node("Tile", ["x", "r"], ["y"], name="tile")]
    return model(n, [vi("x", F, [2, 5])], [vi("y", F, [6, 5])],
                 [init("r", np.array([3, 1], np.int64))], opset=6)


def case_batch():
    # The Block Transformer's start vector: [1, 1, D] tiled to the batch of a dynamic input
    # (repeats from Shape -> Gather -> Unsqueeze -> Concat), opset 13.
    n = [helper.make_node("Shape", ["h"], ["s"], name="shape"),
         helper.make_node("Gather", ["s", "zero"], ["b"], axis=0, name="gather"),
         helper.make_node("Unsqueeze", ["b", "ax0"], ["b1"], name="unsq"),
         helper.make_node("Concat", ["b1", "one", "one"], ["r"], axis=0, name="concat"),
         helper.make_node("Tile", ["start", "r"], ["y"], name="tile")]
    return model(n, [vi("h", F, ["B", "T", 8])], [vi("y", F, ["B", 1, 8])],
                 [init("start", np.arange(8, dtype=np.float32).reshape(1, 1, 8)),
                  init("zero", np.int64(0)), init("ax0", np.array([0], np.int64)),
                  init("one", np.array([1], np.int64))], opset=13)


def case_dynamic():
    # Repeats known only at run time, on a dynamic axis.
    n = [helper.make_node("Tile", ["x", "r"], ["y"], name="tile")]
    return model(n, [vi("x", F, ["N", 3]), vi("r", I64, [2])], [vi("y", F, ["M", "K"])],
                 opset=13)


def case_bad_repeats():
    n = [helper.make_node("Tile", ["x", "r"], ["y"], name="tile")]
    return model(n, [vi("x", F, [2, 3])], [vi("y", F, [2, 3])],
                 [init("r", np.array([2, 1, 1], np.int64))], opset=13)


def case_bool_mask():
    # GPT-2's causal-mask buffer: a bool initializer larger than the inline limit (256), which
    # has no weights-blob dtype, so it must stay a constant.
    mask = np.tril(np.ones((1, 1, 32, 32), dtype=bool))
    n = [helper.make_node("Where", ["mask", "x", "neg"], ["y"], name="where")]
    return model(n, [vi("x", F, ["B", 1, 32, 32])], [vi("y", F, ["B", 1, 32, 32])],
                 [init("mask", mask), init("neg", np.float32(-1e9))], opset=13)


if __name__ == "__main__":
    m = globals()["case_" + sys.argv[1]]()
    onnx.save(m, sys.argv[2])
