#!/usr/bin/env python3
"""Record the benchmark capture: real loopback TCP connections in a network namespace.

    sudo python3 bench/make_capture.py             # bench/data/bench-x1.pcap:  ~550k frames, 48k conns, 24 s
    sudo python3 bench/make_capture.py --scale 10  # bench/data/bench-x10.pcap: ~5.5M frames, 480k conns, 4 min

A fresh namespace gets its loopback up, 64 IPv4 and 16 IPv6 client addresses, a wide ephemeral
port range and TIME-WAIT reuse off (so no 4-tuple is reused: every connection in the capture is a
connection of its own). tcpdump records ``lo`` while ``loadgen`` (bench/loadgen.c, compiled here
with gcc) runs the connection mix at 2,000 new connections a second (``--rate``): ~80% clean
request/response, 10% refused, 10% reset (half by the client with SO_LINGER 0, half by the server
closing with the request unread); a quarter of them over IPv6. The capture and a ``.json`` of its
facts (frames, connection counts, drops) go to bench/data/ (gitignored). Needs root, tcpdump and
gcc; installs tcptrace/tshark with apt-get if missing, since bench/run.py compares against them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NoReturn

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "data"
CONNS_PER_SCALE = 48_000  # ~11.4 frames per connection: >= 500k frames at scale 1
MIN_FRAMES_PER_SCALE = 500_000
BASE_PORT = 20_000
SERVER_PORTS = 8
V4_SOURCES = 64
V6_SOURCES = 16
#: A busy host, not a flood: ~22k frames/s, so the 1x capture spans ~24 s and the 10x one ~4 min.
#: Connections then end and go quiet as the capture streams, as on a real host, and the tracker's
#: memory can follow the connections alive at a time (a few thousand) instead of all of them.
DEFAULT_RATE = 2000.0


def die(msg: str) -> NoReturn:
    print(f"make_capture: {msg}", file=sys.stderr)
    raise SystemExit(1)


def run(*cmd: str, ns: str | None = None, **kw: object) -> subprocess.CompletedProcess[str]:
    full = ["ip", "netns", "exec", ns, *cmd] if ns else list(cmd)
    return subprocess.run(full, check=True, text=True, **kw)  # type: ignore[call-overload, no-any-return]


def ensure_tools() -> None:
    missing = [pkg for cmd, pkg in (("tcpdump", "tcpdump"), ("gcc", "gcc"), ("tcptrace", "tcptrace"),
                                    ("tshark", "tshark")) if shutil.which(cmd) is None]
    if missing:
        print(f"make_capture: installing {' '.join(missing)} (apt-get)", file=sys.stderr)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env, stdout=subprocess.DEVNULL)


def build_loadgen(out: Path) -> Path:
    src = HERE / "loadgen.c"
    exe = out / "loadgen"
    if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
        run("gcc", "-O2", "-Wall", "-pthread", "-o", str(exe), str(src))
    return exe


def setup_namespace(ns: str) -> None:
    subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL, check=False)
    run("ip", "netns", "add", ns)
    run("ip", "link", "set", "lo", "up", ns=ns)
    # IPv4: all of 127/8 is local on lo already. IPv6: the server and the client addresses.
    for i in [0xFFFF, *range(1, V6_SOURCES + 1)]:
        run("ip", "-6", "addr", "add", f"fd00:b::{i:x}/128", "dev", "lo", "nodad", ns=ns)
    run("sysctl", "-qw",
        "net.ipv4.ip_local_port_range=1024 65535",
        "net.ipv4.tcp_tw_reuse=0",  # default 2 reuses TIME-WAIT ports on loopback: 4-tuples would repeat
        "net.ipv4.tcp_max_tw_buckets=4000000",
        "net.core.somaxconn=8192",
        "net.ipv4.tcp_max_syn_backlog=8192",
        ns=ns)


def start_tcpdump(ns: str, path: Path, snaplen: int) -> tuple[subprocess.Popen[bytes], Path]:
    log = path.with_suffix(".tcpdump.log")
    logf = open(log, "wb")  # noqa: SIM115 - closed by the caller through the process
    # -Z root: write the file as root (tcpdump drops to its own user otherwise, and cannot write
    # into a root-owned directory). -B: a 256 MiB kernel buffer, so bursts are not dropped.
    proc = subprocess.Popen(["ip", "netns", "exec", ns, "tcpdump", "-i", "lo", "-n", "-Z", "root",
                             "-s", str(snaplen), "-B", "262144", "-w", str(path)],
                            stdout=subprocess.DEVNULL, stderr=logf)
    for _ in range(200):
        if "listening on" in log.read_text(errors="replace"):
            break
        if proc.poll() is not None:
            die(f"tcpdump exited: {log.read_text(errors='replace').strip()}")
        time.sleep(0.05)
    return proc, log


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=1, help="1: >= 500k frames; 10: >= 5M frames (default 1)")
    ap.add_argument("--out-dir", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT}")
    ap.add_argument("--snaplen", type=int, default=262144, help="tcpdump -s (default 262144: whole frames)")
    ap.add_argument("--threads", type=int, default=16, help="client threads (default 16)")
    ap.add_argument("--seed", type=int, default=1, help="connection mix seed (default 1)")
    ap.add_argument("--rate", type=float, default=DEFAULT_RATE,
                    help=f"connections started per second (default {DEFAULT_RATE:g}; 0: as fast as possible)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        die("needs root (network namespace, tcpdump)")
    if args.scale < 1:
        die("--scale must be >= 1")
    ensure_tools()
    out = args.out_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    loadgen = build_loadgen(out)
    name = f"bench-x{args.scale}"
    final = out / f"{name}.pcap"
    tmp = out / f"{name}.pcap.part"
    conns = CONNS_PER_SCALE * args.scale
    ns = f"psbench-{os.getpid()}"
    tcpdump: subprocess.Popen[bytes] | None = None
    try:
        setup_namespace(ns)
        tcpdump, log = start_tcpdump(ns, tmp, args.snaplen)
        t0 = time.monotonic()
        gen = run(str(loadgen), str(conns), str(args.threads), str(SERVER_PORTS), str(BASE_PORT),
                  str(V4_SOURCES), str(V6_SOURCES), "25", "10", "10", str(args.seed), str(args.rate),
                  ns=ns, stdout=subprocess.PIPE)
        elapsed = time.monotonic() - t0
        # tcpdump hands packets over in blocks with a 1 s timeout: wait for the last block.
        time.sleep(2.0)
        tcpdump.send_signal(signal.SIGINT)
        tcpdump.wait(timeout=60)
    finally:
        if tcpdump is not None and tcpdump.poll() is None:
            tcpdump.kill()
            tcpdump.wait()
        subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL, check=False)
    text = log.read_text(errors="replace")
    log.unlink()
    m = re.search(r"(\d+) packets captured", text)
    d = re.search(r"(\d+) packets dropped by kernel", text)
    if not m:
        die(f"tcpdump said: {text.strip()}")
    frames, dropped = int(m.group(1)), int(d.group(1)) if d else -1
    counts = dict(kv.split("=") for kv in gen.stdout.split())
    tmp.replace(final)
    facts = {
        "capture": str(final),
        "scale": args.scale,
        "frames": frames,
        "dropped_by_kernel": dropped,
        "bytes": final.stat().st_size,
        "connections_attempted": conns,
        "mix": {k: int(v) for k, v in counts.items()},
        "snaplen": args.snaplen,
        "seed": args.seed,
        "rate": args.rate,
        "generation_seconds": round(elapsed, 2),
        "kernel": os.uname().release,
    }
    final.with_suffix(".json").write_text(json.dumps(facts, indent=2) + "\n")
    print(json.dumps(facts, indent=2))
    if dropped:
        print(f"make_capture: warning: tcpdump dropped {dropped} packets", file=sys.stderr)
    if facts["mix"].get("errors"):
        print(f"make_capture: warning: {facts['mix']['errors']} connections failed unexpectedly", file=sys.stderr)
    if frames < MIN_FRAMES_PER_SCALE * args.scale:
        die(f"only {frames:,} frames (wanted {MIN_FRAMES_PER_SCALE * args.scale:,}); raise CONNS_PER_SCALE")
    print(f"make_capture: {final} ({frames:,} frames, {math.ceil(final.stat().st_size / 2**20)} MiB, "
          f"{conns:,} connections in {elapsed:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
