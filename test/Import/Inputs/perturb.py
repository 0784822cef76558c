#!/usr/bin/env python3
"""Changes a decoder's ONNX graph after its token embedding Gather without changing a value,
so that the importer's first stage no longer recognizes it:

    perturb.py MODE IN.onnx OUT.onnx

  zero-add       e = e_raw + 0 (a 1-element initializer): every token's row on its own;
                 the rewrite patterns still raise the structure (photon-raise-structure).
  seq-mean-zero  e = e_raw + 0 * ReduceMean(e_raw, axis 1): the same values, but through a
                 reduction over the sequence, which no KV-cached stage can compute row by
                 row: the model stays forward-only.
  position-zero  e = e_raw + 0 * Cast(Range(0, T)) (positions as values): position-dependent.
  positions-plus-one  (a GPT-2-style model, values change) learned positions read at
                 Range(0, T) + 1: positions 1 .. T, not the model's 0 .. T-1.
  embedding-axis1  the token embedding stored transposed ([D, V]) and read by Gather along
                 axis 1, then transposed to [B, T, D]: the same values, but no row gather.
  mlp-no-norm    (the zoo's LLaMA, values change) layer 0's MLP reads the residual stream
                 without its norm: not a residual block.
The zoo's Block Transformer (values change; each almost the structure):
  shift-drops-first   the shift keeps the encoder's units but the first (x[:, 1:]).
  shift-appends-start the start latent after the previous units instead of before them.
  tail-rows-early     the LM head reads window rows R-2 .. R+C-3 instead of R-1 .. R+C-2.
The zoo's PHOTON L = 2 (values change):
  rollout-steps-swapped   the latent decoder's outputs of steps 0 and 1 joined in the
                      other order.
  rollout-row-repeated    step 2's window appends step 0's row again instead of step 1's.
The zoo's PHOTON L = 3 (values change):
  rope-table-scaled   the cosine table initializer times 1.01: no longer cos(m theta_j),
                      so no photon.rope, and the encoders read it by position.
The zoo's LLaMA with past (llama_past; its values with an empty past unchanged):
  past-after-new      layer 0's present keys are the new keys, then the past ones.
The zoo's Block Transformer (continued):
  heads-unordered     encoder layer 0 merges [B, M, H, hd] into [B*H, M, hd] without moving
                      the heads before the positions: each "head" of the attention mixes
                      positions and heads, so it is no H-head attention over the batch.
"""
import sys

import numpy as np
import onnx
import onnx.helper as h
import onnx.numpy_helper as nh

mode, src, dst = sys.argv[1:4]
m = onnx.load(src)
g = m.graph
if mode == "positions-plus-one":
    r = next(x for x in g.node if x.op_type == "Range")
    out = r.output[0]
    for x in g.node:
        for k, i in enumerate(x.input):
            if i == out:
                x.input[k] = out + "_plus1"
    g.initializer.append(nh.from_array(np.array(1, np.int64), "pos_one"))
    g.node.insert(list(g.node).index(r) + 1,
                  h.make_node("Add", [out, "pos_one"], [out + "_plus1"], name="positions_plus_one"))
    onnx.save(m, dst)
    sys.exit(0)
if mode == "embedding-axis1":
    n = next(x for x in g.node if x.op_type == "Gather" and x.input[1] == g.input[0].name)
    init = next(t for t in g.initializer if t.name == n.input[0])
    wt = nh.to_array(init).T.copy()
    g.initializer.append(nh.from_array(wt, init.name + "_t"))
    out = n.output[0]
    n.input[0] = init.name + "_t"
    n.output[0] = out + "_dbt"
    del n.attribute[:]
    n.attribute.append(h.make_attribute("axis", 1))
    g.node.insert(list(g.node).index(n) + 1,
                  h.make_node("Transpose", [out + "_dbt"], [out], perm=[1, 2, 0], name="embedding_t"))
    onnx.save(m, dst)
    sys.exit(0)
if mode == "mlp-no-norm":
    for x in g.node:
        if x.name in ("/layers.0/mlp/gate_proj/MatMul", "/layers.0/mlp/up_proj/MatMul"):
            x.input[0] = "/layers.0/Add_output_0"
    onnx.save(m, dst)
    sys.exit(0)
def node(name):
    return next(x for x in g.node if x.name == name)


def set_ints(n, k, values, name):
    """Input k of node n becomes a new int64 initializer `name`."""
    g.initializer.append(nh.from_array(np.array(values, np.int64), name))
    n.input[k] = name


if mode == "shift-drops-first":
    s = node("/Slice")                      # data, starts, ends, axes, steps
    set_ints(s, 1, [1], "shift_start1")
    set_ints(s, 2, [np.iinfo(np.int64).max], "shift_end_max")
elif mode == "shift-appends-start":
    c = node("/Concat_3")
    c.input[0], c.input[1] = c.input[1], c.input[0]
elif mode == "tail-rows-early":
    s = node("/Slice_2")
    set_ints(s, 1, [0], "tail_start0")
    set_ints(s, 2, [4], "tail_end4")
elif mode == "heads-unordered":
    for merged, split in (("Reshape_1", "Reshape"), ("Reshape_3", "Reshape_2"),
                          ("Reshape_5", "Reshape_4")):
        node("/bottom.0/layers.0/attn/" + merged).input[0] = \
            "/bottom.0/layers.0/attn/" + split + "_output_0"
elif mode == "rollout-steps-swapped":
    c = node("/Concat_6")
    c.input[0], c.input[1] = c.input[1], c.input[0]
elif mode == "rollout-row-repeated":
    node("/Concat_4").input[1] = node("/Slice_1").output[0]
elif mode == "past-after-new":
    c = node("/layers.0/self_attn/Concat_5")
    c.input[0], c.input[1] = c.input[1], c.input[0]
elif mode == "rope-table-scaled":
    t = next(x for x in g.initializer if x.name == "rope.cos_cached")
    t.CopyFrom(nh.from_array((nh.to_array(t) * np.float32(1.01)).astype(np.float32), t.name))
if mode in ("shift-drops-first", "shift-appends-start", "tail-rows-early", "heads-unordered",
            "rollout-steps-swapped", "rollout-row-repeated", "rope-table-scaled",
            "past-after-new"):
    onnx.save(m, dst)
    sys.exit(0)
tok = g.input[0].name
n = next(x for x in g.node if x.op_type == "Gather" and x.input[1] == tok)
o = n.output[0]
raw = o + "_raw"
n.output[0] = raw
g.initializer.append(nh.from_array(np.zeros(1, np.float32), "zero_pad"))
at = list(g.node).index(n) + 1
if mode == "zero-add":
    new = [h.make_node("Add", [raw, "zero_pad"], [o], name="zero_add")]
elif mode == "seq-mean-zero":
    new = [h.make_node("ReduceMean", [raw], ["seq_mean"], axes=[1], keepdims=1, name="seq_mean"),
           h.make_node("Mul", ["seq_mean", "zero_pad"], ["seq_mean0"], name="seq_mean_zero"),
           h.make_node("Add", [raw, "seq_mean0"], [o], name="zero_add")]
elif mode == "position-zero":
    g.initializer.extend([nh.from_array(np.array(0, np.int64), "pz_0"),
                          nh.from_array(np.array(1, np.int64), "pz_1"),
                          nh.from_array(np.array([1], np.int64), "pz_ax")])
    new = [h.make_node("Shape", [tok], ["pz_shape"], name="pz_shape"),
           h.make_node("Gather", ["pz_shape", "pz_1"], ["pz_t"], axis=0, name="pz_t"),
           h.make_node("Range", ["pz_0", "pz_t", "pz_1"], ["pz_pos"], name="pz_range"),
           h.make_node("Cast", ["pz_pos"], ["pz_posf"], to=onnx.TensorProto.FLOAT, name="pz_cast"),
           h.make_node("Unsqueeze", ["pz_posf", "pz_ax"], ["pz_col"], name="pz_col"),
           h.make_node("Mul", ["pz_col", "zero_pad"], ["pz_zero"], name="position_zero"),
           h.make_node("Add", [raw, "pz_zero"], [o], name="zero_add")]
else:
    sys.exit("unknown mode " + mode)
for k, node in enumerate(new):
    g.node.insert(at + k, node)
onnx.save(m, dst)
