#!/usr/bin/env python3
"""Small ONNX graphs, one local computation each, in the spellings exporters write, and
their near misses, for photon-raise-local (test/Import/raise-local.test).

    gen_local.py CASE out.onnx

No photon metadata and no token input: the structure is never recognized, so the graph
imports to upstream ops and `photon-import --raise-local` runs the local patterns on it.
Input x is float [B, T, 8] with dynamic B and T; weights are seeded random initializers.
"""
import sys

import numpy as np
import onnx
import onnx.helper as h
import onnx.numpy_helper as nh
from onnx import TensorProto as T

D, F = 8, 12
rng = np.random.default_rng(0)


class G:
    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def init(self, name, arr):
        self.inits.append(nh.from_array(np.asarray(arr, np.float32), name))
        return name

    def init_i64(self, name, v):
        self.inits.append(nh.from_array(np.asarray(v, np.int64), name))
        return name

    def c(self, v):
        self.n += 1
        return self.init(f"c{self.n}", np.array(v, np.float32))

    def op(self, op, *ins, **attrs):
        self.n += 1
        out = f"{op.lower()}{self.n}"
        self.nodes.append(h.make_node(op, list(ins), [out], name=f"{op}_{self.n}", **attrs))
        return out

    def mean(self, v, axis=-1):
        return self.op("ReduceMean", v, axes=[axis], keepdims=1)

    def save(self, y, path):
        x = h.make_tensor_value_info("x", T.FLOAT, ["B", "T", D])
        out = h.make_tensor_value_info(y, T.FLOAT, ["B", "T", None])
        g = h.make_graph(self.nodes, "local", [x], [out], self.inits)
        m = h.make_model(g, opset_imports=[h.make_opsetid("", 17)])
        m.ir_version = 8
        onnx.checker.check_model(m)
        onnx.save(m, path)


def rms(g, x, spelling="pow-div", eps=1e-5, sq_of=None, sum_div=None):
    s = sq_of or x
    sq = g.op("Pow", s, g.c(2.0)) if spelling != "mul-recip" else g.op("Mul", s, s)
    if sum_div:  # ReduceSum with keepdims, then a Div by the axis size
        m = g.op("Div", g.op("ReduceSum", sq, g.init_i64(f"axes{g.n}", [-1]), keepdims=1),
                 g.c(sum_div))
    else:
        m = g.mean(sq)
    a = g.op("Add", m, g.c(eps))
    if spelling == "pow-div":
        n = g.op("Div", x, g.op("Sqrt", a))
    elif spelling == "mul-recip":
        n = g.op("Mul", x, g.op("Reciprocal", g.op("Sqrt", a)))
    elif spelling == "div-one":
        n = g.op("Mul", g.op("Div", g.c(1.0), g.op("Sqrt", a)), x)
    elif spelling == "pow-half":
        n = g.op("Mul", x, g.op("Pow", a, g.c(-0.5)))
    return g.op("Mul", g.init("gain", rng.standard_normal(D)), n)


def layer_norm(g, x, bias=True):
    d = g.op("Sub", x, g.mean(x))
    n = g.op("Div", d, g.op("Sqrt", g.op("Add", g.mean(g.op("Pow", d, g.c(2.0))), g.c(1e-5))))
    y = g.op("Mul", n, g.init("ln_w", rng.standard_normal(D)))
    return g.op("Add", y, g.init("ln_b", rng.standard_normal(D))) if bias else y


def gelu_erf(g, x, k=1.4142135):
    e = g.op("Erf", g.op("Div", x, g.c(k)))
    return g.op("Mul", g.op("Mul", x, g.op("Add", e, g.c(1.0))), g.c(0.5))


def gelu_tanh(g, x, k=0.044715):
    inner = g.op("Mul", g.op("Add", x, g.op("Mul", g.op("Pow", x, g.c(3.0)), g.c(k))),
                 g.c(0.7978846))
    return g.op("Mul", g.op("Mul", g.c(0.5), x), g.op("Add", g.c(1.0), g.op("Tanh", inner)))


def linear(g, x, name, n_in, n_out, transpose=False, bias=False):
    if transpose:  # torch without constant folding: MatMul(x, Transpose(W[out, in]))
        w = g.op("Transpose", g.init(name, rng.standard_normal((n_out, n_in)) / 3), perm=[1, 0])
    else:          # a pre-transposed [in, out] initializer
        w = g.init(name, rng.standard_normal((n_in, n_out)) / 3)
    y = g.op("MatMul", x, w)
    return g.op("Add", y, g.init(name + "_b", rng.standard_normal(n_out))) if bias else y


def swiglu(g, x, silu="sigmoid", same_x=True):
    gate = linear(g, x, "w_gate", D, F)
    up = linear(g, x if same_x else g.op("Neg", x), "w_up", D, F)
    if silu == "sigmoid":
        s = g.op("Mul", gate, g.op("Sigmoid", gate))
    else:  # x * sigmoid(2x): not SiLU
        s = g.op("Mul", gate, g.op("Sigmoid", g.op("Mul", gate, g.c(2.0))))
    return linear(g, g.op("Mul", s, up), "w_down", F, D)


def build(case):
    g = G()
    x = "x"
    y = {
        # Positive spellings.
        "rms-pow-div": lambda: rms(g, x, "pow-div"),
        "rms-mul-recip": lambda: rms(g, x, "mul-recip"),
        "rms-div-one": lambda: rms(g, x, "div-one"),
        "rms-pow-half": lambda: rms(g, x, "pow-half"),
        "rms-sum-div": lambda: rms(g, x, sum_div=float(D)),
        "layer-norm": lambda: layer_norm(g, x),
        "gelu-erf": lambda: gelu_erf(g, linear(g, x, "w_fc", D, F, bias=True)),
        "gelu-tanh": lambda: gelu_tanh(g, x),
        "swiglu": lambda: swiglu(g, rms(g, x)),
        "linear-bias": lambda: linear(g, x, "w", D, F, bias=True),
        "linear-transpose": lambda: linear(g, x, "w", D, F, transpose=True),
        "layer-norm-op": lambda: g.op("LayerNormalization", x, g.init("ln_w", rng.standard_normal(D)),
                                      g.init("ln_b", rng.standard_normal(D)), axis=-1, epsilon=1e-5),
        # Gemm(transB = 1) in the 2-D view GPT-2's Conv1D and torch's Linear use.
        "gemm": lambda: g.op("Reshape", g.op(
            "Gemm", g.op("Reshape", x, g.init_i64("flat", [-1, D])),
            g.init("w", rng.standard_normal((F, D)) / 3), g.init("w_b", rng.standard_normal(F)),
            transB=1), g.init_i64("back", [0, -1, F])),
        # Near misses.
        "rms-centred": lambda: rms(g, g.op("Sub", x, g.mean(x))),
        "rms-other-x": lambda: rms(g, x, sq_of=g.op("Neg", x)),
        "rms-sum-wrong-div": lambda: rms(g, x, sum_div=float(D - 1)),
        "rms-wrong-axis": lambda: g.op("Mul", g.init("gain", rng.standard_normal(D)), g.op(
            "Div", x, g.op("Sqrt", g.op("Add", g.mean(g.op("Pow", x, g.c(2.0)), axis=1),
                                        g.c(1e-5))))),
        "layer-norm-no-centring": lambda: g.op(
            "Add", rms(g, x), g.init("ln_b", rng.standard_normal(D))),
        "gelu-wrong-constant": lambda: gelu_erf(g, x, k=1.5),
        "gelu-tanh-wrong-constant": lambda: gelu_tanh(g, x, k=0.04),
        "swiglu-not-silu": lambda: swiglu(g, x, silu="sigmoid2x"),
        "swiglu-other-x": lambda: swiglu(g, x, same_x=False),
        "matmul-activations": lambda: g.op("MatMul", x, g.op("Transpose", x, perm=[0, 2, 1])),
    }[case]()
    return g, y


if __name__ == "__main__":
    g, y = build(sys.argv[1])
    g.save(y, sys.argv[2])
