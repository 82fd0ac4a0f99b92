//! The decoder on arbitrary frames: it never panics, in any checksum mode, and keeps the
//! reader's facts. The first byte picks the link type (every one the decoder knows, and one it
//! does not), the rest is the frame, decoded twice by the same decoder (fragment state).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pcapsleuth_core::decode::{DecodeOptions, Decoder, FrameIn};

const LINKTYPES: [i32; 18] = [1, 113, 276, 101, 12, 14, 228, 229, 0, 108, 10, 239, 9, 50, 104, 127, 147, -1];
const MODES: [(bool, bool); 3] = [(false, false), (true, false), (true, true)];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, frame)) = data.split_first() else { return };
    let linktype = LINKTYPES[usize::from(pick) % LINKTYPES.len()];
    for (verify_checksums, trust_partial) in MODES {
        let mut d = Decoder::new(DecodeOptions { verify_checksums, trust_partial });
        for no in 1..=2 {
            let f = FrameIn {
                no,
                ts: 0,
                caplen: frame.len() as u32,
                wirelen: (frame.len() as u32).saturating_add(u32::from(pick >> 4)),
                iface: if linktype < 0 { -1 } else { 0 },
                direction: 0,
                linktype,
                data: frame,
            };
            let p = d.decode(&f);
            assert_eq!((p.no, p.caplen), (no, frame.len() as u32));
            assert!(matches!(p.ip_version, 0 | 4 | 6));
            assert!(p.options.map_or(0, |o| o.as_slice().len()) <= 40);
        }
    }
});
