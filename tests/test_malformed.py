"""Damaged input: no exception escapes, frames read so far are kept, damage names the frame.

The CLI contract for unusable input (errors.py): one line on stderr naming the file, a documented
exit code (3 cannot open, 4 not a capture, 5 bad compressed input), never a traceback.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import struct
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _build as b  # noqa: E402
from conftest import zeek_trace  # noqa: E402

from pcapsleuth.capture import Capture  # noqa: E402
from pcapsleuth.cli import main  # noqa: E402
from pcapsleuth.errors import TruncatedHeaderError  # noqa: E402


def _read(data: bytes) -> tuple[list[int], Capture]:
    with Capture(data) as cap:
        nos = [p.no for p in cap]
    return nos, cap


def _pcap_record_ends(data: bytes) -> list[int]:
    """Offsets where each pcap record ends, computed from the file bytes (the oracle)."""
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    ends, pos = [], 24
    while pos + 16 <= len(data):
        pos += 16 + struct.unpack_from(order + "I", data, pos + 8)[0]
        ends.append(pos)
    return ends


def _pcapng_frame_ends(data: bytes) -> list[int]:
    """Offsets where each frame-carrying pcapng block (EPB/SPB/PB) ends."""
    ends, pos, order = [], 0, "<"
    while pos + 12 <= len(data):
        if data[pos:pos + 4] == b"\x0a\x0d\x0d\x0a":
            order = "<" if data[pos + 8:pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        btype, blen = struct.unpack_from(order + "II", data, pos)
        pos += blen
        if btype in (2, 3, 6):
            ends.append(pos)
    return ends


def _check_cut(data: bytes, ends: list[int], cut: int) -> None:
    """A pcap cut at ``cut``: the complete records are yielded, the cut one is reported by number;
    cut inside the global header, nothing is readable: an error (exit 4), not an empty analysis."""
    if cut < 24:
        with pytest.raises(TruncatedHeaderError, match=f"pcap global header cut short \\({cut} of 24 bytes\\)"):
            _read(data[:cut])
        return
    nos, cap = _read(data[:cut])
    complete = sum(1 for e in ends if e <= cut)
    assert nos == list(range(1, complete + 1)), f"cut at {cut}"
    damage = {d["kind"]: d["frames"] for d in cap.info.damage.to_list()}
    if cut != 24 and cut not in ends:
        assert damage.get("truncated_record") == [complete + 1], f"cut at {cut}: {damage}"
    else:
        assert "truncated_record" not in damage and "truncated_file" not in damage, f"cut at {cut}: {damage}"


@pytest.fixture(scope="module")
def small_pcap(corpus: Path) -> bytes:
    return zeek_trace(corpus / "tcp__fin_retransmission").read_bytes()


@pytest.fixture(scope="module")
def small_pcapng(corpus: Path) -> bytes:
    return zeek_trace(corpus / "pcapng-multi-interface").read_bytes()


def test_pcap_cut_at_every_byte(small_pcap: bytes) -> None:
    assert len(small_pcap) < 8000
    ends = _pcap_record_ends(small_pcap)
    for cut in range(4, len(small_pcap) + 1):
        _check_cut(small_pcap, ends, cut)


def test_pcapng_cut_at_every_byte(small_pcapng: bytes) -> None:
    assert small_pcapng[:4] == b"\x0a\x0d\x0d\x0a" and len(small_pcapng) < 12000
    ends = _pcapng_frame_ends(small_pcapng)
    first_frame_block = ends[0]
    shb_len = struct.unpack_from("<I", small_pcapng, 4)[0]
    for cut in range(4, len(small_pcapng) + 1):
        if cut < shb_len:
            with pytest.raises(TruncatedHeaderError, match="pcapng section header cut short"):
                _read(small_pcapng[:cut])
            continue
        nos, cap = _read(small_pcapng[:cut])
        complete = sum(1 for e in ends if e <= cut)
        assert nos == list(range(1, complete + 1)), f"cut at {cut}"
        if cut not in ends and cut > first_frame_block and cut < len(small_pcapng):
            kinds = {d["kind"]: d for d in cap.info.damage.to_list()}
            assert "truncated_record" in kinds, f"cut at {cut}"
            assert kinds["truncated_record"]["frames"] == [complete + 1]


def test_big_pcap_strided_cuts(corpus: Path) -> None:
    data = zeek_trace(corpus / "tcp__reassembly").read_bytes()
    ends = _pcap_record_ends(data)
    cuts = set(range(4, 200)) | set(range(200, len(data), 997))
    for e in ends[:40]:
        cuts |= {e - 1, e, e + 1, e + 15, e + 16, e + 17}
    for cut in sorted(c for c in cuts if 4 <= c <= len(data)):
        _check_cut(data, ends, cut)


def test_random_byte_flips_never_raise(small_pcap: bytes, small_pcapng: bytes) -> None:
    rng = random.Random(20240601)
    for data in (small_pcap, small_pcapng):
        for _ in range(300):
            buf = bytearray(data)
            for _ in range(rng.randint(1, 8)):
                pos = rng.randrange(len(buf)) if rng.random() < 0.5 else rng.randrange(min(64, len(buf)))
                buf[pos] = rng.randrange(256)
            try:
                nos, cap = _read(bytes(buf))
            except (ValueError, OSError) as exc:  # a flipped magic makes it "not a capture": an error class
                assert type(exc).__module__ == "pcapsleuth.errors", exc
                continue
            assert nos == list(range(1, len(nos) + 1))


def test_absurd_caplen() -> None:
    frame = b.eth(b.ip4(b.tcp()))
    data = b.pcap([(1_000_000_000, frame)])
    bad = data + struct.pack("<IIII", 2, 0, 0xFFFFFFF0, 0xFFFFFFF0) + b"x" * 100
    nos, cap = _read(bad)
    assert nos == [1]
    kinds = {d["kind"]: d for d in cap.info.damage.to_list()}
    assert kinds["caplen_insane"]["frames"] == [2]


@pytest.mark.parametrize("blen", [0, 13, 0x7FFFFFF0])
def test_pcapng_bad_block_length(blen: int) -> None:
    good = b.shb() + b.idb() + b.epb("<", 0, 5, b.eth(b.ip4(b.tcp())))
    bad = good + struct.pack("<II", 6, blen) + b"\0" * 40
    nos, cap = _read(bad)
    assert nos == [1]
    assert {d["kind"]: d["frames"] for d in cap.info.damage.to_list()}["bad_block"] == [2]


def test_pcapng_epb_with_missing_interface() -> None:
    frame = b.eth(b.ip4(b.tcp()))
    data = b.shb() + b.idb() + b.epb("<", 0, 5, frame) + b.epb("<", 3, 6, frame) + b.epb("<", 0, 7, frame)
    nos, cap = _read(data)
    assert nos == [1, 2, 3]
    assert {d["kind"]: d["frames"] for d in cap.info.damage.to_list()}["unknown_interface"] == [2]


def test_pcapng_unknown_shb_version() -> None:
    frame = b.eth(b.ip4(b.tcp()))
    data = b.shb() + b.idb() + b.epb("<", 0, 5, frame) + b.shb(major=2) + b.idb() + b.epb("<", 0, 6, frame)
    nos, cap = _read(data)
    assert nos == [1]
    assert {d["kind"]: d["frames"] for d in cap.info.damage.to_list()}["bad_block"] == [2]


def test_pcapng_interfaces_and_comments_are_bounded() -> None:
    """A crafted file of thousands of interface descriptions and comments: a bounded number is
    kept (reader.MAX_INTERFACES, MAX_COMMENTS), the rest counted; the frames are all read."""
    from pcapsleuth.reader import MAX_COMMENTS, MAX_INTERFACES

    frame = b.eth(b.ip4(b.tcp()))
    idbs = b"".join(b.idb(options=[(2, b"if%d" % i)]) for i in range(MAX_INTERFACES + 50))
    epbs = b"".join(b.epb("<", 0, 5 + i, frame, options=[(1, b"comment %d" % i)]) for i in range(MAX_COMMENTS + 7))
    late = b.epb("<", MAX_INTERFACES + 10, 10_000, frame)
    nos, cap = _read(b.shb() + idbs + epbs + late)
    assert nos == list(range(1, MAX_COMMENTS + 9))
    info = cap.info
    assert len(info.interfaces) == MAX_INTERFACES
    assert sum(len(v) for v in info.comments.values()) == MAX_COMMENTS and info.comments_left_out == 7
    assert info.to_dict()["comments_left_out"] == 7
    damage = {d["kind"]: d for d in info.damage.to_list()}
    assert damage["too_many_interfaces"]["count"] == 50 and damage["too_many_interfaces"]["frames"][0] == 1
    assert damage["unknown_interface"]["frames"] == [MAX_COMMENTS + 8]


def test_timestamps_going_backwards() -> None:
    frame = b.eth(b.ip4(b.tcp()))
    data = b.pcap([(5_000_000_000, frame), (3_000_000_000, frame), (6_000_000_000, frame)])
    nos, cap = _read(data)
    assert nos == [1, 2, 3]
    assert {d["kind"]: d["frames"] for d in cap.info.damage.to_list()}["time_backwards"] == [2]
    assert cap.info.first_ts == 3_000_000_000 and cap.info.last_ts == 6_000_000_000


# -- the CLI on unusable paths ---------------------------------------------------------------------
def _cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["analyze", "--no-html", *args], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def _one_line_error(err: str, path: str) -> None:
    assert err.count("\n") == 1 and path in err and "Traceback" not in err, err


def test_cli_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.pcap")
    code, _, err = _cli(path)
    assert code == 3
    _one_line_error(err, path)


def test_cli_no_permission(tmp_path: Path, small_pcap: bytes) -> None:
    path = tmp_path / "secret.pcap"
    path.write_bytes(small_pcap)
    path.chmod(0)
    try:
        readable = os.access(path, os.R_OK)  # root (the test container) reads it anyway
        code, _, err = _cli(str(path))
    finally:
        path.chmod(0o600)
    if readable:
        assert code == 0, err  # honest: with CAP_DAC_OVERRIDE there is no permission error to report
    else:
        assert code == 3
        _one_line_error(err, str(path))


def test_cli_corrupt_gzip(tmp_path: Path, small_pcap: bytes) -> None:
    path = tmp_path / "bad.pcap.gz"
    blob = bytearray(gzip.compress(small_pcap))
    blob[20:40] = b"\xff" * 20
    path.write_bytes(bytes(blob))
    code, _, err = _cli(str(path))
    assert code in (0, 5), err  # 0 with truncation damage if the header survived, 5 if not
    assert "Traceback" not in err


def test_cli_corrupt_gzip_member_is_not_analyzed(tmp_path: Path) -> None:
    """Corruption in the middle of a small gzip member: deflate gives wrong bytes before it notices,
    and gzip verifies only at the member's end, so nothing of the member is analyzed (none of it is
    verified). The error names the compressed byte where zlib noticed."""
    import zlib

    data = b.pcap([(1_000_000_000 + i * 1000, b.eth(b.ip4(b.tcp(seq=i, payload=bytes(200))))) for i in range(40)])
    blob = bytearray(gzip.compress(data, mtime=0))
    blob[len(blob) // 2:len(blob) // 2 + 16] = b"\xff" * 16
    path = tmp_path / "corrupt.pcap.gz"
    path.write_bytes(bytes(blob))
    # The oracle: the compressed byte at which zlib, fed byte by byte, rejects the data.
    dec, noticed = zlib.decompressobj(31), None
    for i in range(len(blob)):
        try:
            dec.decompress(bytes(blob[i:i + 1]))
        except zlib.error:
            noticed = i
            break
    assert noticed is not None
    code, out, err = _cli("--json", "-", str(path))
    assert code == 5 and out == "", (code, err)
    _one_line_error(err, str(path))
    assert "corrupt gzip data (Error -3 while decompressing data: " in err
    assert f"noticed at compressed byte {noticed:,} in member 1" in err and "nothing is analyzed" in err, err


# -- the malformed-capture set (tests/malformed/, table in its README) ------------------------------
MALFORMED = Path(__file__).resolve().parent / "malformed"
sys.path.insert(0, str(MALFORMED))
import make_malformed as mm  # noqa: E402


def test_malformed_set_is_up_to_date() -> None:
    """The committed files and README table are exactly what make_malformed.py builds."""
    for name, data in mm.outputs().items():
        path = MALFORMED / name
        assert path.exists() and path.read_bytes() == data, f"{name}: run python3 tests/malformed/make_malformed.py"
        if name != "README.md":
            assert len(data) < 16_000, f"{name}: keep the malformed files small"


def _materialize(case: mm.Case, tmp_path: Path) -> Path:
    """The file to analyze: the committed one, or the directory / FIFO / empty file made here."""
    if case.build is not None:
        return MALFORMED / case.name
    path = tmp_path / case.name
    if "directory" in case.name:
        path.mkdir()
    elif "fifo" in case.name:
        os.mkfifo(path)
    else:
        path.write_bytes(b"")
    return path


def _cli_guarded(path: Path, args: tuple[str, ...]) -> tuple[int, str, str]:
    """The CLI in a thread: a FIFO without a writer would block open() forever, so a hang fails
    the test instead of freezing the suite."""
    result: list[tuple[int, str, str]] = []
    worker = threading.Thread(target=lambda: result.append(_cli("--json", "-", *args, str(path))), daemon=True)
    worker.start()
    worker.join(timeout=60)
    if worker.is_alive():
        if path.is_fifo():
            with open(path, "wb"):  # unblock the thread before failing
                pass
        pytest.fail(f"the CLI hung on {path.name}")
    return result[0]


@pytest.mark.parametrize("case", mm.CASES, ids=[c.name for c in mm.CASES])
def test_malformed_capture(case: mm.Case, tmp_path: Path) -> None:
    path = _materialize(case, tmp_path)
    code, out, err = _cli_guarded(path, case.args)
    assert code == case.exit, (code, err)
    if case.exit:
        assert out == ""
        assert err.count("\n") == 1 and err.endswith("\n"), err
        assert err.startswith(f"pcapsleuth: {path}: "), err  # names the file first
        assert case.error is not None and case.error in err, err
        assert "Traceback" not in err
        return
    assert err == "", err
    cap = json.loads(out)["capture"]
    assert cap["frames"] == case.frames
    assert {d["kind"]: d["frames"] for d in cap["damage"]} == case.damage_frames


def test_malformed_partial_analyses_keep_every_frame_read() -> None:
    """A partial analysis gives the same packets as the undamaged capture up to the damage."""
    from pcapsleuth.capture import read_packets

    for case in mm.CASES:
        if case.exit or case.build is None or not case.name.startswith("truncated-record"):
            continue
        damaged, _ = read_packets(MALFORMED / case.name)
        whole, _ = read_packets(mm.SAMPLES / mm.REFUSED)
        assert case.frames is not None and damaged == whole[:case.frames]


@pytest.mark.parametrize("name,code", [
    ("truncated-global-header.pcap", 4), ("gzip-bomb.pcap.gz", 5), ("a-directory.pcap", 3),
    ("a-fifo.pcap", 3), ("tcp-offset-past-packet.pcap", 0), ("pcapng-block-length-huge.pcapng", 0),
])
def test_malformed_in_a_real_process(name: str, code: int, tmp_path: Path) -> None:
    """The installed entry point on a separate interpreter: exit code, one line on stderr, and no
    traceback anywhere - including interpreter-level output the in-process runs cannot see."""
    import subprocess

    case = next(c for c in mm.CASES if c.name == name)
    path = _materialize(case, tmp_path)
    proc = subprocess.run([sys.executable, "-m", "pcapsleuth", "analyze", "--no-html", *case.args, str(path)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "PYTHONWARNINGS": "error", "PYTHONPATH": str(MALFORMED.parent.parent)})
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    if code:
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(f"pcapsleuth: {path}: "), proc.stderr
        assert proc.stdout == ""
    else:
        # the terminal summary lists the damage with its frame numbers
        assert proc.stderr == ""
        for kind, frames in case.damage_frames.items():
            assert f"damage     {kind}: {len(frames)} (frames {', '.join(map(str, frames))})" in proc.stdout


def test_gzip_bomb_is_bounded_without_expanding_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bound holds as a stream: decompression stops within one read (1 MiB) of the limit, and
    memory stays far below what the bomb expands to."""
    import tracemalloc

    from pcapsleuth import reader
    from pcapsleuth.errors import DecompressionError

    streams: list[reader._BoundedStream] = []

    class Recorded(reader._BoundedStream):
        def __init__(self, *args: object, **kw: object) -> None:
            super().__init__(*args, **kw)  # type: ignore[arg-type]
            streams.append(self)

    monkeypatch.setattr(reader, "_BoundedStream", Recorded)
    bomb = MALFORMED / "gzip-bomb.pcap.gz"
    expanded = len(gzip.decompress(bomb.read_bytes()))
    assert expanded > 800 * bomb.stat().st_size  # it is a bomb
    tracemalloc.start()
    try:
        with pytest.raises(DecompressionError, match="more than 1,000,000 bytes"), \
                Capture(bomb, max_decompressed=1_000_000) as cap:
            for _ in cap:
                pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(streams) == 1
    assert 1_000_000 < streams[0].produced <= 1_000_000 + (1 << 20)
    assert peak < expanded // 2, f"peak {peak:,} bytes while the bomb expands to {expanded:,}"


def test_compressed_members_padding_and_cuts() -> None:
    """gzip members concatenated (`cat a.gz b.gz`) read as one capture; zero padding after the
    last member is ignored; bzip2 and xz cut short keep the frames before the cut."""
    import bz2
    import lzma

    # 400 frames of 1,000 incompressible bytes: bzip2 -1 makes 100 kB blocks, so a cut loses one
    # block, not the whole file (a bzip2 block decompresses all at once or not at all).
    rng = random.Random(7)
    data = b.pcap([(1_000_000_000 + i * 1000, b.eth(b.ip4(b.tcp(seq=i, payload=rng.randbytes(1000)))))
                   for i in range(400)])
    ends = _pcap_record_ends(data)
    half = ends[199]
    two = gzip.compress(data[:half], mtime=0) + gzip.compress(data[half:], mtime=0) + bytes(512)
    nos, cap = _read(two)
    assert nos == list(range(1, 401)) and not cap.info.damage and cap.info.compression == "gzip"
    for name, packed in (("bzip2", bz2.compress(data, 1)), ("xz", lzma.compress(data))):
        cut = packed[: len(packed) * 3 // 4]
        nos, cap = _read(cut)
        damage = {d["kind"]: d for d in cap.info.damage.to_list()}
        assert cap.info.compression == name
        assert 100 < len(nos) < 400 and nos == list(range(1, len(nos) + 1)), name
        assert damage["truncated_file"]["frames"] == [len(nos) + 1], (name, damage)
        assert f"{name} stream ends early" in str(damage["truncated_file"]["detail"])
