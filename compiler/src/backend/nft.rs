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

use crate::diag::{Diagnostic, Diagnostics};
use crate::lang::{Family, Field};
use crate::program::{
    CtDir, EthAction, EthRule, IpAction, IpRule, JumpMatch, Program, Provenance, RootEntry, Test,
    TestValue, Way,
};
use crate::value::{MacAddr, StateSet};
use std::fmt::Write;

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

/// Compiles the ports' programs to one script. Returns `None` (with diagnostics) if any rule
/// cannot be expressed.
pub fn compile(programs: &[Program], opts: &NftOptions, diags: &mut Diagnostics) -> Option<String> {
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
        opts,
        diags,
        out: String::new(),
        pending: Vec::new(),
        sets: Vec::new(),
    };
    let script = c.script(programs);
    (diags.count(crate::diag::Severity::Error) == errors).then_some(script)
}

/// One match of a rule; `set_key` when the match compares one field with one exact value,
/// so that consecutive copies of a rule that differ only there can share a set.
#[derive(Clone, PartialEq, Eq)]
struct Part {
    text: String,
    set_key: Option<String>,
}

/// A rule waiting to be written (consecutive lines may merge into one with a set).
struct Line {
    parts: Vec<Part>,
    verdict: String,
    comment: Option<String>,
}

struct Compiler<'a> {
    opts: &'a NftOptions,
    diags: &'a mut Diagnostics,
    out: String,
    pending: Vec<Line>,
    /// Dynamic sets for connlimit rules: (name, IPv6?).
    sets: Vec<(String, bool)>,
}

/// Quotes a string for an nft comment or interface name (values are validated: no quotes or
/// newlines can occur in interface names; comments are sanitised here).
fn quoted(s: &str) -> String {
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
    // nft limits comments to 128 bytes.
    let mut end = clean.len().min(120);
    while !clean.is_char_boundary(end) {
        end -= 1;
    }
    format!("\"{}\"", &clean[..end])
}

fn mac(m: MacAddr) -> String {
    m.to_string()
}

fn mac_hex(m: MacAddr) -> String {
    format!(
        "0x{}",
        m.0.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

fn range(lo: u32, hi: u32) -> String {
    if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}-{hi}")
    }
}

fn op(negated: bool) -> &'static str {
    if negated {
        "!= "
    } else {
        ""
    }
}

const TCP_FLAGS: [(u8, &str); 6] = [
    (0x01, "fin"),
    (0x02, "syn"),
    (0x04, "rst"),
    (0x08, "psh"),
    (0x10, "ack"),
    (0x20, "urg"),
];

fn tcp_flag_list(bits: u8) -> String {
    let names: Vec<&str> = TCP_FLAGS
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| *n)
        .collect();
    if names.is_empty() {
        "0x0".into()
    } else {
        names.join(" | ")
    }
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
fn protect_negation(t: &Test, text: String) -> String {
    let single = match &t.value {
        TestValue::Range { lo, hi } => lo == hi,
        TestValue::Mac { mask, .. } => *mask == MacAddr::FULL,
        TestValue::Ipv4 { prefix, .. } => *prefix == 32,
        TestValue::Ipv6 { prefix, .. } => *prefix == 128,
        TestValue::IcmpTypeCode { .. } => true,
        _ => false,
    };
    // Meta expressions are not payload: nft does not merge them.
    if !single || text.contains(" & ") || text.starts_with("meta ") {
        return text;
    }
    let raw = text.starts_with('@');
    let mask: String = match (t.field, &t.value) {
        (_, TestValue::Mac { .. }) if raw => "0xffffffffffff".into(),
        (_, TestValue::Mac { .. }) => "ff:ff:ff:ff:ff:ff".into(),
        (_, TestValue::Ipv4 { .. }) => "255.255.255.255".into(),
        (_, TestValue::Ipv6 { .. }) => "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".into(),
        (Field::VlanId, _) => "0xfff".into(),
        (Field::Tos | Field::IcmpType | Field::IcmpCode, _) => "0xff".into(),
        (f, TestValue::Range { .. }) if is_stp_field(f) => {
            // `@ll,OFF,LEN`: a mask of LEN bits.
            let len: u32 = text
                .split(',')
                .nth(2)
                .and_then(|l| l.split(' ').next()?.parse().ok())
                .unwrap_or(8);
            format!("0x{:x}", (1u64 << len) - 1)
        }
        (Field::StpRootAddr | Field::StpSenderAddr, _) => "0xffffffffffff".into(),
        _ => "0xffff".into(),
    };
    // Prefixes of full length are written as plain addresses under the mask.
    let text = text.replace("/32", "").replace("/128", "");
    // ICMP type and code: mask each negated comparison.
    text.replace(" != ", &format!(" & {mask} != "))
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

fn fixed(text: String) -> Part {
    Part {
        text,
        set_key: None,
    }
}

/// A test's match, with the key under which copies of its rule can share a set: positive
/// tests of one exact address, MAC or port.
fn part(t: &Test, ctx: Ctx, text: String) -> Part {
    let exact = !t.negated
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
        };
    let set_key = exact
        .then(|| text.rsplit_once(' ').map(|(k, _)| k.to_string()))
        .flatten();
    Part { text, set_key }
}

/// Where a test is compiled: its layer and the protocol element of its rule.
#[derive(Clone, Copy)]
enum Ctx<'a> {
    Eth(Option<&'a str>),
    Ip(Family),
}

impl Compiler<'_> {
    fn unsupported(&mut self, origin: &Provenance, what: &str) {
        self.diags.push(
            Diagnostic::error("E0401", format!("nftables cannot express {what}"))
                .at(origin.span, "this rule cannot be compiled to nftables")
                .with_note("nwf never emits a rule that would mean something else; remove or rewrite the rule"),
        );
    }

    fn test(&mut self, t: &Test, ctx: Ctx, origin: &Provenance) -> Option<String> {
        let text = self.test_text(t, ctx, origin)?;
        Some(if t.negated {
            protect_negation(t, text)
        } else {
            text
        })
    }

    fn test_text(&mut self, t: &Test, ctx: Ctx, origin: &Provenance) -> Option<String> {
        let n = op(t.negated);
        let v = &t.value;
        let v6 = matches!(ctx, Ctx::Eth(Some("ipv6")) | Ctx::Ip(Family::V6));
        let ipfam = if v6 { "ip6" } else { "ip" };
        let rarp = matches!(ctx, Ctx::Eth(Some("rarp")));
        Some(match (t.field, v) {
            (Field::SrcMac | Field::DstMac, TestValue::Mac { addr, mask }) => {
                let dir = if t.field == Field::SrcMac {
                    "saddr"
                } else {
                    "daddr"
                };
                if *mask == MacAddr::FULL {
                    format!("ether {dir} {n}{}", mac(*addr))
                } else {
                    let off = if t.field == Field::SrcMac { 48 } else { 0 };
                    let masked = MacAddr(std::array::from_fn(|i| addr.0[i] & mask.0[i]));
                    format!(
                        "@ll,{off},48 & {} {}{}",
                        mac_hex(*mask),
                        if t.negated { "!= " } else { "== " },
                        mac_hex(masked)
                    )
                }
            }
            (Field::EtherType, TestValue::Range { lo, .. }) => format!("ether type {n}0x{lo:04x}"),
            (Field::VlanId, TestValue::Range { lo, hi }) => {
                format!("vlan id {n}{}", range(*lo, *hi))
            }
            (Field::VlanEncap, TestValue::Range { lo, .. }) => format!("vlan type {n}0x{lo:04x}"),
            (
                Field::ArpHwType | Field::ArpProtoType | Field::ArpOpcode,
                TestValue::Range { lo, hi },
            ) => {
                let (name, off) = match t.field {
                    Field::ArpHwType => ("htype", 0),
                    Field::ArpProtoType => ("ptype", 16),
                    _ => ("operation", 48),
                };
                if rarp {
                    format!("@nh,{off},16 {n}{}", range(*lo, *hi))
                } else {
                    format!("arp {name} {n}{}", range(*lo, *hi))
                }
            }
            (Field::ArpSrcMac | Field::ArpDstMac, TestValue::Mac { addr, .. }) => {
                let (name, off) = if t.field == Field::ArpSrcMac {
                    ("saddr", 64)
                } else {
                    ("daddr", 144)
                };
                if rarp {
                    format!("@nh,{off},48 {n}{}", mac_hex(*addr))
                } else {
                    format!("arp {name} ether {n}{}", mac(*addr))
                }
            }
            (Field::ArpSrcIp | Field::ArpDstIp, TestValue::Ipv4 { addr, prefix }) => {
                let (name, off) = if t.field == Field::ArpSrcIp {
                    ("saddr", 112)
                } else {
                    ("daddr", 192)
                };
                if rarp {
                    let m = u32::MAX.checked_shl(32 - u32::from(*prefix)).unwrap_or(0);
                    format!(
                        "@nh,{off},32 & 0x{m:08x} {}0x{:08x}",
                        if t.negated { "!= " } else { "== " },
                        u32::from(*addr) & m
                    )
                } else {
                    format!("arp {name} ip {n}{addr}/{prefix}")
                }
            }
            (Field::ArpGratuitous, _) => {
                self.unsupported(
                    origin,
                    "a gratuitous-ARP test without a fixed sender or target address (it compares two fields of the packet)",
                );
                return None;
            }
            (Field::SrcIp | Field::DstIp | Field::SrcIpRange | Field::DstIpRange, _) => {
                let dir = if matches!(t.field, Field::SrcIp | Field::SrcIpRange) {
                    "saddr"
                } else {
                    "daddr"
                };
                let val = match v {
                    TestValue::Ipv4 { addr, prefix } => format!("{addr}/{prefix}"),
                    TestValue::Ipv6 { addr, prefix } => format!("{addr}/{prefix}"),
                    TestValue::Ipv4Range { from, to } => format!("{from}-{to}"),
                    TestValue::Ipv6Range { from, to } => format!("{from}-{to}"),
                    _ => return None,
                };
                format!("{ipfam} {dir} {n}{val}")
            }
            (Field::IpProtocol, TestValue::Range { lo, .. }) => format!("meta l4proto {n}{lo}"),
            (Field::SrcPort | Field::DstPort, TestValue::Range { lo, hi }) => {
                let dir = if t.field == Field::SrcPort {
                    "sport"
                } else {
                    "dport"
                };
                format!("th {dir} {n}{}", range(*lo, *hi))
            }
            (Field::Dscp, TestValue::Range { lo, hi }) => {
                format!("{ipfam} dscp {n}{}", range(*lo, *hi))
            }
            (Field::Tos, TestValue::Range { lo, .. }) => format!("@nh,8,8 {n}0x{lo:02x}"),
            (Field::IcmpType | Field::IcmpCode, TestValue::IcmpTypeCode { types, codes }) => {
                let kw = if v6 { "icmpv6" } else { "icmp" };
                let full_codes = *codes == (0, 255);
                let full_types = *types == (0, 255);
                if t.negated && !full_codes && !full_types {
                    self.unsupported(origin, "a negated test of ICMP type and code together");
                    return None;
                }
                let mut parts = Vec::new();
                if !full_types {
                    parts.push(format!(
                        "{kw} type {n}{}",
                        range(types.0.into(), types.1.into())
                    ));
                }
                if !full_codes {
                    parts.push(format!(
                        "{kw} code {n}{}",
                        range(codes.0.into(), codes.1.into())
                    ));
                }
                if parts.is_empty() {
                    // Any ICMP message: the protocol test of the rule says it.
                    return Some(String::new());
                }
                parts.join(" ")
            }
            (Field::TcpFlags, TestValue::TcpFlags { flags }) => format!(
                "tcp flags & ({}) {}{}",
                tcp_flag_list(flags.mask),
                if t.negated { "!= " } else { "== " },
                tcp_flag_list(flags.set)
            ),
            (Field::TcpOption, TestValue::Range { lo, .. }) => {
                format!(
                    "tcp option {lo} {}",
                    if t.negated { "missing" } else { "exists" }
                )
            }
            (Field::Ipset, _) => {
                self.unsupported(
                    origin,
                    "an ipset match (nftables has its own sets; ipsets are not visible to it)",
                );
                return None;
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
                match v {
                    TestValue::Range { lo, hi } => {
                        format!("@ll,{off},{len} {n}{}", range(*lo, *hi))
                    }
                    TestValue::Mac { addr, mask } if *mask == MacAddr::FULL => {
                        format!("@ll,{off},{len} {n}{}", mac_hex(*addr))
                    }
                    TestValue::Mac { addr, mask } => {
                        let masked = MacAddr(std::array::from_fn(|i| addr.0[i] & mask.0[i]));
                        format!(
                            "@ll,{off},{len} & {} {}{}",
                            mac_hex(*mask),
                            if t.negated { "!= " } else { "== " },
                            mac_hex(masked)
                        )
                    }
                    _ => return None,
                }
            }
            (Field::State | Field::ConnlimitAbove | Field::Comment, _) => String::new(),
            (f, v) => {
                self.unsupported(origin, &format!("the test {f:?} {v:?}"));
                return None;
            }
        })
    }

    fn rule_line(&mut self, matches: &[Part], verdict: &str, origin: Option<&Provenance>) {
        self.pending.push(Line {
            parts: matches
                .iter()
                .filter(|m| !m.text.is_empty())
                .cloned()
                .collect(),
            verdict: verdict.to_string(),
            comment: origin.map(|o| quoted(&format!("{} ({})", o.location, o.filter))),
        });
    }

    /// The index of the only part in which `b` differs from `a`, if both there compare the same
    /// field with one value (the copies a list variable makes of one rule).
    fn differs_in_one_value(a: &Line, b: &Line) -> Option<usize> {
        if a.verdict != b.verdict || a.comment != b.comment || a.parts.len() != b.parts.len() {
            return None;
        }
        let mut diff = None;
        for (i, (x, y)) in a.parts.iter().zip(&b.parts).enumerate() {
            if x == y {
                continue;
            }
            match (&x.set_key, &y.set_key) {
                (Some(k1), Some(k2)) if k1 == k2 && diff.is_none() => diff = Some(i),
                _ => return None,
            }
        }
        diff
    }

    /// Writes one rule straight into the output (no intermediate strings); `replace` puts a
    /// set in place of one part.
    fn write_line(&mut self, line: &Line, replace: Option<(usize, &str)>) {
        let out = &mut self.out;
        out.push_str("\t\t");
        for (i, p) in line.parts.iter().enumerate() {
            match replace {
                Some((at, text)) if at == i => out.push_str(text),
                _ => out.push_str(&p.text),
            }
            out.push(' ');
        }
        if self.opts.counters {
            out.push_str("counter ");
        }
        out.push_str(&line.verdict);
        if let Some(c) = &line.comment {
            out.push_str(" comment ");
            out.push_str(c);
        }
        out.push('\n');
    }

    /// Writes the queued rules, merging runs of copies that differ in one value into a set.
    fn flush(&mut self) {
        let lines = std::mem::take(&mut self.pending);
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
            let merged = at.map(|d| {
                let key = first.parts[d].set_key.as_deref().expect("mergeable part");
                let mut values: Vec<&str> = Vec::new();
                for l in &lines[i..j] {
                    let v = l.parts[d].text[key.len()..].trim();
                    if !values.contains(&v) {
                        values.push(v);
                    }
                }
                (d, format!("{key} {{ {} }}", values.join(", ")))
            });
            self.write_line(first, merged.as_ref().map(|(d, t)| (*d, t.as_str())));
            i = j;
        }
    }

    /// Ends a chain: writes its queued rules and the closing brace.
    fn end_chain(&mut self) {
        self.flush();
        self.out.push_str("\t}\n");
    }

    fn eth_rule(&mut self, r: &EthRule) -> Option<()> {
        let ctx = Ctx::Eth(r.protocol);
        let mut m: Vec<Part> = Vec::new();
        if let Some(t) = r.ethertype {
            m.push(fixed(format!("ether type 0x{t:04x}")));
        }
        let stp_fields = r.tests.iter().any(|t| is_stp_field(t.field));
        if stp_fields {
            // The kernel's stp match requires LLC 42 42 03 and two zero bytes, and (for any
            // configuration field) a zero "type" byte.
            m.push(fixed("@ll,112,48 0x424203000000".into()));
        }
        for t in &r.tests {
            // Gratuitous ARP (sender IP == target IP) compares two packet fields, which nft
            // cannot; when the rule also fixes one of the two addresses, the test is the same
            // address on the other field.
            let t = &gratuitous_as_address(t, &r.tests).unwrap_or_else(|| t.clone());
            let text = self.test(t, ctx, &r.origin)?;
            m.push(part(t, ctx, text));
        }
        let verdict = match r.action {
            EthAction::Accept => "accept",
            EthAction::Drop => "drop",
            EthAction::Return => "return",
            EthAction::Continue => "continue",
        };
        self.rule_line(&m, verdict, Some(&r.origin));
        Some(())
    }

    fn ip_rule(&mut self, r: &IpRule, way: Way) -> Option<()> {
        let ctx = Ctx::Ip(r.family);
        let mut m = vec![fixed(match r.family {
            Family::V6 => "meta nfproto ipv6".to_string(),
            _ => "meta nfproto ipv4".to_string(),
        })];
        if let Some(p) = r.ip_protocol {
            m.push(fixed(format!("meta l4proto {p}")));
        }
        for t in &r.tests {
            let text = self.test(t, ctx, &r.origin)?;
            m.push(part(t, ctx, text));
        }
        if let Some(s) = r.state {
            let names: Vec<&str> = [
                (StateSet::NEW, "new"),
                (StateSet::ESTABLISHED, "established"),
                (StateSet::RELATED, "related"),
                (StateSet::INVALID, "invalid"),
            ]
            .into_iter()
            .filter(|(b, _)| s.states.contains(*b))
            .map(|(_, n)| n)
            .collect();
            m.push(fixed(format!("ct state {}", names.join(","))));
            if let Some(d) = s.ctdir {
                m.push(fixed(format!(
                    "ct direction {}",
                    if d == CtDir::Original {
                        "original"
                    } else {
                        "reply"
                    }
                )));
            }
        }
        if let Some(limit) = r.connlimit_above {
            let v6 = r.family == Family::V6;
            let name = format!("connlimit{}", self.sets.len());
            m.push(fixed(format!(
                "add @{name} {{ {} saddr ct count over {limit} }}",
                if v6 { "ip6" } else { "ip" }
            )));
            self.sets.push((name, v6));
        }
        let verdict = match (r.action, way) {
            // libvirt's from-VM chains RETURN on accept (the FORWARD path accepts later).
            (IpAction::Accept, Way::FromVm) => "return",
            (IpAction::Accept, Way::ToVm) => "accept",
            (IpAction::Return, _) => "return",
            (IpAction::Drop, _) => "drop",
            (IpAction::Reject, _) => "reject",
        };
        self.rule_line(&m, verdict, Some(&r.origin));
        Some(())
    }

    fn script(&mut self, programs: &[Program]) -> String {
        let t = self.opts.table.clone();
        let mut head = String::new();
        let _ = writeln!(head, "#!/usr/sbin/nft -f");
        let _ = writeln!(head, "# Generated by nwf for {} port(s); loading it replaces the tables `bridge {t}` and `inet {t}` only.", programs.len());
        let _ = writeln!(
            head,
            "table bridge {t}\ndelete table bridge {t}\ntable inet {t}\ndelete table inet {t}\n"
        );

        // ---- bridge table: the ethernet layer and the marks ----
        self.out.clear();
        let _ = writeln!(self.out, "table bridge {t} {{");
        for (i, p) in programs.iter().enumerate() {
            let id = i + 1;
            for way in Way::BOTH {
                let dir = if way == Way::FromVm { "from" } else { "to" };
                let chains = p.eth(way);
                // Sub-chains first (nft needs a chain defined before a jump to it is checked
                // only at commit, but this order reads better).
                for (k, sub) in chains.subchains.iter().enumerate() {
                    let _ = writeln!(self.out, "\tchain p{id}-{dir}-{k} {{");
                    let _ = writeln!(
                        self.out,
                        "\t\tcomment {}",
                        quoted(&format!(
                            "{}: sub-chain {} of frames {} the VM",
                            p.port, sub.name, dir
                        ))
                    );
                    for r in &sub.rules {
                        let _ = self.eth_rule(r);
                    }
                    // An ebtables user chain accepts what falls off its end.
                    self.rule_line(&[], "accept", None);
                    self.end_chain();
                }
                let _ = writeln!(self.out, "\tchain p{id}-{dir} {{");
                let _ = writeln!(
                    self.out,
                    "\t\tcomment {}",
                    quoted(&format!("{}: frames {} the VM", p.port, dir))
                );
                if way == Way::FromVm {
                    let _ = writeln!(
                        self.out,
                        "\t\tmeta mark set meta mark & 0x{:08x} | 0x{:08x}",
                        !MARK_FROM, id
                    );
                }
                for e in &chains.root {
                    match e {
                        RootEntry::Rule(r) => {
                            let _ = self.eth_rule(r);
                        }
                        RootEntry::Jump { chain } => {
                            let sub = &chains.subchains[*chain];
                            let m = match sub.jump {
                                JumpMatch::Any => String::new(),
                                JumpMatch::EtherType { value } => {
                                    format!("ether type 0x{value:04x}")
                                }
                                JumpMatch::StpDestination => "ether daddr 01:80:c2:00:00:00".into(),
                            };
                            self.rule_line(&[fixed(m)], &format!("jump p{id}-{dir}-{chain}"), None);
                        }
                    }
                }
                self.end_chain();
            }
            let _ = writeln!(self.out, "\tchain p{id}-mark-to {{");
            let _ = writeln!(
                self.out,
                "\t\tmeta mark set meta mark & 0x{:08x} | 0x{:08x}",
                !MARK_TO,
                id << 16
            );
            let _ = writeln!(self.out, "\t}}");
        }
        let vmap = |suffix: &str| -> String {
            programs
                .iter()
                .enumerate()
                .map(|(i, p)| format!("{} : jump p{}-{suffix}", quoted(&p.port), i + 1))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !programs.is_empty() {
            let _ = writeln!(self.out, "\tchain prerouting {{\n\t\ttype filter hook prerouting priority -300; policy accept;\n\t\tiifname vmap {{ {} }}\n\t}}", vmap("from"));
            let _ = writeln!(self.out, "\tchain forward {{\n\t\ttype filter hook forward priority -200; policy accept;\n\t\toifname vmap {{ {} }}\n\t}}", vmap("mark-to"));
            let _ = writeln!(self.out, "\tchain postrouting {{\n\t\ttype filter hook postrouting priority 300; policy accept;\n\t\toifname vmap {{ {} }}\n\t}}", vmap("to"));
        }
        let _ = writeln!(self.out, "}}\n");
        let bridge = std::mem::take(&mut self.out);

        // ---- inet table: the IP layer ----
        let _ = writeln!(self.out, "table inet {t} {{");
        let mut body = String::new();
        for (i, p) in programs.iter().enumerate() {
            let id = i + 1;
            for way in Way::BOTH {
                let dir = if way == Way::FromVm { "from" } else { "to" };
                let saved = std::mem::take(&mut self.out);
                let _ = writeln!(self.out, "\tchain p{id}-ip-{dir} {{");
                let _ = writeln!(
                    self.out,
                    "\t\tcomment {}",
                    quoted(&format!("{}: IP layer, packets {} the VM", p.port, dir))
                );
                for r in p.ip(way) {
                    let _ = self.ip_rule(r, way);
                }
                self.end_chain();
                body.push_str(&self.out);
                self.out = saved;
            }
        }
        for (name, v6) in std::mem::take(&mut self.sets) {
            let _ = writeln!(
                self.out,
                "\tset {name} {{\n\t\ttype {}; flags dynamic;\n\t}}",
                if v6 { "ipv6_addr" } else { "ipv4_addr" }
            );
        }
        self.out.push_str(&body);
        if !programs.is_empty() {
            let from: Vec<String> = (1..=programs.len())
                .map(|id| format!("0x{id:08x} : jump p{id}-ip-from"))
                .collect();
            let to: Vec<String> = (1..=programs.len())
                .map(|id| format!("0x{:08x} : jump p{id}-ip-to", id << 16))
                .collect();
            let _ = writeln!(
                self.out,
                "\tchain forward {{\n\t\ttype filter hook forward priority 0; policy accept;\n\t\tmeta mark & 0x{MARK_FROM:08x} vmap {{ {} }}\n\t\tmeta mark & 0x{MARK_TO:08x} vmap {{ {} }}\n\t}}",
                from.join(", "),
                to.join(", ")
            );
            let _ = writeln!(
                self.out,
                "\tchain input {{\n\t\ttype filter hook input priority 0; policy accept;\n\t\tmeta mark & 0x{MARK_FROM:08x} vmap {{ {} }}\n\t}}",
                from.join(", ")
            );
        }
        let _ = writeln!(self.out, "}}");
        let inet = std::mem::take(&mut self.out);
        format!("{head}{bridge}{inet}")
    }
}
