//! Internet checksums (RFC 1071) as sums of 16-bit words modulo 0xFFFF: a ones'-complement sum
//! is congruent to the number its bytes spell modulo 2^16 - 1, which is how decode.py computes it
//! (`int.from_bytes(...) % 0xFFFF`). A valid header or segment sums to 0.

use super::packet::{Addr, Cksum};

/// The big-endian 16-bit words of `b` summed (an odd last byte is the high byte of a word),
/// not yet reduced.
pub(crate) fn sum_words(b: &[u8]) -> u64 {
    let mut acc: u64 = 0;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        // 2^32 = 1 (mod 0xFFFF): the two halves sum as their 16-bit words do.
        acc += (w >> 32) + (w & 0xFFFF_FFFF);
    }
    let rest = chunks.remainder();
    let mut pairs = rest.chunks_exact(2);
    for p in &mut pairs {
        acc += u64::from(u16::from_be_bytes([p[0], p[1]]));
    }
    if let [last] = pairs.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// The verdict on a TCP/UDP checksum `field` over `seg` given its pseudo-header sum
/// (`decode._verdict`). A field holding just the folded pseudo-header sum, or 0, is partial:
/// Linux leaves such a field for an offloading NIC or loopback (CHECKSUM_PARTIAL). With
/// `trust_partial` a partial field is OFFLOADED without summing the segment.
pub(crate) fn verdict(seg: &[u8], pseudo: u64, field: u16, trust_partial: bool) -> Cksum {
    let partial = u64::from(field) % 0xFFFF == pseudo % 0xFFFF || field == 0;
    if partial && trust_partial {
        return Cksum::Offloaded;
    }
    if (sum_words(seg) + pseudo) % 0xFFFF == 0 {
        Cksum::Good
    } else if partial {
        Cksum::Offloaded
    } else {
        Cksum::Bad
    }
}

/// `decode._check`: the pseudo-header of (src, dst, proto, the segment's length), then the verdict.
pub(crate) fn check(seg: &[u8], src: &Addr, dst: &Addr, proto: u8, field: u16, trust_partial: bool) -> Cksum {
    let pseudo = src.sum() + dst.sum() + u64::from(proto) + seg.len() as u64;
    verdict(seg, pseudo, field, trust_partial)
}

/// Whether an IPv4 header fails its checksum (sums to nonzero modulo 0xFFFF).
pub(crate) fn header_bad(header: &[u8]) -> bool {
    sum_words(header) % 0xFFFF != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_like_python_int_mod() {
        // int.from_bytes(b, "big") % 0xFFFF, with an odd length shifted left by 8 as decode.py does.
        let b: Vec<u8> = (0u8..=200).map(|i| i.wrapping_mul(37)).collect();
        for n in 0..b.len() {
            let s = &b[..n];
            let mut big: u128 = 0;
            for &x in s {
                big = (big * 256 + u128::from(x)) % 0xFFFF;
            }
            if n % 2 == 1 {
                big = (big * 256) % 0xFFFF;
            }
            assert_eq!(sum_words(s) % 0xFFFF, big as u64, "length {n}");
        }
    }

    #[test]
    fn verdicts() {
        let src = Addr::V4([10, 0, 0, 1]);
        let dst = Addr::V4([10, 0, 0, 2]);
        // A UDP header with its checksum field at 6..8, then 3 bytes of payload.
        let mut seg = vec![0x30, 0x39, 0x00, 0x35, 0x00, 0x0B, 0, 0, 1, 2, 3];
        let pseudo = src.sum() + dst.sum() + 17 + seg.len() as u64;
        let sum = (sum_words(&seg) + pseudo) % 0xFFFF;
        let good = 0xFFFF - sum as u16;
        seg[6..8].copy_from_slice(&good.to_be_bytes());
        assert_eq!(check(&seg, &src, &dst, 17, good, false), Cksum::Good);
        seg[10] ^= 1;
        assert_eq!(check(&seg, &src, &dst, 17, good, false), Cksum::Bad);
        let partial = (pseudo % 0xFFFF) as u16;
        seg[6..8].copy_from_slice(&partial.to_be_bytes());
        assert_eq!(check(&seg, &src, &dst, 17, partial, false), Cksum::Offloaded);
        assert_eq!(check(&seg, &src, &dst, 17, partial, true), Cksum::Offloaded);
        assert_eq!(check(&seg, &src, &dst, 17, 0, true), Cksum::Offloaded);
    }
}
