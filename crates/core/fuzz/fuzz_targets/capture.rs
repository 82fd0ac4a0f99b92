//! Reader and decoder together on arbitrary capture bytes: every frame read is decoded; nothing
//! panics, and the decoder's damage merges into the reader's.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pcapsleuth_core::capture::{Options, Reader};
use pcapsleuth_core::decode::{DecodeOptions, Decoder, FrameIn};

fuzz_target!(|data: &[u8]| {
    let Ok(mut r) = Reader::from_bytes(data.to_vec(), &Options { max_decompressed: 1 << 20, ..Options::default() })
    else {
        return;
    };
    let mut d = Decoder::new(DecodeOptions::default());
    let mut n = 0u64;
    while let Ok(Some(f)) = r.next_frame() {
        let p = d.decode(&FrameIn::from(&f));
        assert_eq!(p.no, f.number);
        n += 1;
    }
    let mut damage = r.info().damage.clone();
    damage.merge(&d.damage);
    assert!(d.non_ip <= n);
});
