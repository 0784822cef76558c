#!/usr/bin/python3
"""Checks the committed side-by-side results against their own invariants (ctest
`bench-side-by-side-results`; no timing, no measurement):

- the markdown table regenerates byte for byte from the JSON (side_by_side.py --from-json), so
  the table in results/ and RESULTS.md is the measured one, not an edited one;
- no cell is above 1.0 of its roofline, for photon or llama.cpp (a cell above it means the
  roofline model is wrong, docs/benchmarks.md);
- every median lies inside its range, every ratio is photon's median over llama.cpp's, and each
  cell's bandwidth is the highest of the readings next to its runs.

usage: side_by_side_check.py [RESULT.json ...]   (default: benchmarks/results/side_by_side*.json)
"""
import glob
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def check(path):
    errs = []
    doc = json.load(open(path))
    md_path = os.path.splitext(path)[0] + ".md"
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "t.md")
        subprocess.run([sys.executable, os.path.join(HERE, "side_by_side.py"), "--from-json", path,
                        "--md", out, "--results", ""], check=True, capture_output=True)
        if os.path.exists(md_path) and open(out).read() != open(md_path).read():
            errs.append(f"{md_path} differs from what {os.path.basename(path)} regenerates")
    readings = doc.get("bw_readings") or []
    for cid, c in doc["cells"].items():
        for k in ("photon", "llama"):
            xs, m, r = c.get(k) or [], c.get(k + "_median"), c.get(k + "_range")
            if xs and not (r and r[0] <= m <= r[1]):
                errs.append(f"{cid}: {k} median {m} outside its range {r}")
            f = c.get(k + "_fraction_of_roofline")
            if f is not None and f > 1.0:
                errs.append(f"{cid}: {k} at {f:.3f} of its roofline (above 1.0: the roofline model is wrong)")
        if c.get("photon_median") and c.get("llama_median"):
            want = c["photon_median"] / c["llama_median"]
            if abs(c.get("ratio", 0) - want) > 1e-9 * want:
                errs.append(f"{cid}: ratio {c.get('ratio')} is not photon / llama.cpp = {want}")
        if readings and c.get("bw_readings"):
            key = "2t" if c["threads"] >= 2 else "1t"
            want = max(readings[i][key] for i in c["bw_readings"])
            if abs(c.get("bw_gbs", 0) - want) > 1e-9:
                errs.append(f"{cid}: bandwidth {c.get('bw_gbs')} is not the highest reading next to it ({want})")
    return errs


def main():
    paths = sys.argv[1:] or sorted(glob.glob(os.path.join(HERE, "results", "side_by_side*.json")))
    if not paths:
        sys.exit("side_by_side_check.py: no results to check")
    bad = 0
    for p in paths:
        errs = check(p)
        for e in errs:
            print(f"{os.path.basename(p)}: {e}")
        bad += len(errs)
        print(f"{os.path.basename(p)}: {'ok' if not errs else str(len(errs)) + ' problem(s)'}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
