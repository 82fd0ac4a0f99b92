"""conn.log writer: header exactly as Zeek writes it, values round-trip through a Zeek-log parser."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import pytest

from pcapsleuth.analysis import analyze_capture
from pcapsleuth.connlog import CONN_FIELDS, CONN_TYPES, write_conn_log

sys.path.insert(0, str(Path(__file__).resolve().parent))
import zeek_oracle as zo  # noqa: E402

# A Zeek conn.log from the corpus with the default column set (btest scripts.base.protocols.ssh.basic).
REFERENCE = "ssh__ssh"

TCP_CONN = {
    "uid": "C000001", "orig_h": "192.168.1.79", "orig_p": 51880, "resp_h": "131.159.21.1", "resp_p": 22,
    "proto": "tcp", "ip_version": 4, "first_ts": "2011-03-18T19:06:07.096535400Z",
    "last_ts": "2011-03-18T19:06:13.255861000Z", "duration": 6.159326, "orig_bytes": 2669,
    "resp_bytes": 2501, "conn_state": "SF", "missed_bytes": 0, "history": "ShAdDaFf", "orig_pkts": 25,
    "orig_ip_bytes": 3981, "resp_pkts": 20, "resp_ip_bytes": 3549,
    "community_id": "1:xxxxxxxxxxxxxxxxxxxxxxxxxxx=",
}
ONE_PACKET_UDP = {
    "uid": "C000002", "orig_h": "fe80::1", "orig_p": 5353, "resp_h": "ff02::fb", "resp_p": 5353,
    "proto": "udp", "ip_version": 6, "first_ts": "2011-03-18T19:06:05.000000000Z",
    "last_ts": "2011-03-18T19:06:05.000000000Z", "duration": 0.0, "orig_bytes": 45, "resp_bytes": 0,
    "conn_state": "S0", "missed_bytes": 0, "history": "D", "orig_pkts": 1, "orig_ip_bytes": 73,
    "resp_pkts": 0, "resp_ip_bytes": 0, "community_id": None,
}
ICMP_NO_HISTORY = {
    "uid": "C000003", "orig_h": "10.0.0.1", "orig_p": 8, "resp_h": "10.0.0.2", "resp_p": 0, "proto": "icmp",
    "first_ts": "2011-03-18T19:06:20.999999999Z", "last_ts": "2011-03-18T19:06:21.5Z", "duration": 0.500001,
    "history": "", "conn_state": "OTH", "tunnel_parents": ["Cb", "Ca,x"], "service": "-",
}


class Obj:
    def __init__(self, d: dict[str, Any]) -> None:
        self.d = d

    def to_dict(self) -> dict[str, Any]:
        return dict(self.d)


def write(conns: list[Any], **kw: Any) -> str:
    buf = io.StringIO()
    write_conn_log(conns, buf, **kw)
    return buf.getvalue()


def test_header_is_zeeks() -> None:
    ref = zo.parse_zeek_log((zo.zeek_root() / REFERENCE / "conn.log").read_text())
    ours = zo.parse_zeek_log(write([TCP_CONN]))
    assert ref.fmt == ours.fmt == "tsv"
    # Same column set and order as Zeek's default conn.log, plus community_id as the
    # community-id-logging policy script appends it.
    assert ours.fields == ref.fields + ["community_id"]
    assert ours.types == (ref.types or []) + ["string"]
    assert list(CONN_FIELDS) == ours.fields and list(CONN_TYPES) == ours.types
    # Header lines byte for byte, except #open/#close (btest masks them) and #fields/#types.
    ref_lines = [ln for ln in ref.header_lines if not ln.startswith(("#open", "#close", "#fields", "#types"))]
    our_lines = [ln for ln in ours.header_lines if not ln.startswith(("#open", "#close", "#fields", "#types"))]
    assert our_lines == ref_lines == ["#separator \\x09", "#set_separator\t,", "#empty_field\t(empty)",
                                      "#unset_field\t-", "#path\tconn"]
    text = write([TCP_CONN])
    lines = text.splitlines()
    assert lines[0] == "#separator \\x09"
    assert lines[5] == "#open\t2011-03-18-19-06-07"
    assert lines[-1] == "#close\t2011-03-18-19-06-13"
    assert text.endswith("\n")


def test_round_trip_values() -> None:
    log = zo.parse_zeek_log(write([TCP_CONN, Obj(ONE_PACKET_UDP), ICMP_NO_HISTORY]))
    rows = [log.typed(r) for r in log.rows]
    assert len(rows) == 3
    tcp, udp, icmp = rows
    assert log.rows[0]["ts"] == "1300475167.096535"  # 096535400 ns rounds down to the microsecond
    assert log.rows[0]["duration"] == "6.159326"
    assert tcp == {
        "ts": 1300475167.096535, "uid": "C000001", "id.orig_h": "192.168.1.79", "id.orig_p": 51880,
        "id.resp_h": "131.159.21.1", "id.resp_p": 22, "proto": "tcp", "service": None, "duration": 6.159326,
        "orig_bytes": 2669, "resp_bytes": 2501, "conn_state": "SF", "local_orig": None, "local_resp": None,
        "missed_bytes": 0, "history": "ShAdDaFf", "orig_pkts": 25, "orig_ip_bytes": 3981, "resp_pkts": 20,
        "resp_ip_bytes": 3549, "tunnel_parents": None, "ip_proto": 6,
        "community_id": "1:xxxxxxxxxxxxxxxxxxxxxxxxxxx=",
    }
    # Zeek leaves duration and byte counts unset for a zero-length connection.
    assert (udp["duration"], udp["orig_bytes"], udp["resp_bytes"]) == (None, None, None)
    assert (udp["id.orig_h"], udp["ip_proto"], udp["community_id"], udp["orig_pkts"]) == ("fe80::1", 17, None, 1)
    assert log.rows[2]["ts"] == "1300475181.000000"  # .999999999 rounds up
    assert icmp["history"] is None and log.rows[2]["history"] == "-"  # empty history is unset
    assert icmp["ip_proto"] == 1 and icmp["orig_bytes"] is None
    assert log.rows[2]["tunnel_parents"] == "Ca\\x2cx,Cb"  # set elements sorted, separator escaped
    assert log.rows[2]["service"] == "\\x2d"  # a literal "-" must not read as unset


def test_deterministic_and_open_close() -> None:
    a = write([TCP_CONN, ONE_PACKET_UDP])
    assert a == write([TCP_CONN, ONE_PACKET_UDP])
    lines = a.splitlines()
    assert lines[5] == "#open\t2011-03-18-19-06-05"  # earliest first_ts, not the first row's
    assert lines[-1] == "#close\t2011-03-18-19-06-13"
    b = write([], open_ts=1_300_000_000_000_000_000, close_ts=1_300_000_100_000_000_000, path="conn_x")
    assert b.splitlines()[4:6] == ["#path\tconn_x", "#open\t2011-03-13-07-06-40"]
    assert b.splitlines()[-1] == "#close\t2011-03-13-07-08-20"
    assert zo.parse_zeek_log(b).rows == []


@pytest.mark.parametrize("item", ["ssh__ssh", "wikipedia", "tunnels__Teredo", "ftp__ipv6"])
def test_round_trip_real_analysis(item: str) -> None:
    """Our connections of a corpus trace survive write -> Zeek-log parse unchanged."""
    res = analyze_capture(zo.trace_file(item), verify_checksums=False)
    conns = [c.to_dict() for c in res.connections]
    assert conns, item
    log = zo.parse_zeek_log(write(res.connections))
    assert len(log.rows) == len(conns)
    for d, raw in zip(conns, log.rows, strict=True):
        r = log.typed(raw)
        assert (r["uid"], r["id.orig_h"], r["id.orig_p"], r["id.resp_h"], r["id.resp_p"], r["proto"]) == (
            d["uid"], d["orig_h"], d["orig_p"], d["resp_h"], d["resp_p"], d["proto"])
        assert r["conn_state"] == d["conn_state"]
        assert r["history"] == (d["history"] or None)
        assert (r["orig_pkts"], r["resp_pkts"]) == (d["orig_pkts"], d["resp_pkts"])
        assert r["community_id"] == d["community_id"]
        assert raw["ts"].count(".") == 1 and len(raw["ts"].split(".")[1]) == 6
    lines = write(res.connections).splitlines()
    # #open/#close: earliest first_ts / latest last_ts of the connections, second resolution, UTC.
    first = min(d["first_ts"] for d in conns)  # ISO 8601 UTC strings sort chronologically
    last = max(d["last_ts"] for d in conns)
    assert lines[5] == "#open\t" + first[:19].replace("T", "-").replace(":", "-")
    assert lines[-1] == "#close\t" + last[:19].replace("T", "-").replace(":", "-")


def test_parser_reads_every_corpus_conn_log() -> None:
    """The parser behind these round trips handles every conn log shape in the corpus."""
    shapes = set()
    for b in zo.conn_baselines():
        log = zo.read_baseline(b)
        shapes.add(log.fmt)
        assert log.rows or b.trace == "pcapng-multi-interface", b.key
        for raw in log.rows:
            log.typed(raw)
        if log.fmt == "tsv":
            assert log.types is not None and len(log.types) == len(log.fields)
            assert log.meta["path"] == "conn" and log.meta["unset_field"] == "-"
    assert shapes == {"tsv", "cut", "headerless"}
    renamed = zo.read_baseline(next(b for b in zo.conn_baselines() if b.trace == "auth_change_session_keys"))
    assert renamed.typed(renamed.rows[0])["id.orig_p"] == 49159
