//! Reading captures: pcap and pcapng, Ethernet, SLL and SLL2, directions, unsupported links;
//! and the annotated pcapng written back.

use nwf_compiler::program::Way;
use nwf_simulator::build::{self, mac, Eth, L4};
use nwf_simulator::capture::{CaptureReader, CaptureWriter};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::DataLink;
use std::time::Duration;

fn frame() -> Vec<u8> {
    build::ipv4(
        Eth::new(mac("52:54:00:00:00:01"), mac("52:54:00:00:00:99")),
        "10.0.0.5".parse().unwrap(),
        "10.0.0.9".parse().unwrap(),
        L4::Udp(1, 2),
    )
}

fn pcap_with(link: DataLink, packets: &[Vec<u8>]) -> Vec<u8> {
    let header = PcapHeader {
        datalink: link,
        ..Default::default()
    };
    let mut w = PcapWriter::with_header(Vec::new(), header).unwrap();
    for (i, p) in packets.iter().enumerate() {
        w.write_packet(&PcapPacket::new(
            Duration::from_millis(i as u64),
            p.len() as u32,
            p,
        ))
        .unwrap();
    }
    w.into_writer()
}

fn read_all(
    bytes: Vec<u8>,
    pcapng: bool,
) -> Result<Vec<nwf_simulator::capture::Captured<'static>>, String> {
    let mut r = CaptureReader::new(std::io::Cursor::new(bytes), pcapng).map_err(|e| e.0)?;
    let mut v = Vec::new();
    while let Some(c) = r.next_frame() {
        v.push(c.map_err(|e| e.0)?.into_owned());
    }
    Ok(v)
}

#[test]
fn pcap_ethernet_has_no_direction() {
    let v = read_all(pcap_with(DataLink::ETHERNET, &[frame(), frame()]), false).unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(v[1].index, 1);
    assert_eq!(v[1].way, None);
    assert_eq!(v[0].data, frame());
}

#[test]
fn cooked_captures_give_direction() {
    let f = frame();
    let payload = &f[14..];
    // SLL: packet type, ARPHRD, address length, address (8), protocol.
    let sll = |ptype: u16| {
        let mut v = Vec::new();
        v.extend_from_slice(&ptype.to_be_bytes());
        v.extend_from_slice(&1u16.to_be_bytes());
        v.extend_from_slice(&6u16.to_be_bytes());
        v.extend_from_slice(&[0x52, 0x54, 0, 0, 0, 1, 0, 0]);
        v.extend_from_slice(&0x0800u16.to_be_bytes());
        v.extend_from_slice(payload);
        v
    };
    let v = read_all(pcap_with(DataLink::LINUX_SLL, &[sll(0), sll(4)]), false).unwrap();
    assert_eq!(v[0].way, Some(Way::FromVm));
    assert_eq!(
        v[1].way,
        Some(Way::ToVm),
        "OUTGOING on the host's port is towards the VM"
    );
    assert!(v[0].dst_unknown);
    assert_eq!(&v[0].data[6..12], &[0x52, 0x54, 0, 0, 0, 1]);
    assert_eq!(&v[0].data[14..], payload);
    // SLL2: protocol, reserved, ifindex, ARPHRD, packet type, address length, address.
    let sll2 = |ptype: u8| {
        let mut v = Vec::new();
        v.extend_from_slice(&0x0800u16.to_be_bytes());
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(&7u32.to_be_bytes());
        v.extend_from_slice(&1u16.to_be_bytes());
        v.push(ptype);
        v.push(6);
        v.extend_from_slice(&[0x52, 0x54, 0, 0, 0, 1, 0, 0]);
        v.extend_from_slice(payload);
        v
    };
    let v = read_all(pcap_with(DataLink::LINUX_SLL2, &[sll2(4), sll2(0)]), false).unwrap();
    assert_eq!(v[0].way, Some(Way::ToVm));
    assert_eq!(v[1].way, Some(Way::FromVm));
    assert_eq!(&v[1].data[14..], payload);
}

#[test]
fn unsupported_link_type_is_a_clear_error() {
    let e = read_all(pcap_with(DataLink::IEEE802_11, &[frame()]), false).unwrap_err();
    assert!(e.contains("unsupported link type"), "{e}");
    let e = read_all(b"not a capture at all".to_vec(), false).unwrap_err();
    assert!(e.contains("not a pcap"), "{e}");
}

#[test]
fn pcapng_round_trip_with_directions_and_comments() {
    let mut w = CaptureWriter::new(Vec::new()).unwrap();
    w.write(
        Duration::from_millis(5),
        Some(Way::FromVm),
        &frame(),
        Some("nwf: accept"),
    )
    .unwrap();
    w.write(Duration::from_millis(6), Some(Way::ToVm), &frame(), None)
        .unwrap();
    w.write(Duration::from_millis(7), None, &frame(), None)
        .unwrap();
    let bytes = w.into_inner();
    let v = read_all(bytes.clone(), true).unwrap();
    assert_eq!(
        v.iter().map(|c| c.way).collect::<Vec<_>>(),
        [Some(Way::FromVm), Some(Way::ToVm), None]
    );
    assert_eq!(v[0].time, Duration::from_millis(5));
    // The comment is a standard opt_comment that Wireshark shows as frame.comment.
    let mut r = PcapNgReader::new(std::io::Cursor::new(bytes)).unwrap();
    let mut comments = Vec::new();
    while let Some(b) = r.next_block() {
        if let Block::EnhancedPacket(p) = b.unwrap() {
            for o in &p.options {
                if let EnhancedPacketOption::Comment(c) = o {
                    comments.push(c.to_string());
                }
            }
        }
    }
    assert_eq!(comments, ["nwf: accept"]);
}

#[test]
fn truncated_frames_decode_without_panic() {
    let f = frame();
    for n in 0..f.len() {
        let d = nwf_simulator::frame::Frame::decode(&f[..n]);
        let _ = d.to_string();
    }
}
