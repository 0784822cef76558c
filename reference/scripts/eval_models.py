#!/usr/bin/python3
"""Evaluate the bundled models (reference/models/small-*) and write reference/models/results.json,
the file every quality figure in README.md and docs/reference.md comes from.

usage: /usr/bin/python3 reference/scripts/eval_models.py --bin BUILD/bin [--work DIR]
       [--max-tokens 128] [--out reference/models/results.json] [MODEL_DIR ...]

Also the unigram model's bits per token on the held-out split (add-0.5 counts of the training
tokens), the level a position predicted without context reaches.

Per model, from the PyTorch reference (float32): validation bits per byte over the whole held-out
split (metrics.json holds the same number from the end of training), X1 pairwise cosine over 8
validation windows, bits per token by position in the meta-context. From the compiled artifact
(photon-compile --tokenizer tokenizer.model; photon-run): `--eval` bits per byte of the whole
held-out split (must equal the reference's to 1e-3), and for three prompts a greedy, a greedy
with repetition penalty 1.3 (still deterministic: argmax of the penalised logits) and a sampled
continuation (temperature 0.8, top-p 0.95, seed 1) of --max-tokens tokens: PHOTON under HierGen
and RecGen (their greedy agreement: the share of positions where both chose the same token, and
the length of the common prefix), Block and vanilla as they are.

Text quality of a greedy continuation: distinct 4-gram ratio = distinct word 4-grams / word
4-grams (whitespace-separated words); a loop = some word 6-gram occurring 3 or more times.
"""
import argparse
import glob
import json
import math
import os
import subprocess
import sys
from collections import Counter

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.dirname(HERE)
sys.path.insert(0, REF)
sys.path.insert(0, HERE)
from photon_ref import data as D  # noqa: E402
import train as TR                # noqa: E402
import check_compiled as CC       # noqa: E402

PROMPTS = [
    "It is a truth universally acknowledged, that a single man in possession of a good fortune",
    "Elizabeth walked into the garden, and",
    "\"My dear Mr. Bennet,\" said his lady to him one day,",
]
SAMPLING = ["--temperature", "0.8", "--top-p", "0.95", "--seed", "1"]
PENALTY = ["--repetition-penalty", "1.3"]


def text_quality(text):
    w = text.split()
    grams4 = [tuple(w[i: i + 4]) for i in range(len(w) - 3)]
    grams6 = Counter(tuple(w[i: i + 6]) for i in range(len(w) - 5))
    top = grams6.most_common(1)
    return {"words": len(w),
            "distinct_4gram_ratio": round(len(set(grams4)) / len(grams4), 3) if grams4 else None,
            "max_6gram_repeats": top[0][1] if top else 0,
            "loop": bool(top and top[0][1] >= 3)}


def _pairwise_cos(x):
    v = torch.nn.functional.normalize(x.reshape(-1, x.shape[-1]), dim=-1)
    return round(float((v @ v.T).mean()), 4)


def _varying_share(x):
    x = x.reshape(-1, x.shape[-1])
    c = x - x.mean(0)
    return round(float(c.pow(2).sum() / x.pow(2).sum()), 4)


@torch.no_grad()
def latent_path(model, w):
    """What reaches the token decoder (8 validation windows): the pairwise cosine and varying
    share of X1, of PHOTON's Xhat1, and the varying share of the converter U1's output."""
    cfg = model.cfg
    xs = model.encoder(w)
    out = {"x1_varying_share": _varying_share(xs[0])}
    src = xs[0]
    if cfg.levels >= 2:
        _, xhs = model.decoder(w, xs)
        src = xs[0] if cfg.token_decoder_input == "encoder" else xhs[0]
        out["xhat1_pairwise_cos"] = _pairwise_cos(xhs[0])
        out["xhat1_varying_share"] = _varying_share(xhs[0])
    u = torch.nn.functional.linear(src, model.dec1.conv.w, model.dec1.conv.b)
    out["u1_varying_share"] = _varying_share(u)
    return out


def run_prompts(bin_dir, art, prompts_file, max_tokens, extra):
    out = subprocess.run([os.path.join(bin_dir, "photon-run"), art, "--prompts-file", prompts_file,
                          "--max-tokens", str(max_tokens), "--json", "--quiet"] + extra,
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def agreement(a, b):
    n = min(len(a), len(b))
    same = sum(1 for i in range(n) if a[i] == b[i])
    prefix = next((i for i in range(n) if a[i] != b[i]), n)
    return {"equal_positions": round(same / n, 3) if n else None, "common_prefix": prefix, "tokens": n}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", default=os.path.join(os.path.dirname(REF), "build", "eval"))
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--out", default=os.path.join(REF, "models", "results.json"))
    ap.add_argument("models", nargs="*")
    a = ap.parse_args()
    torch.set_num_threads(1)
    dirs = a.models or sorted(glob.glob(os.path.join(REF, "models", "small-*")))
    os.makedirs(a.work, exist_ok=True)
    val = D.val_text()
    val_path = os.path.join(a.work, "val-full.txt")
    with open(val_path, "w", encoding="utf-8") as f:
        f.write(val)
    prompts_path = os.path.join(a.work, "prompts.txt")
    with open(prompts_path, "w", encoding="utf-8") as f:
        f.write("\n".join(PROMPTS) + "\n")
    # the unigram model of the training tokens (add-0.5), for reading bits per token by position
    sp = D.SentencePiece()
    train_ids, _ = D.load_token_split(sp)
    counts = np.bincount(train_ids, minlength=sp.vocab) + 0.5
    val_ids = np.asarray(sp.encode(val))
    unigram = float(-np.log2(counts[val_ids] / counts.sum()).mean())
    results = {"unigram_val_bits_per_token": round(unigram, 3), "prompts": PROMPTS, "sampling": " ".join(SAMPLING), "penalty": " ".join(PENALTY),
               "max_new_tokens": a.max_tokens, "models": {}}
    for d in dirs:
        name = os.path.basename(os.path.normpath(d))
        cfg, model = TR.load_trained(d)
        with open(os.path.join(d, "metrics.json")) as f:
            met = json.load(f)
        tok = D.SentencePiece(os.path.join(d, "tokenizer.model"))
        ref_bpb, ntok, nbytes = CC.reference_bpb(model, tok, val, cfg.context)
        r = {"family": cfg.family, "parameters": met["parameters"], "steps": met["steps"],
             "tokens_seen": met["tokens_seen"], "epochs": met["epochs"], "train_minutes": met["train_minutes"],
             "reference_val_bpb": round(ref_bpb, 4), "val_tokens": ntok, "val_scored_bytes": nbytes}
        if cfg.family != "vanilla":
            ids = torch.tensor(tok.encode(val))
            w = D.windows(ids.numpy(), cfg.context)
            r["x1_pairwise_cos"] = TR.latent_collapse(model, w)
            r.update(latent_path(model, w[:8]))
            r["bpt_by_position"] = met.get("bpt_by_position")
        art = os.path.join(a.work, name + ".photon")
        CC.compile_model(a.bin, d, art)
        ev = json.loads(subprocess.run([os.path.join(a.bin, "photon-run"), art, "--eval", val_path, "--window",
                                        str(cfg.context), "--json"], check=True, capture_output=True,
                                       text=True).stdout)
        r["compiled_val_bpb"] = round(ev["bits_per_byte"], 4)
        r["compiled_vs_reference_abs_diff"] = abs(ev["bits_per_byte"] - ref_bpb)
        modes = ["hiergen", "recgen"] if cfg.family == "photon" else ["hiergen"]
        gens = {}
        for mode in modes:
            greedy = run_prompts(a.bin, art, prompts_path, a.max_tokens, ["--mode", mode])
            penalised = run_prompts(a.bin, art, prompts_path, a.max_tokens, ["--mode", mode] + PENALTY)
            sampled = run_prompts(a.bin, art, prompts_path, a.max_tokens, ["--mode", mode] + SAMPLING)
            gens[mode] = {"greedy": [{"text": q["text"], "finish": q["finish"], "tokens": q["tokens"],
                                      **text_quality(q["text"])} for q in greedy["requests"]],
                          "greedy_repetition_penalty_1.3": [{"text": q["text"], "finish": q["finish"],
                                                             **text_quality(q["text"])} for q in penalised["requests"]],
                          "sampled": [{"text": q["text"], "finish": q["finish"]} for q in sampled["requests"]],
                          "decode_tokens_per_s": greedy["stats"]["decode_tokens_per_s"]}
        if cfg.family == "photon":
            r["recgen_vs_hiergen_greedy"] = [agreement(h["tokens"], g["tokens"]) for h, g in
                                             zip(gens["hiergen"]["greedy"], gens["recgen"]["greedy"])]
        for m in gens.values():
            for g in m["greedy"]:
                del g["tokens"]
        r["generations"] = gens
        results["models"][name] = r
        print(f"{name}: reference {ref_bpb:.4f} compiled {ev['bits_per_byte']:.4f} bpb"
              + (f", X1 cos {r['x1_pairwise_cos']}" if "x1_pairwise_cos" in r else ""), flush=True)
        for mode, m in gens.items():
            for p, g in zip(PROMPTS, m["greedy"]):
                print(f"  [{mode} greedy] {p!r} -> {g['text'][:160]!r} (4-gram ratio {g['distinct_4gram_ratio']}, "
                      f"loop {g['loop']})")
    with open(a.out, "w") as f:
        json.dump(results, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
