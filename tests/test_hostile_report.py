"""Issue 19: captures built to hurt the report's reader, and what the report must do with them.

- Bidi overrides, isolates, marks, line separators and C0/C1 controls in a file name, a pcapng
  comment or an interface name are shown as visible escapes (``\\u202e``) in the HTML: in the
  ``<title>``, the headings, the tables and the SVG drawings, so nothing is shown reversed.
- Long strings are shown as a bounded prefix and ``... (N more bytes, in the JSON)``; long lists of
  comments and interfaces end in ``... and N more (in the JSON)``. 12 comments of 60 KB and a
  10 MB pcapng of long comments and interface names give a report of bounded size.
- A capture read from stdin or from a Python file object renders its report: the evidence frames
  that would need a second reading are said to be not re-readable from a stream.
- Drawing the report raises no warning (matplotlib's missing-glyph warnings were the ones).

The captures are built here (pcapng from the specification, ``tests/_build.py``) in the test's
temporary directory; ``tests/test_browser.py`` loads the same reports in headless Chromium.
"""

from __future__ import annotations

import html.parser
import importlib.util
import io
import json
import re
import shutil
import sys
import warnings
from pathlib import Path
from types import ModuleType

import dpkt
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _build as b  # noqa: E402

import pcapsleuth  # noqa: E402
import pcapsleuth.stream as stream  # noqa: E402
from pcapsleuth.analysis import analyze_capture  # noqa: E402
from pcapsleuth.cli import main  # noqa: E402
from pcapsleuth.markdown import render_markdown  # noqa: E402
from pcapsleuth.report import Limits, findings_to_read, render_html, visible  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"

# Every character the HTML must neutralise, one of each kind.
BIDI = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "abc\u202exyz" shows as "abczyx"
INVISIBLE = ("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c\u2028\u2029"
             "\x00\x07\x08\x0b\x0c\x0d\x1b\x7f\x85\x9b")
# A file name that reads "...gpj.pcapng" reversed: the classic extension spoof.
BIDI_NAME = "invoice\u202egpj.pcapng\u2066x\u2069\u200f\u061c\x1b[2J.pcapng"
BIDI_IFNAME = "eth0\u202e1hte\u2067isolated\u2069\x9b31m"
BIDI_IFDESC = "uplink\u2028second line\u2029\u200e\x85"
# Markup and script in comments: shown as text, never an element.
INJECT = ("<img src=x onerror=\"window.__pwned=1\">", "<script>window.__pwned=2</script>",
          "<svg onload=\"window.__pwned=3\"></svg>", "</q></li></ul></dd></dl><iframe src=\"javascript:1\"></iframe>")
BIDI_COMMENTS = (f"note \u202e{INJECT[0]}", f"\u2067{INJECT[1]}\u2069 \x1b]0;title\x07", INJECT[2], INJECT[3],
                 f"every one: [{INVISIBLE}] end")


def _refused_frames() -> list[bytes]:
    """A refused SYN (a finding with evidence and a ladder) and one clean handshake."""
    syn, ack, rst = dpkt.tcp.TH_SYN, dpkt.tcp.TH_ACK, dpkt.tcp.TH_RST
    back = {"src": b.DST4, "dst": b.SRC4}
    macs = {"src": b.MAC_B, "dst": b.MAC_A}
    return [
        b.eth(b.ip4(b.tcp(40000, 81, seq=100))),
        b.eth(b.ip4(b.tcp(81, 40000, seq=0, ack=101, flags=rst | ack, win=0), **back), **macs),
        b.eth(b.ip4(b.tcp(40001, 80, seq=1000, flags=syn))),
        b.eth(b.ip4(b.tcp(80, 40001, seq=5000, ack=1001, flags=syn | ack), **back), **macs),
        b.eth(b.ip4(b.tcp(40001, 80, seq=1001, ack=5001, flags=ack))),
    ]


def _pcapng(section_comments: list[str], interfaces: list[tuple[str, str]], comments: list[str],
            frames: list[bytes] | None = None) -> bytes:
    """A pcapng: one section, the interfaces (name, description), the frames on interface 0, the
    comments spread over the frames (the rest on extra frames, repeats of the last one)."""
    o = "<"
    frames = list(frames if frames is not None else _refused_frames())
    out = [b.shb(o, [(1, c.encode("utf-8", "surrogateescape")) for c in section_comments])]
    for name, desc in interfaces:
        opts = [(2, name.encode("utf-8", "surrogateescape"))]
        if desc:
            opts.append((3, desc.encode("utf-8", "surrogateescape")))
        out.append(b.idb(o, options=opts))
    while len(frames) < len(comments):
        frames.append(frames[-1])
    for i, frame in enumerate(frames):
        opts = [(1, comments[i].encode("utf-8", "surrogateescape"))] if i < len(comments) else []
        out.append(b.epb(o, 0, 1_700_000_000_000_000 + i * 1000, frame, options=opts))
    return b"".join(out)


def bidi_capture(directory: Path) -> Path:
    """Bidi overrides and control characters in the file name, the section comment, the
    interface name and description and the packet comments, with markup in the comments."""
    path = directory / BIDI_NAME
    path.write_bytes(_pcapng([f"section \u202eevil{INJECT[1]}"], [(BIDI_IFNAME, BIDI_IFDESC)],
                             list(BIDI_COMMENTS)))
    return path


def _token(n: int, seed: int) -> str:
    """``n`` characters without a space or a break opportunity: the layout's worst case."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(alphabet[(i * 7 + seed) % len(alphabet)] for i in range(n))


def long_comments_capture(directory: Path) -> Path:
    """12 packet comments of 60 KB each (unbroken tokens): Chromium needed ~40 s for its report."""
    path = directory / "long-comments.pcapng"
    path.write_bytes(_pcapng([], [("eth0", "")], [_token(60_000, i) for i in range(12)]))
    return path


def ten_mb_capture(directory: Path) -> Path:
    """A 10 MB pcapng of long comments and interface names (200 interfaces with 12 KB names and
    12 KB descriptions, 2 section comments of 60 KB and 700 packet comments of 8 KB): its report
    did not finish loading in 400 s."""
    path = directory / "ten-mb.pcapng"
    ifaces = [(f"if{i}-" + _token(12_000, i), _token(12_000, i + 1)) for i in range(200)]
    comments = [_token(8_000, i) for i in range(700)]
    data = _pcapng([_token(60_000, 1), _token(60_000, 2)], ifaces, comments)
    assert len(data) >= 10_000_000, len(data)
    path.write_bytes(data)
    return path


HOSTILE_BUILDERS = {"bidi": bidi_capture, "long-comments": long_comments_capture, "ten-mb": ten_mb_capture}


class _Page(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []
        self.title = ""
        self._where: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._where.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._where and self._where[-1] == tag:
            self._where.pop()

    def handle_data(self, data: str) -> None:
        if self._where and self._where[-1] == "title":
            self.title += data
        self.text.append(data)


def _parse(page: str) -> _Page:
    p = _Page()
    p.feed(page)
    p.close()
    return p


#: Raw, any of the characters the report must never carry as they are.
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
                 "\ud800-\udfff]")


@pytest.fixture(autouse=True)
def _fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")


def test_the_capture_carries_the_strings(tmp_path: Path) -> None:
    """What the other tests rely on: the reader hands the strings over as they are."""
    info = analyze_capture(bidi_capture(tmp_path)).capture
    assert info.path.endswith(BIDI_NAME)
    assert info.interfaces[0].name == BIDI_IFNAME and info.interfaces[0].description == BIDI_IFDESC
    assert [c for no in sorted(info.comments) for c in info.comments[no]] == list(BIDI_COMMENTS)
    assert set(INVISIBLE) <= set("".join(BIDI_COMMENTS))


def test_visible_escapes_every_listed_character_and_nothing_else() -> None:
    for ch in INVISIBLE + "\ud800\u200b\u200d\ufeff\u00ad\U000e0041":  # + zero-width, BOM, soft hyphen, tag
        shown = visible(f"a{ch}b")
        assert RAW.search(shown) is None and shown != f"a{ch}b"
        code = ord(ch)
        assert shown == (f"a\\x{code:02x}b" if code < 0x100 else f"a\\u{code:04x}b" if code < 0x10000
                         else f"a\\U{code:08x}b")
    # A non-UTF-8 file name's byte (0xff, decoded as U+DCFF): shown as that byte, as on the terminal.
    assert visible("bad\udcff\udcfe.pcap") == "bad\\xff\\xfe.pcap"
    plain = "tab\tnew\nline, caf\u00e9, \u05e9\u05dc\u05d5\u05dd, \u4e2d\u6587, \U0001f600, <&>\"'"
    assert visible(plain) == plain  # whitespace, accents, Hebrew letters, CJK, emoji: shown as they are


def test_bidi_and_controls_are_visible_and_inert_in_the_html(tmp_path: Path) -> None:
    """Title, heading, facts, comments: every override as a visible escape, nothing reversed;
    every tag and handler in the comments shown as text."""
    capture = bidi_capture(tmp_path)
    result = analyze_capture(capture)
    page = render_html(result, capture)
    assert RAW.search(page) is None, repr(RAW.search(page))
    p = _parse(page)
    name = visible(BIDI_NAME)
    assert "\\u202e" in name and "\\x1b" in name
    assert p.title == f"Connection refused - {name} - pcapsleuth", p.title
    text = "".join(p.text)
    for s in (BIDI_NAME, BIDI_IFNAME, BIDI_IFDESC, *BIDI_COMMENTS):
        assert visible(s) in text, s
    assert visible(str(capture)) in page  # the path: in the facts and the heading's title attribute
    # The comments' markup is text: no element of theirs (the drawings are the only <svg>s).
    assert {"img", "iframe"}.isdisjoint(p.tags)
    assert p.tags.count("script") == 1
    assert p.tags.count("svg") == len(re.findall(r"<svg stroke-linejoin=", page))
    assert "<img" not in page and "<iframe" not in page and "<svg onload" not in page


def test_markdown_shows_the_escapes_too(tmp_path: Path) -> None:
    capture = bidi_capture(tmp_path)
    text = render_markdown(analyze_capture(capture), "r.html")
    assert RAW.search(text) is None, repr(RAW.search(text))
    assert "\\u202e" in text and "\\u2066" in text and "\\u200f" in text and "\\u061c" in text


def _vantage_pair(tmp_path: Path) -> list[Path]:
    """Two captures of one incident, named with a bidi override, controls and CJK (which the
    drawing's fonts lack): the names are the vantage points' lane labels in the SVG ladder."""
    a = tmp_path / "client\u202elanigiro\x1b[1m\u4e2d\u6587.pcap"
    c = tmp_path / "balancer\u2067\u2069\u200e.pcap"
    shutil.copyfile(SAMPLES / "incidents" / "lb-client.pcap", a)
    shutil.copyfile(SAMPLES / "incidents" / "lb-balancer.pcap", c)
    return [a, c]


def test_svg_text_of_drawings_shows_the_escapes(tmp_path: Path) -> None:
    """A vantage report draws the points' names (file stems) into its SVG ladders: escaped there
    too, and drawing them raises no warning (matplotlib's missing-glyph warnings were issue 19's
    stderr noise: the control characters' glyphs, and CJK, which the fonts here lack)."""
    from pcapsleuth.vantage import analyze_vantage_points

    paths = _vantage_pair(tmp_path)
    v = analyze_vantage_points([str(p) for p in paths])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        page = render_html(v.points[0].result, str(paths[0]), vantage=v)
    assert [str(w.message) for w in caught] == []
    assert RAW.search(page) is None, repr(RAW.search(page))
    svgs = re.findall(r"<svg.*?</svg>", page, re.S)
    ladders = [s for s in svgs if "vfig" in s]
    assert ladders, "no vantage ladder drawn"
    drawn = " ".join(ladders)
    assert "client\\u202elanigiro\\x1b[1m\u4e2d\u6587" in drawn  # escaped, the CJK kept as text
    assert "balancer\\u2067\\u2069\\u200e" in drawn


def test_long_comments_are_capped_in_the_report(tmp_path: Path) -> None:
    """12 comments of 60 KB: each shown as its first Limits.text_chars characters and the count
    of the rest; the page stays small (it was 800 KB, one very tall unbroken column)."""
    capture = long_comments_capture(tmp_path)
    result = analyze_capture(capture)
    page = render_html(result, capture)
    n = Limits().text_chars
    comments = [c for no in sorted(result.capture.comments) for c in result.capture.comments[no]]
    assert len(comments) == 12 and all(len(c) == 60_000 for c in comments)
    for c in comments:
        assert f"{c[:n]}\u2026 ({60_000 - n:,} more bytes, in the JSON)" in page
        assert c[: n + 1] not in page
    assert len(page.encode()) < 160_000, len(page.encode())


def test_ten_mb_of_names_and_comments_give_a_bounded_report(tmp_path: Path) -> None:
    """200 interfaces with 12 KB names and descriptions, 702 comments: a bounded prefix of each
    shown, the lists cut with what they leave out, the JSON keeps every byte."""
    capture = ten_mb_capture(tmp_path)
    result = analyze_capture(capture)
    info = result.capture
    page = render_html(result, capture)
    lim = Limits()
    assert len(page.encode()) < 200_000, len(page.encode())
    assert f"\u2026 and {len(info.interfaces) - lim.interfaces:,} more (in the JSON)" in page
    n_comments = sum(len(v) for v in info.comments.values()) + len(info.section_comments)
    assert n_comments == 702
    assert f"\u2026 and {n_comments - lim.comments - len(info.section_comments):,} more (in the JSON)" in page
    name = info.interfaces[0].name
    assert name is not None and len(name) > 12_000
    assert f"{name[: lim.name_chars]}\u2026 ({len(name) - lim.name_chars:,} more bytes, in the JSON)" in page
    out = io.StringIO()
    assert main(["analyze", "--no-html", "-q", "--json", "-", str(capture)], stdout=out, stderr=io.StringIO()) == 0
    doc = json.loads(out.getvalue())
    assert doc["capture"]["interfaces"][0]["name"] == name  # the JSON: whole


def test_markdown_caps_a_long_path(tmp_path: Path) -> None:
    deep = tmp_path
    for i in range(4):
        deep = deep / (f"d{i}" + "x" * 200)
    deep.mkdir(parents=True)
    name = "n" * 240 + ".pcap"
    shutil.copyfile(SAMPLES / "incidents" / "clean.pcap", deep / name)
    result = analyze_capture(deep / name)
    text = render_markdown(result, None)
    assert ("n" * Limits().text_chars) not in text and name in text  # the name fits: whole
    html_page = render_html(result, deep / name)
    path = str(deep / name)
    n = Limits().text_chars
    assert len(path) > n
    assert f"{path[:n]}\u2026 ({len(path) - n:,} more bytes, in the JSON)" in html_page


def test_stylesheet_has_no_layout_that_grows_with_string_length() -> None:
    """overflow-wrap: anywhere makes every character a break opportunity for min-content sizing:
    the facts grid measured each one (Chromium: ~40 s for 12 x 60 KB)."""
    from pcapsleuth.resources import templates_dir

    css = (Path(templates_dir()) / "style.css").read_text(encoding="utf-8")
    rules = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    assert "anywhere" not in rules
    assert re.search(r"dl\.facts\s*\{[^}]*grid-template-columns:\s*max-content\s+minmax\(0,\s*1fr\)", rules)


# -- stdin and file objects (issue 19, 10a) ---------------------------------------------------------
LOSSY = SAMPLES / "anomalies" / "lossy-client.pcap"  # evidence frames beyond what memory keeps


def test_stdin_with_the_html_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``pcapsleuth analyze - --html R`` renders the report (it exited 2 blaming the templates),
    prints the summary, and says which frames a stream cannot give again."""
    data = LOSSY.read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    dest = tmp_path / "r.html"
    out, err = io.StringIO(), io.StringIO()
    assert main(["analyze", "-", "--html", str(dest), "--no-progress"], stdout=out, stderr=err) == 0, err.getvalue()
    assert "findings:" in out.getvalue() and f"report: {dest}" in out.getvalue(), out.getvalue()
    page = dest.read_text(encoding="utf-8")
    assert "not re-readable from a stream" in page
    m = re.search(r'data-unavailable="(\d+)"', page)
    assert m and int(m.group(1)) > 0
    assert page.count('class="missing"') > 0
    # The same capture from its file: every frame read again, no such note.
    full = render_html(analyze_capture(LOSSY), LOSSY)
    assert "data-unavailable" not in full and 'class="missing"' not in full


def test_a_file_object_with_the_html_report(tmp_path: Path) -> None:
    """The API: an analysis of a file object (BytesIO) renders its report, to a string and to a file."""
    analysis = pcapsleuth.analyze(io.BytesIO(LOSSY.read_bytes()))
    page = analysis.to_html()
    assert "not re-readable from a stream" in page
    assert '<article class="finding' in page and 'class="missing"' in page
    dest = tmp_path / "api.html"
    analysis.to_html(dest)
    assert dest.read_text(encoding="utf-8") == page


# -- 4-tuple reused 100,000 times (issue 19, 8) ----------------------------------------------------
def _make_reuse() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_reuse", REPO / "bench" / "make_reuse.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_a_long_chain_of_reuses_is_counted_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """3,000 SYN/RST attempts on one 4-tuple, streamed with no connection kept as an object: the
    report reads back a bounded number of connection records (it read the whole chain: 1.2 GB
    at 100,000), and its ladder says how many attempts it leaves out."""
    capture = tmp_path / "reuse.pcap"
    assert _make_reuse().write(capture, 1, 3000) == 6000
    monkeypatch.setattr(stream, "KEEP_OBJECTS", 0)
    result = analyze_capture(capture, streaming=True)
    with result:
        view = result.report_view(findings_to_read)
        page = render_html(view, capture)
        read_back = [c for c in view._cache.values() if c is not None]
        assert len(read_back) <= Limits().connection_rows + 50, len(read_back)
        assert "\u2026 2,988 more attempts on this 4-tuple (in the JSON)" in page  # 24 arrows: 12 attempts
        d = view.digest
        # Connections are numbered from 1 (C000001), in order of first frame.
        assert d.chain_length(1) == d.chain_length(3000) == d.chain_length(1500) == 3000
        assert list(d.chain(3)) == [3, 2, 1, *range(4, 3001)]


def test_the_digest_links_are_the_same_in_memory(tmp_path: Path) -> None:
    capture = tmp_path / "reuse.pcap"
    _make_reuse().write(capture, 3, 40)
    d = analyze_capture(capture).digest
    assert d.chain_length(1) == 40 and list(d.chain(4))[:3] == [4, 1, 7]
    clean = analyze_capture(SAMPLES / "incidents" / "clean.pcap").digest
    assert clean.chain_length(1) == 1 and list(clean.chain(1)) == [1]
