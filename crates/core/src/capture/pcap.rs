//! pcap: a 24-byte global header, then records of a 16-byte header (24 in Kuznetzov's modified
//! format) and the frame's bytes.

use super::damage::{thousands, DamageKind};
use super::decompress::StreamError;
use super::reader::{FrameAt, Interface, Reader, State, TsResol};
use super::source::{pcap_magic, ByteOrder};
use super::MAX_CAPLEN;

/// The file's layout, from its global header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PcapState {
    order: ByteOrder,
    tick_ns: i64,
    rec_size: usize,
    snaplen: u32,
    /// The snaplen a frame may reach before it is `caplen_over_snaplen`.
    snap_limit: u32,
    linktype: u16,
}

impl Default for PcapState {
    fn default() -> Self {
        PcapState {
            order: ByteOrder::Little,
            tick_ns: 1000,
            rec_size: 16,
            snaplen: 0,
            snap_limit: MAX_CAPLEN,
            linktype: 0,
        }
    }
}

impl Reader {
    /// The global header (already in the buffer: the source checked its length).
    pub(crate) fn pcap_header(&mut self) {
        let b = &self.buf;
        let (order, tick_ns, rec_size) = pcap_magic(&b[0..4]).expect("pcap magic checked by the source");
        let snaplen = order.u32(b, 16);
        let network = order.u32(b, 20);
        let linktype = (network & 0x0FFF_FFFF & 0xFFFF) as u16;
        // The "F" bit: the upper bits say how many FCS bytes end each frame.
        let fcs = (network & 0x1000_0000 != 0).then_some(((network >> 28) & 0x7) as u8);
        let mut iface =
            Interface::new(0, linktype, snaplen, if tick_ns == 1 { TsResol::Decimal(9) } else { TsResol::Decimal(6) });
        iface.fcslen = fcs;
        self.info.interfaces.push(iface);
        self.info.sections = 1;
        self.pos = 24;
        let snap_limit = if 0 < snaplen && snaplen < MAX_CAPLEN { snaplen } else { MAX_CAPLEN };
        self.state = State::Pcap(PcapState { order, tick_ns: tick_ns as i64, rec_size, snaplen, snap_limit, linktype });
    }

    /// The next record, or None at the end or at damage that leaves the rest unreadable.
    pub(crate) fn pcap_next(&mut self) -> Result<Option<FrameAt>, StreamError> {
        let State::Pcap(st) = self.state else { unreachable!("pcap state") };
        let rec = st.rec_size;
        let no = self.no;
        if self.remaining() < rec && !self.fill(rec)? {
            let rem = self.remaining();
            if rem > 0 {
                self.cut_short(no + 1, || format!("record header cut short: {rem} of {rec} bytes"));
                self.info.bytes_unread = rem as u64;
            }
            return Ok(None);
        }
        let (b, pos) = (&self.buf, self.pos);
        let sec = st.order.u32(b, pos);
        let frac = st.order.u32(b, pos + 4);
        let caplen = st.order.u32(b, pos + 8);
        let wirelen = st.order.u32(b, pos + 12);
        if caplen > MAX_CAPLEN {
            self.info.damage.add(DamageKind::CaplenInsane, no + 1, || {
                format!(
                    "record claims {} captured bytes (more than {}); rest of file unreadable",
                    thousands(caplen as u64),
                    thousands(MAX_CAPLEN as u64)
                )
            });
            self.info.bytes_unread = self.remaining() as u64 + self.rest_size();
            return Ok(None);
        }
        if self.remaining() - rec < caplen as usize && !self.fill(rec + caplen as usize)? {
            let got = self.remaining() - rec;
            self.cut_short(no + 1, || format!("record body cut short: {got} of {caplen} bytes"));
            self.info.bytes_unread = self.remaining() as u64;
            return Ok(None);
        }
        let start = self.pos + rec;
        self.pos = start + caplen as usize;
        let no = no + 1;
        self.no = no;
        let ts = sec as i64 * 1_000_000_000 + frac as i64 * st.tick_ns;
        self.clock(no, ts);
        if caplen < wirelen {
            self.info.damage.add(DamageKind::SnaplenCut, no, || "frame cut by the snapshot length".into());
        }
        if caplen > st.snap_limit {
            let snaplen = st.snaplen;
            self.info.damage.add(DamageKind::CaplenOverSnaplen, no, || {
                format!("captured length above the file's snaplen {snaplen}")
            });
        }
        Ok(Some(FrameAt {
            no,
            ts,
            link_type: st.linktype as i32,
            interface: 0,
            caplen,
            orig_len: wirelen,
            direction: 0,
            start,
        }))
    }
}
