//! The DSL's tokens (logos).
//!
//! Values are lexed loosely on purpose: a number, an address or a word is one token, and the
//! lowering step checks it against the attribute's value type with the same parser and the same
//! diagnostics as the XML front end. The lexer only has to find where a value ends.

use logos::Logos;
use std::ops::Range;

/// A token kind with its text (for words and values).
#[derive(Logos, Clone, Copy, Debug, PartialEq, Eq)]
#[logos(skip r"[ \t\r\f]+")]
pub enum Tok<'s> {
    /// `filter`: starts a filter definition.
    #[token("filter")]
    KwFilter,
    /// `chain`: the filter's chain.
    #[token("chain")]
    KwChain,
    /// `priority`: a filter's chain priority or a rule's priority.
    #[token("priority")]
    KwPriority,
    /// `use`: a filterref.
    #[token("use")]
    KwUse,
    /// `uuid`: the filter's UUID.
    #[token("uuid")]
    KwUuid,
    /// `statematch`: a rule's automatic state matching.
    #[token("statematch")]
    KwStatematch,
    /// A name: directions, actions, protocols, attributes, enum values, filter names.
    #[regex(r"[A-Za-z_][A-Za-z0-9_-]*", |lex| lex.slice())]
    Ident(&'s str),
    /// Something starting with a digit (or `-` and a digit): decimal, `0x` hex, bare hex.
    #[regex(r"-?[0-9][0-9A-Za-z_]*", |lex| lex.slice())]
    Number(&'s str),
    /// Dotted words starting with a digit: IPv4 addresses and masks.
    #[regex(r"[0-9][0-9A-Za-z_]*(\.[0-9A-Za-z_]+)+", |lex| lex.slice())]
    Dotted(&'s str),
    /// Words with colons: MAC addresses, IPv6 addresses and masks (which is which depends on
    /// the attribute).
    #[regex(r"[0-9A-Fa-f]*:[0-9A-Fa-f:]*(\.[0-9A-Fa-f:]+)*", |lex| lex.slice())]
    Colon(&'s str),
    /// A variable reference: `$NAME`, `$NAME[@N]`, `$NAME[N]` (checked when lowered; a
    /// missing `]` is part of the token, so that the check can say so).
    #[regex(r"\$[A-Za-z0-9_]*(\[[^\]\s,(){}\[=;#\x22]*\]?)?", |lex| lex.slice())]
    Var(&'s str),
    /// Any other value-like word: it starts like a value and runs to the next blank or
    /// structural character (`52:54:00:zz:34:56`, `52-54-00-12-34-56`, `80%`), so that a
    /// malformed value is one token and lowering reports it with the expected form.
    #[regex(r"[0-9A-Za-z_:$-]([\x21-\x7e&&[^/,{}()\[\]=;#\x22!.]]|\.[\x21-\x7e&&[^/,{}()\[\]=;#\x22!.]])*", |lex| lex.slice(), priority = 1)]
    Other(&'s str),
    /// A string in double quotes, as written (with quotes and escapes).
    #[regex(r#""([^"\\\n]|\\[^\n])*""#, |lex| lex.slice())]
    Str(&'s str),
    /// A string without its closing quote (an error the parser reports).
    #[regex(r#""([^"\\\n]|\\[^\n])*"#, |lex| lex.slice())]
    Unterminated(&'s str),
    /// `==`.
    #[token("==")]
    EqEq,
    /// `!=`.
    #[token("!=")]
    NotEq,
    /// `=` (filter parameters).
    #[token("=")]
    Eq,
    /// `..`: a range.
    #[token("..")]
    DotDot,
    /// `/`: an address and its mask, or TCP flags' mask and set.
    #[token("/")]
    Slash,
    /// `,`.
    #[token(",")]
    Comma,
    /// `{`.
    #[token("{")]
    LBrace,
    /// `}`.
    #[token("}")]
    RBrace,
    /// `(`.
    #[token("(")]
    LParen,
    /// `)`.
    #[token(")")]
    RParen,
    /// `[`.
    #[token("[")]
    LBracket,
    /// `]`.
    #[token("]")]
    RBracket,
    /// `;`: ends a statement like a line break.
    #[token(";")]
    Semi,
    /// A line break: ends a statement.
    #[token("\n")]
    Newline,
    /// `# ...` to the end of the line (kept for conversion and formatting).
    #[regex(r"#[^\n]*", |lex| lex.slice(), allow_greedy = true)]
    Comment(&'s str),
}

impl Tok<'_> {
    /// What an LSP or a message calls this kind of token.
    pub fn kind(&self) -> TokenKind {
        match self {
            Tok::KwFilter
            | Tok::KwChain
            | Tok::KwPriority
            | Tok::KwUse
            | Tok::KwUuid
            | Tok::KwStatematch => TokenKind::Keyword,
            Tok::Ident(_) | Tok::Other(_) => TokenKind::Ident,
            Tok::Number(_) => TokenKind::Number,
            Tok::Dotted(_) | Tok::Colon(_) => TokenKind::Address,
            Tok::Var(_) => TokenKind::Variable,
            Tok::Str(_) | Tok::Unterminated(_) => TokenKind::String,
            Tok::EqEq | Tok::NotEq | Tok::Eq | Tok::DotDot | Tok::Slash => TokenKind::Operator,
            Tok::Comma
            | Tok::LBrace
            | Tok::RBrace
            | Tok::LParen
            | Tok::RParen
            | Tok::LBracket
            | Tok::RBracket
            | Tok::Semi => TokenKind::Punctuation,
            Tok::Newline => TokenKind::Newline,
            Tok::Comment(_) => TokenKind::Comment,
        }
    }

    /// How the token is named in "expected ..." messages.
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s)
            | Tok::Number(s)
            | Tok::Dotted(s)
            | Tok::Colon(s)
            | Tok::Var(s)
            | Tok::Other(s) => {
                format!("`{s}`")
            }
            Tok::Str(_) | Tok::Unterminated(_) => "a string".into(),
            Tok::Newline => "end of the line".into(),
            Tok::Comment(_) => "a comment".into(),
            other => format!("`{}`", other.text()),
        }
    }

    /// The fixed text of a keyword or punctuation token (empty for others).
    pub fn text(&self) -> &'static str {
        match self {
            Tok::KwFilter => "filter",
            Tok::KwChain => "chain",
            Tok::KwPriority => "priority",
            Tok::KwUse => "use",
            Tok::KwUuid => "uuid",
            Tok::KwStatematch => "statematch",
            Tok::EqEq => "==",
            Tok::NotEq => "!=",
            Tok::Eq => "=",
            Tok::DotDot => "..",
            Tok::Slash => "/",
            Tok::Comma => ",",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::Semi => ";",
            Tok::Newline => "\n",
            _ => "",
        }
    }
}

/// The kind of a token, for syntax highlighting (semantic tokens).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// `filter`, `chain`, `priority`, `use`, `uuid`, `statematch`.
    Keyword,
    /// A name or a word value.
    Ident,
    /// A number.
    Number,
    /// An IPv4, IPv6 or MAC address (or mask).
    Address,
    /// A variable reference.
    Variable,
    /// A quoted string.
    String,
    /// `==`, `!=`, `=`, `..`, `/`.
    Operator,
    /// Braces, parentheses, brackets, commas, semicolons.
    Punctuation,
    /// A line break.
    Newline,
    /// A `#` comment.
    Comment,
    /// Text that is no token.
    Error,
}

/// One token of a text, with its byte range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token<'s> {
    /// The token, or `None` for text that is no token.
    pub tok: Option<Tok<'s>>,
    /// Where it is.
    pub span: (usize, usize),
}

impl Token<'_> {
    /// Its kind (for semantic tokens).
    pub fn kind(&self) -> TokenKind {
        self.tok.map_or(TokenKind::Error, |t| t.kind())
    }

    /// Its byte range.
    pub fn range(&self) -> Range<usize> {
        self.span.0..self.span.1
    }
}

/// Every token of `text`, including comments, line breaks and bad characters, in order.
pub fn tokens(text: &str) -> Vec<Token<'_>> {
    let mut lex = Tok::lexer(text);
    // About one token per four bytes; reserving up front avoids repeated large reallocations
    // (which also make glibc consolidate its free lists each time).
    let mut out = Vec::with_capacity(text.len() / 4 + 16);
    while let Some(r) = lex.next() {
        let s = lex.span();
        out.push(Token {
            tok: r.ok(),
            span: (s.start, s.end),
        });
    }
    out
}

/// Decodes a string token's text (with its quotes): `\"`, `\\`, `\n`, `\t`, `\r`. Returns the
/// text and the byte offsets (relative to the token) of unknown escapes.
pub fn unquote(s: &str) -> (String, Vec<usize>) {
    let body = s.strip_prefix('"').unwrap_or(s);
    let body = body.strip_suffix('"').unwrap_or(body);
    let mut out = String::with_capacity(body.len());
    let mut bad = Vec::new();
    let mut it = body.char_indices();
    while let Some((i, c)) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some((_, '"')) => out.push('"'),
            Some((_, '\\')) => out.push('\\'),
            Some((_, 'n')) => out.push('\n'),
            Some((_, 't')) => out.push('\t'),
            Some((_, 'r')) => out.push('\r'),
            Some((_, other)) => {
                bad.push(i + 1);
                out.push(other);
            }
            None => bad.push(i + 1),
        }
    }
    (out, bad)
}

/// Quotes a text as a string token, escaping what [`unquote`] decodes.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether `s` is written bare as one identifier token (not a keyword).
pub fn is_plain_ident(s: &str) -> bool {
    let mut lex = Tok::lexer(s);
    matches!(lex.next(), Some(Ok(Tok::Ident(_)))) && lex.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<Option<Tok<'_>>> {
        tokens(s).into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn values() {
        assert_eq!(
            kinds("80..90 10.0.0.1..10.0.0.9"),
            vec![
                Some(Tok::Number("80")),
                Some(Tok::DotDot),
                Some(Tok::Number("90")),
                Some(Tok::Dotted("10.0.0.1")),
                Some(Tok::DotDot),
                Some(Tok::Dotted("10.0.0.9")),
            ]
        );
        assert_eq!(
            kinds("aa:bb:cc:dd:ee:ff fe80::/10 10.0.0.0/8 ::1..::ffff:1.2.3.4"),
            vec![
                Some(Tok::Colon("aa:bb:cc:dd:ee:ff")),
                Some(Tok::Colon("fe80::")),
                Some(Tok::Slash),
                Some(Tok::Number("10")),
                Some(Tok::Dotted("10.0.0.0")),
                Some(Tok::Slash),
                Some(Tok::Number("8")),
                Some(Tok::Colon("::1")),
                Some(Tok::DotDot),
                Some(Tok::Colon("::ffff:1.2.3.4")),
            ]
        );
        assert_eq!(
            kinds("$IP[@1] $MAC -500 0x800 clean-traffic priority"),
            vec![
                Some(Tok::Var("$IP[@1]")),
                Some(Tok::Var("$MAC")),
                Some(Tok::Number("-500")),
                Some(Tok::Number("0x800")),
                Some(Tok::Ident("clean-traffic")),
                Some(Tok::KwPriority),
            ]
        );
        assert_eq!(
            kinds(r#""a \"b\"" "open"#),
            vec![
                Some(Tok::Str(r#""a \"b\"""#)),
                Some(Tok::Unterminated("\"open")),
            ]
        );
    }

    #[test]
    fn malformed_values_are_one_token() {
        assert_eq!(
            kinds("52:54:00:zz:34:56 52-54-00-12-34-56 $IP[1 srcipaddr: 80% 10.0.0.0..1 a.b"),
            vec![
                Some(Tok::Other("52:54:00:zz:34:56")),
                Some(Tok::Other("52-54-00-12-34-56")),
                Some(Tok::Var("$IP[1")),
                Some(Tok::Other("srcipaddr:")),
                Some(Tok::Other("80%")),
                Some(Tok::Dotted("10.0.0.0")),
                Some(Tok::DotDot),
                Some(Tok::Number("1")),
                Some(Tok::Other("a.b")),
            ]
        );
        // Non-ASCII characters start no token; keywords and names keep their kinds.
        assert_eq!(kinds("\u{a0}"), vec![None]);
        assert_eq!(
            kinds("use clean-traffic"),
            vec![Some(Tok::KwUse), Some(Tok::Ident("clean-traffic"))]
        );
    }

    #[test]
    fn strings() {
        let q = quote("a\"b\\c\nd\té");
        assert_eq!(unquote(&q), ("a\"b\\c\nd\té".to_string(), vec![]));
        assert_eq!(unquote(r#""\q""#).1, vec![1]);
        assert!(is_plain_ident("clean-traffic"));
        assert!(!is_plain_ident("use"));
        assert!(!is_plain_ident("a.b"));
    }
}
