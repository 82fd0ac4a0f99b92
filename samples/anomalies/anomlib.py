"""Shared bits of the anomaly recorders (stdlib only): TCP_INFO decoding, ready files, JSON facts.

struct tcp_info layout (include/uapi/linux/tcp.h), the fields we read:
  8 x u8 (state, ca_state, retransmits, probes, backoff, options, wscale nibbles, flags)
  u32 rto, ato, snd_mss, rcv_mss, unacked, sacked, lost, retrans, fackets,
      last_data_sent, last_ack_sent, last_data_recv, last_ack_recv,
      pmtu, rcv_ssthresh, rtt, rttvar, snd_ssthresh, snd_cwnd, advmss, reordering,
      rcv_rtt, rcv_space, total_retrans                                  (offsets 8..103)
  u64 pacing_rate, max_pacing_rate, bytes_acked, bytes_received         (104..135)
  u32 segs_out, segs_in, notsent_bytes, min_rtt, data_segs_in, data_segs_out (136..159)
  u64 delivery_rate, busy_time, rwnd_limited, sndbuf_limited            (160..191)
  u32 delivered, delivered_ce                                          (192..199)
  u64 bytes_sent, bytes_retrans                                        (200..215)
  u32 dsack_dups, reord_seen, rcv_ooopack, snd_wnd, rcv_wnd, rehash     (216..239)
  u16 total_rto, total_rto_recoveries; u32 total_rto_time              (240..247)
"""
import json
import os
import socket
import struct
import time

_U32 = ["rto", "ato", "snd_mss", "rcv_mss", "unacked", "sacked", "lost", "retrans", "fackets",
        "last_data_sent", "last_ack_sent", "last_data_recv", "last_ack_recv", "pmtu", "rcv_ssthresh",
        "rtt", "rttvar", "snd_ssthresh", "snd_cwnd", "advmss", "reordering", "rcv_rtt", "rcv_space",
        "total_retrans"]
_TAIL = [  # (name, format, offset)
    ("bytes_acked", "Q", 120), ("bytes_received", "Q", 128), ("segs_out", "I", 136), ("segs_in", "I", 140),
    ("data_segs_in", "I", 152), ("data_segs_out", "I", 156), ("bytes_sent", "Q", 200),
    ("bytes_retrans", "Q", 208), ("dsack_dups", "I", 216), ("snd_wnd", "I", 228), ("rcv_wnd", "I", 232),
    ("total_rto", "H", 240), ("total_rto_recoveries", "H", 242), ("total_rto_time_ms", "I", 244),
]
TCP_STATES = ["?", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT",
              "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING"]


def tcp_info(s):
    """The interesting tcp_info fields of socket s as a dict (fields the kernel did not fill are left out)."""
    raw = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    out = {"state": TCP_STATES[raw[0]] if raw[0] < len(TCP_STATES) else raw[0],
           "retransmits": raw[2], "probes": raw[3], "backoff": raw[4]}
    for i, name in enumerate(_U32):
        out[name] = struct.unpack_from("I", raw, 8 + 4 * i)[0]
    for name, fmt, off in _TAIL:
        if off + struct.calcsize(fmt) <= len(raw):
            out[name] = struct.unpack_from(fmt, raw, off)[0]
    out["tcp_info_len"] = len(raw)
    return out


def ready(path):
    if path:
        with open(path, "w") as f:
            f.write("ready\n")


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def sleep_until(t):
    d = t - time.time()
    if d > 0:
        time.sleep(d)


def errname(e):
    import errno
    if e.errno is None:
        return type(e).__name__
    return errno.errorcode.get(e.errno, str(e.errno))


class Log:
    """Timestamped event log kept in memory and dumped into the facts file."""

    def __init__(self, who):
        self.who = who
        self.t0 = time.time()
        self.events = []

    def __call__(self, what, **kw):
        ev = {"t": round(time.time() - self.t0, 4), "wall": round(time.time(), 6), "event": what}
        ev.update(kw)
        self.events.append(ev)
        print("[%s %7.3f] %s %s" % (self.who, ev["t"], what,
                                   " ".join("%s=%s" % kv for kv in kw.items())), flush=True)
