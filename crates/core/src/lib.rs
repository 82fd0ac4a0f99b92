//! pcapsleuth's engine, in pure Rust: it knows nothing of Python (the bindings live in
//! `crates/py`). For now it holds the capture reader; decoding, tracking and the facts follow
//! (issue 21, `../shared/ARCHITECTURE.md`).
#![forbid(unsafe_code)]

pub mod capture;
