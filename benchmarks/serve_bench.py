#!/usr/bin/env python3
"""Serving benchmark: photon-serve over loopback at several concurrencies.

For each artifact (e.g. the bundled small PHOTON under RecGen and HierGen, and vanilla) it
starts photon-serve on a free port, then for each concurrency C runs C client threads that
send streaming /v1/completions requests back to back until R requests are done, and
measures per request the time to first token (TTFT: request sent -> first text event), the
inter-token latencies (ITL: gaps between text events divided by the tokens each carried;
PHOTON emits a meta-context of tokens per event) and, over the run, output tokens/s and
requests/s. /metrics is sampled during the run for the KV cache bytes in use and the
running sequences; memory per sequence = the largest ratio of the two seen.

Standard library only (plus matplotlib for --plot). Prints a Markdown table, optionally
writes it (--out) and a plot of throughput against concurrency (--plot).

Run it on a quiet machine (check /proc/loadavg): the numbers are wall-clock.

  python3 benchmarks/serve_bench.py --serve build/bin/photon-serve \\
      build/demo/small-photon.photon:recgen build/demo/small-photon.photon:hiergen \\
      build/demo/small-vanilla.photon --concurrency 1,4,16,64 --requests 128 --max-tokens 128
"""
import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def percentile(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * (len(xs) - 1)))))
    return xs[k]


def start_server(serve, artifact, mode, budget):
    d = tempfile.mkdtemp(prefix="photon-serve-bench-")
    port_file = os.path.join(d, "port")
    args = [serve, artifact, "--port", "0", "--port-file", port_file, "--quiet",
            "--mode", mode, "--max-queue", "100000", "--max-tokens-limit", "1000000"]
    if budget:
        args += ["--memory-budget", budget]
    log = open(os.path.join(d, "log"), "w")
    proc = subprocess.Popen(args, stdout=log, stderr=log)
    for _ in range(600):
        if os.path.exists(port_file) or proc.poll() is not None:
            break
        time.sleep(0.05)
    if not os.path.exists(port_file):
        proc.kill()
        sys.exit("photon-serve did not start: " + open(os.path.join(d, "log")).read())
    port = int(open(port_file).read())
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/v1/models")
    model = json.loads(conn.getresponse().read())["data"][0]["id"]
    return proc, port, model


def metrics(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    cache, running = 0, 0
    for line in text.splitlines():
        if line.startswith("photon_cache_bytes_in_use{"):
            cache += float(line.split()[-1])
        elif line.startswith("photon_active_sequences "):
            running = float(line.split()[-1])
    return cache, running


def one_request(port, model, prompt, max_tokens, seed):
    """A streaming completion; returns (ttft, [itl...], tokens, seconds)."""
    body = json.dumps({"model": model, "prompt": prompt, "max_tokens": max_tokens,
                       "temperature": 0.8, "seed": seed, "stream": True,
                       "stream_options": {"include_usage": True}, "ignore_eos": True})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    t0 = time.perf_counter()
    conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError("HTTP %d: %s" % (resp.status, resp.read()[:200]))
    ttft, last, itl, tokens = None, None, [], 0
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
        text = "".join(c.get("text", "") for c in ev.get("choices", []))
        if not text:
            continue
        if ttft is None:
            ttft = now - t0
        elif last is not None:
            # PHOTON sends a meta-context per event: spread the gap over its bytes (one
            # byte per token for the byte-level models; an estimate otherwise).
            n = max(1, len(text.encode("utf-8", "replace")))
            itl.extend([(now - last) / n] * n)
        last = now
    conn.close()
    return ttft if ttft is not None else time.perf_counter() - t0, itl, tokens, time.perf_counter() - t0


def run_level(port, model, concurrency, requests, max_tokens):
    lock = threading.Lock()
    todo = list(range(requests))
    ttfts, itls, tokens = [], [], [0]
    errors = []
    mem = [0.0]
    stop = threading.Event()

    def sampler():
        while not stop.is_set():
            try:
                cache, running = metrics(port)
                if running > 0:
                    mem[0] = max(mem[0], cache / running)
            except OSError:
                pass
            time.sleep(0.05)

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                i = todo.pop()
            try:
                ttft, itl, n, _ = one_request(port, model, "Request %d: once upon a time" % i,
                                              max_tokens, i)
                with lock:
                    ttfts.append(ttft)
                    itls.extend(itl)
                    tokens[0] += n
            except Exception as e:  # recorded, reported, never silent
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
    st.join()
    if errors:
        print("  %d request(s) failed, first: %s" % (len(errors), errors[0]), file=sys.stderr)
    return {
        "concurrency": concurrency,
        "requests": requests - len(errors),
        "seconds": seconds,
        "ttft_p50_ms": 1e3 * percentile(ttfts, 50),
        "ttft_p99_ms": 1e3 * percentile(ttfts, 99),
        "itl_p50_ms": 1e3 * percentile(itls, 50),
        "itl_p99_ms": 1e3 * percentile(itls, 99),
        "tokens_per_s": tokens[0] / seconds,
        "requests_per_s": (requests - len(errors)) / seconds,
        "cache_bytes_per_seq": mem[0],
        "errors": len(errors),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__)
    ap.add_argument("artifacts", nargs="+", help="ARTIFACT.photon[:hiergen|:recgen]")
    ap.add_argument("--serve", default="build/bin/photon-serve", help="the photon-serve binary")
    ap.add_argument("--concurrency", default="1,4,16,64", help="comma-separated (default 1,4,16,64)")
    ap.add_argument("--requests", type=int, default=128, help="requests per concurrency level")
    ap.add_argument("--max-tokens", type=int, default=128, help="tokens per request")
    ap.add_argument("--memory-budget", default="", help="photon-serve --memory-budget")
    ap.add_argument("--out", help="write the Markdown table here")
    ap.add_argument("--json", help="write the raw results here")
    ap.add_argument("--plot", help="write a PNG of output tokens/s against concurrency here")
    a = ap.parse_args()
    levels = [int(x) for x in a.concurrency.split(",") if x]
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print("load average before: %s (the numbers are wall-clock: run on a quiet machine)" %
          " ".join(load), file=sys.stderr)
    results = []
    for spec in a.artifacts:
        path, _, mode = spec.partition(":")
        mode = mode or "hiergen"
        name = os.path.basename(path.rstrip("/")) + " " + mode
        proc, port, model = start_server(a.serve, path, mode, a.memory_budget)
        try:
            one_request(port, model, "warm up", 8, 0)
            for c in levels:
                t = time.time()
                r = run_level(port, model, c, a.requests, a.max_tokens)
                r["model"] = name
                results.append(r)
                print("[%s] concurrency %d: %.0f tok/s, %.1f req/s, TTFT p50 %.1f ms, ITL p50 %.2f ms "
                      "(%.1f s)" % (name, c, r["tokens_per_s"], r["requests_per_s"], r["ttft_p50_ms"],
                                    r["itl_p50_ms"], time.time() - t), file=sys.stderr)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    lines = ["| model | mode | concurrency | requests | TTFT p50 (ms) | TTFT p99 (ms) | ITL p50 (ms) "
             "| ITL p99 (ms) | output tok/s | req/s | KV cache per sequence |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        m, mode = r["model"].rsplit(" ", 1)
        lines.append("| %s | %s | %d | %d | %.1f | %.1f | %.2f | %.2f | %.0f | %.2f | %.1f KiB |" % (
            m, mode, r["concurrency"], r["requests"], r["ttft_p50_ms"], r["ttft_p99_ms"],
            r["itl_p50_ms"], r["itl_p99_ms"], r["tokens_per_s"], r["requests_per_s"],
            r["cache_bytes_per_seq"] / 1024))
    table = "\n".join(lines)
    print(table)
    if a.out:
        with open(a.out, "w") as f:
            f.write(table + "\n")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    if a.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6, 4))
        for name in dict.fromkeys(r["model"] for r in results):
            rs = [r for r in results if r["model"] == name]
            ax.plot([r["concurrency"] for r in rs], [r["tokens_per_s"] for r in rs], marker="o", label=name)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent clients")
        ax.set_ylabel("output tokens/s")
        ax.set_title("photon-serve over loopback")
        ax.legend()
        fig.tight_layout()
        fig.savefig(a.plot, dpi=120)
    if any(r["errors"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
