//! Reads nwfilter XML into the IR, reporting every problem it finds.
//!
//! The reader never stops at the first error: a bad attribute is reported and skipped, a bad
//! rule is reported and the rest of the filter is still read, so one run shows everything.

use crate::diag::{Diagnostic, Diagnostics};
use crate::ir::{AttrValue, Entry, Filter, FilterRef, Match, Operand, Param, Rule};
use crate::lang::{self, ProtoSpec, ValueType};
use crate::source::{FileId, SourceMap, Span};
use crate::value::{self, Value};
use roxmltree::{Document, Node, ParsingOptions};

/// Decodes file bytes; invalid UTF-8 is an error at the first bad byte.
pub fn read_text(bytes: Vec<u8>) -> Result<String, (usize, String)> {
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        (at, String::from_utf8_lossy(e.as_bytes()).into_owned())
    })
}

/// Parses a file as XML the way libvirt's libxml2 reads it; a syntax error becomes E0003 at
/// the place the parser stopped. `what` names the document in the message ("file", "binding").
pub fn parse_document<'t>(
    sources: &'t SourceMap,
    file: FileId,
    what: &str,
    diags: &mut Diagnostics,
) -> Option<Document<'t>> {
    let text = &sources.get(file).text;
    // libvirt (libxml2) accepts internal DTD subsets and expands their entities; roxmltree
    // does too, with its own limits against entity expansion bombs.
    let opts = ParsingOptions {
        allow_dtd: true,
        ..ParsingOptions::default()
    };
    match Document::parse_with_options(text, opts) {
        Ok(d) => Some(d),
        Err(e) => {
            let pos = e.pos();
            let at = sources.get(file).offset(pos.row as usize, pos.col as usize);
            let end = (at + 1).min(text.len()).max(at);
            diags.push(
                Diagnostic::error("E0003", format!("the {what} is not well-formed XML: {e}"))
                    .at(Span::new(file, at..end), "the XML parser stopped here"),
            );
            None
        }
    }
}

/// Reads one filter document. Returns the filter if the document has a usable `<filter>`
/// root (even with errors inside it; they are in `diags`).
pub fn read_filter(sources: &SourceMap, file: FileId, diags: &mut Diagnostics) -> Option<Filter> {
    let text = &sources.get(file).text;
    if text.trim().is_empty() {
        diags.push(
            Diagnostic::error("E0002", "the file is empty")
                .at(
                    Span::new(file, 0..text.len()),
                    "expected a <filter> element",
                )
                .with_help("a filter file holds one <filter name='...'> element"),
        );
        return None;
    }
    let doc = parse_document(sources, file, "file", diags)?;
    let root = doc.root_element();
    let reader = Reader { file, diags };
    if root.tag_name().name() != "filter" {
        let name = root.tag_name().name();
        let mut d = Diagnostic::error(
            "E0004",
            format!("expected a <filter> element, found <{name}>"),
        )
        .at(reader.tag_span(root), "not a filter");
        if matches!(name, "filterbinding" | "interface" | "domain") {
            d = d.with_help("this looks like a binding: use `nwf show --binding FILE`");
        }
        reader.diags.push(d);
        return None;
    }
    let mut reader = reader;
    let mut f = reader.filter(root)?;
    f.comments = doc
        .root()
        .children()
        .take_while(|c| !c.is_element())
        .filter_map(comment_text)
        .collect();
    Some(f)
}

fn comment_text(n: Node) -> Option<String> {
    n.is_comment()
        .then(|| n.text().unwrap_or("").trim().to_string())
}

/// Comments anywhere inside an element (not descending past protocol elements).
fn inner_comments(n: Node) -> Vec<String> {
    n.descendants().filter_map(comment_text).collect()
}

struct Reader<'d> {
    file: FileId,
    diags: &'d mut Diagnostics,
}

/// An attribute as read: name, value and their spans.
struct RawAttr<'a> {
    name: &'a str,
    value: &'a str,
    name_span: Span,
    value_span: Span,
}

impl Reader<'_> {
    fn span(&self, r: std::ops::Range<usize>) -> Span {
        Span::new(self.file, r)
    }

    /// The `<name` part of an element's start tag.
    fn tag_span(&self, n: Node) -> Span {
        let start = n.range().start;
        self.span(start..start + 1 + n.tag_name().name().len())
    }

    fn attrs<'a>(&self, n: Node<'a, 'a>) -> Vec<RawAttr<'a>> {
        n.attributes()
            .map(|a| RawAttr {
                name: a.name(),
                value: a.value(),
                name_span: self.span(a.range_qname()),
                value_span: self.span(a.range_value()),
            })
            .collect()
    }

    fn unknown_attr(&mut self, elem: &str, a: &RawAttr, allowed: &[&'static str]) {
        let mut d = Diagnostic::error(
            "E0102",
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
        self.diags.push(d);
    }

    fn missing_attr(&mut self, n: Node, elem: &str, attr: &str, doc: &str) {
        let span = self.tag_span(n);
        self.diags.push(
            Diagnostic::error("E0101", format!("<{elem}> needs the `{attr}` attribute"))
                .at(span, format!("`{attr}` is missing"))
                .with_note(format!("{attr}: {doc}")),
        );
    }

    fn check_no_text(&mut self, n: Node) {
        for c in n.children() {
            let t = c.text().unwrap_or("");
            if c.is_text() && !t.trim().is_empty() {
                // Underline the text itself, not the whitespace around it. The node's range
                // covers the raw text; entities may make it longer than `t`.
                let r = c.range();
                let lead = t.len() - t.trim_start().len();
                let start = (r.start + lead).min(r.end);
                let end = (start + t.trim().len()).min(r.end);
                let span = self.span(start..end);
                self.diags.push(
                    Diagnostic::error(
                        "E0105",
                        format!("text is not allowed inside <{}>", n.tag_name().name()),
                    )
                    .at(span, "unexpected text"),
                );
            }
        }
    }

    fn filter(&mut self, n: Node) -> Option<Filter> {
        let spec = lang::element("filter").expect("filter is in the table");
        let allowed: Vec<_> = spec.attrs.iter().map(|a| a.name).collect();
        let mut name = None;
        let mut chain: Option<(String, Span)> = None;
        let mut prio: Option<(&str, Span)> = None;
        for a in self.attrs(n) {
            match a.name {
                "name" => name = Some((a.value.to_string(), a.value_span)),
                "chain" => chain = Some((a.value.to_string(), a.value_span)),
                "priority" => prio = Some((a.value, a.value_span)),
                _ => self.unknown_attr("filter", &a, &allowed),
            }
        }
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
                self.missing_attr(n, "filter", "name", spec.attrs[0].doc);
                (String::new(), self.tag_span(n))
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
        let mut f = Filter {
            name,
            chain: chain_name,
            priority,
            priority_written: prio.is_some(),
            uuid: None,
            entries: Vec::new(),
            file: self.file,
            span: self.tag_span(n),
            name_span,
            chain_span: chain.as_ref().map(|(_, s)| *s),
            priority_span: prio.map(|(_, s)| s),
            comments: Vec::new(),
            trailing_comments: Vec::new(),
        };
        self.check_no_text(n);
        let mut pending: Vec<String> = Vec::new();
        for c in n.children() {
            if let Some(text) = comment_text(c) {
                pending.push(text);
                continue;
            }
            if !c.is_element() {
                continue;
            }
            match c.tag_name().name() {
                "uuid" => self.uuid(c, &mut f),
                "rule" => {
                    if let Some(mut r) = self.rule(c) {
                        r.comments = std::mem::take(&mut pending);
                        r.comments.extend(inner_comments(c));
                        f.entries.push(Entry::Rule(r));
                    }
                }
                "filterref" => {
                    if let Some(mut r) = self.filterref(c) {
                        r.comments = std::mem::take(&mut pending);
                        r.comments.extend(inner_comments(c));
                        f.entries.push(Entry::Ref(r));
                    }
                }
                other => {
                    let span = self.tag_span(c);
                    let mut d = Diagnostic::error(
                        "E0103",
                        format!("unknown element <{other}> in <filter>"),
                    )
                    .at(span, "expected <rule>, <filterref> or <uuid>");
                    if let Some(s) = lang::did_you_mean(other, ["rule", "filterref", "uuid"]) {
                        d = d.with_help(format!("did you mean <{s}>?")).with_fix(s);
                    } else if lang::protocol(other).is_some() {
                        d = d.with_help(format!("a <{other}> match goes inside a <rule>"));
                    }
                    self.diags.push(d);
                }
            }
        }
        f.trailing_comments = pending;
        Some(f)
    }

    fn uuid(&mut self, n: Node, f: &mut Filter) {
        for a in self.attrs(n) {
            self.unknown_attr("uuid", &a, &[]);
        }
        let text = n.text().unwrap_or("").trim().to_string();
        let span = n
            .first_child()
            .map(|c| self.span(c.range()))
            .unwrap_or_else(|| self.tag_span(n));
        if f.uuid.is_some() {
            self.diags.push(
                Diagnostic::error("E0113", "a filter has at most one <uuid>")
                    .at(self.tag_span(n), "second <uuid>"),
            );
        } else if !is_uuid(&text) {
            self.diags.push(
                Diagnostic::error("E0113", format!("invalid UUID `{text}`"))
                    .at(span, "expected 32 hex digits, optionally as 8-4-4-4-12"),
            );
        } else {
            f.uuid = Some(text);
        }
    }

    fn filterref(&mut self, n: Node) -> Option<FilterRef> {
        let mut target = None;
        for a in self.attrs(n) {
            match a.name {
                "filter" => target = Some((a.value.to_string(), a.value_span)),
                _ => self.unknown_attr("filterref", &a, &["filter"]),
            }
        }
        self.check_no_text(n);
        let mut params = Vec::new();
        for c in n.children().filter(|c| c.is_element()) {
            if c.tag_name().name() != "parameter" {
                let span = self.tag_span(c);
                let mut d = Diagnostic::error(
                    "E0103",
                    format!("unknown element <{}> in <filterref>", c.tag_name().name()),
                )
                .at(span, "expected <parameter name='...' value='...'/>");
                if let Some(s) = lang::did_you_mean(c.tag_name().name(), ["parameter"]) {
                    d = d.with_help(format!("did you mean <{s}>?")).with_fix(s);
                }
                self.diags.push(d);
                continue;
            }
            if let Some(p) = self.parameter(c) {
                params.push(p);
            }
        }
        // libvirt keeps parameters in a table by name: only the order within one name (a list)
        // means anything.
        params.sort_by(|a: &Param, b: &Param| a.name.cmp(&b.name));
        let Some((filter, name_span)) = target else {
            self.missing_attr(n, "filterref", "filter", "name of the filter to include");
            return None;
        };
        Some(FilterRef {
            filter,
            params,
            span: self.span(n.range()),
            name_span,
            comments: Vec::new(),
        })
    }

    fn parameter(&mut self, n: Node) -> Option<Param> {
        let mut name = None;
        let mut value = None;
        for a in self.attrs(n) {
            match a.name {
                "name" => name = Some((a.value, a.value_span)),
                "value" => value = Some((a.value, a.value_span)),
                _ => self.unknown_attr("parameter", &a, &["name", "value"]),
            }
        }
        let Some((name, ns)) = name else {
            self.missing_attr(n, "parameter", "name", "the variable name");
            return None;
        };
        let Some((value, vs)) = value else {
            self.missing_attr(
                n,
                "parameter",
                "value",
                "the variable's value ([A-Za-z0-9_.:]+)",
            );
            return None;
        };
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
            span: self.span(n.range()),
        })
    }

    fn rule(&mut self, n: Node) -> Option<Rule> {
        let spec = lang::element("rule").expect("rule is in the table");
        let allowed: Vec<_> = spec.attrs.iter().map(|a| a.name).collect();
        let mut action = None;
        let mut direction = None;
        let mut priority = lang::DEFAULT_RULE_PRIORITY;
        let mut statematch = true;
        let mut ok = true;
        let mut saw_action = false;
        let mut saw_direction = false;
        for a in self.attrs(n) {
            match a.name {
                "action" => {
                    saw_action = true;
                    action = self.enum_value(&a, lang::ACTIONS);
                    ok &= action.is_some();
                }
                "direction" => {
                    saw_direction = true;
                    direction = self.enum_value(&a, lang::DIRECTIONS);
                    ok &= direction.is_some();
                }
                "priority" => priority = self.rule_priority(&a),
                "statematch" => {
                    statematch = !matches!(a.value, "false" | "0");
                    if !matches!(a.value, "true" | "false" | "0" | "1") {
                        self.diags.push(
                            Diagnostic::error("E0104", format!("invalid statematch `{}`", a.value))
                                .at(a.value_span, "expected true, false, 1 or 0"),
                        );
                    }
                }
                _ => self.unknown_attr("rule", &a, &allowed),
            }
        }
        if !saw_action {
            self.missing_attr(n, "rule", "action", spec.attrs[0].doc);
            ok = false;
        }
        if !saw_direction {
            self.missing_attr(n, "rule", "direction", spec.attrs[1].doc);
            ok = false;
        }
        self.check_no_text(n);
        let mut matches: Option<Match> = None;
        for c in n.children().filter(|c| c.is_element()) {
            let name = c.tag_name().name();
            let Some(proto) = lang::protocol(name) else {
                let span = self.tag_span(c);
                let mut d =
                    Diagnostic::error("E0103", format!("unknown protocol element <{name}>"))
                        .at(span, "not a protocol element")
                        .with_note(
                            "libvirt silently ignores it, so the rule would match every frame",
                        );
                if let Some(s) = lang::did_you_mean(name, lang::PROTOCOLS.iter().map(|p| p.name)) {
                    d = d.with_help(format!("did you mean <{s}>?")).with_fix(s);
                }
                self.diags.push(d);
                ok = false;
                continue;
            };
            let (m, negated_elem) = self.proto_elem(c, proto);
            match &mut matches {
                None => matches = Some(m),
                Some(prev) if prev.proto.name == proto.name => {
                    let canonical_split = negated_elem
                        != prev.attrs.first().is_some_and(|a| a.written_negated)
                        && m.attrs.iter().all(|a| prev.get(a.spec.name).is_none());
                    if !canonical_split {
                        self.diags.push(
                            Diagnostic::warning(
                                "W0102",
                                format!("repeated <{name}> element in one rule"),
                            )
                            .at(self.tag_span(c), "libvirt merges this into the first one")
                            .related(prev.span, "first element")
                            .with_help("write all attributes in one element"),
                        );
                    }
                    for a in m.attrs {
                        prev.attrs.retain(|p| p.spec.name != a.spec.name);
                        prev.attrs.push(a);
                    }
                    prev.invalid.extend(m.invalid);
                }
                Some(prev) => {
                    self.diags.push(
                        Diagnostic::warning(
                            "W0103",
                            format!("<{name}> is ignored: a rule has one protocol element"),
                        )
                        .at(self.tag_span(c), "libvirt silently ignores this element")
                        .related(prev.span, "the rule's protocol element")
                        .with_help("write a separate rule for each protocol"),
                    );
                }
            }
        }
        if let Some(m) = &mut matches {
            // Table order is libvirt's processing order and makes the IR independent of how
            // the attributes were spelled out.
            let proto = m.proto;
            m.attrs
                .sort_by_key(|a| proto.attrs.iter().position(|s| s.name == a.spec.name));
            m.apply_negation_rules();
            self.check_ports_need_protocol(m);
        }
        if !ok {
            return None;
        }
        Some(Rule {
            action: action?,
            direction: direction?,
            priority,
            statematch,
            matches,
            span: self.span(n.range()),
            comments: Vec::new(),
        })
    }

    fn enum_value<T: Copy>(&mut self, a: &RawAttr, table: &[lang::EnumEntry<T>]) -> Option<T> {
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

    fn rule_priority(&mut self, a: &RawAttr) -> i32 {
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

    /// Reads one protocol element; returns its attributes and whether it had `match='no'`.
    fn proto_elem(&mut self, n: Node, proto: &'static ProtoSpec) -> (Match, bool) {
        let mut negated = false;
        let raw = self.attrs(n);
        if let Some(m) = raw.iter().find(|a| a.name == "match") {
            match m.value {
                "no" => negated = true,
                "yes" => {}
                other => self.diags.push(
                    Diagnostic::error("E0104", format!("invalid match `{other}`"))
                        .at(m.value_span, "expected yes or no"),
                ),
            }
        }
        let mut attrs: Vec<AttrValue> = Vec::new();
        let mut invalid = Vec::new();
        for a in raw.iter().filter(|a| a.name != "match") {
            let Some(spec) = proto.attr(a.name) else {
                self.attr_not_allowed(proto, a);
                continue;
            };
            let Some(value) = self.operand(a, spec.ty) else {
                invalid.push(spec.name);
                continue;
            };
            attrs.push(AttrValue {
                spec,
                value,
                negated,
                written_negated: negated,
                name_span: a.name_span,
                span: a.value_span,
            });
        }
        self.check_no_text(n);
        for c in n.children().filter(|c| c.is_element()) {
            let span = self.tag_span(c);
            self.diags.push(
                Diagnostic::error("E0103", format!("<{}> cannot contain elements", proto.name))
                    .at(span, "unexpected element"),
            );
        }
        (
            Match {
                proto,
                attrs,
                span: self.tag_span(n),
                invalid,
            },
            negated,
        )
    }

    fn attr_not_allowed(&mut self, proto: &ProtoSpec, a: &RawAttr) {
        let elsewhere: Vec<&str> = lang::PROTOCOLS
            .iter()
            .filter(|p| p.attr(a.name).is_some())
            .map(|p| p.name)
            .collect();
        if elsewhere.is_empty() {
            let allowed: Vec<&'static str> = proto
                .attrs
                .iter()
                .map(|s| s.name)
                .chain(["match"])
                .collect();
            self.unknown_attr(proto.name, a, &allowed);
            return;
        }
        let mut d = Diagnostic::error(
            "E0102",
            format!("attribute `{}` is not allowed on <{}>", a.name, proto.name),
        )
        .at(a.name_span, format!("<{}> has no `{}`", proto.name, a.name))
        .with_note(format!("`{}` exists on: {}", a.name, elsewhere.join(", ")));
        if let Some(s) = lang::did_you_mean(a.name, proto.attrs.iter().map(|s| s.name)) {
            d = d.with_help(format!("did you mean `{s}`?")).with_fix(s);
        }
        self.diags.push(d);
    }

    fn operand(&mut self, a: &RawAttr, ty: ValueType) -> Option<Operand> {
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

    fn check_ports_need_protocol(&mut self, m: &Match) {
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
                    "add protocol='tcp' (or udp, sctp) to <{}>",
                    m.proto.name
                ));
            }
            self.diags.push(d);
        }
    }
}

fn is_filter_name(s: &str) -> bool {
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
