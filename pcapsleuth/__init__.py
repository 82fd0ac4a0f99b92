"""pcapsleuth: turn an offline packet capture into an explanation.

>>> import pcapsleuth as ps                                    # doctest: +SKIP
>>> result = ps.analyze_capture("capture.pcap")                # doctest: +SKIP
>>> [f.id for f in result.findings]                            # doctest: +SKIP
['handshake.conflicting_replies']
"""

from __future__ import annotations

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
)
from .findings import Finding
from .packet import Packet
from .tracker import Connection, Tracker

__all__ = [
    "__version__",
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
    "DecompressionError",
    "EngineError",
]
