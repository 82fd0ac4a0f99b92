#!/usr/bin/env python3
"""The "load balancer" of incident 1: an L2 direct-server-return forwarder on a raw AF_PACKET socket.

It does not bind any TCP port. It sniffs every frame arriving on --if for VIP:port, and re-sends a
copy with the Ethernet destination rewritten to the backend's MAC (source = our own MAC), leaving
the IP packet untouched (the backend has the VIP on its lo). Sniffing does NOT consume the frame:
the balancer's own kernel still receives the original, finds no listener on VIP:port, and answers
the SYN with a RST -- unless something (iptables DROP / NFQUEUE) keeps it from the local stack.

The TCP checksum is recomputed on the copy, because a frame that came over a veth may still carry
a partial (offloaded) checksum that the backend would reject.
"""
import argparse
import socket
import struct

ETH_P_ALL = 0x0003
PACKET_HOST = 0


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def fix_tcp_checksum(frame, ihl):
    ip = frame[14:]
    total = struct.unpack("!H", ip[2:4])[0]
    tcp = bytearray(ip[ihl:total])
    tcp[16:18] = b"\0\0"
    pseudo = ip[12:20] + struct.pack("!BBH", 0, 6, len(tcp))
    tcp[16:18] = struct.pack("!H", csum(pseudo + bytes(tcp)))
    return frame[:14 + ihl] + bytes(tcp) + frame[14 + total:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--if", dest="ifname", required=True)
    ap.add_argument("--vip", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--backend-mac", required=True)
    ap.add_argument("--ready-file")
    a = ap.parse_args()

    vip = socket.inet_aton(a.vip)
    be_mac = bytes.fromhex(a.backend_mac.replace(":", ""))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((a.ifname, 0))
    own_mac = s.getsockname()[4][:6]
    if a.ready_file:
        with open(a.ready_file, "w") as f:
            f.write("ready\n")
    while True:
        frame, addr = s.recvfrom(65535)
        if addr[2] != PACKET_HOST:          # skip our own transmissions and broadcasts
            continue
        if len(frame) < 34 or frame[12:14] != b"\x08\x00":
            continue
        ihl = (frame[14] & 0x0F) * 4
        if frame[23] != 6 or frame[30:34] != vip:
            continue
        dport = struct.unpack("!H", frame[14 + ihl + 2:14 + ihl + 4])[0]
        if dport != a.port:
            continue
        out = be_mac + own_mac + frame[12:]
        s.send(fix_tcp_checksum(out, ihl))


if __name__ == "__main__":
    main()
