"""The pcapsleuth exception hierarchy.

Only input that cannot be analyzed at all raises; a damaged frame inside a readable capture is
counted, reported in ``capture.damage`` with its frame number, and skipped.

::

    PcapsleuthError                 base class; ``exit_code`` is what the CLI exits with
    ├── CaptureOpenError            the path cannot be read (missing, a directory, no permission) [3]
    │   └── (FileNotFoundError)     also raised as FileNotFoundError for the missing-file case
    ├── NotACaptureError            readable, but not pcap/pcapng, or no record readable: empty,   [4]
    │   │                           or its file header is unusable (pcapng SHB version 2.0 ...)
    │   ├── EmptyCaptureError       zero bytes                                                     [4]
    │   └── TruncatedHeaderError    the file ends inside its own header: no record is readable     [4]
    ├── DecompressionError          compressed input that cannot be decompressed or is too large   [5]
    ├── EngineError                 the tshark engine is unavailable or failed                     [6]
    └── OutputError                 an output cannot be written (also an OSError): its directory    [2]
                                    is missing or not writable, it is a directory, the disk is full

Exit codes of ``pcapsleuth``: 0 success, 1 ``--fail-on`` threshold reached, 2 usage error or an
output that cannot be written, 3-6 as above, 7 an unexpected internal error (reported in one
line, never a traceback), 130 and 143 interrupted by SIGINT and SIGTERM.
"""

from __future__ import annotations

import codecs
import os
import re

__all__ = [
    "PcapsleuthError",
    "CaptureOpenError",
    "CaptureNotFoundError",
    "NotACaptureError",
    "EmptyCaptureError",
    "TruncatedHeaderError",
    "DecompressionError",
    "EngineError",
    "OutputError",
    "ESCAPED_RANGES",
    "VISIBLE",
    "printable",
    "printable_lines",
    "visible_escape",
    "without_surrogates",
]

#: What :func:`printable` shows as a visible escape, as code point ranges (kept in step with
#: ``util._JSON_ESCAPES``, the JSON's policy). Unicode general categories:
#:
#: * Cc: C0 and C1 control characters and DEL (ANSI escape sequences start with ESC or CSI);
#: * Cf: invisible format characters: the bidi marks (U+200E, U+200F, U+061C), embeddings,
#:   overrides and isolates that reorder what a terminal shows ("Trojan Source"), zero-width
#:   spaces and joiners, the word joiner, the BOM, soft hyphens, interlinear annotations, tags;
#: * Zl and Zp: U+2028 and U+2029, line and paragraph separators (a line break to some viewers);
#: * Cs: lone surrogates, which is how Python holds the bytes of a file name that are not UTF-8
#:   (``os.fsdecode``'s surrogateescape: byte 0xff is U+DCFF); shown as the byte, ``\\xff``.
#:
#: (Unicode 15's Cf, a superset of older versions; ``tests/test_hostile_outputs.py`` checks it
#: against the running Python's ``unicodedata``.)
ESCAPED_RANGES: tuple[tuple[int, int], ...] = (
    (0x0000, 0x001F), (0x007F, 0x009F), (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C),
    (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2), (0x180E, 0x180E),
    (0x200B, 0x200F), (0x2028, 0x202E), (0x2060, 0x2064), (0x2066, 0x206F), (0xD800, 0xDFFF),
    (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001), (0xE0020, 0xE007F),
)


def char_class(ranges: tuple[tuple[int, int], ...]) -> str:
    """A regular expression character class matching the code point ``ranges``."""
    def esc(c: int) -> str:
        return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" if c < 0x10000 else f"\\U{c:08x}"

    return "[" + "".join(esc(a) if a == b else f"{esc(a)}-{esc(b)}" for a, b in ranges) + "]"


_UNPRINTABLE = re.compile(char_class(ESCAPED_RANGES))
_SURROGATES = re.compile("[\\ud800-\\udfff]")


def visible_escape(c: int) -> str:
    """The visible escape of code point ``c``: ``\\x1b``, ``\\u202e``, ``\\U000e0001``; a
    surrogate that stands for a byte of a non-UTF-8 file name (U+DC80..U+DCFF) as that byte."""
    if 0xDC80 <= c <= 0xDCFF:
        c -= 0xDC00
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" if c < 0x10000 else f"\\U{c:08x}"


def _visible(m: re.Match[str]) -> str:
    return visible_escape(ord(m.group(0)))


def printable(text: object) -> str:
    """``text`` safe for a terminal and for one line of text: every control character (newlines,
    ESC of ANSI sequences, NUL ...), bidi mark or override, invisible format character, line
    separator and non-UTF-8 byte of a file name shown as a visible escape (``\\x1b``, ``\\xff``).

    For strings a capture or a file name brings (pcapng comments, interface names, paths) on
    their way to a terminal, a Markdown file or an error line. Idempotent: an escape is printable.
    """
    s = text if isinstance(text, str) else str(text)
    return _UNPRINTABLE.sub(_visible, s)


def printable_lines(text: str) -> str:
    """:func:`printable` for each line of ``text``, keeping its line ends: a summary of several
    lines for the terminal."""
    return "\n".join(printable(line) for line in text.split("\n"))


def without_surrogates(text: str) -> str:
    """``text`` encodable as UTF-8: the lone surrogates of a non-UTF-8 file name written as their
    visible escapes (``\\xff``), everything else as it is. The last guard of every text output
    (HTML, Markdown, ``-``), which would fail on them."""
    if _SURROGATES.search(text) is None:
        return text
    return _SURROGATES.sub(_visible, text)


def _encode_visible(exc: UnicodeError) -> tuple[str, int]:
    """A codec error handler: what UTF-8 cannot encode (lone surrogates) as visible escapes."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    return "".join(visible_escape(ord(c)) for c in exc.object[exc.start:exc.end]), exc.end


#: ``open(..., errors=VISIBLE)``: lone surrogates are written as ``\\xff``, never fail a write.
VISIBLE = "pcapsleuth-visible"
codecs.register_error(VISIBLE, _encode_visible)


class PcapsleuthError(Exception):
    """Base class of every error pcapsleuth raises on purpose."""

    exit_code = 7

    def __init__(self, path: str | os.PathLike[str] | None, problem: str) -> None:
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """The message the CLI prints: the file, then the problem."""
        if self.path is None:
            return printable(self.problem)
        return printable(f"{self.path}: {self.problem}")


class CaptureOpenError(PcapsleuthError, OSError):
    """The capture could not be opened (missing, a directory, no permission, a read error)."""

    exit_code = 3


class CaptureNotFoundError(CaptureOpenError, FileNotFoundError):
    """The capture path does not exist."""


class NotACaptureError(PcapsleuthError, ValueError):
    """The input is readable but is not a pcap or pcapng capture."""

    exit_code = 4


class EmptyCaptureError(NotACaptureError):
    """The input has no bytes at all."""


class TruncatedHeaderError(NotACaptureError):
    """The file ends inside the pcap global header or the first pcapng section header block."""


class DecompressionError(PcapsleuthError, ValueError):
    """Compressed input that is corrupt, or would decompress beyond the configured bound."""

    exit_code = 5


class EngineError(PcapsleuthError, RuntimeError):
    """The tshark engine could not run."""

    exit_code = 6


class OutputError(PcapsleuthError, OSError):
    """An output (``--json``, ``--html``, ``--markdown``, ``Analysis.to_html(path)`` ...) cannot be
    written: found before the analysis (a missing or unwritable directory, a directory where a
    file is expected) or by the write itself (a full disk). ``option`` names the command-line
    option, when there is one; ``errno`` is the system's, when there is one."""

    exit_code = 2

    def __init__(self, path: str | os.PathLike[str] | None, problem: str, *, option: str | None = None,
                 errno: int | None = None) -> None:
        self.option = option
        super().__init__(path, problem)
        self.errno = errno

    def one_line(self) -> str:
        line = super().one_line()
        return f"{self.option} {line}" if self.option else line
