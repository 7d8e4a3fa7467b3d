//! The DSL's syntax tree: what was written, with byte ranges on every node.
//!
//! The parser always produces a tree, even for broken input (broken statements become
//! [`Item::Error`]), so the language server can work on a file being typed. Meaning is given
//! only by lowering the tree to the IR (`lower.rs`).

use super::lexer::TokenKind;
use std::ops::Range;

/// A parsed file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyntaxTree {
    /// The `filter` blocks, in order (a valid file has exactly one).
    pub filters: Vec<FilterDecl>,
    /// Every `#` comment, in order.
    pub comments: Vec<Comment>,
    /// Every token (comments and bad characters included), for syntax highlighting.
    pub tokens: Vec<SyntaxToken>,
}

/// A token's kind and place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxToken {
    /// What kind of token.
    pub kind: TokenKind,
    /// Where.
    pub span: Range<usize>,
}

/// A `#` comment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comment {
    /// The text after `#` and one optional space, without trailing blanks.
    pub text: String,
    /// Where (the `#` to the end of the line).
    pub span: Range<usize>,
    /// Whether code precedes it on its line (an end-of-line comment).
    pub trailing: bool,
}

/// A word: a name, a number, an address, a variable, or a quoted string (decoded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    /// The text (a string's content without quotes and escapes). Short words are stored inline
    /// (no allocation): a 10,000-rule file has tens of thousands of them.
    pub text: compact_str::CompactString,
    /// Where.
    pub span: Range<usize>,
    /// Whether it was a quoted string.
    pub quoted: bool,
}

/// `filter NAME [chain CHAIN] [priority N] { ... }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterDecl {
    /// From `filter` to the closing brace.
    pub span: Range<usize>,
    /// The `filter` keyword.
    pub keyword: Range<usize>,
    /// The name (`None` when the header could not be parsed).
    pub name: Option<Word>,
    /// `chain` and `priority`, as written.
    pub options: Vec<HeaderOption>,
    /// The statements of the block.
    pub items: Vec<Item>,
}

/// Which filter header option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderKey {
    /// `chain NAME`.
    Chain,
    /// `priority N`.
    Priority,
}

/// A filter header option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderOption {
    /// Which.
    pub key: HeaderKey,
    /// The keyword.
    pub keyword: Range<usize>,
    /// The value.
    pub value: Word,
}

/// A statement of a filter block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// A rule.
    Rule(RuleDecl),
    /// `use NAME(...)`: a filterref.
    Use(UseDecl),
    /// `uuid "..."`.
    Uuid(UuidDecl),
    /// A statement with a syntax error (reported separately).
    Error(Range<usize>),
}

impl Item {
    /// Where the statement is.
    pub fn span(&self) -> Range<usize> {
        match self {
            Item::Rule(r) => r.span.clone(),
            Item::Use(u) => u.span.clone(),
            Item::Uuid(u) => u.span.clone(),
            Item::Error(s) => s.clone(),
        }
    }
}

/// `DIRECTION ACTION [PROTOCOL FIELD...] [priority N] [statematch B]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleDecl {
    /// The whole rule.
    pub span: Range<usize>,
    /// `in`, `out` or `inout`.
    pub direction: Word,
    /// `accept`, `drop`, ...
    pub action: Word,
    /// The protocol element's name.
    pub protocol: Option<Word>,
    /// The attribute tests, in order.
    pub fields: Vec<Field>,
    /// `priority` and `statematch`, in order.
    pub options: Vec<RuleOption>,
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `==` (also what no operator means).
    Eq,
    /// `!=`: the test is negated.
    Ne,
}

/// `NAME [==|!=] VALUE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// The whole test.
    pub span: Range<usize>,
    /// The attribute name.
    pub name: Word,
    /// The operator, if written.
    pub op: Option<(Op, Range<usize>)>,
    /// The value.
    pub value: Value,
}

/// A separator inside a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sep {
    /// `,` (lists: states, TCP flags, ipset flags).
    Comma,
    /// `/`: address and mask (or TCP flags' mask and set).
    Slash,
    /// `..`: a range.
    DotDot,
}

impl Sep {
    /// How it is written.
    pub fn text(self) -> &'static str {
        match self {
            Sep::Comma => ",",
            Sep::Slash => "/",
            Sep::DotDot => "..",
        }
    }
}

/// A part of a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValuePart {
    /// A word.
    Word(Word),
    /// A separator and where it is.
    Sep(Sep, Range<usize>),
}

/// A value: words joined by separators, without blanks in between.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Value {
    /// The whole value.
    pub span: Range<usize>,
    /// Its words and separators, alternating, starting and ending with a word.
    pub parts: Vec<ValuePart>,
}

/// Which rule option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleKey {
    /// `priority N`.
    Priority,
    /// `statematch false`.
    Statematch,
}

/// A rule option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleOption {
    /// Which.
    pub key: RuleKey,
    /// The keyword.
    pub keyword: Range<usize>,
    /// The value.
    pub value: Word,
}

/// `use NAME` or `use NAME(PARAM = VALUE, LIST = [V1, V2])`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UseDecl {
    /// The whole statement.
    pub span: Range<usize>,
    /// The `use` keyword.
    pub keyword: Range<usize>,
    /// The referenced filter.
    pub target: Word,
    /// The parameters, in order.
    pub params: Vec<ParamDecl>,
}

/// `NAME = VALUE` or `NAME = [VALUE, ...]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamDecl {
    /// The whole parameter.
    pub span: Range<usize>,
    /// The variable name.
    pub name: Word,
    /// Its values (one unless a list).
    pub values: Vec<Value>,
}

/// `uuid "..."`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UuidDecl {
    /// The whole statement.
    pub span: Range<usize>,
    /// The `uuid` keyword.
    pub keyword: Range<usize>,
    /// The UUID.
    pub value: Word,
}
