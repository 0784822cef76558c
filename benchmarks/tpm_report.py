#!/usr/bin/python3
"""The per-sample memory and TPM table of issue 21's protocol, from one photon-bench JSON.

usage: /usr/bin/python3 benchmarks/tpm_report.py JSON [--results benchmarks/RESULTS.md]

JSON: `photon-bench --suite paper --settings DE --lengths DE=128/512 --slope-batches 1,2,4,8
--max-batch 8 --model vanilla.photon --model photon.photon` (both models in one run, so the
ratios and the cost model's prediction are in it). Prints a Markdown section and puts it into
RESULTS.md between the "tpm" markers (benchmarks/report.py keeps it).
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import results_md  # noqa: E402

MiB = 2.0 ** 20


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("json")
    ap.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
    a = ap.parse_args()
    d = json.load(open(a.json))
    mc = d["machine"]
    proto = d.get("protocol", {})
    de = next((x for x in proto.get("settings", []) if x.get("name") == "DE"), {})
    L = ["## Per-sample memory and TPM (`benchmarks/tpm_report.py`, issue 21's protocol)", "",
         f"`{os.path.relpath(a.json, os.path.dirname(HERE))}`, measured {d.get('date')} on "
         f"{d.get('host', {}).get('cpu', 'this machine')}: read bandwidth {mc['read_bw_gbs_1t']:.1f} / "
         f"{mc['read_bw_gbs_2t']:.1f} GB/s, load average {mc.get('loadavg_start')} -> {mc.get('loadavg_now')}; "
         f"{d.get('noise', {}).get('noisy_runs', 0)} of {d.get('noise', {}).get('runs', '?')} runs noisy. "
         f"DE setting {de.get('prompt', '?')} prompt / {de.get('gen', '?')} generated tokens; per-sample "
         f"memory = slope of the peak RSS over batches {', '.join(str(b) for b in proto.get('slope_batches', []))}; "
         f"throughput at batch {max(proto.get('slope_batches', [0]) or [0])} (median of "
         f"{proto.get('repeats', '?')}). MiB per sequence:", "",
         "| model / mode | cache | token-decoder windows | runtime heap (logits, sampling, workspace) | weight pages touched | RSS slope | RSS slope without weight pages | (RSS slope) / (cache + windows) | stage mallocs per token | throughput tok/s | TPM (K tok/s/GiB) |",
         "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in d["results"]:
        m = r["memory"]
        b = m.get("breakdown_per_sample_bytes", {})
        cw = (b.get("cache", 0) + b.get("token_decoder_windows", 0))
        thr = r["throughput_tps"]["median"] if isinstance(r["throughput_tps"], dict) else r["throughput_tps"]
        L.append(f"| {r['model']} {r['mode']} | {b.get('cache', 0) / MiB:.2f} | {b.get('token_decoder_windows', 0) / MiB:.2f} | "
                 f"{b.get('runtime_heap', 0) / MiB:.2f} | {b.get('weight_pages_touched', 0) / MiB:.2f} | "
                 f"{m['per_sample_bytes'] / MiB:.2f} | {b.get('rss_without_weight_pages', 0) / MiB:.2f} | "
                 f"{m['per_sample_bytes'] / cw:.2f} | {b.get('stage_mallocs_per_generated_token', 0):.2f} | "
                 f"{thr:.1f} | {r['tpm'] / 1000:.1f} |")
    de = d.get("ratios", {}).get("DE", {})
    cm = de.get("cost_model_recgen_over_vanilla", {})
    rv = de.get("recgen_over_vanilla", {})
    if cm:
        L += ["", f"RecGen / vanilla: TPM **{rv.get('tpm', float('nan')):.1f}** (throughput {rv.get('throughput', 0):.2f}x, "
              f"per-sample memory {rv.get('per_sample_memory', 0):.4f}x); the compile-time cost model predicts "
              f"TPM {cm['predicted_tpm_ratio']:.1f} (throughput {cm['predicted_throughput_ratio']:.2f}x, memory "
              f"{cm['predicted_memory_ratio']:.4f}x): measured / predicted = **{cm['measured_over_predicted']:.2f}**. "
              f"Counting the caches alone: {cm['measured_tpm_ratio_cache_only']:.1f} against "
              f"{cm['predicted_tpm_ratio_cache_only']:.1f} predicted."]
    md = "\n".join(L) + "\n"
    if a.results:
        results_md.put(a.results, results_md.marked("tpm", md))
    print(md)


if __name__ == "__main__":
    main()
