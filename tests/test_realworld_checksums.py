"""Issue 20 section 1, "Checksums as real captures have them".

Every test runs on a real capture: ``samples/realworld`` (recorded on Linux 6.18 in network
namespaces, the truth in ``*.facts.json``; three captures there are real captures edited by a
committed script, which their facts say), or a trace of the public Zeek corpus that the issue names.
tshark, with checksum validation on, is the independent oracle for which frames are bad.
"""

from __future__ import annotations

import io
import json
import subprocess
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from pcapsleuth import cli
from pcapsleuth.analysis import analyze_capture

from .conftest import REPO

RW = REPO / "samples" / "realworld"
ZEEK = REPO.parent / "shared" / "corpus" / "zeek"
#: The corpus traces of issue 20 whose senders' IPv4 header checksums are 0 or wrong on every frame.
CORPUS = ("tcp__retransmit-fast009", "tls__pop3-starttls", "mixed-vlan-mpls", "mpls-in-vlan")


@cache
def _doc(path: Path, strict: bool = False) -> dict[str, Any]:
    return analyze_capture(path, strict_checksums=strict).to_json_dict()


def _facts(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RW / f"{name}.facts.json").read_text())
    return data


def _cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(args), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def _terminal(path: Path, *flags: str) -> str:
    code, out, err = _cli("analyze", str(path), "--no-html", "--no-progress", *flags)
    assert code == 0, err
    return out


def _notice_or_above(doc: dict[str, Any]) -> list[str]:
    return [f["id"] for f in doc["findings"] if f["severity"] in ("notice", "warning", "error")]


def _tshark_bad(path: Path) -> Counter[tuple[str, str]]:
    """(source address, which checksum) of every TCP frame tshark finds bad with validation on."""
    out = subprocess.run(["tshark", "-r", str(path), "-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE",
                          "-Y", "tcp", "-T", "fields", "-e", "ip.src", "-e", "ip.checksum.status",
                          "-e", "tcp.checksum.status"], capture_output=True, text=True, check=True).stdout
    bad: Counter[tuple[str, str]] = Counter()
    for line in out.splitlines():
        src, ip, tcp = (line.split("\t") + ["", ""])[:3]
        src = src.split(",")[-1]  # the innermost header of a tunnelled frame
        if ip.split(",")[-1] == "0":
            bad[(src, "ip")] += 1
        if tcp == "0":
            bad[(src, "tcp")] += 1
    return bad


# -- offload on the capturing host: analyzed, stated once as a fact ------------------------------

def test_partial_checksums_are_a_fact_of_the_capture() -> None:
    facts = _facts("offload-partial")
    doc = _doc(RW / "offload-partial.pcap")
    host, n = facts["capturing_host"], facts["client_frames_partial_checksum"]
    assert doc["capture"]["checksums"] == [{"host": host, "kind": "offload_partial", "frames": n, "analyzed": True}]
    assert _tshark_bad(RW / "offload-partial.pcap") == Counter({(host, "tcp"): n})
    assert _notice_or_above(doc) == []
    assert f"checksum offload on {host}, the capturing host: {n} frames" in _terminal(RW / "offload-partial.pcap")


def test_ipv4_header_checksum_zero_is_offload_not_a_drop() -> None:
    """Before: the 36 client frames were dropped, the SYN with them: 'A SYN-ACK arrived for a SYN never seen'."""
    facts = _facts("offload-ipv4-zero")
    host = facts["capturing_host"]
    path = RW / "offload-ipv4-zero.pcap"
    doc = _doc(path)
    n = _tshark_bad(path)[(host, "ip")]
    assert n == 36
    assert doc["capture"]["checksums"] == [{"host": host, "kind": "offload_ipv4_zero", "frames": n, "analyzed": True}]
    assert doc["tracking"]["bad_ip_checksums"] == 0
    (conn,) = doc["connections"]
    assert conn["conn_state"] == "SF" and conn["orig_pkts"] + conn["resp_pkts"] == doc["capture"]["frames"] == 73
    assert conn["orig_h"] == host and conn["history"].startswith("ShAD")
    assert _notice_or_above(doc) == []
    text = _terminal(path)
    assert f"checksum offload on {host}, the capturing host: {n} frames with IPv4 header checksum 0" in text
    assert "findings: none" in text and "No problems found in the 1 TCP connection" in text


def test_stale_checksums_of_a_rewritten_capture_are_analyzed() -> None:
    """Before: every frame dropped, 'connections 0', Markdown 'no problems found'."""
    path = RW / "rewritten.pcap"
    doc = _doc(path)
    bad = _tshark_bad(path)
    hosts = {src for src, _ in bad}
    assert len(hosts) == 2 and sum(bad[(h, "ip")] for h in hosts) == 73  # every frame, both senders
    assert {(r["host"], r["kind"], r["frames"], r["analyzed"]) for r in doc["capture"]["checksums"]} == \
        {(h, "stale", bad[(h, "ip")], True) for h in hosts}
    (conn,) = doc["connections"]
    source = _doc(RW / "clean-http.pcap")["connections"][0]  # the capture it was derived from
    for key in ("conn_state", "history", "orig_pkts", "resp_pkts", "orig_bytes", "resp_bytes"):
        assert conn[key] == source[key], key
    assert doc["findings"] == []
    assert "stale checksums on most frames of" in _terminal(path)


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_traces_with_checksums_left_for_the_nic(name: str) -> None:
    """The TCP frames are analyzed as tshark analyzes them, the checksum fact names each sender, and
    --strict-checksums keeps Zeek's behaviour (those frames left out). Left out by default: only a
    sender's first wrong checksum whose fate the capture does not show (mpls-in-vlan: three
    one-frame connections of one host; the 2nd and 3rd make its checksums the capture's)."""
    path = ZEEK / name / "trace.pcap"
    doc = _doc(path)
    bad = _tshark_bad(path)
    ip_bad = {src: n for (src, kind), n in bad.items() if kind == "ip"}
    assert ip_bad
    left = {r["host"]: r["frames"] for r in doc["capture"]["checksums"] if r["kind"] == "left_out"}
    facts = {r["host"]: r["frames"] for r in doc["capture"]["checksums"] if r["analyzed"]}
    assert {h: facts.get(h, 0) + left.get(h, 0) for h in ip_bad} == ip_bad and set(facts) == set(ip_bad)
    assert all(n == 1 for n in left.values()) and sum(left.values()) <= 1
    tcp_frames = sum(c["orig_pkts"] + c["resp_pkts"] for c in doc["connections"] if c["proto"] == "tcp")
    assert tcp_frames + sum(left.values()) == doc["tracking"]["tcp_packets"]
    assert doc["tracking"]["bad_ip_checksums"] == 0
    strict = _doc(path, strict=True)
    assert strict["tracking"]["bad_ip_checksums"] == sum(ip_bad.values())
    assert all(not r["analyzed"] for r in strict["capture"]["checksums"])


# -- corruption: judged by what the receiver did next ---------------------------------------------

def _bad_checksum(doc: dict[str, Any]) -> dict[str, Any]:
    (f,) = [f for f in doc["findings"] if f["id"] == "capture.bad_checksum"]
    return f


def test_a_corrupted_segment_the_receiver_acked_was_accepted() -> None:
    """Before: a warning saying 'A receiver drops a segment whose checksum is wrong'."""
    facts = _facts("corrupt-accepted")
    assert facts["receiver_accepted_corrupt_segment"] and facts["retransmissions"] == 0
    bad_frame, ack_frame = facts["derivation"]["frame"], facts["derivation"]["first_ack_covering_it_frame"]
    f = _bad_checksum(_doc(RW / "corrupt-accepted.pcap"))
    assert f["severity"] == "notice"
    assert f["evidence"]["accepted_by_receiver"] == 1 and f["evidence"]["discarded_and_resent"] == 0
    assert f["evidence"]["examples"][0]["frame"] == bad_frame
    assert f["evidence"]["examples"][0]["by_frame"] == ack_frame
    assert "accepted" in f["summary"] and "capture side" in f["summary"]
    assert "drop" not in f["summary"] + f["explanation"].split(".")[0]


def test_a_corrupted_segment_that_was_resent_was_discarded() -> None:
    facts = _facts("corrupt-dropped")
    assert facts["receiver_TcpInCsumErrors_delta"] == 1
    f = _bad_checksum(_doc(RW / "corrupt-dropped-server.pcap"))
    assert f["severity"] == "warning"
    assert f["evidence"]["discarded_and_resent"] == 1 and f["evidence"]["accepted_by_receiver"] == 0
    ex = f["evidence"]["examples"][0]
    (truth,) = facts["corrupt_check"]["segments"]  # rwcheck.py's independent reading of the capture
    assert not truth["acked_before_any_resend"]
    assert (ex["frame"], ex["by_frame"]) == (truth["frame"], truth["resent_frame"])
    assert ex["after_s"] == pytest.approx(truth["resent_after_s"], abs=1e-6)  # the tail loss probe
    assert "discarded" in f["summary"] and "accepted" not in f["summary"]


# -- the flags ---------------------------------------------------------------------------------------

def test_strict_checksums_is_zeeks_behaviour_on_the_command_line(tmp_path: Path) -> None:
    path = RW / "offload-ipv4-zero.pcap"
    out = tmp_path / "strict.json"
    code, _, err = _cli("analyze", str(path), "--strict-checksums", "--json", str(out), "--no-html", "--no-progress")
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert doc["tracking"]["bad_ip_checksums"] == 36  # as Zeek without -C: the client's frames left out
    code, log, err = _cli("conn", str(path), "--strict-checksums", "--no-progress")
    assert code == 0, err
    code, log_default, err = _cli("conn", str(path), "--no-progress")
    assert code == 0, err
    rows = [line.split("\t") for line in log.splitlines() if not line.startswith("#")]
    rows_default = [line.split("\t") for line in log_default.splitlines() if not line.startswith("#")]
    assert [r[11] for r in rows_default] == ["SF"] and [r[11] for r in rows] == ["SHR"]
    code, _, err = _cli("analyze", str(path), "--strict-checksums", "--no-checksums", "--no-html")
    assert code == 2 and "not allowed with" in err


@pytest.mark.parametrize("command", ["analyze", "conn"])
def test_help_says_which_checksums_each_flag_covers(command: str) -> None:
    code, text, _ = _cli(command, "--help")
    assert code == 0
    flat = " ".join(text.split())
    # the default
    assert "By default the IPv4 header, TCP and UDP checksums are verified" in flat
    assert "IPv4 header checksum 0x0000" in flat and "only the pseudo-header sum" in flat
    assert "wrong on most frames of one sender" in flat
    # --no-checksums
    assert "--no-checksums verify no checksum at all (IPv4 header, TCP, UDP)" in flat
    # --strict-checksums
    assert "--strict-checksums Zeek's behaviour without -C" in flat
    assert "IPv4 header checksum or TCP checksum is not valid" in flat


def test_a_copy_stamped_before_its_original_is_no_proof_of_a_discard(tshark: str) -> None:
    """tcpdump/of10_inv_OFPST_FLOW (fuzzed): frame 2 repeats frame 1's sequence number with a
    timestamp before frame 1's, both with wrong TCP checksums (our decoder). A "resend" earlier in time than its
    original shows no discard (was: "sent again (-1381533734993065 µs later): the receiver
    discarded them", warning)."""
    path = ZEEK.parent / "tcpdump" / "of10_inv_OFPST_FLOW.pcap"
    cmd = [tshark, "-n", "-r", str(path), "-T", "fields", "-e", "frame.number", "-e", "frame.time_epoch",
           "-e", "tcp.seq_raw"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rows = [ln.split("\t") for ln in out.splitlines()]
    assert rows[1][2] == rows[0][2] and float(rows[1][1]) < float(rows[0][1])
    doc = analyze_capture(path).to_json_dict()
    for f in doc["findings"]:
        assert "discarded" not in f["summary"] and "µs later" not in f["summary"], f["summary"]
        assert not (f["id"] == "capture.bad_checksum" and f["severity"] == "warning"), f["summary"]
