"""Per-segment TCP analysis: what Wireshark's ``tcp.analysis.*`` flags mean, computed while streaming.

The core is a port of the sequence analysis in Wireshark's ``packet-tcp.c``
(``tcp_analyze_sequence_number``): for each direction of a conversation it keeps the next expected
sequence number, the highest contiguous one, the last ACK and window, the duplicate-ACK counter and
the unacknowledged segments, and marks each segment with the same flags tshark would, so that the
two tools can be compared frame by frame (``tests/test_tcp_analysis_crosscheck.py``).

On top of Wireshark's flags it adds what an expert reads off the same numbers:

* **Linux zero-window probes.** Linux probes a zero window with an empty segment one byte below the
  next sequence number (``tcp_xmit_probe_skb``), which looks exactly like a keep-alive; Wireshark
  calls it one. A keep-alive-shaped segment sent while the peer's last advertised window is zero is
  a zero-window probe (``ZWP_LINUX``), and its answer a probe ACK.
* **Loss before or after the capture point.** A retransmission whose original was captured was lost
  downstream of the capture point (or its ACK was); one that fills a hole the capture never saw was
  lost upstream (``LOST_UPSTREAM`` on the repair).
* **Timeouts.** A retransmission that is neither fast nor spurious nor a reordering is a
  retransmission timeout; its timeout (time since the first transmission of that sequence number)
  is kept, so back-off series (0.2 s, 0.4 s, 0.8 s ...) can be reported.
* **Window shrink** (the right edge of an advertised window moving left) and RTT samples (Karn's
  rule: only segments sent once).

Everything here is pure bookkeeping on integers; :class:`Conversation` objects are attached to
tracker connections and survive generation splits exactly as Wireshark's conversations do.
"""

from __future__ import annotations

from typing import Any

from .packet import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN
from .seq import seq_gt, seq_lt
from .tcpopts import parse_options

__all__ = ["Conversation", "Direction", "FLAG_NAMES", "WS_FIELDS", "flag_names"]

_MASK = 0xFFFFFFFF

# Wireshark's flags (TCP_A_*), and what pcapsleuth adds.
RETRANSMISSION = 0x1
FAST_RETRANSMISSION = 0x2
SPURIOUS_RETRANSMISSION = 0x4
OUT_OF_ORDER = 0x8
LOST_PACKET = 0x10  # "previous segment not captured"
ACK_LOST_PACKET = 0x20  # "ACKed segment that wasn't captured"
DUPLICATE_ACK = 0x40
ZERO_WINDOW = 0x80
ZERO_WINDOW_PROBE = 0x100
ZERO_WINDOW_PROBE_ACK = 0x200
WINDOW_FULL = 0x400
WINDOW_UPDATE = 0x800
KEEP_ALIVE = 0x1000
KEEP_ALIVE_ACK = 0x2000
REUSED_PORTS = 0x4000
# pcapsleuth's own
ZWP_LINUX = 0x8000  # keep-alive-shaped probe of a zero window (Wireshark: keep-alive)
ZWP_LINUX_ACK = 0x10000  # the answer to such a probe (Wireshark: keep-alive ACK)
RTO = 0x20000  # a retransmission after a timeout: the peer was silent for the minimum RTO
LOST_UPSTREAM = 0x40000  # this segment fills a hole: its first transmission never reached the capture
WINDOW_SHRINK = 0x80000
SYN_RETRANSMISSION = 0x100000  # counted apart: a retried SYN or SYN-ACK is no data loss
DUPLICATE_FRAME = 0x200000  # the same IPv4 datagram (same IP ID) captured twice, not resent

FLAG_NAMES: dict[int, str] = {
    RETRANSMISSION: "retransmission",
    FAST_RETRANSMISSION: "fast_retransmission",
    SPURIOUS_RETRANSMISSION: "spurious_retransmission",
    OUT_OF_ORDER: "out_of_order",
    LOST_PACKET: "lost_segment",
    ACK_LOST_PACKET: "ack_lost_segment",
    DUPLICATE_ACK: "duplicate_ack",
    ZERO_WINDOW: "zero_window",
    ZERO_WINDOW_PROBE: "zero_window_probe",
    ZERO_WINDOW_PROBE_ACK: "zero_window_probe_ack",
    WINDOW_FULL: "window_full",
    WINDOW_UPDATE: "window_update",
    KEEP_ALIVE: "keep_alive",
    KEEP_ALIVE_ACK: "keep_alive_ack",
    REUSED_PORTS: "reused_ports",
    ZWP_LINUX: "zero_window_probe_linux",
    ZWP_LINUX_ACK: "zero_window_probe_linux_ack",
    RTO: "rto",
    LOST_UPSTREAM: "lost_upstream",
    WINDOW_SHRINK: "window_shrink",
    SYN_RETRANSMISSION: "syn_retransmission",
    DUPLICATE_FRAME: "duplicate_frame",
}

#: The tshark field behind each Wireshark flag (``tcp.analysis.retransmission`` is also present on
#: fast and spurious retransmissions, as it is here).
WS_FIELDS: dict[str, int] = {
    "tcp.analysis.retransmission": RETRANSMISSION | FAST_RETRANSMISSION | SPURIOUS_RETRANSMISSION,
    "tcp.analysis.fast_retransmission": FAST_RETRANSMISSION,
    "tcp.analysis.spurious_retransmission": SPURIOUS_RETRANSMISSION,
    "tcp.analysis.out_of_order": OUT_OF_ORDER,
    "tcp.analysis.lost_segment": LOST_PACKET,
    "tcp.analysis.ack_lost_segment": ACK_LOST_PACKET,
    "tcp.analysis.duplicate_ack": DUPLICATE_ACK,
    "tcp.analysis.zero_window": ZERO_WINDOW,
    "tcp.analysis.zero_window_probe": ZERO_WINDOW_PROBE,
    "tcp.analysis.zero_window_probe_ack": ZERO_WINDOW_PROBE_ACK,
    "tcp.analysis.window_full": WINDOW_FULL,
    "tcp.analysis.window_update": WINDOW_UPDATE,
    "tcp.analysis.keep_alive": KEEP_ALIVE,
    "tcp.analysis.keep_alive_ack": KEEP_ALIVE_ACK,
    "tcp.analysis.reused_ports": REUSED_PORTS,
}

#: Wireshark's TCP_MAX_UNACKED_SEGMENTS: stop remembering segments when ACKs are not seen.
MAX_UNACKED = 10000
#: Wireshark's out-of-order threshold when no handshake RTT is known (3 ms).
OOO_DEFAULT_NS = 3_000_000
#: A plain retransmission after this much silence from the peer is a timeout (Linux tcp_rto_min
#: is 200 ms; other stacks are not quicker).
RTO_SILENCE_NS = 150_000_000
#: A copy of an earlier datagram (same IP ID) within this time is the same packet captured twice.
DUPLICATE_NS = 100_000_000
#: A fast retransmission follows the duplicate ACKs within this time (Wireshark: 20 ms).
FAST_RETRANS_NS = 20_000_000
MAX_EPISODES = 64
_SFR = TCP_SYN | TCP_FIN | TCP_RST


def flag_names(flags: int) -> list[str]:
    return [name for bit, name in FLAG_NAMES.items() if flags & bit]


class Direction:
    """One direction of a conversation: Wireshark's ``tcp_flow_t`` plus our measurements."""

    __slots__ = (
        "base_seq", "nextseq", "nextseqframe", "nextseqtime", "maxseqtobeacked", "lastack", "lastacktime",
        "window", "win_scale", "is_first_ack", "dupacknum", "lastnondupack", "lastsegmentflags", "unacked",
        "firstsent", "right_edge", "rtt_n", "rtt_sum", "rtt_min", "rtt_max", "zw_since", "zw_probes",
        "zw_episodes", "unseen_acked",
    )

    def __init__(self) -> None:
        self.base_seq: int | None = None
        # Wireshark's conventions: 0 means "not yet known" for nextseq, maxseqtobeacked and lastack
        # (so a RST with sequence number 0 leaves nextseq unknown), and the window starts unknown.
        self.nextseq = 0  # one past the highest sequence number sent
        self.nextseqframe = 0
        self.nextseqtime = 0
        self.maxseqtobeacked = 0  # one past the highest contiguous sequence number
        self.lastack = 0
        self.lastacktime = 0
        self.window: int | None = None  # raw (unscaled) window of the last segment
        self.win_scale = -1  # -1 unknown (no SYN seen), -2 no scaling, else the shift
        self.is_first_ack = True
        self.dupacknum = 0
        self.lastnondupack = 0
        self.lastsegmentflags = 0
        #: Unacknowledged segments in sending order: [seq, nextseq, frame, ts, sent_count].
        self.unacked: list[list[int]] = []  # a list: an empty deque costs 600 bytes, ten times more
        #: First transmission of each unacknowledged sequence number: seq -> (frame, ts).
        self.firstsent: dict[int, tuple[int, int, int | None]] = {}  # seq -> (frame, ts, IP ID)
        self.right_edge: int | None = None  # ack + scaled window last advertised
        self.rtt_n = 0
        self.rtt_sum = 0
        self.rtt_min: int | None = None
        self.rtt_max: int | None = None
        #: Zero-window episodes this direction advertised: (first frame, first ts, reopening frame,
        #: reopening ts, probes received); an episode still open has ``zw_since`` set.
        self.zw_since: tuple[int, int] | None = None
        self.zw_probes = 0
        self.zw_episodes: list[tuple[int, int, int, int, int]] = []
        self.unseen_acked = False  # an ACK of data never seen was flagged since we last sent

    def scaled(self, window: int) -> int:
        return window << self.win_scale if self.win_scale > 0 else window

    def rtt(self) -> dict[str, Any] | None:
        if not self.rtt_n:
            return None
        return {"samples": self.rtt_n, "min": self.rtt_min, "avg": self.rtt_sum // self.rtt_n, "max": self.rtt_max}


class Conversation:
    """Wireshark's per-conversation TCP analysis state (``struct tcp_analysis``)."""

    __slots__ = ("key0", "d0", "d1", "first_rtt", "syn_ts")

    def __init__(self, src: str, sport: int) -> None:
        self.key0 = (src, sport)  # direction 0 is the one sent from here
        self.d0 = Direction()
        self.d1 = Direction()
        self.first_rtt = 0  # Wireshark's iRTT: SYN to the ACK that completes the handshake
        self.syn_ts: int | None = None

    def dirs(self, src: str, sport: int) -> tuple[Direction, Direction]:
        if src == self.key0[0] and sport == self.key0[1]:
            return self.d0, self.d1
        return self.d1, self.d0

    def is_new_session(self, src: str, sport: int, flags: int, seq: int) -> int:
        """A SYN or SYN-ACK with another ISN than the first segment of its direction: a new session.

        Returns 0 (same session), 1 (a SYN: Wireshark starts a new conversation) or 2 (a SYN-ACK:
        Wireshark flags the reuse but goes on in the same conversation).
        """
        if not flags & TCP_SYN:
            return 0
        fwd, _ = self.dirs(src, sport)
        if fwd.base_seq is None or seq == fwd.base_seq:
            return 0
        return 2 if flags & TCP_ACK else 1

    # The analysis of one segment ------------------------------------------------------------------
    def analyze(self, src: str, sport: int, flags: int, seq: int, ack: int, seglen: int, window: int,
                ts: int, frame: int, options: bytes | None, ip_id: int | None = None) -> tuple[int, int, int]:
        """Analyze one segment; returns (flags, extra, peer_frame).

        ``extra`` is the duplicate-ACK number for duplicate ACKs, the timeout in ns for RTOs, and
        otherwise 0; ``peer_frame`` the frame of the original (retransmissions) or of the first ACK
        of a duplicate-ACK run.
        """
        fwd, rev = self.dirs(src, sport)
        fl = 0
        extra = 0
        peer_frame = 0
        syn = flags & TCP_SYN
        ackf = flags & TCP_ACK
        sfr = flags & _SFR

        if fwd.base_seq is None:
            fwd.base_seq = seq if syn else (seq - 1) & _MASK
        if rev.base_seq is None and ackf:
            rev.base_seq = (ack - 1) & _MASK  # the ISN is ack - 1 when the SYN went unseen
        if syn:
            if not ackf:
                self.syn_ts = ts  # Wireshark's most recent SYN
            self._window_scaling(fwd, rev, bool(ackf), parse_options(options) if options else None)
        elif ackf and self.syn_ts is not None and not self.first_rtt:
            self.first_rtt = ts - self.syn_ts  # iRTT: the SYN to the first non-SYN ACK

        fwd.unseen_acked = False
        nextseq_f = fwd.nextseq
        rev_window = rev.window

        # ZERO WINDOW PROBE: exactly one byte at the next expected sequence number, peer window 0.
        if seglen == 1 and seq == nextseq_f and rev_window == 0:
            fl |= ZERO_WINDOW_PROBE
        else:
            # ZERO WINDOW: a zero window on anything but SYN/FIN/RST.
            if window == 0 and not sfr:
                fl |= ZERO_WINDOW
            # LOST PACKET: beyond the next expected sequence number (RSTs excepted).
            if nextseq_f and seq_gt(seq, nextseq_f) and not flags & TCP_RST:
                fl |= LOST_PACKET
            # KEEP ALIVE: 0 or 1 byte one below the next expected sequence number.
            if seglen <= 1 and seq == (nextseq_f - 1) & _MASK and not sfr:
                fl |= KEEP_ALIVE
                if rev_window == 0:
                    fl |= ZWP_LINUX
            # WINDOW UPDATE: an empty segment repeating seq/ack with a new, non-zero window.
            if (seglen == 0 and window and window != fwd.window and seq == nextseq_f and ack == fwd.lastack
                    and not sfr):
                fl |= WINDOW_UPDATE
            # WINDOW FULL: data reaching exactly the edge of the peer's advertised window.
            if seglen > 0 and rev.win_scale != -1 and rev_window is not None and not sfr:
                shift = 0 if rev.is_first_ack or rev.win_scale == -2 else rev.win_scale
                if (seq + seglen) & _MASK == (rev.lastack + (rev_window << shift)) & _MASK:
                    fl |= WINDOW_FULL
            same = (seglen == 0 and window == fwd.window and seq == nextseq_f and not sfr)
            if same and window and ack == fwd.lastack and rev.lastsegmentflags & KEEP_ALIVE:
                fl |= KEEP_ALIVE_ACK
                if rev.lastsegmentflags & ZWP_LINUX:
                    fl |= ZWP_LINUX_ACK
            elif (same and window == 0 and (ack == fwd.lastack or ack == (fwd.lastack + 1) & _MASK)
                    and rev.lastsegmentflags & ZERO_WINDOW_PROBE):
                fl |= ZERO_WINDOW_PROBE_ACK
            elif same and window == 0 and ack == fwd.lastack and rev.lastsegmentflags & ZWP_LINUX:
                fl |= ZWP_LINUX_ACK  # Wireshark: a plain zero-window segment
            elif same and window and ack == fwd.lastack:
                # DUPLICATE ACK: seq, ack and window all repeat on an empty segment.
                fwd.dupacknum += 1
                fl |= DUPLICATE_ACK
                extra = fwd.dupacknum
                peer_frame = fwd.lastnondupack

        # finished_fwd: a new ACK value resets the duplicate-ACK run
        if ack != fwd.lastack:
            fwd.lastnondupack = frame
            fwd.dupacknum = 0

        # ACKED LOST PACKET: acknowledges beyond what the other direction was seen to send.
        # Raised once per run: further ACKs of unseen data before the other side sends anything
        # again are not flagged again (as Wireshark 4.0 does).
        if ackf and rev.maxseqtobeacked and seq_gt(ack, rev.maxseqtobeacked):
            if not rev.unseen_acked:
                fl |= ACK_LOST_PACKET
                rev.unseen_acked = True
            rev.maxseqtobeacked = rev.nextseq

        # RETRANSMISSION / FAST RETRANSMISSION / SPURIOUS / OUT-OF-ORDER
        nextseq = (seq + seglen + (1 if flags & (TCP_SYN | TCP_FIN) else 0)) & _MASK
        if (seglen > 0 or flags & (TCP_SYN | TCP_FIN)) and not fl & KEEP_ALIVE:
            not_advanced = bool(nextseq_f) and seq_lt(seq, nextseq_f)
            if seglen > 1 and seq == (nextseq_f - 1) & _MASK:
                not_advanced = False  # new data after a probe byte: not a retransmission
            kind = 0
            if (not_advanced and rev.dupacknum >= 2 and rev.lastack == seq
                    and ts - rev.lastacktime < FAST_RETRANS_NS):
                kind = FAST_RETRANSMISSION
            else:
                ooo_thres = self.first_rtt or OOO_DEFAULT_NS
                if not_advanced and ts - fwd.nextseqtime < ooo_thres and nextseq_f != nextseq:
                    kind = OUT_OF_ORDER
                elif seglen > 0 and rev.lastack and not seq_gt((seq + seglen) & _MASK, rev.lastack):
                    kind = SPURIOUS_RETRANSMISSION
                elif not_advanced:
                    kind = RETRANSMISSION
            if kind:
                fl |= kind
                first = fwd.firstsent.get(seq)
                if (first is not None and ip_id and first[2] == ip_id and kind != OUT_OF_ORDER
                        and ts - first[1] < DUPLICATE_NS):
                    fl |= DUPLICATE_FRAME  # the same IP datagram seen twice: a capture artefact
                if kind != OUT_OF_ORDER:
                    # A timeout: the peer said nothing for at least the minimum RTO. Quicker plain
                    # retransmissions are SACK/RACK-driven recovery (Linux does not wait for 3 dup ACKs).
                    timeout = kind == RETRANSMISSION and ts - rev.lastacktime >= RTO_SILENCE_NS
                    if first is not None:
                        peer_frame = first[0]
                        extra = ts - first[1]
                    else:
                        if kind != SPURIOUS_RETRANSMISSION:
                            fl |= LOST_UPSTREAM  # the first copy never reached the capture point
                        peer_frame = fwd.nextseqframe
                        extra = ts - fwd.nextseqtime
                    if timeout:
                        fl |= RTO
                elif first is None:
                    fl |= LOST_UPSTREAM  # the capture missed the first copy of this out-of-order data

        # Remember the segment (unacknowledged list, first transmissions).
        if seglen or flags & (TCP_SYN | TCP_FIN):
            if seq not in fwd.firstsent:
                if len(fwd.unacked) < MAX_UNACKED:
                    fwd.firstsent[seq] = (frame, ts, ip_id)
                    fwd.unacked.append([seq, nextseq, frame, ts, 1])
            else:
                for seg in fwd.unacked:
                    if seg[0] == seq:
                        seg[4] += 1
                        break

        # (A RST does not move nextseq: a reset carrying another connection's numbers, as after a
        # challenge ACK, would otherwise make the new session look like retransmissions.)
        if (not fwd.nextseq or seq_gt(nextseq, fwd.nextseq)) and not fl & ZERO_WINDOW_PROBE and not flags & TCP_RST:
            fwd.nextseq = nextseq
            fwd.nextseqframe = frame
            fwd.nextseqtime = ts
        if (not fwd.maxseqtobeacked or seq == fwd.maxseqtobeacked) and not fl & ZERO_WINDOW_PROBE:
            fwd.maxseqtobeacked = fwd.nextseq

        # WINDOW SHRINK: the right edge of what we allow the peer to send moved left.
        if ackf and not sfr:
            scaled = window << fwd.win_scale if fwd.win_scale > 0 and not fwd.is_first_ack else window
            edge = (ack + scaled) & _MASK
            if fwd.right_edge is not None and seq_lt(edge, fwd.right_edge) and not fl & (
                    DUPLICATE_ACK | KEEP_ALIVE_ACK | ZWP_LINUX_ACK) and window:
                fl |= WINDOW_SHRINK
            fwd.right_edge = edge
            fwd.is_first_ack = False

        # Zero-window episodes: from the first zero window to the first non-zero one.
        if not sfr:
            if window == 0:
                if fwd.zw_since is None:
                    fwd.zw_since = (frame, ts)
                    fwd.zw_probes = 0
            elif fwd.zw_since is not None:
                if len(fwd.zw_episodes) < MAX_EPISODES:
                    fwd.zw_episodes.append((fwd.zw_since[0], fwd.zw_since[1], frame, ts, fwd.zw_probes))
                fwd.zw_since = None
        if fl & (ZERO_WINDOW_PROBE | ZWP_LINUX):
            rev.zw_probes += 1

        fwd.window = window
        fwd.lastack = ack
        fwd.lastacktime = ts
        fwd.lastsegmentflags = fl

        # ACKs remove what they cover from the other direction; Karn's rule for RTT samples.
        if ackf and rev.unacked:
            unacked = rev.unacked
            done = 0
            for s in unacked:
                if seq_gt(s[1], ack):
                    break
                done += 1
                rev.firstsent.pop(s[0], None)
                if s[1] == ack and s[4] == 1:
                    sample = ts - s[3]
                    rev.rtt_n += 1
                    rev.rtt_sum += sample
                    if rev.rtt_min is None or sample < rev.rtt_min:
                        rev.rtt_min = sample
                    if rev.rtt_max is None or sample > rev.rtt_max:
                        rev.rtt_max = sample
            if done:
                del unacked[:done]
        return fl, extra, peer_frame

    @staticmethod
    def _window_scaling(fwd: Direction, rev: Direction, synack: bool, options: dict[str, Any] | None) -> None:
        """Wireshark's window-scale bookkeeping (``verify_tcp_window_scaling``)."""
        shift = (options or {}).get("wscale")
        if shift is not None:
            fwd.win_scale = min(int(shift), 14)
            if synack and rev.win_scale == -2:
                fwd.win_scale = -2
        else:
            fwd.win_scale = -2
            rev.win_scale = -2
