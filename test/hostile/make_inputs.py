#!/usr/bin/env python3
"""Writes the hostile inputs of test/hostile/*.test into test/hostile/Inputs/ (committed; re-run
after changing this script: /usr/bin/python3 test/hostile/make_inputs.py).

Each input is the smallest file that showed one defect of issue 19 (a crafted model or artifact
that made photon read a file outside the model, crash, hang or answer wrongly). The artifact
inputs are a vanilla artifact around the runtime's test model library (test/unit/runtime/
testmodel; the tests copy its .so in as model.so): base/ is valid, every other file replaces
one of base/'s files.
"""
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "Inputs")


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def weights_blob(tensors, count_override=None):
    """PHOTONW1 (docs/artifact.md): tensors = [(name, dtype code, shape, bytes)]."""
    index = b""
    for name, dt, shape, _ in tensors:
        index += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BB", dt, len(shape))
        index += b"".join(struct.pack("<q", d) for d in shape) + struct.pack("<QQ", 0, 0)
    data_off = (32 + len(index) + 63) // 64 * 64
    # patch offsets/bytes
    out_index = b""
    cursor = data_off
    pos = 0
    offsets = []
    for name, dt, shape, payload in tensors:
        rec_len = 2 + len(name) + 2 + 8 * len(shape)
        out_index += index[pos:pos + rec_len] + struct.pack("<QQ", cursor, len(payload))
        pos += rec_len + 16
        offsets.append(cursor)
        cursor = (cursor + len(payload) + 63) // 64 * 64
    count = len(tensors) if count_override is None else count_override
    blob = bytearray(b"PHOTONW1" + struct.pack("<IIQQ", 1, count, len(out_index), data_off))
    blob += out_index
    blob += b"\0" * (data_off - len(blob))
    for (name, dt, shape, payload), off in zip(tensors, offsets):
        blob += b"\0" * (off - len(blob))
        blob += payload
    blob += b"\0" * ((len(blob) + 63) // 64 * 64 - len(blob))
    return bytes(blob)


def stage(name, symbol, args):
    return {"name": name, "symbol": symbol,
            "args": [{"name": "weights", "dtype": "i8", "shape": ["W"]}] + args}


def vanilla_manifest(blob):
    pool = {"name": "pool", "dtype": "f32", "shape": ["NB", 1, 2, 4, 1, 2], "io": "inout"}
    table = {"name": "table", "dtype": "i32", "shape": ["B", "MB"], "io": "in"}
    lens = {"name": "lens", "dtype": "i32", "shape": ["B"], "io": "in"}
    return {
        "format": "photon-artifact", "format_version": 1, "abi": "photon-abi-1",
        "compiler": {"name": "test", "version": "0"},
        "target": {"kind": "cpu", "triple": "x86_64-pc-linux-gnu", "cpu": "x86-64",
                   "features": ["sse2"]},
        "model": {"family": "vanilla", "vocab": 256, "width": 8, "max_context": 64,
                  "tokenizer": {"kind": "byte"}},
        "library": "model.so",
        "weights": {"file": "weights.bin", "bytes": len(blob),
                    "checksum": "fnv1a64:%016x" % fnv1a64(blob)},
        "caches": [{"level": 1, "layers": 1, "kv_heads": 1, "head_dim": 2, "dtype": "f32",
                    "block_size": 4, "bytes_per_unit": 16, "tokens_per_unit": 1,
                    "modes": ["hiergen"]}],
        "stages": [
            stage("lm_step", "photon_lm_step",
                  [{"name": "tokens", "dtype": "i32", "shape": ["B", "n"], "io": "in"},
                   pool, table, lens,
                   {"name": "logits", "dtype": "f32", "shape": ["B", "n", 256], "io": "out"}]),
            stage("forward", "photon_forward_vanilla",
                  [{"name": "tokens", "dtype": "i32", "shape": ["B", "T"], "io": "in"},
                   {"name": "logits", "dtype": "f32", "shape": ["B", "T", 256], "io": "out"}]),
        ],
    }


def write(name, data):
    path = os.path.join(OUT, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    mode = "w" if isinstance(data, str) else "wb"
    with open(path, mode) as f:
        f.write(data)


def dump(m):
    return json.dumps(m, indent=1) + "\n"


def artifacts():
    head = struct.pack("<f", 0.25) * (256 * 8)
    blob = weights_blob([("lm_head", 0, [256, 8], head)])
    write("base/weights.bin", blob)
    base = vanilla_manifest(blob)
    write("base/manifest.json", dump(base))

    # 5: format_version 2^32 + 1 was narrowed to int and loaded as version 1.
    write("manifest-format-version-2p32.json",
          dump(base).replace('"format_version": 1,', '"format_version": 4294967297,'))
    # 5: vocab 2^32 + 256 was narrowed to 256 and loaded.
    write("manifest-vocab-2p32.json",
          dump(base).replace('"vocab": 256,', '"vocab": 4294967552,'))
    # 5: a key given twice: the last one silently won.
    write("manifest-duplicate-key.json",
          dump(base).replace('"vocab": 256,', '"vocab": 256, "vocab": 128,'))
    # 2: a stage symbol resolved through model.so's dependencies ("abort" from libc).
    m = json.loads(dump(base))
    m["stages"][0]["symbol"] = "abort"
    write("manifest-symbol-abort.json", dump(m))
    # 1: tokenizer files outside the artifact directory.
    m = json.loads(dump(base))
    m["model"]["tokenizer"] = {"kind": "bpe", "vocab": "../vocab.json", "merges": "merges.txt"}
    write("manifest-tokenizer-escape.json", dump(m))
    # 4: a weights index declaring 0xFFFFFFFF tensors (aborted in reserve), with a manifest
    # whose bytes and checksum were recomputed for it.
    bad = bytearray(blob)
    bad[12:16] = struct.pack("<I", 0xFFFFFFFF)
    bad = bytes(bad)
    write("weights-count-ffffffff.bin", bad)
    m = json.loads(dump(base))
    m["weights"]["bytes"] = len(bad)
    m["weights"]["checksum"] = "fnv1a64:%016x" % fnv1a64(bad)
    write("manifest-count-ffffffff.json", dump(m))
    # 3: an artifact for a CPU with AVX-512 FP16 (what --cpu sapphirerapids must write) on a
    # CPU without it is refused, not run into SIGILL (the test skips on a host that has it).
    m = json.loads(dump(base))
    m["target"]["cpu"] = "sapphirerapids"
    m["target"]["features"] = ["avx512f", "avx512bw", "avx512vl", "avx512fp16"]
    write("manifest-avx512.json", dump(m))


def onnx_models():
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    F = TensorProto.FLOAT

    def model(nodes, inputs, outputs, inits=(), value_info=()):
        g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits),
                              value_info=list(value_info))
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        return m

    # 1: an initializer whose external-data location climbs out of the model's directory
    # (the importer copied the file it names into weights.bin).
    w = numpy_helper.from_array(np.zeros((4, 3), np.float32), "w")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "../outside.bin"), ("offset", "0"), ("length", "48")):
        e = w.external_data.add()
        e.key, e.value = k, v
    n = [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    m = model(n, [helper.make_tensor_value_info("x", F, [2, 4])],
              [helper.make_tensor_value_info("y", F, [2, 3])], [w])
    write("onnx-external-dotdot.onnx", m.SerializeToString())
    # The same through a symlink next to the model (the test makes the link).
    m.graph.initializer[0].external_data[0].value = "link.bin"
    write("onnx-external-symlink.onnx", m.SerializeToString())

    # 8: a negative value_info dimension (the importer wrote unparsable MLIR, exit 0).
    n = [helper.make_node("Relu", ["x"], ["h"], name="r1"),
         helper.make_node("Relu", ["h"], ["y"], name="r2")]
    m = model(n, [helper.make_tensor_value_info("x", F, [2, 3])],
              [helper.make_tensor_value_info("y", F, [2, 3])],
              value_info=[helper.make_tensor_value_info("h", F, [2, -3])])
    write("onnx-negative-dim.onnx", m.SerializeToString())


if __name__ == "__main__":
    artifacts()
    onnx_models()
    print("wrote", OUT, file=sys.stderr)
