#!/usr/bin/env python3
"""Writes small ONNX models for photon-import's lit tests.

usage: gen_model.py <case> <out.onnx>
Each case is one function below; bad models (for the diagnostics tests) are made here too.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT
I64 = TensorProto.INT64


def model(nodes, inputs, outputs, inits=(), opset=17, ir=8, functions=(), extra_opsets=(),
          value_info=(), meta=None):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits),
                          value_info=list(value_info))
    ops = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    m = helper.make_model(g, opset_imports=ops, functions=list(functions))
    m.ir_version = ir
    if meta:
        for k, v in meta.items():
            p = m.metadata_props.add()
            p.key, p.value = k, v
    return m


def vi(name, dt, shape):
    return helper.make_tensor_value_info(name, dt, shape)


def init(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def case_elementwise():
    n = [helper.make_node("Add", ["x", "b"], ["a"], name="add"),
         helper.make_node("Mul", ["a", "x"], ["m"], name="mul"),
         helper.make_node("Sub", ["m", "b"], ["s"], name="sub"),
         helper.make_node("Div", ["s", "x"], ["d"], name="div"),
         helper.make_node("Pow", ["d", "two"], ["p"], name="pow"),
         helper.make_node("Sqrt", ["p"], ["q"], name="sqrt"),
         helper.make_node("Reciprocal", ["q"], ["r"], name="recip"),
         helper.make_node("Neg", ["r"], ["ng"], name="neg"),
         helper.make_node("Exp", ["ng"], ["e"], name="exp"),
         helper.make_node("Log", ["e"], ["lg"], name="log"),
         helper.make_node("Tanh", ["lg"], ["t"], name="tanh"),
         helper.make_node("Erf", ["t"], ["er"], name="erf"),
         helper.make_node("Sigmoid", ["er"], ["sg"], name="sigmoid"),
         helper.make_node("Cos", ["sg"], ["c"], name="cos"),
         helper.make_node("Sin", ["c"], ["y"], name="sin")]
    return model(n, [vi("x", F, ["B", 4, 8])], [vi("y", F, ["B", 4, 8])],
                 [init("b", np.ones(8, np.float32)), init("two", np.float32(2.0))])


def case_compare():
    n = [helper.make_node("Equal", ["x", "y"], ["eq"], name="eq"),
         helper.make_node("Less", ["x", "y"], ["lt"], name="lt"),
         helper.make_node("Where", ["lt", "x", "y"], ["w"], name="where"),
         helper.make_node("Cast", ["eq"], ["c"], to=F, name="cast")]
    return model(n, [vi("x", F, [2, 3]), vi("y", F, [1, 3])],
                 [vi("w", F, [2, 3]), vi("c", F, [2, 3])])


def case_matmul():
    n = [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
         helper.make_node("Gemm", ["a", "b", "c"], ["g"], transB=1, alpha=0.5, name="gemm")]
    return model(n, [vi("x", F, ["B", "T", 16]), vi("a", F, [3, 5]), vi("b", F, [4, 5]),
                     vi("c", F, [4])],
                 [vi("h", F, ["B", "T", 8]), vi("g", F, [3, 4])],
                 [init("w", np.random.rand(16, 8).astype(np.float32))])


def case_shape_reshape():
    # The torch-export pattern: Shape -> Gather -> Unsqueeze -> Concat -> Reshape.
    n = [helper.make_node("Shape", ["x"], ["s"], name="shape"),
         helper.make_node("Gather", ["s", "i0"], ["b"], axis=0, name="g0"),
         helper.make_node("Gather", ["s", "i1"], ["t"], axis=0, name="g1"),
         helper.make_node("Unsqueeze", ["b", "ax0"], ["bu"], name="u0"),
         helper.make_node("Unsqueeze", ["t", "ax0"], ["tu"], name="u1"),
         helper.make_node("Concat", ["bu", "tu", "tail"], ["shp"], axis=0, name="cat"),
         helper.make_node("Reshape", ["x", "shp"], ["y"], name="reshape"),
         helper.make_node("Transpose", ["y"], ["z"], perm=[0, 2, 1, 3], name="tr"),
         helper.make_node("Squeeze", ["one", "ax0"], ["sq"], name="sq"),
         helper.make_node("Flatten", ["z"], ["f"], axis=2, name="flat")]
    return model(n, [vi("x", F, ["B", "T", 128])], [vi("z", F, ["B", 4, "T", 32]),
                                                     vi("f", F, [None, None]),
                                                     vi("sq", F, [3])],
                 [init("i0", np.int64(0)), init("i1", np.int64(1)),
                  init("ax0", np.array([0], np.int64)), init("tail", np.array([4, 32], np.int64)),
                  init("one", np.ones((1, 3), np.float32))])


def case_slicing():
    n = [helper.make_node("Slice", ["x", "st", "en", "ax"], ["s"], name="slice"),
         helper.make_node("Slice", ["x", "st2", "en2", "ax2", "stp"], ["r"], name="rev"),
         helper.make_node("Split", ["x", "sp"], ["a", "b"], axis=2, name="split"),
         helper.make_node("Concat", ["b", "a"], ["c"], axis=2, name="cat"),
         helper.make_node("Expand", ["v", "eshape"], ["e"], name="expand"),
         helper.make_node("Unsqueeze", ["e", "ax0"], ["u"], name="unsq"),
         helper.make_node("Gather", ["x", "idx"], ["g"], axis=1, name="gather")]
    return model(n, [vi("x", F, [2, 6, 8]), vi("v", F, [1, 8])],
                 [vi("s", F, [2, 4, 8]), vi("r", F, [2, 6, 8]), vi("c", F, [2, 6, 8]),
                  vi("u", F, [1, 3, 8]), vi("g", F, [2, 2, 3, 8])],
                 [init("st", np.array([1], np.int64)), init("en", np.array([-1], np.int64)),
                  init("ax", np.array([1], np.int64)),
                  init("st2", np.array([-1], np.int64)),
                  init("en2", np.array([np.iinfo(np.int64).min], np.int64)),
                  init("ax2", np.array([2], np.int64)), init("stp", np.array([-1], np.int64)),
                  init("sp", np.array([3, 5], np.int64)), init("eshape", np.array([3, 8], np.int64)),
                  init("ax0", np.array([0], np.int64)),
                  init("idx", np.array([[0, -1, 2], [1, 1, 1]], np.int64))])


def case_reductions():
    n = [helper.make_node("ReduceMean", ["x"], ["m"], axes=[-1], keepdims=1, name="mean"),
         helper.make_node("ReduceSum", ["x", "ax"], ["s"], keepdims=0, name="sum"),
         helper.make_node("ReduceMax", ["x"], ["mx"], axes=[1], keepdims=0, name="max"),
         helper.make_node("Softmax", ["x"], ["sm"], axis=-1, name="softmax"),
         helper.make_node("LogSoftmax", ["x"], ["lsm"], axis=1, name="logsoftmax"),
         helper.make_node("CumSum", ["x", "cax"], ["cs"], name="cumsum"),
         helper.make_node("LayerNormalization", ["x", "g", "bb"], ["ln"], axis=-1,
                          epsilon=1e-5, name="ln")]
    return model(n, [vi("x", F, ["B", 4, 8])],
                 [vi("m", F, ["B", 4, 1]), vi("s", F, ["B", 8]), vi("mx", F, ["B", 8]),
                  vi("sm", F, ["B", 4, 8]), vi("lsm", F, ["B", 4, 8]), vi("cs", F, ["B", 4, 8]),
                  vi("ln", F, ["B", 4, 8])],
                 [init("ax", np.array([1], np.int64)), init("cax", np.int64(1)),
                  init("g", np.ones(8, np.float32)), init("bb", np.zeros(8, np.float32))])


def case_generators():
    # Causal mask construction as torch exports it.
    n = [helper.make_node("Range", ["zero", "len", "one"], ["r"], name="range"),
         helper.make_node("ConstantOfShape", ["shp"], ["cs"],
                          value=numpy_helper.from_array(np.array([1.0], np.float32)), name="cos"),
         helper.make_node("Trilu", ["cs"], ["tri"], upper=0, name="trilu"),
         helper.make_node("Constant", [], ["k"], value_ints=[2, 3], name="const"),
         helper.make_node("Identity", ["k"], ["kid"], name="id")]
    return model(n, [], [vi("r", I64, [5]), vi("tri", F, [4, 4]), vi("kid", I64, [2])],
                 [init("zero", np.int64(0)), init("len", np.int64(5)), init("one", np.int64(1)),
                  init("shp", np.array([4, 4], np.int64))])


def case_functions():
    # A model-local function that is not photon: inlined.
    fn = helper.make_function("mylib", "Scale2", ["x"], ["y"],
                              [helper.make_node("Add", ["x", "x"], ["y"])],
                              [helper.make_opsetid("", 17)])
    n = [helper.make_node("Scale2", ["x"], ["y"], domain="mylib", name="call")]
    return model(n, [vi("x", F, [4])], [vi("y", F, [4])], functions=[fn],
                 extra_opsets=[("mylib", 1)])


def case_function_constants():
    # Two functions whose bodies both name a large Constant "c" (different values): the
    # blob must keep both, under distinct names.
    fns = []
    for name, val in (("A", 1.0), ("B", 2.0)):
        c = helper.make_node("Constant", [], ["c"],
                             value=numpy_helper.from_array(np.full(300, val, np.float32)))
        fns.append(helper.make_function("mylib", name, ["x"], ["y"],
                                        [c, helper.make_node("Add", ["x", "c"], ["y"])],
                                        [helper.make_opsetid("", 17)]))
    n = [helper.make_node("A", ["x"], ["a"], domain="mylib", name="ca"),
         helper.make_node("B", ["x"], ["b"], domain="mylib", name="cb"),
         helper.make_node("A", ["x"], ["a2"], domain="mylib", name="ca2")]
    return model(n, [vi("x", F, [300])], [vi("a", F, [300]), vi("b", F, [300]),
                                          vi("a2", F, [300])],
                 functions=fns, extra_opsets=[("mylib", 1)])


def case_weights():
    n = [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm"),
         helper.make_node("Add", ["y", "bias"], ["z"], name="add")]
    return model(n, [vi("x", F, [2, 4])], [vi("z", F, [2, 3])],
                 [init("w", np.arange(12, dtype=np.float32).reshape(4, 3)),
                  init("bias", np.array([1, 2, 3], np.float32))])


def case_external(out):
    m = case_weights()
    onnx.save_model(m, out, save_as_external_data=True, all_tensors_to_one_file=True,
                    location=os.path.basename(out) + ".data", size_threshold=0)
    return None


def case_missing_external(out):
    case_external(out)
    os.remove(out + ".data")
    return None


def case_truncated_external(out):
    case_external(out)
    with open(out + ".data", "r+b") as f:
        f.truncate(20)
    return None


# ---- bad models for the diagnostics tests ----

def case_unsupported():
    n = [helper.make_node("Add", ["x", "x"], ["a"], name="ok"),
         helper.make_node("NonMaxSuppression", ["a", "a"], ["b"], name="nms"),
         helper.make_node("Einsum", ["b"], ["c"], equation="ii->i", name="einsum"),
         helper.make_node("FusedThing", ["c"], ["y"], domain="com.microsoft", name="fused")]
    return model(n, [vi("x", F, [4])], [vi("y", F, [4])], extra_opsets=[("com.microsoft", 1)])


def case_opset_too_new():
    return model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", F, [4])],
                 [vi("y", F, [4])], opset=19)


def case_ir_too_new():
    return model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", F, [4])],
                 [vi("y", F, [4])], ir=9)


def case_cycle():
    n = [helper.make_node("Add", ["x", "b"], ["a"], name="first"),
         helper.make_node("Relu", ["a"], ["b"], name="second")]
    return model(n, [vi("x", F, [4])], [vi("b", F, [4])])


def case_undefined_input():
    n = [helper.make_node("Add", ["x", "ghost"], ["y"], name="add")]
    return model(n, [vi("x", F, [4])], [vi("y", F, [4])])


def case_shape_mismatch():
    n = [helper.make_node("Add", ["x", "z"], ["y"], name="add")]
    return model(n, [vi("x", F, [2, 3]), vi("z", F, [2, 4])], [vi("y", F, [2, 3])])


def case_declared_mismatch():
    n = [helper.make_node("Relu", ["x"], ["y"], name="relu")]
    return model(n, [vi("x", F, [2, 3])], [vi("y", F, [2, 5])])


def case_dtype_mismatch():
    n = [helper.make_node("Add", ["x", "i"], ["y"], name="add")]
    return model(n, [vi("x", F, [4]), vi("i", I64, [4])], [vi("y", F, [4])])


def case_bad_raw_data():
    t = init("w", np.ones((4, 4), np.float32))
    t.raw_data = t.raw_data[:20]
    n = [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    return model(n, [vi("x", F, [2, 4])], [vi("y", F, [2, 4])], [t])


def main():
    case, out = sys.argv[1], sys.argv[2]
    fn = globals()["case_" + case]
    if fn.__code__.co_argcount == 1:
        fn(out)
        return
    m = fn()
    if case in ("cycle",):
        with open(out, "wb") as f:
            f.write(m.SerializeToString())
        return
    onnx.save_model(m, out)


if __name__ == "__main__":
    main()
