#!/usr/bin/env python3
"""Builds a photon artifact directory (docs/artifact.md) around refmodel.so for a reference
fixture: weights.bin (PHOTONW1) from the initializers of test/fixtures/<name>/model.onnx plus
the refmodel hyper-parameter tensors, and manifest.json from its config.json.

usage: make_artifact.py FIXTURE_DIR OUT_DIR REFMODEL_SO [--block-size 4]
Needs numpy and onnx (the system Python of the reference)."""
import argparse
import json
import os
import shutil
import struct

import numpy as np
import onnx
from onnx import numpy_helper


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def write_blob(path, tensors):
    """tensors: list of (name, np.ndarray f32 or i32)"""
    dt = {np.dtype("float32"): 0, np.dtype("int32"): 3}
    index = b""
    for name, a in tensors:
        nb = name.encode()
        index += struct.pack("<H", len(nb)) + nb + struct.pack("<BB", dt[a.dtype], a.ndim)
        index += b"".join(struct.pack("<q", d) for d in a.shape) + struct.pack("<QQ", 0, a.nbytes)
    align = lambda v: (v + 63) // 64 * 64
    data_off = align(32 + len(index))
    offsets, cur = [], data_off
    for _, a in tensors:
        offsets.append(cur)
        cur = align(cur + a.nbytes)
    # patch offsets
    out_index, pos = bytearray(index), 0
    for (name, a), off in zip(tensors, offsets):
        pos += 2 + len(name.encode()) + 2 + 8 * a.ndim
        out_index[pos:pos + 8] = struct.pack("<Q", off)
        pos += 16
    blob = bytearray(b"PHOTONW1" + struct.pack("<IIQQ", 1, len(tensors), len(out_index), data_off))
    blob += out_index
    blob += b"\0" * (data_off - len(blob))
    for (_, a), off in zip(tensors, offsets):
        blob += b"\0" * (off - len(blob))
        blob += np.ascontiguousarray(a).tobytes()
    blob += b"\0" * (align(len(blob)) - len(blob))
    with open(path, "wb") as f:
        f.write(blob)
    return bytes(blob)


def arg(name, dtype, shape, io=None):
    a = {"name": name, "dtype": dtype, "shape": shape}
    if io:
        a["io"] = io
    return a


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("fixture")
    ap.add_argument("out")
    ap.add_argument("so")
    ap.add_argument("--block-size", type=int, default=4)
    a = ap.parse_args()
    cfg = json.load(open(os.path.join(a.fixture, "config.json")))
    m = onnx.load(os.path.join(a.fixture, "model.onnx"))
    tensors = [(t.name, numpy_helper.to_array(t).astype(np.float32)) for t in m.graph.initializer]
    tensors.append(("refmodel.hparams_i", np.array([cfg["head_dim"], cfg["n_heads"], cfg["n_kv_heads"],
                                                    int(cfg.get("level1_shift", True))], np.int32)))
    tensors.append(("refmodel.hparams_f", np.array([cfg["rope_theta"], cfg["norm_eps"]], np.float32)))
    os.makedirs(a.out, exist_ok=True)
    blob = write_blob(os.path.join(a.out, "weights.bin"), tensors)
    shutil.copyfile(a.so, os.path.join(a.out, "model.so"))

    fam, D, V, bs = cfg["family"], cfg["width"], cfg["vocab"], a.block_size
    unit_bytes = lambda layers: 2 * layers * cfg["n_kv_heads"] * cfg["head_dim"] * 4
    pool = lambda layers: arg("pool", "f32", ["NB", layers, 2, bs, cfg["n_kv_heads"], cfg["head_dim"]], "inout")
    table, lens = arg("table", "i32", ["B", "MB"], "in"), arg("lens", "i32", ["B"], "in")
    w = arg("weights", "i8", ["W"])
    stages, caches, starts = [], [], {}
    model = {"family": fam, "vocab": V, "width": D, "max_context": cfg["context"], "tokenizer": {"kind": "byte"}}
    if fam == "vanilla":
        ly = cfg["layers"]["stack"]
        caches.append({"level": 1, "layers": ly, "kv_heads": cfg["n_kv_heads"], "head_dim": cfg["head_dim"],
                       "dtype": "f32", "block_size": bs, "bytes_per_unit": unit_bytes(ly), "tokens_per_unit": 1,
                       "modes": ["hiergen"]})
        stages.append({"name": "lm_step", "symbol": "photon_lm_step", "args": [
            w, arg("tokens", "i32", ["B", "n"], "in"), pool(ly), table, lens,
            arg("logits", "f32", ["B", "n", V], "out")]})
    else:
        L, C = cfg["levels"], cfg["chunk_sizes"]
        model.update({"levels": L, "chunk_sizes": C, "prefix": cfg["prefix"],
                      "decoder_shift": cfg["level1_shift"], "token_decoder_input": cfg["token_decoder_input"]})
        tpu = 1
        for l in range(1, L + 1):
            tpu *= C[l - 1]
            ly = cfg["layers"][f"enc{l}"]
            caches.append({"level": l, "layers": ly, "kv_heads": cfg["n_kv_heads"], "head_dim": cfg["head_dim"],
                           "dtype": "f32", "block_size": bs, "bytes_per_unit": unit_bytes(ly), "tokens_per_unit": tpu,
                           "modes": ["hiergen", "recgen"] if l == L and L >= 2 else ["hiergen"]})
            starts[str(l)] = f"dec{l}.start"
            x = arg("tokens", "i32", ["B", f"n*{C[0]}"], "in") if l == 1 else arg("x", "f32", ["B", f"n*{C[l-1]}", D], "in")
            stages.append({"name": f"encode_{l}", "symbol": f"photon_encode_{l}",
                           "args": [w, x, pool(ly), table, lens, arg("out", "f32", ["B", "n", D], "out")]})
            if l >= 2:
                stages.append({"name": f"latent_{l}", "symbol": f"photon_latent_{l}",
                               "args": [w, arg("prev", "f32", ["B", D], "in"), arg("out", "f32", ["B", C[l-1], D], "out")]})
        stages.append({"name": "token_step", "symbol": "photon_token_step", "args": [
            w, arg("prev", "f32", ["S", D], "in"), arg("tokens", "i32", ["S", C[0]], "in"),
            arg("pos", "i32", ["S"], "in"), arg("logits", "f32", ["S", V], "out")]})
    manifest = {
        "format": "photon-artifact", "format_version": 1, "abi": "photon-abi-1",
        "compiler": {"name": "refmodel", "version": "0"},
        "target": {"kind": "cpu", "triple": "x86_64-pc-linux-gnu", "cpu": "x86-64", "features": []},
        "model": model, "library": "model.so",
        "weights": {"file": "weights.bin", "bytes": len(blob), "checksum": "fnv1a64:%016x" % fnv1a64(blob)},
        "caches": caches, "stages": stages,
    }
    if starts:
        manifest["start_latents"] = starts
    stages.append({"name": "forward", "symbol": "photon_forward", "args": [
        w, arg("tokens", "i32", ["B", "T"], "in"), arg("logits", "f32", ["B", "T", V], "out")]})
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
