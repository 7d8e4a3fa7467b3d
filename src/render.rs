//! Human-readable rendering of an instantiated program (`nwf show`).

use nwf_compiler::program::{EthChains, EthRule, IpRule, JumpMatch, Program, RootEntry, Way};
use std::fmt::Write;

/// Renders the whole program.
pub fn program(p: &Program) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "port {}  mac {}  filter {}", p.port, p.mac, p.filter);
    let vars: Vec<String> = p
        .variables
        .iter()
        .map(|(k, v)| format!("{k}={}", v.join(",")))
        .collect();
    let _ = writeln!(out, "variables: {}", vars.join(" "));
    for way in Way::BOTH {
        let title = match way {
            Way::FromVm => "frames from the VM",
            Way::ToVm => "frames to the VM",
        };
        let _ = writeln!(out, "\nethernet layer, {title}:");
        eth(&mut out, p.eth(way));
        let _ = writeln!(out, "\nIP layer, {title}:");
        let rules = p.ip(way);
        if rules.is_empty() {
            let _ = writeln!(out, "  (no rules: accept)");
        }
        for (i, r) in rules.iter().enumerate() {
            ip_rule(&mut out, i + 1, r);
        }
        if !rules.is_empty() {
            let _ = writeln!(out, "  end: accept (host rules decide)");
        }
    }
    out
}

fn eth(out: &mut String, c: &EthChains) {
    if c.root.is_empty() {
        let _ = writeln!(out, "  (no rules: accept)");
        return;
    }
    let _ = writeln!(out, "  root:");
    for (i, e) in c.root.iter().enumerate() {
        match e {
            RootEntry::Rule(r) => eth_rule(out, i + 1, r),
            RootEntry::Jump { chain } => {
                let s = &c.subchains[*chain];
                let _ = writeln!(
                    out,
                    "  {:>4}  jump {} if {}  (chain priority {})",
                    i + 1,
                    s.name,
                    jump(s.jump),
                    s.priority
                );
            }
        }
    }
    let _ = writeln!(out, "        end: accept");
    for s in &c.subchains {
        let _ = writeln!(out, "  chain {} (priority {}):", s.name, s.priority);
        for (i, r) in s.rules.iter().enumerate() {
            eth_rule(out, i + 1, r);
        }
        let _ = writeln!(out, "        end: accept");
    }
}

fn jump(j: JumpMatch) -> String {
    match j {
        JumpMatch::Any => "any frame".into(),
        JumpMatch::EtherType { value } => format!("ether-type == 0x{value:04x}"),
        JumpMatch::StpDestination => "dst-mac == 01:80:c2:00:00:00".into(),
    }
}

fn eth_rule(out: &mut String, n: usize, r: &EthRule) {
    let mut m: Vec<String> = Vec::new();
    if let Some(p) = r.protocol {
        m.push(p.to_string());
    }
    if let Some(t) = r.ethertype {
        m.push(format!("ether-type == 0x{t:04x}"));
    }
    m.extend(r.tests.iter().map(|t| t.to_string()));
    let action = format!("{:?}", r.action).to_lowercase();
    let action = if r.written_reject {
        "drop (reject)".to_string()
    } else {
        action
    };
    let what = if m.is_empty() {
        "any frame".to_string()
    } else {
        m.join(", ")
    };
    let _ = writeln!(
        out,
        "  {n:>4}  {action:<8} {what}{}",
        if r.swapped { "  [swapped]" } else { "" }
    );
    origin(out, &r.origin);
}

fn ip_rule(out: &mut String, n: usize, r: &IpRule) {
    let mut m: Vec<String> = vec![r.protocol.to_string()];
    m.extend(r.tests.iter().map(|t| t.to_string()));
    if let Some(s) = &r.state {
        let dir = s
            .ctdir
            .map(|d| format!(" ({d:?})").to_lowercase())
            .unwrap_or_default();
        m.push(format!("state {}{dir}", s.states));
    }
    if let Some(c) = r.connlimit_above {
        m.push(format!("connlimit > {c}"));
    }
    let action = format!("{:?}", r.action).to_lowercase();
    let _ = writeln!(
        out,
        "  {n:>4}  {action:<8} {}{}",
        m.join(", "),
        if r.swapped { "  [mirrored]" } else { "" }
    );
    origin(out, &r.origin);
}

fn origin(out: &mut String, o: &nwf_compiler::program::Provenance) {
    let via = if o.path.len() > 1 {
        format!("  via {}", o.path.join(" > "))
    } else {
        String::new()
    };
    let vars: Vec<String> = o.bindings.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let vars = if vars.is_empty() {
        String::new()
    } else {
        format!("  with {}", vars.join(" "))
    };
    let _ = writeln!(out, "        from {} ({}){via}{vars}", o.location, o.filter);
}
