//! pcapsleuth's engine, in pure Rust: it knows nothing of Python (the bindings live in
//! `crates/py`). It holds the capture reader (`capture`) and the decoder (`decode`); tracking
//! and the facts follow (issue 21, `../shared/ARCHITECTURE.md`).
#![forbid(unsafe_code)]

pub mod capture;
pub mod decode;
