#!/usr/bin/python3
"""Salvage: merge the vanilla/Block cells of a `photon-bench -v` log (a paper-suite run stopped
before it wrote its JSON) into another run's JSON, with the same formulas as photon-bench
(RSS slope over the batches, KV slope fallback, medians at the largest batch, TPM, ratios,
targets; vanilla roofline from its manifest cost model). Cells from the log carry
"from_log": true and no per-run rusage. Paths of the manifests are relative to the repository.

usage: /usr/bin/python3 benchmarks/merge_log.py LOG photon.json OUT.json (run from the repository root)
"""
import json, re, sys, math, statistics
log, pj, out = sys.argv[1], sys.argv[2], sys.argv[3]
d = json.load(open(pj))
pat = re.compile(r"^\s+(\S+)\s+(\S+)\s+P=(\d+)\s+G=(\d+)\s+B=(\d+)\s+ok\s+thr\s+([\d.]+) tok/s \(prefill\s+([\d.]+), decode\s+([\d.]+)\) peak\s+([\d.]+) MiB cache\s+([\d.]+) MiB other ([\d.]+) cores( NOISY)?")
runs = {}
for line in open(log):
    m = pat.match(line)
    if not m: continue
    model, mode = m.group(1), m.group(2)
    if mode not in ("vanilla", "block"): continue
    P, G, B = int(m.group(3)), int(m.group(4)), int(m.group(5))
    s = "PF" if P > G else "DE"
    runs.setdefault((model, mode, s, P, G), []).append(dict(batch=B, thr=float(m.group(6)), pre=float(m.group(7)), dec=float(m.group(8)), peak=float(m.group(9))*2**20, cache=float(m.group(10))*2**20, other=float(m.group(11)), noisy=bool(m.group(12))))
def summ(v):
    v = sorted(v)
    return dict(median=statistics.median(v), min=v[0], max=v[-1], n=len(v)) if v else dict(median=None, min=None, max=None, n=0)
def slope(pts):
    xs=[p[0] for p in pts]; ys=[p[1] for p in pts]
    mx=sum(xs)/len(xs); my=sum(ys)/len(ys)
    sxx=sum((x-mx)**2 for x in xs); sxy=sum((x-mx)*(y-my) for x,y in zip(xs,ys))
    return sxy/sxx, my - sxy/sxx*mx
new = []
nanroof = dict(decode_tps=None, prefill_tps=None, bytes_per_token=None, flops_per_token=None, bound="n/a (from log)")
for (model, mode, s, P, G), rs in runs.items():
    firsts = {}
    if len({r["batch"] for r in rs}) < 2: continue
    for r in rs: firsts.setdefault(r["batch"], r)
    pts = [(b, firsts[b]["peak"]) for b in sorted(firsts)]
    cpts = [(b, firsts[b]["cache"]) for b in sorted(firsts)]
    sl, ic = slope(pts); cs, _ = slope(cpts)
    src = "peak_rss"
    mem = sl
    if not (sl >= cs): mem, src = cs, "cache"
    tuned = max(firsts)
    rep = [r for r in rs if r["batch"] == tuned]
    b1 = [r for r in rs if r["batch"] == 1]
    thr = summ([r["thr"] for r in rep])
    new.append(dict(model=model, family=mode if mode != "block" else "block", mode=mode, setting=s, prompt=P, gen=G,
        memory=dict(per_sample_bytes=mem, intercept_bytes=ic, cache_per_sample_bytes=cs, rss_per_sample_bytes=sl, source=src,
                    points=[dict(batch=b, peak_rss_bytes=firsts[b]["peak"], cache_peak_bytes=firsts[b]["cache"]) for b in sorted(firsts)]),
        budget_batch=int(2*2**30/mem), tuned_batch=tuned, batch_capped=True,
        throughput_tps=thr, prefill_tps=summ([r["pre"] for r in rep]), decode_tps=summ([r["dec"] for r in rep]),
        wall_s=summ([]), batch1_decode_tps=summ([r["dec"] for r in b1]), batch1_throughput_tps=summ([r["thr"] for r in b1]),
        tpm=thr["median"]/(mem/2**30), tpm_cache_only=thr["median"]/(cs/2**30), threads_used=1,
        roofline=nanroof, roofline_batch1=nanroof, achieved_over_roofline_decode=None, achieved_over_roofline_decode_batch1=None,
        other_cpu_cores_max=max(r["other"] for r in rs), noisy=any(r["noisy"] for r in rs), runs=[], from_log=True))
d["results"] = new + d["results"]
cells = {(c["mode"], c["setting"]): c for c in d["results"]}
def div(a, b):
    try:
        return a / b if (a is not None and b) else None
    except TypeError:
        return None
for s in ("PF", "DE"):
    rs = d["ratios"].setdefault(s, {})
    for name, a, b in (("recgen_over_vanilla","recgen","vanilla"),("hiergen_over_vanilla","hiergen","vanilla"),("hiergen_over_block","hiergen","block"),("recgen_over_block","recgen","block"),("block_over_vanilla","block","vanilla")):
        A, B = cells.get((a, s)), cells.get((b, s))
        if not A or not B: continue
        rs[name] = dict(tpm=div(A["tpm"], B["tpm"]), throughput=div(A["throughput_tps"]["median"], B["throughput_tps"]["median"]),
                        per_sample_memory=div(A["memory"]["per_sample_bytes"], B["memory"]["per_sample_bytes"]),
                        decode_tps=div(A["decode_tps"]["median"], B["decode_tps"]["median"]),
                        batch1_decode_tps=div(A["batch1_decode_tps"]["median"], B["batch1_decode_tps"]["median"]))
# vanilla batch-1 roofline (bandwidth) from the cost model, 1 thread, mean context
mc = d["machine"]
man = json.load(open("build-bench/models/vanilla-mid.photon/manifest.json"))
W = man["cost_model"]["weight_bytes_per_token"]; F = man["cost_model"]["flops_per_token"]
for s in ("PF", "DE"):
    v = cells.get(("vanilla", s))
    if not v: continue
    T = v["prompt"] + v["gen"] / 2
    for key, B in (("roofline_batch1", 1), ("roofline", v["tuned_batch"])):
        bpt = W / B + 81920 * T
        tb, tf = bpt / (mc["read_bw_gbs_1t"] * 1e9), F / (mc["peak_gflops_1t"] * 1e9)
        v[key] = dict(decode_tps=1 / max(tb, tf), prefill_tps=mc["peak_gflops_1t"] * 1e9 / F, bytes_per_token=bpt, flops_per_token=F, bound="bandwidth" if tb >= tf else "compute")
    v["achieved_over_roofline_decode_batch1"] = v["batch1_decode_tps"]["median"] / v["roofline_batch1"]["decode_tps"]
    v["achieved_over_roofline_decode"] = v["decode_tps"]["median"] / v["roofline"]["decode_tps"]
v, rg = cells.get(("vanilla", "DE")), cells.get(("recgen", "DE"))
t = d["targets"]
if v and rg:
    x = div(rg["batch1_decode_tps"]["median"], v["batch1_decode_tps"]["median"])
    t["recgen_batch1_decode_speedup"] = dict(value=x, target=5.0, met=bool(x and x >= 5))
    x = v["achieved_over_roofline_decode_batch1"]
    t["vanilla_batch1_decode_over_bandwidth_roofline"] = dict(value=x, target=0.9, met=x >= 0.9)
    cm = json.load(open("build-bench/models/photon-mid.photon/manifest.json"))["cost_model"]
    memr = cm["cache_bytes_per_1k_tokens"]["recgen"] / man["cost_model"]["cache_bytes_per_1k_tokens"]["total"]
    thrr = div(rg["roofline"]["decode_tps"], v["roofline"]["decode_tps"])
    pred = div(thrr, memr); meas = div(rg["tpm"], v["tpm"])
    d["ratios"]["DE"]["cost_model_recgen_over_vanilla"] = dict(predicted_cache_ratio=memr, predicted_throughput_ratio=thrr, predicted_tpm_ratio=pred, measured_tpm_ratio=meas, measured_over_predicted=div(meas, pred))
    x = div(meas, pred)
    t["de_tpm_ratio_over_cost_model"] = dict(value=x, target=0.9, met=bool(x and x >= 0.9))
d["models"] = [dict(name=n, family=f, params_f32=json.load(open(f"build-bench/models/{n}.photon/manifest.json"))["weights"]["bytes"]/4, width=640, vocab=8192) for n, f in (("vanilla-mid","vanilla"),("block-mid","block"))] + d["models"]
nz = d["noise"]; extra = sum(len(r) for r in runs.values()); nz["runs"] += extra; nz["noisy_runs"] += sum(x["noisy"] for r in runs.values() for x in r)
nz["other_cpu_cores_max"] = max(nz["other_cpu_cores_max"], max(x["other"] for r in runs.values() for x in r))
json.dump(d, open(out, "w"), indent=1)
print("merged", len(new), "cells from the log")
