//! What the cursor is on: an element name, an attribute name or an attribute value, and what
//! kind of value the language table says belongs there.

use crate::scan::{Attr, Scan, Tag};
use nwf_compiler::lang::{self, ValueType};
use std::ops::Range;

/// The cursor's place in the XML.
#[derive(Debug)]
pub enum Ctx<'s> {
    /// In an element name (also right after `<`).
    ElementName {
        /// The tag.
        tag: &'s Tag,
        /// Name of the enclosing element, if any.
        parent: Option<&'s str>,
    },
    /// In an attribute name, or in a tag where one could start.
    AttrName {
        /// The tag.
        tag: &'s Tag,
        /// Range of the (partial) name to replace.
        range: Range<usize>,
        /// Names of the enclosing elements, innermost first.
        ancestors: Vec<&'s str>,
    },
    /// In an attribute value.
    AttrValue {
        /// The tag.
        tag: &'s Tag,
        /// The attribute.
        attr: &'s Attr,
        /// Range of the value text.
        range: Range<usize>,
        /// Names of the enclosing elements, innermost first.
        ancestors: Vec<&'s str>,
        /// Index of the tag's element in the scan (to find its parent filterref).
        element: Option<usize>,
    },
    /// Outside any tag.
    Text {
        /// Name of the enclosing element, if any.
        parent: Option<&'s str>,
    },
}

/// The context at byte `offset`.
pub fn at(scan: &Scan, offset: usize) -> Ctx<'_> {
    let Some(ti) = scan.tag_at(offset) else {
        let parent = scan
            .enclosing_element(offset)
            .map(|e| scan.open_tag(e).name.as_str());
        return Ctx::Text { parent };
    };
    let tag = &scan.tags[ti];
    let element = scan.tag_element.get(ti).copied().flatten();
    let ancestors = element.map(|e| scan.ancestors(e)).unwrap_or_default();
    if offset <= tag.name_span.end {
        return Ctx::ElementName {
            tag,
            parent: ancestors.first().copied(),
        };
    }
    for attr in &tag.attrs {
        if attr.name_span.start <= offset && offset <= attr.name_span.end {
            return Ctx::AttrName {
                tag,
                range: attr.name_span.clone(),
                ancestors,
            };
        }
        if let Some((_, r)) = &attr.value {
            if r.start <= offset && offset <= r.end {
                return Ctx::AttrValue {
                    tag,
                    attr,
                    range: r.clone(),
                    ancestors,
                    element,
                };
            }
        }
    }
    Ctx::AttrName {
        tag,
        range: offset..offset,
        ancestors,
    }
}

/// What an attribute value means.
#[derive(Clone, Copy, Debug)]
pub enum ValueKind {
    /// `action` of a rule.
    Action,
    /// `direction` of a rule.
    Direction,
    /// `chain` of a filter.
    Chain,
    /// A rule or chain priority.
    Priority,
    /// `name` of a filter (a definition).
    FilterDef,
    /// `filter` of a filterref (a reference).
    FilterRef,
    /// `name` of a parameter (a variable).
    ParamName,
    /// `value` of a parameter.
    ParamValue,
    /// `statematch` of a rule.
    StateMatch,
    /// `match` of a protocol element.
    Match,
    /// A protocol attribute of this type.
    Typed(&'static lang::AttrSpec),
}

/// The kind of value of `attr` on element `elem`.
pub fn value_kind(elem: &str, attr: &str) -> Option<ValueKind> {
    Some(match (elem, attr) {
        ("rule", "action") => ValueKind::Action,
        ("rule", "direction") => ValueKind::Direction,
        ("rule", "priority") | ("filter", "priority") => ValueKind::Priority,
        ("rule", "statematch") => ValueKind::StateMatch,
        ("filter", "chain") => ValueKind::Chain,
        ("filter", "name") => ValueKind::FilterDef,
        ("filterref", "filter") => ValueKind::FilterRef,
        ("parameter", "name") => ValueKind::ParamName,
        ("parameter", "value") => ValueKind::ParamValue,
        (p, "match") if lang::protocol(p).is_some() => ValueKind::Match,
        (p, a) => ValueKind::Typed(lang::protocol(p)?.attr(a)?),
    })
}

/// The spelled values of an enumerated value type from the language table, with a detail.
pub fn enum_values(ty: ValueType) -> Vec<(String, String)> {
    match ty {
        ValueType::EtherType { .. } => lang::ETHER_TYPES
            .iter()
            .map(|(n, v)| (n.to_string(), format!("ethertype 0x{v:04x}")))
            .collect(),
        ValueType::IpProtocol => lang::IP_PROTOCOLS
            .iter()
            .map(|(n, v)| (n.to_string(), format!("IP protocol {v}")))
            .collect(),
        ValueType::ArpOpcode => lang::ARP_OPCODES
            .iter()
            .map(|(n, v)| (n.to_string(), format!("ARP opcode {v}")))
            .collect(),
        ValueType::States => lang::STATES
            .iter()
            .map(|(n, _)| (n.to_string(), "connection state".to_string()))
            .collect(),
        ValueType::TcpFlags => lang::TCP_FLAG_NAMES
            .iter()
            .map(|(n, v)| (n.to_string(), format!("TCP flag bits 0x{v:02x}")))
            .collect(),
        ValueType::IpsetFlags => lang::IPSET_DIRECTIONS
            .iter()
            .map(|(n, doc)| (n.to_string(), doc.to_string()))
            .collect(),
        ValueType::Bool => bool_values(),
        _ => Vec::new(),
    }
}

/// The canonical boolean spellings (the reader also takes 1/0/yes/no).
pub fn bool_values() -> Vec<(String, String)> {
    [("true", "yes"), ("false", "no")]
        .into_iter()
        .map(|(n, d)| (n.to_string(), d.to_string()))
        .collect()
}

/// The documentation of one spelled enum value of a type, if it is one.
pub fn enum_value_doc(ty: ValueType, word: &str) -> Option<String> {
    enum_values(ty)
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(word))
        .map(|(n, d)| format!("`{n}`: {d}"))
}

/// For list values (states, TCP flags): the range of the item the cursor is in.
pub fn list_item(value: &str, value_start: usize, offset: usize) -> Range<usize> {
    let mut rel = offset.saturating_sub(value_start).min(value.len());
    while !value.is_char_boundary(rel) {
        rel -= 1;
    }
    let is_sep = |c: char| c == ',' || c == '/';
    let start = value[..rel].rfind(is_sep).map_or(0, |i| i + 1);
    let end = value[rel..].find(is_sep).map_or(value.len(), |i| rel + i);
    value_start + start..value_start + end
}
