"""Streaming capture reader: pcap and pcapng records, compressed or not.

This module knows file formats and nothing about protocols. It yields one raw record per frame,
numbered exactly as Wireshark numbers them, with integer-nanosecond UTC timestamps, and records
whatever damage it meets in a :class:`DamageLog` instead of raising.

It reads through a bounded buffer: memory does not grow with the size of the capture.

Formats
-------
* pcap: both byte orders, microsecond (``a1b2c3d4``) and nanosecond (``a1b23c4d``) magic, and the
  "modified" Kuznetzov pcap (``a1b2cd34``) with its 24-byte record headers.
* pcapng: several sections of either byte order; each Interface Description Block keeps its own
  link type, snaplen, ``if_tsresol``, ``if_tsoffset``, ``if_name`` and ``if_description``. Enhanced,
  Simple and the obsolete Packet blocks are frames; comments, interface ids and the EPB direction
  flags are kept.
* gzip, bzip2 and xz input, recognised by magic number, decompressed as a stream with bounds on the
  total and on the expansion ratio.

Damage kinds (``DamageLog.kind``): ``truncated_record``, ``snaplen_cut``, ``caplen_over_snaplen``,
``caplen_insane``, ``bad_block``, ``unknown_interface``, ``too_many_interfaces``, ``time_backwards``,
``time_out_of_range``, ``truncated_file`` (a compressed stream that ends early), ``corrupt_compressed``
(one its decompressor rejects: where that was noticed, and what is unverified),
plus the decoder's ``undecodable``, ``truncated_header`` and ``ip_len_exceeds_frame`` kinds.
"""

from __future__ import annotations

import bz2
import collections
import contextlib
import dataclasses
import io
import lzma
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Any, BinaryIO, TypeVar, Union

from .errors import (
    CaptureNotFoundError,
    CaptureOpenError,
    DecompressionError,
    EmptyCaptureError,
    NotACaptureError,
    PcapsleuthError,
    TruncatedHeaderError,
)

__all__ = [
    "CaptureSource",
    "DamageLog",
    "Interface",
    "FrameHandler",
    "Record",
    "RecordReader",
    "open_capture",
    "LINKTYPE_NAMES",
    "MAX_CAPLEN",
    "MAX_EXPANSION",
]

Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, BinaryIO, IO[bytes]]

#: Wireshark refuses records larger than this (WTAP_MAX_PACKET_SIZE_STANDARD); so do we.
MAX_CAPLEN = 262_144
#: A pcapng block larger than this is treated as corrupt (Wireshark uses the same order of size).
MAX_BLOCK = 16 * 1024 * 1024 + 4096
_CHUNK = 1 << 20
#: Frames listed per damage kind; the count goes on beyond it.
DAMAGE_FRAMES_KEPT = 200
#: Timestamps are int64 nanoseconds downstream (numpy, pandas' datetime64[ns]): 1970 .. 2262. A
#: pcap timestamp always fits; a pcapng one (64-bit ticks, if_tsresol, a signed if_tsoffset) may not.
TS_MAX = (1 << 63) - 1
#: pcapng comments kept (frame comments, and section comments, each); the rest are only counted.
#: A comment is up to 64 KiB: a crafted file must not turn into gigabytes of strings.
MAX_COMMENTS = 1000
#: Interfaces kept per section. Interfaces belong to their section: each section header starts a
#: new interface table (``cat`` of ring-buffer files gives one section, one interface each). Further
#: IDBs of a section are damage (``too_many_interfaces``) and the frames naming them
#: ``unknown_interface``: each costs far more memory than its 20 bytes on disk.
MAX_INTERFACES = 4096
#: Interfaces kept across the file, all sections together (about 200 bytes each in memory and as
#: much again in the JSON): 16 sections of 4,096, or a ``cat`` of 65,536 one-interface files.
MAX_FILE_INTERFACES = 65_536

LINKTYPE_NAMES = {
    0: "NULL",
    1: "EN10MB",
    9: "PPP",
    10: "FDDI",
    12: "RAW",
    14: "RAW",
    50: "PPP_HDLC",
    51: "PPP_ETHER",
    101: "RAW",
    104: "C_HDLC",
    105: "IEEE802_11",
    108: "LOOP",
    113: "LINUX_SLL",
    117: "PFLOG",
    127: "IEEE802_11_RADIOTAP",
    228: "IPV4",
    229: "IPV6",
    239: "NFLOG",
    276: "LINUX_SLL2",
}

_PCAP_MAGICS = {
    # magic bytes as found at offset 0 -> (byte order, nanoseconds per tick, record header size)
    b"\xd4\xc3\xb2\xa1": ("<", 1000, 16),
    b"\xa1\xb2\xc3\xd4": (">", 1000, 16),
    b"\x4d\x3c\xb2\xa1": ("<", 1, 16),
    b"\xa1\xb2\x3c\x4d": (">", 1, 16),
    b"\x34\xcd\xb2\xa1": ("<", 1000, 24),  # Alexey Kuznetzov's modified pcap
    b"\xa1\xb2\xcd\x34": (">", 1000, 24),
}
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"

class _BlockStructs:
    """Precompiled pcapng block layouts for one byte order."""

    def __init__(self, order: str) -> None:
        self.block = struct.Struct(order + "II").unpack_from
        self.u32 = struct.Struct(order + "I").unpack_from
        self.epb = struct.Struct(order + "IIIII").unpack_from
        self.epb_whole = struct.Struct(order + "IIIIIII").unpack_from  # block header + EPB header
        self.pb = struct.Struct(order + "HHIIII").unpack_from


_PCAPNG_STRUCTS = {"<": _BlockStructs("<"), ">": _BlockStructs(">")}

_BT_SHB = 0x0A0D0D0A
_BT_IDB = 0x00000001
_BT_PB = 0x00000002  # obsolete Packet Block
_BT_SPB = 0x00000003
_BT_EPB = 0x00000006
_BT_JOURNAL = 0x00000009  # systemd journal export: Wireshark numbers it as a frame
#: The smallest length of each block type that holds its fixed fields (header and trailer included).
_MIN_BLOCK = {_BT_SHB: 28, _BT_IDB: 20, _BT_PB: 32, _BT_SPB: 16, _BT_EPB: 32}


@dataclasses.dataclass
class Interface:
    """One capture interface (a pcapng IDB, or the single interface of a pcap file)."""

    id: int  # index across the whole file (Wireshark's frame.interface_id counts within a section)
    linktype: int
    snaplen: int
    tsresol_ns: tuple[int, int]  # ticks -> ns as (multiplier, divisor)
    tsoffset_s: int = 0
    name: str | None = None
    description: str | None = None
    section: int = 0
    fcslen: int | None = None
    frames: int = 0

    @property
    def linktype_name(self) -> str:
        return LINKTYPE_NAMES.get(self.linktype, f"LINKTYPE_{self.linktype}")

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "link_type": self.linktype_name,
            "linktype": self.linktype,
            "snaplen": self.snaplen,
            "tsresol_ns": self.tsresol_ns[0] / self.tsresol_ns[1],
            "tsoffset_s": self.tsoffset_s,
            "section": self.section,
            "frames": self.frames,
        }


class DamageLog:
    """Counts damage by kind and keeps the first frame numbers of each, with a detail text."""

    def __init__(self) -> None:
        self._kinds: dict[str, list[object]] = {}

    def add(self, kind: str, frame: int, detail: str | None = None) -> None:
        entry = self._kinds.get(kind)
        if entry is None:
            self._kinds[kind] = [1, [frame], detail]
            return
        entry[0] = int(entry[0]) + 1  # type: ignore[call-overload]
        frames = entry[1]
        assert isinstance(frames, list)
        if len(frames) < DAMAGE_FRAMES_KEPT:
            frames.append(frame)

    def count(self, kind: str) -> int:
        entry = self._kinds.get(kind)
        return 0 if entry is None else int(entry[0])  # type: ignore[call-overload]

    def __bool__(self) -> bool:
        return bool(self._kinds)

    def to_list(self) -> list[dict[str, object]]:
        """``[{kind, count, frames, detail}]`` sorted by kind: the JSON ``capture.damage``."""
        out: list[dict[str, object]] = []
        for kind in sorted(self._kinds):
            count, frames, detail = self._kinds[kind]
            item: dict[str, object] = {"kind": kind, "count": count, "frames": frames}
            if detail:
                item["detail"] = detail
            out.append(item)
        return out


# A raw record: (frame number, ts ns, caplen, wirelen, interface id, frame bytes, epb direction)
Record = tuple[int, int, int, int, int, bytes, int]

_T = TypeVar("_T")
#: Called once per frame by :meth:`RecordReader.walk` as
#: ``handler(buf, start, caplen, wirelen, no, ts, iface, direction, linktype)``: the frame is
#: ``buf[start:start + caplen]``, read in place (the reader's buffer; valid during the call only),
#: so the decoder's common path never copies a frame. ``iface`` and ``linktype`` are -1 for a
#: frame naming an interface the capture never described.
FrameHandler = Callable[[bytes, int, int, int, int, int, int, int, int], _T]


def _record(buf: bytes, start: int, caplen: int, wirelen: int, no: int, ts: int, iface: int, direction: int,
            linktype: int) -> Record:
    return no, ts, caplen, wirelen, iface, buf[start:start + caplen], direction


_COMPRESSED_MAGIC = {"gzip": b"\x1f\x8b", "bzip2": b"BZh", "xz": b"\xfd7zXZ\x00"}
_IN_CHUNK = 64 * 1024
#: Compressed bytes per decompressor call: a failing call is replayed byte by byte (gzip), and
#: bzip2/xz lose at most the output of one call at the damage.
_FEED = 8192


#: The expansion ratio (decompressed bytes per compressed byte) is judged only after this much
#: output: a small capture decompresses whatever its ratio. A bomb is refused after reading this much
#: (16 MiB of 16-byte empty records is a million frames, about two seconds of analysis).
EXPANSION_FLOOR = 16 * 1024**2
#: Default ``--max-expansion``. Measured at the maximum levels (gzip -9, bzip2 -9, xz -9e) on the 140
#: captures of samples/ and the Zeek corpus: median 2.1-2.5x, highest 39x (gzip), 55x (bzip2), 97x (xz).
#: Captures of zero-filled payloads (``dd if=/dev/zero | nc``, recorded on loopback) reach 457x (gzip),
#: 2,384x (xz) and 3,352x (bzip2): those need the flag. A capture header and zeros (empty records)
#: expand 1,029x (gzip; deflate's limit is 1,032x), 6,849x (xz) and over 1,000,000x (bzip2).
MAX_EXPANSION = 1000.0
#: Decompressed bytes held back from the reader until the decompressor has gone this far beyond them
#: without noticing damage, or has verified them (the check at the end of a gzip member or a
#: bzip2/xz stream). Deflate notices damage at the member's CRC (85% of single-bit flips in a
#: corpus capture) or within about 100 compressed bytes of it; bzip2 rejects a damaged block
#: before or at the end of its output (up to 900 kB). A member up to this size is analyzed only
#: once verified; in a longer one, the output just before a rejection is not analyzed.
_HOLD = 1 << 20
_PIECE = 1 << 18  # output per decompressor call
#: What each format checks, and where.
_CHECKED_BY = {"gzip": "its CRC-32 at the end of each member",
               "bzip2": "a CRC at the end of each block (up to 900 kB) and of the stream",
               "xz": "a check at the end of each block (one block per stream unless written by xz -T)"}


class _BoundedStream(io.RawIOBase):
    """Decompresses gzip, bzip2 or xz as a stream, bounded: never more in total than ``limit`` (a
    gzip bomb stops at the bound, having held about one read's worth in memory), and, past
    :data:`EXPANSION_FLOOR`, never more than ``max_expansion`` times the compressed bytes read (a
    bomb costs seconds, not hours of tiny frames).

    The decompressor objects are driven directly (not GzipFile/BZ2File/LZMAFile) so that a stream
    cut short or corrupt part way yields what came before the damage, then ends: ``error`` says what
    happened and the reader records it as damage (``truncated_file`` when the data ends early,
    ``corrupt_compressed`` when the decompressor rejects it: ``corrupt``). Concatenated members
    (``cat a.gz b.gz``) are read one after the other, like ``gzip -d``; nothing after a corrupt one.

    What is sound: a decompressor notices damage at or after where it is, and deflate mostly only
    at the member's CRC: what it gave before is not verified. So output reaches the reader only
    once verified (its member or stream ended, checks passed) or once :data:`_HOLD` more bytes have
    been decompressed after it without complaint. At a rejection, the held bytes are dropped: a
    member smaller than that is analyzed verified or not at all, and a longer one up to about a
    mebibyte before the damage was noticed (unverified, and ``error`` says so). For gzip, the
    failing call is replayed byte by byte to name the compressed byte where the damage was noticed.
    """

    def __init__(self, raw: IO[bytes], kind: str, path: str, limit: int,
                 max_expansion: float = MAX_EXPANSION) -> None:
        self._raw = raw
        self._kind = kind
        self._path = path
        self._limit = limit
        self._max_expansion = max_expansion
        self._dec: Any = self._new()
        self._tail = b""  # zlib: compressed input given but not yet consumed (output was full)
        self._pending = b""  # compressed input read; from _pos on not yet given
        self._pos = 0
        self._chunks: collections.deque[bytes] = collections.deque()  # output held, oldest first
        self._off = 0  # bytes of _chunks[0] already returned
        self._held = 0  # bytes in _chunks from _off on
        self._verified = 0  # the first _verified of them are verified
        self._done = False
        self.produced = 0
        #: Compressed bytes handed to the decompressors so far (the file offset of the next one).
        self.fed = 0
        self._made = 0  # output made by the decompressors (returned, held or dropped)
        self.member = 1  # gzip member, or bzip2/xz stream, being read (from 1)
        self._member_at = 0  # its compressed offset
        self._member_out = 0  # its decompressed offset
        #: Why the stream ended before its end-of-stream marker (truncated or corrupt), or None.
        self.error: str | None = None
        #: True when ``error`` is a decompressor rejecting the data (not the input ending early).
        self.corrupt = False
        #: Corrupt: how many bytes of the damaged member were returned (unverified) before the rejection.
        self.unverified = 0
        self.summary = ""  # corrupt: what was rejected, and where
        self.dropped = 0  # corrupt: decompressed bytes held back, then dropped

    def _new(self) -> Any:
        if self._kind == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        if self._kind == "bzip2":
            return bz2.BZ2Decompressor()
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ)

    def readable(self) -> bool:
        return True

    def _releasable(self) -> int:
        if self._done:
            return self._verified if self.corrupt else self._held
        return max(self._verified, self._held - _HOLD)

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        want = len(b)
        while not self._done and self._releasable() < min(want, _PIECE):
            self._produce()
        n = min(want, self._releasable())
        if not n:
            return 0
        view = memoryview(b)
        pos = 0
        while pos < n:
            chunk = self._chunks[0]
            take = min(n - pos, len(chunk) - self._off)
            view[pos:pos + take] = chunk[self._off:self._off + take]
            pos += take
            self._off += take
            if self._off == len(chunk):
                self._chunks.popleft()
                self._off = 0
        self._held -= n
        self._verified = max(0, self._verified - n)
        self.produced += n
        if self.produced > self._limit:
            raise DecompressionError(
                self._path,
                f"decompresses to more than {self._limit:,} bytes; refusing (raise --max-decompressed)",
            )
        return n

    def _produce(self) -> None:
        """One decompressor call: its output is held; a member's end verifies all that is held."""
        try:
            out = self._step(_PIECE)
        except _Rejected as rej:
            self._fail(rej.exc, rej.at)
            return
        except (OSError, EOFError, lzma.LZMAError, ValueError) as exc:
            self._fail(exc, self.fed)
            return
        if out is None:
            self._done = True
            return
        if out:
            self._chunks.append(out)
            self._held += len(out)
            self._made += len(out)
            if self._max_expansion and self._made > EXPANSION_FLOOR:
                self._check_expansion()
        if self._dec.eof:
            self._verified = self._held

    def _check_expansion(self) -> None:
        """Output made against the compressed bytes it came from: exact for gzip (zlib says what
        it has not consumed); for bzip2/xz up to one call's input (8 KiB) too many, never too few."""
        used = max(1, self.fed - len(self._tail))
        if self._made > self._max_expansion * used:
            raise DecompressionError(
                self._path,
                f"expands {self._made / used:,.0f}-fold ({self._made:,} bytes from the first {used:,} "
                f"compressed bytes), beyond --max-expansion {self._max_expansion:,g}; refusing (a "
                "decompression bomb? raise --max-expansion, or 0 for no bound)",
            )

    def _fail(self, exc: Exception, at: int) -> None:
        """The decompressor rejected the data, noticing at compressed byte ``at`` (gzip: exactly;
        bzip2/xz: within the last call's input). What it gave of the member and holds is dropped."""
        dropped = self._held - self._verified
        kept = b"".join(self._chunks)[self._off:self._off + self._verified]  # (at most _HOLD + _PIECE)
        self._chunks = collections.deque([kept] if kept else [])
        self._off = 0
        self._held = len(kept)
        self.unverified = self._made - dropped - self._member_out
        unit = "member" if self._kind == "gzip" else "stream"
        where = "the start of the file" if self.member == 1 else f"compressed byte {self._member_at:,}"
        self.summary = (f"corrupt {self._kind} data ({exc}), noticed {'at' if self._kind == 'gzip' else 'by'} "
                        f"compressed byte {at:,} in {unit} {self.member:,} (from {where})")
        self.dropped = dropped
        self.error = self.corrupt_detail(None)
        self.corrupt = True
        self._done = True

    def corrupt_detail(self, frames: tuple[int, int] | None, *, analyzed: bool = True) -> str:
        """What was rejected, where, and what of the damaged member was read anyway (``frames``:
        the first and last frame read from it, when the reader knows them; ``analyzed``: False
        when the bytes after the reader's last frame were decompressed only to check them)."""
        unit = "member" if self._kind == "gzip" else "stream"
        read = f"Frames {frames[0]:,} to {frames[1]:,}" if frames else "What was read of it"
        size = f" (the {unit}'s first {self.unverified:,} bytes)" if analyzed else ""
        fate = ""
        if self.unverified and (frames or analyzed):
            fate = (f"{read}{size} were read unverified: {self._kind} checks its data by "
                    f"{_CHECKED_BY[self._kind]}, and damage is noticed at or after where it is. ")
        return (f"{self.summary}; nothing after it is read. {fate}The {self.dropped:,} bytes decompressed just "
                f"before it were held back and are not read")

    def refusal(self) -> str:
        """The error when nothing of the capture is readable: ``error``, or for corrupt data, why none is read."""
        if not self.corrupt:
            return self.error or ""
        return (f"{self.summary}; nothing before it was verified, so nothing is analyzed "
                f"('{self._kind} -dc' "
                "decompresses what it can)")

    def _input(self) -> bytes | None:
        """The next slice of compressed input; None at its end."""
        if self._pos >= len(self._pending):
            self._pending = self._raw.read(_IN_CHUNK)
            self._pos = 0
            if not self._pending:
                return None
        piece = self._pending[self._pos:self._pos + _FEED]
        self._pos += _FEED
        self.fed += len(piece)
        return piece

    def _step(self, want: int) -> bytes | None:
        """Up to ``want`` bytes of output (possibly none yet); None at the end of the input."""
        dec = self._dec
        if dec.eof:
            rest = dec.unused_data
            magic = _COMPRESSED_MAGIC[self._kind]
            while len(rest) < len(magic):
                more = self._input()
                if more is None:
                    break
                rest += more
            if not rest.startswith(magic):
                return None  # the end, or padding after the last member: ignored, as gzip -d does
            self._dec = dec = self._new()
            self._tail = b""
            self.member += 1
            self._member_at = self.fed - len(rest)
            self._member_out = self._made
            feed = rest
        elif self._kind == "gzip" and self._tail:
            feed = b""
        elif self._kind == "gzip" or dec.needs_input:
            more = self._input()
            if more is None:
                unit = "member" if self._kind == "gzip" else "stream"
                self.error = (f"{self._kind} stream ends early, after {self._made:,} bytes (cut short?); the check at "
                              f"the end of {unit} {self.member:,} was never reached, so what was read of it is "
                              "unverified")
                return None
            feed = more
        else:
            feed = b""
        if self._kind != "gzip":
            return bytes(dec.decompress(feed, want))
        data = self._tail + feed
        saved = dec.copy()
        try:
            out: bytes = dec.decompress(data, want)
        except zlib.error as exc:
            raise _Rejected(exc, self._locate(saved, data)) from None
        self._tail = dec.unconsumed_tail
        return out

    def _locate(self, dec: Any, data: bytes) -> int:
        """Replay a failed zlib call byte by byte: the compressed offset where it fails."""
        start = self.fed - len(data)  # the compressed offset of data[0]
        for i in range(len(data)):
            try:
                dec.decompress(data[i:i + 1])
            except zlib.error:
                return start + i
        return self.fed  # (cannot happen: the same bytes failed as a whole)


class _Rejected(Exception):
    """zlib rejected the data, noticing at compressed byte ``at``."""

    def __init__(self, exc: Exception, at: int) -> None:
        self.exc = exc
        self.at = at


def _open_path(source: Source) -> tuple[BinaryIO, str, int | None]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return io.BytesIO(data), "<bytes>", len(data)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if path in ("-", "/dev/stdin"):
            import sys

            return sys.stdin.buffer, "<stdin>", None
        if os.path.isdir(path):
            raise CaptureOpenError(path, "is a directory, not a capture file")
        import stat

        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            raise CaptureNotFoundError(path, "no such file") from None
        except OSError as exc:
            raise CaptureOpenError(path, exc.strerror or str(exc)) from None
        if not stat.S_ISREG(mode):
            # Opening a FIFO blocks until a writer appears, and a device or socket is no capture
            # file: refuse by name instead of hanging. Piped input is read from stdin ("-").
            kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
            raise CaptureOpenError(path, f"is {kind}, not a regular file; pipe it to stdin as '-' instead")
        try:
            f = open(path, "rb")  # noqa: SIM115 - owned by the CaptureSource
        except FileNotFoundError:
            raise CaptureNotFoundError(path, "no such file") from None
        except PermissionError:
            raise CaptureOpenError(path, "permission denied") from None
        except OSError as exc:
            raise CaptureOpenError(path, exc.strerror or str(exc)) from None
        try:
            st = os.fstat(f.fileno())
            size = st.st_size if stat.S_ISREG(st.st_mode) else None
        except OSError:
            size = None
        return f, path, size
    if hasattr(source, "read"):
        name = getattr(source, "name", None)
        return source, name if isinstance(name, str) else "<stream>", None  # type: ignore[return-value]
    raise TypeError(f"cannot read a capture from {type(source).__name__}")


class CaptureSource:
    """An opened capture: format detected, decompression applied, ready to yield records."""

    def __init__(self, source: Source, *, max_decompressed: int = 64 * 1024**3,
                 max_expansion: float = MAX_EXPANSION) -> None:
        raw, self.path, self.size = _open_path(source)
        self._owned = not hasattr(source, "read") and self.path != "<stdin>"
        self._raw = raw
        self.compression: str | None = None
        self._bounded: _BoundedStream | None = None
        try:
            head = self._peek(raw, 6)
        except OSError as exc:
            self.close()
            raise CaptureOpenError(self.path, exc.strerror or str(exc)) from None
        if not head:
            self.close()
            raise EmptyCaptureError(self.path, "empty file (0 bytes), not a capture")
        stream: BinaryIO = raw
        for kind, magic in _COMPRESSED_MAGIC.items():
            if head.startswith(magic):
                self.compression = kind
        if head[:4] == b"\x28\xb5\x2f\xfd":
            self.close()
            raise NotACaptureError(self.path, "zstd-compressed; decompress it first (zstd -d)")
        if self.compression is not None:
            self._bounded = _BoundedStream(raw, self.compression, self.path, max_decompressed, max_expansion)
            stream = io.BufferedReader(self._bounded, buffer_size=_CHUNK)
        self._stream = stream
        try:
            magic = self._read_exact_or_less(4)
        except DecompressionError:  # the bound was hit while reading the magic (a bomb)
            self.close()
            raise
        if len(magic) < 4 and self._bounded is not None and self._bounded.error:
            self.close()
            raise DecompressionError(self.path, self._bounded.refusal())
        if magic == _PCAPNG_SHB:
            self.format = "pcapng"
        elif magic in _PCAP_MAGICS:
            self.format = "pcap"
        else:
            self.close()
            what = f" after {self.compression} decompression" if self.compression else ""
            raise NotACaptureError(self.path, f"not a pcap or pcapng capture{what} (magic {magic.hex() or 'none'})")
        try:
            #: The bytes read so far: the magic and the file's own header (the pcap global header,
            #: or the whole first pcapng section header block). Record reading starts with them.
            self._magic = magic + self._file_header(magic)
        except TruncatedHeaderError:
            self.close()
            if self._bounded is not None and self._bounded.error:
                raise DecompressionError(self.path, self._bounded.refusal()) from None
            raise
        except PcapsleuthError:
            self.close()
            raise

    def _file_header(self, magic: bytes) -> bytes:
        """Read and check the rest of the file header; raise :class:`TruncatedHeaderError` when
        nothing of the capture could be read: the file ends inside its header, or the header
        cannot describe any readable record (a damaged frame later on is damage, not an error)."""
        if self.format == "pcap":
            rest = self._stream.read(20)
            if len(rest) < 20:
                raise TruncatedHeaderError(self.path, f"pcap global header cut short ({4 + len(rest)} of 24 bytes)")
            return rest
        head = self._stream.read(8)
        if len(head) < 8:
            raise TruncatedHeaderError(self.path, f"pcapng section header cut short ({4 + len(head)} of 28+ bytes)")
        bom = head[4:8]
        if bom not in (b"\x4d\x3c\x2b\x1a", b"\x1a\x2b\x3c\x4d"):
            raise NotACaptureError(self.path, f"pcapng section header with unknown byte-order magic {bom.hex()}")
        order = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
        (blen,) = struct.unpack(order + "I", head[:4])
        if blen < 28 or blen % 4 or blen > MAX_BLOCK:
            raise NotACaptureError(self.path, f"pcapng section header has impossible length {blen}")
        body = self._stream.read(blen - 12)
        if len(body) < blen - 12:
            raise TruncatedHeaderError(self.path, f"pcapng section header cut short ({12 + len(body)} of {blen} bytes)")
        major, minor = struct.unpack_from(order + "HH", body, 0)
        if major != 1:
            raise NotACaptureError(self.path, f"pcapng section header version {major}.{minor} is not supported "
                                              "(only 1.x exists)")
        (trailer,) = struct.unpack_from(order + "I", body, blen - 16)
        if trailer != blen:
            raise NotACaptureError(self.path, f"pcapng section header: trailing length {trailer} differs from {blen}")
        return head + body

    @staticmethod
    def _peek(raw: BinaryIO, n: int) -> bytes:
        peek = getattr(raw, "peek", None)
        if peek is not None:
            try:
                return bytes(peek(n)[:n])
            except (OSError, ValueError):
                pass
        if raw.seekable():
            pos = raw.tell()
            data = raw.read(n)
            raw.seek(pos)
            return data
        # A pipe without peek: wrap it so the bytes we read are not lost.
        buffered = io.BufferedReader(raw, buffer_size=_CHUNK)  # type: ignore[type-var]
        data = bytes(buffered.peek(n)[:n])
        raise _Rewrap(buffered, data)

    def _read_exact_or_less(self, n: int) -> bytes:
        return self._stream.read(n)

    def close(self) -> None:
        if self._owned:
            with contextlib.suppress(OSError):
                self._raw.close()

    def __enter__(self) -> CaptureSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Rewrap(Exception):
    def __init__(self, stream: Any, head: bytes) -> None:
        self.stream = stream
        self.head = head


def open_capture(source: Source, *, max_decompressed: int = 64 * 1024**3,
                 max_expansion: float = MAX_EXPANSION) -> CaptureSource:
    """Open a capture from a path, bytes or a binary file object, detecting its format by magic.

    Compressed input is refused (:class:`DecompressionError`) beyond ``max_decompressed`` bytes, or
    beyond ``max_expansion`` times its compressed size once past :data:`EXPANSION_FLOOR` (0: no bound).
    """
    try:
        return CaptureSource(source, max_decompressed=max_decompressed, max_expansion=max_expansion)
    except _Rewrap as rw:
        return CaptureSource(rw.stream, max_decompressed=max_decompressed, max_expansion=max_expansion)


class RecordReader:
    """Iterates the records of an opened capture, keeping interfaces, comments and damage."""

    def __init__(self, src: CaptureSource, damage: DamageLog | None = None) -> None:
        self.src = src
        self.damage = damage if damage is not None else DamageLog()
        self.interfaces: list[Interface] = []
        self.comments: dict[int, list[str]] = {}  # frame number -> opt_comment values
        self.section_comments: list[str] = []
        self.comments_left_out = 0  # beyond MAX_COMMENTS
        self._n_comments = 0
        self.sections = 0
        self.frames = 0
        self.bytes_unread = 0
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self.shb_info: dict[str, str] = {}
        self._buf = b""
        self._pos = 0
        self._eof = False
        self._checked_rest = False

    # -- buffer -------------------------------------------------------------------------------
    def _fill(self, need: int) -> bool:
        """Make at least ``need`` bytes available from ``_pos``; False at end of input."""
        avail = len(self._buf) - self._pos
        if avail >= need:
            return True
        if self._eof:
            return False
        parts = [self._buf[self._pos :]]
        want = max(need - avail, _CHUNK)
        got = avail
        while got < need or not parts[1:]:
            chunk = self.src._stream.read(want)
            if not chunk:
                self._eof = True
                break
            parts.append(chunk)
            got += len(chunk)
            want = max(need - got, _CHUNK)
        self._buf = b"".join(parts)
        self._pos = 0
        return len(self._buf) >= need

    def _remaining(self) -> int:
        return len(self._buf) - self._pos

    # -- iteration ----------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Record]:
        return self.walk(_record)

    def walk(self, handler: FrameHandler[_T]) -> Iterator[_T]:
        """Yield ``handler(...)`` for every frame, in order (see :data:`FrameHandler`)."""
        self._buf = self.src._magic
        self._pos = 0
        if self.src.format == "pcap":
            return self._pcap(handler)
        return self._pcapng(handler)

    def _pcap(self, handler: FrameHandler[_T]) -> Iterator[_T]:
        if not self._fill(24):
            self.damage.add("truncated_file", 1, f"pcap global header cut short ({self._remaining()} of 24 bytes)")
            self.bytes_unread = self._remaining()
            return
        magic = self._buf[0:4]
        order, tick_ns, rec_size = _PCAP_MAGICS[magic]
        _maj, _min, _zone, _sigfigs, snaplen, network = struct.unpack_from(order + "HHiIII", self._buf, 4)
        linktype = network & 0x0FFFFFFF
        fcs = (network >> 28) & 0x7 if network & 0x10000000 else None  # "F" bit: FCS length
        iface = Interface(0, linktype & 0xFFFF, snaplen, (tick_ns, 1), fcslen=fcs)
        linktype = iface.linktype
        self.interfaces.append(iface)
        self.sections = 1
        self._pos = 24
        rec = struct.Struct(order + "IIII").unpack_from
        snap_limit = snaplen if 0 < snaplen < MAX_CAPLEN else MAX_CAPLEN
        damage = self.damage
        no = 0
        last_ts = -1
        # The loop keeps the buffer and position in locals and hands each frame to the handler
        # in place: this is the per-frame hot path of every analysis (see bench/README.md).
        buf = self._buf
        pos = 24
        size = len(buf)
        try:
            while True:
                if size - pos < rec_size:
                    self._pos = pos
                    if not self._fill(rec_size):
                        if self._remaining():
                            self._cut_short(no + 1, f"record header cut short: {self._remaining()} of {rec_size} bytes")
                            self.bytes_unread = self._remaining()
                        break
                    buf, pos = self._buf, self._pos
                    size = len(buf)
                sec, frac, caplen, wirelen = rec(buf, pos)
                if caplen > MAX_CAPLEN:
                    self._pos = pos
                    damage.add(
                        "caplen_insane",
                        no + 1,
                        f"record claims {caplen:,} captured bytes (more than {MAX_CAPLEN:,}); rest of file unreadable",
                    )
                    self.bytes_unread = self._remaining() + self._rest_size()
                    break
                start = pos + rec_size
                if size - start < caplen:
                    self._pos = pos
                    if not self._fill(rec_size + caplen):
                        self._cut_short(no + 1,
                                        f"record body cut short: {self._remaining() - rec_size} of {caplen} bytes")
                        self.bytes_unread = self._remaining()
                        break
                    buf, pos = self._buf, self._pos
                    size = len(buf)
                    start = pos + rec_size
                pos = start + caplen
                no += 1
                ts = sec * 1_000_000_000 + frac * tick_ns
                if ts < last_ts:
                    self._time_backwards(no, ts)
                else:
                    if last_ts < 0:
                        self.first_ts = ts
                    last_ts = ts
                if caplen < wirelen:
                    damage.add("snaplen_cut", no, "frame cut by the snapshot length")
                if caplen > snap_limit:
                    damage.add("caplen_over_snaplen", no, f"captured length above the file's snaplen {snaplen}")
                yield handler(buf, start, caplen, wirelen, no, ts, 0, 0, linktype)
            self._check_rest()
        finally:
            self.frames = no
            iface.frames = no
            self.last_ts = last_ts if last_ts >= 0 else None
            self._stream_end(no)

    def _rest_size(self) -> int:
        if self.src.size is None or self.src.compression:
            return 0
        try:
            return max(0, self.src.size - self.src._stream.tell())
        except (OSError, ValueError):
            return 0

    # -- pcapng -------------------------------------------------------------------------------
    def _pcapng(self, handler: FrameHandler[_T]) -> Iterator[_T]:
        damage = self.damage
        order = "<"
        st = _PCAPNG_STRUCTS[order]
        local_ifaces: list[Interface] = []
        clocks: list[tuple[int, int, int]] = []  # per local interface: ticks -> ns multiplier, divisor, offset
        no = 0
        last_ts = -1
        section = -1
        described = 0  # IDBs of the current section, kept or not (the local ids it defines)
        try:
            while True:
                buf = self._buf
                pos = self._pos
                if len(buf) - pos >= 28:
                    # The common block: an EPB of a known interface, no options, wholly in the buffer.
                    btype, blen, ifid, ts_hi, ts_lo, caplen, wirelen = st.epb_whole(buf, pos)
                    fast = (btype == _BT_EPB and blen == 32 + ((caplen + 3) & ~3) and blen <= len(buf) - pos
                            and blen <= MAX_BLOCK and ifid < len(local_ifaces)
                            and st.u32(buf, pos + blen - 4)[0] == blen)
                else:
                    fast = False
                if fast:
                    self._pos = pos + blen
                    no += 1
                    iface = local_ifaces[ifid]
                    mul, div, offset_ns = clocks[ifid]
                    ts = ((ts_hi << 32 | ts_lo) * mul // div if div != 1 else (ts_hi << 32 | ts_lo) * mul) + offset_ns
                    data_start = pos + 28
                    direction = 0
                else:
                    if len(buf) - pos < 12:
                        if not self._fill(12):
                            if self._remaining():
                                self._cut_short(no + 1,
                                                f"block header cut short ({self._remaining()} bytes at end of file)")
                                self.bytes_unread = self._remaining()
                            break
                        buf, pos = self._buf, self._pos
                    if buf[pos:pos + 4] == _PCAPNG_SHB:
                        bom = buf[pos + 8:pos + 12]
                        if bom == b"\x4d\x3c\x2b\x1a":
                            order = "<"
                        elif bom == b"\x1a\x2b\x3c\x4d":
                            order = ">"
                        else:
                            damage.add("bad_block", no + 1,
                                       f"section header with unknown byte-order magic {bom.hex()}")
                            self.bytes_unread = self._remaining()
                            break
                        st = _PCAPNG_STRUCTS[order]
                    btype, blen = st.block(buf, pos)
                    if blen < 12 or blen % 4 or blen > MAX_BLOCK:
                        damage.add(
                            "bad_block",
                            no + 1,
                            f"block type 0x{btype:08x} has impossible length {blen} at byte {self._consumed()}; "
                            "rest of file unreadable",
                        )
                        self.bytes_unread = self._remaining() + self._rest_size()
                        break
                    if len(buf) - pos < blen:
                        if not self._fill(blen):
                            self._cut_short(no + 1,
                                            f"block type 0x{btype:08x} cut short: {self._remaining()} of {blen} bytes")
                            self.bytes_unread = self._remaining()
                            break
                        buf, pos = self._buf, self._pos
                    (trailer,) = st.u32(buf, pos + blen - 4)
                    if trailer != blen:
                        damage.add(
                            "bad_block",
                            no + 1,
                            f"block type 0x{btype:08x}: trailing length {trailer} differs from {blen}; "
                            "rest of file unreadable",
                        )
                        self.bytes_unread = self._remaining()
                        break
                    body = pos + 8
                    end = pos + blen - 4
                    self._pos = pos + blen
                    if blen < _MIN_BLOCK.get(btype, 12):
                        # Framing is intact (both lengths agree) but the block cannot hold its own
                        # fixed fields: reading them would run into the next block, or past the data.
                        damage.add("bad_block", no + 1, f"block type 0x{btype:08x} too short for its fields "
                                                        f"({blen} bytes)")
                        if btype == _BT_SHB:
                            self.bytes_unread = self._remaining()
                            break
                        continue
                    if btype == _BT_EPB:
                        ifid, ts_hi, ts_lo, caplen, wirelen = st.epb(buf, body)
                        data_start = body + 20
                        opt_start = data_start + ((caplen + 3) & ~3)
                        no += 1
                        if opt_start > end:
                            damage.add("bad_block", no, f"captured length {caplen} runs past the end of its block")
                            caplen = max(0, end - data_start)
                            opt_start = end
                        direction = 0
                        if opt_start < end:
                            direction = self._epb_options(order, opt_start, end, no)
                        if ifid >= len(local_ifaces):
                            self._unknown_interface(no, ifid, max(section, 0), described)
                            yield handler(buf, data_start, caplen, wirelen, no,
                                          self._ts_in_range((ts_hi << 32 | ts_lo) * 1000, no), -1,
                                          direction, -1)
                            continue
                        iface = local_ifaces[ifid]
                        mul, div = iface.tsresol_ns
                        ticks = ts_hi << 32 | ts_lo
                        ts = (ticks * mul // div if div != 1 else ticks * mul) + iface.tsoffset_s * 1_000_000_000
                    elif btype == _BT_SPB:
                        (wirelen,) = st.u32(buf, body)
                        data_start = body + 4
                        if not local_ifaces:
                            no += 1
                            if described:
                                self._unknown_interface(no, 0, max(section, 0), described)
                            else:
                                damage.add("unknown_interface", no,
                                           "simple packet block before any interface description")
                            yield handler(buf, data_start, max(0, end - data_start), wirelen, no, max(last_ts, 0),
                                          -1, 0, -1)
                            continue
                        iface = local_ifaces[0]
                        caplen = min(wirelen, end - data_start)
                        if iface.snaplen:
                            caplen = min(caplen, iface.snaplen)
                        no += 1
                        direction = 0
                        # A simple packet block carries no timestamp; keep time monotonic for analysis.
                        ts = last_ts if last_ts >= 0 else 0
                    elif btype == _BT_PB:
                        ifid, _drops, ts_hi, ts_lo, caplen, wirelen = st.pb(buf, body)
                        data_start = body + 20
                        opt_start = data_start + ((caplen + 3) & ~3)
                        no += 1
                        if opt_start > end:
                            damage.add("bad_block", no, f"captured length {caplen} runs past the end of its block")
                            caplen = max(0, end - data_start)
                            opt_start = end
                        direction = self._epb_options(order, opt_start, end, no) if opt_start < end else 0
                        if ifid >= len(local_ifaces):
                            self._unknown_interface(no, ifid, max(section, 0), described)
                            yield handler(buf, data_start, caplen, wirelen, no,
                                          self._ts_in_range((ts_hi << 32 | ts_lo) * 1000, no), -1,
                                          direction, -1)
                            continue
                        iface = local_ifaces[ifid]
                        mul, div = iface.tsresol_ns
                        ticks = ts_hi << 32 | ts_lo
                        ts = ticks * mul // div + iface.tsoffset_s * 1_000_000_000
                    elif btype == _BT_SHB:
                        section += 1
                        self.sections += 1
                        major, minor = struct.unpack_from(order + "HH", buf, body + 4)
                        if major != 1:
                            damage.add(
                                "bad_block",
                                no + 1,
                                f"section header version {major}.{minor} is not 1.x; rest of file unreadable",
                            )
                            self.bytes_unread = self._remaining()
                            break
                        local_ifaces = []
                        clocks = []
                        described = 0
                        self._shb_options(order, body + 16, end)
                        continue
                    elif btype == _BT_IDB:
                        linktype, _res, snaplen = struct.unpack_from(order + "HHI", buf, body)
                        described += 1
                        if len(local_ifaces) >= MAX_INTERFACES or len(self.interfaces) >= MAX_FILE_INTERFACES:
                            self._too_many_interfaces(no + 1, max(section, 0), len(local_ifaces))
                            continue
                        iface = Interface(len(self.interfaces), linktype, snaplen, (1000, 1), section=max(section, 0))
                        self._idb_options(order, body + 8, end, iface)
                        local_ifaces.append(iface)
                        clocks.append((*iface.tsresol_ns, iface.tsoffset_s * 1_000_000_000))
                        self.interfaces.append(iface)
                        continue
                    elif btype == _BT_JOURNAL:
                        no += 1
                        continue
                    else:
                        continue  # NRB, ISB, DSB, custom blocks: not frames
                if not 0 <= ts <= TS_MAX:
                    ts = self._ts_in_range(ts, no)
                if ts < last_ts:
                    self._time_backwards(no, ts)
                else:
                    if last_ts < 0:
                        self.first_ts = ts
                    last_ts = ts
                if caplen < wirelen:
                    damage.add("snaplen_cut", no, "frame cut by the snapshot length")
                if iface.snaplen and caplen > iface.snaplen:
                    damage.add("caplen_over_snaplen", no,
                               f"captured length above the interface snaplen {iface.snaplen}")
                iface.frames += 1
                yield handler(buf, data_start, caplen, wirelen, no, ts, iface.id, direction, iface.linktype)
            self._check_rest()
        finally:
            self.frames = no
            self.last_ts = last_ts if last_ts >= 0 else None
            self._stream_end(no)

    def _too_many_interfaces(self, no: int, section: int, kept: int) -> None:
        """An IDB beyond the per-section or the file-wide bound: ignored, its frames unknown."""
        if kept >= MAX_INTERFACES:
            detail = (f"section {section} (counted from 0) describes more than {MAX_INTERFACES:,} interfaces; "
                      "the rest are ignored")
        else:
            detail = (f"more than {MAX_FILE_INTERFACES:,} interface descriptions in the file; the rest "
                      f"(from section {section}, counted from 0) are ignored")
        self.damage.add("too_many_interfaces", no, detail)

    def _unknown_interface(self, no: int, ifid: int, section: int, described: int) -> None:
        """Frame ``no`` names local interface ``ifid`` that its section never described, or whose
        description was ignored (``too_many_interfaces``): it is not decoded."""
        where = f"section {section} (counted from 0)"
        if ifid < described:
            detail = f"packet names interface {ifid} of {where}, whose description was ignored (too_many_interfaces)"
        elif described:
            known = "interface 0" if described == 1 else f"interfaces 0 to {described - 1:,}"
            detail = f"packet names interface {ifid}, which its section never described: {where} describes only {known}"
        else:
            detail = f"packet names interface {ifid}, which its section never described: {where} describes none"
        self.damage.add("unknown_interface", no, detail)

    def _time_backwards(self, no: int, ts: int) -> None:
        """Frame ``no`` is older than the one before it (both loops' rare path)."""
        self.damage.add("time_backwards", no, "timestamp earlier than the previous frame's")
        if self.first_ts is None or ts < self.first_ts:
            self.first_ts = ts

    def _cut_short(self, no: int, detail: str) -> None:
        """Frame ``no`` ends with the data: ``truncated_record``, unless the data ended because the
        decompressor rejected it (then it is where the corruption was noticed: ``corrupt_compressed``)."""
        bounded = self.src._bounded
        if bounded is None or not bounded.corrupt:
            self.damage.add("truncated_record", no, detail)

    def _check_rest(self) -> None:
        """The reader stopped by itself (damage it cannot read past, or the end): the rest of a
        compressed stream is decompressed, unread, to learn whether the data itself was damaged. A
        corrupt stream often shows first as a frame of impossible length, and its corruption would
        otherwise go unreported. Not when the consumer stops early (a refetch of a few frames)."""
        if self._eof or self.src._bounded is None:
            return
        self._checked_rest = True
        try:
            while self.src._stream.read(_CHUNK):
                pass
        except (PcapsleuthError, OSError):
            return  # a bound reached in data no one reads: nothing more is learnt
        self._eof = True

    def _stream_end(self, no: int) -> None:
        """A compressed stream that ended early or corrupt: damage at the frame after the last one read."""
        bounded = self.src._bounded
        if not self._eof or bounded is None or not bounded.error:
            return
        if not bounded.corrupt:
            self.damage.add("truncated_file", no + 1, bounded.error)
            return
        detail = bounded.corrupt_detail((1, no) if bounded.member == 1 and no else None,
                                        analyzed=not self._checked_rest)
        if self._checked_rest:
            detail += (f". The reading had stopped before it, at frame {no + 1:,}: that frame's damage is likely "
                       "a symptom of this one")
        self.damage.add("corrupt_compressed", no + 1, detail)

    def _ts_in_range(self, ts: int, no: int) -> int:
        """``ts`` clamped to 1970 .. 2262 (int64 nanoseconds), recorded as damage when it was not."""
        if 0 <= ts <= TS_MAX:
            return ts
        self.damage.add("time_out_of_range", no, "timestamp before 1970 or after 2262; clamped to that range")
        return 0 if ts < 0 else TS_MAX

    def _consumed(self) -> int:
        try:
            return int(self.src._stream.tell()) - self._remaining()
        except (OSError, ValueError):
            return -1

    def _options(self, order: str, start: int, end: int) -> Iterator[tuple[int, bytes]]:
        buf = self._buf
        pos = start
        while pos + 4 <= end:
            code, length = struct.unpack_from(order + "HH", buf, pos)
            if code == 0:
                return
            value_end = pos + 4 + length
            if value_end > end:
                return
            yield code, buf[pos + 4 : value_end]
            pos = pos + 4 + ((length + 3) & ~3)

    def _epb_options(self, order: str, start: int, end: int, no: int) -> int:
        direction = 0
        for code, value in self._options(order, start, end):
            if code == 1:
                if self._n_comments < MAX_COMMENTS:
                    self._n_comments += 1
                    self.comments.setdefault(no, []).append(value.decode("utf-8", "replace"))
                else:
                    self.comments_left_out += 1
            elif code == 2 and len(value) >= 4:
                (flags,) = struct.unpack(order + "I", value[:4])
                # Bits 0-1: 00 unknown, 01 inbound, 10 outbound; 11 is not a valid value (pcapng
                # spec, epb_flags) and is read as unknown.
                direction = flags & 0x3 if flags & 0x3 != 0x3 else 0
        return direction

    def _shb_options(self, order: str, start: int, end: int) -> None:
        names = {2: "shb_hardware", 3: "shb_os", 4: "shb_userappl"}
        for code, value in self._options(order, start, end):
            text = value.decode("utf-8", "replace")
            if code == 1:
                if len(self.section_comments) < MAX_COMMENTS:
                    self.section_comments.append(text)
                else:
                    self.comments_left_out += 1
            elif code in names:
                self.shb_info.setdefault(names[code], text)

    def _idb_options(self, order: str, start: int, end: int, iface: Interface) -> None:
        for code, value in self._options(order, start, end):
            if code == 2:
                iface.name = value.decode("utf-8", "replace")
            elif code == 3:
                iface.description = value.decode("utf-8", "replace")
            elif code == 9 and value:
                res = value[0]
                if res & 0x80:
                    # Power of two: ticks of 2^-n s. Keep it exact as a fraction of ns.
                    iface.tsresol_ns = (1_000_000_000, 1 << (res & 0x7F))
                else:
                    exp = res
                    iface.tsresol_ns = (10 ** (9 - exp), 1) if exp <= 9 else (1, 10 ** (exp - 9))
            elif code == 14 and len(value) >= 8:
                (iface.tsoffset_s,) = struct.unpack(order + "q", value[:8])
            elif code == 13 and value:
                iface.fcslen = value[0]
