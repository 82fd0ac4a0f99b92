"""pcapsleuth: turn an offline packet capture into an explanation.

In a notebook (typed pandas DataFrames, drawings, the report)::

    >>> import pcapsleuth as ps
    >>> a = ps.analyze("capture.pcap")        # a path, pathlib.Path, bytes, file object, or a list
    >>> a
    <Analysis capture.pcap: 1,204 frames, 37 connections, 5 findings>
    >>> a.findings, a.connections, a.events, a.packets
    >>> a.finding(0).packets; a.plot_ladder(a.finding(0)); a.to_html("report.html")

The result objects underneath (what the CLI uses)::

    >>> result = ps.analyze_capture("capture.pcap")
    >>> [f.id for f in result.findings]
    ['handshake.conflicting_replies']

``help(ps.analyze)`` and ``help(ps.Analysis)`` say more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .analysis import AnalysisResult, analyze_capture
from .capture import Capture, CaptureInfo, read_packets
from .errors import (
    CaptureNotFoundError,
    CaptureOpenError,
    DecompressionError,
    EmptyCaptureError,
    EngineError,
    NotACaptureError,
    PcapsleuthError,
    TruncatedHeaderError,
)
from .findings import Finding
from .packet import Packet
from .tracker import Connection, Tracker

if TYPE_CHECKING:
    from .api import Analysis, ConnectionView, FindingView, analyze

__all__ = [
    "__version__",
    "analyze",
    "Analysis",
    "ConnectionView",
    "FindingView",
    "analyze_capture",
    "AnalysisResult",
    "Capture",
    "CaptureInfo",
    "read_packets",
    "Packet",
    "Connection",
    "Tracker",
    "Finding",
    "PcapsleuthError",
    "CaptureOpenError",
    "CaptureNotFoundError",
    "NotACaptureError",
    "EmptyCaptureError",
    "TruncatedHeaderError",
    "DecompressionError",
    "EngineError",
]

#: Names served by pcapsleuth.api, imported on first use: the command line does not pay for pandas.
_LAZY = {"analyze", "Analysis", "ConnectionView", "FindingView"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import api

        value = getattr(api, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pcapsleuth' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY)
