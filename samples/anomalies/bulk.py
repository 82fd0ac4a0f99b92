#!/usr/bin/env python3
"""Bulk transfer client/server for lossy-*.pcap and stalled-reader.pcap (stdlib only).

  server: listen (SO_RCVBUF set BEFORE listen() if --rcvbuf, so the accepted socket inherits it and
          the window scale is chosen from it), accept one connection, optionally sleep --stall seconds
          without reading (taking an `ss -tmi` snapshot --ss-at seconds into the stall), then read to
          EOF, answer "ok <bytes>\\n" and close (FIN).
  client: optional fixed source port, optional SO_MAX_PACING_RATE; send --bytes, shutdown(SHUT_WR)
          (FIN), read the reply to EOF, read TCP_INFO just before close(), close.
Each side writes its facts (times, bytes, socket options, tcp_info) as JSON to --facts.
"""
import argparse
import socket
import subprocess
import time

from anomlib import Log, errname, ready, sleep_until, tcp_info, write_json

SO_MAX_PACING_RATE = getattr(socket, "SO_MAX_PACING_RATE", 47)


def server(a):
    log = Log("server")
    facts = {"role": "server", "bind": "%s:%d" % (a.bind, a.port), "sockopts": {}}
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    facts["sockopts"]["SO_REUSEADDR"] = 1
    if a.rcvbuf:
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, a.rcvbuf)
        facts["sockopts"]["SO_RCVBUF_requested"] = a.rcvbuf
        facts["sockopts"]["SO_RCVBUF_effective"] = ls.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    ls.bind((a.bind, a.port))
    ls.listen(8)
    ready(a.ready_file)
    c, peer = ls.accept()
    log("accept", peer="%s:%d" % peer)
    facts["peer"] = "%s:%d" % peer
    facts["accepted_SO_RCVBUF"] = c.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    facts["stall_seconds"] = a.stall
    if a.stall:
        t_end = time.time() + a.stall
        log("stall_start", seconds=a.stall)
        if a.ss_at is not None:
            sleep_until(time.time() + a.ss_at)
            out = subprocess.run(["ss", "-tmi", "sport = :%d" % a.port], capture_output=True, text=True).stdout
            log("ss_snapshot")
            facts["ss_tmi_while_stalled"] = out
            facts["tcp_info_while_stalled"] = tcp_info(c)
        sleep_until(t_end)
        log("stall_end")
    n = 0
    while True:
        d = c.recv(65536)
        if not d:
            break
        n += len(d)
    log("eof", bytes_received=n)
    facts["bytes_received"] = n
    c.sendall(b"ok %d\n" % n)
    facts["tcp_info_before_close"] = tcp_info(c)
    c.close()
    log("closed")
    facts["events"] = log.events
    write_json(a.facts, facts)


def client(a):
    log = Log("client")
    facts = {"role": "client", "sockopts": {}}
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if a.sport:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        facts["sockopts"]["SO_REUSEADDR"] = 1
        s.bind(("0.0.0.0", a.sport))
    if a.pacing:
        s.setsockopt(socket.SOL_SOCKET, SO_MAX_PACING_RATE, a.pacing)
        facts["sockopts"]["SO_MAX_PACING_RATE"] = a.pacing
    s.connect((a.dst, a.port))
    src = s.getsockname()
    facts["four_tuple"] = {"src": src[0], "sport": src[1], "dst": a.dst, "dport": a.port}
    log("connected", sport=src[1])
    buf = bytes(range(256)) * (a.chunk // 256 + 1)
    sent = 0
    while sent < a.bytes:
        k = min(a.chunk, a.bytes - sent)
        s.sendall(buf[:k])
        sent += k
    log("send_done", bytes_sent=sent)
    facts["bytes_sent"] = sent
    s.shutdown(socket.SHUT_WR)
    reply = b""
    try:
        while True:
            d = s.recv(4096)
            if not d:
                break
            reply += d
    except OSError as e:
        facts["recv_error"] = errname(e)
    log("reply", reply=reply.decode(errors="replace").strip())
    facts["reply"] = reply.decode(errors="replace")
    facts["tcp_info_before_close"] = tcp_info(s)
    s.close()
    log("closed")
    ev = {e["event"]: e["t"] for e in log.events}
    facts["durations_s"] = {"connect_to_send_done": round(ev["send_done"] - ev["connected"], 4),
                            "connect_to_reply_eof": round(ev["reply"] - ev["connected"], 4)}
    facts["events"] = log.events
    write_json(a.facts, facts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=["server", "client"])
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--dst")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--sport", type=int)
    ap.add_argument("--bytes", type=int, default=1_500_000)
    ap.add_argument("--chunk", type=int, default=16384)
    ap.add_argument("--pacing", type=int, help="SO_MAX_PACING_RATE in bytes/s")
    ap.add_argument("--rcvbuf", type=int)
    ap.add_argument("--stall", type=float, default=0.0)
    ap.add_argument("--ss-at", type=float)
    ap.add_argument("--facts", required=True)
    ap.add_argument("--ready-file")
    a = ap.parse_args()
    server(a) if a.role == "server" else client(a)


if __name__ == "__main__":
    main()
