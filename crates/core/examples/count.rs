//! Reads captures to the end and prints frames, bytes and CPU time: the reader alone.
//!
//!     cargo run --release -p pcapsleuth-core --example count -- bench/data/bench-x1.pcap
use pcapsleuth_core::capture::{Options, Reader};

fn main() {
    for path in std::env::args().skip(1) {
        let start = std::time::Instant::now();
        let mut reader = match Reader::open(&path, &Options::default()) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{e}");
                continue;
            }
        };
        let (mut frames, mut bytes) = (0u64, 0u64);
        loop {
            match reader.next_frame() {
                Ok(Some(f)) => {
                    frames += 1;
                    bytes += f.data.len() as u64;
                }
                Ok(None) => break,
                Err(e) => {
                    eprintln!("{e}");
                    break;
                }
            }
        }
        let damage: Vec<_> = reader.info().damage.entries().map(|e| (e.kind, e.count)).collect();
        println!("{path}: {frames} frames, {bytes} bytes, {:.3} s, damage {damage:?}", start.elapsed().as_secs_f64());
    }
}
