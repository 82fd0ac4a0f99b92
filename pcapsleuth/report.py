"""The self-contained HTML report.

One file that opens anywhere, offline: inline CSS, inline SVG drawings, one small inline script
(allowed by its hash), and a Content-Security-Policy that forbids fetching anything. Everything
that comes from a capture is escaped by jinja2's autoescaping; drawings are SVG text written by
matplotlib, which escapes its text too. Then the whole page goes through :func:`visible`: bidi
overrides, isolates and marks, line separators and control characters become visible escapes
(``\u202e``), so that a file name cannot show itself reversed in the title, a heading, an
attribute or a drawing. On the finished page, not per template expression: no filter that
returns markup (``join``), no template of a ``--template-dir`` and no compiled template cached
from an older version can let one through. Long texts from the capture are cut to a bounded
prefix (:func:`capped`): the JSON keeps them whole.

The templates are ``reports/templates`` (shipped as ``pcapsleuth._reports``); a directory given
as ``template_dir`` is searched first, so a site can override one file (``style.css``, say)
and keep the rest. The script must stay in ``report.js``: its hash goes into the CSP, any other
inline script is blocked.

Big captures stay readable: the report shows top-N lists and aggregates and says how much it
left out (see :class:`Limits`).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import functools
import hashlib
import itertools
import json
import os
import re
import shlex
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from markupsafe import Markup, escape

from ._version import __version__
from .errors import ESCAPED_RANGES, char_class
from .findings import SEVERITIES, Finding, severity_rank
from .packet import Direction, Packet, flag_names
from .resources import templates_dir
from .tracker import uid_index, uid_of
from .util import capped, iso_ts, no_cyclic_gc  # capped: cut before visible(), which lengthens what it escapes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .analysis import AnalysisResult
    from .digest import ConnRecord
    from .stream import ReportView
    from .tracker import Connection
    from .vantage import VantageResult

__all__ = ["Limits", "capped", "default_report_path", "findings_to_read", "render_html", "report_stem",
           "select_findings", "template_environment", "visible"]

#: The suffix of report files: ``capture.pcap`` -> ``capture.pcapsleuth.html``.
REPORT_SUFFIX = ".pcapsleuth.html"

_CAPTURE_EXTS = (".pcapng", ".pcap", ".cap", ".dmp", ".ntar", ".trace")
_COMPRESSED_EXTS = (".gz", ".bz2", ".xz", ".zst", ".lz4")


@dataclasses.dataclass(frozen=True)
class Limits:
    """How much of a big capture the report shows; what is left out is counted."""

    findings_detailed: int = 30  # findings shown with evidence table and drawings
    detailed_per_id: int = 3  # ... at most this many of one finding id; the others are listed
    findings_listed: int = 300  # further findings listed one line each
    ladders: int = 10  # ladder diagrams in the whole report
    sequence_graphs: int = 3  # time-sequence graphs in the whole report
    sequence_packets: int = 20_000  # packets read again for one time-sequence graph
    ladder_packets: int = 24  # arrows in one ladder
    ladder_packets_data: int = 10  # ... for a data-transfer finding (its time-sequence graph says more)
    evidence_rows: int = 60  # rows of one evidence table
    filter_frames: int = 400  # frames named in one display filter
    connection_rows: int = 500  # rows of the connections table
    timeline_rows: int = 600  # above this the timeline aggregates
    interfaces: int = 32
    comments: int = 50
    top_n: int = 10  # top talkers / listeners
    refetch_frames: int = 20_000  # frames read again from the file for evidence tables
    text_chars: int = 500  # characters shown of one text from the capture (a comment, a path)
    name_chars: int = 160  # ... of an interface's name or description


# -- text from the capture -------------------------------------------------------------------------
#: What a browser would act on or not show: the terminal's set (:data:`pcapsleuth.errors.
#: ESCAPED_RANGES`: control characters, the bidi marks, embeddings, overrides and isolates,
#: zero-width and other invisible format characters, the line and paragraph separators, and lone
#: surrogates, a file name's undecodable bytes, which cannot even be written as UTF-8), but tab
#: and newline: whitespace in HTML, and the page's own.
_INVISIBLE = re.compile(char_class(tuple(r for a, b in ESCAPED_RANGES
                                         for r in (((0x00, 0x08), (0x0B, b)) if a == 0x00 else ((a, b),)))))


def _escape_char(m: re.Match[str]) -> str:
    # The terminal's escapes (a file name's non-UTF-8 byte 0xff, U+DCFF, as \xff, as in the JSON)
    from .errors import visible_escape

    return visible_escape(ord(m.group(0)))


def visible(text: object) -> str:
    """``text`` with every character of the set above shown as a visible, inert escape: U+202E
    as the six characters ``\\u202e``, ESC as ``\\x1b``. For everything the report shows
    (text, attributes, ``<title>``, SVG text): what is left cannot reorder or hide anything."""
    return _INVISIBLE.sub(_escape_char, str(text))


# -- paths -----------------------------------------------------------------------------------------
def report_stem(capture: str | os.PathLike[str]) -> str:
    """The capture's name without compression and capture extensions: ``a/b.pcap.gz`` -> ``b``."""
    path = os.fspath(capture)
    if path in ("-", "/dev/stdin", "<stdin>"):
        return "stdin"  # `analyze -` (a capture piped in) gets ./stdin.pcapsleuth.html, not ./-.pcapsleuth.html
    name = Path(path).name or "capture"
    low = name.lower()
    for ext in _COMPRESSED_EXTS:
        if low.endswith(ext) and len(name) > len(ext):
            name, low = name[: -len(ext)], low[: -len(ext)]
            break
    for ext in _CAPTURE_EXTS:
        if low.endswith(ext) and len(name) > len(ext):
            name = name[: -len(ext)]
            break
    return name


def default_report_path(capture: str | os.PathLike[str], directory: str | os.PathLike[str] | None = None) -> Path:
    """Where ``pcapsleuth analyze`` writes the report unless told: ``<capture-stem>.pcapsleuth.html``
    in ``directory`` (default: the current directory).

    The current directory, not the capture's: captures often sit in read-only or shared
    evidence stores, and a report written next to them would land where nobody looks or where
    it must not be written.
    """
    return Path(directory if directory is not None else ".") / (report_stem(capture) + REPORT_SUFFIX)


# -- jinja -----------------------------------------------------------------------------------------
def _autoescape(name: str | None) -> bool:
    return not (name or "").endswith((".md", ".md.j2", ".txt.j2"))


def template_environment(template_dir: str | os.PathLike[str] | None = None) -> jinja2.Environment:
    """The jinja2 environment of the report templates (``template_dir`` first, then the built-in ones).

    One per directory, kept: compiling the templates costs more than rendering a small report
    (a changed template file is still picked up: jinja2 checks its modification time)."""
    return _environment(None if template_dir is None else os.path.abspath(os.fspath(template_dir)))


#: The options _environment compiles templates with: change it when they change.
_COMPILED_WITH = "autoescape=html,undefined=strict,trim,lstrip,keep_newline,finalize=none"


class _QuietBytecodeCache(jinja2.FileSystemBytecodeCache):
    """jinja2's cache of compiled templates (in a private directory of the user's under the temp
    directory; a changed template has another checksum, so it is compiled again). Compiling the
    report template costs about 0.1 s a run; a cache that cannot be written costs only that."""

    def get_cache_key(self, name: str, filename: str | None = None) -> str:
        # jinja2 keys compiled code on the template's name and source only, but the code depends
        # on the environment's options too (a finalize function is compiled in, or not): a
        # compiled template of another version, or other options, must not be found.
        return super().get_cache_key(f"{_COMPILED_WITH}:{__version__}:{name}", filename)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:
            pass


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    try:
        return _QuietBytecodeCache()
    except (OSError, RuntimeError):  # (no safe private directory to be had)
        return None


@functools.lru_cache(maxsize=8)
def _environment(template_dir: str | None) -> jinja2.Environment:
    paths = [template_dir] if template_dir is not None else []
    paths.append(os.fspath(templates_dir()))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(paths),
        bytecode_cache=_bytecode_cache(),
        autoescape=_autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    from .markdown import code_span, md_escape

    env.filters["md"] = md_escape
    env.filters["code"] = code_span
    env.filters["cell_code"] = lambda text: code_span(text, table=True)
    env.filters["thousands"] = _thousands
    env.filters["seconds"] = _seconds
    env.filters["bytes"] = _bytes
    return env


def _thousands(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def _seconds(s: float | None, digits: int = 6) -> str:
    return "-" if s is None else f"{s:.{digits}f}"


def _bytes(n: int | None) -> str:
    if n is None:
        return "unknown"
    if n < 1024:
        return f"{n:,} bytes"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit} ({n:,} bytes)"
    return f"{n:,} bytes"


# -- text helpers ----------------------------------------------------------------------------------
_FRAMES_RE = re.compile(r"\b(frames?\s+)(\d+(?:(?:,\s*|\s+and\s+|\s*(?:-|\.\.|\u2013)\s*)\d+)*)")
_NUM_RE = re.compile(r"\d+")
_UID_RE = re.compile(r"\b(C\d{6,})\b")
_CODE_RE = re.compile(r"`([^`\n]+)`")


def _rich_text(text: str, frame_anchor: dict[int, str], uid_anchor: set[str]) -> Markup:
    """Escape ``text``, then link frame numbers and connection uids, and set `code` in <code>.

    Only digits, uids and our own anchors are inserted into already escaped text.
    """
    html = str(escape(text))

    def frames(m: re.Match[str]) -> str:
        def one(n: re.Match[str]) -> str:
            anchor = frame_anchor.get(int(n.group(0)))
            return f'<a class="frame-link" href="#{anchor}">{n.group(0)}</a>' if anchor else n.group(0)

        return m.group(1) + _NUM_RE.sub(one, m.group(2))

    html = _FRAMES_RE.sub(frames, html)
    html = _UID_RE.sub(lambda m: f'<a class="conn-link" href="#conn-{m.group(1)}">{m.group(1)}</a>'
                       if m.group(1) in uid_anchor else m.group(1), html)
    html = _CODE_RE.sub(lambda m: f"<code>{m.group(1)}</code>", html)
    return Markup(html)


def _uid_number(uid: str) -> int | None:
    return int(uid[1:]) if uid[1:].isdigit() else None


def _file_name(path: str | None) -> str:
    """The last part of a capture's path, as the report's title shows it."""
    return Path(path).name if path else "capture"


def _ep_text(addr: str | None, port: int | None) -> str:
    a = addr or "?"
    if port is None:
        return a
    return f"[{a}]:{port}" if ":" in a else f"{a}:{port}"


def frame_ranges(frames: Iterable[int]) -> str:
    """``1 2 3 7 9 10`` -> ``1..3 7 9..10`` (Wireshark's set syntax)."""
    nums = sorted(set(frames))
    parts: list[str] = []
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        parts.append(str(nums[i]) if i == j else f"{nums[i]}..{nums[j]}")
        i = j + 1
    return " ".join(parts)


def display_filter(frames: Sequence[int]) -> str:
    """A Wireshark display filter selecting exactly these frames."""
    return f"frame.number in {{{frame_ranges(frames)}}}"


def conversation_filter(a: tuple[str, int | None], b: tuple[str, int | None], proto: str = "tcp") -> str:
    """A Wireshark display filter for every packet between two endpoints."""
    ipf = "ipv6.addr" if ":" in a[0] or ":" in b[0] else "ip.addr"
    parts = [f"{ipf}=={a[0]}", f"{ipf}=={b[0]}"]
    if proto in ("tcp", "udp") and a[1] is not None and b[1] is not None:
        if a[1] == b[1]:
            parts.append(f"{proto}.srcport=={a[1]} && {proto}.dstport=={b[1]}")
        else:
            parts.append(f"{proto}.port=={a[1]}")
            parts.append(f"{proto}.port=={b[1]}")
    return " && ".join(parts)


def tshark_command(path: str, dfilter: str) -> str:
    """A shell command that prints the packets of ``dfilter`` with raw sequence numbers."""
    return (f"tshark -r {shlex.quote(path)} -o tcp.relative_sequence_numbers:FALSE "
            f"-Y {shlex.quote(dfilter)}")


# -- the report model ------------------------------------------------------------------------------
#: Connections of one finding looked at one by one (for a ladder's states, say): a scan's
#: finding names a million.
_LOOKED_AT = 2000
#: Findings (the first, in report order) whose first frames are read for the timeline's marks
#: when their connections keep no packets in memory (a streamed analysis's big capture).
_MARKED = 200


class _Builder:
    """Turns an :class:`AnalysisResult` (or a streamed analysis's :class:`ReportView`) into the plain
    data the templates render."""

    def __init__(self, result: AnalysisResult | ReportView, source_path: str, limits: Limits) -> None:
        self.result = result
        self.info = result.capture
        self.path = source_path
        self.limits = limits
        self.t0 = self.info.first_ts if self.info.first_ts is not None else 0
        self.digest = result.digest
        #: A connection by uid (``None`` when there is none); a streamed analysis reads it back
        #: from its spill on demand.
        self.conn = result.connection
        rank = {s: i for i, s in enumerate(SEVERITIES)}
        # Finding.sort_key's order, with a cheaper key (a capture can raise many findings).
        self.findings = sorted(result.findings, key=lambda f: (-rank[f.severity], f.frames[0], f.id))
        self.fig_no = 0
        self.ladders = 0
        self.seq_graphs = 0
        self.seq_done: dict[str, str] = {}  # uid -> anchor of the finding that shows its graph
        self.seq_packets: dict[str, list[Packet]] = {}
        self.packets: dict[int, Packet] = {}
        self.unavailable: set[int] = set()
        from .refetch import rereadable

        #: False for a capture read from standard input or a file object: its frames cannot be
        #: read again (only the packets the analysis kept are there for the evidence tables).
        self.rereadable = rereadable(source_path)
        self.multi_iface = len(self.info.interfaces) > 1
        self.conn_rows = self._choose_connection_rows()
        self.shown_uids = {c.uid for c in self.conn_rows}
        self.finding_ids_by_uid: dict[str, list[tuple[int, str]]] = {}
        for i, f in enumerate(self.findings, 1):
            for uid in f.connections:
                if uid not in self.shown_uids:
                    continue
                lst = self.finding_ids_by_uid.setdefault(uid, [])
                if not lst or lst[-1][0] != i:
                    lst.append((i, f.id))

    # evidence packets -------------------------------------------------------------------------
    def load_packets(self, detailed: Sequence[Finding], marked: Sequence[Finding] = ()) -> None:
        """Read the evidence packets of the ``detailed`` findings, and the first few of ``marked``
        ones whose connections keep none in memory (for the timeline's marks)."""
        frames: set[int] = set()
        held: list[Sequence[Packet]] = []
        budget = self.limits.refetch_frames
        per = max(budget // max(len(detailed), 1), self.limits.evidence_rows * 2)
        evidence_of = self.result.evidence_of
        for f in detailed:
            frames.update(f.frames[:per])
            held.extend(evidence_of(u) for u in f.connections[:2000])
        for f in marked:
            if not any(evidence_of(u) for u in f.connections[:_LOOKED_AT]):
                frames.update(f.frames[:20])
        from .refetch import packets_from

        self.packets, self.unavailable = packets_from(self.path, frames, held)

    def _others_than_chain(self, f: Finding, conn: Connection | ConnRecord) -> int:
        """How many of the finding's connections are not on ``conn``'s 4-tuple (its chain of
        predecessors and successors). Counted on the digest's links, one byte a connection for the
        marks: no connection is read back or kept (a chain of 100,000 reuses cost 1 GB read so)."""
        d = self.digest
        chain = d.chain(conn.index)
        first = next(chain)
        second = next(chain, None)
        if second is None:  # alone on its tuple: the common case
            return sum(1 for u in f.connections if u != conn.uid)
        marks = bytearray(len(d.first_ts))
        for i in (first, second, *chain):
            marks[i] = 1
        on_chain = 0
        for u in f.connections:
            j = _uid_number(u)
            on_chain += j is not None and 0 <= j < len(marks) and marks[j] == 1
        return len(f.connections) - on_chain

    def _pkt_ep(self, p: Packet) -> tuple[tuple[str, int | None], tuple[str, int | None]]:
        return (p.src or "?", p.sport), (p.dst or "?", p.dport)

    def ladder_packets(self, f: Finding) -> tuple[list[Packet], str]:
        """The packets of the finding's first connection's 4-tuple (any of its connections),
        or the first frames when that leaves fewer than two."""
        pkts = [self.packets[n] for n in f.frames if n in self.packets]
        cap = self.limits.ladder_packets
        conn = self.conn(f.connections[0]) if f.connections else None
        if conn is not None:
            a = (conn.orig.addr, conn.orig.port)
            b = (conn.resp.addr, conn.resp.port)
            mine = [p for p in pkts if {self._pkt_ep(p)[0], self._pkt_ep(p)[1]} == {a, b}]
            if len(mine) >= 2:
                # The connections on this 4-tuple are its chain of predecessors and successors:
                # walked, not found by reading every connection of the finding (a scan's million).
                others = self._others_than_chain(f, conn)
                note = f"the frames between {_ep_text(*a)} and {_ep_text(*b)} (connection {conn.uid}"
                if others:
                    note += f"; the finding involves {others:,} other connection{'s' if others != 1 else ''}"
                note += ")"
                return mine[:cap], note
        return pkts[:cap], "the first evidence frames"

    def evidence_rows(self, f: Finding, anchor_of: dict[int, str], ladder: Sequence[Packet]) -> tuple[
            list[dict[str, Any]], int]:
        limit = self.limits.evidence_rows
        chosen = {p.no for p in ladder}
        for n in f.frames:
            if len(chosen) >= limit:
                break
            chosen.add(n)
        frames = sorted(chosen)
        rows: list[dict[str, Any]] = []
        prev_ts: int | None = None
        for n in frames:
            p = self.packets.get(n)
            if p is None:
                rows.append({"frame": n, "anchor": anchor_of[n], "missing": True, "differs": set()})
                continue
            src, dst = self._pkt_ep(p)
            rows.append({
                "frame": n,
                "anchor": anchor_of[n],
                "missing": False,
                "rel": (p.ts - self.t0) / 1e9,
                "delta": None if prev_ts is None else (p.ts - prev_ts) / 1e9,
                "src": _ep_text(*src),
                "dst": _ep_text(*dst),
                "src_key": src,
                "flags": flag_names(p.flags),
                "flag_class": _flag_class(p),
                "seq": p.seq,
                "ack": p.ack if p.flags is not None and p.flags & 0x010 else None,
                "len": p.payload_len,
                "ttl": p.ttl,
                "ip_id": p.ip_id,
                "window": p.window,
                "mac": p.src_mac,
                "iface": p.iface,
                "direction": {Direction.INBOUND: "in", Direction.OUTBOUND: "out"}.get(Direction(p.direction), ""),
                "proto": p.proto,
                "differs": set(),
            })
            prev_ts = p.ts
        # Mark what differs between packets from one source address and port: two stacks
        # answering for one address show as different MACs or TTLs (the proof, highlighted).
        groups: dict[Any, list[dict[str, Any]]] = {}
        for r in rows:
            if not r["missing"]:
                groups.setdefault(r["src_key"], []).append(r)
        for group in groups.values():
            for col in ("mac", "ttl"):
                if len({r[col] for r in group if r[col] is not None}) > 1:
                    for r in group:
                        r["differs"].add(col)
        return rows, len(f.frames) - len(frames)

    # findings --------------------------------------------------------------------------------
    def finding_view(self, index: int, f: Finding, detailed: bool) -> dict[str, Any]:
        anchor = f"finding-{index}"
        view: dict[str, Any] = {
            "index": index,
            "anchor": anchor,
            "id": f.id,
            "severity": f.severity,
            "title": f.title,
            "n_frames": len(f.frames),
            "n_connections": len(f.connections),
            "first_ts": iso_ts(f.first_ts),
            "last_ts": iso_ts(f.last_ts),
            "first_rel": None if f.first_ts is None else (f.first_ts - self.t0) / 1e9,
            "detailed": detailed,
        }
        if not detailed:
            view["summary"] = _rich_text(f.summary, {}, self.shown_uids)
            return view
        ladder, ladder_note = self.ladder_packets(f)
        shown = sorted({p.no for p in ladder} | set(f.frames[: self.limits.evidence_rows]))
        anchor_of = {n: f"f{index}-{n}" for n in shown}
        rows, hidden = self.evidence_rows(f, anchor_of, ladder)
        anchor_of = {r["frame"]: r["anchor"] for r in rows}
        view["summary"] = _rich_text(f.summary, anchor_of, self.shown_uids)
        view["explanation"] = _rich_text(f.explanation, anchor_of, self.shown_uids)
        view["rows"] = rows
        view["hidden_rows"] = hidden
        view["show_iface"] = self.multi_iface
        view["show_direction"] = any(r.get("direction") for r in rows)
        view["connections"] = [{"uid": u, "linked": u in self.shown_uids} for u in f.connections[:40]]
        view["more_connections"] = max(len(f.connections) - 40, 0)
        view["figures"] = _scalar_figures(f.evidence)
        view["evidence_json"] = _evidence_json(f.evidence)
        filt_frames = f.frames[: self.limits.filter_frames]
        view["filter"] = display_filter(filt_frames)
        view["filter_partial"] = len(f.frames) > len(filt_frames)
        view["filter_count"] = len(filt_frames)
        view["tshark"] = tshark_command(self.path, view["filter"])
        conn = self.conn(f.connections[0]) if f.connections else None
        if conn is not None and conn.proto in ("tcp", "udp"):
            conv = conversation_filter((conn.orig.addr, conn.orig.port), (conn.resp.addr, conn.resp.port), conn.proto)
            view["conv_filter"] = conv
            view["conv_uid"] = conn.uid
        view["ladder"] = None
        view["proof"] = None
        wants_seq = self._wants_sequence(f)
        if wants_seq:
            ladder = ladder[: self.limits.ladder_packets_data]
        if ladder and self.ladders < self.limits.ladders:
            self.ladders += 1
            from .plots import figure_to_svg

            prefix = self._fig_prefix()
            svg = figure_to_svg(self.ladder_figure(f, ladder, index), prefix)
            view["ladder"] = Markup(svg)
            view["ladder_note"] = ladder_note
            view["ladder_frames"] = [p.no for p in ladder]
            view["proof"] = _copy_svg(svg, prefix)
            view["proof_note"] = ladder_note
        view["sequence"] = []
        if wants_seq:
            for uid in f.connections:
                c = self.conn(uid)
                if c is None or c.proto != "tcp":
                    continue
                if uid in self.seq_done:  # one graph per connection, however many findings name it
                    view["sequence"].append({"uid": uid, "svg": None, "ref": self.seq_done[uid]})
                    continue
                if self.seq_graphs >= self.limits.sequence_graphs:
                    break
                drawn = self._sequence_svg(c)
                if drawn is not None:
                    self.seq_graphs += 1
                    self.seq_done[uid] = anchor
                    seq_svg, prefix = drawn
                    view["sequence"].append({"uid": uid, "svg": seq_svg, "ref": None})
                    if not any(s["svg"] for s in view["sequence"][:-1]):
                        # For a data-transfer finding the time-sequence graph is the better proof.
                        view["proof"] = _copy_svg(str(seq_svg), prefix)
                        view["proof_note"] = f"the time-sequence graph of connection {uid}"
        return view

    def ladder_figure(self, f: Finding, ladder: Sequence[Packet], index: int) -> Figure:
        """Finding ``index``'s ladder diagram of ``ladder`` (its packets), with the states its
        connections were inferred to pass through at those frames."""
        from .plots import ladder_figure, ladder_states

        uids = f.connections[:_LOOKED_AT]
        if ladder and self.info.engine == "fast" and not self.info.damage.count("time_backwards"):
            # Timestamps only go forward: a connection that starts after the ladder's last packet
            # has none of its frames (and is not read back from the spill for nothing).
            last, first = max(p.ts for p in ladder), self.digest.first_ts
            uids = [u for u in uids if not ((i := uid_index(u)) < len(first) and first[i] > last)]
        conns = [c for u in uids if (c := self.conn(u)) is not None]
        frames = {p.no for p in ladder}
        states = {n: v for n, v in ladder_states(conns).items() if n in frames}
        return ladder_figure(ladder, title=f"Finding {index}: {f.id}", t0=self.t0,
                             max_packets=self.limits.ladder_packets, states=states, notes=_frame_roles(f.evidence),
                             footnote=self._more_attempts(f, ladder, conns))

    def _more_attempts(self, f: Finding, ladder: Sequence[Packet], conns: Sequence[Connection | ConnRecord]) -> (
            str | None):
        """"... N more attempts on this 4-tuple" when the ladder draws a few of the connections
        one after another on its 4-tuple (a reused tuple's 100,000 SYN/RST): counted on the
        digest's links, not by reading them."""
        first = self.conn(f.connections[0]) if f.connections else None
        if first is None or not ladder:
            return None
        d = self.digest
        total = d.chain_length(first.index)
        if total < 2:
            return None
        cap = self.limits.ladder_packets
        frames = sorted(p.no for p in ladder[:cap])
        lo, hi = frames[0], frames[-1]
        # The neighbours on the tuple whose frames the ladder's span reaches: read back, but at most
        # one more than a ladder has arrows on each side (each drawn connection has one at least).
        drawn = 1
        for later, side in ((False, d.predecessors), (True, d.successors)):
            for j in itertools.islice(side(first.index), cap + 1):
                c = self.conn(uid_of(j))
                if c is None or (c.first_frame > hi if later else c.last_frame < lo):
                    break
                drawn += c.first_frame <= hi and c.last_frame >= lo
        more = total - drawn
        if more <= 0:
            return None
        return f"\u2026 {more:,} more attempt{'s' if more != 1 else ''} on this 4-tuple (in the JSON)"

    @staticmethod
    def _wants_sequence(f: Finding) -> bool:
        """Data-transfer findings (``data.*``, ``established.*``, ``transfer.*``) of severity notice or
        above get a time-sequence graph (an informational keep-alive does not need one)."""
        return (f.id.split(".", 1)[0] in ("data", "established", "transfer", "window", "retransmission")
                and severity_rank(f.severity) >= severity_rank("notice"))

    def load_sequences(self, detailed: Sequence[Finding]) -> None:
        """Read the packets of every connection that gets a time-sequence graph, in one pass."""
        from .errors import PcapsleuthError
        from .refetch import connections_packets

        conns: dict[str, Connection | ConnRecord] = {}
        for f in detailed:
            if not self._wants_sequence(f):
                continue
            for uid in f.connections:
                if len(conns) >= self.limits.sequence_graphs:
                    break
                c = self.conn(uid)
                if c is not None and c.proto == "tcp":
                    conns.setdefault(uid, c)
        if not conns:
            return
        if not self.rereadable:
            self.seq_packets = {uid: list(c.evidence) for uid, c in conns.items()}
            return
        try:
            self.seq_packets = connections_packets(self.path, conns.values(), limit=self.limits.sequence_packets)
        except (PcapsleuthError, OSError):
            self.seq_packets = {uid: list(c.evidence) for uid, c in conns.items()}

    def _sequence_svg(self, c: Connection | ConnRecord) -> tuple[Markup, str] | None:
        from .plots import figure_to_svg, sequence_figure

        pkts = self.seq_packets.get(c.uid) or list(c.evidence)
        if not pkts:
            return None
        prefix = self._fig_prefix()
        return Markup(figure_to_svg(sequence_figure(pkts, c, t0=self.t0), prefix)), prefix

    def _fig_prefix(self) -> str:
        self.fig_no += 1
        return f"psfig{self.fig_no}-"

    # connections ---------------------------------------------------------------------------------
    def _choose_connection_rows(self) -> list[Connection | ConnRecord]:
        d = self.digest
        cap = self.limits.connection_rows
        if d.n <= cap:
            return [c for i in d.indexes() if (c := self.conn(uid_of(i))) is not None]
        chosen: dict[str, Connection | ConnRecord] = {}
        for f in self.findings:
            if len(chosen) >= cap // 2:
                break
            for uid in f.connections:
                if len(chosen) >= cap // 2:
                    break
                c = self.conn(uid)
                if c is not None:
                    chosen.setdefault(uid, c)
        # Then the unusual ones (anything but a normal close), then the rest, by first frame.
        for skip in ("SF", None):
            for i in d.indexes(skip_state=skip):
                if len(chosen) >= cap:
                    break
                uid = uid_of(i)
                if uid not in chosen and (c := self.conn(uid)) is not None:
                    chosen[uid] = c
        return sorted(chosen.values(), key=lambda c: c.index)

    def connection_view(self, c: Connection | ConnRecord) -> dict[str, Any]:
        from .plots import outcome_of

        o, r = c.orig, c.resp
        tcp = c.proto == "tcp"
        state = c.conn_state
        return {
            "uid": c.uid,
            "orig": _ep_text(o.addr, o.port if c.proto in ("tcp", "udp") else None),
            "resp": _ep_text(r.addr, r.port if c.proto in ("tcp", "udp") else None),
            "proto": c.proto,
            "first_frame": c.first_frame,
            "last_frame": c.last_frame,
            "start": (c.first_ts - self.t0) / 1e9,
            "duration": (c.last_ts - c.first_ts) / 1e9,
            "orig_pkts": o.pkts,
            "resp_pkts": r.pkts,
            "orig_bytes": o.size(r) if tcp else o.data_bytes,  # type: ignore[arg-type]  # o, r: one kind
            "resp_bytes": r.size(o) if tcp else r.data_bytes,  # type: ignore[arg-type]
            "conn_state": state,
            "outcome": outcome_of(state, c.proto),
            "history": c.history_str,
            "orig_state": o.tcp_state or "",
            "resp_state": r.tcp_state or "",
            "findings": self.finding_ids_by_uid.get(c.uid, []),
            "predecessor": c.predecessor,
        }

    def aggregates(self) -> dict[str, Any]:
        d = self.digest
        lim = self.limits.top_n

        def name(key: tuple[str, int | None, str]) -> str:
            addr, port, proto = key
            return _ep_text(addr, port if proto in ("tcp", "udp") else None) + f" ({proto})"

        return {
            "by_state": d.state_counts(),
            "top_listeners": [(name(k), n, bad) for k, n, bad in d.listeners.top(lim)],
            "more_listeners": max(d.listeners.distinct() - lim, 0),
            "listeners_approximate": d.listeners.approximate,
            "top_talkers": [(k, n) for k, n, _ in d.talkers.top(lim)],
            "more_talkers": max(d.talkers.distinct() - lim, 0),
            "talkers_approximate": d.talkers.approximate,
        }

    # capture facts -------------------------------------------------------------------------------
    def capture_view(self) -> dict[str, Any]:
        info = self.info
        lim = self.limits
        n = lim.text_chars

        def cut(text: str | None) -> str | None:
            return None if text is None else capped(text, n)

        def short(text: str | None) -> str | None:
            return None if text is None else capped(text, lim.name_chars)

        ifaces = [{"id": i.id, "name": short(i.name), "description": short(i.description),
                   "linktype": i.linktype_name, "snaplen": i.snaplen, "frames": i.frames}
                  for i in info.interfaces[: lim.interfaces]]
        comments: list[dict[str, Any]] = []
        n_comments = 0
        for no in sorted(info.comments):
            for text in info.comments[no]:
                n_comments += 1
                if len(comments) < lim.comments:
                    comments.append({"frame": no, "text": capped(text, n)})
        damage = []
        for d in info.damage.to_list():
            frames = d["frames"]
            assert isinstance(frames, list)
            detail = d.get("detail")
            damage.append({"kind": d["kind"], "count": d["count"], "frames": frames[:12],
                           "more": len(frames) > 12, "detail": detail if not isinstance(detail, str) else cut(detail)})
        return {
            "path": cut(info.path),
            "name": capped(_file_name(info.path), n),
            "size": info.size,
            "format": info.format,
            "compression": info.compression,
            "engine": info.engine,
            "frames": info.frames,
            "first_ts": iso_ts(info.first_ts),
            "last_ts": iso_ts(info.last_ts),
            "duration": info.duration,
            "link_types": info.link_types,
            "interfaces": ifaces,
            "more_interfaces": max(len(info.interfaces) - lim.interfaces, 0),
            "section_comments": [capped(c, n) for c in info.section_comments[: lim.comments]],
            "comments": comments,
            "more_comments": max(n_comments - lim.comments, 0) + max(len(info.section_comments) - lim.comments, 0),
            "comments_left_out": info.comments_left_out,
            "damage": damage,
            "sections": info.sections,
            "ip_fragments": info.ip_fragments,
            "non_ip_frames": info.non_ip_frames,
            "bytes_unread": info.bytes_unread,
            "from_stream": not self.rereadable,
            # Issue 20: the checksum facts and every frame not analyzed, with why and what changes it.
            "checksums": [] if info.coverage is None else info.coverage.checksum_lines(),
            "not_analyzed": [] if info.coverage is None else
            info.coverage.not_analyzed_lines() + [x for x in (info.coverage.snaplen_line(),) if x],
        }

    def verdict(self) -> dict[str, Any]:
        fs = self.findings
        by = Counter(f.severity for f in fs)
        counts = [(s, by[s]) for s in reversed(SEVERITIES) if by[s]]
        n = self.digest.n
        cov = self.info.coverage
        # Issue 20: "no problems found" only about what was judged. ``scope``: what could not be.
        scope = None if cov is None else cov.scope(findings=bool(fs))
        if not fs:
            detail = ", ".join(f"{k} {v:,}" for k, v in self.digest.state_counts()[:4])
            text = (f"{self.info.frames:,} frames, {n:,} connection{'s' if n != 1 else ''}"
                    + (f" ({detail})" if detail else "") + "; no detector raised a finding.")
            if scope is not None:
                judged = cov is not None and cov.tcp_connections > 0 and cov.reasons.get("not_ip", 0) < cov.frames
                return {"severity": "info", "badge": "PARTLY JUDGED" if judged else "NOT JUDGED",
                        "title": scope[0], "cause": scope[1], "text": text, "counts": counts, "others": []}
            if cov is not None and cov.not_analyzed_frames():
                text = cov.clean_scope() + " " + text
            return {"severity": "ok", "title": "No problems found", "cause": "",
                    "text": text, "counts": counts, "others": []}
        top = fs[0]
        groups: dict[tuple[str, str], dict[str, Any]] = {}
        for i, f in enumerate(fs[1:], 2):
            g = groups.setdefault((f.id, f.severity), {"index": i, "severity": f.severity, "title": f.title,
                                                      "id": f.id, "count": 0})
            g["count"] += 1
        others = list(groups.values())
        return {"severity": top.severity, "title": top.title, "id": top.id, "anchor": "finding-1",
                "text": top.summary, "cause": _first_sentence(top.explanation), "counts": counts,
                "others": others[:5], "more_others": sum(g["count"] for g in others[5:]),
                "scope": None if scope is None else f"{scope[0]}. {scope[1]}"}


_SENTENCE_END = re.compile(r"(?<=[a-z0-9)\]'\"])[.!?](?=\s+[A-Z(`'\"])")


def _frame_roles(evidence: dict[str, Any]) -> dict[int, str]:
    """What the detector called each evidence frame, from the finding's figures: a key
    ``challenge_ack_frame: 9`` or ``rst: {"frame": 4, ...}`` names frame 9 "challenge ack" and
    frame 4 "rst". Only the top level: lists describe other connections."""
    roles: dict[int, str] = {}
    for key, value in evidence.items():
        frame: Any = None
        if key.endswith("_frame") and isinstance(value, int) and not isinstance(value, bool):
            frame, name = value, key[: -len("_frame")]
        elif isinstance(value, dict) and isinstance(value.get("frame"), int):
            frame, name = value["frame"], key
        if frame is not None and name not in ("first", "last", "worst") and frame not in roles:
            roles[frame] = name.replace("_", " ")
    return roles


def _copy_svg(svg: str, prefix: str) -> Markup:
    """The same drawing once more on the page, with ids of its own."""
    return Markup(svg.replace(f'id="{prefix}', f'id="v{prefix}').replace(f"#{prefix}", f"#v{prefix}"))


def _first_sentence(text: str) -> str:
    """The first sentence of an explanation: in every catalogue entry, the likely cause."""
    m = _SENTENCE_END.search(text)
    head = text[: m.end()] if m else text
    if len(head) > 400:
        head = head[:397].rsplit(" ", 1)[0] + " ..."
    return head


def _flag_class(p: Packet) -> str:
    f = p.flags
    if f is None:
        return ""
    if f & 0x004:
        return "rst"
    if f & 0x002:
        return "synack" if f & 0x010 else "syn"
    if f & 0x001:
        return "fin"
    return "data" if p.payload_len else ""


def _scalar_figures(evidence: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for k, v in evidence.items():
        if k.startswith("left_out") and not v:
            continue
        if isinstance(v, bool):
            out.append((k, "yes" if v else "no"))
        elif isinstance(v, (int, float, str)) or v is None:
            out.append((k, "-" if v is None else str(v)))
        elif isinstance(v, list) and len(v) <= 12 and all(isinstance(x, (int, float, str)) for x in v):
            out.append((k, ", ".join(str(x) for x in v) or "-"))
    return out[:24]


def _trim(value: Any, depth: int = 0) -> Any:
    if isinstance(value, dict):
        return {str(k): _trim(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        keep = 8 if depth else 20
        items = [_trim(v, depth + 1) for v in value[:keep]]
        if len(value) > keep:
            items.append(f"... {len(value) - keep:,} more")
        return items
    if isinstance(value, str):
        return capped(value, Limits.text_chars)
    return value


def _evidence_json(evidence: dict[str, Any]) -> str:
    text = json.dumps(_trim(evidence), indent=1, ensure_ascii=False, default=str)
    return text if len(text) < 40_000 else text[:40_000] + "\n... (cut)"


# -- rendering -------------------------------------------------------------------------------------
def _context(result: AnalysisResult | ReportView, source_path: str, env: jinja2.Environment,
             limits: Limits) -> dict[str, Any]:
    b = _Builder(result, source_path, limits)
    chosen, others = select_findings(b.findings, limits)
    detailed = [(i + 1, b.findings[i]) for i in chosen]
    rest = [(i + 1, b.findings[i]) for i in others]
    listed = rest[: limits.findings_listed]
    b.load_packets([f for _, f in detailed], b.findings[:_MARKED])
    b.load_sequences([f for _, f in detailed])
    findings = [b.finding_view(i, f, True) for i, f in detailed]
    more = [b.finding_view(i, f, False) for i, f in listed]
    from .plots import OUTCOMES, figure_to_svg, timeline_figure

    timeline = Markup(figure_to_svg(timeline_figure(result, b.findings, max_rows=limits.timeline_rows, t0=b.t0,
                                                    known=b.packets), "tl-"))
    script = env.loader.get_source(env, "report.js")[0] if env.loader else ""
    style = env.loader.get_source(env, "style.css")[0] if env.loader else ""
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    csp = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
           f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'")
    by_sev = Counter(f.severity for f in b.findings)
    return {
        "version": __version__,
        "generated": _generated_at().strftime("%Y-%m-%d %H:%M:%S UTC"),
        "csp": csp,
        "style": Markup(style),
        "script": Markup(script),
        "capture": b.capture_view(),
        "verdict": b.verdict(),
        "findings": findings,
        "more_findings": more,
        "left_out_findings": len(rest) - len(listed),
        "finding_counts": [(s, by_sev[s]) for s in reversed(SEVERITIES) if by_sev[s]],
        "unavailable_frames": len(b.unavailable),
        "from_stream": not b.rereadable,
        "timeline": timeline,
        "outcomes": [{"key": k, "label": label, "colour": colour} for k, label, colour, _ in OUTCOMES],
        "connections": [b.connection_view(c) for c in b.conn_rows],
        "n_connections": b.digest.n,
        "aggregates": b.aggregates(),
        "limits": limits,
        "source_path": source_path,
        "rerun": "pcapsleuth analyze " + shlex.quote(source_path),
        "vantage": None,
    }


def select_findings(findings: Sequence[Any], limits: Limits) -> tuple[list[int], list[int]]:
    """Which findings (positions, in report order) the report shows in full, with evidence and
    drawings, and which it only lists: the first few of each id in full, so that 195 "connection
    refused" findings of a port scan do not bury the one that matters."""
    detailed: list[int] = []
    rest: list[int] = []
    per_id: Counter[str] = Counter()
    for i, f in enumerate(findings):
        if len(detailed) < limits.findings_detailed and per_id[f.id] < limits.detailed_per_id:
            detailed.append(i)
            per_id[f.id] += 1
        else:
            rest.append(i)
    return detailed, rest


def findings_to_read(findings: Sequence[Any], limits: Limits | None = None, *, markdown: int = 10,
                     all_below: int = 2000) -> set[int]:
    """For a streamed analysis (:meth:`pcapsleuth.stream.StreamedResult.report_view`): the findings
    the report and the Markdown summary read in full; all of them when there are few."""
    if len(findings) <= all_below:
        return set(range(len(findings)))
    lim = limits or Limits()
    detailed, rest = select_findings(findings, lim)
    return set(detailed) | set(rest[: lim.findings_listed]) | set(range(min(markdown, len(findings))))


def _generated_at() -> _dt.datetime:
    """When the report was made: now, or ``$SOURCE_DATE_EPOCH`` (reproducible builds' convention)
    so that the same capture gives a byte-identical report."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch.isdigit():
        try:
            return _dt.datetime.fromtimestamp(int(epoch), tz=_dt.timezone.utc)
        except (OverflowError, OSError, ValueError):
            pass
    return _dt.datetime.now(_dt.timezone.utc)


def render_html(result: AnalysisResult | ReportView, source_path: str | os.PathLike[str] | None = None,
                out_path: str | os.PathLike[str] | None = None,
                template_dir: str | os.PathLike[str] | None = None, *, limits: Limits | None = None,
                vantage: VantageResult | None = None) -> str:
    """Render the HTML report of ``result``; write it to ``out_path`` too when given.

    ``source_path`` is the capture file, read again for evidence packets the analysis did not
    keep in memory (default: ``result.capture.path``). Returns the HTML text. ``vantage`` (several
    captures of one incident, see :mod:`pcapsleuth.vantage`) adds the vantage section on top;
    ``result`` is then its first point's analysis.
    """
    src = os.fspath(source_path) if source_path is not None else result.capture.path
    with no_cyclic_gc():  # an analysis's millions of objects: see util.no_cyclic_gc
        env = template_environment(template_dir)
        ctx = _context(result, src, env, limits or Limits())
        if vantage is not None:
            from .vantage_plots import vantage_report_context

            ctx["vantage"] = vantage_report_context(vantage)
            ctx["rerun"] = "pcapsleuth analyze " + " ".join(shlex.quote(p.source) for p in vantage.points)
        html = visible(env.get_template("report.html.j2").render(ctx))
    if out_path is not None:
        _write_atomic(Path(out_path), html)
    return html


def _write_atomic(dest: Path, text: str) -> None:
    """Write through :func:`pcapsleuth.outputs.write_text`, the one writer of every output (a
    temporary with an unpredictable name and a rename; a device or FIFO written directly)."""
    from .outputs import write_text

    write_text(text, dest)


def severity_at_least(findings: Iterable[Finding], threshold: str) -> bool:
    """True when a finding at or above ``threshold`` exists (``--fail-on``)."""
    rank = severity_rank(threshold)
    return any(severity_rank(f.severity) >= rank for f in findings)
