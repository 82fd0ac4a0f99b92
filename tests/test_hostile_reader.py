"""Issue 19, the reader's part: concatenated ring-buffer files (item 6), decompression bombs
(item 9) and corrupt compressed data (item 10e).

Every input is generated here, from the repository's samples or by an independent writer (dpkt's
pcapng writer for the ring-buffer files); tshark, zlib fed byte by byte and the uncompressed
originals are the oracles.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import random
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dpkt
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _build as b  # noqa: E402
from conftest import SAMPLES, sample_captures  # noqa: E402

from pcapsleuth import reader  # noqa: E402
from pcapsleuth.capture import Capture, read_packets  # noqa: E402
from pcapsleuth.cli import main  # noqa: E402
from pcapsleuth.errors import DecompressionError, NotACaptureError, PcapsleuthError  # noqa: E402


def _cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["analyze", "--no-html", "--no-progress", *args], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def _damage(info: object) -> dict[str, dict[str, object]]:
    return {d["kind"]: d for d in info.damage.to_list()}  # type: ignore[attr-defined]


def _records(data: bytes, **kw: object) -> tuple[int, reader.RecordReader, reader.CaptureSource]:
    """Frames read by the reader alone (no decoding: a million records in about a second)."""
    src = reader.open_capture(data, **kw)  # type: ignore[arg-type]
    rec = reader.RecordReader(src)
    n = 0
    try:
        for _ in rec:
            n += 1
    finally:
        src.close()
    return n, rec, src


# -- item 6: interfaces belong to their section --------------------------------------------------
def _ring_file(i: int) -> bytes:
    """One ring-buffer file as dpkt's pcapng writer makes it (SHB, IDB, EPBs): one whole TCP
    connection from port 10000 + i."""
    out = io.BytesIO()
    w = dpkt.pcapng.Writer(out, snaplen=262144, linktype=dpkt.pcap.DLT_EN10MB)
    t0 = 1_700_000_000 + i * 0.01
    c, s = {"sport": 10000 + i, "dport": 80}, {"sport": 80, "dport": 10000 + i}
    fwd = {"src": b.SRC4, "dst": b.DST4}
    rev = {"src": b.DST4, "dst": b.SRC4}
    segs = [
        (fwd, dict(c, seq=100, flags=dpkt.tcp.TH_SYN)),
        (rev, dict(s, seq=500, ack=101, flags=dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK)),
        (fwd, dict(c, seq=101, ack=501, flags=dpkt.tcp.TH_ACK)),
        (fwd, dict(c, seq=101, ack=501, flags=dpkt.tcp.TH_FIN | dpkt.tcp.TH_ACK)),
        (rev, dict(s, seq=501, ack=102, flags=dpkt.tcp.TH_FIN | dpkt.tcp.TH_ACK)),
        (fwd, dict(c, seq=102, ack=502, flags=dpkt.tcp.TH_ACK)),
    ]
    for k, (ip, tcp) in enumerate(segs):
        w.writepkt(b.eth(b.ip4(b.tcp(**tcp), **ip)), ts=t0 + k * 0.001)  # type: ignore[arg-type]
    return out.getvalue()


def test_ring_buffer_files_concatenated(tmp_path: Path, tshark: str) -> None:
    """`cat` of 5,000 one-interface pcapng files: 5,000 sections, each describing its own
    interface 0. Every connection is analyzed, no frame is an unknown interface, as tshark sees it."""
    path = tmp_path / "ring.pcapng"
    path.write_bytes(b"".join(_ring_file(i) for i in range(5000)))
    out = tmp_path / "ring.json"
    code, _, err = _cli("--json", str(out), str(path))
    assert code == 0, err
    doc = json.loads(out.read_text())
    cap = doc["capture"]
    assert cap["frames"] == 30_000 and cap["sections"] == 5000
    assert cap["damage"] == []
    assert [(i["id"], i["section"], i["frames"]) for i in cap["interfaces"]] == [(n, n, 6) for n in range(5000)]
    ours = doc["connections"]
    assert len(ours) == 5000 and {c["conn_state"] for c in ours} == {"SF"}
    streams = subprocess.run([tshark, "-r", str(path), "-T", "fields", "-e", "tcp.stream"], capture_output=True,
                             text=True, check=True).stdout.split()
    assert len(streams) == 30_000 and len(set(streams)) == len(ours)


def test_unknown_interface_in_the_second_section(tmp_path: Path, tshark: str) -> None:
    """Section 0 describes interfaces 0 and 1, section 1 only 0: a frame of section 1 naming
    interface 1 is unknown there (tshark stops at it, with the same reason), and the damage says
    which section and what it describes. The frames around it keep their interfaces."""
    frame = b.eth(b.ip4(b.tcp()))
    data = (b.shb() + b.idb(options=[(2, b"eth0")]) + b.idb(options=[(2, b"eth1")]) +
            b.epb("<", 0, 1, frame) + b.epb("<", 1, 2, frame) +
            b.shb() + b.idb(options=[(2, b"eth2")]) + b.epb("<", 0, 3, frame) + b.epb("<", 1, 4, frame) +
            b.epb("<", 0, 5, frame))
    pkts, info = read_packets(data)
    assert [p.iface for p in pkts] == [0, 1, 2, -1, 2]
    assert [i.section for i in info.interfaces] == [0, 0, 1]
    damage = _damage(info)
    assert set(damage) == {"unknown_interface"} and damage["unknown_interface"]["frames"] == [4]
    assert damage["unknown_interface"]["detail"] == (
        "packet names interface 1, which its section never described: section 1 (counted from 0) "
        "describes only interface 0")
    path = tmp_path / "two-sections.pcapng"
    path.write_bytes(data)
    proc = subprocess.run([tshark, "-r", str(path), "-T", "fields", "-e", "frame.number"], capture_output=True,
                          text=True)
    assert proc.stdout.split() == ["1", "2", "3"]
    assert "interface index 1 is not less than section interface count 1" in proc.stderr


def test_interface_bound_counts_per_section() -> None:
    """4,097 interfaces in section 0: the last one is ignored (too_many_interfaces, and its frame
    is an unknown interface); section 1's own interface is read and its frames decoded."""
    frame = b.eth(b.ip4(b.tcp()))
    many = b"".join(b.idb() for _ in range(reader.MAX_INTERFACES + 1))
    data = (b.shb() + many + b.epb("<", reader.MAX_INTERFACES, 1, frame) + b.epb("<", 0, 2, frame) +
            b.shb() + b.idb("<", 101) + b.epb("<", 0, 3, b.ip4(b.tcp())))
    pkts, info = read_packets(data)
    assert [p.iface for p in pkts] == [-1, 0, reader.MAX_INTERFACES]
    assert pkts[2].src == "10.0.0.1" and pkts[2].linktype == 101
    damage = _damage(info)
    assert set(damage) == {"too_many_interfaces", "unknown_interface"}
    assert damage["too_many_interfaces"]["count"] == 1 and damage["too_many_interfaces"]["detail"] == (
        "section 0 (counted from 0) describes more than 4,096 interfaces; the rest are ignored")
    assert damage["unknown_interface"]["frames"] == [1]
    assert damage["unknown_interface"]["detail"] == (
        "packet names interface 4096 of section 0 (counted from 0), whose description was ignored "
        "(too_many_interfaces)")


def test_interfaces_are_bounded_across_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """The file-wide bound (reader.MAX_FILE_INTERFACES, 65,536; 10 here): sections past it keep
    their frames, as unknown interfaces whose description was ignored, and the damage says so."""
    monkeypatch.setattr(reader, "MAX_FILE_INTERFACES", 10)
    frame = b.eth(b.ip4(b.tcp()))
    data = b"".join(b.shb() + b.idb() + b.epb("<", 0, n, frame) for n in range(12))
    pkts, info = read_packets(data)
    assert [p.iface for p in pkts] == [*range(10), -1, -1]
    assert len(info.interfaces) == 10 and info.sections == 12
    damage = _damage(info)
    assert damage["too_many_interfaces"]["count"] == 2 and damage["too_many_interfaces"]["frames"] == [11, 12]
    assert damage["too_many_interfaces"]["detail"] == (
        "more than 10 interface descriptions in the file; the rest (from section 10, counted from 0) are ignored")
    assert damage["unknown_interface"]["frames"] == [11, 12]
    assert "of section 10 (counted from 0), whose description was ignored" in str(
        damage["unknown_interface"]["detail"])


# -- item 9: the expansion ratio -----------------------------------------------------------------
Compress = Callable[[bytes], bytes]
COMPRESSORS: dict[str, Compress] = {
    "gzip": lambda d: gzip.compress(d, 9, mtime=0),
    "bzip2": lambda d: bz2.compress(d, 9),
    "xz": lambda d: lzma.compress(d, preset=9 | lzma.PRESET_EXTREME),
}


def _bomb(kind: str, mib: int) -> bytes:
    """A pcap header and ``mib`` MiB of zeros (empty 16-byte records), compressed as a stream."""
    comp: Any
    if kind == "gzip":
        comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    elif kind == "bzip2":
        comp = bz2.BZ2Compressor(9)
    else:
        comp = lzma.LZMACompressor(preset=9)
    zeros = bytes(1 << 20)
    parts = [comp.compress(b.pcap([]))] + [comp.compress(zeros) for _ in range(mib)]
    return b"".join(parts) + comp.flush()


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_bomb_is_refused_after_the_floor(kind: str) -> None:
    """Header and zeros, 24 MiB: refused once 16 MiB are out (a million empty records, not the
    bomb's whole expansion), naming the ratio and the flag; with the flag raised, reading goes on
    to the next bound."""
    bomb = _bomb(kind, 24)
    assert len(bomb) < 30_000 and 1000 * len(bomb) < 24 << 20  # small on disk, a bomb by the ratio
    with pytest.raises(DecompressionError) as caught:
        _records(bomb)
    msg = str(caught.value)
    assert msg.startswith("<bytes>: expands ") and "-fold (" in msg, msg
    assert "beyond --max-expansion 1,000; refusing" in msg and "raise --max-expansion" in msg, msg
    ratio = float(msg.split("expands ")[1].split("-fold")[0].replace(",", ""))
    assert ratio > 1000
    # the refusal came at the floor, not after the whole expansion
    src = reader.open_capture(bomb)
    bounded = src._bounded
    assert bounded is not None
    with pytest.raises(DecompressionError, match="--max-expansion"):
        for _ in reader.RecordReader(src):
            pass
    src.close()
    assert bounded.produced <= reader.EXPANSION_FLOOR < bounded._made <= reader.EXPANSION_FLOOR + (1 << 20)
    # raised: past the ratio, on to --max-decompressed
    for override in (0, 10 * ratio):
        with pytest.raises(DecompressionError, match="decompresses to more than 20,000,000 bytes"):
            _records(bomb, max_expansion=override, max_decompressed=20_000_000)


def test_bomb_from_the_cli(tmp_path: Path) -> None:
    """The CLI flag reaches the reader: the malformed set's xz bomb (17 MiB of empty records)
    is refused by the ratio by default, and with --max-expansion 0 goes on to --max-decompressed."""
    bomb = Path(__file__).resolve().parent / "malformed" / "xz-bomb.pcap.xz"
    code, out, err = _cli("--json", "-", "--max-decompressed", "17500000", str(bomb))
    assert code == 5 and out == "" and err.count("\n") == 1, err
    assert err.startswith(f"pcapsleuth: {bomb}: expands ") and "beyond --max-expansion 1,000" in err, err
    code, out, err = _cli("--json", "-", "--max-decompressed", "17500000", "--max-expansion", "0", str(bomb))
    assert code == 5 and out == "" and err.count("\n") == 1, err
    assert "decompresses to more than 17,500,000 bytes" in err, err


def test_samples_compressed_read_as_the_originals() -> None:
    """Every uncompressed capture of samples/, compressed at the maximum levels of gzip, bzip2 and
    xz: the same frames and damage as the original (all are far below the bound's floor)."""
    plain = [p for p in sample_captures() if p.suffix in (".pcap", ".pcapng")]
    assert len(plain) > 20
    for path in plain:
        data = path.read_bytes()
        want, info = read_packets(data)
        for kind, compress in COMPRESSORS.items():
            got, ginfo = read_packets(compress(data))
            assert ginfo.compression == kind
            assert got == want and ginfo.damage.to_list() == info.damage.to_list(), (path.name, kind)


def _bulk(payload: int, frames: int) -> bytes:
    """A bulk transfer of zero-filled segments (``dd if=/dev/zero | nc``), ``payload`` bytes each."""
    return b.pcap([(1_000_000_000 + i * 50_000, b.eth(b.ip4(b.tcp(seq=1000 + i * payload, ack=1,
                                                                  flags=dpkt.tcp.TH_ACK, payload=bytes(payload)),
                                                           ip_id=i & 0xFFFF)))
                   for i in range(frames)])


def test_zero_filled_payloads_above_the_floor() -> None:
    """Beyond 16 MiB, an ordinary capture passes the default bound: 1,448-byte zero-filled
    segments compress 100-300x. 64 KB ones (loopback with GSO) compress over 1,000x with xz,
    as recorded ones did (2,384x): refused by default, read with the flag raised."""
    ethernet = _bulk(1448, 12_000)
    assert len(ethernet) > reader.EXPANSION_FLOOR
    for kind, compress in COMPRESSORS.items():
        packed = compress(ethernet)
        assert len(ethernet) < 1000 * len(packed), kind
        n, rec, _ = _records(packed)
        assert n == 12_000 and not rec.damage, kind
    loopback = _bulk(65_000, 280)
    packed = COMPRESSORS["xz"](loopback)
    assert len(loopback) > 1000 * len(packed) and len(loopback) > reader.EXPANSION_FLOOR
    with pytest.raises(DecompressionError, match="beyond --max-expansion 1,000"):
        _records(packed)
    n, rec, _ = _records(packed, max_expansion=10_000)
    assert n == 280 and not rec.damage


# -- item 10e: corrupt compressed data -----------------------------------------------------------
def _zlib_notices(blob: bytes) -> tuple[int, int] | None:
    """The oracle: fed byte by byte, the compressed byte at which zlib rejects ``blob`` and the
    decompressed bytes it gave before; None if it accepts it."""
    dec, made = zlib.decompressobj(31), 0
    for start in range(0, len(blob), 4096):
        piece = blob[start:start + 4096]
        saved = dec.copy()
        try:
            made += len(dec.decompress(piece))
            continue
        except zlib.error:
            dec = saved
        for i in range(len(piece)):  # the failing piece again, byte by byte
            try:
                made += len(dec.decompress(piece[i:i + 1]))
            except zlib.error:
                return start + i, made
        raise AssertionError("zlib failed on a piece, then not byte by byte")
    return None


def test_every_flip_of_the_gzip_sample_is_verified_or_refused() -> None:
    """Each bit flip, one at a time, of samples/basic/gzipped.pcap.gz: the capture is either refused
    (corrupt gzip, exit 5; or not gzip at all when the magic is hit) or read exactly as the
    undamaged one (a flip in the gzip header's unchecked fields), or, in 3 of the 1,689 flips,
    read as a stream cut short (deflate found no end), that says its data is unverified. Never
    wrong frames analyzed as if sound: at 3f5430b, 501 of the 1,106 flips of bit 0 or 7 past the
    gzip header were read into frames that differ from the sample's, labelled truncated_file."""
    blob = (SAMPLES / "basic" / "gzipped.pcap.gz").read_bytes()
    want, winfo = read_packets(blob)
    assert len(want) == 12 and not winfo.damage
    outcomes = {"refused": 0, "identical": 0, "not gzip": 0, "ends early": 0}
    refusals: list[tuple[int, int, str, tuple[int, int] | None]] = []
    for pos in range(len(blob)):
        for bit in (0x01, 0x10, 0x80):
            flipped = bytearray(blob)
            flipped[pos] ^= bit
            try:
                got, info = read_packets(bytes(flipped))
            except DecompressionError as exc:
                refusals.append((pos, bit, str(exc), _zlib_notices(bytes(flipped))))
                outcomes["refused"] += 1
                continue
            except NotACaptureError:
                assert pos < 2, (pos, bit)  # the gzip magic: read as an unknown format
                outcomes["not gzip"] += 1
                continue
            damage = _damage(info)
            if "truncated_file" in damage:
                # Deflate, misled, read on through the gzip trailer as data and found no end: it
                # looks cut short, and says that nothing of the member was verified.
                assert str(damage["truncated_file"]["detail"]).endswith(
                    "(cut short?); the check at the end of member 1 was never reached, so what was read of it "
                    "is unverified"), (pos, bit, damage)
                outcomes["ends early"] += 1
                continue
            assert got == want and not damage, (pos, bit, damage)
            outcomes["identical"] += 1
    assert outcomes["refused"] > 1600 and 0 < outcomes["identical"] < 30 and outcomes["ends early"] < 5, outcomes
    for pos, bit, msg, notice in refusals:  # each names the compressed byte where zlib noticed
        assert notice is not None, (pos, bit)
        assert msg.startswith("<bytes>: corrupt gzip data (Error -3 while decompressing data: "), (pos, bit, msg)
        assert f"noticed at compressed byte {notice[0]:,} in member 1" in msg, (pos, bit, msg)


def test_corrupt_gzip_sample_on_the_cli(tmp_path: Path) -> None:
    """The issue's case: a byte flipped in the middle of the gzip sample. One line, naming the
    file, the corruption and the compressed byte where zlib noticed it; nothing analyzed."""
    blob = bytearray((SAMPLES / "basic" / "gzipped.pcap.gz").read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path = tmp_path / "flipped.pcap.gz"
    path.write_bytes(bytes(blob))
    notice = _zlib_notices(bytes(blob))
    assert notice is not None
    code, out, err = _cli("--json", "-", str(path))
    assert code == 5 and out == "" and err.count("\n") == 1, (code, err)
    assert err.startswith(f"pcapsleuth: {path}: corrupt gzip data (Error -3 while decompressing data: "), err
    assert f"noticed at compressed byte {notice[0]:,} in member 1" in err and "nothing is analyzed" in err, err


def _big_capture(frames: int = 3000) -> tuple[bytes, list[int]]:
    """About 3 MB of frames with text-like payloads (compressible, as HTTP is: deflate codes them
    with Huffman tables, where damage is often noticed), and where each record ends."""
    rng = random.Random(19)
    words = [bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 9))) for _ in range(300)]
    data = b.pcap([(1_000_000_000 + i * 1000,
                    b.eth(b.ip4(b.tcp(seq=i, payload=b" ".join(rng.choices(words, k=400))[:1000].ljust(1000)))))
                   for i in range(frames)])
    ends, pos = [], 24
    while pos < len(data):
        pos += 16 + struct.unpack_from("<I", data, pos + 8)[0]
        ends.append(pos)
    return data, ends


def test_corrupt_gzip_noticed_mid_stream() -> None:
    """A long member (3 MB) damaged where deflate notices within the data: the frames read end at
    least 1 MiB of output before that point and are the original's; the damage is
    corrupt_compressed at the next frame, naming the compressed byte; no truncation is claimed."""
    data, ends = _big_capture()
    blob = gzip.compress(data, 9, mtime=0)
    good, _ = read_packets(data)
    flipped = bytearray(blob)
    flipped[len(blob) // 2:len(blob) // 2 + 4] = b"\xff" * 4  # a run of ones: no valid Huffman code
    notice = _zlib_notices(bytes(flipped))
    assert notice is not None and notice[0] < len(blob) - 8  # noticed in the data, not at the CRC
    got, info = read_packets(bytes(flipped))
    n = len(got)
    damage = _damage(info)
    assert set(damage) == {"corrupt_compressed"} and damage["corrupt_compressed"]["frames"] == [n + 1]
    assert n > 0 and ends[n - 1] <= notice[1] - reader._HOLD
    assert got == good[:n]
    detail = str(damage["corrupt_compressed"]["detail"])
    assert detail.startswith("corrupt gzip data (Error -3 while decompressing data: invalid ")
    assert f"noticed at compressed byte {notice[0]:,} in member 1 (from the start of the file)" in detail
    assert f"Frames 1 to {n:,} (the member's first " in detail and " bytes) were read unverified" in detail
    released = int(detail.split("(the member's first ")[1].split(" bytes)")[0].replace(",", ""))
    assert ends[n - 1] <= released < ends[n]  # the frames read are all that was released, whole


def test_corrupt_gzip_noticed_only_by_its_crc() -> None:
    """A long member whose damage deflate does not notice: the CRC-32 at its end fails. The last
    mebibyte is not analyzed, and the damage says plainly that the frames read are unverified."""
    data, ends = _big_capture()
    blob = bytearray(gzip.compress(data, 9, mtime=0))
    blob[-8] ^= 0x01  # the CRC-32 itself
    notice = _zlib_notices(bytes(blob))
    assert notice is not None and notice[1] == len(data)
    pkts, info = read_packets(bytes(blob))
    n = len(pkts)
    damage = _damage(info)
    assert set(damage) == {"corrupt_compressed"} and damage["corrupt_compressed"]["frames"] == [n + 1]
    assert ends[n - 1] <= len(data) - reader._HOLD and ends[n] > len(data) - 2 * reader._HOLD
    detail = str(damage["corrupt_compressed"]["detail"])
    assert "incorrect data check" in detail and f"Frames 1 to {n:,}" in detail and "unverified" in detail


@pytest.mark.parametrize("kind", ["bzip2", "xz"])
def test_corrupt_bzip2_and_xz(kind: str) -> None:
    """bzip2 and xz damage three quarters in: the frames read are the original's (held back until
    1 MiB past them, a bzip2 block is checked by then), then corrupt_compressed; no truncation."""
    data, _ = _big_capture()
    blob = bytearray(COMPRESSORS[kind](data))
    blob[len(blob) * 3 // 4] ^= 0x04
    good, _ = read_packets(data)
    got, info = read_packets(bytes(blob))
    assert 0 < len(got) < len(good) and got == good[:len(got)]
    damage = _damage(info)
    assert set(damage) == {"corrupt_compressed"} and damage["corrupt_compressed"]["frames"] == [len(got) + 1]
    assert str(damage["corrupt_compressed"]["detail"]).startswith(f"corrupt {kind} data (")


def test_corruption_behind_a_damaged_frame() -> None:
    """The reader stops at a frame of impossible length (the usual first sign of corrupt data);
    the rest of the stream is then decompressed, unread, and its corruption reported too. A reader
    stopped early by its consumer (a refetch of a few frames) does not do that."""
    data, _ = _big_capture(200)
    head = data[:24 + 3 * (16 + 1054)]  # 3 frames
    insane = struct.pack("<IIII", 1, 0, 0x40000000, 0x40000000)
    second = bytearray(gzip.compress(data, 9, mtime=0))
    second[len(second) // 2] ^= 0x01
    blob = gzip.compress(head + insane, 9, mtime=0) + bytes(second)
    pkts, info = read_packets(blob)
    assert len(pkts) == 3
    damage = _damage(info)
    assert set(damage) == {"caplen_insane", "corrupt_compressed"}
    assert damage["caplen_insane"]["frames"] == [4] and damage["corrupt_compressed"]["frames"] == [4]
    detail = str(damage["corrupt_compressed"]["detail"])
    assert "in member 2 (from compressed byte " in detail and "that frame's damage is likely a symptom" in detail
    with Capture(blob) as cap:
        for _ in cap:
            break
    assert not cap.info.damage


def test_truncated_is_not_corrupt() -> None:
    """A stream cut short is truncated_file, as before: nothing rejected the data. What was
    decompressed is read (bzip2 -1: a cut loses its 100 kB block, not the whole file)."""
    data, _ = _big_capture(400)
    good, _ = read_packets(data)
    for kind, compress in {**COMPRESSORS, "bzip2": lambda d: bz2.compress(d, 1)}.items():
        packed = compress(data)
        pkts, info = read_packets(packed[: len(packed) * 3 // 4])
        assert 0 < len(pkts) < 400 and pkts == good[:len(pkts)], kind
        damage = _damage(info)
        assert "corrupt_compressed" not in damage and "truncated_file" in damage, (kind, damage)
        assert f"{kind} stream ends early" in str(damage["truncated_file"]["detail"])


def test_errors_stay_one_line_and_typed() -> None:
    """Random damage anywhere in compressed samples: a PcapsleuthError or a read, never another
    exception."""
    rng = random.Random(1910)
    base = (SAMPLES / "basic" / "clean-ethernet.pcap").read_bytes()
    for kind, compress in COMPRESSORS.items():
        packed = compress(base)
        for _ in range(150):
            flipped = bytearray(packed)
            for _ in range(rng.randint(1, 4)):
                flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
            try:
                read_packets(bytes(flipped))
            except PcapsleuthError as exc:
                assert "\n" not in str(exc), (kind, exc)
