"""The two incidents, on real captures recorded from real kernels (samples/incidents/record.sh).

Each test checks the story against facts that do not come from pcapsleuth: what the kernels and
the client programs reported while recording (``*.connect.txt``, ``*.ss.txt``, ``minefield.txt``)
and what tshark decodes from the evidence frames.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pcapsleuth.analysis import analyze_capture
from pcapsleuth.findings import SEVERITIES

from .conftest import SAMPLES, corpus_root

INC = SAMPLES / "incidents"


def _analyze(name: str) -> dict[str, Any]:
    return analyze_capture(INC / name).to_json_dict()


def _ids(doc: dict[str, Any], min_sev: str = "info") -> list[str]:
    floor = SEVERITIES.index(min_sev)
    return sorted(f["id"] for f in doc["findings"] if SEVERITIES.index(f["severity"]) >= floor)


def _tshark_frames(tshark: str, path: Path, frames: list[int], fields: list[str]) -> dict[int, list[str]]:
    flt = " || ".join(f"frame.number == {n}" for n in frames)
    cmd = [tshark, "-r", str(path), "-Y", flt, "-T", "fields", "-e", "frame.number"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rows = {}
    for line in out.splitlines():
        cols = line.split("\t")
        rows[int(cols[0])] = cols[1:]
    return rows


def test_finding_contract_fields() -> None:
    doc = _analyze("lb-client.pcap")
    assert set(doc) == {"capture", "tracking", "connections", "findings"}
    for f in doc["findings"]:
        assert set(f) >= {"id", "severity", "title", "summary", "explanation", "connections", "frames",
                          "first_ts", "last_ts", "evidence"}
        assert re.fullmatch(r"[a-z]+\.[a-z_]+", f["id"])
        assert f["severity"] in SEVERITIES
        assert f["frames"] and all(isinstance(n, int) and n >= 1 for n in f["frames"])
        assert f["connections"]


def test_load_balancer_client_view(tshark: str) -> None:
    doc = _analyze("lb-client.pcap")
    assert _ids(doc, "warning") == ["handshake.conflicting_replies"]
    (f,) = doc["findings"]
    ev = f["evidence"]
    assert f["severity"] == "error"
    assert ev["two_machines"] is True
    assert "src_mac" in ev["differing_attributes"]
    # The client program saw every attempt refused; each one is in the finding.
    refused = (INC / "lb-client.connect.txt").read_text().count("ECONNREFUSED")
    assert refused >= 1 and ev["attempts_affected"] == refused
    # tshark agrees on what the evidence frames are: a RST and a SYN-ACK from the VIP, different MACs.
    rst, synack = ev["rst"]["frame"], ev["syn_ack"]["frame"]
    rows = _tshark_frames(tshark, INC / "lb-client.pcap", [rst, synack], ["tcp.flags.reset", "tcp.flags.syn",
                                                                          "eth.src", "ip.src"])
    assert rows[rst][0] in ("1", "True") and rows[synack][1] in ("1", "True")
    assert rows[rst][2] != rows[synack][2]
    assert rows[rst][3] == rows[synack][3] == doc["connections"][0]["resp_h"]
    assert "NFQUEUE" in f["explanation"] and "refused" in f["explanation"]


def test_load_balancer_backend_view() -> None:
    doc = _analyze("lb-backend.pcap")
    assert _ids(doc, "warning") == ["handshake.conflicting_replies"]
    (f,) = doc["findings"]
    assert f["evidence"]["view"] == "responder"
    assert f["severity"] == "warning"  # only inferred from this side
    assert not _ids(doc, "error")


@pytest.mark.parametrize("name", ["lb-fixed-client.pcap", "lb-fixed-backend.pcap", "clean.pcap"])
def test_controls_stay_quiet(name: str) -> None:
    doc = _analyze(name)
    assert _ids(doc, "warning") == []
    assert all(c["conn_state"] == "SF" for c in doc["connections"] if c["proto"] == "tcp")


def test_fixed_balancer_client_sees_direct_server_return() -> None:
    """Asymmetric MACs are the normal signature of direct server return, not a finding."""
    doc = _analyze("lb-fixed-client.pcap")
    c = doc["connections"][0]
    assert c["orig_l2_addr"] != c["resp_l2_addr"]
    assert doc["findings"] == [] or _ids(doc, "warning") == []


def _ss_states(path: Path, section: str) -> dict[str, str]:
    """``ss -tan`` rows of one section of closewait-reuse.ss.txt: local endpoint -> state."""
    text = path.read_text()
    block = text.split(f"## {section}:", 1)[1].split("##", 1)[0]
    out = {}
    for line in block.splitlines():
        cols = line.split()
        if len(cols) >= 5 and cols[0] in ("FIN-WAIT-2", "CLOSE-WAIT", "ESTAB", "TIME-WAIT", "LAST-ACK"):
            out[cols[3]] = cols[0]
    return out


def test_closewait_final_states_match_the_kernel() -> None:
    """ss on the recording host said FIN-WAIT-2 (client) and CLOSE-WAIT (server); so must we."""
    kernel = _ss_states(INC / "closewait-reuse.ss.txt", "A")
    doc = _analyze("closewait-reuse.pcap")
    first = doc["connections"][0]
    client = f"{first['orig_h']}:{first['orig_p']}"
    server = f"{first['resp_h']}:{first['resp_p']}"
    assert kernel[client] == "FIN-WAIT-2" and kernel[server] == "CLOSE-WAIT"
    assert first["orig_tcp_state"] == "FIN-WAIT-2"
    assert first["resp_tcp_state"] == "CLOSE-WAIT"
    assert first["conn_state"] == "S2"


def test_closewait_reuse_current_kernel(tshark: str) -> None:
    doc = _analyze("closewait-reuse.pcap")
    assert _ids(doc, "warning") == ["close.close_wait_leak", "reuse.peer_in_close_wait"]
    f = next(x for x in doc["findings"] if x["id"] == "reuse.peer_in_close_wait")
    ev = f["evidence"]
    assert f["severity"] == "error"
    assert ev["outcome"] == "recovered"
    assert ev["challenge_matches_old_connection"] is True
    assert ev["half_closed_seconds"] > 3.0  # tcp_fin_timeout was 3 s in the recording namespace
    assert ev["delay_seconds"] is not None and ev["delay_seconds"] > 0
    for k in ("predecessor_fin_frame", "predecessor_fin_ack_frame", "challenge_ack_frame", "rst_frame",
              "retry_syn_frame", "retry_syn_ack_frame"):
        assert ev[k] in f["frames"], k
    # tshark: the predecessor's FIN, the challenge ACK acknowledging exactly that FIN, then the client's RST.
    fin, chal, rst = ev["predecessor_fin_frame"], ev["challenge_ack_frame"], ev["rst_frame"]
    rows = _tshark_frames(tshark, INC / "closewait-reuse.pcap", [fin, chal, rst],
                          ["tcp.flags.fin", "tcp.flags.syn", "tcp.flags.reset", "tcp.seq_raw", "tcp.ack_raw",
                           "tcp.len", "tcp.srcport"])
    fin_seq, fin_len = int(rows[fin][3]), int(rows[fin][5])
    assert rows[fin][0] in ("1", "True")
    assert int(rows[chal][4]) == (fin_seq + fin_len + 1) & 0xFFFFFFFF
    assert rows[chal][1] in ("0", "False") and rows[chal][2] in ("0", "False")
    assert rows[rst][2] in ("1", "True") and int(rows[rst][3]) == int(rows[chal][4])
    # The client program's second connect() on the same source port succeeded.
    assert "attempt=2" in (INC / "closewait-reuse.ss.txt").read_text()


def test_closewait_reuse_older_kernel() -> None:
    doc = _analyze("closewait-reuse-oldkernel.pcap")
    assert _ids(doc, "warning") == ["close.close_wait_leak", "handshake.unanswered_syn", "reuse.peer_in_close_wait"]
    reuse = next(x for x in doc["findings"] if x["id"] == "reuse.peer_in_close_wait")
    assert reuse["evidence"]["outcome"] == "unanswered"
    assert reuse["evidence"]["challenge_ack_frame"] is None
    uns = next(x for x in doc["findings"] if x["id"] == "handshake.unanswered_syn")
    assert uns["evidence"]["cause"] == "close_wait_collision"
    assert uns["evidence"]["loopback"] is True
    assert uns["severity"] == "error"


def test_closewait_minefield_counts_match_the_recording() -> None:
    text = (INC / "closewait-minefield.txt").read_text()
    leaked = int(re.search(r"phase1: (\d+) connections", text).group(1))  # type: ignore[union-attr]
    collided = text.count("stale=yes")  # per-connect results written by the recording client
    assert collided == int(re.search(r"total collisions: (\d+)", text).group(1))  # type: ignore[union-attr]
    doc = _analyze("closewait-minefield.pcap")
    reuse = next(x for x in doc["findings"] if x["id"] == "reuse.peer_in_close_wait")
    assert reuse["evidence"]["collisions"] == collided
    leak = next(x for x in doc["findings"] if x["id"] == "close.close_wait_leak")
    assert leak["evidence"]["sockets"] >= leaked
    assert leak["evidence"]["tuples_reused"] == collided
    # Aggregated: one finding per pattern and server, not one per socket.
    assert len(doc["findings"]) <= 4


def test_accept_queue_overflow() -> None:
    doc = _analyze("accept-queue-full.pcap")
    assert _ids(doc, "warning") == ["handshake.unanswered_syn"]
    (f,) = doc["findings"]
    ev = f["evidence"]
    assert f["severity"] == "error"  # loopback escalates
    assert ev["loopback"] is True
    assert ev["cause"] == "accept_queue_full"
    assert ev["established_not_accepted_count"] >= 1
    assert ev["attempts"] >= 3 and len(ev["intervals"]) == ev["attempts"] - 1
    # Recorded on Linux 6.18: the >= 6.5 schedule (tcp_syn_linear_timeouts) is linear, then exponential.
    assert ev["schedule"] in ("linear_then_exponential", "linear")


def test_refused_counted_per_destination() -> None:
    doc = _analyze("refused.pcap")
    n = (INC / "refused.connect.txt").read_text().count("ECONNREFUSED")
    assert _ids(doc, "warning") == ["handshake.refused"]
    assert doc["findings"][0]["evidence"]["refused"] == n


def test_unanswered_off_loopback_is_a_warning_with_unknown_cause() -> None:
    doc = _analyze("unanswered-syn-veth.pcap")
    assert _ids(doc, "warning") == ["handshake.unanswered_syn"]
    f = doc["findings"][0]
    assert f["severity"] == "warning"
    assert f["evidence"]["loopback"] is False
    assert f["evidence"]["cause"] == "unknown"


def _sf_only_traces() -> list[str]:
    path = corpus_root() / "zeek" / "expected.jsonl"
    states: dict[str, set[str]] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if row.get("role") == "primary" and row.get("conn_state"):
            states.setdefault(row["trace"], set()).add(row["conn_state"])
    return sorted(t for t, s in states.items() if s == {"SF"})


@pytest.mark.parametrize("trace", _sf_only_traces())
def test_corpus_sf_only_traces_are_quiet(trace: str) -> None:
    """Cleanly closed connections raise no handshake, reuse or close alarm; a loud data-phase finding
    (a clean close can follow heavy loss) must be backed by Wireshark flagging the same frames, and
    bad checksums are proven by the decoder's own tshark cross-check."""
    from .conftest import zeek_trace

    path = zeek_trace(corpus_root() / "zeek" / trace)
    doc = analyze_capture(path).to_json_dict()
    loud = [f for f in doc["findings"] if f["severity"] in ("warning", "error")]
    assert [(f["id"], f["summary"]) for f in loud if not f["id"].startswith(("data.", "capture."))] == []
    for f in loud:
        if f["id"].startswith("data.retransmission"):
            out = subprocess.run(["tshark", "-r", str(path), "-Y", "tcp.analysis.retransmission", "-T", "fields",
                                  "-e", "frame.number"], capture_output=True, text=True, check=True).stdout
            ws = {int(x) for x in out.split()}
            assert ws, f"{trace}: {f['summary']} but tshark sees no retransmission"
            # (a few frames may differ where a conversation holds damaged frames: the tcp.analysis
            # cross-check explains those one by one)
            agree = len(set(f["frames"]) & ws) / len(f["frames"])
            assert agree >= 0.8, f"{trace}: {f['frames']} vs tshark's {sorted(ws)}"


def test_every_finding_reads_like_an_explanation() -> None:
    """Each summary carries numbers, each explanation a next step (a command or a sysctl)."""
    for name in ("lb-client.pcap", "closewait-reuse.pcap", "accept-queue-full.pcap", "refused.pcap"):
        for f in _analyze(name)["findings"]:
            assert re.search(r"\d", f["summary"]), f["summary"]
            assert "`" in f["explanation"] or "net." in f["explanation"], f["id"]


def test_retry_schedules_are_named() -> None:
    from pcapsleuth.detectors import _schedule

    assert _schedule([1.0, 2.0, 4.0, 8.0]) == "exponential"  # classic: 1, 2, 4 ... s (RFC 6298 backoff)
    assert _schedule([3.0, 6.0, 12.0]) == "exponential"  # pre-2.6.39 Linux / RFC 1122 initial 3 s
    assert _schedule([1.0, 1.0, 1.0, 1.0, 2.0, 4.0]) == "linear_then_exponential"  # Linux >= 6.5
    assert _schedule([1.0, 1.0, 1.0]) == "linear"
    assert _schedule([0.2, 5.0, 0.1]) == "irregular"
