//! Conversions between compiler spans and diagnostics and their LSP forms (UTF-16 positions).

use crate::analysis::{Analysis, Doc};
use nwf_compiler::diag::{self, Severity};
use nwf_compiler::position::LineIndex;
use nwf_compiler::source::{FileId, Span};
use tower_lsp_server::ls_types::{self as lsp, NumberOrString, Position, Range};

/// The LSP range of a byte range of `text`.
pub fn range(ix: &LineIndex, text: &str, r: std::ops::Range<usize>) -> Range {
    let (sl, sc) = ix.to_utf16(text, r.start);
    let (el, ec) = ix.to_utf16(text, r.end);
    Range::new(Position::new(sl, sc), Position::new(el, ec))
}

/// The byte offset of an LSP position in an open document.
pub fn offset(a: &Analysis, doc: &Doc, p: Position) -> usize {
    let text = &a.lib.sources.get(doc.file).text;
    doc.index.from_utf16(text, p.line, p.character)
}

/// The text of an open document.
pub fn text<'a>(a: &'a Analysis, doc: &Doc) -> &'a str {
    &a.lib.sources.get(doc.file).text
}

/// The LSP range of a span in any file of the analysis.
pub fn span_range(a: &Analysis, span: Span) -> Range {
    let text = &a.lib.sources.get(span.file).text;
    match a.docs.values().find(|d| d.file == span.file) {
        Some(d) => range(&d.index, text, span.range()),
        None => range(&LineIndex::new(text), text, span.range()),
    }
}

/// The LSP location of a span, if its file has a URI.
pub fn location(a: &Analysis, span: Span) -> Option<lsp::Location> {
    Some(lsp::Location::new(
        crate::uri::of_file(a, span.file)?,
        span_range(a, span),
    ))
}

/// The open document of a URI.
pub fn doc<'a>(a: &'a Analysis, uri: &lsp::Uri) -> Option<&'a Doc> {
    a.docs.get(uri.as_str())
}

/// The file of a URI (open or on disk).
pub fn file_of(a: &Analysis, uri: &lsp::Uri) -> Option<FileId> {
    if let Some(d) = doc(a, uri) {
        return Some(d.file);
    }
    a.uris
        .iter()
        .find(|(_, u)| u.as_str() == uri.as_str())
        .map(|(f, _)| *f)
}

/// The LSP diagnostics of an open document.
pub fn diagnostics(a: &Analysis, doc: &Doc) -> Vec<lsp::Diagnostic> {
    doc.diagnostics
        .iter()
        .map(|d| diagnostic(a, doc, d))
        .collect()
}

fn diagnostic(a: &Analysis, doc: &Doc, d: &diag::Diagnostic) -> lsp::Diagnostic {
    let text = text(a, doc);
    let r = d
        .span
        .map_or_else(Range::default, |s| range(&doc.index, text, s.range()));
    let mut message = d.message.clone();
    if !d.label.is_empty() {
        message.push_str(&format!("\n{}", d.label));
    }
    for n in &d.notes {
        message.push_str(&format!("\nnote: {n}"));
    }
    if let Some(h) = &d.help {
        message.push_str(&format!("\nhelp: {h}"));
    }
    let related: Vec<lsp::DiagnosticRelatedInformation> = d
        .related
        .iter()
        .filter_map(|r| {
            Some(lsp::DiagnosticRelatedInformation {
                location: location(a, r.span)?,
                message: r.message.clone(),
            })
        })
        .collect();
    lsp::Diagnostic {
        range: r,
        severity: Some(match d.severity {
            Severity::Error => lsp::DiagnosticSeverity::ERROR,
            Severity::Warning => lsp::DiagnosticSeverity::WARNING,
            Severity::Note => lsp::DiagnosticSeverity::INFORMATION,
        }),
        code: Some(NumberOrString::String(d.code.to_string())),
        source: Some("nwf".into()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        // The fix travels with the diagnostic so code actions can offer it from what the
        // client sends back, without recomputing.
        data: d.fix.as_ref().map(|f| serde_json::json!({ "fix": f })),
        ..Default::default()
    }
}
