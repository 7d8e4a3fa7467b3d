//! The nwf filter language (`*.nwf`): a concise text form with exactly the meaning of the XML.
//!
//! `parse` gives a syntax tree and syntax errors (never fails); `read_filter` lowers a file to
//! the same IR the XML front end produces, with the same diagnostics; `write_filter` writes the
//! IR back as canonical DSL text. The language is described in `docs/dsl.md`.

pub mod lexer;
mod lower;
mod parse;
pub mod syntax;
mod write;

lalrpop_util::lalrpop_mod!(
    #[allow(missing_docs, clippy::all, clippy::pedantic, unused)]
    grammar,
    "/dsl/grammar.rs"
);

pub use parse::{parse, SyntaxError};
pub use write::write_filter;

use crate::diag::{Diagnostic, Diagnostics};
use crate::ir::Filter;
use crate::source::{FileId, SourceMap, Span};

/// Reads one DSL filter file into the IR, mirroring [`crate::xml::read_filter`]: every syntax
/// error and every problem of the filter goes to `diags`, and the filter is returned whenever
/// a `filter` block could be read (even with errors inside it).
pub fn read_filter(sources: &SourceMap, file: FileId, diags: &mut Diagnostics) -> Option<Filter> {
    let text = &sources.get(file).text;
    if text.trim().is_empty() {
        diags.push(
            Diagnostic::error("E0002", "the file is empty")
                .at(Span::new(file, 0..text.len()), "expected a `filter` block")
                .with_help("a filter file holds one `filter NAME { ... }`"),
        );
        return None;
    }
    let (tree, errors) = parse(text);
    lower::report_syntax(file, &errors, diags);
    lower::lower_tree(text, &tree, file, !errors.is_empty(), diags)
}
