"""What the report and the summaries need of every connection, in a few bytes each.

A report shows 500 connection rows, a timeline and a few counts, however many connections the
capture has. :class:`ConnDigest` keeps just that for all of them (first timestamp, Zeek
``conn_state`` and protocol: ten bytes a connection, plus the top listeners and talkers), so a
streaming analysis can release the connections themselves and still draw the same report.
:class:`ConnRecord` is a connection read back from its JSON line: the attributes of
:class:`pcapsleuth.tracker.Connection` that the report and the drawings use, without the packets
(those are read again from the capture file).

Both analysis paths build their report through these (``AnalysisResult.digest``,
``StreamedResult.report_view``), so the in-memory and the streaming reports agree.
"""

from __future__ import annotations

import datetime as _dt
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .packet import Packet
    from .tracker import Connection

__all__ = ["ConnDigest", "ConnRecord", "TopCounter", "parse_iso_ns"]


def parse_iso_ns(text: str | None) -> int | None:
    """The inverse of :func:`pcapsleuth.util.iso_ts`: ``...T12:00:00.000000001Z`` -> nanoseconds."""
    if text is None:
        return None
    head, _, frac = text.rstrip("Z").partition(".")
    sec = int(_dt.datetime.fromisoformat(head).replace(tzinfo=_dt.timezone.utc).timestamp())
    return sec * 1_000_000_000 + int((frac + "000000000")[:9])


class TopCounter:
    """Counts per key (with a second count of the "bad" ones), holding at most ``cap`` keys.

    Past ``cap`` the less common half is dropped and the counter says it is :attr:`approximate`:
    a scan over a million ports must not grow one dict entry per port. The top entries stay
    right unless a key's count was dropped while it was small and grew large afterwards.
    """

    __slots__ = ("cap", "counts", "dropped")

    def __init__(self, cap: int = 100_000) -> None:
        self.cap = cap
        self.counts: dict[Any, list[int]] = {}
        self.dropped = 0  # keys dropped so far

    def add(self, key: Any, bad: bool = False) -> None:
        c = self.counts.get(key)
        if c is None:
            c = self.counts[key] = [0, 0]
            if len(self.counts) > self.cap:
                self._prune()
                c = self.counts.setdefault(key, [0, 0])
        c[0] += 1
        if bad:
            c[1] += 1

    def _prune(self) -> None:
        keep = sorted(self.counts.items(), key=lambda kv: -kv[1][0])[: self.cap // 2]
        self.dropped += len(self.counts) - len(keep)
        self.counts = dict(keep)

    @property
    def approximate(self) -> bool:
        return self.dropped > 0

    def top(self, n: int) -> list[tuple[Any, int, int]]:
        """The ``n`` most common: (key, count, bad count), ties by key (never by arrival order)."""
        items = sorted(self.counts.items(), key=lambda kv: (-kv[1][0], _sortable(kv[0])))
        return [(k, c[0], c[1]) for k, c in items[:n]]

    def distinct(self) -> int:
        """Distinct keys seen (a lower bound once :attr:`approximate`: dropped keys that came back
        count once)."""
        return len(self.counts) + self.dropped


def _sortable(key: Any) -> tuple[tuple[int, int | str], ...]:
    """A key's sort order for ties: numbers as numbers (port 2 before port 10), None first."""
    parts = key if isinstance(key, tuple) else (key,)
    return tuple((0, 0) if k is None else (1, k) if isinstance(k, int) else (2, str(k)) for k in parts)


def _listener_key(c: Connection | ConnRecord) -> tuple[str, int | None, str]:
    return (c.resp.addr, c.resp.port, c.proto)


class ConnDigest:
    """Per connection (by its index, the number in its uid): first timestamp, ``conn_state`` and
    protocol; over all: the ``conn_state`` counts, listeners (responder address, port, protocol)
    and talkers (originator address)."""

    def __init__(self) -> None:
        self.n = 0
        self.first_ts = array("q")
        self.state = array("B")  # code into self.state_names; 0 = no connection of that index
        self.proto = array("B")
        self.state_names: list[str] = [""]
        self.proto_names: list[str] = [""]
        self._codes: dict[str, int] = {}
        self._proto_codes: dict[str, int] = {}
        self.states: Counter[tuple[str, str]] = Counter()  # (conn_state, protocol) -> connections
        self.listeners = TopCounter()
        self.talkers = TopCounter()
        #: A reused 4-tuple's chain (index + 1 of the predecessor and the successor; 0: none), made
        #: at the first link: the report counts and walks a chain of 100,000 reuses in these
        #: arrays instead of reading each connection back from the spill.
        self._pred: array[int] | None = None
        self._succ: array[int] | None = None

    @classmethod
    def of(cls, conns: Iterable[Connection]) -> ConnDigest:
        d = cls()
        for c in conns:
            d.add(c, c.conn_state)
        return d

    def add(self, c: Connection | ConnRecord, state: str) -> None:
        i = c.index
        if i >= len(self.first_ts):
            grow = max(i + 1 - len(self.first_ts), len(self.first_ts), 1024)
            self.first_ts.extend(array("q", bytes(8 * grow)))
            self.state.extend(array("B", bytes(grow)))
            self.proto.extend(array("B", bytes(grow)))
            if self._pred is not None and self._succ is not None:
                self._pred.extend(array("i", bytes(4 * grow)))
                self._succ.extend(array("i", bytes(4 * grow)))
        self.n += 1
        self.first_ts[i] = c.first_ts
        self.state[i] = self._code(self._codes, self.state_names, state)
        self.proto[i] = self._code(self._proto_codes, self.proto_names, c.proto)
        self.states[state, c.proto] += 1
        self.listeners.add(_listener_key(c), state != "SF")
        self.talkers.add(c.orig.addr)
        pred = c.predecessor
        if pred is not None and pred[1:].isdigit():
            self._link(int(pred[1:]), i)

    def _link(self, pred: int, succ: int) -> None:
        if not 0 <= pred < succ:  # a successor starts later: its number is higher (no cycle to walk)
            return
        if self._pred is None or self._succ is None:
            self._pred = array("i", bytes(4 * len(self.first_ts)))
            self._succ = array("i", bytes(4 * len(self.first_ts)))
        self._pred[succ] = pred + 1
        self._succ[pred] = succ + 1

    def chain(self, i: int) -> Iterator[int]:
        """The indexes of the connections on connection ``i``'s 4-tuple, ``i`` first, then its
        predecessors (nearest first), then its successors: ints from the digest, no connection
        read, nothing kept (the numbers only go down, then up: no cycle)."""
        yield i
        yield from self.predecessors(i)
        yield from self.successors(i)

    def predecessors(self, i: int) -> Iterator[int]:
        """The connections before ``i`` on its 4-tuple, nearest first."""
        yield from self._walk(self._pred, i)

    def successors(self, i: int) -> Iterator[int]:
        """The connections after ``i`` on its 4-tuple, nearest first."""
        yield from self._walk(self._succ, i)

    @staticmethod
    def _walk(links: array[int] | None, i: int) -> Iterator[int]:
        if links is None or not 0 <= i < len(links):
            return
        j = links[i] - 1
        while j >= 0:
            yield j
            j = links[j] - 1

    def chain_length(self, i: int) -> int:
        """How many connections share connection ``i``'s 4-tuple, one after another (1: only it)."""
        return sum(1 for _ in self.chain(i))

    @staticmethod
    def _code(codes: dict[str, int], names: list[str], name: str) -> int:
        code = codes.get(name)
        if code is None:
            if len(names) >= 255:
                raise ValueError(f"more than 254 distinct values in the connection digest ({name!r})")
            code = codes[name] = len(names)
            names.append(name)
        return code

    def indexes(self, skip_state: str | None = None) -> Iterator[int]:
        """Connection indexes in order (of first frame), optionally without those in ``skip_state``."""
        skip = self._codes.get(skip_state, -1) if skip_state is not None else -1
        for i, code in enumerate(self.state):
            if code and code != skip:
                yield i

    def state_counts(self, proto: str | None = None) -> list[tuple[str, int]]:
        """``conn_state`` counts (of one protocol's connections, or all), most common first, ties by name."""
        counts: Counter[str] = Counter()
        for (state, pr), n in self.states.items():
            if proto is None or pr == proto:
                counts[state] += n
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))

    def starts(self) -> Iterator[tuple[str, str, list[int]]]:
        """(conn_state, protocol, first timestamps) of every connection, grouped."""
        groups: dict[tuple[int, int], list[int]] = {}
        for ts, st, pr in zip(self.first_ts, self.state, self.proto, strict=True):
            if st:
                groups.setdefault((st, pr), []).append(ts)
        for (st, pr), ts_list in sorted(groups.items()):
            yield self.state_names[st], self.proto_names[pr], ts_list


class _EndRecord:
    """One side of a :class:`ConnRecord` (the :class:`pcapsleuth.tracker.Endpoint` attributes the
    report uses)."""

    __slots__ = ("addr", "port", "pkts", "data_bytes", "tcp_state", "isn", "syn_opts")

    def __init__(self, d: dict[str, Any], side: str) -> None:
        self.addr: str = d[f"{side}_h"]
        self.port: int | None = d[f"{side}_p"]
        self.pkts: int = d[f"{side}_pkts"]
        self.data_bytes: int = d[f"{side}_bytes"]
        self.tcp_state: str | None = d[f"{side}_tcp_state"]
        self.isn: int | None = d[f"{side}_isn"]
        opts: dict[str, Any] = {}
        for key in ("mss", "wscale"):
            if d.get(f"{side}_{key}") is not None:
                opts[key] = d[f"{side}_{key}"]
        self.syn_opts = opts or None

    def size(self, peer: object) -> int:
        return self.data_bytes


class ConnRecord:
    """A finished connection read back from its JSON line (``connections[]``)."""

    __slots__ = ("d", "uid", "index", "proto", "orig", "resp", "first_frame", "last_frame", "first_ts",
                 "last_ts", "conn_state", "history_str", "predecessor", "successor")

    #: No packets are kept: the report reads them again from the capture.
    evidence: tuple[Packet, ...] = ()

    def __init__(self, d: dict[str, Any], index: int) -> None:
        self.d = d
        self.uid: str = d["uid"]
        self.index = index
        self.proto: str = d["proto"]
        self.orig = _EndRecord(d, "orig")
        self.resp = _EndRecord(d, "resp")
        self.first_frame: int = d["first_frame"]
        self.last_frame: int = d["last_frame"]
        self.first_ts = parse_iso_ns(d["first_ts"]) or 0
        self.last_ts = parse_iso_ns(d["last_ts"]) or 0
        self.conn_state: str = d["conn_state"]
        self.history_str: str = d["history"]
        self.predecessor: str | None = d.get("predecessor")
        self.successor: str | None = d.get("successor")

    @property
    def transitions(self) -> list[tuple[int, int, str, str]]:
        """``Connection.transitions``: (frame, ts, side, state), read when asked for (a ladder)."""
        return [(t["frame"], parse_iso_ns(t["ts"]) or 0, t["side"], t["state"])
                for t in self.d.get("transitions") or ()]

    def to_dict(self) -> dict[str, Any]:
        return self.d
