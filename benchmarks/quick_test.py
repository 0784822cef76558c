#!/usr/bin/python3
"""Smoke test of photon-bench (ctest label `bench`): compile the small test fixtures (vanilla,
Block, PHOTON C = (4, 4)), run `photon-bench --suite quick`, and check that the JSON is well
formed, complete, and that every ratio is finite; then kill a second run midway and check
that its JSON (rewritten after every run) is valid and keeps the finished runs. No timing
assertions.

usage: quick_test.py --bench photon-bench --compile photon-compile --fixtures test/fixtures --work DIR
"""
import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time

FIXTURES = ["vanilla", "block", "photon-c44"]


def fail(msg):
    print(f"quick_test.py: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def walk_numbers(obj, path=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from walk_numbers(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from walk_numbers(v, f"{path}[{i}]")
    else:
        yield path, obj


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", required=True)
    ap.add_argument("--compile", required=True)
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    arts = []
    for name in FIXTURES:
        src = os.path.join(a.fixtures, name, "model.onnx")
        if not os.path.exists(src):
            fail(f"missing fixture {src} (regenerate with reference/make_fixtures.py)")
        out = os.path.join(a.work, f"{name}.photon")
        if not os.path.exists(os.path.join(out, "manifest.json")) or \
                os.path.getmtime(os.path.join(out, "manifest.json")) < os.path.getmtime(src):
            p = subprocess.run([a.compile, src, "-o", out, "-q"], capture_output=True, text=True)
            if p.returncode != 0:
                fail(f"photon-compile {src} failed (rc {p.returncode}):\n{p.stderr[-2000:]}")
        arts.append(out)
    js = os.path.join(a.work, "quick.json")
    cmd = [a.bench, "--suite", "quick", "--json", js]
    for x in arts:
        cmd += ["--model", x]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    print(p.stdout)
    if p.returncode not in (0, 1):
        fail(f"photon-bench exited {p.returncode}:\n{p.stderr[-2000:]}")
    try:
        with open(js) as f:
            d = json.load(f)
    except (OSError, ValueError) as e:
        fail(f"{js} is not valid JSON: {e}")
    for key in ("machine", "protocol", "models", "results", "ratios", "targets", "noise", "all_ok"):
        if key not in d:
            fail(f"{js}: missing top-level key {key!r}")
    if not d["all_ok"]:
        errs = [r.get("error") for r in d["results"] if r.get("error")]
        fail(f"some runs failed: {errs[:3]}")
    modes = {(r["mode"], r["setting"]) for r in d["results"]}
    for m in ("vanilla", "block", "hiergen", "recgen"):
        for s in ("PF", "DE"):
            if (m, s) not in modes:
                fail(f"no result for mode {m} setting {s}")
    for k in ("read_bw_gbs_1t", "peak_gflops_1t"):
        v = d["machine"][k]
        if not (isinstance(v, (int, float)) and v > 0):
            fail(f"machine.{k} = {v!r}: expected a positive number")
    if d.get("complete") is not True:
        fail(f"{js}: complete = {d.get('complete')!r} after a finished suite")
    sg = d.get("sgemm_reference", {})
    n = 0
    for path, v in walk_numbers(d["ratios"]):
        if ".prefill_over_sgemm." in path + "." and not sg.get("available"):
            continue  # no OpenBLAS on this machine: reported as such, not a ratio
        if v is None or not isinstance(v, (int, float)) or not math.isfinite(v):
            fail(f"ratio {path} = {v!r} is not finite")
        n += 1
    if n == 0:
        fail("no ratios in the JSON")
    for r in d["results"]:
        for k in ("tpm", "throughput_tps"):
            v = r[k]["median"] if isinstance(r[k], dict) else r[k]
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                fail(f"{r['model']}/{r['mode']}/{r['setting']}: {k} = {v!r}")
    # An interrupted suite keeps its finished runs: kill a run once its JSON holds a run.
    part = os.path.join(a.work, "partial.json")
    if os.path.exists(part):
        os.remove(part)
    proc = subprocess.Popen([a.bench, "--suite", "quick", "--json", part, "--no-sgemm", "--model", arts[0],
                             "--model", arts[-1]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed = None
    t0 = time.time()
    while proc.poll() is None and time.time() - t0 < 180:
        time.sleep(0.05)
        try:
            with open(part) as f:
                pd = json.load(f)
        except (OSError, ValueError):
            continue
        if sum(len(r["runs"]) for r in pd["results"]) >= 1:
            proc.send_signal(signal.SIGKILL)
            killed = pd
            break
    proc.wait()
    if killed is None:
        fail(f"{part}: no run recorded while the suite ran (is the JSON written incrementally?)")
    try:
        with open(part) as f:
            pd = json.load(f)
    except (OSError, ValueError) as e:
        fail(f"{part} is not valid JSON after the suite was killed: {e}")
    if pd.get("complete") is not False:
        fail(f"{part}: complete = {pd.get('complete')!r} for a killed suite")
    if not pd["results"] or not pd["results"][0]["runs"] or not pd["results"][0]["runs"][0]["ok"]:
        fail(f"{part}: the first finished run is missing")
    # --suite machine: the limits and the sgemm reference only, no runs.
    mj = os.path.join(a.work, "machine.json")
    p = subprocess.run([a.bench, "--suite", "machine", "--json", mj, "--bw-bytes", str(64 << 20),
                        "--model", arts[0]], capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        fail(f"photon-bench --suite machine exited {p.returncode}:\n{p.stderr[-2000:]}")
    with open(mj) as f:
        md = json.load(f)
    if md.get("results") or md.get("complete") is not True or md.get("suite") != "machine":
        fail(f"{mj}: expected a complete machine suite without runs, got suite "
             f"{md.get('suite')!r}, {len(md.get('results') or [])} results")
    for k in ("read_bw_gbs_1t", "read_bw_gbs_2t", "peak_gflops_1t", "peak_gflops_2t"):
        v = md["machine"][k]
        if not (isinstance(v, (int, float)) and v > 0):
            fail(f"{mj}: machine.{k} = {v!r}: expected a positive number")
    print(f"quick_test.py: OK ({len(d['results'])} results, {n} finite ratios; a killed suite kept "
          f"{sum(len(r['runs']) for r in pd['results'])} run(s))")


if __name__ == "__main__":
    main()
