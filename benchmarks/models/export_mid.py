#!/usr/bin/python3
"""Export the mid-size benchmark models (photon-model.md section 6) with random weights.

usage: /usr/bin/python3 benchmarks/models/export_mid.py --out DIR [--vocab 8192] [--only NAME ...]

Writes DIR/<name>/model.onnx (ONNX with photon local functions, docs/onnx-convention.md),
DIR/<name>/config.json and DIR/<name>/state.pt (the same weights, for the PyTorch peer and the
GGUF/step exports). Names: photon-mid (C = (4, 4), 4 layers per stack), block-mid (8 + 8),
vanilla-mid (16 layers). D = 640, F = 1728, 10 heads x 64, V = 8192. The weights are random
(fixed seed): they serve for speed and memory, not quality. About 400 MB per model: write them
to a build directory, never into the repository.
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "reference"))
from photon_ref.config import Config          # noqa: E402
from photon_ref.model import build_model, init_weights  # noqa: E402
from photon_ref.export import export, check_convention  # noqa: E402

COMMON = dict(width=640, ffn=1728, n_heads=10, n_kv_heads=10, head_dim=64, prefix=2,
              context=2048)
MODELS = {
    "photon-mid": dict(family="photon", chunk_sizes=(4, 4), enc_layers=(4, 4), dec_layers=(4, 4)),
    "block-mid": dict(family="block", chunk_sizes=(4,), enc_layers=(8,), dec_layers=(8,)),
    "vanilla-mid": dict(family="vanilla", chunk_sizes=(), enc_layers=(), dec_layers=(), layers=16),
}


def mid_config(name, vocab):
    if name not in MODELS:
        raise SystemExit(f"export_mid.py: unknown model {name!r}; expected one of {sorted(MODELS)}")
    return Config(vocab=vocab, **COMMON, **MODELS[name])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output directory (gitignored, e.g. build-bench/models)")
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--only", nargs="*", default=None, help="subset of " + ", ".join(MODELS))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.only or list(MODELS):
        cfg = mid_config(name, args.vocab)
        d = os.path.join(args.out, name)
        os.makedirs(d, exist_ok=True)
        t0 = time.time()
        torch.manual_seed(args.seed)
        model = build_model(cfg)
        init_weights(model, mode="train", generator=torch.Generator().manual_seed(args.seed))
        model.eval()
        n_params = sum(p.numel() for p in model.parameters())
        mp = export(model, os.path.join(d, "model.onnx"))
        check_convention(mp, cfg)
        torch.save(model.state_dict(), os.path.join(d, "state.pt"))
        meta = dict(cfg.onnx_config(), name=name, params=n_params, weight_seed=args.seed,
                    config=cfg.to_dict())
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(meta, f, indent=1, sort_keys=True)
        print(f"{name}: {n_params / 1e6:.1f} M parameters -> {d}/model.onnx "
              f"({time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
