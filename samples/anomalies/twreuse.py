#!/usr/bin/env python3
"""TIME-WAIT reuse: the server closes first (so the SERVER holds TIME-WAIT), then the client connects
again from the same fixed source port (SO_REUSEADDR) a few milliseconds later: a SYN for a 4-tuple the
server has in TIME-WAIT.

  server: accept --connections times; for each read a 4-byte length + that many bytes, answer
          "ok <n>\\n", close() first (FIN), then wait for the socket to reach TIME-WAIT and store
          `ss -tano state time-wait` in the facts.
  client: --connections times: bind --sport (SO_REUSEADDR), connect(), send --bytes (the later
          connections --bytes-later), read the reply
          to EOF (the server's FIN), close(); sleep --gap; each connect()'s result and time go into
          the facts. A big first transfer moves the client's sequence number further than the ISN
          clock advances (about 15.6 million per second, RFC 6528), so the new ISN is LOWER than
          the sequence number the server's TIME-WAIT socket expects next.
"""
import argparse
import socket
import struct
import subprocess
import time

from anomlib import Log, errname, ready, tcp_info, write_json


def server(a, log, facts):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.bind, a.port))
    ls.listen(8)
    ready(a.ready_file)
    facts["connections"] = []
    for i in range(a.connections):
        c, peer = ls.accept()
        n = struct.unpack("!I", c.recv(4, socket.MSG_WAITALL))[0]
        got = 0
        while got < n:
            d = c.recv(min(65536, n - got))
            if not d:
                break
            got += len(d)
        c.sendall(b"ok %d\n" % got)
        c.close()
        log("server_closed_first", n=i + 1, bytes=got)
        ss = ""
        for _ in range(20):
            ss = subprocess.run(["ss", "-tano", "state", "time-wait", "sport = :%d" % a.port],
                                capture_output=True, text=True).stdout
            if "%s:%d" % peer in ss:
                break
            time.sleep(0.002)
        facts["connections"].append({"peer": "%s:%d" % peer, "bytes_received": got,
                                     "ss_time_wait_after_close": ss})


def client(a, log, facts):
    facts["sockopts"] = {"SO_REUSEADDR": 1}
    facts["connections"] = []
    for i in range(a.connections):
        payload = b"D" * (a.bytes if i == 0 else a.bytes_later)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((a.src, a.sport))
        s.settimeout(10)
        t0 = time.time()
        rec = {"n": i + 1, "four_tuple": {"src": a.src, "sport": a.sport, "dst": a.dst, "dport": a.port}}
        try:
            s.connect((a.dst, a.port))
            rec["connect"] = "OK"
        except OSError as e:
            rec["connect"] = errname(e)
        rec["connect_elapsed_s"] = round(time.time() - t0, 4)
        log("connect", n=i + 1, result=rec["connect"], elapsed=rec["connect_elapsed_s"])
        if rec["connect"] == "OK":
            s.sendall(struct.pack("!I", len(payload)) + payload)
            reply = b""
            while True:
                d = s.recv(4096)
                if not d:
                    break
                reply += d
            rec["reply"] = reply.decode().strip()
            rec["bytes_sent"] = len(payload) + 4
            rec["tcp_info_before_close"] = tcp_info(s)
        s.close()
        rec["closed_at"] = time.time()
        log("closed", n=i + 1)
        facts["connections"].append(rec)
        if i + 1 < a.connections:
            time.sleep(a.gap)
    facts["gap_s"] = a.gap


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=["server", "client"])
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--src", default="0.0.0.0")
    ap.add_argument("--dst")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--sport", type=int)
    ap.add_argument("--bytes", type=int, default=2_000_000)
    ap.add_argument("--bytes-later", type=int, default=100, help="bytes sent by the later connections")
    ap.add_argument("--gap", type=float, default=0.03)
    ap.add_argument("--connections", type=int, default=2)
    ap.add_argument("--facts", required=True)
    ap.add_argument("--ready-file")
    a = ap.parse_args()
    log = Log(a.role)
    facts = {"role": a.role}
    server(a, log, facts) if a.role == "server" else client(a, log, facts)
    facts["events"] = log.events
    write_json(a.facts, facts)


if __name__ == "__main__":
    main()
