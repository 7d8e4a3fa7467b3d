//! What each token of a `.nwf` document is, from the DSL's lexer: the role of every word in its
//! statement (direction, action, protocol, field, value of which attribute, filter name, ...).
//!
//! Roles name the XML element and attribute a word stands for (`in` is the `direction` of a
//! `rule`), so hover, completion and semantic tokens share one description of values with the
//! XML side. Works on broken text: it only needs the tokens.

use nwf_compiler::dsl::lexer::{self, Tok, Token};
use nwf_compiler::lang;
use std::ops::Range;

/// What a token is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// `filter`, `use`, `uuid`, `chain`, `priority`, `statematch`.
    Keyword(&'static str),
    /// A protocol element name.
    Proto(String),
    /// A field (attribute) name of a protocol.
    Field {
        /// The protocol.
        proto: String,
        /// The attribute.
        name: String,
    },
    /// A value standing for attribute `attr` of XML element `elem`.
    Value {
        /// The element (`rule`, `filter`, `filterref`, `parameter` or a protocol).
        elem: String,
        /// The attribute.
        attr: String,
    },
    /// A comment.
    Comment,
    /// Operators, punctuation, anything else.
    Other,
}

/// A token and its role.
#[derive(Clone, Debug)]
pub struct Classified {
    /// Byte range.
    pub range: Range<usize>,
    /// Its text.
    pub text: String,
    /// Its role.
    pub role: Role,
    /// Brace depth at the token (0 outside the filter block).
    pub depth: usize,
}

fn is_word(t: &Tok) -> bool {
    matches!(
        t,
        Tok::Ident(_)
            | Tok::Number(_)
            | Tok::Dotted(_)
            | Tok::Colon(_)
            | Tok::Var(_)
            | Tok::Str(_)
            | Tok::Unterminated(_)
    )
}

fn value(elem: &str, attr: &str) -> Role {
    Role::Value {
        elem: elem.to_string(),
        attr: attr.to_string(),
    }
}

/// The text of a word with quotes removed.
pub fn word_text(t: &str) -> String {
    if t.starts_with('"') {
        lexer::unquote(t).0
    } else {
        t.to_string()
    }
}

/// Classifies every token of a DSL text.
pub fn classify(text: &str) -> Vec<Classified> {
    let toks = lexer::tokens(text);
    let mut out: Vec<Classified> = Vec::with_capacity(toks.len());
    // Indexes into `out` of the statement's tokens, and the tokens (borrowing `text`).
    let mut stmt: Vec<usize> = Vec::new();
    let mut stoks: Vec<Option<Tok>> = Vec::new();
    let mut depth = 0usize;
    let mut parens = 0usize;
    let push = |out: &mut Vec<Classified>, t: &Token, depth: usize| {
        out.push(Classified {
            range: t.range(),
            text: text.get(t.range()).unwrap_or("").to_string(),
            role: Role::Other,
            depth,
        });
    };
    for t in &toks {
        match t.tok {
            Some(Tok::Comment(_)) => {
                push(&mut out, t, depth);
                if let Some(last) = out.last_mut() {
                    last.role = Role::Comment;
                }
            }
            Some(Tok::Newline) if parens > 0 => {}
            Some(Tok::Newline | Tok::Semi) => {
                statement(&mut out, &stmt, &stoks);
                stmt.clear();
                stoks.clear();
            }
            Some(Tok::LBrace) => {
                statement(&mut out, &stmt, &stoks);
                stmt.clear();
                stoks.clear();
                push(&mut out, t, depth);
                depth += 1;
            }
            Some(Tok::RBrace) => {
                statement(&mut out, &stmt, &stoks);
                stmt.clear();
                stoks.clear();
                depth = depth.saturating_sub(1);
                push(&mut out, t, depth);
            }
            _ => {
                match t.tok {
                    Some(Tok::LParen) => parens += 1,
                    Some(Tok::RParen) => parens = parens.saturating_sub(1),
                    _ => {}
                }
                stmt.push(out.len());
                stoks.push(t.tok);
                push(&mut out, t, depth);
            }
        }
    }
    statement(&mut out, &stmt, &stoks);
    out
}

/// Assigns roles to the tokens (indexes into `out`) of one statement.
fn statement(out: &mut [Classified], stmt: &[usize], toks: &[Option<Tok>]) {
    if stmt.is_empty() {
        return;
    }
    let set = |out: &mut [Classified], k: usize, role: Role| {
        if let Some(&i) = stmt.get(k) {
            out[i].role = role;
        }
    };
    match toks[0] {
        Some(Tok::KwFilter) => {
            set(out, 0, Role::Keyword("filter"));
            set(out, 1, value("filter", "name"));
            let mut k = 2;
            while k < stmt.len() {
                match toks[k] {
                    Some(Tok::KwChain) => {
                        set(out, k, Role::Keyword("chain"));
                        set(out, k + 1, value("filter", "chain"));
                        k += 2;
                    }
                    Some(Tok::KwPriority) => {
                        set(out, k, Role::Keyword("priority"));
                        set(out, k + 1, value("filter", "priority"));
                        k += 2;
                    }
                    _ => k += 1,
                }
            }
        }
        Some(Tok::KwUuid) => {
            set(out, 0, Role::Keyword("uuid"));
        }
        Some(Tok::KwUse) => {
            set(out, 0, Role::Keyword("use"));
            set(out, 1, value("filterref", "filter"));
            // Parameters: NAME = value | NAME = [values], separated by commas.
            let mut expect_name = true;
            for k in 2..stmt.len() {
                match toks[k] {
                    Some(Tok::LParen) => expect_name = true,
                    // A comma inside `[ ]` separates list values, not parameters.
                    Some(Tok::Comma) if !inside_brackets(toks, k) => expect_name = true,
                    Some(Tok::Eq) => expect_name = false,
                    Some(ref t) if is_word(t) => {
                        if expect_name {
                            set(out, k, value("parameter", "name"));
                        } else {
                            set(out, k, value("parameter", "value"));
                        }
                    }
                    _ => {}
                }
            }
        }
        Some(ref t) if is_word(t) => rule(out, stmt, toks),
        _ => {}
    }
}

fn inside_brackets(toks: &[Option<Tok>], k: usize) -> bool {
    let mut depth = 0i32;
    for t in &toks[..k] {
        match t {
            Some(Tok::LBracket) => depth += 1,
            Some(Tok::RBracket) => depth -= 1,
            _ => {}
        }
    }
    depth > 0
}

/// `DIR ACTION [PROTO fields...] [options]`.
fn rule(out: &mut [Classified], stmt: &[usize], toks: &[Option<Tok>]) {
    fn put(out: &mut [Classified], stmt: &[usize], k: usize, role: Role) {
        if let Some(&i) = stmt.get(k) {
            out[i].role = role;
        }
    }
    macro_rules! set {
        ($k:expr, $role:expr) => {
            put(out, stmt, $k, $role)
        };
    }
    set!(0, value("rule", "direction"));
    if stmt.len() < 2 {
        return;
    }
    set!(1, value("rule", "action"));
    let mut k = 2;
    let mut proto: Option<String> = None;
    if let Some(Some(Tok::Ident(p))) = toks.get(2) {
        proto = Some(p.to_string());
        set!(2, Role::Proto(p.to_string()));
        k = 3;
    }
    // Alternates field name and value; options (`priority N`, `statematch B`) anywhere.
    let mut current: Option<(String, String)> = None; // (elem, attr) of the value expected
    while k < stmt.len() {
        match &toks[k] {
            Some(Tok::KwPriority) => {
                set!(k, Role::Keyword("priority"));
                current = Some(("rule".into(), "priority".into()));
            }
            Some(Tok::KwStatematch) => {
                set!(k, Role::Keyword("statematch"));
                current = Some(("rule".into(), "statematch".into()));
            }
            Some(Tok::EqEq | Tok::NotEq) => {}
            // The value goes on: the next word belongs to the same attribute.
            Some(Tok::Comma | Tok::Slash | Tok::DotDot) if current.is_none() => {
                current = last_value(out, stmt, k);
            }
            Some(t) if is_word(t) => match current.take() {
                Some((elem, attr)) => set!(k, value(&elem, &attr)),
                None => {
                    let name = out[stmt[k]].text.clone();
                    let p = proto.clone().unwrap_or_default();
                    set!(
                        k,
                        Role::Field {
                            proto: p.clone(),
                            name: name.clone()
                        }
                    );
                    current = Some((p, name));
                }
            },
            _ => {}
        }
        k += 1;
    }
}

fn last_value(out: &[Classified], stmt: &[usize], k: usize) -> Option<(String, String)> {
    stmt[..k].iter().rev().find_map(|&i| match &out[i].role {
        Role::Value { elem, attr } => Some((elem.clone(), attr.clone())),
        _ => None,
    })
}

/// The token at `offset` (a word the cursor is in or right after).
pub fn token_at(cls: &[Classified], offset: usize) -> Option<&Classified> {
    cls.iter().find(|c| {
        c.range.start <= offset && offset <= c.range.end && !matches!(c.role, Role::Other)
    })
}

/// What a word typed at `offset` would be, and the range it replaces: the touching word, or
/// (between words) the role of a placeholder inserted there.
pub fn expected_at(text: &str, offset: usize) -> Option<(Classified, Range<usize>)> {
    let cls = classify(text);
    if let Some(c) = token_at(&cls, offset) {
        return Some((c.clone(), c.range.clone()));
    }
    let offset = offset.min(text.len());
    if !text.is_char_boundary(offset) {
        return None;
    }
    const HOLE: &str = "nwf_hole_";
    let probe = format!("{}{HOLE}{}", &text[..offset], &text[offset..]);
    let cls = classify(&probe);
    let c = cls
        .into_iter()
        .find(|c| c.range.start == offset && c.text.starts_with(HOLE))?;
    Some((
        Classified {
            range: offset..offset,
            text: String::new(),
            ..c
        },
        offset..offset,
    ))
}

/// Whether a word names a protocol element (for completion of a third word).
pub fn is_protocol(name: &str) -> bool {
    lang::protocol(name).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(t: &str) -> Vec<(String, Role)> {
        classify(t)
            .into_iter()
            .filter(|c| !matches!(c.role, Role::Other))
            .map(|c| (c.text, c.role))
            .collect()
    }

    #[test]
    fn rule_roles() {
        let r = roles("filter f chain arp {\n  in drop tcp dstportstart == 80..90 priority 10 # x\n  use g(IP = [1.2.3.4, $X])\n}");
        let find = |w: &str| r.iter().find(|(t, _)| t == w).map(|(_, r)| r.clone());
        assert_eq!(find("f"), Some(value("filter", "name")));
        assert_eq!(find("arp"), Some(value("filter", "chain")));
        assert_eq!(find("in"), Some(value("rule", "direction")));
        assert_eq!(find("tcp"), Some(Role::Proto("tcp".into())));
        assert_eq!(find("90"), Some(value("tcp", "dstportstart")));
        assert_eq!(find("10"), Some(value("rule", "priority")));
        assert_eq!(find("g"), Some(value("filterref", "filter")));
        assert_eq!(find("IP"), Some(value("parameter", "name")));
        assert_eq!(find("$X"), Some(value("parameter", "value")));
        assert_eq!(find("# x"), Some(Role::Comment));
    }

    #[test]
    fn holes() {
        let t = "filter f {\n  in drop tcp  \n}";
        let at = t.find("tcp").unwrap() + 4;
        let (c, _) = expected_at(t, at).unwrap();
        assert!(matches!(c.role, Role::Field { .. }), "{c:?}");
        let at = t.find("in").unwrap();
        let (c, _) = expected_at(t, at).unwrap();
        assert_eq!(c.role, value("rule", "direction"));
    }
}
