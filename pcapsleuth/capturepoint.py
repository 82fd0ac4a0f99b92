"""Where was a capture taken? Which end of a TCP connection sits at the capture point.

An expert reads it off three things, and so does this module:

* **TTLs.** A host's own packets leave it with the initial TTL of its stack (64 Linux/macOS, 128
  Windows, 255 network gear); every router on the way takes one off. When one side's packets carry
  an initial TTL and the other side's do not, the first side is on the capturing link and the other
  is at least one router away. A side whose TTL is not an initial one cannot be at the capture
  point.
* **Turnaround in the handshake.** Seen at the client, SYN -> SYN-ACK is a whole round trip while
  SYN-ACK -> ACK is the client's own stack answering (microseconds); seen at the server it is the
  other way round. The side that answers clearly faster (at least :data:`RATIO` times, and within
  :data:`LOCAL_TURNAROUND_NS`) is the capturing host or on its link.
* **Checksum offload.** Unfilled checksums (partial, or zero) are written by the sending host's own
  stack for its NIC to complete: only the capturing host's outgoing frames carry them.

A side is named only when the evidence is clear: at least one of these says so and none says
otherwise. A side whose own data has holes in this capture (segments the capture never saw: a
later segment jumped ahead, a retransmission filled a hole, or the peer acknowledged data never
seen) is not named either: whatever the reason (capture drops, another path), this capture did not
see everything it sent. Otherwise the capture point is unknown, and nothing is inferred from it.

What follows from it (``pcapsleuth.anomalies``): at the sender's own capture nothing sits between
the sending stack and the capture, so a segment below the sender's highest sequence number is a
retransmission, never reordering, and no segment can be lost before the capture point.
"""

from __future__ import annotations

from typing import Any

from . import tcpanalysis as ta
from .tracker import Connection

__all__ = ["INITIAL_TTLS", "LOCAL_TURNAROUND_NS", "RATIO", "at_capture", "capture_point"]

#: The initial TTLs (IPv4) / hop limits (IPv6) stacks use.
INITIAL_TTLS = frozenset({64, 128, 255})
#: A stack answers a SYN-ACK within this (the ACK is sent from the softirq that received it).
LOCAL_TURNAROUND_NS = 1_000_000
#: ... and clearly quicker than the other side's answer, including the path: this many times.
RATIO = 2


def capture_point(c: Connection) -> dict[str, Any] | None:
    """The side of ``c`` at the capture point, with the evidence, or None when it is not clear.

    Returns ``{"orig": bool, "host": addr, "evidence": [text, ...]}``: ``orig`` True when the
    originator is the capturing host (or on its link)."""
    if c.proto != "tcp":
        return None
    votes: dict[bool, list[str]] = {True: [], False: []}
    against: set[bool] = set()
    o, r = c.orig, c.resp
    ot, rt = o.first_ttl, r.first_ttl
    if ot is not None and rt is not None:
        o_init, r_init = ot in INITIAL_TTLS, rt in INITIAL_TTLS
        if o_init and not r_init:
            votes[True].append(f"TTL: {o.addr}'s packets carry the initial TTL {ot}, {r.addr}'s {rt} "
                               f"(at least one router away)")
            against.add(False)
        elif r_init and not o_init:
            votes[False].append(f"TTL: {r.addr}'s packets carry the initial TTL {rt}, {o.addr}'s {ot} "
                                f"(at least one router away)")
            against.add(True)
        elif not o_init and not r_init:
            against.update((True, False))  # both routed: the capture is somewhere in the middle
    elif ot is not None and ot not in INITIAL_TTLS:
        against.add(True)
    elif rt is not None and rt not in INITIAL_TTLS:
        against.add(False)
    syn, synack, ack = c.syn_ts, c.synack_ts, c.ack_ts
    if syn is not None and synack is not None and ack is not None and syn <= synack <= ack:
        resp_turn, orig_turn = synack - syn, ack - synack  # as seen here: answer + path beyond
        if orig_turn <= LOCAL_TURNAROUND_NS and orig_turn * RATIO <= resp_turn:
            votes[True].append(f"turnaround: {o.addr} answered the SYN-ACK {orig_turn / 1e3:.0f} µs after it "
                               f"was captured, the SYN-ACK came {resp_turn / 1e3:.0f} µs after the SYN")
        elif resp_turn <= LOCAL_TURNAROUND_NS and resp_turn * RATIO <= orig_turn:
            votes[False].append(f"turnaround: {r.addr} answered the SYN {resp_turn / 1e3:.0f} µs after it "
                                f"was captured, the ACK came {orig_turn / 1e3:.0f} µs after the SYN-ACK")
    if o.offloaded_checksums and not r.offloaded_checksums:
        votes[True].append(f"checksum offload: {o.offloaded_checksums} of {o.addr}'s frames carry unfilled "
                           f"checksums, written by its own stack")
    elif r.offloaded_checksums and not o.offloaded_checksums:
        votes[False].append(f"checksum offload: {r.offloaded_checksums} of {r.addr}'s frames carry unfilled "
                            f"checksums, written by its own stack")
    counts = c.event_counts
    for side in (True, False):
        if counts.get((ta.LOST_PACKET, side)) or counts.get((ta.LOST_UPSTREAM, side)) \
                or counts.get((ta.ACK_LOST_PACKET, not side)):
            against.add(side)
    for side in (True, False):
        if votes[side] and not votes[not side] and side not in against:
            return {"orig": side, "host": (o if side else r).addr, "evidence": votes[side]}
    return None


def at_capture(c: Connection, orig: bool) -> dict[str, Any] | None:
    """``capture_point(c)`` when the ``orig`` side (True: the originator) is the one at the
    capture point, else None."""
    cp = capture_point(c)
    return cp if cp is not None and cp["orig"] == orig else None
