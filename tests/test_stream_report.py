"""The report and the Markdown summary of a streamed analysis (what ``pcapsleuth analyze`` does).

``pcapsleuth analyze`` streams: connections are released as they end and the report is drawn
from a digest of a few bytes per connection plus the connections it shows, read back from the
spill (:class:`pcapsleuth.stream.ReportView`). The report must not depend on that:

- a small capture's connections are kept as objects: the streamed report is byte-identical to
  the in-memory one, on every sample;
- with none kept (``KEEP_OBJECTS = 0``: what a big capture gets) every connection the report shows
  is a :class:`pcapsleuth.digest.ConnRecord` read back from JSON, and the report's text is still
  identical; drawings may differ only in the timeline's finding marks;
- a big scan's report holds no connection objects and reads back a bounded number of records.
"""

from __future__ import annotations

import gc
import random
import re
import sys
from pathlib import Path

import pytest

import pcapsleuth.stream as stream
from pcapsleuth.analysis import analyze_capture
from pcapsleuth.digest import ConnDigest, ConnRecord, TopCounter, parse_iso_ns
from pcapsleuth.markdown import render_markdown
from pcapsleuth.report import Limits, findings_to_read, render_html
from pcapsleuth.stream import ReportView, StreamedResult
from pcapsleuth.tracker import Connection
from pcapsleuth.util import iso_ts

from .conftest import sample_captures
from .test_stream_detect import _refused_scan

_SVG = re.compile(r"<svg.*?</svg>", re.S)


@pytest.fixture(autouse=True)
def _fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")


def _streamed(path: Path) -> StreamedResult:
    result = analyze_capture(path, streaming=True)
    assert isinstance(result, StreamedResult)
    return result


@pytest.mark.parametrize("path", sample_captures(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_streamed_report_is_the_in_memory_report(path: Path) -> None:
    mem = analyze_capture(path)
    with _streamed(path) as result:
        view = result.report_view(findings_to_read)
        assert result.sink.kept is not None  # a sample is small: its connections are kept
        assert render_html(view, path) == render_html(mem, path)
        assert render_markdown(view, "r.html") == render_markdown(mem, "r.html")


@pytest.mark.parametrize("path", sample_captures(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_report_from_records_says_the_same(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream, "KEEP_OBJECTS", 0)
    mem = analyze_capture(path)
    expected = render_html(mem, path)
    with _streamed(path) as result:
        view = result.report_view(findings_to_read)
        got = render_html(view, path)
        shown = [c for c in view._cache.values() if c is not None]
        assert all(isinstance(c, ConnRecord) for c in shown)
        assert len(shown) >= min(len(mem.connections), Limits().connection_rows)  # every row read back
    assert _SVG.sub("<svg/>", got) == _SVG.sub("<svg/>", expected)
    # Same number of drawings, and every drawing but the timeline identical.
    mine, theirs = _SVG.findall(got), _SVG.findall(expected)
    assert len(mine) == len(theirs)
    assert [s for s in mine if "#tl-" not in s] == [s for s in theirs if "#tl-" not in s]


def test_records_carry_what_the_connections_have() -> None:
    path = next(p for p in sample_captures() if p.name == "closewait-reuse.pcap")
    mem = analyze_capture(path)
    with _streamed(path) as result:
        for c in mem.connections:
            r = ConnRecord(c.to_dict(), c.index)
            assert (r.uid, r.proto, r.first_frame, r.last_frame) == (c.uid, c.proto, c.first_frame, c.last_frame)
            assert (r.first_ts, r.last_ts) == (c.first_ts, c.last_ts)
            assert (r.conn_state, r.history_str, r.predecessor) == (c.conn_state, c.history_str, c.predecessor)
            assert r.transitions == [tuple(t) for t in c.transitions]
            for a, b in ((r.orig, c.orig), (r.resp, c.resp)):
                assert (a.addr, a.port, a.pkts, a.isn, a.tcp_state) == (b.addr, b.port, b.pkts, b.isn, b.tcp_state)
            assert r.orig.size(r.resp) == c.orig.size(c.resp)
            assert (r.orig.syn_opts or {}).get("wscale") == (c.orig.syn_opts or {}).get("wscale")
        # The successor, linked after the line was spilled, is in the record read back.
        view = result.report_view()
        linked = [c for c in mem.connections if c.successor]
        assert linked
        for c in linked:
            got = view.connection(c.uid)
            assert got is not None and got.successor == c.successor


def test_the_digest_is_the_same_both_ways() -> None:
    path = next(p for p in sample_captures() if p.name == "portscan.pcap")
    mem = analyze_capture(path)
    with _streamed(path) as result:
        a, b = mem.digest, result.sink.digest
        assert (a.n, a.state_counts()) == (b.n, b.state_counts())
        assert a.n == len(mem.connections)
        assert list(a.indexes()) == list(b.indexes()) == [c.index for c in mem.connections]
        assert a.listeners.top(10) == b.listeners.top(10)
        assert a.talkers.top(10) == b.talkers.top(10)
        assert sorted(a.starts()) == sorted(b.starts())
        assert list(a.indexes(skip_state="SF")) == [c.index for c in mem.connections if c.conn_state != "SF"]


def test_iso_timestamps_read_back_exactly() -> None:
    rng = random.Random(7)
    for ts in [0, 1, 999_999_999, 1_000_000_000] + [rng.randrange(0, 2**62) for _ in range(2000)]:
        assert parse_iso_ns(iso_ts(ts)) == ts
    assert parse_iso_ns(None) is None


def test_top_counter_is_bounded_and_says_when_it_guessed() -> None:
    top = TopCounter(cap=100)
    for i in range(10_000):
        top.add(("10.0.0.1", i, "tcp"), bad=i % 2 == 0)
    for _ in range(50):
        top.add(("10.0.0.9", 80, "tcp"))
    assert len(top.counts) <= 100
    assert top.approximate
    assert top.top(1) == [(("10.0.0.9", 80, "tcp"), 50, 0)]
    assert top.distinct() >= 10_000
    exact = TopCounter(cap=100)
    for key in ["b", "a", "c", "a", "b"]:
        exact.add(key)
    assert not exact.approximate
    assert exact.top(3) == [("a", 2, 0), ("b", 2, 0), ("c", 1, 0)]  # ties by key, not by arrival
    assert exact.distinct() == 3
    ports = TopCounter()
    for port in (10, 2, None, 1):
        ports.add(("10.0.0.1", port, "tcp"))
    assert [k[1] for k, _, _ in ports.top(4)] == [None, 1, 2, 10]  # numbers as numbers


def _connection_objects(root: object) -> int:
    seen = {id(root)}
    stack = [root]
    n = 0
    while stack:
        obj = stack.pop()
        if isinstance(obj, Connection):
            n += 1
        for ref in gc.get_referents(obj):
            if id(ref) not in seen and not isinstance(ref, (type(sys), type)):
                seen.add(id(ref))
                stack.append(ref)
    return n


def test_a_big_scans_report_keeps_no_connections(tmp_path: Path) -> None:
    path = tmp_path / "scan.pcap"
    _refused_scan(path, sports=80, dports=50)  # 4,000 refused 4-tuples over 50 ports
    with _streamed(path) as result:
        view = result.report_view(findings_to_read)
        html = render_html(view, path)
        md = render_markdown(view)
        assert result.sink.kept is None  # past KEEP_OBJECTS
        assert _connection_objects(view) == 0
        assert _connection_objects(result) == 0
        records = [c for c in view._cache.values() if c is not None]
        # The table's 500 rows and the connections the findings' drawings look at, no more.
        assert Limits().connection_rows <= len(records) <= Limits().connection_rows + 2 * 2000
        assert isinstance(view, ReportView) and view.digest.n == 4000
    assert "4,000" in html and "aggregated" in html
    assert "scan.port_scan" in html and "scan.port_scan" in md
    assert "4,000" in md


def test_digest_of_no_connections() -> None:
    d = ConnDigest.of([])
    assert (d.n, d.state_counts(), list(d.indexes()), list(d.starts())) == (0, [], [], [])
