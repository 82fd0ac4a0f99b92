#!/usr/bin/env python3
"""Whole-capture patterns: a TCP connect() port scan and a spoofed-source SYN flood (stdlib only).

  scan.py listen --bind IP --ports P,P,... [--backlog N] [--noaccept]
        listeners; by default each accepted connection is closed at once (FIN). --noaccept: listen()
        and never accept() (the SYN flood target).
  scan.py connect-scan --dst IP --first P --last P
        one blocking connect() per port, in order, each from a new ephemeral port; open ports are
        closed at once (FIN). Logs open / refused per port into --facts.
  scan.py synflood --dst IP --port P --count N --src-net A.B.C.D/LEN --seed S
        N bare SYNs (IPv4 + TCP with one MSS option, no timestamps) from random spoofed addresses of
        --src-net and random source ports/ISNs (seeded: same addresses and ports every run), sent with
        a raw IPPROTO_RAW socket at --rate per second. Nothing ever answers the SYN-ACKs.
"""
import argparse
import ipaddress
import random
import socket
import struct
import time

from anomlib import errname, ready, write_json


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def syn_packet(src, dst, sport, dport, isn, ip_id):
    opts = struct.pack("!BBH", 2, 4, 1460)                       # MSS 1460
    tcp = struct.pack("!HHIIBBHHH", sport, dport, isn, 0, (5 + len(opts) // 4) << 4, 0x02, 64240, 0, 0) + opts
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), ip_id, 0, 64, 6, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return ip + tcp


def listen(a):
    socks = []
    for p in [int(x) for x in a.ports.split(",")]:
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((a.bind, p))
        ls.listen(a.backlog)
        socks.append(ls)
    ready(a.ready_file)
    if a.noaccept:
        while True:
            time.sleep(3600)
    import selectors
    sel = selectors.DefaultSelector()
    for ls in socks:
        sel.register(ls, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            c, _ = key.fileobj.accept()
            c.close()


def connect_scan(a):
    res = {}
    t0 = time.time()
    for p in range(a.first, a.last + 1):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.connect((a.dst, p))
            res[p] = "open"
        except OSError as e:
            res[p] = errname(e)
        s.close()
        time.sleep(a.gap)
    facts = {"scanner": "sequential blocking connect(), then close(); ports %d-%d" % (a.first, a.last),
             "gap_s": a.gap, "duration_s": round(time.time() - t0, 3),
             "open_ports": sorted(p for p, r in res.items() if r == "open"),
             "refused_ports": len([p for p, r in res.items() if r == "ECONNREFUSED"]),
             "other_results": {str(p): r for p, r in res.items() if r not in ("open", "ECONNREFUSED")}}
    print("scan: open %s, refused %d" % (facts["open_ports"], facts["refused_ports"]))
    write_json(a.facts, facts)


def synflood(a):
    rnd = random.Random(a.seed)
    net = ipaddress.ip_network(a.src_net)
    hosts = rnd.sample(list(net.hosts()), a.count)
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    sent = []
    t0 = time.time()
    for i, h in enumerate(hosts):
        sport, isn, ip_id = rnd.randrange(1024, 65536), rnd.randrange(2 ** 32), rnd.randrange(65536)
        s.sendto(syn_packet(str(h), a.dst, sport, a.port, isn, ip_id), (a.dst, 0))
        sent.append({"src": str(h), "sport": sport, "isn": isn})
        time.sleep(max(0.0, t0 + (i + 1) / a.rate - time.time()))
    facts = {"sender": "raw IPPROTO_RAW socket, hand-built IPv4+TCP SYN (MSS option only), seeded random",
             "seed": a.seed, "src_net": a.src_net, "count": len(sent), "dst": "%s:%d" % (a.dst, a.port),
             "rate_per_s": a.rate, "duration_s": round(time.time() - t0, 3),
             "distinct_sources": len({x["src"] for x in sent}), "syns": sent}
    print("synflood: %d SYNs in %.2f s" % (len(sent), facts["duration_s"]))
    write_json(a.facts, facts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["listen", "connect-scan", "synflood"])
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--ports")
    ap.add_argument("--backlog", type=int, default=128)
    ap.add_argument("--noaccept", action="store_true")
    ap.add_argument("--dst")
    ap.add_argument("--port", type=int)
    ap.add_argument("--first", type=int)
    ap.add_argument("--last", type=int)
    ap.add_argument("--gap", type=float, default=0.002)
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--src-net", default="10.203.8.0/23")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--facts")
    ap.add_argument("--ready-file")
    a = ap.parse_args()
    {"listen": listen, "connect-scan": connect_scan, "synflood": synflood}[a.cmd](a)


if __name__ == "__main__":
    main()
