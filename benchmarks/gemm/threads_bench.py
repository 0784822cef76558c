#!/usr/bin/python3
"""Decode and prefill tokens/s of compiled artifacts on 1 and 2 threads, interleaved.

usage: threads_bench.py BUILD_DIR ART.photon [ART.photon ...] [--rounds N] [--cells LIST]
                        [--configs LIST]

Each round runs every (artifact, cell, config) once through photon-run --json, in the same
order, so that the artifacts and thread settings see the same machine state; the table gives
medians and ranges over the rounds, with the load average before and after. Cells:
  b1     batch 1, a 32-character prompt, 128 generated tokens (short-context decode)
  pf512  batch 1, a 512-character prompt, 8 generated tokens (prefill tok/s)
  b16    16 prompts of 128 characters, 128 generated tokens each (batched decode)
  b64    64 prompts of 128 characters, 128 generated tokens each
Configs: t1 (1 thread), t2 (2 threads, libomp's default wait: spin 200 ms after a region),
t2p (2 threads, KMP_BLOCKTIME=0: a worker sleeps as soon as a region ends).
Needs artifacts compiled with --openmp. Tokenizer: the artifact's (bytes for the
benchmark models), so characters = prompt tokens.
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import tempfile

CELLS = {"b1": (1, 32, 128), "pf512": (1, 512, 8), "b16": (16, 128, 128), "b64": (64, 128, 128)}
CONFIGS = {"t1": (1, {}), "t2": (2, {}), "t2p": (2, {"KMP_BLOCKTIME": "0"})}


def prompt(n, seed):
    r = random.Random(seed)
    words = []
    while sum(len(w) + 1 for w in words) < n:
        words.append("".join(r.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(r.randint(2, 8))))
    return " ".join(words)[:n]


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("artifacts", nargs="+")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cells", default="b1,pf512,b16,b64")
    ap.add_argument("--configs", default="t1,t2,t2p")
    a = ap.parse_args()
    run = os.path.join(a.build, "bin", "photon-run")
    cells = a.cells.split(",")
    configs = a.configs.split(",")
    tmp = tempfile.mkdtemp()
    files = {}
    for c in cells:
        batch, plen, _ = CELLS[c]
        files[c] = os.path.join(tmp, c + ".txt")
        with open(files[c], "w") as f:
            for i in range(batch):
                f.write(prompt(plen, 1000 + i) + "\n")
    res = {}
    load0 = loadavg()
    for r in range(a.rounds):
        for c in cells:
            batch, _, gen = CELLS[c]
            for art in a.artifacts:
                for cfg in configs:
                    threads, env = CONFIGS[cfg]
                    cmd = [run, art, "--prompts-file", files[c], "--max-tokens", str(gen), "--ignore-eos",
                           "--json", "--quiet", "--threads", str(threads), "--max-batch", str(batch)]
                    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env},
                                         check=True).stdout
                    s = json.loads(out)["stats"]
                    v = s["prefill_tokens_per_s"] if c == "pf512" else s["decode_tokens_per_s"]
                    res.setdefault((c, art, cfg), []).append(v)
    print(f"load average {load0} -> {loadavg()}; {a.rounds} rounds; tok/s median [min-max]")
    print(f"{'cell':6} {'config':5} " + " ".join(f"{os.path.basename(x.rstrip('/')):>30}" for x in a.artifacts))
    for c in cells:
        for cfg in configs:
            row = []
            for art in a.artifacts:
                v = res[(c, art, cfg)]
                row.append(f"{statistics.median(v):8.1f} [{min(v):7.1f}-{max(v):7.1f}]")
            print(f"{c:6} {cfg:5} " + " ".join(f"{x:>30}" for x in row))


if __name__ == "__main__":
    main()
