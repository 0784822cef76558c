#!/usr/bin/env python3
"""Numeric check of photon-import's upstream conversion on the ONNX node tests.

For each node-test case that imports (see node_runner.cpp), the upstream MLIR is wrapped
in a @main that feeds test_data_set_0's inputs as constants and prints every output; it is
lowered with mlir-opt to LLVM and run with mlir-runner, and the printed values are compared
with the expected outputs (rtol 1e-3, atol 1e-4). Cases with inputs or outputs of types the
printer does not handle (bool, f16, ...) are skipped.

usage: run_numeric.py --import BIN/photon-import [--data DIR] [--filter REGEX] [--limit N]
Exit 1 if any checked case mismatches or fails to compile/run.
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

LLVM = "/usr/lib/llvm-22"
PIPE = ("--one-shot-bufferize=bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map",
        "--buffer-deallocation-pipeline", "--convert-bufferization-to-memref", "--convert-linalg-to-loops", "--convert-scf-to-cf",
        "--expand-strided-metadata", "--lower-affine", "--convert-math-to-llvm", "--convert-math-to-libm",
        "--finalize-memref-to-llvm", "--convert-arith-to-llvm", "--convert-index-to-llvm",
        "--convert-cf-to-llvm", "--convert-func-to-llvm", "--reconcile-unrealized-casts")
MLIR_T = {np.dtype("float32"): "f32", np.dtype("int64"): "i64", np.dtype("int32"): "i32"}
PRINT = {"f32": "printMemrefF32", "i64": "printMemrefI64", "i32": "printMemrefI32"}


def load_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def ttype(shape, et):
    return "tensor<" + "".join("%dx" % d for d in shape) + et + ">"


def check_case(imp, d, tmp):
    inputs = [load_pb(p) for p in sorted(glob.glob(d + "/test_data_set_0/input_*.pb"),
                                         key=lambda s: int(re.findall(r"(\d+)\.pb$", s)[0]))]
    outputs = [load_pb(p) for p in sorted(glob.glob(d + "/test_data_set_0/output_*.pb"),
                                          key=lambda s: int(re.findall(r"(\d+)\.pb$", s)[0]))]
    if not outputs or any(a.dtype not in MLIR_T for a in inputs + outputs):
        return "skip", "dtype"
    if any(a.size == 0 for a in inputs + outputs):
        return "skip", "empty tensor"
    mlir = os.path.join(tmp, "m.mlir")
    r = subprocess.run([imp, "--emit=upstream", d + "/model.onnx", "-o", mlir],
                       capture_output=True, text=True)
    if r.returncode:
        return "skip", "import"
    text = open(mlir).read()
    if "photon.weight" in text:
        return "skip", "weights"
    line = next((l for l in text.splitlines() if l.strip().startswith("func.func @")), None)
    if line is None:
        return "fail", "no function"
    fname = re.search(r"func\.func @(\w+)", line).group(1)
    head, _, tail = line.partition(") -> ")
    argtypes = re.findall(r"tensor<[^>]*>", head)
    restypes = re.findall(r"tensor<[^>]*>", tail)
    if len(argtypes) != len(inputs) or len(restypes) != len(outputs):
        return "skip", "signature"
    body = ["func.func private @printMemrefF32(memref<*xf32>)",
            "func.func private @printMemrefI64(memref<*xi64>)",
            "func.func private @printMemrefI32(memref<*xi32>)",
            "func.func @main() {"]
    args = []
    for i, (a, at) in enumerate(zip(inputs, argtypes)):
        et = MLIR_T[a.dtype]
        st = ttype(a.shape, et)
        hexs = np.ascontiguousarray(a).tobytes().hex().upper()
        if a.size == 0:
            return "skip", "empty"
        body.append('  %%c%d = arith.constant dense<"0x%s"> : %s' % (i, hexs, st))
        if st != at:
            body.append("  %%a%d = tensor.cast %%c%d : %s to %s" % (i, i, st, at))
            args.append("%%a%d" % i)
        else:
            args.append("%%c%d" % i)
    res = ", ".join("%%r%d" % i for i in range(len(restypes)))
    body.append("  %s = call @%s(%s) : (%s) -> (%s)" % (res, fname, ", ".join(args),
                                                     ", ".join(argtypes), ", ".join(restypes)))
    for i, rt in enumerate(restypes):
        et = rt[rt.rfind("x") + 1:-1] if "x" in rt else rt[7:-1]
        if et not in PRINT:
            return "skip", "result type"
        mt = rt.replace("tensor<", "memref<")
        body.append("  %%b%d = bufferization.to_buffer %%r%d : %s to %s" % (i, i, rt, mt))
        body.append("  %%u%d = memref.cast %%b%d : %s to memref<*x%s>" % (i, i, mt, et))
        body.append("  call @%s(%%u%d) : (memref<*x%s>) -> ()" % (PRINT[et], i, et))
    body += ["  return", "}"]
    # Insert @main into the module (before its closing brace).
    k = text.rfind("}")
    full = text[:k] + "\n".join(body) + "\n}\n"
    src = os.path.join(tmp, "main.mlir")
    open(src, "w").write(full)
    r = subprocess.run([LLVM + "/bin/mlir-opt", src, *PIPE, "-o", os.path.join(tmp, "ll.mlir")],
                       capture_output=True, text=True, timeout=120)
    if r.returncode:
        return "fail", "lowering: " + r.stderr.strip().splitlines()[0][:160]
    libs = ",".join(LLVM + "/lib/" + n for n in ("libmlir_c_runner_utils.so", "libmlir_runner_utils.so"))
    r = subprocess.run([LLVM + "/bin/mlir-runner", os.path.join(tmp, "ll.mlir"), "-e", "main",
                        "-entry-point-result=void", "-shared-libs=" + libs],
                       capture_output=True, text=True, timeout=120)
    if r.returncode:
        return "fail", "run: " + (r.stderr.strip().splitlines() or ["?"])[0][:160]
    chunks = r.stdout.split("Unranked Memref")[1:]
    if len(chunks) != len(outputs):
        return "fail", "printed %d outputs, expected %d" % (len(chunks), len(outputs))
    for i, (c, want) in enumerate(zip(chunks, outputs)):
        data = c.split("data =", 1)[1]
        nums = re.findall(r"-?(?:nan|inf|\d+\.?\d*(?:e[-+]?\d+)?)", data)
        got = np.array([float(x) for x in nums], np.float64)
        want = want.astype(np.float64).ravel()
        if got.size != want.size:
            return "fail", "output %d has %d values, expected %d" % (i, got.size, want.size)
        if not np.allclose(got, want, rtol=1e-3, atol=1e-4, equal_nan=True):
            e = np.max(np.abs(got - want))
            return "fail", "output %d differs (max abs err %.3g)" % (i, e)
    return "pass", ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--import", dest="imp", required=True)
    ap.add_argument("--data", default="/usr/share/libonnx-testdata/data/node")
    ap.add_argument("--filter", default="")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("-v", action="store_true")
    a = ap.parse_args()
    cases = sorted(d for d in glob.glob(a.data + "/test_*") if re.search(a.filter, os.path.basename(d)))
    if a.limit:
        cases = cases[:a.limit]
    counts = {}
    fails = []
    with tempfile.TemporaryDirectory() as tmp:
        for d in cases:
            try:
                st, why = check_case(a.imp, d, tmp)
            except subprocess.TimeoutExpired:
                st, why = "fail", "timeout"
            except (ValueError, TypeError) as e:  # test data that is not a plain tensor
                st, why = "skip", "data: %s" % e
            counts[st] = counts.get(st, 0) + 1
            if st == "fail":
                fails.append((os.path.basename(d), why))
            if a.v or st == "fail":
                print("%s\t%s\t%s" % (st, os.path.basename(d), why), flush=True)
    print("numeric node tests: %d cases, %d pass, %d fail, %d skipped" %
          (len(cases), counts.get("pass", 0), counts.get("fail", 0), counts.get("skip", 0)))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
