#!/usr/bin/python3
"""Per-sample memory of the test fixtures against the compile-time plan (ctest `bench-memory`,
label `bench`). Compiles the vanilla and PHOTON C = (4, 4) fixtures, runs photon-bench's quick
DE setting over batches 1, 2, 4, 8 and checks, for every mode:

- the heap accounting works: a breakdown is reported, every part is finite, and the runtime's
  heap grows at least by the token-decoder windows it allocates (HierGen/RecGen);
- what the compiler plans stays within its plan: per sample, the caches plus the token-decoder
  windows plus the compiled stages' heap (their intermediates' peak) are at most the cost
  model's per-sample memory (caches at the run's context + non_cache_bytes_per_sequence) plus
  one cache block per level (caches are allocated in blocks);
- the compiled stages' heap per sample is at most the plan's per-sequence non-cache bytes
  (before photon-free-at-last-use it was about 8x that on photon-mid).

Memory only: no timing assertion (the figures do not depend on the machine's load).

usage: memory_test.py --bench photon-bench --compile photon-compile --fixtures test/fixtures --work DIR
"""
import argparse
import json
import math
import os
import subprocess
import sys

FIXTURES = ["vanilla", "photon-c44"]


def fail(msg):
    print(f"memory_test.py: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for k in ("--bench", "--compile", "--fixtures", "--work"):
        ap.add_argument(k, required=True)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    arts = {}
    for name in FIXTURES:
        src = os.path.join(a.fixtures, name, "model.onnx")
        out = os.path.join(a.work, f"{name}.photon")
        # Always recompiled: the plan and the stages are what is tested.
        p = subprocess.run([a.compile, src, "-o", out, "-q"], capture_output=True, text=True)
        if p.returncode != 0:
            fail(f"photon-compile {src} failed (rc {p.returncode}):\n{p.stderr[-2000:]}")
        with open(os.path.join(out, "manifest.json")) as f:
            arts[name] = (out, json.load(f))
    js = os.path.join(a.work, "memory.json")
    cmd = [a.bench, "--suite", "quick", "--settings", "DE", "--slope-batches", "1,2,4,8", "--max-batch", "8",
           "--no-sgemm", "--bw-bytes", "4000000", "--json", js]
    for out, _ in arts.values():
        cmd += ["--model", out]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        fail(f"photon-bench exited {p.returncode}:\n{p.stderr[-2000:]}")
    with open(js) as f:
        d = json.load(f)
    checked = 0
    for r in d["results"]:
        where = f"{r['model']}/{r['mode']}/{r['setting']}"
        man = arts[r["model"]][1]
        cm = man.get("cost_model") or {}
        nc = (cm.get("non_cache_bytes_per_sequence") or {}).get("total")
        if not isinstance(nc, (int, float)) or nc <= 0:
            fail(f"{where}: manifest cost_model.non_cache_bytes_per_sequence.total = {nc!r}")
        per1k = cm["cache_bytes_per_1k_tokens"]["recgen" if r["mode"] == "recgen" else "total"]
        context = r["prompt"] + r["gen"]
        block = sum(c["bytes_per_unit"] * c["block_size"] for c in man["caches"]
                    if r["mode"] != "recgen" or "recgen" in c.get("modes", []))
        planned = per1k * context / 1000.0 + nc
        b = r["memory"].get("breakdown_per_sample_bytes")
        if not b:
            fail(f"{where}: no memory breakdown (is the heap accounting of photon-bench working?)")
        for k in ("cache", "token_decoder_windows", "stage_activations", "runtime_heap", "heap", "rss"):
            if not (isinstance(b.get(k), (int, float)) and math.isfinite(b[k])):
                fail(f"{where}: breakdown {k} = {b.get(k)!r}")
        if r["mode"] in ("hiergen", "recgen"):
            if not b["token_decoder_windows"] > 0:
                fail(f"{where}: token-decoder windows per sample = {b['token_decoder_windows']}")
            if b["runtime_heap"] < 0.99 * b["token_decoder_windows"]:
                fail(f"{where}: the runtime's heap grows by {b['runtime_heap']:.0f} B per sample, less than "
                     f"the windows it allocates ({b['token_decoder_windows']:.0f} B): allocations are missed")
        measured = b["cache"] + b["token_decoder_windows"] + max(0.0, b["stage_activations"])
        if measured > planned + block:
            fail(f"{where}: caches + windows + stage heap = {measured:.0f} B per sample > planned "
                 f"{planned:.0f} B (+ {block} B of cache blocks)")
        if b["stage_activations"] > nc:
            fail(f"{where}: the compiled stages' heap grows by {b['stage_activations']:.0f} B per sample, "
                 f"more than the planned {nc:.0f} B per sequence besides the caches")
        print(f"{where}: planned {planned:.0f} B/sample; caches {b['cache']:.0f}, windows "
              f"{b['token_decoder_windows']:.0f}, stages {b['stage_activations']:.0f}, runtime heap "
              f"{b['runtime_heap']:.0f}, rss {b['rss']:.0f}")
        checked += 1
    if checked < 3:
        fail(f"only {checked} results checked (expected vanilla, hiergen and recgen)")
    print(f"memory_test.py: OK ({checked} results within their planned bytes)")


if __name__ == "__main__":
    main()
