#!/usr/bin/env python3
"""The capture reader alone: Rust (pcapsleuth._core) against Python (pcapsleuth.reader).

    .venv/bin/python bench/reader.py                  # bench/data/bench-x1.pcap, median of 3
    .venv/bin/python bench/reader.py --runs 5 --gzip  # also the capture gzip-compressed (in /tmp)

Each run reads every frame of the capture. Python: the records (``RecordReader`` iteration: a
tuple and a bytes object per frame), and the walk without copying a frame (the analysis' hot
path, a handler that only counts: the best the Python reader can do). Rust: ``read_batch``
(the same tuple and bytes per frame: the cost is CPython's objects), and ``read_columns``
(batches of 65,536 frames as arrays and one bytes of frame data: what the engine will use). All
must agree on the frame count. CPU time of this process, so the other processes of a shared
machine count less; a ratio is Python time / Rust time.
Make the capture first: ``sudo python3 bench/make_capture.py`` (bench/README.md).
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from pcapsleuth import _core  # noqa: E402
from pcapsleuth import reader as pyreader  # noqa: E402


def python_records(path: str) -> int:
    src = pyreader.open_capture(path)
    n = 0
    for _ in pyreader.RecordReader(src):
        n += 1
    src.close()
    return n


def python_walk(path: str) -> int:
    src = pyreader.open_capture(path)
    n = 0
    for _ in pyreader.RecordReader(src).walk(lambda *a: None):
        n += 1
    src.close()
    return n


def rust_batches(path: str) -> int:
    reader = _core.open_capture(path)
    n = 0
    while batch := reader.read_batch():
        n += len(batch)
    reader.close()
    return n


def rust_columns(path: str) -> int:
    reader = _core.open_capture(path)
    n = 0
    while (cols := reader.read_columns())["number"]:
        n += len(cols["number"]) // 8
    reader.close()
    return n


def timed(fn: Callable[[str], int], path: str, runs: int) -> tuple[float, int]:
    times, frames = [], 0
    for _ in range(runs):
        start = time.process_time()
        frames = fn(path)
        times.append(time.process_time() - start)
    return statistics.median(times), frames


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("capture", nargs="?", default=str(HERE / "data" / "bench-x1.pcap"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--gzip", action="store_true", help="also time the capture gzip-compressed")
    args = ap.parse_args()
    path = Path(args.capture)
    if not path.exists():
        print(f"reader: {path} is missing; record it with: sudo python3 bench/make_capture.py", file=sys.stderr)
        return 2
    inputs = [("plain", str(path))]
    tmp = None
    if args.gzip:
        tmp = tempfile.mkdtemp(prefix="pcapsleuth-bench-")
        packed = Path(tmp) / (path.name + ".gz")
        with open(path, "rb") as f, gzip.open(packed, "wb", compresslevel=6) as g:
            shutil.copyfileobj(f, g, 1 << 20)
        inputs.append(("gzip", str(packed)))
    try:
        print(f"{path.name}: {path.stat().st_size / 2**20:.0f} MiB; CPU seconds, median of {args.runs}")
        for label, p in inputs:
            py, n_py = timed(python_records, p, args.runs)
            walk, n_walk = timed(python_walk, p, args.runs)
            rs, n_rs = timed(rust_batches, p, args.runs)
            cols, n_cols = timed(rust_columns, p, args.runs)
            assert n_py == n_walk == n_rs == n_cols, (n_py, n_walk, n_rs, n_cols)
            print(f"  {label:5}  {n_rs:,} frames  python records {py:5.2f} s, walk {walk:5.2f} s   rust tuples "
                  f"{rs:5.2f} s ({py / rs:.1f}x the records), columns {cols:5.2f} s ({walk / cols:.1f}x the walk)")
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
