//! Why a capture cannot be read at all. The classes mirror `pcapsleuth/errors.py`: the bindings
//! raise the Python class of the same name with `problem` as its text.

use std::fmt;

/// Which `pcapsleuth.errors` class an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// `CaptureOpenError`: missing permissions, a directory, a FIFO, a read error (exit 3).
    Open,
    /// `CaptureNotFoundError`: the path does not exist (exit 3).
    NotFound,
    /// `NotACaptureError`: readable, but neither pcap nor pcapng (exit 4).
    NotACapture,
    /// `EmptyCaptureError`: zero bytes (exit 4).
    Empty,
    /// `TruncatedHeaderError`: the file ends inside its own header (exit 4).
    TruncatedHeader,
    /// `DecompressionError`: compressed input corrupt before the first record, or over the bound (exit 5).
    Decompression,
}

impl ErrorKind {
    /// The class name in `pcapsleuth.errors`.
    pub fn class_name(self) -> &'static str {
        match self {
            ErrorKind::Open => "CaptureOpenError",
            ErrorKind::NotFound => "CaptureNotFoundError",
            ErrorKind::NotACapture => "NotACaptureError",
            ErrorKind::Empty => "EmptyCaptureError",
            ErrorKind::TruncatedHeader => "TruncatedHeaderError",
            ErrorKind::Decompression => "DecompressionError",
        }
    }
}

/// An unusable capture: the file's name and the problem, as `PcapsleuthError(path, problem)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureError {
    pub kind: ErrorKind,
    pub path: String,
    pub problem: String,
}

impl CaptureError {
    pub(crate) fn new(kind: ErrorKind, path: &str, problem: impl Into<String>) -> Self {
        CaptureError { kind, path: path.to_string(), problem: problem.into() }
    }
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.problem)
    }
}

impl std::error::Error for CaptureError {}

/// The text of an OS error without Rust's " (os error N)" suffix: C's strerror, as Python's
/// `OSError.strerror`.
pub(crate) fn strerror(err: &std::io::Error) -> String {
    let text = err.to_string();
    match (err.raw_os_error(), text.rfind(" (os error ")) {
        (Some(_), Some(at)) => text[..at].to_string(),
        _ => text,
    }
}
