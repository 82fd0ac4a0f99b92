"""Every sample capture still yields its golden baseline (see tests/baselines.py to refresh)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import baselines as bl  # noqa: E402


@pytest.mark.parametrize("sample", bl.sample_files(), ids=lambda p: str(p.relative_to(bl.REPO / "samples")))
def test_sample_matches_its_baseline(sample: Path) -> None:
    path = bl.baseline_path(sample)
    assert path.exists(), f"no baseline for {sample.name}: run python tests/baselines.py --refresh and review"
    assert bl.pinned(sample) == json.loads(path.read_text())


def test_every_baseline_has_its_sample() -> None:
    names = {bl.baseline_path(s).name for s in bl.sample_files()}
    orphans = sorted(p.name for p in bl.BASELINES.glob("*.json") if p.name not in names)
    assert orphans == []
