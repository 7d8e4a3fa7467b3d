//! The checker: finds what the reader cannot see in one element — references to filters that do
//! not exist, filterref cycles, and libvirt pitfalls that make a filter do something other than
//! it appears to. It reads only the IR, so every front end gets the same checks.

use crate::diag::{Diagnostic, Diagnostics};
use crate::ir::{Entry, Filter, Match, Operand, Rule};
use crate::lang::{self, Action, Direction, Layer, Part};
use crate::library::Library;
use crate::value::Value;
use std::collections::HashSet;

/// Checks one filter against the library: references, cycles through it, pitfalls.
pub fn check_filter(lib: &Library, f: &Filter, diags: &mut Diagnostics) {
    if f.chain == "root" && f.priority_written {
        diags.push(
            Diagnostic::warning("W0204", "a chain priority has no effect on the root chain")
                .at(f.priority_span.unwrap_or(f.name_span), "libvirt ignores this: the filter's rules go to the root chain")
                .with_help("root rules are ordered by their own priorities; set `chain` to use a sub-chain"),
        );
    }
    for e in &f.entries {
        match e {
            Entry::Rule(r) => check_rule(f, r, diags),
            Entry::Ref(r) => {
                if lib.get(&r.filter).is_none() {
                    let mut d =
                        Diagnostic::error("E0201", format!("unknown filter `{}`", r.filter))
                            .at(
                                r.name_span,
                                "no filter of this name in the search path or the standard library",
                            )
                            .with_note(
                                "libvirt accepts the definition, but instantiating it fails",
                            );
                    if let Some(s) = lang::did_you_mean(&r.filter, lib.names()) {
                        d = d.with_help(format!("did you mean `{s}`?")).with_fix(s);
                    } else {
                        d = d.with_help("add the directory that defines it with --filters DIR");
                    }
                    diags.push(d);
                }
            }
        }
    }
    check_cycle_from(lib, f, diags);
}

/// W0201 for every negation libvirt does not apply (`match='no'` or `!=` on an attribute that
/// takes its negation from another one). `nwf fmt` and `nwf convert` write the canonical form,
/// which leaves such a negation out (same meaning), so they report it rather than drop it
/// silently.
pub fn ineffective_negations(f: &Filter, diags: &mut Diagnostics) {
    for m in f.rules().filter_map(|r| r.matches.as_ref()) {
        for a in m.attrs.iter().filter(|a| a.written_negated && !a.negated) {
            diags.push(ineffective_negation(a).with_note(
                "the canonical form leaves this negation out: it has no effect in libvirt",
            ));
        }
    }
}

fn ineffective_negation(a: &crate::ir::AttrValue) -> Diagnostic {
    let src = a.spec.neg_from.unwrap_or("?");
    Diagnostic::warning(
        "W0201",
        format!("`match='no'` does not negate `{}`", a.spec.name),
    )
    .at(
        a.name_span,
        format!(
            "libvirt takes this attribute's negation from `{src}`, which is absent or not negated"
        ),
    )
    .with_help(format!(
        "this rule matches `{}` positively; add `{src}` or write the test in a separate rule",
        a.spec.name
    ))
}

/// Reports a filterref cycle that passes through `f` (once, from `f`'s point of view).
fn check_cycle_from(lib: &Library, f: &Filter, diags: &mut Diagnostics) {
    // Depth-first search keeping the path of (filter, filterref) so the cycle can be shown.
    let mut path: Vec<(&Filter, usize)> = vec![(f, 0)];
    let mut done: HashSet<&str> = HashSet::new();
    while let Some((cur, idx)) = path.last_mut() {
        let refs: Vec<_> = cur.refs().collect();
        if *idx >= refs.len() {
            done.insert(cur.name.as_str());
            path.pop();
            continue;
        }
        let r = refs[*idx];
        *idx += 1;
        if r.filter == f.name {
            let mut d = Diagnostic::error("E0202", format!("filterref cycle through `{}`", f.name));
            let chain: Vec<&str> = path
                .iter()
                .map(|(p, _)| p.name.as_str())
                .chain([f.name.as_str()])
                .collect();
            let first = path[0].0.refs().nth(path[0].1 - 1).expect("visited ref");
            d = d.at(first.name_span, format!("cycle: {}", chain.join(" -> ")));
            for (p, i) in path.iter().skip(1) {
                let r = p.refs().nth(i - 1).expect("visited ref");
                d = d.related(
                    r.name_span,
                    format!("`{}` includes `{}` here", p.name, r.filter),
                );
            }
            diags.push(d.with_note("libvirt refuses to define a filter that would close a loop"));
            return;
        }
        if done.contains(r.filter.as_str()) || path.iter().any(|(p, _)| p.name == r.filter) {
            continue;
        }
        if let Some(next) = lib.get(&r.filter) {
            path.push((&next.filter, 0));
        }
    }
}

fn check_rule(f: &Filter, r: &Rule, diags: &mut Diagnostics) {
    let layer = r
        .matches
        .as_ref()
        .map_or(Layer::Ethernet, |m| m.proto.layer);
    if layer == Layer::Ethernet && r.action == Action::Reject {
        diags.push(
            Diagnostic::warning("W0203", "`reject` in the ethernet layer is a plain drop")
                .at(r.span, "ebtables has no reject; libvirt emits DROP")
                .with_help(
                    "use action='drop' to say what happens, or match at the IP layer to reject",
                ),
        );
    }
    if layer == Layer::Ip && r.action == Action::Continue {
        diags.push(
            Diagnostic::error("E0116", "`continue` is not possible in the IP layer")
                .at(r.span, "libvirt refuses to instantiate this rule")
                .with_help(
                    "IP-layer rules are evaluated in order anyway; remove the rule or use return",
                ),
        );
    }
    if f.chain != "root" && r.priority < f.priority {
        diags.push(
            Diagnostic::warning(
                "W0209",
                format!(
                    "rule priority {} is below its chain's priority {}",
                    r.priority, f.priority
                ),
            )
            .at(r.span, format!("libvirt raises it to {}", f.priority))
            .related(
                f.name_span,
                format!("chain `{}` has priority {}", f.chain, f.priority),
            ),
        );
    }
    if let Some(m) = &r.matches {
        check_match(r, m, diags);
    }
}

fn check_match(r: &Rule, m: &Match, diags: &mut Diagnostics) {
    check_ignored_combinations(m, diags);
    for a in &m.attrs {
        if lang::schema_rejects(m.proto, a.spec.name) {
            diags.push(
                Diagnostic::warning(
                    "W0215",
                    format!(
                        "libvirt's schema does not allow `{}` on <{}>",
                        a.spec.name, m.proto.name
                    ),
                )
                .at(
                    a.name_span,
                    "`virsh nwfilter-define --validate` rejects this file",
                )
                .with_note("libvirt's parser accepts and applies it without --validate"),
            );
        }
    }
    if m.proto.layer == Layer::Ip
        && m.proto.family == lang::Family::V4
        && !matches!(m.proto.name, "all")
    {
        if let (Some(set), None) = (m.get("ipset"), m.get("ipsetflags")) {
            diags.push(
                Diagnostic::warning("W0215", "libvirt's schema requires `ipsetflags` with `ipset`")
                    .at(set.name_span, "`virsh nwfilter-define --validate` rejects this file")
                    .with_note("with ipsetflags libvirt drops the ipset match here (W0210), so only this form is applied")
                    .with_note("libvirt does not write a lone ipset back when it saves the filter: the match is lost when libvirtd restarts"),
            );
        }
    }
    for a in &m.attrs {
        // A mask, range end or flag attribute without its base is dropped by libvirt.
        if a.spec.part != Part::Value {
            let base = m
                .proto
                .attrs
                .iter()
                .find(|s| s.field == a.spec.field && s.part == Part::Value);
            if let Some(base) = base {
                if !m.written(base.name) {
                    diags.push(
                        Diagnostic::warning(
                            "W0202",
                            format!("`{}` without `{}` is ignored", a.spec.name, base.name),
                        )
                        .at(
                            a.name_span,
                            "libvirt only uses it together with its base attribute",
                        )
                        .with_help(format!("add `{}` or remove `{}`", base.name, a.spec.name)),
                    );
                }
            }
        }
        if a.written_negated && !a.negated {
            diags.push(ineffective_negation(a));
        }
        match (a.spec.name, &a.value) {
            ("dscp", _) if m.proto.name == "ip" => diags.push(
                Diagnostic::warning("W0207", "libvirt compares `dscp` with the whole TOS byte")
                    .at(a.name_span, "emitted as --ip-tos: DSCP 46 is TOS 0xb8, but this matches TOS 46 (0x2e)")
                    .with_note("nwf reproduces libvirt's behaviour: the rule matches packets whose TOS byte equals the value"),
            ),
            ("encap-protocol", _) => diags.push(
                Diagnostic::warning("W0208", "libvirt mangles `encap-protocol` values")
                    .at(a.name_span, "written as a decimal number and read back as hex (arp 2054 becomes 0x2054)")
                    .with_note("nwf reproduces libvirt's behaviour: tagged frames of this protocol do not match"),
            ),
            (name, _) if m.proto.name == "stp" && !matches!(name, "srcmacaddr" | "srcmacmask" | "comment") => diags.push(
                Diagnostic::warning("W0216", format!("the kernel reads STP `{name}` one byte early"))
                    .at(a.name_span, "ebtables' stp match takes the protocol version for the BPDU type and shifts every configuration field")
                    .with_note("so type='0' matches every STP BPDU and type='0x80' none; nwf reproduces what the kernel does"),
            ),
            ("flags", _) if m.proto.name == "tcp-ipv6" => diags.push(
                Diagnostic::warning("W0206", "libvirt ignores `flags` on <tcp-ipv6>")
                    .at(a.name_span, "this test is not applied")
                    .with_help("TCP flag tests only work on <tcp>"),
            ),
            ("type", Operand::Lit(Value::Number(_)))
                if matches!(m.proto.name, "icmp" | "icmpv6") && r.direction == Direction::Inout =>
            {
                diags.push(
                    Diagnostic::warning("W0205", "an `inout` ICMP rule with a `type` is never applied")
                        .at(r.span, "libvirt skips ICMP rules with a type in every chain for inout")
                        .with_help("write one `in` and one `out` rule instead"),
                )
            }
            _ => {}
        }
    }
}

/// Attribute combinations libvirt accepts but silently drops when it builds the rule.
fn check_ignored_combinations(m: &Match, diags: &mut Diagnostics) {
    let all = matches!(m.proto.name, "all" | "all-ipv6");
    if m.invalid.contains(&"ipset") || m.invalid.contains(&"ipsetflags") {
        return;
    }
    match (m.get("ipset"), m.get("ipsetflags")) {
        (Some(_), Some(flags)) if !all && m.proto.layer == Layer::Ip => diags.push(
            Diagnostic::warning(
                "W0210",
                "libvirt drops the ipset match when `ipsetflags` is given",
            )
            .at(
                flags.name_span,
                "with this attribute, neither ipset nor ipsetflags is applied",
            )
            .with_help("remove ipsetflags: libvirt then looks up the source address"),
        ),
        (Some(set), None) if all => diags.push(
            Diagnostic::warning(
                "W0210",
                format!(
                    "libvirt drops the ipset match on <{}> without `ipsetflags`",
                    m.proto.name
                ),
            )
            .at(set.name_span, "this ipset is not applied")
            .with_help("add ipsetflags='src' (or dst)"),
        ),
        _ => {}
    }
    for (addr, from) in [("srcipaddr", "srcipfrom"), ("dstipaddr", "dstipfrom")] {
        if let (Some(_), Some(f)) = (m.get(addr), m.get(from)) {
            diags.push(
                Diagnostic::warning(
                    "W0211",
                    format!("`{from}` is ignored when `{addr}` is given"),
                )
                .at(f.name_span, "libvirt uses only the address match")
                .with_help("use either an address with a mask or a range"),
            );
        }
    }
    if matches!(m.proto.name, "icmp" | "icmpv6") && m.get("type").is_none() {
        if let Some(c) = m.get("code") {
            diags.push(
                Diagnostic::warning("W0212", "`code` without `type` is ignored")
                    .at(
                        c.name_span,
                        "libvirt applies an ICMP code only together with a type",
                    )
                    .with_help("add the ICMP type"),
            );
        }
    }
    if m.proto.name == "arp" || m.proto.name == "rarp" {
        if let (Some(src), None, Some(_)) = (
            m.get("arpsrcipmask"),
            m.get("arpdstipmask"),
            m.get("arpdstipaddr"),
        ) {
            diags.push(
                Diagnostic::warning(
                    "W0213",
                    "libvirt applies `arpsrcipmask` to the target address too",
                )
                .at(src.name_span, "arpdstipaddr gets this mask instead of /32")
                .with_help("give arpdstipmask explicitly"),
            );
        }
    }
}
