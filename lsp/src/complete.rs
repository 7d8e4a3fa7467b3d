//! Completion: element names where an element can stand, attributes of the current element,
//! enumerated values, filter names and variables — all from the language table.

use crate::analysis::{self, Analysis, Doc, Syntax};
use crate::context::{self, Ctx, ValueKind};
use crate::convert;
use crate::hover;
use crate::scan::{self, Scan};
use nwf_compiler::lang::{self, ValueType};
use std::ops::Range;
use tower_lsp_server::ls_types::{
    CompletionItem, CompletionItemKind, CompletionTextEdit, Documentation, InsertTextFormat,
    MarkupContent, MarkupKind, Position, TextEdit,
};

/// Completion items at a position of an open document.
pub fn complete(a: &Analysis, doc: &Doc, pos: Position) -> Vec<CompletionItem> {
    let text = convert::text(a, doc);
    let offset = convert::offset(a, doc, pos);
    if doc.syntax == Syntax::Dsl {
        return crate::dslfeat::complete(a, doc, offset);
    }
    let scan = scan::scan(text);
    let edit = |range: &Range<usize>, new: String| {
        Some(CompletionTextEdit::Edit(TextEdit::new(
            convert::range(&doc.index, text, range.clone()),
            new,
        )))
    };
    let mut items = Vec::new();
    match context::at(&scan, offset) {
        Ctx::ElementName { tag, parent } => {
            if tag.closing {
                return items;
            }
            for (name, kind) in child_elements(parent) {
                let md = hover::element_doc(name).unwrap_or_default();
                items.push(CompletionItem {
                    label: name.to_string(),
                    kind: Some(kind),
                    documentation: Some(markdown(md)),
                    text_edit: edit(&tag.name_span, name.to_string()),
                    ..Default::default()
                });
            }
        }
        Ctx::AttrName { tag, range, .. } => {
            let present: Vec<&str> = tag
                .attrs
                .iter()
                .filter(|at| at.name_span != range)
                .map(|at| at.name.as_str())
                .collect();
            // A name already followed by `=` only needs the name replaced.
            let has_value = tag
                .attrs
                .iter()
                .any(|at| at.name_span == range && at.value.is_some());
            for name in attributes(&tag.name) {
                if present.contains(&name) {
                    continue;
                }
                let (new, format) = if has_value {
                    (name.to_string(), None)
                } else {
                    (format!("{name}='$1'"), Some(InsertTextFormat::SNIPPET))
                };
                items.push(CompletionItem {
                    label: name.to_string(),
                    kind: Some(CompletionItemKind::PROPERTY),
                    documentation: hover::attr_doc(&tag.name, name).map(markdown),
                    text_edit: edit(&range, new),
                    insert_text_format: format,
                    ..Default::default()
                });
            }
        }
        Ctx::AttrValue {
            tag,
            attr,
            range,
            element,
            ..
        } => {
            let value = attr.value.as_ref().map_or("", |(v, _)| v.as_str());
            let referenced = element.and_then(|e| referenced_filter(&scan, e));
            let (values, target) = value_candidates(
                a,
                &tag.name,
                &attr.name,
                value,
                range.clone(),
                offset,
                referenced,
            );
            for (label, detail, kind) in values {
                items.push(CompletionItem {
                    label: label.clone(),
                    kind: Some(kind),
                    documentation: Some(markdown(detail)),
                    text_edit: edit(&target, label),
                    ..Default::default()
                });
            }
        }
        Ctx::Text { parent } => {
            // Offer elements with their `<` when the cursor is between tags.
            let here = offset..offset;
            for (name, kind) in child_elements(parent) {
                items.push(CompletionItem {
                    label: format!("<{name}"),
                    kind: Some(kind),
                    documentation: hover::element_doc(name).map(markdown),
                    text_edit: edit(&here, format!("<{name}")),
                    filter_text: Some(name.to_string()),
                    ..Default::default()
                });
            }
        }
    }
    items
}

/// Candidate values of attribute `attr` of element `elem` (XML names; the DSL maps its words
/// to them): (label, documentation, kind), and the range a choice replaces (`range` is the
/// whole value; list types replace only the item at `offset`). `referenced` is the filter of
/// the enclosing filterref (for parameter names).
pub fn value_candidates(
    a: &Analysis,
    elem: &str,
    attr: &str,
    value: &str,
    range: Range<usize>,
    offset: usize,
    referenced: Option<String>,
) -> (Vec<(String, String, CompletionItemKind)>, Range<usize>) {
    let mut values: Vec<(String, String, CompletionItemKind)> = Vec::new();
    let mut target = range.clone();
    let enum_kind = CompletionItemKind::ENUM_MEMBER;
    match context::value_kind(elem, attr) {
        Some(ValueKind::Action) => values.extend(
            lang::ACTIONS
                .iter()
                .map(|(n, _, d)| (n.to_string(), d.to_string(), enum_kind)),
        ),
        Some(ValueKind::Direction) => values.extend(
            lang::DIRECTIONS
                .iter()
                .map(|(n, _, d)| (n.to_string(), d.to_string(), enum_kind)),
        ),
        Some(ValueKind::Chain) => values.extend(
            lang::CHAIN_PREFIXES
                .iter()
                .map(|(n, p, d)| (n.to_string(), format!("{d} (priority {p})"), enum_kind)),
        ),
        Some(ValueKind::StateMatch) => values.extend(
            context::bool_values()
                .into_iter()
                .map(|(n, d)| (n, d, enum_kind)),
        ),
        Some(ValueKind::Match) => values.extend(
            [("yes", "match"), ("no", "negate the attributes")]
                .map(|(n, d)| (n.to_string(), d.to_string(), enum_kind)),
        ),
        Some(ValueKind::FilterRef) => {
            for name in a.lib.names() {
                let detail = hover::filter_summary(a, name).unwrap_or_default();
                values.push((name.to_string(), detail, CompletionItemKind::MODULE));
            }
        }
        Some(ValueKind::ParamName) => {
            let used = referenced
                .map(|f| analysis::variables_of(&a.lib, &f))
                .unwrap_or_default();
            let all = analysis::variables(a);
            let names: Vec<String> = if used.is_empty() {
                all.keys().cloned().collect()
            } else {
                used.into_iter().collect()
            };
            for n in names {
                values.push((
                    n.clone(),
                    hover::variable_doc(a, &n),
                    CompletionItemKind::VARIABLE,
                ));
            }
        }
        Some(ValueKind::Typed(spec)) => {
            if matches!(
                spec.ty,
                ValueType::States | ValueType::TcpFlags | ValueType::IpsetFlags
            ) {
                target = context::list_item(value, range.start, offset);
            }
            values.extend(
                context::enum_values(spec.ty)
                    .into_iter()
                    .map(|(n, d)| (n, d, enum_kind)),
            );
        }
        Some(ValueKind::Priority | ValueKind::FilterDef | ValueKind::ParamValue) | None => {}
    }
    // Variables can stand in any protocol attribute, but next to enumerated values they are
    // noise: offer them once `$` is typed, or when the table gives the type no enum values.
    if let Some(ValueKind::Typed(spec)) = context::value_kind(elem, attr) {
        let item = value
            .get(target.start.saturating_sub(range.start)..target.end.saturating_sub(range.start))
            .unwrap_or(value);
        let dollar = item.trim_start().starts_with('$');
        if dollar {
            values.clear();
        }
        if dollar || (item.is_empty() && context::enum_values(spec.ty).is_empty()) {
            for n in analysis::variables(a).keys() {
                values.push((
                    format!("${n}"),
                    hover::variable_doc(a, n),
                    CompletionItemKind::VARIABLE,
                ));
            }
        }
    }
    (values, target)
}

/// Markdown documentation.
pub fn markdown(value: String) -> Documentation {
    Documentation::MarkupContent(MarkupContent {
        kind: MarkupKind::Markdown,
        value,
    })
}

/// Elements allowed inside `parent` (the document root when `None`).
pub fn child_elements(parent: Option<&str>) -> Vec<(&'static str, CompletionItemKind)> {
    let mut out: Vec<(&'static str, CompletionItemKind)> = lang::ELEMENTS
        .iter()
        .filter(|e| match parent {
            None => e.parents.is_empty(),
            Some(p) => e.parents.contains(&p),
        })
        .map(|e| (e.name, CompletionItemKind::CLASS))
        .collect();
    if parent == Some("rule") {
        out.extend(
            lang::PROTOCOLS
                .iter()
                .map(|p| (p.name, CompletionItemKind::KEYWORD)),
        );
    }
    out
}

/// Attribute names of an element (structural or protocol; protocols also take `match`).
pub fn attributes(elem: &str) -> Vec<&'static str> {
    if let Some(e) = lang::element(elem) {
        return e.attrs.iter().map(|a| a.name).collect();
    }
    match lang::protocol(elem) {
        // `match` is read by the XML front end for every protocol element, outside the table.
        Some(p) => p.attrs.iter().map(|a| a.name).chain(["match"]).collect(),
        None => Vec::new(),
    }
}

/// The `filter` attribute of the filterref enclosing element `e` (a parameter).
fn referenced_filter(scan: &Scan, e: usize) -> Option<String> {
    let parent = scan.elements.get(e)?.parent?;
    let tag = scan.open_tag(parent);
    if tag.name != "filterref" {
        return None;
    }
    tag.attr("filter")?.value.as_ref().map(|(v, _)| v.clone())
}
