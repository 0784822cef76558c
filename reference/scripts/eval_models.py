#!/usr/bin/python3
"""Summarise the trained tiny models: validation bits per byte (from metrics.json, full held-out
set), bpb by position inside a token chunk and latent collapse (on the first 64 validation
windows), and greedy HierGen / RecGen continuations of a prompt. Prints a markdown table.

usage: /usr/bin/python3 reference/scripts/eval_models.py [MODEL_DIR ...]
"""
import glob
import json
import math
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from photon_ref.config import Config            # noqa: E402
from photon_ref.model import build_model        # noqa: E402
from photon_ref.generate import generate        # noqa: E402
from photon_ref import data as D                # noqa: E402

PROMPT = "It is a truth universally acknowledged, that a single man in possession"


@torch.no_grad()
def main():
    torch.set_num_threads(1)
    dirs = sys.argv[1:] or sorted(glob.glob(os.path.join(HERE, "..", "models", "tiny-*")))
    _, val = D.load_split()
    w = D.windows(val, 256)[:64]
    rows, samples = [], []
    for d in dirs:
        with open(os.path.join(d, "config.json")) as f:
            cfg = Config.from_dict(json.load(f))
        with open(os.path.join(d, "metrics.json")) as f:
            met = json.load(f)
        m = build_model(cfg)
        m.load_state_dict(torch.load(os.path.join(d, "weights.pt")))
        m.eval()
        name = os.path.basename(os.path.normpath(d))
        pos, collapse = "", ""
        if cfg.family != "vanilla":
            out = m(w)
            lg = out[0] if isinstance(out, tuple) else out
            ce = torch.nn.functional.cross_entropy(lg.reshape(-1, 256), w.reshape(-1), reduction="none")
            ce = ce.reshape(len(w), -1, cfg.chunk_sizes[0]).mean((0, 1)) / math.log(2)
            pos = " / ".join(f"{float(c):.2f}" for c in ce)
            x1 = m.encoder(w[:8])[0]
            v = torch.nn.functional.normalize(x1.reshape(-1, x1.shape[-1]), dim=-1)
            collapse = f"{float((v @ v.T).mean()):.4f}"
        rows.append(f"| {name} | {met['parameters'] / 1e6:.2f} M | {met['steps']} | "
                    f"{met['tokens_seen'] / 1e6:.2f} M | {met['train_minutes']:.1f} | {met['lr']:g} | "
                    f"**{met['val_bpb']:.3f}** | {pos} | {collapse} |")
        prompt = D.encode(PROMPT)
        modes = ["hiergen", "recgen"] if cfg.family == "photon" else ["hiergen"]
        for mode in modes:
            r = generate(m, prompt, 64, mode=mode)
            samples.append(f"- {name} ({mode}): `{D.decode(r.tokens)!r}`")
    print("| model | params | steps | bytes seen | minutes | lr | val bpb | bpb by position in chunk | X1 pairwise cos |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print()
    print(f"Greedy continuations of {PROMPT!r}:")
    print("\n".join(samples))


if __name__ == "__main__":
    main()
