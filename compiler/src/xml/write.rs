//! Canonical XML output: a stable form that libvirt reads back with the same meaning.
//!
//! Canonical means: two-space indentation, attributes in the language table's order, values in
//! their canonical spelling, every rule with its priority, chain always written, and mixed
//! negation written as libvirt itself writes it (a `match='no'` element plus a plain one).

use crate::ir::{AttrValue, Entry, Filter, Match, Operand};
use crate::lang;
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};
use quick_xml::name::QName;
use quick_xml::Writer;

/// Writes a filter as canonical XML (ends with a newline).
pub fn write_filter(f: &Filter) -> String {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    for c in &f.comments {
        comment(&mut w, c);
    }
    let mut start = BytesStart::new("filter");
    start.push_attribute(("name", f.name.as_str()));
    start.push_attribute(("chain", f.chain.as_str()));
    let prio = f.priority.to_string();
    if f.chain != "root" {
        start.push_attribute(("priority", prio.as_str()));
    }
    let empty = f.uuid.is_none() && f.entries.is_empty() && f.trailing_comments.is_empty();
    if empty {
        emit(&mut w, Event::Empty(start));
    } else {
        emit(&mut w, Event::Start(start));
        if let Some(u) = &f.uuid {
            emit(&mut w, Event::Start(BytesStart::new("uuid")));
            emit(&mut w, Event::Text(BytesText::new(u)));
            emit(&mut w, Event::End(BytesEnd::new("uuid")));
        }
        for e in &f.entries {
            match e {
                Entry::Rule(r) => {
                    for c in &r.comments {
                        comment(&mut w, c);
                    }
                    let mut start = BytesStart::new("rule");
                    start.push_attribute(("action", lang::enum_name(lang::ACTIONS, r.action)));
                    start.push_attribute((
                        "direction",
                        lang::enum_name(lang::DIRECTIONS, r.direction),
                    ));
                    let p = r.priority.to_string();
                    start.push_attribute(("priority", p.as_str()));
                    if !r.statematch {
                        start.push_attribute(("statematch", "false"));
                    }
                    match &r.matches {
                        None => emit(&mut w, Event::Empty(start)),
                        Some(m) => {
                            emit(&mut w, Event::Start(start));
                            write_match(&mut w, m);
                            emit(&mut w, Event::End(BytesEnd::new("rule")));
                        }
                    }
                }
                Entry::Ref(r) => {
                    for c in &r.comments {
                        comment(&mut w, c);
                    }
                    let mut start = BytesStart::new("filterref");
                    start.push_attribute(("filter", r.filter.as_str()));
                    if r.params.is_empty() {
                        emit(&mut w, Event::Empty(start));
                    } else {
                        emit(&mut w, Event::Start(start));
                        for p in &r.params {
                            let mut ps = BytesStart::new("parameter");
                            ps.push_attribute(("name", p.name.as_str()));
                            ps.push_attribute(("value", p.value.as_str()));
                            emit(&mut w, Event::Empty(ps));
                        }
                        emit(&mut w, Event::End(BytesEnd::new("filterref")));
                    }
                }
            }
        }
        for c in &f.trailing_comments {
            comment(&mut w, c);
        }
        emit(&mut w, Event::End(BytesEnd::new("filter")));
    }
    let mut s = String::from_utf8(w.into_inner()).expect("writer produces UTF-8");
    s.push('\n');
    s
}

fn write_match(w: &mut Writer<Vec<u8>>, m: &Match) {
    // Attributes in table order; negated ones in a `match='no'` element, the rest in a plain one.
    let ordered: Vec<&AttrValue> = m
        .proto
        .attrs
        .iter()
        .filter_map(|spec| m.attrs.iter().find(|a| a.spec.name == spec.name))
        .collect();
    let negated: Vec<&AttrValue> = ordered.iter().copied().filter(|a| a.negated).collect();
    let plain: Vec<&AttrValue> = ordered.iter().copied().filter(|a| !a.negated).collect();
    if !negated.is_empty() {
        let mut s = BytesStart::new(m.proto.name);
        s.push_attribute(("match", "no"));
        push_attrs(&mut s, &negated);
        emit(w, Event::Empty(s));
    }
    if !plain.is_empty() || negated.is_empty() {
        let mut s = BytesStart::new(m.proto.name);
        push_attrs(&mut s, &plain);
        emit(w, Event::Empty(s));
    }
}

fn push_attrs(s: &mut BytesStart, attrs: &[&AttrValue]) {
    for a in attrs {
        let text = match &a.value {
            Operand::Lit(v) => v.to_text(a.spec.ty),
            Operand::Var(v) => v.to_string(),
        };
        s.push_attribute(Attribute {
            key: QName(a.spec.name),
            value: escape_attr(&text).into(),
        });
    }
}

/// Escapes an attribute value so that XML attribute-value normalisation gives it back exactly
/// (tabs and newlines would otherwise be read back as spaces).
fn escape_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

fn comment(w: &mut Writer<Vec<u8>>, text: &str) {
    // `--` cannot appear inside an XML comment.
    let safe = text.replace("--", "- -");
    emit(
        w,
        Event::Comment(BytesText::from_escaped(format!(" {safe} "))),
    );
}

fn emit(w: &mut Writer<Vec<u8>>, e: Event) {
    w.write_event(e).expect("writing to a Vec cannot fail");
}
