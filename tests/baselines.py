"""Golden baselines for every capture in samples/, pinned to the columns that matter.

Like Zeek's btest baselines: one JSON file per sample (``tests/baselines/<dir>__<file>.json``),
paired by name, holding the connection table (uid, tuple, conn_state, history, inferred final
states, predecessor) and the findings (id, severity, evidence frames). A change in behaviour shows
up as a diff to review; refresh deliberately with::

    python tests/baselines.py --refresh        (or ./dev baselines)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BASELINES = HERE / "baselines"
CONN_COLUMNS = ("uid", "orig_h", "orig_p", "resp_h", "resp_p", "proto", "conn_state", "history",
                "orig_tcp_state", "resp_tcp_state", "predecessor")
FINDING_COLUMNS = ("id", "severity", "frames")


def sample_files() -> list[Path]:
    exts = (".pcap", ".pcapng", ".gz", ".cap")
    return sorted(p for p in (REPO / "samples").rglob("*") if p.is_file() and p.name.endswith(exts))


def baseline_path(sample: Path) -> Path:
    rel = sample.relative_to(REPO / "samples")
    return BASELINES / ("__".join(rel.parts) + ".json")


def pinned(sample: Path) -> dict[str, Any]:
    from pcapsleuth.analysis import analyze_capture

    doc = analyze_capture(sample).to_json_dict()
    return {
        "frames": doc["capture"]["frames"],
        "damage": [{"kind": d["kind"], "count": d["count"]} for d in doc["capture"]["damage"]],
        "connections": [{k: c[k] for k in CONN_COLUMNS} for c in doc["connections"]],
        "findings": [{k: f[k] for k in FINDING_COLUMNS} for f in doc["findings"]],
    }


def refresh() -> None:
    BASELINES.mkdir(exist_ok=True)
    for sample in sample_files():
        path = baseline_path(sample)
        path.write_text(json.dumps(pinned(sample), indent=1, sort_keys=True) + "\n")
        print(f"wrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    if sys.argv[1:] != ["--refresh"]:
        sys.exit("usage: python tests/baselines.py --refresh")
    refresh()
