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
``destination``             the file an output option names for one capture (directory aware)
``multi_stem``              the file stem of the one report of several captures (``a+b+c``)
==========================  ===================================================================

Errors are left to the callers: the CLI turns them into one line and an exit code, the API
raises them.
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from .util import json_safe

if TYPE_CHECKING:
    from .analysis import AnalysisResult

__all__ = ["destination", "html_report", "json_text", "markdown_summary", "multi_stem", "summary_text",
           "unique_path", "write_json", "write_stream", "write_text"]

#: Suffixes of the files an analysis writes beside each other.
REPORT_SUFFIX = ".pcapsleuth.html"
MARKDOWN_SUFFIX = ".pcapsleuth.md"


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
    """The HTML report; written atomically to ``dest`` too unless it is None or ``-``.

    ``source_path`` is the capture, read again for evidence packets (default: the path the
    capture was read from). ``vantage``: the correlation of several captures
    (:func:`pcapsleuth.vantage.correlate`), for the one report that covers them all; ``result`` is
    then the first capture's. Raises ``jinja2.TemplateError`` for a broken template and
    ``OSError`` when the file cannot be written.
    """
    from .report import render_html

    out = None if dest is None or os.fspath(dest) == "-" else dest
    if vantage is None:
        return render_html(result, source_path, out, template_dir)
    return render_html(result, source_path, out, template_dir, vantage=vantage)


def markdown_summary(result: AnalysisResult, report_path: str | os.PathLike[str] | None = None, *,
                     template_dir: str | os.PathLike[str] | None = None) -> str:
    """The short Markdown summary for a ticket (naming the HTML report's file when given)."""
    from .markdown import render_markdown

    return render_markdown(result, report_path, template_dir=template_dir)


def write_text(text: str, dest: str | os.PathLike[str], out: TextIO | None = None) -> None:
    """Write ``text`` to ``dest`` through a temporary file beside it (a reader never sees half a
    file), or to ``out`` (default: stdout) when ``dest`` is ``-``."""
    write_stream(lambda f: f.write(text), dest, out)


def write_stream(writer: Callable[[TextIO], object], dest: str | os.PathLike[str], out: TextIO | None = None) -> None:
    """:func:`write_text` for text produced piecewise by ``writer(stream)``."""
    path = os.fspath(dest)
    if path == "-":
        writer(out if out is not None else sys.stdout)
        return
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            writer(f)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


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
    (two captures with one stem do not overwrite each other's report); records the choice in ``used``."""
    if path == "-":
        return path
    base, ext = path, ""
    for suffix in (REPORT_SUFFIX, MARKDOWN_SUFFIX):
        if path.endswith(suffix):
            base, ext = path[: -len(suffix)], suffix
    candidate, n = path, 2
    while os.path.abspath(candidate) in used:
        candidate = f"{base}-{n}{ext}"
        n += 1
    used.add(os.path.abspath(candidate))
    return candidate
