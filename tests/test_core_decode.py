"""The Rust decoder (``pcapsleuth._core.decode_capture``, crates/core/src/decode) against the
Python one (``pcapsleuth.decode.Decoder``, as ``capture.Capture`` drives it).

The Python decoder is the oracle: on every capture under samples/, tests/malformed/,
tests/fuzz_regressions/ and the public corpus (zeek and tcpdump), in the three checksum modes
(not verified; verified; verified trusting partial fields), every frame the Rust decoder gives
must equal Python's :class:`~pcapsleuth.packet.Packet` field by field (addresses, MACs and notes
formatted here from the core's bytes and codes), and the capture's damage (kinds, counts,
frames, details: the reader's and the decoder's together), ``non_ip`` and ``ip_fragments`` must
be equal. Frames of the link types the core leaves to dpkt (802.11, radiotap, PFLOG) must be
exactly those Python hands to dpkt, with the frame's own fields equal; Python decodes them (on
the corpus, 216 such frames a mode, dpkt finds IP in none and the damage is equal with them).

A failure lists every file that differs, with the first differing frame and field per mode.
"""

from __future__ import annotations

import random
import socket
import struct
import sys
from array import array
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import REPO, corpus_root, sample_captures  # noqa: E402

from pcapsleuth import _core  # noqa: E402
from pcapsleuth.capture import Capture  # noqa: E402
from pcapsleuth.errors import PcapsleuthError  # noqa: E402
from pcapsleuth.packet import Packet  # noqa: E402

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".gz", ".bz2", ".xz", ".txt")
#: (verify_checksums, trust_partial_checksums): off, the default, the trusting one.
MODES = ((False, False), (True, False), (True, True))
#: Link types the core leaves to dpkt (decode.Decoder._dpkt_fallback).
DPKT_LINKTYPES = frozenset((105, 117, 127))
#: The frame's own fields (the reader's), which the core fills for a frame left to dpkt too.
FRAME_FIELDS = Packet._fields.index("src_mac")

#: Documented differences: (file name, mode index) -> why. A Python-side bug found by the
#: comparison goes here with its explanation rather than into the Rust port. None so far.
EXPECTED: dict[tuple[str, int], str] = {}

def _col(cols: dict[str, bytes], name: str, fmt: str) -> list[int]:
    """A little-endian column as a list (the core writes little-endian whatever the host)."""
    a = array(fmt)
    a.frombytes(cols[name])
    if sys.byteorder == "big":
        a.byteswap()
    return a.tolist()


def rust_packets(path: str, verify: bool, trust: bool) -> tuple[list[Packet], list[bool], Any]:
    """The core's packets as :class:`Packet` tuples, which frames it left to dpkt, and the rest."""
    out = _core.decode_capture(path, verify, trust)
    c = out["columns"]
    n = out["n"]
    ints = {name: _col(c, name, fmt) for name, fmt in (
        ("no", "Q"), ("ts", "q"), ("caplen", "I"), ("wirelen", "I"), ("iface", "i"), ("direction", "B"),
        ("linktype", "i"), ("encap", "i"), ("ip_version", "B"), ("ttl", "B"), ("ip_id", "I"), ("df", "B"),
        ("frag", "B"), ("proto", "B"), ("sport", "H"), ("dport", "H"), ("seq", "I"), ("ack", "I"),
        ("flags", "H"), ("window", "H"), ("payload_len", "q"), ("cksum", "B"), ("pkttype", "H"),
        ("ifindex", "I"), ("note", "i"), ("vlan_offsets", "I"), ("vlan", "H"), ("options_offsets", "I"))}
    valid = {name: c[name + "_valid"] for name in ("src_mac", "ttl", "ip_id", "df", "proto", "sport", "dport", "seq",
                                                    "ack", "flags", "window", "options", "payload_len", "pkttype",
                                                    "ifindex")}
    macs, src, dst, opts = c["src_mac"], c["src"], c["dst"], c["options"]
    encaps, notes, left = out["encap"], out["note"], c["left_to_dpkt"]

    def opt(name: str, i: int, value: Any = None) -> Any:
        if not valid[name][i]:
            return None
        return ints[name][i] if value is None else value

    def addr(version: int, b: bytes) -> str | None:
        if version == 4:
            return socket.inet_ntop(socket.AF_INET, b[:4])
        if version == 6:
            return socket.inet_ntop(socket.AF_INET6, b)
        return None

    packets = []
    for i in range(n):
        v = ints["ip_version"][i]
        vo, oo = ints["vlan_offsets"], ints["options_offsets"]
        packets.append(Packet(
            ints["no"][i], ints["ts"][i], ints["caplen"][i], ints["wirelen"][i], ints["iface"][i],
            ints["direction"][i], ints["linktype"][i], opt("src_mac", i, macs[6 * i:6 * i + 6].hex(":")),
            tuple(ints["vlan"][vo[i]:vo[i + 1]]), encaps[ints["encap"][i]] if ints["encap"][i] >= 0 else None, v,
            addr(v, src[16 * i:16 * i + 16]), addr(v, dst[16 * i:16 * i + 16]), opt("ttl", i), opt("ip_id", i),
            opt("df", i, bool(ints["df"][i])), ints["frag"][i], opt("proto", i), opt("sport", i), opt("dport", i),
            opt("seq", i), opt("ack", i), opt("flags", i), opt("window", i),
            opt("options", i, bytes(opts[oo[i]:oo[i + 1]])), opt("payload_len", i), ints["cksum"][i],
            opt("pkttype", i), opt("ifindex", i), notes[ints["note"][i]] if ints["note"][i] >= 0 else None))
    return packets, [bool(x) for x in left], out


def python_packets(path: str, verify: bool, trust: bool) -> tuple[list[Packet], dict[str, Any]]:
    error = None
    cap = Capture(path, verify_checksums=verify, trust_partial_checksums=trust)
    packets: list[Packet] = []
    try:
        for p in cap:
            packets.append(p)
    except PcapsleuthError as exc:
        error = (type(exc).__name__, str(exc))
    finally:
        cap.close()
    return packets, {"damage": cap.damage.to_list(), "non_ip": cap.decoder.non_ip,
                     "ip_fragments": cap.decoder.ip_fragments, "error": error}


def diff(path: str, verify: bool, trust: bool) -> tuple[list[str], int]:
    """How the two decoders differ on ``path`` in one mode (nothing when they agree), and the
    frames compared."""
    try:
        py, pinfo = python_packets(path, verify, trust)
    except PcapsleuthError as exc:
        try:
            _core.decode_capture(path, verify, trust)
        except PcapsleuthError as rexc:
            same = (type(exc), str(exc)) == (type(rexc), str(rexc))
            return ([] if same else [f"open error: python {exc!r} rust {rexc!r}"]), 0
        return [f"python cannot open it ({exc}), rust can"], 0
    rs, left, rinfo = rust_packets(path, verify, trust)
    out = []
    if len(py) != len(rs):
        out.append(f"frames: python {len(py)} rust {len(rs)}")
    shown = 0
    for a, b, to_dpkt in zip(py, rs, left, strict=False):
        if to_dpkt != (a.linktype in DPKT_LINKTYPES):
            out.append(f"frame {a.no}: left to dpkt {to_dpkt}, linktype {a.linktype}")
        elif to_dpkt:
            if a[:FRAME_FIELDS] != b[:FRAME_FIELDS]:
                out.append(f"frame {a.no} (left to dpkt): python {a[:FRAME_FIELDS]} rust {b[:FRAME_FIELDS]}")
        elif a != b:
            fields = [f"{name}: python {x!r} rust {y!r}" for name, x, y in zip(Packet._fields, a, b, strict=True)
                      if x != y]
            out.append(f"frame {a.no}: " + ", ".join(fields))
        else:
            continue
        shown += 1
        if shown >= 3:
            break
    # The core counts a frame it leaves to dpkt as without IP; Python, once dpkt found IP in it.
    to_dpkt_ip = sum(1 for a, to_dpkt in zip(py, left, strict=False) if to_dpkt and a.ip_version)
    e = rinfo["error"]
    rust = {"damage": rinfo["info"]["damage"], "non_ip": rinfo["non_ip"] - to_dpkt_ip,
            "ip_fragments": rinfo["ip_fragments"], "error": (type(e).__name__, str(e)) if e is not None else None}
    for key, value in rust.items():
        if pinfo[key] != value:
            out.append(f"{key}: python {pinfo[key]} rust {value}")
    return out, len(py)


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name.endswith(CAPTURE_SUFFIXES))


def _check(paths: list[Path], at_least: int) -> None:
    assert len(paths) >= at_least, f"only {len(paths)} captures found"
    mismatches, frames = [], 0
    for p in paths:
        for m, (verify, trust) in enumerate(MODES):
            problems, n = diff(str(p), verify, trust)
            frames += n
            why = EXPECTED.get((p.name, m))
            if problems and not why:
                mismatches.append(f"{p} (mode {m}): " + "; ".join(problems))
            elif why and not problems:
                mismatches.append(f"{p} (mode {m}): expected to differ ({why}) but equal: drop it from EXPECTED")
    assert not mismatches, f"{len(mismatches)} of {len(paths) * len(MODES)} decodings differ:\n" + "\n".join(mismatches)
    assert frames > 0


def test_samples() -> None:
    _check(sample_captures(), at_least=30)


def test_malformed_and_fuzz_regressions() -> None:
    _check(_files(REPO / "tests" / "malformed") + _files(REPO / "tests" / "fuzz_regressions"), at_least=20)


@pytest.mark.parametrize("corpus_name,at_least", [("zeek", 100), ("tcpdump", 800)])
def test_public_corpus(corpus: Path, corpus_name: str, at_least: int) -> None:
    _check(_files(corpus_root() / corpus_name), at_least=at_least)


def _mutants(rng: random.Random, frame: bytes, count: int) -> list[bytes]:
    """``count`` variants of ``frame``: bytes set at random or to a value some header switches on
    (a version nibble, a protocol number, an ethertype byte), or the frame cut."""
    out = []
    for _ in range(count):
        b = bytearray(frame)
        for _ in range(rng.choice((1, 1, 2, 3, 8))):
            if not b:
                break
            i, op = rng.randrange(len(b)), rng.random()
            if op < 0.6:
                b[i] = rng.randrange(256)
            elif op < 0.8:
                b[i] = rng.choice((0, 0xFF, 0x45, 0x60, 4, 6, 17, 41, 47, 0x08, 0x81, 0x88))
            else:
                del b[i:]
        out.append(bytes(b))
    return out


def test_mutated_frames(tmp_path: Path) -> None:
    """Frames of every committed and corpus capture (a few a file), mutated (seeded), written to a
    pcap per link type with wire lengths at or beyond the frame: the decoders agree on each."""
    rng = random.Random(21)
    seeds: dict[int, list[bytes]] = {}
    for p in sample_captures() + _files(corpus_root() / "zeek") + _files(corpus_root() / "tcpdump"):
        try:
            reader = _core.open_capture(str(p))
            batch = reader.read_batch(2000)
        except PcapsleuthError:
            continue
        for f in batch[:3] + rng.sample(batch[3:], min(2, len(batch[3:]))):
            if f[2] >= 0 and f[2] not in DPKT_LINKTYPES:
                seeds.setdefault(f[2], []).append(f[7])
    assert len(seeds) > 20 and len(seeds[1]) > 500
    problems, frames = [], 0
    for linktype, found in sorted(seeds.items()):
        records = []
        for i, frame in enumerate(m for f in found for m in _mutants(rng, f, 8)):
            wirelen = len(frame) + rng.choice((0, 0, 0, 4, 100))
            records.append(struct.pack("<IIII", i, 0, len(frame), wirelen) + frame)
        path = tmp_path / f"mutated-{linktype}.pcap"
        path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype) + b"".join(records))
        for m, (verify, trust) in enumerate(MODES):
            differ, n = diff(str(path), verify, trust)
            frames += n
            if differ:
                problems.append(f"link type {linktype} (mode {m}): " + "; ".join(differ))
    assert not problems, "\n".join(problems)
    assert frames > 30_000


def test_decode_capture_bytes_and_errors(tmp_path: Path) -> None:
    """A capture given as bytes decodes as the same file does; unusable input raises the reader's
    error class, as the Python reader does."""
    path = REPO / "samples" / "basic" / "clean-ethernet.pcap"
    a = _core.decode_capture(str(path))
    b = _core.decode_capture(path.read_bytes())
    assert a["n"] > 0 and a["columns"] == b["columns"]
    bad = tmp_path / "not-a-capture.pcap"
    bad.write_bytes(b"hello, world, this is no capture")
    with pytest.raises(PcapsleuthError):
        _core.decode_capture(str(bad))
