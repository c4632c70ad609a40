#!/usr/bin/env python3
"""fairness.py: how long a client waits while another floods the worker.

Starts Debian's memcached and ours, one after the other, each with one
worker thread (-t 1) and -R 20, on 127.0.0.1 and a free port.  One
connection pipelines gets as fast as it can (a writer and a reader
thread); meanwhile a second connection sends `version` 200 times, 10 ms
apart, and the script prints the median, p90 and max of its round trips
for each server.  Ratios are ours / memcached.

  bench/fairness.py [--rounds N]     (bench/README.md, "-R fairness")
"""
import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
OURS = os.environ.get("MEMCACHED_BIN", os.path.join(HERE, "..", "memcached"))
REF = os.environ.get("REFERENCE_BIN", "/usr/bin/memcached")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(binary):
    port = free_port()
    args = [binary, "-p", str(port), "-U", "0", "-l", "127.0.0.1", "-t", "1",
            "-R", "20"]
    if os.geteuid() == 0:
        args += ["-u", "root"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            c = socket.create_connection(("127.0.0.1", port), timeout=1)
            c.sendall(b"set k 0 0 100\r\n" + b"v" * 100 + b"\r\n")
            if c.recv(100).startswith(b"STORED"):
                c.close()
                return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("%s did not start" % binary)


def measure(port, probes=200):
    stop = threading.Event()
    flood = socket.create_connection(("127.0.0.1", port))
    chunk = b"get k\r\n" * 2000

    def writer():
        try:
            while not stop.is_set():
                flood.sendall(chunk)
        except OSError:
            pass

    def reader():
        try:
            while not stop.is_set() and flood.recv(1 << 20):
                pass
        except OSError:
            pass

    threads = [threading.Thread(target=f, daemon=True)
               for f in (writer, reader)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    probe = socket.create_connection(("127.0.0.1", port))
    lat = []
    for _ in range(probes):
        t0 = time.perf_counter()
        probe.sendall(b"version\r\n")
        if not probe.recv(100):
            break
        lat.append((time.perf_counter() - t0) * 1e3)
        time.sleep(0.01)
    stop.set()
    flood.shutdown(socket.SHUT_RDWR)
    flood.close()
    probe.close()
    lat.sort()
    return (statistics.median(lat), lat[int(len(lat) * 0.9)], lat[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    o = ap.parse_args()
    res = {"memcached": [], "ours": []}
    for r in range(o.rounds):
        for name, binary in (("memcached", REF), ("ours", OURS)):
            proc, port = start(binary)
            try:
                res[name].append(measure(port))
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(10)
            print("round %d %-9s version p50 %.3f p90 %.3f max %.3f ms"
                  % ((r + 1, name) + res[name][-1]), flush=True)
    print("| server | p50 ms | p90 ms | max ms |")
    print("|---|---:|---:|---:|")
    med = {}
    for name in ("memcached", "ours"):
        med[name] = [statistics.median(x[i] for x in res[name])
                     for i in range(3)]
        print("| %s | %.3f | %.3f | %.3f |" % ((name,) + tuple(med[name])))
    print("| ours / memcached | %.3f | %.3f | %.3f |"
          % tuple(med["ours"][i] / med["memcached"][i] for i in range(3)))


if __name__ == "__main__":
    main()
