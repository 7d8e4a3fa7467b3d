//! Lowering shared by the front ends: attributes, values, rules and filter headers become IR,
//! with the same diagnostics whichever syntax they were written in.
//!
//! Each front end finds the pieces (names, values and their spans) in its own syntax and hands
//! them here as [`RawAttr`]s; what a piece means, and what is wrong with it, is decided only
//! here. The messages name elements and attributes as the XML does, because that is the
//! vocabulary of libvirt's documentation and of the language table. A hint that says how to
//! write something is worded so that it holds in both syntaxes (`set the protocol attribute`,
//! not `protocol='tcp'`): the DSL and the XML give identical diagnostics for the same mistake.

use crate::diag::{Diagnostic, Diagnostics};
use crate::ir::{AttrValue, Filter, Match, Operand, Param};
use crate::lang::{self, ProtoSpec, ValueType};
use crate::source::{FileId, Span};
use crate::value::{self, Value};

/// An attribute as read: name, value and their spans.
pub(crate) struct RawAttr<'a> {
    /// The attribute (or keyword) name.
    pub name: &'a str,
    /// The value text.
    pub value: &'a str,
    /// Where the name is.
    pub name_span: Span,
    /// Where the value is.
    pub value_span: Span,
}

/// The lowering context: the file being read and the diagnostics sink.
pub(crate) struct Lower<'d> {
    /// The file being read.
    pub file: FileId,
    /// Where problems go.
    pub diags: &'d mut Diagnostics,
}

impl Lower<'_> {
    /// A span in the file being read.
    pub fn span(&self, r: std::ops::Range<usize>) -> Span {
        Span::new(self.file, r)
    }

    /// E0101: a required attribute is missing (`at`: the element or statement).
    pub fn missing_attr(&mut self, at: Span, elem: &str, attr: &str, doc: &str) {
        self.diags.push(
            Diagnostic::error("E0101", format!("<{elem}> needs the `{attr}` attribute"))
                .at(at, format!("`{attr}` is missing"))
                .with_note(format!("{attr}: {doc}")),
        );
    }

    /// Builds a filter from its header: name, chain and priority as written (values and
    /// spans), checking each (E0101, E0106, E0107, E0108). `at` is the filter's start.
    pub fn filter_head(
        &mut self,
        at: Span,
        name: Option<(String, Span)>,
        chain: Option<(String, Span)>,
        prio: Option<(&str, Span)>,
    ) -> Filter {
        let spec = lang::element("filter").expect("filter is in the table");
        let (name, name_span) = match name {
            Some((n, s)) if is_filter_name(&n) => (n, s),
            Some((bad, s)) => {
                self.diags.push(
                    Diagnostic::error("E0106", format!("invalid filter name `{bad}`"))
                        .at(s, "expected a non-empty name without spaces or `/`"),
                );
                (bad, s)
            }
            None => {
                self.missing_attr(at, "filter", "name", spec.attrs[0].doc);
                (String::new(), at)
            }
        };
        let chain_name = match &chain {
            None => "root".to_string(),
            Some((c, s)) => {
                if let Err(msg) = check_chain_name(c) {
                    let prefixes: Vec<_> = lang::CHAIN_PREFIXES.iter().map(|p| p.0).collect();
                    let mut d = Diagnostic::error("E0107", format!("invalid chain name `{c}`"))
                        .at(*s, msg)
                        .with_note(format!(
                            "a chain is `root` or starts with one of: {}; at most {} characters of [A-Za-z0-9_.:-]",
                            prefixes[1..].join(", "),
                            lang::MAX_CHAIN_NAME
                        ));
                    if let Some(sugg) = lang::did_you_mean(c, prefixes.iter().copied()) {
                        d = d
                            .with_help(format!("did you mean `{sugg}`?"))
                            .with_fix(sugg);
                    }
                    self.diags.push(d);
                }
                c.clone()
            }
        };
        let default_prio = lang::chain_default_priority(&chain_name).unwrap_or(0);
        let priority = match prio {
            None => default_prio,
            Some((p, s)) => match p.trim().parse::<i32>() {
                Ok(v) if (lang::PRIORITY_RANGE.0..=lang::PRIORITY_RANGE.1).contains(&v) => v,
                Ok(v) => {
                    self.diags.push(
                        Diagnostic::error("E0108", format!("chain priority {v} is out of range"))
                            .at(s, "expected a number from -1000 to 1000"),
                    );
                    default_prio
                }
                Err(_) => {
                    self.diags.push(
                        Diagnostic::error("E0108", format!("invalid chain priority `{p}`"))
                            .at(s, "expected a decimal number from -1000 to 1000"),
                    );
                    default_prio
                }
            },
        };
        // libvirt range-checks a root filter's priority and then ignores it (W0204 says so).
        let priority = if chain_name == "root" { 0 } else { priority };
        Filter {
            name,
            chain: chain_name,
            priority,
            priority_written: prio.is_some(),
            uuid: None,
            entries: Vec::new(),
            file: self.file,
            span: at,
            name_span,
            chain_span: chain.as_ref().map(|(_, s)| *s),
            priority_span: prio.map(|(_, s)| s),
            comments: Vec::new(),
            trailing_comments: Vec::new(),
        }
    }

    /// Reads a `<uuid>` (or `uuid` statement) into the filter: E0113 if invalid or repeated.
    /// `span`: the value; `at`: the element or statement.
    pub fn uuid_into(&mut self, text: &str, span: Span, at: Span, f: &mut Filter) {
        if f.uuid.is_some() {
            self.diags.push(
                Diagnostic::error("E0113", "a filter has at most one <uuid>")
                    .at(at, "second <uuid>"),
            );
        } else if !is_uuid(text) {
            self.diags.push(
                Diagnostic::error("E0113", format!("invalid UUID `{text}`"))
                    .at(span, "expected 32 hex digits, optionally as 8-4-4-4-12"),
            );
        } else {
            f.uuid = Some(text.to_string());
        }
    }

    /// Checks one filterref parameter (E0111); `span` is the parameter as a whole.
    pub fn param(
        &mut self,
        (name, ns): (&str, Span),
        (value, vs): (&str, Span),
        span: Span,
    ) -> Option<Param> {
        let mut ok = true;
        if !value::is_var_name(name) {
            self.diags.push(
                Diagnostic::error("E0111", format!("invalid parameter name `{name}`"))
                    .at(ns, "expected letters, digits and `_`"),
            );
            ok = false;
        }
        if !value::is_param_value(value) {
            let mut d = Diagnostic::error("E0111", format!("invalid parameter value `{value}`"))
                .at(
                    vs,
                    "expected a non-empty value of letters, digits, `_`, `.` and `:`",
                )
                .with_note("libvirt silently drops a parameter with such a value");
            if value.starts_with('$') {
                d = d.with_note("parameter values cannot refer to variables; the caller's variables are passed on automatically");
            } else if let Some((addr, _)) = value.split_once('/') {
                d = d.with_help(format!(
                    "give the address alone (`{addr}`) and the mask in the rule"
                ));
            }
            self.diags.push(d);
            ok = false;
        }
        ok.then(|| Param {
            name: name.to_string(),
            value: value.to_string(),
            span,
        })
    }

    /// `statematch`: false for `false`/`0`; E0104 for anything but true, false, 1, 0.
    pub fn statematch(&mut self, a: &RawAttr) -> bool {
        if !matches!(a.value, "true" | "false" | "0" | "1") {
            self.diags.push(
                Diagnostic::error("E0104", format!("invalid statematch `{}`", a.value))
                    .at(a.value_span, "expected true, false, 1 or 0"),
            );
        }
        !matches!(a.value, "false" | "0")
    }

    /// W0105: an unknown protocol element in a rule. libvirt's parser skips it (its schema
    /// rejects it); `alone`: the rule has no other protocol element, so it matches every frame.
    pub fn unknown_protocol(&mut self, name: &str, span: Span, alone: bool) {
        let mut d = Diagnostic::warning("W0105", format!("unknown protocol element <{name}>"))
            .at(span, "libvirt ignores this element; its schema rejects it");
        d = if alone {
            d.with_note("the rule is applied without a protocol element, so it matches every frame")
        } else {
            d.with_note("the rule is applied with its other protocol element")
        };
        if let Some(s) = lang::did_you_mean(name, lang::PROTOCOLS.iter().map(|p| p.name)) {
            d = d.with_help(format!("did you mean <{s}>?")).with_fix(s);
        }
        self.diags.push(d);
    }

    /// Reads one attribute of a protocol element into `m` (or notes it as invalid there).
    pub fn proto_attr(&mut self, m: &mut Match, a: &RawAttr, negated: bool) {
        let Some(spec) = m.proto.attr(a.name) else {
            self.attr_not_allowed(m.proto, a);
            return;
        };
        let Some(value) = self.operand(a, spec.ty) else {
            m.invalid.push(spec.name);
            return;
        };
        m.attrs.push(AttrValue {
            spec,
            value,
            negated,
            written_negated: negated,
            name_span: a.name_span,
            span: a.value_span,
        });
    }

    /// Completes a rule's match: table order (libvirt's processing order, and independent of
    /// how the attributes were spelled out), libvirt's negation rules, and E0109.
    pub fn finish_match(&mut self, m: &mut Match) {
        let proto = m.proto;
        m.attrs
            .sort_by_key(|a| proto.attrs.iter().position(|s| s.name == a.spec.name));
        m.apply_negation_rules();
        self.check_ports_need_protocol(m);
        self.check_reversed_ranges(m);
        self.check_applicable(m);
    }

    /// E0120: rules libvirt defines but cannot apply, because the ebtables or iptables command
    /// it generates is refused, so creating the binding (starting the VM) fails. Found by the
    /// matrix of `tests/libvirt_apply.rs` against libvirt 9.0 here; only literal values are
    /// judged (a variable's value is known when the port is instantiated).
    fn check_applicable(&mut self, m: &Match) {
        use lang::{Field, Layer, Part};
        let lit = |a: &AttrValue| match &a.value {
            Operand::Lit(v) => Some(v.clone()),
            _ => None,
        };
        let mut refused: Vec<(Span, String)> = Vec::new();
        // A mask without its address is not written out by libvirt.
        let has_base = |a: &AttrValue| {
            m.attrs
                .iter()
                .any(|b| b.spec.field == a.spec.field && b.spec.part == Part::Value)
        };
        for a in &m.attrs {
            match (a.spec.field, a.spec.part, lit(a)) {
                (Field::SrcMac | Field::DstMac, Part::Mask, Some(Value::MacMask(mm)))
                    if mm.0 == [0; 6] && has_base(a) =>
                {
                    refused.push((
                        a.span,
                        "an all-zero MAC mask: ebtables refuses `-s ADDR/00:00:00:00:00:00`".into(),
                    ));
                }
                (_, Part::Mask, Some(Value::Prefix(0)))
                    if a.negated && m.proto.layer == Layer::Ip && has_base(a) =>
                {
                    refused.push((a.span, "a negated address with prefix length 0: iptables refuses `! --source ADDR/0`".into()));
                }
                (Field::VlanId, _, Some(Value::Number(4095))) => {
                    refused.push((a.span, "VLAN id 4095: ebtables takes 0-4094".into()));
                }
                (Field::TcpOption, _, Some(Value::Number(0))) => {
                    refused.push((
                        a.span,
                        "TCP option kind 0: iptables refuses `--tcp-option 0` (\"Bad TCP option\")"
                            .into(),
                    ));
                }
                _ => {}
            }
        }
        if matches!(m.proto.name, "ip" | "ipv6") {
            let protocol = m.get("protocol");
            let port = m
                .attrs
                .iter()
                .find(|a| matches!(a.spec.field, Field::SrcPort | Field::DstPort));
            if let (Some(p), Some(port)) = (protocol, port) {
                if p.negated {
                    refused.push((port.span, format!(
                        "`{}` with a negated protocol (`match='no'`): ebtables refuses port matches after `--ip-proto ! ...`",
                        port.spec.name
                    )));
                }
            }
            let icmp = m
                .attrs
                .iter()
                .find(|a| matches!(a.spec.field, Field::IcmpType | Field::IcmpCode));
            let icmpv6 = protocol.is_some_and(|p| !p.negated && lit(p) == Some(Value::Number(58)));
            if let (Some(t), false) = (icmp, icmpv6) {
                refused.push((t.span, format!(
                    "`{}` on <ipv6> needs `protocol='icmpv6'`, not negated: ebtables refuses `--ip6-icmp-type` otherwise",
                    t.spec.name
                )));
            }
        }
        for (span, what) in refused {
            self.diags.push(
                Diagnostic::error("E0120", what)
                    .at(span, "libvirt cannot apply this")
                    .with_note("libvirt accepts the definition, but the firewall command it generates is refused, so creating the binding (starting the VM) fails"),
            );
        }
    }

    /// A range whose end is below its start (`dstportstart='90' dstportend='80'`). iptables and
    /// ebtables refuse a port or number range with min > max ("invalid portrange (min > max)",
    /// checked here), so libvirt fails to apply the filter: E0119, an error of the binding-time
    /// kind (libvirt accepts the definition). An address range that ends before it starts is
    /// accepted by iptables' iprange match and matches nothing: W0217.
    fn check_reversed_ranges(&mut self, m: &Match) {
        for end in m.attrs.iter().filter(|a| a.spec.part == lang::Part::End) {
            let Some(start) = m
                .attrs
                .iter()
                .find(|a| a.spec.field == end.spec.field && a.spec.part == lang::Part::Value)
            else {
                continue;
            };
            let (Operand::Lit(s), Operand::Lit(e)) = (&start.value, &end.value) else {
                continue;
            };
            let reversed = match (s, e) {
                (Value::Number(s), Value::Number(e)) => s > e,
                (Value::Ipv4(s), Value::Ipv4(e)) => s > e,
                (Value::Ipv6(s), Value::Ipv6(e)) => s > e,
                _ => false,
            };
            if !reversed {
                continue;
            }
            let message = format!(
                "reversed range: `{}` {s} is above `{}` {e}",
                start.spec.name, end.spec.name
            );
            let d = if matches!(s, Value::Ipv4(_) | Value::Ipv6(_)) {
                Diagnostic::warning("W0217", message)
                    .with_note("such an address range matches no address (the kernel's iprange match accepts it and warns that it will never match)")
            } else {
                Diagnostic::error("E0119", message).with_note(
                    "libvirt accepts the definition, but iptables and ebtables refuse a range whose start is above its end (\"invalid portrange (min > max)\"), so applying the filter fails",
                )
            };
            self.diags.push(
                d.at(end.span, "the range ends before it starts")
                    .related(start.span, "the range's start")
                    .with_help("swap the start and the end"),
            );
        }
    }

    /// W0104: an attribute libvirt's parser does not read on this element (it ignores it; its
    /// schema rejects it), with a suggestion or the list of allowed ones.
    pub fn unknown_attr(&mut self, elem: &str, a: &RawAttr, allowed: &[&'static str]) {
        let d = unknown_attr_diag(elem, a, allowed);
        self.diags.push(d);
    }

    /// An enumerated value (action, direction); E0104 with aliases and suggestions.
    pub fn enum_value<T: Copy>(&mut self, a: &RawAttr, table: &[lang::EnumEntry<T>]) -> Option<T> {
        if let Some((_, v, _)) = table.iter().find(|(n, _, _)| *n == a.value) {
            return Some(*v);
        }
        let names: Vec<_> = table.iter().map(|(n, _, _)| *n).collect();
        let mut d = Diagnostic::error("E0104", format!("invalid {} `{}`", a.name, a.value)).at(
            a.value_span,
            format!("expected one of: {}", names.join(", ")),
        );
        let alias = lang::ALIASES
            .iter()
            .find(|(w, n)| w.eq_ignore_ascii_case(a.value) && names.contains(n))
            .map(|(_, n)| *n);
        if let Some(s) = alias.or_else(|| lang::did_you_mean(a.value, names.iter().copied())) {
            d = d.with_help(format!("did you mean `{s}`?")).with_fix(s);
        }
        self.diags.push(d);
        None
    }

    /// A rule priority: W0101 out of range, E0104 not a number (both give libvirt's 500).
    pub fn rule_priority(&mut self, a: &RawAttr) -> i32 {
        let (lo, hi) = lang::PRIORITY_RANGE;
        match a.value.trim().parse::<i64>() {
            Ok(v) if (i64::from(lo)..=i64::from(hi)).contains(&v) => v as i32,
            Ok(v) => {
                self.diags.push(
                    Diagnostic::warning("W0101", format!("rule priority {v} is out of range"))
                        .at(a.value_span, "libvirt silently uses 500 instead")
                        .with_help("use a priority from -1000 to 1000"),
                );
                lang::DEFAULT_RULE_PRIORITY
            }
            Err(_) => {
                self.diags.push(
                    Diagnostic::error("E0104", format!("invalid rule priority `{}`", a.value))
                        .at(a.value_span, "expected a decimal number from -1000 to 1000")
                        .with_note("libvirt silently uses 500 for it; its schema rejects it"),
                );
                lang::DEFAULT_RULE_PRIORITY
            }
        }
    }

    /// W0104: an attribute the protocol element does not have: unknown, valid on other
    /// elements only, or an earlier spelling of one of its own ([`ProtoSpec::former`]).
    /// libvirt's parser ignores it, so the rule is applied without that test.
    pub fn attr_not_allowed(&mut self, proto: &ProtoSpec, a: &RawAttr) {
        let elsewhere: Vec<&str> = lang::PROTOCOLS
            .iter()
            .filter(|p| p.attr(a.name).is_some())
            .map(|p| p.name)
            .collect();
        let mut d = if let Some(now) = proto.former_name(a.name) {
            Diagnostic::warning(
                "W0104",
                format!("attribute `{}` is not allowed on <{}>", a.name, proto.name),
            )
            .at(
                a.name_span,
                format!("libvirt ignores `{}` on <{}>", a.name, proto.name),
            )
            .with_note(format!(
                "`{}` is the 2010 proposal's name for `{}`, the {}",
                a.name,
                now.name,
                lower_first(first_sentence(now.doc))
            ))
            .with_help(format!("did you mean `{}`?", now.name))
            .with_fix(now.name)
        } else if elsewhere.is_empty() {
            let allowed: Vec<&'static str> = proto
                .attrs
                .iter()
                .map(|s| s.name)
                .chain(["match"])
                .collect();
            unknown_attr_diag(proto.name, a, &allowed)
        } else {
            let mut d = Diagnostic::warning(
                "W0104",
                format!("attribute `{}` is not allowed on <{}>", a.name, proto.name),
            )
            .at(
                a.name_span,
                format!("<{}> has no `{}`: libvirt ignores it", proto.name, a.name),
            )
            .with_note(format!("`{}` exists on: {}", a.name, elsewhere.join(", ")));
            if let Some(s) = lang::did_you_mean(a.name, proto.attrs.iter().map(|s| s.name)) {
                d = d.with_help(format!("did you mean `{s}`?")).with_fix(s);
            }
            d
        };
        // What dropping it does: a test (what the suggestion names, or what the attribute is
        // elsewhere) makes the rule match more; a misspelt `match` or comment does not.
        let intended = d.fix.as_deref().unwrap_or(a.name);
        let is_test = (!elsewhere.is_empty() || d.fix.is_some())
            && intended != "match"
            && proto
                .attr(intended)
                .is_none_or(|s| s.field != lang::Field::Comment);
        d.notes.insert(
            0,
            if is_test {
                "libvirt applies the rule without this test, so it matches more than written"
            } else {
                "libvirt applies the rule without it"
            }
            .to_string(),
        );
        self.diags.push(d);
    }

    /// A value or variable for an attribute of type `ty` (E0104, E0110, E0112, E0117, W0214).
    pub fn operand(&mut self, a: &RawAttr, ty: ValueType) -> Option<Operand> {
        if a.value.starts_with('$') && ty == ValueType::Comment {
            self.diags.push(
                Diagnostic::error("E0117", "a comment cannot start with `$`")
                    .at(
                        a.value_span,
                        "libvirt reads this as a variable and then fails to apply the rule",
                    )
                    .with_help("start the comment with another character"),
            );
            return None;
        }
        if a.value.starts_with('$')
            && matches!(
                ty,
                ValueType::States | ValueType::TcpFlags | ValueType::Bool
            )
        {
            self.diags.push(
                Diagnostic::error("E0112", format!("`{}` cannot take a variable", a.name))
                    .at(a.value_span, format!("expected {}", ty.describe()))
                    .with_note("libvirt accepts the definition but never applies the variable's value here"),
            );
            return None;
        }
        if a.value.starts_with('$') {
            return match value::parse_var_ref(a.value) {
                Ok(v) => Some(Operand::Var(v)),
                Err(msg) => {
                    // `$IP[1`: say what is missing rather than what the form is.
                    let msg = if a.value.contains('[') && !a.value.contains(']') {
                        "the closing `]` is missing".to_string()
                    } else {
                        msg
                    };
                    self.diags.push(
                        Diagnostic::error(
                            "E0110",
                            format!("invalid variable reference `{}`", a.value),
                        )
                        .at(a.value_span, msg)
                        .with_note("forms: $NAME, $NAME[@N] (iterator N), $NAME[N] (element N)"),
                    );
                    None
                }
            };
        }
        if ty == ValueType::Comment && a.value.chars().count() > 256 {
            let keep: String = a.value.chars().take(256).collect();
            let cut = a.value_span.start as usize + keep.len();
            self.diags.push(
                Diagnostic::warning(
                    "W0214",
                    format!(
                        "the comment has {} characters; libvirt keeps 256",
                        a.value.chars().count()
                    ),
                )
                .at(
                    Span::new(self.file, cut..a.value_span.end as usize),
                    "libvirt silently drops this part",
                ),
            );
            return Some(Operand::Lit(Value::Text(keep)));
        }
        match value::parse(ty, a.value) {
            Ok(v) => {
                if let (ValueType::MacMask, Value::MacMask(m)) = (ty, &v) {
                    if !m.is_contiguous_mask() {
                        self.diags.push(
                            Diagnostic::error(
                                "E0104",
                                format!("invalid value `{}` for `{}`", a.value, a.name),
                            )
                            .at(a.value_span, "the mask's bits are not contiguous")
                            .with_note(format!("expected {}", ty.describe())),
                        );
                        return None;
                    }
                }
                Some(Operand::Lit(v))
            }
            Err(e) => {
                let shown = if a.value.chars().count() > 60 {
                    format!("{}...", a.value.chars().take(60).collect::<String>())
                } else {
                    a.value.to_string()
                };
                let mut d =
                    Diagnostic::error("E0104", format!("invalid value `{shown}` for `{}`", a.name))
                        .at(a.value_span, format!("expected {}", ty.describe()));
                if let Some(detail) = e.detail {
                    d = d.with_note(detail);
                }
                if a.name == "dstipto" && a.value.parse::<std::net::Ipv6Addr>().is_ok() {
                    d = d.with_note(
                        "libvirt's parser types `dstipto` as IPv4 on every element (a libvirt bug), so an IPv6 range end cannot be written",
                    );
                }
                if let Some(s) = e.suggestion {
                    d = d.with_help(format!("did you mean `{s}`?")).with_fix(s);
                }
                self.diags.push(d);
                None
            }
        }
    }

    /// E0109: ports on <ip>/<ipv6> need a port protocol.
    pub fn check_ports_need_protocol(&mut self, m: &Match) {
        if !matches!(m.proto.name, "ip" | "ipv6") {
            return;
        }
        let Some(port) = m.attrs.iter().find(|a| a.spec.name.contains("port")) else {
            return;
        };
        if m.invalid.contains(&"protocol") {
            return; // already reported as an invalid value
        }
        let proto = m.get("protocol");
        let ok = match proto.map(|p| &p.value) {
            Some(Operand::Lit(Value::Number(n))) => matches!(n, 6 | 17 | 33 | 132),
            _ => false,
        };
        if !ok {
            let mut d = Diagnostic::error(
                "E0109",
                format!("`{}` needs protocol tcp, udp, dccp or sctp", port.spec.name),
            )
            .at(port.name_span, "port match without a port protocol");
            if let Some(p) = proto.filter(|p| matches!(p.value, Operand::Var(_))) {
                d = d.related(
                    p.span,
                    "libvirt cannot check a variable protocol, so it always rejects this",
                );
            } else if let Some(p) = proto {
                d = d.related(p.span, "this protocol has no ports");
            } else {
                d = d.with_help(format!(
                    "add `protocol` with tcp, udp, dccp or sctp to <{}>",
                    m.proto.name
                ));
            }
            self.diags.push(d);
        }
    }
}

/// `Sender IP address` -> `sender IP address`.
fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_lowercase().chain(c).collect())
        .unwrap_or_default()
}

/// W0104 for an attribute `elem` does not have: a suggestion among `allowed`, else the list.
fn unknown_attr_diag(elem: &str, a: &RawAttr, allowed: &[&'static str]) -> Diagnostic {
    let mut d = Diagnostic::warning(
        "W0104",
        format!("unknown attribute `{}` on <{elem}>", a.name),
    )
    .at(
        a.name_span,
        "libvirt ignores this attribute; its schema rejects it",
    );
    if let Some(s) = lang::did_you_mean(a.name, allowed.iter().copied()) {
        d = d.with_help(format!("did you mean `{s}`?")).with_fix(s);
    } else if !allowed.is_empty() {
        d = d.with_note(format!("allowed here: {}", allowed.join(", ")));
    }
    d
}

/// Whether libvirt accepts this filter name.
pub(crate) fn is_filter_name(s: &str) -> bool {
    !s.is_empty() && !s.contains('/') && !s.chars().any(char::is_whitespace)
}

fn check_chain_name(c: &str) -> Result<(), String> {
    if c == "root" {
        return Ok(());
    }
    if c.len() > lang::MAX_CHAIN_NAME {
        return Err(format!(
            "{} characters; at most {}",
            c.len(),
            lang::MAX_CHAIN_NAME
        ));
    }
    if let Some(bad) = c
        .chars()
        .find(|ch| !(ch.is_ascii_alphanumeric() || "_.:-".contains(*ch)))
    {
        return Err(format!("`{bad}` is not allowed in a chain name"));
    }
    if c.starts_with("root") {
        return Err("only `root` itself may start with `root`".into());
    }
    if lang::chain_default_priority(c).is_none() {
        return Err("does not start with a protocol prefix".into());
    }
    Ok(())
}

/// libvirt's UUID parser is liberal: 32 hex digits, with `-` or spaces allowed between them.
fn is_uuid(s: &str) -> bool {
    let digits: Vec<char> = s
        .trim()
        .chars()
        .filter(|c| *c != '-' && *c != ' ')
        .collect();
    digits.len() == 32 && digits.iter().all(|c| c.is_ascii_hexdigit())
}

/// The first sentence of a doc line, without its full stop (the language table's docs start
/// with what an attribute is; details follow).
fn first_sentence(doc: &str) -> &str {
    doc.split(". ").next().unwrap_or(doc).trim_end_matches('.')
}
