//! `pcapsleuth._core`: the Python face of `pcapsleuth-core`, and the only crate that knows Python.
//!
//! It converts and nothing more: frames to tuples, the capture info to a dict, errors to the
//! classes of `pcapsleuth.errors` (imported by name, so the hierarchy is written once, in Python).
//! The GIL is released while a batch of frames is read. A panic in the core never reaches the
//! interpreter as an abort or a `PanicException`: it is caught here and raised as
//! `InternalError`, a `RuntimeError`, which the CLI reports as its one-line internal error (exit 7).
#![forbid(unsafe_code)]

mod decode;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Mutex;

use pcapsleuth_core::capture::{
    linktype_name, CaptureError, CaptureInfo, Input, Options, Reader, TsResol, DEFAULT_MAX_DECOMPRESSED, MAX_EXPANSION,
};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

pyo3::create_exception!(
    _core,
    InternalError,
    PyRuntimeError,
    "A bug in pcapsleuth's Rust core (a panic), caught at the binding: please report it with the capture."
);

/// Frames per batch unless asked otherwise: big enough that the per-call cost vanishes, small
/// enough that Ctrl-C and progress are seen between batches.
const BATCH: usize = 4096;

/// The message of a caught panic.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

/// Runs core code, turning a panic into `InternalError`.
fn guarded<T>(what: &str, f: impl FnOnce() -> T) -> PyResult<T> {
    catch_unwind(AssertUnwindSafe(f))
        .map_err(|payload| InternalError::new_err(format!("{what}: Rust panic: {}", panic_message(&*payload))))
}

/// The `pcapsleuth.errors` exception for `err`.
fn to_pyerr(py: Python<'_>, err: CaptureError) -> PyErr {
    let made = py
        .import("pcapsleuth.errors")
        .and_then(|m| m.getattr(err.kind.class_name()))
        .and_then(|cls| cls.call1((err.path, err.problem)));
    match made {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

/// One frame, copied out of the reader's buffer while the GIL is released.
struct Owned {
    number: u64,
    ts_ns: i64,
    link_type: i32,
    interface: i32,
    caplen: u32,
    orig_len: u32,
    direction: u8,
    data: Vec<u8>,
}

/// A batch of frames as little-endian columns (see `CaptureReader.read_columns`).
#[derive(Default)]
struct Columns {
    n: usize,
    number: Vec<u8>,
    ts_ns: Vec<u8>,
    link_type: Vec<u8>,
    interface: Vec<u8>,
    caplen: Vec<u8>,
    orig_len: Vec<u8>,
    direction: Vec<u8>,
    data: Vec<u8>,
    offsets: Vec<u8>,
}

impl Columns {
    fn push(&mut self, f: &pcapsleuth_core::capture::Frame<'_>) {
        self.n += 1;
        self.number.extend(f.number.to_le_bytes());
        self.ts_ns.extend(f.ts_ns.to_le_bytes());
        self.link_type.extend(f.link_type.to_le_bytes());
        self.interface.extend(f.interface.to_le_bytes());
        self.caplen.extend(f.caplen.to_le_bytes());
        self.orig_len.extend(f.orig_len.to_le_bytes());
        self.direction.push(f.direction);
        self.data.extend_from_slice(f.data);
        self.offsets.extend((self.data.len() as u64).to_le_bytes());
    }
}

/// An open capture: `read_batch()` until it returns an empty list, then `info()`.
#[pyclass(module = "pcapsleuth._core", name = "CaptureReader")]
struct PyReader {
    reader: Mutex<Option<Reader>>,
    /// An error met after the frames of the last batch: raised by the next call.
    pending: Mutex<Option<CaptureError>>,
}

#[pymethods]
impl PyReader {
    /// Up to `max_frames` frames as `(number, ts_ns, link_type, interface, caplen, orig_len,
    /// direction, data)` tuples; an empty list after the last frame.
    #[pyo3(signature = (max_frames = BATCH))]
    fn read_batch<'py>(&self, py: Python<'py>, max_frames: usize) -> PyResult<Bound<'py, PyList>> {
        if let Some(err) = self.pending.lock().expect("lock").take() {
            return Err(to_pyerr(py, err));
        }
        let (frames, err) = py.detach(|| {
            guarded("reading frames", || {
                let mut guard = self.reader.lock().expect("lock");
                let mut frames = Vec::with_capacity(max_frames.min(BATCH));
                let Some(reader) = guard.as_mut() else { return (frames, None) };
                while frames.len() < max_frames {
                    match reader.next_frame() {
                        Ok(Some(f)) => frames.push(Owned {
                            number: f.number,
                            ts_ns: f.ts_ns,
                            link_type: f.link_type,
                            interface: f.interface,
                            caplen: f.caplen,
                            orig_len: f.orig_len,
                            direction: f.direction,
                            data: f.data.to_vec(),
                        }),
                        Ok(None) => break,
                        Err(e) => return (frames, Some(e)),
                    }
                }
                (frames, None)
            })
        })?;
        if let Some(err) = err {
            if frames.is_empty() {
                return Err(to_pyerr(py, err));
            }
            *self.pending.lock().expect("lock") = Some(err);
        }
        let items = frames.into_iter().map(|f| {
            (f.number, f.ts_ns, f.link_type, f.interface, f.caplen, f.orig_len, f.direction, PyBytes::new(py, &f.data))
                .into_pyobject(py)
                .map(|t: Bound<'py, PyTuple>| t.into_any())
        });
        let items: PyResult<Vec<_>> = items.collect();
        PyList::new(py, items?)
    }

    /// Up to `max_frames` frames as columns: a dict of `bytes` holding little-endian arrays
    /// (`number` u64, `ts_ns` i64, `link_type` i32, `interface` i32, `caplen` u32, `orig_len`
    /// u32, `direction` u8), the frames' bytes end to end in `data`, and `offsets` (u64, one more
    /// than the frames: frame i is `data[offsets[i]:offsets[i+1]]`). `memoryview(b).cast("q")` or
    /// `numpy.frombuffer` reads them without a copy. Empty columns after the last frame.
    #[pyo3(signature = (max_frames = 65536))]
    fn read_columns<'py>(&self, py: Python<'py>, max_frames: usize) -> PyResult<Bound<'py, PyDict>> {
        if let Some(err) = self.pending.lock().expect("lock").take() {
            return Err(to_pyerr(py, err));
        }
        let (cols, err) = py.detach(|| {
            guarded("reading frames", || {
                let mut guard = self.reader.lock().expect("lock");
                let mut c = Columns::default();
                c.offsets.extend(0u64.to_le_bytes());
                let Some(reader) = guard.as_mut() else { return (c, None) };
                while c.n < max_frames {
                    match reader.next_frame() {
                        Ok(Some(f)) => c.push(&f),
                        Ok(None) => break,
                        Err(e) => return (c, Some(e)),
                    }
                }
                (c, None)
            })
        })?;
        if let Some(err) = err {
            if cols.n == 0 {
                return Err(to_pyerr(py, err));
            }
            *self.pending.lock().expect("lock") = Some(err);
        }
        let d = PyDict::new(py);
        for (name, bytes) in [
            ("number", &cols.number),
            ("ts_ns", &cols.ts_ns),
            ("link_type", &cols.link_type),
            ("interface", &cols.interface),
            ("caplen", &cols.caplen),
            ("orig_len", &cols.orig_len),
            ("direction", &cols.direction),
            ("data", &cols.data),
            ("offsets", &cols.offsets),
        ] {
            d.set_item(name, PyBytes::new(py, bytes))?;
        }
        Ok(d)
    }

    /// The capture info (format, interfaces, comments, damage ...); complete after the last batch.
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let guard = self.reader.lock().expect("lock");
        match guard.as_ref() {
            Some(reader) => info_dict(py, reader.info()),
            None => Err(PyRuntimeError::new_err("the capture reader is closed")),
        }
    }

    /// Lets the file go; `info()` is gone with it.
    fn close(&self) {
        self.reader.lock().expect("lock").take();
    }
}

fn info_dict<'py>(py: Python<'py>, info: &CaptureInfo) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("path", &info.path)?;
    d.set_item("size", info.size)?;
    d.set_item("format", info.format.name())?;
    d.set_item("compression", info.compression.map(|c| c.name()))?;
    d.set_item("frames", info.frames)?;
    d.set_item("first_ts", info.first_ts)?;
    d.set_item("last_ts", info.last_ts)?;
    let ifaces = PyList::empty(py);
    for i in &info.interfaces {
        let x = PyDict::new(py);
        x.set_item("id", i.id)?;
        x.set_item("linktype", i.linktype)?;
        x.set_item("link_type", linktype_name(i.linktype).as_ref())?;
        x.set_item("snaplen", i.snaplen)?;
        // (kind, n): 10^-n or 2^-n seconds a tick; Python turns it into its (multiplier, divisor).
        let res = match i.tsresol {
            TsResol::Decimal(n) => ("decimal", n),
            TsResol::Binary(n) => ("binary", n),
        };
        x.set_item("tsresol", res)?;
        x.set_item("tsoffset_s", i.tsoffset_s)?;
        x.set_item("name", i.name.as_deref())?;
        x.set_item("description", i.description.as_deref())?;
        x.set_item("section", i.section)?;
        x.set_item("fcslen", i.fcslen)?;
        x.set_item("frames", i.frames)?;
        ifaces.append(x)?;
    }
    d.set_item("interfaces", ifaces)?;
    let damage = PyList::empty(py);
    for e in info.damage.entries() {
        let x = PyDict::new(py);
        x.set_item("kind", e.kind)?;
        x.set_item("count", e.count)?;
        x.set_item("frames", &e.frames)?;
        if !e.detail.is_empty() {
            x.set_item("detail", &e.detail)?;
        }
        damage.append(x)?;
    }
    d.set_item("damage", damage)?;
    let comments = PyDict::new(py);
    for (no, texts) in &info.comments {
        comments.set_item(no, texts)?;
    }
    d.set_item("comments", comments)?;
    d.set_item("section_comments", &info.section_comments)?;
    d.set_item("comments_left_out", info.comments_left_out)?;
    d.set_item("sections", info.sections)?;
    d.set_item("bytes_unread", info.bytes_unread)?;
    let shb = PyDict::new(py);
    for (k, v) in &info.shb_info {
        shb.set_item(k, v)?;
    }
    d.set_item("shb_info", shb)?;
    Ok(d)
}

/// Opens a capture: a path (`-` for standard input) or the bytes of one. Raises the
/// `pcapsleuth.errors` class the Python reader raises for the same input. Compressed input is
/// refused beyond `max_decompressed` bytes, or beyond `max_expansion` times its compressed size
/// once past 16 MiB (0: no bound).
#[pyfunction]
#[pyo3(signature = (source, max_decompressed = DEFAULT_MAX_DECOMPRESSED, max_expansion = MAX_EXPANSION))]
fn open_capture(
    py: Python<'_>,
    source: &Bound<'_, PyAny>,
    max_decompressed: u64,
    max_expansion: f64,
) -> PyResult<PyReader> {
    let options = Options { max_decompressed, max_expansion };
    let opened = if let Ok(bytes) = source.cast::<PyBytes>() {
        let data = bytes.as_bytes().to_vec();
        py.detach(|| guarded("opening a capture", || Reader::from_input(Input::Bytes(data), &options)))?
    } else {
        let path: PathBuf = source.extract()?;
        py.detach(|| guarded("opening a capture", || Reader::from_input(Input::Path(&path), &options)))?
    };
    match opened {
        Ok(reader) => Ok(PyReader { reader: Mutex::new(Some(reader)), pending: Mutex::new(None) }),
        Err(err) => Err(to_pyerr(py, err)),
    }
}

/// Panics only for tests of the binding's guard: the interpreter must see `InternalError`.
#[pyfunction]
fn _panic_for_test(py: Python<'_>) -> PyResult<()> {
    py.detach(|| guarded("a test", || panic!("deliberate panic")))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // A caught panic is reported once, as the exception; the default hook would print it to
    // stderr as well (two lines and a hint), breaking the one-line error contract.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::env::var_os("PCAPSLEUTH_DEBUG").is_some() {
            default_hook(info);
        }
    }));
    m.add_class::<PyReader>()?;
    m.add_function(wrap_pyfunction!(open_capture, m)?)?;
    m.add_function(wrap_pyfunction!(decode::decode_capture, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_for_test, m)?)?;
    m.add("InternalError", m.py().get_type::<InternalError>())?;
    m.add("DEFAULT_MAX_DECOMPRESSED", DEFAULT_MAX_DECOMPRESSED)?;
    m.add("MAX_EXPANSION", MAX_EXPANSION)?;
    m.add("MAX_CAPLEN", pcapsleuth_core::capture::MAX_CAPLEN)?;
    Ok(())
}
