"""Reader and decoder on hand-built captures: the bytes built in tests/_build.py are the oracle."""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
import sys
from pathlib import Path

import dpkt
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _build as b  # noqa: E402

from pcapsleuth.capture import read_packets  # noqa: E402
from pcapsleuth.packet import TCP_ACK, TCP_SYN, Cksum, Direction, Frag  # noqa: E402

TS = 1_700_000_000_123_456_789  # ns
TS_US = TS - TS % 1000


def _syn() -> bytes:
    return b.ip4(b.tcp())


# -- pcap ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nsec", [False, True])
def test_pcap_byte_orders_and_resolutions(order: str, nsec: bool) -> None:
    frames = [(TS, b.eth(_syn())), (TS + 1_000_001_001, b.eth(_syn()))]
    pkts, info = read_packets(b.pcap(frames, order=order, nsec=nsec))
    want = [TS, TS + 1_000_001_001] if nsec else [TS_US, (TS + 1_000_001_001) // 1000 * 1000]
    assert [p.ts for p in pkts] == want
    assert [p.no for p in pkts] == [1, 2]
    assert info.format == "pcap" and info.frames == 2 and info.first_ts == want[0] and info.last_ts == want[1]
    assert pkts[0].src == "10.0.0.1" and pkts[0].flags == TCP_SYN and pkts[0].cksum == Cksum.GOOD


# -- pcapng ----------------------------------------------------------------------------------------
def test_pcapng_two_sections_of_different_endianness_and_interfaces() -> None:
    f = b.eth(_syn())
    raw = b.ip4(b.tcp(sport=1, dport=2))
    sec1 = (b.shb("<", [(1, b"first section")]) +
            b.idb("<", 1, options=[(2, b"eth0"), (3, b"uplink"), (9, b"\x09")]) +
            b.idb("<", 101, options=[(9, b"\x86")]) +  # 2^-6 s ticks
            b.epb("<", 0, TS, f, options=[(1, b"hello"), b.opt_u32("<", 2, 0b01)]) +
            b.epb("<", 1, 64 * 3 + 1, raw, options=[b.opt_u32("<", 2, 0b10)]) +
            b.spb("<", f) +
            b.pb("<", 1, 128, raw))
    sec2 = (b.shb(">") + b.idb(">", 1, options=[b.opt_i64(">", 14, 100)]) +  # if_tsoffset 100 s, usec ticks
            b.epb(">", 0, 5_000_001, f))
    pkts, info = read_packets(sec1 + sec2)
    assert [p.no for p in pkts] == [1, 2, 3, 4, 5]
    assert [p.iface for p in pkts] == [0, 1, 0, 1, 2]
    assert [p.linktype for p in pkts] == [1, 101, 1, 101, 1]
    assert pkts[0].ts == TS
    assert pkts[1].ts == 3 * 1_000_000_000 + 1_000_000_000 // 64  # exact: 3 + 1/64 s
    assert pkts[2].ts == TS  # SPB: no timestamp, keeps the previous one
    assert pkts[3].ts == 2 * 1_000_000_000
    assert pkts[4].ts == 100 * 1_000_000_000 + 5_000_001_000
    assert [p.direction for p in pkts[:2]] == [Direction.INBOUND, Direction.OUTBOUND]
    assert pkts[1].sport == 1 and pkts[3].dport == 2
    assert info.sections == 2 and info.comments == {1: ["hello"]} and info.section_comments == ["first section"]
    assert info.interfaces[0].name == "eth0" and info.interfaces[0].description == "uplink"
    assert info.link_types == ["EN10MB", "RAW"]


# -- compression -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name,compress", [("gzip", gzip.compress), ("bzip2", bz2.compress), ("xz", lzma.compress)])
def test_compression_detected_by_magic(tmp_path: Path, name: str, compress: object) -> None:
    data = b.pcap([(TS, b.eth(_syn()))], nsec=True)
    path = tmp_path / "capture.pcapng"  # misleading name on purpose
    path.write_bytes(compress(data))  # type: ignore[operator]
    pkts, info = read_packets(path)
    assert info.compression == name and info.format == "pcap" and [p.ts for p in pkts] == [TS]


# -- link types ------------------------------------------------------------------------------------
def test_vlan_8021q_8021ad_qinq() -> None:
    frames = [
        (TS, b.eth(_syn(), tags=((0x8100, 10),))),
        (TS, b.eth(_syn(), tags=((0x88A8, 100), (0x8100, 20)))),
        (TS, b.eth(_syn(), tags=((0x9100, 7), (0x8100, 8), (0x8100, 0x2009)))),  # PCP bits masked off
    ]
    pkts, _ = read_packets(b.pcap(frames))
    assert [p.vlan for p in pkts] == [(10,), (100, 20), (7, 8, 9)]
    assert all(p.src == "10.0.0.1" and p.sport == 40000 for p in pkts)


@pytest.mark.parametrize("pkttype,direction", [(0, Direction.INBOUND), (4, Direction.OUTBOUND), (3, Direction.INBOUND)])
def test_linux_sll(pkttype: int, direction: Direction) -> None:
    sll = struct.pack("!HHH8sH", pkttype, 1, 6, b.MAC_A + b"\0\0", 0x0800) + _syn()
    pkts, _ = read_packets(b.pcap([(TS, sll)], linktype=113))
    assert pkts[0].pkttype == pkttype and pkts[0].direction == direction
    assert pkts[0].src_mac == "02:00:00:00:00:01" and pkts[0].ifindex is None and pkts[0].sport == 40000


def test_linux_sll2_keeps_ifindex() -> None:
    sll2 = struct.pack("!HHIHBB8s", 0x86DD, 0, 7, 1, 4, 6, b.MAC_B + b"\0\0") + b.ip6(b.tcp())
    pkts, _ = read_packets(b.pcap([(TS, sll2)], linktype=276))
    p = pkts[0]
    assert p.ifindex == 7 and p.pkttype == 4 and p.direction == Direction.OUTBOUND
    assert p.src == "2001:db8::1" and p.cksum == Cksum.GOOD


@pytest.mark.parametrize("linktype,order", [(0, "<"), (0, ">"), (108, ">")])
@pytest.mark.parametrize("af", [2, 24, 28, 30])
def test_null_and_loop(linktype: int, order: str, af: int) -> None:
    payload = _syn() if af == 2 else b.ip6(b.tcp())
    pkts, _ = read_packets(b.pcap([(TS, struct.pack(order + "I", af) + payload)], linktype=linktype))
    assert pkts[0].ip_version == (4 if af == 2 else 6) and pkts[0].sport == 40000


@pytest.mark.parametrize("linktype", [101, 228, 229])
def test_raw_ip_link_types(linktype: int) -> None:
    payload = b.ip6(b.tcp()) if linktype == 229 else _syn()
    pkts, _ = read_packets(b.pcap([(TS, payload)], linktype=linktype))
    assert pkts[0].ip_version == (6 if linktype == 229 else 4) and pkts[0].flags == TCP_SYN


# -- IP ----------------------------------------------------------------------------------------------
def test_ipv4_with_options() -> None:
    opts = b"\x01\x01\x01\x00"  # NOP NOP NOP EOL
    pkts, _ = read_packets(b.pcap([(TS, b.eth(b.ip4(b.tcp(payload=b"abc"), opts=opts)))]))
    assert pkts[0].sport == 40000 and pkts[0].payload_len == 3 and pkts[0].cksum == Cksum.GOOD


def _fragments(payload: bytes, size: int) -> list[bytes]:
    out = []
    for off in range(0, len(payload), size):
        piece = payload[off:off + size]
        more = off + size < len(payload)
        hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(piece), 77, (off // 8) | (0x2000 if more else 0),
                          64, 6, 0, b.SRC4, b.DST4)
        hdr = hdr[:10] + struct.pack("!H", dpkt.in_cksum(hdr)) + hdr[12:]  # a valid header checksum
        out.append(b.eth(hdr + piece))
    return out


def test_ipv4_fragments_reassembled_on_the_completing_frame() -> None:
    seg = bytes(b.ip4(b.tcp(payload=b"x" * 60)))[20:]  # the TCP segment with its checksum
    frags = _fragments(seg, 32)  # 80 bytes: 32 + 32 + 16
    # The second fragment's bytes would parse as a TCP header if misread: make them look like one.
    pkts, info = read_packets(b.pcap([(TS + i, f) for i, f in enumerate([frags[1], frags[0], frags[2]])]))
    assert [p.frag for p in pkts] == [Frag.FRAGMENT, Frag.FRAGMENT, Frag.REASSEMBLED]
    assert [p.sport for p in pkts] == [None, None, 40000]
    assert pkts[2].payload_len == 60 and pkts[2].cksum == Cksum.GOOD
    assert info.ip_fragments == 3


def test_ipv6_extension_headers() -> None:
    seg = b.tcp(flags=TCP_SYN | TCP_ACK)
    hop = bytes([43, 0]) + b"\x01\x04\0\0\0\0"  # hop-by-hop, next: routing, PadN
    routing = bytes([60, 2, 0, 0]) + b"\0" * 4 + b.DST6  # type 0, segments left 0
    dest = bytes([6, 0]) + b"\x01\x04\0\0\0\0"  # destination options, next: TCP
    pkt = b.ip6(seg, ext=hop + routing + dest, first=0)
    pkts, _ = read_packets(b.pcap([(TS, b.eth(pkt, 0x86DD))]))
    p = pkts[0]
    assert p.proto == 6 and p.flags == TCP_SYN | TCP_ACK and p.payload_len == 0 and p.cksum == Cksum.GOOD


def test_ipv6_fragment_header() -> None:
    tcp = b.tcp(payload=b"y" * 40)
    whole = b.ip6(tcp)[40:]
    first, second = whole[:32], whole[32:]
    frag1 = bytes([6, 0]) + struct.pack("!HI", 0 | 1, 9) + first
    frag2 = bytes([6, 0]) + struct.pack("!HI", 32, 9) + second
    mk = lambda body: struct.pack("!IHBB", 6 << 28, len(body), 44, 64) + b.SRC6 + b.DST6 + body  # noqa: E731
    pkts, _ = read_packets(b.pcap([(TS, b.eth(mk(frag1), 0x86DD)), (TS, b.eth(mk(frag2), 0x86DD))]))
    assert [p.frag for p in pkts] == [Frag.FRAGMENT, Frag.REASSEMBLED]
    assert pkts[0].sport is None and pkts[1].sport == 40000 and pkts[1].ip_id == 9 and pkts[1].cksum == Cksum.GOOD


def test_checksums_good_bad_offloaded() -> None:
    good = b.ip4(b.tcp(payload=b"data"))
    bad = bytearray(good)
    bad[36] ^= 0xFF  # TCP checksum high byte
    # Offloaded: the field holds only the folded pseudo-header sum (Linux CHECKSUM_PARTIAL).
    seg_len = len(good) - 20
    pseudo = (int.from_bytes(b.SRC4, "big") % 0xFFFF + int.from_bytes(b.DST4, "big") % 0xFFFF + 6 + seg_len) % 0xFFFF
    off = bytearray(good)
    off[36:38] = struct.pack("!H", pseudo)
    pkts, _ = read_packets(b.pcap([(TS, b.eth(good)), (TS, b.eth(bytes(bad))), (TS, b.eth(bytes(off)))]))
    assert [p.cksum for p in pkts] == [Cksum.GOOD, Cksum.BAD, Cksum.OFFLOADED]


def test_payload_len_from_ip_length_on_a_snaplen_cut_frame() -> None:
    frame = b.eth(b.ip4(b.tcp(payload=b"z" * 1000)))
    pkts, info = read_packets(b.pcap([(TS, frame[:68], len(frame))], snaplen=68))
    assert pkts[0].caplen == 68 and pkts[0].wirelen == len(frame)
    assert pkts[0].payload_len == 1000 and pkts[0].cksum == Cksum.UNCHECKED
    assert {d["kind"] for d in info.damage.to_list()} == {"snaplen_cut"}


def test_ip_length_beyond_the_wire_is_clamped() -> None:
    """Like Wireshark (zeek tcp__reassembly frame 7): bytes never sent are not payload."""
    ip = bytearray(b.ip4(b.tcp(payload=b"q" * 100)))
    ip[2:4] = struct.pack("!H", len(ip) + 8)
    pkts, info = read_packets(b.pcap([(TS, b.eth(bytes(ip)))]))
    assert pkts[0].payload_len == 100
    assert {d["kind"]: d["frames"] for d in info.damage.to_list()}["ip_len_exceeds_frame"] == [1]


def test_reserved_tcp_flag_bits_are_kept() -> None:
    ip = bytearray(_syn())
    ip[32] |= 0x0E  # the three reserved bits beside the data offset
    pkts, _ = read_packets(b.pcap([(TS, b.eth(bytes(ip)))]))
    assert pkts[0].flags == 0xE00 | TCP_SYN
