"""Corpus extraction (R serialization reader), split, tokenizer, and a training smoke test."""
import gzip
import json
import os
import struct
import sys
import unittest
import zlib

import torch

from .common import REF
from photon_ref import data as D
from photon_ref.config import Config
from photon_ref.model import build_model

sys.path.insert(0, os.path.join(REF, "scripts"))
import extract_austen as X          # noqa: E402


def xdr_int(v):
    return struct.pack(">i", v)


def rchar(s):
    b = s.encode("utf-8")
    return xdr_int(9 | (8 << 12)) + xdr_int(len(b)) + b      # CHARSXP, UTF8 flag


def rstr(items):
    return xdr_int(16) + xdr_int(len(items)) + b"".join(
        xdr_int(9) + xdr_int(-1) if s is None else rchar(s) for s in items)


def header(version=3):
    h = b"X\n" + xdr_int(version) + xdr_int(0x040201) + xdr_int(0x030500)
    if version == 3:
        h += xdr_int(5) + b"UTF-8"
    return h


class RReader(unittest.TestCase):
    def test_character_vector(self):
        for v in (2, 3):
            obj = X.RReader(header(v) + rstr(["It is a truth", None, "universally acknowledged"])).read()
            self.assertEqual(obj, ["It is a truth", None, "universally acknowledged"])

    def test_named_list_and_lazyload_record(self):
        # list(emma = c("a", "b"), n = 7L) with a names attribute (pairlist, tagged by a symbol)
        names = rstr(["emma", "n"])
        attr = (xdr_int(2 | (1 << 10)) + xdr_int(1) + rchar("names") + names + xdr_int(254))
        body = (xdr_int(19 | (1 << 9)) + xdr_int(2) + rstr(["a", "b"]) + xdr_int(13) + xdr_int(1) + xdr_int(7)
                + attr)
        obj = X.RReader(header() + body).read()
        self.assertEqual(obj, {"emma": ["a", "b"], "n": [7]})
        raw = header() + body
        rec = struct.pack(">I", len(raw)) + zlib.compress(raw)
        self.assertEqual(X.unserialize_blob(rec), obj)

    def test_rejects_garbage(self):
        with self.assertRaises(ValueError):
            X.RReader(b"A\n" + b"\0" * 12).read()
        with self.assertRaises(ValueError):
            X.RReader(header() + xdr_int(99)).read()


class Corpus(unittest.TestCase):
    def test_split(self):
        path = os.path.join(D.DATA_DIR, "austen.split.json")
        if not os.path.exists(path):
            self.skipTest("corpus not extracted: run reference/scripts/extract_austen.py")
        with open(path) as f:
            split = json.load(f)
        self.assertEqual([b["book"] for b in split["books"]], X.BOOKS)
        size = os.path.getsize(os.path.join(D.DATA_DIR, "austen.txt"))
        self.assertEqual(split["books"][-1]["end"], size)
        self.assertGreater(size, 3_500_000)
        train, val = D.load_split()
        self.assertEqual(len(train) + len(val), size)
        self.assertAlmostEqual(len(val) / size, 0.05, delta=0.002)
        self.assertIn(b"Elizabeth", bytes(train[:2_000_000]))

    def test_tokenizer(self):
        s = "Mr. Darcy — “Miss Bennet”"
        self.assertEqual(D.decode(D.encode(s)), s)
        self.assertTrue(all(0 <= t < 256 for t in D.encode(s)))


class TrainingSmoke(unittest.TestCase):
    def test_loss_decreases(self):
        """a few Adam steps on a fixed batch reduce the loss for every family (gradients reach
        every parameter, including the start latents and the converters)"""
        torch.manual_seed(0)
        small = dict(vocab=256, width=32, n_heads=2, n_kv_heads=2, head_dim=16, ffn=64, context=32)
        for fam, extra in (("photon", dict(chunk_sizes=(4, 4), enc_layers=(1, 1), dec_layers=(1, 1))),
                           ("block", dict(chunk_sizes=(4,), enc_layers=(1,), dec_layers=(1,))),
                           ("vanilla", dict(chunk_sizes=(), enc_layers=(), dec_layers=(), layers=2))):
            with self.subTest(family=fam):
                m = build_model(Config(family=fam, **small, **extra))
                x = torch.randint(0, 256, (4, 32), generator=torch.Generator().manual_seed(1))
                opt = torch.optim.Adam(m.parameters(), lr=3e-3)
                first = None
                for _ in range(12):
                    loss = m.loss(x)[0]
                    first = first if first is not None else float(loss)
                    opt.zero_grad()
                    loss.backward()
                    if fam == "photon":
                        for n, p in m.named_parameters():
                            self.assertIsNotNone(p.grad, n)
                    opt.step()
                self.assertLess(float(m.loss(x)[0]), first - 0.3)


class TrainResume(unittest.TestCase):
    def test_resume_equals_uninterrupted(self):
        """train.py --stop-after then --resume ends with the same weights and log as one run"""
        import subprocess
        import tempfile
        train = os.path.join(REF, "train.py")
        base = [sys.executable, train, "--family", "photon", "--size", "tiny", "--batch", "4", "--max-steps", "4",
                "--threads", "1", "--no-export", "--val-limit", "2", "--eval-every", "2", "--log-every", "1"]
        with tempfile.TemporaryDirectory() as tmp:
            a, b = os.path.join(tmp, "a"), os.path.join(tmp, "b")
            env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
            subprocess.run(base + ["--out", a], check=True, capture_output=True, env=env)
            r = subprocess.run(base + ["--out", b, "--stop-after", "2"], check=True, capture_output=True, env=env)
            self.assertIn(b"--stop-after", r.stdout)
            subprocess.run(base + ["--out", b, "--resume"], check=True, capture_output=True, env=env)
            wa = torch.load(os.path.join(a, "ckpt.pt"))["model"]
            wb = torch.load(os.path.join(b, "ckpt.pt"))["model"]
            for k in wa:
                self.assertTrue(torch.equal(wa[k], wb[k]), k)

            def steps(d):
                with open(os.path.join(d, "train.log.jsonl")) as f:
                    recs = [json.loads(line) for line in f]
                return [(r["step"], r["loss"], r["tokens"]) for r in recs if "step" in r and "loss" in r]
            self.assertEqual(steps(a), steps(b))
            self.assertEqual([s[0] for s in steps(a)], [1, 2, 3, 4])


if __name__ == "__main__":
    unittest.main()
