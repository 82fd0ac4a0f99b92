//! Tunnels found in a transport payload: GRE (with ERSPAN I/II/III, WCCP, Cisco MetaData, PPTP's
//! PPP, transparent Ethernet bridging) and the UDP ones (VXLAN, Geneve, GTP-U, Teredo), each
//! giving a [`Hop`] to the IP packet inside.

use super::link::{link_ip, ppp_ip};
use super::{be16, slice, Buf, Hop, Stop, BY_NIBBLE, GRE_NOT_DECODED, R};

// Transport-level tunnels recognised by UDP port (either side), as Zeek's default configuration.
const UDP_VXLAN: [u16; 2] = [4789, 8472];
const UDP_GENEVE: u16 = 6081;
const UDP_GTPU: u16 = 2152;
const UDP_TEREDO: u16 = 3544;

/// decode.py's unguarded index past the end (Python's `IndexError`).
const INDEX: Stop = Stop::Undecodable("index out of range");

/// What a GRE header leads to.
pub(crate) enum Gre {
    Hop(Box<Hop>),
    /// A payload we do not decode: the outer packet stands, with this note.
    NotDecoded(String),
    /// The frame ends inside the GRE header or its payload's headers.
    Short,
}

/// A GRE header at `off` of `data` (the bytes of `buf`).
pub(crate) fn gre(data: &[u8], buf: Buf, off: usize) -> Gre {
    if data.len() < off + 4 {
        return Gre::Short;
    }
    let (flags, ptype) = (be16(data, off), be16(data, off + 2));
    let version = flags & 0x7;
    let bit = |mask: u16| usize::from(flags & mask != 0);
    let pos = match version {
        0 => off + 4 + 4 * (bit(0x8000) + bit(0x2000) + bit(0x1000)),
        // Enhanced GRE (PPTP): the key always present, optional sequence and acknowledgment.
        1 => off + 8 + 4 * (bit(0x1000) + bit(0x0080)),
        _ => return Gre::NotDecoded(format!("{GRE_NOT_DECODED}: GRE version {version}")),
    };
    let Ok((ip_version, at, layers)) = gre_payload_ip(data, pos, ptype, &mut Vec::new(), flags & 0x1000 != 0) else {
        return Gre::Short;
    };
    if ip_version == 0 {
        return Gre::NotDecoded(format!("{GRE_NOT_DECODED}: protocol type 0x{ptype:04x}"));
    }
    Gre::Hop(Hop::new(buf, at, data.len(), ip_version, "gre", 1 + layers, true, false))
}

/// (IP version or 0, where it starts, protocol layers passed) in a GRE payload of `ptype`
/// (`sequenced`: the GRE header carries a sequence number).
pub(crate) fn gre_payload_ip(
    data: &[u8],
    mut pos: usize,
    ptype: u16,
    vlan: &mut Vec<u16>,
    sequenced: bool,
) -> R<(u8, usize, u32)> {
    let eth = |at: usize, vlan: &mut Vec<u16>, what: &'static str, extra: u32| -> R<(u8, usize, u32)> {
        if data.len() < at + 14 {
            return Err(Stop::Short(what));
        }
        let l = link_ip(data, at + 14, be16(data, at + 12), vlan)?;
        Ok((l.version, l.pos, extra + l.layers))
    };
    match ptype {
        0x883E => {
            // WCCP redirection: IPv4, after a 4-byte WCCPv2 redirect header if any (as Wireshark
            // tells them apart).
            if data.len() <= pos {
                return Err(Stop::Short("WCCP payload"));
            }
            Ok((4, if data[pos] >> 4 == 4 { pos } else { pos + 4 }, 0))
        }
        0x8909 => {
            // Cisco MetaData: its own ethertype, version, length, options, SGT.
            if data.len() < pos + 8 {
                return Err(Stop::Short("Cisco MetaData header"));
            }
            let l = link_ip(data, pos + 8, be16(data, pos), vlan)?;
            Ok((l.version, l.pos, 1 + l.layers)) // cmd
        }
        // ERSPAN type I: no header of its own, Ethernet follows.
        0x88BE if !sequenced => eth(pos, vlan, "ERSPAN type I Ethernet header", 3), // erspan, eth, ethertype
        0x6558 => eth(pos, vlan, "GRE Ethernet header", 2),                         // eth, ethertype
        0x88BE => eth(pos + 8, vlan, "ERSPAN header", 3),                           // type II: 8-byte header
        0x22EB => {
            // ERSPAN type III
            if data.len() < pos + 12 {
                return Err(Stop::Short("ERSPAN III header"));
            }
            pos += 12 + if data[pos + 11] & 0x01 != 0 { 8 } else { 0 };
            eth(pos, vlan, "ERSPAN III Ethernet", 3)
        }
        0x880B => {
            // PPP (PPTP)
            if slice(data, pos, pos + 2) == b"\xff\x03" {
                pos += 2;
            }
            let (version, at) = ppp_ip(data, pos)?;
            Ok((version, at, 1)) // ppp
        }
        _ => {
            let l = link_ip(data, pos, ptype, vlan)?;
            Ok((l.version, l.pos, l.layers))
        }
    }
}

/// A tunnel in the UDP payload at `off` of `data` (the bytes of `buf`, cut at the datagram's end),
/// by port, or by the GTP-U and Teredo heuristics. A tunnel cut short is no tunnel.
pub(crate) fn udp_tunnel(data: &[u8], buf: Buf, off: usize, sport: u16, dport: u16) -> R<Option<Box<Hop>>> {
    let end = data.len();
    let either = |p: u16| sport == p || dport == p;
    let hop = if UDP_VXLAN.contains(&dport) || UDP_VXLAN.contains(&sport) {
        if data.len() >= off + 22 && data[off] & 0x08 != 0 {
            link_hop(data, buf, off + 22, be16(data, off + 20), "vxlan", 4, end)
        } else {
            Ok(None)
        }
    } else if either(UDP_GENEVE) {
        if data.len() >= off + 8 {
            let optlen = usize::from(data[off] & 0x3F) * 4;
            let ptype = be16(data, off + 2);
            let pos = off + 8 + optlen;
            if ptype == 0x6558 && data.len() >= pos + 14 {
                link_hop(data, buf, pos + 14, be16(data, pos + 12), "geneve", 4, end)
            } else {
                link_hop(data, buf, pos, ptype, "geneve", 2, end)
            }
        } else {
            Ok(None)
        }
    } else if either(UDP_GTPU) {
        gtpu(data, buf, off)
    } else if either(UDP_TEREDO) {
        Ok(teredo(data, buf, off))
    } else if data.len() >= off + 8 && data[off] & 0xF0 == 0x30 && data[off + 1] == 0xFF {
        // GTPv1-U on a non-standard port (Zeek's DPD finds it too): version 1, PT 1, G-PDU.
        gtpu(data, buf, off)
    } else if looks_like_teredo(data, off, end) {
        // Teredo between a client and a relay uses arbitrary ports; like Zeek's analyzer and
        // Wireshark's "teredo" heuristic, accept a payload that is exactly one IPv6 packet.
        Ok(teredo(data, buf, off))
    } else {
        Ok(None)
    };
    match hop {
        Err(Stop::Short(_)) => Ok(None),
        other => other,
    }
}

/// A UDP tunnel carrying a link-layer frame (or an ethertype) from `off`: a hop to its IP
/// packet; none when it carries no IP (the outer UDP packet then stands).
fn link_hop(
    data: &[u8],
    buf: Buf,
    off: usize,
    etype: u16,
    tag: &'static str,
    cost: u32,
    wirelen: usize,
) -> R<Option<Box<Hop>>> {
    let l = link_ip(data, off, etype, &mut Vec::new())?;
    if l.version == 0 {
        return Ok(None);
    }
    Ok(Some(Hop::new(buf, l.pos, wirelen, l.version, tag, cost + l.layers, true, true)))
}

/// GTPv1-U G-PDU: 8 bytes, 4 more with E, S or PN, then the extension headers.
fn gtpu(data: &[u8], buf: Buf, off: usize) -> R<Option<Box<Hop>>> {
    if data.len() < off + 8 {
        return Ok(None);
    }
    let (flags, mtype) = (data[off], data[off + 1]);
    if flags >> 5 != 1 || mtype != 0xFF {
        return Ok(None); // GTPv1, G-PDU only
    }
    let mut pos = off + 8;
    if flags & 0x07 != 0 {
        pos += 4;
        // decode.py reads the next-extension byte and each extension's last byte unguarded: a
        // frame that ends there is `undecodable: index out of range`, as there.
        let mut ext = if flags & 0x04 != 0 { *data.get(pos - 1).ok_or(INDEX)? } else { 0 };
        while ext != 0 && data.len() > pos {
            let elen = usize::from(data[pos]) * 4;
            if elen == 0 {
                return Ok(None);
            }
            ext = *data.get(pos + elen - 1).ok_or(INDEX)?;
            pos += elen;
        }
    }
    if data.len() <= pos {
        return Ok(None);
    }
    Ok(Some(Hop::new(buf, pos, data.len(), BY_NIBBLE, "gtp", 2, true, true))) // udp, gtp
}

/// Teredo: optional authentication and origin indication headers, then IPv6.
fn teredo(data: &[u8], buf: Buf, off: usize) -> Option<Box<Hop>> {
    let mut pos = off;
    for _ in 0..2 {
        if data.len() < pos + 2 {
            return None;
        }
        if data[pos] == 0 && data[pos + 1] == 1 {
            // authentication header
            if data.len() < pos + 4 {
                return None;
            }
            pos += 4 + usize::from(data[pos + 2]) + usize::from(data[pos + 3]) + 8 + 1;
        } else if data[pos] == 0 && data[pos + 1] == 0 {
            pos += 8; // origin indication
        }
    }
    if data.len() < pos + 40 || data[pos] >> 4 != 6 {
        return None;
    }
    Some(Hop::new(buf, pos, data.len(), 6, "teredo", 2, true, false)) // udp, teredo
}

fn looks_like_teredo(data: &[u8], off: usize, end: usize) -> bool {
    let mut pos = off;
    if end >= pos + 8 && data.get(pos) == Some(&0) && data.get(pos + 1) == Some(&0) {
        pos += 8; // origin indication
    }
    if end < pos + 40 || data.get(pos).is_none_or(|b| b >> 4 != 6) {
        return false;
    }
    let plen = usize::from(be16(data, pos + 4));
    pos + 40 + plen == end
}
