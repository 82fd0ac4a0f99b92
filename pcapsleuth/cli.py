"""The ``pcapsleuth`` command line.

Exit codes (documented in the README and ``pcapsleuth --help``):

====  ==========================================================
0     success
1     ``--fail-on`` threshold reached (a finding at or above it)
2     usage error
3     the capture cannot be opened (missing, a directory, no permission)
4     not a capture (unknown format, empty file)
5     compressed input that is corrupt or too large
6     the tshark engine is unavailable or failed
7     unexpected internal error (one line, never a traceback)
====  ==========================================================
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from ._version import __version__
from .errors import PcapsleuthError

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAIL_ON = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 7


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"pcapsleuth: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="pcapsleuth",
        description="Turn an offline packet capture into an explanation.",
        epilog="exit codes: 0 ok, 1 --fail-on reached, 2 usage, 3 cannot open, 4 not a capture, "
               "5 bad compressed input, 6 tshark engine failed, 7 internal error",
    )
    p.add_argument("--version", action="version", version=f"pcapsleuth {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    a = sub.add_parser("analyze", help="analyze a capture and summarize it")
    a.add_argument("captures", nargs="+", metavar="CAPTURE", help="pcap or pcapng file (gzip/bzip2/xz ok)")
    a.add_argument("--json", metavar="PATH", help="write the analysis as JSON to PATH ('-' for stdout)")
    a.add_argument("--engine", choices=("fast", "tshark"), default="fast",
                   help="decoder: the built-in fast engine (default) or tshark through pyshark")
    a.add_argument("--no-checksums", action="store_true", help="do not verify TCP/UDP checksums")
    a.add_argument("--max-decompressed", type=int, default=64 * 1024**3, metavar="BYTES",
                   help="refuse compressed input that expands beyond this (default 64 GiB)")
    a.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")

    c = sub.add_parser("conn", help="write a Zeek-compatible conn.log (TSV) of the capture to stdout")
    c.add_argument("capture", metavar="CAPTURE")
    c.add_argument("--no-checksums", action="store_true", help="do not verify checksums (like zeek -C)")
    c.add_argument("--engine", choices=("fast", "tshark"), default="fast")
    return p


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run the CLI; returns the exit code (never raises for bad input)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = _parser()
    try:
        # argparse writes --version, --help and usage errors to sys.stdout/sys.stderr directly.
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help(out)
        return EXIT_USAGE
    try:
        if args.command == "analyze":
            return _analyze(args, out, err)
        if args.command == "conn":
            return _conn(args, out)
    except PcapsleuthError as exc:
        print(f"pcapsleuth: {exc.one_line()}", file=err)
        return exc.exit_code
    except KeyboardInterrupt:
        print("pcapsleuth: interrupted", file=err)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the contract is one line, never a traceback
        where = getattr(args, "captures", None) or [getattr(args, "capture", "?")]
        print(f"pcapsleuth: {where[0]}: internal error: {type(exc).__name__}: {exc} "
              "(please report it with the capture)", file=err)
        if os.environ.get("PCAPSLEUTH_DEBUG"):
            raise
        return EXIT_INTERNAL
    return EXIT_USAGE


def _analyze(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .analysis import analyze_capture

    for path in args.captures:
        result = analyze_capture(path, engine=args.engine, verify_checksums=not args.no_checksums,
                                 max_decompressed=args.max_decompressed)
        doc = result.to_json_dict()
        if args.json:
            _write_json(doc, args.json, out)
        if not args.quiet and args.json != "-":
            out.write(result.summary_text())
    return EXIT_OK


def _conn(args: argparse.Namespace, out: TextIO) -> int:
    from .analysis import analyze_capture
    from .connlog import write_conn_log

    result = analyze_capture(args.capture, engine=args.engine, verify_checksums=not args.no_checksums)
    write_conn_log([c.to_dict() for c in result.connections], out,
                   open_ts=result.capture.first_ts, close_ts=result.capture.last_ts)
    return EXIT_OK


def _write_json(doc: dict[str, Any], dest: str, out: TextIO) -> None:
    text = json.dumps(doc, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
    if dest == "-":
        out.write(text)
        return
    tmp = f"{dest}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, dest)
