#!/usr/bin/python3
"""Train the section-6 'tiny' models on the Austen corpus and export them.

usage: /usr/bin/python3 reference/train.py --family {photon,vanilla,block} [--minutes 10]
       [--threads 1] [--batch 16] [--lr 2e-3] [--out reference/models/tiny-<family>]

Writes model.onnx, model.plain.onnx, weights.pt, config.json, tokenizer.json, metrics.json.
Validation bits per byte = mean CE (nats) over the held-out 5% in non-overlapping windows of
T = 256 bytes / ln 2 (PHOTON/Block predict every byte of a window; vanilla every byte but the
first).
"""
import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from photon_ref.config import tiny_config, Config  # noqa: E402
from photon_ref.model import build_model          # noqa: E402
from photon_ref.export import export, check_convention   # noqa: E402
from photon_ref import data as D                   # noqa: E402


@torch.no_grad()
def evaluate(model, windows, batch=32, limit=None):
    model.eval()
    tot, n = 0.0, 0
    w = windows if limit is None else windows[:limit]
    for i in range(0, len(w), batch):
        x = w[i: i + batch]
        if model.cfg.family == "vanilla":
            lg = model(x)[:, :-1]
            tgt = x[:, 1:]
        else:
            out = model(x)
            lg = out[0] if isinstance(out, tuple) else out
            tgt = x
        tot += float(torch.nn.functional.cross_entropy(lg.reshape(-1, lg.shape[-1]), tgt.reshape(-1),
                                                       reduction="sum"))
        n += tgt.numel()
    model.train()
    return tot / n / math.log(2)


@torch.no_grad()
def latent_collapse(model, windows):
    """mean pairwise cosine of the X1 vectors over 8 validation windows (1.0 = the encoder
    output no longer depends on the input: the latent path carries no information)"""
    if model.cfg.family == "vanilla":
        return None
    x1 = model.encoder(windows[:8])[0]
    v = torch.nn.functional.normalize(x1.reshape(-1, x1.shape[-1]), dim=-1)
    return round(float((v @ v.T).mean()), 4)


def write_exports(model, cfg, out):
    model.eval()
    mp = export(model, os.path.join(out, "model.onnx"), functions=True)
    check_convention(mp, cfg, model.state_dict())
    export(model, os.path.join(out, "model.plain.onnx"), functions=False)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg.to_dict(), f, indent=1, sort_keys=True)
    with open(os.path.join(out, "tokenizer.json"), "w") as f:
        json.dump(D.TOKENIZER, f, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", required=True, choices=["photon", "vanilla", "block"])
    ap.add_argument("--minutes", type=float, default=10.0, help="training time budget (wall clock)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rec-stop-grad", action="store_true",
                    help="PHOTON: stop-gradient on the L_rec target X1 (section 5 flag)")
    ap.add_argument("--alpha", type=float, default=None, help="PHOTON: L_rec weight (default 0.3)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--export-only", action="store_true",
                    help="re-export OUT/weights.pt (with OUT/config.json) to ONNX without training")
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: time budget only)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    here = os.path.dirname(os.path.abspath(__file__))
    out = a.out or os.path.join(here, "models", f"tiny-{a.family}")
    if a.export_only:
        with open(os.path.join(out, "config.json")) as f:
            cfg = Config.from_dict(json.load(f))
        model = build_model(cfg)
        model.load_state_dict(torch.load(os.path.join(out, "weights.pt")))
        write_exports(model, cfg, out)
        print(f"[{a.family}] re-exported {out}")
        return
    cfg = tiny_config(a.family)
    cfg.rec_stop_grad = a.rec_stop_grad
    if a.alpha is not None:
        cfg.alpha = a.alpha
    model = build_model(cfg)
    nparams = sum(p.numel() for p in model.parameters())
    train, val = D.load_split()
    val_w = D.windows(val, cfg.context)
    gen = torch.Generator().manual_seed(a.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.95), weight_decay=0.01)
    print(f"[{a.family}] {nparams} parameters, train {len(train)} bytes, val {len(val)} bytes "
          f"({len(val_w)} windows of {cfg.context}), batch {a.batch}, {a.threads} thread(s), "
          f"budget {a.minutes} min", flush=True)
    t0 = time.time()
    budget = a.minutes * 60
    step = 0
    model.train()
    while True:
        el = time.time() - t0
        if a.max_steps and step >= a.max_steps:
            break
        if el >= budget:
            break
        # schedule on wall-clock progress (the machine is shared: step times vary)
        if step < a.warmup:
            lr = a.lr * (step + 1) / a.warmup
        else:
            prog = min(1.0, el / budget)
            lr = a.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * prog)))
        for g in opt.param_groups:
            g["lr"] = lr
        x = D.random_batch(train, a.batch, cfg.context, gen)
        loss, ce, rec = model.loss(x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 20 == 0 or step == 1:
            el = time.time() - t0
            print(f"[{a.family}] step {step} loss {float(loss):.4f} ce {float(ce):.4f} "
                  f"({float(ce) / math.log(2):.3f} bpb) rec {float(rec):.4f} lr {lr:.2e} "
                  f"{step * a.batch * cfg.context / el:.0f} tok/s {el / 60:.1f} min", flush=True)
        if step % 200 == 0:
            print(f"[{a.family}] step {step} val bpb (first 64 windows) {evaluate(model, val_w, limit=64):.4f}", flush=True)
    train_s = time.time() - t0
    model.eval()
    bpb = evaluate(model, val_w)
    print(f"[{a.family}] done: {step} steps, {train_s / 60:.1f} min, val bpb {bpb:.4f}", flush=True)
    os.makedirs(out, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(out, "weights.pt"))
    write_exports(model, cfg, out)
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump({"family": a.family, "parameters": nparams, "steps": step, "batch": a.batch,
                   "context": cfg.context, "tokens_seen": step * a.batch * cfg.context,
                   "train_minutes": round(train_s / 60, 2), "threads": a.threads, "lr": a.lr,
                   "val_bpb": round(bpb, 4), "val_bytes": int(val_w.numel()),
                   "alpha": cfg.alpha if cfg.family == "photon" else None,
                   "rec_stop_grad": cfg.rec_stop_grad if cfg.family == "photon" else None,
                   "latent_collapse_cos": latent_collapse(model, val_w)}, f, indent=1)


if __name__ == "__main__":
    main()
