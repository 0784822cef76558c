"""Checks a reduced-precision artifact (photon-compile --weights f16|bf16|q8) against the
f32 artifact of the same model.

    check_formats.py F32_ARTIFACT ARTIFACT FIXTURE_DIR --tol T [--photon-run PATH
        --prompt TEXT --tokens N --min-prefix P]

- forward: teacher-forced logits of the fixture's tokens.npy, both artifacts; relative error
  max|got - f32| / max|f32| <= tol, and the fraction of positions whose argmax (the greedy
  choice) agrees, reported.
- greedy (with --photon-run): N tokens generated greedily by photon-run from --prompt with
  each artifact (byte tokenizer: stdout bytes are the tokens); the identical prefix must be
  at least --min-prefix tokens; the agreement over all N positions is reported.
One line per check; exit 1 on failure.
"""
import argparse
import os
import subprocess
import sys

import numpy as np

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

tokens = np.ascontiguousarray(np.load(os.path.join(a.fixture, "tokens.npy")).astype(np.int32))
shape = np.load(os.path.join(a.fixture, "logits.npy")).shape
out = []
for path in (a.ref, a.artifact):
    logits = np.zeros(shape, np.float32)
    Artifact(path).call("forward", tokens, logits)
    out.append(logits)
ref, got = out
e = rel_err(got, ref)
ok = e <= a.tol and np.all(np.isfinite(got))
agree = float(np.mean(np.argmax(got, -1) == np.argmax(ref, -1)))
print("%s forward vs f32 rel_err=%.3g (tol %.1g) argmax agreement %.4f"
      % ("PASS" if ok else "FAIL", e, a.tol, agree))
failed |= not ok

if a.photon_run:
    gens = []
    for path in (a.ref, a.artifact):
        r = subprocess.run([a.photon_run, path, "--prompt", a.prompt, "--max-tokens",
                            str(a.tokens), "--quiet"], stdout=subprocess.PIPE, check=True)
        gens.append(r.stdout)
    g0, g1 = gens
    n = min(len(g0), len(g1))
    prefix = next((i for i in range(n) if g0[i] != g1[i]), n)
    same = sum(1 for i in range(n) if g0[i] == g1[i])
    ok = prefix >= a.min_prefix and n > 0
    print("%s greedy %d tokens: identical prefix %d (min %d), agreement %.4f"
          % ("PASS" if ok else "FAIL", n, prefix, a.min_prefix, same / max(n, 1)))
    failed |= not ok
sys.exit(1 if failed else 0)
