"""The pcapsleuth exception hierarchy.

Only input that cannot be analyzed at all raises; a damaged frame inside a readable capture is
counted, reported in ``capture.damage`` with its frame number, and skipped.

::

    PcapsleuthError                 base class; ``exit_code`` is what the CLI exits with
    ├── CaptureOpenError            the path cannot be read (missing, a directory, no permission) [3]
    │   └── (FileNotFoundError)     also raised as FileNotFoundError for the missing-file case
    ├── NotACaptureError            readable, but not pcap/pcapng (or an empty file)               [4]
    │   └── EmptyCaptureError       zero bytes                                                     [4]
    ├── DecompressionError          compressed input that cannot be decompressed or is too large   [5]
    └── EngineError                 the tshark engine is unavailable or failed                     [6]

Exit codes of ``pcapsleuth``: 0 success, 1 ``--fail-on`` threshold reached, 2 usage error,
3-6 as above, 7 an unexpected internal error (reported in one line, never a traceback).
"""

from __future__ import annotations

import os

__all__ = [
    "PcapsleuthError",
    "CaptureOpenError",
    "CaptureNotFoundError",
    "NotACaptureError",
    "EmptyCaptureError",
    "DecompressionError",
    "EngineError",
]


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
            return self.problem
        return f"{self.path}: {self.problem}"


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


class DecompressionError(PcapsleuthError, ValueError):
    """Compressed input that is corrupt, or would decompress beyond the configured bound."""

    exit_code = 5


class EngineError(PcapsleuthError, RuntimeError):
    """The tshark engine could not run."""

    exit_code = 6
