"""Memory-saving measures must not change what pcapsleuth concludes.

The tracker drops the evidence packets of connections that closed cleanly (``slim_clean``), and
the JSON document is written connection by connection instead of being built as one string. Both
are checked here against the plain way, on every recorded sample and every corpus capture.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from pcapsleuth.analysis import AnalysisResult
from pcapsleuth.capture import Capture
from pcapsleuth.detectors import detect
from pcapsleuth.tracker import Tracker

from .conftest import corpus_root, sample_captures, zeek_items, zeek_trace


def _captures() -> list[Path]:
    out = list(sample_captures())
    out += [zeek_trace(i) for i in zeek_items()]
    return out


def _analyze(path: Path, slim: bool = True, **tracker_kw: Any) -> AnalysisResult:
    tr = Tracker(slim_clean=slim, **tracker_kw)
    with Capture(path) as cap:
        for p in cap:
            tr.packet(p)
    conns = tr.finish()
    return AnalysisResult(capture=cap.info, connections=conns, findings=detect(conns, cap.info))


def test_there_are_captures_to_compare() -> None:
    assert corpus_root().is_dir(), f"corpus missing at {corpus_root()}"
    assert len(_captures()) > 50


@pytest.mark.parametrize("path", _captures(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_slimming_changes_no_finding_and_no_connection(path: Path) -> None:
    full = _analyze(path, slim=False)
    slim = _analyze(path, slim=True)
    assert [f.to_dict() for f in slim.findings] == [f.to_dict() for f in full.findings]
    assert [c.to_dict() for c in slim.connections] == [c.to_dict() for c in full.connections]


def test_slimming_drops_evidence_of_clean_connections() -> None:
    path = next(p for p in sample_captures() if p.name == "clean.pcap")
    full = _analyze(path, slim=False)
    slim = _analyze(path, slim=True)
    kept_full = sum(len(c.evidence) for c in full.connections)
    kept_slim = sum(len(c.evidence) for c in slim.connections)
    clean = [c for c in slim.connections if c.conn_state == "SF" and not c.event_counts and not c.weirds]
    assert clean
    assert kept_slim < kept_full
    for c in clean:
        # Only what came after the close (the last ACK) is left.
        assert all(p.no > (c.close_frame or 0) for p in c.evidence), c.uid


@pytest.mark.parametrize("name", ["closewait-minefield.pcap", "lossy-server.pcap", "portscan.pcap"])
def test_streamed_json_equals_the_document(name: str) -> None:
    path = next(p for p in sample_captures() if p.name == name)
    result = _analyze(path, slim=True)
    buf = io.StringIO()
    result.write_json(buf)
    text = buf.getvalue()
    assert json.loads(text) == json.loads(json.dumps(result.to_json_dict()))
    # One connection and one finding per line: grep-able by uid.
    lines = [json.loads(ln.strip().rstrip(",")) for ln in text.splitlines() if ln.lstrip().startswith('{"uid"')]
    assert [d["uid"] for d in lines] == [c.uid for c in result.connections]


@pytest.mark.parametrize("name", ["lossy-client.pcap", "lossy-server.pcap", "stalled-reader.pcap"])
def test_capped_event_lists_still_show_every_finding(name: str) -> None:
    """With the per-connection event list capped hard, the counts stay exact, every finding keeps at
    least one frame (the first segment of each side to carry each counted flag is always kept), and
    the findings made from counts are all still raised; only those made from the segments' pattern
    (window updates) may go."""
    path = next(p for p in sample_captures() if p.name == name)
    full_result, capped_result = _analyze(path, max_events=None), _analyze(path, max_events=2)
    full_conns, full = full_result.connections, full_result.findings
    capped_conns, capped = capped_result.connections, capped_result.findings
    assert sum(c.events_dropped for c in capped_conns) > 0  # the cap did bite
    assert {f.id for f in capped} <= {f.id for f in full}
    counted = {"data.retransmission", "data.fast_retransmission", "data.rto", "data.zero_window",
               "data.lost_segment", "data.duplicate_ack"}
    assert {f.id for f in full} & counted <= {f.id for f in capped}
    assert {f.id for f in full} & counted  # the sample does raise some of them
    assert all(f.frames for f in capped)
    assert [c.analysis_counts() for c in capped_conns] == [c.analysis_counts() for c in full_conns]


def test_max_connections_bounds_the_table_and_is_reported(tmp_path: Path) -> None:
    """--max-connections: the table never holds more; the least recently active are finished early,
    counted in the JSON's tracking object, and the scan is still recognised."""
    from pcapsleuth.cli import main

    path = next(p for p in sample_captures() if p.name == "portscan.pcap")
    out = tmp_path / "o.json"
    err = io.StringIO()
    assert main(["analyze", "-q", "--no-html", "--max-connections", "40", "--json", str(out), str(path)],
                stdout=io.StringIO(), stderr=err) == 0, err.getvalue()
    doc = json.loads(out.read_text())
    t = doc["tracking"]
    assert t["max_connections"] == 40 and t["evicted"] > 0
    # Finished early is not lost: every TCP packet is still in some connection's counts.
    assert t["tcp_packets"] == sum(c["orig_pkts"] + c["resp_pkts"] for c in doc["connections"] if c["proto"] == "tcp")
    assert "scan.port_scan" in {f["id"] for f in doc["findings"]}
    err = io.StringIO()
    assert main(["analyze", "--max-connections", "0", str(path)], stdout=io.StringIO(), stderr=err) == 2
    assert "--max-connections" in err.getvalue()


def _swept(conn: Any, now: int) -> bool:
    """Zeek's timers as conditions on ``now`` (the oracle for ``_retire_at``): has the connection
    been idle for ``tcp_inactivity_timeout``, or, with a side closed, has one of the close timers
    removed it? Timers due at or before ``now`` have fired."""
    from pcapsleuth.tracker import CLOSE_LINGER_NS, EXPIRE_EVERY_NS, EXPIRE_FIRST_NS, INACTIVITY_NS, EndpointState

    if now - conn.last_ts >= INACTIVITY_NS:
        return True
    o, r = conn.orig, conn.resp
    if not (o.did_close or r.did_close):
        return False
    if conn.delete_at is not None and now >= conn.delete_at:
        return True  # tcp_close_delay after the close completed
    inactive, reset = EndpointState.INACTIVE, o.state == EndpointState.RESET or r.state == EndpointState.RESET
    if (conn.partial_close_at is not None and now >= conn.partial_close_at and o.state != inactive
            and r.state != inactive and not (o.did_close and r.did_close) and not reset):
        return True  # tcp_partial_close_delay after a FIN that was the side's first packet
    # ExpireTimer: at creation + tcp_SYN_timeout, then every tcp_session_timer; it removes a
    # connection idle for tcp_connection_linger once a side has closed and the other side has closed
    # too, reset, or never said anything.
    if (o.did_close and r.did_close) or reset or o.state == inactive or r.state == inactive:
        first = conn.first_ts + EXPIRE_FIRST_NS
        if now >= first:
            fired = first + (now - first) // EXPIRE_EVERY_NS * EXPIRE_EVERY_NS
            if fired > conn.last_ts + CLOSE_LINGER_NS:
                return True
    return False


@pytest.mark.parametrize("path", _captures(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_retire_at_is_when_the_sweep_would_retire(path: Path) -> None:
    """The sweep retires a connection, and a packet on its tuple starts a new one, from the time
    ``_retire_at`` computes: the moment Zeek's timers remove it, to the ns."""
    from pcapsleuth.tracker import _retire_at

    conns = [c for c in _analyze(path).connections if c.proto == "tcp"]
    assert conns or path.parent.name != "basic"
    for c in conns:
        at = _retire_at(c)
        assert _swept(c, at), c.uid
        assert not _swept(c, at - 1), c.uid
        for step in (10**6, 10**9, 7 * 10**9, 10**11):
            assert _swept(c, at + step) and not _swept(c, at - step), (c.uid, step)


@pytest.mark.parametrize("path", _captures(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_compacted_connections_come_back_the_same(path: Path) -> None:
    """``Connection.compact`` packs a connection (and its conversation); reading it brings back the
    same facts: JSON, evidence packets, endpoints, analysis state."""
    from pcapsleuth.tcpanalysis import Conversation, _kept_fields
    from pcapsleuth.tracker import _PACKED, Connection, _endpoint_fields, _PackedConnection

    conns = _analyze(path).connections
    for c in conns:
        if c.proto != "tcp":
            continue
        before = (c.to_dict(), list(c.evidence), _endpoint_fields(c.orig), _endpoint_fields(c.resp),
                  c.analysis_counts(), c.transitions)
        ws = c.ws
        ws_before = (_kept_fields(ws.d0), _kept_fields(ws.d1)) if ws is not None else None
        c.compact()
        assert type(c) is _PackedConnection and c._packed
        for name in _PACKED:  # the slots themselves are empty (read past __getattr__)
            with pytest.raises(AttributeError):
                getattr(Connection, name).__get__(c, Connection)
        if ws is not None:
            assert type(ws) is not Conversation and ws._packed
        after = (c.to_dict(), list(c.evidence), _endpoint_fields(c.orig), _endpoint_fields(c.resp),
                 c.analysis_counts(), c.transitions)
        assert type(c) is Connection and c._packed is None and c._expires is None
        assert after == before, c.uid
        assert all(type(p) is type(q) for p, q in zip(after[1], before[1], strict=True))
        if ws is not None:
            assert (_kept_fields(ws.d0), _kept_fields(ws.d1)) == ws_before
            assert type(ws) is Conversation


def test_packed_connections_hold_no_endpoints() -> None:
    """What packing is for: the endpoint objects and evidence packets are let go."""
    import gc

    from pcapsleuth.tracker import Endpoint

    path = next(p for p in sample_captures() if p.name == "closewait-minefield.pcap")
    conns = [c for c in _analyze(path).connections if c.proto == "tcp"]
    assert conns
    gc.collect()
    live = sum(1 for o in gc.get_objects() if type(o) is Endpoint)
    for c in conns:
        c.compact()
    gc.collect()
    assert sum(1 for o in gc.get_objects() if type(o) is Endpoint) <= live - 2 * len(conns)
    assert all(c.proto == "tcp" for c in conns)  # (the kept attributes are read without unpacking)
    assert sum(1 for o in gc.get_objects() if type(o) is Endpoint) <= live - 2 * len(conns)


def test_linux_syn_options_fast_path_equals_the_general_parser() -> None:
    """``parse_options`` reads Linux's usual 20-byte SYN options with one unpack; the same bytes
    with a trailing NOP take the general loop. Both must agree on every SYN of every capture."""
    from pcapsleuth.tcpopts import parse_options

    seen = 0
    for path in _captures():
        with Capture(path) as cap:
            for p in cap:
                if p.proto == 6 and p.flags is not None and p.flags & 2 and p.options and len(p.options) == 20:
                    fast = parse_options(p.options)
                    assert fast == parse_options(p.options + b"\x01"), (path.name, p.no)
                    assert list(fast) == list(parse_options(p.options + b"\x01")), (path.name, p.no)
                    seen += "ts_val" in fast
    assert seen > 100


def test_packed_numbers_keep_what_does_not_fit() -> None:
    """Retired-tuple digests and finding references pack their numbers; a timestamp beyond 64 bits
    (a mangled capture) is kept as it is, and both read back the same."""
    import struct

    from pcapsleuth.util import pack_ints, unpack_ints

    layout = struct.Struct("<qqB")
    small, huge = (1, -(2**63), 255), (2**70, 5, 1)
    assert isinstance(pack_ints(layout, small), bytes) and unpack_ints(layout, pack_ints(layout, small)) == small
    assert pack_ints(layout, huge) == huge and unpack_ints(layout, pack_ints(layout, huge)) == huge
