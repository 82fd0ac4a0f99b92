//! Damage: what went wrong reading a capture, counted by kind, with the first frame numbers of
//! each and the detail text of the first occurrence (the JSON `capture.damage`).

use std::collections::BTreeMap;

/// Frames listed per damage kind; the count goes on beyond it.
pub const DAMAGE_FRAMES_KEPT: usize = 200;

/// The damage kinds the reader records. The names are public (JSON `capture.damage[].kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DamageKind {
    /// The file ends inside a record header, a record body or a pcapng block.
    TruncatedRecord,
    /// A frame shorter on disk than on the wire (`caplen < orig_len`): cut by the snapshot length.
    SnaplenCut,
    /// A frame longer than the snaplen its file or interface declares.
    CaplenOverSnaplen,
    /// A pcap record claims more than `MAX_CAPLEN` captured bytes: the rest is unreadable.
    CaplenInsane,
    /// A pcapng block with an impossible length, trailer, version or field layout.
    BadBlock,
    /// A packet names an interface its section never described.
    UnknownInterface,
    /// More interface descriptions than `MAX_INTERFACES`; the rest are ignored.
    TooManyInterfaces,
    /// A frame older than the one before it.
    TimeBackwards,
    /// A timestamp outside 1970 .. 2262 (int64 nanoseconds), clamped.
    TimeOutOfRange,
    /// A compressed stream that ends early, or a read error.
    TruncatedFile,
    /// Compressed data its decompressor rejects: where that was noticed, and what is unverified.
    CorruptCompressed,
}

impl DamageKind {
    /// Every kind, in the order of their names.
    pub const ALL: [DamageKind; 11] = [
        DamageKind::BadBlock,
        DamageKind::CaplenInsane,
        DamageKind::CaplenOverSnaplen,
        DamageKind::CorruptCompressed,
        DamageKind::SnaplenCut,
        DamageKind::TimeBackwards,
        DamageKind::TimeOutOfRange,
        DamageKind::TooManyInterfaces,
        DamageKind::TruncatedFile,
        DamageKind::TruncatedRecord,
        DamageKind::UnknownInterface,
    ];

    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            DamageKind::TruncatedRecord => "truncated_record",
            DamageKind::SnaplenCut => "snaplen_cut",
            DamageKind::CaplenOverSnaplen => "caplen_over_snaplen",
            DamageKind::CaplenInsane => "caplen_insane",
            DamageKind::BadBlock => "bad_block",
            DamageKind::UnknownInterface => "unknown_interface",
            DamageKind::TooManyInterfaces => "too_many_interfaces",
            DamageKind::TimeBackwards => "time_backwards",
            DamageKind::TimeOutOfRange => "time_out_of_range",
            DamageKind::TruncatedFile => "truncated_file",
            DamageKind::CorruptCompressed => "corrupt_compressed",
        }
    }
}

/// One kind's record: how often, the first frames, and the first occurrence's detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamageEntry {
    pub kind: &'static str,
    pub count: u64,
    pub frames: Vec<u64>,
    pub detail: String,
}

/// Damage by kind name, kept sorted by name (the JSON order).
#[derive(Debug, Default, Clone)]
pub struct DamageLog {
    kinds: BTreeMap<&'static str, DamageEntry>,
}

impl DamageLog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records damage of `kind` at `frame`; the detail is kept from the first occurrence only.
    pub fn add(&mut self, kind: DamageKind, frame: u64, detail: impl FnOnce() -> String) {
        self.add_named(kind.as_str(), frame, detail);
    }

    /// As [`DamageLog::add`], for kinds named elsewhere (the decoder's, later).
    pub fn add_named(&mut self, kind: &'static str, frame: u64, detail: impl FnOnce() -> String) {
        match self.kinds.get_mut(kind) {
            Some(entry) => {
                entry.count += 1;
                if entry.frames.len() < DAMAGE_FRAMES_KEPT {
                    entry.frames.push(frame);
                }
            }
            None => {
                self.kinds.insert(kind, DamageEntry { kind, count: 1, frames: vec![frame], detail: detail() });
            }
        }
    }

    /// Adds `other`'s records (the decoder's damage to the reader's): counts add up, frames are
    /// kept in order up to the bound, the first detail stays.
    pub fn merge(&mut self, other: &DamageLog) {
        for e in other.entries() {
            match self.kinds.get_mut(e.kind) {
                Some(entry) => {
                    entry.count += e.count;
                    let room = DAMAGE_FRAMES_KEPT.saturating_sub(entry.frames.len());
                    entry.frames.extend(e.frames.iter().take(room));
                }
                None => {
                    self.kinds.insert(e.kind, e.clone());
                }
            }
        }
    }

    /// How often damage of the kind named `kind` was recorded.
    pub fn count_named(&self, kind: &str) -> u64 {
        self.kinds.get(kind).map_or(0, |e| e.count)
    }

    /// The record of the kind named `kind`.
    pub fn get_named(&self, kind: &str) -> Option<&DamageEntry> {
        self.kinds.get(kind)
    }

    pub fn count(&self, kind: DamageKind) -> u64 {
        self.kinds.get(kind.as_str()).map_or(0, |e| e.count)
    }

    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// The entries sorted by kind name.
    pub fn entries(&self) -> impl Iterator<Item = &DamageEntry> {
        self.kinds.values()
    }

    pub fn get(&self, kind: DamageKind) -> Option<&DamageEntry> {
        self.kinds.get(kind.as_str())
    }
}

/// `n` with thousands separators, as Python's `f"{n:,}"`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_like_python() {
        for (n, want) in [(0, "0"), (999, "999"), (1000, "1,000"), (262_144, "262,144"), (1_000_000, "1,000,000")] {
            assert_eq!(thousands(n), want);
        }
    }

    #[test]
    fn names_sorted_and_first_detail_kept() {
        let names: Vec<_> = DamageKind::ALL.iter().map(|k| k.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        let mut log = DamageLog::new();
        for i in 0..(DAMAGE_FRAMES_KEPT as u64 + 5) {
            log.add(DamageKind::SnaplenCut, i + 1, || format!("detail {i}"));
        }
        let e = log.get(DamageKind::SnaplenCut).unwrap();
        assert_eq!(e.count, DAMAGE_FRAMES_KEPT as u64 + 5);
        assert_eq!(e.frames.len(), DAMAGE_FRAMES_KEPT);
        assert_eq!(e.detail, "detail 0");
    }
}
