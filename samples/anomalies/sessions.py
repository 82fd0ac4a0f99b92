#!/usr/bin/env python3
"""Short request/response sessions that end abnormally or idle, for reset-*.pcap and keepalive.pcap.

  sessions.py SCENARIO server|client ...     SCENARIO is one of
    unread     client sends 20000 bytes; the server reads only 100 of them, writes a reply, close()s
               with the rest unread in its receive queue -> the kernel sends RST instead of FIN.
               The client then logs what each recv()/send() returned.
    linger0    3 request/response rounds; the server reads the 4th request, sets SO_LINGER {on, 0}
               and close()s -> RST. The client, waiting for the 4th response, logs the errno.
    keepalive  the client sets SO_KEEPALIVE=1, TCP_KEEPIDLE=1, TCP_KEEPINTVL=1, TCP_KEEPCNT=5, does one
               request/response, stays idle --idle seconds, then closes (FIN); the server closes on EOF.
Every socket option set is recorded in the facts (JSON, --facts), with each call's result.
"""
import argparse
import fcntl
import socket
import struct
import termios
import time

from anomlib import Log, errname, ready, tcp_info, write_json


def listen(a, facts):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.bind, a.port))
    ls.listen(8)
    ready(a.ready_file)
    c, peer = ls.accept()
    ls.close()
    facts["peer"] = "%s:%d" % peer
    return c


def connect(a, facts, opts=()):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    for level, name, label, value in opts:
        s.setsockopt(level, name, value)
        facts["sockopts"][label] = value
    s.connect((a.dst, a.port))
    src = s.getsockname()
    facts["four_tuple"] = {"src": src[0], "sport": src[1], "dst": a.dst, "dport": a.port}
    return s


def call(log, results, what, fn):
    """Run fn(), log and record its result: the value, or the errno name it raised."""
    try:
        v = fn()
        r = {"call": what, "result": v if isinstance(v, int) else "%d bytes" % len(v)}
        if isinstance(v, bytes):
            r["data"] = v.decode(errors="replace")
    except OSError as e:
        r = {"call": what, "error": errname(e), "strerror": e.strerror}
    r["t"] = round(time.time() - log.t0, 4)
    results.append(r)
    log(what, **{k: v for k, v in r.items() if k not in ("call", "t", "data")})
    return r


def unread_bytes(s):
    buf = fcntl.ioctl(s.fileno(), termios.FIONREAD, struct.pack("i", 0))
    return struct.unpack("i", buf)[0]


def unread_server(a, log, facts):
    c = listen(a, facts)
    time.sleep(0.3)  # let the whole request arrive
    d = c.recv(100)
    facts["request_bytes_read"] = len(d)
    c.sendall(b"HTTP/1.0 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n")
    facts["unread_bytes_at_close"] = unread_bytes(c)
    log("close_with_unread", unread=facts["unread_bytes_at_close"])
    c.close()


def unread_client(a, log, facts):
    s = connect(a, facts)
    s.sendall(b"P" * a.bytes)
    facts["bytes_sent"] = a.bytes
    log("sent", bytes=a.bytes)
    time.sleep(0.6)
    res = facts["calls"] = []
    for _ in range(3):
        r = call(log, res, "recv(4096)", lambda: s.recv(4096))
        if r.get("result") == 0:
            break
    call(log, res, "send(5)", lambda: s.send(b"more\n"))
    call(log, res, "recv(4096)", lambda: s.recv(4096))
    s.close()


def linger0_server(a, log, facts):
    c = listen(a, facts)
    for i in range(1, 5):
        req = c.recv(4096)
        log("request", n=i, data=req.decode().strip())
        if i < 4:
            c.sendall(b"response %d\n" % i + b"x" * 200)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    facts["sockopts"]["SO_LINGER"] = {"l_onoff": 1, "l_linger": 0}
    log("close_linger0")
    c.close()


def linger0_client(a, log, facts):
    s = connect(a, facts)
    res = facts["calls"] = []
    for i in range(1, 5):
        s.sendall(b"request %d\n" % i)
        if i < 4:
            got = b""
            while len(got) < 211:
                got += s.recv(4096)
            log("response", n=i, bytes=len(got))
    call(log, res, "recv(4096) waiting for response 4", lambda: s.recv(4096))
    call(log, res, "recv(4096)", lambda: s.recv(4096))
    call(log, res, "send(5)", lambda: s.send(b"more\n"))
    s.close()


def keepalive_server(a, log, facts):
    c = listen(a, facts)
    req = c.recv(4096)
    c.sendall(b"pong\n")
    log("replied", request=req.decode().strip())
    d = c.recv(4096)
    log("eof" if not d else "data", bytes=len(d))
    c.close()


def keepalive_client(a, log, facts):
    T = socket.IPPROTO_TCP
    opts = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, "SO_KEEPALIVE", 1),
            (T, socket.TCP_KEEPIDLE, "TCP_KEEPIDLE", 1),
            (T, socket.TCP_KEEPINTVL, "TCP_KEEPINTVL", 1),
            (T, socket.TCP_KEEPCNT, "TCP_KEEPCNT", 5)]
    s = connect(a, facts, opts)
    s.sendall(b"ping\n")
    log("reply", data=s.recv(4096).decode().strip())
    log("idle", seconds=a.idle)
    time.sleep(a.idle)
    facts["idle_seconds"] = a.idle
    facts["tcp_info_after_idle"] = tcp_info(s)
    log("close")
    s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=["unread", "linger0", "keepalive"])
    ap.add_argument("role", choices=["server", "client"])
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--dst")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bytes", type=int, default=20000)
    ap.add_argument("--idle", type=float, default=4.5)
    ap.add_argument("--facts", required=True)
    ap.add_argument("--ready-file")
    a = ap.parse_args()
    log = Log(a.role)
    facts = {"role": a.role, "scenario": a.scenario, "sockopts": {}}
    globals()["%s_%s" % (a.scenario, a.role)](a, log, facts)
    facts["events"] = log.events
    write_json(a.facts, facts)


if __name__ == "__main__":
    main()
