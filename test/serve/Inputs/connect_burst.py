#!/usr/bin/python3
"""Many clients connecting at the same instant, slow clients and idle connections.

usage: connect_burst.py PHOTON_SERVE ARTIFACT WORKDIR [--clients N] [--rounds R]

Starts photon-serve on an ephemeral port, then R times opens N new connections at once (threads
behind a barrier), each sending GET /health and reading the answer. A listen backlog smaller
than the burst lets the kernel drop or reset connections ("Connection reset by peer"): every
one must get its 200. Then slow clients: connections that send their request 2.5 s after
connecting (a client starved of CPU) must be answered, not closed unanswered (httplib waits for
a first request only as long as the keep-alive timeout). Last, SIGTERM with 32 idle keep-alive
connections open: the server must exit within 5 s (they are woken, not waited for).
Prints one PASS/FAIL line per check and exits 1 on a failure.
"""
import argparse
import http.client
import os
import signal
import socket
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
    slow_failures = []

    def slow_client():
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            time.sleep(2.5)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            head = s.recv(64)
            s.close()
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"answer {head!r}")
        except Exception as e:  # an empty answer or a reset is the defect this checks
            with lock:
                slow_failures.append(repr(e))

    ts = [threading.Thread(target=slow_client) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if slow_failures:
        print(f"FAIL slow clients: {len(slow_failures)} of 8 not answered, first: {slow_failures[0]}")
    else:
        print("PASS slow clients: 8 requests sent 2.5 s after connecting, every one answered 200")

    idle = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(32)]
    t0 = time.time()
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = "killed"
    took = time.time() - t0
    for s in idle:
        s.close()
    ok = rc == 0 and took < 5
    print(("PASS" if ok else "FAIL") + f" shutdown with 32 idle connections: exit status {rc}"
          + ("" if took < 5 else f" after {took:.1f} s (limit 5 s)"))
    sys.exit(0 if not failures and not slow_failures and ok else 1)


if __name__ == "__main__":
    main()
