//! The reference interpreter: what a program does to one frame, following libvirt's
//! ebtables/iptables rules as the kernel runs them.

use crate::frame::Frame;
use nwf_compiler::lang::{Family, Field};
use nwf_compiler::program::{
    CtDir, EthAction, EthChains, EthRule, IpAction, IpRule, JumpMatch, Program, Provenance,
    RootEntry, Test, TestValue, Way,
};
use nwf_compiler::value::{MacAddr, SetDir, StateSet};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// The final verdict on a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Delivered.
    Accept,
    /// Discarded.
    Drop,
    /// Discarded with an ICMP error or TCP reset.
    Reject,
}

/// Which layer decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decider {
    /// ebtables (libvirt's ethernet layer).
    Ethernet,
    /// iptables/ip6tables (libvirt's IP layer).
    Ip,
    /// The bridge itself, before any filter (bad IPv4 header).
    Kernel,
    /// No rule decided: the default.
    Default,
}

/// The connection-tracking view of one packet, as the IP layer sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CtView {
    /// One of [`StateSet::NEW`], ESTABLISHED, RELATED, INVALID.
    pub state: u8,
    /// The packet's direction relative to its connection.
    pub dir: CtDir,
    /// Connections of the packet's source address (for `connlimit-above`).
    pub conns_from_source: u32,
}

/// What else the evaluator needs to know beyond the frame.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// Connection tracking for this packet (None: treated as NEW original, no connections).
    pub ct: Option<CtView>,
    /// Contents of named ipsets (addresses), for `ipset` tests. Unknown sets are empty.
    pub ipsets: BTreeMap<String, BTreeSet<IpAddr>>,
}

/// The outcome of one frame, with the rule that decided it.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome<'p> {
    /// Verdict.
    pub verdict: Verdict,
    /// The deciding layer.
    pub layer: Decider,
    /// The deciding rule, if any.
    pub rule: Option<&'p Provenance>,
    /// Whether the IP layer looked at the frame.
    pub ip_layer_seen: bool,
}

/// Result of one layer.
#[derive(Clone, Copy, Debug)]
enum LayerResult<'p> {
    /// Passed; by a rule, or by default.
    Pass(Option<&'p Provenance>),
    /// Dropped or rejected by a rule.
    Stop(Verdict, &'p Provenance),
}

/// Evaluates one frame crossing the port in `way`.
pub fn evaluate<'p>(program: &'p Program, way: Way, frame: &Frame, cx: &Context) -> Outcome<'p> {
    evaluate_traced(program, None, way, frame, cx, &mut |_| {})
}

/// Like [`evaluate`], calling `on_hit` for every rule that matches the frame (including
/// `return` and `continue` rules that do not decide it), in evaluation order.
///
/// With an `index` (built once per program) the IP layer only looks at the rules that can
/// match the frame's family, protocol and ports; the result is the same as without it.
pub fn evaluate_traced<'p>(
    program: &'p Program,
    index: Option<&crate::index::ProgramIndex>,
    way: Way,
    frame: &Frame,
    cx: &Context,
    on_hit: &mut dyn FnMut(&'p Provenance),
) -> Outcome<'p> {
    if frame.runt {
        // Shorter than an Ethernet header: the network stack discards it before the bridge.
        return Outcome {
            verdict: Verdict::Drop,
            layer: Decider::Kernel,
            rule: None,
            ip_layer_seen: false,
        };
    }
    let ip_applies = ip_layer_applies(frame);
    let bad_header =
        frame.ip_truncated || frame.ip.is_some_and(|ip| ip.bad_header) || frame.arp_truncated;
    if bad_header && frame.vlan.is_none() {
        // br_netfilter drops IPv4 frames with a bad header before the IP layer, and ARP frames
        // shorter than the ARP header on the forward path; from the VM the ethernet layer (nat
        // PREROUTING) has already run and may have dropped it first.
        if way == Way::FromVm {
            if let LayerResult::Stop(v, r) = eval_eth(program.eth(way), frame, on_hit) {
                return Outcome {
                    verdict: v,
                    layer: Decider::Ethernet,
                    rule: Some(r),
                    ip_layer_seen: false,
                };
            }
        }
        return Outcome {
            verdict: Verdict::Drop,
            layer: Decider::Kernel,
            rule: None,
            ip_layer_seen: false,
        };
    }
    // From the VM the ethernet layer runs first (nat PREROUTING), then the IP layer (FORWARD);
    // to the VM the IP layer (FORWARD) runs before the ethernet layer (nat POSTROUTING).
    let order: [bool; 2] = match way {
        Way::FromVm => [true, false],
        Way::ToVm => [false, true],
    };
    let mut passed_by: [Option<&Provenance>; 2] = [None, None];
    for is_eth in order {
        let r = if is_eth {
            eval_eth(program.eth(way), frame, on_hit)
        } else if ip_applies && !program.ip(way).is_empty() {
            let rules = program.ip(way);
            match index {
                Some(ix) => eval_ip(
                    ix.candidates(way, frame).map(|i| &rules[i as usize]),
                    frame,
                    cx,
                    on_hit,
                ),
                None => eval_ip(rules.iter(), frame, cx, on_hit),
            }
        } else {
            LayerResult::Pass(None)
        };
        match r {
            LayerResult::Stop(v, rule) => {
                return Outcome {
                    verdict: v,
                    layer: if is_eth {
                        Decider::Ethernet
                    } else {
                        Decider::Ip
                    },
                    rule: Some(rule),
                    ip_layer_seen: ip_applies && (!is_eth || way == Way::ToVm),
                }
            }
            LayerResult::Pass(p) => passed_by[usize::from(!is_eth)] = p,
        }
    }
    // The most specific pass: an IP-layer accept, else an ethernet-layer accept, else default.
    let (layer, rule) = match passed_by {
        [_, Some(ip)] => (Decider::Ip, Some(ip)),
        [Some(eth), None] => (Decider::Ethernet, Some(eth)),
        [None, None] => (Decider::Default, None),
    };
    Outcome {
        verdict: Verdict::Accept,
        layer,
        rule,
        ip_layer_seen: ip_applies,
    }
}

/// br_netfilter hands untagged IPv4/IPv6 frames to iptables (bridge-nf-filter-vlan-tagged=0).
fn ip_layer_applies(frame: &Frame) -> bool {
    frame.vlan.is_none() && frame.ip.is_some()
}

fn eval_eth<'p>(
    chains: &'p EthChains,
    frame: &Frame,
    on_hit: &mut dyn FnMut(&'p Provenance),
) -> LayerResult<'p> {
    for entry in &chains.root {
        match entry {
            RootEntry::Rule(r) => {
                if !eth_matches(r, frame) {
                    continue;
                }
                on_hit(&r.origin);
                match r.action {
                    EthAction::Accept | EthAction::Return => {
                        return LayerResult::Pass(Some(&r.origin))
                    }
                    EthAction::Drop => return LayerResult::Stop(Verdict::Drop, &r.origin),
                    EthAction::Continue => {}
                }
            }
            RootEntry::Jump { chain } => {
                let sub = &chains.subchains[*chain];
                if !jump_matches(sub.jump, frame) {
                    continue;
                }
                let mut returned = false;
                for r in &sub.rules {
                    if !eth_matches(r, frame) {
                        continue;
                    }
                    on_hit(&r.origin);
                    match r.action {
                        EthAction::Accept => return LayerResult::Pass(Some(&r.origin)),
                        EthAction::Drop => return LayerResult::Stop(Verdict::Drop, &r.origin),
                        EthAction::Return => {
                            returned = true;
                            break;
                        }
                        EthAction::Continue => {}
                    }
                }
                // A user chain's policy is ACCEPT: falling off its end accepts the frame.
                if !returned {
                    return LayerResult::Pass(None);
                }
            }
        }
    }
    LayerResult::Pass(None)
}

fn jump_matches(j: JumpMatch, frame: &Frame) -> bool {
    match j {
        JumpMatch::Any => true,
        JumpMatch::EtherType { value } => frame.ethertype == value,
        JumpMatch::StpDestination => frame.dst.0 == [0x01, 0x80, 0xc2, 0, 0, 0],
    }
}

fn eth_matches(r: &EthRule, frame: &Frame) -> bool {
    if frame.runt {
        return false;
    }
    if let Some(t) = r.ethertype {
        if frame.ethertype != t {
            return false;
        }
    }
    r.tests.iter().all(|t| holds(t, frame, None))
}

/// Whether a test holds for the frame: its property, negated when the test is, or false when
/// the kernel's match cannot read the property at all (see [`test`]).
fn holds(t: &Test, f: &Frame, cx: Option<&Context>) -> bool {
    test(t, f, cx).is_some_and(|p| p != t.negated)
}

fn eval_ip<'p>(
    rules: impl Iterator<Item = &'p IpRule>,
    frame: &Frame,
    cx: &Context,
    on_hit: &mut dyn FnMut(&'p Provenance),
) -> LayerResult<'p> {
    let Some(ip) = frame.ip else {
        return LayerResult::Pass(None);
    };
    let family = match ip.src {
        IpAddr::V4(_) => Family::V4,
        IpAddr::V6(_) => Family::V6,
    };
    for r in rules {
        if r.family != family {
            continue;
        }
        if let Some(p) = r.ip_protocol {
            if ip.proto != p {
                continue;
            }
        }
        if !r.tests.iter().all(|t| holds(t, frame, Some(cx))) {
            continue;
        }
        if let Some(s) = r.state {
            let (state, dir) = cx
                .ct
                .map_or((StateSet::NEW, CtDir::Original), |c| (c.state, c.dir));
            if !s.states.contains(state) || s.ctdir.is_some_and(|d| d != dir) {
                continue;
            }
        }
        if let Some(limit) = r.connlimit_above {
            if cx.ct.map_or(0, |c| c.conns_from_source) <= limit {
                continue;
            }
        }
        on_hit(&r.origin);
        return match r.action {
            IpAction::Accept | IpAction::Return => LayerResult::Pass(Some(&r.origin)),
            IpAction::Drop => LayerResult::Stop(Verdict::Drop, &r.origin),
            IpAction::Reject => LayerResult::Stop(Verdict::Reject, &r.origin),
        };
    }
    LayerResult::Pass(None)
}

fn mac_eq(v: MacAddr, want: &TestValue) -> bool {
    match want {
        TestValue::Mac { addr, mask } => {
            (0..6).all(|i| v.0[i] & mask.0[i] == addr.0[i] & mask.0[i])
        }
        _ => false,
    }
}

fn in_range(v: u32, want: &TestValue) -> bool {
    match want {
        TestValue::Range { lo, hi } => (*lo..=*hi).contains(&v),
        _ => false,
    }
}

fn ip_eq(v: IpAddr, want: &TestValue) -> bool {
    match (v, want) {
        (IpAddr::V4(a), TestValue::Ipv4 { addr, prefix }) => {
            let m = u32::MAX.checked_shl(32 - u32::from(*prefix)).unwrap_or(0);
            u32::from(a) & m == u32::from(*addr) & m
        }
        (IpAddr::V6(a), TestValue::Ipv6 { addr, prefix }) => {
            let m = u128::MAX.checked_shl(128 - u32::from(*prefix)).unwrap_or(0);
            u128::from(a) & m == u128::from(*addr) & m
        }
        (IpAddr::V4(a), TestValue::Ipv4Range { from, to }) => (*from..=*to).contains(&a),
        (IpAddr::V6(a), TestValue::Ipv6Range { from, to }) => (*from..=*to).contains(&a),
        _ => false,
    }
}

fn ipv4(b: [u8; 4]) -> IpAddr {
    IpAddr::V4(b.into())
}

/// Whether the frame has the property (before negation). A property the frame lacks is false;
/// None where the kernel's match gives up before testing it, so that negation does not apply:
/// ARP/RARP fields whose conditions (header length, types, address lengths) fail (see
/// [`crate::frame::Arp`]).
fn test(t: &Test, f: &Frame, cx: Option<&Context>) -> Option<bool> {
    let v = &t.value;
    let arp = f.arp.as_ref();
    let stp = f.stp.as_ref().and_then(|s| s.config.as_ref());
    let ip = f.ip.as_ref();
    let arp_ips = || arp.and_then(|a| a.ips);
    Some(match t.field {
        Field::ArpHwType => in_range(u32::from(arp?.htype), v),
        Field::ArpProtoType => in_range(u32::from(arp?.ptype), v),
        Field::ArpOpcode => in_range(u32::from(arp?.opcode), v),
        Field::ArpSrcMac => mac_eq(arp?.sha?, v),
        Field::ArpDstMac => mac_eq(arp?.tha?, v),
        Field::ArpSrcIp => ip_eq(ipv4(arp_ips()?.spa), v),
        Field::ArpDstIp => ip_eq(ipv4(arp_ips()?.tpa), v),
        Field::ArpGratuitous => {
            let a = arp_ips()?;
            matches!(v, TestValue::Flag { value } if *value == (a.spa == a.tpa))
        }
        Field::SrcMac => mac_eq(f.src, v),
        Field::DstMac => mac_eq(f.dst, v),
        Field::EtherType => in_range(u32::from(f.ethertype), v),
        Field::VlanId => f.vlan.is_some_and(|x| in_range(u32::from(x.id), v)),
        Field::VlanEncap => f.vlan.is_some_and(|x| in_range(u32::from(x.encap), v)),
        Field::StpType => f.stp.is_some_and(|s| in_range(u32::from(s.bpdu_type), v)),
        Field::StpFlags => stp.is_some_and(|s| in_range(u32::from(s.flags), v)),
        Field::StpRootPriority => stp.is_some_and(|s| in_range(u32::from(s.root_priority), v)),
        Field::StpRootAddr => stp.is_some_and(|s| mac_eq(s.root_addr, v)),
        Field::StpRootCost => stp.is_some_and(|s| in_range(s.root_cost, v)),
        Field::StpSenderPriority => stp.is_some_and(|s| in_range(u32::from(s.sender_priority), v)),
        Field::StpSenderAddr => stp.is_some_and(|s| mac_eq(s.sender_addr, v)),
        Field::StpPort => stp.is_some_and(|s| in_range(u32::from(s.port), v)),
        Field::StpMsgAge => stp.is_some_and(|s| in_range(u32::from(s.msg_age), v)),
        Field::StpMaxAge => stp.is_some_and(|s| in_range(u32::from(s.max_age), v)),
        Field::StpHelloTime => stp.is_some_and(|s| in_range(u32::from(s.hello_time), v)),
        Field::StpForwardDelay => stp.is_some_and(|s| in_range(u32::from(s.forward_delay), v)),
        Field::SrcIp | Field::SrcIpRange => ip.is_some_and(|i| ip_eq(i.src, v)),
        Field::DstIp | Field::DstIpRange => ip.is_some_and(|i| ip_eq(i.dst, v)),
        Field::IpProtocol => ip.is_some_and(|i| in_range(u32::from(i.proto), v)),
        Field::SrcPort => f
            .transport
            .ports
            .is_some_and(|(s, _)| in_range(u32::from(s), v)),
        Field::DstPort => f
            .transport
            .ports
            .is_some_and(|(_, d)| in_range(u32::from(d), v)),
        Field::Dscp => ip.is_some_and(|i| in_range(u32::from(i.tos >> 2), v)),
        Field::Tos => ip.is_some_and(|i| in_range(u32::from(i.tos), v)),
        Field::IcmpType | Field::IcmpCode => match (f.transport.icmp, v) {
            (Some((ty, code)), TestValue::IcmpTypeCode { types, codes }) => {
                (types.0..=types.1).contains(&ty) && (codes.0..=codes.1).contains(&code)
            }
            _ => false,
        },
        Field::TcpFlags => match (f.transport.tcp_flags, v) {
            (Some(bits), TestValue::TcpFlags { flags }) => bits & flags.mask == flags.set,
            _ => false,
        },
        Field::TcpOption => match v {
            TestValue::Range { lo, .. } => {
                f.transport.tcp_flags.is_some() && f.transport.has_tcp_option(*lo as u8)
            }
            _ => false,
        },
        Field::Ipset => match (v, ip, cx) {
            (TestValue::Ipset { name, dirs }, Some(i), Some(cx)) => {
                let set = cx.ipsets.get(name);
                dirs.iter().take(1).all(|d| {
                    let a = match d {
                        SetDir::Src => i.src,
                        SetDir::Dst => i.dst,
                    };
                    set.is_some_and(|s| s.contains(&a))
                })
            }
            _ => false,
        },
        // Not packet properties: handled by the rule (state, connlimit) or not tests at all.
        Field::State | Field::ConnlimitAbove | Field::Comment => true,
    })
}
