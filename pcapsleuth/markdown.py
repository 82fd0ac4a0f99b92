"""A short Markdown summary of an analysis, for pasting into a ticket (``--markdown PATH``).

Rendered from ``reports/templates/summary.md.j2`` (overridable like the HTML templates). Text
from the capture is escaped for Markdown: in code spans with a long enough fence, elsewhere with
backslashes, and ``<``/``>``/``&`` as entities so that ticket systems that allow inline HTML
render none of it.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import printable
from .findings import SEVERITIES, Finding
from .util import iso_ts

if TYPE_CHECKING:
    from .analysis import AnalysisResult
    from .stream import ReportView

__all__ = ["code_span", "md_escape", "render_markdown"]

# Inline Markdown syntax: emphasis, code, links, tables, strikethrough. An underscore inside a
# word is not emphasis (CommonMark), so CLOSE_WAIT stays readable.
_MD_SPECIAL = re.compile(r"([\\`*\[\]|~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")


def md_escape(text: object) -> str:
    """Escape text for inline Markdown (CommonMark/GFM): syntax characters with a backslash, HTML as
    entities, a leading ``#``, ``>``, ``-``, ``+`` or ``1.`` cannot start a block (text is one line)."""
    s = printable(str(text).replace("\r", " ").replace("\n", " "))  # ANSI escapes etc. as visible \\x1b
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), s)
    if re.match(r"[#+\-=]", s):
        s = "\\" + s
    return re.sub(r"^(\d+)([.)])", r"\1\\\2", s)


def code_span(text: object, table: bool = False) -> str:
    """``text`` as an inline code span whose fence is longer than any run of backticks inside
    (in a GFM table cell ``|`` is escaped too: it would end the cell even inside code)."""
    s = printable(str(text).replace("\r", " ").replace("\n", " "))
    if table:
        s = s.replace("|", "\\|")
    longest = max((len(m) for m in re.findall(r"`+", s)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") or not s.strip() else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def _first_sentence(text: str) -> str:
    from .report import _first_sentence as fs

    return fs(text)


def render_markdown(result: AnalysisResult | ReportView, report_path: str | os.PathLike[str] | None = None, *,
                    template_dir: str | os.PathLike[str] | None = None, max_findings: int = 10) -> str:
    """The Markdown summary: verdict, capture facts, findings (one bullet each with frames and a
    Wireshark filter), and the HTML report's file name when there is one."""
    from .report import Limits, display_filter, template_environment, visible
    from .util import capped

    env = template_environment(template_dir)
    info = result.capture
    findings = sorted(result.findings, key=Finding.sort_key)
    by_sev = Counter(f.severity for f in findings)
    digest = result.digest
    items: list[dict[str, Any]] = []
    for f in findings[:max_findings]:
        items.append({
            "id": f.id,
            "severity": f.severity,
            "title": f.title,
            "summary": f.summary,
            "cause": _first_sentence(f.explanation),
            "frames": f.frames[:12],
            "more_frames": max(len(f.frames) - 12, 0),
            "n_frames": len(f.frames),
            "filter": display_filter(f.frames[:400]),
        })
    ctx = {
        "capture": {
            "name": capped(Path(info.path).name if info.path else "capture", Limits.text_chars),
            "path": None if info.path is None else capped(info.path, Limits.text_chars),
            "size": info.size,
            "format": info.format + (f", {info.compression}" if info.compression else ""),
            "frames": info.frames,
            "first_ts": iso_ts(info.first_ts),
            "last_ts": iso_ts(info.last_ts),
            "duration": info.duration,
            "link_types": info.link_types,
            "damage": [f"{d['kind']} {d['count']}" for d in info.damage.to_list()],
        },
        "connections": digest.n,
        "states": digest.state_counts()[:6],
        "findings": items,
        "more_findings": max(len(findings) - max_findings, 0),
        "counts": [(s, by_sev[s]) for s in reversed(SEVERITIES) if by_sev[s]],
        "top": items[0] if items else None,
        "report": None if report_path is None else Path(report_path).name,
        # What the analysis did not judge (issue 20): the checksum facts, the frames not analyzed and
        # why, and a verdict that never says "no problems found" about what could not be judged.
        "checksums": [],
        "not_analyzed": [],
        "scope": None,
        "clean": None,
    }
    cov = info.coverage
    if cov is not None:
        snap = cov.snaplen_line()
        sc = cov.scope(findings=bool(findings))
        ctx.update({"checksums": cov.checksum_lines(),
                    "not_analyzed": cov.not_analyzed_lines() + ([snap] if snap else []),
                    "scope": None if sc is None else {"title": sc[0], "text": sc[1]},
                    "clean": cov.clean_scope() if cov.not_analyzed_frames() else None})
    # Every character a terminal or a ticket's renderer would act on or hide, shown as an escape
    # (``|md`` and ``|code`` escape what they are given; this covers the rest of the template).
    return visible(env.get_template("summary.md.j2").render(ctx))
