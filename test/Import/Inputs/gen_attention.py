#!/usr/bin/env python3
"""Small token models with one causal self-attention each, in the spellings exporters write,
and their near misses, for photon-raise-local's attention patterns
(test/Import/raise-local-attention.test).

    gen_attention.py CASE out.onnx
    gen_attention.py inline-mask[-diag] in.mlir out.mlir

tokens int64 [B, T] (dynamic) -> embedding [T, 32] -> q, k, v linears -> attention over
H = 4 heads of hd = 8 (Hkv = 2 for the GQA cases) -> logits [B, T, 64] through a head
linear. No metadata, no norms: the structure is never recognized, so the graph imports to
upstream ops and photon-raise-local runs on it. CASE is a '+'-joined list of spellings:

  scale:   div-after (default), mul-after, mul-q, mul-after-mask
  mask:    trilu (default), where (Add of Where(j > i, -1e9, 0) over two Range),
           fill (Where(j > i, finfo.min, scores): a masked fill), const (a Constant
           [32, 32] mask sliced to [T, T])
  softmax: softmax (default), exp-max (Exp(s - ReduceMax) / ReduceSum), exp (no max)
  layout:  kt (default: Transpose(k, [0, 1, 3, 2]) of [B, H, T, hd]), kt-direct
           (Transpose of k [B, T, H, hd] by [0, 2, 3, 1])
  gqa:     (none: H = Hkv = 4), expand (repeat_kv: Unsqueeze, Expand, Reshape),
           bcast (a broadcasting MatMul over [Hkv, G] without a repeat), tile (Tile
           over heads: head h uses kv head h % Hkv, not a grouping)
  rope:    rope (HF rotate-half RoPE on q and k in [B, H, T, hd], theta 10000, the cos /
           sin tables computed from Range, a Constant inv_freq, Concat, Cos, Sin),
           rope-gptj (interleaved: pairs (2j, 2j + 1) rotated by strided Slices, Neg,
           Unsqueeze, Concat and Reshape; the tables' frequencies repeated pairwise),
           rope-halves (the rotate-half rotation on the two halves, tables of hd/2
           columns: Concat(x1 cos - x2 sin, x2 cos + x1 sin))
  near misses: mask-anti (Trilu lower: the future is visible), mask-diag (Trilu k = 0:
           the diagonal masked too), mask-weak (Where(j > i, -1, 0)), softmax-axis
           (Softmax over the queries), scale-v (the scale applied to V, not the scores),
           rope-noneg (rotate_half without its Neg), rope-linear (frequencies in a
           linear, not geometric, progression), rope-offset (positions from 1),
           rope-gptj+rope-mixed (the interleaved rotation with rotate-half tables),
           rope-halves-sign (x1 cos + x2 sin first: the rotation the other way),
           rope-halves-swap (the halves joined in the other order)

The importer writes a constant mask as a photon.weight (its values go to the weights blob,
not the IR). `inline-mask` rewrites the `const` case's imported module with the mask as an
arith.constant, as a .mlir input for photon-opt (inline-mask-diag: with the diagonal
masked too).
"""
import re
import sys

import numpy as np
import onnx
import onnx.helper as h
import onnx.numpy_helper as nh
from onnx import TensorProto as TP

V, D, H, HD = 64, 32, 4, 8
rng = np.random.default_rng(3)


class G:
    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def init(self, name, arr, dtype=np.float32):
        self.inits.append(nh.from_array(np.asarray(arr, dtype), name))
        return name

    def i64(self, v):
        self.n += 1
        return self.init(f"i{self.n}", v, np.int64)

    def c(self, v):
        self.n += 1
        out = f"c{self.n}"
        self.nodes.append(h.make_node("Constant", [], [out], value=nh.from_array(
            np.asarray(v, np.float32), out)))
        return out

    def op(self, op, *ins, **attrs):
        self.n += 1
        out = f"{op.lower()}{self.n}"
        self.nodes.append(h.make_node(op, list(ins), [out], name=f"{op}_{self.n}", **attrs))
        return out


def build(spec):
    s = set(spec.split("+"))
    g = G()
    hkv = 2 if s & {"expand", "bcast", "tile"} else H
    grp = H // hkv
    x = g.op("Gather", g.init("embed", rng.standard_normal((V, D))), "tokens")
    T = g.op("Unsqueeze", g.op("Gather", g.op("Shape", "tokens"), g.i64(1), axis=0), g.i64([0]))

    def proj(name, heads):
        w = g.init(name, rng.standard_normal((D, heads * HD)) / np.sqrt(D) * 2)
        y = g.op("Reshape", g.op("MatMul", x, w), g.i64([0, 0, heads, HD]))  # [B, T, h, hd]
        return y

    q4, k4, v4 = proj("wq", H), proj("wk", hkv), proj("wv", hkv)
    q = g.op("Transpose", q4, perm=[0, 2, 1, 3])
    k = g.op("Transpose", k4, perm=[0, 2, 1, 3])
    v = g.op("Transpose", v4, perm=[0, 2, 1, 3])
    halves = s & {"rope-halves", "rope-halves-sign", "rope-halves-swap"}
    if s & {"rope", "rope-noneg", "rope-linear", "rope-offset", "rope-gptj"} or halves:
        half = HD // 2
        if "rope-linear" in s:
            inv = (1.0 - np.arange(half) / half).astype(np.float32)
        else:
            inv = (1.0 / 10000.0 ** (np.arange(0, HD, 2) / HD)).astype(np.float32)
        start = 1 if "rope-offset" in s else 0
        r = g.op("Range", g.i64(start), g.op("Add", g.op("Squeeze", T, g.i64([0])), g.i64(start)),
                 g.i64(1))
        pos = g.op("Unsqueeze", g.op("Cast", r, to=TP.FLOAT), g.i64([1]))
        fr = g.op("Mul", pos, g.c(inv[None, :]))
        if halves:
            emb = fr
        elif "rope-gptj" in s and "rope-mixed" not in s:
            u = g.op("Unsqueeze", fr, g.i64([-1]))
            emb = g.op("Reshape", g.op("Concat", u, u, axis=-1), g.i64([-1, HD]))
        else:
            emb = g.op("Concat", fr, fr, axis=-1)
        cos, sin = g.op("Cos", emb), g.op("Sin", emb)

        def rope(t):
            if halves:
                x1 = g.op("Slice", t, g.i64([0]), g.i64([half]), g.i64([3]))
                x2 = g.op("Slice", t, g.i64([half]), g.i64([HD]), g.i64([3]))
                first = g.op("Add" if "rope-halves-sign" in s else "Sub",
                             g.op("Mul", x1, cos), g.op("Mul", x2, sin))
                second = g.op("Add", g.op("Mul", x2, cos), g.op("Mul", x1, sin))
                if "rope-halves-swap" in s:
                    first, second = second, first
                return g.op("Concat", first, second, axis=-1)
            if "rope-gptj" in s:
                ev = g.op("Slice", t, g.i64([0]), g.i64([HD]), g.i64([3]), g.i64([2]))
                od = g.op("Slice", t, g.i64([1]), g.i64([HD]), g.i64([3]), g.i64([2]))
                pair = g.op("Concat", g.op("Unsqueeze", g.op("Neg", od), g.i64([-1])),
                            g.op("Unsqueeze", ev, g.i64([-1])), axis=-1)
                rot = g.op("Reshape", pair, g.i64([0, 0, -1, HD]))
                return g.op("Add", g.op("Mul", t, cos), g.op("Mul", rot, sin))
            x1 = g.op("Slice", t, g.i64([0]), g.i64([half]), g.i64([3]))
            x2 = g.op("Slice", t, g.i64([half]), g.i64([HD]), g.i64([3]))
            rot = g.op("Concat", x2 if "rope-noneg" in s else g.op("Neg", x2), x1, axis=-1)
            return g.op("Add", g.op("Mul", t, cos), g.op("Mul", rot, sin))
        q, k = rope(q), rope(k)
    if "scale-v" in s:
        v = g.op("Mul", v, g.c(1 / np.sqrt(HD)))
    if "expand" in s:
        def rep(t):
            e = g.op("Expand", g.op("Unsqueeze", t, g.i64([2])), g.i64([1, 1, grp, 1, 1]))
            return g.op("Reshape", e, g.i64([0, H, -1, HD]))
        k, v = rep(k), rep(v)
    if "tile" in s:
        k, v = g.op("Tile", k, g.i64([1, grp, 1, 1])), g.op("Tile", v, g.i64([1, grp, 1, 1]))
    if "bcast" in s:
        q = g.op("Reshape", q, g.i64([0, hkv, grp, -1, HD]))
        k = g.op("Unsqueeze", k, g.i64([2]))
        v = g.op("Unsqueeze", v, g.i64([2]))
    if "mul-q" in s:
        q = g.op("Mul", q, g.c(1 / np.sqrt(HD)))
    if "kt-direct" in s:
        kt = g.op("Transpose", k4, perm=[0, 2, 3, 1])
    else:
        kt = g.op("Transpose", k, perm=[0, 1, 2, 4, 3] if "bcast" in s else [0, 1, 3, 2])
    sc = g.op("MatMul", q, kt)
    if "mul-after" in s:
        sc = g.op("Mul", sc, g.c(1 / np.sqrt(HD)))
    elif not s & {"mul-q", "scale-v", "mul-after-mask"}:
        sc = g.op("Div", sc, g.c(np.sqrt(HD)))

    # The mask over [T, T].
    def positions():
        r = g.op("Range", g.i64(0), g.op("Squeeze", T, g.i64([0])), g.i64(1))
        return g.op("Unsqueeze", r, g.i64([1])), g.op("Unsqueeze", r, g.i64([0]))

    if "where" in s or "mask-weak" in s:
        i, j = positions()
        fill = -1.0 if "mask-weak" in s else -1e9
        sc = g.op("Add", sc, g.op("Where", g.op("Greater", j, i), g.c(fill), g.c(0.0)))
    elif "fill" in s:
        i, j = positions()
        sc = g.op("Where", g.op("Greater", j, i), g.c(np.finfo(np.float32).min), sc)
    elif "const" in s:
        m = np.triu(np.full((32, 32), -np.inf, np.float32), 1)
        cm = g.op("Slice", g.c(m), g.i64([0, 0]), g.op("Concat", T, T, axis=0), g.i64([0, 1]))
        sc = g.op("Add", sc, cm)
    else:
        tt = g.op("Concat", T, T, axis=0)
        full = g.op("ConstantOfShape", tt, value=nh.from_array(np.array([-np.inf], np.float32)))
        if "mask-anti" in s:
            tri = g.op("Trilu", full, g.i64(-1), upper=0)
        else:
            tri = g.op("Trilu", full, g.i64(0 if "mask-diag" in s else 1), upper=1)
        sc = g.op("Add", sc, tri)
    if "mul-after-mask" in s:
        sc = g.op("Mul", sc, g.c(1 / np.sqrt(HD)))

    if "exp-max" in s or "exp" in s:
        z = g.op("Sub", sc, g.op("ReduceMax", sc, axes=[-1], keepdims=1)) if "exp-max" in s else sc
        e = g.op("Exp", z)
        p = g.op("Div", e, g.op("ReduceSum", e, g.i64([-1]), keepdims=1))
    else:
        p = g.op("Softmax", sc, axis=-2 if "softmax-axis" in s else -1)
    o = g.op("MatMul", p, v)
    if "bcast" in s:
        o = g.op("Reshape", o, g.i64([0, H, -1, HD]))
    o = g.op("Reshape", g.op("Transpose", o, perm=[0, 2, 1, 3]), g.i64([0, 0, H * HD]))
    return g, g.op("MatMul", o, g.init("head", rng.standard_normal((H * HD, V)) * 2 / np.sqrt(D)))


def inline_mask(diag, src, dst):
    m = np.triu(np.full((32, 32), -np.inf, np.float32), 0 if diag else 1)
    hexdata = "0x" + m.tobytes().hex().upper()
    text = open(src).read()
    text, n = re.subn(r'photon\.weight "c\d+" : tensor<32x32xf32>',
                      f'arith.constant dense<"{hexdata}"> : tensor<32x32xf32>', text)
    assert n == 1, "expected one 32x32 mask weight"
    open(dst, "w").write(text)


if __name__ == "__main__":
    if sys.argv[1].startswith("inline-mask"):
        inline_mask(sys.argv[1].endswith("-diag"), sys.argv[2], sys.argv[3])
        sys.exit(0)
    g, y = build(sys.argv[1])
    g.nodes.append(h.make_node("Identity", [y], ["logits"]))
    tokens = h.make_tensor_value_info("tokens", TP.INT64, ["B", "T"])
    logits = h.make_tensor_value_info("logits", TP.FLOAT, ["B", "T", V])
    m = h.make_model(h.make_graph(g.nodes, "attn", [tokens], [logits], g.inits),
                     opset_imports=[h.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, sys.argv[2])
