"""The outputs of an analysis, in one place for the command line and the Python API.

``pcapsleuth analyze`` (:mod:`.cli`) and :class:`pcapsleuth.Analysis` (:mod:`.api`) both call
these functions, so ``--json``, ``--html``, ``--markdown`` and the terminal summary are the same
text as ``Analysis.to_json()``, ``to_html()``, ``to_markdown()`` and ``summary()``.

==========================  ===================================================================
``json_text``               the JSON document as written by ``--json``
``summary_text``            the terminal summary
``html_report``             the single-file HTML report (:func:`pcapsleuth.report.render_html`)
``markdown_summary``        the Markdown summary for tickets (:mod:`pcapsleuth.markdown`)
``write_json``              ``json_text`` into a file or stream, streamed for one capture's result
``write_text``              write text to a file atomically, or to a stream for ``-``
``open_output``             the one writer: a temporary and a rename, or a device written directly
``output_problem``          why an output path cannot be written (checked before an analysis)
``destination``             the file an output option names for one capture (directory aware)
``multi_stem``              the file stem of the one report of several captures (``a+b+c``)
==========================  ===================================================================

Errors are left to the callers: the CLI turns them into one line and an exit code, the API
raises them.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import signal
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TextIO, cast

from .errors import VISIBLE, OutputError, without_surrogates
from .util import json_safe

if TYPE_CHECKING:
    from .analysis import AnalysisResult

__all__ = ["destination", "html_report", "json_text", "markdown_summary", "multi_stem", "open_output",
           "output_problem", "summary_text", "unique_path", "write_json", "write_stream", "write_text"]

#: Suffixes of the files an analysis writes beside each other.
REPORT_SUFFIX = ".pcapsleuth.html"
MARKDOWN_SUFFIX = ".pcapsleuth.md"
JSON_SUFFIX = ".pcapsleuth.json"


def json_text(doc: dict[str, Any] | AnalysisResult) -> str:
    """The JSON document as ``--json`` writes it (UTF-8 kept, one final newline).

    An :class:`AnalysisResult` is written by :meth:`AnalysisResult.write_json` (one connection and
    one finding per line); any other document is indented.
    """
    if not isinstance(doc, dict):
        buf = io.StringIO()
        doc.write_json(buf)
        return buf.getvalue()
    return json_safe(json.dumps(doc, indent=2, sort_keys=False, ensure_ascii=False)) + "\n"


def write_json(doc: dict[str, Any] | AnalysisResult, dest: str | os.PathLike[str], out: TextIO | None = None) -> None:
    """:func:`json_text` into ``dest`` (atomically; ``-``: ``out``), streamed for an analysis result
    so that a big capture's document is never one string in memory."""
    if not isinstance(doc, dict):
        write_stream(doc.write_json, dest, out)
    else:
        write_text(json_text(doc), dest, out)


def summary_text(result: AnalysisResult) -> str:
    """The terminal summary of one analysis (what ``pcapsleuth analyze`` prints)."""
    return result.summary_text()


def html_report(result: AnalysisResult, source_path: str | os.PathLike[str] | None = None,
                dest: str | os.PathLike[str] | None = None,
                template_dir: str | os.PathLike[str] | None = None, *, vantage: Any = None) -> str:
    """The HTML report; written to ``dest`` too (:func:`open_output`) unless it is None or ``-``.

    ``source_path`` is the capture, read again for evidence packets (default: the path the
    capture was read from). ``vantage``: the correlation of several captures
    (:func:`pcapsleuth.vantage.correlate`), for the one report that covers them all; ``result`` is
    then the first capture's. Raises ``jinja2.TemplateError`` for a broken template and
    :class:`OutputError` (an ``OSError``) when the file cannot be written.
    """
    from .report import render_html

    if vantage is None:
        html = render_html(result, source_path, None, template_dir)
    else:
        html = render_html(result, source_path, None, template_dir, vantage=vantage)
    html = without_surrogates(html)
    if dest is not None and os.fspath(dest) != "-":
        write_text(html, dest)
    return html


def markdown_summary(result: AnalysisResult, report_path: str | os.PathLike[str] | None = None, *,
                     template_dir: str | os.PathLike[str] | None = None) -> str:
    """The short Markdown summary for a ticket (naming the HTML report's file when given)."""
    from .markdown import render_markdown

    return render_markdown(result, report_path, template_dir=template_dir)


def write_text(text: str, dest: str | os.PathLike[str], out: TextIO | None = None) -> None:
    """Write ``text`` to ``dest`` (see :func:`open_output`), or to ``out`` (default: stdout) when
    ``dest`` is ``-``. Raises :class:`OutputError` (an ``OSError``) when it cannot be written."""
    write_stream(lambda f: f.write(text), dest, out)


def write_stream(writer: Callable[[TextIO], object], dest: str | os.PathLike[str], out: TextIO | None = None) -> None:
    """:func:`write_text` for text produced piecewise by ``writer(stream)``."""
    path = os.fspath(dest)
    try:
        if path == "-":
            stream = out if out is not None else sys.stdout
            writer(cast(TextIO, _Visible(stream)))
            stream.flush()
            return
        with open_output(path) as f:
            writer(f)
    except BrokenPipeError:
        raise  # the reader of stdout went away (``| head``): the CLI ends quietly
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError("stdout" if path == "-" else path, f"cannot write: {exc.strerror or exc}",
                          errno=exc.errno) from exc


@contextlib.contextmanager
def open_output(dest: str | os.PathLike[str]) -> Iterator[TextIO]:
    """A text stream (UTF-8) whose contents replace ``dest`` when the block ends without an error.

    * A regular file, or a name that does not exist yet, is written through a temporary file in
      the same directory, created exclusively with an unpredictable name (``mkstemp``:
      ``O_CREAT|O_EXCL|O_NOFOLLOW``, so nothing planted there is followed or overwritten), then
      renamed over it: a reader never sees half a file, and a failed or interrupted write
      (``SIGTERM`` included, which the CLI turns into an exception) removes the temporary and
      leaves the old file as it was. An existing file keeps its permission bits and, as far as
      the user may, its owner and group; a new one gets ``0666`` less the umask, like ``>``.
    * A symbolic link is followed: its target is replaced that way and the link stays.
    * A character or block device (``/dev/null``, ``/dev/full``, a terminal) or a FIFO is opened
      and written directly (never created, truncated or replaced); so is a file reached through
      a link that names no path (``/dev/stdout`` -> ``/proc/self/fd/1``).

    Characters UTF-8 cannot hold (the lone surrogates of a non-UTF-8 file name) are written as
    visible escapes (``\\xff``) instead of failing the write.
    """
    path = os.fspath(dest)
    kind, target, st = _resolve(path)
    if kind != "replace":
        flags = os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC | (os.O_TRUNC if kind == "in place" else 0)
        with os.fdopen(os.open(target, flags), "w", encoding="utf-8", errors=VISIBLE) as f:
            yield f
        return
    directory, name = os.path.split(target)
    tmp = None
    try:
        with _signals_held():  # SIGTERM/SIGINT now would leave the file unknown to the cleanup below
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory or ".")
        with os.fdopen(fd, "w", encoding="utf-8", errors=VISIBLE) as f:
            _set_mode(f.fileno(), st)
            yield f
        os.replace(tmp, target)
        tmp = None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def special_file(path: str) -> bool:
    """``path`` is a device, a FIFO or a socket (links followed)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _resolve(path: str) -> tuple[str, str, os.stat_result | None]:
    """How ``path`` is written: ``("replace", file, its stat or None)`` through a temporary and a
    rename of ``file`` (symbolic links resolved); ``("direct", path, stat)`` for a device or a
    FIFO; ``("in place", path, stat)`` for a regular file behind a link that names no path."""
    try:
        st: os.stat_result | None = os.stat(path)  # follows links
    except FileNotFoundError:
        st = None  # a new file, or a dangling link (its target is created)
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    if st is not None and not stat.S_ISREG(st.st_mode):
        return "direct", path, st  # a socket fails to open (ENXIO): one clean error
    real = os.path.realpath(path)
    if st is not None:
        try:
            same = os.path.samestat(os.stat(real), st)
        except OSError:
            same = False
        if not same:
            return "in place", path, st
    return "replace", real, st


def _set_mode(fd: int, old: os.stat_result | None) -> None:
    """The replacement of ``old`` keeps its permission bits and (if allowed) owner and group; a
    new file gets what ``open()`` would have given it, not mkstemp's 0600."""
    if old is None:
        os.fchmod(fd, 0o666 & ~_umask())
        return
    if (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
        with contextlib.suppress(OSError):  # only root may give a file away; a group of ours is fine
            os.fchown(fd, old.st_uid, old.st_gid)
        with contextlib.suppress(OSError):
            os.fchown(fd, -1, old.st_gid)
    os.fchmod(fd, stat.S_IMODE(old.st_mode) & 0o777)


def _umask() -> int:
    """The process's umask, read without changing it (``os.umask`` can only set it: a moment of
    umask 0 for any other thread creating a file)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM held back for a few instructions (delivered when the block ends)."""
    sigs = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class _Visible(io.TextIOBase):
    """A text stream (stdout) that writes lone surrogates as visible escapes, not fail on them."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(without_surrogates(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def writable(self) -> bool:
        return True


def output_problem(value: str | os.PathLike[str], *, directory: bool = False) -> str | None:
    """Why an output cannot be written to ``value``, or None: checked before an analysis, so that
    a typo does not cost a long analysis first. ``directory``: a directory is fine (an output
    file is made inside it). The write itself can still fail (a full disk): :class:`OutputError`.
    """
    path = os.fspath(value)
    if path == "-":
        return None
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return _parent_problem(os.path.realpath(path))
    except OSError as exc:  # a component that is a file, a link loop, no permission
        return exc.strerror or str(exc)
    if stat.S_ISDIR(st.st_mode):
        if not directory:
            return "is a directory"
        return None if _can(path, os.W_OK | os.X_OK) else "directory not writable (permission denied)"
    if not stat.S_ISREG(st.st_mode):
        if stat.S_ISSOCK(st.st_mode):
            return "is a socket"
        return None if _can(path, os.W_OK) else "not writable (permission denied)"
    if not _can(path, os.W_OK):
        return "not writable (permission denied)"
    real = os.path.realpath(path)
    if os.path.exists(real):
        return _parent_problem(real)
    return None


def _parent_problem(target: str) -> str | None:
    parent = os.path.dirname(target) or "."
    try:
        st = os.stat(parent)
    except FileNotFoundError:
        return f"directory {parent} does not exist"
    except OSError as exc:
        return f"directory {parent}: {exc.strerror or exc}"
    if not stat.S_ISDIR(st.st_mode):
        return f"{parent} is not a directory"
    if not _can(parent, os.W_OK | os.X_OK):
        return f"directory {parent} not writable (permission denied)"
    return None


def _can(path: str, mode: int) -> bool:
    if os.access in os.supports_effective_ids:
        return os.access(path, mode, effective_ids=True)
    return os.access(path, mode)  # pragma: no cover - Linux supports effective ids


def destination(value: str | os.PathLike[str], capture: str | os.PathLike[str], suffix: str,
                used: set[str]) -> str:
    """The file an output option names for one capture: ``value`` itself, or
    ``<capture-stem><suffix>`` inside it when it is a directory; never one already in ``used``."""
    from .report import report_stem

    path = os.fspath(value)
    if path != "-" and os.path.isdir(path):
        path = os.path.join(path, report_stem(capture) + suffix)
    return unique_path(path, used)


def multi_stem(captures: Sequence[str | os.PathLike[str]]) -> str:
    """The file stem of the one report of several captures: ``a+b+c``, ``a+b+c+2-more``."""
    from .report import report_stem

    stem = "+".join(report_stem(c) for c in captures[:3])
    return stem + (f"+{len(captures) - 3}-more" if len(captures) > 3 else "")


def unique_path(path: str, used: set[str]) -> str:
    """``path``, or ``<base>-2<suffix>``, ``-3`` ... when an earlier capture of the same run took it
    (two captures with one stem do not overwrite each other's report); records the choice in ``used``.
    A device or a FIFO (``/dev/null`` for every output) is never renamed: nothing is replaced there."""
    if path == "-" or special_file(path):
        return path
    base, ext = path, ""
    for suffix in (REPORT_SUFFIX, MARKDOWN_SUFFIX, JSON_SUFFIX):
        if path.endswith(suffix):
            base, ext = path[: -len(suffix)], suffix
    candidate, n = path, 2
    while os.path.abspath(candidate) in used:
        candidate = f"{base}-{n}{ext}"
        n += 1
    used.add(os.path.abspath(candidate))
    return candidate
