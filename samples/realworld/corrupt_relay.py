#!/usr/bin/env python3
"""A wire that corrupts one segment: every Ethernet frame received on one interface is re-sent at once,
unchanged, on the other, except the --nth TCP segment with payload that goes from --a to --b towards
--dport: one payload byte of it is inverted (xor 0xff) and the TCP checksum is left as it was, as a
faulty NIC, cable or middlebox would leave it. The receiving kernel must drop that segment
(TcpInCsumErrors) and the sender must send it again. Modelled on ../anomalies/relay.py (AF_PACKET).

  corrupt_relay.py --a IF --b IF --dport P --nth N --ready-file F --facts F   (until SIGTERM)
"""
import argparse
import os
import select
import signal
import socket
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "anomalies"))
from anomlib import ready, write_json  # noqa: E402

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def tcp_payload(frame, dport):
    """(payload offset, payload length, seq) of an IPv4 TCP segment to dport with payload, else None."""
    if len(frame) < 54 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
        return None
    ihl = (frame[14] & 15) * 4
    ip_len = struct.unpack("!H", frame[16:18])[0]
    t = 14 + ihl
    if struct.unpack("!H", frame[t + 2:t + 4])[0] != dport:
        return None
    thl = (frame[t + 12] >> 4) * 4
    plen = ip_len - ihl - thl
    if plen <= 0:
        return None
    return t + thl, plen, struct.unpack("!I", frame[t + 4:t + 8])[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--dport", type=int, required=True)
    ap.add_argument("--nth", type=int, default=2)
    ap.add_argument("--ready-file")
    ap.add_argument("--facts")
    a = ap.parse_args()
    socks = {}
    for name in (a.a, a.b):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.bind((name, 0))
        socks[name] = s
    sa, sb = socks[a.a], socks[a.b]
    other = {sa: sb, sb: sa}
    counts = {"%s->%s" % (a.a, a.b): 0, "%s->%s" % (a.b, a.a): 0}
    data_segments = 0
    corrupted = []

    def stop(*_):
        if a.facts:
            write_json(a.facts, {"relay": "AF_PACKET wire, no delay; corrupts the --nth data segment %s->%s to port %d"
                                 % (a.a, a.b, a.dport), "nth": a.nth, "frames": counts,
                                 "data_segments_a_to_b": data_segments, "corrupted": corrupted})
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    ready(a.ready_file)
    while True:
        r, _, _ = select.select([sa, sb], [], [])
        for s in r:
            frame, addr = s.recvfrom(65535)
            if addr[2] == PACKET_OUTGOING:
                continue
            counts["%s->%s" % ((a.a, a.b) if s is sa else (a.b, a.a))] += 1
            if s is sa:
                p = tcp_payload(frame, a.dport)
                if p:
                    data_segments += 1
                    if data_segments == a.nth:
                        off, plen, seq = p
                        i = off + plen - 1          # the last payload byte
                        frame = bytearray(frame)
                        old = frame[i]
                        frame[i] ^= 0xFF
                        t = 14 + (frame[14] & 15) * 4
                        corrupted.append({"data_segment_no": data_segments, "seq_raw": seq, "payload_len": plen,
                                          "payload_byte_index": plen - 1, "old": old, "new": frame[i],
                                          "ip_id": struct.unpack("!H", frame[18:20])[0],
                                          "tcp_checksum_field_unchanged": "0x%04x" % struct.unpack("!H", frame[t + 16:t + 18])[0]})
                        frame = bytes(frame)
            other[s].send(frame)


if __name__ == "__main__":
    main()
