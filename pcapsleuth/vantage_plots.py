"""Drawings and the report section of a vantage analysis (several captures of one incident).

``vantage_ladder_figure`` draws one connection as seen from every vantage point side by side: one
vertical lane per point, ordered along the path (the originator's side on the left), one row per
packet. A packet is a line through the lanes of the points that saw it, with a dot and the frame
number at each; the rows are time-aligned on the reference clock (each point's timestamps minus its
estimated clock offset), and within a row a later sighting sits lower. A point that saw the
connection but missed the packet gets a red cross with the reason (``not sent``, ``lost``,
``bypassed``, ``appeared after``).

``vantage_report_context`` builds the data of ``reports/templates/_vantage.html.j2`` (the report
section included from ``report.html.j2`` when ``render_html(..., vantage=...)`` is given).
Everything from the captures is escaped by the templates; the drawings are matplotlib SVG text.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matplotlib.figure import Figure

from .packet import TCP_ACK, TCP_RST, flag_names  # the label: FIN SYN RST PSH ACK only (flags & 0x01F)
from .plots import _style, flag_colour  # the report's drawing style and arrow colours

if TYPE_CHECKING:
    from .vantage import PathConnection, PathPacket, VantageResult

__all__ = ["MISSED_WORDS", "choose_connections", "vantage_ladder_figure", "vantage_report_context"]

#: How a missed packet is named in drawings and tables (reasons: see pcapsleuth.vantage).
MISSED_WORDS = {
    "not_sent": "not sent here",
    "lost_before": "lost before",
    "bypassed": "bypassed",
    "appeared_after": "appeared after",
    "not_seen": "not seen",
}


_MISS_C = "#c62828"
_GUTTER = 1.3  # inches: row time column
_EDGE = 1.6  # inches beyond the outer lanes (room for labels)


def _fmt_delay(s: float) -> str:
    a = abs(s)
    if a < 1e-3:
        return f"{s * 1e6:.1f} \u00b5s"
    if a < 1:
        return f"{s * 1e3:.3f} ms"
    return f"{s:.3f} s"


def choose_connections(result: VantageResult, limit: int = 4) -> list[PathConnection]:
    """The connections worth a ladder: the first connection of each vantage finding (three
    identical attempts need one drawing), else the first one seen at more than one point."""
    by_id = {pc.id: pc for pc in result.paths}
    chosen: list[PathConnection] = []
    for f in result.findings:
        conns = f.evidence.get("connections") or [f.evidence.get("connection")]
        first = next((c for c in conns if isinstance(c, str) and c in by_id), None)
        if first is not None and by_id[first] not in chosen and len(chosen) < limit:
            chosen.append(by_id[first])
    if not chosen:
        chosen = [pc for pc in result.paths if len(pc.members) > 1][:1]
    return chosen


def _window(pc: PathConnection, max_packets: int) -> tuple[int, list[PathPacket]]:
    """The rows to draw: from a little before the first unusual packet."""
    pkts = pc.packets
    if len(pkts) <= max_packets:
        return 0, pkts
    first = next((i for i, pp in enumerate(pkts) if pp.status != "ok" or pp.missed), 0)
    start = max(0, min(first - 3, len(pkts) - max_packets))
    return start, pkts[start:start + max_packets]


def vantage_ladder_figure(result: VantageResult, connection: str, *, max_packets: int = 36) -> Figure:
    """A side-by-side ladder of one path connection (``connection``: an id such as ``V1``)."""
    pc = next((c for c in result.paths if c.id == connection), None)
    if pc is None:
        raise KeyError(f"no path connection {connection!r} (have {', '.join(c.id for c in result.paths)})")
    with _style():
        return _ladder(result, pc, max_packets)


def _lanes(result: VantageResult, pc: PathConnection) -> list[int]:
    order = pc.order("o2r")
    back = [p for p in reversed(pc.order("r2o")) if p not in order]
    lanes = order + back
    lanes += [p for p in sorted(pc.members) if p not in lanes]
    if pc.orig_point is not None and pc.orig_point in lanes:  # the originator's capture on the left
        lanes.remove(pc.orig_point)
        lanes.insert(0, pc.orig_point)
    if pc.resp_point is not None and pc.resp_point in lanes:
        lanes.remove(pc.resp_point)
        lanes.append(pc.resp_point)
    lanes += [p.index for p in result.points if p.index not in lanes]
    return lanes


#: Characters of a vantage point's name drawn on its lane (a name is a file's stem, or --name).
_NAME_CHARS = 40


def _lane_name(name: str) -> str:
    """A point's name as a lane's label: bidi and control characters as visible escapes (they
    would reorder or hide the label), cut to what fits above a lane."""
    from .report import visible

    shown = visible(name)
    return shown if len(shown) <= _NAME_CHARS else shown[: _NAME_CHARS - 1] + "\u2026"


def _ladder(result: VantageResult, pc: PathConnection, max_packets: int) -> Figure:
    start, pkts = _window(pc, max_packets)
    lanes = _lanes(result, pc)
    names = [_lane_name(n) for n in result.names]
    theta = [c.offset_ns or 0 for c in result.clock]
    t0 = result.t0
    nl = len(lanes)
    unit = 3.3 if nl <= 2 else 2.7 if nl == 3 else 2.2
    width = min(16.0, max(7.5, _GUTTER + 2 * _EDGE + unit * max(nl - 1, 1)))
    unit = (width - _GUTTER - 2 * _EDGE) / max(nl - 1, 1)
    lane_x = {p: _GUTTER + _EDGE + i * unit for i, p in enumerate(lanes)}
    if nl == 1:
        lane_x = {lanes[0]: (width + _GUTTER) / 2}
    n = len(pkts)
    head = 1.25
    height = head + 0.55 + 0.5 * max(n, 1)
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    title = f"Connection {pc.id}: {pc.orig[0]}:{pc.orig[1]} \u2192 {pc.resp[0]}:{pc.resp[1]}"
    sub = f"seen from {len(pc.members)} of {len(result.points)} vantage points"
    if start or start + n < len(pc.packets):
        sub += f"; packets {start + 1}..{start + n} of {len(pc.packets):,}"
    ax.text(0.1, 0.22, title, ha="left", va="center", fontsize=10, fontweight="bold")
    ax.text(0.1, 0.45, sub, ha="left", va="center", fontsize=8.5, color="#424242")
    top = head + 0.25
    bottom = top + 0.5 * max(n, 1)
    for p in lanes:
        x = lane_x[p]
        in_conn = p in pc.members
        ax.plot([x, x], [top - 0.15, bottom], color="#9e9e9e" if in_conn else "#e0e0e0", linewidth=1.4, zorder=1)
        clock = result.clock[p]
        role = ("originator's capture" if p == pc.orig_point else "responder's capture" if p == pc.resp_point
                else "on the path" if in_conn else "did not see this connection")
        lines = [names[p], role, "reference clock" if clock.method == "reference" else f"clock {clock.text()}"]
        ax.text(x, top - 0.2, "\n".join(lines), ha="center", va="bottom", fontsize=8,
                color="#212121" if in_conn else "#9e9e9e", linespacing=1.25)
    ax.text(0.1, top - 0.2, "time (s)\nreference clock", ha="left", va="bottom", fontsize=7.5, color="#616161")
    # Within a row, later sightings sit lower: scale by the largest one-way delay drawn.
    spans = []
    for pp in pkts:
        ts = [pp.at[p][0].ts_first - theta[p] for p in pp.at]
        spans.append(max(ts) - min(ts))
    max_span = max(spans, default=0) or 1
    for row, pp in enumerate(pkts):
        y0 = top + 0.5 * row + 0.12
        o = pp.any.first
        flags, length = o.flags or 0, o.payload_len or 0
        colour = flag_colour(flags, length)
        seen = sorted(pp.at, key=lambda p: (pp.at[p][0].ts_first - theta[p], lanes.index(p)))
        t_first = pp.at[seen[0]][0].ts_first - theta[seen[0]]
        pts: list[tuple[float, float, int]] = []
        for p in seen:
            t = pp.at[p][0].ts_first - theta[p]
            pts.append((lane_x[p], y0 + 0.26 * (t - t_first) / max_span, p))
        ax.text(_GUTTER - 0.1, y0, f"{(pp.t - t0) / 1e9:.6f}", ha="right", va="center", fontsize=7.5,
                family="monospace", color="#424242")
        going_right = pp.direction == "o2r"
        # Seen at one point only: a stub in the direction of travel, arriving when the point is at
        # the receiving end (the packet came from somewhere no capture saw), else leaving.
        stub = 0.0
        if len(pts) == 1:
            x, y, p = pts[0]
            receiver = pc.orig_point if pp.direction == "r2o" else pc.resp_point
            arriving = p == receiver or p == (lanes[-1] if going_right else lanes[0])
            dx = 0.5 if going_right else -0.5
            tail, head_x = (x - dx, x) if arriving else (x, x + dx)
            stub = -dx if arriving else dx
            ax.annotate("", xy=(head_x, y), xytext=(tail, y), zorder=3,
                        arrowprops={"arrowstyle": "-|>", "color": colour, "linewidth": 1.4, "shrinkA": 0,
                                    "shrinkB": 0, "mutation_scale": 10})
        for (x1, y1, p1), (x2, y2, p2) in zip(pts, pts[1:], strict=False):
            ax.annotate("", xy=(x2, y2), xytext=(x1, y1), zorder=3,
                        arrowprops={"arrowstyle": "-|>", "color": colour, "linewidth": 1.6, "shrinkA": 3,
                                    "shrinkB": 3, "mutation_scale": 11})
            d = ((pp.at[p2][0].ts_first - theta[p2]) - (pp.at[p1][0].ts_last - theta[p1])) / 1e9
            ax.text(x1 + (x2 - x1) * 0.25, y1 + (y2 - y1) * 0.25 + 0.08, _fmt_delay(d), ha="center", va="top",
                    fontsize=6.5, color="#757575")
        for x, y, p in pts:
            ax.plot([x], [y], marker="o", markersize=4.5, color=colour, zorder=4)
            frames = pp.at[p][0].frames
            # Frame numbers outside the lanes where there is room: left of the first, right of others.
            left = p == lanes[0] and nl > 1
            ax.text(x - 0.08 if left else x + 0.08, y, "#" + ",".join(str(f) for f in frames[:3]),
                    ha="right" if left else "left", va="center", fontsize=7, color="#424242", zorder=5)
        for p, reason in pp.missed.items():
            if p not in lane_x:
                continue
            x = lane_x[p]
            ax.plot([x], [y0], marker="x", markersize=7, markeredgewidth=2, color=_MISS_C, zorder=4)
            ax.text(x + 0.08, y0 + 0.06, MISSED_WORDS.get(reason, reason), ha="left", va="top", fontsize=6.5,
                    color=_MISS_C, fontstyle="italic", zorder=5)
        # Over the first leg (the middle of the whole line may be a lane with its frame numbers); a
        # packet seen at one point only is labelled beside its stub.
        label = f"[{flag_names(flags & 0x01F)}] seq={o.seq}" + (f" ack={o.ack}" if flags & TCP_ACK else "") + \
            (f" len={length}" if length else "")
        align = "center"
        if len(pts) > 1:
            label_x = (pts[0][0] + pts[1][0]) / 2
        else:
            label_x = pts[0][0] + stub + (0.05 if stub > 0 else -0.05)
            align = "left" if stub > 0 else "right"
        ax.text(label_x, min(y for _, y, _ in pts) - 0.06, label, ha=align, va="bottom", fontsize=7.5,
                color=colour, fontweight="bold" if flags & TCP_RST else "normal", zorder=6,
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.4, "alpha": 0.85})
        if pp.status != "ok":
            ax.text(width - 0.1, y0, pp.status, ha="right", va="center", fontsize=7.5, color=_MISS_C,
                    fontweight="bold")
    if not pkts:
        ax.text(width / 2, top + 0.3, "no packets", ha="center", va="center")
    return fig


# -- the report section ------------------------------------------------------------------------------
def vantage_report_context(result: VantageResult, *, ladders: int = 4, ladder_packets: int = 36,
                           missed_rows: int = 40, fig_prefix: str = "vfig") -> dict[str, Any]:
    """The data of the report's vantage section (``_vantage.html.j2``)."""
    from .plots import figure_to_svg
    from .report import Limits, display_filter, tshark_command
    from .util import capped

    names = result.names
    chars = Limits.text_chars
    points = []
    for p, clock in zip(result.points, result.clock, strict=True):
        by = Counter(f.severity for f in p.result.findings)
        points.append({
            "name": p.name,
            "file": capped(Path(p.capture.path).name if p.capture.path else p.name, chars),
            "path": None if p.capture.path is None else capped(p.capture.path, chars),
            "frames": p.capture.frames,
            "tcp": p.tcp_packets,
            "compared": len(p.packets),
            "truncated": p.truncated,
            "first_ts": p.capture.first_ts,
            "duration": p.capture.duration,
            "clock": clock.text(),
            "clock_method": clock.method,
            "matched": clock.matched,
            "connections": len(p.result.connections),
            "own_macs": sorted(p.own_macs),
            "finding_counts": [(s, by[s]) for s in ("error", "warning", "notice", "info") if by[s]],
            "findings": [{"severity": f.severity, "id": f.id, "summary": f.summary, "frames": f.frames[:12]}
                         for f in sorted(p.result.findings, key=lambda f: f.sort_key())[:20]],
            "more_findings": max(len(p.result.findings) - 20, 0),
        })
    paths_by_id = {pc.id: pc for pc in result.paths}
    findings = []
    for i, f in enumerate(result.findings, 1):
        frames_at = f.evidence.get("frames_at") or {}
        pulls = []
        for name, frames in frames_at.items():
            if name not in names or not frames:
                continue
            src = result.points[names.index(name)].capture.path
            flt = display_filter(frames[:400])
            pulls.append({"point": name, "frames": frames[:40], "more": max(len(frames) - 40, 0), "filter": flt,
                          "tshark": tshark_command(src, flt)})
        figures = [(k, v if not isinstance(v, list) else ", ".join(str(x) for x in v[:12]))
                   for k, v in f.evidence.items() if k not in ("t_ref", "left_out") or v
                   if isinstance(v, (str, int, float)) and not isinstance(v, bool)
                   or isinstance(v, list) and len(v) <= 12 and all(isinstance(x, (str, int)) for x in v)]
        findings.append({"index": i, "anchor": f"vfinding-{i}", "id": f.id, "severity": f.severity,
                         "title": f.title, "summary": f.summary, "explanation": f.explanation, "pulls": pulls,
                         "figures": figures[:16]})
    drawn = []
    for k, pc in enumerate(choose_connections(result, ladders), 1):
        svg = figure_to_svg(vantage_ladder_figure(result, pc.id, max_packets=ladder_packets), f"{fig_prefix}{k}-")
        from markupsafe import Markup

        drawn.append({"id": pc.id, "svg": Markup(svg), "orig": f"{pc.orig[0]}:{pc.orig[1]}",
                      "resp": f"{pc.resp[0]}:{pc.resp[1]}", "packets": len(pc.packets)})
    missed = []
    for p in result.points:
        rows = result.missed(p.index)
        reasons = Counter(r["missed"][p.name] for r in rows)
        shown = []
        for r in rows[:missed_rows]:
            elsewhere = {k: v["frames"] for k, v in r["at"].items() if v}
            shown.append({"connection": r["connection"], "t": r["t"], "flags": r["flags"], "seq": r["seq"],
                          "ack": r["ack"], "len": r["len"], "reason": MISSED_WORDS.get(r["missed"][p.name],
                                                                                        r["missed"][p.name]),
                          "elsewhere": elsewhere, "status": r["status"]})
        missed.append({"point": p.name, "count": len(rows),
                       "reasons": [(MISSED_WORDS.get(k, k), v) for k, v in reasons.most_common()],
                       "rows": shown, "more": max(len(rows) - missed_rows, 0)})
    top = result.findings[0] if result.findings else None
    shared = sum(1 for pc in result.paths if len(pc.members) > 1)
    return {
        "points": points,
        "names": names,
        "reference": result.reference,
        "pairs": [pc.to_dict(names) for pc in result.pairs],
        "findings": findings,
        "verdict": None if top is None else {"severity": top.severity, "title": top.title, "summary": top.summary,
                                             "anchor": "vfinding-1"},
        "ladders": drawn,
        "missed": missed,
        "n_paths": len(result.paths),
        "n_shared": shared,
        "nat": result.nat,
        "known_paths": sorted(paths_by_id),
    }
