"""The detectors give the same findings whatever order finished connections reach them in.

A streaming tracker hands each connection to :class:`pcapsleuth.detectors.Detection` when Zeek's
timers retire it: not in order of first frame, and before its successor on the same 4-tuple exists
(``successor`` is not set yet; only ``predecessor`` and the ``pred_facts`` remembered from it are).
Here every sample and corpus capture is analysed the normal way, then its connections are fed
again in two retirement-like orders with ``successor`` cleared: the findings must be the same,
field for field. The last tests show that the detectors keep no connection, and only a few ints
per connection, over a SYN scan of 100,000 refused 4-tuples.
"""

from __future__ import annotations

import gc
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dpkt
import pytest

from pcapsleuth.analysis import analyze_capture
from pcapsleuth.capture import Capture, CaptureInfo
from pcapsleuth.detectors import Detection, detect, run_detection
from pcapsleuth.errors import PcapsleuthError
from pcapsleuth.packet import Packet
from pcapsleuth.tracker import Connection, Endpoint, Tracker

from . import _build as b
from .conftest import SAMPLES, corpus_root

_SUFFIXES = (".pcap", ".pcapng")


def _captures() -> list[Path]:
    out = sorted(p for p in SAMPLES.rglob("*") if p.is_file() and p.name.endswith(_SUFFIXES))
    root = corpus_root()
    if root.is_dir():
        out += sorted(p for p in root.rglob("*") if p.is_file() and p.name.endswith(_SUFFIXES))
    return out


def _by_last_ts(conns: list[Connection]) -> list[Connection]:
    return sorted(conns, key=lambda c: (-c.last_ts, c.index))


def _shuffled(conns: list[Connection]) -> list[Connection]:
    return random.Random(20240601).sample(conns, len(conns))


def _streamed(conns: list[Connection], info: CaptureInfo, order: list[Connection]) -> list[dict[str, Any]]:
    """Findings from a Detection fed ``order`` as a streaming tracker would: successors unknown."""
    for c in conns:
        c.successor = None
        c.pred_facts = None
    by_uid = {c.uid: c for c in conns}
    for c in sorted(conns, key=lambda c: c.index):  # a predecessor retires before its successor
        if c.predecessor and c.predecessor in by_uid:
            c.pred_facts = Detection.pred_facts(by_uid[c.predecessor])
    return [f.to_dict() for f in run_detection(order, info)]


def test_there_are_captures_to_compare() -> None:
    assert corpus_root().is_dir(), f"corpus missing at {corpus_root()}"
    assert len(_captures()) > 100


@pytest.mark.parametrize("order", [_by_last_ts, _shuffled], ids=["last_ts_desc", "shuffled"])
@pytest.mark.parametrize("path", _captures(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_retirement_order_changes_no_finding(path: Path, order: Callable[[list[Connection]], list[Connection]]) -> None:
    try:
        result = analyze_capture(path)
    except PcapsleuthError as e:
        assert path.name in str(e)  # rejected input: nothing to compare, but it must say which file
        return
    normal = [f.to_dict() for f in result.findings]
    conns = result.connections
    assert _streamed(conns, result.capture, order(conns)) == normal


# -- bounded state ------------------------------------------------------------------------------------

_SCAN_SRC, _SCAN_DST = bytes([10, 9, 0, 2]), bytes([10, 9, 0, 1])


def _refused_scan(path: Path, sports: int, dports: int) -> None:
    """A SYN scan: every SYN (one per 4-tuple) answered by the kernel's RST."""
    recs = []
    t = 1_700_000_000 * 10**9
    for sp in range(40000, 40000 + sports):
        for dp in range(1, dports + 1):
            seq = (sp * 7919 + dp * 104729) & 0xFFFFFFFF
            recs.append((t, b.eth(b.ip4(b.tcp(sp, dp, seq, 0, dpkt.tcp.TH_SYN), src=_SCAN_SRC, dst=_SCAN_DST))))
            recs.append((t + 20_000, b.eth(b.ip4(b.tcp(dp, sp, 0, (seq + 1) & 0xFFFFFFFF,
                                                       dpkt.tcp.TH_RST | dpkt.tcp.TH_ACK),
                                                 src=_SCAN_DST, dst=_SCAN_SRC), src=b.MAC_B, dst=b.MAC_A)))
            t += 50_000
    path.write_bytes(b.pcap(recs))


def _reachable(root: object) -> tuple[int, int, int]:
    """(objects, bytes, connection-related objects) reachable from ``root``'s state: code, modules,
    types and the shared capture description are not state."""
    skip = (type(sys), type, type(_reachable), type(len), type(root.__init__), CaptureInfo)
    seen = {id(root)}
    stack = [root]
    n = size = conn_objects = 0
    while stack:
        obj = stack.pop()
        n += 1
        size += sys.getsizeof(obj)
        if isinstance(obj, (Connection, Endpoint, Packet)):
            conn_objects += 1
        for ref in gc.get_referents(obj):
            if id(ref) not in seen and not isinstance(ref, skip):
                seen.add(id(ref))
                stack.append(ref)
    return n, size, conn_objects


def test_a_scan_of_100000_refused_tuples_keeps_no_connection(tmp_path: Path) -> None:
    path = tmp_path / "scan.pcap"
    _refused_scan(path, sports=2000, dports=50)
    tracker = Tracker()
    with Capture(path) as cap:
        for p in cap:
            tracker.packet(p)
    conns = tracker.finish()
    n = len(conns)
    assert n == 100_000
    conns.reverse()
    d = Detection(cap.info)
    while conns:  # each connection is dropped once handed over, as streaming does
        c = conns.pop()
        c.pred_facts = None
        assert d.add(c) == []  # refusals and scans are judged over many connections
    del c
    objects, size, conn_objects = _reachable(d)
    assert conn_objects == 0
    assert objects < 1000, objects  # per group, never per connection
    assert size < 200 * n, size / n
    found = {f.id: f for f in d.finish()}
    scan = found["scan.port_scan"]
    assert scan.evidence["attempts"] == n and scan.evidence["ports_probed"] == 50
    assert scan.connections == [f"C{i:06d}" for i in range(1, n + 1)]
    assert found["protocol.mss_anomaly"].evidence["syns"] == n


def test_refused_groups_are_complete() -> None:
    """Every refused attempt is counted in its destination's group, in first-frame order."""
    path = next(p for p in _captures() if p.name == "portscan.pcap")
    result = analyze_capture(path)
    conns = result.connections
    d = Detection(result.capture)
    for c in _by_last_ts(conns):
        d.add(c)
    refused = [f for f in d.finish() if f.id == "handshake.refused"]
    assert refused
    for f in refused:
        assert f.connections == sorted(f.connections)
        dest = f.evidence["destination"]
        want = [c.uid for c in conns if f"{c.resp.addr}:{c.resp.port}" == dest and c.uid in f.connections]
        assert len(want) == f.evidence["refused"] == len(f.connections)


def test_syn_flood_counts_each_source_tuple_once_across_generations(tmp_path: Path) -> None:
    """A source retrying with a new ISN is a new connection on the same 4-tuple (its predecessor's
    successor): the flood's distinct sources come from the connections, not from the stream state."""
    recs = []
    t = 1_700_000_000 * 10**9
    for k in range(60):
        src = bytes([10, 8, k // 200, 1 + k % 200])
        for gen in range(1 + k % 3):  # 1 to 3 generations per tuple: new ISN after the attempt timer
            ts = t + k * 1_000_000 + gen * 6 * 10**9
            recs.append((ts, b.eth(b.ip4(b.tcp(30000 + k, 443, 1000 + gen * 50000, 0, dpkt.tcp.TH_SYN), src=src,
                                         dst=_SCAN_DST))))
    recs.sort(key=lambda r: r[0])
    path = tmp_path / "flood.pcap"
    path.write_bytes(b.pcap(recs))
    result = analyze_capture(path)
    conns = result.connections
    assert any(c.predecessor for c in conns)
    flood = [f for f in result.findings if f.id == "scan.syn_flood"]
    assert len(flood) == 1
    tuples = {(c.orig.addr, c.orig.port) for c in conns}
    assert flood[0].evidence["source_tuples"] == len(tuples) == 60
    assert flood[0].evidence["attempts"] == len(conns) > 60
    for order in (_by_last_ts, _shuffled):
        assert _streamed(conns, result.capture, order(conns)) == [f.to_dict() for f in result.findings]
    assert [f.to_dict() for f in detect(conns, result.capture)] == [f.to_dict() for f in result.findings]


def test_pred_facts_stay_small() -> None:
    """What a tracker keeps per recently retired tuple: nothing for UDP, a shared int for a refusal."""
    path = next(p for p in _captures() if p.name == "portscan.pcap")
    result = analyze_capture(path)
    facts = [Detection.pred_facts(c) for c in result.connections if c.proto == "tcp"]
    assert facts and all(isinstance(f, int) for f in facts)
    assert len({id(f) for f in facts}) <= 16  # a handful of shared values, not one object per tuple
