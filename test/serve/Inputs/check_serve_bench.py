"""Checks what benchmarks/serve_bench.py wrote under OUT (serve-bench.test): the JSON's
results (every level of every model, the requests asked for, no errors, positive finite
figures), its machine and load record, the plot and the Markdown section."""
import json
import math
import os
import sys

out = sys.argv[1]
doc = json.load(open(os.path.join(out, "results", "serve", "serve.json")))
meta, results = doc["meta"], doc["results"]
assert meta["cpu"] and len(meta["load_before"]) == 3 and len(meta["load_after"]) == 3, meta
keys = [(r["model"], r["mode"], r["concurrency"]) for r in results]
want = [(m, mode, c) for m, mode in (("tiny-photon", "recgen"), ("tiny-photon", "hiergen"),
                                     ("tiny-vanilla", "hiergen")) for c in (1, 2)]
assert keys == want, keys
for r in results:
    assert r["errors"] == 0 and r["requests"] == 4 and not r["time_capped"], r
    assert r["output_tokens"] == 4 * 256, r  # ignore_eos: every request runs to max_tokens
    for k in ("ttft_p50_ms", "ttft_p99_ms", "tokens_per_s", "requests_per_s"):
        assert math.isfinite(r[k]) and r[k] > 0, (k, r)
    for k in ("itl_p50_ms", "itl_p99_ms"):  # a gap can round to 0 on a fast tiny model
        assert math.isfinite(r[k]) and r[k] >= 0, (k, r)
    assert r["ttft_p50_ms"] <= r["ttft_p99_ms"] and r["itl_p50_ms"] <= r["itl_p99_ms"], r
for m in doc["memory"]:  # /metrics, sampled at each request's first text, saw them
    assert m["cache_bytes_per_seq"] > 0 and m["rss_peak_bytes"] > 0, m
# RecGen keeps only the top level's cache: less per sequence than HierGen.
mem = {(m["model"], m["mode"]): m["cache_bytes_per_seq"] for m in doc["memory"]}
assert mem[("tiny-photon", "recgen")] < mem[("tiny-photon", "hiergen")], mem
png = open(os.path.join(out, "plots", "serve_throughput.png"), "rb").read(8)
assert png == b"\x89PNG\r\n\x1a\n", png
md = open(os.path.join(out, "results", "serve", "serve.md")).read()
assert "](../../plots/serve_throughput.png)" in md, md
print("serve_bench output OK: %d levels" % len(results))
