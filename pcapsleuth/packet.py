"""The per-frame record every engine yields, and the constants that describe it.

A :class:`Packet` is a plain named tuple so that the hot path can build it with one
``tuple.__new__`` call; field order is part of the engines' contract (the fast reader and the
tshark engine must fill the same fields the same way).

Conventions
-----------
* ``no`` is the 1-based frame number, identical to Wireshark's ``frame.number``.
* ``ts`` is integer nanoseconds since the Unix epoch, UTC (``if_tsoffset`` applied).
* Addresses are text (``"10.0.0.1"``, ``"fe80::1"``); MACs are ``"02:00:00:00:00:01"``.
* Fields that do not apply to a frame are ``None`` (ports of an ICMP packet, TTL of an ARP frame).
* ``payload_len`` comes from the IP length fields, so a snaplen-cut frame keeps its true size.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

__all__ = [
    "Packet",
    "Direction",
    "Frag",
    "Cksum",
    "TCP_FIN",
    "TCP_SYN",
    "TCP_RST",
    "TCP_PSH",
    "TCP_ACK",
    "TCP_URG",
    "TCP_ECE",
    "TCP_CWR",
    "TCP_AE",
    "flag_names",
    "flags_str",
]

TCP_FIN = 0x001
TCP_SYN = 0x002
TCP_RST = 0x004
TCP_PSH = 0x008
TCP_ACK = 0x010
TCP_URG = 0x020
TCP_ECE = 0x040
TCP_CWR = 0x080
TCP_AE = 0x100  # formerly NS (RFC 3540), now AccECN (RFC 9768)


class Direction(enum.IntEnum):
    """Which way a frame crossed the capturing interface, when the capture says so."""

    UNKNOWN = 0  # plain pcap on Ethernet: the format does not record it
    INBOUND = 1  # pcapng epb_flags 01, or SLL packet type "to us"/broadcast/multicast/other host
    OUTBOUND = 2  # pcapng epb_flags 10, or SLL packet type "outgoing"


class Frag(enum.IntEnum):
    """IP fragmentation status of a frame."""

    NONE = 0  # not a fragment
    FRAGMENT = 1  # a fragment that did not complete a datagram: no transport header is read from it
    REASSEMBLED = 2  # the fragment that completed a datagram; transport fields describe the whole


class Cksum(enum.IntEnum):
    """Outcome of the TCP/UDP checksum check."""

    UNCHECKED = 0  # not verified: frame cut by snaplen, a fragment, or checking disabled
    GOOD = 1
    BAD = 2  # wrong, and not explained by offloading: the receiver's stack drops this packet
    OFFLOADED = 3  # holds only the pseudo-header sum: the NIC/loopback fills it in later
    BAD_IP = 4  # the IPv4 header checksum is wrong: the receiver drops the datagram unseen
    #: The IPv4 header checksum field is 0x0000: left for the NIC to fill in (TX offload on the
    #: capturing host; Windows and macOS stacks, several NIC drivers). The TCP/UDP checksum of such a
    #: frame is not judged (the same stacks offload it too). ``--strict-checksums`` counts it as BAD_IP.
    ZERO_IP = 5


class Packet(NamedTuple):
    """One frame of a capture, decoded down to the transport header."""

    no: int  # 1-based frame number, as Wireshark numbers it
    ts: int  # nanoseconds since the epoch, UTC
    caplen: int  # bytes captured
    wirelen: int  # bytes on the wire
    iface: int  # interface id (pcapng IDB index across the file; 0 for pcap)
    direction: int  # Direction
    linktype: int  # LINKTYPE_* of the interface
    src_mac: str | None  # link-layer source address, where the link has one
    vlan: tuple[int, ...]  # 802.1Q/802.1ad VLAN ids, outermost first
    encap: str | None  # tunnel or shim decapsulated on the way ("mpls", "gre", "vxlan", ...)
    ip_version: int  # 4, 6, or 0 for a frame without IP
    src: str | None
    dst: str | None
    ttl: int | None  # IPv4 TTL or IPv6 hop limit of the innermost IP header
    ip_id: int | None  # IPv4 identification (IPv6: fragment header id, else None)
    df: bool | None  # IPv4 don't-fragment bit
    frag: int  # Frag
    proto: int | None  # IP protocol of the transport header (6 TCP, 17 UDP, 1 ICMP, ...)
    sport: int | None
    dport: int | None
    seq: int | None  # raw 32-bit TCP sequence number
    ack: int | None  # raw 32-bit TCP acknowledgment number
    flags: int | None  # 12-bit TCP flags (TCP_* bits)
    window: int | None  # raw, unscaled TCP window
    options: bytes | None  # raw TCP options; parse with pcapsleuth.tcpopts.parse_options
    payload_len: int | None  # TCP/UDP payload bytes according to the IP length
    cksum: int  # Cksum
    pkttype: int | None  # LINUX_SLL/SLL2 packet type (0 to us, 1 broadcast, ... 4 outgoing)
    ifindex: int | None  # LINUX_SLL2 interface index
    note: str | None  # why decoding stopped early, if it did


_FLAG_LETTERS = ((TCP_SYN, "S"), (TCP_ACK, "A"), (TCP_FIN, "F"), (TCP_RST, "R"), (TCP_PSH, "P"),
                 (TCP_URG, "U"), (TCP_ECE, "E"), (TCP_CWR, "C"), (TCP_AE, "N"))


def flags_str(flags: int | None) -> str:
    """Compact flag letters in a fixed order: ``SA`` for SYN-ACK, ``FA``, ``R``, ``AP`` ..."""
    if flags is None:
        return ""
    return "".join(letter for bit, letter in _FLAG_LETTERS if flags & bit)


_FLAG_ORDER = ((TCP_FIN, "FIN"), (TCP_SYN, "SYN"), (TCP_RST, "RST"), (TCP_PSH, "PSH"), (TCP_ACK, "ACK"),
               (TCP_URG, "URG"), (TCP_ECE, "ECE"), (TCP_CWR, "CWR"), (TCP_AE, "AE"))


def flag_names(flags: int | None) -> str:
    """TCP flags the way Wireshark lists them: ``SYN, ACK``, ``RST, ACK``, ``FIN, PSH, ACK``."""
    if flags is None:
        return ""
    return ", ".join(name for bit, name in _FLAG_ORDER if flags & bit) or "<none>"
