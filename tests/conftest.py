"""Shared fixtures: where the public corpus and the recorded samples live."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"


def corpus_root() -> Path:
    """``$PCAPSLEUTH_CORPUS`` or ``../shared/corpus`` beside the repository. Never copied into the repo."""
    env = os.environ.get("PCAPSLEUTH_CORPUS")
    return Path(env) if env else REPO.parent / "shared" / "corpus"


def zeek_items() -> list[Path]:
    root = corpus_root() / "zeek"
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def zeek_trace(item: Path) -> Path:
    for name in ("trace.pcap", "trace.pcapng"):
        if (item / name).exists():
            return item / name
    raise FileNotFoundError(f"{item}: no trace.pcap or trace.pcapng")


def sample_captures() -> list[Path]:
    exts = (".pcap", ".pcapng", ".gz", ".cap")
    return sorted(p for p in SAMPLES.rglob("*") if p.is_file() and p.name.endswith(exts))


@pytest.fixture(scope="session")
def corpus() -> Path:
    root = corpus_root() / "zeek"
    assert root.is_dir(), f"the public corpus is missing: {root} (set PCAPSLEUTH_CORPUS)"
    return root


@pytest.fixture(scope="session")
def tshark() -> str:
    """tshark is installed by the test command (./dev test); its absence is a failure, not a skip."""
    path = shutil.which("tshark")
    assert path, "tshark is not installed: run the tests through ./dev test, which installs it"
    return path
