"""Community ID v1 flow hashes, as Zeek (``policy/protocols/conn/community-id-logging``) and
Suricata (``community-id: yes``) log them.

The specification is https://github.com/corelight/community-id-spec. In short::

    sha1( seed:u16be | saddr | daddr | proto:u8 | 0:u8 | sport:u16be | dport:u16be )
    -> base64 -> "1:" + digest

with the endpoints ordered so that both directions of a flow hash alike: the smaller address goes
first, and on equal addresses the smaller port. Addresses compare as their network-order bytes
(4 for IPv4, 16 for IPv6), ports as integers.

ICMP and ICMPv6 have no ports. The spec uses the message type as the source "port" and, for the
request/reply message pairs in :data:`ICMP4_COUNTERPARTS` / :data:`ICMP6_COUNTERPARTS`, the
counterpart type as the destination "port", so that an echo request and its reply land on one
flow. Every other type is *one-way*: its code is the destination "port" and the endpoints are never
reordered (an ICMP error has a direction).

Zeek hands its ``conn_id`` to the hash, where an ICMP connection's ``resp_p`` already holds the
counterpart type; a packet-level caller holds the code instead. Both give the same answer here
because a two-way type ignores the second value and recomputes its counterpart.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import ipaddress
import struct

__all__ = ["community_id", "ICMP4_COUNTERPARTS", "ICMP6_COUNTERPARTS"]

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMP6 = 58
PROTO_SCTP = 132

# Protocols whose flows the spec keys by ports; any other protocol hashes addresses only.
_PORT_PROTOS = frozenset({PROTO_TCP, PROTO_UDP, PROTO_SCTP})

# Request <-> reply message types (spec reference implementation, ICMPHelper). Note that router
# advertisement (9) does not map back to solicitation (10) for ICMPv4: the spec's table has only
# the solicit -> advert direction, and an unsolicited advert is a one-way message.
ICMP4_COUNTERPARTS: dict[int, int] = {
    8: 0,  # echo request -> echo reply
    0: 8,  # echo reply -> echo request
    13: 14,  # timestamp -> timestamp reply
    14: 13,
    15: 16,  # information request -> information reply
    16: 15,
    10: 9,  # router solicitation -> router advertisement
    17: 18,  # address mask request -> address mask reply
    18: 17,
}

ICMP6_COUNTERPARTS: dict[int, int] = {
    128: 129,  # echo request -> echo reply
    129: 128,
    133: 134,  # router solicitation -> router advertisement
    134: 133,
    135: 136,  # neighbor solicitation -> neighbor advertisement
    136: 135,
    130: 131,  # MLD listener query -> listener report
    131: 130,
    139: 140,  # node information query -> node information reply (RFC 4620)
    140: 139,
    144: 145,  # home agent address discovery request -> reply (RFC 6275)
    145: 144,
}


@functools.lru_cache(maxsize=65536)
def _packed(addr: str) -> bytes:
    """An address's network-order bytes (cached: a capture has few distinct addresses)."""
    return ipaddress.ip_address(addr).packed


def community_id(src: str, dst: str, proto: int, sport: int | None, dport: int | None,
                 seed: int = 0) -> str:
    """The base64 Community ID v1 string (``"1:..."``) of one flow.

    For TCP, UDP and SCTP ``sport``/``dport`` are the ports; for ICMP/ICMPv6 they are the message
    type and code (or, Zeek style, the type and its counterpart type); for any other protocol they
    must be ``None``. Raises :class:`ValueError` for mixed address families, a port-keyed protocol
    without ports, or values out of range.
    """
    saddr = _packed(src)
    daddr = _packed(dst)
    if len(saddr) != len(daddr):
        raise ValueError(f"address families differ: {src} vs {dst}")
    if not 0 <= seed <= 0xFFFF:
        raise ValueError(f"seed must fit 16 bits: {seed}")
    if not 0 <= proto <= 0xFF:
        raise ValueError(f"IP protocol must fit 8 bits: {proto}")

    ports: tuple[int, int] | None
    one_way = False
    if proto in (PROTO_ICMP, PROTO_ICMP6):
        if sport is None:
            raise ValueError("ICMP flows need the message type as sport")
        table = ICMP4_COUNTERPARTS if proto == PROTO_ICMP else ICMP6_COUNTERPARTS
        if sport in table:
            ports = (sport, table[sport])
        else:
            one_way = True
            ports = (sport, dport if dport is not None else 0)
    elif proto in _PORT_PROTOS:
        if sport is None or dport is None:
            raise ValueError(f"protocol {proto} flows need both ports")
        ports = (sport, dport)
    else:
        ports = None

    if ports is not None and not all(0 <= p <= 0xFFFF for p in ports):
        raise ValueError(f"ports must fit 16 bits: {ports}")

    # Ordering rule: (saddr, sport) < (daddr, dport), addresses first. One-way ICMP keeps the
    # packet's direction. Equal endpoints (a flow to itself) need no swap either way.
    p1, p2 = ports if ports is not None else (0, 0)
    if not one_way and (saddr > daddr or (saddr == daddr and p1 > p2)):
        saddr, daddr, p1, p2 = daddr, saddr, p2, p1

    data = struct.pack("!H", seed) + saddr + daddr + struct.pack("!BB", proto, 0)
    if ports is not None:
        data += struct.pack("!HH", p1, p2)
    digest = hashlib.sha1(data).digest()  # noqa: S324 - SHA1 is what the spec mandates
    return "1:" + base64.b64encode(digest).decode("ascii")
