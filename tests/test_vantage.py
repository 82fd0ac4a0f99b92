"""Several captures of one incident analysed together (issue 10, pcapsleuth.vantage).

The real samples were recorded at the same time at several points of a namespace network
(samples/incidents/record.sh: client, balancer, backend; samples/anomalies/record.sh: both sides
of a router that drops every 40th data segment). All namespaces share the host's clock, so the
true clock offset between any two of these captures is 0: every estimated interval must hold it.
Edge cases (NAT, rewritten windows, copies at a forwarding point, retransmissions, a clock offset
of seconds) are built with dpkt.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import dpkt
import pytest

from pcapsleuth.cli import main
from pcapsleuth.vantage import analyze_vantage_points

from . import _build as b
from .conftest import SAMPLES

INC = SAMPLES / "incidents"
ANOM = SAMPLES / "anomalies"
LB_CLIENT, LB_BALANCER, LB_BACKEND = INC / "lb-client.pcap", INC / "lb-balancer.pcap", INC / "lb-backend.pcap"
LOSSY_CLIENT, LOSSY_SERVER = ANOM / "lossy-client.pcap", ANOM / "lossy-server.pcap"


def _ids(v: object) -> list[str]:
    return [f.id for f in v.findings]  # type: ignore[attr-defined]


def _one(v: object, fid: str) -> object:
    found = [f for f in v.findings if f.id == fid]  # type: ignore[attr-defined]
    assert len(found) == 1, (fid, _ids(v))
    return found[0]


def _lb_rsts() -> list[int]:
    """The client's RST frames that came from the balancer's MAC (README: 4, 10, 14), read here
    with our own reader so that the test does not restate them."""
    from pcapsleuth import read_packets

    pkts, _ = read_packets(LB_CLIENT)
    return [p.no for p in pkts if p.flags is not None and p.flags & 0x004 and p.src == "10.202.0.100"]


# -- the load-balancer incident --------------------------------------------------------------------
def test_client_and_backend_show_the_rst_the_backend_never_sent() -> None:
    v = analyze_vantage_points([LB_CLIENT, LB_BACKEND], ["client", "backend"])
    f = _one(v, "vantage.foreign_reply")
    ev = f.evidence  # type: ignore[attr-defined]
    rsts = _lb_rsts()
    assert len(rsts) == 3
    assert f.frames == rsts  # type: ignore[attr-defined]
    assert ev["seen_at"] == "client" and ev["endpoint_capture"] == "backend"
    assert ev["claimed_source"] == "10.202.0.100:80"
    # Frames in both captures: the RSTs at the client; at the backend the SYNs they answer and
    # the SYN-ACKs the backend really sent.
    assert set(rsts) <= set(ev["frames_at"]["client"])
    from pcapsleuth import read_packets

    backend, _ = read_packets(LB_BACKEND)
    syns = [p.no for p in backend if p.flags == 0x002]
    synacks = [p.no for p in backend if p.flags == 0x012]
    assert ev["frames_at"]["backend"] == sorted(syns + synacks)
    assert not any(p.flags is not None and p.flags & 0x004 and p.src == "10.202.0.100" for p in backend)
    # Seen by the client alone: no capture says who sent it, and the text says so.
    assert ev["sent_by"] is None and ev["first_seen_at"] == "client"
    assert "02:00:0a:ca:00:02" in f.explanation  # type: ignore[attr-defined]
    assert "never sent" in f.summary  # type: ignore[attr-defined]


def test_with_the_balancer_the_rst_is_attributed_to_the_balancer() -> None:
    v = analyze_vantage_points([LB_CLIENT, LB_BALANCER, LB_BACKEND], ["client", "balancer", "backend"])
    f = _one(v, "vantage.foreign_reply")
    ev = f.evidence  # type: ignore[attr-defined]
    assert ev["sent_by"] == "balancer" and ev["first_seen_at"] == "balancer"
    from pcapsleuth import read_packets

    bal, _ = read_packets(LB_BALANCER)
    own_rsts = [p.no for p in bal if p.flags is not None and p.flags & 0x004 and p.src == "10.202.0.100"]
    assert own_rsts and set(own_rsts) <= set(ev["frames_at"]["balancer"])
    assert ev["sent_by_mac"] == "02:00:0a:ca:00:02"
    # The balancer forwards the client's frames with its own MAC: that is how the MAC is known to be its own.
    assert v.points[1].own_macs == {"02:00:0a:ca:00:02"}
    assert "balancer's own network stack sent them" in f.explanation  # type: ignore[attr-defined]
    # The one-line summary (terminal, tickets) names the sender too.
    assert "balancer sent them" in f.summary  # type: ignore[attr-defined]
    # Path view: the RST rows start at the balancer and are missing at the backend ("not sent").
    rows = [r for r in v.path_rows() if r["status"] == "foreign"]
    assert len(rows) == 3
    for r in rows:
        assert r["at"]["backend"] is None and r["missed"] == {"backend": "not_sent"}
        assert r["delays"][0]["from"] == "balancer" and r["delays"][0]["to"] == "client"


def test_the_fixed_balancer_gives_no_vantage_finding() -> None:
    v = analyze_vantage_points([INC / "lb-fixed-client.pcap", INC / "lb-fixed-balancer.pcap",
                                INC / "lb-fixed-backend.pcap"])
    assert _ids(v) == []
    # Direct server return: replies never pass the balancer, and that is not "missed".
    assert all(not pp.missed for pc in v.paths for pp in pc.packets)
    for c in v.clock:
        assert c.uncertainty_ns is not None and c.lower_ns is not None and c.upper_ns is not None
        assert c.lower_ns <= 0 <= c.upper_ns, c


@pytest.mark.parametrize("files", [[LB_CLIENT, LB_BACKEND], [LB_CLIENT, LB_BALANCER, LB_BACKEND],
                                   [LOSSY_CLIENT, LOSSY_SERVER]], ids=["lb2", "lb3", "lossy"])
def test_clock_offset_is_reported_with_an_interval_holding_the_truth(files: list[Path]) -> None:
    v = analyze_vantage_points(files)
    assert v.clock[0].method == "reference"
    for c in v.clock[1:]:
        assert c.method == "bounds" and c.uncertainty_ns is not None and c.offset_ns is not None
        assert c.lower_ns is not None and c.upper_ns is not None
        # Same host, same clock: the true offset is 0.
        assert c.lower_ns <= 0 <= c.upper_ns, c
        assert abs(c.offset_ns) <= c.uncertainty_ns < 1_000_000  # well under a millisecond
    doc = v.to_json_dict()
    for c in doc["vantage"]["clock"][1:]:
        assert isinstance(c["offset_s"], float) and isinstance(c["uncertainty_s"], float)


# -- loss on both sides of a router ----------------------------------------------------------------
def test_lossy_lost_between_matches_the_routers_drop_count() -> None:
    facts = json.loads((ANOM / "lossy.facts.json").read_text())
    v = analyze_vantage_points([LOSSY_CLIENT, LOSSY_SERVER], ["client", "server"])
    f = _one(v, "vantage.lost_between")
    ev = f.evidence  # type: ignore[attr-defined]
    assert ev["lost"] == facts["dropped"] == facts["iptables"]["drop_rule_packets"]
    assert ev["from"] == "client" and ev["to"] == "server"
    match = facts["capture_match"]  # the recorder's own independent matching (pcapcheck.py)
    assert f.frames == match["missing_at_server_client_frames"]  # type: ignore[attr-defined]
    # Every lost segment carried data and was retransmitted; the retransmissions got through.
    assert ev["data_segments"] == ev["lost"] == ev["retransmitted"] == ev["retransmission_got_through"]
    assert ev["retransmitted"] == facts["sender_total_retrans"]
    assert ev["frames_at"]["client_retransmissions"] == match["client_side_retransmitted_data_frames"]
    # Nothing else is wrong: every packet the server saw was matched, nothing is foreign.
    assert _ids(v) == ["vantage.lost_between"]
    assert v.pairs[0].matched == facts["pcaps"]["lossy-server.pcap"]["frames"]
    assert [int(t) for t in ev["ttl_from"]] == match["ttl_client_side"]
    assert [int(t) for t in ev["ttl_to"]] == match["ttl_server_side"]


def test_captures_that_share_nothing_are_explained() -> None:
    v = analyze_vantage_points([LB_CLIENT, LOSSY_SERVER])
    f = _one(v, "vantage.no_overlap")
    assert f.severity == "info"  # type: ignore[attr-defined]
    assert f.evidence["overlap_in_time"] is False  # type: ignore[attr-defined]
    assert "do not overlap in time" in f.summary  # type: ignore[attr-defined]
    assert v.clock[1].offset_ns is None and v.clock[1].method == "unknown"
    assert _ids(v) == ["vantage.no_overlap"]


# -- the command line and the report ---------------------------------------------------------------
def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_cli_analyzes_several_captures_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = _run("analyze", str(LB_CLIENT), str(LB_BALANCER), str(LB_BACKEND), "--name", "client",
                          "--name", "balancer", "--json", "v.json", "--fail-on", "error")
    assert code == 1, err  # --fail-on error: the vantage finding is an error
    assert "vantage.foreign_reply" in out and "clock      balancer:" in out
    doc = json.loads((tmp_path / "v.json").read_text())
    assert set(doc) == {"vantage_points", "vantage", "findings"}
    assert [p["name"] for p in doc["vantage_points"]] == ["client", "balancer", "lb-backend"]
    for p in doc["vantage_points"]:
        assert set(p) >= {"name", "capture", "connections", "findings"}
    assert {"reference", "clock", "pairs", "paths"} <= set(doc["vantage"])
    assert [f["id"] for f in doc["findings"]] == ["vantage.foreign_reply"]
    row = doc["vantage"]["paths"][0]["rows"][0]
    assert set(row["at"]) == {"client", "balancer", "lb-backend"}
    report = tmp_path / "lb-client+lb-balancer+lb-backend.pcapsleuth.html"
    assert out.rstrip().endswith(f"report: {report.name}")
    html = report.read_text(encoding="utf-8")
    assert 'data-vantage-finding-id="vantage.foreign_reply"' in html
    assert html.count('data-plot="vantage-ladder"') >= 1 and "<svg" in html
    assert re.search(r'<tr data-point="balancer">', html)
    # Still self-contained: nothing is fetched from anywhere.
    assert not re.search(r'(src|href)="(https?:)?//', html)


def test_cli_separate_keeps_one_analysis_per_capture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = _run("analyze", str(LB_CLIENT), str(LB_BACKEND), "--separate", "--no-html", "--json", "-")
    assert code == 0, err
    # Two separate single-capture documents, as before vantage analysis existed.
    docs = [json.loads(part) for part in re.split(r"(?<=\n})\n(?=\{)", out.strip())]
    assert [set(d) for d in docs] == [{"capture", "tracking", "connections", "findings"}] * 2


def test_cli_rejects_more_names_than_captures() -> None:
    code, _, err = _run("analyze", str(LB_CLIENT), str(LB_BACKEND), "--name", "a", "--name", "b", "--name", "c")
    assert code == 2 and err.count("\n") == 1 and "--name" in err


def test_capture_text_is_escaped_in_the_vantage_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = _run("analyze", str(LB_CLIENT), str(LB_BACKEND), "--name", "<b>x</b>", "--html", "r.html", "-q")
    assert code == 0, err
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


# -- dpkt-built edge cases -------------------------------------------------------------------------
C_IP, S_IP, NAT_IP = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), bytes([192, 0, 2, 1])
MAC_C, MAC_S, MAC_R = bytes.fromhex("020000000001"), bytes.fromhex("020000000002"), bytes.fromhex("0200000000fe")
T0 = 1_700_000_000_000_000_000
DELAY = 200_000  # one way, between the two points


def _conversation() -> list[dict[str, int | str]]:
    """A small client->server exchange: handshake, two data segments, FIN both ways."""
    A, S, F, P = dpkt.tcp.TH_ACK, dpkt.tcp.TH_SYN, dpkt.tcp.TH_FIN, dpkt.tcp.TH_PUSH
    return [
        {"t": 0, "frm": "c", "seq": 1000, "ack": 0, "flags": S, "len": 0, "id": 100},
        {"t": 300_000, "frm": "s", "seq": 5000, "ack": 1001, "flags": S | A, "len": 0, "id": 0},
        {"t": 600_000, "frm": "c", "seq": 1001, "ack": 5001, "flags": A, "len": 0, "id": 101},
        {"t": 700_000, "frm": "c", "seq": 1001, "ack": 5001, "flags": A | P, "len": 100, "id": 102},
        {"t": 710_000, "frm": "c", "seq": 1101, "ack": 5001, "flags": A | P, "len": 100, "id": 103},
        {"t": 1_000_000, "frm": "s", "seq": 5001, "ack": 1201, "flags": A, "len": 0, "id": 1},
        {"t": 1_200_000, "frm": "c", "seq": 1201, "ack": 5001, "flags": F | A, "len": 0, "id": 104},
        {"t": 1_500_000, "frm": "s", "seq": 5001, "ack": 1202, "flags": F | A, "len": 0, "id": 2},
        {"t": 1_800_000, "frm": "c", "seq": 1202, "ack": 5002, "flags": A, "len": 0, "id": 105},
    ]


def _frame(pk: dict[str, int | str], *, src: bytes, dst: bytes, sport: int, dport: int, ttl: int, mac: bytes,
           win: int = 65535, opts: bytes = b"") -> bytes:
    seg = b.tcp(sport=sport, dport=dport, seq=int(pk["seq"]), ack=int(pk["ack"]), flags=int(pk["flags"]),
                payload=b"x" * int(pk["len"]), win=win, opts=opts)
    return b.eth(b.ip4(seg, src=src, dst=dst, ttl=ttl, ip_id=int(pk["id"])), src=mac)


def _write(tmp: Path, pkts: list[dict[str, int | str]], *, theta: int = 0, nat: bool = False,
           drop_at_server: tuple[int, ...] = (), server_window: int | None = None, copies_at_server: bool = False,
           server_mss: int | None = None) -> tuple[Path, Path]:
    """The same packets as the client side (point A) and the server side (point B, one router
    further: TTL one less, the router's MAC) saw them. B's clock runs ``theta`` ns ahead; ``nat``
    rewrites the client's address and port between the points; indexes in ``drop_at_server`` never
    reach B; ``server_window``/``server_mss`` rewrite the client's window / MSS option on the way."""
    a, bb = [], []
    for i, pk in enumerate(pkts):
        t = T0 + int(pk["t"])
        c_at_b = (NAT_IP, 50000) if nat else (C_IP, 40000)
        if pk["frm"] == "c":
            opts = b"\x02\x04\x05\xb4" if int(pk["flags"]) & dpkt.tcp.TH_SYN else b""
            a.append((t, _frame(pk, src=C_IP, dst=S_IP, sport=40000, dport=80, ttl=64, mac=MAC_C, opts=opts)))
            if i in drop_at_server:
                continue
            bopts = opts
            if server_mss is not None and opts:
                bopts = b"\x02\x04" + server_mss.to_bytes(2, "big")
            fr = _frame(pk, src=c_at_b[0], dst=S_IP, sport=c_at_b[1], dport=80, ttl=63, mac=MAC_R,
                        win=server_window if server_window is not None else 65535, opts=bopts)
            bb.append((t + DELAY + theta, fr))
            if copies_at_server:  # a forwarding host at B sends its copy on with its own MAC
                fr2 = _frame(pk, src=c_at_b[0], dst=S_IP, sport=c_at_b[1], dport=80, ttl=63, mac=MAC_S,
                             win=server_window if server_window is not None else 65535, opts=bopts)
                bb.append((t + DELAY + theta + 20_000, fr2))
        else:
            bb.append((t + theta, _frame(pk, src=S_IP, dst=c_at_b[0], sport=80, dport=c_at_b[1], ttl=64, mac=MAC_S)))
            a.append((t + DELAY, _frame(pk, src=S_IP, dst=C_IP, sport=80, dport=40000, ttl=63, mac=MAC_R)))
    pa, pb = tmp / "a.pcap", tmp / "b.pcap"
    pa.write_bytes(b.pcap(sorted(a), nsec=True))
    pb.write_bytes(b.pcap(sorted(bb), nsec=True))
    return pa, pb


def test_nat_port_and_address_rewrite_is_matched_and_reported(tmp_path: Path) -> None:
    pkts = _conversation()
    pa, pb = _write(tmp_path, pkts, nat=True)
    v = analyze_vantage_points([pa, pb], ["inside", "outside"])
    assert v.pairs[0].matched == len(pkts)
    assert len(v.nat) == 2  # both directions of the connection
    f = _one(v, "vantage.modified_in_transit")  # one NAT mapping: one finding for both directions
    assert f.severity == "info"  # type: ignore[attr-defined]  # NAT alone is normal
    ev = f.evidence  # type: ignore[attr-defined]
    assert ev["fields"] == ["dport", "dst", "sport", "src"]
    assert ev["packets"] == len(pkts)
    assert ev["mappings"] == {"10.0.0.1:40000 at inside is 192.0.2.1:50000 at outside": len(pkts)}
    assert _ids(v) == ["vantage.modified_in_transit"]


def test_window_and_mss_rewrite_are_reported(tmp_path: Path) -> None:
    pa, pb = _write(tmp_path, _conversation(), server_window=1024, server_mss=1400)
    v = analyze_vantage_points([pa, pb])
    mods = [f for f in v.findings if f.id == "vantage.modified_in_transit"]
    fields = {tuple(f.evidence["fields"]) for f in mods}
    assert ("option:mss", "window") in fields  # the SYN: both
    assert ("window",) in fields  # the other client packets: the window only
    assert all(f.severity == "warning" for f in mods)
    syn = next(f for f in mods if "option:mss" in f.evidence["fields"])
    change = syn.evidence["examples"][0]["changes"]
    assert change["option:mss"] == {"from": 1460, "to": 1400} and change["window"] == {"from": 65535, "to": 1024}


def test_copies_at_a_forwarding_point_are_one_sighting(tmp_path: Path) -> None:
    pkts = _conversation()
    pa, pb = _write(tmp_path, pkts, copies_at_server=True)
    v = analyze_vantage_points([pa, pb])
    assert v.pairs[0].matched == len(pkts)
    assert _ids(v) == []
    n_client = sum(1 for p in pkts if p["frm"] == "c")
    two = [r for r in v.path_rows() if r["at"]["b"] and len(r["at"]["b"]["frames"]) == 2]
    assert len(two) == n_client
    assert "02:00:00:00:00:02" in v.points[1].own_macs


def test_retransmission_after_loss_and_clock_offset(tmp_path: Path) -> None:
    pkts = _conversation()
    # The first data segment (index 3) is lost between the points; the client sends it again
    # (same seq and length, new IP ID) after 1 ms and that copy gets through.
    retrans = dict(pkts[3], t=1_100_000, id=106)
    pkts.insert(6, retrans)
    theta = 2_500_000_000  # B's clock 2.5 s ahead
    pa, pb = _write(tmp_path, pkts, theta=theta, drop_at_server=(3,))
    v = analyze_vantage_points([pa, pb], ["near", "far"])
    c = v.clock[1]
    assert c.method == "bounds" and c.lower_ns is not None and c.upper_ns is not None
    assert c.lower_ns <= theta <= c.upper_ns
    assert c.uncertainty_ns is not None and c.uncertainty_ns <= DELAY
    f = _one(v, "vantage.lost_between")
    ev = f.evidence  # type: ignore[attr-defined]
    assert ev["lost"] == 1 and ev["retransmitted"] == 1 and ev["retransmission_got_through"] == 1
    assert f.frames == [4]  # type: ignore[attr-defined]  # the 4th frame at the client side
    assert _ids(v) == ["vantage.lost_between"]


def test_synack_retransmissions_with_the_same_ip_id_pair_by_time(tmp_path: Path) -> None:
    pkts = _conversation()
    # The server's SYN-ACK (IP ID 0, as Linux sends it) is lost on the way and sent again 1 s
    # later: both copies are identical but for their time.
    again = dict(pkts[1], t=pkts[1]["t"])
    pkts = [dict(p, t=int(p["t"]) + (1_000_000_000 if i >= 2 else 0)) for i, p in enumerate(pkts)]
    again["t"] = int(pkts[1]["t"]) + 1_000_000_000 - 100_000
    pkts.insert(2, again)
    a, bb = [], []
    for i, pk in enumerate(pkts):
        t = T0 + int(pk["t"])
        if pk["frm"] == "c":
            a.append((t, _frame(pk, src=C_IP, dst=S_IP, sport=40000, dport=80, ttl=64, mac=MAC_C)))
            bb.append((t + DELAY, _frame(pk, src=C_IP, dst=S_IP, sport=40000, dport=80, ttl=63, mac=MAC_R)))
        else:
            bb.append((t, _frame(pk, src=S_IP, dst=C_IP, sport=80, dport=40000, ttl=64, mac=MAC_S)))
            if i != 1:
                a.append((t + DELAY, _frame(pk, src=S_IP, dst=C_IP, sport=80, dport=40000, ttl=63, mac=MAC_R)))
    pa, pb = tmp_path / "a.pcap", tmp_path / "b.pcap"
    pa.write_bytes(b.pcap(sorted(a), nsec=True))
    pb.write_bytes(b.pcap(sorted(bb), nsec=True))
    v = analyze_vantage_points([pb, pa], ["server", "client"])
    f = _one(v, "vantage.lost_between")
    assert f.evidence["lost"] == 1 and f.frames == [2]  # type: ignore[attr-defined]  # the first SYN-ACK
    assert f.evidence["retransmission_got_through"] == 1  # type: ignore[attr-defined]
    synack_rows = [r for r in v.path_rows() if r["flags"] == "SYN, ACK"]
    assert [r["status"] for r in synack_rows] == ["lost", "ok"]
    assert synack_rows[1]["at"]["client"]["frames"] == [2]
