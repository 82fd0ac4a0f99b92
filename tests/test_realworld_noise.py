"""Issue 20 section 4, "No noise": nothing at notice or above where an expert sees nothing wrong.

Every test runs on a real capture: ``samples/realworld`` (recorded on Linux 6.18 in network
namespaces, the truth in ``*.facts.json``), a real capture of it edited the way another stack
would have sent it (said where), or a real-world capture of the public corpus. tshark is the
independent oracle for the raw numbers.
"""

from __future__ import annotations

import json
import struct
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

from pcapsleuth.analysis import analyze_capture
from pcapsleuth.findings import SEVERITIES

from .conftest import REPO

RW = REPO / "samples" / "realworld"


@cache
def _doc(path: Path) -> dict[str, Any]:
    return analyze_capture(path).to_json_dict()


def _rw(name: str) -> dict[str, Any]:
    return _doc(RW / name)


def _facts(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RW / f"{name}.facts.json").read_text())
    return data


def _ids(doc: dict[str, Any], floor: str = "notice") -> list[str]:
    k = SEVERITIES.index(floor)
    return [f["id"] for f in doc["findings"] if SEVERITIES.index(f["severity"]) >= k]


def _fields(path: Path, filt: str, *fields: str) -> list[list[str]]:
    args = ["tshark", "-r", str(path), "-Y", filt, "-T", "fields"]
    for f in fields:
        args += ["-e", f]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


# -- window shrink: rounding to the scale unit is not a shrink (RFC 7323 section 2.4) ----------

def _edge_moves(path: Path, src: str, sport: int) -> tuple[int, list[int]]:
    """(scale unit, left moves in bytes of the right edge from one advertisement to the next) of
    what ``src``:``sport`` advertised, from tshark's numbers: the edge is ack + window x unit on
    every non-SYN/FIN/RST ACK."""
    rows = _fields(path, f"ip.src=={src} && tcp.srcport=={sport} && tcp.flags.ack==1 && tcp.flags.syn==0"
                   f" && tcp.flags.fin==0 && tcp.flags.reset==0",
                   "tcp.ack_raw", "tcp.window_size_value", "tcp.window_size_scalefactor")
    unit = max(int(r[2]) for r in rows)
    moves, last = [], None
    for ack, win, _ in rows:
        edge = int(ack) + int(win) * unit
        if last is not None and edge < last:
            moves.append(last - edge)
        last = edge
    return unit, moves


def test_window_shrink_rounding_control_linux() -> None:
    """Linux never shrinks (it rounds up to the unit): a 4 MB scaled transfer, nothing."""
    doc = _rw("window-shrink-rounding.pcap")
    assert "data.window_shrink" not in _ids(doc, "info")


def test_window_shrink_rounding_on_a_bsd_stack_is_not_a_shrink(corpus: Path, tshark: str) -> None:
    """ssh__ssh: 192.168.2.1 (macOS, scale 5: unit 32 bytes) rounds its window down; its right edge
    moves left by less than one unit many times. Before: 70+ data.window_shrink notices."""
    path = corpus / "ssh__ssh" / "trace.pcap"
    unit, moves = _edge_moves(path, "192.168.2.1", 57189)
    assert unit == 32 and len(moves) >= 10 and max(moves) < unit  # rounding, and only rounding
    assert "data.window_shrink" not in _ids(_doc(path), "info")


def test_window_shrink_beyond_rounding_still_reported(corpus: Path, tshark: str) -> None:
    """pppoe-over-qinq: 2.2.2.2:443 (unit 16) pulls its edge back by over 1000 bytes, twice: a real
    shrink (positive control)."""
    path = corpus / "pppoe-over-qinq" / "trace.pcap"
    unit, moves = _edge_moves(path, "2.2.2.2", 443)
    real = [m for m in moves if m > 2 * (unit - 1)]
    assert unit == 16 and len(real) == 2
    found = [f for f in _doc(path)["findings"] if f["id"] == "data.window_shrink"]
    assert [f["evidence"]["advertiser"] for f in found] == ["2.2.2.2:443"]
    assert found[0]["evidence"]["shrinks"] == 2


def test_window_shrink_not_carried_across_a_new_session() -> None:
    """timewait-reuse-nots: a new SYN on the tuple of a closed connection starts a new sequence
    space; the old connection's right edge (1.2 MB further on) is no shrink of the new one."""
    doc = _doc(REPO / "samples" / "anomalies" / "timewait-reuse-nots.pcap")
    assert "data.window_shrink" not in _ids(doc, "info")


# -- duplicate frames: the same packet, not just the same IP ID --------------------------------

def _pcap_records(path: Path) -> tuple[bytes, list[list[Any]]]:
    raw = path.read_bytes()
    assert struct.unpack("<I", raw[:4])[0] in (0xA1B2C3D4, 0xA1B23C4D)
    recs, off = [], 24
    while off + 16 <= len(raw):
        sec, frac, incl, orig = struct.unpack("<IIII", raw[off:off + 16])
        recs.append([sec, frac, orig, bytearray(raw[off + 16:off + 16 + incl])])
        off += 16 + incl
    return raw[:24], recs


def _ipv4_checksum(hdr: bytes) -> int:
    s = sum(struct.unpack(f"!{len(hdr) // 2}H", hdr))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def test_same_ip_id_alone_is_not_a_duplicate_frame(tmp_path: Path, tshark: str) -> None:
    """sender-lossy (captured at the sender; the kernel's TcpRetransSegs = 48 = the capture's
    count), edited as a stack that reuses IP IDs would have sent it: every retransmission carries
    its original's IP ID (IPv4 checksum fixed). Those whose TCP header (ACK, window, flags,
    options with the timestamps) differs from the original's are not the same packet and stay
    retransmissions; only byte-identical copies may be called duplicates. Before: every
    retransmission within 100 ms of its original (all 48) was a "duplicate capture"."""
    src = RW / "sender-lossy.pcap"
    facts = _facts("sender-lossy")
    first: dict[str, list[str]] = {}
    retrans: list[list[str]] = []
    for row in _fields(src, "ip.src==10.204.10.1 && tcp.len>0", "frame.number", "tcp.seq_raw", "ip.id",
                       "tcp.ack_raw", "tcp.window_size_value", "tcp.flags", "tcp.options"):
        if row[1] in first:
            retrans.append(row)
        else:
            first[row[1]] = row
    assert len(retrans) == facts["nstat_TcpRetransSegs_delta"] == 48
    identical = {int(r[0]) for r in retrans if r[3:] == first[r[1]][3:]}
    assert 0 < len(identical) < len(retrans)
    header, recs = _pcap_records(src)
    for r in retrans:
        frame = recs[int(r[0]) - 1][3]
        ihl = (frame[14] & 0x0F) * 4
        frame[18:20] = struct.pack("!H", int(first[r[1]][2], 16))
        frame[24:26] = b"\0\0"
        frame[24:26] = struct.pack("!H", _ipv4_checksum(bytes(frame[14:14 + ihl])))
    out = tmp_path / "sender-lossy-ipid-reuse.pcap"
    out.write_bytes(header + b"".join(struct.pack("<IIII", s, f, len(d), w) + bytes(d) for s, f, w, d in recs))
    doc = analyze_capture(out).to_json_dict()
    dup = [f for f in doc["findings"] if f["id"] == "capture.duplicate_frames"]
    (rt,) = [f for f in doc["findings"] if f["id"] == "data.retransmission"]
    n_dup = dup[0]["evidence"]["duplicates"] if dup else 0
    assert not dup or set(dup[0]["frames"]) <= identical
    assert n_dup <= len(identical)
    assert rt["evidence"]["retransmissions"] + n_dup == 48


def test_the_same_packet_twice_is_still_a_duplicate_frame(corpus: Path) -> None:
    """tcp__ssh-dups: a real capture with every datagram seen twice (same IP ID, TTL, header)."""
    doc = _doc(corpus / "tcp__ssh-dups" / "trace.pcap")
    dup = [f for f in doc["findings"] if f["id"] == "capture.duplicate_frames"]
    assert len(dup) == 1 and dup[0]["evidence"]["duplicates"] >= 90


# -- CLOSE_WAIT: a leak needs evidence that the socket stayed half-closed for long -----------------

def test_idle_browser_connection_is_no_close_wait_leak() -> None:
    """The server closed an idle keep-alive connection; the client closed 6 s later (after the
    capture stopped, 1.9 s into the half-close: ss saw CLOSE-WAIT then). Before: a leak warning."""
    facts = _facts("idle-browser")
    assert facts["close_wait_leak"] is False and facts["client_close_after_server_fin_s"] == 6
    assert "CLOSE-WAIT" in facts["ss_at_capture_stop"]  # half-closed indeed, just not for long
    assert _ids(_rw("idle-browser.pcap")) == []


def test_two_frames_at_the_start_of_a_capture_are_no_close_wait_leak() -> None:
    """midstream-start: the capture starts after the response; the server's FIN and the client's
    ACK are its first two frames, 2.7 s before it stops. Before: a leak warning."""
    facts = _facts("midstream-start")
    assert facts["close_wait_leak"] is False
    assert _ids(_rw("midstream-start.pcap")) == []


def test_close_wait_leak_control_still_warns() -> None:
    """closewait-leak: the server held CLOSE_WAIT 10 s; the capture shows 7.4 s of it."""
    facts = _facts("closewait-leak")
    assert facts["close_wait_leak"] is True and facts["close_wait_seconds"] == 10
    doc = _rw("closewait-leak.pcap")
    (leak,) = [f for f in doc["findings"] if f["id"] == "close.close_wait_leak"]
    assert leak["severity"] == "warning" and leak["evidence"]["endpoint"] == "10.204.1.2:8088"
    assert 7.0 < leak["evidence"]["longest_half_closed_seconds"] < 10.0


def test_split_conversation_fragment_is_no_close_wait(corpus: Path, tshark: str) -> None:
    """tunnels__Teredo: a browser's idle connections, closed by the server (FIN, frames 2 and 4);
    the client reset or closed them 7-10 s later. Zeek's timers split 192.168.2.16:1577's
    conversation, and the fragment after the split showed the server "never sending its FIN"
    (it had, in frame 4). Before: three leak warnings."""
    path = corpus / "tunnels__Teredo" / "trace.pcap"
    fins = _fields(path, "tcp.flags.fin==1 && tcp.srcport==80", "frame.number")
    assert [r[0] for r in fins][:2] == ["2", "4"]
    assert "close.close_wait_leak" not in _ids(_doc(path))


# -- keep-alives: an answered probe is not unanswered --------------------------------------------

def _tcp_checksum(frame: bytearray) -> None:
    """Recompute the TCP checksum of an Ethernet/IPv4/TCP frame in place."""
    ihl = (frame[14] & 0x0F) * 4
    total = struct.unpack("!H", frame[16:18])[0]
    seg = frame[14 + ihl:14 + total]
    seg[16:18] = b"\0\0"
    data = bytes(frame[26:34]) + struct.pack("!BBH", 0, 6, len(seg)) + bytes(seg)
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    frame[14 + ihl + 16:14 + ihl + 18] = struct.pack("!H", ~s & 0xFFFF)


def _write(path: Path, header: bytes, recs: list[list[Any]]) -> Path:
    path.write_bytes(header + b"".join(struct.pack("<IIII", s, f, len(d), w) + bytes(d) for s, f, w, d in recs))
    return path


def _keep_alive(doc: dict[str, Any]) -> dict[str, Any]:
    (ka,) = [f for f in doc["findings"] if f["id"] == "data.keep_alive"]
    return ka


def test_keep_alives_answered_at_both_ends() -> None:
    """keepalive-answered: 6 probes, every one answered, seen from the client and from the server."""
    for name in ("keepalive-answered.pcap", "keepalive-answered-server.pcap"):
        ka = _keep_alive(_rw(name))
        assert ka["severity"] == "info"
        assert ka["evidence"]["probes"] == 6 and ka["evidence"]["answered"] == 6


def test_keep_alive_answered_with_a_new_window_is_answered(tmp_path: Path) -> None:
    """keepalive-answered edited as a stack whose answer re-advertises a grown window (a reader
    that drained its buffer meanwhile): every answer's window + 1 (TCP checksum fixed). Wireshark
    no longer calls them keep-alive ACKs, but each probe was answered. Before: a warning, "6
    keep-alive probes; 0 answered"."""
    header, recs = _pcap_records(RW / "keepalive-answered.pcap")
    answers = [r for r in _fields(RW / "keepalive-answered.pcap", "tcp.analysis.keep_alive_ack", "frame.number")]
    assert len(answers) == 6
    for k, (no,) in enumerate(answers):
        frame = recs[int(no) - 1][3]
        ihl = (frame[14] & 0x0F) * 4
        off = 14 + ihl + 14
        frame[off:off + 2] = struct.pack("!H", struct.unpack("!H", frame[off:off + 2])[0] + 1 + k)
        _tcp_checksum(frame)
    ka = _keep_alive(analyze_capture(_write(tmp_path / "ka-window.pcap", header, recs)).to_json_dict())
    assert ka["severity"] == "info" and ka["evidence"]["answered"] == 6


def test_keep_alives_unanswered_at_the_end_still_warn(tmp_path: Path) -> None:
    """keepalive-answered with the server's frames from the third answer on taken out (as if it
    had vanished): the last 4 probes drew nothing. Positive control: a warning."""
    header, recs = _pcap_records(RW / "keepalive-answered.pcap")
    gone = {int(r[0]) for r in _fields(RW / "keepalive-answered.pcap", "ip.src==10.204.1.2 && frame.number>=13",
                                       "frame.number")}
    assert gone == {13, 15, 17, 19, 21}
    kept = [r for i, r in enumerate(recs, 1) if i not in gone and i != 22]
    ka = _keep_alive(analyze_capture(_write(tmp_path / "ka-gone.pcap", header, kept)).to_json_dict())
    assert ka["severity"] == "warning"
    assert ka["evidence"]["probes"] == 6 and ka["evidence"]["answered"] == 2
    assert ka["evidence"]["unanswered_at_end"] == 4


def test_copies_on_other_vlans_are_not_unanswered_keep_alives(corpus: Path) -> None:
    """vlan-collisions: one connection captured three times (untagged, VLAN 42, QinQ 10,20); the
    copies of the client's last ACKs look like keep-alives 32 us apart, and the server went on
    sending after them. Before: a warning, "4 keep-alive probes; 0 answered"."""
    ka = _keep_alive(_doc(corpus / "vlan-collisions" / "trace.pcap"))
    assert ka["severity"] == "info" and ka["evidence"]["unanswered_at_end"] == 0


# -- one conversation, one story ----------------------------------------------------------------

def test_fin_resent_after_zeeks_timers_is_one_story(tshark: str) -> None:
    """fin-retrans-after-timers (captured on the server): the server in LAST-ACK sends its FIN 10
    times over 53.1 s, every ACK of the client dropped before the wire. Zeek's close timers cut the
    conversation into 5 connections; conn.log keeps them. Before: 5 retransmission and 5 RTO
    warnings, one pair per fragment."""
    path = RW / "fin-retrans-after-timers.pcap"
    facts = _facts("fin-retrans-after-timers")
    doc = _rw("fin-retrans-after-timers.pcap")
    assert len(doc["connections"]) == 5  # Zeek's split, as conn.log has it
    assert _ids(doc) == ["close.fin_unacknowledged"]
    (f,) = doc["findings"]
    ev = f["evidence"]
    assert f["severity"] == "notice"  # all data delivered and ACKed; only the close failed
    assert ev["sender"] == "10.204.1.2:8093" and ev["state"] == "LAST-ACK" and ev["acknowledged"] is False
    assert ev["fins_sent"] == facts["server_fins"] == 10
    assert ev["retransmissions"] == facts["server_fin_retransmissions"] == facts["server_TcpRetransSegs_delta"] == 9
    assert abs(ev["span_s"] - facts["server_fin_first_to_last_s"]) < 0.001
    assert facts["acks_of_server_fin_in_capture"] == 0
    assert sorted(f["connections"]) == sorted(c["uid"] for c in doc["connections"])
    fins = _fields(path, "tcp.flags.fin==1 && ip.src==10.204.1.2", "frame.number", "frame.time_epoch")
    assert f["frames"] == [int(r[0]) for r in fins]
    gaps = [round(float(b[1]) - float(a[1]), 6) for a, b in zip(fins, fins[1:], strict=False)]
    assert all(abs(x - y) < 2e-6 for x, y in zip(ev["intervals_s"], gaps, strict=True))
    assert "LAST-ACK" in f["summary"] and "10 times" in f["summary"]


def test_macos_double_fin_is_no_retransmission_warning(corpus: Path) -> None:
    """ssh__ssh: macOS (192.168.2.1) resends its FIN 50 us .. 1 ms after the first, when the
    server's FIN arrives; the server ACKs it. The close was normal. Before: 8 retransmission
    warnings (only the FIN had been resent)."""
    doc = _doc(corpus / "ssh__ssh" / "trace.pcap")
    assert "data.retransmission" not in _ids(doc) and "data.rto" not in _ids(doc)
    told = [f for f in doc["findings"] if f["id"] == "close.fin_retransmitted"]
    assert len(told) >= 8 and all(f["severity"] == "info" and f["evidence"]["acknowledged"] for f in told)
    assert all(f["evidence"]["span_s"] < 0.002 for f in told if f["evidence"]["sender"].startswith("192.168.2.1:"))


# -- SYN retry schedules: an operating system only when the schedule fits it ----------------------

def _unanswered(doc: dict[str, Any]) -> dict[str, Any]:
    (f,) = [f for f in doc["findings"] if f["id"] == "handshake.unanswered_syn"]
    return f


def _retimed(tmp_path: Path, name: str, offsets: list[float]) -> Path:
    """syn-retries-linux with its SYNs sent at ``offsets`` seconds after the first, as another
    stack's timer would have sent them (the bytes are the real capture's)."""
    header, recs = _pcap_records(RW / "syn-retries-linux.pcap")
    assert len(recs) == 4 == len(offsets)
    nano = struct.unpack("<I", header[:4])[0] == 0xA1B23C4D
    unit = 1e9 if nano else 1e6
    t0 = recs[0][0] + recs[0][1] / unit
    for rec, off in zip(recs, offsets, strict=True):
        t = t0 + off
        rec[0], rec[1] = int(t), round((t - int(t)) * unit)
    return _write(tmp_path / name, header, recs)


def test_linux_schedules_named() -> None:
    """Positive controls recorded on Linux 6.18: tcp_syn_linear_timeouts=0 (1, 2, 4 s) and the
    default 4 (five 1 s retries, then doubling: the macOS/iOS schedule Linux copied in 6.5)."""
    classic = _unanswered(_rw("syn-retries-linux.pcap"))
    assert classic["evidence"]["os_fit"] == "linux" and "Linux's classic schedule" in classic["summary"]
    linear = _unanswered(_rw("syn-retries-linux-linear.pcap"))
    assert linear["evidence"]["os_fit"] == "linux>=6.5|macos"
    assert "Linux >= 6.5" in linear["summary"] and "macOS" in linear["summary"]


def test_a_schedule_that_fits_no_os_claims_none(tmp_path: Path) -> None:
    """SYNs 2 s apart fit no default schedule. Before: 'evenly spaced retries (Linux >= 6.5 linear
    phase)'."""
    f = _unanswered(analyze_capture(_retimed(tmp_path, "every-2s.pcap", [0, 2, 4, 6])).to_json_dict())
    assert f["evidence"]["os_fit"] is None
    assert "Linux" not in f["summary"] and "macOS" not in f["summary"] and "Windows" not in f["summary"]
    assert "2.00, 2.00, 2.00 s apart" in f["summary"]


def test_a_3_second_schedule_is_not_called_1_2_4(tmp_path: Path) -> None:
    """3, 6, 12 s (an initial timeout of 3 s: Linux before 2.6.39). Before: 'the classic exponential
    retry schedule (1, 2, 4 ... s)'."""
    f = _unanswered(analyze_capture(_retimed(tmp_path, "rto3.pcap", [0, 3, 9, 21])).to_json_dict())
    assert f["evidence"]["os_fit"] == "linux<2.6.39"
    assert "1, 2, 4" not in f["summary"] and "3.00, 6.00, 12.00 s apart" in f["summary"]


# -- severity follows measured impact ------------------------------------------------------------

def test_severity_levels_are_defined_in_the_catalogue() -> None:
    data = json.loads((REPO / "pcapsleuth" / "catalog.json").read_text())
    levels = data["severity_levels"]
    assert set(levels) - {"_rule"} == set(SEVERITIES)
    assert "failed or data was lost" in levels["error"] and "user would notice" in levels["warning"]
    assert "no visible harm" in levels["notice"] and levels["info"].startswith("Facts")
    readme = (REPO / "README.md").read_text()
    assert all(f"| `{s}` |" in readme for s in SEVERITIES)


def test_unanswered_syn_graded_by_whether_connect_failed(tmp_path: Path) -> None:
    """syn-retries-linux ends 7.2 s after the first SYN, the client still retrying: warning. The
    same capture going on 30 s longer (one of no-ip.pcap's ARP frames appended at +37 s, as other
    traffic on the link would be) shows the retries ran out: connect() failed, an error."""
    assert _unanswered(_rw("syn-retries-linux.pcap"))["severity"] == "warning"
    header, recs = _pcap_records(RW / "syn-retries-linux.pcap")
    _, arp = _pcap_records(RW / "no-ip.pcap")
    extra = list(arp[0])
    extra[0] = recs[0][0] + 37
    f = _unanswered(analyze_capture(_write(tmp_path / "gave-up.pcap", header, recs + [extra])).to_json_dict())
    assert f["evidence"]["gave_up"] is True and f["evidence"]["connect_failed"] is True
    assert f["severity"] == "error"


def test_tcp_fast_open_syn_with_data_is_a_fact(corpus: Path, tshark: str) -> None:
    """tcp__tcp-fast-open: the SYN carries data and a Fast Open cookie in the experimental option
    254 (magic 0xF989): legitimate TFO, info. Before: a notice (only kind 34 was looked for, as a
    byte anywhere in the options)."""
    path = corpus / "tcp__tcp-fast-open" / "trace.pcap"
    (row,) = _fields(path, "frame.number==8", "tcp.option_kind", "tcp.options.tfo.cookie", "tcp.flags.syn", "tcp.len")
    assert "254" in row[0].split(",") and row[1] and int(row[3]) > 0
    (f,) = [f for f in _doc(path)["findings"] if f["id"] == "protocol.syn_with_data"]
    assert f["severity"] == "info" and "Fast Open" in f["summary"]


def test_synack_before_its_syn_in_the_capture_is_a_fact(corpus: Path, tshark: str) -> None:
    """tcp__handshake-reorder: the SYN-ACK is frame 1, its SYN frame 2, 0.26 ms later: the capture
    point reordered them. Before: a notice, 'a SYN-ACK arrived for a SYN never seen'."""
    path = corpus / "tcp__handshake-reorder" / "trace.pcap"
    rows = _fields(path, "frame.number<=2", "frame.number", "tcp.flags.syn", "tcp.flags.ack")
    assert [(r[1], r[2]) for r in rows] in ([("1", "1"), ("1", "0")], [("True", "True"), ("True", "False")])
    (f,) = [f for f in _doc(path)["findings"] if f["id"] == "protocol.unsolicited_synack"]
    assert f["severity"] == "info" and "frame 2" in f["summary"]


def test_one_sided_capture_synacks_are_facts(corpus: Path) -> None:
    """ssh__ssh.server-side-half-duplex holds only the server's frames: 20 SYN-ACKs 'for a SYN never
    seen', each connection going on. Before: 20 notices."""
    doc = _doc(corpus / "ssh__ssh.server-side-half-duplex" / "trace.pcap")
    syn = [f for f in doc["findings"] if f["id"] == "protocol.unsolicited_synack"]
    assert len(syn) >= 20 and all(f["severity"] == "info" for f in syn)
