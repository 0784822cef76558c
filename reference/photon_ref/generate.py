"""Cached generation: the stage functions of docs/artifact.md and HierGen / RecGen on top of them.

The stages are pure functions of (weights, inputs, cache) exactly as the compiled stages are:
- encode(l, x, cache)    encode_l: n new level-l units from tokens (l = 1) or X(l-1) / Xhat(l-1)
- latent(l, prev)        latent_l: converter U_l + C_l free-running G_l steps -> [B, C_l, D]
- token_step(prev, tokens, pos)   one token-decoder window per chunk stream -> logits [S, V]
- lm_step(tokens, cache) vanilla prefill / decode step
Caches here are dense per sequence batch (all rows the same length); the paged pool of the
runtime is produced from them by make_fixtures.py. K is stored after RoPE.
See docs/reference.md for the generation algorithm.
"""
import math

import torch
import torch.nn.functional as F

from .ops import stack_apply, causal_mask


class KVCache:
    """One level's KV cache: per layer k, v [B, len, Hkv, hd] (RoPE applied to k)."""

    def __init__(self, n_layers):
        self.n_layers = n_layers
        self.k = [None] * n_layers
        self.v = [None] * n_layers

    @property
    def length(self):
        return 0 if self.k[0] is None else self.k[0].shape[1]

    def past(self):
        return None if self.k[0] is None else list(zip(self.k, self.v))

    def append(self, new_kv):
        for i, (k, v) in enumerate(new_kv):
            self.k[i] = k if self.k[i] is None else torch.cat([self.k[i], k], 1)
            self.v[i] = v if self.v[i] is None else torch.cat([self.v[i], v], 1)

    def nbytes(self, elem=4):
        if self.k[0] is None:
            return 0
        return sum(k.numel() + v.numel() for k, v in zip(self.k, self.v)) * elem


def _stack_step(f, ws, x, cache):
    """Run stack `f` (function module carrying the hyper-parameters) on n new positions after
    `cache.length` cached ones; append their K/V."""
    n, p = x.shape[1], cache.length
    pos = torch.arange(p, p + n, dtype=torch.float32)
    y, new_kv = f.stack(x, ws, pos, causal_mask(n, p), cache.past())
    cache.append(new_kv)
    return y


class PhotonStages:
    def __init__(self, model):
        self.m = model
        self.cfg = model.cfg

    def new_cache(self, level):
        return KVCache(self.cfg.enc_layers[level - 1])

    @torch.no_grad()
    def encode(self, level, x, cache):
        """level 1: x = tokens i64[B, n*C_1]; level >= 2: x = [B, n*C_l, D]. -> [B, n, D]"""
        m = self.m
        if level == 1:
            a = m.f_chunk(m.f_embed(x, m.emb_enc))
        else:
            c = m.enc(level).compress
            a = getattr(m, f"f_compress{level}")(x, c.norm, c.w, c.b)
        return _stack_step(getattr(m, f"f_enc{level}"), m.enc(level).flat(), a, cache)

    @torch.no_grad()
    def latent(self, level, prev):
        """prev [B, D] -> the C_l level-(l-1) latents of the next chunk [B, C_l, D]"""
        return self.m.latent_decoder(level, prev.unsqueeze(1))

    @torch.no_grad()
    def token_step(self, prev, tokens, pos):
        """prev [S, D], tokens i64[S, C_1], pos i64[S] -> logits [S, V] of token pos[s] of each chunk."""
        m = self.m
        d1 = m.dec1
        h = m.f_dec1(prev.unsqueeze(1), tokens, d1.emb, d1.conv.w, d1.conv.b, *d1.flat())   # [S, C1, D]
        h = h[torch.arange(h.shape[0]), pos]
        return m.f_head(h, m.lm_head)

    def start(self, level):
        return self.m.dec(level).start.detach()


class VanillaStages:
    def __init__(self, model):
        self.m = model
        self.cfg = model.cfg

    def new_cache(self):
        return KVCache(self.cfg.layers)

    @torch.no_grad()
    def lm_step(self, tokens, cache):
        """tokens i64[B, n] -> logits [B, n, V] (logits[:, i] is the distribution of the next token)"""
        m = self.m
        x = m.f_embed(tokens, m.emb)
        h = _stack_step(m.f_stack, m.stack.flat(), x, cache)
        return m.f_head(h, m.lm_head)


class Sampler:
    """greedy (temperature 0) or temperature / top-k / top-p sampling with a seeded generator."""

    def __init__(self, temperature=0.0, top_k=0, top_p=1.0, seed=0):
        self.temperature, self.top_k, self.top_p = float(temperature), int(top_k), float(top_p)
        self.gen = torch.Generator().manual_seed(int(seed))

    def __call__(self, logits):
        """logits [V] -> int token"""
        if self.temperature <= 0:
            return int(torch.argmax(logits))
        z = logits.double() / self.temperature
        if self.top_k > 0 and self.top_k < z.numel():
            kth = torch.topk(z, self.top_k).values[-1]
            z = z.masked_fill(z < kth, float("-inf"))
        if self.top_p < 1.0:
            sz, idx = torch.sort(z, descending=True)
            p = torch.softmax(sz, -1)
            cum = torch.cumsum(p, -1)
            drop = cum - p >= self.top_p            # keep the smallest prefix with mass >= top_p
            sz = sz.masked_fill(drop, float("-inf"))
            z = torch.full_like(z, float("-inf")).scatter(0, idx, sz)
        p = torch.softmax(z, -1)
        return int(torch.multinomial(p.float(), 1, generator=self.gen))


def margin(logits):
    top = torch.topk(logits, 2).values
    return float(top[0] - top[1])


class GenResult:
    def __init__(self):
        self.tokens = []          # new tokens (after the prompt)
        self.logits = {}          # position -> logits [V] (distribution of the token at that position)
        self.min_margin = math.inf
        self.top = []             # trajectory of top-level latents X(L)_g (one per top-level unit)
        self.cache_units = {}     # level -> cached units at the end
        self.cache_bytes = {}     # level -> bytes at the end (f32)


@torch.no_grad()
def generate_photon(model, prompt, max_new_tokens, mode="hiergen", sampler=None, force=None,
                    collect_logits=False, bottleneck=None):
    """Generate for one sequence.

    mode: "hiergen" (exact: encoder caches at every level) or "recgen" (after the prompt, X(L)
    is encoded from the decoder's own Xhat(L-1); only the top-level cache). For L = 1 both are
    the same (the Block Transformer's cached generation).
    force: tokens forced after the prompt (teacher forcing; logits still computed).
    bottleneck(g, tokens) -> [C_L, D]: RecGen only, replaces Xhat(L-1) of top-level unit g (the
    Xhat1 := X1 test of section 2).
    """
    cfg = model.cfg
    st = PhotonStages(model)
    sampler = sampler or Sampler()
    L, C = cfg.levels, cfg.chunk_sizes
    C1, meta = C[0], cfg.meta
    if mode not in ("hiergen", "recgen"):
        raise ValueError(f"mode {mode!r}: expected hiergen or recgen")
    if L == 1:
        mode = "hiergen"
    if mode == "recgen" and cfg.token_decoder_input == "encoder":
        raise ValueError("RecGen needs the decoder-side Xhat1 (token_decoder_input='decoder')")
    P = len(prompt)
    total = P + max_new_tokens
    force = list(force or [])
    toks = [None] * total
    toks[:P] = [int(t) for t in prompt]
    res = GenResult()
    caches = {l: st.new_cache(l) for l in range(1, L + 1)}
    X = {l: [] for l in range(1, L + 1)}          # encoder outputs per level, each [D]
    Xh = {l: {} for l in range(1, L)}             # decoder latents per level: index -> [D]

    def encode_upto(n_tokens):
        """encode every complete unit of every level inside tokens[:n_tokens] not yet encoded"""
        n1 = n_tokens // C1
        if n1 > len(X[1]):
            t = torch.tensor(toks[len(X[1]) * C1: n1 * C1], dtype=torch.int64).unsqueeze(0)
            X[1].extend(st.encode(1, t, caches[1])[0])
        for l in range(2, L + 1):
            nl = len(X[l - 1]) // C[l - 1]
            if nl > len(X[l]):
                x = torch.stack(X[l - 1][len(X[l]) * C[l - 1]: nl * C[l - 1]]).unsqueeze(0)
                X[l].extend(st.encode(l, x, caches[l])[0])

    def xhat(l, k):
        if l == L:
            return X[L][k]
        if k not in Xh[l]:
            c = C[l]                                  # C_{l+1}
            j = k // c
            prev = st.start(l + 1) if j == 0 else xhat(l + 1, j - 1)
            out = st.latent(l + 1, prev.unsqueeze(0))[0]
            for i in range(c):
                Xh[l][j * c + i] = out[i]
        return Xh[l][k]

    def prev_of_chunk(k):
        if cfg.token_decoder_input == "encoder":
            return st.start(1) if k == 0 else X[1][k - 1]
        if cfg.level1_shift:
            return st.start(1) if k == 0 else xhat(1, k - 1)
        return xhat(1, k)

    def decode_streams(streams):
        """decode the given token chunks in parallel (one stream each), C_1 steps."""
        prevs = torch.stack([prev_of_chunk(k) for k in streams])
        buf = torch.zeros(len(streams), C1, dtype=torch.int64)
        for s, k in enumerate(streams):
            for p in range(C1):
                i = k * C1 + p
                if i < total and toks[i] is not None:
                    buf[s, p] = toks[i]
        for p in range(C1):
            active = [s for s, k in enumerate(streams) if P <= k * C1 + p < total]
            if not active:
                continue
            lg = st.token_step(prevs[active], buf[active], torch.full((len(active),), p, dtype=torch.int64))
            for a, s in enumerate(active):
                i = streams[s] * C1 + p
                if collect_logits:
                    res.logits[i] = lg[a].clone()
                if i - P < len(force):
                    t = int(force[i - P])
                else:
                    res.min_margin = min(res.min_margin, margin(lg[a]))
                    t = sampler(lg[a])
                toks[i] = t
                buf[s, p] = t

    # ---- prefill
    if mode == "hiergen":
        encode_upto(P)
    else:
        encode_upto((P // meta) * meta)
        for l in range(1, L):               # RecGen keeps only the top-level cache
            caches[l] = None
            X[l] = []
    res.top = list(X[L])
    g = P // meta
    while g * meta < total:
        chunks = range(g * meta // C1, (g + 1) * meta // C1)
        streams = [k for k in chunks if any(P <= k * C1 + p < total for p in range(C1))]
        if cfg.token_decoder_input == "encoder":
            for k in streams:                # sequential: chunk k needs X1_{k-1}
                encode_upto(k * C1)
                decode_streams([k])
        else:
            decode_streams(streams)
        end = (g + 1) * meta
        if end > total:
            break
        # the unit is complete: extend the top-level trajectory
        if mode == "hiergen":
            encode_upto(end)
        else:
            if bottleneck is not None:
                a = bottleneck(g, toks[:end])
            else:
                a = torch.stack([xhat(L - 1, g * C[L - 1] + i) for i in range(C[L - 1])])
            X[L].extend(st.encode(L, a.unsqueeze(0), caches[L])[0])
        res.top.append(X[L][-1])
        g += 1
    if mode == "hiergen":
        encode_upto(total)           # final state: every complete unit of every level is cached
    res.tokens = toks[P:total]
    for l in range(1, L + 1):
        c = caches[l]
        res.cache_units[l] = 0 if c is None else c.length
        res.cache_bytes[l] = 0 if c is None else c.nbytes()
    return res


@torch.no_grad()
def generate_vanilla(model, prompt, max_new_tokens, sampler=None, force=None, collect_logits=False,
                     cached=True):
    """Vanilla LM generation (prefill then one token per step); `cached=False` recomputes the
    full forward every step (the test oracle for the cache)."""
    if len(prompt) < 1:
        raise ValueError("vanilla generation needs a prompt of at least one token")
    st = VanillaStages(model)
    sampler = sampler or Sampler()
    force = list(force or [])
    toks = [int(t) for t in prompt]
    P = len(prompt)
    res = GenResult()
    cache = st.new_cache()
    lg = st.lm_step(torch.tensor([toks]), cache)[0, -1] if cached else model(torch.tensor([toks]))[0, -1]
    for j in range(max_new_tokens):
        i = P + j
        if collect_logits:
            res.logits[i] = lg.clone()
        if j < len(force):
            t = int(force[j])
        else:
            res.min_margin = min(res.min_margin, margin(lg))
            t = sampler(lg)
        toks.append(t)
        if j + 1 < max_new_tokens:
            if cached:
                lg = st.lm_step(torch.tensor([[t]]), cache)[0, -1]
            else:
                lg = model(torch.tensor([toks]))[0, -1]
    res.tokens = toks[P:]
    res.cache_units[1] = cache.length
    res.cache_bytes[1] = cache.nbytes()
    return res


def generate(model, prompt, max_new_tokens, mode="hiergen", **kw):
    if model.cfg.family == "vanilla":
        return generate_vanilla(model, prompt, max_new_tokens, **kw)
    return generate_photon(model, prompt, max_new_tokens, mode=mode, **kw)


# ---------------------------------------------------------------------------------------------
# cache sizes (section 3 of photon-model.md), per sequence
# ---------------------------------------------------------------------------------------------
def cache_bytes(cfg, T, mode="hiergen", elem=4):
    """Global KV bytes per level after T tokens by the section-3 formulas (ceil: the unit being
    filled is allocated), plus 'local' (decoder windows, dropped after use) and 'total'."""
    d_kv = cfg.n_kv_heads * cfg.head_dim
    out = {}
    if cfg.family == "vanilla":
        out["1"] = 2 * cfg.layers * d_kv * elem * T
        out["local"] = 0
        out["total"] = out["1"]
        return out
    L = cfg.levels
    levels = range(1, L + 1) if (mode == "hiergen" or L == 1) else [L]
    for l in range(1, L + 1):
        out[str(l)] = (2 * d_kv * elem * cfg.enc_layers[l - 1] * math.ceil(T / cfg.tokens_per_unit(l))
                       if l in levels else 0)
    # local: token decoder windows of one meta-context (all its chunk streams) plus the largest
    # latent-decoder window, each R + C - 1 positions
    R = cfg.prefix
    local = (cfg.meta // cfg.chunk_sizes[0]) * (R + cfg.chunk_sizes[0] - 1) * cfg.dec_layers[0]
    local += max([(R + cfg.chunk_sizes[l - 1] - 1) * cfg.dec_layers[l - 1] for l in range(2, L + 1)] or [0])
    out["local"] = 2 * d_kv * elem * local
    out["total"] = sum(out[str(l)] for l in range(1, L + 1)) + out["local"]
    return out
