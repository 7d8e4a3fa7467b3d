//! The typed intermediate representation of filter definitions.
//!
//! Both front ends (XML now, the DSL later) lower to these types; everything after the front
//! end reads only these. Values are typed ([`Value`]), variables are explicit ([`VarRef`]),
//! and every node carries the span it came from.

use crate::lang::{Action, AttrSpec, Direction, ProtoSpec};
use crate::source::{FileId, Span};
use crate::value::{Value, VarRef};
use serde::Serialize;

/// An attribute value: a literal or a variable reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Operand {
    /// A typed literal.
    Lit(Value),
    /// A variable, resolved at instantiation.
    Var(VarRef),
}

/// One attribute of a protocol element.
#[derive(Clone, Debug, Serialize)]
pub struct AttrValue {
    /// Its definition in the language table.
    #[serde(serialize_with = "ser_attr")]
    pub spec: &'static AttrSpec,
    /// The value.
    pub value: Operand,
    /// Whether the test is negated, after libvirt's negation rules (see [`AttrSpec::neg_from`]).
    pub negated: bool,
    /// Whether the element it was written in had `match='no'` (kept for faithful output).
    pub written_negated: bool,
    /// The attribute's name.
    pub name_span: Span,
    /// The attribute's value.
    pub span: Span,
}

fn ser_attr<S: serde::Serializer>(a: &&'static AttrSpec, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(a.name)
}

fn ser_proto<S: serde::Serializer>(p: &&'static ProtoSpec, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(p.name)
}

/// The protocol element of a rule.
#[derive(Clone, Debug, Serialize)]
pub struct Match {
    /// Which protocol element.
    #[serde(serialize_with = "ser_proto")]
    pub proto: &'static ProtoSpec,
    /// Its attributes, in source order.
    pub attrs: Vec<AttrValue>,
    /// The (first) element.
    pub span: Span,
    /// Attributes that were written but had invalid values (so later checks do not report
    /// them as missing).
    #[serde(skip)]
    pub invalid: Vec<&'static str>,
}

impl Match {
    /// The attribute with this name.
    pub fn get(&self, name: &str) -> Option<&AttrValue> {
        self.attrs.iter().find(|a| a.spec.name == name)
    }

    /// Whether the attribute was written, valid or not.
    pub fn written(&self, name: &str) -> bool {
        self.get(name).is_some() || self.invalid.contains(&name)
    }

    /// Applies libvirt's negation rules: with `match='no'`, some attributes take their
    /// negation from another attribute (mask from address, range end from start, tcp/udp/sctp
    /// ports from `srcportstart`) instead of from the element they were written in.
    pub fn apply_negation_rules(&mut self) {
        let flags: Vec<(&str, bool)> = self
            .attrs
            .iter()
            .map(|a| (a.spec.name, a.written_negated))
            .collect();
        for a in &mut self.attrs {
            a.negated = match a.spec.neg_from {
                Some(src) => flags.iter().any(|(n, neg)| *n == src && *neg),
                None => a.written_negated,
            };
        }
    }
}

/// A rule.
#[derive(Clone, Debug, Serialize)]
pub struct Rule {
    /// The action.
    pub action: Action,
    /// The direction.
    pub direction: Direction,
    /// The effective priority (500 when absent or out of range, as libvirt does).
    pub priority: i32,
    /// False when `statematch='false'`/`0`.
    pub statematch: bool,
    /// The protocol element, if any (none matches every frame).
    pub matches: Option<Match>,
    /// The `<rule>` element.
    pub span: Span,
    /// Source comments written before or inside the rule.
    pub comments: Vec<String>,
}

/// A parameter passed by a filterref.
#[derive(Clone, Debug, Serialize)]
pub struct Param {
    /// Variable name.
    pub name: String,
    /// Value text.
    pub value: String,
    /// The `<parameter>` element.
    pub span: Span,
}

/// A reference to another filter.
#[derive(Clone, Debug, Serialize)]
pub struct FilterRef {
    /// Referenced filter name.
    pub filter: String,
    /// Parameters, in document order (a repeated name is a list).
    pub params: Vec<Param>,
    /// The `<filterref>` element.
    pub span: Span,
    /// The `filter` attribute value.
    pub name_span: Span,
    /// Source comments written before or inside the filterref.
    pub comments: Vec<String>,
}

/// A filter entry: rules and filterrefs keep their relative document order.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Entry {
    /// A rule.
    Rule(Rule),
    /// A filterref.
    Ref(FilterRef),
}

/// A filter definition.
#[derive(Clone, Debug, Serialize)]
pub struct Filter {
    /// Its name.
    pub name: String,
    /// The chain its rules go to (`root` by default).
    pub chain: String,
    /// The chain priority (the chain's default when not written).
    pub priority: i32,
    /// Whether `priority` was written.
    pub priority_written: bool,
    /// The UUID, as written.
    pub uuid: Option<String>,
    /// Rules and filterrefs, in document order.
    pub entries: Vec<Entry>,
    /// The file it was read from.
    pub file: FileId,
    /// The `<filter>` element (its start tag).
    pub span: Span,
    /// The `name` attribute value.
    pub name_span: Span,
    /// The `chain` attribute value, if written.
    #[serde(skip)]
    pub chain_span: Option<Span>,
    /// The `priority` attribute value, if written.
    #[serde(skip)]
    pub priority_span: Option<Span>,
    /// Comments before the `<filter>` element.
    pub comments: Vec<String>,
    /// Comments after the last rule or filterref.
    pub trailing_comments: Vec<String>,
}

impl Filter {
    /// The rules, in order.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.entries.iter().filter_map(|e| match e {
            Entry::Rule(r) => Some(r),
            Entry::Ref(_) => None,
        })
    }

    /// The filterrefs, in order.
    pub fn refs(&self) -> impl Iterator<Item = &FilterRef> {
        self.entries.iter().filter_map(|e| match e {
            Entry::Ref(r) => Some(r),
            Entry::Rule(_) => None,
        })
    }

    /// A span-free JSON form of the filter's meaning: two filters with equal meaning give
    /// equal values whatever their source text looked like. Used by round-trip tests.
    pub fn meaning(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).expect("IR serializes");
        strip_positions(&mut v);
        v
    }
}

fn strip_positions(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            for key in [
                "span",
                "name_span",
                "file",
                "written_negated",
                "priority_written",
                "comments",
                "trailing_comments",
            ] {
                map.remove(key);
            }
            for (_, child) in map.iter_mut() {
                strip_positions(child);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_positions),
        _ => {}
    }
}
