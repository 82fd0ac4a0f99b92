"""The command line, run in-process: exit codes, output, and never a traceback."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

from pcapsleuth import __version__
from pcapsleuth.cli import main

from .conftest import SAMPLES

sys.path.insert(0, str(Path(__file__).parent))
import zeek_oracle as zo  # noqa: E402

CLEAN = SAMPLES / "incidents" / "clean.pcap"
LB = SAMPLES / "incidents" / "lb-client.pcap"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_version() -> None:
    code, out, _ = run("--version")
    assert code == 0 and __version__ in out


def test_analyze_prints_summary_and_findings() -> None:
    code, out, err = run("analyze", str(LB))
    assert code == 0, err
    assert "frames" in out and "handshake.conflicting_replies" in out and "ERROR" in out


def test_analyze_json_to_stdout_has_the_three_sections() -> None:
    code, out, _ = run("analyze", str(CLEAN), "--json", "-")
    assert code == 0
    doc = json.loads(out)
    assert set(doc) == {"capture", "connections", "findings"}
    cap = doc["capture"]
    for key in ("path", "frames", "first_ts", "last_ts", "link_types", "interfaces", "damage"):
        assert key in cap
    assert cap["frames"] == 10 and cap["link_types"] == ["EN10MB"]
    assert doc["connections"][0]["conn_state"] == "SF"


def test_analyze_json_file(tmp_path: Path) -> None:
    dest = tmp_path / "out.json"
    code, _, _ = run("analyze", str(CLEAN), "--json", str(dest), "-q")
    assert code == 0 and json.loads(dest.read_text())["capture"]["frames"] == 10


def test_conn_writes_a_zeek_log_that_zeek_tools_can_parse() -> None:
    code, out, err = run("conn", str(SAMPLES / "incidents" / "closewait-reuse.pcap"))
    assert code == 0, err
    log = zo.parse_zeek_log(out)
    rows = log.rows
    assert [r["conn_state"] for r in rows] == ["S2", "RSTOS0", "S2"]
    assert out.startswith("#separator \\x09\n") and "#path\tconn" in out


def test_bad_inputs_give_one_line_and_a_documented_code(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    text = tmp_path / "notes.txt"
    text.write_text("not a capture\n")
    cases = [(str(tmp_path / "missing.pcap"), 3), (str(tmp_path), 3), (str(empty), 4), (str(text), 4)]
    for path, want in cases:
        code, out, err = run("analyze", path)
        assert code == want, (path, code, err)
        assert err.count("\n") == 1 and path in err and "Traceback" not in err


def test_usage_error_is_exit_2() -> None:
    code, _, err = run("analyze")
    assert code == 2 and "usage" in err
