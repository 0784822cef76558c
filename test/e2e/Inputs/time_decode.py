"""Times lm_step of compiled vanilla artifacts: prefill ms, decode (batch 1) ms per token
the process CPU time per token (the machine is shared) and the weight-read bandwidth it implies (weights.bin bytes / time per token).

    time_decode.py ARTIFACT [ARTIFACT...] [--prompt 16] [--steps 32] [--rounds 5]

With several artifacts the runs are interleaved round-robin in this one process (the
machine's memory bandwidth drifts between runs) and the medians over the rounds are printed.
"""
import argparse
import statistics
import time

import numpy as np

from photon_harness import Artifact


def run(art, prompt, steps):
    c = [x for x in art.manifest["caches"] if x["level"] == 1][0]
    V = art.manifest["model"]["vocab"]
    bs = c["block_size"]
    cap = prompt + steps
    nb = (cap + bs - 1) // bs
    pool = np.zeros((nb, c["layers"], 2, bs, c["kv_heads"], c["head_dim"]), np.float32)
    table = np.arange(nb, dtype=np.int32).reshape(1, nb)
    lens = np.zeros(1, np.int32)
    tok = np.ones((1, prompt), np.int32)
    lg = np.zeros((1, prompt, V), np.float32)
    t0 = time.perf_counter()
    art.call("lm_step", tok, pool, table, lens, lg)
    tp = time.perf_counter() - t0
    lens += prompt
    one = np.ones((1, 1), np.int32)
    lg1 = np.zeros((1, 1, V), np.float32)
    t0 = time.perf_counter()
    c0 = time.process_time()
    for _ in range(steps):
        art.call("lm_step", one, pool, table, lens, lg1)
        lens += 1
    return tp, (time.perf_counter() - t0) / steps, (time.process_time() - c0) / steps


ap = argparse.ArgumentParser()
ap.add_argument("artifacts", nargs="+")
ap.add_argument("--prompt", type=int, default=16)
ap.add_argument("--steps", type=int, default=32)
ap.add_argument("--rounds", type=int, default=1)
a = ap.parse_args()
arts = [Artifact(p) for p in a.artifacts]
res = {p: ([], [], []) for p in a.artifacts}
for _ in range(a.rounds):
    for p, art in zip(a.artifacts, arts):
        for r, v in zip(res[p], run(art, a.prompt, a.steps)):
            r.append(v)
for p, art in zip(a.artifacts, arts):
    tp = statistics.median(res[p][0])
    dt = statistics.median(res[p][1])
    ct = statistics.median(res[p][2])
    wb = art.manifest["weights"]["bytes"]
    print("%s: prefill %d tokens: %.1f ms; decode: %.2f ms/token (%.2f ms CPU), %.2f GB/s of"
          " weights (median of %d)" % (p, a.prompt, tp * 1e3, dt * 1e3, ct * 1e3, wb / dt / 1e9,
                                       a.rounds))
