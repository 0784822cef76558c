#!/usr/bin/python3
"""Check that llama.cpp runs the same model as photon: greedy tokens and logits on the GGUF
files of export_peers.py against the PyTorch reference (and photon's compiled artifact).

usage: /usr/bin/python3 benchmarks/peers/check_llama.py --model DIR [--artifact DIR.photon]
           [--lib BUILD/lib] [--llama-bin DIR] [--prompt 8] [--gen 8] [--out check.json]

DIR is the vanilla model directory (config.json, state.pt, model-f32.gguf, model-f16.gguf).
llama-logits (benchmarks/peers/llama_logits.cpp, built by build_llama_cpp.sh) prints the
greedy tokens and the logits after the prompt and after every generated token; the
reference's logits at the same positions come from a teacher-forced forward over the prompt
and llama.cpp's tokens, and so do photon's (photon_model_forward through libphoton) when
--artifact is given. Passes when f32's greedy tokens equal the reference's and the largest
logit difference is below --tol (relative to the largest |logit|); f16 is reported only.
Exit status 0 on a pass, 1 otherwise.
"""
import argparse
import ctypes
import json
import os
import subprocess
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "reference"))
from photon_ref.config import Config  # noqa: E402
from photon_ref.model import build_model  # noqa: E402


def reference(d, tokens):
    with open(os.path.join(d, "config.json")) as f:
        cfg = Config.from_dict(json.load(f)["config"])
    model = build_model(cfg)
    model.load_state_dict(torch.load(os.path.join(d, "state.pt")))
    model.eval()
    with torch.no_grad():
        return model(torch.tensor([tokens]))[0].numpy()


def photon_forward(artifact, lib, tokens, vocab):
    so = ctypes.CDLL(os.path.join(lib, "libphoton.so"))
    so.photon_last_error.restype = ctypes.c_char_p
    h = ctypes.c_void_p()
    st = so.photon_model_load(artifact.encode(), None, ctypes.byref(h))
    if st != 0:
        raise RuntimeError(f"photon_model_load: {so.photon_last_error().decode()}")
    toks = (ctypes.c_int32 * len(tokens))(*tokens)
    out = np.zeros((len(tokens), vocab), dtype=np.float32)
    st = so.photon_model_forward(h, toks, 1, len(tokens), out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)))
    if st != 0:
        raise RuntimeError(f"photon_model_forward: {so.photon_last_error().decode()}")
    so.photon_model_free(h)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--artifact")
    ap.add_argument("--lib", help="directory of libphoton.so (with --artifact)")
    ap.add_argument("--llama-bin", default=os.path.join(ROOT, ".deps", "llama", "llama.cpp", "build", "bin"))
    ap.add_argument("--prompt", type=int, default=8)
    ap.add_argument("--gen", type=int, default=8)
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--out")
    a = ap.parse_args()
    with open(os.path.join(a.model, "config.json")) as f:
        V = json.load(f)["config"]["vocab"]
    rng = np.random.default_rng(7)
    prompt = [int(x) for x in rng.integers(3, V, a.prompt)]
    res = {"prompt": prompt, "gen": a.gen, "tol": a.tol, "types": {}}
    ok = True
    for ty in ("f32", "f16"):
        gg = os.path.join(a.model, f"model-{ty}.gguf")
        p = subprocess.run([os.path.join(a.llama_bin, "llama-logits"), gg, str(a.gen)] + [str(t) for t in prompt],
                           capture_output=True, text=True)
        if p.returncode != 0:
            print(f"check_llama.py: llama-logits {ty} failed: {p.stderr[-800:]}", file=sys.stderr)
            res["types"][ty] = {"error": p.stderr[-800:]}
            ok = False
            continue
        got = json.loads(p.stdout)
        lt = got["tokens"]
        ll = np.array(got["logits"], dtype=np.float64)  # [gen, V]: after the prompt, then each token
        full = prompt + lt
        ref = reference(a.model, full[:-1])[a.prompt - 1:]  # logits at the same positions
        ref_tokens = [int(x) for x in ref.argmax(-1)]
        scale = float(np.abs(ref).max())
        rel = float(np.abs(ll - ref).max() / scale)
        r = {"llama_tokens": lt, "reference_greedy_at_llama_positions": ref_tokens,
             "tokens_equal": lt == ref_tokens, "max_rel_logit_diff": rel, "n_vocab": got["n_vocab"]}
        if a.artifact:
            ph = photon_forward(a.artifact, a.lib, full[:-1], V)[a.prompt - 1:]
            r["photon_tokens"] = [int(x) for x in ph.argmax(-1)]
            r["photon_tokens_equal"] = r["photon_tokens"] == lt
            r["photon_max_rel_logit_diff_vs_llama"] = float(np.abs(ll - ph).max() / scale)
            r["photon_max_rel_logit_diff_vs_reference"] = float(np.abs(ph - ref).max() / scale)
        res["types"][ty] = r
        print(f"llama.cpp {ty}: tokens {lt} {'==' if r['tokens_equal'] else '!='} reference {ref_tokens}; "
              f"max |logit diff| / max |logit| = {rel:.2e}"
              + (f"; photon tokens {'equal' if r['photon_tokens_equal'] else 'DIFFER'}, "
                 f"photon vs llama {r['photon_max_rel_logit_diff_vs_llama']:.2e}" if a.artifact else ""))
        if ty == "f32" and not (r["tokens_equal"] and rel <= a.tol and got["n_vocab"] == V):
            ok = False
    res["ok"] = ok
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)
    print("check_llama.py: " + ("OK" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
