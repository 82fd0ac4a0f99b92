#!/usr/bin/env python3
"""Tiny deterministic TCP traffic generator for the sample recorders (stdlib only).

  tcp_peer.py server --bind ADDR --port P [--count N] [--req-size B] [--resp-size B]
                     [--ready-file F] [--dstopts]
  tcp_peer.py client --connect ADDR --port P [--count N] [--req-size B] [--resp-size B]
                     [--bind ADDR] [--src-port P] [--think S] [--hold S] [--gap S]
                     [--start-at EPOCH] [--hopopts] [--dstopts]

Each connection: the client sends exactly REQ_SIZE bytes (an HTTP-like GET padded to size), the
server answers exactly RESP_SIZE bytes (HTTP-like 200 padded to size), then the client half-closes
(FIN), the server sees EOF and closes (FIN), the client reads EOF and closes: a clean 4-way close.
The server handles COUNT connections one after another and exits. Connection i of the client uses
source port SRC_PORT+i when --src-port is given (else an ephemeral port).
--hopopts / --dstopts (IPv6 only) make the kernel add a Hop-by-Hop / Destination Options extension
header (8 bytes, one PadN option) to every segment sent by that socket (needs CAP_NET_RAW).
"""
import argparse
import os
import socket
import sys
import time

# 8-byte extension header body: next-header (filled in by the kernel), hdr-ext-len 0, PadN(4 bytes).
EXT_PADN = bytes([0, 0, 1, 4, 0, 0, 0, 0])
IPV6_HOPOPTS = getattr(socket, "IPV6_HOPOPTS", 54)
IPV6_DSTOPTS = getattr(socket, "IPV6_DSTOPTS", 59)


def family_of(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def make_request(i, host, size):
    head = f"GET /psb/{i} HTTP/1.1\r\nHost: {host}\r\nX-Pad: ".encode()
    tail = b"\r\n\r\n"
    pad = size - len(head) - len(tail)
    if pad < 0:
        raise SystemExit(f"--req-size {size} too small (min {len(head) + len(tail)})")
    return head + b"a" * pad + tail


def make_response(i, size):
    # body length depends on header length, which depends on body length's digit count: iterate.
    body_len = size
    for _ in range(3):
        head = f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {body_len}\r\n\r\n".encode()
        body_len = size - len(head)
    if body_len < 0:
        raise SystemExit(f"--resp-size {size} too small")
    body = (f"response {i} ".encode() + b"b" * size)[:body_len]
    out = head + body
    assert len(out) == size, (len(out), size)
    return out


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(65536, n - len(buf)))
        if not chunk:
            raise ConnectionError(f"peer closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def recv_eof(sock):
    extra = sock.recv(65536)
    if extra:
        raise ConnectionError(f"unexpected {len(extra)} extra bytes")


def set_ext(sock, hop, dst):
    if hop:
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_HOPOPTS, EXT_PADN)
    if dst:
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_DSTOPTS, EXT_PADN)


def server(a):
    fam = family_of(a.bind)
    ls = socket.socket(fam, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    set_ext(ls, False, a.dstopts)  # accepted sockets inherit the listener's IPv6 tx options
    ls.bind((a.bind, a.port))
    ls.listen(16)
    if a.ready_file:
        with open(a.ready_file + ".tmp", "w") as f:
            f.write(f"{os.getpid()}\n")
        os.rename(a.ready_file + ".tmp", a.ready_file)
    for i in range(a.count):
        conn, _peer = ls.accept()
        with conn:
            recv_exact(conn, a.req_size)
            conn.sendall(make_response(i, a.resp_size))
            recv_eof(conn)          # client's FIN
        # leaving the with-block closes -> our FIN
    ls.close()


def client(a):
    fam = family_of(a.connect)
    if a.start_at:  # lets several clients start in lock-step (interleaved traffic)
        time.sleep(max(0.0, a.start_at - time.time()))
    for i in range(a.count):
        if i and a.gap:
            time.sleep(a.gap)
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        set_ext(s, a.hopopts, a.dstopts)
        if a.bind or a.src_port:
            s.bind((a.bind or "", a.src_port + i if a.src_port else 0))
        s.connect((a.connect, a.port))
        if a.think:
            time.sleep(a.think)
        s.sendall(make_request(i, a.connect, a.req_size))
        recv_exact(s, a.resp_size)
        if a.hold:
            time.sleep(a.hold)
        s.shutdown(socket.SHUT_WR)  # our FIN
        recv_eof(s)                 # server's FIN
        s.close()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    for name in ("server", "client"):
        sp = sub.add_parser(name)
        sp.add_argument("--port", type=int, required=True)
        sp.add_argument("--count", type=int, default=1)
        sp.add_argument("--req-size", type=int, default=300)
        sp.add_argument("--resp-size", type=int, default=500)
        sp.add_argument("--dstopts", action="store_true")
        if name == "server":
            sp.add_argument("--bind", required=True)
            sp.add_argument("--ready-file")
        else:
            sp.add_argument("--connect", required=True)
            sp.add_argument("--bind")
            sp.add_argument("--src-port", type=int, default=0)
            sp.add_argument("--think", type=float, default=0.0, help="sleep after connect")
            sp.add_argument("--hold", type=float, default=0.0, help="sleep before closing")
            sp.add_argument("--gap", type=float, default=0.0, help="sleep between connections")
            sp.add_argument("--start-at", type=float, default=0.0, help="wait until this Unix time")
            sp.add_argument("--hopopts", action="store_true")
    a = p.parse_args(argv)
    (server if a.mode == "server" else client)(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
