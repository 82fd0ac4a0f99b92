//! gzip, bzip2 and xz input, decompressed as a bounded stream.
//!
//! The Python reader (`reader._BoundedStream`) drives CPython's zlib, bz2 and lzma decompressor
//! objects itself, under an `io.BufferedReader` of 1 MiB, so that a stream cut short or corrupt
//! yields what decompressed before the damage and then ends, with a damage text that says how many
//! bytes came out. Where a damaged stream ends depends on the calls: how much compressed input
//! each call was given (8 KiB pieces), how much output it could return (what the buffered reader
//! asked for), and when CPython's decompressor loop stops. This module makes the same calls in
//! the same order, so the bytes and the texts are the same:
//!
//! * [`Zlib`], [`Bz2`], [`Xz`]: CPython's `decompress(data, max_length)` loops, with their
//!   `eof`, `needs_input`, `unconsumed_tail` and `unused_data`;
//! * [`Bounded`]: `_BoundedStream.readinto`, with the bound and concatenated members;
//! * [`Buffered`]: `io.BufferedReader.read(n)` over it (`Modules/_io/bufferedio.c`).
//!
//! The decompressors are zlib-rs and libbz2-rs (Rust ports of zlib and libbzip2) and liblzma
//! itself: the libraries CPython's modules wrap, so error points and messages agree.

use std::io::Read;

use super::damage::thousands;

/// Compressed bytes read from the file at a time (`_IN_CHUNK`).
const IN_CHUNK: usize = 64 * 1024;
/// Compressed bytes given to one decompressor call (`_FEED`).
const FEED: usize = 8192;
/// The buffered reader's buffer (`_CHUNK`, the `io.BufferedReader` buffer size).
pub(crate) const BUFFER_SIZE: usize = 1 << 20;

/// A compression format, recognised by its magic number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Bzip2,
    Xz,
}

impl Compression {
    /// Checked in this order; the magics are disjoint.
    pub const ALL: [Compression; 3] = [Compression::Gzip, Compression::Bzip2, Compression::Xz];

    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
        }
    }

    pub fn magic(self) -> &'static [u8] {
        match self {
            Compression::Gzip => b"\x1f\x8b",
            Compression::Bzip2 => b"BZh",
            Compression::Xz => b"\xfd7zXZ\x00",
        }
    }

    /// The format whose magic `head` starts with.
    pub fn detect(head: &[u8]) -> Option<Compression> {
        Compression::ALL.into_iter().find(|c| head.starts_with(c.magic()))
    }
}

/// Why a call failed: the output it made before the damage (zlib only: the Python reader replays
/// a failed zlib call byte by byte and keeps that output), and the Python exception's text.
struct Failure {
    salvaged: Vec<u8>,
    message: String,
}

/// CPython's `zlib.decompressobj(16 + MAX_WBITS)`.
struct Zlib {
    dec: flate2::Decompress,
    eof: bool,
    unconsumed_tail: Vec<u8>,
    unused_data: Vec<u8>,
}

impl Zlib {
    fn new() -> Self {
        Zlib { dec: flate2::Decompress::new_gzip(15), eof: false, unconsumed_tail: Vec::new(), unused_data: Vec::new() }
    }

    /// `decompress(data, max_length)`. CPython's loop calls inflate until it leaves output space
    /// unused or the output reaches `max_length`; one call over the whole space does the same.
    fn decompress(&mut self, data: &[u8], max_length: usize, out: &mut [u8]) -> Result<usize, Failure> {
        let (in0, out0) = (self.dec.total_in(), self.dec.total_out());
        let result = self.dec.decompress(data, &mut out[..max_length], flate2::FlushDecompress::Sync);
        let consumed = (self.dec.total_in() - in0) as usize;
        let produced = (self.dec.total_out() - out0) as usize;
        match result {
            Err(err) => {
                // CPython's zlib_error(): "Error %d %s: %.200s"; a corrupt stream is Z_DATA_ERROR.
                let msg = err.message().unwrap_or("invalid input data");
                Err(Failure {
                    salvaged: out[..produced].to_vec(),
                    message: format!("Error -3 while decompressing data: {msg}"),
                })
            }
            Ok(flate2::Status::StreamEnd) => {
                self.eof = true;
                self.unused_data = data[consumed..].to_vec();
                self.unconsumed_tail.clear();
                Ok(produced)
            }
            Ok(_) => {
                self.unconsumed_tail = data[consumed..].to_vec();
                Ok(produced)
            }
        }
    }
}

/// The sizes of CPython's `_BlocksOutputBuffer` blocks (`pycore_blocks_output_buffer.h`). Only
/// bz2's loop can tell them apart: it stops when the input is used up, even with a full block.
const BLOCK_SIZES: [usize; 17] = [
    32 << 10,
    64 << 10,
    256 << 10,
    1 << 20,
    4 << 20,
    8 << 20,
    16 << 20,
    16 << 20,
    32 << 20,
    32 << 20,
    32 << 20,
    32 << 20,
    64 << 20,
    64 << 20,
    128 << 20,
    128 << 20,
    256 << 20,
];

/// CPython's `bz2.BZ2Decompressor()`.
struct Bz2 {
    dec: bzip2::Decompress,
    eof: bool,
    needs_input: bool,
    pending: Vec<u8>,
    unused_data: Vec<u8>,
}

impl Bz2 {
    fn new() -> Self {
        Bz2 {
            dec: bzip2::Decompress::new(false),
            eof: false,
            needs_input: true,
            pending: Vec::new(),
            unused_data: Vec::new(),
        }
    }

    /// `decompress(data, max_length)`: `decompress_buf` of `_bz2module.c`, block by block.
    fn decompress(&mut self, data: &[u8], max_length: usize, out: &mut [u8]) -> Result<usize, Failure> {
        self.pending.extend_from_slice(data);
        let mut blocks = 1;
        let mut allocated = max_length.min(BLOCK_SIZES[0]);
        let mut produced = 0usize;
        let mut used = 0usize;
        loop {
            let (in0, out0) = (self.dec.total_in(), self.dec.total_out());
            let result = self.dec.decompress(&self.pending[used..], &mut out[produced..allocated]);
            used += (self.dec.total_in() - in0) as usize;
            produced += (self.dec.total_out() - out0) as usize;
            let status = match result {
                Ok(status) => status,
                Err(err) => {
                    let message = match err {
                        bzip2::Error::Data | bzip2::Error::DataMagic => "Invalid data stream",
                        bzip2::Error::Param => "Internal error - invalid parameters passed to libbzip2",
                        bzip2::Error::Sequence => "Internal error - Invalid sequence of commands sent to libbzip2",
                    };
                    self.pending.clear();
                    return Err(Failure { salvaged: Vec::new(), message: message.to_string() });
                }
            };
            if status == bzip2::Status::StreamEnd {
                self.eof = true;
                break;
            } else if used == self.pending.len() {
                break;
            } else if produced == allocated {
                if produced == max_length {
                    break;
                }
                let size = BLOCK_SIZES[blocks.min(BLOCK_SIZES.len() - 1)].min(max_length - allocated);
                blocks += 1;
                allocated += size;
            }
        }
        if self.eof {
            self.needs_input = false;
            self.unused_data = self.pending[used..].to_vec();
            self.pending.clear();
        } else if used == self.pending.len() {
            self.pending.clear();
            self.needs_input = true;
        } else {
            self.needs_input = false;
            self.pending.drain(..used);
        }
        Ok(produced)
    }
}

/// CPython's `lzma.LZMADecompressor(format=FORMAT_XZ)`.
struct Xz {
    dec: liblzma::stream::Stream,
    eof: bool,
    needs_input: bool,
    pending: Vec<u8>,
    unused_data: Vec<u8>,
}

impl Xz {
    fn new() -> Result<Self, Failure> {
        let flags = liblzma::stream::TELL_ANY_CHECK | liblzma::stream::TELL_NO_CHECK;
        let dec = liblzma::stream::Stream::new_stream_decoder(u64::MAX, flags)
            .map_err(|e| Failure { salvaged: Vec::new(), message: xz_message(&e).to_string() })?;
        Ok(Xz { dec, eof: false, needs_input: true, pending: Vec::new(), unused_data: Vec::new() })
    }

    /// `decompress(data, max_length)`: `decompress_buf` of `_lzmamodule.c`. Its loop grows the
    /// output while a block is full, whatever the input: one call over the whole space is the same.
    fn decompress(&mut self, data: &[u8], max_length: usize, out: &mut [u8]) -> Result<usize, Failure> {
        use liblzma::stream::{Action, Error, Status};
        self.pending.extend_from_slice(data);
        let mut produced = 0usize;
        let mut used = 0usize;
        loop {
            let (in0, out0) = (self.dec.total_in(), self.dec.total_out());
            let result = self.dec.process(&self.pending[used..], &mut out[produced..max_length], Action::Run);
            used += (self.dec.total_in() - in0) as usize;
            produced += (self.dec.total_out() - out0) as usize;
            let failed = |message: &str| Failure { salvaged: Vec::new(), message: message.to_string() };
            match result {
                Ok(Status::StreamEnd) => {
                    self.eof = true;
                    break;
                }
                // LZMA_BUF_ERROR with the input used up and room for output "wasn't a real error".
                Ok(Status::MemNeeded) if !(used == self.pending.len() && produced < max_length) => {
                    self.pending.clear();
                    return Err(failed("Insufficient buffer space"));
                }
                Ok(_) | Err(Error::NoCheck) => {}
                Err(err) => {
                    self.pending.clear();
                    return Err(failed(xz_message(&err)));
                }
            }
            if produced == max_length || used == self.pending.len() {
                break;
            }
        }
        if self.eof {
            self.needs_input = false;
            self.unused_data = self.pending[used..].to_vec();
            self.pending.clear();
        } else if used == self.pending.len() {
            self.pending.clear();
            // Input used up with the output full: liblzma may hold more, try without input first.
            self.needs_input = produced < max_length;
        } else {
            self.needs_input = false;
            self.pending.drain(..used);
        }
        Ok(produced)
    }
}

/// `catch_lzma_error()` of `_lzmamodule.c`.
fn xz_message(err: &liblzma::stream::Error) -> &'static str {
    use liblzma::stream::Error;
    match err {
        Error::Data => "Corrupt input data",
        Error::Format => "Input format not supported by decoder",
        Error::Options => "Invalid or unsupported options",
        Error::MemLimit => "Memory usage limit exceeded",
        Error::UnsupportedCheck => "Unsupported integrity check",
        Error::Mem => "Cannot allocate memory",
        Error::Program => "Internal error",
        _ => "Unrecognized error from liblzma",
    }
}

enum Decoder {
    Gzip(Zlib),
    Bzip2(Bz2),
    Xz(Xz),
}

impl Decoder {
    fn new(kind: Compression) -> Result<Decoder, Failure> {
        Ok(match kind {
            Compression::Gzip => Decoder::Gzip(Zlib::new()),
            Compression::Bzip2 => Decoder::Bzip2(Bz2::new()),
            Compression::Xz => Decoder::Xz(Xz::new()?),
        })
    }

    fn eof(&self) -> bool {
        match self {
            Decoder::Gzip(d) => d.eof,
            Decoder::Bzip2(d) => d.eof,
            Decoder::Xz(d) => d.eof,
        }
    }

    fn unused_data(&mut self) -> Vec<u8> {
        match self {
            Decoder::Gzip(d) => std::mem::take(&mut d.unused_data),
            Decoder::Bzip2(d) => std::mem::take(&mut d.unused_data),
            Decoder::Xz(d) => std::mem::take(&mut d.unused_data),
        }
    }
}

/// A read past the bound (`DecompressionError`), or a read error of the compressed file.
#[derive(Debug)]
pub(crate) enum StreamError {
    /// The problem text of the `DecompressionError`.
    Limit(String),
    Io(std::io::Error),
}

/// `_BoundedStream`: output never more per call than asked for, never more in all than `limit`.
pub(crate) struct Bounded {
    raw: Box<dyn Read + Send>,
    kind: Compression,
    limit: u64,
    dec: Option<Decoder>,
    pending: Vec<u8>,
    pos: usize,
    ready: Vec<u8>,
    ready_at: usize,
    done: bool,
    produced: u64,
    scratch: Vec<u8>,
    /// Why the stream ended before its end-of-stream marker, or None.
    pub(crate) error: Option<String>,
}

impl Bounded {
    pub(crate) fn new(raw: Box<dyn Read + Send>, kind: Compression, limit: u64) -> Self {
        let mut me = Bounded {
            raw,
            kind,
            limit,
            dec: None,
            pending: Vec::new(),
            pos: 0,
            ready: Vec::new(),
            ready_at: 0,
            done: false,
            produced: 0,
            scratch: Vec::new(),
            error: None,
        };
        match Decoder::new(kind) {
            Ok(dec) => me.dec = Some(dec),
            Err(f) => me.fail(&f.message),
        }
        me
    }

    fn fail(&mut self, message: &str) {
        let at = self.produced + (self.ready.len() - self.ready_at) as u64;
        self.error = Some(format!("corrupt {} data after {} bytes ({message})", self.kind.name(), thousands(at)));
        self.done = true;
    }

    /// A read error of the compressed file: the Python reader catches the OSError as corruption.
    fn read_failed(&mut self, e: &std::io::Error) -> Option<()> {
        let text = match e.raw_os_error() {
            Some(code) => format!("[Errno {code}] {}", super::error::strerror(e)),
            None => e.to_string(),
        };
        self.fail(&text);
        Some(())
    }

    /// `readinto(b)` with `len(b) == want`: appends up to `want` bytes to `out`; 0 at the end.
    pub(crate) fn readinto(&mut self, want: usize, out: &mut Vec<u8>) -> Result<usize, StreamError> {
        while self.ready_at == self.ready.len() && !self.done && want > 0 {
            if self.step(want)?.is_none() {
                self.done = true;
                break;
            }
        }
        let n = want.min(self.ready.len() - self.ready_at);
        if n == 0 {
            return Ok(0);
        }
        out.extend_from_slice(&self.ready[self.ready_at..self.ready_at + n]);
        self.ready_at += n;
        self.produced += n as u64;
        if self.produced > self.limit {
            return Err(StreamError::Limit(format!(
                "decompresses to more than {} bytes; refusing (raise --max-decompressed)",
                thousands(self.limit)
            )));
        }
        Ok(n)
    }

    /// The next slice of compressed input; None at its end.
    fn input(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        if self.pos >= self.pending.len() {
            self.pending = read_up_to(&mut *self.raw, IN_CHUNK)?;
            self.pos = 0;
            if self.pending.is_empty() {
                return Ok(None);
            }
        }
        let end = (self.pos + FEED).min(self.pending.len());
        let piece = self.pending[self.pos..end].to_vec();
        self.pos += FEED;
        Ok(Some(piece))
    }

    /// `_step`: output into `ready` (possibly none yet); None at the end of the input.
    fn step(&mut self, want: usize) -> Result<Option<()>, StreamError> {
        let Some(dec) = self.dec.as_mut() else { return Ok(None) };
        let feed: Vec<u8>;
        if dec.eof() {
            let mut rest = dec.unused_data();
            let magic = self.kind.magic();
            while rest.len() < magic.len() {
                match self.input() {
                    Ok(Some(more)) => rest.extend_from_slice(&more),
                    Ok(None) => break,
                    Err(e) => return Ok(self.read_failed(&e)),
                }
            }
            if !rest.starts_with(magic) {
                return Ok(None); // the end, or padding after the last member: ignored, as gzip -d does
            }
            match Decoder::new(self.kind) {
                Ok(d) => self.dec = Some(d),
                Err(f) => {
                    self.fail(&f.message);
                    return Ok(Some(()));
                }
            }
            feed = rest;
        } else {
            let needs_input = match dec {
                Decoder::Gzip(z) => z.unconsumed_tail.is_empty(),
                Decoder::Bzip2(b) => b.needs_input,
                Decoder::Xz(x) => x.needs_input,
            };
            if needs_input {
                match self.input() {
                    Err(e) => return Ok(self.read_failed(&e)),
                    Ok(Some(more)) => feed = more,
                    Ok(None) => {
                        self.error = Some(format!(
                            "{} stream ends early, after {} bytes (cut short?)",
                            self.kind.name(),
                            thousands(self.produced)
                        ));
                        return Ok(None);
                    }
                }
            } else {
                feed = Vec::new();
            }
        }
        if self.scratch.len() < want {
            self.scratch.resize(want, 0); // zeroed once; each call writes over it
        }
        let out = &mut self.scratch[..];
        let result = match self.dec.as_mut().expect("decoder") {
            Decoder::Gzip(z) => {
                let mut data = std::mem::take(&mut z.unconsumed_tail);
                data.extend_from_slice(&feed);
                z.decompress(&data, want, out)
            }
            Decoder::Bzip2(b) => b.decompress(&feed, want, out),
            Decoder::Xz(x) => x.decompress(&feed, want, out),
        };
        self.ready_at = 0;
        match result {
            Ok(n) => {
                self.ready.clear();
                self.ready.extend_from_slice(&self.scratch[..n]);
            }
            Err(failure) => {
                self.ready = failure.salvaged;
                self.fail(&failure.message);
            }
        }
        Ok(Some(()))
    }
}

/// Reads until `n` bytes or the end, as a Python file object's `read(n)`.
pub(crate) fn read_up_to(r: &mut (dyn Read + Send), n: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(n.min(IN_CHUNK));
    let got = r.take(n as u64).read_to_end(&mut out)?;
    debug_assert_eq!(got, out.len());
    Ok(out)
}

/// `io.BufferedReader(bounded, buffer_size=1 MiB)`: which sizes its `read(n)` asks of the raw
/// stream decides how much output each decompressor call may return.
pub(crate) struct Buffered {
    pub(crate) raw: Bounded,
    /// The read buffer's valid bytes (`buffer[0:read_end]`); `valid` false after a reset.
    buf: Vec<u8>,
    pos: usize,
    valid: bool,
}

impl Buffered {
    pub(crate) fn new(raw: Bounded) -> Self {
        Buffered { raw, buf: Vec::new(), pos: 0, valid: false }
    }

    fn readahead(&self) -> usize {
        if self.valid {
            self.buf.len() - self.pos
        } else {
            0
        }
    }

    /// `read(n)` (`_bufferedreader_read_generic`): appends `n` bytes to `out`, fewer only at
    /// the end of the stream.
    pub(crate) fn read(&mut self, n: usize, out: &mut Vec<u8>) -> Result<usize, StreamError> {
        let current = self.readahead();
        if n <= current {
            out.extend_from_slice(&self.buf[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        let start_len = out.len();
        if current > 0 {
            out.extend_from_slice(&self.buf[self.pos..]);
        }
        let mut remaining = n - current;
        self.valid = false; // _bufferedreader_reset_buf
        loop {
            let r = remaining & !(BUFFER_SIZE - 1); // MINUS_LAST_BLOCK: whole blocks straight to the caller
            if r == 0 {
                break;
            }
            let got = self.raw.readinto(r, out)?;
            if got == 0 {
                return Ok(out.len() - start_len);
            }
            remaining -= got;
        }
        self.buf.clear();
        self.pos = 0;
        self.valid = true;
        while remaining > 0 && self.buf.len() < BUFFER_SIZE {
            // _bufferedreader_fill_buffer: the rest of the buffer from the raw stream
            let room = BUFFER_SIZE - self.buf.len();
            let got = self.raw.readinto(room, &mut self.buf)?;
            if got == 0 {
                return Ok(out.len() - start_len);
            }
            let take = remaining.min(got);
            out.extend_from_slice(&self.buf[self.pos..self.pos + take]);
            self.pos += take;
            remaining -= take;
        }
        Ok(out.len() - start_len)
    }
}
