"""Terminal summaries."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from .capture import CaptureInfo
from .errors import printable
from .util import capped, iso_ts

if TYPE_CHECKING:
    from .findings import Finding
    from .tracker import Connection

__all__ = ["capture_summary"]

#: Findings of one id listed one line each before the rest are counted (a port scan raises
#: hundreds of "connection refused").
PER_ID = 5
#: Interfaces listed one line each before the rest are counted (a crafted pcapng has thousands).
MAX_INTERFACES = 8
#: Characters of one string from the capture or its file name (a path, an interface name or
#: description, a damage detail) shown before "… (N more bytes, in the JSON)".
TEXT_CAP = 200


def capture_summary(info: CaptureInfo, conns: list[Connection] | None = None,
                    findings: list[Finding] | None = None, *,
                    conn_states: tuple[int, Counter[str]] | None = None) -> str:
    """A few lines about the capture: size, frames, time span, link types, interfaces, damage.

    ``conn_states`` (number of connections, TCP ``conn_state`` counts) stands in for ``conns``
    when the connections are no longer in memory (a streaming analysis).
    """
    size = f"{info.size:,} bytes" if info.size is not None else "size unknown"
    comp = f", {info.compression}" if info.compression else ""
    lines = [f"{capped(info.path, TEXT_CAP)}: {info.format}{comp}, {size}, {info.frames:,} frames"]
    if info.first_ts is not None:
        lines.append(f"  time span  {iso_ts(info.first_ts)} .. {iso_ts(info.last_ts)} ({info.duration:.3f} s)")
    lines.append(f"  link types {', '.join(info.link_types) or '-'}")
    # Of more than eight interfaces, those that carried frames; at most eight lines, then a count.
    ifaces = [i for i in info.interfaces if len(info.interfaces) <= MAX_INTERFACES or i.frames]
    for iface in ifaces[:MAX_INTERFACES]:
        name = capped(iface.name, TEXT_CAP) if iface.name else f"interface {iface.id}"
        desc = f" ({capped(iface.description, TEXT_CAP)})" if iface.description else ""
        lines.append(f"  interface  {iface.id}: {name}{desc} {iface.linktype_name}, snaplen {iface.snaplen}, "
                     f"{iface.frames:,} frames")
    if len(info.interfaces) > MAX_INTERFACES:
        more = len(info.interfaces) - min(len(ifaces), MAX_INTERFACES)
        lines.append(f"  interface  … and {more:,} more interfaces (in the JSON)")
    if info.damage:
        for d in info.damage.to_list():
            frames = d["frames"]
            assert isinstance(frames, list)
            shown = ", ".join(str(f) for f in frames[:8]) + (" ..." if len(frames) > 8 else "")
            detail = f" - {capped(str(d['detail']), TEXT_CAP)}" if d.get("detail") else ""
            lines.append(f"  damage     {d['kind']}: {d['count']} (frames {shown}){detail}")
    else:
        lines.append("  damage     none")
    cov = info.coverage
    if cov is not None:
        lines.extend(f"  checksums  {line}" for line in cov.checksum_lines())
        lines.extend(f"  not analyzed {line}" for line in cov.not_analyzed_lines())
        if (snap := cov.snaplen_line()) is not None:
            lines.append(f"  snaplen    {snap}")
    if conns is not None:
        conn_states = (len(conns), Counter(c.conn_state for c in conns if c.proto == "tcp"))
    if conn_states is not None:
        n, states = conn_states
        tcp = sum(states.values())
        # Ties by name: the same line whichever order the connections were counted in.
        top = ", ".join(f"{k} {v}" for k, v in sorted(states.items(), key=lambda kv: (-kv[1], kv[0]))[:6])
        lines.append(f"  connections {n:,} ({tcp:,} TCP: {top or '-'})")
    if findings is not None:
        if not findings:
            lines.append("findings: none")
            if cov is not None:
                # What "none" covers: the verdict never says "no problems" about what was not judged.
                scope = cov.scope()
                lines.append(f"verdict: {scope[0]}. {scope[1]}" if scope else f"verdict: {cov.clean_scope()}")
        else:
            by = Counter(f.severity for f in findings)
            order = ("error", "warning", "notice", "info")
            lines.append("findings: " + ", ".join(f"{by[s]} {s}" for s in order if by[s]))
            per_id: Counter[str] = Counter()
            hidden: Counter[tuple[str, str]] = Counter()
            last_line: dict[tuple[str, str], int] = {}
            for f in findings:
                if per_id[f.id] < PER_ID:
                    per_id[f.id] += 1
                    summary = " ".join(f.summary.split())  # one line each, whatever the text holds
                    lines.append(f"  {f.severity.upper():7} {f.id:32} {summary}")
                    last_line[(f.severity, f.id)] = len(lines)
                else:
                    hidden[(f.severity, f.id)] += 1
            if cov is not None and (scope := cov.scope(findings=True)) is not None:
                lines.append(f"verdict: {scope[0]}. {scope[1]}")
            # "... and N more" right under the last line shown of that id, bottom up.
            for key, at in sorted(last_line.items(), key=lambda kv: -kv[1]):
                if hidden[key]:
                    lines.insert(at, f"  {key[0].upper():7} {key[1]:32} ... and {hidden[key]:,} more like this")
    # Interface names, descriptions and the path come from the capture and its file name: no
    # control character (an ANSI escape sequence, a carriage return) reaches the terminal raw.
    return "\n".join(printable(line) for line in lines) + "\n"
