"""The command line, run in-process: exit codes, output, and never a traceback."""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
from pathlib import Path

import pytest

from pcapsleuth import __version__, cli
from pcapsleuth.cli import main
from pcapsleuth.errors import PcapsleuthError

from .conftest import REPO, SAMPLES

sys.path.insert(0, str(Path(__file__).parent))
import zeek_oracle as zo  # noqa: E402

CLEAN = SAMPLES / "incidents" / "clean.pcap"
LB = SAMPLES / "incidents" / "lb-client.pcap"
CW = SAMPLES / "incidents" / "closewait-reuse.pcap"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``analyze`` writes its report to the current directory: keep it out of the repository."""
    monkeypatch.chdir(tmp_path)


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
    assert set(doc) == {"capture", "tracking", "connections", "findings"}
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


# -- the progress line ------------------------------------------------------------------------------
class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


ANALYZED = re.compile(r"pcapsleuth: analyzed (?P<name>\S+): (?P<done>[\d.]+ k?B) of (?P<total>[\d.]+ k?B), "
                      r"\d+\.\d s *$")


def test_progress_line_is_on_stderr_only_when_asked_or_on_a_terminal() -> None:
    code, plain_out, err = run("analyze", str(CW), "--no-html")
    assert code == 0 and err == ""  # stderr is a log here: no progress line
    code, out, err = run("analyze", str(CW), "--no-html", "--progress")
    assert code == 0 and out == plain_out  # stdout is the same
    assert err.endswith("\n") and err.startswith("\r")
    last = ANALYZED.fullmatch(err.split("\r")[-1].rstrip("\n"))
    assert last is not None, err
    assert last["name"] == "closewait-reuse.pcap" and last["done"] == last["total"] == "1.5 kB"
    code, out, err = run("analyze", str(CW), "--no-html", "--progress", "-q")
    assert code == 0 and out == err == ""
    code, _, err = run("analyze", str(CW), "--progress", "--no-progress")
    assert code == 2 and "not allowed with" in err
    tty = Tty()
    code = main(["analyze", str(CW), "--no-html", "-q"], stdout=io.StringIO(), stderr=tty)
    assert code == 0 and tty.getvalue() == ""  # a terminal, but done in under half a second: no noise


def test_progress_default_follows_the_terminal() -> None:
    def args(*flags: str) -> argparse.Namespace:
        return cli._parser().parse_args(["analyze", "x.pcap", *flags])

    bar = cli._progress_bar(args(), Tty(), "dir/x.pcap")
    assert bar is not None and bar.mode == "terminal" and bar.delay == 0.5 and bar.label == "x.pcap"
    assert cli._progress_bar(args(), io.StringIO(), "x.pcap") is None
    assert cli._progress_bar(args("--no-progress"), Tty(), "x.pcap") is None
    assert cli._progress_bar(args("-q"), Tty(), "x.pcap") is None
    forced = cli._progress_bar(args("--progress"), io.StringIO(), "x.pcap")
    assert forced is not None and forced.delay == 0.0
    conn = cli._parser().parse_args(["conn", "x.pcap"])  # conn has no --quiet
    assert cli._progress_bar(conn, Tty(), "x.pcap") is not None


def test_progress_line_of_conn_and_of_several_captures() -> None:
    code, plain, _ = run("conn", str(CW))
    code, out, err = run("conn", str(CW), "--progress")
    assert code == 0 and out == plain  # the log on stdout is untouched
    assert ANALYZED.fullmatch(err.split("\r")[-1].rstrip("\n")) is not None, err
    code, out, err = run("analyze", str(CLEAN), str(LB), "--no-html", "--progress")
    assert code == 0, err
    names = [m["name"] for m in map(ANALYZED.fullmatch, err.replace("\r", "\n").splitlines()) if m]
    assert names == ["clean.pcap", "lb-client.pcap"]  # one line per vantage point, in order


def test_progress_line_is_ended_before_an_error(tmp_path: Path) -> None:
    err = io.StringIO()
    opts = cli._parser().parse_args(["analyze", "x.pcap", "--progress"])
    with pytest.raises(PcapsleuthError), cli._progress_of(opts, err, "x.pcap") as bar:
        bar(50, 100, "bytes")
        raise PcapsleuthError("x.pcap", "broken")
    # the line stays where the analysis stopped and ends, so the error is a line of its own
    assert err.getvalue().endswith("\n")
    assert "analyzing x.pcap:  50% 50 B of 100 B" in err.getvalue().split("\r")[-1]
    text = tmp_path / "notes.txt"
    text.write_text("not a capture\n")
    code, _, out = run("analyze", str(text), "--progress")
    assert code == 4 and out.count("\n") == 1 and "\r" not in out  # nothing was drawn: only the error


# -- the HTML report, Markdown, --fail-on, catalog -------------------------------------------------
def test_analyze_writes_the_report_to_the_current_directory(tmp_path: Path) -> None:
    code, out, err = run("analyze", str(LB))
    assert code == 0, err
    report = tmp_path / "lb-client.pcapsleuth.html"
    assert out.rstrip().endswith("report: lb-client.pcapsleuth.html")
    html = report.read_text(encoding="utf-8")
    assert 'data-finding-id="handshake.conflicting_replies"' in html
    assert list(tmp_path.iterdir()) == [report]


def test_analyze_html_path_and_no_html(tmp_path: Path) -> None:
    code, out, _ = run("analyze", str(CLEAN), "--html", "sub.html")
    assert code == 0 and (tmp_path / "sub.html").is_file() and "report: sub.html" in out
    (tmp_path / "sub.html").unlink()
    code, out, _ = run("analyze", str(CLEAN), "--no-html")
    assert code == 0 and list(tmp_path.iterdir()) == [] and "report:" not in out


def test_html_to_a_directory_for_several_captures(tmp_path: Path) -> None:
    """--separate: each capture analyzed alone, a report each (without it they are vantage points)."""
    (tmp_path / "out").mkdir()
    code, out, err = run("analyze", str(CLEAN), str(LB), "--separate", "--html", "out", "-q")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["clean.pcapsleuth.html",
                                                                   "lb-client.pcapsleuth.html"]
    assert out == ""
    code, _, err = run("analyze", str(CLEAN), str(LB), "--separate", "--html", "one.html")
    assert code == 2 and "directory" in err and err.count("\n") == 1


def test_several_captures_together_write_one_report(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    code, out, err = run("analyze", str(CLEAN), str(LB), "--html", "out", "-q")
    assert code == 0, err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["clean+lb-client.pcapsleuth.html"]


def test_json_on_stdout_writes_no_default_report(tmp_path: Path) -> None:
    code, out, _ = run("analyze", str(LB), "--json", "-")
    assert code == 0 and json.loads(out)["findings"]
    assert list(tmp_path.iterdir()) == []
    code, out, err = run("analyze", str(LB), "--json", "-", "--html", "r.html")
    assert code == 0 and json.loads(out) and (tmp_path / "r.html").is_file()
    assert "report: r.html" in err


def test_html_on_stdout() -> None:
    code, out, _ = run("analyze", str(CLEAN), "--html", "-")
    assert code == 0 and out.startswith("<!DOCTYPE html>") and out.rstrip().endswith("</html>")
    code, _, err = run("analyze", str(CLEAN), "--html", "-", "--json", "-")
    assert code == 2 and "stdout" in err


def test_unwritable_report_path_is_one_line(tmp_path: Path) -> None:
    code, _, err = run("analyze", str(CLEAN), "--html", str(tmp_path / "no" / "such" / "dir.html"))
    assert code == 2 and err.count("\n") == 1 and "does not exist" in err
    code, _, err = run("analyze", str(CLEAN), "--template-dir", str(tmp_path / "nope"))
    assert code == 2 and "not a directory" in err


def test_default_report_that_cannot_be_written_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "lb-client.pcapsleuth.html").mkdir()  # in the way of the default report
    code, out, err = run("analyze", str(LB))
    assert code == 0 and "warning" in err and err.count("\n") == 1 and "report:" not in out
    assert [p.name for p in tmp_path.iterdir()] == ["lb-client.pcapsleuth.html"]  # no .tmp left


def test_broken_template_override_is_one_line(tmp_path: Path) -> None:
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    (tpl / "report.html.j2").write_text("{% if %}\n")
    code, _, err = run("analyze", str(CLEAN), "--template-dir", str(tpl))
    assert code == 2 and err.count("\n") == 1 and "template error" in err and "Traceback" not in err


@pytest.mark.parametrize(("capture", "threshold", "want"), [
    (LB, "error", 1),  # handshake.conflicting_replies is an error
    (CW, "warning", 1),
    (CW, "error", 1),
    (CLEAN, "info", 0),  # no findings at all
    (LB, None, 0),
])
def test_fail_on(capture: Path, threshold: str | None, want: int) -> None:
    args = ["analyze", str(capture), "--no-html", "-q"] + (["--fail-on", threshold] if threshold else [])
    code, _, err = run(*args)
    assert code == want, err


def test_fail_on_needs_a_severity() -> None:
    code, _, err = run("analyze", str(CLEAN), "--fail-on", "fatal")
    assert code == 2 and "invalid choice" in err


def test_markdown(tmp_path: Path) -> None:
    code, _, err = run("analyze", str(LB), "--markdown", "t.md", "-q")
    assert code == 0, err
    text = (tmp_path / "t.md").read_text(encoding="utf-8")
    assert "`handshake.conflicting_replies`" in text and "`lb-client.pcapsleuth.html`" in text
    code, out, _ = run("analyze", str(LB), "--markdown", "-", "--no-html")
    assert code == 0 and out.startswith("### pcapsleuth: ERROR") and "report" not in out.lower().split("\n")[-2]


def test_catalog_lists_every_finding_id() -> None:
    from pcapsleuth.findings import catalog

    code, out, _ = run("catalog")
    assert code == 0
    listed = [line.split()[0] for line in out.splitlines() if line and not line.startswith(" ")]
    assert listed == sorted(catalog())
    code, out, _ = run("catalog", "--json")
    doc = json.loads(out)
    assert [e["id"] for e in doc] == sorted(catalog())
    assert all(set(e) >= {"id", "severity", "title", "description"} for e in doc)


def test_exit_codes_are_documented_alike() -> None:
    """The README's table, the module docstring and --help's epilog list the same exit codes,
    and the errors' own codes are among them (an output that cannot be written: 2)."""
    from pcapsleuth import errors

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = readme.split("### Exit codes", 1)[1].split("\n## ", 1)[0]
    in_readme = {int(c) for row in re.findall(r"^\| ([\d, ]+) \|", table, re.M) for c in row.split(",")}
    in_doc = {int(m) for m in re.findall(r"^(\d+)\s{2,}", cli.__doc__ or "", re.M)}
    in_epilog = {int(m) for m in re.findall(r"(\d+) [a-z-]", cli._parser().epilog or "")}
    assert in_readme == in_doc == in_epilog == {0, 1, 2, 3, 4, 5, 6, 7, 130, 143}
    assert errors.OutputError.exit_code == cli.EXIT_USAGE == 2
    assert {cli.EXIT_INTERRUPTED, cli.EXIT_TERMINATED} == {130, 143}


def test_json_output_problems_are_usage_errors_before_the_analysis(tmp_path: Path) -> None:
    """--json into a missing directory exited 7 "internal error" after the analysis; --html and
    --markdown already exited 2. Now all three the same way, before it."""
    target, parent = tmp_path / "nope" / "x", tmp_path / "nope"
    for opt in ("--json", "--html", "--markdown"):
        code, out, err = run("analyze", str(LB), opt, str(target))
        assert code == 2 and out == "" and err.count("\n") == 1, (opt, err)
        assert err == f"pcapsleuth: error: {opt} {target}: directory {parent} does not exist\n"
    assert list(tmp_path.iterdir()) == []  # not even the default report: nothing was analyzed


def test_separate_captures_write_one_json_each_into_a_directory(tmp_path: Path) -> None:
    """``--separate --json DIR``: one ``<stem>.pcapsleuth.json`` per capture. A single file would be
    overwritten by each capture in turn (only the last one's JSON survived): refused before the analysis."""
    d = tmp_path / "o"
    d.mkdir()
    code, _, err = run("analyze", str(LB), str(CLEAN), "--separate", "--json", str(d), "--no-html", "-q")
    assert code == 0, err
    docs = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in d.iterdir()}
    assert set(docs) == {"lb-client.pcapsleuth.json", "clean.pcapsleuth.json"}
    assert docs["clean.pcapsleuth.json"]["capture"]["path"].endswith("clean.pcap")
    assert docs["lb-client.pcapsleuth.json"]["capture"]["path"].endswith("lb-client.pcap")
    code, out, err = run("analyze", str(LB), str(CLEAN), "--separate", "--json", str(d / "x.json"), "--no-html")
    assert code == 2 and not out and "with several captures, give an existing directory" in err
    assert not (d / "x.json").exists()


def test_json_into_a_directory_for_one_capture_and_for_vantage_points(tmp_path: Path) -> None:
    code, _, err = run("analyze", str(LB), "--json", str(tmp_path), "--no-html", "-q")
    assert code == 0, err
    assert json.loads((tmp_path / "lb-client.pcapsleuth.json").read_text(encoding="utf-8"))["capture"]["frames"] == 16
    code, _, err = run("analyze", str(LB), str(CLEAN), "--json", str(tmp_path), "--no-html", "-q")
    assert code == 0, err
    assert "vantage_points" in json.loads((tmp_path / "lb-client+clean.pcapsleuth.json").read_text(encoding="utf-8"))


def test_a_capture_from_stdin_gets_a_report_named_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(LB.read_bytes())))
    code, out, err = run("analyze", "-", "--no-progress")
    assert code == 0, err
    assert (tmp_path / "stdin.pcapsleuth.html").is_file() and "report: stdin.pcapsleuth.html" in out
    assert not (tmp_path / "-.pcapsleuth.html").exists()
