"""The exports run in ONNX Runtime (npm onnxruntime-node, CPU) and agree with torch."""
import glob
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import numpy as np
import torch

from .common import random_tokens, ROOT, FIXTURES, MODELS, LOGITS_ATOL
from photon_ref.config import Config
from photon_ref.model import build_model

NODE = shutil.which("node")
MODULES = os.environ.get("PHOTON_NPM_MODULES", os.path.join(ROOT, ".deps", "npm", "node_modules"))
HAVE_ORT = os.path.isdir(os.path.join(MODULES, "onnxruntime-node"))
REASON = ("node not found on PATH" if not NODE else
          f"onnxruntime-node not installed under {MODULES} (npm install --prefix .deps/npm "
          "--ignore-scripts onnxruntime-node@1.30.0)")


def ort_run(model_path, tokens, tmp):
    tj = os.path.join(tmp, "tokens.json")
    with open(tj, "w") as f:
        json.dump({"dims": list(tokens.shape), "data": tokens.reshape(-1).tolist()}, f)
    r = subprocess.run([NODE, os.path.join(os.path.dirname(__file__), "ort_run.js"), MODULES, model_path, tj, tmp],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise AssertionError(f"onnxruntime failed on {model_path}: {r.stderr.strip()}")
    with open(os.path.join(tmp, "outputs.json")) as f:
        meta = json.load(f)
    return {n: np.fromfile(os.path.join(tmp, n + ".bin"), dtype="<f4").reshape(d) for n, d in meta.items()}


@unittest.skipUnless(NODE and HAVE_ORT, REASON)
class OnnxRuntime(unittest.TestCase):
    def test_fixture_exports(self):
        """the committed fixture models (what the C++ side imports) reproduce the committed
        torch outputs in ONNX Runtime, at a batch and length other than the export's example"""
        dirs = sorted(d for d in glob.glob(os.path.join(FIXTURES, "*")) if os.path.exists(os.path.join(d, "model.onnx")))
        if not dirs:
            self.skipTest("no fixtures")
        for d in dirs:
            name = os.path.basename(d)
            toks = np.load(os.path.join(d, "tokens.npy")).astype(np.int64)[:1, :32]
            files = ["model.onnx"] + (["model.plain.onnx"] if name in ("photon-c44", "vanilla") else [])
            with tempfile.TemporaryDirectory() as tmp:
                for f in files:
                    with self.subTest(name=name, file=f):
                        got = ort_run(os.path.join(d, f), toks, tmp)
                        for out in got:
                            want = np.load(os.path.join(d, f"{out}.npy"))
                            n = want.shape[1] * 32 // 64
                            np.testing.assert_allclose(got[out], want[:1, :n], atol=LOGITS_ATOL, rtol=1e-4,
                                                       err_msg=f"{name}/{f} output {out}")

    def test_trained_exports(self):
        dirs = sorted(d for d in glob.glob(os.path.join(MODELS, "tiny-*")) if os.path.exists(os.path.join(d, "metrics.json")))
        if not dirs:
            self.skipTest("no trained models")
        for d in dirs:
            with self.subTest(model=os.path.basename(d)):
                with open(os.path.join(d, "config.json")) as f:
                    cfg = Config.from_dict(json.load(f))
                m = build_model(cfg)
                m.load_state_dict(torch.load(os.path.join(d, "weights.pt")))
                m.eval()
                toks = random_tokens(32, seed=4)
                with torch.no_grad():
                    ref = m(toks)
                ref = ref if isinstance(ref, tuple) else (ref,)
                with tempfile.TemporaryDirectory() as tmp:
                    got = ort_run(os.path.join(d, "model.onnx"), toks.numpy(), tmp)
                for n, r in zip(m.output_names(), ref):
                    np.testing.assert_allclose(got[n], r.numpy(), atol=LOGITS_ATOL, rtol=1e-4)


if __name__ == "__main__":
    unittest.main()
