"""The Zeek expectations of the public corpus, read into plain records (issue 3).

Layout of the corpus (see ``corpus/zeek/INDEX.md``): one directory per capture, holding the trace,
the Zeek baselines copied verbatim from Zeek's btest suite, and ``source.txt`` saying which btest
produced each baseline and how Zeek was run. This module

* parses every Zeek log shape found there (:func:`parse_zeek_log`): full TSV logs with ``#fields``,
  ``zeek-cut -m`` projections (first line = column names), the one headerless ``zeek-cut`` output
  (tcp__handshake-reorder; columns listed in its source.txt), renamed columns
  (auth_change_session_keys), and concatenated multi-block logs;
* works out how Zeek was run for each baseline (:func:`run_config`): checksums verified or not
  (``-C``), BPF filters, redefs;
* decides which baselines are fit to compare a default-configured tracker against
  (:data:`EXCLUSIONS`, :data:`PROMOTED`, :data:`FIELD_EXCLUSIONS`, :data:`KEPT_DESPITE_OPTIONS`),
  every decision with its reason written out;
* yields the expected TCP connections (:func:`expectations`) and the stdout-derived facts
  (:func:`stdout_facts`).

Nothing here looks at pcapsleuth's output: the expected values come from the Zeek files only.
``expected.jsonl`` (the corpus' own digest of the same baselines) is used as a cross-check by the
tests, and to nothing else.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "ZeekLog",
    "Baseline",
    "RunConfig",
    "ExpectedConn",
    "ExpectationSet",
    "StdoutFact",
    "EXCLUSIONS",
    "PROMOTED",
    "FIELD_EXCLUSIONS",
    "KEPT_DESPITE_OPTIONS",
    "UID_SEQUENCE",
    "zeek_root",
    "parse_zeek_log",
    "baselines",
    "run_config",
    "expectations",
    "stdout_facts",
    "corpus_community_ids",
    "expected_jsonl",
]

BTEST_HEADER = "### BTest baseline data"

# ---------------------------------------------------------------------------------------------
# Zeek log parsing
# ---------------------------------------------------------------------------------------------

# Types Zeek writes for conn.log columns; used to convert values and to check writer output.
INT_TYPES = frozenset({"count", "port", "int"})
FLOAT_TYPES = frozenset({"interval", "double", "time"})

# Column types for logs that carry no #types line (zeek-cut projections).
CONN_TYPES: dict[str, str] = {
    "ts": "time", "uid": "string", "id.orig_h": "addr", "id.orig_p": "port", "id.resp_h": "addr",
    "id.resp_p": "port", "proto": "enum", "service": "string", "duration": "interval",
    "orig_bytes": "count", "resp_bytes": "count", "conn_state": "string", "local_orig": "bool",
    "local_resp": "bool", "missed_bytes": "count", "history": "string", "orig_pkts": "count",
    "orig_ip_bytes": "count", "resp_pkts": "count", "resp_ip_bytes": "count",
    "tunnel_parents": "set[string]", "ip_proto": "count", "community_id": "string",
    "id.ctx.vlan": "int", "id.ctx.inner_vlan": "int", "vlan": "int", "inner_vlan": "int",
}

# Zeek's Log::default_field_name_map as redefined by the field-name-map2 btest.
RENAMED_ID_COLUMNS = {"src_ip": "id.orig_h", "src_port": "id.orig_p", "dst_ip": "id.resp_h",
                      "dst_port": "id.resp_p"}


@dataclasses.dataclass
class ZeekLog:
    """One parsed log: header metadata (of the last block), columns and raw string rows.

    ``rows`` hold Zeek's text; :meth:`typed` converts one row. ``fmt`` is ``"tsv"`` (full Zeek
    header), ``"cut"`` (``zeek-cut -m``: first line names the columns) or ``"headerless"``.
    """

    fmt: str
    fields: list[str]
    types: list[str] | None
    meta: dict[str, str]
    header_lines: list[str]
    rows: list[dict[str, str]]
    blocks: int = 1

    @property
    def unset(self) -> str:
        return self.meta.get("unset_field", "-")

    @property
    def empty(self) -> str:
        return self.meta.get("empty_field", "(empty)")

    def type_of(self, field: str) -> str:
        if self.types is not None and field in self.fields:
            return self.types[self.fields.index(field)]
        return CONN_TYPES.get(field, "string")

    def typed(self, row: dict[str, str]) -> dict[str, Any]:
        """Values converted by column type: unset -> None, counts/ports -> int, intervals -> float,
        sets -> list of str; masked btest timestamps (``XXXXXXXXXX.XXXXXX``) -> None."""
        out: dict[str, Any] = {}
        for key, raw in row.items():
            out[key] = self.convert(key, raw)
        return out

    def convert(self, field: str, raw: str) -> Any:
        if raw == self.unset:
            return None
        ztype = self.type_of(field)
        if ztype.startswith(("set[", "vector[")):
            if raw == self.empty:
                return []
            return raw.split(self.meta.get("set_separator", ","))
        if raw == self.empty:
            return ""
        if "X" in raw and ztype in FLOAT_TYPES:
            return None  # btest-masked timestamp
        if ztype in INT_TYPES:
            return int(raw)
        if ztype in FLOAT_TYPES:
            return float(raw)
        if ztype == "bool":
            return raw == "T"
        return raw


def _unescape_separator(text: str) -> str:
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), text)


def parse_zeek_log(text: str, *, columns: list[str] | None = None,
                   rename: dict[str, str] | None = None) -> ZeekLog:
    """Parse a Zeek log in any of the corpus shapes.

    ``columns`` names the columns of a headerless ``zeek-cut`` output; ``rename`` maps renamed
    column names back to Zeek's (``src_ip`` -> ``id.orig_h``). Empty column names in a ``zeek-cut``
    header (fields that did not exist in that Zeek run) are dropped with their values.
    """
    lines = text.splitlines()
    if lines and lines[0].startswith(BTEST_HEADER):
        lines = lines[1:]
    rename = rename or {}
    sep = "\t"
    meta: dict[str, str] = {}
    header_lines: list[str] = []
    fields: list[str] | None = None
    types: list[str] | None = None
    rows: list[dict[str, str]] = []
    blocks = 0
    fmt: str | None = None

    for line in lines:
        if line.startswith("#separator"):
            # "#separator \x09": the one header line Zeek writes with a space, since the
            # separator itself is not known yet.
            sep = _unescape_separator(line.split(" ", 1)[1])
            header_lines.append(line)
            blocks += 1
            fmt = "tsv"
            continue
        if line.startswith("#"):
            header_lines.append(line)
            key, _, value = line[1:].partition(sep)
            if key in ("open", "close") and not value:
                key, _, value = line[1:].partition(" ")  # btest masks "#open\t<ts>" as "#open XXXX"
            if key == "fields":
                fields = [rename.get(f, f) for f in value.split(sep)]
            elif key == "types":
                types = value.split(sep)
            else:
                meta[key] = value
            continue
        if not line.strip():
            continue
        if fields is None:
            if columns is not None:
                fields, fmt = list(columns), "headerless"
            else:
                fields, fmt = [rename.get(f, f) for f in line.split("\t")], "cut"
                continue
        values = line.split(sep)
        if len(values) != len(fields):
            raise ValueError(f"row has {len(values)} values for {len(fields)} fields: {line!r}")
        rows.append({f: v for f, v in zip(fields, values, strict=True) if f})
    if fields is None:
        fields = list(columns or [])
    if types is not None and len(types) != len(fields):
        raise ValueError("#types and #fields differ in length")
    return ZeekLog(fmt=fmt or "headerless", fields=[f for f in fields if f], types=types, meta=meta,
                   header_lines=header_lines, rows=rows, blocks=max(blocks, 1))


# ---------------------------------------------------------------------------------------------
# Corpus layout: baselines and how Zeek was run
# ---------------------------------------------------------------------------------------------


def zeek_root() -> Path:
    """``$PCAPSLEUTH_CORPUS/zeek`` or ``../shared/corpus/zeek`` beside the repository."""
    env = os.environ.get("PCAPSLEUTH_CORPUS")
    base = Path(env) if env else Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
    return base / "zeek"


@dataclasses.dataclass(frozen=True)
class Baseline:
    """One baseline file of one corpus item."""

    trace: str  # item directory name
    local: str  # file name in the item directory
    source: str  # "<btest>/<file>", as expected.jsonl spells it
    btest: str
    role: str  # "primary" (conn.log / weird.log), "alt" (alt__*), "other" (other__* stdout)

    @property
    def path(self) -> Path:
        return zeek_root() / self.trace / self.local

    @property
    def key(self) -> tuple[str, str]:
        return (self.trace, self.local)


_BASELINE_LINE = re.compile(
    r"^\s+(?P<local>\S+) <- testing/btest/Baseline/(?P<btest>[^/\s]+)/(?P<file>\S+)\s+\(btest: (?P=btest)\)")


@cache
def source_text(trace: str) -> str:
    return (zeek_root() / trace / "source.txt").read_text()


def what_btest_did(trace: str) -> str:
    """The paraphrase paragraph of source.txt (how Zeek was run)."""
    text = source_text(trace)
    m = re.search(r"what the btest did[^\n]*\n(.*?)\n\s*naming:", text, re.S)
    return m.group(1).strip() if m else ""


@cache
def item_baselines(trace: str) -> tuple[Baseline, ...]:
    out = []
    for line in source_text(trace).splitlines():
        m = _BASELINE_LINE.match(line)
        if not m:
            continue
        local = m.group("local")
        role = "alt" if local.startswith("alt__") else "other" if local.startswith("other__") else "primary"
        out.append(Baseline(trace, local, f"{m.group('btest')}/{m.group('file')}", m.group("btest"), role))
    return tuple(out)


def items() -> list[str]:
    root = zeek_root()
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "source.txt").exists())


def baselines() -> list[Baseline]:
    return [b for t in items() for b in item_baselines(t)]


def conn_baselines() -> list[Baseline]:
    """Baselines that are conn logs (primary ``conn.log`` and ``alt__*conn*``)."""
    return [b for b in baselines() if b.role in ("primary", "alt") and "conn" in b.local]


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """How Zeek produced one baseline, as far as it changes TCP results."""

    verify_checksums: bool  # False when Zeek ran with -C (or ignored checksums for every packet)
    flags: str  # the Zeek command-line flags found, e.g. "-b -C -r"
    bpf: str | None = None  # capture filter (-f), when one was used
    note: str = ""


# Runs that source.txt does not describe one-to-one (several runs in one paragraph, or a run
# described only by reference). Each value was checked against the upstream btest file named in
# source.txt.
RUN_OVERRIDES: dict[tuple[str, str], RunConfig] = {
    ("wikipedia", "alt__core.pcap.read-trace-with-filter__conn.log"): RunConfig(
        True, "-r -f", bpf="port 50000",
        note="testing/btest/core/pcap/read-trace-with-filter.zeek: zeek -r wikipedia.trace -f 'port 50000'"),
    ("chksums__localhost-bad-chksum", "alt__core.checksums_ignore_nets__conn-worked.log"): RunConfig(
        False, "-b -r",
        note="ignore_checksums_nets += {192.168.0.0/16}; every packet has 192.168.1.28 as source or "
             "destination, so no checksum is verified: the same as -C for this trace"),
}

_ZEEK_CMD = re.compile(r"\bzeek((?:\s+-[A-Za-z]+)+)")


def run_config(b: Baseline) -> RunConfig:
    """Zeek flags for a baseline, from source.txt (with :data:`RUN_OVERRIDES`)."""
    if b.key in RUN_OVERRIDES:
        return RUN_OVERRIDES[b.key]
    text = what_btest_did(b.trace)
    cmds = [" ".join(m.group(1).split()) for m in _ZEEK_CMD.finditer(text)]
    if not cmds:
        raise ValueError(f"{b.trace}: no zeek command line in source.txt; add a RUN_OVERRIDES entry")
    with_c = {"C" in "".join(tok.lstrip("-") for tok in c.split()) for c in cmds}
    if len(with_c) != 1:
        raise ValueError(f"{b.trace}: zeek runs disagree on -C ({cmds}); add a RUN_OVERRIDES entry")
    bpf = None
    m = re.search(r"\s-f\s+'([^']*)'", text)
    if m:
        bpf = m.group(1)
    return RunConfig(verify_checksums=not with_c.pop(), flags=cmds[0], bpf=bpf)


# ---------------------------------------------------------------------------------------------
# Which baselines a default-configured tracker can be held to
# ---------------------------------------------------------------------------------------------

# Whole baselines not used as expectations: (trace, local file) -> reason.
EXCLUSIONS: dict[tuple[str, str], str] = {
    ("wikipedia", "alt__core.pcap.read-trace-with-filter__conn.log"):
        "baseline from a BPF-filtered run (zeek -r -f 'port 50000', btest "
        "core.pcap.read-trace-with-filter): the filter drops every packet not on port 50000, so Zeek "
        "saw 1 of the trace's connections (141.142.220.118:50000 -> 208.80.152.3:80, S1 ShADad). The "
        "unfiltered primary (conn-2.log) covers that connection with the same values.",
    ("vlan-collisions", "alt__vlan_fivetuple-2__conn.log.cut"):
        "baseline from a run with VLAN-aware flow keying (redef via frameworks/conn_key/vlan_fivetuple): "
        "the same 5-tuple on VLAN none, 10/20 and 42 becomes 3 connections of 7/7 packets. Zeek's "
        "default keying (the primary) ignores VLAN tags and logs 1 connection of 21/21 packets.",
    ("tcp__retransmit-timeout", "conn.log"):
        "baseline from a run that schedules thousands of dummy timers at start-up so that, with the "
        "default max_timer_expires, the connection's 5-minute inactivity timer cannot expire while the "
        "packet 300.000010 s later is processed (btest core.expire-all-timers, 'conn-limited'): one "
        "connection 'DaT' is an artefact of Zeek's timer budget. The same test's max_timer_expires=0 "
        "run ('conn-all', promoted below) shows the default expiry: 2 connections.",
    ("tcp__missing-syn", "alt__core.history-flip__conn.log"):
        "duplicate: same trace, same flags (-b -C) as the primary; its redefs (Site::local_nets, "
        "mac-logging) change only local_orig/local_resp and the l2 address columns, and its TCP row "
        "equals the primary's.",
}

# Alt baselines used as expectations (run separately with the given checksum mode).
PROMOTED: dict[tuple[str, str], str] = {
    ("tcp__handshake-reorder", "conn.log"):
        "likely_server_ports={} belongs to the connection_flip_roles run (stdout, not used); this "
        "baseline (community-id-logging-flipped) and the connection_flipped history merged into it come "
        "from zeek -b runs with default port lists.",
    ("tcp__retransmit-timeout", "alt__core.expire-all-timers__conn-all.log"):
        "max_timer_expires=0 lets every due timer fire, i.e. Zeek's default inactivity expiry "
        "(tcp_inactivity_timeout 5 min) applies: the data packet and its retransmission 300.000010 s "
        "later are two connections ('Da', then 'D').",
    ("chksums__localhost-bad-chksum", "alt__core.checksums_ignore_nets__conn-worked.log"):
        "ignore_checksums_nets covers every packet of the trace, which is what -C does: the expectation "
        "for verify_checksums=False (one SF connection), next to the primary's verified run.",
}

# Baselines kept, but with fields that a non-default option makes incomparable.
FIELD_EXCLUSIONS: dict[tuple[str, str], tuple[frozenset[str], str]] = {
    ("ncp", "conn.log"): (
        frozenset({"history"}),
        "redef likely_server_ports += {524/tcp}: for connections without a SYN Zeek picks the "
        "originator by that port list, so the role flip ('^') and the case of every history letter "
        "depend on the redef (2 of the 3 connections have no SYN)."),
}

# Non-default options found in source.txt that were judged NOT to change TCP results, with why.
KEPT_DESPITE_OPTIONS: dict[tuple[str, str], str] = {
    ("http-vlan-0", "conn.log"):
        "VLAN-aware flow keying (vlan_fivetuple), but all 14 frames carry the same tag (VLAN 0), so "
        "default keying gives the same single connection.",
    ("http-qinq-0", "conn.log"):
        "VLAN-aware flow keying (vlan_fivetuple), but all 14 frames carry the same tags (0/0), so "
        "default keying gives the same single connection.",
    ("ftp__bigtransfer", "conn.log"):
        "redef tcp_excessive_data_without_further_acks=0 disables a reassembly give-up limit; state "
        "and history letters (incl. 'g' content gaps) are recorded either way.",
    ("tcp__miss_end_data", "conn.log"):
        "redef report_gaps_for_partial=T only matters for partial connections (no SYN seen); this one "
        "starts with a SYN.",
    ("http__get", "conn.log"):
        "redef dpd_reassemble_first_packets=F affects analyzer attachment only.",
    ("vlan-collisions", "conn.log"):
        "the VLAN-aware keying belongs to the alt run (excluded); this baseline is part 1 of the btest, "
        "zeek -r with default scripts and default (VLAN-blind) flow keying.",
    ("chksums__localhost-bad-chksum", "conn.log"):
        "ignore_checksums_nets belongs to the alt run (promoted, verify_checksums=False); this baseline "
        "is run 3, default checksum verification.",
    ("tcp__retransmit-timeout", "alt__core.expire-all-timers__conn-all.log"):
        "max_timer_expires=0 makes Zeek expire every due timer, i.e. default timer behaviour; see PROMOTED.",
}

# Option keywords in source.txt that can change TCP results; every baseline of an item whose text
# mentions one must be covered by one of the tables above (checked by the tests).
TCP_OPTION_KEYWORDS = ("-f '", "BPF", "vlan_fivetuple", "max_timer_expires", "ignore_checksums_nets",
                       "likely_server_ports", "tcp_inactivity_timeout", "tcp_excessive_data",
                       "report_gaps_for_partial", "dpd_reassemble_first_packets")


def decision(b: Baseline) -> str:
    """``"use"``, ``"exclude"`` or ``"skip"`` (not a TCP conn expectation source)."""
    if b.key in EXCLUSIONS:
        return "exclude"
    if b.role == "primary" and b.local == "conn.log":
        return "use"
    if b.role == "alt" and b.key in PROMOTED:
        return "use"
    return "skip"


# ---------------------------------------------------------------------------------------------
# Expected connections
# ---------------------------------------------------------------------------------------------

# Zeek's btest runs draw connection uids from a fixed seed, so the n-th connection Zeek creates
# gets the n-th uid below, whatever the trace. Verified on this corpus: for every conn.log with
# tuples, ordering its rows by the first frame of each tuple (tshark) gives these uids in this
# order, with no contradiction across 25 traces. conn.log rows are written at connection removal,
# not creation, so this is the only way to order rows that lack ts and tuple (ncp, websocket).
UID_SEQUENCE = ("CHhAvVGS1DHFjwGM9", "ClEkJM2Vm5giqnMf4h", "C4J4Th3PJpwUYZZ6gc", "CtPZjS20MLrsMUOJi2",
                "CUM0KZ3MLUfNB0cl11", "CmES5u32sYpV7JYN", "CP5puj4I8PtEU4qzYg", "C37jN32gN3y3AZzyf6",
                "C3eiCBGOLw3VtHfOj", "CwjjYJ2WqgTbAqiHl6", "C0LAHyvtKSQHyJxIl")
UID_RANK = {uid: i for i, uid in enumerate(UID_SEQUENCE)}

# Letters only a TCP connection's history can hold (UDP/ICMP use D/d/^/C only).
TCP_ONLY_HISTORY = frozenset("SsHhAaFfRrTtWwGg")

# Columns of the headerless zeek-cut output, as listed in that item's source.txt.
HEADERLESS_COLUMNS = {
    ("tcp__handshake-reorder", "conn.log"):
        ["id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service", "community_id"],
}
RENAMES = {("auth_change_session_keys", "conn.log"): RENAMED_ID_COLUMNS}

COMPARED = frozenset({"conn_state", "history", "community_id"})


@dataclasses.dataclass(frozen=True)
class ExpectedConn:
    """One TCP connection Zeek reported. ``None`` = the baseline does not say."""

    trace: str
    source: str  # "<btest>/<file>" or "<btest>/<file>#stdout"
    kind: str  # "primary", "alt" (promoted) or "stdout"
    order: int  # position among the trace's connections in Zeek's creation order (see UID_SEQUENCE)
    uid: str | None = None
    orig_h: str | None = None
    orig_p: int | None = None
    resp_h: str | None = None
    resp_p: int | None = None
    conn_state: str | None = None
    history: str | None = None
    orig_pkts: int | None = None
    resp_pkts: int | None = None
    community_id: str | None = None
    ignore: frozenset[str] = frozenset()  # fields not to compare (FIELD_EXCLUSIONS)

    @property
    def proto_number(self) -> int:
        return 6

    def tuple_text(self) -> str:
        def ep(h: str | None, p: int | None) -> str:
            host = "?" if h is None else (f"[{h}]" if ":" in h else h)
            return f"{host}:{'?' if p is None else p}"

        return f"{ep(self.orig_h, self.orig_p)} -> {ep(self.resp_h, self.resp_p)}"

    def comparable(self, field: str) -> bool:
        return field not in self.ignore and getattr(self, field) is not None


@dataclasses.dataclass
class ExpectationSet:
    """The connections one Zeek run reported for one trace, and how to run our analysis to match."""

    trace: str
    trace_path: Path
    verify_checksums: bool
    sources: list[str]
    conns: list[ExpectedConn]


def trace_file(trace: str) -> Path:
    for name in ("trace.pcap", "trace.pcapng"):
        p = zeek_root() / trace / name
        if p.exists():
            return p
    raise FileNotFoundError(f"{zeek_root() / trace}: no trace.pcap or trace.pcapng")


@cache
def _capture_facts() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((zeek_root() / "capture_facts.json").read_text())["zeek"]
    return data


def _all_tcp(trace: str) -> bool:
    """tshark (corpus capture_facts.json) counted only TCP packets in the trace."""
    facts = _capture_facts().get(trace, {})
    return bool(facts) and facts.get("packets") == facts.get("tcp_flags", {}).get("tcp_pkts")


def read_baseline(b: Baseline) -> ZeekLog:
    return parse_zeek_log(b.path.read_text(), columns=HEADERLESS_COLUMNS.get(b.key), rename=RENAMES.get(b.key))


def _is_tcp(row: dict[str, Any], trace: str) -> bool:
    if row.get("proto") is not None:
        return bool(row["proto"] == "tcp")
    history = row.get("history") or ""
    return _all_tcp(trace) or bool(TCP_ONLY_HISTORY & set(history))


def _conns_from_log(b: Baseline, kind: str) -> list[ExpectedConn]:
    log = read_baseline(b)
    ignore = FIELD_EXCLUSIONS.get(b.key, (frozenset(), ""))[0]
    rows = [log.typed(r) for r in log.rows]
    rows = [r for r in rows if _is_tcp(r, b.trace)]
    # Creation order: by uid when every uid is in the known sequence, else file order (rows of one
    # tuple are removed, hence written, in the order they were created).
    if rows and all(r.get("uid") in UID_RANK for r in rows):
        rows.sort(key=lambda r: UID_RANK[r["uid"]])
    out = []
    for i, r in enumerate(rows):
        out.append(ExpectedConn(
            trace=b.trace, source=b.source, kind=kind, order=i, uid=r.get("uid"),
            orig_h=r.get("id.orig_h"), orig_p=r.get("id.orig_p"), resp_h=r.get("id.resp_h"),
            resp_p=r.get("id.resp_p"), conn_state=r.get("conn_state"), history=r.get("history"),
            orig_pkts=r.get("orig_pkts"), resp_pkts=r.get("resp_pkts"), community_id=r.get("community_id"),
            ignore=ignore))
    return out


# ---------------------------------------------------------------------------------------------
# stdout baselines that state TCP facts
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StdoutFact:
    """A TCP fact printed by a btest (not a log). Endpoint states use Zeek's numbering:
    0 INACTIVE, 1 SYN_SENT, 2 SYN_ACK_SENT, 3 PARTIAL, 4 ESTABLISHED, 5 CLOSED, 6 RESET."""

    trace: str
    source: str
    orig_h: str | None = None
    orig_p: int | None = None
    resp_h: str | None = None
    resp_p: int | None = None
    history: str | None = None
    conn_state: str | None = None
    orig_state: int | None = None
    resp_state: int | None = None
    orig_pkts: int | None = None
    resp_pkts: int | None = None
    orig_size: int | None = None
    resp_size: int | None = None


_CONN_ID = re.compile(r"\[orig_h=(?P<oh>[^,]+), orig_p=(?P<op>\d+)/tcp, resp_h=(?P<rh>[^,]+), "
                      r"resp_p=(?P<rp>\d+)/tcp")
_ENDPOINT = re.compile(r"\[size=(?P<size>\d+), state=(?P<state>\d+), num_pkts=(?P<pkts>\d+)")


def _stdout_lines(b: Baseline) -> list[str]:
    lines = b.path.read_text().splitlines()
    return [ln for ln in lines if not ln.startswith(BTEST_HEADER)]


def _id_fields(m: re.Match[str] | None) -> dict[str, Any]:
    if m is None:
        return {}
    return {"orig_h": m.group("oh"), "orig_p": int(m.group("op")), "resp_h": m.group("rh"),
            "resp_p": int(m.group("rp"))}


def stdout_facts() -> list[StdoutFact]:
    """Facts from the stdout baselines whose format is fixed enough to parse without guessing.

    * conn_state-RST-behavior/out: one ``<history>, <conn_state>`` line per trace, the line number
      given in the trace's source.txt ("(line N)").
    * core.connection_flipped/out: the history at connection_state_remove, with the final conn id.
    * core.tcp.tcp-dups/out: ``REMOVE:`` line with the final history.
    * core.tcp.rst-after-syn/.stdout and core.tcp.fin-retransmit/out: endpoint records at removal.
    """
    out: list[StdoutFact] = []
    for b in baselines():
        if b.role != "other":
            continue
        lines = _stdout_lines(b)
        if b.btest == "scripts.base.protocols.conn.conn_state-RST-behavior":
            m = re.search(r"The line for THIS trace is: '([^']*)' \(line (\d+)\)", source_text(b.trace))
            if not m:
                raise ValueError(f"{b.trace}: source.txt does not say which output line is this trace's")
            line = lines[int(m.group(2)) - 1]
            if line != m.group(1):
                raise ValueError(f"{b.trace}: line {m.group(2)} is {line!r}, source.txt says {m.group(1)!r}")
            history, conn_state = (s.strip() for s in line.split(","))
            out.append(StdoutFact(b.trace, b.source, history=history, conn_state=conn_state))
        elif b.btest == "core.connection_flipped":
            last = [ln for ln in lines if ", connection_state_remove, " in ln][-1]
            hist = last.rsplit("], ", 1)[1].split(", ")[0]
            out.append(StdoutFact(b.trace, b.source, history=hist, **_id_fields(_CONN_ID.search(last))))
        elif b.btest == "core.tcp.tcp-dups":
            last = [ln for ln in lines if ln.startswith("REMOVE:")][-1]
            hist = last.rsplit(", ", 1)[1]
            out.append(StdoutFact(b.trace, b.source, history=hist, **_id_fields(_CONN_ID.search(last))))
        elif b.btest in ("core.tcp.rst-after-syn", "core.tcp.fin-retransmit"):
            eps = [m for m in map(_ENDPOINT.search, lines) if m]
            if len(eps) != 2:
                raise ValueError(f"{b.path}: expected 2 endpoint records, found {len(eps)}")
            ids = [m for m in map(_CONN_ID.search, lines) if m]
            o, r = eps
            out.append(StdoutFact(b.trace, b.source, orig_state=int(o.group("state")),
                                  resp_state=int(r.group("state")), orig_pkts=int(o.group("pkts")),
                                  resp_pkts=int(r.group("pkts")), orig_size=int(o.group("size")),
                                  resp_size=int(r.group("size")), **_id_fields(ids[0] if ids else None)))
    return out


# ---------------------------------------------------------------------------------------------
# Putting it together
# ---------------------------------------------------------------------------------------------


def expectations(*, include_stdout: bool = True) -> list[ExpectationSet]:
    """Expected TCP connections per (trace, checksum mode), primaries first.

    stdout facts with a history or conn_state become expectations for traces without a conn.log;
    where a conn.log row exists for the same tuple (tcp__handshake-reorder), the stdout history is
    merged into that row.
    """
    sets: dict[tuple[str, bool], ExpectationSet] = {}

    def add(trace: str, verify: bool, source: str, conns: list[ExpectedConn]) -> None:
        key = (trace, verify)
        if key not in sets:
            sets[key] = ExpectationSet(trace, trace_file(trace), verify, [], [])
        sets[key].sources.append(source)
        sets[key].conns.extend(conns)

    for b in conn_baselines():
        if decision(b) != "use":
            continue
        cfg = run_config(b)
        if cfg.bpf is not None:
            raise ValueError(f"{b.key}: BPF-filtered baseline marked for use")
        kind = "primary" if b.role == "primary" else "alt"
        conns = _conns_from_log(b, kind)
        if conns:
            add(b.trace, cfg.verify_checksums, b.source, conns)

    if include_stdout:
        for fact in stdout_facts():
            if fact.history is None and fact.conn_state is None:
                continue
            b = next(x for x in item_baselines(fact.trace) if x.source == fact.source)
            verify = run_config(b).verify_checksums
            existing = sets.get((fact.trace, verify))
            if existing is not None:
                for i, c in enumerate(existing.conns):
                    if (c.orig_h, c.orig_p, c.resp_h, c.resp_p) == (fact.orig_h, fact.orig_p, fact.resp_h,
                                                                    fact.resp_p):
                        existing.conns[i] = dataclasses.replace(
                            c, history=c.history or fact.history, conn_state=c.conn_state or fact.conn_state)
                        existing.sources.append(fact.source + "#stdout")
                        break
                else:
                    raise ValueError(f"{fact.trace}: stdout fact matches no conn.log row")
                continue
            add(fact.trace, verify, fact.source + "#stdout", [ExpectedConn(
                trace=fact.trace, source=fact.source + "#stdout", kind="stdout", order=0,
                orig_h=fact.orig_h, orig_p=fact.orig_p, resp_h=fact.resp_h, resp_p=fact.resp_p,
                conn_state=fact.conn_state, history=fact.history)])
    return [sets[k] for k in sorted(sets)]


def corpus_community_ids() -> list[ExpectedConn]:
    """Every row of a corpus conn log that has a community_id value (any role, any proto)."""
    out = []
    for b in conn_baselines():
        log = read_baseline(b)
        if "community_id" not in log.fields:
            continue
        for r in map(log.typed, log.rows):
            if r.get("community_id") and r.get("proto") == "tcp":
                out.append(ExpectedConn(trace=b.trace, source=b.source, kind=b.role, order=0,
                                        orig_h=r["id.orig_h"], orig_p=r["id.orig_p"], resp_h=r["id.resp_h"],
                                        resp_p=r["id.resp_p"], community_id=r["community_id"]))
    return out


def expected_jsonl() -> list[dict[str, Any]]:
    with open(zeek_root() / "expected.jsonl") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def iter_all_conns(sets: Iterable[ExpectationSet]) -> Iterator[ExpectedConn]:
    for s in sets:
        yield from s.conns
