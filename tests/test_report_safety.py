"""Report safety: nothing that comes from a capture - pcapng comments, interface names and
descriptions, section header strings, payload bytes - nor the capture's file name can execute
in the HTML report, break out of its markup, or reach a terminal as a control sequence.

The capture is built here (dpkt frames, pcapng written from the specification in _build.py):
two connections to a closed and an open port, so the report has findings, evidence tables and a
ladder, with hostile strings in every text field pcapng has and in the payload.
"""

from __future__ import annotations

import base64
import hashlib
import html.parser
import io
import json
import re
import sys
from pathlib import Path

import dpkt
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _build as b  # noqa: E402

from pcapsleuth.analysis import analyze_capture  # noqa: E402
from pcapsleuth.cli import main  # noqa: E402
from pcapsleuth.markdown import render_markdown  # noqa: E402
from pcapsleuth.report import render_html, visible  # noqa: E402

JINJA = "{{ 191*7919 }}{% if true %}evaluated{% endif %}"  # 191*7919 = 1512529
HOSTILE = {
    "shb_comment": "<script>alert('shb')</script>",
    "shb_hardware": "</title><script>alert('hw')</script>",
    "shb_os": '"><img src=x onerror=alert(\'os\')>',
    "shb_userappl": JINJA,
    "if_name": "eth0\x1b[31m<svg onload=alert('ifname')>\x1b[0m",
    "if_description": "</q></li></ul><script>alert('desc')</script>\r\x1b]0;pwned\x07\u202eevil",
    "epb_comment": "]]><iframe srcdoc='<script>alert(1)</script>'></iframe>' onmouseover='alert(\"c\")",
    "epb_comment2": "<!-- --><a href=\"javascript:alert('link')\">x</a>{{ 191*7919 }}",
}
PAYLOAD = b"GET /</title><script>alert('payload')</script> HTTP/1.1\r\n\r\n"
# A file name can hold anything but "/" and NUL.
FILE_NAME = "cap\"'><img src=x onerror=alert('file')>{{ 191*7919 }}<script>\x1b[31m\u202e&amp;.pcapng"
# Elements that load, embed or run something: none may appear (the report's one script aside).
FORBIDDEN_TAGS = {"img", "iframe", "frame", "object", "embed", "base", "link", "form", "image", "foreignobject",
                  "animate", "set", "math", "audio", "video", "source", "portal", "applet", "meta-refresh"}


def _hostile_pcapng() -> bytes:
    o = "<"
    frames = []
    # 10.0.0.1:40000 -> 10.0.0.2:81: refused (SYN, RST/ACK)
    frames.append(b.eth(b.ip4(b.tcp(40000, 81, seq=100))))
    frames.append(b.eth(b.ip4(b.tcp(81, 40000, seq=0, ack=101, flags=dpkt.tcp.TH_RST | dpkt.tcp.TH_ACK, win=0),
                              src=b.DST4, dst=b.SRC4), src=b.MAC_B, dst=b.MAC_A))
    # 10.0.0.1:40001 -> 10.0.0.2:80: handshake, a request with hostile payload, reset by the server
    syn, ack = dpkt.tcp.TH_SYN, dpkt.tcp.TH_ACK
    frames.append(b.eth(b.ip4(b.tcp(40001, 80, seq=1000, flags=syn))))
    frames.append(b.eth(b.ip4(b.tcp(80, 40001, seq=5000, ack=1001, flags=syn | ack), src=b.DST4, dst=b.SRC4),
                        src=b.MAC_B, dst=b.MAC_A))
    frames.append(b.eth(b.ip4(b.tcp(40001, 80, seq=1001, ack=5001, flags=ack))))
    frames.append(b.eth(b.ip4(b.tcp(40001, 80, seq=1001, ack=5001, flags=ack | dpkt.tcp.TH_PUSH, payload=PAYLOAD))))
    frames.append(b.eth(b.ip4(b.tcp(80, 40001, seq=5001, ack=1001 + len(PAYLOAD),
                                    flags=dpkt.tcp.TH_RST | ack, win=0), src=b.DST4, dst=b.SRC4),
                        src=b.MAC_B, dst=b.MAC_A))
    h = HOSTILE
    out = b.shb(o, [(1, h["shb_comment"].encode()), (2, h["shb_hardware"].encode()), (3, h["shb_os"].encode()),
                    (4, h["shb_userappl"].encode())])
    out += b.idb(o, options=[(2, h["if_name"].encode()), (3, h["if_description"].encode())])
    for i, frame in enumerate(frames):
        opts = [(1, h["epb_comment"].encode())] if i == 1 else [(1, h["epb_comment2"].encode())] if i == 5 else []
        out += b.epb(o, 0, 1_700_000_000_000_000 + i * 1000, frame, options=opts)
    return out


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hostile") / FILE_NAME
    path.write_bytes(_hostile_pcapng())
    return path


class _Collector(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)
        else:
            self.text.append(data)

    def handle_comment(self, data: str) -> None:  # no capture text may open an HTML comment
        self.tags.append(("!--", [("data", data)]))


def test_hostile_capture_is_analyzed(hostile: Path) -> None:
    """The capture is what the other tests assume: its strings are read, findings are raised."""
    result = analyze_capture(hostile)
    info = result.capture
    assert info.section_comments == [HOSTILE["shb_comment"]]
    assert info.interfaces[0].name == HOSTILE["if_name"]
    assert info.interfaces[0].description == HOSTILE["if_description"]
    assert info.comments == {2: [HOSTILE["epb_comment"]], 6: [HOSTILE["epb_comment2"]]}
    assert {"handshake.refused"} <= {f.id for f in result.findings}
    assert not info.damage


def _assert_safe(page: str, hostile: Path) -> None:
    # Only the report's own script; no tag or event handler from the capture.
    assert len(re.findall(r"<script", page, re.IGNORECASE)) == 1
    p = _Collector()
    p.feed(page)
    p.close()
    tags = [t for t, _ in p.tags]
    assert tags.count("script") == 1
    assert not FORBIDDEN_TAGS & set(tags), FORBIDDEN_TAGS & set(tags)
    assert "!--" not in tags  # no HTML comment (one could hide or unbalance markup)
    for tag, attrs in p.tags:
        for name, value in attrs:
            assert not name.startswith("on") and name not in ("srcdoc", "src", "formaction"), (tag, name, value)
            if name in ("href", "xlink:href", "action"):
                assert (value or "").startswith("#"), (tag, name, value)  # internal anchors only
        if tag == "meta":
            assert (dict(attrs).get("http-equiv") or "").lower() != "refresh"

    # The CSP is intact: one policy, in the head, allowing exactly the script that is there.
    csp = [dict(a) for t, a in p.tags if t == "meta" and dict(a).get("http-equiv") == "Content-Security-Policy"]
    assert len(csp) == 1
    policy = csp[0]["content"] or ""
    digest = base64.b64encode(hashlib.sha256(p.scripts[0].encode("utf-8")).digest()).decode()
    assert policy == (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
                      f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'")
    assert page.index("Content-Security-Policy") < page.index("<body")

    # The hostile strings are there, as text: escaped, neither dropped nor interpreted; control
    # and bidi characters as visible escapes (ESC as the four characters \x1b).
    text = "".join(p.text)
    for key in ("shb_comment", "if_name", "if_description", "epb_comment", "epb_comment2"):
        assert visible(HOSTILE[key]) in text, key
    assert visible(Path(FILE_NAME).name) in text
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", page)
    titles = [dict(a).get("title") for t, a in p.tags if dict(a).get("title")]
    assert visible(str(hostile)) in titles  # the full path, in an attribute, unbroken
    assert "1512529" not in page and "evaluated" not in page  # no template syntax was evaluated


def test_html_report_escapes_everything_from_the_capture(hostile: Path, tmp_path: Path) -> None:
    result = analyze_capture(hostile)
    out = tmp_path / "report.html"
    page = render_html(result, hostile, out)
    assert out.read_bytes().decode("utf-8") == page
    _assert_safe(page, hostile)
    assert "&lt;script&gt;" in page


def test_the_check_catches_an_unescaped_string(hostile: Path, tmp_path: Path) -> None:
    """Control: a template that forgets to escape the interface name fails the check above."""
    from pcapsleuth.resources import templates_dir

    original = (Path(templates_dir()) / "report.html.j2").read_text(encoding="utf-8")
    assert original.count("{{ i.name or ") == 1
    (tmp_path / "report.html.j2").write_text(original.replace("{{ i.name or ", "{{ i.name|safe or "),
                                             encoding="utf-8")
    page = render_html(analyze_capture(hostile), hostile, None, tmp_path)
    with pytest.raises(AssertionError):
        _assert_safe(page, hostile)


def test_markdown_summary_neutralises_markup_and_control_characters(hostile: Path) -> None:
    result = analyze_capture(hostile)
    text = render_markdown(result, "report.pcapsleuth.html")
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", text), repr(text)
    assert "\\x1b" in text  # the file name's ESC, shown
    # Outside code spans no raw HTML can start: "<" only inside `...` (CommonMark shows it literally).
    outside = re.sub(r"(`+)(.+?)\1", "", text)
    assert "<" not in outside, outside
    assert "1512529" not in text


def test_terminal_summary_has_no_control_characters(hostile: Path) -> None:
    result = analyze_capture(hostile)
    summary = result.summary_text()
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", summary), repr(summary)
    assert "eth0\\x1b[31m<svg onload=alert('ifname')>\\x1b[0m" in summary  # visible, not executed
    assert "\\x1b]0;pwned\\x07" in summary


def test_cli_output_has_no_control_characters(hostile: Path, tmp_path: Path) -> None:
    """The whole terminal output of `analyze`, and the one-line error for a hostile name."""
    out, err = io.StringIO(), io.StringIO()
    assert main(["analyze", "--no-html", str(hostile)], stdout=out, stderr=err) == 0, err.getvalue()
    for stream in (out.getvalue(), err.getvalue()):
        assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", stream), repr(stream)
    bad = tmp_path / "\x1b[2J\x1b[31mgone\r.pcap"
    bad.write_bytes(b"not a capture at all")
    out, err = io.StringIO(), io.StringIO()
    assert main(["analyze", "--no-html", str(bad)], stdout=out, stderr=err) == 4
    line = err.getvalue()
    assert line.count("\n") == 1 and "\\x1b[2J\\x1b[31mgone\\x0d.pcap" in line, repr(line)
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]", line), repr(line)


def test_json_keeps_the_strings_exactly(hostile: Path) -> None:
    """The JSON is data: the strings are kept as the capture has them (JSON escapes the controls)."""
    out, err = io.StringIO(), io.StringIO()
    assert main(["analyze", "--no-html", "--json", "-", str(hostile)], stdout=out, stderr=err) == 0
    assert "\x1b" not in out.getvalue()  # written as \u001b
    # C1 controls and bidi overrides, which JSON may carry raw, are escaped too (a terminal acts on them).
    assert not re.search(r"[\x7f-\x9f\u202a-\u202e\u2066-\u2069]", out.getvalue()), "raw bidi/C1 in the JSON"
    assert "\\u202e" in out.getvalue()
    cap = json.loads(out.getvalue())["capture"]
    assert cap["interfaces"][0]["name"] == HOSTILE["if_name"]
    assert cap["section_comments"] == [HOSTILE["shb_comment"]]
    assert cap["path"] == str(hostile)


def test_progress_line_shows_a_hostile_file_name_escaped(hostile: Path, tmp_path: Path) -> None:
    """The progress line's only control character is its own carriage return."""
    named = tmp_path / "\x1b[2J\x1b[31mred\u202e\r.pcapng"
    named.write_bytes(hostile.read_bytes())
    out, err = io.StringIO(), io.StringIO()
    assert main(["analyze", "--no-html", "--progress", str(named)], stdout=out, stderr=err) == 0, err.getvalue()
    lines = err.getvalue().split("\r")
    assert lines[0] == "" and len(lines) >= 2 and err.getvalue().endswith("\n")
    for line in lines[1:]:
        assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", line), repr(line)
    assert "analyzed \\x1b[2J\\x1b[31mred\\u202e\\x0d.pcapng:" in lines[-1]


def test_json_safe_escapes_exactly_the_listed_characters() -> None:
    """``json_safe`` skips texts without any listed character; what it returns is what
    ``str.translate`` with the table gives, on strings built from those characters, their
    neighbours and plain text (DEL is ASCII, and listed)."""
    import random

    from pcapsleuth import util

    table = util._JSON_ESCAPES
    near = [c + d for c in table for d in (-1, 1)] + [0xA0, 0xB5, 0xE9, 0x2027, 0x202F, 0x2065, 0x206A]
    pool = [chr(c) for c in [*range(0x20, 0x7F), *table, *near]]
    rng = random.Random(8)
    escaped = 0
    for _ in range(20000):
        text = "".join(rng.choice(pool) for _ in range(rng.randrange(0, 10)))
        want = text.translate(table)
        assert util.json_safe(text) == want, repr(text)
        escaped += want != text
    assert escaped > 5000  # the listed characters were drawn often enough to count
    assert util.json_safe("\x7f") == "\\u007f" and util.json_safe("5 µs") == "5 µs"
