"""Drawings for the HTML report and for notebooks: each function returns a matplotlib ``Figure``.

No pyplot anywhere: figures are :class:`matplotlib.figure.Figure` objects drawn on the Agg
canvas, so nothing leaks into pyplot's global state, they work headless and in threads, and in
Jupyter a returned figure displays itself. :func:`figure_to_svg` turns one into an SVG string
that can be inlined into an HTML page.

=======================  =====================================================================
``timeline_figure``      connections over time as bars coloured by outcome, findings marked
``ladder_figure``        a ladder (flow graph) of packets between endpoints, like Wireshark's
``sequence_figure``      a Stevens time-sequence graph of one TCP connection
``figure_to_svg``        a figure as a self-contained ``<svg>`` element (text stays text)
=======================  =====================================================================

Times on every axis are seconds relative to ``t0`` (the capture's first frame in the report,
like Wireshark's ``frame.time_relative``). Text drawn into figures is never parsed as mathtext,
so a ``$`` from a capture cannot break a drawing, and the SVG's text shows bidi overrides and
control characters as visible escapes (:func:`pcapsleuth.report.visible`).

Drawing raises no warning for text the fonts here lack (a CJK file name as a vantage point's
name, say): matplotlib only measures that text with the wrong glyph, the SVG keeps it as text
(``svg.fonttype: none``) and the browser draws it with its own fonts, so the warning matplotlib
gives for each missing glyph says nothing a reader of the report can act on and is dropped
while saving. Any other warning goes through.
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import matplotlib
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .packet import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, Packet, flag_names

if TYPE_CHECKING:
    from .analysis import AnalysisResult
    from .digest import ConnRecord, _EndRecord
    from .findings import Finding
    from .stream import ReportView
    from .tracker import Connection, Endpoint

__all__ = [
    "OUTCOMES",
    "figure_to_svg",
    "flag_names",
    "ladder_figure",
    "ladder_states",
    "outcome_of",
    "sequence_figure",
    "timeline_figure",
]

_MASK = 0xFFFFFFFF

#: Style applied while drawing and saving: short font list (it is written into every SVG text
#: element), no mathtext, deterministic SVG ids.
_RC: dict[str, Any] = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial"],
    "font.size": 9,
    "text.parse_math": False,
    "svg.fonttype": "none",
    "svg.hashsalt": "pcapsleuth",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 100,
}

#: Connection outcome groups: (key, label, colour, Zeek conn_states). Colours stay apart in
#: print and for the common forms of colour blindness (red/green are never the only cue: the
#: legend and the connections table name the state).
OUTCOMES: tuple[tuple[str, str, str, frozenset[str]], ...] = (
    ("closed", "established, closed normally (SF)", "#2e7d32", frozenset({"SF"})),
    ("open", "established, still open (S1)", "#1565c0", frozenset({"S1"})),
    ("half_closed", "half-closed: one side never closed (S2/S3)", "#f2a900", frozenset({"S2", "S3"})),
    ("refused", "refused: SYN answered by RST (REJ)", "#c62828", frozenset({"REJ"})),
    ("reset", "reset (RSTO/RSTR/RSTOS0/RSTRH)", "#e8590c", frozenset({"RSTO", "RSTR", "RSTOS0", "RSTRH"})),
    ("no_reply", "no reply (S0/SH/SHR)", "#7b1fa2", frozenset({"S0", "SH", "SHR"})),
    ("other", "no handshake seen / not TCP", "#9e9e9e", frozenset()),
)
_OUTCOME_BY_STATE = {st: key for key, _, _, states in OUTCOMES for st in states}
_OUTCOME_COLOUR = {key: colour for key, _, colour, _ in OUTCOMES}

SEVERITY_COLOURS = {"error": "#c62828", "warning": "#e8590c", "notice": "#1565c0", "info": "#616161"}
_FINDING_MARKERS = ("v", "D", "s", "^", "o", "P", "X", "*")

# Ladder arrow colours by what a packet does.
_RST_C, _SYN_C, _SYNACK_C, _FIN_C, _DATA_C, _ACK_C = "#c62828", "#1565c0", "#2e7d32", "#7b1fa2", "#263238", "#78909c"


def outcome_of(conn_state: str, proto: str = "tcp") -> str:
    """The outcome group (a key of :data:`OUTCOMES`) of a Zeek ``conn_state``."""
    if proto != "tcp":
        return "other"
    return _OUTCOME_BY_STATE.get(conn_state, "other")


@contextmanager
def _style() -> Iterator[None]:
    with matplotlib.rc_context(_RC):  # type: ignore[arg-type]
        yield


def _new_figure(width: float, height: float, *, left: float, right: float, top: float, bottom: float,
                hspace: float = 0.0) -> Figure:
    """A figure whose axes area is given by margins in inches.

    Fixed margins instead of a layout engine: constrained layout measures every label again and
    was most of the drawing time of a report.
    """
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=left / width, right=1 - right / width, top=1 - top / height,
                        bottom=bottom / height, hspace=hspace)
    return fig


def _legend_height(n_handles: int, ncols: int = 3) -> float:
    return 0.1 + 0.2 * -(-n_handles // ncols)


# -- timeline --------------------------------------------------------------------------------------
def timeline_figure(result: AnalysisResult | ReportView, findings: Sequence[Finding] | None = None, *,
                    max_rows: int = 600, t0: int | None = None,
                    conn_states: Mapping[str, str] | None = None,
                    known: Mapping[int, Packet] | None = None) -> Figure:
    """Connections over time as horizontal bars coloured by outcome, with the findings marked.

    One row per connection (in order of first frame) when there are at most ``max_rows``;
    beyond that the connections are aggregated: a stacked histogram of connection starts per
    time bin, by outcome. The findings' evidence frames are marked (one marker shape per
    finding id, coloured by severity) on the rows of their connections, or as ticks along the top
    in the aggregated view. ``findings`` defaults to ``result.findings``; ``t0`` (ns) to the
    capture's first frame. ``conn_states`` (uid -> Zeek conn_state) saves computing them again
    when the caller has them. ``known`` (frame -> packet): packets read again from the capture,
    for marking findings whose connections keep no evidence packets in memory.
    """
    with _style():
        return _timeline(result, list(result.findings if findings is None else findings), max_rows, t0,
                         conn_states, known)


def _timeline(result: AnalysisResult | ReportView, findings: list[Finding], max_rows: int, t0_arg: int | None,
              conn_states: Mapping[str, str] | None, known: Mapping[int, Packet] | None) -> Figure:
    from .tracker import uid_of

    # Every connection's first timestamp and outcome come from the digest; the connections
    # themselves only when each gets a row.
    d = result.digest
    n = d.n
    aggregated = n > max_rows
    starts: dict[str, list[int]] = {}
    for state, proto, ts_list in d.starts():
        starts.setdefault(outcome_of(state, proto), []).extend(ts_list)
    first = min((min(v) for v in starts.values()), default=0)
    t0 = t0_arg if t0_arg is not None else (result.capture.first_ts or first)
    conns = [] if aggregated else [c for i in d.indexes() if (c := result.connection(uid_of(i))) is not None]
    end = result.capture.last_ts if result.capture.last_ts is not None else max(
        (c.last_ts for c in conns), default=max((max(v) for v in starts.values()), default=t0))
    span = max((end - t0) / 1e9, 1e-6)
    states = [(c, outcome_of(conn_states[c.uid] if conn_states is not None else c.conn_state, c.proto))
              for c in conns]
    groups = _finding_groups(findings)
    marks = _finding_marks(result, groups, known, not aggregated)
    n_handles = len(starts) + 1 + len(groups)
    bottom = 0.55 + _legend_height(n_handles)
    left = 1.75 if not aggregated and 0 < n <= 40 else 0.8
    plot_h = 2.4 if aggregated else min(max(0.9, 0.16 * n), 6.5)
    fig = _new_figure(10, plot_h + bottom + 0.35, left=left, right=0.25, top=0.35, bottom=bottom)
    ax = fig.add_subplot()
    present: list[str] = []
    if not n:
        ax.text(0.5, 0.5, "no connections in this capture", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
    elif aggregated:
        _timeline_aggregated(ax, starts, t0, span, present)
    else:
        _timeline_rows(ax, states, t0, span, present, marks, groups)
    ax.set_xlim(-span * 0.01, span * 1.01)
    ax.set_xlabel("seconds since the first frame of the capture")
    handles: list[Any] = [Patch(facecolor=_OUTCOME_COLOUR[k], label=label)
                          for k, label, _, _ in OUTCOMES if k in present]
    if "lingering" in present:
        handles.append(Patch(facecolor="#9e9e9e", alpha=0.35,
                             label="socket still open after its last packet (inferred), until reuse or capture end"))
    for i, (fid, sev, members) in enumerate(groups):
        label = f"{fid} ({sev})" + (f" \u00d7{len(members)}" if len(members) > 1 else "")
        handles.append(Line2D([], [], linestyle="none", marker=_FINDING_MARKERS[i], markersize=7,
                              markerfacecolor=SEVERITY_COLOURS.get(sev, "#616161"), markeredgecolor="black",
                              label=label))
    if aggregated:
        top = ax.get_xaxis_transform()  # x in data, y in axes fraction
        for i, (_, sev, members) in enumerate(groups):
            times = sorted({ts for ts, _ in marks.get(i, [])})
            xs = [(ts - t0) / 1e9 for ts in times][:400]
            if not xs:
                xs = [(f.first_ts - t0) / 1e9 for f in members[:400] if f.first_ts is not None]
            ax.plot(xs, [0.96 - 0.07 * i] * len(xs), transform=top, linestyle="none",
                    marker=_FINDING_MARKERS[i], markersize=6,
                    markerfacecolor=SEVERITY_COLOURS.get(sev, "#616161"), markeredgecolor="black", zorder=4)
    if handles:
        fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncols=min(3, len(handles)),
                   fontsize=8, frameon=False)
    what = f"{n:,} connection{'s' if n != 1 else ''}"
    ax.set_title(f"Connections over time: {what}" + (" (aggregated: starts per time bin)" if aggregated else ""),
                 loc="left", fontsize=10)
    return fig


def _finding_groups(findings: list[Finding]) -> list[tuple[str, str, list[Finding]]]:
    """Findings grouped by id, in order of first appearance: (id, highest severity, findings).
    One marker shape per id; at most as many ids as there are shapes."""
    from .findings import SEVERITIES

    rank = {s: i for i, s in enumerate(SEVERITIES)}
    groups: dict[str, list[Finding]] = {}
    for f in findings:
        groups.setdefault(f.id, []).append(f)
    out = []
    for fid, members in list(groups.items())[: len(_FINDING_MARKERS)]:
        sev = max({f.severity for f in members}, key=rank.__getitem__)
        out.append((fid, sev, members))
    return out


def _finding_marks(result: AnalysisResult | ReportView, groups: list[tuple[str, str, list[Finding]]],
                   known: Mapping[int, Packet] | None, rows: bool) -> dict[int, list[tuple[int, str]]]:
    """For each finding id (by group index): (ts, uid) of its evidence frames known from memory:
    the connections' evidence packets, or else the ``known`` packets (read again for the report)
    matched to the connection by 4-tuple and frame range (``rows``; otherwise only the time
    counts and the uid is left empty)."""
    marks: dict[int, list[tuple[int, str]]] = {}
    for i, (_, _, members) in enumerate(groups):
        out: list[tuple[int, str]] = []
        for f in members:
            if len(out) >= 1000:
                break
            wanted = set(f.frames[:2000])
            held = False
            for uid in f.connections[:2000]:
                evidence = result.evidence_of(uid)
                held = held or bool(evidence)
                for p in evidence:
                    if p.no in wanted:
                        out.append((p.ts, uid))
            if not held and known:
                out.extend(_known_marks(result, f, [known[n] for n in f.frames[:2000] if n in known], rows))
        marks[i] = out[:1000]
    return marks


def _known_marks(result: AnalysisResult | ReportView, f: Finding, pkts: list[Packet], rows: bool) -> list[
        tuple[int, str]]:
    if not rows or not pkts:
        return [(p.ts, "") for p in pkts]
    out: list[tuple[int, str]] = []
    for uid in f.connections[:200]:
        c = result.connection(uid)
        if c is None:
            continue
        ends = {(c.orig.addr, c.orig.port), (c.resp.addr, c.resp.port)}
        out.extend((p.ts, uid) for p in pkts
                   if c.first_frame <= p.no <= c.last_frame and {(p.src, p.sport), (p.dst, p.dport)} == ends)
    return out


def _timeline_rows(ax: Any, states: list[tuple[Connection | ConnRecord, str]], t0: int, span: float, present: list[str],
                   marks: dict[int, list[tuple[int, str]]], groups: list[tuple[str, str, list[Finding]]]) -> None:
    n = len(states)
    row = {c.uid: i for i, (c, _) in enumerate(states)}
    min_w = span * 0.004
    by_outcome: dict[str, tuple[list[float], list[float], list[float]]] = {}
    for i, (c, outcome) in enumerate(states):
        ys, lefts, widths = by_outcome.setdefault(outcome, ([], [], []))
        ys.append(i)
        lefts.append((c.first_ts - t0) / 1e9)
        widths.append(max((c.last_ts - c.first_ts) / 1e9, min_w))
    height = (0.45 if n <= 3 else 0.8) if n <= 60 else 1.0
    for key, _, colour, _ in OUTCOMES:
        if key in by_outcome:
            ys, lefts, widths = by_outcome[key]
            _bars(ax, ys, lefts, widths, height, colour)
            present.append(key)
    # A socket that was still open at its last packet (a side left in ESTABLISHED or CLOSE-WAIT)
    # goes on existing: drawn faded until its 4-tuple is reused or the capture ends.
    by_uid = {c.uid: c for c, _ in states}
    end = t0 + int(span * 1e9)
    for key, _, colour, _ in OUTCOMES:
        ys, lefts, widths = [], [], []
        for i, (c, outcome) in enumerate(states):
            if outcome != key or not _still_open(c):
                continue
            succ = by_uid.get(c.successor) if c.successor else None
            stop = succ.first_ts if succ is not None else end
            if stop > c.last_ts:
                ys.append(i)
                lefts.append((c.last_ts - t0) / 1e9)
                widths.append((stop - c.last_ts) / 1e9)
        if ys:
            _bars(ax, ys, lefts, widths, height * 0.55, colour, alpha=0.35)
            if "lingering" not in present:
                present.append("lingering")
    for i, (_, sev, _) in enumerate(groups):
        first: dict[str, int] = {}
        for ts, uid in marks.get(i, []):  # one marker per connection: its first evidence frame
            if uid in row and (uid not in first or ts < first[uid]):
                first[uid] = ts
        pts = [((ts - t0) / 1e9, row[uid]) for uid, ts in first.items()]
        if pts:
            ax.plot([x for x, _ in pts], [y for _, y in pts], linestyle="none", marker=_FINDING_MARKERS[i],
                    markersize=7 if n <= 60 else 4, markerfacecolor=SEVERITY_COLOURS.get(sev, "#616161"),
                    markeredgecolor="black", markeredgewidth=0.6, zorder=3)
    ax.set_ylim(n - 0.5, -0.5)
    if n <= 40:
        ax.set_yticks(range(n), [f"{c.uid} :{c.orig.port}\u2192:{c.resp.port}" for c, _ in states], fontsize=7)
    else:
        ax.set_ylabel("connections, in order of first frame")
        ax.set_yticks([])


def _bars(ax: Any, ys: list[float], lefts: list[float], widths: list[float], height: float, colour: str,
          alpha: float = 1.0) -> None:
    """Horizontal bars as one PolyCollection (``barh`` makes one patch per bar: ten times slower)."""
    h = height / 2
    verts = [((x, y - h), (x + w, y - h), (x + w, y + h), (x, y + h)) for y, x, w in zip(ys, lefts, widths,
                                                                                         strict=True)]
    ax.add_collection(PolyCollection(verts, facecolors=colour, edgecolors="none", linewidths=0, alpha=alpha))


_OPEN_STATES = frozenset({"ESTABLISHED", "CLOSE-WAIT", "LAST-ACK", "CLOSING", "SYN-RECEIVED"})


def _still_open(c: Connection | ConnRecord) -> bool:
    return c.proto == "tcp" and (c.orig.tcp_state in _OPEN_STATES or c.resp.tcp_state in _OPEN_STATES)


def _timeline_aggregated(ax: Any, starts: dict[str, list[int]], t0: int, span: float, present: list[str]) -> None:
    import numpy as np

    bins = 120
    width = span / bins
    xs = np.arange(bins) * width
    bottom = np.zeros(bins)
    for key, _, colour, _ in OUTCOMES:
        if key not in starts:
            continue
        idx = ((np.asarray(starts[key], dtype=np.int64) - t0) / 1e9 / width).astype(np.int64)
        counts = np.bincount(np.clip(idx, 0, bins - 1), minlength=bins)
        verts = [((x, b0), (x + width, b0), (x + width, b0 + n), (x, b0 + n))
                 for x, b0, n in zip(xs.tolist(), bottom.tolist(), counts.tolist(), strict=True) if n]
        ax.add_collection(PolyCollection(verts, facecolors=colour, edgecolors="none", linewidths=0))
        bottom = bottom + counts
        present.append(key)
    ax.set_ylabel(f"connections started per {width:.3g} s")
    ax.set_ylim(0, float(bottom.max()) * 1.25 or 1)


# -- ladder ----------------------------------------------------------------------------------------
def _arrow_colour(p: Packet) -> str:
    return flag_colour(p.flags or 0, p.payload_len or 0)


def flag_colour(flags: int, length: int) -> str:
    """The colour of a segment's arrow in a ladder: RST, SYN, SYN-ACK, FIN, data, bare ACK."""
    if flags & TCP_RST:
        return _RST_C
    if flags & TCP_SYN:
        return _SYNACK_C if flags & TCP_ACK else _SYN_C
    if flags & TCP_FIN:
        return _FIN_C
    return _DATA_C if length else _ACK_C


def _packet_label(p: Packet) -> str:
    if p.flags is None:
        proto = {17: "UDP", 1: "ICMP", 58: "ICMPv6"}.get(p.proto or -1, f"proto {p.proto}")
        return f"{proto} len={p.payload_len if p.payload_len is not None else '?'}"
    parts = [f"[{flag_names(p.flags)}]", f"seq={p.seq}"]
    if p.flags & TCP_ACK:
        parts.append(f"ack={p.ack}")
    parts.append(f"len={p.payload_len if p.payload_len is not None else '?'}")
    if p.window is not None and not p.flags & TCP_RST:
        parts.append(f"win={p.window}")
    return " ".join(parts)


_ZERO_MAC = "00:00:00:00:00:00"


def _ep(addr: str | None, port: int | None) -> tuple[str, int | None]:
    return (addr or "?", port)


def _ep_text(ep: tuple[str, int | None]) -> str:
    addr, port = ep
    if port is None:
        return addr
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def ladder_figure(packets: Sequence[Packet], endpoints: Sequence[tuple[str, int | None]] | None = None,
                  title: str | None = None, *, t0: int | None = None, max_packets: int = 60,
                  states: Mapping[int, Sequence[tuple[tuple[str, int | None], str]]] | None = None,
                  notes: Mapping[int, str] | None = None, footnote: str | None = None) -> Figure:
    """A ladder diagram (Wireshark's flow graph) of ``packets`` between endpoints.

    One vertical lane per endpoint ``(address, port)``; ``endpoints`` fixes their order
    (default: order of appearance, the first sender on the left). An endpoint seen sending with
    more than one link-layer source address is split into one lane per MAC: two machines
    answering for one IP (a load balancer and its backend) become visible. A packet to a split
    endpoint points at its first lane, dashed on to the others (which of them received it is
    not in the packet). Each arrow is labelled with flags, seq/ack, length and window, and
    each row with the frame number and its time in seconds since ``t0`` (ns; default: the first
    packet). RSTs are red, SYNs blue, SYN-ACKs green, FINs purple. At most ``max_packets``
    packets are drawn.

    ``states`` optionally maps a frame number to the TCP states it moved endpoints into,
    ``[((address, port), "CLOSE-WAIT"), ...]``; they are written beside the lanes under that
    frame's arrow (:func:`ladder_states` builds it from connections). ``notes`` maps a frame
    number to a short word on its role ("challenge ack"), written right of the lanes.
    ``footnote`` is written under the last row (what the drawing leaves out: "... 99,988 more
    attempts on this 4-tuple").
    """
    with _style():
        return _ladder(list(packets[:max_packets]), endpoints, title, t0, len(packets), states or {}, notes or {},
                       footnote)


def ladder_states(conns: Iterable[Connection | ConnRecord]) -> dict[int, list[tuple[tuple[str, int | None], str]]]:
    """The ``states`` argument of :func:`ladder_figure` from the connections' inferred RFC 793
    state changes (``Connection.transitions``)."""
    out: dict[int, list[tuple[tuple[str, int | None], str]]] = {}
    for c in conns:
        for frame, _ts, side, state in c.transitions:
            ep = c.orig if side == "orig" else c.resp
            out.setdefault(frame, []).append(((ep.addr, ep.port), state))
    return out


_MAX_LANES = 6
_GUTTER = 1.45  # inches for the frame/time column
_EDGE = 1.5  # inches between the outer lanes and the figure's edges (room for labels)


def _ladder(pkts: list[Packet], endpoints: Sequence[tuple[str, int | None]] | None, title: str | None,
            t0_arg: int | None, total: int,
            states: Mapping[int, Sequence[tuple[tuple[str, int | None], str]]], notes: Mapping[int, str],
            footnote: str | None = None) -> Figure:
    pkts = [p for p in pkts if p.src is not None and p.dst is not None]
    order: list[tuple[str, int | None]] = list(endpoints or [])
    for p in pkts:
        for ep in ((p.src or "?", p.sport), (p.dst or "?", p.dport)):
            if ep not in order:
                order.append(ep)
    by_address = False
    if len(order) > _MAX_LANES and len({addr for addr, _ in order}) <= _MAX_LANES:
        # Many ports between few hosts (a scan, a flood from one client): one lane per address,
        # the ports go into the arrows' labels.
        by_address = True
        order = list(dict.fromkeys((addr, None) for addr, _ in order))
        states = {n: [((addr, None), st) for (addr, _), st in v] for n, v in states.items()}

    def lane_ep(addr: str | None, port: int | None) -> tuple[str, int | None]:
        return (addr or "?", None if by_address else port)

    # Too many endpoints make a ladder unreadable: keep the first few, drop the packets of others.
    keep = set(order[:_MAX_LANES])
    dropped = sum(1 for p in pkts if not {lane_ep(p.src, p.sport), lane_ep(p.dst, p.dport)} <= keep)
    pkts = [p for p in pkts if {lane_ep(p.src, p.sport), lane_ep(p.dst, p.dport)} <= keep]
    order = [ep for ep in order if ep in keep]
    macs: dict[tuple[str, int | None], list[str]] = {}
    for p in pkts:
        mac = p.src_mac
        if mac and mac != _ZERO_MAC:
            seen = macs.setdefault(lane_ep(p.src, p.sport), [])
            if mac not in seen:
                seen.append(mac)
    lanes: list[tuple[tuple[str, int | None], str | None]] = []
    for ep in order:
        m = macs.get(ep, [])
        if len(m) > 1:
            lanes.extend((ep, mac) for mac in m[:3])
        else:
            lanes.append((ep, m[0] if m else None))
    split = {ep for ep, m in macs.items() if len(m) > 1}
    n = len(pkts)
    nl = len(lanes)
    # Geometry in inches: x data units are inches, so labels keep their size whatever the lanes.
    unit = 4.2 if nl <= 2 else 3.4 if nl == 3 else 2.6  # between lanes: room for an arrow's label
    right = _EDGE + (1.1 if any(p.no in notes for p in pkts) else 0.0)
    width = min(14.0, max(6.5, _GUTTER + _EDGE + right + unit * max(nl - 1, 0)))
    if nl > 1:
        unit = (width - _GUTTER - _EDGE - right) / (nl - 1)
    lane_x = {lane: _GUTTER + _EDGE + i * unit for i, lane in enumerate(lanes)}
    if nl == 1:
        lane_x = {lanes[0]: (width + _GUTTER) / 2}
    first_lane: dict[tuple[str, int | None], float] = {}
    for lane in lanes:
        first_lane.setdefault(lane[0], lane_x[lane])
    last_x = max(lane_x.values(), default=0.0)
    foot = 0.35 if footnote else 0.0
    height = 1.3 + 0.4 * max(n, 1) + foot
    # No layout engine: nothing sticks out of the axes but the title, and laying out a few dozen
    # labels once more per drawing is what costs the time in a report with many ladders.
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0.0, 0.005, 1.0, 1 - 0.42 / height))
    for side in ("top", "right", "left", "bottom"):
        ax.spines[side].set_visible(False)
    ax.set_xticks([])
    ax.set_yticks([])
    heading = title or "Ladder of the evidence packets"
    if total > n + dropped:
        heading += f" (first {n + dropped} of {total})"
    if dropped:
        heading += f"; {dropped} packet{'s' if dropped != 1 else ''} between other endpoints not drawn"
    fig.text(0.01, 1 - 0.08 / height, heading, ha="left", va="top", fontsize=10)
    if not pkts:
        ax.text(0.5, 0.5, "no packets to draw", ha="center", va="center", transform=ax.transAxes)
        return fig
    t0 = t0_arg if t0_arg is not None else pkts[0].ts
    ax.set_xlim(0, width)
    ax.set_ylim(n - 0.4 + foot / 0.4, -1.1)
    if footnote:
        ax.text(0.1, n - 0.1, footnote, ha="left", va="center", fontsize=8.5, color="#5d4037", fontstyle="italic")
    for lane, x in lane_x.items():
        ep, mac = lane
        ax.plot([x, x], [-0.55, n - 0.45], color="#9e9e9e", linewidth=1.2, zorder=1)
        label = _ep_text(ep) + (f"\nMAC {mac}" if mac else "")
        ax.text(x, -0.65, label, ha="center", va="bottom", fontsize=8.5, fontweight="bold",
                color="#b71c1c" if ep in split else "#212121")
    ax.text(0.1, -0.65, "frame", ha="left", va="bottom", fontsize=8, color="#616161")
    ax.text(_GUTTER - 0.1, -0.65, "time (s)", ha="right", va="bottom", fontsize=8, color="#616161")
    gaps = [(pkts[i + 1].ts - pkts[i].ts) / 1e9 for i in range(len(pkts) - 1)]
    typical = sorted(gaps)[len(gaps) // 2] if gaps else 0.0
    for y, p in enumerate(pkts):
        if y and gaps[y - 1] > max(0.2, 20 * typical):
            # A long silence between two rows is part of the story (a socket left waiting).
            ax.text(0.1, y - 0.5, f"\u22ee {gaps[y - 1]:.3f} s later", ha="left", va="center", fontsize=7.5,
                    color="#8d6e63", fontstyle="italic")
        src_ep, dst_ep = lane_ep(p.src, p.sport), lane_ep(p.dst, p.dport)
        mac = p.src_mac if p.src_mac and p.src_mac != _ZERO_MAC else None
        xs = lane_x.get((src_ep, mac), first_lane[src_ep]) if src_ep in split else first_lane[src_ep]
        if dst_ep in split:
            targets = [lane_x[lane] for lane in lanes if lane[0] == dst_ep]
            xd = min(targets, key=lambda x: abs(x - xs))  # the nearest lane of that address
            others = [x for x in targets if x != xd]
        else:
            xd, others = first_lane[dst_ep], []
        colour = _arrow_colour(p)
        rel = (p.ts - t0) / 1e9
        # Two texts: SVG collapses runs of spaces, so one padded string would not stay aligned.
        ax.text(0.1, y, str(p.no), ha="left", va="center", fontsize=8, family="monospace", color="#424242")
        ax.text(_GUTTER - 0.1, y, f"{rel:.6f}", ha="right", va="center", fontsize=8, family="monospace",
                color="#424242")
        if xs == xd:  # both ends on one lane (a packet to itself): a marker
            ax.plot([xs], [y], marker="o", color=colour)
        else:
            ax.annotate("", xy=(xd, y), xytext=(xs, y), zorder=3,
                        arrowprops={"arrowstyle": "-|>", "color": colour, "linewidth": 1.6,
                                    "shrinkA": 0, "shrinkB": 0, "mutation_scale": 12})
        for xo in others:
            ax.plot([xd, xo], [y, y], color=colour, linewidth=1.0, linestyle=(0, (2, 2)), zorder=2)
            ax.plot([xo], [y], marker="o", markersize=3, color=colour, zorder=2)
        label = _packet_label(p)
        if by_address and p.sport is not None:
            label = f"{p.sport} \u2192 {p.dport} {label}"
        ax.text((xs + xd) / 2, y - 0.12, label, ha="center", va="bottom",
                fontsize=8, color=colour, fontweight="bold" if colour == _RST_C else "normal",
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5, "alpha": 0.85})
        if p.no in notes:
            ax.text(last_x + 0.25, y, notes[p.no][:28], ha="left", va="center", fontsize=8, color="#263238",
                    fontweight="bold")
        for ep, state in states.get(p.no, ()):
            if ep in first_lane:
                # On the lane that sent or got this packet (a split address has several).
                x = xs if ep == src_ep else xd if ep == dst_ep else first_lane[ep]
                right = x < last_x or nl == 1
                ax.text(x + (0.06 if right else -0.06), y + 0.2, state, ha="left" if right else "right",
                        va="top", fontsize=7, color="#5d4037", fontstyle="italic",
                        bbox={"facecolor": "#fff8e1", "edgecolor": "#d7ccc8", "pad": 1.0, "linewidth": 0.5})
    return fig


# -- time-sequence graph ---------------------------------------------------------------------------
def sequence_figure(packets: Sequence[Packet], conn: Connection | ConnRecord, *, t0: int | None = None,
                    max_segments: int = 4000) -> Figure:
    """A Stevens-style time-sequence graph of one TCP connection.

    For each direction that carried data: every data segment is a vertical bar from its
    relative sequence number to seq+len at the time it was seen; retransmissions (a segment
    that does not advance past the highest sequence already sent) are red; the line of ACKs
    coming back is green and the receive window edge (ACK + scaled window) is dashed. SYN, FIN
    and RST are marked. Sequence numbers are relative to each side's ISN (or its first
    sequence number when the SYN was not captured). ``t0`` (ns) defaults to the first packet;
    at most ``max_segments`` segments per direction are drawn.
    """
    with _style():
        return _sequence(list(packets), conn, t0, max_segments)


def _is_from(p: Packet, addr: str, port: int | None) -> bool:
    return p.src == addr and p.sport == port


def _sequence(pkts: list[Packet], conn: Connection | ConnRecord, t0_arg: int | None, max_segments: int) -> Figure:
    pkts = [p for p in pkts if p.seq is not None and p.flags is not None]
    o, r = conn.orig, conn.resp
    candidates = []
    for snd, rcv, name in ((o, r, "originator"), (r, o, "responder")):
        mine = [p for p in pkts if _is_from(p, snd.addr, snd.port)]
        theirs = [p for p in pkts if _is_from(p, rcv.addr, rcv.port)]
        candidates.append((sum(p.payload_len or 0 for p in mine), (snd, rcv, name, mine, theirs)))
    # The direction that carried the most data, and the other one only when it carried a fair
    # share too (a request of 11 bytes does not deserve a panel).
    most = max(n for n, _ in candidates)
    sides: list[tuple[Endpoint | _EndRecord, Endpoint | _EndRecord, str, list[Packet], list[Packet]]] = [
        side for n, side in candidates if n == most or n >= most * 0.1]
    if most and len(sides) == 2 and candidates[1][0] == most and candidates[0][0] < most:
        sides.reverse()
    if not most:
        sides = [candidates[0][1]]
    panel, gap, top, bottom = 2.7, 0.55, 0.45, 0.55 + _legend_height(8)
    fig = _new_figure(10, top + len(sides) * panel + (len(sides) - 1) * gap + bottom, left=1.05, right=0.25,
                      top=top, bottom=bottom, hspace=gap / panel)
    t0 = t0_arg if t0_arg is not None else (pkts[0].ts if pkts else conn.first_ts)
    wscale_ok = bool((o.syn_opts or {}).get("wscale") is not None and (r.syn_opts or {}).get("wscale") is not None)
    axes = fig.subplots(len(sides), 1, squeeze=False)
    for ax, (snd, rcv, name, mine, theirs) in zip((a[0] for a in axes), sides, strict=True):
        base = snd.isn if snd.isn is not None else (mine[0].seq if mine and mine[0].seq is not None else 0)

        def rel(seq: int, base: int = base) -> int:
            d = (seq - base) & _MASK
            return d - (1 << 32) if d >= 1 << 31 else d

        _draw_direction(ax, mine, theirs, rel, t0, max_segments,
                        (rcv.syn_opts or {}).get("wscale", 0) if wscale_ok else 0)
        ax.set_title(f"{name} {_ep_text((snd.addr, snd.port))} \u2192 {_ep_text((rcv.addr, rcv.port))}",
                     loc="left", fontsize=9.5)
        ax.set_ylabel("relative sequence number")
    axes[-1][0].set_xlabel("seconds since the first frame of the capture" if t0_arg is not None
                           else "seconds since the first packet")
    handles = [Line2D([], [], color="#1565c0", linewidth=2, label="data segment (seq .. seq+len)"),
               Line2D([], [], color="#c62828", linewidth=2.5, marker="o", markerfacecolor="none",
                      label="retransmission"),
               Line2D([], [], color="#2e7d32", linewidth=1.2, label="ACKs from the receiver"),
               Line2D([], [], color="#9e9e9e", linewidth=1, linestyle="--", label="receive window edge"),
               Line2D([], [], linestyle="none", marker="v", color="#6d4c41", label="zero window advertised"),
               Patch(facecolor="#fbe9e7", label="receiver's window closed"),
               Line2D([], [], linestyle="none", marker="x", color="#c62828", label="RST"),
               Line2D([], [], linestyle="none", marker="|", markersize=9, color="#7b1fa2", label="SYN/FIN")]
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncols=3, fontsize=8, frameon=False)
    fig.suptitle(f"Time-sequence graph of {conn.uid}", x=0.01, y=0.995, ha="left", va="top", fontsize=10)
    return fig


def _draw_direction(ax: Any, mine: list[Packet], theirs: list[Packet], rel: Any, t0: int, max_segments: int,
                    wscale: int) -> None:
    seg_x: list[float] = []
    seg_y: list[float] = []
    rtx_x: list[float] = []
    rtx_y: list[float] = []
    ctl_x: list[float] = []
    ctl_y: list[float] = []
    rst_x: list[float] = []
    rst_y: list[float] = []
    highest: int | None = None
    drawn = 0
    for p in mine:
        assert p.seq is not None and p.flags is not None
        t = (p.ts - t0) / 1e9
        s = rel(p.seq)
        length = p.payload_len or 0
        if p.flags & TCP_RST:
            rst_x.append(t)
            rst_y.append(s)
        if p.flags & (TCP_SYN | TCP_FIN):
            ctl_x.append(t)
            ctl_y.append(s)
        if length <= 0:
            continue
        end = s + length
        retrans = highest is not None and end <= highest
        if drawn < max_segments:
            xs, ys = (rtx_x, rtx_y) if retrans else (seg_x, seg_y)
            xs.extend((t, t, float("nan")))
            ys.extend((s, end, float("nan")))
            drawn += 1
        if highest is None or end > highest:
            highest = end
    ack_x: list[float] = []
    ack_y: list[float] = []
    win_x: list[float] = []
    win_y: list[float] = []
    zero_x: list[float] = []
    zero_y: list[float] = []
    closed_since: float | None = None
    for p in theirs[: max_segments * 2]:
        if p.flags is None or not p.flags & TCP_ACK or p.ack is None:
            continue
        t = (p.ts - t0) / 1e9
        a = rel(p.ack)
        ack_x.append(t)
        ack_y.append(a)
        if p.window is not None and not p.flags & (TCP_SYN | TCP_RST):
            win_x.append(t)
            win_y.append(a + (p.window << wscale))
            if p.window == 0:
                zero_x.append(t)
                zero_y.append(a)
                if closed_since is None:
                    closed_since = t
            elif closed_since is not None:
                # The receiver's window was closed from closed_since to t: the sender had to wait.
                ax.axvspan(closed_since, t, color="#fbe9e7", zorder=0)
                closed_since = None
    if closed_since is not None and ack_x:
        ax.axvspan(closed_since, max(ack_x[-1], seg_x[-2] if seg_x else 0), color="#fbe9e7", zorder=0)
    if zero_x:
        ax.plot(zero_x, zero_y, linestyle="none", marker="v", markersize=6, color="#6d4c41", zorder=5)
    if ack_x:
        ax.step(ack_x, ack_y, where="post", color="#2e7d32", linewidth=1.2, zorder=2)
    if win_x:
        ax.step(win_x, win_y, where="post", color="#9e9e9e", linewidth=1, linestyle="--", zorder=1)
    if seg_x:
        ax.plot(seg_x, seg_y, color="#1565c0", linewidth=2, solid_capstyle="butt", zorder=3, gid="segments")
    if rtx_x:
        ax.plot(rtx_x, rtx_y, color="#c62828", linewidth=2.5, solid_capstyle="butt", zorder=4, gid="retransmissions")
        # A marker too: at the scale of a long transfer one segment is shorter than a pixel.
        ax.plot(rtx_x[::3], rtx_y[::3], linestyle="none", marker="o", markersize=4, markerfacecolor="none",
                markeredgecolor="#c62828", markeredgewidth=1.2, zorder=5)
    if ctl_x:
        ax.plot(ctl_x, ctl_y, linestyle="none", marker="|", markersize=9, color="#7b1fa2", zorder=4)
    if rst_x:
        ax.plot(rst_x, rst_y, linestyle="none", marker="x", markersize=8, color="#c62828", zorder=5)
    if not (seg_x or rtx_x or ack_x or ctl_x or rst_x):
        ax.text(0.5, 0.5, "no packets of this direction", ha="center", va="center", transform=ax.transAxes)
    ax.ticklabel_format(axis="y", style="plain", useOffset=False)


# -- SVG -------------------------------------------------------------------------------------------
_ID_RE = re.compile(r' id="([^"]+)"')
_REF_RE = re.compile(r'(url\(#|href="#)([^")]+)')


def figure_to_svg(fig: Figure, id_prefix: str | None = None) -> str:
    """The figure as one ``<svg>`` element to inline into HTML.

    Text stays text (searchable, selectable, escaped by matplotlib), there is no XML prolog, no
    metadata and no global ``<style>``; ids are prefixed with ``id_prefix`` (default: a hash of
    the drawing) so that several figures can share one page, and ids nothing refers to are
    dropped.
    """
    from .report import visible

    buf = io.StringIO()
    with _style(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font", category=UserWarning)
        # Transparent: the page's card behind the drawing gives the background (light and dark).
        fig.savefig(buf, format="svg", transparent=True,
                    metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    svg = visible(buf.getvalue())
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    svg = re.sub(r'<style type="text/css">\*\{[^<]*\}</style>\s*', "", svg)
    svg = re.sub(r"<defs>\s*</defs>\s*", "", svg)
    svg = svg.replace("<svg ", '<svg stroke-linejoin="round" stroke-linecap="butt" ', 1)
    prefix = id_prefix if id_prefix is not None else "s" + hashlib.sha1(svg.encode()).hexdigest()[:8] + "-"
    referenced = {m.group(2) for m in _REF_RE.finditer(svg)}

    def fix_id(m: re.Match[str]) -> str:
        return f' id="{prefix}{m.group(1)}"' if m.group(1) in referenced else ""

    svg = _ID_RE.sub(fix_id, svg)
    svg = _REF_RE.sub(lambda m: f"{m.group(1)}{prefix}{m.group(2)}", svg)
    # Lines of path data: one space is enough.
    svg = re.sub(r" \n", " ", svg)
    return svg.strip()


def packets_between(packets: Iterable[Packet], a: tuple[str, int | None], b: tuple[str, int | None]) -> list[Packet]:
    """The packets exchanged between two endpoints, in either direction."""
    out = []
    for p in packets:
        s, d = _ep(p.src, p.sport), _ep(p.dst, p.dport)
        if (s == a and d == b) or (s == b and d == a):
            out.append(p)
    return out
