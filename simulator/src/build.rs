//! Builds frames from a readable description: for tests and the capture generator.
//!
//! Every function returns the bytes of one Ethernet frame. IP packets are built with
//! etherparse (valid lengths and checksums); ARP, RARP and STP payloads are written here.

use etherparse::PacketBuilder;
use nwf_compiler::value::MacAddr;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Ethernet addresses of a frame.
#[derive(Clone, Copy, Debug)]
pub struct Eth {
    /// Source MAC.
    pub src: MacAddr,
    /// Destination MAC.
    pub dst: MacAddr,
}

impl Eth {
    /// A frame from `src` to `dst`.
    pub fn new(src: MacAddr, dst: MacAddr) -> Eth {
        Eth { src, dst }
    }
}

/// Parses a MAC address literal (panics on a malformed literal: for tests and descriptions
/// that were validated before).
pub fn mac(s: &str) -> MacAddr {
    MacAddr::parse(s).unwrap_or_else(|| panic!("bad MAC literal {s}"))
}

/// The broadcast MAC.
pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

/// A frame with any ethertype and payload.
pub fn raw(eth: Eth, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(14 + payload.len());
    v.extend_from_slice(&eth.dst.0);
    v.extend_from_slice(&eth.src.0);
    v.extend_from_slice(&ethertype.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// Fields of an ARP or RARP packet. The header fields default to Ethernet/IPv4 (see
/// [`ArpHeader::ETHERNET_IPV4`]); other lengths write each address with that many bytes (the
/// address's leading bytes, padded with zeros), as a VM may send them.
#[derive(Clone, Copy, Debug)]
pub struct ArpFields {
    /// Hardware type, protocol type and address lengths.
    pub header: ArpHeader,
    /// Opcode (1 request, 2 reply, 3 reverse request, ...).
    pub opcode: u16,
    /// Sender hardware address.
    pub sha: MacAddr,
    /// Sender IP.
    pub spa: Ipv4Addr,
    /// Target hardware address.
    pub tha: MacAddr,
    /// Target IP.
    pub tpa: Ipv4Addr,
}

/// The first four fields of an ARP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpHeader {
    /// Hardware type (1 Ethernet).
    pub htype: u16,
    /// Protocol type (0x0800 IPv4).
    pub ptype: u16,
    /// Hardware address length.
    pub hlen: u8,
    /// Protocol address length.
    pub plen: u8,
}

impl ArpHeader {
    /// Ethernet hardware addresses and IPv4 protocol addresses.
    pub const ETHERNET_IPV4: ArpHeader = ArpHeader {
        htype: 1,
        ptype: 0x0800,
        hlen: 6,
        plen: 4,
    };
}

fn arp_payload(a: ArpFields) -> Vec<u8> {
    let h = a.header;
    let (hlen, plen) = (usize::from(h.hlen), usize::from(h.plen));
    let mut p = Vec::with_capacity(8 + 2 * (hlen + plen));
    p.extend_from_slice(&h.htype.to_be_bytes());
    p.extend_from_slice(&h.ptype.to_be_bytes());
    p.extend_from_slice(&[h.hlen, h.plen]);
    p.extend_from_slice(&a.opcode.to_be_bytes());
    let mut put = |bytes: &[u8], len: usize| {
        p.extend((0..len).map(|i| bytes.get(i).copied().unwrap_or(0)));
    };
    put(&a.sha.0, hlen);
    put(&a.spa.octets(), plen);
    put(&a.tha.0, hlen);
    put(&a.tpa.octets(), plen);
    p
}

/// An ARP frame.
pub fn arp(eth: Eth, a: ArpFields) -> Vec<u8> {
    raw(eth, 0x0806, &arp_payload(a))
}

/// A RARP frame.
pub fn rarp(eth: Eth, a: ArpFields) -> Vec<u8> {
    raw(eth, 0x8035, &arp_payload(a))
}

/// An 802.1Q-tagged frame carrying `inner_type` and `payload`.
pub fn vlan(eth: Eth, id: u16, inner_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(4 + payload.len());
    p.extend_from_slice(&(id & 0x0fff).to_be_bytes());
    p.extend_from_slice(&inner_type.to_be_bytes());
    p.extend_from_slice(payload);
    raw(eth, 0x8100, &p)
}

/// A transport header for [`ipv4`] and [`ipv6`].
#[derive(Clone, Copy, Debug)]
pub enum L4 {
    /// UDP with source and destination port.
    Udp(u16, u16),
    /// TCP with ports and flags (FIN=1, SYN=2, RST=4, PSH=8, ACK=0x10, URG=0x20).
    Tcp(u16, u16, u8),
    /// ICMP (or ICMPv6) type and code.
    Icmp(u8, u8),
    /// Another protocol number with a payload of zeros.
    Other(u8),
}

/// An IPv4 packet.
pub fn ipv4(eth: Eth, src: Ipv4Addr, dst: Ipv4Addr, l4: L4) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(eth.src.0, eth.dst.0).ipv4(src.octets(), dst.octets(), 64);
    let mut v = Vec::new();
    match l4 {
        L4::Udp(s, d) => b.udp(s, d).write(&mut v, &[0; 8]),
        L4::Tcp(s, d, flags) => tcp_flags(b.tcp(s, d, 1000, 64240), flags).write(&mut v, &[]),
        L4::Icmp(t, c) => b.icmpv4_raw(t, c, [0; 4]).write(&mut v, &[0; 8]),
        L4::Other(p) => {
            let mut ip = etherparse::Ipv4Header::new(
                8,
                64,
                etherparse::IpNumber(p),
                src.octets(),
                dst.octets(),
            )
            .expect("small payload");
            ip.header_checksum = ip.calc_header_checksum();
            let mut payload = Vec::new();
            ip.write(&mut payload).expect("writing to a Vec");
            payload.extend_from_slice(&[0; 8]);
            return raw(eth, 0x0800, &payload);
        }
    }
    .expect("writing to a Vec");
    v
}

/// An IPv6 packet.
pub fn ipv6(eth: Eth, src: Ipv6Addr, dst: Ipv6Addr, l4: L4) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(eth.src.0, eth.dst.0).ipv6(src.octets(), dst.octets(), 64);
    let mut v = Vec::new();
    match l4 {
        L4::Udp(s, d) => b.udp(s, d).write(&mut v, &[0; 8]),
        L4::Tcp(s, d, flags) => tcp_flags(b.tcp(s, d, 1000, 64240), flags).write(&mut v, &[]),
        L4::Icmp(t, c) => b.icmpv6_raw(t, c, [0; 4]).write(&mut v, &[0; 8]),
        L4::Other(p) => {
            let ip = etherparse::Ipv6Header {
                traffic_class: 0,
                flow_label: Default::default(),
                payload_length: 8,
                next_header: etherparse::IpNumber(p),
                hop_limit: 64,
                source: src.octets(),
                destination: dst.octets(),
            };
            let mut payload = Vec::new();
            ip.write(&mut payload).expect("writing to a Vec");
            payload.extend_from_slice(&[0; 8]);
            return raw(eth, 0x86dd, &payload);
        }
    }
    .expect("writing to a Vec");
    v
}

fn tcp_flags(
    mut b: etherparse::PacketBuilderStep<etherparse::TcpHeader>,
    flags: u8,
) -> etherparse::PacketBuilderStep<etherparse::TcpHeader> {
    if flags & 0x01 != 0 {
        b = b.fin();
    }
    if flags & 0x02 != 0 {
        b = b.syn();
    }
    if flags & 0x04 != 0 {
        b = b.rst();
    }
    if flags & 0x08 != 0 {
        b = b.psh();
    }
    if flags & 0x10 != 0 {
        b = b.ack(1);
    }
    if flags & 0x20 != 0 {
        b = b.urg(0);
    }
    b
}

/// A spanning-tree topology-change BPDU (802.3 length + LLC header).
pub fn stp_tcn(src: MacAddr) -> Vec<u8> {
    let payload = [0x42, 0x42, 0x03, 0x00, 0x00, 0x00, 0x80];
    let mut v = Vec::new();
    v.extend_from_slice(&[0x01, 0x80, 0xc2, 0, 0, 0]);
    v.extend_from_slice(&src.0);
    v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    v.extend_from_slice(&payload);
    v
}
