#!/usr/bin/env python3
"""A TCP client that records exactly what connect() returned and how long it took (stdlib only).

  --sport N     bind this fixed source port first (SO_REUSEADDR), as the reusing client of incident 2
  --count/--interval   several attempts, spaced out
  --action      request: send a request, read the reply to EOF, close   (clean exchange)
                close:   send --payload, then close (FIN) without reading
                hold:    stay connected for --hold seconds, then close
                none:    close immediately after connect
Prints one line per attempt: attempt=N sport=P result=OK|ECONNREFUSED|ETIMEDOUT|... elapsed=S
"""
import argparse
import errno
import socket
import sys
import time

REQ = b"GET / HTTP/1.0\r\nHost: x\r\n\r\n"


def one(a, n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if a.sport is not None or a.src:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((a.src or "0.0.0.0", a.sport or 0))
    s.settimeout(a.timeout)
    t0 = time.monotonic()
    extra = ""
    try:
        s.connect((a.dst, a.port))
        res = "OK"
    except OSError as e:
        if e.errno is None:  # our own settimeout() expired (socket.timeout), not the kernel
            res = "TIMEOUT(app timeout %.0fs)" % a.timeout
        else:                # kernel error, e.g. ECONNREFUSED, or ETIMEDOUT after tcp_syn_retries
            res = errno.errorcode.get(e.errno, str(e.errno))
    el = time.monotonic() - t0
    sport = s.getsockname()[1]
    if res == "OK":
        try:
            if a.action == "request":
                s.sendall(REQ)
                got = b""
                while True:
                    d = s.recv(4096)
                    if not d:
                        break
                    got += d
                extra = " reply=%r" % got.split(b"\r\n")[0].decode()
            elif a.action == "close":
                s.sendall(a.payload.encode())
            elif a.action == "hold":
                time.sleep(a.hold)
        except OSError as e:
            extra = " io_error=%s" % errno.errorcode.get(e.errno, str(e.errno))
    s.close()
    print("attempt=%d sport=%d dst=%s:%d connect()=%s elapsed=%.3fs%s"
          % (n, sport, a.dst, a.port, res, el, extra), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dst", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--src")
    ap.add_argument("--sport", type=int)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--first", type=int, default=1, help="number of the first attempt (for labels)")
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--action", choices=["request", "close", "hold", "none"], default="request")
    ap.add_argument("--payload", default="hello\n")
    ap.add_argument("--hold", type=float, default=0.0)
    a = ap.parse_args()
    for i in range(a.count):
        if i:
            time.sleep(a.interval)
        one(a, a.first + i)


if __name__ == "__main__":
    sys.exit(main())
