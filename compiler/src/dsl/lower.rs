//! Syntax tree to IR. Everything a value or a name means is decided by the shared
//! [`crate::lower`] module, so a mistake gets the same diagnostic here as in XML; this file only
//! maps the DSL's short forms (`!=`, `ADDR/MASK`, `START..END`, parameter lists) onto the
//! attributes they stand for, and attaches `#` comments to the entries they describe.

use super::parse::SyntaxError;
use super::syntax::{
    Comment, FilterDecl, HeaderKey, Item, Op, RuleDecl, RuleKey, Sep, SyntaxTree, UseDecl,
    ValuePart, Word,
};
use crate::diag::{Diagnostic, Diagnostics};
use crate::ir::{Entry, Filter, FilterRef, Match, Rule};
use crate::lang::{self, AttrSpec, Part, ProtoSpec};
use crate::lower::{Lower, RawAttr};
use crate::source::{FileId, Span};
use std::ops::Range;

/// Reports syntax errors as diagnostics.
pub(crate) fn report_syntax(file: FileId, errors: &[SyntaxError], diags: &mut Diagnostics) {
    for e in errors {
        let mut d = Diagnostic::error(e.code, e.message.clone());
        d = d.at(Span::new(file, e.span.clone()), e.label.clone());
        if let Some((r, label)) = &e.related {
            d = d.related(Span::new(file, r.clone()), label.clone());
        }
        if let Some(h) = &e.help {
            d = d.with_help(h.clone());
        }
        diags.push(d);
    }
}

/// Lowers a parsed file: its first filter (with comments), reporting every problem of every
/// filter in the file.
pub(crate) fn lower_tree(
    text: &str,
    tree: &SyntaxTree,
    file: FileId,
    had_syntax_errors: bool,
    diags: &mut Diagnostics,
) -> Option<Filter> {
    let mut l = Lower { file, diags };
    if tree.filters.is_empty() {
        if !had_syntax_errors {
            let end = text.len();
            l.diags.push(
                Diagnostic::error("E0004", "expected a `filter` definition")
                    .at(Span::new(file, 0..end), "no filter in this file")
                    .with_help("a filter file holds one `filter NAME { ... }`"),
            );
        }
        return None;
    }
    let mut first = None;
    for (i, decl) in tree.filters.iter().enumerate() {
        if i > 0 {
            let d = Diagnostic::error("E0504", "a file holds one filter")
                .at(
                    Span::new(file, decl.keyword.clone()),
                    "second filter in this file",
                )
                .related(
                    Span::new(file, tree.filters[0].keyword.clone()),
                    "the file's filter",
                )
                .with_help("move this filter to a file of its own");
            l.diags.push(d);
        }
        let f = lower_filter(&mut l, text, tree, i, decl);
        if first.is_none() {
            first = Some(f);
        }
    }
    first
}

/// The comments in `range`, each consecutive run of own-line comments merged into one (a
/// comment block); end-of-line comments stay separate.
fn comments_in(text: &str, comments: &[Comment], range: Range<usize>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut prev: Option<&Comment> = None;
    for c in comments
        .iter()
        .filter(|c| c.span.start >= range.start && c.span.start < range.end)
    {
        let adjacent = prev.is_some_and(|p| {
            let between = &text[p.span.end..c.span.start];
            !p.trailing
                && !c.trailing
                && between.matches('\n').count() == 1
                && between.trim().is_empty()
        });
        match out.last_mut() {
            Some(last) if adjacent => {
                last.push('\n');
                last.push_str(&c.text);
            }
            _ => out.push(c.text.clone()),
        }
        prev = Some(c);
    }
    out.into_iter().map(|c| c.trim().to_string()).collect()
}

fn lower_filter(
    l: &mut Lower,
    text: &str,
    tree: &SyntaxTree,
    index: usize,
    decl: &FilterDecl,
) -> Filter {
    let file = l.file;
    let span = |r: &Range<usize>| Span::new(file, r.clone());
    let mut chain = None;
    let mut prio = None;
    let mut seen: Vec<(HeaderKey, Range<usize>)> = Vec::new();
    for o in &decl.options {
        if let Some((_, first)) = seen.iter().find(|(k, _)| *k == o.key) {
            let d = Diagnostic::error(
                "E0505",
                format!("`{}` is given twice", header_key_name(o.key)),
            )
            .at(span(&o.keyword), "second one")
            .related(span(first), "first one");
            l.diags.push(d);
            continue;
        }
        seen.push((o.key, o.keyword.clone()));
        match o.key {
            HeaderKey::Chain => chain = Some((o.value.text.to_string(), span(&o.value.span))),
            HeaderKey::Priority => prio = Some((o.value.text.as_str(), span(&o.value.span))),
        }
    }
    let name = decl
        .name
        .as_ref()
        .map(|w| (w.text.to_string(), span(&w.span)));
    let at = span(&decl.keyword);
    // A header too broken to read already has its syntax error; do not add E0101 to it.
    let mut f = match name {
        Some(_) => l.filter_head(at, name, chain, prio),
        None => {
            let mut scratch = Diagnostics::new();
            let mut quiet = Lower {
                file: l.file,
                diags: &mut scratch,
            };
            quiet.filter_head(at, None, chain, prio)
        }
    };
    // Comments: before the filter (after the previous one), in its header line, and between
    // statements; those after the last statement (and after the filter) trail.
    let prev_end = if index == 0 {
        0
    } else {
        tree.filters[index - 1].span.end
    };
    let body_start = decl
        .items
        .first()
        .map_or(decl.span.end, |i| line_start(text, i.span().start));
    // Before the `filter` keyword, and at the end of its line: the filter's. Own-line
    // comments after the header and before the first statement: the first entry's.
    f.comments = comments_in(text, &tree.comments, prev_end..decl.keyword.start);
    let head: Vec<Comment> = tree
        .comments
        .iter()
        .filter(|c| c.span.start >= decl.keyword.start && c.span.start < body_start)
        .cloned()
        .collect();
    let (on_header, before_first): (Vec<Comment>, Vec<Comment>) =
        head.into_iter().partition(|c| c.trailing);
    f.comments
        .extend(on_header.into_iter().map(|c| c.text.trim().to_string()));
    let mut pending: Vec<String> = comments_in(text, &before_first, 0..text.len());
    let mut pending_from = body_start;
    for (i, item) in decl.items.iter().enumerate() {
        let s = item.span();
        // A comment at the end of a statement's line belongs to that statement.
        let line_end = decl
            .items
            .get(i + 1)
            .map_or(decl.span.end, |n| line_start(text, n.span().start))
            .min(text[s.end..].find('\n').map_or(text.len(), |n| s.end + n));
        pending.extend(comments_in(text, &tree.comments, pending_from..s.start));
        let own = comments_in(text, &tree.comments, s.end..line_end.max(s.end));
        pending_from = line_end.max(s.end);
        match item {
            Item::Rule(r) => {
                if let Some(mut rule) = lower_rule(l, r) {
                    rule.comments = std::mem::take(&mut pending);
                    rule.comments.extend(own);
                    f.entries.push(Entry::Rule(rule));
                } else {
                    pending.extend(own);
                }
            }
            Item::Use(u) => {
                let mut r = lower_use(l, u);
                r.comments = std::mem::take(&mut pending);
                r.comments.extend(own);
                f.entries.push(Entry::Ref(r));
            }
            Item::Uuid(u) => {
                l.uuid_into(&u.value.text, span(&u.value.span), span(&u.span), &mut f);
                pending.extend(own);
            }
            Item::Error(_) => pending.extend(own),
        }
    }
    let next_start = tree
        .filters
        .get(index + 1)
        .map_or(text.len() + 1, |n| line_start(text, n.span.start));
    pending.extend(comments_in(text, &tree.comments, pending_from..next_start));
    f.trailing_comments = pending;
    f
}

fn line_start(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |i| i + 1)
}

fn header_key_name(k: HeaderKey) -> &'static str {
    match k {
        HeaderKey::Chain => "chain",
        HeaderKey::Priority => "priority",
    }
}

fn raw<'a>(l: &Lower, name: &'a str, name_span: &Range<usize>, w: &'a Word) -> RawAttr<'a> {
    RawAttr {
        name,
        value: &w.text,
        name_span: l.span(name_span.clone()),
        value_span: l.span(w.span.clone()),
    }
}

fn lower_use(l: &mut Lower, u: &UseDecl) -> FilterRef {
    let mut params = Vec::new();
    for p in &u.params {
        for v in &p.values {
            let text = value_text(&v.parts);
            let vs = l.span(v.span.clone());
            let ns = l.span(p.name.span.clone());
            let whole = l.span(p.span.clone());
            if let Some(param) = l.param((&p.name.text, ns), (&text, vs), whole) {
                params.push(param);
            }
        }
    }
    // As in XML: libvirt keeps parameters in a table by name; only the order within one name
    // (a list) means anything.
    params.sort_by(|a, b| a.name.cmp(&b.name));
    FilterRef {
        filter: u.target.text.to_string(),
        params,
        span: l.span(u.span.clone()),
        name_span: l.span(u.target.span.clone()),
        comments: Vec::new(),
    }
}

/// The text of value parts, separators included, without blanks.
fn value_text(parts: &[ValuePart]) -> String {
    parts
        .iter()
        .map(|p| match p {
            ValuePart::Word(w) => w.text.as_str(),
            ValuePart::Sep(s, _) => s.text(),
        })
        .collect()
}

/// The attribute that gives `part` of the same field as `spec` (its mask or range end).
pub(crate) fn partner(proto: &ProtoSpec, spec: &AttrSpec, part: Part) -> Option<&'static AttrSpec> {
    if spec.part != Part::Value {
        return None;
    }
    proto
        .attrs
        .iter()
        .find(|a| a.field == spec.field && a.part == part && a.name != spec.name)
}

/// A rule whose first words are not `DIRECTION ACTION` in an obvious way: an action first
/// (the direction is missing), a protocol second (the action is missing), or a mistyped `use`.
/// The parser says the same for a rule too broken to parse (`parse::in_context`).
fn misplaced_words(l: &mut Lower, r: &RuleDecl) -> bool {
    let is = |w: &Word, t: &[(&str, &str)]| t.iter().any(|(n, _)| *n == w.text);
    let directions: Vec<(&str, &str)> = lang::DIRECTIONS.iter().map(|e| (e.0, e.2)).collect();
    let actions: Vec<(&str, &str)> = lang::ACTIONS.iter().map(|e| (e.0, e.2)).collect();
    let (d, a) = (&r.direction, &r.action);
    let err = if is(d, &directions) {
        if is(a, &actions) || lang::protocol(&a.text).is_none() {
            return false;
        }
        Diagnostic::error(
            "E0501",
            format!(
                "`{}` is not an action; expected accept, drop, reject, return or continue",
                a.text
            ),
        )
        .at(
            l.span(a.span.clone()),
            "the action is missing before the protocol",
        )
    } else if is(d, &actions) {
        Diagnostic::error(
            "E0501",
            format!(
                "`{}` is an action; a rule starts with a direction: in, out or inout",
                d.text
            ),
        )
        .at(
            l.span(d.span.clone()),
            "the direction is missing before the action",
        )
    } else if let Some(k) = lang::did_you_mean(&d.text, ["use", "uuid"])
        .filter(|_| lang::did_you_mean(&d.text, directions.iter().map(|e| e.0)).is_none())
    {
        Diagnostic::error("E0104", format!("invalid direction `{}`", d.text))
            .at(l.span(d.span.clone()), "expected one of: in, out, inout")
            .with_help(format!("did you mean `{k}`?"))
            .with_fix(k)
    } else {
        return false;
    };
    l.diags.push(err);
    true
}

fn lower_rule(l: &mut Lower, r: &RuleDecl) -> Option<Rule> {
    if misplaced_words(l, r) {
        return None;
    }
    let direction = l.enum_value(
        &raw(l, "direction", &r.direction.span, &r.direction),
        lang::DIRECTIONS,
    );
    let action = l.enum_value(&raw(l, "action", &r.action.span, &r.action), lang::ACTIONS);
    let mut priority = lang::DEFAULT_RULE_PRIORITY;
    let mut statematch = true;
    let mut seen: Vec<(RuleKey, Range<usize>)> = Vec::new();
    for o in &r.options {
        let name = match o.key {
            RuleKey::Priority => "priority",
            RuleKey::Statematch => "statematch",
        };
        if let Some((_, first)) = seen.iter().find(|(k, _)| *k == o.key) {
            let d = Diagnostic::error("E0505", format!("`{name}` is given twice"))
                .at(l.span(o.keyword.clone()), "second one")
                .related(l.span(first.clone()), "first one");
            l.diags.push(d);
            continue;
        }
        seen.push((o.key, o.keyword.clone()));
        let a = raw(l, name, &o.keyword, &o.value);
        match o.key {
            RuleKey::Priority => priority = l.rule_priority(&a),
            RuleKey::Statematch => statematch = l.statematch(&a),
        }
    }
    let mut matches = None;
    if let Some(p) = &r.protocol {
        match lang::protocol(&p.text) {
            // As libvirt does with an unknown element in XML: the protocol and its fields are
            // skipped, and the rule matches every frame (W0105).
            None => l.unknown_protocol(&p.text, l.span(p.span.clone()), true),
            Some(proto) => {
                let mut m = Match {
                    proto,
                    attrs: Vec::new(),
                    span: l.span(p.span.clone()),
                    invalid: Vec::new(),
                };
                for field in &r.fields {
                    lower_field(l, &mut m, field);
                }
                l.finish_match(&mut m);
                matches = Some(m);
            }
        }
    }
    Some(Rule {
        action: action?,
        direction: direction?,
        priority,
        statematch,
        matches,
        span: l.span(r.span.clone()),
        comments: Vec::new(),
    })
}

/// One `NAME [==|!=] VALUE`: one attribute, or two for `ADDR/MASK` and `START..END`.
fn lower_field(l: &mut Lower, m: &mut Match, field: &super::syntax::Field) {
    let negated = matches!(field.op, Some((Op::Ne, _)));
    let name = field.name.text.as_str();
    let Some(spec) = m.proto.attr(name) else {
        let a = RawAttr {
            name,
            value: "",
            name_span: l.span(field.name.span.clone()),
            value_span: l.span(field.value.span.clone()),
        };
        l.attr_not_allowed(m.proto, &a);
        return;
    };
    // Split at `..` (range) or the last `/` (mask), when the attribute has such a partner.
    let parts = &field.value.parts;
    let split = |sep: Sep| {
        parts
            .iter()
            .rposition(|p| matches!(p, ValuePart::Sep(s, _) if *s == sep))
    };
    let mut pieces: Vec<(&'static AttrSpec, &[ValuePart])> = Vec::new();
    let range_at = split(Sep::DotDot);
    let mask_at = split(Sep::Slash).filter(|_| spec.ty != lang::ValueType::TcpFlags);
    if let Some(i) = range_at {
        match partner(m.proto, spec, Part::End) {
            Some(end) => {
                pieces.push((spec, &parts[..i]));
                pieces.push((end, &parts[i + 1..]));
            }
            None => {
                no_short_form(l, field, spec, "a range `START..END`", Part::End);
                m.invalid.push(spec.name);
                return;
            }
        }
    } else if let Some(i) = mask_at {
        match partner(m.proto, spec, Part::Mask) {
            Some(mask) => {
                pieces.push((spec, &parts[..i]));
                pieces.push((mask, &parts[i + 1..]));
            }
            None => {
                no_short_form(l, field, spec, "a mask `ADDRESS/MASK`", Part::Mask);
                m.invalid.push(spec.name);
                return;
            }
        }
    } else {
        pieces.push((spec, &parts[..]));
    }
    for (spec, ps) in pieces {
        if m.written(spec.name) {
            let first = m.get(spec.name).map(|a| a.name_span);
            let mut d = Diagnostic::error("E0505", format!("`{}` is given twice", spec.name))
                .at(l.span(field.name.span.clone()), "second one")
                .with_help("a rule tests each attribute once");
            if let Some(f) = first {
                d = d.related(f, "first one");
            }
            l.diags.push(d);
            continue;
        }
        let text = value_text(ps);
        let vspan = match (ps.first(), ps.last()) {
            (Some(a), Some(b)) => l.span(part_span(a).start..part_span(b).end),
            _ => l.span(field.value.span.clone()),
        };
        let a = RawAttr {
            name: spec.name,
            value: &text,
            name_span: l.span(field.name.span.clone()),
            value_span: vspan,
        };
        l.proto_attr(m, &a, negated);
    }
}

fn part_span(p: &ValuePart) -> Range<usize> {
    match p {
        ValuePart::Word(w) => w.span.clone(),
        ValuePart::Sep(_, s) => s.clone(),
    }
}

fn no_short_form(
    l: &mut Lower,
    field: &super::syntax::Field,
    spec: &AttrSpec,
    form: &str,
    _part: Part,
) {
    let text = value_text(&field.value.parts);
    let d = Diagnostic::error(
        "E0104",
        format!("invalid value `{text}` for `{}`", spec.name),
    )
    .at(
        l.span(field.value.span.clone()),
        format!("expected {}", spec.ty.describe()),
    )
    .with_note(format!("`{}` cannot be written as {form}", spec.name));
    l.diags.push(d);
}
