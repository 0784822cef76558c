#!/usr/bin/python3
"""The PHOTON latent-collapse study of docs/reference.md: training runs of the PHOTON proxy model
(photon_ref.config.proxy_config: the bundled model's tokenizer and structure at about 1/16 of its
compute per token) under the variants below, all with the same seed, data order, batch (8 x 128
tokens) and steps, then a table and a JSON file of what train.py logged.

usage: /usr/bin/python3 reference/scripts/collapse_study.py [--out out/collapse] [--steps 400]
       [--only NAME ...] [--jobs 1] [--table-only] [--json reference/models/collapse_study.json]

Measured per variant (train.py's diagnostics, every 25 steps): X1 pairwise cosine and the share
of X1's mean square that varies with the input (8 validation windows), L_rec, the gradient norm
reaching F1 (EmbEnc + enc1) from CE and from L_rec, bits per token by position in the
meta-context (first 32 validation windows), validation bits per byte (all windows at the end).
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# name -> (description, train.py flags); every run: --family photon --size proxy
VARIANTS = {
    "paper": ("level-1 shift, alpha 0.3, EmbEnc std 0.02 (the paper's composition, GPT-2 init)",
              ["--enc-emb-std", "0.02"]),
    "stopgrad": ("as paper, stop-gradient on the L_rec target", ["--enc-emb-std", "0.02", "--rec-stop-grad"]),
    "alpha0": ("as paper, alpha 0 (no L_rec)", ["--enc-emb-std", "0.02", "--alpha", "0"]),
    "unshifted-alpha0": ("no level-1 shift, alpha 0", ["--enc-emb-std", "0.02", "--no-level1-shift", "--alpha", "0"]),
    "lr3e-4": ("as paper, lr 3e-4 (the paper's), warm-up 200", ["--enc-emb-std", "0.02", "--lr", "3e-4", "--warmup", "200"]),
    "freeze100": ("as paper, encoder frozen for the first 100 steps", ["--enc-emb-std", "0.02", "--freeze-encoder", "100"]),
    "fp32": ("as paper, float32 matmuls instead of bfloat16", ["--enc-emb-std", "0.02", "--bf16", "0"]),
    "emb1": ("as paper, EmbEnc std 1.0", ["--enc-emb-std", "1.0"]),
    "emb1-stopgrad": ("EmbEnc std 1.0 + stop-gradient (the bundled model's recipe)",
                      ["--enc-emb-std", "1.0", "--rec-stop-grad"]),
    "emb1-stopgrad-unshifted": ("EmbEnc std 1.0 + stop-gradient, no level-1 shift",
                                ["--enc-emb-std", "1.0", "--rec-stop-grad", "--no-level1-shift"]),
    "emb1-alpha0": ("EmbEnc std 1.0, alpha 0 (no L_rec)", ["--enc-emb-std", "1.0", "--alpha", "0"]),
    "emb1-alpha0-unshifted": ("EmbEnc std 1.0, alpha 0, no level-1 shift",
                              ["--enc-emb-std", "1.0", "--alpha", "0", "--no-level1-shift"]),
    "emb1-encoder-input": ("EmbEnc std 1.0, alpha 0, token decoder reads X1 (third-party variant)",
                           ["--enc-emb-std", "1.0", "--alpha", "0", "--token-decoder-input", "encoder"]),
}


def run(names, a):
    procs = []
    pending = list(names)
    while pending or procs:
        while pending and len(procs) < a.jobs:
            n = pending.pop(0)
            d = os.path.join(a.out, n)
            os.makedirs(d, exist_ok=True)
            cmd = ["nice", "-n", "10", sys.executable, os.path.join(ROOT, "reference", "train.py"),
                   "--family", "photon", "--size", "proxy", "--batch", "8", "--out", d, "--threads", "1",
                   "--max-steps", str(a.steps), "--eval-every", "25", "--eval-windows", "32", "--no-export",
                   "--warmup", "100", "--lr", "2e-3"] + VARIANTS[n][1]
            log = open(os.path.join(d, "stdout.txt"), "w")
            procs.append((n, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)))
            print("started", n, flush=True)
        n, p = procs[0]
        p.wait()
        procs.pop(0)
        print("finished", n, "rc", p.returncode, flush=True)


def summarise(names, a):
    out = {}
    for n in names:
        path = os.path.join(a.out, n, "train.log.jsonl")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            recs = [json.loads(line) for line in f]
        done = next((r for r in recs if r.get("event") == "done"), None)
        evals = [r for r in recs if "x1_cos" in r]
        grads = [(r["step"], r["grad_f1"]) for r in recs if "grad_f1" in r]
        if not done or not evals:
            continue
        out[n] = {"description": VARIANTS[n][0], "flags": " ".join(VARIANTS[n][1]), "steps": done["steps"],
                  "val_bpb": done["val_bpb"], "x1_cos_final": done["latent_collapse_cos"],
                  "bpt_by_position": done["bpt_by_position"],
                  "trajectory": [{"step": r["step"], "x1_cos": r["x1_cos"], "x1_centered_var": r.get("x1_centered_var"),
                                  "rec": r["rec"], "val_bpb_subset": r["val_bpb_subset"]} for r in evals],
                  "grad_f1": [{"step": s, **g} for s, g in grads]}
    return out


def table(res):
    print("| variant | X1 cos at step 25 / 100 / end | X1 varying share (end) | L_rec (end) | CE gradient norm at F1, step 1 / 100 / end "
          "| bits/token at chunk starts (pos 0, 4, 8, 12) / other positions | val bpb |")
    print("|---|---|---|---|---|---|---|")
    for n, r in res.items():
        tr = {t["step"]: t for t in r["trajectory"]}
        cos = lambda s: f"{tr[s]['x1_cos']:.3f}" if s in tr else "-"
        g = {x["step"]: x for x in r["grad_f1"]}
        gce = lambda s: f"{g[s]['ce']:.1e}" if s in g else "-"
        last = r["trajectory"][-1]
        lastg = r["grad_f1"][-1]["step"] if r["grad_f1"] else None
        pos = r["bpt_by_position"]
        starts = sum(pos[i] for i in (0, 4, 8, 12)) / 4
        others = sum(v for i, v in enumerate(pos) if i % 4) / 12
        print(f"| {n} | {cos(25)} / {cos(100)} / {r['x1_cos_final']:.3f} | {last['x1_centered_var']:.3f} | "
              f"{last['rec']:.3f} | {gce(1)} / {gce(100)} / {gce(lastg)} | {starts:.2f} / {others:.2f} | "
              f"{r['val_bpb']:.3f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "out", "collapse"))
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--table-only", action="store_true")
    ap.add_argument("--json", default=os.path.join(ROOT, "reference", "models", "collapse_study.json"))
    a = ap.parse_args()
    names = a.only or list(VARIANTS)
    if not a.table_only:
        run(names, a)
    res = summarise(list(VARIANTS), a)
    table(res)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"config": "photon_ref.config.proxy_config('photon'), batch 8 x 128 tokens, lr 2e-3, "
                                 "warm-up 100 steps then cosine to 10%, seed 0",
                       "steps": a.steps, "variants": res}, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
