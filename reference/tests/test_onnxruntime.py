"""The exports run in ONNX Runtime (npm onnxruntime-node, CPU) and agree with torch."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import numpy as np
import torch

from .common import fixture_model, random_tokens, ROOT, LOGITS_ATOL
from photon_ref.export import export

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
    def test_exports_match_torch(self):
        for name in ("photon-c44", "photon-l3", "photon-gqa", "vanilla", "block"):
            m = fixture_model(name)
            T = 2 * m.cfg.meta if m.cfg.family != "vanilla" else 24
            T = max(T, 16)
            toks = random_tokens(T, seed=2, batch=3)     # B and T differ from the export's example
            with torch.no_grad():
                ref = m(toks)
            ref = ref if isinstance(ref, tuple) else (ref,)
            with tempfile.TemporaryDirectory() as tmp:
                for functions in ((True, False) if name == "photon-c44" else (True,)):
                    with self.subTest(name=name, functions=functions):
                        path = os.path.join(tmp, "m.onnx")
                        export(m, path, functions=functions)
                        got = ort_run(path, toks.numpy(), tmp)
                        names = m.output_names()
                        self.assertEqual(sorted(got), sorted(names))
                        for n, r in zip(names, ref):
                            np.testing.assert_allclose(got[n], r.numpy(), atol=LOGITS_ATOL, rtol=1e-4,
                                                       err_msg=f"{name} output {n}")


if __name__ == "__main__":
    unittest.main()
