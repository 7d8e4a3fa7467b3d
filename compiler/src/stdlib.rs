//! The standard filters, embedded in the binary.

/// `(name, text)` of every standard filter, sorted by name. The text may be XML or the DSL
/// (see [`crate::library::Library::add_standard`]).
pub static STDLIB: &[(&str, &str)] = &[
    ("allow-arp", include_str!("../../stdlib/allow-arp.xml")),
    (
        "allow-dhcp-server",
        include_str!("../../stdlib/allow-dhcp-server.xml"),
    ),
    ("allow-dhcp", include_str!("../../stdlib/allow-dhcp.xml")),
    (
        "allow-dhcpv6-server",
        include_str!("../../stdlib/allow-dhcpv6-server.xml"),
    ),
    (
        "allow-dhcpv6",
        include_str!("../../stdlib/allow-dhcpv6.xml"),
    ),
    (
        "allow-incoming-ipv4",
        include_str!("../../stdlib/allow-incoming-ipv4.xml"),
    ),
    (
        "allow-incoming-ipv6",
        include_str!("../../stdlib/allow-incoming-ipv6.xml"),
    ),
    ("allow-ipv4", include_str!("../../stdlib/allow-ipv4.xml")),
    ("allow-ipv6", include_str!("../../stdlib/allow-ipv6.xml")),
    (
        "clean-traffic-gateway",
        include_str!("../../stdlib/clean-traffic-gateway.xml"),
    ),
    (
        "clean-traffic",
        include_str!("../../stdlib/clean-traffic.xml"),
    ),
    (
        "no-arp-ip-spoofing",
        include_str!("../../stdlib/no-arp-ip-spoofing.xml"),
    ),
    (
        "no-arp-mac-spoofing",
        include_str!("../../stdlib/no-arp-mac-spoofing.xml"),
    ),
    (
        "no-arp-spoofing",
        include_str!("../../stdlib/no-arp-spoofing.xml"),
    ),
    (
        "no-ip-multicast",
        include_str!("../../stdlib/no-ip-multicast.xml"),
    ),
    (
        "no-ip-spoofing",
        include_str!("../../stdlib/no-ip-spoofing.xml"),
    ),
    (
        "no-ipv6-multicast",
        include_str!("../../stdlib/no-ipv6-multicast.xml"),
    ),
    (
        "no-ipv6-spoofing",
        include_str!("../../stdlib/no-ipv6-spoofing.xml"),
    ),
    (
        "no-mac-broadcast",
        include_str!("../../stdlib/no-mac-broadcast.xml"),
    ),
    (
        "no-mac-spoofing",
        include_str!("../../stdlib/no-mac-spoofing.xml"),
    ),
    (
        "no-other-l2-traffic",
        include_str!("../../stdlib/no-other-l2-traffic.xml"),
    ),
    (
        "no-other-rarp-traffic",
        include_str!("../../stdlib/no-other-rarp-traffic.xml"),
    ),
    (
        "qemu-announce-self-rarp",
        include_str!("../../stdlib/qemu-announce-self-rarp.xml"),
    ),
    (
        "qemu-announce-self",
        include_str!("../../stdlib/qemu-announce-self.xml"),
    ),
];
