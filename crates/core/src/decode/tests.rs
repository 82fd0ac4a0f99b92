//! Tables per layer and per damage kind, on frames built byte by byte from the RFCs; the oracle
//! for the whole decoder is `tests/test_core_decode.py` (decode.py, frame for frame).

use super::*;

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];

fn eth(etype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = MAC_B.to_vec();
    f.extend(MAC_A);
    f.extend(etype.to_be_bytes());
    f.extend(payload);
    f
}

fn ipv4(proto: u8, payload: &[u8]) -> Vec<u8> {
    ipv4_with(proto, payload, 20 + payload.len() as u16, 0x4000, true)
}

fn ipv4_with(proto: u8, payload: &[u8], total: u16, frag: u16, good_sum: bool) -> Vec<u8> {
    let mut h = vec![0x45, 0, 0, 0, 0x12, 0x34, 0, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h[6..8].copy_from_slice(&frag.to_be_bytes());
    if good_sum {
        let s = (checksum::sum_words(&h) % 0xFFFF) as u16;
        h[10..12].copy_from_slice(&(0xFFFF - s).to_be_bytes());
    } else {
        h[10..12].copy_from_slice(&[0xDE, 0xAD]);
    }
    h.extend(payload);
    h
}

fn ipv6(nxt: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend((payload.len() as u16).to_be_bytes());
    h.extend([nxt, 64]);
    h.extend([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    h.extend([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    h.extend(payload);
    h
}

/// A TCP header (SYN with an MSS option), and `data`; checksum field 0 (partial).
fn tcp(sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend(sport.to_be_bytes());
    t.extend(dport.to_be_bytes());
    t.extend(1000u32.to_be_bytes());
    t.extend(0u32.to_be_bytes());
    t.extend([0x60, 0x02, 0xFF, 0xFF, 0, 0, 0, 0]);
    t.extend([2, 4, 5, 0xB4]);
    t.extend(data);
    t
}

fn udp(sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend(sport.to_be_bytes());
    u.extend(dport.to_be_bytes());
    u.extend((8 + data.len() as u16).to_be_bytes());
    u.extend([0, 0]);
    u.extend(data);
    u
}

fn decode_with(linktype: i32, frame: &[u8], options: DecodeOptions) -> (Packet, Decoder) {
    let mut d = Decoder::new(options);
    let p = d.decode(&FrameIn {
        no: 1,
        ts: 0,
        caplen: frame.len() as u32,
        wirelen: frame.len() as u32,
        iface: 0,
        direction: 0,
        linktype,
        data: frame,
    });
    (p, d)
}

fn decode(linktype: i32, frame: &[u8]) -> (Packet, Decoder) {
    decode_with(linktype, frame, DecodeOptions::default())
}

fn v4tcp() -> Vec<u8> {
    ipv4(6, &tcp(1234, 80, b""))
}

#[test]
fn layers() {
    let vxlan = |inner: &[u8]| {
        let mut v = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
        v.extend(eth(0x0800, inner));
        udp(40000, 4789, &v)
    };
    let gre = |ptype: u16, inner: &[u8]| {
        let mut g = vec![0, 0];
        g.extend(ptype.to_be_bytes());
        g.extend(inner);
        g
    };
    let mut mpls = vec![0, 0, 0x01, 64]; // one label, bottom of stack
    mpls.extend(v4tcp());
    let mut qinq = vec![0, 10, 0x81, 0x00, 0, 20, 0x08, 0x00];
    qinq.extend(v4tcp());
    let mut snap = vec![0xAA, 0xAA, 0x03, 0, 0, 0, 0x08, 0x00];
    snap.extend(v4tcp());
    let mut pppoe = vec![0x11, 0, 0, 1, 0, 0, 0x00, 0x21];
    pppoe.extend(v4tcp());
    let mut sll = vec![0, 4, 0, 1, 0, 6];
    sll.extend(MAC_A);
    sll.extend([0, 0, 0x08, 0x00]);
    sll.extend(v4tcp());
    let mut null = 24u32.to_le_bytes().to_vec();
    null.extend(ipv6(6, &tcp(1, 2, b"")));
    let mut gtp = vec![0x30, 0xFF, 0, 0, 0, 0, 0, 1];
    gtp.extend(v4tcp());
    // (name, link type, frame, ip version, proto, sport, dport, encap, vlans)
    type Row = (&'static str, i32, Vec<u8>, u8, u8, u16, u16, Option<&'static str>, Vec<u16>);
    let rows: Vec<Row> = vec![
        ("ethernet ipv4 tcp", 1, eth(0x0800, &v4tcp()), 4, 6, 1234, 80, None, vec![]),
        ("ethernet ipv6 tcp", 1, eth(0x86DD, &ipv6(6, &tcp(5, 6, b"x"))), 6, 6, 5, 6, None, vec![]),
        ("802.1ad qinq", 1, eth(0x88A8, &qinq), 4, 6, 1234, 80, None, vec![10, 20]),
        ("mpls", 1, eth(0x8847, &mpls), 4, 6, 1234, 80, Some("mpls"), vec![]),
        ("llc/snap", 1, eth(46, &snap), 4, 6, 1234, 80, None, vec![]),
        ("pppoe", 1, eth(0x8864, &pppoe), 4, 6, 1234, 80, Some("pppoe"), vec![]),
        ("linux sll", 113, sll, 4, 6, 1234, 80, None, vec![]),
        ("null af 24 ipv6", 0, null, 6, 6, 1, 2, None, vec![]),
        ("raw ip", 101, v4tcp(), 4, 6, 1234, 80, None, vec![]),
        ("udp", 1, eth(0x0800, &ipv4(17, &udp(53, 5353, b"abcd"))), 4, 17, 53, 5353, None, vec![]),
        ("icmp", 1, eth(0x0800, &ipv4(1, &[8, 0, 0, 0, 0, 1, 0, 1])), 4, 1, 8, 0, None, vec![]),
        ("ip in ip", 1, eth(0x0800, &ipv4(4, &v4tcp())), 4, 6, 1234, 80, Some("ipip"), vec![]),
        ("6in4", 1, eth(0x0800, &ipv4(41, &ipv6(6, &tcp(7, 8, b"")))), 6, 6, 7, 8, Some("6in4"), vec![]),
        ("gre ipv4", 1, eth(0x0800, &ipv4(47, &gre(0x0800, &v4tcp()))), 4, 6, 1234, 80, Some("gre"), vec![]),
        ("vxlan", 1, eth(0x0800, &ipv4(17, &vxlan(&v4tcp()))), 4, 6, 1234, 80, Some("vxlan"), vec![]),
        ("gtp-u", 1, eth(0x0800, &ipv4(17, &udp(2152, 2152, &gtp))), 4, 6, 1234, 80, Some("gtp"), vec![]),
    ];
    for (name, lt, frame, version, proto, sport, dport, encap, vlan) in rows {
        let (p, d) = decode(lt, &frame);
        assert_eq!(p.ip_version, version, "{name}: {p:?}");
        if version == 0 {
            continue;
        }
        assert_eq!((p.proto, p.sport, p.dport), (Some(proto), Some(sport), Some(dport)), "{name}: {p:?}");
        assert_eq!(p.encap.as_deref(), encap, "{name}");
        assert_eq!(p.vlan, vlan, "{name}");
        assert!(d.damage.is_empty(), "{name}: {:?}", d.damage.entries().collect::<Vec<_>>());
        assert_eq!(p.note, None, "{name}");
    }
}

#[test]
fn ethernet_ipv4_tcp_fields() {
    let (p, _) = decode(1, &eth(0x0800, &ipv4(6, &tcp(1234, 80, b"hello"))));
    assert_eq!(p.src_mac, Some(MAC_A));
    assert_eq!((p.src, p.dst), (Addr::V4([10, 0, 0, 1]), Addr::V4([10, 0, 0, 2])));
    assert_eq!((p.ttl, p.ip_id, p.df, p.frag), (Some(64), Some(0x1234), Some(true), Frag::None));
    assert_eq!((p.seq, p.ack, p.flags, p.window), (Some(Seq(1000)), Some(Seq(0)), Some(0x002), Some(0xFFFF)));
    assert_eq!(p.options.map(|o| o.as_slice().to_vec()), Some(vec![2, 4, 5, 0xB4]));
    assert_eq!(p.payload_len, Some(5));
    // A checksum field of 0 is partial: left for the NIC.
    assert_eq!(p.cksum, Cksum::Offloaded);
    let off = DecodeOptions { verify_checksums: false, trust_partial: false };
    assert_eq!(decode_with(1, &eth(0x0800, &v4tcp()), off).0.cksum, Cksum::Unchecked);
}

#[test]
fn ipv4_header_checksum_verdicts() {
    let bad = ipv4_with(6, &tcp(1, 2, b""), 44, 0, false);
    assert_eq!(decode(1, &eth(0x0800, &bad)).0.cksum, Cksum::BadIp);
    let mut zero = bad.clone();
    zero[10..12].copy_from_slice(&[0, 0]);
    assert_eq!(decode(1, &eth(0x0800, &zero)).0.cksum, Cksum::ZeroIp);
    // The outer header's verdict reaches an inner IPv4 packet of a tunnel.
    let outer = ipv4_with(4, &v4tcp(), 20 + 44, 0, false);
    let (p, _) = decode(1, &eth(0x0800, &outer));
    assert_eq!((p.encap.as_deref(), p.cksum), (Some("ipip"), Cksum::BadIp));
}

#[test]
fn fragments_reassemble() {
    let seg = udp(53, 53, &[7u8; 24]);
    let first = ipv4_with(17, &seg[..16], 36, 0x2000, true);
    let second = ipv4_with(17, &seg[16..], 20 + 16, 2, true);
    let mut d = Decoder::new(DecodeOptions::default());
    fn frame(f: &[u8], no: u64) -> FrameIn<'_> {
        FrameIn {
            no,
            ts: 0,
            caplen: f.len() as u32,
            wirelen: f.len() as u32,
            iface: 0,
            direction: 0,
            linktype: 101,
            data: f,
        }
    }
    let a = d.decode(&frame(&first, 1));
    assert_eq!((a.frag, a.sport), (Frag::Fragment, None));
    let b = d.decode(&frame(&second, 2));
    assert_eq!((b.frag, b.sport, b.payload_len), (Frag::Reassembled, Some(53), Some(24)));
    assert_eq!(d.ip_fragments, 2);
}

/// Every damage kind the decoder records, with its detail text (decode.py's).
#[test]
fn damage_kinds() {
    let mut long_total = ipv4(6, &tcp(1, 2, b""));
    long_total[2..4].copy_from_slice(&100u16.to_be_bytes());
    let mut nested = v4tcp();
    for _ in 0..600 {
        nested = ipv4(4, &nested);
    }
    let mut tcp_off = tcp(1, 2, b"");
    tcp_off[12] = 0x40;
    let mut gtp_ext = vec![0x34, 0xFF, 0, 0, 0, 0, 0, 1];
    gtp_ext.extend([0, 0, 0]); // E flag set, the next-extension byte cut off
    let rows: Vec<(&str, i32, Vec<u8>, &str, &str)> = vec![
        ("short ethernet", 1, vec![0; 10], TRUNCATED_HEADER, "frame too short for the Ethernet header"),
        ("short ipv4", 1, eth(0x0800, &[0x45, 0]), TRUNCATED_HEADER, "frame too short for the IPv4 header"),
        ("short vlan", 1, eth(0x8100, &[0]), TRUNCATED_HEADER, "frame too short for the VLAN tag"),
        ("ihl below 20", 101, vec![0x44; 40], UNDECODABLE, "IPv4 header length 16 below 20"),
        ("tcp data offset", 101, ipv4(6, &tcp_off), UNDECODABLE, "TCP data offset 4 below 5"),
        (
            "length beyond frame",
            101,
            long_total,
            IP_LEN_EXCEEDS_FRAME,
            "IPv4 total length 100 exceeds the frame by 56 bytes",
        ),
        ("tunnels too deep", 101, nested, TUNNEL_TOO_DEEP, TOO_DEEP),
        ("gtp index", 101, ipv4(17, &udp(2152, 2152, &gtp_ext)), UNDECODABLE, "undecodable: index out of range"),
    ];
    for (name, lt, frame, kind, detail) in rows {
        let (p, d) = decode(lt, &frame);
        let e = d.damage.get_named(kind).unwrap_or_else(|| panic!("{name}: no {kind}: {p:?}"));
        assert_eq!((e.count, &e.frames[..], e.detail.as_str()), (1, &[1u64][..], detail), "{name}");
    }
}

#[test]
fn notes() {
    let (p, _) = decode(0, &[99, 0, 0, 0, 0x45]);
    assert_eq!(p.note.as_deref(), Some("loopback address family 99"));
    let (p, _) = decode(147, &[1, 2, 3]);
    assert_eq!(p.note.as_deref(), Some("link type 147 is not decoded by the fast engine (try --engine tshark)"));
    let (p, _) = decode(127, &[0, 0, 8, 0]);
    assert!(p.left_to_dpkt && p.note.is_none());
    let gre_v3 = ipv4(47, &[0, 3, 0x08, 0x00]);
    let (p, _) = decode(101, &gre_v3);
    assert_eq!(p.note.as_deref(), Some("GRE payload not decoded: GRE version 3"));
}

/// No input panics: every prefix of a frame, and each byte flipped, of nested frames.
#[test]
fn never_panics_on_cut_or_flipped_frames() {
    let mut seeds = vec![eth(0x0800, &ipv4(47, &[0, 0, 0x65, 0x58])), eth(0x0800, &ipv4(17, &udp(1, 4789, &[8; 60])))];
    seeds.push(eth(0x86DD, &ipv6(44, &[6, 0, 0, 1, 0, 0, 0, 9, 1, 2, 3, 4])));
    seeds.push(eth(0x0800, &ipv4(4, &ipv4(41, &ipv6(6, &tcp(1, 2, b"x"))))));
    for seed in seeds {
        for lt in [1, 113, 276, 0, 101, 10, 239, 9, 104] {
            for cut in 0..seed.len() {
                decode(lt, &seed[..cut]);
            }
            for i in 0..seed.len() {
                for v in [0x00, 0xFF, 0x45, 0x60] {
                    let mut f = seed.clone();
                    f[i] = v;
                    decode(lt, &f);
                }
            }
        }
    }
}
