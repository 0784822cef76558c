#!/usr/bin/python3
"""Run the peers of photon-bench on the vanilla model (same weights) and write peers.json.

usage: /usr/bin/python3 benchmarks/peers/run_peers.py --model DIR --out peers.json
           [--peers torch,ort,llama] [--threads 1] [--settings PF,DE] [--scale 1.0]
           [--lengths PF=2048/128,DE=128/2048] [--llama-bin DIR] [--llama-batches 1,4]

DIR is the vanilla model directory of benchmarks/models/export_mid.py, after
benchmarks/peers/export_peers.py wrote step.onnx and model-f32/f16.gguf into it.
Peers: the PyTorch reference (torch_peer.py), ONNX Runtime (ort_peer.js, npm
onnxruntime-node installed with --ignore-scripts into .deps/npm) and llama.cpp
(llama-bench and llama-batched-bench from benchmarks/peers/build_llama_cpp.sh).
Each configuration runs in its own process; the CPU time other processes used meanwhile is
read from /proc/stat (busy ticks minus the child's own CPU time) and recorded.
--scale shrinks the PF/DE lengths (a smoke test); the paper's numbers need --scale 1.
--lengths sets them exactly (photon-bench --peers passes its own). The JSON file is rewritten
after every configuration ("complete": false until the end), so an interrupted run keeps
what it measured.
"""
import math
import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
PY = "/usr/bin/python3"
TICK = os.sysconf("SC_CLK_TCK")


def proc_stat():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    busy = v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)
    return busy, time.time()


def run(cmd, env=None, timeout=1800):
    """Run cmd; return (stdout, stderr, rc, noise dict)."""
    b0, t0 = proc_stat()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
        out, err, rc = p.stdout, p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        out, err, rc = e.stdout or "", f"timed out after {timeout} s", -9
    b1, t1 = proc_stat()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    wall = t1 - t0
    other = max(0.0, (b1 - b0) / TICK - own) / wall if wall > 0 else 0.0
    return out, err, rc, {"wall_s": wall, "own_cpu_s": own, "other_cpu_cores": other}


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def clean(x):
    """NaN/inf -> None (strict JSON for photon-bench's reader)."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: clean(v) for k, v in x.items()}
    if isinstance(x, list):
        return [clean(v) for v in x]
    return x


def last_json(out):
    for line in reversed(out.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    return None


def parse_batched_bench(text):
    """Rows of llama-batched-bench's markdown table."""
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 10 and re.fullmatch(r"\d+", cells[0] or "x"):
            pp, tg, b, nkv = (int(c) for c in cells[:4])
            t_pp, s_pp, t_tg, s_tg, t, s = (float(c) for c in cells[4:10])
            rows.append(dict(prompt=pp, gen=tg, batch=b, n_kv=nkv, prefill_s=t_pp, prefill_tps=s_pp,
                             decode_s=t_tg, decode_tps=s_tg, total_s=t, total_tps=s,
                             throughput_tps=b * tg / t if t > 0 else 0.0))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--peers", default="torch,ort,llama")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--settings", default="PF,DE")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--lengths", default="", help="exact lengths, e.g. PF=2048/128,DE=128/2048")
    ap.add_argument("--llama-bin", default=os.path.join(ROOT, ".deps", "llama", "llama.cpp", "build", "bin"))
    ap.add_argument("--llama-batches", default="1,4")
    ap.add_argument("--llama-types", default="f32,f16")
    ap.add_argument("--ort", default=os.path.join(ROOT, ".deps", "npm", "node_modules", "onnxruntime-node"))
    ap.add_argument("--timeout", type=float, default=1800)
    args = ap.parse_args()
    settings = {"PF": (2048, 128), "DE": (128, 2048)}
    chosen = [s for s in args.settings.split(",") if s]
    for s in chosen:
        if s not in settings:
            raise SystemExit(f"run_peers.py: unknown setting {s!r} (PF or DE)")
    scaled = {s: (max(1, int(settings[s][0] * args.scale)), max(2, int(settings[s][1] * args.scale))) for s in chosen}
    for item in [x for x in args.lengths.split(",") if x]:
        m = re.fullmatch(r"(PF|DE)=(\d+)/(\d+)", item)
        if not m or int(m.group(2)) < 1 or int(m.group(3)) < 2:
            raise SystemExit(f"run_peers.py: --lengths: bad item {item!r} (PF=P/G or DE=P/G, G >= 2)")
        scaled[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    peers = [p for p in args.peers.split(",") if p]
    T = str(args.threads)
    env = dict(os.environ, OPENBLAS_NUM_THREADS=T, OMP_NUM_THREADS=T)
    res = {"threads": args.threads, "scale": args.scale, "model": os.path.abspath(args.model), "runs": [],
           "errors": [], "complete": False,
           "lengths": {s: {"prompt": scaled[s][0], "gen": scaled[s][1]} for s in chosen},
           "loadavg_start": loadavg()}

    def save(complete=False):
        res["complete"] = complete
        res["loadavg_now"] = loadavg()
        tmp = args.out + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(clean(res), fh, indent=1, allow_nan=False)
        os.replace(tmp, args.out)

    def record(peer, setting, kind, data, noise, extra=None):
        d = dict(peer=peer, setting=setting, kind=kind, **noise)
        d.update(data)
        if extra:
            d.update(extra)
        res["runs"].append(d)
        print(f"{peer:12s} {setting} {kind:10s} B={d.get('batch', 1)} prefill {d.get('prefill_tps') or 0:9.1f} tok/s "
              f"decode {d.get('decode_tps') or 0:8.1f} tok/s other {noise['other_cpu_cores']:.2f} cores", flush=True)
        save()

    for s in chosen:
        P, G = scaled[s]
        if "torch" in peers:
            cmd = [PY, os.path.join(HERE, "torch_peer.py"), "--model", args.model, "--prompt", str(P),
                   "--gen", str(G), "--threads", T]
            out, err, rc, noise = run(cmd, env, args.timeout)
            d = last_json(out) if rc == 0 else None
            if d: record("pytorch", s, "generate", d, noise)
            else: res["errors"].append(f"pytorch {s}: rc {rc}: {err.strip()[-400:]}")
        if "ort" in peers:
            cmd = ["node", os.path.join(HERE, "ort_peer.js"), "--model", os.path.join(args.model, "step.onnx"),
                   "--prompt", str(P), "--gen", str(G), "--threads", T, "--ort", args.ort]
            out, err, rc, noise = run(cmd, env, args.timeout)
            d = last_json(out) if rc == 0 else None
            if d: record("onnxruntime", s, "generate", d, noise)
            else: res["errors"].append(f"onnxruntime {s}: rc {rc}: {err.strip()[-400:]}")
        if "llama" in peers:
            bb = os.path.join(args.llama_bin, "llama-batched-bench")
            lb = os.path.join(args.llama_bin, "llama-bench")
            for ty in [t for t in args.llama_types.split(",") if t]:
                gg = os.path.join(args.model, f"model-{ty}.gguf")
                if not os.path.exists(bb) or not os.path.exists(gg):
                    res["errors"].append(f"llama.cpp {ty} {s}: missing {bb if not os.path.exists(bb) else gg}")
                    continue
                nb = [int(x) for x in args.llama_batches.split(",") if x]
                ctx = max(nb) * (P + G) + 64
                cmd = [bb, "-m", gg, "-c", str(ctx), "-b", "2048", "-ub", "512", "-npp", str(P), "-ntg", str(G),
                       "-npl", ",".join(map(str, nb)), "-t", T, "-tb", T]
                out, err, rc, noise = run(cmd, env, args.timeout)
                rows = parse_batched_bench(out) if rc == 0 else []
                if len(rows) < len(nb):
                    res["errors"].append(f"llama-batched-bench {ty} {s}: rc {rc}, {len(rows)} of {len(nb)} rows: "
                                         f"{(out + err).strip()[-600:]}")
                for r in rows:
                    record(f"llama.cpp-{ty}", s, "batched", r, noise)
                if s == "PF" and os.path.exists(lb):
                    cmd = [lb, "-m", gg, "-p", str(P), "-n", str(G), "-t", T, "-r", "2", "-o", "json"]
                    out, err, rc, noise = run(cmd, env, args.timeout)
                    try:
                        js = json.loads(out)
                        for e in js:
                            kind = "pp" if e.get("n_prompt", 0) > 0 else "tg"
                            d = dict(batch=1, prompt=e.get("n_prompt", 0), gen=e.get("n_gen", 0),
                                     avg_tps=e.get("avg_ts"), stddev_tps=e.get("stddev_ts"),
                                     build=e.get("build_commit"))
                            if kind == "pp": d["prefill_tps"] = e.get("avg_ts")
                            else: d["decode_tps"] = e.get("avg_ts")
                            record(f"llama.cpp-{ty}", s, f"bench-{kind}", d, noise)
                    except (ValueError, TypeError) as e:
                        res["errors"].append(f"llama-bench {ty}: rc {rc}: {e}: {err.strip()[-300:]}")
    save(complete=True)
    for e in res["errors"]:
        print("error:", e, file=sys.stderr)
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
