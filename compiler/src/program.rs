//! The instantiated program for one VM port: ordered chains per layer and per direction.
//!
//! This is the single input of the simulator and of every backend. Everything libvirt decides
//! at instantiation is already decided here: variables are substituted, filterrefs expanded,
//! rules ordered, mirrored copies made, swapped fields rewritten (so `SrcIp` always means the
//! packet's source address), state matches added, and ignored attributes dropped.

use crate::lang::{Family, Field};
use crate::source::{Location, Span};
use crate::value::{MacAddr, SetDir, StateSet, TcpFlags};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The way a frame crosses the VM's port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Way {
    /// Sent by the VM (rule direction `out`; libvirt's `I` chains).
    FromVm,
    /// Delivered to the VM (rule direction `in`; libvirt's `O` chains).
    ToVm,
}

impl Way {
    /// Both ways, from-VM first.
    pub const BOTH: [Way; 2] = [Way::FromVm, Way::ToVm];

    /// Index for per-way arrays.
    pub fn index(self) -> usize {
        match self {
            Way::FromVm => 0,
            Way::ToVm => 1,
        }
    }
}

/// Where a program rule came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Provenance {
    /// The filter that holds the rule.
    pub filter: String,
    /// `file:line:column` of the `<rule>` element.
    pub location: Location,
    /// The rule's span.
    #[serde(skip)]
    pub span: Span,
    /// The filterref path from the binding's filter down to this filter (outermost first).
    pub path: Vec<String>,
    /// The variable values this copy of the rule was made with (for list variables).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub bindings: BTreeMap<String, String>,
    /// Index of this program rule, unique within its program (0..[`Program::rule_count`]);
    /// lets consumers keep per-rule counters in a vector.
    pub id: u32,
}

/// The value a test compares a field with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TestValue {
    /// A MAC address under a mask.
    Mac {
        /// Address.
        addr: MacAddr,
        /// Mask (all ones when none was given).
        mask: MacAddr,
    },
    /// An IPv4 prefix.
    Ipv4 {
        /// Address.
        addr: Ipv4Addr,
        /// Prefix length.
        prefix: u8,
    },
    /// An IPv6 prefix.
    Ipv6 {
        /// Address.
        addr: Ipv6Addr,
        /// Prefix length.
        prefix: u8,
    },
    /// An inclusive IPv4 address range.
    Ipv4Range {
        /// First address.
        from: Ipv4Addr,
        /// Last address.
        to: Ipv4Addr,
    },
    /// An inclusive IPv6 address range.
    Ipv6Range {
        /// First address.
        from: Ipv6Addr,
        /// Last address.
        to: Ipv6Addr,
    },
    /// An inclusive number range (ports, STP fields). A single number is `lo == hi`.
    Range {
        /// Lowest.
        lo: u32,
        /// Highest.
        hi: u32,
    },
    /// ICMP type and code ranges tested together (one negation covers both).
    IcmpTypeCode {
        /// Type range.
        types: (u8, u8),
        /// Code range.
        codes: (u8, u8),
    },
    /// A boolean property (gratuitous ARP).
    Flag {
        /// Expected value.
        value: bool,
    },
    /// TCP flags.
    TcpFlags {
        /// Mask and set.
        flags: TcpFlags,
    },
    /// Membership in a named ipset.
    Ipset {
        /// Set name.
        name: String,
        /// Which packet addresses form the lookup key.
        dirs: Vec<SetDir>,
    },
}

/// One test of a rule: all tests of a rule must hold (each possibly negated).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Test {
    /// The packet property, from the packet's point of view.
    pub field: Field,
    /// What it is compared with.
    #[serde(flatten)]
    pub value: TestValue,
    /// Whether the test is inverted.
    pub negated: bool,
}

/// What an ethernet-layer rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EthAction {
    /// Frame passes this layer.
    Accept,
    /// Frame is dropped (also libvirt's `reject`).
    Drop,
    /// Leave the sub-chain (in the root chain: passes this layer).
    Return,
    /// Next rule.
    Continue,
}

/// An ethernet-layer rule.
#[derive(Clone, Debug, Serialize)]
pub struct EthRule {
    /// The action.
    pub action: EthAction,
    /// Whether the rule was written as `reject` (which libvirt turns into a drop).
    pub written_reject: bool,
    /// The rule's priority.
    pub priority: i32,
    /// The protocol element (`None`: matches every frame).
    pub protocol: Option<&'static str>,
    /// The ethertype the protocol element requires, if any.
    pub ethertype: Option<u16>,
    /// The tests.
    pub tests: Vec<Test>,
    /// Whether source/destination fields were swapped (the from-VM copy of an `inout` rule).
    pub swapped: bool,
    /// Where it came from.
    pub origin: Provenance,
}

/// What a jump into a sub-chain requires of the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum JumpMatch {
    /// Every frame (mac chains).
    Any,
    /// A given ethertype.
    EtherType {
        /// The ethertype.
        value: u16,
    },
    /// STP: destination MAC 01:80:c2:00:00:00.
    StpDestination,
}

/// An entry of a root chain.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum RootEntry {
    /// A root rule.
    Rule(EthRule),
    /// A jump into a sub-chain.
    Jump {
        /// Index into [`EthChains::subchains`].
        chain: usize,
    },
}

/// A protocol sub-chain (`I-vnet0-arp`).
#[derive(Clone, Debug, Serialize)]
pub struct SubChain {
    /// The chain name from the filters (`arp`, `arp-ip`, ...).
    pub name: String,
    /// Its priority (decides where the jump goes).
    pub priority: i32,
    /// What the jump into it matches.
    pub jump: JumpMatch,
    /// Its rules, in order. A frame that matches none is accepted.
    pub rules: Vec<EthRule>,
}

/// The ethernet layer for one way.
#[derive(Clone, Debug, Default, Serialize)]
pub struct EthChains {
    /// The root chain: rules and jumps in order. Falling off the end accepts.
    pub root: Vec<RootEntry>,
    /// Sub-chains.
    pub subchains: Vec<SubChain>,
}

/// What an IP-layer rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IpAction {
    /// Frame passes this layer.
    Accept,
    /// Frame is dropped.
    Drop,
    /// Frame is dropped with an ICMP error or TCP reset.
    Reject,
    /// Leave libvirt's chain: the host's own rules decide (accept by default).
    Return,
}

/// Direction of a packet relative to its tracked connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CtDir {
    /// Same direction as the packet that opened the connection.
    Original,
    /// The reply direction.
    Reply,
}

/// A connection-tracking test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct StateTest {
    /// Accepted states.
    pub states: StateSet,
    /// Required connection direction, if any.
    pub ctdir: Option<CtDir>,
}

/// An IP-layer rule.
#[derive(Clone, Debug, Serialize)]
pub struct IpRule {
    /// The action.
    pub action: IpAction,
    /// The rule's priority.
    pub priority: i32,
    /// IPv4 or IPv6.
    pub family: Family,
    /// The protocol element (`tcp`, `all-ipv6`, ...).
    pub protocol: &'static str,
    /// The IP protocol number it requires (`None` for all/all-ipv6).
    pub ip_protocol: Option<u8>,
    /// The tests.
    pub tests: Vec<Test>,
    /// The connection-state test, if any.
    pub state: Option<StateTest>,
    /// `connlimit-above` N: matches when the source has more than N tracked connections.
    pub connlimit_above: Option<u32>,
    /// Whether this is the mirrored copy (fields swapped).
    pub swapped: bool,
    /// Where it came from.
    pub origin: Provenance,
}

/// The program for one port.
#[derive(Clone, Debug, Serialize)]
pub struct Program {
    /// The port device (`vnet0`).
    pub port: String,
    /// The VM's MAC address from the binding.
    pub mac: MacAddr,
    /// The binding's filter.
    pub filter: String,
    /// The variables at the top level, after defaults and overrides.
    pub variables: BTreeMap<String, Vec<String>>,
    /// Ethernet layer, indexed by [`Way::index`].
    pub eth: [EthChains; 2],
    /// IP layer, indexed by [`Way::index`]: rules in order. Falling off the end accepts.
    pub ip: [Vec<IpRule>; 2],
}

impl Program {
    /// The ethernet chains for one way.
    pub fn eth(&self, way: Way) -> &EthChains {
        &self.eth[way.index()]
    }

    /// The IP rules for one way.
    pub fn ip(&self, way: Way) -> &[IpRule] {
        &self.ip[way.index()]
    }

    /// Gives every program rule its [`Provenance::id`], in evaluation order.
    pub fn number_rules(&mut self) {
        let mut next = 0u32;
        let mut take = || {
            next += 1;
            next - 1
        };
        for c in &mut self.eth {
            for e in &mut c.root {
                if let RootEntry::Rule(r) = e {
                    r.origin.id = take();
                }
            }
            for sub in &mut c.subchains {
                for r in &mut sub.rules {
                    r.origin.id = take();
                }
            }
        }
        for list in &mut self.ip {
            for r in list {
                r.origin.id = take();
            }
        }
    }

    /// Every rule's provenance, in [`Provenance::id`] order.
    pub fn provenances(&self) -> Vec<&Provenance> {
        let mut v = Vec::with_capacity(self.rule_count());
        for c in &self.eth {
            for e in &c.root {
                if let RootEntry::Rule(r) = e {
                    v.push(&r.origin);
                }
            }
            for sub in &c.subchains {
                v.extend(sub.rules.iter().map(|r| &r.origin));
            }
        }
        for list in &self.ip {
            v.extend(list.iter().map(|r| &r.origin));
        }
        v
    }

    /// Number of rules in the program (all layers and ways).
    pub fn rule_count(&self) -> usize {
        let eth: usize = self
            .eth
            .iter()
            .map(|c| {
                c.root
                    .iter()
                    .filter(|e| matches!(e, RootEntry::Rule(_)))
                    .count()
                    + c.subchains.iter().map(|s| s.rules.len()).sum::<usize>()
            })
            .sum();
        eth + self.ip.iter().map(Vec::len).sum::<usize>()
    }
}

impl std::fmt::Display for TestValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TestValue::Mac { addr, mask } if *mask == MacAddr::FULL => write!(f, "{addr}"),
            TestValue::Mac { addr, mask } => write!(f, "{addr}/{mask}"),
            TestValue::Ipv4 { addr, prefix: 32 } => write!(f, "{addr}"),
            TestValue::Ipv4 { addr, prefix } => write!(f, "{addr}/{prefix}"),
            TestValue::Ipv6 { addr, prefix: 128 } => write!(f, "{addr}"),
            TestValue::Ipv6 { addr, prefix } => write!(f, "{addr}/{prefix}"),
            TestValue::Ipv4Range { from, to } => write!(f, "{from}-{to}"),
            TestValue::Ipv6Range { from, to } => write!(f, "{from}-{to}"),
            TestValue::Range { lo, hi } if lo == hi => write!(f, "{lo}"),
            TestValue::Range { lo, hi } => write!(f, "{lo}..{hi}"),
            TestValue::IcmpTypeCode { types, codes } => {
                let r = |(a, b): (u8, u8)| {
                    if a == b {
                        a.to_string()
                    } else {
                        format!("{a}..{b}")
                    }
                };
                write!(f, "type {} code {}", r(*types), r(*codes))
            }
            TestValue::Flag { value } => write!(f, "{value}"),
            TestValue::TcpFlags { flags } => write!(f, "{flags}"),
            TestValue::Ipset { name, dirs } => {
                let d: Vec<&str> = dirs
                    .iter()
                    .map(|d| match d {
                        SetDir::Src => "src",
                        SetDir::Dst => "dst",
                    })
                    .collect();
                write!(f, "{name}[{}]", d.join(","))
            }
        }
    }
}

/// The kebab-case name of a field, as used in output.
pub fn field_name(field: Field) -> String {
    serde_json::to_value(field)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

impl std::fmt::Display for Test {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = field_name(self.field);
        let value = match (self.field, &self.value) {
            (Field::EtherType | Field::VlanEncap, TestValue::Range { lo, hi }) if lo == hi => {
                format!("0x{lo:04x}")
            }
            (Field::Tos, TestValue::Range { lo, .. }) => format!("0x{lo:02x}"),
            _ => self.value.to_string(),
        };
        let op = if self.negated { "!=" } else { "==" };
        write!(f, "{name} {op} {value}")
    }
}
