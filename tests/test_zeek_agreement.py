"""Issue 3: the connection table must agree with Zeek.

For every corpus trace with expected TCP connections (tests/zeek_oracle.py), run the analysis with
the checksum mode Zeek used (``-C`` -> ``verify_checksums=False``), pair our TCP connections with
Zeek's by endpoint pair (either orientation) and order of appearance, and compare ``conn_state``,
``history`` and ``community_id``. A disagreement report is written to
``tests/_reports/zeek_agreement.txt`` (regardless of ``-s``) and the headline numbers are printed.

Thresholds (issue 3): >= 97 % of Zeek's TCP connections matched; conn_state equal on >= 97 % of the
matched ones that have a Zeek conn_state; history equal on >= 90 % of those with a Zeek history;
community_id equal wherever Zeek logged one. A role flip (our originator is Zeek's responder)
counts as matched, is reported, and usually shows up as a history/conn_state difference too.

The ``llc`` trace is a 1996 FDDI capture with 1333 lone RSTs on one 4-tuple, i.e. 1333 of Zeek's
~1550 connections; a tracker could pass the global thresholds on it alone. The same thresholds are
therefore also asserted with ``llc`` left out (``test_zeek_agreement_without_rst_storm``).

``KNOWN_DISAGREEMENTS`` explains individual differences (the WHY column of the report). It does
not change the numbers: an explained disagreement is still a disagreement.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import zeek_oracle as zo  # noqa: E402

import pcapsleuth.analysis
import pcapsleuth.tracker  # noqa: E402

REPORT = Path(__file__).resolve().parent / "_reports" / "zeek_agreement.txt"

MATCHED_MIN = 0.97
CONN_STATE_MIN = 0.97
HISTORY_MIN = 0.90
RST_STORM_TRACE = "llc"

# (trace, "orig -> resp" as zeek_oracle.ExpectedConn.tuple_text() prints it, or "*") -> why.
KNOWN_DISAGREEMENTS: dict[tuple[str, str], str] = {
    # Zeek quirks we deliberately do not copy: they come from Zeek's application-layer scripts,
    # not from what the packets say about TCP.
    ("globus-url-copy", "*"):
        "ZEEK QUIRK (not copied): the gridftp script (size_threshold=2) decides this is a GridFTP data "
        "channel and tells Zeek to stop processing it (skip_further_processing), so Zeek never sees the "
        "FINs (S1 ShADad). The capture has both FINs (frames with tcp.flags.fin): SF ShADadfF is what TCP did.",
    ("http__deeply-nested-mime", "*"):
        "ZEEK QUIRK (not copied): 'X' is not a TCP event; Zeek adds it when an application analyzer "
        "hits a protocol violation or limit (here exceeded_mime_max_depth in weird.log). We do not run "
        "application analyzers; every TCP letter agrees.",
    ("ssh__kex-quadratic-1000", "*"):
        "ZEEK QUIRK (not copied): 'X' comes from the SSH analyzer's limits (SSH_max_kexinit_* weirds in "
        "weird.log), not from TCP; every TCP letter agrees.",
    ("tunnels__gtp__gtp2_different_udp_port", "*"):
        "ZEEK QUIRK (not copied): 'X' marks an application-analyzer event inside the GTP tunnel (HTTP "
        "over a checksum-mangled, fragmented path); every TCP letter agrees.",
}

REQUIRED_KEYS = ("uid", "orig_h", "orig_p", "resp_h", "resp_p", "proto", "conn_state", "history",
                 "orig_pkts", "resp_pkts", "community_id")


def _norm_addr(addr: Any) -> str | None:
    if addr is None:
        return None
    try:
        return ipaddress.ip_address(str(addr)).compressed
    except ValueError:
        return str(addr)


def _norm_port(port: Any) -> int | None:
    return None if port is None else int(port)


@dataclasses.dataclass
class Pair:
    exp: zo.ExpectedConn
    ours: dict[str, Any] | None
    flipped: bool = False

    def differs(self, field: str) -> bool:
        return self.ours is not None and self.exp.comparable(field) and self.ours.get(field) != getattr(
            self.exp, field)


def _endpoints(d: dict[str, Any]) -> tuple[tuple[str | None, int | None], tuple[str | None, int | None]]:
    return ((_norm_addr(d.get("orig_h")), _norm_port(d.get("orig_p"))),
            (_norm_addr(d.get("resp_h")), _norm_port(d.get("resp_p"))))


def _exp_endpoints(e: zo.ExpectedConn) -> tuple[tuple[str | None, int | None], tuple[str | None, int | None]]:
    return ((_norm_addr(e.orig_h), e.orig_p), (_norm_addr(e.resp_h), e.resp_p))


def _fits(want: tuple[str | None, int | None], have: tuple[str | None, int | None]) -> bool:
    return (want[0] is None or want[0] == have[0]) and (want[1] is None or want[1] == have[1])


def match(expected: list[zo.ExpectedConn], ours: list[dict[str, Any]]) -> tuple[list[Pair], list[dict[str, Any]]]:
    """Pair Zeek's connections of one run with ours.

    1. Full 4-tuple: same endpoint pair in either orientation; several connections on one pair
       are paired in order (Zeek's creation order vs our list order).
    2. Partial tuple (zeek-cut projections without some id columns): the first remaining
       connection of ours consistent with the given fields, in either orientation.
    3. No tuple at all: the remaining connections in order.
    Returns the pairs (ours None = unmatched) and our connections left over.
    """
    remaining = list(range(len(ours)))
    eps = [_endpoints(d) for d in ours]
    pairs: dict[int, Pair] = {}
    by_order = sorted(range(len(expected)), key=lambda i: expected[i].order)

    def take(i: int, j: int) -> None:
        e_o, _e_r = _exp_endpoints(expected[i])
        o_o, _o_r = eps[j]
        flipped = not _fits(e_o, o_o)
        pairs[i] = Pair(expected[i], ours[j], flipped)
        remaining.remove(j)

    full = [i for i in by_order if None not in (*_exp_endpoints(expected[i])[0], *_exp_endpoints(expected[i])[1])]
    partial = [i for i in by_order if i not in full and any(v is not None for ep in _exp_endpoints(expected[i])
                                                              for v in ep)]
    bare = [i for i in by_order if i not in full and i not in partial]

    for i in full:
        key = frozenset(_exp_endpoints(expected[i]))
        for j in remaining:
            if frozenset(eps[j]) == key:
                take(i, j)
                break
    for i in partial:
        e_o, e_r = _exp_endpoints(expected[i])
        for j in remaining:
            o_o, o_r = eps[j]
            if (_fits(e_o, o_o) and _fits(e_r, o_r)) or (_fits(e_o, o_r) and _fits(e_r, o_o)):
                take(i, j)
                break
    for i in bare:
        if remaining:
            take(i, remaining[0])
    out = [pairs.get(i, Pair(expected[i], None)) for i in range(len(expected))]
    return out, [ours[j] for j in remaining]


@dataclasses.dataclass
class Tally:
    total: int = 0
    matched: int = 0
    flipped: int = 0
    state_n: int = 0
    state_eq: int = 0
    hist_n: int = 0
    hist_eq: int = 0
    cid_n: int = 0
    cid_eq: int = 0
    extra: int = 0

    def add(self, p: Pair) -> None:
        self.total += 1
        if p.ours is None:
            return
        self.matched += 1
        self.flipped += p.flipped
        for field, n, eq in (("conn_state", "state_n", "state_eq"), ("history", "hist_n", "hist_eq"),
                             ("community_id", "cid_n", "cid_eq")):
            if p.exp.comparable(field):
                setattr(self, n, getattr(self, n) + 1)
                setattr(self, eq, getattr(self, eq) + (not p.differs(field)))

    @staticmethod
    def ratio(a: int, b: int) -> float:
        return a / b if b else 1.0

    def lines(self, label: str) -> list[str]:
        r = self.ratio
        return [
            f"{label}:",
            f"  Zeek TCP connections          {self.total}",
            f"  matched                        {self.matched} ({r(self.matched, self.total):.2%},"
            f" min {MATCHED_MIN:.0%})"
            f", role flipped {self.flipped}",
            f"  conn_state equal               {self.state_eq}/{self.state_n} ({r(self.state_eq, self.state_n):.2%},"
            f" min {CONN_STATE_MIN:.0%})",
            f"  history equal                  {self.hist_eq}/{self.hist_n} ({r(self.hist_eq, self.hist_n):.2%},"
            f" min {HISTORY_MIN:.0%})",
            f"  community_id equal             {self.cid_eq}/{self.cid_n} (must be all)",
            f"  our TCP connections unmatched  {self.extra}",
        ]

    def failures(self, label: str) -> list[str]:
        r = self.ratio
        out = []
        if r(self.matched, self.total) < MATCHED_MIN:
            out.append(f"{label}: matched {self.matched}/{self.total} < {MATCHED_MIN:.0%}")
        if r(self.state_eq, self.state_n) < CONN_STATE_MIN:
            out.append(f"{label}: conn_state equal {self.state_eq}/{self.state_n} < {CONN_STATE_MIN:.0%}")
        if r(self.hist_eq, self.hist_n) < HISTORY_MIN:
            out.append(f"{label}: history equal {self.hist_eq}/{self.hist_n} < {HISTORY_MIN:.0%}")
        if self.cid_eq != self.cid_n:
            out.append(f"{label}: community_id differs on {self.cid_n - self.cid_eq} of {self.cid_n}")
        return out


@dataclasses.dataclass
class Comparison:
    pairs: list[tuple[zo.ExpectationSet, Pair]]
    extra: list[tuple[zo.ExpectationSet, dict[str, Any]]]
    problems: list[str]  # harness-level: the analysis could not be compared at all

    def tally(self, skip_trace: str | None = None) -> Tally:
        t = Tally()
        for s, p in self.pairs:
            if s.trace != skip_trace:
                t.add(p)
        t.extra = sum(1 for s, _ in self.extra if s.trace != skip_trace)
        return t


def _tcp_dicts(res: Any, s: zo.ExpectationSet) -> list[dict[str, Any]]:
    conns = res.connections
    out = []
    for c in conns:
        d = c.to_dict() if hasattr(c, "to_dict") else c
        missing = [k for k in REQUIRED_KEYS if k not in d]
        if missing:
            raise AssertionError(f"{s.trace}: connection dict lacks {missing}: {sorted(d)}")
        if d["proto"] == "tcp":
            out.append(d)
    return out


# Ports that Zeek's analyzers register as likely server ports (scripts/base/protocols/*/main.zeek).
# In bare mode (-b) only the loaded analyzers contribute, which decides the role flip of
# connections that start without a SYN (Zeek's WantConnection heuristic).
_ANALYZER_PORTS: dict[str, frozenset[int]] = {
    "http": frozenset({80, 81, 631, 1080, 3128, 8000, 8080, 8888}),
    "ftp": frozenset({21, 2811}),
    "ssh": frozenset({22}),
    "ssl": frozenset({443, 563, 585, 614, 636, 989, 990, 992, 993, 995, 5223}),
    "pop3": frozenset({110}),
    "imap": frozenset({143}),
    "irc": frozenset({6666, 6667, 6668, 6669}),
    "smtp": frozenset({25, 587}),
    "ldap": frozenset({389, 3268}),
    "mysql": frozenset({1434, 3306}),
    "redis": frozenset({6379}),
    "modbus": frozenset({502}),
    "xmpp": frozenset({5222, 5269}),
    "smb": frozenset({135, 137, 139, 445}),
    "krb": frozenset({88}),
    "socks": frozenset({1080}),
    "rdp": frozenset({3389}),
}


def likely_server_ports(trace: str) -> frozenset[int]:
    """The likely_server_ports Zeek had in the run behind a trace's baseline."""
    text = zo.what_btest_did(trace)
    if not re.search(r"\bzeek\b[^.;]*\s-[A-Za-z]*b", text):
        return pcapsleuth.tracker.LIKELY_SERVER_PORTS
    ports: set[int] = set()
    for proto, pset in _ANALYZER_PORTS.items():
        if re.search(rf"(protocols/{proto}\b|\bloads?[^.]*\b{proto}\b)", text, re.IGNORECASE):
            ports |= pset
    if re.search(r"\b(tls|starttls)\b", text, re.IGNORECASE):
        ports |= _ANALYZER_PORTS["ssl"]
    return frozenset(ports)


def compare_all(analyze: Any = None) -> Comparison:
    analyze = analyze or pcapsleuth.analysis.analyze_capture
    cmp = Comparison([], [], [])
    for s in zo.expectations():
        try:
            # Zeek cannot know about checksum offload: in a verifying run it counts a checksum that
            # holds only the pseudo-header sum as bad, so we do too (strict_checksums).
            res = analyze(s.trace_path, verify_checksums=s.verify_checksums,
                          strict_checksums=s.verify_checksums,
                          likely_server_ports=likely_server_ports(s.trace))
        except TypeError:  # a stub analyze() without the keyword
            res = analyze(s.trace_path, verify_checksums=s.verify_checksums)
        if not hasattr(res, "connections"):
            cmp.problems.append(
                f"{type(res).__name__} has no 'connections' attribute: the TCP tracker (pcapsleuth/tracker.py, "
                f"issue 3) has not landed or is not wired into analyze_capture(); nothing can be compared")
            return cmp
        pairs, extra = match(s.conns, _tcp_dicts(res, s))
        cmp.pairs.extend((s, p) for p in pairs)
        cmp.extra.extend((s, d) for d in extra)
    return cmp


def _why(trace: str, tup: str) -> str:
    return KNOWN_DISAGREEMENTS.get((trace, tup)) or KNOWN_DISAGREEMENTS.get((trace, "*")) or "UNEXPLAINED"


def _ours_tuple(d: dict[str, Any]) -> str:
    (oh, op), (rh, rp) = _endpoints(d)
    return f"{oh}:{op} -> {rh}:{rp}"


def write_report(cmp: Comparison) -> str:
    lines = ["Zeek agreement report (tests/test_zeek_agreement.py; expectations: tests/zeek_oracle.py)", ""]
    if cmp.problems:
        lines += ["NOT COMPARED:", *("  " + p for p in cmp.problems), ""]
    lines += cmp.tally().lines("all traces")
    lines += cmp.tally(skip_trace=RST_STORM_TRACE).lines(f"without {RST_STORM_TRACE} (RST storm, 1333 conns)")
    lines += ["", "Exclusions (baselines not used):"]
    lines += [f"  {t}/{f}: {why}" for (t, f), why in sorted(zo.EXCLUSIONS.items())]
    lines += ["", "Field exclusions:"]
    lines += [f"  {t}/{f}: {sorted(fields)}: {why}" for (t, f), (fields, why) in sorted(zo.FIELD_EXCLUSIONS.items())]
    lines += ["", "Per trace (checksums: verified/-C): zeek matched state_eq/n hist_eq/n extra"]
    per: dict[tuple[str, bool], Tally] = {}
    for s, p in cmp.pairs:
        per.setdefault((s.trace, s.verify_checksums), Tally()).add(p)
    extra = Counter((s.trace, s.verify_checksums) for s, _ in cmp.extra)
    for (trace, verify), t in sorted(per.items()):
        t.extra = extra[(trace, verify)]
        lines.append(f"  {trace:45s} {'verified' if verify else '-C':8s} {t.total:5d} {t.matched:5d} "
                     f"{t.state_eq}/{t.state_n} {t.hist_eq}/{t.hist_n} {t.extra}")

    rows = []
    for s, p in cmp.pairs:
        tup = p.exp.tuple_text()
        if p.ours is None:
            rows.append((s.trace, tup, "(none)", f"{p.exp.conn_state} {p.exp.history}", "unmatched"))
            continue
        diffs = [f for f in ("conn_state", "history", "community_id") if p.differs(f)]
        if diffs or p.flipped:
            what = ",".join(diffs + (["roles flipped"] if p.flipped else []))
            ours = f"{p.ours.get('conn_state')} {p.ours.get('history')}"
            zeek = f"{p.exp.conn_state} {p.exp.history}"
            if "community_id" in diffs:
                ours += f" {p.ours.get('community_id')}"
                zeek += f" {p.exp.community_id}"
            rows.append((s.trace, tup + ("" if not p.flipped else f"  [ours: {_ours_tuple(p.ours)}]"),
                         ours, zeek, what))
    for s, d in cmp.extra:
        rows.append((s.trace, _ours_tuple(d), f"{d.get('conn_state')} {d.get('history')}", "(none)",
                     "not in Zeek"))
    lines += ["", f"Disagreements ({len(rows)}): trace | tuple (Zeek's orientation) | ours | Zeek's | what | WHY"]
    for trace, tup, ours, zeek, what in rows:
        lines.append(f"  {trace} | {tup} | {ours} | {zeek} | {what} | {_why(trace, tup)}")
    text = "\n".join(lines) + "\n"
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(text)
    return text


@pytest.fixture(scope="module")
def comparison() -> Comparison:
    cmp = compare_all()
    text = write_report(cmp)
    print("\n" + "\n".join(text.splitlines()[:20]))
    print(f"(full report: {REPORT})")
    return cmp


def test_zeek_agreement(comparison: Comparison) -> None:
    assert not comparison.problems, "; ".join(comparison.problems)
    failures = comparison.tally().failures("all traces")
    assert not failures, "; ".join(failures) + f" (see {REPORT})"


def test_zeek_agreement_without_rst_storm(comparison: Comparison) -> None:
    assert not comparison.problems, "; ".join(comparison.problems)
    failures = comparison.tally(skip_trace=RST_STORM_TRACE).failures(f"without {RST_STORM_TRACE}")
    assert not failures, "; ".join(failures) + f" (see {REPORT})"


# ---------------------------------------------------------------------------------------------
# The oracle itself: these do not need the tracker.
# ---------------------------------------------------------------------------------------------


def test_oracle_agrees_with_expected_jsonl() -> None:
    """Every TCP row the corpus digest lists for a used baseline is in the oracle, with the same
    values, and the oracle has no row the digest lacks."""
    used = {b.source: b for b in zo.conn_baselines() if zo.decision(b) == "use"}
    oracle: dict[str, list[zo.ExpectedConn]] = {}
    for s in zo.expectations(include_stdout=False):
        for c in s.conns:
            oracle.setdefault(c.source, []).append(c)
    rows = [r for r in zo.expected_jsonl() if "weird" not in r and r.get("proto") == "tcp"
            and r["role"] in ("primary", "alt") and r["source"] in used]
    assert sum(map(len, oracle.values())) == len(rows)
    fields = {"orig_h": "orig_h", "orig_p": "orig_p", "resp_h": "resp_h", "resp_p": "resp_p",
              "conn_state": "conn_state", "history": "history", "orig_pkts": "orig_pkts", "resp_pkts": "resp_pkts"}
    unclaimed = {src: list(cs) for src, cs in oracle.items()}
    for r in rows:
        cands = [c for c in unclaimed.get(r["source"], [])
                 if all(getattr(c, f) == r[k] for k, f in fields.items() if k in r)
                 and (r.get("uid") is None or c.uid == r["uid"])]
        assert cands, f"expected.jsonl row not in the oracle: {r}"
        unclaimed[r["source"]].remove(cands[0])
    assert not any(unclaimed.values())


def test_stdout_facts_agree_with_expected_jsonl() -> None:
    facts = {(f.trace, f.source): f for f in zo.stdout_facts()}
    derived = [r for r in zo.expected_jsonl() if r.get("role") == "derived_stdout"]
    assert len(derived) == len(facts) == 8
    for r in derived:
        f = facts[(r["trace"], r["source"])]
        for key in ("history", "conn_state", "orig_h", "orig_p", "resp_h", "resp_p", "orig_pkts", "resp_pkts"):
            if key in r:
                assert getattr(f, key) == r[key], (r, f)
        for key, attr in (("orig_endpoint_state", "orig_state"), ("resp_endpoint_state", "resp_state"),
                          ("orig_size", "orig_size"), ("resp_size", "resp_size")):
            if key in r:
                assert getattr(f, attr) == r[key], (r, f)


def test_every_baseline_has_a_run_config() -> None:
    for b in zo.conn_baselines():
        cfg = zo.run_config(b)
        if cfg.bpf is not None:
            assert zo.decision(b) == "exclude", f"{b.key}: BPF-filtered ({cfg.bpf}) but not excluded"


def test_every_alt_and_option_is_decided() -> None:
    tables = set(zo.EXCLUSIONS) | set(zo.PROMOTED) | set(zo.FIELD_EXCLUSIONS) | set(zo.KEPT_DESPITE_OPTIONS)
    known = {b.key for b in zo.baselines()}
    assert tables <= known, f"decision tables name unknown baselines: {sorted(tables - known)}"
    assert not set(zo.EXCLUSIONS) & set(zo.PROMOTED)
    for b in zo.conn_baselines():
        if b.role == "alt":
            assert b.key in zo.EXCLUSIONS or b.key in zo.PROMOTED, f"{b.key}: alt baseline without a decision"
        text = zo.what_btest_did(b.trace)
        hits = [k for k in zo.TCP_OPTION_KEYWORDS if k in text]
        if hits:
            assert b.key in tables, f"{b.key}: source.txt mentions {hits} but no decision table covers it"
    for why in [*zo.EXCLUSIONS.values(), *zo.PROMOTED.values(), *zo.KEPT_DESPITE_OPTIONS.values(),
                *(w for _, w in zo.FIELD_EXCLUSIONS.values())]:
        assert len(why) > 40, f"reason too short to be useful: {why!r}"


def test_expectation_counts() -> None:
    """The totals quoted in issue 3 (primary baselines after exclusions; promoted alts; stdout)."""
    kinds = Counter(c.kind for c in zo.iter_all_conns(zo.expectations()))
    primary_rows = [r for r in zo.expected_jsonl() if "weird" not in r and r.get("role") == "primary"
                    and r.get("proto") == "tcp"]
    excluded = sum(1 for r in primary_rows
                   if any(b.source == r["source"] and b.key in zo.EXCLUSIONS for b in zo.conn_baselines()))
    assert kinds["primary"] == len(primary_rows) - excluded
    print(f"\nexpected Zeek TCP connections: {kinds['primary']} from primary baselines "
          f"({excluded} excluded), {kinds['alt']} from promoted alt baselines, {kinds['stdout']} from stdout")


def test_uid_sequence_is_creation_order() -> None:
    """UID_SEQUENCE claims Zeek's btest uids follow connection creation order. Check it on every
    used baseline whose rows all have a full tuple and a uid from the sequence: ordering by the
    first frame of each endpoint pair (our packet decoder, not the tracker) gives the uid order."""
    from pcapsleuth.capture import read_packets

    checked = 0
    for s in zo.expectations(include_stdout=False):
        conns = [c for c in s.conns if c.uid in zo.UID_RANK and None not in (c.orig_h, c.orig_p, c.resp_h, c.resp_p)]
        keys = [frozenset(_exp_endpoints(c)) for c in conns]
        if len(conns) < 2 or len(conns) != len(s.conns) or len(set(keys)) != len(keys):
            continue
        packets, _ = read_packets(s.trace_path, verify_checksums=False)
        first: dict[frozenset[tuple[str | None, int | None]], int] = {}
        for pkt in packets:
            if pkt.proto == 6 and pkt.sport is not None:
                k = frozenset({(_norm_addr(pkt.src), pkt.sport), (_norm_addr(pkt.dst), pkt.dport)})
                first.setdefault(k, pkt.no)
        if not all(k in first for k in keys):
            continue
        by_frame = [c.uid for _, c in sorted(zip((first[k] for k in keys), conns, strict=True), key=lambda x: x[0])]
        assert by_frame == sorted(by_frame, key=lambda u: zo.UID_RANK[u]), s.trace
        checked += 1
    assert checked >= 10, f"only {checked} traces could check the uid sequence"
