#!/usr/bin/env python3
"""Client side of closewait-minefield (stdlib only). Run inside a namespace whose
net.ipv4.ip_local_port_range is narrow and whose tcp_fin_timeout is short, against a `leak` server.

Phase 1: open --stale connections with kernel-chosen ephemeral ports, send 1 byte, close them all.
         The leaking server leaves every one in CLOSE_WAIT; the client side FIN_WAIT_2s expire.
Wait:    --wait seconds (past tcp_fin_timeout).
Phase 2: --kernel new connections with kernel-chosen ephemeral ports, all at once, then
         --random new connections each bound to a random (seeded) free port of the range, all at once.
         A connection whose port still has a stale CLOSE_WAIT on the server gets a challenge ACK,
         answers RST and connects on its SYN retry: on Linux >= 5.6 that retry is armed with
         TCP_TIMEOUT_MIN (2 jiffies, 8 ms at HZ=250) instead of the 1 s RTO, so connect() takes
         ~8-10 ms instead of ~0.1 ms (older kernels: ~1 s).
Prints per-connection results and a summary.
"""
import argparse
import random
import socket
import threading
import time


def connect_one(dst, port, sport, results, idx):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if sport:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", sport))
    s.settimeout(10)
    t0 = time.monotonic()
    try:
        s.connect((dst, port))
        res = "OK"
        s.sendall(b"y")
    except OSError as e:
        res = type(e).__name__
    results[idx] = (s.getsockname()[1], res, time.monotonic() - t0)
    s.close()


def batch(dst, port, sports):
    results = [None] * len(sports)
    ts = [threading.Thread(target=connect_one, args=(dst, port, sp, results, i)) for i, sp in enumerate(sports)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dst", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--stale", type=int, default=300)
    ap.add_argument("--kernel", type=int, default=40)
    ap.add_argument("--random", type=int, default=60)
    ap.add_argument("--wait", type=float, default=4.0)
    ap.add_argument("--seed", type=int, default=5961)
    a = ap.parse_args()
    lo, hi = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())

    socks = []
    for _ in range(a.stale):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.connect((a.dst, a.port))
        socks.append(s)
    stale_ports = sorted(s.getsockname()[1] for s in socks)
    for s in socks:
        s.sendall(b"x")
        s.close()
    print("phase1: %d connections closed by the client, ports %d..%d (%d even, %d odd) -> server leaks them in CLOSE_WAIT"
          % (len(stale_ports), stale_ports[0], stale_ports[-1],
             sum(1 for p in stale_ports if p % 2 == 0), sum(1 for p in stale_ports if p % 2)), flush=True)
    print("phase1 ports: " + " ".join(map(str, stale_ports)), flush=True)
    time.sleep(a.wait)

    stale = set(stale_ports)
    r1 = batch(a.dst, a.port, [None] * a.kernel)
    used = {p for p, _, _ in r1}
    rng = random.Random(a.seed)
    free = [p for p in range(lo, hi + 1) if p not in used]
    r2 = batch(a.dst, a.port, rng.sample(free, a.random))
    total_coll = 0
    for name, res in (("kernel-chosen", r1), ("random-bound", r2)):
        coll = [r for r in res if r[0] in stale]
        slow = [r for r in res if r[2] > 0.005]
        total_coll += len(coll)
        print("phase2 %s: %d connects, %d on a port with a stale CLOSE_WAIT, %d took > 5 ms, results: %s"
              % (name, len(res), len(coll), len(slow),
                 ",".join(sorted({r[1] for r in res}))), flush=True)
        for p, r, el in sorted(res):
            print("  sport=%d stale=%s connect()=%s elapsed=%.3fs" % (p, "yes" if p in stale else "no", r, el))
    print("total collisions: %d of %d" % (total_coll, len(r1) + len(r2)), flush=True)


if __name__ == "__main__":
    main()
