//! pcapng: blocks of `type, length, body, length`, grouped in sections that each start with a
//! Section Header Block and describe their own interfaces. One function per block type.
//!
//! Frames are Enhanced Packet Blocks, Simple Packet Blocks and the obsolete Packet Blocks; a
//! systemd Journal Export Block takes a frame number (Wireshark numbers it) but yields nothing.
//! Name Resolution, Interface Statistics, Decryption Secrets and custom blocks are skipped.

use super::damage::{thousands, DamageKind};
use super::decompress::StreamError;
use super::reader::{FrameAt, Interface, Reader, State, TsResol};
use super::source::{hex, ByteOrder, BOM_BE, BOM_LE, PCAPNG_SHB};
use super::{MAX_BLOCK, MAX_COMMENTS, MAX_FILE_INTERFACES, MAX_INTERFACES};

const BT_SHB: u32 = 0x0A0D_0D0A;
const BT_IDB: u32 = 0x0000_0001;
/// The obsolete Packet Block.
const BT_PB: u32 = 0x0000_0002;
const BT_SPB: u32 = 0x0000_0003;
const BT_EPB: u32 = 0x0000_0006;
/// systemd journal export: Wireshark numbers it as a frame.
const BT_JOURNAL: u32 = 0x0000_0009;

/// The smallest length of each block type that holds its fixed fields (header and trailer included).
fn min_block(btype: u32) -> u32 {
    match btype {
        BT_SHB => 28,
        BT_IDB => 20,
        BT_PB | BT_EPB => 32,
        BT_SPB => 16,
        _ => 12,
    }
}

/// The current section: its byte order and its interfaces (indices into `CaptureInfo::interfaces`).
/// Interfaces belong to their section: each section header starts a new interface table.
#[derive(Debug, Clone)]
pub(crate) struct PcapngState {
    order: ByteOrder,
    local: Vec<usize>,
    /// IDBs of the section, kept or not (the local ids it defines).
    described: u64,
    /// -1 before the first SHB is read.
    section: i64,
}

impl Default for PcapngState {
    fn default() -> Self {
        PcapngState { order: ByteOrder::Little, local: Vec::new(), described: 0, section: -1 }
    }
}

/// A block in the buffer: `body` starts after the length, `end` is where the trailer starts.
#[derive(Debug, Clone, Copy)]
struct Block {
    order: ByteOrder,
    body: usize,
    end: usize,
}

/// What a block gives: a frame, nothing (read on), or the end of what is readable.
enum Next {
    Frame(FrameAt),
    Skip,
    Stop,
}

/// The options of a block from `start` to `end`: `(code, value)` until `opt_endofopt` or one
/// that runs past the end.
fn options(buf: &[u8], order: ByteOrder, start: usize, end: usize) -> impl Iterator<Item = (u16, &[u8])> {
    let mut pos = start;
    std::iter::from_fn(move || {
        if pos + 4 > end {
            return None;
        }
        let code = order.u16(buf, pos);
        let length = order.u16(buf, pos + 2) as usize;
        if code == 0 || pos + 4 + length > end {
            return None;
        }
        let value = &buf[pos + 4..pos + 4 + length];
        pos += 4 + ((length + 3) & !3);
        Some((code, value))
    })
}

fn text(value: &[u8]) -> String {
    String::from_utf8_lossy(value).into_owned()
}

impl Reader {
    fn ng(&mut self) -> &mut PcapngState {
        match &mut self.state {
            State::Pcapng(st) => st,
            State::Pcap(_) => unreachable!("pcapng state"),
        }
    }

    /// The next frame, or None at the end or at damage that leaves the rest unreadable.
    pub(crate) fn pcapng_next(&mut self) -> Result<Option<FrameAt>, StreamError> {
        loop {
            let Some(block) = self.next_block()? else { return Ok(None) };
            let btype = block.order.u32(&self.buf, block.body - 8);
            let next = match btype {
                BT_EPB => self.epb(block, false),
                BT_PB => self.epb(block, true),
                BT_SPB => self.spb(block),
                BT_SHB => self.shb(block),
                BT_IDB => self.idb(block),
                BT_JOURNAL => {
                    self.no += 1;
                    Next::Skip
                }
                _ => Next::Skip, // NRB, ISB, DSB, custom blocks: not frames
            };
            match next {
                Next::Frame(at) => return Ok(Some(at)),
                Next::Skip => continue,
                Next::Stop => return Ok(None),
            }
        }
    }

    /// The framing of the next block, checked: its lengths agree and it holds its fixed fields.
    /// `pos` moves past it. None at the end, or at damage after which nothing is readable.
    fn next_block(&mut self) -> Result<Option<Block>, StreamError> {
        loop {
            let no = self.no;
            if self.remaining() < 12 && !self.fill(12)? {
                let rem = self.remaining();
                if rem > 0 {
                    self.cut_short(no + 1, || format!("block header cut short ({rem} bytes at end of file)"));
                    self.info.bytes_unread = rem as u64;
                }
                return Ok(None);
            }
            let pos = self.pos;
            if &self.buf[pos..pos + 4] == PCAPNG_SHB {
                let bom = &self.buf[pos + 8..pos + 12];
                let order = if bom == BOM_LE {
                    ByteOrder::Little
                } else if bom == BOM_BE {
                    ByteOrder::Big
                } else {
                    let bom = hex(bom);
                    self.info.damage.add(DamageKind::BadBlock, no + 1, || {
                        format!("section header with unknown byte-order magic {bom}")
                    });
                    self.info.bytes_unread = self.remaining() as u64;
                    return Ok(None);
                };
                self.ng().order = order;
            }
            let order = self.ng().order;
            let btype = order.u32(&self.buf, pos);
            let blen = order.u32(&self.buf, pos + 4);
            if blen < 12 || blen % 4 != 0 || blen > MAX_BLOCK {
                let at = self.consumed();
                self.info.damage.add(DamageKind::BadBlock, no + 1, || {
                    format!(
                        "block type 0x{btype:08x} has impossible length {blen} at byte {at}; rest of file unreadable"
                    )
                });
                self.info.bytes_unread = self.remaining() as u64 + self.rest_size();
                return Ok(None);
            }
            let len = blen as usize;
            if self.remaining() < len && !self.fill(len)? {
                let rem = self.remaining();
                self.cut_short(no + 1, || format!("block type 0x{btype:08x} cut short: {rem} of {blen} bytes"));
                self.info.bytes_unread = rem as u64;
                return Ok(None);
            }
            let pos = self.pos; // the fill may have moved the block to the buffer's start
            let trailer = order.u32(&self.buf, pos + len - 4);
            if trailer != blen {
                self.info.damage.add(DamageKind::BadBlock, no + 1, || {
                    format!("block type 0x{btype:08x}: trailing length {trailer} differs from {blen}; rest of file unreadable")
                });
                self.info.bytes_unread = self.remaining() as u64;
                return Ok(None);
            }
            self.pos = pos + len;
            if blen < min_block(btype) {
                // Framing is intact (both lengths agree) but the block cannot hold its own
                // fixed fields: reading them would run into the next block, or past the data.
                self.info.damage.add(DamageKind::BadBlock, no + 1, || {
                    format!("block type 0x{btype:08x} too short for its fields ({blen} bytes)")
                });
                if btype == BT_SHB {
                    self.info.bytes_unread = self.remaining() as u64;
                    return Ok(None);
                }
                continue;
            }
            return Ok(Some(Block { order, body: pos + 8, end: pos + len - 4 }));
        }
    }

    /// Section Header Block: a new section forgets the interfaces of the one before.
    fn shb(&mut self, b: Block) -> Next {
        let st = self.ng();
        st.section += 1;
        self.info.sections += 1;
        let major = b.order.u16(&self.buf, b.body + 4);
        let minor = b.order.u16(&self.buf, b.body + 6);
        if major != 1 {
            let no = self.no;
            self.info.damage.add(DamageKind::BadBlock, no + 1, || {
                format!("section header version {major}.{minor} is not 1.x; rest of file unreadable")
            });
            self.info.bytes_unread = self.remaining() as u64;
            return Next::Stop;
        }
        let st = self.ng();
        st.local.clear();
        st.described = 0;
        let info = &mut self.info;
        for (code, value) in options(&self.buf, b.order, b.body + 16, b.end) {
            let value = text(value);
            let name = match code {
                1 => {
                    if info.section_comments.len() < MAX_COMMENTS {
                        info.section_comments.push(value);
                    } else {
                        info.comments_left_out += 1;
                    }
                    continue;
                }
                2 => "shb_hardware",
                3 => "shb_os",
                4 => "shb_userappl",
                _ => continue,
            };
            if !info.shb_info.iter().any(|(n, _)| *n == name) {
                info.shb_info.push((name, value));
            }
        }
        Next::Skip
    }

    /// Interface Description Block: link type, snaplen, and the options that matter.
    fn idb(&mut self, b: Block) -> Next {
        let linktype = b.order.u16(&self.buf, b.body);
        let snaplen = b.order.u32(&self.buf, b.body + 4);
        let st = self.ng();
        st.described += 1;
        let (kept, section) = (st.local.len(), st.section.max(0));
        if kept >= MAX_INTERFACES || self.info.interfaces.len() >= MAX_FILE_INTERFACES {
            let no = self.no;
            self.info.damage.add(DamageKind::TooManyInterfaces, no + 1, || {
                if kept >= MAX_INTERFACES {
                    format!(
                        "section {section} (counted from 0) describes more than {} interfaces; the rest are ignored",
                        thousands(MAX_INTERFACES as u64)
                    )
                } else {
                    format!(
                        "more than {} interface descriptions in the file; the rest (from section {section}, counted \
                         from 0) are ignored",
                        thousands(MAX_FILE_INTERFACES as u64)
                    )
                }
            });
            return Next::Skip;
        }
        let id = self.info.interfaces.len();
        let mut iface = Interface::new(id as u32, linktype, snaplen, TsResol::Decimal(6));
        iface.section = self.ng().section.max(0) as u32;
        for (code, value) in options(&self.buf, b.order, b.body + 8, b.end) {
            match code {
                2 => iface.name = Some(text(value)),
                3 => iface.description = Some(text(value)),
                9 if !value.is_empty() => {
                    let res = value[0];
                    iface.tsresol = if res & 0x80 != 0 { TsResol::Binary(res & 0x7F) } else { TsResol::Decimal(res) };
                }
                14 if value.len() >= 8 => iface.tsoffset_s = b.order.i64(value, 0),
                13 if !value.is_empty() => iface.fcslen = Some(value[0]),
                _ => {}
            }
        }
        self.info.interfaces.push(iface);
        self.ng().local.push(id);
        Next::Skip
    }

    /// Enhanced Packet Block, or (`obsolete`) the Packet Block: the same layout but for a
    /// 16-bit interface id and a drops count.
    fn epb(&mut self, b: Block, obsolete: bool) -> Next {
        let buf = &self.buf;
        let ifid = if obsolete { b.order.u16(buf, b.body) as u32 } else { b.order.u32(buf, b.body) };
        let ticks = (b.order.u32(buf, b.body + 4) as u64) << 32 | b.order.u32(buf, b.body + 8) as u64;
        let mut caplen = b.order.u32(buf, b.body + 12);
        let wirelen = b.order.u32(buf, b.body + 16);
        let data_start = b.body + 20;
        let mut opt_start = data_start as u64 + ((caplen as u64 + 3) & !3);
        self.no += 1;
        let no = self.no;
        if opt_start > b.end as u64 {
            self.info
                .damage
                .add(DamageKind::BadBlock, no, || format!("captured length {caplen} runs past the end of its block"));
            caplen = (b.end - data_start) as u32;
            opt_start = b.end as u64;
        }
        let direction = if (opt_start as usize) < b.end { self.packet_options(b, opt_start as usize, no) } else { 0 };
        let Some(&index) = self.ng().local.get(ifid as usize) else {
            self.unknown_interface(no, ifid as u64);
            let ts = self.ts_in_range(ticks as i128 * 1000, no);
            return Next::Frame(FrameAt {
                no,
                ts,
                link_type: -1,
                interface: -1,
                caplen,
                orig_len: wirelen,
                direction,
                start: data_start,
            });
        };
        let iface = &self.info.interfaces[index];
        let ts = iface.tsresol.ns(ticks) + iface.tsoffset_s as i128 * 1_000_000_000;
        Next::Frame(self.frame(index, no, ts, caplen, wirelen, direction, data_start))
    }

    /// Simple Packet Block: the section's first interface, no timestamp.
    fn spb(&mut self, b: Block) -> Next {
        let wirelen = b.order.u32(&self.buf, b.body);
        let data_start = b.body + 4;
        let room = (b.end - data_start) as u32;
        let Some(&index) = self.ng().local.first() else {
            self.no += 1;
            let no = self.no;
            if self.ng().described > 0 {
                self.unknown_interface(no, 0);
            } else {
                self.info.damage.add(DamageKind::UnknownInterface, no, || {
                    "simple packet block before any interface description".into()
                });
            }
            return Next::Frame(FrameAt {
                no,
                ts: self.last_ts.max(0),
                link_type: -1,
                interface: -1,
                caplen: room,
                orig_len: wirelen,
                direction: 0,
                start: data_start,
            });
        };
        let snaplen = self.info.interfaces[index].snaplen;
        let mut caplen = wirelen.min(room);
        if snaplen != 0 {
            caplen = caplen.min(snaplen);
        }
        self.no += 1;
        // A simple packet block carries no timestamp; keep time monotonic for analysis.
        let ts = self.last_ts.max(0) as i128;
        Next::Frame(self.frame(index, self.no, ts, caplen, wirelen, 0, data_start))
    }

    /// Frame `no` names local interface `ifid` that its section never described, or whose
    /// description was ignored (`too_many_interfaces`): it is not decoded.
    fn unknown_interface(&mut self, no: u64, ifid: u64) {
        let st = self.ng();
        let (described, section) = (st.described, st.section.max(0));
        self.info.damage.add(DamageKind::UnknownInterface, no, || {
            let at = format!("section {section} (counted from 0)");
            if ifid < described {
                format!("packet names interface {ifid} of {at}, whose description was ignored (too_many_interfaces)")
            } else if described > 0 {
                let known = if described == 1 {
                    "interface 0".to_string()
                } else {
                    format!("interfaces 0 to {}", thousands(described - 1))
                };
                format!("packet names interface {ifid}, which its section never described: {at} describes only {known}")
            } else {
                format!("packet names interface {ifid}, which its section never described: {at} describes none")
            }
        });
    }

    /// A frame of a known interface: its timestamp checked, its lengths against the interface.
    #[allow(clippy::too_many_arguments)]
    fn frame(
        &mut self,
        index: usize,
        no: u64,
        ts: i128,
        caplen: u32,
        wirelen: u32,
        direction: u8,
        start: usize,
    ) -> FrameAt {
        let ts = self.ts_in_range(ts, no);
        self.clock(no, ts);
        if caplen < wirelen {
            self.info.damage.add(DamageKind::SnaplenCut, no, || "frame cut by the snapshot length".into());
        }
        let iface = &mut self.info.interfaces[index];
        let snaplen = iface.snaplen;
        iface.frames += 1;
        let (id, linktype) = (iface.id, iface.linktype);
        if snaplen != 0 && caplen > snaplen {
            self.info.damage.add(DamageKind::CaplenOverSnaplen, no, || {
                format!("captured length above the interface snaplen {snaplen}")
            });
        }
        FrameAt {
            no,
            ts,
            link_type: linktype as i32,
            interface: id as i32,
            caplen,
            orig_len: wirelen,
            direction,
            start,
        }
    }

    /// The options of an EPB or PB: comments kept, the `epb_flags` direction returned.
    fn packet_options(&mut self, b: Block, start: usize, no: u64) -> u8 {
        let mut direction = 0;
        let info = &mut self.info;
        for (code, value) in options(&self.buf, b.order, start, b.end) {
            if code == 1 {
                if self.n_comments < MAX_COMMENTS {
                    self.n_comments += 1;
                    info.comments.entry(no).or_default().push(text(value));
                } else {
                    info.comments_left_out += 1;
                }
            } else if code == 2 && value.len() >= 4 {
                let flags = b.order.u32(value, 0);
                // Bits 0-1: 00 unknown, 01 inbound, 10 outbound; 11 is not a valid value
                // (pcapng spec, epb_flags) and is read as unknown.
                direction = if flags & 3 != 3 { (flags & 3) as u8 } else { 0 };
            }
        }
        direction
    }
}
