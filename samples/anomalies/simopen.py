#!/usr/bin/env python3
"""One side of a TCP simultaneous open: bind a fixed local port, then connect() to the peer's fixed
port at an agreed wall-clock time (both sides do the same, neither listens). If both SYNs are in flight
at once, each kernel sees a SYN while in SYN-SENT and both go SYN-RECEIVED -> ESTABLISHED (RFC 793
fig. 8); otherwise the first SYN meets a closed port and gets RST (connect() -> ECONNREFUSED).

  simopen.py --bind IP --port P --peer IP --peer-port P --at EPOCH --role a|b --facts F
After connecting: send a greeting, read the peer's; role a then closes first, role b closes on EOF.
"""
import argparse
import socket
import time

from anomlib import Log, errname, sleep_until, tcp_info, write_json


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--peer", required=True)
    ap.add_argument("--peer-port", type=int, required=True)
    ap.add_argument("--at", type=float, required=True)
    ap.add_argument("--role", choices=["a", "b"], required=True)
    ap.add_argument("--facts", required=True)
    a = ap.parse_args()
    log = Log(a.role)
    facts = {"role": a.role, "local": "%s:%d" % (a.bind, a.port), "peer": "%s:%d" % (a.peer, a.peer_port),
             "sockopts": {"SO_REUSEADDR": 1}}
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.bind, a.port))
    s.settimeout(5)
    sleep_until(a.at)
    t0 = time.time()
    facts["connect_called_at"] = t0
    try:
        s.connect((a.peer, a.peer_port))
        facts["connect"] = "OK"
    except OSError as e:
        facts["connect"] = errname(e)
    facts["connect_elapsed_s"] = round(time.time() - t0, 4)
    log("connect", result=facts["connect"], elapsed=facts["connect_elapsed_s"])
    if facts["connect"] == "OK":
        facts["tcp_info_after_connect"] = tcp_info(s)
        s.sendall(b"hello from %s\n" % a.role.encode())
        got = b""
        while not got.endswith(b"\n"):
            d = s.recv(100)
            if not d:
                break
            got += d
        facts["received"] = got.decode()
        log("greeting", got=got.decode().strip())
        if a.role == "b":
            facts["eof"] = s.recv(100) == b""
            log("eof")
    s.close()
    log("closed")
    facts["events"] = log.events
    write_json(a.facts, facts)


if __name__ == "__main__":
    main()
