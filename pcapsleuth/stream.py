"""Streaming analysis: memory that follows the connections open at once, not the capture's length.

The tracker hands each connection over as soon as Zeek's timers have expired it
(:meth:`Tracker._sweep`); :class:`StreamSink` runs the detectors on it, writes its JSON line to a
temporary spill file and lets it go. Findings are spilled the same way. At the end the JSON document
is merged from the spills in the order the in-memory analysis writes it (connections by first frame,
findings by severity and first frame): byte for byte the same document
(``tests/test_stream.py`` checks every sample and corpus capture).
"""

from __future__ import annotations

import json
import struct
import tempfile
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from .packet import Packet

from .capture import CaptureInfo
from .detectors import Detection, suppress
from .digest import ConnDigest, ConnRecord
from .findings import Finding
from .tracker import Connection, uid_index, uid_of
from .util import json_safe, pack_ints, unpack_ints

__all__ = ["ReportView", "StreamSink", "StreamedResult"]

_encode = json.JSONEncoder(ensure_ascii=False).encode

#: FindingRef's numbers: sort key (severity rank, first frame, order found), first and last
#: timestamps (``_NO_TS`` for None), place and length in the spill.
_NUMS = struct.Struct("<qqqqqqq")
_NO_TS = -(2**63)

#: A light finding (one the report only counts and groups) keeps the uids of this many connections.
_LIGHT_CONNS = 500

#: A streaming analysis for a report keeps the connection objects themselves (with their
#: evidence packets) while there are at most this many: a small capture's report is then drawn
#: from exactly what the in-memory analysis has. Past it they are let go, and read back from the
#: spill when the report needs one.
KEEP_OBJECTS = 1000


class _Spill:
    """Encoded lines in a temporary file, read back by (offset, length)."""

    def __init__(self) -> None:
        # Lives as long as the analysis result (closed by StreamedResult.close), not one block.
        self.file: IO[bytes] = tempfile.TemporaryFile(prefix="pcapsleuth-")  # noqa: SIM115
        self.pos = 0

    def write(self, text: str) -> tuple[int, int]:
        data = text.encode()
        at = self.pos
        self.file.write(data)
        self.pos += len(data)
        return at, len(data)

    def read(self, at: int, length: int) -> str:
        f = self.file
        f.seek(at)
        return f.read(length).decode()

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()


class FindingRef:
    """A spilled finding: what sorting, suppression, ``--fail-on`` and the summary need; the rest
    (:meth:`to_dict`, :attr:`summary`) is read back from the spill.

    A busy capture can raise one finding per connection (a reset each), so a reference is small:
    its numbers packed in one ``bytes`` (sort key, timestamps, place in the spill), the id,
    severity and title strings shared with every other finding of its kind, and one connection
    number as an int rather than an array.
    """

    __slots__ = ("id", "severity", "title", "_nums", "_conns", "spill")

    def __init__(self, f: Finding, seq: int, spill: _Spill) -> None:
        self.id = f.id
        self.severity = f.severity
        self.title = f.title
        rank, frame, _ = f.sort_key()
        at, length = spill.write(json_safe(_encode(f.to_dict())))
        self._nums = pack_ints(_NUMS, (rank, frame, seq, _NO_TS if f.first_ts is None else f.first_ts,
                                       _NO_TS if f.last_ts is None else f.last_ts, at, length))
        conns = [uid_index(u) for u in f.connections]
        self._conns: int | array[int] = conns[0] if len(conns) == 1 else array("q", conns)
        self.spill = spill

    def _numbers(self) -> tuple[int, ...]:
        return unpack_ints(_NUMS, self._nums)

    @property
    def key(self) -> tuple[int, int, str, int]:
        """The order of ``detect``'s findings: severity, first frame, id, then order of finding."""
        rank, frame, seq = self._numbers()[:3]
        return (rank, frame, self.id, seq)

    @property
    def first_ts(self) -> int | None:
        ts = self._numbers()[3]
        return None if ts == _NO_TS else ts

    @property
    def last_ts(self) -> int | None:
        ts = self._numbers()[4]
        return None if ts == _NO_TS else ts

    @property
    def conns(self) -> Sequence[int]:
        """The finding's connection numbers (``uid_index`` of its uids)."""
        c = self._conns
        return (c,) if isinstance(c, int) else c

    def finding(self, full: bool = True) -> Finding:
        """The finding again: in full from the spill, or (``full=False``) a light one with what
        ordering, grouping and connection lookups need (first frame, first connections, title)."""
        if full:
            d = self.to_dict()
            return Finding(d["id"], d["summary"], d["explanation"], d["frames"], d["connections"], self.first_ts,
                           self.last_ts, d["evidence"], d["severity"], d["title"])
        return Finding(self.id, "", "", [self.key[1]], [uid_of(i) for i in self.conns[:_LIGHT_CONNS]],
                       self.first_ts, self.last_ts, {}, self.severity, self.title)

    def text(self) -> str:
        at, length = self._numbers()[5:]
        return self.spill.read(at, length)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(self.text())  # type: ignore[no-any-return]

    @property
    def summary(self) -> str:
        return str(self.to_dict()["summary"])


def _ref_conns(ref: FindingRef) -> Sequence[int]:
    return ref.conns


def _ref_key(ref: FindingRef) -> tuple[int, int, str, int]:
    return ref.key


class StreamSink:
    """Takes finished connections from a streaming tracker (:class:`pcapsleuth.tracker.RetireSink`)."""

    def __init__(self, info: CaptureInfo, *, keep: int | None = None) -> None:
        self.info = info
        self.detection = Detection(info)
        #: What a report needs of every connection, in a few bytes each.
        self.digest = ConnDigest()
        #: The connection objects themselves while there are at most ``keep`` (then None).
        self.keep = KEEP_OBJECTS if keep is None else keep
        self.kept: dict[int, Connection] | None = {}
        self._conns = _Spill()
        self._findings = _Spill()
        self._conn_at = array("q")
        self._conn_len = array("I")  # (a JSON line is far below 4 GiB)
        self._successor: dict[str, str] = {}
        self.refs: list[FindingRef] = []
        self.swept = 0  # connections the tracker's sweep retired before the capture ended

    # -- RetireSink -------------------------------------------------------------------------------
    def retired(self, conn: Connection) -> Any:
        facts = self.detection.pred_facts(conn)
        for f in self.detection.add(conn):
            self._finding(f)
        d = conn.to_dict()
        at, length = self._conns.write(_encode(d))
        i = conn.index
        if i >= len(self._conn_at):
            grow = max(i + 1 - len(self._conn_at), len(self._conn_at))
            self._conn_at.extend(array("q", bytes(8 * grow)))
            self._conn_len.extend(array("I", bytes(4 * grow)))
        self._conn_at[i] = at
        self._conn_len[i] = length
        self.digest.add(conn, d["conn_state"])
        if self.kept is not None:
            if len(self.kept) < self.keep:
                self.kept[i] = conn
            else:
                self.kept = None
        return facts

    def linked(self, old_uid: str, new_uid: str) -> None:
        self._successor[old_uid] = new_uid
        if self.kept is not None and (old := self.kept.get(uid_index(old_uid))) is not None:
            old.successor = new_uid

    def _finding(self, f: Finding) -> None:
        self.refs.append(FindingRef(f, len(self.refs), self._findings))

    # -- the end ----------------------------------------------------------------------------------
    def finish(self) -> list[FindingRef]:
        """The findings after the detectors' last word, suppressed and sorted like ``detect``."""
        for f in self.detection.iter_finish():
            self._finding(f)
        self._conns.flush()
        self._findings.flush()
        out = suppress(self.refs, _ref_conns)
        out.sort(key=_ref_key)
        self.refs = out
        return out

    def connection_lines(self) -> Iterator[str]:
        """Each connection's JSON, in order of first frame, successors linked after the fact."""
        for i in range(1, len(self._conn_at)):
            text = self.connection_line(i)
            if text is not None:
                yield text

    def connection_line(self, i: int) -> str | None:
        """The JSON of connection number ``i`` (``None`` when there is none)."""
        if not 0 < i < len(self._conn_at) or not self._conn_len[i]:
            return None
        text = self._conns.read(self._conn_at[i], self._conn_len[i])
        succ = self._successor
        if succ:
            uid = uid_of(i)
            if uid in succ:
                d = json.loads(text)
                d["successor"] = succ[uid]
                text = _encode(d)
        return text

    def close(self) -> None:
        self._conns.close()
        self._findings.close()


class StreamedResult:
    """The outcome of a streaming analysis: JSON, terminal summary, findings for ``--fail-on``.

    Unlike :class:`pcapsleuth.analysis.AnalysisResult` it holds no connection objects: the
    connections exist only as JSON lines in a temporary file (closed with the result).
    """

    def __init__(self, capture: CaptureInfo, sink: StreamSink, findings: list[FindingRef],
                 tracking: dict[str, int]) -> None:
        self.capture = capture
        self.sink = sink
        self.findings = findings
        self.tracking = tracking

    def write_json(self, fp: TextIO) -> None:
        from .analysis import write_document

        write_document(fp, self.capture, self.tracking, self.sink.connection_lines(),
                       (ref.text() for ref in self.findings))

    def summary_text(self) -> str:
        from .summary import capture_summary

        digest = self.sink.digest
        return capture_summary(self.capture, None, self.findings,  # type: ignore[arg-type]
                               conn_states=(digest.n, Counter(dict(digest.state_counts("tcp")))))

    def report_view(self, full: Callable[[list[FindingRef]], Iterable[int]] | None = None) -> ReportView:
        """What the HTML report and the Markdown summary are drawn from. ``full`` picks the
        findings read back in full (by position in :attr:`findings`); the others are light
        (:meth:`FindingRef.finding`). Default: all."""
        wanted = set(range(len(self.findings)) if full is None else full(self.findings))
        findings = [ref.finding(i in wanted) for i, ref in enumerate(self.findings)]
        return ReportView(self.capture, self.tracking, findings, self.sink)

    def close(self) -> None:
        self.sink.close()

    def __enter__(self) -> StreamedResult:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ReportView:
    """A streamed analysis as the report sees it: the :class:`pcapsleuth.analysis.AnalysisResult`
    interface without the list of connections (``digest``, ``connection(uid)``, ``evidence_of(uid)``).

    Connections are the kept objects of a small capture, or read back from the spill as
    :class:`pcapsleuth.digest.ConnRecord` (without packets) when the report asks for one.
    """

    def __init__(self, capture: CaptureInfo, tracking: dict[str, int], findings: list[Finding],
                 sink: StreamSink) -> None:
        self.capture = capture
        self.tracking = tracking
        self.findings = findings
        self.digest: ConnDigest = sink.digest
        self._sink = sink
        self._cache: dict[str, Connection | ConnRecord | None] = {}

    def connection(self, uid: str) -> Connection | ConnRecord | None:
        c = self._cache.get(uid, False)
        if c is not False:
            return c  # type: ignore[return-value]
        i = uid_index(uid) if uid[1:].isdigit() else 0
        kept = self._sink.kept
        if kept is not None:
            c = kept.get(i)
        else:
            text = self._sink.connection_line(i)
            c = None if text is None else ConnRecord(json.loads(text), i)
        self._cache[uid] = c
        return c

    def evidence_of(self, uid: str) -> Sequence[Packet]:
        """Only kept connections have packets in memory; a record read back has none."""
        c = self.connection(uid) if self._sink.kept is not None else None
        return c.evidence if c is not None else ()
