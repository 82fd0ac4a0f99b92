#!/usr/bin/env python3
"""Tiny TCP servers for the incident recordings (stdlib only).

Modes:
  respond   read one request (until a blank line or EOF), answer a short HTTP-ish reply, close.
            A well-behaved server: used for the backend of the balancer and for clean.pcap.
  leak      accept, read to EOF, NEVER close the accepted socket (keep a reference forever).
            Every connection the peer closes is left in CLOSE_WAIT: the bug of incident 2.
  noaccept  listen(backlog) and never call accept(): the accept queue fills up.

Writes "ready" to --ready-file once listening, so the recorder knows when to start clients.
"""
import argparse
import selectors
import socket
import time

REPLY = b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mode", choices=["respond", "leak", "noaccept"], required=True)
    ap.add_argument("--backlog", type=int, default=128)
    ap.add_argument("--ready-file")
    a = ap.parse_args()

    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.bind, a.port))
    ls.listen(a.backlog)
    if a.ready_file:
        with open(a.ready_file, "w") as f:
            f.write("ready\n")

    if a.mode == "noaccept":
        while True:
            time.sleep(3600)

    sel = selectors.DefaultSelector()
    sel.register(ls, selectors.EVENT_READ, None)
    leaked = []  # the leak: references kept, close() never called
    bufs = {}
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            if s is ls:
                c, _ = ls.accept()
                bufs[c] = b""
                sel.register(c, selectors.EVENT_READ, None)
                continue
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if a.mode == "respond":
                bufs[s] += data
                if not data or b"\r\n\r\n" in bufs[s]:
                    sel.unregister(s)
                    del bufs[s]
                    try:
                        if data:
                            s.sendall(REPLY)
                    except OSError:
                        pass
                    s.close()
            else:  # leak
                if not data:  # EOF (peer's FIN) or error: stop watching it, but never close it
                    sel.unregister(s)
                    del bufs[s]
                    leaked.append(s)


if __name__ == "__main__":
    main()
