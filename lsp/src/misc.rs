//! Folding ranges, formatting, semantic tokens, code actions and inlay hints.

use crate::analysis::{self, Analysis, Doc, Syntax};
use crate::context::{self, ValueKind};
use crate::convert;
use crate::place::{self, Placed};
use crate::scan;
use nwf_compiler::ir::Entry;
use nwf_compiler::lang::Layer;
use std::collections::HashMap;
use std::ops::Range;
use tower_lsp_server::ls_types::{
    CodeAction, CodeActionKind, CodeActionOrCommand, CreateFile, CreateFileOptions,
    DocumentChangeOperation, DocumentChanges, FoldingRange, FoldingRangeKind, InlayHint,
    InlayHintKind, InlayHintLabel, OneOf, OptionalVersionedTextDocumentIdentifier, Position,
    Range as LspRange, ResourceOp, SemanticToken, SemanticTokenType, SemanticTokensLegend,
    TextDocumentEdit, TextEdit, WorkspaceEdit,
};

/// Folding ranges: elements and comments that span several lines.
pub fn folding(a: &Analysis, doc: &Doc) -> Vec<FoldingRange> {
    let text = convert::text(a, doc);
    let mut out = Vec::new();
    let mut add = |r: Range<usize>, kind: Option<FoldingRangeKind>| {
        let start = doc.index.line_of(r.start) as u32;
        let end = doc.index.line_of(r.end.saturating_sub(1).max(r.start)) as u32;
        if end > start {
            out.push(FoldingRange {
                start_line: start,
                end_line: end,
                kind,
                ..Default::default()
            });
        }
    };
    if doc.syntax == Syntax::Dsl {
        for (r, comment) in crate::dslfeat::folds(text) {
            add(r, comment.then_some(FoldingRangeKind::Comment));
        }
    } else {
        let s = scan::scan(text);
        for e in 0..s.elements.len() {
            add(s.element_span(e), None);
        }
        for c in &s.comments {
            add(c.clone(), Some(FoldingRangeKind::Comment));
        }
    }
    out.sort_by_key(|f| (f.start_line, f.end_line));
    out
}

/// The edits that put a document in canonical form; `None` when it has errors or input libvirt
/// ignores (formatting would lose what the reader skipped).
pub fn format(a: &Analysis, doc: &Doc) -> Option<Vec<TextEdit>> {
    if doc.diagnostics.iter().any(|d| d.skips_input()) {
        return None;
    }
    let f = doc.filter.as_ref()?;
    let text = convert::text(a, doc);
    let new = analysis::write_filter(f, doc.syntax);
    if new == text {
        return Some(Vec::new());
    }
    Some(vec![TextEdit::new(
        convert::range(&doc.index, text, 0..text.len()),
        new,
    )])
}

/// Semantic token types, in legend order.
const TOKEN_TYPES: [SemanticTokenType; 8] = [
    SemanticTokenType::KEYWORD,
    SemanticTokenType::PROPERTY,
    SemanticTokenType::ENUM_MEMBER,
    SemanticTokenType::VARIABLE,
    SemanticTokenType::NAMESPACE,
    SemanticTokenType::COMMENT,
    SemanticTokenType::NUMBER,
    SemanticTokenType::STRING,
];

/// The legend announced at initialization.
pub fn legend() -> SemanticTokensLegend {
    SemanticTokensLegend {
        token_types: TOKEN_TYPES.to_vec(),
        token_modifiers: Vec::new(),
    }
}

/// Semantic tokens of a document: element names, attribute names, enumerated values,
/// variables, filter names, comments, numbers and other values. (For the DSL, its lexer will
/// give the tokens; XML documents get them from the tolerant scanner.)
pub fn semantic_tokens(a: &Analysis, doc: &Doc) -> Vec<SemanticToken> {
    let text = convert::text(a, doc);
    if doc.syntax == Syntax::Dsl {
        return encode_tokens(doc, text, crate::dslfeat::token_types(text));
    }
    let s = scan::scan(text);
    let mut raw: Vec<(Range<usize>, u32)> = Vec::new();
    for tag in &s.tags {
        if !tag.name.is_empty() {
            raw.push((tag.name_span.clone(), 0));
        }
        for at in &tag.attrs {
            raw.push((at.name_span.clone(), 1));
            let Some((v, r)) = &at.value else { continue };
            if v.is_empty() {
                continue;
            }
            let ty = value_token_type(&tag.name, &at.name, v);
            raw.push((r.clone(), ty));
        }
    }
    for c in &s.comments {
        raw.push((c.clone(), 5));
    }
    encode_tokens(doc, text, raw)
}

/// The semantic token type of a value of attribute `attr` of element `elem`.
pub fn value_token_type(elem: &str, attr: &str, v: &str) -> u32 {
    if v.starts_with('$') {
        return 3;
    }
    match context::value_kind(elem, attr) {
        Some(ValueKind::FilterRef | ValueKind::FilterDef) => 4,
        Some(ValueKind::ParamName) => 3,
        Some(ValueKind::Priority) => 6,
        Some(
            ValueKind::Action
            | ValueKind::Direction
            | ValueKind::Chain
            | ValueKind::Match
            | ValueKind::StateMatch,
        ) => 2,
        Some(ValueKind::Typed(spec)) => {
            if v.chars().all(|c| c.is_ascii_hexdigit() || c == 'x') {
                6
            } else if !context::enum_values(spec.ty).is_empty() {
                2
            } else {
                7
            }
        }
        Some(ValueKind::ParamValue) | None => 7,
    }
}

/// Encodes (range, type) pairs as LSP semantic tokens, splitting at line breaks (most
/// clients do not support multi-line tokens).
pub fn encode_tokens(
    doc: &Doc,
    text: &str,
    mut raw: Vec<(Range<usize>, u32)>,
) -> Vec<SemanticToken> {
    raw.sort_by_key(|(r, _)| r.start);
    let mut out = Vec::new();
    let (mut prev_line, mut prev_col) = (0u32, 0u32);
    for (r, ty) in raw {
        let mut start = r.start;
        loop {
            let line = doc.index.line_of(start);
            let lr = doc.index.line_range(text, line);
            let end = r.end.min(lr.end);
            if end > start {
                let (l, c) = doc.index.to_utf16(text, start);
                let len: u32 = text
                    .get(start..end)
                    .map_or(0, |t| t.chars().map(|ch| ch.len_utf16() as u32).sum());
                let delta_line = l.saturating_sub(prev_line);
                let delta_start = if delta_line == 0 {
                    c.saturating_sub(prev_col)
                } else {
                    c
                };
                out.push(SemanticToken {
                    delta_line,
                    delta_start,
                    length: len,
                    token_type: ty,
                    token_modifiers_bitset: 0,
                });
                (prev_line, prev_col) = (l, c);
            }
            if r.end <= lr.end || line + 1 >= doc.index.line_count() {
                break;
            }
            start = doc.index.line_range(text, line + 1).start;
        }
    }
    out
}

/// Code actions in a range: the checker's suggested replacements ("did you mean").
pub fn code_actions(a: &Analysis, doc: &Doc, range: LspRange) -> Vec<CodeActionOrCommand> {
    let text = convert::text(a, doc);
    let lsp_diags = convert::diagnostics(a, doc);
    let mut out = Vec::new();
    for (d, ld) in doc.diagnostics.iter().zip(lsp_diags) {
        let (Some(fix), Some(span)) = (&d.fix, d.span) else {
            continue;
        };
        if !overlaps(&ld.range, &range) {
            continue;
        }
        let edit = TextEdit::new(convert::range(&doc.index, text, span.range()), fix.clone());
        out.push(CodeActionOrCommand::CodeAction(CodeAction {
            title: format!("Replace with `{fix}`"),
            kind: Some(CodeActionKind::QUICKFIX),
            diagnostics: Some(vec![ld]),
            edit: Some(WorkspaceEdit {
                changes: Some(HashMap::from([(doc.uri.clone(), vec![edit])])),
                ..Default::default()
            }),
            is_preferred: Some(true),
            ..Default::default()
        }));
    }
    out.extend(convert_action(doc));
    out
}

/// "Convert to XML / to the filter language": a new file next to this one (same name, other
/// extension) with the filter in the other syntax. Offered when the document reads cleanly
/// (no errors, nothing libvirt ignores).
pub fn convert_action(doc: &Doc) -> Option<CodeActionOrCommand> {
    if doc.diagnostics.iter().any(|d| d.skips_input()) {
        return None;
    }
    let f = doc.filter.as_ref()?;
    let path = crate::uri::to_path(&doc.uri)?;
    let (target, ext, what) = match doc.syntax {
        Syntax::Xml => (Syntax::Dsl, "nwf", "the filter language (.nwf)"),
        Syntax::Dsl => (Syntax::Xml, "xml", "XML"),
    };
    let new_path = path.with_extension(ext);
    let new_uri = crate::uri::from_path(&new_path)?;
    let text = analysis::write_filter(f, target);
    Some(CodeActionOrCommand::CodeAction(CodeAction {
        title: format!(
            "Convert to {what}: {}",
            new_path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        ),
        kind: Some(CodeActionKind::REFACTOR_REWRITE),
        edit: Some(WorkspaceEdit {
            document_changes: Some(DocumentChanges::Operations(vec![
                DocumentChangeOperation::Op(ResourceOp::Create(CreateFile {
                    uri: new_uri.clone(),
                    options: Some(CreateFileOptions {
                        overwrite: Some(true),
                        ignore_if_exists: None,
                    }),
                    annotation_id: None,
                })),
                DocumentChangeOperation::Edit(TextDocumentEdit {
                    text_document: OptionalVersionedTextDocumentIdentifier {
                        uri: new_uri,
                        version: None,
                    },
                    edits: vec![OneOf::Left(TextEdit::new(LspRange::default(), text))],
                }),
            ])),
            ..Default::default()
        }),
        ..Default::default()
    }))
}

fn overlaps(a: &LspRange, b: &LspRange) -> bool {
    let key = |p: Position| (p.line, p.character);
    key(a.start) <= key(b.end) && key(b.start) <= key(a.end)
}

/// Inlay hints after each rule's start tag: evaluation position (in the program of the
/// configured binding, else within the filter) and effective priority.
pub fn inlay_hints(a: &Analysis, doc: &Doc, range: LspRange) -> Vec<InlayHint> {
    let Some(f) = &doc.filter else {
        return Vec::new();
    };
    let text = convert::text(a, doc);
    let s = scan::scan(text);
    let places = analysis::rule_places(f);
    let placement = a.placement();
    let mut out = Vec::new();
    for (e, place) in f.entries.iter().zip(places) {
        let (Entry::Rule(r), Some(p)) = (e, place) else {
            continue;
        };
        let start = r.span.start as usize;
        // XML: after the rule's start tag; DSL: at the end of the rule's statement.
        let at = match doc.syntax {
            Syntax::Dsl => r.span.end as usize,
            Syntax::Xml => s
                .tags
                .iter()
                .find(|t| t.span.start == start)
                .map_or(start, |t| t.span.end),
        };
        let (line, col) = doc.index.to_utf16(text, at);
        if line < range.start.line || line > range.end.line {
            continue;
        }
        let layer = match p.layer {
            Layer::Ethernet => "eth",
            Layer::Ip => "ip",
        };
        let per_filter = format!("{layer} #{}/{} in filter", p.position, p.of);
        let place = match placement.as_deref() {
            Some(Placed::Program(prog)) => match prog.rules.get(&r.span) {
                Some(places) => places
                    .iter()
                    .map(place::label)
                    .collect::<Vec<_>>()
                    .join(" · "),
                None => "not in program".to_string(),
            },
            _ => per_filter,
        };
        out.push(InlayHint {
            position: Position::new(line, col),
            label: InlayHintLabel::String(format!("{place} · priority {}", p.priority)),
            kind: Some(InlayHintKind::PARAMETER),
            text_edits: None,
            tooltip: None,
            padding_left: Some(true),
            padding_right: None,
            data: None,
        });
    }
    out
}
