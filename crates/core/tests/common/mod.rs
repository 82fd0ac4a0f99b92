//! Captures built byte by byte from the format specifications (pcap-savefile(5),
//! draft-ietf-opsawg-pcapng), as `tests/_build.py` builds them: the bytes are the oracle.
#![allow(dead_code)]

#[derive(Clone, Copy)]
pub enum Order {
    Le,
    Be,
}

impl Order {
    pub fn u16(self, v: u16) -> [u8; 2] {
        match self {
            Order::Le => v.to_le_bytes(),
            Order::Be => v.to_be_bytes(),
        }
    }
    pub fn u32(self, v: u32) -> [u8; 4] {
        match self {
            Order::Le => v.to_le_bytes(),
            Order::Be => v.to_be_bytes(),
        }
    }
    pub fn i64(self, v: i64) -> [u8; 8] {
        match self {
            Order::Le => v.to_le_bytes(),
            Order::Be => v.to_be_bytes(),
        }
    }
}

pub use Order::{Be, Le};

/// A pcap global header.
pub fn pcap_header(order: Order, nsec: bool, snaplen: u32, linktype: u32) -> Vec<u8> {
    let magic: u32 = if nsec { 0xA1B2_3C4D } else { 0xA1B2_C3D4 };
    let mut out = Vec::new();
    out.extend(order.u32(magic));
    out.extend(order.u16(2));
    out.extend(order.u16(4));
    out.extend(order.u32(0));
    out.extend(order.u32(0));
    out.extend(order.u32(snaplen));
    out.extend(order.u32(linktype));
    out
}

/// A pcap record of `frame` at `ts_ns`, with `wirelen` on the wire.
pub fn pcap_record(order: Order, nsec: bool, ts_ns: u64, frame: &[u8], wirelen: u32) -> Vec<u8> {
    let frac = if nsec { ts_ns % 1_000_000_000 } else { ts_ns % 1_000_000_000 / 1000 };
    let mut out = Vec::new();
    out.extend(order.u32((ts_ns / 1_000_000_000) as u32));
    out.extend(order.u32(frac as u32));
    out.extend(order.u32(frame.len() as u32));
    out.extend(order.u32(wirelen));
    out.extend(frame);
    out
}

/// A little-endian microsecond pcap of Ethernet frames.
pub fn pcap(frames: &[(u64, &[u8])]) -> Vec<u8> {
    let mut out = pcap_header(Le, false, 65535, 1);
    for (ts, f) in frames {
        out.extend(pcap_record(Le, false, *ts, f, f.len() as u32));
    }
    out
}

fn pad(v: &mut Vec<u8>) {
    while v.len() % 4 != 0 {
        v.push(0);
    }
}

pub fn opts(order: Order, options: &[(u16, &[u8])]) -> Vec<u8> {
    if options.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (code, value) in options {
        out.extend(order.u16(*code));
        out.extend(order.u16(value.len() as u16));
        out.extend(*value);
        pad(&mut out);
    }
    out.extend([0, 0, 0, 0]);
    out
}

pub fn block(order: Order, btype: u32, body: &[u8]) -> Vec<u8> {
    let mut body = body.to_vec();
    pad(&mut body);
    let n = body.len() as u32 + 12;
    let mut out = Vec::new();
    out.extend(order.u32(btype));
    out.extend(order.u32(n));
    out.extend(body);
    out.extend(order.u32(n));
    out
}

pub fn shb(order: Order, options: &[(u16, &[u8])], major: u16) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(order.u32(0x1A2B_3C4D));
    body.extend(order.u16(major));
    body.extend(order.u16(0));
    body.extend(order.i64(-1));
    body.extend(opts(order, options));
    block(order, 0x0A0D_0D0A, &body)
}

pub fn idb(order: Order, linktype: u16, snaplen: u32, options: &[(u16, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(order.u16(linktype));
    body.extend(order.u16(0));
    body.extend(order.u32(snaplen));
    body.extend(opts(order, options));
    block(order, 1, &body)
}

pub fn epb(
    order: Order,
    iface: u32,
    ticks: u64,
    frame: &[u8],
    wirelen: Option<u32>,
    options: &[(u16, &[u8])],
) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(order.u32(iface));
    body.extend(order.u32((ticks >> 32) as u32));
    body.extend(order.u32(ticks as u32));
    body.extend(order.u32(frame.len() as u32));
    body.extend(order.u32(wirelen.unwrap_or(frame.len() as u32)));
    body.extend(frame);
    pad(&mut body);
    body.extend(opts(order, options));
    block(order, 6, &body)
}

pub fn spb(order: Order, frame: &[u8], wirelen: Option<u32>) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(order.u32(wirelen.unwrap_or(frame.len() as u32)));
    body.extend(frame);
    block(order, 3, &body)
}

pub fn pb(order: Order, iface: u16, ticks: u64, frame: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(order.u16(iface));
    body.extend(order.u16(0));
    body.extend(order.u32((ticks >> 32) as u32));
    body.extend(order.u32(ticks as u32));
    body.extend(order.u32(frame.len() as u32));
    body.extend(order.u32(frame.len() as u32));
    body.extend(frame);
    block(order, 2, &body)
}

/// A 60-byte frame whose bytes say which it is.
pub fn frame(i: u8) -> Vec<u8> {
    (0..60).map(|k| i.wrapping_add(k)).collect()
}
