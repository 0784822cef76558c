#!/usr/bin/python3
"""Held-out bits per byte of the bundled models with f16 KV caches (a ctest,
`trained-models-kv-f16`, the sibling of `trained-models`).

usage: /usr/bin/python3 reference/scripts/check_kv_f16.py --bin BUILD/bin --work DIR
       [--slice-bytes 6000] [--json OUT] [MODEL_DIR ...]

For every model directory (default: reference/models/small-*): compile model.onnx with
photon-compile --kv f16 (unless DIR/<name>-kvf16.photon is newer than the export) and score
the first --slice-bytes of the held-out split (cut after a line end; the text, tokens,
windows and scoring of check_compiled.py: python3-sentencepiece tokens, non-overlapping
windows of the model's context, PHOTON/Block score every token of a window, vanilla every
token but the first, bits per byte = summed CE / ln 2 / UTF-8 bytes of the scored tokens)
twice from the same artifact:
  f32  the `forward` stage (no cache: f32 attention; `trained-models` checks that it equals
       the PyTorch reference within 1e-3);
  f16  the stages the runtime decodes with, through the f16 caches (test/e2e/Inputs/
       cached_logits.py: vanilla lm_step prefill of half the window, then decode steps of
       one token; PHOTON/Block encode_l over the paged caches, latent_l, and the token
       decoder's f16 window cache).
Fails if any |f16 - f32| > 0.01 bits per byte, or if a manifest cache is not f16.
"""
import argparse
import glob
import json
import math
import os
import subprocess
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.dirname(HERE)
ROOT = os.path.dirname(REF)
sys.path.insert(0, REF)
sys.path.insert(0, os.path.join(ROOT, "test", "e2e", "Inputs"))
from photon_ref import data as D  # noqa: E402
from photon_harness import Artifact  # noqa: E402
from cached_logits import cached_logits  # noqa: E402

TOL = 0.01


def bits_per_byte(logits, windows, tb, vanilla):
    """Summed cross-entropy (nats, float64) / ln 2 / scored bytes."""
    if vanilla:
        logits, targets = logits[:, :-1], windows[:, 1:]
    else:
        targets = windows
    lg = logits.astype(np.float64).reshape(-1, logits.shape[-1])
    t = targets.reshape(-1)
    m = lg.max(axis=1)
    lse = m + np.log(np.exp(lg - m[:, None]).sum(axis=1))
    nats = float(np.sum(lse - lg[np.arange(len(t)), t]))
    nbytes = int(tb[t].sum())
    return nats / nbytes / math.log(2), nbytes


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="directory of photon-compile")
    ap.add_argument("--work", required=True, help="directory for the artifacts")
    ap.add_argument("--slice-bytes", type=int, default=6000)
    ap.add_argument("--json", default=None, help="write the numbers here")
    ap.add_argument("models", nargs="*")
    a = ap.parse_args()
    dirs = a.models or sorted(glob.glob(os.path.join(REF, "models", "small-*")))
    dirs = [d for d in dirs if os.path.exists(os.path.join(d, "model.onnx"))]
    if not dirs:
        print("no trained models (reference/models/small-*/model.onnx): nothing to check")
        return 0
    os.makedirs(a.work, exist_ok=True)
    val = D.val_text()
    cut = val.rfind("\n", 0, a.slice_bytes)
    text = val[: cut + 1 if cut > 0 else a.slice_bytes]
    rows, bad = [], 0
    for d in dirs:
        name = os.path.basename(os.path.normpath(d))
        with open(os.path.join(d, "config.json")) as f:
            cfg = json.load(f)
        with open(os.path.join(d, "tokenizer.json")) as f:
            tk = json.load(f)
        if tk["kind"] != "sentencepiece":
            print(f"{name}: tokenizer {tk['kind']}: skipped (this check is for the SentencePiece models)")
            continue
        tok = D.SentencePiece(os.path.join(d, tk["model"]))
        art = os.path.join(a.work, name + "-kvf16.photon")
        onnx = os.path.join(d, "model.onnx")
        man = os.path.join(art, "manifest.json")
        if not (os.path.exists(man) and os.path.getmtime(man) > os.path.getmtime(onnx)):
            subprocess.run([os.path.join(a.bin, "photon-compile"), onnx, "--kv", "f16", "-o", art, "-q"],
                           check=True)
        A = Artifact(art)
        dtypes = sorted({c["dtype"] for c in A.manifest["caches"]})
        T = cfg["context"]
        ids = np.asarray(tok.encode(text), dtype=np.int64)
        n = len(ids) // T
        windows = np.ascontiguousarray(ids[: n * T].reshape(n, T).astype(np.int32))
        V = A.manifest["model"]["vocab"]
        fw = np.zeros((n, T, V), np.float32)
        A.call("forward", windows, fw)
        tb = tok.token_bytes()
        vanilla = A.manifest["model"]["family"] == "vanilla"
        f32, nbytes = bits_per_byte(fw, windows, tb, vanilla)
        f16, _ = bits_per_byte(cached_logits(A, windows), windows, tb, vanilla)
        row = {"model": name, "tokens": int(n * T), "scored_bytes": nbytes, "cache_dtypes": dtypes,
               "f32_forward_bpb": f32, "f16_cached_bpb": f16, "abs_diff": abs(f16 - f32)}
        ok = row["abs_diff"] <= TOL and dtypes == ["f16"] and math.isfinite(f16)
        bad += not ok
        rows.append(row)
        print(f"{'ok  ' if ok else 'FAIL'} {name}: f32 (forward) {f32:.6f} f16 caches {f16:.6f} "
              f"|diff| {row['abs_diff']:.2e} (tol {TOL}; {n} windows of {T} tokens, {nbytes} scored bytes, "
              f"caches {dtypes})", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"text": f"first {len(text)} characters of the held-out split", "tolerance": TOL,
                       "models": rows}, f, indent=1)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
