#!/usr/bin/env python3
"""Write captures that reuse a few 4-tuples a great many times (issue 19, item 8).

    python3 bench/make_reuse.py                           # both captures below, in bench/_data/
    python3 bench/make_reuse.py --tuples 1 --reuses 1000  # a smaller one

Each attempt is a SYN from 10.9.0.1:40000+k to 10.9.0.2:80, answered by a RST/ACK (a refused
connection, Zeek's REJ); the next attempt on the same 4-tuple, 1 ms later, is a new connection
whose predecessor is the one before. With several tuples the attempts go round robin. Frames are
built by hand (Ethernet, IPv4, TCP with valid checksums), no root and no kernel needed:

    reuse-1x100000.pcap   100,000 reuses of one 4-tuple   (200,000 frames, ~15 MB)
    reuse-3x60000.pcap    60,000 reuses of each of 3      (360,000 frames, ~27 MB)

The chain of predecessors is what the HTML report walked (and cached) whole: 1.22 GB and 2.14 GB
peak RSS at 69 MB for the analysis alone. ``bench/reuse_memory.py`` measures it.
"""

from __future__ import annotations

import argparse
import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLIENT, SERVER = bytes([10, 9, 0, 1]), bytes([10, 9, 0, 2])
MAC_C, MAC_S = bytes.fromhex("020000000091"), bytes.fromhex("020000000092")
SYN, RST, ACK = 0x02, 0x04, 0x10


def _sum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def frame(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int, ip_id: int) -> bytes:
    """Ethernet + IPv4 + TCP (no payload) with correct checksums."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags,
                      0 if flags & RST else 64240, 0, 0)
    csum = 0xFFFF - _sum16(src + dst + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), ip_id & 0xFFFF, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", 0xFFFF - _sum16(ip)) + ip[12:]
    macs = (MAC_S + MAC_C) if src == CLIENT else (MAC_C + MAC_S)
    return macs + b"\x08\x00" + ip + tcp


def write(path: Path, tuples: int, reuses: int) -> int:
    """Write the capture; returns its frame count."""
    t0 = 1_700_000_000 * 1_000_000  # microseconds
    n = 0
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i in range(reuses):
            for k in range(tuples):
                sport = 40000 + k
                isn = (0x10000000 + 7919 * (i * tuples + k)) & 0xFFFFFFFF
                ts = t0 + (i * tuples + k) * 1000
                for j, data in enumerate((frame(CLIENT, SERVER, sport, 80, isn, 0, SYN, i),
                                          frame(SERVER, CLIENT, 80, sport, 0, isn + 1, RST | ACK, 0))):
                    us = ts + j * 50
                    f.write(struct.pack("<IIII", us // 1_000_000, us % 1_000_000, len(data), len(data)) + data)
                    n += 1
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tuples", type=int, help="4-tuples (default: both standard captures)")
    ap.add_argument("--reuses", type=int, help="attempts on each 4-tuple")
    ap.add_argument("--out", type=Path, default=HERE / "_data")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if (args.tuples is None) != (args.reuses is None):
        ap.error("give both --tuples and --reuses, or neither")
    todo = [(args.tuples, args.reuses)] if args.tuples is not None else [(1, 100_000), (3, 60_000)]
    for tuples, reuses in todo:
        path = args.out / f"reuse-{tuples}x{reuses}.pcap"
        frames = write(path, tuples, reuses)
        print(f"{path}: {frames:,} frames, {tuples} tuple(s) x {reuses:,} attempts, {path.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
