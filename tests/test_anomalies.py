"""The anomaly catalogue on real captures: every sample yields its expected findings, with counts
checked against what the recording saw (``samples/anomalies/*.facts.json``: iptables counters,
TCP_INFO, nstat) and against the other side's capture."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from pcapsleuth.analysis import analyze_capture
from pcapsleuth.findings import SEVERITIES, catalog

from .conftest import REPO

ANOM = REPO / "samples" / "anomalies"


@cache
def _doc(name: str) -> dict[str, Any]:
    return analyze_capture(ANOM / name).to_json_dict()


def _facts(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ANOM / name).read_text())
    return data


def _one(doc: dict[str, Any], fid: str, **match: Any) -> dict[str, Any]:
    found = [f for f in doc["findings"] if f["id"] == fid
             and all(f["evidence"].get(k) == v for k, v in match.items())]
    assert len(found) == 1, (fid, match, [(f["id"], f["summary"]) for f in doc["findings"]])
    return found[0]


def _data_segments(path: Path, src: str) -> Counter[tuple[int, int]]:
    """(raw seq, length) of every data segment sent by ``src``, counted, read by tshark (the oracle)."""
    out = subprocess.run(["tshark", "-r", str(path), "-Y", f"ip.src=={src} && tcp.len>0", "-T", "fields",
                          "-e", "tcp.seq_raw", "-e", "tcp.len"], capture_output=True, text=True, check=True).stdout
    return Counter((int(a), int(b)) for a, b in (line.split("\t") for line in out.splitlines()))


def test_lossy_retransmissions_counted_exactly(tshark: str) -> None:
    facts = _facts("lossy.facts.json")
    client = facts["four_tuple"]["src"]
    sent = _data_segments(ANOM / "lossy-client.pcap", client)
    arrived = _data_segments(ANOM / "lossy-server.pcap", client)
    # Copies the client side saw that never arrived at the server side are the router's drops.
    missing = sum((sent - arrived).values())
    assert missing > 0 and sum((arrived - sent).values()) == 0
    assert missing == facts["dropped"] == facts["sender_total_retrans"] == facts["iptables"]["drop_rule_packets"]

    before = _one(_doc("lossy-client.pcap"), "data.retransmission")
    after = _one(_doc("lossy-server.pcap"), "data.retransmission")
    assert before["evidence"]["retransmissions"] == missing
    assert after["evidence"]["retransmissions"] == missing
    # The client-side capture is upstream of the router: the originals were captured, lost after it.
    assert before["evidence"]["lost_after_capture_point"] == missing
    assert before["evidence"]["lost_before_capture_point"] == 0
    # The server-side capture is downstream: every original is a hole, filled by the retransmission.
    assert after["evidence"]["lost_before_capture_point"] == missing
    assert after["evidence"]["lost_after_capture_point"] == 0
    holes = _one(_doc("lossy-server.pcap"), "data.lost_segment")
    assert holes["evidence"]["holes"] == holes["evidence"]["filled_by_retransmission"] == missing
    assert before["severity"] == "warning"  # 2.5 % of the segments
    assert before["evidence"]["fast"] + before["evidence"]["early"] + before["evidence"]["timeouts"] == missing


def test_stalled_reader_zero_window_and_linux_probes() -> None:
    facts = _facts("stalled-reader.facts.json")
    f = _one(_doc("stalled-reader.pcap"), "data.zero_window")
    ev = f["evidence"]
    assert ev["reader"].startswith("10.203.3.2:")  # the server stopped reading
    assert ev["probes"] == facts["zero_window_probes"] == facts["nstat_TcpExtTCPWinProbe_delta"]
    assert ev["linux_style_probes"] == ev["probes"]  # Wireshark would call these keep-alives
    assert ev["zero_window_segments"] == facts["zero_window_segments"]
    assert abs(ev["stalled_s"] - facts["stall_seconds"]) < 0.5
    assert ev["still_closed_at_end"] is False
    ids = {x["id"] for x in _doc("stalled-reader.pcap")["findings"]}
    assert "data.keep_alive" not in ids  # the probes are not mistaken for keep-alives
    assert "data.window_full" not in ids  # suppressed: the zero window explains it


def test_reset_with_unread_data() -> None:
    facts = _facts("reset-unread.facts.json")
    assert facts["server_unread_bytes_at_close"] > 0
    f = _one(_doc("reset-unread.pcap"), "reset.abort")
    assert f["evidence"]["reset_by"].startswith("10.203.3.2:")
    assert f["evidence"]["unread_data_likely"] is True
    assert f["evidence"]["phase"] == "mid-stream"
    assert f["evidence"]["orig_bytes"] == 20000
    assert "unread" in f["summary"]


def test_reset_linger_zero() -> None:
    f = _one(_doc("reset-linger0.pcap"), "reset.abort")
    assert f["evidence"]["unread_data_likely"] is False
    assert f["evidence"]["reset_by"].startswith("10.203.3.2:")
    assert f["evidence"]["resetter_sent_fin"] is False
    assert f["severity"] == "warning"


def test_keep_alive() -> None:
    facts = _facts("keepalive.facts.json")
    f = _one(_doc("keepalive.pcap"), "data.keep_alive")
    assert f["evidence"]["probes"] == facts["keepalive_probes"]
    assert f["evidence"]["answered"] == facts["keepalive_probes"]
    assert f["severity"] == "info"


def test_port_scan() -> None:
    facts = _facts("portscan.facts.json")
    doc = _doc("portscan.pcap")
    f = _one(doc, "scan.port_scan")
    assert f["evidence"]["ports_probed"] == facts["ports_probed"]
    assert len(f["evidence"]["open_ports"]) == facts["ports_probed"] - facts["refused_ports"]
    assert "handshake.refused" not in {x["id"] for x in doc["findings"]}  # the scan explains the refusals


def test_syn_flood() -> None:
    facts = _facts("synflood.facts.json")
    f = _one(_doc("synflood.pcap"), "scan.syn_flood")
    assert f["evidence"]["attempts"] == facts["syn_count"]
    assert f["evidence"]["incomplete"] == facts["syn_count"]
    assert f["severity"] == "error"


def test_simultaneous_open() -> None:
    assert _facts("simultaneous-open.facts.json")["simultaneous_open_observed"] is True
    _one(_doc("simultaneous-open.pcap"), "protocol.simultaneous_open")


@pytest.mark.parametrize("name", ["timewait-reuse", "timewait-reuse-nots"])
def test_syn_to_time_wait(name: str) -> None:
    facts = _facts(f"{name}.facts.json")
    f = _one(_doc(f"{name}.pcap"), "protocol.syn_in_time_wait")
    assert f["evidence"]["isn_lower"] is (facts["new_isn_vs_old"] == "lower")
    assert f["evidence"]["accepted"] is (facts["server_answer_to_new_syn"] == "SYN,ACK")
    if not f["evidence"]["accepted"]:
        assert f["evidence"]["retry_connected"] is (facts["second_connect"] == "OK")


def test_no_flood_of_findings_per_connection() -> None:
    """Aggregation: at most one finding per connection and id, on every sample."""
    for path in sorted(ANOM.glob("*.pcap")):
        doc = _doc(path.name)
        seen: set[tuple[str, str, str]] = set()
        for f in doc["findings"]:
            if len(f["connections"]) != 1:
                continue
            key = (f["id"], f["connections"][0], str(f["evidence"].get("sender") or f["evidence"].get("reader")
                                                     or f["evidence"].get("receiver") or ""))
            assert key not in seen, (path.name, key)
            seen.add(key)
            assert len(f["frames"]) <= 40


def test_catalog_is_complete_and_well_formed() -> None:
    cat = catalog()
    for required in ("data.retransmission", "data.zero_window", "reset.abort"):
        assert required in cat
    for fid, entry in cat.items():
        assert fid.count(".") == 1 and fid == fid.lower()
        assert entry["severity"] in SEVERITIES
        assert entry["title"] and len(entry["description"]) > 40
        for victim in entry["suppresses"]:
            assert victim in cat, (fid, victim)


def test_reset_storm_raises_no_false_alarm_on_the_public_corpora() -> None:
    """The per-tuple reset storm (Zeek's RST_storm, notice) and the unanswered SYN whose answers
    all had bad checksums, reviewed where they would fire: every sample and every capture of the
    Zeek and tcpdump corpora (830 of them CVE reproducers and odd link types). Neither fires on
    any: a capture whose answers are merely offloaded or that has a corrupted segment among good
    ones is not such a case."""
    from pcapsleuth.errors import PcapsleuthError

    from .conftest import corpus_root

    exts = (".pcap", ".pcapng", ".cap")
    paths = sorted(p for p in REPO.joinpath("samples").rglob("*") if p.name.endswith(exts))
    paths += sorted(p for p in corpus_root().rglob("*") if p.is_file() and p.name.endswith(exts))
    assert len(paths) > 900
    fired = []
    for path in paths:
        try:
            doc = analyze_capture(path)
        except PcapsleuthError:
            continue
        fired += [(path.name, f.id) for f in doc.findings if f.id == "reset.storm"
                  or (f.id == "handshake.unanswered_syn" and f.evidence["cause"] == "bad_checksum")]
    assert fired == []
