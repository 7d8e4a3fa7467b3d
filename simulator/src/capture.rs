//! Reading and writing captures: pcap and pcapng (pcap-file 3.x), link types Ethernet, Linux
//! cooked (SLL) and SLL2, with each frame's direction on the VM's port where the file records it.

use nwf_compiler::program::Way;
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
use pcap_file::pcapng::{Block, PcapNgReader, PcapNgWriter};
use pcap_file::DataLink;
use std::borrow::Cow;
use std::io::{BufReader, Read, Write};
use std::time::Duration;

/// One frame of a capture, as Ethernet bytes.
#[derive(Clone, Debug)]
pub struct Captured {
    /// 0-based position in the capture.
    pub index: usize,
    /// Capture timestamp.
    pub time: Duration,
    /// The direction the file records, if any.
    pub way: Option<Way>,
    /// Ethernet frame bytes (cooked captures are given a synthetic Ethernet header).
    pub data: Vec<u8>,
    /// Whether the destination MAC is unknown (cooked captures do not record it).
    pub dst_unknown: bool,
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

enum Inner<R: Read> {
    Pcap(PcapReader<R>, DataLink),
    PcapNg(PcapNgReader<R>),
}

/// A streaming capture reader (one frame in memory at a time).
pub struct CaptureReader<R: Read> {
    inner: Inner<R>,
    index: usize,
}

/// Magic numbers of the two formats.
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

impl CaptureReader<BufReader<std::fs::File>> {
    /// Opens a pcap or pcapng file (detected by its magic number).
    pub fn open(path: &std::path::Path) -> Result<Self, CaptureError> {
        let mut f = std::fs::File::open(path)
            .map_err(|e| CaptureError(format!("cannot open {}: {e}", path.display())))?;
        let mut magic = [0u8; 4];
        let n = f
            .read(&mut magic)
            .map_err(|e| CaptureError(format!("cannot read {}: {e}", path.display())))?;
        drop(f);
        let f = std::fs::File::open(path)
            .map_err(|e| CaptureError(format!("cannot open {}: {e}", path.display())))?;
        let r = BufReader::with_capacity(1 << 16, f);
        if n < 4 {
            return Err(CaptureError(format!(
                "{} is not a capture: the file is too short",
                path.display()
            )));
        }
        Self::new(r, magic == PCAPNG_MAGIC)
            .map_err(|e| CaptureError(format!("{}: {}", path.display(), e.0)))
    }
}

impl<R: Read> CaptureReader<R> {
    /// Reads a capture from `r` (`pcapng` selects the format).
    pub fn new(r: R, pcapng: bool) -> Result<Self, CaptureError> {
        let inner = if pcapng {
            Inner::PcapNg(
                PcapNgReader::new(r)
                    .map_err(|e| CaptureError(format!("not a valid pcapng file: {e}")))?,
            )
        } else {
            let r = PcapReader::new(r)
                .map_err(|e| CaptureError(format!("not a pcap or pcapng file: {e}")))?;
            let link = r.header().datalink;
            check_link(link)?;
            Inner::Pcap(r, link)
        };
        Ok(CaptureReader { inner, index: 0 })
    }

    /// The next frame, an error for a corrupt file or unsupported link type, or `None` at the end.
    pub fn next_frame(&mut self) -> Option<Result<Captured, CaptureError>> {
        loop {
            let index = self.index;
            match &mut self.inner {
                Inner::Pcap(r, link) => {
                    let p = match r.next_packet()? {
                        Ok(p) => p,
                        Err(e) => return Some(Err(CaptureError(format!("frame {index}: {e}")))),
                    };
                    self.index += 1;
                    return Some(to_ethernet(*link, p.data.into_owned(), None).map(
                        |(data, way, dst_unknown)| Captured {
                            index,
                            time: p.timestamp,
                            way,
                            data,
                            dst_unknown,
                        },
                    ));
                }
                Inner::PcapNg(r) => {
                    let block = match r.next_block()? {
                        Ok(b) => b,
                        Err(e) => {
                            return Some(Err(CaptureError(format!(
                                "block after frame {index}: {e}"
                            ))))
                        }
                    };
                    let (iface, time, data, flags) = match &block {
                        Block::EnhancedPacket(p) => {
                            let flags = p.options.iter().find_map(|o| match o {
                                EnhancedPacketOption::Flags(f) => Some(*f),
                                _ => None,
                            });
                            (p.interface_id, p.timestamp, p.data.to_vec(), flags)
                        }
                        Block::SimplePacket(p) => (0, Duration::ZERO, p.data.to_vec(), None),
                        Block::Packet(p) => (
                            u32::from(p.interface_id),
                            Duration::from_micros(p.timestamp),
                            p.data.to_vec(),
                            None,
                        ),
                        _ => continue,
                    };
                    drop(block);
                    let Some(link) = r.interfaces().get(iface as usize).map(|i| i.linktype) else {
                        return Some(Err(CaptureError(format!(
                            "frame {index}: interface {iface} is not described in the file"
                        ))));
                    };
                    self.index += 1;
                    // pcapng flags, bits 0-1: 01 inbound (sent by the VM), 10 outbound (to the VM).
                    let way = flags.and_then(|f| match f & 0b11 {
                        0b01 => Some(Way::FromVm),
                        0b10 => Some(Way::ToVm),
                        _ => None,
                    });
                    return Some(
                        check_link(link)
                            .and_then(|_| to_ethernet(link, data, way))
                            .map(|(data, way, dst_unknown)| Captured {
                                index,
                                time,
                                way,
                                data,
                                dst_unknown,
                            }),
                    );
                }
            }
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
fn to_ethernet(
    link: DataLink,
    data: Vec<u8>,
    way: Option<Way>,
) -> Result<(Vec<u8>, Option<Way>, bool), CaptureError> {
    // (packet type, link-layer address, protocol, payload)
    let (ptype, addr, proto, payload): (u16, &[u8], u16, &[u8]) = match link {
        DataLink::ETHERNET => return Ok((data, way, false)),
        DataLink::LINUX_SLL => {
            if data.len() < 16 {
                return Ok((Vec::new(), way, true));
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
                return Ok((Vec::new(), way, true));
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
    Ok((out, way, true))
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
