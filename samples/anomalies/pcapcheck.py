#!/usr/bin/env python3
"""Independent (stdlib-only, no tshark) checks of the recorded captures; results go into the facts files.

  pcapcheck.py lossy FACTS CLIENT.pcap SERVER.pcap SERVER_IP SERVER_PORT
      Match every client->server data packet (payload > 0) of the two captures by (seq, len, ip.id):
      which were seen at the client but not at the server (= dropped by the router), and whether
      anything appeared at the server that the client never sent. Also TTL on both sides and a count
      of data packets the client sent for sequence space it had already sent (retransmissions).
  pcapcheck.py zerowindow FACTS PCAP SERVER_IP SERVER_PORT
      zero-window advertisements of the server and the client's zero-window probes.
  pcapcheck.py portscan FACTS PCAP SCANNER_IP       per probed port: SYN-ACK, RST or nothing
  pcapcheck.py synflood FACTS PCAP SERVER_IP SERVER_PORT   SYN-ACKs per spoofed source, retransmissions
  pcapcheck.py timewait FACTS PCAP CLIENT_IP SERVER_PORT   a SYN reusing a tuple in TIME-WAIT
  pcapcheck.py summary FACTS PCAP
      frames, duration, largest caplen, per-flag counts; stored under "pcaps" -> file name.
Classic pcap, Ethernet link type, IPv4 only (what these recordings produce).
"""
import json
import struct
import sys


def packets(path):
    with open(path, "rb") as f:
        hdr = f.read(24)
        magic = struct.unpack("<I", hdr[:4])[0]
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            e = "<"
        else:
            e = ">"
            magic = struct.unpack(">I", hdr[:4])[0]
        nano = magic == 0xA1B23C4D
        snaplen, linktype = struct.unpack(e + "II", hdr[16:24])
        assert linktype == 1, "%s: link type %d, expected Ethernet" % (path, linktype)
        no = 0
        while True:
            rh = f.read(16)
            if len(rh) < 16:
                return
            sec, frac, incl, orig = struct.unpack(e + "IIII", rh)
            data = f.read(incl)
            no += 1
            ts = sec + frac / (1e9 if nano else 1e6)
            p = {"no": no, "ts": ts, "caplen": incl, "wirelen": orig,
                 "eth_src": data[6:12].hex(":"), "eth_type": struct.unpack("!H", data[12:14])[0]}
            if p["eth_type"] == 0x0800 and len(data) >= 34:
                ip = data[14:]
                ihl = (ip[0] & 15) * 4
                p.update(ip_len=struct.unpack("!H", ip[2:4])[0], ip_id=struct.unpack("!H", ip[4:6])[0],
                         ttl=ip[8], proto=ip[9], src=".".join(map(str, ip[12:16])),
                         dst=".".join(map(str, ip[16:20])))
                if p["proto"] == 6 and len(ip) >= ihl + 20:
                    t = ip[ihl:]
                    sport, dport, seq, ack, off, flags, win = struct.unpack("!HHIIBBH", t[:16])
                    thl = (off >> 4) * 4
                    p.update(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, win=win,
                             plen=p["ip_len"] - ihl - thl)
                    o = t[20:thl]
                    i = 0
                    while i < len(o) and o[i] != 0:
                        if o[i] == 1:
                            i += 1
                            continue
                        if i + 1 >= len(o) or o[i + 1] < 2:
                            break
                        if o[i] == 8 and o[i + 1] == 10 and i + 10 <= len(o):
                            p["tsval"], p["tsecr"] = struct.unpack("!II", o[i + 2:i + 10])
                        i += o[i + 1]
            yield p


def load(path):
    with open(path) as f:
        return json.load(f)


def save(path, facts):
    with open(path, "w") as f:
        json.dump(facts, f, indent=2, sort_keys=True)
        f.write("\n")


def lossy(facts_path, cpath, spath, sip, sport):
    sport = int(sport)

    def data(path):
        return [p for p in packets(path)
                if p.get("dst") == sip and p.get("dport") == sport and p.get("plen", 0) > 0]

    cd, sd = data(cpath), data(spath)
    key = lambda p: (p["seq"], p["plen"], p["ip_id"])  # noqa: E731
    remaining = {}
    for p in sd:
        remaining[key(p)] = remaining.get(key(p), 0) + 1
    missing = []
    for p in cd:
        k = key(p)
        if remaining.get(k):
            remaining[k] -= 1
        else:
            missing.append(p)
    extra = sum(v for v in remaining.values() if v > 0)
    # retransmissions as seen in the client capture: data packets whose first byte was sent before
    isn = None
    hi = None
    rtx = []
    for p in cd:
        s = p["seq"]
        if isn is None:
            isn = (s - 1) & 0xFFFFFFFF
        rel = (s - isn) & 0xFFFFFFFF
        if hi is not None and rel < hi:
            rtx.append(p["no"])
        hi = max(hi or 0, rel + p["plen"])
    allc = [p for p in packets(cpath) if p.get("dst") == sip and p.get("dport") == sport]
    alls = [p for p in packets(spath) if p.get("dst") == sip and p.get("dport") == sport]
    facts = load(facts_path)
    facts["capture_match"] = {
        "method": "client->server packets with payload > 0 matched by (tcp.seq, payload length, ip.id) "
                  "between the two captures (multiset difference); pcapcheck.py lossy",
        "client_side_data_packets": len(cd),
        "server_side_data_packets": len(sd),
        "missing_at_server": len(missing),
        "missing_at_server_client_frames": [p["no"] for p in missing],
        "missing_at_server_rel_seq": [(p["seq"] - isn) & 0xFFFFFFFF for p in missing],
        "seen_at_server_but_not_at_client": extra,
        "client_side_retransmitted_data_packets": len(rtx),
        "client_side_retransmitted_data_frames": rtx,
        "ttl_client_side": sorted({p["ttl"] for p in allc}),
        "ttl_server_side": sorted({p["ttl"] for p in alls}),
        "eth_src_client_side": sorted({p["eth_src"] for p in allc}),
        "eth_src_server_side": sorted({p["eth_src"] for p in alls}),
    }
    drop = facts.get("iptables", {}).get("drop_rule_packets")
    facts["capture_match"]["equals_iptables_drop_counter"] = (drop == len(missing))
    save(facts_path, facts)
    print("lossy: client data pkts %d, server data pkts %d, missing at server %d, iptables dropped %s, "
          "extra at server %d, client-side retransmitted %d"
          % (len(cd), len(sd), len(missing), drop, extra, len(rtx)))
    return 0 if drop == len(missing) and extra == 0 else 1


def zerowindow(facts_path, path, sip, sport):
    """Zero windows advertised by the server and the client's window probes (Linux: seq = snd_una - 1,
    no payload, i.e. one byte below the server's last ACK), found without tshark."""
    sport = int(sport)
    last_ack = None
    zw, probes, probe_acks = [], [], []
    t0 = None
    for p in packets(path):
        if "sport" not in p:
            continue
        t0 = p["ts"] if t0 is None else t0
        if p["src"] == sip and p["sport"] == sport:
            if p["flags"] & 0x10:
                last_ack = p["ack"]
            if p["win"] == 0 and not p["flags"] & 0x07:
                zw.append(p)
                if probes and probes[-1]["no"] < p["no"] and (not probe_acks or probe_acks[-1] < probes[-1]["no"]):
                    probe_acks.append(p["no"])
        elif p["dst"] == sip and p["dport"] == sport and p["plen"] == 0 and last_ack is not None \
                and p["seq"] == (last_ack - 1) & 0xFFFFFFFF and not p["flags"] & 0x07:
            probes.append(p)
    facts = load(facts_path)
    facts["zero_window_check"] = {
        "method": "pcapcheck.py zerowindow: server->client segments with window 0 (no SYN/FIN/RST); "
                  "client->server segments without payload whose seq is the server's last ACK - 1",
        "zero_window_segments": len(zw),
        "zero_window_frames": [p["no"] for p in zw],
        "probes": len(probes),
        "probe_frames": [p["no"] for p in probes],
        "probe_times_s": [round(p["ts"] - t0, 6) for p in probes],
        "probe_intervals_s": [round(b["ts"] - a["ts"], 3) for a, b in zip(probes, probes[1:])],
        "zero_window_answers_to_probes_frames": probe_acks,
    }
    save(facts_path, facts)
    print("zero windows: %d segments, %d probes at %s" % (len(zw), len(probes),
                                                          facts["zero_window_check"]["probe_times_s"]))


def portscan(facts_path, path, scanner_ip):
    """Per destination port of the scanner's SYNs: answered by SYN-ACK, by RST, or not at all."""
    syns, synack, rst = {}, {}, {}
    for p in packets(path):
        if "sport" not in p:
            continue
        f = p["flags"]
        if p["src"] == scanner_ip and f & 0x12 == 0x02:
            syns.setdefault(p["dport"], []).append(p["no"])
        elif p["dst"] == scanner_ip and f & 0x12 == 0x12:
            synack.setdefault(p["sport"], []).append(p["no"])
        elif p["dst"] == scanner_ip and f & 0x04:
            rst.setdefault(p["sport"], []).append(p["no"])
    facts = load(facts_path)
    facts["scan_check"] = {
        "method": "pcapcheck.py portscan: SYNs from the scanner grouped by destination port; answers by source port",
        "ports_probed": len(syns), "syns": sum(len(v) for v in syns.values()),
        "ports_answered_synack": sorted(synack), "ports_answered_rst": len(rst),
        "ports_unanswered": sorted(set(syns) - set(synack) - set(rst)),
        "first_syn_frame": min(min(v) for v in syns.values()), "last_syn_frame": max(max(v) for v in syns.values()),
    }
    save(facts_path, facts)
    print("portscan: %d ports probed, SYN-ACK from %s, RST from %d" % (len(syns), sorted(synack), len(rst)))


def synflood(facts_path, path, server_ip, server_port):
    """Per spoofed (address, port): how many SYN-ACKs the listener sent, and when."""
    server_port = int(server_port)
    flows = {}
    t0 = None
    for p in packets(path):
        if "sport" not in p:
            continue
        t0 = p["ts"] if t0 is None else t0
        f = p["flags"]
        if p["dst"] == server_ip and p["dport"] == server_port and f & 0x12 == 0x02:
            flows.setdefault((p["src"], p["sport"]), {"syn": [], "synack": []})["syn"].append(p)
        elif p["src"] == server_ip and p["sport"] == server_port and f & 0x12 == 0x12:
            flows.setdefault((p["dst"], p["dport"]), {"syn": [], "synack": []})["synack"].append(p)
    answered = [k for k, v in flows.items() if v["synack"]]
    multi = [k for k, v in flows.items() if len(v["synack"]) > 1]
    gaps = sorted({round(b["ts"] - a["ts"]) for k in multi for a, b in zip(flows[k]["synack"], flows[k]["synack"][1:])})
    facts = load(facts_path)
    facts["flood_check"] = {
        "method": "pcapcheck.py synflood: SYNs to the listener and its SYN-ACKs grouped by the spoofed (address, port)",
        "flows": len(flows),
        "syns": sum(len(v["syn"]) for v in flows.values()),
        "synacks": sum(len(v["synack"]) for v in flows.values()),
        "flows_answered": len(answered),
        "flows_unanswered": len(flows) - len(answered),
        "flows_with_synack_retransmitted": len(multi),
        "synack_retransmit_gaps_s": gaps,
        "retransmitting_flows_first_syn_frames": sorted(flows[k]["syn"][0]["no"] for k in multi),
        "flows_single_synack": len(answered) - len(multi),
        "first_syn_frame": min(v["syn"][0]["no"] for v in flows.values() if v["syn"]),
        "last_syn_time_s": round(max(v["syn"][-1]["ts"] for v in flows.values() if v["syn"]) - t0, 6),
    }
    save(facts_path, facts)
    print("synflood: %(flows)d flows, %(syns)d SYNs, %(synacks)d SYN-ACKs, %(flows_with_synack_retransmitted)d "
          "flows with retransmitted SYN-ACKs, %(flows_unanswered)d unanswered" % facts["flood_check"])


def timewait(facts_path, path, client_ip, server_port):
    """Two connections on one 4-tuple: the first one's final sequence numbers (what the server's
    TIME-WAIT socket remembers) against the second one's SYN, and the server's answer to that SYN."""
    server_port = int(server_port)
    ps = [p for p in packets(path) if "sport" in p]
    syns = [p for p in ps if p["src"] == client_ip and p["flags"] & 0x12 == 0x02]
    first_syn = syns[0]
    # the second connection starts with the first SYN carrying a different ISN
    second = [p for p in syns if p["seq"] != first_syn["seq"]]
    assert second, "no second connection in %s" % path
    syn2 = second[0]
    c1 = [p for p in ps if p["no"] < syn2["no"]]
    cfin = [p for p in c1 if p["src"] == client_ip and p["flags"] & 0x01][-1]
    sfin = [p for p in c1 if p["dst"] == client_ip and p["flags"] & 0x01][-1]
    tw_rcv_nxt = (cfin["seq"] + cfin["plen"] + 1) & 0xFFFFFFFF      # next client byte the server expects
    tw_snd_nxt = (sfin["seq"] + sfin["plen"] + 1) & 0xFFFFFFFF
    last_c1_ts = max((p["tsval"] for p in c1 if p["src"] == client_ip and "tsval" in p), default=None)
    diff = (syn2["seq"] - tw_rcv_nxt) & 0xFFFFFFFF
    diff = diff - 2 ** 32 if diff >= 2 ** 31 else diff
    answer = next(p for p in ps if p["no"] > syn2["no"] and p["dst"] == client_ip)
    kind = {0x12: "SYN,ACK", 0x10: "ACK", 0x14: "RST,ACK", 0x04: "RST"}.get(answer["flags"] & 0x17,
                                                                             hex(answer["flags"]))
    after = [p for p in ps if p["no"] > answer["no"]]
    synacks = [p for p in ps if p["no"] > syn2["no"] and p["dst"] == client_ip and p["flags"] & 0x12 == 0x12]
    client_rst = [p for p in after if p["src"] == client_ip and p["flags"] & 0x04]
    retry_syn = [p for p in after if p["src"] == client_ip and p["flags"] & 0x12 == 0x02]
    f = {
        "method": "pcapcheck.py timewait: sequence numbers of the first connection's FINs vs. the second SYN",
        "conn1_client_isn": first_syn["seq"],
        "conn1_syn_frame": first_syn["no"],
        "conn1_client_fin_frame": cfin["no"], "conn1_server_fin_frame": sfin["no"],
        "server_closed_first": sfin["no"] < cfin["no"],
        "timewait_rcv_nxt": tw_rcv_nxt, "timewait_snd_nxt": tw_snd_nxt,
        "conn2_syn_frame": syn2["no"], "conn2_client_isn": syn2["seq"],
        "conn2_isn_minus_timewait_rcv_nxt": diff,
        "conn2_isn_vs_old": "lower" if diff < 0 else "higher",
        "conn1_last_client_tsval": last_c1_ts, "conn2_syn_tsval": syn2.get("tsval"),
        "conn2_syn_has_timestamps": "tsval" in syn2,
        "server_answer_to_conn2_syn": kind, "server_answer_frame": answer["no"],
        "server_answer_seq": answer["seq"], "server_answer_ack": answer["ack"],
        "client_rst_frames": [p["no"] for p in client_rst],
        "retry_syn_frames": [p["no"] for p in retry_syn],
        "conn2_synack_frame": synacks[0]["no"] if synacks else None,
        "conn2_server_isn": synacks[0]["seq"] if synacks else None,
    }
    if synacks:
        f["conn2_server_isn_minus_timewait_snd_nxt"] = (synacks[0]["seq"] - tw_snd_nxt) & 0xFFFFFFFF
    if retry_syn and synacks:
        f["retry_delay_s"] = round(retry_syn[0]["ts"] - syn2["ts"], 6)
    facts = load(facts_path)
    facts["timewait_check"] = f
    save(facts_path, facts)
    print("timewait: new ISN %s by %d, TSval %s -> %s, server answered %s (frame %d), client RSTs %s, SYN-ACK frame %s"
          % (f["conn2_isn_vs_old"], diff, last_c1_ts, syn2.get("tsval"), kind, answer["no"], f["client_rst_frames"],
             f["conn2_synack_frame"]))


def summary(facts_path, path):
    ps = list(packets(path))
    names = [(0x02, "SYN"), (0x10, "ACK"), (0x01, "FIN"), (0x04, "RST")]
    counts = {n: sum(1 for p in ps if p.get("flags", 0) & b) for b, n in names}
    facts = load(facts_path)
    facts.setdefault("pcaps", {})[path.rsplit("/", 1)[-1]] = {
                     "frames": len(ps),
                     "duration_s": round(ps[-1]["ts"] - ps[0]["ts"], 6) if ps else 0,
                     "max_caplen": max((p["caplen"] for p in ps), default=0),
                     "tcp_flag_counts": counts,
                     "non_tcp_frames": sum(1 for p in ps if "sport" not in p)}
    save(facts_path, facts)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "lossy":
        sys.exit(lossy(*args))
    if cmd == "zerowindow":
        zerowindow(*args)
        return
    if cmd == "portscan":
        portscan(*args)
        return
    if cmd == "synflood":
        synflood(*args)
        return
    if cmd == "timewait":
        timewait(*args)
        return
    if cmd == "summary":
        summary(*args)
        return
    sys.exit("unknown command %s" % cmd)


if __name__ == "__main__":
    main()
