#!/usr/bin/env python3
"""Derive an edge-case capture: zero the IPv4 header checksum of every frame one host sent, as Windows and
macOS captures taken on a host with checksum offload show it (the stack leaves the field 0 for the NIC,
and the capture sees the frame before the NIC fills it in). Linux cannot produce this itself: it always
fills the IPv4 header checksum in software. Nothing else is changed (the TCP checksums stay as they
were: partial, when the source capture was taken with TX offload on).

  derive_ipv4_zero.py SOURCE.pcap OUT.pcap --sender IP [--facts OUT.json]      (stdlib only)
"""
import argparse
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwpcap  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("source")
    ap.add_argument("out")
    ap.add_argument("--sender", required=True)
    ap.add_argument("--facts")
    a = ap.parse_args()
    hdr, e, recs = rwpcap.read(a.source)
    changed = []
    for r in recs:
        d = rwpcap.decode(r.data)
        if d.get("src") == a.sender:
            r.data[d["ip_off"] + 10:d["ip_off"] + 12] = b"\0\0"
            changed.append(r.no)
    rwpcap.write(a.out, hdr, e, recs)
    facts = {"derived_by": "derive_ipv4_zero.py %s %s --sender %s" % (os.path.basename(a.source),
                                                                         os.path.basename(a.out), a.sender),
             "source": os.path.basename(a.source),
             "source_sha256": hashlib.sha256(open(a.source, "rb").read()).hexdigest(),
             "edit": "IPv4 header checksum set to 0x0000 in every frame whose IPv4 source is %s; nothing else" % a.sender,
             "frames": len(recs), "frames_changed": len(changed), "changed_frames": changed}
    if a.facts:
        with open(a.facts, "w") as f:
            json.dump(facts, f, indent=2, sort_keys=True)
            f.write("\n")
    print("derive_ipv4_zero: %d of %d frames changed" % (len(changed), len(recs)))


if __name__ == "__main__":
    main()
