"""Small GPT-2-style decoder-only ONNX graphs, written node by node with onnx.helper (no
torch, no metadata), for the structure recognizer's tests: each VARIANT is a spelling the
recognizer must accept or a near miss it must refuse.

    gpt2_spellings.py VARIANT OUT_DIR

writes OUT_DIR/model.onnx. Model: vocab 160, width 32, 4 heads of 8, ffn 128, 2 layers,
32 learned positions, LayerNorm eps 1e-5, random seeded weights (logits std about 3),
input `tokens` int64 [batch, seq], output `logits` [batch, seq, 160].

VARIANT (accepted):
  base      opset 13; LayerNorm decomposed: ReduceMean, Sub, Pow(2), ReduceMean, Add eps,
            Sqrt, Div, Mul gain, Add bias; q / k / v separate MatMul by [in, out]
            initializers + Add bias; attention output Gemm(transB = 1) with bias in a 2-D
            view (Reshape around it); Div by sqrt(hd) after QK^T; Where(bool tril slice,
            scores, -1e9) mask; GELU tanh form (Pow 3, Tanh); MLP MatMul + Add; positions
            Gather(wpe, Unsqueeze(Range(0, T, 1))); untied head
  fused     opset 13; LayerNorm as Mul(d, d) and Pow(var + eps, -0.5), gain and bias first;
            fused QKV Gemm (weight [in, 3D], bias) in a 2-D view then Split([D, D, D]);
            scale as Mul on q before QK^T; GELU erf form (Div sqrt 2, Erf)
  lnop      opset 17; LayerNormalization ops; additive Trilu(-inf) mask; GELU erf form with
            Mul by 1/sqrt 2; positions Range cast from float
VARIANT (refused):
  rms_ln2   base, but layer 0's MLP norm is an RMSNorm (gain and bias, no mean-centring)
  gelu_const base, but the GELU's cubic coefficient is 0.045 instead of 0.044715
  pos_from1 base, but the positions are Range(1, T + 1, 1)
  q_nobias  base, but the query projection of layer 1 has no bias
"""
import math
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

variant, out_dir = sys.argv[1:3]
V, D, H, HD, F, P, L, EPS = 160, 32, 4, 8, 128, 32, 2, 1e-5
opset = 17 if variant == "lnop" else 13
rng = np.random.default_rng(7)
nodes, inits = [], []
_n = [0]


def name(p):
    _n[0] += 1
    return "%s_%d" % (p, _n[0])


def init(nm, arr):
    inits.append(numpy_helper.from_array(np.asarray(arr), nm))
    return nm


def const(val, dtype=np.float32):
    nm = name("c")
    nodes.append(helper.make_node("Constant", [], [nm], name=nm,
                                  value=numpy_helper.from_array(np.asarray(val, dtype))))
    return nm


def op(t, ins, nm=None, **attrs):
    nm = nm or name(t)
    nodes.append(helper.make_node(t, ins, [nm], name=nm, **attrs))
    return nm


def axes_op(t, x, axes):
    # Unsqueeze / Squeeze take axes as an input from opset 13.
    return op(t, [x, const(axes, np.int64)])


def rnd(*shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def layer_norm(x, w, b, style):
    if style == "op":
        return op("LayerNormalization", [x, w, b], axis=-1, epsilon=EPS)
    mean = op("ReduceMean", [x], axes=[-1])
    d = op("Sub", [x, mean])
    if style == "pow":
        var = op("ReduceMean", [op("Pow", [d, const(2.0)])], axes=[-1])
        n = op("Div", [d, op("Sqrt", [op("Add", [var, const(EPS)])])])
        return op("Add", [op("Mul", [n, w]), b])
    var = op("ReduceMean", [op("Mul", [d, d])], axes=[-1])
    n = op("Mul", [d, op("Pow", [op("Add", [var, const(EPS)]), const(-0.5)])])
    return op("Add", [b, op("Mul", [w, n])])


def rms_norm(x, w, b):
    ms = op("ReduceMean", [op("Pow", [x, const(2.0)])], axes=[-1])
    n = op("Div", [x, op("Sqrt", [op("Add", [ms, const(EPS)])])])
    return op("Add", [op("Mul", [n, w]), b])


def gelu(u, form, cubic=0.044715):
    if form == "tanh":
        inner = op("Add", [u, op("Mul", [const(cubic), op("Pow", [u, const(3.0)])])])
        t = op("Tanh", [op("Mul", [inner, const(math.sqrt(2.0 / math.pi))])])
        return op("Mul", [op("Mul", [u, const(0.5)]), op("Add", [t, const(1.0)])])
    if form == "erf_mul":
        e = op("Erf", [op("Mul", [u, const(1.0 / math.sqrt(2.0))])])
    else:
        e = op("Erf", [op("Div", [u, const(math.sqrt(2.0))])])
    return op("Mul", [op("Mul", [u, op("Add", [e, const(1.0)])]), const(0.5)])


def lead2(x):
    """Shape(x)[:2] (batch, seq) as a 1-D int64."""
    return op("Slice", [op("Shape", [x]), const([0], np.int64), const([2], np.int64)])


def view(x, last):
    return op("Reshape", [x, op("Concat", [lead2(x), const(last, np.int64)], axis=0)])


def flat2(x):
    return op("Reshape", [x, const([-1, D], np.int64)])


def linear_mm(x, pfx, n_in, n_out, bias=True):
    w = init(pfx + ".weight", rnd(n_in, n_out, scale=1 / math.sqrt(n_in)))
    y = op("MatMul", [x, w])
    if bias:
        y = op("Add", [y, init(pfx + ".bias", rnd(n_out, scale=0.1))])
    return y


def linear_gemm(x, pfx, n_in, n_out, out_view):
    """Gemm(transB = 1) with bias on a [-1, n_in] view, viewed back like `out_view`."""
    w = init(pfx + ".weight", rnd(n_out, n_in, scale=1 / math.sqrt(n_in)))
    b = init(pfx + ".bias", rnd(n_out, scale=0.1))
    y = op("Gemm", [flat2(x), w, b], transB=1)
    return op("Reshape", [y, op("Concat", [lead2(out_view), const([n_out], np.int64)], axis=0)])


base = variant in ("base", "rms_ln2", "gelu_const", "pos_from1", "q_nobias")
ln_style = {"fused": "mul", "lnop": "op"}.get(variant, "pow")
gelu_form = {"fused": "erf", "lnop": "erf_mul"}.get(variant, "tanh")

# Embeddings and learned positions.
wte = init("wte", rnd(V, D))
wpe = init("wpe", rnd(P, D, scale=0.5))
T = op("Gather", [op("Shape", ["tokens"]), const(1, np.int64)])
if variant == "lnop":
    Tf = op("Cast", [T], to=TensorProto.FLOAT)
    pos = op("Cast", [op("Range", [const(0.0), Tf, const(1.0)])], to=TensorProto.INT64)
elif variant == "pos_from1":
    one = const(1, np.int64)
    pos = op("Range", [one, op("Add", [T, one]), one])
else:
    pos = op("Range", [const(0, np.int64), T, const(1, np.int64)])
x = op("Add", [op("Gather", [wte, "tokens"]), op("Gather", [wpe, axes_op("Unsqueeze", pos, [0])])])
tril = init("causal", np.tril(np.ones((P, P), bool)))

for i in range(L):
    pfx = "blocks.%d." % i
    ones = lambda nm: init(pfx + nm, (1 + rnd(D, scale=0.1)))  # noqa: E731
    n1 = layer_norm(x, ones("norm_a.g"), init(pfx + "norm_a.b", rnd(D, scale=0.1)), ln_style)
    if variant == "fused":
        qkv = linear_gemm(n1, pfx + "qkv", D, 3 * D, n1)
        s = op("Split", [qkv, const([D, D, D], np.int64)], axis=2)
        nodes[-1].output[:] = [s + "_q", s + "_k", s + "_v"]
        q, k, v = s + "_q", s + "_k", s + "_v"
    else:
        q = linear_mm(n1, pfx + "q", D, D, bias=not (variant == "q_nobias" and i == 1))
        k = linear_mm(n1, pfx + "k", D, D)
        v = linear_mm(n1, pfx + "v", D, D)
    qh = op("Transpose", [view(q, [H, HD])], perm=[0, 2, 1, 3])
    kt = op("Transpose", [view(k, [H, HD])], perm=[0, 2, 3, 1])
    vh = op("Transpose", [view(v, [H, HD])], perm=[0, 2, 1, 3])
    if variant == "fused":
        qh = op("Mul", [qh, const(1.0 / math.sqrt(HD))])
        sc = op("MatMul", [qh, kt])
    else:
        sc = op("Div", [op("MatMul", [qh, kt]), const(math.sqrt(HD))])
    if variant == "lnop":
        TT = op("Concat", [axes_op("Unsqueeze", T, [0]), axes_op("Unsqueeze", T, [0])], axis=0)
        full = op("ConstantOfShape", [TT], value=numpy_helper.from_array(np.array([-np.inf], np.float32)))
        sc = op("Add", [sc, op("Trilu", [full, const(1, np.int64)], upper=1)])
    else:
        TT = op("Concat", [axes_op("Unsqueeze", T, [0]), axes_op("Unsqueeze", T, [0])], axis=0)
        m = op("Slice", [tril, const([0, 0], np.int64), TT, const([0, 1], np.int64)])
        sc = op("Where", [m, sc, const(-1e9)])
    a = op("MatMul", [op("Softmax", [sc], axis=-1), vh])
    a = view(op("Transpose", [a], perm=[0, 2, 1, 3]), [D])
    o = linear_gemm(a, pfx + "out", D, D, a)
    x = op("Add", [x, o])
    g2, b2 = ones("norm_b.g"), init(pfx + "norm_b.b", rnd(D, scale=0.1))
    n2 = rms_norm(x, g2, b2) if (variant == "rms_ln2" and i == 0) else layer_norm(x, g2, b2, ln_style)
    u = linear_mm(n2, pfx + "fc", D, F)
    gl = gelu(u, gelu_form, 0.045 if variant == "gelu_const" else 0.044715)
    x = op("Add", [x, linear_mm(gl, pfx + "proj", F, D)])

nf = layer_norm(x, init("norm_f.g", 1 + rnd(D, scale=0.1)), init("norm_f.b", rnd(D, scale=0.1)), ln_style)
logits = op("MatMul", [nf, init("unembed", rnd(D, V, scale=1.5 / math.sqrt(D)))], nm="logits")

graph = helper.make_graph(
    nodes, "gpt2_" + variant,
    [helper.make_tensor_value_info("tokens", TensorProto.INT64, ["batch", "seq"])],
    [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "seq", V])],
    inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                          producer_name="gpt2_spellings")
model.ir_version = 8
onnx.checker.check_model(model, full_check=True)
os.makedirs(out_dir, exist_ok=True)
onnx.save(model, os.path.join(out_dir, "model.onnx"))
