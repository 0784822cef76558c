"""Times lm_step decode (batch 1) of a compiled vanilla artifact: ms per token and the
weight-read bandwidth it implies (weights.bin bytes / time per token).

    time_decode.py ARTIFACT [--prompt 16] [--steps 32]
"""
import argparse
import time

import numpy as np

from photon_harness import Artifact

ap = argparse.ArgumentParser()
ap.add_argument("artifact")
ap.add_argument("--prompt", type=int, default=16)
ap.add_argument("--steps", type=int, default=32)
a = ap.parse_args()
art = Artifact(a.artifact)
c = [x for x in art.manifest["caches"] if x["level"] == 1][0]
V = art.manifest["model"]["vocab"]
bs = c["block_size"]
cap = a.prompt + a.steps
nb = (cap + bs - 1) // bs
pool = np.zeros((nb, c["layers"], 2, bs, c["kv_heads"], c["head_dim"]), np.float32)
table = np.arange(nb, dtype=np.int32).reshape(1, nb)
lens = np.zeros(1, np.int32)
tok = np.ones((1, a.prompt), np.int32)
lg = np.zeros((1, a.prompt, V), np.float32)
t0 = time.perf_counter()
art.call("lm_step", tok, pool, table, lens, lg)
tp = time.perf_counter() - t0
lens += a.prompt
one = np.ones((1, 1), np.int32)
lg1 = np.zeros((1, 1, V), np.float32)
t0 = time.perf_counter()
for _ in range(a.steps):
    art.call("lm_step", one, pool, table, lens, lg1)
    lens += 1
dt = (time.perf_counter() - t0) / a.steps
wb = art.manifest["weights"]["bytes"]
print("prefill %d tokens: %.1f ms; decode: %.2f ms/token, %.2f GB/s of weights"
      % (a.prompt, tp * 1e3, dt * 1e3, wb / dt / 1e9))
