"""The Rust capture reader (``pcapsleuth._core``, crates/core) against the Python one (reader.py).

The Python reader is the oracle: on every capture under samples/, tests/malformed/,
tests/fuzz_regressions/ and the public corpus (zeek and tcpdump), and on compressed, cut and
corrupted variants built here, the Rust reader must give the same frames (number, timestamp ns,
link type, interface, caplen, orig_len, direction, bytes), the same capture info (format,
compression, interfaces with their clocks, comments, sections, bytes unread) and the same damage
(kinds, counts, frames, detail texts), and raise the same exception class with the same message
for input that cannot be read, including a decompression bound hit part way (with the same
frames before it). A failure lists every file that differs and how.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import random
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import REPO, corpus_root, sample_captures  # noqa: E402

from pcapsleuth import _core  # noqa: E402
from pcapsleuth import reader as pyreader  # noqa: E402
from pcapsleuth.errors import PcapsleuthError  # noqa: E402

Frames = list[tuple[int, int, int, int, int, int, int, bytes]]
Outcome = tuple[Frames, tuple[str, str] | None, dict[str, Any] | None]

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".gz", ".bz2", ".xz", ".txt")


def _tsresol(kind: str, n: int) -> tuple[int, int]:
    """The Rust reader's ``(kind, n)`` clock as reader.Interface.tsresol_ns ``(multiplier, divisor)``."""
    if kind == "binary":
        return 1_000_000_000, 1 << n
    return (10 ** (9 - n), 1) if n <= 9 else (1, 10 ** (n - 9))


def read_python(source: str | bytes, max_decompressed: int, max_expansion: float = pyreader.MAX_EXPANSION) -> Outcome:
    """Everything reader.py says about ``source``, read as capture.Capture reads it."""
    try:
        src = pyreader.open_capture(source, max_decompressed=max_decompressed, max_expansion=max_expansion)
    except PcapsleuthError as exc:
        return [], (type(exc).__name__, str(exc)), None
    rec = pyreader.RecordReader(src)
    frames: Frames = []

    def handler(buf: bytes, start: int, caplen: int, wirelen: int, no: int, ts: int, iface: int, direction: int,
                linktype: int) -> tuple[int, int, int, int, int, int, int, bytes]:
        return no, ts, linktype, iface, caplen, wirelen, direction, bytes(buf[start:start + caplen])

    error = None
    try:
        for frame in rec.walk(handler):
            frames.append(frame)
    except OSError as exc:  # as capture.Capture does
        rec.damage.add("truncated_file", rec.frames + 1, f"read error: {exc}")
    except PcapsleuthError as exc:
        error = (type(exc).__name__, str(exc))
    finally:
        src.close()
    info = {
        "path": src.path, "size": src.size, "format": src.format, "compression": src.compression,
        "frames": rec.frames, "first_ts": rec.first_ts, "last_ts": rec.last_ts,
        "interfaces": [{
            "id": i.id, "linktype": i.linktype, "link_type": i.linktype_name, "snaplen": i.snaplen,
            "tsresol": i.tsresol_ns, "tsoffset_s": i.tsoffset_s, "name": i.name, "description": i.description,
            "section": i.section, "fcslen": i.fcslen, "frames": i.frames,
        } for i in rec.interfaces],
        "damage": rec.damage.to_list(), "comments": rec.comments, "section_comments": rec.section_comments,
        "comments_left_out": rec.comments_left_out, "sections": rec.sections, "bytes_unread": rec.bytes_unread,
        "shb_info": rec.shb_info,
    }
    return frames, error, (None if error else info)


def read_rust(source: str | bytes, max_decompressed: int, max_expansion: float = _core.MAX_EXPANSION) -> Outcome:
    try:
        reader = _core.open_capture(source, max_decompressed, max_expansion)
    except PcapsleuthError as exc:
        return [], (type(exc).__name__, str(exc)), None
    frames: Frames = []
    error = None
    try:
        while batch := reader.read_batch(1000):
            frames.extend(batch)
    except PcapsleuthError as exc:
        error = (type(exc).__name__, str(exc))
    raw = reader.info()
    reader.close()
    info: dict[str, Any] = dict(raw)
    info["interfaces"] = [{**i, "tsresol": _tsresol(*i["tsresol"])} for i in raw["interfaces"]]
    return frames, error, (None if error else info)


def diff(source: str | bytes, max_decompressed: int = 64 * 1024**3,
         max_expansion: float = pyreader.MAX_EXPANSION) -> tuple[list[str], int]:
    """How the two readers differ on ``source`` (nothing when they agree), and the frames compared."""
    py = read_python(source, max_decompressed, max_expansion)
    rs = read_rust(source, max_decompressed, max_expansion)
    out = []
    if py[1] != rs[1]:
        out.append(f"error: python {py[1]} rust {rs[1]}")
    if len(py[0]) != len(rs[0]):
        out.append(f"frames: python {len(py[0])} rust {len(rs[0])}")
    for a, b in zip(py[0], rs[0], strict=False):
        if a != b:
            out.append(f"frame {a[0]}: python {a[:7]} rust {b[:7]} (bytes {'equal' if a[7] == b[7] else 'differ'})")
            break
    if py[2] is not None and rs[2] is not None:
        for key in py[2]:
            if py[2][key] != rs[2].get(key):
                out.append(f"{key}: python {str(py[2][key])[:300]} rust {str(rs[2].get(key))[:300]}")
    return out, len(py[0])


def _check(sources: list[tuple[str, Callable[[], tuple[list[str], int]]]], at_least: int, *,
           frames_read: bool = True) -> None:
    """Compares every source; fails listing each that differs. ``at_least``: sources expected;
    ``frames_read``: some of them have frames (the comparison is not of errors alone)."""
    assert len(sources) >= at_least, f"only {len(sources)} captures found"
    mismatches, frames = [], 0
    for name, compare in sources:
        problems, n = compare()
        frames += n
        if problems:
            mismatches.append(f"{name}: " + "; ".join(problems))
    assert not mismatches, f"{len(mismatches)} of {len(sources)} captures differ:\n" + "\n".join(mismatches)
    assert frames > 0 or not frames_read


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name.endswith(CAPTURE_SUFFIXES))


def _paths(paths: list[Path]) -> list[tuple[str, Callable[[], tuple[list[str], int]]]]:
    return [(str(p), lambda p=p: diff(str(p))) for p in paths]  # type: ignore[misc]


# -- the committed captures and the corpus --------------------------------------------------------
def test_samples() -> None:
    _check(_paths(sample_captures()), at_least=30)


def test_malformed_and_fuzz_regressions() -> None:
    paths = _files(REPO / "tests" / "malformed") + _files(REPO / "tests" / "fuzz_regressions")
    _check(_paths(paths), at_least=20)
    # The bomb with the bound the malformed set runs it with.
    bomb = str(REPO / "tests/malformed/gzip-bomb.pcap.gz")
    _check([("gzip-bomb 1e6", lambda: diff(bomb, 1_000_000))], 1, frames_read=False)


@pytest.mark.parametrize("corpus_name,at_least", [("zeek", 100), ("tcpdump", 800)])
def test_public_corpus(corpus: Path, corpus_name: str, at_least: int) -> None:
    _check(_paths(_files(corpus_root() / corpus_name)), at_least=at_least)


# -- variants built here: compressed, cut, corrupted, bounded -------------------------------------
def _seed_captures() -> list[bytes]:
    picks = ["samples/basic/clean-ethernet.pcap", "samples/incidents/lb-client.pcap"]
    data = [(REPO / p).read_bytes() for p in picks]
    zeek = corpus_root() / "zeek" / "pcapng-multi-interface" / "trace.pcapng"
    if zeek.exists():
        data.append(zeek.read_bytes())
    return data


def _compressors() -> dict[str, Callable[[bytes], bytes]]:
    return {
        "gzip": lambda d: gzip.compress(d, 6, mtime=0),
        "bzip2": lambda d: bz2.compress(d, 1),
        "xz": lambda d: lzma.compress(d),
    }


def test_compressed_cut_and_corrupted_variants() -> None:
    rng = random.Random(21)
    sources: list[tuple[str, Callable[[], tuple[list[str], int]]]] = []
    for i, data in enumerate(_seed_captures()):
        # Big enough that streams span many 8 KiB feeds and several bzip2 blocks.
        data = data if len(data) > 300_000 else data + data[24 if data[:4] != b"\x0a\x0d\x0d\x0a" else 0:] * 4
        for name, compress in _compressors().items():
            packed = compress(data)
            half = len(data) // 2
            members = compress(data[:half]) + compress(data[half:]) + bytes(100)
            variants = {"whole": packed, "members+padding": members}
            for k in range(4):
                variants[f"cut{k}"] = packed[:rng.randrange(1, len(packed))]
                bad = bytearray(packed)
                at = rng.randrange(len(bad))
                bad[at:at + rng.randrange(1, 20)] = bytes(rng.randrange(256) for _ in range(8))
                variants[f"corrupt{k}"] = bytes(bad)
            for label, blob in variants.items():
                sources.append((f"seed{i} {name} {label}", lambda b=blob: diff(b)))  # type: ignore[misc]
            # The bound hit part way, after some frames, and at the magic.
            for limit in (len(data) // 3, 3):
                sources.append((f"seed{i} {name} bound {limit}", lambda b=packed, n=limit: diff(b, n)))  # type: ignore[misc]
    _check(sources, at_least=60)


def test_compressed_damage_far_from_the_start() -> None:
    """Members longer than the mebibyte held back (frames read unverified before a rejection),
    damage in a second member, a reading stopped by frame damage before the corruption (the rest
    checked unread), and bombs of empty records against the expansion bound."""
    rng = random.Random(1919)
    base = (REPO / "samples/incidents/lb-client.pcap").read_bytes()
    body = base[24:]
    big = base + body * (3_000_000 // len(body))
    insane = bytearray(big)
    insane[24 + 8:24 + 12] = (1 << 30).to_bytes(4, "little")  # the first record's caplen: 1 GiB
    zeros = base[:24] + bytes(20 << 20)
    sources: list[tuple[str, Callable[[], tuple[list[str], int]]]] = []
    for name, compress in _compressors().items():
        packed = compress(big)
        for k in range(3):
            bad = bytearray(packed)
            at = rng.randrange(len(bad) // 2, len(bad))
            bad[at] ^= 0x55
            sources.append((f"big {name} corrupt{k} at {at}", lambda b=bytes(bad): diff(b)))  # type: ignore[misc]
        second = compress(base) + packed
        bad = bytearray(second)
        bad[len(second) - len(packed) // 3] ^= 0xFF
        sources.append((f"{name} second member corrupt", lambda b=bytes(bad): diff(b)))  # type: ignore[misc]
        stopped = compress(bytes(insane))
        sources.append((f"{name} stopped, clean rest", lambda b=stopped: diff(b)))  # type: ignore[misc]
        bad = bytearray(stopped)
        bad[len(bad) * 3 // 4] ^= 0xFF
        sources.append((f"{name} stopped, corrupt rest", lambda b=bytes(bad): diff(b)))  # type: ignore[misc]
        bomb = compress(zeros)
        sources.append((f"{name} zeros", lambda b=bomb: diff(b)))  # type: ignore[misc]
        sources.append((f"{name} zeros, no ratio bound", lambda b=bomb: diff(b, max_expansion=0)))  # type: ignore[misc]
        sources.append((f"{name} zeros, ratio 5000", lambda b=bomb: diff(b, max_expansion=5000.5)))  # type: ignore[misc]
    _check(sources, at_least=27)


def test_mutated_captures() -> None:
    """Random byte flips, length fields set to edge values, cuts: the framing under attack."""
    rng = random.Random(2021)
    seeds = [p.read_bytes()[:20_000] for p in _files(REPO / "samples")[:12]]
    seeds += [p.read_bytes() for p in _files(REPO / "tests" / "fuzz_regressions")]
    sources: list[tuple[str, Callable[[], tuple[list[str], int]]]] = []
    for s, data in enumerate(seeds):
        for m in range(25):
            buf = bytearray(data)
            for _ in range(rng.randint(1, 6)):
                choice = rng.random()
                if choice < 0.4:
                    buf[rng.randrange(min(len(buf), 96))] = rng.randrange(256)
                elif choice < 0.7:
                    at = rng.randrange(max(1, len(buf) - 4)) & ~3
                    buf[at:at + 4] = rng.choice([0, 13, 0xFFFFFFFF, 0x7FFFFFF0, 262_145]).to_bytes(4, "little")
                elif choice < 0.85:
                    del buf[rng.randrange(1, len(buf)):]
                else:
                    buf[rng.randrange(len(buf))] ^= 0xFF
            sources.append((f"seed{s} mutant{m}", lambda b=bytes(buf): diff(b)))  # type: ignore[misc]
    _check(sources, at_least=300)


def test_inputs_that_are_no_captures(tmp_path: Path) -> None:
    (tmp_path / "empty.pcap").write_bytes(b"")
    (tmp_path / "a-directory.pcap").mkdir()
    os.mkfifo(tmp_path / "a-fifo.pcap")
    (tmp_path / "zstd.pcap").write_bytes(b"\x28\xb5\x2f\xfd" + bytes(20))
    (tmp_path / "text.gz").write_bytes(gzip.compress(b"not a capture"))
    (tmp_path / "short.pcap").write_bytes(b"\xd4\xc3\xb2\xa1\x02\x00")
    names = ["empty.pcap", "a-directory.pcap", "a-fifo.pcap", "zstd.pcap", "text.gz", "short.pcap", "missing.pcap"]
    sources = [(n, lambda p=str(tmp_path / n): diff(p)) for n in names]  # type: ignore[misc]
    for problems, _ in (compare() for _, compare in sources):
        assert not problems, problems
    # Both readers raised: the comparison above is of two errors, not of two empty captures.
    for n in names:
        frames, error, info = read_rust(str(tmp_path / n), 1 << 30)
        assert error is not None and info is None and not frames, n


# -- the binding itself -----------------------------------------------------------------------------
def test_errors_are_the_pcapsleuth_classes(tmp_path: Path) -> None:
    from pcapsleuth.errors import CaptureNotFoundError, DecompressionError, NotACaptureError

    with pytest.raises(CaptureNotFoundError, match="no such file") as missing:
        _core.open_capture(str(tmp_path / "nope.pcap"))
    assert isinstance(missing.value, FileNotFoundError) and missing.value.path == str(tmp_path / "nope.pcap")
    with pytest.raises(NotACaptureError, match=re.escape("(magic 68656c6c)")):
        _core.open_capture(b"hello world")
    bomb = REPO / "tests" / "malformed" / "gzip-bomb.pcap.gz"
    reader = _core.open_capture(bomb, 1_000_000)
    with pytest.raises(DecompressionError, match="more than 1,000,000 bytes"):
        while reader.read_batch():
            pass


def test_a_rust_panic_is_the_documented_internal_error(capfd: pytest.CaptureFixture[str]) -> None:
    """Never an abort, never a BaseException the CLI would not catch: an Exception (exit 7)."""
    with pytest.raises(_core.InternalError, match="deliberate panic") as caught:
        _core._panic_for_test()
    assert isinstance(caught.value, RuntimeError) and isinstance(caught.value, Exception)
    assert capfd.readouterr().err == ""  # the panic hook prints nothing: the error stays one line


def test_batches_and_the_info_after_them() -> None:
    path = REPO / "samples" / "incidents" / "lb-client.pcap"
    reader = _core.open_capture(path)
    sizes = []
    while batch := reader.read_batch(7):
        sizes.append(len(batch))
    assert sizes and max(sizes) == 7 and sum(sizes) == reader.info()["frames"]
    assert reader.read_batch() == []  # after the end, still the end
    reader.close()
    with pytest.raises(RuntimeError, match="closed"):
        reader.info()


# -- packaging --------------------------------------------------------------------------------------
def test_wheel_version_is_the_package_version() -> None:
    """The wheel takes its version from Cargo.toml (maturin); pcapsleuth --version from _version.py."""
    from pcapsleuth._version import __version__

    cargo = (REPO / "Cargo.toml").read_text()
    match = re.search(r'^\[workspace\.package\]\nversion = "([^"]+)"', cargo, re.M)
    assert match and match.group(1) == __version__


def test_every_report_template_ships_in_the_wheel() -> None:
    """pyproject's wheel data links each file of reports/ into pcapsleuth/_reports (a new template
    needs its link: ln -s ../../../../../../reports/templates/NAME packaging/wheel-data/purelib/
    pcapsleuth/_reports/templates/NAME)."""
    data = REPO / "packaging" / "wheel-data" / "purelib" / "pcapsleuth" / "_reports"
    shipped = {p.relative_to(data): p.resolve() for p in data.rglob("*") if p.is_symlink()}
    wanted = {p.relative_to(REPO / "reports"): p.resolve() for p in (REPO / "reports").rglob("*")
              if p.is_file() and "__pycache__" not in p.parts}
    assert shipped == wanted


def test_columns_are_the_frames() -> None:
    """read_columns: the same frames as read_batch, as little-endian arrays and one bytes of data."""
    for name in ["samples/incidents/lb-client.pcap", "tests/malformed/pcapng-epb-missing-interface.pcapng"]:
        path = REPO / name
        tuples = []
        reader = _core.open_capture(path)
        while batch := reader.read_batch():
            tuples.extend(batch)
        reader = _core.open_capture(path)
        rebuilt = []
        while (cols := reader.read_columns(5))["number"]:
            arrays = [memoryview(cols[name]).cast(code) for name, code in [
                ("number", "Q"), ("ts_ns", "q"), ("link_type", "i"), ("interface", "i"), ("caplen", "I"),
                ("orig_len", "I"), ("direction", "B"), ("offsets", "Q")]]
            *fields, offsets = arrays
            assert len(offsets) == len(fields[0]) + 1 <= 6
            for i in range(len(fields[0])):
                rebuilt.append((*(int(f[i]) for f in fields), cols["data"][offsets[i]:offsets[i + 1]]))
        assert rebuilt == tuples and any(t[2] == -1 for t in rebuilt) == path.name.startswith("pcapng-epb")


def test_standard_input_is_read_as_the_python_reader_reads_it() -> None:
    """'-' reads a pipe: no size, no file offsets (both readers say 'at byte -1')."""
    import subprocess

    script = (
        "import sys, json\n"
        "sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "import test_core_reader as t\n"
        "frames, error, info = getattr(t, 'read_' + sys.argv[3])('-', 1 << 40)\n"
        "print(json.dumps([len(frames), sum(len(f[7]) for f in frames), error, info and info['damage'],"
        " info and info['size'], info and info['bytes_unread']]))\n"
    )
    data = (REPO / "tests/malformed/pcapng-block-length-huge.pcapng").read_bytes()
    outs = []
    for which in ("python", "rust"):
        proc = subprocess.run([sys.executable, "-c", script, str(REPO), str(REPO / "tests"), which], input=data,
                              capture_output=True, timeout=120, check=True)
        outs.append(proc.stdout)
    assert outs[0] == outs[1] and b"at byte -1" in outs[0] and b"null" in outs[0], outs
