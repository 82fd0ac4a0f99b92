"""Build captures byte by byte for unit tests: the bytes written here are the oracle.

pcap and pcapng are written with ``struct`` straight from the format specifications
(https://www.tcpdump.org/manpages/pcap-savefile.5.html, draft-ietf-opsawg-pcapng), so the tests do
not depend on any reader - ours or dpkt's. Frames are built with dpkt's constructors.
"""

from __future__ import annotations

import struct

import dpkt


# -- pcap ------------------------------------------------------------------------------------------
def pcap(records: list[tuple[int, bytes] | tuple[int, bytes, int]], *, linktype: int = 1, order: str = "<",
         nsec: bool = False, snaplen: int = 65535) -> bytes:
    """A classic pcap file. Each record is (ts_ns, frame) or (ts_ns, frame, wirelen)."""
    magic = 0xA1B23C4D if nsec else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for rec in records:
        ts, frame = rec[0], rec[1]
        wirelen = rec[2] if len(rec) > 2 else len(frame)  # type: ignore[misc]
        frac = ts % 1_000_000_000 if nsec else (ts % 1_000_000_000) // 1000
        out.append(struct.pack(order + "IIII", ts // 1_000_000_000, frac, len(frame), wirelen) + frame)
    return b"".join(out)


# -- pcapng ----------------------------------------------------------------------------------------
def _opts(order: str, options: list[tuple[int, bytes]]) -> bytes:
    if not options:
        return b""
    out = b""
    for code, value in options:
        out += struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)
    return out + struct.pack(order + "HH", 0, 0)


def block(order: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack(order + "II", btype, n) + body + struct.pack(order + "I", n)


def shb(order: str = "<", options: list[tuple[int, bytes]] | None = None, major: int = 1) -> bytes:
    return block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, major, 0, -1) + _opts(order, options or []))


def idb(order: str = "<", linktype: int = 1, snaplen: int = 0, options: list[tuple[int, bytes]] | None = None) -> bytes:
    return block(order, 1, struct.pack(order + "HHI", linktype, 0, snaplen) + _opts(order, options or []))


def epb(order: str, iface: int, ticks: int, frame: bytes, *, wirelen: int | None = None,
        options: list[tuple[int, bytes]] | None = None) -> bytes:
    body = struct.pack(order + "IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(frame),
                       len(frame) if wirelen is None else wirelen)
    body += frame + b"\0" * (-len(frame) % 4) + _opts(order, options or [])
    return block(order, 6, body)


def spb(order: str, frame: bytes, wirelen: int | None = None) -> bytes:
    return block(order, 3, struct.pack(order + "I", len(frame) if wirelen is None else wirelen) + frame)


def pb(order: str, iface: int, ticks: int, frame: bytes) -> bytes:
    """The obsolete Packet Block (type 2): 16-bit interface id and drops count."""
    body = struct.pack(order + "HHIIII", iface, 0, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), len(frame))
    return block(order, 2, body + frame + b"\0" * (-len(frame) % 4))


def opt_u32(order: str, code: int, value: int) -> tuple[int, bytes]:
    return code, struct.pack(order + "I", value)


def opt_i64(order: str, code: int, value: int) -> tuple[int, bytes]:
    return code, struct.pack(order + "q", value)


# -- frames ----------------------------------------------------------------------------------------
SRC4, DST4 = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
SRC6 = bytes.fromhex("20010db8000000000000000000000001")
DST6 = bytes.fromhex("20010db8000000000000000000000002")
MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")


def tcp(sport: int = 40000, dport: int = 80, seq: int = 1000, ack: int = 0, flags: int = dpkt.tcp.TH_SYN,
        payload: bytes = b"", opts: bytes = b"", win: int = 65535) -> dpkt.tcp.TCP:
    t = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, win=win, opts=opts, data=payload)
    t.off = (20 + len(opts)) // 4
    return t


def ip4(l4: dpkt.Packet, *, proto: int = 6, src: bytes = SRC4, dst: bytes = DST4, opts: bytes = b"", ttl: int = 64,
        ip_id: int = 1, df: bool = True) -> bytes:
    """An IPv4 datagram with correct header and transport checksums (dpkt computes them)."""
    ip = dpkt.ip.IP(src=src, dst=dst, p=proto, ttl=ttl, id=ip_id, opts=opts, data=l4)
    ip.hl = (20 + len(opts)) // 4
    ip.df = 1 if df else 0
    ip.len = 20 + len(opts) + len(bytes(l4))
    return bytes(ip)


def ip6(l4: dpkt.Packet | bytes, *, nxt: int = 6, src: bytes = SRC6, dst: bytes = DST6, ext: bytes = b"",
        first: int | None = None, hlim: int = 64) -> bytes:
    """An IPv6 packet; ``ext`` is a pre-built extension-header chain whose first type is ``first``.

    The transport checksum is computed here over the final destination (RFC 8200 section 8.1).
    """
    payload = bytes(l4)
    if isinstance(l4, (dpkt.tcp.TCP, dpkt.udp.UDP)):
        l4.sum = 0
        plen = len(payload)
        pseudo = src + dst + struct.pack("!IxxxB", plen, nxt)
        l4.sum = dpkt.in_cksum(pseudo + bytes(l4))
        payload = bytes(l4)
    hdr = struct.pack("!IHBB", 6 << 28, len(ext) + len(payload), nxt if first is None else first, hlim)
    return hdr + src + dst + ext + payload


def eth(payload: bytes, etype: int = 0x0800, *, src: bytes = MAC_A, dst: bytes = MAC_B,
        tags: tuple[tuple[int, int], ...] = ()) -> bytes:
    """Ethernet II; ``tags`` is ((TPID, VID), ...) outermost first."""
    hdr = dst + src
    for tpid, vid in tags:
        hdr += struct.pack("!HH", tpid, vid)
    return hdr + struct.pack("!H", etype) + payload
