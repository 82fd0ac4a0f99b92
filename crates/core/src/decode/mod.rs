//! Frame decoder: link layer, shims and tunnels, IPv4/IPv6, TCP/UDP/ICMP, down to a [`Packet`].
//!
//! A port of `pcapsleuth/decode.py` (its general path, `Decoder.decode`, which its fast path
//! equals), field for field, with the same damage kinds, frames and texts and the same checksum
//! verdicts. It imports nothing of `tcp`, `analysis` or `flow`.
//!
//! Decapsulated on the way, because Zeek sees the TCP connections inside them: 802.1Q/802.1ad/QinQ,
//! MPLS (with or without an Ethernet pseudowire), PPPoE, 802.1ah PBB, VN-Tag, Cisco FabricPath,
//! LLC/SNAP ([`link`]); GRE (ERSPAN I/II/III, WCCP, Cisco MetaData, PPTP), IP-in-IP, 6in4, VXLAN,
//! Geneve, GTP-U, Teredo ([`tunnel`]); NFLOG. IP fragments are reassembled (bounded, [`frag`]).
//!
//! A tunnel does not make the decoder recurse: the IP level that finds one returns a [`Hop`],
//! and [`Decoder::resolve`] decodes level after level in a loop, then finishes them innermost
//! first, up to tshark's bound of [`MAX_LAYERS`] protocol layers. No input panics: every read is
//! bounds-checked (`cargo fuzz` target `decode`).
//!
//! 802.11, radiotap and PFLOG are left to dpkt on the Python side ([`Packet::left_to_dpkt`]).

pub mod checksum;
pub mod frag;
pub mod link;
pub mod packet;
pub mod tunnel;

use std::borrow::Cow;

use crate::capture::DamageLog;
pub use packet::{Addr, Cksum, Frag, Note, Packet, Seq, TcpOptions};

/// Protocol layers a frame may nest, counted as Wireshark counts them (frame, eth, ethertype, ip,
/// gre, ip, ..., tcp): tshark dissects a layer only while fewer than 500 are open.
pub const MAX_LAYERS: u32 = 500;
/// The frame, its link header and the header's type field (eth, ethertype).
const LINK_LAYERS: u32 = 3;
/// The note of a frame whose tunnels nest beyond [`MAX_LAYERS`].
pub const TOO_DEEP: &str =
    "tunnels nested beyond 500 protocol layers (tshark's limit): what they carry was not analyzed";
/// The note of a GRE packet whose payload is not decoded.
pub const GRE_NOT_DECODED: &str = "GRE payload not decoded";
const MAX_EXT: usize = 32;

/// The damage kinds the decoder records (JSON `capture.damage[].kind`).
pub const UNDECODABLE: &str = "undecodable";
pub const TRUNCATED_HEADER: &str = "truncated_header";
pub const IP_LEN_EXCEEDS_FRAME: &str = "ip_len_exceeds_frame";
pub const TUNNEL_TOO_DEEP: &str = "tunnel_too_deep";

/// An IP packet of the version its first nibble says (GTP-U, raw IP).
pub(crate) const BY_NIBBLE: u8 = 1;

/// What the caller may tune.
#[derive(Debug, Clone, Copy)]
pub struct DecodeOptions {
    /// Verify the IPv4 header and TCP/UDP checksums (`--no-checksums` turns it off).
    pub verify_checksums: bool,
    /// Report a partial TCP/UDP checksum field OFFLOADED without summing the segment.
    pub trust_partial: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions { verify_checksums: true, trust_partial: false }
    }
}

/// Why a header could not be read: cut short (`_Short`), or an index past the end that
/// decode.py does not guard (its `IndexError`, caught per frame as `undecodable`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    Short(&'static str),
    Undecodable(&'static str),
}

pub type R<T> = Result<T, Stop>;

/// A byte range of the frame or of a reassembled datagram: a tunnel's bytes are a prefix of its
/// outer packet's (`data[:end]`), a reassembled datagram is a buffer of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Buf {
    /// 0: the frame; i + 1: reassembled datagram i of this frame.
    src: usize,
    start: usize,
    end: usize,
}

impl Buf {
    /// The first `end` bytes (Python's `data[:end]`).
    pub(crate) fn prefix(self, end: usize) -> Buf {
        Buf { end: self.end.min(self.start + end), ..self }
    }
    /// From `start` to the end (Python's `data[start:]`).
    pub(crate) fn from(self, start: usize) -> Buf {
        Buf { start: (self.start + start).min(self.end), ..self }
    }
}

/// The frame being decoded and the datagrams reassembled from it.
pub(crate) struct Bufs<'a> {
    frame: &'a [u8],
    wholes: Vec<Vec<u8>>,
}

impl<'a> Bufs<'a> {
    pub(crate) fn get(&self, b: Buf) -> &[u8] {
        let s: &[u8] = if b.src == 0 { self.frame } else { self.wholes.get(b.src - 1).map_or(&[], |v| v) };
        s.get(b.start..b.end).unwrap_or(&[])
    }
    fn push(&mut self, v: Vec<u8>) -> Buf {
        let end = v.len();
        self.wholes.push(v);
        Buf { src: self.wholes.len(), start: 0, end }
    }
}

/// Bounds-checked reads (after the explicit length checks that mirror decode.py's; they return
/// 0 rather than panic should one be missed).
#[inline]
pub(crate) fn u8at(d: &[u8], i: usize) -> u8 {
    d.get(i).copied().unwrap_or(0)
}
#[inline]
pub(crate) fn be16(d: &[u8], i: usize) -> u16 {
    match d.get(i..i + 2) {
        Some(b) => u16::from_be_bytes([b[0], b[1]]),
        None => 0,
    }
}
#[inline]
pub(crate) fn be32(d: &[u8], i: usize) -> u32 {
    match d.get(i..i + 4) {
        Some(b) => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        None => 0,
    }
}
#[inline]
pub(crate) fn le16(d: &[u8], i: usize) -> u16 {
    match d.get(i..i + 2) {
        Some(b) => u16::from_le_bytes([b[0], b[1]]),
        None => 0,
    }
}
/// Python's `data[a:b]`: clamped, never failing.
#[inline]
pub(crate) fn slice(d: &[u8], a: usize, b: usize) -> &[u8] {
    let b = b.min(d.len());
    d.get(a.min(b)..b).unwrap_or(&[])
}
pub(crate) fn mac_at(d: &[u8], i: usize) -> [u8; 6] {
    let mut m = [0u8; 6];
    m.copy_from_slice(slice(d, i, i + 6).get(..6).unwrap_or(&[0; 6]));
    m
}

pub(crate) fn join(a: Option<String>, b: Option<&str>) -> Option<String> {
    match (a, b) {
        (None, None) => None,
        (None, Some(b)) => Some(b.to_string()),
        (Some(a), None) => Some(a),
        (Some(a), Some(b)) => Some(format!("{a}/{b}")),
    }
}

/// The transport fields (`_transport`'s first eight).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Transport {
    sport: Option<u16>,
    dport: Option<u16>,
    seq: Option<Seq>,
    ack: Option<Seq>,
    flags: Option<u16>,
    window: Option<u16>,
    options: Option<TcpOptions>,
    payload_len: Option<i64>,
}

impl Transport {
    fn len(payload_len: i64) -> Self {
        Transport { payload_len: Some(payload_len), ..Transport::default() }
    }
}

/// One IP level's header fields (`head`): version, addresses, TTL, id, DF, fragment, protocol.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Head {
    version: u8,
    src: Addr,
    dst: Addr,
    ttl: Option<u8>,
    ip_id: Option<u32>,
    df: Option<bool>,
    frag: Frag,
    proto: Option<u8>,
}

/// The IP-layer result (`_IpResult`): the header, the transport, the verdict, a note, the encap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Ip {
    head: Head,
    t: Transport,
    cksum: Cksum,
    note: Option<Note>,
    encap: Option<String>,
}

impl Ip {
    fn with_note(head: Head, note: Note) -> Ip {
        Ip { head, note: Some(note), ..Ip::default() }
    }
}

/// What `_transport` returns: the fields, the verdict, a note, and the tunnel found, if any.
pub(crate) struct TransportOut {
    t: Transport,
    cksum: Cksum,
    note: Option<Note>,
    hop: Option<Box<Hop>>,
}

impl TransportOut {
    fn plain(t: Transport, cksum: Cksum, note: Option<Note>) -> Self {
        TransportOut { t, cksum, note, hop: None }
    }
}

/// A UDP checksum whose verdict is wanted only if the tunnel's outer packet stands.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PendingCheck {
    buf: Buf,
    src: Addr,
    dst: Addr,
    field: u16,
}

/// A tunnel one IP level found (`_Hop`): where the packet inside starts, and how the outer
/// level's result is finished once the inner one is known.
#[derive(Debug, Clone)]
pub(crate) struct Hop {
    data: Buf,
    off: usize,
    wirelen: usize,
    /// 4, 6 or [`BY_NIBBLE`].
    version: u8,
    /// The name joined to the inner packet's encap.
    tag: &'static str,
    /// Protocol layers between the outer IP header and the inner one, as Wireshark counts them.
    cost: u32,
    /// A frame cut short inside the inner packet keeps the outer one (GRE, UDP tunnels).
    catch_short: bool,
    /// An inner packet that is not IP keeps the outer one (VXLAN, Geneve, GTP-U).
    nonip_outer: bool,
    transport: Transport,
    pending: Option<PendingCheck>,
    head: Head,
    reasm: bool,
    /// The outer IPv4 header's verdict (BAD_IP or ZERO_IP), if its checksum fails.
    bad_ip: Option<Cksum>,
}

impl Hop {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        data: Buf,
        off: usize,
        wirelen: usize,
        version: u8,
        tag: &'static str,
        cost: u32,
        catch_short: bool,
        nonip_outer: bool,
    ) -> Box<Hop> {
        Box::new(Hop {
            data,
            off,
            wirelen,
            version,
            tag,
            cost,
            catch_short,
            nonip_outer,
            transport: Transport::default(),
            pending: None,
            head: Head::default(),
            reasm: false,
            bad_ip: None,
        })
    }
}

/// One IP level: a finished result, or a tunnel to follow.
pub(crate) enum Level {
    Done(Ip),
    Hop(Box<Hop>),
}

fn finish_level(t: TransportOut, head: Head, reasm: bool) -> Level {
    match t.hop {
        None => Level::Done(Ip { head, t: t.t, cksum: t.cksum, note: t.note, encap: None }),
        Some(mut hop) => {
            hop.head = head;
            hop.reasm = reasm;
            Level::Hop(hop)
        }
    }
}

/// The link-level facts gathered before the IP layer.
#[derive(Default)]
struct LinkOut {
    mac: Option<[u8; 6]>,
    vlan: Vec<u16>,
    pkttype: Option<u16>,
    ifindex: Option<u32>,
    encap: Option<String>,
    ip: Ip,
    note: Option<Note>,
    direction: u8,
    left_to_dpkt: bool,
}

/// A frame's bytes and the reader's facts about it.
#[derive(Debug, Clone, Copy)]
pub struct FrameIn<'a> {
    pub no: u64,
    pub ts: i64,
    pub caplen: u32,
    pub wirelen: u32,
    pub iface: i32,
    pub direction: u8,
    pub linktype: i32,
    pub data: &'a [u8],
}

impl<'a> From<&crate::capture::Frame<'a>> for FrameIn<'a> {
    fn from(f: &crate::capture::Frame<'a>) -> Self {
        FrameIn {
            no: f.number,
            ts: f.ts_ns,
            caplen: f.caplen,
            wirelen: f.orig_len,
            iface: f.interface,
            direction: f.direction,
            linktype: f.link_type,
            data: f.data,
        }
    }
}

/// LINUX_SLL packet types: 0..3 arrived (to us, broadcast, multicast, another host), 4 outgoing.
fn sll_direction(pkttype: u16) -> u8 {
    match pkttype {
        0..=3 => 1,
        4 => 2,
        _ => 0,
    }
}

/// One decoder per capture: it holds the fragment reassembly state and the damage it found.
pub struct Decoder {
    pub options: DecodeOptions,
    frags: frag::Frags,
    pub damage: DamageLog,
    /// Frames without IP (`Decoder.non_ip`).
    pub non_ip: u64,
    /// IP fragments seen (`Decoder.ip_fragments`).
    pub ip_fragments: u64,
}

impl Decoder {
    pub fn new(options: DecodeOptions) -> Self {
        Decoder { options, frags: frag::Frags::default(), damage: DamageLog::new(), non_ip: 0, ip_fragments: 0 }
    }

    fn damage(&mut self, kind: &'static str, no: u64, detail: impl FnOnce() -> String) {
        self.damage.add_named(kind, no, detail);
    }

    /// Decodes one frame. Never fails and never panics: problems end up in `note` and damage.
    pub fn decode(&mut self, f: &FrameIn<'_>) -> Packet {
        let frame: &[u8] = if f.iface < 0 { &[] } else { f.data };
        let linktype = if f.iface < 0 { -1 } else { f.linktype };
        let mut bufs = Bufs { frame, wholes: Vec::new() };
        let mut out = LinkOut { direction: f.direction, ..LinkOut::default() };
        match self.link(&mut bufs, linktype, f.no, f.wirelen as usize, &mut out) {
            Ok(()) => {}
            Err(Stop::Short(what)) => {
                let note = format!("frame too short for the {what}");
                self.damage(TRUNCATED_HEADER, f.no, || note.clone());
                out.note = Some(Cow::Owned(note));
            }
            Err(Stop::Undecodable(why)) => {
                let note = format!("undecodable: {why}");
                self.damage(UNDECODABLE, f.no, || note.clone());
                out.note = Some(Cow::Owned(note));
            }
        }
        let ip = out.ip;
        let note = out.note.or(ip.note);
        let encap = match ip.encap {
            Some(inner) => join(out.encap, Some(&inner)),
            None => out.encap,
        };
        if ip.head.version == 0 {
            self.non_ip += 1;
        }
        Packet {
            no: f.no,
            ts: f.ts,
            caplen: f.caplen,
            wirelen: f.wirelen,
            iface: f.iface,
            direction: out.direction,
            linktype,
            src_mac: out.mac,
            vlan: out.vlan,
            encap,
            ip_version: ip.head.version,
            src: ip.head.src,
            dst: ip.head.dst,
            ttl: ip.head.ttl,
            ip_id: ip.head.ip_id,
            df: ip.head.df,
            frag: ip.head.frag,
            proto: ip.head.proto,
            sport: ip.t.sport,
            dport: ip.t.dport,
            seq: ip.t.seq,
            ack: ip.t.ack,
            flags: ip.t.flags,
            window: ip.t.window,
            options: ip.t.options,
            payload_len: ip.t.payload_len,
            cksum: ip.cksum,
            pkttype: out.pkttype,
            ifindex: out.ifindex,
            note,
            left_to_dpkt: out.left_to_dpkt,
        }
    }

    /// The link layer by link type (`Decoder.decode`'s dispatch).
    fn link(&mut self, bufs: &mut Bufs<'_>, linktype: i32, no: u64, wirelen: usize, out: &mut LinkOut) -> R<()> {
        let frame = Buf { src: 0, start: 0, end: bufs.frame.len() };
        let d = bufs.frame;
        let caplen = d.len();
        match linktype {
            1 => {
                if caplen < 14 {
                    return Err(Stop::Short("Ethernet header"));
                }
                out.mac = Some(mac_at(d, 6));
                let (ip, mac2, encap) = self.ethertype(bufs, frame, 14, be16(d, 12), &mut out.vlan, no, wirelen)?;
                out.ip = ip;
                out.encap = encap;
                if mac2.is_some() {
                    out.mac = mac2;
                }
            }
            113 => {
                if caplen < 16 {
                    return Err(Stop::Short("Linux cooked header"));
                }
                let (pkttype, hatype, halen, etype) = (be16(d, 0), be16(d, 2), be16(d, 4), be16(d, 14));
                out.pkttype = Some(pkttype);
                if hatype == 1 && halen == 6 {
                    out.mac = Some(mac_at(d, 6));
                }
                if out.direction == 0 {
                    out.direction = sll_direction(pkttype);
                }
                if hatype == 778 {
                    // ARPHRD_IPGRE: the protocol field is GRE's.
                    out.ip = self.gre_payload(bufs, frame, 16, etype, &mut out.vlan, no, wirelen)?;
                    out.encap = Some("gre".to_string());
                } else {
                    let (ip, _mac2, encap) = self.ethertype(bufs, frame, 16, etype, &mut out.vlan, no, wirelen)?;
                    out.ip = ip;
                    out.encap = encap;
                }
            }
            276 => {
                if caplen < 20 {
                    return Err(Stop::Short("Linux cooked v2 header"));
                }
                let (etype, ifindex, hatype, pkttype, halen) = (be16(d, 0), be32(d, 4), be16(d, 8), d[10], d[11]);
                out.ifindex = Some(ifindex);
                out.pkttype = Some(u16::from(pkttype));
                if hatype == 1 && halen == 6 {
                    out.mac = Some(mac_at(d, 12));
                }
                if out.direction == 0 {
                    out.direction = sll_direction(u16::from(pkttype));
                }
                let (ip, _mac2, encap) = self.ethertype(bufs, frame, 20, etype, &mut out.vlan, no, wirelen)?;
                out.ip = ip;
                out.encap = encap;
            }
            101 | 12 | 14 | 228 | 229 => {
                // Raw IP: the frame, then the IP header (no link header or type field).
                out.ip = self.ip_at(bufs, BY_NIBBLE, frame, 0, no, wirelen, LINK_LAYERS - 1)?;
            }
            0 | 108 => {
                if caplen < 4 {
                    return Err(Stop::Short("loopback header"));
                }
                // NULL is in the writer's byte order, LOOP in network order.
                let mut af = be32(d, 0);
                if linktype == 0 && af > 0xFFFF {
                    af = u32::from_le_bytes([d[0], d[1], d[2], d[3]]);
                }
                match af {
                    2 => out.ip = self.ip_at(bufs, 4, frame, 4, no, wirelen, LINK_LAYERS)?,
                    10 | 23 | 24 | 28 | 30 => out.ip = self.ip_at(bufs, 6, frame, 4, no, wirelen, LINK_LAYERS)?,
                    _ => out.note = Some(Cow::Owned(format!("loopback address family {af}"))),
                }
            }
            10 => {
                if caplen < 13 {
                    return Err(Stop::Short("FDDI header"));
                }
                // FDDI sends addresses most-significant bit first; shown in canonical (Ethernet)
                // bit order like Wireshark does, so the same NIC has the same MAC on both media.
                let mut mac = mac_at(d, 7);
                for b in &mut mac {
                    *b = b.reverse_bits();
                }
                out.mac = Some(mac);
                let (ip, _mac2, encap) = self.ethertype(bufs, frame, 13, 0, &mut out.vlan, no, wirelen)?;
                out.ip = ip;
                out.encap = encap;
            }
            239 => out.ip = self.nflog(bufs, frame, no)?,
            9 | 50 => {
                let off = if d.starts_with(b"\xff\x03") { 2 } else { 0 };
                let (version, pos) = link::ppp_ip(d, off)?;
                out.ip = self.ip_at(bufs, version, frame, pos, no, wirelen, LINK_LAYERS)?;
            }
            104 => {
                if caplen < 4 {
                    return Err(Stop::Short("Cisco HDLC header"));
                }
                let (ip, _mac2, encap) = self.ethertype(bufs, frame, 4, be16(d, 2), &mut out.vlan, no, wirelen)?;
                out.ip = ip;
                out.encap = encap;
            }
            _ if linktype < 0 => {
                out.note = Some(Cow::Borrowed("the frame names an interface the capture never described"));
            }
            105 | 127 | 117 => out.left_to_dpkt = true,
            _ => {
                out.note = Some(Cow::Owned(format!(
                    "link type {linktype} is not decoded by the fast engine (try --engine tshark)"
                )))
            }
        }
        Ok(())
    }

    /// Follows an ethertype (and any tags and shims) to the IP layer: (ip, inner MAC, encap).
    #[allow(clippy::too_many_arguments)]
    fn ethertype(
        &mut self,
        bufs: &mut Bufs<'_>,
        buf: Buf,
        off: usize,
        etype: u16,
        vlan: &mut Vec<u16>,
        no: u64,
        wirelen: usize,
    ) -> R<(Ip, Option<[u8; 6]>, Option<String>)> {
        let l = link::link_ip(bufs.get(buf), off, etype, vlan)?;
        let ip = self.ip_at(bufs, l.version, buf, l.pos, no, wirelen, LINK_LAYERS + l.layers)?;
        Ok((ip, l.mac, l.encap))
    }

    #[allow(clippy::too_many_arguments)]
    fn gre_payload(
        &mut self,
        bufs: &mut Bufs<'_>,
        buf: Buf,
        pos: usize,
        ptype: u16,
        vlan: &mut Vec<u16>,
        no: u64,
        wirelen: usize,
    ) -> R<Ip> {
        let (version, at, layers) = tunnel::gre_payload_ip(bufs.get(buf), pos, ptype, vlan, true)?;
        self.ip_at(bufs, version, buf, at, no, wirelen, LINK_LAYERS + layers)
    }

    /// NFLOG: `struct nflog_hdr { u8 family; u8 version; u16 res_id }`, then TLVs whose length and
    /// type are in host byte order (little-endian on every capture seen in practice).
    fn nflog(&mut self, bufs: &mut Bufs<'_>, frame: Buf, no: u64) -> R<Ip> {
        let d = bufs.get(frame);
        if d.len() < 4 {
            return Err(Stop::Short("NFLOG header"));
        }
        let family = d[0];
        let mut off = 4usize;
        while off + 4 <= d.len() {
            let (mut tlv_len, mut tlv_type) = (le16(d, off), le16(d, off + 2));
            if tlv_len > 0xFF00 {
                // A big-endian writer.
                (tlv_len, tlv_type) = (be16(d, off), be16(d, off + 2));
            }
            if tlv_len < 4 {
                break;
            }
            if tlv_type == 9 {
                // NFULA_PAYLOAD
                let payload = frame.prefix(off + usize::from(tlv_len)).from(off + 4);
                let p = bufs.get(payload);
                let n = p.len();
                let v6 = family == 10 || p.first().is_some_and(|b| b >> 4 == 6);
                return self.ip_at(bufs, if v6 { 6 } else { 4 }, payload, 0, no, n, LINK_LAYERS);
            }
            off += (usize::from(tlv_len) + 3) & !3;
        }
        Ok(Ip::default())
    }

    /// The IP packet (and whatever it carries) at `off`; `layers` protocol layers lie outside it,
    /// the frame itself included.
    #[allow(clippy::too_many_arguments)]
    fn ip_at(
        &mut self,
        bufs: &mut Bufs<'_>,
        version: u8,
        buf: Buf,
        off: usize,
        no: u64,
        wirelen: usize,
        layers: u32,
    ) -> R<Ip> {
        if !matches!(version, 4 | 6 | BY_NIBBLE) {
            return Ok(Ip::default());
        }
        let level = self.ip_level(bufs, version, buf, off, no, wirelen)?;
        self.resolve(bufs, level, no, layers + 1)
    }

    /// Decodes the tunnels that `level` (one IP level, `layers` deep) opens, one level at a time,
    /// then finishes each level's result, innermost first, as the outer level decides.
    fn resolve(&mut self, bufs: &mut Bufs<'_>, level: Level, no: u64, mut layers: u32) -> R<Ip> {
        let mut hop = match level {
            Level::Done(ip) => return Ok(ip),
            Level::Hop(h) => h,
        };
        let mut hops: Vec<Box<Hop>> = Vec::new();
        let mut short: Option<&'static str> = None;
        let mut too_deep = false;
        let mut last = Ip::default();
        loop {
            layers = layers.saturating_add(hop.cost + 1);
            let (version, data, off, wirelen) = (hop.version, hop.data, hop.off, hop.wirelen);
            hops.push(hop);
            if layers >= MAX_LAYERS {
                // The inner IP header and its transport would pass the bound.
                too_deep = true;
                self.damage(TUNNEL_TOO_DEEP, no, || TOO_DEEP.to_string());
                break;
            }
            match self.ip_level(bufs, version, data, off, no, wirelen) {
                Ok(Level::Hop(h)) => hop = h,
                Ok(Level::Done(ip)) => {
                    last = ip;
                    break;
                }
                Err(Stop::Short(w)) => {
                    short = Some(w);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        let mut result = Ip::default();
        if too_deep {
            if let Some(hop) = hops.pop() {
                result = self.outer(bufs, &hop);
                if result.note.is_none() {
                    result.note = Some(Cow::Borrowed(TOO_DEEP));
                }
                if let Some(v) = hop.bad_ip {
                    if result.head.version == 4 {
                        result.cksum = v;
                    }
                }
            }
        } else if short.is_none() {
            result = last;
        }
        for hop in hops.iter().rev() {
            if short.is_some() {
                if !hop.catch_short {
                    continue; // the frame is cut inside this level too: the next one out decides
                }
                short = None;
                result = self.outer(bufs, hop);
            } else if result.head.version == 0 && hop.nonip_outer {
                result = self.outer(bufs, hop); // the tunnel carries no IP: the outer packet stands
            } else {
                if result.head.version != 0 {
                    result.encap = Some(match result.encap.take() {
                        Some(inner) => format!("{}/{inner}", hop.tag),
                        None => hop.tag.to_string(),
                    });
                }
                if hop.reasm && result.head.frag == Frag::None {
                    result.head.frag = Frag::Reassembled;
                }
            }
            if let Some(v) = hop.bad_ip {
                if result.head.version == 4 {
                    result.cksum = v;
                }
            }
        }
        match short {
            Some(w) => Err(Stop::Short(w)),
            None => Ok(result),
        }
    }

    /// The outer packet of a tunnel, as if it carried nothing decodable.
    fn outer(&self, bufs: &Bufs<'_>, hop: &Hop) -> Ip {
        let mut cksum = Cksum::Unchecked;
        if let Some(p) = hop.pending {
            cksum = checksum::check(bufs.get(p.buf), &p.src, &p.dst, 17, p.field, self.options.trust_partial);
        }
        Ip { head: hop.head, t: hop.transport, cksum, note: None, encap: None }
    }

    fn ip_level(
        &mut self,
        bufs: &mut Bufs<'_>,
        version: u8,
        buf: Buf,
        off: usize,
        no: u64,
        wirelen: usize,
    ) -> R<Level> {
        match version {
            4 => self.ipv4_level(bufs, buf, off, no, wirelen),
            6 => self.ipv6_level(bufs, buf, off, no, wirelen),
            _ => {
                let d = bufs.get(buf);
                if d.len() <= off {
                    return Err(Stop::Short("IP header"));
                }
                match d[off] >> 4 {
                    4 => self.ipv4_level(bufs, buf, off, no, wirelen),
                    6 => self.ipv6_level(bufs, buf, off, no, wirelen),
                    nib => Ok(Level::Done(Ip { note: Some(Cow::Owned(format!("IP version {nib}"))), ..Ip::default() })),
                }
            }
        }
    }

    fn ipv4_level(&mut self, bufs: &mut Bufs<'_>, buf: Buf, off: usize, no: u64, wirelen: usize) -> R<Level> {
        let mut level = self.ipv4_inner(bufs, buf, off, no, wirelen)?;
        if self.options.verify_checksums {
            // A valid header sums to 0 modulo 0xFFFF. Receivers drop the datagram otherwise, before
            // any transport processing; Zeek does too (bad_IP_checksum). A field of 0x0000 that
            // does not sum is a header left for the NIC (ZERO_IP).
            let d = bufs.get(buf);
            let ihl = usize::from(u8at(d, off) & 0x0F) * 4;
            if ihl >= 20 && d.len() >= off + ihl && checksum::header_bad(&d[off..off + ihl]) {
                let verdict = if d[off + 10] != 0 || d[off + 11] != 0 { Cksum::BadIp } else { Cksum::ZeroIp };
                match &mut level {
                    Level::Hop(h) => h.bad_ip = Some(verdict),
                    Level::Done(ip) => {
                        if ip.head.version == 4 {
                            ip.cksum = verdict;
                        }
                    }
                }
            }
        }
        Ok(level)
    }

    fn ipv4_inner(&mut self, bufs: &mut Bufs<'_>, buf: Buf, off: usize, no: u64, wirelen: usize) -> R<Level> {
        let d = bufs.get(buf);
        if d.len() < off + 20 {
            return Err(Stop::Short("IPv4 header"));
        }
        let ver_ihl = d[off];
        let mut total = usize::from(be16(d, off + 2));
        let ip_id = be16(d, off + 4);
        let frag_field = be16(d, off + 6);
        let (ttl, proto) = (d[off + 8], d[off + 9]);
        let ihl = usize::from(ver_ihl & 0x0F) * 4;
        let srcb = [d[off + 12], d[off + 13], d[off + 14], d[off + 15]];
        let dstb = [d[off + 16], d[off + 17], d[off + 18], d[off + 19]];
        let (src, dst) = (Addr::V4(srcb), Addr::V4(dstb));
        let df = frag_field & 0x4000 != 0;
        let mut head = Head {
            version: 4,
            src,
            dst,
            ttl: Some(ttl),
            ip_id: Some(u32::from(ip_id)),
            df: Some(df),
            frag: Frag::None,
            proto: Some(proto),
        };
        if ver_ihl >> 4 != 4 || ihl < 20 {
            let note = if ihl < 20 {
                format!("IPv4 header length {ihl} below 20")
            } else {
                format!("IP version {} in an IPv4 slot", ver_ihl >> 4)
            };
            self.damage(UNDECODABLE, no, || note.clone());
            return Ok(Level::Done(Ip::with_note(head, Cow::Owned(note))));
        }
        // The datagram's true length: from the header, unless it is 0 (TSO) - then from the wire.
        if total == 0 {
            total = if wirelen > off { wirelen - off } else { d.len() - off };
        }
        let start = off + ihl;
        let mut end = off + total;
        if end > wirelen && wirelen >= start {
            // The header claims more bytes than the wire carried (Zeek's truncated_IP_len;
            // Wireshark's "IPv4 total length exceeds packet length"). Like Wireshark, the datagram
            // ends with the frame: only those bytes were ever sent.
            let over = end - wirelen;
            self.damage(IP_LEN_EXCEEDS_FRAME, no, || {
                format!("IPv4 total length {total} exceeds the frame by {over} bytes")
            });
            end = wirelen;
            total = end - off;
        }
        if total < ihl {
            let note = format!("IPv4 total length {total} below its header length {ihl}");
            self.damage(UNDECODABLE, no, || note.clone());
            return Ok(Level::Done(Ip::with_note(head, Cow::Owned(note))));
        }
        let payload_len = total - ihl;
        let frag_off = usize::from(frag_field & 0x1FFF) * 8;
        let more = frag_field & 0x2000 != 0;
        if more || frag_off != 0 {
            self.ip_fragments += 1;
            let piece = slice(d, start, end);
            let mut whole = None;
            if piece.len() <= payload_len && end <= d.len() {
                let key = (4, head.src.bytes16(), head.dst.bytes16(), proto, u32::from(ip_id));
                whole = self.frags.add(key, frag_off, more, piece);
            }
            let Some(whole) = whole else {
                head.frag = Frag::Fragment;
                return Ok(Level::Done(Ip { head, ..Ip::default() }));
            };
            let n = whole.len();
            let wb = bufs.push(whole);
            let t = self.transport(bufs, wb, 0, n, n as i64, proto, src, dst, no)?;
            head.frag = Frag::Reassembled;
            return Ok(finish_level(t, head, true));
        }
        let t = self.transport(bufs, buf, start, end, payload_len as i64, proto, src, dst, no)?;
        Ok(finish_level(t, head, false))
    }

    fn ipv6_level(&mut self, bufs: &mut Bufs<'_>, buf: Buf, off: usize, no: u64, wirelen: usize) -> R<Level> {
        let d = bufs.get(buf);
        if d.len() < off + 40 {
            return Err(Stop::Short("IPv6 header"));
        }
        let plen = usize::from(be16(d, off + 4));
        let mut nxt = d[off + 6];
        let hlim = d[off + 7];
        let mut a = [0u8; 16];
        a.copy_from_slice(&d[off + 8..off + 24]);
        let src = Addr::V6(a);
        a.copy_from_slice(&d[off + 24..off + 40]);
        let dst = Addr::V6(a);
        let mut dst_pseudo = dst;
        let mut pos = off + 40;
        let mut end = pos + plen;
        if plen == 0 {
            // A jumbogram or TSO: trust the wire.
            end = if wirelen >= pos { wirelen } else { d.len() };
        } else if end > wirelen && wirelen >= pos {
            let over = end - wirelen;
            self.damage(IP_LEN_EXCEEDS_FRAME, no, || {
                format!("IPv6 payload length {plen} exceeds the frame by {over} bytes")
            });
            end = wirelen;
        }
        let mut head =
            Head { version: 6, src, dst, ttl: Some(hlim), ip_id: None, df: None, frag: Frag::None, proto: Some(nxt) };
        let mut frag_id: Option<u32> = None;
        let mut is_frag = false;
        let mut more = false;
        let mut frag_off = 0usize;
        for count in 0..=MAX_EXT {
            if !matches!(nxt, 0 | 43 | 60 | 135 | 139 | 140 | 44 | 51) {
                break;
            }
            head.proto = Some(nxt);
            if count == MAX_EXT {
                let note = format!("IPv6 extension-header chain longer than {MAX_EXT} headers");
                self.damage(UNDECODABLE, no, || note.clone());
                return Ok(Level::Done(Ip::with_note(head, Cow::Owned(note))));
            }
            if d.len() < pos + 8 {
                if pos + 8 > end {
                    let note = "IPv6 extension header runs past the payload length";
                    self.damage(UNDECODABLE, no, || note.to_string());
                    return Ok(Level::Done(Ip::with_note(head, Cow::Borrowed(note))));
                }
                return Err(Stop::Short("IPv6 extension header"));
            }
            let hlen = match nxt {
                44 => {
                    let fo = be16(d, pos + 2);
                    frag_off = usize::from(fo & 0xFFF8);
                    more = fo & 1 != 0;
                    frag_id = Some(be32(d, pos + 4));
                    is_frag = true;
                    8
                }
                51 => (usize::from(d[pos + 1]) + 2) * 4, // AH counts its length in 4-byte units
                _ => {
                    if nxt == 43 && d[pos + 2] == 0 && d[pos + 3] > 0 && d[pos + 1] >= 2 {
                        // Routing type 0 with segments left: the pseudo-header uses the final address.
                        let last = pos + 8 + (usize::from(d[pos + 1]) / 2 - 1) * 16;
                        if d.len() >= last + 16 {
                            a.copy_from_slice(&d[last..last + 16]);
                            dst_pseudo = Addr::V6(a);
                        }
                    }
                    (usize::from(d[pos + 1]) + 1) * 8
                }
            };
            nxt = d[pos];
            pos += hlen;
        }
        head.proto = Some(nxt);
        if end < pos {
            head.ip_id = frag_id;
            let note = "IPv6 extension headers longer than the payload length";
            self.damage(UNDECODABLE, no, || note.to_string());
            return Ok(Level::Done(Ip::with_note(head, Cow::Borrowed(note))));
        }
        let payload_len = end - pos;
        head.ip_id = frag_id;
        if is_frag {
            self.ip_fragments += 1;
            let mut whole = None;
            if end <= d.len() {
                let key = (6, src.bytes16(), dst_pseudo.bytes16(), nxt, frag_id.unwrap_or(0));
                whole = self.frags.add(key, frag_off, more, &d[pos..end]);
            }
            let Some(whole) = whole else {
                head.frag = Frag::Fragment;
                return Ok(Level::Done(Ip { head, ..Ip::default() }));
            };
            let n = whole.len();
            let wb = bufs.push(whole);
            let t = self.transport(bufs, wb, 0, n, n as i64, nxt, src, dst_pseudo, no)?;
            head.frag = Frag::Reassembled;
            return Ok(finish_level(t, head, true));
        }
        let t = self.transport(bufs, buf, pos, end, payload_len as i64, nxt, src, dst_pseudo, no)?;
        Ok(finish_level(t, head, false))
    }

    /// TCP, UDP (and the tunnels it carries), IP in IP, GRE, ICMP at `start`; `end` is where
    /// the IP datagram ends, `length` its payload length.
    #[allow(clippy::too_many_arguments)]
    fn transport(
        &mut self,
        bufs: &mut Bufs<'_>,
        buf: Buf,
        start: usize,
        end: usize,
        length: i64,
        proto: u8,
        src: Addr,
        dst: Addr,
        no: u64,
    ) -> R<TransportOut> {
        let d = bufs.get(buf);
        match proto {
            6 => return Ok(self.tcp(d, start, end, length, src, dst, no)),
            17 => {
                if d.len() < start + 8 {
                    let note = "UDP header cut by the snapshot length";
                    return Ok(TransportOut::plain(Transport::default(), Cksum::Unchecked, Some(Cow::Borrowed(note))));
                }
                let (sport, dport, ulen, csum) =
                    (be16(d, start), be16(d, start + 2), be16(d, start + 4), be16(d, start + 6));
                let plen = if ulen >= 8 { i64::from(ulen) - 8 } else { length - 8 };
                let checked = self.options.verify_checksums && csum != 0 && end <= d.len();
                let t = Transport {
                    sport: Some(sport),
                    dport: Some(dport),
                    payload_len: Some(plen),
                    ..Transport::default()
                };
                let sub = buf.prefix(end.min(d.len()));
                if let Some(mut hop) = tunnel::udp_tunnel(bufs.get(sub), sub, start + 8, sport, dport)? {
                    // The UDP checksum of a tunnel's packet is verified only if the outer packet stands.
                    hop.transport = t;
                    if checked {
                        hop.pending = Some(PendingCheck { buf: buf.prefix(end).from(start), src, dst, field: csum });
                    }
                    return Ok(TransportOut { t, cksum: Cksum::Unchecked, note: None, hop: Some(hop) });
                }
                let mut cksum = Cksum::Unchecked;
                if checked {
                    cksum = checksum::check(slice(d, start, end), &src, &dst, 17, csum, self.options.trust_partial);
                }
                return Ok(TransportOut::plain(t, cksum, None));
            }
            4 | 41 | 47 => {
                let sub = buf.prefix(end);
                let t = Transport::len(length);
                if proto == 47 {
                    match tunnel::gre(bufs.get(sub), sub, start) {
                        tunnel::Gre::Hop(mut hop) => {
                            hop.transport = t;
                            return Ok(TransportOut { t, cksum: Cksum::Unchecked, note: None, hop: Some(hop) });
                        }
                        tunnel::Gre::NotDecoded(note) => {
                            return Ok(TransportOut::plain(t, Cksum::Unchecked, Some(Cow::Owned(note))))
                        }
                        tunnel::Gre::Short => {}
                    }
                } else {
                    // IP in IP; IPv6 in IP (6in4, 6to4).
                    let (v, tag) = if proto == 4 { (4, "ipip") } else { (6, "6in4") };
                    let mut hop = Hop::new(sub, start, end, v, tag, 0, false, false);
                    hop.transport = t;
                    return Ok(TransportOut { t, cksum: Cksum::Unchecked, note: None, hop: Some(hop) });
                }
            }
            _ => {}
        }
        if matches!(proto, 1 | 58) && d.len() >= start + 2 {
            // ICMP: type and code as "ports", like Zeek.
            let t = Transport {
                sport: Some(u16::from(d[start])),
                dport: Some(u16::from(d[start + 1])),
                payload_len: Some(length - 8),
                ..Transport::default()
            };
            return Ok(TransportOut::plain(t, Cksum::Unchecked, None));
        }
        Ok(TransportOut::plain(Transport::len(length), Cksum::Unchecked, None))
    }

    #[allow(clippy::too_many_arguments)]
    fn tcp(&mut self, d: &[u8], start: usize, end: usize, length: i64, src: Addr, dst: Addr, no: u64) -> TransportOut {
        const CUT: &str = "TCP header cut by the snapshot length";
        if d.len() < start + 20 {
            let mut t = Transport::default();
            if d.len() >= start + 4 {
                t.sport = Some(be16(d, start));
                t.dport = Some(be16(d, start + 2));
            }
            return TransportOut::plain(t, Cksum::Unchecked, Some(Cow::Borrowed(CUT)));
        }
        let offb = d[start + 12];
        let hlen = usize::from(offb >> 4) * 4;
        // All 12 bits after the data offset, reserved ones included, as Wireshark's tcp.flags.
        let mut t = Transport {
            sport: Some(be16(d, start)),
            dport: Some(be16(d, start + 2)),
            seq: Some(Seq(be32(d, start + 4))),
            ack: Some(Seq(be32(d, start + 8))),
            flags: Some(u16::from(offb & 0x0F) << 8 | u16::from(d[start + 13])),
            window: Some(be16(d, start + 14)),
            options: None,
            payload_len: None,
        };
        let csum = be16(d, start + 16);
        if hlen < 20 {
            let note = format!("TCP data offset {} below 5", hlen / 4);
            self.damage(UNDECODABLE, no, || note.clone());
            return TransportOut::plain(t, Cksum::Unchecked, Some(Cow::Owned(note)));
        }
        if hlen as i64 > length {
            let note = format!("TCP data offset {} points past the segment ({length} bytes)", hlen / 4);
            self.damage(UNDECODABLE, no, || note.clone());
            return TransportOut::plain(t, Cksum::Unchecked, Some(Cow::Owned(note)));
        }
        t.options = Some(TcpOptions::new(slice(d, start + 20, start + hlen)));
        t.payload_len = Some(length - hlen as i64);
        let mut cksum = Cksum::Unchecked;
        if self.options.verify_checksums && end <= d.len() {
            cksum = checksum::check(slice(d, start, end), &src, &dst, 6, csum, self.options.trust_partial);
        }
        TransportOut::plain(t, cksum, None)
    }
}

#[cfg(test)]
mod tests;
