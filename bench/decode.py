#!/usr/bin/env python3
"""The decoder: Rust (``pcapsleuth._core.decode_capture``) against Python (``capture.Capture``).

    .venv/bin/python bench/decode.py                  # bench/data/bench-x1.pcap, median of 3
    .venv/bin/python bench/decode.py --runs 5 --mode trust

Each run reads and decodes every frame of the capture. Python: ``Capture`` iterated, one
``Packet`` per frame (reader + ``Decoder.frame``, its fast path: what the analysis does today).
Rust: ``decode_capture``, the whole capture read and decoded in the core and handed over as
columns (what the engine will use). Both must agree on the frame count. CPU time of this
process, so the other processes of a shared machine count less; the ratio is Python time / Rust
time. Modes: ``off`` (no checksums), ``verify`` (the default), ``trust`` (partial fields trusted).
Make the capture first: ``sudo python3 bench/make_capture.py`` (bench/README.md).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from pcapsleuth import _core  # noqa: E402
from pcapsleuth.capture import Capture  # noqa: E402

MODES = {"off": (False, False), "verify": (True, False), "trust": (True, True)}


def python_decode(path: str, verify: bool, trust: bool) -> int:
    n = 0
    with Capture(path, verify_checksums=verify, trust_partial_checksums=trust) as cap:
        for _ in cap:
            n += 1
    return n


def rust_decode(path: str, verify: bool, trust: bool) -> int:
    n: int = _core.decode_capture(path, verify, trust)["n"]
    return n


def timed(fn: Callable[[str, bool, bool], int], path: str, mode: tuple[bool, bool], runs: int) -> tuple[float, int]:
    times, frames = [], 0
    for _ in range(runs):
        start = time.process_time()
        frames = fn(path, *mode)
        times.append(time.process_time() - start)
    return statistics.median(times), frames


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("capture", nargs="?", default=str(HERE / "data" / "bench-x1.pcap"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mode", choices=[*MODES, "all"], default="verify")
    args = ap.parse_args()
    path = Path(args.capture)
    if not path.exists():
        print(f"decode: {path} is missing; record it with: sudo python3 bench/make_capture.py", file=sys.stderr)
        return 2
    modes = list(MODES) if args.mode == "all" else [args.mode]
    print(f"{path.name}: {path.stat().st_size / 2**20:.0f} MiB; CPU seconds, median of {args.runs}")
    for mode in modes:
        py, n_py = timed(python_decode, str(path), MODES[mode], args.runs)
        rs, n_rs = timed(rust_decode, str(path), MODES[mode], args.runs)
        assert n_py == n_rs, (n_py, n_rs)
        print(f"  {mode:6}  {n_rs:,} frames  python {py:5.2f} s ({n_py / py / 1e3:,.0f} kframes/s)   "
              f"rust {rs:5.2f} s ({n_rs / rs / 1e3:,.0f} kframes/s)   ratio {py / rs:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
