"""A second pass over a capture file for the packets a report needs but memory did not keep.

The analysis keeps only a few packets per connection (``Connection.evidence``: the first 48 and
up to 64 SYN/FIN/RST packets). Evidence tables, ladders and time-sequence graphs sometimes need
others; these functions read the file again with the fast decoder and decode only the frames
asked for, stopping as soon as the last one is behind them.
"""

from __future__ import annotations

import os
import stat
import struct
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .capture import Capture
from .packet import Packet
from .reader import MAX_EXPANSION, Source

if TYPE_CHECKING:
    from .digest import ConnRecord
    from .tracker import Connection

__all__ = ["connection_packets", "connections_packets", "fetch_frames", "packets_for", "packets_from", "rereadable"]

#: What the CLI and the API call a capture that was a stream, read once: never opened again
#: (``-`` is standard input: reading it a second time would wait on the terminal, or find nothing).
_STREAM_NAMES = frozenset({"-", "/dev/stdin", "<stdin>", "<stream>", "<bytes>"})


def rereadable(path: Source | os.PathLike[str] | None) -> bool:
    """Whether the capture ``path`` names can be read a second time for the packets memory did
    not keep: a regular file (or one that is gone: reading it then fails, and says so), bytes, a
    seekable file object; not standard input, a pipe, a device or a name that stands for a stream."""
    if path is None:
        return False
    if isinstance(path, (bytes, bytearray, memoryview)):
        return True
    if not isinstance(path, (str, os.PathLike)):
        try:
            return bool(path.seekable())
        except (AttributeError, OSError, ValueError):
            return False
    name = os.fspath(path)
    if name in _STREAM_NAMES or name.startswith(("/dev/fd/", "/proc/self/fd/")):
        return False
    try:
        return stat.S_ISREG(os.stat(name).st_mode)
    except (OSError, ValueError):
        return True  # moved or removed since: the second reading fails, and is reported as such


def fetch_frames(path: Source | os.PathLike[str], frames: Iterable[int], *, verify_checksums: bool = True,
                 max_decompressed: int = 64 * 1024**3, max_expansion: float = MAX_EXPANSION) -> dict[int, Packet]:
    """Decode the given frame numbers (1-based) of a capture; frames beyond its end are absent.

    Raises :class:`~pcapsleuth.errors.PcapsleuthError` when the file cannot be read again.
    """
    want = set(frames)
    out: dict[int, Packet] = {}
    if not want:
        return out
    last = max(want)
    with Capture(path, verify_checksums=verify_checksums, max_decompressed=max_decompressed,
                 max_expansion=max_expansion) as cap:
        decode = cap.decoder.decode
        ifaces = cap.records.interfaces
        for no, ts, caplen, wirelen, iface, data, direction in cap.records:
            if no in want:
                if iface < 0:
                    out[no] = decode(no, ts, caplen, wirelen, iface, b"", direction, -1)
                else:
                    out[no] = decode(no, ts, caplen, wirelen, iface, data, direction, ifaces[iface].linktype)
            if no >= last:
                break
    return out


def _key(proto: int | None, a: tuple[str, int], b: tuple[str, int]) -> tuple[int | None, tuple[str, int],
                                                                               tuple[str, int]]:
    return (proto, a, b) if a <= b else (proto, b, a)


def _tuple_key(p: Packet) -> tuple[int | None, tuple[str, int], tuple[str, int]] | None:
    if p.src is None or p.dst is None:
        return None
    return _key(p.proto, (p.src, -1 if p.sport is None else p.sport), (p.dst, -1 if p.dport is None else p.dport))


def connection_packets(path: Source | os.PathLike[str], conn: Connection, *, limit: int = 20_000,
                       verify_checksums: bool = True, max_decompressed: int = 64 * 1024**3,
                       max_expansion: float = MAX_EXPANSION) -> list[Packet]:
    """All packets of one connection: its 4-tuple, either direction, from its first to its last frame.

    When the connection's evidence already holds every packet it had, no file is read. At most
    ``limit`` packets are returned (the first ones).
    """
    return connections_packets(path, [conn], limit=limit, verify_checksums=verify_checksums,
                               max_decompressed=max_decompressed, max_expansion=max_expansion)[conn.uid]


def connections_packets(path: Source | os.PathLike[str], conns: Iterable[Connection | ConnRecord], *,
                        limit: int = 20_000, verify_checksums: bool = True,
                        max_decompressed: int = 64 * 1024**3,
                        max_expansion: float = MAX_EXPANSION) -> dict[str, list[Packet]]:
    """:func:`connection_packets` for several connections in one pass over the file.

    Only frames whose bytes hold one of the wanted port pairs (as the TCP/UDP header has them:
    source port then destination port, network order) are decoded; on a big capture that is
    most of the saving.
    """
    out: dict[str, list[Packet]] = {}
    # A reused 4-tuple is several connections: each packet goes to the one whose frames it is in.
    wanted: dict[tuple[int | None, tuple[str, int], tuple[str, int]],
                 list[tuple[Connection | ConnRecord, list[Packet]]]] = {}
    needles: set[bytes] = set()
    for c in conns:
        # Every packet in memory: no need to read the file. Segments left out of the connection for
        # a bad checksum are not in its packet counts nor its evidence, but they were on the wire
        # (a corrupted original before its resend): those are read from the file, for a connection
        # in memory as for one read back from its JSON line.
        held_out = getattr(c.orig, "bad_checksums", 0) + getattr(c.resp, "bad_checksums", 0)
        if not held_out and len(c.evidence) >= c.orig.pkts + c.resp.pkts:
            out[c.uid] = list(c.evidence[:limit])
            continue
        o, r = c.orig, c.resp
        op, rp = -1 if o.port is None else o.port, -1 if r.port is None else r.port
        proto = {"tcp": 6, "udp": 17}.get(c.proto)
        lst: list[Packet] = []
        out[c.uid] = lst
        wanted.setdefault(_key(proto, (o.addr, op), (r.addr, rp)), []).append((c, lst))
        if 0 <= op <= 0xFFFF and 0 <= rp <= 0xFFFF:
            needles.add(struct.pack("!HH", op, rp))
            needles.add(struct.pack("!HH", rp, op))
        else:
            needles.add(b"")  # no port pair to look for: decode everything in range
    if not wanted:
        return out
    pairs = [pair for group in wanted.values() for pair in group]
    first = min(c.first_frame for c, _ in pairs)
    last = max(c.last_frame for c, _ in pairs)
    open_lists = len(pairs)
    with Capture(path, verify_checksums=verify_checksums, max_decompressed=max_decompressed,
                 max_expansion=max_expansion) as cap:
        decode = cap.decoder.decode
        ifaces = cap.records.interfaces
        for no, ts, caplen, wirelen, iface, data, direction in cap.records:
            if no < first or iface < 0:
                continue
            if no > last or not open_lists:
                break
            if not any(n in data for n in needles):
                continue
            p = decode(no, ts, caplen, wirelen, iface, data, direction, ifaces[iface].linktype)
            key = _tuple_key(p)
            for c, lst in wanted.get(key, ()) if key is not None else ():
                if c.first_frame <= no <= c.last_frame:
                    if len(lst) < limit:
                        lst.append(p)
                        if len(lst) == limit:
                            open_lists -= 1
                    break
    return out


def packets_for(path: Source | os.PathLike[str] | None, frames: Iterable[int], conns: Iterable[Connection],
                **kw: bool | int) -> tuple[dict[int, Packet], set[int]]:
    """The packets of ``frames``: from the connections' evidence in memory first, the rest from the file.

    Returns ``(packets by frame, frames that could not be had)``. A file that cannot be read
    again (moved, stdin, a stream) leaves its frames in the second set instead of raising.
    """
    return packets_from(path, frames, (c.evidence for c in conns), **kw)


def packets_from(path: Source | os.PathLike[str] | None, frames: Iterable[int], held: Iterable[Iterable[Packet]],
                 **kw: bool | int) -> tuple[dict[int, Packet], set[int]]:
    """:func:`packets_for` with the packets in memory given as lists (``held``), not connections."""
    want = set(frames)
    have: dict[int, Packet] = {}
    for pkts in held:
        for p in pkts:
            if p.no in want:
                have[p.no] = p
    missing = want - have.keys()
    if missing and isinstance(path, (str, os.PathLike)) and rereadable(path):
        from .errors import PcapsleuthError

        try:
            have.update(fetch_frames(path, missing, **kw))  # type: ignore[arg-type]
        except (PcapsleuthError, OSError):
            pass
        missing = want - have.keys()
    return have, missing
