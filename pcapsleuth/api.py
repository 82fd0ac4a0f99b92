"""The Python and Jupyter API: :func:`analyze` and the :class:`Analysis` it returns.

>>> import pcapsleuth as ps                                     # doctest: +SKIP
>>> a = ps.analyze("samples/incidents/closewait-reuse.pcap")    # doctest: +SKIP
>>> a                                                           # doctest: +SKIP
<Analysis closewait-reuse.pcap: 17 frames, 3 connections, 2 findings>
>>> a.findings[["id", "severity", "frames"]]                    # doctest: +SKIP
>>> a.connection("C000002").states                              # doctest: +SKIP
>>> a.plot_ladder(a.finding(0))                                 # doctest: +SKIP

The analysis comes out as pandas DataFrames with explicit dtypes that hold even when a frame is
empty (:data:`DTYPES` lists them):

=================  ==================================================================================
``connections``    one row per connection; the columns are the keys of the JSON ``connections[]``
``findings``       one row per finding; the columns are the keys of the JSON ``findings[]``
``events``         one row per per-segment analysis flag (retransmission, duplicate_ack, zero_window ...)
``packets``        every frame of the capture, decoded on first access (one more pass over the file)
=================  ==================================================================================

Column rules: timestamps are ``datetime64[ns, UTC]``; states, flags, severities and other
small vocabularies are categoricals whose categories are the known values (plus any other value
seen), so empty frames and several captures share them; frame numbers are ``int64``, ports
``UInt16``; optional integers use pandas' nullable integer types (``<NA>``, never a float); text
is the ``string`` dtype. A JSON object with fixed keys (``orig_rtt``, ``resp_rtt``) is flattened
into one column per key named like its JSON path (``orig_rtt.avg``); lists and objects with
varying keys (``transitions``, ``weirds``, ``analysis``, ``evidence``, a finding's ``frames``)
stay as they are in the JSON, in ``object`` columns. Several captures (a list) add a categorical
``vantage`` column first: the capture's file stem.

The row index of ``findings`` is what :meth:`Analysis.finding` takes, and ``uid`` is what
:meth:`Analysis.connection` takes; both also accept a row (``a.finding(a.findings.iloc[0])``).

No asyncio anywhere: the fast engine is plain Python, and the tshark engine runs pyshark in a
worker thread with its own event loop, so both work inside Jupyter's running loop.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import importlib
import inspect
import io
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Union, overload

import numpy as np
import pandas as pd

from .analysis import AnalysisResult, analyze_capture
from .errors import CaptureNotFoundError
from .findings import SEVERITIES, Finding, catalog
from .packet import Cksum, Direction, Frag, Packet, flags_str
from .progress import Progress, ProgressCallback, auto_mode
from .reader import MAX_EXPANSION
from .tcpanalysis import DUPLICATE_ACK, FLAG_NAMES, RTO
from .tracker import MAX_CONNECTIONS, EndpointState, counted_bits
from .util import no_cyclic_gc

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .capture import CaptureInfo
    from .tracker import Connection

__all__ = ["DTYPES", "Analysis", "ConnectionView", "FindingView", "analyze"]

#: What :func:`analyze` reads: a path, a :class:`pathlib.Path`, bytes, or a binary file object.
CaptureInput = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, BinaryIO, IO[bytes]]

#: Packets of one connection read for :attr:`ConnectionView.packets` (the first ones).
CONNECTION_PACKETS = 200_000


# -- dtypes ------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Categories:
    """A categorical column: the known values first (in this order), then any other value seen."""

    known: tuple[str, ...] = ()
    ordered: bool = False

    def __str__(self) -> str:
        return "category" + (f" ({', '.join(self.known)})" if self.known else "")


_TS = "datetime64[ns, UTC]"
_TS_NS = "datetime64[ns, UTC] from ns"  # integer nanoseconds in, the same dtype out
_TS_DTYPE = pd.DatetimeTZDtype(unit="ns", tz="UTC")
_pd_array: Any = pd.array  # pandas-stubs types its dtype argument by literal; ours come from the schema

CONN_STATES = ("S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH", "SHR", "OTH")
TCP_STATES = ("SYN-SENT", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING",
              "LAST-ACK", "TIME-WAIT", "CLOSED")
_SIDES = Categories(("orig", "resp"))

_CONNECTION_DTYPES: dict[str, str | Categories] = {
    "uid": "string",
    "orig_h": "string",
    "orig_p": "UInt16",
    "resp_h": "string",
    "resp_p": "UInt16",
    "proto": Categories(("tcp", "udp", "icmp")),
    "ip_version": "uint8",
    "community_id": "string",
    "predecessor": "string",
    "successor": "string",
    "first_frame": "int64",
    "last_frame": "int64",
    "first_ts": _TS,
    "last_ts": _TS,
    "duration": "float64",
    "orig_pkts": "int64",
    "resp_pkts": "int64",
    "orig_bytes": "int64",
    "resp_bytes": "int64",
    "orig_ip_bytes": "int64",
    "resp_ip_bytes": "int64",
    "missed_bytes": "int64",
    "conn_state": Categories(CONN_STATES),
    "history": "string",
    "orig_state": Categories(tuple(s.name for s in EndpointState)),
    "resp_state": Categories(tuple(s.name for s in EndpointState)),
    "orig_tcp_state": Categories(TCP_STATES),
    "resp_tcp_state": Categories(TCP_STATES),
    "rtt_syn_synack": "float64",
    "rtt_synack_ack": "float64",
    "orig_retrans_bytes": "int64",
    "resp_retrans_bytes": "int64",
    "orig_retrans_pkts": "int64",
    "resp_retrans_pkts": "int64",
    "closed_by": _SIDES,
    "close_how": Categories(("FIN", "RST")),
    "close_frame": "Int64",
    "orig_isn": "Int64",
    "resp_isn": "Int64",
    "orig_mss": "Int64",
    "resp_mss": "Int64",
    "orig_wscale": "Int64",
    "resp_wscale": "Int64",
    "orig_sack_ok": "bool",
    "resp_sack_ok": "bool",
    "orig_sack_blocks": "int64",
    "resp_sack_blocks": "int64",
    "orig_ts_ok": "bool",
    "resp_ts_ok": "bool",
    "orig_tsval_first": "Int64",
    "orig_tsval_last": "Int64",
    "resp_tsval_first": "Int64",
    "resp_tsval_last": "Int64",
    "orig_ttl": "UInt8",
    "resp_ttl": "UInt8",
    "orig_l2_addr": "string",
    "resp_l2_addr": "string",
    "vlan": "object",
    "transitions": "object",
    "weirds": "object",
    "orig_rtt.samples": "Int64",
    "orig_rtt.min": "float64",
    "orig_rtt.avg": "float64",
    "orig_rtt.max": "float64",
    "orig_rtt.delayed_ack_samples": "Int64",
    "orig_rtt.delayed_ack_max": "float64",
    "orig_rtt.karn_skipped": "Int64",
    "resp_rtt.samples": "Int64",
    "resp_rtt.min": "float64",
    "resp_rtt.avg": "float64",
    "resp_rtt.max": "float64",
    "resp_rtt.delayed_ack_samples": "Int64",
    "resp_rtt.delayed_ack_max": "float64",
    "resp_rtt.karn_skipped": "Int64",
    "analysis": "object",
    "predecessor_info": "object",
}
#: JSON objects with fixed keys that become one column per key (``orig_rtt.avg``).
#: ``samples``/``min``/``avg``/``max`` are over the path samples (Karn's rule, delayed-ACK waits
#: apart); the delayed-ACK waits and the samples Karn's rule skipped are counted beside them.
_RTT_KEYS = ("samples", "min", "avg", "max", "delayed_ack_samples", "delayed_ack_max", "karn_skipped")
_FLATTENED = {"orig_rtt": _RTT_KEYS, "resp_rtt": _RTT_KEYS}

_FINDING_DTYPES: dict[str, str | Categories] = {
    "id": Categories(),  # the catalogue's ids, filled in by DTYPES below
    "severity": Categories(SEVERITIES, ordered=True),
    "title": "string",
    "summary": "string",
    "explanation": "string",
    "connections": "object",
    "frames": "object",
    "first_ts": _TS,
    "last_ts": _TS,
    "evidence": "object",
}

_EVENT_DTYPES: dict[str, str | Categories] = {
    "uid": "string",
    "frame": "int64",
    "ts": _TS_NS,
    "side": _SIDES,
    "analysis": Categories(tuple(FLAG_NAMES.values())),
    "tcp_flags": Categories(),
    "payload_len": "int64",
    "peer_frame": "Int64",
    "dupack_num": "Int64",
    "rto_timeout": "float64",
}

_PACKET_DTYPES: dict[str, str | Categories] = {
    "frame": "int64",
    "ts": _TS_NS,
    "uid": "string",
    "caplen": "int64",
    "wirelen": "int64",
    "iface": "int64",
    "direction": Categories(tuple(d.name.lower() for d in Direction)),
    "linktype": "int64",
    "src_mac": "string",
    "vlan": "object",
    "encap": Categories(),
    "ip_version": "uint8",
    "src": "string",
    "dst": "string",
    "ttl": "UInt8",
    "ip_id": "Int64",
    "df": "boolean",
    "frag": Categories(tuple(f.name.lower() for f in Frag)),
    "proto": "UInt8",
    "sport": "UInt16",
    "dport": "UInt16",
    "seq": "Int64",
    "ack": "Int64",
    "tcp_flags": Categories(),
    "window": "Int64",
    "options": "object",
    "payload_len": "Int64",
    "cksum": Categories(tuple(c.name.lower() for c in Cksum)),
    "pkttype": "UInt16",
    "ifindex": "Int64",
    "note": "string",
}

_STATE_DTYPES: dict[str, str | Categories] = {
    "frame": "int64",
    "ts": _TS,
    "side": _SIDES,
    "state": Categories(TCP_STATES),
}


def _dtypes() -> dict[str, dict[str, str | Categories]]:
    findings = dict(_FINDING_DTYPES)
    findings["id"] = Categories(tuple(sorted(catalog())))
    return {"connections": _CONNECTION_DTYPES, "findings": findings, "events": _EVENT_DTYPES,
            "packets": _PACKET_DTYPES, "states": _STATE_DTYPES}


#: The schema of every DataFrame: frame name -> column -> dtype (a pandas dtype name, or
#: :class:`Categories`). ``datetime64[ns, UTC] from ns`` is ``datetime64[ns, UTC]``.
DTYPES: dict[str, dict[str, str | Categories]] = _dtypes()


def _object_array(values: Sequence[Any]) -> np.ndarray[Any, np.dtype[Any]]:
    arr = np.empty(len(values), dtype=object)
    arr[:] = list(values)  # lists and tuples stay whole objects, not a second dimension
    return arr


def _column(values: Sequence[Any], spec: str | Categories) -> Any:
    """One typed column from plain values (None = missing)."""
    if isinstance(spec, Categories):
        seen = {v for v in values if v is not None}
        cats = list(spec.known) + sorted(seen.difference(spec.known))
        return pd.Categorical(list(values), categories=cats, ordered=spec.ordered)
    if spec == _TS:
        return pd.to_datetime(pd.Series(list(values), dtype=object), format="ISO8601", utc=True).astype(_TS_DTYPE).array
    if spec == _TS_NS:
        return pd.to_datetime(np.asarray(values, dtype="int64"), unit="ns", utc=True).astype(_TS_DTYPE).array
    if spec == "object":
        return _object_array(values)
    if spec in ("int64", "uint8", "bool"):
        return np.asarray(values, dtype=spec)
    if spec == "float64":
        return np.asarray([np.nan if v is None else v for v in values], dtype="float64")
    return _pd_array(list(values), dtype=spec)  # string and pandas' nullable types take None


def _typed_frame(columns: dict[str, list[Any]], schema: Mapping[str, str | Categories],
                 vantages: list[str] | None = None) -> pd.DataFrame:
    """A DataFrame with the schema's dtypes; columns beyond the schema (a JSON key added later)
    come last as ``object``. With ``vantages``, ``columns["vantage"]`` becomes the first column."""
    data: dict[str, Any] = {}
    n = len(next(iter(columns.values()))) if columns else 0
    if vantages is not None:
        data["vantage"] = _column(columns.get("vantage", []), Categories(tuple(vantages)))
    for name, spec in schema.items():
        data[name] = _column(columns.get(name, [None] * n if spec not in ("int64", "bool") else []), spec)
    for name, values in columns.items():
        if name not in data:
            data[name] = _object_array(values)
    return pd.DataFrame(data)


def _rows_to_columns(rows: Iterable[Mapping[str, Any]], schema: Mapping[str, Any],
                     flatten: Mapping[str, Sequence[str]] | None = None) -> dict[str, list[Any]]:
    """Column lists from JSON objects: the schema's columns, then any other key in order of appearance."""
    flatten = flatten or {}
    cols: dict[str, list[Any]] = {name: [] for name in schema}
    n = 0
    for row in rows:
        for key, value in row.items():
            if key in flatten:
                sub = value if isinstance(value, Mapping) else {}
                for k in dict.fromkeys((*flatten[key], *sub)):
                    name = f"{key}.{k}"
                    if name not in cols:
                        cols[name] = [None] * n
                    cols[name].append(sub.get(k))
            else:
                if key not in cols:
                    cols[key] = [None] * n
                cols[key].append(value)
        n += 1  # noqa: SIM113 - counted after the row's keys were placed
        if len(row) < len(cols):  # a key this row lacks (predecessor_info): pad it
            for values in cols.values():
                if len(values) < n:
                    values.append(None)
    return cols


# -- inputs ------------------------------------------------------------------------------------------
class _Input:
    """One capture as given, and how to read it again (packets are decoded on demand)."""

    def __init__(self, capture: CaptureInput) -> None:
        self.path: str | None = None
        self.data: bytes | None = None
        self.stream: Any = None
        self.offset = 0
        self.stream_name: str | None = None
        if isinstance(capture, (str, os.PathLike)):
            self.path = os.fspath(capture)
        elif isinstance(capture, (bytes, bytearray, memoryview)):
            self.data = bytes(capture)
        elif hasattr(capture, "read"):
            name = getattr(capture, "name", None)
            self.stream_name = name if isinstance(name, str) else None
            seekable = False
            try:
                seekable = bool(capture.seekable())
            except (AttributeError, OSError, ValueError):
                pass
            if seekable:
                self.stream = capture
                self.offset = capture.tell()
            else:  # a pipe: read once into memory, so that its packets can be read again
                self.data = capture.read()
        else:
            raise TypeError(f"cannot analyze a {type(capture).__name__}: give a path, bytes or a binary file object")

    @property
    def name(self) -> str:
        """What the capture is called: its path, the file object's name, or ``<bytes>``."""
        if self.path is not None:
            return self.path
        if self.stream_name is not None:
            return self.stream_name
        return "<bytes>" if self.stream is None else "<stream>"

    def check(self) -> None:
        """Fail early, naming the path, when a file does not exist (before any long analysis)."""
        if self.path is not None and self.path != "-" and not os.path.lexists(self.path):
            raise CaptureNotFoundError(self.path, "no such file")

    def source(self) -> Any:
        """Something the reader takes, positioned at the capture's start, for one more pass."""
        if self.path is not None:
            return self.path
        if self.data is not None:
            if self.stream_name is None:
                return self.data
            buf = io.BytesIO(self.data)
            buf.name = self.stream_name
            return buf
        if getattr(self.stream, "closed", False):
            if self.stream_name is not None and os.path.isfile(self.stream_name):
                return self.stream_name
            raise ValueError(f"{self.name}: the file object was closed; pass a path or bytes to read its packets again")
        self.stream.seek(self.offset)
        return self.stream

    @property
    def report_source(self) -> str:
        """The path the HTML report reads evidence frames from (a name only, for in-memory input:
        frames the analysis did not keep are then listed as unavailable)."""
        return self.path if self.path is not None else self.name


@dataclasses.dataclass
class _Point:
    """One analyzed capture (a vantage point when there are several)."""

    name: str
    input: _Input
    result: AnalysisResult
    engine: str
    options: dict[str, Any]

    @functools.cached_property
    def by_uid(self) -> dict[str, Connection]:
        return {c.uid: c for c in self.result.connections}

    @functools.cached_property
    def rows(self) -> list[dict[str, Any]]:
        """The JSON ``connections[]`` objects, built once (``Connection.to_dict`` is not free)."""
        return [c.to_dict() for c in self.result.connections]

    @property
    def t0(self) -> int:
        info = self.result.capture
        if info.first_ts is not None:
            return info.first_ts
        return self.result.connections[0].first_ts if self.result.connections else 0


def _vantage_name(inp: _Input, i: int, taken: set[str]) -> str:
    from .report import report_stem

    base = report_stem(inp.name) if inp.path is not None or inp.stream_name is not None else f"capture{i + 1}"
    name, n = base, 2
    while name in taken:
        name = f"{base}-{n}"
        n += 1
    taken.add(name)
    return name


def _progress_callback(progress: bool | None | ProgressCallback, label: str) -> tuple[Any, Progress | None]:
    if callable(progress):
        return progress, None
    mode = auto_mode(progress)
    if mode is None:
        return None, None
    bar = Progress(label, mode=mode)
    return bar, bar


# -- the entry point -------------------------------------------------------------------------------
def analyze(captures: CaptureInput | Sequence[CaptureInput] | Mapping[str, CaptureInput], *, engine: str = "fast",
            progress: bool | None | ProgressCallback = None, verify_checksums: bool = True,
            strict_checksums: bool = False, max_decompressed: int = 64 * 1024**3,
            max_connections: int = MAX_CONNECTIONS, max_expansion: float = MAX_EXPANSION) -> Analysis:
    """Analyze a capture (or several) and return an :class:`Analysis` to explore.

    ``captures``: a path (``str`` or :class:`pathlib.Path`), the capture's bytes, or a binary file
    object (``open(p, "rb")``, ``io.BytesIO``); pcap or pcapng, gzip/bzip2/xz compressed or not.
    A list of them analyzes each one as a vantage point named after its file stem (a dict
    ``{name: capture}`` names them itself): every DataFrame then gets a ``vantage`` column, and
    findings that correlate the captures are added when :mod:`pcapsleuth.vantage` provides them.

    ``engine``: ``"fast"`` (the built-in decoder) or ``"tshark"`` (Wireshark's dissectors through
    pyshark, for exotic link types; needs tshark). Both work inside a running event loop
    (Jupyter). ``progress``: ``None`` shows a progress bar in notebooks and on terminals for long
    analyses and nothing when output is not interactive; ``True``/``False`` force it on/off; a
    callable is called as ``progress(done, total, unit)``. ``verify_checksums``,
    ``strict_checksums``, ``max_decompressed``, ``max_expansion`` and ``max_connections`` are those of
    ``pcapsleuth analyze`` (``--max-expansion``, ``--max-connections``).

    Raises :class:`~pcapsleuth.errors.CaptureNotFoundError` (a ``FileNotFoundError``) naming a
    missing path before anything is read, and the other :class:`~pcapsleuth.errors.PcapsleuthError`
    subclasses for input that is not a capture.

    Examples::

        >>> import pcapsleuth as ps
        >>> a = ps.analyze("samples/incidents/closewait-reuse.pcap")
        >>> a
        <Analysis closewait-reuse.pcap: 17 frames, 3 connections, 2 findings>
        >>> a.findings[["id", "severity", "frames"]]          # a DataFrame
        >>> a.connections.query("conn_state == 'S2'")          # typed columns: filter, join, plot
        >>> a.connection("C000002").packets                    # one connection's packets
        >>> a.finding(0).packets                               # the evidence frames of a finding
        >>> a.plot_ladder(a.finding(0))                        # the report's ladder diagram
        >>> a.to_html("report.html")                           # the report, as the CLI writes it
        >>> lb = ps.analyze(["lb-client.pcap", "lb-backend.pcap"])   # two vantage points
        >>> lb.findings.groupby("vantage", observed=True).size()
    """
    several = isinstance(captures, (list, tuple, Mapping))
    named: list[tuple[str | None, _Input]]
    if isinstance(captures, Mapping):
        named = [(str(k), _Input(v)) for k, v in captures.items()]
    elif isinstance(captures, (list, tuple)):
        named = [(None, _Input(c)) for c in captures]
    else:
        named = [(None, _Input(captures))]  # type: ignore[arg-type]
    if not named:
        raise ValueError("no capture given")
    if engine not in ("fast", "tshark"):
        raise ValueError(f"engine must be 'fast' or 'tshark', not {engine!r}")
    for _, inp in named:
        inp.check()
    options = {"verify_checksums": verify_checksums, "strict_checksums": strict_checksums,
               "max_decompressed": max_decompressed,
               "max_expansion": max_expansion, "progress": progress}
    taken = {n for n, _ in named if n is not None}
    points: list[_Point] = []
    for i, (name, inp) in enumerate(named):
        callback, bar = _progress_callback(progress, os.path.basename(inp.name) or inp.name)
        try:
            result = analyze_capture(inp.source(), engine=engine, verify_checksums=verify_checksums,
                                     max_decompressed=max_decompressed, strict_checksums=strict_checksums,
                                     progress=callback, max_connections=max_connections,
                                     max_expansion=max_expansion)
        finally:
            if bar is not None:
                bar.close()
        points.append(_Point(name if name is not None else _vantage_name(inp, i, taken), inp, result, engine,
                             options))
    correlation = _correlate(points) if several else None
    return Analysis(points, several=several, correlation=correlation)


def _correlate(points: list[_Point]) -> Any:
    """Findings across vantage points from :mod:`pcapsleuth.vantage` when it is there (issue 10):
    ``correlate([(name, AnalysisResult), ...])`` returns an object with ``.findings`` and
    ``.to_json_dict()``. Without the module there is no correlation."""
    try:
        vantage = importlib.import_module("pcapsleuth.vantage")
    except ModuleNotFoundError as exc:
        if exc.name != "pcapsleuth.vantage":
            raise
        return None
    correlate = getattr(vantage, "correlate", None)
    if correlate is None:
        return None
    kw: dict[str, Any] = {}
    params = inspect.signature(correlate).parameters
    if "sources" in params:  # read each capture again from what was given (bytes, a file object)
        kw["sources"] = [p.input.source() for p in points]
    if "max_decompressed" in params:
        kw["max_decompressed"] = points[0].options["max_decompressed"]
    if "max_expansion" in params:
        kw["max_expansion"] = points[0].options["max_expansion"]
    return correlate([(p.name, p.result) for p in points], **kw)


# -- the analysis ----------------------------------------------------------------------------------
class Analysis:
    """The analysis of one capture, or of several vantage points; build it with :func:`analyze`.

    DataFrames (typed, see :data:`DTYPES`): :attr:`connections`, :attr:`findings`,
    :attr:`events`, and :attr:`packets` (decoded on first access). Objects:
    :meth:`connection` (packets, states over time, findings of one connection) and
    :meth:`finding` (evidence packets, ladder). Drawings (matplotlib figures, the report's):
    :meth:`plot_timeline`, :meth:`plot_ladder`, :meth:`plot_sequence`. Outputs identical to
    the CLI's: :meth:`to_json`, :meth:`to_html`, :meth:`to_markdown`, :meth:`summary`. The
    underlying :class:`~pcapsleuth.analysis.AnalysisResult` objects: :attr:`results`.
    """

    def __init__(self, points: list[_Point], *, several: bool = False, correlation: Any = None) -> None:
        self._points = points
        self._several = several
        self.correlation = correlation
        """What :mod:`pcapsleuth.vantage` correlated across the captures (None for one capture)."""
        self._all_findings: list[tuple[_Point | None, Finding]] = [
            (p, f) for p in points for f in p.result.findings]
        if correlation is not None:
            self._all_findings.extend((None, f) for f in getattr(correlation, "findings", []))
        self._tshark_packets: dict[str, list[Packet]] = {}

    # -- what was analyzed ---------------------------------------------------------------------
    @property
    def vantages(self) -> list[str]:
        """The names of the captures (file stems), in the order given."""
        return [p.name for p in self._points]

    @property
    def results(self) -> dict[str, AnalysisResult]:
        """The :class:`~pcapsleuth.analysis.AnalysisResult` of every capture, by vantage name."""
        return {p.name: p.result for p in self._points}

    @property
    def result(self) -> AnalysisResult:
        """The :class:`~pcapsleuth.analysis.AnalysisResult` (one capture; see :attr:`results` for several)."""
        return self._point(None).result

    @property
    def capture(self) -> CaptureInfo:
        """The facts about the capture file (one capture): path, format, frames, interfaces, damage."""
        return self.result.capture

    def _point(self, vantage: str | None) -> _Point:
        if vantage is None:
            if len(self._points) == 1:
                return self._points[0]
            raise ValueError(f"this analysis has {len(self._points)} captures: give vantage= one of "
                             f"{', '.join(self.vantages)}")
        for p in self._points:
            if p.name == vantage:
                return p
        raise KeyError(f"no capture named {vantage!r} (captures: {', '.join(self.vantages)})")

    # -- DataFrames ----------------------------------------------------------------------------
    def _vantage_list(self) -> list[str] | None:
        return self.vantages if self._several else None

    @functools.cached_property
    def connections(self) -> pd.DataFrame:
        """One row per connection, in order of first frame; columns = the JSON ``connections[]`` keys."""
        cols: dict[str, list[Any]] = {}
        for p in self._points:
            part = _rows_to_columns(p.rows, _CONNECTION_DTYPES, _FLATTENED)
            _extend(cols, part, p.name if self._several else None)
        return _typed_frame(cols, _CONNECTION_DTYPES, self._vantage_list())

    @functools.cached_property
    def findings(self) -> pd.DataFrame:
        """One row per finding (most severe first); columns = the JSON ``findings[]`` keys. The row
        index is what :meth:`finding` takes. Findings correlated across captures have no vantage."""
        cols = _rows_to_columns((f.to_dict() for _, f in self._all_findings), DTYPES["findings"])
        if self._several:
            cols["vantage"] = [p.name if p is not None else None for p, _ in self._all_findings]
        return _typed_frame(cols, DTYPES["findings"], self._vantage_list())

    @functools.cached_property
    def events(self) -> pd.DataFrame:
        """Wireshark-style per-segment analysis: one row per flag raised on a segment.

        ``analysis`` is the flag (``retransmission``, ``duplicate_ack``, ``zero_window``,
        ``rto`` ...; the names of the connections' JSON ``analysis`` counts, counted the same way:
        a SYN sent again is ``syn_retransmission``, a frame captured twice only
        ``duplicate_frame``). ``side`` sent it; ``peer_frame`` is the original of a
        retransmission or the first ACK of a duplicate-ACK run; ``dupack_num`` numbers duplicate
        ACKs and ``rto_timeout`` is the seconds since the first transmission on ``rto`` rows. At
        most 4,096 segments per connection are listed (the JSON counts stay exact).
        """
        cols: dict[str, list[Any]] = {}
        for p in self._points:
            _extend(cols, _event_columns(p.result), p.name if self._several else None)
        return _typed_frame(cols, _EVENT_DTYPES, self._vantage_list())

    @functools.cached_property
    def packets(self) -> pd.DataFrame:
        """Every frame of the capture(s), decoded on first access (one more pass over each file).

        About 10 µs and 600 bytes per frame (550,000 frames: 5 s, 300 MB): for a big capture the
        packets of one connection (:meth:`connection`) or one finding (:meth:`finding`) are cheaper.

        Columns are the fields of :class:`~pcapsleuth.packet.Packet`, but ``no`` is ``frame`` and
        ``flags`` is ``tcp_flags``, the letters ``S``/``SA``/``AF``/``R``... (``DataFrame.flags`` is
        pandas' own attribute), plus ``uid``: the connection the frame belongs to (its 4-tuple and
        frame range), ``<NA>`` for frames of none.
        """
        # Millions of small objects and no reference cycles: the cyclic collector would only rescan
        # them (a third of the reading time).
        with no_cyclic_gc():
            cols: dict[str, list[Any]] = {}
            for p in self._points:
                pkts = self._read_packets(p)
                _extend(cols, _packet_columns(pkts, _uid_assigner(p)), p.name if self._several else None)
                del pkts
            return _typed_frame(cols, _PACKET_DTYPES, self._vantage_list())

    def _read_packets(self, p: _Point) -> list[Packet]:
        if p.name in self._tshark_packets:
            return self._tshark_packets[p.name]
        from .progress import feed_with_progress

        if p.engine == "tshark":
            from .engine_tshark import TsharkCapture

            cap: Any = TsharkCapture(p.input.source(), verify_checksums=p.options["verify_checksums"],
                                     max_decompressed=p.options["max_decompressed"],
                                     max_expansion=p.options["max_expansion"])
        else:
            from .capture import Capture

            cap = Capture(p.input.source(), verify_checksums=p.options["verify_checksums"],
                          max_decompressed=p.options["max_decompressed"], max_expansion=p.options["max_expansion"])
        out: list[Packet] = []
        callback, bar = _progress_callback(p.options["progress"], f"{os.path.basename(p.input.name)} (packets)")
        try:
            with cap:
                if callback is None:
                    out.extend(cap)
                else:
                    feed_with_progress(cap, out.append, callback)
        finally:
            if bar is not None:
                bar.close()
        if p.engine == "tshark":
            self._tshark_packets[p.name] = out  # navigation needs them again; tshark is slow
        return out

    # -- navigation ----------------------------------------------------------------------------
    def connection(self, uid: Any, vantage: str | None = None) -> ConnectionView:
        """One connection: ``uid`` (``"C000002"``), or a row of :attr:`connections`,
        :attr:`events` or :attr:`packets` (anything with a ``uid``; its ``vantage`` too)."""
        uid, vantage = _uid_and_vantage(uid, vantage)
        if vantage is not None:
            p = self._point(vantage)
            conn = p.by_uid.get(uid)
            if conn is None:
                raise KeyError(f"no connection {uid!r} in {p.name}")
            return ConnectionView(self, p, conn)
        found = [(p, p.by_uid[uid]) for p in self._points if uid in p.by_uid]
        if not found:
            raise KeyError(f"no connection {uid!r}")
        if len(found) > 1:
            raise ValueError(f"connection {uid!r} is in several captures ({', '.join(p.name for p, _ in found)}): "
                             "give vantage=")
        return ConnectionView(self, *found[0])

    def finding(self, index: Any) -> FindingView:
        """One finding: its row index in :attr:`findings` (negative counts from the end), a row of
        it, or a :class:`~pcapsleuth.findings.Finding`."""
        n = len(self._all_findings)
        if isinstance(index, Finding):
            for i, (_, f) in enumerate(self._all_findings):
                if f is index:
                    return FindingView(self, i)
            raise KeyError(f"finding {index.id} is not part of this analysis")
        if isinstance(index, FindingView):
            return index
        if isinstance(index, pd.Series):
            index = index.name
        elif hasattr(index, "Index"):  # a row of DataFrame.itertuples()
            index = index.Index
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"a finding is chosen by its row index (an int), not {type(index).__name__}")
        i = int(index)
        if not -n <= i < n:
            raise IndexError(f"finding {i} out of range: this analysis has {n} finding{'s' if n != 1 else ''}")
        return FindingView(self, i % n)

    # -- drawings ------------------------------------------------------------------------------
    def plot_timeline(self, vantage: str | None = None) -> Figure:
        """The report's timeline: connections over time coloured by outcome, findings marked."""
        from .plots import timeline_figure
        from .report import Limits

        p = self._point(vantage)
        _ensure_figure_display()
        return timeline_figure(p.result, max_rows=Limits().timeline_rows, t0=p.t0)

    def plot_ladder(self, target: Any, vantage: str | None = None, *, max_packets: int = 60) -> Figure:
        """A ladder diagram: of a finding (its index, row, :class:`FindingView` or
        :class:`~pcapsleuth.findings.Finding`: the report's drawing) or of a connection (its uid,
        row or :class:`ConnectionView`: its first ``max_packets`` packets, with states)."""
        if isinstance(target, ConnectionView):
            return target.plot_ladder(max_packets=max_packets)
        if isinstance(target, str) or (isinstance(target, pd.Series) and "severity" not in target.index):
            return self.connection(target, vantage).plot_ladder(max_packets=max_packets)
        return self.finding(target).plot_ladder()

    def plot_sequence(self, uid: Any, vantage: str | None = None) -> Figure:
        """The report's time-sequence graph (Stevens) of one TCP connection."""
        view = uid if isinstance(uid, ConnectionView) else self.connection(uid, vantage)
        return view.plot_sequence()

    # -- outputs (the CLI's) ---------------------------------------------------------------------
    def to_json_dict(self) -> dict[str, Any]:
        """The JSON document of ``pcapsleuth analyze --json``: of the capture, or of several
        captures analyzed together (``{"vantage_points": [...], "vantage": ..., "findings": [...]}``)."""
        if not self._several:
            return self._points[0].result.to_json_dict()
        return _several_json(self)

    @overload
    def to_json(self, path: None = None) -> str: ...

    @overload
    def to_json(self, path: str | os.PathLike[str]) -> None: ...

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str | None:
        """The JSON text as ``pcapsleuth analyze --json`` writes it; written to ``path`` when given
        (then None is returned, as pandas' ``to_*`` methods do)."""
        from .outputs import json_text, write_json

        doc = self._points[0].result if not self._several else self.to_json_dict()
        if path is None:
            return json_text(doc)
        write_json(doc, path)
        return None

    @overload
    def to_html(self, path: None = None, *, vantage: str | None = None,
                template_dir: str | os.PathLike[str] | None = None) -> str: ...

    @overload
    def to_html(self, path: str | os.PathLike[str], *, vantage: str | None = None,
                template_dir: str | os.PathLike[str] | None = None) -> None: ...

    def to_html(self, path: str | os.PathLike[str] | None = None, *, vantage: str | None = None,
                template_dir: str | os.PathLike[str] | None = None) -> str | None:
        """The single-file HTML report, as ``pcapsleuth analyze --html`` writes it.

        ``path`` a file, or a directory (``<capture-stem>.pcapsleuth.html`` in it); without
        ``path`` the HTML text is returned. Several captures: the one report that covers them
        all (``a+b+c.pcapsleuth.html`` in a directory), or the own report of the capture named
        by ``vantage``.
        """
        from .outputs import REPORT_SUFFIX, destination, html_report

        if self._several and vantage is None:
            return _several_html(self, path, template_dir)
        p = self._point(vantage)
        if path is None:
            return html_report(p.result, p.input.report_source, None, template_dir)
        name = p.input.name if p.input.path is not None else p.name + ".pcap"
        html_report(p.result, p.input.report_source, destination(path, name, REPORT_SUFFIX, set()), template_dir)
        return None

    @overload
    def to_markdown(self, path: None = None, *, report: str | os.PathLike[str] | None = None,
                    template_dir: str | os.PathLike[str] | None = None) -> str: ...

    @overload
    def to_markdown(self, path: str | os.PathLike[str], *, report: str | os.PathLike[str] | None = None,
                    template_dir: str | os.PathLike[str] | None = None) -> None: ...

    def to_markdown(self, path: str | os.PathLike[str] | None = None, *,
                    report: str | os.PathLike[str] | None = None,
                    template_dir: str | os.PathLike[str] | None = None) -> str | None:
        """The short Markdown summary for a ticket, as ``pcapsleuth analyze --markdown`` writes it
        (``report`` names the HTML report it points to)."""
        from .outputs import markdown_summary, write_text

        if self._several:
            text = _several_markdown(self, report, template_dir)
        else:
            text = markdown_summary(self._points[0].result, report, template_dir=template_dir)
        if path is None:
            return text
        write_text(text, path)
        return None

    def summary(self) -> str:
        """The terminal summary ``pcapsleuth analyze`` prints."""
        from .outputs import summary_text

        if self._several:
            return _several_summary(self)
        return summary_text(self._points[0].result)

    # -- display -------------------------------------------------------------------------------
    def __repr__(self) -> str:
        frames = sum(p.result.capture.frames for p in self._points)
        conns = sum(len(p.result.connections) for p in self._points)
        what = f"{frames:,} frames, {_plural(conns, 'connection')}, {_plural(len(self._all_findings), 'finding')}"
        if not self._several:
            return f"<Analysis {os.path.basename(self._points[0].input.name)}: {what}>"
        return f"<Analysis {len(self._points)} captures ({', '.join(self.vantages)}): {what}>"

    def _repr_html_(self) -> str:
        e = html.escape
        parts = ['<div class="pcapsleuth-analysis">', f"<p><strong>{e(repr(self))}</strong></p>",
                 '<table><thead><tr><th>vantage</th><th>file</th><th>format</th><th>frames</th><th>time span</th>'
                 "<th>connections</th><th>findings</th><th>damage</th></tr></thead><tbody>"]
        for p in self._points:
            info = p.result.capture
            states = _state_counts(p.result.connections)
            span = "-" if info.first_ts is None else (
                f"{e(_iso(info.first_ts))} + {info.duration:.3f} s")
            damage = ", ".join(f"{d['kind']} {d['count']}" for d in info.damage.to_list()) or "none"
            parts.append(
                f"<tr><td>{e(p.name)}</td><td><code>{e(info.path)}</code></td>"
                f"<td>{e(info.format + (', ' + info.compression if info.compression else ''))}</td>"
                f"<td>{info.frames:,}</td><td>{span}</td>"
                f"<td>{len(p.result.connections):,} ({e(states or '-')})</td>"
                f"<td>{len(p.result.findings):,}</td><td>{e(damage)}</td></tr>")
        parts.append("</tbody></table>")
        if self.correlation is not None:
            n = len(getattr(self.correlation, "findings", []))
            parts.append(f"<p>{_plural(n, 'finding')} correlated across the captures.</p>")
        parts.append(_findings_table(self._all_findings, self._several))
        parts.append("</div>")
        return "".join(parts)


# -- several captures: the outputs of pcapsleuth.vantage (issue 10) ---------------------------------
# The command line analyzes several captures together through pcapsleuth.vantage and writes one
# document, one report, one summary. With the correlation at hand these use its outputs, so the API
# writes what the CLI writes; without it (no vantage module) each capture's own outputs in turn.
def _several_json(a: Analysis) -> dict[str, Any]:
    corr = a.correlation
    if corr is not None and hasattr(corr, "to_json_dict"):
        doc: dict[str, Any] = corr.to_json_dict()
        return doc
    return {"vantage_points": [{"name": p.name, **p.result.to_json_dict()} for p in a._points], "findings": []}


def _several_html(a: Analysis, path: str | os.PathLike[str] | None,
                  template_dir: str | os.PathLike[str] | None) -> str | None:
    from .outputs import REPORT_SUFFIX, destination, html_report, multi_stem

    first = a._points[0]
    if a.correlation is not None and hasattr(a.correlation, "points"):
        if path is None:
            return html_report(first.result, first.input.report_source, None, template_dir, vantage=a.correlation)
        names = [p.input.name if p.input.path is not None else p.name for p in a._points]
        dest = os.fspath(path)
        if os.path.isdir(dest):
            dest = os.path.join(dest, multi_stem(names) + REPORT_SUFFIX)
        html_report(first.result, first.input.report_source, dest, template_dir, vantage=a.correlation)
        return None
    if path is None or not os.path.isdir(path):
        raise ValueError("several captures without pcapsleuth.vantage: give a directory for one report each, "
                         "or vantage= for one")
    used: set[str] = set()
    for p in a._points:
        name = p.input.name if p.input.path is not None else p.name + ".pcap"
        html_report(p.result, p.input.report_source, destination(path, name, REPORT_SUFFIX, used), template_dir)
    return None


def _several_markdown(a: Analysis, report: str | os.PathLike[str] | None,
                      template_dir: str | os.PathLike[str] | None) -> str:
    from .outputs import markdown_summary

    corr = a.correlation
    if corr is not None and hasattr(corr, "markdown_text"):
        return str(corr.markdown_text(report))
    return "\n".join(markdown_summary(p.result, report, template_dir=template_dir) for p in a._points)


def _several_summary(a: Analysis) -> str:
    from .errors import printable_lines
    from .outputs import summary_text

    corr = a.correlation
    if corr is not None and hasattr(corr, "summary_text"):
        return str(corr.summary_text())
    return printable_lines("".join(f"[{p.name}] " + summary_text(p.result) for p in a._points))


def _extend(cols: dict[str, list[Any]], part: dict[str, list[Any]], vantage: str | None) -> None:
    """Append one capture's column lists to the running ones (a column only one of them has is
    padded with None)."""
    n_old = len(next(iter(cols.values()))) if cols else 0
    n_new = len(next(iter(part.values()))) if part else 0
    for name, values in part.items():
        cols.setdefault(name, [None] * n_old).extend(values)
    for name, values in cols.items():
        if name not in part and name != "vantage":
            values.extend([None] * n_new)
    if vantage is not None:
        cols.setdefault("vantage", [None] * n_old).extend([vantage] * n_new)


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _iso(ts: int | None) -> str:
    from .util import iso_ts

    return iso_ts(ts) or "-"


def _state_counts(conns: Iterable[Connection]) -> str:
    from collections import Counter

    counts = Counter(c.conn_state for c in conns)
    return ", ".join(f"{k} {v}" for k, v in counts.most_common(6))


_SEVERITY_STYLE = {"error": "#c62828", "warning": "#e8590c", "notice": "#1565c0", "info": "#616161"}


def _short_list(values: Sequence[Any], keep: int = 8) -> str:
    text = ", ".join(str(v) for v in values[:keep])
    return text + (f" ... ({len(values):,})" if len(values) > keep else "")


def _findings_table(findings: Sequence[tuple[_Point | None, Finding]], several: bool) -> str:
    e = html.escape
    if not findings:
        return "<p>No findings.</p>"
    head = "<th>#</th>" + ("<th>vantage</th>" if several else "") + \
        "<th>severity</th><th>id</th><th>summary</th><th>frames</th><th>connections</th>"
    rows = []
    for i, (p, f) in enumerate(findings):
        vantage = f"<td>{e(p.name if p is not None else '(across)')}</td>" if several else ""
        colour = _SEVERITY_STYLE.get(f.severity, "inherit")
        rows.append(
            f"<tr><td>{i}</td>{vantage}<td style=\"color:{colour};font-weight:bold\">{e(f.severity)}</td>"
            f"<td><code>{e(f.id)}</code><br>{e(f.title)}</td><td style=\"text-align:left\">{e(f.summary)}</td>"
            f"<td>{e(_short_list(f.frames))}</td><td>{e(_short_list(f.connections, 4))}</td></tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _uid_and_vantage(obj: Any, vantage: str | None) -> tuple[str, str | None]:
    if isinstance(obj, str):
        return obj, vantage
    if isinstance(obj, ConnectionView):
        return obj.uid, obj.vantage if vantage is None else vantage
    getter: Callable[[str], Any]
    if isinstance(obj, (pd.Series, Mapping)):
        getter = obj.get
    else:
        getter = functools.partial(getattr, obj)  # a row of DataFrame.itertuples()
    try:
        uid = getter("uid")
    except AttributeError:
        uid = None
    if not isinstance(uid, str):
        raise TypeError(f"a connection is chosen by its uid (a str) or a row with a uid, not {type(obj).__name__}")
    if vantage is None:
        try:
            v = getter("vantage")
        except AttributeError:
            v = None
        vantage = v if isinstance(v, str) else None
    return uid, vantage


# -- columns of the frames -------------------------------------------------------------------------
def _event_columns(result: AnalysisResult) -> dict[str, list[Any]]:
    """Per-segment analysis events -> columns, one row per flag, counted as the JSON ``analysis``
    object counts them (:func:`pcapsleuth.tracker.counted_bits`)."""
    cols: dict[str, list[Any]] = {name: [] for name in _EVENT_DTYPES}
    names = list(FLAG_NAMES.items())
    for c in result.connections:
        uid = c.uid
        for e in c.events:
            frame, ts, is_orig, fl, extra, peer_frame, tcpflags, plen = e[:8]
            bits = counted_bits(fl, tcpflags)
            letters = flags_str(tcpflags)
            for bit, name in names:
                if not bits & bit:
                    continue
                cols["uid"].append(uid)
                cols["frame"].append(frame)
                cols["ts"].append(ts)
                cols["side"].append("orig" if is_orig else "resp")
                cols["analysis"].append(name)
                cols["tcp_flags"].append(letters)
                cols["payload_len"].append(plen)
                cols["peer_frame"].append(peer_frame or None)
                cols["dupack_num"].append(extra if bit == DUPLICATE_ACK else None)
                cols["rto_timeout"].append(extra / 1e9 if bit == RTO else None)
    return cols


def _proto_number(proto: str, ip_version: int) -> int | None:
    return {"tcp": 6, "udp": 17, "icmp": 1 if ip_version == 4 else 58}.get(proto)


_Key = tuple[Any, tuple[str, int], tuple[str, int]]


def _tuple_key(proto: int | None, a: tuple[str, int], b: tuple[str, int]) -> _Key:
    return (proto, a, b) if a <= b else (proto, b, a)


def _uid_assigner(p: _Point) -> Callable[[Packet], str | None]:
    """The connection a packet belongs to: its 4-tuple (either way round), and the frame range of
    the connection when a tuple was used by several in turn (as :mod:`pcapsleuth.refetch` does)."""
    index: dict[_Key, list[tuple[int, int, str]]] = {}
    for d in p.rows:
        o = (d["orig_h"], -1 if d["orig_p"] is None else d["orig_p"])
        r = (d["resp_h"], -1 if d["resp_p"] is None else d["resp_p"])
        key = _tuple_key(_proto_number(d["proto"], d["ip_version"]), o, r)
        index.setdefault(key, []).append((d["first_frame"], d["last_frame"], d["uid"]))

    def uid_of(pkt: Packet) -> str | None:
        if pkt.src is None or pkt.dst is None:
            return None
        a = (pkt.src, -1 if pkt.sport is None else pkt.sport)
        b = (pkt.dst, -1 if pkt.dport is None else pkt.dport)
        for first, last, uid in index.get(_tuple_key(pkt.proto, a, b), ()):
            if first <= pkt.no <= last:
                return uid
        return None

    return uid_of


_DIRECTIONS = {int(d): d.name.lower() for d in Direction}
_FRAGS = {int(f): f.name.lower() for f in Frag}
_CKSUMS = {int(c): c.name.lower() for c in Cksum}


def _packet_columns(pkts: Sequence[Packet], uid_of: Callable[[Packet], str | None]) -> dict[str, list[Any]]:
    fields = Packet._fields
    cols: dict[str, list[Any]] = {}
    if pkts:
        for name, values in zip(fields, zip(*pkts, strict=True), strict=True):
            cols[name] = list(values)
    else:
        cols = {name: [] for name in fields}
    cols["frame"] = cols.pop("no")
    cols["uid"] = [uid_of(p) for p in pkts]
    cols["direction"] = [_DIRECTIONS.get(v, str(v)) for v in cols["direction"]]
    cols["frag"] = [_FRAGS.get(v, str(v)) for v in cols["frag"]]
    cols["cksum"] = [_CKSUMS.get(v, str(v)) for v in cols["cksum"]]
    cols["tcp_flags"] = [None if v is None else flags_str(v) for v in cols.pop("flags")]
    return cols


def _packet_frame(pkts: Sequence[Packet], uid_of: Callable[[Packet], str | None]) -> pd.DataFrame:
    return _typed_frame(_packet_columns(pkts, uid_of), _PACKET_DTYPES)


def _timestamp(ts: int | None) -> pd.Timestamp | None:
    return None if ts is None else pd.Timestamp(ts, unit="ns", tz="UTC")


def _ensure_figure_display() -> None:
    """Inside IPython, show returned figures as images.

    The drawings are :class:`matplotlib.figure.Figure` objects made without pyplot (no global
    state); IPython displays those as images only once an inline backend registered a formatter
    (``%matplotlib inline`` or importing pyplot). Register one for PNG when none is there.
    """
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return
    try:
        shell = ipython.get_ipython()
        formatter = shell.display_formatter.formatters["image/png"] if shell is not None else None
    except (AttributeError, KeyError):
        return
    if formatter is None:
        return
    from matplotlib.figure import Figure

    try:
        formatter.lookup_by_type(Figure)
    except KeyError:
        formatter.for_type(Figure, _figure_png)


def _figure_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


# -- views -----------------------------------------------------------------------------------------
class ConnectionView:
    """One connection of an :class:`Analysis`: its facts, packets, states over time, findings.

    >>> c = a.connection("C000002")        # doctest: +SKIP
    >>> c.states                           # RFC 793 state changes of both sides, with frames
    >>> c.packets[["frame", "src", "flags", "seq", "ack"]]
    >>> c.findings                         # the findings naming this connection
    >>> c.plot_ladder(); c.plot_sequence()
    """

    def __init__(self, analysis: Analysis, point: _Point, conn: Connection) -> None:
        self._analysis = analysis
        self._point = point
        self.conn = conn
        """The tracker's :class:`~pcapsleuth.tracker.Connection` object."""

    @property
    def uid(self) -> str:
        return self.conn.uid

    @property
    def vantage(self) -> str:
        """The name of the capture this connection was seen in."""
        return self._point.name

    @functools.cached_property
    def info(self) -> dict[str, Any]:
        """The JSON ``connections[]`` object."""
        return self.conn.to_dict()

    def __getitem__(self, key: str) -> Any:
        return self.info[key]

    @property
    def row(self) -> pd.Series:
        """This connection's row of :attr:`Analysis.connections`."""
        df = self._analysis.connections
        mask = df["uid"] == self.uid
        if "vantage" in df.columns:
            mask &= df["vantage"] == self.vantage
        return df[mask.fillna(False)].iloc[0]

    @functools.cached_property
    def packet_list(self) -> list[Packet]:
        """The connection's packets (its 4-tuple, from its first to its last frame; at most
        :data:`CONNECTION_PACKETS`)."""
        return self._packets(CONNECTION_PACKETS)

    def _packets(self, limit: int) -> list[Packet]:
        p = self._point
        if p.engine == "tshark":
            uid_of = _uid_assigner(p)
            return [x for x in self._analysis._read_packets(p) if uid_of(x) == self.uid][:limit]
        from .refetch import connection_packets

        return connection_packets(p.input.source(), self.conn, limit=limit,
                                  verify_checksums=p.options["verify_checksums"],
                                  max_decompressed=p.options["max_decompressed"],
                                  max_expansion=p.options["max_expansion"])

    @functools.cached_property
    def packets(self) -> pd.DataFrame:
        """The connection's packets, typed as :attr:`Analysis.packets`."""
        uid = self.uid
        return _packet_frame(self.packet_list, lambda _p: uid)

    @property
    def states(self) -> pd.DataFrame:
        """The inferred RFC 793 state of each side over time: one row per change (``frame``,
        ``ts``, ``side``, ``state``), as the JSON ``transitions``."""
        rows = self.info.get("transitions") or []
        return _typed_frame(_rows_to_columns(rows, _STATE_DTYPES), _STATE_DTYPES)

    @property
    def findings(self) -> pd.DataFrame:
        """The rows of :attr:`Analysis.findings` that name this connection (same index)."""
        df = self._analysis.findings
        keep = [i for i, (p, f) in enumerate(self._analysis._all_findings) if p is self._point and
                self.uid in f.connections]
        return df.iloc[keep]

    @property
    def events(self) -> pd.DataFrame:
        """The rows of :attr:`Analysis.events` of this connection."""
        df = self._analysis.events
        mask = df["uid"] == self.uid
        if "vantage" in df.columns:
            mask &= df["vantage"] == self.vantage
        return df[mask.fillna(False)]

    @property
    def predecessor(self) -> ConnectionView | None:
        """The connection that used the same 4-tuple before this one, if any."""
        uid = self.info.get("predecessor")
        return None if uid is None else self._analysis.connection(uid, self.vantage)

    @property
    def successor(self) -> ConnectionView | None:
        uid = self.info.get("successor")
        return None if uid is None else self._analysis.connection(uid, self.vantage)

    def plot_ladder(self, *, max_packets: int = 60) -> Figure:
        """A ladder diagram of the connection's first ``max_packets`` packets, with the states
        each side moved into."""
        from .plots import ladder_figure, ladder_states

        _ensure_figure_display()
        pkts = self.packet_list[:max_packets]
        frames = {x.no for x in pkts}
        states = {n: v for n, v in ladder_states([self.conn]).items() if n in frames}
        return ladder_figure(pkts, title=f"Connection {self.uid}", t0=self._point.t0, max_packets=max_packets,
                             states=states)

    def plot_sequence(self) -> Figure:
        """The time-sequence graph (Stevens) of this TCP connection, as in the report."""
        from .plots import sequence_figure
        from .report import Limits

        if self.conn.proto != "tcp":
            raise ValueError(f"connection {self.uid} is {self.conn.proto}, not TCP: no sequence numbers to draw")
        _ensure_figure_display()
        pkts = self._packets(Limits().sequence_packets) or list(self.conn.evidence)
        return sequence_figure(pkts, self.conn, t0=self._point.t0)

    def __repr__(self) -> str:
        d = self.info
        where = f" in {self.vantage}" if self._analysis._several else ""
        return (f"<Connection {self.uid}{where} {_ep(d['orig_h'], d['orig_p'])} -> {_ep(d['resp_h'], d['resp_p'])} "
                f"{d['proto']} {d['conn_state']} {d['history'] or '-'}, frames {d['first_frame']}-{d['last_frame']}>")

    def _repr_html_(self) -> str:
        e = html.escape
        d = self.info
        facts = [("vantage", self.vantage), ("frames", f"{d['first_frame']}-{d['last_frame']}"),
                 ("packets", f"{d['orig_pkts']} / {d['resp_pkts']} (orig / resp)"),
                 ("conn_state", d["conn_state"]), ("history", d["history"]),
                 ("final states", f"{d['orig_tcp_state'] or '-'} / {d['resp_tcp_state'] or '-'}"),
                 ("predecessor", d["predecessor"] or "-"), ("successor", d["successor"] or "-")]
        rows = "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in facts)
        changes = "".join(f"<tr><td>{t['frame']}</td><td>{e(str(t['side']))}</td><td>{e(str(t['state']))}</td></tr>"
                          for t in d.get("transitions") or [])
        mine = [(p, f) for p, f in self._analysis._all_findings if p is self._point and self.uid in f.connections]
        return (f'<div class="pcapsleuth-connection"><p><strong>{e(repr(self))}</strong></p>'
                f"<table>{rows}</table>"
                + (f"<table><thead><tr><th>frame</th><th>side</th><th>state</th></tr></thead><tbody>{changes}"
                   "</tbody></table>" if changes else "")
                + (_findings_table(mine, False) if mine else "") + "</div>")


def _ep(addr: Any, port: Any) -> str:
    if port is None:
        return str(addr)
    return f"[{addr}]:{port}" if ":" in str(addr) else f"{addr}:{port}"


class FindingView:
    """One finding of an :class:`Analysis` with its evidence.

    >>> f = a.finding(0)                   # doctest: +SKIP
    >>> f.id, f.severity, f.frames
    >>> f.packets                          # the evidence frames, decoded
    >>> f.evidence                         # the figures it was judged on (dict)
    >>> f.plot_ladder()                    # the report's ladder diagram
    """

    def __init__(self, analysis: Analysis, index: int) -> None:
        self._analysis = analysis
        self.index = index
        """The row index in :attr:`Analysis.findings`."""
        self._point, self.finding = analysis._all_findings[index]

    # the finding's fields, as in the JSON
    id = property(lambda self: self.finding.id, doc="The dotted finding id (see ``pcapsleuth catalog``).")
    severity = property(lambda self: self.finding.severity, doc="info, notice, warning or error.")
    title = property(lambda self: self.finding.title)
    summary = property(lambda self: self.finding.summary, doc="One sentence with the numbers.")
    explanation = property(lambda self: self.finding.explanation, doc="The likely cause and what to check next.")
    frames = property(lambda self: list(self.finding.frames), doc="The evidence frame numbers (1-based).")
    connections = property(lambda self: list(self.finding.connections), doc="The uids of its connections.")
    evidence = property(lambda self: self.finding.evidence, doc="The figures it was judged on.")

    @property
    def first_ts(self) -> pd.Timestamp | None:
        return _timestamp(self.finding.first_ts)

    @property
    def last_ts(self) -> pd.Timestamp | None:
        return _timestamp(self.finding.last_ts)

    @property
    def vantage(self) -> str | None:
        """The capture it was found in; None for a finding correlated across captures."""
        return None if self._point is None else self._point.name

    def to_dict(self) -> dict[str, Any]:
        """The JSON ``findings[]`` object."""
        return self.finding.to_dict()

    def _require_point(self) -> _Point:
        if self._point is None:
            raise ValueError(f"finding {self.index} ({self.id}) correlates several captures: its frames are in "
                             "different files; see .evidence")
        return self._point

    @functools.cached_property
    def packet_map(self) -> dict[int, Packet]:
        """The evidence packets by frame number (from memory where the analysis kept them, else
        read again from the capture)."""
        p = self._require_point()
        want = set(self.finding.frames)
        have: dict[int, Packet] = {}
        for uid in self.finding.connections:
            c = p.by_uid.get(uid)
            if c is not None:
                for x in c.evidence:
                    if x.no in want:
                        have[x.no] = x
        missing = want - have.keys()
        if missing:
            if p.engine == "tshark":
                have.update((x.no, x) for x in self._analysis._read_packets(p) if x.no in missing)
            else:
                from .refetch import fetch_frames

                have.update(fetch_frames(p.input.source(), missing, verify_checksums=p.options["verify_checksums"],
                                         max_decompressed=p.options["max_decompressed"],
                                         max_expansion=p.options["max_expansion"]))
        return have

    @property
    def packet_list(self) -> list[Packet]:
        return [self.packet_map[n] for n in sorted(self.packet_map)]

    @functools.cached_property
    def packets(self) -> pd.DataFrame:
        """The evidence frames, typed as :attr:`Analysis.packets`."""
        p = self._require_point()
        return _packet_frame(self.packet_list, _uid_assigner(p))

    def connection(self, k: int = 0) -> ConnectionView:
        """The ``k``-th connection the finding names."""
        p = self._require_point()
        return self._analysis.connection(self.finding.connections[k], p.name)

    def plot_ladder(self) -> Figure:
        """The ladder diagram the HTML report draws for this finding (same packets, states, notes)."""
        from .report import Limits, _Builder

        p = self._require_point()
        _ensure_figure_display()
        limits = Limits()
        b = _Builder(p.result, p.input.report_source, limits)
        b.packets = self.packet_map
        f = self.finding
        ladder, _note = b.ladder_packets(f)
        if b._wants_sequence(f):
            ladder = ladder[: limits.ladder_packets_data]
        number = next((i for i, g in enumerate(b.findings, 1) if g is f), self.index + 1)
        return b.ladder_figure(f, ladder, number)

    def __repr__(self) -> str:
        summary = " ".join(self.summary.split())
        if len(summary) > 100:
            summary = summary[:97] + "..."
        where = f" in {self.vantage}" if self._analysis._several and self.vantage else ""
        return f"<Finding {self.index}{where} {self.severity} {self.id}: {summary}>"

    def _repr_html_(self) -> str:
        e = html.escape
        f = self.finding
        colour = _SEVERITY_STYLE.get(f.severity, "inherit")
        head = (f'<p><span style="color:{colour};font-weight:bold">{e(f.severity)}</span> '
                f"<code>{e(f.id)}</code> <strong>{e(f.title)}</strong>"
                + (f" ({e(self.vantage)})" if self._analysis._several and self.vantage else "") + "</p>")
        body = (f"<p>{e(f.summary)}</p><p><em>{e(f.explanation)}</em></p>"
                f"<p>frames: {e(_short_list(f.frames, 40))}<br>connections: {e(_short_list(f.connections, 20))}</p>")
        figures = "".join(f"<tr><th>{e(str(k))}</th><td>{e(_short(v))}</td></tr>" for k, v in f.evidence.items())
        return (f'<div class="pcapsleuth-finding">{head}{body}'
                + (f"<details><summary>evidence</summary><table>{figures}</table></details>" if figures else "")
                + "</div>")


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 200 else text[:197] + "..."
