"""The analysis pipeline: capture -> packets -> (connections, findings) -> results."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from .capture import Capture, CaptureInfo
from .reader import Source

__all__ = ["AnalysisResult", "analyze_capture"]


@dataclasses.dataclass
class AnalysisResult:
    """Everything one analysis produced, in the shape of the JSON document."""

    capture: CaptureInfo

    def to_json_dict(self) -> dict[str, Any]:
        return {"capture": self.capture.to_dict()}

    def summary_text(self) -> str:
        from .summary import capture_summary

        return capture_summary(self.capture)


def analyze_capture(source: Source | os.PathLike[str], *, engine: str = "fast", verify_checksums: bool = True,
                    max_decompressed: int = 64 * 1024**3) -> AnalysisResult:
    """Read and analyze one capture."""
    if engine == "tshark":
        from .engine_tshark import TsharkCapture

        cap: Any = TsharkCapture(source)
    else:
        cap = Capture(source, verify_checksums=verify_checksums, max_decompressed=max_decompressed)
    with cap:
        for _pkt in cap:
            pass
    return AnalysisResult(capture=cap.info)
