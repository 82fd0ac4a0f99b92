"""The connection tracker: conn_state table, Zeek history rules, sequence arithmetic, generations.

Unit tests use packets built with dpkt constructors; behaviour on real captures is covered by
the Zeek agreement test and tests/test_incidents.py.
"""

from __future__ import annotations

import struct

import dpkt
import pytest

from pcapsleuth.capture import read_packets
from pcapsleuth.seq import seq_delta, seq_gt, seq_lt
from pcapsleuth.tcpanalysis import RETRANSMISSION
from pcapsleuth.tracker import EndpointState as E
from pcapsleuth.tracker import conn_state, track

# One row per Zeek conn_state code, with Zeek's definition (base/protocols/conn/main.zeek):
# (orig endpoint state, resp endpoint state, history, orig size, resp size) -> code
CONN_STATE_TABLE = [
    # S0: connection attempt seen, no reply
    (E.SYN_SENT, E.INACTIVE, "S", 0, 0, "S0"),
    # S1: established, not terminated
    (E.ESTABLISHED, E.ESTABLISHED, "ShAD", 10, 10, "S1"),
    # SF: normal establishment and termination
    (E.CLOSED, E.CLOSED, "ShADadFf", 10, 10, "SF"),
    # REJ: connection attempt rejected
    (E.SYN_SENT, E.RESET, "Sr", 0, 0, "REJ"),
    # S2: established, close attempt by originator seen (no reply from responder)
    (E.CLOSED, E.ESTABLISHED, "ShADaF", 10, 0, "S2"),
    # S3: established, close attempt by responder seen (no reply from originator)
    (E.ESTABLISHED, E.CLOSED, "ShADaf", 10, 0, "S3"),
    # RSTO: established, originator aborted (sent a RST)
    (E.RESET, E.ESTABLISHED, "ShADaR", 10, 0, "RSTO"),
    # RSTR: responder sent a RST
    (E.ESTABLISHED, E.RESET, "ShADar", 10, 0, "RSTR"),
    # RSTOS0: originator sent a SYN followed by a RST, never saw a SYN-ACK from the responder
    (E.RESET, E.INACTIVE, "SR", 0, 0, "RSTOS0"),
    # RSTRH: responder sent a SYN-ACK followed by a RST, never saw a SYN from the (purported) originator
    (E.INACTIVE, E.RESET, "^hr", 0, 0, "RSTRH"),
    # SH: originator sent a SYN followed by a FIN, never saw a SYN-ACK from the responder
    (E.CLOSED, E.INACTIVE, "SF", 0, 0, "SH"),
    # SHR: responder sent a SYN-ACK followed by a FIN, never saw a SYN from the originator
    (E.INACTIVE, E.CLOSED, "^hf", 0, 0, "SHR"),
    # OTH: no SYN seen, just midstream traffic
    (E.PARTIAL, E.PARTIAL, "Dd", 10, 10, "OTH"),
]


@pytest.mark.parametrize("os_, rs, hist, osz, rsz, code", CONN_STATE_TABLE, ids=[r[-1] for r in CONN_STATE_TABLE])
def test_conn_state_table(os_: int, rs: int, hist: str, osz: int, rsz: int, code: str) -> None:
    assert conn_state(os_, rs, hist, osz, rsz) == code


def test_conn_state_table_covers_all_thirteen_codes() -> None:
    assert len({row[-1] for row in CONN_STATE_TABLE}) == 13


def test_rst_after_syn_from_originator_without_handshake_is_other_when_history_breaks_pattern() -> None:
    # Zeek's RSTOS0 needs /^?S[^HAFGIQ]*R/: a SYN, an ACK from the originator, then RST is OTH.
    assert conn_state(E.RESET, E.INACTIVE, "SAR") == "OTH"
    assert conn_state(E.RESET, E.INACTIVE, "SaR") == "RSTOS0"


def test_seq_arithmetic_wraps() -> None:
    assert seq_delta(5, 0xFFFFFFF0) == 21
    assert seq_gt(5, 0xFFFFFFF0) and seq_lt(0xFFFFFFF0, 5)
    assert seq_delta(0, 0x80000000) == -0x80000000


# -- hand-built conversations ------------------------------------------------------------------

CLIENT, SERVER = "10.0.0.1", "10.0.0.2"


def _frame(src: str, dst: str, sport: int, dport: int, flags: int, seq: int, ack: int = 0, data: bytes = b"",
           opts: bytes = b"") -> bytes:
    tcp = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, win=65535, opts=opts, data=data)
    tcp.off = (20 + len(opts)) // 4
    ip = dpkt.ip.IP(src=bytes(map(int, src.split("."))), dst=bytes(map(int, dst.split("."))), p=6, ttl=64, data=tcp)
    ip.len = 20 + len(bytes(tcp))
    eth = dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x04" * 6, type=0x0800, data=ip)
    return bytes(eth)


def _pcap(frames: list[tuple[float, bytes]]) -> bytes:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for ts, data in frames:
        sec = int(ts)
        usec = int(round((ts - sec) * 1e6))
        out.append(struct.pack("<IIII", sec, usec, len(data), len(data)) + data)
    return b"".join(out)


S, A, F, R, P = dpkt.tcp.TH_SYN, dpkt.tcp.TH_ACK, dpkt.tcp.TH_FIN, dpkt.tcp.TH_RST, dpkt.tcp.TH_PUSH


def _conns(frames: list[tuple[float, bytes]]) -> list[dict[str, object]]:
    pkts, _ = read_packets(_pcap(frames), verify_checksums=False)
    return [c.to_dict() for c in track(pkts)]


def test_clean_exchange_history_and_states() -> None:
    c, s = 1000, 5000
    conv = [
        (1.0, _frame(CLIENT, SERVER, 40000, 80, S, c)),
        (1.1, _frame(SERVER, CLIENT, 80, 40000, S | A, s, c + 1)),
        (1.2, _frame(CLIENT, SERVER, 40000, 80, A, c + 1, s + 1)),
        (1.3, _frame(CLIENT, SERVER, 40000, 80, A | P, c + 1, s + 1, b"GET /\r\n")),
        (1.35, _frame(SERVER, CLIENT, 80, 40000, A, s + 1, c + 8)),
        (1.4, _frame(SERVER, CLIENT, 80, 40000, A | P, s + 1, c + 8, b"hello")),
        (1.5, _frame(CLIENT, SERVER, 40000, 80, F | A, c + 8, s + 6)),
        (1.6, _frame(SERVER, CLIENT, 80, 40000, F | A, s + 6, c + 9)),
        (1.7, _frame(CLIENT, SERVER, 40000, 80, A, c + 9, s + 7)),
    ]
    (d,) = _conns(conv)
    assert d["history"] == "ShADadFf"
    assert d["conn_state"] == "SF"
    assert d["orig_bytes"] == 7 and d["resp_bytes"] == 5
    assert d["orig_tcp_state"] == "TIME-WAIT" and d["resp_tcp_state"] == "CLOSED"
    assert d["rtt_syn_synack"] == pytest.approx(0.1) and d["rtt_synack_ack"] == pytest.approx(0.1)
    assert d["closed_by"] == "orig" and d["close_how"] == "FIN"


def test_sequence_wraparound_keeps_byte_counts() -> None:
    c = 0xFFFFFFF0  # the client's data crosses 2^32
    s = 77
    body = b"x" * 100
    conv = [
        (1.0, _frame(CLIENT, SERVER, 40001, 80, S, c)),
        (1.1, _frame(SERVER, CLIENT, 80, 40001, S | A, s, (c + 1) & 0xFFFFFFFF)),
        (1.2, _frame(CLIENT, SERVER, 40001, 80, A, (c + 1) & 0xFFFFFFFF, s + 1)),
        (1.3, _frame(CLIENT, SERVER, 40001, 80, A, (c + 1) & 0xFFFFFFFF, s + 1, body)),
        (1.4, _frame(SERVER, CLIENT, 80, 40001, A, s + 1, (c + 101) & 0xFFFFFFFF)),
        (1.5, _frame(CLIENT, SERVER, 40001, 80, A, (c + 101) & 0xFFFFFFFF, s + 1, body)),
        (1.6, _frame(SERVER, CLIENT, 80, 40001, A, s + 1, (c + 201) & 0xFFFFFFFF)),
    ]
    (d,) = _conns(conv)
    assert d["orig_bytes"] == 200
    assert d["orig_retrans_bytes"] == 0
    assert "T" not in str(d["history"])


def test_retransmission_letters_are_log_scaled() -> None:
    c, s = 10, 20
    conv = [
        (1.0, _frame(CLIENT, SERVER, 40002, 80, S, c)),
        (1.1, _frame(SERVER, CLIENT, 80, 40002, S | A, s, c + 1)),
        (1.2, _frame(CLIENT, SERVER, 40002, 80, A, c + 1, s + 1)),
        (1.3, _frame(CLIENT, SERVER, 40002, 80, A, c + 1, s + 1, b"abc")),
    ]
    # The same segment retransmitted 12 times: Zeek records T at the 1st and the 10th.
    conv += [(1.4 + i / 100, _frame(CLIENT, SERVER, 40002, 80, A, c + 1, s + 1, b"abc")) for i in range(12)]
    (d,) = _conns(conv)
    assert d["history"] == "ShADTT"
    assert d["orig_retrans_pkts"] == 12


def test_new_isn_after_rst_is_a_new_generation_linked_to_its_predecessor() -> None:
    conv = [
        (1.0, _frame(CLIENT, SERVER, 40003, 80, S, 100)),
        (1.1, _frame(SERVER, CLIENT, 80, 40003, R | A, 0, 101)),
        (3.0, _frame(CLIENT, SERVER, 40003, 80, S, 9000)),
        (3.1, _frame(SERVER, CLIENT, 80, 40003, S | A, 7, 9001)),
        (3.2, _frame(CLIENT, SERVER, 40003, 80, A, 9001, 8)),
    ]
    first, second = _conns(conv)
    assert first["conn_state"] == "REJ"
    assert second["predecessor"] == first["uid"]
    assert first["successor"] == second["uid"]
    info = second["predecessor_info"]
    assert isinstance(info, dict) and info["conn_state"] == "REJ"
    assert info["gap_seconds"] == pytest.approx(1.9)
    assert second["conn_state"] == "S1"


def test_syn_ack_first_is_flipped() -> None:
    conv = [
        (1.0, _frame(SERVER, CLIENT, 8080, 40004, S | A, 5, 101)),
        (1.1, _frame(CLIENT, SERVER, 40004, 8080, A, 101, 6)),
    ]
    (d,) = _conns(conv)
    assert d["orig_h"] == CLIENT and d["resp_p"] == 8080
    assert str(d["history"]).startswith("^h")


def test_uids_follow_first_frame_order() -> None:
    conv = [
        (1.0, _frame(CLIENT, SERVER, 50001, 80, S, 1)),
        (1.1, _frame(CLIENT, SERVER, 50002, 80, S, 1)),
        (1.2, _frame(CLIENT, SERVER, 50001, 80, S, 1)),
        (1.3, _frame(CLIENT, SERVER, 50003, 80, S, 1)),
    ]
    conns = _conns(conv)
    assert [c["orig_p"] for c in conns] == [50001, 50002, 50003]
    assert [c["uid"] for c in conns] == sorted(c["uid"] for c in conns)
    assert [c["first_frame"] for c in conns] == [1, 2, 4]


def test_bad_ipv4_header_checksum_is_dropped_before_tcp() -> None:
    """A receiver (and Zeek) drops a datagram whose IPv4 header checksum is wrong: no connection
    (``strict_checksums``, Zeek's behaviour). By default (issue 20) it is held until the receiver
    shows what it did: here its sender sent the SYN again, so it was discarded and stays left out."""
    good = _frame(CLIENT, SERVER, 40005, 80, S, 1)
    bad = bytearray(good)
    bad[14 + 10] ^= 0xFF  # corrupt the IP header checksum field
    pkts, _ = read_packets(_pcap([(1.0, bytes(bad)), (1.1, good)]))
    from pcapsleuth.packet import Cksum

    assert [p.cksum for p in pkts] == [Cksum.BAD_IP, Cksum.GOOD]
    conns = track(pkts, strict_checksums=True)
    assert len(conns) == 1 and conns[0].first_frame == 2
    conns = track(pkts)
    assert len(conns) == 1 and conns[0].orig.bad_checksums == 1 and conns[0].orig.stale_checksums == 0
    assert conns[0].orig.pkts == 1 and conns[0].weirds["bad_TCP_checksum"] == [1]


# -- issue 19: storms and capped lists -----------------------------------------------------------

def _rst_flood(n: int, gap: float) -> list[tuple[float, bytes]]:
    c, s = 1000, 5000
    conv = [
        (1.0, _frame(CLIENT, SERVER, 40010, 80, S, c)),
        (1.001, _frame(SERVER, CLIENT, 80, 40010, S | A, s, c + 1)),
        (1.002, _frame(CLIENT, SERVER, 40010, 80, A, c + 1, s + 1)),
    ]
    return conv + [(1.003 + i * gap, _frame(SERVER, CLIENT, 80, 40010, R | A, s + 1, c + 1)) for i in range(n)]


def test_rst_storm_weird_at_zeeks_threshold() -> None:
    """Zeek's tcp_storm_thresh (1,000 RSTs from one endpoint) and tcp_storm_interarrival_thresh
    (each within 1 s of the endpoint's previous packet): the weird is raised from the 1,000th RST."""
    pkts, _ = read_packets(_pcap(_rst_flood(1000, 0.001)), verify_checksums=False)
    (conn,) = track(pkts)
    assert conn.weirds["RST_storm"] == [3 + 1000]
    assert conn.overflow == {("rst_storm", SERVER, 80): 1003}
    pkts, _ = read_packets(_pcap(_rst_flood(999, 0.001)), verify_checksums=False)
    (conn,) = track(pkts)
    assert "RST_storm" not in conn.weirds and conn.resp.rst_cnt == 999


def test_rsts_a_second_apart_are_no_storm() -> None:
    pkts, _ = read_packets(_pcap(_rst_flood(1200, 1.0)), verify_checksums=False)
    assert not any("RST_storm" in c.weirds for c in track(pkts))


def test_weirds_beyond_the_frames_kept_are_counted() -> None:
    """16 frames are kept per weird; the connection still knows how many times it was raised."""
    conv = _rst_flood(1, 0.001) + [(2.0 + i * 0.001, _frame(SERVER, CLIENT, 80, 40010, A | P, 5001, 1001, b"x"))
                                   for i in range(25)]
    pkts, _ = read_packets(_pcap(conv), verify_checksums=False)
    (conn,) = track(pkts)
    assert len(conn.weirds["data_after_reset"]) == 16 and conn.weird_count("data_after_reset") == 25


def test_events_beyond_the_cap_are_counted_with_their_bytes_and_largest_wait() -> None:
    """``max_events`` bounds the analysed segments kept; those left out are counted by their flags
    (and a flip of the roles keeps them on the right side)."""
    c, s = 1000, 5000
    conv = [
        (1.0, _frame(SERVER, CLIENT, 80, 40020, S | A, s, c + 1)),  # SYN-ACK first: the roles flip
        (1.001, _frame(CLIENT, SERVER, 40020, 80, A, c + 1, s + 1)),
        (1.002, _frame(CLIENT, SERVER, 40020, 80, A | P, c + 1, s + 1, b"y" * 10)),
    ] + [(1.3 + i * 0.3, _frame(CLIENT, SERVER, 40020, 80, A | P, c + 1, s + 1, b"y" * 10)) for i in range(12)]
    pkts, _ = read_packets(_pcap(conv), verify_checksums=False)
    (conn,) = track(pkts, max_events=4)
    assert conn.flipped and conn.orig.addr == CLIENT
    kept = [e for e in conn.events if e[2] and e[3] & RETRANSMISSION]
    dropped = {k: v for k, v in (conn.overflow or {}).items() if k[0] == "event" and k[1] & RETRANSMISSION}
    assert all(k[2] for k in dropped)  # counted on the originator's side, after the flip
    assert len(kept) + sum(v[0] for v in dropped.values()) == 12
    assert sum(v[1] for v in dropped.values()) == 10 * (12 - len(kept))
    (whole,) = track(pkts, max_events=None)  # the oracle: every event kept
    assert max(v[3] for v in dropped.values()) == max(e[4] for e in whole.events if e[3] & RETRANSMISSION)
    assert conn.overflow is not None and conn.overflow[("tail", True)][1] == 12 - len(kept)
