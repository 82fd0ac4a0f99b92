#!/usr/bin/env python3
"""Run pcapsleuth over every sample and corpus capture and list what it found, for review.

    .venv/bin/python review/corpus_run.py [--out review/_out] [--only zeek|tcpdump|samples]

Writes, under --out (git-ignored):
  findings.tsv   one row per finding at notice or above: set, capture, id, severity, frames, summary
  frames.tsv     per capture: our frame count, capinfos' frame count, exit code, error line
  by_id.tsv      per finding id: how often it fired (findings, captures)
The judged table (which firings an expert calls right) is review/FINDINGS_REVIEW.md; this script
gives its "fired" column and the rows to read.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pcapsleuth import cli  # noqa: E402


def corpus_root() -> Path:
    env = os.environ.get("PCAPSLEUTH_CORPUS")
    return Path(env) if env else REPO.parent / "shared" / "corpus"


def captures(only: str | None) -> list[tuple[str, Path]]:
    out: list[tuple[str, Path]] = []
    root = corpus_root()
    if only in (None, "samples"):
        exts = (".pcap", ".pcapng", ".gz", ".cap")
        out += [("samples", p) for p in sorted((REPO / "samples").rglob("*")) if p.is_file() and p.name.endswith(exts)]
    if only in (None, "zeek"):
        for item in sorted(p for p in (root / "zeek").iterdir() if p.is_dir()):
            for name in ("trace.pcap", "trace.pcapng"):
                if (item / name).exists():
                    out.append(("zeek", item / name))
    if only in (None, "tcpdump"):
        out += [("tcpdump", p) for p in sorted((root / "tcpdump").iterdir()) if p.is_file() and p.suffix in (".pcap", ".pcapng", ".cap")]
    return out


def capinfos_frames(path: Path) -> int | None:
    try:
        r = subprocess.run(["capinfos", "-M", "-c", "-T", "-r", str(path)], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in r.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[1].strip().isdigit():
            return int(parts[1])
    return None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(REPO / "review" / "_out"))
    ap.add_argument("--only", choices=("zeek", "tcpdump", "samples"))
    ap.add_argument("--min-severity", default="notice")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sev_rank = {"info": 0, "notice": 1, "warning": 2, "error": 3}
    floor = sev_rank[args.min_severity]
    by_id: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    with open(out / "findings.tsv", "w") as ft, open(out / "frames.tsv", "w") as fr, \
            tempfile.TemporaryDirectory() as tmp:
        ft.write("set\tcapture\tid\tseverity\tframes\tsummary\n")
        fr.write("set\tcapture\tours\tcapinfos\texit\terror\n")
        for kind, path in captures(args.only):
            rel = os.path.relpath(path, corpus_root()) if kind != "samples" else os.path.relpath(path, REPO)
            js = os.path.join(tmp, "out.json")
            err = io.StringIO()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                try:
                    code = cli.main(["analyze", str(path), "--json", js, "--no-html", "-q"])
                except SystemExit as e:
                    code = e.code if isinstance(e.code, int) else 2
            ours = None
            seen_ids: set[str] = set()
            if os.path.exists(js):
                with open(js, encoding="utf-8") as f:
                    doc = json.load(f)
                os.unlink(js)
                ours = doc.get("capture", {}).get("frames")
                for fd in doc.get("findings", []):
                    if sev_rank.get(fd["severity"], 0) < floor:
                        continue
                    frames = ",".join(map(str, fd["frames"][:12])) + ("…" if len(fd["frames"]) > 12 else "")
                    summary = fd["summary"].replace("\t", " ").replace("\n", " ")
                    ft.write(f"{kind}\t{rel}\t{fd['id']}\t{fd['severity']}\t{frames}\t{summary}\n")
                    by_id[fd["id"]][0] += 1
                    if fd["id"] not in seen_ids:
                        by_id[fd["id"]][1] += 1
                        seen_ids.add(fd["id"])
            theirs = capinfos_frames(path)
            line = err.getvalue().strip().splitlines()
            fr.write(f"{kind}\t{rel}\t{ours}\t{theirs}\t{code}\t{line[-1] if line else ''}\n")
    with open(out / "by_id.tsv", "w") as fb:
        fb.write("id\tfindings\tcaptures\n")
        for fid, (n, c) in sorted(by_id.items(), key=lambda kv: -kv[1][0]):
            fb.write(f"{fid}\t{n}\t{c}\n")
    print((out / "by_id.tsv").read_text(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
