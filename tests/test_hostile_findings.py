"""Issue 19 items 7, 10f and 11: deep tunnels, bad checksums and small lies in findings.

Each capture is built byte by byte here (``_build``); where Wireshark decodes the same capture,
tshark is the oracle for what there is to find.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import dpkt
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _build as b  # noqa: E402

from pcapsleuth.analysis import analyze_capture  # noqa: E402
from pcapsleuth.cli import main  # noqa: E402
from pcapsleuth.decode import MAX_LAYERS  # noqa: E402
from pcapsleuth.detectors import Detection, run_detection  # noqa: E402

S, A, F, R, P = dpkt.tcp.TH_SYN, dpkt.tcp.TH_ACK, dpkt.tcp.TH_FIN, dpkt.tcp.TH_RST, dpkt.tcp.TH_PUSH
MS = 1_000_000


def _write(tmp_path: Path, name: str, packets: list[bytes], gaps: list[int] | None = None, *,
           ethernet: bool = False) -> Path:
    """A pcap of IPv4 ``packets`` in Ethernet frames (``ethernet``: the frames as given), one
    millisecond apart unless ``gaps`` (ns before each) says."""
    ts, records = 1_000_000_000, []
    for i, packet in enumerate(packets):
        ts += gaps[i] if gaps else MS
        records.append((ts, packet if ethernet else b.eth(packet)))
    path = tmp_path / name
    path.write_bytes(b.pcap(records))
    return path


def _seg(fwd: bool, seq: int, ack: int, flags: int, payload: bytes = b"", *, bad_checksum: bool = False,
         sport: int = 40000, dport: int = 80, win: int = 65535) -> bytes:
    """A TCP segment client -> server (``fwd``) or back, as an IPv4 packet."""
    s, d = (sport, dport) if fwd else (dport, sport)
    opts = b"\x02\x04\x05\xb4" if flags & S else b""
    ip = bytearray(b.ip4(b.tcp(sport=s, dport=d, seq=seq, ack=ack, flags=flags, payload=payload, opts=opts,
                               win=win),
                         src=b.SRC4 if fwd else b.DST4, dst=b.DST4 if fwd else b.SRC4))
    if bad_checksum:
        ip[20 + 16] ^= 0xFF  # the TCP checksum field
    return bytes(ip)


def _handshake(sport: int = 40000) -> list[bytes]:
    return [_seg(True, 1000, 0, S, sport=sport), _seg(False, 5000, 1001, S | A, sport=sport),
            _seg(True, 1001, 5001, A, sport=sport), _seg(True, 1001, 5001, A | P, b"x" * 100, sport=sport),
            _seg(False, 5001, 1101, A, sport=sport)]


def _doc(path: Path, **kw: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(json.dumps(analyze_capture(path, **kw).to_json_dict()))
    return doc


def _summary(path: Path) -> str:
    out = io.StringIO()
    assert main(["analyze", str(path), "--no-html"], stdout=out, stderr=io.StringIO()) == 0
    return out.getvalue()


# -- item 7: tunnels nested deep ---------------------------------------------------------------------

def _ip4_carrying(payload: bytes, proto: int, level: int) -> bytes:
    ip = dpkt.ip.IP(src=bytes([172, 16, level % 256, 1]), dst=bytes([172, 16, level % 256, 2]), p=proto, ttl=64,
                    id=level, data=payload)
    ip.len = 20 + len(payload)
    return bytes(ip)


def _wrap(inner: bytes, kind: str, level: int) -> bytes:
    if kind == "gre":
        return _ip4_carrying(struct.pack("!HH", 0, 0x0800) + inner, 47, level)
    if kind == "ipip":
        return _ip4_carrying(inner, 4, level)
    assert kind == "vxlan"
    payload = struct.pack("!II", 0x08000000, 42 << 8) + b.MAC_B + b.MAC_A + b"\x08\x00" + inner
    udp = dpkt.udp.UDP(sport=50000, dport=4789, data=payload)
    udp.ulen = 8 + len(payload)
    return b.ip4(udp, proto=17, src=bytes([172, 16, level % 256, 1]), dst=bytes([172, 16, level % 256, 2]))


def _tunnelled(tmp_path: Path, kind: str, depth: int) -> Path:
    """Three TCP conversations (handshake, data, ACK), each packet inside ``depth`` tunnels."""
    frames = []
    for port in (40000, 40001, 40002):
        for ip in _handshake(port):
            for level in range(depth):
                ip = _wrap(ip, kind, level)
            frames.append(b.eth(ip))
    return _write(tmp_path, f"{kind}{depth}.pcap", frames, ethernet=True)


def _tshark_streams(tshark: str, path: Path) -> int:
    # Wireshark's default layer limit, pinned: tshark dissects a layer only while fewer than
    # gui.max_tree_depth layers are open (a newer default would move tshark's bound, not ours).
    out = subprocess.run([tshark, "-o", f"gui.max_tree_depth:{MAX_LAYERS}", "-r", str(path), "-T", "fields",
                          "-e", "tcp.stream"], capture_output=True, text=True, check=True).stdout
    return len({line for line in out.splitlines() if line.strip()})


def _tcp_connections(doc: dict[str, Any]) -> int:
    return sum(1 for c in doc["connections"] if c["proto"] == "tcp")


# tshark 4.0's deepest decodable nesting of each kind, measured by bisection with the frames built
# here: frame, eth, ethertype + 2 layers per GRE level (ip, gre), 1 per IP in IP, 5 per VXLAN
# (ip, udp, vxlan, eth, ethertype), + ip, tcp <= 500 layers.
DEEPEST = {"gre": 247, "ipip": 495, "vxlan": 99}


@pytest.mark.parametrize("kind", ["gre", "ipip", "vxlan"])
def test_nine_tunnels_deep_every_conversation_is_found_as_tshark_finds_it(tmp_path: Path, tshark: str,
                                                                          kind: str) -> None:
    path = _tunnelled(tmp_path, kind, 9)
    doc = _doc(path)
    assert _tshark_streams(tshark, path) == 3
    assert _tcp_connections(doc) == 3
    assert doc["tracking"]["untracked"] == 0 and doc["capture"]["damage"] == []


@pytest.mark.parametrize("kind", ["gre", "ipip", "vxlan"])
def test_nesting_bound_is_tsharks_and_what_lies_beyond_it_is_said(tmp_path: Path, tshark: str, kind: str) -> None:
    deepest = _tunnelled(tmp_path, kind, DEEPEST[kind])
    assert _tshark_streams(tshark, deepest) == 3
    assert _tcp_connections(_doc(deepest)) == 3

    beyond = _tunnelled(tmp_path, kind, DEEPEST[kind] + 1)
    assert _tshark_streams(tshark, beyond) == 0
    doc = _doc(beyond)
    assert _tcp_connections(doc) == 0
    damage = {d["kind"]: d for d in doc["capture"]["damage"]}
    assert damage["tunnel_too_deep"]["count"] == 15 and damage["tunnel_too_deep"]["frames"][:3] == [1, 2, 3]
    if kind != "vxlan":  # (the outermost VXLAN packets are UDP: tracked as UDP flows)
        assert doc["tracking"]["untracked_tunnel_too_deep"] == 15
    # Where the user looks: the terminal summary says how many frames and why.
    text = _summary(beyond)
    assert "damage     tunnel_too_deep: 15 (frames 1, 2, 3" in text
    assert f"tunnels nested beyond {MAX_LAYERS} protocol layers" in text and "not analyzed" in text


def test_unrelated_captures_have_no_tunnel_tracking_key(tmp_path: Path) -> None:
    doc = _doc(_write(tmp_path, "plain.pcap", _handshake()))
    assert not any(k.startswith("untracked_") for k in doc["tracking"])


# tcpdump's test captures of GRE payloads: WCCP, Cisco MetaData, ERSPAN I-III, NHRP, PPTP, keepalives.
GRE_CAPTURES = ("NHRP-responder-address.pcap", "NHRP_registration.pcap", "erspan-type-i-3.pcap",
                "erspan-type-i-4.pcap", "erspan-type-ii-3.pcap", "erspan-type-iii-ft-7.pcap", "gre-heapoverflow-2.pcap",
                "ios_nhrp.pcap", "isis-infinite-loop.pcap", "nhrp-trace.pcap", "nhrp.pcapng", "pptp.pcap",
                "various_gre.pcap", "wccp_redirect_gre.pcap")


def test_gre_payloads_are_decoded_as_tshark_decodes_them(tshark: str) -> None:
    """Every frame of tcpdump's GRE captures names the innermost source address and TCP/UDP port
    tshark names (ICMP frames aside: their quoted headers are not the frame's own). Before, 238 of
    the 362 frames disagreed: GRE payloads we did not decode made the frame one without IP, the
    WCCP-redirected TCP segment was lost, and ERSPAN type I was read as type II."""
    from pcapsleuth.capture import read_packets

    from .conftest import corpus_root

    compared = 0
    for name in GRE_CAPTURES:
        path = corpus_root() / "tcpdump" / name
        packets, _ = read_packets(path)
        out = subprocess.run([tshark, "-n", "-r", str(path), "-T", "fields", "-E", "occurrence=l", "-e", "ip.src",
                              "-e", "ipv6.src", "-e", "tcp.srcport", "-e", "udp.srcport", "-e", "frame.protocols"],
                             capture_output=True, text=True, check=True).stdout.splitlines()
        assert len(out) == len(packets), name
        for p, line in zip(packets, out, strict=True):
            ip4, ip6, tport, uport, protocols = (line.split("\t") + [""] * 5)[:5]
            if "icmp" in protocols:
                continue
            compared += 1
            port = str(p.sport) if p.sport is not None and p.proto in (6, 17) else ""
            assert (p.src or "", port) == (ip4 or ip6, tport or uport), (name, p.no, p.note)
    assert compared == 362


def test_gre_payload_not_decoded_is_counted(tmp_path: Path) -> None:
    arp = b"\x00\x01\x08\x00\x06\x04\x00\x01" + bytes(20)
    path = _write(tmp_path, "gre-arp.pcap", [b.ip4(b"\x00\x00\x08\x06" + arp, proto=47)] * 3 + _handshake())
    doc = _doc(path)
    assert doc["tracking"]["untracked"] == 3 and doc["tracking"]["untracked_tunnel_payload_not_decoded"] == 3
    assert doc["capture"]["non_ip_frames"] == 0


def test_a_chain_of_snap_headers_is_bounded_not_a_crash(tmp_path: Path) -> None:
    """3,000 LLC/SNAP headers, each naming another: the decoder used to recurse per header."""
    snap = b"\xaa\xaa\x03\x00\x00\x00" + struct.pack("!H", 100)
    frame = b.MAC_B + b.MAC_A + struct.pack("!H", 100) + snap * 3000
    path = _write(tmp_path, "snap.pcap", [frame, b.eth(_handshake()[0])], ethernet=True)
    out, err = io.StringIO(), io.StringIO()
    assert main(["analyze", str(path), "--no-html", "--json", str(tmp_path / "o.json")], stdout=out, stderr=err) == 0
    assert "internal error" not in err.getvalue()
    doc = json.loads((tmp_path / "o.json").read_text())
    assert doc["capture"]["non_ip_frames"] == 1 and doc["tracking"]["tcp_packets"] == 1


# -- item 10f: a bad checksum must not hide what happened -------------------------------------------

def test_syn_answered_only_with_bad_checksums_is_an_unanswered_syn(tmp_path: Path) -> None:
    """Every SYN-ACK arrives corrupted: the client drops them and retries until it gives up. The
    checksum warning used to be the only finding; the failed connect() was hidden."""
    frames, gaps = [], []
    for k, wait in enumerate((0, 1, 2, 4)):
        frames += [_seg(True, 1000, 0, S), _seg(False, 5000, 1001, S | A, bad_checksum=True)]
        gaps += [wait * 1_000_000_000 if k else MS, MS]
    doc = _doc(_write(tmp_path, "bad-synacks.pcap", frames, gaps))
    ids = [f["id"] for f in doc["findings"]]
    assert "handshake.unanswered_syn" in ids and "capture.bad_checksum" in ids
    (f,) = [f for f in doc["findings"] if f["id"] == "handshake.unanswered_syn"]
    assert f["evidence"]["cause"] == "bad_checksum" and f["evidence"]["answers_with_bad_checksum"] == 4
    assert f["frames"][:4] == [1, 3, 5, 7] and "4 SYNs" in f["summary"]
    assert "bad TCP checksum" in f["summary"] and "--no-checksums" in f["explanation"]
    # With checksums not verified the SYN-ACKs count as answers: no unanswered SYN.
    assert "handshake.unanswered_syn" not in [f["id"] for f in _doc(tmp_path / "bad-synacks.pcap",
                                                                     verify_checksums=False)["findings"]]


def test_bad_checksum_finding_names_the_flag_and_keeps_the_connections_findings(tmp_path: Path) -> None:
    """A corrupted segment, its retransmission after a timeout, then an abortive RST."""
    frames = _handshake()[:3] + [_seg(True, 1001, 5001, A | P, b"x" * 100, bad_checksum=True),
                                 _seg(True, 1001, 5001, A | P, b"x" * 100), _seg(False, 5001, 1101, A),
                                 _seg(False, 5001, 1101, R | A)]
    path = _write(tmp_path, "bad-then-reset.pcap", frames, [MS] * 4 + [1_200 * MS, MS, MS])
    doc = _doc(path)
    ids = {f["id"] for f in doc["findings"]}
    assert {"capture.bad_checksum", "data.retransmission", "data.rto", "reset.abort"} <= ids
    (ck,) = [f for f in doc["findings"] if f["id"] == "capture.bad_checksum"]
    assert "--no-checksums" in ck["summary"] and "--no-checksums" in ck["explanation"]
    assert "--no-checksums" in _summary(path)


# -- item 11a: a capped list shown as a count ----------------------------------------------------------

def test_half_open_counts_every_unanswered_retransmission(tmp_path: Path) -> None:
    """The peer vanishes; 5,000 retransmissions follow (more than the 4,096 events kept)."""
    frames = _handshake() + [_seg(True, 1101, 5001, A | P, b"y" * 100)] * 5001
    # Resent every 200 ms, but the last resend 5 s after the one before it.
    doc = _doc(_write(tmp_path, "half-open.pcap", frames, [MS] * 5 + [200 * MS] * 5000 + [5_000 * MS]))
    (f,) = [f for f in doc["findings"] if f["id"] == "close.half_open"]
    assert "sent 5,000 retransmission(s) or keep-alive(s)" in f["summary"]
    assert f["evidence"]["unanswered"] == 5000
    (r,) = [f for f in doc["findings"] if f["id"] == "data.retransmission"]
    assert r["evidence"]["retransmissions"] == 5000 and r["evidence"]["retransmitted_bytes"] == 500_000
    # The longest wait is the last one (the 5,000th resend, 5 s after the 4,999th: each timeout is
    # measured from the previous transmission, issue 20), which is beyond the 4,096 events kept.
    assert r["evidence"]["longest_timeout_s"] == pytest.approx(5.0)


def test_reset_counts_and_weird_counts_are_exact(tmp_path: Path) -> None:
    """40 RSTs (32 frames are kept per side), then 20 data segments from the side that reset (the
    weird data_after_reset: 16 frames are kept per weird)."""
    frames = _handshake() + [_seg(False, 5001, 1101, R | A)] * 40 + [_seg(False, 5001, 1101, A | P, b"z")] * 20
    doc = _doc(_write(tmp_path, "resets.pcap", frames))
    (f,) = [f for f in doc["findings"] if f["id"] == "reset.abort"]
    assert f["evidence"]["rst_count"] == 40
    (w,) = [f for f in doc["findings"] if f["id"] == "protocol.data_after_rst"]
    assert w["summary"].endswith("(frame 46 and 19 more).")


def test_zero_window_episodes_beyond_those_listed_are_counted(tmp_path: Path) -> None:
    """70 zero windows of 100 ms each (64 episodes are listed per direction)."""
    frames, gaps = _handshake(), [MS] * 5
    for _ in range(70):
        frames += [_seg(False, 5001, 1101, A, win=0), _seg(False, 5001, 1101, A)]
        gaps += [10 * MS, 100 * MS]
    doc = _doc(_write(tmp_path, "zero-windows.pcap", frames, gaps))
    (f,) = [f for f in doc["findings"] if f["id"] == "data.zero_window"]
    assert "advertised a zero window 70 time(s)" in f["summary"]
    assert f["evidence"]["episodes"] == 70 and f["evidence"]["stalled_s"] == pytest.approx(7.0)
    assert len(f["evidence"]["episode_list"]) == 20


# -- item 11b: a reset storm on one tuple --------------------------------------------------------------

def test_a_hundred_thousand_rsts_on_one_established_tuple_are_a_reset_storm(tmp_path: Path) -> None:
    rst = _seg(False, 5001, 1101, R | A)
    n = 100_000
    path = _write(tmp_path, "storm.pcap", _handshake() + [rst] * n, [MS] * 5 + [100_000] * n)
    doc = _doc(path)
    storms = [f for f in doc["findings"] if f["id"] == "reset.storm"]
    assert len(storms) == 1
    (f,) = storms
    assert f["severity"] == "notice"
    assert f["evidence"]["rsts"] == n and f["evidence"]["pattern"] == "one_tuple"
    assert f["evidence"]["sender"] == "10.0.0.2:80" and f["evidence"]["receiver"] == "10.0.0.1:40000"
    assert f"sent {n:,} RSTs to 10.0.0.1:40000" in f["summary"]
    # The first RST ends the connection: the storm spans the tuple's later connections too.
    assert len(f["connections"]) == f["evidence"]["connections"] >= 2
    assert 6 in f["frames"] and 1005 in f["frames"]  # the first RST and the one that made it a storm


def test_the_storm_is_the_same_whatever_order_connections_retire_in(tmp_path: Path) -> None:
    """A streaming analysis hands connections over as Zeek's timers retire them (see
    tests/test_stream_detect.py): the storm's finding must not depend on that order."""
    rst = _seg(False, 5001, 1101, R | A)
    path = _write(tmp_path, "storm.pcap", _handshake() + [rst] * 30_000, [MS] * 5 + [200_000] * 30_000)
    result = analyze_capture(path)
    conns = result.connections
    assert len(conns) >= 2
    normal = [f.to_dict() for f in result.findings]
    assert "reset.storm" in [f["id"] for f in normal]
    by_uid = {c.uid: c for c in conns}
    for c in conns:
        c.successor = None
        c.pred_facts = Detection.pred_facts(by_uid[c.predecessor]) if c.predecessor in by_uid else None
    for order in (sorted(conns, key=lambda c: -c.last_ts), list(reversed(conns))):
        assert [f.to_dict() for f in run_detection(order, result.capture)] == normal


@pytest.mark.parametrize("n, gap_ns", [(999, 100_000), (1500, 1_000_000_000)])
def test_fewer_or_slower_rsts_are_no_storm(tmp_path: Path, n: int, gap_ns: int) -> None:
    """Zeek's thresholds: 1,000 RSTs, each within a second of the sender's previous packet."""
    rst = _seg(False, 5001, 1101, R | A)
    doc = _doc(_write(tmp_path, "rsts.pcap", _handshake() + [rst] * n, [MS] * 5 + [gap_ns] * n))
    assert "reset.storm" not in [f["id"] for f in doc["findings"]]


# -- item 11c: no empty parentheses --------------------------------------------------------------------

def test_port_scan_with_no_open_port_has_no_empty_parentheses(tmp_path: Path) -> None:
    frames = []
    for port in range(1000, 1030):  # 30 ports, each refused
        frames += [_seg(True, 7000, 0, S, dport=port), _seg(False, 0, 7001, R | A, dport=port)]
    doc = _doc(_write(tmp_path, "scan.pcap", frames))
    (f,) = [f for f in doc["findings"] if f["id"] == "scan.port_scan"]
    assert "none answered with a SYN-ACK" in f["summary"] and f["evidence"]["open_ports"] == []
    for finding in doc["findings"]:
        assert "()" not in finding["summary"] and "()" not in finding["title"]
