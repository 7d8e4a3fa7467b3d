//! Decoding one Ethernet frame into the fields nwfilter rules test.
//!
//! Decoding never allocates and never fails: a truncated or malformed frame yields the fields
//! that are there, and flags say what the kernel would think of the rest. Headers are read by
//! hand (etherparse builds the frames of tests and captures): decoding is most of a replay's
//! per-frame cost, and the bridge's own rules decide which IP headers count as bad.

use nwf_compiler::value::MacAddr;
use std::net::IpAddr;

/// An 802.1Q tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vlan {
    /// VLAN id (12 bits).
    pub id: u16,
    /// The protocol inside the tag as the kernel sees it: the inner ethertype, or ETH_P_802_3
    /// / ETH_P_802_2 for a value below 0x600 (see [`Frame::decode`]).
    pub encap: u16,
}

/// An ARP or RARP packet as the kernel's ebtables arp match reads it (`ebt_arp.c`), which is
/// what libvirt's `<arp>`/`<rarp>` rules use.
///
/// The match reads the 8-byte header (else the rule does not match, negated or not), then:
/// - IP addresses (`arpsrcipaddr`, `arpdstipaddr`, `gratuitous`) only when the protocol type is
///   IPv4 and the protocol length 4; the sender's at 8 + hardware length, the target's at
///   12 + twice the hardware length; both must be in the frame, whichever is tested;
/// - MAC addresses (`arpsrcmacaddr`, `arpdstmacaddr`) only when the hardware type is Ethernet
///   and the hardware length 6; the sender's at 8, the target's at 14 + protocol length; each
///   only needs to be in the frame when it is tested.
///
/// When a condition fails the rule does not match, whatever `match='no'` says: the condition
/// is not negated with the address test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arp {
    /// Hardware type.
    pub htype: u16,
    /// Protocol type.
    pub ptype: u16,
    /// Hardware address length.
    pub hlen: u8,
    /// Protocol address length.
    pub plen: u8,
    /// Opcode.
    pub opcode: u16,
    /// Sender and target IPv4 addresses, where the kernel can read them (see above).
    pub ips: Option<ArpIps>,
    /// Sender hardware address, where the kernel can read it.
    pub sha: Option<MacAddr>,
    /// Target hardware address, where the kernel can read it.
    pub tha: Option<MacAddr>,
}

/// The sender and target protocol addresses of an ARP packet about IPv4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpIps {
    /// Sender protocol address.
    pub spa: [u8; 4],
    /// Target protocol address.
    pub tpa: [u8; 4],
}

/// Fields of a spanning-tree BPDU as the kernel's stp match reads them (see [`Frame::decode`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stp {
    /// The byte the kernel compares with `type` (really the protocol version).
    pub bpdu_type: u8,
    /// The real BPDU type (0 configuration, 0x80 topology change), for display.
    pub real_type: Option<u8>,
    /// Configuration fields as the kernel reads them (one byte early).
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
    /// ICMP echo/query identifier (bytes 4-5 of the ICMP header).
    pub icmp_id: Option<u16>,
    /// For ICMP errors: the tuple of the packet the error is about.
    pub icmp_inner: Option<InnerTuple>,
    /// Whether the TCP/UDP checksum is right (conntrack marks bad ones INVALID).
    pub checksum_ok: bool,
}

/// The addresses, protocol and ports of the packet quoted in an ICMP error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InnerTuple {
    /// Source address of the quoted packet.
    pub src: IpAddr,
    /// Destination address of the quoted packet.
    pub dst: IpAddr,
    /// Its protocol.
    pub proto: u8,
    /// Its ports (or ICMP id twice), if any.
    pub ports: Option<(u16, u16)>,
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
    /// An IPv4/IPv6 ethertype with fewer bytes than the IP header (the bridge drops it).
    pub ip_truncated: bool,
    /// An untagged ARP frame (not RARP) with less than the 8-byte ARP header: br_netfilter
    /// drops it on the forward path before arptables (`br_nf_forward_arp`), measured here.
    pub arp_truncated: bool,
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
        Frame::decode_with(data, true)
    }

    /// Decodes a frame; TCP/UDP checksums are verified only if `checksums` (only connection
    /// tracking looks at them; unverified frames count as correct).
    pub fn decode_with(data: &[u8], checksums: bool) -> Frame {
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
            ip_truncated: false,
            arp_truncated: false,
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
                if let (Some(tci), Some(inner)) = (be16(payload, 0), be16(payload, 2)) {
                    // The kernel takes the tag out of the frame before the bridge and keeps the
                    // inner type as the packet's protocol, which ebtables' vlan match (and nft's
                    // `vlan type`) then read: a value below 0x600 is an 802.3 length, so the
                    // protocol becomes ETH_P_802_3 (1) when the payload starts with ffff, else
                    // ETH_P_802_2 (4) (`vlan_set_encap_proto`; kernel case vlan-encap-mangled).
                    let encap = match (inner, be16(payload, 4)) {
                        (0x0600.., _) => inner,
                        (_, Some(0xffff)) => 0x0001,
                        _ => 0x0004,
                    };
                    f.vlan = Some(Vlan {
                        id: tci & 0x0fff,
                        encap,
                    });
                }
            }
            0x0806 | 0x8035 => {
                f.arp = decode_arp(payload);
                f.arp_truncated = f.ethertype == 0x0806 && payload.len() < 8;
            }
            0x0800 | 0x86dd => decode_ip(&mut f, payload, checksums),
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
    let (h, l) = (usize::from(hlen), usize::from(plen));
    let four = |at: usize| -> Option<[u8; 4]> { p.get(at..at + 4)?.try_into().ok() };
    let ips = if ptype == 0x0800 && plen == 4 {
        four(8 + h)
            .zip(four(12 + 2 * h))
            .map(|(spa, tpa)| ArpIps { spa, tpa })
    } else {
        None
    };
    let ether = htype == 1 && hlen == 6;
    Some(Arp {
        htype,
        ptype,
        hlen,
        plen,
        opcode,
        ips,
        sha: if ether { mac(p, 8) } else { None },
        tha: if ether { mac(p, 14 + l) } else { None },
    })
}

/// Reads a BPDU the way the kernel's ebtables stp match does (`ebt_stp.c`): its header has a
/// one-byte protocol id where the real one has two, so it requires the bytes
/// `42 42 03 00 00 00` (LLC header, protocol id, version 0), takes the *version* byte as the
/// BPDU type, and reads every configuration field one byte early. libvirt's `<stp>` rules
/// behave accordingly in a real kernel: `type='0'` matches every version-0 BPDU and
/// `type='0x80'` none. The real type is kept for display.
fn decode_stp(p: &[u8]) -> Option<Stp> {
    if p.get(0..6)? != [0x42, 0x42, 0x03, 0x00, 0x00, 0x00] {
        return None;
    }
    let kernel_type = p[5];
    let config = (kernel_type == 0)
        .then(|| {
            Some(StpConfig {
                flags: *p.get(6)?,
                root_priority: be16(p, 7)?,
                root_addr: mac(p, 9)?,
                root_cost: be32(p, 15)?,
                sender_priority: be16(p, 19)?,
                sender_addr: mac(p, 21)?,
                port: be16(p, 27)?,
                msg_age: be16(p, 29)?,
                max_age: be16(p, 31)?,
                hello_time: be16(p, 33)?,
                forward_delay: be16(p, 35)?,
            })
        })
        .flatten();
    Some(Stp {
        bpdu_type: kernel_type,
        real_type: p.get(6).copied(),
        config,
    })
}

/// IPv6 extension headers that ip6tables and conntrack skip to find the transport protocol.
fn skip_ipv6_extensions(mut next: u8, mut rest: &[u8]) -> (u8, &[u8], bool) {
    let mut later_fragment = false;
    for _ in 0..8 {
        let len = match next {
            0 | 43 | 60 => rest.get(1).map(|l| (usize::from(*l) + 1) * 8),
            44 => {
                // Fragment header: a non-zero offset means no transport header here.
                later_fragment = be16(rest, 2).is_some_and(|o| o >> 3 != 0);
                Some(8)
            }
            51 => rest.get(1).map(|l| (usize::from(*l) + 2) * 4),
            _ => return (next, rest, later_fragment),
        };
        match (len, rest.first()) {
            (Some(len), Some(&n)) if len <= rest.len() => {
                next = n;
                rest = &rest[len..];
            }
            _ => return (next, &[], later_fragment),
        }
    }
    (next, rest, later_fragment)
}

/// Decodes the IP header by hand: the per-frame budget is a few dozen nanoseconds, and the
/// bridge's own validity rules (br_validate_ipv4/ipv6) decide what counts as a bad header.
fn decode_ip(f: &mut Frame, p: &[u8], checksums: bool) {
    let (ip, transport_payload) = if f.ethertype == 0x0800 {
        if p.len() < 20 {
            f.ip_truncated = true;
            return;
        }
        let hdr_len = usize::from(p[0] & 0x0f) * 4;
        let total = usize::from(be16(p, 2).unwrap_or(0));
        let bad = p[0] >> 4 != 4
            || hdr_len < 20
            || hdr_len > p.len()
            || total < hdr_len
            || total > p.len()
            || !header_checksum_ok(&p[..hdr_len.clamp(20, p.len())]);
        let src: [u8; 4] = p[12..16].try_into().expect("length checked");
        let dst: [u8; 4] = p[16..20].try_into().expect("length checked");
        let end = total.clamp(hdr_len.min(p.len()), p.len());
        (
            Ip {
                src: IpAddr::V4(src.into()),
                dst: IpAddr::V4(dst.into()),
                proto: p[9],
                tos: p[1],
                later_fragment: be16(p, 6).is_some_and(|fo| fo & 0x1fff != 0),
                bad_header: bad,
            },
            p.get(hdr_len..end).unwrap_or(&[]),
        )
    } else {
        if p.len() < 40 {
            f.ip_truncated = true;
            return;
        }
        let payload_len = usize::from(be16(p, 4).unwrap_or(0));
        let bad = p[0] >> 4 != 6 || 40 + payload_len > p.len();
        let src: [u8; 16] = p[8..24].try_into().expect("length checked");
        let dst: [u8; 16] = p[24..40].try_into().expect("length checked");
        let body = &p[40..(40 + payload_len).min(p.len())];
        let (proto, rest, later_fragment) = skip_ipv6_extensions(p[6], body);
        (
            Ip {
                src: IpAddr::V6(src.into()),
                dst: IpAddr::V6(dst.into()),
                proto,
                tos: ((p[0] & 0x0f) << 4) | (p[1] >> 4),
                later_fragment,
                bad_header: bad,
            },
            rest,
        )
    };
    f.ip = Some(ip);
    f.transport.checksum_ok = true;
    if ip.later_fragment {
        return;
    }
    let t = transport_payload;
    let tr = &mut f.transport;
    tr.checksum_ok = !checksums || checksum_ok(ip, t);
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
        1 | 58 => {
            tr.icmp = t.first().copied().zip(t.get(1).copied());
            tr.icmp_id = be16(t, 4);
            let is_error = match (ip.proto, t.first()) {
                (1, Some(ty)) => matches!(ty, 3 | 4 | 5 | 11 | 12),
                (58, Some(ty)) => matches!(ty, 1..=4),
                _ => false,
            };
            if is_error {
                tr.icmp_inner = t.get(8..).and_then(inner_tuple);
            }
        }
        _ => {}
    }
}

/// Parses the IP header (and ports) quoted in an ICMP error.
fn inner_tuple(b: &[u8]) -> Option<InnerTuple> {
    let version = b.first()? >> 4;
    let (src, dst, proto, rest): (IpAddr, IpAddr, u8, &[u8]) = match version {
        4 => {
            let ihl = usize::from(b[0] & 0x0f) * 4;
            let src: [u8; 4] = b.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = b.get(16..20)?.try_into().ok()?;
            (
                src.into(),
                dst.into(),
                *b.get(9)?,
                b.get(ihl..).unwrap_or(&[]),
            )
        }
        6 => {
            let src: [u8; 16] = b.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = b.get(24..40)?.try_into().ok()?;
            (
                src.into(),
                dst.into(),
                *b.get(6)?,
                b.get(40..).unwrap_or(&[]),
            )
        }
        _ => return None,
    };
    let ports = match proto {
        6 | 17 | 33 | 132 | 136 => be16(rest, 0).zip(be16(rest, 2)),
        1 | 58 => be16(rest, 4).map(|id| (id, id)),
        _ => None,
    };
    Some(InnerTuple {
        src,
        dst,
        proto,
        ports,
    })
}

/// Verifies the TCP or UDP checksum over the pseudo-header (other protocols: true).
fn checksum_ok(ip: Ip, t: &[u8]) -> bool {
    let (csum_at, optional) = match ip.proto {
        6 => (16, false),
        17 => (6, matches!(ip.src, IpAddr::V4(_))),
        _ => return true,
    };
    let Some(stored) = be16(t, csum_at) else {
        return true;
    };
    if optional && stored == 0 {
        return true; // IPv4 UDP without checksum
    }
    let mut sum: u64 = 0;
    let mut add = |bytes: &[u8]| {
        for c in bytes.chunks(2) {
            sum += u64::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
    };
    match (ip.src, ip.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            add(&s.octets());
            add(&d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            add(&s.octets());
            add(&d.octets());
        }
        _ => return true,
    }
    add(&[0, ip.proto]);
    let len = t.len() as u32;
    add(&len.to_be_bytes());
    add(t);
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum == 0xffff
}

fn ip_port(a: IpAddr, p: Option<u16>) -> String {
    match p {
        Some(p) => format!("{a}.{p}"),
        None => a.to_string(),
    }
}

fn tcp_flag_text(f: u8) -> String {
    let mut s = String::new();
    for (bit, c) in [
        (0x02, 'S'),
        (0x01, 'F'),
        (0x04, 'R'),
        (0x08, 'P'),
        (0x20, 'U'),
    ] {
        if f & bit != 0 {
            s.push(c);
        }
    }
    if f & 0x10 != 0 {
        s.push('.');
    }
    if s.is_empty() {
        s.push_str("none");
    }
    s
}

impl std::fmt::Display for Frame {
    /// A short decode in the style of `tcpdump -e`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.runt {
            return write!(f, "runt frame, length {}", self.len);
        }
        write!(f, "{} > {}, ", self.src, self.dst)?;
        if let Some(v) = self.vlan {
            return write!(
                f,
                "802.1Q vlan {}, ethertype 0x{:04x}, length {}",
                v.id, v.encap, self.len
            );
        }
        if let Some(a) = self.arp {
            let kind = if self.ethertype == 0x8035 {
                "RARP"
            } else {
                "ARP"
            };
            let op = match a.opcode {
                1 => "Request",
                2 => "Reply",
                3 => "Reverse Request",
                4 => "Reverse Reply",
                n => return write!(f, "{kind}, opcode {n}"),
            };
            return match (a.ips, a.sha, a.tha) {
                (Some(x), Some(sha), Some(tha)) => write!(
                    f,
                    "{kind}, {op} {} ({sha}) > {} ({tha})",
                    std::net::Ipv4Addr::from(x.spa),
                    std::net::Ipv4Addr::from(x.tpa),
                ),
                _ => write!(
                    f,
                    "{kind}, {op}, htype {} ptype 0x{:04x} hlen {} plen {}",
                    a.htype, a.ptype, a.hlen, a.plen
                ),
            };
        }
        if let Some(s) = self.stp {
            return match s.real_type {
                Some(t) => write!(f, "STP BPDU type 0x{t:02x}"),
                None => f.write_str("STP BPDU (truncated)"),
            };
        }
        if let Some(ip) = self.ip {
            let fam = if ip.src.is_ipv4() { "IP" } else { "IP6" };
            if ip.bad_header {
                return write!(f, "{fam} {} > {}: bad header", ip.src, ip.dst);
            }
            let (sp, dp) = match self.transport.ports {
                Some((s, d)) => (Some(s), Some(d)),
                None => (None, None),
            };
            write!(
                f,
                "{fam} {} > {}: ",
                ip_port(ip.src, sp),
                ip_port(ip.dst, dp)
            )?;
            return match ip.proto {
                6 => write!(
                    f,
                    "TCP Flags [{}]",
                    tcp_flag_text(self.transport.tcp_flags.unwrap_or(0))
                ),
                17 => f.write_str("UDP"),
                1 | 58 => match self.transport.icmp {
                    Some((t, c)) => write!(
                        f,
                        "ICMP{} type {t} code {c}",
                        if ip.proto == 58 { "6" } else { "" }
                    ),
                    None => f.write_str("ICMP (truncated)"),
                },
                132 => f.write_str("SCTP"),
                p => write!(f, "protocol {p}"),
            };
        }
        if self.ethertype < 0x0600 {
            return write!(f, "802.3, length {}", self.ethertype);
        }
        write!(f, "ethertype 0x{:04x}, length {}", self.ethertype, self.len)
    }
}

/// The IPv4 header checksum: the one's-complement sum over the header is all ones.
fn header_checksum_ok(header: &[u8]) -> bool {
    let mut sum: u32 = header
        .chunks_exact(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum == 0xffff
}
