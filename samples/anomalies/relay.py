#!/usr/bin/env python3
"""A delay line between two interfaces: every Ethernet frame received on one is re-sent, unchanged, on
the other --delay seconds later (a userspace stand-in for netem, which this kernel lacks). Used for
simultaneous-open.pcap: with 100 ms one way, two SYNs sent a few milliseconds apart cross in flight.

  relay.py --a IF --b IF --delay S --ready-file F --facts F     (runs until SIGTERM; then writes --facts)
"""
import argparse
import heapq
import select
import signal
import socket
import sys
import time

from anomlib import ready, write_json

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--delay", type=float, default=0.1)
    ap.add_argument("--ready-file")
    ap.add_argument("--facts")
    a = ap.parse_args()
    socks = {}
    for name in (a.a, a.b):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.bind((name, 0))
        socks[name] = s
    other = {socks[a.a]: socks[a.b], socks[a.b]: socks[a.a]}
    label = {socks[a.a]: "%s->%s" % (a.a, a.b), socks[a.b]: "%s->%s" % (a.b, a.a)}
    counts = {v: 0 for v in label.values()}
    queue = []
    n = 0

    def stop(*_):
        if a.facts:
            write_json(a.facts, {"relay": "AF_PACKET delay line", "delay_s": a.delay, "frames": counts})
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    ready(a.ready_file)
    while True:
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, out, frame = heapq.heappop(queue)
            out.send(frame)
        timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else None
        r, _, _ = select.select(list(other), [], [], timeout)
        for s in r:
            frame, addr = s.recvfrom(65535)
            if addr[2] == PACKET_OUTGOING:   # our own transmissions
                continue
            n += 1
            counts[label[s]] += 1
            heapq.heappush(queue, (time.monotonic() + a.delay, n, other[s], frame))


if __name__ == "__main__":
    main()
