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
  retransmission timeout; its timeout is the time since the *previous* transmission of the same
  data (the timer restarts at every send, RFC 6298 5.5), so the back-off series (0.24, 0.48,
  0.99 s ...) is reported as the sender's timers ran, not as ages since the first send. A
  retransmission that starts inside a segment (re-packetized data) is matched to the segment
  that covers it.
* **Window shrink** (the right edge of an advertised window moving left).
* **RTT samples**: segment to the ACK that covers it exactly, at the capture point. Karn's rule:
  data sent more than once gives no sample (counted in ``rtt_karn``). A pure ACK of a lone
  segment (nothing else in flight) that comes at least 10 ms and at least 4 times the direction's
  smallest sample later is the receiver's delayed-ACK timer, not the path: counted apart
  (``rtt_dn``, ``rtt_dmax``) and left out of min/avg/max. So ``avg`` is the mean of the path
  samples: the network between the capture point and the receiver and back, plus the receiver's
  immediate turnaround.

Everything here is pure bookkeeping on integers; :class:`Conversation` objects are attached to
tracker connections and survive generation splits exactly as Wireshark's conversations do.
"""

from __future__ import annotations

import operator
import pickle
from typing import Any

from .packet import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN
from .tcpopts import TcpOptions
from .util import straight_line

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
#: A retransmission sent while the receiver's advertised window was below RWND_SMALL_SEGMENTS of
#: the sender's largest segments: the receiver's window, not the path, sets the pace (its ACKs
#: wait when its window cannot open).
RWND_LIMITED = 0x400000
#: An out-of-order segment (Wireshark's reading) every byte of which the capture had already seen:
#: a second copy, i.e. a retransmission, not a late first arrival.
SECOND_COPY = 0x800000

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
    RWND_LIMITED: "receiver_window_limited",
    SECOND_COPY: "second_copy",
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
RWND_SMALL_SEGMENTS = 4
MAX_EPISODES = 64
MAX_REXMITS = 64
#: An RTT sample of a pure ACK of a lone segment this long after it, and this many times the
#: direction's smallest sample, is the receiver's delayed-ACK timer (Linux waits 40 ms at least,
#: macOS and Windows 100-200 ms): not the path.
DELACK_MIN_NS = 10_000_000
DELACK_FACTOR = 4
_SFR = TCP_SYN | TCP_FIN | TCP_RST
_RETRANS_KINDS = RETRANSMISSION | FAST_RETRANSMISSION | SPURIOUS_RETRANSMISSION


#: A FIN repeated sooner than this (Linux's smallest loss-probe timer is 10 ms) was not resent by a timer.
QUICK_FIN_NS = 10_000_000


def _last_send(d: Direction, seq: int, ts: int) -> int:
    """When the segment at ``seq`` was last sent (``ts`` when unknown)."""
    seg = d.firstsent.get(seq) if d.firstsent is not None else None
    return int(seg[6]) if seg is not None else ts - QUICK_FIN_NS


def _covering(unacked: list[list[Any]], seq: int) -> list[Any] | None:
    """The unacknowledged segment whose data includes ``seq`` (the latest one, if several)."""
    for s in reversed(unacked):
        start: int = s[0]
        end: int = s[1]
        if not (seq - start) & 0x80000000 and 0 < ((end - seq) & _MASK) < 0x80000000:
            found: list[Any] = s
            return found
    return None


def flag_names(flags: int) -> list[str]:
    return [name for bit, name in FLAG_NAMES.items() if flags & bit]


class Direction:
    """One direction of a conversation: Wireshark's ``tcp_flow_t`` plus our measurements."""

    __slots__ = (
        "base_seq", "nextseq", "nextseqframe", "nextseqtime", "maxseqtobeacked", "lastack", "lastacktime",
        "window", "win_scale", "is_first_ack", "dupacknum", "lastnondupack", "lastsegmentflags", "unacked",
        "firstsent", "right_edge", "edge_ack", "rtt_n", "rtt_sum", "rtt_min", "rtt_max", "zw_since", "zw_probes",
        "zw_episodes", "zw_more", "unseen_acked", "rtt_dn", "rtt_dmax", "rtt_karn", "max_seg", "last_sent", "rexmits",
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
        #: Unacknowledged segments in sending order: [seq, nextseq, frame, ts, sent_count, IP ID,
        #: ts of the latest transmission].
        #: (A list: an empty deque costs 600 bytes. None while nothing is in flight, as most of the
        #: time on most connections: an empty list and dict cost 120 bytes per direction.)
        self.unacked: list[list[Any]] | None = None
        #: The same segments by sequence number: the first transmission of each (at most one per
        #: sequence number, so a retransmission finds its original without a scan). None together
        #: with ``unacked``.
        self.firstsent: dict[int, list[Any]] | None = None
        self.right_edge: int | None = None  # ack + scaled window last advertised
        self.edge_ack = 0  # the ACK number of that advertisement (the highest ACK so far)
        self.rtt_n = 0
        self.rtt_sum = 0
        self.rtt_min: int | None = None
        self.rtt_max: int | None = None
        #: Zero-window episodes this direction advertised: (first frame, first ts, reopening frame,
        #: reopening ts, probes received); an episode still open has ``zw_since`` set. A tuple, grown
        #: by copying: most directions never have one, and the shared empty tuple costs nothing.
        self.zw_since: tuple[int, int] | None = None
        self.zw_probes = 0
        self.zw_episodes: tuple[tuple[int, int, int, int, int], ...] = ()
        #: The episodes beyond MAX_EPISODES, counted: (episodes, their total and longest ns).
        self.zw_more: tuple[int, int, int] | None = None
        self.unseen_acked = False  # an ACK of data never seen was flagged since we last sent
        self.rtt_dn = 0  # samples that were the receiver's delayed-ACK timer (not in rtt_n)
        self.rtt_dmax = 0  # the longest of them (ns)
        self.rtt_karn = 0  # ACKs of data sent more than once: no sample (Karn's rule)
        self.max_seg = 0  # the largest payload this direction sent
        self.last_sent = 0  # ts of the latest segment with data, SYN or FIN
        #: The latest MAX_REXMITS retransmissions: (seq, end, frame), for D-SACKs to find.
        self.rexmits: tuple[tuple[int, int, int], ...] = ()

    def scaled(self, window: int) -> int:
        return window << self.win_scale if self.win_scale > 0 else window

    def rtt(self) -> dict[str, Any] | None:
        if not self.rtt_n:
            return None
        return {"samples": self.rtt_n, "min": self.rtt_min, "avg": self.rtt_sum // self.rtt_n, "max": self.rtt_max,
                "delayed_ack_samples": self.rtt_dn, "delayed_ack_max": self.rtt_dmax, "karn_skipped": self.rtt_karn}


#: What :meth:`Conversation.compact` keeps of a direction: all but ``firstsent`` (rebuilt from
#: ``unacked``: it holds the same segment lists).
_KEPT = tuple(name for name in Direction.__slots__ if name != "firstsent")
_kept_fields = operator.attrgetter(*_KEPT)
#: samples, sum, min, max (ns) of the path samples; delayed-ACK samples and their max; Karn-skipped ACKs
_RttStats = tuple[int, int, int | None, int | None, int, int, int]
_RTT_FIELDS = ("rtt_n", "rtt_sum", "rtt_min", "rtt_max", "rtt_dn", "rtt_dmax", "rtt_karn")
_rtt_of = operator.itemgetter(*(_KEPT.index(name) for name in _RTT_FIELDS))
_rtt_fields = operator.attrgetter(*_RTT_FIELDS)


_set_kept = straight_line("_set_kept", "d, " + ", ".join(_KEPT), (f"d.{n} = {n}" for n in _KEPT))


def _unpacked_direction(fields: tuple[Any, ...]) -> Direction:
    d = Direction.__new__(Direction)
    _set_kept(d, *fields)
    d.firstsent = None if d.unacked is None else {seg[0]: seg for seg in d.unacked}
    return d


class Conversation:
    """Wireshark's per-conversation TCP analysis state (``struct tcp_analysis``).

    A conversation nobody has touched for a while can be :meth:`compact`-ed: its two directions
    are kept as bytes until ``d0`` or ``d1`` is next read, which brings them back transparently.
    """

    __slots__ = ("src0", "sport0", "d0", "d1", "first_rtt", "syn_ts", "_packed", "dsacked")

    def __init__(self, src: str, sport: int) -> None:
        self.src0 = src  # direction 0 is the one sent from here
        self.sport0 = sport
        self.d0 = Direction()
        self.d1 = Direction()
        self.first_rtt = 0  # Wireshark's iRTT: SYN to the ACK that completes the handshake
        self.syn_ts: int | None = None
        self._packed: bytes | None = None  # the two directions, while compacted
        #: Frames of retransmissions proven spurious, the receiver already had the data: by a D-SACK
        #: (RFC 2883), or a FIN resent after its ACK. None until one is seen.
        self.dsacked: set[int] | None = None

    def dirs(self, src: str, sport: int) -> tuple[Direction, Direction]:
        if src == self.src0 and sport == self.sport0:
            return self.d0, self.d1
        return self.d1, self.d0

    # Compaction -----------------------------------------------------------------------------------
    # Thousands of conversations sit idle at any time: those of connections that have closed and
    # wait for Zeek's timers, and those the tracker keeps after their connection ended (a later
    # session on the tuple continues them). As objects their two directions cost about 1.2 kB;
    # pickled, about 230 bytes. They stay the same Conversation objects (a connection and its
    # successor on the tuple share one, as Wireshark's do), only their insides are packed.
    def compact(self) -> None:
        """Pack the two directions into bytes until they are next read (see
        :class:`_PackedConversation`)."""
        if self._packed is None:
            # (pickle: our own numbers, tuples and lists, read back by this process only; smaller
            # and quicker here than marshal)
            self._packed = pickle.dumps((_kept_fields(self.d0), _kept_fields(self.d1)), pickle.HIGHEST_PROTOCOL)
            del self.d0, self.d1
            self.__class__ = _PackedConversation

    def rtt_stats(self, src: str, sport: int) -> tuple[_RttStats, _RttStats]:
        """(samples, sum, min, max, delayed-ACK samples, their max, Karn-skipped ACKs) of the RTT of
        the data sent from ``src``:``sport``, then of the data sent to it (Direction.rtt in raw
        numbers), read without unpacking a compacted conversation."""
        first = src == self.src0 and sport == self.sport0
        packed = self._packed
        if packed is None:
            fwd, rev = (self.d0, self.d1) if first else (self.d1, self.d0)
            return _rtt_fields(fwd), _rtt_fields(rev)
        f0, f1 = pickle.loads(packed)
        s0, s1 = _rtt_of(f0), _rtt_of(f1)
        return (s0, s1) if first else (s1, s0)

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
    # It runs for every TCP segment of a capture, so it is written for the interpreter: fields read
    # more than once are bound to locals, modulo-2^32 comparisons are spelled out inline (they are
    # pcapsleuth.seq's seq_gt/seq_lt: ``0 < (a - b) & _MASK < 2^31`` is a after b), and the checks
    # that need an empty segment or a payload are grouped so a segment skips those it cannot meet.
    def analyze(self, src: str, sport: int, flags: int, seq: int, ack: int, seglen: int, window: int,
                ts: int, frame: int, syn_options: TcpOptions | None, ip_id: int | None = None) -> tuple[int, int, int]:
        """Analyze one segment; returns (flags, extra, peer_frame).

        ``syn_options``: the parsed TCP options of a SYN or SYN-ACK (None: none, or not a SYN).
        ``extra`` is the duplicate-ACK number for duplicate ACKs, the timeout in ns for RTOs, and
        otherwise 0; ``peer_frame`` the frame of the original (retransmissions) or of the first ACK
        of a duplicate-ACK run.
        """
        if src == self.src0 and sport == self.sport0:
            fwd, rev = self.d0, self.d1
        else:
            fwd, rev = self.d1, self.d0
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
            self._window_scaling(fwd, rev, bool(ackf), syn_options)
            fwd.right_edge = None  # a new sequence space (a session reusing the tuple): no old edge
        elif ackf and self.syn_ts is not None and not self.first_rtt:
            self.first_rtt = ts - self.syn_ts  # iRTT: the SYN to the first non-SYN ACK

        fwd.unseen_acked = False
        nextseq_f = fwd.nextseq
        lastack_f = fwd.lastack
        rev_window = rev.window

        # ZERO WINDOW PROBE: exactly one byte at the next expected sequence number, peer window 0.
        if seglen == 1 and seq == nextseq_f and rev_window == 0:
            fl = ZERO_WINDOW_PROBE
        else:
            # ZERO WINDOW: a zero window on anything but SYN/FIN/RST.
            if window == 0 and not sfr:
                fl = ZERO_WINDOW
            # LOST PACKET: beyond the next expected sequence number (RSTs excepted).
            if nextseq_f and 0 < ((seq - nextseq_f) & _MASK) < 0x80000000 and not flags & TCP_RST:
                fl |= LOST_PACKET
            if sfr:
                pass  # none of the checks below applies to a SYN, FIN or RST
            elif seglen == 0:
                if seq == nextseq_f:
                    if window != fwd.window:
                        # WINDOW UPDATE: an empty segment repeating seq/ack with a new, non-zero window.
                        if window and ack == lastack_f:
                            fl |= WINDOW_UPDATE
                    # Below: an empty segment repeating seq and window (Wireshark's "same" segment).
                    elif window and ack == lastack_f and rev.lastsegmentflags & KEEP_ALIVE:
                        fl |= KEEP_ALIVE_ACK
                        if rev.lastsegmentflags & ZWP_LINUX:
                            fl |= ZWP_LINUX_ACK
                    elif (window == 0 and (ack == lastack_f or ack == (lastack_f + 1) & _MASK)
                            and rev.lastsegmentflags & ZERO_WINDOW_PROBE):
                        fl |= ZERO_WINDOW_PROBE_ACK
                    elif window == 0 and ack == lastack_f and rev.lastsegmentflags & ZWP_LINUX:
                        fl |= ZWP_LINUX_ACK  # Wireshark: a plain zero-window segment
                    elif window and ack == lastack_f:
                        # DUPLICATE ACK: seq, ack and window all repeat on an empty segment.
                        fwd.dupacknum += 1
                        fl |= DUPLICATE_ACK
                        extra = fwd.dupacknum
                        peer_frame = fwd.lastnondupack
                elif seq == (nextseq_f - 1) & _MASK:
                    # KEEP ALIVE: 0 or 1 byte one below the next expected sequence number.
                    fl |= KEEP_ALIVE
                    if rev_window == 0:
                        fl |= ZWP_LINUX
            else:
                if seglen == 1 and seq == (nextseq_f - 1) & _MASK:
                    fl |= KEEP_ALIVE  # (the 1-byte kind)
                    if rev_window == 0:
                        fl |= ZWP_LINUX
                # WINDOW FULL: data reaching exactly the edge of the peer's advertised window.
                if rev.win_scale != -1 and rev_window is not None:
                    shift = 0 if rev.is_first_ack or rev.win_scale == -2 else rev.win_scale
                    if (seq + seglen) & _MASK == (rev.lastack + (rev_window << shift)) & _MASK:
                        fl |= WINDOW_FULL

        # finished_fwd: a new ACK value resets the duplicate-ACK run
        if ack != lastack_f:
            fwd.lastnondupack = frame
            fwd.dupacknum = 0

        # ACKED LOST PACKET: acknowledges beyond what the other direction was seen to send.
        # Raised once per run: further ACKs of unseen data before the other side sends anything
        # again are not flagged again (as Wireshark 4.0 does).
        if ackf:
            rev_max = rev.maxseqtobeacked
            if rev_max and 0 < ((ack - rev_max) & _MASK) < 0x80000000:
                if not rev.unseen_acked:
                    fl |= ACK_LOST_PACKET
                    rev.unseen_acked = True
                rev.maxseqtobeacked = rev.nextseq

        # RETRANSMISSION / FAST RETRANSMISSION / SPURIOUS / OUT-OF-ORDER
        synfin = flags & (TCP_SYN | TCP_FIN)
        nextseq = (seq + seglen + (1 if synfin else 0)) & _MASK
        if (seglen > 0 or synfin) and not fl & KEEP_ALIVE:
            not_advanced = bool(nextseq_f) and bool((seq - nextseq_f) & 0x80000000)
            if seglen > 1 and seq == (nextseq_f - 1) & _MASK:
                not_advanced = False  # new data after a probe byte: not a retransmission
            kind = 0
            if not_advanced:
                if rev.dupacknum >= 2 and rev.lastack == seq and ts - rev.lastacktime < FAST_RETRANS_NS:
                    kind = FAST_RETRANSMISSION
                elif ts - fwd.nextseqtime < (self.first_rtt or OOO_DEFAULT_NS) and nextseq_f != nextseq:
                    kind = OUT_OF_ORDER
            # (a segment that did advance can only be spurious: data the peer has acknowledged)
            if not kind:
                rev_lastack = rev.lastack
                end = (seq + seglen) & _MASK
                if seglen > 0 and rev_lastack and not 0 < ((end - rev_lastack) & _MASK) < 0x80000000:
                    kind = SPURIOUS_RETRANSMISSION  # it ends at or before what the peer acknowledged
                elif not_advanced:
                    kind = RETRANSMISSION
                    if flags & TCP_FIN and not seglen and (
                            (rev_lastack and not 0 < ((nextseq - rev_lastack) & _MASK) < 0x80000000)
                            or ts - _last_send(fwd, seq, ts) < QUICK_FIN_NS):
                        # A FIN resent after the peer acknowledged it (Wireshark: a retransmission,
                        # its spurious test counts payload only), or repeated before any timer could
                        # fire (BSD stacks send their FIN again to carry the ACK of the peer's FIN):
                        # no loss repair, as a D-SACKed resend.
                        if self.dsacked is None:
                            self.dsacked = set()
                        self.dsacked.add(frame)
            if kind:
                fl |= kind
                if len(fwd.rexmits) < MAX_REXMITS:
                    fwd.rexmits += ((seq, nextseq, frame),)
                else:
                    fwd.rexmits = fwd.rexmits[1:] + ((seq, nextseq, frame),)
                first = fwd.firstsent.get(seq) if fwd.firstsent is not None else None  # see unacked
                if (first is not None and ip_id and first[5] == ip_id and kind != OUT_OF_ORDER
                        and ts - first[3] < DUPLICATE_NS):
                    fl |= DUPLICATE_FRAME  # the same IP datagram seen twice: a capture artefact
                if first is None and fwd.unacked:
                    first = _covering(fwd.unacked, seq)  # re-packetized: it starts inside a segment
                if (seglen and rev_window is not None and rev.win_scale != -1
                        and rev.scaled(rev_window) < RWND_SMALL_SEGMENTS * max(fwd.max_seg, seglen)):
                    fl |= RWND_LIMITED
                if kind != OUT_OF_ORDER:
                    # A timeout: the peer said nothing for at least the minimum RTO. Quicker plain
                    # retransmissions are SACK/RACK-driven recovery (Linux does not wait for 3 dup ACKs).
                    timeout = (kind == RETRANSMISSION and ts - rev.lastacktime >= RTO_SILENCE_NS
                               and (first is None or ts - first[6] >= RTO_SILENCE_NS))
                    if first is not None:
                        peer_frame = first[2]
                        # Since the previous transmission of this data; a timeout's timer restarted
                        # at the sender's latest transmission (a tail loss probe, another timeout)
                        # or the peer's latest segment, whichever came last.
                        since = first[6]
                        if timeout:  # (a burst resent by one timeout: the followers' timer is ~0)
                            since = max(since, *(t for t in (fwd.last_sent, rev.lastacktime) if t <= ts))
                        extra = max(0, ts - since)
                    else:
                        if kind != SPURIOUS_RETRANSMISSION:
                            fl |= LOST_UPSTREAM  # the first copy never reached the capture point
                        peer_frame = fwd.nextseqframe
                        extra = ts - fwd.nextseqtime
                    if timeout:
                        fl |= RTO
                elif first is None:
                    fl |= LOST_UPSTREAM  # the capture missed the first copy of this out-of-order data
                elif not 0 < ((nextseq - nextseq_f) & _MASK) < 0x80000000:
                    fl |= SECOND_COPY  # every byte of it was captured before: a retransmission

        # Remember the segment (unacknowledged list, first transmissions).
        if seglen > fwd.max_seg:
            fwd.max_seg = seglen
        if seglen or synfin:
            fwd.last_sent = ts
            firstsent = fwd.firstsent
            seg: list[Any] | None
            if firstsent is None:
                seg = [seq, nextseq, frame, ts, 1, ip_id, ts]
                fwd.firstsent = {seq: seg}
                fwd.unacked = [seg]
            else:
                seg = firstsent.get(seq)
                if seg is not None:
                    seg[4] += 1
                    seg[6] = ts
                elif len(firstsent) < MAX_UNACKED:  # (as long as unacked)
                    sent = 1
                    if fl & _RETRANS_KINDS:  # re-packetized data: the covering segment was resent
                        cover = _covering(fwd.unacked, seq) if fwd.unacked else None
                        if cover is not None:
                            cover[4] += 1
                            cover[6] = ts
                        sent = 2  # (its data was sent before: no RTT sample, Karn's rule)
                    seg = [seq, nextseq, frame, ts, sent, ip_id, ts]
                    firstsent[seq] = seg
                    unacked = fwd.unacked
                    assert unacked is not None  # None only together with firstsent
                    unacked.append(seg)

        # (A RST does not move nextseq: a reset carrying another connection's numbers, as after a
        # challenge ACK, would otherwise make the new session look like retransmissions.)
        if ((not nextseq_f or 0 < ((nextseq - nextseq_f) & _MASK) < 0x80000000) and not fl & ZERO_WINDOW_PROBE
                and not flags & TCP_RST):
            fwd.nextseq = nextseq
            fwd.nextseqframe = frame
            fwd.nextseqtime = ts
        if (not fwd.maxseqtobeacked or seq == fwd.maxseqtobeacked) and not fl & ZERO_WINDOW_PROBE:
            fwd.maxseqtobeacked = fwd.nextseq

        if not sfr:
            # WINDOW SHRINK: the right edge of what we allow the peer to send moved left.
            if ackf:
                scaled = window << fwd.win_scale if fwd.win_scale > 0 and not fwd.is_first_ack else window
                edge = (ack + scaled) & _MASK
                right_edge = fwd.right_edge
                # A shrink is a left move beyond what rounding explains (RFC 7323 section 2.4): each
                # advertisement is the real window rounded to the scale unit, up or down, so two of
                # them can differ by up to 2 * (unit - 1) with the real edge never moving left. With
                # the scale unknown (no SYN seen) the unit is unknown: nothing is judged. A segment
                # whose ACK is behind the last one is an old copy (reordered, or mirrored from
                # another VLAN): its edge is not a new advertisement.
                unit = 1 << fwd.win_scale if fwd.win_scale > 0 else 1
                stale = right_edge is not None and 0 < ((fwd.edge_ack - ack) & _MASK) < 0x80000000
                if (right_edge is not None and fwd.win_scale != -1 and window and not stale
                        and (right_edge - edge) & _MASK < 0x80000000
                        and (right_edge - edge) & _MASK > 2 * (unit - 1)
                        and not fl & (DUPLICATE_ACK | KEEP_ALIVE_ACK | ZWP_LINUX_ACK)):
                    fl |= WINDOW_SHRINK
                if not stale:
                    fwd.right_edge = edge
                    fwd.edge_ack = ack
                fwd.is_first_ack = False

            # Zero-window episodes: from the first zero window to the first non-zero one.
            if window == 0:
                if fwd.zw_since is None:
                    fwd.zw_since = (frame, ts)
                    fwd.zw_probes = 0
            elif fwd.zw_since is not None:
                if len(fwd.zw_episodes) < MAX_EPISODES:
                    fwd.zw_episodes += ((fwd.zw_since[0], fwd.zw_since[1], frame, ts, fwd.zw_probes),)
                else:
                    took, more = ts - fwd.zw_since[1], fwd.zw_more
                    fwd.zw_more = (1, took, took) if more is None else (more[0] + 1, more[1] + took, max(more[2], took))
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
            firstsent = rev.firstsent
            assert firstsent is not None
            done = 0
            for s in unacked:
                if 0 < ((s[1] - ack) & _MASK) < 0x80000000:  # ends after the ACK: still unacknowledged
                    break
                done += 1
                firstsent.pop(s[0], None)
                if s[1] == ack:
                    if s[4] != 1:
                        rev.rtt_karn += 1
                        continue
                    sample = ts - s[3]
                    low = rev.rtt_min
                    if (not seglen and not sfr and done == 1 and len(unacked) == 1 and low is not None
                            and sample >= DELACK_MIN_NS and sample >= DELACK_FACTOR * low):
                        # A pure ACK of a lone segment, long after the path's time: the receiver's
                        # delayed-ACK timer (RFC 1122 4.2.3.2; Linux 40 ms, Windows 200 ms).
                        rev.rtt_dn += 1
                        if sample > rev.rtt_dmax:
                            rev.rtt_dmax = sample
                        continue
                    rev.rtt_n += 1
                    rev.rtt_sum += sample
                    if low is None or sample < low:
                        rev.rtt_min = sample
                    if rev.rtt_max is None or sample > rev.rtt_max:
                        rev.rtt_max = sample
            if done:
                del unacked[:done]
                if not unacked:
                    # Nothing in flight: let both go (a dict keeps the size it grew to, and
                    # thousands of idle connections each kept a few hundred bytes).
                    rev.unacked = rev.firstsent = None
        return fl, extra, peer_frame

    def sack(self, src: str, sport: int, ack: int, blocks: list[tuple[int, int]]) -> None:
        """SACK blocks of a segment sent from ``src``:``sport`` acknowledging ``ack``. A D-SACK (RFC 2883:
        the first block below the cumulative ACK, or inside the second block) reports data that
        arrived twice: the retransmissions of it were spurious."""
        if not blocks:
            return
        left, right = blocks[0]
        below = not 0 < ((right - ack) & _MASK) < 0x80000000  # right <= ack
        inside = (len(blocks) > 1 and not 0 < ((blocks[1][0] - left) & _MASK) < 0x80000000
                  and not 0 < ((right - blocks[1][1]) & _MASK) < 0x80000000)
        if not below and not inside:
            return
        _, rev = self.dirs(src, sport)
        for seq, end, frame in rev.rexmits:
            if 0 < ((end - left) & _MASK) < 0x80000000 and 0 < ((right - seq) & _MASK) < 0x80000000:
                if self.dsacked is None:
                    self.dsacked = set()
                self.dsacked.add(frame)

    @staticmethod
    def _window_scaling(fwd: Direction, rev: Direction, synack: bool, options: TcpOptions | None) -> None:
        """Wireshark's window-scale bookkeeping (``verify_tcp_window_scaling``)."""
        shift = (options or {}).get("wscale")
        if shift is not None:
            fwd.win_scale = min(int(shift), 14)
            if synack and rev.win_scale == -2:
                fwd.win_scale = -2
        else:
            fwd.win_scale = -2
            rev.win_scale = -2


class _PackedConversation(Conversation):
    """A compacted :class:`Conversation`: reading ``d0`` or ``d1`` unpacks it and makes it a plain
    ``Conversation`` again. (The unpacking ``__getattr__`` is here, not on ``Conversation``: a class
    with ``__getattr__`` loses CPython's fast attribute reads, and this one is read on every
    segment.)"""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if name not in ("d0", "d1"):  # (first: copy and pickle probe for other names)
            raise AttributeError(name)
        packed = self._packed
        if packed is None:
            raise AttributeError(name)
        self._packed = None
        self.d0, self.d1 = (_unpacked_direction(fields) for fields in pickle.loads(packed))
        self.__class__ = Conversation  # type: ignore[assignment]  # (a plain one again: same layout)
        return self.d0 if name == "d0" else self.d1
