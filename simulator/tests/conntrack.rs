//! The connection tracker against the kernel's rules for the states libvirt's rules test.

use nwf_compiler::program::CtDir;
use nwf_compiler::value::StateSet;
use nwf_simulator::build::{self, mac, Eth, L4};
use nwf_simulator::conntrack::Conntrack;
use nwf_simulator::frame::Frame;
use std::time::Duration;

fn vm() -> Eth {
    Eth::new(mac("52:54:00:00:00:01"), mac("52:54:00:00:00:99"))
}

fn peer() -> Eth {
    Eth::new(mac("52:54:00:00:00:99"), mac("52:54:00:00:00:01"))
}

fn tcp_out(flags: u8) -> Frame {
    Frame::decode(&build::ipv4(
        vm(),
        "10.0.0.5".parse().unwrap(),
        "10.0.0.9".parse().unwrap(),
        L4::Tcp(40000, 80, flags),
    ))
}

fn tcp_in(flags: u8) -> Frame {
    Frame::decode(&build::ipv4(
        peer(),
        "10.0.0.9".parse().unwrap(),
        "10.0.0.5".parse().unwrap(),
        L4::Tcp(80, 40000, flags),
    ))
}

/// Looks a frame up and commits it (as if accepted); returns (state, dir).
fn see(ct: &mut Conntrack, f: &Frame, t: u64) -> (u8, CtDir) {
    let (v, p) = ct.lookup(f, Duration::from_secs(t)).expect("IP frame");
    ct.commit(p);
    (v.state, v.dir)
}

#[test]
fn tcp_handshake() {
    let mut ct = Conntrack::new();
    assert_eq!(
        see(&mut ct, &tcp_out(0x02), 0),
        (StateSet::NEW, CtDir::Original)
    );
    assert_eq!(
        see(&mut ct, &tcp_in(0x12), 0),
        (StateSet::ESTABLISHED, CtDir::Reply)
    );
    assert_eq!(
        see(&mut ct, &tcp_out(0x10), 0),
        (StateSet::ESTABLISHED, CtDir::Original)
    );
    assert_eq!(ct.len(), 1);
}

#[test]
fn dropped_syn_leaves_no_connection() {
    let mut ct = Conntrack::new();
    let (v, _) = ct.lookup(&tcp_out(0x02), Duration::ZERO).unwrap();
    assert_eq!(v.state, StateSet::NEW);
    // Not committed (the frame was dropped): the SYN/ACK then starts nothing valid.
    assert_eq!(
        ct.lookup(&tcp_in(0x12), Duration::ZERO).unwrap().0.state,
        StateSet::INVALID
    );
}

#[test]
fn invalid_tcp() {
    let mut ct = Conntrack::new();
    // RST, FIN or SYN+FIN cannot open a connection.
    for flags in [0x04, 0x01, 0x03, 0x00] {
        assert_eq!(
            ct.lookup(&tcp_out(flags), Duration::ZERO).unwrap().0.state,
            StateSet::INVALID,
            "flags {flags:#x}"
        );
    }
    // A bad checksum is INVALID.
    let mut bytes = build::ipv4(
        vm(),
        "10.0.0.5".parse().unwrap(),
        "10.0.0.9".parse().unwrap(),
        L4::Tcp(1, 2, 0x02),
    );
    let last = bytes.len() - 1;
    bytes[last - 5] ^= 0xff;
    assert_eq!(
        ct.lookup(&Frame::decode(&bytes), Duration::ZERO)
            .unwrap()
            .0
            .state,
        StateSet::INVALID
    );
}

#[test]
fn mid_stream_ack_is_picked_up() {
    let mut ct = Conntrack::new();
    assert_eq!(see(&mut ct, &tcp_in(0x10), 0).0, StateSet::NEW);
    assert_eq!(
        see(&mut ct, &tcp_out(0x10), 0),
        (StateSet::ESTABLISHED, CtDir::Reply)
    );
}

#[test]
fn udp_reply_and_timeout() {
    let out = Frame::decode(&build::ipv4(
        vm(),
        "10.0.0.5".parse().unwrap(),
        "10.0.0.9".parse().unwrap(),
        L4::Udp(40000, 53),
    ));
    let back = Frame::decode(&build::ipv4(
        peer(),
        "10.0.0.9".parse().unwrap(),
        "10.0.0.5".parse().unwrap(),
        L4::Udp(53, 40000),
    ));
    let mut ct = Conntrack::new();
    assert_eq!(see(&mut ct, &out, 0), (StateSet::NEW, CtDir::Original));
    assert_eq!(
        see(&mut ct, &back, 1),
        (StateSet::ESTABLISHED, CtDir::Reply)
    );
    // Replied UDP lives 120 s after the last packet.
    assert_eq!(see(&mut ct, &out, 100).0, StateSet::ESTABLISHED);
    assert_eq!(see(&mut ct, &back, 300), (StateSet::NEW, CtDir::Original));
    // Unreplied UDP lives 30 s.
    let mut ct = Conntrack::new();
    see(&mut ct, &out, 0);
    assert_eq!(see(&mut ct, &back, 31), (StateSet::NEW, CtDir::Original));
}

#[test]
fn icmp_echo_and_errors() {
    let mut ct = Conntrack::new();
    let req = Frame::decode(&build::ipv4(
        vm(),
        "10.0.0.5".parse().unwrap(),
        "10.0.0.9".parse().unwrap(),
        L4::Icmp(8, 0),
    ));
    let rep = Frame::decode(&build::ipv4(
        peer(),
        "10.0.0.9".parse().unwrap(),
        "10.0.0.5".parse().unwrap(),
        L4::Icmp(0, 0),
    ));
    assert_eq!(
        see(&mut ct, &rep, 0).0,
        StateSet::INVALID,
        "a reply without a request"
    );
    assert_eq!(see(&mut ct, &req, 0), (StateSet::NEW, CtDir::Original));
    assert_eq!(see(&mut ct, &rep, 0), (StateSet::ESTABLISHED, CtDir::Reply));

    // A port-unreachable quoting a tracked UDP flow is RELATED; quoting nothing, INVALID.
    let udp = build::ipv4(
        vm(),
        "10.0.0.5".parse().unwrap(),
        "10.0.0.9".parse().unwrap(),
        L4::Udp(40000, 53),
    );
    see(&mut ct, &Frame::decode(&udp), 0);
    let quoted = &udp[14..14 + 28];
    let mut icmp = build::ipv4(
        peer(),
        "10.0.0.9".parse().unwrap(),
        "10.0.0.5".parse().unwrap(),
        L4::Icmp(3, 3),
    );
    // Replace the 8 zero bytes after the ICMP header with the quoted packet (checksums do not
    // matter to the tracker's classification of errors).
    icmp.truncate(14 + 20 + 8);
    icmp.extend_from_slice(quoted);
    let len = (icmp.len() - 14) as u16;
    icmp[16..18].copy_from_slice(&len.to_be_bytes());
    let f = Frame::decode(&icmp);
    assert_eq!(
        ct.lookup(&f, Duration::ZERO).unwrap().0.state,
        StateSet::RELATED
    );
    let mut ct2 = Conntrack::new();
    assert_eq!(
        ct2.lookup(&f, Duration::ZERO).unwrap().0.state,
        StateSet::INVALID
    );
}

#[test]
fn non_ip_is_not_tracked() {
    let mut ct = Conntrack::new();
    let arp = build::raw(vm(), 0x0806, &[0; 28]);
    assert!(ct.lookup(&Frame::decode(&arp), Duration::ZERO).is_none());
}
