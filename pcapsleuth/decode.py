"""Frame decoder: link layer, shims and tunnels, IPv4/IPv6, TCP/UDP, down to a :class:`Packet`.

The common path (Ethernet, Linux cooked v1/v2, NULL/LOOP, raw IP; VLAN tags; IPv4, IPv6; TCP)
is decoded by hand with ``struct`` at fixed offsets: building a dpkt object per packet costs more
than tshark's whole analysis (see the performance issue), so dpkt is kept for the link types we
do not decode ourselves (802.11, radiotap, PFLOG, ...), where it finds the IP header for us.

Decapsulated on the way, because Zeek sees the TCP connections inside them:
802.1Q/802.1ad/QinQ, MPLS (with or without an Ethernet pseudowire), PPPoE, 802.1ah PBB, VN-Tag,
Cisco FabricPath, LLC/SNAP, GRE (incl. ERSPAN, PPTP), IP-in-IP, 6in4, VXLAN, Geneve, GTP-U,
Teredo, NFLOG.

IP fragments are reassembled (bounded); like Wireshark, the transport header is decoded on the
frame that completes the datagram, and never from a non-first fragment.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

from .packet import Cksum, Direction, Frag, Packet
from .reader import DamageLog

__all__ = ["Decoder"]

_u16 = struct.Struct("!H").unpack_from
_u32 = struct.Struct("!I").unpack_from
_le32 = struct.Struct("<I").unpack_from
_ipv4_hdr = struct.Struct("!BBHHHBBH").unpack_from  # ver_ihl tos len id frag ttl proto sum
_ipv6_hdr = struct.Struct("!IHBB").unpack_from  # vtcfl plen nxt hlim
_tcp_hdr = struct.Struct("!HHIIBBHHH").unpack_from  # sport dport seq ack off flags win sum urp
_udp_hdr = struct.Struct("!HHHH").unpack_from
_sll_hdr = struct.Struct("!HHH8sH").unpack_from
_sll2_hdr = struct.Struct("!HHIHBB8s").unpack_from
# The common path reads a whole IP + TCP header with one unpack (see Decoder.frame).
_eth_hdr = struct.Struct("!6x6sH").unpack_from  # source MAC, ethertype
_tag_hdr = struct.Struct("!HH").unpack_from  # 802.1Q TCI, inner ethertype
_ip4_tcp = struct.Struct("!BBHHHBBHIIHHIIBBHHH").unpack_from  # IPv4 without options, then TCP
_ip6_tcp = struct.Struct("!IHBB16s16sHHIIBBHHH").unpack_from  # IPv6 without extension headers, then TCP

_new = tuple.__new__

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
_VLAN_TYPES = frozenset((0x8100, 0x88A8, 0x9100, 0x9200, 0x9300))
_AF_INET6 = frozenset((10, 23, 24, 28, 30))
_IPV6_EXT = frozenset((0, 43, 60, 135, 139, 140))
#: Protocol layers a frame may nest, counted as Wireshark counts them (frame, eth, ethertype, ip,
#: gre, ip, ..., tcp): tshark dissects a layer only while fewer than gui.max_tree_depth (500 by
#: default) are open, so it decodes GRE in GRE 247 levels deep, IP in IP 495 and VXLAN 99 (measured
#: with tshark 4.0). So do we; beyond that a frame's inner packets are not decoded, and the frame is
#: counted as damage ``tunnel_too_deep``.
MAX_LAYERS = 500
_LINK_LAYERS = 3  # the frame, its link header and the header's type field (eth, ethertype)
TOO_DEEP = (f"tunnels nested beyond {MAX_LAYERS} protocol layers (tshark's limit): what they carry was not "
            f"analyzed")
_BY_NIBBLE = 1  # an IP packet of the version its first nibble says (GTP-U, raw IP)
#: The note of a GRE packet whose payload is not decoded (not IP, or a protocol type or GRE
#: version we do not know): the outer packet stands, and the tracker counts it as untracked.
GRE_NOT_DECODED = "GRE payload not decoded"
_MAX_DPKT_LAYERS = 8  # link layers dpkt peels for the link types we do not decode ourselves
_MAX_EXT = 32  # IPv6 extension headers in one chain
_MAX_TAGS = 8

# Transport-level tunnels recognised by UDP port (either side), as Zeek's default configuration.
_UDP_VXLAN = frozenset((4789, 8472))
_UDP_GENEVE = 6081
_UDP_GTPU = 2152
_UDP_TEREDO = 3544

_BITREV = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))
_RAW_LINKTYPES = frozenset((101, 12, 14, 228, 229))
_GOOD, _BAD, _OFFLOADED, _BAD_IP, _ZERO_IP = Cksum.GOOD, Cksum.BAD, Cksum.OFFLOADED, Cksum.BAD_IP, Cksum.ZERO_IP
_SLL_DIRECTION = {0: Direction.INBOUND, 1: Direction.INBOUND, 2: Direction.INBOUND,
                  3: Direction.INBOUND, 4: Direction.OUTBOUND}

# IP-layer result: version, src, dst, ttl, ip_id, df, frag, proto, sport, dport, seq, ack, flags,
# window, options, payload_len, cksum, note, encap
_IpResult = tuple[Any, ...]
_NO_IP: _IpResult = (0, None, None, None, None, None, 0, None, None, None, None, None, None, None, None,
                     None, 0, None, None)


class _Frags:
    """Bounded IP fragment reassembly keyed by (version, src, dst, proto, id)."""

    MAX_DATAGRAMS = 1024
    MAX_BYTES = 65535 + 8

    def __init__(self) -> None:
        self.pending: dict[tuple[object, ...], dict[str, Any]] = {}
        self.count = 0

    def add(self, key: tuple[object, ...], offset: int, more: bool, data: bytes) -> bytes | None:
        self.count += 1
        entry = self.pending.get(key)
        if entry is None:
            if len(self.pending) >= self.MAX_DATAGRAMS:
                self.pending.pop(next(iter(self.pending)))
            entry = {"parts": {}, "total": None}
            self.pending[key] = entry
        if offset + len(data) > self.MAX_BYTES:
            self.pending.pop(key, None)
            return None
        entry["parts"][offset] = data
        if not more:
            entry["total"] = offset + len(data)
        total = entry["total"]
        if total is None:
            return None
        have = 0
        for off in sorted(entry["parts"]):
            if off > have:
                return None
            have = max(have, off + len(entry["parts"][off]))
        if have < total:
            return None
        buf = bytearray(total)
        for off in sorted(entry["parts"]):
            piece = entry["parts"][off]
            buf[off:off + len(piece)] = piece
        del self.pending[key]
        return bytes(buf[:total])


def _mac(b: bytes) -> str:
    return b.hex(":")


class Decoder:
    """Turns raw records into :class:`Packet` tuples. One instance per capture (it holds state:
    fragment reassembly and the address cache)."""

    def __init__(self, damage: DamageLog, *, verify_checksums: bool = True,
                 trust_partial_checksums: bool = False) -> None:
        self.damage = damage
        self.verify_checksums = verify_checksums
        #: Report a TCP/UDP checksum field holding just the pseudo-header sum (or 0) OFFLOADED
        #: without summing the segment (see _check).
        self.trust_partial = trust_partial_checksums
        self.frags = _Frags()
        self._v4: dict[bytes, str] = {}
        self._v6: dict[bytes, str] = {}
        self._macs: dict[bytes, str] = {}
        self._v4n: dict[int, str] = {}  # the common path's IPv4 cache, keyed by the address as an int
        self._v6p: dict[bytes, tuple[str, int]] = {}  # IPv6 address -> (text, its checksum contribution)
        self.non_ip = 0
        self.ip_fragments = 0

    # -- addresses (cached: a capture has few distinct hosts) ------------------------------------
    def _a4(self, b: bytes) -> str:
        s = self._v4.get(b)
        if s is None:
            if len(self._v4) > 100_000:
                self._v4.clear()
            s = self._v4[b] = socket.inet_ntoa(b)
        return s

    def _a6(self, b: bytes) -> str:
        s = self._v6.get(b)
        if s is None:
            if len(self._v6) > 100_000:
                self._v6.clear()
            s = self._v6[b] = socket.inet_ntop(socket.AF_INET6, b)
        return s

    def _m(self, b: bytes) -> str:
        s = self._macs.get(b)
        if s is None:
            if len(self._macs) > 100_000:
                self._macs.clear()
            s = self._macs[b] = b.hex(":")
        return s

    def _ip_len_exceeds(self, no: int, detail: str) -> None:
        self.damage.add("ip_len_exceeds_frame", no, detail)

    # -- entry points -------------------------------------------------------------------------
    def frame(self, buf: bytes, start: int, caplen: int, wirelen: int, no: int, ts: int, iface: int,
              direction: int, linktype: int) -> Packet:
        """Decode the frame ``buf[start:start + caplen]`` in place (a :data:`~.reader.FrameHandler`).

        The common path - Ethernet (untagged or one 802.1Q tag), Linux cooked v1/v2, NULL/LOOP or
        raw IP, then IPv4 without options or IPv6 without extension headers, then a whole TCP
        header, not fragmented, IP length within the frame - is decoded right here with two or
        three ``unpack_from`` calls on the reader's buffer, no copy of the frame and no per-layer
        calls: it is most of the frames of every capture, and per-frame cost is what analysis time
        is made of (bench/README.md).
        Anything else goes to :meth:`decode`, which gives the same result for these frames too
        (bench/check_fastpath.py compares the two on every frame of the samples and the corpus).
        """
        mac: str | None = None
        pkttype: int | None = None
        ifindex: int | None = None
        vlan: tuple[int, ...] = ()
        if linktype == 1:  # EN10MB
            if caplen < 54:
                return self._frame_slow(buf, start, caplen, wirelen, no, ts, iface, direction, linktype)
            macb, etype = _eth_hdr(buf, start)
            mac = self._macs.get(macb)
            if mac is None:
                mac = self._m(macb)
            off = 14
            if etype == 0x8100:  # one 802.1Q tag (a second one, QinQ, takes the general path)
                tci, etype = _tag_hdr(buf, start + 14)
                vlan = (tci & 0x0FFF,)
                off = 18
        elif linktype == 113 or linktype == 276:  # LINUX_SLL, LINUX_SLL2
            if caplen < 20:
                return self._frame_slow(buf, start, caplen, wirelen, no, ts, iface, direction, linktype)
            if linktype == 113:
                pkttype, hatype, halen, addr, etype = _sll_hdr(buf, start)
                if hatype == 778:  # ARPHRD_IPGRE: the protocol field is GRE's
                    return self._frame_slow(buf, start, caplen, wirelen, no, ts, iface, direction, linktype)
                off = 16
            else:
                etype, _res, ifindex, hatype, pkttype, halen, addr = _sll2_hdr(buf, start)
                off = 20
            if hatype == 1 and halen == 6:
                mac = self._m(addr[:6])
            if direction == 0:  # (idempotent: a fallback to decode() below maps it the same way)
                direction = _SLL_DIRECTION.get(pkttype, 0)
        elif linktype in _RAW_LINKTYPES or linktype == 0 or linktype == 108:
            if caplen < 40:
                return self._frame_slow(buf, start, caplen, wirelen, no, ts, iface, direction, linktype)
            if linktype == 0 or linktype == 108:  # NULL (host order), LOOP (network order)
                af = _u32(buf, start)[0]
                if linktype == 0 and af > 0xFFFF:
                    af = _le32(buf, start)[0]
                etype = ETH_IPV4 if af == 2 else ETH_IPV6 if af in _AF_INET6 else 0
                off = 4
            else:
                nib = buf[start] >> 4
                etype = ETH_IPV4 if nib == 4 else ETH_IPV6 if nib == 6 else 0
                off = 0
        else:
            return self._frame_slow(buf, start, caplen, wirelen, no, ts, iface, direction, linktype)

        if etype == ETH_IPV4:
            if caplen < off + 40:
                return self._frame_slow(buf, start, caplen, wirelen, no, ts, iface, direction, linktype)
            (ver_ihl, tos, total, ip_id, frag_field, ttl, proto, ip_sum, srcn, dstn,
             sport, dport, seq, ack, offb, flagb, win, csum, _urp) = _ip4_tcp(buf, start + off)
            hlen = (offb >> 4) * 4
            length = total - 20
            # Fall back for: IP options, not TCP, a fragment, a length of 0 (TSO) or beyond the
            # wire, a TCP data offset out of range, or TCP options cut by the snapshot length.
            if (ver_ihl != 0x45 or proto != 6 or frag_field & 0x3FFF or total < 40 or off + total > wirelen
                    or hlen < 20 or hlen > length or off + 20 + hlen > caplen):
                return self._frame_slow(buf, start, caplen, wirelen, no, ts, iface, direction, linktype)
            src = self._v4n.get(srcn)
            if src is None:
                src = self._a4n(srcn)
            dst = self._v4n.get(dstn)
            if dst is None:
                dst = self._a4n(dstn)
            tcp = start + off + 20
            cksum = 0
            if self.verify_checksums:
                if off + total <= caplen:
                    # The pseudo-header sum straight from the unpacked address integers (see _verdict).
                    cksum = _verdict(buf, tcp, start + off + total, srcn + dstn + 6 + length, csum,
                                     self.trust_partial)
                # The IPv4 header sum, from the fields already unpacked (a field of 0: left for the NIC).
                if ((ver_ihl << 8 | tos) + total + ip_id + frag_field + (ttl << 8 | proto) + ip_sum + srcn
                        + dstn) % 0xFFFF:
                    cksum = _BAD_IP if ip_sum else _ZERO_IP
            return _new(Packet, (no, ts, caplen, wirelen, iface, direction, linktype, mac, vlan, None,
                                 4, src, dst, ttl, ip_id, frag_field & 0x4000 != 0, 0, 6, sport, dport, seq, ack,
                                 (offb & 0x0F) << 8 | flagb, win, buf[tcp + 20:tcp + hlen] if hlen > 20 else b"",
                                 length - hlen, cksum, pkttype, ifindex, None))
        if etype == ETH_IPV6:
            if caplen < off + 60:
                return self._frame_slow(buf, start, caplen, wirelen, no, ts, iface, direction, linktype)
            (_vtc, plen, nxt, hlim, srcb, dstb,
             sport, dport, seq, ack, offb, flagb, win, csum, _urp) = _ip6_tcp(buf, start + off)
            hlen = (offb >> 4) * 4
            if (nxt != 6 or plen < 20 or off + 40 + plen > wirelen
                    or hlen < 20 or hlen > plen or off + 40 + hlen > caplen):
                return self._frame_slow(buf, start, caplen, wirelen, no, ts, iface, direction, linktype)
            sa = self._v6p.get(srcb)
            if sa is None:
                sa = self._a6p(srcb)
            da = self._v6p.get(dstb)
            if da is None:
                da = self._a6p(dstb)
            tcp = start + off + 40
            cksum = 0
            if self.verify_checksums and off + 40 + plen <= caplen:
                cksum = _verdict(buf, tcp, tcp + plen, sa[1] + da[1] + 6 + plen, csum, self.trust_partial)
            return _new(Packet, (no, ts, caplen, wirelen, iface, direction, linktype, mac, vlan, None,
                                 6, sa[0], da[0], hlim, None, None, 0, 6, sport, dport, seq, ack,
                                 (offb & 0x0F) << 8 | flagb, win, buf[tcp + 20:tcp + hlen] if hlen > 20 else b"",
                                 plen - hlen, cksum, pkttype, ifindex, None))
        return self._frame_slow(buf, start, caplen, wirelen, no, ts, iface, direction, linktype)

    def _frame_slow(self, buf: bytes, start: int, caplen: int, wirelen: int, no: int, ts: int, iface: int,
                    direction: int, linktype: int) -> Packet:
        if iface < 0:
            return self.decode(no, ts, caplen, wirelen, iface, b"", direction, -1)
        return self.decode(no, ts, caplen, wirelen, iface, buf[start:start + caplen], direction, linktype)

    def _a4n(self, n: int) -> str:
        if len(self._v4n) > 100_000:
            self._v4n.clear()
        s = self._v4n[n] = socket.inet_ntoa(n.to_bytes(4, "big"))
        return s

    def _a6p(self, b: bytes) -> tuple[str, int]:
        if len(self._v6p) > 100_000:
            self._v6p.clear()
        entry = self._v6p[b] = (socket.inet_ntop(socket.AF_INET6, b), int.from_bytes(b, "big") % 0xFFFF)
        return entry

    def decode(self, no: int, ts: int, caplen: int, wirelen: int, iface: int, data: bytes,
               direction: int, linktype: int) -> Packet:
        """Decode one frame. Never raises on bad bytes: problems end up in ``note`` and damage."""
        mac: str | None = None
        vlan: list[int] = []
        pkttype: int | None = None
        ifindex: int | None = None
        encap: str | None = None
        ip: _IpResult = _NO_IP
        note: str | None = None
        try:
            if linktype == 1:  # EN10MB
                if caplen < 14:
                    raise _Short("Ethernet header")
                mac = self._m(data[6:12])
                etype = data[12] << 8 | data[13]
                ip, mac2, encap = self._ethertype(data, 14, etype, vlan, no, wirelen)
                if mac2 is not None:
                    mac = mac2
            elif linktype == 113:  # LINUX_SLL
                if caplen < 16:
                    raise _Short("Linux cooked header")
                pkttype, hatype, halen, addr, etype = _sll_hdr(data, 0)
                if hatype == 1 and halen == 6:
                    mac = self._m(addr[:6])
                if direction == 0:
                    direction = _SLL_DIRECTION.get(pkttype, 0)
                if hatype == 778:  # ARPHRD_IPGRE: the protocol field is GRE's
                    ip = self._gre_payload(data, 16, etype, vlan, no, wirelen)
                    encap = "gre"
                else:
                    ip, mac2, encap = self._ethertype(data, 16, etype, vlan, no, wirelen)
            elif linktype == 276:  # LINUX_SLL2
                if caplen < 20:
                    raise _Short("Linux cooked v2 header")
                etype, _res, ifindex, hatype, pkttype, halen, addr = _sll2_hdr(data, 0)
                if hatype == 1 and halen == 6:
                    mac = self._m(addr[:6])
                if direction == 0:
                    direction = _SLL_DIRECTION.get(pkttype, 0)
                ip, mac2, encap = self._ethertype(data, 20, etype, vlan, no, wirelen)
            elif linktype in (101, 12, 14, 228, 229):  # RAW, IPV4, IPV6
                ip = self._ip_by_version(data, 0, no, wirelen)
            elif linktype == 0 or linktype == 108:  # NULL (host order), LOOP (network order)
                if caplen < 4:
                    raise _Short("loopback header")
                af = _u32(data, 0)[0]
                if linktype == 0 and af > 0xFFFF:
                    af = _le32(data, 0)[0]
                if af == 2:
                    ip = self._ipv4(data, 4, no, wirelen)
                elif af in _AF_INET6:
                    ip = self._ipv6(data, 4, no, wirelen)
                else:
                    note = f"loopback address family {af}"
            elif linktype == 10:  # FDDI: frame control, DA, SA, then 802.2 LLC
                if caplen < 13:
                    raise _Short("FDDI header")
                # FDDI sends addresses most-significant bit first; shown in canonical (Ethernet)
                # bit order like Wireshark does, so the same NIC has the same MAC on both media.
                mac = self._m(data[7:13].translate(_BITREV))
                ip, mac2, encap = self._llc(data, 13, vlan, no, wirelen)
            elif linktype == 239:  # NFLOG
                ip = self._nflog(data, no, wirelen)
            elif linktype in (9, 50):  # PPP, PPP in HDLC-like framing
                off = 2 if data[:2] == b"\xff\x03" else 0
                ip = self._ppp(data, off, no, wirelen)
            elif linktype == 104:  # Cisco HDLC
                if caplen < 4:
                    raise _Short("Cisco HDLC header")
                ip, mac2, encap = self._ethertype(data, 4, _u16(data, 2)[0], vlan, no, wirelen)
            else:
                ip, note = self._dpkt_fallback(linktype, data, no, wirelen)
        except _Short as exc:
            note = f"frame too short for the {exc.args[0]}"
            self.damage.add("truncated_header", no, note)
        except (struct.error, IndexError, ValueError) as exc:  # defensive: a bug must not kill a capture
            note = f"undecodable: {exc}"
            self.damage.add("undecodable", no, note)
        if ip[17] is not None and note is None:
            note = ip[17]
        if ip[18] is not None:
            encap = ip[18] if encap is None else f"{encap}/{ip[18]}"
        if ip[0] == 0:
            self.non_ip += 1
        return _new(Packet, (no, ts, caplen, wirelen, iface, direction, linktype, mac, tuple(vlan), encap,
                             ip[0], ip[1], ip[2], ip[3], ip[4], ip[5], ip[6], ip[7], ip[8], ip[9], ip[10],
                             ip[11], ip[12], ip[13], ip[14], ip[15], ip[16], pkttype, ifindex, note))

    # -- layer 2 and shims ----------------------------------------------------------------------
    # Each parser below finds where the IP header starts (``_link_ip``, ``_ppp_ip``,
    # ``_gre_payload_ip``) and returns its position; ``_ip_at`` decodes it. The link-layer entry
    # points (``_ethertype``, ``_llc``, ``_ppp``, ``_gre_payload``) do both.
    def _ethertype(self, data: bytes, off: int, etype: int, vlan: list[int], no: int,
                   wirelen: int) -> tuple[_IpResult, str | None, str | None]:
        """Follow an ethertype (and any tags/shims) to the IP layer. Returns (ip, inner MAC, encap)."""
        version, pos, mac, encap, layers = self._link_ip(data, off, etype, vlan)
        return self._ip_at(version, data, pos, no, wirelen, _LINK_LAYERS + layers), mac, encap

    def _llc(self, data: bytes, off: int, vlan: list[int], no: int,
             wirelen: int) -> tuple[_IpResult, str | None, str | None]:
        return self._ethertype(data, off, 0, vlan, no, wirelen)  # (any type up to 1500 is an 802.3 length)

    def _ppp(self, data: bytes, off: int, no: int, wirelen: int) -> _IpResult:
        version, pos = self._ppp_ip(data, off)
        return self._ip_at(version, data, pos, no, wirelen, _LINK_LAYERS)

    def _gre_payload(self, data: bytes, pos: int, ptype: int, vlan: list[int], no: int, wirelen: int) -> _IpResult:
        version, at, layers = self._gre_payload_ip(data, pos, ptype, vlan)
        return self._ip_at(version, data, at, no, wirelen, _LINK_LAYERS + layers)

    def _link_ip(self, data: bytes, off: int, etype: int,
                 vlan: list[int]) -> tuple[int, int, str | None, str | None, int]:
        """Follow an ethertype (and any tags/shims) to the IP layer: (IP version or 0 when the
        payload is not IP, where it starts, the inner MAC, encap, protocol layers passed)."""
        encap: str | None = None
        mac: str | None = None
        layers = 0
        # One loop for every shim, LLC/SNAP included: a header that names another header never
        # makes the decoder recurse (a frame of 8,000 SNAP headers used to exhaust the stack).
        for _ in range(_MAX_TAGS * 2):
            if etype == ETH_IPV4:
                return 4, off, mac, encap, layers
            if etype == ETH_IPV6:
                return 6, off, mac, encap, layers
            if etype in _VLAN_TYPES:
                if len(data) < off + 4:
                    raise _Short("VLAN tag")
                vlan.append(_u16(data, off)[0] & 0x0FFF)
                etype = _u16(data, off + 2)[0]
                off += 4
                layers += 2  # vlan, ethertype
                continue
            if etype <= 1500:  # 802.3 length field: LLC follows
                if len(data) < off + 3:
                    return 0, off, mac, encap, layers
                if data[off] == 0xAA and data[off + 1] == 0xAA:  # SNAP: OUI + ethertype
                    if len(data) < off + 8:
                        raise _Short("SNAP header")
                    etype = _u16(data, off + 6)[0]
                    off += 8
                    layers += 2  # llc, ethertype
                    continue
                if data[off] == 0x06 and data[off + 1] == 0x06:  # LLC SAP for IP (rare, RFC 1042 alternative)
                    return 4, off + 3, mac, encap, layers + 1
                return 0, off, mac, encap, layers
            if etype in (0x8847, 0x8848):  # MPLS unicast/multicast: pop to bottom of stack
                encap = _join(encap, "mpls")
                for _ in range(16):
                    if len(data) < off + 4:
                        raise _Short("MPLS label")
                    bos = data[off + 2] & 0x01
                    off += 4
                    layers += 1
                    if bos:
                        break
                if len(data) <= off:
                    raise _Short("MPLS payload")
                nib = data[off] >> 4
                if nib == 4:
                    return 4, off, mac, encap, layers
                if nib == 6:
                    return 6, off, mac, encap, layers
                if nib == 0:  # Ethernet pseudowire with control word (RFC 4448)
                    off += 4
                    layers += 1
                if len(data) < off + 14:
                    raise _Short("MPLS pseudowire Ethernet header")
                mac = self._m(data[off + 6:off + 12])
                etype = _u16(data, off + 12)[0]
                off += 14
                layers += 2  # eth, ethertype
                continue
            if etype == 0x8864:  # PPPoE session
                encap = _join(encap, "pppoe")
                version, pos = self._ppp_ip(data, off + 6)
                return version, pos, mac, encap, layers + 2  # pppoes, ppp
            if etype == 0x88E7:  # 802.1ah PBB: I-TAG, then the customer's Ethernet header
                if len(data) < off + 18:
                    raise _Short("802.1ah I-TAG")
                encap = _join(encap, "pbb")
                mac = self._m(data[off + 10:off + 16])
                etype = _u16(data, off + 16)[0]
                off += 18
                layers += 3  # ieee8021ah, eth, ethertype
                continue
            if etype == 0x8926:  # VN-Tag
                if len(data) < off + 6:
                    raise _Short("VN-Tag")
                etype = _u16(data, off + 4)[0]
                off += 6
                layers += 2  # vntag, ethertype
                continue
            if etype == 0x8903:  # Cisco FabricPath: FTAG/TTL, then the classical Ethernet frame
                if len(data) < off + 16:
                    raise _Short("FabricPath header")
                encap = _join(encap, "fabricpath")
                mac = self._m(data[off + 8:off + 14])
                etype = _u16(data, off + 14)[0]
                off += 16
                layers += 3  # cfp, eth, ethertype
                continue
            return 0, off, mac, encap, layers
        return 0, off, mac, encap, layers

    def _ppp_ip(self, data: bytes, off: int) -> tuple[int, int]:
        """(IP version or 0, where it starts) after a PPP protocol field at ``off``."""
        if len(data) < off + 1:
            raise _Short("PPP header")
        if data[off] & 1:  # protocol field compressed to one byte
            proto = data[off]
            off += 1
        else:
            if len(data) < off + 2:
                raise _Short("PPP header")
            proto = _u16(data, off)[0]
            off += 2
        if proto == 0x21:
            return 4, off
        if proto == 0x57:
            return 6, off
        return 0, off

    def _nflog(self, data: bytes, no: int, wirelen: int) -> _IpResult:
        # struct nflog_hdr { u8 family; u8 version; u16 res_id }, then TLVs whose length and type
        # are in host byte order (little-endian on every capture seen in practice).
        if len(data) < 4:
            raise _Short("NFLOG header")
        family = data[0]
        off = 4
        while off + 4 <= len(data):
            tlv_len, tlv_type = struct.unpack_from("<HH", data, off)
            if tlv_len > 0xFF00:  # big-endian writer
                tlv_len, tlv_type = struct.unpack_from(">HH", data, off)
            if tlv_len < 4:
                break
            if tlv_type == 9:  # NFULA_PAYLOAD
                payload = data[off + 4:off + tlv_len]
                if family == 10 or (payload and payload[0] >> 4 == 6):
                    return self._ipv6(payload, 0, no, len(payload))
                return self._ipv4(payload, 0, no, len(payload))
            off += (tlv_len + 3) & ~3
        return _NO_IP

    def _dpkt_fallback(self, linktype: int, data: bytes, no: int, wirelen: int) -> tuple[_IpResult, str | None]:
        """Rare link types: let dpkt peel the link layers, then decode IP ourselves at its offset."""
        import dpkt

        if linktype < 0:
            return _NO_IP, "the frame names an interface the capture never described"
        # Looked up by name: not every dpkt release ships every module (1.9.8 has no dpkt.pflog).
        where = {105: ("ieee80211", "IEEE80211"), 127: ("radiotap", "Radiotap"), 117: ("pflog", "Pflog")}.get(linktype)
        cls = getattr(getattr(dpkt, where[0], None), where[1], None) if where else None
        if cls is None:
            return _NO_IP, f"link type {linktype} is not decoded by the fast engine (try --engine tshark)"
        try:
            layer: Any = cls(data)
        except (dpkt.UnpackError, struct.error, IndexError, ValueError) as exc:
            return _NO_IP, f"dpkt could not decode link type {linktype}: {exc}"
        off = 0
        for _ in range(_MAX_DPKT_LAYERS):
            if isinstance(layer, dpkt.ip.IP):
                return self._ipv4(data, off, no, wirelen), None
            if isinstance(layer, dpkt.ip6.IP6):
                return self._ipv6(data, off, no, wirelen), None
            child = getattr(layer, "data", None)
            if child is None or isinstance(child, bytes):
                break  # dpkt found no IP layer
            off += len(layer) - len(child)
            layer = child
        return _NO_IP, None

    # -- IP ------------------------------------------------------------------------------------
    # A tunnel does not make the decoder recurse: the IP level that finds one returns a _Hop
    # (where the packet inside starts, and how to finish the outer result once the inner one is
    # known), and _resolve decodes level after level in a loop, then finishes them innermost
    # first. Python's recursion limit (a thousand frames, seven per tunnel level) is then no
    # bound on nesting; MAX_LAYERS is.
    def _ip_at(self, version: int, data: bytes, off: int, no: int, wirelen: int, layers: int) -> _IpResult:
        """The IP packet (and whatever it carries) at ``off``; ``layers`` protocol layers lie
        outside it, the frame itself included."""
        if version == 4:
            return self._resolve(self._ipv4_level(data, off, no, wirelen), no, layers + 1)
        if version == 6:
            return self._resolve(self._ipv6_level(data, off, no, wirelen), no, layers + 1)
        if version == _BY_NIBBLE:
            return self._resolve(self._ip_level_by_version(data, off, no, wirelen), no, layers + 1)
        return _NO_IP

    def _ip_by_version(self, data: bytes, off: int, no: int, wirelen: int) -> _IpResult:
        return self._ip_at(_BY_NIBBLE, data, off, no, wirelen, _LINK_LAYERS - 1)  # raw IP: frame, raw

    def _ipv4(self, data: bytes, off: int, no: int, wirelen: int) -> _IpResult:
        return self._ip_at(4, data, off, no, wirelen, _LINK_LAYERS)

    def _ipv6(self, data: bytes, off: int, no: int, wirelen: int) -> _IpResult:
        return self._ip_at(6, data, off, no, wirelen, _LINK_LAYERS)

    def _resolve(self, ip: _IpResult | _Hop, no: int, layers: int) -> _IpResult:
        """Decode the tunnels that ``ip`` (the result of one IP level, ``layers`` deep) opens, one
        level at a time, then finish each level's result, innermost first, as the outer level
        decides (see _Hop)."""
        if type(ip) is not _Hop:
            return ip  # type: ignore[return-value]
        hops: list[_Hop] = []
        short: _Short | None = None
        too_deep = False
        while type(ip) is _Hop:
            hop: _Hop = ip
            hops.append(hop)
            layers += hop.cost + 1
            if layers >= MAX_LAYERS:  # the inner IP header and its transport would pass the bound
                too_deep = True
                self.damage.add("tunnel_too_deep", no, TOO_DEEP)
                break
            try:
                ip = self._ip_level(hop.version, hop.data, hop.off, no, hop.wirelen)
            except _Short as exc:
                short = exc
                break
        result: _IpResult = _NO_IP
        if too_deep:
            hop = hops.pop()
            result = self._outer(hop)
            if result[17] is None:
                result = result[:17] + (TOO_DEEP, result[18])
            if hop.bad_ip and result[0] == 4:
                result = result[:16] + (hop.bad_ip,) + result[17:]
        elif short is None:
            result = ip  # type: ignore[assignment]
        for hop in reversed(hops):
            if short is not None:
                if not hop.catch_short:
                    continue  # the frame is cut inside this level too: the next one out decides
                short = None
                result = self._outer(hop)
            elif not result[0] and hop.nonip_outer:
                result = self._outer(hop)  # the tunnel carries no IP: the outer packet stands
            else:
                if result[0]:
                    result = result[:18] + (_join(hop.tag, result[18]),)
                if hop.reasm:
                    result = _reassembled_inner(result)
            if hop.bad_ip and result[0] == 4:
                result = result[:16] + (hop.bad_ip,) + result[17:]
        if short is not None:
            raise short
        return result

    def _outer(self, hop: _Hop) -> _IpResult:
        """The outer packet of a tunnel, as if it carried nothing decodable."""
        t = hop.transport
        if hop.cksum is not None:
            data, start, end, srcb, dstb, field = hop.cksum
            t = t[:8] + (_check(data, start, end, srcb, dstb, 17, field, self.trust_partial),) + t[9:]
        return hop.head + t[:10] + (None,)

    def _ip_level(self, version: int, data: bytes, off: int, no: int, wirelen: int) -> _IpResult | _Hop:
        if version == 4:
            return self._ipv4_level(data, off, no, wirelen)
        if version == 6:
            return self._ipv6_level(data, off, no, wirelen)
        return self._ip_level_by_version(data, off, no, wirelen)

    def _ip_level_by_version(self, data: bytes, off: int, no: int, wirelen: int) -> _IpResult | _Hop:
        if len(data) <= off:
            raise _Short("IP header")
        nib = data[off] >> 4
        if nib == 4:
            return self._ipv4_level(data, off, no, wirelen)
        if nib == 6:
            return self._ipv6_level(data, off, no, wirelen)
        return _NO_IP[:17] + (f"IP version {nib}", None)

    def _ipv4_level(self, data: bytes, off: int, no: int, wirelen: int) -> _IpResult | _Hop:
        ip = self._ipv4_inner(data, off, no, wirelen)
        if self.verify_checksums:
            ihl = (data[off] & 0x0F) * 4
            # A valid header sums to 0xFFFF, i.e. 0 modulo 0xFFFF (see _check). Receivers drop the
            # datagram otherwise, before any transport processing; Zeek does too (bad_IP_checksum).
            # A field of 0x0000 that does not sum is a header left for the NIC (ZERO_IP, see Cksum).
            if ihl >= 20 and len(data) >= off + ihl and int.from_bytes(data[off:off + ihl], "big") % 0xFFFF:
                verdict = _BAD_IP if data[off + 10] or data[off + 11] else _ZERO_IP
                if type(ip) is _Hop:
                    ip.bad_ip = verdict
                elif ip[0] == 4:  # type: ignore[index]
                    return ip[:16] + (verdict,) + ip[17:]  # type: ignore[index]
        return ip

    def _ipv4_inner(self, data: bytes, off: int, no: int, wirelen: int) -> _IpResult | _Hop:
        if len(data) < off + 20:
            raise _Short("IPv4 header")
        ver_ihl, _tos, total, ip_id, frag_field, ttl, proto, _sum = _ipv4_hdr(data, off)
        ihl = (ver_ihl & 0x0F) * 4
        srcb = data[off + 12:off + 16]
        dstb = data[off + 16:off + 20]
        src = self._a4(srcb)
        dst = self._a4(dstb)
        df = bool(frag_field & 0x4000)
        if ver_ihl >> 4 != 4 or ihl < 20:
            note = f"IPv4 header length {ihl} below 20" if ihl < 20 else f"IP version {ver_ihl >> 4} in an IPv4 slot"
            self.damage.add("undecodable", no, note)
            return (4, src, dst, ttl, ip_id, df, 0, proto, None, None, None, None, None, None, None, None, 0,
                    note, None)
        # The datagram's true length: from the header, unless it is 0 (TSO) - then from the wire.
        if total == 0:
            total = wirelen - off if wirelen > off else len(data) - off
        start = off + ihl
        end = off + total
        if end > wirelen >= start:
            # The header claims more bytes than the wire carried (Zeek's truncated_IP_len; Wireshark's
            # "IPv4 total length exceeds packet length", e.g. zeek tcp__reassembly frame 7). Like
            # Wireshark, the datagram ends with the frame: only those bytes were ever sent.
            self._ip_len_exceeds(no, f"IPv4 total length {total} exceeds the frame by {end - wirelen} bytes")
            end = wirelen
            total = end - off
        payload_len = total - ihl
        if payload_len < 0:
            note = f"IPv4 total length {total} below its header length {ihl}"
            self.damage.add("undecodable", no, note)
            return (4, src, dst, ttl, ip_id, df, 0, proto, None, None, None, None, None, None, None, None, 0,
                    note, None)
        frag_off = (frag_field & 0x1FFF) * 8
        if frag_field & 0x2000 or frag_off:
            self.ip_fragments += 1
            piece = data[start:min(end, len(data))]
            whole = None
            if len(piece) == min(payload_len, len(piece)) and end <= len(data):
                whole = self.frags.add((4, srcb, dstb, proto, ip_id), frag_off, bool(frag_field & 0x2000), piece)
            if whole is None:
                return (4, src, dst, ttl, ip_id, df, Frag.FRAGMENT, proto, None, None, None, None, None, None,
                        None, None, 0, None, None)
            t = self._transport(whole, 0, len(whole), len(whole), proto, srcb, dstb, no)
            return _finish_level(t, (4, src, dst, ttl, ip_id, df, Frag.REASSEMBLED, proto), True)
        t = self._transport(data, start, end, payload_len, proto, srcb, dstb, no)
        return _finish_level(t, (4, src, dst, ttl, ip_id, df, 0, proto), False)

    def _ipv6_level(self, data: bytes, off: int, no: int, wirelen: int) -> _IpResult | _Hop:
        if len(data) < off + 40:
            raise _Short("IPv6 header")
        _vtc, plen, nxt, hlim = _ipv6_hdr(data, off)
        srcb = data[off + 8:off + 24]
        dstb = data[off + 24:off + 40]
        src = self._a6(srcb)
        dst = self._a6(dstb)
        pos = off + 40
        end = pos + plen
        if plen == 0:  # jumbogram or TSO: trust the wire
            end = wirelen if wirelen >= pos else len(data)
        elif end > wirelen >= pos:  # payload length beyond the frame: see _ipv4_inner
            self._ip_len_exceeds(no, f"IPv6 payload length {plen} exceeds the frame by {end - wirelen} bytes")
            end = wirelen
        frag_id: int | None = None
        frag = 0
        more = False
        frag_off = 0
        for count in range(_MAX_EXT + 1):
            if nxt not in _IPV6_EXT and nxt != 44 and nxt != 51:
                break
            if count == _MAX_EXT:
                note = f"IPv6 extension-header chain longer than {_MAX_EXT} headers"
                self.damage.add("undecodable", no, note)
                return (6, src, dst, hlim, None, None, 0, nxt, None, None, None, None, None, None, None, None,
                        0, note, None)
            if len(data) < pos + 8:
                if pos + 8 > end:
                    note = "IPv6 extension header runs past the payload length"
                    self.damage.add("undecodable", no, note)
                    return (6, src, dst, hlim, None, None, 0, nxt, None, None, None, None, None, None, None,
                            None, 0, note, None)
                raise _Short("IPv6 extension header")
            if nxt == 44:
                fo = _u16(data, pos + 2)[0]
                frag_off = fo & 0xFFF8
                more = bool(fo & 1)
                frag_id = _u32(data, pos + 4)[0]
                frag = 1
                hlen = 8
            elif nxt == 51:  # AH counts its length in 4-byte units
                hlen = (data[pos + 1] + 2) * 4
            else:
                hlen = (data[pos + 1] + 1) * 8
                if nxt == 43 and data[pos + 2] == 0 and data[pos + 3] > 0 and data[pos + 1] >= 2:
                    # Routing type 0 with segments left: the pseudo-header uses the final address.
                    last = pos + 8 + (data[pos + 1] // 2 - 1) * 16
                    if len(data) >= last + 16:
                        dstb = data[last:last + 16]
            nxt = data[pos]
            pos += hlen
        payload_len = end - pos
        if payload_len < 0:
            note = "IPv6 extension headers longer than the payload length"
            self.damage.add("undecodable", no, note)
            return (6, src, dst, hlim, frag_id, None, 0, nxt, None, None, None, None, None, None, None, None, 0,
                    note, None)
        if frag:
            self.ip_fragments += 1
            whole = None
            if end <= len(data):
                whole = self.frags.add((6, srcb, dstb, nxt, frag_id), frag_off, more, data[pos:end])
            if whole is None:
                return (6, src, dst, hlim, frag_id, None, Frag.FRAGMENT, nxt, None, None, None, None, None, None,
                        None, None, 0, None, None)
            t = self._transport(whole, 0, len(whole), len(whole), nxt, srcb, dstb, no)
            return _finish_level(t, (6, src, dst, hlim, frag_id, None, Frag.REASSEMBLED, nxt), True)
        t = self._transport(data, pos, end, payload_len, nxt, srcb, dstb, no)
        return _finish_level(t, (6, src, dst, hlim, frag_id, None, 0, nxt), False)

    # -- transport -----------------------------------------------------------------------------
    def _transport(self, data: bytes, start: int, end: int, length: int, proto: int, srcb: bytes,
                   dstb: bytes, no: int) -> tuple[Any, ...]:
        """Decode TCP/UDP at ``start``. Returns (sport, dport, seq, ack, flags, window, options,
        payload_len, cksum, note, inner) where ``inner`` is a :class:`_Hop` for a tunnel."""
        if proto == 6:
            if len(data) < start + 20:
                if len(data) < start + 4:
                    return (None,) * 8 + (0, "TCP header cut by the snapshot length", None)
                sport, dport = struct.unpack_from("!HH", data, start)
                return (sport, dport, None, None, None, None, None, None, 0,
                        "TCP header cut by the snapshot length", None)
            sport, dport, seq, ack, offb, flagb, win, csum, _urp = _tcp_hdr(data, start)
            hlen = (offb >> 4) * 4
            # All 12 bits after the data offset, reserved ones included, as Wireshark's tcp.flags:
            # a frame setting reserved bits (zeek tcp__rst-inject-rae frame 2) is shown as it is.
            flags = (offb & 0x0F) << 8 | flagb
            if hlen < 20:
                note = f"TCP data offset {hlen // 4} below 5"
                self.damage.add("undecodable", no, note)
                return (sport, dport, seq, ack, flags, win, None, None, 0, note, None)
            if hlen > length:
                note = f"TCP data offset {hlen // 4} points past the segment ({length} bytes)"
                self.damage.add("undecodable", no, note)
                return (sport, dport, seq, ack, flags, win, None, None, 0, note, None)
            options = data[start + 20:start + hlen] if hlen > 20 else b""
            cksum = 0
            if self.verify_checksums and end <= len(data):
                cksum = _check(data, start, end, srcb, dstb, 6, csum, self.trust_partial)
            return (sport, dport, seq, ack, flags, win, options, length - hlen, cksum, None, None)
        if proto == 17:
            if len(data) < start + 8:
                return (None,) * 8 + (0, "UDP header cut by the snapshot length", None)
            sport, dport, ulen, csum = _udp_hdr(data, start)
            plen = ulen - 8 if ulen >= 8 else length - 8
            checked = self.verify_checksums and csum and end <= len(data)
            hop = self._udp_tunnel(data, start + 8, min(end, len(data)), sport, dport)
            if hop is not None:
                # The UDP checksum of a tunnel's packet is verified only if the outer packet stands.
                hop.transport = (sport, dport, None, None, None, None, None, plen, 0, None, None)
                if checked:
                    hop.cksum = (data, start, end, srcb, dstb, csum)
                return hop.transport[:10] + (hop,)
            cksum = 0
            if checked:
                cksum = _check(data, start, end, srcb, dstb, 17, csum, self.trust_partial)
            return (sport, dport, None, None, None, None, None, plen, cksum, None, None)
        if proto == 4 or proto == 41 or proto == 47:
            sub = data[:end] if end < len(data) else data
            inner: _Hop | str | None
            if proto == 47:
                inner = self._gre(sub, start)
            else:  # IP in IP; IPv6 in IP (6in4, 6to4)
                inner = _Hop(sub, start, end, 4 if proto == 4 else 6, "ipip" if proto == 4 else "6in4", 0, False, False)
            if isinstance(inner, str):  # GRE carrying what we do not decode: the outer packet, noted
                return (None, None, None, None, None, None, None, length, 0, inner, None)
            if inner is not None:
                inner.transport = (None, None, None, None, None, None, None, length, 0, None, None)
                return inner.transport[:10] + (inner,)
        if proto in (1, 58) and len(data) >= start + 2:  # ICMP: type/code as "ports", like Zeek
            return (data[start], data[start + 1], None, None, None, None, None, length - 8, 0, None, None)
        return (None, None, None, None, None, None, None, length, 0, None, None)

    def _udp_tunnel(self, data: bytes, off: int, end: int, sport: int, dport: int) -> _Hop | None:
        sub = data[:end]
        try:
            if dport in _UDP_VXLAN or sport in _UDP_VXLAN:
                if len(sub) >= off + 8 + 14 and sub[off] & 0x08:
                    return self._link_hop(sub, off + 8 + 14, _u16(sub, off + 8 + 12)[0], "vxlan", 4, end)
            elif dport == _UDP_GENEVE or sport == _UDP_GENEVE:
                if len(sub) >= off + 8:
                    optlen = (sub[off] & 0x3F) * 4
                    ptype = _u16(sub, off + 2)[0]
                    pos = off + 8 + optlen
                    if ptype == 0x6558 and len(sub) >= pos + 14:
                        return self._link_hop(sub, pos + 14, _u16(sub, pos + 12)[0], "geneve", 4, end)
                    return self._link_hop(sub, pos, ptype, "geneve", 2, end)
            elif dport == _UDP_GTPU or sport == _UDP_GTPU:
                return self._gtpu(sub, off)
            elif dport == _UDP_TEREDO or sport == _UDP_TEREDO:
                return self._teredo(sub, off)
            elif len(sub) >= off + 8 and sub[off] & 0xF0 == 0x30 and sub[off + 1] == 0xFF:
                # GTPv1-U on a non-standard port (Zeek's DPD finds it too): version 1, PT 1, G-PDU.
                return self._gtpu(sub, off)
            elif _looks_like_teredo(sub, off, end):
                # Teredo between a client and a relay uses arbitrary ports; like Zeek's analyzer and
                # Wireshark's "teredo" heuristic, accept a payload that is exactly one IPv6 packet.
                return self._teredo(sub, off)
        except _Short:
            return None
        return None

    def _link_hop(self, data: bytes, off: int, etype: int, tag: str, cost: int, wirelen: int) -> _Hop | None:
        """A UDP tunnel carrying a link-layer frame (or an ethertype) from ``off``: a _Hop to its IP
        packet; None when it carries no IP (the outer UDP packet then stands)."""
        version, pos, _mac, _encap, layers = self._link_ip(data, off, etype, [])
        if not version:
            return None
        return _Hop(data, pos, wirelen, version, tag, cost + layers, True, True)

    def _gtpu(self, data: bytes, off: int) -> _Hop | None:
        if len(data) < off + 8:
            return None
        flags, mtype = data[off], data[off + 1]
        if flags >> 5 != 1 or mtype != 0xFF:  # GTPv1, G-PDU only
            return None
        pos = off + 8
        if flags & 0x07:  # E, S or PN present: 4 more bytes
            pos += 4
            ext = data[pos - 1] if flags & 0x04 else 0
            while ext and len(data) > pos:
                elen = data[pos] * 4
                if elen == 0:
                    return None
                ext = data[pos + elen - 1]
                pos += elen
        if len(data) <= pos:
            return None
        return _Hop(data, pos, len(data), _BY_NIBBLE, "gtp", 2, True, True)  # udp, gtp

    def _teredo(self, data: bytes, off: int) -> _Hop | None:
        pos = off
        for _ in range(2):
            if len(data) < pos + 2:
                return None
            if data[pos] == 0 and data[pos + 1] == 1:  # authentication header
                if len(data) < pos + 4:
                    return None
                pos += 4 + data[pos + 2] + data[pos + 3] + 8 + 1
            elif data[pos] == 0 and data[pos + 1] == 0:  # origin indication
                pos += 8
        if len(data) < pos + 40 or data[pos] >> 4 != 6:
            return None
        return _Hop(data, pos, len(data), 6, "teredo", 2, True, False)  # udp, teredo

    def _gre(self, data: bytes, off: int) -> _Hop | str | None:
        """A GRE header at ``off``: a _Hop to the IP packet it carries; a note when it carries none
        we decode (the outer packet stands, and says why); None when it is cut short."""
        if len(data) < off + 4:
            return None
        flags, ptype = _u16(data, off)[0], _u16(data, off + 2)[0]
        version = flags & 0x7
        pos = off + 4
        if version == 0:
            pos += 4 * (bool(flags & 0x8000) + bool(flags & 0x2000) + bool(flags & 0x1000))
        elif version == 1:  # enhanced GRE (PPTP): key always present, optional seq and ack
            pos += 4 + 4 * (bool(flags & 0x1000) + bool(flags & 0x0080))
        else:
            return f"{GRE_NOT_DECODED}: GRE version {version}"
        try:
            ip_version, at, layers = self._gre_payload_ip(data, pos, ptype, [], bool(flags & 0x1000))
        except _Short:
            return None
        if not ip_version:
            return f"{GRE_NOT_DECODED}: protocol type 0x{ptype:04x}"
        return _Hop(data, at, len(data), ip_version, "gre", 1 + layers, True, False)

    def _gre_payload_ip(self, data: bytes, pos: int, ptype: int, vlan: list[int],
                        sequenced: bool = True) -> tuple[int, int, int]:
        """(IP version or 0, where it starts, protocol layers passed) in a GRE payload of ``ptype``
        (``sequenced``: the GRE header carries a sequence number)."""
        if ptype == 0x883E:  # WCCP redirection: IPv4, after a 4-byte WCCPv2 redirect header if any
            if len(data) <= pos:
                raise _Short("WCCP payload")
            return 4, pos if data[pos] >> 4 == 4 else pos + 4, 0  # (as Wireshark tells them apart)
        if ptype == 0x8909:  # Cisco MetaData: its own ethertype, version, length, options, SGT
            if len(data) < pos + 8:
                raise _Short("Cisco MetaData header")
            version, at, _m, _e, layers = self._link_ip(data, pos + 8, _u16(data, pos)[0], vlan)
            return version, at, 1 + layers  # cmd
        if ptype == 0x88BE and not sequenced:  # ERSPAN type I: no header of its own, Ethernet follows
            if len(data) < pos + 14:
                raise _Short("ERSPAN type I Ethernet header")
            version, at, _m, _e, layers = self._link_ip(data, pos + 14, _u16(data, pos + 12)[0], vlan)
            return version, at, 3 + layers  # erspan, eth, ethertype
        if ptype == 0x6558:  # transparent Ethernet bridging
            if len(data) < pos + 14:
                raise _Short("GRE Ethernet header")
            version, at, _m, _e, layers = self._link_ip(data, pos + 14, _u16(data, pos + 12)[0], vlan)
            return version, at, 2 + layers  # eth, ethertype
        if ptype == 0x88BE:  # ERSPAN type II: 8-byte header, then Ethernet
            pos += 8
            if len(data) < pos + 14:
                raise _Short("ERSPAN header")
            version, at, _m, _e, layers = self._link_ip(data, pos + 14, _u16(data, pos + 12)[0], vlan)
            return version, at, 3 + layers  # erspan, eth, ethertype
        if ptype == 0x22EB:  # ERSPAN type III
            if len(data) < pos + 12:
                raise _Short("ERSPAN III header")
            pos += 12 + (8 if data[pos + 11] & 0x01 else 0)
            if len(data) < pos + 14:
                raise _Short("ERSPAN III Ethernet")
            version, at, _m, _e, layers = self._link_ip(data, pos + 14, _u16(data, pos + 12)[0], vlan)
            return version, at, 3 + layers
        if ptype == 0x880B:  # PPP (PPTP)
            if data[pos:pos + 2] == b"\xff\x03":
                pos += 2
            version, at = self._ppp_ip(data, pos)
            return version, at, 1  # ppp
        version, at, _m, _e, layers = self._link_ip(data, pos, ptype, vlan)
        return version, at, layers


class _Hop:
    """A tunnel one IP level found: where the IP packet it carries starts, and how the outer
    level's result is finished once the inner one is known (:meth:`Decoder._resolve`)."""

    __slots__ = ("data", "off", "wirelen", "version", "tag", "cost", "catch_short", "nonip_outer", "transport",
                 "cksum", "head", "reasm", "bad_ip")

    def __init__(self, data: bytes, off: int, wirelen: int, version: int, tag: str, cost: int, catch_short: bool,
                 nonip_outer: bool) -> None:
        self.data = data
        self.off = off
        self.wirelen = wirelen
        self.version = version  # 4, 6 or _BY_NIBBLE
        self.tag = tag  # the name joined to the inner packet's encap
        #: Protocol layers between the outer IP header and the inner one, as Wireshark counts them
        #: (GRE: gre; VXLAN: udp, vxlan, eth, ethertype; IP in IP: none).
        self.cost = cost
        #: A frame cut short inside the inner packet keeps the outer one (GRE, UDP tunnels); IP in
        #: IP passes it on to the next level out.
        self.catch_short = catch_short
        #: An inner packet that is not IP keeps the outer one (VXLAN, Geneve, GTP-U).
        self.nonip_outer = nonip_outer
        self.transport: tuple[Any, ...] = ()  # the outer packet's transport fields, set by _transport
        self.cksum: tuple[bytes, int, int, bytes, bytes, int] | None = None  # a UDP checksum to verify then
        self.head: tuple[Any, ...] = ()  # the outer IP fields, set by its IP level
        self.reasm = False  # the outer datagram was reassembled from fragments
        self.bad_ip = 0  # the outer IPv4 header checksum is wrong: its verdict (BAD_IP or ZERO_IP)


def _finish_level(t: tuple[Any, ...], head: tuple[Any, ...], reasm: bool) -> _IpResult | _Hop:
    """One IP level's result from its header fields and its transport's (see _transport)."""
    hop: _Hop | None = t[10]
    if hop is None:
        return head + t[:10] + (None,)
    hop.head = head
    hop.reasm = reasm
    return hop


class _Short(Exception):
    """The frame ends inside a header."""


def _join(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return f"{a}/{b}"


def _looks_like_teredo(data: bytes, off: int, end: int) -> bool:
    pos = off
    if end - pos >= 8 and data[pos] == 0 and data[pos + 1] == 0:  # origin indication
        pos += 8
    if end - pos < 40 or data[pos] >> 4 != 6:
        return False
    plen = data[pos + 4] << 8 | data[pos + 5]
    return pos + 40 + plen == end


def _reassembled_inner(ip: _IpResult) -> _IpResult:
    """A tunnelled packet carried in a reassembled outer datagram."""
    return ip[:6] + (ip[6] or Frag.REASSEMBLED,) + ip[7:]


def _tag(ip: _IpResult, name: str) -> _IpResult:
    if not ip[0]:
        return ip
    return ip[:18] + (_join(name, ip[18]),)


def _check(data: bytes, start: int, end: int, srcb: bytes, dstb: bytes, proto: int, field: int,
           trust_partial: bool = False) -> int:
    """Verify a TCP/UDP checksum with one big-integer pass (sum of 16-bit words mod 0xFFFF).

    A ones'-complement sum of 16-bit words is congruent to the number they spell modulo 2^16-1,
    so ``int.from_bytes`` does the whole sum in C. A valid segment sums to 0 (mod 0xFFFF).
    Linux writes only the folded pseudo-header sum into packets it hands to an offloading NIC or
    to loopback (CHECKSUM_PARTIAL); such a field is reported as OFFLOADED, not BAD.

    With ``trust_partial`` such a field is reported OFFLOADED without summing the segment, which
    is most of the per-frame cost of a capture taken on the sending host. It differs from the full
    check only for a partial field that happens to complete a valid checksum as well (1 in 65535
    of them): GOOD in full, OFFLOADED here; both are "not bad" unless strict checksums are asked for.
    """
    length = end - start
    pseudo = (int.from_bytes(srcb, "big") % 0xFFFF + int.from_bytes(dstb, "big") % 0xFFFF + proto + length)
    return _verdict(data, start, end, pseudo, field, trust_partial)


def _verdict(data: bytes, start: int, end: int, pseudo: int, field: int, trust_partial: bool) -> Cksum:
    """The checksum verdict for ``data[start:end]`` given its pseudo-header sum (any residue
    modulo 0xFFFF: an int's residue is the sum of its 16-bit words, so addresses may be passed
    as whole integers). Shared by :func:`_check` and the fast path of :meth:`Decoder.frame`."""
    # Partial checksum: the field holds fold(pseudo) and the rest is summed later.
    partial = field % 0xFFFF == pseudo % 0xFFFF or field == 0
    if partial and trust_partial:
        return _OFFLOADED
    seg = int.from_bytes(data[start:end], "big")
    if (end - start) & 1:
        seg <<= 8
    if (seg + pseudo) % 0xFFFF == 0:
        return _GOOD
    if partial:
        return _OFFLOADED
    return _BAD
