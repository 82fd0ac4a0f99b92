#!/usr/bin/env python3
"""Derive a rewritten capture: replace IPv4 addresses (as anonymisers and capture-rewriting scripts do)
WITHOUT fixing any checksum. The IPv4 header checksum and the TCP checksum (whose pseudo-header holds
the addresses) are then stale on every frame, in both directions. Nothing else is changed.

  derive_rewritten.py SOURCE.pcap OUT.pcap --map OLD=NEW [--map OLD=NEW ...] [--facts OUT.json]   (stdlib only)
"""
import argparse
import hashlib
import json
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwpcap  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("source")
    ap.add_argument("out")
    ap.add_argument("--map", action="append", required=True)
    ap.add_argument("--facts")
    a = ap.parse_args()
    m = {socket.inet_aton(k): socket.inet_aton(v) for k, v in (x.split("=") for x in a.map)}
    hdr, e, recs = rwpcap.read(a.source)
    changed = 0
    for r in recs:
        d = rwpcap.decode(r.data)
        if "ip_off" not in d:
            continue
        o = d["ip_off"]
        hit = False
        for off in (o + 12, o + 16):
            old = bytes(r.data[off:off + 4])
            if old in m:
                r.data[off:off + 4] = m[old]
                hit = True
        changed += hit
    rwpcap.write(a.out, hdr, e, recs)
    facts = {"derived_by": "derive_rewritten.py %s %s %s" % (os.path.basename(a.source), os.path.basename(a.out),
                                                            " ".join("--map " + x for x in a.map)),
             "source": os.path.basename(a.source),
             "source_sha256": hashlib.sha256(open(a.source, "rb").read()).hexdigest(),
             "edit": "IPv4 source/destination addresses replaced (%s); no checksum updated" % ", ".join(a.map),
             "address_map": dict(x.split("=") for x in a.map), "frames": len(recs), "frames_changed": changed}
    if a.facts:
        with open(a.facts, "w") as f:
            json.dump(facts, f, indent=2, sort_keys=True)
            f.write("\n")
    print("derive_rewritten: %d of %d frames changed" % (changed, len(recs)))


if __name__ == "__main__":
    main()
