#!/usr/bin/env python3
"""Client/server programs for samples/realworld/record.sh (stdlib only). Each writes its own facts as
JSON (--facts): the socket options it set, a timestamped event log (wall clock), results, errnos and
decoded TCP_INFO. TCP_INFO decoding and the event log come from ../anomalies/anomlib.py (imported).

  peers.py http server|client    HTTP-like request/response rounds (--rounds, --req-bytes,
        --resp-bytes, --gap between rounds). Client closes first (FIN); the server closes on EOF.
        Server options for the idle/close scenarios:
          --idle-timeout S   after a response, close the connection if no request came within S
                             (an HTTP server's keep-alive timeout: the server's FIN comes first)
          --hold S           on EOF, wait S seconds before close() (a CLOSE_WAIT the app sits in),
                             taking `ss -tan` snapshots; --hold-ss-at T,T,... (seconds into the hold)
          --close-delay S    on EOF, wait S seconds before close() (no snapshots)
          --think S          wait S seconds before each response
          --no-quickack      (both roles) TCP_QUICKACK=0 before each read: delayed ACKs
        Client options:
          --idle S           after the last response stay connected and idle S seconds before close
          --eof-wait S       when the server's FIN arrives (recv() returns 0), wait S s before close
                             (a browser's pool noticing the close late); --wait-eof: wait for it
          --drop-after-close CMD   after close(), run CMD (an iptables rule) 0.2 s later
          --keepalive IDLE,INTVL,CNT   SO_KEEPALIVE + TCP_KEEPIDLE/KEEPINTVL/KEEPCNT before connect
          --ready-file-after-request F  write F after the first request went out (the recorder starts
                             a late capture then)
  peers.py bulk server|client   client sends --bytes; server reads with --read-sizes (a cycle of
        recv() sizes), optional --rcvbuf before listen, --pause-every B --pause S (sleep S after each
        B bytes read). Hang mode (--hang-shrink-at B --hang-rcvbuf N --hang-stop-read-after S
        --hang-drop-after S --hang-cmd CMD --hang-hold S): after B bytes, set SO_RCVBUF N on the
        connected socket, keep reading for S s, then stop reading; S2 s later run CMD (drops every
        packet the receiver sends); then hold the socket --hang-hold s without reading and exit.
  peers.py synretry client      connect() to a silently dropped port; logs the errno and elapsed time
"""
import argparse
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "anomalies"))
import struct  # noqa: E402

from anomlib import Log, errname, ready, write_json  # noqa: E402
from anomlib import tcp_info as _anom_tcp_info  # noqa: E402


def tcp_info(s):
    """../anomalies/anomlib.py's decoded TCP_INFO plus min_rtt (u32 at offset 148, microseconds, the
    lowest RTT the kernel measured: Karn's rule applied, delayed ACKs filtered by its windowed min)."""
    out = _anom_tcp_info(s)
    raw = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    if len(raw) >= 152:
        out["min_rtt"] = struct.unpack_from("I", raw, 148)[0]
    return out

T = socket.IPPROTO_TCP


def listen(a, facts, rcvbuf=None):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if rcvbuf:
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        facts["sockopts"]["SO_RCVBUF_requested_before_listen"] = rcvbuf
        facts["sockopts"]["SO_RCVBUF_effective"] = ls.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    ls.bind((a.bind, a.port))
    ls.listen(8)
    ready(a.ready_file)
    c, peer = ls.accept()
    ls.close()
    facts["peer"] = "%s:%d" % peer
    return c


def recv_exact(s, n):
    got = b""
    while len(got) < n:
        d = s.recv(min(65536, n - len(got)))
        if not d:
            break
        got += d
    return got


def read_request(c):
    """One request: headers up to CRLFCRLF, then Content-Length bytes. b"" on EOF."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = c.recv(4096)
        if not d:
            return buf
        buf += d
    head, body = buf.split(b"\r\n\r\n", 1)
    n = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            n = int(line.split(b":")[1])
    return head + b"\r\n\r\n" + body + recv_exact(c, n - len(body))


def no_quickack(a, s, facts):
    """--no-quickack: TCP_QUICKACK=0 before each read (the kernel leaves quick-ack mode and delays its
    ACKs; Linux may re-enter quick-ack mode by itself, so it is set again every time)."""
    if a.no_quickack:
        s.setsockopt(T, socket.TCP_QUICKACK, 0)
        facts["sockopts"]["TCP_QUICKACK_before_each_read"] = 0


def ss_snapshot(port):
    return subprocess.run(["ss", "-tanoi", "( sport = :%d or dport = :%d )" % (port, port)],
                          capture_output=True, text=True).stdout


def http_server(a, log, facts):
    c = listen(a, facts)
    log("accept", peer=facts["peer"])
    rounds = 0
    if a.idle_timeout:
        c.settimeout(a.idle_timeout)
    while True:
        no_quickack(a, c, facts)
        try:
            req = read_request(c)
        except socket.timeout:
            log("idle_timeout_close", seconds=a.idle_timeout)
            facts["closed_by"] = "server idle timeout"
            facts["tcp_info_before_close"] = tcp_info(c)
            c.close()
            return
        if not req:
            log("eof")
            break
        rounds += 1
        log("request", n=rounds, bytes=len(req))
        if a.think:
            time.sleep(a.think)
        body = b"r" * a.resp_bytes
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        log("response", n=rounds, body_bytes=len(body))
    facts["rounds"] = rounds
    if a.hold:
        log("hold_start", seconds=a.hold)
        snaps = []
        t0 = time.time()
        for at in [float(x) for x in a.hold_ss_at.split(",")] if a.hold_ss_at else []:
            time.sleep(max(0.0, t0 + at - time.time()))
            snaps.append({"t_into_hold_s": at, "wall": round(time.time(), 6), "ss": ss_snapshot(a.port)})
            log("ss_snapshot", at=at)
        time.sleep(max(0.0, t0 + a.hold - time.time()))
        facts["ss_during_hold"] = snaps
        facts["hold_seconds"] = a.hold
        log("hold_end")
    if a.close_delay:
        time.sleep(a.close_delay)
    facts["tcp_info_before_close"] = tcp_info(c)
    c.close()
    log("close")


def connect(a, facts, opts=()):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    for level, name, label, value in opts:
        s.setsockopt(level, name, value)
        facts["sockopts"][label] = value
    if a.sport:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", a.sport))
    s.connect((a.dst, a.port))
    src = s.getsockname()
    facts["four_tuple"] = {"src": src[0], "sport": src[1], "dst": a.dst, "dport": a.port}
    return s


def read_response(s):
    head = b""
    while b"\r\n\r\n" not in head:
        d = s.recv(4096)
        if not d:
            return head
        head += d
    h, body = head.split(b"\r\n\r\n", 1)
    n = int([ln for ln in h.split(b"\r\n") if ln.lower().startswith(b"content-length:")][0].split(b":")[1])
    return h + b"\r\n\r\n" + body + recv_exact(s, n - len(body))


def http_client(a, log, facts):
    opts = []
    if a.keepalive:
        idle, intvl, cnt = (int(x) for x in a.keepalive.split(","))
        opts = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, "SO_KEEPALIVE", 1), (T, socket.TCP_KEEPIDLE, "TCP_KEEPIDLE", idle),
                (T, socket.TCP_KEEPINTVL, "TCP_KEEPINTVL", intvl), (T, socket.TCP_KEEPCNT, "TCP_KEEPCNT", cnt)]
    s = connect(a, facts, opts)
    log("connected", sport=facts["four_tuple"]["sport"])
    body = b"q" * a.req_bytes
    for i in range(1, a.rounds + 1):
        req = (b"POST /r%d HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n" % (i, a.dst.encode(), len(body))) + body
        s.sendall(req)
        log("request", n=i, bytes=len(req))
        no_quickack(a, s, facts)
        if i == 1 and a.ready_file_after_request:
            ready(a.ready_file_after_request)
        resp = read_response(s)
        log("response", n=i, bytes=len(resp))
        if i < a.rounds and a.gap:
            time.sleep(a.gap)
    facts["rounds"] = a.rounds
    if a.idle:
        log("idle_start", seconds=a.idle)
        time.sleep(a.idle)
        facts["tcp_info_after_idle"] = tcp_info(s)
        log("idle_end")
    if a.wait_eof:
        d = s.recv(4096)
        log("server_fin_seen" if not d else "data", bytes=len(d))
        facts["eof_wait_seconds"] = a.eof_wait
        if a.eof_wait:
            log("eof_wait_start", seconds=a.eof_wait)
            time.sleep(a.eof_wait)
    facts["tcp_info_before_close"] = tcp_info(s)
    s.close()
    log("close")
    if a.drop_after_close:
        time.sleep(0.2)
        r = subprocess.run(a.drop_after_close, shell=True, capture_output=True, text=True)
        log("drop_rule_installed", rc=r.returncode)
        facts["drop_after_close"] = {"command": a.drop_after_close, "rc": r.returncode, "stderr": r.stderr}


def bulk_server(a, log, facts):
    c = listen(a, facts, a.rcvbuf)
    log("accept", peer=facts["peer"])
    facts["accepted_SO_RCVBUF"] = c.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    sizes = [int(x) for x in a.read_sizes.split(",")]
    facts["read_sizes_cycle"] = sizes
    n = reads = 0
    next_pause = a.pause_every or None
    pauses = []
    shrunk = False
    while True:
        if a.hang_shrink_at and not shrunk and n >= a.hang_shrink_at:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, a.hang_rcvbuf)
            shrunk = True
            t_shrink = time.time()
            log("rcvbuf_shrunk", requested=a.hang_rcvbuf, effective=c.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
                bytes_read=n)
            facts["hang"] = {"shrink_at_bytes": n, "rcvbuf_requested": a.hang_rcvbuf,
                             "rcvbuf_effective": c.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
                             "shrink_wall": round(t_shrink, 6)}
        d = c.recv(sizes[reads % len(sizes)])
        if not d:
            break
        reads += 1
        n += len(d)
        # stop right after a recv(): its window update has just gone out, so with --hang-drop-after 0
        # the sender has data in flight when the receiver goes silent
        if shrunk and time.time() - t_shrink >= a.hang_stop_read_after:
            break
        if shrunk and a.hang_slow_read:
            time.sleep(a.hang_slow_read)
        if next_pause and n >= next_pause:
            t = time.time()
            time.sleep(a.pause)
            pauses.append({"after_bytes": n, "wall": round(t, 6), "slept_s": round(time.time() - t, 6)})
            next_pause += a.pause_every
    if shrunk:
        h = facts["hang"]
        h["stop_read_wall"] = round(time.time(), 6)
        h["bytes_read_at_stop"] = n
        log("stop_reading", bytes_read=n)
        time.sleep(a.hang_drop_after)
        h["tcp_info_before_drop"] = tcp_info(c)
        h["ss_before_drop"] = ss_snapshot(a.port)
        r = subprocess.run(a.hang_cmd, shell=True, capture_output=True, text=True)
        h["drop_wall"] = round(time.time(), 6)
        h["drop_command"] = a.hang_cmd
        h["drop_rc"] = r.returncode
        log("stop_acknowledging", rc=r.returncode)
        time.sleep(a.hang_hold)
        h["tcp_info_at_end"] = tcp_info(c)
        h["ss_at_end"] = ss_snapshot(a.port)
        h["hold_after_drop_s"] = a.hang_hold
        log("hang_end")
        facts["bytes_received"] = n
        facts["reads"] = reads
        # no close(): the process exits with the socket open; whatever the kernel sends then (a RST,
        # data is unread) is dropped by the rule, and the recorder has stopped the capture by then
        return
    facts["bytes_received"] = n
    facts["reads"] = reads
    facts["pauses"] = pauses
    log("eof", bytes_received=n, reads=reads)
    c.sendall(b"ok %d\n" % n)
    facts["tcp_info_before_close"] = tcp_info(c)
    c.close()
    log("close")


def bulk_client(a, log, facts):
    s = connect(a, facts)
    log("connected", sport=facts["four_tuple"]["sport"])
    if a.send_timeout:
        s.settimeout(a.send_timeout)
        facts["send_timeout_s"] = a.send_timeout
    buf = bytes(range(256)) * 64
    sent = 0
    try:
        while sent < a.bytes:
            k = min(len(buf), a.bytes - sent)
            s.sendall(buf[:k])
            sent += k
    except OSError as e:
        facts["send_error"] = errname(e) if not isinstance(e, socket.timeout) else "timeout"
        log("send_error", error=facts["send_error"])
    facts["bytes_sent"] = sent
    log("send_done", bytes_sent=sent)
    if a.no_wait or "send_error" in facts:
        facts["tcp_info_at_end"] = tcp_info(s)
        return
    s.shutdown(socket.SHUT_WR)
    reply = b""
    while True:
        d = s.recv(4096)
        if not d:
            break
        reply += d
    facts["reply"] = reply.decode(errors="replace")
    log("reply", reply=facts["reply"].strip())
    facts["tcp_info_before_close"] = tcp_info(s)
    s.close()
    log("close")


def synretry_client(a, log, facts):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t = time.time()
    log("connect_start")
    try:
        s.connect((a.dst, a.port))
        facts["connect"] = "OK"
    except OSError as e:
        facts["connect"] = errname(e)
        facts["strerror"] = e.strerror
    facts["connect_elapsed_s"] = round(time.time() - t, 4)
    log("connect_end", result=facts["connect"], elapsed=facts["connect_elapsed_s"])
    s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("prog", choices=["http", "bulk", "synretry"])
    ap.add_argument("role", choices=["server", "client"])
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--dst")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--sport", type=int)
    ap.add_argument("--facts", required=True)
    ap.add_argument("--ready-file")
    # http
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--req-bytes", type=int, default=300)
    ap.add_argument("--resp-bytes", type=int, default=500)
    ap.add_argument("--gap", type=float, default=0.0)
    ap.add_argument("--think", type=float, default=0.0)
    ap.add_argument("--no-quickack", action="store_true")
    ap.add_argument("--idle", type=float, default=0.0)
    ap.add_argument("--idle-timeout", type=float)
    ap.add_argument("--hold", type=float, default=0.0)
    ap.add_argument("--hold-ss-at")
    ap.add_argument("--close-delay", type=float, default=0.0)
    ap.add_argument("--wait-eof", action="store_true")
    ap.add_argument("--eof-wait", type=float, default=0.0)
    ap.add_argument("--drop-after-close")
    ap.add_argument("--keepalive")
    ap.add_argument("--ready-file-after-request")
    # bulk
    ap.add_argument("--bytes", type=int, default=1_000_000)
    ap.add_argument("--rcvbuf", type=int)
    ap.add_argument("--read-sizes", default="65536")
    ap.add_argument("--pause-every", type=int)
    ap.add_argument("--pause", type=float, default=0.0)
    ap.add_argument("--no-wait", action="store_true")
    ap.add_argument("--send-timeout", type=float)
    ap.add_argument("--hang-shrink-at", type=int)
    ap.add_argument("--hang-rcvbuf", type=int, default=4096)
    ap.add_argument("--hang-slow-read", type=float, default=0.0)
    ap.add_argument("--hang-stop-read-after", type=float, default=1.0)
    ap.add_argument("--hang-drop-after", type=float, default=2.0)
    ap.add_argument("--hang-cmd", default="true")
    ap.add_argument("--hang-hold", type=float, default=8.0)
    a = ap.parse_args()
    log = Log(a.role)
    facts = {"role": a.role, "program": "peers.py %s %s" % (a.prog, a.role), "argv": sys.argv[1:], "sockopts": {}}
    globals()["%s_%s" % (a.prog, a.role)](a, log, facts)
    facts["events"] = log.events
    write_json(a.facts, facts)


if __name__ == "__main__":
    main()
