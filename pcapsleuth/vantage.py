"""Several captures of one incident, taken at different places, analysed together (issue 10).

In the load-balancer incident the client saw SYN, RST, SYN-ACK and the backend saw SYN, SYN-ACK:
the answer is in the difference (a RST reached the client that the backend never sent). This
module finds such differences.

Vocabulary
----------
vantage point    one capture, named after its file (``lb-client``) or by the caller.
observation      one IP datagram as one point saw it. A host that forwards a packet sees it twice
                 (arriving, then leaving with its own MAC) and a mirrored port may copy it: copies
                 of the same datagram (same 4-tuple, TCP seq/ack/flags/length/window/options and
                 IP ID) within 100 ms are one observation with several frames.
path packet      one datagram across points: the observations of several points matched together.
path connection  one TCP connection across points: the points' own connections (each capture is
                 analysed alone first) joined by the packets they share.

Matching
--------
Two observations at two points are the same datagram when their 4-tuples correspond and their
TCP seq, ack, flags (ECN bits aside) and payload length are equal; the IP ID decides between
transmissions of the same segment (Linux gives every transmission, retransmissions included,
a new IP ID). Link headers, TTL, window, options, ECN and DF may differ: the TTL drops by one
per router and the rest is reported when it changed (``vantage.modified_in_transit``).

The 4-tuples correspond when they are equal, or - NAT - when two 4-tuples that exist at only one
of the points share at least two distinct (seq, ack, flags, length) values, each other's best
match both ways. Random initial sequence numbers make two such coincidences between unrelated
connections practically impossible. A middlebox that rewrites every IP ID of a flow is noticed
(no IP ID of the flow survives) and its packets are matched without it.

Transmissions that stay ambiguous (the same segment several times, same IP ID, e.g. SYN-ACK
retransmissions with IP ID 0) are paired once the clock offset is known, nearest in time.

Clock offset (NTP-style bounds)
-------------------------------
For two points A and B let theta be B's clock minus A's clock. A packet that passes A first and
B later shows ``t_B - t_A = delay + theta >= theta``; one that passes B first shows
``t_B - t_A = theta - delay <= theta``. So every matched packet bounds theta from one side, and
packets in both directions bound it from both: ``max(B-first) <= theta <= min(A-first)``. The
estimate is the middle of that interval and the uncertainty its half-width - the same bound NTP
derives from the smallest round trip. Which point a packet passed first is read from the TTL
when it differs (a router between the points) and otherwise from the two directions of one
connection: ``t_B - t_A`` is larger for the packets that travel from A to B than for those that
travel back, whatever theta is. With three or more points the pairwise bounds are combined as a
system of difference constraints (shortest paths), so a point matched to the reference only
through a third point still gets bounds. When the bounds contradict each other (clock drift or
a step during the capture) each pair falls back to the mean of the two directions' medians.
Offsets are reported relative to the first point: ``offset`` is that point's clock minus the
reference's (subtract it from the point's timestamps to put them on the reference timeline).

Path semantics
--------------
For one path connection and one direction, a point is *upstream* of another when packets of that
direction reach it first (TTL, the two-direction rule above, or the corrected clocks). The
*endpoint capture* of a side is the point nearest to it: a point that saw both directions, with no
point beyond it towards that side and no point before it on the side's way back. A point that saw the
connection but not a given packet *missed* it (if its capture covers the time), for one of these
reasons: ``not_sent`` (it is the endpoint capture of the packet's claimed sender), ``lost_before``
(points before it saw the packet, none after it), ``bypassed`` (a point after it saw the packet:
the packet went around it, or this capture dropped it), ``appeared_after`` (only points after it
saw the packet: it entered the path later).

Findings (``vantage.*``, see ``catalog.json``)
------------------------------------------------
* ``vantage.foreign_reply`` - a packet claims to come from an endpoint whose capture covers the
  time and shows no such packet (and nothing of which it could be a copy the capture dropped:
  the endpoint sent no RST/FIN/SYN of that kind, or never the sequence range of that data). The
  earliest point that shows it, and whether it carries that point's own MAC, tell who sent it.
* ``vantage.lost_between`` - packets that reached a point and not the next point downstream,
  whose capture covers their time, nor any point after it.
* ``vantage.modified_in_transit`` - matched packets whose addresses/ports, window, TCP options,
  ECN bits, DF bit or IP ID differ between two points (TTL aside).
* ``vantage.no_overlap`` - captures that share no packet (no overlap in time, or different
  traffic): an explanation, not an error.

Own MACs: a point's own MAC is the source MAC of the copies it forwards (a packet seen twice at one
point, the second time with another source MAC) or of its own packets where it is an endpoint
capture; ARP replies sent with that MAC name the addresses the point itself holds.

Limits: each capture's TCP packets are read into memory once more for matching (about 1.2 kB per
packet), at most :data:`MAX_PACKETS` per capture: vantage analysis is for incident-sized captures.
Beyond that only the first ``MAX_PACKETS`` are compared, the capture counts as covering only the
time they span, and the summary says so. The JSON holds at most :data:`MAX_PATH_ROWS` path rows in
all (the per-connection counts stay complete).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from .analysis import AnalysisResult, analyze_capture
from .capture import Capture, CaptureInfo
from .findings import SEVERITIES, Finding
from .packet import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, Frag, Packet, flag_names
from .reader import MAX_EXPANSION, Source
from .tcpopts import parse_options
from .util import iso_ts

__all__ = [
    "MAX_PACKETS",
    "MAX_PATH_ROWS",
    "ClockEstimate",
    "PairClock",
    "PathConnection",
    "PathPacket",
    "VantagePoint",
    "VantageResult",
    "analyze_vantage_points",
    "correlate",
    "default_names",
]

#: TCP packets read per capture for matching (the rest is left out, and counted).
MAX_PACKETS = 200_000
#: Path rows (one per packet and connection) in the JSON, over all connections.
MAX_PATH_ROWS = 50_000
#: Copies of one datagram at one point (in and out of a forwarding host, a mirror port) arrive
#: within this; a retransmission of the same segment carries another IP ID or comes later.
DUP_WINDOW_NS = 100_000_000
#: Ambiguous transmissions are paired only this close in time once the clocks are aligned.
PAIR_WINDOW_NS = 2_000_000_000
#: Tuples compared per flow when looking for a NAT mapping.
_NAT_SAMPLE = 2000

_MASK = 0xFFFFFFFF
_ECN_BITS = 0x1C0  # ECE, CWR, AE: may be cleared on the way, so not part of a packet's identity
_CORE_FLAGS = 0x03F  # FIN SYN RST PSH ACK URG
_ZERO_MAC = "00:00:00:00:00:00"

Tuple4 = tuple[str, int, str, int]
Core = tuple[int, int, int, int]  # seq, ack (0 without the ACK flag), flags, payload length


# -- the points --------------------------------------------------------------------------------------
@dataclasses.dataclass
class VantagePoint:
    """One capture of the set: its own analysis and the TCP packets read again for matching."""

    index: int
    name: str
    result: AnalysisResult
    source: str
    packets: list[Packet] = dataclasses.field(default_factory=list, repr=False)
    dst_macs: dict[int, str] = dataclasses.field(default_factory=dict, repr=False)
    arp: dict[str, list[tuple[str, int]]] = dataclasses.field(default_factory=dict, repr=False)
    tcp_packets: int = 0  # TCP packets read (all of the capture's unless truncated)
    truncated: bool = False  # more than MAX_PACKETS: only the first were compared
    own_macs: set[str] = dataclasses.field(default_factory=set)
    #: why each own MAC is known to be the point's: "forwards" (its copies of forwarded packets carry
    #: it) or "endpoint" (its own packets as the endpoint capture of a connection carry it)
    mac_evidence: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def capture(self) -> CaptureInfo:
        return self.result.capture

    @property
    def first_ts(self) -> int | None:
        return self.capture.first_ts

    @property
    def last_ts(self) -> int | None:
        return self.capture.last_ts


class Observation:
    """One datagram as one point saw it (several frames when the point saw copies of it)."""

    __slots__ = ("gid", "point", "copies", "uid", "tuple", "core", "packet")

    def __init__(self, gid: int, point: int, pkt: Packet, tup: Tuple4, core: Core) -> None:
        self.gid = gid
        self.point = point
        self.copies: list[Packet] = [pkt]
        self.uid: str | None = None
        self.tuple = tup
        self.core = core
        self.packet: PathPacket | None = None

    @property
    def first(self) -> Packet:
        return self.copies[0]

    @property
    def ts_first(self) -> int:
        return self.copies[0].ts

    @property
    def ts_last(self) -> int:
        return self.copies[-1].ts

    @property
    def frames(self) -> list[int]:
        return [p.no for p in self.copies]

    def __repr__(self) -> str:
        return f"<Observation point {self.point} frames {self.frames} {_kind(self.first)}>"


_NO_MISSES: dict[int, str] = {}  # shared by the packets no point missed (most): never written to


class PathPacket:
    """One datagram across points: where it was seen (and when, on the reference clock)."""

    __slots__ = ("id", "at", "direction", "t", "conn", "missed", "status")

    def __init__(self, pid: int, at: dict[int, list[Observation]]) -> None:
        self.id = pid
        self.at = at
        self.direction = ""  # "o2r" (originator to responder) or "r2o"
        self.t = 0  # first sighting, reference clock (ns)
        self.conn: PathConnection | None = None
        self.missed: dict[int, str] = _NO_MISSES  # point -> reason (see the module docstring)
        self.status = "ok"

    def obs(self, point: int) -> Observation | None:
        lst = self.at.get(point)
        return lst[0] if lst else None

    @property
    def any(self) -> Observation:
        return next(iter(self.at.values()))[0]

    def __repr__(self) -> str:
        return f"<PathPacket {_kind(self.any.first)} at {sorted(self.at)}>"


@dataclasses.dataclass
class ClockEstimate:
    """A point's clock relative to the reference point: ``offset`` = its clock minus the reference's."""

    point: str
    offset_ns: int | None
    uncertainty_ns: int | None  # half-width of the interval; None when it is open on one side
    lower_ns: int | None
    upper_ns: int | None
    method: str  # reference | bounds | upper_bound | lower_bound | median | assumed | unknown
    matched: int  # packets this point shares with the others

    @property
    def offset_s(self) -> float | None:
        return None if self.offset_ns is None else self.offset_ns / 1e9

    @property
    def uncertainty_s(self) -> float | None:
        return None if self.uncertainty_ns is None else self.uncertainty_ns / 1e9

    def text(self) -> str:
        if self.method == "reference":
            return "reference clock"
        if self.offset_ns is None:
            return "unknown (no packet in common)"
        if self.uncertainty_ns is not None:
            return f"{_fmt_s(self.offset_ns)} \u00b1 {_fmt_s(self.uncertainty_ns, signed=False)}"
        if self.method == "upper_bound":
            return f"at most {_fmt_s(self.offset_ns)} (bounded on one side only)"
        if self.method == "lower_bound":
            return f"at least {_fmt_s(self.offset_ns)} (bounded on one side only)"
        return f"{_fmt_s(self.offset_ns)} (uncertainty unknown: {self.method})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "point": self.point,
            "offset_s": _s(self.offset_ns),
            "uncertainty_s": _s(self.uncertainty_ns),
            "lower_s": _s(self.lower_ns),
            "upper_s": _s(self.upper_ns),
            "method": self.method,
            "matched_packets": self.matched,
        }


@dataclasses.dataclass
class PairClock:
    """What the packets two points share say about their clocks (theta = b's clock minus a's)."""

    a: int
    b: int
    matched: int = 0
    a_first: list[int] = dataclasses.field(default_factory=list, repr=False)  # t_b - t_a, a saw it first
    b_first: list[int] = dataclasses.field(default_factory=list, repr=False)  # t_b - t_a, b saw it first
    unoriented: list[int] = dataclasses.field(default_factory=list, repr=False)

    @property
    def upper(self) -> int | None:
        return min(self.a_first) if self.a_first else None

    @property
    def lower(self) -> int | None:
        return max(self.b_first) if self.b_first else None

    def estimate(self) -> tuple[int | None, int | None, str]:
        """(theta, uncertainty, method) from this pair alone."""
        lo, hi = self.lower, self.upper
        if lo is not None and hi is not None:
            if lo <= hi:
                return (lo + hi) // 2, (hi - lo + 1) // 2, "bounds"
            ma, mb = statistics.median(self.a_first), statistics.median(self.b_first)
            return int((ma + mb) / 2), int(abs(ma - mb) / 2), "median"
        if hi is not None:
            return hi, None, "upper_bound"
        if lo is not None:
            return lo, None, "lower_bound"
        if self.unoriented:
            return int(statistics.median(self.unoriented)), None, "assumed"
        return None, None, "unknown"

    def to_dict(self, names: Sequence[str]) -> dict[str, Any]:
        theta, unc, method = self.estimate()
        return {
            "a": names[self.a],
            "b": names[self.b],
            "matched_packets": self.matched,
            "a_first": len(self.a_first),
            "b_first": len(self.b_first),
            "unoriented": len(self.unoriented),
            "offset_s": _s(theta),
            "uncertainty_s": _s(unc),
            "lower_s": _s(self.lower),
            "upper_s": _s(self.upper),
            "method": method,
        }


@dataclasses.dataclass
class PathConnection:
    """One TCP connection across the points (the points' own connections, joined)."""

    id: str
    members: dict[int, list[str]]  # point -> uids of that point's own analysis
    orig: tuple[str, int]  # as seen at the role point (the first point that saw the handshake)
    resp: tuple[str, int]
    role_point: int
    packets: list[PathPacket] = dataclasses.field(default_factory=list, repr=False)
    #: per direction: (upstream point, downstream point) pairs read from shared packets
    before: dict[str, set[tuple[int, int]]] = dataclasses.field(default_factory=dict, repr=False)
    orig_point: int | None = None  # the endpoint capture of the originator, if one is identified
    resp_point: int | None = None
    on_path: dict[str, set[int]] = dataclasses.field(default_factory=dict, repr=False)

    def upstream(self, direction: str, a: int, b: int) -> bool:
        """True when packets of ``direction`` pass ``a`` before ``b``."""
        return (a, b) in self.before.get(direction, set())

    def order(self, direction: str) -> list[int]:
        """The points this direction's packets pass, upstream first."""
        pts = sorted(self.on_path.get(direction, set()))
        rel = self.before.get(direction, set())
        return sorted(pts, key=lambda p: (-sum(1 for q in pts if (p, q) in rel), p))

    @property
    def points(self) -> list[int]:
        return sorted(self.members)


# -- helpers -----------------------------------------------------------------------------------------
def _s(ns: int | None) -> float | None:
    return None if ns is None else round(ns / 1e9, 9)


def _fmt_s(ns: int, *, signed: bool = True) -> str:
    """A duration for people: ``+0.000012 s (12 µs)``."""
    s = ns / 1e9
    a = abs(ns)
    if a < 1_000_000:
        human = f"{ns / 1e3:.1f} \u00b5s" if a < 1_000 or ns % 1000 else f"{ns // 1000} \u00b5s"
    elif a < 1_000_000_000:
        human = f"{ns / 1e6:.3f} ms"
    else:
        human = f"{s:.3f} s"
    return ("+" if signed and ns > 0 else "") + human


def _kind(p: Packet) -> str:
    """``RST, ACK`` / ``SYN`` / ``ACK len 1448`` - Wireshark's flag names and the length."""
    f = p.flags or 0
    names = flag_names(f) if f & 0x1FF else "<no flags>"
    return names + (f" len {p.payload_len}" if p.payload_len else "")


def _label(p: Packet) -> str:
    parts = [f"[{_kind(p)}]", f"seq={p.seq}"]
    if (p.flags or 0) & TCP_ACK:
        parts.append(f"ack={p.ack}")
    return " ".join(parts)


def _ep(addr: str, port: int) -> str:
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def _frames_text(frames: Sequence[int], limit: int = 12) -> str:
    shown = ", ".join(str(n) for n in frames[:limit])
    return shown + (f" and {len(frames) - limit:,} more" if len(frames) > limit else "")


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (plural or word + 's')}"


def _core(p: Packet) -> Core:
    flags = p.flags or 0
    return (p.seq or 0, (p.ack or 0) if flags & TCP_ACK else 0, flags & _CORE_FLAGS, p.payload_len or 0)


def _seq_end(p: Packet) -> int:
    f = p.flags or 0
    return ((p.seq or 0) + (p.payload_len or 0) + (1 if f & TCP_SYN else 0) + (1 if f & TCP_FIN else 0)) & _MASK


def _rev(t: Tuple4) -> Tuple4:
    return (t[2], t[3], t[0], t[1])


def _canon(t: Tuple4) -> tuple[tuple[str, int], tuple[str, int]]:
    a, b = (t[0], t[1]), (t[2], t[3])
    return (a, b) if a <= b else (b, a)


def _mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def default_names(sources: Sequence[Source | os.PathLike[str]]) -> list[str]:
    """Vantage point names from file names (``a/lb-client.pcap.gz`` -> ``lb-client``), made unique."""
    from .report import report_stem

    names: list[str] = []
    for i, src in enumerate(sources):
        base = report_stem(os.fspath(src)) if isinstance(src, (str, os.PathLike)) else f"point{i + 1}"
        name, n = base, 2
        while name in names:
            name, n = f"{base}-{n}", n + 1
        names.append(name)
    return names


# -- reading -----------------------------------------------------------------------------------------
def _read(point: VantagePoint, source: Source | os.PathLike[str], max_packets: int, max_decompressed: int,
          max_expansion: float = MAX_EXPANSION) -> None:
    """Read the TCP packets of one capture again, with each Ethernet frame's destination MAC and
    the ARP claims (sender IP -> sender MAC) it holds."""
    packets = point.packets
    dst_macs = point.dst_macs
    arp = point.arp
    with Capture(source, verify_checksums=False, trust_partial_checksums=True,
                 max_decompressed=max_decompressed, max_expansion=max_expansion) as cap:
        frame = cap.decoder.frame
        macs: dict[bytes, str] = {}

        def handler(buf: bytes, start: int, caplen: int, wirelen: int, no: int, ts: int, iface: int,
                    direction: int, linktype: int) -> Packet:
            p = frame(buf, start, caplen, wirelen, no, ts, iface, direction, linktype)
            if linktype == 1 and caplen >= 14:
                if p.proto == 6:
                    raw = bytes(buf[start:start + 6])
                    mac = macs.get(raw)
                    if mac is None:
                        mac = macs[raw] = _mac(raw)
                    dst_macs[no] = mac
                elif caplen >= 42 and buf[start + 12:start + 14] == b"\x08\x06":
                    sha = bytes(buf[start + 22:start + 28])
                    spa = bytes(buf[start + 28:start + 32])
                    if buf[start + 16:start + 18] == b"\x08\x00" and any(spa):
                        arp.setdefault(".".join(str(x) for x in spa), []).append((_mac(sha), no))
            return p

        try:
            for p in cap.records.walk(handler):
                if p.proto != 6 or p.flags is None or p.src is None or p.dst is None or p.sport is None \
                        or p.dport is None or p.frag == Frag.FRAGMENT:
                    continue
                if len(packets) >= max_packets:
                    point.truncated = True  # the rest is not read: tcp_packets stays a lower bound
                    break
                point.tcp_packets += 1
                packets.append(p)
        except OSError:
            pass  # the analysis already reported the damage; compare what was read


# -- correlation -------------------------------------------------------------------------------------
class _Correlator:
    def __init__(self, points: list[VantagePoint]) -> None:
        self.points = points
        self.n = len(points)
        self.obs: list[Observation] = []
        self.by_point: list[list[Observation]] = [[] for _ in points]
        self.by_tuple: list[dict[Tuple4, list[Observation]]] = [{} for _ in points]
        self.pairs: list[tuple[Observation, Observation]] = []
        #: (point a, point b, tuple at a, tuple at b) -> matched pairs (a's observation first)
        self.flows: dict[tuple[int, int, Tuple4, Tuple4], list[tuple[Observation, Observation]]] = {}
        self.upstream: dict[tuple[int, int, Tuple4, Tuple4], int | None] = {}
        self.deferred: list[tuple[int, int, list[Observation], list[Observation], Tuple4, Tuple4]] = []
        self.nat: list[tuple[int, int, Tuple4, Tuple4, int]] = []
        self.ipid_rewritten: set[tuple[int, int, Tuple4, Tuple4]] = set()
        self.pair_clock: dict[tuple[int, int], PairClock] = {}
        self.theta: list[int | None] = [0] + [None] * (self.n - 1)
        self.clock: list[ClockEstimate] = []
        self.by_uid = [{c.uid: c for c in p.result.connections} for p in points]

    # observations ---------------------------------------------------------------------------------
    def observe(self) -> None:
        for pt in self.points:
            recent: dict[tuple[Any, ...], Observation] = {}
            lst = self.by_point[pt.index]
            conns = _conn_index(pt.result)
            prune_at = 0
            for p in pt.packets:
                assert p.src is not None and p.dst is not None and p.sport is not None and p.dport is not None
                if p.ts > prune_at and len(recent) > 50_000:
                    # Only the last DUP_WINDOW can still hold a copy: forget the rest.
                    recent = {k: v for k, v in recent.items() if p.ts - v.ts_last <= DUP_WINDOW_NS}
                    prune_at = p.ts + DUP_WINDOW_NS
                tup: Tuple4 = (p.src, p.sport, p.dst, p.dport)
                core = _core(p)
                key = (tup, core, p.ip_id, p.window, p.options)
                o = recent.get(key)
                if o is not None and p.ts - o.ts_last <= DUP_WINDOW_NS:
                    o.copies.append(p)
                    continue
                o = Observation(len(self.obs), pt.index, p, tup, core)
                o.uid = _uid_for(conns, tup, p.ts)
                recent[key] = o
                self.obs.append(o)
                lst.append(o)
                self.by_tuple[pt.index].setdefault(tup, []).append(o)
            # A forwarding host sends its copy with its own source MAC: that MAC is the point's own.
            for o in lst:
                if len(o.copies) > 1:
                    first_mac = o.copies[0].src_mac
                    for c in o.copies[1:]:
                        if c.src_mac and c.src_mac != first_mac and c.src_mac != _ZERO_MAC:
                            pt.own_macs.add(c.src_mac)
                            pt.mac_evidence.setdefault(c.src_mac, "forwards")

    # matching -------------------------------------------------------------------------------------
    def match(self) -> None:
        for a in range(self.n):
            for b in range(a + 1, self.n):
                self._match_pair(a, b)

    def _match_pair(self, a: int, b: int) -> None:
        ta, tb = self.by_tuple[a], self.by_tuple[b]
        assoc: list[tuple[Tuple4, Tuple4]] = [(t, t) for t in ta if t in tb]
        only_a = [t for t in ta if t not in tb]
        only_b = [t for t in tb if t not in ta]
        if only_a and only_b:
            for t1, t2, score in _nat_pairs(ta, tb, only_a, only_b):
                assoc.append((t1, t2))
                self.nat.append((a, b, t1, t2, score))
        for t1, t2 in assoc:
            self._match_flow(a, b, t1, t2, ta[t1], tb[t2])

    def _match_flow(self, a: int, b: int, t1: Tuple4, t2: Tuple4, la: list[Observation],
                    lb: list[Observation]) -> None:
        key = (a, b, t1, t2)
        ga: dict[Core, list[Observation]] = defaultdict(list)
        gb: dict[Core, list[Observation]] = defaultdict(list)
        for o in la:
            ga[o.core].append(o)
        for o in lb:
            gb[o.core].append(o)
        out = self.flows.setdefault(key, [])
        leftovers: list[tuple[list[Observation], list[Observation]]] = []
        same_id = 0
        for core, xa in ga.items():
            xb = gb.get(core)
            if not xb:
                continue
            ia: dict[int | None, list[Observation]] = defaultdict(list)
            ib: dict[int | None, list[Observation]] = defaultdict(list)
            for o in xa:
                ia[o.first.ip_id].append(o)
            for o in xb:
                ib[o.first.ip_id].append(o)
            for ipid, sa in ia.items():
                sb = ib.get(ipid)
                if not sb:
                    continue
                same_id += 1
                if len(sa) == len(sb):
                    out.extend(zip(sa, sb, strict=True))
                else:
                    self.deferred.append((a, b, sa, sb, t1, t2))
            ra = [o for ipid, s in ia.items() if ipid not in ib for o in s]
            rb = [o for ipid, s in ib.items() if ipid not in ia for o in s]
            if ra and rb:
                leftovers.append((ra, rb))
        if not same_id and len(leftovers) >= 2:
            # Not one IP ID survived between the points while the segments did: a middlebox
            # rewrites the IP ID of this flow. Match on the TCP fields alone.
            self.ipid_rewritten.add(key)
            for ra, rb in leftovers:
                if len(ra) == len(rb):
                    out.extend(zip(ra, rb, strict=True))
                else:
                    self.deferred.append((a, b, ra, rb, t1, t2))

    def resolve_deferred(self) -> None:
        """Pair ambiguous transmissions nearest in time on the aligned clocks."""
        for a, b, sa, sb, t1, t2 in self.deferred:
            ta, tb = self.theta[a], self.theta[b]
            theta = (tb - ta) if ta is not None and tb is not None else 0
            out = self.flows.setdefault((a, b, t1, t2), [])
            if len(sa) * len(sb) > 100_000:
                # Too many to compare all pairs: walk both time-ordered lists together instead.
                out.extend(_merge_pairs(sa, sb, theta))
                continue
            cands = []
            for x in sa:
                for y in sb:
                    d = abs((y.ts_first - theta) - x.ts_first)
                    if d <= PAIR_WINDOW_NS:
                        cands.append((d, x.gid, y.gid, x, y))
            cands.sort(key=lambda c: c[:3])
            used: set[int] = set()
            for _, gx, gy, x, y in cands:
                if gx in used or gy in used:
                    continue
                used.add(gx)
                used.add(gy)
                out.append((x, y))
        self.deferred = []

    # orientation and clocks -----------------------------------------------------------------------
    def orient(self) -> None:
        """Which point each flow's packets pass first (see the module docstring)."""
        self.upstream = {}
        for key, pairs in self.flows.items():
            if key in self.upstream or not pairs:
                continue
            a, b, t1, t2 = key
            rkey = (a, b, _rev(t1), _rev(t2))
            rpairs = self.flows.get(rkey, [])
            up_f, up_r = _orient(pairs, rpairs)
            self.upstream[key] = up_f
            if rpairs:
                self.upstream[rkey] = up_r

    def estimate_clocks(self) -> None:
        self.pair_clock = {}
        for key, pairs in self.flows.items():
            if not pairs:
                continue
            a, b = key[0], key[1]
            pc = self.pair_clock.setdefault((a, b), PairClock(a, b))
            up = self.upstream.get(key)
            for x, y in pairs:
                pc.matched += 1
                if up == a:
                    pc.a_first.append(y.ts_first - x.ts_last)
                elif up == b:
                    pc.b_first.append(y.ts_last - x.ts_first)
                else:
                    pc.unoriented.append(y.ts_first - x.ts_first)
        self.clock = _combine(self.n, self.pair_clock, [p.name for p in self.points])
        self.theta = [c.offset_ns for c in self.clock]

    # path packets and connections ----------------------------------------------------------------
    def build_paths(self) -> list[PathConnection]:
        parent = list(range(len(self.obs)))

        def find(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for pairs in self.flows.values():
            for x, y in pairs:
                rx, ry = find(x.gid), find(y.gid)
                if rx != ry:
                    parent[max(rx, ry)] = min(rx, ry)
        groups: dict[int, dict[int, list[Observation]]] = {}
        for o in self.obs:
            groups.setdefault(find(o.gid), {}).setdefault(o.point, []).append(o)
        packets: list[PathPacket] = []
        for at in groups.values():
            pp = PathPacket(len(packets), at)
            pp.t = min(o.ts_first - (self.theta[o.point] or 0) for lst in at.values() for o in lst)
            for lst in at.values():
                for o in lst:
                    o.packet = pp
            packets.append(pp)
        # Connections: the points' own connections joined by the packets they share.
        node_of: dict[tuple[int, str], int] = {}
        cparent: list[int] = []

        def node(point: int, o: Observation) -> int:
            k = (point, o.uid or ("T" + repr(_canon(o.tuple))))
            if k not in node_of:
                node_of[k] = len(cparent)
                cparent.append(len(cparent))
            return node_of[k]

        def cfind(x: int) -> int:
            while cparent[x] != x:
                cparent[x] = cparent[cparent[x]]
                x = cparent[x]
            return x

        pnode: list[int] = []
        for pp in packets:
            nodes = [node(pt, o) for pt, lst in pp.at.items() for o in lst]
            r0 = cfind(nodes[0])
            for nd in nodes[1:]:
                r = cfind(nd)
                if r != r0:
                    cparent[max(r, r0)] = min(r, r0)
                    r0 = min(r, r0)
            pnode.append(nodes[0])
        by_conn: dict[int, list[PathPacket]] = defaultdict(list)
        for pp, nd in zip(packets, pnode, strict=True):
            by_conn[cfind(nd)].append(pp)
        conns: list[PathConnection] = []
        for pps in sorted(by_conn.values(), key=lambda lst: min(p.t for p in lst)):
            pps.sort(key=lambda p: (p.t, p.id))
            conns.append(self._connection(f"V{len(conns) + 1}", pps))
        return conns

    def _connection(self, cid: str, pps: list[PathPacket]) -> PathConnection:
        members: dict[int, list[str]] = {}
        for pp in pps:
            for pt, lst in pp.at.items():
                for o in lst:
                    uids = members.setdefault(pt, [])
                    if o.uid and o.uid not in uids:
                        uids.append(o.uid)
        # Roles from the first point whose own analysis saw the handshake from its start.
        role_point, orig, resp = -1, ("?", 0), ("?", 0)
        for pt in sorted(members):
            by_uid = self.by_uid[pt]
            for uid in members[pt]:
                c = by_uid.get(uid)
                if c is None:
                    continue
                if role_point < 0 or (c.history_str[:1] == "S" and not self._has_syn(role_point, members)):
                    role_point, orig, resp = pt, (c.orig.addr, c.orig.port), (c.resp.addr, c.resp.port)
        if role_point < 0:
            o = pps[0].any
            role_point, orig, resp = o.point, (o.tuple[0], o.tuple[1]), (o.tuple[2], o.tuple[3])
        pc = PathConnection(cid, members, orig, resp, role_point, pps)
        o2r: Tuple4 = (orig[0], orig[1], resp[0], resp[1])
        known: dict[tuple[int, Tuple4], str] = {}
        for pt in members:
            known[(pt, o2r)] = "o2r"
            known[(pt, _rev(o2r))] = "r2o"
        # Through a NAT the tuples differ per point: carry the direction over the matched packets.
        for _ in range(self.n + 1):
            changed = False
            for pp in pps:
                d = next((known[(o.point, o.tuple)] for lst in pp.at.values() for o in lst
                          if (o.point, o.tuple) in known), None)
                if d is None:
                    continue
                for lst in pp.at.values():
                    for o in lst:
                        if (o.point, o.tuple) not in known:
                            known[(o.point, o.tuple)] = d
                            known[(o.point, _rev(o.tuple))] = "r2o" if d == "o2r" else "o2r"
                            changed = True
            if not changed:
                break
        for pp in pps:
            pp.conn = pc
            o = pp.any
            pp.direction = known.get((o.point, o.tuple), "o2r")
        self._relations(pc)
        return pc

    def _has_syn(self, point: int, members: dict[int, list[str]]) -> bool:
        by_uid = self.by_uid[point]
        return any(by_uid[u].history_str[:1] == "S" for u in members.get(point, []) if u in by_uid)

    def _relations(self, pc: PathConnection) -> None:
        for d in ("o2r", "r2o"):
            mine = [pp for pp in pc.packets if pp.direction == d]
            pc.on_path[d] = {pt for pp in mine for pt in pp.at}
            rel: set[tuple[int, int]] = set()
            pts = sorted(pc.on_path[d])
            for i, a in enumerate(pts):
                for b in pts[i + 1:]:
                    shared = [pp for pp in mine if a in pp.at and b in pp.at]
                    if not shared:
                        continue
                    votes: Counter[int | None] = Counter()
                    diffs: list[int] = []
                    for pp in shared:
                        x, y = pp.at[a][0], pp.at[b][0]
                        votes[self.upstream.get((a, b, x.tuple, y.tuple))] += 1
                        diffs.append((y.ts_first - (self.theta[b] or 0)) - (x.ts_first - (self.theta[a] or 0)))
                    known = {k: v for k, v in votes.items() if k is not None}
                    up: int | None = None
                    if known:
                        up = max(known, key=lambda k: known[k])
                    else:
                        # The aligned clocks decide only when they are bounded and the difference
                        # exceeds their uncertainty.
                        unc = self.pair_uncertainty(a, b)
                        med = statistics.median(diffs)
                        if unc is not None and abs(med) > unc:
                            up = a if med > 0 else b
                    if up == a:
                        rel.add((a, b))
                    elif up == b:
                        rel.add((b, a))
            pc.before[d] = _closure(rel, pts)
        # The endpoint captures: nothing beyond them towards their side, nothing before them on the
        # way back, and packets of both directions.
        both = pc.on_path["o2r"] & pc.on_path["r2o"]
        o2r, r2o = pc.before["o2r"], pc.before["r2o"]
        resp = [p for p in both if not any((p, q) in o2r for q in both | pc.on_path["o2r"])
                and not any((q, p) in r2o for q in pc.on_path["r2o"])]
        orig = [p for p in both if not any((q, p) in o2r for q in pc.on_path["o2r"])
                and not any((p, q) in r2o for q in pc.on_path["r2o"])]
        pc.resp_point = resp[0] if len(resp) == 1 else None
        pc.orig_point = orig[0] if len(orig) == 1 else None
        if pc.resp_point is not None and pc.resp_point == pc.orig_point:
            pc.resp_point = pc.orig_point = None
        # Endpoint packets carry the endpoint host's MAC: that MAC is the point's own.
        for side, pt in (("r2o", pc.resp_point), ("o2r", pc.orig_point)):
            if pt is None:
                continue
            for pp in pc.packets:
                if pp.direction == side and pt in pp.at and self._origin(pc, pp) == pt:
                    mac = pp.at[pt][0].first.src_mac
                    if mac and mac != _ZERO_MAC:
                        self.points[pt].own_macs.add(mac)
                        self.points[pt].mac_evidence.setdefault(mac, "endpoint")
                    break

    def pair_uncertainty(self, a: int, b: int) -> int | None:
        """The combined clock uncertainty of two points, None unless both are bounded."""
        ua, ub = self.clock[a].uncertainty_ns, self.clock[b].uncertainty_ns
        if ua is None or ub is None or self.clock[a].method not in ("reference", "bounds") \
                or self.clock[b].method not in ("reference", "bounds"):
            return None
        return ua + ub

    def orient_by_endpoints(self, pcs: list[PathConnection]) -> bool:
        """Orient the flows that neither TTL nor the two directions could orient (a point that sees
        one direction only, such as a balancer bypassed by direct server return): the endpoint
        capture of the sender is passed first, the one of the receiver last. True if any changed."""
        changed = False
        for pc in pcs:
            for key in {(a.point, b.point, a.tuple, b.tuple) for pp in pc.packets
                        for a, b in _point_pairs(pp)}:
                if self.upstream.get(key) is not None or key not in self.flows:
                    continue
                x = self.flows[key][0][0]
                d = x.packet.direction if x.packet is not None else ""
                sender = pc.orig_point if d == "o2r" else pc.resp_point
                receiver = pc.resp_point if d == "o2r" else pc.orig_point
                a, b = key[0], key[1]
                up = a if a == sender or b == receiver else b if b == sender or a == receiver else None
                if up is not None:
                    self.upstream[key] = up
                    changed = True
        return changed

    def _origin(self, pc: PathConnection, pp: PathPacket) -> int:
        """The earliest point that saw the packet."""
        rel = pc.before.get(pp.direction, set())
        pts = list(pp.at)
        firsts = [p for p in pts if not any((q, p) in rel for q in pts)]
        return min(firsts or pts, key=lambda p: (pp.at[p][0].ts_first - (self.theta[p] or 0), p))

    def covers(self, point: int, t_ref: int, slack: int = 0) -> bool:
        """Whether ``point``'s capture was running at reference time ``t_ref`` (+- slack)."""
        pt = self.points[point]
        th = self.theta[point]
        if pt.first_ts is None or pt.last_ts is None or th is None:
            return False
        # A capture compared only in part (MAX_PACKETS) covers only what was read of it.
        last = pt.packets[-1].ts if pt.truncated and pt.packets else pt.last_ts
        return pt.first_ts - th + slack <= t_ref <= last - th - slack

    def slack(self, a: int, b: int) -> int:
        """Clock uncertainty between two points (what a coverage check must allow for)."""
        ua = self.clock[a].uncertainty_ns if self.clock[a].method != "reference" else 0
        ub = self.clock[b].uncertainty_ns if self.clock[b].method != "reference" else 0
        if ua is None or ub is None:
            return 100_000_000
        return ua + ub

    def t_ref(self, o: Observation, last: bool = False) -> int:
        return (o.ts_last if last else o.ts_first) - (self.theta[o.point] or 0)

    def missed(self, pcs: list[PathConnection]) -> None:
        """Every point that saw a connection's direction but not one of its packets."""
        for pc in pcs:
            for pp in pc.packets:
                d = pp.direction
                rel = pc.before.get(d, set())
                sender_point = pc.orig_point if d == "o2r" else pc.resp_point
                for m in sorted(pc.on_path.get(d, set())):
                    if m in pp.at:
                        continue
                    if not self.covers(m, pp.t, self.slack(m, pp.any.point)):
                        continue
                    seen = list(pp.at)
                    before = any((p, m) in rel for p in seen)
                    after = any((m, p) in rel for p in seen)
                    unrelated = any((p, m) not in rel and (m, p) not in rel for p in seen)
                    if m == sender_point:
                        reason = "not_sent"
                    elif after and (before or unrelated):
                        reason = "bypassed"
                    elif after:
                        reason = "appeared_after"
                    elif before:
                        reason = "lost_before"
                    else:
                        reason = "not_seen"
                    if pp.missed is _NO_MISSES:
                        pp.missed = {}
                    pp.missed[m] = reason


def _merge_pairs(sa: list[Observation], sb: list[Observation], theta: int) -> list[tuple[Observation, Observation]]:
    """Pair two time-ordered lists greedily, each with the next one of the other within the window."""
    out = []
    i = j = 0
    while i < len(sa) and j < len(sb):
        d = (sb[j].ts_first - theta) - sa[i].ts_first
        if abs(d) <= PAIR_WINDOW_NS:
            out.append((sa[i], sb[j]))
            i += 1
            j += 1
        elif d > 0:
            i += 1
        else:
            j += 1
    return out


def _point_pairs(pp: PathPacket) -> list[tuple[Observation, Observation]]:
    pts = sorted(pp.at)
    return [(pp.at[a][0], pp.at[b][0]) for i, a in enumerate(pts) for b in pts[i + 1:]]


def _conn_index(result: AnalysisResult) -> dict[tuple[tuple[str, int], tuple[str, int]], list[tuple[int, str]]]:
    idx: dict[tuple[tuple[str, int], tuple[str, int]], list[tuple[int, str]]] = defaultdict(list)
    for c in result.connections:
        if c.proto != "tcp":
            continue
        idx[_canon((c.orig.addr, c.orig.port, c.resp.addr, c.resp.port))].append((c.first_ts, c.uid))
    for lst in idx.values():
        lst.sort()
    return idx


def _uid_for(idx: dict[tuple[tuple[str, int], tuple[str, int]], list[tuple[int, str]]], tup: Tuple4,
             ts: int) -> str | None:
    lst = idx.get(_canon(tup))
    if not lst:
        return None
    uid = lst[0][1]
    for first, u in lst:
        if first <= ts:
            uid = u
        else:
            break
    return uid


def _nat_pairs(ta: dict[Tuple4, list[Observation]], tb: dict[Tuple4, list[Observation]], only_a: list[Tuple4],
               only_b: list[Tuple4]) -> list[tuple[Tuple4, Tuple4, int]]:
    """4-tuples that exist at one point each and carry the same segments: a NAT between them."""
    index: dict[Core, set[Tuple4]] = defaultdict(set)
    for t in only_b:
        for o in tb[t][:_NAT_SAMPLE]:
            if o.core[0] or o.core[1]:
                index[o.core].add(t)
    if not index:
        return []
    best_a: dict[Tuple4, tuple[Tuple4, int]] = {}
    scores: dict[tuple[Tuple4, Tuple4], int] = {}
    for t in only_a:
        count: Counter[Tuple4] = Counter()
        for core in {o.core for o in ta[t][:_NAT_SAMPLE]}:
            for t2 in index.get(core, ()):
                count[t2] += 1
        if not count:
            continue
        (t2, n), *rest = count.most_common(2)
        if n >= 2 and (not rest or rest[0][1] < n):
            best_a[t] = (t2, n)
            scores[(t, t2)] = n
    best_b: dict[Tuple4, tuple[Tuple4, int]] = {}
    for (t, t2), n in scores.items():
        if t2 not in best_b or best_b[t2][1] < n:
            best_b[t2] = (t, n)
    return [(t, t2, n) for t, (t2, n) in best_a.items() if best_b.get(t2, (None, 0))[0] == t]


def _orient(fwd: list[tuple[Observation, Observation]], rev: list[tuple[Observation, Observation]]) -> tuple[
        int | None, int | None]:
    """Which of the two points (0 = the flow's first point, 1 = the second) each direction passes first.

    The TTL decides when it differs (each router on the way takes one off); otherwise the two
    directions of the connection do: t_b - t_a is larger for packets travelling from a to b than
    for packets travelling back, whatever the clock offset.
    """
    if not fwd:
        return None, None

    def votes(pairs: list[tuple[Observation, Observation]]) -> int:
        v = 0
        for x, y in pairs:
            tx, ty = x.first.ttl, y.first.ttl
            if tx is not None and ty is not None and tx != ty:
                v += 1 if tx > ty else -1
        return v

    vf, vr = votes(fwd), votes(rev)
    a_pt, b_pt = fwd[0][0].point, fwd[0][1].point
    if vf or vr:
        up_f = a_pt if vf > 0 else b_pt if vf < 0 else None
        up_r = a_pt if vr > 0 else b_pt if vr < 0 else None
        if up_f is None and up_r is not None:
            up_f = b_pt if up_r == a_pt else a_pt
        if up_r is None and up_f is not None:
            up_r = b_pt if up_f == a_pt else a_pt
        return up_f, up_r
    if rev:
        mf = statistics.median(y.ts_first - x.ts_first for x, y in fwd)
        mr = statistics.median(y.ts_first - x.ts_first for x, y in rev)
        if mf > mr:
            return a_pt, b_pt
        if mf < mr:
            return b_pt, a_pt
    return None, None


def _closure(rel: set[tuple[int, int]], pts: list[int]) -> set[tuple[int, int]]:
    out = set(rel)
    for k in pts:
        for i in pts:
            if (i, k) not in out:
                continue
            for j in pts:
                if (k, j) in out and i != j:
                    out.add((i, j))
    # A contradiction (a before b and b before a) means the evidence does not order them.
    return {(a, b) for a, b in out if (b, a) not in out}


def _combine(n: int, pairs: dict[tuple[int, int], PairClock], names: list[str]) -> list[ClockEstimate]:
    """Every point's offset from the reference (point 0): pairwise bounds combined as difference
    constraints (Floyd-Warshall); medians when the bounds contradict each other."""
    inf = float("inf")
    dist = [[0.0 if i == j else inf for j in range(n)] for i in range(n)]
    for (a, b), pc in pairs.items():
        if pc.upper is not None:
            dist[a][b] = min(dist[a][b], pc.upper)  # theta_b - theta_a <= upper
        if pc.lower is not None:
            dist[b][a] = min(dist[b][a], -pc.lower)  # theta_a - theta_b <= -lower
    for k in range(n):
        for i in range(n):
            if dist[i][k] == inf:
                continue
            for j in range(n):
                if dist[i][k] + dist[k][j] < dist[i][j]:
                    dist[i][j] = dist[i][k] + dist[k][j]
    consistent = all(dist[i][i] >= 0 for i in range(n))
    matched = [0] * n
    for (a, b), pc in pairs.items():
        matched[a] += pc.matched
        matched[b] += pc.matched
    out = [ClockEstimate(names[0], 0, 0, 0, 0, "reference", matched[0])]
    fallback = _median_chain(n, pairs)
    for k in range(1, n):
        ub = dist[0][k] if consistent else inf
        lb = -dist[k][0] if consistent else -inf
        if ub != inf and lb != -inf:
            lo, hi = int(lb), int(ub)
            out.append(ClockEstimate(names[k], (lo + hi) // 2, (hi - lo + 1) // 2, lo, hi, "bounds", matched[k]))
            continue
        theta, unc, method = fallback[k]
        if consistent and ub != inf and method in ("assumed", "unknown", "upper_bound"):
            theta, unc, method = int(ub), None, "upper_bound"
        elif consistent and lb != -inf and method in ("assumed", "unknown", "lower_bound"):
            theta, unc, method = int(lb), None, "lower_bound"
        out.append(ClockEstimate(names[k], theta, unc, int(lb) if lb != -inf else None,
                                 int(ub) if ub != inf else None, method, matched[k]))
    return out


def _median_chain(n: int, pairs: dict[tuple[int, int], PairClock]) -> list[tuple[int | None, int | None, str]]:
    """Offsets from the reference along the best-matched pairs, each pair on its own."""
    res: list[tuple[int | None, int | None, str]] = [(0, 0, "reference")] + [(None, None, "unknown")] * (n - 1)
    done = {0}
    rank = {"bounds": 0, "median": 1, "upper_bound": 2, "lower_bound": 2, "assumed": 3, "unknown": 4}
    while True:
        best: tuple[Any, ...] | None = None
        for (a, b), pc in pairs.items():
            theta, unc, method = pc.estimate()
            if theta is None:
                continue
            for src, dst, sign in ((a, b, 1), (b, a, -1)):
                if src in done and dst not in done:
                    cand = (rank[method], -pc.matched, src, dst, sign * theta, unc, method)
                    if best is None or cand[:2] < best[:2]:
                        best = cand
        if best is None:
            return res
        _, _, src, dst, theta, unc, method = best
        base, base_unc, base_method = res[src]
        assert base is not None
        total_unc = None if unc is None or base_unc is None else unc + base_unc
        worse = max((method, base_method), key=lambda m: rank.get(m, 0))
        res[dst] = (base + theta, total_unc, worse if worse != "reference" else method)
        done.add(dst)


# -- findings ----------------------------------------------------------------------------------------
class _Findings:
    def __init__(self, cor: _Correlator, pcs: list[PathConnection]) -> None:
        self.cor = cor
        self.pcs = pcs
        self.points = cor.points
        self.names = [p.name for p in cor.points]
        self.out: list[Finding] = []

    def rel_s(self, point: int, ts: int) -> float:
        """Seconds since the point's first frame (Wireshark's frame.time_relative at that point)."""
        first = self.points[point].first_ts or ts
        return (ts - first) / 1e9

    def all(self) -> list[Finding]:
        self.foreign()
        self.lost()
        self.modified()
        self.no_overlap()
        self.out.sort(key=lambda f: (-SEVERITIES.index(f.severity), f.frames[0], f.id))
        return self.out

    # foreign replies --------------------------------------------------------------------------
    def foreign(self) -> None:
        groups: dict[tuple[Any, ...], list[tuple[PathConnection, PathPacket, int, int, int]]] = defaultdict(list)
        for pc in self.pcs:
            for pp in pc.packets:
                d = pp.direction
                e = pc.orig_point if d == "o2r" else pc.resp_point
                if e is None or e in pp.at or pp.missed.get(e) != "not_sent":
                    continue
                if self._could_be_capture_drop(pc, pp, e):
                    continue
                x = self._seen_point(pc, pp)
                origin = self.cor._origin(pc, pp)
                o = pp.at[origin][0]
                own = bool(o.first.src_mac and o.first.src_mac in self.points[origin].own_macs)
                src = (o.first.src or "?", o.first.sport or 0)
                verdict = "own" if origin != x and own else "between" if origin != x else "unknown"
                groups[(x, e, src, origin, verdict)].append((pc, pp, x, e, origin))
                pp.status = "foreign"
        for (x, e, src, origin, verdict), items in groups.items():
            self.out.append(self._foreign_finding(x, e, src, origin, verdict, items))

    def _seen_point(self, pc: PathConnection, pp: PathPacket) -> int:
        """Where the finding is told from: the receiving endpoint's capture, else the last point."""
        recv = pc.resp_point if pp.direction == "o2r" else pc.orig_point
        if recv is not None and recv in pp.at:
            return recv
        rel = pc.before.get(pp.direction, set())
        pts = list(pp.at)
        lasts = [p for p in pts if not any((p, q) in rel for q in pts)]
        return max(lasts or pts)

    def _could_be_capture_drop(self, pc: PathConnection, pp: PathPacket, e: int) -> bool:
        """Whether the endpoint capture shows the endpoint sending this very thing (so the capture,
        not the network, lost the copy): a RST/SYN/FIN of its own, or that data."""
        p = pp.any.first
        f = p.flags or 0
        mine = [q.at[e][0].first for q in pc.packets if q.direction == pp.direction and e in q.at]
        if f & TCP_RST:
            return any((q.flags or 0) & TCP_RST for q in mine)
        if f & TCP_SYN:
            return any((q.flags or 0) & TCP_SYN and q.seq == p.seq for q in mine)
        if f & TCP_FIN:
            return any((q.flags or 0) & TCP_FIN for q in mine)
        if p.payload_len:
            lo, hi = p.seq or 0, ((p.seq or 0) + p.payload_len) & _MASK
            return any(q.payload_len and ((lo - (q.seq or 0)) & _MASK) < q.payload_len
                       or q.payload_len and (((q.seq or 0) - lo) & _MASK) < ((hi - lo) & _MASK)
                       for q in mine)
        return any(q.seq == p.seq and not q.payload_len for q in mine)

    def _answered(self, pc: PathConnection, pp: PathPacket) -> PathPacket | None:
        """The packet of the other direction that this one acknowledges (the SYN a RST answers)."""
        p = pp.any.first
        if not (p.flags or 0) & TCP_ACK:
            return None
        cands = [q for q in pc.packets if q.direction != pp.direction and _seq_end(q.any.first) == p.ack
                 and q.t <= pp.t]
        return cands[-1] if cands else None

    def _foreign_finding(self, x: int, e: int, src: tuple[str, int], origin: int, verdict: str,
                         items: list[tuple[PathConnection, PathPacket, int, int, int]]) -> Finding:
        names = self.names
        X, E, Og = names[x], names[e], names[origin]
        pts = self.points
        frames_at: dict[str, list[int]] = defaultdict(list)
        rows: list[dict[str, Any]] = []
        kinds: Counter[str] = Counter()
        first_ts = last_ts = None
        genuine_note = ""
        early_note = ""
        e_frames_sample: list[int] = []
        foreign_x: list[int] = []
        foreign_o: list[int] = []
        for pc, pp, _, _, _ in items:
            ox = pp.at[x][0]
            kinds[_kind(ox.first)] += 1
            frames_at[X].extend(ox.frames)
            foreign_x.extend(ox.frames)
            first_ts = ox.ts_first if first_ts is None else min(first_ts, ox.ts_first)
            last_ts = ox.ts_last if last_ts is None else max(last_ts, ox.ts_last)
            row: dict[str, Any] = {"connection": pc.id, "packet": _label(ox.first), "at": {X: ox.frames},
                                   "src_mac": ox.first.src_mac}
            if origin != x:
                oo = pp.at[origin][0]
                frames_at[Og].extend(oo.frames)
                foreign_o.extend(oo.frames)
                row["at"][Og] = oo.frames
                row["origin_src_mac"] = oo.first.src_mac
            ans = self._answered(pc, pp)
            if ans is not None:
                for pt, lst in ans.at.items():
                    frames_at[names[pt]].extend(lst[0].frames[:1])
                row["answers"] = {names[pt]: lst[0].frames[0] for pt, lst in ans.at.items()}
            # What the endpoint really sent in reply (same ack): the genuine answer.
            p = pp.any.first
            genuine = [q for q in pc.packets if q is not pp and q.direction == pp.direction and e in q.at
                       and (q.any.first.flags or 0) & TCP_ACK and q.any.first.ack == p.ack]
            if genuine:
                g = genuine[0]
                ge = g.at[e][0]
                frames_at[E].extend(ge.frames[:1])
                row["endpoint_sent"] = {"packet": _label(ge.first), "frame": ge.frames[0]}
                e_frames_sample.append(ge.frames[0])
                if x in g.at and not genuine_note:
                    gx = g.at[x][0]
                    if gx.first.src_mac and gx.first.src_mac != ox.first.src_mac:
                        genuine_note = (f" {E}'s genuine {_kind(ge.first)} (its frame {ge.frames[0]}) reaches {X} "
                                        f"from MAC {gx.first.src_mac} ({X} frame {gx.frames[0]}), this one from "
                                        f"{ox.first.src_mac}.")
                    if (p.flags or 0) & TCP_RST and gx.ts_first > ox.ts_first and not early_note:
                        ahead = _fmt_s(gx.ts_first - ox.ts_first, signed=False)
                        early_note = (f" The {_kind(ox.first)} arrived {ahead} "
                                      f"before the genuine {_kind(gx.first)} ({X} frame {gx.frames[0]}), so {X}'s "
                                      "side saw the connection refused although the endpoint accepted it.")
            elif ans is not None and e in ans.at:
                e_frames_sample.append(ans.at[e][0].frames[0])
            rows.append(row)
        for k in frames_at:
            frames_at[k] = sorted(set(frames_at[k]))
        xf = sorted(set(foreign_x))
        of = sorted(set(foreign_o))
        n = len(items)
        kind = kinds.most_common(1)[0][0]
        pc0, pp0 = items[0][0], items[0][1]
        ox0 = pp0.at[x][0]
        t_ref = pp0.t
        pe = pts[e]
        th_e, th_x = self.cor.theta[e] or 0, self.cor.theta[x] or 0
        e_start = self.rel_s(x, (pe.first_ts or 0) - th_e + th_x)
        e_end = self.rel_s(x, (pe.last_ts or 0) - th_e + th_x)
        if n == 1:
            what = f"The {kind} in {X} frame {xf[0]}"
        elif len(kinds) == 1:
            what = f"{n:,} {kind} packets in {X} frames {_frames_text(xf)}"
        else:
            what = (f"{n:,} packets ({', '.join(f'{c} {k}' for k, c in kinds.most_common(3))}) in {X} frames "
                    f"{_frames_text(xf)}")
        side = "responder" if pp0.direction == "r2o" else "originator"
        host_e = self._host(e)
        summary = (f"{what} claim{'s' if n == 1 else ''} to come from {_ep(*src)}, but {E}{host_e}, the capture "
                   f"at that end of the connection ({side}), never sent {'it' if n == 1 else 'them'}: its capture "
                   f"runs from "
                   f"{e_start:.6f} s to {e_end:.6f} s of {X}'s time (clock offset corrected) and shows no such "
                   f"packet.")
        ans0 = self._answered(pc0, pp0)
        expl: list[str] = []
        if ans0 is not None and e in ans0.at:
            ae = ans0.at[e][0]
            sent: list[dict[str, Any]] = [r["endpoint_sent"] for r in rows
                                          if r.get("connection") == pc0.id and r.get("endpoint_sent")]
            expl.append((f"For the first ({X} frame {xf[0]}): " if n > 1 else "")
                        + f"{E} received the {_kind(ae.first)} it answers ({E} frame {ae.frames[0]})"
                        + (f" and replied with {sent[0]['packet'].split(']')[0].lstrip('[')} (frame {sent[0]['frame']})"
                           if sent else "") + f", but sent no {kind}.")
        if verdict == "own":
            oo = pp0.at[origin][0]
            mac = oo.first.src_mac or ""
            claims = [no for m, no in self.points[origin].arp.get(src[0], []) if m == mac]
            arp_note = (f"; that MAC also answers ARP for {src[0]} ({Og} frame {claims[0]}), so {Og} holds the address "
                        "itself" if claims else "")
            how = self.points[origin].mac_evidence.get(mac, "")
            why = {"forwards": f"; the same MAC {Og} puts on the packets it forwards",
                   "endpoint": f"; the MAC of {Og}'s own packets"}.get(how, "")
            iface = self._iface(origin, oo.first)
            expl.append(f"{Og}'s capture shows {'it' if n == 1 else 'them'} leaving{iface} with {Og}'s own MAC "
                        f"{mac} (frame{'s' if len(of) > 1 else ''} {_frames_text(of)}{why}){arp_note}, and no "
                        f"capture saw {'it' if n == 1 else 'them'} earlier: {Og}'s own network stack sent "
                        f"{'it' if n == 1 else 'them'} in the name of {_ep(*src)}.")
            if (ox0.first.flags or 0) & TCP_RST and ans0 is not None and (ans0.any.first.flags or 0) & TCP_SYN:
                expl.append(f"A host that holds {src[0]} itself (a load balancer with the virtual IP on an interface) "
                            f"but has no socket listening on port {src[1]} resets every SYN it also passes on; a "
                            "firewall rule that rejects with a TCP reset looks the same.")
        elif verdict == "between":
            oo = pp0.at[origin][0]
            expl.append(f"The earliest capture that shows {'it' if n == 1 else 'them'} is {Og} ({Og} frame "
                        f"{oo.frames[0]}), arriving from MAC {oo.first.src_mac}, not a MAC of {Og}'s own: something "
                        f"between {E} and {Og} that no capture covers sent {'it' if n == 1 else 'them'}.")
        else:
            next_hop = self._next_hop_note(pc0, pp0, x, ox0)
            expl.append(f"No other capture saw {'it' if n == 1 else 'them'}. {'It' if n == 1 else 'They'} reached {X} "
                        f"from MAC {ox0.first.src_mac}{next_hop}.{genuine_note} Something between {X} and {E} "
                        f"answered in {src[0]}'s name: typically the next hop towards it (a load balancer, firewall "
                        "or NAT) whose own stack answers for the address.")
        if early_note:
            expl.append(early_note.strip())
        expl.append(f"Next: on the host that sent {'it' if n == 1 else 'them'}, check what owns {src[0]} "
                    f"(`ip addr`, ARP/neighbour tables) and what listens on port {src[1]} (`ss -ltn`); a balancer "
                    "that forwards at layer 2 must keep its own kernel from answering for the virtual IP (drop local "
                    "delivery for it), a firewall may reject with a TCP reset.")
        if verdict == "own":
            summary += (f" {Og} sent {'it' if n == 1 else 'them'}: its capture shows {'it' if n == 1 else 'them'} "
                        f"leaving with its own MAC ({Og} frame{'s' if len(of) > 1 else ''} {_frames_text(of)}).")
        evidence: dict[str, Any] = {
            "seen_at": X,
            "endpoint_capture": E,
            "endpoint_own_macs": sorted(pts[e].own_macs),
            "claimed_source": _ep(*src),
            "sent_by": Og if verdict == "own" else None,
            "first_seen_at": Og,
            "attribution": {"own": "sent by the first point's own stack",
                            "between": "entered the path before the first point that saw it",
                            "unknown": "seen at one point only"}[verdict],
            "packets": n,
            "frames_at": dict(frames_at),
            "endpoint_capture_span_s": [round(e_start, 6), round(e_end, 6)],
            "endpoint_frames": sorted(set(e_frames_sample)),
            "connections": sorted({r["connection"] for r in rows}),
            "detail": rows[:20],
            "left_out": max(len(rows) - 20, 0),
            "t_ref": iso_ts(t_ref),
        }
        if verdict == "own":
            evidence["sent_by_mac"] = pp0.at[origin][0].first.src_mac
        uids = [u for pc, _, _, _, _ in items for u in pc.members.get(x, [])]
        return Finding(id="vantage.foreign_reply", summary=summary, explanation=" ".join(expl), frames=xf,
                       connections=list(dict.fromkeys(uids)), first_ts=first_ts, last_ts=last_ts, evidence=evidence)

    def _iface(self, point: int, p: Packet) -> str:
        """' eth0' when the capture names the interface the packet was captured on."""
        ifaces = self.points[point].capture.interfaces
        name = ifaces[p.iface].name if 0 <= p.iface < len(ifaces) else None
        return f" {name}" if name else ""

    def _host(self, point: int) -> str:
        """' (host 10.202.0.3, MAC 02:..:03)': the point's own MAC and the addresses it claims by ARP."""
        pt = self.points[point]
        macs = sorted(pt.own_macs)
        if not macs:
            return ""
        addrs = sorted({ip for ip, claims in pt.arp.items() for m, _ in claims if m in pt.own_macs})
        return (f" (host {', '.join(addrs)}, " if addrs else " (") + f"MAC {', '.join(macs)})"

    def _next_hop_note(self, pc: PathConnection, pp: PathPacket, x: int, ox: Observation) -> str:
        """', the MAC <x> sends <addr>'s packets to (frame n) and the one ARP gives for it (frame m)'."""
        pt = self.points[x]
        mac = ox.first.src_mac
        src_addr = ox.first.src or ""
        parts: list[str] = []
        for q in pc.packets:
            if q.direction != pp.direction and x in q.at:
                f = q.at[x][0].frames[0]
                if pt.dst_macs.get(f) == mac:
                    parts.append(f"the MAC {self.names[x]} sends {src_addr}'s packets to (frame {f})")
                break
        claims = [no for m, no in pt.arp.get(src_addr, []) if m == mac]
        if claims:
            parts.append(f"the one ARP gives for {src_addr} (frame {claims[0]})")
        return (", " + " and ".join(parts)) if parts else ""

    # lost between points ------------------------------------------------------------------------
    def lost(self) -> None:
        groups: dict[tuple[str, int, int, str], list[tuple[PathConnection, PathPacket]]] = defaultdict(list)
        for pc in self.pcs:
            for pp in pc.packets:
                d = pp.direction
                rel = pc.before.get(d, set())
                seen = list(pp.at)
                lasts = [p for p in seen if not any((p, q) in rel for q in seen)]
                for p in lasts:
                    # The next points downstream of p on this direction's path.
                    down = [q for q in pc.on_path.get(d, set()) if (p, q) in rel]
                    nearest = [q for q in down if not any((p, r) in rel and (r, q) in rel for r in down)]
                    for q in nearest:
                        if pp.missed.get(q) == "lost_before" and self._covered(pc, pp, p, q):
                            groups[(pc.id, p, q, d)].append((pc, pp))
                            pp.status = "lost"
        by_id = {pc.id: pc for pc in self.pcs}
        for (cid, p, q, d), items in groups.items():
            pc = by_id[cid]
            total = sum(1 for pp in pc.packets if pp.direction == d and p in pp.at)
            self.out.append(self._lost_finding(pc, p, q, d, items, total))

    def _covered(self, pc: PathConnection, pp: PathPacket, p: int, q: int) -> bool:
        """q's capture was running when the packet should have reached it."""
        op = pp.at[p][0]
        delays = [self.cor.t_ref(x.at[q][0]) - self.cor.t_ref(x.at[p][0], last=True)
                  for x in pc.packets if x.direction == pp.direction and p in x.at and q in x.at]
        slack = max(max(delays, default=0), 0) + self.cor.slack(p, q)
        t = self.cor.t_ref(op, last=True)
        return self.cor.covers(q, t, 0) and self.cor.covers(q, t + slack, 0)

    def _lost_finding(self, pc: PathConnection, p: int, q: int, d: str,
                      items: list[tuple[PathConnection, PathPacket]], total: int) -> Finding:
        P, Q = self.names[p], self.names[q]
        obs = [pp.at[p][0] for _, pp in items]
        frames = sorted(f for o in obs for f in o.frames[:1])
        o0 = obs[0].first
        src, dst = _ep(o0.src or "?", o0.sport or 0), _ep(o0.dst or "?", o0.dport or 0)
        data = sum(1 for o in obs if o.first.payload_len)
        # Was each lost segment sent again, and did that copy get through?
        retrans: list[int] = []
        through = 0
        for _, pp in items:
            lp = pp.at[p][0].first
            for x in pc.packets:
                if x is pp or x.direction != d or p not in x.at or x.t <= pp.t:
                    continue
                xp = x.at[p][0].first
                ctl = TCP_SYN | TCP_FIN | TCP_RST
                if xp.seq == lp.seq and (xp.payload_len or 0) >= (lp.payload_len or 0) and \
                        (xp.flags or 0) & ctl == (lp.flags or 0) & ctl:
                    retrans.append(x.at[p][0].frames[0])
                    if q in x.at:
                        through += 1
                    break
        ttl_p = Counter(pp.at[p][0].first.ttl for pp in pc.packets if pp.direction == d and p in pp.at and q in pp.at)
        ttl_q = Counter(pp.at[q][0].first.ttl for pp in pc.packets if pp.direction == d and p in pp.at and q in pp.at)
        hops = ""
        if ttl_p and ttl_q:
            tp, tq = ttl_p.most_common(1)[0][0], ttl_q.most_common(1)[0][0]
            if tp is not None and tq is not None:
                hops = (f" (TTL {tp} at {P}, {tq} at {Q}: {_plural(tp - tq, 'router')} in between)" if tp > tq
                        else f" (same TTL {tp} at both: no router in between, a bridge, switch or the capture itself)")
        n = len(items)
        summary = (f"{_plural(n, 'packet')} of {total:,} {src} \u2192 {dst} seen at {P} never reached {Q}, whose "
                   f"capture covers their time ({P} frames {_frames_text(frames)})")
        if retrans:
            summary += (f"; {len(retrans):,} {'was' if len(retrans) == 1 else 'were'} sent again and "
                        f"{through:,} of those copies got through")
        summary += "."
        expl = (f"The packets went missing on the path between the two capture points, {P} then {Q}{hops}: a device "
                "or link between them dropped them (a congested queue, a policer, a firewall rule, a faulty link). "
                f"{'All of them carried data. ' if data == n else ''}"
                f"Unless {Q}'s capture itself dropped them (check its drop counter: tcpdump's 'dropped by kernel', "
                "pcapng interface statistics), they are real loss: the sender had to repair it"
                f"{' (retransmissions in ' + P + ' frames ' + _frames_text(sorted(retrans)) + ')' if retrans else ''}. "
                "Next: look at the drop counters of every hop between the points (`ip -s link`, `nstat`, "
                "`iptables -L -v -x -n`, `tc -s qdisc`).")
        evidence: dict[str, Any] = {
            "from": P,
            "to": Q,
            "connection": pc.id,
            "direction": f"{src} -> {dst}",
            "lost": n,
            "of": total,
            "data_segments": data,
            "retransmitted": len(retrans),
            "retransmission_got_through": through,
            "frames_at": {P: frames, **({P + "_retransmissions": sorted(retrans)} if retrans else {})},
            "ttl_from": dict(ttl_p.most_common(3)),
            "ttl_to": dict(ttl_q.most_common(3)),
        }
        evidence["ttl_from"] = {str(k): v for k, v in ttl_p.most_common(3)}
        evidence["ttl_to"] = {str(k): v for k, v in ttl_q.most_common(3)}
        return Finding(id="vantage.lost_between", summary=summary, explanation=expl, frames=frames,
                       connections=list(pc.members.get(p, [])), first_ts=min(o.ts_first for o in obs),
                       last_ts=max(o.ts_last for o in obs), evidence=evidence)

    # modified in transit ------------------------------------------------------------------------
    def modified(self) -> None:
        groups: dict[tuple[int, int, tuple[str, ...]], list[dict[str, Any]]] = defaultdict(list)
        for pc in self.pcs:
            for pp in pc.packets:
                pts = sorted(pp.at)
                if len(pts) < 2:
                    continue
                rel = pc.before.get(pp.direction, set())
                for i, a in enumerate(pts):
                    for b in pts[i + 1:]:
                        up, down = (b, a) if (b, a) in rel else (a, b)
                        changes = _changes(pp.at[up][0].first, pp.at[down][0].first,
                                           self._ipid_rewritten(pp.at[up][0], pp.at[down][0]))
                        if not changes:
                            continue
                        fields = tuple(sorted(changes))
                        item = {"pc": pc, "pp": pp, "changes": changes, "up": up, "down": down}
                        if set(fields) <= _NAT_FIELDS:
                            # One NAT mapping rewrites the source one way and the destination back:
                            # one finding per pair of points.
                            groups[(a, b, ("nat",))].append(item)
                        else:
                            groups[(up, down, fields)].append(item)
        for (up, down, fields), items in groups.items():
            if fields == ("nat",):
                self.out.append(self._nat_finding(up, down, items))
            else:
                self.out.append(self._modified_finding(up, down, fields, items))

    def _nat_finding(self, a: int, b: int, items: list[dict[str, Any]]) -> Finding:
        A, B = self.names[a], self.names[b]
        mappings: dict[str, int] = {}
        for it in items:
            pa, pb = it["pp"].at[a][0].first, it["pp"].at[b][0].first
            for addr, port in (("src", "sport"), ("dst", "dport")):
                ea, eb = (getattr(pa, addr), getattr(pa, port)), (getattr(pb, addr), getattr(pb, port))
                if ea != eb:
                    key = f"{_ep(ea[0] or '?', ea[1] or 0)} at {A} is {_ep(eb[0] or '?', eb[1] or 0)} at {B}"
                    mappings[key] = mappings.get(key, 0) + 1
        fields = sorted({k for it in items for k in it["changes"]})
        frames = sorted({it["pp"].at[a][0].frames[0] for it in items})
        conns = list(dict.fromkeys(it["pc"].id for it in items))
        shown = list(mappings)[:5]
        summary = (f"Addresses or ports are rewritten between {A} and {B} ({', '.join(fields)}) in "
                   f"{_plural(len(items), 'packet')} of {_plural(len(conns), 'connection')}: "
                   + "; ".join(shown) + (f" and {len(mappings) - 5:,} more mappings" if len(mappings) > 5 else "")
                   + ".")
        expl = (f"A NAT sits between {A} and {B} (source NAT, masquerading, a load balancer's destination NAT). "
                "That is normal by itself: the packets were matched on their TCP sequence numbers, flags and IP "
                "IDs, which the NAT kept. Read each capture with its own addresses: a filter written for one "
                "point does not select the same packets at the other.")
        evidence = {"between": [A, B], "fields": fields, "packets": len(items), "connections": conns[:50],
                    "mappings": mappings, "frames_at": {A: frames[:400], B: sorted(
                        {it["pp"].at[b][0].frames[0] for it in items})[:400]}}
        obs = [it["pp"].at[a][0] for it in items]
        return Finding(id="vantage.modified_in_transit", severity="info", summary=summary, explanation=expl,
                       frames=frames[:2000], connections=list(dict.fromkeys(
                           u for it in items for u in it["pc"].members.get(a, [])))[:2000],
                       first_ts=min(o.ts_first for o in obs), last_ts=max(o.ts_last for o in obs), evidence=evidence)

    def _ipid_rewritten(self, x: Observation, y: Observation) -> bool:
        a, b = sorted((x, y), key=lambda o: o.point)
        return (a.point, b.point, a.tuple, b.tuple) in self.cor.ipid_rewritten

    def _modified_finding(self, up: int, down: int, fields: tuple[str, ...], items: list[dict[str, Any]]) -> Finding:
        U, D = self.names[up], self.names[down]
        frames = sorted({it["pp"].at[up][0].frames[0] for it in items})
        conns = list(dict.fromkeys(it["pc"].id for it in items))
        examples: list[dict[str, Any]] = []
        for it in items[:10]:
            pp = it["pp"]
            examples.append({"connection": it["pc"].id, "packet": _label(pp.at[up][0].first),
                             "frames": {U: pp.at[up][0].frames[0], D: pp.at[down][0].frames[0]},
                             "changes": {k: {"from": _jsonable(v[0]), "to": _jsonable(v[1])}
                                         for k, v in it["changes"].items()}})
        nat_only = set(fields) <= _NAT_FIELDS
        stripped = [f for f in fields if f.startswith("option:") and any(
            it["changes"][f][1] is None for it in items if f in it["changes"])]
        severity = "info" if nat_only else "warning" if ("window" in fields or any(
            s in ("option:wscale", "option:sack_ok", "option:ts_val") for s in stripped)) else "notice"
        first = items[0]["changes"]
        desc = "; ".join(f"{k} {_show(v[0])} \u2192 {_show(v[1])}" for k, v in list(first.items())[:6])
        n = len(items)
        summary = (f"{_plural(n, 'packet')} in {_plural(len(conns), 'connection')} changed between {U} and {D} "
                   f"({', '.join(fields)}): e.g. {desc} ({U} frame {frames[0]}).")
        if nat_only:
            expl = (f"Addresses or ports are rewritten between {U} and {D}: a NAT (source NAT, masquerading, a "
                    "load balancer's destination NAT) sits between the two points. That is normal by itself; the "
                    "packets were matched on their TCP sequence numbers and IP IDs, which the NAT kept. Keep the "
                    f"mapping in mind when reading one capture with the other's addresses.")
        else:
            parts = []
            if "window" in fields:
                parts.append("the receive window is rewritten (a middlebox that normalises or clamps windows; if it "
                             "does not also rewrite the window scale option, the two ends disagree on the window)")
            if any(f.startswith("option:") for f in fields):
                parts.append("TCP options are rewritten" + (f" or removed ({', '.join(s[7:] for s in stripped)} "
                                                            "stripped: the ends then run without that feature)"
                                                            if stripped else "")
                             + " - MSS clamping on a tunnel or PPPoE link is the common, harmless case")
            if "ecn" in fields:
                parts.append("ECN bits are cleared (ECN bleaching)")
            if "df" in fields:
                parts.append("the don't-fragment bit is changed")
            if "ip_id" in fields:
                parts.append("the IP ID is rewritten (a scrubbing firewall or NAT)")
            expl = (f"Between {U} and {D} " + "; ".join(parts) + ". TTL changes are not counted (each router "
                    "takes one off). Next: identify the middlebox between the two points (firewall, load balancer, "
                    "WAN optimiser) and its normalisation settings.")
        evidence = {"from": U, "to": D, "fields": list(fields), "packets": n, "connections": conns[:50],
                    "frames_at": {U: frames[:400], D: sorted({it["pp"].at[down][0].frames[0] for it in items})[:400]},
                    "examples": examples}
        obs = [it["pp"].at[up][0] for it in items]
        return Finding(id="vantage.modified_in_transit", severity=severity, summary=summary, explanation=expl,
                       frames=frames[:2000], connections=list(dict.fromkeys(
                           u for it in items for u in it["pc"].members.get(up, [])))[:2000],
                       first_ts=min(o.ts_first for o in obs), last_ts=max(o.ts_last for o in obs), evidence=evidence)

    # no overlap ------------------------------------------------------------------------------
    def no_overlap(self) -> None:
        n = len(self.points)
        if n < 2:
            return
        shared = {k for k, pc in self.cor.pair_clock.items() if pc.matched}
        comp = list(range(n))

        def find(x: int) -> int:
            while comp[x] != x:
                x = comp[x]
            return x

        for a, b in shared:
            ra, rb = find(a), find(b)
            if ra != rb:
                comp[max(ra, rb)] = min(ra, rb)
        groups: dict[int, list[int]] = defaultdict(list)
        for i in range(n):
            groups[find(i)].append(i)
        if len(groups) < 2:
            return
        main = groups[0]
        for root, members in groups.items():
            if root == 0:
                continue
            self.out.append(self._no_overlap_finding(main, members))

    def _no_overlap_finding(self, main: list[int], other: list[int]) -> Finding:
        pts = self.points
        A = " and ".join(self.names[i] for i in main)
        B = " and ".join(self.names[i] for i in other)
        a0, b0 = pts[main[0]], pts[other[0]]
        sa = _span([pts[i] for i in main])
        sb = _span([pts[i] for i in other])
        common = set()
        for i in main:
            for j in other:
                common |= {_canon(t) for t in self.cor.by_tuple[i]} & {_canon(t) for t in self.cor.by_tuple[j]}
        if None in sa or None in sb:
            reason = "one of them holds no frames"
            overlap = False
        else:
            assert sa[0] is not None and sa[1] is not None and sb[0] is not None and sb[1] is not None
            overlap = sa[0] <= sb[1] and sb[0] <= sa[1]
            if not overlap:
                gap = sb[0] - sa[1] if sb[0] > sa[1] else sa[0] - sb[1]
                later, earlier = (B, A) if sb[0] > sa[1] else (A, B)
                reason = (f"they do not overlap in time: {A} covers {iso_ts(sa[0])} .. {iso_ts(sa[1])}, {B} covers "
                          f"{iso_ts(sb[0])} .. {iso_ts(sb[1])} ({later} starts {gap / 1e9:,.3f} s after {earlier} "
                          "ends, by their clocks)")
            else:
                span = (min(sa[1], sb[1]) - max(sa[0], sb[0])) / 1e9
                reason = (f"they overlap in time for {span:,.3f} s but "
                          + ("have no TCP connection (4-tuple) in common" if not common else
                             f"no packet of the {_plural(len(common), '4-tuple')} they have in common matches"))
        tcp_a = sum(pts[i].tcp_packets for i in main)
        tcp_b = sum(pts[i].tcp_packets for i in other)
        summary = f"{A} and {B} share no packet: {reason}."
        expl = ("Not an error: there is nothing to compare between these captures, so no clock offset, path or loss "
                "can be derived between them. They were taken at different times or see different traffic. If they "
                "should show the same connections, check the capture filters and interfaces, the clocks (a capture "
                "taken hours later by its own clock still matches if the packets are the same), and whether a proxy "
                "terminates the connections in between (a proxy opens new connections, with new sequence numbers: "
                "nothing matches).")
        frames_at = {self.names[i]: [1] for i in main + other if pts[i].capture.frames}
        evidence = {"points": [self.names[i] for i in main], "others": [self.names[i] for i in other],
                    "overlap_in_time": overlap, "common_4tuples": len(common), "tcp_packets": [tcp_a, tcp_b],
                    "frames_at": frames_at}
        return Finding(id="vantage.no_overlap", summary=summary, explanation=expl, frames=[1], connections=[],
                       first_ts=a0.first_ts, last_ts=b0.last_ts, evidence=evidence)


_NAT_FIELDS = {"src", "dst", "sport", "dport"}


def _span(pts: list[VantagePoint]) -> tuple[int | None, int | None]:
    firsts = [p.first_ts for p in pts if p.first_ts is not None]
    lasts = [p.last_ts for p in pts if p.last_ts is not None]
    return (min(firsts) if firsts else None, max(lasts) if lasts else None)


def _jsonable(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, tuple):
        return list(v)
    return v


def _show(v: Any) -> str:
    return "absent" if v is None else str(_jsonable(v))


def _changes(a: Packet, b: Packet, ipid_rewritten: bool) -> dict[str, tuple[Any, Any]]:
    """Header fields that differ between two sightings of one datagram (TTL, MACs aside)."""
    out: dict[str, tuple[Any, Any]] = {}
    for name in ("src", "dst", "sport", "dport", "window", "df"):
        va, vb = getattr(a, name), getattr(b, name)
        if va != vb:
            out[name] = (va, vb)
    if ((a.flags or 0) & _ECN_BITS) != ((b.flags or 0) & _ECN_BITS):
        out["ecn"] = ((a.flags or 0) & _ECN_BITS, (b.flags or 0) & _ECN_BITS)
    if ipid_rewritten and a.ip_id != b.ip_id:
        out["ip_id"] = (a.ip_id, b.ip_id)
    if a.options != b.options:
        oa, ob = parse_options(a.options), parse_options(b.options)
        for k in sorted(set(oa) | set(ob)):
            if oa.get(k) != ob.get(k):
                out[f"option:{k}"] = (oa.get(k), ob.get(k))
        if not any(k.startswith("option:") for k in out):
            out["option:layout"] = ((a.options or b"").hex(), (b.options or b"").hex())
    return out


# -- the result --------------------------------------------------------------------------------------
@dataclasses.dataclass
class VantageResult:
    """Several captures of one incident analysed together."""

    points: list[VantagePoint]
    clock: list[ClockEstimate]
    pairs: list[PairClock]
    paths: list[PathConnection]
    findings: list[Finding]
    nat: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.points]

    @property
    def reference(self) -> str:
        return self.points[0].name

    @property
    def t0(self) -> int:
        """The reference-clock time the path view counts from: the earliest capture start."""
        starts = [p.first_ts - (c.offset_ns or 0) for p, c in zip(self.points, self.clock, strict=True)
                  if p.first_ts is not None]
        return min(starts) if starts else 0

    def all_findings(self) -> list[tuple[str | None, Finding]]:
        """Every finding: (None, f) for the vantage findings, (point name, f) for each point's own."""
        out: list[tuple[str | None, Finding]] = [(None, f) for f in self.findings]
        for p in self.points:
            out.extend((p.name, f) for f in p.result.findings)
        return out

    def path_rows(self, connection: str | None = None, *, limit: int | None = None) -> list[dict[str, Any]]:
        """The path view: one row per packet and connection (``connection`` = a path connection id,
        ``V1`` ...): where it was seen (frames, reference time, TTL, MAC, window), where it was
        missed and why, and the one-way delays between the points that saw it."""
        rows: list[dict[str, Any]] = []
        t0 = self.t0
        for pc in self.paths:
            if connection is not None and pc.id != connection:
                continue
            for pp in pc.packets:
                if limit is not None and len(rows) >= limit:
                    return rows
                rows.append(self._row(pc, pp, t0))
        return rows

    def _row(self, pc: PathConnection, pp: PathPacket, t0: int) -> dict[str, Any]:
        names = self.names
        theta = [c.offset_ns or 0 for c in self.clock]
        o = pp.any.first
        at: dict[str, Any] = {}
        for i, name in enumerate(names):
            lst = pp.at.get(i)
            if not lst:
                at[name] = None
                continue
            ob = lst[0]
            p = ob.first
            at[name] = {"frames": ob.frames, "t": round((ob.ts_first - theta[i] - t0) / 1e9, 9),
                        "ttl": p.ttl, "src_mac": p.src_mac, "window": p.window,
                        "src": _ep(p.src or "?", p.sport or 0), "dst": _ep(p.dst or "?", p.dport or 0)}
        seen = sorted(pp.at, key=lambda i: (pp.at[i][0].ts_first - theta[i], i))
        delays = []
        for a, b in zip(seen, seen[1:], strict=False):
            xa, xb = pp.at[a][0], pp.at[b][0]
            delays.append({"from": names[a], "to": names[b],
                           "s": round(((xb.ts_first - theta[b]) - (xa.ts_last - theta[a])) / 1e9, 9)})
        return {"connection": pc.id, "packet": pp.id, "t": round((pp.t - t0) / 1e9, 9), "direction": pp.direction,
                "flags": _kind(o).split(" len")[0], "seq": o.seq, "ack": o.ack if (o.flags or 0) & TCP_ACK else None,
                "len": o.payload_len, "status": pp.status, "at": at,
                "missed": {names[m]: r for m, r in sorted(pp.missed.items())}, "delays": delays}

    def missed(self, point: str | int) -> list[dict[str, Any]]:
        """The packets one point missed (path rows whose ``missed`` names it)."""
        idx = point if isinstance(point, int) else self.names.index(point)
        t0 = self.t0
        return [self._row(pc, pp, t0) for pc in self.paths for pp in pc.packets if idx in pp.missed]

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON document of a multi-capture analysis (see README "Several vantage points")."""
        rows_left = MAX_PATH_ROWS
        paths = []
        t0 = self.t0
        for pc in self.paths:
            rows = []
            for pp in pc.packets:
                if rows_left <= 0:
                    break
                rows.append(self._row(pc, pp, t0))
                rows_left -= 1
            paths.append({
                "id": pc.id,
                "orig": _ep(*pc.orig),
                "resp": _ep(*pc.resp),
                "points": {self.names[i]: uids for i, uids in sorted(pc.members.items())},
                "orig_endpoint_capture": None if pc.orig_point is None else self.names[pc.orig_point],
                "resp_endpoint_capture": None if pc.resp_point is None else self.names[pc.resp_point],
                "order": {d: [self.names[i] for i in pc.order(d)] for d in ("o2r", "r2o")},
                "packets": len(pc.packets),
                "statuses": dict(Counter(pp.status for pp in pc.packets)),
                "missed": {self.names[m]: n for m, n in sorted(Counter(
                    m for pp in pc.packets for m in pp.missed).items())},
                "rows": rows,
                "rows_left_out": len(pc.packets) - len(rows),
            })
        return {
            "vantage_points": [{
                "name": p.name,
                "capture": p.capture.to_dict(),
                "tcp_packets": p.tcp_packets,
                "compared_packets": len(p.packets),
                "truncated": p.truncated,
                "own_macs": sorted(p.own_macs),
                "connections": [c.to_dict() for c in p.result.connections],
                "findings": [f.to_dict() for f in p.result.findings],
            } for p in self.points],
            "vantage": {
                "reference": self.reference,
                "t0": iso_ts(t0),
                "clock": [c.to_dict() for c in self.clock],
                "pairs": [pc.to_dict(self.names) for pc in self.pairs],
                "nat": self.nat,
                "paths": paths,
                "limits": {"max_packets": MAX_PACKETS, "max_path_rows": MAX_PATH_ROWS},
            },
            "findings": [f.to_dict() for f in self.findings],
        }

    def summary_text(self) -> str:
        """The terminal summary: each point's own summary, then what the comparison found."""
        from .errors import printable_lines
        from .summary import capture_summary

        out = []
        for p in self.points:
            text = capture_summary(p.capture, p.result.connections, p.result.findings)
            out.append(f"[{p.name}] " + text)
        lines = [f"vantage points: {', '.join(self.names)} (reference clock: {self.reference})"]
        for c in self.clock[1:]:
            lines.append(f"  clock      {c.point}: {c.text()} relative to {self.reference}"
                         f" ({_plural(c.matched, 'matched packet')})")
        for pc in self.pairs:
            lines.append(f"  matched    {self.names[pc.a]} ~ {self.names[pc.b]}: {_plural(pc.matched, 'packet')}")
        shared = [pc for pc in self.paths if len(pc.members) > 1]
        lines.append(f"  connections {len(self.paths):,} across the points, {len(shared):,} seen at more than one")
        for p in self.points:
            n = sum(1 for pc in self.paths for pp in pc.packets if p.index in pp.missed)
            if n:
                lines.append(f"  missed     {p.name}: {_plural(n, 'packet')} seen elsewhere on its path")
            if p.truncated:
                lines.append(f"  note       {p.name}: only its first {len(p.packets):,} TCP packets were compared "
                             "(MAX_PACKETS); later packets are not judged")
        if not self.findings:
            lines.append("vantage findings: none")
        else:
            by = Counter(f.severity for f in self.findings)
            lines.append("vantage findings: " + ", ".join(f"{by[s]} {s}" for s in reversed(SEVERITIES) if by[s]))
            for f in self.findings:
                lines.append(f"  {f.severity.upper():7} {f.id:32} {' '.join(f.summary.split())}")
        # The points' names are their file names (or --name): no control or bidi character raw.
        return printable_lines("".join(out) + "\n".join(lines) + "\n")

    def markdown_text(self, report_path: str | os.PathLike[str] | None = None) -> str:
        """A short Markdown summary for a ticket: the points, their clocks, and every finding."""
        from .markdown import code_span, md_escape

        lines = [f"## pcapsleuth: {len(self.points)} vantage points of one incident", ""]
        top = self.findings[0] if self.findings else None
        if top is not None:
            lines += [f"**{md_escape(top.severity.upper())}: {md_escape(top.title)}**", "",
                      md_escape(" ".join(top.summary.split())), ""]
        lines += ["| point | capture | frames | clock vs " + md_escape(self.reference) + " | own findings |",
                  "|---|---|---:|---|---|"]
        for p, c in zip(self.points, self.clock, strict=True):
            own = ", ".join(f"{f.id}" for f in p.result.findings[:5]) or "none"
            lines.append(f"| {md_escape(p.name)} | {code_span(os.path.basename(p.capture.path), table=True)} | "
                         f"{p.capture.frames:,} | {md_escape(c.text())} | {md_escape(own)} |")
        lines.append("")
        if self.findings:
            lines.append("### Across the captures")
            for f in self.findings:
                text = md_escape(" ".join(f.summary.split()))
                lines.append(f"- **{md_escape(f.severity)}** {code_span(f.id)}: {text}")
        else:
            lines.append("Nothing differs between the captures.")
        if report_path is not None:
            lines += ["", f"Full report: {code_span(os.fspath(report_path))}"]
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        return (f"<VantageResult {', '.join(self.names)}: {len(self.paths):,} connections, "
                f"{len(self.findings)} vantage findings>")


# -- entry points ------------------------------------------------------------------------------------
def correlate(points: Sequence[tuple[str, AnalysisResult]], *,
              sources: Sequence[Source | os.PathLike[str]] | None = None, max_packets: int = MAX_PACKETS,
              max_decompressed: int = 64 * 1024**3, max_expansion: float = MAX_EXPANSION) -> VantageResult:
    """Compare the analyses of several captures of one incident (one per vantage point).

    ``points`` are ``(name, result)`` pairs; the first point's clock is the reference. Each capture
    is read once more for its TCP packets (``sources``, default: each result's ``capture.path``),
    at most ``max_packets`` per capture.
    """
    if not points:
        raise ValueError("correlate() needs at least one vantage point")
    names = [n for n, _ in points]
    if len(set(names)) != len(names):
        raise ValueError(f"vantage point names must be unique: {names}")
    vps = []
    for i, (name, result) in enumerate(points):
        src = sources[i] if sources is not None else result.capture.path
        vp = VantagePoint(index=i, name=name, result=result, source=os.fspath(src) if isinstance(
            src, (str, os.PathLike)) else result.capture.path)
        _read(vp, src, max_packets, max_decompressed, max_expansion)
        vps.append(vp)
    cor = _Correlator(vps)
    cor.observe()
    cor.match()
    cor.orient()
    cor.estimate_clocks()
    if cor.deferred:
        cor.resolve_deferred()
        cor.orient()
        cor.estimate_clocks()
    pcs = cor.build_paths()
    if cor.orient_by_endpoints(pcs):
        cor.estimate_clocks()
        pcs = cor.build_paths()
    cor.missed(pcs)
    findings = _Findings(cor, pcs).all()
    nat = [{"a": names[a], "b": names[b], "a_tuple": f"{_ep(t1[0], t1[1])} -> {_ep(t1[2], t1[3])}",
            "b_tuple": f"{_ep(t2[0], t2[1])} -> {_ep(t2[2], t2[3])}", "evidence_segments": score}
           for a, b, t1, t2, score in cor.nat]
    pairs = [cor.pair_clock[k] for k in sorted(cor.pair_clock)]
    return VantageResult(points=vps, clock=cor.clock, pairs=pairs, paths=pcs, findings=findings, nat=nat)


def analyze_vantage_points(sources: Sequence[Source | os.PathLike[str]], names: Sequence[str] | None = None,
                           *, max_packets: int = MAX_PACKETS,
                           progress_of: Callable[[str], AbstractContextManager[Any]] | None = None,
                           **analyze_kw: Any) -> VantageResult:
    """Analyse each capture (``analyze_capture(source, **analyze_kw)``) and correlate them.

    ``progress_of(capture)``, when given, is a context manager around each capture's analysis
    that yields its ``progress`` callback (or None): the CLI's progress line, one per capture.

    ``names`` name the points in order (default: the file names without extensions); missing
    names at the end are filled in from the file names.

    >>> v = analyze_vantage_points(["lb-client.pcap", "lb-backend.pcap"])   # doctest: +SKIP
    >>> [f.id for f in v.findings]                                         # doctest: +SKIP
    ['vantage.foreign_reply']
    """
    srcs = list(sources)
    auto = default_names(srcs)
    given = list(names or [])
    if len(given) > len(srcs):
        raise ValueError(f"{len(given)} names for {len(srcs)} captures")
    final = given + [n for n in auto[len(given):]]
    for i in range(len(given), len(final)):  # a file name may collide with a given name
        base, k = final[i], 2
        while final[i] in final[:i]:
            final[i], k = f"{base}-{k}", k + 1
    callback = analyze_kw.pop("progress", None)  # a progress callback of the caller's own, for every capture
    results = []
    for s in srcs:
        label = os.fspath(s) if isinstance(s, (str, os.PathLike)) else "capture"
        with progress_of(label) if progress_of is not None else contextlib.nullcontext(callback) as bar:
            results.append(analyze_capture(s, progress=bar, **analyze_kw))
    return correlate(list(zip(final, results, strict=True)), sources=srcs, max_packets=max_packets,
                     max_decompressed=analyze_kw.get("max_decompressed", 64 * 1024**3),
                     max_expansion=analyze_kw.get("max_expansion", MAX_EXPANSION))

