"""ONNX Runtime's logits of a model on seeded token batches, as a zoo-style ref.npz
(tokens_0 [1, 20], logits_0, tokens_1 [3, 9], logits_1 by default) for
test/zoo/check_logits.py:

    ort_logits.py MODEL.onnx VOCAB OUT.npz [SHAPES]

SHAPES: batch x sequence pairs, default 1x20,3x9 (a PHOTON model needs sequences that are
multiples of its meta-context).

Runs onnxruntime-node through test/zoo/ort_run.js (node; PHOTON_NPM_MODULES, default
.deps/npm/node_modules).
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
MODULES = os.environ.get("PHOTON_NPM_MODULES", os.path.join(ROOT, ".deps", "npm", "node_modules"))
NODE = os.environ.get("NODE", "node")

model, vocab, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
shapes = [tuple(int(d) for d in s.split("x"))
          for s in (sys.argv[4] if len(sys.argv) > 4 else "1x20,3x9").split(",")]
rng = np.random.default_rng(11)
ref = {}
with tempfile.TemporaryDirectory() as tmp:
    for k, shape in enumerate(shapes):
        tokens = rng.integers(0, vocab, size=shape).astype(np.int64)
        tokens.tofile(os.path.join(tmp, "tokens.bin"))
        with open(os.path.join(tmp, "in.json"), "w") as f:
            json.dump({"tokens": {"dtype": "int64", "dims": list(shape),
                                  "file": os.path.join(tmp, "tokens.bin")}}, f)
        subprocess.run([NODE, os.path.join(ROOT, "test", "zoo", "ort_run.js"), MODULES, model,
                        os.path.join(tmp, "in.json"), tmp], check=True)
        meta = json.load(open(os.path.join(tmp, "outputs.json")))
        logits = np.fromfile(os.path.join(tmp, "logits.bin"), np.float32).reshape(meta["logits"]["dims"])
        ref["tokens_%d" % k] = tokens
        ref["logits_%d" % k] = logits
np.savez(out, **ref)
