#!/usr/bin/env python3
"""Compares a compiled artifact's `forward` stage with a zoo model's ONNX Runtime logits.

    check_logits.py ARTIFACT_DIR test/zoo/<name>/ref.npz [--tol 1e-4]

For every k with tokens_k / logits_k in ref.npz (k = 0, 1, ...): runs forward(tokens_k) and
checks the relative error max|got - want| / max|want| <= tol, that every logit is finite and
that the greedy choice (argmax per position) equals ONNX Runtime's. Prints one line per shape,
`PASS <name> shape k rel_err=... (B=.. T=.., tol ..)` or `FAIL ...`, and exits 1 if any failed
(2 if ref.npz has no tokens_0). <name> is the directory holding ref.npz.
Uses test/e2e/Inputs/photon_harness.py (numpy + ctypes only).
"""
import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e", "Inputs"))
from photon_harness import Artifact, rel_err  # noqa: E402

_NP = {"i32": np.int32, "i64": np.int64}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("artifact")
    ap.add_argument("ref")
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()

    name = os.path.basename(os.path.dirname(os.path.abspath(a.ref)))
    ref = np.load(a.ref)
    ks = []
    while "tokens_%d" % len(ks) in ref.files and "logits_%d" % len(ks) in ref.files:
        ks.append(len(ks))
    if not ks:
        print("FAIL %s: %s has no tokens_0 / logits_0" % (name, a.ref))
        return 2

    art = Artifact(a.artifact)
    if "forward" not in art.stages:
        print("FAIL %s: the artifact has no forward stage" % name)
        return 1
    tok_dtype = _NP[art.stages["forward"]["args"][1]["dtype"]]
    failed = False
    for k in ks:
        want = ref["logits_%d" % k].astype(np.float64)
        tokens = np.ascontiguousarray(ref["tokens_%d" % k].astype(tok_dtype))
        b, t = tokens.shape
        got = np.full(want.shape, np.nan, np.float32)
        try:
            art.call("forward", tokens, got)
        except Exception as e:  # noqa: BLE001 - report and go on with the next shape
            print("FAIL %s shape %d: forward raised %s (B=%d T=%d)" % (name, k, e, b, t))
            failed = True
            continue
        finite = bool(np.all(np.isfinite(got)))
        e = rel_err(got, want) if finite else float("inf")
        greedy = np.argmax(got, axis=-1) == np.argmax(want, axis=-1)
        ok = finite and e <= a.tol and bool(np.all(greedy))
        extra = ""
        if not finite:
            extra += " non-finite logits"
        if not np.all(greedy):
            extra += " greedy differs at %d of %d positions" % (int(np.sum(~greedy)), greedy.size)
        print("%s %s shape %d rel_err=%.3g (B=%d T=%d, tol %.1g)%s"
              % ("PASS" if ok else "FAIL", name, k, e, b, t, a.tol, extra))
        failed |= not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
