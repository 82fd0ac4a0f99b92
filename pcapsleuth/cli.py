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
from .errors import PcapsleuthError, printable
from .findings import SEVERITIES
from .reader import MAX_EXPANSION
from .tracker import MAX_CONNECTIONS

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAIL_ON = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 7


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"pcapsleuth: error: {printable(message)}", file=sys.stderr)
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
    a.add_argument("--max-expansion", type=float, default=MAX_EXPANSION, metavar="RATIO",
                   help=f"refuse compressed input that expands more than RATIO times its compressed size, judged "
                        f"after 16 MiB (default {MAX_EXPANSION:,g}: real captures compress 2-100x, bombs more; "
                        "zero-filled payloads up to 3,400x; 0: no bound)")
    a.add_argument("--max-connections", type=int, default=MAX_CONNECTIONS, metavar="N",
                   help=f"connections tracked at once (default {MAX_CONNECTIONS:,}, about 6 KB each); beyond it "
                        "the least recently active tenth is finished early and counted in the JSON's "
                        "tracking.evicted")
    a.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    _progress_flags(a)
    a.add_argument("--html", metavar="PATH",
                   help="write the HTML report to PATH ('-' for stdout; a directory with several captures). "
                        "Default: ./<capture-stem>.pcapsleuth.html, unless --json - or --markdown - use stdout")
    a.add_argument("--no-html", action="store_true", help="do not write the HTML report")
    a.add_argument("--template-dir", metavar="DIR",
                   help="report templates searched before the built-in ones (override report.html.j2, "
                        "style.css, summary.md.j2 ... one by one)")
    a.add_argument("--markdown", metavar="PATH",
                   help="write a short Markdown summary for tickets to PATH ('-' for stdout)")
    a.add_argument("--fail-on", choices=SEVERITIES, metavar="SEVERITY",
                   help="exit with 1 when a finding at or above SEVERITY exists (info, notice, warning, error)")
    a.add_argument("--name", action="append", dest="names", metavar="NAME",
                   help="name the vantage points of several captures, in capture order (repeatable; "
                        "default: the file names)")
    a.add_argument("--separate", action="store_true",
                   help="with several captures, analyze each one alone (a report each) instead of together "
                        "as vantage points of one incident")

    k = sub.add_parser("catalog", help="list the finding catalogue: id, severity, title, description")
    k.add_argument("--json", action="store_true", help="print it as JSON")

    c = sub.add_parser("conn", help="write a Zeek-compatible conn.log (TSV) of the capture to stdout")
    c.add_argument("capture", metavar="CAPTURE")
    c.add_argument("--no-checksums", action="store_true", help="do not verify checksums (like zeek -C)")
    c.add_argument("--engine", choices=("fast", "tshark"), default="fast")
    _progress_flags(c)
    return p


def _progress_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--progress", dest="progress", action="store_const", const=True, default=None,
                   help="show how far the analysis is on stderr even when stderr is not a terminal "
                        "(default: on a terminal, for analyses longer than half a second)")
    g.add_argument("--no-progress", dest="progress", action="store_const", const=False,
                   help="never show the progress line")


def _progress_bar(args: argparse.Namespace, err: TextIO, capture: str) -> Any:
    """The progress display of one capture's analysis on ``err``, or None.

    On a terminal by default (nothing for analyses shorter than half a second); ``--progress``
    draws it on any stderr, from the start; ``--no-progress`` and ``--quiet`` draw nothing.
    """
    from .progress import Progress, auto_mode

    if getattr(args, "quiet", False) or auto_mode(args.progress, err) != "terminal":
        return None
    return Progress(printable(os.path.basename(capture) or capture), mode="terminal", stream=err,
                    delay=0.0 if args.progress else 0.5)


def _progress_of(args: argparse.Namespace, err: TextIO, capture: str) -> contextlib.AbstractContextManager[Any]:
    """``_progress_bar`` as a context around the analysis (a :class:`Progress` ends its own line,
    also when the analysis fails); a null context when there is none."""
    bar = _progress_bar(args, err, capture)
    return bar if bar is not None else contextlib.nullcontext()


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
            return _conn(args, out, err)
        if args.command == "catalog":
            return _catalog(args, out)
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
        print(f"pcapsleuth: {printable(where[0])}: internal error: {type(exc).__name__}: {printable(exc)} "
              "(please report it with the capture)", file=err)
        if os.environ.get("PCAPSLEUTH_DEBUG"):
            raise
        return EXIT_INTERNAL
    return EXIT_USAGE


class _UsageError(Exception):
    pass


_SKIPPED = -1  # the default report could not be written: warned, the analysis goes on


def _outputs(args: argparse.Namespace) -> None:
    """Check the output options before any (possibly long) analysis."""
    several = len(args.captures) > 1
    to_stdout = [name for name, v in (("--json", args.json), ("--html", args.html), ("--markdown", args.markdown))
                 if v == "-"]
    if len(to_stdout) > 1:
        raise _UsageError(f"only one output can go to stdout ('-'), not {' and '.join(to_stdout)}")
    if args.html and args.no_html:
        raise _UsageError("--html and --no-html contradict each other")
    if args.max_connections < 1:
        raise _UsageError(f"--max-connections must be at least 1, not {args.max_connections}")
    if args.template_dir is not None and not os.path.isdir(args.template_dir):
        raise _UsageError(f"--template-dir {args.template_dir}: not a directory")
    for opt, value in (("--html", args.html), ("--markdown", args.markdown)):
        if value is None:
            continue
        if value == "-":
            if several:
                raise _UsageError(f"{opt} - takes a single capture")
            continue
        if several and not os.path.isdir(value):
            raise _UsageError(f"{opt} {value}: with several captures, give an existing directory")
        parent = os.path.dirname(os.path.abspath(value))
        if not os.path.isdir(value) and not os.path.isdir(parent):
            raise _UsageError(f"{opt} {value}: directory {parent} does not exist")


def _dest(value: str, capture: str, suffix: str, used: set[str]) -> str:
    """The file an output option names for one capture (a directory gets <stem><suffix> inside)."""
    from .outputs import destination

    return destination(value, capture, suffix, used)


def _unique(path: str, used: set[str]) -> str:
    """Two captures with the same stem in one run do not overwrite each other's report."""
    from .outputs import unique_path

    return unique_path(path, used)


def _analyze(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if len(args.captures) > 1 and not args.separate:
        return _analyze_multi(args, out, err)
    from .analysis import analyze_capture
    from .report import severity_at_least

    try:
        _outputs(args)
    except _UsageError as exc:
        print(f"pcapsleuth: error: {printable(exc)}", file=err)
        return EXIT_USAGE
    stdout_taken = "-" in (args.json, args.markdown)
    html_default = not args.no_html and args.html is None and not stdout_taken
    used: set[str] = set()
    failed = False
    for path in args.captures:
        # Streamed: connections are released as they end (memory follows the connections open
        # at once, not the capture's length); the report reads back the few it shows.
        with _progress_of(args, err, path) as bar:
            result = analyze_capture(path, streaming=True, progress=bar, **_analysis_options(args))
        with result:
            code = _analyze_outputs(result, path, args, html_default, stdout_taken, used, out, err)
            if code:
                return code
            if args.fail_on and severity_at_least(result.findings, args.fail_on):
                failed = True
    return EXIT_FAIL_ON if failed else EXIT_OK


def _analyze_outputs(result: Any, path: str, args: argparse.Namespace, html_default: bool, stdout_taken: bool,
                     used: set[str], out: TextIO, err: TextIO) -> int:
    """JSON, report, Markdown and terminal summary of one streamed analysis."""
    from .outputs import summary_text
    from .report import REPORT_SUFFIX, default_report_path, findings_to_read

    if args.json:
        _write_json(result, args.json, out)
    view = None
    if args.html is not None or html_default or args.markdown:
        view = result.report_view(findings_to_read)
    report: str | None = None
    if args.html is not None:
        report = _dest(args.html, path, REPORT_SUFFIX, used)
        code = _write_report(view, path, report, args, out, err, explicit=True)
        if code:
            return code
    elif html_default:
        report = _unique(os.fspath(default_report_path(path)), used)
        code = _write_report(view, path, report, args, out, err, explicit=False)
        if code == _SKIPPED:
            report = None
        elif code:
            return code
    if args.markdown:
        code = _write_markdown(view, _dest(args.markdown, path, ".pcapsleuth.md", used),
                               None if report == "-" else report, args, out, err)
        if code:
            return code
    if not args.quiet:
        if not stdout_taken and args.html != "-":
            out.write(summary_text(result))
            if report is not None:
                out.write(f"report: {printable(report)}\n")
        elif report is not None and report != "-":
            print(f"pcapsleuth: report: {printable(report)}", file=err)
    return EXIT_OK


def _analyze_multi(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Several captures of one incident, analyzed together as vantage points (:mod:`.vantage`):
    one JSON document, one report and one summary covering every point."""

    from .outputs import json_text, write_text
    from .report import REPORT_SUFFIX, report_stem, severity_at_least
    from .vantage import analyze_vantage_points

    caps, names = args.captures, args.names or []
    stem = "+".join(report_stem(c) for c in caps[:3]) + (f"+{len(caps) - 3}-more" if len(caps) > 3 else "")
    to_stdout = [o for o, v in (("--json", args.json), ("--html", args.html), ("--markdown", args.markdown))
                 if v == "-"]
    problem = None
    if len(names) > len(caps):
        problem = f"{len(names)} --name values for {len(caps)} captures"
    elif len(set(names)) != len(names):
        problem = "--name values must differ"
    elif len(to_stdout) > 1:
        problem = f"only one output can go to stdout ('-'), not {' and '.join(to_stdout)}"
    elif args.html and args.no_html:
        problem = "--html and --no-html contradict each other"
    elif args.template_dir is not None and not os.path.isdir(args.template_dir):
        problem = f"--template-dir {args.template_dir}: not a directory"
    dests: dict[str, str] = {}
    for opt, value, suffix in (("--html", args.html, REPORT_SUFFIX), ("--markdown", args.markdown, ".pcapsleuth.md")):
        if value is None or value == "-":
            continue
        if os.path.isdir(value):
            value = os.path.join(value, stem + suffix)
        elif not os.path.isdir(os.path.dirname(os.path.abspath(value))):
            problem = problem or f"{opt} {value}: directory {os.path.dirname(os.path.abspath(value))} does not exist"
        dests[opt] = value
    if problem:
        print(f"pcapsleuth: error: {printable(problem)}", file=err)
        return EXIT_USAGE
    v = analyze_vantage_points(caps, names, progress_of=lambda cap: _progress_of(args, err, cap),
                               **_analysis_options(args))
    if args.json:
        write_text(json_text(v.to_json_dict()), args.json, out)
    stdout_taken = "-" in (args.json, args.markdown)
    report: str | None = None
    if args.html is not None or (not args.no_html and not stdout_taken):
        report = dests.get("--html") or args.html or stem + REPORT_SUFFIX
        first = v.points[0]
        code = _write_report(first.result, first.source, report, args, out, err, explicit=args.html is not None,
                             vantage=v)
        if code == _SKIPPED:
            report = None
        elif code:
            return code
    if args.markdown:
        dest = dests.get("--markdown", args.markdown)
        try:
            write_text(v.markdown_text(None if report == "-" else report), dest, out)
        except OSError as exc:
            print(f"pcapsleuth: {printable(dest)}: cannot write the Markdown summary: {exc.strerror or exc}", file=err)
            return EXIT_USAGE
    if not args.quiet:
        if not stdout_taken and args.html != "-":
            out.write(v.summary_text())
            if report is not None:
                out.write(f"report: {printable(report)}\n")
        elif report is not None and report != "-":
            print(f"pcapsleuth: report: {printable(report)}", file=err)
    if args.fail_on and severity_at_least([f for _, f in v.all_findings()], args.fail_on):
        return EXIT_FAIL_ON
    return EXIT_OK


def _analysis_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``analyze_capture`` options ``analyze`` takes from its flags (one capture or several)."""
    return {"engine": args.engine, "verify_checksums": not args.no_checksums,
            "max_decompressed": args.max_decompressed, "max_expansion": args.max_expansion,
            "max_connections": args.max_connections}


def _write_report(result: Any, capture: str, dest: str, args: argparse.Namespace, out: TextIO, err: TextIO, *,
                  explicit: bool, vantage: Any = None) -> int:
    """Render and write the HTML report; a template or write error is one line on stderr.

    For the default path a failure to write is a warning (the analysis itself succeeded);
    for a path the user asked for it is an error. ``vantage``: the one report of several captures.
    """
    import jinja2

    from .outputs import html_report

    try:
        html = html_report(result, capture, dest, args.template_dir, vantage=vantage)
    except jinja2.TemplateError as exc:
        print(f"pcapsleuth: {printable(args.template_dir or 'built-in templates')}: template error: "
              f"{type(exc).__name__}: {exc}", file=err)
        return EXIT_USAGE
    except OSError as exc:
        what = exc.strerror or str(exc)
        if explicit:
            print(f"pcapsleuth: {printable(dest)}: cannot write the report: {what}", file=err)
            return EXIT_USAGE
        print(f"pcapsleuth: warning: {printable(dest)}: cannot write the report: {what} "
              "(choose a place with --html PATH, or --no-html)", file=err)
        return _SKIPPED
    if dest == "-":
        out.write(html)
    return EXIT_OK


def _write_markdown(result: Any, dest: str, report: str | None, args: argparse.Namespace, out: TextIO,
                    err: TextIO) -> int:
    import jinja2

    from .outputs import markdown_summary, write_text

    try:
        write_text(markdown_summary(result, report, template_dir=args.template_dir), dest, out)
    except jinja2.TemplateError as exc:
        print(f"pcapsleuth: {printable(args.template_dir or 'built-in templates')}: template error: "
              f"{type(exc).__name__}: {exc}", file=err)
        return EXIT_USAGE
    except OSError as exc:
        print(f"pcapsleuth: {printable(dest)}: cannot write the Markdown summary: {exc.strerror or exc}", file=err)
        return EXIT_USAGE
    return EXIT_OK


def _catalog(args: argparse.Namespace, out: TextIO) -> int:
    import textwrap

    from .findings import catalog

    entries = [{"id": fid, "severity": e["severity"], "title": e["title"], "phase": e.get("phase"),
                "description": e["description"]} for fid, e in sorted(catalog().items())]
    if args.json:
        out.write(json.dumps(entries, indent=2, ensure_ascii=False) + "\n")
        return EXIT_OK
    for e in entries:
        out.write(f"{e['id']}  [{e['severity']}]  {e['title']}\n")
        out.write(textwrap.fill(e["description"], width=100, initial_indent="    ", subsequent_indent="    ") + "\n\n")
    return EXIT_OK


def _conn(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .analysis import analyze_capture
    from .connlog import write_conn_log

    # Streamed: each connection's JSON line becomes its row, none is held.
    with _progress_of(args, err, args.capture) as bar:
        result = analyze_capture(args.capture, engine=args.engine, verify_checksums=not args.no_checksums,
                                 streaming=True, progress=bar)
    with result:
        write_conn_log((json.loads(line) for line in result.sink.connection_lines()), out,
                       open_ts=result.capture.first_ts, close_ts=result.capture.last_ts)
    return EXIT_OK


def _write_json(doc: Any, dest: str, out: TextIO) -> None:
    from .outputs import write_json

    write_json(doc, dest, out)
