#!/usr/bin/python3
"""Train a model on the Austen corpus and export it (resumable, deterministic for a given seed).

usage: /usr/bin/python3 reference/train.py --family {photon,vanilla,block} [--size small|tiny]
       [--epochs 2] [--threads 2] [--batch 16] [--lr 2e-3] [--warmup 100] [--out DIR]
       [--resume] [--export-only] [PHOTON flags: --alpha A --rec-stop-grad --no-level1-shift
       --alpha-warmup N]

--size small (default): the bundled models, SentencePiece BPE V = 4096
(reference/data/austen-bpe4096.model, scripts/train_tokenizer.py), D = 192, T = 256 tokens
(photon_ref.config.small_config). --size tiny: the byte-level section-6 configuration.

The budget is a number of epochs of the training split (tokens seen = epochs x training
tokens, the same for every family); each epoch visits every non-overlapping window of T tokens
once, from a random offset, in a random order. The learning rate warms up linearly for
--warmup steps, then follows a cosine to 10% at the last step (a function of the step only, so a
resumed run follows the same schedule). Matmuls run in bfloat16 under torch.autocast (--bf16,
default on: 4-5x the float32 speed on this CPU); evaluation is always float32, as the compiled
artifact computes.

Every --ckpt-minutes the model, optimizer, data order and RNG state go to OUT/ckpt.pt (not
committed); --resume continues from it and the result equals an uninterrupted run's up to
float32 nondeterminism of the kernels. OUT/train.log.jsonl has one line per --log-every steps
(step, epoch, tokens seen, wall time, loss, CE, L_rec, lr) and per --eval-every steps the
validation bits per byte (first --eval-windows windows) and, for PHOTON, the collapse
diagnostics: X1 pairwise cosine, gradient norms reaching F1 from CE and from L_rec, and bits
per token by position in the meta-context.

At the end: OUT/weights.pt (not committed), model.onnx, model.plain.onnx, config.json,
tokenizer.json (+ tokenizer.model), metrics.json. Validation bits per byte = summed CE (nats)
of the predicted tokens over the held-out split in non-overlapping windows of T tokens / ln 2 /
the UTF-8 bytes of those tokens (PHOTON/Block predict every token of a window, vanilla every
token but the first).
"""
import argparse
import contextlib
import json
import math
import os
import shutil
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from photon_ref.config import tiny_config, small_config, proxy_config, Config  # noqa: E402
from photon_ref.model import build_model          # noqa: E402
from photon_ref.export import export, check_convention   # noqa: E402
from photon_ref import data as D                   # noqa: E402


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------
class Corpus:
    """Training stream, validation windows and the byte length of every token id."""

    def __init__(self, cfg, tokenizer, val_limit=0):
        self.tokenizer = tokenizer
        if tokenizer == "byte":
            tr, va = D.load_split()
            self.train = tr.astype(np.int64)
            self.val = va.astype(np.int64)
            self.token_bytes = torch.ones(256, dtype=torch.int64)
            self.tok = None
        else:
            self.tok = D.SentencePiece()
            if self.tok.vocab != cfg.vocab:
                raise SystemExit(f"tokenizer has {self.tok.vocab} pieces, the model {cfg.vocab}")
            self.train, _ = D.load_token_split(self.tok)
            self.val = np.asarray(self.tok.encode(D.val_text()), dtype=np.int64)
            self.token_bytes = torch.from_numpy(self.tok.token_bytes())
        self.val_w = D.windows(self.val, cfg.context)
        if val_limit:
            self.val_w = self.val_w[:val_limit]

    def epoch_order(self, T, epoch, seed):
        """(offset, permutation of window starts) of an epoch, a function of (seed, epoch)."""
        g = torch.Generator().manual_seed(seed * 1000003 + epoch)
        off = int(torch.randint(0, T, (1,), generator=g))
        n = (len(self.train) - off) // T
        return off, torch.randperm(n, generator=g)

    def batch(self, T, starts):
        return torch.stack([torch.from_numpy(self.train[s: s + T]) for s in starts])


def scored(model, x):
    """(logits, targets) of the predicted tokens of windows x."""
    if model.cfg.family == "vanilla":
        return model(x)[:, :-1], x[:, 1:]
    out = model(x)
    return (out[0] if isinstance(out, tuple) else out), x


@torch.no_grad()
def evaluate(model, corpus, batch=16, limit=None):
    """bits per byte over the validation windows (float32)."""
    was = model.training
    model.eval()
    w = corpus.val_w if limit is None else corpus.val_w[:limit]
    nats, nbytes = 0.0, 0
    for i in range(0, len(w), batch):
        lg, tgt = scored(model, w[i: i + batch])
        nats += float(F.cross_entropy(lg.reshape(-1, lg.shape[-1]).double(), tgt.reshape(-1), reduction="sum"))
        nbytes += int(corpus.token_bytes[tgt].sum())
    model.train(was)
    return nats / nbytes / math.log(2)


@torch.no_grad()
def by_position(model, corpus, limit=32):
    """bits per token by position in the meta-context (PHOTON/Block: C_1..C_L tokens)."""
    was = model.training
    model.eval()
    w = corpus.val_w[:limit]
    lg, tgt = scored(model, w)
    ce = F.cross_entropy(lg.reshape(-1, lg.shape[-1]), tgt.reshape(-1), reduction="none").reshape(tgt.shape)
    P = model.cfg.meta
    model.train(was)
    return [round(float(c), 3) for c in (ce.reshape(len(w), -1, P).mean((0, 1)) / math.log(2))]


@torch.no_grad()
def latent_collapse(model, windows):
    """mean pairwise cosine of the X1 vectors over 8 validation windows (1.0 = the encoder
    output no longer depends on the input: the latent path carries no information)"""
    if model.cfg.family == "vanilla":
        return None
    was = model.training
    model.eval()
    x1 = model.encoder(windows[:8])[0]
    model.train(was)
    v = F.normalize(x1.reshape(-1, x1.shape[-1]), dim=-1)
    return round(float((v @ v.T).mean()), 4)


@torch.no_grad()
def latent_spread(model, windows):
    """share of the X1 vectors' mean square that varies with the input (over 8 validation
    windows): sum |x - mean|^2 / sum |x|^2; ~1 for unrelated vectors, 0 after a collapse"""
    was = model.training
    model.eval()
    x1 = model.encoder(windows[:8])[0].reshape(-1, model.cfg.width)
    model.train(was)
    c = x1 - x1.mean(0)
    return round(float(c.pow(2).sum() / x1.pow(2).sum()), 5)


def grad_norms(model, x, amp):
    """|d CE / d F1 params| and |d L_rec / d F1 params| on batch x (PHOTON/Block)."""
    params = [p for n, p in model.named_parameters() if n.startswith("enc1.") or n == "emb_enc"]
    with amp():
        _, ce, rec = model.loss(x)
    out = {}
    for name, term in (("ce", ce), ("rec", rec)):
        if term.requires_grad:
            gs = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
            out[name] = round(math.sqrt(sum(float(g.pow(2).sum()) for g in gs if g is not None)), 6)
    return out


# ---------------------------------------------------------------------------------------------
# exports
# ---------------------------------------------------------------------------------------------
def write_exports(model, cfg, out, corpus):
    model.eval()
    mp = export(model, os.path.join(out, "model.onnx"), functions=True)
    check_convention(mp, cfg, model.state_dict())
    export(model, os.path.join(out, "model.plain.onnx"), functions=False)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg.to_dict(), f, indent=1, sort_keys=True)
    with open(os.path.join(out, "tokenizer.json"), "w") as f:
        if corpus.tok is None:
            json.dump(D.TOKENIZER, f, indent=1)
        else:
            json.dump(corpus.tok.manifest("tokenizer.model"), f, indent=1)
    if corpus.tok is not None:
        shutil.copyfile(corpus.tok.path, os.path.join(out, "tokenizer.model"))


def load_trained(out):
    """(cfg, model) of a model directory: weights.pt if present, else the ONNX initializers."""
    with open(os.path.join(out, "config.json")) as f:
        cfg = Config.from_dict(json.load(f))
    model = build_model(cfg)
    wp = os.path.join(out, "weights.pt")
    if os.path.exists(wp):
        model.load_state_dict(torch.load(wp))
    else:
        import onnx
        from onnx import numpy_helper
        mp = onnx.load(os.path.join(out, "model.onnx"))
        init = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in mp.graph.initializer}
        model.load_state_dict({n: init[n] for n in model.state_dict()})
    model.eval()
    return cfg, model


# ---------------------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", required=True, choices=["photon", "vanilla", "block"])
    ap.add_argument("--size", default="small", choices=["small", "tiny", "proxy"],
                    help="small: the bundled models; tiny: byte-level section-6 models; proxy: the "
                         "collapse study's 16x cheaper stand-in for small (same tokenizer)")
    ap.add_argument("--epochs", type=float, default=2.0, help="token budget in epochs of the training split")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-ratio", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bf16", type=int, default=1, help="1: matmuls in bfloat16 (autocast); 0: float32")
    ap.add_argument("--rec-stop-grad", action="store_true",
                    help="PHOTON: stop-gradient on the L_rec target X1 (section 5 flag)")
    ap.add_argument("--alpha", type=float, default=None, help="PHOTON: L_rec weight (default 0.3)")
    ap.add_argument("--alpha-warmup", type=int, default=0,
                    help="PHOTON: L_rec weight 0 for this many steps, then alpha")
    ap.add_argument("--enc-emb-std", type=float, default=None,
                    help="PHOTON/Block: std of the encoder embedding at init (small: 1.0, tiny: 0.02)")
    ap.add_argument("--no-level1-shift", action="store_true",
                    help="PHOTON: chunk k decoded from Xhat1_k instead of Xhat1_{k-1} (section 5 flag)")
    ap.add_argument("--freeze-encoder", type=int, default=0,
                    help="PHOTON/Block: encoder parameters (EmbEnc, F_l, compressors) frozen for this many steps")
    ap.add_argument("--token-decoder-input", choices=["decoder", "encoder"], default=None,
                    help="PHOTON: the token decoder reads Xhat1 (paper) or X1 (third-party variant)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--resume", action="store_true", help="continue from OUT/ckpt.pt")
    ap.add_argument("--ckpt-minutes", type=float, default=5.0)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--eval-windows", type=int, default=64)
    ap.add_argument("--max-steps", type=int, default=0, help="stop (and export) after this many steps")
    ap.add_argument("--no-export", action="store_true", help="experiments: write metrics only")
    ap.add_argument("--val-limit", type=int, default=0,
                    help="tests: use only the first N validation windows (0: all)")
    ap.add_argument("--stop-after", type=int, default=0,
                    help="tests: checkpoint and exit after this many steps, as if interrupted")
    ap.add_argument("--export-only", action="store_true",
                    help="re-export OUT (weights.pt or the ONNX initializers) without training")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    here = os.path.dirname(os.path.abspath(__file__))
    out = a.out or os.path.join(here, "models", f"{a.size}-{a.family}")
    os.makedirs(out, exist_ok=True)
    tokenizer = "byte" if a.size == "tiny" else "sentencepiece"
    if a.export_only:
        cfg, model = load_trained(out)
        write_exports(model, cfg, out, Corpus(cfg, tokenizer))
        print(f"[{a.family}] re-exported {out}")
        return

    cfg = {"tiny": tiny_config, "small": small_config, "proxy": proxy_config}[a.size](a.family)
    cfg.rec_stop_grad = a.rec_stop_grad
    if a.alpha is not None:
        cfg.alpha = a.alpha
    if a.no_level1_shift:
        cfg.level1_shift = False
    if a.enc_emb_std is not None:
        cfg.enc_emb_std = a.enc_emb_std
    if a.token_decoder_input:
        cfg.token_decoder_input = a.token_decoder_input
    cfg.validate()
    model = build_model(cfg)
    nparams = sum(p.numel() for p in model.parameters())
    corpus = Corpus(cfg, tokenizer, a.val_limit)
    T = cfg.context
    steps_per_epoch = (len(corpus.train) // T) // a.batch
    total_steps = a.max_steps or max(1, int(round(a.epochs * steps_per_epoch)))
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.95), weight_decay=0.01)
    amp = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if a.bf16 else contextlib.nullcontext

    ckpt = os.path.join(out, "ckpt.pt")
    log_path = os.path.join(out, "train.log.jsonl")
    state = dict(step=0, epoch=0, pos=0, wall=0.0, tokens=0, total_steps=total_steps)
    if a.resume and os.path.exists(ckpt):
        c = torch.load(ckpt)
        if Config.from_dict(c["config"]).to_dict() != cfg.to_dict() or c["args"]["seed"] != a.seed \
                or c["args"]["batch"] != a.batch or c["state"].get("total_steps", total_steps) != total_steps:
            raise SystemExit(f"{ckpt} was written for another configuration, seed, batch or budget")
        model.load_state_dict(c["model"])
        opt.load_state_dict(c["opt"])
        state = c["state"]
        torch.set_rng_state(c["rng"])
        print(f"[{a.family}] resumed at step {state['step']} ({state['wall'] / 60:.1f} min)", flush=True)
    elif os.path.exists(log_path):
        os.remove(log_path)
    logf = open(log_path, "a")

    def log(rec):
        logf.write(json.dumps(rec) + "\n")
        logf.flush()

    print(f"[{a.family}] {nparams} parameters, train {len(corpus.train)} tokens, val {len(corpus.val)} tokens "
          f"({len(corpus.val_w)} windows of {T}), batch {a.batch}, {total_steps} steps "
          f"({total_steps * a.batch * T / len(corpus.train):.2f} epochs), {a.threads} thread(s), bf16 {a.bf16}",
          flush=True)
    log(dict(event="start", step=state["step"], parameters=nparams, config=cfg.to_dict(), args=vars(a),
             train_tokens=len(corpus.train), total_steps=total_steps))

    def save_ckpt():
        tmp = ckpt + ".tmp"
        torch.save(dict(model=model.state_dict(), opt=opt.state_dict(), state=state, rng=torch.get_rng_state(),
                        config=cfg.to_dict(), args=vars(a)), tmp)
        os.replace(tmp, ckpt)

    order = corpus.epoch_order(T, state["epoch"], a.seed)
    alpha = cfg.alpha
    enc_params = [p for n, p in model.named_parameters() if n.startswith("enc") or n == "emb_enc"]
    t_start = time.time() - state["wall"]
    last_ckpt = time.time()
    model.train()
    while state["step"] < total_steps:
        step = state["step"]
        if state["pos"] + a.batch > len(order[1]):
            state["epoch"] += 1
            state["pos"] = 0
            order = corpus.epoch_order(T, state["epoch"], a.seed)
        off, perm = order
        starts = [off + int(i) * T for i in perm[state["pos"]: state["pos"] + a.batch]]
        x = corpus.batch(T, starts)
        if step < a.warmup:
            lr = a.lr * (step + 1) / a.warmup
        else:
            prog = (step - a.warmup) / max(1, total_steps - a.warmup)
            lr = a.lr * (a.min_lr_ratio + (1 - a.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * prog)))
        for g in opt.param_groups:
            g["lr"] = lr
        cfg.alpha = 0.0 if step < a.alpha_warmup else alpha
        if a.freeze_encoder:
            for p in enc_params:
                p.requires_grad_(step >= a.freeze_encoder)
        diag = {}
        if cfg.family != "vanilla" and ((step + 1) % a.eval_every == 0 or step == 0) \
                and step >= a.freeze_encoder:
            diag = grad_norms(model, x, amp)
        with amp():
            loss, ce, rec = model.loss(x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0))
        opt.step()
        state["step"] += 1
        state["pos"] += a.batch
        state["tokens"] += a.batch * T
        state["wall"] = time.time() - t_start
        step = state["step"]
        if step % a.log_every == 0 or step == 1 or diag:
            rec_d = dict(step=step, epoch=round(state["tokens"] / len(corpus.train), 4), tokens=state["tokens"],
                         wall=round(state["wall"], 1), loss=round(float(loss), 4), ce=round(float(ce), 4),
                         rec=round(float(rec), 5), lr=lr, grad_norm=round(gnorm, 4))
            if diag:
                rec_d["grad_f1"] = diag
            if step % a.eval_every == 0 or step == total_steps:
                rec_d["val_bpb_subset"] = round(evaluate(model, corpus, limit=a.eval_windows), 4)
                if cfg.family != "vanilla":
                    rec_d["x1_cos"] = latent_collapse(model, corpus.val_w)
                    rec_d["x1_centered_var"] = latent_spread(model, corpus.val_w)
                    rec_d["bpt_by_position"] = by_position(model, corpus)
            log(rec_d)
            msg = " ".join(f"{k} {v}" for k, v in rec_d.items() if k not in ("bpt_by_position",))
            print(f"[{a.family}] {msg}", flush=True)
        if time.time() - last_ckpt >= a.ckpt_minutes * 60:
            save_ckpt()
            last_ckpt = time.time()
        if a.stop_after and step >= a.stop_after and step < total_steps:
            save_ckpt()
            print(f"[{a.family}] stopped after step {step} (--stop-after); continue with --resume", flush=True)
            return
    save_ckpt()
    cfg.alpha = alpha

    train_s = state["wall"]
    bpb = evaluate(model, corpus)
    cos = latent_collapse(model, corpus.val_w)
    print(f"[{a.family}] done: {state['step']} steps, {train_s / 60:.1f} min, val bpb {bpb:.4f}, x1 cos {cos}",
          flush=True)
    metrics = {"family": a.family, "size": a.size, "tokenizer": tokenizer, "parameters": nparams,
               "steps": state["step"], "batch": a.batch, "context": T, "tokens_seen": state["tokens"],
               "epochs": round(state["tokens"] / len(corpus.train), 3), "train_tokens": len(corpus.train),
               "train_minutes": round(train_s / 60, 2), "threads": a.threads, "bf16": bool(a.bf16),
               "lr": a.lr, "warmup": a.warmup, "seed": a.seed,
               "val_bpb": round(bpb, 4), "val_tokens": int(corpus.val_w.numel()),
               "val_bytes": int(corpus.token_bytes[corpus.val_w].sum()),
               "alpha": cfg.alpha if cfg.family == "photon" else None,
               "alpha_warmup": a.alpha_warmup if cfg.family == "photon" else None,
               "rec_stop_grad": cfg.rec_stop_grad if cfg.family == "photon" else None,
               "level1_shift": cfg.level1_shift if cfg.family == "photon" else None,
               "latent_collapse_cos": cos}
    if cfg.family != "vanilla":
        metrics["bpt_by_position"] = by_position(model, corpus, limit=len(corpus.val_w))
    log(dict(event="done", **metrics))
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)
    if not a.no_export:
        torch.save(model.state_dict(), os.path.join(out, "weights.pt"))
        write_exports(model, cfg, out, corpus)


if __name__ == "__main__":
    main()
