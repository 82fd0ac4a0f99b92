"""The ``pcapsleuth`` command line.

Exit codes (documented in the README and ``pcapsleuth --help``):

====  ==========================================================
0     success
1     ``--fail-on`` threshold reached (a finding at or above it)
2     usage error, or an output that cannot be written (``--json``, ``--html``, ``--markdown``:
      checked before the analysis - a missing or unwritable directory, a directory where a
      file is expected - and when written - a full disk)
3     the capture cannot be opened (missing, a directory, no permission)
4     not a capture (unknown format, empty file)
5     compressed input that is corrupt or too large
6     the tshark engine is unavailable or failed
7     unexpected internal error (one line, never a traceback)
130   interrupted (SIGINT, Ctrl-C)
143   terminated (SIGTERM)
====  ==========================================================

An interrupted or terminated run leaves no temporary file behind: SIGTERM is turned into an
exception, like SIGINT, so that every cleanup runs; an output half written is never renamed
into place (see :func:`pcapsleuth.outputs.open_output`).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import Any, TextIO, cast

from ._version import __version__
from .errors import OutputError, PcapsleuthError, printable, printable_lines, without_surrogates
from .findings import SEVERITIES
from .reader import MAX_EXPANSION
from .tracker import MAX_CONNECTIONS

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAIL_ON = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 7
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"pcapsleuth: error: {printable(message)}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="pcapsleuth",
        description="Turn an offline packet capture into an explanation.",
        epilog="exit codes: 0 ok, 1 --fail-on reached, 2 usage or an output that cannot be written, "
               "3 cannot open, 4 not a capture, 5 bad compressed input, 6 tshark engine failed, "
               "7 internal error, 130 interrupted, 143 terminated",
    )
    p.add_argument("--version", action="version", version=f"pcapsleuth {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    a = sub.add_parser("analyze", help="analyze a capture and summarize it")
    a.add_argument("captures", nargs="+", metavar="CAPTURE", help="pcap or pcapng file (gzip/bzip2/xz ok)")
    a.add_argument("--json", metavar="PATH",
                   help="write the analysis as JSON to PATH ('-' for stdout; a directory: "
                        "<capture-stem>.pcapsleuth.json in it, one per capture with --separate)")
    a.add_argument("--engine", choices=("fast", "tshark"), default="fast",
                   help="decoder: the built-in fast engine (default) or tshark through pyshark")
    _checksum_flags(a)
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
    _checksum_flags(c)
    c.add_argument("--engine", choices=("fast", "tshark"), default="fast")
    _progress_flags(c)
    return p


#: What the default checks, said once for both commands' help (issue 20).
CHECKSUMS_DEFAULT = (
    "By default the IPv4 header, TCP and UDP checksums are verified. Checksums left for the NIC (IPv4 header "
    "checksum 0x0000; a TCP or UDP checksum holding only the pseudo-header sum) and checksums wrong on most "
    "frames of one sender (a rewritten or anonymised capture) are analyzed as sent and reported once as a fact "
    "of the capture. Any other wrong TCP checksum, or wrong IPv4 header checksum of a TCP segment, leaves its "
    "frame out of connection state (capture.bad_checksum, judged by whether the receiver ACKed it). UDP and "
    "ICMP frames are never left out for a checksum by default.")


def _checksum_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("checksums", CHECKSUMS_DEFAULT)
    x = g.add_mutually_exclusive_group()
    x.add_argument("--no-checksums", action="store_true",
                   help="verify no checksum at all (IPv4 header, TCP, UDP): every frame is analyzed as captured "
                        "and no checksum fact is reported (like zeek -C)")
    x.add_argument("--strict-checksums", action="store_true",
                   help="Zeek's behaviour without -C: every frame whose IPv4 header checksum or TCP checksum is "
                        "not valid is left out of connection state, including IPv4 header checksums 0x0000, TCP "
                        "checksums holding only the pseudo-header sum, and checksums wrong on most frames of a "
                        "sender (UDP and ICMP frames: only a bad IPv4 header checksum)")


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


class _Terminated(BaseException):
    """SIGTERM, raised wherever the program is (like KeyboardInterrupt for SIGINT), so that every
    ``finally`` block runs: spill files and half-written outputs are removed."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM raises :class:`_Terminated` for the duration (main thread only, where Python runs
    signal handlers; not when SIGTERM is ignored or already handled by the embedding program)."""
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


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
    with _sigterm_raises():
        return _run(args, out, err)


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    stdout = cast(TextIO, _Stdout(out))
    try:
        code = EXIT_USAGE
        if args.command == "analyze":
            code = _analyze(args, stdout, err)
        elif args.command == "conn":
            code = _conn(args, stdout, err)
        elif args.command == "catalog":
            code = _catalog(args, stdout)
        stdout.flush()  # a full disk behind "> file" is found before the exit code is decided
        return code
    except OutputError as exc:
        print(f"pcapsleuth: error: {exc.one_line()}", file=err)
        if exc.path == "stdout":
            _detach(out)
        return exc.exit_code
    except PcapsleuthError as exc:
        print(f"pcapsleuth: {exc.one_line()}", file=err)
        return exc.exit_code
    except KeyboardInterrupt:
        print("pcapsleuth: interrupted", file=err)
        return EXIT_INTERRUPTED
    except _Terminated:
        print("pcapsleuth: terminated", file=err)
        return EXIT_TERMINATED
    except BrokenPipeError:
        _detach(out)
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the contract is one line, never a traceback
        where = getattr(args, "captures", None) or [getattr(args, "capture", "?")]
        print(f"pcapsleuth: {printable(where[0])}: internal error: {type(exc).__name__}: {printable(exc)} "
              "(please report it with the capture)", file=err)
        if os.environ.get("PCAPSLEUTH_DEBUG"):
            raise
        return EXIT_INTERNAL


class _Stdout(io.TextIOBase):
    """stdout as the commands see it: a failed write or flush (a full disk behind ``> file``) is an
    :class:`OutputError` naming stdout, a closed pipe stays a BrokenPipeError (``| head`` ends
    the run quietly), and the lone surrogates of a non-UTF-8 file name are written as ``\\xff``."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            self._stream.write(without_surrogates(text))
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise OutputError("stdout", f"cannot write: {exc.strerror or exc}", errno=exc.errno) from exc
        return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except ValueError:
            pass  # closed by its owner
        except OSError as exc:
            raise OutputError("stdout", f"cannot write: {exc.strerror or exc}", errno=exc.errno) from exc

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()


def _detach(out: TextIO) -> None:
    """After stdout failed (a closed pipe, a full disk), point the process's stdout at /dev/null so
    that the interpreter's own flush at exit does not fail a second time (Python's recipe for
    SIGPIPE). Only the real stdout: a caller's stream is left alone."""
    if out is not sys.stdout and out is not sys.__stdout__:
        return
    try:
        fd = out.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


class _UsageError(Exception):
    pass


_SKIPPED = -1  # the default report could not be written: warned, the analysis goes on


def _outputs(args: argparse.Namespace, *, together: bool = False) -> None:
    """Check the options, and every output path, before any (possibly long) analysis: one line
    naming the option, the path and the problem (:func:`pcapsleuth.outputs.output_problem`).
    ``together``: several captures analyzed as vantage points of one incident."""
    from .outputs import output_problem, special_file

    several = len(args.captures) > 1
    names = args.names or []
    if together and len(names) > len(args.captures):
        raise _UsageError(f"{len(names)} --name values for {len(args.captures)} captures")
    if together and len(set(names)) != len(names):
        raise _UsageError("--name values must differ")
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
    for opt, value in (("--json", args.json), ("--html", args.html), ("--markdown", args.markdown)):
        if value is None:
            continue
        if value == "-":
            if several and not together and opt != "--json":
                raise _UsageError(f"{opt} - takes a single capture")
            continue
        if several and not together and not os.path.isdir(value) and not special_file(value):
            # One file per capture: a single file would be overwritten by each capture in turn.
            raise _UsageError(f"{opt} {value}: with several captures, give an existing directory")
        problem = output_problem(value, directory=True)  # a directory gets <stem><suffix> inside
        if problem:
            raise _UsageError(f"{opt} {value}: {problem}")


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
    from .outputs import JSON_SUFFIX, summary_text, write_json
    from .report import REPORT_SUFFIX, default_report_path, findings_to_read

    if args.json:
        dest = args.json if args.json == "-" else _dest(args.json, path, JSON_SUFFIX, used)
        code = _write("--json", dest, lambda: write_json(result, dest, out), err)
        if code:
            return code
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
    _summary(summary_text(result), report, args, stdout_taken, out, err)
    return EXIT_OK


def _summary(text: str, report: str | None, args: argparse.Namespace, stdout_taken: bool, out: TextIO,
             err: TextIO) -> None:
    """The terminal summary and the report's path (on stderr when stdout carries an output)."""
    if args.quiet:
        return
    if not stdout_taken and args.html != "-":
        # Escaped once more here, whoever made the text: nothing from a capture or a file name
        # (ANSI sequences, bidi overrides, a non-UTF-8 byte) reaches the terminal raw.
        out.write(printable_lines(text))
        if report is not None:
            out.write(f"report: {printable(report)}\n")
    elif report is not None and report != "-":
        print(f"pcapsleuth: report: {printable(report)}", file=err)


def _analyze_multi(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Several captures of one incident, analyzed together as vantage points (:mod:`.vantage`):
    one JSON document, one report and one summary covering every point."""

    from .outputs import JSON_SUFFIX, json_text, multi_stem, write_text
    from .report import REPORT_SUFFIX, severity_at_least
    from .vantage import analyze_vantage_points

    try:
        _outputs(args, together=True)
    except _UsageError as exc:
        print(f"pcapsleuth: error: {printable(exc)}", file=err)
        return EXIT_USAGE
    caps, names = args.captures, args.names or []
    stem = multi_stem(caps)
    dests: dict[str, str] = {}
    for opt, value, suffix in (("--html", args.html, REPORT_SUFFIX), ("--markdown", args.markdown, ".pcapsleuth.md"),
                               ("--json", args.json, JSON_SUFFIX)):
        if value is not None and value != "-":
            dests[opt] = os.path.join(value, stem + suffix) if os.path.isdir(value) else value
    v = analyze_vantage_points(caps, names, progress_of=lambda cap: _progress_of(args, err, cap),
                               **_analysis_options(args))
    if args.json:
        json_dest = dests.get("--json", "-")
        code = _write("--json", json_dest, lambda: write_text(json_text(v.to_json_dict()), json_dest, out), err)
        if code:
            return code
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
        text = v.markdown_text(None if report == "-" else report)
        code = _write("--markdown", dest, lambda: write_text(text, dest, out), err)
        if code:
            return code
    _summary(v.summary_text(), report, args, stdout_taken, out, err)
    if args.fail_on and severity_at_least([f for _, f in v.all_findings()], args.fail_on):
        return EXIT_FAIL_ON
    return EXIT_OK


def _write(opt: str, dest: str, write: Callable[[], object], err: TextIO) -> int:
    """``write()`` an output; one line naming the option, the file and the problem when it
    cannot be written (exit code 2, as for a path found unwritable before the analysis)."""
    try:
        write()
    except OutputError as exc:
        exc.option = exc.option or opt
        print(f"pcapsleuth: error: {exc.one_line()}", file=err)
        return exc.exit_code
    return EXIT_OK


def _analysis_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``analyze_capture`` options ``analyze`` takes from its flags (one capture or several)."""
    return {"engine": args.engine, "verify_checksums": not args.no_checksums,
            "strict_checksums": args.strict_checksums, "max_decompressed": args.max_decompressed,
            "max_expansion": args.max_expansion, "max_connections": args.max_connections}


def _write_report(result: Any, capture: str, dest: str, args: argparse.Namespace, out: TextIO, err: TextIO, *,
                  explicit: bool, vantage: Any = None) -> int:
    """Render and write the HTML report; a template or write error is one line on stderr.

    For the default path a failure to write is a warning (the analysis itself succeeded);
    for a path the user asked for it is an error. ``vantage``: the one report of several captures.
    """
    import jinja2

    from .outputs import html_report, write_text

    try:
        html = html_report(result, capture, dest, args.template_dir, vantage=vantage)
        if dest == "-":
            write_text(html, "-", out)
    except jinja2.TemplateError as exc:
        print(f"pcapsleuth: {printable(args.template_dir or 'built-in templates')}: template error: "
              f"{type(exc).__name__}: {printable(exc)}", file=err)
        return EXIT_USAGE
    except OutputError as exc:
        if explicit or dest == "-":
            exc.option = "--html"
            print(f"pcapsleuth: error: {exc.one_line()}", file=err)
            return exc.exit_code
        print(f"pcapsleuth: warning: {exc.one_line()} (choose a place with --html PATH, or --no-html)", file=err)
        return _SKIPPED
    return EXIT_OK


def _write_markdown(result: Any, dest: str, report: str | None, args: argparse.Namespace, out: TextIO,
                    err: TextIO) -> int:
    import jinja2

    from .outputs import markdown_summary, write_text

    try:
        text = markdown_summary(result, report, template_dir=args.template_dir)
    except jinja2.TemplateError as exc:
        print(f"pcapsleuth: {printable(args.template_dir or 'built-in templates')}: template error: "
              f"{type(exc).__name__}: {printable(exc)}", file=err)
        return EXIT_USAGE
    return _write("--markdown", dest, lambda: write_text(text, dest, out), err)


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
    from .outputs import write_stream

    # Streamed: each connection's JSON line becomes its row, none is held.
    with _progress_of(args, err, args.capture) as bar:
        result = analyze_capture(args.capture, engine=args.engine, verify_checksums=not args.no_checksums,
                                 strict_checksums=args.strict_checksums, streaming=True, progress=bar)
    with result:
        rows = (json.loads(line) for line in result.sink.connection_lines())
        write_stream(lambda f: write_conn_log(rows, f, open_ts=result.capture.first_ts,
                                              close_ts=result.capture.last_ts), "-", out)
    return EXIT_OK
