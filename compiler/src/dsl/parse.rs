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
use crate::lang;
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
    /// Another place that explains the error (the `{` a missing `}` would close), if any.
    pub related: Option<(Range<usize>, String)>,
    /// A suggestion, if any.
    pub help: Option<String>,
}

impl SyntaxError {
    fn new(
        code: &'static str,
        message: impl Into<String>,
        span: Range<usize>,
        label: impl Into<String>,
    ) -> SyntaxError {
        SyntaxError {
            code,
            message: message.into(),
            span,
            label: label.into(),
            related: None,
            help: None,
        }
    }

    fn with_help(mut self, help: impl Into<String>) -> SyntaxError {
        self.help = Some(help.into());
        self
    }
}

/// Builds a [`Word`] from a token's text (decoding strings).
pub(crate) fn word(s: &str, span: Range<usize>) -> Word {
    if s.starts_with('"') {
        Word {
            text: lexer::unquote(s).0.into(),
            span,
            quoted: true,
        }
    } else {
        Word {
            text: s.into(),
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
    // XML pasted into a `.nwf` file: one error instead of one per tag.
    if let Some(e) = looks_like_xml(text) {
        return (tree, vec![e]);
    }
    let mut recovered: Vec<ErrorRecovery<usize, Tok<'_>, ()>> = Vec::new();
    let result = FileParser::new().parse(&mut recovered, toks.iter().copied().map(Ok::<_, ()>));
    for r in recovered {
        errors.push(convert(r.error, text, &toks));
    }
    match result {
        Ok(filters) => tree.filters = filters,
        // Recovery at the top level accepts any token and the end, so this is not expected;
        // it is still reported rather than trusted.
        Err(e) => errors.push(convert(e, text, &toks)),
    }
    errors.sort_by_key(|e| (e.span.start, e.span.end));
    (tree, errors)
}

/// E0501 for a file whose first non-blank character is `<`: XML in a `.nwf` file.
fn looks_like_xml(text: &str) -> Option<SyntaxError> {
    // The first line that is neither blank nor a `#` comment.
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') {
            start += line.len();
            continue;
        }
        start += line.len() - t.len();
        break;
    }
    if !text[start..].starts_with('<') {
        return None;
    }
    let end = text[start..].find('\n').map_or(text.len(), |n| start + n);
    let end = text[start..end].find('>').map_or(end, |n| start + n + 1);
    Some(
        SyntaxError::new(
            "E0501",
            "expected the filter language, found XML",
            start..end,
            "a `.nwf` file is read as the filter language",
        )
        .with_help(
            "this looks like XML; name the file .xml, or convert it to the filter language with `nwf convert --to dsl FILE.xml`",
        ),
    )
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
    // Where each open `{` is (for "missing `}`").
    let mut open: Vec<usize> = Vec::new();
    let mut parens = 0usize;
    let mut line_has_code = false;
    let mut bad: Option<Range<usize>> = None;
    let flush_bad = |bad: &mut Option<Range<usize>>, errors: &mut Vec<SyntaxError>| {
        if let Some(r) = bad.take() {
            errors.push(bad_characters(&text[r.clone()], r));
        }
    };
    for (i, t) in toks.iter().enumerate() {
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
                if !open.is_empty() && parens == 0 && !last_is_break {
                    out.push((start, Tok::Newline, end));
                }
            }
            Tok::LBrace => {
                line_has_code = true;
                open.push(start);
                parens = 0;
                out.push((start, tok, end));
            }
            Tok::RBrace => {
                line_has_code = true;
                parens = 0;
                if open.is_empty() {
                    errors.push(SyntaxError::new(
                        "E0501",
                        "unmatched `}`",
                        start..end,
                        "no block is open here",
                    ));
                    continue;
                }
                if !last_is_break {
                    out.push((start, Tok::Newline, start));
                }
                open.pop();
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
                // `use f(A = 1, )`: the grammar has no trailing comma; say so and go on.
                if let Some(&(cs, Tok::Comma, ce)) = out.last() {
                    errors.push(
                        SyntaxError::new(
                            "E0501",
                            format!("a trailing `,` before `{}`", tok.text()),
                            cs..ce,
                            format!(
                                "expected another value after `,`, or `{}` without the comma",
                                tok.text()
                            ),
                        )
                        .with_help("remove the comma"),
                    );
                    out.pop();
                }
                out.push((start, tok, end));
            }
            Tok::DotDot | Tok::Slash => {
                line_has_code = true;
                if separator(text, &toks, i, tok, errors) {
                    out.push((start, tok, end));
                }
            }
            Tok::Comma if parens == 0 && !open.is_empty() => {
                line_has_code = true;
                if separator(text, &toks, i, tok, errors) {
                    out.push((start, tok, end));
                }
            }
            // `srcipaddr: 10.0.0.1`, `use f(IP: 10.0.0.1)`: a colon typed after a name.
            Tok::Other(w) if w.ends_with(':') && lexer::is_plain_ident(&w[..w.len() - 1]) => {
                line_has_code = true;
                let name = &w[..w.len() - 1];
                let colon = end - 1;
                let (label, help) = if parens > 0 {
                    (
                        "a parameter and its value are joined by `=`",
                        format!("write `{name} = ...`"),
                    )
                } else {
                    (
                        "an attribute and its value are separated by a blank",
                        format!("write `{name} VALUE`"),
                    )
                };
                errors.push(
                    SyntaxError::new("E0501", "unexpected `:`", colon..end, label).with_help(help),
                );
                out.push((start, Tok::Ident(name), colon));
                if parens > 0 {
                    out.push((colon, Tok::Eq, end));
                }
            }
            Tok::Unterminated(s) => {
                line_has_code = true;
                errors.push(SyntaxError::new(
                    "E0503",
                    "unterminated string",
                    start..end,
                    "the closing `\"` is missing",
                ));
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
                    errors.push(SyntaxError::new(
                        "E0503",
                        "unknown escape in a string",
                        start + at..e,
                        "expected \\\", \\\\, \\n, \\t or \\r",
                    ));
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
    if let Some(&first_open) = open.first() {
        let at = text.len();
        let mut e = SyntaxError::new(
            "E0501",
            "missing `}` at the end of the file",
            at..at,
            "the filter's block is not closed",
        );
        let innermost = *open.last().unwrap_or(&first_open);
        e.related = Some((innermost..innermost + 1, "this `{` is still open".into()));
        errors.push(e);
        for _ in 0..open.len() {
            if !matches!(out.last(), Some((_, Tok::Newline | Tok::LBrace, _))) {
                out.push((at, Tok::Newline, at));
            }
            out.push((at, Tok::RBrace, at));
        }
    }
    out
}

/// Whether a token can be (part of) a value.
fn is_value(t: Option<Tok<'_>>) -> bool {
    matches!(
        t,
        Some(
            Tok::Ident(_)
                | Tok::Number(_)
                | Tok::Dotted(_)
                | Tok::Colon(_)
                | Tok::Other(_)
                | Tok::Var(_)
                | Tok::Str(_)
                | Tok::Unterminated(_)
        )
    )
}

/// Checks a separator inside a value (`..`, `/`, or `,` in a rule): blanks around it (E0501,
/// the value is still read as one) or nothing after it (E0501; returns false: the separator is
/// dropped so that the rest of the rule is read normally).
fn separator(
    text: &str,
    toks: &[lexer::Token<'_>],
    i: usize,
    tok: Tok<'_>,
    errors: &mut Vec<SyntaxError>,
) -> bool {
    let (start, end) = toks[i].span;
    let prev = i.checked_sub(1).map(|p| toks[p]);
    let next = toks.get(i + 1).copied();
    if !prev.is_some_and(|p| is_value(p.tok)) {
        return true; // no value before it: the parser says what is wrong
    }
    let prev = prev.expect("checked");
    let blank_before = prev.span.1 != start;
    let blank_after = next.is_some_and(|n| n.span.0 != end);
    let next_value = next.is_some_and(|n| is_value(n.tok));
    // `80.. state NEW`, `10.0.0.0/ dstipaddr ...`: a name after a blank starts the next field.
    let next_is_name = next.is_some_and(|n| matches!(n.tok, Some(Tok::Ident(_))));
    let missing = !next_value || (blank_after && next_is_name && tok != Tok::Comma);
    let sep = tok.text();
    if missing {
        let (message, label) = match tok {
            Tok::DotDot => (
                "the range end is missing after `..`",
                "expected the end of the range right after `..`",
            ),
            Tok::Slash => (
                "the mask is missing after `/`",
                "expected a mask or prefix length right after `/`",
            ),
            _ => (
                "a value is missing after `,`",
                "expected another value of the list right after `,`",
            ),
        };
        errors.push(SyntaxError::new("E0501", message, start..end, label));
        return false;
    }
    if blank_before && matches!(prev.tok, Some(Tok::Ident(_))) && tok != Tok::Comma {
        // `dstportstart ..90`: the start is missing, which the parser reports.
        return true;
    }
    if blank_before || blank_after {
        let next = next.expect("a value follows");
        let joined = format!(
            "{}{sep}{}",
            &text[prev.span.0..prev.span.1],
            &text[next.span.0..next.span.1]
        );
        errors.push(
            SyntaxError::new(
                "E0501",
                format!("a blank around `{sep}` inside a value"),
                prev.span.1..next.span.0,
                "a blank ends a value",
            )
            .with_help(format!("write the value without blanks: `{joined}`")),
        );
    }
    true
}

/// E0502 for characters that start no token; invisible and non-ASCII ones are named by code
/// point (a no-break space looks like a blank).
fn bad_characters(s: &str, span: Range<usize>) -> SyntaxError {
    let mut chars = s.chars();
    let first = chars.next().unwrap_or(' ');
    let one = chars.next().is_none();
    let shown = |c: char| -> String {
        if c.is_ascii_graphic() {
            c.to_string()
        } else {
            match char_name(c) {
                Some(n) => format!("U+{:04X} {n}", u32::from(c)),
                None => format!("U+{:04X}", u32::from(c)),
            }
        }
    };
    let message = if one {
        if first.is_ascii_graphic() {
            format!("unexpected character `{first}`")
        } else if first.is_whitespace() || first.is_control() || char_name(first).is_some() {
            format!("unexpected character {}", shown(first))
        } else {
            format!("unexpected character `{first}` ({})", shown(first))
        }
    } else if s.chars().all(|c| c.is_ascii_graphic()) {
        format!("unexpected characters `{s}`")
    } else {
        let list: Vec<String> = s.chars().map(shown).collect();
        format!("unexpected characters {}", list.join(", "))
    };
    let label = match first {
        '\u{a0}' | '\u{2000}'..='\u{200b}' | '\u{202f}' | '\u{3000}' | '\u{feff}' => {
            "not a blank here: use a plain space"
        }
        '\u{2018}' | '\u{2019}' | '\u{201c}' | '\u{201d}' => {
            "a typographic quote: strings use a plain `\"`"
        }
        _ => "not part of any token",
    };
    SyntaxError::new("E0502", message, span, label)
}

/// Names of characters that are easy to paste by mistake.
fn char_name(c: char) -> Option<&'static str> {
    Some(match c {
        '\t' => "CHARACTER TABULATION",
        '\u{a0}' => "NO-BREAK SPACE",
        '\u{ad}' => "SOFT HYPHEN",
        '\u{2002}' => "EN SPACE",
        '\u{2003}' => "EM SPACE",
        '\u{2009}' => "THIN SPACE",
        '\u{200b}' => "ZERO WIDTH SPACE",
        '\u{200c}' => "ZERO WIDTH NON-JOINER",
        '\u{200d}' => "ZERO WIDTH JOINER",
        '\u{2013}' => "EN DASH",
        '\u{2014}' => "EM DASH",
        '\u{2018}' => "LEFT SINGLE QUOTATION MARK",
        '\u{2019}' => "RIGHT SINGLE QUOTATION MARK",
        '\u{201c}' => "LEFT DOUBLE QUOTATION MARK",
        '\u{201d}' => "RIGHT DOUBLE QUOTATION MARK",
        '\u{2026}' => "HORIZONTAL ELLIPSIS",
        '\u{202f}' => "NARROW NO-BREAK SPACE",
        '\u{3000}' => "IDEOGRAPHIC SPACE",
        '\u{feff}' => "ZERO WIDTH NO-BREAK SPACE",
        _ => return None,
    })
}

fn convert(e: ParseError<usize, Tok<'_>, ()>, text: &str, toks: &[Triple<'_>]) -> SyntaxError {
    match e {
        ParseError::UnrecognizedToken {
            token: (l, tok, r),
            expected,
        } => {
            if let Some(better) = in_context(toks, l, tok, text) {
                return better;
            }
            let (found, span) = match tok {
                // A line break the parser did not expect: point at the end of the line.
                Tok::Newline => ("end of the line".to_string(), l..l),
                Tok::RBrace if l == r && l == text.len() => ("end of the file".to_string(), l..r),
                Tok::RBrace if l == r => ("`}`".to_string(), l..r),
                t => (t.describe(), l..r),
            };
            let mut e = SyntaxError::new(
                "E0501",
                format!("unexpected {found}"),
                span,
                expected_list(&expected),
            );
            let wants_name = expected.iter().any(|x| x == "\"name\"");
            if wants_name && !tok.text().is_empty() && tok.kind() == lexer::TokenKind::Keyword {
                let k = tok.text();
                e = e.with_help(format!(
                    "`{k}` is a keyword; to use it as a name, write it as a string: `\"{k}\"`"
                ));
            }
            e
        }
        ParseError::UnrecognizedEof { location, expected } => SyntaxError::new(
            "E0501",
            "unexpected end of the file",
            location..location,
            expected_list(&expected),
        ),
        ParseError::ExtraToken { token: (l, t, r) } => SyntaxError::new(
            "E0501",
            format!("unexpected {}", t.describe()),
            l..r,
            "expected the end of the file",
        ),
        ParseError::InvalidToken { location } => {
            SyntaxError::new("E0502", "invalid token", location..location, "")
        }
        ParseError::User { .. } => SyntaxError::new("E0501", "syntax error", 0..0, ""),
    }
}

/// A better message for common mistakes, from the statement around an unexpected token: a
/// rule without its direction or its action, and a list written with blanks.
fn in_context(toks: &[Triple<'_>], at: usize, tok: Tok<'_>, text: &str) -> Option<SyntaxError> {
    // The unexpected token's index (the parser sees exactly these tokens, in order).
    let j = toks.partition_point(|t| t.0 < at);
    let j = (j..toks.len())
        .find(|&k| toks[k].0 == at && toks[k].1 == tok)
        .unwrap_or(j);
    // The statement's first token: after the previous line break or `{`.
    let s = toks[..j.min(toks.len())]
        .iter()
        .rposition(|t| matches!(t.1, Tok::Newline | Tok::LBrace))
        .map(|p| p + 1)?;
    if !matches!(toks[s - 1].1, Tok::Newline | Tok::LBrace) || s >= j {
        return None;
    }
    let name = |k: usize| match toks.get(k) {
        Some(&(_, Tok::Ident(n), _)) => Some(n),
        _ => None,
    };
    let is_attr = |n: &str| lang::PROTOCOLS.iter().any(|p| p.attr(n).is_some());
    let is_in = |n: &str, table: &[(&str, &str)]| table.iter().any(|(w, _)| *w == n);
    let directions: Vec<(&str, &str)> = lang::DIRECTIONS.iter().map(|e| (e.0, e.2)).collect();
    let actions: Vec<(&str, &str)> = lang::ACTIONS.iter().map(|e| (e.0, e.2)).collect();
    let span = |k: usize| toks[k].0..toks[k].2;
    if let Some(first) = name(s) {
        if is_in(first, &actions) && !is_in(first, &directions) {
            return Some(SyntaxError::new(
                "E0501",
                format!("`{first}` is an action; a rule starts with a direction: in, out or inout"),
                span(s),
                "the direction is missing before the action",
            ));
        }
        if is_in(first, &directions) {
            if let Some(second) = name(s + 1) {
                if !is_in(second, &actions) && lang::protocol(second).is_some() {
                    return Some(SyntaxError::new(
                        "E0501",
                        format!("`{second}` is not an action; expected accept, drop, reject, return or continue"),
                        span(s + 1),
                        "the action is missing before the protocol",
                    ));
                }
            }
        }
    }
    // `state NEW ESTABLISHED`: a value, then a word that is no attribute, then the line ends.
    if matches!(tok, Tok::Newline | Tok::RBrace) && j >= s + 5 {
        if let Some(n) = name(j - 1) {
            // Only for attributes that take a list (`state`, `flags`, `ipsetflags`).
            let before_value = match toks[j - 3].1 {
                Tok::Ident(a) => lang::PROTOCOLS.iter().any(|p| {
                    p.attr(a).is_some_and(|s| {
                        matches!(
                            s.ty,
                            lang::ValueType::States
                                | lang::ValueType::TcpFlags
                                | lang::ValueType::IpsetFlags
                        )
                    })
                }),
                t => matches!(
                    t,
                    Tok::EqEq | Tok::NotEq | Tok::Comma | Tok::Slash | Tok::DotDot
                ),
            };
            if !is_attr(n) && is_value(Some(toks[j - 2].1)) && before_value {
                let prev = &text[toks[j - 2].0..toks[j - 2].2];
                return Some(
                    SyntaxError::new(
                        "E0501",
                        format!("unexpected `{n}`"),
                        span(j - 1),
                        "not an attribute: a blank ends the value before it",
                    )
                    .with_help(format!(
                        "separate the values of a list with `,` and no blank: `{prev},{n}`"
                    )),
                );
            }
        }
    }
    None
}

/// "expected a, b or c" from the parser's terminal names (quoted in the grammar).
fn expected_list(expected: &[String]) -> String {
    let mut names: Vec<String> = Vec::new();
    for e in expected {
        let bare = e.trim_matches('"');
        let n = match bare {
            "name" => "a name".to_string(),
            "number" | "dotted" | "colon" | "other" | "variable" | "string" => {
                "a value".to_string()
            }
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
