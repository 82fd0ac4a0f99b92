//! Link-layer shims, from an ethertype to the IP header: 802.1Q/802.1ad tags, LLC/SNAP, MPLS
//! (and its Ethernet pseudowire), PPPoE, 802.1ah PBB, VN-Tag, Cisco FabricPath; and PPP.
//!
//! One loop for every shim: a header that names another header never makes the decoder
//! recurse (a frame of 8,000 SNAP headers used to exhaust Python's stack).

use super::{be16, join, mac_at, u8at, Stop, R};

/// Headers followed in one frame before giving up (decode.py's `_MAX_TAGS * 2`).
const MAX_SHIMS: usize = 16;
const VLAN_TYPES: [u16; 5] = [0x8100, 0x88A8, 0x9100, 0x9200, 0x9300];

/// Where an ethertype chain led (`_link_ip`): the IP version (0: not IP), where it starts, the
/// innermost MAC a shim carried, the encapsulations passed, and the protocol layers passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkIp {
    pub version: u8,
    pub pos: usize,
    pub mac: Option<[u8; 6]>,
    pub encap: Option<String>,
    pub layers: u32,
}

/// Follows `etype` at `off` (and any tags and shims) to the IP layer; VLAN ids are appended to
/// `vlan`, outermost first.
pub fn link_ip(data: &[u8], mut off: usize, mut etype: u16, vlan: &mut Vec<u16>) -> R<LinkIp> {
    let mut out = LinkIp { version: 0, pos: off, mac: None, encap: None, layers: 0 };
    let done = |mut out: LinkIp, version: u8, pos: usize| {
        out.version = version;
        out.pos = pos;
        Ok(out)
    };
    for _ in 0..MAX_SHIMS {
        match etype {
            0x0800 => return done(out, 4, off),
            0x86DD => return done(out, 6, off),
            t if VLAN_TYPES.contains(&t) => {
                if data.len() < off + 4 {
                    return Err(Stop::Short("VLAN tag"));
                }
                vlan.push(be16(data, off) & 0x0FFF);
                etype = be16(data, off + 2);
                off += 4;
                out.layers += 2; // vlan, ethertype
            }
            0..=1500 => {
                // An 802.3 length field: LLC follows.
                if data.len() < off + 3 {
                    return done(out, 0, off);
                }
                if data[off] == 0xAA && data[off + 1] == 0xAA {
                    // SNAP: OUI + ethertype
                    if data.len() < off + 8 {
                        return Err(Stop::Short("SNAP header"));
                    }
                    etype = be16(data, off + 6);
                    off += 8;
                    out.layers += 2; // llc, ethertype
                    continue;
                }
                if data[off] == 0x06 && data[off + 1] == 0x06 {
                    // The LLC SAP for IP (rare, an RFC 1042 alternative).
                    out.layers += 1;
                    return done(out, 4, off + 3);
                }
                return done(out, 0, off);
            }
            0x8847 | 0x8848 => {
                // MPLS unicast/multicast: pop to the bottom of the stack.
                out.encap = join(out.encap, Some("mpls"));
                for _ in 0..16 {
                    if data.len() < off + 4 {
                        return Err(Stop::Short("MPLS label"));
                    }
                    let bos = data[off + 2] & 0x01;
                    off += 4;
                    out.layers += 1;
                    if bos != 0 {
                        break;
                    }
                }
                if data.len() <= off {
                    return Err(Stop::Short("MPLS payload"));
                }
                match data[off] >> 4 {
                    4 => return done(out, 4, off),
                    6 => return done(out, 6, off),
                    0 => {
                        // An Ethernet pseudowire with a control word (RFC 4448).
                        off += 4;
                        out.layers += 1;
                    }
                    _ => {}
                }
                if data.len() < off + 14 {
                    return Err(Stop::Short("MPLS pseudowire Ethernet header"));
                }
                out.mac = Some(mac_at(data, off + 6));
                etype = be16(data, off + 12);
                off += 14;
                out.layers += 2; // eth, ethertype
            }
            0x8864 => {
                // PPPoE session
                out.encap = join(out.encap, Some("pppoe"));
                let (version, pos) = ppp_ip(data, off + 6)?;
                out.layers += 2; // pppoes, ppp
                return done(out, version, pos);
            }
            0x88E7 => {
                // 802.1ah PBB: the I-TAG, then the customer's Ethernet header.
                if data.len() < off + 18 {
                    return Err(Stop::Short("802.1ah I-TAG"));
                }
                out.encap = join(out.encap, Some("pbb"));
                out.mac = Some(mac_at(data, off + 10));
                etype = be16(data, off + 16);
                off += 18;
                out.layers += 3; // ieee8021ah, eth, ethertype
            }
            0x8926 => {
                // VN-Tag
                if data.len() < off + 6 {
                    return Err(Stop::Short("VN-Tag"));
                }
                etype = be16(data, off + 4);
                off += 6;
                out.layers += 2; // vntag, ethertype
            }
            0x8903 => {
                // Cisco FabricPath: FTAG/TTL, then the classical Ethernet frame.
                if data.len() < off + 16 {
                    return Err(Stop::Short("FabricPath header"));
                }
                out.encap = join(out.encap, Some("fabricpath"));
                out.mac = Some(mac_at(data, off + 8));
                etype = be16(data, off + 14);
                off += 16;
                out.layers += 3; // cfp, eth, ethertype
            }
            _ => return done(out, 0, off),
        }
    }
    done(out, 0, off)
}

/// (IP version or 0, where it starts) after a PPP protocol field at `off`.
pub fn ppp_ip(data: &[u8], mut off: usize) -> R<(u8, usize)> {
    if data.len() < off + 1 {
        return Err(Stop::Short("PPP header"));
    }
    let proto = if u8at(data, off) & 1 != 0 {
        // The protocol field compressed to one byte.
        off += 1;
        u16::from(data[off - 1])
    } else {
        if data.len() < off + 2 {
            return Err(Stop::Short("PPP header"));
        }
        off += 2;
        be16(data, off - 2)
    };
    Ok(match proto {
        0x21 => (4, off),
        0x57 => (6, off),
        _ => (0, off),
    })
}
