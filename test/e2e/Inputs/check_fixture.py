"""Checks a compiled fixture artifact against the reference's expected values.

    check_fixture.py ARTIFACT FIXTURE_DIR [--tol 1e-4] [--forward-only]

- forward: logits of tokens.npy vs logits.npy
- every entry of stages.json: inputs from the .npy files, outputs (and the pool after the
  call) vs the expected .npy files.
- token_start / token_next (window cache), when the artifact has them, on the token_step
  inputs: vs the artifact's token_step at every position and the expected logits at pos.
Relative error: max|got - want| / max|want| <= tol. One line per check; exit 1 on failure.
"""
import argparse
import json
import os
import sys

import numpy as np

from photon_harness import Artifact, rel_err

ap = argparse.ArgumentParser()
ap.add_argument("artifact")
ap.add_argument("fixture")
ap.add_argument("--tol", type=float, default=1e-4)
ap.add_argument("--forward-only", action="store_true",
                help="check only the forward logits (a forward-only artifact)")
a = ap.parse_args()
art = Artifact(a.artifact)
fx = a.fixture
failed = False


def check(name, got, want):
    global failed
    e = rel_err(got, want)
    ok = e <= a.tol and np.all(np.isfinite(got))
    print("%s %s rel_err=%.3g (tol %.1g)" % ("PASS" if ok else "FAIL", name, e, a.tol))
    failed |= not ok


tokens = np.ascontiguousarray(np.load(os.path.join(fx, "tokens.npy")).astype(np.int32))
want = np.load(os.path.join(fx, "logits.npy"))
logits = np.zeros(want.shape, np.float32)
art.call("forward", tokens, logits)
check("forward", logits, want)
if a.forward_only:
    sys.exit(1 if failed else 0)

with open(os.path.join(fx, "stages.json")) as f:
    stages = json.load(f)["stages"]
for key in sorted(stages):
    st = stages[key]
    spec = art.stages.get(st["stage"])
    if spec is None:
        print("FAIL %s: the artifact has no stage %s" % (key, st["stage"]))
        failed = True
        continue
    arrays, expects = [], []
    for arg, abi in zip(st["args"], spec["args"][1:]):
        if arg["name"] != abi["name"]:
            print("FAIL %s: argument %s where the artifact has %s" % (key, arg["name"], abi["name"]))
            failed = True
        if "file" in arg:
            x = np.load(os.path.join(fx, arg["file"]))
        else:
            x = np.zeros(np.load(os.path.join(fx, arg["expected"])).shape,
                         np.float32 if abi["dtype"] == "f32" else np.int32)
        x = np.ascontiguousarray(x.astype(np.float32 if abi["dtype"] == "f32" else np.int32))
        arrays.append(x)
        if "expected" in arg:
            expects.append((arg["name"], x, np.load(os.path.join(fx, arg["expected"]))))
    art.call(st["stage"], *arrays)
    for name, got, exp in expects:
        check("%s %s" % (key, name), got, exp)
# token_start / token_next (window cache) give token_step's logits at every position of the
# reference's token_step inputs, and the reference's logits at pos[s].
ts = [st for st in stages.values() if st["stage"] == "token_step"]
if "token_next" in art.stages and ts:
    files = {arg["name"]: arg for arg in ts[0]["args"]}
    prev = np.ascontiguousarray(np.load(os.path.join(fx, files["prev"]["file"])).astype(np.float32))
    toks = np.ascontiguousarray(np.load(os.path.join(fx, files["tokens"]["file"])).astype(np.int32))
    pos = np.load(os.path.join(fx, files["pos"]["file"])).astype(np.int32)
    exp = np.load(os.path.join(fx, files["logits"]["expected"]))
    S, C1 = toks.shape
    V = art.manifest["model"]["vocab"]
    shape = art.stages["token_next"]["args"][3]["shape"]
    cache = np.full([S] + [int(d) for d in shape[1:]], np.nan, np.float32)
    inc = np.zeros((S, C1, V), np.float32)
    ref = np.zeros((S, C1, V), np.float32)
    for p in range(C1):
        lg = np.zeros((S, V), np.float32)
        if p == 0:
            art.call("token_start", prev, cache, lg)
        else:
            art.call("token_next", np.ascontiguousarray(toks[:, p - 1]), np.full(S, p, np.int32),
                     cache, lg)
        inc[:, p] = lg
        lg = np.zeros((S, V), np.float32)
        art.call("token_step", prev, toks, np.full(S, p, np.int32), lg)
        ref[:, p] = lg
    check("token_start/token_next vs token_step", inc, ref.astype(np.float64))
    check("token_start/token_next at pos", inc[np.arange(S), pos], exp)
elif "token_step" in art.stages:
    print("NOTE the artifact has no token_start/token_next")
# The cache plan in the manifest reproduces the section-3 formula bytes of gen.json.
with open(os.path.join(fx, "gen.json")) as f:
    gen = json.load(f)
caches = {str(c["level"]): c for c in art.manifest["caches"]}
for mode, entries in sorted(gen.get("cache_bytes", {}).items()):
    for e in entries:
        T = e["T"]
        for lvl, want_b in sorted(e["formula"].items()):
            if not lvl.isdigit():
                continue
            c = caches.get(lvl)
            got_b = 0
            if c is not None and (mode in c["modes"] or not c["modes"]):
                got_b = c["bytes_per_unit"] * (-(-T // c["tokens_per_unit"]))
            ok = got_b == want_b
            print("%s cache plan %s T=%d level %s: %d bytes (formula %d)"
                  % ("PASS" if ok else "FAIL", mode, T, lvl, got_b, want_b))
            failed |= not ok
sys.exit(1 if failed else 0)
