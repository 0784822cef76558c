#!/usr/bin/python3
"""photon against llama.cpp on the same weights, cell by cell, in one sitting.

usage: /usr/bin/python3 benchmarks/side_by_side.py [--build build] [--models build/bench]
           [--llama-bin .deps/llama/llama.cpp/build/bin] [--rounds 3] [--formats f32,f16,q8,q4]
           [--cells tg,tg2048,pp,batched,recgen] [--out benchmarks/results/side_by_side.json]
           [--md benchmarks/results/side_by_side.md] [--gen 128] [--kv f16|f32]

Models: benchmarks/models/export_mid.py writes DIR/vanilla-mid and DIR/photon-mid (random
weights, fixed seed); benchmarks/peers/export_peers.py writes the vanilla model's f32/f16 GGUF
(LLaMA architecture, the same weights); llama-quantize makes q8_0 and q4_0 from the f32 GGUF.
This script compiles the photon artifacts it needs (--openmp, one per weight format: f32, f16,
q8 = llama.cpp's q8_0 values, q4 = q4_0's) and makes the GGUF files that are missing. The
photon artifacts keep their KV caches in --kv (default f16: llama.cpp's default K and V cache
type, which llama-bench and llama-batched-bench use here), so both programs read the same
cache bytes per token.

Cells (batch 1 unless said; threads = compute threads of both programs):
  tg       decode of --gen tokens after a 16-token prompt, 1 and 2 threads, every format
  tg2048   decode of --gen tokens at a 2,048-token context, 1 and 2 threads, every format
  pp       prefill of a 512- and a 2,048-token prompt, 2 threads, every format
  batched  B = 16 and 64 sequences, 128 prompt + 128 generated each, 2 threads, f32 and q8
  recgen   PHOTON RecGen (photon-mid), B = 1 and 64, 2 threads, f32 and q8 (photon only)

photon: photon-run --json (its prefill and decode tokens/s). llama.cpp: llama-bench (tg, tg at
depth 2,048, pp) and llama-batched-bench (S_TG of the batched cells), unmodified.
Rounds are interleaved (every cell of round 1, then round 2, ...); each cell reports the median
and the range over rounds. The machine's peak FP32 FLOP/s and OpenBLAS sgemm reference are measured
once at the start (photon-bench --suite machine); its read bandwidth is measured again before
every cell of every round and after the last (photon-bench --suite machine --no-sgemm), because
a VM's bandwidth moves within minutes. Each decode cell's roofline is
tok/s <= bandwidth / (weight bytes read per token / batch + KV bytes read per token), with the
highest bandwidth read next to any of that cell's runs (so a fraction of roofline is a lower
bound, never inflated by a slow reading).
The load average before and after is recorded; the machine is shared, so run it quiet.
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import results_md  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LLAMA_TYPE = {"f32": "f32", "f16": "f16", "q8": "q8_0", "q4": "q4_0"}


def log(msg):
    print(f"[side-by-side {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def run(cmd, timeout=1800, env=None):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stderr[-3000:]}")
    return p.stdout


def newer(a, b):
    return os.path.exists(a) and os.path.getmtime(a) >= os.path.getmtime(b)


def compile_artifact(a, src, out, fmt):
    man = os.path.join(out, "manifest.json")
    comp = os.path.join(a.build, "bin", "photon-compile")
    if newer(man, src) and newer(man, comp):
        return out
    log(f"compiling {out} (--weights {fmt} --kv {a.kv}{', --cpu ' + a.cpu if a.cpu else ''})")
    cmd = ["nice", "-n", "10", comp, src, "--openmp", "--weights", fmt, "--kv", a.kv, "-o", out, "-q"]
    if a.cpu:
        cmd += ["--cpu", a.cpu]
    run(cmd, timeout=3600)
    return out


def ensure_gguf(a, vdir, fmt):
    path = os.path.join(vdir, f"model-{LLAMA_TYPE[fmt]}.gguf")
    if os.path.exists(path):
        return path
    f32 = os.path.join(vdir, "model-f32.gguf")
    if fmt in ("f32", "f16") or not os.path.exists(f32):
        log("exporting GGUF f32/f16 (benchmarks/peers/export_peers.py)")
        run([sys.executable, os.path.join(ROOT, "benchmarks", "peers", "export_peers.py"), "--model", vdir,
             "--what", "gguf", "--gguf-py", os.path.join(os.path.dirname(os.path.dirname(a.llama_bin)), "gguf-py")])
    if fmt in ("q8", "q4"):
        log(f"llama-quantize {LLAMA_TYPE[fmt]}")
        # --pure: every tensor in the one type, as photon --weights does (no q6_K LM head)
        run([os.path.join(a.llama_bin, "llama-quantize"), "--pure", f32, path, LLAMA_TYPE[fmt].upper()])
    return path


def prompt_text(n, seed):
    # Byte-level tokenizer: one token per byte. Lower-case words, fixed seed.
    r = random.Random(seed)
    out = []
    while sum(len(w) + 1 for w in out) < n:
        out.append("".join(r.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(r.randint(2, 8))))
    return " ".join(out)[:n]


def photon_run(a, art, prompt_len, gen, batch, threads, mode=None):
    rb = os.path.join(a.build, "bin", "photon-run")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        for i in range(batch):
            f.write(prompt_text(prompt_len, 1000 + i) + "\n")
        pf = f.name
    cmd = [rb, art, "--prompts-file", pf, "--max-tokens", str(gen), "--ignore-eos", "--json", "--quiet",
           "--threads", str(threads), "--max-batch", str(max(batch, 1))]
    if mode:
        cmd += ["--mode", mode]
    try:
        d = json.loads(run(cmd))
    finally:
        os.unlink(pf)
    s = d["stats"]
    return {"prefill_tps": s["prefill_tokens_per_s"], "decode_tps": s["decode_tokens_per_s"],
            "prefill_tokens": s["prefill_tokens"], "decode_tokens": s["decode_tokens"],
            "threads": s.get("compute_threads"), "weights_bytes": s.get("weights_bytes"),
            "cache_peak_bytes": s.get("cache_peak_total_bytes")}


def llama_bench(a, gguf, threads, p=0, n=0, d=0):
    out = run([os.path.join(a.llama_bin, "llama-bench"), "-m", gguf, "-t", str(threads), "-p", str(p),
               "-n", str(n), "-d", str(d), "-r", "1", "-o", "json"])
    rows = json.loads(out)
    return rows[0]["avg_ts"]


def llama_batched(a, gguf, threads, npl, pp=128, tg=128):
    out = run([os.path.join(a.llama_bin, "llama-batched-bench"), "-m", gguf, "-t", str(threads), "-tb",
               str(threads), "-c", str((pp + tg) * npl + 64), "-b", "2048", "-ub", "512", "-npp", str(pp),
               "-ntg", str(tg), "-npl", str(npl), "--output-format", "jsonl"])
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("{") and '"speed_tg"' in line:
            return json.loads(line)["speed_tg"]
    raise RuntimeError("llama-batched-bench printed no jsonl row:\n" + out[-2000:])


def machine_limits(a, art, sgemm):
    """photon-bench --suite machine on ART: read bandwidth (1 and 2 threads), peak FP32 FLOP/s,
    and with SGEMM the OpenBLAS reference on the model's shapes."""
    mj = os.path.join(tempfile.gettempdir(), f"side_by_side_machine_{os.getpid()}.json")
    cmd = [os.path.join(a.build, "bin", "photon-bench"), "--suite", "machine", "--model", art, "--json", mj]
    if not sgemm:
        cmd += ["--no-sgemm", "--bw-bytes", str(256 << 20)]
    run(cmd)
    d = json.load(open(mj))
    os.unlink(mj)
    return d


def bw_reading(a, art):
    mc = machine_limits(a, art, sgemm=False)["machine"]
    return {"t": time.time(), "1t": mc["read_bw_gbs_1t"], "2t": mc["read_bw_gbs_2t"], "load": loadavg()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--models", default=None, help="export_mid.py's output (default BUILD/bench)")
    ap.add_argument("--llama-bin", default=os.path.join(ROOT, ".deps", "llama", "llama.cpp", "build", "bin"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--formats", default="f32,f16,q8,q4")
    ap.add_argument("--cells", default="tg,tg2048,pp,batched,recgen")
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--kv", default="f16", choices=["f16", "f32"],
                    help="photon-compile --kv of every artifact (default f16, llama.cpp's default cache type)")
    ap.add_argument("--batches", default="16,64")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "side_by_side.json"))
    ap.add_argument("--md", default=os.path.join(ROOT, "benchmarks", "results", "side_by_side.md"))
    ap.add_argument("--results", default=os.path.join(ROOT, "benchmarks", "RESULTS.md"),
                    help="RESULTS.md to put the table into (between the side-by-side markers; '' = none)")
    ap.add_argument("--no-llama", action="store_true", help="photon's cells only")
    ap.add_argument("--from-json", default="", help="no measurement: rewrite --md and the RESULTS.md "
                    "section from this JSON of an earlier sitting")
    ap.add_argument("--cpu", default="", help="photon-compile --cpu (e.g. znver3: the AVX2-only code path "
                    "on this machine; default the host)")
    a = ap.parse_args()
    if a.from_json:
        md = to_markdown(json.load(open(a.from_json)))
        with open(a.md, "w") as f:
            f.write(md)
        if a.results:
            results_md.put(a.results, results_md.marked("side-by-side",
                        "## photon against llama.cpp, cell by cell (`benchmarks/side_by_side.py`)\n\n" + md))
        print(md)
        return
    a.models = a.models or os.path.join(a.build, "bench")
    formats = [f for f in a.formats.split(",") if f]
    cells = set(c for c in a.cells.split(",") if c)
    batches = [int(b) for b in a.batches.split(",") if b]
    for f in formats:
        if f not in LLAMA_TYPE:
            sys.exit(f"side_by_side.py: --formats: unknown format {f!r} (f32, f16, q8, q4)")
    vdir = os.path.join(a.models, "vanilla-mid")
    pdir = os.path.join(a.models, "photon-mid")
    if not os.path.exists(os.path.join(vdir, "model.onnx")):
        sys.exit(f"side_by_side.py: {vdir}/model.onnx is missing: run "
                 f"benchmarks/models/export_mid.py --out {a.models} --only vanilla-mid --only photon-mid")
    use_llama = not a.no_llama
    if use_llama and not os.path.exists(os.path.join(a.llama_bin, "llama-bench")):
        sys.exit(f"side_by_side.py: no llama-bench in {a.llama_bin}: run benchmarks/peers/build_llama_cpp.sh "
                 "(or pass --no-llama)")

    sfx = (f"-{a.cpu}" if a.cpu else "") + ("-kvf16" if a.kv == "f16" else "")
    van = {f: compile_artifact(a, os.path.join(vdir, "model.onnx"), os.path.join(a.models, f"vanilla-mid-{f}{sfx}.photon"), f)
           for f in formats}
    pho = {}
    if "recgen" in cells and os.path.exists(os.path.join(pdir, "model.onnx")):
        for f in [x for x in formats if x in ("f32", "q8")]:
            pho[f] = compile_artifact(a, os.path.join(pdir, "model.onnx"), os.path.join(a.models, f"photon-mid-{f}{sfx}.photon"), f)
    gguf = {f: ensure_gguf(a, vdir, f) for f in formats} if use_llama else {}

    # Weight bytes read per decoded token: the f32 cost model's figure less what the format saved
    # in the blob (every converted tensor is a matmul weight, read once per step).
    man = {f: json.load(open(os.path.join(van[f], "manifest.json"))) for f in formats}
    base = man.get("f32") or man[formats[0]]
    wbpt32 = base["cost_model"]["weight_bytes_per_token"]
    blob32 = os.path.getsize(os.path.join(van[formats[0]], "weights.bin")) if "f32" not in van else \
        os.path.getsize(os.path.join(van["f32"], "weights.bin"))
    wbpt = {f: wbpt32 - (blob32 - os.path.getsize(os.path.join(van[f], "weights.bin"))) for f in formats}
    # KV bytes read per token and cached token, from the artifacts' own cost model (--kv f16: half of f32's)
    kv_per_token = base["cost_model"]["cache_bytes_per_1k_tokens"]["total"] / 1000.0

    log(f"machine limits (photon-bench --suite machine); load {loadavg()}")
    machine = machine_limits(a, van[formats[0]], sgemm=True)

    plan = []  # (cell id, dict(description), photon thunk, llama thunk)
    g = a.gen
    for f in formats:
        for t in (1, 2):
            if "tg" in cells:
                plan.append((f"tg/{f}/t{t}", dict(cell="tg", fmt=f, threads=t, ctx=16, batch=1),
                             lambda f=f, t=t: photon_run(a, van[f], 16, g, 1, t)["decode_tps"],
                             (lambda f=f, t=t: llama_bench(a, gguf[f], t, n=g)) if use_llama else None))
            if "tg2048" in cells:
                plan.append((f"tg2048/{f}/t{t}", dict(cell="tg2048", fmt=f, threads=t, ctx=2048, batch=1),
                             lambda f=f, t=t: photon_run(a, van[f], 2048, g, 1, t)["decode_tps"],
                             (lambda f=f, t=t: llama_bench(a, gguf[f], t, n=g, d=2048)) if use_llama else None))
        if "pp" in cells:
            for n in (512, 2048):
                plan.append((f"pp{n}/{f}/t2", dict(cell=f"pp{n}", fmt=f, threads=2, ctx=n, batch=1),
                             lambda f=f, n=n: photon_run(a, van[f], n, 1, 1, 2)["prefill_tps"],
                             (lambda f=f, n=n: llama_bench(a, gguf[f], 2, p=n)) if use_llama else None))
        if "batched" in cells and f in ("f32", "q8"):
            for b in batches:
                plan.append((f"batched{b}/{f}/t2", dict(cell=f"batched{b}", fmt=f, threads=2, ctx=128, batch=b),
                             lambda f=f, b=b: photon_run(a, van[f], 128, 128, b, 2)["decode_tps"],
                             (lambda f=f, b=b: llama_batched(a, gguf[f], 2, b)) if use_llama else None))
    for f, art in pho.items():
        for b in (1, 64):
            plan.append((f"recgen{b}/{f}/t2", dict(cell=f"recgen_b{b}", fmt=f, threads=2, ctx=128, batch=b,
                                                    model="photon-mid"),
                         lambda art=art, b=b: photon_run(a, art, 128, 128, b, 2, mode="recgen")["decode_tps"], None))

    results = {cid: dict(desc, photon=[], llama=[], bw_readings=[]) for cid, desc, _, _ in plan}
    readings = []  # every bandwidth reading of the sitting, in order
    la0 = loadavg()
    t0 = time.time()
    for r in range(a.rounds):
        for cid, desc, ph, ll in plan:
            readings.append(bw_reading(a, van[formats[0]]))
            if len(readings) > 1:
                results[prev]["bw_readings"].append(len(readings) - 1)
            results[cid]["bw_readings"].append(len(readings) - 1)
            prev = cid
            try:
                v = ph()
                results[cid]["photon"].append(v)
            except Exception as e:  # recorded, the sitting goes on
                results[cid].setdefault("errors", []).append(f"photon: {e}"[:500])
                v = None
            w = None
            if ll is not None:
                try:
                    w = ll()
                    results[cid]["llama"].append(w)
                except Exception as e:
                    results[cid].setdefault("errors", []).append(f"llama.cpp: {e}"[:500])
            log(f"round {r + 1}/{a.rounds} {cid}: photon {v if v is None else round(v, 1)} tok/s, "
                f"llama.cpp {w if w is None else round(w, 1)} tok/s")
    readings.append(bw_reading(a, van[formats[0]]))
    results[prev]["bw_readings"].append(len(readings) - 1)
    la1 = loadavg()

    mc = machine["machine"]
    for cid, c in results.items():
        for k in ("photon", "llama"):
            xs = c[k]
            c[k + "_median"] = statistics.median(xs) if xs else None
            c[k + "_range"] = [min(xs), max(xs)] if xs else None
        if c["photon_median"] and c["llama_median"]:
            c["ratio"] = c["photon_median"] / c["llama_median"]
        key = "2t" if c["threads"] >= 2 else "1t"
        c["bw_gbs"] = max(readings[i][key] for i in c["bw_readings"])
        bw = c["bw_gbs"] * 1e9
        # Matmul FLOPs per token from the cost model (prefill: its prefill figure); with the peak
        # FP32 FLOP/s of the cell's threads they bound every cell from the compute side.
        peak = (mc["peak_gflops_2t"] if c["threads"] >= 2 else mc["peak_gflops_1t"]) * 1e9
        is_pp = c["cell"].startswith("pp")
        fpt = base["cost_model"]["prefill_flops_per_token" if is_pp else "flops_per_token"]
        if c["photon_median"] and c.get("model") != "photon-mid":
            c["photon_gflops"] = c["photon_median"] * fpt / 1e9
            c["photon_fraction_of_peak"] = c["photon_median"] * fpt / peak
        if c["cell"] in ("tg", "tg2048") or c["cell"].startswith("batched"):
            ctx = c["ctx"] + a.gen / 2
            bpt = wbpt[c["fmt"]] / c["batch"] + kv_per_token * ctx
            c["roofline_tps"] = min(bw / bpt, peak / fpt)
            c["roofline_bound"] = "bandwidth" if bw / bpt <= peak / fpt else "compute"
            if c["photon_median"]:
                c["photon_fraction_of_roofline"] = c["photon_median"] / c["roofline_tps"]
            if c["llama_median"]:
                c["llama_fraction_of_roofline"] = c["llama_median"] / c["roofline_tps"]

    cpu = ""
    try:
        cpu = run(["sh", "-c", "lscpu | sed -n 's/^Model name:[ ]*//p'"]).strip()
    except Exception:
        pass
    doc = {"tool": "benchmarks/side_by_side.py", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "cpu": cpu, "cpus": os.cpu_count(), "machine": mc, "sgemm_reference": machine.get("sgemm_reference"),
           "rounds": a.rounds, "gen": a.gen, "loadavg_start": la0, "loadavg_end": la1,
           "wall_seconds": time.time() - t0, "photon_cpu": a.cpu or "host", "weight_bytes_per_token": wbpt,
           "kv_bytes_per_token": kv_per_token, "kv": a.kv,
           "bw_readings": readings, "llama_cpp": {"bin": "llama-bench / llama-batched-bench",
                                                          "types": {f: LLAMA_TYPE[f] for f in formats}},
           "cells": results}
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out + ".tmp", "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(a.out + ".tmp", a.out)
    md = to_markdown(doc)
    with open(a.md, "w") as f:
        f.write(md)
    if a.results:
        results_md.put(a.results, results_md.marked("side-by-side", "## photon against llama.cpp, cell by cell (`benchmarks/side_by_side.py`)\n\n" + md))
    print(md)



def fmt_cell(c, k):
    m, r = c.get(k + "_median"), c.get(k + "_range")
    if m is None:
        return "-"
    return f"{m:.1f} ({r[0]:.1f}-{r[1]:.1f})" if r and r[1] - r[0] > 0.05 * m else f"{m:.1f}"


def to_markdown(doc):
    mc = doc["machine"]
    rd = doc.get("bw_readings")
    if rd:
        bw = (f"read bandwidth measured before every cell and after the last ({len(rd)} readings: "
              f"{min(x['1t'] for x in rd):.1f}-{max(x['1t'] for x in rd):.1f} GB/s on 1 thread, "
              f"{min(x['2t'] for x in rd):.1f}-{max(x['2t'] for x in rd):.1f} on 2; each cell's roofline uses the "
              f"highest reading next to its runs, column bw)")
    else:
        bw = f"read bandwidth {mc['read_bw_gbs_1t']:.1f} / {mc['read_bw_gbs_2t']:.1f} GB/s (1 / 2 threads)"
    kv = doc.get("kv", "f32")
    L = [f"Measured {doc['date']} by `benchmarks/side_by_side.py` on {doc['cpu']} ({doc['cpus']} CPUs): "
         f"{bw}, peak FP32 {mc['peak_gflops_1t']:.0f} / {mc['peak_gflops_2t']:.0f} GFLOP/s, measured in the same sitting; "
         f"{doc['rounds']} interleaved rounds, median (range); load average {doc['loadavg_start']} at the start, "
         f"{doc['loadavg_end']} at the end. vanilla-mid (89.8 M parameters) for both programs, the same weights; "
         f"photon q8/q4 = llama.cpp q8_0/q4_0 values; "
         + ("KV caches in f16 in both programs" if kv == "f16" else "photon's KV caches in f32, llama.cpp's in f16")]
    L[0] += (f"; photon compiled for --cpu {doc.get('photon_cpu', 'host')}. tok/s; roofline = bandwidth / "
             f"(weight bytes per token / batch + KV bytes per token), or peak FP32 FLOP/s / matmul FLOPs per token where "
             f"that is lower (batched cells: compute-bound, marked c); GFLOP/s = photon's tok/s x the cost model's "
             f"matmul FLOPs per token (prefill: its prefill FLOPs), with the fraction of the cell's peak.")
    L += ["",
         "| cell | format | threads | photon tok/s | llama.cpp tok/s | photon / llama.cpp | photon / roofline | llama.cpp / roofline | bw GB/s | photon GFLOP/s (of peak) |",
         "|---|---|---|---|---|---|---|---|---|---|"]
    for cid, c in doc["cells"].items():
        ratio = f"{c['ratio']:.2f}" if c.get("ratio") else "-"
        cb = " c" if c.get("roofline_bound") == "compute" else ""
        pr = f"{c['photon_fraction_of_roofline']:.2f}{cb}" if c.get("photon_fraction_of_roofline") else "-"
        lr = f"{c['llama_fraction_of_roofline']:.2f}{cb}" if c.get("llama_fraction_of_roofline") else "-"
        gf = (f"{c['photon_gflops']:.0f} ({c['photon_fraction_of_peak']:.2f})" if c.get("photon_gflops") else "-")
        name = c["cell"] + (" (photon-mid RecGen)" if c.get("model") == "photon-mid" else "")
        L.append(f"| {name} | {c['fmt']} | {c['threads']} | {fmt_cell(c, 'photon')} | {fmt_cell(c, 'llama')} | "
                 f"{ratio} | {pr} | {lr} | " + (f"{c['bw_gbs']:.1f}" if c.get("bw_gbs") else "-") + f" | {gf} |")
    errs = [(cid, e) for cid, c in doc["cells"].items() for e in c.get("errors", [])]
    if errs:
        L += ["", "Errors:"] + [f"- {cid}: {e.splitlines()[0]}" for cid, e in errs[:20]]
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    main()
