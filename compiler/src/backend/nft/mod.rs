//! The nftables backend: the programs of one or more ports compiled to one `nft -f` script
//! that installs them in a single transaction.
//!
//! Layout (see docs/ARCHITECTURE.md, "nftables backend"):
//! - `table bridge nwf`: the ethernet layer. Frames from a VM pass `prerouting` (priority -300,
//!   like ebtables' nat PREROUTING), frames to a VM `postrouting` (priority 300, nat
//!   POSTROUTING); each dispatches by interface *name* through a verdict map to the port's
//!   chains, so ports that do not exist yet still load. The same chains put the port's index in
//!   the packet mark: bits 0-11 for "from port i" (prerouting) and bits 16-27 for "to port i"
//!   (`forward`, priority -200, before br_netfilter hands the packet to the IP layer).
//! - `table inet nwf`: the IP layer, in the `forward` and `input` hooks that bridged traffic
//!   reaches through br_netfilter (this kernel has no bridge conntrack, so `ct state` and
//!   `reject` must run there); it dispatches on the mark bits to the port's chains.
//!
//! Everything that reaches the script is typed (addresses, numbers, interface names checked
//! at binding time), so no value can inject syntax. Constructs nft cannot express exactly are
//! reported (E0401) instead of being emitted with another meaning.

mod json;
pub mod ruleset;

use crate::diag::{Diagnostic, Diagnostics};
use crate::lang::{Family, Field};
use crate::program::{
    CtDir, EthAction, EthRule, IpAction, IpRule, JumpMatch, Program, Provenance, RootEntry, Test,
    TestValue, Way,
};
use crate::value::{MacAddr, StateSet};
use nftables::expr::{
    BinaryOperation, Expression, Meta, MetaKey, NamedExpression, Payload, PayloadBase,
    PayloadField, PayloadRaw, Prefix, Range, SetItem, TcpOption, Verdict, CT,
};
use nftables::stmt::{
    CTCount, Counter, JumpTarget, Mangle, Match, Meter, Operator, Statement, VerdictMap,
};
use nftables::types::{NfFamily, NfHook};
pub use ruleset::{Chain, Expr, Rule, Ruleset, Stmt, Table};
use std::borrow::Cow;

/// Options of the nft backend.
#[derive(Clone, Debug)]
pub struct NftOptions {
    /// Name of the two tables (`bridge` and `inet` families).
    pub table: String,
    /// Add a `counter` to every rule.
    pub counters: bool,
}

impl Default for NftOptions {
    fn default() -> NftOptions {
        NftOptions {
            table: "nwf".into(),
            counters: false,
        }
    }
}

/// Mark bits holding the index of the port a frame came from.
pub const MARK_FROM: u32 = 0x0000_0fff;
/// Mark bits holding the index of the port a frame goes to.
pub const MARK_TO: u32 = 0x0fff_0000;
/// Most ports one script can hold (12 bits of mark each way).
pub const MAX_PORTS: usize = 4095;

/// Compiles the ports' programs to one `nft -f` script. Returns `None` (with diagnostics) if
/// any rule cannot be expressed.
pub fn compile(programs: &[Program], opts: &NftOptions, diags: &mut Diagnostics) -> Option<String> {
    build(programs, opts, diags).map(|r| r.to_text())
}

/// Compiles the ports' programs to a typed ruleset, rendered with [`Ruleset::to_text`] or
/// [`Ruleset::to_json`]. Returns `None` (with diagnostics) if any rule cannot be expressed.
pub fn build(programs: &[Program], opts: &NftOptions, diags: &mut Diagnostics) -> Option<Ruleset> {
    let errors = diags.count(crate::diag::Severity::Error);
    if programs.len() > MAX_PORTS {
        diags.push(Diagnostic::error(
            "E0401",
            format!(
                "{} ports; one ruleset holds at most {MAX_PORTS}",
                programs.len()
            ),
        ));
        return None;
    }
    for (i, p) in programs.iter().enumerate() {
        if let Some(j) = programs[..i].iter().position(|q| q.port == p.port) {
            diags.push(Diagnostic::error(
                "E0402",
                format!(
                    "port `{}` is bound twice (bindings {} and {})",
                    p.port,
                    j + 1,
                    i + 1
                ),
            ));
        }
    }
    let mut c = Compiler {
        arp: ArpLayout::ETHERNET_IPV4,
        opts,
        diags,
        pending: Vec::new(),
        meters: 0,
    };
    let ruleset = c.ruleset(programs);
    (diags.count(crate::diag::Severity::Error) == errors).then_some(ruleset)
}

/// One match of a rule; `mergeable` when it compares one field with one exact value, so
/// that consecutive copies of a rule that differ only there can share a set.
#[derive(Clone, PartialEq)]
struct Part {
    stmt: Stmt,
    mergeable: bool,
}

/// A rule waiting to be written (consecutive lines may merge into one with a set).
struct Line {
    parts: Vec<Part>,
    /// Statements after the matches (meter, verdict).
    tail: Vec<Stmt>,
    comment: Option<String>,
}

struct Compiler<'a> {
    opts: &'a NftOptions,
    diags: &'a mut Diagnostics,
    pending: Vec<Line>,
    /// Meters made so far (connlimit), for unique names.
    meters: usize,
    /// The ARP address lengths the rule being compiled is specialised for (see
    /// [`arp_layouts`]).
    arp: ArpLayout,
}

/// Hardware and protocol address lengths of an ARP/RARP packet, which place its addresses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct ArpLayout {
    hlen: u8,
    plen: u8,
}

impl ArpLayout {
    const ETHERNET_IPV4: ArpLayout = ArpLayout { hlen: 6, plen: 4 };

    /// Bit offsets from the network header: sender IP, target IP, target MAC.
    fn spa(self) -> u32 {
        (8 + u32::from(self.hlen)) * 8
    }
    fn tpa(self) -> u32 {
        (12 + 2 * u32::from(self.hlen)) * 8
    }
    fn tha(self) -> u32 {
        (14 + u32::from(self.plen)) * 8
    }
}

/// The address layouts a rule of the arp/rarp element must be compiled for, and the header
/// conditions every copy carries, after the kernel's arp match (`ebt_arp.c`; the simulator's
/// `frame::Arp` says the same): IP addresses are read only when the protocol is IPv4 with
/// 4-byte addresses, at offsets that depend on the hardware length; MAC addresses only for
/// Ethernet with 6-byte addresses, the target's after a sender IP of the protocol length. nft
/// reads payload at fixed offsets, so a rule whose offsets vary becomes one copy per length
/// (the copies exclude each other by their length test, so their order does not matter).
fn arp_layouts(tests: &[Test]) -> (Vec<ArpLayout>, Vec<(u32, u32, u64)>) {
    let has = |fs: &[Field]| tests.iter().any(|t| fs.contains(&t.field));
    let ip = has(&[Field::ArpSrcIp, Field::ArpDstIp, Field::ArpGratuitous]);
    let mac = has(&[Field::ArpSrcMac, Field::ArpDstMac]);
    let tha = has(&[Field::ArpDstMac]);
    // (bit offset, bits, value) of each header condition.
    let mut guards = Vec::new();
    if ip {
        guards.push((16, 16, 0x0800));
        guards.push((40, 8, 4));
    }
    if mac {
        guards.push((0, 16, 1));
        guards.push((32, 8, 6));
    }
    let std = ArpLayout::ETHERNET_IPV4;
    let layouts = if ip && !mac {
        (0..=255).map(|hlen| ArpLayout { hlen, plen: 4 }).collect()
    } else if tha && !ip {
        (0..=255).map(|plen| ArpLayout { hlen: 6, plen }).collect()
    } else {
        vec![std]
    };
    (layouts, guards)
}

/// Sanitises a string for an nft comment (no quotes, backslashes or control characters;
/// nft limits comments to 128 bytes).
fn comment_text(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| {
            if c == '"' || c == '\\' || c.is_control() {
                '\''
            } else {
                c
            }
        })
        .collect();
    let mut end = clean.len().min(120);
    while !clean.is_char_boundary(end) {
        end -= 1;
    }
    clean[..end].to_string()
}

fn string(s: impl Into<String>) -> Expr {
    Expression::String(Cow::Owned(s.into()))
}

fn field(protocol: &'static str, name: &'static str) -> Expr {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: Cow::Borrowed(protocol),
            field: Cow::Borrowed(name),
        },
    )))
}

fn raw(base: PayloadBase, offset: u32, len: u32) -> Expr {
    Expression::Named(NamedExpression::Payload(Payload::PayloadRaw(PayloadRaw {
        base,
        offset,
        len,
    })))
}

fn meta(key: MetaKey) -> Expr {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

fn ct(key: &'static str) -> Expr {
    Expression::Named(NamedExpression::CT(CT {
        key: Cow::Borrowed(key),
        family: None,
        dir: None,
    }))
}

fn and(a: Expr, b: Expr) -> Expr {
    Expression::BinaryOperation(Box::new(BinaryOperation::AND(a, b)))
}

/// `a | b | c`, as nested pairs: nft's JSON parser takes exactly two operands per `|`.
fn or(items: Vec<Expr>) -> Expr {
    let mut items = items.into_iter();
    let first = items.next().expect("at least one operand");
    items.fold(first, |acc, x| {
        Expression::BinaryOperation(Box::new(BinaryOperation::OR(vec![acc, x])))
    })
}

fn hex(v: u64, digits: usize) -> Expr {
    string(format!("0x{v:0digits$x}"))
}

fn mac(m: MacAddr) -> Expr {
    string(m.to_string())
}

fn mac_hex(m: MacAddr) -> Expr {
    string(format!(
        "0x{}",
        m.0.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

fn range(lo: u32, hi: u32) -> Expr {
    if lo == hi {
        Expression::Number(lo)
    } else {
        Expression::Range(Box::new(Range {
            range: [Expression::Number(lo), Expression::Number(hi)],
        }))
    }
}

/// An address with its prefix length; a full-length prefix is the plain address.
fn prefix(addr: String, len: u8, full: u8) -> Expr {
    if len == full {
        string(addr)
    } else {
        Expression::Named(NamedExpression::Prefix(Prefix {
            addr: Box::new(string(addr)),
            len: len.into(),
        }))
    }
}

fn cmp(left: Expr, negated: bool, right: Expr) -> Stmt {
    Statement::Match(Match {
        left,
        right,
        op: if negated { Operator::NEQ } else { Operator::EQ },
    })
}

fn jump(target: String) -> Stmt {
    Statement::Jump(JumpTarget {
        target: Cow::Owned(target),
    })
}

const TCP_FLAGS: [(u8, &str); 6] = [
    (0x01, "fin"),
    (0x02, "syn"),
    (0x04, "rst"),
    (0x08, "psh"),
    (0x10, "ack"),
    (0x20, "urg"),
];

fn tcp_flags(bits: u8) -> Expr {
    let names: Vec<Expr> = TCP_FLAGS
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| string(*n))
        .collect();
    if names.is_empty() {
        hex(0, 1)
    } else {
        or(names)
    }
}

/// TCP options nft knows by name (others are written by number).
fn tcp_option_name(n: u32) -> Cow<'static, str> {
    Cow::Borrowed(match n {
        0 => "eol",
        1 => "nop",
        2 => "maxseg",
        3 => "window",
        4 => "sack-perm",
        5 => "sack",
        8 => "timestamp",
        19 => "md5sig",
        30 => "mptcp",
        34 => "fastopen",
        _ => return Cow::Owned(format!("@{n}")),
    })
}

/// A positive gratuitous-ARP test in a rule that also requires one exact sender or target IP
/// becomes the requirement that the other address is the same.
fn gratuitous_as_address(t: &Test, all: &[Test]) -> Option<Test> {
    if t.field != Field::ArpGratuitous || t.negated || t.value != (TestValue::Flag { value: true })
    {
        return None;
    }
    all.iter()
        .find_map(|o| match (&o.field, &o.value, o.negated) {
            (Field::ArpSrcIp, TestValue::Ipv4 { prefix: 32, .. }, false) => Some(Test {
                field: Field::ArpDstIp,
                value: o.value.clone(),
                negated: false,
            }),
            (Field::ArpDstIp, TestValue::Ipv4 { prefix: 32, .. }, false) => Some(Test {
                field: Field::ArpSrcIp,
                value: o.value.clone(),
                negated: false,
            }),
            _ => None,
        })
}

/// nft 1.0.6 merges two adjacent `!=` comparisons of neighbouring header fields into one
/// comparison of both, which turns "a != x and b != y" into "(a, b) != (x, y)" (found by the
/// kernel property test). A full-width mask keeps each negated comparison on its own.
fn protect_negation(t: &Test, stmt: Stmt) -> Stmt {
    let single = match &t.value {
        TestValue::Range { lo, hi } => lo == hi,
        TestValue::Mac { mask, .. } => *mask == MacAddr::FULL,
        TestValue::Ipv4 { prefix, .. } => *prefix == 32,
        TestValue::Ipv6 { prefix, .. } => *prefix == 128,
        TestValue::IcmpTypeCode { .. } => true,
        _ => false,
    };
    let Statement::Match(m) = stmt else {
        return stmt;
    };
    // Masked comparisons are already separate; meta expressions are not payload, so nft
    // does not merge them.
    let payload = match &m.left {
        Expression::Named(NamedExpression::Payload(p)) => Some(p),
        _ => None,
    };
    if !single || m.op != Operator::NEQ || payload.is_none() {
        return Statement::Match(m);
    }
    let raw_len = match payload {
        Some(Payload::PayloadRaw(r)) => Some(r.len),
        _ => None,
    };
    let mask = match (t.field, &t.value, raw_len) {
        (_, _, Some(len)) => hex((1u64 << len) - 1, 1),
        (_, TestValue::Mac { .. }, None) => string("ff:ff:ff:ff:ff:ff"),
        (_, TestValue::Ipv4 { .. }, None) => string("255.255.255.255"),
        (_, TestValue::Ipv6 { .. }, None) => string("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        (Field::VlanId, _, None) => hex(0xfff, 1),
        (Field::Tos | Field::IcmpType | Field::IcmpCode, _, None) => hex(0xff, 1),
        _ => hex(0xffff, 1),
    };
    Statement::Match(Match {
        left: and(m.left, mask),
        right: m.right,
        op: m.op,
    })
}

fn is_stp_field(f: Field) -> bool {
    matches!(
        f,
        Field::StpType
            | Field::StpFlags
            | Field::StpRootPriority
            | Field::StpRootAddr
            | Field::StpRootCost
            | Field::StpSenderPriority
            | Field::StpSenderAddr
            | Field::StpPort
            | Field::StpMsgAge
            | Field::StpMaxAge
            | Field::StpHelloTime
            | Field::StpForwardDelay
    )
}

fn fixed(stmt: Stmt) -> Part {
    Part {
        stmt,
        mergeable: false,
    }
}

/// Whether copies of a rule that differ only in this test may share a set: positive tests
/// of one exact address, MAC or port.
fn mergeable(t: &Test, ctx: Ctx) -> bool {
    !t.negated
        && !matches!(ctx, Ctx::Eth(Some("rarp")))
        && match (&t.field, &t.value) {
            (
                Field::SrcMac | Field::DstMac | Field::ArpSrcMac | Field::ArpDstMac,
                TestValue::Mac { mask, .. },
            ) => *mask == MacAddr::FULL,
            (
                Field::SrcIp | Field::DstIp | Field::ArpSrcIp | Field::ArpDstIp,
                TestValue::Ipv4 { prefix, .. },
            ) => *prefix == 32,
            (Field::SrcIp | Field::DstIp, TestValue::Ipv6 { prefix, .. }) => *prefix == 128,
            (Field::SrcPort | Field::DstPort, TestValue::Range { lo, hi }) => lo == hi,
            _ => false,
        }
}

/// Where a test is compiled: its layer and the protocol element of its rule.
#[derive(Clone, Copy)]
enum Ctx<'a> {
    Eth(Option<&'a str>),
    Ip(Family),
}

impl Compiler<'_> {
    fn unsupported(&mut self, origin: &Provenance, what: &str) {
        // Copies of one rule (both directions, list values) would repeat the same report.
        if self
            .diags
            .items()
            .iter()
            .any(|d| d.code == "E0401" && d.span == Some(origin.span))
        {
            return;
        }
        self.diags.push(
            Diagnostic::error("E0401", format!("nftables cannot express {what}"))
                .at(origin.span, "this rule cannot be compiled to nftables")
                .with_note("nwf never emits a rule that would mean something else; remove or rewrite the rule"),
        );
    }

    /// The matches of one test (none for tests expressed elsewhere in the rule, two for an
    /// ICMP type and code).
    fn test(&mut self, t: &Test, ctx: Ctx, origin: &Provenance) -> Option<Vec<Part>> {
        let stmts = self.test_stmts(t, ctx, origin)?;
        let merge = stmts.len() == 1 && mergeable(t, ctx);
        Some(
            stmts
                .into_iter()
                .map(|s| Part {
                    stmt: if t.negated { protect_negation(t, s) } else { s },
                    mergeable: merge,
                })
                .collect(),
        )
    }

    fn test_stmts(&mut self, t: &Test, ctx: Ctx, origin: &Provenance) -> Option<Vec<Stmt>> {
        let n = t.negated;
        let v = &t.value;
        let v6 = matches!(ctx, Ctx::Eth(Some("ipv6")) | Ctx::Ip(Family::V6));
        let ipfam = if v6 { "ip6" } else { "ip" };
        let rarp = matches!(ctx, Ctx::Eth(Some("rarp")));
        let one = |s: Stmt| Some(vec![s]);
        match (t.field, v) {
            (Field::SrcMac | Field::DstMac, TestValue::Mac { addr, mask }) => {
                if *mask == MacAddr::FULL {
                    let f = if t.field == Field::SrcMac {
                        "saddr"
                    } else {
                        "daddr"
                    };
                    one(cmp(field("ether", f), n, mac(*addr)))
                } else {
                    let off = if t.field == Field::SrcMac { 48 } else { 0 };
                    let masked = MacAddr(std::array::from_fn(|i| addr.0[i] & mask.0[i]));
                    one(cmp(
                        and(raw(PayloadBase::LL, off, 48), mac_hex(*mask)),
                        n,
                        mac_hex(masked),
                    ))
                }
            }
            (Field::EtherType, TestValue::Range { lo, .. }) => {
                one(cmp(field("ether", "type"), n, hex((*lo).into(), 4)))
            }
            (Field::VlanId, TestValue::Range { lo, hi }) => {
                one(cmp(field("vlan", "id"), n, range(*lo, *hi)))
            }
            (Field::VlanEncap, TestValue::Range { lo, .. }) => {
                one(cmp(field("vlan", "type"), n, hex((*lo).into(), 4)))
            }
            (
                Field::ArpHwType | Field::ArpProtoType | Field::ArpOpcode,
                TestValue::Range { lo, hi },
            ) => {
                let (name, off) = match t.field {
                    Field::ArpHwType => ("htype", 0),
                    Field::ArpProtoType => ("ptype", 16),
                    _ => ("operation", 48),
                };
                let left = if rarp {
                    raw(PayloadBase::NH, off, 16)
                } else {
                    field("arp", name)
                };
                one(cmp(left, n, range(*lo, *hi)))
            }
            (Field::ArpSrcMac | Field::ArpDstMac, TestValue::Mac { addr, .. }) => {
                let src = t.field == Field::ArpSrcMac;
                let (name, off) = if src {
                    ("saddr ether", 64)
                } else {
                    ("daddr ether", self.arp.tha())
                };
                let standard = src || self.arp.plen == 4;
                one(if rarp || !standard {
                    cmp(raw(PayloadBase::NH, off, 48), n, mac_hex(*addr))
                } else {
                    cmp(field("arp", name), n, mac(*addr))
                })
            }
            (Field::ArpSrcIp | Field::ArpDstIp, TestValue::Ipv4 { addr, prefix: len }) => {
                let (name, off) = if t.field == Field::ArpSrcIp {
                    ("saddr ip", self.arp.spa())
                } else {
                    ("daddr ip", self.arp.tpa())
                };
                one(if rarp || self.arp.hlen != 6 {
                    let m = u32::MAX.checked_shl(32 - u32::from(*len)).unwrap_or(0);
                    let at = raw(PayloadBase::NH, off, 32);
                    let left = if m == u32::MAX {
                        at
                    } else {
                        and(at, hex(m.into(), 8))
                    };
                    cmp(left, n, hex((u32::from(*addr) & m).into(), 8))
                } else {
                    cmp(field("arp", name), n, prefix(addr.to_string(), *len, 32))
                })
            }
            (Field::ArpGratuitous, _) => {
                self.unsupported(
                    origin,
                    "a gratuitous-ARP test without a fixed sender or target address (it compares two fields of the packet)",
                );
                None
            }
            (Field::SrcIp | Field::DstIp | Field::SrcIpRange | Field::DstIpRange, _) => {
                let dir = if matches!(t.field, Field::SrcIp | Field::SrcIpRange) {
                    "saddr"
                } else {
                    "daddr"
                };
                let val = match v {
                    TestValue::Ipv4 { addr, prefix: len } => prefix(addr.to_string(), *len, 32),
                    TestValue::Ipv6 { addr, prefix: len } => prefix(addr.to_string(), *len, 128),
                    TestValue::Ipv4Range { from, to } => Expression::Range(Box::new(Range {
                        range: [string(from.to_string()), string(to.to_string())],
                    })),
                    TestValue::Ipv6Range { from, to } => Expression::Range(Box::new(Range {
                        range: [string(from.to_string()), string(to.to_string())],
                    })),
                    _ => return None,
                };
                one(cmp(field(ipfam, dir), n, val))
            }
            (Field::IpProtocol, TestValue::Range { lo, .. }) => {
                one(cmp(meta(MetaKey::L4proto), n, Expression::Number(*lo)))
            }
            (Field::SrcPort | Field::DstPort, TestValue::Range { lo, hi }) => {
                let dir = if t.field == Field::SrcPort {
                    "sport"
                } else {
                    "dport"
                };
                one(cmp(field("th", dir), n, range(*lo, *hi)))
            }
            (Field::Dscp, TestValue::Range { lo, hi }) => {
                one(cmp(field(ipfam, "dscp"), n, range(*lo, *hi)))
            }
            (Field::Tos, TestValue::Range { lo, .. }) => {
                one(cmp(raw(PayloadBase::NH, 8, 8), n, hex((*lo).into(), 2)))
            }
            (Field::IcmpType | Field::IcmpCode, TestValue::IcmpTypeCode { types, codes }) => {
                let kw = if v6 { "icmpv6" } else { "icmp" };
                let full_codes = *codes == (0, 255);
                let full_types = *types == (0, 255);
                if n && !full_codes && !full_types {
                    self.unsupported(origin, "a negated test of ICMP type and code together");
                    return None;
                }
                let mut out = Vec::new();
                if !full_types {
                    out.push(cmp(
                        field(kw, "type"),
                        n,
                        range(types.0.into(), types.1.into()),
                    ));
                }
                if !full_codes {
                    out.push(cmp(
                        field(kw, "code"),
                        n,
                        range(codes.0.into(), codes.1.into()),
                    ));
                }
                // No test left: any ICMP message, which the rule's protocol test says.
                Some(out)
            }
            (Field::TcpFlags, TestValue::TcpFlags { flags }) => one(cmp(
                and(field("tcp", "flags"), tcp_flags(flags.mask)),
                n,
                tcp_flags(flags.set),
            )),
            (Field::TcpOption, TestValue::Range { lo, .. }) => one(Statement::Match(Match {
                left: Expression::Named(NamedExpression::TcpOption(TcpOption {
                    name: tcp_option_name(*lo),
                    field: None,
                })),
                right: Expression::Boolean(!n),
                op: Operator::EQ,
            })),
            (Field::Ipset, _) => {
                self.unsupported(
                    origin,
                    "an ipset match (nftables has its own sets; ipsets are not visible to it)",
                );
                None
            }
            (f, _) if is_stp_field(f) => {
                // Offsets in bits from the start of the frame, as the kernel's ebtables stp
                // match reads them (one byte early: see frame.rs in the simulator).
                let (off, len) = match f {
                    Field::StpType => (152, 8),
                    Field::StpFlags => (160, 8),
                    Field::StpRootPriority => (168, 16),
                    Field::StpRootAddr => (184, 48),
                    Field::StpRootCost => (232, 32),
                    Field::StpSenderPriority => (264, 16),
                    Field::StpSenderAddr => (280, 48),
                    Field::StpPort => (328, 16),
                    Field::StpMsgAge => (344, 16),
                    Field::StpMaxAge => (360, 16),
                    Field::StpHelloTime => (376, 16),
                    _ => (392, 16),
                };
                let at = raw(PayloadBase::LL, off, len);
                match v {
                    TestValue::Range { lo, hi } => one(cmp(at, n, range(*lo, *hi))),
                    TestValue::Mac { addr, mask } if *mask == MacAddr::FULL => {
                        one(cmp(at, n, mac_hex(*addr)))
                    }
                    TestValue::Mac { addr, mask } => {
                        let masked = MacAddr(std::array::from_fn(|i| addr.0[i] & mask.0[i]));
                        one(cmp(and(at, mac_hex(*mask)), n, mac_hex(masked)))
                    }
                    _ => None,
                }
            }
            (Field::State | Field::ConnlimitAbove | Field::Comment, _) => Some(Vec::new()),
            (f, v) => {
                self.unsupported(origin, &format!("the test {f:?} {v:?}"));
                None
            }
        }
    }

    fn rule_line(&mut self, parts: Vec<Part>, mut tail: Vec<Stmt>, origin: Option<&Provenance>) {
        if self.opts.counters {
            tail.insert(0, Statement::Counter(Counter::Anonymous(None)));
        }
        self.pending.push(Line {
            parts,
            tail,
            comment: origin.map(|o| comment_text(&format!("{} ({})", o.location, o.filter))),
        });
    }

    /// The index of the only part in which `b` differs from `a`, if both there compare the
    /// same field with one value (the copies a list variable makes of one rule).
    fn differs_in_one_value(a: &Line, b: &Line) -> Option<usize> {
        if a.tail != b.tail || a.comment != b.comment || a.parts.len() != b.parts.len() {
            return None;
        }
        let mut diff = None;
        for (i, (x, y)) in a.parts.iter().zip(&b.parts).enumerate() {
            if x == y {
                continue;
            }
            match (&x.stmt, &y.stmt) {
                (Statement::Match(m1), Statement::Match(m2))
                    if x.mergeable
                        && y.mergeable
                        && m1.left == m2.left
                        && m1.op == m2.op
                        && diff.is_none() =>
                {
                    diff = Some(i)
                }
                _ => return None,
            }
        }
        diff
    }

    /// The queued rules, with runs of copies that differ in one value merged into one rule
    /// with a set.
    fn flush(&mut self) -> Vec<Rule> {
        let lines = std::mem::take(&mut self.pending);
        let mut rules = Vec::new();
        let mut i = 0;
        while i < lines.len() {
            let first = &lines[i];
            let mut j = i + 1;
            let mut at = None;
            while j < lines.len() {
                match Self::differs_in_one_value(first, &lines[j]) {
                    Some(d) if at.is_none_or(|a| a == d) => {
                        at = Some(d);
                        j += 1;
                    }
                    _ => break,
                }
            }
            let mut stmts: Vec<Stmt> = first.parts.iter().map(|p| p.stmt.clone()).collect();
            if let Some(d) = at {
                let mut values: Vec<SetItem<'static>> = Vec::new();
                for l in &lines[i..j] {
                    if let Statement::Match(m) = &l.parts[d].stmt {
                        let item = SetItem::Element(m.right.clone());
                        if !values.contains(&item) {
                            values.push(item);
                        }
                    }
                }
                if let Statement::Match(m) = &mut stmts[d] {
                    m.right = Expression::Named(NamedExpression::Set(values));
                }
            }
            stmts.extend(first.tail.iter().cloned());
            rules.push(Rule {
                stmts,
                comment: first.comment.clone(),
            });
            i = j;
        }
        rules
    }

    /// The ethernet-layer rules of one chain, in order. Copies of one rule (list variables)
    /// that need one nft rule per ARP address layout are emitted layout by layout, so that the
    /// copies of each layout stay next to each other and still share one set; reordering them
    /// is safe, as they all have the same verdict.
    fn eth_rules<'r>(&mut self, rules: impl IntoIterator<Item = &'r EthRule>) {
        let rules: Vec<&EthRule> = rules.into_iter().collect();
        let mut i = 0;
        while i < rules.len() {
            let j = i + rules[i..]
                .iter()
                .take_while(|r| {
                    let (a, b) = (&r.origin, &rules[i].origin);
                    a.span == b.span && a.path == b.path
                })
                .count();
            let layouts = if matches!(rules[i].protocol, Some("arp" | "rarp")) {
                arp_layouts(&rules[i].tests).0
            } else {
                vec![ArpLayout::ETHERNET_IPV4]
            };
            for layout in layouts {
                self.arp = layout;
                for r in &rules[i..j] {
                    // A rule nft cannot express has been reported (E0401) and is left out.
                    let _ = self.eth_rule(r);
                }
            }
            self.arp = ArpLayout::ETHERNET_IPV4;
            i = j;
        }
    }

    /// The header conditions of an arp/rarp rule for the layout being compiled (see
    /// [`arp_layouts`]): they are the kernel's preconditions, never negated with the tests.
    fn arp_conditions(&self, r: &EthRule) -> Vec<Stmt> {
        let rarp = r.protocol == Some("rarp");
        let (layouts, mut conds) = arp_layouts(&r.tests);
        if layouts.len() > 1 {
            if layouts[0].hlen == layouts[1].hlen {
                conds.push((40, 8, self.arp.plen.into()));
            } else {
                conds.push((32, 8, self.arp.hlen.into()));
            }
        }
        let named = |off: u32| match off {
            0 => "htype",
            16 => "ptype",
            32 => "hlen",
            40 => "plen",
            _ => unreachable!("a header field"),
        };
        let mut stmts: Vec<Stmt> = conds
            .into_iter()
            .map(|(off, bits, v)| {
                let left = if rarp {
                    raw(PayloadBase::NH, off, bits)
                } else {
                    field("arp", named(off))
                };
                cmp(left, false, hex(v, (bits / 4) as usize))
            })
            .collect();
        let has = |f: Field| r.tests.iter().any(|t| t.field == f);
        let ip = has(Field::ArpSrcIp) || has(Field::ArpDstIp) || has(Field::ArpGratuitous);
        // The kernel reads both IP addresses when it tests either: the target's must be in
        // the frame even when only the sender's is compared (and a prefix test on it, which
        // nft shortens to the bytes of the prefix, does not load all four).
        if ip {
            stmts.push(cmp(
                raw(PayloadBase::NH, self.arp.tpa(), 32),
                false,
                Expression::Range(Box::new(Range {
                    range: [hex(0, 1), hex(u32::MAX.into(), 8)],
                })),
            ));
        }
        // ... and the whole 8-byte header for any test (too short an ARP frame never crosses
        // the bridge, but a RARP frame does).
        if rarp && !r.tests.is_empty() && !has(Field::ArpOpcode) {
            stmts.push(cmp(
                raw(PayloadBase::NH, 48, 16),
                false,
                Expression::Range(Box::new(Range {
                    range: [hex(0, 1), hex(0xffff, 4)],
                })),
            ));
        }
        stmts
    }

    fn eth_rule(&mut self, r: &EthRule) -> Option<()> {
        let ctx = Ctx::Eth(r.protocol);
        let mut m: Vec<Part> = Vec::new();
        if let Some(t) = r.ethertype {
            m.push(fixed(cmp(field("ether", "type"), false, hex(t.into(), 4))));
        }
        if r.tests.iter().any(|t| is_stp_field(t.field)) {
            // The kernel's stp match requires LLC 42 42 03 and two zero bytes, and (for any
            // configuration field) a zero "type" byte.
            m.push(fixed(cmp(
                raw(PayloadBase::LL, 112, 48),
                false,
                string("0x424203000000"),
            )));
        }
        if matches!(r.protocol, Some("arp" | "rarp")) {
            m.extend(self.arp_conditions(r).into_iter().map(fixed));
        }
        for t in &r.tests {
            // Gratuitous ARP (sender IP == target IP) compares two packet fields, which nft
            // cannot; when the rule also fixes one of the two addresses, the test is the same
            // address on the other field.
            let t = &gratuitous_as_address(t, &r.tests).unwrap_or_else(|| t.clone());
            m.extend(self.test(t, ctx, &r.origin)?);
        }
        let verdict = match r.action {
            EthAction::Accept => Statement::Accept(None),
            EthAction::Drop => Statement::Drop(None),
            EthAction::Return => Statement::Return(None),
            EthAction::Continue => Statement::Continue(None),
        };
        self.rule_line(m, vec![verdict], Some(&r.origin));
        Some(())
    }

    fn ip_rule(&mut self, r: &IpRule, way: Way) -> Option<()> {
        let ctx = Ctx::Ip(r.family);
        let nfproto = match r.family {
            Family::V6 => "ipv6",
            _ => "ipv4",
        };
        let mut m = vec![fixed(cmp(meta(MetaKey::Nfproto), false, string(nfproto)))];
        if let Some(p) = r.ip_protocol {
            m.push(fixed(cmp(
                meta(MetaKey::L4proto),
                false,
                Expression::Number(p.into()),
            )));
        }
        for t in &r.tests {
            m.extend(self.test(t, ctx, &r.origin)?);
        }
        if let Some(s) = r.state {
            let names: Vec<Expr> = [
                (StateSet::NEW, "new"),
                (StateSet::ESTABLISHED, "established"),
                (StateSet::RELATED, "related"),
                (StateSet::INVALID, "invalid"),
            ]
            .into_iter()
            .filter(|(b, _)| s.states.contains(*b))
            .map(|(_, n)| string(n))
            .collect();
            // `in`: the state is a bit mask, tested as flags (what `ct state new` means in
            // nft's own syntax), not compared for equality.
            let right = if names.len() == 1 {
                names.into_iter().next().expect("one state")
            } else {
                Expression::List(names)
            };
            m.push(fixed(Statement::Match(Match {
                left: ct("state"),
                right,
                op: Operator::IN,
            })));
            if let Some(d) = s.ctdir {
                let dir = if d == CtDir::Original {
                    "original"
                } else {
                    "reply"
                };
                m.push(fixed(cmp(ct("direction"), false, string(dir))));
            }
        }
        let mut tail = Vec::new();
        if let Some(limit) = r.connlimit_above {
            // A meter is a dynamic set of source addresses, each with its connection count.
            let saddr = field(if r.family == Family::V6 { "ip6" } else { "ip" }, "saddr");
            tail.push(Statement::Meter(Meter {
                name: Cow::Owned(format!("connlimit{}", self.meters)),
                key: saddr,
                stmt: Box::new(Statement::CTCount(CTCount {
                    val: Expression::Number(limit),
                    inv: Some(true),
                })),
            }));
            self.meters += 1;
        }
        tail.push(match (r.action, way) {
            // libvirt's from-VM chains RETURN on accept (the FORWARD path accepts later).
            (IpAction::Accept, Way::FromVm) => Statement::Return(None),
            (IpAction::Accept, Way::ToVm) => Statement::Accept(None),
            (IpAction::Return, _) => Statement::Return(None),
            (IpAction::Drop, _) => Statement::Drop(None),
            (IpAction::Reject, _) => Statement::Reject(None),
        });
        self.rule_line(m, tail, Some(&r.origin));
        Some(())
    }

    /// Sets the mark bits `keep` leaves free to `value`.
    fn set_mark(keep: u32, value: u32) -> Rule {
        Rule {
            stmts: vec![Statement::Mangle(Mangle {
                key: meta(MetaKey::Mark),
                value: or(vec![
                    and(meta(MetaKey::Mark), hex(keep.into(), 8)),
                    hex(value.into(), 8),
                ]),
            })],
            comment: None,
        }
    }

    /// A verdict map from a key to jumps.
    fn vmap(key: Expr, entries: Vec<(Expr, String)>) -> Rule {
        let items = entries
            .into_iter()
            .map(|(k, target)| {
                SetItem::Mapping(
                    k,
                    Expression::Verdict(Verdict::Jump(JumpTarget {
                        target: Cow::Owned(target),
                    })),
                )
            })
            .collect();
        Rule {
            stmts: vec![Statement::VerdictMap(VerdictMap {
                key,
                data: Expression::Named(NamedExpression::Set(items)),
            })],
            comment: None,
        }
    }

    fn ruleset(&mut self, programs: &[Program]) -> Ruleset {
        // ---- bridge table: the ethernet layer and the marks ----
        let mut bridge = Vec::new();
        for (i, p) in programs.iter().enumerate() {
            let id = i + 1;
            for way in Way::BOTH {
                let dir = if way == Way::FromVm { "from" } else { "to" };
                let chains = p.eth(way);
                for (k, sub) in chains.subchains.iter().enumerate() {
                    self.eth_rules(&sub.rules);
                    // An ebtables user chain accepts what falls off its end.
                    self.rule_line(Vec::new(), vec![Statement::Accept(None)], None);
                    bridge.push(Chain {
                        name: format!("p{id}-{dir}-{k}"),
                        comment: Some(comment_text(&format!(
                            "{}: sub-chain {} of frames {} the VM",
                            p.port, sub.name, dir
                        ))),
                        base: None,
                        rules: self.flush(),
                    });
                }
                let mut rules = Vec::new();
                if way == Way::FromVm {
                    rules.push(Self::set_mark(!MARK_FROM, id as u32));
                }
                // Runs of root rules go through `eth_rules` together (copies stay together).
                let mut run: Vec<&EthRule> = Vec::new();
                for e in &chains.root {
                    match e {
                        RootEntry::Rule(r) => run.push(r),
                        RootEntry::Jump { chain } => {
                            self.eth_rules(std::mem::take(&mut run));
                            let sub = &chains.subchains[*chain];
                            let m = match sub.jump {
                                JumpMatch::Any => None,
                                JumpMatch::EtherType { value } => {
                                    Some(cmp(field("ether", "type"), false, hex(value.into(), 4)))
                                }
                                JumpMatch::StpDestination => Some(cmp(
                                    field("ether", "daddr"),
                                    false,
                                    string("01:80:c2:00:00:00"),
                                )),
                            };
                            self.rule_line(
                                m.into_iter().map(fixed).collect(),
                                vec![jump(format!("p{id}-{dir}-{chain}"))],
                                None,
                            );
                        }
                    }
                }
                self.eth_rules(run);
                rules.extend(self.flush());
                bridge.push(Chain {
                    name: format!("p{id}-{dir}"),
                    comment: Some(comment_text(&format!("{}: frames {} the VM", p.port, dir))),
                    base: None,
                    rules,
                });
            }
            bridge.push(Chain {
                name: format!("p{id}-mark-to"),
                comment: None,
                base: None,
                rules: vec![Self::set_mark(!MARK_TO, (id as u32) << 16)],
            });
        }
        let ports = |suffix: &str| -> Vec<(Expr, String)> {
            programs
                .iter()
                .enumerate()
                .map(|(i, p)| (string(p.port.clone()), format!("p{}-{suffix}", i + 1)))
                .collect()
        };
        if !programs.is_empty() {
            for (name, hook, prio, key, suffix) in [
                (
                    "prerouting",
                    NfHook::Prerouting,
                    -300,
                    MetaKey::Iifname,
                    "from",
                ),
                (
                    "forward",
                    NfHook::Forward,
                    -200,
                    MetaKey::Oifname,
                    "mark-to",
                ),
                (
                    "postrouting",
                    NfHook::Postrouting,
                    300,
                    MetaKey::Oifname,
                    "to",
                ),
            ] {
                bridge.push(Chain {
                    name: name.into(),
                    comment: None,
                    base: Some((hook, prio)),
                    rules: vec![Self::vmap(meta(key), ports(suffix))],
                });
            }
        }

        // ---- inet table: the IP layer ----
        let mut inet = Vec::new();
        for (i, p) in programs.iter().enumerate() {
            let id = i + 1;
            for way in Way::BOTH {
                let dir = if way == Way::FromVm { "from" } else { "to" };
                for r in p.ip(way) {
                    let _ = self.ip_rule(r, way);
                }
                inet.push(Chain {
                    name: format!("p{id}-ip-{dir}"),
                    comment: Some(comment_text(&format!(
                        "{}: IP layer, packets {} the VM",
                        p.port, dir
                    ))),
                    base: None,
                    rules: self.flush(),
                });
            }
        }
        if !programs.is_empty() {
            let dispatch = |mask: u32, shift: u32, dir: &str| -> Rule {
                let entries = (1..=programs.len() as u32)
                    .map(|id| (hex((id << shift).into(), 8), format!("p{id}-ip-{dir}")))
                    .collect();
                Self::vmap(and(meta(MetaKey::Mark), hex(mask.into(), 8)), entries)
            };
            inet.push(Chain {
                name: "forward".into(),
                comment: None,
                base: Some((NfHook::Forward, 0)),
                rules: vec![dispatch(MARK_FROM, 0, "from"), dispatch(MARK_TO, 16, "to")],
            });
            inet.push(Chain {
                name: "input".into(),
                comment: None,
                base: Some((NfHook::Input, 0)),
                rules: vec![dispatch(MARK_FROM, 0, "from")],
            });
        }
        Ruleset {
            name: self.opts.table.clone(),
            ports: programs.len(),
            tables: vec![
                Table {
                    family: NfFamily::Bridge,
                    chains: bridge,
                },
                Table {
                    family: NfFamily::INet,
                    chains: inet,
                },
            ],
        }
    }
}
