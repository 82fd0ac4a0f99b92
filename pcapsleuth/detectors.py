"""Detectors: turn what the connection state machines saw into findings with evidence.

Each detector is a function ``(ctx) -> list[Finding]`` over the finished connections. They judge
only on what the capture shows and say so when the evidence stops short ("never guess beyond
the evidence"): a cause is named only when the frames support it.

The incidents these detectors exist for (see DEVELOPERS.md):

* a load balancer whose own kernel resets SYNs for its virtual IP while a backend answers the
  same SYN directly (``handshake.conflicting_replies``);
* a leaked socket in CLOSE_WAIT that poisons its 4-tuple for the next connection
  (``reuse.peer_in_close_wait``, ``close.close_wait_leak``), and unanswered SYNs on loopback,
  which always point at local socket state (``handshake.unanswered_syn``).
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from .capture import CaptureInfo
from .findings import Finding, catalog
from .packet import TCP_ACK, TCP_RST, TCP_SYN, Packet, flags_str
from .tracker import CLOSE_WAIT, FIN_WAIT_1, FIN_WAIT_2, Connection

__all__ = ["detect", "DetectorContext"]

_MASK = 0xFFFFFFFF
#: Groups larger than this are summarized: the first ones listed, the rest counted.
GROUP_LIST = 20


@dataclasses.dataclass
class DetectorContext:
    conns: list[Connection]
    info: CaptureInfo
    by_uid: dict[str, Connection]

    @property
    def capture_end(self) -> int:
        return self.info.last_ts or 0

    @functools.cached_property
    def handshakes_by_listener(self) -> dict[tuple[str, int], list[Connection]]:
        """TCP connections whose handshake completed, per responder address and port (built once)."""
        index: dict[tuple[str, int], list[Connection]] = defaultdict(list)
        for o in self.conns:
            if o.proto == "tcp" and o.ack_frame is not None and o.ack_ts is not None:
                index[(o.resp.addr, o.resp.port)].append(o)
        return index


def detect(conns: list[Connection], info: CaptureInfo) -> list[Finding]:
    """Run every detector; findings sorted by severity, then first evidence frame."""
    ctx = DetectorContext(conns=conns, info=info, by_uid={c.uid: c for c in conns})
    findings: list[Finding] = []
    for det in _all_detectors():
        findings.extend(det(ctx))
    findings = _suppress(findings)
    findings.sort(key=Finding.sort_key)
    return findings


def _suppress(findings: list[Finding]) -> list[Finding]:
    """Drop follow-on findings that a more specific finding on the same connection explains."""
    cat = catalog()
    suppressed: set[tuple[str, str]] = set()
    for f in findings:
        for victim in cat[f.id].get("suppresses", []):
            for uid in f.connections:
                suppressed.add((victim, uid))
    out = []
    for f in findings:
        keep = [u for u in f.connections if (f.id, u) not in suppressed]
        if f.connections and not keep:
            continue
        out.append(f)
    return out


# -- helpers -----------------------------------------------------------------------------------

def _from(c: Connection, p: Packet, side: str) -> bool:
    ep = c.orig if side == "orig" else c.resp
    return p.src == ep.addr and p.sport == ep.port


def _is_loopback(c: Connection, info: CaptureInfo) -> bool:
    """127/8, ::1, the same address on both ends, an interface named lo, or a NULL/LOOP link."""
    try:
        a = ipaddress.ip_address(c.orig.addr)
        b = ipaddress.ip_address(c.resp.addr)
        if a.is_loopback or b.is_loopback:
            return True
    except ValueError:
        pass
    if c.orig.addr == c.resp.addr:
        return True
    if 0 <= c.iface < len(info.interfaces):
        iface = info.interfaces[c.iface]
        if iface.linktype in (0, 108) or (iface.name or "").split("@")[0] in ("lo", "lo0", "Loopback"):
            return True
    return False


def _sec(ns: int) -> float:
    return round(ns / 1e9, 6)


def _fmt_s(seconds: float) -> str:
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s" if seconds < 100 else f"{seconds:.0f} s"


def _ep_str(addr: str, port: int) -> str:
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def _pkt_view(p: Packet) -> dict[str, Any]:
    return {"frame": p.no, "flags": flags_str(p.flags), "seq": p.seq, "ack": p.ack, "len": p.payload_len,
            "ttl": p.ttl, "ip_id": p.ip_id, "window": p.window, "src_mac": p.src_mac}


def _syn_groups(c: Connection) -> list[list[Packet]]:
    """The originator's SYNs (no ACK) in the evidence, grouped by ISN (a group = one attempt)."""
    groups: dict[int, list[Packet]] = {}
    for p in c.evidence:
        if p.flags is not None and p.flags & TCP_SYN and not p.flags & TCP_ACK and _from(c, p, "orig"):
            groups.setdefault(p.seq, []).append(p)  # type: ignore[arg-type]
    return list(groups.values())


# -- handshake.conflicting_replies -------------------------------------------------------------

def detect_conflicting_replies(ctx: DetectorContext) -> list[Finding]:
    """One finding per answering address and view; repeated attempts are listed in its evidence."""
    groups: dict[tuple[str, int, str], list[Finding]] = defaultdict(list)
    for f in _conflicting_replies_each(ctx):
        c = ctx.by_uid[f.connections[0]]
        groups[(c.resp.addr, c.resp.port, f.evidence["view"])].append(f)
    out = []
    for items in groups.values():
        first = items[0]
        if len(items) > 1:
            n = len(items)
            first.summary = (f"{n} connection attempts met the same conflict; first: " + first.summary)
            first.evidence["attempts_affected"] = n
            first.evidence["per_attempt"] = [
                {"uid": f.connections[0], "frames": f.frames,
                 "differing_attributes": f.evidence["differing_attributes"]}
                for f in items[:GROUP_LIST]]
            first.evidence["left_out"] = max(0, n - GROUP_LIST)
            first.connections = [f.connections[0] for f in items]
            first.frames = sorted({fr for f in items[:GROUP_LIST] for fr in f.frames})
            first.last_ts = max(f.last_ts or 0 for f in items)
        else:
            first.evidence["attempts_affected"] = 1
        out.append(first)
    return out


def _conflicting_replies_each(ctx: DetectorContext) -> list[Finding]:
    out = []
    for c in ctx.conns:
        if c.proto != "tcp":
            continue
        for syns in _syn_groups(c):
            syn = syns[0]
            want_ack = (syn.seq + 1) & _MASK  # type: ignore[operator]
            rst = synack = None
            for p in c.evidence:
                if p.no <= syn.no or p.flags is None:
                    continue
                if _from(c, p, "orig"):
                    if p.flags & TCP_ACK and not p.flags & TCP_RST and p.ack != 0:
                        break  # the client moved on: replies after this answer something else
                    continue
                # Both replies must answer *this* SYN: they acknowledge exactly its sequence number.
                # (RST injectors are sloppy: some acknowledge the SYN's own number, or nothing.)
                if rst is None and p.flags & TCP_RST and (not p.flags & TCP_ACK or p.ack in (want_ack, syn.seq)):
                    rst = p
                if synack is None and p.flags & TCP_SYN and p.flags & TCP_ACK and p.ack == want_ack:
                    synack = p
            if rst is not None and synack is not None:
                out.append(_conflict_finding(ctx, c, syn, rst, synack))
                break
        else:
            f = _responder_view(ctx, c)
            if f is not None:
                out.append(f)
    return out


def _conflict_finding(ctx: DetectorContext, c: Connection, syn: Packet, rst: Packet, synack: Packet) -> Finding:
    diffs: dict[str, dict[str, Any]] = {}
    for attr in ("src_mac", "ttl", "ip_id", "window"):
        a, b = getattr(rst, attr), getattr(synack, attr)
        if a != b:
            diffs[attr] = {"rst": a, "syn_ack": b}
    if (rst.options or b"") != (synack.options or b""):
        diffs["tcp_options"] = {"rst": (rst.options or b"").hex(), "syn_ack": (synack.options or b"").hex()}
    t_rst = _sec(rst.ts - syn.ts)
    t_sa = _sec(synack.ts - syn.ts)
    diffs["delay_after_syn_s"] = {"rst": t_rst, "syn_ack": t_sa}
    mac_differs = "src_mac" in diffs and rst.src_mac is not None and synack.src_mac is not None
    ttl_differs = "ttl" in diffs
    two_machines = mac_differs or ttl_differs
    first, second = ("RST", "SYN-ACK") if rst.no < synack.no else ("SYN-ACK", "RST")
    vip = _ep_str(c.resp.addr, c.resp.port)
    reasons = []
    if mac_differs:
        reasons.append(f"the RST came from MAC {rst.src_mac} and the SYN-ACK from {synack.src_mac}")
    if ttl_differs:
        reasons.append(f"their TTLs differ ({rst.ttl} vs {synack.ttl}), so they travelled different paths")
    timing = (f"the {first} arrived {_fmt_s(min(t_rst, t_sa))} after the SYN and the {second} "
              f"{_fmt_s(max(t_rst, t_sa))} after it")
    if two_machines:
        verdict = "Two different machines answered for " + vip + ": " + "; ".join(reasons) + "."
    else:
        verdict = (f"Both replies carry the same link-layer source and TTL, so the capture cannot show two "
                   f"machines; they may both come from one device in front of {vip}.")
    summary = (f"SYN frame {syn.no} to {vip} was answered by a RST (frame {rst.no}) and by a SYN-ACK "
               f"(frame {synack.no}) for the same address and port; {timing}.")
    explanation = (
        f"{verdict} This is the signature of a virtual IP served by two stacks: a load balancer or NAT "
        f"whose own kernel has no socket bound on {vip} answers the SYN with a RST, while the backend it "
        f"forwards the SYN to answers directly from the same virtual IP (direct server return). The client "
        f"takes whichever reply comes first: with the RST first, connect() fails with 'connection refused' "
        f"although the backend accepted, and the client then resets the backend's SYN-ACK. "
        f"Fix: keep the VIP's packets away from the balancer's local stack (queue them to the balancer "
        f"program with an NFQUEUE rule, or DROP them in the INPUT chain after copying), or bind the port "
        f"on the balancer. Check on the balancer: `ss -ltn 'sport = :{c.resp.port}'` (no listener), "
        f"`iptables -t mangle -S; iptables -S INPUT`, and `nstat -az TcpOutRsts`.")
    evidence = {
        "view": "client",
        "syn": _pkt_view(syn),
        "rst": _pkt_view(rst),
        "syn_ack": _pkt_view(synack),
        "first_reply": first,
        "differing_attributes": sorted(k for k in diffs if k != "delay_after_syn_s" or t_rst != t_sa),
        "differences": diffs,
        "two_machines": two_machines,
        "retries": len(_syn_groups(c)),
    }
    frames = [syn.no, rst.no, synack.no]
    for p in c.evidence:
        if p.no > synack.no and _from(c, p, "orig") and p.flags is not None and p.flags & TCP_RST:
            frames.append(p.no)
            evidence["client_reset"] = _pkt_view(p)
            break
    return Finding("handshake.conflicting_replies", summary, explanation, frames, [c.uid], syn.ts,
                   max(rst.ts, synack.ts), evidence)


def _responder_view(ctx: DetectorContext, c: Connection) -> Finding | None:
    """Backend-side view: SYN, our SYN-ACK, then the client resets the connection it asked for."""
    if c.proto != "tcp" or c.synack_frame is None or c.ack_frame is not None:
        return None
    syn = synack = rst = None
    for p in c.evidence:
        f = p.flags
        if f is None:
            continue
        if syn is None and f & TCP_SYN and not f & TCP_ACK and _from(c, p, "orig"):
            syn = p
        elif syn is not None and synack is None and f & TCP_SYN and f & TCP_ACK and _from(c, p, "resp"):
            synack = p
        elif synack is not None and _from(c, p, "orig"):
            if f & TCP_RST and p.seq == synack.ack:
                rst = p
            break
        elif synack is not None and _from(c, p, "resp") and f & TCP_RST:
            return None
    if syn is None or synack is None or rst is None:
        return None
    if any(_from(c, p, "resp") and p.flags is not None and p.flags & TCP_RST for p in c.evidence):
        return None
    delay = _sec(rst.ts - synack.ts)
    vip = _ep_str(c.resp.addr, c.resp.port)
    summary = (f"{_ep_str(c.orig.addr, c.orig.port)} asked for a connection to {vip} (SYN frame {syn.no}), got "
               f"our SYN-ACK (frame {synack.no}) and reset it {_fmt_s(delay)} later (frame {rst.no}) "
               f"instead of completing the handshake.")
    explanation = (
        f"A client resets a SYN-ACK it asked for when its socket is already gone: something else answered "
        f"its SYN first, typically a RST from another stack that owns the same address (a load balancer or "
        f"NAT in front of this host whose kernel has no socket on {vip}). Seen from the backend, only the SYN "
        f"and its own SYN-ACK are visible. Capture on the client at the same time to see the foreign RST "
        f"(`pcapsleuth analyze client.pcap backend.pcap`). A SYN port scanner produces the same pattern; "
        f"repeated attempts from an ordinary client port point to the load-balancer case.")
    evidence = {"view": "responder", "syn": _pkt_view(syn), "syn_ack": _pkt_view(synack),
                "client_reset": _pkt_view(rst), "reset_after_s": delay, "replies_seen": ["SYN-ACK"],
                "differing_attributes": []}
    return Finding("handshake.conflicting_replies", summary, explanation, [syn.no, synack.no, rst.no], [c.uid],
                   syn.ts, rst.ts, evidence, severity="warning")


# -- handshake.unanswered_syn ------------------------------------------------------------------

def _schedule(intervals: list[float]) -> str:
    """Name the SYN retry schedule: classic exponential (1, 2, 4 ... s) or Linux >= 6.5's
    linear-then-exponential (tcp_syn_linear_timeouts: several 1 s retries, then doubling)."""
    if not intervals:
        return "single"
    if len(intervals) == 1:
        return "single_retry"
    ratios = [b / a for a, b in zip(intervals, intervals[1:], strict=False) if a > 0]
    if not ratios:
        return "irregular"
    doubling = [1.6 <= r <= 2.5 for r in ratios]
    flat = [0.8 <= r <= 1.25 for r in ratios]
    if all(doubling):
        return "exponential"
    k = 0
    while k < len(flat) and flat[k]:
        k += 1
    if k >= 1 and all(doubling[k:]):
        return "linear_then_exponential" if k < len(flat) else "linear"
    return "irregular"


def detect_unanswered_syn(ctx: DetectorContext) -> list[Finding]:
    per_listener: dict[tuple[str, int, str], list[dict[str, Any]]] = defaultdict(list)
    for c in ctx.conns:
        if c.proto != "tcp" or c.resp.pkts or c.resp.bad_checksums:
            continue
        groups = _syn_groups(c)
        if not groups:
            continue
        if any(_from(c, p, "orig") and p.flags is not None and p.flags & TCP_ACK and not p.flags & TCP_RST
               for p in c.evidence):
            continue  # the client ACKed an answer the capture did not see (one-sided capture)
        syns = max(groups, key=len)
        ts = [p.ts for p in syns]
        orig_rst = next((p.ts for p in c.evidence if _from(c, p, "orig") and p.flags is not None
                         and p.flags & TCP_RST), None)
        window_end = orig_rst if orig_rst is not None else ctx.capture_end
        if window_end - ts[0] < 1_000_000_000:
            continue  # the capture (or the client) stopped before an answer was due: no evidence
        intervals = [round((b - a) / 1e9, 3) for a, b in zip(ts, ts[1:], strict=False)]
        last_gap = intervals[-1] if intervals else 1.0
        end = ctx.capture_end
        expected_next = ts[-1] + int(max(last_gap * 2, 1.0) * 1e9)
        gave_up = end > expected_next + 500_000_000 or c.successor is not None
        until = (expected_next if gave_up else end) - ts[0]
        loop = _is_loopback(c, ctx.info)
        cause, cause_detail = _unanswered_cause(ctx, c, syns[0])
        per_listener[(c.resp.addr, c.resp.port, cause)].append({
            "conn": c, "syns": syns, "intervals": intervals, "gave_up": gave_up, "until": _sec(until),
            "loopback": loop, "schedule": _schedule(intervals), "cause_detail": cause_detail,
        })
    out = []
    for (addr, port, cause), items in per_listener.items():
        out.append(_unanswered_finding(ctx, addr, port, cause, items))
    return out


def _unanswered_cause(ctx: DetectorContext, c: Connection, syn: Packet) -> tuple[str, dict[str, Any]]:
    pred = ctx.by_uid.get(c.predecessor) if c.predecessor else None
    if pred is not None and _half_closed(pred) is not None:
        return "close_wait_collision", {"predecessor": pred.uid}
    # Handshakes to the same listener that completed while the application never served them.
    waiting = []
    for o in ctx.handshakes_by_listener.get((c.resp.addr, c.resp.port), ()):
        if o is c or o.ack_ts is None or o.ack_ts > syn.ts:
            continue
        served = o.resp.data_bytes > 0 or (o.resp.fins and o.resp.fins[0] < syn.no)
        closed_before = o.close_frame is not None and o.close_frame < syn.no
        if not served and not closed_before:
            waiting.append(o)
    if waiting:
        return "accept_queue_full", {"established_not_accepted": [o.uid for o in waiting[:GROUP_LIST]],
                                     "established_not_accepted_count": len(waiting),
                                     "handshake_frames": [o.ack_frame for o in waiting[:GROUP_LIST]]}
    return "unknown", {}


def _unanswered_finding(ctx: DetectorContext, addr: str, port: int, cause: str,
                        items: list[dict[str, Any]]) -> Finding:
    items.sort(key=lambda it: it["syns"][0].no)
    first = items[0]
    loop = any(it["loopback"] for it in items)
    dest = _ep_str(addr, port)
    n = len(items)
    attempts = sum(len(it["syns"]) for it in items)
    frames: list[int] = []
    for it in items[:GROUP_LIST]:
        frames.extend(p.no for p in it["syns"][:16])
    per_conn = [{"uid": it["conn"].uid, "client": _ep_str(it["conn"].orig.addr, it["conn"].orig.port),
                 "attempts": len(it["syns"]), "intervals": it["intervals"], "schedule": it["schedule"],
                 "gave_up": it["gave_up"], "until_s": it["until"], "first_frame": it["syns"][0].no}
                for it in items[:GROUP_LIST]]
    evidence: dict[str, Any] = {
        "attempts": len(first["syns"]),
        "intervals": first["intervals"],
        "schedule": first["schedule"],
        "until_s": first["until"],
        "gave_up": first["gave_up"],
        "loopback": loop,
        "cause": cause,
        "connections_affected": n,
        "syns_total": attempts,
        "per_connection": per_conn,
        "left_out": max(0, n - GROUP_LIST),
    }
    evidence.update(first["cause_detail"])
    conns_word = "connection attempt" if n == 1 else "connection attempts"
    schedule_txt = {
        "exponential": "the classic exponential retry schedule (1, 2, 4 ... s)",
        "linear_then_exponential": "Linux's linear-then-exponential schedule (>= 6.5: 1 s retries, then doubling)",
        "linear": "evenly spaced retries (Linux >= 6.5 linear phase)",
    }.get(first["schedule"], "an irregular retry schedule")
    end_txt = (f"the client gave up after {first['until']:.1f} s" if first["gave_up"]
               else f"the capture ended {first['until']:.1f} s after the first SYN")
    cause_txt = {
        "accept_queue_full": (f"; likely cause: a full accept queue ({evidence.get('established_not_accepted_count')} "
                              f"completed handshake(s) to the same listener never served)"),
        "close_wait_collision": "; likely cause: the 4-tuple collides with a socket left in CLOSE_WAIT",
    }.get(cause, "")
    summary = (f"{n} {conns_word} to {dest} sent {attempts} SYNs and got no reply at all; the first sent "
               f"{len(first['syns'])} SYNs with {schedule_txt} and {end_txt}"
               + (" (on loopback)" if loop else "") + cause_txt + ".")
    frames += [f for f in evidence.get("handshake_frames", []) if f]
    if loop:
        base = ("On loopback a packet cannot be lost, so an unanswered SYN is local socket state refusing "
                "it silently. ")
    else:
        base = ("No reply of any kind came back: the SYNs were lost or silently dropped before the server, or "
                "the server's answers were lost on the way back. ")
    if cause == "accept_queue_full":
        k = evidence["established_not_accepted_count"]
        explanation = base + (
            f"The same listener had just completed {k} other handshake(s) that its application never served "
            f"(no data, no close from the server): they sit in the accept queue, the queue is full, and the "
            f"kernel drops new SYNs while it stays full. The application is not calling accept() fast enough "
            f"(or the backlog is tiny). Check `ss -ltn 'sport = :{port}'` (Recv-Q = queued, Send-Q = backlog), "
            f"`nstat -az TcpExtListenOverflows TcpExtListenDrops`, and the listen() backlog against "
            f"`net.core.somaxconn`.")
    elif cause == "close_wait_collision":
        explanation = base + (
            "The same 4-tuple was used by an earlier connection that the server never closed (its socket is "
            "still in CLOSE_WAIT). Older kernels silently ignore a SYN that lands on such a socket, so connect() "
            "times out. Find the leak with `ss -tanp state close-wait`; see the reuse.peer_in_close_wait finding.")
    else:
        explanation = base + (
            "The capture holds no evidence of why. Check whether the server host saw the SYNs (capture there), "
            "firewall rules that DROP rather than reject (`iptables -S`, `nft list ruleset`), and routing on the "
            "return path." if not loop else
            "With no completed handshakes to the same listener in view, the usual suspects are a listener whose "
            "accept queue filled before the capture started (`ss -ltn`, `nstat -az TcpExtListenOverflows`), "
            "an iptables/nft DROP on lo, or a SYN landing on a socket left over from an earlier connection "
            "(`ss -tan state close-wait`).")
    sev = "error" if loop else "warning"
    conns = [it["conn"] for it in items]
    return Finding("handshake.unanswered_syn", summary, explanation, frames, [c.uid for c in conns],
                   min(it["syns"][0].ts for it in items), max(it["syns"][-1].ts for it in items), evidence,
                   severity=sev)


# -- reuse.peer_in_close_wait and close.close_wait_leak ---------------------------------------

def _half_closed(c: Connection) -> dict[str, Any] | None:
    """If one side's FIN was ACKed and the other never sent one, who is stuck where."""
    if c.proto != "tcp":
        return None
    for closer, stuck, cname, sname in ((c.orig, c.resp, "orig", "resp"), (c.resp, c.orig, "resp", "orig")):
        if closer.fin_raw is None or stuck.fin_cnt or stuck.rst_cnt:
            continue
        if stuck.tcp_state != CLOSE_WAIT or closer.tcp_state not in (FIN_WAIT_2, FIN_WAIT_1):
            continue
        fin_frame = closer.fins[0] if closer.fins else None
        fin_ack = None
        want = (closer.fin_raw + 1) & _MASK
        for p in c.evidence:
            if p.flags is not None and p.flags & TCP_ACK and p.ack == want and _from(c, p, sname):
                fin_ack = p
                break
        if fin_ack is None:
            continue
        fin_pkt = next((p for p in c.evidence if p.no == fin_frame), None)
        return {"closer": closer, "stuck": stuck, "closer_role": cname, "stuck_role": sname, "fin_frame": fin_frame,
                "fin_ts": fin_pkt.ts if fin_pkt is not None else fin_ack.ts, "fin_ack": fin_ack}
    return None


def detect_close_wait_reuse(ctx: DetectorContext) -> list[Finding]:
    per_server: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for c in ctx.conns:
        if c.proto != "tcp" or not c.predecessor:
            continue
        pred = ctx.by_uid.get(c.predecessor)
        if pred is None:
            continue
        hc = _half_closed(pred)
        if hc is None:
            continue
        syns = _syn_groups(c)
        if not syns:
            continue
        syn = syns[0][0]
        item = _collision(ctx, c, pred, hc, syn)
        per_server[(hc["stuck"].addr, hc["stuck"].port)].append(item)
    return [_collision_finding(ctx, server, items) for server, items in per_server.items()]


def _collision(ctx: DetectorContext, c: Connection, pred: Connection, hc: dict[str, Any],
               syn: Packet) -> dict[str, Any]:
    closer, stuck = hc["closer"], hc["stuck"]
    old_client_next = (closer.fin_raw + 1) & _MASK
    old_server_next = stuck.last_seq
    challenge = rst = None
    for p in c.evidence:
        if p.no <= syn.no or p.flags is None:
            continue
        if challenge is None and _from(c, p, "resp") and p.flags & TCP_ACK and not p.flags & (TCP_SYN | TCP_RST):
            challenge = p
        elif challenge is not None and _from(c, p, "orig") and p.flags & TCP_RST:
            rst = p
            break
    retry_syn = retry_synack = None
    succ = ctx.by_uid.get(c.successor) if c.successor else None
    if succ is not None:
        for p in succ.evidence:
            if p.flags is None:
                continue
            if retry_syn is None and p.flags & TCP_SYN and not p.flags & TCP_ACK and _from(succ, p, "orig"):
                retry_syn = p
            elif retry_syn is not None and p.flags & TCP_SYN and p.flags & TCP_ACK and _from(succ, p, "resp"):
                retry_synack = p
                break
    half_closed_s = _sec(syn.ts - hc["fin_ack"].ts)
    matches = None
    if challenge is not None:
        matches = challenge.ack == old_client_next
    syn_groups = _syn_groups(c)
    attempts = max((len(g) for g in syn_groups), default=1)
    if challenge is not None and retry_synack is not None:
        outcome = "recovered"
        cost = _sec(retry_synack.ts - syn.ts)
    elif challenge is not None:
        outcome = "reset_no_retry_seen"
        cost = None
    else:
        outcome = "unanswered"
        cost = None
    return {"conn": c, "pred": pred, "hc": hc, "syn": syn, "challenge": challenge, "rst": rst,
            "retry_syn": retry_syn, "retry_synack": retry_synack, "half_closed_s": half_closed_s,
            "matches_old": matches, "old_client_next": old_client_next, "old_server_next": old_server_next,
            "outcome": outcome, "cost_s": cost, "attempts": attempts, "succ": succ}


def _collision_finding(ctx: DetectorContext, server: tuple[str, int], items: list[dict[str, Any]]) -> Finding:
    items.sort(key=lambda it: it["syn"].no)
    it = items[0]
    n = len(items)
    srv = _ep_str(*server)
    client = _ep_str(it["conn"].orig.addr, it["conn"].orig.port)
    frames: list[int] = []
    for x in items[:GROUP_LIST]:
        frames += [f for f in (x["hc"]["fin_frame"], x["hc"]["fin_ack"].no, x["syn"].no) if f]
        for k in ("challenge", "rst", "retry_syn", "retry_synack"):
            if x[k] is not None:
                frames.append(x[k].no)
    recovered = [x for x in items if x["outcome"] == "recovered"]
    unanswered = [x for x in items if x["outcome"] == "unanswered"]
    first_txt = (f"the SYN from {client} (frame {it['syn'].no}) reused the 4-tuple of connection {it['pred'].uid}, "
                 f"whose FIN (frame {it['hc']['fin_frame']}) the server had ACKed (frame {it['hc']['fin_ack'].no}) "
                 f"{it['half_closed_s']:.2f} s earlier without ever closing its side")
    if it["outcome"] == "recovered":
        how = (f"; the server answered with a challenge ACK (frame {it['challenge'].no}) carrying the old "
               f"connection's numbers (ack {it['challenge'].ack}"
               + (" = the old client FIN + 1" if it["matches_old"] else "") + ")"
               + (f", the client reset it (frame {it['rst'].no})" if it["rst"] is not None else "")
               + f" and the retry connected {it['cost_s']:.2f} s after the first SYN")
    elif it["outcome"] == "unanswered":
        how = f"; its {it['attempts']} SYN(s) were never answered"
    else:
        how = f"; the server answered with a challenge ACK (frame {it['challenge'].no})"
    if n == 1:
        summary = f"A new connection collided with a socket left in CLOSE_WAIT on {srv}: {first_txt}{how}."
    else:
        summary = (f"{n} new connections collided with sockets left in CLOSE_WAIT on {srv} ({len(recovered)} "
                   f"recovered after a challenge ACK and a retry, {len(unanswered)} never answered); first: "
                   f"{first_txt}{how}.")
    explanation = (
        f"The server application at {srv} leaks sockets: it received the client's FIN (read() returned 0) but "
        f"never called close(), so the socket stays in CLOSE_WAIT for as long as the process lives. The client's "
        f"side (FIN_WAIT_2) expired after net.ipv4.tcp_fin_timeout, which freed its port; when a new connection "
        f"picks the same source port, its SYN lands on the stale socket instead of the listener. Current kernels "
        f"answer with a challenge ACK (RFC 5961) carrying the old connection's sequence numbers; the client "
        f"resets it, which finally kills the stale socket, and connects on its SYN retry about a second later "
        f"(a latency spike). Older kernels ignore the SYN, and connect() times out. "
        f"Fix the leak in the server (close the socket on EOF, check error paths). Confirm with "
        f"`ss -tanp state close-wait '( sport = :{server[1]} )'` on the server (the owning process is listed) and "
        f"watch the count grow. Shrinking tcp_fin_timeout or widening net.ipv4.ip_local_port_range only changes "
        f"how often the collision happens.")
    per = []
    for x in items[:GROUP_LIST]:
        per.append({
            "uid": x["conn"].uid, "predecessor": x["pred"].uid,
            "client": _ep_str(x["conn"].orig.addr, x["conn"].orig.port),
            "predecessor_fin_frame": x["hc"]["fin_frame"], "predecessor_fin_ack_frame": x["hc"]["fin_ack"].no,
            "half_closed_seconds": x["half_closed_s"], "syn_frame": x["syn"].no,
            "challenge_ack_frame": x["challenge"].no if x["challenge"] is not None else None,
            "challenge_ack": _pkt_view(x["challenge"]) if x["challenge"] is not None else None,
            "old_client_next_seq": x["old_client_next"], "old_server_next_seq": x["old_server_next"],
            "challenge_matches_old_connection": x["matches_old"],
            "rst_frame": x["rst"].no if x["rst"] is not None else None,
            "retry_syn_frame": x["retry_syn"].no if x["retry_syn"] is not None else None,
            "retry_syn_ack_frame": x["retry_synack"].no if x["retry_synack"] is not None else None,
            "outcome": x["outcome"], "delay_seconds": x["cost_s"], "syn_attempts": x["attempts"],
        })
    evidence: dict[str, Any] = dict(per[0])
    evidence.update({"collisions": n, "recovered": len(recovered), "unanswered": len(unanswered),
                     "per_collision": per, "left_out": max(0, n - GROUP_LIST), "server": srv})
    conns = []
    for x in items:
        conns += [x["pred"].uid, x["conn"].uid] + ([x["succ"].uid] if x["succ"] is not None else [])
    return Finding("reuse.peer_in_close_wait", summary, explanation, frames, list(dict.fromkeys(conns)),
                   items[0]["hc"]["fin_ts"], max(x["syn"].ts for x in items), evidence)


def detect_close_wait_leak(ctx: DetectorContext) -> list[Finding]:
    groups: dict[tuple[str, int], list[tuple[Connection, dict[str, Any], float, bool]]] = defaultdict(list)
    for c in ctx.conns:
        hc = _half_closed(c)
        if hc is None:
            continue
        succ = ctx.by_uid.get(c.successor) if c.successor else None
        reused = succ is not None
        end = succ.first_ts if succ is not None else ctx.capture_end
        held = _sec(end - hc["fin_ack"].ts)
        if held < 1.0 and not reused:
            continue  # a short half-close before the capture ended is normal (shutdown(SHUT_WR))
        groups[(hc["stuck"].addr, hc["stuck"].port)].append((c, hc, held, reused))
    out = []
    for (addr, port), items in groups.items():
        items.sort(key=lambda x: x[0].index)
        n = len(items)
        srv = _ep_str(addr, port)
        longest = max(x[2] for x in items)
        n_reused = sum(1 for x in items if x[3])
        frames: list[int] = []
        for _c, hc, _, _ in items[:GROUP_LIST]:
            frames += [f for f in (hc["fin_frame"], hc["fin_ack"].no) if f]
        role = items[0][1]["stuck_role"]
        summary = (f"{n} socket{'s' if n != 1 else ''} left in CLOSE_WAIT by {srv}: the peer's FIN was acknowledged "
                   f"and {srv} never sent its own (longest {longest:.1f} s"
                   + (f"; {n_reused} of them were hit by a new connection on the same 4-tuple" if n_reused else "")
                   + ").")
        explanation = (
            f"CLOSE_WAIT means the kernel delivered the peer's FIN to the application at {srv} (read() returned 0) "
            f"and is waiting for it to call close(). A socket that stays there is leaked by the application: each "
            f"one holds a file descriptor and its 4-tuple, and a later connection reusing the tuple collides "
            f"with it. On the host: `ss -tanp state close-wait '( sport = :{port} )'` lists them with the owning "
            f"process; `ls -l /proc/PID/fd | wc -l` shows the descriptor leak growing. The fix is in the "
            f"application (close on EOF, including error paths); no sysctl removes CLOSE_WAIT sockets.")
        per = [{"uid": c.uid, "peer": _ep_str((c.orig if hc['stuck_role'] == 'resp' else c.resp).addr,
                                              (c.orig if hc['stuck_role'] == 'resp' else c.resp).port),
                "fin_frame": hc["fin_frame"], "fin_ack_frame": hc["fin_ack"].no, "half_closed_seconds": held,
                "tuple_reused": r} for c, hc, held, r in items[:GROUP_LIST]]
        evidence = {"endpoint": srv, "endpoint_role": role, "sockets": n, "longest_half_closed_seconds": longest,
                    "tuples_reused": n_reused, "per_connection": per, "left_out": max(0, n - GROUP_LIST)}
        out.append(Finding("close.close_wait_leak", summary, explanation, frames, [x[0].uid for x in items],
                           min(x[1]["fin_ts"] for x in items), max(x[1]["fin_ack"].ts for x in items), evidence))
    return out


# -- handshake.refused ---------------------------------------------------------------------------

def detect_refused(ctx: DetectorContext) -> list[Finding]:
    per_dest: dict[tuple[str, int], list[tuple[Connection, Packet, Packet]]] = defaultdict(list)
    for c in ctx.conns:
        if c.proto != "tcp" or c.synack_frame is not None:
            continue
        for syns in _syn_groups(c):
            syn = syns[0]
            want = (syn.seq + 1) & _MASK  # type: ignore[operator]
            rst = next((p for p in c.evidence if p.no > syn.no and _from(c, p, "resp") and p.flags is not None
                        and p.flags & TCP_RST and p.flags & TCP_ACK and p.ack == want), None)
            if rst is not None:
                per_dest[(c.resp.addr, c.resp.port)].append((c, syn, rst))
                break
    out = []
    for (addr, port), items in per_dest.items():
        n = len(items)
        dest = _ep_str(addr, port)
        frames = []
        for _, syn, rst in items[:GROUP_LIST]:
            frames += [syn.no, rst.no]
        ttls = sorted({rst.ttl for _, _, rst in items if rst.ttl is not None})
        macs = sorted({rst.src_mac for _, _, rst in items if rst.src_mac})
        delays = [_sec(rst.ts - syn.ts) for _, syn, rst in items]
        summary = (f"{n} connection attempt{'s' if n != 1 else ''} to {dest} {'were' if n != 1 else 'was'} refused: "
                   f"each SYN was answered only by a RST (typically {_fmt_s(sorted(delays)[len(delays) // 2])} later).")
        explanation = (
            f"A RST in answer to a SYN means the host that answered has no socket listening on port {port} "
            f"(or a firewall rule rejects with tcp-reset). Check on the server: `ss -ltnp 'sport = :{port}'` "
            f"(is the service running and bound to {addr} or 0.0.0.0?), and `iptables -S | grep -i reject`. "
            f"If the service does listen there, the RST came from another device that owns the address: compare "
            f"the RST's TTL ({', '.join(map(str, ttls)) or '?'}) and source MAC ({', '.join(macs) or 'n/a'}) with "
            f"the server's.")
        evidence = {"destination": dest, "refused": n, "rst_ttl": ttls, "rst_src_mac": macs,
                    "rst_delay_s": delays[:GROUP_LIST], "left_out": max(0, n - GROUP_LIST)}
        out.append(Finding("handshake.refused", summary, explanation, frames, [c.uid for c, _, _ in items],
                           min(s.ts for _, s, _ in items), max(r.ts for _, _, r in items), evidence))
    return out


DETECTORS: list[Callable[[DetectorContext], list[Finding]]] = [
    detect_conflicting_replies,
    detect_unanswered_syn,
    detect_close_wait_reuse,
    detect_close_wait_leak,
    detect_refused,
]


def _all_detectors() -> list[Callable[[DetectorContext], list[Finding]]]:
    from .anomalies import ANOMALY_DETECTORS

    return DETECTORS + ANOMALY_DETECTORS


