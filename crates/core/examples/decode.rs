//! Reads and decodes captures, printing frames and CPU time: the reader alone, then reader and
//! decoder (three checksum modes), without any Python.
//!
//!     cargo run --release -p pcapsleuth-core --example decode -- bench/data/bench-x1.pcap
use pcapsleuth_core::capture::{Options, Reader};
use pcapsleuth_core::decode::{DecodeOptions, Decoder, FrameIn};

fn run(path: &str, decode: Option<DecodeOptions>) -> (u64, u64, f64) {
    let start = std::time::Instant::now();
    let Ok(mut reader) = Reader::open(path, &Options::default()) else { return (0, 0, 0.0) };
    let mut decoder = decode.map(Decoder::new);
    let (mut frames, mut tcp) = (0u64, 0u64);
    while let Ok(Some(f)) = reader.next_frame() {
        frames += 1;
        if let Some(d) = decoder.as_mut() {
            tcp += u64::from(d.decode(&FrameIn::from(&f)).proto == Some(6));
        }
    }
    (frames, tcp, start.elapsed().as_secs_f64())
}

fn main() {
    for path in std::env::args().skip(1) {
        let (frames, _, t) = run(&path, None);
        println!("{path}: {frames} frames; reader {t:.3} s");
        for (name, verify_checksums, trust_partial) in
            [("off", false, false), ("verify", true, false), ("trust", true, true)]
        {
            let (_, tcp, t) = run(&path, Some(DecodeOptions { verify_checksums, trust_partial }));
            println!("  reader + decode ({name}): {t:.3} s, {tcp} TCP");
        }
    }
}
