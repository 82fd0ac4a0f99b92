//! The reader on hand-built captures: formats, clocks, and a table row per damage kind and per
//! error, each with the frame numbers and the text `pcapsleuth/reader.py` gives for the same bytes.

mod common;

use std::io::Write;

use common::*;
use pcapsleuth_core::capture::{CaptureError, CaptureInfo, ErrorKind, Options, Reader, MAX_COMMENTS, MAX_INTERFACES};

/// One frame's facts, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
struct F {
    no: u64,
    ts: i64,
    linktype: i32,
    iface: i32,
    caplen: u32,
    wirelen: u32,
    direction: u8,
    data: Vec<u8>,
}

fn read_with(data: Vec<u8>, options: &Options) -> Result<(Vec<F>, CaptureInfo), CaptureError> {
    let mut r = Reader::from_bytes(data, options)?;
    let mut out = Vec::new();
    while let Some(f) = r.next_frame()? {
        assert_eq!(f.data.len(), f.caplen as usize);
        out.push(F {
            no: f.number,
            ts: f.ts_ns,
            linktype: f.link_type,
            iface: f.interface,
            caplen: f.caplen,
            wirelen: f.orig_len,
            direction: f.direction,
            data: f.data.to_vec(),
        });
    }
    Ok((out, r.into_info()))
}

fn read(data: Vec<u8>) -> (Vec<F>, CaptureInfo) {
    read_with(data, &Options::default()).expect("readable")
}

fn numbers(frames: &[F]) -> Vec<u64> {
    frames.iter().map(|f| f.no).collect()
}

/// `{kind: (frames, detail)}` of the damage.
fn damage(info: &CaptureInfo) -> Vec<(&'static str, Vec<u64>, String)> {
    info.damage.entries().map(|e| (e.kind, e.frames.clone(), e.detail.clone())).collect()
}

const TS: u64 = 1_700_000_000_123_456_789;

// -- formats ------------------------------------------------------------------------------------

#[test]
fn pcap_byte_orders_and_resolutions() {
    for order in [Le, Be] {
        for nsec in [false, true] {
            let mut data = pcap_header(order, nsec, 65535, 1);
            data.extend(pcap_record(order, nsec, TS, &frame(1), 60));
            data.extend(pcap_record(order, nsec, TS + 1_000_001_001, &frame(2), 60));
            let (frames, info) = read(data);
            let want: Vec<i64> = if nsec {
                vec![TS as i64, TS as i64 + 1_000_001_001]
            } else {
                vec![(TS - TS % 1000) as i64, ((TS + 1_000_001_001) / 1000 * 1000) as i64]
            };
            assert_eq!(frames.iter().map(|f| f.ts).collect::<Vec<_>>(), want);
            assert_eq!(numbers(&frames), [1, 2]);
            assert_eq!(frames[1].data, frame(2));
            assert_eq!((info.frames, info.first_ts, info.last_ts), (2, Some(want[0]), Some(want[1])));
            assert!(info.damage.is_empty());
        }
    }
}

#[test]
fn kuznetzov_pcap_has_24_byte_record_headers() {
    let mut data = pcap_header(Le, false, 65535, 1);
    data[..4].copy_from_slice(&[0x34, 0xcd, 0xb2, 0xa1]);
    let mut rec = pcap_record(Le, false, 5_000_000_000, &frame(9), 60);
    rec.splice(16..16, [0xEE; 8]); // ifindex, protocol, pkt_type, pad
    data.extend(rec);
    let (frames, _) = read(data);
    assert_eq!(frames.len(), 1);
    assert_eq!((frames[0].ts, frames[0].data.clone()), (5_000_000_000, frame(9)));
}

#[test]
fn pcap_fcs_bits_and_link_type() {
    // The "F" bit (28) and an FCS of 2 (16-bit words, bits 29-31). reader.py reads the FCS length
    // as `(network >> 28) & 7`, the F bit included: 5 here. Ported as it is (not in the JSON).
    let data = pcap_header(Le, false, 65535, 1 | 0x1000_0000 | (2 << 29));
    let (_, info) = read(data);
    assert_eq!((info.interfaces[0].linktype, info.interfaces[0].fcslen), (1, Some(5)));
}

#[test]
fn pcapng_sections_of_both_byte_orders_with_their_own_interfaces() {
    let f = frame(1);
    let raw = frame(2);
    let mut data = shb(Le, &[(1, b"first section"), (3, b"Linux")], 1);
    data.extend(idb(Le, 1, 0, &[(2, b"eth0"), (3, b"uplink"), (9, b"\x09")]));
    data.extend(idb(Le, 101, 0, &[(9, b"\x86")])); // 2^-6 s ticks
    data.extend(epb(Le, 0, TS, &f, None, &[(1, b"hello"), (2, &1u32.to_le_bytes())]));
    data.extend(epb(Le, 1, 64 * 3 + 1, &raw, None, &[(2, &2u32.to_le_bytes())]));
    data.extend(spb(Le, &f, None));
    data.extend(pb(Le, 1, 128, &raw));
    data.extend(shb(Be, &[], 1));
    data.extend(idb(Be, 1, 0, &[(14, &100i64.to_be_bytes())])); // if_tsoffset 100 s, usec ticks
    data.extend(epb(Be, 0, 5_000_001, &f, None, &[(2, &3u32.to_be_bytes())])); // direction 11: unknown
    let (frames, info) = read(data);
    assert_eq!(numbers(&frames), [1, 2, 3, 4, 5]);
    assert_eq!(frames.iter().map(|f| f.iface).collect::<Vec<_>>(), [0, 1, 0, 1, 2]);
    assert_eq!(frames.iter().map(|f| f.linktype).collect::<Vec<_>>(), [1, 101, 1, 101, 1]);
    assert_eq!(frames[0].ts, TS as i64);
    assert_eq!(frames[1].ts, 3_000_000_000 + 1_000_000_000 / 64); // exact: 3 + 1/64 s
    assert_eq!(frames[2].ts, TS as i64); // SPB: no timestamp, keeps the previous one
    assert_eq!(frames[3].ts, 2_000_000_000);
    assert_eq!(frames[4].ts, 100_000_000_000 + 5_000_001_000);
    assert_eq!(frames.iter().map(|f| f.direction).collect::<Vec<_>>(), [1, 2, 0, 0, 0]);
    assert_eq!(info.sections, 2);
    assert_eq!(info.comments.get(&1), Some(&vec!["hello".to_string()]));
    assert_eq!(info.section_comments, ["first section"]);
    assert_eq!(info.shb_info, [("shb_os", "Linux".to_string())]);
    let i0 = &info.interfaces[0];
    assert_eq!((i0.name.as_deref(), i0.description.as_deref(), i0.frames), (Some("eth0"), Some("uplink"), 2));
    assert_eq!(info.interfaces.iter().map(|i| i.section).collect::<Vec<_>>(), [0, 0, 1]);
    // Wireshark shows the journal block as a frame: it takes a number and yields nothing.
    let mut data = shb(Le, &[], 1);
    data.extend(idb(Le, 1, 0, &[]));
    data.extend(block(Le, 9, b"__REALTIME_TIMESTAMP=1\n"));
    data.extend(block(Le, 4, &[0; 8])); // NRB: not a frame
    data.extend(epb(Le, 0, 7, &f, None, &[]));
    let (frames, info) = read(data);
    assert_eq!((numbers(&frames), info.frames), (vec![2], 2));
}

#[test]
fn pcapng_clocks_beyond_64_bits_are_exact_or_clamped() {
    let f = frame(3);
    let mut data = shb(Le, &[], 1);
    data.extend(idb(Le, 1, 0, &[(9, b"\x0c")])); // picoseconds: ticks / 1000
    data.extend(idb(Le, 1, 0, &[(9, b"\x7f")])); // 10^-127 s: every tick rounds to 0
    data.extend(idb(Le, 1, 0, &[(9, b"\x09"), (14, &(-5i64).to_le_bytes())])); // ns, 5 s before the epoch
    data.extend(epb(Le, 0, 1_234_567_890_123, &f, None, &[]));
    data.extend(epb(Le, 1, u64::MAX, &f, None, &[]));
    data.extend(epb(Le, 2, 1, &f, None, &[]));
    data.extend(epb(Le, 0, u64::MAX, &f, None, &[])); // 1.8e19 ps = 1.8e16 ns: fits
    let (frames, info) = read(data);
    assert_eq!(frames.iter().map(|f| f.ts).collect::<Vec<_>>(), [1_234_567_890, 0, 0, (u64::MAX / 1000) as i64]);
    let d = damage(&info);
    assert_eq!(d[0].0, "time_backwards");
    assert_eq!(d[0].1, [2, 3]);
    assert_eq!(
        d[1],
        ("time_out_of_range", vec![3], "timestamp before 1970 or after 2262; clamped to that range".into())
    );
}

// -- damage: a row per kind ---------------------------------------------------------------------

struct Row {
    what: &'static str,
    data: Vec<u8>,
    frames: Vec<u64>,
    damage: Vec<(&'static str, Vec<u64>, &'static str)>,
    bytes_unread: u64,
}

fn pcap_of(n: u8) -> Vec<u8> {
    let frames: Vec<Vec<u8>> = (1..=n).map(frame).collect();
    let refs: Vec<(u64, &[u8])> =
        frames.iter().enumerate().map(|(i, f)| (1_000_000_000 + i as u64, f.as_slice())).collect();
    pcap(&refs)
}

fn pcapng_of(n: u8) -> Vec<u8> {
    let mut data = shb(Le, &[], 1);
    data.extend(idb(Le, 1, 0, &[]));
    for i in 1..=n {
        data.extend(epb(Le, 0, i as u64, &frame(i), None, &[]));
    }
    data
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    let two = pcap_of(2);
    let mut cut = two.clone();
    cut.extend(&pcap_record(Le, false, 3, &frame(3), 60)[..10]);
    rows.push(Row {
        what: "pcap record header cut",
        data: cut,
        frames: vec![1, 2],
        damage: vec![("truncated_record", vec![3], "record header cut short: 10 of 16 bytes")],
        bytes_unread: 10,
    });
    let mut cut = two.clone();
    cut.extend(&pcap_record(Le, false, 3, &frame(3), 60)[..46]);
    rows.push(Row {
        what: "pcap record body cut",
        data: cut,
        frames: vec![1, 2],
        damage: vec![("truncated_record", vec![3], "record body cut short: 30 of 60 bytes")],
        bytes_unread: 46,
    });
    let mut snap = pcap_header(Le, false, 40, 1);
    snap.extend(pcap_record(Le, false, 1, &frame(1)[..40], 60));
    snap.extend(pcap_record(Le, false, 2, &frame(2), 60));
    rows.push(Row {
        what: "pcap snaplen cut and over the snaplen",
        data: snap,
        frames: vec![1, 2],
        damage: vec![
            ("caplen_over_snaplen", vec![2], "captured length above the file's snaplen 40"),
            ("snaplen_cut", vec![1], "frame cut by the snapshot length"),
        ],
        bytes_unread: 0,
    });
    let mut insane = two.clone();
    let mut rec = pcap_record(Le, false, 3, &frame(3), 60);
    rec[8..12].copy_from_slice(&0x4000_0000u32.to_le_bytes());
    insane.extend(&rec);
    rows.push(Row {
        what: "pcap caplen insane",
        data: insane,
        frames: vec![1, 2],
        damage: vec![(
            "caplen_insane",
            vec![3],
            "record claims 1,073,741,824 captured bytes (more than 262,144); rest of file unreadable",
        )],
        bytes_unread: 76,
    });
    let mut back = pcap_header(Le, false, 65535, 1);
    for (i, ts) in [5u64, 3, 6].iter().enumerate() {
        back.extend(pcap_record(Le, false, ts * 1_000_000_000, &frame(i as u8), 60));
    }
    rows.push(Row {
        what: "time going backwards",
        data: back,
        frames: vec![1, 2, 3],
        damage: vec![("time_backwards", vec![2], "timestamp earlier than the previous frame's")],
        bytes_unread: 0,
    });
    for (blen, detail) in [
        (0u32, "block type 0x00000006 has impossible length 0 at byte 140; rest of file unreadable"),
        (13, "block type 0x00000006 has impossible length 13 at byte 140; rest of file unreadable"),
        (0x7FFF_FFF0, "block type 0x00000006 has impossible length 2147483632 at byte 140; rest of file unreadable"),
    ] {
        let mut data = pcapng_of(0);
        data.extend(epb(Le, 0, 5, &frame(1), None, &[]));
        data.extend(6u32.to_le_bytes());
        data.extend(blen.to_le_bytes());
        data.extend([0; 40]);
        rows.push(Row {
            what: "pcapng impossible block length",
            data,
            frames: vec![1],
            damage: vec![("bad_block", vec![2], detail)],
            bytes_unread: 48,
        });
    }
    let mut trailer = pcapng_of(1);
    let mut bad = epb(Le, 0, 6, &frame(2), None, &[]);
    let n = bad.len();
    bad[n - 4..].copy_from_slice(&99u32.to_le_bytes());
    trailer.extend(&bad);
    rows.push(Row {
        what: "pcapng trailer differs",
        data: trailer,
        frames: vec![1],
        damage: vec![(
            "bad_block",
            vec![2],
            "block type 0x00000006: trailing length 99 differs from 92; rest of file unreadable",
        )],
        bytes_unread: 92,
    });
    let mut v2 = pcapng_of(1);
    v2.extend(shb(Le, &[], 2));
    v2.extend(idb(Le, 1, 0, &[]));
    rows.push(Row {
        what: "pcapng second section of version 2",
        data: v2,
        frames: vec![1],
        damage: vec![("bad_block", vec![2], "section header version 2.0 is not 1.x; rest of file unreadable")],
        bytes_unread: 20,
    });
    let mut bom = pcapng_of(1);
    let mut s = shb(Le, &[], 1);
    s[8..12].copy_from_slice(b"XXXX");
    bom.extend(s);
    rows.push(Row {
        what: "pcapng second section of unknown byte order",
        data: bom,
        frames: vec![1],
        damage: vec![("bad_block", vec![2], "section header with unknown byte-order magic 58585858")],
        bytes_unread: 28,
    });
    let mut short = pcapng_of(1);
    short.extend(block(Le, 1, &[])); // an IDB of 12 bytes
    short.extend(epb(Le, 0, 9, &frame(2), None, &[]));
    short.extend(block(Le, 2, &[0; 4])); // a PB of 16 bytes
    rows.push(Row {
        what: "pcapng blocks too short for their fields",
        data: short,
        frames: vec![1, 2],
        damage: vec![("bad_block", vec![2, 3], "block type 0x00000001 too short for its fields (12 bytes)")],
        bytes_unread: 0,
    });
    let mut past = pcapng_of(0);
    let mut e = epb(Le, 0, 7, &frame(1), None, &[]);
    e[20..24].copy_from_slice(&100u32.to_le_bytes()); // caplen 100 in a block with room for 60
    past.extend(e);
    rows.push(Row {
        what: "pcapng caplen past its block",
        data: past,
        frames: vec![1],
        damage: vec![("bad_block", vec![1], "captured length 100 runs past the end of its block")],
        bytes_unread: 0,
    });
    let mut unknown = pcapng_of(1);
    unknown.extend(epb(Le, 3, 6, &frame(2), None, &[]));
    unknown.extend(epb(Le, 0, 7, &frame(3), None, &[]));
    rows.push(Row {
        what: "pcapng EPB of an interface never described",
        data: unknown,
        frames: vec![1, 2, 3],
        damage: vec![(
            "unknown_interface",
            vec![2],
            "packet names interface 3, which its section never described: section 0 (counted from 0) describes only \
             interface 0",
        )],
        bytes_unread: 0,
    });
    let mut spb_first = shb(Le, &[], 1);
    spb_first.extend(spb(Le, &frame(1), None));
    rows.push(Row {
        what: "pcapng SPB before any IDB",
        data: spb_first,
        frames: vec![1],
        damage: vec![("unknown_interface", vec![1], "simple packet block before any interface description")],
        bytes_unread: 0,
    });
    let mut over = shb(Le, &[], 1);
    over.extend(idb(Le, 1, 50, &[]));
    over.extend(epb(Le, 0, 1, &frame(1), Some(70), &[]));
    over.extend(spb(Le, &frame(2), None));
    rows.push(Row {
        what: "pcapng over the interface snaplen; SPB cut to it",
        data: over,
        frames: vec![1, 2],
        damage: vec![
            ("caplen_over_snaplen", vec![1], "captured length above the interface snaplen 50"),
            ("snaplen_cut", vec![1, 2], "frame cut by the snapshot length"),
        ],
        bytes_unread: 0,
    });
    let mut huge = pcapng_of(0);
    huge.extend(epb(Le, 0, u64::MAX, &frame(1), None, &[]));
    rows.push(Row {
        what: "pcapng timestamp after 2262",
        data: huge,
        frames: vec![1],
        damage: vec![("time_out_of_range", vec![1], "timestamp before 1970 or after 2262; clamped to that range")],
        bytes_unread: 0,
    });
    let mut hdr_cut = pcapng_of(1);
    hdr_cut.extend([6, 0, 0, 0, 32]);
    rows.push(Row {
        what: "pcapng block header cut",
        data: hdr_cut,
        frames: vec![1],
        damage: vec![("truncated_record", vec![2], "block header cut short (5 bytes at end of file)")],
        bytes_unread: 5,
    });
    let mut blk_cut = pcapng_of(1);
    blk_cut.extend(&epb(Le, 0, 2, &frame(2), None, &[])[..50]);
    rows.push(Row {
        what: "pcapng block cut",
        data: blk_cut,
        frames: vec![1],
        damage: vec![("truncated_record", vec![2], "block type 0x00000006 cut short: 50 of 92 bytes")],
        bytes_unread: 50,
    });
    let packed = gzip(&pcap_of(40));
    rows.push(Row {
        what: "gzip cut short",
        data: packed[..packed.len() - 12].to_vec(),
        frames: (1..=39).collect(),
        damage: vec![
            // 24 + 39 * 76 bytes: the cut loses the last record whole.
            (
                "truncated_file",
                vec![40],
                "gzip stream ends early, after 2,988 bytes (cut short?); the check at the end of member 1 was never \
                 reached, so what was read of it is unverified",
            ),
        ],
        bytes_unread: 0,
    });
    rows
}

#[test]
fn damage_table() {
    for row in rows() {
        let (frames, info) = read(row.data);
        assert_eq!(numbers(&frames), row.frames, "{}", row.what);
        let want: Vec<(&str, Vec<u64>, String)> =
            row.damage.iter().map(|(k, f, d)| (*k, f.clone(), d.to_string())).collect();
        assert_eq!(damage(&info), want, "{}", row.what);
        assert_eq!(info.bytes_unread, row.bytes_unread, "{}", row.what);
    }
}

#[test]
fn every_damage_kind_has_a_row() {
    use pcapsleuth_core::capture::DamageKind;
    let seen: std::collections::BTreeSet<&str> = rows().iter().flat_map(|r| r.damage.iter().map(|d| d.0)).collect();
    for kind in DamageKind::ALL {
        // too_many_interfaces and corrupt_compressed have tests of their own, below
        let elsewhere = [DamageKind::TooManyInterfaces, DamageKind::CorruptCompressed];
        assert!(seen.contains(kind.as_str()) || elsewhere.contains(&kind), "{}", kind.as_str());
    }
}

#[test]
fn interfaces_and_comments_are_bounded() {
    let f = frame(1);
    let mut data = shb(Le, &[], 1);
    for i in 0..MAX_INTERFACES + 50 {
        data.extend(idb(Le, 1, 0, &[(2, format!("if{i}").as_bytes())]));
    }
    for i in 0..MAX_COMMENTS + 7 {
        data.extend(epb(Le, 0, 5 + i as u64, &f, None, &[(1, format!("comment {i}").as_bytes())]));
    }
    data.extend(epb(Le, MAX_INTERFACES as u32 + 10, 10_000, &f, None, &[]));
    let (frames, info) = read(data);
    assert_eq!(frames.len(), MAX_COMMENTS + 8);
    assert_eq!(info.interfaces.len(), MAX_INTERFACES);
    assert_eq!(info.comments.values().map(Vec::len).sum::<usize>(), MAX_COMMENTS);
    assert_eq!(info.comments_left_out, 7);
    let e = info.damage.get(pcapsleuth_core::capture::DamageKind::TooManyInterfaces).unwrap();
    assert_eq!(
        (e.count, e.frames[0], e.detail.as_str()),
        (50, 1, "section 0 (counted from 0) describes more than 4,096 interfaces; the rest are ignored")
    );
    let u = info.damage.get(pcapsleuth_core::capture::DamageKind::UnknownInterface).unwrap();
    assert_eq!(u.frames, [MAX_COMMENTS as u64 + 8]);
    assert_eq!(
        u.detail,
        "packet names interface 4106 of section 0 (counted from 0), whose description was ignored (too_many_interfaces)"
    );
}

#[test]
fn interfaces_belong_to_their_section() {
    // `cat` of two captures: each section has its own interface 0, and its own 4,096 bound.
    let f = frame(1);
    let mut one = shb(Le, &[], 1);
    one.extend(idb(Le, 1, 0, &[]));
    one.extend(epb(Le, 0, 5, &f, None, &[]));
    let mut data = one.clone();
    let mut two = shb(Be, &[], 1);
    two.extend(idb(Be, 101, 0, &[]));
    two.extend(epb(Be, 0, 6, &f, None, &[]));
    two.extend(epb(Be, 1, 7, &f, None, &[]));
    two.extend(spb(Be, &f, None));
    data.extend(two);
    data.extend(shb(Le, &[], 1));
    data.extend(spb(Le, &f, None));
    let (frames, info) = read(data);
    assert_eq!(
        frames.iter().map(|f| (f.iface, f.linktype)).collect::<Vec<_>>(),
        [(0, 1), (1, 101), (-1, -1), (1, 101), (-1, -1)]
    );
    assert_eq!(info.interfaces.iter().map(|i| (i.id, i.section)).collect::<Vec<_>>(), [(0, 0), (1, 1)]);
    assert_eq!(
        damage(&info),
        [(
            "unknown_interface",
            vec![3, 5],
            "packet names interface 1, which its section never described: section 1 (counted from 0) describes only \
             interface 0"
                .to_string()
        )]
    );
}

// -- errors: a row per unusable input -----------------------------------------------------------

#[test]
fn error_table() {
    let bomb = gzip(&vec![0u8; 8 << 20]);
    let mut bad_len = shb(Le, &[], 1);
    bad_len[4..8].copy_from_slice(&30u32.to_le_bytes());
    let mut bad_trailer = shb(Le, &[], 1);
    let n = bad_trailer.len();
    bad_trailer[n - 4..].copy_from_slice(&32u32.to_le_bytes());
    let cases: Vec<(&str, Vec<u8>, u64, ErrorKind, String)> = vec![
        ("empty", vec![], u64::MAX, ErrorKind::Empty, "empty file (0 bytes), not a capture".into()),
        (
            "text",
            b"tcpdump: listening".to_vec(),
            u64::MAX,
            ErrorKind::NotACapture,
            "not a pcap or pcapng capture (magic 74637064)".into(),
        ),
        (
            "zstd",
            b"\x28\xb5\x2f\xfd\0\0".to_vec(),
            u64::MAX,
            ErrorKind::NotACapture,
            "zstd-compressed; decompress it first (zstd -d)".into(),
        ),
        (
            "gzip of text",
            gzip(b"hi"),
            u64::MAX,
            ErrorKind::NotACapture,
            "not a pcap or pcapng capture after gzip decompression (magic 6869)".into(),
        ),
        (
            "gzip of nothing",
            gzip(b""),
            u64::MAX,
            ErrorKind::NotACapture,
            "not a pcap or pcapng capture after gzip decompression (magic none)".into(),
        ),
        (
            "pcap header cut",
            pcap_of(0)[..20].to_vec(),
            u64::MAX,
            ErrorKind::TruncatedHeader,
            "pcap global header cut short (20 of 24 bytes)".into(),
        ),
        (
            "pcapng header cut",
            shb(Le, &[], 1)[..10].to_vec(),
            u64::MAX,
            ErrorKind::TruncatedHeader,
            "pcapng section header cut short (10 of 28+ bytes)".into(),
        ),
        (
            "pcapng body cut",
            shb(Le, &[], 1)[..20].to_vec(),
            u64::MAX,
            ErrorKind::TruncatedHeader,
            "pcapng section header cut short (20 of 28 bytes)".into(),
        ),
        (
            "pcapng version 2",
            shb(Le, &[], 2),
            u64::MAX,
            ErrorKind::NotACapture,
            "pcapng section header version 2.0 is not supported (only 1.x exists)".into(),
        ),
        (
            "pcapng length",
            bad_len,
            u64::MAX,
            ErrorKind::NotACapture,
            "pcapng section header has impossible length 30".into(),
        ),
        (
            "pcapng trailer",
            bad_trailer,
            u64::MAX,
            ErrorKind::NotACapture,
            "pcapng section header: trailing length 32 differs from 28".into(),
        ),
        (
            "gzip of zeros",
            bomb,
            1_000_000,
            ErrorKind::NotACapture,
            "not a pcap or pcapng capture after gzip decompression (magic 00000000)".into(),
        ),
        (
            "gzip header cut",
            gzip(&pcap_of(0))[..15].to_vec(),
            u64::MAX,
            ErrorKind::Decompression,
            "gzip stream ends early, after 4 bytes (cut short?); the check at the end of member 1 was never reached, \
             so what was read of it is unverified"
                .into(),
        ),
    ];
    for (what, data, limit, kind, problem) in cases {
        let got = read_with(data, &Options { max_decompressed: limit, ..Options::default() }).map(|_| ()).unwrap_err();
        assert_eq!((got.kind, got.problem.as_str(), got.path.as_str()), (kind, problem.as_str(), "<bytes>"), "{what}");
    }
}

#[test]
fn paths_that_are_no_capture_files() {
    let dir = std::env::temp_dir().join(format!("pcapsleuth-core-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("nope.pcap");
    let err = Reader::open(&missing, &Options::default()).map(|_| ()).unwrap_err();
    assert_eq!((err.kind, err.problem.as_str()), (ErrorKind::NotFound, "no such file"));
    let err = Reader::open(&dir, &Options::default()).map(|_| ()).unwrap_err();
    assert_eq!((err.kind, err.problem.as_str()), (ErrorKind::Open, "is a directory, not a capture file"));
    let file = dir.join("ok.pcap");
    std::fs::write(&file, pcap_of(3)).unwrap();
    let mut r = Reader::open(&file, &Options::default()).unwrap();
    let mut n = 0;
    while r.next_frame().unwrap().is_some() {
        n += 1;
    }
    assert_eq!((n, r.info().size, r.info().path.as_str()), (3, Some(24 + 3 * 76), file.to_str().unwrap()));
    std::fs::remove_dir_all(&dir).unwrap();
}

// -- compression --------------------------------------------------------------------------------

#[test]
fn compressed_members_streams_and_padding() {
    let data = pcap_of(200);
    let half = 24 + 100 * 76;
    let mut two = gzip(&data[..half]);
    two.extend(gzip(&data[half..]));
    two.extend([0; 512]); // padding after the last member is ignored, as gzip -d does
    let (frames, info) = read(two);
    assert_eq!((frames.len(), info.damage.is_empty()), (200, true));
    assert_eq!(frames[150].data, frame(151));

    let mut bz = Vec::new();
    for part in [&data[..half], &data[half..]] {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        e.write_all(part).unwrap();
        bz.extend(e.finish().unwrap());
    }
    let (frames, info) = read(bz);
    assert_eq!((frames.len(), info.damage.is_empty(), info.compression.map(|c| c.name())), (200, true, Some("bzip2")));

    let mut xz = Vec::new();
    for part in [&data[..half], &data[half..]] {
        let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
        e.write_all(part).unwrap();
        xz.extend(e.finish().unwrap());
    }
    let (frames, info) = read(xz);
    assert_eq!((frames.len(), info.damage.is_empty(), info.compression.map(|c| c.name())), (200, true, Some("xz")));
}

/// `n` records of 60 bytes, in a gzip of stored deflate blocks with the NLEN of the block that
/// holds byte `at` broken; returns the capture, the compressed file and where zlib notices.
fn stored_gzip_broken_near(n: u64, at: usize) -> (Vec<u8>, Vec<u8>, usize) {
    let mut data = pcap_header(Le, false, 65535, 1);
    for i in 0..n {
        data.extend(pcap_record(Le, false, 1_000_000_000 + i, &frame(i as u8), 60));
    }
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
    e.write_all(&data).unwrap();
    let mut packed = e.finish().unwrap();
    let (mut block, mut out) = (10, 0);
    loop {
        assert_eq!(packed[block] & 0b110, 0, "a stored block");
        let len = u16::from_le_bytes([packed[block + 1], packed[block + 2]]) as usize;
        if out + len > at {
            break;
        }
        out += len;
        block += 5 + len;
    }
    packed[block + 3] ^= 0xff; // NLEN no longer the complement of LEN
    (data, packed, block + 4) // zlib reads LEN and NLEN, then fails: at NLEN's last byte
}

#[test]
fn corrupt_gzip_is_refused_when_nothing_before_it_was_verified() {
    let (_, packed, at) = stored_gzip_broken_near(2000, 70_000);
    let err = read_with(packed, &Options::default()).map(|_| ()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Decompression);
    assert_eq!(
        err.problem,
        format!(
            "corrupt gzip data (Error -3 while decompressing data: invalid stored block lengths), noticed at \
             compressed byte {} in member 1 (from the start of the file); nothing before it was verified, so nothing \
             is analyzed ('gzip -dc' decompresses what it can)",
            thousands(at)
        )
    );
}

#[test]
fn corrupt_gzip_keeps_the_frames_a_mebibyte_before_the_damage() {
    // A member longer than the 1 MiB held back: what is that far before the damage is read,
    // unverified, and the damage says so; the rest held is dropped.
    let (data, packed, at) = stored_gzip_broken_near(30_000, 2_000_000);
    let (frames, info) = read(packed);
    assert!(frames.len() > 10_000 && frames.len() < 30_000, "{}", frames.len());
    assert!(frames.iter().all(|f| f.data == frame((f.no - 1) as u8)));
    let read_bytes = 24 + frames.len() * 76;
    assert!(read_bytes < data.len() - (1 << 20));
    let d = damage(&info);
    assert_eq!(d.len(), 1, "{d:?}");
    let (kind, at_frames, detail) = &d[0];
    assert_eq!((*kind, at_frames.clone()), ("corrupt_compressed", vec![frames.len() as u64 + 1]));
    let head = format!(
        "corrupt gzip data (Error -3 while decompressing data: invalid stored block lengths), noticed at compressed \
         byte {} in member 1 (from the start of the file); nothing after it is read. Frames 1 to {} (the member's \
         first ",
        thousands(at),
        thousands(frames.len())
    );
    assert!(detail.starts_with(&head), "{detail}");
    assert!(detail.contains("were read unverified: gzip checks its data by its CRC-32 at the end of each member"));
}

#[test]
fn the_decompressed_bound_is_met_part_way() {
    let mut bomb = pcap_of(0);
    bomb.resize(8 << 20, 0);
    let mut r =
        Reader::from_bytes(gzip(&bomb), &Options { max_decompressed: 1_000_000, ..Options::default() }).unwrap();
    let err = loop {
        match r.next_frame() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("the bound was not met"),
            Err(e) => break e,
        }
    };
    assert_eq!(
        (err.kind, err.problem.as_str()),
        (ErrorKind::Decompression, "decompresses to more than 1,000,000 bytes; refusing (raise --max-decompressed)")
    );
}

#[test]
fn expansion_bound() {
    // A pcap header and zeros: empty records, 1,000-fold and more once compressed.
    let mut data = pcap_of(0);
    data.resize(24 + (40 << 20), 0);
    let packed = gzip(&data);
    let err = read_with(packed.clone(), &Options::default()).map(|_| ()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Decompression);
    assert!(err.problem.starts_with("expands ") && err.problem.contains("-fold ("), "{}", err.problem);
    assert!(err.problem.ends_with(
        "compressed bytes), beyond --max-expansion 1,000; refusing (a decompression bomb? raise --max-expansion, or 0 \
         for no bound)"
    ));
    let (frames, info) = read_with(packed, &Options { max_expansion: 0.0, ..Options::default() }).unwrap();
    assert_eq!((frames.len() as u64, info.damage.is_empty()), ((40 << 20) / 16, true));
}
