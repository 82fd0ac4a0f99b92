"""The analysis pipeline: capture -> packets -> connections (-> findings) -> results."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TextIO

from .capture import Capture, CaptureInfo, Coverage
from .detectors import detect
from .digest import ConnDigest
from .findings import Finding
from .packet import Packet
from .reader import MAX_EXPANSION, Source
from .tracker import LIKELY_SERVER_PORTS, MAX_CONNECTIONS, Connection, Tracker
from .util import json_safe, no_cyclic_gc

__all__ = ["AnalysisResult", "analyze_capture"]


@dataclasses.dataclass
class AnalysisResult:
    """Everything one analysis produced, in the shape of the JSON document."""

    capture: CaptureInfo
    connections: list[Connection] = dataclasses.field(default_factory=list)
    findings: list[Finding] = dataclasses.field(default_factory=list)
    #: What the tracker did with the packets: JSON ``tracking`` (``tcp_packets``, ``untracked``,
    #: ``bad_ip_checksums``, ``max_connections``, ``evicted``).
    tracking: dict[str, int] = dataclasses.field(default_factory=dict)

    @functools.cached_property
    def digest(self) -> ConnDigest:
        """What the report needs of every connection (:class:`pcapsleuth.digest.ConnDigest`)."""
        return ConnDigest.of(self.connections)

    @functools.cached_property
    def _by_uid(self) -> dict[str, Connection]:
        return {c.uid: c for c in self.connections}

    def connection(self, uid: str) -> Connection | None:
        """The connection of ``uid`` (``None`` when there is none)."""
        return self._by_uid.get(uid)

    def evidence_of(self, uid: str) -> Sequence[Packet]:
        """The packets kept in memory for connection ``uid`` (see ``Connection.evidence``)."""
        c = self._by_uid.get(uid)
        return c.evidence if c is not None else ()

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "capture": self.capture.to_dict(),
            "tracking": dict(self.tracking),
            "connections": [c.to_dict() for c in self.connections],
            "findings": [f.to_dict() for f in self.findings],
        }

    def write_json(self, fp: TextIO) -> None:
        """Write the JSON document (the same as :meth:`to_json_dict`) to a text stream.

        Connections and findings go one per line, each encoded on its own: the document is never
        held in memory as a whole, and a connection is one ``grep`` away by its uid.
        """
        with no_cyclic_gc():
            self._write_json(fp)

    def _write_json(self, fp: TextIO) -> None:
        enc = json.JSONEncoder(ensure_ascii=False).encode
        # Connections hold only numbers, addresses and pcapsleuth's own words; capture strings
        # (comments, interface names) reach the capture object and the findings' text.
        write_document(fp, self.capture, self.tracking, (enc(c.to_dict()) for c in self.connections),
                       (json_safe(enc(f.to_dict())) for f in self.findings))

    def summary_text(self) -> str:
        from .summary import capture_summary

        return capture_summary(self.capture, self.connections, self.findings)


def write_document(fp: TextIO, capture: CaptureInfo, tracking: dict[str, int], connections: Iterable[str],
                   findings: Iterable[str]) -> None:
    """The JSON document from its parts: connections and findings already encoded, one per line."""
    fp.write('{\n  "capture": ')
    fp.write(json_safe(json.dumps(capture.to_dict(), indent=2, ensure_ascii=False).replace("\n", "\n  ")))
    fp.write(',\n  "tracking": ')
    fp.write(json.dumps(tracking))
    for name, lines in (("connections", connections), ("findings", findings)):
        fp.write(f',\n  "{name}": [')
        sep = "\n    "
        for text in lines:
            fp.write(sep)
            fp.write(text)
            sep = ",\n    "
        fp.write("\n  ]" if sep != "\n    " else "]")
    fp.write("\n}\n")


def coverage_of(info: CaptureInfo, tracker: Tracker, verify_checksums: bool, strict_checksums: bool,
                max_connections: int) -> Coverage:
    """What the analysis of ``info``'s capture left out, from the tracker's counts (issue 20)."""
    reasons = dict(tracker.not_analyzed)
    checksum = tracker.bad_ip_checksums + tracker.bad_tcp_checksums
    if checksum:
        reasons["checksum"] = checksum
    for key, n in tracker.untracked_reasons.items():
        reasons[key.removeprefix("untracked_")] = n
    snaplen = sum(int(d["count"]) for d in info.damage.to_list() if d["kind"] == "snaplen_cut")  # type: ignore[call-overload]
    return Coverage(frames=info.frames,
                    checksum_mode="off" if not verify_checksums else "strict" if strict_checksums else "default",
                    checksum_facts=dict(tracker.checksum_facts), reasons=reasons, snaplen_cut=snaplen,
                    evicted=tracker.evicted, max_connections=max_connections,
                    tcp_connections=tracker.tcp_connections, one_sided=(tracker.one_sided[0], tracker.one_sided[1]))


def analyze_capture(source: Source | os.PathLike[str], *, engine: str = "fast", verify_checksums: bool = True,
                    max_decompressed: int = 64 * 1024**3, max_expansion: float = MAX_EXPANSION,
                    strict_checksums: bool = False,
                    likely_server_ports: frozenset[int] = LIKELY_SERVER_PORTS,
                    progress: Callable[[int, int | None, str], None] | None = None,
                    max_connections: int = MAX_CONNECTIONS, streaming: bool = False) -> Any:
    """Read one capture and track its connections.

    Checksums (``verify_checksums``, ``strict_checksums``): by default the IPv4 header, TCP and UDP
    checksums are verified; checksums left for the NIC (a TCP/UDP checksum holding only the
    pseudo-header sum, an IPv4 header checksum 0x0000) and checksums wrong on most frames of a
    sender (a rewritten or anonymised capture) are analyzed as sent and reported once in the
    capture's ``checksums``; any other wrong IPv4 or TCP checksum leaves its frame out of connection
    state (``capture.bad_checksum``, judged by what the receiver did next). ``strict_checksums``
    leaves out every frame whose IPv4 or TCP checksum is not valid, offloaded ones included, as
    Zeek does without ``-C``. ``verify_checksums=False`` verifies none (``zeek -C``).

    ``max_connections`` bounds the connections tracked at once: beyond it the least recently
    active tenth is finished early (counted in ``tracking.evicted``).

    ``max_decompressed`` and ``max_expansion`` bound compressed input (see :func:`.reader.open_capture`).

    ``streaming``: connections are released as soon as they are over (memory follows the
    connections open at once, not the capture); returns a :class:`pcapsleuth.stream.StreamedResult`
    (JSON, summary, findings) instead of an :class:`AnalysisResult` with connection objects.

    ``progress`` is called as ``progress(done, total, unit)`` every few thousand packets and at the
    end (``unit`` ``"bytes"`` or ``"frames"``, see :mod:`pcapsleuth.progress`).
    """
    if engine == "tshark":
        from .engine_tshark import TsharkCapture

        cap: Any = TsharkCapture(source, verify_checksums=verify_checksums, max_decompressed=max_decompressed,
                                 max_expansion=max_expansion)
    else:
        cap = Capture(source, verify_checksums=verify_checksums, max_decompressed=max_decompressed,
                      max_expansion=max_expansion)
    sink = None
    if streaming:
        from .stream import StreamSink

        sink = StreamSink(cap.info)
    tracker = Tracker(strict_checksums=strict_checksums, likely_server_ports=likely_server_ports,
                      max_connections=max_connections, sink=sink)
    feed = tracker.packet
    # The tracker builds millions of long-lived objects and no reference cycles: the cyclic
    # collector would only rescan them over and over (a fifth of the run time on big captures).
    with no_cyclic_gc():
        try:
            with cap:
                if progress is None:
                    for pkt in cap:
                        feed(pkt)
                else:
                    from .progress import feed_with_progress

                    feed_with_progress(cap, feed, progress)
        except BaseException:
            if sink is not None:  # (a bound reached part way: the spill files go with the analysis)
                sink.close()
            raise
        conns = tracker.finish()
        if sink is not None:
            sink.swept = tracker.swept
            refs = sink.finish()
        else:
            findings = detect(conns, cap.info)
    tracking = {"tcp_packets": tracker.tcp_packets, "untracked": tracker.untracked,
                "bad_ip_checksums": tracker.bad_ip_checksums, "max_connections": max_connections,
                "evicted": tracker.evicted, **tracker.untracked_reasons}
    cap.info.coverage = coverage_of(cap.info, tracker, verify_checksums, strict_checksums, max_connections)
    if sink is not None:
        from .stream import StreamedResult

        return StreamedResult(cap.info, sink, refs, tracking)
    return AnalysisResult(capture=cap.info, connections=conns, findings=findings, tracking=tracking)
