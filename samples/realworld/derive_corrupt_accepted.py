#!/usr/bin/env python3
"""Derive a capture whose bytes were altered on the capture side only: invert one payload byte of one
data segment (the --nth segment with payload sent by --sender) and leave its TCP checksum as it was. In
the real exchange the receiver got the correct bytes and ACKed them; the capture now shows a segment with
a wrong checksum that the peer nevertheless acknowledged (as a capture corrupted in the capturing host,
its storage or an editing tool shows it). The script refuses a segment that the peer did not ACK or that
was retransmitted in the source.

  derive_corrupt_accepted.py SOURCE.pcap OUT.pcap --sender IP --nth N [--facts OUT.json]   (stdlib only)
"""
import argparse
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwpcap  # noqa: E402

MASK = 0xFFFFFFFF


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("source")
    ap.add_argument("out")
    ap.add_argument("--sender", required=True)
    ap.add_argument("--nth", type=int, required=True)
    ap.add_argument("--facts")
    a = ap.parse_args()
    hdr, e, recs = rwpcap.read(a.source)
    ds = [(r, rwpcap.decode(r.data)) for r in recs]
    data = [(r, d) for r, d in ds if d.get("src") == a.sender and d.get("plen", 0) > 0]
    r, d = data[a.nth - 1]
    assert rwpcap.tcp_checksum_status(r.data) == "valid", "the source segment's checksum is not valid"
    end = (d["seq"] + d["plen"]) & MASK
    ack = next((q for q, x in ds if q.no > r.no and x.get("src") == d["dst"] and x.get("flags", 0) & 0x10
                and ((x["ack"] - end) & MASK) < 0x80000000), None)
    assert ack is not None, "segment in frame %d was never ACKed" % r.no
    assert not any(x.get("src") == a.sender and x.get("seq") == d["seq"] and q.no != r.no for q, x in data), \
        "segment in frame %d was sent more than once" % r.no
    i = d["payload_off"] + d["plen"] - 1
    assert i < len(r.data), "payload not captured"
    old = r.data[i]
    r.data[i] ^= 0xFF
    assert rwpcap.tcp_checksum_status(r.data) == "wrong"
    rwpcap.write(a.out, hdr, e, recs)
    facts = {"derived_by": "derive_corrupt_accepted.py %s %s --sender %s --nth %d" % (
                 os.path.basename(a.source), os.path.basename(a.out), a.sender, a.nth),
             "source": os.path.basename(a.source),
             "source_sha256": hashlib.sha256(open(a.source, "rb").read()).hexdigest(),
             "edit": "last payload byte of frame %d inverted (0x%02x -> 0x%02x); TCP checksum left as it was" % (
                 r.no, old, r.data[i]),
             "frame": r.no, "seq_raw": d["seq"], "payload_len": d["plen"], "from": "%s:%d" % (d["src"], d["sport"]),
             "to": "%s:%d" % (d["dst"], d["dport"]), "first_ack_covering_it_frame": ack.no,
             "tcp_checksum_field": "0x%04x" % d["tcp_csum"], "correct_checksum_for_new_bytes": "0x%04x" % rwpcap.tcp_checksum(r.data),
             "frames": len(recs), "frames_changed": 1}
    if a.facts:
        with open(a.facts, "w") as f:
            json.dump(facts, f, indent=2, sort_keys=True)
            f.write("\n")
    print("derive_corrupt_accepted: frame %d (seq %d, %d bytes) edited; ACKed by frame %d" % (r.no, d["seq"], d["plen"], ack.no))


if __name__ == "__main__":
    main()
