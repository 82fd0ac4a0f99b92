#!/usr/bin/env python3
"""Build the malformed-capture set in this directory from real samples (deterministic).

Each file is a real capture from samples/ with one kind of damage applied at a known place, so
that the expected behaviour can be stated exactly: either a one-line error with a documented
exit code (README "Exit codes"), or a partial analysis that lists the damage by frame number.
``CASES`` below is the single statement of what each file is and what pcapsleuth must do with
it: tests/test_malformed.py checks every entry, and README.md's table is generated from it.

    python3 tests/malformed/make_malformed.py          # rewrite the files and README.md
    python3 tests/malformed/make_malformed.py --check  # exit 1 if anything on disk differs

Bases: samples/incidents/refused.pcap (8 frames: 2 ARP, 3 SYN -> RST pairs), clean.pcap (10
frames: one whole HTTP/1.0 connection), samples/basic/ipv6.pcap (12 frames over IPv6). The
pcapng files carry clean.pcap's frames in an SHB + IDB + EPBs written here (byte order and
block layout from draft-ietf-opsawg-pcapng), because the pcapng sample itself already has
timestamps going backwards between its two interfaces, which would blur the expectations.

The directory, the FIFO and the 0-byte file are made by the test at run time (git keeps no
FIFOs, and an empty file next to the others is easy to lose); their rows are in the table too.
"""

from __future__ import annotations

import dataclasses
import gzip
import lzma
import struct
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parent.parent / "samples"


# -- reading and writing the bases -----------------------------------------------------------------
def pcap_records(data: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """(global header, [(record header, frame)]) of a little-endian microsecond pcap."""
    assert data[:4] == b"\xd4\xc3\xb2\xa1", "bases are little-endian microsecond pcaps"
    out, pos = [], 24
    while pos < len(data):
        caplen = struct.unpack_from("<I", data, pos + 8)[0]
        out.append((data[pos:pos + 16], data[pos + 16:pos + 16 + caplen]))
        pos += 16 + caplen
    return data[:24], out


def pcap_join(header: bytes, records: list[tuple[bytes, bytes]]) -> bytes:
    return header + b"".join(h + f for h, f in records)


def rehead(rec_header: bytes, frame: bytes) -> bytes:
    """A record header with caplen and wirelen set to the frame's length."""
    sec, usec = struct.unpack_from("<II", rec_header)
    return struct.pack("<IIII", sec, usec, len(frame), len(frame))


def _block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    return struct.pack("<II", btype, len(body) + 12) + body + struct.pack("<I", len(body) + 12)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def shb(major: int = 1) -> bytes:
    opts = _option(4, b"make_malformed.py") + _option(0, b"")
    return _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, major, 0, -1) + opts)


def idb(name: bytes = b"veth0") -> bytes:
    return _block(1, struct.pack("<HHI", 1, 0, 262144) + _option(2, name) + _option(0, b""))


def epb(ifid: int, rec_header: bytes, frame: bytes) -> bytes:
    sec, usec, _caplen, wirelen = struct.unpack_from("<IIII", rec_header)
    ticks = sec * 1_000_000 + usec
    body = struct.pack("<IIIII", ifid, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), wirelen)
    return _block(6, body + frame)


def pcapng_of(records: list[tuple[bytes, bytes]]) -> list[bytes]:
    """Blocks: SHB, IDB, one EPB per record (frame n is blocks[n + 1])."""
    return [shb(), idb()] + [epb(0, h, f) for h, f in records]


def _base(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


REFUSED = "incidents/refused.pcap"
CLEAN = "incidents/clean.pcap"
IPV6 = "basic/ipv6.pcap"


# -- the damage ------------------------------------------------------------------------------------
def truncated_global_header() -> bytes:
    return _base(REFUSED)[:20]


def truncated_record_header() -> bytes:
    head, recs = pcap_records(_base(REFUSED))
    return pcap_join(head, recs[:5]) + recs[5][0][:10]  # frame 6's record header: 10 of 16 bytes


def truncated_record_body() -> bytes:
    head, recs = pcap_records(_base(REFUSED))
    h, f = recs[5]
    return pcap_join(head, recs[:5]) + h + f[:30]  # frame 6: 30 of its 74 bytes


def caplen_past_eof() -> bytes:
    head, recs = pcap_records(_base(REFUSED))
    h, f = recs[3]
    bad = h[:8] + struct.pack("<II", 5000, 5000)  # frame 4 claims 5,000 bytes; 390 are left in the file
    return pcap_join(head, recs[:3]) + bad + f + pcap_join(b"", recs[4:])


def caplen_insane() -> bytes:
    head, recs = pcap_records(_base(REFUSED))
    h, f = recs[3]
    bad = h[:8] + struct.pack("<II", 0x40000000, 0x40000000)  # frame 4 claims 1 GiB
    return pcap_join(head, recs[:3]) + bad + f + pcap_join(b"", recs[4:])


def caplen_over_snaplen() -> bytes:
    head, recs = pcap_records(_base(REFUSED))
    head = head[:16] + struct.pack("<I", 60) + head[20:]  # snaplen 60: the 74-byte SYN frames exceed it
    return pcap_join(head, recs)


def ipv4_ihl_below_20() -> bytes:
    head, recs = pcap_records(_base(CLEAN))
    h, f = recs[3]  # frame 4: the HTTP request
    f = f[:14] + bytes([0x44]) + f[15:]  # version 4, IHL 4 (16 bytes)
    recs[3] = (h, f)
    return pcap_join(head, recs)


def tcp_offset_below_5() -> bytes:
    head, recs = pcap_records(_base(CLEAN))
    h, f = recs[5]  # frame 6: the HTTP response
    f = f[:46] + bytes([(4 << 4) | (f[46] & 15)]) + f[47:]  # data offset 4 (16 bytes)
    recs[5] = (h, f)
    return pcap_join(head, recs)


def tcp_offset_past_packet() -> bytes:
    head, recs = pcap_records(_base(CLEAN))
    h, f = recs[4]  # frame 5: a bare ACK, 32-byte TCP header
    f = f[:46] + bytes([(15 << 4) | (f[46] & 15)]) + f[47:]  # data offset 15 (60 bytes) > 32 in the segment
    recs[4] = (h, f)
    return pcap_join(head, recs)


def ipv6_ext_chain_endless() -> bytes:
    head, recs = pcap_records(_base(IPV6))
    h, f = recs[5]  # frame 6: the HTTP request over IPv6
    # 40 destination-options headers, each naming another one as the next header: the chain
    # runs to the end of the frame and never reaches a transport header.
    chain = b"".join(bytes([60, 0, 1, 4, 0, 0, 0, 0]) for _ in range(40))
    ip6 = f[14:22]
    ip6 = ip6[:4] + struct.pack("!HBB", len(chain), 60, ip6[7]) + f[22:54]
    f = f[:14] + ip6 + chain
    recs[5] = (rehead(h, f), f)
    return pcap_join(head, recs)


def _pcapng(blocks: list[bytes]) -> bytes:
    return b"".join(blocks)


def pcapng_block_length(value: int) -> Callable[[], bytes]:
    def build() -> bytes:
        _, recs = pcap_records(_base(CLEAN))
        blocks = pcapng_of(recs)
        b = blocks[6]  # frame 5's EPB: its block length (head only) replaced
        blocks[6] = b[:4] + struct.pack("<I", value) + b[8:]
        return _pcapng(blocks)
    return build


def pcapng_shb_version() -> bytes:
    _, recs = pcap_records(_base(CLEAN))
    blocks = pcapng_of(recs)
    blocks[0] = shb(major=2)
    return _pcapng(blocks)


def pcapng_second_shb_version() -> bytes:
    _, recs = pcap_records(_base(CLEAN))
    first = pcapng_of(recs[:6])
    second = [shb(major=2), idb()] + [epb(0, h, f) for h, f in recs[6:]]
    return _pcapng(first + second)


def pcapng_epb_missing_interface() -> bytes:
    _, recs = pcap_records(_base(CLEAN))
    blocks = pcapng_of(recs)
    b = blocks[4]  # frame 3's EPB names interface 7; the section describes only interface 0
    blocks[4] = b[:8] + struct.pack("<I", 7) + b[12:]
    return _pcapng(blocks)


def pcapng_sections_cat() -> bytes:
    # `cat` of three ring-buffer files (tcpdump -W): each its own section with its own interface 0.
    _, recs = pcap_records(_base(CLEAN))
    return _pcapng(pcapng_of(recs[:3]) + pcapng_of(recs[3:7]) + pcapng_of(recs[7:]))


def pcapng_second_section_unknown_interface() -> bytes:
    # Section 1 describes interfaces 0 and 1 (frames 1-5 on both); section 2 only interface 0, and
    # its frame 8 names interface 1: an id of the first section, unknown in the second.
    _, recs = pcap_records(_base(CLEAN))
    first = [shb(), idb(b"veth0"), idb(b"veth1")] + [epb(i % 2, h, f) for i, (h, f) in enumerate(recs[:5])]
    second = [shb(), idb(b"veth2")] + [epb(1 if i == 7 else 0, h, f) for i, (h, f) in enumerate(recs[5:], 5)]
    return _pcapng(first + second)


def corrupt_gzip() -> bytes:
    # gzip of clean.pcap with one bit flipped in the middle of its deflate data: deflate reads on,
    # wrongly, to an end of stream of its own, where the CRC-32 check fails.
    blob = bytearray(gzip.compress(_base(CLEAN), compresslevel=9, mtime=0))
    blob[len(blob) // 2] ^= 0x10
    return bytes(blob)


def xz_bomb() -> bytes:
    # A real capture's header and first frame, then 17 MiB of zeros (a million empty records):
    # under 3 KB of xz, expanding over 6,000-fold: refused once 16 MiB are out (--max-expansion).
    head, recs = pcap_records(_base(REFUSED))
    return lzma.compress(pcap_join(head, recs[:1]) + bytes(17 * 1024 * 1024), preset=9)


def gzip_bomb() -> bytes:
    # A real capture's header and first frame, then 8 MiB of zeros (zero-length records): about
    # 8 KB compressed. tests/test_malformed.py runs it with --max-decompressed 1000000.
    head, recs = pcap_records(_base(REFUSED))
    raw = pcap_join(head, recs[:1]) + bytes(8 * 1024 * 1024)
    return gzip.compress(raw, compresslevel=9, mtime=0)


def truncated_gzip() -> bytes:
    # gzip of clean.pcap cut at 60%: the stream ends early part way through the frames.
    blob = gzip.compress(_base(CLEAN), compresslevel=9, mtime=0)
    return blob[: len(blob) * 6 // 10]


def text_file() -> bytes:
    return b"tcpdump: listening on eth0, link-type EN10MB (Ethernet), snapshot length 262144 bytes\n"


# -- the cases -------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Case:
    """One malformed input and what pcapsleuth must do with it."""

    name: str  # file name in tests/malformed/ (or what the test creates at run time)
    group: str
    damage: str  # what is wrong, in one line
    build: Callable[[], bytes] | None  # None: made by the test at run time (directory, FIFO, empty)
    exit: int  # expected exit code of `pcapsleuth analyze --no-html --json - FILE`
    error: str | None = None  # for exit != 0: a piece of the one-line message
    frames: int | None = None  # for exit 0: frames read
    damage_frames: dict[str, list[int]] = dataclasses.field(default_factory=dict)  # kind -> frames, exactly
    args: tuple[str, ...] = ()

    def expected(self) -> str:
        if self.exit:
            return f"exit {self.exit}: `{self.error}`"
        if not self.damage_frames:
            return f"exit 0: {self.frames} frames read, no damage"
        listed = "; ".join(f"`{k}` frame{'s' if len(v) > 1 else ''} {', '.join(map(str, v))}"
                           for k, v in sorted(self.damage_frames.items()))
        return f"exit 0, partial: {self.frames} frames read; damage {listed}"


CASES: list[Case] = [
    # headers and framing
    Case("truncated-global-header.pcap", "headers and framing", "pcap file of 20 bytes: the global header is 24",
         truncated_global_header, 4, error="pcap global header cut short (20 of 24 bytes)"),
    Case("truncated-record-header.pcap", "headers and framing",
         "5 whole records, then 10 of frame 6's 16 record-header bytes", truncated_record_header, 0,
         frames=5, damage_frames={"truncated_record": [6]}),
    Case("truncated-record-body.pcap", "headers and framing",
         "5 whole records, then frame 6's header and 30 of its 74 bytes", truncated_record_body, 0,
         frames=5, damage_frames={"truncated_record": [6]}),
    Case("caplen-past-eof.pcap", "headers and framing",
         "frame 4's caplen is 5,000: more than the rest of the file", caplen_past_eof, 0,
         frames=3, damage_frames={"truncated_record": [4]}),
    Case("caplen-insane.pcap", "headers and framing",
         "frame 4's caplen is 1 GiB (above the 262,144-byte maximum)", caplen_insane, 0,
         frames=3, damage_frames={"caplen_insane": [4]}),
    Case("caplen-over-snaplen.pcap", "headers and framing",
         "snaplen 60 in the global header; the SYN frames 3, 5, 7 have 74 bytes", caplen_over_snaplen, 0,
         frames=8, damage_frames={"caplen_over_snaplen": [3, 5, 7]}),
    # inner headers
    Case("ipv4-ihl-below-20.pcap", "inner headers", "frame 4's IPv4 header length is 16 (IHL 4)",
         ipv4_ihl_below_20, 0, frames=10, damage_frames={"undecodable": [4]}),
    Case("tcp-offset-below-5.pcap", "inner headers", "frame 6's TCP data offset is 4 (16 bytes)",
         tcp_offset_below_5, 0, frames=10, damage_frames={"undecodable": [6]}),
    Case("tcp-offset-past-packet.pcap", "inner headers",
         "frame 5's TCP data offset is 15 (60 bytes) in a 32-byte segment", tcp_offset_past_packet, 0,
         frames=10, damage_frames={"undecodable": [5]}),
    Case("ipv6-ext-chain-endless.pcap", "inner headers",
         "frame 6: 40 destination-options headers, each naming the next, to the end of the frame",
         ipv6_ext_chain_endless, 0, frames=12, damage_frames={"undecodable": [6]}),
    # pcapng
    Case("pcapng-block-length-0.pcapng", "pcapng", "frame 5's EPB has block length 0",
         pcapng_block_length(0), 0, frames=4, damage_frames={"bad_block": [5]}),
    Case("pcapng-block-length-unaligned.pcapng", "pcapng", "frame 5's EPB has block length 110 (not a multiple of 4)",
         pcapng_block_length(110), 0, frames=4, damage_frames={"bad_block": [5]}),
    Case("pcapng-block-length-huge.pcapng", "pcapng", "frame 5's EPB has block length 0x7ffffff0 (2 GiB)",
         pcapng_block_length(0x7FFFFFF0), 0, frames=4, damage_frames={"bad_block": [5]}),
    Case("pcapng-shb-version-2.pcapng", "pcapng", "the section header says version 2.0 (only 1.x exists)",
         pcapng_shb_version, 4, error="pcapng section header version 2.0 is not supported"),
    Case("pcapng-second-shb-version-2.pcapng", "pcapng",
         "frames 1-6 in a good section, then a second section of version 2.0", pcapng_second_shb_version, 0,
         frames=6, damage_frames={"bad_block": [7]}),
    Case("pcapng-epb-missing-interface.pcapng", "pcapng",
         "frame 3's EPB names interface 7; the section has only interface 0", pcapng_epb_missing_interface, 0,
         frames=10, damage_frames={"unknown_interface": [3]}),
    Case("pcapng-sections-cat.pcapng", "pcapng",
         "three ring-buffer files `cat`ed: three sections, each describing its own interface 0", pcapng_sections_cat,
         0, frames=10),
    Case("pcapng-second-section-unknown-interface.pcapng", "pcapng",
         "section 1 describes interfaces 0 and 1, section 2 only 0; its frame 8 names interface 1",
         pcapng_second_section_unknown_interface, 0, frames=10, damage_frames={"unknown_interface": [8]}),
    # not captures
    Case("gzip-bomb.pcap.gz", "compressed",
         "8 KB of gzip expanding to 8 MiB (run with --max-decompressed 1000000)", gzip_bomb, 5,
         error="decompresses to more than 1,000,000 bytes", args=("--max-decompressed", "1000000")),
    Case("truncated.pcap.gz", "compressed", "gzip of clean.pcap cut at 60% of its compressed bytes (462 of "
         "928 bytes decompress)", truncated_gzip, 0, frames=4,
         damage_frames={"truncated_file": [5], "truncated_record": [5]}),
    Case("corrupt.pcap.gz", "compressed", "gzip of clean.pcap, one bit flipped in the middle (byte 222 of 445): "
         "deflate reads on, wrongly, and only a CRC-32 check fails", corrupt_gzip, 5,
         error="corrupt gzip data (Error -3 while decompressing data: incorrect data check), noticed at compressed "
               "byte 227 in member 1 (from the start of the file); nothing before it was verified"),
    Case("xz-bomb.pcap.xz", "compressed", "2.6 KB of xz expanding to 17 MiB of empty records (6,000-fold)",
         xz_bomb, 5, error="beyond --max-expansion 1,000; refusing"),
    Case("empty.pcap", "not captures", "0 bytes (created by the test)", None, 4,
         error="empty file (0 bytes), not a capture"),
    Case("a-directory.pcap", "not captures", "a directory (created by the test)", None, 3,
         error="is a directory, not a capture file"),
    Case("a-fifo.pcap", "not captures", "a FIFO with no writer (created by the test)", None, 3,
         error="is a FIFO, not a regular file"),
    Case("tcpdump-output.txt", "not captures", "a text file (tcpdump's banner)", text_file, 4,
         error="not a pcap or pcapng capture (magic 74637064)"),
]


def readme() -> str:
    lines = [
        "# Malformed captures",
        "",
        "Small files, each a real sample with one kind of damage (built by `make_malformed.py`,",
        "deterministic; `python3 tests/malformed/make_malformed.py` rewrites them and this table).",
        "`tests/test_malformed.py` runs every row through `pcapsleuth analyze --no-html --json - FILE`",
        "and checks the exit code and the one-line error, or the frames read and the damage listed by",
        "frame number (all of it: no other damage kind may appear). Exit codes: README \"Exit codes\".",
        "",
        "| kind | file | damage | expected |",
        "|---|---|---|---|",
    ]
    for c in CASES:
        lines.append(f"| {c.group} | `{c.name}` | {c.damage} | {c.expected()} |")
    return "\n".join(lines) + "\n"


def outputs() -> dict[str, bytes]:
    files = {c.name: c.build() for c in CASES if c.build is not None}
    files["README.md"] = readme().encode()
    return files


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, data in outputs().items():
        path = HERE / name
        if check:
            if not path.exists() or path.read_bytes() != data:
                stale.append(name)
        else:
            path.write_bytes(data)
    if stale:
        print("out of date: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
