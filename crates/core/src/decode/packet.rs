//! The decoded frame: one typed [`Packet`], the fields of `pcapsleuth/packet.py`'s `Packet`.
//! Addresses stay bytes; they are formatted only at output.

use std::borrow::Cow;

/// An IP address as it was on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Addr {
    /// The frame has no IP layer.
    #[default]
    None,
    V4([u8; 4]),
    V6([u8; 16]),
}

impl Addr {
    /// The address in 16 bytes (an IPv4 address first, then zeros): the columns' layout.
    pub fn bytes16(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        match self {
            Addr::None => {}
            Addr::V4(a) => out[..4].copy_from_slice(a),
            Addr::V6(a) => out = *a,
        }
        out
    }

    /// The 16-bit words of the address summed modulo 0xFFFF (its pseudo-header contribution).
    pub(crate) fn sum(&self) -> u64 {
        match self {
            Addr::None => 0,
            Addr::V4(a) => super::checksum::sum_words(a) % 0xFFFF,
            Addr::V6(a) => super::checksum::sum_words(a) % 0xFFFF,
        }
    }
}

/// A raw 32-bit TCP sequence or acknowledgment number. Arithmetic and order live in the tracker
/// (modulo 2^32); the decoder only carries the value, so no raw comparison is offered here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Seq(pub u32);

/// Outcome of the checksum checks, `packet.Cksum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Cksum {
    /// Not verified: frame cut by snaplen, a fragment, or checking disabled.
    #[default]
    Unchecked = 0,
    Good = 1,
    /// Wrong, and not explained by offloading: the receiver's stack drops this packet.
    Bad = 2,
    /// Holds only the pseudo-header sum (or 0): the NIC or loopback fills it in later.
    Offloaded = 3,
    /// The IPv4 header checksum is wrong: the receiver drops the datagram unseen.
    BadIp = 4,
    /// The IPv4 header checksum field is 0x0000 and does not sum: left for the NIC.
    ZeroIp = 5,
}

/// IP fragmentation status, `packet.Frag`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Frag {
    /// Not a fragment.
    #[default]
    None = 0,
    /// A fragment that did not complete a datagram: no transport header is read from it.
    Fragment = 1,
    /// The fragment that completed a datagram; transport fields describe the whole.
    Reassembled = 2,
}

/// Raw TCP options (at most 40 bytes), kept inline: no allocation per segment.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TcpOptions {
    len: u8,
    bytes: [u8; 40],
}

impl TcpOptions {
    pub(crate) fn new(b: &[u8]) -> Self {
        let n = b.len().min(40);
        let mut bytes = [0u8; 40];
        bytes[..n].copy_from_slice(&b[..n]);
        TcpOptions { len: n as u8, bytes }
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl std::fmt::Debug for TcpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TcpOptions({:02x?})", self.as_slice())
    }
}

/// A note: why decoding stopped early (mostly fixed texts).
pub type Note = Cow<'static, str>;

/// One frame, decoded down to the transport header (`packet.Packet`, field for field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// 1-based frame number, as Wireshark numbers it.
    pub no: u64,
    /// Nanoseconds since the epoch, UTC.
    pub ts: i64,
    pub caplen: u32,
    pub wirelen: u32,
    /// Interface id; -1 for a frame naming an interface never described.
    pub iface: i32,
    /// `packet.Direction`: 0 unknown, 1 inbound, 2 outbound.
    pub direction: u8,
    pub linktype: i32,
    pub src_mac: Option<[u8; 6]>,
    /// 802.1Q/802.1ad VLAN ids, outermost first.
    pub vlan: Vec<u16>,
    /// Tunnels and shims decapsulated on the way (`mpls`, `gre/vxlan` ...).
    pub encap: Option<String>,
    /// 4, 6, or 0 for a frame without IP.
    pub ip_version: u8,
    pub src: Addr,
    pub dst: Addr,
    /// IPv4 TTL or IPv6 hop limit of the innermost IP header.
    pub ttl: Option<u8>,
    /// IPv4 identification; IPv6: the fragment header's id.
    pub ip_id: Option<u32>,
    /// IPv4 don't-fragment bit.
    pub df: Option<bool>,
    pub frag: Frag,
    pub proto: Option<u8>,
    /// TCP/UDP ports, or ICMP type and code.
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    pub seq: Option<Seq>,
    pub ack: Option<Seq>,
    /// 12-bit TCP flags.
    pub flags: Option<u16>,
    /// Raw, unscaled TCP window.
    pub window: Option<u16>,
    pub options: Option<TcpOptions>,
    /// TCP/UDP payload bytes according to the IP length (negative for a runt UDP or ICMP header).
    pub payload_len: Option<i64>,
    pub cksum: Cksum,
    /// LINUX_SLL/SLL2 packet type.
    pub pkttype: Option<u16>,
    /// LINUX_SLL2 interface index.
    pub ifindex: Option<u32>,
    pub note: Option<Note>,
    /// A link type the core leaves to dpkt (802.11, radiotap, PFLOG): every IP field is empty and
    /// the Python side decodes the frame (`decode.Decoder._dpkt_fallback`).
    pub left_to_dpkt: bool,
}
