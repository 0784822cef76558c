"""Runs the stages of a compiled artifact on the reference tokens and compares with the
float64 reference outputs (ref.npz of gen_model.py, or a fixture directory).

    check_stages.py ARTIFACT REF.npz [--tol 1e-4]

Checks, each with relative error max|got - want| / max|want| <= tol:
  forward      logits over the whole sequence
  lm_step      (vanilla) prefill of the first half in one call, then one decode step per
               token, through a paged cache with a shuffled block table
  encode_l / latent_l / token_step (photon, block): the stream values X(l) and the
               teacher-forced logits rebuilt from the incremental stages
  token_start / token_next (when the artifact has them): the same logits from the window
               cache, equal to token_step's
Prints one line per check and exits non-zero on the first failure.
"""
import argparse
import sys

import numpy as np

from photon_harness import Artifact, read_blob, rel_err

ap = argparse.ArgumentParser()
ap.add_argument("artifact")
ap.add_argument("ref")
ap.add_argument("--tol", type=float, default=1e-4)
a = ap.parse_args()

art = Artifact(a.artifact)
ref = np.load(a.ref)
tokens = np.ascontiguousarray(ref["tokens"].astype(np.int32))
want = ref["logits"]
B, T = tokens.shape
V = art.manifest["model"]["vocab"]
D = art.manifest["model"]["width"]
failed = False


def check(name, got, want):
    global failed
    e = rel_err(got, want)
    ok = e <= a.tol
    print("%s %s rel_err=%.3g (tol %.1g)" % ("PASS" if ok else "FAIL", name, e, a.tol))
    if not ok:
        failed = True


logits = np.zeros((B, T, V), np.float32)
art.call("forward", tokens, logits)
check("forward", logits, want)


class Cache:
    """A paged cache: pool of blocks, a shuffled block table per sequence, lengths."""

    def __init__(self, spec, batch, capacity_units, rng):
        bs = spec["block_size"]
        per_seq = (capacity_units + bs - 1) // bs
        nb = per_seq * batch + 1
        self.pool = np.full((nb, spec["layers"], 2, bs, spec["kv_heads"], spec["head_dim"]),
                            np.nan, {"f32": np.float32, "f16": np.float16}[spec["dtype"]])
        ids = rng.permutation(nb)[: per_seq * batch]
        self.table = np.ascontiguousarray(ids.reshape(batch, per_seq).astype(np.int32))
        self.lens = np.zeros(batch, np.int32)


rng = np.random.default_rng(0)
fam = art.manifest["model"]["family"]
caches = {c["level"]: c for c in art.manifest["caches"]}
if fam == "vanilla":
    c = Cache(caches[1], B, T, rng)
    half = T // 2
    out = np.zeros((B, T, V), np.float32)
    lg = np.zeros((B, half, V), np.float32)
    art.call("lm_step", np.ascontiguousarray(tokens[:, :half]), c.pool, c.table, c.lens, lg)
    out[:, :half] = lg
    c.lens += half
    for t in range(half, T):
        lg = np.zeros((B, 1, V), np.float32)
        art.call("lm_step", np.ascontiguousarray(tokens[:, t:t + 1]), c.pool, c.table, c.lens, lg)
        out[:, t:t + 1] = lg
        c.lens += 1
    check("lm_step prefill+decode", out, want)
else:
    Cs = art.manifest["model"]["chunk_sizes"]
    L = len(Cs)
    # encode_1 in two calls (prefix, then the rest one unit at a time)
    C1 = Cs[0]
    M1 = T // C1
    c1 = Cache(caches[1], B, M1, rng)
    x1 = np.zeros((B, M1, D), np.float32)
    first = M1 // 2
    o = np.zeros((B, first, D), np.float32)
    art.call("encode_1", np.ascontiguousarray(tokens[:, : first * C1]), c1.pool, c1.table, c1.lens, o)
    x1[:, :first] = o
    c1.lens += first
    for u in range(first, M1):
        o = np.zeros((B, 1, D), np.float32)
        art.call("encode_1", np.ascontiguousarray(tokens[:, u * C1:(u + 1) * C1]), c1.pool, c1.table, c1.lens, o)
        x1[:, u:u + 1] = o
        c1.lens += 1
    if "x1" in ref.files:
        check("encode_1 (X1)", x1, ref["x1"])
    xs = {1: x1}
    for l in range(2, L + 1):
        Cl = Cs[l - 1]
        Ml = xs[l - 1].shape[1] // Cl
        cl = Cache(caches[l], B, Ml, rng)
        xl = np.zeros((B, Ml, D), np.float32)
        for u in range(Ml):
            o = np.zeros((B, 1, D), np.float32)
            art.call("encode_%d" % l, np.ascontiguousarray(xs[l - 1][:, u * Cl:(u + 1) * Cl]),
                     cl.pool, cl.table, cl.lens, o)
            xl[:, u:u + 1] = o
            cl.lens += 1
        xs[l] = xl
    # top-down, teacher forced on the encoder's latents: Xhat(L) = X(L)
    W = read_blob(art.weights)
    latent = xs[L]
    for l in range(L, 1, -1):
        Cl = Cs[l - 1]
        Ml = latent.shape[1]
        start = W[art.manifest["start_latents"][str(l)]]
        prev = np.concatenate([np.broadcast_to(start, (B, 1, D)), latent[:, :-1]], axis=1)
        nxt = np.zeros((B, Ml * Cl, D), np.float32)
        for g in range(Ml):
            o = np.zeros((B, Cl, D), np.float32)
            art.call("latent_%d" % l, np.ascontiguousarray(prev[:, g]), o)
            nxt[:, g * Cl:(g + 1) * Cl] = o
        latent = nxt
        if l == 2 and "xh1" in ref.files:
            check("latent_2 (Xhat1)", latent, ref["xh1"])
    start = W[art.manifest["start_latents"]["1"]]
    prev = np.concatenate([np.broadcast_to(start, (B, 1, D)), latent[:, :-1]], axis=1)
    S = B * M1
    prev_s = np.ascontiguousarray(prev.reshape(S, D))
    tok_s = np.ascontiguousarray(tokens.reshape(S, C1))
    out = np.zeros((S, C1, V), np.float32)
    for p in range(C1):
        pos = np.full(S, p, np.int32)
        # tokens at index >= pos must be ignored: poison them
        t = tok_s.copy()
        t[:, p:] = (t[:, p:] + 17) % V
        lg = np.zeros((S, V), np.float32)
        art.call("token_step", prev_s, t, pos, lg)
        out[:, p] = lg
    check("token_step (teacher-forced logits)", out.reshape(B, T, V), want)
    if "token_next" in art.stages:
        # Incremental token decoder over a per-stream window cache: token_start at pos 0,
        # then token_next with the token at pos-1; compared with token_step's logits.
        shape = art.stages["token_next"]["args"][3]["shape"]
        cshape = [S] + [int(d) for d in shape[1:]]
        cdtype = {"f32": np.float32, "f16": np.float16}[art.stages["token_next"]["args"][3]["dtype"]]
        cache = np.full(cshape, np.nan, cdtype)
        inc = np.zeros((S, C1, V), np.float32)
        lg = np.zeros((S, V), np.float32)
        art.call("token_start", prev_s, cache, lg)
        inc[:, 0] = lg
        for p in range(1, C1):
            lg = np.zeros((S, V), np.float32)
            art.call("token_next", np.ascontiguousarray(tok_s[:, p - 1]), np.full(S, p, np.int32),
                     cache, lg)
            inc[:, p] = lg
        check("token_start/token_next vs token_step", inc, out.astype(np.float64))
        check("token_start/token_next (teacher-forced logits)", inc.reshape(B, T, V), want)
        # Streams at different positions in one call, on a subset of the streams: odd
        # streams run one position behind the even ones.
        cache = np.full(cshape, np.nan, cdtype)
        inc = np.zeros((S, C1, V), np.float32)
        lg = np.zeros((S, V), np.float32)
        art.call("token_start", prev_s, cache, lg)
        inc[:, 0] = lg
        for k in range(1, C1 + 1):
            pos = np.array([k if s % 2 == 0 else k - 1 for s in range(S)], np.int32)
            sel = np.array([s for s in range(S) if 1 <= pos[s] < C1], np.int64)
            if len(sel) == 0:
                continue
            c = np.ascontiguousarray(cache[sel])
            lg = np.zeros((len(sel), V), np.float32)
            art.call("token_next", np.ascontiguousarray(tok_s[sel, pos[sel] - 1]),
                     np.ascontiguousarray(pos[sel]), c, lg)
            cache[sel] = c
            inc[sel, pos[sel]] = lg
        check("token_next (mixed positions, stream subsets)", inc, out.astype(np.float64))
sys.exit(1 if failed else 0)
