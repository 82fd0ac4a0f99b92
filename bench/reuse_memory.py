#!/usr/bin/env python3
"""Peak RSS of ``pcapsleuth analyze X --json OUT --html OUT2`` on the tuple-reuse captures of
``bench/make_reuse.py``, against the bound README.md states (issue 19, item 8).

    python3 bench/make_reuse.py                      # writes bench/_data/reuse-*.pcap
    .venv/bin/python bench/reuse_memory.py           # both, at --max-connections 20000 and the default
    .venv/bin/python bench/reuse_memory.py --no-html # the analysis alone, for comparison

Each run is a child process (this checkout's package); its peak RSS is ``ru_maxrss`` from
``os.wait4``. The bound is README.md's "Memory" section: 100 MB base + ``--max-connections`` x
6 KB + 200 bytes per connection in the capture. Prints one line per run with the ratio to the
bound and exits 1 when a run exceeds it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_MAX_CONNECTIONS = 200_000


def bound_mb(max_connections: int, connections: int) -> float:
    """README.md's stated bound, in MB (10^6 bytes)."""
    return 100 + max_connections * 6_000 / 1e6 + connections * 200 / 1e6


def run(capture: Path, max_connections: int | None, html: bool) -> tuple[float, float, int]:
    """(peak RSS in MB, wall seconds, exit code) of one analyze."""
    with tempfile.TemporaryDirectory(prefix="pcapsleuth-reuse-") as tmp:
        cmd = [sys.executable, "-m", "pcapsleuth", "analyze", str(capture), "--json", f"{tmp}/out.json", "-q"]
        cmd += ["--html", f"{tmp}/out.html"] if html else ["--no-html"]
        if max_connections is not None:
            cmd += ["--max-connections", str(max_connections)]
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        return usage.ru_maxrss / 1024 * 1.048576, wall, os.waitstatus_to_exitcode(status)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("captures", nargs="*", type=Path,
                    default=[HERE / "_data" / "reuse-1x100000.pcap", HERE / "_data" / "reuse-3x60000.pcap"])
    ap.add_argument("--max-connections", type=int, action="append",
                    help="runs at these limits (default: 20000 and pcapsleuth's default)")
    ap.add_argument("--no-html", action="store_true", help="without the report (the analysis alone)")
    args = ap.parse_args()
    limits = args.max_connections or [20_000, None]
    worst = 0.0
    for capture in args.captures:
        if not capture.exists():
            print(f"{capture}: missing; run bench/make_reuse.py first", file=sys.stderr)
            return 2
        # Attempts = connections: two frames each (SYN, RST/ACK).
        with open(capture, "rb") as f:
            f.seek(0, os.SEEK_END)
            connections = (f.tell() - 24) // 2 // 70
        for limit in limits:
            rss, wall, code = run(capture, limit, not args.no_html)
            bound = bound_mb(limit or DEFAULT_MAX_CONNECTIONS, connections)
            ratio = rss / bound
            worst = max(worst, ratio)
            print(f"{capture.name}: --max-connections {limit or f'{DEFAULT_MAX_CONNECTIONS} (default)'}"
                  f"{' --no-html' if args.no_html else ' --html'}: peak RSS {rss:,.0f} MB, bound {bound:,.0f} MB,"
                  f" ratio {ratio:.2f}, {wall:.1f} s, exit {code}", flush=True)
            if code not in (0, 1):
                return 2
    print(f"worst ratio to the stated bound: {worst:.2f} ({'within' if worst <= 1 else 'OVER'} the bound)")
    return 0 if worst <= 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
