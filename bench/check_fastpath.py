#!/usr/bin/env python3
"""Check that the decoder's common path gives exactly what the general decoder gives.

    .venv/bin/python bench/check_fastpath.py                 # samples/ and the corpus
    .venv/bin/python bench/check_fastpath.py X.pcap ...      # these captures
    .venv/bin/python bench/check_fastpath.py --flips 200     # also 200 byte-flipped copies of each

Every frame is decoded twice: by ``Decoder.frame`` (in place, the common path, what analysis
uses) and by ``Decoder.decode`` on a copy of the frame (the general layer-by-layer decoder, which
the tshark cross-check and the decoder tests pin down). Packets must be equal field by field, with
the same types (an IntEnum stays an IntEnum), and the damage logged must be the same. The byte
flips land in the first 80 bytes of frames, where the common path decides whether it applies, so
the fallback conditions are exercised on malformed headers too. Exit status 1 on any difference.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pcapsleuth.decode import Decoder  # noqa: E402
from pcapsleuth.errors import PcapsleuthError  # noqa: E402
from pcapsleuth.packet import Packet  # noqa: E402
from pcapsleuth.reader import DamageLog, RecordReader, open_capture  # noqa: E402


def captures() -> list[Path]:
    corpus = Path(os.environ.get("PCAPSLEUTH_CORPUS", ROOT.parent / "shared" / "corpus"))
    found: list[Path] = []
    for base in (ROOT / "samples", corpus):
        for path in sorted(base.rglob("*")):
            if path.is_file() and path.suffix in (".pcap", ".pcapng", ".cap", ".gz", ".trace", ".dump"):
                found.append(path)
    return found


def compare(source: bytes | Path, name: str, verify: bool, trust: bool = False) -> tuple[int, list[str]]:
    """Decode every frame both ways; returns (frames, differences)."""
    try:
        src = open_capture(source)
    except PcapsleuthError:
        return 0, []
    fast_damage, ref_damage = DamageLog(), DamageLog()
    fast = Decoder(fast_damage, verify_checksums=verify, trust_partial_checksums=trust)
    ref = Decoder(ref_damage, verify_checksums=verify, trust_partial_checksums=trust)
    diffs: list[str] = []

    def both(buf: bytes, start: int, caplen: int, wirelen: int, no: int, ts: int, iface: int, direction: int,
             linktype: int) -> int:
        a = fast.frame(buf, start, caplen, wirelen, no, ts, iface, direction, linktype)
        data = buf[start:start + caplen] if iface >= 0 else b""
        b = ref.decode(no, ts, caplen, wirelen, iface, data, direction, linktype)
        if len(diffs) < 20:
            for field, x, y in zip(Packet._fields, a, b, strict=True):
                if x != y or type(x) is not type(y):
                    diffs.append(f"{name} frame {no}: {field} fast={x!r} general={y!r}")
        return no

    reader = RecordReader(src, DamageLog())
    try:
        for _ in reader.walk(both):
            pass
    finally:
        src.close()
    frames = reader.frames
    if fast_damage.to_list() != ref_damage.to_list():
        diffs.append(f"{name}: damage fast={fast_damage.to_list()} general={ref_damage.to_list()}")
    if (fast.non_ip, fast.ip_fragments) != (ref.non_ip, ref.ip_fragments):
        diffs.append(f"{name}: counters fast={(fast.non_ip, fast.ip_fragments)} "
                     f"general={(ref.non_ip, ref.ip_fragments)}")
    return frames, diffs


def flipped(data: bytes, rng: random.Random) -> bytes:
    """A copy with bytes changed in the first 80 bytes of a few frames (little-endian pcap only)."""
    if data[:4] not in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        return data
    starts: list[tuple[int, int]] = []
    pos = 24
    while pos + 16 <= len(data):
        caplen = int.from_bytes(data[pos + 8:pos + 12], "little")
        starts.append((pos + 16, caplen))
        pos += 16 + caplen
    buf = bytearray(data)
    for _ in range(min(len(starts), 20)):
        start, caplen = rng.choice(starts)
        if caplen > 0:
            at = start + rng.randrange(min(caplen, 80))
            if at < len(buf):
                buf[at] = rng.randrange(256) if rng.random() < 0.7 else buf[at] ^ (1 << rng.randrange(8))
    return bytes(buf)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("captures", nargs="*", type=Path)
    ap.add_argument("--flips", type=int, default=0, help="byte-flipped copies per pcap capture (default 0)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    paths = args.captures or captures()
    total = 0
    problems: list[str] = []
    for path in paths:
        for verify, trust in ((True, False), (True, True), (False, False)):
            frames, diffs = compare(path, str(path), verify, trust)
            total += frames
            problems += diffs
        if args.flips and path.stat().st_size < 2_000_000:
            data: Any = path.read_bytes()
            for i in range(args.flips):
                frames, diffs = compare(flipped(data, rng), f"{path} flip#{i}", True)
                total += frames
                problems += diffs
    for line in problems[:50]:
        print(line)
    print(f"check_fastpath: {len(paths)} captures, {total:,} frame decodings compared, {len(problems)} differences")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
