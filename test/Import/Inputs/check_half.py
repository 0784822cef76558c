"""Checks an artifact compiled from a half-precision ONNX export (make_half.py) .

    check_half.py HALF_ARTIFACT FIXTURE_DIR|REF.npz --exact EXACT_ARTIFACT --tol T
        [--ort HALF.onnx --ort-tol T2]

- blob: the half export's 2-D matmul weights keep their format (f16 / bf16) in weights.bin,
  every other tensor (embedding, norms, start latents) is widened to f32; counts printed.
- exact: EXACT_ARTIFACT is the f32 export with every tensor rounded through the half type
  (make_half.py --round-only), compiled with --weights f16|bf16: the same values and the
  same kernels, so the forward logits agree within 1e-5 relative (max|got - want| /
  max|want|).
- f32: the f32 model's reference logits (a fixture's logits.npy, or a zoo model's ref.npz
  from ONNX Runtime: its first shape), within --tol (the weights' rounding).
- stages: the teacher-forced logits through the derived stages and caches
  (test/e2e/Inputs/cached_logits.py) equal the artifact's forward within 1e-4.
- ort (with --ort): ONNX Runtime (onnxruntime-node, test/zoo/ort_run.js) on the half export
  itself, which computes in half precision, within --ort-tol.
One line per check; exit 1 on failure.
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(ROOT, "test", "e2e", "Inputs"))
from cached_logits import cached_logits  # noqa: E402
from photon_harness import Artifact, rel_err  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("artifact")
ap.add_argument("fixture")
ap.add_argument("--exact", required=True)
ap.add_argument("--tol", type=float, required=True)
ap.add_argument("--ort")
ap.add_argument("--ort-tol", type=float, default=2e-2)
a = ap.parse_args()
failed = False


def report(ok, line):
    global failed
    print(("PASS " if ok else "FAIL ") + line)
    failed |= not ok


def blob_dtypes(path):
    buf = open(os.path.join(path, "weights.bin"), "rb").read()
    _, count, _, _ = struct.unpack_from("<IIQQ", buf, 8)
    p, out = 32, {}
    for _ in range(count):
        (n,) = struct.unpack_from("<H", buf, p)
        name = buf[p + 2:p + 2 + n].decode()
        p += 2 + n
        dt, rank = struct.unpack_from("<BB", buf, p)
        p += 2 + 8 * rank + 16
        out[name] = (dt, rank)
    return out


NAMES = {0: "f32", 1: "f16", 2: "bf16"}
d = blob_dtypes(a.artifact)
half = sorted(n for n, (dt, r) in d.items() if dt in (1, 2))
ok = len(half) > 0 and all(d[n][1] == 2 for n in half) and \
    all(dt == 0 for n, (dt, r) in d.items() if r != 2) and \
    len({d[n][0] for n in half}) == 1
counts = {}
for dt, r in d.values():
    counts["%s %d-d" % (NAMES.get(dt, str(dt)), r)] = counts.get("%s %d-d" % (NAMES.get(dt, str(dt)), r), 0) + 1
report(ok, "blob: %s" % ", ".join("%s: %d" % kv for kv in sorted(counts.items())))

art = Artifact(a.artifact)
if a.fixture.endswith(".npz"):  # a zoo model's ref.npz (test/zoo): its first shape
    ref = np.load(a.fixture)
    tokens, want = ref["tokens_0"], ref["logits_0"]
else:
    tokens = np.load(os.path.join(a.fixture, "tokens.npy"))
    want = np.load(os.path.join(a.fixture, "logits.npy"))
tokens = np.ascontiguousarray(tokens.astype(np.int32))
got = np.zeros(want.shape, np.float32)
art.call("forward", tokens, got)
ex = np.zeros(want.shape, np.float32)
Artifact(a.exact).call("forward", tokens, ex)
e = rel_err(got, ex)
report(e <= 1e-5, "exact: vs the rounded f32 export with --weights, rel_err=%.3g (tol 1e-5)" % e)
e = rel_err(got, want)
agree = float(np.mean(np.argmax(got, -1) == np.argmax(want, -1)))
report(e <= a.tol, "f32: vs the f32 reference rel_err=%.3g (tol %.1g) argmax agreement %.4f"
       % (e, a.tol, agree))
if "encode_1" in art.stages or "lm_step" in art.stages:
    e = rel_err(cached_logits(art, tokens), got)
    report(e <= 1e-4, "stages: cached teacher-forced logits vs forward rel_err=%.3g (tol 1e-4)" % e)

if a.ort:
    node = shutil.which("node")
    npm = os.path.join(ROOT, ".deps", "npm", "node_modules")
    tmp = tempfile.mkdtemp()
    try:
        m = json.load(open(os.path.join(a.artifact, "manifest.json")))
        tokens.astype(np.int64).tofile(os.path.join(tmp, "tokens.bin"))
        with open(os.path.join(tmp, "inputs.json"), "w") as f:
            json.dump({"tokens": {"dtype": "int64", "dims": list(tokens.shape),
                                  "file": os.path.join(tmp, "tokens.bin")}}, f)
        subprocess.run([node, os.path.join(ROOT, "test", "zoo", "ort_run.js"), npm, a.ort,
                        os.path.join(tmp, "inputs.json"), tmp], check=True)
        meta = json.load(open(os.path.join(tmp, "outputs.json")))
        ort = np.fromfile(os.path.join(tmp, "logits.bin"), np.float32).reshape(meta["logits"]["dims"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    e = rel_err(got, ort)
    agree = float(np.mean(np.argmax(got, -1) == np.argmax(ort, -1)))
    report(e <= a.ort_tol and meta["logits"]["type"] == "float16",
           "ort: vs ONNX Runtime on the half export (%s output) rel_err=%.3g (tol %.1g) argmax "
           "agreement %.4f" % (meta["logits"]["type"], e, a.ort_tol, agree))
sys.exit(1 if failed else 0)
