#!/usr/bin/env python3
"""Run pcapsleuth and the reference tools side by side on the benchmark capture.

    python3 bench/make_capture.py                  # once, as root: bench/data/bench-x1.pcap
    python3 bench/make_capture.py --scale 10       # once, as root: bench/data/bench-x10.pcap
    .venv/bin/python bench/run.py                  # 3 runs of each tool, the table, the verdicts
    .venv/bin/python bench/run.py --runs 5 --json bench/data/results.json

Rows, each run as a child process (round robin, so a busy moment hits every tool alike):

* ``pcapsleuth`` - ``pcapsleuth analyze X --json OUT --no-html`` (findings + JSON, no report);
* ``pcapsleuth+html`` - the same with ``--html OUT`` (skipped, with a note, when the CLI has no
  ``--html``/``--no-html`` yet);
* ``tshark`` - ``tshark -r X -q -z expert``, Wireshark's expert analysis: the reference;
* ``tcptrace`` - ``tcptrace -n -l X``;
* ``pyshark`` - a child python iterating the first ``--pyshark-packets`` packets with pyshark;
  its time is also extrapolated to the whole capture;
* ``pcapsleuth x10`` - pcapsleuth (JSON only) on bench-x10.pcap, when it exists: its peak RSS
  against the 1x run shows whether memory grows with frames or with concurrent connections.

Wall time, CPU time (user + sys of the child and its children, from ``os.wait4``) and peak RSS
(``ru_maxrss``) are the medians over the runs. pcapsleuth runs from this checkout
(``python -m pcapsleuth`` with the repository on PYTHONPATH), not from whatever is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"

PYSHARK_CHILD = r"""
import sys, time
import pyshark
path, limit = sys.argv[1], int(sys.argv[2])
t0 = time.perf_counter()
cap = pyshark.FileCapture(path, keep_packets=False)
n = 0
flows = {}
try:
    for pkt in cap:
        n += 1
        tcp = getattr(pkt, "tcp", None)
        if tcp is not None:  # touch what an analysis needs: the flow and its flags
            key = (pkt.ip.src if hasattr(pkt, "ip") else pkt.ipv6.src, tcp.srcport, tcp.dstport)
            flows[key] = flows.get(key, 0) + int(tcp.flags, 16)
        if n >= limit:
            break
finally:
    cap.close()
print(n, time.perf_counter() - t0)
"""


@dataclass
class Run:
    wall: float
    cpu: float
    rss_kb: int
    code: int


@dataclass
class Row:
    name: str
    command: list[str]
    runs: list[Run] = field(default_factory=list)
    note: str = ""
    extrapolated_wall: float | None = None  # pyshark: the time for the whole capture at its rate
    packets: int | None = None

    @property
    def wall(self) -> float:
        return statistics.median(r.wall for r in self.runs)

    @property
    def cpu(self) -> float:
        return statistics.median(r.cpu for r in self.runs)

    @property
    def rss_mb(self) -> float:
        return statistics.median(r.rss_kb for r in self.runs) / 1024


def measure(cmd: list[str], *, env: dict[str, str] | None = None, timeout: float,
            mem_limit: int = 0) -> tuple[Run, bytes]:
    """Run ``cmd``; wall time, user+sys CPU and peak RSS of it and its waited-for children.

    ``mem_limit`` (bytes, 0 for none) caps the child's address space, so a run that would eat the
    machine fails alone (MemoryError, a non-zero exit) instead of pushing everything into swap.
    """

    def limit() -> None:
        if mem_limit:
            resource.setrlimit(resource.RLIMIT_AS, (mem_limit, mem_limit))

    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT, preexec_fn=limit)
        deadline = t0 + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.005)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped: keep Popen quiet
        out.seek(0)
        output = out.read()
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, proc.returncode), output


def pcapsleuth_cmd(python: str) -> list[str]:
    return [python, "-m", "pcapsleuth"]


def has_flag(python: str, env: dict[str, str], flag: str) -> bool:
    out = subprocess.run([*pcapsleuth_cmd(python), "analyze", "--help"], capture_output=True, text=True, env=env,
                         cwd=ROOT, check=False)
    return flag in out.stdout


def facts_of(capture: Path) -> dict[str, object]:
    meta = capture.with_suffix(".json")
    if meta.exists():
        return dict(json.loads(meta.read_text()))
    return {}


def fmt_ratio(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}" if x >= 0.1 else f"{x:.2g}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--capture", type=Path, default=DATA / "bench-x1.pcap", help="default bench/data/bench-x1.pcap")
    ap.add_argument("--capture-x10", type=Path, default=DATA / "bench-x10.pcap",
                    help="default bench/data/bench-x10.pcap (row skipped when missing)")
    ap.add_argument("--runs", type=int, default=3, help="runs per tool (default 3)")
    ap.add_argument("--runs-x10", type=int, default=1, help="runs of pcapsleuth on the x10 capture (default 1)")
    ap.add_argument("--pyshark-packets", type=int, default=20_000, help="packets pyshark reads (default 20000)")
    ap.add_argument("--python", default=None, help="python for pcapsleuth and pyshark (default: .venv/bin/python)")
    ap.add_argument("--only", action="append", default=[],
                    help="run only these rows (pcapsleuth, pcapsleuth+html, tshark, tcptrace, pyshark, x10)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per run before it is killed")
    ap.add_argument("--mem-limit-gb", type=float, default=12,
                    help="address-space cap per run (default 12 GiB; 0 for none): a failed run beats a dead box")
    ap.add_argument("--json", type=Path, help="also write the table and verdicts as JSON here")
    args = ap.parse_args()

    capture = args.capture.resolve()
    if not capture.exists():
        print(f"run: {capture} does not exist; record it first: sudo python3 bench/make_capture.py", file=sys.stderr)
        return 2
    python = args.python or str(ROOT / ".venv" / "bin" / "python")
    if not Path(python).exists():
        python = sys.executable
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out_dir = Path(tempfile.mkdtemp(prefix="pcapsleuth-bench-"))
    facts = facts_of(capture)
    frames = int(facts.get("frames", 0)) or None  # type: ignore[call-overload]
    wanted = set(args.only)
    mem_limit = int(args.mem_limit_gb * 2**30)

    def want(name: str) -> bool:
        return not wanted or name in wanted

    rows: list[Row] = []
    notes: list[str] = []
    no_html = has_flag(python, env, "--no-html")
    ps = pcapsleuth_cmd(python)
    json_out = str(out_dir / "out.json")
    if want("pcapsleuth"):
        rows.append(Row("pcapsleuth", [*ps, "analyze", str(capture), "--json", json_out]
                        + (["--no-html"] if no_html else [])))
    if want("pcapsleuth+html"):
        if no_html and has_flag(python, env, "--html"):
            rows.append(Row("pcapsleuth+html", [*ps, "analyze", str(capture), "--json", json_out,
                                                "--html", str(out_dir / "out.html")]))
        else:
            notes.append("pcapsleuth+html skipped: this pcapsleuth has no --html/--no-html flags yet")
    for tool, cmd in (("tshark", ["tshark", "-r", str(capture), "-q", "-z", "expert"]),
                      ("tcptrace", ["tcptrace", "-n", "-l", str(capture)])):
        if not want(tool):
            continue
        if shutil.which(tool) is None:
            notes.append(f"{tool} skipped: not installed (sudo apt-get install -y {tool})")
            continue
        rows.append(Row(tool, cmd))
    if want("pyshark"):
        rows.append(Row("pyshark", [python, "-c", PYSHARK_CHILD, str(capture), str(args.pyshark_packets)],
                        note=f"first {args.pyshark_packets:,} packets"))

    for i in range(args.runs):
        for row in rows:
            run, output = measure(row.command, env=env, timeout=args.timeout, mem_limit=mem_limit)
            row.runs.append(run)
            if row.name == "pcapsleuth" and i == 0 and run.code == 0:
                doc = json.loads(Path(json_out).read_text())
                print(f"  pcapsleuth found {doc['capture']['frames']:,} frames, {len(doc['connections']):,} "
                      f"connections, {len(doc['findings'])} findings: "
                      f"{', '.join(sorted({f['id'] for f in doc['findings']}))}", file=sys.stderr)
                del doc
            status = "" if run.code == 0 else f"  EXIT {run.code}: {output.decode(errors='replace').strip()[-300:]}"
            print(f"  run {i + 1}/{args.runs} {row.name:16} wall {run.wall:7.2f}s  cpu {run.cpu:7.2f}s  "
                  f"rss {run.rss_kb / 1024:7.0f} MB{status}", file=sys.stderr, flush=True)
            if row.name == "pyshark" and run.code == 0:
                n, secs = output.decode().split()[-2:]
                row.packets = int(n)
                if frames:
                    rate = int(n) / float(secs)
                    row.extrapolated_wall = frames / rate if rate else None

    x10: Row | None = None
    x10_capture = args.capture_x10.resolve()
    if want("x10") or not wanted:
        if x10_capture.exists():
            x10 = Row("pcapsleuth x10", [*ps, "analyze", str(x10_capture), "--json", str(out_dir / "x10.json")]
                      + (["--no-html"] if no_html else []))
            for i in range(args.runs_x10):
                run, output = measure(x10.command, env=env, timeout=args.timeout * 10, mem_limit=mem_limit)
                x10.runs.append(run)
                print(f"  run {i + 1}/{args.runs_x10} {x10.name:16} wall {run.wall:7.2f}s  cpu {run.cpu:7.2f}s  "
                      f"rss {run.rss_kb / 1024:7.0f} MB", file=sys.stderr, flush=True)
        else:
            notes.append(f"x10 row skipped: {x10_capture} missing (sudo python3 bench/make_capture.py --scale 10)")

    by_name = {r.name: r for r in rows}
    ts = by_name.get("tshark")
    ours = by_name.get("pcapsleuth")
    html = by_name.get("pcapsleuth+html")

    # ---- table ---------------------------------------------------------------------------------
    size_mb = capture.stat().st_size / 2**20
    print(f"\ncapture {capture.name}: {frames or '?'} frames, {size_mb:.0f} MiB, "
          f"{facts.get('connections_attempted', '?')} connections; {args.runs} runs each, medians; "
          f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs")
    header = (f"{'tool':18} {'wall s':>8} {'cpu s':>8} {'peak RSS MB':>12} {'speedup vs tshark':>18} "
              f"{'RSS / tshark':>13}  note")
    print(header)
    print("-" * len(header))
    table = []
    for row in [*rows, *([x10] if x10 and x10.runs else [])]:
        if not row.runs:
            continue
        ok = all(r.code == 0 for r in row.runs)
        wall = row.extrapolated_wall if row.extrapolated_wall else row.wall
        speedup = ts.wall / wall if ts and ts.runs and row is not x10 else None
        rss_ratio = row.rss_mb / ts.rss_mb if ts and ts.runs else None
        note = row.note
        if row.extrapolated_wall:
            note += f"; {row.wall:.1f} s for {row.packets:,} packets, extrapolated to all frames"
        if not ok:
            note += "; FAILED (non-zero exit)"
        print(f"{row.name:18} {wall:8.2f} {row.cpu:8.2f} {row.rss_mb:12.0f} {fmt_ratio(speedup):>18} "
              f"{fmt_ratio(rss_ratio):>13}  {note.strip('; ')}")
        table.append({"tool": row.name, "command": row.command, "wall_s": round(wall, 3),
                      "measured_wall_s": round(row.wall, 3), "cpu_s": round(row.cpu, 3),
                      "peak_rss_mb": round(row.rss_mb, 1), "speedup_vs_tshark": speedup,
                      "rss_vs_tshark": rss_ratio, "runs": [asdict(r) for r in row.runs], "ok": ok,
                      "note": note.strip("; ")})
    for note in notes:
        print(f"note: {note}")

    # ---- verdicts (issue 8's "done when") -----------------------------------------------------------
    verdicts: dict[str, object] = {}
    print()
    if ours and ours.runs and ts and ts.runs:
        speedup = ts.wall / ours.wall
        verdicts["speedup"] = speedup
        print(f"{'PASS' if speedup >= 3 else 'FAIL'}  analyze (findings + JSON) runs at {speedup:.2f}x the speed of "
              f"tshark's expert pass (need >= 3x, goal 5x)")
        rss = ours.rss_mb / ts.rss_mb
        verdicts["rss_ratio"] = rss
        print(f"{'PASS' if rss <= 0.25 else 'FAIL'}  peak RSS {ours.rss_mb:.0f} MB = {rss:.0%} of tshark's "
              f"{ts.rss_mb:.0f} MB (need <= 25%)")
    if ours and ours.runs and x10 and x10.runs:
        grow = x10.rss_mb / ours.rss_mb
        verdicts["x10_rss_ratio"] = grow
        print(f"{'PASS' if grow <= 1.5 else 'FAIL'}  x10 capture peak RSS {x10.rss_mb:.0f} MB = {grow:.2f}x the "
              f"x1's (need <= 1.5x)")
    if ours and ours.runs and html and html.runs:
        extra = html.wall - ours.wall
        verdicts["html_extra_s"] = extra
        print(f"{'PASS' if extra <= 1 else 'FAIL'}  the HTML report adds {extra:.2f} s (need <= 1 s)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"capture": str(capture), "facts": facts, "runs": args.runs,
                                         "rows": table, "verdicts": verdicts, "notes": notes,
                                         "python": platform.python_version(), "cpus": os.cpu_count()},
                                        indent=2) + "\n")
        print(f"\nwrote {args.json}")
    shutil.rmtree(out_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
