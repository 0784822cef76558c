"""Teacher-forced logits of an artifact computed through its KV caches (the stages the
runtime decodes with), not through `forward`.

    cached_logits(art, tokens) -> float32 [B, T, V]

- vanilla: lm_step prefill of the first half of the tokens in one call, then the rest in
  calls of `step` tokens (1: one decode step per token), through a paged cache with a
  shuffled block table; row t is the distribution of token t + 1 (as `forward`).
- photon / block: encode_l over paged caches (level 1: the first half of the units in one
  call, then one unit per call; levels >= 2 one unit per call), latent_l top-down teacher
  forced on the encoder's latents, then the token decoder through its window cache
  (token_start, token_next); row t is the distribution of token t (as `forward`).
The pools are allocated in the manifest's cache dtype (f32, or f16 with photon-compile
--kv f16) and filled with NaN, so a read of an unwritten row shows.
"""
import numpy as np

from photon_harness import read_blob

CACHE_DTYPES = {"f32": np.float32, "f16": np.float16}


class PagedCache:
    """A pool of blocks in the cache's dtype, a shuffled block table per sequence, lengths."""

    def __init__(self, spec, batch, capacity_units, rng):
        bs = spec["block_size"]
        per_seq = (capacity_units + bs - 1) // bs
        nb = per_seq * batch + 1
        self.pool = np.full((nb, spec["layers"], 2, bs, spec["kv_heads"], spec["head_dim"]),
                            np.nan, CACHE_DTYPES[spec["dtype"]])
        ids = rng.permutation(nb)[: per_seq * batch]
        self.table = np.ascontiguousarray(ids.reshape(batch, per_seq).astype(np.int32))
        self.lens = np.zeros(batch, np.int32)


def cached_logits(art, tokens, step=1, seed=0):
    tokens = np.ascontiguousarray(tokens.astype(np.int32))
    rng = np.random.default_rng(seed)
    B, T = tokens.shape
    V = art.manifest["model"]["vocab"]
    D = art.manifest["model"]["width"]
    fam = art.manifest["model"]["family"]
    caches = {c["level"]: c for c in art.manifest["caches"]}
    if fam == "vanilla":
        c = PagedCache(caches[1], B, T, rng)
        out = np.zeros((B, T, V), np.float32)
        t0 = 0
        for t1 in [T // 2] + list(range(T // 2 + step, T, step)) + [T]:
            if t1 <= t0:
                continue
            lg = np.zeros((B, t1 - t0, V), np.float32)
            art.call("lm_step", np.ascontiguousarray(tokens[:, t0:t1]), c.pool, c.table, c.lens, lg)
            out[:, t0:t1] = lg
            c.lens += t1 - t0
            t0 = t1
        return out
    Cs = art.manifest["model"]["chunk_sizes"]
    L = len(Cs)
    C1 = Cs[0]
    M1 = T // C1
    c1 = PagedCache(caches[1], B, M1, rng)
    x1 = np.zeros((B, M1, D), np.float32)
    first = M1 // 2
    o = np.zeros((B, first, D), np.float32)
    art.call("encode_1", np.ascontiguousarray(tokens[:, : first * C1]), c1.pool, c1.table, c1.lens, o)
    x1[:, :first] = o
    c1.lens += first
    for u in range(first, M1):
        o = np.zeros((B, 1, D), np.float32)
        art.call("encode_1", np.ascontiguousarray(tokens[:, u * C1:(u + 1) * C1]), c1.pool, c1.table,
                 c1.lens, o)
        x1[:, u:u + 1] = o
        c1.lens += 1
    xs = {1: x1}
    for l in range(2, L + 1):
        Cl = Cs[l - 1]
        Ml = xs[l - 1].shape[1] // Cl
        cl = PagedCache(caches[l], B, Ml, rng)
        xl = np.zeros((B, Ml, D), np.float32)
        for u in range(Ml):
            o = np.zeros((B, 1, D), np.float32)
            art.call("encode_%d" % l, np.ascontiguousarray(xs[l - 1][:, u * Cl:(u + 1) * Cl]),
                     cl.pool, cl.table, cl.lens, o)
            xl[:, u:u + 1] = o
            cl.lens += 1
        xs[l] = xl
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
    start = W[art.manifest["start_latents"]["1"]]
    prev = np.concatenate([np.broadcast_to(start, (B, 1, D)), latent[:, :-1]], axis=1)
    S = B * M1
    prev_s = np.ascontiguousarray(prev.reshape(S, D))
    tok_s = np.ascontiguousarray(tokens.reshape(S, C1))
    args = art.stages["token_next"]["args"][3]
    window = np.full([S] + [int(d) for d in args["shape"][1:]], np.nan, CACHE_DTYPES[args["dtype"]])
    out = np.zeros((S, C1, V), np.float32)
    lg = np.zeros((S, V), np.float32)
    art.call("token_start", prev_s, window, lg)
    out[:, 0] = lg
    for p in range(1, C1):
        lg = np.zeros((S, V), np.float32)
        art.call("token_next", np.ascontiguousarray(tok_s[:, p - 1]), np.full(S, p, np.int32), window, lg)
        out[:, p] = lg
    return out.reshape(B, T, V)
