//! Canonical DSL text: deterministic, idempotent, comments kept, columns aligned.
//!
//! Canonical means: one statement per line, four-space indentation; the uuid first; rules as
//! `DIRECTION ACTION [PROTOCOL FIELD...] [priority N] [statematch false]` with the priority
//! left out when it is libvirt's default 500; attributes in the language table's order;
//! address and mask written `ADDR/MASK`, a range `START..END`; `!=` on every attribute libvirt
//! negates (after its negation rules, as the XML writer does); words that would not read back as
//! one token quoted. Direction, action and protocol are aligned over the whole filter, and the
//! fields of consecutive rules of the same protocol form aligned columns.

use super::lexer::{self, Tok};
use super::lower::partner;
use crate::ir::{AttrValue, Entry, Filter, FilterRef, Match, Operand, Rule};
use crate::lang::{self, Part, ValueType};
use std::fmt::Write;

/// Writes a filter as canonical DSL text (ends with a newline).
pub fn write_filter(f: &Filter) -> String {
    let mut out = String::new();
    for c in &f.comments {
        comment(&mut out, "", c);
    }
    let _ = write!(out, "filter {}", word(&f.name));
    if f.chain != "root" {
        let _ = write!(out, " chain {} priority {}", word(&f.chain), f.priority);
    }
    out.push_str(" {\n");
    if let Some(u) = &f.uuid {
        let _ = writeln!(out, "    uuid {}", lexer::quote(u));
    }
    let rows: Vec<Option<RuleCells>> = f
        .entries
        .iter()
        .map(|e| match e {
            Entry::Rule(r) => Some(rule_cells(r)),
            Entry::Ref(_) => None,
        })
        .collect();
    // Direction, action and protocol columns over all rules.
    let mut head = [0usize; 3];
    for cells in rows.iter().flatten() {
        for (w, c) in head.iter_mut().zip(&cells.head) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut i = 0;
    let mut first = true;
    while i < f.entries.len() {
        match &f.entries[i] {
            Entry::Ref(r) => {
                entry_comments(&mut out, &r.comments, first);
                let _ = writeln!(out, "    {}", use_line(r));
                i += 1;
            }
            Entry::Rule(r) => {
                // A group: consecutive rules of the same protocol.
                let proto = r.matches.as_ref().map(|m| m.proto.name);
                let mut j = i;
                while j < f.entries.len()
                    && matches!(&f.entries[j], Entry::Rule(o) if o.matches.as_ref().map(|m| m.proto.name) == proto)
                {
                    j += 1;
                }
                let group: Vec<&RuleCells> = rows[i..j]
                    .iter()
                    .map(|r| r.as_ref().expect("rule"))
                    .collect();
                for (k, line) in group_lines(&group, &head).into_iter().enumerate() {
                    let Entry::Rule(r) = &f.entries[i + k] else {
                        unreachable!()
                    };
                    entry_comments(&mut out, &r.comments, first && k == 0);
                    let _ = writeln!(out, "    {line}");
                }
                i = j;
            }
        }
        first = false;
    }
    if !f.trailing_comments.is_empty() && !f.entries.is_empty() {
        out.push('\n');
    }
    for c in &f.trailing_comments {
        comment(&mut out, "    ", c);
    }
    out.push_str("}\n");
    out
}

/// Comments before an entry, with a blank line before them (except at the top of the block).
fn entry_comments(out: &mut String, comments: &[String], first: bool) {
    if comments.is_empty() {
        return;
    }
    if !first {
        out.push('\n');
    }
    for c in comments {
        comment(out, "    ", c);
    }
}

fn comment(out: &mut String, indent: &str, text: &str) {
    for line in text.lines().chain(text.is_empty().then_some("")) {
        let line = line.trim_end();
        if line.is_empty() {
            let _ = writeln!(out, "{indent}#");
        } else {
            let _ = writeln!(out, "{indent}# {line}");
        }
    }
}

/// A name: bare when it reads back as one identifier, else quoted.
fn word(s: &str) -> String {
    if lexer::is_plain_ident(s) {
        s.to_string()
    } else {
        lexer::quote(s)
    }
}

fn use_line(r: &FilterRef) -> String {
    let mut s = format!("use {}", word(&r.filter));
    if r.params.is_empty() {
        return s;
    }
    let mut args: Vec<String> = Vec::new();
    let mut k = 0;
    while k < r.params.len() {
        let name = &r.params[k].name;
        let mut values = Vec::new();
        while k < r.params.len() && r.params[k].name == *name {
            values.push(param_value(&r.params[k].value));
            k += 1;
        }
        let key = if lexer::is_plain_ident(name) || single_token(name) {
            name.clone()
        } else {
            lexer::quote(name)
        };
        if values.len() == 1 {
            args.push(format!("{key} = {}", values[0]));
        } else {
            args.push(format!("{key} = [{}]", values.join(", ")));
        }
    }
    let _ = write!(s, "({})", args.join(", "));
    s
}

/// Whether `s` reads back as exactly one value word.
fn single_token(s: &str) -> bool {
    let toks = lexer::tokens(s);
    toks.len() == 1
        && matches!(
            toks[0].tok,
            Some(Tok::Ident(_) | Tok::Number(_) | Tok::Dotted(_) | Tok::Colon(_))
        )
}

fn param_value(v: &str) -> String {
    if single_token(v) {
        v.to_string()
    } else {
        lexer::quote(v)
    }
}

/// A rule split into cells for alignment.
struct RuleCells {
    /// Direction, action, protocol (empty when none).
    head: [String; 3],
    /// Name, operator (`!=` or empty) and value of each field.
    fields: Vec<[String; 3]>,
    /// `priority N`, `statematch false`.
    options: Vec<String>,
}

fn rule_cells(r: &Rule) -> RuleCells {
    let head = [
        lang::enum_name(lang::DIRECTIONS, r.direction).to_string(),
        lang::enum_name(lang::ACTIONS, r.action).to_string(),
        r.matches
            .as_ref()
            .map_or(String::new(), |m| m.proto.name.to_string()),
    ];
    let fields = r.matches.as_ref().map_or(Vec::new(), |m| {
        fields(m)
            .into_iter()
            .map(|(name, negated, value)| {
                let op = if negated { "!=" } else { "" };
                [name.to_string(), op.to_string(), value]
            })
            .collect()
    });
    let mut options = Vec::new();
    if r.priority != lang::DEFAULT_RULE_PRIORITY {
        options.push(format!("priority {}", r.priority));
    }
    if !r.statematch {
        options.push("statematch false".into());
    }
    RuleCells {
        head,
        fields,
        options,
    }
}

/// The lines of a group of rules. The head is aligned with `head` widths. When every rule of
/// the group has as many fields, fields and options form a table; otherwise only the leading
/// fields with the same name in every rule are aligned.
fn group_lines(group: &[&RuleCells], head: &[usize; 3]) -> Vec<String> {
    let same_count = group
        .iter()
        .all(|g| g.fields.len() == group[0].fields.len());
    let aligned = if same_count {
        group[0].fields.len()
    } else {
        (0..)
            .take_while(|k| {
                group.iter().all(|g| {
                    g.fields.get(*k).map(|f| &f[0]) == group[0].fields.get(*k).map(|f| &f[0])
                })
            })
            .count()
    };
    let mut widths: Vec<[usize; 3]> = vec![[0; 3]; aligned];
    for g in group {
        for (w, f) in widths.iter_mut().zip(&g.fields) {
            for n in 0..3 {
                w[n] = w[n].max(f[n].chars().count());
            }
        }
    }
    let opt_count = group.iter().map(|g| g.options.len()).max().unwrap_or(0);
    let mut opt_widths = vec![0usize; opt_count];
    if same_count {
        for g in group {
            for (w, o) in opt_widths.iter_mut().zip(&g.options) {
                *w = (*w).max(o.chars().count());
            }
        }
    }
    let mut lines = Vec::new();
    for g in group {
        let mut line = String::new();
        let mut cell = |text: &str, width: usize| {
            // A column empty in every rule (no `!=` anywhere) takes no space.
            if width == 0 && text.is_empty() {
                return;
            }
            line.push_str(text);
            let pad = width.saturating_sub(text.chars().count());
            line.extend(std::iter::repeat_n(' ', pad + 1));
        };
        for (n, h) in g.head.iter().enumerate() {
            cell(h, head[n]);
        }
        for (k, f) in g.fields.iter().enumerate() {
            for n in 0..3 {
                cell(&f[n], widths.get(k).map_or(0, |w| w[n]));
            }
        }
        for (k, o) in g.options.iter().enumerate() {
            cell(o, if same_count { opt_widths[k] } else { 0 });
        }
        lines.push(line.trim_end().to_string());
    }
    lines
}

/// The fields of a match in table order, masks and range ends joined to their base attribute
/// when both are there with the same negation.
fn fields(m: &Match) -> Vec<(&'static str, bool, String)> {
    let ordered: Vec<&AttrValue> = m
        .proto
        .attrs
        .iter()
        .filter_map(|spec| m.attrs.iter().find(|a| a.spec.name == spec.name))
        .collect();
    let mut used: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for a in &ordered {
        if used.contains(&a.spec.name) {
            continue;
        }
        let mut text = value_text(a);
        for (part, sep) in [(Part::Mask, "/"), (Part::End, "..")] {
            let Some(p) = partner(m.proto, a.spec, part) else {
                continue;
            };
            if let Some(b) = ordered
                .iter()
                .find(|b| b.spec.name == p.name && b.negated == a.negated)
            {
                text.push_str(sep);
                text.push_str(&value_text(b));
                used.push(b.spec.name);
            }
        }
        out.push((a.spec.name, a.negated, text));
    }
    out
}

/// A value as a bare word sequence when it reads back the same, else quoted.
fn value_text(a: &AttrValue) -> String {
    let text = match &a.value {
        Operand::Lit(v) => v.to_text(a.spec.ty),
        Operand::Var(v) => return v.to_string(),
    };
    let toks = lexer::tokens(&text);
    let slash_ok = a.spec.ty == ValueType::TcpFlags;
    let mut expect_word = true;
    let mut bare = !toks.is_empty() && !matches!(a.spec.ty, ValueType::Comment);
    let mut prev_end = 0;
    for t in &toks {
        let is_word = matches!(
            t.tok,
            Some(Tok::Ident(_) | Tok::Number(_) | Tok::Dotted(_) | Tok::Colon(_))
        );
        let is_sep = matches!(t.tok, Some(Tok::Comma)) || (slash_ok && t.tok == Some(Tok::Slash));
        if t.span.0 != prev_end || (expect_word && !is_word) || (!expect_word && !is_sep) {
            bare = false;
            break;
        }
        expect_word = !expect_word;
        prev_end = t.span.1;
    }
    if bare && !expect_word && prev_end == text.len() {
        text
    } else {
        lexer::quote(&text)
    }
}
