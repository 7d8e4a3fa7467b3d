//! Decoding one Ethernet frame into the fields nwfilter rules test.
//!
//! Decoding never allocates and never fails: a truncated or malformed frame yields the fields
//! that are there, and flags say what the kernel would think of the rest. IPv4/IPv6 headers
//! and their extension headers are parsed with etherparse; what it does not cover (ARP/RARP
//! payload fields, STP BPDUs, SCTP/DCCP/UDP-Lite ports, TCP options) is read here.

use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket};
use nwf_compiler::value::MacAddr;
use std::net::IpAddr;

/// An 802.1Q tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vlan {
    /// VLAN id (12 bits).
    pub id: u16,
    /// The ethertype inside the tag.
    pub encap: u16,
}

/// ARP or RARP payload (Ethernet/IPv4 form; other forms keep only the first four fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arp {
    /// Hardware type.
    pub htype: u16,
    /// Protocol type.
    pub ptype: u16,
    /// Opcode.
    pub opcode: u16,
    /// Sender and target addresses, when hardware and protocol lengths are 6 and 4.
    pub addrs: Option<ArpAddrs>,
}

/// The address fields of an Ethernet/IPv4 ARP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpAddrs {
    /// Sender hardware address.
    pub sha: MacAddr,
    /// Sender protocol address.
    pub spa: [u8; 4],
    /// Target hardware address.
    pub tha: MacAddr,
    /// Target protocol address.
    pub tpa: [u8; 4],
}

/// Fields of a spanning-tree BPDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stp {
    /// BPDU type (0 configuration, 0x80 topology change).
    pub bpdu_type: u8,
    /// Configuration fields, for configuration BPDUs.
    pub config: Option<StpConfig>,
}

/// Fields of a configuration BPDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct StpConfig {
    pub flags: u8,
    pub root_priority: u16,
    pub root_addr: MacAddr,
    pub root_cost: u32,
    pub sender_priority: u16,
    pub sender_addr: MacAddr,
    pub port: u16,
    pub msg_age: u16,
    pub max_age: u16,
    pub hello_time: u16,
    pub forward_delay: u16,
}

/// The IP header fields (IPv4 or IPv6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ip {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// The transport protocol (after IPv6 extension headers).
    pub proto: u8,
    /// The IPv4 TOS byte or the IPv6 traffic class.
    pub tos: u8,
    /// A non-first fragment (no transport header to look at).
    pub later_fragment: bool,
    /// IPv4 only: the header checksum or length is wrong (the bridge drops such frames
    /// before any filter sees them).
    pub bad_header: bool,
}

/// Transport-layer fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Transport {
    /// Source and destination port (TCP, UDP, UDP-Lite, SCTP, DCCP).
    pub ports: Option<(u16, u16)>,
    /// TCP flags byte (FIN=1 ... URG=0x20, ECE/CWR too).
    pub tcp_flags: Option<u8>,
    /// TCP option kinds present, as a bitmap of kinds 0-255.
    pub tcp_options: [u64; 4],
    /// ICMP/ICMPv6 type and code.
    pub icmp: Option<(u8, u8)>,
}

impl Transport {
    /// Whether TCP option `kind` is present.
    pub fn has_tcp_option(&self, kind: u8) -> bool {
        self.tcp_options[usize::from(kind / 64)] & (1 << (kind % 64)) != 0
    }
}

/// A decoded frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Destination MAC.
    pub dst: MacAddr,
    /// Source MAC.
    pub src: MacAddr,
    /// The ethertype (or 802.3 length) after the addresses.
    pub ethertype: u16,
    /// The 802.1Q tag, if the ethertype is 0x8100.
    pub vlan: Option<Vlan>,
    /// ARP/RARP fields.
    pub arp: Option<Arp>,
    /// STP BPDU fields.
    pub stp: Option<Stp>,
    /// IP fields (untagged IPv4/IPv6 frames only).
    pub ip: Option<Ip>,
    /// Transport fields.
    pub transport: Transport,
    /// Shorter than an Ethernet header.
    pub runt: bool,
    /// Frame length in bytes.
    pub len: usize,
}

const STP_DST: [u8; 6] = [0x01, 0x80, 0xc2, 0, 0, 0];

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

fn mac(b: &[u8], at: usize) -> Option<MacAddr> {
    let s = b.get(at..at + 6)?;
    Some(MacAddr([s[0], s[1], s[2], s[3], s[4], s[5]]))
}

impl Frame {
    /// Decodes a frame.
    pub fn decode(data: &[u8]) -> Frame {
        let mut f = Frame {
            dst: MacAddr([0; 6]),
            src: MacAddr([0; 6]),
            ethertype: 0,
            vlan: None,
            arp: None,
            stp: None,
            ip: None,
            transport: Transport::default(),
            runt: data.len() < 14,
            len: data.len(),
        };
        if f.runt {
            return f;
        }
        f.dst = mac(data, 0).expect("length checked");
        f.src = mac(data, 6).expect("length checked");
        f.ethertype = be16(data, 12).expect("length checked");
        let payload = &data[14..];
        match f.ethertype {
            0x8100 => {
                if let (Some(tci), Some(encap)) = (be16(payload, 0), be16(payload, 2)) {
                    f.vlan = Some(Vlan {
                        id: tci & 0x0fff,
                        encap,
                    });
                }
            }
            0x0806 | 0x8035 => f.arp = decode_arp(payload),
            0x0800 | 0x86dd => decode_ip(&mut f, payload),
            len if len < 0x0600 && f.dst.0 == STP_DST => f.stp = decode_stp(payload),
            _ => {}
        }
        f
    }
}

fn decode_arp(p: &[u8]) -> Option<Arp> {
    let htype = be16(p, 0)?;
    let ptype = be16(p, 2)?;
    let (hlen, plen) = (*p.get(4)?, *p.get(5)?);
    let opcode = be16(p, 6)?;
    let addrs = if hlen == 6 && plen == 4 {
        (|| {
            Some(ArpAddrs {
                sha: mac(p, 8)?,
                spa: p.get(14..18)?.try_into().ok()?,
                tha: mac(p, 18)?,
                tpa: p.get(24..28)?.try_into().ok()?,
            })
        })()
    } else {
        None
    };
    Some(Arp {
        htype,
        ptype,
        opcode,
        addrs,
    })
}

fn decode_stp(p: &[u8]) -> Option<Stp> {
    // LLC header of BPDUs: DSAP 0x42, SSAP 0x42, control 0x03 (the kernel's stp match checks it).
    if p.get(0..3)? != [0x42, 0x42, 0x03] {
        return None;
    }
    let b = &p[3..];
    let bpdu_type = *b.get(3)?;
    let config = (bpdu_type == 0)
        .then(|| {
            Some(StpConfig {
                flags: *b.get(4)?,
                root_priority: be16(b, 5)?,
                root_addr: mac(b, 7)?,
                root_cost: be32(b, 13)?,
                sender_priority: be16(b, 17)?,
                sender_addr: mac(b, 19)?,
                port: be16(b, 25)?,
                msg_age: be16(b, 27)?,
                max_age: be16(b, 29)?,
                hello_time: be16(b, 31)?,
                forward_delay: be16(b, 33)?,
            })
        })
        .flatten();
    Some(Stp { bpdu_type, config })
}

fn decode_ip(f: &mut Frame, payload: &[u8]) {
    let pkt = LaxSlicedPacket::from_ether_type(EtherType(f.ethertype), payload);
    let Some(net) = &pkt.net else { return };
    let (ip, transport_payload) = match net {
        LaxNetSlice::Ipv4(s) => {
            let h = s.header();
            let hdr_len = usize::from(h.ihl()) * 4;
            let total = usize::from(h.total_len());
            let checksum_ok = h.to_header().calc_header_checksum() == h.header_checksum();
            let bad = !checksum_ok || total < hdr_len || total > payload.len();
            let p = s.payload();
            (
                Ip {
                    src: IpAddr::V4(h.source_addr()),
                    dst: IpAddr::V4(h.destination_addr()),
                    proto: p.ip_number.0,
                    tos: (h.dcp().value() << 2) | h.ecn().value(),
                    later_fragment: h.fragments_offset().value() != 0,
                    bad_header: bad,
                },
                p.payload,
            )
        }
        LaxNetSlice::Ipv6(s) => {
            let h = s.header();
            let p = s.payload();
            (
                Ip {
                    src: IpAddr::V6(h.source_addr()),
                    dst: IpAddr::V6(h.destination_addr()),
                    proto: p.ip_number.0,
                    tos: h.traffic_class(),
                    later_fragment: p.fragmented && p.payload.is_empty(),
                    bad_header: false,
                },
                p.payload,
            )
        }
        LaxNetSlice::Arp(_) => return,
    };
    f.ip = Some(ip);
    if ip.later_fragment {
        return;
    }
    let t = transport_payload;
    let tr = &mut f.transport;
    match ip.proto {
        6 => {
            tr.ports = be16(t, 0).zip(be16(t, 2));
            tr.tcp_flags = t.get(13).copied();
            if let Some(&off) = t.get(12) {
                let end = (usize::from(off >> 4) * 4).min(t.len());
                let mut i = 20;
                while i < end {
                    let kind = t[i];
                    tr.tcp_options[usize::from(kind / 64)] |= 1 << (kind % 64);
                    match kind {
                        0 => break,
                        1 => i += 1,
                        _ => match t.get(i + 1) {
                            Some(&l) if l >= 2 => i += usize::from(l),
                            _ => break,
                        },
                    }
                }
            }
        }
        17 | 33 | 132 | 136 => tr.ports = be16(t, 0).zip(be16(t, 2)),
        1 | 58 => tr.icmp = t.first().copied().zip(t.get(1).copied()),
        _ => {}
    }
}
