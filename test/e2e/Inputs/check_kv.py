"""Checks an artifact compiled with f16 KV caches (photon-compile --kv f16) against the f32
artifact of the same model.

    check_kv.py F32_ARTIFACT F16_ARTIFACT FIXTURE_DIR --tol T [--photon-run PATH
        --prompt TEXT --tokens N --min-prefix P]

- manifest: every cache of the f16 artifact is f16 with half the f32 artifact's
  bytes_per_unit, the token decoder's window argument is f16, and the cost model's cache
  bytes per 1,000 tokens and window bytes per sequence are half.
- forward: the `forward` stage has no cache, so its logits equal the f32 artifact's exactly.
- cached: teacher-forced logits of the fixture's tokens through the caches
  (cached_logits.py); the f32 artifact's equal the fixture's reference logits within 1e-4
  (the harness itself), the f16 artifact's are within --tol of the f32 artifact's
  (relative error max|got - f32| / max|f32|); argmax agreement reported.
- greedy (with --photon-run): N tokens generated greedily by photon-run from --prompt with
  each artifact; the identical prefix must be at least --min-prefix tokens; the agreement
  over all N positions is reported.
One line per check; exit 1 on failure.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

from cached_logits import cached_logits
from photon_harness import Artifact, rel_err

ap = argparse.ArgumentParser()
ap.add_argument("ref")
ap.add_argument("artifact")
ap.add_argument("fixture")
ap.add_argument("--tol", type=float, required=True)
ap.add_argument("--photon-run")
ap.add_argument("--prompt", default="hello world")
ap.add_argument("--tokens", type=int, default=256)
ap.add_argument("--min-prefix", type=int, default=0)
a = ap.parse_args()
failed = False


def report(ok, line):
    global failed
    print(("PASS " if ok else "FAIL ") + line)
    failed |= not ok


f32, f16 = Artifact(a.ref), Artifact(a.artifact)
m32, m16 = f32.manifest, f16.manifest
ok = len(m16["caches"]) == len(m32["caches"]) > 0
for c32, c16 in zip(m32["caches"], m16["caches"]):
    ok &= c32["dtype"] == "f32" and c16["dtype"] == "f16"
    ok &= c16["bytes_per_unit"] * 2 == c32["bytes_per_unit"]
cm32, cm16 = m32["cost_model"], m16["cost_model"]
ok &= cm16["cache_bytes_per_1k_tokens"]["total"] * 2 == cm32["cache_bytes_per_1k_tokens"]["total"]
win32 = cm32["non_cache_bytes_per_sequence"]["token_decoder_windows"]
win16 = cm16["non_cache_bytes_per_sequence"]["token_decoder_windows"]
ok &= win16 * 2 == win32
if "token_next" in f16.stages:
    ok &= f16.stages["token_next"]["args"][3]["dtype"] == "f16"
report(ok, "manifest: caches %s, bytes_per_unit %s (f32 %s), cache bytes per 1000 tokens %d "
       "(f32 %d), window bytes per sequence %d (f32 %d)"
       % ([c["dtype"] for c in m16["caches"]], [c["bytes_per_unit"] for c in m16["caches"]],
          [c["bytes_per_unit"] for c in m32["caches"]], cm16["cache_bytes_per_1k_tokens"]["total"],
          cm32["cache_bytes_per_1k_tokens"]["total"], win16, win32))

tokens = np.ascontiguousarray(np.load(os.path.join(a.fixture, "tokens.npy")).astype(np.int32))
want = np.load(os.path.join(a.fixture, "logits.npy"))
fw = []
for art in (f32, f16):
    lg = np.zeros(want.shape, np.float32)
    art.call("forward", tokens, lg)
    fw.append(lg)
report(np.array_equal(fw[0], fw[1]), "forward (no cache) identical to the f32 artifact's")

ref = cached_logits(f32, tokens)
e = rel_err(ref, want)
report(e <= 1e-4, "cached f32 vs reference rel_err=%.3g (tol 1e-4)" % e)
got = cached_logits(f16, tokens)
e = rel_err(got, ref)
agree = float(np.mean(np.argmax(got, -1) == np.argmax(ref, -1)))
report(e <= a.tol and bool(np.all(np.isfinite(got))),
       "cached f16 vs f32 rel_err=%.3g (tol %.1g) argmax agreement %.4f" % (e, a.tol, agree))


def generate(path):
    r = subprocess.run([a.photon_run, path, "--prompt", a.prompt, "--max-tokens", str(a.tokens),
                        "--quiet", "--no-verify-checksum"], stdout=subprocess.PIPE, check=True)
    out = r.stdout
    if out.startswith(a.prompt.encode()):
        out = out[len(a.prompt.encode()):]
    return out[:-1] if out.endswith(b"\n") else out


if a.photon_run:
    g0, g1 = generate(a.ref), generate(a.artifact)
    n = min(len(g0), len(g1))
    prefix = next((i for i in range(n) if g0[i] != g1[i]), n)
    same = sum(1 for i in range(n) if g0[i] == g1[i])
    report(prefix >= min(a.min_prefix, max(len(g0), len(g1))) and n > 0,
           "greedy vs f32 %d tokens: identical prefix %d (min %d), agreement %.4f"
           % (n, prefix, a.min_prefix, same / max(n, 1)))
sys.exit(1 if failed else 0)
