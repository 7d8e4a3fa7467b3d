//! Evaluation positions in the instantiated program: with a binding configured, every source
//! rule's real place(s) in the ordered chains libvirt would apply to the port, counting the
//! rules of every included filter.
//!
//! The program is made by the compiler's `instantiate` on the analysis's library, off the
//! state actor (a blocking task per analysis, see `state`), so edits never wait for it; the
//! features that show positions wait for it briefly and otherwise fall back to the position
//! within the rule's own filter ([`crate::analysis::rule_places`]).

use nwf_compiler::binding::Binding;
use nwf_compiler::diag::{Diagnostics, Severity};
use nwf_compiler::instantiate::instantiate;
use nwf_compiler::lang::Layer;
use nwf_compiler::library::Library;
use nwf_compiler::program::{Provenance, RootEntry, Way};
use nwf_compiler::source::Span;
use std::collections::HashMap;

/// The chain a program rule is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Chain {
    /// The ethernet root chain (its entries are rules and jumps into sub-chains).
    Root,
    /// An ethernet sub-chain, with its priority.
    Sub(String, i32),
    /// The IP layer's rules for one way (one list, mirrored and stateful copies included).
    Ip,
}

/// Where copies of one source rule stand in one chain of the program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainPlace {
    /// The layer.
    pub layer: Layer,
    /// The way frames cross the port.
    pub way: Way,
    /// The chain.
    pub chain: Chain,
    /// 1-based positions in the chain (several for list variables and mirrored copies),
    /// numbered like `nwf show` (root chain entries include jumps).
    pub positions: Vec<usize>,
    /// Number of entries of the chain.
    pub of: usize,
}

/// The program positions of every source rule, for one binding.
#[derive(Clone, Debug, Default)]
pub struct Placement {
    /// The binding's port device.
    pub port: String,
    /// The binding's filter.
    pub filter: String,
    /// By the source rule's span: its places, in program order (ethernet before IP, from
    /// the VM before to the VM).
    pub rules: HashMap<Span, Vec<ChainPlace>>,
    /// By the source rule's span: the filterref paths it was reached through.
    pub paths: HashMap<Span, Vec<Vec<String>>>,
}

/// The result of instantiating the configured binding.
#[derive(Clone, Debug)]
pub enum Placed {
    /// The program could be made.
    Program(Placement),
    /// It could not: the first error and how many there were.
    Failed {
        /// The binding's filter.
        filter: String,
        /// The first error's message.
        reason: String,
        /// Number of errors.
        errors: usize,
    },
}

impl Placed {
    /// Instantiates `binding` on `lib` (the analysis's library: standard filters, disk files
    /// and open documents) and indexes every program rule by its source rule.
    pub fn compute(lib: &Library, binding: &Binding) -> Placed {
        let mut diags = Diagnostics::new();
        let Some(p) = instantiate(lib, binding, &[], &mut diags) else {
            let errors: Vec<_> = diags
                .items()
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .collect();
            return Placed::Failed {
                filter: binding.filter.clone(),
                reason: errors
                    .first()
                    .map_or_else(|| "unknown error".into(), |d| d.message.clone()),
                errors: errors.len(),
            };
        };
        let mut out = Placement {
            port: p.port.clone(),
            filter: p.filter.clone(),
            ..Default::default()
        };
        let mut add =
            |layer: Layer, way: Way, chain: &Chain, pos: usize, of: usize, o: &Provenance| {
                let places = out.rules.entry(o.span).or_default();
                match places
                    .iter_mut()
                    .find(|c| c.layer == layer && c.way == way && &c.chain == chain)
                {
                    Some(c) => c.positions.push(pos),
                    None => places.push(ChainPlace {
                        layer,
                        way,
                        chain: chain.clone(),
                        positions: vec![pos],
                        of,
                    }),
                }
                let paths = out.paths.entry(o.span).or_default();
                if !paths.contains(&o.path) {
                    paths.push(o.path.clone());
                }
            };
        for way in Way::BOTH {
            let eth = p.eth(way);
            for (i, e) in eth.root.iter().enumerate() {
                if let RootEntry::Rule(r) = e {
                    add(
                        Layer::Ethernet,
                        way,
                        &Chain::Root,
                        i + 1,
                        eth.root.len(),
                        &r.origin,
                    );
                }
            }
            for s in &eth.subchains {
                let chain = Chain::Sub(s.name.clone(), s.priority);
                for (i, r) in s.rules.iter().enumerate() {
                    add(
                        Layer::Ethernet,
                        way,
                        &chain,
                        i + 1,
                        s.rules.len(),
                        &r.origin,
                    );
                }
            }
        }
        for way in Way::BOTH {
            let ip = p.ip(way);
            for (i, r) in ip.iter().enumerate() {
                add(Layer::Ip, way, &Chain::Ip, i + 1, ip.len(), &r.origin);
            }
        }
        Placed::Program(out)
    }
}

fn positions(p: &[usize]) -> String {
    p.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line of a hover: "ethernet layer, from the VM, chain `arp` (priority -500): rule 3 of
/// 12".
pub fn describe(c: &ChainPlace) -> String {
    let way = match c.way {
        Way::FromVm => "from the VM",
        Way::ToVm => "to the VM",
    };
    let (layer, chain, unit) = match &c.chain {
        Chain::Root => ("ethernet layer", ", root chain".to_string(), "entry"),
        Chain::Sub(n, p) => (
            "ethernet layer",
            format!(", chain `{n}` (priority {p})"),
            "rule",
        ),
        Chain::Ip => ("IP layer", String::new(), "rule"),
    };
    let unit = if c.positions.len() == 1 {
        unit.to_string()
    } else if unit == "entry" {
        "entries".to_string()
    } else {
        format!("{unit}s")
    };
    format!(
        "{layer}, {way}{chain}: {unit} {} of {}",
        positions(&c.positions),
        c.of
    )
}

/// A short label for an inlay hint: "out arp #3/12".
pub fn label(c: &ChainPlace) -> String {
    let way = match c.way {
        Way::FromVm => "out",
        Way::ToVm => "in",
    };
    let chain = match &c.chain {
        Chain::Root => "root",
        Chain::Sub(n, _) => n.as_str(),
        Chain::Ip => "ip",
    };
    let pos: Vec<String> = c.positions.iter().map(usize::to_string).collect();
    format!("{way} {chain} #{}/{}", pos.join(","), c.of)
}
