#!/usr/bin/python3
"""Serving benchmark: photon-serve over loopback at several concurrencies, in bounded time.

For each artifact (by default the bundled trained models reference/models/small-photon under
RecGen and HierGen and reference/models/small-vanilla, the same size, compiled here with
photon-compile) it starts photon-serve on a free port, then for each concurrency C runs C
client threads that send streaming /v1/completions requests back to back until R requests
are done or the level's share of the time budget is spent (requests in flight then finish;
no new ones start). Per request: the time to first token (TTFT: request sent -> first text
event) and the inter-token latencies (ITL: the gap before each later text event spread over
the tokens it carried; an event carries several tokens when the engine made them in one step,
PHOTON a meta-context; tokens per event = its bytes x the request's tokens / its bytes). Over
the level: output tokens/s and requests/s (wall clock of the level). Memory per sequence:
/metrics is sampled every 20 ms and at each request's first text; the KV cache bytes in use over the running sequences (largest
ratio seen), and the server's resident memory above its idle level at the peak over the
largest number of running sequences.

Results: JSON (with the CPU, the load before and after, the commit and the settings) to
benchmarks/results/serve/serve.json, a Markdown section to benchmarks/results/serve/serve.md
that is also put into benchmarks/RESULTS.md (between the serve markers; report.py keeps it
when it rewrites RESULTS.md), a plot of output tokens/s against concurrency to
benchmarks/plots/serve_throughput.png. Standard library only, plus matplotlib for the plot.

The client threads run on the same machine as the server: on 2 cores they take CPU from it,
and more so at concurrency 64. Run on a quiet machine (the load is recorded): the numbers are
wall-clock.

  /usr/bin/python3 benchmarks/serve_bench.py                        # the full run (~7 min)
  /usr/bin/python3 benchmarks/serve_bench.py --concurrency 1,4 --requests 8 --max-tokens 32 \\
      --time-budget 60 --out-dir /tmp/serve-check                   # a short check
  /usr/bin/python3 benchmarks/serve_bench.py ART.photon:recgen ART.photon:hiergen ...
"""
import argparse
import datetime
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import results_md  # noqa: E402

BEGIN, END = "<!-- serve-bench:begin -->", "<!-- serve-bench:end -->"
PROMPTS = [
    "Once upon a time there was a little girl who lived in a village near the forest.",
    "The old man looked at the sea and said",
    "In the morning the children went to school, and",
    "She opened the door and saw",
]


def percentile(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * (len(xs) - 1)))))
    return xs[k]


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def cpu_name():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        m = re.search(r"Model name:\s*(.+)", out)
        return (m.group(1).strip() if m else "unknown") + ", %d CPUs" % os.cpu_count()
    except OSError:
        return "unknown, %d CPUs" % os.cpu_count()


def git_commit():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def rss_bytes(pid):
    try:
        with open("/proc/%d/statm" % pid) as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def compile_bundled(compiler, out_dir):
    """reference/models/small-{photon,vanilla} -> OUT_DIR/small-*.photon (when older than the
    ONNX file or the compiler)."""
    arts = {}
    os.makedirs(out_dir, exist_ok=True)
    for m in ("photon", "vanilla"):
        src = os.path.join(ROOT, "reference", "models", "small-" + m)
        art = os.path.join(out_dir, "small-%s.photon" % m)
        onnx = os.path.join(src, "model.onnx")
        newest = max(os.path.getmtime(onnx), os.path.getmtime(compiler))
        if not os.path.exists(os.path.join(art, "manifest.json")) or \
                os.path.getmtime(os.path.join(art, "manifest.json")) < newest:
            print("compiling %s -> %s" % (os.path.relpath(onnx, ROOT), art), file=sys.stderr)
            subprocess.run([compiler, onnx, "--tokenizer", os.path.join(src, "tokenizer.model"),
                            "--target", "cpu", "-q", "-o", art], check=True)
        arts[m] = art
    return [arts["photon"] + ":recgen", arts["photon"] + ":hiergen", arts["vanilla"] + ":hiergen"]


def shown(path):
    """A path as the JSON records it: relative to the repository when inside it (no machine
    paths in committed results)."""
    ap = os.path.abspath(path)
    return os.path.relpath(ap, ROOT) if ap.startswith(ROOT + os.sep) else path


def start_server(serve, artifact, mode, budget, extra):
    d = tempfile.mkdtemp(prefix="photon-serve-bench-")
    port_file = os.path.join(d, "port")
    args = [serve, artifact, "--port", "0", "--port-file", port_file, "--quiet",
            "--mode", mode, "--max-queue", "100000", "--max-tokens-limit", "1000000"]
    if budget:
        args += ["--memory-budget", budget]
    args += extra
    log = open(os.path.join(d, "log"), "w")
    proc = subprocess.Popen(args, stdout=log, stderr=log)
    for _ in range(600):
        if os.path.exists(port_file) or proc.poll() is not None:
            break
        time.sleep(0.05)
    if not os.path.exists(port_file):
        proc.kill()
        sys.exit("photon-serve did not start: " + open(os.path.join(d, "log")).read())
    time.sleep(0.05)  # the file is written once the server listens
    port = int(open(port_file).read())
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/v1/models")
    model = json.loads(conn.getresponse().read())["data"][0]["id"]
    return proc, port, model


def metrics(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    cache, running = 0.0, 0.0
    for line in text.splitlines():
        if line.startswith("photon_cache_bytes_in_use{"):
            cache += float(line.split()[-1])
        elif line.startswith("photon_active_sequences "):
            running = float(line.split()[-1])
    return cache, running


def one_request(port, model, prompt, max_tokens, seed, on_first=None):
    """A streaming completion; returns (ttft s, [itl s...], completion tokens). on_first() is
    called at the first text event (the sequence is running then)."""
    body = json.dumps({"model": model, "prompt": prompt, "max_tokens": max_tokens,
                       "temperature": 0.8, "seed": seed, "stream": True,
                       "stream_options": {"include_usage": True}, "ignore_eos": True})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    t0 = time.perf_counter()
    conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError("HTTP %d: %s" % (resp.status, resp.read()[:200]))
    events = []  # (time, bytes) of each text event
    tokens, finish = 0, None
    while True:
        line = resp.readline()
        if not line:
            break
        line = line.strip()
        if not line.startswith(b"data: "):
            continue
        data = line[6:]
        if data == b"[DONE]":
            break
        ev = json.loads(data)
        now = time.perf_counter()
        if ev.get("usage"):
            tokens = ev["usage"]["completion_tokens"]
            continue
        for c in ev.get("choices", []):
            if c.get("finish_reason"):
                finish = c["finish_reason"]
            text = c.get("text", "")
            if text:
                if not events and on_first:
                    on_first()
                events.append((now, len(text.encode("utf-8", "replace"))))
    conn.close()
    if finish is None or not events:
        raise RuntimeError("incomplete stream (finish %r, %d text events)" % (finish, len(events)))
    ttft = events[0][0] - t0
    total_bytes = sum(b for _, b in events)
    per_byte = tokens / total_bytes if total_bytes else 0.0
    itl = []
    carried = events[0][1] * per_byte  # tokens of the first event (not an ITL)
    for (t_prev, _), (t, b) in zip(events, events[1:]):
        n = b * per_byte
        k = max(1, int(round(carried + n)) - int(round(carried)))
        carried += n
        itl.extend([(t - t_prev) / k] * k)
    return ttft, itl, tokens


def run_level(port, pid, model, concurrency, requests, max_tokens, seconds_budget):
    lock = threading.Lock()
    todo = list(range(requests))
    ttfts, itls, tokens, errors = [], [], [0], []
    mem = {"cache_per_seq": 0.0, "running_peak": 0.0, "rss_peak": rss_bytes(pid)}
    rss_idle = mem["rss_peak"]
    stop, kick = threading.Event(), threading.Event()
    deadline = time.perf_counter() + seconds_budget

    def sampler():
        while not stop.is_set():
            try:
                cache, running = metrics(port)
                if running > 0:
                    mem["cache_per_seq"] = max(mem["cache_per_seq"], cache / running)
                mem["running_peak"] = max(mem["running_peak"], running)
                mem["rss_peak"] = max(mem["rss_peak"], rss_bytes(pid))
            except OSError:
                pass
            kick.wait(0.02)  # every 20 ms, and when a request's first text arrives
            kick.clear()

    def worker():
        while True:
            with lock:
                if not todo or time.perf_counter() > deadline:
                    return
                i = todo.pop(0)
            try:
                ttft, itl, n = one_request(port, model, PROMPTS[i % len(PROMPTS)], max_tokens, i,
                                           kick.set)
                with lock:
                    ttfts.append(ttft)
                    itls.extend(itl)
                    tokens[0] += n
            except Exception as e:  # recorded and reported, never silent
                with lock:
                    errors.append(str(e))

    st = threading.Thread(target=sampler)
    st.start()
    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    stop.set()
    kick.set()
    st.join()
    if errors:
        print("  %d request(s) failed, first: %s" % (len(errors), errors[0]), file=sys.stderr)
    done = len(ttfts)
    return {
        "concurrency": concurrency,
        "requests": done,
        "requests_planned": requests,
        "time_capped": done + len(errors) < requests,
        "seconds": seconds,
        "output_tokens": tokens[0],
        "ttft_p50_ms": 1e3 * percentile(ttfts, 50),
        "ttft_p99_ms": 1e3 * percentile(ttfts, 99),
        "itl_p50_ms": 1e3 * percentile(itls, 50),
        "itl_p99_ms": 1e3 * percentile(itls, 99),
        "tokens_per_s": tokens[0] / seconds,
        "requests_per_s": done / seconds,
        "cache_bytes_per_seq": mem["cache_per_seq"],
        "running_peak": mem["running_peak"],
        "rss_idle_bytes": rss_idle,
        "rss_peak_bytes": mem["rss_peak"],
        "errors": len(errors),
    }


def markdown(doc, plot_rel):
    m = doc["meta"]
    L = [BEGIN, "## Serving (photon-serve over loopback)", ""]
    L.append("Generated by `benchmarks/serve_bench.py` (%s, commit %s). Machine: %s. Load average "
             "(1/5/15 min) %s before, %s after. Settings: %s requests per level at most, %d output "
             "tokens each (`ignore_eos`, temperature 0.8), a level stops starting requests after "
             "%.0f s; the clients run on the same machine. TTFT = request sent to first text; ITL "
             "= gap between text events over the tokens each carried; memory per sequence = KV "
             "cache in use over running sequences (largest ratio) and the slope of the server's "
             "resident memory (below)."
             % (m["date"], m["commit"], m["cpu"], " ".join("%.2f" % x for x in m["load_before"]),
                " ".join("%.2f" % x for x in m["load_after"]), m["requests"], m["max_tokens"],
                m["level_seconds"]))
    L.append("")
    L.append("| model | mode | concurrency | requests | TTFT p50 (ms) | TTFT p99 (ms) | ITL p50 (ms) "
             "| ITL p99 (ms) | output tok/s | req/s | peak running |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in doc["results"]:
        L.append("| %s | %s | %d | %d%s | %.1f | %.1f | %.2f | %.2f | %.0f | %.2f | %d |" % (
            r["model"], r["mode"], r["concurrency"], r["requests"],
            " (time cap)" if r["time_capped"] else "", r["ttft_p50_ms"], r["ttft_p99_ms"],
            r["itl_p50_ms"], r["itl_p99_ms"], r["tokens_per_s"], r["requests_per_s"],
            r["running_peak"]))
    L += ["", "Memory per sequence: the KV cache in use over the running sequences (largest ratio "
          "over the levels), and the slope of the server's peak resident memory against the peak "
          "number of running sequences between the lowest and the highest concurrency.", "",
          "| model | mode | KV cache per sequence | resident memory per sequence | peak resident |",
          "|---|---|---|---|---|"]
    for mm in doc["memory"]:
        L.append("| %s | %s | %.1f KiB | %s | %.1f MiB |" % (
            mm["model"], mm["mode"], mm["cache_bytes_per_seq"] / 1024,
            "%.1f KiB" % (mm["rss_slope_bytes_per_seq"] / 1024)
            if mm["rss_slope_bytes_per_seq"] is not None else "n/a (one level)",
            mm["rss_peak_bytes"] / 2**20))
    if any(r["errors"] for r in doc["results"]):
        L.append("")
        L.append("Failed requests: " + ", ".join("%s %s C=%d: %d" % (r["model"], r["mode"],
                 r["concurrency"], r["errors"]) for r in doc["results"] if r["errors"]))
    if plot_rel:
        L += ["", "![serve_throughput.png](%s)" % plot_rel]
    L += ["", END]
    return "\n".join(L) + "\n"



def plot(doc, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    names = list(dict.fromkeys((r["model"], r["mode"]) for r in doc["results"]))
    for name in names:
        rs = [r for r in doc["results"] if (r["model"], r["mode"]) == name]
        ax.plot([r["concurrency"] for r in rs], [r["tokens_per_s"] for r in rs], marker="o",
                label="%s %s" % name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("concurrent clients")
    ax.set_ylabel("output tokens/s")
    ax.set_title("photon-serve over loopback (%s)" % doc["meta"]["cpu"], fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__)
    ap.add_argument("artifacts", nargs="*",
                    help="ARTIFACT.photon[:hiergen|:recgen] (default: the bundled small models)")
    ap.add_argument("--serve", default=os.path.join(ROOT, "build", "bin", "photon-serve"))
    ap.add_argument("--compiler", default=os.path.join(ROOT, "build", "bin", "photon-compile"))
    ap.add_argument("--artifact-dir", default=os.path.join(ROOT, "build", "serve-bench"),
                    help="where the bundled models are compiled")
    ap.add_argument("--concurrency", default="1,4,16,64", help="comma-separated (default 1,4,16,64)")
    ap.add_argument("--requests", type=int, default=256, help="requests per level at most")
    ap.add_argument("--max-tokens", type=int, default=128, help="output tokens per request")
    ap.add_argument("--time-budget", type=float, default=330,
                    help="seconds for all levels of all models (default 330): each level "
                         "stops starting requests after its share")
    ap.add_argument("--memory-budget", default="512M", help="photon-serve --memory-budget")
    ap.add_argument("--server-arg", action="append", default=[],
                    help="an extra photon-serve argument (repeat)")
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "benchmarks"),
                    help="root of results/serve/, plots/ and RESULTS.md (default benchmarks/)")
    ap.add_argument("--no-results-md", action="store_true", help="leave RESULTS.md alone")
    a = ap.parse_args()
    levels = [int(x) for x in a.concurrency.split(",") if x]
    t_start = time.time()
    load_before = loadavg()
    print("load average before: %s (the numbers are wall-clock: run on a quiet machine)" %
          " ".join("%.2f" % x for x in load_before), file=sys.stderr)
    specs = a.artifacts or compile_bundled(a.compiler, a.artifact_dir)
    level_seconds = a.time_budget / (len(specs) * len(levels))
    results = []
    for spec in specs:
        path, _, mode = spec.partition(":")
        mode = mode or "hiergen"
        name = os.path.basename(path.rstrip("/"))
        if name.endswith(".photon"):
            name = name[:-len(".photon")]
        proc, port, model = start_server(a.serve, path, mode, a.memory_budget, a.server_arg)
        try:
            one_request(port, model, "warm up", 8, 0)
            for c in levels:
                t = time.time()
                r = run_level(port, proc.pid, model, c, a.requests, a.max_tokens, level_seconds)
                r["model"], r["mode"] = name, mode
                results.append(r)
                print("[%s %s] concurrency %d: %d requests, %.0f tok/s, %.2f req/s, TTFT p50 %.1f ms, "
                      "ITL p50 %.2f ms, KV %.1f KiB/seq (%.1f s)" % (
                          name, mode, c, r["requests"], r["tokens_per_s"], r["requests_per_s"],
                          r["ttft_p50_ms"], r["itl_p50_ms"], r["cache_bytes_per_seq"] / 1024,
                          time.time() - t), file=sys.stderr)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    memory = []
    for key in dict.fromkeys((r["model"], r["mode"]) for r in results):
        rs = [r for r in results if (r["model"], r["mode"]) == key]
        lo, hi = rs[0], rs[-1]
        slope = None
        if hi["running_peak"] > lo["running_peak"]:
            slope = (hi["rss_peak_bytes"] - lo["rss_peak_bytes"]) / (hi["running_peak"] - lo["running_peak"])
        memory.append({"model": key[0], "mode": key[1],
                       "cache_bytes_per_seq": max(r["cache_bytes_per_seq"] for r in rs),
                       "rss_slope_bytes_per_seq": slope,
                       "rss_peak_bytes": max(r["rss_peak_bytes"] for r in rs)})
    doc = {
        "memory": memory,
        "meta": {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "commit": git_commit(), "cpu": cpu_name(), "load_before": load_before,
            "load_after": loadavg(), "requests": a.requests, "max_tokens": a.max_tokens,
            "level_seconds": level_seconds, "time_budget": a.time_budget,
            "concurrency": levels, "memory_budget": a.memory_budget, "server_args": a.server_arg,
            "artifacts": [shown(x) for x in specs], "wall_seconds": time.time() - t_start,
        },
        "results": results,
    }
    res_dir = os.path.join(a.out_dir, "results", "serve")
    plot_dir = os.path.join(a.out_dir, "plots")
    os.makedirs(res_dir, exist_ok=True)
    os.makedirs(plot_dir, exist_ok=True)
    with open(os.path.join(res_dir, "serve.json"), "w") as f:
        json.dump(doc, f, indent=1)
    plot_path = os.path.join(plot_dir, "serve_throughput.png")
    try:
        plot(doc, plot_path)
        plot_rel = os.path.relpath(plot_path, a.out_dir)
    except ImportError as e:
        print("no plot (%s)" % e, file=sys.stderr)
        plot_rel = None
    section = markdown(doc, plot_rel)
    with open(os.path.join(res_dir, "serve.md"), "w") as f:
        # serve.md lives two levels below RESULTS.md: its plot link is relative to it.
        f.write(section.replace("](" + str(plot_rel) + ")",
                                "](" + os.path.relpath(plot_path, res_dir) + ")"))
    if not a.no_results_md:
        results_md.put(os.path.join(a.out_dir, "RESULTS.md"), section)
    print(section)
    print("wrote %s, %s%s (%.0f s)" % (os.path.join(res_dir, "serve.json"), plot_path,
                                       "" if a.no_results_md else ", RESULTS.md",
                                       time.time() - t_start), file=sys.stderr)
    if any(r["errors"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
