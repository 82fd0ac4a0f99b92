"""Classic-pcap reading and writing and IPv4/TCP checksums, for the realworld recorder (stdlib only).

Used by rwcheck.py (the independent checks) and by the derive_*.py scripts that make edited captures
from real ones. Only what these recordings hold: classic pcap, Ethernet link type, IPv4 (and ARP).

  read(path) -> (header bytes, endian, [Record])      every record with its raw frame bytes
  write(path, header, records)                        the same global header, records in order
  decode(frame) -> dict                               Ethernet/IPv4/TCP fields, with offsets
  ipv4_checksum(header) / tcp_checksum(...)           the values a correct sender writes
  tcp_checksum_status(frame) -> "valid" | "partial" | "zero" | "wrong" | "cut"
  ipv4_checksum_status(frame) -> "valid" | "zero" | "wrong"
"""
import struct


class Record:
    __slots__ = ("no", "sec", "frac", "caplen", "wirelen", "data", "ts")

    def __init__(self, no, sec, frac, caplen, wirelen, data, nano):
        self.no, self.sec, self.frac, self.caplen, self.wirelen, self.data = no, sec, frac, caplen, wirelen, data
        self.ts = sec + frac / (1e9 if nano else 1e6)


def read(path):
    with open(path, "rb") as f:
        raw = f.read()
    magic_le = struct.unpack("<I", raw[:4])[0]
    if magic_le in (0xA1B2C3D4, 0xA1B23C4D):
        e, magic = "<", magic_le
    else:
        e, magic = ">", struct.unpack(">I", raw[:4])[0]
        assert magic in (0xA1B2C3D4, 0xA1B23C4D), "%s: not a classic pcap file" % path
    nano = magic == 0xA1B23C4D
    linktype = struct.unpack(e + "I", raw[20:24])[0]
    assert linktype == 1, "%s: link type %d, expected Ethernet" % (path, linktype)
    recs, off, no = [], 24, 0
    while off + 16 <= len(raw):
        sec, frac, incl, orig = struct.unpack(e + "IIII", raw[off:off + 16])
        no += 1
        recs.append(Record(no, sec, frac, incl, orig, bytearray(raw[off + 16:off + 16 + incl]), nano))
        off += 16 + incl
    return raw[:24], e, recs


def write(path, header, endian, records):
    with open(path, "wb") as f:
        f.write(header)
        for r in records:
            f.write(struct.pack(endian + "IIII", r.sec, r.frac, len(r.data), r.wirelen))
            f.write(bytes(r.data))


def ones_sum(data, start=0):
    if len(data) % 2:
        data = bytes(data) + b"\0"
    s = start + sum(struct.unpack("!%dH" % (len(data) // 2), bytes(data)))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def decode(frame):
    """Ethernet + IPv4 + TCP fields of a frame, with the byte offsets the derive scripts edit."""
    d = {"eth_type": struct.unpack("!H", frame[12:14])[0]}
    if d["eth_type"] != 0x0800 or len(frame) < 34:
        return d
    ip = 14
    ihl = (frame[ip] & 15) * 4
    d.update(ip_off=ip, ihl=ihl, ip_len=struct.unpack("!H", frame[ip + 2:ip + 4])[0],
             ip_id=struct.unpack("!H", frame[ip + 4:ip + 6])[0], ttl=frame[ip + 8], proto=frame[ip + 9],
             ip_csum=struct.unpack("!H", frame[ip + 10:ip + 12])[0],
             src=".".join(map(str, frame[ip + 12:ip + 16])), dst=".".join(map(str, frame[ip + 16:ip + 20])))
    t = ip + ihl
    if d["proto"] == 6 and len(frame) >= t + 20:
        sport, dport, seq, ack, off, flags, win, csum = struct.unpack("!HHIIBBHH", frame[t:t + 18])
        thl = (off >> 4) * 4
        d.update(tcp_off=t, thl=thl, sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, win=win,
                 tcp_csum=csum, payload_off=t + thl, plen=d["ip_len"] - ihl - thl)
        o, i = frame[t + 20:t + thl], 0
        while i < len(o) and o[i] != 0:
            if o[i] == 1:
                i += 1
                continue
            if i + 1 >= len(o) or o[i + 1] < 2:
                break
            k, ln = o[i], o[i + 1]
            if k == 3 and ln == 3:
                d["wscale"] = o[i + 2]
            elif k == 2 and ln == 4:
                d["mss"] = struct.unpack("!H", o[i + 2:i + 4])[0]
            elif k == 8 and ln == 10:
                d["tsval"], d["tsecr"] = struct.unpack("!II", o[i + 2:i + 10])
            elif k == 5:
                d["sack_blocks"] = (ln - 2) // 8
            i += ln
    return d


def ipv4_checksum(frame, ip_off=14):
    ihl = (frame[ip_off] & 15) * 4
    h = bytearray(frame[ip_off:ip_off + ihl])
    h[10:12] = b"\0\0"
    return ~ones_sum(h) & 0xFFFF


def ipv4_checksum_status(frame):
    d = decode(frame)
    if "ip_csum" not in d:
        return None
    if d["ip_csum"] == 0:
        return "zero"
    return "valid" if ones_sum(frame[14:14 + d["ihl"]]) == 0xFFFF else "wrong"


def pseudo_sum(frame, d):
    tcp_len = d["ip_len"] - d["ihl"]
    ph = frame[d["ip_off"] + 12:d["ip_off"] + 20] + struct.pack("!BBH", 0, 6, tcp_len)
    return ones_sum(ph)


def tcp_checksum(frame):
    """The correct TCP checksum of the (whole, uncut) segment in frame."""
    d = decode(frame)
    seg = bytearray(frame[d["tcp_off"]:d["ip_off"] + d["ip_len"]])
    seg[16:18] = b"\0\0"
    return ~ones_sum(seg, pseudo_sum(frame, d)) & 0xFFFF


def tcp_checksum_status(frame):
    """valid; partial = the field holds only the folded pseudo-header sum (Linux CHECKSUM_PARTIAL, what
    a capture on a host with TX checksum offload shows); zero; wrong; cut = payload not all captured."""
    d = decode(frame)
    if "tcp_off" not in d:
        return None
    if len(frame) < d["ip_off"] + d["ip_len"]:
        return "cut"
    if d["tcp_csum"] == pseudo_sum(frame, d) and d["tcp_csum"] != tcp_checksum(frame):
        return "partial"
    if d["tcp_csum"] == 0 and tcp_checksum(frame) != 0:
        return "zero"
    seg = frame[d["tcp_off"]:d["ip_off"] + d["ip_len"]]
    return "valid" if ones_sum(seg, pseudo_sum(frame, d)) == 0xFFFF else "wrong"
