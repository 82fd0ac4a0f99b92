#!/usr/bin/env python3
"""Record a SYN scan over a million 4-tuples, answered by a real kernel (issue 9's memory bound).

    sudo python3 bench/make_scan.py                    # bench/data/scan-1m.pcap (~2M frames, ~190 MB)
    sudo python3 bench/make_scan.py --tuples 100000    # a smaller one

In a fresh network namespace a raw socket sends SYNs from 127.0.0.2 to 127.0.0.1, walking every
destination port for a series of source ports, so each SYN is a 4-tuple of its own. The
namespace's kernel answers each one with a RST (nothing listens) and tcpdump records ``lo``. The
capture and a ``.json`` of its facts (SYNs sent, frames captured, kernel drops) go to bench/data/.
Then measure the analysis, for instance with

    /usr/bin/time -v .venv/bin/python -m pcapsleuth analyze bench/data/scan-1m.pcap --json /dev/null --no-html
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NS = "psb-scan"
SRC, DST = "127.0.0.2", "127.0.0.1"


def _sum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def syn(sport: int, dport: int, seq: int) -> bytes:
    """An IPv4 + TCP SYN with valid checksums (the receiving stack verifies them)."""
    src, dst = socket.inet_aton(SRC), socket.inet_aton(DST)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x02, 64240, 0, 0)
    csum = 0xFFFF - _sum16(src + dst + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), sport & 0xFFFF, 0, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", 0xFFFF - _sum16(ip)) + ip[12:]
    return ip + tcp


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tuples", type=int, default=1_000_000, help="distinct 4-tuples to probe (default 1M)")
    ap.add_argument("--out", type=Path, default=HERE / "data")
    ap.add_argument("--rate", type=float, default=100_000.0, help="SYNs per second (tcpdump must keep up)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"scan-{args.tuples // 1_000_000}m" if args.tuples % 1_000_000 == 0 else f"scan-{args.tuples}"
    pcap = args.out / f"{name}.pcap"
    subprocess.run(["ip", "netns", "del", NS], stderr=subprocess.DEVNULL, check=False)
    subprocess.run(["ip", "netns", "add", NS], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up"], check=True)
        dump = subprocess.Popen(["ip", "netns", "exec", NS, "tcpdump", "-i", "lo", "-s", "96", "-B", "262144",
                                 "-w", str(pcap), "tcp"], stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        # The sender runs inside the namespace: re-exec this file there with --send.
        t0 = time.time()
        subprocess.run(["ip", "netns", "exec", NS, sys.executable, __file__, "--send", str(args.tuples),
                        str(args.rate)], check=True)
        sent_s = time.time() - t0
        time.sleep(1.0)
        dump.terminate()
        _, err = dump.communicate()
    finally:
        subprocess.run(["ip", "netns", "del", NS], stderr=subprocess.DEVNULL, check=False)
    m = re.search(r"(\d+) packets captured", err)
    d = re.search(r"(\d+) packets dropped by kernel", err)
    facts = {"capture": str(pcap), "tuples": args.tuples, "syns_sent": args.tuples,
             "frames": int(m.group(1)) if m else None, "dropped_by_kernel": int(d.group(1)) if d else None,
             "send_seconds": round(sent_s, 2), "bytes": pcap.stat().st_size}
    (args.out / f"{name}.json").write_text(json.dumps(facts, indent=2) + "\n")
    print(json.dumps(facts, indent=2))
    return 0


def send(tuples: int, rate: float) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    start = time.perf_counter()
    sport = 20000
    dport = 1
    for i in range(tuples):
        s.sendto(syn(sport, dport, 0x10000000 + i), (DST, 0))
        dport += 1
        if dport > 65535:
            dport = 1
            sport += 1
        if i % 1000 == 999:
            lag = (i + 1) / rate - (time.perf_counter() - start)
            if lag > 0:
                time.sleep(lag)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--send":
        send(int(sys.argv[2]), float(sys.argv[3]))
        raise SystemExit(0)
    raise SystemExit(main())
