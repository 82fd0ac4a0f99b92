//! A seeded mutation loop over the committed captures, run by `cargo test` on the stable
//! toolchain: every mutant is read to its end without a panic, and what comes out keeps the
//! reader's promises; every frame read is decoded, without a panic either. The coverage-guided run is `cargo fuzz` (fuzz/README.md), on nightly.

use std::path::{Path, PathBuf};

use pcapsleuth_core::capture::{Options, Reader, MAX_BLOCK};
use pcapsleuth_core::decode::{DecodeOptions, Decoder, FrameIn};

/// xorshift64*: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seeds() -> Vec<PathBuf> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut out = Vec::new();
    for dir in ["samples", "tests/malformed", "tests/fuzz_regressions"] {
        let mut stack = vec![repo.join(dir)];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = entry.path();
                if p.is_dir() {
                    stack.push(p);
                } else if [".pcap", ".pcapng", ".cap", ".gz"].iter().any(|e| p.to_string_lossy().ends_with(e)) {
                    out.push(p);
                }
            }
        }
    }
    out.sort();
    out
}

/// Reads `data` to the end; checks the frames and the info agree.
fn check(data: Vec<u8>) {
    let Ok(mut r) = Reader::from_bytes(data, &Options { max_decompressed: 2 << 20, ..Options::default() }) else {
        return;
    };
    let mut last = 0;
    let mut decoder = Decoder::new(DecodeOptions::default());
    loop {
        match r.next_frame() {
            Ok(Some(f)) => {
                let p = decoder.decode(&FrameIn::from(&f));
                assert_eq!((p.no, p.caplen), (f.number, f.caplen));
                assert!(f.number > last, "frame numbers increase");
                last = f.number;
                assert_eq!(f.data.len(), f.caplen as usize);
                assert!(f.caplen <= MAX_BLOCK && f.ts_ns >= 0);
                assert!(f.direction <= 2);
                assert!((f.interface < 0) == (f.link_type < 0));
            }
            Ok(None) => break,
            Err(_) => return, // over the decompression bound
        }
    }
    let info = r.info();
    assert!(info.frames >= last);
    for e in info.damage.entries() {
        assert!(e.count >= e.frames.len() as u64 && !e.frames.is_empty());
        assert!(e.frames.iter().all(|&f| f >= 1 && f <= info.frames + 1), "{e:?}");
    }
    assert!(info.first_ts <= info.last_ts || info.last_ts.is_none());
}

fn mutate(rng: &mut Rng, data: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(8) {
        match rng.below(6) {
            // a byte anywhere, or in the headers where the framing lives
            0 => {
                let at = rng.below(data.len());
                data[at] = rng.next() as u8;
            }
            1 => {
                let at = rng.below(data.len().min(64));
                data[at] = rng.next() as u8;
            }
            // a length field set to an edge value
            2 if data.len() >= 4 => {
                let at = rng.below(data.len().saturating_sub(4)) & !3;
                let v: u32 = [0, 1, 12, 13, 0xFFFF_FFFF, 0x7FFF_FFF0, 262_145, 28][rng.below(8)];
                data[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
            // cut short
            3 => data.truncate(rng.below(data.len()) + 1),
            // a span repeated or removed
            4 => {
                let a = rng.below(data.len());
                let b = (a + rng.below(256)).min(data.len());
                let span = data[a..b].to_vec();
                data.splice(a..a, span);
            }
            _ => {
                let a = rng.below(data.len());
                let b = (a + rng.below(256)).min(data.len());
                data.drain(a..b);
            }
        }
        if data.is_empty() {
            data.push(0);
        }
    }
}

#[test]
fn mutants_of_every_committed_capture_read_without_panic() {
    let seeds = seeds();
    assert!(seeds.len() > 30, "the samples are missing: {}", seeds.len());
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut runs = 0;
    for path in &seeds {
        let original = std::fs::read(path).unwrap();
        // Big captures are cut to their first 64 KiB: the framing, not the bulk, is under test.
        let original = original[..original.len().min(64 << 10)].to_vec();
        check(original.clone());
        for _ in 0..150 {
            let mut data = original.clone();
            mutate(&mut rng, &mut data);
            check(data);
            runs += 1;
        }
    }
    assert!(runs >= 150 * 30);
}
