"""Structure-aware mutations of pcap and pcapng captures, for the pipeline fuzzer.

Byte-level mutations alone mostly break the file header and stop the reader at once; the bugs
that matter sit deeper (record framing, then the IP/TCP headers the decoder trusts, then the
per-connection state machines). So a mutation picks one of four levels:

* bytes: bit flips, interesting integers, inserted/deleted/duplicated ranges, truncation, splices;
* records (pcap) and blocks (pcapng): length fields, timestamps, interface ids, block types,
  dropped/duplicated/swapped records;
* frames: the link, IPv4/IPv6 (header length, total length, next header, extension chains,
  fragments) and TCP/UDP header fields (data offset, flags, seq/ack, options, tunnel ports);
* conversations: whole frames dropped, duplicated or reordered, which drives the tracker through
  states the recorded samples never reach.

Everything is driven by the ``random.Random`` passed in: the same seed gives the same inputs.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from typing import NamedTuple

__all__ = ["Frame", "frames_of", "mutate", "MUTATORS"]

INTERESTING_8 = (0, 1, 4, 5, 15, 16, 0x20, 0x40, 0x45, 0x60, 0x7F, 0x80, 0xFF)
INTERESTING_16 = (0, 1, 4, 8, 20, 40, 0x7F, 0x80, 0xFF, 0x100, 0x3FFF, 0x7FFF, 0x8000, 0xFFFF,
                  0x0800, 0x86DD, 0x8100, 0x88A8, 0x8847, 0x8864, 0x88E7, 0x8926, 0x8903, 0x6558, 4789, 6081,
                  2152, 3544)
INTERESTING_32 = (0, 1, 12, 13, 28, 32, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFF0, 65535, 65536, 262144,
                  262145, 0x01000000, 0x0A0D0D0A, 0x1A2B3C4D)
# IPv6 extension headers and the protocols the decoder follows through tunnels.
NEXT_HEADERS = (0, 4, 6, 17, 41, 43, 44, 47, 50, 51, 58, 59, 60, 135, 139, 140, 255)
ETHERTYPES = (0x0800, 0x86DD, 0x8100, 0x88A8, 0x9100, 0x8847, 0x8848, 0x8863, 0x8864, 0x88E7, 0x8926, 0x8903,
              0x6558, 0x0806, 0x0000, 0x05DC, 0xFFFF)
TUNNEL_PORTS = (4789, 8472, 6081, 2152, 3544, 0, 65535)

_PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1": ("<", 16), b"\xa1\xb2\xc3\xd4": (">", 16), b"\x4d\x3c\xb2\xa1": ("<", 16),
                b"\xa1\xb2\x3c\x4d": (">", 16), b"\x34\xcd\xb2\xa1": ("<", 24), b"\xa1\xb2\xcd\x34": (">", 24)}


class Frame(NamedTuple):
    """Where one frame sits in the file."""

    header: int  # offset of the record header (pcap) or block (pcapng)
    data: int  # offset of the frame bytes
    caplen: int
    linktype: int
    order: str  # byte order of the record header
    kind: str  # "pcap", "epb", "spb", "pb"
    end: int  # offset just past the record or block


def frames_of(data: bytes | bytearray, limit: int = 4096) -> list[Frame]:
    """The frames of a well-formed (or well-formed so far) capture, as far as they parse."""
    out: list[Frame] = []
    head = bytes(data[:4])
    if head in _PCAP_MAGICS:
        order, rsize = _PCAP_MAGICS[head]
        if len(data) < 24:
            return out
        linktype = struct.unpack_from(order + "I", data, 20)[0] & 0xFFFF
        pos = 24
        while pos + rsize <= len(data) and len(out) < limit:
            caplen = struct.unpack_from(order + "I", data, pos + 8)[0]
            end = pos + rsize + caplen
            if end > len(data):
                break
            out.append(Frame(pos, pos + rsize, caplen, linktype, order, "pcap", end))
            pos = end
        return out
    if head != b"\x0a\x0d\x0d\x0a":
        return out
    pos, order, links = 0, "<", []
    while pos + 12 <= len(data) and len(out) < limit:
        if data[pos:pos + 4] == b"\x0a\x0d\x0d\x0a":
            order = "<" if data[pos + 8:pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            links = []
        btype, blen = struct.unpack_from(order + "II", data, pos)
        if blen < 12 or blen % 4 or pos + blen > len(data):
            break
        if btype == 1 and blen >= 20:
            links.append(struct.unpack_from(order + "H", data, pos + 8)[0])
        elif btype in (2, 6) and blen >= 32:
            ifid = struct.unpack_from(order + ("H" if btype == 2 else "I"), data, pos + 8)[0]
            caplen = struct.unpack_from(order + "I", data, pos + 20)[0]
            if pos + 28 + caplen <= pos + blen:
                link = links[ifid] if ifid < len(links) else -1
                out.append(Frame(pos, pos + 28, caplen, link, order, "epb" if btype == 6 else "pb", pos + blen))
        elif btype == 3 and blen >= 16:
            link = links[0] if links else -1
            out.append(Frame(pos, pos + 12, blen - 16, link, order, "spb", pos + blen))
        pos += blen
    return out


# -- helpers -----------------------------------------------------------------------------------
def _put(buf: bytearray, pos: int, fmt: str, value: int) -> None:
    size = struct.calcsize(fmt)
    if pos >= 0 and pos + size <= len(buf):
        struct.pack_into(fmt, buf, pos, value & ((1 << (8 * size)) - 1))


def _setb(buf: bytearray, pos: int, value: int) -> None:
    if 0 <= pos < len(buf):
        buf[pos] = value & 0xFF


def _interesting(rng: random.Random, size: int) -> int:
    if rng.random() < 0.25:
        return rng.getrandbits(8 * size)
    table = INTERESTING_8 if size == 1 else INTERESTING_16 if size == 2 else INTERESTING_32
    value = rng.choice(table)
    if rng.random() < 0.2:
        value += rng.choice((-1, 1))
    return value


def _ip_offset(buf: bytearray, f: Frame) -> int | None:
    """Offset of the IP header inside the frame for the common link types, else None."""
    d, n = f.data, f.caplen
    if f.linktype == 1:
        off = 12
        while off + 2 <= n:
            etype = struct.unpack_from("!H", buf, d + off)[0]
            if etype in (0x8100, 0x88A8, 0x9100):
                off += 4
                continue
            return d + off + 2 if etype in (0x0800, 0x86DD) else None
        return None
    if f.linktype == 113:
        return d + 16
    if f.linktype == 276:
        return d + 20
    if f.linktype in (0, 108):
        return d + 4
    if f.linktype in (12, 14, 101, 228, 229):
        return d
    return None


def _layers(buf: bytearray, f: Frame) -> tuple[int, int, int | None, int | None]:
    """(ip offset, ip version, transport offset, transport protocol) of a frame, as far as found."""
    ip = _ip_offset(buf, f)
    end = f.data + f.caplen
    if ip is None or ip >= end:
        return -1, 0, None, None
    ver = buf[ip] >> 4
    if ver == 4 and ip + 20 <= end:
        return ip, 4, ip + (buf[ip] & 15) * 4, buf[ip + 9]
    if ver == 6 and ip + 40 <= end:
        return ip, 6, ip + 40, buf[ip + 6]
    return ip, ver, None, None


# -- mutators: each takes (rng, buf, seeds) and edits buf in place or returns a new one ---------
Mutator = Callable[[random.Random, bytearray, list[bytes]], bytearray]


def m_flip(rng: random.Random, buf: bytearray, seeds: list[bytes]) -> bytearray:
    if buf:
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(buf))
            buf[pos] ^= 1 << rng.randrange(8)
    return buf


def m_byte(rng: random.Random, buf: bytearray, seeds: list[bytes]) -> bytearray:
    if buf:
        buf[rng.randrange(len(buf))] = rng.choice(INTERESTING_8) if rng.random() < 0.5 else rng.randrange(256)
    return buf


def m_int(rng: random.Random, buf: bytearray, seeds: list[bytes]) -> bytearray:
    size = rng.choice((1, 2, 4))
    if len(buf) > size:
        _put(buf, rng.randrange(len(buf) - size), rng.choice("<>") + {1: "B", 2: "H", 4: "I"}[size],
             _interesting(rng, size))
    return buf


def m_delete(rng: random.Random, buf: bytearray, seeds: list[bytes]) -> bytearray:
    if len(buf) > 2:
        a = rng.randrange(len(buf))
        del buf[a:a + rng.randint(1, min(64, len(buf) - a))]
    return buf


def m_insert(rng: random.Random, buf: bytearray, seeds: list[bytes]) -> bytearray:
    a = rng.randrange(len(buf) + 1)
    if rng.random() < 0.5 and buf:
        b = rng.randrange(len(buf))
        chunk = bytes(buf[b:b + rng.randint(1, 64)])
    else:
        chunk = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 16)))
    buf[a:a] = chunk
    return buf


def m_truncate(rng: random.Random, buf: bytearray, seeds: list[bytes]) -> bytearray:
    if buf:
        del buf[rng.randrange(len(buf)):]
    return buf


def m_splice(rng: random.Random, buf: bytearray, seeds: list[bytes]) -> bytearray:
    other = rng.choice(seeds)
    if not buf or not other:
        return buf
    return bytearray(buf[:rng.randrange(len(buf))] + other[rng.randrange(len(other)):])


def m_record(rng: random.Random, buf: bytearray, seeds: list[bytes]) -> bytearray:
    """A pcap record header or pcapng block header field."""
    frames = frames_of(buf)
    if not frames:
        return m_int(rng, buf, seeds)
    f = rng.choice(frames)
    u32 = f.order + "I"
    if f.kind == "pcap":
        field = rng.randrange(4)  # ts_sec, ts_frac, caplen, wirelen
        _put(buf, f.header + 4 * field, u32, _interesting(rng, 4))
    else:
        choice = rng.randrange(5)
        if choice == 0:  # block length, head or trailer
            _put(buf, f.header + 4 if rng.random() < 0.5 else f.end - 4, u32, _interesting(rng, 4))
        elif choice == 1:  # block type
            _put(buf, f.header, u32, rng.choice((1, 2, 3, 4, 5, 6, 9, 0x0A0D0D0A, 0x80000001, 0)))
        elif choice == 2 and f.kind != "spb":  # interface id
            _put(buf, f.header + 8, u32, rng.choice((0, 1, 2, 7, 0xFFFF, 0xFFFFFFFF)))
        elif choice == 3 and f.kind != "spb":  # caplen / wirelen
            _put(buf, f.header + rng.choice((20, 24)), u32, _interesting(rng, 4))
        else:  # timestamp
            _put(buf, f.header + rng.choice((12, 16)), u32, _interesting(rng, 4))
    return buf


def _pcapng_blocks(buf: bytearray) -> list[tuple[int, int, int, str]]:
    """The well-framed pcapng blocks from the start: (offset, type, length, byte order), up to the
    first block whose length cannot be right."""
    pos, order, blocks = 0, "<", []
    while pos + 12 <= len(buf):
        if buf[pos:pos + 4] == b"\x0a\x0d\x0d\x0a":
            order = "<" if buf[pos + 8:pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        btype, blen = struct.unpack_from(order + "II", buf, pos)
        if blen < 12 or blen % 4 or pos + blen > len(buf):
            break
        blocks.append((pos, btype, blen, order))
        pos += blen
    return blocks


def m_pcapng_meta(rng: random.Random, buf: bytearray, seeds: list[bytes]) -> bytearray:
    """SHB/IDB fields and options of a pcapng file: versions, link types, option lengths and values."""
    if buf[:4] != b"\x0a\x0d\x0d\x0a":
        return m_int(rng, buf, seeds)
    blocks = [b for b in _pcapng_blocks(buf) if b[1] in (0x0A0D0D0A, 1)]
    if not blocks:
        return m_int(rng, buf, seeds)
    pos, btype, blen, order = rng.choice(blocks)
    if btype == 0x0A0D0D0A:
        what = rng.randrange(3)
        if what == 0:
            _put(buf, pos + 12, order + "H", rng.choice((0, 1, 2, 0xFFFF)))  # major version
        elif what == 1:
            _put(buf, pos + 16, order + "Q", rng.choice((0xFFFFFFFFFFFFFFFF, 0, 1 << 40)))  # section length
        else:
            _put(buf, pos + 8, "<I", rng.getrandbits(32))  # byte-order magic
        return buf
    what = rng.randrange(3)
    if what == 0:
        _put(buf, pos + 8, order + "H", rng.choice((0, 1, 9, 12, 101, 113, 228, 229, 239, 276, 105, 127, 0xFFFF)))
    elif what == 1:
        _put(buf, pos + 12, order + "I", _interesting(rng, 4))  # snaplen
    else:  # an option: code and length at the first option position, or random bytes in the options
        opt = pos + 16
        if opt + 4 <= pos + blen - 4:
            _put(buf, opt, order + "H", rng.choice((0, 1, 2, 3, 9, 13, 14, 0xFFFF)))
            _put(buf, opt + 2, order + "H", rng.choice((0, 1, 3, 4, 8, 0xFFFF, blen)))
            if rng.random() < 0.5 and opt + 5 <= pos + blen - 4:
                _setb(buf, opt + 4, rng.randrange(256))  # e.g. if_tsresol
    return buf


def m_frame(rng: random.Random, buf: bytearray, seeds: list[bytes]) -> bytearray:
    """A link, network or transport header field of one frame."""
    frames = frames_of(buf)
    if not frames:
        return m_int(rng, buf, seeds)
    f = rng.choice(frames)
    ip, ver, l4, proto = _layers(buf, f)
    end = f.data + f.caplen
    r = rng.random()
    if ip < 0 or r < 0.1:
        # the link layer: an ethertype (or the link header start) to something else
        off = f.data + (12 if f.linktype == 1 else 14 if f.linktype == 113 else 0)
        _put(buf, off, "!H", rng.choice(ETHERTYPES))
        return buf
    if ver == 4 and (l4 is None or r < 0.5):
        field = rng.randrange(8)
        if field == 0:
            _setb(buf, ip, (rng.choice((4, 4, 4, 6, 0, 15)) << 4) | rng.randrange(16))  # version, IHL (incl. < 5)
        elif field == 1:
            _put(buf, ip + 2, "!H", _interesting(rng, 2))  # total length
        elif field == 2:
            _setb(buf, ip + 9, rng.choice(NEXT_HEADERS))  # protocol
        elif field == 3:
            _put(buf, ip + 6, "!H", rng.choice((0x2000, 0x2001, 0x0001, 0x1FFF, 0x4000, 0x8000, 0x3FFF, 0)))  # frag
        elif field == 4:
            _setb(buf, ip + 8, rng.choice((0, 1, 64, 255)))  # TTL
        elif field == 5:
            _put(buf, ip + 10, "!H", rng.getrandbits(16))  # header checksum
        elif field == 6:
            _put(buf, ip + 12 + rng.choice((0, 4)), "!I", rng.choice((0, 0x7F000001, 0xFFFFFFFF, 0xE0000001)))
        else:
            _setb(buf, ip, 0x40 | rng.randrange(6, 16))  # options present: the option bytes are whatever follows
        return buf
    if ver == 6 and (l4 is None or r < 0.5):
        field = rng.randrange(4)
        if field == 0:
            _put(buf, ip + 4, "!H", _interesting(rng, 2))  # payload length
        elif field == 1:
            _setb(buf, ip + 6, rng.choice(NEXT_HEADERS))
        elif field == 2 and l4 is not None and l4 + 2 <= end:
            # an extension header chain: each header names another, possibly itself
            _setb(buf, ip + 6, rng.choice((0, 43, 60)))
            pos = l4
            while pos + 8 <= end and rng.random() < 0.8:
                _setb(buf, pos, rng.choice((0, 43, 60, 44, 6, 17, 59)))
                _setb(buf, pos + 1, rng.choice((0, 0, 1, 255)))
                pos += 8 * (buf[pos + 1] + 1)
        else:
            _setb(buf, ip, (rng.choice((6, 4, 0)) << 4) | (buf[ip] & 15))
        return buf
    if l4 is None or l4 >= end:
        return m_int(rng, buf, seeds)
    if proto == 6:
        field = rng.randrange(8)
        if field == 0 and l4 + 13 <= end:
            _setb(buf, l4 + 12, (rng.randrange(16) << 4) | (buf[l4 + 12] & 15))  # data offset, incl. < 5 and past end
        elif field == 1 and l4 + 14 <= end:
            _setb(buf, l4 + 13, rng.choice((0x02, 0x12, 0x10, 0x11, 0x04, 0x14, 0x18, 0x01, 0x03, 0x06, 0xFF, 0, 0x29)))
        elif field in (2, 3):
            _put(buf, l4 + 4 + 4 * (field - 2), "!I", _interesting(rng, 4))  # seq / ack
        elif field == 4:
            _put(buf, l4 + 14, "!H", _interesting(rng, 2))  # window
        elif field == 5 and l4 + 20 < end:
            # options: kinds with odd lengths (0, 1, 255, running past the header)
            pos = l4 + 20 + rng.randrange(max(1, min(40, end - l4 - 20)))
            if pos + 2 <= end:
                _setb(buf, pos, rng.choice((0, 1, 2, 3, 4, 5, 8, 19, 28, 29, 30, 34, 254, 255)))
                _setb(buf, pos + 1, rng.choice((0, 1, 2, 3, 10, 40, 255)))
        elif field == 6:
            _put(buf, l4 + rng.choice((0, 2)), "!H", rng.choice(TUNNEL_PORTS + (80, 443, 22)))
        else:
            _put(buf, l4 + 16, "!H", rng.getrandbits(16))  # checksum
        return buf
    if proto == 17:
        field = rng.randrange(3)
        if field == 0:
            _put(buf, l4 + rng.choice((0, 2)), "!H", rng.choice(TUNNEL_PORTS))
        elif field == 1:
            _put(buf, l4 + 4, "!H", _interesting(rng, 2))  # UDP length
        else:
            pos = l4 + 8 + rng.randrange(max(1, min(32, end - l4 - 8)))
            if pos < end:
                _setb(buf, pos, rng.randrange(256))
        return buf
    return m_int(rng, buf, seeds)


def m_block_resize(rng: random.Random, buf: bytearray, seeds: list[bytes]) -> bytearray:
    """A pcapng block shrunk or grown consistently (both length fields and the body agree), so the
    framing stays intact and the block's own reader meets a body too short or too long for it."""
    if buf[:4] != b"\x0a\x0d\x0d\x0a":
        return m_record(rng, buf, seeds)
    blocks = _pcapng_blocks(buf)
    if not blocks:
        return m_record(rng, buf, seeds)
    pos, btype, blen, order = rng.choice(blocks)
    new_len = rng.choice((12, 16, 20, 24, 28, 32, max(12, blen - 4), blen + 4, blen + 64))
    if rng.random() < 0.3:
        _put(buf, pos, order + "I", rng.choice((1, 2, 3, 5, 6, 0x0A0D0D0A)))  # and another type
    body = bytes(buf[pos + 8:pos + blen - 4])
    body = body[:new_len - 12] + bytes(max(0, new_len - 12 - len(body)))
    block = bytes(buf[pos:pos + 4]) + struct.pack(order + "I", new_len) + body + struct.pack(order + "I", new_len)
    if rng.random() < 0.5:  # at the very end of the file: nothing of the next block to read into
        return bytearray(buf[:pos] + block)
    return bytearray(buf[:pos] + block + buf[pos + blen:])


def m_conversation(rng: random.Random, buf: bytearray, seeds: list[bytes]) -> bytearray:
    """Whole records dropped, duplicated, swapped or moved (the tracker's inputs)."""
    frames = frames_of(buf)
    if len(frames) < 2:
        return m_record(rng, buf, seeds)
    first, tail = frames[0].header, frames[-1].end
    recs = [bytes(buf[f.header:f.end]) for f in frames]
    op = rng.randrange(4)
    i = rng.randrange(len(recs))
    if op == 0:
        del recs[i]
    elif op == 1:
        recs.insert(rng.randrange(len(recs) + 1), recs[i])
    elif op == 2:
        j = rng.randrange(len(recs))
        recs[i], recs[j] = recs[j], recs[i]
    else:
        rec = recs.pop(i)
        recs.insert(rng.randrange(len(recs) + 1), rec)
    return bytearray(buf[:first] + b"".join(recs) + buf[tail:])


def _ng_block(order: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    return struct.pack(order + "II", btype, len(body) + 12) + body + struct.pack(order + "I", len(body) + 12)


def _ng_options(order: str, options: list[tuple[int, bytes]]) -> bytes:
    if not options:
        return b""
    out = b"".join(struct.pack(order + "HH", c, len(v)) + v + b"\0" * (-len(v) % 4) for c, v in options)
    return out + struct.pack(order + "HH", 0, 0)


def m_reformat(rng: random.Random, buf: bytearray, seeds: list[bytes]) -> bytearray:
    """The same frames in another container: pcap of either byte order, micro/nanosecond or
    Kuznetzov records; or pcapng of either byte order with several interfaces, if_tsresol,
    if_tsoffset, EPB/SPB/PB blocks, comments and blocks that carry no frame."""
    frames = frames_of(buf, limit=64)
    if not frames:
        return m_int(rng, buf, seeds)
    linktype = frames[0].linktype if frames[0].linktype >= 0 else 1
    items = []
    for i, f in enumerate(frames):
        if f.kind == "pcap":
            sec, frac = struct.unpack_from(f.order + "II", buf, f.header)
            ts_us = sec * 1_000_000 + frac
        else:
            hi, lo = struct.unpack_from(f.order + "II", buf, f.header + 12) if f.kind != "spb" else (0, i)
            ts_us = hi << 32 | lo
        items.append((ts_us, bytes(buf[f.data:f.data + f.caplen])))
    order = rng.choice("<>")
    if rng.random() < 0.4:
        variant = rng.choice(((0xA1B2C3D4, 16, 1), (0xA1B23C4D, 16, 1000), (0xA1B2CD34, 24, 1)))
        magic, rsize, mul = variant
        out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, rng.choice((0, 65535, 262144, 64)), linktype)
        for ts_us, frame in items:
            sec, us = divmod(ts_us, 1_000_000)
            hdr = struct.pack(order + "IIII", sec & 0xFFFFFFFF, us * mul, len(frame), len(frame))
            if rsize == 24:
                hdr += struct.pack(order + "IHBB", 0, 0, 0, 0)
            out += hdr + frame
        return bytearray(out)
    shb_opts = [(1, b"fuzz \xff\xfe comment")] if rng.random() < 0.3 else []
    out = _ng_block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1)
                    + _ng_options(order, shb_opts))
    n_if = rng.choice((1, 1, 2, 3))
    resol = [rng.choice((6, 9, 3, 0x80 | 20, 0x80 | 10, 0, 19)) for _ in range(n_if)]
    for k in range(n_if):
        opts = [(2, f"if{k}".encode()), (9, bytes([resol[k]]))]
        if rng.random() < 0.3:
            opts.append((14, struct.pack(order + "q", rng.choice((0, 1, -1, 1 << 40, -(1 << 62))))))
        out += _ng_block(order, 1, struct.pack(order + "HHI", linktype, 0, rng.choice((0, 64, 262144)))
                         + _ng_options(order, opts))
    for ts_us, frame in items:
        k = rng.randrange(n_if)
        r = resol[k]
        ticks = ts_us * 2 ** (r & 0x7F) // 1_000_000 if r & 0x80 else ts_us * 10 ** r // 1_000_000
        ticks &= 0xFFFFFFFFFFFFFFFF
        kind = rng.random()
        if kind < 0.8:
            opts = [(1, b"<pkt comment>")] if rng.random() < 0.1 else []
            if rng.random() < 0.1:
                opts.append((2, struct.pack(order + "I", rng.randrange(4))))  # epb_flags: direction
            body = struct.pack(order + "IIIII", k, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), len(frame))
            out += _ng_block(order, 6, body + frame + b"\0" * (-len(frame) % 4) + _ng_options(order, opts))
        elif kind < 0.9:
            out += _ng_block(order, 3, struct.pack(order + "I", len(frame)) + frame)
        else:
            body = struct.pack(order + "HHIIII", k, 0, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), len(frame))
            out += _ng_block(order, 2, body + frame)
        if rng.random() < 0.05:  # a block that is not a frame: NRB, ISB, a custom block
            out += _ng_block(order, rng.choice((4, 5, 0x00000BAD, 0x40000BAD)), bytes(rng.randrange(0, 24)))
    return bytearray(out)


MUTATORS: list[tuple[Mutator, int]] = [
    (m_flip, 2), (m_byte, 2), (m_int, 2), (m_delete, 1), (m_insert, 1), (m_truncate, 1), (m_splice, 1),
    (m_record, 3), (m_pcapng_meta, 1), (m_frame, 8), (m_conversation, 3), (m_reformat, 2),
    (m_block_resize, 2),
]
_FUNCS = [m for m, _ in MUTATORS]
_WEIGHTS = [w for _, w in MUTATORS]


def mutate(rng: random.Random, data: bytes, seeds: list[bytes], max_size: int = 1 << 20) -> bytes:
    """One to four stacked mutations of ``data``."""
    buf = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
        buf = rng.choices(_FUNCS, _WEIGHTS)[0](rng, buf, seeds)
    return bytes(buf[:max_size])
