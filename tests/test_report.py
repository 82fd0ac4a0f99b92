"""The HTML report, the Markdown summary, the drawings and the second pass over the file, checked
by structure (finding ids, frame links, drawings, limits), never byte for byte."""

from __future__ import annotations

import base64
import hashlib
import re
import shlex
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import dpkt
import pytest

from pcapsleuth import analyze_capture, read_packets
from pcapsleuth.markdown import code_span, md_escape, render_markdown
from pcapsleuth.plots import figure_to_svg, ladder_figure, sequence_figure, timeline_figure
from pcapsleuth.refetch import connection_packets, fetch_frames, packets_for
from pcapsleuth.report import (
    Limits,
    default_report_path,
    display_filter,
    frame_ranges,
    render_html,
    report_stem,
)

from .conftest import SAMPLES

sys.path.insert(0, str(Path(__file__).parent))
import _build as b  # noqa: E402

LB = SAMPLES / "incidents" / "lb-client.pcap"
CW = SAMPLES / "incidents" / "closewait-reuse.pcap"
MINEFIELD = SAMPLES / "incidents" / "closewait-minefield.pcap"
CLEAN = SAMPLES / "incidents" / "clean.pcap"
LOSSY = SAMPLES / "anomalies" / "lossy-client.pcap"

HOSTILE_STRINGS = (
    "<script>window.__pwned=1</script>",
    "\"><img src=x onerror=\"window.__pwned=2\">",
    "</textarea><svg onload=window.__pwned=3>",
)
HOSTILE_NAME = "<img src=x onerror=window.__pwned=4>`$x$`.pcapng"


def write_hostile_capture(directory: Path) -> Path:
    """A pcapng whose section comment, interface name/description, packet comments and file name
    all carry markup; its SYN is refused, so a finding with evidence is rendered too."""
    o = "<"
    syn = b.eth(b.ip4(b.tcp(flags=dpkt.tcp.TH_SYN)))
    rst = b.eth(b.ip4(b.tcp(sport=80, dport=40000, seq=0, ack=1001, flags=dpkt.tcp.TH_RST | dpkt.tcp.TH_ACK),
                      src=b.DST4, dst=b.SRC4), src=b.MAC_B, dst=b.MAC_A)
    data = (b.shb(o, [(1, HOSTILE_STRINGS[0].encode())])
            + b.idb(o, options=[(2, HOSTILE_STRINGS[1].encode()), (3, HOSTILE_STRINGS[2].encode())])
            + b.epb(o, 0, 1_700_000_000_000_000, syn, options=[(1, HOSTILE_STRINGS[0].encode())])
            + b.epb(o, 0, 1_700_000_000_000_100, rst, options=[(1, HOSTILE_STRINGS[2].encode())]))
    path = directory / HOSTILE_NAME
    path.write_bytes(data)
    return path


class _Page(HTMLParser):
    """Collects what the structure tests look at."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.ids: set[str] = set()
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())]


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


@pytest.fixture(scope="module")
def lb_html() -> str:
    return render_html(analyze_capture(LB), LB)


# -- structure -------------------------------------------------------------------------------------
def test_report_names_findings_links_frames_and_draws(lb_html: str) -> None:
    result = analyze_capture(LB)
    page = parse(lb_html)
    finding = result.findings[0]
    articles = page.find("article")
    assert [a["data-finding-id"] for a in articles] == [f.id for f in result.findings]
    # Every evidence frame has a row; the summary's frame numbers link to those rows.
    rows = {a["data-frame"]: a["id"] for a in page.find("tr") if "data-frame" in a}
    assert sorted(int(n) for n in rows) == finding.frames
    links = [a["href"] for t, a in page.tags if t == "a" and "frame-link" in a.get("class", "")]
    assert links and all(href[1:] in page.ids for href in links)
    assert {"#f1-4", "#f1-7"} <= set(links)  # "answered by a RST (frame 4) and by a SYN-ACK (frame 7)"
    # Drawings: the timeline, one ladder per finding, and the verdict's proof, all inline SVG.
    plots = [a["data-plot"] for t, a in page.tags if t == "figure" and "data-plot" in a]
    assert plots.count("timeline") == 1 and plots.count("ladder") == len(result.findings)
    assert "proof" in plots
    assert lb_html.count("<svg ") == len(plots)
    # The connections table has every connection, linked from the finding.
    assert {a["data-uid"] for a in page.find("tr") if "data-uid" in a} == {c.uid for c in result.connections}
    assert all(f"conn-{u}" in page.ids for u in finding.connections)


def test_report_shows_the_two_macs_of_the_load_balancer_story(lb_html: str) -> None:
    """The proof of the LB incident: one address answered from two MACs, highlighted in the table
    and drawn as two lanes in the ladder."""
    cells = re.findall(r'<td class="mono differs">([0-9a-f:]+)</td>', lb_html)
    assert {"02:00:0a:ca:00:02", "02:00:0a:ca:00:03"} <= set(cells)
    ladder = lb_html[lb_html.index('data-plot="ladder"'):]
    ladder = ladder[: ladder.index("</figure>")]
    assert "MAC 02:00:0a:ca:00:02" in ladder and "MAC 02:00:0a:ca:00:03" in ladder


def test_report_loads_nothing_and_allows_only_its_own_script(lb_html: str) -> None:
    page = parse(lb_html)
    csp = page.find("meta", http_equiv="Content-Security-Policy")
    assert len(csp) == 1
    policy = csp[0]["content"]
    assert "default-src 'none'" in policy and "img-src data:" in policy and "unsafe-eval" not in policy
    # One inline script, allowed by its hash and by nothing else.
    assert len(page.scripts) == 1
    digest = base64.b64encode(hashlib.sha256(page.scripts[0].encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";")[0]
    # Nothing that could fetch: no external src/href, no <link>, <iframe>, <object>, <embed>, <base>.
    for tag, attrs in page.tags:
        assert tag not in ("link", "iframe", "object", "embed", "base", "frame"), tag
        for key in ("src", "href", "xlink:href", "action", "poster", "srcset"):
            value = attrs.get(key)
            if value is not None:
                assert value.startswith(("#", "data:")), (tag, key, value)
    assert "@import" not in lb_html and "url(http" not in lb_html


def test_report_without_findings_says_so() -> None:
    html = render_html(analyze_capture(CLEAN), CLEAN)
    page = parse(html)
    assert page.find("article") == []
    assert page.find("section", id="verdict")[0]["data-verdict-severity"] == "ok"
    assert "No problems found" in html


def test_writes_the_file_it_returns(tmp_path: Path) -> None:
    dest = tmp_path / "r.html"
    html = render_html(analyze_capture(CW), CW, dest)
    assert dest.read_text(encoding="utf-8") == html
    assert not list(tmp_path.glob("*.tmp"))


def test_big_captures_are_cut_with_counts() -> None:
    """With small limits the minefield (486 connections, 2 findings with hundreds of frames)
    shows top-N and says how much it left out."""
    result = analyze_capture(MINEFIELD)
    limits = Limits(connection_rows=50, evidence_rows=10, filter_frames=30, timeline_rows=100)
    html = render_html(result, MINEFIELD, limits=limits)
    page = parse(html)
    rows = [a for a in page.find("tr") if "data-uid" in a]
    assert len(rows) == 50
    assert f"{len(result.connections) - 50:,} not shown" in html
    # Connections named by findings come first.
    named = {u for f in result.findings for u in f.connections}
    assert {a["data-uid"] for a in rows} <= named
    leak = next(f for f in result.findings if f.id == "close.close_wait_leak")
    art = html[html.index('data-finding-id="close.close_wait_leak"'):]
    art = art[: art.index("</article>")]
    shown = len(re.findall(r'<tr id="f\d+-\d+" data-frame=', art))
    assert shown <= 10 + limits.ladder_packets
    assert f"{len(leak.frames) - shown:,} more evidence frames not shown" in art
    assert f"the first {limits.filter_frames}" in art
    timeline = html[html.index('data-plot="timeline"'):]
    assert "aggregated: starts per time bin" in timeline[: timeline.index("</figure>")]


def test_report_size_is_bounded_by_limits() -> None:
    """What grows with the capture (connection rows, timeline rows) grows only up to the limits."""
    result = analyze_capture(MINEFIELD)
    small = render_html(result, MINEFIELD, limits=Limits(connection_rows=100, timeline_rows=100))
    big = render_html(result, MINEFIELD, limits=Limits(connection_rows=1000, timeline_rows=1000))
    assert len(small) < len(big) < 2_000_000
    assert len(small) < 0.7 * len(big)


def test_many_findings_of_one_id_are_listed_not_drawn() -> None:
    """Three findings of one id in full, the rest one line each in a table."""
    result = analyze_capture(LB)
    f = result.findings[0]
    import dataclasses

    clones = [dataclasses.replace(f, frames=list(f.frames), connections=list(f.connections)) for _ in range(7)]
    result.findings = clones
    page = parse(render_html(result, LB))
    assert len(page.find("article")) == 3
    listed = [a for a in page.find("tr") if a.get("data-finding-id") == f.id]
    assert len(listed) == 4


def test_template_dir_overrides_one_file(tmp_path: Path) -> None:
    (tmp_path / "style.css").write_text("/* site style */ body { color: black; }\n")
    (tmp_path / "report.js").write_text("document.documentElement.dataset.site = '1';\n")
    html = render_html(analyze_capture(CLEAN), CLEAN, template_dir=tmp_path)
    page = parse(html)
    assert "/* site style */" in html and "Findings" in html  # the rest still comes from the built-ins
    digest = base64.b64encode(hashlib.sha256(b"document.documentElement.dataset.site = '1';\n").digest()).decode()
    assert f"'sha256-{digest}'" in page.find("meta", http_equiv="Content-Security-Policy")[0]["content"]


# -- hostile strings -------------------------------------------------------------------------------
def test_hostile_strings_are_escaped(tmp_path: Path) -> None:
    path = write_hostile_capture(tmp_path)
    result = analyze_capture(path)
    assert result.capture.section_comments and result.capture.comments  # the strings did reach the model
    assert result.capture.interfaces[0].name == HOSTILE_STRINGS[1]
    html = render_html(result, path)
    page = parse(html)
    assert len(page.scripts) == 1
    assert page.find("img") == [] and page.find("textarea") == []
    assert not [a for _, a in page.tags if any(k.startswith("on") for k in a)]
    for s in (*HOSTILE_STRINGS, HOSTILE_NAME):
        assert s not in html
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=window.__pwned=4&gt;" in html
    # The tshark command quotes the file name for the shell.
    assert shlex.quote(str(path)).replace("<", "&lt;").replace(">", "&gt;").replace("'", "&#39;") in html


def test_svg_text_from_matplotlib_is_escaped() -> None:
    packets, info = read_packets(LB)
    fig = ladder_figure([p for p in packets if p.proto == 6][:4], title=HOSTILE_STRINGS[0] + " $x$ " + HOSTILE_NAME)
    svg = figure_to_svg(fig, "t-")
    assert "<script" not in svg and "<img" not in svg
    assert "&lt;script&gt;" in svg
    assert "$x$" in svg  # no mathtext: the dollars stay text
    assert not re.search(r"<\?xml|<!DOCTYPE|<style|<metadata", svg)
    # ids are prefixed and every reference resolves inside the drawing
    ids = set(re.findall(r' id="([^"]+)"', svg))
    refs = set(re.findall(r'(?:url\(#|href="#)([^")]+)', svg))
    assert refs <= ids and all(i.startswith("t-") for i in ids)


# -- markdown --------------------------------------------------------------------------------------
def test_markdown_summary() -> None:
    result = analyze_capture(LB)
    text = render_markdown(result, "lb-client.pcapsleuth.html")
    f = result.findings[0]
    assert f"`{f.id}`" in text and "ERROR" in text
    assert display_filter(f.frames) in text
    assert "`lb-client.pcapsleuth.html`" in text
    assert text.count("\n") < 40


def test_markdown_escapes_capture_strings(tmp_path: Path) -> None:
    path = write_hostile_capture(tmp_path)
    text = render_markdown(analyze_capture(path))
    assert code_span(HOSTILE_NAME) in text  # in a code span markup is text
    outside = re.sub(r"(`+).*?\1", "", text)
    assert "<" not in outside and ">" not in outside
    assert md_escape("a_b *c* [d](e) <f> |g|") == "a_b \\*c\\* \\[d\\](e) &lt;f&gt; \\|g\\|"
    assert code_span("x`y") == "``x`y``"
    assert code_span("a|b", table=True) == "`a\\|b`"


# -- filters and names -----------------------------------------------------------------------------
def test_frame_ranges_and_filters() -> None:
    assert frame_ranges([9, 1, 2, 3, 7, 10, 2]) == "1..3 7 9..10"
    assert display_filter([4]) == "frame.number in {4}"


def test_tshark_command_pulls_exactly_the_evidence_frames(tshark: str) -> None:
    """The command printed in the report, run as printed, selects the finding's frames."""
    result = analyze_capture(CW)
    html = render_html(result, CW)
    for f in result.findings:
        art = html[html.index(f'data-finding-id="{f.id}"'):]
        cmd = re.search(r'<dt>tshark</dt>\s*<dd><code class="copy">([^<]+)</code>', art)
        assert cmd
        import html as htmlmod

        argv = shlex.split(htmlmod.unescape(cmd.group(1)))
        assert argv[0] == "tshark"
        out = subprocess.run([tshark, *argv[1:], "-T", "fields", "-e", "frame.number", "-e", "tcp.seq_raw"],
                             capture_output=True, text=True, check=True, timeout=60).stdout
        lines = [line.split("\t") for line in out.splitlines()]
        assert [int(n) for n, _ in lines] == f.frames
        # and with raw sequence numbers, the ones the evidence table shows
        packets = fetch_frames(CW, f.frames)
        assert [int(s) for _, s in lines] == [packets[n].seq for n in f.frames]


def test_report_names() -> None:
    assert report_stem("a/b/capture.pcap") == "capture"
    assert report_stem("x.pcap.gz") == "x"
    assert report_stem("trace.PCAPNG") == "trace"
    assert report_stem("noext") == "noext"
    assert report_stem(".pcap") == ".pcap"
    assert default_report_path("/evidence/ro/c.pcapng") == Path("c.pcapsleuth.html")
    assert default_report_path("c.cap", "/tmp/x") == Path("/tmp/x/c.pcapsleuth.html")


# -- second pass over the file ---------------------------------------------------------------------
def test_fetch_frames_equals_a_full_read() -> None:
    packets, _ = read_packets(MINEFIELD)
    want = {1, 2, 903, 2101, 2102, len(packets)}
    got = fetch_frames(MINEFIELD, want | {len(packets) + 5})
    assert set(got) == want
    for n in want:
        assert got[n] == packets[n - 1]


def test_connection_packets_reads_what_memory_did_not_keep() -> None:
    result = analyze_capture(LOSSY)
    conn = max(result.connections, key=lambda c: c.orig.pkts + c.resp.pkts)
    total = conn.orig.pkts + conn.resp.pkts
    assert len(conn.evidence) < total  # the point: memory kept only some
    packets, _ = read_packets(LOSSY)
    ends = {(conn.orig.addr, conn.orig.port), (conn.resp.addr, conn.resp.port)}
    expected = [p for p in packets if p.proto == 6 and {(p.src, p.sport), (p.dst, p.dport)} == ends]
    got = connection_packets(LOSSY, conn)
    assert got == expected and len(got) == total
    assert connection_packets(LOSSY, conn, limit=10) == expected[:10]


def test_packets_for_prefers_memory_and_survives_a_missing_file(tmp_path: Path) -> None:
    result = analyze_capture(CW)
    f = result.findings[0]
    conns = [c for c in result.connections if c.uid in f.connections]
    have, missing = packets_for(tmp_path / "gone.pcap", f.frames, conns)
    assert set(have) == set(f.frames) and not missing  # all evidence was in memory
    have, missing = packets_for(tmp_path / "gone.pcap", [1, 2], [])
    assert have == {} and missing == {1, 2}


# -- drawings --------------------------------------------------------------------------------------
def _drawn(fig: object, gid: str) -> int:
    """Segments drawn by the sequence graph's line with that gid (NaN-separated pairs)."""
    lines = [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_gid() == gid]  # type: ignore[attr-defined]
    return sum(len(ln.get_xdata()) // 3 for ln in lines)


def test_sequence_graph_marks_retransmissions_when_there_are_some() -> None:
    """Every retransmission the tracker counted is drawn red; a clean connection has none."""
    result = analyze_capture(LOSSY)
    conn = max(result.connections, key=lambda c: c.orig.pkts + c.resp.pkts)
    packets = connection_packets(LOSSY, conn)
    fig = sequence_figure(packets, conn, t0=result.capture.first_ts)
    retrans = conn.orig.rxmit_pkts + conn.resp.rxmit_pkts
    assert retrans > 0
    assert _drawn(fig, "retransmissions") == retrans
    data = sum(1 for p in packets if p.payload_len and p.src == conn.orig.addr and p.sport == conn.orig.port)
    assert _drawn(fig, "segments") + _drawn(fig, "retransmissions") == data
    assert "<svg" in figure_to_svg(fig)
    clean = analyze_capture(CLEAN)
    c = clean.connections[0]
    assert _drawn(sequence_figure(list(c.evidence), c), "retransmissions") == 0


def test_timeline_switches_to_aggregate_above_max_rows() -> None:
    result = analyze_capture(MINEFIELD)
    rows = figure_to_svg(timeline_figure(result))
    agg = figure_to_svg(timeline_figure(result, max_rows=100))
    assert "aggregated" not in rows and "aggregated" in agg
    assert len(agg) < len(rows)


def test_plots_leave_pyplot_alone() -> None:
    import matplotlib

    before = matplotlib.get_backend()
    timeline_figure(analyze_capture(CW))
    assert matplotlib.get_backend() == before
    assert "matplotlib.pyplot" not in sys.modules or not sys.modules["matplotlib.pyplot"].get_fignums()


def test_terminal_summary_one_line_per_finding_and_counts_repeats() -> None:
    import dataclasses

    from pcapsleuth.summary import PER_ID, capture_summary

    result = analyze_capture(LB)
    f = result.findings[0]
    many = [dataclasses.replace(f, summary=f.summary + "\nsecond line") for _ in range(PER_ID + 3)]
    text = capture_summary(result.capture, result.connections, many)
    lines = [line for line in text.splitlines() if f.id in line]
    assert len(lines) == PER_ID + 1
    assert lines[-1].endswith("... and 3 more like this")
    assert "second line" in lines[0]  # the summary's newline became a space: still one line
