#!/usr/bin/env python3
"""Two-port userspace "VLAN switch" for the sample recorders (stdlib only, needs CAP_NET_RAW).

  vlan_switch.py --access IF --trunk IF --tag TPID:VID [--tag TPID:VID ...] [--ready-file F]

Frames received on the ACCESS port (untagged) are sent out of the TRUNK port with the given tags
inserted after the MAC addresses (first --tag = outermost, e.g. --tag 88a8:100 --tag 8100:200 for
QinQ). Frames received on the TRUNK port have every VLAN tag removed and are sent out of the ACCESS
port. Used because this kernel has no 8021q module (no `ip link ... type vlan`) and no bridge VLAN
filtering / tc act_vlan: the TCP endpoints are still real kernels, only the tagging is done here.
Runs until killed.
"""
import argparse
import os
import select
import socket
import struct
import sys

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)


def open_port(ifname):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((ifname, ETH_P_ALL))
    return s


def strip_tags(frame):
    # The kernel usually moves the outer tag into skb metadata before we see the frame, so some or
    # all of the tags may already be gone; remove whatever is still inline.
    while len(frame) >= 18 and struct.unpack_from("!H", frame, 12)[0] in VLAN_TPIDS:
        frame = frame[:12] + frame[16:]
    return frame


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--access", required=True)
    p.add_argument("--trunk", required=True)
    p.add_argument("--tag", action="append", required=True, help="TPID:VID in hex:decimal, e.g. 8100:42")
    p.add_argument("--ready-file")
    a = p.parse_args()
    tags = b""
    for t in a.tag:
        tpid, vid = t.split(":")
        tags += struct.pack("!HH", int(tpid, 16), int(vid) & 0x0FFF)
    acc, trk = open_port(a.access), open_port(a.trunk)
    if a.ready_file:
        with open(a.ready_file + ".tmp", "w") as f:
            f.write(f"{os.getpid()}\n")
        os.rename(a.ready_file + ".tmp", a.ready_file)
    while True:
        for s in select.select([acc, trk], [], [])[0]:
            try:
                frame, addr = s.recvfrom(65535)
            except OSError as e:  # e.g. ENETDOWN after a link/feature change: keep going
                print(f"vlan_switch: {e}", file=sys.stderr)
                continue
            if addr[2] == PACKET_OUTGOING:
                continue
            if s is acc:
                trk.send(frame[:12] + tags + frame[12:])
            else:
                acc.send(strip_tags(frame))


if __name__ == "__main__":
    sys.exit(main())
