#!/usr/bin/python3
"""Regenerate test/fixtures/<name>/ for every fixture config (see test/fixtures/README.md).

usage: /usr/bin/python3 reference/make_fixtures.py [--out DIR] [--only NAME ...]
The C++ tests read only these files (.npy v1.0, little-endian, C order; JSON); never torch.
"""
import argparse
import json
import math
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from photon_ref.config import FIXTURES, fixture_config          # noqa: E402
from photon_ref.model import build_model, init_weights           # noqa: E402
from photon_ref.export import export, check_convention          # noqa: E402
from photon_ref.generate import (generate, cache_bytes, PhotonStages, VanillaStages,  # noqa: E402
                                 KVCache)

T = 64
B = 2
PROMPT_LENS = (5, 21)
MAX_NEW = 64
MIN_MARGIN = 0.02          # accept a weight seed only if every greedy decision is this far from a tie
BLOCK_SIZE = 4             # paged-cache block size used by the stage fixtures
TOLERANCE = {
    "logits": {"atol": 2e-4, "rtol": 1e-4},
    "latents": {"atol": 1e-4, "rtol": 1e-4},
    "note": "|got - want| <= atol + rtol * |want| elementwise; greedy tokens must match exactly",
}


def save(path, arr):
    arr = np.ascontiguousarray(arr)
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    assert arr.dtype in (np.float32, np.int32), arr.dtype
    arr = arr.astype(arr.dtype.newbyteorder("<"))
    with open(path, "wb") as f:
        np.lib.format.write_array(f, arr, version=(1, 0), allow_pickle=False)


def compact_json(obj):
    """one top-level key per line, values compact"""
    lines = [f" {json.dumps(k)}: {json.dumps(v, sort_keys=True)}" for k, v in obj.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def run_gen(model, prompts, mode):
    res = [generate(model, p, MAX_NEW, mode=mode) for p in prompts]
    return res


def pick_model(cfg, tokens):
    prompts = [tokens[b, :PROMPT_LENS[b]].tolist() for b in range(B)]
    modes = ["hiergen"] if cfg.family == "vanilla" else ["hiergen", "recgen"]
    for seed in range(200):
        model = build_model(cfg)
        init_weights(model, "fixture", torch.Generator().manual_seed(seed))
        model.eval()
        gens = {mode: run_gen(model, prompts, mode) for mode in modes}
        mm = min(r.min_margin for rs in gens.values() for r in rs)
        if mm >= MIN_MARGIN:
            return seed, model, prompts, gens, mm
    raise RuntimeError(f"no weight seed gives min margin >= {MIN_MARGIN} for {cfg}")


# ---------------------------------------------------------------------------------------------
# stage fixtures: paged pool [NB, Ly, 2, BS, Hkv, hd], table [B, MB], lens [B]
# ---------------------------------------------------------------------------------------------
def pack_pool(caches, lens_total, layers, hkv, hd, rng):
    """caches[b]: KVCache of sequence b holding lens_total[b] positions. Returns pool, table
    with a shuffled block assignment (block 0 unused so that a wrong table lookup shows)."""
    mb = max(math.ceil(n / BLOCK_SIZE) for n in lens_total)
    nb = 1 + B * mb
    order = rng.permutation(np.arange(1, nb)).astype(np.int32)
    table = order.reshape(B, mb)
    pool = np.zeros((nb, layers, 2, BLOCK_SIZE, hkv, hd), np.float32)
    for b, c in enumerate(caches):
        for layer in range(layers):
            for kv, t in enumerate((c.k[layer], c.v[layer])):
                t = t[0].numpy()                       # [len, Hkv, hd]
                for p in range(t.shape[0]):
                    pool[table[b, p // BLOCK_SIZE], layer, kv, p % BLOCK_SIZE] = t[p]
    return pool, table


def cache_before_after(stage_fn, prior_inputs, new_inputs, layers):
    """For each sequence: cache from prior_inputs (may be empty), output of new_inputs; returns
    (caches before, caches after, outputs)."""
    before, after, outs = [], [], []
    for pi, ni in zip(prior_inputs, new_inputs):
        c = KVCache(layers)
        if pi is not None:
            stage_fn(pi, c)
        b = KVCache(layers)
        b.append(list(zip(c.k, c.v))) if c.k[0] is not None else None
        before.append(b)
        outs.append(stage_fn(ni, c))
        after.append(c)
    return before, after, outs


def write_cached_stage(d, name, args_in, prior, new, stage_fn, layers, cfg, rng, out_name, lens_units):
    sdir = os.path.join(d, "stages", name)
    os.makedirs(sdir, exist_ok=True)
    before, after, outs = cache_before_after(stage_fn, prior, new, layers)
    n_new = [o.shape[1] for o in outs]
    totals = [lens_units[b] + n_new[b] for b in range(B)]
    rng_state = rng.bit_generator.state
    pool_in, table = pack_pool(before, totals, layers, cfg.n_kv_heads, cfg.head_dim, rng)
    rng.bit_generator.state = rng_state
    pool_out, table2 = pack_pool(after, totals, layers, cfg.n_kv_heads, cfg.head_dim, rng)
    assert (table == table2).all()
    files = []
    for argname, arr in args_in:
        save(os.path.join(sdir, f"{argname}.npy"), arr)
        files.append({"name": argname, "io": "in", "file": f"stages/{name}/{argname}.npy"})
    for b, p in enumerate(prior):
        arr = p[0].numpy()
        save(os.path.join(sdir, f"prior_{b}.npy"), arr.astype(np.int32) if arr.dtype == np.int64 else arr)
    save(os.path.join(sdir, "pool.npy"), pool_in)
    save(os.path.join(sdir, "pool_out.npy"), pool_out)
    save(os.path.join(sdir, "table.npy"), table)
    save(os.path.join(sdir, "lens.npy"), np.array(lens_units, np.int32))
    save(os.path.join(sdir, f"{out_name}.npy"), torch.cat(outs, 0).numpy())
    files += [{"name": "pool", "io": "inout", "file": f"stages/{name}/pool.npy",
               "expected": f"stages/{name}/pool_out.npy"},
              {"name": "table", "io": "in", "file": f"stages/{name}/table.npy"},
              {"name": "lens", "io": "in", "file": f"stages/{name}/lens.npy"},
              {"name": out_name, "io": "out", "expected": f"stages/{name}/{out_name}.npy"}]
    return {"args": files, "block_size": BLOCK_SIZE,
            "prior": [f"stages/{name}/prior_{b}.npy" for b in range(B)]}


def write_plain_stage(d, name, args_in, outputs):
    sdir = os.path.join(d, "stages", name)
    os.makedirs(sdir, exist_ok=True)
    files = []
    for argname, arr in args_in:
        save(os.path.join(sdir, f"{argname}.npy"), arr)
        files.append({"name": argname, "io": "in", "file": f"stages/{name}/{argname}.npy"})
    for argname, arr in outputs:
        save(os.path.join(sdir, f"{argname}.npy"), arr)
        files.append({"name": argname, "io": "out", "expected": f"stages/{name}/{argname}.npy"})
    return {"args": files}


def stage_fixtures(d, model, cfg, seed):
    rng = np.random.default_rng(1000 + seed)
    g = torch.Generator().manual_seed(2000 + seed)
    stages = {}
    lens = [2, 5]            # cached units per sequence before the call
    n = 2                    # new units per sequence
    D = cfg.width
    if cfg.family == "vanilla":
        st = VanillaStages(model)
        for sname, nn_ in (("lm_step_prefill", 3), ("lm_step_decode", 1)):
            lens_t = [3, 7]
            prior = [torch.randint(0, cfg.vocab, (1, lens_t[b]), generator=g) for b in range(B)]
            new = [torch.randint(0, cfg.vocab, (1, nn_), generator=g) for b in range(B)]
            stages[sname] = write_cached_stage(
                d, sname, [("tokens", torch.cat(new, 0).numpy().astype(np.int32))], prior, new,
                lambda x, c: st.lm_step(x, c), cfg.layers, cfg, rng, "logits", lens_t)
            stages[sname]["stage"] = "lm_step"
        return stages
    st = PhotonStages(model)
    L, C = cfg.levels, cfg.chunk_sizes
    for l in range(1, L + 1):
        if l == 1:
            prior = [torch.randint(0, cfg.vocab, (1, lens[b] * C[0]), generator=g) for b in range(B)]
            new = [torch.randint(0, cfg.vocab, (1, n * C[0]), generator=g) for b in range(B)]
            arg = ("tokens", torch.cat(new, 0).numpy().astype(np.int32))
        else:
            prior = [torch.randn(1, lens[b] * C[l - 1], D, generator=g) for b in range(B)]
            new = [torch.randn(1, n * C[l - 1], D, generator=g) for b in range(B)]
            arg = ("x", torch.cat(new, 0).numpy())
        stages[f"encode_{l}"] = write_cached_stage(
            d, f"encode_{l}", [arg], prior, new, lambda x, c, l=l: st.encode(l, x, c),
            cfg.enc_layers[l - 1], cfg, rng, "out", lens)
        stages[f"encode_{l}"]["stage"] = f"encode_{l}"
    for l in range(2, L + 1):
        prev = torch.randn(B, D, generator=g)
        stages[f"latent_{l}"] = write_plain_stage(d, f"latent_{l}", [("prev", prev.numpy())],
                                                  [("out", st.latent(l, prev).numpy())])
        stages[f"latent_{l}"]["stage"] = f"latent_{l}"
    S = 5
    prev = torch.randn(S, D, generator=g)
    toks = torch.randint(0, cfg.vocab, (S, C[0]), generator=g)
    pos = torch.tensor([p % C[0] for p in (0, 1, 2, 3, 1)])
    lg = st.token_step(prev, toks, pos)
    stages["token_step"] = write_plain_stage(
        d, "token_step", [("prev", prev.numpy()), ("tokens", toks.numpy().astype(np.int32)),
                          ("pos", pos.numpy().astype(np.int32))], [("logits", lg.numpy())])
    stages["token_step"]["stage"] = "token_step"
    return stages


def make_fixture(name, out_root):
    torch.manual_seed(0)
    cfg = fixture_config(name)
    d = os.path.join(out_root, name)
    os.makedirs(d, exist_ok=True)
    tokens = torch.randint(0, cfg.vocab, (B, T), generator=torch.Generator().manual_seed(7))
    seed, model, prompts, gens, mm = pick_model(cfg, tokens)
    mp = export(model, os.path.join(d, "model.onnx"), functions=True)
    check_convention(mp, cfg, model.state_dict())
    export(model, os.path.join(d, "model.plain.onnx"), functions=False)
    with torch.no_grad():
        out = model(tokens)
    outs = out if isinstance(out, tuple) else (out,)
    save(os.path.join(d, "tokens.npy"), tokens.numpy().astype(np.int32))
    save(os.path.join(d, "logits.npy"), outs[0].numpy())
    if len(outs) > 1:
        save(os.path.join(d, "x1.npy"), outs[1].numpy())
    if len(outs) > 2:
        save(os.path.join(d, "xh1.npy"), outs[2].numpy())
    conf = cfg.onnx_config()
    conf["weight_seed"] = seed
    conf["logits_semantics"] = ("logits[:, t] is the distribution of token t+1" if cfg.family == "vanilla"
                                else "logits[:, t] is the distribution of token t")
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(conf, f, indent=1, sort_keys=True)
    modes = list(gens)
    gen = {"prompts": prompts, "max_new_tokens": MAX_NEW, "sampling": "greedy",
           "min_margin": mm, "tolerance": TOLERANCE}
    for mode in modes:
        gen[mode] = [r.tokens for r in gens[mode]]
    if cfg.family == "vanilla":
        gen["recgen"] = None
    cb = {}
    for mode in modes:
        cb[mode] = [dict(T=len(p) + MAX_NEW, formula=cache_bytes(cfg, len(p) + MAX_NEW, mode),
                         held_units={str(k): v for k, v in r.cache_units.items()},
                         held_bytes={str(k): v for k, v in r.cache_bytes.items()})
                    for p, r in zip(prompts, gens[mode])]
    gen["cache_bytes"] = cb
    with open(os.path.join(d, "gen.json"), "w") as f:
        f.write(compact_json(gen))
    stages = stage_fixtures(d, model, cfg, seed)
    with open(os.path.join(d, "stages.json"), "w") as f:
        json.dump({"block_size": BLOCK_SIZE, "stages": stages}, f, indent=1)
    size = sum(os.path.getsize(os.path.join(r, x)) for r, _, fs in os.walk(d) for x in fs)
    print(f"{name}: weight seed {seed}, min margin {mm:.4f}, {size / 1024:.0f} KiB", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "test", "fixtures"),
                    help="output root (default: test/fixtures of this checkout)")
    ap.add_argument("--only", nargs="*", default=None, help=f"subset of: {', '.join(FIXTURES)}")
    a = ap.parse_args()
    torch.set_num_threads(1)
    names = a.only or list(FIXTURES)
    for n in names:
        if n not in FIXTURES:
            ap.error(f"unknown fixture {n!r}; known: {', '.join(FIXTURES)}")
    for n in names:
        make_fixture(n, os.path.abspath(a.out))


if __name__ == "__main__":
    main()
