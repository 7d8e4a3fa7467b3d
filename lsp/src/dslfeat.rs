//! The DSL side of hover, completion, semantic tokens, folding and name lookup. Each word's
//! role (see [`crate::dslctx`]) names the XML element and attribute it stands for, so the
//! documentation and candidate values are the same as for XML.

use crate::analysis::{Analysis, Doc};
use crate::complete::{self, markdown};
use crate::convert;
use crate::dslctx::{self, Role};
use crate::hover;
use nwf_compiler::ir::Entry;
use nwf_compiler::lang;
use std::ops::Range;
use tower_lsp_server::ls_types::{
    CompletionItem, CompletionItemKind, CompletionTextEdit, TextEdit,
};

/// Hover text and range at a byte offset of a DSL document.
pub fn hover(a: &Analysis, doc: &Doc, offset: usize) -> Option<(String, Range<usize>)> {
    let text = convert::text(a, doc);
    let cls = dslctx::classify(text);
    let c = dslctx::token_at(&cls, offset)?;
    let md = match &c.role {
        Role::Keyword(k) => match *k {
            "filter" => hover::element_doc("filter")?,
            "use" => hover::element_doc("filterref")?,
            "uuid" => hover::element_doc("uuid")?,
            "chain" => hover::attr_doc("filter", "chain")?,
            "priority" => hover::attr_doc("rule", "priority")?,
            "statematch" => hover::attr_doc("rule", "statematch")?,
            _ => return None,
        },
        Role::Proto(p) => hover::element_doc(p)?,
        Role::Field { proto, name } => hover::attr_doc(proto, name)?,
        Role::Value { elem, attr } => {
            let mut md = hover::value_doc(a, elem, attr, &dslctx::word_text(&c.text))?;
            // The first word of a rule tells where the rule stands in the evaluation order.
            if elem == "rule" && attr == "direction" {
                if let Some(text) = rule_containing(doc, c.range.start)
                    .and_then(|i| hover::evaluation_text(a, doc, i))
                {
                    md.push_str(&format!("\n\n{text}"));
                }
            }
            md
        }
        Role::Comment | Role::Other => return None,
    };
    Some((md, c.range.clone()))
}

/// The index of the rule whose statement contains `offset`.
fn rule_containing(doc: &Doc, offset: usize) -> Option<usize> {
    let f = doc.filter.as_ref()?;
    f.entries.iter().position(|e| {
        matches!(e, Entry::Rule(r) if (r.span.start as usize..=r.span.end as usize).contains(&offset))
    })
}

/// Completion items at a byte offset of a DSL document.
pub fn complete(a: &Analysis, doc: &Doc, offset: usize) -> Vec<CompletionItem> {
    let text = convert::text(a, doc);
    let Some((c, range)) = dslctx::expected_at(text, offset) else {
        return Vec::new();
    };
    let mut values: Vec<(String, String, CompletionItemKind)> = Vec::new();
    let mut target = range.clone();
    let kw = CompletionItemKind::KEYWORD;
    match &c.role {
        Role::Value { elem, attr } if elem == "rule" && attr == "direction" => {
            if c.depth == 0 {
                values.push((
                    "filter".into(),
                    hover::element_doc("filter").unwrap_or_default(),
                    kw,
                ));
            } else {
                let (v, _) =
                    complete::value_candidates(a, elem, attr, "", range.clone(), offset, None);
                values.extend(v);
                values.push((
                    "use".into(),
                    hover::element_doc("filterref").unwrap_or_default(),
                    kw,
                ));
                values.push((
                    "uuid".into(),
                    hover::element_doc("uuid").unwrap_or_default(),
                    kw,
                ));
            }
        }
        Role::Keyword("filter") if c.depth == 0 => {
            values.push((
                "filter".into(),
                hover::element_doc("filter").unwrap_or_default(),
                kw,
            ));
        }
        Role::Proto(_) => {
            for p in lang::PROTOCOLS {
                values.push((
                    p.name.into(),
                    hover::element_doc(p.name).unwrap_or_default(),
                    kw,
                ));
            }
            for o in ["priority", "statematch"] {
                values.push((o.into(), hover::attr_doc("rule", o).unwrap_or_default(), kw));
            }
        }
        Role::Field { proto, .. } => {
            // `!=` negates in the DSL, so `match` is not a field here.
            for n in complete::attributes(proto)
                .into_iter()
                .filter(|n| *n != "match")
            {
                values.push((
                    n.into(),
                    hover::attr_doc(proto, n).unwrap_or_default(),
                    CompletionItemKind::PROPERTY,
                ));
            }
            for o in ["priority", "statematch"] {
                values.push((o.into(), hover::attr_doc("rule", o).unwrap_or_default(), kw));
            }
        }
        Role::Value { elem, attr } => {
            let referenced = (elem == "parameter")
                .then(|| use_target(text, offset))
                .flatten();
            let (v, t) = complete::value_candidates(
                a,
                elem,
                attr,
                &c.text,
                range.clone(),
                offset,
                referenced,
            );
            values = v;
            target = t;
        }
        _ => {}
    }
    values
        .into_iter()
        .map(|(label, detail, kind)| CompletionItem {
            label: label.clone(),
            kind: Some(kind),
            documentation: Some(markdown(detail)),
            text_edit: Some(CompletionTextEdit::Edit(TextEdit::new(
                convert::range(&doc.index, text, target.clone()),
                label,
            ))),
            ..Default::default()
        })
        .collect()
}

/// The filter of the `use` statement the offset is in.
fn use_target(text: &str, offset: usize) -> Option<String> {
    let cls = dslctx::classify(text);
    cls.iter()
        .rev()
        .filter(|c| c.range.start < offset)
        .find(|c| matches!(&c.role, Role::Value { elem, attr } if elem == "filterref" && attr == "filter"))
        .map(|c| dslctx::word_text(&c.text))
}

/// Semantic token types (legend indexes of `misc::legend`) of a DSL text.
pub fn token_types(text: &str) -> Vec<(Range<usize>, u32)> {
    dslctx::classify(text)
        .into_iter()
        .filter_map(|c| {
            let ty = match &c.role {
                Role::Keyword(_) | Role::Proto(_) => 0,
                Role::Field { .. } => 1,
                Role::Value { elem, attr } => {
                    crate::misc::value_token_type(elem, attr, &dslctx::word_text(&c.text))
                }
                Role::Comment => 5,
                Role::Other if c.text.starts_with('"') => 7,
                Role::Other => return None,
            };
            Some((c.range, ty))
        })
        .collect()
}

/// Foldable ranges of a DSL text: blocks (`{ }`, `( )`, `[ ]`) and runs of comment lines
/// (`true` marks a comment).
pub fn folds(text: &str) -> Vec<(Range<usize>, bool)> {
    let mut out = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    let mut comment_run: Option<Range<usize>> = None;
    for c in dslctx::classify(text) {
        match c.text.as_str() {
            "{" | "(" | "[" => open.push(c.range.start),
            "}" | ")" | "]" => {
                if let Some(s) = open.pop() {
                    out.push((s..c.range.end, false));
                }
            }
            _ => {}
        }
        if c.role == Role::Comment {
            comment_run = Some(match comment_run.take() {
                // Consecutive comments with only blanks and one line break between them.
                Some(r)
                    if text
                        .get(r.end..c.range.start)
                        .is_some_and(|g| g.trim().is_empty() && g.matches('\n').count() <= 1) =>
                {
                    r.start..c.range.end
                }
                Some(r) => {
                    out.push((r, true));
                    c.range.clone()
                }
                None => c.range.clone(),
            });
        }
    }
    if let Some(r) = comment_run {
        out.push((r, true));
    }
    out
}

/// The filter name under the cursor (a `use` target or the filter's own name) and its range.
pub fn name_at(text: &str, offset: usize) -> Option<(String, Range<usize>)> {
    let cls = dslctx::classify(text);
    let c = dslctx::token_at(&cls, offset)?;
    match &c.role {
        Role::Value { elem, attr }
            if (elem == "filterref" && attr == "filter")
                || (elem == "filter" && attr == "name") =>
        {
            let name = dslctx::word_text(&c.text);
            (!name.is_empty()).then(|| (name, c.range.clone()))
        }
        _ => None,
    }
}
