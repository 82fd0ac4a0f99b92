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

__all__ = ["Capture", "CaptureInfo", "read_packets"]


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
        }


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
