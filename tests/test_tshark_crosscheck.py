"""Wireshark is the oracle: every frame of every sample and corpus trace, field by field.

For each capture tshark runs once (``-T fields``) and our fast engine once; frame count, frame
number, timestamp (integer ns), innermost addresses, ports, TCP flags/seq/ack/length and the TCP/UDP
checksum verdict must all be equal. A disagreement report is written to
``tests/_reports/tshark_crosscheck.txt`` (per capture: frames compared, mismatches by field with examples).

Choosing the occurrence of a field
----------------------------------
tshark is asked for *all* occurrences (``-E occurrence=a``) together with ``frame.protocols``, and the
test picks the one our decoder describes, rather than ``-E occurrence=l``:

* addresses: the innermost ``ip``/``ipv6`` layer - *innermost* because we decapsulate tunnels (GRE,
  VXLAN, Teredo, GTP, IP-in-IP) like Zeek does - but the walk stops at ``icmp``/``icmpv6``: an ICMP
  error quotes the offending IP/TCP header, and ``occurrence=l`` would report the quoted addresses
  and ports as if they were the frame's own. We (and Zeek) describe the ICMP packet itself.
* ports, flags, seq, ack, length: the first ``tcp``/``udp`` layer *after* that innermost IP layer. With
  ``occurrence=l`` a VXLAN frame carrying TCP would still be fine, but a UDP tunnel carrying UDP
  inside ICMP would not; the stack walk is exact in every case.
* ``ip.src`` and ``ipv6.src`` are separate fields; the layer kind in ``frame.protocols`` says which
  list (and which index in it) belongs to the innermost header, so 6in4 and 4in6 work too.

tshark options that mirror our decoding
---------------------------------------
* ``-n``: addresses and ports as numbers.
* ``-o tcp.check_checksum:TRUE -o udp.check_checksum:TRUE``: Wireshark then verifies checksums, so
  our GOOD/BAD verdict has an oracle (our OFFLOADED is a BAD checksum that Linux will fill in later;
  Wireshark reports it as bad).
* ``-d udp.port==8472,vxlan``: we take 8472 (Linux's pre-IANA VXLAN port) as VXLAN like Zeek; Wireshark
  only knows 4789 by default. GENEVE 6081, GTP-U 2152 and Teredo 3544 are registered in both.
* IP fragments: Wireshark reassembles IPv4 and IPv6 by default and shows TCP on the completing frame;
  so do we (``Frag.REASSEMBLED``), and non-completing fragments have no ports on either side.
* FabricPath: Wireshark's ``cfp`` dissector is enabled by default (heuristic list ``eth cfp T``).
* Raw sequence numbers (``tcp.seq_raw``) make ``tcp.analyze_sequence_numbers`` irrelevant.

Where Wireshark is demonstrably wrong, the exception is narrow and proven per frame (see
``_FCS_APPENDED`` and ``_checksum_proves_ours``); nothing is excluded by link type today
(``EXCLUDED_LINKTYPES`` is empty: every link type in the samples and corpus is decoded by both engines).
"""

from __future__ import annotations

import asyncio
import collections
import os
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import REPO, sample_captures, zeek_items, zeek_trace  # noqa: E402

from pcapsleuth.capture import read_packets  # noqa: E402
from pcapsleuth.engine_tshark import TsharkCapture  # noqa: E402
from pcapsleuth.errors import EngineError  # noqa: E402
from pcapsleuth.packet import Cksum, Frag, Packet  # noqa: E402

REPORT = Path(__file__).resolve().parent / "_reports" / "tshark_crosscheck.txt"

#: Link types neither engine decodes, with the reason. Frames of these are not compared.
#: Empty: every capture in samples/ and the corpus uses a link type both engines decode.
EXCLUDED_LINKTYPES: dict[int, str] = {}

#: Captures whose frames carry no FCS although Wireshark's dissector assumes one. tshark is fed a
#: copy with 4 zero bytes appended to every record, so the bytes it strips as "FCS" are the fake
#: ones and every real byte is dissected; the copy lives in pytest's tmp dir, never in the repo.
_FCS_APPENDED = {
    "cisco-fabric-path": (
        "Wireshark's cfp dissector always takes the last 4 bytes of a FabricPath frame as its FCS "
        "(packet-cfp.c, no preference turns it off). These frames have none: each is exactly "
        "16 (FabricPath) + 14 (inner Ethernet) + the IP length bytes long, or padded to 60 - the Ethernet "
        "minimum *without* FCS, 64 with one (asserted below) - and "
        "the TCP/UDP checksums computed over the full lengths verify - tshark itself reports them "
        "good once it is given a fake FCS to strip. Without it, tshark loses the last 4 bytes of every "
        "frame: it shows no tcp.len for frame 34 and no ipv6.dst for frame 114."
    ),
}

FIELDS = [
    "frame.number", "frame.time_epoch", "frame.protocols",
    "ip.src", "ip.dst", "ipv6.src", "ipv6.dst",
    "tcp.srcport", "tcp.dstport", "tcp.flags", "tcp.seq_raw", "tcp.ack_raw", "tcp.len", "tcp.checksum.status",
    "udp.srcport", "udp.dstport", "udp.checksum.status", "ip.checksum.status",
]
COMPARED = ("no", "ts", "src", "dst", "sport", "dport", "flags", "seq", "ack", "len", "cksum")
TSHARK_OPTS = ["-n", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
               "-d", "udp.port==8472,vxlan", "--enable-heuristic", "teredo_udp"]


def _captures() -> list[tuple[str, Path]]:
    out = [(f"samples/{p.relative_to(REPO / 'samples')}", p) for p in sample_captures()]
    out += [(f"zeek/{item.name}", zeek_trace(item)) for item in zeek_items()]
    return out


CAPTURES = _captures()


def _ts_ns(text: str) -> int:
    """frame.time_epoch as printed by tshark (``sec.nnnnnnnnn``) to integer ns, with no float."""
    sec, _, frac = text.partition(".")
    return int(sec) * 1_000_000_000 + int((frac + "000000000")[:9])


def tshark_fields(tshark: str, path: Path) -> list[dict[str, list[str]]]:
    cmd = [tshark, *TSHARK_OPTS, "-r", str(path), "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=|"]
    for field in FIELDS:
        cmd += ["-e", field]
    run = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert run.returncode in (0, 2), f"tshark failed on {path}: {run.stderr.strip()}"  # 2: file cut short
    rows = []
    for line in run.stdout.splitlines():
        cols = line.split("\t")
        rows.append({f: (c.split("|") if c else []) for f, c in zip(FIELDS, cols, strict=False)})
    return rows


def expected(row: dict[str, list[str]]) -> dict[str, Any]:
    """The values our Packet must have, chosen from tshark's occurrences by the protocol stack."""
    stack = row["frame.protocols"][0].split(":") if row["frame.protocols"] else []
    seen: collections.Counter[str] = collections.Counter()
    ip_at: tuple[str, int] | None = None
    tr_at: tuple[str, int] | None = None
    for layer in stack:
        if layer in ("icmp", "icmpv6"):
            break  # what follows is the quoted header of an ICMP error
        if layer in ("ip", "ipv6"):
            ip_at, tr_at = (layer, seen[layer]), None
        elif layer in ("tcp", "udp") and ip_at is not None and tr_at is None:
            tr_at = (layer, seen[layer])
        seen[layer] += 1

    def pick(field: str, at: tuple[str, int] | None) -> str | None:
        values = row[field]
        return values[at[1]] if at is not None and at[1] < len(values) else None

    e: dict[str, Any] = {"no": int(row["frame.number"][0]), "ts": _ts_ns(row["frame.time_epoch"][0])}
    e["src"] = pick(f"{ip_at[0]}.src", ip_at) if ip_at else None
    e["dst"] = pick(f"{ip_at[0]}.dst", ip_at) if ip_at else None
    e.update(sport=None, dport=None, flags=None, seq=None, ack=None, len=None, cksum=None)
    if tr_at is not None:
        kind = tr_at[0]
        e["sport"], e["dport"] = pick(f"{kind}.srcport", tr_at), pick(f"{kind}.dstport", tr_at)
        e["cksum"] = pick(f"{kind}.checksum.status", tr_at)
        if "0" in row.get("ip.checksum.status", []):
            e["cksum"] = "ip-bad"  # a bad IPv4 header checksum anywhere on the path decides
        if kind == "tcp":
            e["flags"], e["seq"] = pick("tcp.flags", tr_at), pick("tcp.seq_raw", tr_at)
            e["ack"], e["len"] = pick("tcp.ack_raw", tr_at), pick("tcp.len", tr_at)
    return e


#: Wireshark's tcp/udp.checksum.status: 0 bad, 1 good, 2 unverified.
_CKSUM_STATUS = {Cksum.UNCHECKED: "2", Cksum.GOOD: "1", Cksum.BAD: "0", Cksum.OFFLOADED: "0",
                 Cksum.BAD_IP: "ip-bad", Cksum.ZERO_IP: "ip-bad"}  # (Wireshark: an IPv4 checksum 0 is bad)


def ours(p: Packet) -> dict[str, Any]:
    has_l4 = p.proto in (6, 17) and p.sport is not None and p.frag != Frag.FRAGMENT
    tcp = has_l4 and p.proto == 6
    return {
        "no": p.no, "ts": p.ts, "src": p.src, "dst": p.dst,
        "sport": str(p.sport) if has_l4 else None,
        "dport": str(p.dport) if has_l4 else None,
        "flags": f"0x{p.flags:04x}" if tcp and p.flags is not None else None,
        "seq": str(p.seq) if tcp and p.seq is not None else None,
        "ack": str(p.ack) if tcp and p.ack is not None else None,
        "len": str(p.payload_len) if tcp and p.payload_len is not None else None,
        "cksum": _CKSUM_STATUS[Cksum(p.cksum)] if has_l4 else None,
    }


def _checksum_proves_ours(exp: dict[str, Any], got: dict[str, Any], fields: set[str]) -> bool:
    """Wireshark's segment length fails its own checksum while ours passes: ours is proven right.

    zeek pppoe-over-qinq frame 19 (and 5 like it): the PPPoE header says 42 bytes, the IPv4 total length 46.
    Wireshark trusts PPPoE (tcp.len 0) and then reports the TCP checksum bad; over the 26 bytes the IP
    header announces, the checksum verifies. A wrong length passing a 16-bit checksum by chance is a
    1-in-65535 event, so only the length and the checksum verdict may differ, and only like this.
    """
    return fields <= {"len", "cksum"} and exp["cksum"] == "0" and got["cksum"] == "1"


def _append_fake_fcs(src: Path, dst: Path) -> None:
    """Copy a classic pcap adding 4 zero bytes to every record (see _FCS_APPENDED); also check the
    claim that each FabricPath frame is exactly 30 bytes + the inner IP length (no FCS)."""
    data = src.read_bytes()
    order = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
    out = bytearray(data[:24])
    pos = 24
    while pos + 16 <= len(data):
        sec, usec, caplen, wirelen = struct.unpack_from(order + "IIII", data, pos)
        frame = data[pos + 16:pos + 16 + caplen]
        if frame[12:14] == b"\x89\x03" and caplen == wirelen:
            etype = frame[28:30]
            if etype == b"\x08\x00":
                assert caplen == max(60, 30 + struct.unpack_from("!H", frame, 32)[0]), "FabricPath frame with an FCS"
            elif etype == b"\x86\xdd":
                assert caplen == max(60, 70 + struct.unpack_from("!H", frame, 34)[0]), "FabricPath frame with an FCS"
        out += struct.pack(order + "IIII", sec, usec, caplen + 4, wirelen + 4) + frame + b"\0\0\0\0"
        pos += 16 + caplen
    dst.write_bytes(bytes(out))


class Result:
    def __init__(self, name: str) -> None:
        self.name = name
        self.frames = 0
        self.tshark_frames = 0
        self.mismatch: collections.Counter[str] = collections.Counter()
        self.examples: dict[str, str] = {}
        self.justified: list[str] = []
        self.excluded = 0
        self.note = ""

    def ok(self) -> bool:
        return not self.mismatch


def crosscheck(tshark: str, name: str, path: Path, tmp: Path) -> Result:
    res = Result(name)
    item = name.split("/", 1)[1]
    oracle_input = path
    if item in _FCS_APPENDED:
        oracle_input = tmp / f"{item}.fcs.pcap"
        _append_fake_fcs(path, oracle_input)
        res.note = "tshark given a copy with a fake 4-byte FCS per frame (see _FCS_APPENDED)"
    rows = tshark_fields(tshark, oracle_input)
    packets, _info = read_packets(path)
    res.tshark_frames = len(rows)
    if len(rows) != len(packets):
        res.mismatch["frame count"] += 1
        res.examples["frame count"] = f"tshark {len(rows)}, ours {len(packets)}"
    for row, pkt in zip(rows, packets, strict=False):
        if pkt.linktype in EXCLUDED_LINKTYPES:
            res.excluded += 1
            continue
        res.frames += 1
        exp, got = expected(row), ours(pkt)
        bad = {k for k in COMPARED if exp[k] != got[k]}
        if not bad:
            continue
        if _checksum_proves_ours(exp, got, bad):
            res.justified.append(f"frame {exp['no']}: tshark tcp.len {exp['len']} fails its checksum; "
                                 f"ours {got['len']} passes it")
            continue
        for k in sorted(bad):
            res.mismatch[k] += 1
            res.examples.setdefault(k, f"frame {exp['no']}: tshark {exp[k]!r}, ours {got[k]!r} "
                                       f"(stack {':'.join(row['frame.protocols'])}, encap {pkt.encap})")
    return res


@pytest.fixture(scope="module")
def results(tshark: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    tmp = tmp_path_factory.mktemp("crosscheck")
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {name: pool.submit(crosscheck, tshark, name, path, tmp) for name, path in CAPTURES}
        out = {name: f.result() for name, f in futures.items()}
    _write_report(out)
    return out


def _write_report(results: dict[str, Result]) -> None:
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    frames = sum(r.frames for r in results.values())
    bad = sum(sum(r.mismatch.values()) for r in results.values())
    lines = [
        "tshark cross-check: fast engine vs Wireshark, frame by frame",
        f"fields: {', '.join(COMPARED)}",
        f"captures: {len(results)}  frames compared: {frames}  field mismatches: {bad}  "
        f"captures agreeing: {sum(r.ok() for r in results.values())}/{len(results)}",
        f"excluded link types: {EXCLUDED_LINKTYPES or 'none'}",
        "",
    ]
    for name in sorted(results):
        r = results[name]
        lines.append(f"{name}: {r.frames} frames compared (tshark {r.tshark_frames})"
                     f"{', excluded ' + str(r.excluded) if r.excluded else ''} - {'OK' if r.ok() else 'MISMATCH'}")
        if r.note:
            lines.append(f"    note: {r.note}")
        for field, count in sorted(r.mismatch.items()):
            lines.append(f"    {field}: {count} mismatches, e.g. {r.examples[field]}")
        for text in r.justified:
            lines.append(f"    justified: {text}")
    REPORT.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_corpus_and_samples_are_present() -> None:
    names = [name for name, _ in CAPTURES]
    assert sum(n.startswith("zeek/") for n in names) >= 100, "the public corpus is missing"


@pytest.mark.parametrize("name", [name for name, _ in CAPTURES])
def test_agrees_with_wireshark(results: dict[str, Result], name: str) -> None:
    r = results[name]
    detail = "; ".join(f"{k}: {v} ({r.examples[k]})" for k, v in r.mismatch.items())
    assert r.ok(), f"{name} disagrees with tshark: {detail} (report: {REPORT})"
    assert r.frames + r.excluded == r.tshark_frames


def test_justified_disagreements_are_only_the_known_ones(results: dict[str, Result]) -> None:
    """The checksum escape hatch must not silently grow: only zeek/pppoe-over-qinq uses it (its
    padded frames whose PPPoE length is 6 bytes short of the IP total length; see the report)."""
    justified = {name for name, r in results.items() if r.justified}
    assert justified <= {"zeek/pppoe-over-qinq"}, justified


def test_report_written(results: dict[str, Result]) -> None:
    text = REPORT.read_text(encoding="utf-8")
    assert f"captures: {len(CAPTURES)}" in text
    for name in results:
        assert name in text


# -- the tshark engine against the fast engine -------------------------------------------------------
ENGINE_ITEMS = ["linux_dlt_sll2", "tunnels__vxlan-encapsulated-http", "tunnels__gre-sample", "tunnels__Teredo",
                "pbb", "mixed-vlan-mpls", "ipv4__fragmented-syn", "pcapng-multi-interface", "nflog-http",
                "chksums__localhost-bad-chksum", "chksums__ip6-route0-tcp-bad-chksum", "llc", "tcp__reassembly",
                "tcp__rst-inject-rae"]
#: ``note`` is free text explaining why decoding stopped; the engines word it differently.
ENGINE_FIELDS = [f for f in Packet._fields if f != "note"]


def _engine_diff(path: Path) -> list[str]:
    fast, _ = read_packets(path)
    with TsharkCapture(path) as cap:
        slow = list(cap)
    info = cap.info
    diffs = []
    if len(fast) != len(slow):
        diffs.append(f"frame count: fast {len(fast)}, tshark {len(slow)}")
    for a, b in zip(fast, slow, strict=False):
        for field in ENGINE_FIELDS:
            if getattr(a, field) != getattr(b, field):
                diffs.append(f"frame {a.no} {field}: fast {getattr(a, field)!r}, tshark {getattr(b, field)!r}")
    assert info.engine == "tshark"
    assert info.frames == len(slow)
    if slow:
        assert info.first_ts == min(p.ts for p in slow) and info.last_ts == max(p.ts for p in slow)
    assert info.link_types
    return diffs


@pytest.mark.parametrize("item", ENGINE_ITEMS)
def test_tshark_engine_matches_fast_engine(corpus: Path, item: str) -> None:
    diffs = _engine_diff(zeek_trace(corpus / item))
    assert not diffs, f"{item}: {len(diffs)} differences, first: {diffs[:5]}"


def test_tshark_engine_inside_a_running_event_loop(corpus: Path) -> None:
    """pyshark alone fails here ("This event loop is already running"); the engine runs it in a thread."""
    path = zeek_trace(corpus / "tunnels__vxlan-encapsulated-http")

    async def inside() -> list[Packet]:
        assert asyncio.get_running_loop().is_running()
        with TsharkCapture(path) as cap:
            return list(cap)

    packets = asyncio.run(inside())
    fast, _ = read_packets(path)
    assert [(p.no, p.src, p.sport, p.seq) for p in packets] == [(p.no, p.src, p.sport, p.seq) for p in fast]


def test_tshark_engine_stops_early_without_leaking(corpus: Path) -> None:
    path = zeek_trace(corpus / "echo-connections")
    with TsharkCapture(path) as cap:
        first = [p for _, p in zip(range(5), cap, strict=False)]
    assert [p.no for p in first] == [1, 2, 3, 4, 5]


def test_tshark_engine_reads_compressed_input(corpus: Path, tmp_path: Path) -> None:
    import gzip
    import lzma

    raw = zeek_trace(corpus / "tcp__missing-syn").read_bytes()
    target = tmp_path / "trace.pcap"  # misleading name: the format is found by magic
    target.write_bytes(lzma.compress(raw))
    with TsharkCapture(target) as cap:
        xz = [p.seq for p in cap]
    with TsharkCapture(gzip.compress(raw)) as cap:
        gz = [p.seq for p in cap]
    fast, _ = read_packets(raw)
    assert xz == gz == [p.seq for p in fast]
    assert cap.info.compression == "gzip"


def test_tshark_engine_missing_tshark(corpus: Path) -> None:
    with pytest.raises(EngineError) as err:
        TsharkCapture(zeek_trace(corpus / "tcp__syn"), tshark_path="/nonexistent/tshark")
    assert "tshark not found" in str(err.value) and "\n" not in str(err.value)


def test_tshark_engine_failing_tshark(corpus: Path, tmp_path: Path) -> None:
    fake = tmp_path / "tshark"
    fake.write_text("#!/bin/sh\necho 'tshark: broken install' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(EngineError) as err:
        TsharkCapture(zeek_trace(corpus / "tcp__syn"), tshark_path=str(fake))
    assert "broken install" in str(err.value) and "\n" not in str(err.value)


def test_cli_routes_to_tshark_engine(corpus: Path) -> None:
    import io
    import json

    from pcapsleuth.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = main(["analyze", str(zeek_trace(corpus / "linux_dlt_sll2")), "--engine", "tshark", "--json", "-"],
                stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    doc = json.loads(out.getvalue())
    assert doc["capture"]["engine"] == "tshark"
    assert doc["capture"]["frames"] == 6
    assert doc["capture"]["link_types"] == ["LINUX_SLL2"]
