#!/usr/bin/env python3
"""Checks a decoder-only artifact's KV-cached greedy generation against ONNX Runtime's greedy
generation of the same ONNX model (onnxruntime-node through ort_greedy.js, which re-runs the
whole model on the growing sequence), on two batch / prompt-length shapes:

    check_generate_ort.py PHOTON_RUN ARTIFACT MODEL.onnx [--tokens N] [--tol 1e-4]

shape 0: one prompt of 19 tokens; shape 1: a batch of 3 prompts of 7 tokens (byte-level
tokens, as photon-run's byte tokenizer makes them). photon-run generates greedily
(--temperature 0, the paged KV cache: lm_step prefill, then one token per step); its tokens
must equal ONNX Runtime's. The artifact's forward logits of prompt + generated tokens are
compared with ONNX Runtime's at every generated position: relative error
max|got - want| / max|want| <= tol. Prints `PASS <name> shape k ...` or `FAIL ...` per shape
and exits 1 if any failed. Needs node and onnxruntime-node (PHOTON_NPM_MODULES, default
.deps/npm/node_modules).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e", "Inputs"))
from photon_harness import Artifact, rel_err  # noqa: E402

MODULES = os.environ.get("PHOTON_NPM_MODULES", os.path.join(ROOT, ".deps", "npm", "node_modules"))
NODE = os.environ.get("NODE", "node")
SHAPES = [["The quick brown fox"], ["Once up", "A cat s", "Hello, "]]

ap = argparse.ArgumentParser()
ap.add_argument("photon_run")
ap.add_argument("artifact")
ap.add_argument("model")
ap.add_argument("--tokens", type=int, default=16)
ap.add_argument("--tol", type=float, default=1e-4)
ap.add_argument("--input", default="tokens")
ap.add_argument("--output", default="logits")
a = ap.parse_args()

name = os.path.basename(os.path.normpath(a.artifact))
art = Artifact(a.artifact)
V = art.manifest["model"]["vocab"]
failed = False
with tempfile.TemporaryDirectory() as tmp:
    for k, prompts in enumerate(SHAPES):
        ids = [list(p.encode("utf-8")) for p in prompts]
        pf = os.path.join(tmp, "prompts.txt")
        with open(pf, "w") as f:
            f.write("\n".join(prompts) + "\n")
        r = subprocess.run([a.photon_run, a.artifact, "--prompts-file", pf, "--max-tokens",
                            str(a.tokens), "--temperature", "0", "--json"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print("FAIL %s shape %d: photon-run exited %d: %s" % (name, k, r.returncode, r.stderr[-400:]))
            failed = True
            continue
        got = [q["tokens"] for q in json.loads(r.stdout)["requests"]]
        spec = os.path.join(tmp, "spec.json")
        with open(spec, "w") as f:
            json.dump({"input": a.input, "output": a.output, "prompts": ids, "steps": a.tokens}, f)
        res = os.path.join(tmp, "ort.json")
        subprocess.run([NODE, os.path.join(HERE, "ort_greedy.js"), MODULES, a.model, spec, res],
                       check=True)
        ort = json.load(open(res))
        want = ort["tokens"]
        # The artifact's forward logits at the generated positions against ORT's.
        seq = np.array([p + g for p, g in zip(ids, want)], np.int32)
        B, T = seq.shape
        logits = np.zeros((B, T, V), np.float32)
        art.call("forward", seq, logits)
        P = len(ids[0])
        mine = logits[:, P - 1:T - 1].astype(np.float64)
        theirs = np.array(ort["logits"], np.float64)
        e = rel_err(mine, theirs)
        margin = float(np.min(ort["margins"]))
        ok = got == want and e <= a.tol
        print("%s %s shape %d: greedy tokens %s ONNX Runtime's (B=%d, prompt %d, %d new), "
              "logit rel_err=%.3g (tol %.1g), smallest ORT top1-top2 margin %.3g"
              % ("PASS" if ok else "FAIL", name, k, "equal" if got == want else "differ from",
                 B, P, a.tokens, e, a.tol, margin))
        if got != want:
            for b in range(B):
                if got[b] != want[b]:
                    print("  row %d: photon %s\n         ORT    %s" % (b, got[b], want[b]))
        failed |= not ok
sys.exit(1 if failed else 0)
