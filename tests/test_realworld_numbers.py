"""Issue 20 §3 and §5 on real captures (samples/realworld, truth in *.facts.json and from tshark):
timeouts measured from the previous transmission, RTT without delayed-ACK waits, the direction of
"ACKed unseen segment", the capture point and what follows from it, and the receiver's fault told
as one story with the time it cost."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from pcapsleuth.analysis import analyze_capture

from .conftest import REPO, corpus_root

RW = REPO / "samples" / "realworld"


@cache
def _result(name: str) -> Any:
    return analyze_capture(RW / f"{name}.pcap")


@cache
def _doc(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = _result(name).to_json_dict()
    return doc


@pytest.fixture(autouse=True, scope="module")
def _release_the_analyses() -> Any:
    """The analyses cached here hold every connection object of their captures: let them go
    when this module is done (tests/test_stream_report.py counts the connections still reachable)."""
    yield
    _result.cache_clear()
    _doc.cache_clear()


def _facts(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RW / f"{name}.facts.json").read_text())
    return data


def _ids(doc: dict[str, Any]) -> list[str]:
    return [f["id"] for f in doc["findings"]]


def _one(doc: dict[str, Any], fid: str) -> dict[str, Any]:
    found = [f for f in doc["findings"] if f["id"] == fid]
    assert len(found) == 1, (fid, [(f["id"], f["summary"]) for f in doc["findings"]])
    one: dict[str, Any] = found[0]
    return one


def _tshark(path: Path, display: str, *fields: str) -> list[list[str]]:
    cmd = ["tshark", "-n", "-r", str(path), "-Y", display, "-T", "fields"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


# -- timeouts ----------------------------------------------------------------------------------

def test_rto_backoff_measured_from_the_previous_transmission(tshark: str) -> None:
    """small-window-hang: after the receiver hung, one segment was resent on timeout again and again.
    Each timeout is the gap to the previous transmission (truth 0.24, 0.48, 0.99, 1.95, 3.94,
    7.94 s, from the frame times), not the age since the first send (15.63 s was reported)."""
    facts = _facts("small-window-hang")
    drop = facts["hang_times_rel_capture"]["drop_s"]
    sender = facts["retrans_check"]["sender"]
    rows = _tshark(RW / "small-window-hang.pcap", f"ip.src=={sender} && (tcp.len>0 || tcp.flags.fin==1)",
                   "frame.time_relative")
    times = [float(r[0]) for r in rows if float(r[0]) > drop]
    truth = [round(b - a, 3) for a, b in zip(times, times[1:], strict=False)]
    assert len(truth) == 6 and truth[-1] > 7.9  # (the recording's back-off: 0.24 ... 7.94 s)
    stall = _one(_doc("small-window-hang"), "data.receiver_stalled")
    got = stall["evidence"]["timeouts_s"]
    assert [round(t, 3) for t in got] == pytest.approx(truth, abs=0.002)
    assert max(got) < 8.0
    # The waits do not overlap here: the time spent waiting is their sum, not more.
    assert stall["evidence"]["total_wait_s"] == pytest.approx(sum(truth), abs=0.01)


def test_retransmission_counts_never_exceed_the_segments() -> None:
    for path in sorted(RW.glob("*.pcap")):
        for f in analyze_capture(path).to_json_dict()["findings"]:
            if f["id"] == "data.retransmission":
                ev = f["evidence"]
                assert ev["retransmissions"] <= ev["segments"] and ev["rate"] <= 1.0, (path.name, f["summary"])


def _one_direction(src: Path, addr: str, out: Path) -> Path:
    """``src`` with only the frames ``addr`` sent, as ``tcpdump -Q out`` on it records (the
    recorder's own reader and writer, samples/realworld/rwpcap.py)."""
    sys.path.insert(0, str(RW))
    try:
        import rwpcap  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(RW))
    header, endian, records = rwpcap.read(str(src))
    kept = [r for r in records if rwpcap.decode(r.data).get("src") == addr]
    assert 0 < len(kept) < len(records)
    rwpcap.write(str(out), header, endian, kept)
    return out


def test_no_silence_is_measured_from_a_missing_timestamp(tmp_path: Path) -> None:
    """Every "silent for" and timeout figure fits inside the capture: a side that never sent a
    packet is not "silent for the last 1796687048 s" (measured from 1970). The hang captures seen
    from the sender alone (only the frames it sent, as a one-direction capture has them: the
    receiver never appears) are where that happened."""
    paths = sorted(RW.glob("*.pcap"))
    for name in ("small-window-hang", "zero-window-hang"):
        sender = _facts(name)["four_tuple"]["src"]
        paths.append(_one_direction(RW / f"{name}.pcap", sender, tmp_path / f"{name}-sender-only.pcap"))
    for path in paths:
        doc = analyze_capture(path).to_json_dict()
        span = doc["capture"]["duration"] + 1e-6
        for f in doc["findings"]:
            ev = f["evidence"]
            for key in ("silent_s", "longest_timeout_s", "longest_s", "stalled_s", "total_wait_s"):
                if isinstance(ev.get(key), (int, float)):
                    assert 0 <= ev[key] <= span, (path.name, f["id"], key, ev[key])


# -- round-trip times --------------------------------------------------------------------------

def test_rtt_leaves_out_delayed_ack_waits(tshark: str) -> None:
    """rtt-delayed-ack: a 0.05 ms path (ping, TCP_INFO min_rtt, handshake), 59 ACKs held 40-48 ms
    by the delayed-ACK timer. The RTT average is the path's; the 59 are counted apart, as tshark's
    ack_rtt over 20 ms counts them."""
    facts = _facts("rtt-delayed-ack")
    conn = _doc("rtt-delayed-ack")["connections"][0]
    delayed = 0
    for key in ("orig_rtt", "resp_rtt"):
        rtt = conn[key]
        assert rtt["samples"] >= 1 and rtt["avg"] < 0.001, (key, rtt)
        assert rtt["max"] < 0.02, (key, rtt)
        delayed += rtt["delayed_ack_samples"]
        assert rtt["delayed_ack_max"] <= facts["delayed_ack_max_s"] + 1e-6
    slow = [r for r in _tshark(RW / "rtt-delayed-ack.pcap", "tcp.analysis.ack_rtt > 0.02", "frame.number")]
    assert delayed == facts["delayed_acks_over_20ms"] == len(slow) == 59
    # Where both tools take a sample below 20 ms (a path sample), they agree on its size.
    fast = [float(r[0]) for r in _tshark(RW / "rtt-delayed-ack.pcap", "tcp.analysis.ack_rtt < 0.02",
                                          "tcp.analysis.ack_rtt")]
    assert fast and min(fast) == pytest.approx(min(conn["orig_rtt"]["min"], conn["resp_rtt"]["min"]), abs=1e-6)


# -- ACKed unseen segment ----------------------------------------------------------------------

def test_ack_unseen_segment_names_the_acknowledging_receiver(tshark: str) -> None:
    """The flag is on the ACK: the side that sent it is the receiver, the other side sent the
    data the capture missed (tshark's tcp.analysis.ack_lost_segment, frame by frame). (Was on
    anomalies/timewait-reuse-nots, whose one such ACK is the handshake's: nothing unseen, see
    test_handshake_ack_on_a_reused_tuple_acks_nothing_unseen.)"""
    path = corpus_root() / "zeek" / "ftp__bigtransfer" / "trace.pcap"
    rows = _tshark(path, "tcp.analysis.ack_lost_segment", "frame.number", "ip.src", "tcp.srcport", "ip.dst",
                   "tcp.dstport")
    flagged = {int(r[0]): (f"{r[1]}:{r[2]}", f"{r[3]}:{r[4]}") for r in rows}
    found = [f for f in analyze_capture(path).to_json_dict()["findings"] if f["id"] == "data.ack_unseen_segment"]
    assert found
    for f in found:
        assert f["frames"] and all(fr in flagged for fr in f["frames"]), (f["frames"], flagged)
        for fr in f["frames"]:  # each listed ACK was sent by the receiver, to the data's sender
            assert flagged[fr] == (f["evidence"]["receiver"], f["evidence"]["sender"]), (fr, f["summary"])
        assert f["summary"].startswith(f"{f['evidence']['receiver']} acknowledged data from {f['evidence']['sender']}")


def test_handshake_ack_on_a_reused_tuple_acks_nothing_unseen(tshark: str) -> None:
    """timewait-reuse-nots: frame 2283 is the client's ACK of the SYN-ACK (frame 2282, new ISN) of
    a new connection on the reused 4-tuple: its ACK number is that ISN + 1, nothing unseen. tshark
    flags it (the earlier connection's state carries over into its conversation); no finding."""
    path = REPO / "samples" / "anomalies" / "timewait-reuse-nots.pcap"
    rows = _tshark(path, "frame.number==2282 || frame.number==2283", "frame.number", "tcp.flags.syn",
                   "tcp.seq_raw", "tcp.ack_raw")
    (f1, syn1, isn, _), (f2, syn2, _, ack) = rows
    assert (f1, syn1, f2, syn2) == ("2282", "1", "2283", "0") and int(ack) == (int(isn) + 1) % 2**32
    doc = analyze_capture(path).to_json_dict()
    unseen = [f for f in doc["findings"] if f["id"] == "data.ack_unseen_segment"]
    assert not any(2283 in f["frames"] for f in unseen), unseen


# -- the capture point -------------------------------------------------------------------------

def test_capture_point_at_the_lossy_sender_counts_the_kernels_retransmissions(tshark: str) -> None:
    """sender-lossy, captured on the sender: the kernel resent 48 segments (TcpRetransSegs, the
    capture's own count below the highest sequence number), tshark says 45 retransmissions + 3
    out-of-order. At the sender nothing reorders: we count 48, and no out-of-order finding."""
    facts = _facts("sender-lossy")
    doc = _doc("sender-lossy")
    ws_retrans = len(_tshark(RW / "sender-lossy.pcap", "tcp.analysis.retransmission", "frame.number"))
    ws_ooo = len(_tshark(RW / "sender-lossy.pcap", "tcp.analysis.out_of_order", "frame.number"))
    assert (ws_retrans, ws_ooo) == (45, 3)
    f = _one(doc, "data.retransmission")
    assert f["evidence"]["retransmissions"] == facts["nstat_TcpRetransSegs_delta"] == 48
    assert f["evidence"]["lost_before_capture_point"] == 0
    assert f["evidence"]["capture_point"]["host"] == facts["capturing_host"]
    assert "data.out_of_order" not in _ids(doc)


@pytest.mark.parametrize("name", ["sender-lossy", "small-window-hang", "zero-window-hang", "rtt-delayed-ack"])
def test_capture_point_named_on_client_captures(name: str) -> None:
    from pcapsleuth.capturepoint import capture_point

    conn = next(c for c in _result(name).connections if c.proto == "tcp")
    cp = capture_point(conn)
    facts = _facts(name)
    assert facts["capture_point"].startswith("client")
    assert cp is not None and cp["host"] == facts["four_tuple"]["src"], cp


@pytest.mark.parametrize("name", ["fin-retrans-after-timers", "keepalive-answered-server", "lossy-server"])
def test_capture_point_never_claims_the_far_side(name: str) -> None:
    """Server-side captures: the client is not at the capture point. (Unknown is an allowed answer
    where the turnarounds are too close to call.)"""
    from pcapsleuth.capturepoint import capture_point

    path = (RW / f"{name}.pcap") if (RW / f"{name}.pcap").exists() else REPO / "samples" / "anomalies" / f"{name}.pcap"
    for conn in analyze_capture(path).connections:
        if conn.proto == "tcp" and conn.syn_ts is not None:
            cp = capture_point(conn)
            assert cp is None or not cp["orig"], (name, cp)


# -- the receiver's fault ----------------------------------------------------------------------

def test_small_window_hang_is_the_receivers_fault_in_one_finding() -> None:
    facts = _facts("small-window-hang")
    assert facts["fault"] == "receiver" and facts["network_loss"] is False
    doc = _doc("small-window-hang")
    ids = _ids(doc)
    assert "close.half_open" not in ids and "data.zero_window" not in ids  # one story
    stall = _one(doc, "data.receiver_stalled")
    assert stall["severity"] == "error" and stall["evidence"]["fault"] == "receiver"
    assert stall["evidence"]["receiver"].startswith(facts["four_tuple"]["dst"])
    assert stall["evidence"]["window_at_end"] == facts["sender_tcp_info_at_end"]["snd_wnd"]
    assert "loss after" not in stall["summary"] and "lost after" not in stall["summary"]
    # The slow-reading phase's retransmissions: paced by the receiver's window, none lost before
    # the (sender's) capture.
    r = _one(doc, "data.retransmission")
    assert r["evidence"]["lost_before_capture_point"] == 0
    assert r["evidence"]["receiver_window_limited"] == r["evidence"]["retransmissions"]
    assert r["evidence"]["retransmissions"] + stall["evidence"]["unanswered"] == facts["sender_TcpRetransSegs_delta"]


def test_zero_window_hang_is_one_receiver_story() -> None:
    facts = _facts("zero-window-hang")
    assert facts["fault"] == "receiver" and facts["network_loss"] is False
    doc = _doc("zero-window-hang")
    ids = _ids(doc)
    assert "close.half_open" not in ids and "data.out_of_order" not in ids
    zw = _one(doc, "data.zero_window")
    assert zw["severity"] == "error" and zw["evidence"]["fault"] == "receiver"
    assert zw["evidence"]["unanswered_after"] >= 3
    r = _one(doc, "data.retransmission")
    assert r["evidence"]["lost_before_capture_point"] == 0
    assert r["evidence"]["retransmissions"] == facts["sender_TcpRetransSegs_delta"]
    assert r["severity"] == "notice"  # every one paced by the receiver's closing window


def test_zero_window_graded_by_its_cost() -> None:
    """zero-window-short: 35 ms of zero window in all, longest 12 ms: no warning."""
    facts = _facts("zero-window-short")
    zw = _one(_doc("zero-window-short"), "data.zero_window")
    assert zw["evidence"]["longest_s"] == pytest.approx(facts["longest_zero_window_s"], abs=0.001)
    assert zw["evidence"]["stalled_s"] == pytest.approx(facts["total_zero_window_s"], abs=0.002)
    assert zw["severity"] in ("notice", "info")


# -- what a retransmission cost, and which are none -----------------------------------------------

def test_dsacked_loss_probe_is_no_loss(tshark: str) -> None:
    """zero-window-short: the sender's one retransmission, a tail loss probe, came back D-SACKed
    (the sender's kernel: TcpRetransSegs 1, TCPDSACKRecv 1): the receiver had the original. No
    "lost after this capture point" retransmission finding; a spurious one, as a fact."""
    kernel = _facts("zero-window-short")["nstat_delta"]["psr-c"]
    assert kernel["TcpRetransSegs"] == kernel["TcpExtTCPDSACKRecv"] == 1
    assert len(_tshark(RW / "zero-window-short.pcap", "tcp.options.sack.dsack", "frame.number")) == 1
    doc = _doc("zero-window-short")
    assert "data.retransmission" not in _ids(doc)
    sp = _one(doc, "data.spurious_retransmission")
    assert sp["evidence"]["dsacked"] == 1 and sp["severity"] == "info"


def _corpus(name: str) -> Path:
    from .conftest import corpus_root

    path = corpus_root() / "zeek" / name / "trace.pcap"
    assert path.is_file(), path
    return path


def test_out_of_order_copies_of_captured_data_are_retransmissions(tshark: str) -> None:
    """zeek http__206_example_b: tshark's 52 out-of-order segments resend data this capture had
    already seen (after 64 duplicate ACKs): second copies, counted as retransmissions, no
    "arrived out of order" finding."""
    path = _corpus("http__206_example_b")
    assert len(_tshark(path, "tcp.analysis.out_of_order", "frame.number")) == 52
    doc = analyze_capture(path).to_json_dict()
    assert "data.out_of_order" not in _ids(doc)
    r = [f for f in doc["findings"] if f["id"] == "data.retransmission"]
    assert len(r) == 1 and r[0]["evidence"]["out_of_order_resent"] == 52


def test_fin_repeated_within_microseconds_is_no_alarm(tshark: str) -> None:
    """zeek ssh__ssh: a BSD client sends its FIN again 12 µs .. 1 ms after the first (to carry the
    ACK of the server's FIN), faster than any retransmission timer: no retransmission finding at
    notice or above (it was a warning, "retransmitted 1 of its 10 (10%)")."""
    path = _corpus("ssh__ssh")
    rows = _tshark(path, "tcp.analysis.retransmission && tcp.flags.fin==1 && tcp.len==0", "frame.number")
    assert len(rows) >= 5
    doc = analyze_capture(path).to_json_dict()
    loud = [f for f in doc["findings"] if f["id"] in ("data.retransmission", "data.rto")]
    assert not loud, [f["summary"] for f in loud]
    assert sum(f["evidence"]["dsacked"] for f in doc["findings"] if f["id"] == "data.spurious_retransmission") \
        >= len(rows)


def test_resend_of_a_corrupted_original_is_no_loss_after_the_capture(tshark: str) -> None:
    """corrupt-dropped-server: the original of frame 13 is frame 12 of this capture, with a bad TCP
    checksum; the receiver discarded it (TcpInCsumErrors 1 in the facts). The retransmission says so,
    and does not call it lost after the capture point."""
    facts = json.loads((RW / "corrupt-dropped.facts.json").read_text())
    assert facts["receiver_TcpInCsumErrors_delta"] == 1
    path = RW / "corrupt-dropped-server.pcap"
    cmd = [tshark, "-n", "-r", str(path), "-o", "tcp.check_checksum:TRUE", "-Y", "tcp.checksum.status==0",
           "-T", "fields", "-e", "frame.number", "-e", "tcp.seq_raw"]
    bad = [ln.split("\t") for ln in subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()]
    resent = _tshark(path, "frame.number==13", "tcp.seq_raw")
    assert [b[0] for b in bad] == ["12"] and bad[0][1] == resent[0][0]  # frame 13 resends frame 12
    doc = _doc("corrupt-dropped-server")
    rt = _one(doc, "data.retransmission")
    ev = rt["evidence"]
    assert ev["first_frame"] == 13
    assert ev["discarded_corrupted"] == 1
    assert ev["lost_after_capture_point"] == 0 and ev["lost_before_capture_point"] == 0
    assert "lost after this capture point" not in rt["summary"]
    assert "arrived corrupted" in rt["summary"] and "discarded" in rt["summary"]
