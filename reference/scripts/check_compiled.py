#!/usr/bin/python3
"""Compiled vs reference bits per byte of the bundled models (a ctest, `trained-models`).

usage: /usr/bin/python3 reference/scripts/check_compiled.py --bin BUILD/bin --work DIR
       [--slice-bytes 6000] [--full] [--json OUT] [MODEL_DIR ...]

For every model directory (default: reference/models/small-*): compile model.onnx with
photon-compile --tokenizer tokenizer.model (unless DIR/<name>.photon is newer than the export),
then score the same text with `photon-run --eval TEXT --window T --json` and with the PyTorch
reference (float32; tokens from python3-sentencepiece; non-overlapping windows of T tokens, the
tail shorter than T not scored; PHOTON/Block score every token of a window, vanilla every token
but the first; bits per byte = summed CE / ln 2 / the UTF-8 bytes of the scored tokens). The
text is the first --slice-bytes of the held-out split (cut after a line end), or with --full the
whole held-out split, where the reference number must also equal metrics.json's val_bpb.
Fails if any |compiled - reference| > 1e-3. Also generates 48 tokens from a prompt with
`photon-run --ignore-eos --json` and checks that the prompt's tokens are python3-sentencepiece's
and that the streamed text equals the library's decoding of the returned tokens.
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
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.dirname(HERE)
sys.path.insert(0, REF)
from photon_ref import data as D  # noqa: E402
import train as TR                # noqa: E402

TOL = 1e-3
PROMPT = "It is a truth universally acknowledged, that\na single man"


@torch.no_grad()
def reference_bpb(model, tok, text, T):
    ids = np.asarray(tok.encode(text), dtype=np.int64)
    w = D.windows(ids, T)
    tb = torch.from_numpy(tok.token_bytes())
    nats, nbytes = 0.0, 0
    for i in range(0, len(w), 16):
        lg, tgt = TR.scored(model, w[i: i + 16])
        nats += float(F.cross_entropy(lg.reshape(-1, lg.shape[-1]).double(), tgt.reshape(-1), reduction="sum"))
        nbytes += int(tb[tgt].sum())
    return nats / nbytes / math.log(2), len(ids), nbytes


def compile_model(bin_dir, d, art):
    onnx = os.path.join(d, "model.onnx")
    if os.path.exists(os.path.join(art, "manifest.json")) and \
            os.path.getmtime(os.path.join(art, "manifest.json")) > os.path.getmtime(onnx):
        return
    subprocess.run([os.path.join(bin_dir, "photon-compile"), onnx, "--target", "cpu", "-o", art, "-q",
                    "--tokenizer", os.path.join(d, "tokenizer.model")], check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="directory of photon-compile and photon-run")
    ap.add_argument("--work", required=True, help="directory for the artifacts and the text")
    ap.add_argument("--slice-bytes", type=int, default=6000)
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--json", default=None, help="write the numbers here")
    ap.add_argument("models", nargs="*")
    a = ap.parse_args()
    torch.set_num_threads(1)
    dirs = a.models or sorted(glob.glob(os.path.join(REF, "models", "small-*")))
    dirs = [d for d in dirs if os.path.exists(os.path.join(d, "model.onnx"))]
    if not dirs:
        print("no trained models (reference/models/small-*/model.onnx): nothing to check")
        return 0
    os.makedirs(a.work, exist_ok=True)
    val = D.val_text()
    if a.full:
        text = val
    else:
        cut = val.rfind("\n", 0, a.slice_bytes)
        text = val[: cut + 1 if cut > 0 else a.slice_bytes]
    text_path = os.path.join(a.work, "val-full.txt" if a.full else f"val-slice-{a.slice_bytes}.txt")
    with open(text_path, "w", encoding="utf-8") as f:
        f.write(text)
    tok = None
    rows, bad = [], 0
    for d in dirs:
        name = os.path.basename(os.path.normpath(d))
        cfg, model = TR.load_trained(d)
        with open(os.path.join(d, "tokenizer.json")) as f:
            tk = json.load(f)
        if tk["kind"] != "sentencepiece":
            print(f"{name}: tokenizer {tk['kind']}: skipped (this check is for the SentencePiece models)")
            continue
        tok = D.SentencePiece(os.path.join(d, tk["model"]))
        art = os.path.join(a.work, name + ".photon")
        compile_model(a.bin, d, art)
        out = subprocess.run([os.path.join(a.bin, "photon-run"), art, "--eval", text_path, "--window",
                              str(cfg.context), "--json"], check=True, capture_output=True, text=True).stdout
        got = json.loads(out)
        want, ntok, nbytes = reference_bpb(model, tok, text, cfg.context)
        row = {"model": name, "text_bytes": len(text.encode("utf-8")), "tokens": ntok, "scored_bytes": nbytes,
               "compiled_bpb": got["bits_per_byte"], "reference_bpb": want,
               "abs_diff": abs(got["bits_per_byte"] - want)}
        ok = row["abs_diff"] <= TOL and got["scored_bytes"] == nbytes
        if a.full:
            with open(os.path.join(d, "metrics.json")) as f:
                met = json.load(f)
            row["metrics_val_bpb"] = met["val_bpb"]
            ok = ok and abs(met["val_bpb"] - want) <= 1e-4 + 1e-9
        gen = json.loads(subprocess.run([os.path.join(a.bin, "photon-run"), art, "--prompt", PROMPT, "--max-tokens",
                                         "48", "--ignore-eos", "--json"], check=True, capture_output=True,
                                        text=True).stdout)["requests"][0]
        gen_ok = (gen["prompt_tokens"] == len(tok.encode(PROMPT)) and len(gen["tokens"]) == 48
                  and gen["finish"] == "length" and gen["text"] == tok.decode(gen["tokens"]))
        row["generation_ok"] = gen_ok
        ok = ok and gen_ok
        bad += not ok
        rows.append(row)
        print(f"{'ok  ' if ok else 'FAIL'} {name}: compiled {got['bits_per_byte']:.6f} reference {want:.6f} "
              f"|diff| {row['abs_diff']:.2e} ({ntok} tokens, {nbytes} scored bytes of {row['text_bytes']})"
              + (f", metrics.json {row['metrics_val_bpb']}" if a.full else "")
              + ("" if gen_ok else f"; generation mismatch: {gen!r}"), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"text": "full held-out split" if a.full else f"first {len(text)} characters of the held-out split",
                       "tolerance": TOL, "models": rows}, f, indent=1)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
