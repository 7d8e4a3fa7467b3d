//! The language table: every element, attribute, value type, doc line and libvirt quirk of
//! nwfilter, in one place.
//!
//! The XML reader, the checker, the writer and (later) the DSL, hover and completion all read
//! this table; none keeps a list of its own. Adding an attribute means adding one line here.

use serde::Serialize;

/// The two layers libvirt splits a filter into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// ebtables: rules without protocol or with mac, vlan, stp, arp, rarp, ip, ipv6.
    Ethernet,
    /// iptables/ip6tables: tcp ... all-ipv6.
    Ip,
}

/// The address family of an IP-layer protocol element.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Not an IP-layer element.
    None,
    /// iptables.
    V4,
    /// ip6tables.
    V6,
}

/// What kind of text an attribute value must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ValueType {
    /// `xx:xx:xx:xx:xx:xx`.
    Mac,
    /// A MAC address used as a mask; its bits must be contiguous.
    MacMask,
    /// Dotted-quad IPv4 address.
    Ipv4,
    /// IPv4 mask: prefix length 0-32 or contiguous dotted mask.
    Ipv4Mask,
    /// IPv6 address.
    Ipv6,
    /// IPv6 mask: prefix length 0-128 or contiguous address-form mask.
    Ipv6Mask,
    /// Unsigned number in `min..=max`, decimal or `0x` hex (bare hex too when `hex`).
    Number {
        /// Smallest accepted value.
        min: u32,
        /// Largest accepted value.
        max: u32,
        /// Whether bare hex digits (`ff`) are read as hex.
        hex: bool,
    },
    /// Ethernet protocol: a number from `min` to 0xffff, or arp, rarp, ipv4, ipv6, vlan. libvirt
    /// takes 0x600 for `protocolid` and 0x3c (the minimum frame length) for `encap-protocol`
    /// (measured with `virsh nwfilter-define`).
    EtherType {
        /// Smallest accepted number.
        min: u32,
    },
    /// IP protocol: 0-255 or tcp, udp, udplite, esp, ah, icmp, igmp, sctp, icmpv6.
    IpProtocol,
    /// ARP opcode: a number or Request, Reply, ... (1-9).
    ArpOpcode,
    /// `true`/`1`/`yes` are true, everything else false.
    Bool,
    /// Free text up to 256 characters.
    Comment,
    /// Comma list of NEW, ESTABLISHED, RELATED, INVALID, NONE.
    States,
    /// `MASK/SET`, each a comma list of SYN, ACK, URG, PSH, FIN, RST, ALL, NONE.
    TcpFlags,
    /// Name of an ipset: 1 to 31 letters, digits, blanks and `_.-:+`.
    IpsetName,
    /// 1 to 6 comma-separated `src`/`dst`, in any case.
    IpsetFlags,
}

impl ValueType {
    /// A short phrase for "expected ..." messages.
    pub fn describe(&self) -> String {
        match self {
            ValueType::Mac => "a MAC address like 52:54:00:12:34:56".into(),
            ValueType::MacMask => "a MAC mask like ff:ff:ff:00:00:00 (contiguous bits)".into(),
            ValueType::Ipv4 => "an IPv4 address like 10.0.0.1".into(),
            ValueType::Ipv4Mask => "an IPv4 prefix length 0-32 or a mask like 255.255.255.0".into(),
            ValueType::Ipv6 => "an IPv6 address like fe80::1".into(),
            ValueType::Ipv6Mask => "an IPv6 prefix length 0-128 or a contiguous mask".into(),
            ValueType::Number { min, max, .. } => {
                format!("a number from {min} to {max} (decimal or 0x hex)")
            }
            ValueType::EtherType { min } => format!(
                "an ethernet protocol: arp, rarp, ipv4, ipv6, vlan or a number from 0x{min:x} to 0xffff"
            ),
            ValueType::IpProtocol => {
                "an IP protocol: tcp, udp, udplite, esp, ah, icmp, igmp, sctp, icmpv6 or 0-255"
                    .into()
            }
            ValueType::ArpOpcode => format!(
                "an ARP opcode: {} or a number from 0 to 65535",
                ARP_OPCODES
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            ValueType::Bool => "a boolean: true, false, 1, 0, yes or no".into(),
            ValueType::Comment => "text of at most 256 characters".into(),
            ValueType::States => {
                "a comma list of NEW, ESTABLISHED, RELATED, INVALID or NONE".into()
            }
            ValueType::TcpFlags => {
                "MASK/SET, each a comma list of SYN, ACK, URG, PSH, FIN, RST, ALL or NONE".into()
            }
            ValueType::IpsetName => {
                "an ipset name of 1-31 letters, digits, blanks and _ . - : +".into()
            }
            ValueType::IpsetFlags => "1 to 6 comma-separated src/dst (in any case)".into(),
        }
    }
}

/// The packet property an attribute (or a group of attributes) tests.
///
/// Address and mask, start and end, base and `-hi` attributes name one field together; the
/// instantiated program has one predicate per field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
#[allow(missing_docs)]
pub enum Field {
    SrcMac,
    DstMac,
    EtherType,
    VlanId,
    VlanEncap,
    StpType,
    StpFlags,
    StpRootPriority,
    StpRootAddr,
    StpRootCost,
    StpSenderPriority,
    StpSenderAddr,
    StpPort,
    StpMsgAge,
    StpMaxAge,
    StpHelloTime,
    StpForwardDelay,
    ArpHwType,
    ArpProtoType,
    ArpOpcode,
    ArpSrcMac,
    ArpDstMac,
    ArpSrcIp,
    ArpDstIp,
    ArpGratuitous,
    SrcIp,
    DstIp,
    SrcIpRange,
    DstIpRange,
    IpProtocol,
    SrcPort,
    DstPort,
    Dscp,
    /// The whole IPv4 TOS byte (what libvirt's ebtables `dscp` really compares).
    Tos,
    IcmpType,
    IcmpCode,
    ConnlimitAbove,
    State,
    Ipset,
    TcpFlags,
    TcpOption,
    /// Not a match: the rule's comment.
    Comment,
}

impl Field {
    /// The field tested on the other side of the frame (source <-> destination), used when
    /// libvirt mirrors a rule for the opposite direction.
    pub fn swapped(self) -> Field {
        match self {
            Field::SrcMac => Field::DstMac,
            Field::DstMac => Field::SrcMac,
            Field::ArpSrcMac => Field::ArpDstMac,
            Field::ArpDstMac => Field::ArpSrcMac,
            Field::ArpSrcIp => Field::ArpDstIp,
            Field::ArpDstIp => Field::ArpSrcIp,
            Field::SrcIp => Field::DstIp,
            Field::DstIp => Field::SrcIp,
            Field::SrcIpRange => Field::DstIpRange,
            Field::DstIpRange => Field::SrcIpRange,
            Field::SrcPort => Field::DstPort,
            Field::DstPort => Field::SrcPort,
            f => f,
        }
    }
}

/// Which part of a field an attribute gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    /// The main value (address, start of a range, the number).
    Value,
    /// The mask of an address (ignored without the address).
    Mask,
    /// The end of a range (ignored without the start).
    End,
    /// Extra flags of the field (ipsetflags).
    Flags,
}

/// One attribute of a protocol element.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct AttrSpec {
    /// The XML attribute name.
    pub name: &'static str,
    /// The value type.
    pub ty: ValueType,
    /// The field it tests.
    pub field: Field,
    /// Which part of the field.
    pub part: Part,
    /// With `match='no'`, libvirt copies the negation of this attribute onto this one
    /// (ignoring the element's own `match`). `None`: the attribute's own negation counts.
    pub neg_from: Option<&'static str>,
    /// One line of documentation.
    pub doc: &'static str,
}

const fn attr(name: &'static str, ty: ValueType, field: Field, doc: &'static str) -> AttrSpec {
    AttrSpec {
        name,
        ty,
        field,
        part: Part::Value,
        neg_from: None,
        doc,
    }
}

const fn part(
    name: &'static str,
    ty: ValueType,
    field: Field,
    part: Part,
    neg_from: &'static str,
    doc: &'static str,
) -> AttrSpec {
    AttrSpec {
        name,
        ty,
        field,
        part,
        neg_from: Some(neg_from),
        doc,
    }
}

/// libvirt reads every attribute number as decimal first and then as hex (a port `ff` is 255).
const fn num(min: u32, max: u32) -> ValueType {
    ValueType::Number {
        min,
        max,
        hex: true,
    }
}

const fn hexnum(min: u32, max: u32) -> ValueType {
    ValueType::Number {
        min,
        max,
        hex: true,
    }
}

use Field as F;
use ValueType as T;

const SRCMACADDR: AttrSpec = attr("srcmacaddr", T::Mac, F::SrcMac, "Source MAC address.");
const SRCMACMASK: AttrSpec = part(
    "srcmacmask",
    T::MacMask,
    F::SrcMac,
    Part::Mask,
    "srcmacaddr",
    "Mask applied to the source MAC address.",
);
const DSTMACADDR: AttrSpec = attr("dstmacaddr", T::Mac, F::DstMac, "Destination MAC address.");
const DSTMACMASK: AttrSpec = part(
    "dstmacmask",
    T::MacMask,
    F::DstMac,
    Part::Mask,
    "dstmacaddr",
    "Mask applied to the destination MAC address.",
);
const COMMENT: AttrSpec = attr(
    "comment",
    T::Comment,
    F::Comment,
    "Text attached to the generated rule (up to 256 characters).",
);

const fn ip_addr(v6: bool, src: bool) -> AttrSpec {
    attr(
        if src { "srcipaddr" } else { "dstipaddr" },
        if v6 { T::Ipv6 } else { T::Ipv4 },
        if src { F::SrcIp } else { F::DstIp },
        if src {
            "Source IP address."
        } else {
            "Destination IP address."
        },
    )
}

const fn ip_mask(v6: bool, src: bool) -> AttrSpec {
    part(
        if src { "srcipmask" } else { "dstipmask" },
        if v6 { T::Ipv6Mask } else { T::Ipv4Mask },
        if src { F::SrcIp } else { F::DstIp },
        Part::Mask,
        if src { "srcipaddr" } else { "dstipaddr" },
        if src {
            "Mask (prefix length or dotted) applied to the source IP address."
        } else {
            "Mask (prefix length or dotted) applied to the destination IP address."
        },
    )
}

const fn ip_from(v6: bool, src: bool) -> AttrSpec {
    attr(
        if src { "srcipfrom" } else { "dstipfrom" },
        if v6 { T::Ipv6 } else { T::Ipv4 },
        if src { F::SrcIpRange } else { F::DstIpRange },
        if src {
            "Start of a range of source IP addresses."
        } else {
            "Start of a range of destination IP addresses."
        },
    )
}

const fn ip_to(v6: bool, src: bool) -> AttrSpec {
    part(
        if src { "srcipto" } else { "dstipto" },
        if v6 { T::Ipv6 } else { T::Ipv4 },
        if src { F::SrcIpRange } else { F::DstIpRange },
        Part::End,
        if src { "srcipfrom" } else { "dstipfrom" },
        if src {
            "End of a range of source IP addresses."
        } else {
            "End of a range of destination IP addresses."
        },
    )
}

/// Port attributes. On tcp/udp/sctp libvirt takes every port attribute's negation from
/// `srcportstart` (`tied`); on ip/ipv6 each end follows its own start.
const fn ports(tied: bool) -> [AttrSpec; 4] {
    [
        attr(
            "srcportstart",
            num(0, 65535),
            F::SrcPort,
            "Start of the source port range.",
        ),
        part(
            "srcportend",
            num(0, 65535),
            F::SrcPort,
            Part::End,
            "srcportstart",
            "End of the source port range (needs srcportstart).",
        ),
        if tied {
            part(
                "dstportstart",
                num(0, 65535),
                F::DstPort,
                Part::Value,
                "srcportstart",
                "Start of the destination port range.",
            )
        } else {
            attr(
                "dstportstart",
                num(0, 65535),
                F::DstPort,
                "Start of the destination port range.",
            )
        },
        part(
            "dstportend",
            num(0, 65535),
            F::DstPort,
            Part::End,
            if tied { "srcportstart" } else { "dstportstart" },
            "End of the destination port range (needs dstportstart).",
        ),
    ]
}

const DSCP: AttrSpec = attr(
    "dscp",
    num(0, 63),
    F::Dscp,
    "DSCP value 0-63 (libvirt emits it as the whole TOS byte; see warning W0207).",
);

/// How a protocol element's attributes are assembled.
const fn concat<const A: usize, const B: usize, const N: usize>(
    a: [AttrSpec; A],
    b: [AttrSpec; B],
) -> [AttrSpec; N] {
    let mut out = [COMMENT; N];
    let mut i = 0;
    while i < A {
        out[i] = a[i];
        i += 1;
    }
    let mut j = 0;
    while j < B {
        out[A + j] = b[j];
        j += 1;
    }
    out
}

/// The attributes every IP-layer element has.
const fn ip_base(v6: bool) -> [AttrSpec; 15] {
    [
        SRCMACADDR,
        ip_addr(v6, true),
        ip_mask(v6, true),
        ip_addr(v6, false),
        ip_mask(v6, false),
        ip_from(v6, true),
        ip_to(v6, true),
        ip_from(v6, false),
        // libvirt's C table gives `dstipto` the IPv4 type even on IPv6 elements (a bug we mirror).
        ip_to(false, false),
        DSCP,
        attr(
            "connlimit-above",
            ValueType::Number {
                min: 0,
                max: 65535,
                hex: false,
            },
            F::ConnlimitAbove,
            "Match when the VM has more than this many connections to the same address.",
        ),
        attr(
            "state",
            T::States,
            F::State,
            "Connection states to match (replaces libvirt's automatic state matching).",
        ),
        attr(
            "ipset",
            T::IpsetName,
            F::Ipset,
            "Name of an ipset the addresses must be in.",
        ),
        part(
            "ipsetflags",
            T::IpsetFlags,
            F::Ipset,
            Part::Flags,
            "ipset",
            "Which addresses are looked up in the ipset: 1 to 6 of src/dst (default src).",
        ),
        COMMENT,
    ]
}

static MAC_ATTRS: [AttrSpec; 6] = [
    SRCMACADDR,
    SRCMACMASK,
    DSTMACADDR,
    DSTMACMASK,
    attr(
        "protocolid",
        T::EtherType { min: 0x600 },
        F::EtherType,
        "Ethernet protocol: arp, rarp, ipv4, ipv6, vlan or a number >= 0x600.",
    ),
    COMMENT,
];

static VLAN_ATTRS: [AttrSpec; 7] = [
    SRCMACADDR,
    SRCMACMASK,
    DSTMACADDR,
    DSTMACMASK,
    attr(
        "vlanid",
        hexnum(0, 4095),
        F::VlanId,
        "VLAN id 0-4095 (libvirt defines 4095, but ebtables refuses to apply it: E0120).",
    ),
    attr(
        "encap-protocol",
        T::EtherType { min: 0x3c },
        F::VlanEncap,
        "Ethernet protocol inside the VLAN tag (libvirt mangles numeric values; see W0208).",
    ),
    COMMENT,
];

const fn stp_range(
    name: &'static str,
    hi: &'static str,
    max: u32,
    field: Field,
    doc: &'static str,
    doc_hi: &'static str,
) -> [AttrSpec; 2] {
    [
        attr(name, hexnum(0, max), field, doc),
        part(hi, hexnum(0, max), field, Part::End, name, doc_hi),
    ]
}

static STP_ATTRS: [AttrSpec; 25] = {
    let rp = stp_range(
        "root-priority",
        "root-priority-hi",
        65535,
        F::StpRootPriority,
        "Root bridge priority (start of range).",
        "Root bridge priority, end of range.",
    );
    let rc = stp_range(
        "root-cost",
        "root-cost-hi",
        u32::MAX,
        F::StpRootCost,
        "Root path cost (start of range).",
        "Root path cost, end of range.",
    );
    let sp = stp_range(
        "sender-priority",
        "sender-priority-hi",
        65535,
        F::StpSenderPriority,
        "Sending bridge priority (start of range).",
        "Sending bridge priority, end of range.",
    );
    let port = stp_range(
        "port",
        "port-hi",
        65535,
        F::StpPort,
        "Port identifier (start of range).",
        "Port identifier, end of range.",
    );
    let age = stp_range(
        "age",
        "age-hi",
        65535,
        F::StpMsgAge,
        "Message age timer (start of range).",
        "Message age timer, end of range.",
    );
    let max_age = stp_range(
        "max-age",
        "max-age-hi",
        65535,
        F::StpMaxAge,
        "Maximum age timer (start of range).",
        "Maximum age timer, end of range.",
    );
    let hello = stp_range(
        "hello-time",
        "hello-time-hi",
        65535,
        F::StpHelloTime,
        "Hello time timer (start of range).",
        "Hello time timer, end of range.",
    );
    let fwd = stp_range(
        "forward-delay",
        "forward-delay-hi",
        65535,
        F::StpForwardDelay,
        "Forward delay timer (start of range).",
        "Forward delay timer, end of range.",
    );
    [
        SRCMACADDR,
        SRCMACMASK,
        attr("type", hexnum(0, 255), F::StpType, "BPDU type."),
        attr("flags", hexnum(0, 255), F::StpFlags, "BPDU flags."),
        rp[0],
        rp[1],
        attr(
            "root-address",
            T::Mac,
            F::StpRootAddr,
            "Root bridge MAC address.",
        ),
        part(
            "root-address-mask",
            T::MacMask,
            F::StpRootAddr,
            Part::Mask,
            "root-address",
            "Mask of the root bridge MAC address.",
        ),
        rc[0],
        rc[1],
        sp[0],
        sp[1],
        attr(
            "sender-address",
            T::Mac,
            F::StpSenderAddr,
            "Sending bridge MAC address.",
        ),
        part(
            "sender-address-mask",
            T::MacMask,
            F::StpSenderAddr,
            Part::Mask,
            "sender-address",
            "Mask of the sending bridge MAC address.",
        ),
        port[0],
        port[1],
        age[0],
        age[1],
        max_age[0],
        max_age[1],
        hello[0],
        hello[1],
        fwd[0],
        fwd[1],
        COMMENT,
    ]
};

static ARP_ATTRS: [AttrSpec; 15] = [
    SRCMACADDR,
    SRCMACMASK,
    DSTMACADDR,
    DSTMACMASK,
    attr(
        "hwtype",
        hexnum(0, 65535),
        F::ArpHwType,
        "ARP hardware type. Needs the whole 8-byte ARP header, also when negated.",
    ),
    attr(
        "protocoltype",
        hexnum(0, 65535),
        F::ArpProtoType,
        "ARP protocol type (0x800 for IPv4). Needs the whole 8-byte ARP header, also when negated.",
    ),
    attr(
        "opcode",
        T::ArpOpcode,
        F::ArpOpcode,
        "ARP opcode (Request, Reply, ... or a number). Needs the whole 8-byte ARP header, also when negated.",
    ),
    attr(
        "arpsrcmacaddr",
        T::Mac,
        F::ArpSrcMac,
        "Sender hardware address in the ARP payload. Tested only when the hardware type is 1 (Ethernet) and the hardware length 6; otherwise the rule does not match, negated or not.",
    ),
    attr(
        "arpdstmacaddr",
        T::Mac,
        F::ArpDstMac,
        "Target hardware address in the ARP payload. Read after a sender IP of the header's protocol length, and tested only when the hardware type is 1 (Ethernet) and the hardware length 6; otherwise the rule does not match, negated or not.",
    ),
    attr(
        "arpsrcipaddr",
        T::Ipv4,
        F::ArpSrcIp,
        "Sender IP address in the ARP payload. Read after a sender MAC of the header's hardware length, and tested only when the protocol type is 0x800 and the protocol length 4, and the target IP is in the frame too; otherwise the rule does not match, negated or not.",
    ),
    part(
        "arpsrcipmask",
        T::Ipv4Mask,
        F::ArpSrcIp,
        Part::Mask,
        "arpsrcipaddr",
        "Mask of the sender IP address in the ARP payload.",
    ),
    attr(
        "arpdstipaddr",
        T::Ipv4,
        F::ArpDstIp,
        "Target IP address in the ARP payload. Read at 12 + twice the header's hardware length, and tested only when the protocol type is 0x800 and the protocol length 4; otherwise the rule does not match, negated or not.",
    ),
    part(
        "arpdstipmask",
        T::Ipv4Mask,
        F::ArpDstIp,
        Part::Mask,
        "arpdstipaddr",
        "Mask of the target IP address in the ARP payload.",
    ),
    attr(
        "gratuitous",
        T::Bool,
        F::ArpGratuitous,
        "Match gratuitous ARP packets (sender IP equals target IP). Read like arpsrcipaddr and arpdstipaddr: only for protocol type 0x800 with 4-byte addresses; otherwise the rule does not match, negated or not.",
    ),
    COMMENT,
];

static IP_ATTRS: [AttrSpec; 15] = {
    let p = ports(false);
    [
        SRCMACADDR,
        SRCMACMASK,
        DSTMACADDR,
        DSTMACMASK,
        ip_addr(false, true),
        ip_mask(false, true),
        ip_addr(false, false),
        ip_mask(false, false),
        attr(
            "protocol",
            T::IpProtocol,
            F::IpProtocol,
            "IP protocol number or name.",
        ),
        p[0],
        p[1],
        p[2],
        p[3],
        DSCP,
        COMMENT,
    ]
};

static IPV6_ATTRS: [AttrSpec; 18] = {
    let p = ports(false);
    [
        SRCMACADDR,
        SRCMACMASK,
        DSTMACADDR,
        DSTMACMASK,
        ip_addr(true, true),
        ip_mask(true, true),
        ip_addr(true, false),
        ip_mask(true, false),
        attr(
            "protocol",
            T::IpProtocol,
            F::IpProtocol,
            "IP protocol number or name.",
        ),
        p[0],
        p[1],
        p[2],
        p[3],
        attr(
            "type",
            num(0, 255),
            F::IcmpType,
            "ICMPv6 type (start of range).",
        ),
        part(
            "typeend",
            num(0, 255),
            F::IcmpType,
            Part::End,
            "type",
            "ICMPv6 type, end of range.",
        ),
        attr(
            "code",
            num(0, 255),
            F::IcmpCode,
            "ICMPv6 code (start of range).",
        ),
        part(
            "codeend",
            num(0, 255),
            F::IcmpCode,
            Part::End,
            "code",
            "ICMPv6 code, end of range.",
        ),
        COMMENT,
    ]
};

const TCP_OPTION: AttrSpec = attr("option", num(0, 255), F::TcpOption, "TCP option kind.");
const TCP_FLAGS: AttrSpec = attr(
    "flags",
    T::TcpFlags,
    F::TcpFlags,
    "TCP flags as MASK/SET, e.g. SYN,ACK/SYN.",
);

static TCP_ATTRS: [AttrSpec; 21] = concat(
    concat::<15, 4, 19>(ip_base(false), ports(true)),
    [TCP_OPTION, TCP_FLAGS],
);
static TCP6_ATTRS: [AttrSpec; 21] = concat(
    concat::<15, 4, 19>(ip_base(true), ports(true)),
    [TCP_OPTION, TCP_FLAGS],
);
static UDP_ATTRS: [AttrSpec; 19] = concat(ip_base(false), ports(true));
static UDP6_ATTRS: [AttrSpec; 19] = concat(ip_base(true), ports(true));
static PLAIN_ATTRS: [AttrSpec; 15] = ip_base(false);
static PLAIN6_ATTRS: [AttrSpec; 15] = ip_base(true);

const fn icmp_attrs(v6: bool) -> [AttrSpec; 17] {
    concat(
        ip_base(v6),
        [
            attr("type", num(0, 255), F::IcmpType, "ICMP type."),
            part(
                "code",
                num(0, 255),
                F::IcmpCode,
                Part::Value,
                "type",
                "ICMP code (libvirt uses it only together with type).",
            ),
        ],
    )
}

static ICMP_ATTRS: [AttrSpec; 17] = icmp_attrs(false);
static ICMP6_ATTRS: [AttrSpec; 17] = icmp_attrs(true);

/// One protocol element.
#[derive(Debug, Serialize)]
pub struct ProtoSpec {
    /// Element name.
    pub name: &'static str,
    /// The layer its rules go to.
    pub layer: Layer,
    /// Address family (IP layer only).
    pub family: Family,
    /// IP protocol number the element implies (IP layer), if any.
    pub ip_protocol: Option<u8>,
    /// Its attributes.
    #[serde(skip)]
    pub attrs: &'static [AttrSpec],
    /// Earlier spellings of its attributes, (old name, today's attribute): names libvirt's
    /// parser does not know (it ignores them) that an author most likely meant as today's.
    #[serde(skip)]
    pub former: &'static [(&'static str, &'static str)],
    /// One line of documentation.
    pub doc: &'static str,
}

impl ProtoSpec {
    /// The attribute with this name.
    pub fn attr(&self, name: &str) -> Option<&'static AttrSpec> {
        self.attrs.iter().find(|a| a.name == name)
    }

    /// Today's attribute for an earlier spelling of it (`srcipaddr` on `<arp>`).
    pub fn former_name(&self, name: &str) -> Option<&'static AttrSpec> {
        self.former
            .iter()
            .find(|(old, _)| *old == name)
            .and_then(|(_, new)| self.attr(new))
    }

    /// Whether this protocol has port attributes.
    pub fn has_ports(&self) -> bool {
        self.attr("srcportstart").is_some()
    }
}

macro_rules! proto {
    ($name:expr, $layer:ident, $fam:ident, $ipp:expr, $attrs:expr, $doc:expr) => {
        proto!($name, $layer, $fam, $ipp, $attrs, [], $doc)
    };
    ($name:expr, $layer:ident, $fam:ident, $ipp:expr, $attrs:expr, $former:expr, $doc:expr) => {
        ProtoSpec {
            name: $name,
            layer: Layer::$layer,
            family: Family::$fam,
            ip_protocol: $ipp,
            attrs: &$attrs,
            former: &$former,
            doc: $doc,
        }
    };
}

/// The ARP payload's addresses as the 2010 proposal of the language spelt them on `<arp>`
/// (`srcipaddr`, `dstipaddr`, like the IP header's); libvirt's parser calls them `arpsrcipaddr`,
/// `arpdstipaddr` and ignores the old names. The masks are listed by the same pattern.
const ARP_FORMER: [(&str, &str); 4] = [
    ("srcipaddr", "arpsrcipaddr"),
    ("srcipmask", "arpsrcipmask"),
    ("dstipaddr", "arpdstipaddr"),
    ("dstipmask", "arpdstipmask"),
];

/// Every protocol element, in the order libvirt's schema lists them.
pub static PROTOCOLS: &[ProtoSpec] = &[
    proto!(
        "mac",
        Ethernet,
        None,
        None,
        MAC_ATTRS,
        "Match on ethernet header fields."
    ),
    proto!(
        "vlan",
        Ethernet,
        None,
        None,
        VLAN_ATTRS,
        "Match 802.1Q VLAN-tagged frames."
    ),
    proto!(
        "stp",
        Ethernet,
        None,
        None,
        STP_ATTRS,
        "Match spanning tree protocol BPDUs."
    ),
    proto!(
        "arp",
        Ethernet,
        None,
        None,
        ARP_ATTRS,
        ARP_FORMER,
        "Match ARP frames."
    ),
    proto!(
        "rarp",
        Ethernet,
        None,
        None,
        ARP_ATTRS,
        ARP_FORMER,
        "Match RARP frames."
    ),
    proto!(
        "ip",
        Ethernet,
        None,
        None,
        IP_ATTRS,
        "Match IPv4 frames in the ethernet layer."
    ),
    proto!(
        "ipv6",
        Ethernet,
        None,
        None,
        IPV6_ATTRS,
        "Match IPv6 frames in the ethernet layer."
    ),
    proto!(
        "tcp",
        Ip,
        V4,
        Some(6),
        TCP_ATTRS,
        "Match TCP over IPv4 (stateful for accept rules)."
    ),
    proto!("udp", Ip, V4, Some(17), UDP_ATTRS, "Match UDP over IPv4."),
    proto!(
        "udplite",
        Ip,
        V4,
        Some(136),
        PLAIN_ATTRS,
        "Match UDP-Lite over IPv4."
    ),
    proto!("esp", Ip, V4, Some(50), PLAIN_ATTRS, "Match ESP over IPv4."),
    proto!("ah", Ip, V4, Some(51), PLAIN_ATTRS, "Match AH over IPv4."),
    proto!(
        "sctp",
        Ip,
        V4,
        Some(132),
        UDP_ATTRS,
        "Match SCTP over IPv4."
    ),
    proto!("icmp", Ip, V4, Some(1), ICMP_ATTRS, "Match ICMP."),
    proto!("igmp", Ip, V4, Some(2), PLAIN_ATTRS, "Match IGMP."),
    proto!(
        "all",
        Ip,
        V4,
        None,
        PLAIN_ATTRS,
        "Match any IPv4 traffic in the IP layer."
    ),
    proto!(
        "tcp-ipv6",
        Ip,
        V6,
        Some(6),
        TCP6_ATTRS,
        "Match TCP over IPv6 (libvirt ignores flags here)."
    ),
    proto!(
        "udp-ipv6",
        Ip,
        V6,
        Some(17),
        UDP6_ATTRS,
        "Match UDP over IPv6."
    ),
    proto!(
        "udplite-ipv6",
        Ip,
        V6,
        Some(136),
        PLAIN6_ATTRS,
        "Match UDP-Lite over IPv6."
    ),
    proto!(
        "esp-ipv6",
        Ip,
        V6,
        Some(50),
        PLAIN6_ATTRS,
        "Match ESP over IPv6."
    ),
    proto!(
        "ah-ipv6",
        Ip,
        V6,
        Some(51),
        PLAIN6_ATTRS,
        "Match AH over IPv6."
    ),
    proto!(
        "sctp-ipv6",
        Ip,
        V6,
        Some(132),
        UDP6_ATTRS,
        "Match SCTP over IPv6."
    ),
    proto!("icmpv6", Ip, V6, Some(58), ICMP6_ATTRS, "Match ICMPv6."),
    proto!(
        "all-ipv6",
        Ip,
        V6,
        None,
        PLAIN6_ATTRS,
        "Match any IPv6 traffic in the IP layer."
    ),
];

/// Attributes libvirt's C parser accepts and applies but its RelaxNG schema (`nwfilter.rng`,
/// used by `virsh nwfilter-define --validate`) does not allow on that element.
pub fn schema_rejects(proto: &ProtoSpec, attr: &str) -> bool {
    match attr {
        "arpsrcipmask" | "arpdstipmask" => matches!(proto.name, "arp" | "rarp"),
        "option" => true,
        "connlimit-above" | "state" | "ipset" | "ipsetflags" => {
            proto.layer == Layer::Ip && proto.family == Family::V6
        }
        _ => false,
    }
}

/// The protocol element with this name.
pub fn protocol(name: &str) -> Option<&'static ProtoSpec> {
    PROTOCOLS.iter().find(|p| p.name == name)
}

/// Rule actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Let the frame through this layer.
    Accept,
    /// Discard the frame.
    Drop,
    /// Discard with an ICMP error or TCP reset (IP layer); a drop in the ethernet layer.
    Reject,
    /// Leave the current (sub-)chain.
    Return,
    /// Go on with the next rule.
    Continue,
}

/// Rule directions, from the VM's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Traffic to the VM.
    In,
    /// Traffic sent by the VM.
    Out,
    /// Both; attributes describe the remote side.
    Inout,
}

/// An enumerated attribute value: its spelling, value and doc line.
pub type EnumEntry<T> = (&'static str, T, &'static str);

/// The canonical spelling of an enumerated value (what the writers emit).
pub fn enum_name<T: PartialEq + Copy>(table: &[EnumEntry<T>], v: T) -> &'static str {
    table
        .iter()
        .find(|(_, x, _)| *x == v)
        .map(|(n, _, _)| *n)
        .expect("every enum value is in the table")
}

/// Values of `action`.
pub static ACTIONS: &[EnumEntry<Action>] = &[
    (
        "accept",
        Action::Accept,
        "Let the frame pass this layer (the other layer still applies).",
    ),
    ("drop", Action::Drop, "Discard the frame silently."),
    (
        "reject",
        Action::Reject,
        "IP layer: discard with an ICMP error or TCP reset. Ethernet layer: same as drop.",
    ),
    (
        "return",
        Action::Return,
        "Leave the current chain; the caller continues.",
    ),
    (
        "continue",
        Action::Continue,
        "Go on with the next rule (ethernet layer only).",
    ),
];

/// Words people write for an action or direction in other firewall languages, and the
/// nwfilter spelling to suggest.
pub static ALIASES: &[(&str, &str)] = &[
    ("allow", "accept"),
    ("permit", "accept"),
    ("deny", "drop"),
    ("block", "drop"),
    ("both", "inout"),
    ("any", "inout"),
    ("ingress", "in"),
    ("egress", "out"),
    ("input", "in"),
    ("output", "out"),
];

/// Values of `direction`.
pub static DIRECTIONS: &[EnumEntry<Direction>] = &[
    ("in", Direction::In, "Traffic delivered to the VM."),
    ("out", Direction::Out, "Traffic sent by the VM."),
    (
        "inout",
        Direction::Inout,
        "Both directions; addresses describe the remote side.",
    ),
];

/// Named ethernet protocols for `protocolid` and `encap-protocol`.
pub static ETHER_TYPES: &[(&str, u16)] = &[
    ("arp", 0x0806),
    ("rarp", 0x8035),
    ("ipv4", 0x0800),
    ("ipv6", 0x86dd),
    ("vlan", 0x8100),
];

/// Named IP protocols for `protocol` on ip/ipv6.
pub static IP_PROTOCOLS: &[(&str, u8)] = &[
    ("tcp", 6),
    ("udp", 17),
    ("udplite", 136),
    ("esp", 50),
    ("ah", 51),
    ("icmp", 1),
    ("igmp", 2),
    ("sctp", 132),
    ("icmpv6", 58),
];

/// Named ARP opcodes.
pub static ARP_OPCODES: &[(&str, u16)] = &[
    ("Request", 1),
    ("Reply", 2),
    ("Request_Reverse", 3),
    ("Reply_Reverse", 4),
    ("DRARP_Request", 5),
    ("DRARP_Reply", 6),
    ("DRARP_Error", 7),
    ("InARP_Request", 8),
    ("ARP_NAK", 9),
];

/// The directions an `ipsetflags` list may name (up to six, comma-separated): each says
/// whether the set is looked up with the packet's source or destination at that dimension.
pub static IPSET_DIRECTIONS: &[(&str, &str)] = &[
    (
        "src",
        "look up the source address (or port) at this dimension of the set",
    ),
    (
        "dst",
        "look up the destination address (or port) at this dimension of the set",
    ),
];

/// Connection states for `state`, as bits.
pub static STATES: &[(&str, u8)] = &[
    ("NEW", 1),
    ("ESTABLISHED", 2),
    ("RELATED", 4),
    ("INVALID", 8),
    ("NONE", 0),
];

/// TCP flag names for `flags`, as bits of the TCP header's flag byte.
pub static TCP_FLAG_NAMES: &[(&str, u8)] = &[
    ("FIN", 0x01),
    ("SYN", 0x02),
    ("RST", 0x04),
    ("PSH", 0x08),
    ("ACK", 0x10),
    ("URG", 0x20),
    ("ALL", 0x3f),
    ("NONE", 0),
];

/// Chain-name prefixes with the protocol they select and their default chain priority.
/// The longest prefix is not special: libvirt tests them in this order.
pub static CHAIN_PREFIXES: &[(&str, i32, &str)] = &[
    ("root", 0, "The root chain every frame enters."),
    (
        "mac",
        -800,
        "Sub-chain for all frames (no protocol test on the jump).",
    ),
    ("vlan", -750, "Sub-chain for 802.1Q frames."),
    (
        "stp",
        0,
        "Sub-chain for STP BPDUs (destination 01:80:c2:00:00:00).",
    ),
    ("arp", -500, "Sub-chain for ARP frames."),
    ("rarp", -400, "Sub-chain for RARP frames."),
    ("ipv4", -700, "Sub-chain for IPv4 frames."),
    ("ipv6", -600, "Sub-chain for IPv6 frames."),
];

/// Longest chain name libvirt accepts.
pub const MAX_CHAIN_NAME: usize = 12;

/// Rule priority when none is given.
pub const DEFAULT_RULE_PRIORITY: i32 = 500;

/// Smallest and largest rule and chain priority.
pub const PRIORITY_RANGE: (i32, i32) = (-1000, 1000);

/// Variables with a meaning fixed by libvirt.
pub static RESERVED_VARIABLES: &[(&str, &str)] = &[
    (
        "MAC",
        "The VM interface's MAC address (from the binding unless given).",
    ),
    (
        "IP",
        "The VM's IPv4 address(es); libvirt learns it at runtime when not given.",
    ),
    ("IPV6", "The VM's IPv6 address(es)."),
    ("DHCPSERVER", "Trusted DHCP server address(es)."),
    ("DHCPSERVERV6", "Trusted DHCPv6 server address(es)."),
    (
        "CTRL_IP_LEARNING",
        "How libvirt learns IP addresses: any, dhcp or none.",
    ),
];

/// An attribute of a structural element (not a protocol element).
#[derive(Debug, Serialize)]
pub struct ElemAttr {
    /// Attribute name.
    pub name: &'static str,
    /// Whether it must be present.
    pub required: bool,
    /// One line of documentation.
    pub doc: &'static str,
}

/// A structural element of a filter document.
#[derive(Debug, Serialize)]
pub struct ElementSpec {
    /// Element name.
    pub name: &'static str,
    /// Elements it may appear in.
    pub parents: &'static [&'static str],
    /// Its attributes.
    pub attrs: &'static [ElemAttr],
    /// One line of documentation.
    pub doc: &'static str,
}

macro_rules! ea {
    ($n:expr, $r:expr, $d:expr) => {
        ElemAttr {
            name: $n,
            required: $r,
            doc: $d,
        }
    };
}

/// The structural elements.
pub static ELEMENTS: &[ElementSpec] = &[
    ElementSpec {
        name: "filter",
        parents: &[],
        attrs: &[
            ea!("name", true, "The filter's unique name, used by filterrefs and bindings."),
            ea!("chain", false, "Chain the filter's rules go to: root (default) or a name starting with mac, vlan, stp, arp, rarp, ipv4, ipv6."),
            ea!("priority", false, "Chain priority -1000..1000; lower runs earlier. Defaults by chain prefix."),
        ],
        doc: "A named set of rules and references to other filters.",
    },
    ElementSpec {
        name: "uuid",
        parents: &["filter"],
        attrs: &[],
        doc: "The filter's UUID (libvirt generates one when absent).",
    },
    ElementSpec {
        name: "filterref",
        parents: &["filter"],
        attrs: &[ea!("filter", true, "Name of the filter to include here.")],
        doc: "Includes another filter's rules, with parameters.",
    },
    ElementSpec {
        name: "parameter",
        parents: &["filterref"],
        attrs: &[
            ea!("name", true, "Variable name ([A-Za-z0-9_]+); repeating it makes a list."),
            ea!("value", true, "Value ([A-Za-z0-9_.:]+)."),
        ],
        doc: "Sets a variable for the referenced filter; caller values win over it.",
    },
    ElementSpec {
        name: "rule",
        parents: &["filter"],
        attrs: &[
            ea!("action", true, "What to do with a matching frame: accept, drop, reject, return, continue."),
            ea!("direction", true, "in (to the VM), out (from the VM) or inout (both)."),
            ea!("priority", false, "Order within the chain, -1000..1000 (default 500); lower runs earlier."),
            ea!("statematch", false, "false or 0 turns off libvirt's automatic connection-state matching."),
        ],
        doc: "One match and an action. At most one protocol element; none matches every frame.",
    },
];

/// The structural element with this name.
pub fn element(name: &str) -> Option<&'static ElementSpec> {
    ELEMENTS.iter().find(|e| e.name == name)
}

/// Default chain priority for a chain name (by prefix), if the name is valid.
pub fn chain_default_priority(chain: &str) -> Option<i32> {
    if chain == "root" {
        return Some(0);
    }
    CHAIN_PREFIXES
        .iter()
        .skip(1)
        .find(|(p, _, _)| chain.starts_with(p))
        .map(|(_, prio, _)| *prio)
}

/// The closest of `candidates` to `word`, if close enough to suggest.
///
/// Names are compared normalised (lower case, `-ipv6` as `v6`, without `-` and `_`), by edit
/// distance (a swap of neighbours is one edit). A word that is the start of a candidate
/// (`dstport` for `dstportstart`), or from six letters on a start with one edit (`dstprot`),
/// counts as one edit more than that start's distance. On a tie the earlier candidate wins (tables list the main attribute of a
/// field before its mask or end).
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let w = normalise(word);
    let wn = w.chars().count();
    let limit = (word.len().max(3) / 3).max(1);
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let cn = normalise(c);
        let full = edit_distance(&w, &cn);
        let full = (full <= limit + usize::from(c.len() > 6)).then_some(full);
        // The word as the candidate's start (its own length, one longer or one shorter):
        // exactly for short words, with one edit from six letters on.
        let start = (wn >= 3 && cn.chars().count() > wn)
            .then(|| {
                (wn - 1..=wn + 1)
                    .map(|n| edit_distance(&w, &cn.chars().take(n).collect::<String>()))
                    .min()
                    .unwrap_or(usize::MAX)
            })
            .filter(|d| *d <= usize::from(wn >= 6))
            .map(|d| d + 1);
        let Some(d) = full.into_iter().chain(start).min() else {
            continue;
        };
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

fn normalise(s: &str) -> String {
    s.to_ascii_lowercase()
        .replace("-ipv6", "v6")
        .chars()
        .filter(|c| *c != '-' && *c != '_')
        .collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut prev2: Vec<usize> = prev.clone();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
            // A swap of two neighbours counts as one edit (`inuot` -> `inout`).
            if i > 0 && j > 0 && *ca == b[j - 1] && a[i - 1] == *cb {
                cur[j + 1] = cur[j + 1].min(prev2[j - 1] + 1);
            }
        }
        prev2 = std::mem::replace(&mut prev, cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_names_are_unique_per_protocol() {
        for p in PROTOCOLS {
            let mut names: Vec<_> = p.attrs.iter().map(|a| a.name).collect();
            names.sort();
            let n = names.len();
            names.dedup();
            assert_eq!(n, names.len(), "duplicate attribute in {}", p.name);
        }
    }

    #[test]
    fn former_names_are_not_attributes_and_name_one() {
        for p in PROTOCOLS {
            for (old, new) in p.former {
                assert!(p.attr(old).is_none(), "{}: {old} is an attribute", p.name);
                assert!(
                    p.attr(new).is_some(),
                    "{}: {new} is not an attribute",
                    p.name
                );
            }
        }
        let arp = protocol("arp").unwrap();
        assert_eq!(arp.former_name("srcipaddr").unwrap().name, "arpsrcipaddr");
        assert_eq!(arp.former_name("dstipaddr").unwrap().name, "arpdstipaddr");
        assert!(protocol("ip").unwrap().former_name("srcipaddr").is_none());
    }

    #[test]
    fn negation_sources_exist() {
        for p in PROTOCOLS {
            for a in p.attrs {
                if let Some(src) = a.neg_from {
                    assert!(
                        p.attr(src).is_some(),
                        "{}: {} copies from missing {}",
                        p.name,
                        a.name,
                        src
                    );
                }
            }
        }
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            did_you_mean("srcipadr", ["srcipaddr", "dstipaddr"]),
            Some("srcipaddr")
        );
        assert_eq!(did_you_mean("zzzz", ["srcipaddr"]), None);
        let tcp: Vec<&str> = protocol("tcp")
            .unwrap()
            .attrs
            .iter()
            .map(|a| a.name)
            .collect();
        assert_eq!(
            did_you_mean("dstport", tcp.iter().copied()),
            Some("dstportstart")
        );
        assert_eq!(
            did_you_mean("dstprot", tcp.iter().copied()),
            Some("dstportstart")
        );
        let protos = PROTOCOLS.iter().map(|p| p.name);
        assert_eq!(did_you_mean("icmp-ipv6", protos), Some("icmpv6"));
        assert_eq!(did_you_mean("inn", ["in", "out", "inout"]), Some("in"));
        assert_eq!(did_you_mean("accpet", ["accept", "drop"]), Some("accept"));
        assert_eq!(did_you_mean("dscp", tcp.iter().copied()), Some("dscp"));
        let ipv6: Vec<&str> = protocol("ipv6")
            .unwrap()
            .attrs
            .iter()
            .map(|a| a.name)
            .collect();
        assert_eq!(did_you_mean("dscp", ipv6.iter().copied()), None);
    }
}
