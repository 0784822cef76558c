#!/usr/bin/python3
"""Per-sample memory of the test fixtures against the compile-time plan (ctest `bench-memory`,
label `bench`). Compiles the vanilla and PHOTON C = (4, 4) fixtures, runs photon-bench's quick
DE setting over batches 1, 2, 4, 8 and checks, for every mode:

- the heap accounting works: a breakdown is reported, every part is finite, and the runtime's
  heap grows at least by the token-decoder windows it allocates (HierGen/RecGen);
- what the compiler plans stays within its plan: per sample, the caches plus the token-decoder
  windows plus the compiled stages' heap are at most the cost model's per-sample memory (caches
  at the run's context + non_cache_bytes_per_sequence, which counts the stage workspace; RecGen:
  recgen_total, which counts the second engine thread's workspace too) plus
  one cache block per level (caches are allocated in blocks);
- the compiled stages' heap per sample is at most the plan's per-sequence non-cache bytes plus,
  for a prefill call with more rows than the workspace is sized for, the per-sequence workspace
  per prompt token (before photon-free-at-last-use it was about 8x that on photon-mid);
- the stage workspace (photon-plan-workspace): the manifest plans one, the runtime's heap grows
  by at least its bytes per sequence (the engine sizes it from the manifest for its batch), and
  the compiled stages make no malloc while decoding (photon-bench's heap interposition counts
  the mallocs called from model.so: 0 per generated token).

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
    def bench(name, args):
        """photon-bench's quick DE suite over every artifact with `args`; its JSON."""
        js = os.path.join(a.work, name)
        cmd = [a.bench, "--suite", "quick", "--settings", "DE", "--no-sgemm", "--bw-bytes", "4000000",
               "--json", js] + args
        for out, _ in arts.values():
            cmd += ["--model", out]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            fail(f"photon-bench ({name}) exited {p.returncode}:\n{p.stderr[-2000:]}")
        with open(js) as f:
            return json.load(f)

    d = bench("memory.json", ["--slope-batches", "1,2,4,8", "--max-batch", "8"])
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
        ws = man.get("workspace")
        if not ws or not isinstance(ws.get("bytes_per_sequence"), int) or ws["bytes_per_sequence"] <= 0:
            fail(f"{where}: the manifest has no stage workspace ({ws!r})")
        wsps = ws["bytes_per_sequence"]
        if nc < wsps or (cm["non_cache_bytes_per_sequence"].get("stage_workspace") != wsps):
            fail(f"{where}: the cost model's per-sequence bytes ({nc}) do not count the workspace ({wsps})")
        if r["mode"] == "recgen":
            # RecGen's overlapped top-level step has a second engine thread, and its workspace.
            ov = cm["non_cache_bytes_per_sequence"].get("recgen_overlap_workspace")
            rt = cm["non_cache_bytes_per_sequence"].get("recgen_total")
            top = next((s_ for s_ in man["stages"] if s_["name"] == f"encode_{man['model']['levels']}"), None)
            if not top or ov != top["workspace"]["bytes_per_sequence"] or rt != nc + ov:
                fail(f"{where}: cost_model recgen_overlap_workspace = {ov!r}, recgen_total = {rt!r}; "
                     f"expected the top encoder stage's workspace per sequence and total + it")
            nc = rt
            planned = per1k * context / 1000.0 + nc
        if b["runtime_heap"] < 0.99 * (b["token_decoder_windows"] + wsps):
            fail(f"{where}: the runtime's heap grows by {b['runtime_heap']:.0f} B per sample, less than its "
                 f"windows ({b['token_decoder_windows']:.0f} B) plus the stage workspace ({wsps} B)")
        # Here the count includes the prefill of the whole prompt in one call (rows beyond the
        # decode-step sizing: one allocation per such call); the decode path is checked below.
        mallocs = b.get("stage_mallocs_per_generated_token")
        if not isinstance(mallocs, (int, float)) or mallocs > 0.1:
            fail(f"{where}: the compiled stages make {mallocs!r} mallocs per generated token (expected at "
                 f"most the prefill's fallback: every decode intermediate in the stage workspace)")
        measured = b["cache"] + b["token_decoder_windows"] + max(0.0, b["stage_activations"])
        if measured > planned + block:
            fail(f"{where}: caches + windows + stage heap = {measured:.0f} B per sample > planned "
                 f"{planned:.0f} B (+ {block} B of cache blocks)")
        # The stages' own heap: only prefill calls with more rows than the engine sized the
        # workspace for (the whole prompt in one call) allocate, at most their plan for those
        # rows, i.e. the per-sequence workspace per prompt token.
        prefill_allowance = wsps * r["prompt"]
        if b["stage_activations"] > nc + prefill_allowance:
            fail(f"{where}: the compiled stages' heap grows by {b['stage_activations']:.0f} B per sample, "
                 f"more than the planned {nc:.0f} B per sequence besides the caches plus the prefill's "
                 f"{prefill_allowance:.0f} B")
        print(f"{where}: planned {planned:.0f} B/sample; caches {b['cache']:.0f}, windows "
              f"{b['token_decoder_windows']:.0f}, stages {b['stage_activations']:.0f}, runtime heap "
              f"{b['runtime_heap']:.0f}, workspace {wsps}, stage mallocs/token {mallocs}, rss {b['rss']:.0f}")
        checked += 1
    if checked < 3:
        fail(f"only {checked} results checked (expected vanilla, hiergen and recgen)")

    # The decode path alone: a one-token prompt (its prefill is a decode-sized step), then 48
    # generated tokens; no stage may malloc (photon-bench counts mallocs called from model.so).
    d1 = bench("decode-mallocs.json", ["--lengths", "DE=1/48", "--slope-batches", "1,4", "--max-batch", "4"])
    modes = 0
    for r in d1["results"]:
        where = f"{r['model']}/{r['mode']}/DE=1/48"
        b = r["memory"].get("breakdown_per_sample_bytes") or {}
        mallocs = b.get("stage_mallocs_per_generated_token")
        if mallocs != 0:
            fail(f"{where}: the compiled stages make {mallocs!r} mallocs per generated token while decoding "
                 f"(expected 0: every intermediate in the stage workspace)")
        print(f"{where}: 0 stage mallocs per generated token")
        modes += 1
    if modes < 3:
        fail(f"decode mallocs checked for {modes} modes (expected vanilla, hiergen and recgen)")
    print(f"memory_test.py: OK ({checked} results within their planned bytes)")


if __name__ == "__main__":
    main()
