//! The nwf filter language (`*.nwf`): a concise text form with exactly the meaning of the XML.
//!
//! `parse` gives a syntax tree and syntax errors (never fails); `read_filter` lowers a file to
//! the same IR the XML front end produces, with the same diagnostics; `write_filter` writes the
//! IR back as canonical DSL text. The language is described in `docs/dsl.md`.

pub mod lexer;
mod parse;
pub mod syntax;

lalrpop_util::lalrpop_mod!(
    #[allow(missing_docs, clippy::all, clippy::pedantic, unused)]
    grammar,
    "/dsl/grammar.rs"
);

pub use parse::{parse, SyntaxError};
