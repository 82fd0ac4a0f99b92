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
