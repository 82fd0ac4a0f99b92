//! Capture files: pcap and pcapng records, compressed or not. This module knows file formats
//! and nothing about protocols (it imports nothing else of the crate).
//!
//! A port of `pcapsleuth/reader.py`, equal to it frame for frame: the numbers Wireshark shows,
//! integer-nanosecond timestamps, the same damage kinds at the same frames with the same texts,
//! the same errors for unusable input. It reads through a bounded buffer: memory does not grow
//! with the size of the capture.
//!
//! * pcap: both byte orders, microsecond and nanosecond magic, and Kuznetzov's modified pcap
//!   with its 24-byte record headers ([`pcap`]).
//! * pcapng: several sections of either byte order; each Interface Description Block keeps its
//!   own link type, snaplen, `if_tsresol`, `if_tsoffset`, name and description; a function per
//!   block ([`pcapng`]).
//! * gzip, bzip2 and xz input, recognised by magic number and decompressed as a stream with a
//!   bound ([`decompress`]).

pub mod damage;
pub mod decompress;
pub mod error;
pub mod pcap;
pub mod pcapng;
pub mod reader;
pub mod source;

pub use damage::{DamageEntry, DamageKind, DamageLog};
pub use decompress::{Compression, EXPANSION_FLOOR, MAX_EXPANSION};
pub use error::{CaptureError, ErrorKind};
pub use reader::{CaptureInfo, Frame, Interface, Options, Reader, TsResol};
pub use source::{Format, Input};

/// Wireshark refuses records larger than this (WTAP_MAX_PACKET_SIZE_STANDARD); so do we.
pub const MAX_CAPLEN: u32 = 262_144;
/// A pcapng block larger than this is treated as corrupt (Wireshark uses the same order of size).
pub const MAX_BLOCK: u32 = 16 * 1024 * 1024 + 4096;
/// Timestamps are int64 nanoseconds downstream: 1970 .. 2262. A pcap timestamp always fits; a
/// pcapng one (64-bit ticks, `if_tsresol`, a signed `if_tsoffset`) may not.
pub const TS_MAX: i64 = i64::MAX;
/// pcapng comments kept (frame comments, and section comments, each); the rest are only counted.
/// A comment is up to 64 KiB: a crafted file must not turn into gigabytes of strings.
pub const MAX_COMMENTS: usize = 1000;
/// Interfaces kept per section. Further IDBs of a section are damage (`too_many_interfaces`) and
/// the frames naming them `unknown_interface`: each costs far more memory than its 20 bytes on disk.
pub const MAX_INTERFACES: usize = 4096;
/// Interfaces kept across the file, all sections together.
pub const MAX_FILE_INTERFACES: usize = 65_536;
/// The default bound on decompressed bytes (`--max-decompressed`).
pub const DEFAULT_MAX_DECOMPRESSED: u64 = 64 * 1024 * 1024 * 1024;

/// The libpcap name of a link type, as `reader.LINKTYPE_NAMES`.
pub fn linktype_name(linktype: u16) -> std::borrow::Cow<'static, str> {
    let name = match linktype {
        0 => "NULL",
        1 => "EN10MB",
        9 => "PPP",
        10 => "FDDI",
        12 | 14 | 101 => "RAW",
        50 => "PPP_HDLC",
        51 => "PPP_ETHER",
        104 => "C_HDLC",
        105 => "IEEE802_11",
        108 => "LOOP",
        113 => "LINUX_SLL",
        117 => "PFLOG",
        127 => "IEEE802_11_RADIOTAP",
        228 => "IPV4",
        229 => "IPV6",
        239 => "NFLOG",
        276 => "LINUX_SLL2",
        _ => return format!("LINKTYPE_{linktype}").into(),
    };
    name.into()
}
