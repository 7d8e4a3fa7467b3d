//! From text to a syntax tree and every syntax error: the parser never fails.
//!
//! Between the lexer and the LALR parser sits a small pass that makes error recovery work at
//! statement granularity: line breaks (and `;`) end statements only inside a `{ }` block and
//! outside `( )`/`[ ]`, the last statement of a block is ended before `}`, and braces are
//! balanced (a missing `}` is added at the end of the file, a stray one dropped). So a broken
//! statement is skipped to its line end, and the parser always reaches the end of the file.

use super::grammar::FileParser;
use super::lexer::{self, Tok};
use super::syntax::{Comment, SyntaxToken, SyntaxTree, Word};
use lalrpop_util::{ErrorRecovery, ParseError};
use std::ops::Range;

/// A syntax error: a DSL diagnostic code (E05xx), a message and a place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// The diagnostic code (`docs/diagnostics.md`).
    pub code: &'static str,
    /// One-line summary.
    pub message: String,
    /// Where.
    pub span: Range<usize>,
    /// What was expected there.
    pub label: String,
}

/// Builds a [`Word`] from a token's text (decoding strings).
pub(crate) fn word(s: &str, span: Range<usize>) -> Word {
    if s.starts_with('"') {
        Word {
            text: lexer::unquote(s).0,
            span,
            quoted: true,
        }
    } else {
        Word {
            text: s.to_string(),
            span,
            quoted: false,
        }
    }
}

type Triple<'s> = (usize, Tok<'s>, usize);

/// Parses a DSL text: the syntax tree (partial where the text is broken) and all syntax errors.
pub fn parse(text: &str) -> (SyntaxTree, Vec<SyntaxError>) {
    let mut errors = Vec::new();
    let mut tree = SyntaxTree::default();
    let toks = prepare(text, &mut tree, &mut errors);
    let mut recovered: Vec<ErrorRecovery<usize, Tok<'_>, ()>> = Vec::new();
    let result = FileParser::new().parse(&mut recovered, toks.into_iter().map(Ok::<_, ()>));
    for r in recovered {
        errors.push(convert(r.error, text));
    }
    match result {
        Ok(filters) => tree.filters = filters,
        // Recovery at the top level accepts any token and the end, so this is not expected;
        // it is still reported rather than trusted.
        Err(e) => errors.push(convert(e, text)),
    }
    errors.sort_by_key(|e| (e.span.start, e.span.end));
    (tree, errors)
}

/// Lexes, records comments, tokens and lexical errors, and shapes the token stream for the
/// parser (see the module documentation).
fn prepare<'s>(
    text: &'s str,
    tree: &mut SyntaxTree,
    errors: &mut Vec<SyntaxError>,
) -> Vec<Triple<'s>> {
    let toks = lexer::tokens(text);
    let mut out: Vec<Triple<'s>> = Vec::with_capacity(toks.len() + 16);
    tree.tokens.reserve(toks.len());
    let mut braces = 0usize;
    let mut parens = 0usize;
    let mut line_has_code = false;
    let mut bad: Option<Range<usize>> = None;
    let flush_bad = |bad: &mut Option<Range<usize>>, errors: &mut Vec<SyntaxError>| {
        if let Some(r) = bad.take() {
            errors.push(SyntaxError {
                code: "E0502",
                message: format!("unexpected character `{}`", &text[r.clone()]),
                span: r,
                label: "not part of any token".into(),
            });
        }
    };
    for t in toks {
        let (start, end) = t.span;
        tree.tokens.push(SyntaxToken {
            kind: t.kind(),
            span: start..end,
        });
        let Some(tok) = t.tok else {
            // Neighbouring bad characters make one error.
            bad = Some(match bad.take() {
                Some(r) if r.end == start => r.start..end,
                other => {
                    flush_bad(&mut other.clone(), errors);
                    start..end
                }
            });
            continue;
        };
        flush_bad(&mut bad, errors);
        let last_is_break = matches!(out.last(), None | Some((_, Tok::Newline | Tok::LBrace, _)));
        match tok {
            Tok::Comment(c) => {
                let body = &c[1..];
                let body = body.strip_prefix(' ').unwrap_or(body);
                tree.comments.push(Comment {
                    text: body.trim_end().to_string(),
                    span: start..end,
                    trailing: line_has_code,
                });
            }
            Tok::Newline | Tok::Semi => {
                if tok == Tok::Newline {
                    line_has_code = false;
                }
                if braces > 0 && parens == 0 && !last_is_break {
                    out.push((start, Tok::Newline, end));
                }
            }
            Tok::LBrace => {
                line_has_code = true;
                braces += 1;
                parens = 0;
                out.push((start, tok, end));
            }
            Tok::RBrace => {
                line_has_code = true;
                parens = 0;
                if braces == 0 {
                    errors.push(SyntaxError {
                        code: "E0501",
                        message: "unmatched `}`".into(),
                        span: start..end,
                        label: "no block is open here".into(),
                    });
                    continue;
                }
                if !last_is_break {
                    out.push((start, Tok::Newline, start));
                }
                braces -= 1;
                out.push((start, tok, end));
            }
            Tok::LParen | Tok::LBracket => {
                line_has_code = true;
                parens += 1;
                out.push((start, tok, end));
            }
            Tok::RParen | Tok::RBracket => {
                line_has_code = true;
                parens = parens.saturating_sub(1);
                out.push((start, tok, end));
            }
            Tok::Unterminated(s) => {
                line_has_code = true;
                errors.push(SyntaxError {
                    code: "E0503",
                    message: "unterminated string".into(),
                    span: start..end,
                    label: "the closing `\"` is missing".into(),
                });
                out.push((start, Tok::Str(s), end));
            }
            Tok::Str(s) => {
                line_has_code = true;
                for at in lexer::unquote(s).1 {
                    let e = (start + at + 1).min(end);
                    let e = e + text[e..]
                        .chars()
                        .next()
                        .map_or(0, |c| c.len_utf8())
                        .min(end - e);
                    errors.push(SyntaxError {
                        code: "E0503",
                        message: "unknown escape in a string".into(),
                        span: start + at..e,
                        label: "expected \\\", \\\\, \\n, \\t or \\r".into(),
                    });
                }
                out.push((start, tok, end));
            }
            _ => {
                line_has_code = true;
                out.push((start, tok, end));
            }
        }
    }
    flush_bad(&mut bad, errors);
    if braces > 0 {
        let at = text.len();
        errors.push(SyntaxError {
            code: "E0501",
            message: "missing `}` at the end of the file".into(),
            span: at..at,
            label: "the filter's block is not closed".into(),
        });
        for _ in 0..braces {
            if !matches!(out.last(), Some((_, Tok::Newline | Tok::LBrace, _))) {
                out.push((at, Tok::Newline, at));
            }
            out.push((at, Tok::RBrace, at));
        }
    }
    out
}

fn convert(e: ParseError<usize, Tok<'_>, ()>, text: &str) -> SyntaxError {
    match e {
        ParseError::UnrecognizedToken {
            token: (l, tok, r),
            expected,
        } => {
            let found = match tok {
                // A line break the parser did not expect: point at the end of the line.
                Tok::Newline => "the end of the line".to_string(),
                Tok::RBrace if l == r && l == text.len() => "the end of the file".to_string(),
                Tok::RBrace if l == r => "`}`".to_string(),
                t => t.describe(),
            };
            SyntaxError {
                code: "E0501",
                message: format!("unexpected {found}"),
                span: l..r,
                label: expected_list(&expected),
            }
        }
        ParseError::UnrecognizedEof { location, expected } => SyntaxError {
            code: "E0501",
            message: "unexpected end of the file".into(),
            span: location..location,
            label: expected_list(&expected),
        },
        ParseError::ExtraToken { token: (l, t, r) } => SyntaxError {
            code: "E0501",
            message: format!("unexpected {}", t.describe()),
            span: l..r,
            label: "expected the end of the file".into(),
        },
        ParseError::InvalidToken { location } => SyntaxError {
            code: "E0502",
            message: "invalid token".into(),
            span: location..location,
            label: String::new(),
        },
        ParseError::User { .. } => SyntaxError {
            code: "E0501",
            message: "syntax error".into(),
            span: 0..0,
            label: String::new(),
        },
    }
}

/// "expected a, b or c" from the parser's terminal names (quoted in the grammar).
fn expected_list(expected: &[String]) -> String {
    let mut names: Vec<String> = Vec::new();
    for e in expected {
        let bare = e.trim_matches('"');
        let n = match bare {
            "name" => "a name".to_string(),
            "number" | "dotted" | "colon" | "variable" | "string" => "a value".to_string(),
            "end of line" => "the end of the line".to_string(),
            other => format!("`{other}`"),
        };
        if !names.contains(&n) {
            names.push(n);
        }
    }
    match names.len() {
        0 => String::new(),
        1 => format!("expected {}", names[0]),
        n => format!("expected {} or {}", names[..n - 1].join(", "), names[n - 1]),
    }
}
