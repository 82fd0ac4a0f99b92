"""The Python/Jupyter API (pcapsleuth.analyze -> Analysis): typed DataFrames, navigation, drawings,
outputs identical to the CLI's, inputs, event loops, progress, escaping, the public names."""

from __future__ import annotations

import asyncio
import io
import json
import os
import pydoc
import re
import shutil
import struct
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from matplotlib.figure import Figure

import pcapsleuth as ps
from pcapsleuth import progress as progress_mod
from pcapsleuth.analysis import analyze_capture
from pcapsleuth.cli import main
from pcapsleuth.findings import SEVERITIES, Finding
from pcapsleuth.plots import figure_to_svg
from pcapsleuth.refetch import connection_packets

from .conftest import REPO, SAMPLES

INC = SAMPLES / "incidents"
CW = INC / "closewait-reuse.pcap"
LB = INC / "lb-client.pcap"
LB_ALL = [INC / "lb-client.pcap", INC / "lb-balancer.pcap", INC / "lb-backend.pcap"]
MINEFIELD = INC / "closewait-minefield.pcap"
LOSSY = SAMPLES / "anomalies" / "lossy-client.pcap"

# -- the expected dtypes, written out (not read from the module under test) ----------------------------
TS = "datetime64[ns, UTC]"
CONNECTIONS = {
    "uid": "string", "orig_h": "string", "orig_p": "UInt16", "resp_h": "string", "resp_p": "UInt16",
    "proto": "category", "ip_version": "uint8", "community_id": "string", "predecessor": "string",
    "successor": "string", "first_frame": "int64", "last_frame": "int64", "first_ts": TS, "last_ts": TS,
    "duration": "float64", "orig_pkts": "int64", "resp_pkts": "int64", "orig_bytes": "int64", "resp_bytes": "int64",
    "orig_ip_bytes": "int64", "resp_ip_bytes": "int64", "missed_bytes": "int64", "conn_state": "category",
    "history": "string", "orig_state": "category", "resp_state": "category", "orig_tcp_state": "category",
    "resp_tcp_state": "category", "rtt_syn_synack": "float64", "rtt_synack_ack": "float64",
    "orig_retrans_bytes": "int64", "resp_retrans_bytes": "int64", "orig_retrans_pkts": "int64",
    "resp_retrans_pkts": "int64", "closed_by": "category", "close_how": "category", "close_frame": "Int64",
    "orig_isn": "Int64", "resp_isn": "Int64", "orig_mss": "Int64", "resp_mss": "Int64", "orig_wscale": "Int64",
    "resp_wscale": "Int64", "orig_sack_ok": "bool", "resp_sack_ok": "bool", "orig_sack_blocks": "int64",
    "resp_sack_blocks": "int64", "orig_ts_ok": "bool", "resp_ts_ok": "bool", "orig_tsval_first": "Int64",
    "orig_tsval_last": "Int64", "resp_tsval_first": "Int64", "resp_tsval_last": "Int64", "orig_ttl": "UInt8",
    "resp_ttl": "UInt8", "orig_l2_addr": "string", "resp_l2_addr": "string", "vlan": "object",
    "transitions": "object", "weirds": "object",
    **{f"{side}_rtt.{k}": t for side in ("orig", "resp")
       for k, t in (("samples", "Int64"), ("min", "float64"), ("avg", "float64"), ("max", "float64"),
                    ("delayed_ack_samples", "Int64"), ("delayed_ack_max", "float64"), ("karn_skipped", "Int64"))},
    "analysis": "object", "predecessor_info": "object",
}
FINDINGS = {
    "id": "category", "severity": "category", "title": "string", "summary": "string", "explanation": "string",
    "connections": "object", "frames": "object", "first_ts": TS, "last_ts": TS, "evidence": "object",
}
EVENTS = {
    "uid": "string", "frame": "int64", "ts": TS, "side": "category", "analysis": "category",
    "tcp_flags": "category", "payload_len": "int64", "peer_frame": "Int64", "dupack_num": "Int64",
    "rto_timeout": "float64",
}
PACKETS = {
    "frame": "int64", "ts": TS, "uid": "string", "caplen": "int64", "wirelen": "int64", "iface": "int64",
    "direction": "category", "linktype": "int64", "src_mac": "string", "vlan": "object", "encap": "category",
    "ip_version": "uint8", "src": "string", "dst": "string", "ttl": "UInt8", "ip_id": "Int64", "df": "boolean",
    "frag": "category", "proto": "UInt8", "sport": "UInt16", "dport": "UInt16", "seq": "Int64", "ack": "Int64",
    "tcp_flags": "category", "window": "Int64", "options": "object", "payload_len": "Int64", "cksum": "category",
    "pkttype": "UInt16", "ifindex": "Int64", "note": "string",
}
STATES = {"frame": "int64", "ts": TS, "side": "category", "state": "category"}
ZEEK_STATES = ["S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH", "SHR", "OTH"]


def dtypes_of(df: pd.DataFrame) -> dict[str, str]:
    return {c: str(t) for c, t in df.dtypes.items()}


def assert_dtypes(df: pd.DataFrame, expected: dict[str, str], vantage: bool = False) -> None:
    want = ({"vantage": "category"} if vantage else {}) | expected
    assert dtypes_of(df) == want
    assert list(df.columns) == list(want)


@pytest.fixture(scope="module")
def cw() -> ps.Analysis:
    return ps.analyze(CW, progress=False)


@pytest.fixture(scope="module")
def lb3() -> ps.Analysis:
    return ps.analyze(LB_ALL, progress=False)


def empty_pcap() -> bytes:
    """A valid pcap with a header and no records: every frame is empty."""
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)


# -- public names and help ----------------------------------------------------------------------------
PUBLIC = {
    "__version__", "analyze", "Analysis", "ConnectionView", "FindingView", "analyze_capture", "AnalysisResult",
    "Capture", "CaptureInfo", "read_packets", "Packet", "Connection", "Tracker", "Finding", "PcapsleuthError",
    "CaptureOpenError", "CaptureNotFoundError", "NotACaptureError", "EmptyCaptureError", "TruncatedHeaderError",
    "DecompressionError", "EngineError",
}


def test_public_names_are_curated_and_all_resolve() -> None:
    assert set(ps.__all__) == PUBLIC and len(ps.__all__) == len(PUBLIC)
    ns: dict[str, Any] = {}
    exec("from pcapsleuth import *", ns)  # noqa: S102 - the star import is what is tested
    assert {k for k in ns if k != "__builtins__"} == PUBLIC
    for name in PUBLIC - {"__version__"}:
        assert getattr(ps, name).__doc__, f"{name} has no docstring"
    assert {"analyze", "Analysis"} <= set(dir(ps))
    with pytest.raises(AttributeError):
        ps.no_such_name  # noqa: B018


def test_help_of_analyze_explains_inputs_and_shows_examples() -> None:
    text = pydoc.render_doc(ps.analyze, renderer=pydoc.plaintext)
    for words in ("pathlib.Path", "binary file", "vantage", "progress", "Examples", "a.findings", "plot_ladder"):
        assert words in text, words
    assert "DataFrame" in pydoc.render_doc(ps.Analysis, renderer=pydoc.plaintext)


def test_importing_the_package_does_not_import_pandas() -> None:
    """The command line imports pcapsleuth; pandas loads only with the API."""
    code = "import sys, pcapsleuth; print('pandas' in sys.modules); pcapsleuth.analyze; print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]


# -- dtypes ---------------------------------------------------------------------------------------------
def test_dtypes_of_every_frame(cw: ps.Analysis) -> None:
    assert_dtypes(cw.connections, CONNECTIONS)
    assert_dtypes(cw.findings, FINDINGS)
    assert_dtypes(cw.events, EVENTS)
    assert_dtypes(cw.packets, PACKETS)
    assert_dtypes(cw.connection("C000001").states, STATES)
    assert_dtypes(cw.connection("C000001").packets, PACKETS)
    assert_dtypes(cw.finding(0).packets, PACKETS)
    assert len(cw.connections) == 3 and len(cw.findings) == 2 and len(cw.events) > 0 and len(cw.packets) == 17


def test_dtypes_hold_when_frames_are_empty() -> None:
    a = ps.analyze(empty_pcap(), progress=False)
    frames = {"connections": (a.connections, CONNECTIONS), "findings": (a.findings, FINDINGS),
              "events": (a.events, EVENTS), "packets": (a.packets, PACKETS)}
    for name, (df, expected) in frames.items():
        assert df.empty, name
        assert_dtypes(df, expected)
    # the vocabularies are there before any value is
    assert list(a.connections.conn_state.cat.categories) == ZEEK_STATES
    assert list(a.findings.severity.cat.categories) == list(SEVERITIES) and a.findings.severity.cat.ordered
    clean = ps.analyze(INC / "clean.pcap", progress=False)
    assert clean.findings.empty and clean.events.empty
    assert_dtypes(clean.findings, FINDINGS)
    assert_dtypes(clean.events, EVENTS)


def test_several_captures_add_a_categorical_vantage_column(lb3: ps.Analysis) -> None:
    names = ["lb-client", "lb-balancer", "lb-backend"]
    assert lb3.vantages == names
    for df, expected in ((lb3.connections, CONNECTIONS), (lb3.findings, FINDINGS), (lb3.events, EVENTS),
                         (lb3.packets, PACKETS)):
        assert_dtypes(df, expected, vantage=True)
        assert list(df.vantage.cat.categories) == names
    assert lb3.packets.groupby("vantage", observed=True).size().to_dict() == {
        n: r.capture.frames for n, r in lb3.results.items()}
    empty = ps.analyze([empty_pcap(), empty_pcap()], progress=False)
    assert empty.vantages == ["capture1", "capture2"]
    assert_dtypes(empty.connections, CONNECTIONS, vantage=True)
    assert_dtypes(empty.packets, PACKETS, vantage=True)


def test_categoricals_keep_values_beyond_the_known_ones() -> None:
    from pcapsleuth.api import Categories, _column

    col = _column(["SF", None, "NEW"], Categories(("S0", "SF")))
    assert list(col.categories) == ["S0", "SF", "NEW"]  # a value not foreseen is kept, not turned into NaN
    assert col[0] == "SF" and pd.isna(col[1]) and col[2] == "NEW"


# -- the frames say what the JSON says ------------------------------------------------------------------
def _same(json_value: Any, cell: Any, key: str) -> bool:
    if json_value is None:
        return cell is None or (not isinstance(cell, (list, dict, tuple)) and bool(pd.isna(cell)))
    if key.endswith("_ts"):
        return bool(pd.Timestamp(json_value) == cell)
    if isinstance(json_value, float):
        return bool(abs(json_value - cell) < 1e-12)
    return bool(json_value == cell)


@pytest.mark.parametrize("capture", [CW, MINEFIELD, LOSSY], ids=lambda p: p.name)
def test_connections_and_findings_frames_hold_the_json(capture: Path) -> None:
    a = ps.analyze(capture, progress=False)
    doc = a.to_json_dict()
    conns = a.connections
    assert list(conns.uid) == [c["uid"] for c in doc["connections"]]
    for i, c in enumerate(doc["connections"]):
        row = conns.iloc[i]
        for key, value in c.items():
            if key in ("orig_rtt", "resp_rtt"):
                for sub in ("samples", "min", "avg", "max", "delayed_ack_samples", "delayed_ack_max", "karn_skipped"):
                    # the last three are in the JSON only when not 0
                    want = None if value is None else value.get(sub)
                    assert _same(want, row[f"{key}.{sub}"], sub), (key, sub)
            else:
                assert _same(value, row[key], key), (c["uid"], key, value, row[key])
    for i, f in enumerate(doc["findings"]):
        row = a.findings.iloc[i]
        for key, value in f.items():
            assert _same(value, row[key], key), (f["id"], key)


@pytest.mark.parametrize("capture", [MINEFIELD, LOSSY, SAMPLES / "anomalies" / "stalled-reader.pcap"],
                         ids=lambda p: p.name)
def test_events_are_counted_as_the_json_analysis_counts(capture: Path) -> None:
    a = ps.analyze(capture, progress=False)
    counted: dict[tuple[str, str, str], int] = {}
    for c in a.to_json_dict()["connections"]:
        for flag, sides in c["analysis"].items():
            for side, n in sides.items():
                if n:
                    counted[(c["uid"], flag, side)] = n
    got = a.events.groupby(["uid", "analysis", "side"], observed=True).size()
    assert {k: int(v) for k, v in got.items()} == counted
    assert all(c.events_dropped == 0 for c in a.result.connections)  # so the counts must agree exactly


def test_packets_are_every_frame_linked_to_its_connection(cw: ps.Analysis) -> None:
    pk = cw.packets
    assert list(pk.frame) == list(range(1, cw.capture.frames + 1))
    assert pk.ts.is_monotonic_increasing and str(pk.ts.iloc[0]) == "2026-11-20 22:32:05.525371+00:00"
    for c in cw.result.connections:
        mine = pk[pk.uid == c.uid]
        assert list(mine.frame) == [p.no for p in connection_packets(CW, c)]
        assert len(mine) == c.orig.pkts + c.resp.pkts
    assert list(pk.tcp_flags.iloc[:3]) == ["S", "SA", "A"]
    assert set(pk.cksum) == {"offloaded", "good"}  # loopback: partial checksums, the client's RST complete


# -- navigation -------------------------------------------------------------------------------------------
def test_connection_by_uid_row_or_tuple(cw: ps.Analysis) -> None:
    c = cw.connection("C000001")
    assert c.uid == "C000001" and c.vantage == "closewait-reuse"
    assert cw.connection(cw.connections.iloc[0]).uid == "C000001"
    assert cw.connection(next(cw.connections.itertuples())).uid == "C000001"
    assert cw.connection(cw.packets.iloc[8]).uid == "C000002"  # a packet row names its connection
    assert c.row["history"] == "ShADaF"
    assert list(c.states.state) == [t["state"] for t in c.info["transitions"]]
    server = c.states[c.states.side == "resp"]
    assert server.state.iloc[-1] == "CLOSE-WAIT" and server.frame.iloc[-1] == 6  # the client's FIN
    assert list(c.findings.id) == ["reuse.peer_in_close_wait", "close.close_wait_leak"]
    assert c.successor is not None and c.successor.uid == "C000002" and c.predecessor is None
    assert list(cw.connection("C000003").events.analysis) == list(cw.events[cw.events.uid == "C000003"].analysis)
    with pytest.raises(KeyError, match="C999999"):
        cw.connection("C999999")
    with pytest.raises(TypeError):
        cw.connection(3)


def test_finding_by_index_row_or_object(cw: ps.Analysis) -> None:
    f = cw.finding(0)
    assert f.id == "reuse.peer_in_close_wait" and f.severity == "error"
    assert cw.finding(cw.findings.iloc[1]).id == "close.close_wait_leak"
    assert cw.finding(-1).index == 1
    assert cw.finding(cw.result.findings[1]).index == 1
    assert cw.finding(next(cw.findings.itertuples())).index == 0
    assert list(f.packets.frame) == f.frames == [6, 7, 8, 9, 10, 11, 12]
    assert f.first_ts == cw.findings.first_ts.iloc[0]
    assert f.connection().uid == f.connections[0]
    assert f.to_dict() == cw.to_json_dict()["findings"][0]
    # the challenge ACK (frame 9) carries the old connection's ack: the old client FIN + 1 (frame 6)
    pk = f.packets.set_index("frame")
    assert pk.loc[9, "ack"] == pk.loc[6, "seq"] + 1 == f.evidence["challenge_ack"]["ack"]
    with pytest.raises(IndexError):
        cw.finding(2)
    with pytest.raises(TypeError):
        cw.finding("0")


def test_load_balancer_evidence_shows_two_macs_for_one_address() -> None:
    a = ps.analyze(LB, progress=False)
    pk = a.finding(0).packets
    replies = pk[pk.src == "10.202.0.100"]
    macs = replies.groupby("src_mac")["tcp_flags"].agg(lambda s: sorted(set(s))).to_dict()
    assert macs == {"02:00:0a:ca:00:02": ["AR"], "02:00:0a:ca:00:03": ["SA"]}


def test_several_captures_navigation(lb3: ps.Analysis) -> None:
    with pytest.raises(ValueError, match="several captures"):
        lb3.connection("C000001")
    backend = lb3.connection("C000001", "lb-backend")
    assert backend.vantage == "lb-backend" and backend.info["conn_state"] == "RSTO"
    row = lb3.connections[lb3.connections.vantage == "lb-balancer"].iloc[1]
    assert lb3.connection(row).vantage == "lb-balancer"
    assert [lb3.finding(i).vantage for i in range(len(lb3.findings))] == [
        None if pd.isna(v) else v for v in lb3.findings.vantage]
    with pytest.raises(ValueError, match="give vantage"):
        lb3.plot_timeline()
    with pytest.raises(ValueError, match="3 captures: give vantage"):
        _ = lb3.result
    assert set(lb3.results) == {"lb-client", "lb-balancer", "lb-backend"}


def test_correlation_from_the_vantage_module_is_added(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    class Correlation:
        def __init__(self, points: list[tuple[str, Any]]) -> None:
            seen.append([name for name, _ in points])
            first = points[0][1].findings[0]
            self.findings = [Finding(id=first.id, summary="seen from two places", explanation="x", frames=[3],
                                     connections=[], first_ts=None, last_ts=None, evidence={"from": "test"})]

        def to_json_dict(self) -> dict[str, Any]:
            return {"findings": [f.to_dict() for f in self.findings]}

    fake = types.ModuleType("pcapsleuth.vantage")
    fake.correlate = Correlation  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pcapsleuth.vantage", fake)
    a = ps.analyze({"client": LB_ALL[0], "backend": LB_ALL[2]}, progress=False)
    assert seen == [["client", "backend"]] and a.vantages == ["client", "backend"]
    last = a.findings.iloc[-1]
    assert last.summary == "seen from two places" and pd.isna(last.vantage)
    assert a.finding(-1).vantage is None
    with pytest.raises(ValueError, match="correlates several captures"):
        _ = a.finding(-1).packets
    assert a.to_json_dict()["findings"][0]["summary"] == "seen from two places"
    assert "correlated across the captures" in a._repr_html_()


# -- drawings: the report's ------------------------------------------------------------------------------
def _svgs(html: str) -> list[str]:
    return [re.sub(r"psfig\d+-", "P-", s) for s in re.findall(r"<svg .*?</svg>", html, flags=re.S)]


def test_drawings_are_the_reports_own() -> None:
    a = ps.analyze(CW, progress=False)
    html = a.to_html()
    svgs = _svgs(html)
    ladder = a.plot_ladder(a.finding(0))
    assert isinstance(ladder, Figure)
    assert figure_to_svg(ladder, "P-") in svgs
    assert figure_to_svg(a.plot_timeline(), "tl-") in svgs
    lossy = ps.analyze(LOSSY, progress=False)
    uid = lossy.findings.connections.iloc[0][0]
    assert figure_to_svg(lossy.plot_sequence(uid), "P-") in _svgs(lossy.to_html())


def test_connection_drawings(cw: ps.Analysis) -> None:
    fig = cw.plot_ladder("C000001")
    texts = [t.get_text() for ax in fig.axes for t in ax.texts] + [t.get_text() for t in fig.texts]
    assert any("CLOSE-WAIT" in t for t in texts) and "Connection C000001" in texts
    assert isinstance(cw.plot_ladder(cw.connections.iloc[1]), Figure)
    assert isinstance(cw.plot_ladder(cw.findings.iloc[0]), Figure)
    assert isinstance(cw.plot_sequence("C000003"), Figure)
    assert isinstance(cw.connection("C000003").plot_sequence(), Figure)


# -- display ----------------------------------------------------------------------------------------------
def test_reprs(cw: ps.Analysis, lb3: ps.Analysis) -> None:
    assert repr(cw) == "<Analysis closewait-reuse.pcap: 17 frames, 3 connections, 2 findings>"
    assert repr(ps.analyze(LB, progress=False)) == "<Analysis lb-client.pcap: 16 frames, 3 connections, 1 finding>"
    across = len(lb3.correlation.findings) if lb3.correlation is not None else 0
    assert repr(lb3) == ("<Analysis 3 captures (lb-client, lb-balancer, lb-backend): 46 frames, 12 connections, "
                         f"{3 + across} findings>")
    assert repr(cw.connection("C000002")) == ("<Connection C000002 127.0.0.1:40001 -> 127.0.0.1:9000 tcp RSTOS0 SaR, "
                                              "frames 8-10>")
    assert repr(cw.finding(1)).startswith("<Finding 1 warning close.close_wait_leak: 1 socket left in CLOSE_WAIT")
    html = cw._repr_html_()
    assert "reuse.peer_in_close_wait" in html and "close.close_wait_leak" in html and "S2 2" in html


def test_everything_from_the_capture_is_escaped(tmp_path: Path) -> None:
    evil = tmp_path / "<img src=x onerror=alert(1)>&.pcap"
    shutil.copy(CW, evil)
    a = ps.analyze(evil, progress=False)
    a.result.findings[0].summary = "<script>alert(1)</script>"
    a.result.findings[0].evidence["note"] = "<b>bold</b>"
    views = [a._repr_html_(), a.finding(0)._repr_html_(), a.connection("C000001")._repr_html_()]
    for html in views:
        assert "<img" not in html and "<script" not in html and "<b>bold" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;&amp;.pcap" in views[0]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in views[0] and "&lt;script&gt;" in views[1]
    assert "&lt;b&gt;bold&lt;/b&gt;" in views[1]


# -- outputs: the CLI's, from one place ---------------------------------------------------------------------
def cli(*argv: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    assert main(list(argv), stdout=out, stderr=err) == 0, err.getvalue()
    return out.getvalue()


def test_outputs_are_the_clis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = os.path.relpath(CW, tmp_path)
    a = ps.analyze(path, progress=False)
    assert a.to_json() == cli("analyze", path, "--json", "-")
    assert a.to_markdown() == cli("analyze", path, "--markdown", "-")
    assert a.summary() == cli("analyze", path, "--no-html")
    cli("analyze", path, "--html", "cli.html", "--quiet")
    assert a.to_html("api.html") is None

    def stable(text: str) -> str:
        return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", "TIME", text)

    assert stable((tmp_path / "api.html").read_text()) == stable((tmp_path / "cli.html").read_text())
    assert stable(a.to_html()) == stable((tmp_path / "cli.html").read_text())
    a.to_json("doc.json")
    assert json.loads((tmp_path / "doc.json").read_text()) == a.to_json_dict()
    a.to_markdown("t.md")
    assert (tmp_path / "t.md").read_text() == a.to_markdown()


def test_several_captures_give_the_clis_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Several captures analyzed together: the document, report, summary and Markdown of
    ``pcapsleuth analyze a b c``."""
    monkeypatch.chdir(tmp_path)
    paths = [os.path.relpath(p, tmp_path) for p in LB_ALL]
    a = ps.analyze(paths, progress=False)
    assert a.to_json() == cli("analyze", *paths, "--json", "-")
    assert a.to_markdown() == cli("analyze", *paths, "--markdown", "-")
    assert a.summary() == cli("analyze", *paths, "--no-html")
    (tmp_path / "cli").mkdir()
    (tmp_path / "api").mkdir()
    cli("analyze", *paths, "--html", "cli", "--quiet")
    a.to_html("api")
    made = sorted(p.name for p in (tmp_path / "api").iterdir())
    assert made == sorted(p.name for p in (tmp_path / "cli").iterdir()) and len(made) == 1

    def stable(text: str) -> str:
        return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", "TIME", text)

    assert stable((tmp_path / "api" / made[0]).read_text()) == stable((tmp_path / "cli" / made[0]).read_text())
    assert "lb-backend" in a.to_html(vantage="lb-backend")


def test_several_captures_without_the_vantage_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pcapsleuth.vantage", types.ModuleType("pcapsleuth.vantage"))
    a = ps.analyze(LB_ALL, progress=False)
    assert a.correlation is None and len(a.findings) == sum(len(r.findings) for r in a.results.values())
    a.to_html(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "lb-backend.pcapsleuth.html", "lb-balancer.pcapsleuth.html", "lb-client.pcapsleuth.html"]
    with pytest.raises(ValueError, match="directory"):
        a.to_html()
    doc = json.loads(a.to_json())
    assert [v["name"] for v in doc["vantage_points"]] == a.vantages
    assert doc["vantage_points"][0]["findings"] == a.results["lb-client"].to_json_dict()["findings"]
    assert a.summary().startswith("[lb-client] ")


# -- inputs -------------------------------------------------------------------------------------------------
class _Pipe(io.RawIOBase):
    """A readable stream that cannot seek (like a pipe)."""

    def __init__(self, data: bytes, name: str | None = None) -> None:
        self._buf = io.BytesIO(data)
        if name is not None:
            self.name = name

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        chunk = self._buf.read(len(b))
        b[: len(chunk)] = chunk
        return len(chunk)


def test_every_kind_of_input_gives_the_same_analysis(tmp_path: Path) -> None:
    data = CW.read_bytes()
    ref = ps.analyze(str(CW), progress=False)
    ref_doc = ref.to_json_dict()

    def same(a: ps.Analysis) -> None:
        doc = a.to_json_dict()
        assert doc["connections"] == ref_doc["connections"] and doc["findings"] == ref_doc["findings"]
        assert a.packets.equals(ref.packets)
        assert list(a.finding(0).packets.frame) == ref.finding(0).frames

    same(ps.analyze(CW, progress=False))  # pathlib.Path
    b = ps.analyze(data, progress=False)
    same(b)
    assert b.capture.path == "<bytes>" and repr(b).startswith("<Analysis <bytes>: 17 frames")
    same(ps.analyze(bytearray(data), progress=False))
    same(ps.analyze(io.BytesIO(data), progress=False))
    with open(CW, "rb") as fh:
        f = ps.analyze(fh, progress=False)
    assert f.capture.path == str(CW)
    same(f)  # read again after the file object was closed: through its name
    p = ps.analyze(_Pipe(data, "piped.pcap"), progress=False)
    assert p.capture.path == "piped.pcap"
    same(p)
    gz = tmp_path / "cw.pcap.gz"
    import gzip

    gz.write_bytes(gzip.compress(data))
    same(ps.analyze(gz, progress=False))


def test_a_missing_capture_fails_first_naming_it(tmp_path: Path) -> None:
    calls: list[Any] = []
    missing = tmp_path / "nope.pcap"
    with pytest.raises(FileNotFoundError, match="nope.pcap"):
        ps.analyze([CW, missing], progress=lambda *a: calls.append(a))
    assert calls == []  # nothing was analyzed before the check
    with pytest.raises(ps.NotACaptureError, match="not a pcap"):
        ps.analyze(b"hello, this is not a capture", progress=False)
    with pytest.raises(TypeError):
        ps.analyze(12345, progress=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="engine"):
        ps.analyze(CW, engine="wireshark", progress=False)


def test_two_captures_with_one_stem_get_two_names(tmp_path: Path) -> None:
    other = tmp_path / "closewait-reuse.pcap"
    shutil.copy(CW, other)
    a = ps.analyze([CW, other], progress=False)
    assert a.vantages == ["closewait-reuse", "closewait-reuse-2"]


# -- event loops --------------------------------------------------------------------------------------------
def _explore(engine: str) -> tuple[str, list[int], list[int], int]:
    a = ps.analyze(LB, engine=engine, progress=False)
    f = a.finding(0)
    return a.findings.id.iloc[0], list(f.packets.frame), list(a.connection("C000001").packets.frame), len(a.packets)


@pytest.mark.parametrize("engine", ["fast", "tshark"])
def test_works_inside_a_running_event_loop(engine: str, request: pytest.FixtureRequest) -> None:
    if engine == "tshark":
        request.getfixturevalue("tshark")

    async def in_loop() -> tuple[tuple[str, list[int], list[int], int], bool]:
        running = asyncio.get_running_loop().is_running()
        return _explore(engine), running  # synchronous, as a notebook cell calls it

    got, running = asyncio.run(in_loop())
    assert running
    assert got == ("handshake.conflicting_replies", [3, 4, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], [3, 4, 7, 8], 16)


# -- progress -----------------------------------------------------------------------------------------------
def test_progress_hook_reports_bytes_then_the_end(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_mod, "REPORT_EVERY", 256)
    calls: list[tuple[int, int | None, str]] = []
    result = analyze_capture(MINEFIELD, progress=lambda d, t, u: calls.append((d, t, u)))
    size = MINEFIELD.stat().st_size
    assert len(calls) == 3058 // 256 + 1
    assert all(u == "bytes" and t == size for _, t, u in calls)
    done = [d for d, _, _ in calls]
    assert done == sorted(done) and done[-1] == size and done[0] > 0
    plain = analyze_capture(MINEFIELD)
    assert result.to_json_dict() == plain.to_json_dict()


def test_progress_counts_frames_when_bytes_are_unknown(monkeypatch: pytest.MonkeyPatch, tshark: str) -> None:
    monkeypatch.setattr(progress_mod, "REPORT_EVERY", 4)
    calls: list[tuple[int, int | None, str]] = []
    analyze_capture(_Pipe(CW.read_bytes()), progress=lambda d, t, u: calls.append((d, t, u)))
    assert calls[-1] == (17, 17, "frames") and calls[0] == (4, None, "frames")
    calls.clear()
    analyze_capture(CW, engine="tshark", progress=lambda d, t, u: calls.append((d, t, u)))
    assert calls[0] == (4, 17, "frames") and calls[-1] == (17, 17, "frames")


def test_progress_display_modes(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert progress_mod.auto_mode(None, Tty()) == "terminal"
    assert progress_mod.auto_mode(None, io.StringIO()) is None  # a log, a pipe, CI
    assert progress_mod.auto_mode(True, io.StringIO()) == "terminal"
    assert progress_mod.auto_mode(False, Tty()) is None
    shell = types.SimpleNamespace(kernel=object())
    fake = types.ModuleType("IPython")
    fake.get_ipython = lambda: shell  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", fake)
    assert progress_mod.auto_mode(None, io.StringIO()) == "notebook"
    assert progress_mod.auto_mode(False, io.StringIO()) is None


def test_terminal_progress_line() -> None:
    err = io.StringIO()
    bar = progress_mod.Progress("big.pcap", mode="terminal", stream=err, delay=0, interval=0)
    bar(500_000, 1_000_000, "bytes")
    bar(1_000_000, 1_000_000, "bytes")
    bar.close()
    text = err.getvalue()
    assert text.startswith("\r[############............] pcapsleuth: analyzing big.pcap:  50% 500.0 kB of 1.0 MB")
    assert "100%" in text and text.endswith("\n") and "analyzed big.pcap: 1.0 MB of 1.0 MB" in text.splitlines()[-1]
    slow_redraw = io.StringIO()
    bar = progress_mod.Progress("big.pcap", mode="terminal", stream=slow_redraw, delay=0, interval=3600)
    bar(1, 4, "bytes")
    bar(2, 4, "bytes")  # within the interval: not drawn
    bar(4, 4, "bytes")  # the end of the input is drawn at once
    assert slow_redraw.getvalue().count("\r") == 2 and "100% 4 B of 4 B" in slow_redraw.getvalue()
    quiet = io.StringIO()
    slow = progress_mod.Progress("x", mode="terminal", stream=quiet, delay=3600)
    slow(1, 2, "bytes")
    slow.close()
    assert quiet.getvalue() == ""  # a short analysis draws nothing


def test_progress_line_says_how_long_is_left() -> None:
    err = io.StringIO()
    bar = progress_mod.Progress("big.pcap", mode="terminal", stream=err, delay=0, interval=0)
    bar._start -= 10  # ten seconds in
    bar(250_000, 1_000_000, "bytes")
    assert bar.text().endswith(", 10.0 s, about 30 s left")
    bar(750_000, 1_000_000, "bytes")
    assert bar.text().endswith(", about 3 s left")
    bar._start -= 290  # five minutes in, 75%: 100 s to go
    assert bar.text().endswith(", about 1 min 40 s left")
    bar(10_000, 1_000_000, "bytes")  # 1%: 300 s for 1% is about 8 h 15 min
    assert bar.text().endswith(", about 8 h 15 min left")
    bar(1_000_000, 1_000_000, "bytes")
    assert "left" not in bar.text() and "left" not in bar.text(finished=True)
    assert bar.text().endswith("100% 1.0 MB of 1.0 MB, 300.0 s, finishing")  # reading done, the rest follows
    assert "finishing" not in bar.text(finished=True)
    fresh = progress_mod.Progress("x", mode="terminal", stream=io.StringIO(), delay=0)
    fresh(500, 1000, "bytes")
    assert "left" not in fresh.text()  # under two seconds the estimate is noise
    unknown = progress_mod.Progress("x", mode="terminal", stream=io.StringIO(), delay=0)
    unknown._start -= 10
    unknown(500, None, "frames")
    assert "left" not in unknown.text()  # no total, no estimate


def test_notebook_progress_updates_one_escaped_display() -> None:
    shown: list[dict[str, str]] = []

    class Handle:
        def update(self, bundle: dict[str, str], raw: bool) -> None:
            shown.append(bundle)

    def display(bundle: dict[str, str], raw: bool, display_id: bool) -> Handle:
        assert raw and display_id
        shown.append(bundle)
        return Handle()

    bar = progress_mod.Progress("<x>.pcap", mode="notebook", delay=0, interval=0, display=display)
    bar(10, None, "frames")
    bar(20, 40, "frames")
    bar.close()
    assert len(shown) == 3
    assert "&lt;x&gt;.pcap" in shown[0]["text/html"] and "<x>" not in shown[0]["text/html"]
    assert '<progress value="0.5000"' in shown[1]["text/html"]
    assert "analyzed" in shown[2]["text/plain"] and "<progress" not in shown[2]["text/html"]


def test_analyze_passes_progress_on(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int | None, str]] = []
    ps.analyze(CW, progress=lambda d, t, u: calls.append((d, t, u)))
    assert calls == [(CW.stat().st_size, CW.stat().st_size, "bytes")]
    drawn = io.StringIO()
    monkeypatch.setattr(sys, "stderr", drawn)
    ps.analyze(CW, progress=False)
    ps.analyze(CW)  # auto: stderr is no terminal here
    assert drawn.getvalue() == ""


def test_max_connections_reaches_the_tracker() -> None:
    a = ps.analyze(SAMPLES / "anomalies" / "portscan.pcap", progress=False, max_connections=40)
    b = ps.analyze(SAMPLES / "anomalies" / "portscan.pcap", progress=False)
    assert a._points[0].result.tracking["evicted"] > 0 == b._points[0].result.tracking["evicted"]
    assert len(a.connections) >= len(b.connections)
