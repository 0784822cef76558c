"""Checks an artifact's KV-cached greedy generation against its own forward stage (which
check_logits.py compares with ONNX Runtime): photon-run generates greedily (HierGen for
hierarchical models, or --mode), then the forward logits of prompt + generated tokens must
pick every generated token.

    check_generate.py PHOTON_RUN ARTIFACT [--prompt TEXT] [--tokens N] [--batch K]
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e", "Inputs"))
from photon_harness import Artifact  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("photon_run")
ap.add_argument("artifact")
ap.add_argument("--prompt", default="The quick brown fox")
ap.add_argument("--tokens", type=int, default=24)
ap.add_argument("--mode", default="", help="photon-run --mode (hiergen or recgen)")
a = ap.parse_args()

out = subprocess.run([a.photon_run, a.artifact, "--prompt", a.prompt, "--max-tokens", str(a.tokens),
                      "--temperature", "0", "--json"] + (["--mode", a.mode] if a.mode else []), check=True, capture_output=True, text=True)
req = json.loads(out.stdout)["requests"][0]
gen = req["tokens"]
prompt = list(a.prompt.encode("utf-8"))  # byte-level tokenizer
art = Artifact(a.artifact)
model = art.manifest["model"]
V = model["vocab"]
# Decoder-only: logits at t predict token t + 1. PHOTON / Block: logits at t predict token t
# (the token decoder's windows shift by one), over whole meta-contexts (the forward is causal,
# so padding the tail does not change the positions before it).
step = int(np.prod(model.get("chunk_sizes") or [1]))
ids = prompt + gen
T = (len(ids) + step - 1) // step * step
seq = np.array([ids + [0] * (T - len(ids))], np.int32)
logits = np.zeros((1, T, V), np.float32)
art.call("forward", seq, logits)
if model["family"] == "vanilla":
    want = logits[0, len(prompt) - 1:len(ids) - 1].argmax(-1)
else:
    want = logits[0, len(prompt):len(ids)].argmax(-1)
bad = [i for i, (g, w) in enumerate(zip(gen, want)) if g != w]
name = os.path.basename(os.path.normpath(a.artifact))
if len(gen) != a.tokens or bad:
    print("FAIL %s greedy: %d tokens, mismatches at %s" % (name, len(gen), bad[:8]))
    sys.exit(1)
print("PASS %s greedy generation (%d tokens, KV cache) equals the forward argmax" % (name, len(gen)))
