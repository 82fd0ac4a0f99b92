#!/usr/bin/env python3
"""Independent (stdlib-only, no tshark) measurements of the realworld captures, stored in the facts files.
Each command reads one capture with rwpcap.py and writes facts[KEY] (KEY defaults to the command name).

  rwcheck.py checksums FACTS PCAP            per sender IP: TCP and IPv4 checksum status counts
                                             (valid / partial / zero / wrong / cut)
  rwcheck.py rightedge FACTS PCAP RCV_IP     the receiver's right window edge (ack + win << wscale) per
                                             segment: every backward move, by how many bytes, against
                                             the scale unit 2^wscale
  rwcheck.py zerowin FACTS PCAP RCV_IP       zero-window episodes of RCV_IP: first window-0 segment to the
                                             next non-zero window (duration, probes inside)
  rwcheck.py synsched FACTS PCAP CLIENT_IP   SYN send times and the gaps between them
  rwcheck.py fins FACTS PCAP                 FIN segments per sender (times, gaps) and the ACKs of each FIN
  rwcheck.py retrans FACTS PCAP SND_IP       data segments SND_IP sent whose first byte is below its highest
                                             sequence number sent so far (on a capture at the sender: its
                                             retransmissions, TLPs included); also the ones below snd_una
  rwcheck.py acks FACTS PCAP                 per data segment: time until the first ACK covering it, and
                                             whether that ACK was a pure ACK or rode on data; handshake RTT
  rwcheck.py keepalive FACTS PCAP            keep-alive probes (no or 1 byte at snd_nxt - 1) and their answers
  rwcheck.py frames FACTS PCAP               frames per (ethertype, IP source); first/last frame times
  rwcheck.py tshark FACTS NAME PCAP FILTER [FIELD]   as ../anomalies/facts.py tshark, with tshark's
                                             IPv4 and TCP checksum validation switched on
  rwcheck.py tsedge FACTS PCAP RCV_IP        the same right-edge count from tshark's own fields
                                             (tcp.ack_raw + tcp.window_size, tshark applying the scale)
  rwcheck.py hangtimes FACTS PCAP            server.hang's wall-clock times relative to the first frame
  rwcheck.py corrupt FACTS PCAP              TCP segments with a wrong checksum and what the peer did next:
                                             acknowledged it (ACK beyond its end before a resend) or not,
                                             and whether the same sequence range was sent again
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwpcap  # noqa: E402

MASK = 0xFFFFFFFF


def load(path):
    with open(path) as f:
        return json.load(f)


def save(path, facts):
    with open(path, "w") as f:
        json.dump(facts, f, indent=2, sort_keys=True)
        f.write("\n")


def put(fpath, key, value):
    facts = load(fpath) if os.path.exists(fpath) else {}
    facts[key] = value
    save(fpath, facts)


def pkts(path):
    _, _, recs = rwpcap.read(path)
    out = []
    t0 = recs[0].ts if recs else 0.0
    for r in recs:
        d = rwpcap.decode(r.data)
        d["no"], d["t"], d["raw"], d["caplen"], d["wirelen"] = r.no, round(r.ts - t0, 6), r.data, r.caplen, r.wirelen
        out.append(d)
    return out


def tcp(path):
    return [p for p in pkts(path) if "sport" in p]


def after(a, b):  # a after b, modulo 2^32
    return ((a - b) & MASK) != 0 and ((a - b) & MASK) < 0x80000000


def checksums(fpath, path, key="checksum_check"):
    per = {}
    for p in pkts(path):
        if "src" not in p:
            continue
        e = per.setdefault(p["src"], {"frames": 0, "ipv4": {}, "tcp": {}})
        e["frames"] += 1
        s = rwpcap.ipv4_checksum_status(p["raw"])
        e["ipv4"][s] = e["ipv4"].get(s, 0) + 1
        if "sport" in p:
            s = rwpcap.tcp_checksum_status(p["raw"])
            e["tcp"][s] = e["tcp"].get(s, 0) + 1
    res = {"method": "rwcheck.py checksums: per IPv4 source, IPv4 header and TCP checksum status of every frame "
                     "(partial = the field holds the folded pseudo-header sum only, as Linux leaves it for a NIC "
                     "with TX checksum offload)", "per_source": per}
    facts = load(fpath)
    facts.setdefault(key, {})[os.path.basename(path)] = res
    save(fpath, facts)
    print("checksums %s: %s" % (os.path.basename(path), json.dumps(per, sort_keys=True)))


def rightedge(fpath, path, rcv):
    ps = tcp(path)
    ws = None
    for p in ps:
        if p["src"] == rcv and p["flags"] & 0x02:
            ws = p.get("wscale", 0)
    assert ws is not None, "no SYN from %s" % rcv
    peer_ws_seen = any(p["dst"] == rcv and p["flags"] & 0x02 and "wscale" in p for p in ps)
    scale = ws if peer_ws_seen else 0
    best, moves, n = None, [], 0
    for p in ps:
        if p["src"] != rcv or not p["flags"] & 0x10:
            continue
        n += 1
        # a SYN-ACK's window is never scaled (RFC 7323 2.2)
        edge = (p["ack"] + (p["win"] << (0 if p["flags"] & 0x02 else scale))) & MASK
        if best is not None and after(best, edge):
            moves.append({"frame": p["no"], "t": p["t"], "by_bytes": (best - edge) & MASK, "win_raw": p["win"]})
        if best is None or after(edge, best):
            best = edge
    unit = 1 << scale
    res = {"method": "rwcheck.py rightedge: for every ACK the receiver sent (its SYN-ACK included, unscaled), "
                     "right edge = ack + (window << wscale); a move is an edge below the highest edge advertised before",
           "receiver": rcv, "wscale": scale, "scale_unit_bytes": unit, "receiver_acks": n,
           "right_edge_moves_back": len(moves),
           "moves_smaller_than_scale_unit": sum(1 for m in moves if m["by_bytes"] < unit),
           "moves_at_least_scale_unit": sum(1 for m in moves if m["by_bytes"] >= unit),
           "largest_move_bytes": max((m["by_bytes"] for m in moves), default=0),
           "first_moves": moves[:20]}
    put(fpath, "rightedge_check", res)
    print("rightedge: wscale %d, %d acks, %d backward moves (%d < %d bytes), largest %d" % (
        scale, n, len(moves), res["moves_smaller_than_scale_unit"], unit, res["largest_move_bytes"]))


def zerowin(fpath, path, rcv):
    ps = tcp(path)
    eps, cur = [], None
    last_ack = None
    for p in ps:
        if p["src"] == rcv:
            if p["flags"] & 0x07:
                continue
            if p["flags"] & 0x10:
                last_ack = p["ack"]
            if p["win"] == 0 and cur is None:
                cur = {"start_frame": p["no"], "start_t": p["t"], "zero_window_segments": 0, "probes": 0,
                       "probe_frames": []}
            if p["win"] == 0:
                cur["zero_window_segments"] += 1
            elif cur is not None:
                cur.update(end_frame=p["no"], end_t=p["t"], duration_s=round(p["t"] - cur["start_t"], 6))
                eps.append(cur)
                cur = None
        elif cur is not None and p["dst"] == rcv and p["plen"] <= 1 and last_ack is not None \
                and p["seq"] == (last_ack - 1) & MASK and not p["flags"] & 0x07:
            cur["probes"] += 1
            cur["probe_frames"].append(p["no"])
    if cur is not None:
        cur.update(end_frame=None, end_t=None, duration_s=None, open_at_capture_end=True,
                   open_for_s_at_capture_end=round(ps[-1]["t"] - cur["start_t"], 6))
        eps.append(cur)
    closed = [e["duration_s"] for e in eps if e["duration_s"] is not None]
    res = {"method": "rwcheck.py zerowin: episode = first window-0 segment of the receiver to its next segment with "
                     "a non-zero window; probes = peer segments with <= 1 byte at the receiver's last ACK - 1",
           "receiver": rcv, "episodes": len(eps), "longest_closed_episode_s": max(closed, default=None),
           "total_closed_s": round(sum(closed), 6), "episode_list": eps[:50]}
    put(fpath, "zero_window_check", res)
    print("zerowin: %d episodes, longest %s s, still open at end: %s" % (
        len(eps), res["longest_closed_episode_s"], any(e.get("open_at_capture_end") for e in eps)))


def synsched(fpath, path, client):
    syns = [p for p in tcp(path) if p["src"] == client and p["flags"] & 0x12 == 0x02]
    t = [p["t"] for p in syns]
    res = {"method": "rwcheck.py synsched: SYNs (no ACK) from the client, time relative to the first frame",
           "syns": len(syns), "syn_frames": [p["no"] for p in syns], "syn_times_s": t,
           "gaps_s": [round(b - a, 6) for a, b in zip(t, t[1:])], "same_isn": len({p["seq"] for p in syns}) == 1,
           "same_sport": len({p["sport"] for p in syns}) == 1}
    put(fpath, "syn_schedule_check", res)
    print("synsched: %d SYNs at %s, gaps %s" % (len(syns), t, res["gaps_s"]))


def fins(fpath, path):
    ps = tcp(path)
    res = {"method": "rwcheck.py fins: FIN segments per sender (address:port); a FIN is ACKed by a segment from the other side "
                     "with ack = FIN seq + payload + 1", "per_sender": {}}
    for src, sport in sorted({(p["src"], p["sport"]) for p in ps}):
        f = [p for p in ps if p["src"] == src and p["sport"] == sport and p["flags"] & 0x01]
        if not f:
            continue
        want = (f[0]["seq"] + f[0]["plen"] + 1) & MASK
        acks = [p for p in ps if p["dst"] == src and p["dport"] == sport and p["flags"] & 0x10
                and not after(want, p["ack"])]
        res["per_sender"]["%s:%d" % (src, sport)] = {
            "fins": len(f), "fin_frames": [p["no"] for p in f], "fin_times_s": [p["t"] for p in f],
            "gaps_s": [round(b["t"] - a["t"], 6) for a, b in zip(f, f[1:])],
            "first_to_last_s": round(f[-1]["t"] - f[0]["t"], 6),
            "acks_of_fin": len(acks), "ack_frames": [p["no"] for p in acks][:20]}
    res["capture_end_t"] = ps[-1]["t"]
    put(fpath, "fin_check", res)
    print("fins: %s" % json.dumps({k: (v["fins"], v["first_to_last_s"], v["acks_of_fin"])
                                   for k, v in res["per_sender"].items()}))


def retrans(fpath, path, snd):
    ps = tcp(path)
    hi, una, rtx, below_una, data = None, None, [], 0, 0
    for p in ps:
        if p["dst"] == snd and p["flags"] & 0x10:
            if una is None or after(p["ack"], una):
                una = p["ack"]
        if p["src"] != snd:
            continue
        ln = p["plen"] + (1 if p["flags"] & 0x03 else 0)
        if ln == 0:
            continue
        if p["flags"] & 0x02:
            hi = (p["seq"] + 1) & MASK
            continue
        data += 1
        end = (p["seq"] + ln) & MASK
        if hi is not None and after(hi, p["seq"]):
            rtx.append(p["no"])
            if una is not None and after(una, p["seq"]):
                below_una += 1
        if hi is None or after(end, hi):
            hi = end
    res = {"method": "rwcheck.py retrans: segments with payload or FIN from the sender whose first sequence number "
                     "is below the highest sequence number it had sent before (capture at the sender: nothing can "
                     "reorder them, so each is a retransmission)", "sender": snd, "data_segments": data,
           "retransmitted_segments": len(rtx), "retransmitted_frames": rtx,
           "retransmitted_below_snd_una": below_una}
    put(fpath, "retrans_check", res)
    print("retrans: %d of %d sender segments are retransmissions" % (len(rtx), data))


def acks(fpath, path):
    ps = tcp(path)
    hs = None
    syn = next((p for p in ps if p["flags"] & 0x12 == 0x02), None)
    sa = next((p for p in ps if p["flags"] & 0x12 == 0x12), None)
    ack3 = next((p for p in ps if sa is not None and p["no"] > sa["no"] and p["src"] == syn["src"]), None)
    if syn and sa and ack3:
        hs = {"syn_to_synack_s": round(sa["t"] - syn["t"], 6), "synack_to_ack_s": round(ack3["t"] - sa["t"], 6)}
    segs = []
    for i, p in enumerate(ps):
        if p["plen"] <= 0:
            continue
        end = (p["seq"] + p["plen"]) & MASK
        a = next((q for q in ps[i + 1:] if q["src"] == p["dst"] and q["flags"] & 0x10 and not after(end, q["ack"])),
                 None)
        if a is None:
            continue
        segs.append({"frame": p["no"], "from": p["src"], "len": p["plen"], "ack_frame": a["no"],
                     "ack_after_s": round(a["t"] - p["t"], 6), "ack_is_pure": a["plen"] == 0 and not a["flags"] & 0x07})
    pure = [s for s in segs if s["ack_is_pure"]]
    res = {"method": "rwcheck.py acks: for each segment with payload, the first later segment of the other side whose "
                     "ACK covers its end", "handshake": hs, "data_segments_acked": len(segs),
           "acked_by_pure_ack": len(pure),
           "pure_ack_delays_over_20ms": sum(1 for s in pure if s["ack_after_s"] > 0.02),
           "pure_ack_delay_max_s": max((s["ack_after_s"] for s in pure), default=None),
           "pure_ack_delay_min_s": min((s["ack_after_s"] for s in pure), default=None),
           "per_segment": segs[:60]}
    put(fpath, "ack_check", res)
    print("acks: handshake %s; %d segments acked, %d by pure ACKs, %d of them after > 20 ms (max %s s)" % (
        hs, len(segs), len(pure), res["pure_ack_delays_over_20ms"], res["pure_ack_delay_max_s"]))


def keepalive(fpath, path):
    ps = tcp(path)
    nxt, probes = {}, []
    for i, p in enumerate(ps):
        k = (p["src"], p["sport"])
        ln = p["plen"] + (1 if p["flags"] & 0x03 else 0)
        if ln <= 1 and not p["flags"] & 0x07 and k in nxt and p["seq"] == (nxt[k] - 1) & MASK:
            ans = next((q for q in ps[i + 1:] if q["src"] == p["dst"] and q["sport"] == p["dport"]), None)
            probes.append({"frame": p["no"], "t": p["t"], "from": "%s:%d" % k, "len": p["plen"],
                           "answer_frame": ans["no"] if ans else None,
                           "answer_after_s": round(ans["t"] - p["t"], 6) if ans else None,
                           "answer_ack_is_snd_nxt": bool(ans and ans["ack"] == nxt[k])})
            continue
        end = (p["seq"] + ln) & MASK
        if k not in nxt or after(end, nxt[k]):
            nxt[k] = end
    res = {"method": "rwcheck.py keepalive: segments with 0 or 1 byte at the sender's next sequence number - 1 "
                     "(no SYN/FIN/RST); answer = the next segment of the peer", "probes": len(probes),
           "answered": sum(1 for p in probes if p["answer_ack_is_snd_nxt"]),
           "probe_times_s": [p["t"] for p in probes],
           "gaps_s": [round(b["t"] - a["t"], 6) for a, b in zip(probes, probes[1:])], "probe_list": probes}
    put(fpath, "keepalive_check", res)
    print("keepalive: %d probes, %d answered, gaps %s" % (len(probes), res["answered"], res["gaps_s"]))


def frames(fpath, path):
    per = {}
    ps = pkts(path)
    for p in ps:
        k = "0x%04x %s" % (p["eth_type"], p.get("src", "-"))
        per[k] = per.get(k, 0) + 1
    res = {"frames": len(ps), "per_ethertype_and_source": per,
           "ip_frames": sum(1 for p in ps if "src" in p),
           "first_t": ps[0]["t"] if ps else None, "last_t": ps[-1]["t"] if ps else None}
    facts = load(fpath)
    facts.setdefault("frames_check", {})[os.path.basename(path)] = res
    save(fpath, facts)
    print("frames %s: %s" % (os.path.basename(path), per))


def corrupt(fpath, path):
    ps = tcp(path)
    out = []
    for i, p in enumerate(ps):
        if p["plen"] <= 0 or rwpcap.tcp_checksum_status(p["raw"]) in ("valid", "cut"):
            continue
        end = (p["seq"] + p["plen"]) & MASK
        later = ps[i + 1:]
        resend = next((q for q in later if q["src"] == p["src"] and q["sport"] == p["sport"] and q["seq"] == p["seq"]
                       and q["plen"] >= p["plen"]), None)
        ack = next((q for q in later if q["src"] == p["dst"] and q["flags"] & 0x10 and not after(end, q["ack"])), None)
        acked_before_resend = ack is not None and (resend is None or ack["no"] < resend["no"])
        out.append({"frame": p["no"], "t": p["t"], "from": "%s:%d" % (p["src"], p["sport"]), "seq_raw": p["seq"],
                    "len": p["plen"], "tcp_checksum": rwpcap.tcp_checksum_status(p["raw"]),
                    "acked_before_any_resend": acked_before_resend,
                    "first_covering_ack_frame": ack["no"] if ack else None,
                    "resent_frame": resend["no"] if resend else None,
                    "resent_after_s": round(resend["t"] - p["t"], 6) if resend else None,
                    "resend_checksum": rwpcap.tcp_checksum_status(resend["raw"]) if resend else None})
    res = {"method": "rwcheck.py corrupt: TCP segments with payload whose checksum is not valid; whether the peer's "
                     "ACK covered the segment before the same sequence range was sent again", "segments": out}
    put(fpath, "corrupt_check", res)
    print("corrupt: %s" % json.dumps(out))


def tshark(fpath, name, path, flt, field=None):
    import shlex
    import subprocess
    opts = ["-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE"]
    args = ["tshark", "-r", path] + opts + ["-Y", flt, "-T", "fields", "-e", "frame.number"]
    if field:
        args += ["-e", field]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout.split("\n")
    rows = [ln.split("\t") for ln in out if ln.strip()]
    entry = {"command": "tshark -r %s %s -Y %s" % (os.path.basename(path), " ".join(opts), shlex.quote(flt)),
             "count": len(rows), "frames": [int(r[0]) for r in rows]}
    if field:
        entry["field"] = field
        entry["values"] = [r[1] if len(r) > 1 else "" for r in rows]
    facts = load(fpath)
    facts.setdefault("tshark", {})[name] = entry
    save(fpath, facts)


def tsedge(fpath, path, rcv):
    import subprocess
    args = ["tshark", "-r", path, "-Y", "ip.src==%s && tcp.flags.ack==1" % rcv, "-T", "fields",
            "-e", "frame.number", "-e", "tcp.ack_raw", "-e", "tcp.window_size", "-e", "tcp.window_size_scalefactor"]
    rows = [ln.split("\t") for ln in subprocess.run(args, capture_output=True, text=True, check=True).stdout.splitlines()]
    best, moves = None, []
    for no, ack, win, _sf in rows:
        edge = (int(ack) + int(win)) & MASK
        if best is not None and after(best, edge):
            moves.append({"frame": int(no), "by_bytes": (best - edge) & MASK})
        if best is None or after(edge, best):
            best = edge
    facts = load(fpath)
    facts["rightedge_tshark"] = {"command": "tshark -r %s -Y" % os.path.basename(path) + " '%s' -T fields -e tcp.ack_raw -e tcp.window_size" % args[4],
                                 "receiver_acks": len(rows), "scale_factors": sorted({r[3] for r in rows}),
                                 "right_edge_moves_back": len(moves), "first_moves": moves[:20]}
    save(fpath, facts)
    print("tsedge: %d acks, %d backward moves" % (len(rows), len(moves)))


def hangtimes(fpath, path):
    _, _, recs = rwpcap.read(path)
    t0 = recs[0].ts
    facts = load(fpath)
    h = facts["server"]["hang"]
    rel = {k[:-5] + "_s": round(h[k] - t0, 6) for k in ("shrink_wall", "stop_read_wall", "drop_wall")}
    rel["capture_end_s"] = round(recs[-1].ts - t0, 6)
    rel["method"] = "server.hang wall-clock times (time.time() in the server) minus the first frame's timestamp"
    facts["hang_times_rel_capture"] = rel
    save(fpath, facts)
    print("hang times: %s" % rel)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    fn = {"checksums": checksums, "rightedge": rightedge, "zerowin": zerowin, "synsched": synsched, "fins": fins,
          "retrans": retrans, "acks": acks, "keepalive": keepalive, "frames": frames, "corrupt": corrupt,
          "tshark": tshark, "hangtimes": hangtimes, "tsedge": tsedge}.get(cmd)
    if fn is None:
        sys.exit("unknown command %s" % cmd)
    fn(*args)


if __name__ == "__main__":
    main()
