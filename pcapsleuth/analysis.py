"""The analysis pipeline: capture -> packets -> connections (-> findings) -> results."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from .capture import Capture, CaptureInfo
from .detectors import detect
from .findings import Finding
from .reader import Source
from .tracker import LIKELY_SERVER_PORTS, Connection, Tracker

__all__ = ["AnalysisResult", "analyze_capture"]


@dataclasses.dataclass
class AnalysisResult:
    """Everything one analysis produced, in the shape of the JSON document."""

    capture: CaptureInfo
    connections: list[Connection] = dataclasses.field(default_factory=list)
    findings: list[Finding] = dataclasses.field(default_factory=list)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "capture": self.capture.to_dict(),
            "connections": [c.to_dict() for c in self.connections],
            "findings": [f.to_dict() for f in self.findings],
        }

    def summary_text(self) -> str:
        from .summary import capture_summary

        return capture_summary(self.capture, self.connections, self.findings)


def analyze_capture(source: Source | os.PathLike[str], *, engine: str = "fast", verify_checksums: bool = True,
                    max_decompressed: int = 64 * 1024**3, strict_checksums: bool = False,
                    likely_server_ports: frozenset[int] = LIKELY_SERVER_PORTS) -> AnalysisResult:
    """Read one capture and track its connections.

    ``strict_checksums`` counts checksums that merely look offloaded as bad, as Zeek does
    without ``-C``; by default they are trusted (the NIC or loopback completes them).
    """
    if engine == "tshark":
        from .engine_tshark import TsharkCapture

        cap: Any = TsharkCapture(source)
    else:
        cap = Capture(source, verify_checksums=verify_checksums, max_decompressed=max_decompressed)
    tracker = Tracker(strict_checksums=strict_checksums, likely_server_ports=likely_server_ports)
    feed = tracker.packet
    with cap:
        for pkt in cap:
            feed(pkt)
    conns = tracker.finish()
    return AnalysisResult(capture=cap.info, connections=conns, findings=detect(conns, cap.info))
