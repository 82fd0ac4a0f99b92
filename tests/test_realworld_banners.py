"""Issue 20 section 2, "Nothing left out silently".

Every frame not analyzed is counted, with the reason and what changes it, on the terminal, in the
Markdown and at the top of the report; the verdict never says "no problems found" about what could
not be judged. Real captures only: ``samples/realworld`` (truth in ``*.facts.json``),
``samples/basic/snaplen-cut.pcap``, ``samples/incidents`` and the Zeek corpus; tshark counts the
frames independently.
"""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path
from typing import Any

from pcapsleuth import cli

from .conftest import REPO

RW = REPO / "samples" / "realworld"
ZEEK = REPO.parent / "shared" / "corpus" / "zeek"


def _run(path: Path, tmp: Path, *flags: str) -> tuple[str, str, str, dict[str, Any]]:
    """(terminal, Markdown, HTML report, JSON) of ``pcapsleuth analyze``."""
    out, err = io.StringIO(), io.StringIO()
    md, html, js = tmp / "s.md", tmp / "r.html", tmp / "a.json"
    code = cli.main(["analyze", str(path), "--no-progress", "--markdown", str(md), "--html", str(html),
                     "--json", str(js), *flags], stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    return out.getvalue(), md.read_text(), html.read_text(), json.loads(js.read_text())


def _tshark_count(path: Path, filt: str) -> int:
    out = subprocess.run(["tshark", "-r", str(path), "-Y", filt, "-T", "fields", "-e", "frame.number"],
                         capture_output=True, text=True, check=True).stdout
    return len(out.split())


def _verdict_severity(html: str) -> str:
    at = html.index('id="verdict"')
    return html[at:].split('data-verdict-severity="', 1)[1].split('"', 1)[0]


def _top(html: str) -> str:
    """The report down to the end of its capture section: what a reader sees first."""
    return html[: html.index('<section id="capture"')] + html[html.index('<section id="capture"'):].split(
        "</section>", 1)[0]


def test_no_ip_traffic_is_not_no_problems(tmp_path: Path) -> None:
    path = RW / "no-ip.pcap"
    facts = json.loads((RW / "no-ip.facts.json").read_text())
    assert "arping" in facts["scenario"]
    n = _tshark_count(path, "arp")
    assert n == 10 and _tshark_count(path, "ip or ipv6") == 0
    term, md, html, doc = _run(path, tmp_path)
    assert doc["capture"]["not_analyzed"] == [
        {"reason": "not_ip", "frames": n, "what": "not IP (ARP, LLDP, STP, ...), not tracked", "change": None}]
    assert "verdict: No IP traffic: nothing could be judged" in term
    assert f"not analyzed {n} frames not IP" in term
    assert md.startswith("### pcapsleuth: No IP traffic") and "no problems found" not in md.lower()
    assert _verdict_severity(html) != "ok" and "No problems found" not in html
    assert f"{n} frames not IP" in _top(html)


def test_one_direction_only_is_not_no_problems(tmp_path: Path) -> None:
    path = RW / "one-direction.pcap"
    facts = json.loads((RW / "one-direction.facts.json").read_text())
    assert "-Q out" in facts["capture_point"]
    client = "10.204.1.1"
    assert _tshark_count(path, f"ip.src=={client}") == _tshark_count(path, "ip") == 18  # one sender only
    term, md, html, doc = _run(path, tmp_path)
    assert doc["capture"]["one_direction"] == {"tcp_connections": 1, "talking_to_unseen_peer": 1}
    assert "verdict: Only one direction of the traffic was captured" in term
    assert md.startswith("### pcapsleuth: Only one direction") and "no problems found" not in md.lower()
    assert _verdict_severity(html) != "ok" and "No problems found" not in html


def test_udp_only_capture_says_nothing_was_judged(tmp_path: Path) -> None:
    path = ZEEK / "pcapng-multi-interface" / "trace.pcapng"
    n = _tshark_count(path, "udp")
    assert n == _tshark_count(path, "frame") == 6 and _tshark_count(path, "tcp") == 0
    term, md, html, doc = _run(path, tmp_path)
    assert [(r["reason"], r["frames"]) for r in doc["capture"]["not_analyzed"]] == [("udp", n)]
    assert "verdict: No TCP traffic: nothing could be judged" in term and f"{n} UDP" in term
    assert md.startswith("### pcapsleuth: No TCP traffic")
    assert _verdict_severity(html) != "ok"


def test_a_few_untracked_frames_keep_the_clean_verdict_and_are_counted(tmp_path: Path) -> None:
    """An expert's wording: no problems in the TCP connections, the rest counted and named."""
    path = REPO / "samples" / "basic" / "snaplen-cut.pcap"
    n = _tshark_count(path, "not ip and not ipv6")
    assert n == 2
    term, md, html, doc = _run(path, tmp_path)
    assert ("not_ip", n) in [(r["reason"], r.get("frames")) for r in doc["capture"]["not_analyzed"]]
    assert f"verdict: No problems found in the 1 TCP connection; {n} frames not analyzed" in term
    assert md.startswith("### pcapsleuth: no problems found") and f"{n} frames not analyzed" in md
    assert _verdict_severity(html) == "ok" and f"{n} frames not analyzed" in _top(html)


def test_snaplen_cut_payload_is_sent_not_a_gap(tmp_path: Path) -> None:
    path = REPO / "samples" / "basic" / "snaplen-cut.pcap"
    n = _tshark_count(path, "frame.cap_len < frame.len")
    assert n == 8
    term, md, html, doc = _run(path, tmp_path)
    (row,) = [r for r in doc["capture"]["not_analyzed"] if r["reason"] == "snaplen_cut_payload"]
    assert row["frames"] == n and "sent but not captured" in row["what"] and "not a gap" in row["what"]
    assert "tcpdump -s 0" in row["change"]
    for text in (term, md, _top(html)):
        assert f"{n} frames with their payload cut by the snapshot length: the bytes were sent but not captured" \
            in text
        assert "not a gap in the connection" in text
    assert not any("not captured" in f["summary"] or "lost" in f["summary"] for f in doc["findings"])


def test_frames_left_out_for_a_checksum_are_counted_with_the_flag(tmp_path: Path) -> None:
    path = RW / "corrupt-dropped-server.pcap"
    term, md, html, doc = _run(path, tmp_path)
    (row,) = [r for r in doc["capture"]["not_analyzed"] if r["reason"] == "checksum"]
    assert row["frames"] == 1 and "--no-checksums" in row["change"]
    line = "1 frames left out of connection state for a wrong checksum"
    assert f"not analyzed {line}" in term and line in md and line in _top(html)
    assert "--no-checksums" in term.split(line, 1)[1].splitlines()[0]


def test_evicted_connections_are_counted_with_the_flag(tmp_path: Path) -> None:
    path = REPO / "samples" / "incidents" / "accept-queue-full.pcap"  # 20 connections, several open at once
    term, md, html, doc = _run(path, tmp_path, "--max-connections", "1")
    (row,) = [r for r in doc["capture"]["not_analyzed"] if r["reason"] == "evicted"]
    assert row["connections"] == doc["tracking"]["evicted"] > 0 and row["change"] == "--max-connections"
    assert "--max-connections" in term and "finished early" in term and "finished early" in md
