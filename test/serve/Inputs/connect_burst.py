#!/usr/bin/python3
"""Many clients connecting at the same instant: every connection is accepted and answered.

usage: connect_burst.py PHOTON_SERVE ARTIFACT WORKDIR [--clients N] [--rounds R]

Starts photon-serve on an ephemeral port, then R times opens N new connections at once (threads
behind a barrier), each sending GET /health and reading the answer. A listen backlog smaller
than the burst lets the kernel drop or reset connections ("Connection reset by peer"): every
one must get its 200. Prints one PASS/FAIL line per check and exits 1 on a failure.
"""
import argparse
import http.client
import os
import signal
import subprocess
import sys
import threading
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("serve")
    ap.add_argument("artifact")
    ap.add_argument("work")
    ap.add_argument("--clients", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    port_file = os.path.join(a.work, "port")
    if os.path.exists(port_file):
        os.remove(port_file)
    log = open(os.path.join(a.work, "serve.log"), "w")
    proc = subprocess.Popen([a.serve, a.artifact, "--port", "0", "--port-file", port_file, "--quiet"],
                            stdout=log, stderr=log)
    t0 = time.time()
    while not os.path.exists(port_file) and proc.poll() is None and time.time() - t0 < 60:
        time.sleep(0.05)
    if not os.path.exists(port_file):
        print("FAIL photon-serve did not start (see serve.log)")
        proc.kill()
        sys.exit(1)
    time.sleep(0.1)
    port = int(open(port_file).read())
    failures = []
    lock = threading.Lock()

    def client(barrier):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            barrier.wait()
            conn.request("GET", "/health")
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                raise RuntimeError(f"HTTP {r.status}")
            conn.close()
        except Exception as e:  # every failure is counted and the first one shown
            with lock:
                failures.append(repr(e))

    for _ in range(a.rounds):
        barrier = threading.Barrier(a.clients)
        ts = [threading.Thread(target=client, args=(barrier,)) for _ in range(a.clients)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    total = a.clients * a.rounds
    if failures:
        print(f"FAIL burst: {len(failures)} of {total} connections failed, first: {failures[0]}")
    else:
        print(f"PASS burst: {total} connections opened {a.clients} at a time, every one answered 200")
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = "killed"
    print(("PASS" if rc == 0 else "FAIL") + f" shutdown: exit status {rc}")
    sys.exit(0 if not failures and rc == 0 else 1)


if __name__ == "__main__":
    main()
