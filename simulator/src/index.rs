//! A decision structure over a program's IP-layer rules, so that a frame is compared with the
//! rules that can match it instead of every rule in turn.
//!
//! Rules are grouped by address family and IP protocol, then by an exact destination or source
//! port when they test one. A frame's candidates are the rules of its group with its ports plus
//! the group's rules without a port key, in their original order: evaluation order and results
//! are exactly those of the linear scan.

use crate::frame::Frame;
use nwf_compiler::lang::{Family, Field};
use nwf_compiler::program::{IpRule, Program, TestValue, Way};
use rustc_hash::FxHashMap;

/// Rule indices (into one way's IP rule list), ascending.
type Ids = Vec<u32>;

#[derive(Debug, Default)]
struct Group {
    by_dport: FxHashMap<u16, Ids>,
    by_sport: FxHashMap<u16, Ids>,
    rest: Ids,
}

#[derive(Debug, Default)]
struct WayIndex {
    /// (IPv6?, protocol) -> group.
    groups: FxHashMap<(bool, u8), Group>,
    /// Per family, the rules of protocols without a group (rules with no protocol).
    fallback: [Ids; 2],
}

/// The index of a whole program.
#[derive(Debug, Default)]
pub struct ProgramIndex {
    ways: [WayIndex; 2],
}

fn exact_port(r: &IpRule, field: Field) -> Option<u16> {
    r.tests.iter().find_map(|t| match (&t.value, t.negated) {
        (TestValue::Range { lo, hi }, false) if t.field == field && lo == hi => Some(*lo as u16),
        _ => None,
    })
}

impl ProgramIndex {
    /// Builds the index.
    pub fn new(p: &Program) -> ProgramIndex {
        let mut ix = ProgramIndex::default();
        for way in Way::BOTH {
            let rules = p.ip(way);
            let w = &mut ix.ways[way.index()];
            let mut protos: Vec<(bool, u8)> = rules
                .iter()
                .filter_map(|r| r.ip_protocol.map(|pr| (r.family == Family::V6, pr)))
                .collect();
            protos.sort_unstable();
            protos.dedup();
            for (i, r) in rules.iter().enumerate() {
                let v6 = r.family == Family::V6;
                if r.ip_protocol.is_none() {
                    w.fallback[usize::from(v6)].push(i as u32);
                }
            }
            for &(v6, proto) in &protos {
                let mut g = Group::default();
                for (i, r) in rules.iter().enumerate() {
                    if (r.family == Family::V6) != v6 || r.ip_protocol.is_some_and(|pr| pr != proto)
                    {
                        continue;
                    }
                    let i = i as u32;
                    if let Some(port) = exact_port(r, Field::DstPort) {
                        g.by_dport.entry(port).or_default().push(i);
                    } else if let Some(port) = exact_port(r, Field::SrcPort) {
                        g.by_sport.entry(port).or_default().push(i);
                    } else {
                        g.rest.push(i);
                    }
                }
                w.groups.insert((v6, proto), g);
            }
        }
        ix
    }

    /// The indices of the rules of `way` that can match `frame`, ascending.
    pub fn candidates<'a>(&'a self, way: Way, frame: &Frame) -> impl Iterator<Item = u32> + 'a {
        let w = &self.ways[way.index()];
        let empty: &'a [u32] = &[];
        let (a, b, c): (&[u32], &[u32], &[u32]) = match frame.ip {
            None => (empty, empty, empty),
            Some(ip) => {
                let v6 = ip.src.is_ipv6();
                match w.groups.get(&(v6, ip.proto)) {
                    None => (&w.fallback[usize::from(v6)], empty, empty),
                    Some(g) => {
                        let (sp, dp) = match frame.transport.ports {
                            Some((s, d)) => (Some(s), Some(d)),
                            None => (None, None),
                        };
                        (
                            &g.rest,
                            dp.and_then(|d| g.by_dport.get(&d))
                                .map_or(empty, Vec::as_slice),
                            sp.and_then(|s| g.by_sport.get(&s))
                                .map_or(empty, Vec::as_slice),
                        )
                    }
                }
            }
        };
        Merge3 { a, b, c }
    }
}

/// Merges three ascending slices.
struct Merge3<'a> {
    a: &'a [u32],
    b: &'a [u32],
    c: &'a [u32],
}

impl Iterator for Merge3<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let pick = [self.a.first(), self.b.first(), self.c.first()]
            .into_iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (*v, i)))
            .min()?;
        match pick.1 {
            0 => self.a = &self.a[1..],
            1 => self.b = &self.b[1..],
            _ => self.c = &self.c[1..],
        }
        Some(pick.0)
    }
}
