//! `decode_capture`: the capture read and decoded in the core, the packets handed over as
//! little-endian columns (see `pcapsleuth/_core.pyi`), for the columns step of issue 21.

use std::collections::HashMap;
use std::path::PathBuf;

use pcapsleuth_core::capture::{CaptureError, Input, Options, Reader};
use pcapsleuth_core::decode::{DecodeOptions, Decoder, FrameIn, Packet};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::{guarded, info_dict, to_pyerr};

/// Strings as categorical codes (-1: none).
#[derive(Default)]
struct Dict {
    codes: HashMap<String, i32>,
    values: Vec<String>,
}

impl Dict {
    fn code(&mut self, s: Option<&str>) -> i32 {
        let Some(s) = s else { return -1 };
        if let Some(&c) = self.codes.get(s) {
            return c;
        }
        let c = self.values.len() as i32;
        self.values.push(s.to_string());
        self.codes.insert(s.to_string(), c);
        c
    }
}

macro_rules! columns {
    ($($name:ident),* $(,)?) => {
        #[derive(Default)]
        struct Columns { n: usize, encaps: Dict, notes: Dict, $($name: Vec<u8>,)* }
        impl Columns {
            fn items(&self) -> Vec<(&'static str, &Vec<u8>)> { vec![$((stringify!($name), &self.$name),)*] }
        }
    };
}

columns!(
    no,
    ts,
    caplen,
    wirelen,
    iface,
    direction,
    linktype,
    src_mac,
    src_mac_valid,
    vlan_offsets,
    vlan,
    encap,
    ip_version,
    src,
    dst,
    ttl,
    ttl_valid,
    ip_id,
    ip_id_valid,
    df,
    df_valid,
    frag,
    proto,
    proto_valid,
    sport,
    sport_valid,
    dport,
    dport_valid,
    seq,
    seq_valid,
    ack,
    ack_valid,
    flags,
    flags_valid,
    window,
    window_valid,
    options_offsets,
    options,
    options_valid,
    payload_len,
    payload_len_valid,
    cksum,
    pkttype,
    pkttype_valid,
    ifindex,
    ifindex_valid,
    note,
    left_to_dpkt,
);

/// Appends a nullable value: the value (or 0) and its validity byte.
macro_rules! opt {
    ($c:expr, $col:ident, $valid:ident, $v:expr, $ty:ty) => {{
        let v: Option<$ty> = $v;
        $c.$col.extend(v.unwrap_or_default().to_le_bytes());
        $c.$valid.push(u8::from(v.is_some()));
    }};
}

impl Columns {
    fn new() -> Self {
        let mut c = Columns::default();
        c.vlan_offsets.extend(0u32.to_le_bytes());
        c.options_offsets.extend(0u32.to_le_bytes());
        c
    }

    fn push(&mut self, p: &Packet) {
        self.n += 1;
        self.no.extend(p.no.to_le_bytes());
        self.ts.extend(p.ts.to_le_bytes());
        self.caplen.extend(p.caplen.to_le_bytes());
        self.wirelen.extend(p.wirelen.to_le_bytes());
        self.iface.extend(p.iface.to_le_bytes());
        self.direction.push(p.direction);
        self.linktype.extend(p.linktype.to_le_bytes());
        self.src_mac.extend(p.src_mac.unwrap_or_default());
        self.src_mac_valid.push(u8::from(p.src_mac.is_some()));
        for v in &p.vlan {
            self.vlan.extend(v.to_le_bytes());
        }
        self.vlan_offsets.extend(((self.vlan.len() / 2) as u32).to_le_bytes());
        let code = self.encaps.code(p.encap.as_deref());
        self.encap.extend(code.to_le_bytes());
        self.ip_version.push(p.ip_version);
        self.src.extend(p.src.bytes16());
        self.dst.extend(p.dst.bytes16());
        opt!(self, ttl, ttl_valid, p.ttl, u8);
        opt!(self, ip_id, ip_id_valid, p.ip_id, u32);
        opt!(self, df, df_valid, p.df.map(u8::from), u8);
        self.frag.push(p.frag as u8);
        opt!(self, proto, proto_valid, p.proto, u8);
        opt!(self, sport, sport_valid, p.sport, u16);
        opt!(self, dport, dport_valid, p.dport, u16);
        opt!(self, seq, seq_valid, p.seq.map(|s| s.0), u32);
        opt!(self, ack, ack_valid, p.ack.map(|s| s.0), u32);
        opt!(self, flags, flags_valid, p.flags, u16);
        opt!(self, window, window_valid, p.window, u16);
        if let Some(o) = &p.options {
            self.options.extend_from_slice(o.as_slice());
        }
        self.options_valid.push(u8::from(p.options.is_some()));
        self.options_offsets.extend((self.options.len() as u32).to_le_bytes());
        opt!(self, payload_len, payload_len_valid, p.payload_len, i64);
        self.cksum.push(p.cksum as u8);
        opt!(self, pkttype, pkttype_valid, p.pkttype, u16);
        opt!(self, ifindex, ifindex_valid, p.ifindex, u32);
        let code = self.notes.code(p.note.as_deref());
        self.note.extend(code.to_le_bytes());
        self.left_to_dpkt.push(u8::from(p.left_to_dpkt));
    }
}

struct Decoded {
    cols: Columns,
    reader: Reader,
    decoder: Decoder,
    error: Option<CaptureError>,
}

fn run(mut reader: Reader, options: DecodeOptions) -> Decoded {
    let mut decoder = Decoder::new(options);
    let mut cols = Columns::new();
    let mut error = None;
    loop {
        match reader.next_frame() {
            Ok(Some(f)) => cols.push(&decoder.decode(&FrameIn::from(&f))),
            Ok(None) => break,
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    Decoded { cols, reader, decoder, error }
}

/// Reads and decodes a whole capture (a path, `-`, or its bytes). Returns a dict: `columns`
/// (name -> little-endian array bytes, see `_core.pyi`), `encap` and `note` (the strings the
/// categorical codes name), `info` (as `CaptureReader.info()`, the decoder's damage merged in),
/// `non_ip`, `ip_fragments`, and `error`: the `pcapsleuth.errors` exception met part way (the
/// frames before it are decoded; not raised), else None. Raises the `pcapsleuth.errors` class for input that
/// cannot be opened.
#[pyfunction]
#[pyo3(signature = (source, verify_checksums = true, trust_partial_checksums = false,
                    max_decompressed = pcapsleuth_core::capture::DEFAULT_MAX_DECOMPRESSED,
                    max_expansion = pcapsleuth_core::capture::MAX_EXPANSION))]
pub fn decode_capture<'py>(
    py: Python<'py>,
    source: &Bound<'py, PyAny>,
    verify_checksums: bool,
    trust_partial_checksums: bool,
    max_decompressed: u64,
    max_expansion: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let options = Options { max_decompressed, max_expansion };
    let dopts = DecodeOptions { verify_checksums, trust_partial: trust_partial_checksums };
    let input: Result<Vec<u8>, PathBuf> = match source.cast::<PyBytes>() {
        Ok(b) => Ok(b.as_bytes().to_vec()),
        Err(_) => Err(source.extract()?),
    };
    let done = py.detach(|| {
        guarded("decoding a capture", || {
            let opened = match &input {
                Ok(bytes) => Reader::from_input(Input::Bytes(bytes.clone()), &options),
                Err(path) => Reader::from_input(Input::Path(path), &options),
            };
            opened.map(|r| run(r, dopts))
        })
    })?;
    let d = match done {
        Ok(d) => d,
        Err(err) => return Err(to_pyerr(py, err)),
    };
    let out = PyDict::new(py);
    let cols = PyDict::new(py);
    for (name, bytes) in d.cols.items() {
        cols.set_item(name, PyBytes::new(py, bytes))?;
    }
    out.set_item("n", d.cols.n)?;
    out.set_item("columns", cols)?;
    out.set_item("encap", &d.cols.encaps.values)?;
    out.set_item("note", &d.cols.notes.values)?;
    let mut info = d.reader.info().clone();
    info.damage.merge(&d.decoder.damage);
    out.set_item("info", info_dict(py, &info)?)?;
    out.set_item("non_ip", d.decoder.non_ip)?;
    out.set_item("ip_fragments", d.decoder.ip_fragments)?;
    let error = d.error.map(|e| to_pyerr(py, e).into_value(py));
    out.set_item("error", error)?;
    Ok(out)
}
