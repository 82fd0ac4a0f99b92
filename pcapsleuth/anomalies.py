"""The TCP anomaly catalogue: what Wireshark, Zeek and Suricata flag, judged per connection.

The per-segment facts come from :mod:`pcapsleuth.tcpanalysis` (``conn.events``, exact counts in
``conn.event_counts``) and from the tracker's Zeek-style weirds (``conn.weirds``). Here they become
findings, aggregated the way an expert reads them: **one finding per connection and pattern**, with
counts, the first and the worst frame, and what it means for *this* connection. Patterns that only
make sense across connections (scans, SYN floods, reset storms) are judged over the capture.

Per-connection detectors (:data:`PER_CONNECTION`) run as each connection is handed to
:class:`pcapsleuth.detectors.Detection`; the cross-connection ones are accumulators
(:func:`accumulators`) that keep counts, extremes and packed connection numbers, and judge at
the end.

Titles, severities, descriptions and suppression rules live in ``catalog.json``.
"""

from __future__ import annotations

import statistics
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from . import tcpanalysis as ta
from .capturepoint import at_capture
from .detectors import (
    _SEEN_HIGH,
    _SEEN_LOW,
    FirstFrames,
    Indexes,
    Names,
    Pending,
    Smallest,
    _bits,
    _ep_str,
    _fmt_s,
    _from,
    _resp_is_low,
    _sec,
    _Succ,
    answerer_state,
    time_wait_of,
)
from .findings import Finding
from .packet import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN
from .tracker import BAD_SEGMENTS, BAD_SEGMENTS_JUDGED, ESTAB_S, STORM_THRESH, Connection, uid_of

__all__ = ["PER_CONNECTION", "Accumulator", "accumulators", "syn_in_time_wait", "zero_window",
           "zero_window_needs_end"]

#: Frames listed per finding (the rest are counted).
FRAMES_LISTED = 20
_RETRANS = ta.RETRANSMISSION | ta.FAST_RETRANSMISSION | ta.SPURIOUS_RETRANSMISSION

Event = tuple[int, int, bool, int, int, int, int, int]


def _ep(c: Connection, orig: bool) -> str:
    e = c.orig if orig else c.resp
    return _ep_str(e.addr, e.port)


def _count(c: Connection, bits: int, orig: bool | None = None) -> int:
    return sum(n for (b, o), n in c.event_counts.items() if b & bits and (orig is None or o == orig))


def _events(c: Connection, bits: int, orig: bool | None = None) -> list[Event]:
    """Analysed segments with any of ``bits`` (never SYNs; never duplicate captures of a datagram)."""
    return [e for e in c.events if e[3] & bits and (orig is None or e[2] == orig) and not e[6] & TCP_SYN
            and not (bits & _RETRANS and e[3] & ta.DUPLICATE_FRAME)]


def _dropped(c: Connection, bits: int, orig: bool | None = None, also: int = 0, without: int = 0) -> list[int]:
    """What :func:`_events` would add if ``c.events`` were not capped (the tracker counts the
    segments it does not keep: ``Connection.overflow``): [segments, payload bytes, sum of
    ``extra``, largest ``extra``, its frame, segments whose ``extra`` is 1]. ``also``: only
    segments with one of these bits too; ``without``: none with one of these."""
    out = [0, 0, 0, 0, 0, 0]
    over = c.overflow
    if not over:
        return out
    for key, agg in over.items():
        if key[0] != "event":
            continue
        _, fl, o, syn = key
        if (not fl & bits or (orig is not None and o != orig) or syn or (also and not fl & also) or fl & without
                or (bits & _RETRANS and fl & ta.DUPLICATE_FRAME)):
            continue
        out[0] += agg[0]
        out[1] += agg[1]
        out[2] += agg[2]
        if agg[3] > out[3] or not out[4]:
            out[3], out[4] = agg[3], agg[4]
        out[5] += agg[5]
    return out


def _midstream_skip(c: Connection) -> int:
    """Frames up to this one may show capture-start artefacts (connections picked up mid-stream)."""
    if c.syn_frame is not None or c.synack_frame is not None or not c.evidence:
        return 0
    return c.evidence[min(3, len(c.evidence)) - 1].no


def _frames(evs: Iterable[Event], extra: Iterable[int] = ()) -> list[int]:
    out = list(extra)
    for e in evs:
        if len(out) >= FRAMES_LISTED:
            break
        out.append(e[0])
    return out


def _finding(fid: str, c: Connection, summary: str, explanation: str, frames: list[int], evidence: dict[str, Any],
             first_ts: int | None = None, last_ts: int | None = None, severity: str = "") -> Finding:
    evidence.setdefault("connection", {"uid": c.uid, "orig": _ep(c, True), "resp": _ep(c, False)})
    return Finding(fid, summary, explanation, frames, [c.uid], first_ts if first_ts is not None else c.first_ts,
                   last_ts if last_ts is not None else c.last_ts, evidence, severity=severity)


# -- data transfer ---------------------------------------------------------------------------

def _retransmissions(c: Connection) -> list[Finding]:
    out: list[Finding] = []
    if c.proto != "tcp" or not c.event_counts:
        return out
    for orig in (True, False):
        n = _count(c, _RETRANS, orig)
        if not n and not _count(c, ta.OUT_OF_ORDER, orig):
            continue
        out.extend(_retrans_findings(c, orig, n))
    return out


#: data.retransmission is a warning (besides a timeout of 1 s) when 1% or more were resent and they
#: were this many, or cost this much (the union of the waits since the previous transmissions).
RETRANS_WARN_COUNT = 3
RETRANS_WARN_COST_S = 0.2


def _resent_out_of_order(c: Connection, orig: bool) -> int:
    """Out-of-order segments (Wireshark's reading) all of whose bytes the capture had seen before."""
    return (len(_events(c, ta.SECOND_COPY, orig))
            + _dropped(c, ta.SECOND_COPY, orig)[0])


def _first_arrivals(c: Connection, orig: bool) -> int:
    """Out-of-order segments that filled a hole the capture never saw (late first arrivals)."""
    return (sum(1 for e in _events(c, ta.OUT_OF_ORDER, orig) if e[3] & ta.LOST_UPSTREAM)
            + _dropped(c, ta.OUT_OF_ORDER, orig, also=ta.LOST_UPSTREAM)[0])


def _wait_union(evs: list[Event]) -> int:
    """The time (ns) covered by the timeouts of ``evs`` (each ran from the previous transmission of
    its data to the retransmission, ``e[1] - e[4]`` .. ``e[1]``), overlaps counted once."""
    total, end = 0, None
    for start, stop in sorted((e[1] - e[4], e[1]) for e in evs):
        if end is None or start >= end:
            total += stop - start
            end = stop
        elif stop > end:
            total += stop - end
            end = stop
    return total


def _retrans_findings(c: Connection, orig: bool, n: int) -> list[Finding]:
    ep = c.orig if orig else c.resp
    who, peer = _ep(c, orig), _ep(c, not orig)
    # At the sender's own capture nothing can reorder its segments or lose them before the
    # capture: a segment below its highest sequence number is a retransmission (pcapsleuth.capturepoint).
    at_sender = at_capture(c, orig)
    bits = _RETRANS | ta.OUT_OF_ORDER
    stall = _receiver_stall(c, not orig)
    # Tshark's out-of-order segments whose data this capture had already seen arrived a second time:
    # retransmissions, wherever the capture was taken; at the sender's own capture, all of them.
    evs = [e for e in _events(c, bits, orig)
           if not e[3] & ta.OUT_OF_ORDER or at_sender or e[3] & ta.SECOND_COPY]
    tail: list[Event] = []
    if stall is not None:  # those after the receiver's last word are told by data.receiver_stalled
        tail = [e for e in evs if e[1] > stall["silent_since"]]
        evs = [e for e in evs if e[1] <= stall["silent_since"]]
    reordered = (len(_events(c, ta.OUT_OF_ORDER, orig)) + _dropped(c, ta.OUT_OF_ORDER, orig)[0] if at_sender
                 else _resent_out_of_order(c, orig))
    fast = _count(c, ta.FAST_RETRANSMISSION, orig) - sum(1 for e in tail if e[3] & ta.FAST_RETRANSMISSION)
    spurious = _count(c, ta.SPURIOUS_RETRANSMISSION, orig) - sum(1 for e in tail if e[3] & ta.SPURIOUS_RETRANSMISSION)
    rto = _count(c, ta.RTO, orig) - sum(1 for e in tail if e[3] & ta.RTO)
    n = n + reordered - len(tail)
    if n <= 0 or not evs:  # (counted on SYN segments only, which _events leaves out: no frame to show)
        return []
    early = max(0, _count(c, ta.RETRANSMISSION, orig) - sum(1 for e in tail if e[3] & ta.RETRANSMISSION)
                - rto) + reordered
    # Resends the receiver reported back as duplicates (D-SACK, RFC 2883): the original had arrived.
    # A timeout among them still cost its wait and stays a timeout; the others are spurious.
    proven = c.ws.dsacked if c.ws is not None and c.ws.dsacked else set()
    dsack = [e for e in evs if e[0] in proven and not e[3] & (ta.SPURIOUS_RETRANSMISSION | ta.RTO)]
    if dsack:
        d_fast = sum(1 for e in dsack if e[3] & ta.FAST_RETRANSMISSION)
        fast -= d_fast
        early = max(0, early - (len(dsack) - d_fast))
    dsacked = len(dsack)
    acked_spurious = spurious
    spurious += dsacked
    # (first arrivals of out-of-order data filled holes too, but are no retransmissions: not counted)
    upstream = 0 if at_sender else max(0, _count(c, ta.LOST_UPSTREAM, orig) - _first_arrivals(c, orig))
    limited = _count(c, ta.RWND_LIMITED, orig) - sum(1 for e in tail if e[3] & ta.RWND_LIMITED)
    # The timer expiries: segments resent right behind one (a burst after the same timeout) add no
    # timeout of their own.
    rto_evs = [e for e in evs if e[3] & ta.RTO and e[4] >= ta.RTO_SILENCE_NS]
    timeouts = [_sec(e[4]) for e in rto_evs]
    worst = max(rto_evs, key=lambda e: e[4]) if rto_evs else evs[0] if evs else None
    worst_frame = worst[0] if worst else None
    # Segments beyond the events kept count too: the bytes, the longest and the total wait.
    more, more_rto = _dropped(c, _RETRANS, orig), _dropped(c, _RETRANS, orig, also=ta.RTO)
    longest = max(timeouts, default=0.0)
    if more_rto[0] and _sec(more_rto[3]) > longest:
        longest, worst_frame = _sec(more_rto[3]), more_rto[4]
    # Each timeout runs from the previous transmission of its data: the waits of segments resent
    # by the same timer overlap, and are counted once.
    waited = _sec(_wait_union(rto_evs)) + _sec(more_rto[2])
    n_timeouts = len(timeouts) + more_rto[0]
    segments = max(ep.data_pkts + ep.fin_cnt, n)  # (every retransmission is one of the segments sent)
    rate = n / max(segments, 1)
    rbytes = sum(e[7] for e in evs) + more[1]
    downstream = max(0, n - spurious - upstream)
    # Originals captured with a bad TCP checksum that the sender resent before any ACK covered them
    # (tracker.BAD_SEGMENTS, verdict "resent", the resend later in time): they arrived corrupted and
    # the receiver discarded them; not lost after the capture point.
    shown = {e[0] for e in evs}
    bad_segs = c.overflow.get(BAD_SEGMENTS, []) if c.overflow else []
    discarded = 0 if at_sender else min(downstream, sum(
        1 for x in bad_segs
        if x[6] == "resent" and x[7] in shown and x[8] >= x[1] and (x[2], x[3]) == (ep.addr, ep.port)))
    downstream -= discarded
    out: list[Finding] = []
    if n - spurious > 0:
        parts = []
        if rto:
            parts.append(f"{rto} after a retransmission timeout (longest {_fmt_s(longest)})" if timeouts
                         else f"{rto} after a retransmission timeout")
        if fast:
            parts.append(f"{fast} fast (after duplicate ACKs)")
        if early:
            parts.append(f"{early} early (SACK/RACK loss recovery, no timeout)")
        if acked_spurious:
            parts.append(f"{acked_spurious} spurious (already acknowledged)")
        if dsacked:
            parts.append(f"{dsacked} no loss repair ({peer} had the original: D-SACK; or a FIN repeated after its "
                         f"ACK or sooner than any timer)")
        if at_sender:
            where = (" Captured at the sender (on its host or its link, see the explanation): every original "
                     "was captured, so each was lost beyond it (or its ACK was late); nothing is lost or "
                     "reordered between a sender and its own capture"
                     + (f" ({reordered} that tshark calls out-of-order are retransmissions here)" if reordered else "")
                     + ".")
        else:
            where = ((f" {discarded} originals were captured here with a bad TCP checksum: they arrived "
                      f"corrupted and {peer} discarded them (see capture.bad_checksum)." if discarded else "")
                     + (f" {downstream} originals were captured here, so they were lost after this capture point "
                        f"(or their ACKs were); {upstream} never reached the capture (lost before it)."
                        if downstream or upstream or not discarded else "")
                     + (f" ({reordered} that tshark calls out-of-order carried data captured before: "
                        f"retransmissions.)" if reordered else ""))
        if limited:
            where += (f" {limited} were sent while {peer}'s advertised window was below "
                      f"{ta.RWND_SMALL_SEGMENTS} segments: {peer}'s receive window set the pace (a receiver "
                      f"that cannot open its window holds its ACKs), not the path.")
        summary = (f"{who} retransmitted {n} of its {segments} data and FIN segments to {peer} ({rate:.1%}): "
                   + ", ".join(parts) + "." + where)
        explanation = (
            f"Retransmissions mean the sender {who} did not get an acknowledgment in time. Where the loss happened "
            f"is told by the capture point: a retransmission whose original was captured was lost downstream of "
            f"the capture (towards {peer}) or its ACK was lost on the way back; one that fills a hole the capture "
            f"never saw was lost upstream (between {who} and the capture point). Fast retransmissions cost about "
            f"one round trip; timeouts cost at least 200 ms each on Linux and double with every repeat. "
            f"Check the path: interface drops (`ip -s link`, `ethtool -S`), `nstat -az TcpRetransSegs "
            f"TcpExtTCPLostRetransmit` on {who}, and capture on both sides to locate the drop "
            f"(`pcapsleuth analyze a.pcap b.pcap`)."
            + (f" This capture was taken at {who} (" + "; ".join(at_sender["evidence"]) + ")."
               if at_sender else ""))
        # Graded by what they cost: a retransmission delays the data by the time since its previous
        # transmission. A few resent within microseconds (a stack's double FIN, a capture artefact)
        # cost nothing a user could see.
        cost = _sec(_wait_union(evs))
        sev = ("warning" if (rate >= 0.01 and (n - spurious >= RETRANS_WARN_COUNT or cost >= RETRANS_WARN_COST_S))
               or (timeouts and longest >= 1.0) else "notice")
        if limited == n and sev == "warning" and not longest >= 1.0:
            sev = "notice"  # all of them paced by the receiver's window: told by its window findings
        ev = {"sender": who, "receiver": peer, "retransmissions": n, "segments": segments,
              "rate": round(rate, 6), "retransmitted_bytes": rbytes, "timeouts": rto, "fast": fast, "early": early,
              "spurious": spurious, "lost_after_capture_point": downstream, "lost_before_capture_point": upstream,
              "longest_timeout_s": longest if timeouts else None,
              "worst_frame": worst_frame, "first_frame": evs[0][0] if evs else None,
              "events_listed": len(evs), "receiver_window_limited": limited, "dsacked": dsacked,
              "out_of_order_resent": reordered, "cost_s": cost}
        if discarded:
            ev["discarded_corrupted"] = discarded
        if at_sender:
            ev["capture_point"] = at_sender
            ev["reordered_at_sender_counted"] = reordered
        frames = _frames(evs, [worst_frame] if worst_frame else [])
        out.append(_finding("data.retransmission", c, summary, explanation, frames, ev,
                            evs[0][1] if evs else None, evs[-1][1] if evs else None, sev))
        if fast:
            fevs = [e for e in evs if e[3] & ta.FAST_RETRANSMISSION]
            out.append(_finding(
                "data.fast_retransmission", c,
                f"{who} repaired {fast} loss(es) by fast retransmission after duplicate ACKs from {peer}.",
                "Fast retransmission (RFC 5681) resends a segment after the receiver repeats the same ACK "
                "(three duplicate ACKs, or SACK blocks): the loss is repaired within about one round trip "
                "without a timeout. A few are normal on busy paths; many point at congestion or a lossy link.",
                _frames(fevs), {"sender": who, "fast_retransmissions": fast},
                fevs[0][1] if fevs else None, severity="info"))
        if timeouts and (longest >= 1.0 or n_timeouts >= 2):
            series = timeouts[:FRAMES_LISTED]
            out.append(_finding(
                "data.rto", c,
                f"{who} hit {n_timeouts} retransmission timeout(s) sending to {peer}"
                + (f" ({rto} segments resent after them)" if rto != n_timeouts else "") + ": "
                + ", ".join(_fmt_s(t) for t in series[:8]) + (" ..." if n_timeouts > 8 else "")
                + f" (each from the previous transmission of its data; longest {_fmt_s(longest)}, "
                f"{_fmt_s(waited)} spent waiting).",
                "A retransmission timeout (RTO) fires when no ACK arrives at all: nothing came back from the peer "
                "for the whole timer. Each repeat doubles the timer (exponential back-off: 0.2, 0.4, 0.8 s ...), "
                "so the application sees stalls that grow. Timeouts without duplicate ACKs mean the whole window "
                "or the path was lost, not a single segment. Check `ss -ti` on the sender (rto, retrans, "
                "backoff) and the path for blackholes (MTU: a full-size segment that never arrives, while small "
                "ones do, points at PMTU discovery being blocked).",
                _frames(rto_evs, [worst_frame] if worst_frame else []),
                {"sender": who, "timeouts": rto, "timer_expiries": n_timeouts, "timeouts_s": series,
                 "longest_s": longest,
                 "total_wait_s": round(waited, 6), "worst_frame": worst_frame},
                rto_evs[0][1], rto_evs[-1][1], "warning" if longest >= 1.0 else "notice"))
    if spurious:
        sevs = [e for e in evs if e[3] & ta.SPURIOUS_RETRANSMISSION or e in dsack]
        out.append(_finding(
            "data.spurious_retransmission", c,
            (f"{who} resent {acked_spurious} segment(s) that {peer} had already acknowledged" if acked_spurious
             else f"{who} resent {dsacked} segment(s) that {peer} already had")
            + (f" ({dsacked} reported back by {peer} as duplicates: D-SACK)" if dsacked and acked_spurious
               else " (reported back as duplicates: D-SACK)" if dsacked else "") + ".",
            f"A spurious retransmission carries data already covered by an ACK the capture saw. Either {who}'s "
            f"timer fired too early (RTT spike, delayed ACKs), or the ACKs were lost or delayed on their way "
            f"from the capture point to {who}. Frequent spurious retransmissions waste bandwidth and shrink the "
            f"congestion window for nothing; Linux detects them with F-RTO/DSACK (`nstat -az "
            f"TcpExtTCPSpuriousRTOs TcpExtTCPDSACKRecv`).",
            _frames(sevs), {"sender": who, "spurious": spurious, "dsacked": dsacked}, sevs[0][1] if sevs else None,
            # (a duplicate the receiver discarded and reported: no harm, a fact)
            severity="info" if dsacked and not acked_spurious else ""))
    return out


def _out_of_order(c: Connection) -> list[Finding]:
    out: list[Finding] = []
    for orig in (True, False):
        n = _count(c, ta.OUT_OF_ORDER, orig) if c.event_counts else 0
        if not n:
            continue
        evs = _events(c, ta.OUT_OF_ORDER, orig)
        if not evs:  # counted only on SYN segments, which _events leaves out: no frame to show
            continue
        if at_capture(c, orig):  # nothing reorders between a stack and its own capture:
            continue  # data.retransmission counts them
        # Those whose bytes were all captured before are second copies: data.retransmission counts them.
        evs = [e for e in evs if not e[3] & ta.SECOND_COPY]
        n -= _count(c, ta.SECOND_COPY, orig)
        if not evs:
            continue
        who = _ep(c, orig)
        out.append(_finding(
            "data.out_of_order", c,
            f"{n} segment(s) from {who} arrived out of order at the capture point.",
            "A segment below the highest sequence number seen, arriving within one round trip of it, was "
            "reordered on the way to the capture point (parallel links, ECMP, bonding, a busy middlebox) or "
            "was a quick repair of a segment lost before the capture. Reordering beyond three segments "
            "triggers needless fast retransmissions; Linux adapts its reordering threshold "
            "(`nstat -az TcpExtTCPSACKReorder`).",
            _frames(evs), {"sender": who, "out_of_order": n,
                           "filled_unseen_holes": sum(1 for e in evs if e[3] & ta.LOST_UPSTREAM)
                           + _dropped(c, ta.OUT_OF_ORDER, orig, also=ta.LOST_UPSTREAM)[0]},
            evs[0][1] if evs else None))
    return out


def _capture_gaps(c: Connection) -> list[Finding]:
    """"Previous segment not captured" and "ACKed segment never seen", told apart by what followed."""
    out: list[Finding] = []
    if c.proto != "tcp" or not c.event_counts:
        return out
    skip = _midstream_skip(c)
    for orig in (True, False):
        who, peer = _ep(c, orig), _ep(c, not orig)
        lost = [e for e in _events(c, ta.LOST_PACKET, orig) if e[0] > skip]
        if lost:
            repaired = _count(c, ta.LOST_UPSTREAM, orig)
            holes = len(lost) + _dropped(c, ta.LOST_PACKET, orig)[0]  # (the skipped first frames are kept)
            out.append(_finding(
                "data.lost_segment", c,
                f"{holes} time(s) data from {who} jumped ahead of what the capture had seen (previous "
                f"segment not captured); {repaired} hole(s) were later filled by retransmissions.",
                f"A hole in {who}'s sequence numbers means segments were sent that this capture point never "
                f"saw. If {who} retransmitted them later, they were lost on the path before the capture point "
                f"(upstream loss). If it never did and {peer} acknowledged them anyway, the capture itself "
                f"dropped them (sniffer overload: check the capture tool's 'dropped by kernel' count) or the "
                f"packets took another path (asymmetric routing, bonding).",
                _frames(lost), {"sender": who, "holes": holes, "filled_by_retransmission": repaired},
                lost[0][1], lost[-1][1]))
        # (The flag is on the ACK: ``who`` sent the ACKs, of data that ``peer`` sent.)
        # The handshake's ACK (exactly the SYN-ACK's ISN + 1, the SYN-ACK captured: tracker's
        # ack_frame) acknowledges nothing unseen; Wireshark flags it when a SYN-ACK with a new ISN
        # continued the conversation of the tuple's earlier connection (that one's state leaks in).
        unseen = [e for e in _events(c, ta.ACK_LOST_PACKET, orig) if e[0] > skip
                  and not (orig and e[0] == c.ack_frame)]
        if unseen:
            acks = len(unseen) + _dropped(c, ta.ACK_LOST_PACKET, orig)[0]
            who, peer = peer, who  # the data's sender and the acknowledging receiver
            out.append(_finding(
                "data.ack_unseen_segment", c,
                f"{peer} acknowledged data from {who} that this capture never saw ({acks} time(s)).",
                f"An ACK covering sequence numbers the capture never saw proves {who} sent them and {peer} "
                f"received them: the capture point missed them. Either the capture dropped packets "
                f"(overload, buffer settings: tcpdump -B; a short snapshot length cuts bytes off frames, it never "
                f"loses a whole segment) or those packets took a path that "
                f"bypasses the capture point (asymmetric routing, multiple uplinks). It is not network loss.",
                _frames(unseen), {"receiver": peer, "sender": who, "acks_of_unseen_data": acks},
                unseen[0][1], unseen[-1][1]))
    return out


def _duplicate_acks(c: Connection) -> list[Finding]:
    out: list[Finding] = []
    for orig in (True, False):
        n = _count(c, ta.DUPLICATE_ACK, orig) if c.event_counts else 0
        if n < 3:
            continue
        evs = _events(c, ta.DUPLICATE_ACK, orig)
        runs = [e[4] for i, e in enumerate(evs) if i + 1 == len(evs) or evs[i + 1][4] <= e[4]]
        more = _dropped(c, ta.DUPLICATE_ACK, orig)
        n_runs = len(runs)
        if more[0]:  # a run goes on past the events kept: count the runs by their first duplicate ACK
            n_runs = sum(1 for e in evs if e[4] == 1) + more[5]
            runs.append(more[3])
        who = _ep(c, orig)
        longest = max(runs) if runs else n
        out.append(_finding(
            "data.duplicate_ack", c,
            f"{who} sent {n} duplicate ACKs in {n_runs} run(s) (longest run {longest}).",
            f"A duplicate ACK repeats the last acknowledgment: {who} received data beyond a hole and keeps "
            f"asking for the missing segment. Three in a row trigger a fast retransmission. Long runs mean "
            f"the sender kept sending while one segment was missing (a large window over a lossy path).",
            _frames(evs), {"receiver": who, "duplicate_acks": n, "runs": n_runs, "longest_run": longest},
            evs[0][1] if evs else None, severity="info"))
    return out


# -- windows ---------------------------------------------------------------------------------

def zero_window(c: Connection, capture_end: int) -> list[Finding]:
    """Zero windows per side; ``capture_end`` matters only for a window still closed at the end
    (:func:`zero_window_needs_end`)."""
    out: list[Finding] = []
    ws = c.ws
    if c.proto != "tcp" or ws is None or not c.events:  # every zero-window fact is an event
        return out
    for orig in (True, False):
        ep = c.orig if orig else c.resp
        d = ws.dirs(ep.addr, ep.port)[0]
        zw = _events(c, ta.ZERO_WINDOW, orig)
        probes = _events(c, ta.ZERO_WINDOW_PROBE | ta.ZWP_LINUX, not orig)
        if not zw:
            if probes:
                n_probes = len(probes) + _dropped(c, ta.ZERO_WINDOW_PROBE | ta.ZWP_LINUX, not orig)[0]
                out.append(_finding(
                    "data.zero_window_probe", c,
                    f"{_ep(c, not orig)} probed a zero window of {_ep(c, orig)} {n_probes} time(s).",
                    "Zero-window probes are sent while the receiver advertises no room; the capture does not "
                    "show the zero window itself (it began before the capture).",
                    _frames(probes), {"prober": _ep(c, not orig), "probes": n_probes}, probes[0][1]))
            continue
        episodes = list(d.zw_episodes)
        open_ep = d.zw_since
        durations = [_sec(e[3] - e[1]) for e in episodes]
        still = open_ep is not None
        if still:
            assert open_ep is not None
            durations.append(_sec(max(capture_end, c.last_ts) - open_ep[1]))
        longest = max(durations) if durations else 0.0
        total = round(sum(durations), 6)
        n_episodes = len(durations)
        if d.zw_more is not None:  # episodes beyond the 64 listed, counted by the analysis
            n_episodes += d.zw_more[0]
            total = round(total + _sec(d.zw_more[1]), 6)
            longest = max(longest, _sec(d.zw_more[2]))
        reader, writer = _ep(c, orig), _ep(c, not orig)
        n_probes = _count(c, ta.ZERO_WINDOW_PROBE | ta.ZWP_LINUX, not orig)
        linux = _count(c, ta.ZWP_LINUX, not orig)
        summary = (f"{reader} advertised a zero window {n_episodes} time(s): its application stopped "
                   f"reading, and {writer} had to stop sending for {_fmt_s(total)} in all (longest "
                   f"{_fmt_s(longest)}" + (", still closed when the capture ended" if still else "")
                   + f"); {n_probes} zero-window probe(s) from {writer}.")
        explanation = (
            f"A zero window means {reader}'s receive buffer is full: the kernel has data the application has "
            f"not read. The sender {writer} stops and probes the window with growing intervals until the "
            f"reader makes room (a window update). The cause is on {reader}'s side: a slow or blocked "
            f"consumer (a stuck thread, a full downstream queue, GC pauses) or a receive buffer too small "
            f"for the rate. On {reader}: `ss -tmi` shows Recv-Q (unread bytes) and rcv_space; check what the "
            f"reading process is doing. Linux probes with an empty segment one byte below the next sequence "
            f"number, which Wireshark labels a keep-alive: here they are counted as probes"
            + (f" ({linux} of them)." if linux else "."))
        # Graded by what it cost (catalog.json): a stall a user notices is a warning, one that
        # recovered within milliseconds an anomaly without visible harm.
        still_s = durations[-1] if still else 0.0
        if (still and still_s >= ZW_ERROR_STILL_S) or longest >= ZW_ERROR_S:
            sev = "error"
        elif longest >= ZW_WARNING_LONGEST_S or total >= ZW_WARNING_TOTAL_S:
            sev = "warning"
        else:
            sev = "notice"
        stall = _receiver_stall(c, orig) if still else None
        if stall is not None:
            summary = summary[:-1] + (
                f"; then {reader} stopped answering altogether: {stall['unanswered']} probe(s) or "
                f"retransmission(s) from {writer} over the last {_fmt_s(stall['silent_s'])} got no reply. The "
                f"receiving application or host hung; nothing points at the network.")
            sev = "error"
        reopen = [e[2] for e in episodes]
        frames = [zw[0][0]] + [p[0] for p in probes[:8]] + reopen[:8]
        ev = {"reader": reader, "sender": writer, "zero_window_segments": _count(c, ta.ZERO_WINDOW, orig),
              "episodes": n_episodes, "stalled_s": total, "longest_s": longest, "still_closed_at_end": still,
              "probes": n_probes, "linux_style_probes": linux,
              **({"receiver_stopped_answering_s": stall["silent_s"], "unanswered_after": stall["unanswered"],
                  "fault": "receiver"} if stall is not None else {}),
              "episode_list": [{"start_frame": e[0], "reopen_frame": e[2], "seconds": _sec(e[3] - e[1]),
                                "probes": e[4]} for e in episodes[:FRAMES_LISTED]]}
        out.append(_finding("data.zero_window", c, summary, explanation, frames, ev, zw[0][1], None, sev))
    return out


#: Zero-window severity by impact (catalog.json, data.zero_window): error when the window was still
#: closed at the end for this long, or one stall lasted ZW_ERROR_S; warning when one stall lasted
#: ZW_WARNING_LONGEST_S (a pause a user notices) or they add up to ZW_WARNING_TOTAL_S; else notice.
ZW_ERROR_STILL_S = 1.0
ZW_ERROR_S = 10.0
ZW_WARNING_LONGEST_S = 0.2
ZW_WARNING_TOTAL_S = 1.0
#: A receiver stall: the receiver silent this long while the sender keeps trying.
STALL_SILENT_S = 1.0


def _receiver_stall(c: Connection, receiver_orig: bool) -> dict[str, Any] | None:
    """Did the receiving side (``receiver_orig``: the originator) hang? Its advertised window had
    shrunk below RWND_SMALL_SEGMENTS segments (zero windows, or a window its sender kept filling),
    then it stopped acknowledging altogether while the sender retransmitted or probed: a receiver
    fault (a stuck application, a hung appliance), not loss on the path."""
    ws = c.ws
    if c.proto != "tcp" or ws is None or not c.event_counts:
        return None
    rcv, snd = (c.orig, c.resp) if receiver_orig else (c.resp, c.orig)
    if not rcv.pkts or not rcv.last_ts or rcv.rsts or rcv.fins:  # (never sent: no silence to measure)
        return None
    silent_ns = snd.last_ts - rcv.last_ts
    if silent_ns < STALL_SILENT_S * 1e9:
        return None
    d_rcv, d_snd = ws.dirs(rcv.addr, rcv.port)
    if d_rcv.window is None:
        return None
    window = d_rcv.scaled(d_rcv.window)
    if window >= ta.RWND_SMALL_SEGMENTS * max(d_snd.max_seg, 536):
        return None
    limited = (_count(c, ta.ZERO_WINDOW, receiver_orig)
               + _count(c, ta.RWND_LIMITED | ta.WINDOW_FULL, not receiver_orig))
    if not limited:
        return None
    tail = [e for e in c.events if e[2] != receiver_orig and e[1] > rcv.last_ts
            and e[3] & (_RETRANS | ta.OUT_OF_ORDER | ta.KEEP_ALIVE | ta.ZERO_WINDOW_PROBE)]
    dropped = c.overflow.get(("tail", not receiver_orig)) if c.overflow else None
    n_tail = len(tail) + (dropped[1] if dropped is not None and dropped[0] == rcv.last_ts else 0)
    if n_tail < 2:
        return None
    return {"silent_since": rcv.last_ts, "silent_s": _sec(silent_ns), "tail": tail, "unanswered": n_tail,
            "window": window, "zero": d_rcv.zw_since is not None}


def zero_window_needs_end(c: Connection) -> bool:
    """Is a zero window still closed when ``c`` ended? Its stall is measured to the capture's end,
    known only at the end of the stream."""
    ws = c.ws
    if c.proto != "tcp" or ws is None or not c.events:
        return False
    for orig in (True, False):
        ep = c.orig if orig else c.resp
        if ws.dirs(ep.addr, ep.port)[0].zw_since is not None and _events(c, ta.ZERO_WINDOW, orig):
            return True
    return False


def _window_patterns(c: Connection) -> list[Finding]:
    out: list[Finding] = []
    if c.proto != "tcp" or not c.event_counts:
        return out
    for orig in (True, False):
        who, peer = _ep(c, orig), _ep(c, not orig)
        full = _events(c, ta.WINDOW_FULL, orig)
        if full:
            out.append(_finding(
                "data.window_full", c,
                f"{who} filled {peer}'s advertised receive window {_count(c, ta.WINDOW_FULL, orig)} time(s).",
                f"The sender {who} had more to send but reached the edge of the window {peer} offered: the "
                f"transfer is limited by the receiver (its buffer or its application), not by the network. "
                f"If throughput matters, check {peer}'s receive buffer (net.ipv4.tcp_rmem, SO_RCVBUF) and "
                f"window scaling.",
                _frames(full), {"sender": who, "receiver": peer, "window_full": _count(c, ta.WINDOW_FULL, orig)},
                full[0][1]))
        shrink = _events(c, ta.WINDOW_SHRINK, orig)
        if shrink:
            n_shrink = len(shrink) + _dropped(c, ta.WINDOW_SHRINK, orig)[0]
            out.append(_finding(
                "data.window_shrink", c,
                f"{who} shrank its advertised window {n_shrink} time(s): the right edge moved left by more than "
                f"the rounding of its window scale explains.",
                f"RFC 9293 discourages shrinking a window already offered: the sender may have data in flight "
                f"beyond the new edge, which {who} will then drop. Linux never shrinks the window (unless "
                f"net.ipv4.tcp_shrink_window=1); seeing it points at another stack, a middlebox rewriting "
                f"windows, or window-scale disagreement between the two ends.",
                _frames(shrink), {"advertiser": who, "shrinks": n_shrink}, shrink[0][1]))
        upd = _events(c, ta.WINDOW_UPDATE, orig)
        n_upd = len(upd) + _dropped(c, ta.WINDOW_UPDATE, orig)[0]
        if n_upd >= 3 and upd:
            out.append(_finding(
                "data.window_update", c,
                f"{who} sent {n_upd} pure window updates.",
                f"A window update re-advertises a larger window without new data: {who}'s application read "
                f"from a buffer that had been (nearly) full. Many of them mean the reader works in bursts.",
                _frames(upd), {"advertiser": who, "window_updates": n_upd}, upd[0][1], severity="info"))
    return out


def _keep_alive(c: Connection) -> list[Finding]:
    out: list[Finding] = []
    if c.proto != "tcp" or not c.event_counts:
        return out
    for orig in (True, False):
        ka = [e for e in _events(c, ta.KEEP_ALIVE, orig) if not e[3] & ta.ZWP_LINUX]
        if not ka:
            continue
        acks = [e for e in _events(c, ta.KEEP_ALIVE_ACK, not orig) if not e[3] & ta.ZWP_LINUX_ACK]
        n_ka = len(ka) + _dropped(c, ta.KEEP_ALIVE, orig, without=ta.ZWP_LINUX)[0]
        n_acks = len(acks) + _dropped(c, ta.KEEP_ALIVE_ACK, not orig, without=ta.ZWP_LINUX_ACK)[0]
        who, peer = _ep(c, orig), _ep(c, not orig)
        gaps = [_sec(b[1] - a[1]) for a, b in zip(ka, ka[1:], strict=False)]
        # A probe the peer sent anything after was answered (its ACK may carry a new window or
        # come with data, which Wireshark does not call a keep-alive ACK): only the probes after
        # the peer's last packet are unanswered.
        peer_last = (c.resp if orig else c.orig).last_ts
        trailing = sum(1 for e in ka if e[1] > peer_last)
        n_acks = min(n_ka, max(n_acks, n_ka - trailing))
        unanswered = n_ka - n_acks
        # Keep-alive timers run in whole seconds (TCP_KEEPINTVL >= 1 s): "probes" microseconds
        # apart are copies of one segment (mirrored VLANs) or a sender catching up, not a dead peer.
        timed = bool(gaps) and statistics.median(gaps) >= 0.5
        sev = "warning" if trailing >= 3 and unanswered >= 3 and timed else "info"
        summary = (f"{who} sent {n_ka} keep-alive probe(s) to {peer}"
                   + (f" every {_fmt_s(statistics.median(gaps))}" if gaps else "")
                   + f"; {n_acks} answered"
                   + (f", the last {unanswered} never (nothing came back from {peer} after them)" if sev == "warning"
                      else "") + ".")
        expl = (f"Keep-alives test an idle connection: an empty segment one byte behind, which the peer must "
                f"acknowledge. Answered keep-alives are normal on idle connections (SO_KEEPALIVE, "
                f"net.ipv4.tcp_keepalive_time). Unanswered ones mean {peer} is gone or unreachable; after "
                f"tcp_keepalive_probes failures the kernel aborts the connection with ETIMEDOUT.")
        out.append(_finding("data.keep_alive", c, summary, expl, _frames(ka + acks),
                            {"sender": who, "probes": n_ka, "answered": n_acks, "unanswered_at_end": trailing,
                             "interval_s": gaps[:10]},
                            ka[0][1], ka[-1][1], sev))
    return out


# -- resets ----------------------------------------------------------------------------------

def _resets(c: Connection) -> list[Finding]:
    out: list[Finding] = []
    if c.proto != "tcp" or not (c.orig.rsts or c.resp.rsts):
        return out
    rst_frames = sorted(c.orig.rsts + c.resp.rsts)
    first = rst_frames[0]
    by_orig = first in c.orig.rsts
    who, peer = _ep(c, by_orig), _ep(c, not by_orig)
    rst_pkt = next((p for p in c.evidence if p.no == first), None)
    rst_ts = rst_pkt.ts if rst_pkt is not None else c.last_ts
    data_o, data_r = c.orig.data_bytes, c.resp.data_bytes
    handshake_done = c.ack_frame is not None or c.orig.data_pkts or c.resp.data_pkts
    with_data = [p for p in c.evidence if p.flags is not None and p.flags & TCP_RST and p.payload_len]
    if with_data:
        out.append(_finding(
            "reset.with_data", c,
            f"RST frame {with_data[0].no} from {_ep(c, _from(c, with_data[0], 'orig'))} carries "
            f"{with_data[0].payload_len} bytes of payload.",
            "RFC 9293 allows data in a RST as diagnostic text; most stacks never send it. Some firewalls and "
            "middleboxes put a reason there; it is never delivered to the application. Read it in the "
            "evidence packet (Wireshark: Follow TCP Stream does not show it).",
            [p.no for p in with_data[:FRAMES_LISTED]], {"rst_frames": [p.no for p in with_data[:FRAMES_LISTED]]},
            with_data[0].ts))
    if not handshake_done or (not data_o and not data_r):
        if c.synack_frame is not None and c.ack_frame is None and first > c.synack_frame:
            out.append(_finding(
                "reset.handshake", c,
                f"{who} reset the connection during the handshake (frame {first}), after the SYN-ACK.",
                "A reset between the SYN-ACK and the final ACK: the client gave up on the attempt (its socket "
                "was already closed or answered by someone else), or a firewall or load balancer reset a "
                "half-open connection. The application saw 'connection reset' or a failed connect().",
                [f for f in (c.syn_frame, c.synack_frame, first) if f], {"reset_by": who, "rst_frame": first},
                rst_ts))
        return out
    o_fin = bool(c.orig.fins) and c.orig.fins[0] < first
    r_fin = bool(c.resp.fins) and c.resp.fins[0] < first
    if o_fin and r_fin:
        return out  # both sides had closed: the RST ends nothing (late data after close() is reset)
    fin_before = o_fin or r_fin
    resetter = c.orig if by_orig else c.resp
    other = c.resp if by_orig else c.orig
    unread = _unread_before_reset(c, by_orig, first)
    phase = "during the close" if fin_before else "mid-stream"
    why = ("with unread data in its receive buffer: it closed the socket while " + peer + " had sent data it "
           "never read (the kernel turns such a close into a RST)") if unread else (
        "without a FIN: an abortive close (SO_LINGER with a zero timeout, a crashed or killed process, or "
        "a firewall / load balancer timing the connection out)")
    summary = (f"{who} reset the connection {phase} (frame {first}, {_fmt_s(_sec(rst_ts - c.first_ts))} after it "
               f"started) after {data_o} bytes from {_ep(c, True)} and {data_r} bytes from {_ep(c, False)}; "
               f"likely {'an unread-data close' if unread else 'an abortive close'}.")
    explanation = (
        f"{who} ended the connection with a RST {why}. {peer}'s application gets ECONNRESET "
        f"('connection reset by peer') on its next read or write, and data still in flight is lost. "
        f"Check {who}'s application logs at that time; `nstat -az TcpExtTCPAbortOnData TcpExtTCPAbortOnClose "
        f"TcpExtTCPAbortOnTimeout` on the resetting host tells which kernel path sent it.")
    ev = {"reset_by": who, "peer": peer, "rst_frame": first, "phase": phase,
          "seconds_after_start": _sec(rst_ts - c.first_ts), "orig_bytes": data_o, "resp_bytes": data_r,
          "unread_data_likely": unread, "resetter_sent_fin": bool(resetter.fins),
          "peer_sent_fin": bool(other.fins), "rst_count": c.orig.rst_cnt + c.resp.rst_cnt}
    out.append(_finding("reset.abort", c, summary, explanation, rst_frames[:FRAMES_LISTED], ev, rst_ts,
                        severity="notice" if fin_before else "warning"))
    return out


def _unread_before_reset(c: Connection, by_orig: bool, rst_frame: int) -> bool:
    """Was the resetter's receive buffer holding data its application never read?

    Linux answers close() on a socket with unread data with a RST instead of a FIN (tcp_close:
    "data was lost"). On the wire this shows as the resetter's advertised window shrinking while
    the peer's data arrived: the kernel acknowledged the bytes but nobody consumed them. A reader
    that keeps up advertises its full window to the end (as with SO_LINGER 0 after reading).
    """
    resetter = c.orig if by_orig else c.resp
    peer = c.resp if by_orig else c.orig
    if not peer.data_bytes or not resetter.max_window:
        return False
    mss = (peer.syn_opts or {}).get("mss") or 536
    return resetter.window <= resetter.max_window - mss


class _Sender:
    __slots__ = ("items", "first_ts", "last_ts")

    def __init__(self, first_ts: int, last_ts: int) -> None:
        self.items = array("q")  # (first RST frame, connection number << 1 | side) pairs
        self.first_ts = first_ts
        self.last_ts = last_ts


class _ResetStorm:
    """reset.storm: per address, its TCP connections and those it reset (refused handshakes are
    handshake.refused, scans are scan.*)."""

    def __init__(self) -> None:
        self.total: Counter[str] = Counter()
        self.senders: dict[str, _Sender] = {}

    def add(self, c: Connection) -> None:
        if c.proto != "tcp":
            return
        self.total[c.orig.addr] += 1
        self.total[c.resp.addr] += 1
        if c.synack_frame is None and not c.orig.data_pkts:
            return
        for side, ep in enumerate((c.orig, c.resp)):
            if ep.rsts:
                s = self.senders.get(ep.addr)
                if s is None:
                    s = self.senders[ep.addr] = _Sender(c.first_ts, c.last_ts)
                s.items.extend((ep.rsts[0], c.index << 1 | side))
                s.first_ts = min(s.first_ts, c.first_ts)
                s.last_ts = max(s.last_ts, c.last_ts)

    def finish(self, end: int) -> Iterator[Finding]:
        for addr, s in self.senders.items():
            n = len(s.items) // 2
            if n < 20 or n < self.total[addr] // 2:
                continue
            items = sorted(zip(s.items[::2], s.items[1::2], strict=True))
            frames = [f for f, _ in items[:FRAMES_LISTED]]
            span = _sec(s.last_ts - s.first_ts)
            yield Finding(
                "reset.storm",
                f"{addr} reset {n} of its {self.total[addr]} established connections within {_fmt_s(span)}.",
                f"Most connections of {addr} end in a RST. One host resetting many established connections at once "
                f"points at a restart or crash of its service, a firewall or load balancer flushing its state table "
                f"(conntrack, idle timeouts), or an application that closes sockets abortively by design "
                f"(SO_LINGER 0). Check the host's service and the middleboxes' logs at that time.",
                frames, [uid_of(k >> 1) for _, k in items], s.first_ts, s.last_ts,
                {"sender": addr, "connections_reset": n, "connections": self.total[addr], "span_s": span,
                 "pattern": "many_connections"})
        self.senders = {}


class _Storm:
    __slots__ = ("rsts", "uids", "frames", "first_ts", "last_ts", "receiver_after")

    def __init__(self, first_ts: int, last_ts: int) -> None:
        self.rsts = 0
        self.uids = Indexes()
        self.frames = Smallest(FRAMES_LISTED)  # each connection's first RST and its first storming one
        self.first_ts = first_ts
        self.last_ts = last_ts
        self.receiver_after = False  # the receiver sent packets after the storm began


class _RstStorms:
    """reset.storm on one 4-tuple: an endpoint kept sending RSTs on its connection (Zeek's weird
    RST_storm: its 1,000th RST and each later one within a second of its previous packet). Once
    the first RST has closed the connection the tracker starts new ones on the tuple, as Zeek does:
    the storming connections of one tuple and sender make one finding."""

    def __init__(self) -> None:
        self.storms: dict[tuple[tuple[str, int], tuple[str, int]], _Storm] = {}

    def add(self, c: Connection) -> None:
        over = c.overflow
        if c.proto != "tcp" or not over:
            return
        for key, storm_frame in over.items():
            if key[0] != "rst_storm":
                continue
            ep, peer = (c.orig, c.resp) if (key[1], key[2]) == (c.orig.addr, c.orig.port) else (c.resp, c.orig)
            first = next((p.ts for p in c.evidence if ep.rsts and p.no == ep.rsts[0]), c.first_ts)
            st = self.storms.get(((ep.addr, ep.port), (peer.addr, peer.port)))
            if st is None:
                st = self.storms[((ep.addr, ep.port), (peer.addr, peer.port))] = _Storm(first, ep.last_ts)
            st.rsts += ep.rst_cnt
            st.uids.add(c.index)
            for frame in {ep.rsts[0] if ep.rsts else storm_frame, storm_frame}:
                st.frames.add(frame)
            st.first_ts = min(st.first_ts, first)
            st.last_ts = max(st.last_ts, ep.last_ts)
            st.receiver_after = st.receiver_after or peer.last_ts > first

    def finish(self, end: int) -> Iterator[Finding]:
        for (sender, receiver), st in self.storms.items():
            who, peer = _ep_str(*sender), _ep_str(*receiver)
            span = _sec(st.last_ts - st.first_ts)
            n = st.uids.n
            yield Finding(
                "reset.storm",
                f"{who} sent {st.rsts:,} RSTs to {peer} within {_fmt_s(span)}"
                + (f", over {n} successive connections of this 4-tuple" if n > 1 else " on one connection")
                + (f"; {peer} kept sending after the storm began." if st.receiver_after else "."),
                f"A reset storm on one connection (Zeek's RST_storm: {STORM_THRESH:,} RSTs or more, each within a "
                f"second of the sender's previous packet). A RST the receiver accepts ends the connection, and it "
                f"discards every later one (or one outside its window: Linux answers those with rate-limited "
                f"challenge ACKs, RFC 5961), so the storm costs bandwidth and CPU rather than the connection. "
                f"Streams of RSTs come from a reset loop between two stacks or middleboxes answering each other, "
                f"a firewall, IPS or load balancer injecting resets, or a blind-reset attack guessing sequence "
                f"numbers. Compare the RSTs' TTL and source MAC with {who}'s other packets (an injector's differ), "
                f"and look at the devices between the two hosts.",
                [f for f, _ in st.frames.items()], st.uids.uids(), st.first_ts, st.last_ts,
                {"sender": who, "receiver": peer, "rsts": st.rsts, "connections": n, "span_s": span,
                 "receiver_sent_after": st.receiver_after, "pattern": "one_tuple"}, severity="notice")
        self.storms = {}


# -- protocol violations (Zeek's weirds, judged) --------------------------------------------------

#: weird name -> (finding id, summary template, explanation)
_WEIRDS: dict[str, tuple[str, str, str]] = {
    "data_after_FIN": ("protocol.data_after_fin", "{who} sent data after its own FIN",
                       "Data beyond a side's FIN violates TCP: the receiver discards it (or resets). It comes "
                       "from a broken stack, a middlebox injecting data, or a capture mixing two connections."),
    "data_after_reset": ("protocol.data_after_rst", "data followed a RST on this connection",
                         "After a RST the connection no longer exists; further data is answered with another RST. "
                         "The sender had not yet processed the reset (packets crossing) or ignores it."),
    "SYN_with_data": ("protocol.syn_with_data", "a SYN carried payload",
                      "Data in a SYN is legitimate only with TCP Fast Open (a TFO cookie option); otherwise most "
                      "stacks drop the data until the handshake completes, and scanners or evasion tools use it."),
    "bad_SYN_ack": ("protocol.synack_bad_ack", "a SYN-ACK acknowledged a number that does not match the SYN",
                    "The SYN-ACK's acknowledgment must be the SYN's sequence number + 1. A mismatch means it answers "
                    "an older SYN (tuple reuse), or a middlebox rewrote sequence numbers (SYN cookies, "
                    "sequence randomization) inconsistently."),
    "unsolicited_SYN_response": ("protocol.unsolicited_synack", "a SYN-ACK arrived for a SYN never seen",
                                 "A SYN-ACK without a preceding SYN: the capture started after the SYN, the SYN "
                                 "took another path (asymmetric routing), or this is backscatter from a spoofed "
                                 "SYN flood against the sender."),
    "simultaneous_open": ("protocol.simultaneous_open", "both sides sent a SYN (simultaneous open)",
                          "Both ends actively opened the same 4-tuple at once (RFC 9293 section 3.5): legal but "
                          "rare; NAT traversal (hole punching) relies on it, elsewhere it points at two programs "
                          "both connecting with fixed ports."),
    "TCP_scale_range": ("protocol.wscale_anomaly", "a window scale above 14 was announced",
                        "RFC 7323 caps the window scale shift at 14; larger values are treated as 14. A stack or "
                        "middlebox announcing more is buggy."),
    "baroque_SYN": ("protocol.syn_flags", "a SYN carried URG", "SYNs with unusual flags are scanner or OS "
                    "fingerprinting traffic."),
    "TCP_christmas": ("protocol.syn_flags", "a segment set SYN and RST together",
                      "SYN and RST together never occur in normal traffic: scanners and fingerprinting tools send "
                      "them."),
}


def _unsolicited_explained(c: Connection, synack_frame: int) -> str:
    """Why a SYN-ACK without a SYN before it is no anomaly, if the capture says so ('' if not)."""
    if c.syn_frame is not None and c.syn_frame > synack_frame:
        return (f"The SYN is in the capture right after it (frame {c.syn_frame}): the capture point reordered "
                f"them, nothing on the wire.")
    if synack_frame == 1:
        return "It is the capture's first frame: the SYN was sent before the capture started."
    if not c.orig.pkts and c.resp.pkts >= 3:
        return (f"No frame of {_ep(c, True)} is in the capture while {_ep(c, False)} went on with the "
                f"connection: only its side was captured.")
    return ""


def _has_tfo_cookie(options: bytes) -> bool:
    """A TCP Fast Open option: kind 34 (RFC 7413), or the experimental kind 254 with magic 0xF989
    that stacks used before it (RFC 6994)."""
    i = 0
    while i < len(options):
        kind = options[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(options) or options[i + 1] < 2:
            break
        length = options[i + 1]
        if kind == 34 or (kind == 254 and options[i + 2:i + 4] == b"\xf9\x89"):
            return True
        i += length
    return False


def _protocol(c: Connection) -> list[Finding]:
    out: list[Finding] = []
    if c.proto != "tcp" or not c.weirds:
        return out
    seen: set[str] = set()
    for name, frames in sorted(c.weirds.items()):
        spec = _WEIRDS.get(name)
        if spec is None or spec[0] in seen:
            continue
        fid, text, expl = spec
        seen.add(fid)
        pkt = next((p for p in c.evidence if p.no == frames[0]), None)
        who = _ep(c, _from(c, pkt, "orig")) if pkt is not None else "a side"
        said = text.format(who=who)
        count = c.weird_count(name)  # (the frames list keeps the first 16)
        summary = said[0].upper() + said[1:] + f" (frame {frames[0]}" + (
            f" and {count - 1:,} more)." if count > 1 else ").")
        sev = ""
        if name == "SYN_with_data" and pkt is not None and _has_tfo_cookie(pkt.options or b""):
            sev = "info"
            summary += " It carries a TCP Fast Open cookie option."
        elif name == "unsolicited_SYN_response":
            # Graded by what the capture shows: nothing is wrong when the SYN is in it after all
            # (reordered), was sent before the capture began, or the capture holds only the
            # answering side of a connection that went on.
            why = _unsolicited_explained(c, frames[0])
            if why:
                sev = "info"
                summary += " " + why
        out.append(_finding(fid, c, summary, expl, list(frames), {"weird": name, "frames": list(frames)},
                            pkt.ts if pkt is not None else None, severity=sev))
    # SYN-ACK announcing window scaling to a SYN that did not: RFC 7323 forbids it.
    so, ro = c.orig.syn_opts, c.resp.syn_opts
    if so is not None and ro is not None and "wscale" in ro and "wscale" not in so and c.synack_frame:
        out.append(_finding("protocol.wscale_anomaly", c,
                            f"The SYN-ACK (frame {c.synack_frame}) announced window scaling although the SYN "
                            f"did not.", "RFC 7323: window scaling is used only if both SYNs carry the option; "
                            "a SYN-ACK that sends it unasked is a stack or middlebox bug.",
                            [c.synack_frame], {"syn_wscale": None, "synack_wscale": ro.get("wscale")}))
    return out


class _MssGroup:
    __slots__ = ("keys", "first", "values", "first_ts", "last_ts")

    def __init__(self, first_ts: int, last_ts: int) -> None:
        self.keys = Indexes()  # connection number << 1 | side (a loopback pair may count twice)
        self.first = Smallest(FRAMES_LISTED)  # the SYN frames of the first ones
        self.values: set[int] = set()
        self.first_ts = first_ts
        self.last_ts = last_ts


class _Mss:
    """protocol.mss_anomaly: SYNs without an MSS option or with a tiny one, per announcing address."""

    def __init__(self) -> None:
        self.groups: dict[tuple[str, str], _MssGroup] = {}

    def add(self, c: Connection) -> None:
        if c.proto != "tcp":
            return
        for side, ep in enumerate((c.orig, c.resp)):
            if ep.syn_opts is None or not ep.syns:
                continue
            mss = ep.syn_opts.get("mss")
            if mss is None:
                kind = "missing"
            elif mss < 536 and not (c.ip_version == 6 and mss >= 1220):
                kind = "small"
            else:
                continue
            g = self.groups.get((ep.addr, kind))
            if g is None:
                g = self.groups[(ep.addr, kind)] = _MssGroup(c.first_ts, c.last_ts)
            key = c.index << 1 | side
            g.keys.add(key)
            g.first.add(key, ep.syns[0])
            if mss is not None:
                g.values.add(mss)
            g.first_ts = min(g.first_ts, c.first_ts)
            g.last_ts = max(g.last_ts, c.last_ts)

    def finish(self, end: int) -> Iterator[Finding]:
        for (addr, kind), g in self.groups.items():
            n = g.keys.n
            values = sorted(g.values)
            problem = ("no MSS option (the peer must assume 536 bytes, or 1220 for IPv6)" if kind == "missing"
                       else f"an MSS of only {', '.join(map(str, values))} bytes")
            frames = [f for _, f in g.first.items()]
            yield Finding(
                "protocol.mss_anomaly", f"{n} SYN(s) from {addr} announced {problem}.",
                "Every modern stack announces its MSS in the SYN. A missing or tiny MSS means a stripped option "
                "(a middlebox), an MSS-clamping rule set far too low, or a crafted packet (scanners); small segments "
                "cost throughput. Check `iptables -t mangle -S | grep TCPMSS` on the path and the interface MTUs.",
                frames, [uid_of(k >> 1) for k in g.keys.sorted()], g.first_ts, g.last_ts,
                {"address": addr, "problem": kind, "syns": n, "mss_values": values})
        self.groups = {}


def _challenge_ack(c: Connection) -> list[Finding]:
    """A bare ACK answering a SYN on a tuple the answerer thinks is synchronized (RFC 5961 4.2)."""
    out: list[Finding] = []
    if c.proto != "tcp" or not c.syn_frame or c.synack_frame:
        return out
    syn = next((p for p in c.evidence if p.no == c.syn_frame), None)
    if syn is None:
        return out
    for p in c.evidence:
        if p.no <= syn.no or p.flags is None or not _from(c, p, "resp"):
            continue
        want = (syn.seq + 1) & 0xFFFFFFFF  # type: ignore[operator]
        if p.flags & (TCP_SYN | TCP_RST | TCP_FIN) == 0 and p.flags & TCP_ACK and p.ack != want:
            state = answerer_state(c)
            out.append(_finding(
                "protocol.challenge_ack", c,
                f"{_ep(c, False)} answered the SYN (frame {syn.no}) with a challenge ACK (frame {p.no}) "
                f"carrying ack {p.ack} instead of a SYN-ACK"
                + (f"; its socket for this 4-tuple was still in {state}" if state else "") + ".",
                "RFC 5961: a SYN arriving on a synchronized connection is answered with an ACK of the current "
                "state (a challenge ACK) instead of resetting. The client answers it with a RST, which kills "
                "the stale socket, and retries. It means the server still held a connection on this tuple "
                "(CLOSE_WAIT, ESTABLISHED or TIME-WAIT) that the client had forgotten. Linux rate-limits "
                "challenge ACKs (net.ipv4.tcp_challenge_ack_limit); `nstat -az TcpExtTCPChallengeACK`.",
                [syn.no, p.no], {"syn_frame": syn.no, "challenge_frame": p.no, "ack": p.ack,
                                 "predecessor": c.predecessor, "answerer_state": state}, syn.ts))
            break
    return out


def syn_in_time_wait(c: Connection) -> Pending | None:
    """protocol.syn_in_time_wait; whether a retry connected shows in the successor, so it waits."""
    if c.proto != "tcp" or not c.predecessor or not c.syn_frame:
        return None
    # The side that receives the new SYN: the new connection's responder, in the old one's roles.
    tw = time_wait_of(c)
    if tw is None:
        return None
    isn = c.orig.isn
    if isn is None:
        return None
    last, old_fin, pred_last_ts = tw
    older = ((isn - last) & 0xFFFFFFFF) >= 0x80000000
    gap = _sec(c.first_ts - pred_last_ts)
    accepted = c.synack_frame is not None
    pred = c.predecessor
    said = (f"A SYN (frame {c.syn_frame}) reused the 4-tuple of {pred} {_fmt_s(gap)} after it closed, while "
            f"{_ep(c, False)} held it in TIME-WAIT; the new ISN is {'lower' if older else 'higher'} than the old "
            f"connection's last sequence number; ")
    frames = [f for f in (old_fin, c.syn_frame, c.synack_frame) if f]
    conn = {"uid": c.uid, "orig": _ep(c, True), "resp": _ep(c, False)}
    uid, first_ts, last_ts = c.uid, c.first_ts, c.last_ts

    def resolve(succ: _Succ | None, _end: int) -> list[Finding]:
        retried = succ is not None and succ.synack
        outcome = ("the SYN was accepted" if accepted else
                   "it was answered with the old connection's numbers, and the retry connected" if retried else
                   "it was not accepted")
        return [Finding(
            "protocol.syn_in_time_wait", said + outcome + ".",
            "A socket in TIME-WAIT keeps the tuple for 60 s (Linux) so late segments of the old connection are not "
            "taken for a new one. RFC 6191 / Linux accept a SYN into TIME-WAIT only if its ISN (or timestamp) is "
            "higher than the old connection's; otherwise the SYN is answered with an ACK of the old state or "
            "dropped, and connect() stalls. Clients that bind fixed source ports or reuse ports aggressively hit "
            "this; let the ephemeral port range and TCP timestamps do their work.",
            frames, [uid], first_ts, last_ts,
            {"predecessor": pred, "seconds_since_close": gap, "new_isn": isn, "old_last_seq": last,
             "isn_lower": older, "accepted": accepted, "retry_connected": retried, "connection": conn},
            severity="notice" if accepted or retried else "warning")]

    return resolve


class _Tally:
    """One capture-wide finding over the connections that show something ``count`` counts: the
    total, the connections, the first frames (by connection number) and the time span."""

    def __init__(self) -> None:
        self.uids = Indexes()
        self.total = 0
        self.frames = FirstFrames(FRAMES_LISTED)
        self.first_ts: int | None = None
        self.last_ts: int | None = None

    def count(self, c: Connection) -> int:
        raise NotImplementedError

    def frames_of(self, c: Connection) -> list[int]:
        raise NotImplementedError

    def add(self, c: Connection) -> None:
        n = self.count(c)
        if not n:
            return
        self.total += n
        self.uids.add(c.index)
        self.frames.add(c.index, self.frames_of(c))
        self.first_ts = c.first_ts if self.first_ts is None else min(self.first_ts, c.first_ts)
        self.last_ts = c.last_ts if self.last_ts is None else max(self.last_ts, c.last_ts)


class _BadChecksums(_Tally):
    """capture.bad_checksum: one finding for the capture, over the segments left out for a wrong
    checksum that offload and rewriting do not explain (see ``Tracker._left_out``), each judged by
    what its receiver did next (``tracker.BAD_SEGMENTS``): ACKed first, it was accepted (the capture
    holds a corrupted or edited copy); resent first, it was discarded."""

    def __init__(self) -> None:
        super().__init__()
        self.verdicts: Counter[str] = Counter()
        self.examples: list[dict[str, Any]] = []
        self.longest_resend = -1.0

    @staticmethod
    def _judged(c: Connection) -> list[list[Any]]:
        """Its segments left out, or analyzed late because the receiver ACKed them (not those of a
        sender whose checksums turned out to be the capture's: ``stale``)."""
        segs = c.overflow.get(BAD_SEGMENTS, []) if c.overflow else []
        return [s for s in segs if s[6] != "stale"]

    def count(self, c: Connection) -> int:
        if c.proto != "tcp":
            return 0
        return c.orig.bad_checksums + c.resp.bad_checksums + sum(1 for s in self._judged(c) if s[10] == "replayed")

    def frames_of(self, c: Connection) -> list[int]:
        return sorted(set(c.weirds.get("bad_TCP_checksum", [])) | {s[0] for s in self._judged(c)})

    def add(self, c: Connection) -> None:
        n = self.count(c)
        if not n:
            return
        super().add(c)
        segs = self._judged(c)
        for s in segs:
            verdict = s[6] or "not_judged"
            self.verdicts[verdict] += 1
            ex: dict[str, Any] = {"frame": s[0], "sender": _ep_str(s[2], s[3]), "verdict": verdict}
            if s[7] is not None:
                ex["by_frame"] = s[7]
                ex["after_s"] = round((s[8] - s[1]) / 1e9, 6)
                if verdict == "resent":
                    self.longest_resend = max(self.longest_resend, ex["after_s"])
            # The 8 lowest frames, whatever order connections retire in (streaming retires them
            # as Zeek's timers expire; the JSON must not depend on it).
            self.examples.append(ex)
            if len(self.examples) > 8:
                self.examples.sort(key=lambda e: e["frame"])
                del self.examples[8:]
        self.verdicts["no_data"] += n - len(segs)  # pure ACKs, or beyond the segments followed

    def finish(self, end: int) -> Iterator[Finding]:
        frames = self.frames.frames()
        if not self.uids.n or not frames:
            return
        total, n = self.total, self.uids.n
        v = self.verdicts
        acked, resent, open_, nodata = v["acked"], v["resent"], v["not_judged"], v["no_data"]
        parts = []
        if acked:
            parts.append(f"{acked} ACKed by the receiver before any resend: it accepted them, so the capture "
                         f"holds a corrupted or edited copy (the damage is on the capture side, not the network; "
                         f"analyzed as sent)")
        if resent:
            when = f" ({_fmt_s(self.longest_resend)} later)" if self.longest_resend >= 0 else ""
            parts.append(f"{resent} not ACKed and sent again{when}: the receiver discarded them (corrupted on the "
                         f"way to it)")
        if open_:
            parts.append(f"{open_} neither ACKed nor resent within the capture: their fate is not known")
        if nodata:
            parts.append(f"{nodata} without data (pure ACKs) or beyond the first {BAD_SEGMENTS_JUDGED} of a "
                         f"connection: not judged")
        severity = "warning" if resent else "notice"
        if resent:
            cause = ("Segments were corrupted on the way to their receiver, whose checksum check discarded them: "
                     "their sender had to send them again.")
        elif acked:
            cause = ("The capture holds corrupted or edited copies of segments the receiver accepted: the damage is "
                     "on the capture side, not in the network.")
        else:
            cause = "Segments reached the capture point corrupted; what became of them is not in the capture."
        yield Finding(
            "capture.bad_checksum",
            f"{total} TCP segment(s) on {n} connection(s) have wrong checksums that neither offload nor a "
            "rewritten capture explains: " + "; ".join(parts) + "."
            + (" The others are left out of connection state; --no-checksums analyzes them as sent."
               if total > acked else ""),
            cause + " A wrong TCP checksum that is rare and isolated (not on most frames of its sender, not a "
            "checksum left for the NIC) is corruption somewhere, and what the receiver did next tells where. If the "
            "peer acknowledged the segment before it was sent again, the receiver got valid bytes: the corruption is "
            "in the capture (a capture card, a tap, a tool that edited the file), and the connection was not "
            "affected. If it was not acknowledged and its sender sent it again, the receiver's checksum check "
            "discarded it: the frame was corrupted between the sender and the receiver (a faulty NIC, cable, "
            "switch or middlebox), and the connection lost the time until the resend; check `ethtool -S` error "
            "counters on the path and `nstat -az TcpInCsumErrors` on the receiver. Checksums left for offload "
            "and checksums wrong on most frames of a sender are not counted here: they are a fact of the "
            "capture (its `checksums` section). --strict-checksums leaves out every checksum that is not valid, "
            "as Zeek does; --no-checksums verifies none.",
            sorted(set(frames) | {e["by_frame"] for e in self.examples if "by_frame" in e}), self.uids.uids(),
            self.first_ts,
            self.last_ts,
            {"segments": total, "connections": n, "accepted_by_receiver": acked, "discarded_and_resent": resent,
             "not_judged": open_ + nodata, "examples": sorted(self.examples, key=lambda e: e["frame"])},
            severity=severity)


class _DuplicateFrames(_Tally):
    """capture.duplicate_frames: one finding for the capture."""

    def count(self, c: Connection) -> int:
        return _count(c, ta.DUPLICATE_FRAME) if c.event_counts else 0

    def frames_of(self, c: Connection) -> list[int]:
        return [e[0] for e in c.events if e[3] & ta.DUPLICATE_FRAME][:FRAMES_LISTED]

    def finish(self, end: int) -> Iterator[Finding]:
        if not self.uids.n:
            return
        total, n = self.total, self.uids.n
        yield Finding(
            "capture.duplicate_frames",
            f"{total} frame(s) on {n} connection(s) are second copies of an IP datagram already captured "
            f"(same IP ID, TTL and TCP header, within 100 ms): counted once, not as retransmissions.",
            "The same datagram captured twice is a property of the capture point, not of the network: a host that "
            "forwards or bridges on the capturing interface (the packet is seen in and out), a SPAN port mirroring "
            "both directions or several VLANs, or 'any' captures on Linux. Wireshark reports these copies as "
            "retransmissions. A real retransmission is a new datagram: a new IP ID, or (from a stack that "
            "reuses IP IDs) a new timestamp, ACK or window.",
            self.frames.frames(), self.uids.uids(), self.first_ts, self.last_ts,
            {"duplicates": total, "connections": n}, severity="info")


# -- whole-capture patterns ------------------------------------------------------------------

#: Beyond this many distinct ports a group's ports are kept as a 65536-bit map (8 KiB).
_PORT_SET_MAX = 512


class _SrcGroup:
    """scan.port_scan: the attempts from one address to another."""

    __slots__ = ("n", "ports", "nports", "failed", "open_ports", "first_min", "first_max", "last_max", "syn_frames",
                 "uids")

    def __init__(self, c: Connection) -> None:
        self.n = self.nports = self.failed = 0
        self.ports: set[int] | bytearray = set()
        self.open_ports: set[int] | None = None
        self.first_min = self.first_max = c.first_ts
        self.last_max = c.last_ts
        self.syn_frames = Smallest(FRAMES_LISTED)
        self.uids = Indexes()

    def add_port(self, port: int) -> None:
        ports = self.ports
        if isinstance(ports, set):
            if port not in ports:
                ports.add(port)
                self.nports += 1
                if len(ports) > _PORT_SET_MAX:
                    bits = bytearray(8192)
                    for p in ports:
                        bits[p >> 3] |= 1 << (p & 7)
                    self.ports = bits
        elif not ports[port >> 3] & 1 << (port & 7):
            ports[port >> 3] |= 1 << (port & 7)
            self.nports += 1


class _DstGroup:
    """scan.syn_flood: the attempts to one address and port that were not refused outright (those
    are rows in :class:`_Scans`, folded in at the end)."""

    __slots__ = ("n", "sources", "addrs", "failed", "answered", "first_min", "first_max", "last_max", "syn_frames",
                 "uids")

    def __init__(self, c: Connection) -> None:
        self.n = self.sources = self.failed = self.answered = 0
        self.addrs: str | set[str] = c.orig.addr
        self.first_min = self.first_max = c.first_ts
        self.last_max = c.last_ts
        self.syn_frames: Smallest | None = None
        self.uids: Indexes | None = None

    def add_addr(self, addr: str) -> None:
        addrs = self.addrs
        if isinstance(addrs, set):
            addrs.add(addr)
        elif addr != addrs:
            self.addrs = {addrs, addr}

    def span(self, first_ts: int, last_ts: int) -> None:
        self.first_min = min(self.first_min, first_ts)
        self.first_max = max(self.first_max, first_ts)
        self.last_max = max(self.last_max, last_ts)


class _Scans:
    """Port scans (one source, many ports) and SYN floods (one port, many sources), from attempts.

    Distinct sources of a SYN flood are counted without keeping them: a source repeats in a group
    only on the same 4-tuple, and ``pred_facts`` tells whether an earlier generation of the tuple
    was already an attempt to the same responder. Refused attempts (a RST instead of a SYN-ACK: a
    SYN scan is millions of them, none part of a flood) are rows of four ints.
    """

    def __init__(self, names: Names) -> None:
        self.names = names
        self.by_src: dict[tuple[str, str], _SrcGroup] = {}
        self.by_dst: dict[tuple[str, int], _DstGroup] = {}
        #: Refused attempts: destination, source address number << 1 | new source, first ts, last ts.
        self.refused = array("q")

    def add(self, c: Connection) -> None:
        if c.proto != "tcp" or c.syn_frame is None:
            return
        o, r = c.orig, c.resp
        g = self.by_src.get((o.addr, r.addr))
        if g is None:
            g = self.by_src[(o.addr, r.addr)] = _SrcGroup(c)
        g.n += 1
        g.add_port(r.port)
        if c.ack_frame is None:
            g.failed += 1
        if c.synack_frame is not None:
            if g.open_ports is None:
                g.open_ports = set()
            g.open_ports.add(r.port)
        g.first_min = min(g.first_min, c.first_ts)
        g.first_max = max(g.first_max, c.first_ts)
        g.last_max = max(g.last_max, c.last_ts)
        if c.syn_frame:
            g.syn_frames.add(c.syn_frame)
        g.uids.add(c.index)

        new_source = 0 if _bits(c.pred_facts) & (_SEEN_LOW if _resp_is_low(c) else _SEEN_HIGH) else 1
        # Refusals (a RST instead of a SYN-ACK) leave nothing in a SYN queue: a closed port, reported
        # as handshake.refused, not a flood.
        refused = c.synack_frame is None and bool(r.rsts)
        failed = c.ack_frame is None and not refused
        if c.ack_frame is None and refused:
            self.refused.extend((self.names.endpoint(r.addr, r.port), self.names.id(o.addr) << 1 | new_source,
                                 c.first_ts, c.last_ts))
            return
        d = self.by_dst.get((r.addr, r.port))
        if d is None:
            d = self.by_dst[(r.addr, r.port)] = _DstGroup(c)
        d.n += 1
        d.sources += new_source
        d.add_addr(o.addr)
        d.span(c.first_ts, c.last_ts)
        if failed:
            d.failed += 1
            if c.synack_frame is not None:
                d.answered += 1
            if d.uids is None or d.syn_frames is None:
                d.uids, d.syn_frames = Indexes(), Smallest(FRAMES_LISTED)
            if c.syn_frame:
                d.syn_frames.add(c.syn_frame)
            d.uids.add(c.index)

    def finish(self, end: int) -> Iterator[Finding]:
        for (src, dst), g in self.by_src.items():
            if g.nports < 20 or g.failed < g.n // 2:
                continue
            open_ports = sorted(g.open_ports or ())
            span = _sec(g.first_max - g.first_min)
            yield Finding(
                "scan.port_scan",
                f"{src} probed {g.nports} ports on {dst} in {_fmt_s(span)}: "
                + (f"{len(open_ports)} answered with a SYN-ACK ({', '.join(map(str, open_ports[:10]))}"
                   f"{' ...' if len(open_ports) > 10 else ''}), the rest were refused or unanswered."
                   if open_ports else "none answered with a SYN-ACK; every one was refused or unanswered."),
                "Many connection attempts from one source to many ports of one host, most of them failing: a port scan "
                "(nmap, masscan) or a misconfigured client walking a port range. Scanners often reset the SYN-ACK "
                "instead of completing the handshake (a 'SYN scan'). Check whether the source is authorised.",
                [f for f, _ in g.syn_frames.items()], g.uids.uids(), g.first_min, g.last_max,
                {"source": src, "target": dst, "ports_probed": g.nports, "open_ports": open_ports[:100],
                 "attempts": g.n, "failed": g.failed, "span_s": span})
        self.by_src = {}
        # Only a group with an attempt that failed can be a flood: fold the refusals into those.
        names = self.names
        floods = {names.endpoint(*key): d for key, d in self.by_dst.items() if d.failed}
        rows = self.refused
        for k in range(0, len(rows), 4):
            d = floods.get(rows[k])
            if d is not None:
                d.n += 1
                d.sources += rows[k + 1] & 1
                d.add_addr(names.names[rows[k + 1] >> 1])
                d.span(rows[k + 2], rows[k + 3])
        self.refused = array("q")
        for (dst, port), d in self.by_dst.items():
            if d.sources < 50 or d.failed < 0.8 * d.n:
                continue
            assert d.uids is not None and d.syn_frames is not None
            n_addrs = len(d.addrs) if isinstance(d.addrs, set) else 1
            span = _sec(d.first_max - d.first_min)
            yield Finding(
                "scan.syn_flood",
                f"{d.failed} of {d.n} connection attempts to {dst}:{port} from {n_addrs} address(es) and "
                f"{d.sources} source ports never completed the handshake in {_fmt_s(span)}; {d.answered} got a SYN-ACK "
                f"that was never acknowledged.",
                "Many SYNs to one port whose handshakes never complete fill the listener's SYN queue: a SYN flood "
                "(often with spoofed sources), or clients that give up because the server is overloaded. Linux "
                "defends with SYN cookies (net.ipv4.tcp_syncookies; `nstat -az TcpExtSyncookiesSent "
                "TcpExtListenOverflows TcpExtListenDrops`). Check the listener's backlog (`ss -ltn`: Recv-Q vs "
                "Send-Q).",
                [f for f, _ in d.syn_frames.items()], d.uids.uids(), d.first_min, d.last_max,
                {"target": f"{dst}:{port}", "attempts": d.n, "incomplete": d.failed,
                 "source_addresses": n_addrs, "source_tuples": d.sources, "synack_unacknowledged": d.answered,
                 "span_s": span})
        self.by_dst = {}


def _half_open(c: Connection) -> list[Finding]:
    """An established connection where one side keeps sending and the other has vanished."""
    out: list[Finding] = []
    if c.proto != "tcp" or c.ws is None or c.orig.tcp_state != ESTAB_S and c.resp.tcp_state != ESTAB_S:
        return out
    if c.orig.fins or c.resp.fins:
        return out
    for orig in (True, False):
        ep, other = (c.orig, c.resp) if orig else (c.resp, c.orig)
        if other.last_ts >= ep.last_ts or not c.event_counts:
            continue
        if not other.pkts or not other.last_ts:
            continue  # it never sent a packet here: no silence to measure (not "since 1970")
        stall = _receiver_stall(c, not orig)
        if stall is not None:
            if not (stall["zero"] and _count(c, ta.ZERO_WINDOW, not orig)):  # (else data.zero_window tells it)
                out.append(_stalled(c, not orig, stall))
            continue
        tail = [e for e in c.events if e[2] == orig and e[1] > other.last_ts
                and e[3] & (_RETRANS | ta.KEEP_ALIVE)]
        # Beyond the events kept, the tracker counts those sent since the peer was last heard from.
        dropped = c.overflow.get(("tail", orig)) if c.overflow else None
        n_tail = len(tail) + (dropped[1] if dropped is not None and dropped[0] == other.last_ts else 0)
        if n_tail < 3 or not tail:
            continue
        silent = _sec(ep.last_ts - other.last_ts)
        if silent < 1.0:
            continue
        rst_end = bool(ep.rsts) and ep.rsts[-1] >= tail[-1][0]
        out.append(_finding(
            "close.half_open", c,
            f"{_ep(c, not orig)} went silent: for the last {_fmt_s(silent)} {_ep(c, orig)} sent {n_tail:,} "
            f"retransmission(s) or keep-alive(s) that were never answered"
            + ("; it finally reset the connection." if rst_end else "."),
            f"A half-open connection: {_ep(c, orig)} still believes in it, while {_ep(c, not orig)} crashed, "
            f"rebooted, lost its state (a NAT or firewall timed the flow out) or became unreachable. The "
            f"sender retries until tcp_retries2 (about 15 minutes by default) or its keep-alive gives up. "
            f"Lower net.ipv4.tcp_retries2 or use TCP_USER_TIMEOUT / keep-alives to fail faster.",
            _frames(tail), {"live_side": _ep(c, orig), "silent_side": _ep(c, not orig), "silent_s": silent,
                            "unanswered": n_tail, "reset_at_end": rst_end}, tail[0][1], tail[-1][1],
            "warning"))
    return out


def _stalled(c: Connection, receiver_orig: bool, stall: dict[str, Any]) -> Finding:
    """data.receiver_stalled: the receiver's window closed down, then it stopped answering; the
    sender's retransmissions after its last word, with their back-off series."""
    rcv, snd = _ep(c, receiver_orig), _ep(c, not receiver_orig)
    tail: list[Event] = stall["tail"]
    rto_evs = [e for e in tail if e[3] & ta.RTO and e[4] >= ta.RTO_SILENCE_NS]
    series = [_sec(e[4]) for e in rto_evs]
    ws = c.ws
    assert ws is not None
    d = ws.dirs((c.orig if receiver_orig else c.resp).addr, (c.orig if receiver_orig else c.resp).port)[0]
    zw = len(d.zw_episodes) + (d.zw_more[0] if d.zw_more is not None else 0)
    zw_s = round(sum(_sec(e[3] - e[1]) for e in d.zw_episodes) + (_sec(d.zw_more[1]) if d.zw_more else 0.0), 6)
    waited = _sec(_wait_union(rto_evs))
    summary = (f"{rcv} stopped acknowledging: its advertised window had shrunk to {stall['window']:,} bytes"
               + (f" (zero {zw} time(s) before, {_fmt_s(zw_s)} in all)" if zw else "")
               + f" and {snd} was waiting on it; for the last {_fmt_s(stall['silent_s'])} {snd} sent "
               f"{stall['unanswered']} retransmission(s) or probe(s) that got no answer"
               + (f" (timeouts {', '.join(_fmt_s(t) for t in series[:8])}{' ...' if len(series) > 8 else ''}, "
                  f"each from the previous transmission; {_fmt_s(waited)} waiting)" if series else "")
               + ". A receiver fault, not loss on the path.")
    explanation = (
        f"The receiver {rcv} first let its receive window close down (its application read slowly or not at "
        f"all), then stopped acknowledging altogether, while {snd} kept retransmitting with growing timeouts. "
        f"A path that drops packets would not have shrunk the window first: the receiving application is "
        f"stuck (a blocked thread, a deadlock, a full downstream queue) or the receiving host or appliance "
        f"hung (a printer, an embedded device). On {rcv}: `ss -tmi` (Recv-Q: unread bytes), what the reading "
        f"process is doing (`top -H`, `py-spy dump`, `jstack`), and whether the host still answers at all.")
    return _finding("data.receiver_stalled", c, summary, explanation, _frames(tail),
                    {"receiver": rcv, "sender": snd, "fault": "receiver", "silent_s": stall["silent_s"],
                     "unanswered": stall["unanswered"], "window_at_end": stall["window"], "zero_windows": zw,
                     "zero_window_s": zw_s,
                     "timeouts_s": series[:FRAMES_LISTED], "total_wait_s": waited},
                    tail[0][1] if tail else None, tail[-1][1] if tail else None,
                    "error" if stall["silent_s"] >= ZW_ERROR_S else "warning")


class Accumulator(Protocol):
    """A detector judged over many connections: fed each one, asked at the end."""

    def add(self, c: Connection) -> None: ...

    def finish(self, end: int) -> Iterable[Finding]: ...


#: Detectors that judge one connection alone, in the order their findings are listed.
PER_CONNECTION: tuple[Callable[[Connection], list[Finding]], ...] = (
    _retransmissions,
    _out_of_order,
    _capture_gaps,
    _duplicate_acks,
    _window_patterns,
    _keep_alive,
    _resets,
    _protocol,
    _challenge_ack,
    _half_open,
)


def accumulators(names: Names) -> list[Accumulator]:
    """Fresh cross-connection detectors for one stream."""
    return [_ResetStorm(), _RstStorms(), _Mss(), _BadChecksums(), _DuplicateFrames(), _Scans(names)]
