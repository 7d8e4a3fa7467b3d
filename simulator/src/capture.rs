//! Reading and writing captures: pcap and pcapng (pcap-file 3.x), link types Ethernet, Linux
//! cooked (SLL) and SLL2, with each frame's direction on the VM's port where the file records it.

use nwf_compiler::program::Way;
use pcap_file::pcap::PcapParser;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
use pcap_file::pcapng::blocks::{
    ENHANCED_PACKET_BLOCK, INTERFACE_DESCRIPTION_BLOCK, SECTION_HEADER_BLOCK,
};
use pcap_file::pcapng::{PcapNgParser, PcapNgWriter};
use pcap_file::DataLink;
use std::borrow::Cow;
use std::io::{Read, Write};
use std::time::Duration;

/// One frame of a capture, as Ethernet bytes (borrowed from the reader's buffer when the
/// capture is Ethernet already).
#[derive(Clone, Debug)]
pub struct Captured<'a> {
    /// 0-based position in the capture.
    pub index: usize,
    /// Capture timestamp.
    pub time: Duration,
    /// The direction the file records, if any.
    pub way: Option<Way>,
    /// Ethernet frame bytes (cooked captures are given a synthetic Ethernet header).
    pub data: Cow<'a, [u8]>,
    /// Whether the destination MAC is unknown (cooked captures do not record it).
    pub dst_unknown: bool,
}

impl Captured<'_> {
    /// A copy that owns its bytes.
    pub fn into_owned(self) -> Captured<'static> {
        Captured {
            data: Cow::Owned(self.data.into_owned()),
            ..self
        }
    }
}

/// Why a capture cannot be read.
#[derive(Debug)]
pub struct CaptureError(pub String);

impl std::fmt::Display for CaptureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CaptureError {}

/// What we keep of a pcapng interface description.
#[derive(Clone, Copy, Debug)]
struct Iface {
    link: DataLink,
    /// Timestamp units per second.
    ts_per_sec: u64,
}

enum Format {
    Pcap {
        parser: PcapParser,
        link: DataLink,
        per_sec: u64,
    },
    PcapNg {
        parser: PcapNgParser,
        big_endian: bool,
        ifaces: Vec<Iface>,
    },
}

/// The capture's bytes: the file mapped into memory (no copy, no allocation per frame; the
/// page cache holds the data), or bytes read from a stream.
enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// A capture reader: frames are parsed in place with pcap-file's slice parsers.
pub struct CaptureReader {
    bytes: Bytes,
    pos: usize,
    format: Format,
    index: usize,
    /// Bytes of the mapping already handed back to the kernel.
    released: usize,
}

/// How much of a mapped capture is read before the pages behind are released, so that memory
/// stays flat however large the capture is.
const RELEASE_STEP: usize = 16 << 20;

/// Magic numbers of the two formats.
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

fn u16_at(b: &[u8], at: usize, big: bool) -> Option<u16> {
    let x: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
    Some(if big {
        u16::from_be_bytes(x)
    } else {
        u16::from_le_bytes(x)
    })
}

fn u32_at(b: &[u8], at: usize, big: bool) -> Option<u32> {
    let x: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(if big {
        u32::from_be_bytes(x)
    } else {
        u32::from_le_bytes(x)
    })
}

/// Walks pcapng options (code, length, value padded to 4 bytes).
fn options(mut b: &[u8], big: bool) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let code = u16_at(b, 0, big)?;
        let len = usize::from(u16_at(b, 2, big)?);
        if code == 0 {
            return None;
        }
        let value = b.get(4..4 + len)?;
        b = b.get(4 + len.div_ceil(4) * 4..).unwrap_or(&[]);
        Some((code, value))
    })
}

impl CaptureReader {
    /// Opens a pcap or pcapng file (detected by its magic number).
    pub fn open(path: &std::path::Path) -> Result<Self, CaptureError> {
        let err = |e: std::io::Error| CaptureError(format!("cannot read {}: {e}", path.display()));
        let f = std::fs::File::open(path).map_err(err)?;
        if f.metadata().map_err(err)?.len() < 4 {
            return Err(CaptureError(format!(
                "{} is not a capture: the file is too short",
                path.display()
            )));
        }
        // SAFETY: the map is read-only; a capture truncated by another process while we read
        // it would fault, as it does for other readers of mapped captures.
        let map = unsafe { memmap2::Mmap::map(&f) }.map_err(err)?;
        Self::from_bytes(Bytes::Mapped(map))
            .map_err(|e| CaptureError(format!("{}: {}", path.display(), e.0)))
    }

    /// Reads a whole capture from a stream (the format is detected; `_pcapng` is ignored).
    pub fn new<R: Read>(mut r: R, _pcapng: bool) -> Result<Self, CaptureError> {
        let mut v = Vec::new();
        r.read_to_end(&mut v)
            .map_err(|e| CaptureError(format!("cannot read the capture: {e}")))?;
        Self::from_bytes(Bytes::Owned(v))
    }

    /// Hands the pages of already-read frames back to the kernel (mapped files only).
    fn release_consumed(&mut self) {
        let Bytes::Mapped(m) = &self.bytes else {
            return;
        };
        if self.pos - self.released < RELEASE_STEP {
            return;
        }
        let page = 4096;
        let end = self.pos / page * page;
        // SAFETY: no frame borrowed from the map is alive (`next_frame` takes `&mut self`, so the
        // previous frame's borrow has ended), and the range lies before every byte still to be
        // read; a read-only file mapping refaults from the file if it is touched again.
        let _ = unsafe {
            m.unchecked_advise_range(
                memmap2::UncheckedAdvice::DontNeed,
                self.released,
                end - self.released,
            )
        };
        self.released = end;
    }

    fn from_bytes(bytes: Bytes) -> Result<Self, CaptureError> {
        let (rest, format) = if bytes.get(0..4) == Some(&PCAPNG_MAGIC) {
            let (rest, parser) = PcapNgParser::new(&bytes)
                .map_err(|e| CaptureError(format!("not a valid pcapng file: {e}")))?;
            let big_endian = parser.section().endianness == pcap_file::Endianness::Big;
            // The first section's interfaces are read by the parser only through raw blocks.
            (
                rest.len(),
                Format::PcapNg {
                    parser,
                    big_endian,
                    ifaces: Vec::new(),
                },
            )
        } else {
            let (rest, parser) = PcapParser::new(&bytes)
                .map_err(|e| CaptureError(format!("not a pcap or pcapng file: {e}")))?;
            let h = parser.header();
            check_link(h.datalink)?;
            let per_sec = match h.ts_resolution {
                pcap_file::TsResolution::MicroSecond => 1_000_000,
                pcap_file::TsResolution::NanoSecond => 1_000_000_000,
            };
            (
                rest.len(),
                Format::Pcap {
                    parser,
                    link: h.datalink,
                    per_sec,
                },
            )
        };
        let pos = bytes.len() - rest;
        Ok(CaptureReader {
            bytes,
            pos,
            format,
            index: 0,
            released: 0,
        })
    }

    /// The next frame, an error for a corrupt file or unsupported link type, or `None` at the end.
    pub fn next_frame(&mut self) -> Option<Result<Captured<'_>, CaptureError>> {
        self.release_consumed();
        let CaptureReader {
            bytes,
            pos,
            format,
            index,
            ..
        } = self;
        let all: &[u8] = bytes;
        let at = *index;
        let truncated = |e: pcap_file::PcapError| match e {
            pcap_file::PcapError::IncompleteBuffer => {
                CaptureError(format!("frame {at}: the capture is truncated"))
            }
            e => CaptureError(format!("frame {at}: {e}")),
        };
        match format {
            Format::Pcap {
                parser,
                link,
                per_sec,
            } => {
                let src = &all[*pos..];
                if src.is_empty() {
                    return None;
                }
                let (rem, p) = match parser.next_raw_packet(src) {
                    Ok(x) => x,
                    Err(e) => return Some(Err(truncated(e))),
                };
                *pos = all.len() - rem.len();
                *index += 1;
                let time = Duration::from_secs(u64::from(p.ts_sec))
                    + Duration::from_nanos(u64::from(p.ts_frac) * 1_000_000_000 / *per_sec);
                Some(
                    to_ethernet(*link, p.data, None).map(|(data, way, dst_unknown)| Captured {
                        index: at,
                        time,
                        way,
                        data,
                        dst_unknown,
                    }),
                )
            }
            Format::PcapNg {
                parser,
                big_endian,
                ifaces,
            } => loop {
                let src = &all[*pos..];
                if src.is_empty() {
                    return None;
                }
                let (rem, block) = match parser.next_raw_block(src) {
                    Ok(x) => x,
                    Err(e) => return Some(Err(truncated(e))),
                };
                *pos = all.len() - rem.len();
                let big = *big_endian;
                let Cow::Borrowed(body) = block.body else {
                    return Some(Err(CaptureError(format!(
                        "frame {at}: unexpected block copy"
                    ))));
                };
                match block.type_ {
                    SECTION_HEADER_BLOCK => {
                        // The byte-order magic says how the new section is written.
                        *big_endian = body.get(0..4) == Some(&[0x1a, 0x2b, 0x3c, 0x4d]);
                        ifaces.clear();
                    }
                    INTERFACE_DESCRIPTION_BLOCK => {
                        let link = DataLink::from(u32::from(u16_at(body, 0, big).unwrap_or(0)));
                        let mut ts_per_sec = 1_000_000u64;
                        for (code, v) in options(body.get(8..).unwrap_or(&[]), big) {
                            if code == 9 {
                                if let Some(&res) = v.first() {
                                    let exp = u32::from(res & 0x7f);
                                    ts_per_sec = if res & 0x80 != 0 {
                                        2u64.saturating_pow(exp)
                                    } else {
                                        10u64.saturating_pow(exp)
                                    };
                                }
                            }
                        }
                        ifaces.push(Iface {
                            link,
                            ts_per_sec: ts_per_sec.max(1),
                        });
                    }
                    ENHANCED_PACKET_BLOCK => {
                        let parsed = (|| {
                            let iface = u32_at(body, 0, big)? as usize;
                            let ts = (u64::from(u32_at(body, 4, big)?) << 32)
                                | u64::from(u32_at(body, 8, big)?);
                            let caplen = u32_at(body, 12, big)? as usize;
                            let data = body.get(20..20 + caplen)?;
                            let opts = body.get(20 + caplen.div_ceil(4) * 4..).unwrap_or(&[]);
                            let flags = options(opts, big)
                                .find(|(c, _)| *c == 2)
                                .and_then(|(_, v)| u32_at(v, 0, big));
                            Some((iface, ts, data, flags))
                        })();
                        let Some((iface, ts, data, flags)) = parsed else {
                            return Some(Err(CaptureError(format!(
                                "frame {at}: truncated enhanced packet block"
                            ))));
                        };
                        let Some(i) = ifaces.get(iface).copied() else {
                            return Some(Err(CaptureError(format!(
                                "frame {at}: interface {iface} is not described in the file"
                            ))));
                        };
                        *index += 1;
                        // pcapng flags, bits 0-1: 01 inbound (sent by the VM), 10 outbound (to the VM).
                        let way = flags.and_then(|f| match f & 0b11 {
                            0b01 => Some(Way::FromVm),
                            0b10 => Some(Way::ToVm),
                            _ => None,
                        });
                        let time = ts_to_duration(ts, i.ts_per_sec);
                        return Some(
                            check_link(i.link)
                                .and_then(|_| to_ethernet(i.link, Cow::Borrowed(data), way))
                                .map(|(data, way, dst_unknown)| Captured {
                                    index: at,
                                    time,
                                    way,
                                    data,
                                    dst_unknown,
                                }),
                        );
                    }
                    _ => {}
                }
            },
        }
    }
}

/// A timestamp in units of `1/per_sec` seconds (the common resolutions without a division).
fn ts_to_duration(ts: u64, per_sec: u64) -> Duration {
    match per_sec {
        1_000_000 => Duration::from_micros(ts),
        1_000_000_000 => Duration::from_nanos(ts),
        _ => {
            Duration::from_secs(ts / per_sec)
                + Duration::from_nanos((ts % per_sec) * 1_000_000_000 / per_sec)
        }
    }
}

fn check_link(link: DataLink) -> Result<(), CaptureError> {
    match link {
        DataLink::ETHERNET | DataLink::LINUX_SLL | DataLink::LINUX_SLL2 => Ok(()),
        other => Err(CaptureError(format!(
            "unsupported link type {other:?}: nwf reads Ethernet, Linux cooked (SLL) and SLL2 captures"
        ))),
    }
}

/// Converts a captured frame to Ethernet bytes, with the direction cooked headers record.
#[allow(clippy::type_complexity)]
fn to_ethernet(
    link: DataLink,
    data: Cow<'_, [u8]>,
    way: Option<Way>,
) -> Result<(Cow<'_, [u8]>, Option<Way>, bool), CaptureError> {
    // (packet type, link-layer address, protocol, payload)
    let (ptype, addr, proto, payload): (u16, &[u8], u16, &[u8]) = match link {
        DataLink::ETHERNET => return Ok((data, way, false)),
        DataLink::LINUX_SLL => {
            if data.len() < 16 {
                return Ok((Cow::Owned(Vec::new()), way, true));
            }
            let alen = usize::from(u16::from_be_bytes([data[4], data[5]])).min(8);
            (
                u16::from_be_bytes([data[0], data[1]]),
                &data[6..6 + alen],
                u16::from_be_bytes([data[14], data[15]]),
                &data[16..],
            )
        }
        _ => {
            if data.len() < 20 {
                return Ok((Cow::Owned(Vec::new()), way, true));
            }
            let alen = usize::from(data[11]).min(8);
            (
                u16::from(data[10]),
                &data[12..12 + alen],
                u16::from_be_bytes([data[0], data[1]]),
                &data[20..],
            )
        }
    };
    // Packet type 4 (OUTGOING) on the host's port means sent to the VM.
    let way = way.or(Some(if ptype == 4 { Way::ToVm } else { Way::FromVm }));
    let mut out = Vec::with_capacity(14 + payload.len());
    out.extend_from_slice(&[0; 6]);
    let mut src = [0u8; 6];
    for (d, s) in src.iter_mut().zip(addr) {
        *d = *s;
    }
    out.extend_from_slice(&src);
    out.extend_from_slice(&proto.to_be_bytes());
    out.extend_from_slice(payload);
    Ok((Cow::Owned(out), way, true))
}

/// Writes Ethernet frames to a pcapng file, with direction flags and optional comments.
pub struct CaptureWriter<W: Write> {
    w: PcapNgWriter<W>,
}

impl<W: Write> CaptureWriter<W> {
    /// Starts a pcapng stream with one Ethernet interface.
    pub fn new(out: W) -> Result<Self, CaptureError> {
        let mut w = PcapNgWriter::new(out).map_err(|e| CaptureError(e.to_string()))?;
        w.write_pcapng_block(InterfaceDescriptionBlock::new(DataLink::ETHERNET, 0))
            .map_err(|e| CaptureError(e.to_string()))?;
        Ok(CaptureWriter { w })
    }

    /// Writes one frame.
    pub fn write(
        &mut self,
        time: Duration,
        way: Option<Way>,
        data: &[u8],
        comment: Option<&str>,
    ) -> Result<(), CaptureError> {
        let mut options = Vec::new();
        if let Some(way) = way {
            options.push(EnhancedPacketOption::Flags(match way {
                Way::FromVm => 0b01,
                Way::ToVm => 0b10,
            }));
        }
        if let Some(c) = comment {
            options.push(EnhancedPacketOption::Comment(Cow::Borrowed(c)));
        }
        let mut block = EnhancedPacketBlock::default();
        block.interface_id = 0;
        block.timestamp = time;
        block.original_len = data.len() as u32;
        block.data = Cow::Borrowed(data);
        block.options = options;
        self.w
            .write_pcapng_block(block)
            .map_err(|e| CaptureError(e.to_string()))?;
        Ok(())
    }

    /// Finishes the stream.
    pub fn into_inner(self) -> W {
        self.w.into_inner()
    }
}
