"""Connection tracking: two endpoint state machines per TCP connection, in Zeek's spirit.

Each TCP connection holds two :class:`Endpoint` objects. Every packet goes through one fixed
pipeline, modelled on Zeek's TCP analyzer (``TCPSessionAdapter::Process``):

    flags -> endpoint init -> relative seq -> history -> window -> ack -> last seq
          -> Zeek state update -> gap check -> reassembly bookkeeping -> RFC 793 inference

so that ``conn_state`` and ``history`` agree with Zeek's conn.log, while the RFC 793 state each
side's kernel is probably in (what ``ss`` would show) is inferred on top, with the frame of every
change. Anomalies are raised here only as facts on the connection (counters, frames); what they
mean is decided by the detectors.

Generations: a 4-tuple seen again after a close, a reset or with a new ISN is a *new* connection,
linked to its predecessor (see :meth:`Tracker._is_reuse`).
"""

from __future__ import annotations

import enum
import itertools
import operator
import pickle
import struct
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol

from .community_id import community_id
from .decode import GRE_NOT_DECODED, TOO_DEEP
from .packet import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, TCP_URG, Cksum, Packet
from .seq import seq_delta
from .tcpanalysis import (
    DUPLICATE_FRAME,
    FAST_RETRANSMISSION,
    FLAG_NAMES,
    KEEP_ALIVE,
    LOST_UPSTREAM,
    RETRANSMISSION,
    REUSED_PORTS,
    RTO,
    SPURIOUS_RETRANSMISSION,
    SYN_RETRANSMISSION,
    Conversation,
)
from .tcpopts import TcpOptions, parse_options
from .util import iso_ts, pack_ints, straight_line, unpack_ints

__all__ = [
    "EndpointState",
    "Endpoint",
    "Connection",
    "Tracker",
    "conn_state",
    "counted_bits",
    "uid_index",
    "uid_of",
    "LIKELY_SERVER_PORTS",
    "MAX_CONNECTIONS",
]

_MASK = 0xFFFFFFFF
TOO_LARGE_SEQ_DELTA = 1048576  # Zeek's bound on believable SYN/RST sequence jumps
#: Packets kept per connection as evidence (the first ones, plus SYN/FIN/RST up to the same number).
EVIDENCE_FIRST = 48
EVIDENCE_CONTROL = 64
_SLIMMED = EVIDENCE_CONTROL + 1  # n_control_evidence of a connection slimmed after a clean close
_SLIMMING = EVIDENCE_CONTROL + 2  # ... while the packet that completed that close is processed
MAX_TRANSITIONS = 48
MAX_BLOCKS = 64
_RETRANS_FAMILY = RETRANSMISSION | FAST_RETRANSMISSION | SPURIOUS_RETRANSMISSION | RTO
#: Analysis state of retired connections kept for a later session on the same tuple.
RECENT_CONVERSATIONS = 16384  # out-of-order ranges remembered per endpoint for gap detection
#: Connections tracked at once by default; beyond it the least recently active tenth is finished.
MAX_CONNECTIONS = 200_000
#: Streaming: 4-tuples whose last connection is remembered for linking a successor to it (about
#: 250 bytes each; twice RECENT_CONVERSATIONS: a tuple reused later than that has lost its
#: Wireshark conversation anyway. At 2,000 connections a second that is 16 s of them).
RECENT_RETIRED = 1 << 15
#: Streaming: how often (capture time) the active table is swept, and how far timestamps may step
#: back without a connection being retired early.
SWEEP_EVERY_NS = 500_000_000
SWEEP_SLACK_NS = 2_000_000_000
#: Streaming: a TCP connection silent this long is packed (``Connection.compact``) until its next
#: packet, or its retirement, reads it.
COMPACT_IDLE_NS = 250_000_000
#: UDP and ICMP "connections" end after this much silence.
OTHER_TIMEOUT_NS = 60_000_000_000
#: A closed connection whose tuple stays silent this long is final (Zeek's tcp_close_delay is 5 s).
CLOSE_LINGER_NS = 5_000_000_000
#: An idle connection is final after this long (Zeek's tcp_inactivity_timeout).
INACTIVITY_NS = 300_000_000_000
#: An unanswered attempt is over after this long (Zeek's tcp_attempt_delay).
ATTEMPT_NS = 5_000_000_000
#: Zeek's tcp_storm_thresh and tcp_storm_interarrival_thresh: the RST that makes an endpoint's count
#: reach this many, sent within this long of its previous packet, raises the weird ``RST_storm``.
STORM_THRESH = 1000
STORM_INTERARRIVAL_NS = 1_000_000_000
#: Frames kept per weird name on a connection (the rest are counted: ``Connection.overflow``).
WEIRD_FRAMES = 16
#: Hosts told apart in ``Tracker.checksum_facts`` (the rest are counted under ``OTHER_HOSTS``).
CHECKSUM_HOSTS = 1000
OTHER_HOSTS = "other hosts"
#: Segments left out for a bad checksum whose fate (ACKed, resent) is followed per connection.
BAD_SEGMENTS_JUDGED = 16
#: Zeek's tcp_partial_close_delay, tcp_SYN_timeout and tcp_session_timer.
PARTIAL_CLOSE_NS = 3_000_000_000
EXPIRE_FIRST_NS = 5_000_000_000
EXPIRE_EVERY_NS = 6_000_000_000


class EndpointState(enum.IntEnum):
    """Zeek's endpoint states (the numbers Zeek prints)."""

    INACTIVE = 0  # nothing seen from this side yet
    SYN_SENT = 1  # sent a SYN (originator) and nothing that completes the handshake
    SYN_ACK_SENT = 2  # sent a SYN-ACK as the first thing we saw from it
    PARTIAL = 3  # seen mid-stream: data or ACKs without a handshake
    ESTABLISHED = 4  # the handshake completed from this side's point of view
    CLOSED = 5  # sent a FIN
    RESET = 6  # sent a RST


_INACTIVE, _SYN_SENT, _SYN_ACK_SENT, _PARTIAL, _ESTABLISHED, _CLOSED, _RESET = range(7)
_STATE_NAMES = tuple(s.name for s in EndpointState)

# History masks (Zeek's HIST_*): a letter is recorded once per direction.
_H_SYN, _H_FIN, _H_RST, _H_FIN_RST, _H_DATA, _H_ACK, _H_MULTI = 0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x40

_SFR = TCP_SYN | TCP_FIN | TCP_RST
# Looked up once here: reading an enum member off its class costs more than a dict lookup.
_CK_GOOD, _CK_BAD, _CK_OFFLOADED, _CK_BAD_IP, _CK_ZERO_IP = (Cksum.GOOD, Cksum.BAD, Cksum.OFFLOADED, Cksum.BAD_IP,
                                                          Cksum.ZERO_IP)
_NO_OPTIONS: Mapping[str, Any] = MappingProxyType({})

#: Ports Zeek treats as "likely server" ports with its default scripts loaded (the ports its
#: analyzers register). A connection first seen from such a port is flipped (Zeek's
#: WantConnection heuristic).
LIKELY_SERVER_PORTS = frozenset({
    21, 22, 23, 25, 53, 79, 80, 81, 88, 102, 110, 111, 135, 137, 139, 143, 161, 162, 389, 443, 445,
    465, 502, 513, 514, 563, 585, 587, 614, 631, 636, 989, 990, 992, 993, 995, 1080, 1194, 1433, 1434,
    1812, 1883, 2049, 2811, 3128, 3268, 3306, 3389, 5060, 5061, 5222, 5223, 5269, 5432, 5900, 6379, 6666,
    6667, 6668, 6669, 8000, 8080, 8888, 20000,
})

# RFC 793 states as inferred per side.
SYN_SENT_S = "SYN-SENT"
SYN_RCVD_S = "SYN-RECEIVED"
ESTAB_S = "ESTABLISHED"
FIN_WAIT_1 = "FIN-WAIT-1"
FIN_WAIT_2 = "FIN-WAIT-2"
CLOSE_WAIT = "CLOSE-WAIT"
CLOSING = "CLOSING"
LAST_ACK = "LAST-ACK"
TIME_WAIT = "TIME-WAIT"
CLOSED_S = "CLOSED"
#: ``Connection._transitions``: one record per state change, packed (frame, ts, side << 4 | state),
#: 17 bytes where a tuple of four costs about 140 with its integers.
_TRANSITION = struct.Struct("<qqB")
_TCP_STATES = (SYN_SENT_S, SYN_RCVD_S, ESTAB_S, FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT,
               CLOSED_S)
_TCP_STATE_CODE = {name: i for i, name in enumerate(_TCP_STATES)}
_SIDES = ("orig", "resp")
_INT64_MAX = 2**63 - 1


_SYN_OPTS: dict[bytes, TcpOptions] = {}


class Endpoint:
    """One side of a TCP connection: Zeek's endpoint state plus what pcapsleuth measures."""

    __slots__ = (
        "addr", "port", "is_orig", "state", "prev_state", "start_seq", "last_seq", "ack_seq", "seq_wraps",
        "ack_wraps", "window_scale", "window", "window_seq", "window_ack_seq", "fin_cnt", "rst_cnt", "syn_cnt",
        "fin_seq", "hist_last_syn", "hist_last_fin", "hist_last_rst", "gap_cnt", "did_close", "pkts", "ip_bytes",
        "last_reassem", "trim_seq", "blocks", "gap_bytes", "tcp_state", "data_bytes", "rxmit_pkts",
        "rxmit_bytes", "isn", "syn_raw", "first_ttl", "first_mac", "last_ts", "fin_raw", "zero_windows",
        "bad_checksums", "offloaded_checksums", "stale_checksums", "rsts", "fins", "syns", "data_pkts", "ts_first",
        "ts_last", "ts_pkts", "sack_pkts", "sack_blocks", "sack_max_edge", "max_window",
    )

    # Thousands of these live at once (two per tracked connection): every slot costs 8 bytes per
    # endpoint, and lists that most connections never fill are not allocated up front (frame
    # lists are tuples, grown by copying up to 32 entries; ``blocks`` is None until needed).
    def __init__(self, addr: str, port: int, is_orig: bool) -> None:
        self.addr = addr
        self.port = port
        self.is_orig = is_orig
        self.state = _INACTIVE
        self.prev_state = _INACTIVE
        self.start_seq = self.last_seq = self.ack_seq = 0
        self.seq_wraps = self.ack_wraps = 0
        self.window_scale = 0
        self.window = self.window_seq = self.window_ack_seq = 0
        self.fin_cnt = self.rst_cnt = self.syn_cnt = 0
        self.fin_seq = 0
        self.hist_last_syn = self.hist_last_fin = self.hist_last_rst = 0
        self.gap_cnt = 0  # content gaps (Zeek's history "G" counter; "C", "T", "W" count below)
        self.did_close = False
        self.pkts = 0
        self.ip_bytes = 0
        self.last_reassem = 1
        self.trim_seq = 1
        self.blocks: list[list[int]] | None = None  # out-of-order ranges [start, end) seen, by start
        self.gap_bytes = 0
        self.tcp_state: str | None = None
        self.data_bytes = 0
        self.rxmit_pkts = 0  # also Zeek's history "T" counter
        self.rxmit_bytes = 0
        self.isn: int | None = None
        #: The raw TCP options of the SYN (or SYN-ACK) that set ``syn_opts``: parsed when read (a
        #: parsed dict per endpoint cost ~250 bytes for every connection in memory; the bytes are
        #: usually the SYN packet's own).
        self.syn_raw: bytes | None = None
        self.first_ttl: int | None = None
        self.first_mac: str | None = None
        self.last_ts = 0
        self.fin_raw: int | None = None  # raw sequence number of our FIN
        self.zero_windows = 0  # also Zeek's history "W" counter
        self.bad_checksums = 0  # also Zeek's history "C" counter
        self.offloaded_checksums = 0
        #: Frames with a wrong checksum analyzed as sent: most of this side's frames had one (see
        #: ``Tracker._left_out``): a rewritten or anonymised capture, or offload the NIC fills in.
        self.stale_checksums = 0
        self.rsts: tuple[int, ...] = ()  # frames of our first 32 RSTs, FINs and SYNs
        self.fins: tuple[int, ...] = ()
        self.syns: tuple[int, ...] = ()
        self.data_pkts = 0
        self.ts_first: int | None = None  # TCP timestamp option: first and last TSval sent
        self.ts_last: int | None = None
        self.ts_pkts = 0
        self.sack_pkts = 0  # packets carrying SACK blocks (selective acks for the peer's data)
        self.sack_blocks = 0
        self.sack_max_edge: int | None = None  # highest right edge SACKed, relative to the peer's ISN
        self.max_window = 0  # the largest scaled window advertised (outside SYN/FIN/RST)

    @property
    def syn_opts(self) -> TcpOptions | None:
        """The parsed options of this side's SYN (``pcapsleuth.tcpopts.parse_options``), None
        before one was seen."""
        raw = self.syn_raw
        if raw is None:
            return None
        # (The report, detectors and JSON of one connection read it several times in a row: the
        # last few parses are kept, by their bytes. Callers only read the dict.)
        opts = _SYN_OPTS.get(raw)
        if opts is None:
            if len(_SYN_OPTS) >= 16:
                _SYN_OPTS.clear()
            opts = _SYN_OPTS[raw] = parse_options(raw)
        return opts

    # Zeek's sequence bookkeeping --------------------------------------------------------------
    def update_last_seq(self, seq: int) -> None:
        if seq < self.last_seq:
            self.seq_wraps += 1
        self.last_seq = seq

    def update_ack_seq(self, seq: int) -> None:
        if seq < self.ack_seq:
            self.ack_wraps += 1
        self.ack_seq = seq

    def rel(self, seq: int, wraps: int) -> int:
        return ((wraps << 32) | seq) - self.start_seq

    def no_data_acked(self) -> bool:
        ack = (self.ack_wraps << 32) | self.ack_seq
        return ack == self.start_seq or ack == self.start_seq + 1

    def size(self, peer: Endpoint) -> int:
        """Bytes of payload sent, measured in sequence space (Zeek's TCP_Endpoint::Size)."""
        if (self.prev_state == _SYN_SENT and self.state == _RESET and peer.state == _INACTIVE
                and not self.no_data_acked()):
            return 0
        last64 = (self.seq_wraps << 32) | self.last_seq
        ack64 = (self.ack_wraps << 32) | self.ack_seq
        size = (last64 if last64 > ack64 else ack64) - self.start_seq
        if size < 0:
            size &= 0xFFFFFFFFFFFFFFFF  # Zeek computes this in uint64
        if size:
            size -= 1
        if self.fin_cnt and size:
            size -= 1
        return size

    def set_state(self, new: int) -> None:
        if new != self.state:
            self.prev_state = self.state
            self.state = new

    @property
    def state_name(self) -> str:
        return _STATE_NAMES[self.state]  # EndpointState(self.state).name, without building the member


_POWERS_OF_TEN = frozenset(10**i for i in range(20))


def _scaled(conn: Connection, code: str, ep: Endpoint, n: int) -> None:
    """Zeek's ScaledHistoryEntry: the letter is added at the 1st, 10th, 100th ... occurrence (``n``
    is the count including this one; Zeek's threshold, multiplied by 10 each time, is implied)."""
    if n in _POWERS_OF_TEN:
        conn.history += code if ep.is_orig else code.lower()


class Connection:
    """One TCP (or UDP/ICMP) connection: two endpoints, Zeek's history, and our own facts."""

    # Tens of thousands of these can be open at once (a busy host's capture, streamed): each slot
    # is 8 bytes per connection, so what can be derived is (``uid`` from ``index``), the history is
    # one string, and the RFC 793 transitions are packed into bytes rather than a list of tuples.
    __slots__ = (
        "index", "key", "proto", "ip_version", "orig", "resp", "history", "hist_seen", "first_ts",
        "last_ts", "first_frame", "last_frame", "predecessor", "pred_info", "is_partial", "first_seen",
        "flipped", "first_was_synack", "syn_ts", "synack_ts", "ack_ts", "syn_frame", "synack_frame",
        "ack_frame", "evidence", "n_control_evidence", "_transitions", "close_first", "close_how",
        "close_frame", "closed_ts", "vlan", "finished", "weirds", "iface", "successor",
        "last_syn_ts", "delete_at", "partial_close_at", "ws", "events", "event_counts", "events_dropped",
        "event_bits", "pred_facts", "rtt_final", "overflow", "_packed", "_expires",
    )

    def __init__(self, index: int, key: tuple[Any, ...], proto: str, ip_version: int, orig: Endpoint,
                 resp: Endpoint) -> None:
        self.index = index
        self.key = key
        self.proto = proto
        self.ip_version = ip_version
        self.orig = orig
        self.resp = resp
        #: Zeek's history letters (upper case originator, lower case responder).
        self.history = ""
        self.hist_seen = 0
        self.first_ts = 0
        self.last_ts = 0
        self.first_frame = 0
        self.last_frame = 0
        self.predecessor: str | None = None
        self.pred_info: dict[str, Any] | None = None
        #: What the detectors remembered of the predecessor when it was retired
        #: (:meth:`pcapsleuth.detectors.Detection.pred_facts`); not part of the JSON.
        self.pred_facts: Any = None
        #: (orig, resp) RTT as the connection ended: the Wireshark conversation behind it may go on
        #: with a later connection on the tuple (see ``Tracker._retire``).
        self.rtt_final: tuple[dict[str, Any] | None, dict[str, Any] | None] | None = None
        self.successor: str | None = None
        self.is_partial = False
        self.first_seen = 0  # 1 orig, 2 resp
        self.flipped = False
        self.first_was_synack = False
        self.syn_ts: int | None = None
        self.last_syn_ts: int | None = None
        self.synack_ts: int | None = None
        self.ack_ts: int | None = None
        self.syn_frame: int | None = None
        self.synack_frame: int | None = None
        self.ack_frame: int | None = None
        self.evidence: list[Packet] = []
        self.n_control_evidence = 0
        #: The RFC 793 state changes, packed (see _TRANSITION and :attr:`transitions`).
        self._transitions = b""
        self.close_first: str | None = None
        self.close_how: str | None = None
        self.close_frame: int | None = None
        self.closed_ts: int | None = None
        self.vlan: tuple[int, ...] = ()
        self.finished = False
        self.weirds: dict[str, list[int]] = {}
        self.iface = 0
        self.delete_at: int | None = None  # Zeek's ConnDeleteTimer after a complete close
        self.partial_close_at: int | None = None  # Zeek's PartialCloseTimer
        #: Wireshark-style per-segment analysis (see tcpanalysis); shared with later generations of
        #: the tuple unless a SYN starts a new session, as Wireshark's conversations are.
        self.ws: Conversation | None = None
        #: Analysed segments with any flag:
        #: (frame, ts, sender is orig, analysis flags, extra, peer_frame, TCP flags, payload length).
        self.events: list[tuple[int, int, bool, int, int, int, int, int]] = []
        #: Complete counts per (flag bit, sender is orig): exact even when ``events`` is capped.
        self.event_counts: dict[tuple[int, bool], int] = {}
        self.events_dropped = 0
        self.event_bits = 0  # counted flags kept in ``events`` on a non-SYN segment (resp's << 32)
        #: What the capped lists no longer hold, counted instead of kept (None until a list is
        #: full; see :func:`_count_dropped` and :meth:`weird`): ``("event", flags, sender is orig,
        #: SYN)`` -> [segments, payload bytes, sum and max of extra, frame of the max, extra == 1],
        #: ``("tail", sender is orig)`` -> [the peer's last ts, retransmissions and keep-alives
        #: dropped since], ``("weird", name)`` -> occurrences beyond the frames kept; and
        #: ``("rst_storm", addr, port)`` -> the frame where that endpoint's RSTs became a storm.
        self.overflow: dict[tuple[Any, ...], Any] | None = None
        #: While compacted (see :meth:`compact`): everything but ``_KEPT_UNPACKED``, pickled, and
        #: when the sweep retires it unless a packet comes first (:func:`_retire_at`).
        self._packed: bytes | None = None
        self._expires: int | None = None

    # Compaction ---------------------------------------------------------------------------------
    # On a busy host most of the connections in memory at any moment have closed and wait for Zeek's
    # timers (five seconds and more): two endpoints, their numbers, the evidence packets and the
    # transitions cost about 4 kB as objects, a fifth of that pickled. The sweep packs such idle
    # connections; any other read of a packed attribute brings them back (``_PackedConnection``), so
    # a late packet, the detectors and the report see the same object as before.
    def compact(self) -> None:
        """Pack everything but what the sweep reads until it is next read (see
        :class:`_PackedConnection`)."""
        if self._packed is not None:
            return
        self._expires = _retire_at(self)
        values = list(_packed_fields(self))
        values[_AT_ORIG] = _endpoint_fields(self.orig)
        values[_AT_RESP] = _endpoint_fields(self.resp)
        values[_AT_EVIDENCE] = [tuple(p) for p in self.evidence]
        self._packed = pickle.dumps(values, pickle.HIGHEST_PROTOCOL)
        _drop_packed(self)
        self.__class__ = _PackedConnection
        if self.ws is not None:
            self.ws.compact()


    @property
    def uid(self) -> str:
        """``C000042``: connections are numbered in order of first frame (see :func:`uid_of`)."""
        return uid_of(self.index)

    @property
    def transitions(self) -> list[tuple[int, int, str, str]]:
        """The inferred RFC 793 state changes, in order: (frame, ts, side, state), at most
        ``MAX_TRANSITIONS``."""
        return [(frame, ts, _SIDES[code >> 4], _TCP_STATES[code & 15])
                for frame, ts, code in _TRANSITION.iter_unpack(self._transitions)]

    # history ----------------------------------------------------------------------------------
    def check_history(self, ep: Endpoint, mask: int, code: str) -> bool:
        """Record ``code`` the first time; True if it was already seen (Zeek's CheckHistory)."""
        if not ep.is_orig:
            mask <<= 16
            code = code.lower()
        if self.hist_seen & mask:
            return True
        self.hist_seen |= mask
        self.history += code
        return False

    def add_history(self, ep: Endpoint, code: str) -> None:
        self.history += code if ep.is_orig else code.lower()

    def weird(self, name: str, frame: int) -> None:
        frames = self.weirds.setdefault(name, [])
        if len(frames) < WEIRD_FRAMES:
            frames.append(frame)
            return
        over = self.overflow
        if over is None:
            over = self.overflow = {}
        key = ("weird", name)
        over[key] = over.get(key, 0) + 1

    def weird_count(self, name: str) -> int:
        """How often the weird ``name`` was raised (its frames list keeps the first 16)."""
        n = len(self.weirds.get(name, ()))
        return n + self.overflow.get(("weird", name), 0) if self.overflow else n

    def flip(self) -> None:
        """Swap originator and responder (Zeek's Connection::FlipRoles)."""
        self.orig, self.resp = self.resp, self.orig
        self.orig.is_orig = True
        self.resp.is_orig = False
        fs = self.first_seen
        self.first_seen = (2 if fs & 1 else 0) | (1 if fs & 2 else 0)
        self.is_partial = False
        self.flipped = True
        self.history += "^"
        self._transitions = b"".join(_TRANSITION.pack(frame, ts, code ^ (1 << 4))  # the other side
                                     for frame, ts, code in _TRANSITION.iter_unpack(self._transitions))
        if self.close_first:
            self.close_first = "resp" if self.close_first == "orig" else "orig"
        if self.events:
            self.events = [(e[0], e[1], not e[2]) + e[3:] for e in self.events]
            self.event_counts = {(b, not o): n for (b, o), n in self.event_counts.items()}
        if self.overflow:
            self.overflow = {_flipped_key(k): v for k, v in self.overflow.items()}

    # summary ----------------------------------------------------------------------------------
    @property
    def history_str(self) -> str:
        return self.history

    @property
    def conn_state(self) -> str:
        if self.proto != "tcp":
            return _other_conn_state(self)
        return conn_state(self.orig.state, self.resp.state, self.history_str,
                          self.orig.size(self.resp), self.resp.size(self.orig))

    def to_dict(self) -> dict[str, Any]:
        """The JSON ``connections[]`` object (a public contract: add keys, never rename)."""
        o, r = self.orig, self.resp
        tcp = self.proto == "tcp"
        o_opts = o.syn_opts or _NO_OPTIONS
        r_opts = r.syn_opts or _NO_OPTIONS
        proto_num = {"tcp": 6, "udp": 17, "icmp": 1 if self.ip_version == 4 else 58}.get(self.proto, 0)
        if tcp:  # (what conn_state computes too: once)
            o_bytes, r_bytes = o.size(r), r.size(o)
            state = conn_state(o.state, r.state, self.history, o_bytes, r_bytes)
        else:
            o_bytes, r_bytes = o.data_bytes, r.data_bytes
            state = _other_conn_state(self)
        rtt1 = None if self.synack_ts is None or self.last_syn_ts is None else \
            round((self.synack_ts - self.last_syn_ts) / 1e9, 9)
        rtt2 = None if self.ack_ts is None or self.synack_ts is None else round((self.ack_ts - self.synack_ts) / 1e9, 9)
        d: dict[str, Any] = {
            "uid": self.uid,
            "orig_h": o.addr,
            "orig_p": o.port,
            "resp_h": r.addr,
            "resp_p": r.port,
            "proto": self.proto,
            "ip_version": self.ip_version,
            "community_id": community_id(o.addr, r.addr, proto_num, o.port, r.port),
            "predecessor": self.predecessor,
            "successor": self.successor,
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "first_ts": iso_ts(self.first_ts),
            "last_ts": iso_ts(self.last_ts),
            "duration": round((self.last_ts - self.first_ts) / 1e9, 9),
            "orig_pkts": o.pkts,
            "resp_pkts": r.pkts,
            "orig_bytes": o_bytes,
            "resp_bytes": r_bytes,
            "orig_ip_bytes": o.ip_bytes,
            "resp_ip_bytes": r.ip_bytes,
            "missed_bytes": o.gap_bytes + r.gap_bytes,
            "conn_state": state,
            "history": self.history,
            "orig_state": o.state_name if tcp else None,
            "resp_state": r.state_name if tcp else None,
            "orig_tcp_state": o.tcp_state,
            "resp_tcp_state": r.tcp_state,
            "rtt_syn_synack": rtt1,
            "rtt_synack_ack": rtt2,
            "orig_retrans_bytes": o.rxmit_bytes,
            "resp_retrans_bytes": r.rxmit_bytes,
            "orig_retrans_pkts": o.rxmit_pkts,
            "resp_retrans_pkts": r.rxmit_pkts,
            "closed_by": self.close_first,
            "close_how": self.close_how,
            "close_frame": self.close_frame,
            "orig_isn": o.isn,
            "resp_isn": r.isn,
            "orig_mss": o_opts.get("mss"),
            "resp_mss": r_opts.get("mss"),
            "orig_wscale": o_opts.get("wscale"),
            "resp_wscale": r_opts.get("wscale"),
            "orig_sack_ok": bool(o_opts.get("sack_ok")),
            "resp_sack_ok": bool(r_opts.get("sack_ok")),
            "orig_sack_blocks": o.sack_blocks,
            "resp_sack_blocks": r.sack_blocks,
            "orig_ts_ok": "ts_val" in o_opts,
            "resp_ts_ok": "ts_val" in r_opts,
            "orig_tsval_first": o.ts_first,
            "orig_tsval_last": o.ts_last,
            "resp_tsval_first": r.ts_first,
            "resp_tsval_last": r.ts_last,
            "orig_ttl": o.first_ttl,
            "resp_ttl": r.first_ttl,
            "orig_l2_addr": o.first_mac,
            "resp_l2_addr": r.first_mac,
            "vlan": list(self.vlan) or None,
            "transitions": self._transition_dicts(),
            "weirds": dict(sorted(self.weirds.items())) if self.weirds else {},
            "orig_rtt": self._rtt(True),
            "resp_rtt": self._rtt(False),
            "analysis": self.analysis_counts(),
        }
        if self.pred_info is not None:
            d["predecessor_info"] = self.pred_info
        return d

    def _transition_dicts(self) -> list[dict[str, Any]]:
        out = []
        last_ts, text = None, None
        for frame, ts, code in _TRANSITION.iter_unpack(self._transitions):
            if ts != last_ts:  # both sides often change state on the same packet: format its time once
                last_ts, text = ts, iso_ts(ts)
            out.append({"frame": frame, "ts": text, "side": _SIDES[code >> 4], "state": _TCP_STATES[code & 15]})
        return out

    def _rtt(self, orig: bool) -> dict[str, Any] | None:
        """RTT of one side's data at the capture point (segment to its ACK, segments sent once)."""
        if self.rtt_final is not None:
            return self.rtt_final[0 if orig else 1]
        if self.ws is None:
            return None
        ep = self.orig if orig else self.resp
        return _rtt_dict(self.ws.rtt_stats(ep.addr, ep.port)[0])

    def analysis_counts(self) -> dict[str, dict[str, int]]:
        """Per-segment analysis counts by flag name and sending side (exact, never capped)."""
        out: dict[str, dict[str, int]] = {}
        for (bit, orig), n in sorted(self.event_counts.items()):
            out.setdefault(FLAG_NAMES[bit], {"orig": 0, "resp": 0})["orig" if orig else "resp"] += n
        return out


def conn_state(os_: int, rs: int, history: str, orig_size: int = 0, resp_size: int = 0) -> str:
    """Zeek's conn_state for TCP, a pure function of the endpoint states and the history.

    Mirrors ``Conn::conn_state`` in Zeek's ``base/protocols/conn/main.zeek``.
    """
    o_inactive = os_ in (_INACTIVE, _PARTIAL)
    r_inactive = rs in (_INACTIVE, _PARTIAL)
    if rs == _RESET:
        if os_ in (_SYN_SENT, _SYN_ACK_SENT) or (os_ == _RESET and orig_size == 0 and resp_size == 0):
            return "REJ"
        if o_inactive:
            return "RSTRH"
        return "RSTR"
    if os_ == _RESET:
        if r_inactive:
            if _rstos0(history):
                return "RSTOS0"
            return "OTH"
        return "RSTO"
    if rs == _CLOSED and os_ == _CLOSED:
        return "SF"
    if os_ == _CLOSED:
        return "SH" if r_inactive else "S2"
    if rs == _CLOSED:
        return "SHR" if o_inactive else "S3"
    if os_ == _SYN_SENT and rs == _INACTIVE:
        return "S0"
    if os_ == _ESTABLISHED and rs == _ESTABLISHED:
        return "S1"
    return "OTH"


def _rstos0(history: str) -> bool:
    """Zeek's ``/\\^?S[^HAFGIQ]*R.*/`` on the history."""
    h = history[1:] if history.startswith("^") else history
    if not h.startswith("S"):
        return False
    for ch in h[1:]:
        if ch == "R":
            return True
        if ch in "HAFGIQ":
            return False
    return False


def _other_conn_state(c: Connection) -> str:
    o_active = c.orig.pkts > 0
    r_active = c.resp.pkts > 0
    if o_active:
        return "SF" if r_active else "S0"
    return "SHR" if r_active else "OTH"


def _is_clean(ep: Endpoint) -> bool:
    return ep.state == _ESTABLISHED or (ep.state == _CLOSED and ep.prev_state == _ESTABLISHED)


class RetireSink(Protocol):
    """Where a streaming :class:`Tracker` hands finished connections (:mod:`pcapsleuth.stream`)."""

    def retired(self, conn: Connection) -> Any:
        """``conn`` is final; returns what a successor on its tuple should know (``pred_facts``)."""

    def linked(self, old_uid: str, new_uid: str) -> None:
        """A connection handed over earlier got a successor: ``old_uid``'s ``successor`` is ``new_uid``."""


class _PackedConnection(Connection):
    """A compacted :class:`Connection` (see :meth:`Connection.compact`): the first read of a packed
    attribute unpacks it and makes it a plain ``Connection`` again.

    (The unpacking ``__getattr__`` lives here, not on ``Connection``: a class with ``__getattr__``
    loses CPython's fast attribute reads, and connections are read on every packet.)
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        packed = self._packed
        if packed is None or name not in _PACKED_SET:
            raise AttributeError(name)
        self._packed = self._expires = None
        values = pickle.loads(packed)
        values[_AT_ORIG] = _endpoint_from(values[_AT_ORIG])
        values[_AT_RESP] = _endpoint_from(values[_AT_RESP])
        values[_AT_EVIDENCE] = [_new_packet(Packet, t) for t in values[_AT_EVIDENCE]]
        _set_packed(self, *values)
        self.__class__ = Connection  # type: ignore[assignment]  # (a plain one again: same layout)
        return getattr(self, name)


#: What a compacted connection keeps as attributes: what the sweep and the table read.
_KEPT_UNPACKED = frozenset({"index", "key", "proto", "first_ts", "last_ts", "delete_at", "partial_close_at", "ws",
                            "finished", "_packed", "_expires"})
_PACKED = tuple(name for name in Connection.__slots__ if name not in _KEPT_UNPACKED)
_PACKED_SET = frozenset(_PACKED)
_packed_fields = operator.attrgetter(*_PACKED)
_AT_ORIG, _AT_RESP, _AT_EVIDENCE = (_PACKED.index(name) for name in ("orig", "resp", "evidence"))
_endpoint_fields = operator.attrgetter(*Endpoint.__slots__)
_new_packet = tuple.__new__


_drop_packed = straight_line("_drop_packed", "c", (f"del c.{n}" for n in _PACKED))
_set_packed = straight_line("_set_packed", "c, " + ", ".join(_PACKED), (f"c.{n} = {n}" for n in _PACKED))
_set_endpoint = straight_line("_set_endpoint", "e, " + ", ".join(Endpoint.__slots__),
                               (f"e.{n} = {n}" for n in Endpoint.__slots__))


def _endpoint_from(values: tuple[Any, ...]) -> Endpoint:
    ep = Endpoint.__new__(Endpoint)
    _set_endpoint(ep, *values)
    # (the module's own strings again, not the copies pickle made: shared, and kept by _Retired)
    ep.tcp_state = _CANONICAL.get(ep.tcp_state, ep.tcp_state)  # type: ignore[arg-type]
    return ep


_CANONICAL = {name: name for name in _TCP_STATES}


class _Retired(NamedTuple):
    """A swept connection's digest: enough to link (and describe) a successor on its tuple.
    (Tens of thousands are kept: the uid is rebuilt from the number, the originator is named by
    which half of the tuple key it is.)"""

    number: int  # the connection's index (uid_of(number) is its uid)
    last_ts: int
    orig_first: bool  # the originator is the key's first address and port (else its second)
    conn_state: str
    history: str
    orig_tcp_state: str | None
    resp_tcp_state: str | None
    syn_only: bool  # the originator's SYN was never answered (simultaneous open if the peer SYNs)
    facts: Any


# A _Retired as kept, tens of thousands at once: (number, last_ts, orig_first | syn_only << 1, RFC 793
# state codes of both sides) packed in 19 bytes, beside the shared conn_state and history strings and
# the facts (about 130 bytes where the named tuple with its own integers and strings costs 300).
_RETIRED_HEAD = struct.Struct("<qqBBB")
_NO_STATE = 255


def _retired_entry(conn: Connection, key: tuple[Any, ...], history: str, facts: Any) -> tuple[Any, ...]:
    """What is kept of a swept connection on its tuple (read back by :func:`_unpack_retired`)."""
    o, r = conn.orig, conn.resp
    bits = (o.addr == key[0] and o.port == key[1]) | (o.state == _SYN_SENT and r.state == _INACTIVE) << 1
    codes = _TCP_STATE_CODE.get(o.tcp_state, _NO_STATE), _TCP_STATE_CODE.get(r.tcp_state, _NO_STATE)  # type: ignore[arg-type]
    head = pack_ints(_RETIRED_HEAD, (conn.index, conn.last_ts, bits, *codes))
    return (head, conn.conn_state, history, facts)


def _unpack_retired(kept: tuple[Any, ...]) -> _Retired:
    head, conn_state, history, facts = kept
    number, last_ts, bits, o_code, r_code = unpack_ints(_RETIRED_HEAD, head)
    return _Retired(number, last_ts, bool(bits & 1), conn_state, history,
                    None if o_code == _NO_STATE else _TCP_STATES[o_code],
                    None if r_code == _NO_STATE else _TCP_STATES[r_code], bool(bits & 2), facts)


class Tracker:
    """Feeds packets through per-connection state machines and yields finished connections.

    >>> tr = Tracker()                       # doctest: +SKIP
    >>> for pkt in capture: tr.packet(pkt)   # doctest: +SKIP
    >>> conns = tr.finish()                  # doctest: +SKIP
    """

    def __init__(self, *, likely_server_ports: frozenset[int] = LIKELY_SERVER_PORTS,
                 strict_checksums: bool = False, max_connections: int = MAX_CONNECTIONS,
                 max_events: int | None = 4096, slim_clean: bool = True, sink: RetireSink | None = None) -> None:
        self.likely_server_ports = likely_server_ports
        #: True: a checksum that merely looks offloaded counts as bad (Zeek without -C).
        self.strict_checksums = strict_checksums
        self.max_connections = max_connections
        #: Analysed segments kept per connection (None: all); counts stay exact beyond it.
        self.max_events = max_events
        self.active: dict[tuple[Any, ...], Connection] = {}
        self.done: list[Connection] = []
        self.count = 0
        self.tcp_packets = 0
        self.untracked = 0
        #: Untracked packets the decoder could not take apart, by reason: JSON ``tracking`` keys
        #: ``untracked_<reason>``, present when not 0: ``tunnel_too_deep`` (see decode.MAX_LAYERS),
        #: ``tunnel_payload_not_decoded`` (GRE carrying no IP we decode: decode.GRE_NOT_DECODED).
        self.untracked_reasons: dict[str, int] = {}
        self.bad_ip_checksums = 0
        #: TCP segments left out of connection state for a bad TCP checksum (``capture.bad_checksum``).
        self.bad_tcp_checksums = 0
        #: (host, kind) -> frames, for the capture's ``checksums`` facts: kind ``offload_partial`` (a
        #: TCP/UDP checksum holding only the pseudo-header sum), ``offload_ipv4_zero`` (IPv4 header
        #: checksum 0x0000), ``stale`` (wrong on most frames of that sender: analyzed as sent),
        #: ``left_out`` (wrong and left out of connection state).
        self.checksum_facts: dict[tuple[str, str], int] = {}
        #: Frames not analyzed, by reason (``capture.not_analyzed``): ``not_ip``, ``ip_proto_<n>``
        #: (an IP protocol we do not track), ``udp``, ``icmp`` (tracked as conn.log rows, not analyzed),
        #: ``undecodable`` (a TCP header cut or invalid, an IP header we could not read).
        self.not_analyzed: dict[str, int] = {}
        #: TCP connections with frames of only one side: (all, those whose one side ACKed or sent
        #: data or a FIN, i.e. talked to a peer the capture does not show).
        self.one_sided = [0, 0]
        self.tcp_connections = 0
        self.evicted = 0
        # The two bounded memories below drop their oldest entry on every insertion once full: an
        # OrderedDict does that in constant time, where ``del d[next(iter(d))]`` on a plain dict
        # walks over every slot already deleted from its front (microseconds each, per connection).
        self.recent_ws: OrderedDict[tuple[Any, ...], Conversation] = OrderedDict()
        #: Drop the evidence packets of connections that closed cleanly (SYN, FIN, FIN, nothing
        #: unusual): no detector reads them, and a report refetches them.
        self.slim_clean = slim_clean
        #: Streaming: finished connections go to the sink as soon as Zeek's timers have expired
        #: them (see :meth:`_sweep`) and are not kept here; ``finish`` returns nothing.
        self.sink = sink
        #: Streaming: what is remembered of the last retired connection per 4-tuple, so that a later
        #: connection on the tuple is linked to it as its predecessor (bounded, oldest dropped).
        self.retired: OrderedDict[tuple[Any, ...], tuple[Any, ...]] = OrderedDict()  # (_retired_entry)
        self._histories: dict[str, str] = {}
        #: Streaming: the connection last put at the end of ``active`` (a new one, or one moved there
        #: by its packet). Nine packets in ten follow one of the same connection (a capture is
        #: bursty): that one is at the end already, and needs no second move.
        self._last_moved: Connection | None = None
        self._next_sweep = 0
        self.swept = 0  # connections the sweep retired before the capture ended
        self._replaying = False  # a held segment is being analyzed late (see _replay)
        #: Per host that sent a wrong checksum: [its wrong ones not proven discarded, its valid ones
        #: since] (see _left_out).
        self._bad_hosts: dict[str, list[int]] = {}

    # -- entry --------------------------------------------------------------------------------
    def packet(self, p: Packet) -> Connection | None:
        """Account one decoded packet; returns its connection (or None if it has none)."""
        if self.sink is not None and p.ts >= self._next_sweep:
            self._sweep(p.ts)
        proto = p.proto
        cks = p.cksum
        if (cks == _CK_BAD_IP or cks == _CK_ZERO_IP) and self._ip_left_out(p, cks):  # noqa: SIM109 (hot path)
            self.bad_ip_checksums += 1  # dropped by the receiver's IP layer (and by Zeek)
            if proto == 6 and p.flags is not None:
                self._tcp(p, analyze_only=True)  # the sniffer saw it: Wireshark analyses it
            return None
        if proto == 6:
            if p.flags is None:
                self.untracked += 1
                return None
            return self._tcp(p)
        if proto in (17, 1, 58) and p.sport is not None:
            why = "udp" if proto == 17 else "icmp"
            self.not_analyzed[why] = self.not_analyzed.get(why, 0) + 1
            if cks == _CK_OFFLOADED:
                self._fact(p.src, "offload_partial")
            return self._other(p)
        self.untracked += 1
        note = p.note
        reason = None
        if note is not None:
            reason = ("untracked_tunnel_too_deep" if note == TOO_DEEP else
                      "untracked_tunnel_payload_not_decoded" if note.startswith(GRE_NOT_DECODED) else None)
            if reason is not None:
                self.untracked_reasons[reason] = self.untracked_reasons.get(reason, 0) + 1
        if reason is None and p.frag != 1:  # (a fragment's datagram is analyzed where it completes)
            why = ("not_ip" if not p.ip_version else "undecodable" if note is not None or proto == 6
                   else f"ip_proto_{proto}")
            self.not_analyzed[why] = self.not_analyzed.get(why, 0) + 1
        return None

    # -- checksums (issue 20) ----------------------------------------------------------------------
    def _fact(self, host: str | None, kind: str) -> None:
        facts = self.checksum_facts
        key = (host or "?", kind)
        if key not in facts and len(facts) >= CHECKSUM_HOSTS:
            key = (OTHER_HOSTS, kind)
        facts[key] = facts.get(key, 0) + 1

    def _ip_left_out(self, p: Packet, cks: int) -> bool:
        """A frame whose IPv4 header checksum is 0 or wrong: left out of everything but the
        per-segment analysis (True), as the receiver's IP layer and Zeek do, with ``strict_checksums``;
        otherwise TCP goes on to :meth:`_left_out`, and UDP/ICMP is tracked (False)."""
        if self.strict_checksums:
            self._fact(p.src, "left_out")
            return True
        if p.proto == 6 and p.flags is not None:
            return False  # judged in _process, which knows the sender's other frames
        if p.proto in (17, 1, 58) and p.sport is not None:
            self._fact(p.src, "offload_ipv4_zero" if cks == _CK_ZERO_IP else "stale")
        return False

    def _left_out(self, conn: Connection, ep: Endpoint, p: Packet, cks: int, flags: int) -> bool:
        """What a TCP segment whose checksum is not valid does to connection state (True: it is left
        out, as Zeek and a receiving stack would leave it out).

        Default: checksums left for the NIC (a TCP checksum holding only the pseudo-header sum, an
        IPv4 header checksum 0x0000) are offload on the capturing host; a wrong checksum on most of
        its side's frames so far (this one included) is a rewritten or anonymised capture (stale
        checksums everywhere) or offload that fills in garbage: analyzed as sent, as tshark does,
        and counted once as a fact of the capture. Any other wrong checksum looks like corruption
        and is left out; whether the receiver took it is read from what it did next
        (:meth:`_judge_bad`). ``strict_checksums``: every checksum that is not valid is left out
        (Zeek without -C)."""
        strict = self.strict_checksums
        if cks == _CK_OFFLOADED and not strict:
            ep.offloaded_checksums += 1
            self._fact(p.src, "offload_partial")
            return False
        if cks == _CK_ZERO_IP and not strict:  # (strict: left out in packet())
            ep.offloaded_checksums += 1
            self._fact(p.src, "offload_ipv4_zero")
            return False
        if strict:
            # Zeek drops the packet after creating the connection; the receiver's stack would too.
            self._drop_bad(conn, ep, p, flags)
            return True
        if self._replaying:
            ep.stale_checksums += 1
            return False
        host = p.src or "?"
        hb = self._bad_hosts.get(host)
        if hb is None:
            if len(self._bad_hosts) >= CHECKSUM_HOSTS:
                self._drop_bad(conn, ep, p, flags)
                return True
            hb = self._bad_hosts[host] = [0, 0]
        segs = conn.overflow.get(BAD_SEGMENTS) if conn.overflow else None
        held = [] if segs is None else [x for x in segs if x[10] == "held" and x[6] is None
                                         and x[2] == p.src and x[3] == p.sport]
        bad_before = ep.stale_checksums + len(held)
        if (ep.stale_checksums or (bad_before and (bad_before + 1) * 2 > ep.pkts + len(held) + 1)
                or (not ep.pkts and hb[0] and hb[0] >= hb[1])):
            # Wrong on most of this side's (or, on a side's first frames, its host's) frames, or the
            # receiver took one already: the checksums are the capture's (rewritten, anonymised,
            # offload filling in garbage). Held frames first, in order, then this one: as sent.
            hb[0] += 1
            # (Only this connection's: another one may be over already - a streamed analysis hands a
            # connection on when Zeek's timers expire it - and both kinds of analysis must agree.)
            for entry in held:
                self._replay(conn, entry, "stale")
            ep.stale_checksums += 1
            self._fact(p.src, "stale")
            return False
        # Held: left out of connection state until the receiver shows it took it (_judge_bad) or its
        # sender turns out to be stale; left out for good when the connection ends (_finalize_bad).
        no = p.no
        if not flags & TCP_SYN:  # it still was "the packet after the SYN-ACK": no flip can follow
            conn.first_was_synack = conn.first_was_synack and conn.first_frame == no
        if conn.first_frame == no:
            conn.first_ts = p.ts
        if segs is None:
            over = conn.overflow
            if over is None:
                over = conn.overflow = {}
            segs = over[BAD_SEGMENTS] = []
        if len(segs) >= BAD_SEGMENTS_JUDGED:
            self._drop_bad(conn, ep, p, flags)
            return True
        hb[0] += 1
        seq = p.seq or 0
        end = (seq + (p.payload_len or 0) + (1 if flags & TCP_SYN else 0) + (1 if flags & TCP_FIN else 0)) & 0xFFFFFFFF
        # [frame, ts, sender addr, sender port, first seq, seq after it, verdict, by frame, by ts, the
        #  packet, "held" | "replayed" | "left_out"]
        entry = [no, p.ts, p.src, p.sport, seq, end, None, None, None, p, "held"]
        segs.append(entry)
        return True

    def _drop_bad(self, conn: Connection, ep: Endpoint, p: Packet, flags: int) -> None:
        """Leave a segment out of connection state for good, as Zeek does: history C, the weird."""
        no = p.no
        if not flags & TCP_SYN:
            conn.first_was_synack = conn.first_was_synack and conn.first_frame == no
        ep.bad_checksums += 1
        self.bad_tcp_checksums += 1
        self._fact(p.src, "left_out")
        _scaled(conn, "C", ep, ep.bad_checksums)
        conn.weird("bad_TCP_checksum", no)
        if conn.first_frame == no:
            conn.first_ts = p.ts

    def _replay(self, conn: Connection, entry: list[Any], verdict: str | None) -> None:
        """Analyze a held segment now, after all (``verdict`` "stale": its sender's checksums are the
        capture's; None: the receiver ACKed it, see _judge_bad)."""
        entry[10] = "replayed"
        if verdict is not None:
            entry[6] = verdict
            self._fact(entry[2], verdict)
        pkt: Packet = entry[9]
        flags = pkt.flags or 0
        self._replaying = True
        try:
            self._process(conn, pkt, pkt.src == conn.orig.addr and pkt.sport == conn.orig.port, flags,
                          parse_options(pkt.options) if flags & TCP_SYN else None)
        finally:
            self._replaying = False

    def _judge_bad(self, conn: Connection, segs: list[list[Any]], p: Packet, flags: int) -> None:
        """What the receiver did with held segments (bad checksum), from a later segment of the
        connection, valid or not: the peer ACKed past it first (``acked``: the receiver took it - the
        capture holds a corrupted or edited copy of what it got; analyzed now), or its sender sent
        its first byte again first (``resent``: the receiver discarded it)."""
        for x in segs:
            if x[6] is not None or x[4] == x[5]:
                continue
            if p.src == x[2] and p.sport == x[3]:
                seq = p.seq or 0
                n = (p.payload_len or 0) + (1 if flags & TCP_SYN else 0) + (1 if flags & TCP_FIN else 0)
                if n and (x[4] - seq) & 0xFFFFFFFF < n and p.ts >= x[1]:
                    # (A copy stamped before the original - a fuzzed or reordered clock - is no
                    # resend after it: nothing shows a discard.)
                    x[6], x[7], x[8] = "resent", p.no, p.ts
                    hb = self._bad_hosts.get(x[2])
                    if hb is not None and hb[0]:
                        hb[0] -= 1  # proven discarded: no evidence that its host's checksums are the capture's
            elif flags & TCP_ACK and not (((p.ack or 0) - x[5]) & 0x80000000):
                x[6], x[7], x[8] = "acked", p.no, p.ts
                if x[10] == "held":
                    self._replay(conn, x, None)

    def _finalize_bad(self, conn: Connection) -> None:
        """The connection is over: held segments are left out for good; a segment the receiver ACKed,
        of a side whose other wrong checksums were analyzed as sent too, counts with them (stale)."""
        segs = conn.overflow.get(BAD_SEGMENTS) if conn.overflow else None
        if not segs:
            return
        for x in segs:
            ep = conn.orig if (x[2], x[3]) == (conn.orig.addr, conn.orig.port) else conn.resp
            if x[10] == "held":
                x[10] = "left_out"
                pkt = x[9]
                self._drop_bad(conn, ep, pkt, pkt.flags or 0)
            elif x[6] == "acked" and ep.stale_checksums > sum(
                    1 for t in segs if t[6] == "acked" and (t[2], t[3]) == (x[2], x[3])):
                x[6] = "stale"
                self._fact(x[2], "stale")
            x[9] = None  # (the packet is not kept beyond the connection)

    def finish(self) -> list[Connection]:
        """Close the books: every connection, in order of first frame (streaming: handed to the
        sink, none returned)."""
        if self.sink is not None:
            self._retire_all(list(self.active.items()))
            return []
        for conn in self.active.values():
            conn.finished = True
            self.done.append(conn)
        self.active = {}
        self.done.sort(key=lambda c: c.index)
        for conn in self.done:
            self._count_sides(conn)
        return self.done

    def _count_sides(self, conn: Connection) -> None:
        """Count a finished TCP connection in ``tcp_connections`` and, with frames of one side
        only, in ``one_sided`` (second number: that side ACKed, sent data or a FIN, so it talked to
        a peer whose frames the capture does not hold)."""
        if conn.proto != "tcp":
            return
        self._finalize_bad(conn)
        self.tcp_connections += 1
        if conn.orig.pkts and conn.resp.pkts:
            return
        self.one_sided[0] += 1
        if any(letter in conn.history for letter in "ADFadf"):
            self.one_sided[1] += 1

    def _retire(self, key: tuple[Any, ...], conn: Connection, notify: bool = True) -> None:
        """The connection on ``key`` is final: out of the active table, into the results.

        Its per-segment analysis state is remembered a while (bounded), so that a later session on
        the same tuple is recognised as reusing it, as Wireshark's conversations are.
        ``notify=False``: the caller hands it to the sink itself, once its successor is linked.
        """
        conn.finished = True
        _freeze_rtt(conn)
        del self.active[key]
        if self.sink is None:
            self.done.append(conn)
        elif notify:
            self._to_sink(key, conn)
        ws = conn.ws
        if ws is not None:
            if notify:
                ws.compact()  # (unless a successor already linked goes on with it right away)
            recent = self.recent_ws
            recent[key] = ws
            if len(recent) > RECENT_CONVERSATIONS:
                recent.popitem(last=False)

    def _to_sink(self, key: tuple[Any, ...], conn: Connection, remember: bool = True) -> Any:
        """Streaming: hand a finished connection over; unless its successor is already linked
        (``remember=False``), remember its tuple's digest. Returns the detectors' facts about it."""
        assert self.sink is not None
        self._count_sides(conn)
        facts = self.sink.retired(conn)
        if remember:
            retired = self.retired
            retired.pop(key, None)
            # (Histories repeat across connections: one string per distinct history, of a bounded
            # number.)
            histories = self._histories
            if len(histories) > 4096:
                histories.clear()
            history = histories.setdefault(conn.history, conn.history)
            retired[key] = _retired_entry(conn, key, history, facts)
            if len(retired) > RECENT_RETIRED:
                retired.popitem(last=False)
        return facts

    def _sweep(self, now: int) -> None:
        """Streaming: retire every connection that Zeek's timers have removed by ``now`` (less a
        little slack for timestamps that step back): any later packet on its tuple would start a
        new connection anyway (``_is_reuse``), so nothing more can reach it.

        The active table is in order of last activity (``_tcp`` and ``_other`` move a connection to
        its end on each packet): the sweep walks it from the idlest and stops at the first connection
        active within ``COMPACT_IDLE_NS``, packing the quiet TCP connections it passes.
        """
        self._next_sweep = now + SWEEP_EVERY_NS
        horizon = now - SWEEP_SLACK_NS
        quiet = now - COMPACT_IDLE_NS
        victims = []
        for key, conn in self.active.items():
            if conn.last_ts > quiet:
                break
            if conn.proto != "tcp":
                if horizon - conn.last_ts >= OTHER_TIMEOUT_NS:
                    victims.append((key, conn))
                continue
            if conn.last_ts <= horizon:  # (within the slack: not over yet)
                expires = conn._expires  # (a packed one's: computed when it was packed)
                if (_retire_at(conn) if expires is None else expires) <= horizon:
                    victims.append((key, conn))
                    continue
            if conn._packed is None and conn.orig.last_ts <= quiet and conn.resp.last_ts <= quiet:
                # Quiet, mostly closed and waiting for Zeek's timers: packed until a packet or the
                # detectors need it (most of the connections of a busy capture are in this state at
                # any time).
                conn.compact()
        self.swept += len(victims)
        self._retire_all(victims)

    def _retire_all(self, victims: list[tuple[tuple[Any, ...], Connection]]) -> None:
        """Retire these connections in order. Streaming: each is let go as soon as the sink has it
        (a sweep retires a second's worth of connections, the end of a capture all those still
        open: kept until the last was done, they made the peak memory)."""
        victims.reverse()
        while victims:
            key, conn = victims.pop()
            self._retire(key, conn)

    def _link_retired(self, key: tuple[Any, ...], conn: Connection, p: Packet) -> None:
        """Streaming: ``conn`` is the first connection on a tuple whose last one was swept out."""
        kept = self.retired.pop(key, None)
        if kept is None:
            return
        old = _unpack_retired(kept)
        old_uid = uid_of(old.number)
        conn.predecessor = old_uid
        conn.pred_info = {"uid": old_uid, "conn_state": old.conn_state, "history": old.history,
                          "orig_tcp_state": old.orig_tcp_state, "resp_tcp_state": old.resp_tcp_state,
                          "gap_seconds": round((p.ts - old.last_ts) / 1e9, 6)}
        conn.pred_facts = old.facts
        flags = p.flags or 0
        old_orig = (key[0], key[1]) if old.orig_first else (key[2], key[3])
        if flags & (TCP_SYN | TCP_ACK) == TCP_SYN and (p.src, p.sport) != old_orig and old.syn_only:
            conn.weird("simultaneous_open", p.no)
        assert self.sink is not None
        self.sink.linked(old_uid, conn.uid)

    # -- connection lookup ----------------------------------------------------------------------
    def _new_conn(self, p: Packet, key: tuple[Any, ...], proto: str, flip: bool) -> Connection:
        self.count += 1
        n = self.count
        if flip:
            orig = Endpoint(p.dst, p.dport, True)  # type: ignore[arg-type]
            resp = Endpoint(p.src, p.sport, False)  # type: ignore[arg-type]
        else:
            orig = Endpoint(p.src, p.sport, True)  # type: ignore[arg-type]
            resp = Endpoint(p.dst, p.dport, False)  # type: ignore[arg-type]
        conn = Connection(n, key, proto, p.ip_version, orig, resp)
        conn.first_ts = conn.last_ts = p.ts
        conn.first_frame = conn.last_frame = p.no
        conn.vlan = p.vlan
        conn.iface = p.iface
        if flip:
            conn.history = "^"
            conn.flipped = True
        if len(self.active) >= self.max_connections:
            self._evict()
        self.active[key] = conn
        self._last_moved = conn
        return conn

    def _evict(self) -> None:
        """Finalize the least recently active tenth of the table (bounded memory under scans)."""
        n = max(1, len(self.active) // 10)
        if self.sink is not None:  # streaming: the table is already in order of last activity
            victims = list(itertools.islice(self.active.items(), n))
        else:
            victims = sorted(self.active.items(), key=lambda kv: kv[1].last_ts)[:n]
        for key, conn in victims:
            self._retire(key, conn)
            self.evicted += 1

    def _want_flip(self, flags: int, sport: int, dport: int) -> bool:
        """Zeek's WantConnection: guess the responder from likely server ports for partial starts."""
        if not (flags & TCP_SYN) or flags & TCP_ACK:
            lsp = self.likely_server_ports
            if sport in lsp:
                if dport in lsp:
                    return not (flags & TCP_SYN) and sport < dport
                return True
        return False

    def _is_reuse(self, conn: Connection, p: Packet, is_orig: bool) -> bool:
        """Does this packet start a new generation on the tuple? (Zeek's IsReuse, plus timeouts)."""
        flags = p.flags
        assert flags is not None
        closed = conn.orig.did_close or conn.resp.did_close
        if closed and p.ts >= _retire_at(conn):
            return True  # one of Zeek's close timers has removed the connection
        if p.ts - conn.last_ts >= INACTIVITY_NS:
            return True  # Zeek's inactivity timer has expired the connection
        if not flags & TCP_SYN:
            # Zeek's attempt timer: tcp_attempt_delay after a SYN that the responder never answered,
            # the attempt is over; later non-SYN packets belong to a new (partial) connection. (SYN
            # retransmissions with the same ISN stay with their attempt: see _is_reuse's SYN rule.)
            return (conn.orig.state in (_SYN_SENT, _SYN_ACK_SENT) and conn.resp.state == _INACTIVE
                    and conn.syn_ts is not None and p.ts - conn.syn_ts > ATTEMPT_NS)
        conn_orig = conn.orig
        if flags & TCP_ACK:
            if conn.orig.state != _INACTIVE:
                return False
            conn_orig = conn.resp
        if not closed:
            if p.seq == conn_orig.start_seq:
                return False
            if (not flags & TCP_ACK and conn_orig.state == _SYN_ACK_SENT and conn.resp.state == _INACTIVE
                    and p.seq == conn.resp.start_seq):
                return False
            if conn_orig.state == _SYN_SENT:
                conn.weird("SYN_seq_jump", p.no)
            else:
                conn.weird("active_connection_reuse", p.no)
            return True
        return True

    def _tcp(self, p: Packet, analyze_only: bool = False) -> Connection | None:
        """Track a TCP segment; ``analyze_only``: run only the per-segment analysis, if tracked."""
        if not analyze_only:
            self.tcp_packets += 1
        src, sport, dst, dport = p.src, p.sport, p.dst, p.dport
        if (src, sport) <= (dst, dport):
            key = (src, sport, dst, dport, 6)
        else:
            key = (dst, dport, src, sport, 6)
        active = self.active
        conn = active.get(key)
        flags = p.flags
        assert flags is not None
        if analyze_only:
            if conn is None or conn.ws is None:
                return None
            self._segment(conn, conn.ws, p, src == conn.orig.addr and sport == conn.orig.port, flags, None, 0)
            return conn
        ws: Conversation | None
        if conn is None:
            ws = self.recent_ws.pop(key, None)
            conn = self._new_conn(p, key, "tcp", self._want_flip(flags, sport, dport))  # type: ignore[arg-type]
            if self.sink is not None:
                self._link_retired(key, conn, p)
        else:
            ws = conn.ws
            if conn.overflow is not None and BAD_SEGMENTS in conn.overflow:
                # What the receiver did with held segments, before this one may start a new connection.
                self._judge_bad(conn, conn.overflow[BAD_SEGMENTS], p, flags)
            is_orig = src == conn.orig.addr and sport == conn.orig.port
            # (A connection of held segments only has no state yet that a new one could replace.)
            if (conn.orig.pkts or conn.resp.pkts or conn.overflow is None or BAD_SEGMENTS not in conn.overflow
                    or self.strict_checksums) and self._is_reuse(conn, p, is_orig):
                old = conn
                self._retire(key, old, notify=False)
                conn = self._new_conn(p, key, "tcp", self._want_flip(flags, sport, dport))  # type: ignore[arg-type]
                conn.predecessor = old.uid
                old.successor = conn.uid
                conn.pred_info = _pred_info(old, p.ts)
                if (flags & (TCP_SYN | TCP_ACK) == TCP_SYN and not is_orig and old.orig.state == _SYN_SENT
                        and old.resp.state == _INACTIVE):
                    conn.weird("simultaneous_open", p.no)  # both ends sent a SYN (Zeek splits the tuple)
                if self.sink is not None:
                    conn.pred_facts = self._to_sink(key, old, remember=False)
            elif self.sink is not None and conn is not self._last_moved:
                del active[key]  # least recently active first: see _sweep
                active[key] = conn
                self._last_moved = conn
        # The options of a SYN are parsed once, here, for both analyses (window scale, syn_opts).
        syn_opts = parse_options(p.options) if flags & TCP_SYN else None
        # Wireshark's conversation: one per tuple until a SYN arrives with another ISN.
        reused = 0
        if ws is not None and flags & TCP_SYN:
            reused = ws.is_new_session(src, sport, flags, p.seq)  # type: ignore[arg-type]
        if reused == 1:
            ws = None
        if ws is None:
            ws = Conversation(src, sport)  # type: ignore[arg-type]
        conn.ws = ws
        is_orig = src == conn.orig.addr and sport == conn.orig.port
        self._segment(conn, ws, p, is_orig, flags, syn_opts, reused)
        self._process(conn, p, is_orig, flags, syn_opts)
        return conn

    def _segment(self, conn: Connection, ws: Conversation, p: Packet, is_orig: bool, flags: int,
                 syn_opts: TcpOptions | None, reused: int) -> None:
        """Wireshark's per-segment analysis of ``p``; its flags become the connection's events."""
        fl, extra, peer_frame = ws.analyze(p.src, p.sport, flags, p.seq, p.ack,  # type: ignore[arg-type]
                                           p.payload_len or 0, p.window, p.ts, p.no, syn_opts,  # type: ignore[arg-type]
                                           datagram_key(p))
        opts = p.options
        if opts and 5 in opts and not flags & TCP_SYN:  # (a SACK option may be there: D-SACKs)
            blocks = parse_options(opts).get("sack")
            if blocks:
                ws.sack(p.src, p.sport, p.ack, blocks)  # type: ignore[arg-type]
        if reused:
            fl |= REUSED_PORTS
        if fl:
            self._event(conn, p, is_orig, fl, extra, peer_frame)

    def _event(self, conn: Connection, p: Packet, is_orig: bool, fl: int, extra: int, peer_frame: int) -> None:
        counts = conn.event_counts
        tcpflags = p.flags or 0
        counted = bits = counted_bits(fl, tcpflags)
        while bits:
            bit = bits & -bits
            k = (bit, is_orig)
            counts[k] = counts.get(k, 0) + 1
            bits ^= bit
        # Beyond the cap a segment is still kept when it is the first (non-SYN) one of its side to
        # carry one of its counted flags: every count then has a frame to show (20 extra at most).
        new = 0 if tcpflags & TCP_SYN else (counted if is_orig else counted << 32) & ~conn.event_bits
        if self.max_events is None or len(conn.events) < self.max_events or new:
            conn.events.append((p.no, p.ts, is_orig, fl, extra, peer_frame, tcpflags, p.payload_len or 0))
            conn.event_bits |= new
        else:
            conn.events_dropped += 1
            _count_dropped(conn, p, is_orig, fl, extra, tcpflags)

    def _other(self, p: Packet) -> Connection:
        src, sport, dst, dport = p.src, p.sport, p.dst, p.dport
        proto = p.proto
        if (src, sport) <= (dst, dport):
            key = (src, sport, dst, dport, proto)
        else:
            key = (dst, dport, src, sport, proto)
        conn = self.active.get(key)
        if conn is None or p.ts - conn.last_ts > OTHER_TIMEOUT_NS:
            if conn is not None:
                self._retire(key, conn)
            name = "udp" if proto == 17 else "icmp"
            conn = self._new_conn(p, key, name, False)
        elif self.sink is not None and conn is not self._last_moved:
            del self.active[key]
            self.active[key] = conn
            self._last_moved = conn
        is_orig = src == conn.orig.addr and sport == conn.orig.port
        ep = conn.orig if is_orig else conn.resp
        if ep.pkts == 0:
            conn.add_history(ep, "D")
        ep.pkts += 1
        ep.data_bytes += p.payload_len or 0
        ep.ip_bytes += _ip_len(p)
        conn.last_ts = p.ts
        conn.last_frame = p.no
        return conn

    # -- the per-packet pipeline ------------------------------------------------------------------
    # Every TCP segment of a capture runs through here, so the code is written for the interpreter:
    # packet fields are read once into locals, seq_delta comparisons are spelled out inline
    # (``(a - b) & 0x80000000``: a is before b, modulo 2^32), and the steps that cannot change
    # anything for most segments (the state machine on an established side, the RFC 793 inference
    # on a plain ACK, a history letter already recorded) are skipped by a test in place of a call.
    def _process(self, conn: Connection, p: Packet, is_orig: bool, flags: int, syn_opts: TcpOptions | None) -> None:
        ep = conn.orig if is_orig else conn.resp
        peer = conn.resp if is_orig else conn.orig
        ts = p.ts
        no = p.no
        cks = p.cksum
        if cks > _CK_GOOD and self._left_out(conn, ep, p, cks, flags):
            return
        if self._bad_hosts and not self._replaying and (hb := self._bad_hosts.get(p.src or "?")) is not None:
            hb[1] += 1  # a valid frame of a host that sent a wrong checksum

        syn = flags & TCP_SYN
        fin = flags & TCP_FIN
        rst = flags & TCP_RST
        ackf = flags & TCP_ACK
        sfr = flags & _SFR
        length = p.payload_len or 0
        seq = p.seq
        ack = p.ack
        assert seq is not None and ack is not None

        # Zeek PR #2191: a connection that began with a SYN-ACK is flipped when the very next packet,
        # in either direction, is an ACK or carries data (a stealth scan would elicit neither).
        # (Retransmitted SYN-ACKs keep the question open; the first other packet settles it, even one
        # dropped for a bad checksum: tcp__ctu-64702-888 and chksums__localhost-bad-chksum.)
        if conn.first_was_synack and conn.first_frame != no and not syn:
            flip_now = not conn.flipped and not rst and bool(ackf or length)
            conn.first_was_synack = False
            if flip_now:
                conn.history = "^" + conn.history.swapcase()
                conn.hist_seen = ((conn.hist_seen & 0xFFFF) << 16) | (conn.hist_seen >> 16)
                conn.flip()
                conn.history = conn.history[:-1]  # flip() appended '^'; it is already in front
                is_orig = not is_orig  # the same endpoint objects, now in the other roles

        # set_partial_status
        if is_orig:
            if not conn.first_seen & 1:
                conn.is_partial = not syn or bool(ackf)
        elif not conn.first_seen & 2 and not conn.is_partial:
            conn.is_partial = not syn

        seg_len = length + (1 if syn else 0) + (1 if fin else 0)
        if rst:
            seg_len -= length
        seq_one_past = (seq + seg_len) & _MASK

        # init_endpoint
        st = ep.state
        if st == _INACTIVE:
            if syn:
                ep.ack_seq = ep.start_seq = seq
                last = seq_one_past
            else:
                ep.ack_seq = ep.start_seq = (seq - 1) & _MASK
                last = seq
            ep.last_seq = last
        elif st in (_ESTABLISHED, _PARTIAL):
            if syn:
                if ep.size(peer) > 0:
                    conn.weird("SYN_inside_connection", no)
                if seq != ep.start_seq:
                    conn.weird("SYN_seq_jump", no)
                ep.start_seq = ep.ack_seq = seq
                ep.last_seq = seq_one_past
        elif st in (_SYN_SENT, _SYN_ACK_SENT):
            if syn and seq != ep.start_seq:
                conn.weird("SYN_seq_jump", no)
                ep.start_seq = ep.ack_seq = seq
                ep.last_seq = seq_one_past
        elif st == _RESET and syn and ep.prev_state == _INACTIVE:
            ep.start_seq = ep.ack_seq = seq
            ep.last_seq = seq_one_past

        rel_seq, underflow = _relative(ep, seq, ep.last_seq, ep.seq_wraps)

        # update_history
        if not sfr:
            # The common case, data or a bare ACK: a call only the first time its letter appears.
            if length:
                if not conn.hist_seen & (_H_DATA if ep.is_orig else _H_DATA << 16):
                    conn.check_history(ep, _H_DATA, "D")
            elif ackf and not conn.hist_seen & (_H_ACK if ep.is_orig else _H_ACK << 16):
                conn.check_history(ep, _H_ACK, "A")
        elif (1 if syn else 0) + (1 if fin else 0) + (1 if rst else 0) > 1:
            if fin and rst:
                conn.check_history(ep, _H_FIN_RST, "I")
            else:
                conn.check_history(ep, _H_MULTI, "Q")
        elif syn:
            code = "H" if ackf else "S"
            if conn.check_history(ep, _H_SYN, code) and rel_seq != ep.hist_last_syn:
                conn.add_history(ep, code)
            ep.hist_last_syn = rel_seq
        elif fin:
            if conn.check_history(ep, _H_FIN, "F") and rel_seq + length != ep.hist_last_fin:
                conn.add_history(ep, "F")
            ep.hist_last_fin = rel_seq + length
        else:
            if conn.check_history(ep, _H_RST, "R") and rel_seq != ep.hist_last_rst:
                conn.add_history(ep, "R")
            ep.hist_last_rst = rel_seq

        # update_window
        win = (p.window or 0) << ep.window_scale
        if win == 0 and not rst and peer.state != _CLOSED and ep.state != _RESET:
            ep.zero_windows += 1
            _scaled(conn, "W", ep, ep.zero_windows)
        if (not sfr and ep.state != _CLOSED and ep.state != _RESET
                and not (seq - ep.window_seq) & 0x80000000 and not (ack - ep.window_ack_seq) & 0x80000000):
            ep.window = win
            ep.window_ack_seq = ack
            ep.window_seq = seq
            if win > ep.max_window:
                ep.max_window = win

        if not (conn.orig.did_close and conn.resp.did_close):
            conn.last_ts = ts
        conn.last_frame = no

        if syn:
            opts = syn_opts if syn_opts is not None else parse_options(p.options)
            if flags & TCP_URG:
                conn.weird("baroque_SYN", no)
            if rst:
                conn.weird("TCP_christmas", no)
            if length:
                conn.weird("SYN_with_data", no)
            scale = opts.get("wscale", -1)
            if scale < 0:
                if ackf:
                    ep.window_scale = peer.window_scale = 0
                else:
                    ep.window_scale = 0
            else:
                if scale > 14:
                    conn.weird("TCP_scale_range", no)
                    scale = 14
                ep.window_scale = scale
                ep.window_seq = seq
                ep.window_ack_seq = ack
                peer.window_seq = ack
                peer.window_ack_seq = seq
            if ep.syn_raw is None or not ackf or ep.isn is None:
                ep.syn_raw = p.options or b""  # (``opts`` is parse_options of these)
            if ep.isn is None or ep.isn != seq:
                ep.isn = seq
            ep.syn_cnt += 1
            if len(ep.syns) < 32:
                ep.syns += (no,)
            if not ackf and is_orig:
                if conn.syn_ts is None:
                    conn.syn_ts = ts
                    conn.syn_frame = no
                if conn.synack_ts is None:
                    conn.last_syn_ts = ts
            elif ackf and not is_orig and conn.synack_ts is None:
                conn.synack_ts = ts
                conn.synack_frame = no
        if fin:
            ep.fin_cnt += 1
            ep.fin_seq = rel_seq + seg_len
            ep.fin_raw = (seq + length) & _MASK
            if len(ep.fins) < 32:
                ep.fins += (no,)
        if rst:
            ep.rst_cnt += 1
            if len(ep.rsts) < 32:
                ep.rsts += (no,)
            if ep.rst_cnt >= STORM_THRESH and ts < ep.last_ts + STORM_INTERARRIVAL_NS:
                # Zeek's rule, per endpoint and connection; which endpoint storms is kept by address
                # (the roles may still flip): its first storming RST.
                conn.weird("RST_storm", no)
                over = conn.overflow
                if over is None:
                    over = conn.overflow = {}
                over.setdefault(("rst_storm", ep.addr, ep.port), no)

        rel_ack = 0
        if ackf:
            if peer.state == _INACTIVE:
                rel_ack = 1
                if not sfr and ep.state in (_SYN_SENT, _SYN_ACK_SENT, _ESTABLISHED):
                    conn.weird("possible_split_routing", no)
                base = (ack - 1) & _MASK
                peer.start_seq = peer.ack_seq = peer.last_seq = base
            else:
                rel_ack, ack_under = _relative(peer, ack, peer.ack_seq, peer.ack_wraps)
                if ack_under:
                    rel_ack = 0
                    conn.weird("TCP_ack_underflow_or_misorder", no)
                elif not rst:
                    # The ACK moved forward (seq_delta(ack, peer.ack_seq) > 0), and not absurdly
                    # far for an ACK of 0.
                    d = (ack - peer.ack_seq) & _MASK
                    if 0 < d < 0x80000000 and not (ack == 0 and d > TOO_LARGE_SEQ_DELTA):
                        peer.update_ack_seq(ack)
            if (conn.ack_ts is None and is_orig and conn.synack_ts is not None and not syn
                    and peer.isn is not None and ack == (peer.isn + 1) & _MASK):
                conn.ack_ts = ts
                conn.ack_frame = no

        # update_last_seq
        delta_last = seq_delta(seq_one_past, ep.last_seq)
        if (syn or rst) and (delta_last > TOO_LARGE_SEQ_DELTA or delta_last < -TOO_LARGE_SEQ_DELTA):
            pass
        elif fin and ep.last_seq == (ep.start_seq + 1) & _MASK:
            ep.update_last_seq(seq_one_past)
        elif ep.state == _RESET:
            pass
        elif delta_last > 0:
            ep.update_last_seq(seq_one_past)
        elif length > 0:
            ep.rxmit_pkts += 1
            ep.rxmit_bytes += length
            _scaled(conn, "T", ep, ep.rxmit_pkts)

        # Zeek's state machine; on an established, partial or closed side only SYN, FIN and RST
        # can change anything.
        st = ep.state
        if sfr or st not in (_ESTABLISHED, _PARTIAL, _CLOSED):
            self._state_machine(conn, p, ep, peer, is_orig, flags, length, delta_last)

        # Zeek's reassembler gap check, when the ACK covers more than the peer's data trimmed so far
        # (nothing else can happen in _ack_received).
        if ackf and rel_ack > peer.trim_seq:
            self._ack_received(conn, peer, rel_ack)

        if length > 0 and ep.fin_cnt and not rst and rel_seq + length > ep.fin_seq:
            conn.weird("data_after_FIN", no)

        # Data the reassembler would buffer: only fully captured payload (Zeek's DataSent).
        if length > 0 and not rst and not underflow:
            ep.data_pkts += 1
            ep.data_bytes += length
            if p.caplen >= p.wirelen:
                _data_sent(ep, rel_seq + 1 if syn else rel_seq, length)

        conn.first_seen |= 1 if is_orig else 2

        raw_opts = p.options
        if raw_opts and not syn:
            _track_options(ep, peer, raw_opts)

        # accounting (ConnSize): IP bytes as Zeek counts them (see _ip_len)
        ep.pkts += 1
        payload_len = p.payload_len
        if payload_len is not None:
            ep.ip_bytes += payload_len + 20 + len(raw_opts or b"") + (20 if p.ip_version == 4 else 40)
        ep.last_ts = ts
        if ep.first_ttl is None:
            ep.first_ttl = p.ttl
            ep.first_mac = p.src_mac

        # The RFC 793 inference: nothing to infer from a plain segment between established sides.
        if sfr or ep.tcp_state != ESTAB_S or peer.fin_raw is not None:
            _rfc793(conn, p, ep, peer, is_orig, flags, length)

        ev = conn.evidence
        if len(ev) < EVIDENCE_FIRST:
            # (A connection slimmed after its clean close keeps only what could still be news: a
            # SYN, FIN or RST, or data. Its last ACKs made a sixth of a busy capture's peak memory.)
            nce = conn.n_control_evidence
            if nce < _SLIMMED or (nce == _SLIMMED and (sfr or length)):
                ev.append(p)
            elif nce == _SLIMMING:  # the FIN that completed the clean close: no news either
                conn.n_control_evidence = _SLIMMED
        elif sfr and conn.n_control_evidence < EVIDENCE_CONTROL:
            conn.n_control_evidence += 1
            ev.append(p)

    def _state_machine(self, conn: Connection, p: Packet, ep: Endpoint, peer: Endpoint, is_orig: bool,
                       flags: int, length: int, delta_last: int) -> None:
        syn = flags & TCP_SYN
        fin = flags & TCP_FIN
        rst = flags & TCP_RST
        ackf = flags & TCP_ACK
        do_close = False
        st = ep.state
        if st == _INACTIVE:
            if syn:
                if is_orig:
                    if ackf:
                        conn.weird("connection_originator_SYN_ack", p.no)
                        ep.set_state(_SYN_ACK_SENT)
                        if peer.state == _INACTIVE and not conn.flipped and conn.first_frame == p.no:
                            conn.first_was_synack = True
                    else:
                        ep.set_state(_SYN_SENT)
                else:
                    if ackf:
                        if peer.state not in (_INACTIVE, _PARTIAL) and not (
                                seq_delta(p.ack, peer.start_seq) >= 0  # type: ignore[arg-type]
                                and seq_delta(peer.last_seq, p.ack) >= 0):  # type: ignore[arg-type]
                            conn.weird("bad_SYN_ack", p.no)
                    elif peer.state == _SYN_ACK_SENT and p.seq == ep.start_seq:
                        # SYN/SYN-ACK reversal: flip the endpoints and establish.
                        conn.first_was_synack = False
                        conn.flip()
                        peer.set_state(_ESTABLISHED)
                        conn.first_seen |= 1
                    else:
                        conn.weird("simultaneous_open", p.no)
                    if peer.state == _SYN_SENT:
                        peer.set_state(_ESTABLISHED)
                    elif peer.state == _INACTIVE:
                        conn.weird("unsolicited_SYN_response", p.no)
                    ep.set_state(_ESTABLISHED)
            if fin:
                ep.set_state(_CLOSED)
                do_close = True
                if peer.state != _PARTIAL and not syn:
                    conn.weird("spontaneous_FIN", p.no)
            if rst:
                ep.set_state(_RESET)
                do_close = True
                if peer.state == _INACTIVE and not (is_orig and peer.state == _ESTABLISHED):
                    conn.weird("spontaneous_RST", p.no)
            if ep.state == _INACTIVE:
                if not is_orig and length == 0 and conn.orig.state == _SYN_SENT:
                    pass  # an eccentric stack ACKs the SYN before answering it
                elif ackf and peer.state == _ESTABLISHED:
                    ep.set_state(_ESTABLISHED)
                    conn.is_partial = False
                    conn.first_seen |= 1 if is_orig else 2
                else:
                    ep.set_state(_PARTIAL)
        elif st in (_SYN_SENT, _SYN_ACK_SENT):
            if fin:
                if peer.state in (_INACTIVE, _SYN_SENT):
                    conn.weird("inappropriate_FIN", p.no)
                ep.set_state(_CLOSED)
                do_close = True
            if rst:
                ep.set_state(_RESET)
                do_close = True
            elif length > 0:
                conn.weird("data_before_established", p.no)
        elif st in (_ESTABLISHED, _PARTIAL):
            if syn and st == _PARTIAL and peer.state == _INACTIVE and not ackf:
                conn.weird("SYN_after_partial", p.no)
                ep.set_state(_SYN_SENT)
            if fin and not rst:
                ep.set_state(_CLOSED)
                if peer.state == _RESET and peer.prev_state == _CLOSED:
                    peer.set_state(_CLOSED)
                do_close = True
            if rst:
                ep.set_state(_RESET)
                do_close = True
        elif st == _CLOSED:
            if syn:
                conn.weird("SYN_after_close", p.no)
            if fin and delta_last > 0:
                conn.weird("FIN_advanced_last_seq", p.no)
            if rst and peer.state != _CLOSED:
                ep.set_state(_RESET)
                if not ep.did_close:
                    do_close = True
        elif st == _RESET:
            if syn:
                conn.weird("SYN_after_reset", p.no)
            if fin:
                conn.weird("FIN_after_reset", p.no)
            if length > 0 and not rst:
                conn.weird("data_after_reset", p.no)
        if do_close and not ep.did_close:
            ep.did_close = True
            if conn.close_first is None:
                conn.close_first = "orig" if is_orig else "resp"
                conn.close_how = "RST" if rst else "FIN"
                conn.close_frame = p.no
            # Zeek's ConnectionClosed: a complete close schedules deletion; a FIN that was the
            # first thing a side ever sent schedules the partial-close check.
            if ep.state == _RESET or peer.did_close or peer.state == _INACTIVE:
                conn.closed_ts = p.ts
                if conn.delete_at is None:
                    conn.delete_at = conn.last_ts + CLOSE_LINGER_NS
                    if self.slim_clean and peer.did_close and not rst:
                        _slim_if_clean(conn)
            elif ep.prev_state == _INACTIVE and conn.partial_close_at is None:
                conn.partial_close_at = conn.last_ts + PARTIAL_CLOSE_NS

    def _ack_received(self, conn: Connection, ep: Endpoint, seq: int) -> None:
        """The peer acknowledged ``seq`` (relative) of ``ep``'s data: Zeek's reassembler gap check."""
        if ep.fin_cnt > 0 and seq >= ep.fin_seq:
            seq = ep.fin_seq - 1
        if seq <= ep.trim_seq:
            return
        if seq > ep.last_reassem:
            peer = conn.resp if ep is conn.orig else conn.orig
            if not (seq <= 2 and conn.is_partial):
                blocks = ep.blocks
                while blocks and blocks[0][0] < seq:
                    b = blocks[0]
                    if b[0] > ep.last_reassem:
                        _gap(conn, ep, peer, ep.last_reassem, b[0] - ep.last_reassem)
                        ep.last_reassem = b[0]
                    if b[1] > ep.last_reassem:
                        ep.last_reassem = b[1]
                    blocks.pop(0)
                if seq > ep.last_reassem:
                    _gap(conn, ep, peer, ep.last_reassem, seq - ep.last_reassem)
                if seq > ep.last_reassem:
                    ep.last_reassem = seq
        ep.trim_seq = seq
        if ep.blocks:
            ep.blocks = [b for b in ep.blocks if b[1] > seq] or None


_TS_PREFIX = b"\x01\x01\x08\x0a"  # NOP NOP TS: how Linux and BSD lay out the timestamp option
_u32x2 = struct.Struct("!II").unpack_from


def datagram_key(p: Packet) -> int | None:
    """What makes a segment the same datagram captured twice (tcpanalysis compares it where it
    compared the bare IP ID): the same IPv4 identification, the same TTL and the same TCP header
    (flags, ACK, window, options and length; the sequence number is the lookup's key). The same IP
    ID alone is not enough: a stack that reuses IP IDs (0 with DF, per-destination counters) sends
    a real retransmission with the IP ID of the original, and its timestamps, ACK or window differ.
    Without an IP ID (0, or IPv6) only the same capture timestamp as well makes it the same packet
    (the same bytes seen twice at once): a retransmission is never sent at the same instant, but
    within the same timestamp tick it can repeat the whole TCP header."""
    if not p.ip_id:
        return hash((p.ts, p.ttl, p.flags, p.ack, p.window, p.options, p.payload_len)) or 1
    return hash((p.ip_id, p.ttl, p.flags, p.ack, p.window, p.options, p.payload_len)) or 1


def counted_bits(fl: int, tcpflags: int) -> int:
    """The analysis flags of one segment as they are counted (the JSON ``analysis`` object).

    A duplicate frame was captured twice, not sent twice: no retransmission or loss is counted for
    it. Retransmitted SYNs are handshake retries (``syn_retransmission``), not data loss.
    """
    if fl & DUPLICATE_FRAME:
        return fl & ~(_RETRANS_FAMILY | LOST_UPSTREAM)
    if tcpflags & TCP_SYN and fl & _RETRANS_FAMILY:
        return (fl & ~_RETRANS_FAMILY) | SYN_RETRANSMISSION
    return fl


def uid_of(index: int) -> str:
    """The uid of connection number ``index`` (``C000042``): connections are numbered in order of
    first frame."""
    return f"C{index:06d}"


def uid_index(uid: str) -> int:
    """``C000042`` -> 42."""
    return int(uid[1:])


def _retire_at(conn: Connection) -> int:
    """When Zeek's timers remove this TCP connection if no packet reaches it first: the earliest
    ``now`` at which it has been idle ``INACTIVITY_NS`` or, with a side closed, a close timer has
    fired. Timers due at or before a packet's time fire before the packet is processed.
    (``tests/test_memory.py`` checks this against the timers written as conditions on ``now``, on
    every capture.)"""
    at = conn.last_ts + INACTIVITY_NS
    o, r = conn.orig, conn.resp
    if not (o.did_close or r.did_close):
        return at
    if conn.delete_at is not None:
        at = min(at, conn.delete_at)  # tcp_close_delay after the close completed
    reset = o.state == _RESET or r.state == _RESET
    if (conn.partial_close_at is not None and o.state != _INACTIVE and r.state != _INACTIVE
            and not (o.did_close and r.did_close) and not reset):
        at = min(at, conn.partial_close_at)  # tcp_partial_close_delay after a FIN that was the side's first packet
    # ExpireTimer: first at creation + tcp_SYN_timeout, then every tcp_session_timer; it removes a
    # connection idle for tcp_connection_linger once a side has closed and the other side has
    # closed too, reset, or never said anything. Its first firing after the linger:
    if (o.did_close and r.did_close) or reset or o.state == _INACTIVE or r.state == _INACTIVE:
        first = conn.first_ts + EXPIRE_FIRST_NS
        linger_end = conn.last_ts + CLOSE_LINGER_NS
        k = 0 if first > linger_end else (linger_end - first) // EXPIRE_EVERY_NS + 1
        at = min(at, first + k * EXPIRE_EVERY_NS)
    return at


_TAIL_BITS = RETRANSMISSION | FAST_RETRANSMISSION | SPURIOUS_RETRANSMISSION | KEEP_ALIVE


def _count_dropped(conn: Connection, p: Packet, is_orig: bool, fl: int, extra: int, tcpflags: int) -> None:
    """An analysed segment beyond ``Tracker.max_events``: counted in ``conn.overflow`` by its flags,
    so that the findings still tell how many there were (and their bytes, the sum and the largest
    of ``extra``: an RTO's wait, a duplicate ACK's number), without keeping it."""
    over = conn.overflow
    if over is None:
        over = conn.overflow = {}
    key = ("event", fl, is_orig, bool(tcpflags & TCP_SYN))
    agg = over.get(key)
    if agg is None:
        agg = over[key] = [0, 0, 0, extra, p.no, 0]
    agg[0] += 1
    agg[1] += p.payload_len or 0
    agg[2] += extra
    if extra > agg[3]:
        agg[3], agg[4] = extra, p.no
    if extra == 1:
        agg[5] += 1
    if fl & _TAIL_BITS:
        # close.half_open counts the sender's retransmissions and keep-alives after the peer's
        # last packet: the ones dropped since the peer was last heard from.
        peer_last = (conn.resp if is_orig else conn.orig).last_ts
        tail = over.get(("tail", is_orig))
        if tail is None or tail[0] != peer_last:
            tail = over[("tail", is_orig)] = [peer_last, 0]
        if p.ts > peer_last:
            tail[1] += 1


#: ``Connection.overflow`` key of the segments left out for a bad checksum and what became of them
#: (see ``Tracker._left_out``; entries name their sender by address and port, so a flip keeps them).
BAD_SEGMENTS = ("bad_checksum",)


def _flipped_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
    """An ``overflow`` key with the roles swapped (see Connection.flip)."""
    if key[0] == "event":
        return (key[0], key[1], not key[2], key[3])
    if key[0] == "tail":
        return (key[0], not key[1])
    return key


def _freeze_rtt(conn: Connection) -> None:
    """Fix a finished connection's RTT before a successor on its tuple shares its conversation.
    (Both sides from one ``rtt_stats``: on a compacted conversation, one read of its bytes.)"""
    ws = conn.ws
    if ws is not None and conn.rtt_final is None:
        o, r = conn.orig, conn.resp
        sent, received = ws.rtt_stats(o.addr, o.port)
        if r.addr == o.addr and r.port == o.port:
            received = sent  # a connection to itself: both sides read one direction (as _rtt does)
        conn.rtt_final = (_rtt_dict(sent), _rtt_dict(received))


def _rtt_dict(stats: tuple[int, int, int | None, int | None, int, int, int]) -> dict[str, Any] | None:
    """Direction.rtt() in seconds, from ``Conversation.rtt_stats``: samples/min/avg/max over the
    path samples (segments sent once, delayed-ACK waits left out: see pcapsleuth.tcpanalysis);
    ``delayed_ack_samples``/``delayed_ack_max`` and ``karn_skipped`` only when there were any."""
    n, total, low, high, dn, dmax, karn = stats
    if not n and not dn:
        return None
    out: dict[str, Any] = {"samples": n, "min": None, "avg": None, "max": None}
    if n:
        assert low is not None and high is not None
        out.update(min=round(low / 1e9, 9), avg=round(total // n / 1e9, 9), max=round(high / 1e9, 9))
    if dn:
        out.update(delayed_ack_samples=dn, delayed_ack_max=round(dmax / 1e9, 9))
    if karn:
        out["karn_skipped"] = karn
    return out


def _slim_if_clean(conn: Connection) -> None:
    """A connection that just closed with a FIN each way and nothing unusual keeps no evidence
    packets (a report refetches them from the file); no detector reads them. Later packets are
    kept only if they could be news: a SYN, FIN or RST, or data (not the last ACKs).

    ``tests/test_memory.py`` proves the last point on every sample and corpus capture.
    """
    o, r = conn.orig, conn.resp
    if (conn.weirds or conn.event_counts or o.rst_cnt or r.rst_cnt or o.syn_cnt > 1 or r.syn_cnt > 1
            or conn.syn_frame is None or conn.synack_frame is None or conn.ack_frame is None):
        return
    conn.evidence = []
    conn.n_control_evidence = _SLIMMING  # later packets: only SYN, FIN, RST or data, first-packets quota


def _track_options(ep: Endpoint, peer: Endpoint, opts: bytes) -> None:
    """Timestamps (RFC 7323) and SACK blocks (RFC 2018) of a non-SYN segment, cheaply."""
    if opts[:4] == _TS_PREFIX and len(opts) >= 12:
        tsval = _u32x2(opts, 4)[0]
        if ep.ts_first is None:
            ep.ts_first = tsval
        ep.ts_last = tsval
        ep.ts_pkts += 1
        if len(opts) == 12:
            return
    if 5 not in opts:  # no byte can be a SACK option kind: nothing more to find
        return
    parsed = parse_options(opts)
    if "ts_val" in parsed and ep.ts_pkts == 0:
        ep.ts_first = ep.ts_last = parsed["ts_val"]
        ep.ts_pkts = 1
    blocks = parsed.get("sack")
    if blocks:
        ep.sack_pkts += 1
        ep.sack_blocks += len(blocks)
        if peer.isn is not None:
            edge = max(seq_delta(right, peer.isn) for _, right in blocks)
            if ep.sack_max_edge is None or edge > ep.sack_max_edge:
                ep.sack_max_edge = edge


def _gap(conn: Connection, ep: Endpoint, peer: Endpoint, at: int, length: int) -> None:
    if _is_clean(ep) and _is_clean(peer):
        ep.gap_cnt += 1
        _scaled(conn, "G", ep, ep.gap_cnt)
        ep.gap_bytes += length


def _data_sent(ep: Endpoint, seq: int, length: int) -> None:
    """Record payload [seq, seq+length) as seen (what Zeek's reassembler would buffer)."""
    upper = seq + length
    ack = ((ep.ack_wraps << 32) | ep.ack_seq) - ep.start_seq  # ep.rel(ep.ack_seq, ep.ack_wraps)
    if seq < ack:
        if upper <= ack:
            return
        seq = ack
    if upper <= ep.trim_seq:
        return
    if seq < ep.trim_seq:
        seq = ep.trim_seq
    if seq <= ep.last_reassem:
        if upper > ep.last_reassem:
            ep.last_reassem = upper
            blocks = ep.blocks
            while blocks and blocks[0][0] <= ep.last_reassem:
                if blocks[0][1] > ep.last_reassem:
                    ep.last_reassem = blocks[0][1]
                blocks.pop(0)
        return
    blocks = ep.blocks
    if blocks is None:
        ep.blocks = blocks = []
    for b in blocks:
        if seq <= b[1] and upper >= b[0]:
            b[0] = min(b[0], seq)
            b[1] = max(b[1], upper)
            break
    else:
        if len(blocks) < MAX_BLOCKS:
            blocks.append([seq, upper])
            blocks.sort()


def _relative(ep: Endpoint, cur: int, last: int, wraps: int) -> tuple[int, bool]:
    """Zeek's get_relative_seq: (relative sequence number, underflow).

    Twice per packet: the seq_delta calls are spelled out (the sign bit of the 32-bit difference).
    """
    delta = (cur - last) & _MASK
    if delta & 0x80000000:
        if wraps and cur > last:
            wraps -= 1
    elif delta and cur < last:
        wraps += 1
    if wraps == 0:
        d = (cur - ep.start_seq) & _MASK
        if d & 0x80000000:
            return d - 0x100000000, True
        return d, False
    return ((wraps << 32) | cur) - ep.start_seq, False


def _ip_len(p: Packet) -> int:
    """IP bytes of the packet, as Zeek's conn_size counts them (header + payload)."""
    if p.payload_len is None:
        return 0
    if p.proto == 6:
        return p.payload_len + 20 + len(p.options or b"") + (20 if p.ip_version == 4 else 40)
    return p.payload_len + 8 + (20 if p.ip_version == 4 else 40)


def _pred_info(old: Connection, now: int) -> dict[str, Any]:
    return {
        "uid": old.uid,
        "conn_state": old.conn_state,
        "history": old.history_str,
        "orig_tcp_state": old.orig.tcp_state,
        "resp_tcp_state": old.resp.tcp_state,
        "gap_seconds": round((now - old.last_ts) / 1e9, 6),
    }


def _set_tcp_state(conn: Connection, ep: Endpoint, p: Packet, state: str) -> None:
    if ep.tcp_state == state:
        return
    ep.tcp_state = state
    if len(conn._transitions) < MAX_TRANSITIONS * _TRANSITION.size:
        code = (0 if ep.is_orig else 1 << 4) | _TCP_STATE_CODE[state]
        try:
            conn._transitions += _TRANSITION.pack(p.no, p.ts, code)
        except struct.error:  # a time beyond int64 ns (a damaged capture): clamped, as iso_ts shows it
            conn._transitions += _TRANSITION.pack(p.no, min(max(p.ts, -_INT64_MAX), _INT64_MAX), code)


def _rfc793(conn: Connection, p: Packet, ep: Endpoint, peer: Endpoint, is_orig: bool, flags: int,
            length: int) -> None:
    """Infer the RFC 793 state of each side's socket from this packet (RFC 9293 section 3.3.2).

    A packet changes the sender's state when it is sent and the receiver's when it arrives; a
    capture cannot tell the two instants apart, so both change at the packet's frame.
    """
    syn = flags & TCP_SYN
    fin = flags & TCP_FIN
    rst = flags & TCP_RST
    ackf = flags & TCP_ACK
    s = ep.tcp_state
    if rst:
        _set_tcp_state(conn, ep, p, CLOSED_S)
        if peer.tcp_state is not None or peer.pkts:
            _set_tcp_state(conn, peer, p, CLOSED_S)
        return
    if syn:
        if not ackf:
            if s in (None, CLOSED_S, TIME_WAIT, SYN_SENT_S):
                _set_tcp_state(conn, ep, p, SYN_SENT_S)
        else:
            if s in (None, CLOSED_S, SYN_SENT_S):
                _set_tcp_state(conn, ep, p, SYN_RCVD_S)
        return
    # A FIN from us in our current state, then what our ACK says about the peer's FIN.
    if ackf and peer.fin_raw is not None and p.ack == (peer.fin_raw + 1) & _MASK:
        ps = peer.tcp_state
        if ps == FIN_WAIT_1:
            _set_tcp_state(conn, peer, p, FIN_WAIT_2)
        elif ps == CLOSING:
            _set_tcp_state(conn, peer, p, TIME_WAIT)
        elif ps == LAST_ACK:
            _set_tcp_state(conn, peer, p, CLOSED_S)
    if ackf and not fin:
        ps = peer.tcp_state
        if s == SYN_SENT_S:
            # Our ACK completes the handshake only if it acknowledges the peer's SYN.
            if peer.isn is not None and p.ack == (peer.isn + 1) & _MASK:
                _set_tcp_state(conn, ep, p, ESTAB_S)
                if ps in (SYN_RCVD_S, None):
                    _set_tcp_state(conn, peer, p, ESTAB_S)
        elif s is None and ps != SYN_SENT_S:
            # Picked up mid-stream: both sides are evidently established. (A bare ACK to a
            # peer in SYN-SENT is no such evidence: it is a challenge ACK from a socket in
            # another state, RFC 5961 section 4, and the peer answers it with a RST.)
            _set_tcp_state(conn, ep, p, ESTAB_S)
            if ps in (SYN_RCVD_S, None):
                _set_tcp_state(conn, peer, p, ESTAB_S)
        elif s == SYN_RCVD_S:
            _set_tcp_state(conn, ep, p, ESTAB_S)
        s = ep.tcp_state
    if fin:
        if s in (ESTAB_S, SYN_RCVD_S, None, SYN_SENT_S):
            _set_tcp_state(conn, ep, p, FIN_WAIT_1)
            if peer.tcp_state in (None, SYN_RCVD_S, SYN_SENT_S):
                _set_tcp_state(conn, peer, p, ESTAB_S)
        elif s == CLOSE_WAIT:
            _set_tcp_state(conn, ep, p, LAST_ACK)
        # The peer receives our FIN.
        ps = peer.tcp_state
        if ps == ESTAB_S:
            _set_tcp_state(conn, peer, p, CLOSE_WAIT)
        elif ps == FIN_WAIT_1:
            acks_peer_fin = peer.fin_raw is not None and ackf and p.ack == (peer.fin_raw + 1) & _MASK
            _set_tcp_state(conn, peer, p, TIME_WAIT if acks_peer_fin else CLOSING)
        elif ps == FIN_WAIT_2:
            _set_tcp_state(conn, peer, p, TIME_WAIT)


def track(packets: Iterable[Packet], **kw: Any) -> list[Connection]:
    """Track every packet of an iterable; the connections in order of first frame."""
    tr = Tracker(**kw)
    for p in packets:
        tr.packet(p)
    return tr.finish()


