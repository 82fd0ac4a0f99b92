"""Findings: what the detectors conclude, in the shape of the JSON ``findings[]`` contract.

Each finding has a stable dotted ``id`` (grouped by phase: ``handshake.``, ``reuse.``, ``close.``
...), a ``severity``, a ``title``, a one-sentence ``summary`` with the numbers, an ``explanation``
(likely cause and what to check next), the ``connections`` and evidence ``frames`` it rests on,
``first_ts``/``last_ts``, and ``evidence``: the figures it was judged on.

Titles, default severities and descriptions come from ``catalog.json`` (data, not code).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from importlib import resources
from typing import Any

from .util import iso_ts

__all__ = ["Finding", "SEVERITIES", "catalog", "severity_rank"]

SEVERITIES = ("info", "notice", "warning", "error")


def severity_rank(sev: str) -> int:
    return SEVERITIES.index(sev)


@functools.lru_cache(maxsize=1)
def catalog() -> dict[str, dict[str, Any]]:
    """The finding catalogue: id -> {phase, title, severity, description, suppresses}."""
    text = resources.files("pcapsleuth").joinpath("catalog.json").read_text(encoding="utf-8")
    data = json.loads(text)
    entries: dict[str, dict[str, Any]] = data["findings"]
    for fid, entry in entries.items():
        if entry["severity"] not in SEVERITIES:
            raise ValueError(f"catalog.json: {fid} has unknown severity {entry['severity']!r}")
    return entries


@dataclasses.dataclass
class Finding:
    """One conclusion with its evidence."""

    id: str
    summary: str
    explanation: str
    frames: list[int]
    connections: list[str]
    first_ts: int | None
    last_ts: int | None
    evidence: dict[str, Any]
    severity: str = ""
    title: str = ""

    def __post_init__(self) -> None:
        entry = catalog().get(self.id)
        if entry is None:
            raise KeyError(f"finding id {self.id!r} is not in catalog.json")
        if not self.severity:
            self.severity = entry["severity"]
        if not self.title:
            self.title = entry["title"]
        if self.severity not in SEVERITIES:
            raise ValueError(f"bad severity {self.severity!r}")
        if not self.frames:
            raise ValueError(f"finding {self.id} has no evidence frames")
        self.frames = sorted(set(self.frames))

    def sort_key(self) -> tuple[int, int, str]:
        return (-severity_rank(self.severity), self.frames[0], self.id)

    def to_dict(self) -> dict[str, Any]:
        """The JSON ``findings[]`` object (public contract: add keys, never rename)."""
        return {
            "id": self.id,
            "severity": self.severity,
            "title": self.title,
            "summary": self.summary,
            "explanation": self.explanation,
            "connections": list(self.connections),
            "frames": list(self.frames),
            "first_ts": iso_ts(self.first_ts),
            "last_ts": iso_ts(self.last_ts),
            "evidence": self.evidence,
        }
