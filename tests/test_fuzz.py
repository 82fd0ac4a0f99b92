"""The pipeline fuzzer (fuzz/): a bounded deterministic run, the saved regressions, and a short
coverage-guided run proving the atheris harness works. Longer runs: fuzz/README.md.

The contract: whatever the bytes, analyzing them raises nothing but a PcapsleuthError (one line
and an exit code in the CLI), the JSON is valid, and the summary, Markdown, conn.log and HTML
report render.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "fuzz"))
import fuzz_pipeline as fz  # noqa: E402
from mutate import frames_of, mutate  # noqa: E402

from pcapsleuth.analysis import analyze_capture  # noqa: E402

REGRESSIONS = REPO / "tests" / "fuzz_regressions"


def test_mutator_is_deterministic_and_structural() -> None:
    """Same seed, same inputs; and the structural mutators find the frames of every sample."""
    import random

    seeds = fz.load_seeds()
    assert len(seeds) >= 20
    a = [mutate(random.Random(5), s, seeds) for s in seeds]
    b = [mutate(random.Random(5), s, seeds) for s in seeds]
    assert a == b and a != seeds
    for path in fz.seed_files():
        if path.suffix in (".pcap", ".pcapng") and "malformed" not in path.parts \
                and "fuzz_regressions" not in path.parts:
            expected = analyze_capture(path).capture.frames
            assert len(frames_of(path.read_bytes())) == expected, path


def test_mutator_never_fails() -> None:
    """Every mutator on every seed and on degenerate inputs (the mutator itself must not crash)."""
    import random

    import mutate as m

    seeds = fz.load_seeds()
    rng = random.Random(99)
    inputs = seeds + [b"", b"\x0a", b"\xd4\xc3\xb2\xa1", seeds[0][:30], seeds[-1][:40]]
    for func, _ in m.MUTATORS:
        for data in inputs:
            for _ in range(20):
                out = func(rng, bytearray(data), seeds)
                assert isinstance(out, bytearray)


def test_fuzz_bounded_run() -> None:
    """5,000 mutated samples through the whole pipeline, every 250th with the HTML report."""
    stats = fz.run_random(fz.load_seeds(), iterations=5000, seed=20240901, deep_every=250)
    assert stats.iterations == 5000
    report = "\n\n".join(f"input {data[:64].hex()}...:\n{tb}" for data, tb in stats.failures[:3])
    assert not stats.failures, f"{len(stats.failures)} inputs crashed the pipeline:\n{report}"


@pytest.mark.parametrize("path", sorted(p for p in REGRESSIONS.iterdir() if p.suffix != ".md"),
                         ids=lambda p: p.name)
def test_fuzz_regression_replays(path: Path) -> None:
    fz.run_one(path.read_bytes(), deep=True)


def test_fuzz_regression_out_of_order_syn() -> None:
    """A SYN seen again after data counts as out of order, but no finding may lack frames."""
    result = analyze_capture(REGRESSIONS / "out-of-order-on-syn-only.pcap")
    assert all(f.frames for f in result.findings)
    assert "data.out_of_order" not in {f.id for f in result.findings}


def test_fuzz_regression_timestamps_beyond_2262() -> None:
    """EPB timestamps past what int64 nanoseconds hold: clamped, and listed as damage by frame."""
    result = analyze_capture(REGRESSIONS / "pcapng-timestamp-year-58858.pcapng")
    doc = result.to_json_dict()
    damage = {d["kind"]: d["frames"] for d in doc["capture"]["damage"]}
    assert damage["time_out_of_range"][:3] == [8, 9, 10]
    assert doc["capture"]["last_ts"] == "2262-04-11T23:47:16.854775807Z"
    json.dumps(doc, allow_nan=False)


@pytest.mark.parametrize("name,frames,block", [("pcapng-packet-block-too-short.pcapng", 1, 2),
                                               ("pcapng-idb-too-short-at-eof.pcapng", 0, 1)])
def test_fuzz_regression_short_blocks(name: str, frames: int, block: int) -> None:
    """A pcapng block too short for its own fields (lengths consistent, so framing holds) is
    damage at its place, not a crash nor a read into the next block."""
    info = analyze_capture(REGRESSIONS / name).capture
    assert info.frames == frames
    bad = {d["kind"]: d for d in info.damage.to_list()}["bad_block"]
    assert bad["frames"] == [block] and "too short for its fields" in str(bad["detail"])


def test_fuzz_regression_epb_direction_3() -> None:
    """epb_flags direction bits 11 are invalid (pcapng spec): read as unknown, a valid Direction."""
    from pcapsleuth.capture import read_packets
    from pcapsleuth.packet import Direction

    packets, _ = read_packets(REGRESSIONS / "pcapng-epb-direction-3.pcapng")
    assert {p.no: p.direction for p in packets}[5] == Direction(0)
    assert all(p.direction in set(Direction) for p in packets)


def test_atheris_harness(tmp_path: Path) -> None:
    """The coverage-guided engine runs (libFuzzer through atheris, a test dependency) and finds
    nothing in a short run seeded with the samples."""
    corpus = tmp_path / "corpus"
    proc = subprocess.run(
        [sys.executable, str(REPO / "fuzz" / "fuzz_pipeline.py"), "--engine", "atheris", "--deep-every", "0",
         "-runs=400", "-seed=1", f"-artifact_prefix={tmp_path}/", str(corpus)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Done 400 runs" in proc.stderr
    assert not list(tmp_path.glob("crash-*"))
