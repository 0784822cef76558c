#!/usr/bin/env python3
"""Formats photon-run --json output for scripts/demo.sh: the generated text, or the
side-by-side table of models and generation modes."""
import argparse
import json
import sys


def human_bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024.0


def show_text(path):
    with open(path, encoding="utf-8") as f:
        run = json.load(f)
    for req in run["requests"]:
        print(f"   prompt: {req['prompt']!r}")
        print("   " + (req["prompt"] + req["text"]).replace("\n", "\n   "))
    s = run["stats"]
    print(f"   [{run['family']}, {run['mode']}] decode {s['decode_tokens_per_s']:.0f} tokens/s, "
          f"peak KV cache {human_bytes(s['cache_peak_total_bytes'])}")


def show_table(specs, metrics):
    bpb = {}
    for m in metrics or []:
        with open(m) as f:
            d = json.load(f)
        bpb[d["family"]] = d.get("val_bpb")
    rows = []
    for spec in specs:
        family, mode, path = spec.split(":", 2)
        with open(path, encoding="utf-8") as f:
            s = json.load(f)["stats"]
        rows.append((family, mode, s))
    base = next((s for f, m, s in rows if f == "vanilla"), None)
    head = ("model", "mode", "val bpb", "prefill tok/s", "decode tok/s", "peak KV cache",
            "KV vs vanilla", "TPM (tok/s/GiB)", "TPM vs vanilla")
    out = []
    for family, mode, s in rows:
        kv = s["cache_peak_total_bytes"]
        tpm = s["tpm_tokens_per_s_per_gib"]
        out.append((
            family, mode if family == "photon" else "-",
            f"{bpb[family]:.3f}" if bpb.get(family) is not None else "n/a",
            f"{s['prefill_tokens_per_s']:.0f}", f"{s['decode_tokens_per_s']:.0f}",
            human_bytes(kv),
            f"{kv / base['cache_peak_total_bytes']:.3f}x" if base else "n/a",
            f"{tpm:.3g}",
            f"{tpm / base['tpm_tokens_per_s_per_gib']:.1f}x" if base else "n/a"))
    widths = [max(len(str(r[i])) for r in out + [head]) for i in range(len(head))]
    fmt = " | ".join("{:<%d}" % w for w in widths)
    print(fmt.format(*head))
    print("-+-".join("-" * w for w in widths))
    for r in out:
        print(fmt.format(*r))
    print("\nTPM = decode tokens/s per GiB of peak KV cache (the paper's throughput per memory). "
          "val bpb = validation bits per byte from training (reference/models/*/metrics.json).")


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--text", help="photon-run --json output to print as text")
    p.add_argument("--table", nargs="+", help="family:mode:path entries")
    p.add_argument("--metrics", nargs="*", help="metrics.json of the trained models")
    a = p.parse_args()
    if a.text:
        show_text(a.text)
    if a.table:
        show_table(a.table, a.metrics)
    if not a.text and not a.table:
        p.error("give --text or --table")


if __name__ == "__main__":
    sys.exit(main())
