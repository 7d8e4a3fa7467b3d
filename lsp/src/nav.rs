//! Navigation across files: definitions, references, rename, document and workspace symbols.

use crate::analysis::{self, Analysis, Doc, Syntax};
use crate::context::{self, Ctx, ValueKind};
use crate::convert;
use crate::scan;
use nwf_compiler::ir::{Entry, Filter};
use nwf_compiler::source::{Origin, Span};
use std::collections::HashMap;
use std::ops::Range;
use tower_lsp_server::ls_types::{
    DocumentSymbol, Location, Position, SymbolKind, TextEdit, Uri, WorkspaceEdit, WorkspaceSymbol,
};

/// The filter name under the cursor (in a filterref or a filter's `name`) and its range.
pub fn name_at(a: &Analysis, doc: &Doc, pos: Position) -> Option<(String, Range<usize>)> {
    let text = convert::text(a, doc);
    let offset = convert::offset(a, doc, pos);
    if doc.syntax == Syntax::Dsl {
        return crate::dslfeat::name_at(text, offset);
    }
    let scan = scan::scan(text);
    match context::at(&scan, offset) {
        Ctx::AttrValue {
            tag, attr, range, ..
        } => match context::value_kind(&tag.name, &attr.name)? {
            ValueKind::FilterRef | ValueKind::FilterDef => {
                let (v, _) = attr.value.as_ref()?;
                (!v.is_empty()).then(|| (v.clone(), range))
            }
            _ => None,
        },
        _ => None,
    }
}

/// The definition of the filter named under the cursor.
pub fn definition(a: &Analysis, doc: &Doc, pos: Position) -> Option<Location> {
    let (name, _) = name_at(a, doc, pos)?;
    let l = a.lib.get(&name)?;
    convert::location(a, l.filter.name_span)
}

/// Every filter visible: the library's, open documents' and disk files' (a second definition
/// of a name is not in the library but is still a definition with references to show).
fn all_filters(a: &Analysis) -> Vec<&Filter> {
    let mut out: Vec<&Filter> = a.lib.iter().map(|l| &l.filter).collect();
    out.extend(&a.shadowed);
    for d in a.docs.values() {
        if let Some(f) = &d.filter {
            if !out.iter().any(|g| g.file == f.file) {
                out.push(f);
            }
        }
    }
    out
}

/// Spans of every filterref to `name`, and of its definitions.
fn occurrences(a: &Analysis, name: &str) -> (Vec<Span>, Vec<Span>) {
    let mut refs = Vec::new();
    let mut defs = Vec::new();
    for f in all_filters(a) {
        if f.name == name {
            defs.push(f.name_span);
        }
        for e in &f.entries {
            if let Entry::Ref(r) = e {
                if r.filter == name {
                    refs.push(r.name_span);
                }
            }
        }
    }
    (refs, defs)
}

/// References to the filter named under the cursor.
pub fn references(a: &Analysis, doc: &Doc, pos: Position, declaration: bool) -> Vec<Location> {
    let Some((name, _)) = name_at(a, doc, pos) else {
        return Vec::new();
    };
    let (refs, defs) = occurrences(a, &name);
    let mut spans = refs;
    if declaration {
        spans.extend(defs);
    }
    spans.sort_by_key(|s| (s.file, s.start));
    spans
        .into_iter()
        .filter_map(|s| convert::location(a, s))
        .collect()
}

fn is_stdlib_file(a: &Analysis, s: Span) -> bool {
    matches!(a.lib.sources.get(s.file).origin, Origin::Stdlib(_))
}

/// The range to rename, if the name under the cursor can be renamed: standard filters are
/// read-only, so a filter only the standard library defines cannot.
pub fn prepare_rename(
    a: &Analysis,
    doc: &Doc,
    pos: Position,
) -> Result<(String, Range<usize>), String> {
    let (name, range) = name_at(a, doc, pos).ok_or("no filter name here")?;
    let (_, defs) = occurrences(a, &name);
    if defs.is_empty() {
        return Err(format!("no definition of `{name}` in the workspace"));
    }
    if defs.iter().all(|s| is_stdlib_file(a, *s)) {
        return Err(format!("`{name}` is a standard filter (read-only)"));
    }
    Ok((name, range))
}

/// Whether a new filter name is acceptable (libvirt's rule: no quotes, angle brackets,
/// ampersands or whitespace; not empty).
fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && !n
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '\'' | '"' | '<' | '>' | '&' | '/'))
}

/// The edits renaming the filter under the cursor everywhere outside the standard library.
pub fn rename(
    a: &Analysis,
    doc: &Doc,
    pos: Position,
    new_name: &str,
) -> Result<WorkspaceEdit, String> {
    let (name, _) = prepare_rename(a, doc, pos)?;
    if !valid_name(new_name) {
        return Err(format!("`{new_name}` is not a valid filter name"));
    }
    let (refs, defs) = occurrences(a, &name);
    let mut changes: HashMap<Uri, Vec<TextEdit>> = HashMap::new();
    for s in refs.into_iter().chain(defs) {
        if is_stdlib_file(a, s) {
            continue;
        }
        let in_dsl = analysis::syntax_of(&a.lib.sources.get(s.file).name) == Syntax::Dsl;
        let text = if in_dsl && !nwf_compiler::dsl::lexer::is_plain_ident(new_name) {
            nwf_compiler::dsl::lexer::quote(new_name)
        } else {
            new_name.to_string()
        };
        if let Some(loc) = convert::location(a, s) {
            changes
                .entry(loc.uri)
                .or_default()
                .push(TextEdit::new(loc.range, text));
        }
    }
    Ok(WorkspaceEdit {
        changes: Some(changes),
        ..Default::default()
    })
}

/// The outline of an open document: its filter, with rules and filterrefs inside.
#[allow(deprecated)] // `DocumentSymbol::deprecated` must still be written.
pub fn document_symbols(a: &Analysis, doc: &Doc) -> Vec<DocumentSymbol> {
    let Some(f) = &doc.filter else {
        return Vec::new();
    };
    let text = convert::text(a, doc);
    let r = |s: Span| convert::range(&doc.index, text, s.range());
    let places = analysis::rule_places(f);
    let mut children = Vec::new();
    for (e, place) in f.entries.iter().zip(places) {
        let (name, detail, kind, span, sel) = match e {
            Entry::Rule(rule) => {
                let proto = rule.matches.as_ref().map_or("all frames", |m| m.proto.name);
                let action = format!("{:?}", rule.action).to_lowercase();
                let dir = format!("{:?}", rule.direction).to_lowercase();
                let detail =
                    place.map(|p| format!("priority {} · #{} of {}", p.priority, p.position, p.of));
                (
                    format!("{action} {dir} {proto}"),
                    detail,
                    SymbolKind::EVENT,
                    rule.span,
                    rule.span,
                )
            }
            Entry::Ref(fr) => (
                format!("filterref {}", fr.filter),
                None,
                SymbolKind::MODULE,
                fr.span,
                fr.name_span,
            ),
        };
        children.push(DocumentSymbol {
            name,
            detail,
            kind,
            tags: None,
            deprecated: None,
            range: r(span),
            selection_range: r(sel),
            children: None,
        });
    }
    let whole = Span::new(doc.file, 0..text.len());
    vec![DocumentSymbol {
        name: f.name.clone(),
        detail: Some(format!("chain {} · priority {}", f.chain, f.priority)),
        kind: SymbolKind::CLASS,
        tags: None,
        deprecated: None,
        range: r(whole),
        selection_range: r(f.name_span),
        children: Some(children),
    }]
}

/// Filters whose name contains the query (case-insensitive), at most 200.
pub fn workspace_symbols(a: &Analysis, query: &str) -> Vec<WorkspaceSymbol> {
    let q = query.to_lowercase();
    let mut out = Vec::new();
    for f in all_filters(a) {
        if !f.name.to_lowercase().contains(&q) {
            continue;
        }
        let Some(loc) = convert::location(a, f.name_span) else {
            continue;
        };
        out.push(WorkspaceSymbol {
            name: f.name.clone(),
            kind: SymbolKind::CLASS,
            tags: None,
            container_name: Some(a.lib.sources.get(f.file).name.clone()),
            location: tower_lsp_server::ls_types::OneOf::Left(loc),
            data: None,
        });
        if out.len() >= 200 {
            break;
        }
    }
    out.sort_by(|x, y| x.name.cmp(&y.name));
    out
}
