"""Detectors: turn what the connection state machines saw into findings with evidence.

The detectors judge only on what the capture shows and say so when the evidence stops short
("never guess beyond the evidence"): a cause is named only when the frames support it.

They run as a stream (:class:`Detection`): each finished connection is handed over once, in the
order the tracker retires it (not the order of first frames), and may be released right after.
Findings about one connection are returned at once; findings that need a later connection (the
successor on the same 4-tuple) or the end of the capture wait in compact form, and findings about
groups of connections (scans, refusals, leaks ...) are accumulated as counts, extremes, small sets,
the first few items in full and the connection numbers in a packed array. Memory then follows the
interesting connections, not the capture's length. :func:`detect` runs the same over a list.

The incidents these detectors exist for (see DEVELOPERS.md):

* a load balancer whose own kernel resets SYNs for its virtual IP while a backend answers the
  same SYN directly (``handshake.conflicting_replies``);
* a leaked socket in CLOSE_WAIT that poisons its 4-tuple for the next connection
  (``reuse.peer_in_close_wait``, ``close.close_wait_leak``), and unanswered SYNs on loopback,
  which always point at local socket state (``handshake.unanswered_syn``).
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import heapq
import ipaddress
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple, Protocol, TypeVar

from .capture import CaptureInfo
from .findings import Finding, catalog
from .packet import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, Packet, flags_str
from .tcpanalysis import DUPLICATE_FRAME, FAST_RETRANSMISSION, RETRANSMISSION, SPURIOUS_RETRANSMISSION
from .tracker import (
    CLOSE_WAIT,
    CLOSED_S,
    CLOSING,
    ESTAB_S,
    FIN_WAIT_1,
    FIN_WAIT_2,
    LAST_ACK,
    SYN_RCVD_S,
    SYN_SENT_S,
    TIME_WAIT,
    Connection,
    uid_index,
    uid_of,
)

__all__ = ["detect", "Detection", "DetectorContext"]

_MASK = 0xFFFFFFFF
#: Groups larger than this are summarized: the first ones listed, the rest counted.
GROUP_LIST = 20


@dataclasses.dataclass
class DetectorContext:
    """The whole capture at once (kept for callers that want it; the detectors use :class:`Detection`)."""

    conns: list[Connection]
    info: CaptureInfo
    by_uid: dict[str, Connection]

    @property
    def capture_end(self) -> int:
        return self.info.last_ts or 0

    @functools.cached_property
    def handshakes_by_listener(self) -> dict[tuple[str, int], list[Connection]]:
        """TCP connections whose handshake completed, per responder address and port (built once)."""
        index: dict[tuple[str, int], list[Connection]] = defaultdict(list)
        for o in self.conns:
            if o.proto == "tcp" and o.ack_frame is not None and o.ack_ts is not None:
                index[(o.resp.addr, o.resp.port)].append(o)
        return index


def detect(conns: list[Connection], info: CaptureInfo) -> list[Finding]:
    """Run every detector; findings sorted by severity, then first evidence frame."""
    by_uid: dict[str, Connection] | None = None
    for c in sorted(conns, key=_conn_index):  # a predecessor's facts include its own predecessor's
        if c.predecessor and c.pred_facts is None:
            if by_uid is None:
                by_uid = {x.uid: x for x in conns}
            pred = by_uid.get(c.predecessor)
            if pred is not None:
                c.pred_facts = Detection.pred_facts(pred)
    return run_detection(conns, info)


def run_detection(conns: Iterable[Connection], info: CaptureInfo) -> list[Finding]:
    """Feed ``conns`` (their ``pred_facts`` filled, in any order) to a :class:`Detection`; the
    findings suppressed and sorted."""
    d = Detection(info)
    findings: list[Finding] = []
    for c in conns:
        findings.extend(d.add(c))
    findings.extend(d.finish())
    findings = _suppress(findings)
    findings.sort(key=Finding.sort_key)
    return findings


def _conn_index(c: Connection) -> int:
    return c.index


def _suppress(findings: list[Finding]) -> list[Finding]:
    """Drop follow-on findings that a more specific finding on the same connection explains."""
    return suppress(findings, lambda f: [uid_index(u) for u in f.connections])


class _Suppressible(Protocol):
    id: str


_S = TypeVar("_S", bound=_Suppressible)


def suppress(items: list[_S], conns_of: Callable[[_S], Sequence[int]]) -> list[_S]:
    """Drop the findings (or spilled finding records) whose every connection is also named by a
    finding that suppresses their id (``catalog.json``: ``suppresses``). ``conns_of`` gives an
    item's connection numbers; what is suppressed is kept as one bitmap per suppressed id."""
    cat = catalog()
    conns = [conns_of(f) for f in items]
    n = 1 + max((max(c) for c in conns if c), default=0)
    victims: dict[str, bytearray] = {}
    for f, these in zip(items, conns, strict=True):
        for victim in cat[f.id].get("suppresses", []):
            marks = victims.setdefault(victim, bytearray(n))
            for i in these:
                marks[i] = 1
    out = []
    for f, these in zip(items, conns, strict=True):
        hit = victims.get(f.id)
        if hit is not None and these and all(hit[i] for i in these):
            continue
        out.append(f)
    return out


# -- helpers -----------------------------------------------------------------------------------

def _from(c: Connection, p: Packet, side: str) -> bool:
    ep = c.orig if side == "orig" else c.resp
    return p.src == ep.addr and p.sport == ep.port


def _is_loopback(c: Connection, info: CaptureInfo) -> bool:
    """127/8, ::1, the same address on both ends, an interface named lo, or a NULL/LOOP link."""
    try:
        a = ipaddress.ip_address(c.orig.addr)
        b = ipaddress.ip_address(c.resp.addr)
        if a.is_loopback or b.is_loopback:
            return True
    except ValueError:
        pass
    if c.orig.addr == c.resp.addr:
        return True
    if 0 <= c.iface < len(info.interfaces):
        iface = info.interfaces[c.iface]
        if iface.linktype in (0, 108) or (iface.name or "").split("@")[0] in ("lo", "lo0", "Loopback"):
            return True
    return False


def _sec(ns: int) -> float:
    return round(ns / 1e9, 6)


def _fmt_s(seconds: float) -> str:
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s" if seconds < 100 else f"{seconds:.0f} s"


def _ep_str(addr: str, port: int) -> str:
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def _pkt_view(p: Packet) -> dict[str, Any]:
    return {"frame": p.no, "flags": flags_str(p.flags), "seq": p.seq, "ack": p.ack, "len": p.payload_len,
            "ttl": p.ttl, "ip_id": p.ip_id, "window": p.window, "src_mac": p.src_mac}


def _syns_kept(c: Connection) -> int:
    """The originator's SYNs among the packets kept as evidence (``c.orig.syn_cnt`` counts them all)."""
    return sum(1 for p in c.evidence if p.flags is not None and p.flags & TCP_SYN and _from(c, p, "orig"))


def _syn_groups(c: Connection) -> list[list[Packet]]:
    """The originator's SYNs (no ACK) in the evidence, grouped by ISN (a group = one attempt)."""
    groups: dict[int, list[Packet]] = {}
    for p in c.evidence:
        if p.flags is not None and p.flags & TCP_SYN and not p.flags & TCP_ACK and _from(c, p, "orig"):
            groups.setdefault(p.seq, []).append(p)  # type: ignore[arg-type]
    return list(groups.values())


def _resp_is_low(c: Connection) -> bool:
    """Is the responder the lower endpoint of the 4-tuple (the tracker's key order)? Generations of a
    tuple share its two endpoints, so this names a side across them whichever end originated."""
    return (c.resp.addr, c.resp.port) <= (c.orig.addr, c.orig.port)


# -- compact state -------------------------------------------------------------------------------

class Indexes:
    """Connection numbers of a group, in the order added, delta-encoded in a bytearray.

    Connections retire in nearly increasing order, so most take one or two bytes instead of a
    Python int each. :meth:`uids` gives them sorted, as the connections' first frames order them.
    """

    __slots__ = ("data", "last", "n")

    def __init__(self) -> None:
        self.data = bytearray()
        self.last = 0
        self.n = 0

    def add(self, i: int) -> None:
        d = i - self.last
        self.last = i
        self.n += 1
        z = d << 1 if d >= 0 else ((-d) << 1) - 1  # zigzag: small negative steps stay small
        data = self.data
        while z >= 0x80:
            data.append((z & 0x7F) | 0x80)
            z >>= 7
        data.append(z)

    def values(self) -> list[int]:
        out = []
        cur = z = shift = 0
        for b in self.data:
            z |= (b & 0x7F) << shift
            if b & 0x80:
                shift += 7
                continue
            cur += -((z + 1) >> 1) if z & 1 else z >> 1
            out.append(cur)
            z = shift = 0
        return out

    def sorted(self) -> list[int]:
        return sorted(self.values())

    def uids(self) -> list[str]:
        return [uid_of(i) for i in self.sorted()]


class Smallest:
    """The ``n`` items with the smallest keys seen so far (keys unique), for "the first ones listed"
    when connections do not arrive in the order the listing uses."""

    __slots__ = ("n", "heap")

    def __init__(self, n: int = GROUP_LIST) -> None:
        self.n = n
        self.heap: list[tuple[int, Any]] = []

    def add(self, key: int, item: Any = None) -> None:
        h = self.heap
        if len(h) < self.n:
            heapq.heappush(h, (-key, item))
        elif -h[0][0] > key:
            heapq.heapreplace(h, (-key, item))

    def items(self) -> list[tuple[int, Any]]:
        """(key, item) in increasing key order."""
        return sorted(((-k, item) for k, item in self.heap), key=lambda ki: ki[0])


class FirstFrames:
    """The first ``limit`` frames of per-connection frame lists concatenated in connection order:
    only the lowest-numbered connections whose lists reach ``limit`` are kept."""

    __slots__ = ("limit", "entries")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.entries: list[tuple[int, list[int]]] = []

    def add(self, index: int, frames: list[int]) -> None:
        if not frames:
            return
        entries = self.entries
        bisect.insort(entries, (index, frames[: self.limit]))
        total = 0
        for k, (_, fr) in enumerate(entries):
            total += len(fr)
            if total >= self.limit:
                del entries[k + 1:]
                break

    def frames(self) -> list[int]:
        return [f for _, fr in self.entries for f in fr][: self.limit]


class Names:
    """Strings (addresses, MACs) as small numbers, so that per-connection rows are plain ints."""

    __slots__ = ("ids", "names")

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.names: list[str] = []

    def id(self, s: str) -> int:
        i = self.ids.get(s)
        if i is None:
            i = self.ids[s] = len(self.names)
            self.names.append(s)
        return i

    def endpoint(self, addr: str, port: int) -> int:
        return self.id(addr) << 16 | port

    def split(self, key: int) -> tuple[str, int]:
        return self.names[key >> 16], key & 0xFFFF


# -- what a successor learns about its predecessor -------------------------------------------------
#
# ``Detection.pred_facts`` packs into one int (shared for the common small values): bits 0-1 say
# whether an attempt (a SYN) answered by the low / high endpoint of the tuple was seen in the
# generations so far (scan.syn_flood counts distinct sources from it); bits 2-3 whether the
# connection waits for its successor (facts about it / only that it exists); bits 4-7 and 8-11 the
# RFC 793 state of the socket a new SYN to the low / high endpoint meets (protocol.challenge_ack);
# bits 12-13 which old socket was in TIME-WAIT, and above them that side's numbers and the old
# connection's last timestamp (protocol.syn_in_time_wait). A half-closed predecessor (or a value
# out of range) gives a :class:`_Facts` instead.

_SEEN_LOW, _SEEN_HIGH, _SUCC_FACTS, _SUCC_SEEN = 1, 2, 4, 8
_TW_LOW, _TW_HIGH = 1 << 12, 1 << 13
_PAYLOAD = 14
_STATES: tuple[str | None, ...] = (None, SYN_SENT_S, SYN_RCVD_S, ESTAB_S, FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT,
                                   CLOSING, LAST_ACK, TIME_WAIT, CLOSED_S)
_STATE_CODE = {s: i for i, s in enumerate(_STATES)}
_SMALL_CODES: dict[int, int] = {}


class _HalfClose(NamedTuple):
    """One side's FIN was ACKed and the other (``stuck``) never sent one (see :func:`_half_closed`)."""

    closer_addr: str
    closer_port: int
    closer_fin_raw: int
    stuck_addr: str
    stuck_port: int
    stuck_last_seq: int
    stuck_role: str
    fin_frame: int | None
    fin_ack_no: int
    fin_ack_ts: int
    fin_ts: int
    #: The stuck side sent data after it ACKed the FIN: the half-close is in use (a response after
    #: the peer's shutdown(SHUT_WR)), not a socket left behind.
    data_after: bool = False


class _Facts(NamedTuple):
    """``pred_facts`` decoded (or, when an int cannot hold them, as stored)."""

    bits: int  # the flag bits (0-3 and 12-13) of the packed form
    state_low: str | None
    state_high: str | None
    tw_low: tuple[int, int | None] | None  # (old peer's FIN or last seq, old FIN frame)
    tw_high: tuple[int, int | None] | None
    last_ts: int
    hc: _HalfClose | None


class _Succ(NamedTuple):
    """What a connection waiting for its successor needs to know about it."""

    uid: str
    first_ts: int
    synack: bool
    retry_syn: int | None  # frames of the successor's first SYN and the SYN-ACK answering it
    retry_synack: int | None
    retry_synack_ts: int | None


#: A finding waiting for the successor (None if none came) or the capture's end.
Pending = Callable[[_Succ | None, int], list[Finding]]


def _bits(facts: Any) -> int:
    if facts is None:
        return 0
    if isinstance(facts, int):
        return facts & 0x3FFF
    return int(facts.bits)


def _decode(facts: Any) -> _Facts | None:
    if facts is None or isinstance(facts, _Facts):
        return facts
    v = int(facts)
    tw_low = tw_high = None
    last_ts = 0
    if v & (_TW_LOW | _TW_HIGH):
        p = v >> _PAYLOAD
        if v & _TW_LOW:
            tw_low = (p & _MASK, _fin_frame((p >> 32) & 0xFFFFFFFFFFFF))
        if v & _TW_HIGH:
            tw_high = ((p >> 80) & _MASK, _fin_frame((p >> 112) & 0xFFFFFFFFFFFF))
        last_ts = p >> 160
    return _Facts(v & 0x3FFF, _STATES[(v >> 4) & 15], _STATES[(v >> 8) & 15], tw_low, tw_high, last_ts, None)


def _fin_code(frame: int | None) -> int:
    return 0 if frame is None else frame + 1


def _fin_frame(code: int) -> int | None:
    return code - 1 if code else None


def answerer_state(c: Connection) -> str | None:
    """The RFC 793 state the predecessor left the socket a SYN of ``c`` reaches (by address, as the
    challenge-ACK finding always named it); None without a predecessor."""
    f = _decode(c.pred_facts) if c.predecessor else None
    if f is None:
        return None
    return f.state_low if _resp_is_low(c) else f.state_high


def time_wait_of(c: Connection) -> tuple[int, int | None, int] | None:
    """If the predecessor's socket at ``c``'s responder was in TIME-WAIT: (its peer's FIN or last
    sequence number, its own FIN frame, the predecessor's last timestamp)."""
    f = _decode(c.pred_facts) if c.predecessor else None
    if f is None:
        return None
    tw = f.tw_low if _resp_is_low(c) else f.tw_high
    return None if tw is None else (tw[0], tw[1], f.last_ts)


def _succ_facts(x: Connection) -> _Succ:
    retry_syn = retry_synack = None
    for p in x.evidence:
        if p.flags is None:
            continue
        if retry_syn is None and p.flags & TCP_SYN and not p.flags & TCP_ACK and _from(x, p, "orig"):
            retry_syn = p
        elif retry_syn is not None and p.flags & TCP_SYN and p.flags & TCP_ACK and _from(x, p, "resp"):
            retry_synack = p
            break
    return _Succ(x.uid, x.first_ts, x.synack_frame is not None, retry_syn.no if retry_syn is not None else None,
                 retry_synack.no if retry_synack is not None else None,
                 retry_synack.ts if retry_synack is not None else None)


def _successor_needs(c: Connection) -> int:
    """Does ``c`` wait for its successor: for facts about it (_SUCC_FACTS), or only to know whether
    there is one (_SUCC_SEEN)? The same tests as the detectors that wait."""
    if c.proto != "tcp":
        return 0
    bits = 0
    if _half_closed(c) is not None:
        bits |= _SUCC_FACTS  # close.close_wait_leak
    if c.predecessor and c.pred_facts is not None:
        f = _decode(c.pred_facts)
        assert f is not None
        if f.hc is not None and _syn_groups(c):
            bits |= _SUCC_FACTS  # reuse.peer_in_close_wait
        if c.syn_frame and c.orig.isn is not None and time_wait_of(c) is not None:
            bits |= _SUCC_FACTS  # protocol.syn_in_time_wait
    if _unanswered_syns(c) is not None:
        bits |= _SUCC_SEEN  # handshake.unanswered_syn: did the client give up?
    return bits


# -- the stream ------------------------------------------------------------------------------------

class Detection:
    """The detectors over a stream of finished connections (see the module docstring).

    >>> d = Detection(info)                    # doctest: +SKIP
    >>> for c in retired: found += d.add(c)    # doctest: +SKIP
    >>> found += d.finish()                    # doctest: +SKIP

    Findings come unsuppressed and unsorted: the caller applies ``_suppress`` and
    ``Finding.sort_key`` (as :func:`detect` does).
    """

    def __init__(self, info: CaptureInfo) -> None:
        from . import anomalies

        self.info = info
        self.names = Names()
        self._conflicts = _Conflicts()
        self._unanswered = _Unanswered(info, self.names)
        self._collisions = _Collisions()
        self._leaks = _Leaks()
        self._refused = _Refused(self.names)
        self._fins = _FinStories()
        self._per_conn = anomalies.PER_CONNECTION
        self._zero_window = anomalies.zero_window
        self._zero_window_needs_end = anomalies.zero_window_needs_end
        self._syn_in_time_wait = anomalies.syn_in_time_wait
        self._groups = anomalies.accumulators(self.names)
        #: Findings waiting for a connection's successor, by connection number.
        self._waiting: dict[int, list[Pending]] = {}
        #: Successors added before their predecessor (only in orders other than retirement order).
        self._early: dict[int, _Succ] = {}
        #: Connections (waiting for one) whose successor has been added.
        self._succeeded: set[int] = set()
        #: Connections with a zero window still open when they ended: judged at the capture's end.
        self._open_windows: list[Connection] = []

    @staticmethod
    def pred_facts(old: Connection) -> Any:
        """What a successor on ``old``'s 4-tuple needs to know about it (see the comment above
        ``_SEEN_LOW``): None, a shared small int, a packed int, or a :class:`_Facts`."""
        if old.proto != "tcp":
            return None
        o, r = old.orig, old.resp
        bits = _bits(old.pred_facts) & (_SEEN_LOW | _SEEN_HIGH)
        resp_low = _resp_is_low(old)
        if old.syn_frame is not None:
            bits |= _SEEN_LOW if resp_low else _SEEN_HIGH
        bits |= _successor_needs(old)
        low, high = (r, o) if resp_low else (o, r)
        st_low = r.tcp_state if r.addr == low.addr else o.tcp_state
        st_high = r.tcp_state if r.addr == high.addr else o.tcp_state

        def tw(addr: str, port: int) -> tuple[int, int | None] | None:
            old_ep = o if (o.addr, o.port) == (addr, port) else r
            if old_ep.tcp_state != TIME_WAIT:
                return None
            peer = r if old_ep is o else o
            last = peer.fin_raw if peer.fin_raw is not None else peer.last_seq
            return (last, old_ep.fins[0] if old_ep.fins else None)

        tw_low, tw_high = tw(low.addr, low.port), tw(high.addr, high.port)
        hc = _half_closed(old)
        codes = (_STATE_CODE.get(st_low), _STATE_CODE.get(st_high))
        packable = hc is None and None not in codes and all(
            t is None or (0 <= t[0] <= _MASK and _fin_code(t[1]) < 1 << 48) for t in (tw_low, tw_high))
        if not packable:
            if tw_low is not None:
                bits |= _TW_LOW
            if tw_high is not None:
                bits |= _TW_HIGH
            return _Facts(bits, st_low, st_high, tw_low, tw_high, old.last_ts, hc)
        v = bits | codes[0] << 4 | codes[1] << 8  # type: ignore[operator]
        if tw_low is None and tw_high is None:
            return _SMALL_CODES.setdefault(v, v) if v else None
        p = 0
        if tw_low is not None:
            v |= _TW_LOW
            p |= tw_low[0] | _fin_code(tw_low[1]) << 32
        if tw_high is not None:
            v |= _TW_HIGH
            p |= tw_high[0] << 80 | _fin_code(tw_high[1]) << 112
        return v | (p | old.last_ts << 160) << _PAYLOAD

    def add(self, c: Connection) -> list[Finding]:
        """``c`` is finished: no more packets will reach it. Returns the findings final now."""
        out: list[Finding] = []
        if c.predecessor:
            self._link(c, out)
        self._conflicts.add(c)
        self._unanswered.add(c)
        if c.proto == "tcp":
            index = c.index
            for start in (self._collisions.start, self._leaks.start, self._syn_in_time_wait):
                pending = start(c)
                if pending is not None:
                    self._wait(index, pending, out)
            if self._early:
                self._early.pop(index, None)
        self._refused.add(c)
        self._fins.add(c)
        if self._zero_window_needs_end(c):
            self._open_windows.append(c)  # rare: kept whole until the capture's end
        else:
            out.extend(self._zero_window(c, 0))
        for det in self._per_conn:
            out.extend(det(c))
        for group in self._groups:
            group.add(c)
        return out

    def _link(self, c: Connection, out: list[Finding]) -> None:
        """``c`` is the successor of an earlier connection on its tuple: what waited for it."""
        assert c.predecessor is not None
        p = uid_index(c.predecessor)
        waiting = self._waiting.pop(p, None)
        needs = _bits(c.pred_facts) & (_SUCC_FACTS | _SUCC_SEEN)
        if waiting is None and not needs:
            return
        succ = _succ_facts(c)
        if needs & _SUCC_SEEN and succ.retry_syn is not None:
            self._succeeded.add(p)  # a new attempt on the tuple: the client gave the old one up
        if waiting is not None:
            for pending in waiting:
                out.extend(pending(succ, 0))
        elif needs & _SUCC_FACTS:
            self._early[p] = succ  # the predecessor has not been added yet

    def _wait(self, index: int, pending: Pending, out: list[Finding]) -> None:
        succ = self._early.get(index)
        if succ is not None:
            out.extend(pending(succ, 0))
        else:
            self._waiting.setdefault(index, []).append(pending)

    def finish(self) -> list[Finding]:
        """All remaining findings (call once). ``self.info.last_ts`` (the capture's end) is final only now."""
        return list(self.iter_finish())

    def iter_finish(self) -> Iterator[Finding]:
        """:meth:`finish`, one finding at a time (a big scan ends in tens of thousands of groups)."""
        end = self.info.last_ts or 0
        waiting, self._waiting = self._waiting, {}
        for pendings in waiting.values():
            for pending in pendings:
                yield from pending(None, end)
        for c in self._open_windows:
            yield from self._zero_window(c, end)
        self._open_windows = []
        yield from self._conflicts.finish()
        yield from self._unanswered.finish(end, self._succeeded)
        yield from self._collisions.finish()
        yield from self._leaks.finish()
        yield from self._refused.finish()
        yield from self._fins.finish()
        for group in self._groups:
            yield from group.finish(end)


# -- handshake.conflicting_replies -------------------------------------------------------------

class _ConflictGroup:
    __slots__ = ("n", "first", "first_index", "top", "uids", "last_ts")

    def __init__(self) -> None:
        self.n = 0
        self.first: Finding | None = None
        self.first_index = 0
        self.top = Smallest()
        self.uids = Indexes()
        self.last_ts = 0


class _Conflicts:
    """One finding per answering address and view; repeated attempts are listed in its evidence."""

    def __init__(self) -> None:
        self.groups: dict[tuple[str, int, str], _ConflictGroup] = {}

    def add(self, c: Connection) -> None:
        f = _conflicting_replies_one(c)
        if f is None:
            return
        key = (c.resp.addr, c.resp.port, f.evidence["view"])
        g = self.groups.get(key)
        if g is None:
            g = self.groups[key] = _ConflictGroup()
        g.n += 1
        g.uids.add(c.index)
        g.last_ts = max(g.last_ts, f.last_ts or 0)
        if g.first is None or c.index < g.first_index:
            g.first, g.first_index = f, c.index
        g.top.add(c.index, (f.frames, f.evidence["differing_attributes"]))

    def finish(self) -> Iterator[Finding]:
        for g in sorted(self.groups.values(), key=lambda g: g.first_index):
            first = g.first
            assert first is not None
            n = g.n
            if n > 1:
                top = g.top.items()
                first.summary = (f"{n} connection attempts met the same conflict; first: " + first.summary)
                first.evidence["attempts_affected"] = n
                first.evidence["per_attempt"] = [
                    {"uid": uid_of(i), "frames": frames, "differing_attributes": diff} for i, (frames, diff) in top]
                first.evidence["left_out"] = max(0, n - GROUP_LIST)
                first.connections = g.uids.uids()
                first.frames = sorted({fr for _, (frames, _) in top for fr in frames})
                first.last_ts = g.last_ts
            else:
                first.evidence["attempts_affected"] = 1
            yield first
        self.groups = {}


def _conflicting_replies_one(c: Connection) -> Finding | None:
    if c.proto != "tcp":
        return None
    for syns in _syn_groups(c):
        syn = syns[0]
        want_ack = (syn.seq + 1) & _MASK  # type: ignore[operator]
        rst = synack = None
        for p in c.evidence:
            if p.no <= syn.no or p.flags is None:
                continue
            if _from(c, p, "orig"):
                if p.flags & TCP_ACK and not p.flags & TCP_RST and p.ack != 0:
                    break  # the client moved on: replies after this answer something else
                continue
            # Both replies must answer *this* SYN: they acknowledge exactly its sequence number.
            # (RST injectors are sloppy: some acknowledge the SYN's own number, or nothing.)
            if rst is None and p.flags & TCP_RST and (not p.flags & TCP_ACK or p.ack in (want_ack, syn.seq)):
                rst = p
            if synack is None and p.flags & TCP_SYN and p.flags & TCP_ACK and p.ack == want_ack:
                synack = p
        if rst is not None and synack is not None:
            return _conflict_finding(c, syn, rst, synack)
    return _responder_view(c)


def _conflict_finding(c: Connection, syn: Packet, rst: Packet, synack: Packet) -> Finding:
    diffs: dict[str, dict[str, Any]] = {}
    for attr in ("src_mac", "ttl", "ip_id", "window"):
        a, b = getattr(rst, attr), getattr(synack, attr)
        if a != b:
            diffs[attr] = {"rst": a, "syn_ack": b}
    if (rst.options or b"") != (synack.options or b""):
        diffs["tcp_options"] = {"rst": (rst.options or b"").hex(), "syn_ack": (synack.options or b"").hex()}
    t_rst = _sec(rst.ts - syn.ts)
    t_sa = _sec(synack.ts - syn.ts)
    diffs["delay_after_syn_s"] = {"rst": t_rst, "syn_ack": t_sa}
    mac_differs = "src_mac" in diffs and rst.src_mac is not None and synack.src_mac is not None
    ttl_differs = "ttl" in diffs
    two_machines = mac_differs or ttl_differs
    first, second = ("RST", "SYN-ACK") if rst.no < synack.no else ("SYN-ACK", "RST")
    vip = _ep_str(c.resp.addr, c.resp.port)
    reasons = []
    if mac_differs:
        reasons.append(f"the RST came from MAC {rst.src_mac} and the SYN-ACK from {synack.src_mac}")
    if ttl_differs:
        reasons.append(f"their TTLs differ ({rst.ttl} vs {synack.ttl}), so they travelled different paths")
    timing = (f"the {first} arrived {_fmt_s(min(t_rst, t_sa))} after the SYN and the {second} "
              f"{_fmt_s(max(t_rst, t_sa))} after it")
    if two_machines:
        verdict = "Two different machines answered for " + vip + ": " + "; ".join(reasons) + "."
    else:
        verdict = (f"Both replies carry the same link-layer source and TTL, so the capture cannot show two "
                   f"machines; they may both come from one device in front of {vip}.")
    summary = (f"SYN frame {syn.no} to {vip} was answered by a RST (frame {rst.no}) and by a SYN-ACK "
               f"(frame {synack.no}) for the same address and port; {timing}.")
    explanation = (
        f"{verdict} This is the signature of a virtual IP served by two stacks: a load balancer or NAT "
        f"whose own kernel has no socket bound on {vip} answers the SYN with a RST, while the backend it "
        f"forwards the SYN to answers directly from the same virtual IP (direct server return). The client "
        f"takes whichever reply comes first: with the RST first, connect() fails with 'connection refused' "
        f"although the backend accepted, and the client then resets the backend's SYN-ACK. "
        f"Fix: keep the VIP's packets away from the balancer's local stack (queue them to the balancer "
        f"program with an NFQUEUE rule, or DROP them in the INPUT chain after copying), or bind the port "
        f"on the balancer. Check on the balancer: `ss -ltn 'sport = :{c.resp.port}'` (no listener), "
        f"`iptables -t mangle -S; iptables -S INPUT`, and `nstat -az TcpOutRsts`.")
    evidence = {
        "view": "client",
        "syn": _pkt_view(syn),
        "rst": _pkt_view(rst),
        "syn_ack": _pkt_view(synack),
        "first_reply": first,
        "differing_attributes": sorted(k for k in diffs if k != "delay_after_syn_s" or t_rst != t_sa),
        "differences": diffs,
        "two_machines": two_machines,
        "retries": len(_syn_groups(c)),
    }
    frames = [syn.no, rst.no, synack.no]
    for p in c.evidence:
        if p.no > synack.no and _from(c, p, "orig") and p.flags is not None and p.flags & TCP_RST:
            frames.append(p.no)
            evidence["client_reset"] = _pkt_view(p)
            break
    return Finding("handshake.conflicting_replies", summary, explanation, frames, [c.uid], syn.ts,
                   max(rst.ts, synack.ts), evidence)


def _responder_view(c: Connection) -> Finding | None:
    """Backend-side view: SYN, our SYN-ACK, then the client resets the connection it asked for."""
    if c.proto != "tcp" or c.synack_frame is None or c.ack_frame is not None:
        return None
    syn = synack = rst = None
    for p in c.evidence:
        f = p.flags
        if f is None:
            continue
        if syn is None and f & TCP_SYN and not f & TCP_ACK and _from(c, p, "orig"):
            syn = p
        elif syn is not None and synack is None and f & TCP_SYN and f & TCP_ACK and _from(c, p, "resp"):
            synack = p
        elif synack is not None and _from(c, p, "orig"):
            if f & TCP_RST and p.seq == synack.ack:
                rst = p
            break
        elif synack is not None and _from(c, p, "resp") and f & TCP_RST:
            return None
    if syn is None or synack is None or rst is None:
        return None
    if any(_from(c, p, "resp") and p.flags is not None and p.flags & TCP_RST for p in c.evidence):
        return None
    delay = _sec(rst.ts - synack.ts)
    vip = _ep_str(c.resp.addr, c.resp.port)
    summary = (f"{_ep_str(c.orig.addr, c.orig.port)} asked for a connection to {vip} (SYN frame {syn.no}), got "
               f"our SYN-ACK (frame {synack.no}) and reset it {_fmt_s(delay)} later (frame {rst.no}) "
               f"instead of completing the handshake.")
    explanation = (
        f"A client resets a SYN-ACK it asked for when its socket is already gone: something else answered "
        f"its SYN first, typically a RST from another stack that owns the same address (a load balancer or "
        f"NAT in front of this host whose kernel has no socket on {vip}). Seen from the backend, only the SYN "
        f"and its own SYN-ACK are visible. Capture on the client at the same time to see the foreign RST "
        f"(`pcapsleuth analyze client.pcap backend.pcap`). A SYN port scanner produces the same pattern; "
        f"repeated attempts from an ordinary client port point to the load-balancer case.")
    evidence = {"view": "responder", "syn": _pkt_view(syn), "syn_ack": _pkt_view(synack),
                "client_reset": _pkt_view(rst), "reset_after_s": delay, "replies_seen": ["SYN-ACK"],
                "differing_attributes": []}
    return Finding("handshake.conflicting_replies", summary, explanation, [syn.no, synack.no, rst.no], [c.uid],
                   syn.ts, rst.ts, evidence, severity="warning")


# -- handshake.unanswered_syn ------------------------------------------------------------------

def _schedule(intervals: list[float]) -> str:
    """Name the SYN retry schedule: classic exponential (1, 2, 4 ... s) or Linux >= 6.5's
    linear-then-exponential (tcp_syn_linear_timeouts: several 1 s retries, then doubling)."""
    if not intervals:
        return "single"
    if len(intervals) == 1:
        return "single_retry"
    ratios = [b / a for a, b in zip(intervals, intervals[1:], strict=False) if a > 0]
    if not ratios:
        return "irregular"
    doubling = [1.6 <= r <= 2.5 for r in ratios]
    flat = [0.8 <= r <= 1.25 for r in ratios]
    if all(doubling):
        return "exponential"
    k = 0
    while k < len(flat) and flat[k]:
        k += 1
    if k >= 1 and all(doubling[k:]):
        return "linear_then_exponential" if k < len(flat) else "linear"
    return "irregular"


def _near(x: float, t: float) -> bool:
    return abs(x - t) <= max(0.25, 0.2 * t)


#: What each operating system's default SYN retry schedule looks like (intervals between SYNs):
#: Linux before 6.5 (or tcp_syn_linear_timeouts=0): initial RTO 1 s (RFC 6298), doubling, 6 retries
#: (1, 2, 4, 8, 16, 32 s). Linux >= 6.5: tcp_syn_linear_timeouts=4, which keeps the 1 s timeout for
#: the first five intervals, then doubles (1, 1, 1, 1, 1, 2, 4 ...); the commit that added it (ccce324dabfe,
#: 2023) chose it to follow macOS and iOS, whose tcp_syn_backoff is the same (1, 1, 1, 1, 1, 2, 4, 8 ...):
#: the two cannot be told apart by the schedule. Windows (7 / Server 2008 R2 defaults, TcpInitialRtt 3 s,
#: MaxSynRetransmissions 2): 3, 6 s, then connect() fails 21 s after the first SYN. Linux before 2.6.39
#: started at 3 s (RFC 1122) and doubled: 3, 6, 12 ... s.
OS_SCHEDULES = {
    "linux": "Linux's classic schedule (1 s, doubling: before 6.5, or tcp_syn_linear_timeouts=0)",
    "linux>=6.5|macos": "the schedule of Linux >= 6.5 and of macOS/iOS, which Linux copied (five 1 s retries, "
                        "then doubling)",
    "windows": "Windows' schedule (3 s, then 6 s; connect() fails 21 s after the first SYN)",
    "linux<2.6.39": "the schedule of Linux before 2.6.39 (3 s initial timeout, doubling)",
}


def _os_fit(intervals: list[float], gave_up: bool) -> str | None:
    """The operating system whose default SYN retry schedule these intervals follow (a key of
    :data:`OS_SCHEDULES`), or None when they fit none, or too few of them were seen to tell."""
    r = intervals
    if len(r) >= 3 and _near(r[0], 1.0) and all(_near(b, 2 * a) for a, b in zip(r, r[1:], strict=False)):
        return "linux"  # 1, 2, 4: three doubling intervals from 1 s (Windows retries twice; macOS is linear)
    ones = 0
    while ones < len(r) and _near(r[ones], 1.0):
        ones += 1
    if ones >= 2 and (ones == len(r) and ones <= 5 or ones == 5 and _near(r[5], 2.0)
                      and all(_near(b, 2 * a) for a, b in zip(r[5:], r[6:], strict=False))):
        return "linux>=6.5|macos"
    if len(r) == 2 and _near(r[0], 3.0) and _near(r[1], 6.0) and gave_up:
        return "windows"
    if len(r) >= 3 and _near(r[0], 3.0) and all(_near(b, 2 * a) for a, b in zip(r, r[1:], strict=False)):
        return "linux<2.6.39"  # Windows stops after two retries
    return None


def _schedule_text(intervals: list[float], fit: str | None) -> str:
    shown = ", ".join(f"{x:.2f}" for x in intervals[:8]) + (" ..." if len(intervals) > 8 else "")
    if not intervals:
        return "no retry"
    spacing = f"retries {shown} s apart"
    if fit:
        return f"{spacing}, which fits {OS_SCHEDULES[fit]},"
    if len(intervals) < 2:
        return f"{spacing} (too few to tell the operating system)"
    return f"{spacing} (no operating system's default schedule)"


def _unanswered_syns(c: Connection) -> list[Packet] | None:
    """The SYNs of an attempt the responder never answered at all (the largest group), else None.

    Answers whose TCP checksum is bad do not count: the client's stack drops them, so for it the
    SYN was never answered (``c.resp.bad_checksums``; the cause is then ``bad_checksum``)."""
    if c.proto != "tcp" or c.resp.pkts:
        return None
    groups = _syn_groups(c)
    if not groups:
        return None
    if any(_from(c, p, "orig") and p.flags is not None and p.flags & TCP_ACK and not p.flags & TCP_RST
           for p in c.evidence):
        return None  # the client ACKed an answer the capture did not see (one-sided capture)
    return max(groups, key=len)


_LOOP, _PRED_HALF_CLOSED, _ORIG_RST, _SYNS_LEFT_OUT = 1, 2, 4, 8
_NEVER = 1 << 62


class _Unanswered:
    """Unanswered attempts, kept as int records until the capture's end decides which count (the
    client may still have been waiting) and why (the accept queue needs every handshake's fate)."""

    def __init__(self, info: CaptureInfo, names: Names) -> None:
        self.info = info
        self.names = names
        #: Per attempt: index, listener, client, flags, predecessor, client RST ts, answers with a
        #: bad checksum, n, n frames, n ts.
        self.records = array("q")
        #: Handshakes whose responder sent no data (it may never have accepted them): listener,
        #: index, ACK ts, ACK frame, first frame that shows it served or closed them.
        self.handshakes = array("q")

    def add(self, c: Connection) -> None:
        if c.proto != "tcp":
            return
        if c.ack_frame is not None and c.ack_ts is not None and not c.resp.data_bytes:
            cutoff = min(c.resp.fins[0] if c.resp.fins else _NEVER,
                         c.close_frame if c.close_frame is not None else _NEVER)
            self.handshakes.extend((self.names.endpoint(c.resp.addr, c.resp.port), c.index, c.ack_ts, c.ack_frame,
                                    cutoff))
        syns = _unanswered_syns(c)
        if syns is None:
            return
        orig_rst = next((p.ts for p in c.evidence if _from(c, p, "orig") and p.flags is not None
                         and p.flags & TCP_RST), None)
        if orig_rst is not None and orig_rst - syns[0].ts < 1_000_000_000:
            return  # the client stopped before an answer was due: no evidence
        flags = _LOOP if _is_loopback(c, self.info) else 0
        pred = 0
        if c.predecessor:
            f = _decode(c.pred_facts)
            if f is not None and f.hc is not None:
                flags |= _PRED_HALF_CLOSED
                pred = uid_index(c.predecessor)
        if orig_rst is not None:
            flags |= _ORIG_RST
        if c.orig.syn_cnt > _syns_kept(c):
            flags |= _SYNS_LEFT_OUT  # SYNs beyond the evidence kept: the count shown is a floor
        rec = self.records
        rec.extend((c.index, self.names.endpoint(c.resp.addr, c.resp.port),
                    self.names.endpoint(c.orig.addr, c.orig.port), flags, pred, orig_rst or 0,
                    c.resp.bad_checksums, len(syns)))
        rec.extend(p.no for p in syns)
        rec.extend(p.ts for p in syns)

    def finish(self, end: int, succeeded: set[int]) -> Iterator[Finding]:
        rec = self.records
        items: list[dict[str, Any]] = []
        i = 0
        while i < len(rec):
            index, lkey, ckey, flags, pred, orig_rst, bad, n = rec[i:i + 8]
            nos = list(rec[i + 8:i + 8 + n])
            ts = list(rec[i + 8 + n:i + 8 + 2 * n])
            i += 8 + 2 * n
            window_end = orig_rst if flags & _ORIG_RST else end
            if window_end - ts[0] < 1_000_000_000:
                continue  # the capture stopped before an answer was due: no evidence
            intervals = [round((b - a) / 1e9, 3) for a, b in zip(ts, ts[1:], strict=False)]
            last_gap = intervals[-1] if intervals else 1.0
            expected_next = ts[-1] + int(max(last_gap * 2, 1.0) * 1e9)
            # A lone SYN shows no schedule to have run out: only a successor (the retry) says the
            # client gave up then; otherwise the capture merely ended.
            gave_up = (end > expected_next + 500_000_000 and n > 1) or index in succeeded
            until = (expected_next if gave_up else end) - ts[0]
            items.append({"index": index, "lkey": lkey, "client": _ep_str(*self.names.split(ckey)), "nos": nos,
                          "ts": ts, "intervals": intervals, "gave_up": gave_up, "until": _sec(until),
                          "loopback": bool(flags & _LOOP), "schedule": _schedule(intervals),
                          "os_fit": _os_fit(intervals, gave_up),
                          "pred": pred if flags & _PRED_HALF_CLOSED else None, "bad_answers": bad,
                          "syns_left_out": bool(flags & _SYNS_LEFT_OUT)})
        self.records = array("q")
        waiting_for = {it["lkey"] for it in items if it["pred"] is None}
        handshakes: dict[int, list[tuple[int, int, int, int]]] = defaultdict(list)
        hs = self.handshakes
        for k in range(0, len(hs), 5):
            if hs[k] in waiting_for:
                handshakes[hs[k]].append((hs[k + 1], hs[k + 2], hs[k + 3], hs[k + 4]))
        self.handshakes = array("q")
        for lst in handshakes.values():
            lst.sort()
        per_listener: dict[tuple[int, str], list[dict[str, Any]]] = defaultdict(list)
        for it in sorted(items, key=lambda it: it["index"]):
            cause, it["cause_detail"] = _unanswered_cause(it, handshakes.get(it["lkey"], ()))
            per_listener[(it["lkey"], cause)].append(it)
        for (lkey, cause), group in per_listener.items():
            addr, port = self.names.split(lkey)
            yield _unanswered_finding(addr, port, cause, group)


def _unanswered_cause(it: dict[str, Any], handshakes: Any) -> tuple[str, dict[str, Any]]:
    if it["bad_answers"]:
        return "bad_checksum", {"answers_with_bad_checksum": it["bad_answers"]}
    if it["pred"] is not None:
        return "close_wait_collision", {"predecessor": uid_of(it["pred"])}
    # Handshakes to the same listener that completed while the application never served them.
    syn_no, syn_ts = it["nos"][0], it["ts"][0]
    waiting = [(o, frame) for o, ack_ts, frame, cutoff in handshakes
               if o != it["index"] and ack_ts <= syn_ts and cutoff >= syn_no]
    if waiting:
        return "accept_queue_full", {"established_not_accepted": [uid_of(o) for o, _ in waiting[:GROUP_LIST]],
                                     "established_not_accepted_count": len(waiting),
                                     "handshake_frames": [f for _, f in waiting[:GROUP_LIST]]}
    return "unknown", {}


def _unanswered_finding(addr: str, port: int, cause: str, items: list[dict[str, Any]]) -> Finding:
    items.sort(key=lambda it: it["nos"][0])
    first = items[0]
    loop = any(it["loopback"] for it in items)
    dest = _ep_str(addr, port)
    n = len(items)
    attempts = sum(len(it["nos"]) for it in items)
    frames: list[int] = []
    for it in items[:GROUP_LIST]:
        frames.extend(it["nos"][:16])
    per_conn = [{"uid": uid_of(it["index"]), "client": it["client"],
                 "attempts": len(it["nos"]), "intervals": it["intervals"], "schedule": it["schedule"],
                 "os_fit": it["os_fit"], "gave_up": it["gave_up"], "until_s": it["until"], "first_frame": it["nos"][0]}
                for it in items[:GROUP_LIST]]
    evidence: dict[str, Any] = {
        "attempts": len(first["nos"]),
        "intervals": first["intervals"],
        "schedule": first["schedule"],
        "os_fit": first["os_fit"],
        "until_s": first["until"],
        "gave_up": first["gave_up"],
        "loopback": loop,
        "cause": cause,
        "connections_affected": n,
        "syns_total": attempts,
        "per_connection": per_conn,
        "left_out": max(0, n - GROUP_LIST),
    }
    evidence.update(first["cause_detail"])
    conns_word = "connection attempt" if n == 1 else "connection attempts"
    schedule_txt = _schedule_text(first["intervals"], first["os_fit"])
    end_txt = (f"the client gave up after {first['until']:.1f} s" if first["gave_up"]
               else f"the capture ended {first['until']:.1f} s after the first SYN")
    cause_txt = {
        "accept_queue_full": (f"; likely cause: a full accept queue ({evidence.get('established_not_accepted_count')} "
                              f"completed handshake(s) to the same listener never served)"),
        "close_wait_collision": "; likely cause: the 4-tuple collides with a socket left in CLOSE_WAIT",
    }.get(cause, "")
    # SYNs beyond the packets kept as evidence are not listed: the counts are floors then.
    floor = "at least " if any(it["syns_left_out"] for it in items) else ""
    reply_txt = "got no reply at all"
    if cause == "bad_checksum":
        bad = sum(it["bad_answers"] for it in items)
        reply_txt = (f"got no reply with a valid checksum ({dest} answered {bad} time(s), every answer with a bad "
                     f"TCP checksum, which the client's stack drops)")
    summary = (f"{n} {conns_word} to {dest} sent {floor}{attempts} SYNs and {reply_txt}; the first sent "
               f"{'at least ' if first['syns_left_out'] else ''}{len(first['nos'])} SYNs with {schedule_txt} and "
               f"{end_txt}" + (" (on loopback)" if loop else "") + cause_txt + ".")
    frames += [f for f in evidence.get("handshake_frames", []) if f]
    if cause == "bad_checksum":
        base = ("The server did answer, but every answer reached the capture point with a wrong TCP checksum: "
                "the client's stack drops such a segment, so connect() waits and retries as if nothing had come "
                "back. ")
    elif loop:
        base = ("On loopback a packet cannot be lost, so an unanswered SYN is local socket state refusing "
                "it silently. ")
    else:
        base = ("No reply of any kind came back: the SYNs were lost or silently dropped before the server, or "
                "the server's answers were lost on the way back. ")
    if cause == "accept_queue_full":
        k = evidence["established_not_accepted_count"]
        explanation = base + (
            f"The same listener had just completed {k} other handshake(s) that its application never served "
            f"(no data, no close from the server): they sit in the accept queue, the queue is full, and the "
            f"kernel drops new SYNs while it stays full. The application is not calling accept() fast enough "
            f"(or the backlog is tiny). Check `ss -ltn 'sport = :{port}'` (Recv-Q = queued, Send-Q = backlog), "
            f"`nstat -az TcpExtListenOverflows TcpExtListenDrops`, and the listen() backlog against "
            f"`net.core.somaxconn`.")
    elif cause == "bad_checksum":
        explanation = base + (
            "The answers were corrupted between the server and the capture point: a faulty NIC, cable or switch "
            "port, or a middlebox (a NAT or load balancer) that rewrites addresses or ports without fixing the "
            "checksum. If the capture was taken on the server itself, its NIC fills in checksums after the "
            "capture point (checksum offload) and the answers were sound: `--no-checksums` analyzes the capture "
            "that way. Check `ethtool -S` error counters on the path and `nstat -az TcpInCsumErrors` on the client.")
    elif cause == "close_wait_collision":
        explanation = base + (
            "The same 4-tuple was used by an earlier connection that the server never closed (its socket is "
            "still in CLOSE_WAIT). Older kernels silently ignore a SYN that lands on such a socket, so connect() "
            "times out. Find the leak with `ss -tanp state close-wait`; see the reuse.peer_in_close_wait finding.")
    else:
        explanation = base + (
            "The capture holds no evidence of why. Check whether the server host saw the SYNs (capture there), "
            "firewall rules that DROP rather than reject (`iptables -S`, `nft list ruleset`), and routing on the "
            "return path." if not loop else
            "With no completed handshakes to the same listener in view, the usual suspects are a listener whose "
            "accept queue filled before the capture started (`ss -ltn`, `nstat -az TcpExtListenOverflows`), "
            "an iptables/nft DROP on lo, or a SYN landing on a socket left over from an earlier connection "
            "(`ss -tan state close-wait`).")
    # Graded by what it cost (catalogue): the connection failed (error) when the client's retries
    # ran out (three SYNs or more, then nothing) or on loopback, where nothing is lost by accident;
    # while the capture ended with the client still retrying, the failure is not shown: warning.
    failed = any(it["gave_up"] and len(it["nos"]) >= 3 for it in items)
    sev = "error" if loop or failed else "warning"
    evidence["connect_failed"] = failed
    return Finding("handshake.unanswered_syn", summary, explanation, frames, [uid_of(it["index"]) for it in items],
                   min(it["ts"][0] for it in items), max(it["ts"][-1] for it in items), evidence,
                   severity=sev)


# -- reuse.peer_in_close_wait and close.close_wait_leak ---------------------------------------

def _half_closed(c: Connection) -> _HalfClose | None:
    """If one side's FIN was ACKed and the other never sent one, who is stuck where."""
    if c.proto != "tcp":
        return None
    for closer, stuck, sname in ((c.orig, c.resp, "resp"), (c.resp, c.orig, "orig")):
        if closer.fin_raw is None or stuck.fin_cnt or stuck.rst_cnt:
            continue
        if stuck.tcp_state != CLOSE_WAIT or closer.tcp_state not in (FIN_WAIT_2, FIN_WAIT_1):
            continue
        fin_frame = closer.fins[0] if closer.fins else None
        fin_ack = None
        want = (closer.fin_raw + 1) & _MASK
        for p in c.evidence:
            if p.flags is not None and p.flags & TCP_ACK and p.ack == want and _from(c, p, sname):
                fin_ack = p
                break
        if fin_ack is None:
            continue
        fin_pkt = next((p for p in c.evidence if p.no == fin_frame), None)
        after = ((fin_ack.seq or 0) + (fin_ack.payload_len or 0)) & _MASK
        data_after = 0 < ((stuck.last_seq - after) & _MASK) < 0x80000000
        return _HalfClose(closer.addr, closer.port, closer.fin_raw, stuck.addr, stuck.port, stuck.last_seq, sname,
                          fin_frame, fin_ack.no, fin_ack.ts, fin_pkt.ts if fin_pkt is not None else fin_ack.ts,
                          data_after)
    return None


_CLOSED_STATES = frozenset((FIN_WAIT_1, FIN_WAIT_2, CLOSING, LAST_ACK, TIME_WAIT, CLOSED_S))


def _closed_before(c: Connection, addr: str, port: int) -> bool:
    """``c`` continues its predecessor (no SYN of its own: Zeek's timers split the conversation)
    and the predecessor shows that ``addr``:``port`` had already sent its FIN there."""
    if not c.predecessor or _syn_groups(c) or c.syn_frame is not None or c.synack_frame is not None:
        return False
    f = _decode(c.pred_facts)
    if f is None:
        return False
    other = (c.resp.addr, c.resp.port) if (c.orig.addr, c.orig.port) == (addr, port) else (c.orig.addr, c.orig.port)
    state = f.state_low if (addr, port) <= other else f.state_high
    return state in _CLOSED_STATES


class _Collisions:
    """reuse.peer_in_close_wait: a SYN on the tuple of a half-closed predecessor; its outcome shows
    in the successor (the retry), so each waits for it."""

    def __init__(self) -> None:
        self.per_server: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)

    def start(self, c: Connection) -> Pending | None:
        if c.proto != "tcp" or not c.predecessor:
            return None
        f = _decode(c.pred_facts)
        hc = f.hc if f is not None else None
        if hc is None:
            return None
        syn_groups = _syn_groups(c)
        if not syn_groups:
            return None
        syn = syn_groups[0][0]
        challenge = rst = None
        for p in c.evidence:
            if p.no <= syn.no or p.flags is None:
                continue
            if challenge is None and _from(c, p, "resp") and p.flags & TCP_ACK and not p.flags & (TCP_SYN | TCP_RST):
                challenge = p
            elif challenge is not None and _from(c, p, "orig") and p.flags & TCP_RST:
                rst = p
                break
        old_client_next = (hc.closer_fin_raw + 1) & _MASK
        item: dict[str, Any] = {
            "index": c.index, "uid": c.uid, "pred": c.predecessor, "client": _ep_str(c.orig.addr, c.orig.port),
            "hc": hc, "syn_no": syn.no, "syn_ts": syn.ts, "challenge": challenge, "rst": rst,
            "half_closed_s": _sec(syn.ts - hc.fin_ack_ts),
            "matches_old": challenge.ack == old_client_next if challenge is not None else None,
            "old_client_next": old_client_next, "old_server_next": hc.stuck_last_seq,
            "attempts": max((len(g) for g in syn_groups), default=1),
            # SYNs beyond the packets kept as evidence are not in the groups: the count is a floor then.
            "attempts_floor": c.orig.syn_cnt > _syns_kept(c)}

        def resolve(succ: _Succ | None, _end: int) -> list[Finding]:
            item["retry_syn"] = succ.retry_syn if succ is not None else None
            item["retry_synack"] = succ.retry_synack if succ is not None else None
            item["succ"] = succ.uid if succ is not None else None
            if challenge is not None and succ is not None and succ.retry_synack_ts is not None:
                item["outcome"] = "recovered"
                item["cost_s"] = _sec(succ.retry_synack_ts - item["syn_ts"])
            else:
                item["outcome"] = "reset_no_retry_seen" if challenge is not None else "unanswered"
                item["cost_s"] = None
            self.per_server[(hc.stuck_addr, hc.stuck_port)].append(item)
            return []

        return resolve

    def finish(self) -> Iterator[Finding]:
        for server, items in self.per_server.items():
            items.sort(key=lambda it: (it["syn_no"], it["index"]))
            yield _collision_finding(server, items)
        self.per_server = defaultdict(list)


def _collision_finding(server: tuple[str, int], items: list[dict[str, Any]]) -> Finding:
    it = items[0]
    n = len(items)
    srv = _ep_str(*server)
    client = it["client"]
    frames: list[int] = []
    for x in items[:GROUP_LIST]:
        frames += [f for f in (x["hc"].fin_frame, x["hc"].fin_ack_no, x["syn_no"]) if f]
        for k in ("challenge", "rst"):
            if x[k] is not None:
                frames.append(x[k].no)
        for k in ("retry_syn", "retry_synack"):
            if x[k] is not None:
                frames.append(x[k])
    recovered = [x for x in items if x["outcome"] == "recovered"]
    unanswered = [x for x in items if x["outcome"] == "unanswered"]
    first_txt = (f"the SYN from {client} (frame {it['syn_no']}) reused the 4-tuple of connection {it['pred']}, "
                 f"whose FIN (frame {it['hc'].fin_frame}) the server had ACKed (frame {it['hc'].fin_ack_no}) "
                 f"{it['half_closed_s']:.2f} s earlier without ever closing its side")
    if it["outcome"] == "recovered":
        how = (f"; the server answered with a challenge ACK (frame {it['challenge'].no}) carrying the old "
               f"connection's numbers (ack {it['challenge'].ack}"
               + (" = the old client FIN + 1" if it["matches_old"] else "") + ")"
               + (f", the client reset it (frame {it['rst'].no})" if it["rst"] is not None else "")
               + f" and the retry connected {it['cost_s']:.2f} s after the first SYN")
    elif it["outcome"] == "unanswered":
        how = f"; its {'at least ' if it['attempts_floor'] else ''}{it['attempts']} SYN(s) were never answered"
    else:
        how = f"; the server answered with a challenge ACK (frame {it['challenge'].no})"
    if n == 1:
        summary = f"A new connection collided with a socket left in CLOSE_WAIT on {srv}: {first_txt}{how}."
    else:
        summary = (f"{n} new connections collided with sockets left in CLOSE_WAIT on {srv} ({len(recovered)} "
                   f"recovered after a challenge ACK and a retry, {len(unanswered)} never answered); first: "
                   f"{first_txt}{how}.")
    explanation = (
        f"The server application at {srv} leaks sockets: it received the client's FIN (read() returned 0) but "
        f"never called close(), so the socket stays in CLOSE_WAIT for as long as the process lives. The client's "
        f"side (FIN_WAIT_2) expired after net.ipv4.tcp_fin_timeout, which freed its port; when a new connection "
        f"picks the same source port, its SYN lands on the stale socket instead of the listener. Current kernels "
        f"answer with a challenge ACK (RFC 5961) carrying the old connection's sequence numbers; the client "
        f"resets it, which finally kills the stale socket, and connects on its SYN retry about a second later "
        f"(a latency spike). Older kernels ignore the SYN, and connect() times out. "
        f"Fix the leak in the server (close the socket on EOF, check error paths). Confirm with "
        f"`ss -tanp state close-wait '( sport = :{server[1]} )'` on the server (the owning process is listed) and "
        f"watch the count grow. Shrinking tcp_fin_timeout or widening net.ipv4.ip_local_port_range only changes "
        f"how often the collision happens.")
    per = []
    for x in items[:GROUP_LIST]:
        per.append({
            "uid": x["uid"], "predecessor": x["pred"],
            "client": x["client"],
            "predecessor_fin_frame": x["hc"].fin_frame, "predecessor_fin_ack_frame": x["hc"].fin_ack_no,
            "half_closed_seconds": x["half_closed_s"], "syn_frame": x["syn_no"],
            "challenge_ack_frame": x["challenge"].no if x["challenge"] is not None else None,
            "challenge_ack": _pkt_view(x["challenge"]) if x["challenge"] is not None else None,
            "old_client_next_seq": x["old_client_next"], "old_server_next_seq": x["old_server_next"],
            "challenge_matches_old_connection": x["matches_old"],
            "rst_frame": x["rst"].no if x["rst"] is not None else None,
            "retry_syn_frame": x["retry_syn"],
            "retry_syn_ack_frame": x["retry_synack"],
            "outcome": x["outcome"], "delay_seconds": x["cost_s"], "syn_attempts": x["attempts"],
        })
    evidence: dict[str, Any] = dict(per[0])
    evidence.update({"collisions": n, "recovered": len(recovered), "unanswered": len(unanswered),
                     "per_collision": per, "left_out": max(0, n - GROUP_LIST), "server": srv})
    conns = []
    for x in items:
        conns += [x["pred"], x["uid"]] + ([x["succ"]] if x["succ"] is not None else [])
    return Finding("reuse.peer_in_close_wait", summary, explanation, frames, list(dict.fromkeys(conns)),
                   items[0]["hc"].fin_ts, max(x["syn_ts"] for x in items), evidence)


#: A server application closes on EOF within milliseconds: half-closed this long (from the ACK of
#: the peer's FIN, with nothing sent since but ACKs) is a socket left behind.
LEAK_SERVER_S = 5.0
#: A client (the connection's originator) whose server closed an idle connection notices lazily: a
#: browser or connection pool closes its side at its next use or sweep, seconds later (Chrome and
#: Firefox: 6-10 s seen; idle-browser). Only this long is a leak on the client side.
LEAK_CLIENT_S = 30.0
#: Once an endpoint shows the leak, its other sockets half-closed at least this long are counted too.
LEAK_LISTED_S = 1.0


class _Leaks:
    """close.close_wait_leak: how long a half-closed socket was held shows when its tuple was
    reused (the successor's first packet) or, failing that, when the capture ended.

    The evidence rule (catalogue): the peer's FIN seen and ACKed, the stuck side silent or only
    ACKing since, and either the tuple reused by a new connection (SYN) while it was half-closed, or
    the half-close held for LEAK_SERVER_S (server side) / LEAK_CLIENT_S (client side). A successor
    without a SYN is the same conversation split by Zeek's timers: it ends the visible half-close
    (its first packet), it is no reuse."""

    def __init__(self) -> None:
        self.groups: dict[tuple[str, int], list[tuple[int, _HalfClose, float, bool]]] = defaultdict(list)
        self.evidence: set[tuple[str, int]] = set()

    def start(self, c: Connection) -> Pending | None:
        hc = _half_closed(c)
        if hc is None or hc.data_after or _closed_before(c, hc.stuck_addr, hc.stuck_port):
            return None
        index = c.index

        def resolve(succ: _Succ | None, end: int) -> list[Finding]:
            reused = succ is not None and succ.retry_syn is not None
            held = _sec((succ.first_ts if succ is not None else end) - hc.fin_ack_ts)
            if held < LEAK_LISTED_S and not reused:
                return []  # a short half-close before the capture ended is normal (shutdown(SHUT_WR))
            key = (hc.stuck_addr, hc.stuck_port)
            floor = LEAK_CLIENT_S if hc.stuck_role == "orig" else LEAK_SERVER_S
            if reused or held >= floor:
                self.evidence.add(key)
            self.groups[key].append((index, hc, held, reused))
            return []

        return resolve

    def finish(self) -> Iterator[Finding]:
        for (addr, port), items in sorted(self.groups.items(), key=lambda kv: min(x[0] for x in kv[1])):
            if (addr, port) not in self.evidence:
                continue  # half-closed, but not long enough to say the application left it behind
            items.sort(key=lambda x: x[0])
            yield _leak_finding(addr, port, items)
        self.groups = defaultdict(list)
        self.evidence = set()


def _leak_finding(addr: str, port: int, items: list[tuple[int, _HalfClose, float, bool]]) -> Finding:
    n = len(items)
    srv = _ep_str(addr, port)
    longest = max(x[2] for x in items)
    n_reused = sum(1 for x in items if x[3])
    frames: list[int] = []
    for _i, hc, _, _ in items[:GROUP_LIST]:
        frames += [f for f in (hc.fin_frame, hc.fin_ack_no) if f]
    role = items[0][1].stuck_role
    summary = (f"{n} socket{'s' if n != 1 else ''} left in CLOSE_WAIT by {srv}: the peer's FIN was acknowledged "
               f"and {srv} never sent its own (longest {longest:.1f} s"
               + (f"; {n_reused} of them were hit by a new connection on the same 4-tuple" if n_reused else "")
               + ").")
    explanation = (
        f"CLOSE_WAIT means the kernel delivered the peer's FIN to the application at {srv} (read() returned 0) "
        f"and is waiting for it to call close(). A socket that stays there is leaked by the application: each "
        f"one holds a file descriptor and its 4-tuple, and a later connection reusing the tuple collides "
        f"with it. On the host: `ss -tanp state close-wait '( sport = :{port} )'` lists them with the owning "
        f"process; `ls -l /proc/PID/fd | wc -l` shows the descriptor leak growing. The fix is in the "
        f"application (close on EOF, including error paths); no sysctl removes CLOSE_WAIT sockets.")
    per = [{"uid": uid_of(i), "peer": _ep_str(hc.closer_addr, hc.closer_port),
            "fin_frame": hc.fin_frame, "fin_ack_frame": hc.fin_ack_no, "half_closed_seconds": held,
            "tuple_reused": r} for i, hc, held, r in items[:GROUP_LIST]]
    evidence = {"endpoint": srv, "endpoint_role": role, "sockets": n, "longest_half_closed_seconds": longest,
                "tuples_reused": n_reused, "per_connection": per, "left_out": max(0, n - GROUP_LIST)}
    return Finding("close.close_wait_leak", summary, explanation, frames, [uid_of(x[0]) for x in items],
                   min(x[1].fin_ts for x in items), max(x[1].fin_ack_ts for x in items), evidence)


# -- close.fin_unacknowledged, close.fin_retransmitted: one story per conversation ---------------

_ANY_RETRANS = RETRANSMISSION | FAST_RETRANSMISSION | SPURIOUS_RETRANSMISSION
_FIN_UNACKED = frozenset((FIN_WAIT_1, CLOSING, LAST_ACK))
#: FIN transmissions listed per story (the rest are counted).
_FINS_LISTED = 32


class _FinStory:
    """The FIN transmissions of one side over the fragments of one conversation."""

    __slots__ = ("sender", "peer", "fin_raw", "state", "frames", "times", "n", "uids", "acked", "clean", "index",
                 "pred")

    def __init__(self, sender: tuple[str, int], peer: tuple[str, int], fin_raw: int, state: str) -> None:
        self.sender, self.peer, self.fin_raw, self.state = sender, peer, fin_raw, state
        self.frames: list[int] = []
        self.times: list[int] = []
        self.n = 0
        self.uids: list[str] = []
        self.acked = False
        self.clean = True  # no retransmission in the conversation but this side's empty FINs
        self.index = 0
        self.pred: int | None = None  # the fragment this one continues (no SYN of its own)

    def merge(self, later: _FinStory) -> None:
        room = _FINS_LISTED - len(self.frames)
        self.frames += later.frames[:room]
        self.times += later.times[:room]
        self.n += later.n
        self.uids += later.uids
        self.acked = later.acked
        self.clean = self.clean and later.clean


class _FinStories:
    """A FIN resent after a timeout, sometimes for a minute, is one story about the closing of one
    conversation, however many connections Zeek's close timers cut it into (each resend after the
    timers expired opens a new 'connection' without a SYN on the same tuple: the tracker links them
    as predecessor and successor). The story is told once, and the per-fragment retransmission and
    timeout findings it explains are suppressed (``suppresses`` in the catalogue) when nothing but
    this FIN was resent in the conversation. Fragments are kept (only those with a FIN resent or
    unanswered, or continuing another) and joined at the end, whatever order they come in."""

    def __init__(self) -> None:
        self.parts: dict[tuple[int, tuple[str, int]], _FinStory] = {}

    def add(self, c: Connection) -> None:
        if c.proto != "tcp":
            return
        cont = (c.predecessor is not None and c.syn_frame is None and c.synack_frame is None
                and not _syn_groups(c))
        reset = bool(c.orig.rst_cnt or c.resp.rst_cnt)
        when = {p.no: p.ts for p in c.evidence}
        waits = {}
        copies = set()  # the same FIN captured twice (capture.duplicate_frames) was sent once
        for e in c.events:
            when.setdefault(e[0], e[1])
            if e[3] & DUPLICATE_FRAME:
                copies.add(e[0])
            elif e[3] & _ANY_RETRANS and e[6] & TCP_FIN:
                waits[e[0]] = e[1] - e[4]
        for ep, peer, is_orig in ((c.orig, c.resp, True), (c.resp, c.orig, False)):
            if ep.fin_raw is None or not (cont or ep.fin_cnt >= 2 or ep.tcp_state in _FIN_UNACKED):
                continue
            st = _FinStory((ep.addr, ep.port), (peer.addr, peer.port), ep.fin_raw, ep.tcp_state or "")
            st.index = c.index
            st.pred = uid_index(c.predecessor) if cont and c.predecessor else None
            st.uids = [c.uid]
            # When each FIN was sent: the evidence kept, the retransmission events, and for a FIN
            # that is neither (the first packets are refetched by the report, not kept), the next
            # FIN's event less its wait (the time since the previous transmission).
            fins = [no for no in ep.fins if no not in copies]
            for k, no in enumerate(fins):
                ts = when.get(no)
                if ts is None and k + 1 < len(fins):
                    ts = waits.get(fins[k + 1])
                if ts is None and no == c.first_frame:
                    ts = c.first_ts
                if ts is None:
                    st.clean = False  # a FIN we cannot place in time: not told
                    continue
                st.frames.append(no)
                st.times.append(ts)
            st.n = ep.fin_cnt - (len(ep.fins) - len(fins))
            st.acked = ep.tcp_state in (FIN_WAIT_2, TIME_WAIT) or (ep.tcp_state == CLOSED_S and not reset)
            if not st.acked and (reset or ep.tcp_state not in _FIN_UNACKED):
                st.clean = False  # a reset ended it: another story (reset.*), not told here
            if c.overflow or ep.fin_cnt > len(ep.fins):
                st.clean = False  # events or FINs beyond what was kept: not judged here
            for e in c.events:
                if (e[3] & _ANY_RETRANS and not e[3] & DUPLICATE_FRAME and not e[6] & TCP_SYN
                        and not (e[6] & TCP_FIN and e[2] == is_orig and not e[7])):
                    st.clean = False
            self.parts[(c.index, st.sender)] = st

    def finish(self) -> Iterator[Finding]:
        parts, self.parts = self.parts, {}
        later: dict[tuple[int, tuple[str, int]], _FinStory] = {}
        for st in parts.values():
            prev = parts.get((st.pred, st.sender)) if st.pred is not None else None
            if prev is not None and prev.fin_raw == st.fin_raw:
                later[(st.pred, st.sender)] = st  # type: ignore[index]
            else:
                st.pred = None  # a conversation's first fragment (as far as told here)
        chains: dict[int, list[_FinStory]] = defaultdict(list)
        for st in sorted(parts.values(), key=lambda st: st.index):
            if st.pred is not None:
                continue
            cur, nxt = st, later.get((st.index, st.sender))
            while nxt is not None:
                cur.merge(nxt)
                nxt = later.get((nxt.index, nxt.sender))
            chains[st.index].append(cur)
        for index in sorted(chains):
            # The side whose FIN went unacknowledged, else the one that sent it more often.
            st = max(chains[index], key=lambda st: (not st.acked, st.n))
            if st.clean and st.n >= 2 and len(st.frames) >= 2:
                yield _fin_story(st)


def _fin_story(st: _FinStory) -> Finding:
    who, peer = _ep_str(*st.sender), _ep_str(*st.peer)
    span = _sec(st.times[-1] - st.times[0])
    gaps = [_sec(b - a) for a, b in zip(st.times, st.times[1:], strict=False)]
    backoff = ", ".join(_fmt_s(g) for g in gaps[:12]) + (" ..." if len(gaps) > 12 else "")
    frag = len(st.uids)
    split = (f"; Zeek's close timers cut this one conversation into {frag} connections ({', '.join(st.uids)}), "
             f"told here once" if frag > 1 else "")
    state = {LAST_ACK: "LAST-ACK (it closed after its peer)", FIN_WAIT_1: "FIN-WAIT-1 (it closed first)",
             CLOSING: "CLOSING (both closed at once)"}.get(st.state, st.state)
    evidence: dict[str, Any] = {
        "sender": who, "peer": peer, "state": st.state, "fins_sent": st.n, "retransmissions": st.n - 1,
        "first_fin_frame": st.frames[0], "span_s": span, "intervals_s": gaps[:_FINS_LISTED],
        "acknowledged": st.acked, "connections_in_conversation": frag,
    }
    if not st.acked:
        summary = (f"{who} sat in {state}: its FIN (frame {st.frames[0]}) was sent {st.n} times over "
                   f"{_fmt_s(span)} ({st.n - 1} retransmissions, {backoff} apart) and never ACKed by {peer}{split}.")
        explanation = (
            f"Every byte of the conversation was delivered and acknowledged; only the closing handshake failed: "
            f"{who}'s FIN drew no ACK, so its kernel resent it with exponential back-off until it gave up "
            f"(tcp_orphan_retries for a socket the application has closed, tcp_retries2 otherwise) and freed the "
            f"socket. Either {peer} is gone (powered off or unplugged: a host that is up answers a FIN with an ACK, "
            f"or with a RST once its socket is gone), or its ACKs are dropped on the way back, typically by a "
            f"stateful firewall or NAT that removed the connection's state after the first FIN. Nothing was lost "
            f"for the applications; a LAST-ACK or FIN-WAIT-1 socket is held until the retries run out. Check "
            f"`ss -tan state last-ack state fin-wait-1` on {st.sender[0]}, the firewall's FIN/close timeouts "
            f"(`nf_conntrack_tcp_timeout_*`), or capture at {st.peer[0]} to see whether the FINs arrive and are "
            f"answered.")
        fid, sev = "close.fin_unacknowledged", "notice"
    else:
        summary = (f"{who} sent its FIN (frame {st.frames[0]}) {st.n} times ({backoff} apart) before {peer} "
                   f"ACKed it{split}: the connection closed normally.")
        explanation = (
            f"Nothing but {who}'s empty FIN was resent, and it was acknowledged in the end: the close took "
            f"{_fmt_s(span)} longer than it had to, and no data was involved. A resend microseconds after the "
            f"first is a stack's habit (macOS and BSD resend the FIN on their peer's FIN), a resend after a "
            f"timeout a lost FIN or ACK.")
        fid, sev = "close.fin_retransmitted", "info"
    return Finding(fid, summary, explanation, list(st.frames), list(st.uids), st.times[0], st.times[-1], evidence,
                   severity=sev)


# -- handshake.refused ---------------------------------------------------------------------------

class _Refused:
    """Refused attempts as rows of ints (a SYN scan over a million tuples is a million of them):
    index, destination, SYN frame, RST frame, SYN ts, RST ts, RST TTL + 1 and MAC number + 1."""

    WIDTH = 7

    def __init__(self, names: Names) -> None:
        self.names = names
        self.rows = array("q")

    def add(self, c: Connection) -> None:
        if c.proto != "tcp" or c.synack_frame is not None:
            return
        for syns in _syn_groups(c):
            syn = syns[0]
            want = (syn.seq + 1) & _MASK  # type: ignore[operator]
            rst = next((p for p in c.evidence if p.no > syn.no and _from(c, p, "resp") and p.flags is not None
                        and p.flags & TCP_RST and p.flags & TCP_ACK and p.ack == want), None)
            if rst is not None:
                mark = (rst.ttl + 1 if rst.ttl is not None else 0) | (
                    (self.names.id(rst.src_mac) + 1) << 16 if rst.src_mac else 0)
                self.rows.extend((c.index, self.names.endpoint(c.resp.addr, c.resp.port), syn.no, rst.no, syn.ts,
                                  rst.ts, mark))
                break

    def finish(self) -> Iterator[Finding]:
        rows, w = self.rows, self.WIDTH
        self.rows = array("q")
        order = sorted(range(len(rows) // w), key=lambda r: rows[r * w + 1] << 64 | rows[r * w])
        start = 0
        while start < len(order):
            key = rows[order[start] * w + 1]
            stop = start
            while stop < len(order) and rows[order[stop] * w + 1] == key:
                stop += 1
            group = [rows[r * w:r * w + w] for r in order[start:stop]]
            start = stop
            yield self._finding(*self.names.split(key), group)

    def _finding(self, addr: str, port: int, items: list[array[int]]) -> Finding:
        n = len(items)
        dest = _ep_str(addr, port)
        frames = []
        for _, _, syn_no, rst_no, _, _, _ in items[:GROUP_LIST]:
            frames += [syn_no, rst_no]
        ttls = sorted({m & 0xFFFF for *_, m in items if m & 0xFFFF})
        ttls = [t - 1 for t in ttls]
        macs = sorted({self.names.names[(m >> 16) - 1] for *_, m in items if m >> 16})
        delays = [_sec(rst_ts - syn_ts) for _, _, _, _, syn_ts, rst_ts, _ in items]
        summary = (f"{n} connection attempt{'s' if n != 1 else ''} to {dest} {'were' if n != 1 else 'was'} refused: "
                   f"each SYN was answered only by a RST (typically {_fmt_s(sorted(delays)[len(delays) // 2])} later).")
        explanation = (
            f"A RST in answer to a SYN means the host that answered has no socket listening on port {port} "
            f"(or a firewall rule rejects with tcp-reset). Check on the server: `ss -ltnp 'sport = :{port}'` "
            f"(is the service running and bound to {addr} or 0.0.0.0?), and `iptables -S | grep -i reject`. "
            f"If the service does listen there, the RST came from another device that owns the address: compare "
            f"the RST's TTL ({', '.join(map(str, ttls)) or '?'}) and source MAC ({', '.join(macs) or 'n/a'}) with "
            f"the server's.")
        evidence = {"destination": dest, "refused": n, "rst_ttl": ttls, "rst_src_mac": macs,
                    "rst_delay_s": delays[:GROUP_LIST], "left_out": max(0, n - GROUP_LIST)}
        return Finding("handshake.refused", summary, explanation, frames, [uid_of(it[0]) for it in items],
                       min(it[4] for it in items), max(it[5] for it in items), evidence)
