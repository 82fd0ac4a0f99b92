//! The record reader: one [`Frame`] per call, numbered as Wireshark numbers them, and the facts
//! about the capture ([`CaptureInfo`]) once the frames are read.

use std::collections::BTreeMap;

use super::damage::{DamageKind, DamageLog};
use super::decompress::MAX_EXPANSION;
use super::decompress::{Compression, StreamError};
use super::error::{strerror, CaptureError, ErrorKind};
use super::pcap::PcapState;
use super::pcapng::PcapngState;
use super::source::{Format, Input, Source};
use super::{DEFAULT_MAX_DECOMPRESSED, TS_MAX};

/// The reader's buffer refills by at least this much (`reader._CHUNK`).
const CHUNK: usize = 1 << 20;

/// What the caller may tune.
#[derive(Debug, Clone)]
pub struct Options {
    /// Decompressed bytes allowed before the reader refuses (`--max-decompressed`).
    pub max_decompressed: u64,
    /// Decompressed bytes per compressed byte allowed past 16 MiB (`--max-expansion`; 0: no bound).
    pub max_expansion: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options { max_decompressed: DEFAULT_MAX_DECOMPRESSED, max_expansion: MAX_EXPANSION }
    }
}

/// An interface's clock: how long a timestamp tick is (pcapng `if_tsresol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsResol {
    /// Ticks of 10^-n s (pcap microseconds are `Decimal(6)`, nanoseconds `Decimal(9)`).
    Decimal(u8),
    /// Ticks of 2^-n s.
    Binary(u8),
}

impl TsResol {
    /// `ticks` in nanoseconds, rounded down (exact in 128 bits: at most 2^64 * 10^9).
    pub fn ns(self, ticks: u64) -> i128 {
        let ticks = ticks as u128;
        match self {
            TsResol::Decimal(e) if e <= 9 => (ticks * 10u128.pow(9 - e as u32)) as i128,
            TsResol::Decimal(e) => 10u128.checked_pow(e as u32 - 9).map_or(0, |div| (ticks / div) as i128),
            TsResol::Binary(n) => ((ticks * 1_000_000_000) >> n) as i128,
        }
    }
}

/// One capture interface (a pcapng IDB, or the single interface of a pcap file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Index across the whole file, as Wireshark's `frame.interface_id`.
    pub id: u32,
    pub linktype: u16,
    pub snaplen: u32,
    pub tsresol: TsResol,
    pub tsoffset_s: i64,
    pub name: Option<String>,
    pub description: Option<String>,
    pub section: u32,
    pub fcslen: Option<u8>,
    pub frames: u64,
}

impl Interface {
    pub(crate) fn new(id: u32, linktype: u16, snaplen: u32, tsresol: TsResol) -> Self {
        Interface {
            id,
            linktype,
            snaplen,
            tsresol,
            tsoffset_s: 0,
            name: None,
            description: None,
            section: 0,
            fcslen: None,
            frames: 0,
        }
    }
}

/// What the capture file says about itself, and what went wrong reading it.
#[derive(Debug, Clone)]
pub struct CaptureInfo {
    pub path: String,
    pub size: Option<u64>,
    pub format: Format,
    pub compression: Option<Compression>,
    /// Frame numbers used (the last frame's number).
    pub frames: u64,
    pub first_ts: Option<i64>,
    pub last_ts: Option<i64>,
    pub interfaces: Vec<Interface>,
    pub damage: DamageLog,
    /// pcapng `opt_comment`s of frames, by frame number.
    pub comments: BTreeMap<u64, Vec<String>>,
    pub section_comments: Vec<String>,
    /// Comments beyond `MAX_COMMENTS`, counted only.
    pub comments_left_out: u64,
    pub sections: u64,
    pub bytes_unread: u64,
    /// `shb_hardware`, `shb_os`, `shb_userappl`: the first section's that has each.
    pub shb_info: Vec<(&'static str, String)>,
}

/// One frame, valid until the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// 1-based, as Wireshark numbers frames.
    pub number: u64,
    /// UTC nanoseconds since 1970, clamped to int64.
    pub ts_ns: i64,
    /// The interface's link type, -1 for a frame naming an interface never described.
    pub link_type: i32,
    /// The interface id, -1 as for `link_type`.
    pub interface: i32,
    pub caplen: u32,
    pub orig_len: u32,
    /// pcapng `epb_flags` direction: 0 unknown, 1 inbound, 2 outbound.
    pub direction: u8,
    pub data: &'a [u8],
}

/// Where a frame's bytes are in the buffer, and its facts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameAt {
    pub no: u64,
    pub ts: i64,
    pub link_type: i32,
    pub interface: i32,
    pub caplen: u32,
    pub orig_len: u32,
    pub direction: u8,
    pub start: usize,
}

/// A read that cannot go on: the decompressed stream went over the bound.
pub type ReadError = CaptureError;

pub(crate) enum State {
    Pcap(PcapState),
    Pcapng(PcapngState),
}

/// The open reader. `next_frame` until `None`, then `info()`.
pub struct Reader {
    pub(crate) src: Source,
    pub(crate) buf: Vec<u8>,
    pub(crate) pos: usize,
    eof: bool,
    finished: bool,
    /// The rest of a compressed stream was decompressed unread after the reading stopped.
    checked_rest: bool,
    pub(crate) state: State,
    pub(crate) info: CaptureInfo,
    /// The last frame number given out.
    pub(crate) no: u64,
    /// The last in-order timestamp, -1 before the first frame.
    pub(crate) last_ts: i64,
    pub(crate) n_comments: usize,
}

impl Reader {
    /// Opens a capture by path (`-` for standard input).
    pub fn open(path: impl AsRef<std::path::Path>, options: &Options) -> Result<Reader, CaptureError> {
        Self::from_input(Input::Path(path.as_ref()), options)
    }

    /// Reads a capture held in memory.
    pub fn from_bytes(data: Vec<u8>, options: &Options) -> Result<Reader, CaptureError> {
        Self::from_input(Input::Bytes(data), options)
    }

    pub fn from_input(input: Input<'_>, options: &Options) -> Result<Reader, CaptureError> {
        let mut src = Source::open(input, options.max_decompressed, options.max_expansion)?;
        let buf = std::mem::take(&mut src.header);
        let info = CaptureInfo {
            path: src.path.clone(),
            size: src.size,
            format: src.format,
            compression: src.compression,
            frames: 0,
            first_ts: None,
            last_ts: None,
            interfaces: Vec::new(),
            damage: DamageLog::new(),
            comments: BTreeMap::new(),
            section_comments: Vec::new(),
            comments_left_out: 0,
            sections: 0,
            bytes_unread: 0,
            shb_info: Vec::new(),
        };
        let state = match src.format {
            Format::Pcap => State::Pcap(PcapState::default()),
            Format::Pcapng => State::Pcapng(PcapngState::default()),
        };
        let mut reader = Reader {
            src,
            buf,
            pos: 0,
            eof: false,
            finished: false,
            checked_rest: false,
            state,
            info,
            no: 0,
            last_ts: -1,
            n_comments: 0,
        };
        if let State::Pcap(_) = reader.state {
            reader.pcap_header();
        }
        Ok(reader)
    }

    /// The next frame, `None` after the last one. An error only for a decompressed stream
    /// over its bound (`DecompressionError`); everything else is damage in [`Reader::info`].
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, ReadError> {
        if self.finished {
            return Ok(None);
        }
        let step = match self.state {
            State::Pcap(_) => self.pcap_next(),
            State::Pcapng(_) => self.pcapng_next(),
        };
        match step {
            Ok(Some(at)) => Ok(Some(Frame {
                number: at.no,
                ts_ns: at.ts,
                link_type: at.link_type,
                interface: at.interface,
                caplen: at.caplen,
                orig_len: at.orig_len,
                direction: at.direction,
                data: &self.buf[at.start..at.start + at.caplen as usize],
            })),
            Ok(None) => {
                self.check_rest();
                self.finish();
                Ok(None)
            }
            Err(StreamError::Limit(problem)) => {
                self.finish();
                Err(CaptureError::new(ErrorKind::Decompression, &self.info.path, problem))
            }
            Err(StreamError::Io(e)) => {
                // capture.Capture: a read error ends the capture as damage after the last frame.
                self.finish();
                let text = match e.raw_os_error() {
                    Some(code) => format!("read error: [Errno {code}] {}", strerror(&e)),
                    None => format!("read error: {e}"),
                };
                self.info.damage.add(DamageKind::TruncatedFile, self.no + 1, || text);
                Ok(None)
            }
        }
    }

    /// What the capture says about itself; complete once `next_frame` has returned `None`.
    pub fn info(&self) -> &CaptureInfo {
        &self.info
    }

    pub fn into_info(self) -> CaptureInfo {
        self.info
    }

    /// The end of the records (the Python loops' `finally`).
    fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.info.frames = self.no;
        if let State::Pcap(_) = self.state {
            if let Some(iface) = self.info.interfaces.first_mut() {
                iface.frames = self.no;
            }
        }
        self.info.last_ts = (self.last_ts >= 0).then_some(self.last_ts);
        self.stream_end();
    }

    /// A compressed stream that ended early or corrupt: damage at the frame after the last one read.
    fn stream_end(&mut self) {
        let no = self.no;
        let Some(bounded) = self.src.stream.bounded() else { return };
        let Some(error) = bounded.error.clone() else { return };
        if !self.eof {
            return;
        }
        if !bounded.corrupt {
            self.info.damage.add(DamageKind::TruncatedFile, no + 1, || error);
            return;
        }
        let frames = (bounded.member == 1 && no > 0).then_some((1, no));
        let mut detail = bounded.corrupt_detail(frames, !self.checked_rest);
        if self.checked_rest {
            detail += &format!(
                ". The reading had stopped before it, at frame {}: that frame's damage is likely a symptom of this one",
                super::damage::thousands(no + 1)
            );
        }
        self.info.damage.add(DamageKind::CorruptCompressed, no + 1, || detail);
    }

    /// The reader stopped by itself (damage it cannot read past, or the end): the rest of a
    /// compressed stream is decompressed, unread, to learn whether the data itself was damaged.
    /// A corrupt stream often shows first as a frame of impossible length.
    fn check_rest(&mut self) {
        if self.eof || self.src.stream.bounded().is_none() {
            return;
        }
        self.checked_rest = true;
        let mut sink = Vec::new();
        loop {
            sink.clear();
            match self.src.stream.read(CHUNK, &mut sink) {
                Ok(0) => break,
                Ok(_) => {}
                Err(_) => return, // a bound reached in data no one reads: nothing more is learnt
            }
        }
        self.eof = true;
    }

    /// Frame `no` ends with the data: `truncated_record`, unless the data ended because the
    /// decompressor rejected it (then it is where the corruption was noticed: `corrupt_compressed`).
    pub(crate) fn cut_short(&mut self, no: u64, detail: impl FnOnce() -> String) {
        if !self.src.stream.bounded().is_some_and(|b| b.corrupt) {
            self.info.damage.add(DamageKind::TruncatedRecord, no, detail);
        }
    }

    // -- the buffer ----------------------------------------------------------------------------

    /// At least `need` bytes from `pos` in the buffer; false at the end of the input.
    pub(crate) fn fill(&mut self, need: usize) -> Result<bool, StreamError> {
        let avail = self.buf.len() - self.pos;
        if avail >= need {
            return Ok(true);
        }
        if self.eof {
            return Ok(false);
        }
        self.buf.drain(..self.pos);
        self.pos = 0;
        let mut want = (need - avail).max(CHUNK);
        let mut got = avail;
        let mut first = true;
        while got < need || first {
            first = false;
            let n = self.src.stream.read(want, &mut self.buf)?;
            if n == 0 {
                self.eof = true;
                break;
            }
            got += n;
            want = need.saturating_sub(got).max(CHUNK);
        }
        Ok(self.buf.len() >= need)
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Bytes of an uncompressed file not yet read into the buffer.
    pub(crate) fn rest_size(&self) -> u64 {
        match (self.src.size, self.src.compression, self.src.stream.tell()) {
            (Some(size), None, Some(at)) => size.saturating_sub(at),
            _ => 0,
        }
    }

    /// The file offset of `pos`, -1 where the stream cannot tell (compressed, a pipe).
    pub(crate) fn consumed(&self) -> i64 {
        match self.src.stream.tell() {
            Some(at) => at as i64 - self.remaining() as i64,
            None => -1,
        }
    }

    // -- shared by both formats ---------------------------------------------------------------

    /// Frame `no` is older than the one before it.
    pub(crate) fn time_backwards(&mut self, no: u64, ts: i64) {
        self.info.damage.add(DamageKind::TimeBackwards, no, || "timestamp earlier than the previous frame's".into());
        if self.info.first_ts.is_none_or(|first| ts < first) {
            self.info.first_ts = Some(ts);
        }
    }

    /// An in-order timestamp moves the clock on; an earlier one is damage.
    pub(crate) fn clock(&mut self, no: u64, ts: i64) {
        if ts < self.last_ts {
            self.time_backwards(no, ts);
        } else {
            if self.last_ts < 0 {
                self.info.first_ts = Some(ts);
            }
            self.last_ts = ts;
        }
    }

    /// `ts` clamped to 1970 .. 2262 (int64 nanoseconds), recorded as damage when it was not.
    pub(crate) fn ts_in_range(&mut self, ts: i128, no: u64) -> i64 {
        if (0..=TS_MAX as i128).contains(&ts) {
            return ts as i64;
        }
        self.info.damage.add(DamageKind::TimeOutOfRange, no, || {
            "timestamp before 1970 or after 2262; clamped to that range".into()
        });
        if ts < 0 {
            0
        } else {
            TS_MAX
        }
    }
}
