//! Opening a capture: the path's checks, compression and format detected by magic number, and
//! the file's own header read and checked (`reader._open_path` and `CaptureSource`).

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use super::decompress::{read_up_to, Bounded, Buffered, Compression, StreamError};
use super::error::{strerror, CaptureError, ErrorKind};
use super::MAX_BLOCK;

pub(crate) const PCAPNG_SHB: &[u8; 4] = b"\x0a\x0d\x0d\x0a";
pub(crate) const BOM_LE: &[u8; 4] = b"\x4d\x3c\x2b\x1a";
pub(crate) const BOM_BE: &[u8; 4] = b"\x1a\x2b\x3c\x4d";

/// The byte order of a pcap file or a pcapng section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteOrder {
    Little,
    Big,
}

impl ByteOrder {
    pub(crate) fn u16(self, b: &[u8], at: usize) -> u16 {
        let v = [b[at], b[at + 1]];
        match self {
            ByteOrder::Little => u16::from_le_bytes(v),
            ByteOrder::Big => u16::from_be_bytes(v),
        }
    }

    pub(crate) fn u32(self, b: &[u8], at: usize) -> u32 {
        let v = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        match self {
            ByteOrder::Little => u32::from_le_bytes(v),
            ByteOrder::Big => u32::from_be_bytes(v),
        }
    }

    pub(crate) fn i64(self, b: &[u8], at: usize) -> i64 {
        let mut v = [0u8; 8];
        v.copy_from_slice(&b[at..at + 8]);
        match self {
            ByteOrder::Little => i64::from_le_bytes(v),
            ByteOrder::Big => i64::from_be_bytes(v),
        }
    }
}

/// The file format, from the magic number after any decompression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pcap,
    Pcapng,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Pcap => "pcap",
            Format::Pcapng => "pcapng",
        }
    }
}

/// A pcap magic as found at offset 0: byte order, nanoseconds per tick, record header size.
pub(crate) fn pcap_magic(magic: &[u8]) -> Option<(ByteOrder, u32, usize)> {
    Some(match magic {
        b"\xd4\xc3\xb2\xa1" => (ByteOrder::Little, 1000, 16),
        b"\xa1\xb2\xc3\xd4" => (ByteOrder::Big, 1000, 16),
        b"\x4d\x3c\xb2\xa1" => (ByteOrder::Little, 1, 16),
        b"\xa1\xb2\x3c\x4d" => (ByteOrder::Big, 1, 16),
        b"\x34\xcd\xb2\xa1" => (ByteOrder::Little, 1000, 24), // Alexey Kuznetzov's modified pcap
        b"\xa1\xb2\xcd\x34" => (ByteOrder::Big, 1000, 24),
        _ => return None,
    })
}

/// The bytes after the file header, as the reader pulls them.
pub(crate) enum Stream {
    /// Uncompressed: the file itself; `at` counts the bytes read (the file position).
    Plain { raw: Box<dyn Read + Send>, at: u64, seekable: bool },
    /// Decompressed, through the 1 MiB buffered reader.
    Compressed(Box<Buffered>),
}

impl Stream {
    /// `read(n)`: appends up to `n` bytes (fewer only at the end) to `out`.
    pub(crate) fn read(&mut self, n: usize, out: &mut Vec<u8>) -> Result<usize, StreamError> {
        match self {
            Stream::Plain { raw, at, .. } => {
                let got = (&mut **raw).take(n as u64).read_to_end(out).map_err(StreamError::Io)?;
                *at += got as u64;
                Ok(got)
            }
            Stream::Compressed(b) => b.read(n, out),
        }
    }

    /// `stream.tell()`, or None where Python's raises (a decompressed stream, a pipe).
    pub(crate) fn tell(&self) -> Option<u64> {
        match self {
            Stream::Plain { at, seekable: true, .. } => Some(*at),
            _ => None,
        }
    }

    /// The decompressing stream, for compressed input.
    pub(crate) fn bounded(&self) -> Option<&Bounded> {
        match self {
            Stream::Plain { .. } => None,
            Stream::Compressed(b) => Some(&b.raw),
        }
    }

    /// Why nothing of a compressed capture is readable, when its stream ended early or corrupt.
    fn refusal(&self) -> Option<String> {
        self.bounded().filter(|b| b.error.is_some()).map(Bounded::refusal)
    }
}

/// An opened capture, its header read.
pub(crate) struct Source {
    pub(crate) path: String,
    pub(crate) size: Option<u64>,
    pub(crate) compression: Option<Compression>,
    pub(crate) format: Format,
    pub(crate) stream: Stream,
    /// The magic and the file's own header (the pcap global header, or the whole first SHB).
    pub(crate) header: Vec<u8>,
}

/// Where the bytes come from.
pub enum Input<'a> {
    /// A path; `-` and `/dev/stdin` read standard input.
    Path(&'a Path),
    /// Bytes in memory (reported as `<bytes>`).
    Bytes(Vec<u8>),
}

struct Pushback {
    head: Vec<u8>,
    at: usize,
    inner: Box<dyn Read + Send>,
}

impl Read for Pushback {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at < self.head.len() {
            let n = buf.len().min(self.head.len() - self.at);
            buf[..n].copy_from_slice(&self.head[self.at..self.at + n]);
            self.at += n;
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

/// An opened input: the bytes, the name errors give, the size if known, and whether `tell` works.
struct Opened {
    raw: Box<dyn Read + Send>,
    path: String,
    size: Option<u64>,
    seekable: bool,
}

fn open_path(path: &Path) -> Result<Opened, CaptureError> {
    let name = path.to_string_lossy().into_owned();
    if name == "-" || name == "/dev/stdin" {
        return Ok(Opened { raw: Box::new(io::stdin()), path: "<stdin>".to_string(), size: None, seekable: false });
    }
    let open_error = |kind, problem: String| CaptureError::new(kind, &name, problem);
    if path.is_dir() {
        return Err(open_error(ErrorKind::Open, "is a directory, not a capture file".into()));
    }
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(open_error(ErrorKind::NotFound, "no such file".into()))
        }
        Err(e) => return Err(open_error(ErrorKind::Open, strerror(&e))),
    };
    if !meta.file_type().is_file() {
        // Opening a FIFO blocks until a writer appears, and a device or socket is no capture
        // file: refuse by name instead of hanging. Piped input is read from stdin ("-").
        use std::os::unix::fs::FileTypeExt;
        let ft = meta.file_type();
        let kind = if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "a device"
        };
        return Err(open_error(
            ErrorKind::Open,
            format!("is {kind}, not a regular file; pipe it to stdin as '-' instead"),
        ));
    }
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(open_error(ErrorKind::NotFound, "no such file".into()))
        }
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            return Err(open_error(ErrorKind::Open, "permission denied".into()))
        }
        Err(e) => return Err(open_error(ErrorKind::Open, strerror(&e))),
    };
    let size = file.metadata().ok().filter(|m| m.file_type().is_file()).map(|m| m.len());
    Ok(Opened { raw: Box::new(file), path: name, size, seekable: true })
}

impl Source {
    pub(crate) fn open(input: Input<'_>, max_decompressed: u64, max_expansion: f64) -> Result<Source, CaptureError> {
        let Opened { raw, path, size, seekable } = match input {
            Input::Path(p) => open_path(p)?,
            Input::Bytes(data) => {
                let size = Some(data.len() as u64);
                Opened { raw: Box::new(io::Cursor::new(data)), path: "<bytes>".to_string(), size, seekable: true }
            }
        };
        let mut raw = raw;
        let head = read_up_to(&mut *raw, 6).map_err(|e| CaptureError::new(ErrorKind::Open, &path, strerror(&e)))?;
        if head.is_empty() {
            return Err(CaptureError::new(ErrorKind::Empty, &path, "empty file (0 bytes), not a capture"));
        }
        let compression = Compression::detect(&head);
        if head.starts_with(b"\x28\xb5\x2f\xfd") {
            return Err(CaptureError::new(
                ErrorKind::NotACapture,
                &path,
                "zstd-compressed; decompress it first (zstd -d)",
            ));
        }
        let raw: Box<dyn Read + Send> = Box::new(Pushback { head, at: 0, inner: raw });
        let stream = match compression {
            None => Stream::Plain { raw, at: 0, seekable },
            Some(kind) => {
                Stream::Compressed(Box::new(Buffered::new(Bounded::new(raw, kind, max_decompressed, max_expansion))))
            }
        };
        let mut src = Source { path, size, compression, format: Format::Pcap, stream, header: Vec::new() };
        let mut magic = Vec::with_capacity(4);
        src.read(4, &mut magic)?;
        if magic.len() < 4 {
            if let Some(err) = src.stream.refusal() {
                return Err(CaptureError::new(ErrorKind::Decompression, &src.path, err));
            }
        }
        if magic.as_slice() == PCAPNG_SHB {
            src.format = Format::Pcapng;
        } else if pcap_magic(&magic).is_some() {
            src.format = Format::Pcap;
        } else {
            let what = compression.map_or(String::new(), |c| format!(" after {} decompression", c.name()));
            let hex = if magic.is_empty() { "none".to_string() } else { hex(&magic) };
            return Err(CaptureError::new(
                ErrorKind::NotACapture,
                &src.path,
                format!("not a pcap or pcapng capture{what} (magic {hex})"),
            ));
        }
        src.header = magic;
        match src.file_header() {
            Ok(()) => Ok(src),
            Err(e) if e.kind == ErrorKind::TruncatedHeader => match src.stream.refusal() {
                Some(err) => Err(CaptureError::new(ErrorKind::Decompression, &src.path, err)),
                None => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    fn read(&mut self, n: usize, out: &mut Vec<u8>) -> Result<usize, CaptureError> {
        self.stream.read(n, out).map_err(|e| match e {
            StreamError::Limit(problem) => CaptureError::new(ErrorKind::Decompression, &self.path, problem),
            StreamError::Io(e) => CaptureError::new(ErrorKind::Open, &self.path, strerror(&e)),
        })
    }

    /// Reads and checks the rest of the file header; a `TruncatedHeader` error when nothing of
    /// the capture is readable (a damaged frame later on is damage, not an error).
    fn file_header(&mut self) -> Result<(), CaptureError> {
        let path = self.path.clone();
        let err = |kind, problem: String| Err(CaptureError::new(kind, &path, problem));
        let mut header = std::mem::take(&mut self.header);
        if self.format == Format::Pcap {
            let got = self.read(20, &mut header)?;
            self.header = header;
            if got < 20 {
                return err(
                    ErrorKind::TruncatedHeader,
                    format!("pcap global header cut short ({} of 24 bytes)", 4 + got),
                );
            }
            return Ok(());
        }
        let got = self.read(8, &mut header)?;
        if got < 8 {
            return err(
                ErrorKind::TruncatedHeader,
                format!("pcapng section header cut short ({} of 28+ bytes)", 4 + got),
            );
        }
        let bom = &header[8..12];
        let order = if bom == BOM_LE {
            ByteOrder::Little
        } else if bom == BOM_BE {
            ByteOrder::Big
        } else {
            return err(
                ErrorKind::NotACapture,
                format!("pcapng section header with unknown byte-order magic {}", hex(bom)),
            );
        };
        let blen = order.u32(&header, 4);
        if blen < 28 || blen % 4 != 0 || blen > MAX_BLOCK {
            return err(ErrorKind::NotACapture, format!("pcapng section header has impossible length {blen}"));
        }
        let want = blen as usize - 12;
        let got = self.read(want, &mut header)?;
        if got < want {
            return err(
                ErrorKind::TruncatedHeader,
                format!("pcapng section header cut short ({} of {blen} bytes)", 12 + got),
            );
        }
        let (major, minor) = (order.u16(&header, 12), order.u16(&header, 14));
        if major != 1 {
            return err(
                ErrorKind::NotACapture,
                format!("pcapng section header version {major}.{minor} is not supported (only 1.x exists)"),
            );
        }
        let trailer = order.u32(&header, blen as usize - 4);
        if trailer != blen {
            return err(
                ErrorKind::NotACapture,
                format!("pcapng section header: trailing length {trailer} differs from {blen}"),
            );
        }
        self.header = header;
        Ok(())
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
