"""Runs @g3 of matmul-group-run.mlir (three matmuls on one x, grouped into one kernel call
by photon-matmul-kernels) from a shared library and checks o_i + x * w_i^T against float64
for M that take the split-K GEMV (M < 16), the narrow GEMM tile (M = 16, 48) and the wide
one, with K and N tails. Prints one PASS/FAIL line per M and the worst relative error.

usage: check_matmul_group.py LIB.so"""
import ctypes
import sys

import numpy as np


class MemRef2D(ctypes.Structure):
    _fields_ = [("alloc", ctypes.c_void_p), ("data", ctypes.c_void_p), ("offset", ctypes.c_int64),
                ("sizes", ctypes.c_int64 * 2), ("strides", ctypes.c_int64 * 2)]


def view(a):
    m = MemRef2D()
    m.alloc = m.data = a.ctypes.data
    m.offset = 0
    m.sizes[0], m.sizes[1] = a.shape
    m.strides[0], m.strides[1] = a.shape[1], 1
    return m


fn = ctypes.CDLL(sys.argv[1])._mlir_ciface_g3
rng = np.random.default_rng(0)
K, N = 400, 70
worst = 0.0
for M in [1, 2, 3, 5, 15, 16, 17, 33, 48, 64, 100]:
    x = rng.standard_normal((M, K), dtype=np.float32)
    ws = [rng.standard_normal((N, K), dtype=np.float32) for _ in range(3)]
    outs = [rng.standard_normal((M, N), dtype=np.float32) for _ in range(3)]
    ref = [o.astype(np.float64) + x.astype(np.float64) @ w.astype(np.float64).T
           for o, w in zip(outs, ws)]
    views = [view(x)] + [view(w) for w in ws] + [view(o) for o in outs]
    fn(*[ctypes.byref(v) for v in views])
    err = max(float(np.abs(o - r).max() / np.abs(r).max()) for o, r in zip(outs, ref))
    worst = max(worst, err)
    print(("PASS" if err <= 1e-5 else "FAIL"), f"M={M} rel_err={err:.2e}")
print(f"worst {worst:.2e}")
