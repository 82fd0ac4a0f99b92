"""Terminal summaries."""

from __future__ import annotations

from .capture import CaptureInfo
from .util import iso_ts

__all__ = ["capture_summary"]


def capture_summary(info: CaptureInfo) -> str:
    """A few lines about the capture: size, frames, time span, link types, interfaces, damage."""
    size = f"{info.size:,} bytes" if info.size is not None else "size unknown"
    comp = f", {info.compression}" if info.compression else ""
    lines = [f"{info.path}: {info.format}{comp}, {size}, {info.frames:,} frames"]
    if info.first_ts is not None:
        lines.append(f"  time span  {iso_ts(info.first_ts)} .. {iso_ts(info.last_ts)} ({info.duration:.3f} s)")
    lines.append(f"  link types {', '.join(info.link_types) or '-'}")
    for iface in info.interfaces:
        if len(info.interfaces) > 8 and not iface.frames:
            continue
        name = iface.name or f"interface {iface.id}"
        desc = f" ({iface.description})" if iface.description else ""
        lines.append(f"  interface  {iface.id}: {name}{desc} {iface.linktype_name}, snaplen {iface.snaplen}, "
                     f"{iface.frames:,} frames")
    if info.damage:
        for d in info.damage.to_list():
            frames = d["frames"]
            assert isinstance(frames, list)
            shown = ", ".join(str(f) for f in frames[:8]) + (" ..." if len(frames) > 8 else "")
            detail = f" - {d['detail']}" if d.get("detail") else ""
            lines.append(f"  damage     {d['kind']}: {d['count']} (frames {shown}){detail}")
    else:
        lines.append("  damage     none")
    return "\n".join(lines) + "\n"
