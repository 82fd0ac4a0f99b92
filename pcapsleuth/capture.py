"""Reading a whole capture: records from :mod:`.reader`, decoded by :mod:`.decode`, plus the facts
about the capture itself (``capture`` in the JSON)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from typing import Any

from .decode import Decoder
from .packet import Packet
from .reader import (
    LINKTYPE_NAMES,
    MAX_EXPANSION,
    CaptureSource,
    DamageLog,
    Interface,
    RecordReader,
    Source,
    open_capture,
)

__all__ = ["Capture", "CaptureInfo", "Coverage", "read_packets"]

#: IP protocols named in "not analyzed" (the others by number).
_IP_PROTOCOLS = {0: "IPv6 hop-by-hop", 2: "IGMP", 4: "IP in IP", 41: "IPv6 in IP", 47: "GRE", 50: "ESP", 51: "AH",
                 88: "EIGRP", 89: "OSPF", 103: "PIM", 112: "VRRP", 115: "L2TP", 132: "SCTP"}
#: Share of the frames not analyzed from which the verdict no longer says "no problems found".
NOT_ANALYZED_SHARE = 0.5
#: The same for frames left out for reasons other than their protocol (checksums, undecodable,
#: tunnels too deep): they are TCP the analysis could have used.
LEFT_OUT_SHARE = 0.1

_CHECKSUM_KIND = {
    "offload_partial": "a TCP/UDP checksum holding only the pseudo-header sum (TX checksum offload)",
    "offload_ipv4_zero": "IPv4 header checksum 0x0000 (TX checksum offload)",
    "stale": "a wrong checksum on most frames of this sender (a rewritten or anonymised capture, or offload)",
    "left_out": "a wrong checksum: left out of connection state",
}


@dataclasses.dataclass
class CaptureInfo:
    """What the capture file says about itself, and what went wrong reading it."""

    path: str
    size: int | None
    format: str
    compression: str | None
    frames: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    interfaces: list[Interface] = dataclasses.field(default_factory=list)
    damage: DamageLog = dataclasses.field(default_factory=DamageLog)
    comments: dict[int, list[str]] = dataclasses.field(default_factory=dict)
    section_comments: list[str] = dataclasses.field(default_factory=list)
    comments_left_out: int = 0  # beyond reader.MAX_COMMENTS
    sections: int = 0
    ip_fragments: int = 0
    non_ip_frames: int = 0
    bytes_unread: int = 0
    engine: str = "fast"
    #: What the analysis could not use, and the checksum facts (:class:`Coverage`; set by
    #: :func:`pcapsleuth.analysis.analyze_capture` once the capture is read).
    coverage: Coverage | None = None

    @property
    def link_types(self) -> list[str]:
        seen: list[str] = []
        for iface in self.interfaces:
            name = LINKTYPE_NAMES.get(iface.linktype, f"LINKTYPE_{iface.linktype}")
            if name not in seen:
                seen.append(name)
        return seen

    @property
    def duration(self) -> float:
        if self.first_ts is None or self.last_ts is None:
            return 0.0
        return (self.last_ts - self.first_ts) / 1e9

    def to_dict(self) -> dict[str, Any]:
        """The JSON ``capture`` object (a public contract: add keys, never rename)."""
        from .util import iso_ts

        return {
            "path": self.path,
            "size": self.size,
            "format": self.format,
            "compression": self.compression,
            "engine": self.engine,
            "frames": self.frames,
            "first_ts": iso_ts(self.first_ts),
            "last_ts": iso_ts(self.last_ts),
            "duration": round(self.duration, 9),
            "link_types": self.link_types,
            "interfaces": [iface.to_dict() for iface in self.interfaces],
            "sections": self.sections,
            "ip_fragments": self.ip_fragments,
            "non_ip_frames": self.non_ip_frames,
            "comments": [{"frame": no, "comment": text} for no in sorted(self.comments)
                         for text in self.comments[no]],
            "section_comments": list(self.section_comments),
            "comments_left_out": self.comments_left_out,
            "damage": self.damage.to_list(),
            "bytes_unread": self.bytes_unread,
            **(self.coverage.to_dict() if self.coverage is not None else {}),
        }


@dataclasses.dataclass
class Coverage:
    """What an analysis left out, and why (issue 20: nothing left out silently).

    JSON keys in ``capture``, each present only when it has something to say: ``checksums``
    (per host and kind: frames whose checksum was not valid, and whether they were analyzed),
    ``not_analyzed`` (per reason: frames, what, and the flag or step that changes it) and
    ``one_direction`` (every TCP connection has frames of one side only).
    """

    frames: int = 0
    checksum_mode: str = "default"  # "default", "strict" (--strict-checksums) or "off" (--no-checksums)
    #: (host, kind) -> frames, kinds as ``Tracker.checksum_facts``.
    checksum_facts: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    #: reason -> frames (``Tracker.not_analyzed`` plus the checksum and tunnel counts).
    reasons: dict[str, int] = dataclasses.field(default_factory=dict)
    snaplen_cut: int = 0
    evicted: int = 0
    max_connections: int = 0
    tcp_connections: int = 0
    one_sided: tuple[int, int] = (0, 0)

    # -- facts ------------------------------------------------------------------------------------
    def checksum_list(self) -> list[dict[str, Any]]:
        analyzed = self.checksum_mode != "strict"
        rows = [{"host": host, "kind": kind, "frames": n, "analyzed": analyzed and kind != "left_out"}
                for (host, kind), n in self.checksum_facts.items()]
        return sorted(rows, key=lambda r: (r["kind"] == "left_out", -r["frames"], str(r["host"]), r["kind"]))

    @property
    def one_direction(self) -> bool:
        """Only one direction of the traffic was captured: every TCP connection shows one side
        only, and at least one of them ACKed, sent data or a FIN to a peer the capture lacks."""
        return self.tcp_connections > 0 and self.one_sided[0] == self.tcp_connections and self.one_sided[1] > 0

    def not_analyzed(self) -> list[dict[str, Any]]:
        """One row per reason: ``reason``, ``frames``, ``what`` (a phrase) and ``change`` (the flag or
        step that changes it; None when nothing does)."""
        r = self.reasons
        rows: list[dict[str, Any]] = []

        def row(reason: str, frames: int, what: str, change: str | None) -> None:
            if frames:
                rows.append({"reason": reason, "frames": frames, "what": what, "change": change})

        ck = r.get("checksum", 0)
        row("checksum", ck, "left out of connection state for a wrong checksum"
            + (" (every checksum that is not valid, offloaded ones included)" if self.checksum_mode == "strict"
               else " that neither offload nor a rewritten capture explains (capture.bad_checksum)"),
            "--no-checksums analyzes them as sent" + (", and without --strict-checksums offloaded checksums are "
                                                      "analyzed" if self.checksum_mode == "strict" else ""))
        row("undecodable", r.get("undecodable", 0), "undecodable (an IP or TCP header cut short or invalid: see "
            "damage)", None)
        row("tunnel_too_deep", r.get("tunnel_too_deep", 0), "inside tunnels nested beyond 500 protocol layers "
            "(tshark's limit)", None)
        row("tunnel_payload_not_decoded", r.get("tunnel_payload_not_decoded", 0), "GRE payloads that are not IP we "
            "decode (the outer packet is counted)", None)
        row("udp", r.get("udp", 0), "UDP: listed as connections (conn.log), not analyzed", None)
        row("icmp", r.get("icmp", 0), "ICMP: listed as connections (conn.log), not analyzed", None)
        for key in sorted((k for k in r if k.startswith("ip_proto_")), key=lambda k: int(k[9:])):
            num = int(key[9:])
            name = _IP_PROTOCOLS.get(num, f"IP protocol {num}")
            row(key, r[key], f"{name} (IP protocol {num}), not tracked" if num in _IP_PROTOCOLS
                else f"{name}, not tracked", None)
        row("not_ip", r.get("not_ip", 0), "not IP (ARP, LLDP, STP, ...), not tracked", None)
        return rows

    def left_out(self) -> int:
        """Frames of TCP the analysis could have used but did not (checksums, undecodable, tunnels)."""
        r = self.reasons
        return sum(r.get(k, 0) for k in ("checksum", "undecodable", "tunnel_too_deep", "tunnel_payload_not_decoded"))

    def not_analyzed_frames(self) -> int:
        return sum(row["frames"] for row in self.not_analyzed())

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        ck = self.checksum_list()
        if ck:
            d["checksums"] = ck
        rows = self.not_analyzed()
        if self.snaplen_cut:
            rows.append({"reason": "snaplen_cut_payload", "frames": self.snaplen_cut,
                         "what": "payload cut by the snapshot length: the bytes were sent but not captured (the "
                                 "headers are analyzed; not a gap in the connection, though missed_bytes and the "
                                 "history letter G count them as Zeek does)",
                         "change": "capture with a larger snapshot length (tcpdump -s 0)"})
        if self.evicted:
            rows.append({"reason": "evicted", "connections": self.evicted,
                         "what": f"connections finished early with more than {self.max_connections:,} open at once "
                                 "(a later frame of one starts a new, partial connection)",
                         "change": "--max-connections"})
        if rows:
            d["not_analyzed"] = rows
        if self.one_direction:
            d["one_direction"] = {"tcp_connections": self.tcp_connections, "talking_to_unseen_peer": self.one_sided[1]}
        return d

    # -- words --------------------------------------------------------------------------------------
    def checksum_lines(self) -> list[str]:
        """The checksum facts, one line per kind (offload names the capturing host)."""
        lines = []
        by_kind: dict[str, list[tuple[str, int]]] = {}
        for row in self.checksum_list():
            by_kind.setdefault(row["kind"], []).append((row["host"], row["frames"]))
        strict = self.checksum_mode == "strict"
        for kind in ("offload_partial", "offload_ipv4_zero", "stale"):
            hosts = by_kind.get(kind)
            if not hosts:
                continue
            who = hosts[0][0] if len(hosts) == 1 else ", ".join(f"{h} ({n:,} frames)" for h, n in hosts[:4]) + (
                f" and {len(hosts) - 4:,} more hosts" if len(hosts) > 4 else "")
            total = sum(n for _, n in hosts)
            if kind == "stale":
                head = (f"stale checksums on most frames of {who}: {total:,} frames, a rewritten or anonymised "
                        f"capture (or offload)")
            else:
                what = "partial TCP/UDP checksums" if kind == "offload_partial" else "IPv4 header checksum 0"
                if len(hosts) == 1:
                    head = f"checksum offload on {who}, the capturing host: {total:,} frames with {what}"
                else:  # (one machine sending as several addresses - loopback, a router - or a rewriting tool)
                    head = (f"checksums left for the NIC on frames of {len(hosts):,} hosts, {who}: {total:,} frames "
                            f"with "
                            f"{what} (a machine sending as each of them, or a tool that rewrote the capture)")
            lines.append(head + ("; left out (--strict-checksums)" if strict else "; analyzed as sent, not a problem"))
        return lines

    def not_analyzed_lines(self) -> list[str]:
        """One line per reason a frame was not analyzed, with what changes it."""
        out = []
        for row in self.not_analyzed():
            change = f" ({row['change']})" if row["change"] else ""
            out.append(f"{row['frames']:,} frames {row['what']}{change}")
        if self.evicted:
            out.append(f"{self.evicted:,} connections finished early with more than {self.max_connections:,} open at "
                       "once (--max-connections)")
        return out

    def snaplen_line(self) -> str | None:
        """Frames whose payload the snapshot length cut: sent, not captured (not a content gap)."""
        if not self.snaplen_cut:
            return None
        return (f"{self.snaplen_cut:,} frames with their payload cut by the snapshot length: the bytes were sent "
                "but not captured (headers analyzed; not a gap in the connection, though conn.log's missed_bytes "
                "and history letter G count them as Zeek does; tcpdump -s 0 keeps them)")

    def scope(self, findings: bool = False) -> tuple[str, str] | None:
        """What could not be judged, when that rules out "no problems found": (title, text), or
        None when the analysis covered enough of the capture to say so. ``findings``: there are
        findings (the text then does not say that the rest was clean)."""
        frames = self.frames
        na = self.not_analyzed_frames()
        not_ip = self.reasons.get("not_ip", 0)
        if not frames:
            return "Nothing to judge", "The capture holds no frames."
        if not_ip >= frames:
            return ("No IP traffic: nothing could be judged",
                    f"All {frames:,} frames are without IP (ARP, LLDP, STP, ...); pcapsleuth analyzes TCP over IP.")
        if not self.tcp_connections:
            return ("No TCP traffic: nothing could be judged",
                    f"{na:,} of {frames:,} frames were not analyzed (pcapsleuth analyzes TCP only): "
                    + self._reasons_phrase() + ".")
        if self.one_direction:
            return ("Only one direction of the traffic was captured",
                    (f"Each of the {self.tcp_connections:,} TCP connections has" if self.tcp_connections != 1
                     else "The only TCP connection has")
                    + " frames of one side only, which ACKed or sent data to a peer whose frames are not in the "
                    "capture (tcpdump -Q in/out, a one-way SPAN or tap, asymmetric routing): whatever the other "
                    "side did, answers, losses and delays included, could not be judged.")
        if na >= NOT_ANALYZED_SHARE * frames or self.left_out() >= LEFT_OUT_SHARE * frames:
            return ("Only part of the capture could be judged",
                    f"{na:,} of {frames:,} frames ({na / frames:.0%}) were not analyzed: " + self._reasons_phrase()
                    + ("." if findings else f". No problem was found in the {self.tcp_connections:,} TCP connection"
                                            f"{'s' if self.tcp_connections != 1 else ''} that were."))
        return None

    def _reasons_phrase(self) -> str:
        rows = self.not_analyzed()
        short = {"checksum": "a wrong checksum", "undecodable": "undecodable", "udp": "UDP", "icmp": "ICMP",
                 "not_ip": "not IP", "tunnel_too_deep": "tunnels too deep",
                 "tunnel_payload_not_decoded": "GRE payload not decoded"}
        return ", ".join(f"{row['frames']:,} {short.get(row['reason']) or row['what'].split(',')[0]}"
                         for row in rows) or "none"

    def clean_scope(self) -> str:
        """How far "no problems found" reaches (the verdict's text when :meth:`scope` is None)."""
        n = self.tcp_connections
        text = f"No problems found in the {n:,} TCP connection{'s' if n != 1 else ''}"
        na = self.not_analyzed_frames()
        if na:
            text += f"; {na:,} frames not analyzed ({self._reasons_phrase()}; pcapsleuth analyzes TCP only)"
        return text + "."


class Capture:
    """An open capture that yields decoded packets once, streaming.

    >>> with Capture("samples/basic/clean-ethernet.pcap") as cap:   # doctest: +SKIP
    ...     for pkt in cap:
    ...         print(pkt.no, pkt.src, pkt.flags)

    ``trust_partial_checksums``: a checksum field holding just the pseudo-header sum, as Linux
    writes it for loopback and offloading NICs, is reported OFFLOADED without summing the segment
    (see ``decode._check``): much faster on captures taken on the sending host, and the same
    analysis unless offloaded checksums are to count as bad (``strict_checksums``).
    """

    def __init__(self, source: Source, *, verify_checksums: bool = True, trust_partial_checksums: bool = False,
                 max_decompressed: int = 64 * 1024**3, max_expansion: float = MAX_EXPANSION) -> None:
        self.src: CaptureSource = open_capture(source, max_decompressed=max_decompressed,
                                               max_expansion=max_expansion)
        self.damage = DamageLog()
        self.records = RecordReader(self.src, self.damage)
        self.decoder = Decoder(self.damage, verify_checksums=verify_checksums,
                               trust_partial_checksums=trust_partial_checksums)
        self.info = CaptureInfo(path=self.src.path, size=self.src.size, format=self.src.format,
                                compression=self.src.compression, damage=self.damage)

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.src.close()

    def __iter__(self) -> Iterator[Packet]:
        # The reader hands each frame, in place in its buffer, straight to the decoder: one call
        # per frame between reading and a Packet (see Decoder.frame).
        try:
            yield from self.records.walk(self.decoder.frame)
        except OSError as exc:
            self.damage.add("truncated_file", self.records.frames + 1, f"read error: {exc}")
        finally:
            self._finish()

    def _finish(self) -> None:
        info, rec = self.info, self.records
        info.frames = rec.frames
        info.first_ts = rec.first_ts
        info.last_ts = rec.last_ts
        info.interfaces = rec.interfaces
        info.comments = rec.comments
        info.section_comments = rec.section_comments
        info.comments_left_out = rec.comments_left_out
        info.sections = rec.sections
        info.ip_fragments = self.decoder.ip_fragments
        info.non_ip_frames = self.decoder.non_ip
        info.bytes_unread = rec.bytes_unread


def read_packets(source: Source | os.PathLike[str], **kw: Any) -> tuple[list[Packet], CaptureInfo]:
    """Read every packet of a small capture into a list (tests and notebooks)."""
    with Capture(source, **kw) as cap:
        packets = list(cap)
    return packets, cap.info
