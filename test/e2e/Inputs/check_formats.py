"""Checks a reduced-precision artifact (photon-compile --weights f16|bf16|q8) against the
f32 artifact of the same model.

    check_formats.py F32_ARTIFACT ARTIFACT FIXTURE_DIR --tol T [--photon-run PATH
        --prompt TEXT --tokens N --min-prefix P]

- forward: teacher-forced logits of the fixture's tokens.npy, both artifacts; relative error
  max|got - f32| / max|f32| <= tol, and the fraction of positions whose argmax (the greedy
  choice) agrees, reported.
- exact (with --exact): the kernels' arithmetic alone. A copy of the f32 artifact whose
  matmul weights are replaced by the format's dequantized values (f16 / bf16 widened, q8
  q * d) must give the format artifact's logits within --exact-tol: any error beyond the
  order of the f32 additions is a kernel bug, not rounding of the weights.
- greedy (with --photon-run): N tokens generated greedily by photon-run from --prompt with
  each artifact (byte tokenizer: stdout bytes are the tokens); the identical prefix must be
  at least --min-prefix tokens; the agreement over all N positions is reported.
One line per check; exit 1 on failure.
"""
import argparse
import os
import subprocess
import sys

import numpy as np

from photon_harness import Artifact, rel_err

ap = argparse.ArgumentParser()
ap.add_argument("ref")
ap.add_argument("artifact")
ap.add_argument("fixture")
ap.add_argument("--tol", type=float, required=True)
ap.add_argument("--photon-run")
ap.add_argument("--prompt", default="hello world")
ap.add_argument("--tokens", type=int, default=256)
ap.add_argument("--min-prefix", type=int, default=0)
ap.add_argument("--exact", metavar="DIR", help="scratch directory for the dequantized copy")
ap.add_argument("--exact-tol", type=float, default=1e-4)
a = ap.parse_args()
failed = False

DTYPES = {0: np.float32, 1: np.float16, 2: None, 3: np.int32, 4: np.int64, 5: np.int8}


def read_index(path):
    """name -> (dtype code, shape, offset, bytes) of a PHOTONW1 blob."""
    import struct
    with open(path, "rb") as f:
        buf = f.read()
    assert buf[:8] == b"PHOTONW1", "not a PHOTONW1 blob"
    _, count, _, _ = struct.unpack_from("<IIQQ", buf, 8)
    p, out = 32, {}
    for _ in range(count):
        (n,) = struct.unpack_from("<H", buf, p)
        name = buf[p + 2:p + 2 + n].decode()
        p += 2 + n
        dt, rank = struct.unpack_from("<BB", buf, p)
        p += 2
        shape = struct.unpack_from("<%dq" % rank, buf, p)
        p += 8 * rank
        off, nb = struct.unpack_from("<QQ", buf, p)
        p += 16
        out[name] = (dt, shape, off, nb)
    return out


def dequantized(path):
    """name -> f32 values of every reduced-precision tensor of the artifact at `path`."""
    blob = os.path.join(path, "weights.bin")
    idx = read_index(blob)
    raw = np.fromfile(blob, np.uint8)
    out = {}
    for name, (dt, shape, off, nb) in idx.items():
        if name.endswith(".q8_scales") or name.endswith(".q4_scales") or dt == 0:
            continue
        b = raw[off:off + nb]
        if dt == 1:
            w = b.view(np.float16).astype(np.float32)
        elif dt == 2:
            w = (b.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif dt == 5 and name + ".q4_scales" in idx:
            # q4: byte 16 g + j holds k = 32 g + j (low nibble) and 32 g + 16 + j (high)
            sdt, sshape, soff, snb = idx[name + ".q4_scales"]
            d = raw[soff:soff + snb].view(np.float16).astype(np.float32).reshape(sshape)
            p = b.reshape(shape[0], sshape[1], 16)
            q = np.concatenate([p & 15, p >> 4], axis=2).astype(np.float32) - 8
            shape = (shape[0], shape[1] * 2)
            w = (q * d[:, :, None]).reshape(shape)
        elif dt == 5:
            sdt, sshape, soff, snb = idx[name + ".q8_scales"]
            d = raw[soff:soff + snb].view(np.float16).astype(np.float32).reshape(sshape)
            q = b.view(np.int8).astype(np.float32).reshape(shape)
            w = q * np.repeat(d, shape[1] // sshape[1], axis=1)
        else:
            continue
        out[name] = w.reshape(shape)
    return out

tokens = np.ascontiguousarray(np.load(os.path.join(a.fixture, "tokens.npy")).astype(np.int32))
shape = np.load(os.path.join(a.fixture, "logits.npy")).shape
out = []
for path in (a.ref, a.artifact):
    logits = np.zeros(shape, np.float32)
    Artifact(path).call("forward", tokens, logits)
    out.append(logits)
ref, got = out
e = rel_err(got, ref)
ok = e <= a.tol and np.all(np.isfinite(got))
agree = float(np.mean(np.argmax(got, -1) == np.argmax(ref, -1)))
print("%s forward vs f32 rel_err=%.3g (tol %.1g) argmax agreement %.4f"
      % ("PASS" if ok else "FAIL", e, a.tol, agree))
failed |= not ok

if a.exact:
    import shutil
    copy = os.path.join(a.exact, "dequantized.photon")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(a.ref, copy)
    blob = os.path.join(copy, "weights.bin")
    idx = read_index(blob)
    deq = dequantized(a.artifact)
    with open(blob, "r+b") as f:
        for name, w in deq.items():
            dt, tshape, off, nb = idx[name]
            assert dt == 0 and tuple(tshape) == w.shape and nb == w.size * 4, name
            f.seek(off)
            f.write(np.ascontiguousarray(w, np.float32).tobytes())
    logits = np.zeros(shape, np.float32)
    Artifact(copy).call("forward", tokens, logits)
    e = rel_err(got, logits)
    ok = e <= a.exact_tol and len(deq) > 0
    print("%s exact: %d dequantized tensors, rel_err=%.3g (tol %.1g)"
          % ("PASS" if ok else "FAIL", len(deq), e, a.exact_tol))
    failed |= not ok



def generate(path):
    r = subprocess.run([a.photon_run, path, "--prompt", a.prompt, "--max-tokens", str(a.tokens),
                        "--quiet", "--no-verify-checksum"], stdout=subprocess.PIPE, check=True)
    out = r.stdout
    if out.startswith(a.prompt.encode()):
        out = out[len(a.prompt.encode()):]
    return out[:-1] if out.endswith(b"\n") else out


def compare(what, g0, g1, min_prefix):
    global failed
    n = min(len(g0), len(g1))
    prefix = next((i for i in range(n) if g0[i] != g1[i]), n)
    same = sum(1 for i in range(n) if g0[i] == g1[i])
    ok = prefix >= min(min_prefix, max(len(g0), len(g1))) and n > 0
    print("%s %s %d tokens: identical prefix %d (min %d), agreement %.4f"
          % ("PASS" if ok else "FAIL", what, n, prefix, min_prefix, same / max(n, 1)))
    failed |= not ok


if a.photon_run:
    g1 = generate(a.artifact)
    compare("greedy vs f32", generate(a.ref), g1, a.min_prefix)
    if a.exact:
        # decode (the GEMV kernels) on the same dequantized weights: only near-ties may differ
        compare("exact greedy", generate(copy), g1, a.tokens // 2)
sys.exit(1 if failed else 0)
