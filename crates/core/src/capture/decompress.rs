//! gzip, bzip2 and xz input, decompressed as a stream with bounds on the total and on the
//! expansion ratio.
//!
//! The Python reader (`reader._BoundedStream`) drives CPython's zlib, bz2 and lzma decompressor
//! objects itself, under an `io.BufferedReader` of 1 MiB. A decompressor notices damage at or
//! after where it is (deflate mostly only at the member's CRC), so output reaches the reader only
//! once verified (its member or stream ended, checks passed) or once 1 MiB more has been
//! decompressed after it without complaint; at a rejection the held bytes are dropped and the
//! damage names the compressed byte where it was noticed. What the reader sees before the damage,
//! and the texts, depend on the calls: 8 KiB of compressed input and 256 KiB of output a call,
//! what the buffered reader asks for, and when CPython's decompressor loops stop. This module
//! makes the same calls in the same order:
//!
//! * [`Zlib`], [`Bz2`], [`Xz`]: CPython's `decompress(data, max_length)` loops, with their
//!   `eof`, `needs_input`, `unconsumed_tail` and `unused_data`;
//! * [`Bounded`]: `_BoundedStream`: held output, the bounds, concatenated members, rejections;
//! * [`Buffered`]: `io.BufferedReader.read(n)` over it (`Modules/_io/bufferedio.c`).
//!
//! The decompressors are zlib-rs and libbz2-rs (Rust ports of zlib and libbzip2) and liblzma
//! itself: the libraries CPython's modules wrap, so error points and messages agree.

use std::collections::VecDeque;
use std::io::Read;

use super::damage::thousands;

/// Compressed bytes read from the file at a time (`_IN_CHUNK`).
const IN_CHUNK: usize = 64 * 1024;
/// Compressed bytes given to one decompressor call (`_FEED`).
const FEED: usize = 8192;
/// The buffered reader's buffer (`_CHUNK`, the `io.BufferedReader` buffer size).
pub(crate) const BUFFER_SIZE: usize = 1 << 20;
/// Output asked of one decompressor call (`_PIECE`).
const PIECE: usize = 1 << 18;
/// Decompressed bytes held back until verified or this far behind the decompressor (`_HOLD`).
const HOLD: usize = 1 << 20;
/// The expansion ratio is judged only after this much output (`EXPANSION_FLOOR`).
pub const EXPANSION_FLOOR: u64 = 16 * 1024 * 1024;
/// The default `--max-expansion` (`MAX_EXPANSION`): decompressed bytes per compressed byte.
pub const MAX_EXPANSION: f64 = 1000.0;

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

    /// Where the format checks its data (`_CHECKED_BY`).
    fn checked_by(self) -> &'static str {
        match self {
            Compression::Gzip => "its CRC-32 at the end of each member",
            Compression::Bzip2 => "a CRC at the end of each block (up to 900 kB) and of the stream",
            Compression::Xz => "a check at the end of each block (one block per stream unless written by xz -T)",
        }
    }

    fn unit(self) -> &'static str {
        if self == Compression::Gzip {
            "member"
        } else {
            "stream"
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

/// Why a call failed: the Python exception's text, and (zlib) the compressed byte of the call's
/// input where the decompressor noticed the damage, counted from the input's start.
struct Failure {
    message: String,
    at: Option<usize>,
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
                // reader.py replays the call byte by byte to find the byte that fails: inflate
                // takes input bytes only as it needs their bits and gives back whole unused
                // ones, so the failing byte is the last one the call took (or the first, when
                // the bits it held already sufficed).
                let msg = err.message().unwrap_or("invalid input data");
                let _ = produced;
                Err(Failure {
                    message: format!("Error -3 while decompressing data: {msg}"),
                    at: Some(consumed.max(1) - 1),
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
                    return Err(Failure { message: message.to_string(), at: None });
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
            .map_err(|e| Failure { message: xz_message(&e).to_string(), at: None })?;
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
            let failed = |message: &str| Failure { message: message.to_string(), at: None };
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

/// A read past a bound (the `DecompressionError` text), or a read error of an uncompressed file.
#[derive(Debug)]
pub(crate) enum StreamError {
    /// The problem text of the `DecompressionError`.
    Limit(String),
    Io(std::io::Error),
}

/// `_BoundedStream`: never more than `limit` bytes in all nor, past [`EXPANSION_FLOOR`], more than
/// `max_expansion` times the compressed bytes read; output held until verified or [`HOLD`] behind.
pub(crate) struct Bounded {
    raw: Box<dyn Read + Send>,
    kind: Compression,
    limit: u64,
    max_expansion: f64,
    dec: Option<Decoder>,
    /// Compressed input read; from `pos` on not yet given.
    pending: Vec<u8>,
    pos: usize,
    /// Output held, oldest first; `off` bytes of the first already returned.
    chunks: VecDeque<Vec<u8>>,
    off: usize,
    held: usize,
    verified: usize,
    done: bool,
    produced: u64,
    /// Compressed bytes handed to the decompressors (the file offset of the next one).
    fed: u64,
    /// Output made by the decompressors (returned, held or dropped).
    made: u64,
    /// The gzip member, or bzip2/xz stream, being read (from 1), its compressed and output offsets.
    pub(crate) member: u64,
    member_at: u64,
    member_out: u64,
    scratch: Vec<u8>,
    /// Why the stream ended before its end-of-stream marker (truncated or corrupt), or None.
    pub(crate) error: Option<String>,
    /// `error` is a decompressor rejecting the data (not the input ending early).
    pub(crate) corrupt: bool,
    /// Corrupt: bytes of the damaged member returned (unverified) before the rejection.
    unverified: u64,
    summary: String,
    dropped: u64,
}

impl Bounded {
    pub(crate) fn new(raw: Box<dyn Read + Send>, kind: Compression, limit: u64, max_expansion: f64) -> Self {
        let mut me = Bounded {
            raw,
            kind,
            limit,
            max_expansion,
            dec: None,
            pending: Vec::new(),
            pos: 0,
            chunks: VecDeque::new(),
            off: 0,
            held: 0,
            verified: 0,
            done: false,
            produced: 0,
            fed: 0,
            made: 0,
            member: 1,
            member_at: 0,
            member_out: 0,
            scratch: Vec::new(),
            error: None,
            corrupt: false,
            unverified: 0,
            summary: String::new(),
            dropped: 0,
        };
        match Decoder::new(kind) {
            Ok(dec) => me.dec = Some(dec),
            Err(f) => me.fail(&f.message, 0),
        }
        me
    }

    fn releasable(&self) -> usize {
        if self.done {
            if self.corrupt {
                self.verified
            } else {
                self.held
            }
        } else {
            self.verified.max(self.held.saturating_sub(HOLD))
        }
    }

    /// `readinto(b)` with `len(b) == want`: appends up to `want` bytes to `out`; 0 at the end.
    pub(crate) fn readinto(&mut self, want: usize, out: &mut Vec<u8>) -> Result<usize, StreamError> {
        while !self.done && self.releasable() < want.min(PIECE) {
            self.produce()?;
        }
        let n = want.min(self.releasable());
        if n == 0 {
            return Ok(0);
        }
        let mut left = n;
        while left > 0 {
            let chunk = &self.chunks[0];
            let take = left.min(chunk.len() - self.off);
            out.extend_from_slice(&chunk[self.off..self.off + take]);
            left -= take;
            self.off += take;
            if self.off == chunk.len() {
                self.chunks.pop_front();
                self.off = 0;
            }
        }
        self.held -= n;
        self.verified = self.verified.saturating_sub(n);
        self.produced += n as u64;
        if self.produced > self.limit {
            return Err(StreamError::Limit(format!(
                "decompresses to more than {} bytes; refusing (raise --max-decompressed)",
                thousands(self.limit)
            )));
        }
        Ok(n)
    }

    /// One decompressor call: its output is held; a member's end verifies all that is held.
    fn produce(&mut self) -> Result<(), StreamError> {
        match self.step(PIECE) {
            Err(failure) => {
                let at = match failure.at {
                    Some(at) => at as u64,
                    None => self.fed,
                };
                self.fail(&failure.message, at);
            }
            Ok(None) => self.done = true,
            Ok(Some(n)) => {
                if n > 0 {
                    self.chunks.push_back(self.scratch[..n].to_vec());
                    self.held += n;
                    self.made += n as u64;
                    if self.max_expansion != 0.0 && self.made > EXPANSION_FLOOR {
                        self.check_expansion()?;
                    }
                }
                if self.dec.as_ref().is_some_and(Decoder::eof) {
                    self.verified = self.held;
                }
            }
        }
        Ok(())
    }

    /// Output made against the compressed bytes it came from: exact for gzip (zlib says what it
    /// has not consumed); for bzip2/xz up to one call's input (8 KiB) too many, never too few.
    fn check_expansion(&self) -> Result<(), StreamError> {
        let tail = match &self.dec {
            Some(Decoder::Gzip(z)) => z.unconsumed_tail.len() as u64,
            _ => 0,
        };
        let used = self.fed.saturating_sub(tail).max(1);
        if self.made as f64 > self.max_expansion * used as f64 {
            return Err(StreamError::Limit(format!(
                "expands {}-fold ({} bytes from the first {} compressed bytes), beyond --max-expansion {}; refusing \
                 (a decompression bomb? raise --max-expansion, or 0 for no bound)",
                format_ratio(self.made as f64 / used as f64),
                thousands(self.made),
                thousands(used),
                python_g(self.max_expansion),
            )));
        }
        Ok(())
    }

    /// The decompressor rejected the data, noticing at compressed byte `at`. What it gave of the
    /// member and holds is dropped.
    fn fail(&mut self, message: &str, at: u64) {
        let dropped = self.held - self.verified;
        let mut kept = Vec::with_capacity(self.verified);
        let mut skip = self.off;
        for chunk in &self.chunks {
            if kept.len() == self.verified {
                break;
            }
            let part = &chunk[skip..];
            skip = 0;
            let take = part.len().min(self.verified - kept.len());
            kept.extend_from_slice(&part[..take]);
        }
        self.chunks.clear();
        self.off = 0;
        self.held = kept.len();
        if !kept.is_empty() {
            self.chunks.push_back(kept);
        }
        self.unverified = self.made - dropped as u64 - self.member_out;
        let kind = self.kind.name();
        let where_ = if self.member == 1 {
            "the start of the file".to_string()
        } else {
            format!("compressed byte {}", thousands(self.member_at))
        };
        self.summary = format!(
            "corrupt {kind} data ({message}), noticed {} compressed byte {} in {} {} (from {where_})",
            if self.kind == Compression::Gzip { "at" } else { "by" },
            thousands(at),
            self.kind.unit(),
            thousands(self.member),
        );
        self.dropped = dropped as u64;
        self.error = Some(self.corrupt_detail(None, true));
        self.corrupt = true;
        self.done = true;
    }

    /// What was rejected, where, and what of the damaged member was read anyway (`frames`: the
    /// first and last frame read from it, when the reader knows them; `analyzed`: false when the
    /// bytes after the reader's last frame were decompressed only to check them).
    pub(crate) fn corrupt_detail(&self, frames: Option<(u64, u64)>, analyzed: bool) -> String {
        let unit = self.kind.unit();
        let read = match frames {
            Some((a, b)) => format!("Frames {} to {}", thousands(a), thousands(b)),
            None => "What was read of it".to_string(),
        };
        let size = if analyzed {
            format!(" (the {unit}'s first {} bytes)", thousands(self.unverified))
        } else {
            String::new()
        };
        let mut fate = String::new();
        if self.unverified > 0 && (frames.is_some() || analyzed) {
            fate = format!(
                "{read}{size} were read unverified: {} checks its data by {}, and damage is noticed at or after \
                 where it is. ",
                self.kind.name(),
                self.kind.checked_by()
            );
        }
        format!(
            "{}; nothing after it is read. {fate}The {} bytes decompressed just before it were held back and are \
             not read",
            self.summary,
            thousands(self.dropped)
        )
    }

    /// The error when nothing of the capture is readable: `error`, or for corrupt data, why none is read.
    pub(crate) fn refusal(&self) -> String {
        if !self.corrupt {
            return self.error.clone().unwrap_or_default();
        }
        format!(
            "{}; nothing before it was verified, so nothing is analyzed ('{} -dc' decompresses what it can)",
            self.summary,
            self.kind.name()
        )
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
        self.fed += piece.len() as u64;
        Ok(Some(piece))
    }

    /// A read error of the compressed file: the Python reader's decompressor loop catches the
    /// OSError as a rejection, at the bytes fed so far.
    fn read_failed(e: &std::io::Error) -> Failure {
        let message = match e.raw_os_error() {
            Some(code) => format!("[Errno {code}] {}", super::error::strerror(e)),
            None => e.to_string(),
        };
        Failure { message, at: None }
    }

    /// `_step`: up to `want` bytes of output into `scratch` (possibly none yet); None at the end
    /// of the input.
    fn step(&mut self, want: usize) -> Result<Option<usize>, Failure> {
        let Some(dec) = self.dec.as_mut() else { return Ok(None) };
        let feed: Vec<u8>;
        if dec.eof() {
            let mut rest = dec.unused_data();
            let magic = self.kind.magic();
            while rest.len() < magic.len() {
                match self.input().map_err(|e| Self::read_failed(&e))? {
                    Some(more) => rest.extend_from_slice(&more),
                    None => break,
                }
            }
            if !rest.starts_with(magic) {
                return Ok(None); // the end, or padding after the last member: ignored, as gzip -d does
            }
            self.dec = Some(Decoder::new(self.kind)?);
            self.member += 1;
            self.member_at = self.fed - rest.len() as u64;
            self.member_out = self.made;
            feed = rest;
        } else {
            let needs_input = match dec {
                Decoder::Gzip(z) => z.unconsumed_tail.is_empty(),
                Decoder::Bzip2(b) => b.needs_input,
                Decoder::Xz(x) => x.needs_input,
            };
            if needs_input {
                match self.input().map_err(|e| Self::read_failed(&e))? {
                    Some(more) => feed = more,
                    None => {
                        self.error = Some(format!(
                            "{} stream ends early, after {} bytes (cut short?); the check at the end of {} {} was \
                             never reached, so what was read of it is unverified",
                            self.kind.name(),
                            thousands(self.made),
                            self.kind.unit(),
                            thousands(self.member)
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
        let fed = self.fed;
        match self.dec.as_mut().expect("decoder") {
            Decoder::Gzip(z) => {
                let mut data = std::mem::take(&mut z.unconsumed_tail);
                data.extend_from_slice(&feed);
                let start = fed - data.len() as u64; // the compressed offset of data[0]
                z.decompress(&data, want, out)
                    .map(Some)
                    .map_err(|f| Failure { at: f.at.map(|i| (start + i as u64) as usize), message: f.message })
            }
            Decoder::Bzip2(b) => b.decompress(&feed, want, out).map(Some),
            Decoder::Xz(x) => x.decompress(&feed, want, out).map(Some),
        }
    }
}

/// `f"{x:,.0f}"`: rounded half to even, as both Python and Rust format floats.
fn format_ratio(x: f64) -> String {
    let digits = format!("{x:.0}");
    match digits.parse::<u64>() {
        Ok(n) => thousands(n),
        Err(_) => digits,
    }
}

/// `f"{x:,g}"`: six significant digits, trailing zeros dropped, thousands separators.
fn python_g(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let exp = x.abs().log10().floor() as i32;
    if !(-4..6).contains(&exp) {
        let s = format!("{:.5e}", x); // like 1.23457e6
        let (mantissa, e) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        let e: i32 = e.parse().unwrap_or(0);
        return format!("{mantissa}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    }
    let decimals = (5 - exp).max(0) as usize;
    let fixed = format!("{x:.decimals$}");
    let fixed = if fixed.contains('.') { fixed.trim_end_matches('0').trim_end_matches('.') } else { &fixed };
    let (int, frac) = fixed.split_once('.').map_or((fixed, None), |(a, b)| (a, Some(b)));
    let (sign, int) = int.strip_prefix('-').map_or(("", int), |i| ("-", i));
    let int = thousands(int.parse().unwrap_or(0));
    match frac {
        Some(f) => format!("{sign}{int}.{f}"),
        None => format!("{sign}{int}"),
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

#[cfg(test)]
mod tests {
    use super::{format_ratio, python_g};

    #[test]
    fn floats_formatted_as_python() {
        // f"{x:,g}" and f"{x:,.0f}" in CPython 3.11
        for (x, g) in [
            (1000.0, "1,000"),
            (0.5, "0.5"),
            (1500.25, "1,500.25"),
            (123456.0, "123,456"),
            (1e6, "1e+06"),
            (1234567.0, "1.23457e+06"),
            (2.0, "2"),
            (0.0001, "0.0001"),
        ] {
            assert_eq!(python_g(x), g, "{x}");
        }
        for (x, f) in [(6138.4, "6,138"), (2.5, "2"), (3.5, "4"), (1029.0, "1,029"), (1234567.6, "1,234,568")] {
            assert_eq!(format_ratio(x), f, "{x}");
        }
    }
}
