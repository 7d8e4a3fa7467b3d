//! Hover: documentation from the language table for elements, attributes and values, filter
//! summaries for filter names, and a rule's place in the evaluation order.

use crate::analysis::{self, Analysis, Doc, RulePlace, Syntax};
use crate::context::{self, Ctx, ValueKind};
use crate::convert;
use crate::place::{self, Placed};
use crate::scan;
use nwf_compiler::ir::{Entry, Filter};
use nwf_compiler::lang::{self, Layer};
use nwf_compiler::library::Provider;
use nwf_compiler::source::Origin;
use tower_lsp_server::ls_types::{Hover, HoverContents, MarkupContent, MarkupKind, Position};

/// The hover at a position of an open document.
pub fn hover(a: &Analysis, doc: &Doc, pos: Position) -> Option<Hover> {
    let text = convert::text(a, doc);
    let offset = convert::offset(a, doc, pos);
    if doc.syntax == Syntax::Dsl {
        let (md, range) = crate::dslfeat::hover(a, doc, offset)?;
        return Some(markdown_hover(doc, text, md, range));
    }
    let scan = scan::scan(text);
    let (md, range) = match context::at(&scan, offset) {
        Ctx::ElementName { tag, .. } => {
            let mut md = element_doc(&tag.name)?;
            if tag.name == "rule" && !tag.closing {
                if let Some(text) =
                    rule_at(doc, tag.span.start).and_then(|i| evaluation_text(a, doc, i))
                {
                    md.push_str(&format!("\n\n{text}"));
                }
            }
            (md, tag.name_span.clone())
        }
        Ctx::AttrName { tag, range, .. } => {
            let name = text.get(range.clone())?;
            (attr_doc(&tag.name, name)?, range)
        }
        Ctx::AttrValue {
            tag, attr, range, ..
        } => {
            let value = attr.value.as_ref().map_or("", |(v, _)| v.as_str());
            (value_doc(a, &tag.name, &attr.name, value)?, range)
        }
        Ctx::Text { .. } => return None,
    };
    Some(markdown_hover(doc, text, md, range))
}

fn markdown_hover(doc: &Doc, text: &str, md: String, range: std::ops::Range<usize>) -> Hover {
    Hover {
        contents: HoverContents::Markup(MarkupContent {
            kind: MarkupKind::Markdown,
            value: md,
        }),
        range: Some(convert::range(&doc.index, text, range)),
    }
}

/// Documentation of an element: structural elements and protocol elements from the table.
pub fn element_doc(name: &str) -> Option<String> {
    if let Some(e) = lang::element(name) {
        let attrs: Vec<String> = e
            .attrs
            .iter()
            .map(|a| {
                format!(
                    "- `{}`{}: {}",
                    a.name,
                    if a.required { " (required)" } else { "" },
                    a.doc
                )
            })
            .collect();
        let mut md = format!("**<{}>** — {}", e.name, e.doc);
        if !e.parents.is_empty() {
            md.push_str(&format!("\n\nInside: <{}>", e.parents.join(">, <")));
        }
        if !attrs.is_empty() {
            md.push_str(&format!("\n\n{}", attrs.join("\n")));
        }
        return Some(md);
    }
    let p = lang::protocol(name)?;
    let layer = match p.layer {
        Layer::Ethernet => "ethernet layer (ebtables)".to_string(),
        Layer::Ip => format!(
            "IP layer ({})",
            if p.family == lang::Family::V6 {
                "ip6tables"
            } else {
                "iptables"
            }
        ),
    };
    Some(format!(
        "**<{}>** — {}\n\nProtocol element of a <rule>, {}. {} attributes; `match='no'` negates them.",
        p.name,
        p.doc,
        layer,
        p.attrs.len()
    ))
}

/// Documentation of an attribute of an element.
pub fn attr_doc(elem: &str, attr: &str) -> Option<String> {
    if let Some(e) = lang::element(elem) {
        let a = e.attrs.iter().find(|a| a.name == attr)?;
        return Some(format!(
            "**{}** on <{}>{} — {}",
            a.name,
            elem,
            if a.required { " (required)" } else { "" },
            a.doc
        ));
    }
    let p = lang::protocol(elem)?;
    if attr == "match" {
        return Some(format!(
            "**match** on <{elem}> — `no` negates the element's attributes (libvirt copies some negations; see W0201)\n\nExpected: yes or no"
        ));
    }
    let a = p.attr(attr)?;
    let mut md = format!(
        "**{}** on <{}> — {}\n\nExpected: {}",
        a.name,
        elem,
        a.doc,
        a.ty.describe()
    );
    if let Some(src) = a.neg_from {
        md.push_str(&format!(
            "\n\nWith `match='no'` its negation comes from `{src}`."
        ));
    }
    Some(md)
}

/// Documentation of an attribute value.
pub fn value_doc(a: &Analysis, elem: &str, attr: &str, value: &str) -> Option<String> {
    if let Some(var) = value.strip_prefix('$') {
        let name: String = var
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        return Some(variable_doc(a, &name));
    }
    let kind = context::value_kind(elem, attr)?;
    let word = |list: &[(&str, String)]| {
        list.iter()
            .find(|(n, _)| *n == value)
            .map(|(n, d)| format!("`{n}` — {d}"))
    };
    match kind {
        ValueKind::Action => word(
            &lang::ACTIONS
                .iter()
                .map(|(n, _, d)| (*n, d.to_string()))
                .collect::<Vec<_>>(),
        ),
        ValueKind::Direction => word(
            &lang::DIRECTIONS
                .iter()
                .map(|(n, _, d)| (*n, d.to_string()))
                .collect::<Vec<_>>(),
        ),
        ValueKind::Chain => lang::CHAIN_PREFIXES
            .iter()
            .find(|(p, _, _)| value.starts_with(p))
            .map(|(p, prio, d)| {
                format!("chain `{value}` — {d}\n\nDefault chain priority ({p}): {prio}")
            }),
        ValueKind::FilterDef | ValueKind::FilterRef => filter_summary(a, value),
        ValueKind::Priority => Some(format!(
            "priority `{value}` — {} to {}; lower runs earlier, equal priorities keep document order (default {})",
            lang::PRIORITY_RANGE.0,
            lang::PRIORITY_RANGE.1,
            lang::DEFAULT_RULE_PRIORITY
        )),
        ValueKind::ParamName => Some(variable_doc(a, value)),
        ValueKind::ParamValue | ValueKind::StateMatch | ValueKind::Match => {
            attr_doc(elem, attr)
        }
        ValueKind::Typed(spec) => {
            let items: Vec<String> = value
                .split([',', '/'])
                .filter_map(|w| context::enum_value_doc(spec.ty, w.trim()))
                .collect();
            let mut md = format!("**{}**: {}", spec.name, spec.ty.describe());
            if !items.is_empty() {
                md = format!("{}\n\n{md}", items.join("\n\n"));
            }
            Some(md)
        }
    }
}

/// Documentation of a variable: its reserved meaning, where it is used, the binding's value.
pub fn variable_doc(a: &Analysis, name: &str) -> String {
    let vars = analysis::variables(a);
    let mut md = format!("variable **${name}**");
    if let Some((_, d)) = lang::RESERVED_VARIABLES.iter().find(|(n, _)| *n == name) {
        md.push_str(&format!(" — {d}"));
    } else if let Some(d) = vars.get(name) {
        md.push_str(&format!(" — {d}"));
    }
    let values: Vec<&str> = a
        .vars
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect();
    if !values.is_empty() {
        md.push_str(&format!("\n\nBinding value: {}", values.join(", ")));
    }
    md
}

/// A summary of a filter: where it is defined, its chain, what it contains.
pub fn filter_summary(a: &Analysis, name: &str) -> Option<String> {
    let l = a.lib.get(name)?;
    let f = &l.filter;
    let origin = match &a.lib.sources.get(f.file).origin {
        Origin::Stdlib(_) => "standard library".to_string(),
        _ => match l.provider {
            Provider::File => format!("open document {}", a.lib.sources.get(f.file).name),
            _ => a.lib.sources.get(f.file).name.clone(),
        },
    };
    let rules = f.rules().count();
    let refs: Vec<&str> = f.refs().map(|r| r.filter.as_str()).collect();
    let mut md = format!(
        "**filter `{}`** — chain `{}`, priority {}\n\nDefined in: {}\n\n{} rule{}, {} filterref{}",
        f.name,
        f.chain,
        f.priority,
        origin,
        rules,
        if rules == 1 { "" } else { "s" },
        refs.len(),
        if refs.len() == 1 { "" } else { "s" },
    );
    if !refs.is_empty() {
        md.push_str(&format!(": includes `{}`", refs.join("`, `")));
    }
    let vars = analysis::variables_of(&a.lib, name);
    if !vars.is_empty() {
        let vars: Vec<String> = vars.into_iter().map(|v| format!("${v}")).collect();
        md.push_str(&format!("\n\nVariables: {}", vars.join(", ")));
    }
    if let Some(c) = f.comments.first() {
        md.push_str(&format!("\n\n{}", c.trim()));
    }
    Some(md)
}

/// The index in the document filter's entries of the rule whose element starts at byte
/// `start`.
pub fn rule_at(doc: &Doc, start: usize) -> Option<usize> {
    let f = doc.filter.as_ref()?;
    f.entries
        .iter()
        .position(|e| matches!(e, Entry::Rule(r) if r.span.start as usize == start))
}

/// Where the rule at `index` of the document's filter is evaluated: with a binding, its
/// places in the instantiated program; without one (or when the program cannot be made), its
/// place within its own filter, said to be so.
pub fn evaluation_text(a: &Analysis, doc: &Doc, index: usize) -> Option<String> {
    let f = doc.filter.as_ref()?;
    let Entry::Rule(rule) = f.entries.get(index)? else {
        return None;
    };
    let own = analysis::rule_places(f)[index];
    let per_filter = |intro: &str| own.map(|p| format!("{intro}{}", place_text(doc, p)));
    match a.placement().as_deref() {
        None => per_filter(
            "Evaluation order, **per filter** (configure a `binding` for the rule's place in \
             the whole program): ",
        ),
        Some(Placed::Failed {
            filter,
            reason,
            errors,
        }) => per_filter(&format!(
            "Evaluation order, **per filter**: the binding's filter `{filter}` cannot be \
             instantiated ({errors} error{}; first: {reason}).\n\nWithin this filter: ",
            if *errors == 1 { "" } else { "s" }
        )),
        Some(Placed::Program(p)) => match p.rules.get(&rule.span) {
            None => per_filter(&format!(
                "Evaluation order: **not in the program** of port `{}` (filter `{}` does not \
                 reach this rule).\n\nWithin this filter: ",
                p.port, p.filter
            )),
            Some(places) => {
                let lines: Vec<String> = places
                    .iter()
                    .map(|c| format!("- {}", place::describe(c)))
                    .collect();
                let paths: Vec<String> = p
                    .paths
                    .get(&rule.span)
                    .into_iter()
                    .flatten()
                    .map(|path| path.join(" > "))
                    .collect();
                Some(format!(
                    "Evaluation order in the program of port `{}` (binding filter `{}`, via {}), \
                     priority {}:\n\n{}\n\nPositions count the rules of every \
                     included filter, numbered like `nwf show` (root-chain entries include the \
                     jumps into sub-chains).",
                    p.port,
                    p.filter,
                    paths.join("; "),
                    rule.priority,
                    lines.join("\n")
                ))
            }
        },
    }
}

/// A sentence about a rule's place in the evaluation order of its own filter.
pub fn place_text(doc: &Doc, p: RulePlace) -> String {
    let chain = doc
        .filter
        .as_ref()
        .map_or("root", |f: &Filter| f.chain.as_str());
    format!(
        "rule {} of {} of this filter in the {} layer (chain `{}`), priority {}. \
         libvirt sorts a chain's rules by priority (lower first, ties in document order); \
         rules of included filters in the same chain are merged by priority.",
        p.position,
        p.of,
        match p.layer {
            Layer::Ethernet => "ethernet",
            Layer::Ip => "IP",
        },
        chain,
        p.priority
    )
}
