"""The HTML report in a real browser: headless Chromium (Debian's ``chromium`` + ``chromium-driver``,
installed by ``./dev test``), driven by selenium through /usr/bin/chromedriver (nothing is downloaded).

For every sample capture the report is rendered, loaded from a file:// URL and checked: no console
errors (a CSP violation is one), no request other than the report file itself, drawings laid
out, the connections table sorts and filters. A full-page screenshot of each goes to
``tests/_reports/screenshots/`` (not in git) for people to look at.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pcapsleuth import analyze_capture
from pcapsleuth.report import Limits, render_html, visible

from .conftest import REPO, SAMPLES, sample_captures
from .test_hostile_report import BIDI_NAME, HOSTILE_BUILDERS
from .test_report import HOSTILE_STRINGS, write_hostile_capture

OUT = REPO / "tests" / "_reports"
SHOTS = OUT / "screenshots"
HTML = OUT / "html"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

# The flags the issue prescribes, plus: no DNS for anything (a request that slipped through would
# fail instead of leaving the machine) and a fixed window.
CHROME_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-default-apps",
    "--host-resolver-rules=MAP * ~NOTFOUND", "--window-size=1300,1000", "--hide-scrollbars",
]


def _name(capture: Path) -> str:
    rel = capture.relative_to(SAMPLES)
    return "-".join(rel.parts).replace(".", "_")


SAMPLE_IDS = [_name(p) for p in sample_captures()]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module, with a fresh profile."""
    assert Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists(), (
        "chromium/chromium-driver are not installed: run the tests through ./dev test, which installs them")
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium-manager must never download a driver
    os.environ.setdefault("SE_AVOID_STATS", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="pcapsleuth-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in [*CHROME_ARGS, f"--user-data-dir={profile}"]:
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _requests(driver: Any) -> list[str]:
    """URLs the page asked for since the last call (from the DevTools performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    return urls


def _problems(driver: Any) -> list[str]:
    return [f"{e['level']}: {e['message']}" for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]


def load(driver: Any, path: Path) -> tuple[list[str], list[str]]:
    """Open a report; returns (console problems, requests other than the report itself)."""
    driver.get_log("browser")
    driver.get_log("performance")
    driver.get("about:blank")
    driver.get(path.resolve().as_uri())
    driver.execute_script("return document.readyState")
    problems = _problems(driver)
    own = path.resolve().as_uri()
    others = [u for u in _requests(driver) if u != own and u != "about:blank"]
    return problems, others


def screenshot(driver: Any, dest: Path, max_height: int = 9000) -> None:
    """A full-page screenshot (cut at ``max_height`` CSS pixels)."""
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    width = int(driver.execute_script("return document.documentElement.scrollWidth"))
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": max(width, 1300), "height": min(height, max_height), "scale": 1},
    })
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(base64.b64decode(shot["data"]))


@pytest.fixture(scope="module")
def reports() -> dict[str, Path]:
    """Render every sample's report once (the browser tests share them)."""
    HTML.mkdir(parents=True, exist_ok=True)
    out = {}
    for capture in sample_captures():
        dest = HTML / f"{_name(capture)}.html"
        render_html(analyze_capture(capture), capture, dest)
        out[_name(capture)] = dest
    return out


def test_there_are_samples_to_render() -> None:
    assert len(SAMPLE_IDS) >= 10, SAMPLE_IDS
    assert "incidents-lb-client_pcap" in SAMPLE_IDS and "incidents-closewait-reuse_pcap" in SAMPLE_IDS


@pytest.mark.parametrize("name", SAMPLE_IDS)
def test_report_in_browser(browser: Any, reports: dict[str, Path], name: str) -> None:
    path = reports[name]
    problems, requests = load(browser, path)
    assert problems == [], problems
    assert requests == [], f"the report made network requests: {requests}"
    # The page really rendered: a verdict, the capture facts, a laid-out timeline drawing.
    info = browser.execute_script("""
        const r = (sel) => { const e = document.querySelector(sel); return e ? e.getBoundingClientRect() : null; };
        const svg = r('figure[data-plot="timeline"] svg');
        return {
          verdict: (document.querySelector('#verdict h2') || {}).textContent || '',
          svgWidth: svg ? svg.width : 0, svgHeight: svg ? svg.height : 0,
          findings: Array.from(document.querySelectorAll('article.finding')).map(a => a.dataset.findingId),
          ladders: Array.from(document.querySelectorAll('figure[data-plot="ladder"] svg'))
                     .map(s => s.getBoundingClientRect().width),
          scrollWidth: document.documentElement.scrollWidth,
        };
    """)
    assert info["verdict"].strip(), "no verdict headline"
    assert info["svgWidth"] > 300 and info["svgHeight"] > 100, info
    assert all(w > 200 for w in info["ladders"]), info
    assert len(info["ladders"]) == min(len(info["findings"]), Limits().ladders), info  # one per detailed finding
    # Nothing makes the page scroll sideways (wide tables scroll inside their own box).
    assert info["scrollWidth"] <= 1300, info
    screenshot(browser, SHOTS / f"{name}.png")


def test_connections_table_sorts_and_filters(browser: Any, reports: dict[str, Path]) -> None:
    path = reports["incidents-closewait-reuse_pcap"]
    problems, _ = load(browser, path)
    assert problems == []
    rows = browser.execute_script("return Array.from(document.querySelectorAll('#conn-table tbody tr'))"
                                  ".map(r => r.dataset.uid)")
    assert rows == sorted(rows) and len(rows) == 3
    # Sort by the uid column twice: descending the second time.
    browser.execute_script("document.querySelector('#conn-table thead th').click();"
                           "document.querySelector('#conn-table thead th').click();")
    rows_desc = browser.execute_script("return Array.from(document.querySelectorAll('#conn-table tbody tr'))"
                                       ".map(r => r.dataset.uid)")
    assert rows_desc == sorted(rows, reverse=True)
    # Filter on a conn_state that one connection has.
    box = browser.find_element("id", "conn-filter")
    box.send_keys("RSTOS0")
    visible = browser.execute_script("return Array.from(document.querySelectorAll('#conn-table tbody tr'))"
                                     ".filter(r => !r.hidden).map(r => r.dataset.uid)")
    assert visible == ["C000002"], visible
    assert "1 of 3" in browser.find_element("id", "conn-count").text
    assert _problems(browser) == []


@pytest.mark.parametrize("name", ["incidents-lb-client_pcap", "incidents-closewait-reuse_pcap"])
def test_dark_scheme_and_print(browser: Any, reports: dict[str, Path], name: str) -> None:
    """Readable in the dark scheme (text and background far apart), and "save as PDF" works."""
    path = reports[name]
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia",
                            {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    try:
        problems, _ = load(browser, path)
        assert problems == []
        colours = browser.execute_script("""
            const s = getComputedStyle(document.body);
            return [s.color, s.backgroundColor];
        """)
        fg, bg = (_luminance(c) for c in colours)
        assert bg < 0.1 and fg > 0.6, colours
        screenshot(browser, SHOTS / f"{name}.dark.png", max_height=2400)
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    load(browser, path)
    pdf = base64.b64decode(browser.execute_cdp_cmd("Page.printToPDF", {"printBackground": True})["data"])
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    (SHOTS / f"{name}.pdf").write_bytes(pdf)
    # Print CSS hides the interactive parts.
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        hidden = browser.execute_script("return getComputedStyle(document.querySelector('.table-tools')).display")
        assert hidden == "none"
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})


def _luminance(css: str) -> float:
    nums = [float(x) for x in css[css.index("(") + 1: css.index(")")].split(",")[:3]]
    return (0.2126 * nums[0] + 0.7152 * nums[1] + 0.0722 * nums[2]) / 255


def test_hostile_capture_strings_stay_inert(browser: Any, tmp_path: Path) -> None:
    """pcapng comments, interface names and the file name carry markup: the page shows it as text."""
    hostile_capture = write_hostile_capture(tmp_path)
    dest = tmp_path / "hostile.html"
    render_html(analyze_capture(hostile_capture), hostile_capture, dest)
    problems, requests = load(browser, dest)
    assert problems == [], problems
    assert requests == [], requests
    state = browser.execute_script("""
        return {
          pwned: window.__pwned === undefined ? null : window.__pwned,
          scripts: document.scripts.length,
          imgs: document.images.length,
          text: document.body.innerText,
        };
    """)
    assert state["pwned"] is None
    assert state["scripts"] == 1 and state["imgs"] == 0
    for s in (*HOSTILE_STRINGS, hostile_capture.name):
        assert s in state["text"], s
    screenshot(browser, SHOTS / "hostile.png", max_height=2400)


VANTAGE_SETS = {
    "vantage-lb": ["incidents/lb-client.pcap", "incidents/lb-balancer.pcap", "incidents/lb-backend.pcap"],
    "vantage-lossy": ["anomalies/lossy-client.pcap", "anomalies/lossy-server.pcap"],
}


@pytest.mark.parametrize("name", sorted(VANTAGE_SETS))
def test_vantage_report_in_browser(browser: Any, tmp_path: Path, name: str) -> None:
    """The one report of several captures: clean console, no requests, a lane per vantage point."""
    from pcapsleuth.vantage import analyze_vantage_points

    paths = [SAMPLES / p for p in VANTAGE_SETS[name]]
    v = analyze_vantage_points([str(p) for p in paths])
    dest = HTML / f"{name}.html"
    HTML.mkdir(parents=True, exist_ok=True)
    render_html(v.points[0].result, str(paths[0]), dest, vantage=v)
    problems, requests = load(browser, dest)
    assert problems == [], problems
    assert requests == [], f"the report made network requests: {requests}"
    info = browser.execute_script("""
        const sec = document.querySelector('#vantage');
        return {
          points: sec ? Number(sec.dataset.vantagePoints) : 0,
          rows: Array.from(document.querySelectorAll('#vantage tr[data-point]')).map(r => r.dataset.point),
          ladders: Array.from(document.querySelectorAll('figure[data-plot="vantage-ladder"] svg'))
                     .map(s => s.getBoundingClientRect().width),
          findings: Array.from(document.querySelectorAll('[data-vantage-finding-id]'))
                      .map(a => a.dataset.vantageFindingId),
          scrollWidth: document.documentElement.scrollWidth,
        };
    """)
    assert info["points"] == len(paths), info
    assert {p.stem for p in paths} <= set(info["rows"]), info
    assert info["ladders"] and all(w > 300 for w in info["ladders"]), info
    expected = {f.id for f in v.findings}
    assert expected and set(info["findings"]) == expected, info
    assert info["scrollWidth"] <= 1300, info
    screenshot(browser, SHOTS / f"{name}.png")


#: Where the hostile reports' load times go (measured, reported: no test asserts a time).
RENDER_TIMES = OUT / "hostile-render-times.json"


@pytest.mark.parametrize("kind", sorted(HOSTILE_BUILDERS))
def test_hostile_string_report_in_browser(browser: Any, tmp_path: Path, kind: str) -> None:
    """Issue 19's captures (bidi overrides and markup in names and comments; 12 comments of 60 KB;
    a 10 MB pcapng of long comments and interface names): the report renders (loaded, a verdict),
    with a clean console, no request, none of the capture's markup as an element, and a title
    shown as the escapes, not reversed. How long it took is written to tests/_reports/."""
    capture = HOSTILE_BUILDERS[kind](tmp_path)
    dest = tmp_path / f"{kind}.html"
    result = analyze_capture(capture)
    render_html(result, capture, dest)
    browser.get_log("browser")
    browser.get_log("performance")
    browser.get("about:blank")
    start = time.perf_counter()
    browser.get(dest.resolve().as_uri())
    state = browser.execute_script("""
        const v = document.querySelector('#verdict h2');
        document.documentElement.getBoundingClientRect();  // the layout, done
        const t = performance.getEntriesByType('navigation')[0];
        return {
          ready: document.readyState, verdict: v ? v.textContent : null, title: document.title,
          h1: (document.querySelector('h1.file') || {}).textContent || '',
          pwned: window.__pwned === undefined ? null : window.__pwned,
          scripts: document.scripts.length, images: document.images.length,
          iframes: document.querySelectorAll('iframe, object, embed').length,
          handlers: Array.from(document.querySelectorAll('*')).filter(
              e => Array.from(e.attributes).some(a => a.name.startsWith('on'))).length,
          loaded_ms: t ? t.loadEventEnd - t.startTime : null,
          scrollWidth: document.documentElement.scrollWidth,
        };
    """)
    wall = time.perf_counter() - start
    problems = _problems(browser)
    own = dest.resolve().as_uri()
    requests = [u for u in _requests(browser) if u not in (own, "about:blank")]
    assert state["ready"] == "complete" and state["verdict"], state
    assert problems == [], problems
    assert requests == [], requests
    assert state["pwned"] is None and state["scripts"] == 1, state
    assert state["images"] == 0 and state["iframes"] == 0 and state["handlers"] == 0, state
    name = visible(capture.name)
    assert state["title"] == f"{result.findings[0].title} - {name} - pcapsleuth", state["title"]
    assert state["h1"] == name
    if kind == "bidi":
        assert "\\u202e" in state["title"] and BIDI_NAME not in state["title"]
    assert state["scrollWidth"] <= 1300, state  # long unbroken tokens break instead of widening the page
    times = json.loads(RENDER_TIMES.read_text()) if RENDER_TIMES.exists() else {}
    times[kind] = {"wall_s": round(wall, 3), "load_event_ms": state["loaded_ms"], "html_bytes": dest.stat().st_size,
                   "capture_bytes": capture.stat().st_size}
    RENDER_TIMES.parent.mkdir(parents=True, exist_ok=True)
    RENDER_TIMES.write_text(json.dumps(times, indent=1, sort_keys=True) + "\n")
    print(f"{kind}: rendered in {wall:.2f} s (load event {state['loaded_ms']} ms), {dest.stat().st_size:,} bytes")
    screenshot(browser, SHOTS / f"hostile-{kind}.png", max_height=2400)
