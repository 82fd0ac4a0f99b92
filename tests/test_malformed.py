"""Damaged input: no exception escapes, frames read so far are kept, damage names the frame.

The CLI contract for unusable input (errors.py): one line on stderr naming the file, a documented
exit code (3 cannot open, 4 not a capture, 5 bad compressed input), never a traceback.
"""

from __future__ import annotations

import gzip
import io
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
    """A pcap cut at ``cut``: the complete records are yielded, the cut one is reported by number."""
    nos, cap = _read(data[:cut])
    complete = sum(1 for e in ends if e <= cut)
    assert nos == list(range(1, complete + 1)), f"cut at {cut}"
    damage = {d["kind"]: d["frames"] for d in cap.info.damage.to_list()}
    if cut < 24:
        assert damage.get("truncated_file") == [1], f"cut at {cut}: {damage}"
    elif cut != 24 and cut not in ends:
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
    for cut in range(4, len(small_pcapng) + 1):
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


def test_cli_directory(tmp_path: Path) -> None:
    code, _, err = _cli(str(tmp_path))
    assert code == 3
    _one_line_error(err, str(tmp_path))


def test_cli_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.pcap"
    path.write_bytes(b"")
    code, _, err = _cli(str(path))
    assert code == 4
    _one_line_error(err, str(path))


def test_cli_text_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.pcap"
    path.write_text("this is not a capture\n")
    code, _, err = _cli(str(path))
    assert code == 4
    _one_line_error(err, str(path))


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


def test_cli_fifo_refused_without_hanging(tmp_path: Path) -> None:
    """A FIFO with no writer blocks open() forever: the CLI refuses non-regular files instead."""
    path = tmp_path / "capture.fifo"
    os.mkfifo(path)
    result: list[tuple[int, str, str]] = []
    worker = threading.Thread(target=lambda: result.append(_cli(str(path))), daemon=True)
    worker.start()
    worker.join(timeout=10)
    if worker.is_alive():  # unblock the thread before failing
        with open(path, "wb"):
            pass
        pytest.fail("the CLI hung on a FIFO")
    code, _, err = result[0]
    assert code == 3
    _one_line_error(err, str(path))
    assert "FIFO" in err


def test_cli_gzip_bomb(tmp_path: Path, small_pcap: bytes) -> None:
    path = tmp_path / "bomb.pcap.gz"
    path.write_bytes(gzip.compress(small_pcap + b"\0" * 5_000_000))
    code, _, err = _cli(str(path), "--max-decompressed", "1000000")
    assert code == 5
    _one_line_error(err, str(path))


def test_cli_corrupt_gzip(tmp_path: Path, small_pcap: bytes) -> None:
    path = tmp_path / "bad.pcap.gz"
    blob = bytearray(gzip.compress(small_pcap))
    blob[20:40] = b"\xff" * 20
    path.write_bytes(bytes(blob))
    code, _, err = _cli(str(path))
    assert code in (0, 5), err  # 0 with truncation damage if the header survived, 5 if not
    assert "Traceback" not in err
