//! Bounded IP fragment reassembly keyed by (version, src, dst, protocol, id): `decode._Frags`,
//! with its eviction order (the oldest datagram started goes first) and its bounds.

use std::collections::{BTreeMap, HashMap};

/// Datagrams pending at once.
pub const MAX_DATAGRAMS: usize = 1024;
/// The largest datagram reassembled (65,535 bytes and a fragment header).
pub const MAX_BYTES: usize = 65535 + 8;

/// (version, src, dst, protocol, id); IPv4 addresses are zero-padded to 16 bytes.
pub(crate) type Key = (u8, [u8; 16], [u8; 16], u8, u32);

struct Entry {
    order: u64,
    parts: BTreeMap<usize, Vec<u8>>,
    total: Option<usize>,
}

#[derive(Default)]
pub(crate) struct Frags {
    pending: HashMap<Key, Entry>,
    /// Insertion order (Python's dict order): order number -> key.
    order: BTreeMap<u64, Key>,
    next: u64,
}

impl Frags {
    fn remove(&mut self, key: &Key) {
        if let Some(e) = self.pending.remove(key) {
            self.order.remove(&e.order);
        }
    }

    /// Adds a fragment; the datagram when this one completes it.
    pub(crate) fn add(&mut self, key: Key, offset: usize, more: bool, data: &[u8]) -> Option<Vec<u8>> {
        if !self.pending.contains_key(&key) {
            if self.pending.len() >= MAX_DATAGRAMS {
                if let Some((_, oldest)) = self.order.pop_first() {
                    self.pending.remove(&oldest);
                }
            }
            let order = self.next;
            self.next += 1;
            self.order.insert(order, key);
            self.pending.insert(key, Entry { order, parts: BTreeMap::new(), total: None });
        }
        if offset + data.len() > MAX_BYTES {
            self.remove(&key);
            return None;
        }
        let entry = self.pending.get_mut(&key)?;
        entry.parts.insert(offset, data.to_vec());
        if !more {
            entry.total = Some(offset + data.len());
        }
        let total = entry.total?;
        let mut have = 0;
        for (&off, piece) in &entry.parts {
            if off > have {
                return None;
            }
            have = have.max(off + piece.len());
        }
        if have < total {
            return None;
        }
        // Later pieces overwrite earlier ones where they overlap, as decode.py's bytearray does.
        let mut buf = vec![0u8; have];
        for (&off, piece) in &entry.parts {
            buf[off..off + piece.len()].copy_from_slice(piece);
        }
        buf.truncate(total);
        self.remove(&key);
        Some(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u32) -> Key {
        (4, [0; 16], [1; 16], 17, id)
    }

    #[test]
    fn in_and_out_of_order() {
        let mut f = Frags::default();
        assert_eq!(f.add(key(1), 8, false, b"world!!!"), None);
        assert_eq!(f.add(key(1), 0, true, b"hello, w"), Some(b"hello, wworld!!!".to_vec()));
        assert!(f.pending.is_empty());
        // A hole keeps it pending.
        assert_eq!(f.add(key(2), 0, true, b"abcdefgh"), None);
        assert_eq!(f.add(key(2), 16, false, b"x"), None);
        assert_eq!(f.add(key(2), 8, true, b"ABCDEFGH"), Some(b"abcdefghABCDEFGHx".to_vec()));
    }

    #[test]
    fn overlap_and_beyond_total() {
        let mut f = Frags::default();
        assert_eq!(f.add(key(3), 0, true, b"aaaaaaaa"), None);
        assert_eq!(f.add(key(3), 8, true, b"zzzzzzzz"), None);
        // The last fragment ends at 12: pieces overwrite in offset order, then the datagram is cut there.
        assert_eq!(f.add(key(3), 4, false, b"bbbbbbbb"), Some(b"aaaabbbbzzzz".to_vec()));
    }

    #[test]
    fn bounds() {
        let mut f = Frags::default();
        assert_eq!(f.add(key(4), MAX_BYTES - 4, false, b"12345"), None);
        assert!(f.pending.is_empty());
        for id in 0..(MAX_DATAGRAMS as u32 + 10) {
            f.add(key(100 + id), 0, true, b"x");
        }
        assert_eq!(f.pending.len(), MAX_DATAGRAMS);
        assert!(!f.pending.contains_key(&key(100)));
        assert!(f.pending.contains_key(&key(110)));
    }
}
