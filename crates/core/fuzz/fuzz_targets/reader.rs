//! The capture reader on arbitrary bytes: it never panics, and its frames keep its promises.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pcapsleuth_core::capture::{Options, Reader};

fuzz_target!(|data: &[u8]| {
    // A small bound: a mutated bomb (tests/malformed has two) must cost milliseconds, not seconds.
    let Ok(mut r) = Reader::from_bytes(data.to_vec(), &Options { max_decompressed: 1 << 20, ..Options::default() })
    else {
        return;
    };
    let mut last = 0;
    while let Ok(Some(f)) = r.next_frame() {
        assert!(f.number > last);
        last = f.number;
        assert_eq!(f.data.len(), f.caplen as usize);
        assert!(f.ts_ns >= 0);
    }
    assert!(r.info().frames >= last);
});
