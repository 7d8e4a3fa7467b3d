//! What each of the 24 standard filters accepts and drops, frame by frame, through the
//! reference interpreter. VM: MAC 52:54:00:00:00:01, IPv4 10.0.0.5, IPv6 2001:db8::5.

use nwf_compiler::binding::read_binding;
use nwf_compiler::diag::Diagnostics;
use nwf_compiler::instantiate::instantiate;
use nwf_compiler::library::Library;
use nwf_compiler::program::{Program, Way};
use nwf_compiler::source::Origin;
use nwf_simulator::build::{self, mac, ArpFields, Eth, BROADCAST, L4};
use nwf_simulator::eval::{evaluate, Context, Verdict};
use nwf_simulator::frame::Frame;
use std::net::{Ipv4Addr, Ipv6Addr};

const VM_MAC: &str = "52:54:00:00:00:01";
const OTHER_MAC: &str = "52:54:00:00:00:99";
const GW_MAC: &str = "52:54:00:00:00:fe";

fn program(filter: &str, params: &[(&str, &str)]) -> Program {
    let mut d = Diagnostics::new();
    let mut lib = Library::with_stdlib(&mut d);
    let ps: String = params
        .iter()
        .map(|(n, v)| format!("<parameter name='{n}' value='{v}'/>"))
        .collect();
    let text = format!(
        "<filterbinding><owner><name>t</name><uuid>8e8ba8c4-0e8b-4d2b-9a47-6b1f2b3c4d5e</uuid></owner>\
         <portdev name='vnet0'/><mac address='{VM_MAC}'/><filterref filter='{filter}'>{ps}</filterref></filterbinding>"
    );
    let id = lib.sources.add("b.xml", Origin::Virtual("b".into()), text);
    let b = read_binding(&lib.sources, id, &mut d).expect("binding");
    let p = instantiate(&lib, &b, &[], &mut d);
    assert!(!d.has_errors(), "{filter}: {:?}", d.items());
    p.expect("program")
}

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn out_eth() -> Eth {
    Eth::new(mac(VM_MAC), mac(OTHER_MAC))
}

fn in_eth() -> Eth {
    Eth::new(mac(OTHER_MAC), mac(VM_MAC))
}

/// IPv4 UDP from the VM (own MAC and IP) to a remote host.
fn udp_out() -> Vec<u8> {
    build::ipv4(
        out_eth(),
        v4("10.0.0.5"),
        v4("10.0.0.9"),
        L4::Udp(40000, 53),
    )
}

fn udp_in() -> Vec<u8> {
    build::ipv4(in_eth(), v4("10.0.0.9"), v4("10.0.0.5"), L4::Udp(53, 40000))
}

fn ipv6_out() -> Vec<u8> {
    build::ipv6(
        out_eth(),
        v6("2001:db8::5"),
        v6("2001:db8::9"),
        L4::Udp(40000, 53),
    )
}

fn ipv6_in() -> Vec<u8> {
    build::ipv6(
        in_eth(),
        v6("2001:db8::9"),
        v6("2001:db8::5"),
        L4::Udp(53, 40000),
    )
}

fn arp_out(sha: &str, spa: &str) -> Vec<u8> {
    build::arp(
        Eth::new(mac(VM_MAC), BROADCAST),
        ArpFields {
            opcode: 1,
            sha: mac(sha),
            spa: v4(spa),
            tha: mac("00:00:00:00:00:00"),
            tpa: v4("10.0.0.9"),
        },
    )
}

fn arp_in() -> Vec<u8> {
    build::arp(
        Eth::new(mac(OTHER_MAC), BROADCAST),
        ArpFields {
            opcode: 1,
            sha: mac(OTHER_MAC),
            spa: v4("10.0.0.9"),
            tha: mac("00:00:00:00:00:00"),
            tpa: v4("10.0.0.5"),
        },
    )
}

/// QEMU's post-migration announcement: RARP "request reverse" about the VM's own MAC.
fn announce(way: Way) -> Vec<u8> {
    let src = if way == Way::FromVm {
        mac(VM_MAC)
    } else {
        mac(OTHER_MAC)
    };
    build::rarp(
        Eth::new(src, BROADCAST),
        ArpFields {
            opcode: 3,
            sha: mac(VM_MAC),
            spa: v4("0.0.0.0"),
            tha: mac(VM_MAC),
            tpa: v4("0.0.0.0"),
        },
    )
}

fn other_rarp() -> Vec<u8> {
    build::rarp(
        Eth::new(mac(VM_MAC), BROADCAST),
        ArpFields {
            opcode: 3,
            sha: mac(OTHER_MAC),
            spa: v4("0.0.0.0"),
            tha: mac(OTHER_MAC),
            tpa: v4("0.0.0.0"),
        },
    )
}

fn dhcp_discover() -> Vec<u8> {
    build::ipv4(
        Eth::new(mac(VM_MAC), BROADCAST),
        v4("0.0.0.0"),
        v4("255.255.255.255"),
        L4::Udp(68, 67),
    )
}

fn dhcp_offer(server: &str) -> Vec<u8> {
    build::ipv4(in_eth(), v4(server), v4("10.0.0.5"), L4::Udp(67, 68))
}

use Verdict::{Accept as A, Drop as D};
use Way::{FromVm as OUT, ToVm as IN};

/// Runs the cases; every mismatch is reported with the rule that decided.
fn check(filter: &str, params: &[(&str, &str)], cases: &[(&str, Way, Vec<u8>, Verdict)]) {
    let p = program(filter, params);
    let cx = Context::default();
    let mut bad = Vec::new();
    for (what, way, bytes, want) in cases {
        let o = evaluate(&p, *way, &Frame::decode(bytes), &cx);
        if o.verdict != *want {
            bad.push(format!(
                "{filter}: {what}: expected {want:?}, got {:?} by {:?} {}",
                o.verdict,
                o.layer,
                o.rule
                    .map(|r| format!("{} ({})", r.location, r.filter))
                    .unwrap_or_default()
            ));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn allow_arp() {
    check(
        "allow-arp",
        &[],
        &[
            ("ARP out", OUT, arp_out(VM_MAC, "10.0.0.5"), A),
            ("ARP in", IN, arp_in(), A),
        ],
    );
}

#[test]
fn allow_dhcp() {
    check(
        "allow-dhcp",
        &[],
        &[
            ("discover", OUT, dhcp_discover(), A),
            ("offer from any server", IN, dhcp_offer("10.0.0.66"), A),
        ],
    );
}

#[test]
fn allow_dhcp_server() {
    check(
        "allow-dhcp-server",
        &[("DHCPSERVER", "10.0.0.1")],
        &[
            ("discover", OUT, dhcp_discover(), A),
            ("offer", IN, dhcp_offer("10.0.0.1"), A),
        ],
    );
}

#[test]
fn allow_dhcpv6() {
    let solicit = build::ipv6(out_eth(), v6("fe80::5"), v6("ff02::1:2"), L4::Udp(546, 547));
    let reply = build::ipv6(in_eth(), v6("fe80::1"), v6("fe80::5"), L4::Udp(547, 546));
    check(
        "allow-dhcpv6",
        &[],
        &[("solicit", OUT, solicit, A), ("reply", IN, reply, A)],
    );
}

#[test]
fn allow_dhcpv6_server() {
    // The shipped filter reads $DHCPSERVER (not $DHCPSERVERV6).
    let reply = build::ipv6(in_eth(), v6("fe80::1"), v6("fe80::5"), L4::Udp(547, 546));
    check(
        "allow-dhcpv6-server",
        &[("DHCPSERVER", "fe80::1")],
        &[("reply from the server", IN, reply, A)],
    );
}

#[test]
fn allow_incoming_and_both_ways() {
    check("allow-incoming-ipv4", &[], &[("IPv4 in", IN, udp_in(), A)]);
    check("allow-incoming-ipv6", &[], &[("IPv6 in", IN, ipv6_in(), A)]);
    check(
        "allow-ipv4",
        &[],
        &[
            ("IPv4 out", OUT, udp_out(), A),
            ("IPv4 in", IN, udp_in(), A),
        ],
    );
    check(
        "allow-ipv6",
        &[],
        &[
            ("IPv6 out", OUT, ipv6_out(), A),
            ("IPv6 in", IN, ipv6_in(), A),
        ],
    );
}

#[test]
fn clean_traffic() {
    let spoofed_ip = build::ipv4(
        out_eth(),
        v4("10.0.0.6"),
        v4("10.0.0.9"),
        L4::Udp(40000, 53),
    );
    let spoofed_mac = build::ipv4(
        Eth::new(mac("52:54:00:00:00:02"), mac(OTHER_MAC)),
        v4("10.0.0.5"),
        v4("10.0.0.9"),
        L4::Udp(1, 2),
    );
    check(
        "clean-traffic",
        &[("IP", "10.0.0.5")],
        &[
            ("own IPv4 out", OUT, udp_out(), A),
            ("IPv4 from another IP", OUT, spoofed_ip, D),
            ("IPv4 from another MAC", OUT, spoofed_mac, D),
            ("DHCP discover from 0.0.0.0", OUT, dhcp_discover(), A),
            ("own ARP", OUT, arp_out(VM_MAC, "10.0.0.5"), A),
            (
                "ARP claiming another IP",
                OUT,
                arp_out(VM_MAC, "10.0.0.6"),
                D,
            ),
            (
                "ARP claiming another MAC",
                OUT,
                arp_out(OTHER_MAC, "10.0.0.5"),
                D,
            ),
            ("IPv6 out", OUT, ipv6_out(), D),
            ("IPv4 in", IN, udp_in(), A),
            ("ARP in", IN, arp_in(), A),
            ("IPv6 in", IN, ipv6_in(), D),
            ("migration announcement", OUT, announce(OUT), A),
            ("other RARP", OUT, other_rarp(), D),
            (
                "unknown ethertype out",
                OUT,
                build::raw(out_eth(), 0x88b5, &[0; 46]),
                D,
            ),
        ],
    );
}

#[test]
fn clean_traffic_gateway() {
    let to_gw = build::ipv4(
        Eth::new(mac(VM_MAC), mac(GW_MAC)),
        v4("10.0.0.5"),
        v4("8.8.8.8"),
        L4::Udp(40000, 53),
    );
    let to_other = udp_out();
    let from_gw = build::ipv4(
        Eth::new(mac(GW_MAC), mac(VM_MAC)),
        v4("8.8.8.8"),
        v4("10.0.0.5"),
        L4::Udp(53, 40000),
    );
    check(
        "clean-traffic-gateway",
        &[("IP", "10.0.0.5"), ("GATEWAY_MAC", GW_MAC)],
        &[
            ("IPv4 to the gateway", OUT, to_gw, A),
            ("IPv4 to another host", OUT, to_other, D),
            ("IPv4 from the gateway", IN, from_gw, A),
            ("IPv4 from another host", IN, udp_in(), D),
            ("ARP out", OUT, arp_out(VM_MAC, "10.0.0.5"), A),
            ("ARP in", IN, arp_in(), A),
        ],
    );
}

#[test]
fn arp_spoofing_filters() {
    check(
        "no-arp-ip-spoofing",
        &[("IP", "10.0.0.5")],
        &[
            ("own IP", OUT, arp_out(VM_MAC, "10.0.0.5"), A),
            ("other IP", OUT, arp_out(VM_MAC, "10.0.0.6"), D),
            ("ARP in", IN, arp_in(), A),
        ],
    );
    check(
        "no-arp-mac-spoofing",
        &[],
        &[
            ("own MAC", OUT, arp_out(VM_MAC, "10.0.0.5"), A),
            ("other MAC", OUT, arp_out(OTHER_MAC, "10.0.0.5"), D),
        ],
    );
    check(
        "no-arp-spoofing",
        &[("IP", "10.0.0.5")],
        &[
            ("own", OUT, arp_out(VM_MAC, "10.0.0.5"), A),
            ("other IP", OUT, arp_out(VM_MAC, "10.0.0.6"), D),
            ("other MAC", OUT, arp_out(OTHER_MAC, "10.0.0.5"), D),
        ],
    );
}

#[test]
fn multicast_filters() {
    let mcast4 = build::ipv4(
        Eth::new(mac(VM_MAC), mac("01:00:5e:00:00:01")),
        v4("10.0.0.5"),
        v4("224.0.0.1"),
        L4::Udp(1, 2),
    );
    let mcast6 = build::ipv6(
        Eth::new(mac(VM_MAC), mac("33:33:00:00:00:01")),
        v6("2001:db8::5"),
        v6("ff02::1"),
        L4::Udp(1, 2),
    );
    check(
        "no-ip-multicast",
        &[],
        &[
            ("to 224.0.0.1", OUT, mcast4, D),
            ("unicast", OUT, udp_out(), A),
        ],
    );
    check(
        "no-ipv6-multicast",
        &[],
        &[
            ("to ff02::1", OUT, mcast6, D),
            ("unicast", OUT, ipv6_out(), A),
        ],
    );
}

#[test]
fn ip_spoofing_filters() {
    let from_zero_tcp = build::ipv4(
        out_eth(),
        v4("0.0.0.0"),
        v4("10.0.0.9"),
        L4::Tcp(1, 2, 0x02),
    );
    check(
        "no-ip-spoofing",
        &[("IP", "10.0.0.5")],
        &[
            ("own IP", OUT, udp_out(), A),
            (
                "other IP",
                OUT,
                build::ipv4(out_eth(), v4("10.0.0.6"), v4("10.0.0.9"), L4::Udp(1, 2)),
                D,
            ),
            ("UDP from 0.0.0.0 (DHCP)", OUT, dhcp_discover(), A),
            ("TCP from 0.0.0.0", OUT, from_zero_tcp, D),
            ("anything in", IN, udp_in(), A),
        ],
    );
    check(
        "no-ipv6-spoofing",
        &[("IPV6", "2001:db8::5")],
        &[
            ("own IPv6", OUT, ipv6_out(), A),
            (
                "link-local UDP",
                OUT,
                build::ipv6(out_eth(), v6("fe80::5"), v6("ff02::1:2"), L4::Udp(546, 547)),
                A,
            ),
            (
                "other IPv6",
                OUT,
                build::ipv6(
                    out_eth(),
                    v6("2001:db8::6"),
                    v6("2001:db8::9"),
                    L4::Udp(1, 2),
                ),
                D,
            ),
        ],
    );
}

#[test]
fn mac_filters() {
    let bcast4 = build::ipv4(
        Eth::new(mac(VM_MAC), BROADCAST),
        v4("10.0.0.5"),
        v4("10.0.0.255"),
        L4::Udp(1, 2),
    );
    check(
        "no-mac-broadcast",
        &[],
        &[
            ("IPv4 broadcast", OUT, bcast4, D),
            ("IPv4 unicast", OUT, udp_out(), A),
            ("ARP broadcast", OUT, arp_out(VM_MAC, "10.0.0.5"), A),
        ],
    );
    let spoofed = build::ipv4(
        Eth::new(mac("52:54:00:00:00:02"), mac(OTHER_MAC)),
        v4("10.0.0.5"),
        v4("10.0.0.9"),
        L4::Udp(1, 2),
    );
    check(
        "no-mac-spoofing",
        &[],
        &[
            ("own MAC", OUT, udp_out(), A),
            ("other MAC", OUT, spoofed, D),
            ("anything in", IN, udp_in(), A),
        ],
    );
}

#[test]
fn no_other_l2_traffic() {
    check(
        "no-other-l2-traffic",
        &[],
        &[
            ("IPv4 out", OUT, udp_out(), D),
            ("IPv4 in", IN, udp_in(), D),
            ("ARP out", OUT, arp_out(VM_MAC, "10.0.0.5"), D),
        ],
    );
}

#[test]
fn rarp_filters() {
    check(
        "no-other-rarp-traffic",
        &[],
        &[
            ("RARP out", OUT, other_rarp(), D),
            ("ARP out", OUT, arp_out(VM_MAC, "10.0.0.5"), A),
        ],
    );
    check(
        "qemu-announce-self",
        &[],
        &[
            ("announcement", OUT, announce(OUT), A),
            (
                "ethertype 0x835 (sic)",
                OUT,
                build::raw(out_eth(), 0x0835, &[0; 46]),
                A,
            ),
            ("other RARP", OUT, other_rarp(), D),
        ],
    );
    check(
        "qemu-announce-self-rarp",
        &[],
        &[
            ("announcement out", OUT, announce(OUT), A),
            ("announcement in", IN, announce(IN), A),
        ],
    );
}

#[test]
fn allow_dhcp_then_drop_lets_all_ipv4_through() {
    // libvirt quirk kept by nwf (reference §7): a frame that matches nothing in a sub-chain is
    // accepted there, so later root rules never see it.
    let mut d = Diagnostics::new();
    let mut lib = Library::with_stdlib(&mut d);
    lib.add_text(
        "combo.xml",
        "<filter name='combo'><filterref filter='allow-dhcp'/><filterref filter='no-other-l2-traffic'/></filter>",
        nwf_compiler::library::Provider::File,
        &mut d,
    );
    let text = format!(
        "<filterbinding><owner><name>t</name><uuid>8e8ba8c4-0e8b-4d2b-9a47-6b1f2b3c4d5e</uuid></owner>\
         <portdev name='vnet0'/><mac address='{VM_MAC}'/><filterref filter='combo'/></filterbinding>"
    );
    let id = lib.sources.add("b.xml", Origin::Virtual("b".into()), text);
    let b = read_binding(&lib.sources, id, &mut d).unwrap();
    let p = instantiate(&lib, &b, &[], &mut d).unwrap();
    let cx = Context::default();
    assert_eq!(
        evaluate(&p, OUT, &Frame::decode(&udp_out()), &cx).verdict,
        A
    );
    assert_eq!(
        evaluate(&p, OUT, &Frame::decode(&arp_out(VM_MAC, "10.0.0.5")), &cx).verdict,
        D
    );
}
