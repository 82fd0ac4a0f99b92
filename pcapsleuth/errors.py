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
    └── EngineError                 the tshark engine is unavailable or failed                     [6]

Exit codes of ``pcapsleuth``: 0 success, 1 ``--fail-on`` threshold reached, 2 usage error,
3-6 as above, 7 an unexpected internal error (reported in one line, never a traceback).
"""

from __future__ import annotations

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
    "printable",
]

# C0 and C1 control characters and DEL (ANSI escape sequences start with ESC or CSI), and the
# Unicode bidirectional overrides that reorder what a terminal shows ("Trojan Source").
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _visible(m: re.Match[str]) -> str:
    c = ord(m.group(0))
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def printable(text: object) -> str:
    """``text`` safe for a terminal and for one line of text: every control character (newlines,
    ESC of ANSI sequences, NUL ...) and bidi override shown as a visible escape (``\\x1b``).

    For strings a capture or a file name brings (pcapng comments, interface names, paths) on
    their way to a terminal, a Markdown file or an error line.
    """
    return _UNPRINTABLE.sub(_visible, str(text))


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
