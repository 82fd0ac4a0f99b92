"""Decoder units whose oracle is independent arithmetic or the wire format."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import dpkt

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _build as b  # noqa: E402

from pcapsleuth.decode import Decoder, _check  # noqa: E402
from pcapsleuth.packet import Cksum  # noqa: E402
from pcapsleuth.reader import DamageLog  # noqa: E402


def test_checksum_matches_dpkt_for_odd_and_even_lengths() -> None:
    for n in (0, 1, 2, 3, 199, 999):
        ip = b.ip4(b.tcp(payload=bytes(range(7, 7 + n % 200)) * (n // 200 + 1)))
        seg = ip[20:]
        csum = struct.unpack_from("!H", seg, 16)[0]
        assert _check(seg, 0, len(seg), b.SRC4, b.DST4, 6, csum) == Cksum.GOOD  # dpkt computed it


def test_fddi_source_address_in_canonical_bit_order() -> None:
    """FDDI carries addresses MSB first; Wireshark shows them bit-swapped to canonical order."""
    llc = b"\xaa\xaa\x03\x00\x00\x00\x08\x00"
    frame = b"\x50" + bytes(6) + bytes.fromhex("aa0004008 3a7".replace(" ", "")) + llc + b.ip4(b.tcp())
    p = Decoder(DamageLog()).decode(1, 0, len(frame), len(frame), 0, frame, 0, 10)
    assert p.src_mac == "55:00:20:00:c1:e5" and p.sport == 40000


def test_unknown_interface_frame_is_not_decoded_and_does_not_raise() -> None:
    frame = b.eth(b.ip4(b.tcp()))
    p = Decoder(DamageLog()).decode(1, 0, len(frame), len(frame), -1, frame, 0, -1)
    assert p.ip_version == 0 and p.note is not None


def test_pflog_link_type_without_dpkt_pflog_module() -> None:
    frame = b.ip4(b.tcp())
    p = Decoder(DamageLog()).decode(1, 0, len(frame), len(frame), 0, frame, 0, 117)
    assert p.note is not None or p.ip_version == 4
    assert not hasattr(dpkt, "pflog") or p.ip_version in (0, 4)


# -- issue 19 item 7: tunnels within tunnels ----------------------------------------------------------

def _chain(kinds: list[str]) -> bytes:
    """A TCP SYN inside the tunnels named, outermost last."""
    pkt = b.ip4(b.tcp())
    for kind in kinds:
        if kind == "gre":
            pkt = b.ip4(struct.pack("!HH", 0, 0x0800 if pkt[0] >> 4 == 4 else 0x86DD) + pkt, proto=47)
        elif kind == "ipip":
            pkt = b.ip4(pkt, proto=4 if pkt[0] >> 4 == 4 else 41)
        elif kind == "6in6":
            pkt = b.ip6(pkt, nxt=4 if pkt[0] >> 4 == 4 else 41)
        elif kind == "vxlan":
            inner = struct.pack("!II", 0x08000000, 7 << 8) + b.eth(pkt, 0x0800 if pkt[0] >> 4 == 4 else 0x86DD)
            pkt = b.ip4(dpkt.udp.UDP(sport=1, dport=4789, ulen=8 + len(inner), data=inner), proto=17)
        elif kind == "gtp":
            inner = struct.pack("!BBHI", 0x30, 0xFF, len(pkt), 1) + pkt
            pkt = b.ip4(dpkt.udp.UDP(sport=2152, dport=2152, ulen=8 + len(inner), data=inner), proto=17)
    return b.eth(pkt, 0x0800 if pkt[0] >> 4 == 4 else 0x86DD)


def test_mixed_tunnels_twelve_deep_reach_the_tcp_header() -> None:
    """Twelve levels of five kinds (the decoder used to stop at eight, silently)."""
    kinds = ["gre", "ipip", "6in6", "vxlan", "gtp", "gre"] * 2
    frame = _chain(kinds)
    damage = DamageLog()
    p = Decoder(damage).decode(1, 0, len(frame), len(frame), 0, frame, 0, 1)
    assert (p.proto, p.sport, p.dport, p.src, p.note) == (6, 40000, 80, "10.0.0.1", None)
    assert p.encap == "/".join(reversed(kinds)).replace("6in6", "ipip")  # (IPv4 in IPv6 is "ipip")
    assert not damage


def test_beyond_the_layer_bound_the_frame_is_counted_and_noted() -> None:
    from pcapsleuth.decode import MAX_LAYERS, TOO_DEEP

    n = MAX_LAYERS - 4  # frame, eth, ethertype, n + 1 IP headers, tcp: one layer too many
    frame = _chain(["ipip"] * n)
    damage = DamageLog()
    p = Decoder(damage).decode(7, 0, len(frame), len(frame), 0, frame, 0, 1)
    assert p.proto == 4 and p.sport is None and p.note == TOO_DEEP
    assert p.encap is not None and p.encap.count("ipip") == n - 1
    assert damage.to_list() == [{"kind": "tunnel_too_deep", "count": 1, "frames": [7], "detail": TOO_DEEP}]
    frame = _chain(["ipip"] * (n - 1))
    p = Decoder(DamageLog()).decode(7, 0, len(frame), len(frame), 0, frame, 0, 1)
    assert p.proto == 6 and p.sport == 40000


def test_a_long_snap_chain_is_not_followed_into_a_recursion() -> None:
    snap = b"\xaa\xaa\x03\x00\x00\x00" + struct.pack("!H", 100)
    frame = b.MAC_B + b.MAC_A + struct.pack("!H", 100) + snap * 3000
    p = Decoder(DamageLog()).decode(1, 0, len(frame), len(frame), 0, frame, 0, 1)
    assert p.ip_version == 0


def _gre_frame(ptype: int, payload: bytes, flags: int = 0, extra: bytes = b"") -> bytes:
    return b.eth(b.ip4(struct.pack("!HH", flags, ptype) + extra + payload, proto=47))


def test_gre_payloads_wireshark_decodes() -> None:
    """WCCP (with and without the WCCPv2 redirect header), Cisco MetaData, and ERSPAN type I (no
    header of its own when GRE has no sequence number): as tshark decodes tcpdump's
    wccp_redirect_gre, various_gre and erspan-type-i-* captures."""
    inner = b.ip4(b.tcp())
    eth_inner = b.MAC_B + b.MAC_A + b"\x08\x00" + inner
    frames = {
        "wccp": _gre_frame(0x883E, inner),
        "wccp2": _gre_frame(0x883E, b"\x05\x59\x00\x48" + inner),
        "cmd": _gre_frame(0x8909, b"\x08\x00\x01\x01\x00\x01\x00\x00" + inner, 0x2000, b"\x00\x00\x00\x28"),
        "erspan1": _gre_frame(0x88BE, eth_inner),
        "erspan2": _gre_frame(0x88BE, b"\x10\x01\x00\x00\x00\x00\x00\x00" + eth_inner, 0x1000, b"\x00\x00\x00\x01"),
    }
    for name, frame in frames.items():
        p = Decoder(DamageLog()).decode(1, 0, len(frame), len(frame), 0, frame, 0, 1)
        assert (p.proto, p.sport, p.src, p.encap, p.note) == (6, 40000, "10.0.0.1", "gre", None), name


def test_gre_carrying_no_ip_keeps_its_outer_packet_and_says_why() -> None:
    """ARP, NHRP or an unknown type in GRE: the frame is the outer GRE packet (what Wireshark shows
    as its innermost IP), not a frame without IP."""
    from pcapsleuth.decode import GRE_NOT_DECODED

    arp = b"\x00\x01\x08\x00\x06\x04\x00\x01" + bytes(20)
    for ptype, payload in ((0x0806, arp), (0x2001, bytes(20)), (0x6558, b.MAC_B + b.MAC_A + b"\x08\x06" + arp)):
        frame = _gre_frame(ptype, payload)
        p = Decoder(DamageLog()).decode(1, 0, len(frame), len(frame), 0, frame, 0, 1)
        assert (p.ip_version, p.proto, p.sport, p.src) == (4, 47, None, "10.0.0.1")
        assert p.note == f"{GRE_NOT_DECODED}: protocol type 0x{ptype:04x}"
    frame = _gre_frame(0x0800, b.ip4(b.tcp()), flags=3)  # GRE version 3
    p = Decoder(DamageLog()).decode(1, 0, len(frame), len(frame), 0, frame, 0, 1)
    assert p.proto == 47 and p.note == f"{GRE_NOT_DECODED}: GRE version 3"
