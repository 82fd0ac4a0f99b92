"""The streaming analysis writes the same JSON and summary as the in-memory one.

Streaming (``analyze_capture(streaming=True)``, what ``pcapsleuth analyze --no-html`` uses) hands
each connection to the detectors once Zeek's timers have expired it, spills its JSON line and
forgets it. Nothing of what pcapsleuth concludes may depend on that: every sample and corpus
capture gives a byte-identical JSON document and summary both ways.

Most samples last a few seconds, shorter than Zeek's timers, so their connections stay in memory to
the end either way. The ``replayed`` captures below stretch real recordings over minutes (each
sample three times in a row, 40 s apart, packets unchanged): the sweep then retires the first
copy's connections before the second copy reuses their 4-tuples, which must be linked as
successors exactly as the in-memory tracker links them.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import dpkt
import pytest

from pcapsleuth.analysis import analyze_capture
from pcapsleuth.outputs import json_text
from pcapsleuth.stream import StreamedResult

from .conftest import sample_captures, zeek_items, zeek_trace


def _captures() -> list[Path]:
    return list(sample_captures()) + [zeek_trace(i) for i in zeek_items()]


def _both(path: Path | str) -> tuple[str, str, str, str, StreamedResult]:
    mem = analyze_capture(path)
    streamed = analyze_capture(path, streaming=True)
    assert isinstance(streamed, StreamedResult)
    buf = io.StringIO()
    streamed.write_json(buf)
    return json_text(mem), buf.getvalue(), mem.summary_text(), streamed.summary_text(), streamed


@pytest.mark.parametrize("path", _captures(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_streaming_gives_the_same_document(path: Path) -> None:
    mem_json, stream_json, mem_summary, stream_summary, streamed = _both(path)
    with streamed:
        assert stream_json == mem_json
        assert stream_summary == mem_summary


def _replay(src: Path, dest: Path, copies: int = 3, gap_s: float = 40.0) -> None:
    """``src`` ``copies`` times in a row, each copy shifted to start ``gap_s`` after the last ended."""
    with open(src, "rb") as f:
        reader = dpkt.pcap.Reader(f)
        link = reader.datalink()
        snap = reader.snaplen
        pkts = [(ts, bytes(buf)) for ts, buf in reader]
    assert pkts, src
    span = pkts[-1][0] - pkts[0][0]
    with open(dest, "wb") as f:
        w = dpkt.pcap.Writer(f, snaplen=snap, linktype=link, nano=False)
        for k in range(copies):
            shift = k * (float(span) + gap_s)
            for ts, buf in pkts:
                w.writepkt(buf, ts=float(ts) + shift)


#: (sample, whether the sweep retires connections): the sockets closewait-reuse leaves in CLOSE_WAIT
#: never expire, so its later copies reach them through the tracker's reuse path instead.
_REPLAYED = [("incidents/clean.pcap", True), ("incidents/refused.pcap", True), ("incidents/lb-client.pcap", True),
             ("anomalies/timewait-reuse.pcap", True), ("anomalies/reset-unread.pcap", True),
             ("incidents/closewait-reuse.pcap", False)]


@pytest.mark.parametrize(("name", "swept"), _REPLAYED)
def test_streaming_retires_and_links_like_the_in_memory_tracker(name: str, swept: bool, tmp_path: Path) -> None:
    src = next(p for p in sample_captures() if p.as_posix().endswith(name))
    path = tmp_path / "replayed.pcap"
    _replay(src, path)
    mem_json, stream_json, mem_summary, stream_summary, streamed = _both(path)
    with streamed:
        assert stream_json == mem_json
        assert stream_summary == mem_summary
        doc = json.loads(stream_json)
        # The later copies reuse the first copy's 4-tuples: linked, so the test covers the sweep.
        linked = [c for c in doc["connections"] if c["predecessor"]]
        assert linked, "no connection was linked to a predecessor"
        assert (streamed.sink.swept > 0) == swept, f"the sweep retired {streamed.sink.swept} connections"
